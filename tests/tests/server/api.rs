//! The server API used directly (not through the e2e example): typed handlers, server emits with
//! acks and timeouts, broadcasts from outside a handler, disconnect reasons, handler order,
//! middleware reading the handshake, and the tower layer.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use ferrio_server::{
    AckError, AckSender, ConnectError, DisconnectReason, EmitError, Ferrio, FerrioLayer, Message,
    Socket,
};
use http_body_util::{BodyExt, Full};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tower_layer::Layer;
use tower_service::Service;

use super::client::*;

async fn start(
    io: &Ferrio,
) -> (
    std::net::SocketAddr,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (addr, tokio::spawn(io.clone().serve(listener)))
}

fn quick() -> Ferrio {
    Ferrio::builder()
        .ping_interval(Duration::from_millis(300))
        .ping_timeout(Duration::from_millis(200))
        .build()
}

#[derive(serde::Deserialize)]
struct Upload {
    name: String,
    data: Bytes,
}

#[tokio::test]
async fn typed_handlers_and_binary_acks() {
    let io = quick();
    io.of("/").on_connection(|socket: Socket| async move {
        socket.on(
            "upload",
            |_s: Socket, (upload, n): (Upload, u32), ack: AckSender| async move {
                let mut data = upload.data.to_vec();
                data.push(n as u8);
                ack.send(&(upload.name, Bytes::from(data)))
            },
        );
    });
    let (addr, server) = start(&io).await;
    let mut ws = sio(addr, "/socket.io/").await;
    ws.send_text("40").await;
    assert!(ws.text_app().await.starts_with("40{"));
    ws.send_text(r#"451-3["upload",{"name":"a","data":{"_placeholder":true,"num":0}},7]"#)
        .await;
    ws.send_binary(&[1, 2]).await;
    assert_eq!(
        ws.text_app().await,
        r#"461-3["a",{"_placeholder":true,"num":0}]"#
    );
    assert_eq!(&ws.binary_app().await[..], &[1, 2, 7]);
    // Arguments that do not fit are dropped; the connection goes on.
    ws.send_text(r#"424["upload","not an object"]"#).await;
    ws.send_text(r#"451-5["upload",{"name":"b","data":{"_placeholder":true,"num":0}},1]"#)
        .await;
    ws.send_binary(&[]).await;
    assert_eq!(
        ws.text_app().await,
        r#"461-5["b",{"_placeholder":true,"num":0}]"#
    );
    assert_eq!(&ws.binary_app().await[..], &[1]);
    server.abort();
}

#[tokio::test]
async fn server_emit_with_ack_and_timeout() {
    let io = quick();
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    io.of("/").on_connection(move |socket: Socket| {
        let tx = tx.clone();
        async move {
            let answered = socket.emit_with_ack("question", &("q", Bytes::from_static(b"\x01")));
            let timed_out = socket
                .timeout(Duration::from_millis(100))
                .emit_with_ack("ignored", &());
            tokio::spawn(async move {
                let (a,): (String,) = answered.await.unwrap().args().unwrap();
                tx.send(a).unwrap();
                let e = timed_out.await.unwrap_err();
                tx.send(e.to_string()).unwrap();
                assert!(matches!(e, AckError::Timeout));
            });
            assert!(matches!(
                socket.emit("disconnect", &()),
                Err(EmitError::ReservedEvent(_))
            ));
        }
    });
    let (addr, server) = start(&io).await;
    let mut ws = sio(addr, "/socket.io/").await;
    ws.send_text("40").await;
    assert!(ws.text_app().await.starts_with("40{"));
    let question = ws.text_app().await;
    assert!(question.starts_with("451-"), "{question}");
    let id: String = question[4..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    assert_eq!(
        &question[4 + id.len()..],
        r#"["question","q",{"_placeholder":true,"num":0}]"#
    );
    assert_eq!(&ws.binary_app().await[..], &[1]);
    let ignored = ws.text_app().await;
    assert!(ignored.ends_with(r#"["ignored"]"#), "{ignored}");
    ws.send_text(&format!(r#"43{id}["answer"]"#)).await;
    let got = tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, "answer");
    let got = tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, "operation has timed out");
    server.abort();
}

#[tokio::test]
async fn broadcasts_from_outside_handlers_and_disconnect_reasons() {
    let io = quick();
    let (tx, mut rx) = mpsc::unbounded_channel::<(String, DisconnectReason)>();
    io.of("/news").on_connection(move |socket: Socket| {
        let tx = tx.clone();
        async move {
            socket.join("subscribers");
            socket.on_disconnect(move |socket, reason| {
                let tx = tx.clone();
                async move {
                    tx.send((socket.id().to_owned(), reason.reason())).unwrap();
                }
            });
        }
    });
    let (addr, server) = start(&io).await;
    let mut a = sio(addr, "/socket.io/").await;
    let mut b = sio(addr, "/socket.io/").await;
    for ws in [&mut a, &mut b] {
        ws.send_text("40/news,").await;
        assert!(ws.text_app().await.starts_with("40/news,{"));
    }
    // Wait until both sockets ran their connection handler.
    let ns = io.of("/news");
    for _ in 0..100 {
        if ns.sockets().iter().all(|s| s.rooms().len() == 2) && ns.sockets().len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    io.of("/news")
        .to("subscribers")
        .emit("headline", &("x",))
        .unwrap();
    for ws in [&mut a, &mut b] {
        assert_eq!(ws.text_app().await, r#"42/news,["headline","x"]"#);
    }
    // The main namespace has nobody: io.emit reaches no one here.
    io.emit("nobody", &()).unwrap();
    let a_id = ns
        .sockets()
        .into_iter()
        .map(|s| s.id().to_owned())
        .collect::<Vec<_>>();
    a.send_text("41/news,").await;
    let (id, reason) = tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(a_id.contains(&id));
    assert_eq!(reason, DisconnectReason::ClientNamespaceDisconnect);
    drop(b);
    let (_, reason) = tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        reason,
        DisconnectReason::TransportClose | DisconnectReason::TransportError
    ));
    server.abort();
}

#[tokio::test]
async fn handlers_of_one_socket_run_in_order() {
    let io = quick();
    let (tx, mut rx) = mpsc::unbounded_channel::<u64>();
    io.of("/").on_connection(move |socket: Socket| {
        let tx = tx.clone();
        async move {
            socket.on("work", move |_s: Socket, msg: Message| {
                let tx = tx.clone();
                async move {
                    let (n,): (u64,) = msg.args().unwrap();
                    // Earlier events sleep longer: order must still hold.
                    tokio::time::sleep(Duration::from_millis(40 - n * 10)).await;
                    tx.send(n).unwrap();
                }
            });
        }
    });
    let (addr, server) = start(&io).await;
    let mut ws = sio(addr, "/socket.io/").await;
    ws.send_text("40").await;
    assert!(ws.text_app().await.starts_with("40{"));
    for n in 0..4 {
        ws.send_text(&format!(r#"42["work",{n}]"#)).await;
    }
    let mut order = Vec::new();
    for _ in 0..4 {
        order.push(
            tokio::time::timeout(WAIT, rx.recv())
                .await
                .unwrap()
                .unwrap(),
        );
    }
    assert_eq!(order, [0, 1, 2, 3]);
    server.abort();
}

#[tokio::test]
async fn quick_handlers_wait_behind_a_waiting_one_and_their_answers_keep_their_order() {
    // The first event's handler waits; the next ones finish at once. They must still run
    // after it, and what they send reach the client in the order they sent it.
    let io = quick();
    let (tx, mut rx) = mpsc::unbounded_channel::<u64>();
    io.of("/").on_connection(move |socket: Socket| {
        let tx = tx.clone();
        async move {
            socket.on("work", move |s: Socket, msg: Message| {
                let tx = tx.clone();
                async move {
                    let (n,): (u64,) = msg.args().unwrap();
                    if n == 0 {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    tx.send(n).unwrap();
                    s.emit("done", &(n,)).unwrap();
                    msg.ack(&(n,)).unwrap();
                }
            });
        }
    });
    let (addr, server) = start(&io).await;
    let mut ws = sio(addr, "/socket.io/").await;
    ws.send_text("40").await;
    assert!(ws.text_app().await.starts_with("40{"));
    // One write each, a moment apart: each is read alone, not as part of a burst (whose events
    // go to the socket's task anyway), while the first one's handler still waits.
    for frame in [r#"420["work",0]"#, r#"421["work",1]"#, r#"422["work",2]"#] {
        ws.send_text(frame).await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut order = Vec::new();
    for _ in 0..3 {
        order.push(
            tokio::time::timeout(WAIT, rx.recv())
                .await
                .unwrap()
                .unwrap(),
        );
    }
    assert_eq!(order, [0, 1, 2]);
    let mut got = Vec::new();
    for _ in 0..6 {
        got.push(ws.text_app().await);
    }
    assert_eq!(
        got,
        [
            r#"42["done",0]"#,
            r#"430[0]"#,
            r#"42["done",1]"#,
            r#"431[1]"#,
            r#"42["done",2]"#,
            r#"432[2]"#,
        ]
    );
    server.abort();
}

#[tokio::test]
async fn events_sent_right_after_the_connect_wait_for_the_connection_handler() {
    // The connection handler adds the event's handler only after it waited: an event sent as
    // soon as the CONNECT is accepted is still handled by it.
    let io = quick();
    io.of("/").on_connection(|socket: Socket| async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        socket.on("hello", |_s: Socket, msg: Message| async move {
            msg.ack(&("hi",))
        });
    });
    let (addr, server) = start(&io).await;
    let mut ws = sio(addr, "/socket.io/").await;
    ws.send_text("40").await;
    assert!(ws.text_app().await.starts_with("40{"));
    ws.send_text(r#"425["hello"]"#).await;
    let answer = tokio::time::timeout(WAIT, ws.text_app())
        .await
        .expect("the event's ack");
    assert_eq!(answer, r#"435["hi"]"#);
    server.abort();
}

#[tokio::test]
async fn websocket_messages_of_every_header_size_arrive_whole_and_in_order() {
    // Lengths around the frame header's size changes (7-bit, 16-bit and 64-bit lengths), text
    // and binary, many at once: written while the client does not read yet, they fill the
    // socket and are written in parts.
    let io = Ferrio::builder()
        .max_http_buffer_size(10_000_000)
        .ping_interval(Duration::from_secs(30))
        .build();
    const SIZES: [usize; 8] = [0, 1, 125, 126, 65_535, 65_536, 70_000, 1_000_000];
    io.of("/").on_connection(|socket: Socket| async move {
        socket.on("sizes", |s: Socket, _msg: Message| async move {
            for round in 0..3u8 {
                for size in SIZES {
                    // A text message carries its payload after `42["t",` and `]`.
                    s.emit("t", &("y".repeat(size),)).unwrap();
                    s.emit("b", &(Bytes::from(vec![round; size]),)).unwrap();
                }
            }
        });
    });
    let (addr, server) = start(&io).await;
    let mut ws = sio(addr, "/socket.io/").await;
    ws.send_text("40").await;
    assert!(ws.text_app().await.starts_with("40{"));
    ws.send_text(r#"42["sizes"]"#).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    for round in 0..3u8 {
        for size in SIZES {
            let text = ws.text_app().await;
            assert_eq!(text, format!(r#"42["t","{}"]"#, "y".repeat(size)));
            assert_eq!(
                ws.text_app().await,
                r#"451-["b",{"_placeholder":true,"num":0}]"#
            );
            let data = ws.binary_app().await;
            assert_eq!(data.len(), size);
            assert!(data.iter().all(|b| *b == round));
        }
    }
    server.abort();
}

#[tokio::test]
async fn middleware_reads_the_handshake() {
    let io = quick();
    io.of("/")
        .use_connect(|socket: Socket| async move {
            let h = socket.handshake();
            if h.query_param("room") == Some("vip")
                && h.headers().get("x-token").is_some_and(|v| v == "t")
            {
                Ok(())
            } else {
                Err(ConnectError::new("no"))
            }
        })
        .on_connection(|socket: Socket| async move {
            let _ = socket.emit("welcome", &(socket.handshake().address().is_some(),));
        });
    let (addr, server) = start(&io).await;
    let mut ws = sio(addr, "/socket.io/").await;
    ws.send_text("40").await;
    assert_eq!(ws.text_app().await, r#"44{"message":"no"}"#);
    let r = http(
        addr,
        "GET",
        "/socket.io/?EIO=4&transport=polling&room=vip",
        &[("x-token", "t")],
        Bytes::new(),
    )
    .await;
    let sid: serde_json::Value = serde_json::from_slice(&r.body[1..]).unwrap();
    let url = polling("/socket.io/", sid["sid"].as_str().unwrap());
    assert_eq!(post(addr, &url, "40").await.status, 200);
    let mut seen = Vec::new();
    while seen.len() < 2 {
        seen.extend(records(&get(addr, &url).await.body));
    }
    assert!(seen[0].starts_with("40{"), "{seen:?}");
    assert_eq!(seen[1], r#"42["welcome",true]"#);
    server.abort();
}

/// A stand-in for the rest of an application (an axum router, say).
#[derive(Clone)]
struct Fallback;

impl Service<http::Request<Full<Bytes>>> for Fallback {
    type Response = http::Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _req: http::Request<Full<Bytes>>) -> Self::Future {
        Box::pin(async { Ok(http::Response::new(Full::new(Bytes::from_static(b"app")))) })
    }
}

#[tokio::test]
async fn the_layer_routes_by_path() {
    let io = Ferrio::builder().build();
    let mut svc = FerrioLayer::new(io.clone()).layer(Fallback);
    let req = http::Request::get("/index.html")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let res = svc.call(req).await.unwrap();
    assert_eq!(
        &res.into_body().collect().await.unwrap().to_bytes()[..],
        b"app"
    );
    let req = http::Request::get("/socket.io/?EIO=4&transport=polling")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let res = svc.call(req).await.unwrap();
    assert_eq!(res.status(), 200);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert!(body.starts_with(b"0{\"sid\":"));
    assert_eq!(io.session_count(), 1);
}

#[tokio::test]
async fn close_ends_every_connection() {
    let io = quick();
    let (tx, mut rx) = mpsc::unbounded_channel::<DisconnectReason>();
    io.of("/").on_connection(move |socket: Socket| {
        let tx = tx.clone();
        async move {
            socket.on_disconnect(move |_socket, reason| {
                let tx = tx.clone();
                async move {
                    tx.send(reason.reason()).unwrap();
                }
            });
        }
    });
    let (addr, server) = start(&io).await;
    let mut ws = sio(addr, "/socket.io/").await;
    ws.send_text("40").await;
    assert!(ws.text_app().await.starts_with("40{"));
    let sid = handshake(addr, "/socket.io/").await;
    assert_eq!(io.session_count(), 2);
    // `close()` returns once every session has ended: the polling one ends when its close
    // packet is delivered (or its heartbeat runs out), so the client polls meanwhile.
    let closing = tokio::spawn({
        let io = io.clone();
        async move { io.close().await }
    });
    // No DISCONNECT: the transport just closes.
    assert!(ws.closed_within(Duration::from_secs(1), false).await);
    let reason = tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reason, DisconnectReason::ServerShuttingDown);
    // The polling client gets the close packet with its next GET.
    assert_eq!(get(addr, &polling("/socket.io/", &sid)).await.text(), "1");
    tokio::time::timeout(WAIT, closing).await.unwrap().unwrap();
    assert_eq!(io.session_count(), 0);
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_clients_come_and_go_without_leaks() {
    let io = quick();
    io.of("/").on_connection(|socket: Socket| async move {
        socket.join("all");
        socket.on("shout", |socket: Socket, msg: Message| async move {
            let (n,): (u32,) = msg.args()?;
            socket.to("all").emit("heard", &(n,))?;
            msg.ack(&())?;
            Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
        });
    });
    let (addr, server) = start(&io).await;
    let mut clients = Vec::new();
    for _ in 0..60 {
        let mut ws = sio(addr, "/socket.io/").await;
        ws.send_text("40").await;
        assert!(ws.text_app().await.starts_with("40{"));
        clients.push(ws);
    }
    let polling_sids: Vec<String> = {
        let mut sids = Vec::new();
        for _ in 0..20 {
            let sid = handshake(addr, "/socket.io/").await;
            assert_eq!(
                post(addr, &polling("/socket.io/", &sid), "40").await.status,
                200
            );
            sids.push(sid);
        }
        sids
    };
    let ns = io.of("/");
    for _ in 0..200 {
        if ns.sockets().len() == 80 && ns.sockets().iter().all(|s| s.rooms().len() == 2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(ns.sockets().len(), 80);
    // Every WebSocket client shouts once; each hears the 59 others.
    for (i, ws) in clients.iter_mut().enumerate() {
        ws.send_text(&format!(r#"42{i}["shout",{i}]"#)).await;
    }
    for ws in clients.iter_mut() {
        let mut heard = 0;
        let mut acked = false;
        while heard < 59 || !acked {
            let text = ws.text_app().await;
            if text.starts_with(r#"42["heard","#) {
                heard += 1;
            } else if text.starts_with("43") {
                acked = true;
            }
        }
    }
    drop(clients);
    drop(polling_sids);
    // Polling clients that stop polling are gone after the ping timeout.
    for _ in 0..300 {
        if io.session_count() == 0 && ns.sockets().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(io.session_count(), 0);
    assert!(ns.sockets().is_empty());
    server.abort();
}

#[tokio::test]
async fn catch_all_data_and_operations_on_selected_sockets() {
    let io = quick();
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    #[derive(Clone)]
    struct Nick(String);
    io.of("/").on_connection(move |socket: Socket| {
        let tx = tx.clone();
        async move {
            let nick = socket.handshake().auth_raw().as_str().to_owned();
            socket.insert_data(Nick(nick));
            socket.on_any(move |socket, event, args| {
                let tx = tx.clone();
                async move {
                    let nick = socket.data::<Nick>().map(|n| n.0).unwrap_or_default();
                    tx.send(format!("{nick} {event} {}", args.len())).unwrap();
                }
            });
        }
    });
    let (addr, server) = start(&io).await;
    let mut a = sio(addr, "/socket.io/").await;
    a.send_text(r#"40{"n":"a"}"#).await;
    assert!(a.text_app().await.starts_with("40{"));
    let mut b = sio(addr, "/socket.io/").await;
    b.send_text(r#"40{"n":"b"}"#).await;
    assert!(b.text_app().await.starts_with("40{"));
    a.send_text(r#"42["anything",1,2]"#).await;
    let got = tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, r#"{"n":"a"} anything 2"#);

    let ns = io.of("/");
    for _ in 0..100 {
        if ns.sockets().len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    ns.sockets_join("everyone");
    assert_eq!(ns.to("everyone").sockets().len(), 2);
    ns.to("everyone").emit("hello", &()).unwrap();
    assert_eq!(a.text_app().await, r#"42["hello"]"#);
    assert_eq!(b.text_app().await, r#"42["hello"]"#);
    ns.sockets_leave("everyone");
    assert!(ns.to("everyone").sockets().is_empty());
    ns.disconnect_sockets(false);
    assert_eq!(a.text_app().await, "41");
    assert_eq!(b.text_app().await, "41");
    server.abort();
}

#[tokio::test]
async fn mounted_in_an_axum_router() {
    let io = quick();
    io.of("/").on_connection(|socket: Socket| async move {
        let _ = socket.emit("hi", &());
    });
    // As a layer in front of the routes, and the routes still answer.
    let app = axum::Router::new()
        .route("/", axum::routing::get(|| async { "index" }))
        .layer(FerrioLayer::new(io.clone()));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    assert_eq!(get(addr, "/").await.text(), "index");
    let sid = handshake(addr, "/socket.io/").await;
    assert_eq!(sid.len(), 20);
    // WebSocket through axum (hyper's upgrade goes through the layer).
    let mut ws = sio(addr, "/socket.io/").await;
    ws.send_text("40").await;
    assert!(ws.text_app().await.starts_with("40{"));
    assert_eq!(ws.text_app().await, r#"42["hi"]"#);
    server.abort();

    // As a fallback service.
    let app = axum::Router::new()
        .route("/", axum::routing::get(|| async { "index" }))
        .fallback_service(io.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    assert_eq!(get(addr, "/").await.text(), "index");
    assert_eq!(get(addr, "/elsewhere").await.status, 404);
    let mut ws = sio(addr, "/socket.io/").await;
    ws.send_text("40").await;
    assert!(ws.text_app().await.starts_with("40{"));
    server.abort();
}

#[tokio::test]
async fn broadcast_with_acks_and_dynamic_namespaces() {
    let io = quick();
    io.of_dynamic(|name| name.starts_with("/room-"))
        .on_connection(|socket: Socket| async move {
            let _ = socket.emit("welcome", &(socket.nsp(),));
        });
    let (addr, server) = start(&io).await;
    let mut a = sio(addr, "/socket.io/").await;
    let mut b = sio(addr, "/socket.io/").await;
    for ws in [&mut a, &mut b] {
        ws.send_text("40/room-7,").await;
        assert!(ws.text_app().await.starts_with("40/room-7,{"));
        assert_eq!(ws.text_app().await, r#"42/room-7,["welcome","/room-7"]"#);
    }
    a.send_text("40/other,").await;
    assert_eq!(
        a.text_app().await,
        r#"44/other,{"message":"Invalid namespace"}"#
    );

    let ns = io.of("/room-7");
    let replies = ns
        .except("nobody")
        .timeout(Duration::from_millis(300))
        .emit_with_ack("vote", &(1,));
    let replies = tokio::spawn(replies);
    let ask_a = a.text_app().await;
    let ask_b = b.text_app().await;
    assert_eq!(ask_a, ask_b, "one packet, one ack id for all");
    let id: String = ask_a["42/room-7,".len()..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    a.send_text(&format!(r#"43/room-7,{id}["yes"]"#)).await;
    let replies = replies.await.unwrap().unwrap();
    assert_eq!(replies.len(), 2);
    let answered: Vec<String> = replies
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(|r| r.args::<(String,)>().unwrap().0)
        .collect();
    assert_eq!(answered, ["yes"]);
    assert!(replies.iter().any(|r| matches!(r, Err(AckError::Timeout))));
    server.abort();
}

#[tokio::test]
async fn allow_request_refuses_handshakes_with_403() {
    let io = Ferrio::builder()
        .allow_request(|req: http::Request<()>| async move {
            match req.headers().get("x-key") {
                Some(v) if v == "ok" => Ok(()),
                _ => Err("go away".to_owned()),
            }
        })
        .build();
    let (addr, server) = start(&io).await;
    let r = get(addr, "/socket.io/?EIO=4&transport=polling").await;
    assert_eq!(r.status, 403);
    assert_eq!(r.text(), r#"{"code":4,"message":"go away"}"#);
    assert!(ws(addr, "/socket.io/?EIO=4&transport=websocket")
        .await
        .is_err());
    let r = http(
        addr,
        "GET",
        "/socket.io/?EIO=4&transport=polling",
        &[("x-key", "ok")],
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 200);
    server.abort();
}

#[tokio::test]
async fn volatile_emits_reach_a_writable_client() {
    let io = quick();
    io.of("/").on_connection(|socket: Socket| async move {
        socket.volatile().emit("tick", &(1,)).unwrap();
    });
    let (addr, server) = start(&io).await;
    let mut ws = sio(addr, "/socket.io/").await;
    ws.send_text("40").await;
    assert!(ws.text_app().await.starts_with("40{"));
    assert_eq!(ws.text_app().await, r#"42["tick",1]"#);
    // A polling client with no GET pending is not writable: the volatile event is dropped.
    let sid = handshake(addr, "/socket.io/").await;
    let url = polling("/socket.io/", &sid);
    assert_eq!(post(addr, &url, "40").await.status, 200);
    let got = records(&get(addr, &url).await.body);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].starts_with("40{"));
    server.abort();
}

#[tokio::test]
async fn a_burst_of_events_waits_for_a_slow_handler_and_keeps_its_order() {
    let io = quick();
    let (tx, mut rx) = mpsc::unbounded_channel();
    io.of("/").on_connection(move |socket: Socket| {
        let tx = tx.clone();
        async move {
            socket.on("n", move |_s: Socket, (n,): (u32,), _ack: AckSender| {
                let tx = tx.clone();
                async move {
                    if n == 0 {
                        // Everything else arrives meanwhile: far more than the socket's queue.
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    let _ = tx.send(n);
                }
            });
        }
    });
    let (addr, _server) = start(&io).await;
    let mut ws = sio(addr, "/socket.io/").await;
    ws.send_text("40").await;
    assert!(ws.text_app().await.starts_with("40{"));
    let frames: Vec<String> = (0..2000).map(|n| format!("42[\"n\",{n}]")).collect();
    let frames: Vec<&str> = frames.iter().map(String::as_str).collect();
    ws.send_texts(&frames).await;
    for n in 0..2000 {
        let got = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("handled in time");
        assert_eq!(got, Some(n));
    }
    // The connection is still open.
    io.emit("still-here", &()).unwrap();
    assert_eq!(ws.text_app().await, r#"42["still-here"]"#);
}

#[tokio::test]
async fn events_piling_up_past_the_bound_close_only_that_connection() {
    let io = Ferrio::builder().max_http_buffer_size(2_000).build();
    io.of("/").on_connection(|socket: Socket| async move {
        socket.on("block", |_s: Socket, _m: Message| async move {
            // A handler that never finishes: nothing is taken from the socket's queue.
            std::future::pending::<()>().await;
        });
        socket.on("ping", |_s: Socket, msg: Message| async move {
            msg.ack(&("pong",))
        });
    });
    let (addr, _server) = start(&io).await;
    let mut first = sio(addr, "/socket.io/").await;
    first.send_text("40").await;
    assert!(first.text_app().await.starts_with("40{"));
    first.send_text(r#"421["ping"]"#).await;
    assert_eq!(first.text_app().await, r#"431["pong"]"#);
    let mut stuck = sio(addr, "/socket.io/").await;
    stuck.send_text("40").await;
    assert!(stuck.text_app().await.starts_with("40{"));
    // 256 in the queue, then 10 × 2 000 bytes waiting: 600 events of ~100 bytes pass both.
    let filler = "x".repeat(90);
    let frames: Vec<String> = (0..600)
        .map(|_| format!("42[\"block\",\"{filler}\"]"))
        .collect();
    let frames: Vec<&str> = frames.iter().map(String::as_str).collect();
    stuck.send_texts(&frames).await;
    assert!(stuck.closed_within(Duration::from_secs(5), true).await);
    // Another client is served as before.
    let mut other = sio(addr, "/socket.io/").await;
    other.send_text("40").await;
    assert!(other.text_app().await.starts_with("40{"));
    other.send_text(r#"421["ping"]"#).await;
    assert_eq!(other.text_app().await, r#"431["pong"]"#);
}

#[tokio::test]
async fn commands_piling_up_past_the_bound_close_only_that_connection() {
    let io = Ferrio::builder().build();
    io.of("/").on_connection(|socket: Socket| async move {
        socket.on("flood", |socket: Socket, _m: Message| async move {
            // From another task, without yielding: the session takes none of them meanwhile,
            // and its queue (1024 commands) fills.
            tokio::spawn(async move {
                for n in 0..3000 {
                    let _ = socket.emit("n", &(n,));
                }
            });
        });
        socket.on("ping", |_s: Socket, msg: Message| async move {
            msg.ack(&("pong",))
        });
    });
    let (addr, _server) = start(&io).await;
    let mut flooded = sio(addr, "/socket.io/").await;
    flooded.send_text("40").await;
    assert!(flooded.text_app().await.starts_with("40{"));
    flooded.send_text(r#"42["flood"]"#).await;
    assert!(flooded.closed_within(Duration::from_secs(5), true).await);
    let mut other = sio(addr, "/socket.io/").await;
    other.send_text("40").await;
    assert!(other.text_app().await.starts_with("40{"));
    other.send_text(r#"421["ping"]"#).await;
    assert_eq!(other.text_app().await, r#"431["pong"]"#);
}

/// The README's quick start (`crates/ferrio-server/examples/axum_chat.rs`), compiled in here.
#[allow(dead_code)]
#[path = "../../../crates/ferrio-server/examples/axum_chat.rs"]
mod axum_chat;

/// The JSON arguments of an event or ack frame, after its `<type><nsp>,<id>` prefix.
fn frame_args(frame: &str, prefix: &str) -> serde_json::Value {
    assert!(
        frame.starts_with(prefix),
        "{frame} does not start with {prefix}"
    );
    serde_json::from_str(&frame[prefix.len()..]).expect("json arguments")
}

#[tokio::test]
async fn the_axum_quick_start_serves_its_route_and_a_chat_room() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, axum_chat::app()).await });
    assert_eq!(get(addr, "/").await.text(), "Hello! Socket.IO is at /chat");

    // ann names herself in the CONNECT packet, bob with a `nick` event, carol not at all.
    let mut ann = sio(addr, "/socket.io/").await;
    ann.send_text(r#"40/chat,{"nick":"ann"}"#).await;
    assert!(ann.text_app().await.starts_with("40/chat,{"));
    let mut bob = sio(addr, "/socket.io/").await;
    bob.send_text("40/chat,").await;
    assert!(bob.text_app().await.starts_with("40/chat,{"));
    bob.send_text(r#"42/chat,["nick","bob"]"#).await;
    let mut carol = sio(addr, "/socket.io/").await;
    carol.send_text("40/chat,").await;
    assert!(carol.text_app().await.starts_with("40/chat,{"));

    // join with ack; the room hears who joined.
    ann.send_text(r#"42/chat,1["join","lobby"]"#).await;
    assert_eq!(
        frame_args(&ann.text_app().await, "43/chat,1"),
        serde_json::json!([{"room": "lobby", "members": 1}])
    );
    bob.send_text(r#"42/chat,7["join","lobby"]"#).await;
    assert_eq!(
        frame_args(&bob.text_app().await, "43/chat,7"),
        serde_json::json!([{"room": "lobby", "members": 2}])
    );
    assert_eq!(ann.text_app().await, r#"42/chat,["joined","bob"]"#);

    // typing and message reach the others in the room, not the sender.
    bob.send_text(r#"42/chat,["typing","lobby"]"#).await;
    assert_eq!(ann.text_app().await, r#"42/chat,["typing","bob"]"#);
    bob.send_text(r#"42/chat,["message","lobby","hi ann"]"#)
        .await;
    assert_eq!(
        frame_args(&ann.text_app().await, "42/chat,"),
        serde_json::json!(["message", {"from": "bob", "room": "lobby", "text": "hi ann"}])
    );
    ann.send_text(r#"42/chat,["message","lobby","hi bob"]"#)
        .await;
    assert_eq!(
        frame_args(&bob.text_app().await, "42/chat,"),
        serde_json::json!(["message", {"from": "ann", "room": "lobby", "text": "hi bob"}])
    );
    // carol is not in the room: her message is dropped; once in, she is "anonymous".
    carol
        .send_text(r#"42/chat,["message","lobby","let me in"]"#)
        .await;
    carol.send_text(r#"42/chat,2["join","lobby"]"#).await;
    assert_eq!(
        frame_args(&carol.text_app().await, "43/chat,2"),
        serde_json::json!([{"room": "lobby", "members": 3}])
    );
    assert_eq!(ann.text_app().await, r#"42/chat,["joined","anonymous"]"#);
    assert_eq!(bob.text_app().await, r#"42/chat,["joined","anonymous"]"#);
    // bob heard nothing else meanwhile: neither his own events nor carol's dropped message.
    bob.send_text(r#"42/chat,3["join","lobby"]"#).await;
    assert_eq!(
        frame_args(&bob.text_app().await, "43/chat,3"),
        serde_json::json!([{"room": "lobby", "members": 3}])
    );
    server.abort();
}

#[test]
fn the_readme_quick_start_is_the_axum_chat_example() {
    let readme = include_str!("../../../README.md");
    let example = include_str!("../../../crates/ferrio-server/examples/axum_chat.rs");
    // The example without its header comment.
    let code = &example[example.find("use ferrio_server").unwrap()..];
    assert!(
        readme.contains(&format!("```rust\n{code}```\n")),
        "README.md's Quick start differs from examples/axum_chat.rs"
    );
}

#[tokio::test]
async fn pending_acks_are_bounded_per_socket() {
    // A client that never answers: past `max_pending_acks` acks waiting on its socket, the next
    // emit asking for one fails at once and is not sent; the connection stays up, and an
    // answer makes room again.
    const CAP: usize = 4;
    let io = Ferrio::builder()
        .ping_interval(Duration::from_millis(300))
        .ping_timeout(Duration::from_millis(200))
        .max_pending_acks(CAP)
        .build();
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    io.of("/").on_connection(move |socket: Socket| {
        let tx = tx.clone();
        async move {
            // No timeout: without the bound these would wait for ever.
            let mut waiting: Vec<_> = (0..CAP)
                .map(|i| socket.emit_with_ack("ask", &(i,)))
                .collect();
            let over = socket.emit_with_ack("ask", &(CAP,));
            let first = waiting.remove(0);
            let socket = socket.clone();
            tokio::spawn(async move {
                let e = over.await.unwrap_err();
                assert!(
                    matches!(e, AckError::Emit(EmitError::TooManyPendingAcks)),
                    "{e:?}"
                );
                tx.send(format!("over: {e}")).unwrap();
                let (answer,): (String,) = first.await.unwrap().args().unwrap();
                tx.send(format!("first: {answer}")).unwrap();
                // One answered: room for one more.
                let again = socket.emit_with_ack("ask", &(CAP + 1,));
                tx.send(format!("connected: {}", socket.connected()))
                    .unwrap();
                let (answer,): (String,) = again.await.unwrap().args().unwrap();
                tx.send(format!("again: {answer}")).unwrap();
                drop(waiting);
            });
        }
    });
    let (addr, server) = start(&io).await;
    let mut ws = sio(addr, "/socket.io/").await;
    ws.send_text("40").await;
    assert!(ws.text_app().await.starts_with("40{"));
    let mut ids = Vec::new();
    for i in 0..CAP {
        let ask = ws.text_app().await;
        let id: String = ask[2..].chars().take_while(char::is_ascii_digit).collect();
        assert_eq!(&ask[2 + id.len()..], format!(r#"["ask",{i}]"#), "{ask}");
        ids.push(id);
    }
    assert_eq!(next(&mut rx).await, "over: too many pending acks");
    ws.send_text(&format!(r#"43{}["yes"]"#, ids[0])).await;
    assert_eq!(next(&mut rx).await, "first: yes");
    assert_eq!(next(&mut rx).await, "connected: true");
    // The refused emit never went out: the next event is the one after it.
    let ask = ws.text_app().await;
    let id: String = ask[2..].chars().take_while(char::is_ascii_digit).collect();
    assert_eq!(
        &ask[2 + id.len()..],
        format!(r#"["ask",{}]"#, CAP + 1),
        "{ask}"
    );
    ws.send_text(&format!(r#"43{id}["again"]"#)).await;
    assert_eq!(next(&mut rx).await, "again: again");
    server.abort();
}

async fn next(rx: &mut mpsc::UnboundedReceiver<String>) -> String {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap()
        .unwrap()
}
