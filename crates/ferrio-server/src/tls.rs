//! HTTPS: a [`Ferrio`] server on TLS connections (rustls through `tokio-rustls`), behind the
//! `tls` feature. The connections are hyper's HTTP/1.1 ones, with upgrades, serving the same
//! requests as the `tower` service does; [`Ferrio::serve`]'s own connections read plain TCP
//! only.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt as _;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;
use tracing::debug;

use crate::transport::{Encrypted, RemoteAddr};
use crate::Ferrio;

/// Time a client has to complete the TLS handshake before its connection is closed.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Time a client has to send a request's headers (as [`Ferrio::serve`] gives it).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// hyper's smallest read buffer: a request head must fit in the buffer.
const MIN_READ_BUFFER: usize = 8192;

impl Ferrio {
    /// Serves HTTPS connections from `listener` with the certificate and settings of `tls`
    /// (other paths get 404). Runs until the listener fails. Needs the `tls` feature.
    ///
    /// Each connection has 10 s to complete its TLS handshake and 30 s to send a request's
    /// head, which may be `max_http_header_size` long; a connection that fails either is
    /// closed without disturbing the others. The requests carry the client's address
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
    /// let tls = ServerConfig::builder()
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
        let acceptor = TlsAcceptor::from(tls);
        let io = self.clone();
        let served = crate::serve::accept_loop(listener, shutdown, move |stream, addr| {
            serve_connection(io.clone(), acceptor.clone(), stream, addr)
        })
        .await;
        self.close().await;
        served
    }
}

/// One HTTPS connection: the TLS handshake, then HTTP/1.1 with upgrades until it ends.
async fn serve_connection(io: Ferrio, acceptor: TlsAcceptor, stream: TcpStream, addr: SocketAddr) {
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
    let max_head = io.endpoint.options.max_http_header_size;
    let service = hyper::service::service_fn(move |mut req| {
        req.extensions_mut().insert(RemoteAddr(addr));
        req.extensions_mut().insert(Encrypted);
        io.handle(req).map(Ok::<_, Infallible>)
    });
    let served = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(max_head.max(MIN_READ_BUFFER))
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades()
        .await;
    if let Err(e) = served {
        debug!(%addr, "connection ended: {e}");
    }
}
