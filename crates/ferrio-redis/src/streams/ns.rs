//! One namespace of the streams adapter: the `ClusterAdapter` messages it writes (to the stream
//! or over pub/sub) and reads, and its share of connection state recovery.

use std::sync::Arc;
use std::time::Duration;

use ferrio_proto::rooms::BroadcastOptions;
use ferrio_proto::socket::{recovery, Packet};
use ferrio_proto::Str;
use ferrio_server::{
    AdapterError, BoxFuture, ClusterRecovery, ClusterRestored, ClusterSession, LocalNamespace,
};
use rmpv::Value as Mp;
use tracing::{debug, warn};

use super::wire::{self, Message};
use super::{Shared, Write};
pub(crate) use crate::cluster::Handle;
use crate::cluster::{self, kind, random_id, ClusterNode};
use crate::codec::{self, get, get_str};
use crate::hub::{Listener, Route};
use crate::requests::Pending;

/// Most `XRANGE` calls one restore makes (the reference's bound).
const RESTORE_MAX_CALLS: usize = 100;

pub(crate) struct StreamsNs {
    shared: Arc<Shared>,
    local: LocalNamespace,
    /// 8 random bytes as hex, as the reference's `randomId()`.
    uid: String,
    /// The stream this namespace writes to and reads from.
    stream: String,
    /// `<prefix>#<nsp>#`: the requests that wait for answers.
    channel: String,
    /// `<prefix>#<nsp>#<uid>#`: answers to this node.
    response_channel: String,
    pending: Arc<Pending>,
}

impl StreamsNs {
    pub(crate) fn start(shared: Arc<Shared>, local: LocalNamespace) -> Arc<StreamsNs> {
        let config = &shared.config;
        let nsp = local.name().to_string();
        let uid = random_id();
        let prefix = &config.channel_prefix;
        let ns = Arc::new(StreamsNs {
            stream: wire::stream_name(&config.stream_name, config.stream_count, &nsp),
            channel: format!("{prefix}#{nsp}#"),
            response_channel: format!("{prefix}#{nsp}#{uid}#"),
            uid,
            pending: Arc::default(),
            shared: shared.clone(),
            local,
        });
        let listener: Arc<dyn Listener> = ns.clone();
        shared.hub.register(
            Route::Channel,
            vec![ns.channel.clone(), ns.response_channel.clone()],
            Arc::downgrade(&listener),
        );
        shared.attach(&ns.stream, &nsp, Arc::downgrade(&ns));
        ns
    }

    fn nsp(&self) -> &str {
        self.local.name().as_ref()
    }

    /// Appends a message to the stream.
    fn append(&self, kind: u64, data: &Mp) {
        self.append_then(kind, data, None);
    }

    fn append_then(
        &self,
        kind: u64,
        data: &Mp,
        then: Option<Box<dyn FnOnce(Option<String>) + Send>>,
    ) {
        let fields = wire::encode_entry(
            &self.uid,
            self.nsp(),
            kind,
            data,
            self.shared.config.only_plaintext,
        );
        self.shared.write(Write::Append {
            stream: self.stream.clone(),
            fields,
            then,
        });
    }

    /// A message from another node, read from the stream (`offset` = its entry id) or
    /// received over pub/sub.
    pub(crate) fn on_message(self: &Arc<Self>, msg: Message, offset: Option<&str>) {
        if msg.uid == self.uid || msg.nsp != self.nsp() {
            return;
        }
        let empty = Mp::Map(Vec::new());
        let data = msg.data.as_ref().unwrap_or(&empty);
        let opts = codec::opts_from_mp(get(data, "opts"));
        if msg.kind == kind::BROADCAST {
            return self.on_broadcast(&msg.uid, data, opts, offset);
        }
        if !cluster::on_message(self, &msg.uid, msg.kind, data, &opts) {
            debug!(
                kind = msg.kind,
                "redis streams adapter: unknown message type"
            );
        }
    }

    fn on_broadcast(
        self: &Arc<Self>,
        requester: &str,
        data: &Mp,
        opts: BroadcastOptions,
        offset: Option<&str>,
    ) {
        let Some(packet_data) = get(data, "packet").and_then(|p| get(p, "data")) else {
            return debug!("redis streams adapter: broadcast without packet skipped");
        };
        let packet = match codec::event_from_mp(self.local.name().clone(), packet_data) {
            Ok(packet) => packet,
            Err(e) => return debug!(error = %e, "redis streams adapter: bad broadcast skipped"),
        };
        let Some(id) = get_str(data, "requestId") else {
            let packet = match offset {
                Some(offset)
                    if self.local.recovery_enabled() && recovery::is_kept(&packet, &opts) =>
                {
                    recovery::with_offset(&packet, offset).unwrap_or(packet)
                }
                _ => packet,
            };
            return self.local.broadcast(packet, &opts);
        };
        cluster::answer_broadcast(self, requester, id, packet, &opts);
    }

    fn session_key(&self, pid: &str) -> String {
        format!("{}{pid}", self.shared.config.session_key_prefix)
    }

    /// The event a restored client missed in entry `id`, if it concerns a socket in `rooms`.
    fn missed_packet(&self, msg: &Message, id: &str, rooms: &[Str]) -> Option<Packet> {
        let data = msg.data.as_ref()?;
        let opts = codec::opts_from_mp(get(data, "opts"));
        let rooms_of =
            |set: &std::collections::BTreeSet<Str>| set.iter().cloned().collect::<Vec<_>>();
        if !recovery::concerns(rooms, &rooms_of(&opts.rooms), &rooms_of(&opts.except)) {
            return None;
        }
        let packet_data = get(data, "packet").and_then(|p| get(p, "data"))?;
        let packet = match codec::event_from_mp(self.local.name().clone(), packet_data) {
            Ok(packet) => packet,
            Err(e) => {
                debug!(error = %e, id, "redis streams adapter: bad entry skipped in a restore");
                return None;
            }
        };
        if !recovery::is_kept(&packet, &opts) {
            return None;
        }
        recovery::with_offset(&packet, id)
    }

    /// The reference's `restoreSession`: GET+DEL of the session in one transaction, the offset
    /// entry must exist, then the entries after it that concern the session.
    async fn restore(
        &self,
        pid: &str,
        offset: &str,
    ) -> Result<Option<ClusterRestored>, AdapterError> {
        if !wire::is_offset(offset) {
            debug!(
                offset,
                "redis streams adapter: malformed offset, no recovery"
            );
            return Ok(None);
        }
        let transport = |e: redis::RedisError| AdapterError::Transport(e.to_string());
        let checkout = self.shared.commands.get().await.map_err(transport)?;
        let mut conn = checkout.conn.clone();
        let key = self.session_key(pid);
        let taken: redis::RedisResult<(Option<Vec<u8>>,)> = redis::pipe()
            .atomic()
            .cmd("GET")
            .arg(&key)
            .cmd("DEL")
            .arg(&key)
            .ignore()
            .query_async(&mut conn)
            .await;
        let stored = taken
            .inspect_err(|e| checkout.failed(e))
            .map_err(transport)?
            .0;
        let found: redis::RedisResult<redis::Value> = redis::cmd("XRANGE")
            .arg(&self.stream)
            .arg(offset)
            .arg(offset)
            .query_async(&mut conn)
            .await;
        let found = found
            .inspect_err(|e| checkout.failed(e))
            .map_err(transport)?;
        let Some(stored) = stored else {
            debug!(pid, "redis streams adapter: no session to restore");
            return Ok(None);
        };
        if wire::parse_entries(&found).is_empty() {
            debug!(
                offset,
                "redis streams adapter: offset not in the stream, no recovery"
            );
            return Ok(None);
        }
        let session = match wire::decode_session(&stored) {
            Ok(session) => session,
            Err(e) => {
                warn!(error = %e, pid, "redis streams adapter: stored session does not decode");
                return Ok(None);
            }
        };
        let count = self.shared.config.read_count.max(1);
        let mut missed = Vec::new();
        let mut from = offset.to_owned();
        for _ in 0..RESTORE_MAX_CALLS {
            let reply: redis::RedisResult<redis::Value> = redis::cmd("XRANGE")
                .arg(&self.stream)
                .arg(format!("({from}"))
                .arg("+")
                .arg("COUNT")
                .arg(count)
                .query_async(&mut conn)
                .await;
            let reply = reply
                .inspect_err(|e| checkout.failed(e))
                .map_err(transport)?;
            let entries = wire::parse_entries(&reply);
            let Some((last, _)) = entries.last() else {
                break;
            };
            let full = entries.len() as u64 >= count;
            from = last.clone();
            for (id, fields) in &entries {
                if wire::entry_nsp(fields) != Some(self.nsp().as_bytes())
                    || wire::entry_type(fields) != Some(b"3".as_slice())
                {
                    continue;
                }
                match wire::decode_entry(fields) {
                    Ok(msg) => missed.extend(self.missed_packet(&msg, id, &session.rooms)),
                    Err(e) => {
                        debug!(error = %e, id, "redis streams adapter: entry skipped in a restore")
                    }
                }
            }
            if !full {
                break;
            }
        }
        Ok(Some(ClusterRestored {
            session: ClusterSession {
                sid: session.sid,
                pid: session.pid,
                rooms: session.rooms,
                data: session.data,
            },
            missed,
        }))
    }
}

impl ClusterNode for StreamsNs {
    fn local(&self) -> &LocalNamespace {
        &self.local
    }

    fn requests_timeout(&self) -> Duration {
        self.shared.config.requests_timeout
    }

    fn pending(&self) -> &Arc<Pending> {
        &self.pending
    }

    fn channel(&self) -> &str {
        &self.channel
    }

    fn publish_to(&self, channel: String, kind: u64, data: Mp) {
        let payload = wire::encode_published(&self.uid, self.nsp(), kind, data);
        self.shared.write(Write::Publish { channel, payload });
    }

    /// Broadcasts are appended to the stream.
    fn send_broadcast(&self, data: Mp, _opts: &BroadcastOptions) {
        self.append(kind::BROADCAST, &data);
    }

    /// Room operations are appended to the stream.
    fn send_room_op(&self, kind: u64, data: Mp) {
        self.append(kind, &data);
    }

    fn recovery(handle: &Handle<Self>) -> Option<&dyn ClusterRecovery> {
        Some(handle)
    }

    /// `PUBSUB NUMSUB <prefix>#<nsp>#`: the servers of the cluster, this one included.
    async fn server_count(&self) -> Result<usize, AdapterError> {
        self.shared
            .hub
            .subscriber_count("NUMSUB", &self.channel, self.shared.config.requests_timeout)
            .await
    }
}

impl Listener for StreamsNs {
    fn on_message(self: Arc<Self>, channel: &str, payload: &[u8]) {
        let msg = match wire::decode_published(payload) {
            Ok(msg) => msg,
            Err(e) => return debug!(error = %e, channel, "redis streams adapter: message skipped"),
        };
        if channel == self.response_channel {
            if let Some(data) = &msg.data {
                cluster::on_response(&self.pending, msg.kind, data);
            }
        } else {
            StreamsNs::on_message(&self, msg, None);
        }
    }
}

impl ClusterRecovery for Handle<StreamsNs> {
    fn broadcast(&self, packet: Packet, opts: BroadcastOptions) {
        let ns = &self.0;
        let local = ns.local.clone();
        if opts.flags.local {
            // Not for the other nodes: delivered in order with the others, without offset.
            return ns.shared.write(Write::Deliver(Box::new(move || {
                local.broadcast(packet, &opts);
            })));
        }
        let data = match cluster::packet_mp(&packet) {
            Ok(p) => cluster::broadcast_data(p, &opts),
            Err(_) => {
                return ns.shared.write(Write::Deliver(Box::new(move || {
                    local.broadcast(packet, &opts);
                })))
            }
        };
        ns.append_then(
            kind::BROADCAST,
            &data,
            Some(Box::new(move |id: Option<String>| {
                let packet = match id {
                    Some(id) => recovery::with_offset(&packet, &id).unwrap_or(packet),
                    None => {
                        warn!("redis streams adapter: broadcast not written to the stream, delivered locally without offset");
                        packet
                    }
                };
                local.broadcast(packet, &opts);
            })),
        );
    }

    fn persist(&self, session: ClusterSession, ttl: Duration) {
        let ns = &self.0;
        let value = wire::encode_session(&wire::Session {
            sid: session.sid,
            pid: session.pid.clone(),
            rooms: session.rooms,
            data: session.data,
        });
        ns.shared.write(Write::Set {
            key: ns.session_key(&session.pid),
            value,
            ttl_ms: u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX),
        });
    }

    fn discard(&self, pid: &str) {
        self.0.shared.write(Write::Del {
            key: self.0.session_key(pid),
        });
    }

    fn restore(
        &self,
        pid: &str,
        offset: &str,
    ) -> BoxFuture<Result<Option<ClusterRestored>, AdapterError>> {
        let ns = self.0.clone();
        let pid = pid.to_owned();
        let offset = offset.to_owned();
        Box::pin(async move { ns.restore(&pid, &offset).await })
    }
}
