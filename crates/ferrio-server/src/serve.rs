//! Serving: a standalone HTTP/1.1 server ([`serve`], also what [`Ferrio::serve`] and
//! [`crate::engine::Engine::serve`] run: Ferrio's own connections, see [`crate::conn`], which
//! hold no buffer while a connection waits), and the `tower` service and layer that mount a
//! [`Ferrio`] server in another stack (hyper's, axum's).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::FutureExt as _;
use http::{Request, Response};
use http_body::Body as HttpBody;
use http_body_util::Either;
use tokio::net::{TcpListener, TcpStream};
use tracing::warn;

use crate::conn::{Limits, RequestBody};
use crate::http::Body;
use crate::{BoxFuture, Ferrio};

/// Time a client has to send a request's headers before its connection is closed.
pub(crate) const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// What a request head may hold on the wire beyond what `max_http_header_size` counts (the
/// request target, header names and values): the method, the version, and the `": "` and line
/// ends of up to 100 header lines (more lines are refused).
pub(crate) const HEAD_SEPARATORS: usize = 512;

/// Serves HTTP/1.1 (with upgrades, for WebSocket) on `listener`, one task per connection,
/// answering every request with `handler`. Runs until the process ends; errors on one
/// connection never stop the others. The client's address is put in the request's extensions
/// as [`RemoteAddr`](crate::RemoteAddr).
///
/// The connections are Ferrio's own (as for [`Ferrio::serve`]): an idle one, a waiting long
/// poll included, holds no buffer; keep-alive, pipelining, chunked bodies and
/// `Expect: 100-continue` work as usual, and the body ([`RequestBody`]) is read from the
/// connection as the handler asks for it. A client has 30 s to send a request's head, which
/// may be at most 16 KiB as `max_http_header_size` counts it by default (16.5 KiB on the wire)
/// and 100 lines; a longer one is answered `431 Request Header Fields Too Large`, a malformed
/// one `400 Bad Request`, and its connection closed before `handler` sees it.
/// [`Ferrio::serve`] and [`crate::engine::Engine::serve`] apply their server's
/// `max_http_header_size` instead. To serve through hyper (or axum), use the `tower` service
/// that [`Ferrio`] implements, or [`FerrioLayer`].
///
/// ```no_run
/// use ferrio_server::{engine::Engine, serve, Ferrio};
///
/// # async fn run() -> std::io::Result<()> {
/// // Two endpoints on one port.
/// let io = Ferrio::builder().build();
/// let engine = Engine::builder().build();
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// serve(listener, move |req| {
///     let route = if engine.matches(req.uri().path()) {
///         futures_util::future::Either::Left(engine.handle(req))
///     } else {
///         futures_util::future::Either::Right(io.handle(req))
///     };
///     route
/// })
/// .await
/// # }
/// ```
pub async fn serve<F, Fut>(listener: TcpListener, handler: F) -> std::io::Result<()>
where
    F: Fn(Request<RequestBody>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    serve_with_shutdown(listener, handler, std::future::pending()).await
}

/// Like [`serve`], until `shutdown` resolves: then the listener is closed (new connections are
/// refused) and this returns; connections already open are served until they end. See
/// [`Ferrio::serve_with_shutdown`], which also closes the Socket.IO sessions.
pub async fn serve_with_shutdown<F, Fut, S>(
    listener: TcpListener,
    handler: F,
    shutdown: S,
) -> std::io::Result<()>
where
    F: Fn(Request<RequestBody>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
    S: Future<Output = ()>,
{
    serve_own(
        listener,
        handler,
        shutdown,
        crate::config::DEFAULT_MAX_HTTP_HEADER_SIZE,
    )
    .await
}

/// [`serve_with_shutdown`] with request heads bounded by `max_header_size` as
/// `max_http_header_size` counts them (plus their separators), on Ferrio's own HTTP/1.1
/// connections (see [`crate::conn`]): what [`Ferrio::serve`] and
/// [`crate::engine::Engine::serve`] use.
pub(crate) async fn serve_own<F, Fut, S>(
    listener: TcpListener,
    handler: F,
    shutdown: S,
    max_header_size: usize,
) -> std::io::Result<()>
where
    F: Fn(Request<RequestBody>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
    S: Future<Output = ()>,
{
    let limits = Limits {
        max_head: max_header_size.saturating_add(HEAD_SEPARATORS),
        header_read_timeout: HEADER_READ_TIMEOUT,
    };
    let handler = std::sync::Arc::new(handler);
    accept_loop(listener, shutdown, move |stream, addr| {
        let handler = handler.clone();
        async move { crate::conn::serve_connection(stream, addr, &*handler, limits).await }
    })
    .await
}

/// Accepts connections from `listener` until `shutdown` resolves, serving each with `serve`
/// in a task of its own.
pub(crate) async fn accept_loop<S, C, CFut>(
    listener: TcpListener,
    shutdown: S,
    serve: C,
) -> std::io::Result<()>
where
    S: Future<Output = ()>,
    C: Fn(TcpStream, SocketAddr) -> CFut,
    CFut: Future<Output = ()> + Send + 'static,
{
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => return Ok(()),
            accepted = listener.accept() => accepted,
        };
        let (stream, addr) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: wait a little rather than spin.
                warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(serve(stream, addr));
    }
}

impl<B> tower_service::Service<Request<B>> for Ferrio
where
    B: HttpBody + Send + 'static,
    B::Data: Send,
    B::Error: std::fmt::Display,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        // (A combinator: an async block awaiting the future would hold it twice.)
        Box::pin(self.handle(req).map(Ok))
    }
}

/// A `tower` layer that serves the requests under the server's path and passes every other
/// request to the inner service (an axum router, say). WebSocket upgrades go through it too.
///
/// ```text
/// let io = Ferrio::builder().build();
/// let app = axum::Router::new()
///     .route("/", get(index))
///     .layer(FerrioLayer::new(io.clone()));   // or .fallback_service(io.clone())
/// axum::serve(listener, app).await?;
/// ```
#[derive(Debug, Clone)]
pub struct FerrioLayer {
    io: Ferrio,
}

impl FerrioLayer {
    /// A layer in front of `io`.
    pub fn new(io: Ferrio) -> FerrioLayer {
        FerrioLayer { io }
    }
}

impl<S> tower_layer::Layer<S> for FerrioLayer {
    type Service = FerrioService<S>;

    fn layer(&self, inner: S) -> FerrioService<S> {
        FerrioService {
            io: self.io.clone(),
            inner,
        }
    }
}

/// The service made by [`FerrioLayer`].
#[derive(Debug, Clone)]
pub struct FerrioService<S> {
    io: Ferrio,
    inner: S,
}

impl<S, B, ResBody> tower_service::Service<Request<B>> for FerrioService<S>
where
    S: tower_service::Service<Request<B>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: HttpBody + Send + 'static,
    B::Data: Send,
    B::Error: std::fmt::Display,
{
    type Response = Response<Either<Body, ResBody>>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        if self.io.matches(req.uri().path()) {
            Box::pin(
                self.io
                    .handle(req)
                    .map(|response| Ok(response.map(Either::Left))),
            )
        } else {
            // The clone that was made ready is the one called (tower's usual dance).
            let clone = self.inner.clone();
            let mut inner = std::mem::replace(&mut self.inner, clone);
            Box::pin(async move { Ok(inner.call(req).await?.map(Either::Right)) })
        }
    }
}
