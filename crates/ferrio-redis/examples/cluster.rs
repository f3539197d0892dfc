//! A cluster node: the Socket.IO endpoints of the end-to-end test server of `ferrio-server`
//! (`examples/e2e`, whose standard handler set it reuses) joined to a cluster through Redis, plus
//! handlers that make the cluster's operations observable from a client. Start several side by
//! side, next to Node servers using the same adapter and prefix: a broadcast sent on one reaches
//! the clients of all.
//!
//! ```text
//! cargo run -p ferrio-redis --example cluster -- --port 3001 --redis redis://127.0.0.1:6379/
//! cargo run -p ferrio-redis --example cluster -- --port 3002 --redis redis://127.0.0.1:6379/ --adapter sharded
//! ```
//!
//! Options: `--port P` (default 3000), `--redis URL` (default `redis://127.0.0.1:6379/`),
//! `--adapter classic|sharded|streams` (default: the `CLUSTER_ADAPTER` environment variable, else
//! `classic`), `--key K` (the channel prefix, default `socket.io`). It serves 127.0.0.1:P until
//! SIGTERM or Ctrl-C.
//!
//! | Mode | Adapter |
//! |---|---|
//! | `classic` | [`RedisAdapter`]: `@socket.io/redis-adapter`'s `createAdapter`, key `socket.io` |
//! | `sharded` | [`ShardedRedisAdapter`]: `createShardedAdapter`, channel prefix `socket.io`, dynamic subscriptions |
//! | `streams` | [`StreamsRedisAdapter`]: `@socket.io/redis-streams-adapter`, stream and channel prefix `socket.io`, `maxLen` 10000 |
//!
//! Endpoints (404 elsewhere):
//!
//! - `/socket.io/`: namespaces `/` and `/custom`, the Socket.IO default heartbeat (25 s / 20 s),
//!   a 1000 ms connect timeout, CORS for any origin, no connection state recovery.
//! - `/recovery/`, streams mode only: namespace `/`, connection state recovery with a 5000 ms
//!   window, through a streams adapter of its own (stream and channel prefix
//!   `<key>-recovery`): both endpoints have a namespace `/`, they must not share a stream.
//!
//! Every namespace runs the e2e server's standard handler set, whose `set-data` stores its value
//! as the socket's shared data ([`Socket::set_shared_data`]): the `data` the other nodes see in
//! `fetch_sockets`; `get-data` answers it for a socket recovered from another node too (the
//! data stored there comes back with the session). On top of it, the cluster handlers:
//!
//! | Event from the client | What the node does | Ack |
//! |---|---|---|
//! | `broadcast-with-ack` (timeoutMs, room, ...args) | emits `ask` (...args) with an ack to every other socket of the namespace on every node (`room` null) or to those in `room` | `{"ok", "replies"}`: the first argument of every answer; `ok` false when one did not come in time |
//! | `fetch-sockets` (room) | fetches the namespace's sockets on every node (in `room`, or all) | `[{"id", "rooms", "data"}]` sorted by id, `rooms` sorted without the own id, `data` null when none |
//! | `server-side-emit` (...args) | server-side emit `server-side` (...args) to the other nodes | if asked: none |
//! | `server-side-emit-with-ack` (...args) | server-side emit `server-side-ack` (...args), asking every other node for an answer | `{"ok": true, "replies"}` or `{"ok": false, "replies", "error"}` |
//!
//! And for server-side events from other nodes: `server-side` (...args) is emitted to this node's
//! own sockets of the namespace; `server-side-ack` is answered with `{"sockets": [...]}`, the ids
//! of this node's sockets of the namespace, sorted.

#[allow(dead_code)]
#[path = "../../ferrio-server/examples/e2e.rs"]
mod e2e;

use std::time::Duration;

use bytes::Bytes;
use ferrio_redis::streams::{StreamsRedisAdapter, StreamsRedisAdapterConfig};
use ferrio_redis::{
    RedisAdapter, RedisAdapterConfig, ShardedRedisAdapter, ShardedRedisAdapterConfig,
    SubscriptionMode,
};
use ferrio_server::{
    serve_with_shutdown, Body, Cors, Ferrio, FerrioBuilder, Message, Namespace, RawArgs,
    RecoveryConfig, Socket,
};
use serde_json::{json, Value};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// The cluster adapter of one endpoint.
#[derive(Clone)]
enum ClusterAdapter {
    Classic(RedisAdapter),
    Sharded(ShardedRedisAdapter),
    Streams(StreamsRedisAdapter),
}

impl ClusterAdapter {
    /// Connects the adapter of `mode` with channel prefix (and stream name) `prefix`.
    async fn connect(mode: &str, redis: &str, prefix: &str) -> Result<ClusterAdapter, BoxError> {
        match mode {
            "classic" => Ok(ClusterAdapter::Classic(
                RedisAdapter::with_config(
                    redis,
                    RedisAdapterConfig {
                        key: prefix.to_owned(),
                        ..RedisAdapterConfig::default()
                    },
                )
                .await?,
            )),
            "sharded" => Ok(ClusterAdapter::Sharded(
                ShardedRedisAdapter::with_config(
                    redis,
                    ShardedRedisAdapterConfig {
                        channel_prefix: prefix.to_owned(),
                        subscription_mode: SubscriptionMode::Dynamic,
                        ..ShardedRedisAdapterConfig::default()
                    },
                )
                .await?,
            )),
            "streams" => Ok(ClusterAdapter::Streams(
                StreamsRedisAdapter::with_config(
                    redis,
                    StreamsRedisAdapterConfig {
                        stream_name: prefix.to_owned(),
                        channel_prefix: prefix.to_owned(),
                        ..StreamsRedisAdapterConfig::default()
                    },
                )
                .await?,
            )),
            other => Err(format!("unknown adapter {other:?}: classic, sharded or streams").into()),
        }
    }

    fn apply(&self, builder: FerrioBuilder) -> FerrioBuilder {
        match self {
            ClusterAdapter::Classic(a) => builder.adapter(a.clone()),
            ClusterAdapter::Sharded(a) => builder.adapter(a.clone()),
            ClusterAdapter::Streams(a) => builder.adapter(a.clone()),
        }
    }

    /// Leaves the cluster.
    fn close(&self) {
        match self {
            ClusterAdapter::Classic(a) => a.close(),
            ClusterAdapter::Sharded(a) => a.close(),
            ClusterAdapter::Streams(a) => a.close(),
        }
    }
}

/// The JavaScript `String(room)` of a room argument, or `None` for null (or no argument).
fn room_arg(v: Option<&Value>) -> Option<String> {
    match v {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => Some(other.to_string()),
    }
}

/// The arguments from index `from` on, attachments kept.
fn rest(args: &RawArgs, from: usize) -> RawArgs {
    RawArgs::new(
        args.values().iter().skip(from).cloned().collect(),
        args.attachments().to_vec(),
    )
}

/// A socket's data as the cluster handlers report it: `null` when none was stored (Node's
/// default `{}` means none too).
fn reported_data(data: &Value) -> Value {
    match data {
        Value::Object(o) if o.is_empty() => Value::Null,
        other => other.clone(),
    }
}

/// The cluster handlers of one namespace (the standard set comes from the e2e server).
fn cluster_handlers(ns: &Namespace) {
    ns.on_connection(|socket: Socket| async move {
        socket.on(
            "broadcast-with-ack",
            |socket: Socket, msg: Message| async move {
                let args = msg.raw_args()?;
                let timeout = args.values().first().and_then(Value::as_f64).unwrap_or(0.0);
                let operator = match room_arg(args.values().get(1)) {
                    Some(room) => socket.to(room),
                    None => socket.broadcast(),
                };
                let answers = operator
                    .timeout(Duration::from_millis(timeout.max(0.0) as u64))
                    .emit_with_ack("ask", &rest(&args, 2));
                let ack = msg.ack_sender();
                tokio::spawn(async move {
                    let (ok, replies) = match answers.await {
                        Ok(answers) => {
                            let mut ok = true;
                            let mut replies = Vec::new();
                            for answer in answers {
                                match answer.map(|a| a.args::<Vec<Value>>()) {
                                    Ok(Ok(values)) => replies
                                        .push(values.into_iter().next().unwrap_or(Value::Null)),
                                    _ => ok = false,
                                }
                            }
                            (ok, replies)
                        }
                        Err(_) => (false, Vec::new()),
                    };
                    let _ = ack.send(&(json!({"ok": ok, "replies": replies}),));
                });
                Ok::<(), BoxError>(())
            },
        );
        socket.on("fetch-sockets", |socket: Socket, msg: Message| async move {
            let args = msg.raw_args()?;
            let ns = socket.namespace();
            let fetched = match room_arg(args.values().first()) {
                Some(room) => ns.in_(room).fetch_sockets(),
                None => ns.to(Vec::<String>::new()).fetch_sockets(),
            };
            let ack = msg.ack_sender();
            tokio::spawn(async move {
                let answer = match fetched.await {
                    Ok(sockets) => {
                        let mut list: Vec<(String, Value)> = sockets
                            .iter()
                            .map(|s| {
                                let mut rooms: Vec<&String> =
                                    s.rooms().iter().filter(|r| *r != s.id()).collect();
                                rooms.sort();
                                rooms.dedup();
                                let entry = json!({
                                    "id": s.id(),
                                    "rooms": rooms,
                                    "data": reported_data(s.data()),
                                });
                                (s.id().to_owned(), entry)
                            })
                            .collect();
                        list.sort_by(|a, b| a.0.cmp(&b.0));
                        Value::Array(list.into_iter().map(|(_, v)| v).collect())
                    }
                    Err(e) => json!({"error": e.to_string()}),
                };
                let _ = ack.send(&(answer,));
            });
            Ok::<(), BoxError>(())
        });
        socket.on(
            "server-side-emit",
            |socket: Socket, msg: Message| async move {
                let args = msg.raw_args()?;
                socket
                    .namespace()
                    .server_side_emit("server-side", args.values())?;
                if msg.ack_requested() {
                    msg.ack(&())?;
                }
                Ok::<(), BoxError>(())
            },
        );
        socket.on(
            "server-side-emit-with-ack",
            |socket: Socket, msg: Message| async move {
                let args = msg.raw_args()?;
                let answers = socket
                    .namespace()
                    .server_side_emit_with_ack("server-side-ack", args.values());
                let ack = msg.ack_sender();
                tokio::spawn(async move {
                    let answer = match answers.await {
                        Ok(replies) => json!({"ok": true, "replies": replies}),
                        Err(e) => json!({
                            "ok": false,
                            "replies": e.responses,
                            "error": e.to_string(),
                        }),
                    };
                    let _ = ack.send(&(answer,));
                });
                Ok::<(), BoxError>(())
            },
        );
    });

    let local = ns.clone();
    ns.on_server_event("server-side", move |args, _ack| {
        let local = local.clone();
        async move {
            let _ = local.local().emit("server-side", &args);
        }
    });
    let local = ns.clone();
    ns.on_server_event("server-side-ack", move |_args, ack| {
        let mut sockets: Vec<String> = local.sockets().iter().map(|s| s.id().to_owned()).collect();
        sockets.sort();
        async move {
            let _ = ack.send(&json!({"sockets": sockets}));
        }
    });
}

fn all_handlers(ns: &Namespace) {
    e2e::standard_handlers(ns);
    cluster_handlers(ns);
}

/// `/socket.io/`: the compliance profile's options but the default heartbeat, namespaces `/`
/// and `/custom`.
fn main_endpoint(adapter: &ClusterAdapter) -> Ferrio {
    let io = adapter
        .apply(Ferrio::builder())
        .path("/socket.io/")
        .max_http_buffer_size(1_000_000)
        .connect_timeout(Duration::from_millis(1000))
        .cors(Cors::any())
        .yield_after_flush(true)
        .build();
    all_handlers(&io.of("/"));
    all_handlers(&io.of("/custom"));
    io
}

/// `/recovery/`: the recovery profile, namespace `/`.
fn recovery_endpoint(adapter: &ClusterAdapter) -> Ferrio {
    let io = adapter
        .apply(Ferrio::builder())
        .path("/recovery/")
        .max_http_buffer_size(1_000_000)
        .connection_state_recovery(RecoveryConfig {
            max_disconnection_duration: Duration::from_millis(5000),
            skip_middlewares: true,
            ..RecoveryConfig::default()
        })
        .yield_after_flush(true)
        .build();
    all_handlers(&io.of("/"));
    io
}

/// Resolves on SIGTERM (or Ctrl-C).
async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("cluster: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().collect();
    let port: u16 = arg(&args, "--port")
        .map(|p| p.parse())
        .transpose()?
        .unwrap_or(3000);
    let redis = arg(&args, "--redis").unwrap_or_else(|| "redis://127.0.0.1:6379/".to_owned());
    let key = arg(&args, "--key").unwrap_or_else(|| "socket.io".to_owned());
    let mode = arg(&args, "--adapter")
        .or_else(|| std::env::var("CLUSTER_ADAPTER").ok())
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| "classic".to_owned());

    let main_adapter = ClusterAdapter::connect(&mode, &redis, &key).await?;
    let compliance = main_endpoint(&main_adapter);
    let mut adapters = vec![main_adapter];
    let recovery = if mode == "streams" {
        let adapter = ClusterAdapter::connect(&mode, &redis, &format!("{key}-recovery")).await?;
        let io = recovery_endpoint(&adapter);
        adapters.push(adapter);
        Some(io)
    } else {
        None
    };

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("cluster node listening on http://127.0.0.1:{port} ({mode} adapter, redis {redis})");
    serve_with_shutdown(
        listener,
        move |req| {
            let compliance = compliance.clone();
            let recovery = recovery.clone();
            async move {
                let path = req.uri().path();
                if compliance.matches(path) {
                    return compliance.handle(req).await;
                }
                if let Some(recovery) = recovery.filter(|r| r.matches(path)) {
                    return recovery.handle(req).await;
                }
                let mut res = http::Response::new(Body::new(Bytes::new()));
                *res.status_mut() = http::StatusCode::NOT_FOUND;
                res
            }
        },
        terminated(),
    )
    .await?;
    for adapter in &adapters {
        adapter.close();
    }
    Ok(())
}
