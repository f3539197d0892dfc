//! The emit variants of a socket: [`VolatileEmitter`] (`socket.volatile()`),
//! [`CompressEmitter`] (`socket.compress(false)`) and [`AckEmitter`] (`socket.timeout(d)`).

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
    pub(super) compress: bool,
}

impl<'a> VolatileEmitter<'a> {
    /// Sets the `compress` flag of this emit (see [`Socket::compress`]).
    pub fn compress(self, compress: bool) -> VolatileEmitter<'a> {
        VolatileEmitter { compress, ..self }
    }

    /// Emits `event` with `args` (a tuple), dropped if the transport is not writable.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, args: &T) -> Result<(), EmitError> {
        let packet = Packet::outgoing_event(self.socket.inner.ns.name.clone(), event, args)?;
        self.socket.notify_outgoing(&packet);
        let compress = self.compress;
        self.socket.send_command(|s| Command::Send {
            socket: s.clone(),
            packet: Arc::new(s.inner.ns.parser.encode(&packet)),
            volatile: true,
            compress,
        })
    }
}

/// An emit with its `compress` flag set; see [`Socket::compress`].
#[derive(Debug)]
pub struct CompressEmitter<'a> {
    pub(super) socket: &'a Socket,
    pub(super) compress: bool,
}

impl<'a> CompressEmitter<'a> {
    /// Makes the emit volatile too (see [`Socket::volatile`]).
    pub fn volatile(self) -> VolatileEmitter<'a> {
        VolatileEmitter {
            socket: self.socket,
            compress: self.compress,
        }
    }

    /// Sets a timeout for the answer (see [`Socket::timeout`]).
    pub fn timeout(self, timeout: Duration) -> AckEmitter<'a> {
        AckEmitter {
            socket: self.socket,
            timeout,
            compress: self.compress,
        }
    }

    /// Emits `event` with `args` (a tuple), as [`Socket::emit`] does, with the flag.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, args: &T) -> Result<(), EmitError> {
        self.socket.emit_inner(event, args, self.compress)
    }

    /// Emits `event` asking for an acknowledgement without timeout, as
    /// [`Socket::emit_with_ack`] does, with the flag.
    pub fn emit_with_ack<T: Serialize + ?Sized>(
        &self,
        event: &str,
        args: &T,
    ) -> impl Future<Output = Result<AckReply, AckError>> + Send + 'static {
        self.socket
            .emit_with_ack_inner(event, args, None, self.compress)
    }
}

/// An emit with acknowledgement and a timeout; see [`Socket::timeout`].
#[derive(Debug)]
pub struct AckEmitter<'a> {
    pub(super) socket: &'a Socket,
    pub(super) timeout: Duration,
    pub(super) compress: bool,
}

impl<'a> AckEmitter<'a> {
    /// Sets the `compress` flag of this emit (see [`Socket::compress`]).
    pub fn compress(self, compress: bool) -> AckEmitter<'a> {
        AckEmitter { compress, ..self }
    }

    /// Emits `event` asking for an acknowledgement: resolves with the answer, or
    /// [`AckError::Timeout`] after the timeout (or fails at once at the bound on pending acks,
    /// as [`Socket::emit_with_ack`] does).
    pub fn emit_with_ack<T: Serialize + ?Sized>(
        &self,
        event: &str,
        args: &T,
    ) -> impl Future<Output = Result<AckReply, AckError>> + Send + 'static {
        self.socket
            .emit_with_ack_inner(event, args, Some(self.timeout), self.compress)
    }
}
