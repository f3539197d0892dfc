//! The adapter of one namespace: what it publishes for the server's cluster operations, how it
//! waits for the answers, and how it applies what other nodes publish (the classic protocol of
//! `@socket.io/redis-adapter`, `RequestType` 0–9).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ferrio_proto::rooms::BroadcastOptions;
use ferrio_proto::socket::Packet;
use ferrio_proto::Str;
use ferrio_server::{
    AckError, AdapterError, BoxFuture, LocalNamespace, NamespaceAdapter, ServerAck,
    ServerSideEmitError, SocketInfo,
};
use futures_util::StreamExt;
use rmpv::Value as Mp;
use serde_json::{json, Value as Json};
use tokio::sync::oneshot;
use tracing::debug;

use crate::codec::{self, get, get_str, map};
use crate::hub::{Hub, Listener, Route};
use crate::requests::{self, Answer, Pending};
use crate::RedisAdapterConfig;

/// The classic adapter's request types.
mod kind {
    pub const SOCKETS: u64 = 0;
    pub const ALL_ROOMS: u64 = 1;
    pub const REMOTE_JOIN: u64 = 2;
    pub const REMOTE_LEAVE: u64 = 3;
    pub const REMOTE_DISCONNECT: u64 = 4;
    pub const REMOTE_FETCH: u64 = 5;
    pub const SERVER_SIDE_EMIT: u64 = 6;
    pub const BROADCAST: u64 = 7;
    pub const BROADCAST_CLIENT_COUNT: u64 = 8;
    pub const BROADCAST_ACK: u64 = 9;
}

pub(crate) struct NsAdapter {
    hub: Arc<Hub>,
    local: LocalNamespace,
    config: RedisAdapterConfig,
    uid: String,
    /// `<key>#<nsp>#`: broadcasts (plus `<room>#` for a single room).
    channel: String,
    /// `<key>-request#<nsp>#`.
    request_channel: String,
    /// `<key>-response#<nsp>#`.
    response_channel: String,
    /// Our requests waiting for answers.
    pending: Arc<Pending>,
}

impl NsAdapter {
    pub(crate) fn start(
        hub: Arc<Hub>,
        local: LocalNamespace,
        config: RedisAdapterConfig,
    ) -> Arc<NsAdapter> {
        let nsp = local.name().to_string();
        let key = &config.key;
        let ns = Arc::new(NsAdapter {
            uid: crate::uid(),
            channel: format!("{key}#{nsp}#"),
            request_channel: format!("{key}-request#{nsp}#"),
            response_channel: format!("{key}-response#{nsp}#"),
            pending: Arc::default(),
            hub: hub.clone(),
            local,
            config,
        });
        let listener: Arc<dyn Listener> = ns.clone();
        let listener = Arc::downgrade(&listener);
        hub.register(
            Route::Pattern,
            vec![format!("{}*", ns.channel)],
            listener.clone(),
        );
        hub.register(
            Route::Channel,
            vec![
                ns.request_channel.clone(),
                ns.response_channel.clone(),
                ns.specific_response_channel(&ns.uid),
            ],
            listener,
        );
        ns
    }

    fn specific_response_channel(&self, uid: &str) -> String {
        format!("{}{uid}#", self.response_channel)
    }

    /// Where to answer a request from `uid`.
    fn response_channel_for(&self, uid: Option<&str>) -> String {
        match uid {
            Some(uid) if self.config.publish_on_specific_response_channel => {
                self.specific_response_channel(uid)
            }
            _ => self.response_channel.clone(),
        }
    }

    fn publish_json(&self, channel: String, value: &Json) {
        self.hub
            .publish(channel, Bytes::from(value.to_string().into_bytes()));
    }

    // ---- incoming -------------------------------------------------------------------------

    /// A message on `<key>#<nsp>#...`: a broadcast from another node.
    fn on_broadcast(&self, channel: &str, payload: &[u8]) {
        let Some(rest) = channel.strip_prefix(self.channel.as_str()) else {
            return;
        };
        let room = rest.strip_suffix('#').unwrap_or(rest);
        if !room.is_empty() && !self.local.has_room(room) {
            return;
        }
        let msg = match codec::decode_msgpack(payload) {
            Ok(msg) => msg,
            Err(e) => return debug!(error = %e, "redis adapter: bad broadcast dropped"),
        };
        let Some([uid, packet, opts]) = msg.as_array().map(Vec::as_slice) else {
            return debug!("redis adapter: broadcast is not [uid, packet, opts]");
        };
        if uid.as_str() == Some(self.uid.as_str()) {
            return;
        }
        let nsp = get_str(packet, "nsp").unwrap_or("/");
        if nsp != self.local.name().as_ref() {
            return;
        }
        let Some(data) = get(packet, "data") else {
            return;
        };
        match codec::event_from_mp(self.local.name().clone(), data) {
            Ok(event) => self
                .local
                .broadcast(event, &codec::opts_from_mp(Some(opts))),
            Err(e) => debug!(error = %e, "redis adapter: bad broadcast packet dropped"),
        }
    }

    /// A message on the request or response channels.
    fn on_request_or_response(self: &Arc<Self>, channel: &str, payload: &[u8]) {
        let msg = match codec::decode_message(payload) {
            Ok(msg) => msg,
            Err(e) => return debug!(error = %e, "redis adapter: malformed message dropped"),
        };
        if channel.starts_with(self.response_channel.as_str()) {
            self.on_response(msg);
        } else if channel == self.request_channel {
            self.on_request(msg);
        }
    }

    fn on_response(&self, msg: Mp) {
        let Some(id) = get_str(&msg, "requestId") else {
            return;
        };
        let answer = match get(&msg, "type").and_then(Mp::as_u64) {
            Some(kind::BROADCAST_CLIENT_COUNT) => Answer::ClientCount(
                get(&msg, "clientCount")
                    .and_then(Mp::as_u64)
                    .and_then(|n| usize::try_from(n).ok())
                    .unwrap_or(0),
            ),
            Some(kind::BROADCAST_ACK) => {
                Answer::Ack(get(&msg, "packet").cloned().unwrap_or(Mp::Nil))
            }
            Some(kind::SERVER_SIDE_EMIT) => {
                Answer::Value(get(&msg, "data").cloned().unwrap_or(Mp::Nil))
            }
            _ => match get(&msg, "sockets") {
                Some(sockets) => Answer::Sockets(sockets.clone()),
                None => return,
            },
        };
        self.pending.deliver(id, answer);
    }

    fn is_ours(&self, request_id: Option<&str>) -> bool {
        request_id.is_some_and(|id| self.pending.contains(id))
    }

    fn on_request(self: &Arc<Self>, req: Mp) {
        let Some(kind) = get(&req, "type").and_then(Mp::as_u64) else {
            return;
        };
        let uid = get_str(&req, "uid");
        let own = uid == Some(self.uid.as_str());
        let request_id = get_str(&req, "requestId");
        let answer_to = self.response_channel_for(uid);
        match kind {
            kind::SOCKETS if !own && !self.is_ours(request_id) => {
                let rooms = codec::room_list(get(&req, "rooms"));
                let ids: Vec<String> = self
                    .local
                    .socket_ids(&rooms)
                    .iter()
                    .map(ToString::to_string)
                    .collect();
                self.publish_json(answer_to, &json!({"requestId": request_id, "sockets": ids}));
            }
            kind::ALL_ROOMS if !own && !self.is_ours(request_id) => {
                let rooms: Vec<String> =
                    self.local.rooms().iter().map(ToString::to_string).collect();
                self.publish_json(answer_to, &json!({"requestId": request_id, "rooms": rooms}));
            }
            kind::REMOTE_JOIN | kind::REMOTE_LEAVE | kind::REMOTE_DISCONNECT if !own => {
                self.on_room_request(kind, &req, request_id, answer_to);
            }
            kind::REMOTE_FETCH if !own && !self.is_ours(request_id) => {
                let opts = codec::opts_from_mp(get(&req, "opts"));
                let sockets = self.local.fetch_sockets(&opts);
                self.publish_json(
                    answer_to,
                    &json!({"requestId": request_id, "sockets": sockets}),
                );
            }
            kind::SERVER_SIDE_EMIT if !own => {
                let data: Vec<Json> = match get(&req, "data").map(codec::mp_to_json) {
                    Some(Json::Array(data)) => data,
                    _ => return,
                };
                let Some(request_id) = request_id else {
                    return self.local.server_side_event(data, ServerAck::default());
                };
                let (tx, rx) = oneshot::channel();
                self.local.server_side_event(data, ServerAck::new(tx));
                // The reference answers server-side emits on the common response channel.
                let this = self.clone();
                let request_id = request_id.to_owned();
                let timeout = self.config.requests_timeout;
                tokio::spawn(async move {
                    if let Ok(Ok(value)) = tokio::time::timeout(timeout, rx).await {
                        this.publish_json(
                            this.response_channel.clone(),
                            &json!({"type": kind::SERVER_SIDE_EMIT, "requestId": request_id, "data": value}),
                        );
                    }
                });
            }
            kind::BROADCAST if !own && !self.is_ours(request_id) => {
                self.on_broadcast_with_ack(&req, request_id, answer_to);
            }
            _ => {}
        }
    }

    fn on_room_request(&self, kind: u64, req: &Mp, request_id: Option<&str>, answer_to: String) {
        let rooms = codec::room_list(get(req, "rooms"));
        if let Some(opts) = get(req, "opts") {
            let opts = codec::opts_from_mp(Some(opts));
            match kind {
                kind::REMOTE_JOIN => self.local.sockets_join(&opts, &rooms),
                kind::REMOTE_LEAVE => self.local.sockets_leave(&opts, &rooms),
                _ => self.local.disconnect_sockets(
                    &opts,
                    get(req, "close").and_then(Mp::as_bool).unwrap_or(false),
                ),
            }
            return;
        }
        // The legacy form names one socket (`sid`) and wants an answer.
        let Some(sid) = get_str(req, "sid") else {
            return;
        };
        if self.local.socket_ids(&[Str::from(sid)]).is_empty() {
            return;
        }
        let opts = BroadcastOptions::new().to(Str::from(sid));
        let room = get_str(req, "room").map(Str::from);
        match (kind, room) {
            (kind::REMOTE_JOIN, Some(room)) => self.local.sockets_join(&opts, &[room]),
            (kind::REMOTE_LEAVE, Some(room)) => self.local.sockets_leave(&opts, &[room]),
            (kind::REMOTE_DISCONNECT, _) => self.local.disconnect_sockets(
                &opts,
                get(req, "close").and_then(Mp::as_bool).unwrap_or(false),
            ),
            _ => return,
        }
        self.publish_json(answer_to, &json!({"requestId": request_id}));
    }

    fn on_broadcast_with_ack(
        self: &Arc<Self>,
        req: &Mp,
        request_id: Option<&str>,
        answer_to: String,
    ) {
        let Some(request_id) = request_id.map(str::to_owned) else {
            return;
        };
        let Some(data) = get(req, "packet").and_then(|p| get(p, "data")) else {
            return;
        };
        let packet = match codec::event_from_mp(self.local.name().clone(), data) {
            Ok(packet) => packet,
            Err(e) => return debug!(error = %e, "redis adapter: bad broadcast request dropped"),
        };
        let opts = codec::opts_from_mp(get(req, "opts"));
        let timeout = opts.flags.timeout.unwrap_or(self.config.requests_timeout);
        let (count, mut acks) = self.local.broadcast_with_ack(packet, &opts, timeout);
        self.publish_json(
            answer_to.clone(),
            &json!({"type": kind::BROADCAST_CLIENT_COUNT, "requestId": request_id, "clientCount": count}),
        );
        let this = self.clone();
        tokio::spawn(async move {
            while let Some(ack) = acks.next().await {
                let Ok(ack) = ack else { continue };
                let answer = map(vec![
                    ("type", Mp::from(kind::BROADCAST_ACK)),
                    ("requestId", Mp::from(request_id.as_str())),
                    ("packet", codec::first_ack_arg(&ack)),
                ]);
                this.hub
                    .publish(answer_to.clone(), codec::encode_msgpack(&answer));
            }
        });
    }

    // ---- outgoing requests ----------------------------------------------------------------

    /// `PUBSUB NUMSUB <request channel>`: the servers of the cluster, this one included.
    async fn num_sub(&self) -> Result<usize, AdapterError> {
        self.hub
            .subscriber_count(
                "NUMSUB",
                &self.request_channel,
                self.config.requests_timeout,
            )
            .await
    }
}

impl Listener for NsAdapter {
    fn on_message(self: Arc<Self>, channel: &str, payload: &[u8]) {
        if channel.starts_with(self.channel.as_str()) {
            self.on_broadcast(channel, payload);
        } else {
            self.on_request_or_response(channel, payload);
        }
    }
}

/// The adapter as the server sees it (one per namespace, shared).
pub(crate) struct Handle(pub(crate) Arc<NsAdapter>);

impl NamespaceAdapter for Handle {
    fn broadcast(&self, packet: &Packet, opts: &BroadcastOptions) {
        let ns = &self.0;
        let packet = match codec::broadcast_packet(packet) {
            Ok(p) => p,
            Err(e) => return debug!(error = %e, "redis adapter: packet not published"),
        };
        let msg = Mp::Array(vec![
            Mp::from(ns.uid.as_str()),
            packet,
            codec::opts_to_mp(opts, true),
        ]);
        let mut channel = ns.channel.clone();
        if opts.rooms.len() == 1 {
            if let Some(room) = opts.rooms.iter().next() {
                channel.push_str(room);
                channel.push('#');
            }
        }
        ns.hub.publish(channel, codec::encode_msgpack(&msg));
    }

    fn broadcast_with_ack(
        &self,
        packet: &Packet,
        opts: &BroadcastOptions,
        timeout: Duration,
    ) -> BoxFuture<Result<Vec<Result<Packet, AckError>>, AdapterError>> {
        let ns = self.0.clone();
        let packet = codec::broadcast_packet(packet);
        let mut opts = opts.clone();
        opts.flags.timeout = Some(timeout);
        Box::pin(async move {
            let packet = packet.map_err(|e| AdapterError::Transport(e.to_string()))?;
            let deadline = tokio::time::Instant::now() + timeout;
            let servers = ns.num_sub().await?.saturating_sub(1);
            if servers == 0 {
                return Ok(Vec::new());
            }
            let id = crate::uid();
            let (mut answers, _guard) = ns.pending.expect(id.clone());
            let request = map(vec![
                ("uid", Mp::from(ns.uid.as_str())),
                ("requestId", Mp::from(id.as_str())),
                ("type", Mp::from(kind::BROADCAST)),
                ("packet", packet),
                ("opts", codec::opts_to_mp(&opts, true)),
            ]);
            ns.hub
                .publish(ns.request_channel.clone(), codec::encode_msgpack(&request));
            Ok(requests::gather_acks(&mut answers, deadline, servers, ns.local.name()).await)
        })
    }

    fn server_count(&self) -> BoxFuture<Result<usize, AdapterError>> {
        let ns = self.0.clone();
        Box::pin(async move { ns.num_sub().await })
    }

    fn fetch_sockets(
        &self,
        opts: &BroadcastOptions,
    ) -> BoxFuture<Result<Vec<SocketInfo>, AdapterError>> {
        let ns = self.0.clone();
        let opts = codec::opts_to_mp(opts, false);
        Box::pin(async move {
            let servers = ns.num_sub().await?.saturating_sub(1);
            if servers == 0 {
                return Ok(Vec::new());
            }
            let id = crate::uid();
            let (mut answers, _guard) = ns.pending.expect(id.clone());
            let request = json!({
                "uid": ns.uid, "requestId": id, "type": kind::REMOTE_FETCH,
                "opts": codec::mp_to_json(&opts),
            });
            ns.publish_json(ns.request_channel.clone(), &request);
            let deadline = tokio::time::Instant::now() + ns.config.requests_timeout;
            requests::gather_sockets(&mut answers, deadline, servers)
                .await
                .map_err(|_| {
                    AdapterError::Timeout(
                        "timeout reached while waiting for fetchSockets response".into(),
                    )
                })
        })
    }

    fn sockets_join(&self, opts: &BroadcastOptions, rooms: &[Str]) {
        self.room_request(
            kind::REMOTE_JOIN,
            opts,
            json!({ "rooms": rooms_json(rooms) }),
        );
    }

    fn sockets_leave(&self, opts: &BroadcastOptions, rooms: &[Str]) {
        self.room_request(
            kind::REMOTE_LEAVE,
            opts,
            json!({ "rooms": rooms_json(rooms) }),
        );
    }

    fn disconnect_sockets(&self, opts: &BroadcastOptions, close: bool) {
        self.room_request(kind::REMOTE_DISCONNECT, opts, json!({ "close": close }));
    }

    fn server_side_emit(&self, data: Vec<Json>) {
        let ns = &self.0;
        ns.publish_json(
            ns.request_channel.clone(),
            &json!({"uid": ns.uid, "type": kind::SERVER_SIDE_EMIT, "data": data}),
        );
    }

    fn server_side_emit_with_ack(
        &self,
        data: Vec<Json>,
    ) -> BoxFuture<Result<Vec<Json>, ServerSideEmitError>> {
        let ns = self.0.clone();
        Box::pin(async move {
            let servers = ns
                .num_sub()
                .await
                .map_err(|error| ServerSideEmitError {
                    error,
                    responses: Vec::new(),
                })?
                .saturating_sub(1);
            if servers == 0 {
                return Ok(Vec::new());
            }
            let id = crate::uid();
            let (mut answers, _guard) = ns.pending.expect(id.clone());
            ns.publish_json(
                ns.request_channel.clone(),
                &json!({"uid": ns.uid, "requestId": id, "type": kind::SERVER_SIDE_EMIT, "data": data}),
            );
            let deadline = tokio::time::Instant::now() + ns.config.requests_timeout;
            requests::gather_values(&mut answers, deadline, servers).await
        })
    }
}

impl Handle {
    fn room_request(&self, kind: u64, opts: &BroadcastOptions, extra: Json) {
        let ns = &self.0;
        let mut request = json!({
            "uid": ns.uid, "type": kind, "opts": codec::mp_to_json(&codec::opts_to_mp(opts, false)),
        });
        if let (Some(request), Json::Object(extra)) = (request.as_object_mut(), extra) {
            request.extend(extra);
        }
        ns.publish_json(ns.request_channel.clone(), &request);
    }
}

fn rooms_json(rooms: &[Str]) -> Vec<String> {
    rooms.iter().map(ToString::to_string).collect()
}
