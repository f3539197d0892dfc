//! The chat demo: a Ferrio server with rooms, nicknames, a typing indicator and image paste,
//! serving its page (`examples/chat/index.html`) and the browser client (the `ferrio` npm
//! package, built into `bindings/wasm` by `bindings/wasm/build.sh`) next to `/socket.io/`.
//!
//! ```text
//! scripts/demo                                   # builds the package, then runs this
//! PORT=3100 cargo run -p ferrio-server --example chat
//! ```

use std::path::{Path, PathBuf};

use bytes::Bytes;
use ferrio_server::{serve, Body, Cors, Ferrio, Message, Socket};
use serde_json::{json, Value};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What the server remembers of a chatter.
#[derive(Clone)]
struct Chatter {
    nick: String,
    room: String,
}

fn chatter(socket: &Socket) -> Chatter {
    socket.data::<Chatter>().unwrap_or(Chatter {
        nick: "anonymous".to_owned(),
        room: "lobby".to_owned(),
    })
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

fn members(socket: &Socket, room: &str) -> usize {
    socket.namespace().to(room.to_owned()).sockets().len()
}

fn chat_server() -> Ferrio {
    let io = Ferrio::builder().cors(Cors::any()).build();
    io.of("/").on_connection(|socket: Socket| async move {
        // join(room, nick) -> ack({ room, nick, members })
        socket.on("join", |socket: Socket, msg: Message| async move {
            let args = msg.raw_args()?;
            let room = text(args.values().first(), "lobby", 32);
            let nick = text(args.values().get(1), "anonymous", 24);
            let before = chatter(&socket);
            if socket.data::<Chatter>().is_some() && before.room != room {
                socket.leave(&before.room);
                socket
                    .to(before.room.clone())
                    .emit("left", &(json!({"nick": before.nick}),))?;
            }
            socket.join(room.clone());
            socket.insert_data(Chatter {
                nick: nick.clone(),
                room: room.clone(),
            });
            socket
                .to(room.clone())
                .emit("joined", &(json!({"nick": nick}),))?;
            let count = members(&socket, &room);
            msg.ack(&(json!({"room": room, "nick": nick, "members": count}),))?;
            Ok::<(), BoxError>(())
        });
        // chat(text) -> to the room, and ack(timestamp)
        socket.on("chat", |socket: Socket, msg: Message| async move {
            let args = msg.raw_args()?;
            let me = chatter(&socket);
            let body = text(args.values().first(), "", 2000);
            let at = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            socket
                .to(me.room)
                .emit("chat", &(json!({"nick": me.nick, "text": body, "at": at}),))?;
            msg.ack(&(at,))?;
            Ok::<(), BoxError>(())
        });
        // typing(bool)
        socket.on("typing", |socket: Socket, msg: Message| async move {
            let args = msg.raw_args()?;
            let me = chatter(&socket);
            let typing = args.values().first().and_then(Value::as_bool) == Some(true);
            socket
                .to(me.room)
                .volatile()
                .emit("typing", &(json!({"nick": me.nick, "typing": typing}),))?;
            Ok::<(), BoxError>(())
        });
        // image(mime, bytes): a binary attachment passed on to the room
        socket.on("image", |socket: Socket, msg: Message| async move {
            let args = msg.raw_args()?;
            let me = chatter(&socket);
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
        socket.on_disconnect(|socket: Socket, _reason| async move {
            if let Some(me) = socket.data::<Chatter>() {
                let _ = socket
                    .namespace()
                    .to(me.room)
                    .emit("left", &(json!({"nick": me.nick}),));
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

/// Maps a request path to a file: `/` is the page, `/ferrio/...` the package. Anything with
/// `..` or outside these is refused.
fn static_file(path: &str) -> Option<PathBuf> {
    if path.contains("..") {
        return None;
    }
    let (page, package) = static_root();
    match path {
        "/" | "/index.html" => Some(page.join("index.html")),
        p => p
            .strip_prefix("/ferrio/")
            .filter(|f| !f.contains('/'))
            .map(|f| package.join(f)),
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("chat demo on http://127.0.0.1:{port}/");
    let io = chat_server();
    serve(listener, move |req| {
        let io = io.clone();
        async move {
            let path = req.uri().path().to_owned();
            if io.matches(&path) {
                io.handle(req).await
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
