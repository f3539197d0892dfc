//! The reliable delivery queue (`retries`): non-volatile emits of a socket with
//! [`SocketOptions::retries`](super::SocketOptions::retries) go one at a time, each re-sent until
//! acknowledged or tried more than `retries` times.

use std::time::Duration;

use super::{AckError, AckId, ClientError, EmitOptions, Event, Manager, SocketId};
use crate::socket::packet::Packet;
use crate::Instant;

/// An emit in the delivery queue.
#[derive(Debug, Clone)]
pub(super) struct Queued {
    seq: u64,
    user: Option<AckId>,
    packet: Packet,
    try_count: u32,
    pending: bool,
    timeout: Option<Duration>,
    compress: bool,
}

impl Manager {
    /// `_addToQueue`.
    pub(super) fn add_to_queue(
        &mut self,
        now: Instant,
        socket: SocketId,
        packet: Packet,
        options: EmitOptions,
    ) -> Result<Option<AckId>, ClientError> {
        let max = self.config.max_send_buffer;
        let s = &mut self.sockets[socket.index()];
        if s.queue.len() >= max {
            return Err(ClientError::SendBufferFull);
        }
        let user = options.ack.then(|| s.new_handle());
        let seq = s.queue_seq;
        s.queue_seq += 1;
        s.queue.push(Queued {
            seq,
            user,
            packet,
            try_count: 0,
            pending: false,
            timeout: options.timeout,
            compress: options.compress,
        });
        self.drain_queue(now, socket, false);
        Ok(user)
    }

    /// `_drainQueue(force)`: (re)sends the head of the queue when connected.
    pub(super) fn drain_queue(&mut self, now: Instant, socket: SocketId, force: bool) {
        let s = &mut self.sockets[socket.index()];
        if !s.connected {
            return;
        }
        let Some(head) = s.queue.first_mut() else {
            return;
        };
        if head.pending && !force {
            return;
        }
        head.pending = true;
        head.try_count = head.try_count.saturating_add(1);
        let packet = head.packet.clone();
        let options = EmitOptions {
            ack: true,
            timeout: head.timeout,
            volatile: false,
            compress: head.compress,
        };
        let seq = head.seq;
        let _ = self.emit_packet(now, socket, packet, options, Some(seq), false);
    }

    /// The queue's internal ack callback.
    pub(super) fn on_queue_result(
        &mut self,
        now: Instant,
        socket: SocketId,
        seq: u64,
        result: Result<Packet, AckError>,
    ) {
        let retries = self.sockets[socket.index()].options.retries;
        let s = &mut self.sockets[socket.index()];
        let Some(head) = s.queue.first_mut() else {
            return;
        };
        if head.seq != seq {
            return; // already acknowledged
        }
        head.pending = false;
        match result {
            Err(error) => {
                if head.try_count > retries {
                    let user = head.user;
                    s.queue.remove(0);
                    if let Some(ack) = user {
                        self.event(Event::AckError { socket, ack, error });
                    }
                }
            }
            Ok(packet) => {
                let user = head.user;
                s.queue.remove(0);
                if let Some(ack) = user {
                    self.event(Event::Ack {
                        socket,
                        ack,
                        packet,
                    });
                }
            }
        }
        self.drain_queue(now, socket, false);
    }
}
