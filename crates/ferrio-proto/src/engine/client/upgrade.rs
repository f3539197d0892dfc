//! The upgrade: a WebSocket probe (`2probe`, answered `3probe`) opened next to the polling
//! transport, polling paused once its GET and POST in flight are done, then `5` and the switch;
//! a failed probe is closed and polling goes on.

use super::{Active, Event, Io, Kind, PollState, Session, Transport, TransportId};
use crate::engine::packet::{Frame, Packet, Protocol};
use crate::Str;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProbeStage {
    /// The WebSocket is connecting.
    Connecting,
    /// `2probe` sent, waiting for `3probe`.
    AwaitingPong,
    /// `3probe` received; polling is pausing.
    Pausing,
}

#[derive(Debug, Clone)]
pub(super) struct Probe {
    pub(super) id: TransportId,
    stage: ProbeStage,
}

const PROBE_PING: Str = Str::from_static("2probe");
const UPGRADE: Str = Str::from_static("5");

impl Session {
    /// Opens the probe: a WebSocket next to the polling transport.
    pub(super) fn start_probe(&mut self) {
        if self.probe.is_some() {
            return;
        }
        let id = self.new_id();
        self.probe = Some(Probe {
            id,
            stage: ProbeStage::Connecting,
        });
        self.prior_websocket_success = false;
        let query = self.query(Transport::WebSocket);
        self.io(Io::WsOpen {
            transport: id,
            query,
        });
    }

    /// The probe's WebSocket connected: send `2probe`.
    pub(super) fn on_probe_open(&mut self) {
        let Some(probe) = self.probe.as_mut() else {
            return;
        };
        if probe.stage == ProbeStage::Connecting {
            probe.stage = ProbeStage::AwaitingPong;
            let transport = probe.id;
            self.io(Io::WsSend {
                transport,
                frame: Frame::Text(PROBE_PING),
                compress: false,
            });
        }
    }

    /// A frame on the probe: `3probe` pauses polling for the switch, anything else fails it.
    pub(super) fn on_probe_frame(&mut self, frame: Frame) {
        let Some(probe) = self.probe.as_mut() else {
            return;
        };
        if probe.stage != ProbeStage::AwaitingPong {
            // Before `3probe` nothing else is expected; after it, the reference ignores frames
            // until the switch.
            return;
        }
        match Packet::decode(frame, Protocol::V4) {
            Ok(Packet::Pong(data)) if &*data == "probe" => {
                probe.stage = ProbeStage::Pausing;
                self.upgrading = true;
                self.event(Event::Upgrading(Transport::WebSocket));
                self.prior_websocket_success = true;
                if let Some(Active {
                    kind: Kind::Polling { state, .. },
                    ..
                }) = self.active.as_mut()
                {
                    *state = PollState::Pausing;
                }
                self.check_pause();
            }
            _ => self.probe_failed("probe error".to_owned()),
        }
    }

    /// `pause`: once the polling transport has no GET and no POST in flight, switch.
    pub(super) fn check_pause(&mut self) {
        if !self
            .probe
            .as_ref()
            .is_some_and(|p| p.stage == ProbeStage::Pausing)
        {
            return;
        }
        let idle = matches!(
            self.active.as_ref().map(|a| &a.kind),
            Some(Kind::Polling {
                state: PollState::Pausing,
                get_in_flight: false,
                post_in_flight: false,
            })
        );
        if idle {
            self.switch_to_probe();
        }
    }

    fn switch_to_probe(&mut self) {
        let (Some(probe), Some(old)) = (self.probe.take(), self.active.take()) else {
            return;
        };
        self.io(Io::Close { transport: old.id });
        self.active = Some(Active {
            id: probe.id,
            kind: Kind::WebSocket { open: true },
        });
        self.io(Io::WsSend {
            transport: probe.id,
            frame: Frame::Text(UPGRADE),
            compress: false,
        });
        self.event(Event::Upgrade(Transport::WebSocket));
        self.upgrading = false;
        self.in_flight = 0;
        self.flush();
        self.maybe_finish_close();
    }

    /// The probe failed: close it, report `upgradeError`, and keep (or resume) polling.
    pub(super) fn probe_failed(&mut self, description: String) {
        let Some(probe) = self.probe.take() else {
            return;
        };
        self.io(Io::Close {
            transport: probe.id,
        });
        self.event(Event::UpgradeError(description));
        if probe.stage == ProbeStage::Pausing {
            self.upgrading = false;
            if let Some(Active {
                kind: Kind::Polling { state, .. },
                ..
            }) = self.active.as_mut()
            {
                *state = PollState::Open;
            }
            self.poll();
            self.flush();
            self.maybe_finish_close();
        }
    }
}
