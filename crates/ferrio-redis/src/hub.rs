//! The Redis connections one adapter shares between its namespaces: a subscriber connection
//! that reconnects and subscribes again by itself, an ordered publisher, and the command
//! connection (a `ConnectionManager`, which reconnects too).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use redis::aio::{ConnectionManager, PubSubSink};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use crate::node::NsAdapter;
use crate::RedisError;

/// Publishes waiting to be written to Redis. Past it (Redis slow or down for long) further
/// cluster messages are dropped with a warning; local delivery is not affected.
pub const PUBLISH_QUEUE: usize = 4096;

/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// What a message from Redis is routed by.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) enum Route {
    /// A `PSUBSCRIBE` pattern (broadcast channels).
    Pattern,
    /// A `SUBSCRIBE` channel (requests and responses).
    Channel,
}

#[derive(Default)]
struct Subscriptions {
    /// Channel or pattern → the namespace adapter it feeds.
    routes: HashMap<(Route, String), Weak<NsAdapter>>,
    /// The live subscriber connection's command side, if connected.
    sink: Option<PubSubSink>,
}

pub(crate) struct Hub {
    client: redis::Client,
    pub(crate) conn: ConnectionManager,
    publish: mpsc::Sender<(String, Bytes)>,
    subs: Mutex<Subscriptions>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Hub {
    /// Connects the command connection and starts the subscriber and publisher tasks.
    pub(crate) async fn start(client: redis::Client) -> Result<Arc<Hub>, RedisError> {
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(Duration::from_secs(5)))
            .set_max_delay(Duration::from_secs(2));
        let conn = client.get_connection_manager_with_config(config).await?;
        let (publish, queue) = mpsc::channel(PUBLISH_QUEUE);
        let hub = Arc::new(Hub {
            client,
            conn,
            publish,
            subs: Mutex::new(Subscriptions::default()),
            tasks: Mutex::new(Vec::new()),
        });
        let subscriber = tokio::spawn(run_subscriber(Arc::downgrade(&hub)));
        let publisher = tokio::spawn(run_publisher(hub.conn.clone(), queue));
        if let Ok(mut tasks) = hub.tasks.lock() {
            tasks.push(subscriber);
            tasks.push(publisher);
        }
        Ok(hub)
    }

    /// Stops the tasks; the subscriber connection closes, so Redis stops counting this node.
    pub(crate) fn close(&self) {
        if let Ok(mut tasks) = self.tasks.lock() {
            for task in tasks.drain(..) {
                task.abort();
            }
        }
        if let Ok(mut subs) = self.subs.lock() {
            subs.routes.clear();
            subs.sink = None;
        }
    }

    /// Queues a publish; it is written in order with the others.
    pub(crate) fn publish(&self, channel: String, payload: Bytes) {
        if let Err(e) = self.publish.try_send((channel, payload)) {
            warn!(error = %e, "redis adapter: publish queue full or closed, cluster message dropped");
        }
    }

    /// Routes `channels` (or patterns) to `ns` and subscribes to them now if connected (else
    /// on the next connection).
    pub(crate) fn register(&self, route: Route, names: Vec<String>, ns: &Arc<NsAdapter>) {
        let sink = {
            let Ok(mut subs) = self.subs.lock() else {
                return;
            };
            for name in &names {
                subs.routes
                    .insert((route, name.clone()), Arc::downgrade(ns));
            }
            subs.sink.clone()
        };
        if let Some(mut sink) = sink {
            tokio::spawn(async move {
                let result = match route {
                    Route::Pattern => sink.psubscribe(&names).await,
                    Route::Channel => sink.subscribe(&names).await,
                };
                if let Err(e) = result {
                    warn!(error = %e, "redis adapter: subscribe failed (retried on reconnection)");
                }
            });
        }
    }

    fn route(&self, route: Route, name: &str) -> Option<Arc<NsAdapter>> {
        self.subs
            .lock()
            .ok()?
            .routes
            .get(&(route, name.to_owned()))?
            .upgrade()
    }

    /// Takes the new connection's sink and returns everything to subscribe to.
    fn connected(&self, sink: PubSubSink) -> (Vec<String>, Vec<String>) {
        let Ok(mut subs) = self.subs.lock() else {
            return (Vec::new(), Vec::new());
        };
        subs.sink = Some(sink);
        let mut channels = Vec::new();
        let mut patterns = Vec::new();
        for (route, name) in subs.routes.keys() {
            match route {
                Route::Channel => channels.push(name.clone()),
                Route::Pattern => patterns.push(name.clone()),
            }
        }
        (channels, patterns)
    }

    fn disconnected(&self) {
        if let Ok(mut subs) = self.subs.lock() {
            subs.sink = None;
        }
    }

    fn dispatch(&self, msg: redis::Msg) {
        let channel = msg.get_channel_name();
        let payload = msg.get_payload_bytes();
        if msg.from_pattern() {
            let Ok(pattern) = msg.get_pattern::<String>() else {
                return;
            };
            if let Some(ns) = self.route(Route::Pattern, &pattern) {
                ns.on_broadcast(channel, payload);
            }
        } else if let Some(ns) = self.route(Route::Channel, channel) {
            ns.on_request_or_response(channel, payload);
        }
    }
}

async fn run_subscriber(hub: Weak<Hub>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let Some(client) = hub.upgrade().map(|h| h.client.clone()) else {
            return;
        };
        let pubsub = match tokio::time::timeout(CONNECT_TIMEOUT, client.get_async_pubsub()).await {
            Ok(Ok(pubsub)) => pubsub,
            Ok(Err(e)) => {
                debug!(error = %e, "redis adapter: subscriber cannot connect");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
            Err(_) => {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        let (mut sink, mut stream) = pubsub.split();
        let Some((channels, patterns)) = hub.upgrade().map(|h| h.connected(sink.clone())) else {
            return;
        };
        let subscribed = async {
            if !channels.is_empty() {
                sink.subscribe(&channels).await?;
            }
            if !patterns.is_empty() {
                sink.psubscribe(&patterns).await?;
            }
            Ok::<(), redis::RedisError>(())
        }
        .await;
        if let Err(e) = subscribed {
            warn!(error = %e, "redis adapter: subscribing failed, reconnecting");
            if let Some(h) = hub.upgrade() {
                h.disconnected();
            }
            tokio::time::sleep(backoff).await;
            continue;
        }
        backoff = Duration::from_millis(100);
        debug!("redis adapter: subscriber connected");
        while let Some(msg) = stream.next().await {
            let Some(h) = hub.upgrade() else {
                return;
            };
            h.dispatch(msg);
        }
        warn!("redis adapter: subscriber connection lost, reconnecting");
        if let Some(h) = hub.upgrade() {
            h.disconnected();
        }
    }
}

async fn run_publisher(mut conn: ConnectionManager, mut queue: mpsc::Receiver<(String, Bytes)>) {
    while let Some((channel, payload)) = queue.recv().await {
        let result: Result<(), redis::RedisError> = redis::cmd("PUBLISH")
            .arg(&channel)
            .arg(payload.as_ref())
            .query_async(&mut conn)
            .await;
        if let Err(e) = result {
            warn!(error = %e, %channel, "redis adapter: publish failed, message dropped");
        }
    }
}
