//! The long-polling cycle: one GET and one POST at most in flight per polling transport, each
//! answered GET starting the next one (`Polling` of `engine.io-client`). What a POST carries is
//! the write buffer's business ([`write`](super::write)).

use super::{Active, CloseReason, Io, Kind, Session, State, Transport, TransportId};
use crate::engine::packet::Packet;
use crate::engine::payload::decode_payload;
use crate::{Instant, Str};

/// The readiness of a polling transport (`readyState` of `Polling`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PollState {
    /// Waiting for the handshake packet.
    Opening,
    /// Polling.
    Open,
    /// An upgrade waits for the GET and POST in flight before switching.
    Pausing,
}

impl Session {
    /// The GET of polling `transport` answered: its packets are handled in order, then the next
    /// GET starts (or, while pausing for an upgrade, the switch is checked).
    pub(super) fn on_poll_response(&mut self, now: Instant, transport: TransportId, body: Str) {
        match self.polling(transport) {
            Some(Kind::Polling { get_in_flight, .. }) if *get_in_flight => *get_in_flight = false,
            _ => return,
        }
        for packet in decode_payload(body) {
            if let Ok(packet) = &packet {
                self.report_received(packet);
            }
            match packet {
                Err(e) => {
                    self.on_transport_failure(e.as_str().to_owned());
                    return;
                }
                Ok(Packet::Close) => {
                    self.on_close(
                        CloseReason::TransportClose,
                        Some("transport closed by the server".to_owned()),
                    );
                    return;
                }
                Ok(packet) => {
                    if let (Packet::Open(_), Some(Kind::Polling { state, .. })) =
                        (&packet, self.polling(transport))
                    {
                        if *state == PollState::Opening {
                            *state = PollState::Open;
                        }
                    }
                    self.on_packet(now, packet);
                    if self.state == State::Closed {
                        return;
                    }
                }
            }
        }
        match self.polling(transport) {
            Some(Kind::Polling {
                state: PollState::Open,
                ..
            }) => self.poll(),
            Some(Kind::Polling {
                state: PollState::Pausing,
                ..
            }) => self.check_pause(),
            _ => {}
        }
    }

    /// The POST of polling `transport` answered: what it carried leaves the write buffer.
    pub(super) fn on_post_response(&mut self, transport: TransportId) {
        match self.polling(transport) {
            Some(Kind::Polling { post_in_flight, .. }) if *post_in_flight => {
                *post_in_flight = false
            }
            _ => return,
        }
        self.on_drain();
        if self.upgrading {
            self.check_pause();
        }
    }

    /// The state of the active transport if it is polling transport `id`.
    fn polling(&mut self, id: TransportId) -> Option<&mut Kind> {
        match self.active.as_mut() {
            Some(a) if a.id == id && matches!(a.kind, Kind::Polling { .. }) => Some(&mut a.kind),
            _ => None,
        }
    }

    /// Starts the next long-poll if the polling transport is open and idle (`_poll`).
    pub(super) fn poll(&mut self) {
        let Some(Active {
            id,
            kind:
                Kind::Polling {
                    state: PollState::Open,
                    get_in_flight,
                    ..
                },
        }) = self.active.as_mut()
        else {
            return;
        };
        if *get_in_flight {
            return;
        }
        *get_in_flight = true;
        let id = *id;
        let query = self.query(Transport::Polling);
        self.io(Io::Get {
            transport: id,
            query,
        });
    }
}
