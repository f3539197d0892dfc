//! A subscriber connection whose peer vanished without closing it (a network cut) is noticed by
//! the health-check pings and replaced: broadcasts from the other servers reach this server's
//! clients again.
//!
//! Node `a` reaches Redis through a TCP proxy of the test's own; node `b` directly. The proxy
//! then turns every connection it carries into a black hole: nothing is forwarded any more in
//! either direction and nothing is closed, as when a network path dies. Connections made after
//! that are forwarded normally, so a node that reconnects works again.

mod common;

use std::time::Duration;

use common::{Flavor, Node, NodeConfig, Proxy};

const REDIS: &str = "127.0.0.1:6379";

/// How long node `a` may take to notice the dead connection and reconnect: the health check
/// bound (10 s) plus reconnection, with room for a slow machine. Never asserted as a duration.
const RECOVERY: Duration = Duration::from_secs(40);

/// How long anything else may take.
const WAIT: Duration = Duration::from_secs(15);

/// A node of `flavor` reaching Redis at `url`, with the adapter's default requests timeout.
async fn start(flavor: Flavor, url: &str, key: &str) -> Node {
    let config = NodeConfig {
        key: key.to_owned(),
        label: "node",
        requests_timeout: None,
        answer_acks: false,
    };
    Node::start(flavor, url, config).await
}

/// Has `from` emit `event` (with a counter) every 300 ms until `to`'s client receives one;
/// panics past `within`.
async fn broadcast_until_received(from: &Node, to: &mut Node, event: &str, within: Duration) {
    let failure = format!("node a's client never received {event:?} again");
    common::send_until_received(&mut to.client_events, event, within, &failure, |n| {
        from.io.emit(event, &(n,)).unwrap();
    })
    .await;
}

async fn subscriber_reconnects_after_a_network_cut(flavor: Flavor) {
    let key = format!("ferrio-half-open-{flavor:?}-{}", std::process::id());
    let proxy = Proxy::start(6379).await;
    let mut a = start(flavor, &proxy.url(), &key).await;
    let mut b = start(flavor, &format!("redis://{REDIS}/"), &key).await;
    broadcast_until_received(&b, &mut a, "before", WAIT).await;

    proxy.black_hole();
    // Whatever was in flight is gone; from now on only a new connection delivers.
    while a.client_events.try_recv().is_ok() {}
    broadcast_until_received(&b, &mut a, "after", RECOVERY).await;

    // And node a's own broadcasts (its command connection) go out again too.
    broadcast_until_received(&a, &mut b, "from-a", RECOVERY).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classic_subscriber_reconnects_after_a_network_cut() {
    subscriber_reconnects_after_a_network_cut(Flavor::Classic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharded_subscriber_reconnects_after_a_network_cut() {
    subscriber_reconnects_after_a_network_cut(Flavor::Sharded).await;
}
