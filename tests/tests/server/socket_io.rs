//! The Socket.IO expectations of the official v5 suite and of the test server's handler set,
//! against `/socket.io/`.

use std::time::Duration;

use serde_json::{json, Value};

use super::client::*;

const SIO: &str = "/socket.io/";

fn json_after(text: &str, prefix: &str) -> Value {
    assert!(
        text.starts_with(prefix),
        "{text} does not start with {prefix}"
    );
    serde_json::from_str(&text[prefix.len()..]).unwrap_or_else(|e| panic!("{text}: {e}"))
}

#[tokio::test]
async fn connect_to_the_main_namespace() {
    let s = Server::start().await;
    let mut ws = sio(s.addr, SIO).await;
    ws.send_text("40").await;
    let accept = json_after(&ws.text_app().await, "40");
    let keys: Vec<&String> = accept.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["sid"]);
    assert_eq!(ws.text_app().await, r#"42["auth",{}]"#);

    let mut ws = sio(s.addr, SIO).await;
    ws.send_text(r#"40{"token":"123"}"#).await;
    json_after(&ws.text_app().await, "40");
    assert_eq!(ws.text_app().await, r#"42["auth",{"token":"123"}]"#);
}

#[tokio::test]
async fn connect_to_a_custom_namespace() {
    let s = Server::start().await;
    let mut ws = sio(s.addr, SIO).await;
    ws.send_text("40/custom,").await;
    let accept = json_after(&ws.text_app().await, "40/custom,");
    assert!(accept["sid"].is_string());
    assert_eq!(ws.text_app().await, r#"42/custom,["auth",{}]"#);

    let mut ws = sio(s.addr, SIO).await;
    ws.send_text(r#"40/custom,{"token":"abc"}"#).await;
    json_after(&ws.text_app().await, "40/custom,");
    assert_eq!(ws.text_app().await, r#"42/custom,["auth",{"token":"abc"}]"#);
}

#[tokio::test]
async fn unknown_namespace_is_refused_and_the_session_stays() {
    let s = Server::start().await;
    let mut ws = sio(s.addr, SIO).await;
    ws.send_text("40/random").await;
    assert_eq!(
        ws.text_app().await,
        r#"44/random,{"message":"Invalid namespace"}"#
    );
    sio_connect(&mut ws, "40").await;
}

#[tokio::test]
async fn middleware_refusal_carries_message_and_data() {
    let s = Server::start().await;
    let mut ws = sio(s.addr, SIO).await;
    ws.send_text(r#"40/restricted,{"token":"nope"}"#).await;
    assert_eq!(
        ws.text_app().await,
        r#"44/restricted,{"message":"not authorized","data":{"reason":"invalid token"}}"#
    );
    ws.send_text("40/restricted,").await;
    assert!(ws.text_app().await.starts_with("44/restricted,"));
    // The refused CONNECT left the session open: try again with the right token.
    ws.send_text(r#"40/restricted,{"token":"let-me-in"}"#).await;
    json_after(&ws.text_app().await, "40/restricted,");
    assert_eq!(
        ws.text_app().await,
        r#"42/restricted,["auth",{"token":"let-me-in"}]"#
    );
}

#[tokio::test]
async fn socket_ids_are_not_the_engine_id_and_namespaces_multiplex() {
    let s = Server::start().await;
    let mut ws = ws(s.addr, &format!("{SIO}?EIO=4&transport=websocket"))
        .await
        .unwrap();
    let open = ws.text().await;
    let engine_id = json_after(&open, "0")["sid"].as_str().unwrap().to_owned();
    let main = sio_connect(&mut ws, "40").await;
    let custom = sio_connect(&mut ws, "40/custom,").await;
    assert_ne!(main, engine_id);
    assert_ne!(main, custom);
    ws.send_text(r#"42/custom,["message","c"]"#).await;
    assert_eq!(ws.text_app().await, r#"42/custom,["message-back","c"]"#);
    ws.send_text(r#"42["message","m"]"#).await;
    assert_eq!(ws.text_app().await, r#"42["message-back","m"]"#);
    ws.send_text(r#"42/custom,1["whoami"]"#).await;
    let who = json_after(&ws.text_app().await, "43/custom,1");
    assert_eq!(who[0]["id"], custom.as_str());
    assert_eq!(who[0]["engineId"], engine_id.as_str());
    assert_eq!(who[0]["nsp"], "/custom");
}

#[tokio::test]
async fn invalid_input_closes_the_connection() {
    let s = Server::start().await;
    let cases: &[&[&str]] = &[
        &["4abc"],
        &["@40", r#"42{}"#],
        &["@40", r#"42abc["message-with-ack",1]"#],
        &["@40", r#"42["connect"]"#],
        &["@40", r#"42["disconnect"]"#],
        &["@40", r#"42[]"#],
        &["@40", r#"42["message"]garbage"#],
        &["@40", "49"],
        &["9"],
        &[r#"42/custom,["message"]"#],
        &["@40", "40"],
        &["40[]"],
        &[r#"44{"message":"x"}"#],
        &["@40", r#"4511-["message"]"#],
        &[
            "@40",
            r#"451-["message",{"_placeholder":true,"num":1}]"#,
            "#bin",
        ],
        &[
            "@40",
            r#"451-["message",{"_placeholder":true,"num":0}]"#,
            r#"42["message"]"#,
        ],
        &["@40", "#bin"],
    ];
    for case in cases {
        let mut ws = sio(s.addr, SIO).await;
        for frame in *case {
            if *frame == "@40" {
                sio_connect(&mut ws, "40").await;
            } else if *frame == "#bin" {
                ws.send_binary(&[1, 2, 3]).await;
            } else {
                ws.send_text(frame).await;
            }
        }
        assert!(
            ws.closed_within(Duration::from_secs(1), true).await,
            "not closed after {case:?}"
        );
    }
}

#[tokio::test]
async fn a_connection_that_never_joins_is_closed() {
    let s = Server::start().await;
    let mut ws = sio(s.addr, SIO).await;
    let started = tokio::time::Instant::now();
    // Answering pings: the 1000 ms connect timeout closes it.
    assert!(ws.closed_within(Duration::from_secs(2), true).await);
    assert!(started.elapsed() >= Duration::from_millis(900));
}

#[tokio::test]
async fn client_disconnect_leaves_the_session_open() {
    let s = Server::start().await;
    let mut ws = sio(s.addr, SIO).await;
    sio_connect(&mut ws, "40").await;
    ws.send_text("41").await;
    assert_eq!(ws.text().await, "2");
    ws.send_text("3").await;

    let mut ws = sio(s.addr, SIO).await;
    sio_connect(&mut ws, "40").await;
    ws.send_text("40/custom").await;
    json_after(&ws.text_app().await, "40/custom,");
    assert_eq!(ws.text_app().await, r#"42/custom,["auth",{}]"#);
    ws.send_text("41/custom").await;
    ws.send_text(r#"42["message","message to main namespace"]"#)
        .await;
    assert_eq!(
        ws.text_app().await,
        r#"42["message-back","message to main namespace"]"#
    );
}

#[tokio::test]
async fn events_and_acks() {
    let s = Server::start().await;
    let mut ws = sio(s.addr, SIO).await;
    sio_connect(&mut ws, "40").await;
    ws.send_text(r#"42["message",1,"2",{"3":[true]}]"#).await;
    assert_eq!(
        ws.text_app().await,
        r#"42["message-back",1,"2",{"3":[true]}]"#
    );
    ws.send_text(r#"42456["message-with-ack",1,"2",{"3":[false]}]"#)
        .await;
    assert_eq!(ws.text_app().await, r#"43456[1,"2",{"3":[false]}]"#);
    // `message` never acks, unknown events are ignored, unknown ack ids are ignored.
    ws.send_text(r#"427["message","x"]"#).await;
    assert_eq!(ws.text_app().await, r#"42["message-back","x"]"#);
    ws.send_text(r#"428["nobody-listens"]"#).await;
    ws.send_text("4399[]").await;
    ws.send_text(r#"429["message-with-ack"]"#).await;
    assert_eq!(ws.text_app().await, "439[]");
    // Ack ids are echoed per namespace.
    sio_connect(&mut ws, "40/custom,").await;
    ws.send_text(r#"42/custom,7["message-with-ack","x"]"#).await;
    assert_eq!(ws.text_app().await, r#"43/custom,7["x"]"#);
}

#[tokio::test]
async fn binary_events_and_acks() {
    let s = Server::start().await;
    let mut ws = sio(s.addr, SIO).await;
    sio_connect(&mut ws, "40").await;
    ws.send_text(r#"452-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#)
        .await;
    ws.send_binary(&[1, 2, 3]).await;
    ws.send_binary(&[4, 5, 6]).await;
    assert_eq!(
        ws.text_app().await,
        r#"452-["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#
    );
    assert_eq!(&ws.binary_app().await[..], &[1, 2, 3]);
    assert_eq!(&ws.binary_app().await[..], &[4, 5, 6]);

    ws.send_text(
        r#"452-789["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
    )
    .await;
    ws.send_binary(&[1, 2, 3]).await;
    ws.send_binary(&[4, 5, 6]).await;
    assert_eq!(
        ws.text_app().await,
        r#"462-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#
    );
    assert_eq!(&ws.binary_app().await[..], &[1, 2, 3]);
    assert_eq!(&ws.binary_app().await[..], &[4, 5, 6]);

    // Nested anywhere, and an empty buffer.
    ws.send_text(r#"451-["message",{"a":[{"b":{"_placeholder":true,"num":0}}]}]"#)
        .await;
    ws.send_binary(&[]).await;
    assert_eq!(
        ws.text_app().await,
        r#"451-["message-back",{"a":[{"b":{"_placeholder":true,"num":0}}]}]"#
    );
    assert_eq!(&ws.binary_app().await[..], &[] as &[u8]);
}

#[tokio::test]
async fn server_emit_with_ack() {
    let s = Server::start().await;
    let mut ws = sio(s.addr, SIO).await;
    sio_connect(&mut ws, "40").await;
    ws.send_text(r#"42["emit-with-ack",1,"a"]"#).await;
    let ask = ws.text_app().await;
    let rest = ask.strip_prefix("42").unwrap();
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    assert!(!digits.is_empty(), "{ask}");
    assert_eq!(&rest[digits.len()..], r#"["emit-with-ack",1,"a"]"#);
    ws.send_text(&format!(r#"43{digits}["r",{{"x":2}}]"#)).await;
    assert_eq!(ws.text_app().await, r#"42["emit-with-ack","r",{"x":2}]"#);

    // ask-client: answered, then timed out.
    ws.send_text(r#"425["ask-client",{"q":1},1000]"#).await;
    let ask = ws.text_app().await;
    let rest = ask.strip_prefix("42").unwrap();
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    assert_eq!(&rest[digits.len()..], r#"["ask",{"q":1}]"#);
    ws.send_text(&format!(r#"43{digits}["yes"]"#)).await;
    assert_eq!(ws.text_app().await, r#"435[{"ok":true,"reply":["yes"]}]"#);

    ws.send_text(r#"426["ask-client","q",100]"#).await;
    assert!(ws.text_app().await.ends_with(r#"["ask","q"]"#));
    assert_eq!(ws.text_app().await, r#"436[{"ok":false}]"#);
}

#[tokio::test]
async fn rooms_and_broadcasts() {
    let s = Server::start().await;
    let mut a = sio(s.addr, SIO).await;
    let mut b = sio(s.addr, SIO).await;
    let mut c = sio(s.addr, SIO).await;
    sio_connect(&mut a, "40").await;
    sio_connect(&mut b, "40").await;
    sio_connect(&mut c, "40").await;
    a.send_text(r#"421["join","room1"]"#).await;
    assert_eq!(a.text_app().await, r#"431[["room1"]]"#);
    b.send_text(r#"421["join","room1"]"#).await;
    assert_eq!(b.text_app().await, r#"431[["room1"]]"#);
    b.send_text(r#"422["join",42]"#).await;
    assert_eq!(b.text_app().await, r#"432[["42","room1"]]"#);
    b.send_text(r#"423["leave","42"]"#).await;
    assert_eq!(b.text_app().await, r#"433[["room1"]]"#);

    // room-emit: members of the room but the sender; the ack comes after.
    a.send_text(r#"424["room-emit","room1","hi",{"n":1}]"#)
        .await;
    assert_eq!(a.text_app().await, "434[]");
    assert_eq!(b.text_app().await, r#"42["room-emit","hi",{"n":1}]"#);

    // broadcast: everyone but the sender, binary too.
    c.send_text(r#"451-5["broadcast",{"_placeholder":true,"num":0}]"#)
        .await;
    c.send_binary(&[9, 9]).await;
    assert_eq!(c.text_app().await, "435[]");
    for ws in [&mut a, &mut b] {
        assert_eq!(
            ws.text_app().await,
            r#"451-["broadcast",{"_placeholder":true,"num":0}]"#
        );
        assert_eq!(&ws.binary_app().await[..], &[9, 9]);
    }
    // c got neither the room-emit nor its own broadcast: its next message is the whoami answer.
    c.send_text(r#"426["whoami"]"#).await;
    let who = json_after(&c.text_app().await, "436");
    assert_eq!(who[0]["rooms"], json!([]));
    assert_eq!(who[0]["transport"], "websocket");
    assert_eq!(who[0]["recovered"], false);
}

/// A `peer-disconnecting` event: (id, reason, rooms).
fn peer_disconnecting(text: &str) -> (String, String, Value) {
    let v = json_after(text, "42");
    assert_eq!(v[0], "peer-disconnecting", "{text}");
    (
        v[1]["id"].as_str().unwrap().to_owned(),
        v[1]["reason"].as_str().unwrap().to_owned(),
        v[1]["rooms"].clone(),
    )
}

/// `peer-disconnecting` lists the rooms the socket is still in (sorted, without its own id),
/// `observers` included; `peer-disconnect` follows, once it left them. An observer that is in
/// one of those rooms hears the first one while the leaving socket is still a member.
#[tokio::test]
async fn peer_disconnecting_sees_the_rooms_then_peer_disconnect() {
    let s = Server::start().await;
    let mut observer = sio(s.addr, SIO).await;
    sio_connect(&mut observer, "40").await;
    observer.send_text(r#"421["join","observers"]"#).await;
    assert_eq!(observer.text_app().await, r#"431[["observers"]]"#);

    let mut ws = sio(s.addr, SIO).await;
    let id = sio_connect(&mut ws, "40").await;
    for (i, room) in ["zeta", "alpha", "observers"].iter().enumerate() {
        ws.send_text(&format!(r#"42{i}["join","{room}"]"#)).await;
        ws.text_app().await;
    }
    drop(ws);
    let (gone, reason, rooms) = peer_disconnecting(&observer.text_app().await);
    assert_eq!(gone, id);
    assert!(
        reason == "transport close" || reason == "transport error",
        "{reason}"
    );
    assert_eq!(rooms, json!(["alpha", "observers", "zeta"]));
    let v = json_after(&observer.text_app().await, "42");
    assert_eq!(v[0], "peer-disconnect");
    assert_eq!(v[1]["id"], id.as_str());
    assert_eq!(v[1]["reason"], reason.as_str());
    // The observer got nothing else: its next message is its own answer.
    observer.send_text(r#"422["whoami"]"#).await;
    assert!(observer.text_app().await.starts_with("432["));
}

/// `set-data` stores any JSON value as the socket's data, `get-data` gives it back (`null`
/// before any), per socket and per namespace.
#[tokio::test]
async fn set_data_and_get_data() {
    let s = Server::start().await;
    let mut ws = sio(s.addr, SIO).await;
    sio_connect(&mut ws, "40").await;
    sio_connect(&mut ws, "40/custom,").await;
    ws.send_text(r#"421["get-data"]"#).await;
    assert_eq!(ws.text_app().await, "431[null]");
    ws.send_text(r#"422["set-data",{"user":"ann","n":[1,2]}]"#)
        .await;
    assert_eq!(ws.text_app().await, "432[]");
    ws.send_text(r#"423["get-data"]"#).await;
    assert_eq!(
        json_after(&ws.text_app().await, "433"),
        json!([{"user": "ann", "n": [1, 2]}])
    );
    // Without an ack id: stored, nothing answered.
    ws.send_text(r#"42["set-data",{}]"#).await;
    ws.send_text(r#"424["get-data"]"#).await;
    assert_eq!(ws.text_app().await, "434[{}]");
    // Another namespace's socket has its own data.
    ws.send_text(r#"42/custom,5["get-data"]"#).await;
    assert_eq!(ws.text_app().await, "43/custom,5[null]");
    // Another client's too.
    let mut other = sio(s.addr, SIO).await;
    sio_connect(&mut other, "40").await;
    other.send_text(r#"421["get-data"]"#).await;
    assert_eq!(other.text_app().await, "431[null]");
}

#[tokio::test]
async fn server_side_disconnects_and_reasons() {
    let s = Server::start().await;
    let mut observer = sio(s.addr, SIO).await;
    sio_connect(&mut observer, "40").await;
    observer.send_text(r#"421["join","observers"]"#).await;
    assert_eq!(observer.text_app().await, r#"431[["observers"]]"#);

    // Every disconnection: `peer-disconnecting`, then `peer-disconnect` with the same id and
    // reason.
    async fn reason_of(observer: &mut Ws) -> (String, String) {
        let (id, reason, rooms) = peer_disconnecting(&observer.text_app().await);
        assert_eq!(rooms, json!([]));
        let v = json_after(&observer.text_app().await, "42");
        assert_eq!(v[0], "peer-disconnect");
        assert_eq!(
            (v[1]["id"].as_str(), v[1]["reason"].as_str()),
            (Some(id.as_str()), Some(reason.as_str()))
        );
        (id, reason)
    }

    // Client DISCONNECT.
    let mut ws = sio(s.addr, SIO).await;
    let id = sio_connect(&mut ws, "40").await;
    ws.send_text("41").await;
    assert_eq!(
        reason_of(&mut observer).await,
        (id, "client namespace disconnect".to_owned())
    );

    // disconnect-me false: DISCONNECT for the namespace only, the session stays.
    let mut ws = sio(s.addr, SIO).await;
    let id = sio_connect(&mut ws, "40").await;
    sio_connect(&mut ws, "40/custom,").await;
    ws.send_text(r#"42["disconnect-me",false]"#).await;
    assert_eq!(ws.text_app().await, "41");
    assert_eq!(
        reason_of(&mut observer).await,
        (id, "server namespace disconnect".to_owned())
    );
    ws.send_text(r#"42/custom,["message","still"]"#).await;
    assert_eq!(ws.text_app().await, r#"42/custom,["message-back","still"]"#);

    // disconnect-me true: DISCONNECT then the whole connection closes.
    ws.send_text(r#"42/custom,["disconnect-me",true]"#).await;
    assert_eq!(ws.text_app().await, "41/custom,");
    assert!(ws.closed_within(Duration::from_secs(1), true).await);

    // The client closes the WebSocket.
    let mut ws = sio(s.addr, SIO).await;
    let id = sio_connect(&mut ws, "40").await;
    drop(ws);
    let (gone, reason) = reason_of(&mut observer).await;
    assert_eq!(gone, id);
    assert!(
        reason == "transport close" || reason == "transport error",
        "{reason}"
    );

    // Undecodable input.
    let mut ws = sio(s.addr, SIO).await;
    let id = sio_connect(&mut ws, "40").await;
    ws.send_text("42{}").await;
    let (gone, reason) = reason_of(&mut observer).await;
    assert_eq!(gone, id);
    assert!(
        ["forced close", "parse error", "transport error"].contains(&reason.as_str()),
        "{reason}"
    );

    // No pong.
    let mut ws = sio(s.addr, SIO).await;
    ws.send_text("40").await;
    let id = json_after(&ws.text().await, "40")["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        reason_of(&mut observer).await,
        (id, "ping timeout".to_owned())
    );
    drop(ws);
}

#[tokio::test]
async fn socket_io_over_polling_and_upgrade() {
    let s = Server::start().await;
    let sid = handshake(s.addr, SIO).await;
    let url = polling(SIO, &sid);
    assert_eq!(post(s.addr, &url, "40").await.status, 200);
    let r = records(&get(s.addr, &url).await.body);
    let mut r = r.into_iter();
    json_after(&r.next().unwrap(), "40");
    let auth = r.next().unwrap_or_default();
    let auth = if auth.is_empty() {
        records(&get(s.addr, &url).await.body).remove(0)
    } else {
        auth
    };
    assert_eq!(auth, r#"42["auth",{}]"#);

    // A binary event in one POST, echoed in one GET.
    let body = "451-[\"message\",{\"_placeholder\":true,\"num\":0}]\u{1e}bAQID";
    assert_eq!(post(s.addr, &url, body).await.status, 200);
    assert_eq!(
        records(&get(s.addr, &url).await.body),
        [
            r#"451-["message-back",{"_placeholder":true,"num":0}]"#,
            "bAQID"
        ]
    );
    assert_eq!(post(s.addr, &url, r#"421["whoami"]"#).await.status, 200);
    let who = json_after(&records(&get(s.addr, &url).await.body)[0], "431");
    assert_eq!(who[0]["transport"], "polling");
    assert_eq!(who[0]["engineId"], sid.as_str());

    // Upgrade: the same socket goes on over the WebSocket.
    let mut ws = ws(
        s.addr,
        &format!("{SIO}?EIO=4&transport=websocket&sid={sid}"),
    )
    .await
    .unwrap();
    ws.send_text("2probe").await;
    assert_eq!(ws.text().await, "3probe");
    ws.send_text("5").await;
    ws.send_text(r#"422["whoami"]"#).await;
    let who2 = json_after(&ws.text_app().await, "432");
    assert_eq!(who2[0]["transport"], "websocket");
    assert_eq!(who2[0]["id"], who[0]["id"]);
    assert_eq!(get(s.addr, &url).await.status, 400);
}

#[tokio::test]
async fn ack_ids_beyond_u64_are_answered_unchanged() {
    // The reference accepts any run of digits as an ack id; Ferrio answers with the same digits
    // and keeps the connection (it used to close it past `u64::MAX`).
    let s = Server::start().await;
    let mut ws = sio(s.addr, SIO).await;
    sio_connect(&mut ws, "40").await;
    sio_connect(&mut ws, "40/custom,").await;
    let long = "123456789012345678901234567890";
    ws.send_text(&format!(r#"42/custom,{long}["message-with-ack","x"]"#))
        .await;
    assert_eq!(ws.text_app().await, format!(r#"43/custom,{long}["x"]"#));
    // One past `u64::MAX`, with leading zeros (which go, as `Number` drops them), on `/`.
    ws.send_text(r#"420018446744073709551616["message-with-ack",1]"#)
        .await;
    assert_eq!(ws.text_app().await, r#"4318446744073709551616[1]"#);
    // `u64::MAX` itself, and the connection still serves ordinary events.
    ws.send_text(r#"4218446744073709551615["message-with-ack"]"#)
        .await;
    assert_eq!(ws.text_app().await, r#"4318446744073709551615[]"#);
    ws.send_text(r#"42["message","still here"]"#).await;
    assert_eq!(ws.text_app().await, r#"42["message-back","still here"]"#);
}
