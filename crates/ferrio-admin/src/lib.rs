//! # ferrio-admin
//!
//! The server side of the official Socket.IO Admin UI (`@socket.io/admin-ui` 0.5, hosted at
//! <https://admin.socket.io> and shipped in the npm package's `ui/dist`) for a Ferrio server:
//! what the reference's `instrument(io, options)` sets up.
//!
//! ```no_run
//! use ferrio_admin::{instrument, AdminOptions, Auth, Mode};
//! use ferrio_server::{Cors, Ferrio};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let io = Ferrio::builder()
//!     // The UI connects from its own origin, with credentials.
//!     .cors(Cors::origins(["https://admin.socket.io"]).credentials(true))
//!     .build();
//! let admin = instrument(
//!     &io,
//!     AdminOptions {
//!         auth: Auth::Basic {
//!             username: "admin".into(),
//!             // The bcrypt hash of "changeit".
//!             password_hash: "$2a$10$LBytqDjH8CiopW5V9gVP/er9rJLxKTShReFVBCWXnvVsgWkWMbtQ2".into(),
//!         },
//!         mode: Mode::Development,
//!         read_only: false,
//!         namespace_name: "/admin".into(),
//!         server_id: None,
//!     },
//! )?;
//! // The stats stop when `admin` is dropped; `admin.detach()` keeps them for good.
//! io.serve(tokio::net::TcpListener::bind("127.0.0.1:3000").await?).await?;
//! # drop(admin);
//! # Ok(())
//! # }
//! ```
//!
//! # What the UI gets
//!
//! On the admin namespace (`/admin` by default), after the authentication middleware:
//!
//! - `session` (a random 8-byte hex id the UI logs in with next time, as `auth.sessionId`),
//!   sent first thing after the CONNECT. The reference sends it just before, which a connect
//!   middleware here cannot do; the UI listens for it only once connected, and the client
//!   replays the events received before the CONNECT ahead of that, so only this order gets the
//!   session id to the UI;
//! - `config` (`supportedFeatures`: `EMIT`, `JOIN`, `LEAVE`, `DISCONNECT`, `MJOIN`, `MLEAVE`,
//!   `MDISCONNECT` unless read-only, `AGGREGATED_EVENTS`, and `ALL_EVENTS` in development mode);
//! - `all_sockets` (development mode): the sockets of every namespace, fetched across the
//!   cluster;
//! - `server_stats` at once and every 2 s, to the whole admin namespace: `serverId`,
//!   `hostname`, `pid`, `uptime` (seconds since [`instrument`] was called), `clientsCount`
//!   (Engine.IO sessions), `pollingClientsCount`, `aggregatedEvents` (`rawConnection`,
//!   `rawDisconnection` with the close reason as `subType`, `packetsIn`, `packetsOut`,
//!   `bytesIn`, `bytesOut`: what the server's Engine.IO counters, [`Ferrio::engine_stats`],
//!   saw since the last `server_stats`, stamped with its second) and `namespaces` (`name`,
//!   `socketsCount`);
//! - in development mode, for every namespace: `socket_connected`, `socket_updated` (on a
//!   transport upgrade), `socket_disconnected`, `room_joined`, `room_left`, and for every
//!   namespace but the admin one `event_received` and `event_sent`.
//!
//! Like the reference, all of these but `session`, `config` and `all_sockets` go to the whole
//! admin namespace through the server's cluster adapter, if it has one: a UI connected to any
//! node of a cluster (Node nodes with `instrument()` included) sees every node, each by its
//! `serverId` (give each node its own, [`AdminOptions::server_id`]).
//!
//! From the UI (ignored when read-only): `emit`, `join`, `leave`, `_disconnect`, each for an
//! existing namespace, optionally filtered by a room (a socket id is a room too).
//!
//! In development mode each socket's shared data ([`ferrio_server::Socket::shared_data`])
//! gets an `_admin` member, `{clientId, transport}`, as the reference puts into `socket.data`,
//! so that the other nodes of a cluster (Ferrio or Node) list this node's sockets fully; the
//! UI never sees it in `data`. It is added to what a connect middleware set; a connection
//! handler that replaces the shared data afterwards drops it (as replacing `socket.data` does
//! with the reference), one that adds to [`ferrio_server::Socket::shared_data`] keeps it.
//!
//! # Not reported
//!
//! `socket_updated` for a change of a socket's data (there is no change notification). The
//! aggregated events of a 2 s period are reported under the second of their `server_stats`,
//! not each under its own second.

#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod serialize;
mod stats;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ferrio_server::{
    ConnectError, Disconnection, EngineStats, EngineStatsSnapshot, Ferrio, Message, Namespace,
    RawArgs, RoomEvent, Socket, Transport,
};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::serialize::ADMIN_KEY;
use crate::stats::{EventBuffer, Sessions};

/// How often `server_stats` is emitted.
pub const STATS_INTERVAL: Duration = Duration::from_secs(2);

/// How long a login's session id stays valid (as the reference's Redis store keeps it).
pub const SESSION_DURATION: Duration = Duration::from_secs(86_400);

/// At most this many session ids are kept; the oldest goes first.
pub const MAX_SESSIONS: usize = 10_000;

/// The password checks (bcrypt, slow on purpose) that run at once. A login attempt beyond them
/// is refused at once with `invalid credentials`, so that a flood of attempts cannot take every
/// core or hold up the runtime's blocking pool (the reference's native bcrypt runs in libuv's
/// four threads).
pub const MAX_PASSWORD_CHECKS: usize = 2;

/// How the admin namespace authenticates the UI.
#[derive(Clone)]
pub enum Auth {
    /// No authentication: anyone reaching the server may use the admin namespace.
    None,
    /// The UI's `auth.username` must be `username` and `auth.password` must match
    /// `password_hash`, a bcrypt hash (`$2a$`, `$2b$`, `$2x$` or `$2y$`), or `auth.sessionId`
    /// must be a session id given to an earlier login. Anything else is refused with the
    /// CONNECT_ERROR `invalid credentials`.
    Basic {
        /// The user name.
        username: String,
        /// The bcrypt hash of the password.
        password_hash: String,
    },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .finish_non_exhaustive(),
        }
    }
}

/// What the UI is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Every socket, room and event (`all_sockets`, `socket_*`, `room_*`, `event_*`), besides
    /// the stats.
    Development,
    /// The stats only (the reference's `production`): nothing per socket.
    Production,
}

/// The options of [`instrument`] (the reference's `InstrumentOptions`).
#[derive(Debug, Clone)]
pub struct AdminOptions {
    /// The authentication.
    pub auth: Auth,
    /// Development or production.
    pub mode: Mode,
    /// When true, the UI's commands (`emit`, `join`, `leave`, `_disconnect`) are ignored and
    /// announced as unsupported.
    pub read_only: bool,
    /// The admin namespace (`/admin`).
    pub namespace_name: String,
    /// The server's id in the UI (the host name when `None`).
    pub server_id: Option<String>,
}

impl AdminOptions {
    /// Development mode, not read-only, on `/admin`, the host name as server id.
    pub fn new(auth: Auth) -> AdminOptions {
        AdminOptions {
            auth,
            mode: Mode::Development,
            read_only: false,
            namespace_name: "/admin".to_owned(),
            server_id: None,
        }
    }
}

/// Why [`instrument`] refused its options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstrumentError {
    /// [`Auth::Basic`]'s `password_hash` is not a bcrypt hash.
    InvalidPasswordHash,
    /// [`instrument`] was called outside a tokio runtime (it starts the stats timer).
    NoRuntime,
}

impl std::fmt::Display for InstrumentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InstrumentError::InvalidPasswordHash => {
                f.write_str("the password hash must be a valid bcrypt hash")
            }
            InstrumentError::NoRuntime => f.write_str("instrument must run in a tokio runtime"),
        }
    }
}

impl std::error::Error for InstrumentError {}

/// What [`instrument`] returns: dropping or closing it stops the `server_stats` timer (the
/// namespace, its middleware and the listeners stay).
#[derive(Debug)]
#[must_use = "dropping the handle stops the stats; call detach() to keep them"]
pub struct AdminHandle {
    stats: Option<JoinHandle<()>>,
}

impl AdminHandle {
    /// Stops the `server_stats` timer.
    pub fn close(mut self) {
        self.stop();
    }

    /// Keeps the `server_stats` timer running as long as the runtime does.
    pub fn detach(mut self) {
        self.stats = None;
    }

    fn stop(&mut self) {
        if let Some(task) = self.stats.take() {
            task.abort();
        }
    }
}

impl Drop for AdminHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sets up the admin namespace on `io` for the Socket.IO Admin UI (the reference's
/// `instrument(io, options)`): its authentication, its events and commands, the listeners on
/// every namespace (those created later included) and the stats timer. Call it inside a tokio
/// runtime, once per server.
pub fn instrument(io: &Ferrio, options: AdminOptions) -> Result<AdminHandle, InstrumentError> {
    if let Auth::Basic { password_hash, .. } = &options.auth {
        if password_hash.parse::<bcrypt::HashParts>().is_err() {
            return Err(InstrumentError::InvalidPasswordHash);
        }
    }
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| InstrumentError::NoRuntime)?;
    let admin = io.of(&options.namespace_name);
    let mut features: Vec<&'static str> = if options.read_only {
        Vec::new()
    } else {
        vec![
            "EMIT",
            "JOIN",
            "LEAVE",
            "DISCONNECT",
            "MJOIN",
            "MLEAVE",
            "MDISCONNECT",
        ]
    };
    features.push("AGGREGATED_EVENTS");
    if options.mode == Mode::Development {
        features.push("ALL_EVENTS");
    }
    let hostname = hostname();
    let shared = Arc::new(Shared {
        io: io.clone(),
        admin: admin.clone(),
        development: options.mode == Mode::Development,
        read_only: options.read_only,
        features,
        server_id: options
            .server_id
            .clone()
            .unwrap_or_else(|| hostname.clone()),
        hostname,
        started: Instant::now(),
        events: Mutex::new(EventBuffer::default()),
        engine: io.engine_stats(),
        engine_seen: Mutex::new(EngineStatsSnapshot::default()),
        sessions: Mutex::new(Sessions::default()),
        logins: Mutex::new(Logins::default()),
        password_checks: Arc::new(Semaphore::new(MAX_PASSWORD_CHECKS)),
    });

    if let Auth::Basic {
        username,
        password_hash,
    } = options.auth
    {
        let shared = shared.clone();
        let credentials = Arc::new((username, password_hash));
        admin.use_connect(move |socket: Socket| {
            let shared = shared.clone();
            let credentials = credentials.clone();
            async move { shared.authenticate(socket, credentials).await }
        });
    }
    {
        let shared = shared.clone();
        admin.on_connection(move |socket: Socket| {
            let shared = shared.clone();
            async move { shared.admin_connected(socket).await }
        });
    }

    // Every namespace: those created from now on, and those that exist (a namespace created
    // in between is set up once).
    let early: Arc<Mutex<Option<HashSet<String>>>> = Arc::new(Mutex::new(Some(HashSet::new())));
    {
        let shared = shared.clone();
        let early = early.clone();
        io.on_new_namespace(move |ns| {
            if let Some(seen) = lock(&early).as_mut() {
                seen.insert(ns.name().to_owned());
            }
            shared.watch_namespace(&ns);
        });
    }
    let existing = io.namespaces();
    let seen = lock(&early).take().unwrap_or_default();
    for ns in existing {
        if !seen.contains(ns.name()) {
            shared.watch_namespace(&ns);
        }
    }

    let stats = {
        let shared = shared.clone();
        runtime.spawn(async move {
            let mut timer = tokio::time::interval(STATS_INTERVAL);
            timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                timer.tick().await;
                shared.emit_stats();
            }
        })
    };
    Ok(AdminHandle { stats: Some(stats) })
}

/// The id a successful login gets, kept with its socket until it is told.
#[derive(Clone)]
struct LoginSession(String);

/// The session ids given to logins, oldest first, each valid [`SESSION_DURATION`].
#[derive(Default)]
struct Logins {
    ids: HashMap<String, Instant>,
    order: VecDeque<String>,
}

impl Logins {
    fn contains(&mut self, id: &str, now: Instant) -> bool {
        while let Some(oldest) = self.order.front() {
            let expired = self
                .ids
                .get(oldest)
                .is_none_or(|t| now.duration_since(*t) >= SESSION_DURATION);
            if !expired {
                break;
            }
            if let Some(oldest) = self.order.pop_front() {
                self.ids.remove(&oldest);
            }
        }
        self.ids.contains_key(id)
    }

    fn save(&mut self, id: String, now: Instant) {
        if self.order.len() >= MAX_SESSIONS {
            if let Some(oldest) = self.order.pop_front() {
                self.ids.remove(&oldest);
            }
        }
        self.order.push_back(id.clone());
        self.ids.insert(id, now);
    }
}

/// What every listener of one [`instrument`] shares.
struct Shared {
    io: Ferrio,
    admin: Namespace,
    development: bool,
    read_only: bool,
    features: Vec<&'static str>,
    server_id: String,
    hostname: String,
    started: Instant,
    events: Mutex<EventBuffer>,
    /// The server's Engine.IO counters, and what of them `server_stats` reported already.
    engine: EngineStats,
    engine_seen: Mutex<EngineStatsSnapshot>,
    sessions: Mutex<Sessions>,
    logins: Mutex<Logins>,
    /// The password checks that may run now ([`MAX_PASSWORD_CHECKS`]).
    password_checks: Arc<Semaphore>,
}

/// `server_stats`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ServerStats<'a> {
    server_id: &'a str,
    hostname: &'a str,
    pid: u32,
    uptime: f64,
    clients_count: usize,
    polling_clients_count: usize,
    aggregated_events: Vec<stats::AggregatedEvent>,
    namespaces: Vec<NamespaceDetails>,
}

/// One namespace of `server_stats`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NamespaceDetails {
    name: String,
    sockets_count: usize,
}

impl Shared {
    /// The admin namespace's middleware for [`Auth::Basic`].
    async fn authenticate(
        &self,
        socket: Socket,
        credentials: Arc<(String, String)>,
    ) -> Result<(), ConnectError> {
        let auth = socket
            .handshake()
            .auth_raw()
            .to_value()
            .unwrap_or(Value::Null);
        let text = |key: &str| auth.get(key).and_then(Value::as_str).map(str::to_owned);
        if let Some(id) = text("sessionId").filter(|id| !id.is_empty()) {
            if lock(&self.logins).contains(&id, Instant::now()) {
                return Ok(());
            }
        }
        let user_matches = text("username").as_deref() == Some(credentials.0.as_str());
        if let (true, Some(password)) = (user_matches, text("password")) {
            let Ok(slot) = self.password_checks.clone().try_acquire_owned() else {
                tracing::debug!("admin login refused: {MAX_PASSWORD_CHECKS} checks running");
                return Err(ConnectError::new("invalid credentials"));
            };
            let credentials = credentials.clone();
            // bcrypt is slow on purpose: not on the runtime's threads. The slot is given back
            // when the check ends, even if the client left meanwhile.
            let matches = tokio::task::spawn_blocking(move || {
                let _slot = slot;
                bcrypt::verify(password, &credentials.1).unwrap_or(false)
            })
            .await
            .unwrap_or(false);
            if matches {
                if let Some(id) = random_id() {
                    lock(&self.logins).save(id.clone(), Instant::now());
                    socket.insert_data(LoginSession(id));
                    return Ok(());
                }
                tracing::warn!("no random session id for an admin login");
            }
        }
        Err(ConnectError::new("invalid credentials"))
    }

    /// An admin socket connected: its session id, its own listeners as any namespace's socket,
    /// its commands, `config` and `all_sockets`.
    async fn admin_connected(self: Arc<Self>, socket: Socket) {
        if let Some(LoginSession(id)) = socket.data::<LoginSession>() {
            let _ = socket.emit("session", &(id,));
        }
        self.socket_connected(&socket);
        if !self.read_only {
            self.register_commands(&socket);
        }
        let _ = socket.emit(
            "config",
            &(serde_json::json!({ "supportedFeatures": self.features }),),
        );
        if self.development {
            let sockets = self.all_sockets().await;
            let _ = socket.emit("all_sockets", &(sockets,));
        }
    }

    /// The sockets of every namespace, across the cluster, the namespaces asked at once (as
    /// the reference does), so that a node slow to answer delays the list once, not once per
    /// namespace.
    async fn all_sockets(&self) -> Vec<serialize::SerializedSocket> {
        let fetches: Vec<_> = self
            .io
            .namespaces()
            .into_iter()
            .map(|ns| {
                let fetch = tokio::spawn(ns.fetch_sockets());
                (ns, fetch)
            })
            .collect();
        let mut all = Vec::new();
        for (ns, fetch) in fetches {
            let Ok(fetched) = fetch.await else {
                continue;
            };
            match fetched {
                Ok(sockets) => all.extend(sockets.iter().map(|s| {
                    let live = ns.socket(s.id());
                    serialize::fetched(s, ns.name(), live.as_ref())
                })),
                Err(e) => tracing::warn!(nsp = ns.name(), "fetching the sockets failed: {e}"),
            }
        }
        all
    }

    /// Sets up the listeners of namespace `ns`.
    fn watch_namespace(self: &Arc<Self>, ns: &Namespace) {
        let is_admin = ns.name() == self.admin.name();
        if !is_admin {
            let shared = self.clone();
            ns.on_connection(move |socket: Socket| {
                shared.socket_connected(&socket);
                std::future::ready(())
            });
        }
        if self.development {
            let shared = self.clone();
            let nsp = ns.name().to_owned();
            ns.on_room_event(move |event| match event {
                RoomEvent::JoinRoom { room, id } => {
                    let _ = shared.admin.emit(
                        "room_joined",
                        &(&nsp, room.as_str(), id.as_str(), now_iso()),
                    );
                }
                RoomEvent::LeaveRoom { room, id } => {
                    let _ = shared
                        .admin
                        .emit("room_left", &(&nsp, room.as_str(), id.as_str(), now_iso()));
                }
                _ => {}
            });
        }
    }

    /// A socket of any namespace connected.
    fn socket_connected(self: &Arc<Self>, socket: &Socket) {
        let watch = lock(&self.sessions).arrived(socket.engine_id(), socket.transport());
        if let Some(generation) = watch {
            let shared = self.clone();
            let socket = socket.clone();
            tokio::spawn(async move {
                let _ = socket.upgraded().await;
                lock(&shared.sessions).stopped_polling(socket.engine_id(), generation);
            });
        }
        {
            let shared = self.clone();
            socket.on_disconnect(move |socket: Socket, why: Disconnection| {
                shared.socket_disconnected(&socket, &why);
                std::future::ready(())
            });
        }
        if !self.development {
            return;
        }
        let transport = socket.transport();
        let mut data = match socket.shared_data() {
            Value::Object(map) => map,
            _ => serde_json::Map::new(),
        };
        data.insert(
            ADMIN_KEY.to_owned(),
            serialize::admin_data(socket, transport.name()),
        );
        let _ = socket.set_shared_data(&data);
        let _ = self
            .admin
            .emit("socket_connected", &(serialize::local(socket), now_iso()));
        if transport == Transport::Polling {
            let shared = self.clone();
            let socket = socket.clone();
            tokio::spawn(async move {
                if let Some(t) = socket.upgraded().await {
                    shared.socket_upgraded(&socket, t);
                }
            });
        }
        if socket.nsp() != self.admin.name() {
            let shared = self.clone();
            socket.on_any(move |socket: Socket, event: String, args: RawArgs| {
                let mut values = Vec::with_capacity(args.len() + 1);
                values.push(Value::String(event));
                values.extend(args.values().iter().cloned());
                let all = RawArgs::new(values, args.attachments().to_vec());
                let _ = shared.admin.emit(
                    "event_received",
                    &(socket.nsp(), socket.id(), all, now_iso()),
                );
                std::future::ready(())
            });
            let shared = self.clone();
            socket.on_any_outgoing(move |socket: &Socket, event: &str, args: &RawArgs| {
                let mut values = Vec::with_capacity(args.len() + 1);
                values.push(Value::String(event.to_owned()));
                values.extend(args.values().iter().cloned());
                let all = RawArgs::new(values, args.attachments().to_vec());
                let _ = shared
                    .admin
                    .emit("event_sent", &(socket.nsp(), socket.id(), all, now_iso()));
            });
        }
    }

    /// A socket's session upgraded to `transport`.
    fn socket_upgraded(&self, socket: &Socket, transport: Transport) {
        if !socket.connected() {
            return;
        }
        let mut data = socket.shared_data();
        if let Some(admin) = data.get_mut(ADMIN_KEY).and_then(Value::as_object_mut) {
            admin.insert("transport".into(), transport.name().into());
            let _ = socket.set_shared_data(&data);
        }
        let _ = self.admin.emit(
            "socket_updated",
            &(serde_json::json!({
                "id": socket.id(),
                "nsp": socket.nsp(),
                "transport": transport.name(),
            }),),
        );
    }

    /// A socket of any namespace left.
    fn socket_disconnected(&self, socket: &Socket, why: &Disconnection) {
        lock(&self.sessions).left(socket.engine_id());
        if self.development {
            let _ = self.admin.emit(
                "socket_disconnected",
                &(socket.nsp(), socket.id(), why.as_str(), now_iso()),
            );
        }
    }

    /// What the server's Engine.IO counters saw since the last `server_stats`, as events of
    /// this second.
    fn aggregated_events(&self) -> Vec<stats::AggregatedEvent> {
        let now = self.engine.snapshot();
        let delta = {
            let mut seen = lock(&self.engine_seen);
            let delta = now.since(&seen);
            *seen = now;
            delta
        };
        let mut events = lock(&self.events);
        events.push_engine(now_ms(), &delta);
        events.take()
    }

    /// Emits `server_stats` to the admin namespace.
    fn emit_stats(&self) {
        let namespaces = self
            .io
            .namespaces()
            .iter()
            .map(|ns| NamespaceDetails {
                name: ns.name().to_owned(),
                sockets_count: ns.sockets().len(),
            })
            .collect();
        let stats = ServerStats {
            server_id: &self.server_id,
            hostname: &self.hostname,
            pid: std::process::id(),
            uptime: self.started.elapsed().as_secs_f64(),
            clients_count: self.io.session_count(),
            polling_clients_count: lock(&self.sessions).polling(),
            aggregated_events: self.aggregated_events(),
            namespaces,
        };
        let _ = self.admin.emit("server_stats", &(stats,));
    }

    /// The UI's commands on an admin socket.
    fn register_commands(self: &Arc<Self>, socket: &Socket) {
        let shared = self.clone();
        socket.on("emit", move |_socket: Socket, msg: Message| {
            let shared = shared.clone();
            async move {
                let Ok(args) = msg.raw_args() else { return };
                let values = args.values();
                let (Some(ns), Some(Value::String(event))) =
                    (shared.namespace(values.first()), values.get(2))
                else {
                    return;
                };
                let rest = RawArgs::new(
                    values.get(3..).unwrap_or_default().to_vec(),
                    args.attachments().to_vec(),
                );
                let sent = match room(values.get(1)) {
                    Ok(Some(room)) => ns.to(room).emit(event, &rest),
                    Ok(None) => ns.emit(event, &rest),
                    Err(NoRoom) => return,
                };
                if let Err(e) = sent {
                    tracing::debug!(event, "admin emit refused: {e}");
                }
            }
        });
        let shared = self.clone();
        socket.on("join", move |_socket: Socket, msg: Message| {
            let shared = shared.clone();
            async move {
                let Some((ns, room_name, filter)) = shared.room_command(&msg) else {
                    return;
                };
                match filter {
                    Some(filter) => ns.to(filter).sockets_join(room_name),
                    None => ns.sockets_join(room_name),
                }
            }
        });
        let shared = self.clone();
        socket.on("leave", move |_socket: Socket, msg: Message| {
            let shared = shared.clone();
            async move {
                let Some((ns, room_name, filter)) = shared.room_command(&msg) else {
                    return;
                };
                match filter {
                    Some(filter) => ns.to(filter).sockets_leave(room_name),
                    None => ns.sockets_leave(room_name),
                }
            }
        });
        let shared = self.clone();
        socket.on("_disconnect", move |_socket: Socket, msg: Message| {
            let shared = shared.clone();
            async move {
                let Ok(values) = msg.args::<Vec<Value>>() else {
                    return;
                };
                let Some(ns) = shared.namespace(values.first()) else {
                    return;
                };
                let close = values.get(1).is_some_and(truthy);
                match room(values.get(2)) {
                    Ok(Some(filter)) => ns.to(filter).disconnect_sockets(close),
                    Ok(None) => ns.disconnect_sockets(close),
                    Err(NoRoom) => {}
                }
            }
        });
    }

    /// `(nsp, room, filter?)` of `join` and `leave`.
    fn room_command(&self, msg: &Message) -> Option<(Namespace, String, Option<String>)> {
        let values = msg.args::<Vec<Value>>().ok()?;
        let ns = self.namespace(values.first())?;
        let room_name = match values.get(1)? {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return None,
        };
        Some((ns, room_name, room(values.get(2)).ok()?))
    }

    /// The existing namespace a command names.
    fn namespace(&self, name: Option<&Value>) -> Option<Namespace> {
        let name = name?.as_str()?;
        self.io
            .namespaces()
            .into_iter()
            .find(|ns| ns.name() == name)
    }
}

/// A room filter that names no room: a command with it does nothing.
#[derive(Debug, PartialEq)]
struct NoRoom;

/// A command's room filter as the reference's `if (filter) ns.in(filter)` reads it: no filter
/// when it is missing or falsy; a room for a string or a number (rooms may be numbers there);
/// [`NoRoom`] for any other truthy value (an object, an array, `true`), which matches no
/// socket, so that a malformed filter never widens a command to the whole namespace.
fn room(filter: Option<&Value>) -> Result<Option<String>, NoRoom> {
    match filter {
        None => Ok(None),
        Some(v) if !truthy(v) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(NoRoom),
    }
}

/// JavaScript's truthiness of a JSON value.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// A mutex's guard, poisoned or not (the values here stay consistent at every step).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Now as JavaScript's `Date` travels in JSON (`toISOString`).
fn now_iso() -> String {
    ferrio_proto::date::iso_string(i64::try_from(now_ms()).unwrap_or(i64::MAX))
}

/// 8 random bytes in hex (the reference's `randomBytes(8).toString("hex")`).
fn random_id() -> Option<String> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).ok()?;
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The host name (Node's `os.hostname()`).
fn hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_owned())
        .find(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "localhost".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_are_16_hex_digits() {
        let a = random_id().expect("random");
        assert_eq!(a.len(), 16);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(Some(a), random_id());
    }

    #[test]
    fn logins_expire_and_are_bounded() {
        let mut l = Logins::default();
        let t0 = Instant::now();
        l.save("a".into(), t0);
        assert!(l.contains("a", t0));
        assert!(!l.contains("b", t0));
        assert!(!l.contains("a", t0 + SESSION_DURATION));
        for i in 0..MAX_SESSIONS + 1 {
            l.save(i.to_string(), t0);
        }
        assert!(!l.contains("0", t0));
        assert!(l.contains("1", t0));
        assert_eq!(l.ids.len(), MAX_SESSIONS);
    }

    #[test]
    fn javascript_truthiness_and_room_filters() {
        assert!(!truthy(&Value::Null));
        assert!(truthy(&serde_json::json!(true)));
        assert!(!truthy(&serde_json::json!(0)));
        assert!(truthy(&serde_json::json!("x")));
        assert_eq!(
            room(Some(&serde_json::json!("vip"))),
            Ok(Some("vip".into()))
        );
        assert_eq!(room(Some(&serde_json::json!(7))), Ok(Some("7".into())));
        assert_eq!(room(Some(&serde_json::json!(""))), Ok(None));
        assert_eq!(room(Some(&serde_json::json!(0))), Ok(None));
        assert_eq!(room(Some(&Value::Null)), Ok(None));
        assert_eq!(room(None), Ok(None));
        // A malformed filter matches no socket rather than every socket.
        for bad in [
            serde_json::json!({"a": 1}),
            serde_json::json!(["x"]),
            serde_json::json!(true),
        ] {
            assert_eq!(room(Some(&bad)), Err(NoRoom), "{bad}");
        }
    }

    #[tokio::test]
    async fn a_password_that_is_not_a_bcrypt_hash_is_refused() {
        let io = Ferrio::builder().build();
        let err = instrument(
            &io,
            AdminOptions::new(Auth::Basic {
                username: "admin".into(),
                password_hash: "changeit".into(),
            }),
        )
        .err();
        assert_eq!(err, Some(InstrumentError::InvalidPasswordHash));
    }

    #[test]
    fn outside_a_runtime_it_says_so() {
        let io = Ferrio::builder().build();
        let err = instrument(&io, AdminOptions::new(Auth::None)).err();
        assert_eq!(err, Some(InstrumentError::NoRuntime));
    }
}
