//! The command connection of a hub: what the publisher writes on, and the `PUBSUB` queries.
//!
//! One multiplexed connection whose driver runs as a task of this module, so that its end is
//! known as soon as Redis closes it (a restart, `CLIENT KILL`, an idle `timeout`): nothing is
//! written to a connection already known dead, the next command connects again first. A
//! connection that fails a command with an I/O error or a timeout is replaced too, for the next
//! command (the failed one is not sent again: it may have reached Redis).
//!
//! What cannot be seen is a connection that died without Redis closing it (a host or network
//! gone, no FIN): writes on it fail only by timeout, the first such failure replaces it.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, ConnectionAddr, RedisError, RedisResult};
use tokio::sync::Mutex;
use tokio::task::AbortHandle;

type Driver = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The command connection, connected again on demand.
pub(crate) struct CommandConn {
    client: redis::Client,
    connect_timeout: Duration,
    response_timeout: Duration,
    /// The current connection, if one was made and is not known dead.
    current: Mutex<Option<Live>>,
}

/// A connection and its driver task.
struct Live {
    conn: MultiplexedConnection,
    /// Set when the driver ends (the connection is closed) or a command failed on it.
    dead: Arc<AtomicBool>,
    driver: AbortHandle,
}

impl Drop for Live {
    fn drop(&mut self) {
        // A replaced connection must not linger (a half-open one would wait forever for the
        // answers to what was written last).
        self.driver.abort();
    }
}

/// A connection handed out for one command or pipeline.
pub(crate) struct Checkout {
    /// The connection to send on.
    pub(crate) conn: MultiplexedConnection,
    dead: Arc<AtomicBool>,
}

impl Checkout {
    /// Reports that a command failed on this connection: unless Redis itself answered with an
    /// error, the connection is not trusted any more and the next command connects again.
    pub(crate) fn failed(&self, error: &RedisError) {
        if is_connection_error(error) {
            self.dead.store(true, Ordering::Release);
        }
    }
}

/// True if `error` says the connection is unusable (rather than Redis refusing a command).
pub(crate) fn is_connection_error(error: &RedisError) -> bool {
    error.is_io_error()
        || error.is_timeout()
        || error.is_connection_dropped()
        || error.is_unrecoverable_error()
}

impl CommandConn {
    /// Connects now: an unreachable Redis is reported to the caller.
    pub(crate) async fn connect(
        client: redis::Client,
        connect_timeout: Duration,
        response_timeout: Duration,
    ) -> RedisResult<CommandConn> {
        let conn = CommandConn {
            client,
            connect_timeout,
            response_timeout,
            current: Mutex::new(None),
        };
        let live = conn.open().await?;
        *conn.current.lock().await = Some(live);
        Ok(conn)
    }

    /// The current connection, or a new one if it is closed or failed (one connection attempt,
    /// at most the connect timeout; the callers meanwhile wait for it).
    pub(crate) async fn get(&self) -> RedisResult<Checkout> {
        let mut current = self.current.lock().await;
        if let Some(live) = current.as_ref() {
            if !live.dead.load(Ordering::Acquire) {
                return Ok(Checkout {
                    conn: live.conn.clone(),
                    dead: live.dead.clone(),
                });
            }
        }
        *current = None;
        let live = self.open().await?;
        let checkout = Checkout {
            conn: live.conn.clone(),
            dead: live.dead.clone(),
        };
        *current = Some(live);
        Ok(checkout)
    }

    /// A new connection, its driver running on a task that marks it dead when it ends.
    async fn open(&self) -> RedisResult<Live> {
        let (conn, driver) = tokio::time::timeout(self.connect_timeout, self.handshake())
            .await
            .map_err(|_| {
                RedisError::from(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "redis connection timed out",
                ))
            })??;
        let dead = Arc::new(AtomicBool::new(false));
        let flag = dead.clone();
        let task = tokio::spawn(async move {
            driver.await;
            flag.store(true, Ordering::Release);
        });
        Ok(Live {
            conn,
            dead,
            driver: task.abort_handle(),
        })
    }

    /// Opens the socket and sets the connection up (credentials, database), as the Redis
    /// client would, keeping the driver.
    async fn handshake(&self) -> RedisResult<(MultiplexedConnection, Driver)> {
        let info = self.client.get_connection_info();
        let settings = info.redis_settings();
        let config = AsyncConnectionConfig::new().set_response_timeout(Some(self.response_timeout));
        match info.addr() {
            ConnectionAddr::Tcp(host, port) => {
                let stream = tokio::net::TcpStream::connect((host.as_str(), *port)).await?;
                stream.set_nodelay(true)?;
                let (conn, driver) =
                    MultiplexedConnection::new_with_config(settings, stream, config).await?;
                Ok((conn, Box::pin(driver)))
            }
            #[cfg(unix)]
            ConnectionAddr::Unix(path) => {
                let stream = tokio::net::UnixStream::connect(path).await?;
                let (conn, driver) =
                    MultiplexedConnection::new_with_config(settings, stream, config).await?;
                Ok((conn, Box::pin(driver)))
            }
            _ => Err(RedisError::from(std::io::Error::other(
                "the redis adapter needs a redis:// (TCP) or unix socket address",
            ))),
        }
    }
}
