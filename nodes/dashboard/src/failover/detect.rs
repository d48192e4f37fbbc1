//! Detection: a master is down only when the dashboard has not reached it for
//! `failover_down_after` and a majority of the proxies say the same.

use std::time::Duration;

use futures_util::future::join_all;
use model::Group;
use net::Env;
use tokio::time::Instant;
use tracing::warn;

use super::{Role, guard, replicas};
use crate::dashboard::Dashboard;
use crate::error::{DashboardError, Result};

impl<E: Env> Dashboard<E> {
    /// Starts failing `group` over if its master is down for the dashboard and for a majority
    /// of proxies; says whether it did.
    pub(crate) async fn detect(&self, group: &Group) -> Result<bool> {
        let control = &self.inner.failover;
        let config = &self.inner.settings.config;
        if !config.failover_auto || group.failover_disabled || group.servers.len() < 2 {
            return Ok(false);
        }
        let Some(master) = group.master() else { return Ok(false) };
        let probe = self.probe_of(master);
        let Some(since) = probe.down_since else {
            guard(&control.status).remove(&group.id);
            return Ok(false);
        };
        let down_for = Instant::now().saturating_duration_since(since);
        let down_after = config.failover_down_after;
        if down_for < down_after {
            control.set_status(group.id, format!("[SUSPECT] master {master} silent for {} ms", down_for.as_millis()));
            return Ok(false);
        }
        let reachable = replicas(group)
            .filter(|(_, server)| matches!(self.probe_of(&server.addr).role, Some(Role::Replica { .. })))
            .count();
        if reachable == 0 {
            control.set_status(group.id, format!("[DOWN] master {master} is down and no replica answers"));
            return Ok(false);
        }
        let (votes, registered) = self.proxy_votes(master, down_after).await;
        let needed = registered / 2 + 1;
        if registered == 0 || votes < needed {
            control.set_status(
                group.id,
                format!(
                    "[SUSPECT] master {master} silent for {} ms to the dashboard; {votes} of {registered} proxies agree (failover needs {needed})",
                    down_for.as_millis()
                ),
            );
            return Ok(false);
        }
        warn!(group = group.id.0, %master, votes, registered, "master is down: failing over");
        let master = master.to_string();
        self.start_promotion(group.id, 0, |now| {
            if now.master() == Some(master.as_str()) {
                Ok(())
            } else {
                Err(DashboardError::Conflict(format!("group {}'s master changed meanwhile", group.id)))
            }
        })
        .await?;
        Ok(true)
    }

    /// How many registered proxies see `master` down or silent for `down_after`, and how many
    /// proxies are registered.
    pub(crate) async fn proxy_votes(&self, master: &str, down_after: Duration) -> (usize, usize) {
        let clients: Vec<_> = {
            let model = self.model_guard();
            let links = self.links();
            model.proxies.keys().filter_map(|token| links.get(token).map(|link| link.client.clone())).collect()
        };
        let registered = self.model_guard().proxies.len();
        let threshold = u64::try_from(down_after.as_millis()).unwrap_or(u64::MAX);
        let answers = join_all(clients.iter().map(|client| client.stats())).await;
        let votes = answers
            .into_iter()
            .filter_map(std::result::Result::ok)
            .filter(|stats| {
                stats["backends"].as_array().is_some_and(|backends| {
                    backends.iter().any(|backend| {
                        backend["addr"].as_str() == Some(master)
                            && backend["trouble_ms"].as_u64().is_some_and(|trouble| trouble >= threshold)
                    })
                })
            })
            .count();
        (votes, registered)
    }
}
