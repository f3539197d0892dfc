//! The emit variants of a socket: [`VolatileEmitter`] (`socket.volatile()`) and
//! [`AckEmitter`] (`socket.timeout(d)`).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ferrio_proto::socket::Packet;
use serde::Serialize;

use super::{AckError, AckReply, EmitError, Socket};
use crate::command::Command;

/// A volatile emit; see [`Socket::volatile`].
#[derive(Debug)]
pub struct VolatileEmitter<'a> {
    pub(super) socket: &'a Socket,
}

impl VolatileEmitter<'_> {
    /// Emits `event` with `args` (a tuple), dropped if the transport is not writable.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, args: &T) -> Result<(), EmitError> {
        let packet = Packet::outgoing_event(self.socket.inner.ns.name.clone(), event, args)?;
        self.socket.notify_outgoing(&packet);
        self.socket.send_command(|s| Command::Send {
            socket: s.clone(),
            packet: Arc::new(s.inner.ns.parser.encode(&packet)),
            volatile: true,
        })
    }
}

/// An emit with acknowledgement and a timeout; see [`Socket::timeout`].
#[derive(Debug)]
pub struct AckEmitter<'a> {
    pub(super) socket: &'a Socket,
    pub(super) timeout: Duration,
}

impl AckEmitter<'_> {
    /// Emits `event` asking for an acknowledgement: resolves with the answer, or
    /// [`AckError::Timeout`] after the timeout (or fails at once at the bound on pending acks,
    /// as [`Socket::emit_with_ack`] does).
    pub fn emit_with_ack<T: Serialize + ?Sized>(
        &self,
        event: &str,
        args: &T,
    ) -> impl Future<Output = Result<AckReply, AckError>> + Send + 'static {
        self.socket
            .emit_with_ack_inner(event, args, Some(self.timeout))
    }
}
