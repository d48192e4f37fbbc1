//! `codis-fe`'s server: the page, `GET /list` (the products' names, sorted), and every request
//! carrying `?forward=<product>` passed on to that product's dashboard as it came (method, path,
//! query, body), its answer passed back. The dashboard checks the secret; this server holds
//! none, so it can be put wherever operators reach it.
//!
//! The products are re-read lazily: `/list` refreshes them when the last read is older than
//! [`LIST_FRESH`], and a call for a product not known refreshes them at once (a product
//! created, or a dashboard moved, a moment ago), but never more than once per [`RETRY_AFTER`].
//! One read at a time; while one runs, or when it fails, calls are served from the last list
//! read, so a slow or failing coordinator does not take the console down with it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper_util::service::TowerToHyperService;
use net::Env;
use net::http::HttpClient;
use serde_json::json;
use tokio::time::Instant;
use tracing::warn;

use crate::hosts::AllowedHosts;
use crate::products::ProductSource;

/// How long `/list` trusts the products it read (Codis: 5 s).
pub const LIST_FRESH: Duration = Duration::from_secs(5);
/// The least time between two reads of the products.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);
/// How long a forwarded call may take: a promotion answers when it is done (the proxies' lease,
/// the catch-up, the switch).
pub const FORWARD_TIMEOUT: Duration = Duration::from_secs(180);

/// A refused or failed call, as JSON `{"error": "…"}` (the dashboard's shape, so the page shows
/// both alike).
struct FeError(StatusCode, String);

impl IntoResponse for FeError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

#[derive(Default)]
struct Known {
    dashboards: BTreeMap<String, String>,
    /// When the list was last read successfully.
    read_at: Option<Instant>,
    /// When a read was last tried.
    tried_at: Option<Instant>,
    /// Why the last read failed.
    failure: String,
}

struct Inner<E: Env> {
    env: E,
    source: ProductSource<E>,
    allowed: AllowedHosts,
    known: Mutex<Known>,
    /// Held while the products are read (one read at a time).
    reading: tokio::sync::Mutex<()>,
    /// One client per dashboard, keeping its connection.
    clients: Mutex<BTreeMap<String, HttpClient<E>>>,
}

/// The `codis-fe` server. Cheap to clone.
pub struct Fe<E: Env> {
    inner: Arc<Inner<E>>,
}

impl<E: Env> Clone for Fe<E> {
    fn clone(&self) -> Self {
        Fe { inner: self.inner.clone() }
    }
}

impl<E: Env> Fe<E> {
    /// A server listing the products of `source`, answering browsers that call it by an
    /// address or an `allowed` name.
    pub fn new(env: E, source: ProductSource<E>, allowed: AllowedHosts) -> Fe<E> {
        Fe {
            inner: Arc::new(Inner {
                env,
                source,
                allowed,
                known: Mutex::new(Known::default()),
                reading: tokio::sync::Mutex::new(()),
                clients: Mutex::new(BTreeMap::new()),
            }),
        }
    }

    /// Serves the page, `/list` and the forwarding on `listener`, for ever.
    pub async fn serve(&self, listener: E::Listener) {
        let service = TowerToHyperService::new(self.routes());
        net::http::serve(&self.inner.env, listener, service).await;
    }

    /// The routes (the page's, `/list`, and forwarding for everything else), behind the host
    /// guard.
    pub fn routes(&self) -> axum::Router {
        let routes = axum::Router::new()
            .route("/list", get(|State(fe): State<Fe<E>>| async move { fe.list().await }))
            .merge(crate::assets::routes())
            .fallback(
                |State(fe): State<Fe<E>>, method: Method, uri: Uri, RawQuery(query): RawQuery, body: Bytes| async move {
                    fe.forward(method, uri, query, body).await
                },
            )
            .with_state(self.clone());
        crate::hosts::guarded(routes, self.inner.allowed.clone())
    }

    fn known(&self) -> std::sync::MutexGuard<'_, Known> {
        self.inner.known.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The products' dashboards, read again if older than `fresh` (and not tried within
    /// [`RETRY_AFTER`]); the last list read while another read runs or when this one fails.
    async fn dashboards(&self, fresh: Duration) -> Result<BTreeMap<String, String>, FeError> {
        let cached = |known: &Known| known.read_at.map(|_| known.dashboards.clone());
        let _reading = match self.inner.reading.try_lock() {
            Ok(reading) => reading,
            Err(_) => {
                // Another read runs: its list will do, unless a fresh one is asked for (a product
                // not known yet), which waits for it.
                let last = cached(&self.known());
                match last {
                    Some(dashboards) if !fresh.is_zero() => return Ok(dashboards),
                    _ => self.inner.reading.lock().await,
                }
            }
        };
        {
            let known = self.known();
            let recent = |at: Option<Instant>, within: Duration| at.is_some_and(|at| at.elapsed() < within);
            if recent(known.read_at, fresh) {
                return Ok(known.dashboards.clone());
            }
            // Tried a moment ago (perhaps the read just waited for): its outcome stands.
            if recent(known.tried_at, RETRY_AFTER) {
                return cached(&known).ok_or_else(|| FeError(StatusCode::SERVICE_UNAVAILABLE, known.failure.clone()));
            }
        }
        let loaded = self.inner.source.load().await;
        let mut known = self.known();
        known.tried_at = Some(Instant::now());
        match loaded {
            Ok(dashboards) => {
                known.dashboards = dashboards;
                known.read_at = known.tried_at;
                Ok(known.dashboards.clone())
            }
            Err(error) => {
                warn!(%error, "cannot list the products");
                known.failure = format!("cannot list the products: {error}");
                cached(&known).ok_or_else(|| FeError(StatusCode::SERVICE_UNAVAILABLE, known.failure.clone()))
            }
        }
    }

    async fn list(&self) -> Result<Json<Vec<String>>, FeError> {
        Ok(Json(self.dashboards(LIST_FRESH).await?.into_keys().collect()))
    }

    async fn forward(&self, method: Method, uri: Uri, query: Option<String>, body: Bytes) -> Result<Response, FeError> {
        let Some(product) = query.as_deref().and_then(forward_target) else {
            return Err(FeError(StatusCode::NOT_FOUND, format!("no such path: {}", uri.path())));
        };
        let dashboard = match self.dashboards(LIST_FRESH).await?.get(&product) {
            Some(dashboard) => dashboard.clone(),
            // Perhaps created a moment ago: look again before saying no.
            None => self.dashboards(Duration::ZERO).await?.get(&product).cloned().ok_or_else(|| {
                FeError(StatusCode::NOT_FOUND, format!("no product named {product:?} in the coordinator"))
            })?,
        };
        let client = self.client(&dashboard);
        let path = uri.path_and_query().map_or("/", |path| path.as_str());
        let body = (!body.is_empty()).then(|| body.to_vec());
        let answer = client.request(method, path, body).await.map_err(|error| {
            FeError(StatusCode::BAD_GATEWAY, format!("the dashboard of product {product} does not answer: {error}"))
        })?;
        let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY);
        Ok((status, [(header::CONTENT_TYPE, "application/json")], answer.body).into_response())
    }

    fn client(&self, dashboard: &str) -> HttpClient<E> {
        let mut clients = self.inner.clients.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        clients
            .entry(dashboard.to_string())
            .or_insert_with(|| HttpClient::new(self.inner.env.clone(), dashboard, FORWARD_TIMEOUT))
            .clone()
    }
}

/// The product named by `forward=` in a query string (percent-decoded).
fn forward_target(query: &str) -> Option<String> {
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("forward="))
        .map(|name| percent_encoding::percent_decode_str(name).decode_utf8_lossy().into_owned())
        .filter(|name| !name.is_empty())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::products::ReadList;

    /// A list file that reads once, then fails.
    fn flaky_list(reads: Arc<AtomicUsize>) -> ProductSource<net::TokioEnv> {
        let read: ReadList = Arc::new(move || {
            let first = reads.fetch_add(1, Ordering::SeqCst) == 0;
            Box::pin(async move {
                if first {
                    Ok(br#"[{"name": "shop", "dashboard": "10.0.0.1:18080"}]"#.to_vec())
                } else {
                    Err("gone".into())
                }
            })
        });
        ProductSource::ListFile { path: "list.json".into(), read }
    }

    #[tokio::test(start_paused = true)]
    async fn the_last_list_outlives_a_failing_source_and_reads_are_spaced() {
        let reads = Arc::new(AtomicUsize::new(0));
        let fe = Fe::new(net::TokioEnv::new().expect("env"), flaky_list(reads.clone()), AllowedHosts::default());
        let names = |list: Result<BTreeMap<String, String>, FeError>| {
            list.ok().map(|list| list.into_keys().collect::<Vec<_>>())
        };
        assert_eq!(names(fe.dashboards(Duration::ZERO).await), Some(vec!["shop".to_string()]));
        // An unknown product asked for again and again reads the source at most once a second.
        assert_eq!(names(fe.dashboards(Duration::ZERO).await), Some(vec!["shop".to_string()]));
        assert_eq!(reads.load(Ordering::SeqCst), 1);
        tokio::time::advance(RETRY_AFTER).await;
        // The source fails now: the last list still serves.
        assert_eq!(names(fe.dashboards(Duration::ZERO).await), Some(vec!["shop".to_string()]));
        assert_eq!(reads.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_source_that_never_answered_is_not_read_again_at_once() {
        let reads = Arc::new(AtomicUsize::new(0));
        let counted = reads.clone();
        let read: ReadList = Arc::new(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            Box::pin(async { Err("no such file".to_string()) })
        });
        let source = ProductSource::ListFile { path: "list.json".into(), read };
        let fe = Fe::new(net::TokioEnv::new().expect("env"), source, AllowedHosts::default());
        for _ in 0..3 {
            let refused = fe.dashboards(Duration::ZERO).await.expect_err("no list");
            assert_eq!(refused.0, StatusCode::SERVICE_UNAVAILABLE);
            assert!(refused.1.contains("no such file"), "{}", refused.1);
        }
        assert_eq!(reads.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn the_product_is_read_from_the_query() {
        assert_eq!(forward_target("forward=demo").as_deref(), Some("demo"));
        assert_eq!(forward_target("a=1&forward=my%2Dshop&b=2").as_deref(), Some("my-shop"));
        assert_eq!(forward_target("forward="), None);
        assert_eq!(forward_target("forwarded=x"), None);
        assert_eq!(forward_target("forward=100%").as_deref(), Some("100%"), "a lone % is kept");
    }
}
