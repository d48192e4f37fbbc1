//! One client connection: read a batch of pipelined requests, dispatch each to its backend
//! (they proceed in parallel across backends), then write the replies in request order with one
//! flush.
//!
//! Requests for a slot that is migrating or locked are handled in line: everything before them
//! is answered first, so no request overtakes an earlier one of the same client to the same slot.

pub(crate) mod client;
pub(crate) mod dispatch;
pub(crate) mod held;
pub(crate) mod local;
pub(crate) mod lock;
pub(crate) mod pending;
pub(crate) mod reply;
pub(crate) mod scan;
pub(crate) mod split;

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use model::slot_of;
use net::{Env, Stream};
use resp::{Connection, ConnectionError, Limits, Request, Version, encode};
use tracing::debug;

use self::client::{Client, Input};
use self::dispatch::{dispatch, transaction};
use self::held::serve_in_line;
use self::pending::{Dispatch, Pending, resolve};
use self::scan::scan;
use crate::commands::{self, UpperName};
use crate::proxy::Shared;
use crate::pubsub;
use crate::stats::Recorder;
use crate::transaction::Transaction;

/// Serves one client until it leaves, `QUIT`s, idles out, or breaks the protocol.
pub(crate) async fn serve<E: Env>(shared: Arc<Shared<E>>, stream: E::Stream, id: u64) {
    let config = &shared.config;
    if !config.session_keepalive_period.is_zero()
        && let Err(error) = stream.set_keepalive(config.session_keepalive_period)
    {
        debug!(%error, "no TCP keep-alive");
    }
    let limits = Limits {
        max_bulk_len: config.session_max_bulk_len,
        max_array_len: config.session_max_array_len,
        ..Limits::default()
    };
    let mut connection = Connection::new(stream, limits);
    let mut client = Client {
        id,
        db: 0,
        version: Version::Resp2,
        authenticated: config.session_auth.is_empty(),
        quit: false,
        tx: Transaction::default(),
    };
    let idle = config.session_recv_timeout;
    let room = config.session_max_pipeline.max(1);
    let mut recorder = Recorder::default();
    let mut input = Input::Open;
    // Requests read and not yet dispatched.
    let mut batch: VecDeque<Request> = VecDeque::new();
    // Requests dispatched, in order, with when each was read.
    let mut pending = Owing::new(room);
    // Slots with a held request among the pending ones: later requests to them are held too,
    // so none overtakes it.
    let mut held: Vec<usize> = Vec::new();
    loop {
        if batch.is_empty() && pending.is_empty() {
            // Nothing read and nothing owed: wait for the client, unless it is done.
            if client.quit || !input.is_open() {
                break;
            }
            let read = match tokio::time::timeout(idle, connection.read_request()).await {
                Ok(read) => read,
                Err(_) => Ok(None),
            };
            let Some(first) = input.take(read) else {
                break;
            };
            batch.push_back(first);
            read_buffered(&mut connection, &mut batch, room, &mut input);
        }
        let started = tokio::time::Instant::now();
        while let Some(request) = batch.pop_front() {
            let upper = commands::upper(request.name());
            let info = commands::lookup_upper(&upper);
            if enters_subscribed_mode(&shared, &client, info, &request) {
                // Subscribed mode, until the client unsubscribes from everything.
                drain(&mut pending, connection.write_buffer(), &mut recorder).await;
                held.clear();
                recorder.merge_into(&shared.stats);
                batch.push_front(request);
                match pubsub::serve(&shared, &mut connection, &mut client, &mut batch, &mut input).await {
                    pubsub::Outcome::Unsubscribed => continue,
                    pubsub::Outcome::Close => {
                        // A subscriber may be owed megabytes as it is closed (a lost link, a
                        // table change): one that never reads them does not keep its session.
                        let patience = shared.config.session_pubsub_close_timeout;
                        if tokio::time::timeout(patience, finish(&mut connection, &client, input)).await.is_err() {
                            debug!("a closed subscriber did not read what it was owed in time: dropped");
                        }
                        return;
                    }
                    pubsub::Outcome::Drop => return,
                }
            }
            let route = info.route;
            let in_line = if client.tx.intercepts(upper.as_str(), route) {
                // Transactions are served in line, after everything before them.
                drain(&mut pending, connection.write_buffer(), &mut recorder).await;
                held.clear();
                transaction(&shared, &mut client, &request, upper.as_str()).await
            } else if route == commands::Route::Scan && client.authenticated {
                // One SCAN may visit many slots, one backend round trip each: in line.
                drain(&mut pending, connection.write_buffer(), &mut recorder).await;
                held.clear();
                scan(&shared, &client, &request).await
            } else {
                let behind_held = !held.is_empty() && slots_of(&upper, &request).iter().any(|slot| held.contains(slot));
                let dispatched = if behind_held { Dispatch::InLine } else { dispatch(&shared, &mut client, &request) };
                let reply = match dispatched {
                    Dispatch::Now(reply) => reply,
                    Dispatch::InLine => {
                        held.extend(slots_of(&upper, &request));
                        let (shared, target) = (shared.clone(), client.target());
                        Pending::Held(Box::pin(async move { serve_in_line(&shared, target, &request).await }))
                    }
                };
                pending.push(upper, started, reply);
                if client.quit {
                    // Nothing after QUIT runs.
                    batch.clear();
                }
                continue;
            };
            pending.answered_in_line();
            write_reply(connection.write_buffer(), &mut recorder, started, &upper, &in_line);
            if client.quit {
                batch.clear();
            }
        }
        let may_read = !client.quit;
        drain_reading(&mut pending, &mut connection, &mut recorder, &mut batch, room, &mut input, may_read).await;
        if pending.is_empty() {
            held.clear();
            recorder.merge_into(&shared.stats);
        }
        if !connection.write_buffer().is_empty() && connection.flush().await.is_err() {
            return;
        }
    }
    finish(&mut connection, &client, input).await;
}

/// Whether `request` puts the client in subscribed mode: a (un)subscription outside a
/// transaction, once authenticated, while the proxy serves clients. Otherwise it is answered in
/// normal mode: a `SUBSCRIBE` or `PSUBSCRIBE` without a name with Redis' arity error, as Redis
/// answers it (rather than leaving the client subscribed to nothing), and any of them while the
/// proxy is not started or is fenced with the error every command gets then (a fenced proxy's
/// slot table may be stale: the dashboard goes on without it).
fn enters_subscribed_mode<E: Env>(
    shared: &Shared<E>,
    client: &Client<E>,
    info: commands::Info,
    request: &Request,
) -> bool {
    if info.route != commands::Route::Subscribe {
        return false;
    }
    // `SUBSCRIBE` and `PSUBSCRIBE` need a name (their arity); the opposites do not.
    let named = info.arity_ok(request);
    named && client.authenticated && client.tx.is_idle() && shared.refusal().is_none()
}

/// Ends a session whose requests are all answered: after a protocol error, its reply goes last
/// (unless the client sent `QUIT` before the malformed bytes: Redis never parses past `QUIT`).
async fn finish<S: Stream>(connection: &mut Connection<S>, client: &Client<impl Env>, input: Input) {
    if let Input::Broken(error) = input
        && !client.quit
    {
        encode::write_error(connection.write_buffer(), format!("ERR {error}").as_bytes());
    }
    let _ = connection.flush().await;
}

/// A request dispatched and not yet answered.
struct Owed {
    /// Its place among the session's requests.
    seq: u64,
    name: UpperName,
    /// When its batch was read.
    started: tokio::time::Instant,
    reply: Pending,
}

/// The replies a session owes, in request order. Its invariant, asserted: a reply leaves only
/// when every earlier request's has (replies may arrive from backends in any order; clients
/// match them to requests by position alone).
struct Owing {
    queue: VecDeque<Owed>,
    /// `session_max_pipeline`: never more requests owed than this.
    bound: usize,
    /// The next request's place.
    next: u64,
    /// How many replies have left.
    written: u64,
}

impl Owing {
    fn new(bound: usize) -> Owing {
        Owing { queue: VecDeque::new(), bound, next: 0, written: 0 }
    }

    fn push(&mut self, name: UpperName, started: tokio::time::Instant, reply: Pending) {
        // Requests are read only while fewer than the bound are read and owed together.
        assert!(self.queue.len() < self.bound, "more than session_max_pipeline ({}) requests owed", self.bound);
        self.queue.push_back(Owed { seq: self.next, name, started, reply });
        self.next += 1;
    }

    /// The reply due next, if any: [`Owing::answered`] records that it left, or
    /// [`Owing::put_back`] returns it.
    fn pop_front(&mut self) -> Option<Owed> {
        self.queue.pop_front()
    }

    /// Returns a reply not yet answered to the front.
    fn put_back(&mut self, owed: Owed) {
        assert_eq!(owed.seq, self.written, "a reply went back out of order");
        self.queue.push_front(owed);
    }

    /// Records that the reply of request `seq` left.
    fn answered(&mut self, seq: u64) {
        assert_eq!(seq, self.written, "a reply overtook an earlier request's");
        self.written += 1;
    }

    /// Records a reply served in line, which must come after every earlier one.
    fn answered_in_line(&mut self) {
        assert!(self.queue.is_empty() && self.written == self.next, "an in-line reply overtook an earlier request's");
        self.next += 1;
        self.written += 1;
    }

    fn len(&self) -> usize {
        self.queue.len()
    }

    fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

/// Moves the requests already buffered into `batch`, up to `room`. Bytes that cannot be framed
/// stop the input (see [`Input::Broken`]); the requests before them stay in `batch`, to be run.
fn read_buffered<S: Stream>(
    connection: &mut Connection<S>,
    batch: &mut VecDeque<Request>,
    room: usize,
    input: &mut Input,
) {
    while batch.len() < room {
        match connection.try_read_request() {
            Ok(Some(request)) => batch.push_back(request),
            Ok(None) => break,
            Err(error) => {
                input.failed(ConnectionError::Protocol(error));
                break;
            }
        }
    }
}

/// Answers the pending requests in order. While the reply due next is held (its slot locked or
/// migrating) and the client may still send (`may_read`, and its input is open), reads the
/// client's next requests into `batch` and returns, so the caller dispatches them: requests to
/// other slots flow meanwhile. Returns once everything is answered, new requests were read, or
/// the input stopped (then the caller answers what is still owed without reading).
async fn drain_reading<S: Stream>(
    pending: &mut Owing,
    connection: &mut Connection<S>,
    recorder: &mut Recorder,
    batch: &mut VecDeque<Request>,
    room: usize,
    input: &mut Input,
    may_read: bool,
) {
    while let Some(owed) = pending.pop_front() {
        let reply = match owed.reply {
            // Room for the held reply, put back, and one more request.
            Pending::Held(mut serve) if may_read && input.is_open() && pending.len() + 1 < room => {
                let outcome = tokio::select! {
                    biased;
                    reply = &mut serve => Ok(reply),
                    read = connection.read_request() => Err(read),
                };
                match outcome {
                    Ok(reply) => reply,
                    Err(read) => {
                        pending.put_back(Owed { reply: Pending::Held(serve), ..owed });
                        if let Some(request) = input.take(read) {
                            batch.push_back(request);
                            read_buffered(connection, batch, room.saturating_sub(pending.len()), input);
                        }
                        return;
                    }
                }
            }
            reply => resolve(reply).await,
        };
        pending.answered(owed.seq);
        write_reply(connection.write_buffer(), recorder, owed.started, &owed.name, &reply);
    }
}

/// The slots a request's keys are in (slot 0 for a request without a key, as it is routed).
fn slots_of(upper: &UpperName, request: &Request) -> Vec<usize> {
    let keys = commands::routing_keys(commands::lookup_upper(upper), request);
    if keys.is_empty() {
        return vec![0];
    }
    keys.iter().map(|key| slot_of(key).index()).collect()
}

/// Appends a reply, counted for its command with the time since its batch was read.
fn write_reply(
    out: &mut BytesMut,
    recorder: &mut Recorder,
    started: tokio::time::Instant,
    name: &UpperName,
    reply: &Bytes,
) {
    let usecs = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    recorder.record(name.as_str(), usecs, reply);
    out.extend_from_slice(reply);
}

/// Waits for every pending reply, in order, and appends it to `out`.
async fn drain(pending: &mut Owing, out: &mut BytesMut, recorder: &mut Recorder) {
    while let Some(owed) = pending.pop_front() {
        let (seq, started, name) = (owed.seq, owed.started, owed.name);
        let reply = resolve(owed.reply).await;
        pending.answered(seq);
        write_reply(out, recorder, started, &name, &reply);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owing(bound: usize, requests: usize) -> Owing {
        let mut owing = Owing::new(bound);
        for _ in 0..requests {
            owing.push(commands::upper(b"GET"), tokio::time::Instant::now(), Pending::Ready(Bytes::new()));
        }
        owing
    }

    #[test]
    fn replies_leave_in_request_order() {
        let mut owing = owing(4, 2);
        let first = owing.pop_front().expect("one owed");
        owing.put_back(first);
        for _ in 0..2 {
            let next = owing.pop_front().expect("one owed");
            owing.answered(next.seq);
        }
        owing.answered_in_line();
        assert!(owing.is_empty());
    }

    #[test]
    #[should_panic(expected = "overtook")]
    fn a_reply_cannot_overtake_an_earlier_one() {
        let mut owing = owing(4, 2);
        let _first = owing.pop_front();
        let second = owing.pop_front().expect("two owed");
        owing.answered(second.seq);
    }

    #[test]
    #[should_panic(expected = "in-line reply overtook")]
    fn an_in_line_reply_waits_for_the_ones_before_it() {
        owing(4, 1).answered_in_line();
    }

    #[test]
    #[should_panic(expected = "session_max_pipeline")]
    fn no_more_requests_are_owed_than_the_bound() {
        owing(2, 3);
    }
}
