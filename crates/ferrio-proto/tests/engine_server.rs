//! The server Engine.IO session machine, driven with a fake clock: handshake, heartbeat,
//! long-polling, WebSocket, upgrade and every close reason.

use std::time::Duration;

use bytes::Bytes;
use ferrio_proto::engine::server::{
    CloseReason, Config, Output, RequestError, Session, Transport, UpgradeError,
};
use ferrio_proto::engine::{Frame, Packet, Protocol};
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
    s.handle_poll(t(0), 0).expect("handshake GET");
    drain(&mut s);
    s
}

fn body_of(out: &[Output], req: u64) -> String {
    out.iter()
        .find_map(|o| match o {
            Output::PollResponse { request, body, .. } if *request == req => {
                Some(String::from_utf8(body.to_vec()).expect("utf8"))
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no response to GET {req} in {out:?}"))
}

fn text(s: &str) -> Frame {
    Frame::Text(Str::from(s))
}

#[test]
fn polling_handshake_sends_open_packet() {
    let mut s = polling(Config::default());
    s.handle_poll(t(0), 7).expect("GET");
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
    s.handle_poll(t(0), 1).expect("GET");
    assert!(body_of(&drain(&mut s), 1).contains(r#""upgrades":[]"#));
}

#[test]
fn initial_packet_follows_open() {
    let mut s = polling(Config {
        initial_packet: Some("hello".into()),
        ..Config::default()
    });
    s.handle_poll(t(0), 1).expect("GET");
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
    assert!(matches!(&out[..], [Output::WsSend(Frame::Text(f))] if f.contains(r#""upgrades":[]"#)));
    // polling on a WebSocket session is a transport mismatch
    assert_eq!(s.handle_poll(t(1), 1), Err(RequestError::TransportMismatch));
}

#[test]
fn heartbeat_ping_pong_and_timeout() {
    let mut s = opened(Config::default());
    assert_eq!(s.poll_timeout(), Some(t(25_000)));
    s.handle_timeout(t(25_000));
    s.handle_poll(t(25_000), 1).expect("GET");
    assert_eq!(body_of(&drain(&mut s), 1), "2");
    // deadline: pingTimeout after the ping
    assert_eq!(s.poll_timeout(), Some(t(45_000)));
    s.handle_post(t(30_000), Some(Bytes::from_static(b"3")), false)
        .expect("pong");
    // next ping pingInterval after the pong
    assert_eq!(s.poll_timeout(), Some(t(55_000)));
    s.handle_timeout(t(55_000));
    s.handle_timeout(t(75_000));
    assert_eq!(
        drain(&mut s),
        vec![Output::Closed(CloseReason::PingTimeout)]
    );
    assert!(s.is_closed());
}

#[test]
fn first_packet_while_waiting_for_pong_refreshes_timeout_once() {
    let mut s = opened(Config::default());
    s.handle_timeout(t(25_000));
    s.handle_post(t(30_000), Some(Bytes::from_static(b"4a")), false)
        .expect("POST");
    assert_eq!(s.poll_timeout(), Some(t(50_000)));
    s.handle_post(t(40_000), Some(Bytes::from_static(b"4b")), false)
        .expect("POST");
    assert_eq!(
        s.poll_timeout(),
        Some(t(50_000)),
        "refreshed only once per wait"
    );
    s.handle_timeout(t(50_000));
    assert!(drain(&mut s).contains(&Output::Closed(CloseReason::PingTimeout)));
}

#[test]
fn ping_from_a_v4_client_is_an_error() {
    let mut s = opened(Config::default());
    s.handle_poll(t(1), 1).expect("GET");
    s.handle_post(t(2), Some(Bytes::from_static(b"2")), false)
        .expect("POST");
    let out = drain(&mut s);
    assert_eq!(body_of(&out, 1), "1");
    assert!(out.contains(&Output::Closed(CloseReason::TransportError)));
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
    s.handle_poll(t(0), 0).expect("GET");
    let body = body_of(&drain(&mut s), 0);
    assert!(body.starts_with("100:0{"), "{body}");
    assert_eq!(s.poll_timeout(), Some(t(45_000)));
    s.handle_post(t(10_000), Some(Bytes::from_static(b"1:2")), false)
        .expect("ping");
    s.handle_poll(t(10_000), 1).expect("GET");
    assert_eq!(body_of(&drain(&mut s), 1), "1:3");
    assert_eq!(s.poll_timeout(), Some(t(55_000)));
    s.handle_timeout(t(55_000));
    assert!(drain(&mut s).contains(&Output::Closed(CloseReason::PingTimeout)));
    // a pong from a v3 client is the wrong direction
    let mut s = Session::new(
        t(0),
        "v3".into(),
        Protocol::V3,
        Transport::Polling,
        Config::default(),
    );
    s.handle_post(t(1), Some(Bytes::from_static(b"1:3")), false)
        .expect("POST");
    assert!(drain(&mut s).contains(&Output::Closed(CloseReason::TransportError)));
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
    s.handle_poll(t(0), 0).expect("GET");
    drain(&mut s);
    s.send(
        t(1),
        [Frame::Binary(Bytes::from_static(&[1, 2]))],
        false,
        false,
    );
    s.handle_poll(t(1), 1).expect("GET");
    let out = drain(&mut s);
    assert!(
        matches!(&out[..], [Output::PollResponse { binary: true, body, .. }] if body[..] == [1, 3, 0xff, 4, 1, 2])
    );
    // base64 clients get the text form
    s.set_supports_binary(false);
    s.send(
        t(2),
        [Frame::Binary(Bytes::from_static(&[1, 2]))],
        false,
        false,
    );
    s.handle_poll(t(2), 2).expect("GET");
    assert_eq!(body_of(&drain(&mut s), 2), "6:b4AQI=");
    s.handle_post(t(3), Some(Bytes::from_static(&[1, 3, 0xff, 4, 9, 9])), true)
        .expect("POST");
    assert_eq!(
        drain(&mut s),
        vec![Output::Message(Packet::Binary(Bytes::from_static(&[9, 9])))]
    );
}

#[test]
fn polling_batches_everything_buffered_within_max_payload() {
    let mut s = opened(Config::default());
    for m in ["4a", "4b", "4c"] {
        s.send(t(1), [text(m)], false, false);
    }
    s.handle_poll(t(2), 1).expect("GET");
    assert_eq!(body_of(&drain(&mut s), 1), "4a\u{1e}4b\u{1e}4c");
    // a response never exceeds max_payload (unless one packet alone does)
    let mut s = opened(Config {
        max_payload: 8,
        ..Config::default()
    });
    for m in ["4aaa", "4bbb", "4ccc"] {
        s.send(t(1), [text(m)], false, false);
    }
    s.handle_poll(t(2), 1).expect("GET");
    assert_eq!(body_of(&drain(&mut s), 1), "4aaa");
    s.handle_poll(t(3), 2).expect("GET");
    assert_eq!(body_of(&drain(&mut s), 2), "4bbb");
}

#[test]
fn a_pending_get_is_answered_as_soon_as_something_is_sent() {
    let mut s = opened(Config::default());
    s.handle_poll(t(1), 1).expect("GET");
    assert!(drain(&mut s).is_empty());
    assert!(s.is_writable());
    s.send(
        t(2),
        [text("4x"), Frame::Binary(Bytes::from_static(&[1]))],
        false,
        false,
    );
    assert_eq!(body_of(&drain(&mut s), 1), "4x\u{1e}bAQ==");
}

#[test]
fn overlapping_gets_close_the_session() {
    let mut s = opened(Config::default());
    s.handle_poll(t(1), 1).expect("GET");
    assert_eq!(s.handle_poll(t(2), 2), Err(RequestError::PollOverlap));
    let out = drain(&mut s);
    assert_eq!(body_of(&out, 1), "1");
    assert!(out.contains(&Output::Closed(CloseReason::TransportError)));
    assert_eq!(s.handle_poll(t(3), 3), Err(RequestError::Closed));
}

#[test]
fn aborted_get_closes_the_session() {
    let mut s = opened(Config::default());
    s.handle_poll(t(1), 1).expect("GET");
    s.handle_poll_aborted(t(2), 1);
    assert_eq!(
        drain(&mut s),
        vec![Output::Closed(CloseReason::TransportError)]
    );
}

#[test]
fn post_delivers_messages_and_enforces_limits() {
    let mut s = opened(Config {
        max_payload: 16,
        ..Config::default()
    });
    s.handle_post(t(1), Some(Bytes::from_static(b"4hello\x1ebAQID")), false)
        .expect("POST");
    assert_eq!(
        drain(&mut s),
        vec![
            Output::Message(Packet::Message("hello".into())),
            Output::Message(Packet::Binary(Bytes::from_static(&[1, 2, 3])))
        ]
    );
    let big = Bytes::from(vec![b'4'; 17]);
    assert_eq!(
        s.handle_post(t(2), Some(big), false),
        Err(RequestError::PayloadTooLarge)
    );
    assert!(!s.is_closed(), "413 keeps the session");
    assert_eq!(RequestError::PayloadTooLarge.status(), 413);
    // a binary POST on v4 is refused and closes
    assert_eq!(
        s.handle_post_start(t(3), true),
        Err(RequestError::BinaryPostOnV4)
    );
    assert!(s.is_closed());
}

#[test]
fn overlapping_posts_close_the_session() {
    let mut s = opened(Config::default());
    s.handle_post_start(t(1), false).expect("first POST");
    assert_eq!(
        s.handle_post_start(t(2), false),
        Err(RequestError::PostOverlap)
    );
    assert!(drain(&mut s).contains(&Output::Closed(CloseReason::TransportError)));
}

#[test]
fn parse_error_delivers_what_came_before_then_closes() {
    let mut s = opened(Config::default());
    assert_eq!(
        s.handle_post(t(1), Some(Bytes::from_static(b"4ok\x1ex\x1e4never")), false),
        Err(RequestError::InvalidPayload)
    );
    assert_eq!(
        drain(&mut s),
        vec![
            Output::Message(Packet::Message("ok".into())),
            Output::Closed(CloseReason::ParseError)
        ]
    );
}

#[test]
fn client_close_over_polling() {
    let mut s = opened(Config::default());
    s.handle_poll(t(1), 1).expect("GET");
    s.handle_post(t(2), Some(Bytes::from_static(b"1")), false)
        .expect("POST");
    let out = drain(&mut s);
    assert_eq!(body_of(&out, 1), "6");
    assert!(out.contains(&Output::Closed(CloseReason::TransportClose)));
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
    s.handle_ws_frame(t(1), text("1"));
    assert!(!s.is_closed());
    s.handle_ws_frame(t(2), text("4hi"));
    assert_eq!(
        drain(&mut s),
        vec![Output::Message(Packet::Message("hi".into()))]
    );
    s.handle_ws_closed(t(3), false);
    assert_eq!(
        drain(&mut s),
        vec![Output::Closed(CloseReason::TransportClose)]
    );
    let mut s = Session::new(
        t(0),
        "w".into(),
        Protocol::V4,
        Transport::WebSocket,
        Config::default(),
    );
    s.handle_ws_closed(t(3), true);
    assert!(drain(&mut s).contains(&Output::Closed(CloseReason::TransportError)));
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
    s.handle_ws_frame(t(1), text("4hello"));
    assert_eq!(
        drain(&mut s),
        vec![Output::WsClose, Output::Closed(CloseReason::TransportError)]
    );
}

#[test]
fn upgrade_to_websocket() {
    let mut s = opened(Config::default());
    s.send(t(1), [text("4buffered")], false, false);
    s.handle_upgrade_request(t(10)).expect("upgrade");
    assert_eq!(
        s.handle_upgrade_request(t(11)),
        Err(UpgradeError::AlreadyUpgrading)
    );
    s.handle_poll(t(12), 1).expect("GET");
    // the buffered packet goes out on the pending GET at once
    assert_eq!(body_of(&drain(&mut s), 1), "4buffered");
    s.handle_poll(t(13), 2).expect("GET");
    s.handle_probe_frame(t(20), text("2probe"));
    assert_eq!(drain(&mut s), vec![Output::ProbeSend(text("3probe"))]);
    // the pending GET is released with a noop within 100 ms
    assert_eq!(s.poll_timeout(), Some(t(120)));
    s.handle_timeout(t(120));
    assert_eq!(body_of(&drain(&mut s), 2), "6");
    s.send(t(130), [text("4during")], false, false);
    s.handle_probe_frame(t(140), text("5"));
    assert_eq!(
        drain(&mut s),
        vec![Output::Upgraded, Output::WsSend(text("4during"))]
    );
    assert_eq!(s.transport(), Transport::WebSocket);
    s.send(t(150), [text("4after")], false, false);
    assert_eq!(drain(&mut s), vec![Output::WsSend(text("4after"))]);
    // polling is refused after the upgrade; so is a second upgrade
    assert_eq!(
        s.handle_poll(t(160), 3),
        Err(RequestError::TransportMismatch)
    );
    assert_eq!(
        s.handle_upgrade_request(t(161)),
        Err(UpgradeError::AlreadyUpgrading)
    );
}

#[test]
fn upgrade_failures_keep_polling() {
    // no `5` within upgradeTimeout
    let mut s = opened(Config::default());
    s.handle_upgrade_request(t(0)).expect("upgrade");
    s.handle_probe_frame(t(1), text("2probe"));
    drain(&mut s);
    s.handle_timeout(t(10_000));
    assert!(drain(&mut s).contains(&Output::ProbeClose));
    assert_eq!(s.transport(), Transport::Polling);
    assert!(!s.is_closed());
    // anything but 2probe / 5 on the probe closes it
    s.handle_upgrade_request(t(10_001)).expect("second try");
    s.handle_probe_frame(t(10_002), text("4nope"));
    assert_eq!(drain(&mut s), vec![Output::ProbeClose]);
    // the probe WebSocket closing abandons the upgrade
    s.handle_upgrade_request(t(10_003)).expect("third try");
    s.handle_probe_closed(t(10_004));
    s.handle_poll(t(10_005), 1).expect("still polling");
    // upgrades disabled
    let mut s = opened(Config {
        allow_upgrades: false,
        ..Config::default()
    });
    assert_eq!(
        s.handle_upgrade_request(t(1)),
        Err(UpgradeError::NotAllowed)
    );
}

#[test]
fn server_close_over_polling() {
    // with a pending GET: buffered packets, then the close packet, in that response
    let mut s = opened(Config::default());
    s.send(t(1), [text("4bye")], false, false);
    s.handle_poll(t(1), 1).expect("GET");
    drain(&mut s);
    s.send(t(2), [text("4last")], false, false);
    s.close(t(3));
    s.handle_poll(t(4), 2).expect("GET");
    let out = drain(&mut s);
    assert_eq!(body_of(&out, 2), "4last\u{1e}1");
    assert!(out.contains(&Output::Closed(CloseReason::ForcedClose)));
    // with no GET coming: closed after closeTimeout
    let mut s = opened(Config::default());
    s.close(t(5));
    assert!(
        !s.send(t(6), [text("4late")], false, false),
        "nothing is sent while closing"
    );
    assert_eq!(s.poll_timeout(), Some(t(30_005)));
    s.handle_timeout(t(30_005));
    assert_eq!(
        drain(&mut s),
        vec![Output::Closed(CloseReason::ForcedClose)]
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
        vec![Output::WsClose, Output::Closed(CloseReason::ForcedClose)]
    );
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn volatile_packets_need_a_writable_transport() {
    let mut s = opened(Config::default());
    assert!(!s.send(t(1), [text("4v")], true, false));
    s.handle_poll(t(2), 1).expect("GET");
    assert!(s.send(t(3), [text("4v")], true, false));
    assert_eq!(body_of(&drain(&mut s), 1), "4v");
    let mut ws = Session::new(
        t(0),
        "w".into(),
        Protocol::V4,
        Transport::WebSocket,
        Config::default(),
    );
    drain(&mut ws);
    ws.set_ws_writable(false);
    assert!(!ws.send(t(1), [text("4v")], true, false));
    assert!(ws.send(t(1), [text("4n")], false, false));
}

#[test]
fn a_client_that_stops_polling_cannot_grow_the_buffer_without_bound() {
    let mut s = opened(Config {
        max_buffered_bytes: 100,
        ..Config::default()
    });
    let mut sent = 0;
    while s.send(t(1), [text("4xxxxxxxxx")], false, false) {
        sent += 1;
        assert!(sent < 100);
    }
    assert!(s.buffered_bytes() <= 100);
    assert!(drain(&mut s).contains(&Output::Closed(CloseReason::BufferFull)));
}

#[test]
fn compress_flag_reaches_the_response() {
    let mut s = opened(Config::default());
    s.send(t(1), [text("4a")], false, true);
    s.handle_poll(t(2), 1).expect("GET");
    assert!(matches!(
        drain(&mut s)[..],
        [Output::PollResponse { compress: true, .. }]
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
        let mut s = Session::new(
            t(0),
            "w".into(),
            protocol,
            Transport::WebSocket,
            Config::default(),
        );
        s.set_supports_binary(!b64);
        drain(&mut s);
        s.send(t(1), [bin()], false, false);
        drain(&mut s)
    };
    // v4: raw binary frame; v3: the type byte first (§1.1, §1.2)
    assert_eq!(ws(Protocol::V4, false), vec![Output::WsSend(bin())]);
    assert_eq!(
        ws(Protocol::V3, false),
        vec![Output::WsSend(Frame::Binary(Bytes::from_static(&[
            4, 1, 2, 3
        ])))]
    );
    // `b64=1`: base64 text frames
    assert_eq!(ws(Protocol::V4, true), vec![Output::WsSend(text("bAQID"))]);
    assert_eq!(ws(Protocol::V3, true), vec![Output::WsSend(text("b4AQID"))]);
    // and what was buffered during an upgrade is sent the same way
    let mut s = opened(Config::default());
    s.set_supports_binary(false);
    s.send(t(1), [bin()], false, false);
    s.handle_upgrade_request(t(2)).expect("upgrade");
    s.handle_probe_frame(t(3), text("2probe"));
    s.handle_probe_frame(t(4), text("5"));
    assert!(drain(&mut s).contains(&Output::WsSend(text("bAQID"))));
}
