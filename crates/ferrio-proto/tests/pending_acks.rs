//! The bound on the acks a socket waits for, on both sides (`max_pending_acks`): at the bound a
//! new emit asking for an ack is refused at once and nothing is sent; the connection goes on,
//! and an answer, a timeout or the socket leaving makes room again. Also: an ACK whose id is
//! beyond `u64` (never one Ferrio issued) is ignored, not an error.

use std::time::Duration;

use ferrio_proto::engine::client::{Config as EngineConfig, Io, Transport};
use ferrio_proto::engine::server as eio;
use ferrio_proto::engine::{Frame, Protocol};
use ferrio_proto::socket::client::{
    self as client, ClientError, EmitOptions, Manager, ManagerConfig, SocketOptions,
};
use ferrio_proto::socket::server::{
    AckError, CommandError, Config, Connection, DisconnectReason, Event, Input, Output,
};
use ferrio_proto::socket::{Packet, DEFAULT_MAX_PENDING_ACKS};
use ferrio_proto::{Instant, Str};

fn t(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

fn text(s: &str) -> Frame {
    Frame::Text(Str::from(s))
}

// ---- server ------------------------------------------------------------------------------

/// A WebSocket connection with `/` and `/custom` joined, waiting for at most `max` acks per
/// socket.
fn server(max: usize) -> Connection {
    let mut c = Connection::new(
        t(0),
        "eio".into(),
        Protocol::V4,
        eio::Transport::WebSocket,
        eio::Config::default(),
        Config {
            max_pending_acks: max,
            ..Config::default()
        },
    );
    for nsp in ["/", "/custom"] {
        let connect = if nsp == "/" { "40" } else { "40/custom," };
        c.handle_input(t(0), Input::WsFrame(text(connect))).unwrap();
        c.accept(t(0), nsp, "sock", None, []).unwrap();
    }
    drain(&mut c);
    c
}

fn drain(c: &mut Connection) -> Vec<Output> {
    std::iter::from_fn(|| c.poll_output()).collect()
}

/// The text frames written.
fn written(out: &[Output]) -> Vec<String> {
    out.iter()
        .filter_map(|o| match o {
            Output::Io(eio::Io::WsSend {
                frame: Frame::Text(s),
                ..
            }) => Some(s.to_string()),
            _ => None,
        })
        .collect()
}

/// `emit_with_ack` of `["q", id]` with ack id `id`.
fn ask(
    c: &mut Connection,
    now: u64,
    nsp: &str,
    id: u64,
    timeout: Duration,
) -> Result<(), CommandError> {
    let p = Packet::event_with(nsp, "q", &(id,))
        .expect("event")
        .with_id(id);
    c.emit_with_ack(t(now), &p.encode(), nsp, id, timeout)
}

#[test]
fn the_default_bound() {
    assert_eq!(Config::default().max_pending_acks, DEFAULT_MAX_PENDING_ACKS);
    assert_eq!(
        ManagerConfig::default().max_pending_acks,
        DEFAULT_MAX_PENDING_ACKS
    );
    assert_eq!(DEFAULT_MAX_PENDING_ACKS, 4096);
}

#[test]
fn server_refuses_an_ack_past_the_bound_and_sends_nothing() {
    let mut c = server(3);
    let never = Duration::MAX;
    for id in 0..3 {
        ask(&mut c, 1, "/", id, never).expect("under the bound");
    }
    assert_eq!(written(&drain(&mut c)).len(), 3);
    assert_eq!(c.pending_acks("/"), 3);
    // The fourth is refused at once: nothing written, nothing waited for, the rest unchanged.
    assert_eq!(
        ask(&mut c, 2, "/", 3, never),
        Err(CommandError::TooManyPendingAcks)
    );
    assert_eq!(drain(&mut c), vec![]);
    assert_eq!(c.pending_acks("/"), 3);
    assert_eq!(
        c.expect_ack(t(2), "/", 3, never),
        Err(CommandError::TooManyPendingAcks)
    );
    // The bound is per socket: `/custom` has room.
    ask(&mut c, 3, "/custom", 4, never).expect("another socket");
    assert_eq!(written(&drain(&mut c)), [r#"42/custom,4["q",4]"#]);
    // An ACK beyond `u64` is not one of ours: ignored, the connection stays.
    c.handle_input(t(4), Input::WsFrame(text("4318446744073709551616[]")))
        .unwrap();
    assert_eq!(drain(&mut c), vec![]);
    // An answer makes room for one.
    c.handle_input(t(5), Input::WsFrame(text("431[]"))).unwrap();
    assert!(matches!(&drain(&mut c)[..], [Output::Event(Event::Ack(_))]));
    ask(&mut c, 6, "/", 5, Duration::from_millis(10)).expect("room again");
    assert_eq!(written(&drain(&mut c)), [r#"425["q",5]"#]);
    assert_eq!(
        ask(&mut c, 7, "/", 6, never),
        Err(CommandError::TooManyPendingAcks)
    );
    // So does a timeout.
    c.handle_input(t(16), Input::Timeout).unwrap();
    assert_eq!(
        drain(&mut c),
        [Output::Event(Event::AckFailed {
            nsp: "/".into(),
            id: 5,
            error: AckError::Timeout
        })]
    );
    ask(&mut c, 17, "/", 6, never).expect("room again");
    assert!(!c.is_closed());
    // Leaving fails them all and frees the socket's bookkeeping; closing frees the rest.
    assert_eq!(c.pending_acks_total(), 4);
    c.disconnect(t(20), "/").unwrap();
    let failed = drain(&mut c)
        .into_iter()
        .filter(|o| matches!(o, Output::Event(Event::AckFailed { .. })))
        .count();
    assert_eq!((failed, c.pending_acks("/")), (3, 0));
    c.close(t(21), DisconnectReason::ServerShuttingDown);
    drain(&mut c);
    assert_eq!(c.pending_acks_total(), 0);
}

// ---- client ------------------------------------------------------------------------------

/// A manager over WebSocket with `/` connected, waiting for at most `max` acks per socket; the
/// text frames it wrote so far are dropped.
fn client(
    max: usize,
) -> (
    Manager,
    client::SocketId,
    ferrio_proto::engine::client::TransportId,
) {
    let mut m = Manager::new(ManagerConfig {
        engine: EngineConfig {
            transports: vec![Transport::WebSocket],
            ..EngineConfig::default()
        },
        max_pending_acks: max,
        ..ManagerConfig::default()
    });
    let socket = m.open_socket(t(0), "/", SocketOptions::default()).unwrap();
    let ws = loop {
        match m.poll_output() {
            Some(client::Output::Io(Io::WsOpen { transport, .. })) => break transport,
            Some(_) => {}
            None => panic!("no WebSocket opened"),
        }
    };
    m.handle_input(t(0), client::Input::WsOpen { transport: ws });
    let open = r#"0{"sid":"e","upgrades":[],"pingInterval":25000,"pingTimeout":20000}"#;
    for frame in [open, r#"40{"sid":"s"}"#] {
        m.handle_input(
            t(0),
            client::Input::WsFrame {
                transport: ws,
                frame: text(frame),
            },
        );
    }
    assert!(m.is_connected(socket));
    while m.poll_output().is_some() {}
    (m, socket, ws)
}

/// What the manager produced: the text frames it wrote, and its events.
fn client_out(m: &mut Manager) -> (Vec<String>, Vec<client::Event>) {
    let (mut frames, mut events) = (Vec::new(), Vec::new());
    while let Some(out) = m.poll_output() {
        match out {
            client::Output::Io(Io::WsSend {
                frame: Frame::Text(s),
                ..
            }) => frames.push(s.to_string()),
            client::Output::Event(e) => events.push(e),
            client::Output::Io(_) => {}
        }
    }
    (frames, events)
}

fn emit(
    m: &mut Manager,
    now: u64,
    socket: client::SocketId,
    options: EmitOptions,
) -> Result<Option<client::AckId>, ClientError> {
    let p = Packet::event_with("/", "q", &()).expect("event");
    m.emit(t(now), socket, p, options)
}

#[test]
fn client_refuses_an_ack_past_the_bound_and_sends_nothing() {
    let (mut m, s, ws) = client(2);
    let first = emit(&mut m, 1, s, EmitOptions::with_ack())
        .unwrap()
        .unwrap();
    emit(
        &mut m,
        1,
        s,
        EmitOptions::with_ack_timeout(Duration::from_millis(10)),
    )
    .unwrap();
    assert_eq!(client_out(&mut m).0, [r#"420["q"]"#, r#"421["q"]"#]);
    assert_eq!(
        emit(&mut m, 2, s, EmitOptions::with_ack()),
        Err(ClientError::TooManyPendingAcks)
    );
    assert_eq!(client_out(&mut m), (vec![], vec![]));
    // Emits without an ack are not bounded by it.
    assert_eq!(emit(&mut m, 2, s, EmitOptions::default()), Ok(None));
    assert_eq!(client_out(&mut m).0, [r#"42["q"]"#]);
    // An ACK beyond `u64` is not one of ours: ignored.
    let server = |m: &mut Manager, now: u64, frame: &str| {
        m.handle_input(
            t(now),
            client::Input::WsFrame {
                transport: ws,
                frame: text(frame),
            },
        )
    };
    server(&mut m, 3, "4318446744073709551616[]");
    assert_eq!(client_out(&mut m), (vec![], vec![]));
    // An answer makes room, and so does a timeout.
    server(&mut m, 4, "430[]");
    assert!(matches!(
        &client_out(&mut m).1[..],
        [client::Event::Ack { ack, .. }] if *ack == first
    ));
    emit(&mut m, 5, s, EmitOptions::with_ack()).unwrap();
    assert_eq!(
        emit(&mut m, 5, s, EmitOptions::with_ack()),
        Err(ClientError::TooManyPendingAcks)
    );
    m.handle_input(t(11), client::Input::Timeout);
    assert!(matches!(
        &client_out(&mut m).1[..],
        [client::Event::AckError {
            error: AckError::Timeout,
            ..
        }]
    ));
    assert!(emit(&mut m, 12, s, EmitOptions::with_ack())
        .unwrap()
        .is_some());
    assert!(m.is_connected(s));
}

/// The `compress` flag of an emit with ack reaches the frame written; the ack is waited for
/// either way.
#[test]
fn server_emit_with_ack_carries_the_compress_flag() {
    let mut c = server(8);
    let compress_of = |out: &[Output]| -> Vec<bool> {
        out.iter()
            .filter_map(|o| match o {
                Output::Io(eio::Io::WsSend { compress, .. }) => Some(*compress),
                _ => None,
            })
            .collect()
    };
    let p = Packet::event_with("/", "q", &(1,))
        .expect("event")
        .with_id(1);
    let plain = eio::SendOptions {
        volatile: false,
        compress: false,
    };
    c.emit_with_ack_options(t(1), &p.encode(), "/", 1, Duration::MAX, plain)
        .expect("sent");
    assert_eq!(compress_of(&drain(&mut c)), [false]);
    ask(&mut c, 2, "/", 2, Duration::MAX).expect("sent");
    assert_eq!(compress_of(&drain(&mut c)), [true]);
    assert_eq!(c.pending_acks("/"), 2);
}
