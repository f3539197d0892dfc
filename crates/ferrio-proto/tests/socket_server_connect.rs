//! The server Socket.IO connection machine answers every CONNECT: the CONNECTs that arrive
//! while the application decides on one are answered with that decision (accept), or start a
//! new decision with the last one's auth (refusal); the connect timeout and the session's write
//! bound still apply.

use std::time::Duration;

use ferrio_proto::engine::server as eio;
use ferrio_proto::engine::{Frame, Protocol};
use ferrio_proto::socket::server::{
    CommandError, Config, Connection, DisconnectReason, Event, Input, Output, RecoveryRequest,
};
use ferrio_proto::{Instant, Str};

fn t(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

fn connection(transport: eio::Transport, max_buffered_bytes: usize) -> Connection {
    let mut c = Connection::new(
        t(0),
        "eio".into(),
        Protocol::V4,
        transport,
        eio::Config {
            max_buffered_bytes,
            ..eio::Config::default()
        },
        Config {
            connect_timeout: Duration::from_millis(1000),
            ..Config::default()
        },
    );
    drain(&mut c);
    c
}

fn ws() -> Connection {
    connection(
        eio::Transport::WebSocket,
        eio::Config::default().max_buffered_bytes,
    )
}

fn drain(c: &mut Connection) -> Vec<Output> {
    std::iter::from_fn(|| c.poll_output()).collect()
}

fn frame(c: &mut Connection, s: &str) {
    c.handle_input(t(1), Input::WsFrame(Frame::Text(Str::from(s))))
        .expect("frame taken");
}

/// The text frames written on the WebSocket.
fn sent(out: &[Output]) -> Vec<String> {
    out.iter()
        .filter_map(|o| match o {
            Output::Io(eio::Io::WsSend {
                frame: Frame::Text(s),
                ..
            }) => Some(s.to_string()),
            _ => None,
        })
        .collect()
}

/// The CONNECT decisions asked of the application: (namespace, auth, recovery request).
fn connects(out: &[Output]) -> Vec<(String, String, Option<RecoveryRequest>)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Event(Event::Connect {
                nsp,
                auth,
                recovery,
            }) => Some((nsp.to_string(), auth.as_str().to_owned(), recovery.clone())),
            _ => None,
        })
        .collect()
}

fn count(frames: &[String], frame: &str) -> usize {
    frames.iter().filter(|f| *f == frame).count()
}

const ACCEPT: &str = r#"40/admin,{"sid":"sock"}"#;
const REFUSED: &str = r#"44/admin,{"message":"no"}"#;

#[test]
fn an_accept_answers_every_connect_received_while_deciding() {
    let mut c = ws();
    frame(&mut c, r#"40/admin,{"token":"a"}"#);
    let out = drain(&mut c);
    assert_eq!(
        connects(&out),
        [("/admin".into(), r#"{"token":"a"}"#.into(), None)]
    );
    // `socket.connect()` again, then a retry with new auth: no second decision
    frame(&mut c, "40/admin,");
    frame(&mut c, r#"40/admin,{"token":"b"}"#);
    let out = drain(&mut c);
    assert!(out.is_empty(), "{out:?}");
    assert!(!c.is_connected("/admin"));

    c.accept(t(2), "/admin", "sock", None, []).expect("pending");
    let frames = sent(&drain(&mut c));
    assert_eq!(frames, [ACCEPT; 3]);
    assert!(c.is_connected("/admin"));
    // decided: nothing more pending
    assert_eq!(
        c.accept(t(3), "/admin", "sock", None, []),
        Err(CommandError::NoPendingConnect)
    );
    // and a CONNECT to a joined namespace is still the reference's invalid state
    frame(&mut c, "40/admin,");
    assert!(drain(&mut c).contains(&Output::Event(Event::Closed(
        DisconnectReason::ForcedServerClose
    ))));
}

#[test]
fn a_refusal_answers_its_connect_and_decides_again_with_the_last_auth() {
    let mut c = ws();
    frame(&mut c, r#"40/admin,{"token":"a"}"#);
    drain(&mut c);
    frame(&mut c, r#"40/admin,{"token":"b"}"#);
    frame(&mut c, r#"40/admin,{"token":"c","pid":"p1","offset":"o9"}"#);
    assert!(drain(&mut c).is_empty());

    c.reject(t(2), "/admin", "no", None).expect("pending");
    let out = drain(&mut c);
    assert_eq!(sent(&out), [REFUSED], "one refusal for the decided CONNECT");
    assert_eq!(
        connects(&out),
        [(
            "/admin".into(),
            r#"{"token":"c","pid":"p1","offset":"o9"}"#.into(),
            Some(RecoveryRequest {
                pid: "p1".into(),
                offset: Some("o9".into()),
            })
        )],
        "a new decision with the last auth"
    );
    // the new decision answers both retries
    c.accept(t(3), "/admin", "sock", None, []).expect("pending");
    let out = drain(&mut c);
    assert_eq!(sent(&out), [ACCEPT; 2]);
    assert!(connects(&out).is_empty());
    assert!(c.is_connected("/admin"));
}

#[test]
fn a_refusal_without_retries_ends_the_attempt() {
    let mut c = ws();
    frame(&mut c, "40/admin,");
    drain(&mut c);
    c.reject(t(2), "/admin", "no", None).expect("pending");
    let out = drain(&mut c);
    assert_eq!(sent(&out), [REFUSED]);
    assert!(connects(&out).is_empty());
    assert_eq!(
        c.reject(t(2), "/admin", "no", None),
        Err(CommandError::NoPendingConnect)
    );
    // a later CONNECT is a new attempt, as before
    frame(&mut c, "40/admin,");
    assert_eq!(connects(&drain(&mut c)).len(), 1);
}

#[test]
fn ten_thousand_retries_each_get_an_answer() {
    const RETRIES: usize = 10_000;
    let mut c = ws();
    frame(&mut c, r#"40/admin,{"try":0}"#);
    drain(&mut c);
    for i in 1..=RETRIES {
        frame(&mut c, &format!(r#"40/admin,{{"try":{i}}}"#));
    }
    assert!(drain(&mut c).is_empty());
    // refused: one answer, and one new decision for all the retries, with the last auth
    c.reject(t(2), "/admin", "no", None).expect("pending");
    let out = drain(&mut c);
    assert_eq!(sent(&out), [REFUSED]);
    assert_eq!(
        connects(&out),
        [("/admin".into(), format!(r#"{{"try":{RETRIES}}}"#), None)]
    );
    // refused again: every retry gets its refusal, and nothing is left to decide
    c.reject(t(3), "/admin", "no", None).expect("pending");
    let out = drain(&mut c);
    let frames = sent(&out);
    assert_eq!((frames.len(), count(&frames, REFUSED)), (RETRIES, RETRIES));
    assert!(connects(&out).is_empty());

    // the same with an accept
    let mut c = ws();
    for i in 0..=RETRIES {
        frame(&mut c, &format!(r#"40/admin,{{"try":{i}}}"#));
    }
    assert_eq!(connects(&drain(&mut c)).len(), 1);
    c.accept(t(2), "/admin", "sock", None, []).expect("pending");
    let frames = sent(&drain(&mut c));
    assert_eq!(count(&frames, ACCEPT), RETRIES + 1);
}

#[test]
fn connects_in_one_polling_payload_to_an_unknown_namespace_are_all_refused() {
    let mut c = connection(
        eio::Transport::Polling,
        eio::Config::default().max_buffered_bytes,
    );
    let payload = ["40/nope,", r#"40/nope,{"a":1}"#, r#"40/nope,{"a":2}"#].join("\u{1e}");
    c.handle_input(t(1), Input::PostStart { binary: false })
        .expect("post");
    c.handle_input(
        t(1),
        Input::Post {
            body: Some(payload.into()),
            binary: false,
        },
    )
    .expect("post");
    // the application refuses each decision it is asked for, as a server without `/nope` does
    let mut decisions = Vec::new();
    while let Some(o) = c.poll_output() {
        if let Output::Event(Event::Connect { nsp, auth, .. }) = o {
            decisions.push(auth.as_str().to_owned());
            c.reject_unknown_namespace(t(1), &nsp).expect("pending");
        }
    }
    assert_eq!(decisions, ["{}", r#"{"a":2}"#]);
    c.handle_input(t(2), Input::Poll(1)).expect("poll");
    let body = drain(&mut c)
        .into_iter()
        .find_map(|o| match o {
            Output::Io(eio::Io::PollResponse { body, .. }) => Some(body),
            _ => None,
        })
        .expect("an answer to the GET");
    let refusal = r#"44/nope,{"message":"Invalid namespace"}"#;
    // after the open packet, which waited for this first GET
    let records: Vec<&str> = std::str::from_utf8(&body)
        .expect("text")
        .split('\u{1e}')
        .skip(1)
        .collect();
    assert_eq!(records, [refusal; 3]);
}

#[test]
fn answers_past_the_write_bound_close_the_connection() {
    // room for about ten answers of 25 bytes
    for transport in [eio::Transport::WebSocket, eio::Transport::Polling] {
        let mut c = connection(transport, 250);
        let connect = |c: &mut Connection| match transport {
            eio::Transport::WebSocket => frame(c, "40/admin,"),
            eio::Transport::Polling => {
                c.handle_input(t(1), Input::PostStart { binary: false })
                    .expect("post");
                c.handle_input(
                    t(1),
                    Input::Post {
                        body: Some("40/admin,".into()),
                        binary: false,
                    },
                )
                .expect("post");
            }
        };
        for _ in 0..100 {
            connect(&mut c);
        }
        assert_eq!(connects(&drain(&mut c)).len(), 1);
        c.accept(t(2), "/admin", "sock", None, []).expect("pending");
        let out = drain(&mut c);
        assert!(
            out.contains(&Output::Event(Event::Disconnect {
                nsp: "/admin".into(),
                reason: DisconnectReason::BufferFull,
            })),
            "{transport:?}: {out:?}"
        );
        if transport == eio::Transport::WebSocket {
            let answered = count(&sent(&out), ACCEPT);
            assert!((1..100).contains(&answered), "{answered}");
        }
    }
}

#[test]
fn retries_do_not_change_the_connect_timeout() {
    let mut c = ws();
    frame(&mut c, "40/admin,");
    drain(&mut c);
    for ms in [100, 500, 900] {
        c.handle_input(t(ms), Input::WsFrame(Frame::Text("40/admin,".into())))
            .expect("frame");
    }
    c.reject(t(950), "/admin", "no", None).expect("pending");
    let out = drain(&mut c);
    assert_eq!(sent(&out), [REFUSED]);
    assert_eq!(connects(&out).len(), 1, "a new decision for the retries");
    // no namespace joined one second after the connection opened: closed, whatever is pending
    assert_eq!(c.poll_timeout(), Some(t(1000)));
    c.handle_input(t(1000), Input::Timeout).expect("timeout");
    assert!(drain(&mut c).contains(&Output::Event(Event::Closed(
        DisconnectReason::ForcedServerClose
    ))));
    assert_eq!(
        c.accept(t(1001), "/admin", "sock", None, []),
        Err(CommandError::Closed)
    );
}

#[test]
fn the_retry_auth_is_kept_as_sent() {
    let mut c = ws();
    frame(&mut c, "40/admin,");
    drain(&mut c);
    // a retry without auth after one with auth: the last one's (none) is used
    frame(&mut c, r#"40/admin,{"token":"b"}"#);
    frame(&mut c, "40/admin,");
    c.reject(t(2), "/admin", "no", None).expect("pending");
    assert_eq!(
        connects(&drain(&mut c)),
        [("/admin".into(), "{}".into(), None)]
    );
}
