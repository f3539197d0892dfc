//! The application's callbacks on a socket: [`EventHandler`] (typed or raw event handlers) and
//! [`HandlerOutput`], and the erased forms the socket keeps (event middlewares, error,
//! catch-all, outgoing, disconnecting and disconnect handlers).

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ferrio_proto::socket::{Packet, RawJson};
use ferrio_proto::Str;
use serde::de::DeserializeOwned;

use super::{AckSender, Disconnection, HandlerError, Message, RawArgs, Socket};
use crate::BoxFuture;

/// The outcome of an event handler: `()`, or a `Result` whose error is logged.
pub trait HandlerOutput: Send {
    /// Reports a failure (through `tracing`).
    fn report(self, event: &str);

    /// False if the outcome is known to be no failure, so that [`HandlerOutput::into_failure`]
    /// need not be called (nor the event's name be written for it). The default is true.
    fn may_fail(&self) -> bool {
        true
    }

    /// Reports a failure as [`HandlerOutput::report`] does and returns its message, for the
    /// socket's [`Socket::on_handler_error`] handlers (by default: `report`, then `None`).
    fn into_failure(self, event: &str) -> Option<String>
    where
        Self: Sized,
    {
        self.report(event);
        None
    }
}

impl HandlerOutput for () {
    fn report(self, _event: &str) {}

    fn may_fail(&self) -> bool {
        false
    }
}

impl<E: fmt::Display + Send> HandlerOutput for Result<(), E> {
    fn may_fail(&self) -> bool {
        self.is_err()
    }

    fn report(self, event: &str) {
        if let Err(e) = self {
            tracing::warn!(event, "handler failed: {e}");
        }
    }

    fn into_failure(self, event: &str) -> Option<String> {
        let e = self.err()?;
        tracing::warn!(event, "handler failed: {e}");
        Some(e.to_string())
    }
}

/// The name of the event a handler runs for, written only when it is needed: when the
/// handler failed (most never do).
struct EventName(Option<RawJson>);

impl EventName {
    fn of(message: &Message) -> EventName {
        EventName(message.packet.data().cloned())
    }

    /// The name, as [`Message::event`] gives it.
    fn get(self) -> String {
        let Some(data) = self.0 else {
            return String::new();
        };
        let packet = Packet::event(Str::from_static("/"), data, Vec::new());
        packet.event_name().map(Cow::into_owned).unwrap_or_default()
    }
}

/// Waits for a handler's output and hands a failure to the socket's
/// [`Socket::on_handler_error`] handlers.
async fn finish<O: HandlerOutput>(socket: Socket, event: EventName, fut: impl Future<Output = O>) {
    let output = fut.await;
    if !output.may_fail() {
        return;
    }
    let event = event.get();
    if let Some(message) = output.into_failure(&event) {
        socket
            .handler_failed(HandlerError::failed(event, message))
            .await;
    }
}

/// An event handler for [`Socket::on`]. Implemented for
///
/// - `Fn(Socket, Message) -> impl Future`: the raw event ([`Message::args`],
///   [`Message::raw_args`], [`Message::ack`]);
/// - `Fn(Socket, T, AckSender) -> impl Future` with `T: DeserializeOwned` (a tuple): typed
///   arguments. An event whose arguments do not fit `T` is dropped (logged, and handed to the
///   socket's [`Socket::on_handler_error`] handlers).
///
/// The future's output is `()` or a `Result` (see [`HandlerOutput`]; an `Err` is logged and
/// handed to the [`Socket::on_handler_error`] handlers).
pub trait EventHandler<M>: Send + Sync + 'static {
    /// Runs the handler.
    fn call(&self, socket: Socket, message: Message) -> BoxFuture<()>;
}

impl<F, Fut> EventHandler<(Message,)> for F
where
    F: Fn(Socket, Message) -> Fut + Send + Sync + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: HandlerOutput,
{
    fn call(&self, socket: Socket, message: Message) -> BoxFuture<()> {
        let event = EventName::of(&message);
        let fut = self(socket.clone(), message);
        Box::pin(finish(socket, event, fut))
    }
}

impl<F, Fut, T> EventHandler<(T, AckSender)> for F
where
    F: Fn(Socket, T, AckSender) -> Fut + Send + Sync + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: HandlerOutput,
    T: DeserializeOwned + Send + 'static,
{
    fn call(&self, socket: Socket, message: Message) -> BoxFuture<()> {
        match message.args::<T>() {
            Ok(args) => {
                let event = EventName::of(&message);
                let fut = self(socket.clone(), args, message.ack);
                Box::pin(finish(socket, event, fut))
            }
            Err(e) => {
                let event = message.event().into_owned();
                tracing::debug!(event, "event dropped, arguments do not fit: {e}");
                let error = HandlerError::arguments(event, e);
                Box::pin(async move { socket.handler_failed(error).await })
            }
        }
    }
}

/// The handle of one listener added to a socket ([`Socket::on`], [`Socket::once`],
/// [`Socket::on_any`], [`Socket::on_any_outgoing`], ...), to remove that listener alone later
/// ([`Socket::off_listener`], [`Socket::off_any_listener`],
/// [`Socket::off_any_outgoing_listener`]).
///
/// The reference removes a listener by passing the same function again
/// (`socket.off("chat", listener)`); Rust closures cannot be compared, so the registration
/// hands out this id instead. Ids are unique within the process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ListenerId(u64);

impl ListenerId {
    /// A fresh id.
    pub(super) fn next() -> ListenerId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        ListenerId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

pub(super) type ErasedHandler = Arc<dyn Fn(Socket, Message) -> BoxFuture<()> + Send + Sync>;
pub(crate) type DisconnectHandler =
    Arc<dyn Fn(Socket, Disconnection) -> BoxFuture<()> + Send + Sync>;
pub(super) type AnyHandler = Arc<dyn Fn(Socket, String, RawArgs) -> BoxFuture<()> + Send + Sync>;
pub(crate) type EventMiddleware =
    Arc<dyn Fn(Socket, String, RawArgs) -> BoxFuture<Result<(), String>> + Send + Sync>;
pub(crate) type ErrorHandler = Arc<dyn Fn(Socket, String) -> BoxFuture<()> + Send + Sync>;
pub(super) type HandlerErrorHandler =
    Arc<dyn Fn(Socket, Arc<HandlerError>) -> BoxFuture<()> + Send + Sync>;
pub(super) type OutgoingHandler = Arc<dyn Fn(&Socket, &str, &RawArgs) + Send + Sync>;
