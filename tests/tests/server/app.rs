//! `/app/`, the application profile of the e2e server: Socket.IO mounted in an axum app whose
//! tower layer reads the `user` cookie into the request's extensions. `/login`, CORS with
//! credentials, the connect middleware that wants the user of the handshake request (over
//! polling and over a WebSocket-only connection), `whoami`'s `user` and `address`,
//! `send-to-user`; and the real `socket.io-client` under Node with a cookie
//! (`tests/node/client-app.js`).

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::client::{get, http, polling, post, records, HttpResponse, Server, WAIT};

/// A WebSocket client that sends request headers of its own.
struct Ws {
    inner: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Ws {
    async fn send_text(&mut self, text: &str) {
        self.inner
            .send(Message::Text(text.into()))
            .await
            .expect("send");
    }

    /// The next text message that is not an Engine.IO ping (pings are answered).
    async fn text_app(&mut self) -> String {
        loop {
            let msg = tokio::time::timeout(WAIT, self.inner.next())
                .await
                .expect("a message in time");
            match msg {
                Some(Ok(Message::Text(t))) if t.as_str() == "2" => self.send_text("3").await,
                Some(Ok(Message::Text(t))) => return t.to_string(),
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }
}

const PATH: &str = "/app/";
const ALLOWED: &str = "http://localhost:3080";

fn vary_origin(r: &HttpResponse) -> bool {
    r.headers
        .get_all("vary")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            v.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("origin"))
        })
}

#[tokio::test]
async fn login_sets_the_user_cookie_for_valid_names_only() {
    let s = Server::start().await;
    let r = http(
        s.addr,
        "GET",
        "/login?user=ann_1-X",
        &[("origin", ALLOWED)],
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 204);
    assert_eq!(
        r.header("set-cookie"),
        Some("user=ann_1-X; Path=/; HttpOnly; SameSite=Lax")
    );
    assert_eq!(r.header("access-control-allow-origin"), Some(ALLOWED));
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    assert!(vary_origin(&r));

    let long = "a".repeat(33);
    for bad in [
        "/login",
        "/login?user=",
        "/login?user=a%20b",
        "/login?user=a.b",
        &format!("/login?user={long}"),
    ] {
        let r = get(s.addr, bad).await;
        assert_eq!(r.status, 400, "{bad}");
        assert_eq!(r.header("set-cookie"), None, "{bad}");
    }
    // Other paths are still 404.
    assert_eq!(get(s.addr, "/app").await.status, 404);
    assert_eq!(get(s.addr, "/nothing").await.status, 404);
}

#[tokio::test]
async fn cors_with_credentials_for_the_three_origins() {
    let s = Server::start().await;
    let target = format!("{PATH}?EIO=4&transport=polling");
    for origin in [
        "http://127.0.0.1:3080",
        "http://localhost:3080",
        "https://admin.socket.io",
    ] {
        let pre = http(
            s.addr,
            "OPTIONS",
            &target,
            &[
                ("origin", origin),
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", "content-type"),
            ],
            Bytes::new(),
        )
        .await;
        assert!(pre.status == 204 || pre.status == 200, "{}", pre.status);
        assert_eq!(pre.header("access-control-allow-origin"), Some(origin));
        assert_eq!(pre.header("access-control-allow-credentials"), Some("true"));
        let methods = pre.header("access-control-allow-methods").unwrap_or("");
        assert!(
            methods.contains("GET") && methods.contains("POST"),
            "{methods}"
        );
        assert_eq!(
            pre.header("access-control-allow-headers"),
            Some("content-type")
        );
        assert!(vary_origin(&pre));

        let open = http(s.addr, "GET", &target, &[("origin", origin)], Bytes::new()).await;
        assert_eq!(open.status, 200);
        assert_eq!(open.header("access-control-allow-origin"), Some(origin));
        assert_eq!(
            open.header("access-control-allow-credentials"),
            Some("true")
        );
        assert!(vary_origin(&open));
    }
    // Another origin is answered, with no `Access-Control-Allow-Origin`.
    for path in [target.as_str(), "/login?user=ann"] {
        let r = http(
            s.addr,
            "GET",
            path,
            &[("origin", "http://evil.test")],
            Bytes::new(),
        )
        .await;
        assert!(r.status == 200 || r.status == 204, "{}", r.status);
        assert_eq!(r.header("access-control-allow-origin"), None);
        assert_eq!(r.header("access-control-allow-credentials"), None);
    }
}

/// Opens a polling session with `cookie` on its handshake only, sends CONNECT and returns
/// the session's URL and the packets that followed.
async fn polling_connect(s: &Server, cookie: Option<&str>) -> (String, Vec<String>) {
    let headers: Vec<(&str, &str)> = cookie.map(|c| ("cookie", c)).into_iter().collect();
    let open = http(
        s.addr,
        "GET",
        &format!("{PATH}?EIO=4&transport=polling"),
        &headers,
        Bytes::new(),
    )
    .await;
    assert_eq!(open.status, 200, "{}", open.text());
    let v: Value = serde_json::from_str(&open.text()[1..]).unwrap();
    let url = polling(PATH, v["sid"].as_str().unwrap());
    assert_eq!(post(s.addr, &url, "40").await.status, 200);
    let mut packets = Vec::new();
    while !packets
        .iter()
        .any(|p: &String| p.starts_with("44") || p.starts_with("42[\"auth\""))
    {
        let r = get(s.addr, &url).await;
        assert_eq!(r.status, 200);
        packets.extend(records(&r.body));
    }
    (url, packets)
}

#[tokio::test]
async fn polling_connect_wants_the_user_of_the_handshake_request() {
    let s = Server::start().await;
    for cookie in [None, Some("user=bad.name"), Some("other=ann")] {
        let (_, packets) = polling_connect(&s, cookie).await;
        assert_eq!(packets, [r#"44{"message":"unauthorized"}"#], "{cookie:?}");
    }

    let (url, packets) = polling_connect(&s, Some("theme=dark; user=ann")).await;
    assert!(packets[0].starts_with("40{"), "{packets:?}");
    // Later requests without the cookie do not matter: the handshake's user is kept.
    assert_eq!(post(s.addr, &url, "421[\"whoami\"]").await.status, 200);
    let r = get(s.addr, &url).await;
    let ack = records(&r.body)
        .into_iter()
        .find(|p| p.starts_with("431"))
        .expect("whoami ack");
    let who: Value = serde_json::from_str(&ack[3..]).unwrap();
    assert_eq!(who[0]["user"], "ann");
    assert_eq!(who[0]["address"], "127.0.0.1");
    assert_eq!(who[0]["nsp"], "/");
    assert_eq!(who[0]["transport"], "polling");
    assert_eq!(who[0]["rooms"], serde_json::json!(["user:ann"]));
}

/// A WebSocket-only Socket.IO client on `/app/` with `cookie`, past the open packet.
async fn ws_with_cookie(s: &Server, cookie: Option<&str>) -> Ws {
    let mut req = format!("ws://{}{PATH}?EIO=4&transport=websocket", s.addr)
        .into_client_request()
        .unwrap();
    if let Some(c) = cookie {
        req.headers_mut().insert("cookie", c.parse().unwrap());
    }
    let (inner, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(req))
        .await
        .expect("handshake in time")
        .expect("WebSocket");
    let mut ws = Ws { inner };
    let open = ws.text_app().await;
    assert!(open.starts_with("0{"), "{open}");
    ws
}

/// CONNECT to `/`: the socket id, the `auth` event consumed.
async fn join(ws: &mut Ws) -> String {
    ws.send_text("40").await;
    let reply = ws.text_app().await;
    assert!(reply.starts_with("40{"), "{reply}");
    let auth = ws.text_app().await;
    assert!(auth.starts_with("42[\"auth\""), "{auth}");
    let v: Value = serde_json::from_str(&reply[2..]).unwrap();
    v["sid"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn websocket_only_connect_whoami_and_send_to_user() {
    let s = Server::start().await;
    let mut anon = ws_with_cookie(&s, None).await;
    anon.send_text("40").await;
    assert_eq!(anon.text_app().await, r#"44{"message":"unauthorized"}"#);

    let mut ann1 = ws_with_cookie(&s, Some("user=ann")).await;
    let mut ann2 = ws_with_cookie(&s, Some("user=ann")).await;
    let mut bob = ws_with_cookie(&s, Some("user=bob")).await;
    let ann1_id = join(&mut ann1).await;
    join(&mut ann2).await;
    join(&mut bob).await;

    ann1.send_text("421[\"whoami\"]").await;
    let ack = ann1.text_app().await;
    let who: Value = serde_json::from_str(ack.strip_prefix("431").expect("ack")).unwrap();
    assert_eq!(who[0]["id"], ann1_id.as_str());
    assert_eq!(who[0]["user"], "ann");
    assert_eq!(who[0]["address"], "127.0.0.1");
    assert_eq!(who[0]["transport"], "websocket");

    bob.send_text("422[\"send-to-user\",\"ann\",\"hi\",{\"n\":1}]")
        .await;
    assert_eq!(bob.text_app().await, "432[2]");
    for ann in [&mut ann1, &mut ann2] {
        assert_eq!(ann.text_app().await, r#"42["dm","hi",{"n":1}]"#);
    }
    bob.send_text("423[\"send-to-user\",\"nobody\",1]").await;
    assert_eq!(bob.text_app().await, "433[0]");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_io_client_with_a_cookie_under_node() {
    for transports in [
        &["polling"][..],
        &["websocket"][..],
        &["polling", "websocket"][..],
    ] {
        // A fresh server each time: the previous run's sockets may still be there.
        let s = Server::start().await;
        let input =
            serde_json::json!({ "url": s.url(), "transports": transports, "origin": ALLOWED })
                .to_string();
        let out = tokio::task::spawn_blocking(move || {
            ferrio_tests::run_node_script("client-app.js", input.as_bytes())
        })
        .await
        .expect("node ran");
        let out = String::from_utf8_lossy(&out);
        for step in [
            "ok login",
            "ok unauthorized",
            "ok whoami",
            "ok send-to-user",
            "ALL OK",
        ] {
            assert!(
                out.lines().any(|l| l == step),
                "{step} missing with {transports:?} in:\n{out}"
            );
        }
    }
}
