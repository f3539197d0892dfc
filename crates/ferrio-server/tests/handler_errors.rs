//! Failures of event handlers reach the socket's `on_handler_error` handlers: arguments that
//! do not fit a typed handler's types, and handlers that return an `Err`.

mod common;

use common::{patiently, serve, RawWs};
use ferrio_server::{Ferrio, Message, Socket};
use tokio::sync::mpsc;

#[tokio::test]
async fn handler_failures_reach_on_handler_error() {
    let (tx, mut failures) = mpsc::unbounded_channel();
    let (ran_tx, mut ran) = mpsc::unbounded_channel();
    let io = Ferrio::builder().build();
    io.on_connection(move |socket: Socket| {
        let tx = tx.clone();
        let ran_tx = ran_tx.clone();
        async move {
            socket.on("move", move |_s: Socket, (x, y): (i32, i32), _ack| {
                let ran_tx = ran_tx.clone();
                async move {
                    let _ = ran_tx.send((x, y));
                }
            });
            socket.on("typed-fails", |_s: Socket, (n,): (u8,), _ack| async move {
                Err::<(), _>(format!("no {n}"))
            });
            socket.on("raw-fails", |_s: Socket, _m: Message| async move {
                Err::<(), _>("raw failure")
            });
            socket.on_handler_error(move |socket, error| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send((
                        socket.id().to_owned(),
                        error.event().to_owned(),
                        error.is_arguments(),
                        error.arguments_error().is_some(),
                        error.to_string(),
                    ));
                }
            });
        }
    });
    let addr = serve(io.clone()).await;
    let mut ws = RawWs::open(addr).await;
    ws.send("40").await;
    let accept = ws.recv().await;
    let sid = accept
        .split("\"sid\":\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a socket id")
        .to_owned();

    // Arguments that do not fit: the handler does not run, the hook hears it.
    ws.send(r#"42["move","north",1]"#).await;
    let (id, event, arguments, has_error, text) = patiently("the arguments error", failures.recv())
        .await
        .unwrap();
    assert_eq!((id.as_str(), event.as_str()), (sid.as_str(), "move"));
    assert!(arguments && has_error, "{text}");
    assert!(text.starts_with("arguments of `move` do not fit"), "{text}");

    // Fitting arguments: the handler runs (and nothing is reported before it).
    ws.send(r#"42["move",1,2]"#).await;
    assert_eq!(patiently("the handler", ran.recv()).await, Some((1, 2)));
    assert!(failures.try_recv().is_err());

    // Handlers that return an error, typed and raw.
    ws.send(r#"42["typed-fails",7]"#).await;
    let (_, event, arguments, has_error, text) = patiently("the typed failure", failures.recv())
        .await
        .unwrap();
    assert_eq!(event, "typed-fails");
    assert!(!arguments && !has_error);
    assert_eq!(text, "handler of `typed-fails` failed: no 7");
    ws.send(r#"42["raw-fails"]"#).await;
    let (_, event, _, _, text) = patiently("the raw failure", failures.recv()).await.unwrap();
    assert_eq!(event, "raw-fails");
    assert_eq!(text, "handler of `raw-fails` failed: raw failure");
}
