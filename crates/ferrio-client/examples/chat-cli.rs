//! A terminal client of the chat demo (`crates/ferrio-server/examples/chat.rs`, run by
//! `scripts/demo`): joins a room with a nickname, sends every line typed, prints what the room
//! says (messages with the server's time, UTC; who joined, left, is typing; who is in the room)
//! and what the server answers, errors included.
//!
//! ```text
//! scripts/demo                                                  # the server, in one terminal
//! cargo run -p ferrio-client --example chat-cli -- http://127.0.0.1:3000 [room] [nickname]
//! ```
//!
//! It speaks the demo's events: `join(room, nick)` once connected (not again after a
//! reconnection that recovered the session: the server kept the room and nickname), then
//! `chat(text)` with an ack (`{ at }` once the room has it, or `{ error }`). `/quit` or the end of
//! the input leaves.

use std::time::Duration;

use ferrio_client::{AckSender, ConnectError, DisconnectReason, Socket};
use serde_json::Value;
use tokio::sync::{mpsc, watch};

/// Errors of [`run`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How long the server has to answer a `join` or a `chat`.
const ACK_TIMEOUT: Duration = Duration::from_secs(10);

/// `HH:MM:SS` (UTC) of a time in milliseconds since 1970.
fn clock(ms: u64) -> String {
    let s = ms / 1000 % 86_400;
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

fn field<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("?")
}

fn nicks(v: &Value) -> String {
    let list: Vec<&str> = v
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    list.join(", ")
}

/// How many lines may wait for the output; past it (the output is not read), lines are dropped
/// rather than kept.
pub const OUTPUT_LINES: usize = 1024;

/// Sends a line to the output. A full output drops the line; an output gone (the program
/// ending) is not an error.
fn say(out: &mpsc::Sender<String>, line: String) {
    let _ = out.try_send(line);
}

/// A handler of an event with one JSON argument: shows the line `show` makes of it, if any.
fn shown(
    out: &mpsc::Sender<String>,
    show: fn(&Value) -> Option<String>,
) -> impl Fn(Socket, (Value,), AckSender) -> std::future::Ready<()> + Send + Sync + 'static {
    let out = out.clone();
    move |_s, (m,), _ack| {
        if let Some(line) = show(&m) {
            say(&out, line);
        }
        std::future::ready(())
    }
}

/// Emits `join(room, nick)`: the server's answer once in the room, or why not.
async fn join(socket: &Socket, room: &str, nick: &str) -> Result<Value, String> {
    let reply = socket
        .timeout(ACK_TIMEOUT)
        .emit_with_ack("join", &(room, nick))
        .await
        .map_err(|e| e.to_string())?;
    let (info,): (Value,) = reply.args().map_err(|e| e.to_string())?;
    match info.get("error") {
        Some(e) => Err(e.as_str().unwrap_or("refused").to_owned()),
        None => Ok(info),
    }
}

/// The client: connects to `url`, joins `room` as `nick`, sends each line from `input` and writes
/// what it has to show, a line at a time, to `out` (a channel of [`OUTPUT_LINES`] lines).
/// Returns once `input` is closed or on `/quit`; fails if it cannot connect or the server
/// refuses the `join`.
pub async fn run(
    url: &str,
    room: &str,
    nick: &str,
    mut input: mpsc::Receiver<String>,
    out: mpsc::Sender<String>,
) -> Result<(), BoxError> {
    // The outcome of the first `join`: the input is read once in the room.
    let (joined_tx, mut joined) = watch::channel(None::<Result<(), String>>);
    let (image_out, socket_out) = (out.clone(), out.clone());
    let (room_name, nick_name) = (room.to_owned(), nick.to_owned());
    let socket = ferrio_client::io(url)
        .on(
            "chat",
            shown(&out, |m| {
                let at = m.get("at").and_then(Value::as_u64).unwrap_or(0);
                let (nick, text) = (field(m, "nick"), field(m, "text"));
                Some(format!("[{}] {nick}: {text}", clock(at)))
            }),
        )
        .on(
            "joined",
            shown(&out, |m| Some(format!("* {} joined", field(m, "nick")))),
        )
        .on(
            "left",
            shown(&out, |m| Some(format!("* {} left", field(m, "nick")))),
        )
        .on(
            "members",
            shown(&out, |m| {
                let (room, list) = (field(m, "room"), nicks(&m["members"]));
                Some(format!("* in #{room}: {list}"))
            }),
        )
        .on(
            "typing",
            shown(&out, |m| {
                let typing = m.get("typing").and_then(Value::as_bool) == Some(true);
                typing.then(|| format!("* {} is typing…", field(m, "nick")))
            }),
        )
        .on(
            "image",
            move |_s: Socket, (m, _data): (Value, serde::de::IgnoredAny), _: AckSender| {
                say(
                    &image_out,
                    format!(
                        "* {} sent an image ({})",
                        field(&m, "nick"),
                        field(&m, "mime")
                    ),
                );
                async {}
            },
        )
        .with_socket(move |s| {
            let out = socket_out;
            let o = out.clone();
            s.on_connect(move |s: Socket| {
                let (out, room, nick) = (o.clone(), room_name.clone(), nick_name.clone());
                let joined_tx = joined_tx.clone();
                async move {
                    let id = s.id().unwrap_or_default();
                    if s.recovered() {
                        // The server kept the socket, its room and nickname: joining again
                        // would tell the room "joined" a second time.
                        say(&out, format!("* reconnected as {id}, session recovered"));
                        return;
                    }
                    say(&out, format!("* connected as {id}"));
                    // Not in this handler: the other events keep flowing while it waits.
                    tokio::spawn(async move {
                        let outcome = match join(&s, &room, &nick).await {
                            Ok(info) => {
                                say(
                                    &out,
                                    format!(
                                        "* joined #{} as {}; in the room: {}",
                                        field(&info, "room"),
                                        field(&info, "nick"),
                                        nicks(&info["members"])
                                    ),
                                );
                                Ok(())
                            }
                            Err(e) => {
                                say(&out, format!("* join refused: {e}"));
                                Err(e)
                            }
                        };
                        joined_tx.send_replace(Some(outcome));
                    });
                }
            });
            let o = out.clone();
            s.on_connect_error(move |_s: Socket, e: ConnectError| {
                say(&o, format!("* {e}"));
                async {}
            });
            s.on_disconnect(move |_s: Socket, reason: DisconnectReason| {
                say(&out, format!("* disconnected: {reason}"));
                async {}
            });
        })
        .timeout(ACK_TIMEOUT)
        .connect()
        .await?;

    let first = joined
        .wait_for(Option::is_some)
        .await
        .map_err(|_| "the connection ended before the join")?
        .clone();
    if let Some(Err(e)) = first {
        socket.disconnect();
        return Err(format!("join refused: {e}").into());
    }

    while let Some(line) = input.recv().await {
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        if text == "/quit" {
            break;
        }
        let answer = socket
            .timeout(ACK_TIMEOUT)
            .emit_with_ack("chat", &(text,))
            .await
            .map_err(|e| e.to_string())
            .and_then(|reply| reply.args::<(Value,)>().map_err(|e| e.to_string()));
        match answer {
            Ok((a,)) => match (a.get("at").and_then(Value::as_u64), a.get("error")) {
                (Some(at), _) => say(&out, format!("  (sent {})", clock(at))),
                (None, e) => say(
                    &out,
                    format!(
                        "* not sent: {}",
                        e.and_then(Value::as_str).unwrap_or("refused")
                    ),
                ),
            },
            Err(e) => say(&out, format!("* not sent: {e}")),
        }
    }
    socket.disconnect();
    // Give the DISCONNECT a moment to leave.
    tokio::time::sleep(Duration::from_millis(100)).await;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:3000".to_owned());
    let room = args.next().unwrap_or_else(|| "lobby".to_owned());
    let nick = args.next().unwrap_or_else(|| "rust".to_owned());
    let (out, mut lines) = mpsc::channel(OUTPUT_LINES);
    let printer = tokio::spawn(async move {
        while let Some(line) = lines.recv().await {
            println!("{line}");
        }
    });
    // The terminal's lines, read on a thread of their own (a read of stdin blocks).
    let (typed, input) = mpsc::channel(16);
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if typed.blocking_send(line).is_err() {
                break;
            }
        }
    });
    let result = run(&url, &room, &nick, input, out).await;
    // The socket's handlers may outlive `run` a moment: print what they said, without waiting
    // for them to go.
    let _ = tokio::time::timeout(Duration::from_millis(200), printer).await;
    if let Err(e) = &result {
        eprintln!("chat-cli: {e}");
    }
    result
}
