//! A Redis that stops answering for a while (`DEBUG SLEEP`) makes the operations that wait for
//! the other servers fail cleanly within the requests timeout, instead of hanging until Redis
//! wakes: `fetch_sockets`, `server_side_emit_with_ack` and a broadcast with acks each end with
//! an error while Redis still sleeps. Local delivery goes on meanwhile, and once Redis answers
//! again the cluster works again.
//!
//! The same when Redis itself answers but is slow to pass the requests on to the other server
//! (its link held back by a TCP proxy of the test's own): the operations end with a timeout
//! before that server saw them, and the answers it sends late are dropped.
//!
//! Every test starts a `redis-server` of its own on a free port (with `--enable-debug-command
//! yes`), two Ferrio servers with the adapter under test and a short requests timeout, and a
//! Socket.IO client on each.

mod common;

use std::io::Read;
use std::time::Duration;

use common::{Flavor, Node, NodeConfig, OwnRedis, Proxy, WAIT};
use ferrio_server::{
    AckError, AckReply, AdapterError, EmitError, RemoteSocket, ServerSideEmitError,
};
use serde_json::{json, Value};

/// How long Redis sleeps, in seconds. Every operation under test must end, with an error, while
/// it still sleeps: an operation that waited for Redis instead would succeed after it.
const SLEEP_SECS: u64 = 4;

/// The requests timeout of the nodes: well inside the sleep.
const REQUESTS_TIMEOUT: Duration = Duration::from_millis(1000);

const KEY: &str = "ferrio-slow";

/// A `redis-server` of this test's own on a free port, that accepts `DEBUG SLEEP`.
fn own_redis() -> OwnRedis {
    OwnRedis::start_with(&["--enable-debug-command", "yes"])
}

/// Waits (on a blocking thread, bounded) until Redis answers the `DEBUG SLEEP` sent on `conn`.
async fn awake(mut conn: std::net::TcpStream) {
    let answer = tokio::task::spawn_blocking(move || {
        conn.set_read_timeout(Some(WAIT)).unwrap();
        let mut buf = [0u8; 16];
        let n = conn.read(&mut buf).unwrap_or(0);
        String::from_utf8_lossy(&buf[..n]).into_owned()
    })
    .await
    .unwrap();
    assert_eq!(answer, "+OK\r\n", "Redis answers DEBUG SLEEP once awake");
}

/// A node of `flavor` that reaches Redis at `url`, with the short requests timeout; its client
/// answers every event asking for an ack with `"ok-<label>"`.
async fn start(flavor: Flavor, url: &str, label: &'static str) -> Node {
    let config = NodeConfig {
        key: KEY.to_owned(),
        label,
        requests_timeout: Some(REQUESTS_TIMEOUT),
        answer_acks: true,
    };
    Node::start(flavor, url, config).await
}

/// Retries `fetch_sockets` on `node` (bounded) until it lists the sockets of both nodes.
async fn fetch_lists_both(node: &Node) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Ok(sockets) = node.io.fetch_sockets().await {
            if sockets.len() == 2 {
                return;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "fetch_sockets on node {} never listed both nodes' sockets",
            node.label
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What node a's `fetch_sockets`, `server_side_emit_with_ack` and broadcast with acks ended
/// with.
type Outcomes = (
    Result<Vec<RemoteSocket>, AdapterError>,
    Result<Vec<Value>, ServerSideEmitError>,
    Result<Vec<Result<AckReply, AckError>>, EmitError>,
);

/// Starts the three cross-node operations on node `a`, checks that local delivery goes on
/// meanwhile (the local client receives a local emit), and waits (bounded) until they end.
async fn cross_node_requests(a: &mut Node) -> Outcomes {
    let fetch = tokio::spawn(a.io.fetch_sockets());
    let server_side = tokio::spawn(a.io.of("/").server_side_emit_with_ack("ping", &()));
    let broadcast = tokio::spawn(a.io.timeout(REQUESTS_TIMEOUT).emit_with_ack("ask", &()));
    a.io.local().emit("local", &("still-here",)).unwrap();
    assert_eq!(a.client_got("local").await, json!("still-here"));
    let (fetch, server_side, broadcast) =
        tokio::time::timeout(WAIT, async { tokio::join!(fetch, server_side, broadcast) })
            .await
            .expect("the cross-node requests end");
    (fetch.unwrap(), server_side.unwrap(), broadcast.unwrap())
}

async fn cross_node_requests_time_out_while_redis_sleeps(flavor: Flavor) {
    let redis = own_redis();
    let mut a = start(flavor, &redis.url(), "a").await;
    let b = start(flavor, &redis.url(), "b").await;
    // The cluster works: both nodes see each other.
    fetch_lists_both(&a).await;

    let sleeper = redis.debug_sleep(SLEEP_SECS);
    // Let Redis read the command before the requests go out.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let (fetch, server_side, broadcast) = cross_node_requests(&mut a).await;
    // ... and all that happened while Redis still slept: it has not answered the DEBUG SLEEP.
    sleeper.set_nonblocking(true).unwrap();
    let mut probe = [0u8; 16];
    let still_asleep = matches!(
        (&sleeper).read(&mut probe),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
    );
    sleeper.set_nonblocking(false).unwrap();
    assert!(
        still_asleep,
        "{flavor:?}: the cross-node requests waited for Redis to wake up"
    );

    // Each failed: Redis never relayed them, so they cannot have completed.
    assert!(
        fetch.is_err(),
        "{flavor:?}: fetch_sockets while Redis sleeps: {:?}",
        fetch.map(|s| s.len())
    );
    let server_side = server_side.expect_err("server_side_emit_with_ack while Redis sleeps");
    assert!(
        server_side.responses.is_empty(),
        "no other node could answer: {server_side:?}"
    );
    match broadcast {
        Err(EmitError::Cluster(_)) => {}
        Ok(replies) => {
            // Node a's own client answered; node b's part failed.
            assert!(
                replies.iter().any(|r| r.is_ok()),
                "{flavor:?}: the local client's ack is missing: {replies:?}"
            );
            assert!(
                replies
                    .iter()
                    .any(|r| matches!(r, Err(AckError::Timeout | AckError::Emit(_)))),
                "{flavor:?}: the broadcast with acks succeeded while Redis slept: {replies:?}"
            );
        }
        Err(e) => panic!("{flavor:?}: unexpected broadcast error {e:?}"),
    }

    // Once Redis is awake the cluster works again.
    awake(sleeper).await;
    fetch_lists_both(&a).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match a.io.of("/").server_side_emit_with_ack("ping", &()).await {
            Ok(answers) => {
                assert_eq!(answers, vec![json!("pong-from-b")]);
                break;
            }
            Err(e) => assert!(
                tokio::time::Instant::now() < deadline,
                "{flavor:?}: server-side emits never answered again: {e:?}"
            ),
        }
    }
    drop(b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_node_requests_time_out_while_redis_sleeps_classic() {
    cross_node_requests_time_out_while_redis_sleeps(Flavor::Classic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_node_requests_time_out_while_redis_sleeps_sharded() {
    cross_node_requests_time_out_while_redis_sleeps(Flavor::Sharded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_node_requests_time_out_while_redis_sleeps_streams() {
    cross_node_requests_time_out_while_redis_sleeps(Flavor::Streams).await;
}

/// Redis answers node a at once, but what it sends to node b is held back: node b sees the
/// requests late, and its answers come late. Node a's requests end with an error within the
/// requests timeout (before node b could even see them), the late answers that come after are
/// dropped, and the cluster works again once the link is fast again.
async fn requests_time_out_when_the_other_node_answers_late(flavor: Flavor) {
    let redis = own_redis();
    let proxy = Proxy::start(redis.port).await;
    let mut a = start(flavor, &redis.url(), "a").await;
    let b = start(flavor, &proxy.url(), "b").await;
    fetch_lists_both(&a).await;

    proxy.hold();
    let (fetch, server_side, broadcast) = cross_node_requests(&mut a).await;
    // Node b has not seen any of them yet.
    assert!(proxy.holding());

    match fetch {
        Err(AdapterError::Timeout(_)) => {}
        other => panic!(
            "{flavor:?}: fetch_sockets without node b's answer: {:?}",
            other.map(|s| s.len())
        ),
    }
    let server_side = server_side.expect_err("server_side_emit_with_ack without node b's answer");
    assert!(
        matches!(server_side.error, AdapterError::Timeout(_)),
        "{flavor:?}: {server_side:?}"
    );
    assert!(server_side.responses.is_empty(), "{server_side:?}");
    match broadcast {
        // Node a's client answered; node b's part timed out.
        Ok(replies) => {
            assert_eq!(
                replies.iter().filter(|r| r.is_ok()).count(),
                1,
                "{flavor:?}: only node a's client could answer: {replies:?}"
            );
            assert!(
                replies.iter().any(|r| matches!(r, Err(AckError::Timeout))),
                "{flavor:?}: node b's part did not time out: {replies:?}"
            );
        }
        Err(EmitError::Cluster(AdapterError::Timeout(_))) => {}
        Err(e) => panic!("{flavor:?}: unexpected broadcast error {e:?}"),
    }

    // Node b gets the requests now and answers them, too late: node a drops the answers and
    // goes on working.
    proxy.release();
    fetch_lists_both(&a).await;
    let answers =
        a.io.of("/")
            .server_side_emit_with_ack("ping", &())
            .await
            .expect("node b answers again");
    assert_eq!(answers, vec![json!("pong-from-b")]);
    drop(b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_time_out_when_the_other_node_answers_late_classic() {
    requests_time_out_when_the_other_node_answers_late(Flavor::Classic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_time_out_when_the_other_node_answers_late_sharded() {
    requests_time_out_when_the_other_node_answers_late(Flavor::Sharded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_time_out_when_the_other_node_answers_late_streams() {
    requests_time_out_when_the_other_node_answers_late(Flavor::Streams).await;
}
