//! The commands of the handles ([`Socket`](crate::Socket), [`Manager`](crate::Manager),
//! [`AckSender`](crate::AckSender)) for the connection's task, in one bounded queue.
//!
//! The handles' API is synchronous (`emit` is not async), so a full queue cannot be waited on:
//! emits and acks past [`COMMAND_QUEUE`] are refused with [`EmitError::QueueFull`]. Connection
//! commands (open or connect a socket, disconnect it, open or close the manager) and the
//! manager's settings return nothing and are never refused; past the bound they are merged
//! instead (see [`Commands::push`]), so that the queue never holds more than [`COMMAND_QUEUE`]
//! commands plus one per socket, one open and one per setting.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use ferrio_proto::socket::client::EmitOptions;
use ferrio_proto::socket::Packet;
use ferrio_proto::Str;
use tokio::sync::{oneshot, Notify};

use crate::error::{AckError, EmitError};
use crate::socket::SocketShared;

/// Commands (emits, acks, connects, disconnects) waiting for a connection's task. Past it
/// [`Socket::emit`](crate::Socket::emit), [`Socket::emit_with_ack`](crate::Socket::emit_with_ack)
/// and [`AckSender::send`](crate::AckSender::send) fail with [`EmitError::QueueFull`] (nothing
/// is queued); [`Socket::connect`](crate::Socket::connect),
/// [`Socket::disconnect`](crate::Socket::disconnect) and [`Manager::close`](crate::Manager::close)
/// still go through, each replacing the connect or disconnect of the same socket still waiting
/// (the last call wins).
///
/// The queue fills when the application emits faster than the connection's task takes the
/// emits: a synchronous loop that never yields to the runtime, or a WebSocket (or polling
/// write buffer) the network does not drain, during which the task stops taking commands.
pub const COMMAND_QUEUE: usize = 1024;

/// A command from a handle to the driver.
pub(crate) enum Command {
    /// Opens the socket if the driver does not know it yet, and connects it (`socket.connect()`).
    Connect {
        shared: Arc<SocketShared>,
    },
    Disconnect {
        nsp: Str,
    },
    Emit {
        nsp: Str,
        packet: Packet,
        options: EmitOptions,
        reply: Option<oneshot::Sender<Result<Packet, AckError>>>,
    },
    Ack {
        nsp: Str,
        packet: Packet,
    },
    /// Disconnects every socket.
    Close,
    /// Opens the connection without a socket (`manager.open()`).
    Open,
    /// Changes a setting of the manager.
    Set(Setting),
}

/// A manager setting changed at run time (the core's `Manager::set_*`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Setting {
    Reconnection(bool),
    Query(Vec<(String, String)>),
    ReconnectionAttempts(Option<u32>),
    ReconnectionDelay(Duration),
    ReconnectionDelayMax(Duration),
    RandomizationFactor(f64),
    Timeout(Option<Duration>),
}

impl Command {
    /// The namespace a command concerns (`None`: every one; the manager's own commands
    /// concern none).
    fn nsp(&self) -> Option<&str> {
        match self {
            Command::Connect { shared } => Some(&shared.nsp),
            Command::Disconnect { nsp } | Command::Emit { nsp, .. } | Command::Ack { nsp, .. } => {
                Some(nsp)
            }
            Command::Close => None,
            Command::Open | Command::Set(_) => Some(""),
        }
    }

    /// True if `self` and `other` are the same manager command (an open, or the same setting).
    fn same_manager_command(&self, other: &Command) -> bool {
        match (self, other) {
            (Command::Open, Command::Open) => true,
            (Command::Set(a), Command::Set(b)) => {
                std::mem::discriminant(a) == std::mem::discriminant(b)
            }
            _ => false,
        }
    }

    fn is_connection(&self) -> bool {
        matches!(self, Command::Connect { .. } | Command::Disconnect { .. })
    }
}

#[derive(Default)]
struct Queue {
    items: VecDeque<Command>,
    /// Every handle is gone: the driver takes what is left, then stops.
    senders_gone: bool,
    /// The driver is gone: nothing is taken any more.
    receiver_gone: bool,
}

/// The queue, shared by the handles (through [`ManagerShared`](crate::manager)) and the driver.
#[derive(Default)]
pub(crate) struct Commands {
    queue: Mutex<Queue>,
    wake: Notify,
}

impl Commands {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues a command. Below [`COMMAND_QUEUE`] every command is queued. At the bound emits
    /// and acks are refused with [`EmitError::QueueFull`]; a connect or disconnect replaces the
    /// connect or disconnect of the same socket if that is the last queued command concerning
    /// the socket (the last call wins), and is queued otherwise; a close becomes a disconnect of
    /// each socket in `sockets`, merged the same way; an open or a setting replaces the same
    /// command still waiting (the last value wins), and is queued otherwise. So past the bound
    /// at most one command per socket, one open and one per setting are added.
    pub(crate) fn push(
        &self,
        command: Command,
        sockets: impl FnOnce() -> Vec<Str>,
    ) -> Result<(), EmitError> {
        let mut q = self.lock();
        if q.receiver_gone {
            return Err(EmitError::Closed);
        }
        if q.items.len() < COMMAND_QUEUE {
            q.items.push_back(command);
        } else {
            match command {
                Command::Emit { .. } | Command::Ack { .. } => return Err(EmitError::QueueFull),
                Command::Connect { .. } | Command::Disconnect { .. } => q.merge(command),
                Command::Close => {
                    for nsp in sockets() {
                        q.merge(Command::Disconnect { nsp });
                    }
                }
                Command::Open | Command::Set(_) => {
                    match q
                        .items
                        .iter_mut()
                        .find(|c| c.same_manager_command(&command))
                    {
                        Some(same) => *same = command,
                        None => q.items.push_back(command),
                    }
                }
            }
        }
        drop(q);
        self.wake.notify_one();
        Ok(())
    }

    /// The next command, in order; `None` once every handle is gone and the queue is empty.
    pub(crate) async fn recv(&self) -> Option<Command> {
        loop {
            let notified = self.wake.notified();
            {
                let mut q = self.lock();
                if let Some(command) = q.items.pop_front() {
                    return Some(command);
                }
                if q.senders_gone {
                    return None;
                }
            }
            notified.await;
        }
    }

    /// Every handle is gone.
    pub(crate) fn close_senders(&self) {
        self.lock().senders_gone = true;
        self.wake.notify_one();
    }

    /// The driver is gone: the commands left are dropped (an `emit_with_ack` waiting for its
    /// reply gets [`EmitError::Closed`]) and new ones are refused.
    pub(crate) fn close_receiver(&self) {
        let items = {
            let mut q = self.lock();
            q.receiver_gone = true;
            std::mem::take(&mut q.items)
        };
        drop(items);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().items.len()
    }
}

impl Queue {
    /// Puts a connect or disconnect in place of the socket's connect or disconnect if that is
    /// the last queued command concerning the socket; queues it otherwise.
    fn merge(&mut self, command: Command) {
        let nsp = command.nsp();
        let last = self
            .items
            .iter_mut()
            .rev()
            .find(|c| c.nsp().is_none() || c.nsp() == nsp);
        match last {
            Some(last) if last.is_connection() => *last = command,
            _ => self.items.push_back(command),
        }
    }
}

/// The driver's end of the queue: when the driver stops (or its runtime drops it), the queue
/// is closed.
pub(crate) struct Receiver(pub(crate) Arc<Commands>);

impl Receiver {
    pub(crate) async fn recv(&self) -> Option<Command> {
        self.0.recv().await
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.0.close_receiver();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrio_proto::socket::client::SocketOptions;

    fn emit(n: u32) -> Command {
        Command::Emit {
            nsp: Str::from("/"),
            packet: Packet::event_with("/", "n", &(n,)).unwrap(),
            options: EmitOptions::default(),
            reply: None,
        }
    }

    fn shared(nsp: &str) -> Arc<SocketShared> {
        Arc::new(SocketShared::new(
            Str::from(nsp),
            SocketOptions::default(),
            None,
        ))
    }

    fn describe(c: &Command) -> String {
        match c {
            Command::Connect { shared } => format!("connect {}", shared.nsp),
            Command::Disconnect { nsp } => format!("disconnect {nsp}"),
            Command::Emit { packet, .. } => format!("emit {}", packet.args::<(u32,)>().unwrap().0),
            Command::Ack { nsp, .. } => format!("ack {nsp}"),
            Command::Close => "close".to_owned(),
            Command::Open => "open".to_owned(),
            Command::Set(s) => format!("set {s:?}"),
        }
    }

    fn drain(commands: &Commands) -> Vec<String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        commands.close_senders();
        rt.block_on(async {
            let mut out = Vec::new();
            while let Some(c) = commands.recv().await {
                out.push(describe(&c));
            }
            out
        })
    }

    fn no_sockets() -> Vec<Str> {
        Vec::new()
    }

    #[test]
    fn emits_past_the_bound_are_refused() {
        let commands = Commands::default();
        for n in 0..COMMAND_QUEUE as u32 {
            commands.push(emit(n), no_sockets).unwrap();
        }
        assert!(matches!(
            commands.push(emit(9999), no_sockets),
            Err(EmitError::QueueFull)
        ));
        assert_eq!(commands.len(), COMMAND_QUEUE);
        let out = drain(&commands);
        let expected: Vec<String> = (0..COMMAND_QUEUE).map(|n| format!("emit {n}")).collect();
        assert_eq!(out, expected, "everything accepted, in order, nothing more");
    }

    #[test]
    fn connection_commands_past_the_bound_merge_per_socket() {
        let commands = Commands::default();
        let (a, b) = (shared("/a"), shared("/b"));
        for n in 0..COMMAND_QUEUE as u32 - 1 {
            commands.push(emit(n), no_sockets).unwrap();
        }
        // below the bound: queued as they come
        commands
            .push(Command::Connect { shared: a.clone() }, no_sockets)
            .unwrap();
        // at the bound: `/a`'s last command is its connect, replaced; `/b` gets one slot
        for _ in 0..100 {
            commands
                .push(Command::Disconnect { nsp: "/a".into() }, no_sockets)
                .unwrap();
            commands
                .push(Command::Connect { shared: a.clone() }, no_sockets)
                .unwrap();
            commands
                .push(Command::Disconnect { nsp: "/b".into() }, no_sockets)
                .unwrap();
        }
        commands
            .push(Command::Disconnect { nsp: "/a".into() }, no_sockets)
            .unwrap();
        assert_eq!(commands.len(), COMMAND_QUEUE + 1);
        // a close past the bound: a disconnect of each socket, merged the same way
        commands
            .push(Command::Connect { shared: b.clone() }, no_sockets)
            .unwrap();
        commands
            .push(Command::Close, || vec!["/a".into(), "/b".into()])
            .unwrap();
        assert!(matches!(
            commands.push(emit(0), no_sockets),
            Err(EmitError::QueueFull)
        ));
        let out = drain(&commands);
        assert_eq!(out.len(), COMMAND_QUEUE + 1);
        assert_eq!(
            out[COMMAND_QUEUE - 2],
            format!("emit {}", COMMAND_QUEUE - 2)
        );
        assert_eq!(out[COMMAND_QUEUE - 1..], ["disconnect /a", "disconnect /b"]);
    }

    #[test]
    fn manager_commands_past_the_bound_merge_per_kind() {
        let commands = Commands::default();
        for n in 0..COMMAND_QUEUE as u32 {
            commands.push(emit(n), no_sockets).unwrap();
        }
        for n in 1..100 {
            commands.push(Command::Open, no_sockets).unwrap();
            commands
                .push(
                    Command::Set(Setting::ReconnectionAttempts(Some(n))),
                    no_sockets,
                )
                .unwrap();
            commands
                .push(Command::Set(Setting::Reconnection(n % 2 == 0)), no_sockets)
                .unwrap();
        }
        let out = drain(&commands);
        assert_eq!(
            out[COMMAND_QUEUE..],
            [
                "open".to_owned(),
                "set ReconnectionAttempts(Some(99))".to_owned(),
                "set Reconnection(false)".to_owned()
            ],
            "one of each kind, the last value"
        );
    }

    #[test]
    fn a_close_below_the_bound_stays_in_place() {
        let commands = Commands::default();
        let a = shared("/a");
        commands.push(emit(1), no_sockets).unwrap();
        commands.push(Command::Close, no_sockets).unwrap();
        commands
            .push(Command::Connect { shared: a }, no_sockets)
            .unwrap();
        commands.push(emit(2), no_sockets).unwrap();
        assert_eq!(
            drain(&commands),
            ["emit 1", "close", "connect /a", "emit 2"]
        );
    }

    #[test]
    fn closed_queues() {
        let commands = Arc::new(Commands::default());
        let (tx, rx) = oneshot::channel();
        commands
            .push(
                Command::Emit {
                    nsp: Str::from("/"),
                    packet: Packet::event_with("/", "n", &(1,)).unwrap(),
                    options: EmitOptions::with_ack(),
                    reply: Some(tx),
                },
                no_sockets,
            )
            .unwrap();
        drop(Receiver(commands.clone()));
        assert!(rx.blocking_recv().is_err(), "the waiting reply is dropped");
        assert!(matches!(
            commands.push(emit(2), no_sockets),
            Err(EmitError::Closed)
        ));
    }
}
