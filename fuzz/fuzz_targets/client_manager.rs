//! Arbitrary server behaviour against the client machines (Socket.IO Manager over an Engine.IO
//! client session): any response to its requests, any frame on its WebSockets, failures, time
//! passing, and the application's commands. Nothing may panic; every ack handle (per socket)
//! resolves at most once; no timer is left in the past.
//!
//! Each op is one byte of kind, and for data ops a length byte and that many bytes.

#![no_main]

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use bytes::Bytes;
use ferrio_proto::engine::client::{Io, TransportId};
use ferrio_proto::engine::Frame;
use ferrio_proto::socket::client::{
    Auth, EmitOptions, Event, Manager, ManagerConfig, Output, SocketId, SocketOptions,
};
use ferrio_proto::socket::{Packet, RawJson};
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

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    let mut now = 0u64;
    let mut m = Manager::new(ManagerConfig {
        seed: 7,
        timeout: Some(Duration::from_millis(2_000)),
        ..ManagerConfig::default()
    });
    let mut sockets: Vec<SocketId> = Vec::new();
    let mut gets: Vec<TransportId> = Vec::new();
    let mut posts: Vec<TransportId> = Vec::new();
    let mut websockets: HashSet<TransportId> = HashSet::new();
    let mut resolved: HashMap<(usize, u64), u32> = HashMap::new();
    let mut handed_out: HashSet<(usize, u64)> = HashSet::new();
    m.connect(Instant::from_millis(0));
    loop {
        while let Some(out) = m.poll_output() {
            match out {
                Output::Transport(Io::Get { transport, .. }) => gets.push(transport),
                Output::Transport(Io::Post { transport, .. }) => posts.push(transport),
                Output::Transport(Io::WsOpen { transport, .. }) => {
                    websockets.insert(transport);
                }
                Output::Transport(Io::Close { transport }) => {
                    websockets.remove(&transport);
                    gets.retain(|t| *t != transport);
                    posts.retain(|t| *t != transport);
                }
                Output::Transport(_) => {}
                Output::Event(
                    Event::Ack { socket, ack, .. } | Event::AckError { socket, ack, .. },
                ) => {
                    let key = (socket.index(), ack.as_u64());
                    assert!(handed_out.contains(&key), "unknown ack handle");
                    let n = resolved.entry(key).or_default();
                    *n += 1;
                    assert_eq!(*n, 1, "ack resolved twice");
                }
                Output::Event(Event::AuthNeeded { socket }) => {
                    let _ = m.provide_auth(Instant::from_millis(now), socket, None);
                }
                Output::Event(_) => {}
            }
        }
        let Some((&op, tail)) = rest.split_first() else {
            break;
        };
        rest = tail;
        let t = Instant::from_millis(now);
        match op % 12 {
            0 => {
                let body = take(&mut rest);
                if let Some(tr) = gets.pop() {
                    m.handle_poll_response(t, tr, body);
                }
            }
            1 => {
                if let Some(tr) = posts.pop() {
                    m.handle_post_response(t, tr);
                }
            }
            2 => {
                if let Some(&tr) = websockets.iter().next() {
                    m.handle_ws_open(t, tr);
                }
            }
            3 => {
                let body = take(&mut rest);
                if let Some(&tr) = websockets.iter().next() {
                    let frame = match Str::from_utf8(body.clone()) {
                        Ok(s) if op & 0x80 == 0 => Frame::Text(s),
                        _ => Frame::Binary(body),
                    };
                    m.handle_ws_frame(t, tr, frame);
                }
            }
            4 => {
                if let Some(&tr) = websockets.iter().next() {
                    m.handle_ws_closed(t, tr);
                }
            }
            5 => {
                if let Some(tr) = gets.pop().or_else(|| posts.pop()) {
                    m.handle_transport_error(t, tr, "fuzz");
                }
            }
            6 => {
                now += u64::from(op >> 4) * 250;
                let t = Instant::from_millis(now);
                m.handle_timeout(t);
                assert!(m.poll_timeout().is_none_or(|d| d > t), "timer in the past");
            }
            7 => {
                let nsp = if op & 0x80 == 0 { "/" } else { "/admin" };
                let auth = if op & 0x40 == 0 {
                    Auth::Static(RawJson::parse(r#"{"token":"t"}"#).ok())
                } else {
                    Auth::Callback
                };
                let options = SocketOptions {
                    auth,
                    retries: u32::from(op >> 6 & 1) * 2,
                    ack_timeout: Some(Duration::from_millis(500)),
                };
                if let Ok(s) = m.open_socket(t, nsp, options) {
                    sockets.push(s);
                }
            }
            8 | 9 => {
                if let Some(&s) = sockets.get(usize::from(op >> 4) % sockets.len().max(1)) {
                    let options = EmitOptions {
                        volatile: op & 0x80 != 0,
                        ..EmitOptions::with_ack_timeout(Duration::from_millis(300))
                    };
                    if let Ok(p) = Packet::event_with("/", "e", &(1,)) {
                        let nsp = m.socket_nsp(s).unwrap_or("/").to_owned();
                        if let Ok(Some(ack)) = m.emit(t, s, p.with_nsp(nsp), options) {
                            assert!(
                                handed_out.insert((s.index(), ack.as_u64())),
                                "ack handle reused"
                            );
                        }
                    }
                }
            }
            10 => {
                if let Some(&s) = sockets.first() {
                    let _ = m.disconnect(t, s);
                }
            }
            _ => {
                if let Some(&s) = sockets.last() {
                    let _ = m.connect_socket(t, s);
                }
                m.connect(t);
            }
        }
    }
});
