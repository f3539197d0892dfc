//! Every CONNECT gets an answer, also when it arrives while the namespace's connect middleware
//! is still deciding on an earlier one: a raw client sends several, the test decides when the
//! middleware answers.

mod common;

use common::{patiently, serve, Polling, RawWs};
use ferrio_server::{ConnectError, Ferrio, Message, Socket};
use tokio::sync::{mpsc, oneshot};

/// A middleware run: the auth it was given and where the test sends its verdict.
type Decision = (String, oneshot::Sender<Result<(), ConnectError>>);

/// A server whose `/admin` middleware asks the test for each verdict, and whose `/probe`
/// namespace acks `ping` (a client that gets that ack knows that everything it sent before on
/// the same transport was read).
async fn server() -> (std::net::SocketAddr, mpsc::UnboundedReceiver<Decision>) {
    let (asked_tx, asked) = mpsc::unbounded_channel::<Decision>();
    let io = Ferrio::builder().build();
    io.of("/admin").use_connect(move |socket: Socket| {
        let asked = asked_tx.clone();
        async move {
            let (verdict, answer) = oneshot::channel();
            let auth = socket.handshake().auth_raw().as_str().to_owned();
            let _ = asked.send((auth, verdict));
            answer
                .await
                .unwrap_or_else(|_| Err(ConnectError::new("test gone")))
        }
    });
    io.of("/probe").on_connection(|socket: Socket| async move {
        socket.on("ping", |_: Socket, msg: Message| async move {
            msg.ack(&("pong",))
        });
    });
    (serve(io).await, asked)
}

async fn next_decision(asked: &mut mpsc::UnboundedReceiver<Decision>) -> Decision {
    patiently("a middleware run", asked.recv())
        .await
        .expect("the server runs")
}

/// Sends a `ping` to `/probe` and waits for its ack; returns the messages that came before it.
async fn probe(ws: &mut RawWs, id: u32) -> Vec<String> {
    ws.send(&format!(r#"42/probe,{id}["ping"]"#)).await;
    let ack = format!(r#"43/probe,{id}["pong"]"#);
    let mut before = Vec::new();
    loop {
        let m = ws.recv().await;
        if m == ack {
            return before;
        }
        before.push(m);
    }
}

fn socket_id(accept: &str) -> &str {
    accept
        .strip_prefix(r#"40/admin,{"sid":""#)
        .and_then(|s| s.strip_suffix(r#""}"#))
        .unwrap_or_else(|| panic!("not an accept of /admin: {accept}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connects_sent_while_the_middleware_decides_each_get_an_answer() {
    let (addr, mut asked) = server().await;
    let mut ws = RawWs::open(addr).await;
    ws.send("40/probe,").await;
    assert!(ws.recv().await.starts_with(r#"40/probe,{"sid":"#));

    ws.send(r#"40/admin,{"try":1}"#).await;
    let (auth, verdict) = next_decision(&mut asked).await;
    assert_eq!(auth, r#"{"try":1}"#);
    // two more while the middleware decides (`socket.connect()` again, a retry with new auth)
    ws.send(r#"40/admin,{"try":2}"#).await;
    ws.send(r#"40/admin,{"try":3}"#).await;
    assert!(probe(&mut ws, 1).await.is_empty(), "no answer yet");

    // refused: one CONNECT_ERROR, and the middleware runs again with the last auth
    verdict.send(Err(ConnectError::new("no"))).expect("waiting");
    assert_eq!(ws.recv().await, r#"44/admin,{"message":"no"}"#);
    let (auth, verdict) = next_decision(&mut asked).await;
    assert_eq!(auth, r#"{"try":3}"#);
    ws.send(r#"40/admin,{"try":4}"#).await;
    assert!(probe(&mut ws, 2).await.is_empty(), "no answer yet");
    assert!(asked.try_recv().is_err(), "one middleware run at a time");

    // accepted: one accept for each of the three CONNECTs since the refusal, one socket
    // (the verdict reaches the session on its own path, so the accepts are read first and the
    // probe then shows that no further answer follows)
    verdict.send(Ok(())).expect("waiting");
    let mut answers = Vec::new();
    for _ in 0..3 {
        answers.push(ws.recv().await);
    }
    let sid = socket_id(&answers[0]);
    assert!(answers.iter().all(|a| socket_id(a) == sid), "{answers:?}");
    assert!(probe(&mut ws, 3).await.is_empty(), "only three accepts");
    assert!(asked.try_recv().is_err(), "no further middleware run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_retries_over_polling_get_a_thousand_and_one_answers() {
    const RETRIES: usize = 1000;
    let (addr, mut asked) = server().await;
    let client = Polling::open(addr).await;
    client.post(&["40/admin,"]).await;
    let (_, verdict) = next_decision(&mut asked).await;
    let retries: Vec<String> = (1..=RETRIES)
        .map(|i| format!(r#"40/admin,{{"try":{i}}}"#))
        .collect();
    // One payload: the POST is answered once the session took all of it.
    client.post(&retries).await;
    verdict.send(Err(ConnectError::new("no"))).expect("waiting");
    let (auth, verdict) = next_decision(&mut asked).await;
    assert_eq!(auth, format!(r#"{{"try":{RETRIES}}}"#));
    verdict.send(Ok(())).expect("waiting");

    let mut refused = 0;
    let mut accepted = Vec::new();
    while accepted.len() < RETRIES {
        for packet in client.get().await {
            if packet == r#"44/admin,{"message":"no"}"# {
                refused += 1;
            } else if packet.starts_with("40/admin,") {
                accepted.push(socket_id(&packet).to_owned());
            }
        }
    }
    assert_eq!(refused, 1);
    assert_eq!(accepted.len(), RETRIES);
    assert!(accepted.iter().all(|s| *s == accepted[0]));
    assert!(asked.try_recv().is_err(), "no further middleware run");
}
