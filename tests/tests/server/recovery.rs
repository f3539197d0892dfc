//! Connection state recovery on the wire, against `/recovery/` (5000 ms window).

use std::time::Duration;

use serde_json::Value;

use super::client::*;

const REC: &str = "/recovery/";

fn json_after(text: &str, prefix: &str) -> Value {
    assert!(
        text.starts_with(prefix),
        "{text} does not start with {prefix}"
    );
    serde_json::from_str(&text[prefix.len()..]).unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// The offset a recovery-enabled server appended to an event.
fn offset(event: &str) -> String {
    let v = json_after(event, "42");
    v.as_array()
        .and_then(|a| a.last())
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no offset in {event}"))
        .to_owned()
}

/// Connects with `connect`, returns (sid, pid, offset of the `auth` event).
async fn connect(ws: &mut Ws, connect: &str) -> (String, String, String) {
    ws.send_text(connect).await;
    let mut missed = Vec::new();
    let accept = loop {
        let text = ws.text_app().await;
        if text.starts_with("40") {
            break json_after(&text, "40");
        }
        missed.push(text);
    };
    assert!(missed.is_empty(), "unexpected {missed:?}");
    let auth = ws.text_app().await;
    assert!(auth.starts_with(r#"42["auth","#), "{auth}");
    (
        accept["sid"].as_str().unwrap().to_owned(),
        accept["pid"].as_str().unwrap().to_owned(),
        offset(&auth),
    )
}

#[tokio::test]
async fn accept_carries_a_pid_and_events_carry_offsets() {
    let s = Server::start().await;
    let mut ws = sio(s.addr, REC).await;
    ws.send_text(r#"40{"token":"t"}"#).await;
    let text = ws.text_app().await;
    assert!(
        text.starts_with(r#"40{"sid":""#) && text.contains(r#"","pid":""#),
        "{text}"
    );
    let accept = json_after(&text, "40");
    assert_eq!(accept.as_object().unwrap().len(), 2);
    let auth = json_after(&ws.text_app().await, "42");
    assert_eq!(auth[0], "auth");
    assert_eq!(auth[1], serde_json::json!({"token": "t"}));
    assert!(auth[2].is_string());
    ws.send_text(r#"42["message","a"]"#).await;
    let back = json_after(&ws.text_app().await, "42");
    assert_eq!(back[1], "a");
    assert!(back[2].is_string());
    assert_ne!(back[2], auth[2]);
    // Acks carry no offset.
    ws.send_text(r#"421["message-with-ack","a"]"#).await;
    assert_eq!(ws.text_app().await, r#"431["a"]"#);
    // Other namespaces are refused.
    ws.send_text("40/custom,").await;
    assert_eq!(
        ws.text_app().await,
        r#"44/custom,{"message":"Invalid namespace"}"#
    );
}

#[tokio::test]
async fn a_client_that_comes_back_gets_its_session_and_missed_events() {
    let s = Server::start().await;
    let mut a = sio(s.addr, REC).await;
    let (sid, pid, _) = connect(&mut a, "40").await;
    a.send_text(r#"421["join","r1"]"#).await;
    assert_eq!(a.text_app().await, r#"431[["r1"]]"#);
    a.send_text(r#"42["message","last"]"#).await;
    let last = offset(&a.text_app().await);

    let mut b = sio(s.addr, REC).await;
    connect(&mut b, "40").await;
    // a's transport dies.
    drop(a);
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Events a misses: one to its room, one to everyone, one to another room.
    b.send_text(r#"421["room-emit","r1","to-room"]"#).await;
    assert_eq!(b.text_app().await, "431[]");
    b.send_text(r#"422["broadcast","to-all"]"#).await;
    assert_eq!(b.text_app().await, "432[]");
    b.send_text(r#"423["room-emit","elsewhere","not-for-a"]"#)
        .await;
    assert_eq!(b.text_app().await, "433[]");

    let mut a = sio(s.addr, REC).await;
    a.send_text(&format!(r#"40{{"pid":"{pid}","offset":"{last}"}}"#))
        .await;
    let first = json_after(&a.text_app().await, "42");
    assert_eq!(
        (first[0].as_str(), first[1].as_str()),
        (Some("room-emit"), Some("to-room"))
    );
    let second = json_after(&a.text_app().await, "42");
    assert_eq!(
        (second[0].as_str(), second[1].as_str()),
        (Some("broadcast"), Some("to-all"))
    );
    let accept = json_after(&a.text_app().await, "40");
    assert_eq!(accept["sid"], sid.as_str());
    assert_eq!(accept["pid"], pid.as_str());
    assert!(a.text_app().await.starts_with(r#"42["auth","#));
    a.send_text(r#"425["whoami"]"#).await;
    let who = json_after(&a.text_app().await, "435");
    assert_eq!(who[0]["recovered"], true);
    assert_eq!(who[0]["id"], sid.as_str());
    assert_eq!(who[0]["rooms"], serde_json::json!(["r1"]));
}

#[tokio::test]
async fn unknown_pid_or_a_client_disconnect_gives_a_fresh_session() {
    let s = Server::start().await;
    let mut ws = sio(s.addr, REC).await;
    let (sid, pid, last) = connect(&mut ws, "40").await;
    // A DISCONNECT from the client: the session is not kept.
    ws.send_text("41").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (sid2, pid2, _) = connect(
        &mut ws,
        &format!(r#"40{{"pid":"{pid}","offset":"{last}"}}"#),
    )
    .await;
    assert_ne!(sid2, sid);
    assert_ne!(pid2, pid);
    ws.send_text(r#"421["whoami"]"#).await;
    let who = json_after(&ws.text_app().await, "431");
    assert_eq!(who[0]["recovered"], false);

    let mut other = sio(s.addr, REC).await;
    let (sid3, _, _) = connect(&mut other, r#"40{"pid":"nope","offset":"nope"}"#).await;
    assert_ne!(sid3, sid);
}

/// A recovered socket has its data back: what `set-data` stored before the transport died is
/// what `get-data` answers after the recovery; a fresh session has none.
#[tokio::test]
async fn a_recovered_socket_has_its_data_back() {
    let s = Server::start().await;
    let mut a = sio(s.addr, REC).await;
    let (sid, pid, _) = connect(&mut a, "40").await;
    a.send_text(r#"421["set-data",{"user":"ann","cart":[1,2]}]"#)
        .await;
    assert_eq!(a.text_app().await, "431[]");
    a.send_text(r#"42["message","last"]"#).await;
    let last = offset(&a.text_app().await);
    // The transport dies; the client comes back right away.
    drop(a);
    let mut a = sio(s.addr, REC).await;
    let (sid2, pid2, _) =
        connect(&mut a, &format!(r#"40{{"pid":"{pid}","offset":"{last}"}}"#)).await;
    assert_eq!((sid2.as_str(), pid2.as_str()), (sid.as_str(), pid.as_str()));
    a.send_text(r#"422["get-data"]"#).await;
    assert_eq!(
        json_after(&a.text_app().await, "432"),
        serde_json::json!([{"user": "ann", "cart": [1, 2]}])
    );

    // After a client DISCONNECT nothing is kept: a fresh session, no data.
    a.send_text("41").await;
    let (sid3, _, _) = connect(&mut a, &format!(r#"40{{"pid":"{pid}","offset":"{last}"}}"#)).await;
    assert_ne!(sid3, sid);
    a.send_text(r#"423["get-data"]"#).await;
    assert_eq!(a.text_app().await, "433[null]");
}
