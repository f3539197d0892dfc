//! The query parameters of each request: the configured ones, `EIO`, `transport`, `b64`, `sid`,
//! and the cache buster (`timestampRequests`, `timestampParam`).

use super::{Query, Session, Transport};
use crate::str::push_decimal;

impl Session {
    /// The query of a new request of `transport`; a stamped request takes the next cache buster.
    pub(super) fn query(&mut self, transport: Transport) -> Query {
        // (A loop rather than `clone()`: the browser module then has no `Vec<(String, String)>`
        // clone code.)
        let mut query = Query::new();
        for (k, v) in &self.config.query {
            query.push((k.clone(), v.clone()));
        }
        set_param(&mut query, "EIO", "4");
        set_param(&mut query, "transport", transport.name());
        if self.config.force_base64 {
            set_param(&mut query, "b64", "1");
        }
        if let Some(handshake) = &self.handshake {
            set_param(&mut query, "sid", &handshake.sid);
        }
        // engine.io-client: polling requests unless `timestampRequests` is false, WebSocket
        // ones only if it is true.
        let stamped = match self.config.timestamp_requests {
            None => transport == Transport::Polling,
            Some(yes) => yes,
        };
        if stamped {
            self.stamps += 1;
            let value = cache_buster(self.config.stamp_seed, self.stamps);
            set_param(&mut query, &self.config.timestamp_param, &value);
        }
        query
    }
}

fn set_param(query: &mut Query, key: &str, value: &str) {
    match query.iter_mut().find(|(k, _)| k == key) {
        Some((_, v)) => *v = value.to_owned(),
        None => query.push((key.to_owned(), value.to_owned())),
    }
}

/// A cache-busting value: the low digits of `seed` (random, from the driver), a dot, then the
/// request's number (the reference draws from the clock and `Math.random`, which the core does
/// not have).
fn cache_buster(seed: u64, n: u64) -> String {
    let mut out = String::new();
    push_decimal(&mut out, seed % 100_000_000);
    out.push('.');
    push_decimal(&mut out, n);
    out
}
