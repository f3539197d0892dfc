//! The chat demo: a Ferrio server with rooms, nicknames, a member list, a typing indicator and
//! image paste, serving its page (`examples/chat/index.html`) and the browser client (the `ferrio`
//! npm package, built into `bindings/wasm` by `bindings/wasm/build.sh`) next to `/socket.io/`.
//! The terminal client `crates/ferrio-client/examples/chat-cli.rs` speaks the same events.
//!
//! ```text
//! scripts/demo                                   # builds the package, then runs this
//! PORT=3100 cargo run -p ferrio-server --example chat
//! ```
//!
//! It also serves the Leptos chat page (Rust in the browser, `ferrio-client-web`) at `/leptos/`
//! once built: `crates/ferrio-client-web/examples/leptos-chat/build.sh` (which `scripts/demo`
//! runs) puts it in `target/leptos-chat/`; `LEPTOS_CHAT_DIR` names another directory.
//!
//! The events (client to server, with what the ack carries):
//!
//! - `join(room, nick)` -> `{ room, nick, members: [nick] }` or `{ error }`; the others in the
//!   room hear `joined({ nick })`, everyone in it `members({ room, members })`.
//! - `chat(text)` -> `{ at }` (the server's time, ms since 1970) or `{ error }`; the others in the
//!   room hear `chat({ nick, text, at })`.
//! - `typing(bool)`: the others hear `typing({ nick, typing })` (volatile).
//! - `image(mime, bytes)` -> `true`; the others hear `image({ nick, mime }, bytes)`.
//!
//! A socket that leaves (another `join`, or a disconnection) makes the room hear `left({ nick })`
//! and `members(...)`. Connection state recovery is on: a client back within two minutes has its
//! socket, room and nickname again (`socket.recovered` on the client) and must not join again;
//! the room hears only `members(...)` with it back in.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use ferrio_server::{serve, Body, Cors, Ferrio, Message, RecoveryConfig, Socket};
use serde_json::{json, Value};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What the server remembers of a chatter (kept across a recovered connection).
#[derive(Clone)]
struct Chatter {
    nick: String,
    room: String,
}

fn text(v: Option<&Value>, default: &str, max: usize) -> String {
    let s = v.and_then(Value::as_str).unwrap_or(default).trim();
    let s: String = s.chars().take(max).collect();
    if s.is_empty() {
        default.to_owned()
    } else {
        s
    }
}

/// The nicknames of the sockets in `room`, sorted, without the socket `except` (one leaving).
fn members(socket: &Socket, room: &str, except: Option<&str>) -> Vec<String> {
    let mut nicks: Vec<String> = socket
        .namespace()
        .to(room.to_owned())
        .sockets()
        .iter()
        .filter(|s| Some(s.id()) != except)
        .filter_map(|s| s.data::<Chatter>())
        .filter(|c| c.room == room)
        .map(|c| c.nick)
        .collect();
    nicks.sort();
    nicks
}

/// Tells the others in `room` who is in it (`socket` too, unless it is `leaving`).
fn announce_members(socket: &Socket, room: &str, leaving: bool) -> Result<(), BoxError> {
    let list = members(socket, room, leaving.then(|| socket.id()));
    socket
        .to(room.to_owned())
        .emit("members", &(json!({"room": room, "members": list}),))?;
    Ok(())
}

/// Tells the others in `socket`'s room that it left, and who is still in it.
fn announce_left(socket: &Socket, me: &Chatter) -> Result<(), BoxError> {
    socket
        .to(me.room.clone())
        .emit("left", &(json!({"nick": me.nick}),))?;
    announce_members(socket, &me.room, true)
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The chat server: the namespace `/` with the events above.
pub fn chat_server() -> Ferrio {
    let io = Ferrio::builder()
        // The page is served by this server, but a front-end under development elsewhere (a
        // Vite dev server, a static file) is another origin: let any browser page connect.
        .cors(Cors::any())
        // A client back within the window gets its socket, room and nickname again, and the
        // events it missed: no second `join`, so the room hears no second "joined".
        .connection_state_recovery(RecoveryConfig::default())
        .build();
    io.of("/").on_connection(|socket: Socket| async move {
        if socket.recovered() {
            // Back in its room: the others saw it leave, they see it in the list again, and it
            // gets the list as it is now.
            if let Some(me) = socket.data::<Chatter>() {
                let _ = announce_members(&socket, &me.room, false);
                let list = members(&socket, &me.room, None);
                let _ = socket.emit("members", &(json!({"room": me.room, "members": list}),));
            }
        }
        socket.on("join", |socket: Socket, msg: Message| async move {
            let args = msg.raw_args()?;
            let room = text(args.values().first(), "lobby", 32);
            let nick = text(args.values().get(1), "", 24);
            if nick.is_empty() {
                msg.ack(&(json!({"error": "a nickname is required"}),))?;
                return Ok::<(), BoxError>(());
            }
            if let Some(before) = socket.data::<Chatter>() {
                announce_left(&socket, &before)?;
                socket.leave(&before.room);
            }
            socket.join(room.clone());
            socket.insert_data(Chatter {
                nick: nick.clone(),
                room: room.clone(),
            });
            socket
                .to(room.clone())
                .emit("joined", &(json!({"nick": nick}),))?;
            announce_members(&socket, &room, false)?;
            let list = members(&socket, &room, None);
            msg.ack(&(json!({"room": room, "nick": nick, "members": list}),))?;
            Ok::<(), BoxError>(())
        });
        socket.on("chat", |socket: Socket, msg: Message| async move {
            let args = msg.raw_args()?;
            let Some(me) = socket.data::<Chatter>() else {
                msg.ack(&(json!({"error": "join a room first"}),))?;
                return Ok::<(), BoxError>(());
            };
            let body = text(args.values().first(), "", 2000);
            if body.is_empty() {
                msg.ack(&(json!({"error": "empty message"}),))?;
                return Ok::<(), BoxError>(());
            }
            let at = now_ms();
            socket
                .to(me.room)
                .emit("chat", &(json!({"nick": me.nick, "text": body, "at": at}),))?;
            msg.ack(&(json!({"at": at}),))?;
            Ok::<(), BoxError>(())
        });
        socket.on("typing", |socket: Socket, msg: Message| async move {
            let args = msg.raw_args()?;
            let Some(me) = socket.data::<Chatter>() else {
                return Ok::<(), BoxError>(());
            };
            let typing = args.values().first().and_then(Value::as_bool) == Some(true);
            socket
                .to(me.room)
                .volatile()
                .emit("typing", &(json!({"nick": me.nick, "typing": typing}),))?;
            Ok::<(), BoxError>(())
        });
        socket.on("image", |socket: Socket, msg: Message| async move {
            let args = msg.raw_args()?;
            let Some(me) = socket.data::<Chatter>() else {
                return Ok::<(), BoxError>(());
            };
            let mime = text(args.values().first(), "image/png", 64);
            let Some(data) = args.attachments().first().cloned() else {
                return Ok::<(), BoxError>(());
            };
            socket
                .to(me.room)
                .emit("image", &(json!({"nick": me.nick, "mime": mime}), data))?;
            msg.ack(&(true,))?;
            Ok::<(), BoxError>(())
        });
        // Still in its room here, so `socket.to(room)` reaches the others: they hear it left,
        // and the list without it. (Its rooms are kept for recovery: it does not leave them.)
        socket.on_disconnecting(|socket: Socket, _| async move {
            if let Some(me) = socket.data::<Chatter>() {
                let _ = announce_left(&socket, &me);
            }
        });
    });
    io
}

fn static_root() -> (PathBuf, PathBuf) {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    (
        manifest.join("examples/chat"),
        manifest.join("../../bindings/wasm/dist"),
    )
}

fn file_response(path: &Path) -> http::Response<Body> {
    let kind = match path.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("wasm") => "application/wasm",
        Some("css") => "text/css; charset=utf-8",
        _ => "application/octet-stream",
    };
    match std::fs::read(path) {
        Ok(bytes) => {
            let mut res = http::Response::new(Body::new(Bytes::from(bytes)));
            if let Ok(v) = http::HeaderValue::from_str(kind) {
                res.headers_mut().insert(http::header::CONTENT_TYPE, v);
            }
            res.headers_mut().insert(
                http::header::CACHE_CONTROL,
                http::HeaderValue::from_static("no-cache"),
            );
            res
        }
        Err(_) => {
            let mut res = http::Response::new(Body::new(Bytes::from_static(b"not found")));
            *res.status_mut() = http::StatusCode::NOT_FOUND;
            res
        }
    }
}

/// The directory of the Leptos chat page: `LEPTOS_CHAT_DIR`, or `target/leptos-chat/` where
/// its `build.sh` puts it.
fn leptos_root() -> PathBuf {
    match std::env::var_os("LEPTOS_CHAT_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/leptos-chat"),
    }
}

/// Maps a request path to a file: `/` is the page, `/ferrio/...` the package, `/leptos/...`
/// the Leptos page. Anything with `..` or outside these is refused.
fn static_file(path: &str) -> Option<PathBuf> {
    if path.contains("..") {
        return None;
    }
    let (page, package) = static_root();
    match path {
        "/" | "/index.html" => Some(page.join("index.html")),
        "/leptos/" => Some(leptos_root().join("index.html")),
        p => {
            let (dir, file) = match p.strip_prefix("/leptos/") {
                Some(f) => (leptos_root(), f),
                None => (package, p.strip_prefix("/ferrio/")?),
            };
            (!file.contains('/')).then(|| dir.join(file))
        }
    }
}

/// Serves `io` (the [`chat_server`]) and the page on `listener` until the process ends.
pub async fn run(listener: tokio::net::TcpListener, io: Ferrio) -> std::io::Result<()> {
    serve(listener, move |req| {
        let io = io.clone();
        async move {
            let path = req.uri().path().to_owned();
            if io.matches(&path) {
                io.handle(req).await
            } else if path == "/leptos" {
                // The page's files are relative to the directory.
                let mut res = http::Response::new(Body::new(Bytes::new()));
                *res.status_mut() = http::StatusCode::PERMANENT_REDIRECT;
                res.headers_mut().insert(
                    http::header::LOCATION,
                    http::HeaderValue::from_static("/leptos/"),
                );
                res
            } else {
                match static_file(&path) {
                    Some(file) => file_response(&file),
                    None => {
                        let mut res =
                            http::Response::new(Body::new(Bytes::from_static(b"not found")));
                        *res.status_mut() = http::StatusCode::NOT_FOUND;
                        res
                    }
                }
            }
        }
    })
    .await
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("chat demo on http://127.0.0.1:{port}/");
    if leptos_root().join("index.html").is_file() {
        println!("the Leptos chat page on http://127.0.0.1:{port}/leptos/");
    }
    run(listener, chat_server()).await
}
