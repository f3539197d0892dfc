//! The two Engine.IO session machines alone, each fed arbitrary input sequences: the server
//! `Session` (polls, posts, WebSocket and probe frames, closes, time) and the client `Session`
//! (any responses to its requests, any frames, failures, time). Nothing may panic; the server
//! never has two GETs pending nor answers one that is not; no timer is left in the past.
//!
//! The first byte picks the machine (and the server's transport and protocol); then each op is
//! one byte of kind, and for data ops a length byte and that many bytes.

#![no_main]

use std::collections::HashSet;
use std::time::Duration;

use bytes::Bytes;
use ferrio_proto::engine::client::{self, Io, TransportId};
use ferrio_proto::engine::server::{self, Output, Transport};
use ferrio_proto::engine::{Frame, Protocol};
use ferrio_proto::{Instant, Str};
use libfuzzer_sys::fuzz_target;

fn take(rest: &mut &[u8]) -> Bytes {
    let Some((&len, tail)) = rest.split_first() else {
        return Bytes::new();
    };
    let n = (len as usize).min(tail.len());
    let (d, tail) = tail.split_at(n);
    *rest = tail;
    Bytes::copy_from_slice(d)
}

fn frame(data: Bytes, binary: bool) -> Frame {
    match Str::from_utf8(data.clone()) {
        Ok(s) if !binary => Frame::Text(s),
        _ => Frame::Binary(data),
    }
}

fn server_session(first: u8, mut rest: &[u8]) {
    let transport = if first & 2 == 0 {
        Transport::Polling
    } else {
        Transport::WebSocket
    };
    let protocol = if first & 4 == 0 {
        Protocol::V4
    } else {
        Protocol::V3
    };
    let mut s = server::Session::new(
        Instant::from_millis(0),
        "sid".into(),
        protocol,
        transport,
        server::Config {
            ping_interval: Duration::from_millis(300),
            ping_timeout: Duration::from_millis(200),
            max_payload: 128,
            max_buffered_bytes: 2048,
            ..server::Config::default()
        },
    );
    let (mut now, mut next, mut pending, mut closed) = (0u64, 0u64, HashSet::new(), false);
    loop {
        while let Some(out) = s.poll_output() {
            assert!(!closed, "output after Closed");
            match out {
                Output::PollResponse { request, .. } => assert!(pending.remove(&request)),
                Output::Closed(_) => closed = true,
                _ => {}
            }
        }
        assert!(pending.len() <= 1);
        assert!(s.buffered_bytes() <= 2048 + 256);
        let Some((&op, tail)) = rest.split_first() else {
            break;
        };
        rest = tail;
        let t = Instant::from_millis(now);
        match op % 11 {
            0 => {
                next += 1;
                if s.handle_poll(t, next).is_ok() {
                    pending.insert(next);
                }
            }
            1 => {
                let body = take(&mut rest);
                let _ = s.handle_post(t, Some(body), op & 0x80 != 0);
            }
            2 => s.handle_ws_frame(t, frame(take(&mut rest), op & 0x80 != 0)),
            3 => {
                let _ = s.handle_upgrade_request(t);
            }
            4 => s.handle_probe_frame(t, frame(take(&mut rest), op & 0x80 != 0)),
            5 => s.handle_probe_closed(t),
            6 => s.handle_ws_closed(t, op & 0x80 != 0),
            7 => {
                if let Some(&r) = pending.iter().next() {
                    pending.remove(&r);
                    s.handle_poll_aborted(t, r);
                }
            }
            8 => {
                now += u64::from(op >> 4) * 60;
                let t = Instant::from_millis(now);
                s.handle_timeout(t);
                assert!(s.poll_timeout().is_none_or(|d| d > t), "timer in the past");
            }
            9 => {
                let data = take(&mut rest);
                s.send(t, [frame(data, op & 0x80 != 0)], op & 0x40 != 0, false);
            }
            _ => s.close(t),
        }
    }
}

fn client_session(mut rest: &[u8]) {
    let mut s = client::Session::new(client::Config::default());
    s.open();
    let (mut now, mut gets, mut posts, mut sockets): (
        u64,
        Vec<TransportId>,
        Vec<TransportId>,
        Vec<TransportId>,
    ) = (0, Vec::new(), Vec::new(), Vec::new());
    loop {
        while let Some(out) = s.poll_output() {
            match out {
                client::Output::Io(Io::Get { transport, .. }) => gets.push(transport),
                client::Output::Io(Io::Post { transport, .. }) => posts.push(transport),
                client::Output::Io(Io::WsOpen { transport, .. }) => sockets.push(transport),
                client::Output::Io(Io::Close { transport }) => {
                    gets.retain(|t| *t != transport);
                    posts.retain(|t| *t != transport);
                    sockets.retain(|t| *t != transport);
                }
                _ => {}
            }
        }
        let Some((&op, tail)) = rest.split_first() else {
            break;
        };
        rest = tail;
        let t = Instant::from_millis(now);
        match op % 9 {
            0 => {
                let body = take(&mut rest);
                if let Some(tr) = gets.pop() {
                    s.handle_poll_response(t, tr, body);
                }
            }
            1 => {
                if let Some(tr) = posts.pop() {
                    s.handle_post_response(t, tr);
                }
            }
            2 => {
                if let Some(&tr) = sockets.last() {
                    s.handle_ws_open(t, tr);
                }
            }
            3 => {
                let data = take(&mut rest);
                if let Some(&tr) = sockets.last() {
                    s.handle_ws_frame(t, tr, frame(data, op & 0x80 != 0));
                }
            }
            4 => {
                if let Some(tr) = sockets.pop() {
                    s.handle_ws_closed(t, tr);
                }
            }
            5 => {
                if let Some(tr) = gets.pop().or_else(|| posts.pop()) {
                    s.handle_transport_error(t, tr, "fuzz");
                }
            }
            6 => {
                now += u64::from(op >> 4) * 500;
                let t = Instant::from_millis(now);
                s.handle_timeout(t);
                assert!(s.poll_timeout().is_none_or(|d| d > t), "timer in the past");
            }
            7 => {
                let data = take(&mut rest);
                let _ = s.send(t, [frame(data, op & 0x80 != 0)], false);
            }
            _ => {
                if op & 0x80 == 0 {
                    s.close();
                } else {
                    s.open();
                }
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    if first & 1 == 0 {
        server_session(first, rest);
    } else {
        client_session(rest);
    }
});
