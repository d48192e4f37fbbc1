//! A server speaking the subset of etcd's v3 JSON gateway that [`crate::etcd::EtcdClient`]
//! uses, over a [`MemoryStore`]: the simulator hosts it so simulated dashboards talk to their
//! coordinator over the simulated network, exactly as production ones talk to etcd.
//!
//! Answers follow what etcd 3.4 sends (see [`crate::wire`]): integers as strings, zero fields
//! left out, stream endpoints answering `{"result": …}` lines, errors as
//! `{"error", "message", "code"}` with etcd's status codes.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use hyper_util::service::TowerToHyperService;
use net::Env;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Error;
use crate::kv::{Compare, Kv, Op, OpResult, Target, Txn, Watcher};
use crate::memory::MemoryStore;
use crate::wire::{
    DeleteRangeRequest, DeleteRangeResponse, ErrorBody, Header, HeaderResponse, Int, LeaseMessage, PutRequest,
    RangeRequest, RangeResponse, RequestOp, ResponseOp, StreamMessage, TxnRequest, TxnResponse, WatchRequest,
    WatchResponse, WireEvent, WireKv,
};

/// Serves `store` on `listener` until the future is dropped, and expires its leases on time.
pub async fn serve<E: Env>(env: E, store: MemoryStore, listener: E::Listener) {
    env.spawn(store.clone().reap());
    net::http::serve(&env, listener, TowerToHyperService::new(routes(store))).await;
}

/// The routes, for tests that mount them elsewhere.
pub fn routes(store: MemoryStore) -> Router {
    Router::new()
        .route("/v3/kv/range", post(range))
        .route("/v3/kv/put", post(put))
        .route("/v3/kv/deleterange", post(delete_range))
        .route("/v3/kv/txn", post(txn))
        .route("/v3/lease/grant", post(grant))
        .route("/v3/lease/keepalive", post(keep_alive))
        .route("/v3/lease/revoke", post(revoke))
        .route("/v3/kv/lease/revoke", post(revoke))
        .route("/v3/watch", post(watch))
        .with_state(store)
}

/// An etcd-style error answer.
struct Refusal(StatusCode, i32, String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let body = ErrorBody { error: self.2.clone(), message: self.2, code: self.1 };
        (self.0, axum::Json(body)).into_response()
    }
}

/// A refusal of a request the gateway could not decode (etcd: 400, gRPC code 3).
fn invalid(message: impl Into<String>) -> Refusal {
    Refusal(StatusCode::BAD_REQUEST, 3, message.into())
}

/// The store's error as etcd would send it.
fn refusal(error: Error) -> Refusal {
    let text = error.to_string();
    if text.contains("lease not found") {
        Refusal(StatusCode::NOT_FOUND, 5, "etcdserver: requested lease not found".into())
    } else if text.contains("compacted") {
        Refusal(StatusCode::BAD_REQUEST, 11, "etcdserver: mvcc: required revision has been compacted".into())
    } else {
        Refusal(StatusCode::INTERNAL_SERVER_ERROR, 2, text)
    }
}

fn decode<T: DeserializeOwned>(body: &Bytes) -> Result<T, Refusal> {
    if body.is_empty() {
        return serde_json::from_slice(b"{}").map_err(|error| invalid(error.to_string()));
    }
    serde_json::from_slice(body).map_err(|error| invalid(error.to_string()))
}

fn json<T: Serialize>(answer: &T) -> Response {
    match serde_json::to_vec(answer) {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(error) => Refusal(StatusCode::INTERNAL_SERVER_ERROR, 13, error.to_string()).into_response(),
    }
}

fn key_of(key: crate::wire::B64) -> Result<String, Refusal> {
    if key.is_empty() {
        return Err(invalid("etcdserver: key is not provided"));
    }
    Ok(key.into_text())
}

async fn range(State(store): State<MemoryStore>, body: Bytes) -> Result<Response, Refusal> {
    let request: RangeRequest = decode(&body)?;
    let key = key_of(request.key)?;
    let end = (!request.range_end.is_empty()).then(|| request.range_end.into_text());
    let (found, revision) = store.range(&key, end.as_deref(), request.keys_only).await.map_err(refusal)?;
    Ok(json(&range_response(found, revision)))
}

fn range_response(found: Vec<crate::kv::KeyValue>, revision: i64) -> RangeResponse {
    RangeResponse {
        header: Header::at(revision),
        count: Int(i64::try_from(found.len()).unwrap_or(i64::MAX)),
        kvs: found.into_iter().map(WireKv::from).collect(),
    }
}

async fn put(State(store): State<MemoryStore>, body: Bytes) -> Result<Response, Refusal> {
    let request: PutRequest = decode(&body)?;
    let op = Op::Put { key: key_of(request.key)?, value: request.value.0, lease: request.lease.0 };
    let result = store.txn(Txn { success: vec![op], ..Txn::default() }).await.map_err(refusal)?;
    Ok(json(&HeaderResponse { header: Header::at(result.revision) }))
}

async fn delete_range(State(store): State<MemoryStore>, body: Bytes) -> Result<Response, Refusal> {
    let request: DeleteRangeRequest = decode(&body)?;
    let op = Op::Delete { key: key_of(request.key)? };
    let result = store.txn(Txn { success: vec![op], ..Txn::default() }).await.map_err(refusal)?;
    let deleted = match result.results.first() {
        Some(OpResult::Delete(count)) => *count,
        _ => 0,
    };
    Ok(json(&DeleteRangeResponse { header: Header::at(result.revision), deleted: Int(deleted) }))
}

fn op_of(op: RequestOp) -> Result<Op, Refusal> {
    if let Some(range) = op.request_range {
        if !range.range_end.is_empty() {
            return Err(invalid("ranges inside a transaction are not supported by this gateway"));
        }
        return Ok(Op::Range { key: key_of(range.key)? });
    }
    if let Some(put) = op.request_put {
        return Ok(Op::Put { key: key_of(put.key)?, value: put.value.0, lease: put.lease.0 });
    }
    if let Some(delete) = op.request_delete_range {
        return Ok(Op::Delete { key: key_of(delete.key)? });
    }
    Err(invalid("empty request op"))
}

fn compare_of(compare: crate::wire::WireCompare) -> Result<Compare, Refusal> {
    if !compare.result.is_empty() && compare.result != "EQUAL" {
        return Err(invalid(format!("compare result {:?} is not supported by this gateway", compare.result)));
    }
    let value = |field: Option<Int>| field.unwrap_or_default().0;
    let target = match compare.target.as_str() {
        "CREATE" => Target::Create(value(compare.create_revision)),
        "MOD" => Target::Mod(value(compare.mod_revision)),
        "LEASE" => Target::Lease(value(compare.lease)),
        other => return Err(invalid(format!("compare target {other:?} is not supported by this gateway"))),
    };
    Ok(Compare { key: key_of(compare.key)?, target })
}

async fn txn(State(store): State<MemoryStore>, body: Bytes) -> Result<Response, Refusal> {
    let request: TxnRequest = decode(&body)?;
    let txn = Txn {
        compare: request.compare.into_iter().map(compare_of).collect::<Result<_, _>>()?,
        success: request.success.into_iter().map(op_of).collect::<Result<_, _>>()?,
        failure: request.failure.into_iter().map(op_of).collect::<Result<_, _>>()?,
    };
    let result = store.txn(txn).await.map_err(refusal)?;
    let inner = Header { revision: Int(result.revision), ..Header::default() };
    let responses = result
        .results
        .into_iter()
        .map(|op| match op {
            OpResult::Range(found) => ResponseOp {
                response_range: Some(RangeResponse { header: inner.clone(), ..range_response(found, result.revision) }),
                ..ResponseOp::default()
            },
            OpResult::Put => {
                ResponseOp { response_put: Some(HeaderResponse { header: inner.clone() }), ..ResponseOp::default() }
            }
            OpResult::Delete(deleted) => ResponseOp {
                response_delete_range: Some(DeleteRangeResponse { header: inner.clone(), deleted: Int(deleted) }),
                ..ResponseOp::default()
            },
        })
        .collect();
    Ok(json(&TxnResponse { header: Header::at(result.revision), succeeded: result.succeeded, responses }))
}

async fn grant(State(store): State<MemoryStore>, body: Bytes) -> Result<Response, Refusal> {
    let request: LeaseMessage = decode(&body)?;
    let (id, ttl) = store.grant(request.ttl.0).await.map_err(refusal)?;
    let revision = store.revision();
    Ok(json(&LeaseMessage { header: Some(Header::at(revision)), id: Int(id), ttl: Int(ttl) }))
}

async fn keep_alive(State(store): State<MemoryStore>, body: Bytes) -> Result<Response, Refusal> {
    let request: LeaseMessage = decode(&body)?;
    let alive = store.keep_alive(request.id.0).await.map_err(refusal)?;
    let ttl = if alive { store.ttl_of(request.id.0) } else { 0 };
    let revision = store.revision();
    let message =
        StreamMessage { result: LeaseMessage { header: Some(Header::at(revision)), id: request.id, ttl: Int(ttl) } };
    let mut line = serde_json::to_vec(&message).map_err(|error| invalid(error.to_string()))?;
    line.push(b'\n');
    Ok(([(header::CONTENT_TYPE, "application/json")], line).into_response())
}

async fn revoke(State(store): State<MemoryStore>, body: Bytes) -> Result<Response, Refusal> {
    let request: LeaseMessage = decode(&body)?;
    store.revoke(request.id.0).await.map_err(refusal)?;
    let revision = store.revision();
    Ok(json(&HeaderResponse { header: Header::at(revision) }))
}

async fn watch(State(store): State<MemoryStore>, body: Bytes) -> Result<Response, Refusal> {
    let request: WatchRequest = decode(&body)?;
    let Some(create) = request.create_request else {
        return Err(invalid("only create_request is supported by this gateway"));
    };
    let key = key_of(create.key)?;
    let end = if create.range_end.is_empty() { format!("{key}\0") } else { create.range_end.into_text() };
    let watcher = store.watch(&key, &end, create.start_revision.0).await.map_err(refusal)?;
    let revision = store.revision();
    let created = WatchResponse { header: Header::at(revision), created: true, ..WatchResponse::default() };
    let stream = futures_util::stream::unfold(Some((watcher, Some(created))), |state| async move {
        let (mut watcher, first) = state?;
        if let Some(created) = first {
            return Some((line(&created), Some((watcher, None))));
        }
        match watcher.next().await {
            Ok(events) => {
                let revision = events.last().map_or(0, |event| event.kv.mod_revision);
                let message = WatchResponse {
                    header: Header::at(revision),
                    events: events.into_iter().map(WireEvent::from).collect(),
                    ..WatchResponse::default()
                };
                Some((line(&message), Some((watcher, None))))
            }
            Err(error) => {
                let message = WatchResponse {
                    header: Header::default(),
                    canceled: true,
                    cancel_reason: error.to_string(),
                    ..WatchResponse::default()
                };
                Some((line(&message), None))
            }
        }
    });
    Ok(([(header::CONTENT_TYPE, "application/json")], Body::from_stream(stream)).into_response())
}

/// One stream message: `{"result": …}` and a newline.
fn line(message: &WatchResponse) -> Result<Bytes, std::io::Error> {
    let mut bytes = serde_json::to_vec(&StreamMessage { result: message }).map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    Ok(Bytes::from(bytes))
}
