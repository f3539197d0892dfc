//! Quick start: an axum app with a Socket.IO chat namespace next to its routes.
//!
//! ```text
//! cargo run -p ferrio-server --example axum_chat      # http://127.0.0.1:3000/
//! ```
//!
//! From a `socket.io-client` 4.x: `io("http://127.0.0.1:3000/chat", { auth: { nick: "ann" } })`,
//! then `await socket.emitWithAck("join", "lobby")`, `socket.emit("message", "lobby", "hi")`.

use ferrio_server::{AckSender, Cors, Ferrio, FerrioLayer, Socket};
use serde_json::json;

/// A chatter's nickname, kept with the socket.
#[derive(Clone)]
struct Nick(String);

/// What a client may send when it connects (`auth`).
#[derive(serde::Deserialize)]
struct Auth {
    nick: Option<String>,
}

fn nick(socket: &Socket) -> String {
    socket
        .data::<Nick>()
        .map_or_else(|| "anonymous".into(), |n| n.0)
}

/// The Socket.IO server with its `/chat` namespace, mounted in front of the app's routes.
pub fn app() -> axum::Router {
    let io = Ferrio::builder()
        // A front-end served from another origin (a Vite dev server on :5173, a static page) is
        // cross-origin: without CORS headers the browser refuses its long-polling requests, the
        // transport it starts with. `Cors::any()` lets any page connect; in production, list
        // yours instead: `Cors::origins(["https://app.example.com"])`.
        .cors(Cors::any())
        .build();
    io.of("/chat").on_connection(|socket: Socket| async move {
        // The nickname comes with the connection (`auth: { nick }`) or later with `nick`.
        if let Ok(Auth { nick: Some(name) }) = socket.handshake().auth() {
            socket.insert_data(Nick(name));
        }
        socket.on(
            "nick",
            |socket: Socket, (name,): (String,), _: AckSender| async move {
                socket.insert_data(Nick(name));
            },
        );
        // join(room) -> ack({ room, members }); the others in the room hear `joined`.
        socket.on(
            "join",
            |socket: Socket, (room,): (String,), ack: AckSender| async move {
                socket.join(room.clone());
                socket.to(room.clone()).emit("joined", &(nick(&socket),))?;
                let members = socket.namespace().to(room.clone()).sockets().len();
                ack.send(&(json!({ "room": room, "members": members }),))
            },
        );
        // message(room, text): to everyone else in a room the sender is in.
        socket.on(
            "message",
            |socket: Socket, (room, text): (String, String), _: AckSender| async move {
                if !socket.rooms().contains(&room) {
                    return Ok(());
                }
                let message = json!({ "from": nick(&socket), "room": room, "text": text });
                socket.to(room).emit("message", &(message,))
            },
        );
        // typing(room): to the others, dropped rather than queued for a slow client.
        socket.on(
            "typing",
            |socket: Socket, (room,): (String,), _: AckSender| async move {
                socket.to(room).volatile().emit("typing", &(nick(&socket),))
            },
        );
    });
    axum::Router::new()
        .route(
            "/",
            axum::routing::get(|| async { "Hello! Socket.IO is at /chat" }),
        )
        .layer(FerrioLayer::new(io))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("listening on http://127.0.0.1:3000/");
    axum::serve(listener, app()).await
}
