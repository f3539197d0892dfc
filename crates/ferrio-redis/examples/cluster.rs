//! A cluster node: the end-to-end test server of `ferrio-server` (`examples/e2e`: the bare
//! Engine.IO echo on `/engine.io/`, Socket.IO on `/socket.io/` and `/recovery/` with the standard
//! handlers) with both Socket.IO endpoints joined to a cluster through Redis. Start several side
//! by side, next to Node servers using `@socket.io/redis-adapter` with the same key: a broadcast
//! sent on one reaches the clients of all.
//!
//! ```text
//! cargo run -p ferrio-redis --example cluster -- --port 3001 --redis redis://127.0.0.1:6379/
//! cargo run -p ferrio-redis --example cluster -- --port 3002 --redis redis://127.0.0.1:6379/
//! ```
//!
//! `/socket.io/` uses the channel prefix `socket.io` (the reference's default, `--key` changes
//! it); `/recovery/` uses `<key>-recovery`, so the two endpoints' main namespaces stay apart.
//!
//! The standard handlers' `set-data` stores its value as the socket's shared data
//! ([`Socket::set_shared_data`](ferrio_server::Socket::set_shared_data)): the `data` every node
//! of the cluster sees in `fetch_sockets`, and what connection state recovery gives back.

#[allow(dead_code)]
#[path = "../../ferrio-server/examples/e2e.rs"]
mod e2e;

use ferrio_redis::{RedisAdapter, RedisAdapterConfig};

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let port: u16 = arg(&args, "--port")
        .map(|p| p.parse())
        .transpose()?
        .unwrap_or(3000);
    let redis = arg(&args, "--redis").unwrap_or_else(|| "redis://127.0.0.1:6379/".to_owned());
    let key = arg(&args, "--key").unwrap_or_else(|| "socket.io".to_owned());

    let config = |key: String| RedisAdapterConfig {
        key,
        ..RedisAdapterConfig::default()
    };
    let main = RedisAdapter::with_config(&redis, config(key.clone())).await?;
    let recovery = RedisAdapter::with_config(&redis, config(format!("{key}-recovery"))).await?;
    let endpoints = e2e::build_with(|builder, path| match path {
        "/recovery/" => builder.adapter(recovery.clone()),
        _ => builder.adapter(main.clone()),
    });
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("cluster node listening on http://127.0.0.1:{port} (redis {redis})");
    e2e::serve_endpoints(listener, endpoints).await?;
    Ok(())
}
