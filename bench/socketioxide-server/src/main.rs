//! The bench server contract (see `crates/ferrio-server/examples/bench.rs`) implemented with
//! socketioxide 0.18, so that `ferrio-bench` measures it side by side with Ferrio and Node.
//!
//! 127.0.0.1:$PORT (default 3000), path `/socket.io/`, namespace `/`, both transports, max
//! payload 1 MB, default heartbeat, the default multi-threaded tokio runtime
//! (`RUNTIME=current_thread` runs it on one thread instead, to compare it with Ferrio's bench
//! server on the same runtime); logs nothing per message.

use bytes::Bytes;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use socketioxide::extract::{AckSender, Data, SocketRef};
use socketioxide::SocketIo;

/// A room name sent by the client: a string, or any other JSON value written as text.
fn room_name(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

async fn on_connect(socket: SocketRef) {
    socket.on("echo", async |Data::<Value>(arg), ack: AckSender| {
        let _ = ack.send(&arg);
    });
    socket.on("echo_bin", async |Data::<Bytes>(buf), ack: AckSender| {
        let _ = ack.send(&buf);
    });
    socket.on(
        "broadcast",
        async |io: SocketIo, Data::<Value>(payload), ack: AckSender| {
            let _ = io.emit("msg", &payload).await;
            let _ = ack.send(&true);
        },
    );
    socket.on(
        "join",
        async |s: SocketRef, Data::<Value>(room), ack: AckSender| {
            s.join(room_name(&room));
            let _ = ack.send(&true);
        },
    );
    socket.on(
        "to_room",
        async |io: SocketIo, Data::<(Value, Value)>((room, payload)), ack: AckSender| {
            let _ = io.to(room_name(&room)).emit("msg", &payload).await;
            let _ = ack.send(&true);
        },
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut runtime = match std::env::var("RUNTIME").as_deref() {
        Ok("current_thread") => tokio::runtime::Builder::new_current_thread(),
        Ok("multi_thread") | Err(_) => tokio::runtime::Builder::new_multi_thread(),
        Ok(other) => return Err(format!("RUNTIME={other}: current_thread or multi_thread").into()),
    };
    runtime.enable_all().build()?.block_on(serve())
}

async fn serve() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let (svc, io) = SocketIo::builder().max_payload(1_000_000).build_svc();
    io.ns("/", on_connect);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("socketioxide bench server listening on http://127.0.0.1:{port}");
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(_) => {
                // Out of descriptors or an aborted connection: go on accepting.
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let svc = svc.clone();
        tokio::spawn(async move {
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .with_upgrades()
                .await;
        });
    }
}
