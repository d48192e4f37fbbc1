//! One client connection: read requests, execute them in batches, write replies; write what
//! other clients' commands post to it (pub/sub messages); and wait while blocked (`BLPOP`).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use net::{Env, Stream};
use resp::{Connection, ConnectionError, Request, Version, encode};
use tokio::sync::futures::Notified;
use tokio::sync::{Notify, watch};
use tracing::{debug, warn};

use crate::aof;
use crate::cmd;
use crate::keyspace::Bulk;
use crate::outbox::{self, Delivery, Inbox};
use crate::state::Shared;
use crate::state::{Block, Client, ClientInfo, State};

/// Removes a client from every registry when its task ends, however it ends: the client list,
/// the blocked clients, the subscriptions and the watched keys.
struct Registration {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        let state = &mut *state;
        state.blocked.unblock(&mut state.keyspace, self.id);
        state.pubsub.remove_client(self.id);
        cmd::transactions::unwatch_all(state, self.id);
        state.replication.detach(self.id);
        state.clients.remove(&self.id);
    }
}

/// A connection and what it needs besides the shared state.
struct Session<S> {
    connection: Connection<S>,
    inbox: Inbox,
    /// Bytes of deliveries in the write buffer, released from the outbox's count once written.
    delivered: usize,
    /// How far the append-only log is durable, when it is on.
    log: Option<watch::Receiver<u64>>,
    /// How far it must be before the write buffer may go out (`appendfsync always`; see
    /// [`aof::reply_barrier`]).
    log_target: u64,
}

/// What ends a connection from outside, as futures made once per connection: polling a stored
/// `Notified` is cheap, while making one per request registers and unregisters a waiter under
/// the `Notify`'s lock every time (3.5% of the server's CPU under unpipelined `GET`s).
struct Exits<'a> {
    /// `CLIENT KILL`, or an output buffer limit another client's command hit.
    killed: Pin<Box<Notified<'a>>>,
    /// The server shutting down.
    stopping: Pin<Box<dyn Future<Output = ()> + Send + 'a>>,
}

impl<S: Stream> Session<S> {
    /// Appends a delivery to the write buffer.
    fn append(&mut self, delivery: &Delivery) {
        let bytes = delivery.bytes();
        self.connection.write_buffer().extend_from_slice(bytes);
        self.delivered += bytes.len();
    }

    /// Writes everything buffered, once the log holds what the replies show; `false` if the
    /// connection failed, the client was killed or the server is stopping meanwhile (a client
    /// that stopped reading must not hold its task forever).
    async fn flush(&mut self, exits: &mut Exits<'_>) -> bool {
        // Read apart from the wait: the borrow holds the watch's lock, which the writer needs.
        let durable = self.log.as_ref().map(|log| *log.borrow());
        if let Some(log) = self.log.as_mut()
            && durable < Some(self.log_target)
        {
            let target = self.log_target;
            let durable = tokio::select! {
                biased;
                () = exits.killed.as_mut() => false,
                () = exits.stopping.as_mut() => false,
                durable = log.wait_for(|durable| *durable >= target) => durable.is_ok(),
            };
            if !durable {
                return false;
            }
        }
        let written = tokio::select! {
            biased;
            () = exits.killed.as_mut() => false,
            result = self.connection.flush() => result.is_ok(),
        };
        if written {
            self.inbox.written(std::mem::take(&mut self.delivered));
        }
        written
    }
}

/// Serves one connection until the peer leaves, a protocol error, `QUIT`, `CLIENT KILL`, an
/// output buffer limit, or the idle timeout.
pub(crate) async fn serve<E: Env>(shared: Arc<Shared>, env: E, stream: E::Stream, peer: SocketAddr) {
    let laddr = stream.local_addr().map(|addr| addr.to_string()).unwrap_or_default();
    let kill = Arc::new(Notify::new());
    let (outbox, inbox) = outbox::channel();
    let now = env.unix_millis();
    let registered = {
        let mut state = shared.lock();
        if state.clients.len() >= state.config.maxclients {
            state.stats.rejected_connections += 1;
            None
        } else {
            state.stats.connections_received += 1;
            let info = ClientInfo {
                addr: peer.to_string(),
                laddr,
                name: Bulk::new(),
                db: 0,
                version: Version::Resp2,
                created_ms: now,
                last_interaction_ms: now,
                last_command: "NULL",
                kill: kill.clone(),
                outbox,
                watched: Vec::new(),
                multi: None,
                closing: false,
                soft_limit_since_ms: None,
            };
            let id = state.register_client(info);
            let stopping = state.shutdown.subscribe();
            let log = state.aof.is_enabled().then(|| state.aof.durable());
            let config = &state.config;
            Some((id, config.requirepass.is_empty(), config.limits(), config.timeout, stopping, log))
        }
    };
    let mut connection = Connection::new(stream, resp::Limits::default());
    let Some((id, authenticated, limits, idle_timeout, stopping, log)) = registered else {
        // As Redis: say why, then close.
        encode::write_error(connection.write_buffer(), b"ERR max number of clients reached");
        let _ = connection.flush().await;
        return;
    };
    let _registration = Registration { shared: shared.clone(), id };
    connection.set_limits(limits);
    let mut stopping = stopping;
    let mut exits =
        Exits { killed: Box::pin(kill.notified()), stopping: Box::pin(crate::shutdown::stopped(&mut stopping)) };
    let mut session = Session { connection, inbox, delivered: 0, log, log_target: 0 };
    let mut client = Client::new(id, authenticated);
    debug!(client = id, %peer, "connected");

    loop {
        // Subscribed clients wait for messages, not requests: the idle timeout spares them, as
        // it spares blocked clients in Redis.
        let idle = if client.subscriptions > 0 { 0 } else { idle_timeout };
        let request = tokio::select! {
            biased;
            () = exits.killed.as_mut() => {
                debug!(client = id, "killed");
                return;
            }
            () = exits.stopping.as_mut() => {
                debug!(client = id, "server shutting down");
                return;
            }
            Some(delivery) = session.inbox.recv() => {
                session.append(&delivery);
                while let Some(delivery) = session.inbox.try_recv() {
                    session.append(&delivery);
                }
                if !session.flush(&mut exits).await {
                    return;
                }
                continue;
            }
            read = read_with_timeout(&mut session.connection, idle) => match read {
                Some(Ok(Some(request))) => request,
                Some(Ok(None)) => {
                    debug!(client = id, "closed by peer");
                    return;
                }
                Some(Err(ConnectionError::Protocol(error))) => {
                    debug!(client = id, %error, "protocol error");
                    encode::write_error(session.connection.write_buffer(), format!("ERR {error}").as_bytes());
                    let _ = session.flush(&mut exits).await;
                    return;
                }
                Some(Err(ConnectionError::InputBufferFull(limit))) => {
                    warn!(client = id, %peer, limit, "closing a client over the query buffer limit");
                    return;
                }
                Some(Err(error)) => {
                    debug!(client = id, %error, "connection failed");
                    return;
                }
                None => {
                    debug!(client = id, "idle timeout");
                    return;
                }
            },
        };
        let mut next = Some(request);
        while let Some(request) = next.take() {
            let batch = {
                let mut state = shared.lock();
                let batch = execute_batch(&mut state, &env, &mut client, &mut session.connection, request);
                crate::propagate::distribute(&mut state);
                session.log_target = aof::reply_barrier(&state);
                batch
            };
            match batch {
                Batch::Done => {}
                Batch::OverOutputLimit => return,
                Batch::Paused { until_ms, request } => {
                    // `DEBUG SLEEP`: nothing runs until then, this connection's batch included.
                    let wait = until_ms.saturating_sub(env.unix_millis());
                    tokio::time::sleep(Duration::from_millis(wait)).await;
                    next = request;
                }
                Batch::Fenced { request, mut wait } => {
                    // The request writes a key a migration has in flight: answer what ran
                    // before it, wait until the migration ends, then run it again.
                    if !session.flush(&mut exits).await {
                        return;
                    }
                    tokio::select! {
                        biased;
                        () = exits.killed.as_mut() => return,
                        () = exits.stopping.as_mut() => return,
                        _ = wait.wait_for(|lifted| *lifted) => {}
                    }
                    next = Some(request);
                }
            }
        }
        // Let the other connections that are ready run their batches before writing, so the
        // replies of one round go out back to back, as Redis writes them in `beforeSleep`: a
        // client woken by the first is still reading when the rest arrive, and the kernel spares
        // the wake-ups. Under pipelining this cuts the server's kernel time per request.
        tokio::task::yield_now().await;
        if !session.flush(&mut exits).await || client.close_after_reply {
            return;
        }
        if client.feeds_replica {
            feed_replica(&shared, &env, id, &mut session, &mut exits).await;
            debug!(client = id, "replica gone");
            return;
        }
        if let Some(block) = client.blocked.take()
            && !wait_while_blocked(&shared, &env, &client, &mut session, &mut exits, block).await
        {
            return;
        }
    }
}

/// Reads a request, giving up after `idle_seconds` of silence (0: wait forever). `None` means the
/// client was idle too long.
async fn read_with_timeout<S: Stream>(
    connection: &mut Connection<S>,
    idle_seconds: u64,
) -> Option<Result<Option<Request>, ConnectionError>> {
    if idle_seconds == 0 {
        return Some(connection.read_request().await);
    }
    tokio::time::timeout(Duration::from_secs(idle_seconds), connection.read_request()).await.ok()
}

/// How a batch ended.
enum Batch {
    /// Everything buffered ran (or the client blocked, or will close after the reply).
    Done,
    /// The replies exceed the client's output buffer limit: close it without them, as Redis does.
    OverOutputLimit,
    /// `request` would write a key in flight to another server; it runs once `wait` says the
    /// migration ended.
    Fenced {
        /// The request that did not run.
        request: Request,
        /// Completes when the fence lifts.
        wait: crate::migrate::FenceWait,
    },
    /// The server is paused (`DEBUG SLEEP`) until then; `request`, if any, has not run yet.
    Paused {
        /// When the pause ends (Unix ms).
        until_ms: u64,
        /// The request to run once it does.
        request: Option<Request>,
    },
}

/// Executes `first` and every further request already buffered, under one acquisition of the
/// lock, so a pipeline costs one lock and one write. Stops early when a command blocks the
/// client (the requests behind it wait in the buffer) or pauses the server.
fn execute_batch<E: Env, S: Stream>(
    state: &mut State,
    env: &E,
    client: &mut Client,
    connection: &mut Connection<S>,
    first: Request,
) -> Batch {
    let now = env.unix_millis();
    if state.paused_until_ms > now {
        return Batch::Paused { until_ms: state.paused_until_ms, request: Some(first) };
    }
    cmd::execute(state, client, connection.write_buffer(), &first, now);
    if let Some(wait) = client.fenced.take() {
        return Batch::Fenced { request: first, wait };
    }
    // After `PSYNC` the connection carries the stream: what the replica sends next are ACKs.
    while !client.close_after_reply && client.blocked.is_none() && !client.feeds_replica {
        let now = env.unix_millis();
        if state.paused_until_ms > now {
            return Batch::Paused { until_ms: state.paused_until_ms, request: None };
        }
        match connection.try_read_request() {
            Ok(Some(request)) => {
                cmd::execute(state, client, connection.write_buffer(), &request, now);
                if let Some(wait) = client.fenced.take() {
                    return Batch::Fenced { request, wait };
                }
            }
            Ok(None) => break,
            Err(error) => {
                encode::write_error(connection.write_buffer(), format!("ERR {error}").as_bytes());
                client.close_after_reply = true;
            }
        }
    }
    let limits = state.config.client_output_buffer_limit;
    let limit = if client.subscriptions > 0 { limits.pubsub } else { limits.normal };
    let Some(info) = state.clients.get_mut(&client.id) else {
        return Batch::Done;
    };
    let pending = connection.write_buffer().len() + info.outbox.pending();
    if limit.exceeded(pending, &mut info.soft_limit_since_ms, env.unix_millis()) {
        warn!(client = client.id, addr = %info.addr, pending, "closing a client over its output buffer limit");
        state.stats.output_limit_disconnections += 1;
        return Batch::OverOutputLimit;
    }
    Batch::Done
}

/// Carries the replication stream to a replica over this connection (after its `PSYNC`):
/// writes what the stream holds for it, and reads its `REPLCONF ACK`s, until either side goes.
async fn feed_replica<E: Env, S: Stream>(
    shared: &Shared,
    env: &E,
    id: u64,
    session: &mut Session<S>,
    exits: &mut Exits<'_>,
) {
    let (wake, timeout) = {
        let state = shared.lock();
        let Some(wake) = state.replication.waker(id) else {
            return;
        };
        (wake, Duration::from_secs(state.config.repl_timeout))
    };
    // A replica acknowledges every second: silence past `repl-timeout` means it is gone.
    let mut silent_until = tokio::time::Instant::now() + timeout;
    loop {
        tokio::select! {
            biased;
            () = exits.killed.as_mut() => return,
            () = exits.stopping.as_mut() => return,
            () = tokio::time::sleep_until(silent_until) => {
                warn!(client = id, "closing a replica silent for longer than repl-timeout");
                return;
            }
            () = wake.notified() => {
                let Some(pending) = shared.lock().replication.take_pending(id) else {
                    return;
                };
                session.connection.write_buffer().extend_from_slice(&pending);
                // A replica that stopped reading is still closed by a kill (its output limit).
                if !session.flush(exits).await {
                    return;
                }
            }
            read = session.connection.read_request() => match read {
                Ok(Some(request)) => {
                    silent_until = tokio::time::Instant::now() + timeout;
                    // `REPLCONF ACK <offset> [FACK <offset>]`; a replica sends nothing else that
                    // matters on this link.
                    let acked = (request.len() >= 3
                        && request.name().eq_ignore_ascii_case(b"REPLCONF")
                        && request.arg(1).is_some_and(|option| option.eq_ignore_ascii_case(b"ACK")))
                    .then(|| request.arg(2).and_then(|offset| std::str::from_utf8(offset).ok()?.parse::<u64>().ok()))
                    .flatten();
                    if let Some(offset) = acked {
                        shared.lock().replication.acknowledge(id, offset, env.unix_millis());
                    }
                }
                Ok(None) | Err(_) => return,
            },
        }
    }
}

/// Waits while the client is blocked: until another client's command serves it (its reply
/// arrives through the inbox), `CLIENT UNBLOCK`, the deadline, or the client leaving. Pub/sub
/// messages for a RESP3 client are written meanwhile, and requests pipelined behind the blocking
/// one are read into the buffer (so a client that disconnects is noticed and stops waiting,
/// rather than consuming an element later). Returns `false` when the connection must close.
async fn wait_while_blocked<E: Env, S: Stream>(
    shared: &Shared,
    env: &E,
    client: &Client,
    session: &mut Session<S>,
    exits: &mut Exits<'_>,
    block: Block,
) -> bool {
    let timer = async {
        match block.deadline_ms {
            Some(deadline) => {
                tokio::time::sleep(Duration::from_millis(deadline.saturating_sub(env.unix_millis()))).await
            }
            None => std::future::pending().await,
        }
    };
    tokio::pin!(timer);
    let mut timed_out = false;
    loop {
        tokio::select! {
            biased;
            () = exits.killed.as_mut() => return false,
            () = exits.stopping.as_mut() => return false,
            Some(delivery) = session.inbox.recv() => {
                session.append(&delivery);
                if session.log.is_some() && matches!(delivery, Delivery::Unblocked(_)) {
                    // The command that served it may not be in the log yet.
                    session.log_target = aof::reply_barrier(&shared.lock());
                }
                if !session.flush(exits).await {
                    return false;
                }
                if matches!(delivery, Delivery::Unblocked(_)) {
                    return true;
                }
            }
            () = &mut timer, if !timed_out => {
                timed_out = true;
                let (still_blocked, waited) = {
                    let mut state = shared.lock();
                    let state = &mut *state;
                    let blocked = state.blocked.unblock(&mut state.keyspace, client.id).is_some();
                    (blocked, state.replication.time_out_waiter(client.id))
                };
                // Otherwise it was served just now, and the reply is on its way in the inbox.
                if still_blocked {
                    encode::write_null_array(session.connection.write_buffer(), client.version);
                    return session.flush(exits).await;
                }
                if let Some(acknowledged) = waited {
                    // `WAIT` answers how many replicas acknowledged by then.
                    encode::write_integer(session.connection.write_buffer(), i64::try_from(acknowledged).unwrap_or(i64::MAX));
                    return session.flush(exits).await;
                }
            }
            read = session.connection.read_more() => match read {
                Ok(0) => {
                    debug!(client = client.id, "closed by peer while blocked");
                    return false;
                }
                Ok(_) => {}
                Err(ConnectionError::InputBufferFull(limit)) => {
                    warn!(client = client.id, limit, "closing a blocked client over the query buffer limit");
                    return false;
                }
                Err(error) => {
                    debug!(client = client.id, %error, "connection failed while blocked");
                    return false;
                }
            },
        }
    }
}
