//! The interoperability page: `ferrio-client-web` in the browser against a Socket.IO server
//! with the end-to-end handlers (`ferrio-server`'s `e2e` example, or Node's `socket.io` with the
//! same handlers). Open it as `index.html?server=http://127.0.0.1:3000`; it runs its checks and
//! writes one line per check into `<pre id="log">` (`ok name` or `FAIL name: why`), and its
//! progress into `document.body.dataset.phase`:
//!
//! - `connected`: the first checks are done; the page waits for the server to go away (the test
//!   stops it) and come back (restarted on the same port);
//! - `done`: every check ran (the log says which failed).
//!
//! With `?options=<kind>&path=<engine path>` (`kind`: `node` or `ferrio`), served by the
//! server's own origin (the test's recording front), it checks the connection options and
//! views instead: extra headers (the test reads them from its record of the requests), the
//! manager's `packet` listeners, the engine's id, transport and events, typed connection
//! errors, and `close_on_beforeunload` (the server's disconnect reason: from `/log-opts` on
//! Node's test server, from the `observers` room on `ferrio-server`'s e2e example).
//!
//! Built for the browser only (`--target wasm32-unknown-unknown`, then `wasm-bindgen --target
//! web`); see `crates/ferrio-client-web/README.md`.

#[cfg(target_arch = "wasm32")]
mod page {
    use std::time::Duration;

    use bytes::Bytes;
    use std::cell::RefCell;
    use std::rc::Rc;

    use ferrio_client_web::{
        AckSender, ConnectionError, DisconnectReason, EngineEvent, EnginePacket, Error,
        ManagerEvent, Message, PacketType, Socket, Transport, TransportOptions,
    };
    use futures_channel::mpsc;
    use futures_util::StreamExt;
    use serde::Deserialize;
    use serde_json::{json, Value};

    /// Appends a line to the page's log.
    fn line(text: &str) {
        let Some(doc) = web_sys::window().and_then(|w| w.document()) else {
            return;
        };
        if let Some(log) = doc.get_element_by_id("log") {
            let now = log.text_content().unwrap_or_default();
            log.set_text_content(Some(&format!("{now}{text}\n")));
        }
    }

    fn check(name: &str, result: Result<(), String>) {
        match result {
            Ok(()) => line(&format!("ok {name}")),
            Err(why) => line(&format!("FAIL {name}: {why}")),
        }
    }

    fn phase(name: &str) {
        if let Some(body) = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.body())
        {
            let _ = body.set_attribute("data-phase", name);
        }
    }

    /// Waits for the next item of `rx`, at most `ms` milliseconds.
    async fn next<T>(rx: &mut mpsc::UnboundedReceiver<T>, ms: u32) -> Result<T, String> {
        let timeout = sleep(ms);
        futures_util::pin_mut!(timeout);
        match futures_util::future::select(rx.next(), timeout).await {
            futures_util::future::Either::Left((Some(v), _)) => Ok(v),
            futures_util::future::Either::Left((None, _)) => Err("channel closed".to_owned()),
            futures_util::future::Either::Right(_) => Err(format!("nothing within {ms} ms")),
        }
    }

    async fn sleep(ms: u32) {
        let promise = js_sys::Promise::new(&mut |resolve, _| {
            if let Some(w) = web_sys::window() {
                let _ =
                    w.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms as i32);
            }
        });
        let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
    }

    /// What the `message-back` handler is typed to take.
    #[derive(Debug, Deserialize, PartialEq)]
    struct Note {
        text: String,
        n: u32,
    }

    /// Runs the scenario (called by `main`, which wasm-bindgen runs when the module loads).
    pub fn start() {
        wasm_bindgen_futures::spawn_local(async {
            if let Err(e) = run().await {
                line(&format!("FAIL scenario: {e}"));
            }
            phase("done");
        });
    }

    /// The query parameter `name` of the page's URL.
    fn param(name: &str) -> Option<String> {
        let search = web_sys::window()?.location().search().ok()?;
        let prefix = format!("{name}=");
        search
            .trim_start_matches('?')
            .split('&')
            .find_map(|kv| kv.strip_prefix(prefix.as_str()))
            .map(|s| String::from(js_sys::decode_uri_component(s).unwrap_or_else(|_| s.into())))
    }

    async fn run() -> Result<(), String> {
        if let Some(hostile) = param("hostile") {
            return against_hostile(&hostile).await;
        }
        if let Some(kind) = param("options") {
            return options(&kind, &param("path").ok_or("no ?path= parameter")?).await;
        }
        let base = param("server").ok_or("no ?server= parameter")?;
        let (auth_tx, mut auth_rx) = mpsc::unbounded::<Value>();
        let (back_tx, mut back_rx) = mpsc::unbounded::<(Note, Bytes)>();
        let (error_tx, mut error_rx) = mpsc::unbounded::<(String, String)>();
        let (conn_tx, mut conn_rx) = mpsc::unbounded::<String>();
        let (ask_tx, mut ask_rx) = mpsc::unbounded::<Value>();
        let (mgr_tx, mut mgr_rx) = mpsc::unbounded::<ManagerEvent>();

        // Connect with auth; typed handlers registered before the connection.
        let socket = ferrio_client_web::io(&format!("{base}/"))
            .auth(json!({ "token": "abc", "n": 1 }))
            .reconnection_delay(Duration::from_millis(200))
            .reconnection_delay_max(Duration::from_millis(500))
            .on_manager_event(move |e| {
                let _ = mgr_tx.unbounded_send(e.clone());
            })
            .on(
                "auth",
                move |_s: Socket, (auth,): (Value,), _ack: AckSender| {
                    let tx = auth_tx.clone();
                    async move {
                        let _ = tx.unbounded_send(auth);
                    }
                },
            )
            .on(
                "message-back",
                move |_s: Socket, (note, data): (Note, Bytes), _ack: AckSender| {
                    let tx = back_tx.clone();
                    async move {
                        let _ = tx.unbounded_send((note, data));
                    }
                },
            )
            .on("emit-with-ack", move |_s: Socket, msg: Message| {
                let tx = ask_tx.clone();
                async move {
                    if msg.ack_requested() {
                        // The server asks: answer with what it sent, plus a word.
                        let (v,): (Value,) = msg.args().unwrap_or((Value::Null,));
                        let _ = msg.ack(&(json!({ "answered": v }),));
                    } else {
                        let (v,): (Value,) = msg.args().unwrap_or((Value::Null,));
                        let _ = tx.unbounded_send(v);
                    }
                }
            })
            .with_socket(move |s| {
                let tx = error_tx.clone();
                s.on_error(move |_s, event, error| {
                    let _ = tx.unbounded_send((event.to_owned(), error.to_owned()));
                });
                let c = conn_tx.clone();
                s.on_connect(move |_s| {
                    let c = c.clone();
                    async move {
                        let _ = c.unbounded_send("connect".to_owned());
                    }
                });
                let c = conn_tx.clone();
                s.on_disconnect(move |_s, reason: DisconnectReason| {
                    let c = c.clone();
                    async move {
                        let _ = c.unbounded_send(format!("disconnect {reason}"));
                    }
                });
            })
            .connect()
            .await
            .map_err(|e| format!("connect: {e}"))?;
        check(
            "connect",
            if socket.connected() && socket.id().is_some() {
                Ok(())
            } else {
                Err("not connected after connect()".to_owned())
            },
        );
        let _ = next(&mut conn_rx, 5000).await;

        check(
            "auth reaches the server",
            match next(&mut auth_rx, 5000).await {
                Ok(v) if v == json!({ "token": "abc", "n": 1 }) => Ok(()),
                Ok(v) => Err(format!("server saw {v}")),
                Err(e) => Err(e),
            },
        );

        // emit with serde types and binary; the server echoes it as `message-back`.
        let sent = socket.emit(
            "message",
            &(
                json!({ "text": "hello", "n": 42 }),
                Bytes::from_static(&[1, 2, 3, 255]),
            ),
        );
        check(
            "emit, typed event back with binary",
            match (sent, next(&mut back_rx, 5000).await) {
                (Err(e), _) => Err(e.to_string()),
                (_, Ok((note, data)))
                    if note.text == "hello" && note.n == 42 && data[..] == [1, 2, 3, 255] =>
                {
                    Ok(())
                }
                (_, Ok(other)) => Err(format!("got {other:?}")),
                (_, Err(e)) => Err(e),
            },
        );

        // emit_with_ack with a timeout.
        let reply = socket
            .timeout(Duration::from_secs(5))
            .emit_with_ack(
                "message-with-ack",
                &("x", json!({ "a": [1, 2] }), Bytes::from_static(b"bin")),
            )
            .await;
        check(
            "emit_with_ack",
            match reply.map(|r| r.args::<(String, Value, Bytes)>()) {
                Ok(Ok((s, v, b)))
                    if s == "x" && v == json!({ "a": [1, 2] }) && &b[..] == b"bin" =>
                {
                    Ok(())
                }
                Ok(Ok(other)) => Err(format!("reply {other:?}")),
                Ok(Err(e)) => Err(format!("reply does not fit: {e}")),
                Err(e) => Err(e.to_string()),
            },
        );

        // `once` runs for one event only; `on_any_outgoing` sees the emits as they go out.
        let (once_tx, mut once_rx) = mpsc::unbounded::<String>();
        let (out_tx, mut out_rx) = mpsc::unbounded::<String>();
        socket.once("message-back", move |_s: Socket, msg: Message| {
            let tx = once_tx.clone();
            async move {
                let _ = tx.unbounded_send(msg.args::<(String,)>().map(|a| a.0).unwrap_or_default());
            }
        });
        let out_id = socket.on_any_outgoing(move |event, packet| {
            let first = packet.args::<(String,)>().map(|a| a.0).unwrap_or_default();
            let _ = out_tx.unbounded_send(format!("{event} {first}"));
        });
        let _ = socket.emit("message", &("first",));
        let _ = socket.emit("message", &("second",));
        let first = next(&mut once_rx, 5000).await;
        // Both echoes are in once `second` went through the typed handler's error report.
        let _ = next(&mut error_rx, 5000).await;
        let _ = next(&mut error_rx, 5000).await;
        let outgoing = (next(&mut out_rx, 5000).await, next(&mut out_rx, 5000).await);
        check(
            "once and on_any_outgoing",
            match (first, once_rx.try_recv().ok(), outgoing) {
                (Ok(f), None, (Ok(a), Ok(b)))
                    if f == "first" && a == "message first" && b == "message second" =>
                {
                    if socket.listeners("message-back") == 1
                        && socket.off_any_outgoing_listener(out_id)
                    {
                        Ok(())
                    } else {
                        Err("listeners not as expected".to_owned())
                    }
                }
                other => Err(format!("{other:?}")),
            },
        );

        // The server asks with an ack; the page's AckSender answers.
        let _ = socket.emit("emit-with-ack", &(json!({ "q": 7 }),));
        check(
            "server emit_with_ack answered by the page",
            match next(&mut ask_rx, 5000).await {
                Ok(v) if v == json!({ "answered": { "q": 7 } }) => Ok(()),
                Ok(v) => Err(format!("server got {v}")),
                Err(e) => Err(e),
            },
        );

        // Arguments that do not fit the typed handler: an error report, not a trap.
        let _ = socket.emit("message", &("not a note",));
        check(
            "wrong types reach on_error",
            match next(&mut error_rx, 5000).await {
                Ok((event, _)) if event == "message-back" => Ok(()),
                Ok((event, e)) => Err(format!("{event}: {e}")),
                Err(e) => Err(e),
            },
        );
        check(
            "the socket still works after wrong types",
            match socket
                .timeout(Duration::from_secs(5))
                .emit_with_ack("message-with-ack", &(1,))
                .await
            {
                Ok(r) if r.args::<(u32,)>().ok() == Some((1,)) => Ok(()),
                Ok(r) => Err(format!("{:?}", r.packet())),
                Err(e) => Err(e.to_string()),
            },
        );

        // A second namespace on the same connection.
        let custom = socket
            .manager()
            .socket("/custom")
            .auth(json!({ "token": "custom" }))
            .connect()
            .await
            .map_err(|e| format!("/custom: {e}"))?;
        check(
            "namespace on the same connection",
            match custom
                .timeout(Duration::from_secs(5))
                .emit_with_ack("whoami", &())
                .await
                .map(|r| r.args::<(Value,)>())
            {
                Ok(Ok((v,))) if v["nsp"] == "/custom" && v["auth"]["token"] == "custom" => {
                    if socket.manager().engine_id().is_some() {
                        Ok(())
                    } else {
                        Err("no engine id".to_owned())
                    }
                }
                Ok(Ok(v)) => Err(format!("whoami {v:?}")),
                Ok(Err(e)) => Err(e.to_string()),
                Err(e) => Err(e.to_string()),
            },
        );

        // A namespace whose middleware refuses: connect_error with the server's data.
        let refused = socket
            .manager()
            .socket("/restricted")
            .auth(json!({ "token": "wrong" }))
            .connect()
            .await;
        check(
            "refused namespace: connect_error with data",
            match refused {
                Err(Error::Connect(e))
                    if e.message == "not authorized"
                        && e.data == Some(json!({ "reason": "invalid token" })) =>
                {
                    Ok(())
                }
                Err(e) => Err(e.to_string()),
                Ok(_) => Err("connected".to_owned()),
            },
        );

        // Upgraded to WebSocket by now (polling first, through fetch).
        sleep(300).await;
        check(
            "polling then WebSocket",
            match socket.manager().transport() {
                Some(Transport::WebSocket) => Ok(()),
                other => Err(format!("transport {other:?}")),
            },
        );
        while mgr_rx.try_recv().is_ok() {}

        // Binary both ways over the WebSocket (binary frames, not base64 in polling payloads).
        let data = Bytes::from((0..=255u8).collect::<Vec<u8>>());
        let reply = socket
            .timeout(Duration::from_secs(5))
            .emit_with_ack("message-with-ack", &(data.clone(), "after"))
            .await;
        check(
            "binary over WebSocket",
            match reply.map(|r| r.args::<(Bytes, String)>()) {
                Ok(Ok((b, s))) if b == data && s == "after" => Ok(()),
                other => Err(format!("{other:?}")),
            },
        );

        if let Some(proxy) = param("proxy") {
            recovery(&base, &proxy).await?;
        }

        // The server goes away (the test stops it) and comes back: the page reconnects.
        phase("connected");
        let lost = next(&mut conn_rx, 20000).await;
        check(
            "disconnect when the server goes away",
            match lost {
                Ok(s) if s.starts_with("disconnect transport") => Ok(()),
                Ok(s) => Err(s),
                Err(e) => Err(e),
            },
        );
        let back = next(&mut conn_rx, 30000).await;
        let mut seen = Vec::new();
        while let Ok(e) = mgr_rx.try_recv() {
            seen.push(e);
        }
        check(
            "reconnection",
            match back {
                Ok(s) if s == "connect" => {
                    if seen.iter().any(|e| matches!(e, ManagerEvent::Reconnect(_))) {
                        Ok(())
                    } else {
                        Err(format!("no reconnect event: {seen:?}"))
                    }
                }
                Ok(s) => Err(s),
                Err(e) => Err(e),
            },
        );
        check(
            "auth sent again on reconnection",
            match next(&mut auth_rx, 5000).await {
                Ok(v) if v["token"] == "abc" => Ok(()),
                Ok(v) => Err(format!("server saw {v}")),
                Err(e) => Err(e),
            },
        );
        check(
            "emit_with_ack after reconnection",
            match socket
                .timeout(Duration::from_secs(5))
                .emit_with_ack("message-with-ack", &("again",))
                .await
            {
                Ok(r)
                    if r.args::<(String,)>().ok().as_ref().map(|a| a.0.as_str())
                        == Some("again") =>
                {
                    Ok(())
                }
                Ok(r) => Err(format!("{:?}", r.packet())),
                Err(e) => Err(e.to_string()),
            },
        );
        // The other namespace came back too.
        check(
            "namespace back after reconnection",
            match custom
                .timeout(Duration::from_secs(5))
                .emit_with_ack("whoami", &())
                .await
            {
                Ok(_) => Ok(()),
                Err(e) => Err(e.to_string()),
            },
        );
        socket.manager().close();
        Ok(())
    }

    /// Connection state recovery, WebSocket only: the page joins a room on the server's
    /// `/recovery/` endpoint through a proxy, a second client emits to the room (so that the
    /// first has an offset), the test cuts the proxy's connections, the second emits again, and
    /// the socket comes back recovered (same id) with the event it missed.
    async fn recovery(base: &str, proxy: &str) -> Result<(), String> {
        let (tx, mut rx) = mpsc::unbounded::<String>();
        let (room_tx, mut room_rx) = mpsc::unbounded::<String>();
        let socket = ferrio_client_web::io(&format!("{proxy}/"))
            .path("/recovery/")
            .transports(&[Transport::WebSocket])
            .on(
                "room-emit",
                move |_s: Socket, (text,): (String,), _ack: AckSender| {
                    let t = room_tx.clone();
                    async move {
                        let _ = t.unbounded_send(text);
                    }
                },
            )
            .reconnection_delay(Duration::from_millis(100))
            .reconnection_delay_max(Duration::from_millis(200))
            .with_socket(move |s| {
                let t = tx.clone();
                s.on_connect(move |s| {
                    let t = t.clone();
                    async move {
                        let _ = t.unbounded_send(format!("connect {}", s.recovered()));
                    }
                });
                let t = tx.clone();
                s.on_disconnect(move |_s, r| {
                    let t = t.clone();
                    async move {
                        let _ = t.unbounded_send(format!("disconnect {r}"));
                    }
                });
            })
            .connect()
            .await
            .map_err(|e| format!("/recovery/: {e}"))?;
        let _ = next(&mut rx, 5000).await;
        let id = socket.id();
        let joined = socket
            .timeout(Duration::from_secs(5))
            .emit_with_ack("join", &("r1",))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.args::<(Vec<String>,)>().map_err(|e| e.to_string()));
        check(
            "WebSocket only, room joined",
            match joined {
                Ok((rooms,)) if rooms == ["r1"] => match socket.manager().transport() {
                    Some(Transport::WebSocket) => Ok(()),
                    other => Err(format!("transport {other:?}")),
                },
                Ok(other) => Err(format!("rooms {other:?}")),
                Err(e) => Err(e),
            },
        );
        let other = ferrio_client_web::io(&format!("{base}/"))
            .path("/recovery/")
            .transports(&[Transport::WebSocket])
            .connect()
            .await
            .map_err(|e| format!("/recovery/, second client: {e}"))?;
        let room_emit = |text: &'static str| {
            other
                .timeout(Duration::from_secs(5))
                .emit_with_ack("room-emit", &("r1", text))
        };
        let before = room_emit("before").await.map_err(|e| e.to_string());
        check(
            "room event",
            match (before, next(&mut room_rx, 5000).await) {
                (Ok(_), Ok(text)) if text == "before" => Ok(()),
                (a, b) => Err(format!("{a:?} {b:?}")),
            },
        );
        phase("recovery");
        let lost = next(&mut rx, 20000).await;
        let missed = room_emit("missed").await.map_err(|e| e.to_string());
        let back = next(&mut rx, 20000).await;
        check(
            "the event missed while disconnected arrives",
            match (missed, next(&mut room_rx, 5000).await) {
                (Ok(_), Ok(text)) if text == "missed" => Ok(()),
                (a, b) => Err(format!("{a:?} {b:?}")),
            },
        );
        check(
            "connection state recovery",
            match (lost, back) {
                (Ok(l), Ok(b)) if l.starts_with("disconnect transport") && b == "connect true" => {
                    if socket.recovered() && socket.id() == id {
                        Ok(())
                    } else {
                        Err(format!(
                            "recovered {}, id {:?} then {id:?}",
                            socket.recovered(),
                            socket.id()
                        ))
                    }
                }
                (l, b) => Err(format!("{l:?} then {b:?}")),
            },
        );
        socket.disconnect();
        other.disconnect();
        Ok(())
    }

    /// The name of an engine event, for the order checks.
    fn engine_name(e: &EngineEvent) -> String {
        let packet = |p: &EnginePacket| match p {
            EnginePacket::Open(_) => "open",
            EnginePacket::Close => "close",
            EnginePacket::Ping(_) => "ping",
            EnginePacket::Pong(_) => "pong",
            EnginePacket::Message(_) | EnginePacket::Binary(_) => "message",
            EnginePacket::Upgrade => "upgrade",
            EnginePacket::Noop => "noop",
        };
        match e {
            EngineEvent::Open => "open".to_owned(),
            EngineEvent::Handshake(_) => "handshake".to_owned(),
            EngineEvent::Packet(p) => format!("packet:{}", packet(p)),
            EngineEvent::Heartbeat => "heartbeat".to_owned(),
            EngineEvent::Ping => "ping".to_owned(),
            EngineEvent::Message(_) => "message".to_owned(),
            EngineEvent::PacketCreate(p) => format!("packetCreate:{}", packet(p)),
            EngineEvent::Drain => "drain".to_owned(),
            EngineEvent::Upgrading(t) => format!("upgrading:{}", t.name()),
            EngineEvent::Upgrade(t) => format!("upgrade:{}", t.name()),
            EngineEvent::Error(e) => format!("error:{}", e.message()),
            EngineEvent::Close { reason, .. } => format!("close:{reason}"),
            other => format!("{other:?}"),
        }
    }

    /// Waits (at most `ms` milliseconds, in steps) until `done()`.
    async fn until(ms: u32, done: impl Fn() -> bool) -> bool {
        for _ in 0..ms / 20 {
            if done() {
                return true;
            }
            sleep(20).await;
        }
        done()
    }

    /// `GET /log-opts` of Node's test server, through the page's origin: its sockets'
    /// disconnect reasons since the last call.
    async fn disconnect_reasons() -> Result<Vec<String>, String> {
        let window = web_sys::window().ok_or("no window")?;
        let response = wasm_bindgen_futures::JsFuture::from(window.fetch_with_str("/log-opts"))
            .await
            .map_err(|e| format!("{e:?}"))?;
        let response: web_sys::Response =
            wasm_bindgen::JsCast::dyn_into(response).map_err(|_| "not a response".to_owned())?;
        let text =
            wasm_bindgen_futures::JsFuture::from(response.text().map_err(|e| format!("{e:?}"))?)
                .await
                .map_err(|e| format!("{e:?}"))?
                .as_string()
                .unwrap_or_default();
        let log: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        Ok(serde_json::from_value(log["disconnects"].clone()).unwrap_or_default())
    }

    /// The options and views of issue 20 against `kind`'s server at engine path `path`, from
    /// the server's own origin.
    async fn options(kind: &str, path: &str) -> Result<(), String> {
        let slash = path.ends_with('/');
        let engine_events = Rc::new(RefCell::new(Vec::<EngineEvent>::new()));
        let packets = Rc::new(RefCell::new(Vec::<(PacketType, String, String)>::new()));
        let (e, p) = (engine_events.clone(), packets.clone());
        // The first connection: an extra header on every polling request, the packet and
        // engine listeners, closed on `beforeunload`.
        let socket = ferrio_client_web::io("/")
            .path(path)
            .add_trailing_slash(slash)
            .query("m", "1")
            .extra_header("x-ferrio-extra", "one")
            .close_on_beforeunload(true)
            .on_engine_event(move |event| e.borrow_mut().push(event.clone()))
            .on_packet(move |packet| {
                let name = packet
                    .event_name()
                    .map(|n| n.into_owned())
                    .unwrap_or_default();
                p.borrow_mut()
                    .push((packet.kind(), packet.nsp().to_string(), name));
            })
            .connect()
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let manager = socket.manager().clone();
        let engine = manager.engine();
        let upgraded = until(5000, || engine.transport() == Some(Transport::WebSocket)).await;
        let pinged = until(5000, || {
            let names: Vec<String> = engine_events.borrow().iter().map(engine_name).collect();
            names
                .iter()
                .skip_while(|n| *n != "upgrade:websocket")
                .any(|n| n == "ping")
        })
        .await;
        let seen = packets.borrow().clone();
        check(
            "the manager's packet listeners see the server's packets",
            if seen.first().map(|(k, n, _)| (*k, n.as_str())) == Some((PacketType::Connect, "/"))
                && seen
                    .iter()
                    .any(|(k, _, name)| *k == PacketType::Event && name == "auth")
            {
                Ok(())
            } else {
                Err(format!("{seen:?}"))
            },
        );
        let whoami = socket
            .timeout(Duration::from_secs(5))
            .emit_with_ack("whoami", &())
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.args::<(Value,)>().map_err(|e| e.to_string()));
        check(
            "the engine's id and transport are the server's",
            match whoami {
                Ok((v,))
                    if upgraded
                        && v["transport"] == "websocket"
                        && engine.id().is_some()
                        && v["engineId"].as_str() == engine.id().as_deref()
                        && engine.transport().map(Transport::name) == Some("websocket") =>
                {
                    Ok(())
                }
                Ok((v,)) => Err(format!("server {v}, engine {engine:?}")),
                Err(e) => Err(e),
            },
        );
        let events = engine_events.borrow().clone();
        let names: Vec<String> = events.iter().map(engine_name).collect();
        let handshake_sid = events.iter().find_map(|e| match e {
            EngineEvent::Handshake(open) => Some(open.sid.clone()),
            _ => None,
        });
        let has = |n: &str| names.iter().any(|x| x == n);
        check(
            "the engine's events, in order",
            if pinged
                && names.get(..4)
                    == Some(
                        &["packet:open", "heartbeat", "handshake", "open"].map(String::from)[..],
                    )
                && handshake_sid == engine.id()
                && has("packetCreate:message")
                && has("packet:message")
                && has("message")
                && has("drain")
                && names
                    .iter()
                    .skip_while(|n| *n != "upgrading:websocket")
                    .any(|n| n == "upgrade:websocket")
            {
                Ok(())
            } else {
                Err(format!("{names:?}"))
            },
        );

        // A second connection: per-transport options for polling replace the top-level
        // headers on its requests (the test reads them).
        let second = ferrio_client_web::io("/")
            .path(path)
            .add_trailing_slash(slash)
            .query("m", "2")
            .extra_header("x-ferrio-extra", "two")
            .transport_options(
                Transport::Polling,
                TransportOptions::new().extra_header("x-ferrio-polling", "yes"),
            )
            .connect()
            .await
            .map_err(|e| format!("second connection: {e}"))?;
        check(
            "transport options",
            if second.connected() {
                Ok(())
            } else {
                Err("not connected".to_owned())
            },
        );
        let refused = ferrio_client_web::io("/")
            .path(path)
            .extra_header("not a header name", "x")
            .connect()
            .await;
        check(
            "an extra header that is not valid HTTP is refused",
            match refused {
                Err(Error::InvalidHeader(_)) => Ok(()),
                Err(e) => Err(e.to_string()),
                Ok(_) => Err("connected".to_owned()),
            },
        );
        second.manager().close();

        // The front refuses this connection's WebSocket: the probe fails, polling goes on.
        let third_events = Rc::new(RefCell::new(Vec::<EngineEvent>::new()));
        let e = third_events.clone();
        let third = ferrio_client_web::io("/")
            .path(path)
            .add_trailing_slash(slash)
            .query("m", "3")
            .on_engine_event(move |event| e.borrow_mut().push(event.clone()))
            .connect()
            .await
            .map_err(|e| format!("third connection: {e}"))?;
        let failed_probe = until(5000, || {
            third_events
                .borrow()
                .iter()
                .any(|e| matches!(e, EngineEvent::UpgradeError(_)))
        })
        .await;
        let answer = third
            .timeout(Duration::from_secs(5))
            .emit_with_ack("whoami", &())
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.args::<(Value,)>().map_err(|e| e.to_string()));
        let upgrade_errors: Vec<String> = third_events
            .borrow()
            .iter()
            .filter_map(|e| match e {
                EngineEvent::UpgradeError(text) => Some(text.clone()),
                _ => None,
            })
            .collect();
        check(
            "a failed upgrade probe: upgradeError, the session stays on polling",
            match answer {
                Ok((v,))
                    if failed_probe
                        && upgrade_errors.iter().all(|t| t.starts_with("probe error"))
                        && v["transport"] == "polling"
                        && third.manager().engine().transport() == Some(Transport::Polling) =>
                {
                    Ok(())
                }
                other => Err(format!("{other:?}, upgrade errors {upgrade_errors:?}")),
            },
        );
        third.manager().close();

        // `set_query`: the session open keeps `m=4`; the next one (its long poll cut after
        // 100 ms, a transport error, then a reconnection) sends `m=5` (the test reads the
        // requests).
        let (rec_tx, mut rec_rx) = mpsc::unbounded::<ManagerEvent>();
        let fourth = ferrio_client_web::io("/")
            .path(path)
            .add_trailing_slash(slash)
            .transports(&[Transport::Polling])
            .query("m", "4")
            .request_timeout(Duration::from_millis(100))
            .reconnection_delay(Duration::from_millis(50))
            .on_manager_event(move |e| {
                let _ = rec_tx.unbounded_send(e.clone());
            })
            .connect()
            .await
            .map_err(|e| format!("fourth connection: {e}"))?;
        fourth.manager().set_query(&[("m", "5")]);
        let reconnected = loop {
            match next(&mut rec_rx, 5000).await {
                Ok(ManagerEvent::Reconnect(_)) => break Ok(()),
                Ok(_) => continue,
                Err(e) => break Err(e),
            }
        };
        check(
            "set_query: the next session sends the new query",
            reconnected,
        );
        fourth.manager().close();

        // No Engine.IO server at that path: the connection fails with the transport's error.
        let (err_tx, mut err_rx) = mpsc::unbounded::<ManagerEvent>();
        let failed = ferrio_client_web::io("/")
            .path("/nothing-here/")
            .reconnection(false)
            .on_manager_event(move |e| {
                let _ = err_tx.unbounded_send(e.clone());
            })
            .connect()
            .await;
        let is_404 = |e: &ConnectionError| match e {
            ConnectionError::Transport(e) => e.message == "xhr poll error" && e.status == Some(404),
            _ => false,
        };
        let event = loop {
            match next(&mut err_rx, 5000).await {
                Ok(ManagerEvent::Error(e)) => break Ok(e),
                Ok(_) => continue,
                Err(e) => break Err(e),
            }
        };
        check(
            "errors carry the transport's error",
            match (failed, event) {
                (Err(Error::Connect(c)), Ok(e))
                    if c.cause.as_ref().is_some_and(is_404) && is_404(&e) =>
                {
                    Ok(())
                }
                (Err(e), event) => Err(format!("connect: {e:?}, manager: {event:?}")),
                (Ok(_), _) => Err("connected".to_owned()),
            },
        );

        // The page is about to unload: the connection closes at once.
        let id = socket.id();
        let observer = if kind == "ferrio" {
            let (tx, rx) = mpsc::unbounded::<Value>();
            let observer = ferrio_client_web::io("/")
                .path(path)
                .add_trailing_slash(slash)
                .on(
                    "peer-disconnect",
                    move |_s: Socket, (v,): (Value,), _ack: AckSender| {
                        let tx = tx.clone();
                        async move {
                            let _ = tx.unbounded_send(v);
                        }
                    },
                )
                .connect()
                .await
                .map_err(|e| format!("observer: {e}"))?;
            observer
                .timeout(Duration::from_secs(5))
                .emit_with_ack("join", &("observers",))
                .await
                .map_err(|e| format!("observer: {e}"))?;
            Some((observer, rx))
        } else {
            // The second and third connections' disconnections, out of the way.
            let mut gone = 0;
            for _ in 0..50 {
                gone += disconnect_reasons().await?.len();
                if gone >= 2 {
                    break;
                }
                sleep(100).await;
            }
            None
        };
        let window = web_sys::window().ok_or("no window")?;
        let unload = web_sys::Event::new("beforeunload").map_err(|e| format!("{e:?}"))?;
        let _ = window.dispatch_event(&unload);
        let reason = match observer {
            Some((observer, mut rx)) => {
                let reason = loop {
                    match next(&mut rx, 5000).await {
                        Ok(v) if v["id"].as_str() == id.as_deref() => {
                            break Ok(v["reason"].as_str().unwrap_or_default().to_owned())
                        }
                        Ok(_) => continue,
                        Err(e) => break Err(e),
                    }
                };
                observer.manager().close();
                reason
            }
            None => {
                let mut reasons = Vec::new();
                for _ in 0..50 {
                    reasons = disconnect_reasons().await?;
                    if !reasons.is_empty() {
                        break;
                    }
                    sleep(100).await;
                }
                match &reasons[..] {
                    [one] => Ok(one.clone()),
                    other => Err(format!("disconnect reasons {other:?}")),
                }
            }
        };
        check(
            "close_on_beforeunload: the server sees the transport close",
            match reason {
                Ok(r) if r == "transport close" => Ok(()),
                Ok(r) => Err(r),
                Err(e) => Err(e),
            },
        );
        manager.close();
        Ok(())
    }

    /// A server sending malformed frames: the page sees connect errors, disconnections and
    /// reconnection attempts, and goes on.
    async fn against_hostile(base: &str) -> Result<(), String> {
        let (tx, mut rx) = mpsc::unbounded::<String>();
        let (mgr_tx, mut mgr_rx) = mpsc::unbounded::<ManagerEvent>();
        let socket = ferrio_client_web::io(&format!("{base}/"))
            .reconnection_delay(Duration::from_millis(50))
            .reconnection_delay_max(Duration::from_millis(100))
            .timeout(Duration::from_secs(2))
            .ack_timeout(Duration::from_millis(500))
            // The engine's and the packet listeners decode whatever comes too.
            .on_engine_event(|_| {})
            .on_packet(|_| {})
            .on_manager_event(move |e| {
                let _ = mgr_tx.unbounded_send(e.clone());
            })
            .on(
                "ok-event",
                |_s: Socket, (_v,): (Value,), _ack: AckSender| async {},
            )
            .with_socket(move |s| {
                let t = tx.clone();
                s.on_connect_error(move |_s, e| {
                    let t = t.clone();
                    async move {
                        let _ = t.unbounded_send(format!("connect_error {}", e.message));
                    }
                });
                let t = tx.clone();
                s.on_disconnect(move |_s, r| {
                    let t = t.clone();
                    async move {
                        let _ = t.unbounded_send(format!("disconnect {r}"));
                    }
                });
            })
            .open()
            .map_err(|e| e.to_string())?;
        let _ = socket.emit("hello", &("there",));
        let pending = socket.emit_with_ack("question", &());
        sleep(3000).await;
        let mut seen = Vec::new();
        while let Ok(s) = rx.try_recv() {
            seen.push(s);
        }
        let mut attempts = 0;
        while let Ok(e) = mgr_rx.try_recv() {
            if matches!(e, ManagerEvent::ReconnectAttempt(_)) {
                attempts += 1;
            }
        }
        check(
            "hostile server",
            if attempts >= 3 && !seen.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "{attempts} reconnection attempts, socket events {seen:?}"
                ))
            },
        );
        socket.manager().close();
        let answer = pending.await;
        check(
            "the page lives on",
            match answer {
                Err(_) => Ok(()),
                Ok(r) => Err(format!(
                    "an answer from the hostile server: {:?}",
                    r.packet()
                )),
            },
        );
        Ok(())
    }
}

fn main() {
    #[cfg(target_arch = "wasm32")]
    page::start();
}
