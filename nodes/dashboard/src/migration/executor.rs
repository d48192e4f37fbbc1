//! Moving one slot's keys from the source master to the target master, database by database,
//! and proving the source holds none before the slot may be marked finished.
//!
//! Codis stops when `SLOTSMGRTTAGSLOT` reports nothing left in the databases `INFO keyspace`
//! lists; users found keys left behind anyway (#1595). Here the loop ends only when
//! `SLOTSINFO <slot> 1` is empty in every database the source has keys in, read after the last
//! batch: a key that arrived late (a write a fenced proxy had in flight) is moved by one more
//! round instead of being stranded.

use std::time::Duration;

use model::{ForwardMethod, SlotId};
use net::Env;
use resp::Frame;
use resp::client::Client;

use crate::config::Settings;

/// Rounds of "move, then verify" before the executor gives up for now (the action is retried).
const VERIFY_ROUNDS: usize = 8;

/// Why the slot is not moved yet.
#[derive(Clone, Debug, thiserror::Error)]
#[error("slot {slot}: {reason}")]
pub struct MigrationError {
    /// The slot.
    pub slot: u32,
    /// What went wrong.
    pub reason: String,
}

/// The last progress of one slot, for the status page.
pub type Progress<'a> = &'a (dyn Fn(String) + Send + Sync);

/// Moves every key of `slot` from `source` to `target` (both masters' `host:port`) and returns
/// once the source holds none in any database.
pub async fn migrate<E: Env>(
    env: &E,
    settings: &Settings,
    slot: SlotId,
    source: &str,
    target: &str,
    interval: impl Fn() -> Duration,
    progress: Progress<'_>,
) -> Result<(), MigrationError> {
    let fail = |reason: String| MigrationError { slot: slot.index() as u32, reason };
    let (host, port) = target.rsplit_once(':').ok_or_else(|| fail(format!("target address {target:?} has no port")))?;
    let config = &settings.config;
    let timeout = config.migration_timeout;
    let mut client = Client::new(env.clone(), source)
        .with_password(&settings.product_auth)
        .with_timeouts(Duration::from_secs(5), timeout + Duration::from_secs(5));
    let timeout_ms = timeout.as_millis().to_string();
    let sid = slot.index().to_string();
    for _ in 0..VERIFY_ROUNDS {
        for db in databases_with_keys(&mut client).await.map_err(&fail)? {
            select(&mut client, db).await.map_err(&fail)?;
            loop {
                let reply = match settings.method {
                    ForwardMethod::SemiAsync => {
                        let step = timeout.min(Duration::from_secs(5)).as_millis().to_string();
                        let (bulks, bytes, keys) = (
                            config.migration_async_maxbulks.to_string(),
                            config.migration_async_maxbytes.to_string(),
                            config.migration_async_numkeys.to_string(),
                        );
                        client.call(&["SLOTSMGRTTAGSLOT-ASYNC", host, port, &step, &bulks, &bytes, &sid, &keys]).await
                    }
                    ForwardMethod::Sync => client.call(&["SLOTSMGRTTAGSLOT", host, port, &timeout_ms, &sid]).await,
                };
                let reply = reply.map_err(|error| fail(format!("source {source}: {}", error.0)))?;
                let remaining = remaining(&reply).map_err(|reason| fail(format!("source {source}: {reason}")))?;
                progress(format!("[OK] Slot[{:04}]@DB[{db}]={remaining}", slot.index()));
                if remaining == 0 {
                    break;
                }
                let pause = interval();
                if !pause.is_zero() {
                    tokio::time::sleep(pause).await;
                }
            }
        }
        // Verification, after the last batch: no key of the slot in any database.
        let mut left = 0;
        for db in databases_with_keys(&mut client).await.map_err(&fail)? {
            select(&mut client, db).await.map_err(&fail)?;
            let reply = client.call(&["SLOTSINFO", &sid, "1"]).await.map_err(|error| fail(error.0))?;
            left += slot_size(&reply).map_err(|reason| fail(format!("source {source}: SLOTSINFO: {reason}")))?;
        }
        if left == 0 {
            return Ok(());
        }
        progress(format!("[WAIT] Slot[{:04}]: {left} keys arrived on the source meanwhile; moving them", slot.index()));
    }
    Err(fail(format!("keys keep arriving on the source {source}; will try again")))
}

async fn select<E: Env>(client: &mut Client<E>, db: u32) -> Result<(), String> {
    match client.call(&["SELECT", &db.to_string()]).await {
        Ok(reply) if !reply.is_error() => Ok(()),
        Ok(reply) => Err(format!("SELECT {db}: {reply:?}")),
        Err(error) => Err(format!("SELECT {db}: {}", error.0)),
    }
}

/// The databases `INFO keyspace` lists (database 0 always, so an empty server is checked).
async fn databases_with_keys<E: Env>(client: &mut Client<E>) -> Result<Vec<u32>, String> {
    let reply = client.call(&["INFO", "keyspace"]).await.map_err(|error| format!("INFO: {}", error.0))?;
    let text = match &reply {
        Frame::Bulk(bytes) | Frame::Verbatim { text: bytes, .. } => String::from_utf8_lossy(bytes).into_owned(),
        other => return Err(format!("INFO keyspace replied {other:?}")),
    };
    let mut databases: Vec<u32> =
        text.lines().filter_map(|line| line.strip_prefix("db")?.split(':').next()?.parse().ok()).collect();
    if !databases.contains(&0) {
        databases.insert(0, 0);
    }
    databases.sort_unstable();
    Ok(databases)
}

/// Keys left in the slot, from a `SLOTSMGRTTAGSLOT[-ASYNC]` reply `[moved, remaining]`.
fn remaining(reply: &Frame) -> Result<i64, String> {
    match reply {
        Frame::Array(items) if items.len() == 2 => match &items[1] {
            Frame::Integer(left) => Ok(*left),
            other => Err(format!("unexpected reply element {other:?}")),
        },
        Frame::Error(error) => Err(String::from_utf8_lossy(error).into_owned()),
        other => Err(format!("unexpected reply {other:?}")),
    }
}

/// The size `SLOTSINFO <slot> 1` reports (`[]` or `[[slot, size]]`).
fn slot_size(reply: &Frame) -> Result<i64, String> {
    match reply {
        Frame::Array(items) => Ok(items
            .iter()
            .filter_map(|item| match item {
                Frame::Array(pair) if pair.len() == 2 => match pair[1] {
                    Frame::Integer(size) => Some(size),
                    _ => None,
                },
                _ => None,
            })
            .sum()),
        Frame::Error(error) => Err(String::from_utf8_lossy(error).into_owned()),
        other => Err(format!("unexpected reply {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_parse() {
        assert_eq!(remaining(&Frame::Array(vec![Frame::Integer(3), Frame::Integer(7)])), Ok(7));
        assert!(remaining(&Frame::error("ERR the specified DB is being migrated")).is_err());
        assert_eq!(slot_size(&Frame::Array(vec![])), Ok(0));
        assert_eq!(slot_size(&Frame::Array(vec![Frame::Array(vec![Frame::Integer(5), Frame::Integer(2)])])), Ok(2));
    }
}
