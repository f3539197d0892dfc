//! The manager's connection: opening the Engine.IO session (with its connect timeout), the
//! failure to open, the close of an open connection, and the reconnection loop with the
//! reference's backoff.

use super::{DisconnectReason, Event, Manager, ReadyState, SocketId};
use crate::engine::client as eio;
use crate::Instant;

impl Manager {
    /// `open(fn)`: starts an Engine.IO session if the manager is closed.
    pub(super) fn open(&mut self, now: Instant, for_reconnect: bool) {
        if self.ready != ReadyState::Closed {
            return;
        }
        if self.engine.state() != eio::State::Closed {
            // A previous session still draining (a close packet, say) is given up now; its
            // events are dropped by `pump` since the manager is closed.
            self.engine.abort();
            self.pump(now);
        }
        if let Some(query) = self.next_query.take() {
            self.engine.set_query(query);
        }
        self.engine.open();
        self.ready = ReadyState::Opening;
        self.skip_reconnect = false;
        self.opening_for_reconnect = for_reconnect;
        self.connect_deadline = self.config.timeout.map(|t| now + t);
    }

    /// `cleanup()`: timers and the partial binary packet of the decoder.
    fn cleanup(&mut self) {
        self.decoder.reset();
        self.connect_deadline = None;
        self.reconnect_deadline = None;
    }

    /// `onopen`: sockets send their CONNECT.
    pub(super) fn on_open(&mut self, now: Instant) {
        self.cleanup();
        self.ready = ReadyState::Open;
        self.event(Event::Open);
        for i in 0..self.sockets.len() {
            if self.sockets[i].active {
                self.socket_on_open(now, SocketId(i as u32));
            }
        }
        if self.opening_for_reconnect {
            self.opening_for_reconnect = false;
            let attempt = self.backoff.attempts();
            self.reconnecting = false;
            self.backoff.reset();
            self.event(Event::Reconnect(attempt));
        }
    }

    /// The `error` path of `open()`: the session did not open.
    pub(super) fn on_open_error(&mut self, now: Instant, message: String) {
        self.cleanup();
        if self.engine.state() != eio::State::Closed {
            self.engine.abort();
        }
        self.ready = ReadyState::Closed;
        self.event(Event::Error {
            message: message.clone(),
        });
        // `maybeReconnectOnOpen`: only the first failure starts the reconnection loop; an
        // attempt that failed schedules the next one. Decided first, so that the sockets'
        // `connect_error`, which come before the reconnection's events, say whether they retry.
        let again = self.opening_for_reconnect
            || (!self.reconnecting && self.config.reconnection && self.backoff.attempts() == 0);
        let retrying = if again {
            self.can_reconnect()
        } else {
            self.reconnecting
        };
        for i in 0..self.sockets.len() {
            let s = &self.sockets[i];
            if s.active && !s.connected {
                self.event(Event::ConnectError {
                    socket: SocketId(i as u32),
                    message: message.clone(),
                    data: None,
                    retrying,
                });
            }
        }
        if self.opening_for_reconnect {
            self.opening_for_reconnect = false;
            self.reconnecting = false;
            self.reconnect(now);
            self.event(Event::ReconnectError {
                message: message.clone(),
            });
        } else if again {
            self.reconnect(now);
        }
    }

    /// `onclose`: the open connection is gone.
    pub(super) fn on_close(
        &mut self,
        now: Instant,
        reason: DisconnectReason,
        description: Option<String>,
    ) {
        self.cleanup();
        if self.engine.state() != eio::State::Closed {
            self.engine.close();
        }
        self.backoff.reset();
        self.ready = ReadyState::Closed;
        self.event(Event::Close {
            reason,
            description: description.clone(),
        });
        for i in 0..self.sockets.len() {
            self.sockets[i].connect_pending = false;
            self.sockets[i].receive_buffer.clear();
            if self.sockets[i].active {
                self.on_socket_close(now, SocketId(i as u32), reason, description.clone());
            }
        }
        if self.config.reconnection && !self.skip_reconnect {
            self.reconnect(now);
        }
    }

    /// `_close`: the last socket is gone, close without reconnecting.
    /// (The reference also reports a `close` when there was nothing to close, a second
    /// `disconnect()` say; Ferrio reports it only for a connection or a pending attempt.)
    pub(super) fn close_manager(&mut self, now: Instant) {
        let something = self.ready != ReadyState::Closed || self.reconnecting;
        self.skip_reconnect = true;
        self.reconnecting = false;
        if something {
            self.on_close(now, DisconnectReason::ForcedClose, None);
        } else {
            self.cleanup();
        }
    }

    /// `reconnect()`: schedules the next attempt, or gives up.
    /// True if [`Manager::reconnect`] would schedule an attempt (not one already pending):
    /// reconnection not turned off meanwhile, and attempts left.
    fn can_reconnect(&self) -> bool {
        !self.skip_reconnect
            && self
                .config
                .reconnection_attempts
                .is_none_or(|limit| self.backoff.attempts() < limit)
    }

    fn reconnect(&mut self, now: Instant) {
        if self.reconnecting || self.skip_reconnect {
            return;
        }
        if !self.can_reconnect() {
            self.backoff.reset();
            self.reconnecting = false;
            self.event(Event::ReconnectFailed);
        } else {
            let delay = self.backoff.duration(self.rng.next_f64());
            self.reconnecting = true;
            self.reconnect_deadline = Some(now + delay);
        }
    }

    /// `_destroy(socket)`: the socket leaves; the manager closes when none is active.
    pub(super) fn destroy(&mut self, now: Instant, socket: SocketId) {
        if let Some(s) = self.sockets.get_mut(socket.index()) {
            s.active = false;
            s.awaiting_auth = false;
        }
        if !self.sockets.iter().any(|s| s.active) {
            self.close_manager(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::{Event, Manager, ManagerConfig, Output};
    use crate::Instant;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Schedules the next attempt at `now` as after a failure, and returns its delay.
    fn next_delay(m: &mut Manager, now: Instant) -> Option<Duration> {
        m.reconnecting = false;
        m.reconnect_deadline = None;
        m.reconnect(now);
        m.reconnect_deadline
            .map(|d| ms(d.as_millis() - now.as_millis()))
    }

    #[test]
    fn run_time_settings_apply_to_the_next_delay() {
        let now = Instant::from_millis(0);
        let mut m = Manager::new(ManagerConfig {
            randomization_factor: 0.0,
            ..ManagerConfig::default()
        });
        assert_eq!(next_delay(&mut m, now), Some(ms(1000)));
        // the attempts made so far still count: 100 · 2¹
        m.set_reconnection_delay(ms(100));
        assert_eq!(next_delay(&mut m, now), Some(ms(200)));
        m.set_reconnection_delay_max(ms(300));
        assert_eq!(next_delay(&mut m, now), Some(ms(300)));
        m.set_reconnection_delay(Duration::ZERO);
        m.set_reconnection_delay_max(Duration::ZERO);
        assert_eq!(m.config().reconnection_delay, ms(1000), "zero: the default");
        assert_eq!(next_delay(&mut m, now), Some(ms(5000)));
        // 4 attempts made: a limit of 4 gives up
        m.set_reconnection_attempts(Some(4));
        assert_eq!(next_delay(&mut m, now), None);
        assert_eq!(m.poll_output(), Some(Output::Event(Event::ReconnectFailed)));
        m.set_reconnection_attempts(Some(0));
        assert_eq!(m.config().reconnection_attempts, None, "zero: unlimited");
        assert_eq!(
            next_delay(&mut m, now),
            Some(ms(1000)),
            "counting from 0 again"
        );
    }

    #[test]
    fn run_time_jitter_and_timeout() {
        let now = Instant::from_millis(0);
        let mut m = Manager::new(ManagerConfig {
            randomization_factor: 0.0,
            ..ManagerConfig::default()
        });
        m.set_randomization_factor(1.0);
        let jittered: Vec<_> = (0..8).map(|_| next_delay(&mut m, now)).collect();
        let plain: Vec<_> = (0..8u32)
            .map(|n| Some(ms((1000u64 << n).min(5000))))
            .collect();
        assert_ne!(jittered, plain, "the delays move with the jitter");
        let mut m = Manager::new(ManagerConfig::default());
        m.set_timeout(Some(ms(50)));
        m.connect(now);
        assert_eq!(m.connect_deadline, Some(now + ms(50)));
    }
}
