//! Slot migration between two of our servers on loopback: the synchronous and asynchronous
//! commands move what they say, delete only what the target acknowledged, keep serving other
//! clients meanwhile, and fail cleanly.

mod client;

use std::time::Duration;

use client::{Cluster, bulk, int, is_null, snapshot};
use model::slot_of;
use resp::Frame;
use server::ServerConfig;

/// Waits until the connected server has a batch with `callers` clients waiting on it
/// (`SLOTSMGRT-ASYNC-STATUS`' `blocked_clients`).
async fn wait_for_batch(node: &mut client::Node, callers: i64) {
    for _ in 0..1000 {
        if let Frame::Array(status) = node.call(&["SLOTSMGRT-ASYNC-STATUS"]).await
            && let Some(at) = status.iter().position(|field| *field == bulk("blocked_clients"))
            && status.get(at + 1) == Some(&int(callers))
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("no batch with {callers} waiting clients");
}

/// Keys of one slot: `{tag}` forms share the slot of `tag`.
fn tagged(tag: &str, count: usize) -> Vec<String> {
    (0..count).map(|index| format!("{{{tag}}}:{index}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slotsmgrtone_moves_a_key_with_its_ttl_and_deletes_it_here() {
    let cluster = Cluster::start(ServerConfig::default()).await;
    let (mut source, mut target) = (cluster.source().await, cluster.target().await);
    source.ok(&["SET", "alpha", "1", "PX", "60000"]).await;
    let target_port = cluster.target_port();
    assert_eq!(source.call(&["SLOTSMGRTONE", "127.0.0.1", &target_port, "0", "alpha"]).await, int(1));
    assert_eq!(source.call(&["EXISTS", "alpha"]).await, int(0));
    assert_eq!(target.call(&["GET", "alpha"]).await, bulk("1"));
    let Frame::Integer(ttl) = target.call(&["PTTL", "alpha"]).await else { panic!("PTTL") };
    assert!((50_000..=60_000).contains(&ttl), "TTL travels: {ttl}");
    // A missing key moves nothing.
    assert_eq!(source.call(&["SLOTSMGRTONE", "127.0.0.1", &target_port, "0", "alpha"]).await, int(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slotsmgrttagone_moves_every_key_of_the_tag_of_every_type() {
    let cluster = Cluster::start(ServerConfig::default()).await;
    let (mut source, mut target) = (cluster.source().await, cluster.target().await);
    source.ok(&["SET", "{u1}s", "v"]).await;
    source.call(&["RPUSH", "{u1}l", "a", "b", "c"]).await;
    source.call(&["HSET", "{u1}h", "f", "1", "g", "2"]).await;
    source.call(&["SADD", "{u1}set", "x", "y"]).await;
    source.call(&["ZADD", "{u1}z", "1.5", "m", "-2", "n"]).await;
    source.ok(&["SET", "{u2}other", "stays"]).await;
    let before = snapshot(&mut source, &["{u1}s", "{u1}l", "{u1}h", "{u1}set", "{u1}z"]).await;
    let port = cluster.target_port();
    assert_eq!(source.call(&["SLOTSMGRTTAGONE", "127.0.0.1", &port, "1000", "{u1}s"]).await, int(5));
    assert_eq!(snapshot(&mut target, &["{u1}s", "{u1}l", "{u1}h", "{u1}set", "{u1}z"]).await, before);
    assert_eq!(source.call(&["EXISTS", "{u1}s", "{u1}l", "{u1}h", "{u1}set", "{u1}z"]).await, int(0));
    assert_eq!(source.call(&["GET", "{u2}other"]).await, bulk("stays"));
    assert_eq!(source.call(&["SLOTSCHECK"]).await, Frame::Simple("OK".into()));
    assert_eq!(target.call(&["SLOTSCHECK"]).await, Frame::Simple("OK".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slotsmgrtslot_and_tagslot_empty_a_slot_in_another_database_with_auth() {
    let config = ServerConfig { requirepass: "secret".into(), ..ServerConfig::default() };
    let cluster = Cluster::start(config).await;
    let (mut source, mut target) = (cluster.source().await, cluster.target().await);
    for node in [&mut source, &mut target] {
        node.ok(&["AUTH", "secret"]).await;
        node.ok(&["SELECT", "3"]).await;
    }
    let keys = tagged("slotty", 40);
    let slot = u32::from(slot_of(keys[0].as_bytes())).to_string();
    for key in &keys {
        source.ok(&["SET", key, key]).await;
    }
    let port = cluster.target_port();
    // One key per call; the reply counts what is left.
    let reply = source.call(&["SLOTSMGRTSLOT", "127.0.0.1", &port, "0", &slot]).await;
    assert_eq!(reply, Frame::Array(vec![int(1), int(39)]));
    // With tags, the random key drags its 38 siblings along.
    let reply = source.call(&["SLOTSMGRTTAGSLOT", "127.0.0.1", &port, "0", &slot]).await;
    assert_eq!(reply, Frame::Array(vec![int(39), int(0)]));
    assert_eq!(
        source.call(&["SLOTSMGRTTAGSLOT", "127.0.0.1", &port, "0", &slot]).await,
        Frame::Array(vec![int(0), int(0)])
    );
    assert_eq!(target.call(&["DBSIZE"]).await, int(40));
    for key in &keys {
        assert_eq!(target.call(&["GET", key]).await, bulk(key));
    }
    target.ok(&["SELECT", "0"]).await;
    assert_eq!(target.call(&["DBSIZE"]).await, int(0), "database 3 on both sides");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_migration_keeps_the_key_and_says_why() {
    let cluster = Cluster::start(ServerConfig::default()).await;
    let mut source = cluster.source().await;
    source.ok(&["SET", "kept", "1"]).await;
    let closed = client::closed_port().await;
    let Frame::Error(error) = source.call(&["SLOTSMGRTONE", "127.0.0.1", &closed, "0", "kept"]).await else {
        panic!("an unreachable target is an error")
    };
    assert!(error.starts_with(b"IOERR"), "{}", String::from_utf8_lossy(&error));
    assert_eq!(source.call(&["GET", "kept"]).await, bulk("1"));
    // The target refuses: the source's password is wrong there.
    let cluster = Cluster::start_pair(
        ServerConfig { requirepass: "one".into(), ..ServerConfig::default() },
        ServerConfig { requirepass: "two".into(), ..ServerConfig::default() },
    )
    .await;
    let mut source = cluster.source().await;
    source.ok(&["AUTH", "one"]).await;
    source.ok(&["SET", "kept", "1"]).await;
    let port = cluster.target_port();
    let Frame::Error(error) = source.call(&["SLOTSMGRTONE", "127.0.0.1", &port, "0", "kept"]).await else {
        panic!("a refused AUTH is an error")
    };
    assert!(String::from_utf8_lossy(&error).contains("AUTH"), "{}", String::from_utf8_lossy(&error));
    assert_eq!(source.call(&["GET", "kept"]).await, bulk("1"));
    // Bad arguments.
    let Frame::Error(error) = source.call(&["SLOTSMGRTONE", "127.0.0.1", "0", "0", "kept"]).await else { panic!() };
    assert_eq!(String::from_utf8_lossy(&error), "ERR invalid value of port (0)");
    let Frame::Error(_) = source.call(&["SLOTSMGRTSLOT", "127.0.0.1", &port, "0", "1024"]).await else { panic!() };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slotsrestore_checks_every_payload_before_writing_any() {
    let cluster = Cluster::start(ServerConfig::default()).await;
    let mut node = cluster.source().await;
    node.ok(&["SET", "a", "1"]).await;
    let Frame::Bulk(payload) = node.call(&["DUMP", "a"]).await else { panic!("DUMP") };
    let payload = payload.to_vec();
    let mut corrupt = payload.clone();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    let reply = node.call_bytes(&[b"SLOTSRESTORE", b"x", b"0", &payload, b"y", b"0", &corrupt]).await;
    assert_eq!(reply, Frame::Error("ERR DUMP payload version or checksum are wrong".into()));
    assert_eq!(node.call(&["EXISTS", "x", "y"]).await, int(0));
    let reply = node.call_bytes(&[b"SLOTSRESTORE", b"x", b"0", &payload, b"y", b"5000", &payload]).await;
    assert_eq!(reply, Frame::Simple("OK".into()));
    assert_eq!(node.call(&["MGET", "x", "y"]).await, Frame::Array(vec![bulk("1"), bulk("1")]));
    let Frame::Integer(ttl) = node.call(&["PTTL", "y"]).await else { panic!() };
    assert!(ttl > 4000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_migration_moves_a_slot_with_big_collections_in_chunks() {
    let cluster = Cluster::start(ServerConfig::default()).await;
    let (mut source, mut target) = (cluster.source().await, cluster.target().await);
    let mut keys = tagged("big", 50);
    for key in &keys {
        source.ok(&["SET", key, "small"]).await;
    }
    let hash = "{big}hash".to_string();
    let list = "{big}list".to_string();
    let set = "{big}set".to_string();
    let zset = "{big}zset".to_string();
    for chunk in 0..10 {
        let mut hset = vec!["HSET".to_string(), hash.clone()];
        let mut rpush = vec!["RPUSH".to_string(), list.clone()];
        let mut sadd = vec!["SADD".to_string(), set.clone()];
        let mut zadd = vec!["ZADD".to_string(), zset.clone()];
        for index in chunk * 100..(chunk + 1) * 100 {
            hset.extend([format!("f{index}"), format!("v{index}")]);
            rpush.push(format!("e{index}"));
            sadd.push(format!("m{index}"));
            zadd.extend([format!("{}.25", index % 37), format!("z{index}")]);
        }
        for command in [hset, rpush, sadd, zadd] {
            let args: Vec<&str> = command.iter().map(String::as_str).collect();
            source.call(&args).await;
        }
    }
    source.call(&["PEXPIRE", &hash, "600000"]).await;
    keys.extend([hash.clone(), list.clone(), set.clone(), zset.clone()]);
    let keys_ref: Vec<&str> = keys.iter().map(String::as_str).collect();
    let before = snapshot(&mut source, &keys_ref).await;
    let slot = u32::from(slot_of(b"{big}")).to_string();
    let port = cluster.target_port();
    let mut moved = 0;
    loop {
        // maxbulks 64, maxbytes 4 KiB, 20 messages per batch: many batches, many chunks.
        let reply =
            source.call(&["SLOTSMGRTTAGSLOT-ASYNC", "127.0.0.1", &port, "5000", "64", "4096", &slot, "20"]).await;
        let Frame::Array(parts) = &reply else { panic!("{reply:?}") };
        let (Frame::Integer(count), Frame::Integer(remaining)) = (&parts[0], &parts[1]) else { panic!("{reply:?}") };
        moved += count;
        if *remaining == 0 {
            break;
        }
    }
    assert_eq!(moved, 54);
    assert_eq!(snapshot(&mut target, &keys_ref).await, before);
    let Frame::Integer(ttl) = target.call(&["PTTL", &hash]).await else { panic!() };
    assert!(ttl > 590_000, "the real TTL replaces the temporary one: {ttl}");
    assert_eq!(target.call(&["PTTL", &list]).await, int(-1), "no TTL stays no TTL");
    assert_eq!(source.call(&["DBSIZE"]).await, int(0));
    assert!(!is_null(&source.call(&["SLOTSMGRT-ASYNC-STATUS"]).await), "the connection stays cached");
    assert_eq!(source.call(&["SLOTSMGRT-ASYNC-CANCEL"]).await, int(1));
    assert!(is_null(&source.call(&["SLOTSMGRT-ASYNC-STATUS"]).await));
    assert_eq!(source.call(&["SLOTSMGRT-ASYNC-FENCE"]).await, Frame::Simple("OK".into()));
    for node in [&mut source, &mut target] {
        assert_eq!(node.call(&["SLOTSCHECK"]).await, Frame::Simple("OK".into()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_in_flight_stay_readable_and_writes_wait_for_the_outcome() {
    let cluster = Cluster::start(ServerConfig::default()).await;
    let mut source = cluster.source().await;
    let mut writer = cluster.source().await;
    source.ok(&["SET", "{t}k", "before"]).await;
    // A target that accepts and never answers: the batch stays in flight until its timeout.
    let (silent, _keep) = client::silent_listener().await;
    source.send(&["SLOTSMGRTTAGONE-ASYNC", "127.0.0.1", &silent, "1500", "0", "0", "{t}k"]).await;
    wait_for_batch(&mut writer, 1).await;
    assert_eq!(writer.call(&["GET", "{t}k"]).await, bulk("before"), "readable while in flight");
    let wrapped = writer.call(&["SLOTSMGRT-EXEC-WRAPPER", "{t}k", "SET", "{t}k", "x"]).await;
    assert_eq!(wrapped, Frame::Array(vec![int(1), Frame::Error("ERR the specified key is being migrated".into())]));
    let wrapped = writer.call(&["SLOTSMGRT-EXEC-WRAPPER", "{t}k", "GET", "{t}k"]).await;
    assert_eq!(wrapped, Frame::Array(vec![int(2), bulk("before")]));
    let wrapped = writer.call(&["SLOTSMGRT-EXEC-WRAPPER", "{t}absent", "GET", "{t}absent"]).await;
    assert_eq!(wrapped, Frame::Array(vec![int(0), Frame::Error("ERR the specified key doesn't exist".into())]));
    let Frame::Error(busy) = writer.call(&["SLOTSMGRTONE-ASYNC", "127.0.0.1", &silent, "0", "0", "0", "x"]).await
    else {
        panic!("one batch per database")
    };
    assert_eq!(String::from_utf8_lossy(&busy), "ERR the specified DB is being migrated");
    // A plain write to a key with the same tag waits until the batch ends (here: times out).
    writer.send(&["SET", "{t}sibling", "after"]).await;
    let Frame::Error(error) = source.receive().await else { panic!("the batch times out") };
    assert!(String::from_utf8_lossy(&error).contains("timeout"), "{}", String::from_utf8_lossy(&error));
    assert_eq!(writer.receive().await, Frame::Simple("OK".into()));
    assert_eq!(source.call(&["GET", "{t}k"]).await, bulk("before"), "a failed batch deletes nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_interrupts_a_batch_and_the_target_refuses_bad_messages() {
    let cluster = Cluster::start(ServerConfig::default()).await;
    let (mut source, mut control) = (cluster.source().await, cluster.source().await);
    source.ok(&["SET", "c", "1"]).await;
    let (silent, _keep) = client::silent_listener().await;
    source.send(&["SLOTSMGRTONE-ASYNC", "127.0.0.1", &silent, "0", "0", "0", "c"]).await;
    wait_for_batch(&mut control, 1).await;
    control.send(&["SLOTSMGRT-ASYNC-FENCE"]).await;
    // Cancel once the fence waits with the caller.
    let mut observer = cluster.source().await;
    wait_for_batch(&mut observer, 2).await;
    assert_eq!(observer.call(&["SLOTSMGRT-ASYNC-CANCEL"]).await, int(1));
    assert_eq!(source.receive().await, Frame::Error("ERR interrupted: canceled".into()));
    assert_eq!(control.receive().await, Frame::Error("ERR interrupted: canceled".into()));
    assert_eq!(source.call(&["GET", "c"]).await, bulk("1"));

    // The target side, message by message.
    let mut target = cluster.target().await;
    let ack = |code: &str, message: &str| Frame::Array(vec![bulk("SLOTSRESTORE-ASYNC-ACK"), bulk(code), bulk(message)]);
    assert_eq!(target.call(&["SLOTSRESTORE-ASYNC-SELECT", "2"]).await, ack("0", "2"));
    assert_eq!(target.call(&["SLOTSRESTORE-ASYNC", "delete", "k"]).await, ack("0", "0"));
    assert_eq!(target.call(&["SLOTSRESTORE-ASYNC", "string", "k", "0", "v"]).await, ack("0", "1"));
    assert_eq!(target.call(&["SLOTSRESTORE-ASYNC", "hash", "h", "9000", "4", "a", "1", "b", "2"]).await, ack("0", "2"));
    assert_eq!(target.call(&["SLOTSRESTORE-ASYNC", "expire", "h", "0"]).await, ack("0", "1"));
    assert_eq!(target.call(&["TTL", "h"]).await, int(-1));
    assert_eq!(
        target.call(&["SLOTSRESTORE-ASYNC", "string", "k", "0", "again"]).await,
        ack("-1", "the specified key already exists (k)")
    );
    assert!(target.closed().await, "a refused message closes the connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_left_by_a_failed_migration_never_resurfaces() {
    let config = ServerConfig { enable_debug_command: server::DebugCommand::Yes, ..ServerConfig::default() };
    let cluster = Cluster::start(config).await;
    let (mut source, mut target, mut pauser) = (cluster.source().await, cluster.target().await, cluster.target().await);
    let port = cluster.target_port();
    source.ok(&["SET", "k", "old"]).await;
    // The target stalls; the restore waits in its socket while the source gives up after
    // 100 ms, keeping its copy. Then the target wakes and applies the restore: a stale copy.
    pauser.send(&["DEBUG", "SLEEP", "1"]).await;
    // Until the pause has begun (the restore must arrive during it): a PING that gets no
    // answer within 50 ms found the target asleep. A fixed delay here failed on a busy machine.
    let mut probe = cluster.target().await;
    loop {
        probe.send(&["PING"]).await;
        if tokio::time::timeout(Duration::from_millis(50), probe.receive()).await.is_err() {
            break;
        }
    }
    let Frame::Error(error) = source.call(&["SLOTSMGRTONE", "127.0.0.1", &port, "100", "k"]).await else {
        panic!("the migration times out")
    };
    assert!(error.starts_with(b"IOERR"), "{}", String::from_utf8_lossy(&error));
    assert_eq!(pauser.receive().await, Frame::Simple("OK".into()));
    // Awake, the target applies the restore waiting in its socket (another connection's GET may
    // be served first).
    let mut applied = Frame::NullBulk;
    for _ in 0..200 {
        applied = target.call(&["GET", "k"]).await;
        if applied == bulk("old") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(applied, bulk("old"), "the target applied the late restore");
    // The source's copy goes on changing, and is deleted.
    source.ok(&["SET", "k", "new"]).await;
    assert_eq!(source.call(&["DEL", "k"]).await, int(1));
    // Codis would now answer 0 ("not here"), sending readers to the target's stale "old".
    let wrapped = source.call(&["SLOTSMGRT-EXEC-WRAPPER", "k", "GET", "k"]).await;
    assert_eq!(wrapped, Frame::Array(vec![int(1), Frame::Error("ERR the specified key is being migrated".into())]));
    let slot = u32::from(slot_of(b"k")).to_string();
    assert_eq!(source.call(&["SLOTSINFO", &slot, "1"]).await, Frame::Array(vec![]));
    // Migrating the slot deletes the stale copy, and counts it until then.
    let reply = source.call(&["SLOTSMGRTSLOT", "127.0.0.1", &port, "0", &slot]).await;
    assert_eq!(reply, Frame::Array(vec![int(1), int(0)]));
    assert_eq!(target.call(&["EXISTS", "k"]).await, int(0));
    let wrapped = source.call(&["SLOTSMGRT-EXEC-WRAPPER", "k", "GET", "k"]).await;
    assert_eq!(wrapped, Frame::Array(vec![int(0), Frame::Error("ERR the specified key doesn't exist".into())]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_huge_batch_of_small_keys_completes_whatever_the_window() {
    // 30,000 keys in one batch is 60,000 messages and as many acknowledgements, under a window
    // of 1 GB: the source bounds what it has in flight by messages too, and reads the
    // acknowledgements as it goes.
    let cluster = Cluster::start(ServerConfig::default()).await;
    let (mut source, mut target) = (cluster.source().await, cluster.target().await);
    let keys = tagged("huge", 30_000);
    for chunk in keys.chunks(1000) {
        let mut mset = vec!["MSET"];
        for key in chunk {
            mset.extend([key.as_str(), "0123456789abcdef"]);
        }
        source.ok(&mset).await;
    }
    let slot = u32::from(slot_of(b"{huge}")).to_string();
    let port = cluster.target_port();
    let reply =
        source.call(&["SLOTSMGRTSLOT-ASYNC", "127.0.0.1", &port, "10000", "0", "1073741824", &slot, "100000"]).await;
    assert_eq!(reply, Frame::Array(vec![int(30_000), int(0)]));
    assert_eq!(target.call(&["DBSIZE"]).await, int(30_000));
}
