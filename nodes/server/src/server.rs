//! The server: accept loop, connection tasks, the background cycle, and the snapshot loaded at
//! start.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use net::{Env, Listener};
use tracing::{info, warn};

use crate::aof;
use crate::config::ServerConfig;
use crate::evict;
use crate::migrate;
use crate::persist;
use crate::replication;
use crate::session;
use crate::shutdown;
use crate::state::{Shared, State};

/// Serves `config` on `listener` until it stops: at a request from `stops` (each item is one, as
/// each SIGTERM is for Redis; a stop refused because the snapshot failed waits for the next) or
/// from `SHUTDOWN`. `futures_util::stream::once(future)` stops at most once,
/// `futures_util::stream::pending()` only through `SHUTDOWN`.
pub async fn run<E: Env>(
    env: E,
    config: ServerConfig,
    listener: E::Listener,
    stops: impl Stream<Item = ()>,
) -> io::Result<()> {
    config.validate().map_err(|error| io::Error::new(io::ErrorKind::InvalidInput, error))?;
    let addr = listener.local_addr()?;
    let mut state = State::new(config, env.rng("server"), env.unix_millis(), addr.port());
    let log = load(&env, &mut state).await?;
    let shared = Arc::new(Shared::new(state));
    let (jobs, pending_jobs) = tokio::sync::mpsc::unbounded_channel();
    shared.lock().migrations.attach(jobs);
    let migrator = env.spawn(migrate::service::run(env.clone(), shared.clone(), pending_jobs));
    let (snapshots, pending_snapshots) = tokio::sync::mpsc::unbounded_channel();
    shared.lock().persistence.attach(snapshots);
    let snapshot_writer = env.spawn(persist::writer(env.clone(), shared.clone(), pending_snapshots));
    let (orders, pending_orders) = tokio::sync::mpsc::unbounded_channel();
    shared.lock().replication.orders = Some(orders);
    let replica_link = env.spawn(replication::replica::service(env.clone(), shared.clone(), pending_orders));
    {
        let mut state = shared.lock();
        if let Some(master) = state.config.master() {
            info!(host = %master.0, port = master.1, "following the configured master");
            replication::replica::follow(&mut state, Some(master));
        }
    }
    let log_writer = log.map(|log| env.spawn(aof::writer::run(env.clone(), shared.clone(), log)));
    info!(%addr, "ready to accept connections");
    let cron = env.spawn(background_cycle(shared.clone(), env.clone()));
    let requested = shared.lock().shutdown_requested.clone();
    tokio::pin!(stops);
    // No more requests will come from `stops` once it ends.
    let mut stops_ended = false;
    let result = loop {
        let request = tokio::select! {
            biased;
            stop = stops.next(), if !stops_ended => {
                if stop.is_none() {
                    stops_ended = true;
                    continue;
                }
                info!("shutting down: clients are paused, replicas get the last writes, the data is saved if save rules exist");
                shutdown::Request::default()
            }
            () = requested.notified() => {
                let Some(request) = shared.lock().shutdown_request.take() else { continue };
                info!("SHUTDOWN requested by a client");
                request
            }
            accepted = listener.accept() => {
                match accepted {
                    Ok((stream, peer)) => {
                        env.spawn(session::serve(shared.clone(), env.clone(), stream, peer));
                    }
                    Err(error) => {
                        // Out of file descriptors and the like: wait a little rather than spin.
                        warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
                continue;
            }
        };
        if shutdown::prepare(&env, &shared, request).await {
            break Ok(());
        }
    };
    cron.abort();
    migrator.abort();
    snapshot_writer.abort();
    replica_link.abort();
    // Every connection closes, and the log's writer writes and syncs what is left.
    shared.lock().shutdown.send_replace(true);
    if let Some(writer) = log_writer {
        let _ = writer.await;
    }
    info!("shut down");
    result
}

/// Loads what the disk holds: the append-only log if it is on and exists, else the snapshot;
/// with the log on, opens it for writing (a new log's base is what the snapshot held) and starts
/// recording changes.
async fn load<E: Env>(env: &E, state: &mut State) -> io::Result<Option<aof::writer::Log<E::Disk>>> {
    let invalid = |error: &dyn std::fmt::Display| io::Error::new(io::ErrorKind::InvalidData, error.to_string());
    if !state.config.appendonly {
        persist::load(env, state).await.map_err(|error| invalid(&error))?;
        return Ok(None);
    }
    let loaded = aof::load::load(env, state).await.map_err(|error| invalid(&error))?;
    if loaded.is_none() {
        persist::load(env, state).await.map_err(|error| invalid(&error))?;
    }
    let log = aof::writer::open(env, state, loaded).await.map_err(|error| {
        io::Error::new(error.kind(), format!("opening the append only file in {}: {error}", state.config.aof_dir()))
    })?;
    let (size, base) = log.sizes();
    aof::enable(state, size, base);
    Ok(Some(log))
}

/// Binds `config`'s address and serves until it stops (see [`run`]); returns the bound address
/// through `bound` as soon as it is known (tests bind port 0).
pub async fn bind_and_run<E: Env>(
    env: E,
    config: ServerConfig,
    bound: tokio::sync::oneshot::Sender<SocketAddr>,
    stops: impl Stream<Item = ()>,
) -> io::Result<()> {
    let listener = env.bind(&format!("{}:{}", config.bind, config.port)).await?;
    let _ = bound.send(listener.local_addr()?);
    run(env, config, listener, stops).await
}

/// The server's periodic work (Redis' `serverCron`), `hz` times a second: memory statistics,
/// eviction left over from commands, and active expiry.
async fn background_cycle<E: Env>(shared: Arc<Shared>, env: E) {
    loop {
        let hz = shared.lock().config.hz.max(1);
        tokio::time::sleep(Duration::from_millis(u64::from(1000 / hz))).await;
        let now = env.unix_millis();
        let process = env.process_usage();
        let mut state = shared.lock();
        let state = &mut *state;
        state.process = process;
        state.peak_memory = state.peak_memory.max(evict::used_memory(state));
        // A replica leaves evictions and expiries to its master, whose DELs it applies.
        let replica = state.replication.is_replica();
        if !replica {
            evict::perform_evictions(state, now);
        }
        persist::save_if_due(state, now);
        aof::rewrite_if_due(state, now);
        // Evictions above, and changes of tasks other than connections (migration).
        crate::propagate::distribute(state);
        // No pings while clients are paused (`CLIENT PAUSE`, a stop waiting for its replicas):
        // as in Redis, the stream's offset stays where the replicas can catch up with it.
        if state.paused_until_ms <= now {
            let limit = state.config.client_output_buffer_limit.replica.hard_bytes;
            let period = state.config.repl_ping_replica_period.saturating_mul(1000);
            let over = state.replication.ping_if_due(now, period, limit);
            crate::propagate::close_replicas(state, &over);
        }
        if replica || !state.active_expire || state.paused_until_ms > now {
            continue;
        }
        // Redis' ACTIVE_EXPIRE_CYCLE_KEYS_PER_LOOP scaled by effort; rounds are bounded by a
        // count rather than a time budget so a simulated run stays a function of its seed.
        let effort = state.config.active_expire_effort.clamp(1, 10) as usize;
        let sample = 20 + 5 * (effort - 1);
        for db in state.keyspace.dbs_mut() {
            db.expire_cycle(now, &mut state.rng, sample, 16);
        }
        crate::propagate::expired_keys(state);
        crate::propagate::distribute(state);
    }
}
