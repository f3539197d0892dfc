//! Acknowledgements: the handles the application gets ([`AckId`]), the wire ids of each socket,
//! the pending acks and their deadlines, answers, timeouts, and the failures a disconnection
//! brings.

use std::time::Duration;

use super::{AckError, ClientError, Event, Manager, SocketId, SocketState};
use crate::socket::packet::{AckId as WireId, Packet};
use crate::Instant;

/// Names an emit waiting for its acknowledgement. Unique per socket; unrelated to the ack id on
/// the wire (an emit retried by the delivery queue is sent with a new wire id each time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AckId(u64);

impl AckId {
    /// The handle as a number.
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

/// Who hears of an ack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AckTarget {
    /// The application's handle.
    User(AckId),
    /// The internal ack of a delivery-queue entry.
    Queue(u64),
}

/// An ack waited for, under its wire id.
#[derive(Debug, Clone)]
pub(super) struct PendingAck {
    deadline: Option<Instant>,
    target: AckTarget,
}

impl SocketState {
    /// The next handle for the application.
    pub(super) fn new_handle(&mut self) -> AckId {
        let h = AckId(self.next_handle);
        self.next_handle += 1;
        h
    }
}

impl Manager {
    /// Refuses a new emit asking for an ack when the socket already waits for
    /// [`ManagerConfig::max_pending_acks`](super::ManagerConfig::max_pending_acks) of them.
    pub(super) fn check_ack_room(&self, socket: SocketId) -> Result<(), ClientError> {
        if self.sockets[socket.index()].acks.len() >= self.config.max_pending_acks {
            return Err(ClientError::TooManyPendingAcks);
        }
        Ok(())
    }

    /// Records the pending ack of wire id `id`, with a deadline if it has a timeout.
    pub(super) fn register_ack(
        &mut self,
        now: Instant,
        socket: SocketId,
        id: u64,
        target: AckTarget,
        timeout: Option<Duration>,
    ) {
        let deadline = timeout.map(|t| now + t);
        if let Some(d) = deadline {
            insert_sorted(&mut self.ack_deadlines, (d, socket, id));
        }
        let acks = &mut self.sockets[socket.index()].acks;
        let at = acks.partition_point(|(k, _)| *k < id);
        acks.insert(at, (id, PendingAck { deadline, target }));
    }

    /// `_clearAcks`: acks whose packet was sent will not come; those still buffered wait.
    pub(super) fn clear_acks(&mut self, now: Instant, socket: SocketId) {
        let s = &self.sockets[socket.index()];
        let mut ids = Vec::new();
        for &(id, _) in &s.acks {
            if !s.send_buffer.iter().any(|b| b.id == Some(id)) {
                ids.push(id);
            }
        }
        for id in ids {
            let Some(pending) = remove_ack(&mut self.sockets[socket.index()].acks, id) else {
                continue;
            };
            if let Some(d) = pending.deadline {
                remove_sorted(&mut self.ack_deadlines, &(d, socket, id));
            }
            match pending.target {
                AckTarget::User(ack) => self.event(Event::AckError {
                    socket,
                    ack,
                    error: AckError::Disconnected,
                }),
                // The queue's internal ack only hears of errors when it has a timeout (it is an
                // error-first callback only then); without one it is dropped and the entry is
                // sent again after the next CONNECT accept.
                AckTarget::Queue(seq) if pending.deadline.is_some() => {
                    self.on_queue_result(now, socket, seq, Err(AckError::Disconnected))
                }
                AckTarget::Queue(_) => {}
            }
        }
    }

    /// An ACK or BINARY_ACK from the server.
    pub(super) fn on_ack(&mut self, now: Instant, socket: SocketId, packet: Packet) {
        // An id beyond `u64` is not one this client issued: ignored as unknown.
        let Some(id) = packet.id().and_then(WireId::as_u64) else {
            return;
        };
        let Some(pending) = remove_ack(&mut self.sockets[socket.index()].acks, id) else {
            return; // unknown or already answered: ignored, as in the reference
        };
        if let Some(d) = pending.deadline {
            remove_sorted(&mut self.ack_deadlines, &(d, socket, id));
        }
        match pending.target {
            AckTarget::User(ack) => self.event(Event::Ack {
                socket,
                ack,
                packet,
            }),
            AckTarget::Queue(seq) => self.on_queue_result(now, socket, seq, Ok(packet)),
        }
    }

    /// The deadline of pending ack `id` passed.
    pub(super) fn on_ack_timeout(&mut self, now: Instant, socket: SocketId, id: u64) {
        let s = &mut self.sockets[socket.index()];
        let Some(pending) = remove_ack(&mut s.acks, id) else {
            return;
        };
        s.send_buffer.retain(|b| b.id != Some(id));
        match pending.target {
            AckTarget::User(ack) => self.event(Event::AckError {
                socket,
                ack,
                error: AckError::Timeout,
            }),
            AckTarget::Queue(seq) => self.on_queue_result(now, socket, seq, Err(AckError::Timeout)),
        }
    }
}

/// Removes the pending ack `id` from a socket's id-ordered acks.
fn remove_ack(acks: &mut Vec<(u64, PendingAck)>, id: u64) -> Option<PendingAck> {
    let i = acks.binary_search_by_key(&id, |(k, _)| *k).ok()?;
    Some(acks.remove(i).1)
}

/// Inserts into a sorted queue, after equal items.
fn insert_sorted<T: Ord>(queue: &mut Vec<T>, item: T) {
    let at = queue.partition_point(|x| *x <= item);
    queue.insert(at, item);
}

/// Removes one item equal to `item` from a sorted queue.
fn remove_sorted<T: Ord>(queue: &mut Vec<T>, item: &T) {
    if let Ok(i) = queue.binary_search(item) {
        queue.remove(i);
    }
}
