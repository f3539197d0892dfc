//! Recipe: a per-socket event rate limit, with an error the client sees.
//!
//! Each socket keeps a fixed window in its typed data (`insert_data`): when the window
//! started and how many events arrived in it. An event middleware (`use_event`, Node's
//! `socket.use`) counts every incoming event; past `RATE_LIMIT` events in one window it refuses
//! the event (its handler does not run) and the `on_error` handler tells the client with a
//! `rate-limit` event: `{ message, retryInMs }`. The window starts again with the first event
//! after it ended. The `ping` handler answers `pong` with what it got.
//!
//! ```text
//! cargo run -p ferrio-server --example recipe_rate_limit
//! PORT=0 RATE_LIMIT=5 RATE_WINDOW_MS=1000 cargo run -p ferrio-server --example recipe_rate_limit
//! ```
//!
//! From a `socket.io-client` 4.x: `socket.on("rate-limit", (e) => console.warn(e.message))`,
//! then `socket.emit("ping", 1)` more often than the limit allows.
//!
//! A client that keeps going past the limit could also be disconnected
//! (`socket.disconnect(true)` in the `on_error` handler); and an event that asked for an ack
//! gets none when refused, so a client waiting for one should use a timeout
//! (`socket.timeout(ms).emitWithAck(..)`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferrio_server::{AckSender, Ferrio, RawArgs, Socket};
use serde_json::{json, Value};

/// What the middleware answers for a refused event.
const LIMITED: &str = "rate limit exceeded";

/// The limit: at most `max` events per `window`.
#[derive(Clone, Copy)]
struct Limit {
    max: u32,
    window: Duration,
}

/// One socket's current window (shared by the middleware's calls through the `Arc`).
#[derive(Clone)]
struct Window(Arc<Mutex<WindowState>>);

struct WindowState {
    started: Instant,
    events: u32,
}

impl Window {
    /// Counts one event: `Ok` if it is within the limit, else how long until the window ends.
    fn count(&self, limit: Limit) -> Result<(), Duration> {
        let Ok(mut state) = self.0.lock() else {
            return Ok(());
        };
        let now = Instant::now();
        if now.duration_since(state.started) >= limit.window {
            state.started = now;
            state.events = 0;
        }
        if state.events >= limit.max {
            return Err(limit
                .window
                .saturating_sub(now.duration_since(state.started)));
        }
        state.events += 1;
        Ok(())
    }

    /// How long until the current window ends.
    fn remaining(&self, limit: Limit) -> Duration {
        self.0.lock().map_or(Duration::ZERO, |state| {
            limit.window.saturating_sub(state.started.elapsed())
        })
    }
}

/// The Socket.IO server with the limit on every socket of its main namespace.
fn server(limit: Limit) -> Ferrio {
    let io = Ferrio::builder().build();
    io.of("/").on_connection(move |socket: Socket| async move {
        socket.insert_data(Window(Arc::new(Mutex::new(WindowState {
            started: Instant::now(),
            events: 0,
        }))));
        socket.use_event(
            move |socket: Socket, _event: String, _args: RawArgs| async move {
                match socket.data::<Window>() {
                    Some(window) => window.count(limit).map_err(|_| LIMITED),
                    None => Ok(()),
                }
            },
        );
        socket.on_error(move |socket: Socket, message: String| async move {
            let retry_in = socket
                .data::<Window>()
                .map_or(Duration::ZERO, |w| w.remaining(limit));
            let _ = socket.emit(
                "rate-limit",
                &(json!({ "message": message, "retryInMs": retry_in.as_millis() as u64 }),),
            );
        });
        socket.on(
            "ping",
            |socket: Socket, (value,): (Value,), _: AckSender| async move {
                socket.emit("pong", &(value,))
            },
        );
    });
    io
}

/// A number from the environment, or `default`.
fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let limit = Limit {
        max: u32::try_from(env_or("RATE_LIMIT", 10)).unwrap_or(u32::MAX),
        window: Duration::from_millis(env_or("RATE_WINDOW_MS", 1000)),
    };
    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".into());
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    println!("listening on http://{}", listener.local_addr()?);
    server(limit).serve(listener).await
}
