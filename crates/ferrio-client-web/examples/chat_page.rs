//! A chat page in Rust: `ferrio-client-web` with plain `web-sys` DOM, speaking the events of
//! `ferrio-server`'s chat example (`join`, `chat`, `members`, `joined`, `left`; see
//! `crates/ferrio-server/examples/chat.rs`). The server is the page's own origin, or the one
//! given as `?server=http://host:port`.
//!
//! Built for the browser only (`--target wasm32-unknown-unknown`, then `wasm-bindgen --target
//! web`); `crates/ferrio-client-web/README.md` has the commands.
//!
//! The page's elements have ids the browser test reads: `#status` (`connected`, `recovered`,
//! `disconnected: <reason>`), `#members` (the room's nicknames, comma-separated), `#messages`
//! (one `<li>` per line: `nick: text`, or `* nick joined` / `* nick left`), `#error`.

#[cfg(target_arch = "wasm32")]
mod page {
    use std::cell::RefCell;
    use std::rc::Rc;
    use std::time::Duration;

    use ferrio_client_web::{AckSender, Socket};
    use serde::Deserialize;
    use serde_json::Value;
    use wasm_bindgen::closure::Closure;
    use wasm_bindgen::JsCast;
    use web_sys::{Document, HtmlInputElement};

    const STYLE: &str = "body{font:15px system-ui,sans-serif;max-width:40em;margin:2em auto}\
        #messages{list-style:none;padding:0;min-height:10em;border:1px solid #ccc}\
        #messages li{padding:.2em .5em}#error{color:#b00}";

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

    /// The `join` acknowledgement: the room and its members, or why not.
    #[derive(Deserialize)]
    struct Joined {
        #[serde(default)]
        members: Vec<String>,
        #[serde(default)]
        error: Option<String>,
    }

    fn document() -> Option<Document> {
        web_sys::window()?.document()
    }

    fn set_text(id: &str, text: &str) {
        if let Some(e) = document().and_then(|d| d.get_element_by_id(id)) {
            e.set_text_content(Some(text));
        }
    }

    fn add_line(text: &str) {
        let Some(doc) = document() else {
            return;
        };
        let (Some(list), Ok(li)) = (doc.get_element_by_id("messages"), doc.create_element("li"))
        else {
            return;
        };
        li.set_text_content(Some(text));
        let _ = list.append_child(&li);
    }

    fn input(id: &str) -> Option<HtmlInputElement> {
        document()?.get_element_by_id(id)?.dyn_into().ok()
    }

    fn param(name: &str) -> Option<String> {
        let search = web_sys::window()?.location().search().ok()?;
        let prefix = format!("{name}=");
        search
            .trim_start_matches('?')
            .split('&')
            .find_map(|kv| kv.strip_prefix(prefix.as_str()))
            .map(|s| String::from(js_sys::decode_uri_component(s).unwrap_or_else(|_| s.into())))
    }

    /// Builds the page's elements.
    fn build(doc: &Document) -> Option<()> {
        let body = doc.body()?;
        body.set_inner_html(&format!(
            "<style>{STYLE}</style><h1>Ferrio chat (Rust in the browser)</h1>\
             <p>Status: <span id=status>connecting</span></p>\
             <p><input id=nick placeholder=nickname> <input id=room placeholder=room value=lobby>\
             <button id=join>Join</button></p>\
             <p>Members: <span id=members></span></p><ul id=messages></ul>\
             <p><input id=text placeholder=message size=40> <button id=send>Send</button></p>\
             <p id=error></p>"
        ));
        Some(())
    }

    fn on_click(id: &str, f: impl Fn() + 'static) {
        let Some(button) = document().and_then(|d| d.get_element_by_id(id)) else {
            return;
        };
        let closure = Closure::<dyn Fn()>::new(f);
        let _ = button.add_event_listener_with_callback("click", closure.as_ref().unchecked_ref());
        // The page lives as long as the button: the listener is never removed.
        closure.forget();
    }

    /// What the page remembers: the nickname and room it joined, to join again after a
    /// connection that did not recover.
    #[derive(Default)]
    struct Me {
        joined: Option<(String, String)>,
    }

    async fn join(socket: &Socket, me: &Rc<RefCell<Me>>, room: String, nick: String) {
        let reply = socket
            .timeout(Duration::from_secs(5))
            .emit_with_ack("join", &(room.as_str(), nick.as_str()))
            .await;
        match reply.map(|r| r.args::<(Joined,)>()) {
            Ok(Ok((Joined {
                error: None,
                members,
            },))) => {
                set_text("members", &members.join(","));
                set_text("error", "");
                me.borrow_mut().joined = Some((room, nick));
            }
            Ok(Ok((Joined {
                error: Some(error), ..
            },))) => set_text("error", &error),
            Ok(Err(e)) => set_text("error", &format!("unexpected answer: {e}")),
            Err(e) => set_text("error", &e.to_string()),
        }
    }

    /// Starts the page (called by `main`, which wasm-bindgen runs when the module loads).
    pub fn start() {
        let Some(doc) = document() else {
            return;
        };
        if build(&doc).is_none() {
            return;
        }
        let origin = web_sys::window()
            .and_then(|w| w.location().origin().ok())
            .unwrap_or_default();
        let server = param("server").unwrap_or(origin);
        let me = Rc::new(RefCell::new(Me::default()));
        let on_connect_me = me.clone();
        let socket = ferrio_client_web::io(&format!("{server}/"))
            .on(
                "chat",
                |_s: Socket, (line,): (Line,), _ack: AckSender| async move {
                    add_line(&format!("{}: {}", line.nick, line.text));
                },
            )
            .on(
                "joined",
                |_s: Socket, (who,): (Who,), _ack: AckSender| async move {
                    add_line(&format!("* {} joined", who.nick));
                },
            )
            .on(
                "left",
                |_s: Socket, (who,): (Who,), _ack: AckSender| async move {
                    add_line(&format!("* {} left", who.nick));
                },
            )
            .on(
                "members",
                |_s: Socket, (m,): (Members,), _ack: AckSender| async move {
                    set_text("members", &m.members.join(","));
                },
            )
            .with_socket(move |s| {
                s.on_connect(move |socket| {
                    let me = on_connect_me.clone();
                    async move {
                        if socket.recovered() {
                            set_text("status", "recovered");
                            return;
                        }
                        set_text("status", "connected");
                        let again = me.borrow().joined.clone();
                        if let Some((room, nick)) = again {
                            join(&socket, &me, room, nick).await;
                        }
                    }
                });
                s.on_disconnect(|_s, reason| async move {
                    set_text("status", &format!("disconnected: {reason}"));
                });
                s.on_connect_error(|_s, e| async move {
                    set_text("error", &e.to_string());
                });
                s.on_error(|_s, event, error| {
                    set_text("error", &format!("{event}: {error}"));
                });
            })
            .open();
        let socket = match socket {
            Ok(s) => s,
            Err(e) => {
                set_text("error", &e.to_string());
                return;
            }
        };
        let s = socket.clone();
        on_click("join", move || {
            let nick = input("nick").map(|i| i.value()).unwrap_or_default();
            let room = input("room").map(|i| i.value()).unwrap_or_default();
            let (s, me) = (s.clone(), me.clone());
            wasm_bindgen_futures::spawn_local(async move { join(&s, &me, room, nick).await });
        });
        on_click("send", move || {
            let Some(field) = input("text") else {
                return;
            };
            let text = field.value();
            if text.trim().is_empty() {
                return;
            }
            field.set_value("");
            let socket = socket.clone();
            wasm_bindgen_futures::spawn_local(async move {
                let reply = socket
                    .timeout(Duration::from_secs(5))
                    .emit_with_ack("chat", &(text.as_str(),))
                    .await;
                match reply.map(|r| r.args::<(Value,)>()) {
                    Ok(Ok((v,))) if v.get("error").is_none() => add_line(&format!("me: {text}")),
                    Ok(Ok((v,))) => set_text("error", &v["error"].to_string()),
                    Ok(Err(e)) => set_text("error", &e.to_string()),
                    Err(e) => set_text("error", &e.to_string()),
                }
            });
        });
    }
}

fn main() {
    #[cfg(target_arch = "wasm32")]
    page::start();
}
