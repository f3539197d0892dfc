//! What the sharded and the streams adapters share: the message set of the reference's
//! `ClusterAdapter` (`MessageType` 3–12 in `{type, data, uid, nsp}` envelopes), the `data`
//! parts of those messages, the requests that wait for the other nodes' answers, and the
//! answers a node gives from its local namespace.
//!
//! How a message travels (pub/sub channels, stream entries) and how its envelope is encoded
//! stays with each adapter, behind [`ClusterNode`].

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ferrio_proto::rooms::{BroadcastOptions, RoomEvent};
use ferrio_proto::socket::Packet;
use ferrio_proto::Str;
use ferrio_server::{
    AckError, AdapterError, BoxFuture, ClusterRecovery, LocalNamespace, NamespaceAdapter,
    ServerAck, ServerSideEmitError, SocketInfo,
};
use futures_util::StreamExt;
use rmpv::Value as Mp;
use serde_json::Value as Json;
use tokio::sync::{mpsc, oneshot};
use tracing::debug;

use crate::codec::{self, get, get_str, map};
use crate::requests::{self, Answer, Pending, PendingGuard};

/// The `ClusterAdapter` message types.
pub(crate) mod kind {
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

/// The message `{type, data, uid, nsp}` (in that order, as the reference writes it).
pub(crate) fn envelope(kind: u64, data: Mp, uid: &str, nsp: &str) -> Mp {
    map(vec![
        ("type", Mp::from(kind)),
        ("data", data),
        ("uid", Mp::from(uid)),
        ("nsp", Mp::from(nsp)),
    ])
}

/// True for the message types whose `data` may carry binary (the reference's rule for
/// choosing msgpack over JSON).
pub(crate) fn may_carry_binary(kind: u64) -> bool {
    matches!(
        kind,
        kind::BROADCAST
            | kind::BROADCAST_ACK
            | kind::FETCH_SOCKETS_RESPONSE
            | kind::SERVER_SIDE_EMIT
            | kind::SERVER_SIDE_EMIT_RESPONSE
    )
}

/// True if `value` holds binary anywhere.
pub(crate) fn has_binary(value: &Mp) -> bool {
    match value {
        Mp::Binary(_) | Mp::Ext(0, _) => true,
        Mp::Array(items) => items.iter().any(has_binary),
        Mp::Map(entries) => entries.iter().any(|(k, v)| has_binary(k) || has_binary(v)),
        _ => false,
    }
}

/// 8 random bytes as 16 hex characters (the reference's `randomId()`).
pub(crate) fn random_id() -> String {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        return format!("{:016x}", crate::fallback_random());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One namespace of a `ClusterAdapter`-protocol adapter, as the shared code uses it.
pub(crate) trait ClusterNode: Send + Sync + 'static {
    /// The local namespace.
    fn local(&self) -> &LocalNamespace;
    /// How long to wait for the other nodes' answers.
    fn requests_timeout(&self) -> Duration;
    /// The requests of this node that wait for answers.
    fn pending(&self) -> &Arc<Pending>;
    /// `<prefix>#<nsp>#`: the namespace's channel, on which every node listens; node `uid`
    /// gets its answers on `<prefix>#<nsp>#<uid>#`.
    fn channel(&self) -> &str;
    /// Publishes `{type: kind, data, uid, nsp}` on `channel`.
    fn publish_to(&self, channel: String, kind: u64, data: Mp);
    /// The nodes of the cluster, this one included.
    fn server_count(&self) -> impl Future<Output = Result<usize, AdapterError>> + Send;

    /// Sends a broadcast without ack (its [`broadcast_data`]) to the nodes concerned.
    fn send_broadcast(&self, data: Mp, opts: &BroadcastOptions);

    /// Sends a room operation or a disconnection (`SOCKETS_JOIN`, `SOCKETS_LEAVE`,
    /// `DISCONNECT_SOCKETS`) to every node of the namespace.
    fn send_room_op(&self, kind: u64, data: Mp);

    /// Follows a room created or deleted here (the adapter's
    /// [`NamespaceAdapter::room_event`]); nothing by default.
    fn room_event(self: &Arc<Self>, event: &RoomEvent, private: bool) {
        let _ = (event, private);
    }

    /// The adapter's connection state recovery, if it has one.
    fn recovery(handle: &Handle<Self>) -> Option<&dyn ClusterRecovery>
    where
        Self: Sized,
    {
        let _ = handle;
        None
    }

    /// Sends a request to every node of the namespace.
    fn publish(&self, kind: u64, data: Mp) {
        self.publish_to(self.channel().to_owned(), kind, data);
    }

    /// Sends an answer to node `requester`.
    fn respond(&self, requester: &str, kind: u64, data: Mp) {
        self.publish_to(format!("{}{requester}#", self.channel()), kind, data);
    }
}

/// Sends request `kind` to the other nodes, its `data` made with the request id; their answers
/// come on the receiver until the guard is dropped.
fn request<N: ClusterNode>(
    node: &N,
    kind: u64,
    data: impl FnOnce(Mp) -> Mp,
) -> (mpsc::Receiver<Answer>, PendingGuard) {
    let id = random_id();
    let expected = node.pending().expect(id.clone());
    node.publish(kind, data(Mp::from(id)));
    expected
}

/// `{type: 2, data}`: a broadcast's packet as the reference writes it (no `nsp`).
pub(crate) fn packet_mp(packet: &Packet) -> Result<Mp, AdapterError> {
    let data =
        codec::packet_data_to_mp(packet).map_err(|e| AdapterError::Transport(e.to_string()))?;
    Ok(map(vec![("type", Mp::from(2)), ("data", data)]))
}

/// The `data` of a broadcast without ack: `{packet, opts}`.
pub(crate) fn broadcast_data(packet: Mp, opts: &BroadcastOptions) -> Mp {
    map(vec![
        ("packet", packet),
        ("opts", codec::opts_to_mp(opts, true)),
    ])
}

/// The `data` of `SOCKETS_JOIN` and `SOCKETS_LEAVE`: `{opts, rooms}`.
pub(crate) fn rooms_data(opts: &BroadcastOptions, rooms: &[Str]) -> Mp {
    map(vec![
        ("opts", codec::opts_to_mp(opts, true)),
        (
            "rooms",
            Mp::Array(rooms.iter().map(|r| Mp::from(r.as_ref())).collect()),
        ),
    ])
}

/// The `data` of `DISCONNECT_SOCKETS`: `{opts, close}`.
pub(crate) fn disconnect_data(opts: &BroadcastOptions, close: bool) -> Mp {
    map(vec![
        ("opts", codec::opts_to_mp(opts, true)),
        ("close", Mp::Boolean(close)),
    ])
}

/// The `data` of a server-side emit without ack: `{packet}`.
pub(crate) fn server_side_emit_data(data: Vec<Json>) -> Mp {
    map(vec![("packet", codec::json_to_mp(&Json::Array(data), &[]))])
}

/// Hands the answer in a response of type `kind` to the request it answers.
pub(crate) fn on_response(pending: &Pending, kind: u64, data: &Mp) {
    let Some(id) = get_str(data, "requestId") else {
        return;
    };
    let answer = match kind {
        kind::BROADCAST_CLIENT_COUNT => Answer::ClientCount(
            get(data, "clientCount")
                .and_then(Mp::as_u64)
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(0),
        ),
        kind::BROADCAST_ACK => Answer::Ack(get(data, "packet").cloned().unwrap_or(Mp::Nil)),
        kind::FETCH_SOCKETS_RESPONSE => {
            Answer::Sockets(get(data, "sockets").cloned().unwrap_or(Mp::Nil))
        }
        kind::SERVER_SIDE_EMIT_RESPONSE => {
            Answer::Value(get(data, "packet").cloned().unwrap_or(Mp::Nil))
        }
        _ => return,
    };
    pending.deliver(id, answer);
}

/// Handles a message of node `requester` of every type but `BROADCAST` (which each adapter
/// reads its own way): room operations and requests are done on the local namespace and
/// answered, responses go to [`on_response`]. False for an unknown type.
pub(crate) fn on_message<N: ClusterNode>(
    node: &Arc<N>,
    requester: &str,
    kind: u64,
    data: &Mp,
    opts: &BroadcastOptions,
) -> bool {
    let local = node.local();
    match kind {
        kind::SOCKETS_JOIN => local.sockets_join(opts, &codec::room_list(get(data, "rooms"))),
        kind::SOCKETS_LEAVE => local.sockets_leave(opts, &codec::room_list(get(data, "rooms"))),
        kind::DISCONNECT_SOCKETS => local.disconnect_sockets(
            opts,
            get(data, "close").and_then(Mp::as_bool).unwrap_or(false),
        ),
        kind::FETCH_SOCKETS => {
            let Some(id) = get_str(data, "requestId") else {
                return true;
            };
            let sockets = local.fetch_sockets(opts);
            let sockets = serde_json::to_value(&sockets).unwrap_or(Json::Null);
            node.respond(
                requester,
                kind::FETCH_SOCKETS_RESPONSE,
                map(vec![
                    ("requestId", Mp::from(id)),
                    ("sockets", codec::json_to_mp(&sockets, &[])),
                ]),
            );
        }
        kind::SERVER_SIDE_EMIT => on_server_side_emit(node, requester, data),
        kind::FETCH_SOCKETS_RESPONSE
        | kind::SERVER_SIDE_EMIT_RESPONSE
        | kind::BROADCAST_CLIENT_COUNT
        | kind::BROADCAST_ACK => on_response(node.pending(), kind, data),
        _ => return false,
    }
    true
}

/// A broadcast of node `requester` that waits for acks (request `id`): delivered to the local
/// sockets, their count answered at once, then each ack as it comes.
pub(crate) fn answer_broadcast<N: ClusterNode>(
    node: &Arc<N>,
    requester: &str,
    id: &str,
    packet: Packet,
    opts: &BroadcastOptions,
) {
    let timeout = opts.flags.timeout.unwrap_or(node.requests_timeout());
    let (count, mut acks) = node.local().broadcast_with_ack(packet, opts, timeout);
    node.respond(
        requester,
        kind::BROADCAST_CLIENT_COUNT,
        map(vec![
            ("requestId", Mp::from(id)),
            ("clientCount", Mp::from(count as u64)),
        ]),
    );
    let node = node.clone();
    let requester = requester.to_owned();
    let id = id.to_owned();
    tokio::spawn(async move {
        while let Some(ack) = acks.next().await {
            let Ok(ack) = ack else { continue };
            node.respond(
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

/// A server-side event of node `requester`: handed to the local namespace, its ack (if the
/// sender waits for one) answered.
fn on_server_side_emit<N: ClusterNode>(node: &Arc<N>, requester: &str, data: &Mp) {
    let args = match get(data, "packet").map(codec::mp_to_json) {
        Some(Json::Array(args)) => args,
        _ => return debug!("redis adapter: server-side emit without packet skipped"),
    };
    let Some(id) = get_str(data, "requestId") else {
        return node.local().server_side_event(args, ServerAck::default());
    };
    let (tx, rx) = oneshot::channel();
    node.local().server_side_event(args, ServerAck::new(tx));
    let node = node.clone();
    let requester = requester.to_owned();
    let id = id.to_owned();
    let timeout = node.requests_timeout();
    tokio::spawn(async move {
        if let Ok(Ok(value)) = tokio::time::timeout(timeout, rx).await {
            node.respond(
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

/// Broadcasts `packet` (a [`packet_mp`]) to the other nodes and gathers their acks.
pub(crate) async fn broadcast_with_ack<N: ClusterNode>(
    node: Arc<N>,
    packet: Result<Mp, AdapterError>,
    mut opts: BroadcastOptions,
    timeout: Duration,
) -> Result<Vec<Result<Packet, AckError>>, AdapterError> {
    opts.flags.timeout = Some(timeout);
    let packet = packet?;
    let deadline = tokio::time::Instant::now() + timeout;
    let servers = node.server_count().await?.saturating_sub(1);
    if servers == 0 {
        return Ok(Vec::new());
    }
    let (mut answers, _guard) = request(&*node, kind::BROADCAST, |id| {
        map(vec![
            ("packet", packet),
            ("requestId", id),
            ("opts", codec::opts_to_mp(&opts, true)),
        ])
    });
    Ok(requests::gather_acks(&mut answers, deadline, servers, node.local().name()).await)
}

/// The sockets of the other nodes that `opts` selects.
pub(crate) async fn fetch_sockets<N: ClusterNode>(
    node: Arc<N>,
    opts: BroadcastOptions,
) -> Result<Vec<SocketInfo>, AdapterError> {
    let timeout = opts.flags.timeout.unwrap_or(node.requests_timeout());
    let opts = codec::opts_to_mp(&opts, true);
    let servers = node.server_count().await?.saturating_sub(1);
    if servers == 0 {
        return Ok(Vec::new());
    }
    let (mut answers, _guard) = request(&*node, kind::FETCH_SOCKETS, |id| {
        map(vec![("opts", opts), ("requestId", id)])
    });
    let deadline = tokio::time::Instant::now() + timeout;
    requests::gather_sockets(&mut answers, deadline, servers)
        .await
        .map_err(|got| {
            AdapterError::Timeout(format!(
                "timeout reached: only {got} responses received out of {servers}"
            ))
        })
}

/// Sends a server-side event to the other nodes and gathers their acks.
pub(crate) async fn server_side_emit_with_ack<N: ClusterNode>(
    node: Arc<N>,
    data: Vec<Json>,
) -> Result<Vec<Json>, ServerSideEmitError> {
    let servers = node
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
    let (mut answers, _guard) = request(&*node, kind::SERVER_SIDE_EMIT, |id| {
        map(vec![
            ("requestId", id),
            ("packet", codec::json_to_mp(&Json::Array(data), &[])),
        ])
    });
    let deadline = tokio::time::Instant::now() + node.requests_timeout();
    requests::gather_values(&mut answers, deadline, servers).await
}

/// The adapter of one namespace as the server sees it.
pub(crate) struct Handle<N>(pub(crate) Arc<N>);

impl<N: ClusterNode> NamespaceAdapter for Handle<N> {
    fn broadcast(&self, packet: &Packet, opts: &BroadcastOptions) {
        let Ok(packet) = packet_mp(packet) else {
            return;
        };
        self.0.send_broadcast(broadcast_data(packet, opts), opts);
    }

    fn broadcast_with_ack(
        &self,
        packet: &Packet,
        opts: &BroadcastOptions,
        timeout: Duration,
    ) -> BoxFuture<Result<Vec<Result<Packet, AckError>>, AdapterError>> {
        Box::pin(broadcast_with_ack(
            self.0.clone(),
            packet_mp(packet),
            opts.clone(),
            timeout,
        ))
    }

    fn server_count(&self) -> BoxFuture<Result<usize, AdapterError>> {
        let node = self.0.clone();
        Box::pin(async move { node.server_count().await })
    }

    fn fetch_sockets(
        &self,
        opts: &BroadcastOptions,
    ) -> BoxFuture<Result<Vec<SocketInfo>, AdapterError>> {
        Box::pin(fetch_sockets(self.0.clone(), opts.clone()))
    }

    fn sockets_join(&self, opts: &BroadcastOptions, rooms: &[Str]) {
        self.0
            .send_room_op(kind::SOCKETS_JOIN, rooms_data(opts, rooms));
    }

    fn sockets_leave(&self, opts: &BroadcastOptions, rooms: &[Str]) {
        self.0
            .send_room_op(kind::SOCKETS_LEAVE, rooms_data(opts, rooms));
    }

    fn disconnect_sockets(&self, opts: &BroadcastOptions, close: bool) {
        self.0
            .send_room_op(kind::DISCONNECT_SOCKETS, disconnect_data(opts, close));
    }

    fn server_side_emit(&self, data: Vec<Json>) {
        self.0
            .publish(kind::SERVER_SIDE_EMIT, server_side_emit_data(data));
    }

    fn server_side_emit_with_ack(
        &self,
        data: Vec<Json>,
    ) -> BoxFuture<Result<Vec<Json>, ServerSideEmitError>> {
        Box::pin(server_side_emit_with_ack(self.0.clone(), data))
    }

    fn room_event(&self, event: &RoomEvent, private: bool) {
        self.0.room_event(event, private);
    }

    fn recovery(&self) -> Option<&dyn ClusterRecovery> {
        N::recovery(self)
    }
}
