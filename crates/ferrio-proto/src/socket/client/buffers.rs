//! Where an emit goes: to the engine when the socket is connected, to the socket's offline send
//! buffer otherwise (flushed after the next CONNECT accept), or nowhere (volatile); and the
//! receive buffer, holding the events that arrive before the CONNECT accept.

use super::acks::AckTarget;
use super::{
    AckId, ClientError, DisconnectReason, EmitOptions, Event, Manager, SendError, SocketId,
};
use crate::socket::packet::{EncodedPacket, Packet};
use crate::Instant;

/// A packet in a socket's offline send buffer.
#[derive(Debug, Clone)]
pub(super) struct Buffered {
    pub(super) id: Option<u64>,
    pub(super) encoded: EncodedPacket,
    pub(super) compress: bool,
    /// The packet itself, kept only for [`Event::Sent`] (see [`Manager::report_sent`]).
    pub(super) sent: Option<Packet>,
}

impl Manager {
    /// The `emit` body after the queue check: register the ack, then send, buffer or drop.
    pub(super) fn emit_packet(
        &mut self,
        now: Instant,
        socket: SocketId,
        mut packet: Packet,
        options: EmitOptions,
        queue_entry: Option<u64>,
        bounded: bool,
    ) -> Result<Option<AckId>, ClientError> {
        let writable = self.engine.is_writable();
        let connected =
            self.sockets[socket.index()].connected && !self.engine.has_ping_expired(now);
        let discard = options.volatile && !writable;
        let max_send_buffer = self.config.max_send_buffer;
        if options.ack && queue_entry.is_none() {
            self.check_ack_room(socket)?;
        }
        let s = &mut self.sockets[socket.index()];
        if bounded && !discard && !connected && s.send_buffer.len() >= max_send_buffer {
            return Err(ClientError::SendBufferFull);
        }
        let target = match queue_entry {
            Some(seq) => Some(AckTarget::Queue(seq)),
            None if options.ack => Some(AckTarget::User(s.new_handle())),
            None => None,
        };
        let wire_id = target.map(|_| {
            let id = s.next_wire_id;
            s.next_wire_id += 1;
            id
        });
        packet.id = wire_id.map(Into::into);
        let encoded = self.config.parser.encode(&packet);
        let report = self.sockets[socket.index()].report_sent;
        // Written to the engine, or else (not connected, or the engine closing) kept for the
        // next connection; a discarded packet is neither (an ack asked for still waits for its
        // timeout or the disconnection).
        let written = discard
            || (connected
                && match self
                    .engine
                    .enqueue(encoded.frame_list(), options.compress, bounded)
                {
                    Ok(()) => true,
                    Err(SendError::BufferFull) => {
                        if wire_id.is_some() {
                            self.sockets[socket.index()].next_wire_id -= 1;
                        }
                        return Err(ClientError::WriteBufferFull);
                    }
                    // The engine is closing: keep the packet for the next connection.
                    Err(_) => false,
                });
        if !written {
            self.sockets[socket.index()].send_buffer.push(Buffered {
                id: wire_id,
                encoded,
                compress: options.compress,
                sent: report.then_some(packet),
            });
        } else if report && !discard {
            self.event(Event::Sent { socket, packet });
        }
        let timeout = options
            .timeout
            .or(self.sockets[socket.index()].options.ack_timeout);
        if let (Some(id), Some(target)) = (wire_id, target) {
            self.register_ack(now, socket, id, target, timeout);
        }
        Ok(match target {
            Some(AckTarget::User(h)) => Some(h),
            _ => None,
        })
    }

    /// An EVENT or BINARY_EVENT for an active socket: delivered if it is connected, held
    /// until the CONNECT accept otherwise.
    pub(super) fn on_event(&mut self, now: Instant, socket: SocketId, packet: Packet) {
        let s = &mut self.sockets[socket.index()];
        if s.connected {
            self.deliver(socket, packet);
        } else if s.receive_buffer.len() >= self.config.max_receive_buffer {
            self.on_close(
                now,
                DisconnectReason::ParseError,
                Some("receive buffer full".to_owned()),
            );
        } else if !self.check_unread(now, &packet) {
            // (Checked first when its JSON check is deferred: a buffered event is dropped unread
            // if the socket is disconnected before it connects.)
            self.sockets[socket.index()].receive_buffer.push(packet);
        }
    }
}
