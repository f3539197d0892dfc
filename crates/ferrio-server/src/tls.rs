//! HTTPS: a [`Ferrio`] server (or a bare [`crate::engine::Engine`]) on TLS connections (rustls
//! through `tokio-rustls`), behind the `tls` feature. The connections are hyper's HTTP/1.1 ones,
//! with upgrades, serving the same requests as the `tower` service does; [`Ferrio::serve`]'s own
//! connections read plain TCP only. So an idle HTTPS connection (a waiting long poll, a
//! keep-alive gap) keeps hyper's read buffer and rustls's buffers, which a plain connection
//! under `serve` does not.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt as _;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;
use tracing::debug;

use crate::http::Body;
use crate::serve::{HEADER_READ_TIMEOUT, HEAD_SEPARATORS};
use crate::transport::{Encrypted, RemoteAddr};
use crate::Ferrio;

/// Time a client has to complete the TLS handshake before its connection is closed.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// hyper's smallest read buffer: a request head must fit in the buffer.
const MIN_READ_BUFFER: usize = 8192;

impl Ferrio {
    /// Serves HTTPS connections from `listener` with the certificate and settings of `tls`
    /// (other paths get 404), until the process ends (a failed accept is logged and retried).
    /// Needs the `tls` feature.
    ///
    /// Each connection has 10 s to complete its TLS handshake and 30 s to send a request's
    /// head, which is bounded as under [`Ferrio::serve`] (`max_http_header_size` plus the
    /// separators of up to 100 lines; 431 beyond); a connection that fails either is closed
    /// without disturbing the others. The connections speak HTTP/1.1 (with its WebSocket
    /// upgrades): the ALPN protocols of `tls` are replaced by `http/1.1`, so that a browser
    /// never picks HTTP/2. The requests carry the client's address
    /// ([`RemoteAddr`]) and the [`Encrypted`] mark, so `socket.handshake().secure()` is true
    /// and [`Cookie::secure`](crate::Cookie::secure) cookies go out as over any HTTPS.
    /// Browsers and socket.io-client connect with `https://` (and upgrade to `wss://`).
    ///
    /// ```no_run
    /// use std::sync::Arc;
    ///
    /// use ferrio_server::Ferrio;
    /// use tokio_rustls::rustls::pki_types::pem::PemObject as _;
    /// use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    /// use tokio_rustls::rustls::ServerConfig;
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let chain = CertificateDer::pem_file_iter("cert.pem")?.collect::<Result<Vec<_>, _>>()?;
    /// let key = PrivateKeyDer::from_pem_file("key.pem")?;
    /// let provider = tokio_rustls::rustls::crypto::ring::default_provider();
    /// let tls = ServerConfig::builder_with_provider(Arc::new(provider))
    ///     .with_safe_default_protocol_versions()?
    ///     .with_no_client_auth()
    ///     .with_single_cert(chain, key)?;
    /// let io = Ferrio::builder().build();
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:3443").await?;
    /// io.serve_tls(listener, Arc::new(tls)).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn serve_tls(
        self,
        listener: TcpListener,
        tls: Arc<ServerConfig>,
    ) -> std::io::Result<()> {
        self.serve_tls_with_shutdown(listener, tls, std::future::pending())
            .await
    }

    /// Serves as [`Ferrio::serve_tls`] until `shutdown` resolves, then shuts down as
    /// [`Ferrio::serve_with_shutdown`] does.
    pub async fn serve_tls_with_shutdown(
        self,
        listener: TcpListener,
        tls: Arc<ServerConfig>,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let io = self.clone();
        let max_head = self.endpoint.options.max_http_header_size;
        let served =
            serve_tls_own(listener, tls, move |req| io.handle(req), shutdown, max_head).await;
        self.close().await;
        served
    }
}

impl crate::engine::Engine {
    /// Serves HTTPS connections from `listener` with the certificate and settings of `tls`, as
    /// [`Ferrio::serve_tls`] does, until the process ends. Needs the `tls` feature.
    pub async fn serve_tls(
        self,
        listener: TcpListener,
        tls: Arc<ServerConfig>,
    ) -> std::io::Result<()> {
        let max_head = self.max_http_header_size();
        serve_tls_own(
            listener,
            tls,
            move |req| self.handle(req),
            std::future::pending(),
            max_head,
        )
        .await
    }
}

/// Accepts TLS connections from `listener` until `shutdown` resolves, answering every request
/// with `handler`; request heads bounded by `max_head` (hyper's read buffer).
async fn serve_tls_own<F, Fut>(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    handler: F,
    shutdown: impl Future<Output = ()>,
    max_head: usize,
) -> std::io::Result<()>
where
    F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    let mut tls = (*tls).clone();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(tls));
    let handler = Arc::new(handler);
    crate::serve::accept_loop(listener, shutdown, move |stream, addr| {
        serve_connection(handler.clone(), acceptor.clone(), stream, addr, max_head)
    })
    .await
}

/// One HTTPS connection: the TLS handshake, then HTTP/1.1 with upgrades until it ends.
async fn serve_connection<F, Fut>(
    handler: Arc<F>,
    acceptor: TlsAcceptor,
    stream: TcpStream,
    addr: SocketAddr,
    max_head: usize,
) where
    F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    let stream = match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            debug!(%addr, "TLS handshake failed: {e}");
            return;
        }
        Err(_) => {
            debug!(%addr, "TLS handshake timed out");
            return;
        }
    };
    let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        req.extensions_mut().insert(RemoteAddr(addr));
        req.extensions_mut().insert(Encrypted);
        handler(req).map(Ok::<_, Infallible>)
    });
    // (The head as `serve` bounds it: what `max_http_header_size` counts plus the separators.)
    let raw_head = max_head.saturating_add(HEAD_SEPARATORS);
    let served = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(raw_head.max(MIN_READ_BUFFER))
        .max_header_size(raw_head)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades()
        .await;
    if let Err(e) = served {
        debug!(%addr, "connection ended: {e}");
    }
}
