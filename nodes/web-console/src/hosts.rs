//! Which names a browser may call this server by: a guard against DNS rebinding.
//!
//! A web page on some other site can point its own name at 127.0.0.1 (or any address of a
//! private network) and then call it as if it were its own: the browser sees one origin. With
//! the default empty product password the REST secret is computable, so such a page could read
//! and change a cluster. The browser still names the attacker's host in the `Host` header, so a
//! request from a browser is served only when it names this server by an IP address,
//! `localhost`, or a name on the allow-list (the server's own announced name, plus what the
//! operator adds). A browser is known by what page scripts cannot take away: a `User-Agent`
//! starting `Mozilla/` (every browser's), or an `Origin` or `Sec-Fetch-Site` header (the latter
//! is sent only to HTTPS and localhost, so it alone would not do). Tools that are not browsers
//! (`codis-admin`, proxies renewing leases, curl) are not affected whatever name they use.

use std::net::Ipv4Addr;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderName, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// A header browsers add to requests to trustworthy origins (HTTPS, localhost).
const SEC_FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");

/// Host names (besides IP addresses and `localhost`) browsers may use.
#[derive(Clone, Debug, Default)]
pub struct AllowedHosts {
    names: Arc<Vec<String>>,
}

impl AllowedHosts {
    /// These names (case does not matter; a port, if given, is ignored; empty ones are skipped).
    pub fn new<S: AsRef<str>>(names: impl IntoIterator<Item = S>) -> AllowedHosts {
        let names = names
            .into_iter()
            .map(|name| host_of(name.as_ref()).to_ascii_lowercase())
            .filter(|name| !name.is_empty())
            .collect();
        AllowedHosts { names: Arc::new(names) }
    }

    /// Whether a `Host` header value names this server acceptably.
    pub fn allows(&self, host_header: &str) -> bool {
        let host = host_of(host_header).to_ascii_lowercase();
        host.starts_with('[')
            || host.parse::<Ipv4Addr>().is_ok()
            || host == "localhost"
            || host.ends_with(".localhost")
            || self.names.contains(&host)
    }
}

/// `name` from `name:port`, `[v6]` from `[v6]:port`; a fully qualified name's final dot dropped.
fn host_of(value: &str) -> &str {
    let value = value.trim();
    if value.starts_with('[') {
        return value.split_inclusive(']').next().unwrap_or(value);
    }
    value.rsplit_once(':').map_or(value, |(host, _)| host).trim_end_matches('.')
}

/// Whether a request comes from a web browser.
fn from_browser(headers: &axum::http::HeaderMap) -> bool {
    headers.contains_key(SEC_FETCH_SITE)
        || headers.contains_key(header::ORIGIN)
        || headers
            .get(header::USER_AGENT)
            .and_then(|agent| agent.to_str().ok())
            .is_some_and(|agent| agent.starts_with("Mozilla/"))
}

/// Axum middleware: refuses a browser's request that names this server by a name not allowed.
pub async fn guard(State(allowed): State<AllowedHosts>, request: Request, next: Next) -> Response {
    let host = request.headers().get(header::HOST).and_then(|host| host.to_str().ok()).unwrap_or_default();
    if from_browser(request.headers()) && !allowed.allows(host) {
        let error = format!(
            "this server does not answer browsers that call it {host:?}: use its IP address, or add the \
             name to the allowed hosts (codis-fe --allow-host, the dashboard's console_allowed_hosts); \
             this guards against DNS rebinding"
        );
        // Not 403, which the page takes for a wrong password.
        return (StatusCode::MISDIRECTED_REQUEST, Json(json!({ "error": error }))).into_response();
    }
    next.run(request).await
}

/// `router` with the guard in front of every route.
pub fn guarded(router: axum::Router, allowed: AllowedHosts) -> axum::Router {
    router.layer(axum::middleware::from_fn_with_state(allowed, guard))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_localhost_and_listed_names_are_allowed() {
        let allowed = AllowedHosts::new(["Console.Example:9090", ""]);
        for host in [
            "127.0.0.1:9090",
            "10.1.2.3",
            "[::1]:18080",
            "localhost:9090",
            "app.localhost",
            "console.example",
            "localhost.",
        ] {
            assert!(allowed.allows(host), "{host}");
        }
        for host in ["attacker.example:9090", "console.example.attacker.example", "", "1.2.3.4.example"] {
            assert!(!allowed.allows(host), "{host}");
        }
    }
}
