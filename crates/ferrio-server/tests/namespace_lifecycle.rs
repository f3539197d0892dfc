//! Namespaces coming and going, and the server's end: dynamic namespaces decided with the
//! CONNECT's auth and the handshake (asynchronously, without holding up the session's other
//! namespaces), child namespaces removed once empty (`cleanup_empty_child_namespaces`), the
//! `new_namespace` handlers, a dynamic parent's emits reaching its children, and `close()`.

mod common;

use bytes::Bytes;
use common::{http as raw_http, patiently, serve, RawWs};
use ferrio_server::{AckSender, DisconnectReason, Ferrio, Socket};
use http_body_util::{BodyExt, Full};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

/// A long-polling client talking to `io.handle` directly, with headers of its choosing on
/// every request.
struct Client {
    io: Ferrio,
    sid: String,
    headers: Vec<(&'static str, &'static str)>,
}

async fn request(
    io: &Ferrio,
    method: &str,
    uri: &str,
    headers: &[(&'static str, &'static str)],
    body: &str,
) -> (u16, String) {
    let mut req = http::Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let req = req
        .body(Full::new(Bytes::from(body.to_owned())))
        .expect("request");
    let res = patiently("an answer", io.handle(req)).await;
    let status = res.status().as_u16();
    let body = res.into_body().collect().await.expect("body").to_bytes();
    (status, String::from_utf8(body.to_vec()).expect("utf-8"))
}

impl Client {
    async fn open(io: &Ferrio, headers: Vec<(&'static str, &'static str)>) -> Client {
        let (status, body) = request(
            io,
            "GET",
            "/socket.io/?EIO=4&transport=polling",
            &headers,
            "",
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let open: Value =
            serde_json::from_str(body.strip_prefix('0').expect("open packet")).expect("open JSON");
        Client {
            io: io.clone(),
            sid: open["sid"].as_str().expect("sid").to_owned(),
            headers,
        }
    }

    fn uri(&self) -> String {
        format!("/socket.io/?EIO=4&transport=polling&sid={}", self.sid)
    }

    async fn post(&self, packet: &str) {
        let (status, body) = request(&self.io, "POST", &self.uri(), &self.headers, packet).await;
        assert_eq!((status, body.as_str()), (200, "ok"));
    }

    /// The next packets the server has for this client.
    async fn get(&self) -> Vec<String> {
        let (status, body) = request(&self.io, "GET", &self.uri(), &self.headers, "").await;
        assert_eq!(status, 200, "{body}");
        body.split('\u{1e}').map(str::to_owned).collect()
    }

    /// The next packet (one GET may bring several: they are kept in `pending`).
    async fn next(&self, pending: &mut Vec<String>) -> String {
        while pending.is_empty() {
            *pending = self.get().await;
            pending.retain(|p| p != "2");
        }
        pending.remove(0)
    }
}

/// The namespace a matcher admits only with a token in the auth and an `x-tenant` header.
fn tenant_server() -> Ferrio {
    let io = Ferrio::builder().build();
    io.of_dynamic_with(|name, auth, handshake| async move {
        name.starts_with("/tenant-")
            && auth.get("token").and_then(Value::as_str).is_some()
            && handshake.headers().contains_key("x-tenant")
    })
    .on_connection(|socket: Socket| async move {
        let tenant = socket
            .handshake()
            .headers()
            .get("x-tenant")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let _ = socket.emit("welcome", &(socket.nsp(), tenant));
    });
    io
}

#[tokio::test]
async fn a_connect_matcher_sees_the_auth_and_the_handshake() {
    let io = tenant_server();

    let admitted = Client::open(&io, vec![("x-tenant", "acme")]).await;
    let mut pending = Vec::new();
    admitted.post(r#"40/tenant-1,{"token":"abc"}"#).await;
    let accept = admitted.next(&mut pending).await;
    assert!(accept.starts_with("40/tenant-1,{\"sid\":"), "{accept}");
    assert_eq!(
        admitted.next(&mut pending).await,
        r#"42/tenant-1,["welcome","/tenant-1","acme"]"#
    );

    // The same client without a token: refused as the reference refuses an unknown name.
    admitted.post(r#"40/tenant-2,{}"#).await;
    assert_eq!(
        admitted.next(&mut pending).await,
        r#"44/tenant-2,{"message":"Invalid namespace"}"#
    );

    // A token, but no header: refused too.
    let headless = Client::open(&io, vec![]).await;
    let mut pending = Vec::new();
    headless.post(r#"40/tenant-3,{"token":"abc"}"#).await;
    assert_eq!(
        headless.next(&mut pending).await,
        r#"44/tenant-3,{"message":"Invalid namespace"}"#
    );
    // A name no matcher accepts.
    headless.post(r#"40/other,{"token":"abc"}"#).await;
    assert_eq!(
        headless.next(&mut pending).await,
        r#"44/other,{"message":"Invalid namespace"}"#
    );
    // A namespace that exists is joined without asking the matcher (as the reference does).
    headless.post(r#"40/tenant-1,{}"#).await;
    let accept = headless.next(&mut pending).await;
    assert!(accept.starts_with("40/tenant-1,{\"sid\":"), "{accept}");
}

#[tokio::test]
async fn an_awaiting_matcher_does_not_hold_up_the_other_namespaces() {
    let io = Ferrio::builder().build();
    let (gate_tx, gate_rx) = oneshot::channel::<bool>();
    let gate = std::sync::Mutex::new(Some(gate_rx));
    io.of_dynamic_with(move |name, _auth, _handshake| {
        let gate = gate.lock().expect("gate").take();
        async move {
            match gate {
                Some(gate) => name == "/slow" && gate.await.unwrap_or(false),
                None => false,
            }
        }
    });
    io.of("/").on_connection(|socket: Socket| async move {
        socket.on("ping", |socket: Socket, (n,): (u32,), _ack: AckSender| async move {
            socket.emit("pong", &(n,))
        });
    });

    let client = Client::open(&io, vec![]).await;
    let mut pending = Vec::new();
    client.post("40/slow,").await;
    client.post("40").await;
    // The main namespace answers while the matcher of `/slow` still waits.
    let accept = client.next(&mut pending).await;
    assert!(accept.starts_with("40{\"sid\":"), "{accept}");
    client.post(r#"42["ping",7]"#).await;
    assert_eq!(client.next(&mut pending).await, r#"42["pong",7]"#);

    gate_tx.send(true).expect("the matcher waits");
    let accept = client.next(&mut pending).await;
    assert!(accept.starts_with("40/slow,{\"sid\":"), "{accept}");
}

/// A server with dynamic `/room-*` namespaces; `new_namespace` reports every name created.
fn rooms_server(cleanup: bool) -> (Ferrio, mpsc::UnboundedReceiver<String>) {
    let io = Ferrio::builder()
        .cleanup_empty_child_namespaces(cleanup)
        .build();
    let (tx, created) = mpsc::unbounded_channel();
    io.on_new_namespace(move |ns| {
        let _ = tx.send(ns.name().to_owned());
    });
    io.of_dynamic(|name| name.starts_with("/room-"));
    (io, created)
}

async fn join(client: &Client, pending: &mut Vec<String>, nsp: &str) {
    client.post(&format!("40{nsp},")).await;
    let accept = client.next(pending).await;
    assert!(accept.starts_with(&format!("40{nsp},")), "{accept}");
}

#[tokio::test]
async fn an_empty_child_is_removed_and_created_again() {
    let (io, mut created) = rooms_server(true);
    let a = Client::open(&io, vec![]).await;
    let b = Client::open(&io, vec![]).await;
    let (mut pa, mut pb) = (Vec::new(), Vec::new());

    join(&a, &mut pa, "/room-1").await;
    assert_eq!(
        patiently("new_namespace", created.recv()).await.as_deref(),
        Some("/room-1")
    );
    join(&b, &mut pb, "/room-1").await;

    // One socket leaves: the other keeps the namespace alive.
    a.post("41/room-1,").await;
    join(&a, &mut pa, "/room-2").await;
    assert_eq!(
        patiently("new_namespace", created.recv()).await.as_deref(),
        Some("/room-2")
    );

    // The last one leaves: the next CONNECT creates `/room-1` anew.
    b.post("41/room-1,").await;
    // Its socket left once the namespace answers a CONNECT that comes after the DISCONNECT.
    join(&b, &mut pb, "/room-3").await;
    assert_eq!(
        patiently("new_namespace", created.recv()).await.as_deref(),
        Some("/room-3")
    );
    join(&a, &mut pa, "/room-1").await;
    assert_eq!(
        patiently("new_namespace", created.recv()).await.as_deref(),
        Some("/room-1"),
        "created again through the matcher"
    );
}

#[tokio::test]
async fn without_cleanup_an_empty_child_stays() {
    let (io, mut created) = rooms_server(false);
    let a = Client::open(&io, vec![]).await;
    let mut pa = Vec::new();
    join(&a, &mut pa, "/room-1").await;
    assert_eq!(
        patiently("new_namespace", created.recv()).await.as_deref(),
        Some("/room-1")
    );
    a.post("41/room-1,").await;
    join(&a, &mut pa, "/room-2").await;
    assert_eq!(
        patiently("new_namespace", created.recv()).await.as_deref(),
        Some("/room-2")
    );
    join(&a, &mut pa, "/room-1").await;
    join(&a, &mut pa, "/room-3").await;
    assert_eq!(
        patiently("new_namespace", created.recv()).await.as_deref(),
        Some("/room-3"),
        "`/room-1` was not created again"
    );
}

#[tokio::test]
async fn new_namespace_reports_static_namespaces_once() {
    let io = Ferrio::builder().build();
    let (tx, mut created) = mpsc::unbounded_channel();
    io.on_new_namespace(move |ns| {
        // A place to set the namespace up before anyone joins it.
        ns.on_connection(|socket: Socket| async move {
            let _ = socket.emit("set-up", &());
        });
        let _ = tx.send(ns.name().to_owned());
    });
    io.of("/"); // made by the builder, before the handler
    io.of("/static");
    io.of("static"); // the same namespace
    io.of("/other");
    assert_eq!(created.recv().await.as_deref(), Some("/static"));
    assert_eq!(created.recv().await.as_deref(), Some("/other"));
    assert!(created.try_recv().is_err());

    let client = Client::open(&io, vec![]).await;
    let mut pending = Vec::new();
    join(&client, &mut pending, "/static").await;
    assert_eq!(client.next(&mut pending).await, r#"42/static,["set-up"]"#);
}

#[tokio::test]
async fn close_ends_every_session_before_it_returns() {
    let io = Ferrio::builder().build();
    let (tx, mut reasons) = mpsc::unbounded_channel();
    io.of("/").on_connection(move |socket: Socket| {
        let tx = tx.clone();
        async move {
            socket.on_disconnecting(move |socket, disconnection| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send((socket.id().to_owned(), disconnection.reason()));
                }
            });
        }
    });
    let addr = serve(io.clone()).await;
    let mut ws = Vec::new();
    for _ in 0..3 {
        let mut client = RawWs::open(addr).await;
        client.send("40").await;
        let accept = client.recv().await;
        assert!(accept.starts_with("40{"), "{accept}");
        ws.push(client);
    }
    // A polling client, with a long poll waiting when the server closes.
    let (status, body) = raw_http(addr, "GET", "/socket.io/?EIO=4&transport=polling", b"").await;
    assert_eq!(status, 200);
    let open: Value = serde_json::from_slice(&body[1..]).expect("open JSON");
    let path = format!(
        "/socket.io/?EIO=4&transport=polling&sid={}",
        open["sid"].as_str().expect("sid")
    );
    assert_eq!(
        raw_http(addr, "POST", &path, b"40").await,
        (200, b"ok".to_vec())
    );
    let (status, body) = raw_http(addr, "GET", &path, b"").await;
    assert_eq!(status, 200);
    assert!(
        body.starts_with(b"40{"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    let waiting = tokio::spawn(async move { raw_http(addr, "GET", &path, b"").await.0 });
    assert_eq!(io.session_count(), 4);

    patiently("close()", io.close()).await;
    assert_eq!(
        io.session_count(),
        0,
        "every session ended before close() returned"
    );
    assert_eq!(
        patiently("the long poll", waiting).await.expect("task"),
        200
    );
    for _ in 0..4 {
        let (_, reason) = patiently("a disconnection", reasons.recv())
            .await
            .expect("a reason");
        assert_eq!(reason, DisconnectReason::ServerShuttingDown);
    }

    // New sessions are refused, polling and WebSocket alike.
    let (status, body) = raw_http(addr, "GET", "/socket.io/?EIO=4&transport=polling", b"").await;
    assert_eq!(status, 503);
    assert_eq!(body, br#"{"code":3,"message":"Server shutting down"}"#);
    let (status, _) = raw_http(addr, "GET", "/socket.io/?EIO=4&transport=websocket", b"").await;
    assert_eq!(status, 503);
    // The old sessions are unknown.
    let (status, _) = raw_http(
        addr,
        "GET",
        "/socket.io/?EIO=4&transport=polling&sid=gone",
        b"",
    )
    .await;
    assert_eq!(status, 400);
    drop(ws);
}

/// Opens a WebSocket session and connects it to `nsp`; returns it once accepted.
async fn ws_in(addr: std::net::SocketAddr, nsp: &str) -> RawWs {
    let mut ws = RawWs::open(addr).await;
    ws.send(&format!("40{nsp},")).await;
    let accept = ws.recv().await;
    assert!(accept.starts_with(&format!("40{nsp},")), "{accept}");
    ws
}

#[tokio::test]
async fn a_dynamic_parent_emits_to_every_child() {
    let io = Ferrio::builder()
        .cleanup_empty_child_namespaces(true)
        .build();
    let parent = io.of_dynamic(|name| name.starts_with("/room-"));
    io.of("/other");
    let addr = serve(io.clone()).await;
    let mut one = ws_in(addr, "/room-1").await;
    let mut two = ws_in(addr, "/room-2").await;
    let mut other = ws_in(addr, "/other").await;

    // Every child gets the event, in its own namespace; `/other` is not a child.
    parent.emit("hello", &(1,)).unwrap();
    assert_eq!(one.recv().await, r#"42/room-1,["hello",1]"#);
    assert_eq!(two.recv().await, r#"42/room-2,["hello",1]"#);

    // `to` selects in every child: the socket in `two`'s room only.
    let two_id = io.of("/room-2").sockets()[0].id().to_owned();
    parent.to(two_id.as_str()).emit("just-two", &()).unwrap();
    parent.except(two_id.as_str()).emit("not-two", &()).unwrap();
    parent.emit("all", &()).unwrap();
    assert_eq!(one.recv().await, r#"42/room-1,["not-two"]"#);
    assert_eq!(one.recv().await, r#"42/room-1,["all"]"#);
    assert_eq!(two.recv().await, r#"42/room-2,["just-two"]"#);
    assert_eq!(two.recv().await, r#"42/room-2,["all"]"#);

    // Once a child is removed (empty), the parent's emits go on to the others; a child
    // created again under the same name gets them once.
    one.send("41/room-1,").await;
    patiently("room-1 removed", async {
        while io.namespaces().iter().any(|ns| ns.name() == "/room-1") {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await;
    parent.emit("after", &()).unwrap();
    assert_eq!(two.recv().await, r#"42/room-2,["after"]"#);
    let mut again = ws_in(addr, "/room-1").await;
    parent.emit("again", &()).unwrap();
    assert_eq!(again.recv().await, r#"42/room-1,["again"]"#);
    assert_eq!(two.recv().await, r#"42/room-2,["again"]"#);
    io.of("/room-1").emit("next", &()).unwrap();
    // (One copy: a second `again` would come before `next`.)
    assert_eq!(again.recv().await, r#"42/room-1,["next"]"#);
    io.of("/other").emit("own", &()).unwrap();
    assert_eq!(other.recv().await, r#"42/other,["own"]"#);
}
