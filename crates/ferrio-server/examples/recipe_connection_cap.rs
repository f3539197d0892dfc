//! Recipe: at most N clients connected at once.
//!
//! The engine's `allow_request` hook decides on every handshake request (the first request of
//! a client, polling or WebSocket) before a session exists. It reads the server's count of
//! open Engine.IO sessions (`session_count()`, Node's `io.engine.clientsCount`) and refuses the
//! handshake once `MAX_CLIENTS` are open: the client gets HTTP 403 with
//! `{"code":4,"message":"server is full"}` (its `connect_error`: the polling transport reads that
//! body, a WebSocket client sees only the status), and no session is made for
//! it, so a refused client costs nothing afterwards. When a client leaves, the next handshake
//! gets its place.
//!
//! The cap is soft by the handshakes that are decided at the same moment: each sees the count
//! before the others' sessions exist, so a burst can pass it by the burst's size at most.
//!
//! ```text
//! cargo run -p ferrio-server --example recipe_connection_cap
//! PORT=0 MAX_CLIENTS=2 cargo run -p ferrio-server --example recipe_connection_cap
//! ```
//!
//! From a `socket.io-client` 4.x: past the cap, `socket.on("connect_error", ...)` fires (the
//! client's reconnection, if on, tries again later).

use std::sync::{Arc, OnceLock};

use ferrio_server::{Ferrio, Socket};

/// The server, refusing handshakes while `max_clients` sessions are open.
fn server(max_clients: usize) -> Ferrio {
    // The hook is given to the builder, before the server exists: it finds the server here.
    let this: Arc<OnceLock<Ferrio>> = Arc::new(OnceLock::new());
    let hook = this.clone();
    let io = Ferrio::builder()
        .allow_request(move |_req: http::Request<()>| {
            let open = hook.get().map_or(0, Ferrio::session_count);
            async move {
                if open >= max_clients {
                    Err("server is full".to_owned())
                } else {
                    Ok(())
                }
            }
        })
        .build();
    // The server keeps its hook, the hook this handle: neither is ever dropped, as a server
    // that runs until the process ends.
    let _ = this.set(io.clone());
    io.of("/").on_connection(|socket: Socket| async move {
        let _ = socket.emit("welcome", &(socket.id(),));
    });
    io
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let max_clients = std::env::var("MAX_CLIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".into());
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    println!("listening on http://{}", listener.local_addr()?);
    server(max_clients).serve(listener).await
}
