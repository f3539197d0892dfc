//! The benchmark server: the server that `ferrio-bench` (crates/ferrio-bench) measures, with
//! the same contract as the Node (`bench/node`) and socketioxide (`bench/socketioxide-server`)
//! servers it is compared with.
//!
//! 127.0.0.1:3000 (`PORT` overrides the port), path `/socket.io/`, namespace `/`, both
//! transports, default heartbeat, `max_http_buffer_size` 1 MB. Nothing is logged per message.
//! It runs on a `current_thread` tokio runtime: on the benchmarks' two cores, shared with the
//! load generator, one thread took less CPU per broadcast delivery and per MiB than a worker
//! per core, and no more per ack (BENCHMARKS.md, "Which runtime on two cores"). `RUNTIME`
//! picks another: `current_thread`, `multi_thread` (a worker per core, tokio's default) or
//! `multi_thread:N` (N workers), so that `ferrio-bench` can compare them interleaved
//! (`--server "mt=env RUNTIME=multi_thread target/release/examples/bench"`). The one thread
//! polls for I/O for up to `SPIN_US` µs (50 by default, `SPIN_US=0` turns it off) after its
//! work before it sleeps, when the last idle gap was shorter than that, the thread is idle most
//! of its time and its CPU is not shared with a busy thread
//! (`ferrio_server::runtime::current_thread_spinning`): one client's messages then find the
//! server awake, not asleep on another CPU (BENCHMARKS.md, "The p50 at one client").
//!
//! | client emits | server does |
//! |---|---|
//! | `echo` (arg, ack) | `ack(arg)` |
//! | `echo_bin` (buffer, ack) | `ack(buffer)`: BINARY_EVENT in, BINARY_ACK out |
//! | `broadcast` (payload[, ack]) | emits `msg` (payload) to every socket of `/`, sender included; then `ack(true)` if asked |
//! | `join` (room, ack) | joins `room`, then `ack(true)` |
//! | `to_room` (room, payload[, ack]) | emits `msg` (payload) to every socket in `room`; then `ack(true)` if asked |
//! | `flood` (count, size[, ack]) | emits `flood` to the sender `count` times, back to back: with `size` 0 the small JSON object `{"text":"hello","from":"abc","n":i}` (i from 0), otherwise one binary argument of `size` bytes; then `ack(count)` if asked (count at most 1000, size at most 1,000,000: a client keeps its floods within the session's queues, 1024 commands and 10 × `max_http_buffer_size` bytes) |
//!
//! WebSocket compression (`permessage-deflate`) is off unless `DEFLATE=1`: then messages of at
//! least 1024 bytes are compressed, without context takeover in either direction (the
//! defaults, as Node's `serverNoContextTakeover`/`clientNoContextTakeover`); with
//! `DEFLATE_TAKEOVER=1` as well, both sides keep their contexts between messages.
//!
//! ```text
//! cargo run --release -p ferrio-server --example bench            # 127.0.0.1:3000
//! PORT=3100 cargo run --release -p ferrio-server --example bench
//! DEFLATE=1 DEFLATE_TAKEOVER=1 cargo run --release -p ferrio-server --example bench
//! RUNTIME=multi_thread cargo run --release -p ferrio-server --example bench
//! ```

use bytes::Bytes;
use std::time::Duration;

use ferrio_server::{runtime, Ferrio, Message, PerMessageDeflate, RawArgs, Socket};
use serde_json::Value;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A room name as JavaScript's `String(room)` writes it.
fn room_name(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => "undefined".to_owned(),
    }
}

/// The arguments from index `from` on, attachments kept.
fn rest(args: &RawArgs, from: usize) -> RawArgs {
    RawArgs::new(
        args.values().iter().skip(from).cloned().collect(),
        args.attachments().to_vec(),
    )
}

/// Whether the environment variable `name` is set to `1`.
fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| v == "1")
}

/// The compression settings `DEFLATE` and `DEFLATE_TAKEOVER` ask for, if any.
fn deflate_settings() -> Option<PerMessageDeflate> {
    if !env_flag("DEFLATE") {
        return None;
    }
    let keep = env_flag("DEFLATE_TAKEOVER");
    Some(
        PerMessageDeflate::new()
            .threshold(1024)
            .server_no_context_takeover(!keep)
            .client_no_context_takeover(!keep),
    )
}

/// Builds the server with the bench handlers on `/`.
pub fn build() -> Ferrio {
    let mut builder = Ferrio::builder()
        .path("/socket.io/")
        .max_http_buffer_size(1_000_000);
    if let Some(settings) = deflate_settings() {
        builder = builder.per_message_deflate(settings);
    }
    let io = builder.build();
    io.of("/").on_connection(|socket: Socket| async move {
        socket.on("echo", |_socket: Socket, msg: Message| async move {
            msg.ack(&msg.raw_args()?)?;
            Ok::<(), BoxError>(())
        });
        socket.on("echo_bin", |_socket: Socket, msg: Message| async move {
            msg.ack(&msg.raw_args()?)?;
            Ok::<(), BoxError>(())
        });
        socket.on("broadcast", |socket: Socket, msg: Message| async move {
            let args = msg.raw_args()?;
            socket.namespace().emit("msg", &args)?;
            msg.ack(&(true,))?;
            Ok::<(), BoxError>(())
        });
        socket.on("join", |socket: Socket, msg: Message| async move {
            let args = msg.raw_args()?;
            socket.join(room_name(args.values().first()));
            msg.ack(&(true,))?;
            Ok::<(), BoxError>(())
        });
        socket.on("flood", |socket: Socket, msg: Message| async move {
            let args = msg.raw_args()?;
            let num = |i: usize| args.values().get(i).and_then(Value::as_u64).unwrap_or(0);
            let (count, size) = (num(0).min(1000), num(1).min(1_000_000) as usize);
            if size == 0 {
                for n in 0..count {
                    let small = serde_json::json!({"text": "hello", "from": "abc", "n": n});
                    socket.emit("flood", &(small,))?;
                }
            } else {
                let payload = Bytes::from(vec![7u8; size]);
                for _ in 0..count {
                    socket.emit("flood", &(payload.clone(),))?;
                }
            }
            msg.ack(&(count,))?;
            Ok::<(), BoxError>(())
        });
        socket.on("to_room", |socket: Socket, msg: Message| async move {
            let args = msg.raw_args()?;
            let room = room_name(args.values().first());
            socket.namespace().to(room).emit("msg", &rest(&args, 1))?;
            msg.ack(&(true,))?;
            Ok::<(), BoxError>(())
        });
    });
    io
}

/// The tokio runtime `RUNTIME` asks for: `current_thread` (the default), `multi_thread` (one
/// worker per core, tokio's default) or `multi_thread:N` (N workers). The one-thread runtime
/// spins for up to `SPIN_US` µs (50 unless set; 0 turns it off) before it sleeps, under
/// `ferrio_server::runtime::current_thread_spinning`'s rule.
fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let choice = std::env::var("RUNTIME").unwrap_or_else(|_| "current_thread".to_owned());
    let spin = spin_us()?;
    let mut builder = match choice.split_once(':') {
        None if choice == "current_thread" => {
            runtime::current_thread_spinning(Duration::from_micros(spin.unwrap_or(50)))
        }
        None if choice == "multi_thread" => tokio::runtime::Builder::new_multi_thread(),
        Some(("multi_thread", n)) => {
            let n = n
                .parse()
                .map_err(|_| std::io::Error::other(format!("RUNTIME={choice}: bad count")))?;
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n);
            b
        }
        _ => {
            return Err(std::io::Error::other(format!(
                "RUNTIME={choice}: current_thread, multi_thread or multi_thread:N"
            )))
        }
    };
    if choice != "current_thread" && spin.is_some_and(|us| us > 0) {
        return Err(std::io::Error::other(
            "SPIN_US needs RUNTIME=current_thread",
        ));
    }
    builder.enable_all().build()
}

/// `SPIN_US`, if set: a number of µs.
fn spin_us() -> std::io::Result<Option<u64>> {
    match std::env::var("SPIN_US") {
        Err(_) => Ok(None),
        Ok(v) => v
            .parse()
            .map(Some)
            .map_err(|_| std::io::Error::other(format!("SPIN_US={v}: a number of µs"))),
    }
}

fn main() -> std::io::Result<()> {
    runtime()?.block_on(async {
        let port: u16 = std::env::var("PORT")
            .ok()
            .and_then(|p| p.parse().ok())
            .unwrap_or(3000);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        println!("ferrio bench server listening on http://127.0.0.1:{port}");
        build().serve(listener).await
    })
}
