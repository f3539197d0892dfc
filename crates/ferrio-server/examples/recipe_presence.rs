//! Recipe: who is online, with several tabs per user.
//!
//! Every socket of a user joins the room `user:<name>`, so the room is the user's set of open
//! tabs: `to("user:ann").emit(..)` reaches all of them, and the user is online while the room
//! exists. When a socket connects, everyone gets the `online` list (sorted user names); when a
//! socket is going away, the `disconnecting` handler (which runs while the socket is still in
//! its rooms) checks the size of the user's room: 1 means this is the user's last tab, so
//! everyone gets the list without that user. Closing one of two tabs changes nothing.
//!
//! ```text
//! cargo run -p ferrio-server --example recipe_presence          # http://127.0.0.1:3000
//! PORT=0 cargo run -p ferrio-server --example recipe_presence   # any free port (printed)
//! ```
//!
//! From a `socket.io-client` 4.x: `io(url, { auth: { user: "ann" } })`, then listen to
//! `online` (`["ann", "bob"]`); `socket.emit("notify", "bob", "hi")` reaches every tab of bob
//! as `notify` (`{ from: "ann", text: "hi" }`).
//!
//! Here the user name comes from `auth` to keep the recipe short; a real application takes it
//! from its login (see `recipe_login.rs`: the connect middleware there puts a `User` in the
//! socket's data the same way).

use ferrio_server::{AckSender, ConnectError, Ferrio, Namespace, Socket};
use serde_json::json;

/// The user a socket belongs to.
#[derive(Clone)]
struct User(String);

/// The room of every socket of `user`.
fn user_room(user: &str) -> String {
    format!("user:{user}")
}

/// The users online: those with a room, minus `leaving` (the user whose last socket is going
/// away, still in its room while the `disconnecting` handlers run).
fn online(ns: &Namespace, leaving: Option<&str>) -> Vec<String> {
    let mut users: Vec<String> = ns
        .rooms()
        .into_iter()
        .filter_map(|room| room.strip_prefix("user:").map(str::to_owned))
        .filter(|user| Some(user.as_str()) != leaving)
        .collect();
    users.sort();
    users
}

#[derive(serde::Deserialize)]
struct Auth {
    user: String,
}

/// The Socket.IO server with presence on its main namespace.
fn server() -> Ferrio {
    let io = Ferrio::builder().build();
    io.of("/")
        .use_connect(|socket: Socket| async move {
            match socket.handshake().auth::<Auth>() {
                Ok(Auth { user }) if !user.is_empty() && user.len() <= 32 => {
                    socket.insert_data(User(user));
                    Ok(())
                }
                _ => Err(ConnectError::new("a user name is required")),
            }
        })
        .on_connection(|socket: Socket| async move {
            let Some(User(user)) = socket.data::<User>() else {
                return;
            };
            socket.join(user_room(&user));
            let ns = socket.namespace();
            let _ = ns.emit("online", &(online(&ns, None),));

            // notify(user, text): to every tab of that user.
            socket.on(
                "notify",
                |socket: Socket, (to, text): (String, String), ack: AckSender| async move {
                    let from = socket.data::<User>().map(|u| u.0);
                    let tabs = socket.namespace().to(user_room(&to));
                    let reached = tabs.sockets().len();
                    tabs.emit("notify", &(json!({ "from": from, "text": text }),))?;
                    ack.send(&(reached,))
                },
            );

            socket.on_disconnecting(|socket: Socket, _| async move {
                let Some(User(user)) = socket.data::<User>() else {
                    return;
                };
                let ns = socket.namespace();
                // Still in the room: 1 means this was the user's last tab.
                if ns.to(user_room(&user)).sockets().len() <= 1 {
                    let _ = socket
                        .broadcast()
                        .emit("online", &(online(&ns, Some(&user)),));
                }
            });
        });
    io
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".into());
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    println!("listening on http://{}", listener.local_addr()?);
    server().serve(listener).await
}
