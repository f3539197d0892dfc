//! Arbitrary server behaviour against the client machines (Socket.IO Manager over an Engine.IO
//! client session): any response to its requests, any frame on its WebSockets, failures, time
//! passing, and the application's commands. Nothing may panic; every ack handle (per socket)
//! is handed out once and resolves at most once; no timer is left in the past; a socket never
//! waits for more acks than its bound, and is refused one only at it.
//!
//! The case is generated with `arbitrary`: a list of ops, each one of the machine's own
//! `Input`s (as the driver would give it; its transport id counts back from the newest transport
//! the manager asked for), a well-formed packet from the server given as such input (generated
//! bytes rarely spell one), time passing (then `Input::Timeout`), or an application command.

#![no_main]

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use arbitrary::Arbitrary;
use bytes::Bytes;
use ferrio_proto::engine::client::{Io, TransportId};
use ferrio_proto::engine::{self, encode_payload, Frame, OpenPacket, Protocol};
use ferrio_proto::socket::client::{
    Auth, ClientError, EmitOptions, Event, Input, Manager, ManagerConfig, Output, SocketId,
    SocketOptions,
};
use ferrio_proto::socket::{connect_accept, connect_error, AckId as WireId, Packet, RawJson};
use ferrio_proto::{Instant, Str};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Op {
    /// One input from the driver, at the current time.
    Input(Input),
    /// A well-formed packet from the server, on the newest WebSocket (`ws`) or as the answer
    /// to the newest GET.
    Server { packet: ServerPacket, ws: bool },
    /// Time passes by `(n % 16) * 250` ms, then `Input::Timeout`.
    Advance(u8),
    /// `open_socket` for `/` or `/admin`, with static or callback auth, with or without
    /// retries (the ack timeout is 500 ms).
    OpenSocket {
        admin: bool,
        callback_auth: bool,
        retries: bool,
    },
    /// `emit` with an ack (timeout 300 ms) on the socket `n % sockets`.
    Emit { socket: u8, volatile: bool },
    /// `ack` of every event the server sent with an ack id.
    AckEvents,
    /// `disconnect` of the first socket.
    Disconnect,
    /// `connect_socket` of the last socket, then `connect`.
    Connect,
    /// `close` of the manager.
    Close,
}

/// An Engine.IO or Socket.IO packet from the server; Socket.IO ones in `/` or `/admin`.
#[derive(Arbitrary, Debug)]
enum ServerPacket {
    /// The Engine.IO handshake (`pingInterval` 300 ms, `pingTimeout` 200 ms), offering the
    /// WebSocket upgrade or not.
    Open { upgrade: bool },
    /// `2`.
    Ping,
    /// `3probe`, the answer to the probe.
    ProbePong,
    /// `6`.
    Noop,
    /// `1`.
    Close,
    /// The CONNECT accept, with a `pid` (recovery) or not.
    Accept { admin: bool, pid: bool },
    /// CONNECT_ERROR.
    ConnectError { admin: bool },
    /// An EVENT (or BINARY_EVENT, one attachment), asking for an ack or not.
    Event {
        admin: bool,
        ack: bool,
        binary: bool,
    },
    /// The ACK of wire id `id % 16` (a socket numbers its emits from 0), or of an id past
    /// `u64::MAX` when `id` is 240 or more.
    Ack { admin: bool, id: u8 },
    /// DISCONNECT.
    Disconnect { admin: bool },
}

/// Small, so that a case reaches it.
const MAX_PENDING_ACKS: usize = 3;

fn nsp(admin: bool) -> &'static str {
    if admin {
        "/admin"
    } else {
        "/"
    }
}

/// The frames of a packet from the server.
fn server_frames(packet: ServerPacket, server_ids: &mut u64) -> Vec<Frame> {
    let packet = match packet {
        ServerPacket::Open { upgrade } => {
            let open = OpenPacket {
                sid: "sid".to_owned(),
                upgrades: if upgrade {
                    vec!["websocket".to_owned()]
                } else {
                    Vec::new()
                },
                ping_interval: 300,
                ping_timeout: 200,
                max_payload: Some(1000),
            };
            return vec![Frame::Text(open.to_frame())];
        }
        ServerPacket::Ping => return vec![engine::Packet::Ping(Str::default()).encode()],
        ServerPacket::ProbePong => return vec![engine::Packet::Pong("probe".into()).encode()],
        ServerPacket::Noop => return vec![engine::Packet::Noop.encode()],
        ServerPacket::Close => return vec![engine::Packet::Close.encode()],
        ServerPacket::Accept { admin, pid } => {
            connect_accept(Protocol::V4, nsp(admin), "sock", pid.then_some("pid"))
        }
        ServerPacket::ConnectError { admin } => connect_error(Protocol::V4, nsp(admin), "no", None),
        ServerPacket::Event { admin, ack, binary } => {
            let packet = if binary {
                let data = RawJson::parse(r#"["b",{"_placeholder":true,"num":0}]"#);
                let Ok(data) = data else { return Vec::new() };
                Packet::event(nsp(admin), data, vec![Bytes::from_static(b"\x00\x01")])
            } else {
                let Ok(p) = Packet::event_with(nsp(admin), "m", &(1,)) else {
                    return Vec::new();
                };
                p
            };
            if ack {
                *server_ids += 1;
                // Every third one past `u64::MAX`, which the answer must carry back unchanged.
                if *server_ids % 3 == 0 {
                    let long = format!("{}{}", u64::MAX, *server_ids % 10);
                    packet.with_id(long.parse::<WireId>().expect("digits"))
                } else {
                    packet.with_id(*server_ids)
                }
            } else {
                packet
            }
        }
        ServerPacket::Ack { admin, id } => {
            let id = if id >= 240 {
                format!("{}{id}", u64::MAX)
                    .parse::<WireId>()
                    .expect("digits")
            } else {
                WireId::from(u64::from(id % 16))
            };
            let Ok(p) = Packet::ack_with(nsp(admin), id, &("r",)) else {
                return Vec::new();
            };
            p
        }
        ServerPacket::Disconnect { admin } => Packet::disconnect(nsp(admin)),
    };
    packet.encode().frames().collect()
}

/// The transports the manager asked for, as far as the harness (its driver) knows.
#[derive(Default)]
struct Transports {
    newest: Option<TransportId>,
    /// Polling transports with a GET not answered yet.
    gets: Vec<TransportId>,
    /// WebSockets asked for and not closed.
    sockets: Vec<TransportId>,
}

impl Transports {
    fn on_io(&mut self, io: &Io) {
        let (Io::Get { transport, .. }
        | Io::Post { transport, .. }
        | Io::WsOpen { transport, .. }
        | Io::WsSend { transport, .. }
        | Io::Close { transport }) = io;
        self.newest = self.newest.max(Some(*transport));
        match io {
            Io::Get { transport, .. } => self.gets.push(*transport),
            Io::WsOpen { transport, .. } => self.sockets.push(*transport),
            Io::Close { transport } => self.forget(*transport),
            _ => {}
        }
    }

    fn forget(&mut self, transport: TransportId) {
        self.gets.retain(|t| *t != transport);
        self.sockets.retain(|t| *t != transport);
    }

    /// The transport a generated id names: 0 is the newest transport the manager asked for, 1
    /// the one before, and so on; past the first, an id it never used. Ids are never reused, so
    /// a long case (reconnections, probes) would otherwise run out of the small generated ones.
    fn recent(&self, id: TransportId) -> TransportId {
        match self.newest {
            Some(n) => TransportId::from_u64(n.as_u64().wrapping_sub(id.as_u64())),
            None => id,
        }
    }

    /// A generated input, its transport id made relative to the newest (see `recent`).
    fn retarget(&mut self, input: Input) -> Input {
        let input = match input {
            Input::PollResponse { transport, body } => Input::PollResponse {
                transport: self.recent(transport),
                body,
            },
            Input::PostResponse { transport } => Input::PostResponse {
                transport: self.recent(transport),
            },
            Input::WsOpen { transport } => Input::WsOpen {
                transport: self.recent(transport),
            },
            Input::WsFrame { transport, frame } => Input::WsFrame {
                transport: self.recent(transport),
                frame,
            },
            Input::WsClosed { transport } => Input::WsClosed {
                transport: self.recent(transport),
            },
            Input::TransportError {
                transport,
                description,
            } => Input::TransportError {
                transport: self.recent(transport),
                description,
            },
            other => other,
        };
        match &input {
            Input::PollResponse { transport, .. } | Input::TransportError { transport, .. } => {
                self.gets.retain(|t| t != transport);
            }
            Input::WsClosed { transport } => self.forget(*transport),
            _ => {}
        }
        input
    }

    /// Input giving `frames` from the server: on the newest WebSocket (`ws`), or as the answer
    /// to the newest GET.
    fn deliver(&mut self, frames: Vec<Frame>, ws: bool) -> Vec<Input> {
        if ws {
            let Some(&transport) = self.sockets.last() else {
                return Vec::new();
            };
            frames
                .into_iter()
                .map(|frame| Input::WsFrame { transport, frame })
                .collect()
        } else {
            let Some(transport) = self.gets.pop() else {
                return Vec::new();
            };
            let body = encode_payload(&frames);
            vec![Input::poll_response(transport, body)]
        }
    }
}

fuzz_target!(|ops: Vec<Op>| {
    let mut now = 0u64;
    let mut m = Manager::new(ManagerConfig {
        seed: 7,
        timeout: Some(Duration::from_millis(2_000)),
        max_pending_acks: MAX_PENDING_ACKS,
        ..ManagerConfig::default()
    });
    // Sockets by index: whether they retry (their emits go through the delivery queue).
    let mut retrying: HashMap<usize, bool> = HashMap::new();
    let mut sockets: Vec<SocketId> = Vec::new();
    let mut transports = Transports::default();
    let mut resolved: HashMap<(usize, u64), u32> = HashMap::new();
    let mut handed_out: HashSet<(usize, u64)> = HashSet::new();
    // Events from the server that asked for an ack: (socket, id).
    let mut to_ack: Vec<(SocketId, WireId)> = Vec::new();
    // The server's last ack id.
    let mut server_ids = 0u64;
    // The last op gave `Input::Timeout`.
    let mut timed_out = false;
    m.connect(Instant::from_millis(0));
    let mut ops = ops.into_iter();
    loop {
        while let Some(out) = m.poll_output() {
            match out {
                Output::Io(io) => transports.on_io(&io),
                Output::Event(
                    Event::Ack { socket, ack, .. } | Event::AckError { socket, ack, .. },
                ) => {
                    let key = (socket.index(), ack.as_u64());
                    assert!(handed_out.contains(&key), "unknown ack handle");
                    let n = resolved.entry(key).or_default();
                    *n += 1;
                    assert_eq!(*n, 1, "ack resolved twice");
                }
                Output::Event(Event::AuthNeeded { socket }) => {
                    let _ = m.provide_auth(Instant::from_millis(now), socket, None);
                }
                Output::Event(Event::Event { socket, packet }) => {
                    if let Some(id) = packet.id() {
                        to_ack.push((socket, id.clone()));
                    }
                }
                Output::Event(_) => {}
            }
        }
        let t = Instant::from_millis(now);
        // No timer in the past. After `Input::Timeout` nothing due is left; any other input may
        // arm one for `now` itself (a server that advertises `pingInterval` + `pingTimeout` of
        // 0), which the driver's next `Input::Timeout` runs.
        assert!(
            m.poll_timeout()
                .is_none_or(|d| d > t || (d == t && !timed_out)),
            "timer in the past"
        );
        let Some(op) = ops.next() else {
            break;
        };
        timed_out = matches!(op, Op::Advance(_) | Op::Input(Input::Timeout));
        match op {
            Op::Input(input) => m.handle_input(t, transports.retarget(input)),
            Op::Server { packet, ws } => {
                let frames = server_frames(packet, &mut server_ids);
                for input in transports.deliver(frames, ws) {
                    m.handle_input(t, input);
                }
            }
            Op::Advance(n) => {
                now += u64::from(n % 16) * 250;
                m.handle_input(Instant::from_millis(now), Input::Timeout);
            }
            Op::OpenSocket {
                admin,
                callback_auth,
                retries,
            } => {
                let auth = if callback_auth {
                    Auth::Callback
                } else {
                    Auth::Static(RawJson::parse(r#"{"token":"t"}"#).ok())
                };
                let options = SocketOptions {
                    auth,
                    retries: if retries { 2 } else { 0 },
                    ack_timeout: Some(Duration::from_millis(500)),
                };
                if let Ok(s) = m.open_socket(t, nsp(admin), options) {
                    sockets.push(s);
                    // An open namespace keeps its first options.
                    retrying.entry(s.index()).or_insert(retries);
                }
            }
            Op::Emit { socket, volatile } => {
                if let Some(&s) = sockets.get(usize::from(socket) % sockets.len().max(1)) {
                    let options = EmitOptions {
                        volatile,
                        ..EmitOptions::with_ack_timeout(Duration::from_millis(300))
                    };
                    if let Ok(p) = Packet::event_with("/", "e", &(1,)) {
                        let nsp = m.socket_nsp(s).unwrap_or("/").to_owned();
                        // Without retries every handle not resolved yet is a pending ack.
                        let direct = retrying.get(&s.index()) == Some(&false);
                        let waiting = handed_out
                            .iter()
                            .filter(|k| k.0 == s.index() && !resolved.contains_key(k))
                            .count();
                        match m.emit(t, s, p.with_nsp(nsp), options) {
                            Ok(Some(ack)) => {
                                assert!(
                                    handed_out.insert((s.index(), ack.as_u64())),
                                    "ack handle reused"
                                );
                                assert!(
                                    !direct || waiting < MAX_PENDING_ACKS,
                                    "ack accepted past the bound"
                                );
                            }
                            Err(ClientError::TooManyPendingAcks) => assert!(
                                !direct || waiting == MAX_PENDING_ACKS,
                                "ack refused below the bound"
                            ),
                            _ => {}
                        }
                    }
                }
            }
            Op::AckEvents => {
                for (s, id) in std::mem::take(&mut to_ack) {
                    if let Ok(p) = Packet::ack_with("/", id, &("ok",)) {
                        let _ = m.ack(t, s, p);
                    }
                }
            }
            Op::Disconnect => {
                if let Some(&s) = sockets.first() {
                    let _ = m.disconnect(t, s);
                }
            }
            Op::Connect => {
                if let Some(&s) = sockets.last() {
                    let _ = m.connect_socket(t, s);
                }
                m.connect(t);
            }
            Op::Close => m.close(t),
        }
    }
});
