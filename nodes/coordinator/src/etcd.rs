//! The etcd client: etcd v3 through its JSON gateway (`/v3/kv/…`, `/v3/lease/…`, `/v3/watch`)
//! over [`net::http`], so it runs over the environment's network like every component (see the
//! crate documentation for why not gRPC).
//!
//! Several endpoints may be given (`etcd:a:2379,b:2379`): a request that cannot reach one tries
//! the next, and the one that answered is tried first next time.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use http_body_util::BodyExt;
use net::Env;
use net::http::{HttpClient, HttpError, Incoming, Method};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Error;
use crate::kv::{Compare, Event, KeyValue, Kv, Op, OpResult, Target, Txn, TxnResult, Watcher};
use crate::kv_coordinator::KvCoordinator;
use crate::wire::{
    B64, DeleteRangeRequest, ErrorBody, Int, LeaseMessage, PutRequest, RangeRequest, RangeResponse, RequestOp,
    StreamMessage, TxnRequest, TxnResponse, WatchCreateRequest, WatchRequest, WatchResponse, WireCompare,
};

/// The etcd coordinator.
pub type EtcdCoordinator<E> = KvCoordinator<EtcdClient<E>, E>;

/// The backend's name in errors.
const BACKEND: &str = "etcd";

/// A client of an etcd cluster (or of anything speaking its gateway, like
/// [`crate::gateway::serve`]).
#[derive(Clone, Debug)]
pub struct EtcdClient<E> {
    endpoints: Arc<Vec<HttpClient<E>>>,
    /// The endpoint that answered last.
    preferred: Arc<AtomicUsize>,
}

impl<E: Env> EtcdClient<E> {
    /// A client of `endpoints` (`host:port`, at least one), each request bounded by `timeout`.
    pub fn new(env: E, endpoints: &[String], timeout: Duration) -> EtcdClient<E> {
        let endpoints = endpoints
            .iter()
            .map(|endpoint| {
                let endpoint = endpoint.trim_start_matches("http://").trim_end_matches('/');
                HttpClient::new(env.clone(), endpoint, timeout)
            })
            .collect();
        EtcdClient { endpoints: Arc::new(endpoints), preferred: Arc::new(AtomicUsize::new(0)) }
    }

    /// Every endpoint in the order to try them: the last one that answered first.
    fn order(&self) -> impl Iterator<Item = (usize, &HttpClient<E>)> {
        let count = self.endpoints.len();
        let first = self.preferred.load(Ordering::Relaxed);
        (0..count).map(move |offset| {
            let index = (first + offset) % count;
            (index, &self.endpoints[index])
        })
    }

    /// POSTs `request` to `path` and decodes the answer; an error answer from etcd becomes
    /// [`Error::Protocol`], no answer from any endpoint [`Error::Unavailable`].
    async fn call<Q: Serialize, A: DeserializeOwned>(&self, path: &str, request: &Q) -> Result<A, Error> {
        let body = self.post(path, request).await?;
        serde_json::from_slice(&body)
            .map_err(|error| protocol(format!("{path} answered {}: {error}", String::from_utf8_lossy(&body))))
    }

    /// POSTs one message to a stream endpoint and decodes its first answer line (the gateway
    /// ends such a stream after answering a one-message body).
    async fn call_stream_once<Q: Serialize, A: DeserializeOwned>(&self, path: &str, request: &Q) -> Result<A, Error> {
        let body = self.post(path, request).await?;
        let line = body.split(|byte| *byte == b'\n').next().unwrap_or_default();
        serde_json::from_slice(line)
            .map_err(|error| protocol(format!("{path} answered {}: {error}", String::from_utf8_lossy(&body))))
    }

    /// POSTs `request` to `path` at the first endpoint that takes the connection; the body of
    /// a success.
    async fn post<Q: Serialize>(&self, path: &str, request: &Q) -> Result<bytes::Bytes, Error> {
        let body = serde_json::to_vec(request).map_err(|error| protocol(format!("encoding {path}: {error}")))?;
        let mut last = None;
        for (index, endpoint) in self.order() {
            match endpoint.request(Method::POST, path, Some(body.clone())).await {
                Ok(response) => {
                    self.preferred.store(index, Ordering::Relaxed);
                    if !response.is_success() {
                        return Err(answer_error(path, response.status, &response.body));
                    }
                    return Ok(response.body);
                }
                Err(error) => {
                    // The next request starts at the next endpoint. A request that may have been
                    // applied is not tried elsewhere: that could turn "unknown" into a wrong
                    // answer (a create reported as "exists").
                    self.preferred.store((index + 1) % self.endpoints.len(), Ordering::Relaxed);
                    if !matches!(error, HttpError::Connect { .. }) {
                        return Err(unavailable(Some(error)));
                    }
                    last = Some(error);
                }
            }
        }
        Err(unavailable(last))
    }
}

fn protocol(reason: String) -> Error {
    Error::Protocol { backend: BACKEND, reason }
}

fn unavailable(last: Option<HttpError>) -> Error {
    Error::Unavailable {
        backend: BACKEND,
        reason: last.map_or_else(|| "no endpoint configured".into(), |error| error.to_string()),
    }
}

/// An error answer (`{"error", "message", "code"}`, or whatever a proxy in between said).
fn answer_error(path: &str, status: u16, body: &[u8]) -> Error {
    let message = serde_json::from_slice::<ErrorBody>(body)
        .map(|error| error.message)
        .unwrap_or_else(|_| String::from_utf8_lossy(body).into_owned());
    protocol(format!("{path}: HTTP {status}: {message}"))
}

fn wire_op(op: Op) -> RequestOp {
    match op {
        Op::Range { key } => RequestOp {
            request_range: Some(RangeRequest { key: B64(key.into_bytes()), ..RangeRequest::default() }),
            ..RequestOp::default()
        },
        Op::Put { key, value, lease } => RequestOp {
            request_put: Some(PutRequest { key: B64(key.into_bytes()), value: B64(value), lease: Int(lease) }),
            ..RequestOp::default()
        },
        Op::Delete { key } => RequestOp {
            request_delete_range: Some(DeleteRangeRequest { key: B64(key.into_bytes()) }),
            ..RequestOp::default()
        },
    }
}

fn wire_compare(compare: Compare) -> WireCompare {
    let mut wire = WireCompare { key: B64(compare.key.into_bytes()), result: "EQUAL".into(), ..WireCompare::default() };
    match compare.target {
        Target::Create(revision) => (wire.target, wire.create_revision) = ("CREATE".into(), Some(Int(revision))),
        Target::Mod(revision) => (wire.target, wire.mod_revision) = ("MOD".into(), Some(Int(revision))),
        Target::Lease(lease) => (wire.target, wire.lease) = ("LEASE".into(), Some(Int(lease))),
    }
    wire
}

impl<E: Env> Kv for EtcdClient<E> {
    type Watcher = EtcdWatcher;

    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn range(&self, key: &str, range_end: Option<&str>, keys_only: bool) -> Result<(Vec<KeyValue>, i64), Error> {
        let request =
            RangeRequest { key: B64::text(key), range_end: range_end.map(B64::text).unwrap_or_default(), keys_only };
        let response: RangeResponse = self.call("/v3/kv/range", &request).await?;
        Ok((response.kvs.into_iter().map(KeyValue::from).collect(), response.header.revision.0))
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResult, Error> {
        let request = TxnRequest {
            compare: txn.compare.into_iter().map(wire_compare).collect(),
            success: txn.success.into_iter().map(wire_op).collect(),
            failure: txn.failure.into_iter().map(wire_op).collect(),
        };
        let response: TxnResponse = self.call("/v3/kv/txn", &request).await?;
        let results = response
            .responses
            .into_iter()
            .map(|op| {
                if let Some(range) = op.response_range {
                    OpResult::Range(range.kvs.into_iter().map(KeyValue::from).collect())
                } else if let Some(deleted) = op.response_delete_range {
                    OpResult::Delete(deleted.deleted.0)
                } else {
                    OpResult::Put
                }
            })
            .collect();
        Ok(TxnResult { succeeded: response.succeeded, revision: response.header.revision.0, results })
    }

    async fn grant(&self, ttl_seconds: i64) -> Result<(i64, i64), Error> {
        let answer: LeaseMessage =
            self.call("/v3/lease/grant", &LeaseMessage { ttl: Int(ttl_seconds), ..LeaseMessage::default() }).await?;
        if answer.id.0 == 0 {
            return Err(protocol("lease grant answered no lease id".into()));
        }
        Ok((answer.id.0, answer.ttl.0))
    }

    async fn keep_alive(&self, id: i64) -> Result<bool, Error> {
        // A stream endpoint: one request, one `{"result": …}` line, then the stream ends.
        let answer: StreamMessage<LeaseMessage> = self
            .call_stream_once("/v3/lease/keepalive", &LeaseMessage { id: Int(id), ..LeaseMessage::default() })
            .await?;
        Ok(answer.result.ttl.0 > 0)
    }

    async fn revoke(&self, id: i64) -> Result<(), Error> {
        let _: LeaseMessage =
            self.call("/v3/lease/revoke", &LeaseMessage { id: Int(id), ..LeaseMessage::default() }).await?;
        Ok(())
    }

    async fn watch(&self, key: &str, range_end: &str, start_revision: i64) -> Result<EtcdWatcher, Error> {
        let request = WatchRequest {
            create_request: Some(WatchCreateRequest {
                key: B64::text(key),
                range_end: B64::text(range_end),
                start_revision: Int(start_revision),
            }),
        };
        let body = serde_json::to_vec(&request).map_err(|error| protocol(error.to_string()))?;
        let mut last = None;
        for (index, endpoint) in self.order() {
            match endpoint.stream(Method::POST, "/v3/watch", Some(body.clone())).await {
                Ok((status, stream)) => {
                    self.preferred.store(index, Ordering::Relaxed);
                    let mut watcher = EtcdWatcher { stream, buffer: BytesMut::new() };
                    if !(200..300).contains(&status) {
                        let body = watcher.rest().await;
                        return Err(answer_error("/v3/watch", status, &body));
                    }
                    // The first message says the watch exists; changes come after it.
                    let created: WatchResponse =
                        tokio::time::timeout(endpoint.timeout(), watcher.message()).await.map_err(|_| {
                            Error::Unavailable { backend: BACKEND, reason: "watch not confirmed in time".into() }
                        })??;
                    if !created.created || created.canceled {
                        return Err(protocol(format!("watch refused: {}", created.cancel_reason)));
                    }
                    return Ok(watcher);
                }
                Err(error) => {
                    self.preferred.store((index + 1) % self.endpoints.len(), Ordering::Relaxed);
                    last = Some(error);
                }
            }
        }
        Err(unavailable(last))
    }
}

/// A watch stream from etcd's gateway: one `{"result": …}` line per message.
#[derive(Debug)]
pub struct EtcdWatcher {
    stream: Incoming,
    buffer: BytesMut,
}

impl EtcdWatcher {
    /// The next message.
    async fn message(&mut self) -> Result<WatchResponse, Error> {
        loop {
            if let Some(end) = self.buffer.iter().position(|byte| *byte == b'\n') {
                let line = self.buffer.split_to(end + 1);
                let line = &line[..end];
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let message: StreamMessage<WatchResponse> = serde_json::from_slice(line)
                    .map_err(|error| protocol(format!("watch sent {}: {error}", String::from_utf8_lossy(line))))?;
                return Ok(message.result);
            }
            match self.stream.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(mut data) = frame.into_data() {
                        while data.has_remaining() {
                            let chunk = data.chunk();
                            self.buffer.extend_from_slice(chunk);
                            let length = chunk.len();
                            data.advance(length);
                        }
                    }
                }
                Some(Err(error)) => {
                    return Err(Error::Unavailable { backend: BACKEND, reason: format!("watch broke: {error}") });
                }
                None => return Err(Error::Unavailable { backend: BACKEND, reason: "watch stream ended".into() }),
            }
        }
    }

    /// What is left of the body (an error answer).
    async fn rest(&mut self) -> Vec<u8> {
        while let Some(Ok(frame)) = self.stream.frame().await {
            if let Ok(data) = frame.into_data() {
                self.buffer.extend_from_slice(&data);
            }
        }
        self.buffer.to_vec()
    }
}

impl Watcher for EtcdWatcher {
    async fn next(&mut self) -> Result<Vec<Event>, Error> {
        loop {
            let message = self.message().await?;
            if message.canceled {
                return Err(protocol(format!(
                    "watch cancelled (compacted at {}): {}",
                    message.compact_revision.0, message.cancel_reason
                )));
            }
            if !message.events.is_empty() {
                return Ok(message.events.into_iter().map(Event::from).collect());
            }
        }
    }
}
