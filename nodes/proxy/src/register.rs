//! `--dashboard`: a proxy that knows its dashboard asks it, at start, to take the proxy online
//! (Codis' `online-proxy`): the dashboard then reads the proxy's model, fills its slots and
//! starts it through the admin API.

use std::time::Duration;

use net::Env;
use tracing::{info, warn};

/// Tries before giving up, and the pause between them (Codis' 10 tries, 3 s apart).
const TRIES: u32 = 10;
const PAUSE: Duration = Duration::from_secs(3);
/// How long one try may take.
const TRY_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the dashboard did not take the proxy online.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// The dashboard could not be reached, or did not answer in time.
    #[error("dashboard {addr} unreachable: {reason}")]
    Unreachable {
        /// The dashboard's address.
        addr: String,
        /// What went wrong.
        reason: String,
    },
    /// The dashboard answered with an error.
    #[error("dashboard {addr} refused: HTTP {status}: {body}")]
    Refused {
        /// The dashboard's address.
        addr: String,
        /// The HTTP status.
        status: u16,
        /// Its body (a JSON error).
        body: String,
    },
}

pub use model::auth::dashboard_xauth;

/// Asks the dashboard at `dashboard` to take the proxy whose admin API is at `admin_addr`
/// online, trying up to ten times, three seconds apart.
pub async fn online<E: Env>(
    env: &E,
    dashboard: &str,
    product: &str,
    product_auth: &str,
    admin_addr: &str,
) -> Result<(), RegisterError> {
    let path = format!("/api/topom/proxy/online/{}/{admin_addr}", dashboard_xauth(product, product_auth));
    let mut last = None;
    for attempt in 1..=TRIES {
        match tokio::time::timeout(TRY_TIMEOUT, put(env, dashboard, &path)).await {
            Ok(Ok(())) => {
                info!(%dashboard, "online at the dashboard");
                return Ok(());
            }
            // A refusal is an answer: trying again would get the same one.
            Ok(Err(error @ RegisterError::Refused { .. })) => return Err(error),
            Ok(Err(error)) => last = Some(error),
            Err(_) => {
                last = Some(RegisterError::Unreachable { addr: dashboard.into(), reason: "timed out".into() });
            }
        }
        if let Some(error) = &last {
            warn!(%error, attempt, "could not go online at the dashboard");
        }
        if attempt < TRIES {
            tokio::time::sleep(PAUSE).await;
        }
    }
    Err(last.unwrap_or_else(|| RegisterError::Unreachable { addr: dashboard.into(), reason: "no try".into() }))
}

/// One `PUT path` to `addr`, with an empty body.
async fn put<E: Env>(env: &E, addr: &str, path: &str) -> Result<(), RegisterError> {
    let client = net::http::HttpClient::new(env.clone(), addr, TRY_TIMEOUT);
    let response = client
        .request(net::http::Method::PUT, path, None)
        .await
        .map_err(|error| RegisterError::Unreachable { addr: addr.to_string(), reason: error.to_string() })?;
    if response.is_success() {
        Ok(())
    } else {
        Err(RegisterError::Refused { addr: addr.to_string(), status: response.status, body: response.text() })
    }
}
