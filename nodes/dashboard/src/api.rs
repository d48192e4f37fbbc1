//! The REST API on Codis' paths (`/topom`, `/api/topom/…`), so existing tools map over, with a
//! real secret: the `xauth` in every path that changes or reveals state is derived from the
//! product's password ([`model::auth::dashboard_xauth`]), not from its name alone. Errors are
//! JSON `{"error": "…"}` with a 4xx or 5xx status (Codis answers 800 with a Go stack).
//!
//! Beyond Codis: `PUT /api/topom/proxy/lease/<xauth>/<token>`, where proxies renew their lease;
//! `/` serves the web console ([`web_console`]) and `/list` names this product for it.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use hyper_util::service::TowerToHyperService;
use model::{GroupId, SlotMapping};
use net::Env;
use serde_json::json;

use crate::dashboard::Dashboard;
use crate::error::DashboardError;
use crate::ops::{parse_group, parse_slot};
use crate::proxies::LinkState;

/// A refused call.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<DashboardError> for ApiError {
    fn from(error: DashboardError) -> ApiError {
        ApiError(StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), error.to_string())
    }
}

type Answer = Result<Json<serde_json::Value>, ApiError>;

fn ok() -> Answer {
    Ok(Json(json!("OK")))
}

fn check<E: Env>(dashboard: &Dashboard<E>, xauth: &str) -> Result<(), ApiError> {
    // Compared in constant time: how long a refusal takes says nothing about the secret.
    let (given, expected) = (xauth.as_bytes(), dashboard.xauth().as_bytes());
    let differ =
        given.len() != expected.len() || given.iter().zip(expected).fold(0u8, |acc, (a, b)| acc | (a ^ b)) != 0;
    if differ { Err(ApiError(StatusCode::FORBIDDEN, "invalid xauth".into())) } else { Ok(()) }
}

fn flag(text: &str) -> Result<bool, ApiError> {
    match text {
        "1" | "true" => Ok(true),
        "0" | "false" => Ok(false),
        other => Err(ApiError(StatusCode::BAD_REQUEST, format!("{other:?} is not 0 or 1"))),
    }
}

fn number(text: &str) -> Result<u64, ApiError> {
    text.parse().map_err(|_| ApiError(StatusCode::BAD_REQUEST, format!("{text:?} is not a number")))
}

/// The configuration as shown (the password left out).
fn config_json<E: Env>(dashboard: &Dashboard<E>) -> serde_json::Value {
    let config = &dashboard.settings().config;
    json!({
        "coordinator_name": config.coordinator_name,
        "coordinator_addr": config.coordinator_addr,
        "product_name": config.product_name,
        "admin_addr": config.admin_addr,
        "migration_method": config.migration_method,
        "migration_parallel_slots": config.migration_parallel_slots,
        "migration_async_maxbulks": config.migration_async_maxbulks,
        "migration_async_maxbytes": config.migration_async_maxbytes,
        "migration_async_numkeys": config.migration_async_numkeys,
        "migration_timeout_ms": config.migration_timeout.as_millis() as u64,
        "dashboard_lock_ttl_ms": config.dashboard_lock_ttl.as_millis() as u64,
        "proxy_lease_ms": config.proxy_lease.as_millis() as u64,
        "failover_auto": config.failover_auto,
        "failover_down_after_ms": config.failover_down_after.as_millis() as u64,
        "failover_catch_up_ms": config.failover_catch_up.as_millis() as u64,
        "sync_replicas": config.sync_replicas,
        "console_allowed_hosts": config.console_allowed_hosts,
    })
}

/// Codis' stats shape: slots, groups, proxies (with each one's standing), slot actions.
fn stats_json<E: Env>(dashboard: &Dashboard<E>) -> serde_json::Value {
    let model = dashboard.model();
    let now = tokio::time::Instant::now();
    let lease = dashboard.settings().config.proxy_lease;
    let observations = dashboard.observations();
    observations.watched();
    let observed_proxies = observations.proxies.lock().map(|proxies| proxies.clone()).unwrap_or_default();
    let groups: Vec<model::Group> = model.groups.values().cloned().collect();
    let server_stats = observations.servers_with_lag(&groups);
    let proxy_stats: BTreeMap<String, serde_json::Value> = dashboard
        .links()
        .iter()
        .map(|(token, link)| {
            let (state, reason) = match &link.state {
                LinkState::InSync => ("in_sync", String::new()),
                LinkState::Stale { reason } if link.fenced(lease, now) => ("fenced", reason.clone()),
                LinkState::Stale { reason } => ("stale", reason.clone()),
            };
            let mut entry = json!({
                "state": state,
                "error": reason,
                "last_lease_ms_ago": now.saturating_duration_since(link.last_grant).as_millis() as u64,
            });
            if let (Some(entry), Some(observed)) = (entry.as_object_mut(), observed_proxies.get(token))
                && let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(observed)
            {
                entry.extend(fields);
            }
            (token.clone(), entry)
        })
        .collect();
    let actions = dashboard.actions();
    // The last word on each slot's current action (an earlier action's last line is history).
    let current = |slot: u32, index: u64| {
        model
            .slots
            .get(slot as usize)
            .is_some_and(|found| found.action.state != model::ActionState::Nothing && found.action.index == index)
    };
    let status: BTreeMap<String, String> = actions
        .status
        .lock()
        .map(|status| {
            status
                .iter()
                .filter(|(slot, (index, _))| current(**slot, *index))
                .map(|(slot, (_, line))| (slot.to_string(), line.clone()))
                .collect()
        })
        .unwrap_or_default();
    let active = model.slots.iter().filter(|slot| slot.action.state != model::ActionState::Nothing).count();
    let failover = dashboard.failover();
    let servers = failover.servers.lock().map(|servers| json!(*servers)).unwrap_or_default();
    let failover_status: BTreeMap<String, String> = failover
        .status
        .lock()
        .map(|status| status.iter().map(|(group, line)| (group.to_string(), line.clone())).collect())
        .unwrap_or_default();
    json!({
        "closed": dashboard.is_closing(),
        "slots": model.slots,
        "group": { "models": groups, "servers": servers, "stats": server_stats },
        "failover": { "auto": dashboard.settings().config.failover_auto, "status": failover_status },
        "proxy": { "models": model.proxies.values().collect::<Vec<_>>(), "stats": proxy_stats },
        "slot_action": {
            "interval": actions.interval_us.load(Ordering::Relaxed),
            "disabled": actions.disabled.load(Ordering::Relaxed),
            "progress": { "status": status },
            "executor": active,
        },
    })
}

/// The routes.
pub fn routes<E: Env>(dashboard: Dashboard<E>) -> axum::Router {
    type S<E> = State<Dashboard<E>>;
    let routes = axum::Router::new()
        // The web console's page, and the one product it can show here.
        .merge(web_console::assets::routes())
        .route("/list", get(|State(d): S<E>| async move { Json(json!([d.settings().product.as_str()])) }))
        .route(
            "/topom",
            get(|State(d): S<E>| async move {
                Json(json!({
                    "version": env!("CARGO_PKG_VERSION"),
                    "config": config_json(&d),
                    "model": d.topom(),
                    "stats": stats_json(&d),
                }))
            }),
        )
        .route("/topom/model", get(|State(d): S<E>| async move { Json(d.topom().clone()) }))
        .route("/api/topom/model", get(|State(d): S<E>| async move { Json(d.topom().clone()) }))
        .route("/topom/stats", get(|State(d): S<E>| async move { Json(stats_json(&d)) }))
        .route("/topom/slots", get(|State(d): S<E>| async move { Json(d.model().table(d.settings().routing(), None)) }))
        .route(
            "/api/topom/group/info/{addr}",
            get(|State(d): S<E>, Path(addr): Path<String>| async move {
                Ok::<_, ApiError>(Json(d.server_info(&addr).await?))
            }),
        )
        .route(
            "/api/topom/xping/{xauth}",
            get(|State(d): S<E>, Path(x): Path<String>| async move {
                check(&d, &x)?;
                ok()
            }),
        )
        .route(
            "/api/topom/stats/{xauth}",
            get(|State(d): S<E>, Path(x): Path<String>| async move {
                check(&d, &x)?;
                Ok::<_, ApiError>(Json(stats_json(&d)))
            }),
        )
        .route(
            "/api/topom/slots/{xauth}",
            get(|State(d): S<E>, Path(x): Path<String>| async move {
                check(&d, &x)?;
                Ok::<_, ApiError>(Json(d.model().table(d.settings().routing(), None)))
            }),
        )
        .route(
            "/api/topom/reload/{xauth}",
            put(|State(d): S<E>, Path(x): Path<String>| async move {
                check(&d, &x)?;
                d.reload().await?;
                ok()
            }),
        )
        .route(
            "/api/topom/shutdown/{xauth}",
            put(|State(d): S<E>, Path(x): Path<String>| async move {
                check(&d, &x)?;
                d.shutdown().await;
                ok()
            }),
        )
        .route(
            "/api/topom/proxy/create/{xauth}/{addr}",
            put(|State(d): S<E>, Path((x, addr)): Path<(String, String)>| async move {
                check(&d, &x)?;
                Ok::<_, ApiError>(Json(json!(d.add_proxy(&addr, false).await?)))
            }),
        )
        .route(
            "/api/topom/proxy/online/{xauth}/{addr}",
            put(|State(d): S<E>, Path((x, addr)): Path<(String, String)>| async move {
                check(&d, &x)?;
                Ok::<_, ApiError>(Json(json!(d.add_proxy(&addr, true).await?)))
            }),
        )
        .route(
            "/api/topom/proxy/reinit/{xauth}/{token}",
            put(|State(d): S<E>, Path((x, token)): Path<(String, String)>| async move {
                check(&d, &x)?;
                d.reinit(&token).await?;
                ok()
            }),
        )
        .route(
            "/api/topom/proxy/remove/{xauth}/{token}/{force}",
            put(|State(d): S<E>, Path((x, token, force)): Path<(String, String, String)>| async move {
                check(&d, &x)?;
                d.remove_proxy(&token, flag(&force)?).await?;
                ok()
            }),
        )
        .route(
            "/api/topom/proxy/lease/{xauth}/{token}",
            put(|State(d): S<E>, Path((x, token)): Path<(String, String)>| async move {
                check(&d, &x)?;
                match d.grant_lease(&token) {
                    Some(lease) => Ok(Json(json!({ "lease_ms": lease.as_millis() as u64 }))),
                    None => Err(ApiError(
                        StatusCode::CONFLICT,
                        format!("proxy {token} is not in step with the dashboard: no lease until it is re-initialised"),
                    )),
                }
            }),
        )
        .route(
            "/api/topom/group/create/{xauth}/{gid}",
            put(|State(d): S<E>, Path((x, gid)): Path<(String, String)>| async move {
                check(&d, &x)?;
                d.create_group(parse_group(&gid)?).await?;
                ok()
            }),
        )
        .route(
            "/api/topom/group/remove/{xauth}/{gid}",
            put(|State(d): S<E>, Path((x, gid)): Path<(String, String)>| async move {
                check(&d, &x)?;
                d.remove_group(parse_group(&gid)?).await?;
                ok()
            }),
        )
        .route(
            "/api/topom/group/promote/{xauth}/{gid}/{addr}",
            put(|State(d): S<E>, Path((x, gid, addr)): Path<(String, String, String)>| async move {
                check(&d, &x)?;
                d.promote(parse_group(&gid)?, &addr).await?;
                ok()
            }),
        )
        .route(
            "/api/topom/group/failover/{xauth}/{gid}/{value}",
            put(|State(d): S<E>, Path((x, gid, value)): Path<(String, String, String)>| async move {
                check(&d, &x)?;
                d.set_failover(parse_group(&gid)?, flag(&value)?).await?;
                ok()
            }),
        )
        .route(
            "/api/topom/group/resync/{xauth}/{gid}",
            put(|State(d): S<E>, Path((x, gid)): Path<(String, String)>| async move {
                check(&d, &x)?;
                d.resync_group(parse_group(&gid)?).await?;
                ok()
            }),
        )
        .route(
            "/api/topom/group/resync-all/{xauth}",
            put(|State(d): S<E>, Path(x): Path<String>| async move {
                check(&d, &x)?;
                d.resync_all().await?;
                ok()
            }),
        )
        .route(
            "/api/topom/group/add/{xauth}/{gid}/{addr}",
            put(|State(d): S<E>, Path((x, gid, addr)): Path<(String, String, String)>| async move {
                check(&d, &x)?;
                d.add_server(parse_group(&gid)?, &addr, "").await?;
                ok()
            }),
        )
        .route(
            "/api/topom/group/add/{xauth}/{gid}/{addr}/{datacenter}",
            put(|State(d): S<E>, Path((x, gid, addr, dc)): Path<(String, String, String, String)>| async move {
                check(&d, &x)?;
                d.add_server(parse_group(&gid)?, &addr, &dc).await?;
                ok()
            }),
        )
        .route(
            "/api/topom/group/del/{xauth}/{gid}/{addr}",
            put(|State(d): S<E>, Path((x, gid, addr)): Path<(String, String, String)>| async move {
                check(&d, &x)?;
                d.del_server(parse_group(&gid)?, &addr).await?;
                ok()
            }),
        )
        .route(
            "/api/topom/group/replica-groups/{xauth}/{gid}/{addr}/{value}",
            put(|State(d): S<E>, Path((x, gid, addr, value)): Path<(String, String, String, String)>| async move {
                check(&d, &x)?;
                d.set_replica_group(parse_group(&gid)?, &addr, flag(&value)?).await?;
                ok()
            }),
        )
        .route(
            "/api/topom/group/replica-groups-all/{xauth}/{value}",
            put(|State(d): S<E>, Path((x, value)): Path<(String, String)>| async move {
                check(&d, &x)?;
                d.set_replica_groups_all(flag(&value)?).await?;
                ok()
            }),
        )
        .route(
            "/api/topom/group/action/create/{xauth}/{addr}",
            put(|State(d): S<E>, Path((x, addr)): Path<(String, String)>| async move {
                check(&d, &x)?;
                d.sync_server(&addr).await?;
                ok()
            }),
        )
        .route(
            "/api/topom/slots/action/create/{xauth}/{sid}/{gid}",
            put(|State(d): S<E>, Path((x, sid, gid)): Path<(String, String, String)>| async move {
                check(&d, &x)?;
                d.create_action(parse_slot(&sid)?, parse_group(&gid)?).await?;
                ok()
            }),
        )
        .route(
            "/api/topom/slots/action/create-some/{xauth}/{src}/{dst}/{num}",
            put(|State(d): S<E>, Path((x, src, dst, num)): Path<(String, String, String, String)>| async move {
                check(&d, &x)?;
                let count = usize::try_from(number(&num)?).unwrap_or(usize::MAX);
                d.create_action_some(parse_group(&src)?, parse_group(&dst)?, count).await?;
                ok()
            }),
        )
        .route(
            "/api/topom/slots/action/create-range/{xauth}/{beg}/{end}/{gid}",
            put(|State(d): S<E>, Path((x, beg, end, gid)): Path<(String, String, String, String)>| async move {
                check(&d, &x)?;
                d.create_action_range(parse_slot(&beg)?, parse_slot(&end)?, parse_group(&gid)?).await?;
                ok()
            }),
        )
        .route(
            "/api/topom/slots/action/remove/{xauth}/{sid}",
            put(|State(d): S<E>, Path((x, sid)): Path<(String, String)>| async move {
                check(&d, &x)?;
                d.remove_action(parse_slot(&sid)?).await?;
                ok()
            }),
        )
        .route(
            "/api/topom/slots/action/interval/{xauth}/{value}",
            put(|State(d): S<E>, Path((x, value)): Path<(String, String)>| async move {
                check(&d, &x)?;
                d.set_action_interval(number(&value)?);
                ok()
            }),
        )
        .route(
            "/api/topom/slots/action/disabled/{xauth}/{value}",
            put(|State(d): S<E>, Path((x, value)): Path<(String, String)>| async move {
                check(&d, &x)?;
                d.set_actions_disabled(flag(&value)?);
                ok()
            }),
        )
        .route(
            "/api/topom/slots/assign/{xauth}",
            put(|State(d): S<E>, Path(x): Path<String>, body: axum::body::Bytes| async move {
                check(&d, &x)?;
                d.assign(&mappings(&body)?).await?;
                ok()
            }),
        )
        .route(
            "/api/topom/slots/assign/{xauth}/offline",
            put(|State(d): S<E>, Path(x): Path<String>, body: axum::body::Bytes| async move {
                check(&d, &x)?;
                let offline: Vec<SlotMapping> = mappings(&body)?
                    .into_iter()
                    .map(|mapping| SlotMapping { group_id: GroupId(0), ..mapping })
                    .collect();
                d.assign(&offline).await?;
                ok()
            }),
        )
        .route(
            "/api/topom/slots/rebalance/{xauth}/{confirm}",
            put(|State(d): S<E>, Path((x, confirm)): Path<(String, String)>| async move {
                check(&d, &x)?;
                let plan = d.rebalance(flag(&confirm)?).await?;
                let plan: BTreeMap<String, u32> =
                    plan.into_iter().map(|(slot, group)| (slot.index().to_string(), group.0)).collect();
                Ok::<_, ApiError>(Json(json!(plan)))
            }),
        )
        .fallback(|| async { ApiError(StatusCode::NOT_FOUND, "no such path".into()) })
        .with_state(dashboard.clone());
    let names = &dashboard.settings().config.console_allowed_hosts;
    let allowed = web_console::hosts::AllowedHosts::new(
        names.iter().map(String::as_str).chain([dashboard.topom().admin_addr.as_str()]),
    );
    web_console::hosts::guarded(routes, allowed)
}

fn mappings(body: &[u8]) -> Result<Vec<SlotMapping>, ApiError> {
    serde_json::from_slice(body)
        .map_err(|error| ApiError(StatusCode::BAD_REQUEST, format!("not a JSON array of slot mappings: {error}")))
}

impl<E: Env> Dashboard<E> {
    /// Serves the REST API on `listener` until the dashboard stops.
    pub async fn serve(&self, listener: E::Listener) {
        let service = TowerToHyperService::new(routes(self.clone()));
        tokio::select! {
            () = net::http::serve(&self.inner.env, listener, service) => {}
            () = self.closed() => {}
        }
    }

    /// Drops the copy in memory and reads the model from the coordinator again (after a person
    /// edited it).
    pub async fn reload(&self) -> crate::error::Result<()> {
        let _changes = self.inner.changes.lock().await;
        let model = self.inner.store.load().await?;
        self.replace_model(model);
        drop(_changes);
        // The records may say anything now: every proxy is brought in step again.
        self.relink("the model was reloaded");
        Ok(())
    }
}
