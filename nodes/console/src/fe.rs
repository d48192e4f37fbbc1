//! `codis-fe`'s server: the page, `GET /list` (the products' names, sorted), and every request
//! carrying `?forward=<product>` passed on to that product's dashboard as it came (method, path,
//! query, body), its answer passed back. The dashboard checks the secret; this server holds
//! none, so it can be put wherever operators reach it.
//!
//! The products are re-read lazily: `/list` refreshes them when the last read is older than
//! [`LIST_FRESH`], and a call for a product not known refreshes them at once (a product
//! created, or a dashboard moved, a moment ago).

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

use crate::products::ProductSource;

/// How long `/list` trusts the products it read (Codis: 5 s).
pub const LIST_FRESH: Duration = Duration::from_secs(5);
/// How long a forwarded call may take: a promotion or a rebalance answers when it is done.
pub const FORWARD_TIMEOUT: Duration = Duration::from_secs(120);

/// A refused or failed call, as JSON `{"error": "…"}` (the dashboard's shape, so the page shows
/// both alike).
struct FeError(StatusCode, String);

impl IntoResponse for FeError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

struct Known {
    dashboards: BTreeMap<String, String>,
    read_at: Option<Instant>,
}

struct Inner<E: Env> {
    env: E,
    source: ProductSource<E>,
    known: tokio::sync::Mutex<Known>,
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
    /// A server listing the products of `source`.
    pub fn new(env: E, source: ProductSource<E>) -> Fe<E> {
        Fe {
            inner: Arc::new(Inner {
                env,
                source,
                known: tokio::sync::Mutex::new(Known { dashboards: BTreeMap::new(), read_at: None }),
                clients: Mutex::new(BTreeMap::new()),
            }),
        }
    }

    /// Serves the page, `/list` and the forwarding on `listener`, for ever.
    pub async fn serve(&self, listener: E::Listener) {
        let service = TowerToHyperService::new(self.routes());
        net::http::serve(&self.inner.env, listener, service).await;
    }

    /// The routes (the page's, `/list`, and forwarding for everything else).
    pub fn routes(&self) -> axum::Router {
        axum::Router::new()
            .route("/list", get(|State(fe): State<Fe<E>>| async move { fe.list().await }))
            .merge(crate::assets::routes())
            .fallback(
                |State(fe): State<Fe<E>>, method: Method, uri: Uri, RawQuery(query): RawQuery, body: Bytes| async move {
                    fe.forward(method, uri, query, body).await
                },
            )
            .with_state(self.clone())
    }

    /// The products' dashboards, read again if older than `fresh`.
    async fn dashboards(&self, fresh: Duration) -> Result<BTreeMap<String, String>, FeError> {
        let mut known = self.inner.known.lock().await;
        if known.read_at.is_some_and(|at| at.elapsed() < fresh) {
            return Ok(known.dashboards.clone());
        }
        match self.inner.source.load().await {
            Ok(dashboards) => {
                known.dashboards = dashboards;
                known.read_at = Some(Instant::now());
                Ok(known.dashboards.clone())
            }
            Err(error) => {
                warn!(%error, "cannot list the products");
                Err(FeError(StatusCode::SERVICE_UNAVAILABLE, format!("cannot list the products: {error}")))
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
    query.split('&').find_map(|pair| pair.strip_prefix("forward=")).map(percent_decode).filter(|name| !name.is_empty())
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let hex = |at: usize| bytes.get(at).and_then(|digit| (*digit as char).to_digit(16));
        match (bytes[index], hex(index + 1), hex(index + 2)) {
            (b'%', Some(high), Some(low)) => {
                out.push((high * 16 + low) as u8);
                index += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                index += 1;
            }
            (byte, _, _) => {
                out.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_product_is_read_from_the_query() {
        assert_eq!(forward_target("forward=demo").as_deref(), Some("demo"));
        assert_eq!(forward_target("a=1&forward=my%2Dshop&b=2").as_deref(), Some("my-shop"));
        assert_eq!(forward_target("forward="), None);
        assert_eq!(forward_target("forwarded=x"), None);
        assert_eq!(percent_decode("100%"), "100%");
    }
}
