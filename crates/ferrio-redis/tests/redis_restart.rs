//! No cluster message is lost once Redis is back after an outage: the first broadcast, the
//! first request and the first answer each node sends after a restart reach the other node,
//! with no traffic in between to wake the connections up.
//!
//! Every test starts a `redis-server` of its own on a free port (it is killed and started
//! again), two Ferrio servers with the adapter under test, and a Socket.IO client on each.
//!
//! With the streams adapter, one more case: the entries another node appends while this node's
//! link to Redis is down (cut by a TCP proxy between this node and Redis, Redis itself keeps
//! running) are delivered once the link is back.

mod common;

use std::time::Duration;

use common::{wait_until, Flavor, Node, NodeConfig, OwnRedis, Proxy};
use serde_json::json;

/// How long Redis stays down.
const OUTAGE: Duration = Duration::from_millis(500);

const KEY: &str = "ferrio-restart";

impl Flavor {
    /// True once both nodes' subscribers listen on all their channels.
    async fn subscribed(self, redis: &OwnRedis) -> bool {
        let listening = match self {
            // The request channel, the common and the node's own response channels, and the
            // broadcast pattern.
            Flavor::Classic => redis.subscribers(3, 1, 0).await,
            // The namespace's channel and the node's response channel.
            Flavor::Sharded => redis.subscribers(0, 0, 2).await,
            // The namespace's channel and the node's response channel.
            Flavor::Streams => redis.subscribers(2, 0, 0).await,
        };
        listening == 2
    }

    /// The connections of one node that are not subscribers.
    fn command_connections(self) -> usize {
        match self {
            Flavor::Classic | Flavor::Sharded => 1,
            // The pub/sub queries', the ordered writes' and the stream reader's.
            Flavor::Streams => 3,
        }
    }
}

/// A node of `flavor` that reaches Redis at `url`, its client answering no acks.
async fn start(flavor: Flavor, url: &str, label: &'static str) -> Node {
    let config = NodeConfig {
        key: KEY.to_owned(),
        label,
        requests_timeout: Some(Duration::from_secs(5)),
        answer_acks: false,
    };
    Node::start(flavor, url, config).await
}

/// Two nodes of `flavor` on a Redis of the test's own, their subscribers listening, each with
/// its client, the cluster checked working.
async fn cluster(flavor: Flavor) -> (OwnRedis, Node, Node) {
    let redis = OwnRedis::start();
    let a = start(flavor, &redis.url(), "a").await;
    let mut b = start(flavor, &redis.url(), "b").await;
    wait_until("both subscribers listen", || flavor.subscribed(&redis)).await;
    a.io.emit("before", &("a",)).unwrap();
    assert_eq!(b.client_got("before").await, json!("a"));
    (redis, a, b)
}

/// Kills Redis and starts it again, then waits for the subscribers to listen again; nothing
/// else is sent meanwhile, so what the test sends next is the first write of each node's
/// command connection since Redis went away.
async fn restart(flavor: Flavor, redis: &mut OwnRedis) {
    redis.outage(OUTAGE).await;
    wait_until("the subscribers listen again", || flavor.subscribed(redis)).await;
}

async fn first_broadcasts_after_restart_are_delivered(flavor: Flavor) {
    let (mut redis, mut a, mut b) = cluster(flavor).await;
    restart(flavor, &mut redis).await;
    a.io.emit("from-a", &("after",)).unwrap();
    assert_eq!(b.client_got("from-a").await, json!("after"));
    b.io.emit("from-b", &("after",)).unwrap();
    assert_eq!(a.client_got("from-b").await, json!("after"));
}

/// Redis closes the nodes' command connections only (as its idle `timeout` or `CLIENT KILL`
/// do): the subscribers notice nothing, the next broadcast still goes out.
async fn first_broadcast_after_redis_closed_the_command_connections(flavor: Flavor) {
    let (redis, mut a, b) = cluster(flavor).await;
    let mut conn = redis.connection().await.unwrap();
    let killed: usize = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("normal")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        killed,
        2 * flavor.command_connections(),
        "the command connections of both nodes"
    );
    // Redis closed them before answering; give the nodes a moment to read the close.
    tokio::time::sleep(Duration::from_millis(300)).await;
    b.io.emit("from-b", &("after",)).unwrap();
    assert_eq!(a.client_got("from-b").await, json!("after"));
}

async fn first_requests_after_restart_get_their_answers(flavor: Flavor) {
    let (mut redis, a, b) = cluster(flavor).await;
    // Node a's question and node b's answer are each their node's first message.
    restart(flavor, &mut redis).await;
    let answers =
        a.io.of("/")
            .server_side_emit_with_ack("ping", &())
            .await
            .expect("node b answers the first request after the restart");
    assert_eq!(answers, vec![json!("pong-from-b")]);
    // The other way, with `fetch_sockets`.
    restart(flavor, &mut redis).await;
    let sockets =
        b.io.fetch_sockets()
            .await
            .expect("node a answers the first fetch after the restart");
    assert_eq!(sockets.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_broadcasts_after_restart_are_delivered_classic() {
    first_broadcasts_after_restart_are_delivered(Flavor::Classic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_broadcasts_after_restart_are_delivered_sharded() {
    first_broadcasts_after_restart_are_delivered(Flavor::Sharded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_requests_after_restart_get_their_answers_classic() {
    first_requests_after_restart_get_their_answers(Flavor::Classic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_requests_after_restart_get_their_answers_sharded() {
    first_requests_after_restart_get_their_answers(Flavor::Sharded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_broadcast_after_redis_closed_the_command_connections_classic() {
    first_broadcast_after_redis_closed_the_command_connections(Flavor::Classic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_broadcast_after_redis_closed_the_command_connections_sharded() {
    first_broadcast_after_redis_closed_the_command_connections(Flavor::Sharded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_broadcasts_after_restart_are_delivered_streams() {
    first_broadcasts_after_restart_are_delivered(Flavor::Streams).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_requests_after_restart_get_their_answers_streams() {
    first_requests_after_restart_get_their_answers(Flavor::Streams).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_broadcast_after_redis_closed_the_command_connections_streams() {
    first_broadcast_after_redis_closed_the_command_connections(Flavor::Streams).await;
}

/// Node a reaches Redis through a proxy whose link is cut; node b appends entries meanwhile.
/// Once the link is back, a's reader goes on from the last entry it read: it delivers them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_appended_while_the_reader_link_was_down_are_delivered() {
    let redis = OwnRedis::start();
    let mut proxy = Proxy::start(redis.port).await;
    let mut a = start(Flavor::Streams, &proxy.url(), "a").await;
    let b = start(Flavor::Streams, &redis.url(), "b").await;
    wait_until("both subscribers listen", || {
        Flavor::Streams.subscribed(&redis)
    })
    .await;
    b.io.emit("before", &("b",)).unwrap();
    assert_eq!(a.client_got("before").await, json!("b"));

    proxy.cut();
    // Redis sees node a's connections go.
    wait_until("node a's subscriber is gone", || async {
        redis.subscribers(2, 0, 0).await == 1
    })
    .await;
    let mut conn = redis.connection().await.unwrap();
    let length = |mut conn: redis::aio::MultiplexedConnection| async move {
        redis::cmd("XLEN")
            .arg(KEY)
            .query_async::<usize>(&mut conn)
            .await
            .unwrap()
    };
    let before = length(conn.clone()).await;
    b.io.emit("while-down", &(1,)).unwrap();
    b.io.emit("while-down", &(2,)).unwrap();
    wait_until("node b appended both", || {
        let conn = conn.clone();
        async move { length(conn).await == before + 2 }
    })
    .await;

    proxy.restore().await;
    assert_eq!(a.client_got("while-down").await, json!(1));
    assert_eq!(a.client_got("while-down").await, json!(2));
    let _ = redis::cmd("PING").query_async::<String>(&mut conn).await;
}
