//! A terminal chat client: joins a room, sends every line typed as `chat:message`, prints the
//! messages of the others.
//!
//! ```text
//! cargo run -p ferrio-client --example chat-cli -- http://localhost:3000 [room] [name]
//! ```
//!
//! On connection it emits `join` with the room name, then `chat:message` with
//! `{"room", "from", "text"}` for each line; it prints every `chat:message` it receives.

use std::time::Duration;

use ferrio_client::{AckSender, DisconnectReason, Socket};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, BufReader};

#[derive(Debug, Serialize, Deserialize)]
struct ChatMessage {
    #[serde(default)]
    room: String,
    #[serde(default)]
    from: String,
    text: String,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "http://localhost:3000".to_owned());
    let room = args.next().unwrap_or_else(|| "lobby".to_owned());
    let name = args.next().unwrap_or_else(|| "rust".to_owned());

    let join_room = room.clone();
    let socket = ferrio_client::io(&url)
        .auth(serde_json::json!({ "name": name }))
        .on(
            "chat:message",
            |_s: Socket, (msg,): (ChatMessage,), _ack: AckSender| async move {
                println!("[{}] {}: {}", msg.room, msg.from, msg.text);
            },
        )
        .with_socket(move |s| {
            s.on_connect(move |s: Socket| {
                let room = join_room.clone();
                async move {
                    eprintln!("* connected as {}", s.id().unwrap_or_default());
                    if let Err(e) = s.emit("join", &(room,)) {
                        eprintln!("* join failed: {e}");
                    }
                }
            });
            s.on_disconnect(|_s: Socket, reason: DisconnectReason| async move {
                eprintln!("* disconnected: {reason}");
            });
        })
        .timeout(Duration::from_secs(10))
        .connect()
        .await?;

    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        if text == "/quit" {
            break;
        }
        let msg = ChatMessage {
            room: room.clone(),
            from: name.clone(),
            text: text.to_owned(),
        };
        socket.emit("chat:message", &(msg,))?;
    }
    socket.disconnect();
    // Give the DISCONNECT a moment to leave.
    tokio::time::sleep(Duration::from_millis(100)).await;
    Ok(())
}
