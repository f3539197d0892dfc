//! Recipe: the socket sees who logged in over HTTP.
//!
//! An axum app with `GET /login?user=<name>`, which opens a session (an in-memory store, a
//! random session id in an `HttpOnly` cookie), and a session layer in front of everything that
//! puts the session's [`User`] into each request's extensions. Socket.IO is mounted in the
//! same app with [`FerrioLayer`], so the layer runs on its HTTP requests too; a connect
//! middleware admits only sockets whose handshake request carried a logged-in user, and
//! `whoami` answers with that user.
//!
//! The alternative for clients without cookies (another origin, a native app): `GET
//! /token?user=<name>` hands out a signed token (`user.expiry.signature`, HMAC-SHA256), which
//! the client sends in `auth: { token }`; the same middleware checks it.
//!
//! ```text
//! cargo run -p ferrio-server --example recipe_login          # http://127.0.0.1:3000
//! PORT=0 cargo run -p ferrio-server --example recipe_login   # any free port (printed)
//! ```
//!
//! From Node: `fetch("http://127.0.0.1:3000/login?user=ann")`, then
//! `io("http://127.0.0.1:3000", { extraHeaders: { cookie: "sid=..." } })` (a browser sends the
//! cookie by itself), or `io(url, { auth: { token } })` with the text of `/token?user=ann`;
//! `await socket.emitWithAck("whoami")` answers `{ user: "ann", via: "session" }`.
//!
//! A real application checks a password (or an identity provider) before `/login` opens a
//! session, expires sessions, and keeps them somewhere shared (the `tower-sessions` crate does
//! all of this as a tower layer; the connect middleware stays the same).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ferrio_server::{AckSender, ConnectError, Ferrio, FerrioLayer, Socket};
use ring::hmac;
use serde_json::json;

/// Who the request (or the socket) belongs to.
#[derive(Clone, Debug)]
struct User(String);

/// How a socket proved who it is.
#[derive(Clone, Copy)]
enum Via {
    Session,
    Token,
}

/// The sessions: session id to user name. In memory, never expired: a stand-in for a real
/// session store.
#[derive(Clone, Default)]
struct Sessions(Arc<Mutex<HashMap<String, String>>>);

/// What `/login`, `/token` and the connect middleware share.
#[derive(Clone)]
struct AppState {
    sessions: Sessions,
    /// The key signing tokens. Random per process here: tokens die with the server. Load it
    /// from a secret store to keep them valid across restarts and servers.
    key: hmac::Key,
}

/// How long a token stays valid.
const TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// True for 1 to 32 characters of `[A-Za-z0-9_-]`.
fn valid_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// 128 random bits, hex: a session id nobody can guess.
fn new_session_id() -> Option<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).ok()?;
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `user.expiry.signature`: the signature covers `user.expiry` (a JWT carries the same three
/// parts as JSON; the `jsonwebtoken` crate reads and writes those).
fn sign_token(key: &hmac::Key, user: &str, expiry: u64) -> String {
    let claims = format!("{user}.{expiry}");
    let tag = hmac::sign(key, claims.as_bytes());
    format!("{claims}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

/// The user of a token whose signature is right and which has not expired.
fn verify_token(key: &hmac::Key, token: &str) -> Option<User> {
    let (claims, signature) = token.rsplit_once('.')?;
    let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
    // Constant time: the comparison does not tell how much of a forged signature was right.
    hmac::verify(key, claims.as_bytes(), &signature).ok()?;
    let (user, expiry) = claims.split_once('.')?;
    let expiry: u64 = expiry.parse().ok()?;
    (expiry > now_secs() && valid_name(user)).then(|| User(user.to_owned()))
}

/// The `sid` cookie of a request.
fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == "sid")
        .map(|(_, value)| value)
}

/// The session layer: the user of the request's session, if any, into its extensions.
async fn session_layer(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let user = session_cookie(req.headers()).and_then(|sid| {
        let sessions = state.sessions.0.lock().ok()?;
        sessions.get(sid).cloned()
    });
    if let Some(name) = user {
        req.extensions_mut().insert(User(name));
    }
    next.run(req).await
}

/// The `user` parameter of `/login` and `/token`, if valid.
fn user_param(req: &Request) -> Option<String> {
    req.uri()
        .query()?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(name, _)| *name == "user")
        .map(|(_, value)| value.to_owned())
        .filter(|name| valid_name(name))
}

/// `GET /login?user=<name>`: 204 with a new session's cookie, or 400.
async fn login(State(state): State<AppState>, req: Request) -> Response {
    let Some(name) = user_param(&req) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let Some(sid) = new_session_id() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    if let Ok(mut sessions) = state.sessions.0.lock() {
        sessions.insert(sid.clone(), name);
    }
    let mut res = StatusCode::NO_CONTENT.into_response();
    if let Ok(cookie) = HeaderValue::from_str(&format!("sid={sid}; Path=/; HttpOnly; SameSite=Lax"))
    {
        res.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    res
}

/// `GET /token?user=<name>`: a signed token valid for [`TOKEN_LIFETIME`], or 400.
async fn token(State(state): State<AppState>, req: Request) -> Response {
    match user_param(&req) {
        Some(name) => {
            let expiry = now_secs() + TOKEN_LIFETIME.as_secs();
            sign_token(&state.key, &name, expiry).into_response()
        }
        None => StatusCode::BAD_REQUEST.into_response(),
    }
}

/// The `token` of the CONNECT's `auth`, if any.
#[derive(serde::Deserialize)]
struct Auth {
    token: Option<String>,
}

/// The app: `/login`, `/token` and Socket.IO on `/socket.io/`, all behind the session layer.
/// `None` if the system has no random numbers for the signing key.
fn app() -> Option<axum::Router> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).ok()?;
    let state = AppState {
        sessions: Sessions::default(),
        key: hmac::Key::new(hmac::HMAC_SHA256, &key),
    };

    let io = Ferrio::builder().build();
    let key = state.key.clone();
    io.of("/")
        // Runs for every socket before it is connected: the session's user, or a token's.
        .use_connect(move |socket: Socket| {
            let key = key.clone();
            async move {
                if let Some(user) = socket.handshake().extensions().get::<User>() {
                    socket.insert_data(user.clone());
                    socket.insert_data(Via::Session);
                    return Ok(());
                }
                let token = socket.handshake().auth::<Auth>().ok().and_then(|a| a.token);
                match token.and_then(|t| verify_token(&key, &t)) {
                    Some(user) => {
                        socket.insert_data(user);
                        socket.insert_data(Via::Token);
                        Ok(())
                    }
                    // The client's `connect_error` with `err.message == "unauthorized"`.
                    None => Err(ConnectError::new("unauthorized")),
                }
            }
        })
        .on_connection(|socket: Socket| async move {
            socket.on(
                "whoami",
                |socket: Socket, (): (), ack: AckSender| async move {
                    let user = socket.data::<User>().map(|u| u.0);
                    let via = match socket.data::<Via>() {
                        Some(Via::Session) => "session",
                        Some(Via::Token) => "token",
                        None => "nothing",
                    };
                    ack.send(&(json!({ "user": user, "via": via }),))
                },
            );
        });

    Some(
        axum::Router::new()
            .route("/login", axum::routing::get(login))
            .route("/token", axum::routing::get(token))
            .layer(FerrioLayer::new(io))
            // Added after the Socket.IO layer, so it runs on Socket.IO's requests too.
            .layer(middleware::from_fn_with_state(state.clone(), session_layer))
            .with_state(state),
    )
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".into());
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    let app = app().ok_or_else(|| std::io::Error::other("no random numbers for the key"))?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await
}
