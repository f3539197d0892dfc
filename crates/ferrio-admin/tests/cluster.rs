//! `all_sockets` over a cluster adapter, with Ferrio's own client as the UI: the namespaces are
//! fetched at once (as the reference's `Promise.all` does), so a cluster slow to answer delays
//! the list once rather than once per namespace, and another node's socket is listed with the
//! client id and transport of its `data._admin`. The whole mixed cluster (a Node node with
//! `instrument()` behind Redis) is tested in the `ferrio-tests` crate
//! (`tests/tests/admin_cluster.rs`).

use std::sync::Arc;
use std::time::Duration;

use ferrio_admin::{instrument, AdminOptions, Auth};
use ferrio_client::{AckSender, Transport};
use ferrio_proto::rooms::BroadcastOptions;
use ferrio_proto::socket::Packet;
use ferrio_proto::Str;
use ferrio_server::{
    AckError, Adapter, AdapterError, BoxFuture, Ferrio, LocalNamespace, NamespaceAdapter,
    ServerSideEmitError, SocketInfo,
};
use serde_json::{json, Value};
use tokio::sync::{mpsc, Barrier};

/// The namespaces of the server under test.
const NAMESPACES: [&str; 4] = ["/", "/admin", "/a", "/b"];

/// A cluster whose other node answers a `fetch_sockets` of a namespace only once every
/// namespace has been asked: fetching them one after the other never ends.
struct Cluster {
    asked: Arc<Barrier>,
}

impl Adapter for Cluster {
    fn namespace(&self, local: LocalNamespace) -> Arc<dyn NamespaceAdapter> {
        Arc::new(ClusterNamespace {
            name: local.name().to_string(),
            asked: self.asked.clone(),
        })
    }
}

struct ClusterNamespace {
    name: String,
    asked: Arc<Barrier>,
}

impl NamespaceAdapter for ClusterNamespace {
    fn broadcast(&self, _packet: &Packet, _opts: &BroadcastOptions) {}

    fn broadcast_with_ack(
        &self,
        _packet: &Packet,
        _opts: &BroadcastOptions,
        _timeout: Duration,
    ) -> BoxFuture<Result<Vec<Result<Packet, AckError>>, AdapterError>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    fn server_count(&self) -> BoxFuture<Result<usize, AdapterError>> {
        Box::pin(async { Ok(2) })
    }

    fn fetch_sockets(
        &self,
        _opts: &BroadcastOptions,
    ) -> BoxFuture<Result<Vec<SocketInfo>, AdapterError>> {
        let asked = self.asked.clone();
        let remote = (self.name == "/").then(|| SocketInfo {
            id: "remote-socket".into(),
            handshake: json!({"address": "10.0.0.2", "headers": {}}),
            rooms: vec!["remote-socket".into()],
            data: json!({
                "user": "ann",
                "_admin": {"clientId": "abcdefghijkl", "transport": "polling"},
            }),
        });
        Box::pin(async move {
            asked.wait().await;
            Ok(remote.into_iter().collect())
        })
    }

    fn sockets_join(&self, _opts: &BroadcastOptions, _rooms: &[Str]) {}

    fn sockets_leave(&self, _opts: &BroadcastOptions, _rooms: &[Str]) {}

    fn disconnect_sockets(&self, _opts: &BroadcastOptions, _close: bool) {}

    fn server_side_emit(&self, _data: Vec<Value>) {}

    fn server_side_emit_with_ack(
        &self,
        _data: Vec<Value>,
    ) -> BoxFuture<Result<Vec<Value>, ServerSideEmitError>> {
        Box::pin(async { Ok(Vec::new()) })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_sockets_asks_every_namespace_at_once_and_reads_remote_admin_data() {
    let io = Ferrio::builder()
        .adapter(Cluster {
            asked: Arc::new(Barrier::new(NAMESPACES.len())),
        })
        .build();
    for nsp in NAMESPACES {
        io.of(nsp);
    }
    let _admin = instrument(&io, AdminOptions::new(Auth::None)).expect("instrumented");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(io.clone().serve(listener));

    let (tx, mut lists) = mpsc::unbounded_channel();
    let _ui = ferrio_client::io(&format!("{url}/admin"))
        .transports(&[Transport::WebSocket])
        .on(
            "all_sockets",
            move |_s: ferrio_client::Socket, (list,): (Value,), _ack: AckSender| {
                let _ = tx.send(list);
                async {}
            },
        )
        .connect()
        .await
        .expect("connected");
    let list = tokio::time::timeout(Duration::from_secs(10), lists.recv())
        .await
        .expect("all_sockets: the namespaces were not all asked at once")
        .expect("all_sockets");
    let remote = list
        .as_array()
        .expect("a list")
        .iter()
        .find(|s| s["id"] == "remote-socket")
        .unwrap_or_else(|| panic!("the remote socket is not listed: {list:#}"));
    assert_eq!(remote["clientId"], "abcdefghijkl");
    assert_eq!(remote["transport"], "polling");
    assert_eq!(remote["nsp"], "/");
    assert_eq!(remote["data"], json!({"user": "ann"}));
    assert_eq!(remote["handshake"]["address"], "10.0.0.2");
}
