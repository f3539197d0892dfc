//! A fixed amount of client work, for counting instructions where timings are too noisy: a
//! `Manager` connected over a WebSocket receives 200,000 small events (`event`, the browser
//! benchmark's flood event) or makes 200,000 emit-to-ack round trips (`ack`), each with the
//! next deadline asked for and every output drained, as a driver does after each input.
//! `deferred-event`: the same events with their JSON check left to the driver, as the browser
//! package leaves it to its `JSON.parse` (`ManagerConfig::defer_json_check`).
//!
//! ```sh
//! cargo build --release -p ferrio-proto --example client_count
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/client_count event
//! ```
//! (divide callgrind's "Collected" count by 200,000 for instructions per event or round trip).

use ferrio_proto::engine::client::{Config as EngineConfig, Io, Transport, TransportId};
use ferrio_proto::engine::Frame;
use ferrio_proto::socket::client::{
    EmitOptions, Event, Input, Manager, ManagerConfig, Output, SocketOptions,
};
use ferrio_proto::socket::{Packet, RawJson};
use ferrio_proto::{Instant, Str};

const ROUNDS: u64 = 200_000;

/// Drains the outputs, returning the WebSocket opened (if any) and counting the events.
fn drain(m: &mut Manager, ws: &mut Option<TransportId>, events: &mut u64) {
    let _ = m.poll_timeout();
    while let Some(out) = m.poll_output() {
        match out {
            Output::Io(Io::WsOpen { transport, .. }) => *ws = Some(transport),
            Output::Event(Event::Event { .. } | Event::Ack { .. }) => *events += 1,
            _ => {}
        }
    }
}

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let acks = mode == "ack";
    let mut m = Manager::new(ManagerConfig {
        defer_json_check: mode == "deferred-event",
        engine: EngineConfig {
            transports: vec![Transport::WebSocket],
            ..EngineConfig::default()
        },
        seed: 7,
        ..ManagerConfig::default()
    });
    let (mut ws, mut events) = (None, 0u64);
    let socket = m
        .open_socket(Instant::from_millis(0), "/", SocketOptions::default())
        .expect("open /");
    drain(&mut m, &mut ws, &mut events);
    let Some(transport) = ws else {
        eprintln!("no WebSocket opened");
        std::process::exit(1);
    };
    let frame = |m: &mut Manager, now: u64, text: String| {
        m.handle_input(
            Instant::from_millis(now),
            Input::WsFrame {
                transport,
                frame: Frame::Text(Str::from(text)),
            },
        );
    };
    m.handle_input(Instant::from_millis(0), Input::WsOpen { transport });
    frame(
        &mut m,
        0,
        r#"0{"sid":"e1","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#.into(),
    );
    frame(&mut m, 0, r#"40{"sid":"s1"}"#.into());
    drain(&mut m, &mut ws, &mut events);
    for i in 0..ROUNDS {
        let now = 1 + i / 1000;
        if acks {
            let data = RawJson::parse(format!(r#"["echo",{{"n":{i}}}]"#)).expect("json");
            let options = EmitOptions {
                ack: true,
                ..EmitOptions::default()
            };
            m.emit(
                Instant::from_millis(now),
                socket,
                Packet::event("/", data, vec![]),
                options,
            )
            .expect("emit");
            drain(&mut m, &mut ws, &mut events);
            // The socket's wire ids count from zero.
            frame(&mut m, now, format!(r#"43{i}[{{"n":{i}}}]"#));
        } else {
            frame(
                &mut m,
                now,
                format!(r#"42["flood",{{"from":"abc","n":{i},"text":"hello"}}]"#),
            );
        }
        drain(&mut m, &mut ws, &mut events);
        if i % 20_000 == 0 {
            // The server's ping, so that the heartbeat does not expire.
            frame(&mut m, now, "2".into());
            drain(&mut m, &mut ws, &mut events);
        }
    }
    println!("{events} events or acks");
}
