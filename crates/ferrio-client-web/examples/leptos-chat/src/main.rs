//! A chat page in Rust with Leptos (client-side rendering) and `ferrio-client-web`, speaking the
//! events of `ferrio-server`'s chat example (see `crates/ferrio-server/examples/chat.rs`):
//! `join(room, nick)` and `chat(text)` with acknowledgements, `typing(bool)`, and from the server
//! `joined`, `left`, `members`, `chat` and `typing`. It works as well against Node's `socket.io`
//! running the same events.
//!
//! The server is the page's own origin (the chat example serves this page at `/leptos/`), or
//! the one given as `?server=http://host:port`. `build.sh` beside this crate builds it; the
//! browser tests (`crates/ferrio-client-web/test/`) drive it by these element ids: `#status`
//! (`connected`, `recovered`, `disconnected: <reason>`), `#nick`, `#room`, `#join`, `#members`
//! (the room's nicknames, comma-separated), `#messages` (one `<li>` per line: `nick: text`,
//! `me: text` once the server acknowledged it, `* nick joined`, `* nick left`), `#typing`,
//! `#text`, `#send`, `#error`.

#[cfg(target_arch = "wasm32")]
mod page {
    use std::time::Duration;

    use ferrio_client_web::{AckSender, Socket};
    use leptos::prelude::*;
    use serde::Deserialize;
    use serde_json::Value;

    /// A chat line from the server.
    #[derive(Deserialize)]
    struct Line {
        nick: String,
        text: String,
    }

    /// Someone who joined or left.
    #[derive(Deserialize)]
    struct Who {
        nick: String,
    }

    /// A room's member list.
    #[derive(Deserialize)]
    struct Members {
        members: Vec<String>,
    }

    /// Someone started or stopped typing.
    #[derive(Deserialize)]
    struct Typing {
        nick: String,
        typing: bool,
    }

    /// The `join` acknowledgement: the room and its members, or why not.
    #[derive(Deserialize)]
    struct Joined {
        #[serde(default)]
        members: Vec<String>,
        #[serde(default)]
        error: Option<String>,
    }

    /// The page's state: signals, so `Copy` into every handler.
    #[derive(Clone, Copy)]
    struct Chat {
        status: RwSignal<String>,
        members: RwSignal<Vec<String>>,
        /// The message list, each line with a number (its key in the list).
        lines: RwSignal<Vec<(usize, String)>>,
        /// Who is typing, each with the number of the `typing` event that said so last.
        typers: RwSignal<Vec<(String, u64)>>,
        /// How many `typing` events came.
        typing_events: RwSignal<u64>,
        error: RwSignal<String>,
        /// The room and nickname joined, to join again after a connection that did not
        /// recover.
        joined: RwSignal<Option<(String, String)>>,
    }

    impl Chat {
        fn new() -> Self {
            Chat {
                status: RwSignal::new("connecting".to_owned()),
                members: RwSignal::new(Vec::new()),
                lines: RwSignal::new(Vec::new()),
                typers: RwSignal::new(Vec::new()),
                typing_events: RwSignal::new(0),
                error: RwSignal::new(String::new()),
                joined: RwSignal::new(None),
            }
        }

        fn add_line(self, text: String) {
            self.lines.update(|lines| {
                let n = lines.len();
                lines.push((n, text));
            });
        }

        /// Shows or hides "`nick` is typing". Shown, it goes away after 4 s unless said again
        /// (the typist's page says it each second while typing; the last "stopped" may be lost).
        fn set_typing(self, nick: &str, typing: bool) {
            let n = self.typing_events.get_untracked() + 1;
            self.typing_events.set(n);
            self.typers.update(|t| {
                t.retain(|(who, _)| who != nick);
                if typing {
                    t.push((nick.to_owned(), n));
                }
            });
            if typing {
                let nick = nick.to_owned();
                set_timeout(
                    move || {
                        self.typers
                            .update(|t| t.retain(|(who, at)| *who != nick || *at != n));
                    },
                    Duration::from_secs(4),
                );
            }
        }

        async fn join(self, socket: Socket, room: String, nick: String) {
            let reply = socket
                .timeout(Duration::from_secs(5))
                .emit_with_ack("join", &(room.as_str(), nick.as_str()))
                .await;
            match reply.map(|r| r.args::<(Joined,)>()) {
                Ok(Ok((Joined {
                    error: None,
                    members,
                },))) => {
                    self.members.set(members);
                    self.typers.set(Vec::new());
                    self.error.set(String::new());
                    self.joined.set(Some((room, nick)));
                }
                Ok(Ok((Joined {
                    error: Some(error), ..
                },))) => self.error.set(error),
                Ok(Err(e)) => self.error.set(format!("unexpected answer: {e}")),
                Err(e) => self.error.set(e.to_string()),
            }
        }

        async fn send(self, socket: Socket, text: String) {
            let reply = socket
                .timeout(Duration::from_secs(5))
                .emit_with_ack("chat", &(text.as_str(),))
                .await;
            match reply.map(|r| r.args::<(Value,)>()) {
                Ok(Ok((v,))) => match v.get("error").and_then(Value::as_str) {
                    None => self.add_line(format!("me: {text}")),
                    Some(error) => self.error.set(error.to_owned()),
                },
                Ok(Err(e)) => self.error.set(format!("unexpected answer: {e}")),
                Err(e) => self.error.set(e.to_string()),
            }
        }
    }

    /// The value of the query parameter `name` of the page's URL.
    fn param(name: &str) -> Option<String> {
        let search = web_sys::window()?.location().search().ok()?;
        let prefix = format!("{name}=");
        search
            .trim_start_matches('?')
            .split('&')
            .find_map(|kv| kv.strip_prefix(prefix.as_str()))
            .map(|s| String::from(js_sys::decode_uri_component(s).unwrap_or_else(|_| s.into())))
    }

    /// Opens the connection, with the server's events feeding `chat`'s signals.
    fn connect(chat: Chat) -> Result<Socket, ferrio_client_web::Error> {
        let origin = web_sys::window()
            .and_then(|w| w.location().origin().ok())
            .unwrap_or_default();
        let server = param("server").unwrap_or(origin);
        ferrio_client_web::io(&format!("{server}/"))
            .on(
                "chat",
                move |_s: Socket, (line,): (Line,), _ack: AckSender| async move {
                    chat.set_typing(&line.nick, false);
                    chat.add_line(format!("{}: {}", line.nick, line.text));
                },
            )
            .on(
                "joined",
                move |_s: Socket, (who,): (Who,), _ack: AckSender| async move {
                    chat.add_line(format!("* {} joined", who.nick));
                },
            )
            .on(
                "left",
                move |_s: Socket, (who,): (Who,), _ack: AckSender| async move {
                    chat.set_typing(&who.nick, false);
                    chat.add_line(format!("* {} left", who.nick));
                },
            )
            .on(
                "members",
                move |_s: Socket, (m,): (Members,), _ack: AckSender| async move {
                    chat.members.set(m.members);
                },
            )
            .on(
                "typing",
                move |_s: Socket, (t,): (Typing,), _ack: AckSender| async move {
                    chat.set_typing(&t.nick, t.typing);
                },
            )
            .with_socket(move |s| {
                s.on_connect(move |socket| async move {
                    if socket.recovered() {
                        // The server kept this socket in its room: joining again would tell
                        // the room "joined" a second time.
                        chat.status.set("recovered".to_owned());
                        return;
                    }
                    chat.status.set("connected".to_owned());
                    // A failed attempt before this one is over.
                    chat.error.set(String::new());
                    if let Some((room, nick)) = chat.joined.get_untracked() {
                        chat.join(socket, room, nick).await;
                    }
                });
                s.on_disconnect(move |_s, reason| async move {
                    chat.status.set(format!("disconnected: {reason}"));
                });
                s.on_connect_error(move |_s, e| async move {
                    chat.error.set(e.to_string());
                });
                s.on_error(move |_s, event, error| {
                    chat.error.set(format!("{event}: {error}"));
                });
            })
            .open()
    }

    /// The chat page.
    #[component]
    fn App() -> impl IntoView {
        let chat = Chat::new();
        let socket = match connect(chat) {
            Ok(socket) => socket,
            Err(e) => {
                let e = e.to_string();
                return view! { <p id="error">{e}</p> }.into_any();
            }
        };
        let nick = RwSignal::new(String::new());
        let room = RwSignal::new("lobby".to_owned());
        let text = RwSignal::new(String::new());
        // When this page last told the room it is typing (ms since 1970), 0 if it is not.
        let typing_since = RwSignal::new(0.0);

        let join_socket = socket.clone();
        let join = move |_| {
            let (socket, room, nick) = (join_socket.clone(), room.get(), nick.get());
            leptos::task::spawn_local(chat.join(socket, room, nick));
        };
        let typing_socket = socket.clone();
        let on_input = move |_| {
            if chat.joined.get_untracked().is_none() {
                return;
            }
            // Said again every second while typing: the server relays it as volatile, so
            // one may be lost.
            let now = js_sys::Date::now();
            let typing = !text.get_untracked().is_empty();
            let since = typing_since.get_untracked();
            if typing && now - since > 1000.0 {
                typing_since.set(now);
                let _ = typing_socket.emit("typing", &(true,));
            } else if !typing && since > 0.0 {
                typing_since.set(0.0);
                let _ = typing_socket.emit("typing", &(false,));
            }
        };
        let send = move || {
            let line = text.get_untracked();
            if line.trim().is_empty() {
                return;
            }
            text.set(String::new());
            if typing_since.get_untracked() > 0.0 {
                typing_since.set(0.0);
                let _ = socket.emit("typing", &(false,));
            }
            leptos::task::spawn_local(chat.send(socket.clone(), line));
        };
        let send_key = send.clone();

        view! {
            <h1>"Ferrio chat (Leptos)"</h1>
            <p>"Status: " <span id="status">{move || chat.status.get()}</span></p>
            <p>
                <input id="nick" placeholder="nickname" bind:value=nick />
                " "
                <input id="room" placeholder="room" bind:value=room />
                " "
                <button id="join" on:click=join>"Join"</button>
            </p>
            <p>"Members: " <span id="members">{move || chat.members.get().join(",")}</span></p>
            <ul id="messages">
                <For each=move || chat.lines.get() key=|(n, _)| *n let((_, line))>
                    <li>{line}</li>
                </For>
            </ul>
            <p id="typing">
                {move || {
                    let t: Vec<String> = chat.typers.get().into_iter().map(|(n, _)| n).collect();
                    match t.len() {
                        0 => String::new(),
                        1 => format!("{} is typing…", t[0]),
                        _ => format!("{} are typing…", t.join(", ")),
                    }
                }}
            </p>
            <p>
                <input
                    id="text"
                    placeholder="message"
                    size="40"
                    prop:disabled=move || chat.joined.get().is_none()
                    bind:value=text
                    on:input=on_input
                    on:keydown=move |e| {
                        if e.key() == "Enter" {
                            send_key();
                        }
                    }
                />
                " "
                <button
                    id="send"
                    prop:disabled=move || chat.joined.get().is_none()
                    on:click=move |_| send()
                >
                    "Send"
                </button>
            </p>
            <p id="error">{move || chat.error.get()}</p>
        }
        .into_any()
    }

    /// Mounts the page (called by `main`, which wasm-bindgen runs when the module loads).
    pub fn start() {
        leptos::mount::mount_to_body(App);
    }
}

fn main() {
    #[cfg(target_arch = "wasm32")]
    page::start();
}
