//! The reference's listener and emit API on the server: `once`, removing one listener by the
//! id its registration returned, listener counts, `prependAny` and the outgoing variants;
//! joining, leaving and addressing several rooms at once; the main namespace's operations on
//! the server itself; the broadcast with acks answering as `emitWithAck` does; the rooms of a
//! namespace; an event's several handlers in order; `send`, and `socketsJoin` of a broadcast
//! to several rooms.

mod common;

use std::time::Duration;

use common::{patiently, serve, RawWs};
use ferrio_server::{AckError, ConnectError, Ferrio, Message, Socket};
use serde_json::Value;
use tokio::sync::mpsc;

/// Connects a client to `/` and returns it with its socket id.
async fn connect(addr: std::net::SocketAddr) -> (RawWs, String) {
    let mut ws = RawWs::open(addr).await;
    ws.send("40").await;
    let accept = ws.recv().await;
    let json: Value = serde_json::from_str(
        accept
            .strip_prefix("40")
            .unwrap_or_else(|| panic!("not an accept: {accept}")),
    )
    .expect("accept JSON");
    let id = json["sid"].as_str().expect("sid").to_owned();
    (ws, id)
}

/// The ack id and event of `42<id>[...]`.
fn ack_id(text: &str) -> (u64, String) {
    let rest = text
        .strip_prefix("42")
        .unwrap_or_else(|| panic!("not an event: {text}"));
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let args: Value = serde_json::from_str(&rest[digits.len()..]).expect("event JSON");
    (
        digits.parse().expect("an ack id"),
        args[0].as_str().expect("event name").to_owned(),
    )
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test]
async fn once_runs_once_and_one_handler_can_be_removed() {
    let io = Ferrio::builder().build();
    io.on_connection(|socket: Socket| async move {
        let first = socket.on("ping", |s: Socket, _m: Message| async move {
            let _ = s.emit("first", &());
        });
        socket.on("ping", |s: Socket, _m: Message| async move {
            let _ = s.emit("second", &());
        });
        socket.once("hello", |s: Socket, _m: Message| async move {
            let _ = s.emit("once", &());
        });
        let before = (socket.listeners("ping"), socket.listeners("hello"));
        let removed = socket.off_listener("ping", first);
        let again = socket.off_listener("ping", first);
        let _ = socket.emit(
            "counts",
            &(before, removed, again, socket.listeners("ping"), {
                sorted(socket.event_names())
            }),
        );
    });
    let addr = serve(io).await;
    let (mut ws, _) = connect(addr).await;
    assert_eq!(
        ws.recv().await,
        r#"42["counts",[2,1],true,false,1,["hello","ping"]]"#
    );
    ws.send(r#"42["hello"]"#).await;
    ws.send(r#"42["hello"]"#).await;
    ws.send(r#"42["ping"]"#).await;
    // The once handler ran for the first "hello" only; the removed handler never ran.
    assert_eq!(ws.recv().await, r#"42["once"]"#);
    assert_eq!(ws.recv().await, r#"42["second"]"#);
}

/// A handler's failure.
fn fail(why: &str) {
    panic!("{why}");
}

/// An event's handlers run one after the other and in order whether each finishes at once,
/// waits or panics, answer the event's ack once, and the socket's next event waits for them.
#[tokio::test]
async fn an_event_s_handlers_run_in_order_when_one_waits_or_panics() {
    let io = Ferrio::builder().build();
    io.on_connection(|socket: Socket| async move {
        socket.on("multi", |s: Socket, msg: Message| async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let _ = s.emit("handler", &(1,));
            let _ = msg.ack(&("from-1",));
        });
        socket.on("multi", |s: Socket, _msg: Message| async move {
            let _ = s.emit("handler", &(2,));
            fail("the second handler panics after the first waited");
        });
        socket.on("multi", |s: Socket, msg: Message| async move {
            let _ = s.emit("handler", &(3,));
            let _ = msg.ack(&("from-3",));
        });
        socket.on("boom", |s: Socket, _msg: Message| async move {
            let _ = s.emit("boom", &());
            fail("the first handler panics at once");
        });
        socket.on("boom", |_s: Socket, msg: Message| async move {
            let _ = msg.ack(&("after-boom",));
        });
        socket.on("quick", |_s: Socket, msg: Message| async move {
            let _ = msg.ack(&("quick",));
        });
    });
    let addr = serve(io).await;
    let (mut ws, _) = connect(addr).await;
    ws.send(r#"425["multi"]"#).await;
    ws.send(r#"426["quick"]"#).await;
    ws.send(r#"427["boom"]"#).await;
    assert_eq!(ws.recv().await, r#"42["handler",1]"#);
    assert_eq!(ws.recv().await, r#"435["from-1"]"#);
    assert_eq!(ws.recv().await, r#"42["handler",2]"#);
    // The third handler ran; its answer is not sent, the event had one.
    assert_eq!(ws.recv().await, r#"42["handler",3]"#);
    assert_eq!(ws.recv().await, r#"436["quick"]"#);
    assert_eq!(ws.recv().await, r#"42["boom"]"#);
    assert_eq!(ws.recv().await, r#"437["after-boom"]"#);
}

#[tokio::test]
async fn once_is_gone_after_it_ran_and_remove_all_listeners_clears() {
    let (tx, mut seen) = mpsc::unbounded_channel::<(usize, usize, usize)>();
    let io = Ferrio::builder().build();
    io.on_connection(move |socket: Socket| {
        let tx = tx.clone();
        async move {
            socket.once("hello", move |s: Socket, _m: Message| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send((s.listeners("hello"), 0, 0));
                    s.on("a", |_s: Socket, _m: Message| async {});
                    s.on("b", |_s: Socket, _m: Message| async {});
                    s.remove_all_listeners(Some("a"));
                    let after_one = (s.listeners("a"), s.listeners("b"));
                    s.remove_all_listeners(None);
                    let _ = tx.send((after_one.0, after_one.1, s.event_names().len()));
                }
            });
        }
    });
    let addr = serve(io).await;
    let (ws, _) = connect(addr).await;
    ws.send(r#"42["hello"]"#).await;
    assert_eq!(patiently("once", seen.recv()).await, Some((0, 0, 0)));
    assert_eq!(patiently("counts", seen.recv()).await, Some((0, 1, 0)));
}

#[tokio::test]
async fn catch_all_listeners_prepend_and_remove_one() {
    let io = Ferrio::builder().build();
    io.on_connection(|socket: Socket| async move {
        socket.on_any(|s, _event, _args| async move {
            let _ = s.emit("any-1", &());
        });
        socket.prepend_any(|s, _event, _args| async move {
            let _ = s.emit("any-0", &());
        });
        let third = socket.on_any(|s, _event, _args| async move {
            let _ = s.emit("any-2", &());
        });
        let counts = (socket.listeners_any(), socket.off_any_listener(third));
        let _ = socket.emit("counts", &(counts.0, counts.1, socket.listeners_any()));
    });
    let addr = serve(io).await;
    let (mut ws, _) = connect(addr).await;
    assert_eq!(ws.recv().await, r#"42["counts",3,true,2]"#);
    ws.send(r#"42["x"]"#).await;
    assert_eq!(ws.recv().await, r#"42["any-0"]"#);
    assert_eq!(ws.recv().await, r#"42["any-1"]"#);
    // Then nothing else for "x": the next message is the answer to "y".
    ws.send(r#"42["y"]"#).await;
    assert_eq!(ws.recv().await, r#"42["any-0"]"#);
}

#[tokio::test]
async fn outgoing_listeners_prepend_and_remove_one() {
    let (tx, mut seen) = mpsc::unbounded_channel::<String>();
    let io = Ferrio::builder().build();
    io.on_connection(move |socket: Socket| {
        let tx = tx.clone();
        async move {
            let (t1, t2) = (tx.clone(), tx.clone());
            let first = socket.on_any_outgoing(move |_s, event, _args| {
                let _ = t1.send(format!("first:{event}"));
            });
            socket.prepend_any_outgoing(move |_s, event, _args| {
                let _ = t2.send(format!("prepended:{event}"));
            });
            let _ = socket.emit("both", &());
            let removed = socket.off_any_outgoing_listener(first);
            let _ = tx.send(format!(
                "removed:{removed},left:{}",
                socket.listeners_any_outgoing()
            ));
            let _ = socket.emit("one", &());
            socket.off_any_outgoing();
            let _ = tx.send(format!("left:{}", socket.listeners_any_outgoing()));
        }
    });
    let addr = serve(io).await;
    let (_ws, _) = connect(addr).await;
    let mut got = Vec::new();
    for _ in 0..5 {
        got.push(patiently("outgoing", seen.recv()).await.unwrap());
    }
    assert_eq!(
        got,
        [
            "prepended:both",
            "first:both",
            "removed:true,left:1",
            "prepended:one",
            "left:0"
        ]
    );
}

#[tokio::test]
async fn several_rooms_at_once() {
    let io = Ferrio::builder().build();
    let addr = serve(io.clone()).await;
    let (mut a, a_id) = connect(addr).await;
    let (mut b, b_id) = connect(addr).await;
    let ns = io.of("/");
    let sa = ns.socket(&a_id).expect("a");
    let sb = ns.socket(&b_id).expect("b");
    sa.join(["r1", "r2", "r3"]);
    sa.leave_rooms(vec!["r2".to_owned(), "r3".to_owned()]);
    sb.join(String::from("r4"));
    assert_eq!(
        sorted(sa.rooms()),
        sorted(vec![a_id.clone(), "r1".to_owned()])
    );
    let rooms = sorted(ns.rooms());
    let mut expected = vec![a_id.clone(), b_id.clone(), "r1".into(), "r4".into()];
    expected.sort();
    assert_eq!(rooms, expected);

    io.to(["r1", "r4"]).emit("both", &()).unwrap();
    assert_eq!(a.recv().await, r#"42["both"]"#);
    assert_eq!(b.recv().await, r#"42["both"]"#);
    io.except(["r1", "nowhere"]).emit("not-r1", &()).unwrap();
    io.in_("r2").emit("r2", &()).unwrap();
    io.emit("all", &()).unwrap();
    // a left r2 and is in r1: it gets only "all".
    assert_eq!(a.recv().await, r#"42["all"]"#);
    assert_eq!(b.recv().await, r#"42["not-r1"]"#);
    assert_eq!(b.recv().await, r#"42["all"]"#);
    // A socket's broadcast to several rooms leaves the socket out.
    sb.join(["r1"]);
    sa.to(vec!["r1", "r4"]).emit("from-a", &()).unwrap();
    sa.in_("r1")
        .except(b_id.as_str())
        .emit("skipped", &())
        .unwrap();
    io.emit("end", &()).unwrap();
    assert_eq!(b.recv().await, r#"42["from-a"]"#);
    assert_eq!(b.recv().await, r#"42["end"]"#);
    assert_eq!(a.recv().await, r#"42["end"]"#);

    // The namespace's and the server's socketsJoin/socketsLeave take several rooms too.
    io.sockets_join(["x", "y"]);
    ns.sockets_leave(["y"].as_slice());
    assert_eq!(
        sorted(sb.rooms()),
        sorted(vec![b_id.clone(), "r1".into(), "r4".into(), "x".into()])
    );
    assert!(!ns.rooms().contains(&"y".to_owned()));
}

#[tokio::test]
async fn the_server_itself_is_the_main_namespace() {
    let (tx, mut connected) = mpsc::unbounded_channel::<String>();
    let io = Ferrio::builder().build();
    io.use_connect(|socket: Socket| async move {
        match socket.handshake().auth_raw().to_value() {
            Ok(Value::Object(auth)) if auth.contains_key("ok") => Ok(()),
            _ => Err(ConnectError::new("no")),
        }
    })
    .on_connection(move |socket: Socket| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(socket.id().to_owned());
        }
    });
    let addr = serve(io.clone()).await;

    let mut refused = RawWs::open(addr).await;
    refused.send("40").await;
    assert_eq!(refused.recv().await, r#"44{"message":"no"}"#);

    let mut ws = RawWs::open(addr).await;
    ws.send(r#"40{"ok":1}"#).await;
    assert!(ws.recv().await.starts_with("40{"));
    let id = patiently("connection", connected.recv()).await.unwrap();

    io.sockets_join(["a", "b"]);
    io.sockets_leave("a");
    let remote = patiently("fetch", io.fetch_sockets()).await.unwrap();
    assert_eq!(remote.len(), 1);
    assert_eq!(
        sorted(remote[0].rooms().to_vec()),
        sorted(vec![id.clone(), "b".into()])
    );
    // A fetched socket joins and leaves several rooms at once too.
    remote[0].join(["c", "d", "e"]);
    remote[0].leave(vec!["b", "d"]);
    let socket = io.of("/").socket(&id).expect("connected");
    assert_eq!(
        sorted(socket.rooms()),
        sorted(vec![id.clone(), "c".into(), "e".into()])
    );
    remote[0].leave(["c", "e"]);
    remote[0].join("b");

    io.volatile().emit("volatile", &()).unwrap();
    io.local().emit("local", &()).unwrap();
    io.in_("b").emit("in-b", &()).unwrap();
    io.except("b").emit("not-b", &()).unwrap();
    io.to("b").emit("to-b", &()).unwrap();
    // A volatile packet may be dropped if the transport is busy; an idle one takes it.
    assert_eq!(ws.recv().await, r#"42["volatile"]"#);
    assert_eq!(ws.recv().await, r#"42["local"]"#);
    assert_eq!(ws.recv().await, r#"42["in-b"]"#);
    assert_eq!(ws.recv().await, r#"42["to-b"]"#);

    io.disconnect_sockets(false);
    assert_eq!(ws.recv().await, "41");
}

#[tokio::test]
async fn a_broadcast_with_acks_answers_as_emit_with_ack() {
    let io = Ferrio::builder().build();
    let addr = serve(io.clone()).await;
    let (mut a, _) = connect(addr).await;
    let (mut b, _) = connect(addr).await;

    // Everyone answers: the answers, one per client.
    let all = tokio::spawn(
        io.timeout(Duration::from_secs(20))
            .emit_with_ack_all("poll", &()),
    );
    for (ws, vote) in [(&mut a, "yes"), (&mut b, "no")] {
        let (id, event) = ack_id(&ws.recv().await);
        assert_eq!(event, "poll");
        ws.send(&format!(r#"43{id}["{vote}"]"#)).await;
    }
    let replies = patiently("answers", all)
        .await
        .unwrap()
        .expect("all answered");
    let votes: Vec<String> = replies
        .iter()
        .map(|r| r.args::<(String,)>().unwrap().0)
        .collect();
    assert_eq!(sorted(votes), ["no", "yes"]);

    // b does not answer: the whole emit fails with the timeout, as the reference rejects.
    let short = Duration::from_millis(300);
    let all = tokio::spawn(io.timeout(short).emit_with_ack_all("poll", &()));
    let (id, _) = ack_id(&a.recv().await);
    a.send(&format!(r#"43{id}["yes"]"#)).await;
    let _ = b.recv().await;
    match patiently("the timeout", all).await.unwrap() {
        Err(AckError::Timeout) => {}
        other => panic!("expected a timeout, got {other:?}"),
    }

    // The per-socket variant gives each socket's outcome: a's answer, b's departure.
    let each = tokio::spawn(
        io.timeout(Duration::from_secs(20))
            .emit_with_ack("poll", &()),
    );
    let (id, _) = ack_id(&a.recv().await);
    a.send(&format!(r#"43{id}["yes"]"#)).await;
    let _ = b.recv().await;
    b.send("41").await;
    let results = patiently("each", each).await.unwrap().expect("sent");
    assert_eq!(results.len(), 2);
    let answers: Vec<String> = results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(|r| r.args::<(String,)>().unwrap().0)
        .collect();
    assert_eq!(answers, ["yes"]);
    assert!(results
        .iter()
        .any(|r| matches!(r, Err(AckError::Disconnected))));
}

#[tokio::test]
async fn listener_ids_outlive_the_handlers_they_named() {
    // Removing an id twice, or from another event, removes nothing.
    let (tx, mut seen) = mpsc::unbounded_channel::<(bool, bool, bool, usize)>();
    let io = Ferrio::builder().build();
    io.on_connection(move |socket: Socket| {
        let tx = tx.clone();
        async move {
            let id = socket.on("a", |_s: Socket, _m: Message| async {});
            let other_event = socket.off_listener("b", id);
            let first = socket.off_listener("a", id);
            let second = socket.off_listener("a", id);
            let _ = tx.send((other_event, first, second, socket.listeners("a")));
        }
    });
    let addr = serve(io).await;
    let (_ws, _) = connect(addr).await;
    assert_eq!(
        patiently("ids", seen.recv()).await,
        Some((false, true, false, 0))
    );
}

#[tokio::test]
async fn send_sockets_join_to_several_rooms_and_the_server_side_events_on_the_server() {
    let (tx, mut connected) = mpsc::unbounded_channel::<Socket>();
    let io = Ferrio::builder().build();
    io.on_connection(move |socket: Socket| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(socket);
        }
    });
    let addr = serve(io.clone()).await;
    let (mut a, _) = connect(addr).await;
    let sa = patiently("connection", connected.recv()).await.unwrap();
    let (mut b, _) = connect(addr).await;
    let sb = patiently("connection", connected.recv()).await.unwrap();

    // A raw client sends no `Origin`: not cross-origin.
    assert!(!sa.handshake().xdomain());

    // `send` is an emit of `message`, from the socket, the namespace and the server.
    sa.send(&(1,)).unwrap();
    assert_eq!(a.recv().await, r#"42["message",1]"#);
    io.send(&("all",)).unwrap();
    assert_eq!(a.recv().await, r#"42["message","all"]"#);
    assert_eq!(b.recv().await, r#"42["message","all"]"#);

    // A broadcast operator's socketsJoin takes several rooms.
    sa.join("r1");
    io.to("r1").sockets_join(["r2", "r3"]);
    assert!(sa.rooms().contains(&"r2".to_owned()) && sa.rooms().contains(&"r3".to_owned()));
    assert!(!sb.rooms().contains(&"r2".to_owned()));
    io.of("/").to("r3").send(&("r3",)).unwrap();
    io.send(&("end",)).unwrap();
    assert_eq!(a.recv().await, r#"42["message","r3"]"#);
    assert_eq!(a.recv().await, r#"42["message","end"]"#);
    assert_eq!(b.recv().await, r#"42["message","end"]"#);

    // Alone, a server-side event with acks has no one to answer it.
    io.on_server_event("never", |_args, _ack| async {});
    let answers = patiently("answers", io.server_side_emit_with_ack("ask", &())).await;
    assert!(answers.expect("no error").is_empty());
}
