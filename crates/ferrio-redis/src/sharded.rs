//! The sharded adapter (`createShardedAdapter` of `@socket.io/redis-adapter`): the message set of
//! the reference's `ClusterAdapter` (`MessageType` 3–12 in `{type, data, uid, nsp}` envelopes)
//! over Redis 7 sharded pub/sub, with a channel per public room in the dynamic modes.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ferrio_proto::rooms::{BroadcastOptions, RoomEvent};
use ferrio_proto::socket::Packet;
use ferrio_proto::Str;
use ferrio_server::{
    AckError, AdapterError, BoxFuture, LocalNamespace, NamespaceAdapter, ServerAck,
    ServerSideEmitError, SocketInfo,
};
use futures_util::StreamExt;
use rmpv::Value as Mp;
use serde_json::Value as Json;
use tokio::sync::oneshot;
use tracing::debug;

use crate::codec::{self, get, get_str, map};
use crate::hub::{Hub, Listener, Route};
use crate::requests::{self, Answer, Pending};

/// The `ClusterAdapter` message types.
mod kind {
    pub const BROADCAST: u64 = 3;
    pub const SOCKETS_JOIN: u64 = 4;
    pub const SOCKETS_LEAVE: u64 = 5;
    pub const DISCONNECT_SOCKETS: u64 = 6;
    pub const FETCH_SOCKETS: u64 = 7;
    pub const FETCH_SOCKETS_RESPONSE: u64 = 8;
    pub const SERVER_SIDE_EMIT: u64 = 9;
    pub const SERVER_SIDE_EMIT_RESPONSE: u64 = 10;
    pub const BROADCAST_CLIENT_COUNT: u64 = 11;
    pub const BROADCAST_ACK: u64 = 12;
}

/// Which rooms get a channel of their own (`subscriptionMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SubscriptionMode {
    /// Two channels per namespace, none per room.
    Static,
    /// A channel per public room (not a socket's own id room): the reference's default.
    #[default]
    Dynamic,
    /// A channel per room, socket id rooms included.
    DynamicPrivate,
}

/// The sharded adapter's options, with the reference's defaults.
#[derive(Debug, Clone)]
pub struct ShardedRedisAdapterConfig {
    /// The channel prefix (`channelPrefix`, default `socket.io`).
    pub channel_prefix: String,
    /// Which rooms get a channel (`subscriptionMode`, default dynamic).
    pub subscription_mode: SubscriptionMode,
    /// How long to wait for the other servers' answers (5 s, as the reference).
    pub requests_timeout: Duration,
}

impl Default for ShardedRedisAdapterConfig {
    fn default() -> Self {
        ShardedRedisAdapterConfig {
            channel_prefix: "socket.io".to_owned(),
            subscription_mode: SubscriptionMode::Dynamic,
            requests_timeout: Duration::from_secs(5),
        }
    }
}

pub(crate) struct ShardedNs {
    hub: Arc<Hub>,
    local: LocalNamespace,
    config: ShardedRedisAdapterConfig,
    /// 8 random bytes as hex, as the reference's `randomId()`.
    uid: String,
    /// `<prefix>#<nsp>#`: every message but responses and single-room broadcasts.
    channel: String,
    /// `<prefix>#<nsp>#<uid>#`: answers to this node.
    response_channel: String,
    pending: Arc<Pending>,
}

/// 8 random bytes as 16 hex characters.
pub(crate) fn random_id() -> String {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        return format!("{:016x}", crate::fallback_random());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl ShardedNs {
    pub(crate) fn start(
        hub: Arc<Hub>,
        local: LocalNamespace,
        config: ShardedRedisAdapterConfig,
    ) -> Arc<ShardedNs> {
        let prefix = &config.channel_prefix;
        let nsp = local.name().to_string();
        let uid = random_id();
        let ns = Arc::new(ShardedNs {
            channel: format!("{prefix}#{nsp}#"),
            response_channel: format!("{prefix}#{nsp}#{uid}#"),
            uid,
            pending: Arc::default(),
            hub: hub.clone(),
            local,
            config,
        });
        hub.register(
            Route::Channel,
            vec![ns.channel.clone(), ns.response_channel.clone()],
            ns.listener(),
        );
        ns
    }

    fn listener(self: &Arc<Self>) -> std::sync::Weak<dyn Listener> {
        let listener: Arc<dyn Listener> = self.clone();
        Arc::downgrade(&listener)
    }

    fn dynamic_channel(&self, room: &str) -> String {
        format!("{}{room}#", self.channel)
    }

    /// True if `room` (created or deleted here) has a channel of its own.
    fn own_channel(&self, private: bool) -> bool {
        match self.config.subscription_mode {
            SubscriptionMode::Static => false,
            SubscriptionMode::Dynamic => !private,
            SubscriptionMode::DynamicPrivate => true,
        }
    }

    /// Publishes `{type, data, uid, nsp}` on `channel`: msgpack if a type that may carry
    /// binary does, JSON otherwise (the reference's rule).
    fn publish_to(&self, channel: String, kind: u64, data: Mp) {
        let may_carry_binary = matches!(
            kind,
            kind::BROADCAST
                | kind::BROADCAST_ACK
                | kind::FETCH_SOCKETS_RESPONSE
                | kind::SERVER_SIDE_EMIT
                | kind::SERVER_SIDE_EMIT_RESPONSE
        );
        let binary = may_carry_binary && has_binary(&data);
        let envelope = map(vec![
            ("type", Mp::from(kind)),
            ("data", data),
            ("uid", Mp::from(self.uid.as_str())),
            ("nsp", Mp::from(self.local.name().as_ref())),
        ]);
        let bytes = if binary {
            codec::encode_msgpack(&envelope)
        } else {
            Bytes::from(codec::mp_to_json(&envelope).to_string().into_bytes())
        };
        self.hub.publish(channel, bytes);
    }

    fn publish(&self, kind: u64, data: Mp) {
        self.publish_to(self.channel.clone(), kind, data);
    }

    fn respond(&self, requester: &str, kind: u64, data: Mp) {
        self.publish_to(format!("{}{requester}#", self.channel), kind, data);
    }

    /// `PUBSUB SHARDNUMSUB <channel>`: the servers of the cluster, this one included.
    async fn server_count(&self) -> Result<usize, AdapterError> {
        self.hub
            .subscriber_count("SHARDNUMSUB", &self.channel, self.config.requests_timeout)
            .await
    }

    fn on_response(&self, msg: &Mp) {
        let Some(data) = get(msg, "data") else {
            return;
        };
        let Some(id) = get_str(data, "requestId") else {
            return;
        };
        let answer = match get(msg, "type").and_then(Mp::as_u64) {
            Some(kind::BROADCAST_CLIENT_COUNT) => Answer::ClientCount(
                get(data, "clientCount")
                    .and_then(Mp::as_u64)
                    .and_then(|n| usize::try_from(n).ok())
                    .unwrap_or(0),
            ),
            Some(kind::BROADCAST_ACK) => {
                Answer::Ack(get(data, "packet").cloned().unwrap_or(Mp::Nil))
            }
            Some(kind::FETCH_SOCKETS_RESPONSE) => {
                Answer::Sockets(get(data, "sockets").cloned().unwrap_or(Mp::Nil))
            }
            Some(kind::SERVER_SIDE_EMIT_RESPONSE) => {
                Answer::Value(get(data, "packet").cloned().unwrap_or(Mp::Nil))
            }
            _ => return,
        };
        self.pending.deliver(id, answer);
    }

    fn on_cluster_message(self: &Arc<Self>, msg: &Mp) {
        let Some(uid) = get_str(msg, "uid") else {
            return;
        };
        if uid == self.uid || get_str(msg, "nsp") != Some(self.local.name().as_ref()) {
            return;
        }
        let Some(kind) = get(msg, "type").and_then(Mp::as_u64) else {
            return;
        };
        let empty = Mp::Map(Vec::new());
        let data = get(msg, "data").unwrap_or(&empty);
        let opts = codec::opts_from_mp(get(data, "opts"));
        match kind {
            kind::BROADCAST => self.on_broadcast(uid, data, opts),
            kind::SOCKETS_JOIN => self
                .local
                .sockets_join(&opts, &codec::room_list(get(data, "rooms"))),
            kind::SOCKETS_LEAVE => self
                .local
                .sockets_leave(&opts, &codec::room_list(get(data, "rooms"))),
            kind::DISCONNECT_SOCKETS => self.local.disconnect_sockets(
                &opts,
                get(data, "close").and_then(Mp::as_bool).unwrap_or(false),
            ),
            kind::FETCH_SOCKETS => {
                let Some(id) = get_str(data, "requestId") else {
                    return;
                };
                let sockets = self.local.fetch_sockets(&opts);
                let sockets = serde_json::to_value(&sockets).unwrap_or(Json::Null);
                self.respond(
                    uid,
                    kind::FETCH_SOCKETS_RESPONSE,
                    map(vec![
                        ("requestId", Mp::from(id)),
                        ("sockets", codec::json_to_mp(&sockets, &[])),
                    ]),
                );
            }
            kind::SERVER_SIDE_EMIT => self.on_server_side_emit(uid, data),
            kind::FETCH_SOCKETS_RESPONSE
            | kind::SERVER_SIDE_EMIT_RESPONSE
            | kind::BROADCAST_CLIENT_COUNT
            | kind::BROADCAST_ACK => self.on_response(msg),
            _ => {}
        }
    }

    fn on_broadcast(self: &Arc<Self>, requester: &str, data: &Mp, opts: BroadcastOptions) {
        let Some(packet_data) = get(data, "packet").and_then(|p| get(p, "data")) else {
            return;
        };
        let packet = match codec::event_from_mp(self.local.name().clone(), packet_data) {
            Ok(packet) => packet,
            Err(e) => return debug!(error = %e, "redis adapter: bad broadcast dropped"),
        };
        let Some(id) = get_str(data, "requestId") else {
            return self.local.broadcast(packet, &opts);
        };
        let timeout = opts.flags.timeout.unwrap_or(self.config.requests_timeout);
        let (count, mut acks) = self.local.broadcast_with_ack(packet, &opts, timeout);
        self.respond(
            requester,
            kind::BROADCAST_CLIENT_COUNT,
            map(vec![
                ("requestId", Mp::from(id)),
                ("clientCount", Mp::from(count as u64)),
            ]),
        );
        let this = self.clone();
        let requester = requester.to_owned();
        let id = id.to_owned();
        tokio::spawn(async move {
            while let Some(ack) = acks.next().await {
                let Ok(ack) = ack else { continue };
                this.respond(
                    &requester,
                    kind::BROADCAST_ACK,
                    map(vec![
                        ("requestId", Mp::from(id.as_str())),
                        ("packet", codec::first_ack_arg(&ack)),
                    ]),
                );
            }
        });
    }

    fn on_server_side_emit(self: &Arc<Self>, requester: &str, data: &Mp) {
        let args = match get(data, "packet").map(codec::mp_to_json) {
            Some(Json::Array(args)) => args,
            _ => return,
        };
        let Some(id) = get_str(data, "requestId") else {
            return self.local.server_side_event(args, ServerAck::default());
        };
        let (tx, rx) = oneshot::channel();
        self.local.server_side_event(args, ServerAck::new(tx));
        let this = self.clone();
        let requester = requester.to_owned();
        let id = id.to_owned();
        let timeout = self.config.requests_timeout;
        tokio::spawn(async move {
            if let Ok(Ok(value)) = tokio::time::timeout(timeout, rx).await {
                this.respond(
                    &requester,
                    kind::SERVER_SIDE_EMIT_RESPONSE,
                    map(vec![
                        ("requestId", Mp::from(id.as_str())),
                        ("packet", codec::json_to_mp(&value, &[])),
                    ]),
                );
            }
        });
    }
}

impl Listener for ShardedNs {
    fn on_message(self: Arc<Self>, channel: &str, payload: &[u8]) {
        let msg = match codec::decode_message(payload) {
            Ok(msg) => msg,
            Err(e) => return debug!(error = %e, "redis adapter: malformed message dropped"),
        };
        if channel == self.response_channel {
            self.on_response(&msg);
        } else {
            self.on_cluster_message(&msg);
        }
    }
}

/// True if `value` holds binary anywhere.
fn has_binary(value: &Mp) -> bool {
    match value {
        Mp::Binary(_) | Mp::Ext(0, _) => true,
        Mp::Array(items) => items.iter().any(has_binary),
        Mp::Map(entries) => entries.iter().any(|(k, v)| has_binary(k) || has_binary(v)),
        _ => false,
    }
}

/// The sharded adapter of one namespace as the server sees it.
pub(crate) struct Handle(pub(crate) Arc<ShardedNs>);

impl Handle {
    fn packet(packet: &Packet) -> Result<Mp, AdapterError> {
        let data =
            codec::packet_data_to_mp(packet).map_err(|e| AdapterError::Transport(e.to_string()))?;
        Ok(map(vec![("type", Mp::from(2)), ("data", data)]))
    }
}

impl NamespaceAdapter for Handle {
    fn broadcast(&self, packet: &Packet, opts: &BroadcastOptions) {
        let ns = &self.0;
        let Ok(packet) = Handle::packet(packet) else {
            return;
        };
        let data = map(vec![
            ("packet", packet),
            ("opts", codec::opts_to_mp(opts, true)),
        ]);
        // One public room: its own channel, only the nodes that have the room listen.
        let channel = match (opts.rooms.len(), opts.rooms.iter().next()) {
            (1, Some(room)) => {
                let own = match ns.config.subscription_mode {
                    SubscriptionMode::Static => false,
                    SubscriptionMode::Dynamic => room.chars().count() != 20,
                    SubscriptionMode::DynamicPrivate => true,
                };
                if own {
                    ns.dynamic_channel(room)
                } else {
                    ns.channel.clone()
                }
            }
            _ => ns.channel.clone(),
        };
        ns.publish_to(channel, kind::BROADCAST, data);
    }

    fn broadcast_with_ack(
        &self,
        packet: &Packet,
        opts: &BroadcastOptions,
        timeout: Duration,
    ) -> BoxFuture<Result<Vec<Result<Packet, AckError>>, AdapterError>> {
        let ns = self.0.clone();
        let packet = Handle::packet(packet);
        let mut opts = opts.clone();
        opts.flags.timeout = Some(timeout);
        Box::pin(async move {
            let packet = packet?;
            let deadline = tokio::time::Instant::now() + timeout;
            let servers = ns.server_count().await?.saturating_sub(1);
            if servers == 0 {
                return Ok(Vec::new());
            }
            let id = random_id();
            let (mut answers, _guard) = ns.pending.expect(id.clone());
            ns.publish(
                kind::BROADCAST,
                map(vec![
                    ("packet", packet),
                    ("requestId", Mp::from(id.as_str())),
                    ("opts", codec::opts_to_mp(&opts, true)),
                ]),
            );
            Ok(requests::gather_acks(&mut answers, deadline, servers, ns.local.name()).await)
        })
    }

    fn server_count(&self) -> BoxFuture<Result<usize, AdapterError>> {
        let ns = self.0.clone();
        Box::pin(async move { ns.server_count().await })
    }

    fn fetch_sockets(
        &self,
        opts: &BroadcastOptions,
    ) -> BoxFuture<Result<Vec<SocketInfo>, AdapterError>> {
        let ns = self.0.clone();
        let timeout = opts.flags.timeout.unwrap_or(ns.config.requests_timeout);
        let opts = codec::opts_to_mp(opts, true);
        Box::pin(async move {
            let servers = ns.server_count().await?.saturating_sub(1);
            if servers == 0 {
                return Ok(Vec::new());
            }
            let id = random_id();
            let (mut answers, _guard) = ns.pending.expect(id.clone());
            ns.publish(
                kind::FETCH_SOCKETS,
                map(vec![("opts", opts), ("requestId", Mp::from(id.as_str()))]),
            );
            let deadline = tokio::time::Instant::now() + timeout;
            requests::gather_sockets(&mut answers, deadline, servers)
                .await
                .map_err(|got| {
                    AdapterError::Timeout(format!(
                        "timeout reached: only {got} responses received out of {servers}"
                    ))
                })
        })
    }

    fn sockets_join(&self, opts: &BroadcastOptions, rooms: &[Str]) {
        self.0.publish(
            kind::SOCKETS_JOIN,
            map(vec![
                ("opts", codec::opts_to_mp(opts, true)),
                ("rooms", rooms_mp(rooms)),
            ]),
        );
    }

    fn sockets_leave(&self, opts: &BroadcastOptions, rooms: &[Str]) {
        self.0.publish(
            kind::SOCKETS_LEAVE,
            map(vec![
                ("opts", codec::opts_to_mp(opts, true)),
                ("rooms", rooms_mp(rooms)),
            ]),
        );
    }

    fn disconnect_sockets(&self, opts: &BroadcastOptions, close: bool) {
        self.0.publish(
            kind::DISCONNECT_SOCKETS,
            map(vec![
                ("opts", codec::opts_to_mp(opts, true)),
                ("close", Mp::Boolean(close)),
            ]),
        );
    }

    fn server_side_emit(&self, data: Vec<Json>) {
        self.0.publish(
            kind::SERVER_SIDE_EMIT,
            map(vec![("packet", codec::json_to_mp(&Json::Array(data), &[]))]),
        );
    }

    fn server_side_emit_with_ack(
        &self,
        data: Vec<Json>,
    ) -> BoxFuture<Result<Vec<Json>, ServerSideEmitError>> {
        let ns = self.0.clone();
        Box::pin(async move {
            let servers = ns
                .server_count()
                .await
                .map_err(|error| ServerSideEmitError {
                    error,
                    responses: Vec::new(),
                })?
                .saturating_sub(1);
            if servers == 0 {
                return Ok(Vec::new());
            }
            let id = random_id();
            let (mut answers, _guard) = ns.pending.expect(id.clone());
            ns.publish(
                kind::SERVER_SIDE_EMIT,
                map(vec![
                    ("requestId", Mp::from(id.as_str())),
                    ("packet", codec::json_to_mp(&Json::Array(data), &[])),
                ]),
            );
            let deadline = tokio::time::Instant::now() + ns.config.requests_timeout;
            requests::gather_values(&mut answers, deadline, servers).await
        })
    }

    fn room_event(&self, event: &RoomEvent, private: bool) {
        let ns = &self.0;
        if let RoomEvent::CreateRoom { room } | RoomEvent::DeleteRoom { room } = event {
            if ns.own_channel(private) {
                // Whether the room exists is read again under the routes lock, so that events
                // handed out in another order than they happened still end right.
                let local = ns.local.clone();
                let room = room.clone();
                ns.hub.sync_channel(
                    ns.dynamic_channel(&room),
                    move || local.has_room(&room),
                    ns.listener(),
                );
            }
        }
    }
}

fn rooms_mp(rooms: &[Str]) -> Mp {
    Mp::Array(rooms.iter().map(|r| Mp::from(r.as_ref())).collect())
}
