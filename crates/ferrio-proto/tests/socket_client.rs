//! The client Socket.IO `Manager`, driven with a fake clock over a WebSocket (and polling where
//! the transport matters): namespaces and auth, the CONNECT handshake, emits and acks, ack
//! timeouts, the send and receive buffers, the delivery queue (`retries`), reconnection and its
//! backoff, connection state recovery, and the closes.

use std::time::Duration;

use bytes::Bytes;
use ferrio_proto::engine::client::{
    self as eio, Config as EngineConfig, Io, Transport, TransportId,
};
use ferrio_proto::engine::Frame;
use ferrio_proto::socket::backoff::SplitMix64;
use ferrio_proto::socket::client::{
    AckError, AckId, Auth, ClientError, DisconnectReason, EmitOptions, Event, Input, Manager,
    ManagerConfig, Output, ReadyState, SocketId, SocketOptions,
};
use ferrio_proto::socket::{AckId as WireId, Packet, RawJson};
use ferrio_proto::{Instant, Str};

const OPEN: &str =
    r#"0{"sid":"e1","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;

fn t(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

fn raw(s: &str) -> RawJson {
    RawJson::parse(s).expect("json")
}

fn ev(name: &str) -> Packet {
    Packet::event_with("/", name, &()).expect("event")
}

/// A driver over WebSocket that records what the manager asks for.
struct H {
    m: Manager,
    now: u64,
    ws: Option<TransportId>,
    sent: Vec<String>,
    events: Vec<Event>,
    io: Vec<Io>,
}

impl H {
    fn config() -> ManagerConfig {
        ManagerConfig {
            engine: EngineConfig {
                transports: vec![Transport::WebSocket],
                ..EngineConfig::default()
            },
            seed: 7,
            ..ManagerConfig::default()
        }
    }

    fn new(config: ManagerConfig) -> H {
        H {
            m: Manager::new(config),
            now: 0,
            ws: None,
            sent: Vec::new(),
            events: Vec::new(),
            io: Vec::new(),
        }
    }

    fn now(&self) -> Instant {
        t(self.now)
    }

    fn drain(&mut self) {
        while let Some(out) = self.m.poll_output() {
            match out {
                Output::Io(Io::WsOpen { transport, query }) => {
                    self.ws = Some(transport);
                    self.io.push(Io::WsOpen { transport, query });
                }
                Output::Io(Io::WsSend {
                    frame: Frame::Text(s),
                    ..
                }) => self.sent.push(s.to_string()),
                Output::Io(Io::WsSend {
                    frame: Frame::Binary(b),
                    ..
                }) => self.sent.push(format!("<binary {}>", b.len())),
                Output::Io(io) => self.io.push(io),
                Output::Event(e) => self.events.push(e),
            }
        }
    }

    fn ws(&self) -> TransportId {
        self.ws.expect("a WebSocket was opened")
    }

    /// Gives `input` to the manager at the current time and drains what it produced.
    fn input(&mut self, input: Input) {
        self.m.handle_input(self.now(), input);
        self.drain();
    }

    fn server(&mut self, text: &str) {
        let ws = self.ws();
        self.input(Input::WsFrame {
            transport: ws,
            frame: Frame::Text(Str::from(text)),
        });
    }

    fn handshake(&mut self) {
        let ws = self.ws();
        self.input(Input::WsOpen { transport: ws });
        self.server(OPEN);
    }

    fn ws_closed(&mut self) {
        let ws = self.ws();
        self.input(Input::WsClosed { transport: ws });
    }

    fn sent(&mut self) -> Vec<String> {
        std::mem::take(&mut self.sent)
    }

    fn events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    fn open(&mut self, nsp: &str, options: SocketOptions) -> SocketId {
        let id = self
            .m
            .open_socket(self.now(), nsp, options)
            .expect("open_socket");
        self.drain();
        id
    }

    /// Opens `/` with `options`, connects, and forgets what that produced.
    fn connected_with(&mut self, options: SocketOptions) -> SocketId {
        let s = self.open("/", options);
        self.handshake();
        self.server(r#"40{"sid":"s1"}"#);
        self.sent();
        self.events();
        s
    }

    fn connected(&mut self) -> SocketId {
        self.connected_with(SocketOptions::default())
    }

    fn emit(&mut self, socket: SocketId, packet: Packet, opts: EmitOptions) -> Option<AckId> {
        let r = self.m.emit(self.now(), socket, packet, opts).expect("emit");
        self.drain();
        r
    }

    fn tick(&mut self, ms: u64) {
        self.now = ms;
        self.input(Input::Timeout);
    }

    /// Waits for the scheduled reconnection attempt and completes the handshake.
    fn reconnect(&mut self) {
        let at = self.m.poll_timeout().expect("an attempt is scheduled");
        self.tick(at.as_millis());
        self.handshake();
    }
}

fn disconnect(socket: SocketId, reason: DisconnectReason) -> Event {
    Event::Disconnect {
        socket,
        reason,
        description: None,
    }
}

fn close(reason: DisconnectReason) -> Event {
    Event::Close {
        reason,
        description: None,
    }
}

#[test]
fn close_then_connect_again() {
    let mut h = H::new(H::config());
    let s = h.connected_with(SocketOptions::default());
    h.events();
    let now = h.now();
    h.m.close(now);
    h.drain();
    let events = h.events();
    assert!(
        events.contains(&close(DisconnectReason::ForcedClose)),
        "{events:?}"
    );
    assert!(events.iter().any(|e| matches!(
        e,
        Event::Disconnect { socket, reason: DisconnectReason::ForcedClose, .. } if *socket == s
    )));
    assert!(!h.m.is_connected(s));
    // no reconnection is scheduled
    assert!(h.m.poll_timeout().is_none());
    h.m.connect(now);
    assert_eq!(h.m.ready_state(), ReadyState::Opening);
}

#[test]
fn connects_the_main_namespace() {
    let mut h = H::new(H::config());
    let s = h.open("/", SocketOptions::default());
    assert_eq!(s.index(), 0);
    assert_eq!(h.m.ready_state(), ReadyState::Opening);
    h.handshake();
    assert_eq!(h.events(), [Event::Open]);
    assert_eq!(h.m.ready_state(), ReadyState::Open);
    assert_eq!(h.sent(), ["40"]);
    assert!(!h.m.is_connected(s));
    h.server(r#"40{"sid":"abc"}"#);
    assert_eq!(
        h.events(),
        [Event::Connect {
            socket: s,
            sid: "abc".into(),
            recovered: false
        }]
    );
    assert_eq!(h.m.socket_sid(s), Some("abc"));
    assert!(h.m.is_connected(s));
    assert!(h.m.is_active(s));
    assert!(!h.m.is_recovered(s));
}

#[test]
fn namespaces_and_static_auth() {
    let mut h = H::new(H::config());
    let admin = h.open(
        "admin",
        SocketOptions {
            auth: Auth::Static(Some(raw(r#"{"token":"abc"}"#))),
            ..SocketOptions::default()
        },
    );
    assert_eq!(h.m.socket_nsp(admin), Some("/admin"));
    assert_eq!(h.m.socket_for("/admin"), Some(admin));
    let bad = SocketOptions {
        auth: Auth::Static(Some(raw("[1]"))),
        ..SocketOptions::default()
    };
    assert_eq!(
        h.m.open_socket(h.now(), "/x", bad),
        Err(ClientError::InvalidAuth)
    );
    h.handshake();
    assert_eq!(h.sent(), [r#"40/admin,{"token":"abc"}"#]);
    // a socket created while the manager is open sends its CONNECT at once
    let main = h.open("/", SocketOptions::default());
    assert_eq!(h.sent(), ["40"]);
    // the same namespace gives the same socket
    assert_eq!(
        h.m.open_socket(h.now(), "/admin", SocketOptions::default()),
        Ok(admin)
    );
    assert!(h.sent().is_empty());
    // answers may come in any order
    h.server(r#"40{"sid":"m"}"#);
    h.server(r#"40/admin,{"sid":"a"}"#);
    assert_eq!(
        h.events(),
        [
            Event::Open,
            Event::Connect {
                socket: main,
                sid: "m".into(),
                recovered: false
            },
            Event::Connect {
                socket: admin,
                sid: "a".into(),
                recovered: false
            }
        ]
    );
}

#[test]
fn auth_callback_is_asked_on_every_connection() {
    let mut h = H::new(H::config());
    let s = h.open(
        "/",
        SocketOptions {
            auth: Auth::Callback,
            ..SocketOptions::default()
        },
    );
    h.handshake();
    assert_eq!(h.events(), [Event::Open, Event::AuthNeeded { socket: s }]);
    assert!(h.sent().is_empty());
    assert_eq!(
        h.m.provide_auth(h.now(), s, Some(raw("1"))),
        Err(ClientError::InvalidAuth)
    );
    h.m.provide_auth(h.now(), s, Some(raw(r#"{"token":"t1"}"#)))
        .expect("auth");
    h.drain();
    assert_eq!(h.sent(), [r#"40{"token":"t1"}"#]);
    // a second answer is ignored
    h.m.provide_auth(h.now(), s, None).expect("auth");
    h.drain();
    assert!(h.sent().is_empty());
    h.server(r#"40{"sid":"a"}"#);
    h.ws_closed();
    h.events();
    h.reconnect();
    assert_eq!(
        h.events(),
        [
            Event::ReconnectAttempt(1),
            Event::Open,
            Event::AuthNeeded { socket: s },
            Event::Reconnect(1)
        ]
    );
    h.m.provide_auth(h.now(), s, Some(raw(r#"{"token":"t2"}"#)))
        .expect("auth");
    h.drain();
    assert_eq!(h.sent(), [r#"40{"token":"t2"}"#]);
}

#[test]
fn emits_before_connect_are_buffered_and_flushed_once() {
    let mut h = H::new(H::config());
    let s = h.open("/", SocketOptions::default());
    assert_eq!(h.emit(s, ev("a"), EmitOptions::default()), None);
    let b = h.emit(s, ev("b"), EmitOptions::with_ack()).expect("ack");
    assert_eq!(b.as_u64(), 0);
    assert_eq!(h.m.send_buffer_len(s), 2);
    h.handshake();
    h.events();
    assert_eq!(h.sent(), ["40"]);
    // an event sent before the accept is held, then delivered before `connect`
    h.server(r#"42["early"]"#);
    assert!(h.events().is_empty());
    h.server(r#"40{"sid":"x"}"#);
    let events = h.events();
    let [Event::Event { socket, packet }, Event::Connect { socket: c, .. }] = events.as_slice()
    else {
        panic!("{events:?}")
    };
    assert_eq!((*socket, *c), (s, s));
    assert_eq!(packet.event_name().as_deref(), Some("early"));
    assert_eq!(h.sent(), [r#"42["a"]"#, r#"420["b"]"#]);
    assert_eq!(h.m.send_buffer_len(s), 0);
    // a reconnection does not send them again
    h.ws_closed();
    assert_eq!(
        h.events(),
        [
            close(DisconnectReason::TransportClose),
            disconnect(s, DisconnectReason::TransportClose),
            Event::AckError {
                socket: s,
                ack: b,
                error: AckError::Disconnected
            }
        ]
    );
    h.reconnect();
    h.server(r#"40{"sid":"y"}"#);
    assert_eq!(h.sent(), ["40"]);
}

#[test]
fn acks_are_matched_per_socket_with_ids_from_zero() {
    let mut h = H::new(H::config());
    let main = h.connected();
    let admin = h.open("/admin", SocketOptions::default());
    h.server(r#"40/admin,{"sid":"a"}"#);
    h.sent();
    h.events();
    let a0 = h.emit(main, ev("x"), EmitOptions::with_ack());
    let b0 = h.emit(admin, ev("x"), EmitOptions::with_ack());
    let a1 = h.emit(main, ev("y"), EmitOptions::with_ack());
    assert_eq!(
        h.sent(),
        [r#"420["x"]"#, r#"42/admin,0["x"]"#, r#"421["y"]"#]
    );
    h.server(r#"431["second"]"#);
    h.server(r#"43/admin,0[]"#);
    h.server(r#"431[]"#); // answered already: ignored
    h.server(r#"437[]"#); // unknown: ignored
    h.server(r#"430[1]"#);
    let events = h.events();
    assert_eq!(events.len(), 3, "{events:?}");
    let ack_of = |e: &Event| match e {
        Event::Ack {
            socket,
            ack,
            packet,
        } => (*socket, Some(*ack), packet.clone()),
        other => panic!("{other:?}"),
    };
    let (s, id, p) = ack_of(&events[0]);
    assert_eq!((s, id), (main, a1));
    assert_eq!(p.args::<(String,)>().expect("args").0, "second");
    assert_eq!(ack_of(&events[1]).0, admin);
    assert_eq!(ack_of(&events[1]).1, b0);
    assert_eq!(ack_of(&events[2]).1, a0);
}

#[test]
fn ack_timeout() {
    let mut h = H::new(H::config());
    let s = h.connected_with(SocketOptions {
        ack_timeout: Some(Duration::from_millis(3000)),
        ..SocketOptions::default()
    });
    let a = h.emit(
        s,
        ev("x"),
        EmitOptions::with_ack_timeout(Duration::from_millis(1000)),
    );
    let b = h.emit(s, ev("y"), EmitOptions::with_ack()); // the socket's 3 s
    assert_eq!(h.m.poll_timeout(), Some(t(1000)));
    h.tick(999);
    assert!(h.events().is_empty());
    h.tick(1000);
    assert_eq!(
        h.events(),
        [Event::AckError {
            socket: s,
            ack: a.expect("ack"),
            error: AckError::Timeout
        }]
    );
    h.server("430[]"); // too late
    assert!(h.events().is_empty());
    assert_eq!(h.m.poll_timeout(), Some(t(3000)));
    h.server("431[]");
    assert!(matches!(h.events().as_slice(), [Event::Ack { ack, .. }] if Some(*ack) == b));
    assert_eq!(
        h.m.poll_timeout(),
        Some(t(45_000)),
        "only the heartbeat left"
    );
}

#[test]
fn a_buffered_packet_that_timed_out_is_not_sent() {
    let mut h = H::new(H::config());
    let s = h.open("/", SocketOptions::default());
    let x = h
        .emit(
            s,
            ev("x"),
            EmitOptions::with_ack_timeout(Duration::from_millis(500)),
        )
        .expect("ack");
    assert_eq!(x.as_u64(), 0);
    h.emit(s, ev("y"), EmitOptions::default());
    h.tick(500);
    assert_eq!(
        h.events(),
        [Event::AckError {
            socket: s,
            ack: x,
            error: AckError::Timeout
        }]
    );
    assert_eq!(h.m.send_buffer_len(s), 1);
    h.handshake();
    h.server(r#"40{"sid":"x"}"#);
    assert_eq!(h.sent(), ["40", r#"42["y"]"#]);
}

#[test]
fn disconnection_fails_sent_acks_but_keeps_buffered_ones() {
    let mut h = H::new(H::config());
    let s = h.connected();
    let sent = h.emit(s, ev("a"), EmitOptions::with_ack()).expect("ack");
    assert_eq!(h.sent(), [r#"420["a"]"#]);
    h.ws_closed();
    assert_eq!(
        h.events(),
        [
            close(DisconnectReason::TransportClose),
            disconnect(s, DisconnectReason::TransportClose),
            Event::AckError {
                socket: s,
                ack: sent,
                error: AckError::Disconnected
            }
        ]
    );
    let buffered = h.emit(s, ev("b"), EmitOptions::with_ack()).expect("ack");
    h.reconnect();
    h.server(r#"40{"sid":"s2"}"#);
    assert_eq!(h.sent(), ["40", r#"421["b"]"#]);
    h.server("431[]");
    let events = h.events();
    assert!(matches!(events.last(), Some(Event::Ack { ack, .. }) if *ack == buffered));
}

#[test]
fn retries_resend_the_head_until_the_limit() {
    let mut h = H::new(H::config());
    let s = h.connected_with(SocketOptions {
        retries: 2,
        ack_timeout: Some(Duration::from_millis(100)),
        ..SocketOptions::default()
    });
    let a = h.emit(s, ev("x"), EmitOptions::with_ack()).expect("ack");
    assert_eq!(h.emit(s, ev("y"), EmitOptions::default()), None);
    assert_eq!(h.sent(), [r#"420["x"]"#]);
    assert_eq!(h.m.queue_len(s), 2);
    h.tick(100);
    assert_eq!(h.sent(), [r#"421["x"]"#]);
    h.tick(200);
    assert_eq!(h.sent(), [r#"422["x"]"#]);
    assert!(h.events().is_empty());
    // the third try timed out: 3 > retries, the emit fails and the next one goes
    h.tick(300);
    assert_eq!(
        h.events(),
        [Event::AckError {
            socket: s,
            ack: a,
            error: AckError::Timeout
        }]
    );
    assert_eq!(h.sent(), [r#"423["y"]"#]);
    h.server("433[]");
    assert!(h.events().is_empty(), "no ack was asked for y");
    assert_eq!(h.m.queue_len(s), 0);
    // volatile emits bypass the queue
    h.emit(
        s,
        ev("v"),
        EmitOptions {
            volatile: true,
            ..EmitOptions::default()
        },
    );
    assert_eq!(h.sent(), [r#"42["v"]"#]);
}

#[test]
fn retries_deliver_in_order() {
    let mut h = H::new(H::config());
    let s = h.connected_with(SocketOptions {
        retries: 1,
        ack_timeout: Some(Duration::from_millis(1000)),
        ..SocketOptions::default()
    });
    let x = h.emit(s, ev("x"), EmitOptions::with_ack()).expect("ack");
    let y = h.emit(s, ev("y"), EmitOptions::with_ack()).expect("ack");
    assert_eq!(h.sent(), [r#"420["x"]"#]);
    h.server(r#"430["ok"]"#);
    assert!(matches!(h.events().as_slice(), [Event::Ack { ack, .. }] if *ack == x));
    assert_eq!(h.sent(), [r#"421["y"]"#]);
    h.server("430[]"); // duplicate of the first answer
    assert!(h.events().is_empty());
    h.server("431[]");
    assert!(matches!(h.events().as_slice(), [Event::Ack { ack, .. }] if *ack == y));
}

#[test]
fn the_queue_survives_a_disconnection() {
    let mut h = H::new(H::config());
    let s = h.connected_with(SocketOptions {
        retries: 3,
        ack_timeout: Some(Duration::from_millis(10_000)),
        ..SocketOptions::default()
    });
    h.emit(s, ev("x"), EmitOptions::with_ack()).expect("ack");
    assert_eq!(h.sent(), [r#"420["x"]"#]);
    h.ws_closed();
    assert_eq!(h.m.queue_len(s), 1);
    h.reconnect();
    h.server(r#"40{"sid":"s2"}"#);
    assert_eq!(h.sent(), ["40", r#"421["x"]"#]);
}

/// The backoff formula written out again, independently of [`Backoff`].
fn formula(attempts: i32, rand: f64) -> u64 {
    let ms = 1000.0 * 2f64.powi(attempts);
    let deviation = (rand * 0.5 * ms).floor();
    let ms = if ((rand * 10.0).floor() as i64) & 1 == 0 {
        ms - deviation
    } else {
        ms + deviation
    };
    ms.min(5000.0) as u64
}

#[test]
fn reconnection_delays_follow_the_formula_with_the_seeded_randoms() {
    let mut h = H::new(ManagerConfig {
        seed: 42,
        ..H::config()
    });
    let s = h.connected();
    let mut rng = SplitMix64::new(42);
    h.ws_closed();
    h.events();
    let mut now = 0;
    let mut delays = Vec::new();
    for attempt in 1..=5u32 {
        let delay = formula(attempt as i32 - 1, rng.next_f64());
        delays.push(delay);
        assert_eq!(
            h.m.poll_timeout(),
            Some(t(now + delay)),
            "attempt {attempt}"
        );
        now += delay;
        h.tick(now);
        assert_eq!(h.events(), [Event::ReconnectAttempt(attempt)]);
        let ws = h.ws();
        h.m.handle_input(
            t(now),
            Input::TransportError {
                transport: ws,
                description: "websocket error".into(),
            },
        );
        h.drain();
        let message = "websocket error".to_owned();
        assert_eq!(
            h.events(),
            [
                Event::Error {
                    message: message.clone()
                },
                Event::ConnectError {
                    socket: s,
                    message: message.clone(),
                    data: None,
                    retrying: true,
                },
                Event::ReconnectError { message }
            ]
        );
    }
    // the delays grow and stay within [min/2, max] around 1000 * 2^n
    assert!(
        delays.iter().all(|d| (500..=5000).contains(d)),
        "{delays:?}"
    );
}

#[test]
fn reconnect_failed_after_the_attempts() {
    let mut h = H::new(ManagerConfig {
        reconnection_attempts: Some(2),
        ..H::config()
    });
    let s = h.connected();
    h.ws_closed();
    h.events();
    for _ in 0..2 {
        let at = h.m.poll_timeout().expect("attempt");
        h.tick(at.as_millis());
        h.ws_closed();
    }
    let events = h.events();
    assert_eq!(events[events.len() - 2], Event::ReconnectFailed);
    assert!(matches!(events.last(), Some(Event::ReconnectError { .. })));
    assert_eq!(h.m.poll_timeout(), None);
    assert!(h.m.is_active(s), "the socket still connects if asked");
    h.m.connect(h.now());
    h.drain();
    assert_eq!(h.m.ready_state(), ReadyState::Opening);
}

#[test]
fn successful_reconnection() {
    let mut h = H::new(H::config());
    let s = h.connected();
    h.ws_closed();
    assert_eq!(
        h.events(),
        [
            close(DisconnectReason::TransportClose),
            disconnect(s, DisconnectReason::TransportClose)
        ]
    );
    assert!(h.m.is_active(s));
    assert!(h.m.is_reconnecting());
    h.reconnect();
    assert_eq!(
        h.events(),
        [Event::ReconnectAttempt(1), Event::Open, Event::Reconnect(1)]
    );
    assert_eq!(h.sent(), ["40"]);
    h.server(r#"40{"sid":"s2"}"#);
    assert_eq!(
        h.events(),
        [Event::Connect {
            socket: s,
            sid: "s2".into(),
            recovered: false
        }]
    );
    assert!(!h.m.is_reconnecting());
    assert_eq!(h.m.socket_sid(s), Some("s2"));
}

/// The `token` query parameter of the WebSocket the manager opened last.
fn last_token(h: &H) -> Option<String> {
    h.io.iter().rev().find_map(|io| match io {
        Io::WsOpen { query, .. } => Some(
            query
                .iter()
                .find(|(k, _)| k == "token")
                .map(|(_, v)| v.clone())
                .unwrap_or_default(),
        ),
        _ => None,
    })
}

#[test]
fn a_query_set_while_connected_is_sent_by_the_next_session() {
    let mut config = H::config();
    config.engine.query = vec![("token".into(), "a".into())];
    let mut h = H::new(config);
    h.connected();
    assert_eq!(last_token(&h).as_deref(), Some("a"));
    // Set during the session (as in a `reconnect_attempt` listener, or any time before).
    h.m.set_query(vec![("token".into(), "b".into())]);
    h.ws_closed();
    h.reconnect();
    assert_eq!(last_token(&h).as_deref(), Some("b"));
    // Set while closed: the next opening sends it.
    h.m.close(h.now());
    h.drain();
    h.m.set_query(vec![("token".into(), "c".into())]);
    h.m.connect(h.now());
    h.drain();
    assert_eq!(last_token(&h).as_deref(), Some("c"));
}

/// Answers the first GET of `out` (a manager opening over polling) with the handshake, drains
/// what that produced, and returns the polling transport.
fn polling_handshake(m: &mut Manager, out: Vec<Output>) -> TransportId {
    let Some(Output::Io(Io::Get { transport, .. })) = out.first() else {
        panic!("no GET in {out:?}")
    };
    let transport = *transport;
    m.handle_input(
        t(1),
        Input::PollResponse {
            transport,
            body: Str::from(OPEN),
        },
    );
    while m.poll_output().is_some() {}
    transport
}

#[test]
fn a_query_set_during_a_polling_session_waits_for_the_next_one() {
    let mut config = ManagerConfig::default();
    config.engine.transports = vec![Transport::Polling];
    config.engine.query = vec![("token".into(), "a".into())];
    let mut m = Manager::new(config);
    m.open_socket(t(0), "/", SocketOptions::default())
        .expect("open");
    let token = |out: &[Output]| {
        out.iter().find_map(|o| match o {
            Output::Io(Io::Get { query, .. }) => query
                .iter()
                .find(|(k, _)| k == "token")
                .map(|(_, v)| v.clone()),
            _ => None,
        })
    };
    let out: Vec<_> = std::iter::from_fn(|| m.poll_output()).collect();
    assert_eq!(token(&out).as_deref(), Some("a"));
    let transport = polling_handshake(&mut m, out);
    m.set_query(vec![("token".into(), "b".into())]);
    // The open session's next long poll keeps its query.
    m.handle_input(
        t(2),
        Input::PollResponse {
            transport,
            body: Str::from_static(r#"40{"sid":"x"}"#),
        },
    );
    let out: Vec<_> = std::iter::from_fn(|| m.poll_output()).collect();
    assert_eq!(token(&out).as_deref(), Some("a"), "{out:?}");
}

#[test]
fn server_disconnect_is_final_for_the_socket() {
    let mut h = H::new(H::config());
    let main = h.connected();
    let admin = h.open("/admin", SocketOptions::default());
    h.server(r#"40/admin,{"sid":"a"}"#);
    h.events();
    h.server("41/admin,");
    assert_eq!(
        h.events(),
        [disconnect(admin, DisconnectReason::IoServerDisconnect)]
    );
    assert!(!h.m.is_active(admin));
    assert_eq!(h.m.ready_state(), ReadyState::Open);
    // events for an inactive socket are dropped
    h.server(r#"42/admin,["x"]"#);
    assert!(h.events().is_empty());
    // the last active socket gone, the manager closes and does not reconnect
    h.io.clear();
    h.server("41");
    assert_eq!(
        h.events(),
        [
            close(DisconnectReason::ForcedClose),
            disconnect(main, DisconnectReason::IoServerDisconnect)
        ]
    );
    assert!(h.io.contains(&Io::Close { transport: h.ws() }));
    assert_eq!(h.m.poll_timeout(), None);
    assert!(!h.m.is_reconnecting());
    // connecting it again is up to the application
    h.m.connect_socket(h.now(), main).expect("connect");
    h.drain();
    assert_eq!(h.m.ready_state(), ReadyState::Opening);
}

#[test]
fn connect_error_deactivates_the_socket() {
    let mut h = H::new(H::config());
    let s = h.open("/", SocketOptions::default());
    h.handshake();
    h.events();
    h.server(r#"44{"message":"not authorized","data":{"reason":"bad token"}}"#);
    assert_eq!(
        h.events(),
        [
            close(DisconnectReason::ForcedClose),
            Event::ConnectError {
                socket: s,
                message: "not authorized".into(),
                data: Some(raw(r#"{"reason":"bad token"}"#)),
                retrying: false,
            }
        ]
    );
    assert!(!h.m.is_active(s));
    assert_eq!(h.m.poll_timeout(), None);
}

#[test]
fn accept_without_sid_is_a_v2_server() {
    let mut h = H::new(H::config());
    let s = h.open("/", SocketOptions::default());
    h.handshake();
    h.events();
    h.server("40");
    let events = h.events();
    assert!(
        matches!(&events[..], [Event::ConnectError { socket, message, .. }] if *socket == s && message.contains("v2.x"))
    );
    assert!(h.m.is_active(s));
}

#[test]
fn client_disconnect() {
    let mut h = H::new(H::config());
    let s = h.connected();
    let a = h.emit(s, ev("x"), EmitOptions::with_ack()).expect("ack");
    h.sent();
    h.m.disconnect(h.now(), s).expect("disconnect");
    h.drain();
    assert_eq!(h.sent(), ["41"]);
    assert_eq!(
        h.events(),
        [
            close(DisconnectReason::ForcedClose),
            disconnect(s, DisconnectReason::IoClientDisconnect),
            Event::AckError {
                socket: s,
                ack: a,
                error: AckError::Disconnected
            }
        ]
    );
    assert_eq!(h.m.engine().state(), eio::State::Closed);
    assert_eq!(h.m.poll_timeout(), None);
    assert!(!h.m.is_active(s));
    // a second disconnect has nothing left to do
    h.m.disconnect(h.now(), s).expect("disconnect");
    h.drain();
    assert!(h.events().is_empty() && h.sent().is_empty());
}

#[test]
fn disconnecting_during_the_reconnection_wait_stops_it() {
    let mut h = H::new(H::config());
    let s = h.connected();
    h.ws_closed();
    h.events();
    h.m.disconnect(h.now(), s).expect("disconnect");
    h.drain();
    assert_eq!(h.events(), [close(DisconnectReason::ForcedClose)]);
    assert!(!h.m.is_reconnecting());
    assert_eq!(h.m.poll_timeout(), None);
}

/// The events of a close with `parse error` and `description`, for the one socket `s`.
fn parse_error_close(s: SocketId, description: &str) -> [Event; 2] {
    let description = Some(description.to_owned());
    [
        Event::Close {
            reason: DisconnectReason::ParseError,
            description: description.clone(),
        },
        Event::Disconnect {
            socket: s,
            reason: DisconnectReason::ParseError,
            description,
        },
    ]
}

/// A driver whose JSON check of events is deferred (`ManagerConfig::defer_json_check`).
fn deferred() -> H {
    H::new(ManagerConfig {
        defer_json_check: true,
        ..H::config()
    })
}

#[test]
fn parse_error_closes_and_reconnects() {
    let mut h = H::new(H::config());
    let s = h.connected();
    h.server("4999");
    assert_eq!(h.events(), parse_error_close(s, "unknown packet type"));
    assert!(h.m.is_reconnecting());
    h.reconnect();
    assert_eq!(h.sent(), ["40"]);
}

/// With the JSON check of events deferred, the manager hands an event over checked for its shape
/// only; the driver's report that it does not parse closes as a parse error does.
#[test]
fn deferred_json_check_hands_events_over_and_closes_when_told() {
    let mut h = deferred();
    let s = h.connected();
    h.server(r#"42["ev",{bad]"#);
    let events = h.events();
    assert!(
        matches!(&events[..], [Event::Event { packet, .. }] if packet.data().map(RawJson::as_str) == Some(r#"["ev",{bad]"#)),
        "{events:?}"
    );
    h.m.payload_invalid(h.now());
    h.drain();
    assert_eq!(h.events(), parse_error_close(s, "invalid payload"));
    assert!(h.m.is_reconnecting());
    // Once closed, a late report changes nothing.
    h.m.payload_invalid(h.now());
    h.drain();
    assert_eq!(h.events(), []);
}

/// What the deferred check still checks at once: payloads without the shape (not ending the
/// array, a reserved name, binary packets), and events for no socket.
#[test]
fn deferred_json_check_keeps_the_rest() {
    for frame in [
        r#"42["ev",{bad"#,
        r#"42["connect",1]"#,
        r#"42/other,["ev",{bad]"#,
        r#"43["ack",{bad]"#,
    ] {
        let mut h = deferred();
        let s = h.connected();
        h.server(frame);
        let events = h.events();
        assert!(
            matches!(
                &events[..],
                [Event::Close { reason: DisconnectReason::ParseError, .. }, Event::Disconnect { socket, .. }]
                    if *socket == s
            ),
            "{frame}: {events:?}"
        );
    }
    // Valid payloads of the shapes checked in full pass as before.
    let mut h = deferred();
    h.connected();
    h.server(r#"42[7,"number name"]"#);
    h.server(r#"42/other,["ev",1]"#);
    let events = h.events();
    assert!(
        matches!(&events[..], [Event::Event { packet, .. }] if packet.event_name().as_deref() == Some("7")),
        "{events:?}"
    );
}

/// An event that arrives before the CONNECT accept is buffered, and may be dropped unread: with
/// the check deferred, it is checked before it is buffered.
#[test]
fn deferred_json_check_checks_buffered_events() {
    let mut h = deferred();
    h.open("/", SocketOptions::default());
    h.handshake();
    h.server(r#"42["early",1]"#);
    h.server(r#"42["early",{bad]"#);
    let events = h.events();
    assert!(
        matches!(
            &events[..],
            [
                Event::Open,
                Event::Close {
                    reason: DisconnectReason::ParseError,
                    ..
                },
                Event::Disconnect { .. }
            ]
        ),
        "{events:?}"
    );
}

/// The recovery offset comes only from an event that reads as JSON when its check is deferred.
#[test]
fn deferred_json_check_takes_offsets_from_json_only() {
    let mut h = deferred();
    h.open("/", SocketOptions::default());
    h.handshake();
    h.sent();
    h.server(r#"40{"sid":"a","pid":"p"}"#);
    h.server(r#"42["e","o1"]"#);
    h.server(r#"42["e",{,"o2"]"#);
    h.m.payload_invalid(h.now());
    h.drain();
    h.events();
    h.reconnect();
    assert_eq!(h.sent(), [r#"40{"pid":"p","offset":"o1"}"#]);
}

#[test]
fn ping_timeout_disconnects() {
    let mut h = H::new(H::config());
    let s = h.connected();
    h.server("2");
    assert_eq!(h.sent(), ["3"]);
    assert_eq!(h.events(), [Event::Ping]);
    h.tick(45_000);
    assert_eq!(
        h.events(),
        [
            close(DisconnectReason::PingTimeout),
            disconnect(s, DisconnectReason::PingTimeout)
        ]
    );
}

#[test]
fn an_expired_heartbeat_buffers_the_emit() {
    let mut h = H::new(H::config());
    let s = h.connected();
    h.now = 50_000; // the timer has not fired yet
    let a = h.emit(s, ev("x"), EmitOptions::with_ack()).expect("ack");
    assert!(h.sent().is_empty());
    assert_eq!(
        h.events(),
        [
            close(DisconnectReason::PingTimeout),
            disconnect(s, DisconnectReason::PingTimeout)
        ],
        "the buffered emit's ack waits"
    );
    assert_eq!(h.m.send_buffer_len(s), 1);
    h.reconnect();
    h.server(r#"40{"sid":"s2"}"#);
    assert_eq!(h.sent(), ["40", r#"420["x"]"#]);
    h.server("430[]");
    assert!(matches!(h.events().last(), Some(Event::Ack { ack, .. }) if *ack == a));
}

#[test]
fn recovery_sends_pid_and_last_offset() {
    let mut h = H::new(H::config());
    let s = h.open(
        "/",
        SocketOptions {
            auth: Auth::Static(Some(raw(r#"{"token":"t"}"#))),
            ..SocketOptions::default()
        },
    );
    h.handshake();
    assert_eq!(h.sent(), [r#"40{"token":"t"}"#]);
    h.server(r#"40{"sid":"a","pid":"p"}"#);
    h.server(r#"42["e",1,"o1"]"#);
    h.server(r#"421["e","o2"]"#); // an ack id: the reference's last argument is a callback
    h.server(r#"42["e",{"x":"o3"}]"#); // last element not a string
    h.ws_closed();
    h.events();
    h.reconnect();
    assert_eq!(h.sent(), [r#"40{"pid":"p","offset":"o1","token":"t"}"#]);
    // the server replays what was missed, then accepts with the same pid
    h.server(r#"42["missed","o4"]"#);
    h.server(r#"40{"sid":"a","pid":"p"}"#);
    let events = h.events();
    assert!(
        matches!(
            &events[..],
            [Event::ReconnectAttempt(1), Event::Open, Event::Reconnect(1), Event::Event { packet, .. }, Event::Connect { .. }]
                if packet.event_name().as_deref() == Some("missed")
        ),
        "{events:?}"
    );
    assert!(h.m.is_recovered(s));
    h.ws_closed();
    h.reconnect();
    assert_eq!(h.sent(), [r#"40{"pid":"p","offset":"o4","token":"t"}"#]);
    // a server without recovery: no pid in the accept, none sent next time
    h.server(r#"40{"sid":"b"}"#);
    assert!(!h.m.is_recovered(s));
    h.ws_closed();
    h.reconnect();
    assert_eq!(h.sent(), [r#"40{"token":"t"}"#]);
}

#[test]
fn volatile_is_dropped_when_not_writable() {
    let mut h = H::new(H::config());
    let s = h.open("/", SocketOptions::default());
    let volatile = EmitOptions {
        volatile: true,
        ..EmitOptions::default()
    };
    h.emit(s, ev("gone"), volatile);
    assert_eq!(h.m.send_buffer_len(s), 0);
    h.handshake();
    h.server(r#"40{"sid":"x"}"#);
    h.sent();
    h.emit(s, ev("kept"), volatile);
    assert_eq!(h.sent(), [r#"42["kept"]"#]);
}

#[test]
fn volatile_over_polling_is_dropped_while_a_post_is_in_flight() {
    let mut m = Manager::new(ManagerConfig::default());
    let s = m
        .open_socket(t(0), "/", SocketOptions::default())
        .expect("open");
    let out: Vec<_> = std::iter::from_fn(|| m.poll_output()).collect();
    let transport = polling_handshake(&mut m, out);
    m.handle_input(
        t(2),
        Input::PollResponse {
            transport,
            body: Str::from_static(r#"40{"sid":"x"}"#),
        },
    );
    let out: Vec<_> = std::iter::from_fn(|| m.poll_output()).collect();
    assert!(out.contains(&Output::Event(Event::Connect {
        socket: s,
        sid: "x".into(),
        recovered: false
    })));
    // the CONNECT's POST is still in flight
    assert!(!m.engine().is_writable());
    let volatile = EmitOptions {
        volatile: true,
        ..EmitOptions::default()
    };
    m.emit(t(3), s, ev("dropped"), volatile).expect("emit");
    m.handle_input(t(4), Input::PostResponse { transport });
    m.emit(t(5), s, ev("sent"), volatile).expect("emit");
    let posts: Vec<_> = std::iter::from_fn(|| m.poll_output())
        .filter_map(|o| match o {
            Output::Io(Io::Post { body, .. }) => Some(body),
            _ => None,
        })
        .collect();
    assert_eq!(posts, [Str::from_static(r#"42["sent"]"#)]);
}

#[test]
fn send_buffer_is_bounded() {
    let mut h = H::new(ManagerConfig {
        max_send_buffer: 2,
        ..H::config()
    });
    let s = h.open("/", SocketOptions::default());
    h.emit(s, ev("a"), EmitOptions::default());
    h.emit(s, ev("b"), EmitOptions::default());
    assert_eq!(
        h.m.emit(h.now(), s, ev("c"), EmitOptions::with_ack()),
        Err(ClientError::SendBufferFull)
    );
    h.handshake();
    h.server(r#"40{"sid":"x"}"#);
    h.sent();
    // the refused emit used no ack id
    assert_eq!(
        h.emit(s, ev("d"), EmitOptions::with_ack())
            .map(AckId::as_u64),
        Some(0)
    );
    assert_eq!(h.sent(), [r#"420["d"]"#]);
}

#[test]
fn invalid_commands_are_refused() {
    let mut h = H::new(H::config());
    let s = h.connected();
    let now = h.now();
    assert_eq!(
        h.m.emit(
            now,
            s,
            Packet::event("/", raw(r#"["connect"]"#), vec![]),
            EmitOptions::default()
        ),
        Err(ClientError::InvalidEvent)
    );
    assert_eq!(
        h.m.emit(
            now,
            s,
            Packet::ack("/", 1, raw("[]"), vec![]),
            EmitOptions::default()
        ),
        Err(ClientError::InvalidEvent)
    );
    assert_eq!(
        h.m.emit(
            now,
            SocketId::from_index(9),
            ev("x"),
            EmitOptions::default()
        ),
        Err(ClientError::UnknownSocket)
    );
    assert_eq!(h.m.ack(now, s, ev("x")), Err(ClientError::InvalidAck));
    h.m.disconnect(now, s).expect("disconnect");
    assert_eq!(
        h.m.ack(now, s, Packet::ack("/", 1, raw("[]"), vec![])),
        Err(ClientError::NotConnected)
    );
}

#[test]
fn connect_timeout() {
    let mut h = H::new(H::config());
    let s = h.open("/", SocketOptions::default());
    let ws = h.ws();
    assert_eq!(h.m.poll_timeout(), Some(t(20_000)));
    h.tick(20_000);
    let message = "timeout".to_owned();
    assert_eq!(
        h.events(),
        [
            Event::Error {
                message: message.clone()
            },
            Event::ConnectError {
                socket: s,
                message,
                data: None,
                retrying: true,
            }
        ]
    );
    assert!(h.io.contains(&Io::Close { transport: ws }));
    assert!(h.m.is_reconnecting());
    // a late handshake on the abandoned WebSocket is ignored
    h.input(Input::WsOpen { transport: ws });
    assert!(h.sent().is_empty() && h.events().is_empty());
}

#[test]
fn answering_server_events_and_binary() {
    let mut h = H::new(H::config());
    let s = h.connected();
    h.server(r#"4212["question"]"#);
    let events = h.events();
    let [Event::Event { packet, .. }] = events.as_slice() else {
        panic!("{events:?}")
    };
    assert_eq!(packet.id(), Some(&WireId::from(12)));
    let answer = Packet::ack_with("/ignored", 12, &("answer",)).expect("ack");
    h.m.ack(h.now(), s, answer).expect("ack");
    h.drain();
    assert_eq!(h.sent(), [r#"4312["answer"]"#]);
    // binary in both directions
    h.server(r#"451-["file",{"_placeholder":true,"num":0}]"#);
    assert!(h.events().is_empty());
    let ws = h.ws();
    h.input(Input::WsFrame {
        transport: ws,
        frame: Frame::Binary(Bytes::from_static(&[1, 2, 3])),
    });
    let events = h.events();
    let [Event::Event { packet, .. }] = events.as_slice() else {
        panic!("{events:?}")
    };
    let (data,): (Bytes,) = packet.args().expect("args");
    assert_eq!(&data[..], &[1, 2, 3]);
    let out = Packet::event_with("/", "up", &(Bytes::from_static(&[9, 9]),)).expect("event");
    h.emit(s, out, EmitOptions::default());
    assert_eq!(
        h.sent(),
        [
            r#"451-["up",{"_placeholder":true,"num":0}]"#.to_owned(),
            "<binary 2>".to_owned()
        ]
    );
}

#[test]
fn receive_buffer_is_bounded() {
    let mut h = H::new(ManagerConfig {
        max_receive_buffer: 1,
        ..H::config()
    });
    let s = h.open("/", SocketOptions::default());
    h.handshake();
    h.events();
    h.server(r#"42["a"]"#);
    h.server(r#"42["b"]"#);
    assert_eq!(
        h.events(),
        [
            Event::Close {
                reason: DisconnectReason::ParseError,
                description: Some("receive buffer full".into())
            },
            Event::Disconnect {
                socket: s,
                reason: DisconnectReason::ParseError,
                description: Some("receive buffer full".into())
            }
        ]
    );
}

#[test]
fn events_held_for_an_accept_that_never_came_are_dropped() {
    let mut h = H::new(H::config());
    let s = h.open("/", SocketOptions::default());
    h.handshake();
    // a replayed event arrives, then the connection dies before the accept
    h.server(r#"42["missed",1]"#);
    h.ws_closed();
    h.events();
    h.reconnect();
    h.server(r#"40{"sid":"s2"}"#);
    let events = h.events();
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::Connect { socket, .. } if *socket == s)));
    assert!(
        !events.iter().any(|e| matches!(e, Event::Event { .. })),
        "the event of the dead connection is not delivered: {events:?}"
    );
}

#[test]
fn a_socket_disconnected_while_connecting_leaves_when_accepted() {
    let mut h = H::new(H::config());
    let root = h.open("/", SocketOptions::default());
    let admin = h.open("/admin", SocketOptions::default());
    h.handshake();
    h.server(r#"40{"sid":"s1"}"#);
    h.sent();
    h.m.disconnect(h.now(), admin).expect("disconnect");
    h.drain();
    assert!(h.sent().is_empty(), "not connected yet: nothing to send");
    h.server(r#"40/admin,{"sid":"s2"}"#);
    assert_eq!(h.sent(), ["41/admin,"]);
    let events = h.events();
    assert!(!events
        .iter()
        .any(|e| matches!(e, Event::Connect { socket, .. } if *socket == admin)));
    assert!(h.m.is_connected(root));
}

#[test]
fn turning_reconnection_off_cancels_the_attempt() {
    let mut h = H::new(H::config());
    h.connected();
    h.ws_closed();
    assert!(h.m.is_reconnecting());
    h.m.set_reconnection(false);
    assert!(!h.m.is_reconnecting());
    assert_eq!(h.m.poll_timeout(), None);
}

/// `onAnyOutgoing`: with `report_sent`, every emit is reported when it goes out: at once when
/// connected, after the CONNECT accept (before `connect`) when it waited in the send buffer;
/// without `report_sent`, nothing is.
#[test]
fn sent_events_report_emits_when_they_go_out() {
    let names = |events: &[Event]| -> Vec<String> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Sent { packet, .. } => Some(packet.event_name()?.into_owned()),
                Event::Connect { .. } => Some("(connect)".to_owned()),
                _ => None,
            })
            .collect()
    };
    let mut h = H::new(H::config());
    let s = h.open("/", SocketOptions::default());
    h.m.report_sent(s, true).expect("known socket");
    h.emit(s, ev("buffered"), EmitOptions::default());
    assert!(names(&h.events()).is_empty(), "not sent while disconnected");
    h.handshake();
    h.server(r#"40{"sid":"x"}"#);
    assert_eq!(names(&h.events()), ["buffered", "(connect)"]);
    h.emit(s, ev("now"), EmitOptions::with_ack());
    let events = h.events();
    assert_eq!(names(&events), ["now"]);
    let Some(Event::Sent { packet, .. }) = events.first() else {
        panic!("{events:?}")
    };
    assert_eq!(
        packet.id(),
        Some(&WireId::from(0)),
        "with the ack id it carries"
    );
    h.m.report_sent(s, false).expect("known socket");
    h.emit(s, ev("quiet"), EmitOptions::default());
    assert!(names(&h.events()).is_empty());
    assert_eq!(
        h.sent(),
        ["40", r#"42["buffered"]"#, r#"420["now"]"#, r#"42["quiet"]"#]
    );
    assert_eq!(
        h.m.report_sent(SocketId::from_index(7), true),
        Err(ClientError::UnknownSocket)
    );
}

/// Every output of the manager up to now.
fn outputs(m: &mut Manager) -> Vec<Output> {
    std::iter::from_fn(|| m.poll_output()).collect()
}

fn manager_events(out: &[Output]) -> Vec<Event> {
    out.iter()
        .filter_map(|o| match o {
            Output::Event(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

/// Opens a manager over polling with a server that offers WebSocket, and returns the manager,
/// the polling transport and the probe (its `2probe` sent).
fn probing() -> (Manager, TransportId, TransportId) {
    let mut m = Manager::new(ManagerConfig::default());
    m.open_socket(t(0), "/", SocketOptions::default())
        .expect("open");
    let Some(Output::Io(Io::Get {
        transport: poll, ..
    })) = m.poll_output()
    else {
        panic!("the first request is a GET")
    };
    let open = r#"0{"sid":"e1","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;
    m.handle_input(
        t(1),
        Input::PollResponse {
            transport: poll,
            body: Str::from(open),
        },
    );
    let probe = outputs(&mut m)
        .iter()
        .find_map(|o| match o {
            Output::Io(Io::WsOpen { transport, .. }) => Some(*transport),
            _ => None,
        })
        .expect("the probe opens");
    m.handle_input(t(2), Input::WsOpen { transport: probe });
    assert!(outputs(&mut m).contains(&Output::Io(Io::WsSend {
        transport: probe,
        frame: Frame::Text(Str::from("2probe")),
        compress: false
    })));
    (m, poll, probe)
}

#[test]
fn the_engine_s_upgrade_events_reach_the_application() {
    let (mut m, poll, probe) = probing();
    m.handle_input(
        t(3),
        Input::WsFrame {
            transport: probe,
            frame: Frame::Text(Str::from("3probe")),
        },
    );
    assert_eq!(
        manager_events(&outputs(&mut m)),
        [Event::Upgrading(Transport::WebSocket)]
    );
    // the GET in flight and the CONNECT's POST end: the switch happens
    m.handle_input(
        t(4),
        Input::PollResponse {
            transport: poll,
            body: Str::from_static("6"),
        },
    );
    assert!(outputs(&mut m).is_empty());
    m.handle_input(t(5), Input::PostResponse { transport: poll });
    let out = outputs(&mut m);
    assert!(manager_events(&out).contains(&Event::Upgrade(Transport::WebSocket)));
    assert_eq!(m.engine().transport(), Some(Transport::WebSocket));
}

#[test]
fn a_failed_probe_reaches_the_application() {
    let (mut m, _poll, probe) = probing();
    m.handle_input(
        t(3),
        Input::WsFrame {
            transport: probe,
            frame: Frame::Text(Str::from("3nope")),
        },
    );
    assert_eq!(
        manager_events(&outputs(&mut m)),
        [Event::UpgradeError("probe error".into())]
    );
    assert_eq!(m.engine().transport(), Some(Transport::Polling));
}

/// `report_engine_packets`: the connection's Engine.IO packets in and out, the handshake
/// included, each before what the manager makes of it; none before it is asked for or after
/// it is turned off.
#[test]
#[cfg(feature = "engine-events")]
fn engine_packets_are_reported_when_asked() {
    use ferrio_proto::engine::Packet as EnginePacket;
    let mut h = H::new(H::config());
    h.m.report_engine_packets(true);
    let s = h.open("/", SocketOptions::default());
    h.handshake();
    let events = h.events();
    assert!(
        matches!(
            &events[..],
            [Event::EnginePacket(EnginePacket::Open(_)), Event::Open, Event::EnginePacketCreate(EnginePacket::Message(m))] if &**m == "0"
        ),
        "{events:?}"
    );
    h.server(r#"40{"sid":"abc"}"#);
    h.server("2");
    let events = h.events();
    assert_eq!(
        events[0],
        Event::EnginePacket(EnginePacket::Message(r#"0{"sid":"abc"}"#.into()))
    );
    assert!(matches!(events[1], Event::Connect { .. }), "{events:?}");
    assert_eq!(
        events[2..],
        [
            // the pong is written before `ping` is emitted, as in engine.io-client
            Event::EnginePacket(EnginePacket::Ping("".into())),
            Event::EnginePacketCreate(EnginePacket::Pong("".into())),
            Event::Ping,
        ]
    );
    h.m.report_engine_packets(false);
    h.emit(s, ev("x"), EmitOptions::default());
    h.server("2");
    assert_eq!(h.events(), [Event::Ping]);
}
