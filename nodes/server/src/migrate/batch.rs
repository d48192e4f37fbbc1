//! The asynchronous batch: a set of keys of one database on its way to a target, and the
//! `SLOTSRESTORE-ASYNC` messages that carry them.
//!
//! Per key, as Codis' `singleObjectIterator`: first `delete key` (a stale copy on the target
//! goes), then either the whole value in one message (`string` for strings, `object` with a
//! `DUMP` payload for collections of at most `maxbulks` elements) or, for a bigger collection,
//! chunks of at most `maxbulks` elements and about `maxbytes` bytes (`list`, `hash`, `dict`,
//! `zset`) under a temporary TTL of three timeouts, and finally `expire key ttl` with the real
//! TTL. Every message gets one acknowledgement.
//!
//! The batch owns no value: each round looks its key up again, under the lock, and goes on from
//! a position. Positions stay valid because every key of the batch is fenced (no write reaches
//! it) until the batch ends; a key that expires meanwhile is deleted on the target instead.

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::BytesMut;
use model::SlotId;
use resp::encode;

use super::{Caller, FenceId};
use crate::keyspace::{Db, Entry, Key, Value};
use crate::rdb;

/// The subcommand names of `SLOTSRESTORE-ASYNC` messages.
pub mod verbs {
    /// Deletes the key on the target.
    pub const DELETE: &str = "delete";
    /// A whole string value.
    pub const STRING: &str = "string";
    /// A whole value as a `DUMP` payload.
    pub const OBJECT: &str = "object";
    /// Elements to append to a list.
    pub const LIST: &str = "list";
    /// Field/value pairs to add to a hash.
    pub const HASH: &str = "hash";
    /// Members to add to a set.
    pub const DICT: &str = "dict";
    /// Member/score pairs to add to a sorted set (scores as 8 bytes, little-endian IEEE 754).
    pub const ZSET: &str = "zset";
    /// The real TTL, after the last chunk.
    pub const EXPIRE: &str = "expire";
}

/// Where one key stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Not looked at yet.
    Prepare,
    /// Sent in chunks: `position` elements are out; the collection holds `len`.
    Chunked { position: usize, len: usize },
    /// Every chunk is out; the real TTL is next.
    FillTtl,
}

/// One batch of one database.
#[derive(Debug)]
pub struct AsyncBatch {
    /// `host:port` of the target.
    pub target: String,
    /// How long the target may stay silent before the batch fails.
    pub timeout: Duration,
    /// At most this many elements per message.
    pub maxbulks: usize,
    /// About this many bytes per message, and per round of messages.
    pub maxbytes: usize,
    /// The fence over the batch's keys.
    pub fence: FenceId,
    /// The keys, in the order they go.
    pub keys: Vec<Key>,
    /// For the slot commands, the slot the reply reports on.
    pub slot: Option<SlotId>,
    /// Keys that may have a stale copy at the target: if one is absent here, the target's copy
    /// is deleted rather than left to resurface.
    pub stale: BTreeSet<Key>,
    /// Keys whose whole value has been sent: deleted here once everything is acknowledged.
    pub moved: Vec<Key>,
    /// Keys sent in chunks so far.
    pub chunked: usize,
    /// Messages sent and not yet acknowledged.
    pub sending: usize,
    /// Who waits for the result (the caller, and `SLOTSMGRT-ASYNC-FENCE` callers).
    pub callers: Vec<Caller>,
    /// When the target last acknowledged something, or the batch started (Unix ms).
    pub last_use_ms: u64,
    /// The key being sent (`keys.len()` when all are out) and its stage.
    next: usize,
    stage: Stage,
}

/// What a batch is sent with.
#[derive(Clone, Debug)]
pub struct BatchParams {
    /// `host:port` of the target.
    pub target: String,
    /// Codis' `timeout`.
    pub timeout: Duration,
    /// Codis' `maxbulks`.
    pub maxbulks: usize,
    /// Codis' `maxbytes`.
    pub maxbytes: usize,
}

impl AsyncBatch {
    /// A batch of `keys` (already fenced by `fence`).
    pub fn new(params: BatchParams, keys: Vec<Key>, fence: FenceId, slot: Option<SlotId>, now_ms: u64) -> AsyncBatch {
        AsyncBatch {
            stale: BTreeSet::new(),
            target: params.target,
            timeout: params.timeout,
            maxbulks: params.maxbulks.max(1),
            maxbytes: params.maxbytes.max(1),
            fence,
            keys,
            slot,
            moved: Vec::new(),
            chunked: 0,
            sending: 0,
            callers: Vec::new(),
            last_use_ms: now_ms,
            next: 0,
            stage: Stage::Prepare,
        }
    }

    /// Whether every message has been produced.
    pub fn exhausted(&self) -> bool {
        self.next >= self.keys.len()
    }

    /// The key being sent and its stage, for `SLOTSMGRT-ASYNC-STATUS`.
    pub fn current(&self) -> Option<(&Key, &'static str, usize)> {
        let key = self.keys.get(self.next)?;
        Some(match self.stage {
            Stage::Prepare => (key, "prepare", 0),
            Stage::Chunked { position, .. } => (key, "chunked", position),
            Stage::FillTtl => (key, "fillttl", 0),
        })
    }

    /// Appends messages to `out` until it holds about `budget` bytes or the batch is exhausted;
    /// returns how many messages were appended.
    pub fn produce(&mut self, db: &mut Db, now_ms: u64, out: &mut BytesMut, budget: usize) -> usize {
        let mut messages = 0;
        while !self.exhausted() && out.len() < budget {
            messages += self.step(db, now_ms, out);
        }
        messages
    }

    /// Produces the next message(s) of the current key.
    fn step(&mut self, db: &mut Db, now_ms: u64, out: &mut BytesMut) -> usize {
        let key = self.keys[self.next].clone();
        let Some(entry) = db.get_untouched(&key, now_ms) else {
            // Gone (expired, or evicted): nothing to send, but if chunks went out already, or an
            // earlier migration may have left a copy there, the target's copy goes too.
            let cleanup = usize::from(self.stage != Stage::Prepare || self.stale.contains(&key));
            if cleanup == 1 {
                message(out, verbs::DELETE, &key, &[]);
            }
            self.advance();
            return cleanup;
        };
        let ttl = remaining_ttl(entry, now_ms);
        match self.stage {
            Stage::Prepare => {
                message(out, verbs::DELETE, &key, &[]);
                let elements = elements_of(&entry.value);
                match &entry.value {
                    Value::Str(string) => {
                        string.with_bytes(|bytes| message(out, verbs::STRING, &key, &[ttl.as_bytes(), bytes]));
                    }
                    value if elements <= self.maxbulks || is_compact(value) => {
                        let payload = rdb::dump_payload(value);
                        message(out, verbs::OBJECT, &key, &[ttl.as_bytes(), &payload]);
                    }
                    value => {
                        self.stage = Stage::Chunked { position: 0, len: len_of(value) };
                        self.chunked += 1;
                        return 1;
                    }
                }
                self.moved.push(key);
                self.advance();
                2
            }
            Stage::Chunked { position, len } => {
                let temporary = super::chunk_ttl(self.timeout).to_string();
                let sent = chunk(out, &key, &entry.value, &temporary, position, self.maxbulks, self.maxbytes);
                let position = position + sent;
                self.stage = if position >= len { Stage::FillTtl } else { Stage::Chunked { position, len } };
                1
            }
            Stage::FillTtl => {
                message(out, verbs::EXPIRE, &key, &[ttl.as_bytes()]);
                self.moved.push(key);
                self.advance();
                1
            }
        }
    }

    fn advance(&mut self) {
        self.next += 1;
        self.stage = Stage::Prepare;
    }
}

/// What Codis counts as a collection's elements against `maxbulks`: arguments of a chunk.
fn elements_of(value: &Value) -> usize {
    match value {
        Value::Str(_) => 1,
        Value::List(list) => list.len(),
        Value::Set(set) => set.len(),
        Value::Hash(hash) => hash.len() * 2,
        Value::ZSet(zset) => zset.len() * 2,
    }
}

/// Members (or fields, or elements) of a collection.
fn len_of(value: &Value) -> usize {
    match value {
        Value::Str(_) => 1,
        Value::List(list) => list.len(),
        Value::Set(set) => set.len(),
        Value::Hash(hash) => hash.len(),
        Value::ZSet(zset) => zset.len(),
    }
}

/// Compact encodings always travel whole, as in Codis (they are small by construction).
fn is_compact(value: &Value) -> bool {
    match value {
        Value::Str(_) => true,
        Value::List(_) => false,
        Value::Set(set) => set.encoding() == "intset",
        Value::Hash(hash) => hash.encoding() == "listpack",
        Value::ZSet(zset) => zset.is_compact(),
    }
}

/// How many messages a key will take, for filling a batch up to `numkeys` messages.
pub fn estimate_messages(entry: &Entry, maxbulks: usize) -> usize {
    let elements = elements_of(&entry.value);
    if matches!(entry.value, Value::Str(_)) || elements <= maxbulks || is_compact(&entry.value) {
        2
    } else {
        2 + elements.div_ceil(maxbulks.max(1))
    }
}

/// The TTL to send: the remaining milliseconds (at least 1), or 0 for none.
fn remaining_ttl(entry: &Entry, now_ms: u64) -> String {
    entry.ttl_to_send(now_ms).to_string()
}

/// Appends `SLOTSRESTORE-ASYNC verb key args…`.
fn message(out: &mut BytesMut, verb: &str, key: &[u8], args: &[&[u8]]) {
    encode::write_array_header(out, 3 + args.len());
    encode::write_bulk(out, b"SLOTSRESTORE-ASYNC");
    encode::write_bulk(out, verb.as_bytes());
    encode::write_bulk(out, key);
    for arg in args {
        encode::write_bulk(out, arg);
    }
}

/// Appends one chunk of `value` from element `position`: at most `maxbulks` arguments, stopping
/// early once it passes `maxbytes` (after at least one element). Returns the elements sent.
fn chunk(
    out: &mut BytesMut,
    key: &[u8],
    value: &Value,
    ttl: &str,
    position: usize,
    maxbulks: usize,
    maxbytes: usize,
) -> usize {
    let (verb, per_element, len) = match value {
        Value::List(list) => (verbs::LIST, 1, list.len()),
        Value::Set(set) => (verbs::DICT, 1, set.len()),
        Value::Hash(hash) => (verbs::HASH, 2, hash.len()),
        Value::ZSet(zset) => (verbs::ZSET, 2, zset.len()),
        Value::Str(_) => return 0,
    };
    // The arguments go into a scratch buffer first: the array header needs their count.
    let mut body = BytesMut::new();
    let mut count = 0;
    let limit = (maxbulks / per_element).max(1);
    while position + count < len && count < limit && (count == 0 || body.len() < maxbytes) {
        let index = position + count;
        match value {
            Value::List(list) => encode::write_bulk(&mut body, list.get(index).map_or(&[][..], |element| element)),
            Value::Set(set) => encode::write_bulk(&mut body, &set.get_index(index).unwrap_or_default()),
            Value::Hash(hash) => {
                let (field, value) = hash.get_index(index).map_or((&[][..], &[][..]), |(f, v)| (&f[..], &v[..]));
                encode::write_bulk(&mut body, field);
                encode::write_bulk(&mut body, value);
            }
            Value::ZSet(zset) => {
                let (member, score) = zset.get_index(index).map_or((&[][..], 0.0), |(m, s)| (&m[..], s));
                encode::write_bulk(&mut body, member);
                encode::write_bulk(&mut body, &score.to_le_bytes());
            }
            Value::Str(_) => {}
        }
        count += 1;
    }
    encode::write_array_header(out, 5 + count * per_element);
    encode::write_bulk(out, b"SLOTSRESTORE-ASYNC");
    encode::write_bulk(out, verb.as_bytes());
    encode::write_bulk(out, key);
    encode::write_bulk(out, ttl.as_bytes());
    encode::write_bulk(out, itoa::Buffer::new().format(len).as_bytes());
    out.extend_from_slice(&body);
    count
}
