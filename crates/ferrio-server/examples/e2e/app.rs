//! `/app/`: Socket.IO inside an axum application (the application profile). An axum `Router`
//! with its own route (`GET /login`), a tower layer in front of everything that reads the
//! `user` cookie into the request's extensions (a stand-in for a session layer), and the
//! Socket.IO server mounted in it with [`FerrioLayer`], so that the layer runs on Socket.IO's
//! requests too. Socket.IO code gets the user from the extensions of the request that opened
//! the Engine.IO session ([`ferrio_server::Handshake::extensions`]), never from the cookie.
//!
//! CORS with credentials for three origins: the Socket.IO server's own [`Cors`] on its
//! requests, and the same headers on `/login`. WebSocket clients that offer
//! `permessage-deflate` get it, messages of 1024 bytes or more compressed.
//!
//! Namespace `/admin` is the Socket.IO Admin UI's (`ferrio_admin`): user `admin`, password
//! `changeit`, development mode, not read-only; it sees the sockets of every namespace here.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use ferrio_server::{
    Body, ConnectError, Cors, Ferrio, FerrioLayer, Message, PerMessageDeflate, Socket,
};
use serde_json::{json, Value};

/// The origins allowed to make requests with credentials.
const ORIGINS: [&str; 3] = [
    "http://127.0.0.1:3080",
    "http://localhost:3080",
    "https://admin.socket.io",
];

/// The user the `user` cookie names, put into each request's extensions by [`user_layer`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User(pub String);

/// True for 1 to 32 characters of `[A-Za-z0-9_-]`.
fn valid_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The valid user of the request's `user` cookie, if any.
fn cookie_user(headers: &HeaderMap) -> Option<User> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == "user")
        .map(|(_, value)| value)
        .filter(|value| valid_name(value))
        .map(|value| User(value.to_owned()))
}

/// The tower layer in front of everything: the `user` cookie, when valid, into the request's
/// extensions.
async fn user_layer(mut req: Request, next: Next) -> Response {
    if let Some(user) = cookie_user(req.headers()) {
        req.extensions_mut().insert(user);
    }
    next.run(req).await
}

/// `GET /login?user=<name>`: 204 with the `user` cookie, or 400; with the CORS headers of an
/// allowed origin.
async fn login(req: Request) -> Response {
    let name = form_urlencoded_user(req.uri().query().unwrap_or(""));
    let mut res = match name.filter(|n| valid_name(n)) {
        Some(name) => {
            let mut res = StatusCode::NO_CONTENT.into_response();
            if let Ok(cookie) =
                HeaderValue::from_str(&format!("user={name}; Path=/; HttpOnly; SameSite=Lax"))
            {
                res.headers_mut().insert(header::SET_COOKIE, cookie);
            }
            res
        }
        None => StatusCode::BAD_REQUEST.into_response(),
    };
    let headers = res.headers_mut();
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(origin) = req
        .headers()
        .get(header::ORIGIN)
        .filter(|o| ORIGINS.iter().any(|a| o.as_bytes() == a.as_bytes()))
    {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
    res
}

/// The `user` parameter of a query string (names are plain ASCII: no decoding needed for a
/// valid one).
fn form_urlencoded_user(query: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(name, _)| *name == "user")
        .map(|(_, value)| value.to_owned())
}

/// The application: `/login`, and the Socket.IO server on `/app/`, behind [`user_layer`]. Any
/// other path gets 404.
pub fn build() -> axum::Router {
    let io = Ferrio::builder()
        .path("/app/")
        .max_http_buffer_size(1_000_000)
        .cors(
            Cors::origins(ORIGINS)
                .credentials(true)
                .methods(["GET", "POST"]),
        )
        // Under axum's own `serve` (with connect info) the peer's address is there.
        .remote_address(|ext| ext.get::<ConnectInfo<SocketAddr>>().map(|c| c.0))
        // permessage-deflate for clients that offer it, from 1024 bytes on (8.3).
        .per_message_deflate(PerMessageDeflate::new().threshold(1024))
        .yield_after_flush(true)
        .build();
    let ns = io.of("/");
    ns.use_connect(|socket: Socket| async move {
        match socket.handshake().extensions().get::<User>() {
            Some(user) => {
                socket.insert_data(user.clone());
                Ok(())
            }
            None => Err(ConnectError::new("unauthorized")),
        }
    });
    super::standard_handlers(&ns);
    ns.on_connection(|socket: Socket| async move {
        let user = socket.data::<User>().map(|u| u.0).unwrap_or_default();
        socket.join(format!("user:{user}"));
        // `whoami` with the user and the address besides the standard keys.
        socket.off("whoami");
        socket.on("whoami", |socket: Socket, msg: Message| async move {
            let handshake = socket.handshake();
            let auth = handshake
                .auth_raw()
                .to_value()
                .unwrap_or_else(|_| json!({}));
            let user = socket.data::<User>().map(|u| u.0);
            let address = handshake.address().map(|a| a.ip().to_string());
            msg.ack(&(json!({
                "id": socket.id(),
                "nsp": socket.nsp(),
                "engineId": socket.engine_id(),
                "transport": socket.transport().name(),
                "rooms": super::rooms(&socket),
                "auth": auth,
                "recovered": socket.recovered(),
                "user": user,
                "address": address,
            }),))
        });
        socket.on("send-to-user", |socket: Socket, msg: Message| async move {
            let args = msg.raw_args()?;
            let name = match args.values().first() {
                Some(Value::String(name)) => name.clone(),
                other => super::room_name(other),
            };
            let room = format!("user:{name}");
            let reached = socket.namespace().to(room.clone()).sockets().len();
            socket
                .namespace()
                .to(room)
                .emit("dm", &super::rest(&args, 1))?;
            if msg.ack_requested() {
                msg.ack(&(reached,))?;
            }
            Ok::<(), super::BoxError>(())
        });
    });
    // `/admin`: the Socket.IO Admin UI (user `admin`, password `changeit`), development mode.
    let admin = ferrio_admin::AdminOptions::new(ferrio_admin::Auth::Basic {
        username: "admin".into(),
        password_hash: "$2a$10$LBytqDjH8CiopW5V9gVP/er9rJLxKTShReFVBCWXnvVsgWkWMbtQ2".into(),
    });
    if let Ok(admin) = ferrio_admin::instrument(&io, admin) {
        admin.detach();
    }
    axum::Router::new()
        .route("/login", axum::routing::get(login))
        .layer(FerrioLayer::new(io))
        .layer(middleware::from_fn(user_layer))
}

/// Serves one request with `app` (a request of the e2e server's own listener).
pub async fn handle<B>(
    app: &axum::Router,
    req: axum::http::Request<B>,
) -> axum::http::Response<Body>
where
    B: axum::body::HttpBody<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    let mut app = app.clone();
    let response = match tower_service::Service::call(&mut app, req).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let (parts, body) = response.into_parts();
    // Every body of this app is complete at once (Socket.IO's are, `/login`'s are empty).
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    axum::http::Response::from_parts(parts, Body::new(bytes))
}

/// True for the paths of the application: `/login` and `/app/...`.
pub fn serves(path: &str) -> bool {
    path == "/login" || path.starts_with("/app/")
}
