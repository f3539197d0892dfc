//! The recipes of `crates/ferrio-server/examples/recipe_*.rs`, each built by cargo and started
//! as a user would start it (`PORT=0`, its settings in the environment), then driven by the
//! tokio client and by the npm `socket.io-client` under Node (`tests/node/recipes.js`):
//! logging in over HTTP, presence with several tabs, the event rate limit and the connection
//! cap. The login recipe also runs in Chromium with the `ferrio` browser package (the
//! browser tests of `bindings/wasm`), where the browser keeps the session cookie itself.

use std::process::Stdio;
use std::time::Duration;

use ferrio_client::{AckSender, Error, Socket, Transport};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// Generous: the tests wait this long for something they expect, never assert on speed.
const WAIT: Duration = Duration::from_secs(20);

/// A running recipe example; killed when dropped.
struct Recipe {
    _child: Child,
    url: String,
    addr: String,
}

/// Builds the example `name` of ferrio-server (or finds it up to date), starts it on a free
/// port with `env`, and waits for the address it prints.
async fn start(name: &str, env: &[(&str, &str)]) -> Recipe {
    let status = std::process::Command::new(env!("CARGO"))
        .args(["build", "-q", "-p", "ferrio-server", "--example", name])
        .status()
        .unwrap();
    assert!(status.success(), "cannot build the {name} example");
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let mut child = Command::new(profile_dir.join("examples").join(name))
        .env("PORT", "0")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("the {name} example starts: {e}"));
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(WAIT, lines.next_line())
        .await
        .expect("the example prints its address")
        .unwrap()
        .expect("a first line");
    let url = line
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    let addr = url.trim_start_matches("http://").to_owned();
    Recipe {
        _child: child,
        url,
        addr,
    }
}

/// `GET path` (HTTP/1.1, `Connection: close`): the status, the `Set-Cookie` header's
/// `name=value` part, and the body.
async fn get(addr: &str, path: &str) -> (u16, Option<String>, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut answer))
        .await
        .expect("an answer")
        .unwrap();
    let answer = String::from_utf8(answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").expect("a head");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let cookie = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("set-cookie")
            .then(|| value.trim().split(';').next().unwrap_or("").to_owned())
    });
    (status, cookie, body.to_owned())
}

/// `whoami`'s answer.
async fn whoami(socket: &Socket) -> Value {
    let reply = socket
        .timeout(WAIT)
        .emit_with_ack("whoami", &())
        .await
        .unwrap();
    let (answer,): (Value,) = reply.args().unwrap();
    answer
}

/// The message of the client's `connect_error`.
fn refusal(result: Result<Socket, Error>) -> String {
    match result {
        Err(Error::Connect(e)) => e.message,
        Err(other) => panic!("not a connect error: {other}"),
        Ok(_) => panic!("connected"),
    }
}

#[tokio::test]
async fn login_session_cookie_and_signed_token_admit_the_logged_in_user() {
    let app = start("recipe_login", &[]).await;

    // Not logged in: refused by the connect middleware.
    let anonymous = ferrio_client::io(&app.url).connect().await;
    assert_eq!(refusal(anonymous), "unauthorized");
    let (status, _, _) = get(&app.addr, "/login?user=not%20valid").await;
    assert_eq!(status, 400);

    // Logged in: the session cookie on Socket.IO's requests, over both transports.
    let (status, cookie, _) = get(&app.addr, "/login?user=ann").await;
    assert_eq!(status, 204);
    let cookie = cookie.expect("a session cookie");
    assert!(cookie.starts_with("sid="), "{cookie}");
    for transports in [
        &[Transport::Polling, Transport::WebSocket][..],
        &[Transport::WebSocket][..],
    ] {
        let socket = ferrio_client::io(&app.url)
            .transports(transports)
            .extra_header("cookie", &cookie)
            .connect()
            .await
            .unwrap();
        assert_eq!(
            whoami(&socket).await,
            json!({"user": "ann", "via": "session"})
        );
        socket.disconnect();
    }
    // A session id nobody handed out is nobody's.
    let guessed = ferrio_client::io(&app.url)
        .extra_header("cookie", "sid=00000000000000000000000000000000")
        .connect()
        .await;
    assert_eq!(refusal(guessed), "unauthorized");

    // The token alternative: no cookie, a signed token in `auth`.
    let (status, _, token) = get(&app.addr, "/token?user=bob").await;
    assert_eq!(status, 200);
    let socket = ferrio_client::io(&app.url)
        .auth(json!({ "token": token }))
        .connect()
        .await
        .unwrap();
    assert_eq!(
        whoami(&socket).await,
        json!({"user": "bob", "via": "token"})
    );

    // A token with another user under bob's signature is refused.
    let forged = token.replacen("bob.", "eve.", 1);
    assert_ne!(forged, token);
    let refused = ferrio_client::io(&app.url)
        .auth(json!({ "token": forged }))
        .connect()
        .await;
    assert_eq!(refusal(refused), "unauthorized");
}

/// A client of the presence recipe as `user`: the `online` lists and `notify` payloads it
/// hears, in order.
async fn presence_client(
    url: &str,
    user: &str,
) -> (Socket, mpsc::UnboundedReceiver<(String, Value)>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut builder = ferrio_client::io(url)
        .force_new(true)
        .auth(json!({ "user": user }));
    for event in ["online", "notify"] {
        let tx = tx.clone();
        builder = builder.on(event, move |_s: Socket, (m,): (Value,), _: AckSender| {
            let _ = tx.send((event.to_owned(), m));
            async {}
        });
    }
    (builder.connect().await.unwrap(), rx)
}

/// The next `event` heard, skipping others.
async fn next(rx: &mut mpsc::UnboundedReceiver<(String, Value)>, event: &str) -> Value {
    tokio::time::timeout(WAIT, async {
        while let Some((name, payload)) = rx.recv().await {
            if name == event {
                return payload;
            }
        }
        panic!("no more events before {event:?}");
    })
    .await
    .unwrap_or_else(|_| panic!("no {event:?} event"))
}

/// `notify(to, text)` from `socket`: how many sockets of `to` it reached.
async fn notify(socket: &Socket, to: &str, text: &str) -> u64 {
    let reply = socket
        .timeout(WAIT)
        .emit_with_ack("notify", &(to, text))
        .await
        .unwrap();
    let (reached,): (u64,) = reply.args().unwrap();
    reached
}

#[tokio::test]
async fn presence_keeps_a_user_online_until_their_last_tab_closes() {
    let app = start("recipe_presence", &[]).await;
    let (ann1, mut ann1_heard) = presence_client(&app.url, "ann").await;
    assert_eq!(next(&mut ann1_heard, "online").await, json!(["ann"]));
    let (bob, mut bob_heard) = presence_client(&app.url, "bob").await;
    assert_eq!(next(&mut bob_heard, "online").await, json!(["ann", "bob"]));
    assert_eq!(next(&mut ann1_heard, "online").await, json!(["ann", "bob"]));
    let (ann2, mut ann2_heard) = presence_client(&app.url, "ann").await;
    assert_eq!(next(&mut bob_heard, "online").await, json!(["ann", "bob"]));

    // Both tabs of ann get what is sent to ann.
    assert_eq!(notify(&bob, "ann", "hi").await, 2);
    for heard in [&mut ann1_heard, &mut ann2_heard] {
        assert_eq!(
            next(heard, "notify").await,
            json!({"from": "bob", "text": "hi"})
        );
    }

    // One tab closes: ann is still online. (Once the server has removed the tab from ann's
    // room, its `disconnecting` handler has run.)
    ann1.disconnect();
    let deadline = tokio::time::Instant::now() + WAIT;
    while notify(&bob, "ann", "still there?").await != 1 {
        assert!(tokio::time::Instant::now() < deadline, "the tab never left");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_carl, _) = presence_client(&app.url, "carl").await;
    assert_eq!(
        next(&mut bob_heard, "online").await,
        json!(["ann", "bob", "carl"]),
        "bob heard ann go offline while a tab of hers was open"
    );

    // The last tab closes: ann is offline for everyone.
    ann2.disconnect();
    assert_eq!(next(&mut bob_heard, "online").await, json!(["bob", "carl"]));
}

#[tokio::test]
async fn rate_limit_refuses_events_past_the_limit_with_an_error_event() {
    let app = start(
        "recipe_rate_limit",
        &[("RATE_LIMIT", "5"), ("RATE_WINDOW_MS", "6000")],
    )
    .await;
    let (tx, mut heard) = mpsc::unbounded_channel();
    let mut builder = ferrio_client::io(&app.url).force_new(true);
    for event in ["pong", "rate-limit"] {
        let tx = tx.clone();
        builder = builder.on(event, move |_s: Socket, (m,): (Value,), _: AckSender| {
            let _ = tx.send((event.to_owned(), m));
            async {}
        });
    }
    let socket = builder.connect().await.unwrap();

    // A burst of 8: the first 5 are handled, the other 3 refused, each with an error.
    for i in 1..=8 {
        socket.emit("ping", &(i,)).unwrap();
    }
    let mut got = Vec::new();
    for _ in 0..8 {
        let event = tokio::time::timeout(WAIT, heard.recv())
            .await
            .expect("an answer to every ping")
            .unwrap();
        got.push(event);
    }
    let pongs: Vec<&Value> = got
        .iter()
        .filter(|(e, _)| e == "pong")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(
        pongs,
        [1, 2, 3, 4, 5].map(|i| json!(i)).iter().collect::<Vec<_>>()
    );
    let errors: Vec<&Value> = got
        .iter()
        .filter(|(e, _)| e == "rate-limit")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(errors.len(), 3, "{got:?}");
    for error in errors {
        assert_eq!(error["message"], "rate limit exceeded");
        assert!(error["retryInMs"].as_u64().unwrap() <= 6000, "{error}");
    }

    // Another socket has its own window.
    let other = ferrio_client::io(&app.url)
        .force_new(true)
        .on("pong", move |_s: Socket, (m,): (Value,), _: AckSender| {
            let _ = tx.send(("other pong".to_owned(), m));
            async {}
        })
        .connect()
        .await
        .unwrap();
    other.emit("ping", &("other",)).unwrap();
    let (event, value) = tokio::time::timeout(WAIT, heard.recv())
        .await
        .expect("the other socket's pong")
        .unwrap();
    assert_eq!((event.as_str(), value), ("other pong", json!("other")));

    // Once the window is over, events are handled again.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        socket.emit("ping", &("later",)).unwrap();
        let (event, value) = tokio::time::timeout(WAIT, heard.recv())
            .await
            .expect("an answer")
            .unwrap();
        if event == "pong" {
            assert_eq!(value, json!("later"));
            break;
        }
        assert_eq!(event, "rate-limit");
        assert!(tokio::time::Instant::now() < deadline, "still limited");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test]
async fn connection_cap_refuses_clients_past_the_limit_until_one_leaves() {
    let app = start("recipe_connection_cap", &[("MAX_CLIENTS", "2")]).await;
    let client = || {
        ferrio_client::io(&app.url)
            .force_new(true)
            .reconnection(false)
    };
    let first = client().connect().await.unwrap();
    let _second = client().connect().await.unwrap();

    // Full: the third client's handshake is refused, over either transport. Over polling the
    // client reads the refusal's body; a WebSocket client sees only the status.
    let refused = refusal(client().transports(&[Transport::Polling]).connect().await);
    assert!(
        refused.contains("403") && refused.contains("server is full"),
        "{refused}"
    );
    let refused = refusal(client().transports(&[Transport::WebSocket]).connect().await);
    assert!(refused.contains("403"), "{refused}");

    // One leaves: a new client gets its place (once the server has seen it go).
    first.disconnect();
    let deadline = tokio::time::Instant::now() + WAIT;
    let third = loop {
        match client().connect().await {
            Ok(socket) => break socket,
            Err(e) => {
                let message = e.to_string();
                assert!(message.contains("server is full"), "{message}");
                assert!(tokio::time::Instant::now() < deadline, "still full");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert!(third.connected());
}

/// Runs `tests/node/recipes.js` for `recipe` against the running example: the npm
/// `socket.io-client` goes through the recipe's scenario and must report `ALL OK`.
async fn node_client(recipe: &str, app: &Recipe) {
    let input = json!({ "recipe": recipe, "url": app.url }).to_string();
    let output = tokio::task::spawn_blocking(move || {
        ferrio_tests::run_node_script("recipes.js", input.as_bytes())
    })
    .await
    .unwrap();
    let output = String::from_utf8(output).unwrap();
    assert!(output.ends_with("ALL OK\n"), "{output}");
}

#[tokio::test]
async fn login_with_socket_io_client() {
    let app = start("recipe_login", &[]).await;
    node_client("login", &app).await;
}

#[tokio::test]
async fn presence_with_socket_io_client() {
    let app = start("recipe_presence", &[]).await;
    node_client("presence", &app).await;
}

#[tokio::test]
async fn rate_limit_with_socket_io_client() {
    let app = start("recipe_rate_limit", &[("RATE_LIMIT", "5")]).await;
    node_client("rate_limit", &app).await;
}

#[tokio::test]
async fn connection_cap_with_socket_io_client() {
    let app = start("recipe_connection_cap", &[("MAX_CLIENTS", "2")]).await;
    node_client("connection_cap", &app).await;
}
