//! End-to-end tests of `ferrio-server` through its e2e test server (the example
//! `crates/ferrio-server/examples/e2e.rs`, compiled in here and started on a free port of
//! 127.0.0.1 for each test): raw HTTP and WebSocket requests checking the Engine.IO and
//! Socket.IO behaviour the official compliance suites and the acceptance tests expect, and the
//! real `socket.io-client` under Node.
//!
//! Run `npm ci` in `tests/node` first (for the Node tests).

#[allow(dead_code, clippy::unwrap_used)]
#[path = "../../crates/ferrio-server/examples/e2e.rs"]
mod e2e;

mod server;
