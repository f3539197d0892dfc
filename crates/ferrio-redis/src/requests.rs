//! Requests of this node waiting for the other nodes' answers, whatever the protocol: the
//! pending table, and the rules for when a request is complete (the reference's counting).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ferrio_proto::socket::Packet;
use ferrio_proto::Str;
use ferrio_server::{AckError, AdapterError, ServerSideEmitError, SocketInfo};
use rmpv::Value as Mp;
use serde_json::Value as Json;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::codec;

/// Answers to one request of ours, bounded: a node cannot flood the requester. Large enough for
/// the acks of a broadcast to many remote clients arriving in one burst (the queue allocates as
/// it fills).
const ANSWER_QUEUE: usize = 1 << 16;

/// Most missing acks reported one by one as timeouts (a node's `clientCount` is not trusted to
/// size an allocation).
const MAX_MISSING_REPORTED: usize = 1 << 16;

/// One answer to a request, whichever protocol carried it.
#[derive(Debug)]
pub(crate) enum Answer {
    /// A node reports how many of its clients a broadcast with ack reached.
    ClientCount(usize),
    /// One client's ack to a broadcast (its first argument).
    Ack(Mp),
    /// A node's sockets, for `fetch_sockets`.
    Sockets(Mp),
    /// A node's answer to a server-side emit.
    Value(Mp),
}

/// The requests waiting for answers, by request id.
#[derive(Default)]
pub(crate) struct Pending {
    map: Mutex<HashMap<String, mpsc::Sender<Answer>>>,
}

impl Pending {
    /// Registers request `id`; answers come on the receiver until the guard is dropped.
    pub(crate) fn expect(self: &Arc<Self>, id: String) -> (mpsc::Receiver<Answer>, PendingGuard) {
        let (tx, rx) = mpsc::channel(ANSWER_QUEUE);
        if let Ok(mut map) = self.map.lock() {
            map.insert(id.clone(), tx);
        }
        (
            rx,
            PendingGuard {
                pending: self.clone(),
                id,
            },
        )
    }

    /// True if `id` is one of our requests.
    pub(crate) fn contains(&self, id: &str) -> bool {
        self.map.lock().is_ok_and(|m| m.contains_key(id))
    }

    /// Hands `answer` to request `id` (dropped if unknown or if the request has too many).
    pub(crate) fn deliver(&self, id: &str, answer: Answer) {
        let tx = self.map.lock().ok().and_then(|m| m.get(id).cloned());
        if let Some(tx) = tx {
            let _ = tx.try_send(answer);
        }
    }
}

/// Unregisters a request when dropped.
pub(crate) struct PendingGuard {
    pending: Arc<Pending>,
    id: String,
}

impl Drop for PendingGuard {
    fn drop(&mut self) {
        if let Ok(mut map) = self.pending.map.lock() {
            map.remove(&self.id);
        }
    }
}

/// The answers to a broadcast with ack sent to `servers` other nodes: done when every node
/// reported its client count and that many acks came, or at `deadline`, the missing acks then
/// counted as timeouts.
pub(crate) async fn gather_acks(
    answers: &mut mpsc::Receiver<Answer>,
    deadline: Instant,
    servers: usize,
    nsp: &Str,
) -> Vec<Result<Packet, AckError>> {
    let mut counted = 0;
    let mut expected = 0usize;
    let mut acks = Vec::new();
    while counted < servers || acks.len() < expected {
        match tokio::time::timeout_at(deadline, answers.recv()).await {
            Ok(Some(Answer::ClientCount(n))) => {
                counted += 1;
                expected = expected.saturating_add(n);
            }
            Ok(Some(Answer::Ack(arg))) => {
                acks.push(codec::ack_from_mp(nsp.clone(), &arg).map_err(|_| AckError::Timeout))
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    // A node that never said how many clients it asked owes an unknown number of acks: at
    // least one timeout stands for them (as the reference, the operation timed out).
    let unknown = usize::from(counted < servers);
    let missing = expected
        .saturating_sub(acks.len())
        .saturating_add(unknown)
        .min(MAX_MISSING_REPORTED);
    acks.extend((0..missing).map(|_| Err(AckError::Timeout)));
    acks
}

/// The sockets `servers` other nodes report; `Err(answers received)` at `deadline`.
pub(crate) async fn gather_sockets(
    answers: &mut mpsc::Receiver<Answer>,
    deadline: Instant,
    servers: usize,
) -> Result<Vec<SocketInfo>, usize> {
    let mut sockets = Vec::new();
    let mut answered = 0;
    while answered < servers {
        match tokio::time::timeout_at(deadline, answers.recv()).await {
            Ok(Some(Answer::Sockets(list))) => {
                answered += 1;
                if let Json::Array(list) = codec::mp_to_json(&list) {
                    sockets.extend(
                        list.into_iter()
                            .filter_map(|s| serde_json::from_value::<SocketInfo>(s).ok()),
                    );
                }
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return Err(answered),
        }
    }
    Ok(sockets)
}

/// One answer per other node to a server-side emit; at `deadline`, the reference's error with
/// what came.
pub(crate) async fn gather_values(
    answers: &mut mpsc::Receiver<Answer>,
    deadline: Instant,
    servers: usize,
) -> Result<Vec<Json>, ServerSideEmitError> {
    let mut values = Vec::new();
    while values.len() < servers {
        match tokio::time::timeout_at(deadline, answers.recv()).await {
            Ok(Some(Answer::Value(v))) => values.push(codec::mp_to_json(&v)),
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => {
                return Err(ServerSideEmitError {
                    error: AdapterError::Timeout(format!(
                        "timeout reached: only {} responses received out of {servers}",
                        values.len()
                    )),
                    responses: values,
                })
            }
        }
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_node_that_never_counts_its_clients_is_a_timeout() {
        let pending = Arc::new(Pending::default());
        let (mut answers, _guard) = pending.expect("r1".to_owned());
        // Two other nodes: one counts one client and its ack comes; the other is silent.
        pending.deliver("r1", Answer::ClientCount(1));
        pending.deliver("r1", Answer::Ack(Mp::from("ok")));
        let deadline = Instant::now() + std::time::Duration::from_millis(50);
        let acks = gather_acks(&mut answers, deadline, 2, &Str::from("/")).await;
        assert_eq!(acks.len(), 2, "{acks:?}");
        assert!(acks[0].is_ok());
        assert!(matches!(acks[1], Err(AckError::Timeout)));
    }

    #[tokio::test]
    async fn every_node_counted_and_answered_is_complete() {
        let pending = Arc::new(Pending::default());
        let (mut answers, _guard) = pending.expect("r2".to_owned());
        pending.deliver("r2", Answer::ClientCount(0));
        pending.deliver("r2", Answer::ClientCount(1));
        pending.deliver("r2", Answer::Ack(Mp::from("ok")));
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        let acks = gather_acks(&mut answers, deadline, 2, &Str::from("/")).await;
        assert_eq!(acks.len(), 1);
        assert!(acks[0].is_ok());
    }
}
