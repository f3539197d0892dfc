//! The simulation harness: one client [`Manager`] wired to server [`Connection`]s in memory,
//! with a fake clock (milliseconds), a link with a latency per direction, connection resets,
//! one-way silent loss and "server down" periods, and a small server application (namespaces
//! `/` and `/admin`, `/forbidden` refused by a middleware, every event asking for an ack
//! answered with its own arguments, `please_emit` answered with events, optional connection
//! state recovery with one [`RecoveryStore`] per namespace: sessions persisted on recoverable
//! disconnections, emits recorded, sessions restored with their missed events on CONNECT).
//! The client application answers the server's events that ask for an ack the same way.
//!
//! Time advances event by event to the earliest of: the next link event (reset), the next
//! delivery, the client's `poll_timeout`, the servers' `poll_timeout`s, the stores' expiry.
//! Everything is deterministic: ordered maps, sequence numbers for ties, sids counted
//! (`eio1`, `eio2`... for Engine.IO sessions, `sock1`... and `pid1`... for sockets).
//!
//! `SIM_TRACE=1 cargo test ... -- --nocapture` prints every message delivered on the link.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use ferrio_proto::engine::client::{self as ec, Io, Transport, TransportId};
use ferrio_proto::engine::server as eio;
use ferrio_proto::engine::{Frame, Protocol};
use ferrio_proto::rooms::BroadcastOptions;
use ferrio_proto::socket::client::{
    AckId, ClientError, EmitOptions, Event, Manager, ManagerConfig, SocketId, SocketOptions,
};
use ferrio_proto::socket::recovery::{PersistedSession, Position, RecoveryConfig, RecoveryStore};
use ferrio_proto::socket::server::{self as ss, AckIds, Connection};
use ferrio_proto::socket::{AckId as WireId, Packet, RawJson};
use ferrio_proto::{Instant, Str};

pub use ferrio_proto::socket::client::DisconnectReason as ClientReason;
pub use ferrio_proto::socket::server::DisconnectReason as ServerReason;

/// A direction on the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Client to server.
    Up,
    /// Server to client.
    Down,
}

/// How the network treats WebSocket upgrade probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeFault {
    /// The WebSocket handshake of a probe fails (a proxy refusing WebSockets).
    Refuse,
    /// The probe WebSocket is accepted, then closed at once (a proxy killing it).
    CloseAfterOpen,
}

/// The link between the client and the server.
#[derive(Debug, Clone, Default)]
pub struct Link {
    /// Client → server latency, ms.
    pub up_ms: u64,
    /// Server → client latency, ms.
    pub down_ms: u64,
    /// Connection resets: everything in flight is lost, both sides see their open transports
    /// fail at that instant.
    pub cuts: Vec<u64>,
    /// Silent loss in one direction over `[from, to)` (checked at delivery time): nobody is told.
    /// A WebSocket that lost a message stays stalled in that direction (it is one TCP stream);
    /// HTTP requests are independent connections.
    pub blackholes: Vec<(Dir, u64, u64)>,
    /// The server is unreachable over `[from, to)`: a reset at `from`, then every new request
    /// (GET, POST, WebSocket) arriving in the period fails with a transport error.
    pub server_down: Vec<(u64, u64)>,
    /// What happens to upgrade probes.
    pub probe_fault: Option<ProbeFault>,
    /// Extra delay of each message, up to this many ms (drawn from its sequence number): HTTP
    /// requests and responses may overtake each other; WebSocket streams stay in order.
    pub jitter_ms: u64,
}

impl Link {
    /// A link with these latencies and nothing else.
    pub fn latency(up_ms: u64, down_ms: u64) -> Link {
        Link {
            up_ms,
            down_ms,
            ..Link::default()
        }
    }

    /// The round trip time.
    pub fn rtt(&self) -> u64 {
        self.up_ms + self.down_ms
    }
}

/// Everything a simulation is built from.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The client manager's settings.
    pub client: ManagerConfig,
    /// The server's Engine.IO settings.
    pub server_engine: eio::Config,
    /// The server's Socket.IO settings.
    pub server_socket: ss::Config,
    /// Connection state recovery on the server (one store per namespace).
    pub recovery: Option<RecoveryConfig>,
    /// The link.
    pub link: Link,
}

/// Ping interval the simulations use unless told otherwise, ms.
pub const PING_INTERVAL: u64 = 2_500;
/// Ping timeout the simulations use unless told otherwise, ms.
pub const PING_TIMEOUT: u64 = 2_000;
/// The seed of the client's backoff jitter.
pub const SEED: u64 = 42;

impl Setup {
    /// A client opening with `transports` (upgrading if more than one), the server with a ping
    /// every [`PING_INTERVAL`], a link of 20 ms up and 30 ms down.
    pub fn new(transports: Vec<Transport>) -> Setup {
        Setup {
            client: ManagerConfig {
                engine: ec::Config {
                    transports,
                    ..ec::Config::default()
                },
                seed: SEED,
                ..ManagerConfig::default()
            },
            server_engine: eio::Config {
                ping_interval: Duration::from_millis(PING_INTERVAL),
                ping_timeout: Duration::from_millis(PING_TIMEOUT),
                ..eio::Config::default()
            },
            server_socket: ss::Config::default(),
            recovery: None,
            link: Link::latency(20, 30),
        }
    }

    /// Long-polling only.
    pub fn polling() -> Setup {
        Setup::new(vec![Transport::Polling])
    }

    /// WebSocket only.
    pub fn websocket() -> Setup {
        Setup::new(vec![Transport::WebSocket])
    }

    /// Polling first, then the upgrade to WebSocket.
    pub fn upgrade() -> Setup {
        Setup::new(vec![Transport::Polling, Transport::WebSocket])
    }
}

/// A message on the link.
#[derive(Debug, Clone)]
enum Msg {
    // client → server
    Get {
        tid: TransportId,
        sid: Option<String>,
        req: u64,
    },
    Post {
        tid: TransportId,
        sid: Option<String>,
        body: Bytes,
    },
    WsConnect {
        tid: TransportId,
        sid: Option<String>,
    },
    WsUp {
        tid: TransportId,
        frame: Frame,
    },
    WsCloseUp {
        tid: TransportId,
    },
    GetAbort {
        req: u64,
    },
    // server → client
    GetOk {
        tid: TransportId,
        req: u64,
        body: Bytes,
    },
    GetErr {
        tid: TransportId,
        req: u64,
        why: String,
    },
    PostOk {
        tid: TransportId,
    },
    PostErr {
        tid: TransportId,
        why: String,
    },
    WsOpened {
        tid: TransportId,
    },
    WsDown {
        tid: TransportId,
        frame: Frame,
    },
    WsClosedDown {
        tid: TransportId,
    },
    WsErr {
        tid: TransportId,
    },
}

impl Msg {
    /// The WebSocket this message travels on, once it is open.
    fn ws(&self) -> Option<TransportId> {
        match self {
            Msg::WsUp { tid, .. }
            | Msg::WsCloseUp { tid }
            | Msg::WsOpened { tid }
            | Msg::WsDown { tid, .. }
            | Msg::WsClosedDown { tid }
            | Msg::WsErr { tid } => Some(*tid),
            _ => None,
        }
    }

    fn dir(&self) -> Dir {
        match self {
            Msg::Get { .. }
            | Msg::Post { .. }
            | Msg::WsConnect { .. }
            | Msg::WsUp { .. }
            | Msg::WsCloseUp { .. }
            | Msg::GetAbort { .. } => Dir::Up,
            _ => Dir::Down,
        }
    }
}

/// What the server application knows of a joined socket.
#[derive(Debug, Clone)]
struct SockInfo {
    sid: Str,
    pid: Option<Str>,
    since: Position,
}

/// One server-side Engine.IO session and what the driver keeps for it.
struct Srv {
    conn: Connection,
    /// The client transport carrying the session's WebSocket.
    ws: Option<TransportId>,
    /// The client transport of the WebSocket being probed.
    probe: Option<TransportId>,
    /// Pending GETs: request id → client transport.
    gets: BTreeMap<u64, TransportId>,
    /// Joined (or being joined) sockets per namespace.
    sockets: BTreeMap<Str, SockInfo>,
}

/// Something the server application saw (every non-transport output of a [`Connection`]).
#[derive(Debug, Clone)]
pub struct ServerRecord {
    /// When.
    pub at: u64,
    /// The Engine.IO session.
    pub eio: String,
    /// What.
    pub out: ss::Event,
}

/// What comes next in the simulation.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Due {
    Reset,
    Deliver((u64, u64)),
    Client,
    Server(String),
    Store(Str),
}

/// The simulation. See the [module docs](self).
pub struct Sim {
    /// The fake clock, ms.
    pub now: u64,
    /// The link.
    pub link: Link,
    /// The client.
    pub client: Manager,
    /// Whether the client application answers the server's events that carry an ack id (it
    /// echoes their arguments).
    pub client_auto_ack: bool,
    /// Events with an ack id the server application leaves unanswered before it answers again
    /// (it answers every event that asks, echoing its arguments).
    pub drop_echo_answers: u32,
    /// Everything the client reported, with its time.
    pub client_log: Vec<(u64, Event)>,
    /// Everything the server application saw.
    pub server_log: Vec<ServerRecord>,
    /// The events the client application got: time, the client's Engine.IO sessions when the
    /// input that produced them came and after it, socket, packet.
    pub delivered: Vec<(u64, Vec<String>, SocketId, Packet)>,
    /// What the server wrote to clients: session, namespace, packet text (with offset).
    pub server_sent: BTreeSet<(String, String, String)>,
    /// Broken invariants of the transport layer (a second pending GET on a session, an
    /// overlapping POST, a response for an unknown request...).
    pub violations: Vec<String>,
    /// Most pending GETs seen at once on one server session.
    pub max_pending_gets: usize,
    /// Engine.IO sessions created on the server, in order.
    pub sessions: Vec<String>,
    server_engine: eio::Config,
    server_socket: ss::Config,
    recovery: Option<RecoveryConfig>,
    stores: BTreeMap<Str, RecoveryStore>,
    ack_ids: BTreeMap<Str, AckIds>,
    resets: VecDeque<u64>,
    net: BTreeMap<(u64, u64), Msg>,
    seq: u64,
    next_req: u64,
    next_eio: u64,
    next_socket: u64,
    servers: BTreeMap<String, Srv>,
    ws_owner: HashMap<TransportId, String>,
    req_owner: HashMap<u64, String>,
    c_gets: BTreeMap<TransportId, u64>,
    c_posts: BTreeMap<TransportId, u32>,
    c_ws: BTreeSet<TransportId>,
    /// The client's Engine.IO session after the last input.
    client_sid: Option<String>,
    /// WebSocket streams that lost a message: (transport, upward).
    stalled: BTreeSet<(TransportId, bool)>,
    /// The delivery time of the last message of each WebSocket stream.
    stream_last: HashMap<(TransportId, bool), u64>,
    steps: u64,
}

/// SplitMix64's output for one state: the link's deterministic jitter.
fn splitmix(seed: u64) -> u64 {
    let mut z = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn t(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

fn query_sid(query: &[(String, String)]) -> Option<String> {
    query
        .iter()
        .find(|(k, _)| k == "sid")
        .map(|(_, v)| v.clone())
}

/// The arguments of an event (its data without the name), as an ACK answering `id`: the echo.
pub fn echo_ack(packet: &Packet, id: &WireId) -> Packet {
    let mut args = packet
        .data()
        .and_then(|d| d.to_value().ok())
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default();
    if !args.is_empty() {
        args.remove(0);
    }
    Packet::ack(
        packet.nsp().clone(),
        id,
        RawJson::from_value(&serde_json::Value::Array(args)),
        packet.attachments().to_vec(),
    )
}

impl Sim {
    /// A simulation at time 0 with nothing open.
    pub fn new(setup: Setup) -> Sim {
        let mut resets: Vec<u64> = setup.link.cuts.clone();
        resets.extend(setup.link.server_down.iter().map(|(from, _)| *from));
        resets.sort_unstable();
        Sim {
            now: 0,
            client: Manager::new(setup.client),
            client_auto_ack: true,
            drop_echo_answers: 0,
            client_log: Vec::new(),
            server_log: Vec::new(),
            delivered: Vec::new(),
            server_sent: BTreeSet::new(),
            violations: Vec::new(),
            max_pending_gets: 0,
            sessions: Vec::new(),
            server_engine: setup.server_engine,
            server_socket: setup.server_socket,
            recovery: setup.recovery,
            stores: BTreeMap::new(),
            ack_ids: BTreeMap::new(),
            resets: resets.into(),
            link: setup.link,
            net: BTreeMap::new(),
            seq: 0,
            next_req: 0,
            next_eio: 0,
            next_socket: 0,
            servers: BTreeMap::new(),
            ws_owner: HashMap::new(),
            req_owner: HashMap::new(),
            c_gets: BTreeMap::new(),
            c_posts: BTreeMap::new(),
            c_ws: BTreeSet::new(),
            client_sid: None,
            stalled: BTreeSet::new(),
            stream_last: HashMap::new(),
            steps: 0,
        }
    }

    fn instant(&self) -> Instant {
        t(self.now)
    }

    // ---- the clock ---------------------------------------------------------------------------

    fn next_due(&self) -> Option<(u64, Due)> {
        let mut best: Option<(u64, Due)> = None;
        let mut consider = |at: u64, due: Due| {
            if best.as_ref().is_none_or(|(b, d)| (at, &due) < (*b, d)) {
                best = Some((at, due));
            }
        };
        if let Some(&at) = self.resets.front() {
            consider(at, Due::Reset);
        }
        if let Some((&key, _)) = self.net.first_key_value() {
            consider(key.0, Due::Deliver(key));
        }
        if let Some(at) = self.client.poll_timeout() {
            consider(at.as_millis(), Due::Client);
        }
        for (sid, srv) in &self.servers {
            if let Some(at) = srv.conn.poll_timeout() {
                consider(at.as_millis(), Due::Server(sid.clone()));
            }
        }
        for (nsp, store) in &self.stores {
            if let Some(at) = store.poll_timeout() {
                consider(at.as_millis(), Due::Store(nsp.clone()));
            }
        }
        best
    }

    /// Runs every event due up to `end` included; the clock is then `end`.
    pub fn run_until(&mut self, end: u64) {
        while let Some((at, due)) = self.next_due() {
            if at > end {
                break;
            }
            self.steps += 1;
            assert!(
                self.steps < 2_000_000,
                "the simulation does not advance (at {} ms, {:?})",
                self.now,
                due
            );
            self.now = self.now.max(at);
            self.step(due);
        }
        self.now = self.now.max(end);
    }

    /// Runs for `ms` more milliseconds.
    pub fn run_for(&mut self, ms: u64) {
        self.run_until(self.now + ms);
    }

    fn step(&mut self, due: Due) {
        let now = self.instant();
        match due {
            Due::Reset => {
                self.resets.pop_front();
                self.reset();
            }
            Due::Deliver(key) => {
                if let Some(msg) = self.net.remove(&key) {
                    self.deliver(msg);
                }
            }
            Due::Client => {
                self.client.handle_input(now, ec::Input::Timeout);
                self.drain_client();
            }
            Due::Server(sid) => {
                if let Some(srv) = self.servers.get_mut(&sid) {
                    let _ = srv.conn.handle_input(now, eio::Input::Timeout);
                }
                self.drain_server(&sid);
            }
            Due::Store(nsp) => {
                if let Some(store) = self.stores.get_mut(&nsp) {
                    store.handle_timeout(now);
                }
            }
        }
    }

    // ---- the link ----------------------------------------------------------------------------

    fn send(&mut self, msg: Msg) {
        let dir = msg.dir();
        let latency = match dir {
            Dir::Up => self.link.up_ms,
            Dir::Down => self.link.down_ms,
        };
        self.seq += 1;
        let mut at = self.now + latency;
        if self.link.jitter_ms > 0 {
            at += splitmix(self.seq) % (self.link.jitter_ms + 1);
        }
        // a WebSocket is one ordered stream per direction (and its first message, the
        // handshake, travels before any frame)
        if let Some(tid) = msg.ws().or(match &msg {
            Msg::WsConnect { tid, .. } => Some(*tid),
            _ => None,
        }) {
            let last = self.stream_last.entry((tid, dir == Dir::Up)).or_default();
            at = at.max(*last);
            *last = at;
        }
        self.net.insert((at, self.seq), msg);
    }

    fn in_blackhole(&self, dir: Dir) -> bool {
        self.link
            .blackholes
            .iter()
            .any(|&(d, from, to)| d == dir && (from..to).contains(&self.now))
    }

    /// Adds a connection reset at `at` (after those already due).
    pub fn reset_at(&mut self, at: u64) {
        self.resets.push_back(at);
        self.resets.make_contiguous().sort_unstable();
    }

    /// True while the server is unreachable.
    pub fn server_is_down(&self) -> bool {
        self.link
            .server_down
            .iter()
            .any(|&(from, to)| (from..to).contains(&self.now))
    }

    fn deliver(&mut self, msg: Msg) {
        // A WebSocket is one TCP stream: once one of its messages is lost, nothing after it in
        // that direction arrives either (the stream is stalled until someone closes it).
        let stream = msg.ws().map(|tid| (tid, msg.dir() == Dir::Up));
        if stream.is_some_and(|s| self.stalled.contains(&s)) {
            return;
        }
        if self.in_blackhole(msg.dir()) {
            if let Some(s) = stream {
                self.stalled.insert(s);
            }
            return;
        }
        if std::env::var_os("SIM_TRACE").is_some() {
            eprintln!("{:>8} {msg:?}", self.now);
        }
        match msg.dir() {
            Dir::Up => self.deliver_up(msg),
            Dir::Down => self.deliver_down(msg),
        }
    }

    /// A connection reset: what is in flight is lost, both sides see their transports fail.
    pub fn reset(&mut self) {
        let now = self.instant();
        let sids: Vec<String> = self.servers.keys().cloned().collect();
        for sid in &sids {
            self.run_due_timers(sid);
        }
        self.net.clear();
        for sid in sids {
            let Some(srv) = self.servers.get_mut(&sid) else {
                continue;
            };
            let gets: Vec<u64> = std::mem::take(&mut srv.gets).into_keys().collect();
            for req in gets {
                let _ = srv.conn.handle_input(now, eio::Input::PollAborted(req));
            }
            if srv.ws.take().is_some() {
                let _ = srv
                    .conn
                    .handle_input(now, eio::Input::WsClosed { error: true });
            }
            if srv.probe.take().is_some() {
                let _ = srv.conn.handle_input(now, eio::Input::ProbeClosed);
            }
            self.drain_server(&sid);
        }
        for tid in std::mem::take(&mut self.c_gets).into_keys() {
            self.client
                .handle_input(now, transport_error(tid, "xhr poll error"));
            self.drain_client();
        }
        for tid in std::mem::take(&mut self.c_posts).into_keys() {
            self.client
                .handle_input(now, transport_error(tid, "xhr post error"));
            self.drain_client();
        }
        for tid in std::mem::take(&mut self.c_ws) {
            self.client
                .handle_input(now, transport_error(tid, "websocket error"));
            self.drain_client();
        }
    }

    // ---- the server side of the link ---------------------------------------------------------

    fn new_session(&mut self, transport: eio::Transport) -> String {
        self.next_eio += 1;
        let sid = format!("eio{}", self.next_eio);
        let conn = Connection::new(
            self.instant(),
            Str::from(sid.as_str()),
            Protocol::V4,
            transport,
            self.server_engine.clone(),
            self.server_socket.clone(),
        );
        self.servers.insert(
            sid.clone(),
            Srv {
                conn,
                ws: None,
                probe: None,
                gets: BTreeMap::new(),
                sockets: BTreeMap::new(),
            },
        );
        self.sessions.push(sid.clone());
        sid
    }

    fn open_server(&mut self, sid: &Option<String>) -> Option<String> {
        let sid = sid.as_ref()?;
        self.servers
            .get(sid)
            .filter(|s| !s.conn.is_closed())
            .map(|_| sid.clone())
    }

    fn deliver_up(&mut self, msg: Msg) {
        let now = self.instant();
        let down = self.server_is_down();
        match msg {
            Msg::Get { tid, sid, req } => {
                if down {
                    return self.send(Msg::GetErr {
                        tid,
                        req,
                        why: "connection refused".into(),
                    });
                }
                let sid = match (&sid, self.open_server(&sid)) {
                    (None, _) => self.new_session(eio::Transport::Polling),
                    (Some(_), Some(sid)) => sid,
                    (Some(_), None) => {
                        return self.send(Msg::GetErr {
                            tid,
                            req,
                            why: "Session ID unknown".into(),
                        })
                    }
                };
                let Some(srv) = self.servers.get_mut(&sid) else {
                    return;
                };
                if !srv.gets.is_empty() {
                    self.violations
                        .push(format!("{now:?}: a second GET is pending on {sid}"));
                }
                srv.gets.insert(req, tid);
                self.max_pending_gets = self.max_pending_gets.max(srv.gets.len());
                self.req_owner.insert(req, sid.clone());
                if let Err(e) = srv.conn.handle_input(now, eio::Input::Poll(req)) {
                    srv.gets.remove(&req);
                    if e == eio::RequestError::PollOverlap {
                        self.violations
                            .push(format!("{now:?}: overlapping GET on {sid}"));
                    }
                    self.send(Msg::GetErr {
                        tid,
                        req,
                        why: e.to_string(),
                    });
                }
                self.drain_server(&sid);
            }
            Msg::Post { tid, sid, body } => {
                if down {
                    return self.send(Msg::PostErr {
                        tid,
                        why: "connection refused".into(),
                    });
                }
                let Some(sid) = self.open_server(&sid) else {
                    return self.send(Msg::PostErr {
                        tid,
                        why: "Session ID unknown".into(),
                    });
                };
                let Some(srv) = self.servers.get_mut(&sid) else {
                    return;
                };
                let binary = false;
                let result = srv
                    .conn
                    .handle_input(now, eio::Input::PostStart { binary })
                    .and_then(|()| {
                        let body = Some(body);
                        srv.conn
                            .handle_input(now, eio::Input::Post { body, binary })
                    });
                match result {
                    Ok(()) => self.send(Msg::PostOk { tid }),
                    Err(e) => {
                        if e == eio::RequestError::PostOverlap {
                            self.violations
                                .push(format!("{now:?}: overlapping POST on {sid}"));
                        }
                        self.send(Msg::PostErr {
                            tid,
                            why: e.to_string(),
                        })
                    }
                }
                self.drain_server(&sid);
            }
            Msg::WsConnect { tid, sid: None } => {
                if down {
                    return self.send(Msg::WsErr { tid });
                }
                let sid = self.new_session(eio::Transport::WebSocket);
                self.ws_owner.insert(tid, sid.clone());
                if let Some(srv) = self.servers.get_mut(&sid) {
                    srv.ws = Some(tid);
                }
                self.send(Msg::WsOpened { tid });
                self.drain_server(&sid);
            }
            Msg::WsConnect { tid, sid } => {
                if down || self.link.probe_fault == Some(ProbeFault::Refuse) {
                    return self.send(Msg::WsErr { tid });
                }
                let Some(sid) = self.open_server(&sid) else {
                    return self.send(Msg::WsErr { tid });
                };
                let Some(srv) = self.servers.get_mut(&sid) else {
                    return;
                };
                match srv.conn.handle_input(now, eio::Input::UpgradeRequest) {
                    Ok(()) => {
                        self.ws_owner.insert(tid, sid.clone());
                        self.send(Msg::WsOpened { tid });
                        if self.link.probe_fault == Some(ProbeFault::CloseAfterOpen) {
                            self.send(Msg::WsClosedDown { tid });
                            if let Some(srv) = self.servers.get_mut(&sid) {
                                let _ = srv.conn.handle_input(now, eio::Input::ProbeClosed);
                            }
                        } else if let Some(srv) = self.servers.get_mut(&sid) {
                            srv.probe = Some(tid);
                        }
                    }
                    Err(eio::RequestError::Closed) => self.send(Msg::WsErr { tid }),
                    Err(_) => {
                        // accepted, then closed at once, as the reference does
                        self.send(Msg::WsOpened { tid });
                        self.send(Msg::WsClosedDown { tid });
                    }
                }
                self.drain_server(&sid);
            }
            Msg::WsUp { tid, frame } => {
                let Some(sid) = self.ws_owner.get(&tid).cloned() else {
                    return;
                };
                let Some(srv) = self.servers.get_mut(&sid) else {
                    return;
                };
                let input = if srv.ws == Some(tid) {
                    eio::Input::WsFrame(frame)
                } else if srv.probe == Some(tid) {
                    eio::Input::ProbeFrame(frame)
                } else {
                    return;
                };
                let _ = srv.conn.handle_input(now, input);
                self.drain_server(&sid);
            }
            Msg::WsCloseUp { tid } => {
                let Some(sid) = self.ws_owner.get(&tid).cloned() else {
                    return;
                };
                self.run_due_timers(&sid);
                let Some(srv) = self.servers.get_mut(&sid) else {
                    return;
                };
                let input = if srv.ws == Some(tid) {
                    srv.ws = None;
                    eio::Input::WsClosed { error: false }
                } else if srv.probe == Some(tid) {
                    srv.probe = None;
                    eio::Input::ProbeClosed
                } else {
                    return;
                };
                let _ = srv.conn.handle_input(now, input);
                self.drain_server(&sid);
            }
            Msg::GetAbort { req } => {
                let Some(sid) = self.req_owner.get(&req).cloned() else {
                    return;
                };
                self.run_due_timers(&sid);
                let Some(srv) = self.servers.get_mut(&sid) else {
                    return;
                };
                if srv.gets.remove(&req).is_some() {
                    let _ = srv.conn.handle_input(now, eio::Input::PollAborted(req));
                    self.drain_server(&sid);
                }
            }
            _ => unreachable!("not an upward message"),
        }
    }

    /// Runs the session's timers that are due now and writes what they produce, before the
    /// driver tells it that a transport is gone. `handle_input` runs due timers before its
    /// input, so a ping due at the instant of a close would otherwise be written on the
    /// transport the simulation has already taken away, which is not the session's fault: a
    /// real driver that wakes for the timer first writes it on the transport still open.
    fn run_due_timers(&mut self, sid: &str) {
        let now = self.instant();
        let Some(srv) = self.servers.get_mut(sid) else {
            return;
        };
        if srv.conn.poll_timeout().is_some_and(|t| t <= now) {
            let _ = srv.conn.handle_input(now, eio::Input::Timeout);
            self.drain_server(sid);
        }
    }

    fn drain_server(&mut self, sid: &str) {
        loop {
            let Some(srv) = self.servers.get_mut(sid) else {
                return;
            };
            let Some(out) = srv.conn.poll_output() else {
                return;
            };
            match out {
                ss::Output::Io(io) => self.on_server_transport(sid, io),
                ss::Output::Event(event) => {
                    self.server_log.push(ServerRecord {
                        at: self.now,
                        eio: sid.to_owned(),
                        out: event.clone(),
                    });
                    self.server_app(sid, event);
                }
            }
        }
    }

    fn on_server_transport(&mut self, sid: &str, out: eio::Io) {
        let now = self.now;
        let Some(srv) = self.servers.get_mut(sid) else {
            return;
        };
        match out {
            eio::Io::PollResponse { request, body, .. } => match srv.gets.remove(&request) {
                Some(tid) => self.send(Msg::GetOk {
                    tid,
                    req: request,
                    body,
                }),
                None => self
                    .violations
                    .push(format!("{now}: {sid} answered unknown GET {request}")),
            },
            eio::Io::WsSend { frame, .. } => match srv.ws {
                Some(tid) => self.send(Msg::WsDown { tid, frame }),
                None => self.violations.push(format!(
                    "{now}: {sid} wrote on a WebSocket it does not have"
                )),
            },
            eio::Io::WsClose => {
                if let Some(tid) = srv.ws.take() {
                    self.send(Msg::WsClosedDown { tid });
                }
            }
            eio::Io::ProbeSend(frame) => match srv.probe {
                Some(tid) => self.send(Msg::WsDown { tid, frame }),
                None => self
                    .violations
                    .push(format!("{now}: {sid} wrote on a probe it does not have")),
            },
            eio::Io::ProbeClose => {
                if let Some(tid) = srv.probe.take() {
                    self.send(Msg::WsClosedDown { tid });
                }
            }
            eio::Io::Upgraded => {
                if srv.ws.is_some() {
                    self.violations
                        .push(format!("{now}: {sid} upgraded while on a WebSocket"));
                }
                srv.ws = srv.probe.take();
            }
        }
    }

    // ---- the server application --------------------------------------------------------------

    fn store(&mut self, nsp: &Str) -> Option<&mut RecoveryStore> {
        let config = self.recovery.clone()?;
        Some(
            self.stores
                .entry(nsp.clone())
                .or_insert_with(|| RecoveryStore::new(config)),
        )
    }

    fn server_app(&mut self, sid: &str, out: ss::Event) {
        let now = self.instant();
        match out {
            ss::Event::Connect { nsp, recovery, .. } => match &*nsp {
                "/" | "/admin" => {
                    self.next_socket += 1;
                    let n = self.next_socket;
                    let fresh_pid = Str::from(format!("pid{n}"));
                    let admission = self
                        .store(&nsp)
                        .map(|store| store.admit(now, recovery.as_ref(), fresh_pid));
                    let (info, replay) = match admission {
                        Some(a) => {
                            let (sid, replay) = match a.restored {
                                Some(r) => (
                                    r.session.sid,
                                    r.missed.iter().map(Packet::encode).collect::<Vec<_>>(),
                                ),
                                None => (Str::from(format!("sock{n}")), Vec::new()),
                            };
                            let pid = Some(a.pid);
                            let since = a.since;
                            (SockInfo { sid, pid, since }, replay)
                        }
                        None => {
                            let sid = Str::from(format!("sock{n}"));
                            let since = Position::START;
                            (
                                SockInfo {
                                    sid,
                                    pid: None,
                                    since,
                                },
                                Vec::new(),
                            )
                        }
                    };
                    for p in &replay {
                        self.server_sent.insert((
                            sid.to_owned(),
                            nsp.to_string(),
                            p.socket_text().to_owned(),
                        ));
                    }
                    let Some(srv) = self.servers.get_mut(sid) else {
                        return;
                    };
                    let _ = srv
                        .conn
                        .accept(now, &nsp, &info.sid, info.pid.as_deref(), &replay);
                    srv.sockets.insert(nsp, info);
                }
                "/forbidden" => {
                    let data = RawJson::parse(r#"{"reason":"banned"}"#).expect("json");
                    if let Some(srv) = self.servers.get_mut(sid) {
                        let _ = srv.conn.reject(now, &nsp, "not authorized", Some(&data));
                    }
                }
                _ => {
                    if let Some(srv) = self.servers.get_mut(sid) {
                        let _ = srv.conn.reject(now, &nsp, "Invalid namespace", None);
                    }
                }
            },
            ss::Event::Event(packet) => {
                let name = packet.event_name().map(|n| n.into_owned());
                match (name.as_deref(), packet.id()) {
                    (_, Some(id)) => {
                        if self.drop_echo_answers > 0 {
                            self.drop_echo_answers -= 1;
                        } else if let Some(srv) = self.servers.get_mut(sid) {
                            let _ = srv.conn.ack(now, echo_ack(&packet, id));
                        }
                    }
                    (Some("please_emit"), _) => {
                        // ["please_emit", name, count]: the server emits `count` events to
                        // this socket
                        let (event, count): (String, u32) = packet.args().expect("args");
                        let nsp = packet.nsp().clone();
                        let room = self
                            .servers
                            .get(sid)
                            .and_then(|s| s.sockets.get(&nsp))
                            .map(|i| i.sid.clone());
                        for i in 0..count {
                            let p = Packet::event_with(nsp.clone(), &event, &(i,)).expect("event");
                            self.server_emit_to(&nsp, room.clone(), p, false);
                        }
                    }
                    _ => {}
                }
            }
            ss::Event::Disconnect { nsp, reason } => {
                let info = self
                    .servers
                    .get_mut(sid)
                    .and_then(|s| s.sockets.remove(&nsp));
                if let Some(info) = info {
                    if let (Some(pid), Some(store)) = (info.pid.clone(), self.store(&nsp)) {
                        let session = PersistedSession {
                            sid: info.sid.clone(),
                            pid,
                            rooms: vec![info.sid],
                            data: None,
                            since: info.since,
                        };
                        store.leave(now, reason, session);
                    }
                }
            }
            ss::Event::Closed(_) => {
                // A GET still pending on a closed session is answered with an error by the
                // driver (the machine has nothing more to say).
                let Some(srv) = self.servers.get_mut(sid) else {
                    return;
                };
                let gets = std::mem::take(&mut srv.gets);
                for (req, tid) in gets {
                    self.send(Msg::GetErr {
                        tid,
                        req,
                        why: "session closed".into(),
                    });
                }
            }
            _ => {}
        }
    }

    /// `io.of(nsp).emit(packet)` (`volatile` as asked): recorded for recovery when a store is on,
    /// then written to every socket of the namespace. Returns how many sockets it was written to.
    pub fn server_emit(&mut self, nsp: &str, packet: Packet, volatile: bool) -> usize {
        self.server_emit_to(&Str::from(nsp), None, packet, volatile)
    }

    /// `io.of(nsp).to(room).emit(packet)`; `room` is a socket id here (its own room).
    fn server_emit_to(
        &mut self,
        nsp: &Str,
        room: Option<Str>,
        packet: Packet,
        volatile: bool,
    ) -> usize {
        let now = self.instant();
        let mut opts = BroadcastOptions::new();
        if let Some(room) = &room {
            opts = opts.to(room.clone());
        }
        opts.flags.volatile = volatile;
        let packet = match self.store(nsp) {
            Some(store) => store.record(now, &packet, &opts).unwrap_or(packet),
            None => packet,
        };
        let encoded = packet.encode();
        let sids: Vec<String> = self.servers.keys().cloned().collect();
        let mut sent = 0;
        for sid in sids {
            let Some(srv) = self.servers.get_mut(&sid) else {
                continue;
            };
            let target = srv
                .sockets
                .get(nsp)
                .is_some_and(|i| room.as_ref().is_none_or(|r| *r == i.sid));
            if target
                && srv.conn.is_connected(nsp)
                && srv
                    .conn
                    .send(
                        now,
                        &encoded,
                        nsp,
                        eio::SendOptions {
                            volatile,
                            compress: false,
                        },
                    )
                    .is_ok()
            {
                sent += 1;
                self.server_sent.insert((
                    sid.clone(),
                    nsp.to_string(),
                    encoded.socket_text().to_owned(),
                ));
            }
            self.drain_server(&sid);
        }
        sent
    }

    /// `socket.timeout(timeout).emit(packet, ack)` to every socket of `nsp`. Returns the
    /// Engine.IO sessions and ack ids used.
    pub fn server_ask(
        &mut self,
        nsp: &str,
        packet: Packet,
        timeout: Duration,
    ) -> Vec<(String, u64)> {
        let now = self.instant();
        let nsp = Str::from(nsp);
        let sids: Vec<String> = self.servers.keys().cloned().collect();
        let mut asked = Vec::new();
        for sid in sids {
            let connected = self
                .servers
                .get(&sid)
                .is_some_and(|s| s.conn.is_connected(&nsp));
            if !connected {
                continue;
            }
            let id = self.ack_ids.entry(nsp.clone()).or_default().next_id();
            let encoded = packet.clone().with_id(id).encode();
            if let Some(srv) = self.servers.get_mut(&sid) {
                if srv
                    .conn
                    .emit_with_ack(now, &encoded, &nsp, id, timeout)
                    .is_ok()
                {
                    asked.push((sid.clone(), id));
                    self.server_sent.insert((
                        sid.clone(),
                        nsp.to_string(),
                        encoded.socket_text().to_owned(),
                    ));
                }
            }
            self.drain_server(&sid);
        }
        asked
    }

    /// `socket.disconnect()` for every socket of `nsp`.
    pub fn server_disconnect(&mut self, nsp: &str) {
        let now = self.instant();
        let sids: Vec<String> = self.servers.keys().cloned().collect();
        for sid in sids {
            if let Some(srv) = self.servers.get_mut(&sid) {
                let _ = srv.conn.disconnect(now, nsp);
            }
            self.drain_server(&sid);
        }
    }

    /// Closes every open connection with `reason` (`io.close()`, `socket.disconnect(true)`).
    pub fn server_close(&mut self, reason: ServerReason) {
        let now = self.instant();
        let sids: Vec<String> = self.servers.keys().cloned().collect();
        for sid in sids {
            if let Some(srv) = self.servers.get_mut(&sid) {
                srv.conn.close(now, reason);
            }
            self.drain_server(&sid);
        }
    }

    /// Writes `packet` to every socket of `nsp` without any check (to send the client something
    /// it cannot decode).
    pub fn server_send_raw(&mut self, nsp: &str, packet: &Packet) {
        let now = self.instant();
        let encoded = packet.encode();
        let sids: Vec<String> = self.servers.keys().cloned().collect();
        for sid in sids {
            if let Some(srv) = self.servers.get_mut(&sid) {
                let _ = srv
                    .conn
                    .send(now, &encoded, nsp, eio::SendOptions::default());
            }
            self.drain_server(&sid);
        }
    }

    /// Puts a text frame on the client's WebSocket behind its back (a broken client).
    pub fn client_send_raw(&mut self, text: &str) {
        let ws: Vec<TransportId> = self.c_ws.iter().copied().collect();
        for tid in ws {
            self.send(Msg::WsUp {
                tid,
                frame: Frame::Text(Str::from(text)),
            });
        }
    }

    // ---- the client side of the link ---------------------------------------------------------

    fn deliver_down(&mut self, msg: Msg) {
        let now = self.instant();
        match msg {
            Msg::GetOk { tid, req, body } => {
                if self.c_gets.get(&tid) == Some(&req) {
                    self.c_gets.remove(&tid);
                    let input = ec::Input::poll_response(tid, body);
                    self.client.handle_input(now, input);
                }
            }
            Msg::GetErr { tid, req, why } => {
                if self.c_gets.get(&tid) == Some(&req) {
                    self.c_gets.remove(&tid);
                    let error = transport_error(tid, &format!("xhr poll error: {why}"));
                    self.client.handle_input(now, error);
                }
            }
            Msg::PostOk { tid } => {
                if self.take_post(tid) {
                    let input = ec::Input::PostResponse { transport: tid };
                    self.client.handle_input(now, input);
                }
            }
            Msg::PostErr { tid, why } => {
                if self.take_post(tid) {
                    let error = transport_error(tid, &format!("xhr post error: {why}"));
                    self.client.handle_input(now, error);
                }
            }
            Msg::WsOpened { tid } => {
                if self.c_ws.contains(&tid) {
                    let input = ec::Input::WsOpen { transport: tid };
                    self.client.handle_input(now, input);
                }
            }
            Msg::WsDown { tid, frame } => {
                if self.c_ws.contains(&tid) {
                    let input = ec::Input::WsFrame {
                        transport: tid,
                        frame,
                    };
                    self.client.handle_input(now, input);
                }
            }
            Msg::WsClosedDown { tid } => {
                if self.c_ws.remove(&tid) {
                    let input = ec::Input::WsClosed { transport: tid };
                    self.client.handle_input(now, input);
                }
            }
            Msg::WsErr { tid } => {
                if self.c_ws.remove(&tid) {
                    self.client
                        .handle_input(now, transport_error(tid, "websocket error"));
                }
            }
            _ => unreachable!("not a downward message"),
        }
        self.drain_client();
    }

    fn take_post(&mut self, tid: TransportId) -> bool {
        match self.c_posts.get_mut(&tid) {
            Some(n) if *n > 1 => {
                *n -= 1;
                true
            }
            Some(_) => {
                self.c_posts.remove(&tid);
                true
            }
            None => false,
        }
    }

    fn drain_client(&mut self) {
        self.drain_client_outputs();
        self.client_sid = self.client.engine().sid().map(str::to_owned);
    }

    fn drain_client_outputs(&mut self) {
        while let Some(out) = self.client.poll_output() {
            match out {
                ferrio_proto::socket::client::Output::Io(io) => self.on_client_io(io),
                ferrio_proto::socket::client::Output::Event(event) => {
                    if let Event::Event { socket, packet } = &event {
                        let sids = [
                            self.client_sid.clone(),
                            self.client.engine().sid().map(str::to_owned),
                        ]
                        .into_iter()
                        .flatten()
                        .collect();
                        self.delivered
                            .push((self.now, sids, *socket, packet.clone()));
                    }
                    self.client_log.push((self.now, event.clone()));
                    self.client_app(event);
                }
            }
        }
    }

    fn client_app(&mut self, event: Event) {
        let now = self.instant();
        match event {
            Event::Event { socket, packet } if self.client_auto_ack => {
                if let Some(id) = packet.id() {
                    let _ = self.client.ack(now, socket, echo_ack(&packet, id));
                }
            }
            Event::AuthNeeded { socket } => {
                let _ = self.client.provide_auth(now, socket, None);
            }
            _ => {}
        }
    }

    fn on_client_io(&mut self, io: Io) {
        match io {
            Io::Get { transport, query } => {
                self.next_req += 1;
                let req = self.next_req;
                if self.c_gets.insert(transport, req).is_some() {
                    self.violations
                        .push(format!("{}: two GETs in flight on {transport}", self.now));
                }
                self.send(Msg::Get {
                    tid: transport,
                    sid: query_sid(&query),
                    req,
                });
            }
            Io::Post {
                transport,
                query,
                body,
            } => {
                *self.c_posts.entry(transport).or_default() += 1;
                self.send(Msg::Post {
                    tid: transport,
                    sid: query_sid(&query),
                    body: body.into_bytes(),
                });
            }
            Io::WsOpen { transport, query } => {
                self.c_ws.insert(transport);
                self.send(Msg::WsConnect {
                    tid: transport,
                    sid: query_sid(&query),
                });
            }
            Io::WsSend {
                transport, frame, ..
            } => {
                if self.c_ws.contains(&transport) {
                    self.send(Msg::WsUp {
                        tid: transport,
                        frame,
                    });
                }
            }
            Io::Close { transport } => {
                if let Some(req) = self.c_gets.remove(&transport) {
                    self.send(Msg::GetAbort { req });
                }
                if self.c_ws.remove(&transport) {
                    self.send(Msg::WsCloseUp { tid: transport });
                }
            }
        }
    }

    // ---- client commands ---------------------------------------------------------------------

    /// Opens the socket of `nsp`.
    pub fn open(&mut self, nsp: &str, options: SocketOptions) -> SocketId {
        let now = self.instant();
        let socket = self
            .client
            .open_socket(now, nsp, options)
            .expect("open_socket");
        self.drain_client();
        socket
    }

    /// `socket.emit(...)`.
    pub fn emit(
        &mut self,
        socket: SocketId,
        packet: Packet,
        options: EmitOptions,
    ) -> Result<Option<AckId>, ClientError> {
        let now = self.instant();
        let r = self.client.emit(now, socket, packet, options);
        self.drain_client();
        r
    }

    /// `socket.disconnect()`.
    pub fn disconnect(&mut self, socket: SocketId) {
        let now = self.instant();
        self.client.disconnect(now, socket).expect("disconnect");
        self.drain_client();
    }

    /// `socket.connect()`.
    pub fn connect(&mut self, socket: SocketId) {
        let now = self.instant();
        self.client.connect_socket(now, socket).expect("connect");
        self.drain_client();
    }

    // ---- what happened -----------------------------------------------------------------------

    /// The client's events other than pings, with their times.
    pub fn client_events(&self) -> Vec<(u64, Event)> {
        self.client_log
            .iter()
            .filter(|(_, e)| *e != Event::Ping)
            .cloned()
            .collect()
    }

    /// When the client's `socket` connected (every time).
    pub fn connect_times(&self, socket: SocketId) -> Vec<u64> {
        self.client_log
            .iter()
            .filter(|(_, e)| matches!(e, Event::Connect { socket: s, .. } if *s == socket))
            .map(|(at, _)| *at)
            .collect()
    }

    /// When the client saw `event` (every time).
    pub fn client_times(&self, event: &Event) -> Vec<u64> {
        self.client_log
            .iter()
            .filter(|(_, e)| e == event)
            .map(|(at, _)| *at)
            .collect()
    }

    /// The client's socket disconnections: time, socket, reason.
    pub fn client_disconnects(&self) -> Vec<(u64, SocketId, ClientReason)> {
        self.client_log
            .iter()
            .filter_map(|(at, e)| match e {
                Event::Disconnect { socket, reason, .. } => Some((*at, *socket, *reason)),
                _ => None,
            })
            .collect()
    }

    /// The events the client received (time, socket, packet), by name.
    pub fn client_received(&self, name: &str) -> Vec<(u64, SocketId, Packet)> {
        self.client_log
            .iter()
            .filter_map(|(at, e)| match e {
                Event::Event { socket, packet } if packet.event_name().as_deref() == Some(name) => {
                    Some((*at, *socket, packet.clone()))
                }
                _ => None,
            })
            .collect()
    }

    /// The acks (`Ok`) and ack errors (`Err`) the client got for `ack`.
    pub fn client_ack_results(
        &self,
        socket: SocketId,
        ack: AckId,
    ) -> Vec<(u64, Result<Packet, String>)> {
        self.client_log
            .iter()
            .filter_map(|(at, e)| match e {
                Event::Ack {
                    socket: s,
                    ack: a,
                    packet,
                } if *s == socket && *a == ack => Some((*at, Ok(packet.clone()))),
                Event::AckError {
                    socket: s,
                    ack: a,
                    error,
                } if *s == socket && *a == ack => Some((*at, Err(error.to_string()))),
                _ => None,
            })
            .collect()
    }

    /// The server's socket disconnections: time, namespace, reason.
    pub fn server_disconnects(&self) -> Vec<(u64, String, ServerReason)> {
        self.server_log
            .iter()
            .filter_map(|r| match &r.out {
                ss::Event::Disconnect { nsp, reason } => Some((r.at, nsp.to_string(), *reason)),
                _ => None,
            })
            .collect()
    }

    /// The server's connection closes: time, session, reason.
    pub fn server_closes(&self) -> Vec<(u64, String, ServerReason)> {
        self.server_log
            .iter()
            .filter_map(|r| match &r.out {
                ss::Event::Closed(reason) => Some((r.at, r.eio.clone(), *reason)),
                _ => None,
            })
            .collect()
    }

    /// The events the server received (time, session, packet), by name.
    pub fn server_received(&self, name: &str) -> Vec<(u64, String, Packet)> {
        self.server_log
            .iter()
            .filter_map(|r| match &r.out {
                ss::Event::Event(p) if p.event_name().as_deref() == Some(name) => {
                    Some((r.at, r.eio.clone(), p.clone()))
                }
                _ => None,
            })
            .collect()
    }

    /// The answers the server got to its own emits with ack.
    pub fn server_acks(&self) -> Vec<(u64, String, Packet)> {
        self.server_log
            .iter()
            .filter_map(|r| match &r.out {
                ss::Event::Ack(p) => Some((r.at, r.eio.clone(), p.clone())),
                _ => None,
            })
            .collect()
    }

    /// The server sessions not closed.
    pub fn open_sessions(&self) -> Vec<String> {
        self.servers
            .iter()
            .filter(|(_, s)| !s.conn.is_closed())
            .map(|(sid, _)| sid.clone())
            .collect()
    }

    /// The server connection of an Engine.IO session.
    pub fn server(&self, sid: &str) -> &Connection {
        &self.servers[sid].conn
    }
}

/// The input reporting that `transport` failed with `description`.
fn transport_error(transport: TransportId, description: &str) -> ec::Input {
    ec::Input::TransportError {
        transport,
        description: description.to_owned(),
    }
}
