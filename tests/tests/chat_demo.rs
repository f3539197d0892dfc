//! The chat demo from a new user's side: the chat example server
//! (`crates/ferrio-server/examples/chat.rs`) with its terminal client
//! (`crates/ferrio-client/examples/chat-cli.rs`, driven through its input and output) and a second
//! client, the tokio one, in the same room.

use std::time::Duration;

use ferrio_client::{AckSender, Socket};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

#[allow(dead_code)]
#[path = "../../crates/ferrio-server/examples/chat.rs"]
mod chat;

#[allow(dead_code)]
#[path = "../../crates/ferrio-client/examples/chat-cli.rs"]
mod chat_cli;

/// Generous: the tests wait this long for something they expect, never assert on speed.
const WAIT: Duration = Duration::from_secs(20);

async fn start_server() -> (String, ferrio_server::Ferrio) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let io = chat::chat_server();
    tokio::spawn(chat::run(listener, io.clone()));
    (url, io)
}

/// A tokio client in `room` as `nick`: every event it hears, in order, as `(event, payload)`.
async fn second_client(
    url: &str,
    room: &str,
    nick: &str,
) -> (Socket, Value, mpsc::UnboundedReceiver<(String, Value)>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut builder = ferrio_client::io(url);
    for event in ["chat", "joined", "left", "members"] {
        let tx = tx.clone();
        builder = builder.on(event, move |_s: Socket, (m,): (Value,), _: AckSender| {
            let _ = tx.send((event.to_owned(), m));
            async {}
        });
    }
    let socket = builder.connect().await.unwrap();
    let reply = socket
        .timeout(WAIT)
        .emit_with_ack("join", &(room, nick))
        .await
        .unwrap();
    let (info,): (Value,) = reply.args().unwrap();
    (socket, info, rx)
}

/// The next line of the chat-cli output that contains `needle`.
async fn line_with(out: &mut mpsc::Receiver<String>, needle: &str) -> String {
    let found = tokio::time::timeout(WAIT, async {
        while let Some(line) = out.recv().await {
            if line.contains(needle) {
                return line;
            }
        }
        panic!("chat-cli output ended before a line with {needle:?}");
    })
    .await;
    found.unwrap_or_else(|_| panic!("no chat-cli line with {needle:?}"))
}

/// The next event `event` the second client hears, with what it heard before it.
async fn next_event(
    rx: &mut mpsc::UnboundedReceiver<(String, Value)>,
    event: &str,
) -> (Value, Vec<(String, Value)>) {
    let mut before = Vec::new();
    let found = tokio::time::timeout(WAIT, async {
        while let Some((name, payload)) = rx.recv().await {
            if name == event {
                return payload;
            }
            before.push((name, payload));
        }
        panic!("the second client stopped hearing events before {event:?}");
    })
    .await;
    let payload = found.unwrap_or_else(|_| panic!("no {event:?} event: heard {before:?}"));
    (payload, before)
}

#[tokio::test]
async fn chat_cli_and_a_second_client_talk_both_ways_through_the_chat_example() {
    let (url, io) = start_server().await;
    let (bob, info, mut heard) = second_client(&url, "rust", "bob").await;
    assert_eq!(
        info,
        json!({"room": "rust", "nick": "bob", "members": ["bob"]})
    );

    let (input, cli_input) = mpsc::channel(16);
    let (out, mut shown) = mpsc::channel(chat_cli::OUTPUT_LINES);
    let cli_url = url.clone();
    let cli = tokio::spawn(async move {
        chat_cli::run(&cli_url, "rust", "ann", cli_input, out)
            .await
            .map_err(|e| e.to_string())
    });
    let connected = line_with(&mut shown, "* connected as ").await;
    let cli_id = connected.trim_start_matches("* connected as ").to_owned();
    assert_eq!(
        line_with(&mut shown, "* joined").await,
        "* joined #rust as ann; in the room: ann, bob"
    );
    let (joined, _) = next_event(&mut heard, "joined").await;
    assert_eq!(joined, json!({"nick": "ann"}));
    let (members, _) = next_event(&mut heard, "members").await;
    assert_eq!(members, json!({"room": "rust", "members": ["ann", "bob"]}));

    // A line typed in the terminal reaches bob, with the server's time; the terminal shows
    // that the server took it.
    input.send("hello from the terminal".into()).await.unwrap();
    let (msg, _) = next_event(&mut heard, "chat").await;
    assert_eq!(msg["nick"], "ann");
    assert_eq!(msg["text"], "hello from the terminal");
    let at = msg["at"].as_u64().expect("a server timestamp");
    assert!(at > 0);
    assert!(line_with(&mut shown, "  (sent ")
        .await
        .starts_with("  (sent "));

    // bob's message is shown in the terminal, and bob's ack carries the same time.
    let reply = bob
        .timeout(WAIT)
        .emit_with_ack("chat", &("hello from bob",))
        .await
        .unwrap();
    let (ack,): (Value,) = reply.args().unwrap();
    assert!(ack["at"].as_u64().is_some(), "{ack}");
    let line = line_with(&mut shown, "bob: hello from bob").await;
    assert!(line.starts_with('['), "{line}");

    // The connection drops and comes back within the recovery window: the terminal client does
    // not join again, so bob hears it leave and come back in the member list, never "joined".
    io.of("/")
        .socket(&cli_id)
        .expect("the chat-cli's socket")
        .close_transport();
    let (left, _) = next_event(&mut heard, "left").await;
    assert_eq!(left, json!({"nick": "ann"}));
    let (members, _) = next_event(&mut heard, "members").await;
    assert_eq!(members["members"], json!(["bob"]));
    line_with(&mut shown, "session recovered").await;
    let (members, _) = next_event(&mut heard, "members").await;
    assert_eq!(members["members"], json!(["ann", "bob"]));
    input.send("still here".into()).await.unwrap();
    let (msg, before) = next_event(&mut heard, "chat").await;
    assert_eq!(msg["text"], "still here");
    assert!(
        before.iter().all(|(event, _)| event != "joined"),
        "bob heard {before:?}"
    );

    // bob leaves: the terminal says so.
    bob.disconnect();
    assert_eq!(line_with(&mut shown, "* bob left").await, "* bob left");
    assert_eq!(line_with(&mut shown, "* in #rust").await, "* in #rust: ann");

    // The end of the input ends the client.
    drop(input);
    let ended = tokio::time::timeout(WAIT, cli).await;
    assert_eq!(ended.expect("chat-cli ends").unwrap(), Ok(()));
}

#[tokio::test]
async fn chat_cli_shows_what_the_server_refuses() {
    let (url, _io) = start_server().await;

    // No nickname: the server refuses the join, the terminal says why and the client ends.
    let (_input, cli_input) = mpsc::channel::<String>(1);
    let (out, mut shown) = mpsc::channel(chat_cli::OUTPUT_LINES);
    let result = tokio::time::timeout(WAIT, chat_cli::run(&url, "rust", "  ", cli_input, out))
        .await
        .expect("chat-cli ends");
    assert_eq!(
        result.map_err(|e| e.to_string()),
        Err("join refused: a nickname is required".to_owned())
    );
    assert_eq!(
        line_with(&mut shown, "refused").await,
        "* join refused: a nickname is required"
    );

    // A message before any join is refused too, with the reason in the ack.
    let socket = ferrio_client::io(&url).connect().await.unwrap();
    let reply = socket
        .timeout(WAIT)
        .emit_with_ack("chat", &("anyone?",))
        .await
        .unwrap();
    let (ack,): (Value,) = reply.args().unwrap();
    assert_eq!(ack, json!({"error": "join a room first"}));
}
