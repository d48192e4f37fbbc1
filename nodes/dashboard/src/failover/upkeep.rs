//! Upkeep: servers marked for re-pointing (and, with automatic failover, replicas following
//! someone else) are told the epoch and `REPLICAOF` their master as soon as they answer.

use model::{ActionState, Group};
use net::Env;
use tracing::{info, warn};

use super::{Role, replicas};
use crate::dashboard::Dashboard;
use crate::error::{DashboardError, Result};

impl<E: Env> Dashboard<E> {
    /// Re-points servers marked after a promotion, confirms masters at their group's epoch,
    /// and (where failover is automatic) re-points replicas that follow someone else.
    pub(crate) async fn upkeep(&self) {
        let groups: Vec<Group> = self.model_guard().groups.values().cloned().collect();
        let auto = self.inner.settings.config.failover_auto;
        for group in groups {
            if group.promoting.state != ActionState::Nothing || self.is_closing() {
                continue;
            }
            let Some(master) = group.master().map(str::to_string) else { continue };
            // The master is confirmed at its group's epoch every round: one that restarted
            // forgot it, and a proxy telling it the epoch on connect would fence it. (A
            // deposed dashboard's late confirmation is refused: the epoch is older.)
            let probe = self.probe_of(&master);
            // A master that knows a newer epoch than its group (it was in another group, or
            // told by a table from before a reload): the group takes it, so epochs only grow.
            if let Some(known) = probe.epoch.filter(|known| *known > group.epoch)
                && matches!(probe.role, Some(Role::Master { .. }))
            {
                let mut next = group.clone();
                next.epoch = known;
                if let Err(error) = self.update_group(&group, next, true).await {
                    warn!(group = group.id.0, %error, "adopting the master's epoch failed");
                }
                continue;
            }
            match &probe.role {
                Some(Role::Master { .. }) => {
                    let reply = self.probe_client(&master).call(&["EPOCH", &group.epoch.to_string(), "MASTER"]).await;
                    if probe.epoch.is_some_and(|known| known < group.epoch) {
                        info!(group = group.id.0, %master, epoch = group.epoch, ?reply, "master confirmed at the group's epoch");
                    }
                }
                // Not repaired by itself (making it master would drop what it copied from the
                // one it follows): the operator decides, with the sync action or a promotion.
                Some(Role::Replica { master: follows, .. }) => self.inner.failover.set_status(
                    group.id,
                    format!("[BROKEN] the group's master {master} follows {follows}: its slots refuse writes (sync action or promote to repair)"),
                ),
                None => {}
            }
            for (_, server) in replicas(&group) {
                let probe = self.probe_of(&server.addr);
                let Some(role) = &probe.role else { continue };
                let drifted = match role {
                    Role::Master { .. } => true,
                    Role::Replica { master: follows, .. } => *follows != master,
                };
                let marked = server.action.state == ActionState::Pending;
                if !(marked || (auto && !group.failover_disabled && drifted)) {
                    continue;
                }
                if let Err(error) = self.repoint(&group, &server.addr, &master).await {
                    warn!(group = group.id.0, server = %server.addr, %error, "re-pointing a replica failed");
                }
            }
        }
    }

    /// Tells `addr` the group's epoch and makes it follow `master`; records it as synced.
    pub(crate) async fn repoint(&self, group: &Group, addr: &str, master: &str) -> Result<()> {
        let (host, port) =
            master.rsplit_once(':').ok_or_else(|| DashboardError::Invalid(format!("master address {master:?}")))?;
        let mut commands = Vec::new();
        if !self.inner.settings.product_auth.is_empty() {
            commands.push(vec![
                "CONFIG".to_string(),
                "SET".to_string(),
                "masterauth".to_string(),
                self.inner.settings.product_auth.clone(),
            ]);
        }
        // One guarded command: a server that knows a newer epoch (this dashboard is behind)
        // refuses it as a whole.
        let follow = ["EPOCH", &group.epoch.to_string(), "FOLLOW", host, port].map(str::to_string).to_vec();
        commands.push(follow);
        let replies = self
            .server_client(addr)
            .pipeline(&commands)
            .await
            .map_err(|error| DashboardError::Unreachable(format!("server {addr}: {}", error.0)))?;
        if let Some(refused) = replies.iter().find(|reply| reply.is_error()) {
            return Err(DashboardError::Unreachable(format!("server {addr}: {refused:?}")));
        }
        info!(group = group.id.0, server = %addr, %master, epoch = group.epoch, "replica follows its master");
        self.record_sync(group.id, addr, ActionState::Synced).await
    }
}
