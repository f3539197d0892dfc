//! The server Engine.IO session machine, driven with a fake clock: handshake, heartbeat,
//! long-polling, WebSocket, upgrade and every close reason.

use std::time::Duration;

use bytes::Bytes;
use ferrio_proto::engine::request::Handshake;
use ferrio_proto::engine::server::{
    CloseReason, Config, Event, Input, Io, Output, RequestError, SendOptions, Session, Transport,
};
use ferrio_proto::engine::{Frame, Protocol};
use ferrio_proto::{Instant, Str};

fn t(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

fn polling(config: Config) -> Session {
    Session::new(
        t(0),
        "sid1".into(),
        Protocol::V4,
        Transport::Polling,
        config,
    )
}

fn drain(s: &mut Session) -> Vec<Output> {
    std::iter::from_fn(|| s.poll_output()).collect()
}

/// Performs the handshake GET and returns the session with nothing pending.
fn opened(config: Config) -> Session {
    let mut s = polling(config);
    s.handle_input(t(0), Input::Poll(0)).expect("handshake GET");
    drain(&mut s);
    s
}

fn body_of(out: &[Output], req: u64) -> String {
    out.iter()
        .find_map(|o| match o {
            Output::Io(Io::PollResponse { request, body, .. }) if *request == req => {
                Some(String::from_utf8(body.to_vec()).expect("utf8"))
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no response to GET {req} in {out:?}"))
}

fn text(s: &str) -> Frame {
    Frame::Text(Str::from(s))
}

/// A frame written on the WebSocket with compression allowed (the default).
fn ws_send(frame: Frame) -> Output {
    Output::Io(Io::WsSend {
        frame,
        compress: true,
    })
}

#[test]
fn polling_handshake_sends_open_packet() {
    let mut s = polling(Config::default());
    s.handle_input(t(0), Input::Poll(7)).expect("GET");
    let out = drain(&mut s);
    assert_eq!(
        body_of(&out, 7),
        r#"0{"sid":"sid1","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#
    );
    // no upgrades when they are disabled
    let mut s = polling(Config {
        allow_upgrades: false,
        ..Config::default()
    });
    s.handle_input(t(0), Input::Poll(1)).expect("GET");
    assert!(body_of(&drain(&mut s), 1).contains(r#""upgrades":[]"#));
}

#[test]
fn initial_packet_follows_open() {
    let mut s = polling(Config {
        initial_packet: Some("hello".into()),
        ..Config::default()
    });
    s.handle_input(t(0), Input::Poll(1)).expect("GET");
    let body = body_of(&drain(&mut s), 1);
    assert!(body.ends_with("\u{1e}4hello"), "{body}");
}

#[test]
fn websocket_session_opens_with_no_upgrades() {
    let mut s = Session::new(
        t(0),
        "w".into(),
        Protocol::V4,
        Transport::WebSocket,
        Config::default(),
    );
    let out = drain(&mut s);
    assert!(
        matches!(&out[..], [Output::Io(Io::WsSend { frame: Frame::Text(f), compress: true })] if f.contains(r#""upgrades":[]"#))
    );
    // polling on a WebSocket session is a transport mismatch
    assert_eq!(
        s.handle_input(t(1), Input::Poll(1)),
        Err(RequestError::TransportMismatch)
    );
}

#[test]
fn heartbeat_ping_pong_and_timeout() {
    let mut s = opened(Config::default());
    assert_eq!(s.poll_timeout(), Some(t(25_000)));
    s.handle_input(t(25_000), Input::Timeout).unwrap();
    s.handle_input(t(25_000), Input::Poll(1)).expect("GET");
    assert_eq!(body_of(&drain(&mut s), 1), "2");
    // deadline: pingTimeout after the ping
    assert_eq!(s.poll_timeout(), Some(t(45_000)));
    s.handle_input(
        t(30_000),
        Input::Post {
            body: Some(Bytes::from_static(b"3")),
            binary: false,
        },
    )
    .expect("pong");
    // next ping pingInterval after the pong
    assert_eq!(s.poll_timeout(), Some(t(55_000)));
    s.handle_input(t(55_000), Input::Timeout).unwrap();
    s.handle_input(t(75_000), Input::Timeout).unwrap();
    assert_eq!(
        drain(&mut s),
        vec![Output::Event(Event::Closed(CloseReason::PingTimeout))]
    );
    assert!(s.is_closed());
}

#[test]
fn first_packet_while_waiting_for_pong_refreshes_timeout_once() {
    let mut s = opened(Config::default());
    s.handle_input(t(25_000), Input::Timeout).unwrap();
    s.handle_input(
        t(30_000),
        Input::Post {
            body: Some(Bytes::from_static(b"4a")),
            binary: false,
        },
    )
    .expect("POST");
    assert_eq!(s.poll_timeout(), Some(t(50_000)));
    s.handle_input(
        t(40_000),
        Input::Post {
            body: Some(Bytes::from_static(b"4b")),
            binary: false,
        },
    )
    .expect("POST");
    assert_eq!(
        s.poll_timeout(),
        Some(t(50_000)),
        "refreshed only once per wait"
    );
    s.handle_input(t(50_000), Input::Timeout).unwrap();
    assert!(drain(&mut s).contains(&Output::Event(Event::Closed(CloseReason::PingTimeout))));
}

#[test]
fn ping_from_a_v4_client_is_an_error() {
    let mut s = opened(Config::default());
    s.handle_input(t(1), Input::Poll(1)).expect("GET");
    s.handle_input(
        t(2),
        Input::Post {
            body: Some(Bytes::from_static(b"2")),
            binary: false,
        },
    )
    .expect("POST");
    let out = drain(&mut s);
    assert_eq!(body_of(&out, 1), "1");
    assert!(out.contains(&Output::Event(Event::Closed(CloseReason::TransportError))));
}

#[test]
fn v3_client_pings_and_server_answers() {
    let mut s = Session::new(
        t(0),
        "v3".into(),
        Protocol::V3,
        Transport::Polling,
        Config::default(),
    );
    s.handle_input(t(0), Input::Poll(0)).expect("GET");
    let body = body_of(&drain(&mut s), 0);
    assert!(body.starts_with("100:0{"), "{body}");
    assert_eq!(s.poll_timeout(), Some(t(45_000)));
    s.handle_input(
        t(10_000),
        Input::Post {
            body: Some(Bytes::from_static(b"1:2")),
            binary: false,
        },
    )
    .expect("ping");
    s.handle_input(t(10_000), Input::Poll(1)).expect("GET");
    assert_eq!(body_of(&drain(&mut s), 1), "1:3");
    assert_eq!(s.poll_timeout(), Some(t(55_000)));
    s.handle_input(t(55_000), Input::Timeout).unwrap();
    assert!(drain(&mut s).contains(&Output::Event(Event::Closed(CloseReason::PingTimeout))));
    // a pong from a v3 client is the wrong direction
    let mut s = Session::new(
        t(0),
        "v3".into(),
        Protocol::V3,
        Transport::Polling,
        Config::default(),
    );
    s.handle_input(
        t(1),
        Input::Post {
            body: Some(Bytes::from_static(b"1:3")),
            binary: false,
        },
    )
    .expect("POST");
    assert!(drain(&mut s).contains(&Output::Event(Event::Closed(CloseReason::TransportError))));
}

#[test]
fn v3_binary_payloads_both_ways() {
    let mut s = Session::new(
        t(0),
        "v3".into(),
        Protocol::V3,
        Transport::Polling,
        Config::default(),
    );
    s.handle_input(t(0), Input::Poll(0)).expect("GET");
    drain(&mut s);
    s.send(
        t(1),
        [Frame::Binary(Bytes::from_static(&[1, 2]))],
        SendOptions::default(),
    )
    .expect("send");
    s.handle_input(t(1), Input::Poll(1)).expect("GET");
    let out = drain(&mut s);
    assert!(
        matches!(&out[..], [Output::Io(Io::PollResponse { binary: true, body, .. })] if body[..] == [1, 3, 0xff, 4, 1, 2])
    );
    // base64 clients get the text form
    let mut s = Session::from_handshake(
        t(0),
        "v3".into(),
        &Handshake {
            transport: Transport::Polling,
            protocol: Protocol::V3,
            base64: true,
        },
        Config::default(),
    );
    s.handle_input(t(0), Input::Poll(0)).expect("GET");
    drain(&mut s);
    s.send(
        t(2),
        [Frame::Binary(Bytes::from_static(&[1, 2]))],
        SendOptions::default(),
    )
    .expect("send");
    s.handle_input(t(2), Input::Poll(2)).expect("GET");
    assert_eq!(body_of(&drain(&mut s), 2), "6:b4AQI=");
    s.handle_input(
        t(3),
        Input::Post {
            body: Some(Bytes::from_static(&[1, 3, 0xff, 4, 9, 9])),
            binary: true,
        },
    )
    .expect("POST");
    assert_eq!(
        drain(&mut s),
        vec![Output::Event(Event::Binary(Bytes::from_static(&[9, 9])))]
    );
}

#[test]
fn polling_batches_everything_buffered_within_max_payload() {
    let mut s = opened(Config::default());
    for m in ["4a", "4b", "4c"] {
        s.send(t(1), [text(m)], SendOptions::default())
            .expect("send");
    }
    s.handle_input(t(2), Input::Poll(1)).expect("GET");
    assert_eq!(body_of(&drain(&mut s), 1), "4a\u{1e}4b\u{1e}4c");
    // a response never exceeds max_payload (unless one packet alone does)
    let mut s = opened(Config {
        max_payload: 8,
        ..Config::default()
    });
    for m in ["4aaa", "4bbb", "4ccc"] {
        s.send(t(1), [text(m)], SendOptions::default())
            .expect("send");
    }
    s.handle_input(t(2), Input::Poll(1)).expect("GET");
    assert_eq!(body_of(&drain(&mut s), 1), "4aaa");
    s.handle_input(t(3), Input::Poll(2)).expect("GET");
    assert_eq!(body_of(&drain(&mut s), 2), "4bbb");
}

#[test]
fn a_pending_get_is_answered_as_soon_as_something_is_sent() {
    let mut s = opened(Config::default());
    s.handle_input(t(1), Input::Poll(1)).expect("GET");
    assert!(drain(&mut s).is_empty());
    assert!(s.is_writable());
    s.send(
        t(2),
        [text("4x"), Frame::Binary(Bytes::from_static(&[1]))],
        SendOptions::default(),
    )
    .expect("send");
    assert_eq!(body_of(&drain(&mut s), 1), "4x\u{1e}bAQ==");
}

#[test]
fn overlapping_gets_close_the_session() {
    let mut s = opened(Config::default());
    s.handle_input(t(1), Input::Poll(1)).expect("GET");
    assert_eq!(
        s.handle_input(t(2), Input::Poll(2)),
        Err(RequestError::PollOverlap)
    );
    let out = drain(&mut s);
    assert_eq!(body_of(&out, 1), "1");
    assert!(out.contains(&Output::Event(Event::Closed(CloseReason::TransportError))));
    assert_eq!(
        s.handle_input(t(3), Input::Poll(3)),
        Err(RequestError::Closed)
    );
}

#[test]
fn aborted_get_closes_the_session() {
    let mut s = opened(Config::default());
    s.handle_input(t(1), Input::Poll(1)).expect("GET");
    s.handle_input(t(2), Input::PollAborted(1)).unwrap();
    assert_eq!(
        drain(&mut s),
        vec![Output::Event(Event::Closed(CloseReason::TransportError))]
    );
}

#[test]
fn post_delivers_messages_and_enforces_limits() {
    let mut s = opened(Config {
        max_payload: 16,
        ..Config::default()
    });
    s.handle_input(
        t(1),
        Input::Post {
            body: Some(Bytes::from_static(b"4hello\x1ebAQID")),
            binary: false,
        },
    )
    .expect("POST");
    assert_eq!(
        drain(&mut s),
        vec![
            Output::Event(Event::Message("hello".into())),
            Output::Event(Event::Binary(Bytes::from_static(&[1, 2, 3])))
        ]
    );
    let big = Bytes::from(vec![b'4'; 17]);
    assert_eq!(
        s.handle_input(
            t(2),
            Input::Post {
                body: Some(big),
                binary: false
            }
        ),
        Err(RequestError::PayloadTooLarge)
    );
    assert!(!s.is_closed(), "413 keeps the session");
    assert_eq!(RequestError::PayloadTooLarge.status(), 413);
    // a binary POST on v4 is refused and closes
    assert_eq!(
        s.handle_input(t(3), Input::PostStart { binary: true }),
        Err(RequestError::BinaryPostOnV4)
    );
    assert!(s.is_closed());
}

#[test]
fn overlapping_posts_close_the_session() {
    let mut s = opened(Config::default());
    s.handle_input(t(1), Input::PostStart { binary: false })
        .expect("first POST");
    assert_eq!(
        s.handle_input(t(2), Input::PostStart { binary: false }),
        Err(RequestError::PostOverlap)
    );
    assert!(drain(&mut s).contains(&Output::Event(Event::Closed(CloseReason::TransportError))));
}

#[test]
fn parse_error_delivers_what_came_before_then_closes() {
    let mut s = opened(Config::default());
    assert_eq!(
        s.handle_input(
            t(1),
            Input::Post {
                body: Some(Bytes::from_static(b"4ok\x1ex\x1e4never")),
                binary: false
            }
        ),
        Err(RequestError::InvalidPayload)
    );
    assert_eq!(
        drain(&mut s),
        vec![
            Output::Event(Event::Message("ok".into())),
            Output::Event(Event::Closed(CloseReason::ParseError))
        ]
    );
}

#[test]
fn client_close_over_polling() {
    let mut s = opened(Config::default());
    s.handle_input(t(1), Input::Poll(1)).expect("GET");
    s.handle_input(
        t(2),
        Input::Post {
            body: Some(Bytes::from_static(b"1")),
            binary: false,
        },
    )
    .expect("POST");
    let out = drain(&mut s);
    assert_eq!(body_of(&out, 1), "6");
    assert!(out.contains(&Output::Event(Event::Closed(CloseReason::TransportClose))));
}

#[test]
fn close_packet_over_websocket_is_ignored_and_socket_close_closes() {
    let mut s = Session::new(
        t(0),
        "w".into(),
        Protocol::V4,
        Transport::WebSocket,
        Config::default(),
    );
    drain(&mut s);
    s.handle_input(t(1), Input::WsFrame(text("1"))).unwrap();
    assert!(!s.is_closed());
    s.handle_input(t(2), Input::WsFrame(text("4hi"))).unwrap();
    assert_eq!(
        drain(&mut s),
        vec![Output::Event(Event::Message("hi".into()))]
    );
    s.handle_input(t(3), Input::WsClosed { error: false })
        .unwrap();
    assert_eq!(
        drain(&mut s),
        vec![Output::Event(Event::Closed(CloseReason::TransportClose))]
    );
    let mut s = Session::new(
        t(0),
        "w".into(),
        Protocol::V4,
        Transport::WebSocket,
        Config::default(),
    );
    s.handle_input(t(3), Input::WsClosed { error: true })
        .unwrap();
    assert!(drain(&mut s).contains(&Output::Event(Event::Closed(CloseReason::TransportError))));
}

#[test]
fn websocket_message_over_max_payload_closes() {
    let mut s = Session::new(
        t(0),
        "w".into(),
        Protocol::V4,
        Transport::WebSocket,
        Config {
            max_payload: 4,
            ..Config::default()
        },
    );
    drain(&mut s);
    s.handle_input(t(1), Input::WsFrame(text("4hello")))
        .unwrap();
    assert_eq!(
        drain(&mut s),
        vec![
            Output::Io(Io::WsClose),
            Output::Event(Event::Closed(CloseReason::TransportError))
        ]
    );
}

#[test]
fn upgrade_to_websocket() {
    let mut s = opened(Config::default());
    s.send(t(1), [text("4buffered")], SendOptions::default())
        .expect("send");
    s.handle_input(t(10), Input::UpgradeRequest)
        .expect("upgrade");
    assert_eq!(
        s.handle_input(t(11), Input::UpgradeRequest),
        Err(RequestError::AlreadyUpgrading)
    );
    s.handle_input(t(12), Input::Poll(1)).expect("GET");
    // the buffered packet goes out on the pending GET at once
    assert_eq!(body_of(&drain(&mut s), 1), "4buffered");
    s.handle_input(t(13), Input::Poll(2)).expect("GET");
    s.handle_input(t(20), Input::ProbeFrame(text("2probe")))
        .unwrap();
    assert_eq!(
        drain(&mut s),
        vec![Output::Io(Io::ProbeSend(text("3probe")))]
    );
    // the pending GET is released with a noop within 100 ms
    assert_eq!(s.poll_timeout(), Some(t(120)));
    s.handle_input(t(120), Input::Timeout).unwrap();
    assert_eq!(body_of(&drain(&mut s), 2), "6");
    s.send(t(130), [text("4during")], SendOptions::default())
        .expect("send");
    s.handle_input(t(140), Input::ProbeFrame(text("5")))
        .unwrap();
    assert_eq!(
        drain(&mut s),
        vec![Output::Io(Io::Upgraded), ws_send(text("4during"))]
    );
    assert_eq!(s.transport(), Transport::WebSocket);
    s.send(t(150), [text("4after")], SendOptions::default())
        .expect("send");
    assert_eq!(drain(&mut s), vec![ws_send(text("4after"))]);
    // polling is refused after the upgrade; so is a second upgrade
    assert_eq!(
        s.handle_input(t(160), Input::Poll(3)),
        Err(RequestError::TransportMismatch)
    );
    assert_eq!(
        s.handle_input(t(161), Input::UpgradeRequest),
        Err(RequestError::AlreadyUpgrading)
    );
}

#[test]
fn upgrade_failures_keep_polling() {
    // no `5` within upgradeTimeout
    let mut s = opened(Config::default());
    s.handle_input(t(0), Input::UpgradeRequest)
        .expect("upgrade");
    s.handle_input(t(1), Input::ProbeFrame(text("2probe")))
        .unwrap();
    drain(&mut s);
    s.handle_input(t(10_000), Input::Timeout).unwrap();
    assert!(drain(&mut s).contains(&Output::Io(Io::ProbeClose)));
    assert_eq!(s.transport(), Transport::Polling);
    assert!(!s.is_closed());
    // anything but 2probe / 5 on the probe closes it
    s.handle_input(t(10_001), Input::UpgradeRequest)
        .expect("second try");
    s.handle_input(t(10_002), Input::ProbeFrame(text("4nope")))
        .unwrap();
    assert_eq!(drain(&mut s), vec![Output::Io(Io::ProbeClose)]);
    // the probe WebSocket closing abandons the upgrade
    s.handle_input(t(10_003), Input::UpgradeRequest)
        .expect("third try");
    s.handle_input(t(10_004), Input::ProbeClosed).unwrap();
    s.handle_input(t(10_005), Input::Poll(1))
        .expect("still polling");
    // upgrades disabled
    let mut s = opened(Config {
        allow_upgrades: false,
        ..Config::default()
    });
    assert_eq!(
        s.handle_input(t(1), Input::UpgradeRequest),
        Err(RequestError::UpgradeNotAllowed)
    );
}

#[test]
fn server_close_over_polling() {
    // with a pending GET: buffered packets, then the close packet, in that response
    let mut s = opened(Config::default());
    s.send(t(1), [text("4bye")], SendOptions::default())
        .expect("send");
    s.handle_input(t(1), Input::Poll(1)).expect("GET");
    drain(&mut s);
    s.send(t(2), [text("4last")], SendOptions::default())
        .expect("send");
    s.close(t(3));
    s.handle_input(t(4), Input::Poll(2)).expect("GET");
    let out = drain(&mut s);
    assert_eq!(body_of(&out, 2), "4last\u{1e}1");
    assert!(out.contains(&Output::Event(Event::Closed(CloseReason::ForcedClose))));
    // with no GET coming: closed after closeTimeout
    let mut s = opened(Config::default());
    s.close(t(5));
    assert!(
        s.send(t(6), [text("4late")], SendOptions::default())
            .is_err(),
        "nothing is sent while closing"
    );
    assert_eq!(s.poll_timeout(), Some(t(30_005)));
    s.handle_input(t(30_005), Input::Timeout).unwrap();
    assert_eq!(
        drain(&mut s),
        vec![Output::Event(Event::Closed(CloseReason::ForcedClose))]
    );
}

#[test]
fn server_close_over_websocket() {
    let mut s = Session::new(
        t(0),
        "w".into(),
        Protocol::V4,
        Transport::WebSocket,
        Config::default(),
    );
    drain(&mut s);
    s.close(t(1));
    assert_eq!(
        drain(&mut s),
        vec![
            Output::Io(Io::WsClose),
            Output::Event(Event::Closed(CloseReason::ForcedClose))
        ]
    );
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn volatile_packets_need_a_writable_transport() {
    let mut s = opened(Config::default());
    assert!(s
        .send(
            t(1),
            [text("4v")],
            SendOptions {
                volatile: true,
                compress: false
            }
        )
        .is_err());
    s.handle_input(t(2), Input::Poll(1)).expect("GET");
    assert!(s
        .send(
            t(3),
            [text("4v")],
            SendOptions {
                volatile: true,
                compress: false
            }
        )
        .is_ok());
    assert_eq!(body_of(&drain(&mut s), 1), "4v");
    let mut ws = Session::new(
        t(0),
        "w".into(),
        Protocol::V4,
        Transport::WebSocket,
        Config::default(),
    );
    drain(&mut ws);
    ws.handle_input(t(1), Input::WsWritable(false)).unwrap();
    assert!(ws
        .send(
            t(1),
            [text("4v")],
            SendOptions {
                volatile: true,
                compress: false
            }
        )
        .is_err());
    assert!(ws.send(t(1), [text("4n")], SendOptions::default()).is_ok());
}

#[test]
fn a_client_that_stops_polling_cannot_grow_the_buffer_without_bound() {
    let mut s = opened(Config {
        max_buffered_bytes: 100,
        ..Config::default()
    });
    let mut sent = 0;
    while s
        .send(t(1), [text("4xxxxxxxxx")], SendOptions::default())
        .is_ok()
    {
        sent += 1;
        assert!(sent < 100);
    }
    assert!(s.buffered_bytes() <= 100);
    assert!(drain(&mut s).contains(&Output::Event(Event::Closed(CloseReason::BufferFull))));
}

#[test]
fn compress_flag_reaches_the_response() {
    let mut s = opened(Config::default());
    s.send(
        t(1),
        [text("4a")],
        SendOptions {
            volatile: false,
            compress: true,
        },
    )
    .expect("send");
    s.handle_input(t(2), Input::Poll(1)).expect("GET");
    assert!(matches!(
        drain(&mut s)[..],
        [Output::Io(Io::PollResponse { compress: true, .. })]
    ));
    assert_eq!(
        Duration::from_millis(25_000),
        Config::default().ping_interval
    );
}

#[test]
fn binary_over_websocket_follows_the_protocol_and_b64() {
    let bin = || Frame::Binary(Bytes::from_static(&[1, 2, 3]));
    let ws = |protocol, b64: bool| {
        let mut s = Session::from_handshake(
            t(0),
            "w".into(),
            &Handshake {
                transport: Transport::WebSocket,
                protocol,
                base64: b64,
            },
            Config::default(),
        );
        drain(&mut s);
        s.send(t(1), [bin()], SendOptions::default()).expect("send");
        drain(&mut s)
    };
    // v4: raw binary frame; v3: the type byte first (§1.1, §1.2)
    assert_eq!(ws(Protocol::V4, false), vec![ws_send(bin())]);
    assert_eq!(
        ws(Protocol::V3, false),
        vec![ws_send(Frame::Binary(Bytes::from_static(&[4, 1, 2, 3])))]
    );
    // `b64=1`: base64 text frames
    assert_eq!(ws(Protocol::V4, true), vec![ws_send(text("bAQID"))]);
    assert_eq!(ws(Protocol::V3, true), vec![ws_send(text("b4AQID"))]);
    // and what was buffered during an upgrade is sent the same way
    let mut s = Session::from_handshake(
        t(0),
        "sid1".into(),
        &Handshake {
            transport: Transport::Polling,
            protocol: Protocol::V4,
            base64: true,
        },
        Config::default(),
    );
    s.handle_input(t(0), Input::Poll(0)).expect("handshake GET");
    drain(&mut s);
    s.send(t(1), [bin()], SendOptions::default()).expect("send");
    s.handle_input(t(2), Input::UpgradeRequest)
        .expect("upgrade");
    s.handle_input(t(3), Input::ProbeFrame(text("2probe")))
        .unwrap();
    s.handle_input(t(4), Input::ProbeFrame(text("5"))).unwrap();
    assert!(drain(&mut s).contains(&ws_send(text("bAQID"))));
}

#[test]
fn compress_flag_reaches_the_websocket_frames() {
    let mut ws = Session::new(
        t(0),
        "w".into(),
        Protocol::V4,
        Transport::WebSocket,
        Config::default(),
    );
    // the open packet may be compressed, as the reference's engine packets
    assert!(matches!(
        drain(&mut ws)[..],
        [Output::Io(Io::WsSend { compress: true, .. })]
    ));
    let bin = || Frame::Binary(Bytes::from_static(&[1, 2, 3]));
    let plain = SendOptions {
        volatile: false,
        compress: false,
    };
    ws.send(t(1), [text("4plain"), bin()], plain).expect("send");
    ws.send(t(1), [text("4default")], SendOptions::default())
        .expect("send");
    assert_eq!(
        drain(&mut ws),
        vec![
            Output::Io(Io::WsSend {
                frame: text("4plain"),
                compress: false
            }),
            Output::Io(Io::WsSend {
                frame: bin(),
                compress: false
            }),
            ws_send(text("4default")),
        ]
    );
    // so does the ping
    ws.handle_input(t(25_000), Input::Timeout).unwrap();
    assert_eq!(drain(&mut ws), vec![ws_send(text("2"))]);
}

#[test]
fn compress_flag_survives_the_upgrade_buffer() {
    let mut s = opened(Config::default());
    s.handle_input(t(10), Input::UpgradeRequest)
        .expect("upgrade");
    s.handle_input(t(20), Input::ProbeFrame(text("2probe")))
        .unwrap();
    drain(&mut s);
    let plain = SendOptions {
        volatile: false,
        compress: false,
    };
    s.send(t(30), [text("4plain")], plain).expect("send");
    s.send(t(30), [text("4default")], SendOptions::default())
        .expect("send");
    s.handle_input(t(40), Input::ProbeFrame(text("5"))).unwrap();
    assert_eq!(
        drain(&mut s),
        vec![
            Output::Io(Io::Upgraded),
            Output::Io(Io::WsSend {
                frame: text("4plain"),
                compress: false
            }),
            ws_send(text("4default")),
        ]
    );
}

#[test]
fn a_response_of_uncompressed_packets_is_not_compressed() {
    let mut s = opened(Config::default());
    let plain = SendOptions {
        volatile: false,
        compress: false,
    };
    s.send(t(1), [text("4a")], plain).expect("send");
    s.send(t(1), [text("4b")], plain).expect("send");
    s.handle_input(t(2), Input::Poll(1)).expect("GET");
    assert!(matches!(
        drain(&mut s)[..],
        [Output::Io(Io::PollResponse {
            compress: false,
            ..
        })]
    ));
    // one packet that may be compressed is enough, as in the reference
    s.send(t(3), [text("4c")], plain).expect("send");
    s.send(t(3), [text("4d")], SendOptions::default())
        .expect("send");
    s.handle_input(t(4), Input::Poll(2)).expect("GET");
    assert!(matches!(
        drain(&mut s)[..],
        [Output::Io(Io::PollResponse { compress: true, .. })]
    ));
}
