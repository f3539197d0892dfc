//! What `server_stats` reports: the aggregated events of the last period (from the server's
//! Engine.IO counters) and the polling sessions known through their sockets.

use std::collections::HashMap;

use ferrio_server::{EngineStatsSnapshot, Transport};
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
    /// `rawConnection`, `rawDisconnection`, `packetsIn`, `packetsOut`, `bytesIn` or
    /// `bytesOut`.
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
    /// Counts `count` events of `kind` at `now_ms` (nothing for 0).
    pub(crate) fn push(
        &mut self,
        now_ms: u64,
        kind: &'static str,
        sub_type: Option<&'static str>,
        count: u64,
    ) {
        if count == 0 {
            return;
        }
        let timestamp = now_ms - now_ms % 1000;
        if let Some(e) = self
            .events
            .iter_mut()
            .find(|e| e.timestamp == timestamp && e.kind == kind && e.sub_type == sub_type)
        {
            e.count += count;
        } else if self.events.len() < MAX_AGGREGATED {
            self.events.push(AggregatedEvent {
                timestamp,
                kind,
                sub_type,
                count,
            });
        }
    }

    /// Counts what the server's Engine.IO counters saw in a period (`delta`), at `now_ms`: the
    /// reference's raw `connection`, `close` (by reason), `packet` and `packetCreate` events.
    pub(crate) fn push_engine(&mut self, now_ms: u64, delta: &EngineStatsSnapshot) {
        self.push(now_ms, "rawConnection", None, delta.opened);
        for (reason, n) in delta.closed_by_reason() {
            self.push(now_ms, "rawDisconnection", Some(reason.as_str()), n);
        }
        self.push(now_ms, "packetsIn", None, delta.packets_in);
        self.push(now_ms, "packetsOut", None, delta.packets_out);
        self.push(now_ms, "bytesIn", None, delta.bytes_in);
        self.push(now_ms, "bytesOut", None, delta.bytes_out);
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

impl Sessions {
    /// A socket of session `sid` (on `transport`) connected: if the session was not known and
    /// polls, watch for its upgrade with the generation returned.
    pub(crate) fn arrived(&mut self, sid: &str, transport: Transport) -> Option<u64> {
        if let Some(s) = self.map.get_mut(sid) {
            s.sockets += 1;
            return None;
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
        polling.then_some(generation)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_counted_per_second_type_and_sub_type() {
        let mut b = EventBuffer::default();
        b.push(1_000_123, "rawConnection", None, 1);
        b.push(1_000_999, "rawConnection", None, 1);
        b.push(1_001_000, "rawConnection", None, 1);
        b.push(1_001_001, "rawDisconnection", Some("transport close"), 1);
        b.push(1_001_002, "rawDisconnection", Some("ping timeout"), 1);
        b.push(1_001_003, "packetsIn", None, 0);
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
    fn engine_counters_become_events_of_their_second() {
        let mut b = EventBuffer::default();
        let mut delta = EngineStatsSnapshot::default();
        delta.opened = 2;
        delta.packets_in = 3;
        delta.bytes_in = 40;
        delta.packets_out = 1;
        delta.bytes_out = 7;
        b.push_engine(5_000_500, &delta);
        let events = serde_json::to_value(b.take()).expect("json");
        assert_eq!(
            events,
            serde_json::json!([
                {"timestamp": 5_000_000, "type": "rawConnection", "count": 2},
                {"timestamp": 5_000_000, "type": "packetsIn", "count": 3},
                {"timestamp": 5_000_000, "type": "packetsOut", "count": 1},
                {"timestamp": 5_000_000, "type": "bytesIn", "count": 40},
                {"timestamp": 5_000_000, "type": "bytesOut", "count": 7},
            ])
        );
        b.push_engine(5_001_000, &EngineStatsSnapshot::default());
        assert!(b.take().is_empty());
    }

    #[test]
    fn sessions_are_counted_once_and_polling_ones_until_they_upgrade_or_leave() {
        let mut s = Sessions::default();
        let generation = s.arrived("e1", Transport::Polling).expect("watched");
        assert!(s.arrived("e1", Transport::Polling).is_none());
        assert!(s.arrived("e2", Transport::WebSocket).is_none());
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
