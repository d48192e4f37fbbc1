//! An HTTP/1.1 client over [`Env`] streams, so the REST calls components make (the dashboard to
//! its proxies, the admin CLI to the dashboard, the etcd client to its gateway) run in the
//! simulator as they do in production, partitions and all.
//!
//! One [`HttpClient`] per peer address keeps one idle connection and reuses it; a request that
//! finds it busy or broken opens another. Every request has a deadline.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

use crate::Env;

pub use hyper::Method;
pub use hyper::body::Incoming;

/// The largest answer body read (a whole slot table is about 100 KiB).
pub const MAX_BODY: usize = 64 << 20;

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// No connection to the peer.
    #[error("cannot connect to {addr}: {reason}")]
    Connect {
        /// The peer.
        addr: String,
        /// Why.
        reason: String,
    },
    /// No full answer before the deadline.
    #[error("{addr} did not answer within {} ms", timeout.as_millis())]
    Timeout {
        /// The peer.
        addr: String,
        /// The deadline.
        timeout: Duration,
    },
    /// The connection broke or the answer was not HTTP.
    #[error("HTTP exchange with {addr} failed: {reason}")]
    Exchange {
        /// The peer.
        addr: String,
        /// Why.
        reason: String,
    },
}

/// An answer.
#[derive(Clone, Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The whole body.
    pub body: Bytes,
}

impl Response {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as text (lossy), for error messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A client of one peer.
#[derive(Clone, Debug)]
pub struct HttpClient<E> {
    env: E,
    addr: String,
    timeout: Duration,
    idle: Arc<Mutex<Option<SendRequest<Full<Bytes>>>>>,
}

impl<E: Env> HttpClient<E> {
    /// A client of `addr` (`host:port`) whose requests give up after `timeout`.
    pub fn new(env: E, addr: impl Into<String>, timeout: Duration) -> HttpClient<E> {
        HttpClient { env, addr: addr.into(), timeout, idle: Arc::new(Mutex::new(None)) }
    }

    /// The peer.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Each request's deadline.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends `method path` with `body` (JSON if any) and reads the whole answer.
    pub async fn request(&self, method: Method, path: &str, body: Option<Vec<u8>>) -> Result<Response, HttpError> {
        let exchange = async {
            let mut sender = self.sender().await?;
            let response =
                sender.send_request(self.build(method, path, body)?).await.map_err(|error| self.broken(error))?;
            let status = response.status().as_u16();
            // A peer cannot make us hold more than this in memory.
            let body = http_body_util::Limited::new(response.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|error| self.broken(error))?
                .to_bytes();
            // Only a connection that finished its exchange cleanly is worth keeping.
            self.keep(sender);
            Ok(Response { status, body })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| HttpError::Timeout { addr: self.addr.clone(), timeout: self.timeout })?
    }

    /// Sends `method path` with `body` on a connection of its own and returns the status and the
    /// body as it streams in (a watch, a long poll): only the connection and the headers are
    /// bounded by the deadline. Dropping the body closes the connection.
    pub async fn stream(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(u16, Incoming), HttpError> {
        let exchange = async {
            let mut sender = self.connect().await?;
            let response =
                sender.send_request(self.build(method, path, body)?).await.map_err(|error| self.broken(error))?;
            Ok((response.status().as_u16(), response.into_body()))
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| HttpError::Timeout { addr: self.addr.clone(), timeout: self.timeout })?
    }

    fn build(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<hyper::Request<Full<Bytes>>, HttpError> {
        let mut request = hyper::Request::builder().method(method).uri(path).header(hyper::header::HOST, &self.addr);
        if body.is_some() {
            request = request.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|error| HttpError::Exchange { addr: self.addr.clone(), reason: error.to_string() })
    }

    fn broken(&self, error: impl std::fmt::Display) -> HttpError {
        HttpError::Exchange { addr: self.addr.clone(), reason: error.to_string() }
    }

    /// The idle connection if it is still usable, else a new one.
    async fn sender(&self) -> Result<SendRequest<Full<Bytes>>, HttpError> {
        let idle = self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
        if let Some(mut sender) = idle
            && usable(&mut sender).await
        {
            return Ok(sender);
        }
        self.connect().await
    }

    fn keep(&self, sender: SendRequest<Full<Bytes>>) {
        *self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(sender);
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, HttpError> {
        let connect_error = |reason: String| HttpError::Connect { addr: self.addr.clone(), reason };
        let stream =
            self.env.connect(&self.addr, self.timeout).await.map_err(|error| connect_error(error.to_string()))?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|error| connect_error(error.to_string()))?;
        self.env.spawn(async move {
            let _ = connection.await;
        });
        Ok(sender)
    }
}

/// Whether a kept connection can take another request now (not closed by the peer meanwhile).
async fn usable(sender: &mut SendRequest<Full<Bytes>>) -> bool {
    !sender.is_closed() && sender.ready().await.is_ok()
}

/// Serves HTTP/1.1 on `listener` with `service` (an axum router wrapped in
/// `hyper_util::service::TowerToHyperService`, say), one task per connection spawned through the
/// environment, until the returned future is dropped.
pub async fn serve<E, S, B>(env: &E, listener: E::Listener, service: S)
where
    E: Env,
    S: hyper::service::Service<hyper::Request<Incoming>, Response = hyper::Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    use crate::Listener as _;
    loop {
        match listener.accept().await {
            Ok((stream, _peer)) => {
                let service = service.clone();
                env.spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            // Out of descriptors, say: pause rather than spin.
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}
