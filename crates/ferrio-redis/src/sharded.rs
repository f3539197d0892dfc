//! The sharded adapter (`createShardedAdapter` of `@socket.io/redis-adapter`): the message set of
//! the reference's `ClusterAdapter` (`MessageType` 3–12 in `{type, data, uid, nsp}` envelopes)
//! over Redis 7 sharded pub/sub, with a channel per public room in the dynamic modes.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ferrio_proto::rooms::{BroadcastOptions, RoomEvent};
use ferrio_server::{AdapterError, LocalNamespace};
use rmpv::Value as Mp;
use tracing::debug;

pub(crate) use crate::cluster::Handle;
use crate::cluster::{self, kind, random_id, ClusterNode};
use crate::codec::{self, get, get_str};
use crate::hub::{Hub, Listener, Route};
use crate::requests::Pending;

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

    fn on_response(&self, msg: &Mp) {
        let (Some(data), Some(kind)) = (get(msg, "data"), get(msg, "type").and_then(Mp::as_u64))
        else {
            return;
        };
        cluster::on_response(&self.pending, kind, data);
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
        if kind == kind::BROADCAST {
            self.on_broadcast(uid, data, opts);
        } else {
            cluster::on_message(self, uid, kind, data, &opts);
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
        cluster::answer_broadcast(self, requester, id, packet, &opts);
    }
}

impl ClusterNode for ShardedNs {
    fn local(&self) -> &LocalNamespace {
        &self.local
    }

    fn requests_timeout(&self) -> Duration {
        self.config.requests_timeout
    }

    fn pending(&self) -> &Arc<Pending> {
        &self.pending
    }

    fn channel(&self) -> &str {
        &self.channel
    }

    /// Publishes `{type, data, uid, nsp}` on `channel`: msgpack if a type that may carry
    /// binary does, JSON otherwise (the reference's rule).
    fn publish_to(&self, channel: String, kind: u64, data: Mp) {
        let binary = cluster::may_carry_binary(kind) && cluster::has_binary(&data);
        let envelope = cluster::envelope(kind, data, &self.uid, self.local.name());
        let bytes = if binary {
            codec::encode_msgpack(&envelope)
        } else {
            Bytes::from(codec::mp_to_json(&envelope).to_string().into_bytes())
        };
        self.hub.publish(channel, bytes);
    }

    /// A broadcast to one public room goes on the room's own channel, where only the nodes
    /// that have the room listen.
    fn send_broadcast(&self, data: Mp, opts: &BroadcastOptions) {
        let channel = match (opts.rooms.len(), opts.rooms.iter().next()) {
            (1, Some(room)) => {
                let own = match self.config.subscription_mode {
                    SubscriptionMode::Static => false,
                    SubscriptionMode::Dynamic => room.chars().count() != 20,
                    SubscriptionMode::DynamicPrivate => true,
                };
                if own {
                    self.dynamic_channel(room)
                } else {
                    self.channel.clone()
                }
            }
            _ => self.channel.clone(),
        };
        self.publish_to(channel, kind::BROADCAST, data);
    }

    fn send_room_op(&self, kind: u64, data: Mp) {
        self.publish(kind, data);
    }

    fn room_event(self: &Arc<Self>, event: &RoomEvent, private: bool) {
        if let RoomEvent::CreateRoom { room } | RoomEvent::DeleteRoom { room } = event {
            if self.own_channel(private) {
                // Whether the room exists is read again under the routes lock, so that events
                // handed out in another order than they happened still end right.
                let local = self.local.clone();
                let room = room.clone();
                self.hub.sync_channel(
                    self.dynamic_channel(&room),
                    move || local.has_room(&room),
                    self.listener(),
                );
            }
        }
    }

    /// `PUBSUB SHARDNUMSUB <channel>`: the servers of the cluster, this one included.
    async fn server_count(&self) -> Result<usize, AdapterError> {
        self.hub
            .subscriber_count("SHARDNUMSUB", &self.channel, self.config.requests_timeout)
            .await
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
