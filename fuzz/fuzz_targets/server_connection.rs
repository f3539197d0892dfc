//! Arbitrary sequences of input to the server machines (Socket.IO connection over an Engine.IO
//! session): HTTP polls and posts, WebSocket and probe frames, closes, time passing and the
//! application's answers. Nothing may panic; at most one GET is ever pending; no timer is left in
//! the past; nothing comes out after `Closed`.
//!
//! The first byte picks the transport and protocol; then each op is one byte of kind and, for
//! data ops, a length byte and that many bytes.

#![no_main]

use std::collections::HashSet;
use std::time::Duration;

use bytes::Bytes;
use ferrio_proto::engine::server as eio;
use ferrio_proto::engine::{Frame, Protocol};
use ferrio_proto::socket::server::{AckIds, Config, Connection, DisconnectReason, Output};
use ferrio_proto::socket::Packet;
use ferrio_proto::{Instant, Str};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&first, mut rest)) = data.split_first() else {
        return;
    };
    let transport = if first & 1 == 0 {
        eio::Transport::Polling
    } else {
        eio::Transport::WebSocket
    };
    let protocol = if first & 2 == 0 {
        Protocol::V4
    } else {
        Protocol::V3
    };
    let mut now = 0u64;
    let mut c = Connection::new(
        Instant::from_millis(0),
        "s".into(),
        protocol,
        transport,
        eio::Config {
            ping_interval: Duration::from_millis(300),
            ping_timeout: Duration::from_millis(200),
            max_payload: 256,
            max_buffered_bytes: 4096,
            ..eio::Config::default()
        },
        Config {
            connect_timeout: Duration::from_millis(1000),
            max_attachments: 3,
        },
    );
    let mut pending: HashSet<u64> = HashSet::new();
    let mut next_request = 0u64;
    let mut connecting: Vec<Str> = Vec::new();
    let mut closed = false;
    let mut ids = AckIds::default();

    loop {
        // drain and check
        while let Some(out) = c.poll_output() {
            assert!(!closed, "output after Closed: {out:?}");
            match out {
                Output::Transport(eio::Output::PollResponse { request, .. }) => {
                    assert!(pending.remove(&request), "answer to a GET not pending");
                }
                Output::Connect { nsp, .. } => connecting.push(nsp),
                Output::Closed(_) => closed = true,
                _ => {}
            }
        }
        assert!(pending.len() <= 1);
        if closed {
            assert!(pending.is_empty());
        }
        let Some((&op, tail)) = rest.split_first() else {
            break;
        };
        rest = tail;
        let t = Instant::from_millis(now);
        let take = |rest: &mut &[u8]| -> Bytes {
            let Some((&len, tail)) = rest.split_first() else {
                return Bytes::new();
            };
            let n = (len as usize).min(tail.len());
            let (d, tail) = tail.split_at(n);
            *rest = tail;
            Bytes::copy_from_slice(d)
        };
        match op % 14 {
            0 => {
                next_request += 1;
                if c.handle_poll(t, next_request).is_ok() {
                    pending.insert(next_request);
                }
            }
            1 => {
                let body = take(&mut rest);
                let _ = c.handle_post(t, Some(body), op & 0x80 != 0);
            }
            2 => {
                let body = take(&mut rest);
                let frame = match Str::from_utf8(body.clone()) {
                    Ok(s) if op & 0x80 == 0 => Frame::Text(s),
                    _ => Frame::Binary(body),
                };
                c.handle_ws_frame(t, frame);
            }
            3 => {
                let _ = c.handle_upgrade_request(t);
            }
            4 => {
                let body = take(&mut rest);
                if let Ok(s) = Str::from_utf8(body) {
                    c.handle_probe_frame(t, Frame::Text(s));
                }
            }
            5 => c.handle_probe_closed(t),
            6 => c.handle_ws_closed(t, op & 0x80 != 0),
            7 => {
                if let Some(&r) = pending.iter().next() {
                    pending.remove(&r);
                    c.handle_poll_aborted(t, r);
                }
            }
            8 => {
                now += u64::from(op >> 4) * 50;
                let t = Instant::from_millis(now);
                c.handle_timeout(t);
                assert!(c.poll_timeout().is_none_or(|d| d > t), "timer in the past");
            }
            9 => {
                for nsp in std::mem::take(&mut connecting) {
                    if op & 0x80 == 0 {
                        c.accept(t, &nsp, "sock", Some("pid"), []);
                    } else {
                        c.reject(t, &nsp, "no", None);
                    }
                }
            }
            10 => {
                let nsps: Vec<Str> = c.namespaces().cloned().collect();
                for nsp in nsps {
                    let id = ids.next_id();
                    if let Ok(p) = Packet::event_with(nsp.clone(), "e", &(id,)) {
                        let p = p.with_id(id).encode();
                        c.emit_with_ack(t, &p, &nsp, id, Duration::from_millis(100));
                    }
                }
            }
            11 => {
                let nsps: Vec<Str> = c.namespaces().cloned().collect();
                for nsp in nsps {
                    if let Ok(p) = Packet::event_with(nsp.clone(), "v", &(1,)) {
                        c.send(t, &p.encode(), &nsp, op & 0x80 != 0, false);
                    }
                }
            }
            12 => {
                let first = c.namespaces().next().cloned();
                if let Some(nsp) = first {
                    c.disconnect(t, &nsp);
                }
            }
            _ => c.close(t, DisconnectReason::ForcedServerClose),
        }
    }
});
