//! The query parameters of each request: the configured ones, `EIO`, `transport`, `b64`, `sid`,
//! and the cache buster (`timestampRequests`, `timestampParam`).

use super::{Query, Session, Transport};

impl Session {
    /// The query of a new request of `transport`; a stamped request takes the next cache buster.
    pub(super) fn query(&mut self, transport: Transport) -> Query {
        let mut query = self.config.query.clone();
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

/// A cache-busting value: a prefix drawn from `seed`, then the request's number, both in base 36
/// (the reference draws from the clock and `Math.random`, which the core does not have).
fn cache_buster(seed: u64, n: u64) -> String {
    // SplitMix64's finaliser: nearby seeds give unrelated prefixes.
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    let mut out = String::with_capacity(12);
    push_base36(&mut out, z % 2_176_782_336); // 36^6: six digits at most
    push_base36(&mut out, n);
    out
}

fn push_base36(out: &mut String, mut n: u64) {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut buf = [0u8; 13];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = DIGITS[(n % 36) as usize];
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.extend(buf[i..].iter().map(|&b| char::from(b)));
}
