//! Slot actions: pending → preparing → prepared → migrating → finished, then the slot simply
//! belongs to its target.
//!
//! Each step stores the new state, then pushes it to every proxy; the next step starts only
//! when every proxy has it or has stopped serving (its lease ran out, see [`crate::proxies`]).
//! So after any crash (of the dashboard, a proxy, a server) the stored state says what to redo:
//! push the current state again, then go on. Nothing is ever rolled back; moving keys is
//! idempotent. Rounds take the active action with the smallest index first, then pending ones,
//! at most `migration_parallel_slots` at once and one per group.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use model::{ActionState, GroupId, SlotAction, SlotId, SlotMapping};
use net::Env;
use tracing::{info, warn};

use crate::dashboard::Dashboard;
use crate::error::{DashboardError, Result};

/// Pause after a round in which something failed (Codis waits 5 s).
const RETRY_PAUSE: Duration = Duration::from_secs(1);

/// Runs actions until the dashboard stops.
pub(crate) async fn run<E: Env>(dashboard: Dashboard<E>) {
    loop {
        if dashboard.is_closing() {
            return;
        }
        let round = pick(&dashboard);
        if round.is_empty() {
            tokio::select! {
                () = dashboard.closed() => return,
                () = dashboard.inner.actions.wake.notified() => {}
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            continue;
        }
        let results = futures_util::future::join_all(round.iter().map(|slot| advance(&dashboard, *slot))).await;
        let mut failed = false;
        for (slot, result) in round.iter().zip(results) {
            if let Err(error) = result {
                failed = true;
                warn!(slot = slot.index(), %error, "slot action waits");
                dashboard.set_status(*slot, format!("[ERROR] Slot[{:04}]: {error}", slot.index()));
            }
        }
        let pause = if failed { RETRY_PAUSE } else { Duration::from_millis(10) };
        tokio::select! {
            () = dashboard.closed() => return,
            () = tokio::time::sleep(pause) => {}
        }
    }
}

/// The slots to work on this round.
fn pick<E: Env>(dashboard: &Dashboard<E>) -> Vec<SlotId> {
    let disabled = dashboard.inner.actions.disabled.load(Ordering::Relaxed);
    let limit = dashboard.inner.settings.config.migration_parallel_slots.max(1);
    let model = dashboard.model_guard();
    let mut candidates: Vec<&SlotMapping> =
        model.slots.iter().filter(|slot| slot.action.state != ActionState::Nothing).collect();
    // Active ones first (resume what was started), then pending, each by index.
    candidates.sort_by_key(|slot| (slot.action.state == ActionState::Pending, slot.action.index, slot.id));
    let mut busy: BTreeSet<GroupId> = BTreeSet::new();
    let mut round = Vec::new();
    for slot in candidates {
        if round.len() >= limit {
            break;
        }
        // Disabled: nothing new starts, and migrations pause (the steps before migrating are
        // quick and still finish, so no slot stays locked).
        if disabled && matches!(slot.action.state, ActionState::Pending | ActionState::Migrating) {
            continue;
        }
        let (source, target) = (slot.group_id, slot.action.target_id);
        if busy.contains(&source) || busy.contains(&target) {
            continue;
        }
        // A group being promoted waits for its new master.
        let promoting = |group: GroupId| {
            model.groups.get(&group).is_some_and(|found| found.promoting.state != ActionState::Nothing)
        };
        if promoting(source) || promoting(target) {
            continue;
        }
        // Group 0 is no group: offline slots coming online move no key.
        busy.extend([source, target].into_iter().filter(|group| *group != GroupId(0)));
        round.push(slot.id);
    }
    round
}

/// Takes one slot's action as far as it goes now.
async fn advance<E: Env>(dashboard: &Dashboard<E>, slot: SlotId) -> Result<()> {
    // Whatever was stored last may not have reached every proxy (a crash between store and
    // push): push it again first.
    push_and_check(dashboard, slot).await?;
    loop {
        let mapping = dashboard.model_guard().slot(slot).clone();
        let state = mapping.action.state;
        if state == ActionState::Nothing {
            return Ok(());
        }
        let Some(next) = state.slot_successor() else {
            return Err(DashboardError::Conflict(format!(
                "slot {} is in state {state:?}, which is not a slot action",
                slot.index()
            )));
        };
        if state == ActionState::Migrating {
            if dashboard.inner.actions.disabled.load(Ordering::Relaxed) {
                dashboard.set_status(slot, format!("[PAUSED] Slot[{:04}]: actions are disabled", slot.index()));
                return Ok(());
            }
            move_keys(dashboard, &mapping).await?;
        }
        if next == ActionState::Nothing {
            let done = SlotMapping { id: slot, group_id: mapping.action.target_id, action: SlotAction::default() };
            store(dashboard, &mapping, done).await?;
            info!(slot = slot.index(), group = mapping.action.target_id.0, "slot migrated");
            // Done: no word left to say (a later action on the slot starts with none).
            dashboard.clear_status(slot);
            return Ok(());
        }
        let stored = SlotMapping { action: SlotAction { state: next, ..mapping.action.clone() }, ..mapping.clone() };
        store(dashboard, &mapping, stored).await?;
    }
}

/// Stores `mapping` in place of `expected`, makes it the dashboard's, pushes it, and checks every
/// proxy took it. If the slot changed meanwhile (an operator removed a pending action, assigned
/// the slot, reloaded the model), nothing is stored: the next round starts from what is there.
async fn store<E: Env>(dashboard: &Dashboard<E>, expected: &SlotMapping, mapping: SlotMapping) -> Result<()> {
    assert_eq!(
        expected.action.state.slot_successor(),
        Some(mapping.action.state),
        "slot {}'s action may only move to its successor state",
        mapping.id.index()
    );
    {
        let _changes = dashboard.inner.changes.lock().await;
        if dashboard.model_guard().slot(mapping.id) != expected {
            return Err(DashboardError::Conflict(format!(
                "slot {} changed meanwhile; starting over from what is stored",
                mapping.id.index()
            )));
        }
        dashboard.inner.store.save_slot(&mapping).await?;
        let slot = mapping.id;
        dashboard.model_guard().slots[slot.index()] = mapping;
        dashboard.push(&[slot]).await;
    }
    every_proxy_has_it(dashboard)
}

/// Pushes `slot` as stored to every proxy, and checks every proxy took it.
async fn push_and_check<E: Env>(dashboard: &Dashboard<E>, slot: SlotId) -> Result<()> {
    {
        let _changes = dashboard.inner.changes.lock().await;
        dashboard.push(&[slot]).await;
    }
    every_proxy_has_it(dashboard)
}

/// Whether the next step may go ahead: every proxy has the last push or has stopped serving.
fn every_proxy_has_it<E: Env>(dashboard: &Dashboard<E>) -> Result<()> {
    match dashboard.held_back_by() {
        Some(reason) => Err(DashboardError::Unreachable(reason)),
        None => Ok(()),
    }
}

/// Runs the executor for a migrating slot.
async fn move_keys<E: Env>(dashboard: &Dashboard<E>, mapping: &SlotMapping) -> Result<()> {
    let (source, target) = {
        let model = dashboard.model_guard();
        let source = model.master(mapping.group_id).map(str::to_string);
        let target = model.master(mapping.action.target_id).map(str::to_string);
        (source, target)
    };
    let target = target
        .ok_or_else(|| DashboardError::Conflict(format!("target group {} has no master", mapping.action.target_id)))?;
    let Some(source) = source else {
        // An offline slot (or a source group emptied by force): nothing to move.
        return Ok(());
    };
    let inner = &dashboard.inner;
    // Counted before anything is sent, then checked: a promotion stored before this sees the
    // check fail; one stored after waits for this migration to stop.
    let groups = [mapping.group_id, mapping.action.target_id];
    let _running = inner.failover.executor(&groups);
    let promoting = {
        let model = dashboard.model_guard();
        groups
            .iter()
            .any(|group| model.groups.get(group).is_some_and(|found| found.promoting.state != ActionState::Nothing))
    };
    if promoting {
        return Err(DashboardError::Conflict(
            "a group of the slot is being promoted; the migration resumes after".into(),
        ));
    }
    let report = |line: String| dashboard.set_status(mapping.id, line);
    let moving = crate::migration::executor::migrate(
        &inner.env,
        &inner.settings,
        mapping.id,
        &source,
        &target,
        || Duration::from_micros(inner.actions.interval_us.load(Ordering::Relaxed)),
        &report,
    );
    // A dashboard that stops (its lock lost: a successor takes over) stops moving keys at once;
    // so does a migration whose source or target group starts being promoted (it resumes with
    // the new master).
    tokio::select! {
        biased;
        () = dashboard.promotion_of(&groups) => {
            Err(DashboardError::Conflict("a group of the slot is being promoted; the migration resumes after".into()))
        }
        () = dashboard.closed() => Err(DashboardError::Conflict("the dashboard is stopping".into())),
        moved = moving => moved.map_err(|error| DashboardError::Unreachable(error.to_string())),
    }
}

impl<E: Env> Dashboard<E> {
    /// Records the last word on a slot's action.
    pub(crate) fn set_status(&self, slot: SlotId, line: String) {
        let index = self.model_guard().slot(slot).action.index;
        if let Ok(mut status) = self.inner.actions.status.lock() {
            status.insert(slot.index() as u32, (index, line));
        }
    }

    /// Forgets the last word on a slot whose action ended.
    pub(crate) fn clear_status(&self, slot: SlotId) {
        if let Ok(mut status) = self.inner.actions.status.lock() {
            status.remove(&(slot.index() as u32));
        }
    }
}
