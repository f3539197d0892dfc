//! Per-event middleware (`socket.use` → `use_event`, errors to `on_error`) and outgoing
//! listeners (`onAnyOutgoing`).

use std::sync::{Arc, Mutex};

use ferrio_server::{Ferrio, Message, Socket};
use tokio::net::TcpListener;

use super::client::*;

async fn start(io: &Ferrio) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(io.clone().serve(listener));
    addr
}

async fn joined(addr: std::net::SocketAddr) -> Ws {
    let mut ws = sio(addr, "/socket.io/").await;
    ws.send_text("40").await;
    assert!(ws.text_app().await.starts_with("40{"));
    ws
}

#[tokio::test]
async fn event_middlewares_run_in_order_and_their_errors_stop_the_event() {
    let io = Ferrio::builder().build();
    io.of("/").on_connection(|socket: Socket| async move {
        socket.use_event(|socket, event, args| async move {
            // The first middleware sees every event with its arguments.
            socket.emit("seen", &(event.as_str(), args.len()))?;
            Ok::<(), ferrio_server::EmitError>(())
        });
        socket.use_event(|_socket, event, _args| async move {
            if event == "forbidden" {
                Err("unauthorized event")
            } else {
                Ok(())
            }
        });
        socket.on_error(|socket, message| async move {
            let _ = socket.emit("error-seen", &(message,));
        });
        socket.on("forbidden", |socket: Socket, _m: Message| async move {
            let _ = socket.emit("handled", &("forbidden",));
        });
        socket.on("allowed", |socket: Socket, _m: Message| async move {
            let _ = socket.emit("handled", &("allowed",));
        });
    });
    let addr = start(&io).await;
    let mut ws = joined(addr).await;
    ws.send_text(r#"42["forbidden",1,2]"#).await;
    assert_eq!(ws.text_app().await, r#"42["seen","forbidden",2]"#);
    assert_eq!(
        ws.text_app().await,
        r#"42["error-seen","unauthorized event"]"#
    );
    ws.send_text(r#"42["allowed"]"#).await;
    assert_eq!(ws.text_app().await, r#"42["seen","allowed",0]"#);
    // The refused event's handler never ran: the next thing is the allowed one's.
    assert_eq!(ws.text_app().await, r#"42["handled","allowed"]"#);
}

#[tokio::test]
async fn outgoing_listeners_see_own_emits_and_broadcasts() {
    let io = Ferrio::builder().build();
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let s = seen.clone();
    io.of("/").on_connection(move |socket: Socket| {
        let seen = s.clone();
        async move {
            socket.join("room");
            socket.on_any_outgoing(move |_socket, event, args| {
                seen.lock().unwrap().push(format!("{event}/{}", args.len()));
            });
            let _ = socket.emit("welcome", &(1, 2));
        }
    });
    let addr = start(&io).await;
    let mut ws = joined(addr).await;
    assert_eq!(ws.text_app().await, r#"42["welcome",1,2]"#);
    io.emit("to-all", &("x",)).unwrap();
    assert_eq!(ws.text_app().await, r#"42["to-all","x"]"#);
    io.to("room").emit("to-room", &()).unwrap();
    assert_eq!(ws.text_app().await, r#"42["to-room"]"#);
    io.to("elsewhere").emit("not-here", &()).unwrap();
    assert_eq!(
        seen.lock().unwrap().clone(),
        ["welcome/2", "to-all/1", "to-room/0"]
    );
    let socket = io.of("/").sockets().pop().unwrap();
    socket.off_any_outgoing();
    socket.emit("quiet", &()).unwrap();
    assert_eq!(ws.text_app().await, r#"42["quiet"]"#);
    assert_eq!(seen.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn several_handlers_per_event_run_in_order_and_share_one_ack() {
    let io = Ferrio::builder().build();
    io.of("/").on_connection(|socket: Socket| async move {
        socket.on_any(|socket, event, _args| async move {
            let _ = socket.emit("any-1", &(event,));
        });
        socket.on_any(|socket, event, _args| async move {
            let _ = socket.emit("any-2", &(event,));
        });
        socket.on("multi", |socket: Socket, msg: Message| async move {
            let _ = socket.emit("handler", &(1,));
            msg.ack(&("from-1",))
        });
        socket.on("multi", |socket: Socket, msg: Message| async move {
            let _ = socket.emit("handler", &(2,));
            msg.ack(&("from-2",))
        });
    });
    let addr = start(&io).await;
    let mut ws = joined(addr).await;
    ws.send_text(r#"425["multi"]"#).await;
    assert_eq!(ws.text_app().await, r#"42["any-1","multi"]"#);
    assert_eq!(ws.text_app().await, r#"42["any-2","multi"]"#);
    assert_eq!(ws.text_app().await, r#"42["handler",1]"#);
    assert_eq!(ws.text_app().await, r#"435["from-1"]"#);
    assert_eq!(ws.text_app().await, r#"42["handler",2]"#);
    // The second answer is not sent: the next frame is the next event's.
    io.emit("after", &()).unwrap();
    assert_eq!(ws.text_app().await, r#"42["after"]"#);
}
