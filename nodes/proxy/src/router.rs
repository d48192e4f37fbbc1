//! The slot table: for each of the 1024 slots, the backend that serves it and, while it
//! migrates, the one it comes from.
//!
//! Sessions read the table once per batch of requests (an `Arc` clone); `fillslots` builds a new
//! table and swaps it in, and bumps a version that sessions holding requests for a locked slot
//! wait on. Subscribed sessions register as [`Listener`]s, so that a change can wait until they
//! listen on a server that joins, or tell them it may have hidden messages from them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};

use model::{ForwardMethod, MAX_SLOT_NUM, Slot, SlotId};
use net::Env;
use tokio::sync::{Notify, watch};
use tracing::warn;

use crate::backend::{Backend, Health, Pool};

/// How long a table change waits for the requests in flight to its slots before it drops the
/// backend connections that owe them.
const DRAIN_PATIENCE: std::time::Duration = std::time::Duration::from_secs(1);

/// One slot as the proxy routes it.
#[derive(Clone, Debug, Default)]
pub struct Route {
    /// The slot as the dashboard sent it.
    pub slot: Slot,
    /// Its backend (None: offline).
    pub backend: Option<Arc<Backend>>,
    /// While migrating: the source.
    pub migrate_from: Option<Arc<Backend>>,
    /// Replicas that may serve reads, by group in the order to try them (the dashboard orders
    /// them for this proxy: same host, then same datacenter, then the rest). Empty when the
    /// proxy reads from primaries only.
    pub replicas: Vec<Vec<Arc<Backend>>>,
}

/// The routing table: a route per slot. Each is shared between the tables a change goes
/// through, so a change of a few slots copies pointers, not 1024 routes.
pub type Table = Vec<Arc<Route>>;

impl Route {
    /// How keys of a migrating slot are served.
    pub fn method(&self) -> ForwardMethod {
        self.slot.forward_method
    }

    /// The replica to read from: in the first group that has one up, the first up from a
    /// position that `seed` picks (so clients spread over a group's replicas); `None` to read
    /// from the primary (no replicas up, or the slot migrates).
    pub fn replica(&self, seed: usize) -> Option<&Arc<Backend>> {
        if self.migrate_from.is_some() {
            return None;
        }
        self.replicas.iter().find_map(|group| {
            (0..group.len())
                .map(|offset| &group[(seed + offset) % group.len()])
                .find(|replica| replica.health() == Health::Up)
        })
    }
}

/// Why a slot update was refused.
#[derive(Debug, thiserror::Error)]
pub enum FillError {
    /// A slot id out of range.
    #[error("invalid slot id {0}")]
    BadSlot(u32),
}

/// Requests in flight per slot: dispatched under the current table and not yet answered.
#[derive(Debug)]
struct InFlightCounts {
    counts: Vec<AtomicUsize>,
    drained: Notify,
}

/// Counts one request in flight for a slot until dropped (when its reply has arrived, or the
/// request was abandoned).
#[derive(Debug)]
pub struct InFlight {
    counts: Arc<InFlightCounts>,
    slot: usize,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let before = self.counts.counts[self.slot].fetch_sub(1, Ordering::AcqRel);
        // Each count is taken once and given back once: below zero, a table change would wait
        // for requests that do not exist (a wrapped count) or not wait for ones that do.
        assert!(before > 0, "slot {}'s in-flight count went below zero", self.slot);
        if before == 1 {
            self.counts.drained.notify_waiters();
        }
    }
}

/// The slot table and the backends it points at.
pub struct Router<E> {
    pool: Pool<E>,
    /// Connections to replicas (their own `parallel`), `None` with `backend_primary_only`.
    replica_pool: Option<Pool<E>>,
    table: RwLock<Arc<Table>>,
    version: watch::Sender<u64>,
    in_flight: Arc<InFlightCounts>,
    /// One table change at a time.
    filling: tokio::sync::Mutex<()>,
    /// Subscribed sessions, and those a change waits for. A std `Mutex`: held for a few
    /// operations on a map, never across an await.
    listeners: Mutex<Listeners>,
    /// Notified when no session is late any more.
    caught_up: Notify,
    /// How long a change that brings in a server waits for subscribed sessions to listen there
    /// (`session_pubsub_follow_timeout`).
    follow_timeout: std::time::Duration,
}

/// The subscribed sessions, as table changes count them.
#[derive(Debug, Default)]
struct Listeners {
    /// The id the next one gets: ids only grow, so "registered before a change" is "id below
    /// the next id when the change was installed".
    next_id: u64,
    /// The sessions subscribed now, by id (registration order). Each removes itself as it
    /// leaves subscribed mode, so this holds exactly the live ones.
    live: BTreeMap<u64, Weak<Listener>>,
    /// Sessions that do not listen yet at a server a change brought in.
    late: Option<Late>,
}

/// Sessions registered before a change that brought in servers, and not listening there yet.
///
/// Kept as a count that each session's [`Router::followed`] brings down (a session's followed
/// version only grows, so it crosses the change's version once), so waiting for them costs
/// nothing per session that follows: the change is woken once, when none is late.
#[derive(Debug)]
struct Late {
    /// The newest table version that brought in a server.
    version: u64,
    /// Sessions with an id below this registered before it was installed.
    cutoff: u64,
    /// How many of them do not follow `version` yet.
    count: usize,
    /// The servers brought in since every session last listened everywhere: until a late
    /// session listens there, a publish reaching them may go unheard.
    servers: BTreeSet<String>,
}

/// A subscribed session, as table changes see it.
///
/// A subscribed session keeps a link to every server that is some slot's backend or migration
/// source (see `pubsub`). A message can be lost without the link failing only when a server
/// starts or stops taking publishes routed by some proxy while this session does not listen to
/// it; a change tells its listeners when that may have happened ([`Listener::warnings`]), and
/// waits for them where it can prevent it ([`Router::fill`]).
#[derive(Debug, Default)]
pub(crate) struct Listener {
    /// Its place in [`Listeners::live`].
    id: u64,
    /// The newest table version this session has a subscribed link to every server of.
    followed: AtomicU64,
    /// Changes that may have hidden messages from this session, not yet looked at (shared by
    /// every session a change warns).
    warnings: Mutex<Vec<Arc<Hazard>>>,
    /// Wakes the session when a warning arrives (a stored permit, so none is missed).
    wake: Notify,
}

/// A table change that may have hidden messages from a subscribed session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Hazard {
    /// What happened, for the log.
    pub(crate) why: String,
    /// The slots whose publishes may have gone unheard: a session subscribed only to channels of
    /// other slots (and to no pattern) lost nothing.
    pub(crate) slots: BTreeSet<usize>,
}

impl Listener {
    /// Takes the warnings that arrived since the last call.
    pub(crate) fn warnings(&self) -> Vec<Arc<Hazard>> {
        std::mem::take(&mut *self.warnings.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    /// Completes when a warning may have arrived (check [`Listener::warnings`]).
    pub(crate) async fn warned(&self) {
        self.wake.notified().await;
    }

    fn warn(&self, hazard: Arc<Hazard>) {
        self.warnings.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(hazard);
        self.wake.notify_one();
    }

    fn followed(&self) -> u64 {
        self.followed.load(Ordering::Acquire)
    }
}

/// What a table change means for subscribed sessions.
#[derive(Debug, Default, PartialEq, Eq)]
struct Effect {
    /// The servers that join: wait until every session listens there. Where one joins through
    /// locked slots, nothing can be published there through any proxy until the dashboard
    /// unlocks them, which it does only once every proxy has this change, so after the wait none
    /// is missed.
    joined: BTreeSet<String>,
    /// Publishes that may have gone unheard: a server joins already open to publishes (another
    /// proxy may have applied the change first and published there before the sessions here
    /// listen), or leaves while it still took publishes (a proxy that has not applied the
    /// change yet may still publish there).
    hazard: Option<Hazard>,
}

/// The servers a subscribed session links to: every backend and migration source (a
/// migration's source stays linked while its slot moves, so a proxy still publishing there under
/// the table before is heard).
pub(crate) fn linked_servers(table: &[Arc<Route>]) -> BTreeSet<&str> {
    linked(table.iter().map(|route| &route.slot))
}

fn linked<'a>(slots: impl Iterator<Item = &'a Slot>) -> BTreeSet<&'a str> {
    slots
        .flat_map(|slot| [slot.backend_addr.as_str(), slot.migrate_from.as_str()])
        .filter(|addr| !addr.is_empty())
        .collect()
}

/// The effect of replacing `old` by `new` on subscribed sessions. A publish runs on its
/// channel's slot's backend when the slot is unlocked: held while locked, and never on a
/// migration source (`SLOTSMGRT-EXEC-WRAPPER` refuses `PUBLISH`, the synchronous method sends
/// every request on to the target), so only unlocked backends take publishes.
fn effect(old: &[Arc<Route>], new: &[Arc<Route>]) -> Effect {
    let old: Vec<&Slot> = old.iter().map(|route| &route.slot).collect();
    let new: Vec<&Slot> = new.iter().map(|route| &route.slot).collect();
    slots_effect(&old, &new)
}

/// [`effect`] on the slots as the dashboard sent them (a table, by slot index).
fn slots_effect(old: &[&Slot], new: &[&Slot]) -> Effect {
    let (before, after) = (linked(old.iter().copied()), linked(new.iter().copied()));
    let open_at = |table: &[&Slot], servers: &BTreeSet<&str>| -> BTreeSet<usize> {
        table
            .iter()
            .enumerate()
            .filter(|(_, slot)| !slot.locked && servers.contains(slot.backend_addr.as_str()))
            .map(|(index, _)| index)
            .collect()
    };
    let joined: BTreeSet<&str> = after.difference(&before).copied().collect();
    let left: BTreeSet<&str> = before.difference(&after).copied().collect();
    let mut slots = open_at(new, &joined);
    slots.extend(open_at(old, &left));
    let hazard = (!slots.is_empty()).then(|| Hazard {
        why: format!(
            "the slot table changed while {} slot(s) took publishes at a server joining ({}) or leaving ({})",
            slots.len(),
            joined.iter().copied().collect::<Vec<_>>().join(", "),
            left.iter().copied().collect::<Vec<_>>().join(", ")
        ),
        slots,
    });
    Effect { joined: joined.iter().map(|addr| addr.to_string()).collect(), hazard }
}

impl<E: Env> Router<E> {
    /// Every slot offline; reads go to replicas (through `replica_pool`) if one is given; a
    /// change that brings in a server waits up to `follow_timeout` for subscribed sessions to
    /// listen there.
    pub fn new(pool: Pool<E>, replica_pool: Option<Pool<E>>, follow_timeout: std::time::Duration) -> Router<E> {
        let table = (0..MAX_SLOT_NUM)
            .map(|index| {
                Arc::new(Route {
                    slot: Slot { id: SlotId::new(index as u32).unwrap_or_default(), ..Slot::default() },
                    ..Route::default()
                })
            })
            .collect();
        let in_flight = Arc::new(InFlightCounts {
            counts: (0..MAX_SLOT_NUM).map(|_| AtomicUsize::new(0)).collect(),
            drained: Notify::new(),
        });
        Router {
            pool,
            replica_pool,
            table: RwLock::new(Arc::new(table)),
            version: watch::Sender::new(0),
            in_flight,
            filling: tokio::sync::Mutex::new(()),
            listeners: Mutex::new(Listeners::default()),
            caught_up: Notify::new(),
            follow_timeout,
        }
    }

    /// Registers a subscribed session, until [`Router::leave`]. It must read the table (after
    /// [`Router::changes`]) only after registering: a change installed before it registered is
    /// then in what it reads, and any later one counts it.
    pub(crate) fn listen(&self) -> Arc<Listener> {
        let mut listeners = self.lock_listeners();
        let id = listeners.next_id;
        listeners.next_id += 1;
        let listener = Arc::new(Listener { id, ..Listener::default() });
        listeners.live.insert(id, Arc::downgrade(&listener));
        listener
    }

    /// `listener`'s session left subscribed mode: no change waits for it any more.
    pub(crate) fn leave(&self, listener: &Listener) {
        let mut listeners = self.lock_listeners();
        listeners.live.remove(&listener.id);
        self.follow(&mut listeners, listener, u64::MAX);
    }

    /// Records that `listener` has a subscribed link to every server of table `version`.
    pub(crate) fn followed(&self, listener: &Listener, version: u64) {
        self.follow(&mut self.lock_listeners(), listener, version);
    }

    /// Moves `listener` on to `version`, under the lock, so a change counting late sessions
    /// sees each either before or after it moves, never both.
    fn follow(&self, listeners: &mut Listeners, listener: &Listener, version: u64) {
        let before = listener.followed.fetch_max(version, Ordering::AcqRel);
        if let Some(late) = &mut listeners.late
            && listener.id < late.cutoff
            && before < late.version
            && version >= late.version
        {
            late.count -= 1;
            if late.count == 0 {
                listeners.late = None;
                self.caught_up.notify_waiters();
            }
        }
    }

    fn lock_listeners(&self) -> std::sync::MutexGuard<'_, Listeners> {
        self.listeners.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Warns every subscribed session of `hazard`.
    fn warn_all(&self, hazard: Hazard) {
        let hazard = Arc::new(hazard);
        let listeners: Vec<Arc<Listener>> = self.lock_listeners().live.values().filter_map(Weak::upgrade).collect();
        for listener in listeners {
            listener.warn(hazard.clone());
        }
    }

    /// After `table` (version `version`) brought in `joined` servers, or gave slots to servers
    /// some session does not listen at yet: waits until every session registered before the
    /// servers joined listens there, up to the follow timeout. Those that do not by then are
    /// warned for the slots those servers serve: once unlocked (the dashboard goes on when
    /// every proxy acknowledged this change) a publish there may go unheard.
    async fn wait_for_listeners(
        &self,
        table: &[Arc<Route>],
        version: u64,
        joined: &BTreeSet<String>,
        changed: &[Slot],
    ) {
        {
            let mut listeners = self.lock_listeners();
            if !joined.is_empty() {
                // Counted once per change that brings in a server (O(sessions)); each then
                // counts itself out as it follows.
                let count = listeners
                    .live
                    .values()
                    .filter_map(Weak::upgrade)
                    .filter(|listener| listener.followed() < version)
                    .count();
                let mut servers = listeners.late.take().map(|late| late.servers).unwrap_or_default();
                servers.extend(joined.iter().cloned());
                listeners.late = (count > 0).then_some(Late { version, cutoff: listeners.next_id, count, servers });
            }
            let Some(late) = &listeners.late else {
                return;
            };
            // A change that neither brings in a server nor gives a slot to one a session is late
            // for hides nothing from the late ones: it need not wait for them.
            if joined.is_empty() && !changed.iter().any(|slot| late.servers.contains(&slot.backend_addr)) {
                return;
            }
        }
        let deadline = tokio::time::Instant::now() + self.follow_timeout;
        loop {
            let caught_up = self.caught_up.notified();
            tokio::pin!(caught_up);
            caught_up.as_mut().enable();
            if self.lock_listeners().late.is_none() {
                return;
            }
            if tokio::time::timeout_at(deadline, caught_up).await.is_err() {
                break;
            }
        }
        let (late, slots) = {
            let listeners = self.lock_listeners();
            let Some(late) = &listeners.late else {
                return;
            };
            let slots: BTreeSet<usize> = table
                .iter()
                .enumerate()
                .filter(|(_, route)| late.servers.contains(&route.slot.backend_addr))
                .map(|(index, _)| index)
                .collect();
            let sessions: Vec<Arc<Listener>> = listeners
                .live
                .range(..late.cutoff)
                .filter_map(|(_, listener)| listener.upgrade())
                .filter(|listener| listener.followed() < late.version)
                .collect();
            (sessions, slots)
        };
        let hazard = Arc::new(Hazard {
            why: format!(
                "did not subscribe within {} ms at a server joining the slot table",
                self.follow_timeout.as_millis()
            ),
            slots,
        });
        warn!(sessions = late.len(), why = %hazard.why, "subscribers of those servers' slots' channels, and of patterns, are disconnected: they may miss messages");
        for listener in late {
            listener.warn(hazard.clone());
        }
    }

    /// The backend pool.
    pub fn pool(&self) -> &Pool<E> {
        &self.pool
    }

    /// The replicas' pool, if reads may go to replicas.
    pub fn replica_pool(&self) -> Option<&Pool<E>> {
        self.replica_pool.as_ref()
    }

    /// The current table.
    pub fn table(&self) -> Arc<Table> {
        self.table.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// Notified whenever the table changes.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    /// Counts a request for `slot` in flight until the returned guard drops.
    pub fn track(&self, slot: usize) -> InFlight {
        let slot = slot.min(MAX_SLOT_NUM - 1);
        self.in_flight.counts[slot].fetch_add(1, Ordering::AcqRel);
        InFlight { counts: self.in_flight.clone(), slot }
    }

    /// Applies `slots` (Codis' `fillslots`): each replaces its slot's entry, after the requests
    /// already in flight for it have been answered (Codis' `blockAndWait`): new requests for a
    /// changing slot are held meanwhile, so none runs against the old backend once the new
    /// entry is in place, and none overtakes one sent before.
    ///
    /// For subscribed sessions, a change that brings in a server returns once each of them
    /// listens there (or after the follow timeout, warning those that do not for that server's
    /// slots), so when the dashboard moves on from a step that brought a server in locked (a
    /// migration's `prepared`, a promotion's fencing) no publish can reach it unheard; a change
    /// that may have let one reach a server unheard warns them (see [`Listener`]). With no
    /// subscribed session, none of this costs anything.
    pub async fn fill(&self, slots: &[Slot]) -> Result<(), FillError> {
        if let Some(bad) = slots.iter().find(|slot| slot.id.index() >= MAX_SLOT_NUM) {
            return Err(FillError::BadSlot(u32::from(bad.id)));
        }
        let _one_at_a_time = self.filling.lock().await;
        let before = self.table();
        // Hold the slots that change.
        let mut held: Table = before.as_ref().clone();
        for slot in slots {
            Arc::make_mut(&mut held[slot.id.index()]).slot.locked = true;
        }
        self.install(held);
        // Wait for what was already sent to them. A backend that owes replies past
        // `DRAIN_PATIENCE` (a master that died silently: its connection would wait out
        // `backend_recv_timeout`) has its connections dropped, which answers them with an error:
        // the change is not held up, and nothing is left in flight to the old backend. The
        // patience counts from when a backend fell silent, not from now: one silent for longer
        // already (a paused master, whose failover this change may be) is dropped at once.
        let silent_for = {
            let table = self.table();
            slots
                .iter()
                .flat_map(|slot| {
                    let route = &table[slot.id.index()];
                    route
                        .backend
                        .iter()
                        .chain(&route.migrate_from)
                        .map(|backend| backend.trouble_for())
                        .collect::<Vec<_>>()
                })
                .max()
                .unwrap_or_default()
        };
        let patience = tokio::time::Instant::now() + DRAIN_PATIENCE.saturating_sub(silent_for);
        let mut reset = false;
        for slot in slots {
            let index = slot.id.index();
            loop {
                let drained = self.in_flight.drained.notified();
                tokio::pin!(drained);
                drained.as_mut().enable();
                if self.in_flight.counts[index].load(Ordering::Acquire) == 0 {
                    break;
                }
                if reset {
                    drained.await;
                } else if tokio::time::timeout_at(patience, drained).await.is_err() {
                    reset = true;
                    let table = self.table();
                    for slot in slots {
                        let route = &table[slot.id.index()];
                        for backend in
                            route.backend.iter().chain(&route.migrate_from).chain(route.replicas.iter().flatten())
                        {
                            warn!(addr = backend.addr(), "a table change drops connections that owe replies");
                            backend.reset();
                        }
                    }
                }
            }
        }
        let mut table: Table = self.table().as_ref().clone();
        for slot in slots {
            let backend =
                (!slot.backend_addr.is_empty()).then(|| self.pool.get_at_epoch(&slot.backend_addr, slot.epoch));
            let migrate_from = (!slot.migrate_from.is_empty()).then(|| self.pool.get(&slot.migrate_from));
            let replicas = match &self.replica_pool {
                Some(pool) => slot
                    .replica_groups
                    .iter()
                    .map(|group| {
                        group
                            .iter()
                            .filter(|addr| !addr.is_empty())
                            .map(|addr| pool.get_at_epoch(addr, slot.epoch))
                            .collect()
                    })
                    .filter(|group: &Vec<Arc<Backend>>| !group.is_empty())
                    .collect(),
                None => Vec::new(),
            };
            table[slot.id.index()] = Arc::new(Route { slot: slot.clone(), backend, migrate_from, replicas });
        }
        let version = self.install(table);
        // Sessions that registered after the install read the new table themselves.
        if self.lock_listeners().live.is_empty() {
            return Ok(());
        }
        // Changes are applied one at a time: the current table is the one just installed.
        let after = self.table();
        let effect = effect(&before, &after);
        if let Some(hazard) = effect.hazard {
            warn!(why = %hazard.why, "subscribers of those slots' channels, and of patterns, are disconnected: they may have missed messages");
            self.warn_all(hazard);
        }
        self.wait_for_listeners(&after, version, &effect.joined, slots).await;
        Ok(())
    }

    /// Swaps `table` in; returns its version.
    fn install(&self, table: Table) -> u64 {
        *self.table.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(table);
        let mut installed = 0;
        self.version.send_modify(|version| {
            *version += 1;
            installed = *version;
        });
        installed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table of four slots, each `(backend, migrate_from, locked)`.
    fn table(slots: [(&str, &str, bool); 4]) -> Vec<Slot> {
        slots
            .iter()
            .enumerate()
            .map(|(index, (backend, from, locked))| Slot {
                id: SlotId::new(index as u32).unwrap_or_default(),
                backend_addr: backend.to_string(),
                migrate_from: from.to_string(),
                locked: *locked,
                ..Slot::default()
            })
            .collect()
    }

    fn slots_effect(old: &[Slot], new: &[Slot]) -> Effect {
        super::slots_effect(&old.iter().collect::<Vec<_>>(), &new.iter().collect::<Vec<_>>())
    }

    fn hazard_slots(effect: &Effect) -> Option<Vec<usize>> {
        effect.hazard.as_ref().map(|hazard| hazard.slots.iter().copied().collect())
    }

    fn servers(addrs: &[&str]) -> BTreeSet<String> {
        addrs.iter().map(|addr| addr.to_string()).collect()
    }

    #[test]
    fn a_migration_to_a_new_server_waits_for_subscribers_and_hides_nothing() {
        let idle = table([("a", "", false), ("a", "", false), ("b", "", false), ("", "", false)]);
        let preparing = idle.clone();
        let prepared = table([("c", "a", true), ("a", "", false), ("b", "", false), ("", "", false)]);
        let migrating = table([("c", "a", false), ("a", "", false), ("b", "", false), ("", "", false)]);
        let finished = table([("c", "", false), ("a", "", false), ("b", "", false), ("", "", false)]);
        assert_eq!(slots_effect(&idle, &preparing), Effect::default());
        assert_eq!(
            slots_effect(&preparing, &prepared),
            Effect { joined: servers(&["c"]), hazard: None },
            "c joins locked"
        );
        assert_eq!(slots_effect(&prepared, &migrating), Effect::default());
        assert_eq!(slots_effect(&migrating, &finished), Effect::default());
        // Moving `b`'s last slot away: `b` stays linked as the source until it is finished.
        let prepared = table([("c", "a", true), ("a", "", false), ("c", "b", true), ("", "", false)]);
        let migrating = table([("c", "a", true), ("a", "", false), ("c", "b", false), ("", "", false)]);
        let finished = table([("c", "a", true), ("a", "", false), ("c", "", false), ("", "", false)]);
        assert_eq!(slots_effect(&prepared, &migrating), Effect::default());
        assert_eq!(slots_effect(&migrating, &finished), Effect::default(), "a source leaving hides nothing");
    }

    #[test]
    fn a_promotion_fenced_by_locks_hides_nothing() {
        let before = table([("a", "", false), ("a", "", false), ("b", "", false), ("b", "", false)]);
        let fenced = table([("a", "", true), ("a", "", true), ("b", "", false), ("b", "", false)]);
        let promoted = table([("a2", "", true), ("a2", "", true), ("b", "", false), ("b", "", false)]);
        let after = table([("a2", "", false), ("a2", "", false), ("b", "", false), ("b", "", false)]);
        assert_eq!(slots_effect(&before, &fenced), Effect::default());
        assert_eq!(
            slots_effect(&fenced, &promoted),
            Effect { joined: servers(&["a2"]), hazard: None },
            "a leaves fenced"
        );
        assert_eq!(slots_effect(&promoted, &after), Effect::default());
    }

    #[test]
    fn unlocked_changes_that_bring_in_or_drop_a_server_name_their_slots() {
        let before = table([("a", "", false), ("a", "", false), ("b", "", false), ("", "", false)]);
        // An offline slot becomes routable at a new server.
        let online = table([("a", "", false), ("a", "", false), ("b", "", false), ("d", "", false)]);
        let effect = slots_effect(&before, &online);
        assert_eq!(effect.joined, servers(&["d"]));
        assert_eq!(hazard_slots(&effect), Some(vec![3]));
        // A server's last slot handed to one already linked: a proxy not there yet still
        // publishes to the server that left.
        let reassigned = table([("a", "", false), ("a", "", false), ("a", "", false), ("", "", false)]);
        let effect = slots_effect(&before, &reassigned);
        assert!(effect.joined.is_empty());
        assert_eq!(hazard_slots(&effect), Some(vec![2]));
        // Moving a slot between servers that both stay linked changes nothing for subscribers.
        let moved = table([("a", "", false), ("b", "", false), ("b", "", false), ("", "", false)]);
        assert_eq!(slots_effect(&before, &moved), Effect::default());
    }
}
