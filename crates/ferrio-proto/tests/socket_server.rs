//! The server Socket.IO connection machine: namespaces, the CONNECT handshake answered by the
//! application, events, acks both ways, DISCONNECT both ways, connect timeout, protocol
//! violations (the Socket.IO compliance suite's expectations, §5.2 of the protocol notes).

use std::time::Duration;

use bytes::Bytes;
use ferrio_proto::engine::server as eio;
use ferrio_proto::engine::server::SendOptions;
use ferrio_proto::engine::{Frame, Protocol};
use ferrio_proto::socket::server::{
    AckError, AckIds, Config, Connection, DisconnectReason, Event, Input, Output, RecoveryRequest,
};
use ferrio_proto::socket::{EncodedPacket, Packet, RawJson};
use ferrio_proto::{Instant, Str};

fn t(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

fn ws() -> Connection {
    let mut c = Connection::new(
        t(0),
        "eio".into(),
        Protocol::V4,
        eio::Transport::WebSocket,
        eio::Config {
            ping_interval: Duration::from_millis(300),
            ping_timeout: Duration::from_millis(200),
            ..eio::Config::default()
        },
        Config {
            connect_timeout: Duration::from_millis(1000),
            ..Config::default()
        },
    );
    drain(&mut c);
    c
}

fn drain(c: &mut Connection) -> Vec<Output> {
    std::iter::from_fn(|| c.poll_output()).collect()
}

fn text(s: &str) -> Frame {
    Frame::Text(Str::from(s))
}

/// The frames written on the WebSocket.
fn sent(out: &[Output]) -> Vec<Frame> {
    out.iter()
        .filter_map(|o| match o {
            Output::Io(eio::Io::WsSend { frame, .. }) => Some(frame.clone()),
            _ => None,
        })
        .collect()
}

/// A server app like the compliance suite's: accepts `/` and `/custom`, refuses others, emits
/// `auth`, echoes `message` as `message-back`, acks `message-with-ack`.
fn app(c: &mut Connection, now: Instant, out: Vec<Output>) -> Vec<Output> {
    let mut rest = Vec::new();
    for o in out {
        match o {
            Output::Event(Event::Connect { nsp, auth, .. }) => {
                if &*nsp == "/" || &*nsp == "/custom" {
                    assert!(c.accept(now, &nsp, "sock", None, []).is_ok());
                    let p = Packet::event(
                        nsp.clone(),
                        RawJson::parse(format!(r#"["auth",{auth}]"#)).expect("json"),
                        vec![],
                    );
                    c.send(now, &p.encode(), &nsp, SendOptions::default())
                        .expect("send");
                } else {
                    assert!(c.reject(now, &nsp, "Invalid namespace", None).is_ok());
                }
            }
            Output::Event(Event::Event(p)) if p.event_name().as_deref() == Some("message") => {
                let data =
                    p.data()
                        .expect("data")
                        .as_str()
                        .replacen("\"message\"", "\"message-back\"", 1);
                let back = Packet::event(
                    p.nsp().clone(),
                    RawJson::parse(data).expect("json"),
                    p.attachments().to_vec(),
                );
                c.send(now, &back.encode(), p.nsp(), SendOptions::default())
                    .expect("send");
            }
            Output::Event(Event::Event(p))
                if p.event_name().as_deref() == Some("message-with-ack") =>
            {
                let data =
                    p.data()
                        .expect("data")
                        .as_str()
                        .replacen("\"message-with-ack\",", "", 1);
                let ack = Packet::ack(
                    p.nsp().clone(),
                    p.id().expect("id"),
                    RawJson::parse(data).expect("json"),
                    p.attachments().to_vec(),
                );
                assert!(c.ack(now, ack).is_ok());
            }
            other => rest.push(other),
        }
    }
    rest
}

fn exchange(c: &mut Connection, frame: &str) -> (Vec<Frame>, Vec<Output>) {
    c.handle_input(t(1), Input::WsFrame(text(frame))).unwrap();
    let out = drain(c);
    let frames_before = sent(&out);
    let rest = app(c, t(1), out);
    let mut frames = frames_before;
    let more = drain(c);
    frames.extend(sent(&more));
    let mut rest = rest;
    rest.extend(
        more.into_iter()
            .filter(|o| !matches!(o, Output::Io(eio::Io::WsSend { .. }))),
    );
    (frames, rest)
}

#[test]
fn connect_main_namespace_without_and_with_auth() {
    let mut c = ws();
    let (frames, _) = exchange(&mut c, "40");
    assert_eq!(
        frames,
        vec![text(r#"40{"sid":"sock"}"#), text(r#"42["auth",{}]"#)]
    );
    let mut c = ws();
    let (frames, _) = exchange(&mut c, r#"40{"token":"123"}"#);
    assert_eq!(frames[1], text(r#"42["auth",{"token":"123"}]"#));
}

#[test]
fn custom_and_unknown_namespaces() {
    let mut c = ws();
    let (frames, _) = exchange(&mut c, r#"40/custom,{"token":"abc"}"#);
    assert_eq!(
        frames,
        vec![
            text(r#"40/custom,{"sid":"sock"}"#),
            text(r#"42/custom,["auth",{"token":"abc"}]"#)
        ]
    );
    let (frames, _) = exchange(&mut c, "40/random");
    assert_eq!(
        frames,
        vec![text(r#"44/random,{"message":"Invalid namespace"}"#)]
    );
    assert!(!c.is_closed());
}

#[test]
fn events_and_acks_from_the_client() {
    let mut c = ws();
    exchange(&mut c, "40");
    let (frames, _) = exchange(&mut c, r#"42["message",1,"2",{"3":[true]}]"#);
    assert_eq!(
        frames,
        vec![text(r#"42["message-back",1,"2",{"3":[true]}]"#)]
    );
    let (frames, _) = exchange(&mut c, r#"42456["message-with-ack",1,"2",{"3":[false]}]"#);
    assert_eq!(frames, vec![text(r#"43456[1,"2",{"3":[false]}]"#)]);
}

#[test]
fn binary_event_and_binary_ack() {
    let mut c = ws();
    exchange(&mut c, "40");
    c.handle_input(
        t(1),
        Input::WsFrame(text(
            r#"452-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
        )),
    )
    .unwrap();
    c.handle_input(
        t(1),
        Input::WsFrame(Frame::Binary(Bytes::from_static(&[1, 2, 3]))),
    )
    .unwrap();
    c.handle_input(
        t(1),
        Input::WsFrame(Frame::Binary(Bytes::from_static(&[4, 5, 6]))),
    )
    .unwrap();
    let out = drain(&mut c);
    app(&mut c, t(1), out);
    assert_eq!(
        sent(&drain(&mut c)),
        vec![
            text(
                r#"452-["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#
            ),
            Frame::Binary(Bytes::from_static(&[1, 2, 3])),
            Frame::Binary(Bytes::from_static(&[4, 5, 6])),
        ]
    );
    c.handle_input(t(2), Input::WsFrame(text(r#"452-789["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#))).unwrap();
    c.handle_input(
        t(2),
        Input::WsFrame(Frame::Binary(Bytes::from_static(&[1, 2, 3]))),
    )
    .unwrap();
    c.handle_input(
        t(2),
        Input::WsFrame(Frame::Binary(Bytes::from_static(&[4, 5, 6]))),
    )
    .unwrap();
    let out = drain(&mut c);
    app(&mut c, t(2), out);
    assert_eq!(
        sent(&drain(&mut c))[0],
        text(r#"462-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#)
    );
}

#[test]
fn client_disconnect_keeps_the_session_open() {
    let mut c = ws();
    exchange(&mut c, "40");
    exchange(&mut c, "40/custom");
    let (frames, rest) = exchange(&mut c, "41/custom");
    assert!(frames.is_empty(), "no reply to DISCONNECT");
    assert_eq!(
        rest,
        vec![Output::Event(Event::Disconnect {
            nsp: "/custom".into(),
            reason: DisconnectReason::ClientNamespaceDisconnect
        })]
    );
    let (frames, _) = exchange(&mut c, r#"42["message","message to main namespace"]"#);
    assert_eq!(
        frames,
        vec![text(r#"42["message-back","message to main namespace"]"#)]
    );
    exchange(&mut c, "41");
    assert!(!c.is_closed());
    // the next frame is a ping
    c.handle_input(t(300), Input::Timeout).unwrap();
    assert_eq!(sent(&drain(&mut c)), vec![text("2")]);
}

#[test]
fn invalid_packets_close_the_connection() {
    for bad in ["4abc", "42{}", r#"42abc["message-with-ack",1]"#] {
        let mut c = ws();
        exchange(&mut c, "40");
        let (_, rest) = exchange(&mut c, bad);
        assert!(
            rest.iter()
                .any(|o| matches!(o, Output::Event(Event::Error(_)))),
            "{bad}: {rest:?}"
        );
        assert!(rest.contains(&Output::Io(eio::Io::WsClose)), "{bad}");
        assert!(rest.contains(&Output::Event(Event::Disconnect {
            nsp: "/".into(),
            reason: DisconnectReason::ForcedClose
        })));
        assert!(c.is_closed());
    }
}

#[test]
fn the_first_packet_must_be_a_connect() {
    for bad in [r#"42["message"]"#, "41", r#"44{"message":"x"}"#] {
        let mut c = ws();
        let (_, rest) = exchange(&mut c, bad);
        assert!(
            rest.contains(&Output::Event(Event::Closed(
                DisconnectReason::ForcedServerClose
            ))),
            "{bad}: {rest:?}"
        );
    }
    // a second CONNECT for a joined namespace is invalid too
    let mut c = ws();
    exchange(&mut c, "40");
    let (_, rest) = exchange(&mut c, "40");
    assert!(rest.contains(&Output::Event(Event::Closed(
        DisconnectReason::ForcedServerClose
    ))));
}

#[test]
fn no_handshake_closes_after_connect_timeout() {
    let mut c = ws();
    // answer pings so that only the connect timeout can close
    c.handle_input(t(300), Input::Timeout).unwrap();
    c.handle_input(t(301), Input::WsFrame(text("3"))).unwrap();
    c.handle_input(t(601), Input::Timeout).unwrap();
    c.handle_input(t(602), Input::WsFrame(text("3"))).unwrap();
    assert_eq!(c.poll_timeout(), Some(t(902)));
    c.handle_input(t(1000), Input::Timeout).unwrap();
    let out = drain(&mut c);
    assert!(
        out.contains(&Output::Event(Event::Closed(
            DisconnectReason::ForcedServerClose
        ))),
        "{out:?}"
    );
}

#[test]
fn server_acks_answered_timed_out_or_failed_exactly_once() {
    let mut c = ws();
    exchange(&mut c, "40");
    let mut ids = AckIds::default();
    let (a, b, d) = (ids.next_id(), ids.next_id(), ids.next_id());
    for id in [a, b, d] {
        let p = Packet::event_with("/", "question", &(id,))
            .expect("ok")
            .with_id(id);
        assert!(c
            .emit_with_ack(t(10), &p.encode(), "/", id, Duration::from_millis(100))
            .is_ok());
    }
    assert_eq!(sent(&drain(&mut c))[0], text(r#"420["question",0]"#));
    // answer the first; an unknown id is ignored
    c.handle_input(t(20), Input::WsFrame(text("430[42]")))
        .unwrap();
    c.handle_input(t(21), Input::WsFrame(text("4399[1]")))
        .unwrap();
    let out = drain(&mut c);
    assert!(
        matches!(&out[..], [Output::Event(Event::Ack(p))] if p.id() == Some(&0.into())),
        "{out:?}"
    );
    // the second times out at its deadline
    c.handle_input(t(110), Input::Timeout).unwrap();
    let out = drain(&mut c);
    assert!(out.contains(&Output::Event(Event::AckFailed {
        nsp: "/".into(),
        id: 1,
        error: AckError::Timeout
    })));
    assert!(out.contains(&Output::Event(Event::AckFailed {
        nsp: "/".into(),
        id: 2,
        error: AckError::Timeout
    })));
    // a late answer is ignored
    c.handle_input(t(120), Input::WsFrame(text("431[1]")))
        .unwrap();
    assert!(drain(&mut c).is_empty());
    // pending acks fail when the socket leaves
    let p = Packet::event_with("/", "q", &()).expect("ok").with_id(3);
    c.emit_with_ack(t(130), &p.encode(), "/", 3, Duration::from_secs(5))
        .expect("emit");
    drain(&mut c);
    c.handle_input(t(131), Input::WsFrame(text("41"))).unwrap();
    let out = drain(&mut c);
    assert_eq!(
        out,
        vec![
            Output::Event(Event::AckFailed {
                nsp: "/".into(),
                id: 3,
                error: AckError::Disconnected
            }),
            Output::Event(Event::Disconnect {
                nsp: "/".into(),
                reason: DisconnectReason::ClientNamespaceDisconnect
            }),
        ]
    );
}

#[test]
fn server_disconnects_one_namespace_or_the_whole_connection() {
    let mut c = ws();
    exchange(&mut c, "40");
    exchange(&mut c, "40/custom,");
    c.disconnect(t(5), "/custom").expect("disconnect");
    let out = drain(&mut c);
    assert_eq!(sent(&out), vec![text("41/custom,")]);
    assert!(out.contains(&Output::Event(Event::Disconnect {
        nsp: "/custom".into(),
        reason: DisconnectReason::ServerNamespaceDisconnect
    })));
    c.close(t(6), DisconnectReason::ForcedServerClose);
    let out = drain(&mut c);
    assert_eq!(sent(&out), vec![text("41")]);
    assert!(out.contains(&Output::Event(Event::Disconnect {
        nsp: "/".into(),
        reason: DisconnectReason::ForcedServerClose
    })));
    assert!(out.contains(&Output::Event(Event::Closed(
        DisconnectReason::ForcedServerClose
    ))));
    // io.close(): no DISCONNECT, sockets see `server shutting down`
    let mut c = ws();
    exchange(&mut c, "40");
    c.close(t(1), DisconnectReason::ServerShuttingDown);
    let out = drain(&mut c);
    assert!(sent(&out).is_empty());
    assert!(out.contains(&Output::Event(Event::Disconnect {
        nsp: "/".into(),
        reason: DisconnectReason::ServerShuttingDown
    })));
}

#[test]
fn transport_close_and_ping_timeout_reach_every_socket() {
    let mut c = ws();
    exchange(&mut c, "40");
    exchange(&mut c, "40/custom,");
    c.handle_input(t(300), Input::Timeout).unwrap();
    c.handle_input(t(500), Input::Timeout).unwrap();
    let out = drain(&mut c);
    let reasons: Vec<_> = out
        .iter()
        .filter_map(|o| match o {
            Output::Event(Event::Disconnect { reason, .. }) => Some(*reason),
            _ => None,
        })
        .collect();
    assert_eq!(reasons, vec![DisconnectReason::PingTimeout; 2]);
    assert!(DisconnectReason::PingTimeout.is_recoverable());
    assert!(!DisconnectReason::ClientNamespaceDisconnect.is_recoverable());
    let mut c = ws();
    exchange(&mut c, "40");
    c.handle_input(t(3), Input::WsClosed { error: false })
        .unwrap();
    assert!(drain(&mut c).contains(&Output::Event(Event::Disconnect {
        nsp: "/".into(),
        reason: DisconnectReason::TransportClose
    })));
}

#[test]
fn recovery_requests_and_replay_before_accept() {
    let mut c = ws();
    c.handle_input(
        t(1),
        Input::WsFrame(text(r#"40{"pid":"p1","offset":"o9","token":"x"}"#)),
    )
    .unwrap();
    let out = drain(&mut c);
    let Some(Output::Event(Event::Connect { recovery, .. })) = out.first() else {
        panic!("{out:?}")
    };
    assert_eq!(
        recovery,
        &Some(RecoveryRequest {
            pid: "p1".into(),
            offset: Some("o9".into())
        })
    );
    let missed = Packet::event_with("/", "hello", &(1, "o10"))
        .expect("ok")
        .encode();
    c.accept(t(2), "/", "old-sid", Some("p1"), [&missed])
        .expect("accept");
    assert_eq!(
        sent(&drain(&mut c)),
        vec![
            text(r#"42["hello",1,"o10"]"#),
            text(r#"40{"sid":"old-sid","pid":"p1"}"#)
        ]
    );
    // pid without offset (no event received yet) is still a recovery request
    let mut c = ws();
    c.handle_input(t(1), Input::WsFrame(text(r#"40{"pid":"p2"}"#)))
        .unwrap();
    let out = drain(&mut c);
    assert!(matches!(
        &out[..],
        [Output::Event(Event::Connect {
            recovery: Some(RecoveryRequest { offset: None, .. }),
            ..
        })]
    ));
}

#[test]
fn eio3_clients_join_the_main_namespace_implicitly() {
    let mut c = Connection::new(
        t(0),
        "v3sid".into(),
        Protocol::V3,
        eio::Transport::WebSocket,
        eio::Config::default(),
        Config::default(),
    );
    let out = drain(&mut c);
    assert!(out
        .iter()
        .any(|o| matches!(o, Output::Event(Event::Connect { nsp, .. }) if &**nsp == "/")));
    c.accept(t(0), "/", "v3sid", None, []).expect("accept");
    assert_eq!(sent(&drain(&mut c)), vec![text("40")]);
    c.handle_input(t(1), Input::WsFrame(text("40/ok?token=abc")))
        .unwrap();
    let out = drain(&mut c);
    let Some(Output::Event(Event::Connect { nsp, auth, .. })) = out.first() else {
        panic!("{out:?}")
    };
    assert_eq!((&**nsp, auth.as_str()), ("/ok", r#"{"token":"abc"}"#));
    c.reject(t(1), "/ok", "denied", None).expect("reject");
    assert_eq!(sent(&drain(&mut c)), vec![text(r#"44/ok,"denied""#)]);
}

#[test]
fn polling_connection_end_to_end() {
    let mut c = Connection::new(
        t(0),
        "p".into(),
        Protocol::V4,
        eio::Transport::Polling,
        eio::Config::default(),
        Config::default(),
    );
    c.handle_input(t(0), Input::Poll(1)).expect("handshake");
    drain(&mut c);
    c.handle_input(
        t(1),
        Input::Post {
            body: Some(Bytes::from_static(b"40\x1e42[\"early\"]")),
            binary: false,
        },
    )
    .expect("POST");
    // the event for a namespace still connecting is the reference's "invalid state"
    let out = drain(&mut c);
    assert!(
        out.contains(&Output::Event(Event::Closed(
            DisconnectReason::ForcedServerClose
        ))) || !c.is_connected("/")
    );
    let mut c = Connection::new(
        t(0),
        "p".into(),
        Protocol::V4,
        eio::Transport::Polling,
        eio::Config::default(),
        Config::default(),
    );
    c.handle_input(t(0), Input::Poll(1)).expect("handshake");
    drain(&mut c);
    c.handle_input(
        t(1),
        Input::Post {
            body: Some(Bytes::from_static(b"40")),
            binary: false,
        },
    )
    .expect("POST");
    let out = drain(&mut c);
    app(&mut c, t(1), out);
    c.handle_input(t(2), Input::Poll(2)).expect("GET");
    let out = drain(&mut c);
    let Some(Output::Io(eio::Io::PollResponse { body, .. })) = out.first() else {
        panic!("{out:?}")
    };
    assert_eq!(
        &body[..],
        "40{\"sid\":\"sock\"}\u{1e}42[\"auth\",{}]".as_bytes()
    );
}

#[test]
fn has_output_tells_whether_poll_output_has_something() {
    let mut c = ws();
    assert!(!c.has_output());
    exchange(&mut c, "40");
    assert!(!c.has_output());
    let packet = EncodedPacket::from_text(r#"2["msg",1]"#, Vec::new());
    c.send(t(2), &packet, "/", SendOptions::default()).unwrap();
    assert!(c.has_output());
    assert_eq!(
        sent(&[c.poll_output().unwrap()]),
        vec![text(r#"42["msg",1]"#)]
    );
    assert!(!c.has_output());
    assert!(c.poll_output().is_none());
}

/// Outputs a connection has for its driver are in the same order whether the driver takes
/// them after every call or after several (a packet sent is left in the Engine.IO session's
/// queue until taken, behind nothing).
#[test]
fn outputs_keep_their_order_whenever_they_are_taken() {
    let run = |take_between: bool| {
        let mut c = ws();
        exchange(&mut c, "40");
        c.emit_with_ack(
            t(2),
            &EncodedPacket::from_text(r#"21["q"]"#, Vec::new()),
            "/",
            1,
            Duration::from_secs(5),
        )
        .unwrap();
        let mut out = drain(&mut c);
        let packet = EncodedPacket::from_text(r#"2["msg",1]"#, Vec::new());
        c.send(t(3), &packet, "/", SendOptions::default()).unwrap();
        if take_between {
            out.extend(drain(&mut c));
        }
        c.send(t(3), &packet, "/", SendOptions::default()).unwrap();
        if take_between {
            out.extend(drain(&mut c));
        }
        // The socket leaves: its ack fails, the application is told.
        c.disconnect(t(4), "/").unwrap();
        out.extend(drain(&mut c));
        out
    };
    let each = run(true);
    assert!(each
        .iter()
        .any(|o| matches!(o, Output::Event(Event::AckFailed { .. }))));
    assert_eq!(run(false), each);
}
