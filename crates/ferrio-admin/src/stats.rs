//! What `server_stats` reports: the aggregated events of the last period and the Engine.IO
//! sessions known through their sockets.

use std::collections::HashMap;

use ferrio_server::{DisconnectReason, Transport};
use serde::Serialize;

/// At most this many distinct (second, type, sub-type) counters wait for the next
/// `server_stats`; past it new ones are dropped (only reached when the stats are not emitted).
const MAX_AGGREGATED: usize = 1024;

/// One counter of `aggregatedEvents`: events of one type (and sub-type) within one second.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AggregatedEvent {
    /// The second, in milliseconds since the Unix epoch (a multiple of 1000).
    pub(crate) timestamp: u64,
    /// `rawConnection` or `rawDisconnection`.
    #[serde(rename = "type")]
    pub(crate) kind: &'static str,
    /// The close reason of a `rawDisconnection`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) sub_type: Option<&'static str>,
    /// How many.
    pub(crate) count: u64,
}

/// The counters waiting for the next `server_stats` (the reference's `EventBuffer`).
#[derive(Debug, Default)]
pub(crate) struct EventBuffer {
    events: Vec<AggregatedEvent>,
}

impl EventBuffer {
    /// Counts one event of `kind` at `now_ms`.
    pub(crate) fn push(&mut self, now_ms: u64, kind: &'static str, sub_type: Option<&'static str>) {
        let timestamp = now_ms - now_ms % 1000;
        if let Some(e) = self
            .events
            .iter_mut()
            .find(|e| e.timestamp == timestamp && e.kind == kind && e.sub_type == sub_type)
        {
            e.count += 1;
        } else if self.events.len() < MAX_AGGREGATED {
            self.events.push(AggregatedEvent {
                timestamp,
                kind,
                sub_type,
                count: 1,
            });
        }
    }

    /// The counters, emptied.
    pub(crate) fn take(&mut self) -> Vec<AggregatedEvent> {
        std::mem::take(&mut self.events)
    }
}

/// One Engine.IO session seen through its sockets.
#[derive(Debug)]
struct Session {
    sockets: usize,
    polling: bool,
    generation: u64,
}

/// The Engine.IO sessions that have sockets, by session id, and how many of them still poll.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    map: HashMap<String, Session>,
    polling: usize,
    next_generation: u64,
}

/// What a socket's arrival meant for its session.
pub(crate) struct Arrival {
    /// The session was not known: a `rawConnection`.
    pub(crate) new: bool,
    /// The session polls: watch for its upgrade with this generation.
    pub(crate) watch: Option<u64>,
}

impl Sessions {
    /// A socket of session `sid` (on `transport`) connected.
    pub(crate) fn arrived(&mut self, sid: &str, transport: Transport) -> Arrival {
        if let Some(s) = self.map.get_mut(sid) {
            s.sockets += 1;
            return Arrival {
                new: false,
                watch: None,
            };
        }
        let polling = transport == Transport::Polling;
        let generation = self.next_generation;
        self.next_generation += 1;
        self.map.insert(
            sid.to_owned(),
            Session {
                sockets: 1,
                polling,
                generation,
            },
        );
        if polling {
            self.polling += 1;
        }
        Arrival {
            new: true,
            watch: polling.then_some(generation),
        }
    }

    /// Session `sid` (as known in `generation`) stopped polling: it upgraded or closed.
    pub(crate) fn stopped_polling(&mut self, sid: &str, generation: u64) {
        if let Some(s) = self.map.get_mut(sid) {
            if s.generation == generation && s.polling {
                s.polling = false;
                self.polling -= 1;
            }
        }
    }

    /// A socket of session `sid` left; true if it was the session's last one.
    pub(crate) fn left(&mut self, sid: &str) -> bool {
        let Some(s) = self.map.get_mut(sid) else {
            return false;
        };
        s.sockets -= 1;
        if s.sockets > 0 {
            return false;
        }
        if let Some(s) = self.map.remove(sid) {
            if s.polling {
                self.polling -= 1;
            }
        }
        true
    }

    /// The sessions that poll.
    pub(crate) fn polling(&self) -> usize {
        self.polling
    }
}

/// The Engine.IO close reason a session's end is reported with, from the reason its last
/// socket left for. A socket that left its namespace alone (`client namespace disconnect`,
/// `server namespace disconnect`) leaves a session that the official client closes at once
/// when it was its last socket: counted as `transport close`.
pub(crate) fn close_reason(reason: DisconnectReason) -> &'static str {
    match reason {
        DisconnectReason::TransportError => "transport error",
        DisconnectReason::PingTimeout => "ping timeout",
        DisconnectReason::ParseError => "parse error",
        DisconnectReason::BufferFull => "buffer full",
        DisconnectReason::ForcedClose
        | DisconnectReason::ForcedServerClose
        | DisconnectReason::ServerShuttingDown => "forced close",
        _ => "transport close",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_counted_per_second_type_and_sub_type() {
        let mut b = EventBuffer::default();
        b.push(1_000_123, "rawConnection", None);
        b.push(1_000_999, "rawConnection", None);
        b.push(1_001_000, "rawConnection", None);
        b.push(1_001_001, "rawDisconnection", Some("transport close"));
        b.push(1_001_002, "rawDisconnection", Some("ping timeout"));
        let events = b.take();
        assert_eq!(events.len(), 4);
        assert_eq!(events[0].timestamp, 1_000_000);
        assert_eq!(events[0].count, 2);
        assert_eq!(events[1].timestamp, 1_001_000);
        assert_eq!(
            serde_json::to_value(&events[0]).expect("json"),
            serde_json::json!({"timestamp": 1_000_000, "type": "rawConnection", "count": 2})
        );
        assert_eq!(
            serde_json::to_value(&events[2]).expect("json"),
            serde_json::json!({"timestamp": 1_001_000, "type": "rawDisconnection",
                "subType": "transport close", "count": 1})
        );
        assert!(b.take().is_empty());
    }

    #[test]
    fn sessions_are_counted_once_and_polling_ones_until_they_upgrade_or_leave() {
        let mut s = Sessions::default();
        let a = s.arrived("e1", Transport::Polling);
        assert!(a.new);
        let generation = a.watch.expect("watched");
        assert!(!s.arrived("e1", Transport::Polling).new);
        assert!(s.arrived("e2", Transport::WebSocket).watch.is_none());
        assert_eq!(s.polling(), 1);
        s.stopped_polling("e1", generation);
        s.stopped_polling("e1", generation);
        assert_eq!(s.polling(), 0);
        assert!(!s.left("e1"));
        assert!(s.left("e1"));
        assert!(!s.left("e1"));
        // A session that leaves while polling is no longer counted.
        s.arrived("e3", Transport::Polling);
        assert_eq!(s.polling(), 1);
        assert!(s.left("e3"));
        assert_eq!(s.polling(), 0);
    }
}
