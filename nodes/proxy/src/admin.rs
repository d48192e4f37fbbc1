//! The proxy's admin HTTP API, on Codis' paths with Codis' JSON shapes, and Prometheus metrics.
//!
//! Reads under `/proxy/…` are open, as in Codis; everything under `/api/proxy/…` that changes
//! or reveals state takes the `xauth` secret in its path. Errors are JSON `{"error": "…"}` with a
//! 4xx status (Codis answers 800 with a Go stack). The server runs on the environment's
//! listener, one task per connection spawned through the environment, so the simulator runs it
//! too.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use hyper_util::service::TowerToHyperService;
use net::Env;
use serde::Serialize;

use crate::backend::Health;
use crate::proxy::Shared;

/// The proxy's identity, as the dashboard knows it.
#[derive(Clone, Debug)]
pub struct Identity {
    /// Codis' `models.Proxy`.
    pub model: model::Proxy,
    /// The secret the `/api/proxy/…` paths take.
    pub xauth: String,
}

pub(crate) use model::auth::sha256_hex32;

impl Identity {
    /// The identity of a proxy of `product` listening on `proxy_addr` and `admin_addr` on
    /// `hostname`. The token depends on those alone, so a proxy restarted on the same host and
    /// ports keeps it (Codis hashes the host's MAC addresses instead of its name). The secret is
    /// Codis' formula over the product's password and the token: with `product_auth` set it
    /// cannot be derived from the product name.
    pub fn new(product: &str, product_auth: &str, proxy_addr: &str, admin_addr: &str, hostname: &str) -> Identity {
        let token = sha256_hex32(&format!("Codis-Token@{hostname}-{product}-{proxy_addr}-{admin_addr}"));
        let xauth = xauth(product, product_auth, &token);
        let model = model::Proxy {
            token,
            admin_addr: admin_addr.to_string(),
            proto_type: "tcp4".into(),
            proxy_addr: proxy_addr.to_string(),
            product_name: product.to_string(),
            hostname: hostname.to_string(),
            ..model::Proxy::default()
        };
        Identity { model, xauth }
    }
}

pub use model::auth::proxy_xauth as xauth;

struct AdminState<E> {
    shared: Arc<Shared<E>>,
    identity: Identity,
    log_level: Option<LogLevel>,
}

/// Changes the process's log level (`error`, `warn`, `info`, `debug`, `trace`, any case), for
/// `PUT /api/proxy/loglevel/…`: the binary owns the logger, so it hands the admin API this.
pub type LogLevel = Arc<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

type AppState<E> = Arc<AdminState<E>>;

/// A refused call: a 4xx status and a JSON `{"error": …}`.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

fn refuse(status: StatusCode, error: impl Into<String>) -> ApiError {
    ApiError(status, error.into())
}

fn check<E>(state: &AdminState<E>, xauth: &str) -> Result<(), ApiError> {
    if xauth == state.identity.xauth { Ok(()) } else { Err(refuse(StatusCode::FORBIDDEN, "invalid xauth")) }
}

/// `/proxy/stats`: Codis' shape, the fields we track.
#[derive(Serialize)]
struct StatsJson {
    online: bool,
    closed: bool,
    /// Refusing clients for want of a lease from the dashboard.
    fenced: bool,
    /// Reads go to masters only (`backend_primary_only`).
    primary_only: bool,
    ops: OpsJson,
    sessions: SessionsJson,
    backends: Vec<BackendJson>,
}

#[derive(Serialize)]
struct OpsJson {
    total: u64,
    fails: u64,
    qps: u64,
    /// Per command (Codis' `cmd`), when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    cmd: Option<Vec<CommandJson>>,
}

/// One command's counters, as Codis' `OpStats`.
#[derive(Serialize)]
struct CommandJson {
    opstr: String,
    calls: u64,
    usecs: u64,
    usecs_percall: u64,
    fails: u64,
}

/// A backend's health (beyond Codis, which shows none).
#[derive(Serialize)]
struct BackendJson {
    addr: String,
    health: &'static str,
    /// How long it has been down or silent while owing replies, in ms (0: fine): the
    /// dashboard's failover waits for a quorum of proxies to see a master so for `down_after`.
    trouble_ms: u64,
}

#[derive(Serialize)]
struct SessionsJson {
    total: u64,
    alive: u64,
}

/// Codis' stats flag asking for per-command counters.
const STATS_CMD: u32 = 1;

fn stats<E: Env>(shared: &Shared<E>, flags: u32) -> StatsJson {
    let stats = &shared.stats;
    let cmd = (flags & STATS_CMD != 0).then(|| {
        stats
            .commands()
            .into_iter()
            .map(|(opstr, command)| CommandJson {
                opstr,
                calls: command.calls,
                usecs: command.usecs,
                usecs_percall: command.usecs.checked_div(command.calls).unwrap_or(0),
                fails: command.fails,
            })
            .collect()
    });
    StatsJson {
        online: shared.online.load(Ordering::Acquire),
        closed: *shared.closing.borrow(),
        fenced: shared.lease.is_fenced(),
        primary_only: shared.router.replica_pool().is_none(),
        ops: OpsJson {
            total: stats.ops_total.load(Ordering::Relaxed),
            fails: stats.ops_fails.load(Ordering::Relaxed),
            qps: stats.qps.load(Ordering::Relaxed),
            cmd,
        },
        sessions: SessionsJson {
            total: stats.sessions_total.load(Ordering::Relaxed),
            alive: shared.sessions_alive() as u64,
        },
        backends: shared
            .router
            .pool()
            .health()
            .into_iter()
            .chain(shared.router.replica_pool().map(|pool| pool.health()).unwrap_or_default())
            .map(|(addr, health, trouble)| BackendJson {
                addr,
                health: health.as_str(),
                trouble_ms: u64::try_from(trouble.as_millis()).unwrap_or(u64::MAX),
            })
            .collect(),
    }
}

fn slots<E: Env>(shared: &Shared<E>) -> Vec<model::Slot> {
    shared.router.table().iter().map(|route| route.slot.clone()).collect()
}

/// The routes.
fn routes<E: Env>(state: AppState<E>) -> axum::Router {
    axum::Router::new()
        .route("/", get(|| async { axum::response::Redirect::temporary("/proxy") }))
        .route(
            "/proxy",
            get(|State(state): State<AppState<E>>| async move {
                Json(serde_json::json!({
                    "version": env!("CARGO_PKG_VERSION"),
                    "model": state.identity.model,
                    "stats": stats(&state.shared, STATS_CMD),
                    "slots": slots(&state.shared),
                }))
            }),
        )
        .route(
            "/proxy/model",
            get(|State(state): State<AppState<E>>| async move { Json(state.identity.model.clone()) }),
        )
        .route(
            "/api/proxy/model",
            get(|State(state): State<AppState<E>>| async move { Json(state.identity.model.clone()) }),
        )
        .route(
            "/proxy/stats",
            get(|State(state): State<AppState<E>>| async move { Json(stats(&state.shared, STATS_CMD)) }),
        )
        .route("/proxy/slots", get(|State(state): State<AppState<E>>| async move { Json(slots(&state.shared)) }))
        .route(
            "/api/proxy/xping/{xauth}",
            get(|State(state): State<AppState<E>>, Path(xauth): Path<String>| async move {
                check(&state, &xauth).map(|()| Json("OK"))
            }),
        )
        .route(
            "/api/proxy/stats/{xauth}",
            get(|State(state): State<AppState<E>>, Path(xauth): Path<String>| async move {
                check(&state, &xauth).map(|()| Json(stats(&state.shared, 0)))
            }),
        )
        .route(
            "/api/proxy/stats/{xauth}/{flags}",
            get(|State(state): State<AppState<E>>, Path((xauth, flags)): Path<(String, String)>| async move {
                check(&state, &xauth)?;
                let flags = flags
                    .parse::<u32>()
                    .map_err(|_| refuse(StatusCode::BAD_REQUEST, format!("stats flags {flags:?} are not a number")))?;
                Ok::<_, ApiError>(Json(stats(&state.shared, flags)))
            }),
        )
        .route(
            "/api/proxy/slots/{xauth}",
            get(|State(state): State<AppState<E>>, Path(xauth): Path<String>| async move {
                check(&state, &xauth).map(|()| Json(slots(&state.shared)))
            }),
        )
        .route(
            "/api/proxy/start/{xauth}",
            put(|State(state): State<AppState<E>>, Path(xauth): Path<String>| async move {
                check(&state, &xauth)?;
                state.shared.online.store(true, Ordering::Release);
                Ok::<_, ApiError>(Json("OK"))
            }),
        )
        .route(
            "/api/proxy/shutdown/{xauth}",
            put(|State(state): State<AppState<E>>, Path(xauth): Path<String>| async move {
                check(&state, &xauth)?;
                state.shared.online.store(false, Ordering::Release);
                state.shared.closing.send_replace(true);
                Ok::<_, ApiError>(Json("OK"))
            }),
        )
        .route(
            "/api/proxy/stats/reset/{xauth}",
            put(|State(state): State<AppState<E>>, Path(xauth): Path<String>| async move {
                check(&state, &xauth)?;
                state.shared.stats.reset();
                Ok::<_, ApiError>(Json("OK"))
            }),
        )
        .route(
            "/api/proxy/fillslots/{xauth}",
            put(|State(state): State<AppState<E>>, Path(xauth): Path<String>, body: axum::body::Bytes| async move {
                check(&state, &xauth)?;
                let slots: Vec<model::Slot> = serde_json::from_slice(&body)
                    .map_err(|error| refuse(StatusCode::BAD_REQUEST, format!("not a JSON array of slots: {error}")))?;
                state
                    .shared
                    .router
                    .fill(&slots)
                    .await
                    .map_err(|error| refuse(StatusCode::BAD_REQUEST, error.to_string()))?;
                Ok::<_, ApiError>(Json("OK"))
            }),
        )
        .route(
            "/api/proxy/lease/{xauth}",
            put(|State(state): State<AppState<E>>, Path(xauth): Path<String>, body: axum::body::Bytes| async move {
                check(&state, &xauth)?;
                let config: crate::lease::LeaseConfig = serde_json::from_slice(&body).map_err(|error| {
                    refuse(
                        StatusCode::BAD_REQUEST,
                        format!("expected {{\"dashboard\": \"host:port\", \"lease_ms\": n}}: {error}"),
                    )
                })?;
                state.shared.lease.configure(config);
                Ok::<_, ApiError>(Json("OK"))
            }),
        )
        .route(
            "/api/proxy/loglevel/{xauth}/{value}",
            put(|State(state): State<AppState<E>>, Path((xauth, value)): Path<(String, String)>| async move {
                check(&state, &xauth)?;
                let Some(set) = &state.log_level else {
                    return Err(refuse(StatusCode::NOT_IMPLEMENTED, "this proxy's log level is fixed"));
                };
                set(&value).map_err(|error| refuse(StatusCode::BAD_REQUEST, error))?;
                Ok(Json("OK"))
            }),
        )
        .route("/metrics", get(|State(state): State<AppState<E>>| async move { metrics(&state.shared) }))
        .fallback(|| async { refuse(StatusCode::NOT_FOUND, "no such path") })
        .with_state(state)
}

/// Prometheus text exposition.
fn metrics<E: Env>(shared: &Shared<E>) -> String {
    let stats = stats(shared, 0);
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
        let _ = writeln!(
            out,
            "# HELP codis_proxy_{name} {help}\n# TYPE codis_proxy_{name} {kind}\ncodis_proxy_{name} {value}"
        );
    };
    metric("online", "gauge", "Whether the proxy serves clients.", u64::from(stats.online));
    metric("ops_total", "counter", "Requests answered.", stats.ops.total);
    metric("ops_fails_total", "counter", "Replies that were errors.", stats.ops.fails);
    metric("ops_per_second", "gauge", "Requests answered in the last second.", stats.ops.qps);
    metric("sessions_total", "counter", "Client sessions accepted.", stats.sessions.total);
    metric("sessions_alive", "gauge", "Client sessions open.", stats.sessions.alive);
    let _ = writeln!(
        out,
        "# HELP codis_proxy_backend_up Whether the backend answers its keep-alive PING with current data (0: down or stale).\n# TYPE codis_proxy_backend_up gauge"
    );
    for backend in &stats.backends {
        let up = u8::from(backend.health == Health::Up.as_str());
        let _ = writeln!(
            out,
            "codis_proxy_backend_up{{addr=\"{}\",health=\"{}\"}} {up}",
            label(&backend.addr),
            backend.health
        );
    }
    let commands = shared.stats.commands();
    let _ = writeln!(
        out,
        "# HELP codis_proxy_command_calls_total Requests answered, by command.\n# TYPE codis_proxy_command_calls_total counter"
    );
    for (name, command) in &commands {
        let _ = writeln!(out, "codis_proxy_command_calls_total{{cmd=\"{}\"}} {}", label(name), command.calls);
    }
    let _ = writeln!(
        out,
        "# HELP codis_proxy_command_fails_total Error replies, by command.\n# TYPE codis_proxy_command_fails_total counter"
    );
    for (name, command) in &commands {
        let _ = writeln!(out, "codis_proxy_command_fails_total{{cmd=\"{}\"}} {}", label(name), command.fails);
    }
    let _ = writeln!(
        out,
        "# HELP codis_proxy_command_duration_seconds Time from reading a request to its reply, by command.\n# TYPE codis_proxy_command_duration_seconds histogram"
    );
    for (name, command) in &commands {
        let name = label(name);
        let mut cumulative = 0;
        for (bound, count) in crate::stats::BUCKETS_US.iter().zip(command.buckets) {
            cumulative += count;
            let _ = writeln!(
                out,
                "codis_proxy_command_duration_seconds_bucket{{cmd=\"{name}\",le=\"{}\"}} {cumulative}",
                *bound as f64 / 1e6
            );
        }
        let _ = writeln!(
            out,
            "codis_proxy_command_duration_seconds_bucket{{cmd=\"{name}\",le=\"+Inf\"}} {}\ncodis_proxy_command_duration_seconds_sum{{cmd=\"{name}\"}} {}\ncodis_proxy_command_duration_seconds_count{{cmd=\"{name}\"}} {}",
            command.calls,
            command.usecs as f64 / 1e6,
            command.calls
        );
    }
    out
}

/// A label value with Prometheus' escapes.
fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Serves the admin API on `listener` until the proxy shuts down; `log_level`, if given, serves
/// `loglevel`.
pub async fn serve<E: Env>(
    env: E,
    shared: Arc<Shared<E>>,
    identity: Identity,
    log_level: Option<LogLevel>,
    listener: E::Listener,
) {
    let app = routes(Arc::new(AdminState { shared: shared.clone(), identity, log_level }));
    let mut closing = shared.closing.subscribe();
    tokio::select! {
        biased;
        () = crate::proxy::closed(&mut closing) => {}
        () = net::http::serve(&env, listener, TowerToHyperService::new(app)) => {}
    }
}
