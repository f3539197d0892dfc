//! The client Engine.IO session machine (`engine::client::Session`), driven with a fake clock:
//! the handshake, the heartbeat, the long-polling cycle (one GET and one POST in flight, writes
//! cut to `maxPayload`), the upgrade probe and its failures, WebSocket first, `rememberUpgrade`,
//! `tryAllTransports`, `forceBase64`, cache busters and every close.

use bytes::Bytes;
use ferrio_proto::engine::client::{
    CloseReason, Config, Event, Input, Io, Output, Query, SendError, Session, State, Transport,
    TransportId,
};
use ferrio_proto::engine::Frame;
use ferrio_proto::{Instant, Str};

const OPEN: &str = r#"0{"sid":"s1","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;
const OPEN_NO_UPGRADE: &str =
    r#"0{"sid":"s1","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;

fn t(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

fn drain(s: &mut Session) -> Vec<Output> {
    std::iter::from_fn(|| s.poll_output()).collect()
}

fn poll_response(s: &mut Session, now: Instant, transport: TransportId, body: Bytes) {
    s.handle_input(now, Input::poll_response(transport, body));
}

fn post_response(s: &mut Session, now: Instant, transport: TransportId) {
    s.handle_input(now, Input::PostResponse { transport });
}

fn ws_open(s: &mut Session, now: Instant, transport: TransportId) {
    s.handle_input(now, Input::WsOpen { transport });
}

fn ws_frame(s: &mut Session, now: Instant, transport: TransportId, frame: Frame) {
    s.handle_input(now, Input::WsFrame { transport, frame });
}

fn ws_closed(s: &mut Session, now: Instant, transport: TransportId) {
    s.handle_input(now, Input::WsClosed { transport });
}

fn transport_error(s: &mut Session, now: Instant, transport: TransportId, description: &str) {
    s.handle_input(
        now,
        Input::TransportError {
            transport,
            description: description.into(),
        },
    );
}

fn timeout(s: &mut Session, now: Instant) {
    s.handle_input(now, Input::Timeout);
}

fn q(pairs: &[(&str, &str)]) -> Query {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn text(s: &str) -> Frame {
    Frame::Text(Str::from(s))
}

fn msg(s: &str) -> Frame {
    text(&format!("4{s}"))
}

/// The value of `key` in a request's query.
fn param(query: &Query, key: &str) -> Option<String> {
    query.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
}

/// The cache buster of the first request (the handshake GET) of a polling session whose
/// [`Config::stamp_seed`] is `seed`.
fn first_stamp(seed: u64) -> String {
    let mut s = Session::new(Config {
        stamp_seed: seed,
        ..Config::default()
    });
    s.open();
    let Some(Output::Io(Io::Get { query, .. })) = s.poll_output() else {
        panic!("handshake GET")
    };
    param(&query, "t").expect("cache buster")
}

/// Opens a polling session with `open` as the handshake; returns its transport id.
fn open_polling(s: &mut Session, open: &str) -> TransportId {
    s.open();
    let Some(Output::Io(Io::Get { transport, .. })) = s.poll_output() else {
        panic!("handshake GET")
    };
    poll_response(s, t(0), transport, Bytes::from(open.to_owned()));
    transport
}

fn events(outputs: &[Output]) -> Vec<Event> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Event(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

fn posts(outputs: &[Output]) -> Vec<String> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Io(Io::Post { body, .. }) => Some(body.to_string()),
            _ => None,
        })
        .collect()
}

fn gets(outputs: &[Output]) -> usize {
    outputs
        .iter()
        .filter(|o| matches!(o, Output::Io(Io::Get { .. })))
        .count()
}

fn ws_sent(outputs: &[Output]) -> Vec<Frame> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Io(Io::WsSend { frame, .. }) => Some(frame.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn polling_handshake() {
    let mut s = Session::new(Config {
        query: q(&[("token", "x"), ("EIO", "3")]),
        ..Config::default()
    });
    s.open();
    assert_eq!(s.state(), State::Opening);
    let first = drain(&mut s);
    let [Output::Io(Io::Get { transport, query })] = first.as_slice() else {
        panic!("{first:?}")
    };
    let t1 = param(query, "t").expect("cache buster");
    // user keys first, EIO overridden in place, then the cache buster
    assert_eq!(
        query,
        &q(&[
            ("token", "x"),
            ("EIO", "4"),
            ("transport", "polling"),
            ("t", &t1)
        ])
    );
    // the first request of a session with seed 0
    assert_eq!(t1, first_stamp(0));
    assert!(!s.is_writable());
    poll_response(&mut s, t(10), *transport, Bytes::from(OPEN_NO_UPGRADE));
    let out = drain(&mut s);
    assert_eq!(out[0], Output::Event(Event::Open), "{out:?}");
    let open = s.handshake().expect("handshake");
    assert_eq!(open.sid, "s1");
    assert_eq!(open.max_payload, Some(1_000_000));
    let Output::Io(Io::Get { query, .. }) = &out[1] else {
        panic!("{out:?}")
    };
    let t2 = param(query, "t").expect("cache buster");
    assert_eq!(
        query,
        &q(&[
            ("token", "x"),
            ("EIO", "4"),
            ("transport", "polling"),
            ("sid", "s1"),
            ("t", &t2)
        ])
    );
    // the seed's prefix, then the request's number
    let prefix = t1.strip_suffix('1').expect("request 1");
    assert_eq!(t2, format!("{prefix}2"));
    assert_eq!(out.len(), 2);
    assert_eq!(s.state(), State::Open);
    assert_eq!(s.sid(), Some("s1"));
    assert!(s.is_writable());
    assert_eq!(s.poll_timeout(), Some(t(10 + 45_000)));
}

#[test]
fn messages_in_the_handshake_payload_follow_open() {
    let mut s = Session::new(Config::default());
    open_polling(&mut s, &format!("{OPEN_NO_UPGRADE}\u{1e}4hello\u{1e}bAQID"));
    let ev = events(&drain(&mut s));
    assert!(matches!(ev[0], Event::Open));
    assert_eq!(ev[1], Event::Message("hello".into()));
    assert_eq!(ev[2], Event::Binary(Bytes::from_static(&[1, 2, 3])));
}

#[test]
fn ping_is_answered_and_resets_the_deadline() {
    let mut s = Session::new(Config::default());
    let id = open_polling(&mut s, OPEN_NO_UPGRADE);
    drain(&mut s);
    poll_response(&mut s, t(25_000), id, Bytes::from_static(b"2"));
    let out = drain(&mut s);
    assert_eq!(posts(&out), ["3"]);
    assert_eq!(events(&out), [Event::Ping]);
    assert_eq!(gets(&out), 1);
    assert_eq!(s.poll_timeout(), Some(t(70_000)));
    // messages do not reset the heartbeat; only pings do
    poll_response(&mut s, t(60_000), id, Bytes::from_static(b"4x"));
    assert_eq!(s.poll_timeout(), Some(t(70_000)));
}

#[test]
fn ping_timeout_closes_and_posts_close() {
    let mut s = Session::new(Config::default());
    let id = open_polling(&mut s, OPEN_NO_UPGRADE);
    drain(&mut s);
    timeout(&mut s, t(44_999));
    assert!(drain(&mut s).is_empty());
    timeout(&mut s, t(45_000));
    let out = drain(&mut s);
    assert_eq!(posts(&out), ["1"]);
    assert!(out.contains(&Output::Io(Io::Close { transport: id })));
    assert_eq!(
        events(&out),
        [Event::Close {
            reason: CloseReason::PingTimeout,
            description: None
        }]
    );
    assert_eq!(s.state(), State::Closed);
    assert_eq!(s.poll_timeout(), None);
    // a late GET answer is ignored
    poll_response(&mut s, t(45_001), id, Bytes::from_static(b"2"));
    assert!(drain(&mut s).is_empty());
}

#[test]
fn expired_heartbeat_is_checked_before_sending() {
    let mut s = Session::new(Config::default());
    open_polling(&mut s, OPEN_NO_UPGRADE);
    drain(&mut s);
    assert!(!s.has_ping_expired(t(44_000)));
    assert_eq!(
        s.send(t(50_000), [msg("late")], true),
        Err(SendError::Closed)
    );
    let out = drain(&mut s);
    assert_eq!(posts(&out), ["1"]);
    assert!(events(&out).contains(&Event::Close {
        reason: CloseReason::PingTimeout,
        description: None
    }));
}

#[test]
fn one_post_in_flight_and_one_get() {
    let mut s = Session::new(Config::default());
    let id = open_polling(&mut s, OPEN_NO_UPGRADE);
    drain(&mut s);
    s.send(t(1), [msg("a")], true).expect("send");
    assert!(!s.is_writable());
    s.send(t(2), [msg("b")], true).expect("send");
    s.send(
        t(3),
        [msg("c"), Frame::Binary(Bytes::from_static(&[1]))],
        true,
    )
    .expect("send");
    let out = drain(&mut s);
    assert_eq!(posts(&out), ["4a"]);
    assert_eq!(s.buffered_bytes(), 2 + 2 + 2 + 1);
    // a POST answer for another transport changes nothing
    post_response(&mut s, t(4), TransportId::from_u64(99));
    assert!(drain(&mut s).is_empty());
    post_response(&mut s, t(5), id);
    let out = drain(&mut s);
    assert_eq!(posts(&out), ["4b\u{1e}4c\u{1e}bAQ=="]);
    post_response(&mut s, t(6), id);
    assert!(drain(&mut s).is_empty());
    assert_eq!(s.buffered_bytes(), 0);
    assert!(s.is_writable());
    // the GET cycle: each answer starts exactly one new GET
    poll_response(&mut s, t(7), id, Bytes::from_static(b"6"));
    assert_eq!(gets(&drain(&mut s)), 1);
    // a duplicate answer (no GET in flight on our side) is ignored
    poll_response(
        &mut s,
        t(7),
        TransportId::from_u64(42),
        Bytes::from_static(b"6"),
    );
    assert!(drain(&mut s).is_empty());
}

#[test]
fn post_is_cut_to_max_payload() {
    let open =
        r#"0{"sid":"s1","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":20}"#;
    let mut s = Session::new(Config::default());
    let id = open_polling(&mut s, open);
    drain(&mut s);
    // hold the POST with a first message, then queue five of 5 data bytes each
    s.send(t(1), [msg("x")], true).expect("send");
    for _ in 0..5 {
        s.send(t(1), [msg("hello")], true).expect("send");
    }
    drain(&mut s);
    // 1 + (5+2) + (5+2) = 15; a third makes 1 + 7 + 7 + 5 = 20 <= 20; a fourth 27 > 20
    post_response(&mut s, t(2), id);
    assert_eq!(posts(&drain(&mut s)), ["4hello\u{1e}4hello\u{1e}4hello"]);
    post_response(&mut s, t(3), id);
    assert_eq!(posts(&drain(&mut s)), ["4hello\u{1e}4hello"]);
    // binary data counts ceil(len * 1.33): 12 bytes count 16 (1 + 16 + 2 + ...)
    s.send(t(4), [msg("x")], true).expect("send");
    drain(&mut s);
    post_response(&mut s, t(5), id);
    drain(&mut s);
    s.send(t(6), [Frame::Binary(Bytes::from(vec![0u8; 12]))], true)
        .expect("send");
    s.send(t(6), [msg("ab")], true).expect("send");
    drain(&mut s);
    post_response(&mut s, t(7), id);
    let out = drain(&mut s);
    assert_eq!(posts(&out), ["bAAAAAAAAAAAAAAAA"]);
    post_response(&mut s, t(8), id);
    assert_eq!(posts(&drain(&mut s)), ["4ab"]);
    post_response(&mut s, t(9), id);
    assert!(drain(&mut s).is_empty());
    // a single packet larger than maxPayload still goes
    s.send(t(9), [msg(&"y".repeat(50))], true).expect("send");
    assert_eq!(posts(&drain(&mut s)).len(), 1);
}

#[test]
fn write_buffer_is_bounded() {
    let mut s = Session::new(Config {
        max_buffered_bytes: 10,
        ..Config::default()
    });
    open_polling(&mut s, OPEN_NO_UPGRADE);
    drain(&mut s);
    // an empty buffer takes anything
    s.send(t(1), [msg(&"z".repeat(20))], true).expect("send");
    assert_eq!(s.send(t(1), [msg("a")], true), Err(SendError::BufferFull));
    assert_eq!(
        s.send(t(1), [text("2ping")], true),
        Err(SendError::NotAMessage)
    );
}

#[test]
fn server_close_packet_closes() {
    let mut s = Session::new(Config::default());
    let id = open_polling(&mut s, OPEN_NO_UPGRADE);
    drain(&mut s);
    poll_response(&mut s, t(1), id, Bytes::from_static(b"4a\x1e1\x1e4b"));
    let out = drain(&mut s);
    assert_eq!(
        events(&out),
        [
            Event::Message("a".into()),
            Event::Close {
                reason: CloseReason::TransportClose,
                description: Some("transport closed by the server".into())
            }
        ]
    );
    assert!(posts(&out).is_empty(), "no close packet back");
    assert_eq!(gets(&out), 0);
}

#[test]
fn undecodable_payload_is_a_transport_error() {
    let mut s = Session::new(Config::default());
    let id = open_polling(&mut s, OPEN_NO_UPGRADE);
    drain(&mut s);
    poll_response(&mut s, t(1), id, Bytes::from_static(b"4a\x1ex"));
    let ev = events(&drain(&mut s));
    assert_eq!(ev[0], Event::Message("a".into()));
    assert!(matches!(
        ev[1],
        Event::Close {
            reason: CloseReason::TransportError,
            ..
        }
    ));
}

#[test]
fn poll_body_not_utf8_is_a_transport_error() {
    let mut s = Session::new(Config::default());
    let id = open_polling(&mut s, OPEN_NO_UPGRADE);
    drain(&mut s);
    let input = Input::poll_response(id, Bytes::from_static(b"4a\xff"));
    assert!(matches!(input, Input::TransportError { .. }));
    s.handle_input(t(1), input);
    let out = drain(&mut s);
    assert_eq!(
        events(&out),
        [Event::Close {
            reason: CloseReason::TransportError,
            description: Some("parser error: invalid UTF-8 text".into())
        }]
    );
    assert_eq!(out[0], Output::Io(Io::Close { transport: id }));
    // UTF-8 passes through as text
    assert_eq!(
        Input::poll_response(id, Bytes::from_static("4é".as_bytes())),
        Input::PollResponse {
            transport: id,
            body: "4é".into()
        }
    );
}

#[test]
fn handshake_must_come_first() {
    let mut s = Session::new(Config::default());
    open_polling(&mut s, "4hello");
    let ev = events(&drain(&mut s));
    assert!(matches!(
        ev.as_slice(),
        [Event::Close {
            reason: CloseReason::TransportError,
            ..
        }]
    ));
    // and the session can be opened again, with fresh transport ids
    s.open();
    let Some(Output::Io(Io::Get { transport, .. })) = s.poll_output() else {
        panic!()
    };
    assert_eq!(transport, TransportId::from_u64(1));
}

#[test]
fn request_errors_close_with_transport_error() {
    let mut s = Session::new(Config::default());
    let id = open_polling(&mut s, OPEN_NO_UPGRADE);
    drain(&mut s);
    transport_error(&mut s, t(1), id, "xhr poll error");
    let out = drain(&mut s);
    assert_eq!(
        events(&out),
        [Event::Close {
            reason: CloseReason::TransportError,
            description: Some("xhr poll error".into())
        }]
    );
    assert!(posts(&out).is_empty());
    assert_eq!(out[0], Output::Io(Io::Close { transport: id }));
}

#[test]
fn forced_close_waits_for_the_write_buffer() {
    let mut s = Session::new(Config::default());
    let id = open_polling(&mut s, OPEN_NO_UPGRADE);
    drain(&mut s);
    s.send(t(1), [msg("a")], true).expect("send");
    s.send(t(1), [msg("b")], true).expect("send");
    drain(&mut s);
    s.close();
    assert_eq!(s.state(), State::Closing);
    assert_eq!(s.send(t(1), [msg("c")], true), Err(SendError::Closed));
    assert!(drain(&mut s).is_empty());
    // pings are not answered while closing (`_sendPacket` returns early)
    poll_response(&mut s, t(2), id, Bytes::from_static(b"2"));
    assert!(posts(&drain(&mut s)).is_empty());
    post_response(&mut s, t(3), id);
    assert_eq!(posts(&drain(&mut s)), ["4b"]);
    post_response(&mut s, t(4), id);
    let out = drain(&mut s);
    assert_eq!(posts(&out), ["1"]);
    assert_eq!(
        events(&out),
        [Event::Close {
            reason: CloseReason::ForcedClose,
            description: None
        }]
    );
}

#[test]
fn close_before_the_handshake() {
    let mut s = Session::new(Config::default());
    s.open();
    let Some(Output::Io(Io::Get { transport, .. })) = s.poll_output() else {
        panic!()
    };
    s.close();
    let out = drain(&mut s);
    assert_eq!(out[0], Output::Io(Io::Close { transport }));
    assert!(posts(&out).is_empty());
    assert_eq!(s.state(), State::Closed);
}

/// Opens polling with an upgrade offer; returns (polling id, probe id) with the probe's
/// `2probe` already checked.
fn start_upgrade(s: &mut Session) -> (TransportId, TransportId) {
    let poll = open_polling(s, OPEN);
    let out = drain(s);
    let probe = out
        .iter()
        .find_map(|o| match o {
            Output::Io(Io::WsOpen { transport, query }) => {
                assert_eq!(
                    query,
                    &q(&[("EIO", "4"), ("transport", "websocket"), ("sid", "s1")])
                );
                Some(*transport)
            }
            _ => None,
        })
        .expect("probe opened");
    ws_open(s, t(1), probe);
    assert_eq!(ws_sent(&drain(s)), [text("2probe")]);
    (poll, probe)
}

#[test]
fn upgrade_waits_for_the_get_and_the_post() {
    let mut s = Session::new(Config::default());
    let (poll, probe) = start_upgrade(&mut s);
    s.send(t(2), [msg("a")], true).expect("send"); // POST in flight
    assert_eq!(posts(&drain(&mut s)), ["4a"]);
    ws_frame(&mut s, t(3), probe, text("3probe"));
    assert!(s.is_upgrading());
    // engine.io-client's `upgrading`, as the probe is answered and before the pause completes
    assert_eq!(
        drain(&mut s),
        [Output::Event(Event::Upgrading(Transport::WebSocket))]
    );
    s.send(t(3), [msg("b")], true).expect("send"); // waits for the switch
    assert!(drain(&mut s).is_empty());
    // the pending GET is answered with a noop: no new GET, still waiting for the POST
    poll_response(&mut s, t(4), poll, Bytes::from_static(b"6"));
    assert!(drain(&mut s).is_empty());
    post_response(&mut s, t(5), poll);
    let out = drain(&mut s);
    assert_eq!(
        out,
        [
            Output::Io(Io::Close { transport: poll }),
            Output::Io(Io::WsSend {
                transport: probe,
                frame: text("5"),
                compress: false
            }),
            Output::Event(Event::Upgrade(Transport::WebSocket)),
            Output::Io(Io::WsSend {
                transport: probe,
                frame: text("4b"),
                compress: true
            }),
        ]
    );
    assert_eq!(s.transport(), Some(Transport::WebSocket));
    assert!(!s.is_upgrading());
    // from now on frames go over the WebSocket at once, pings too
    ws_frame(&mut s, t(6), probe, text("2"));
    let out = drain(&mut s);
    assert_eq!(ws_sent(&out), [text("3")]);
    assert_eq!(events(&out), [Event::Ping]);
    s.send(
        t(7),
        [msg("c"), Frame::Binary(Bytes::from_static(&[9]))],
        false,
    )
    .expect("send");
    assert_eq!(
        ws_sent(&drain(&mut s)),
        [text("4c"), Frame::Binary(Bytes::from_static(&[9]))]
    );
    // input for the old polling transport is ignored
    poll_response(&mut s, t(8), poll, Bytes::from_static(b"4late"));
    assert!(drain(&mut s).is_empty());
    // a WebSocket close is a transport close, without a close packet
    ws_closed(&mut s, t(9), probe);
    let out = drain(&mut s);
    assert_eq!(
        events(&out),
        [Event::Close {
            reason: CloseReason::TransportClose,
            description: None
        }]
    );
}

#[test]
fn failed_probe_keeps_polling() {
    let mut s = Session::new(Config::default());
    let (poll, probe) = start_upgrade(&mut s);
    ws_frame(&mut s, t(2), probe, text("3nope"));
    let out = drain(&mut s);
    assert_eq!(
        out,
        [
            Output::Io(Io::Close { transport: probe }),
            Output::Event(Event::UpgradeError("probe error".into()))
        ]
    );
    assert_eq!(s.transport(), Some(Transport::Polling));
    s.send(t(3), [msg("a")], true).expect("send");
    assert_eq!(posts(&drain(&mut s)), ["4a"]);
    poll_response(&mut s, t(4), poll, Bytes::from_static(b"4x"));
    assert_eq!(gets(&drain(&mut s)), 1);
}

#[test]
fn probe_failing_while_pausing_resumes_polling() {
    let mut s = Session::new(Config::default());
    let (poll, probe) = start_upgrade(&mut s);
    ws_frame(&mut s, t(2), probe, text("3probe"));
    s.send(t(2), [msg("held")], true).expect("send");
    assert_eq!(
        events(&drain(&mut s)),
        [Event::Upgrading(Transport::WebSocket)]
    );
    transport_error(&mut s, t(3), probe, "websocket error");
    let out = drain(&mut s);
    assert_eq!(
        events(&out),
        [Event::UpgradeError("probe error: websocket error".into())]
    );
    assert!(!s.is_upgrading());
    assert_eq!(posts(&out), ["4held"]);
    // the GET was still in flight, so no second one
    assert_eq!(gets(&out), 0);
    poll_response(&mut s, t(4), poll, Bytes::from_static(b"6"));
    assert_eq!(gets(&drain(&mut s)), 1);
}

#[test]
fn probe_closed_before_answering() {
    let mut s = Session::new(Config::default());
    let (_poll, probe) = start_upgrade(&mut s);
    ws_closed(&mut s, t(2), probe);
    assert_eq!(
        events(&drain(&mut s)),
        [Event::UpgradeError("probe error: transport closed".into())]
    );
}

#[test]
fn no_probe_without_upgrade_or_websocket() {
    let mut s = Session::new(Config {
        upgrade: false,
        ..Config::default()
    });
    open_polling(&mut s, OPEN);
    assert!(!drain(&mut s)
        .iter()
        .any(|o| matches!(o, Output::Io(Io::WsOpen { .. }))));
    let mut s = Session::new(Config {
        transports: vec![Transport::Polling],
        ..Config::default()
    });
    open_polling(&mut s, OPEN);
    assert!(!drain(&mut s)
        .iter()
        .any(|o| matches!(o, Output::Io(Io::WsOpen { .. }))));
}

#[test]
fn close_during_upgrade_waits_for_it() {
    let mut s = Session::new(Config::default());
    let (poll, probe) = start_upgrade(&mut s);
    ws_frame(&mut s, t(2), probe, text("3probe"));
    s.close();
    assert_eq!(s.state(), State::Closing);
    assert_eq!(
        events(&drain(&mut s)),
        [Event::Upgrading(Transport::WebSocket)]
    );
    poll_response(&mut s, t(3), poll, Bytes::from_static(b"6"));
    let out = drain(&mut s);
    assert!(events(&out).contains(&Event::Upgrade(Transport::WebSocket)));
    assert_eq!(
        events(&out).last(),
        Some(&Event::Close {
            reason: CloseReason::ForcedClose,
            description: None
        })
    );
    assert_eq!(
        out.last(),
        Some(&Output::Event(Event::Close {
            reason: CloseReason::ForcedClose,
            description: None
        }))
    );
    assert!(out.contains(&Output::Io(Io::Close { transport: probe })));
}

#[test]
fn websocket_first() {
    let mut s = Session::new(Config {
        transports: vec![Transport::WebSocket],
        ..Config::default()
    });
    s.open();
    let Some(Output::Io(Io::WsOpen { transport, query })) = s.poll_output() else {
        panic!()
    };
    assert_eq!(query, q(&[("EIO", "4"), ("transport", "websocket")]));
    // frames sent before the socket opens wait for it
    s.send(t(0), [msg("early")], true).expect("send");
    assert!(drain(&mut s).is_empty());
    ws_open(&mut s, t(1), transport);
    assert_eq!(ws_sent(&drain(&mut s)), [text("4early")]);
    ws_frame(&mut s, t(2), transport, text(OPEN_NO_UPGRADE));
    let ev = events(&drain(&mut s));
    assert!(matches!(ev.as_slice(), [Event::Open]));
    assert_eq!(s.transport(), Some(Transport::WebSocket));
    ws_frame(
        &mut s,
        t(3),
        transport,
        Frame::Binary(Bytes::from_static(&[1])),
    );
    assert_eq!(
        events(&drain(&mut s)),
        [Event::Binary(Bytes::from_static(&[1]))]
    );
    // closing over WebSocket sends no close packet
    s.close();
    let out = drain(&mut s);
    assert!(ws_sent(&out).is_empty());
    assert_eq!(out[0], Output::Io(Io::Close { transport }));
}

#[test]
fn remember_upgrade_opens_with_websocket_next_time() {
    let mut s = Session::new(Config {
        remember_upgrade: true,
        ..Config::default()
    });
    let (poll, probe) = start_upgrade(&mut s);
    ws_frame(&mut s, t(2), probe, text("3probe"));
    poll_response(&mut s, t(3), poll, Bytes::from_static(b"6"));
    drain(&mut s);
    s.abort();
    drain(&mut s);
    s.open();
    assert!(matches!(
        s.poll_output(),
        Some(Output::Io(Io::WsOpen { .. }))
    ));
}

#[test]
fn no_transports() {
    let mut s = Session::new(Config {
        transports: vec![],
        ..Config::default()
    });
    s.open();
    assert!(matches!(
        events(&drain(&mut s)).as_slice(),
        [Event::Close {
            reason: CloseReason::TransportError,
            ..
        }]
    ));
}

#[test]
fn try_all_transports_opens_the_next_one_after_a_failure() {
    let mut s = Session::new(Config {
        transports: vec![Transport::WebSocket, Transport::Polling],
        try_all_transports: true,
        ..Config::default()
    });
    s.open();
    let Some(Output::Io(Io::WsOpen { transport, .. })) = s.poll_output() else {
        panic!("WebSocket first")
    };
    transport_error(&mut s, t(0), transport, "websocket error");
    let out = drain(&mut s);
    assert!(events(&out).is_empty(), "no close: {out:?}");
    assert_eq!(out[0], Output::Io(Io::Close { transport }));
    let Some(Output::Io(Io::Get {
        transport: get,
        query,
    })) = out.get(1).cloned()
    else {
        panic!("then polling: {out:?}")
    };
    assert_eq!(
        query,
        q(&[
            ("EIO", "4"),
            ("transport", "polling"),
            ("t", &first_stamp(0))
        ])
    );
    // The last one failing too closes the session, as without the option.
    transport_error(&mut s, t(1), get, "xhr poll error");
    assert!(matches!(
        events(&drain(&mut s)).as_slice(),
        [Event::Close {
            reason: CloseReason::TransportError,
            ..
        }]
    ));
    // A new session starts again from the first transport.
    s.open();
    assert!(matches!(
        s.poll_output(),
        Some(Output::Io(Io::WsOpen { .. }))
    ));
    // Without the option the first failure closes.
    let mut s = Session::new(Config {
        transports: vec![Transport::WebSocket, Transport::Polling],
        ..Config::default()
    });
    s.open();
    let Some(Output::Io(Io::WsOpen { transport, .. })) = s.poll_output() else {
        panic!()
    };
    transport_error(&mut s, t(0), transport, "websocket error");
    assert!(matches!(
        events(&drain(&mut s)).as_slice(),
        [Event::Close { .. }]
    ));
}

#[test]
fn force_base64_asks_for_text_and_sends_binary_as_text() {
    let mut s = Session::new(Config {
        transports: vec![Transport::WebSocket],
        force_base64: true,
        ..Config::default()
    });
    s.open();
    let Some(Output::Io(Io::WsOpen { transport, query })) = s.poll_output() else {
        panic!()
    };
    assert_eq!(
        query,
        q(&[("EIO", "4"), ("transport", "websocket"), ("b64", "1")])
    );
    ws_open(&mut s, t(1), transport);
    ws_frame(&mut s, t(2), transport, text(OPEN_NO_UPGRADE));
    drain(&mut s);
    s.send(t(3), [Frame::Binary(Bytes::from_static(&[1, 2, 3]))], true)
        .expect("send");
    assert_eq!(ws_sent(&drain(&mut s)), [text("bAQID")]);
    // base64 binary from the server reads as binary
    ws_frame(&mut s, t(4), transport, text("bAQID"));
    assert_eq!(
        events(&drain(&mut s)),
        [Event::Binary(Bytes::from_static(&[1, 2, 3]))]
    );
}

/// Every request's query, in order, for a session opened over polling that upgrades.
fn stamps_of(config: Config) -> Vec<(Transport, Option<String>)> {
    let mut s = Session::new(config);
    s.open();
    let first = drain(&mut s);
    let [Output::Io(Io::Get { transport, .. })] = first.as_slice() else {
        panic!("{first:?}")
    };
    poll_response(&mut s, t(0), *transport, Bytes::from(OPEN));
    let mut seen = Vec::new();
    for out in first.iter().chain(drain(&mut s).iter()) {
        let (kind, query) = match out {
            Output::Io(Io::Get { query, .. } | Io::Post { query, .. }) => {
                (Transport::Polling, query)
            }
            Output::Io(Io::WsOpen { query, .. }) => (Transport::WebSocket, query),
            _ => continue,
        };
        let stamp = query.iter().find(|(k, _)| k == "t" || k == "ts");
        seen.push((kind, stamp.map(|(k, v)| format!("{k}={v}"))));
    }
    seen
}

#[test]
fn cache_busters_follow_timestamp_requests() {
    // By default polling requests are stamped, each with its own value, WebSocket ones not.
    let seen = stamps_of(Config::default());
    let polls: Vec<_> = seen
        .iter()
        .filter(|(k, _)| *k == Transport::Polling)
        .collect();
    assert!(polls.len() >= 2, "{seen:?}");
    assert!(polls.iter().all(|(_, v)| v.is_some()));
    assert_ne!(polls[0].1, polls[1].1);
    assert!(seen.contains(&(Transport::WebSocket, None)), "{seen:?}");
    // `timestampRequests: true` stamps the WebSocket too, under `timestampParam`.
    let seen = stamps_of(Config {
        timestamp_requests: Some(true),
        timestamp_param: "ts".into(),
        ..Config::default()
    });
    assert!(seen
        .iter()
        .all(|(_, v)| v.as_deref().is_some_and(|v| v.starts_with("ts="))));
    assert!(seen.iter().any(|(k, _)| *k == Transport::WebSocket));
    // `false`: nothing is stamped.
    let seen = stamps_of(Config {
        timestamp_requests: Some(false),
        ..Config::default()
    });
    assert!(seen.iter().all(|(_, v)| v.is_none()), "{seen:?}");
    // Another seed, another prefix: a new page does not meet a cached answer.
    assert_ne!(first_stamp(1), first_stamp(2));
    // and within a session each request has its own value
    let seen = stamps_of(Config {
        stamp_seed: 1,
        ..Config::default()
    });
    let polls: Vec<_> = seen
        .iter()
        .filter(|(k, _)| *k == Transport::Polling)
        .collect();
    assert_eq!(polls[0].1, Some(format!("t={}", first_stamp(1))));
    assert_ne!(polls[0].1, polls[1].1, "{seen:?}");
}

/// `report_packets`: the session's packets in and out (engine.io-client's `packet` and
/// `packetCreate`), over polling and after the upgrade; never the probe or the `upgrade` packet;
/// nothing when not asked for.
#[test]
#[cfg(feature = "engine-events")]
fn reported_packets_are_the_sessions_own() {
    use ferrio_proto::engine::Packet;
    let packets = |out: &[Output]| -> Vec<(bool, Packet)> {
        events(out)
            .into_iter()
            .filter_map(|e| match e {
                Event::Packet(p) => Some((false, p)),
                Event::PacketCreate(p) => Some((true, p)),
                _ => None,
            })
            .collect()
    };
    let message = |s: &str| Packet::Message(Str::from(s));

    // Not asked for: no packet events, whatever passes.
    let mut s = Session::new(Config::default());
    let (poll, probe) = start_upgrade(&mut s);
    poll_response(&mut s, t(2), poll, Bytes::from_static(b"2\x1e4x"));
    s.send(t(2), [msg("a")], true).expect("send");
    assert!(packets(&drain(&mut s)).is_empty());
    let _ = probe;

    let mut s = Session::new(Config::default());
    s.report_packets(true);
    s.open();
    let Some(Output::Io(Io::Get {
        transport: poll, ..
    })) = s.poll_output()
    else {
        panic!("handshake GET")
    };
    poll_response(&mut s, t(0), poll, Bytes::from(format!("{OPEN}\x1e4hi")));
    let out = drain(&mut s);
    let got = packets(&out);
    assert!(matches!(&got[0], (false, Packet::Open(_))), "{got:?}");
    assert_eq!(got[1..], [(false, message("hi"))]);
    // the packet comes before what the session makes of it
    let first_packet = out
        .iter()
        .position(|o| matches!(o, Output::Event(Event::Packet(_))));
    let open = out
        .iter()
        .position(|o| matches!(o, Output::Event(Event::Open)));
    assert!(first_packet < open, "{out:?}");
    let probe = out
        .iter()
        .find_map(|o| match o {
            Output::Io(Io::WsOpen { transport, .. }) => Some(*transport),
            _ => None,
        })
        .expect("probe opened");

    // a ping and the pong it queues; messages POSTed
    poll_response(&mut s, t(1), poll, Bytes::from_static(b"2"));
    s.send(t(1), [msg("a")], true).expect("send");
    let out = drain(&mut s);
    assert_eq!(posts(&out), ["3"]);
    assert_eq!(
        packets(&out),
        [
            (false, Packet::Ping(Str::from(""))),
            (true, Packet::Pong(Str::from("")))
        ]
    );
    post_response(&mut s, t(2), poll);
    assert_eq!(packets(&drain(&mut s)), [(true, message("a"))]);

    // the upgrade: the probe's frames are not the session's
    ws_open(&mut s, t(3), probe);
    ws_frame(&mut s, t(3), probe, text("3probe"));
    poll_response(&mut s, t(4), poll, Bytes::from_static(b"6"));
    post_response(&mut s, t(4), poll); // the POST of "4a"
    let out = drain(&mut s);
    assert_eq!(ws_sent(&out), [text("2probe"), text("5")]);
    assert_eq!(packets(&out), [(false, Packet::Noop)]);
    assert_eq!(s.transport(), Some(Transport::WebSocket));

    // on the WebSocket
    ws_frame(&mut s, t(5), probe, text("4x"));
    s.send(t(5), [msg("b")], true).expect("send");
    let out = drain(&mut s);
    assert_eq!(packets(&out), [(false, message("x")), (true, message("b"))]);
    s.report_packets(false);
    ws_frame(&mut s, t(6), probe, text("4y"));
    assert!(packets(&drain(&mut s)).is_empty());
}
