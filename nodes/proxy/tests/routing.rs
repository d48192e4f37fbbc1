//! The proxy in front of two of our servers on loopback: routing by slot, split multi-key
//! commands, pipelining order, refused commands, and migration-aware forwarding.

mod common;

use std::time::Duration;

use common::{Client, Front, OurServer, bulk, ok, start_proxy_with, start_server};
use model::{ForwardMethod, Slot, SlotId, slot_of};
use net::{Env, TokioEnv};
use proxy::{Proxy, ProxyConfig};
use resp::{Connection, Frame, Limits};

struct Cluster {
    env: TokioEnv,
    servers: [String; 2],
    proxy: std::sync::Arc<Proxy<TokioEnv>>,
    proxy_addr: String,
    _running: (Front, [OurServer; 2]),
}

/// Slots below 512 on the first server, the rest on the second.
fn split_slots(servers: &[String; 2]) -> Vec<Slot> {
    (0..1024u32)
        .map(|id| Slot {
            id: SlotId::new(id).expect("slot"),
            backend_addr: servers[usize::from(id >= 512)].clone(),
            ..Slot::default()
        })
        .collect()
}

impl Cluster {
    async fn start(config: ProxyConfig) -> Cluster {
        let env = TokioEnv::with_seed(3);
        let (first, second) = (start_server(&env).await, start_server(&env).await);
        let servers = [first.addr.clone(), second.addr.clone()];
        let front = start_proxy_with(&env, config, &split_slots(&servers)).await;
        let (proxy, proxy_addr) = (front.proxy.clone(), front.addr.clone());
        Cluster { env, servers, proxy, proxy_addr, _running: (front, [first, second]) }
    }

    async fn client(&self) -> Client {
        Client::connect(&self.env, &self.proxy_addr).await
    }

    async fn server(&self, index: usize) -> Client {
        Client::connect(&self.env, &self.servers[index]).await
    }
}

/// A key in slot `slot`'s half: `{a}`-style tags picked by search.
fn key_on(server: usize, name: &str) -> String {
    (0..)
        .map(|index| format!("{name}{index}"))
        .find(|key| usize::from(slot_of(key.as_bytes()).index() >= 512) == server)
        .expect("key")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_go_to_the_server_of_their_slot_and_multi_key_commands_are_split() {
    let cluster = Cluster::start(ProxyConfig::default()).await;
    let mut client = cluster.client().await;
    let (left, right) = (key_on(0, "k"), key_on(1, "k"));
    assert_eq!(client.call(&["SET", &left, "L"]).await, ok());
    assert_eq!(client.call(&["SET", &right, "R"]).await, ok());
    assert_eq!(cluster.server(0).await.call(&["GET", &left]).await, bulk("L"));
    assert_eq!(cluster.server(1).await.call(&["GET", &right]).await, bulk("R"));
    assert_eq!(cluster.server(0).await.call(&["EXISTS", &right]).await, Frame::Integer(0));
    let keys: Vec<String> = (0..10).map(|index| format!("m{index}")).collect();
    let mut mset = vec!["MSET"];
    for key in &keys {
        mset.extend([key.as_str(), key.as_str()]);
    }
    assert_eq!(client.call(&mset).await, ok());
    let mut mget = vec!["MGET"];
    mget.extend(keys.iter().map(String::as_str));
    mget.push("missing");
    let mut expected: Vec<Frame> = keys.iter().map(|key| bulk(key)).collect();
    expected.push(Frame::NullBulk);
    assert_eq!(client.call(&mget).await, Frame::Array(expected));
    let mut exists = vec!["EXISTS"];
    exists.extend(keys.iter().map(String::as_str));
    assert_eq!(client.call(&exists).await, Frame::Integer(10));
    let mut del = vec!["DEL"];
    del.extend(keys.iter().map(String::as_str));
    del.push("missing");
    assert_eq!(client.call(&del).await, Frame::Integer(10));
    // MSETNX is atomic, so its keys must share a slot.
    assert_eq!(client.call(&["MSETNX", "{n}a", "1", "{n}b", "2"]).await, Frame::Integer(1));
    assert_eq!(client.call(&["MSETNX", "{n}b", "3", "{n}c", "4"]).await, Frame::Integer(0));
    assert_eq!(
        client.call(&["MGET", "{n}a", "{n}b", "{n}c"]).await,
        Frame::Array(vec![bulk("1"), bulk("2"), Frame::NullBulk])
    );
    let refused = client.call(&["MSETNX", &left, "1", &right, "2"]).await;
    assert!(matches!(&refused, Frame::Error(text) if text.starts_with(b"CROSSSLOT")), "{refused:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_replies_come_back_in_request_order() {
    let cluster = Cluster::start(ProxyConfig::default()).await;
    let mut client = cluster.client().await;
    for index in 0..2000 {
        client.send(&["SET", &format!("p{index}"), &index.to_string()]).await;
        client.send(&["GET", &format!("p{index}")]).await;
    }
    for index in 0..2000 {
        assert_eq!(client.receive().await, ok());
        assert_eq!(client.receive().await, bulk(&index.to_string()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_and_local_commands() {
    let config = ProxyConfig { session_auth: "pw".into(), ..ProxyConfig::default() };
    let cluster = Cluster::start(config).await;
    let mut client = cluster.client().await;
    assert_eq!(client.call(&["GET", "a"]).await, Frame::Error("NOAUTH Authentication required.".into()));
    assert_eq!(client.call(&["AUTH", "no"]).await, Frame::Error("ERR invalid password".into()));
    assert_eq!(client.call(&["AUTH", "pw"]).await, ok());
    assert_eq!(client.call(&["PING"]).await, Frame::Simple("PONG".into()));
    assert_eq!(client.call(&["ECHO", "hi"]).await, bulk("hi"));
    for name in ["FLUSHALL", "slotsmgrt-async-cancel", "SLOTSMGRT-EXEC-WRAPPER"] {
        let reply = client.call(&[name, "x", "y"]).await;
        let expected = format!("ERR handle request, command '{}' is not allowed", name.to_ascii_uppercase());
        assert_eq!(reply, Frame::Error(expected.into()), "{name}");
    }
    assert_eq!(client.call(&["SELECT", "2"]).await, ok());
    assert_eq!(client.call(&["SET", "in2", "x"]).await, ok());
    let mut direct = cluster.server(usize::from(slot_of(b"in2").index() >= 512)).await;
    assert_eq!(direct.call(&["SELECT", "2"]).await, ok());
    assert_eq!(direct.call(&["GET", "in2"]).await, bulk("x"));
    assert_eq!(client.call(&["SELECT", "16"]).await, Frame::Error("ERR DB index is out of range".into()));
    let server = &cluster.servers[0];
    let Frame::Bulk(info) = client.call(&["INFO", server, "server"]).await else { panic!("INFO addr") };
    assert!(String::from_utf8_lossy(&info).contains("redis_version"));
    let Frame::Bulk(info) = client.call(&["INFO"]).await else { panic!("INFO") };
    assert!(String::from_utf8_lossy(&info).contains("total_commands_processed:"), "{info:?}");
    let expected = Frame::Array(vec![Frame::Array(vec![
        Frame::Integer(600),
        bulk(&cluster.servers[1]),
        bulk(""),
        Frame::Array(vec![]),
    ])]);
    assert_eq!(client.call(&["SLOTSMAPPING", "600"]).await, expected);
    let Frame::Array(all) = client.call(&["SLOTSMAPPING"]).await else { panic!("SLOTSMAPPING") };
    assert_eq!(all.len(), 1024);
    assert_eq!(client.call(&["SLOTSMAPPING", "1024"]).await, Frame::Error("ERR invalid slot number = 1024".into()));
    assert_eq!(client.call(&["QUIT"]).await, ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_of_a_migrating_slot_are_served_from_wherever_they_are() {
    for method in [ForwardMethod::Sync, ForwardMethod::SemiAsync] {
        let cluster = Cluster::start(ProxyConfig::default()).await;
        let key = key_on(0, &format!("mig{method:?}"));
        let slot = slot_of(key.as_bytes());
        let mut client = cluster.client().await;
        assert_eq!(client.call(&["SET", &key, "v1"]).await, ok());
        // The slot now belongs to the second server, migrating from the first.
        cluster
            .proxy
            .router()
            .fill(&[Slot {
                id: slot,
                backend_addr: cluster.servers[1].clone(),
                migrate_from: cluster.servers[0].clone(),
                forward_method: method,
                ..Slot::default()
            }])
            .await
            .expect("fill");
        assert_eq!(client.call(&["GET", &key]).await, bulk("v1"), "{method:?}");
        assert_eq!(client.call(&["APPEND", &key, "+"]).await, Frame::Integer(3), "{method:?}");
        assert_eq!(client.call(&["MGET", &key, "other"]).await, Frame::Array(vec![bulk("v1+"), Frame::NullBulk]));
        // A channel of the migrating slot: the publish is delivered, not refused by the wrapper
        // (which runs no pub/sub command) nor pulled as a key.
        assert_eq!(client.call(&["PUBLISH", &key, "hello"]).await, Frame::Integer(0), "{method:?}");
        if method == ForwardMethod::Sync {
            // Sync moves the key on first touch.
            assert_eq!(cluster.server(1).await.call(&["GET", &key]).await, bulk("v1+"));
            assert_eq!(cluster.server(0).await.call(&["EXISTS", &key]).await, Frame::Integer(0));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resp3_clients_get_resp3_replies() {
    let cluster = Cluster::start(ProxyConfig::default()).await;
    let mut client = cluster.client().await;
    let Frame::Map(fields) = client.call(&["HELLO", "3"]).await else { panic!("HELLO 3 answers a map") };
    assert!(fields.contains(&(bulk("proto"), Frame::Integer(3))), "{fields:?}");
    assert_eq!(client.call(&["HSET", "h", "f", "v"]).await, Frame::Integer(1));
    assert_eq!(client.call(&["HGETALL", "h"]).await, Frame::Map(vec![(bulk("f"), bulk("v"))]));
    assert_eq!(client.call(&["GET", "missing"]).await, Frame::Null);
    // A split command merges RESP3 parts as they are.
    assert_eq!(client.call(&["SET", "other", "x"]).await, ok());
    let expected = Frame::Array(vec![bulk("x"), Frame::Null, Frame::Null]);
    assert_eq!(client.call(&["MGET", "other", "missing", "missing2"]).await, expected);
    let Frame::Array(_) = client.call(&["HELLO", "2"]).await else { panic!("HELLO 2 answers a flat array") };
    assert_eq!(client.call(&["GET", "missing"]).await, Frame::NullBulk);
    assert_eq!(client.call(&["HELLO", "4"]).await, Frame::Error("NOPROTO unsupported protocol version".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_walks_every_slot_of_every_server() {
    let cluster = Cluster::start(ProxyConfig::default()).await;
    let mut client = cluster.client().await;
    let keys: Vec<String> = (0..300).map(|index| format!("scan:{index}")).collect();
    for chunk in keys.chunks(50) {
        let mut mset = vec!["MSET"];
        for key in chunk {
            mset.extend([key.as_str(), "v"]);
        }
        assert_eq!(client.call(&mset).await, ok());
    }
    assert_eq!(client.call(&["SET", "other", "x"]).await, ok());
    let mut seen = std::collections::BTreeSet::new();
    let mut cursor = "0".to_string();
    let mut calls = 0;
    loop {
        let Frame::Array(parts) = client.call(&["SCAN", &cursor, "MATCH", "scan:*", "COUNT", "25"]).await else {
            panic!("SCAN replies an array")
        };
        let [Frame::Bulk(next), Frame::Array(found)] = parts.as_slice() else { panic!("{parts:?}") };
        for key in found {
            let Frame::Bulk(key) = key else { panic!("{key:?}") };
            seen.insert(String::from_utf8_lossy(key).into_owned());
        }
        calls += 1;
        cursor = String::from_utf8_lossy(next).into_owned();
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(seen, keys.iter().cloned().collect(), "every key, and only those matching");
    assert!(calls > 1, "the scan took several calls");
    assert_eq!(client.call(&["SCAN", "x"]).await, Frame::Error("ERR invalid cursor".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_of_one_slot_run_atomically_with_watch() {
    let cluster = Cluster::start(ProxyConfig::default()).await;
    let mut client = cluster.client().await;
    let mut other = cluster.client().await;
    let queued = || Frame::Simple("QUEUED".into());
    // Keys sharing a tag share a slot.
    assert_eq!(client.call(&["MULTI"]).await, ok());
    assert_eq!(client.call(&["SET", "{acct}a", "10"]).await, queued());
    assert_eq!(client.call(&["INCRBY", "{acct}a", "5"]).await, queued());
    assert_eq!(client.call(&["MGET", "{acct}a", "{acct}b"]).await, queued());
    assert_eq!(
        client.call(&["EXEC"]).await,
        Frame::Array(vec![ok(), Frame::Integer(15), Frame::Array(vec![bulk("15"), Frame::NullBulk])])
    );
    // WATCH: a write by another client in between aborts EXEC (a null array)...
    assert_eq!(client.call(&["WATCH", "{acct}a"]).await, ok());
    assert_eq!(client.call(&["GET", "{acct}a"]).await, bulk("15"));
    assert_eq!(other.call(&["SET", "{acct}a", "99"]).await, ok());
    assert_eq!(client.call(&["MULTI"]).await, ok());
    assert_eq!(client.call(&["SET", "{acct}a", "16"]).await, queued());
    assert_eq!(client.call(&["EXEC"]).await, Frame::NullArray);
    assert_eq!(other.call(&["GET", "{acct}a"]).await, bulk("99"));
    // ... and without one, EXEC runs.
    assert_eq!(client.call(&["WATCH", "{acct}a", "{acct}b"]).await, ok());
    assert_eq!(client.call(&["MULTI"]).await, ok());
    assert_eq!(client.call(&["SET", "{acct}b", "1"]).await, queued());
    assert_eq!(client.call(&["EXEC"]).await, Frame::Array(vec![ok()]));
    // A key of another slot is refused and the transaction discarded.
    assert_eq!(client.call(&["MULTI"]).await, ok());
    assert_eq!(client.call(&["SET", "{acct}a", "1"]).await, queued());
    let error = |frame: Frame| match frame {
        Frame::Error(text) => String::from_utf8_lossy(&text).into_owned(),
        other => panic!("expected an error, got {other:?}"),
    };
    assert!(error(client.call(&["SET", "{other}a", "1"]).await).starts_with("CROSSSLOT"));
    assert!(error(client.call(&["EXEC"]).await).starts_with("EXECABORT"));
    assert_eq!(other.call(&["GET", "{acct}a"]).await, bulk("99"));
    // Errors Redis gives.
    assert!(error(client.call(&["EXEC"]).await).contains("EXEC without MULTI"));
    assert!(error(client.call(&["DISCARD"]).await).contains("DISCARD without MULTI"));
    assert!(error(client.call(&["WATCH", "{x}1", "{y}1"]).await).starts_with("CROSSSLOT"));
    assert_eq!(client.call(&["MULTI"]).await, ok());
    assert!(error(client.call(&["MULTI"]).await).contains("can not be nested"));
    assert_eq!(client.call(&["INCR", "{acct}n"]).await, queued());
    assert_eq!(client.call(&["DISCARD"]).await, ok());
    assert_eq!(other.call(&["GET", "{acct}n"]).await, Frame::NullBulk);
    // Pipelined: replies stay in order around the transaction.
    for args in [&["SET", "{p}x", "1"][..], &["MULTI"], &["INCR", "{p}x"], &["EXEC"], &["GET", "{p}x"]] {
        client.send(args).await;
    }
    assert_eq!(client.receive().await, ok());
    assert_eq!(client.receive().await, ok());
    assert_eq!(client.receive().await, queued());
    assert_eq!(client.receive().await, Frame::Array(vec![Frame::Integer(2)]));
    assert_eq!(client.receive().await, bulk("2"));
    // The slot moves to the other group after WATCH: EXEC fails as if the key had changed.
    let slot = slot_of(b"{acct}a").index();
    let owner = usize::from(slot >= 512);
    let id = SlotId::new(slot as u32).expect("slot");
    assert_eq!(client.call(&["WATCH", "{acct}a"]).await, ok());
    let moved = Slot { id, backend_addr: cluster.servers[1 - owner].clone(), ..Slot::default() };
    cluster.proxy.router().fill(&[moved]).await.expect("fill");
    assert_eq!(client.call(&["MULTI"]).await, ok());
    assert_eq!(client.call(&["SET", "{acct}a", "1"]).await, queued());
    assert_eq!(client.call(&["EXEC"]).await, Frame::NullArray);
    // While the slot migrates, a transaction is refused with TRYAGAIN.
    let migrating = Slot {
        id,
        backend_addr: cluster.servers[owner].clone(),
        migrate_from: cluster.servers[1 - owner].clone(),
        ..Slot::default()
    };
    cluster.proxy.router().fill(&[migrating]).await.expect("fill");
    assert_eq!(client.call(&["MULTI"]).await, ok());
    assert_eq!(client.call(&["SET", "{acct}a", "1"]).await, queued());
    assert!(error(client.call(&["EXEC"]).await).starts_with("TRYAGAIN"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_hear_messages_published_to_any_group() {
    let cluster = Cluster::start(ProxyConfig::default()).await;
    let mut subscriber = cluster.client().await;
    let mut publisher = cluster.client().await;
    let (left, right) = (key_on(0, "news"), key_on(1, "news"));
    let push = |kind: &str, name: &str, count: i64| Frame::Array(vec![bulk(kind), bulk(name), Frame::Integer(count)]);
    let message = |channel: &str, text: &str| Frame::Array(vec![bulk("message"), bulk(channel), bulk(text)]);
    subscriber.send(&["SUBSCRIBE", &left, &right]).await;
    assert_eq!(subscriber.receive().await, push("subscribe", &left, 1));
    assert_eq!(subscriber.receive().await, push("subscribe", &right, 2));
    assert_eq!(subscriber.call(&["PSUBSCRIBE", "alerts.*"]).await, push("psubscribe", "alerts.*", 3));
    // Through the proxy, to each channel's group, and straight to each server: all heard.
    assert_eq!(publisher.call(&["PUBLISH", &left, "one"]).await, Frame::Integer(1));
    assert_eq!(subscriber.receive().await, message(&left, "one"));
    assert_eq!(publisher.call(&["PUBLISH", &right, "two"]).await, Frame::Integer(1));
    assert_eq!(subscriber.receive().await, message(&right, "two"));
    for server in 0..2 {
        let text = format!("direct{server}");
        assert_eq!(cluster.server(server).await.call(&["PUBLISH", &left, &text]).await, Frame::Integer(1));
        assert_eq!(subscriber.receive().await, message(&left, &text));
        assert_eq!(cluster.server(server).await.call(&["PUBLISH", "alerts.fire", &text]).await, Frame::Integer(1));
        assert_eq!(
            subscriber.receive().await,
            Frame::Array(vec![bulk("pmessage"), bulk("alerts.*"), bulk("alerts.fire"), bulk(&text)])
        );
    }
    // In subscribed mode a RESP2 client may only (un)subscribe, PING and QUIT.
    assert_eq!(subscriber.call(&["PING"]).await, Frame::Array(vec![bulk("pong"), bulk("")]));
    assert!(matches!(subscriber.call(&["GET", "k"]).await, Frame::Error(_)));
    assert_eq!(subscriber.call(&["UNSUBSCRIBE", &left]).await, push("unsubscribe", &left, 2));
    assert_eq!(publisher.call(&["PUBLISH", &left, "unheard"]).await, Frame::Integer(0));
    subscriber.send(&["UNSUBSCRIBE"]).await;
    assert_eq!(subscriber.receive().await, push("unsubscribe", &right, 1));
    subscriber.send(&["PUNSUBSCRIBE"]).await;
    assert_eq!(subscriber.receive().await, push("punsubscribe", "alerts.*", 0));
    // Back in normal mode.
    assert_eq!(subscriber.call(&["SET", "k", "v"]).await, ok());
    assert_eq!(subscriber.call(&["GET", "k"]).await, bulk("v"));
    assert_eq!(publisher.call(&["PUBLISH", &right, "unheard"]).await, Frame::Integer(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resp3_subscribers_get_pushes_and_may_run_commands() {
    let cluster = Cluster::start(ProxyConfig::default()).await;
    let mut subscriber = cluster.client().await;
    let mut publisher = cluster.client().await;
    assert!(matches!(subscriber.call(&["HELLO", "3"]).await, Frame::Map(_)));
    assert_eq!(
        subscriber.call(&["SUBSCRIBE", "chat"]).await,
        Frame::Push(vec![bulk("subscribe"), bulk("chat"), Frame::Integer(1)])
    );
    assert_eq!(subscriber.call(&["SET", "k3", "v"]).await, ok());
    assert_eq!(publisher.call(&["PUBLISH", "chat", "hi"]).await, Frame::Integer(1));
    assert_eq!(subscriber.receive().await, Frame::Push(vec![bulk("message"), bulk("chat"), bulk("hi")]));
    assert_eq!(subscriber.call(&["GET", "k3"]).await, bulk("v"));
}

/// Waits (up to 10 s) until `pool` reports `addr` in `health`; returns how long it has been in
/// trouble then.
async fn wait_health(pool: &proxy::backend::Pool<TokioEnv>, addr: &str, health: proxy::backend::Health) -> Duration {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let found = pool.health().into_iter().find(|(at, _, _)| at == addr);
        let now = found.as_ref().map(|(_, health, _)| *health);
        if let Some((_, _, trouble)) = found
            && now == Some(health)
        {
            return trouble;
        }
        assert!(tokio::time::Instant::now() < deadline, "{addr} stayed {now:?}, not {health:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_pings_tell_each_backends_health() {
    use proxy::backend::{BackendOptions, Health, Pool};
    let env = TokioEnv::with_seed(5);
    let options = BackendOptions { ping_period: Duration::from_millis(50), ..BackendOptions::default() };
    let pool = Pool::new(env.clone(), options);
    // A live server is up before anyone sent it a request, and down once it is gone.
    let OurServer { addr: live, stop } = start_server(&env).await;
    pool.get(&live);
    wait_health(&pool, &live, Health::Up).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let trouble = wait_health(&pool, &live, Health::Up).await;
    assert!(trouble < Duration::from_secs(1), "a live backend answering pings was in trouble for {trouble:?}");
    drop(stop);
    wait_health(&pool, &live, Health::Down).await;
    // Trouble counts from when it went down, and keeps counting while it stays down.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let down_for = wait_health(&pool, &live, Health::Down).await;
    assert!(down_for >= Duration::from_millis(300), "down for {down_for:?}");
    // A server that accepts and never answers (a stopped process: its kernel accepts for it) is
    // not up, and is in trouble from its first unanswered PING, sent at once, reconnections
    // included: what the dashboard's failover asks proxies about.
    let silent = env.bind("127.0.0.1:0").await.expect("bind");
    let silent_addr = silent.local_addr().expect("addr").to_string();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream);
        }
    });
    pool.get(&silent_addr);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let silent_for = wait_health(&pool, &silent_addr, Health::Down).await;
    assert!(silent_for >= Duration::from_millis(250), "silent for {silent_for:?}");
    // With connections given up after 200 ms of silence, the trouble outlives the reconnects
    // (each opens at once, and proves nothing).
    let impatient = BackendOptions {
        ping_period: Duration::from_millis(50),
        recv_timeout: Duration::from_millis(200),
        ..BackendOptions::default()
    };
    let reconnecting = Pool::new(env.clone(), impatient);
    reconnecting.get(&silent_addr);
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let across = wait_health(&reconnecting, &silent_addr, Health::Down).await;
    assert!(across >= Duration::from_millis(900), "trouble restarted at a reconnect: {across:?}");
    // A server still loading its data answers PING with LOADING: stale.
    let listener = env.bind("127.0.0.1:0").await.expect("bind");
    let loading = listener.local_addr().expect("addr").to_string();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut connection = Connection::new(stream, Limits::default());
                while let Ok(Some(_)) = connection.read_request().await {
                    connection.write_frame(&Frame::error("LOADING Redis is loading the dataset in memory"));
                    if connection.flush().await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    pool.get(&loading);
    wait_health(&pool, &loading, Health::Stale).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_go_to_a_replica_that_is_up_and_fall_back_to_the_primary() {
    let config = ProxyConfig { backend_ping_period: Duration::from_millis(50), ..ProxyConfig::default() };
    let cluster = Cluster::start(config).await;
    // A stand-in for a replica (replication comes with the durability work): a server whose
    // copy of the key differs, so the test sees where each read went.
    let OurServer { addr: replica, stop: stop_replica } = start_server(&cluster.env).await;
    let key = key_on(0, "r");
    assert_eq!(cluster.server(0).await.call(&["SET", &key, "primary"]).await, ok());
    assert_eq!(Client::connect(&cluster.env, &replica).await.call(&["SET", &key, "replica"]).await, ok());
    let slot = Slot {
        id: SlotId::new(slot_of(key.as_bytes()).index() as u32).expect("slot"),
        backend_addr: cluster.servers[0].clone(),
        replica_groups: vec![vec![replica.clone()]],
        ..Slot::default()
    };
    cluster.proxy.router().fill(&[slot]).await.expect("fill");
    let replicas = cluster.proxy.router().replica_pool().expect("replica reads are on by default");
    wait_health(replicas, &replica, proxy::backend::Health::Up).await;
    let mut client = cluster.client().await;
    assert_eq!(client.call(&["GET", &key]).await, bulk("replica"));
    // Writes, and reads that must see the master, go to the primary.
    assert_eq!(client.call(&["SET", &key, "new"]).await, ok());
    assert_eq!(cluster.server(0).await.call(&["GET", &key]).await, bulk("new"));
    assert_eq!(client.call(&["GET", &key]).await, bulk("replica"));
    // Once the replica is down, reads fall back to the primary.
    drop(stop_replica);
    wait_health(replicas, &replica, proxy::backend::Health::Down).await;
    assert_eq!(client.call(&["GET", &key]).await, bulk("new"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_slot_holds_only_its_own_requests() {
    let cluster = Cluster::start(ProxyConfig::default()).await;
    let (locked_key, free_key) = (key_on(0, "held"), key_on(1, "free"));
    let locked_slot = SlotId::new(slot_of(locked_key.as_bytes()).index() as u32).expect("slot");
    let route =
        |locked: bool| Slot { id: locked_slot, locked, backend_addr: cluster.servers[0].clone(), ..Slot::default() };
    cluster.proxy.router().fill(&[route(true)]).await.expect("lock");
    let mut client = cluster.client().await;
    for args in [&["SET", &locked_key, "1"][..], &["GET", &locked_key], &["SET", &free_key, "2"]] {
        client.send(args).await;
    }
    // The write to the other slot runs while the locked slot's requests wait...
    let mut server = cluster.server(1).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while server.call(&["GET", &free_key]).await != bulk("2") {
        assert!(tokio::time::Instant::now() < deadline, "the other slot's write waited for the locked slot");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(cluster.server(0).await.call(&["EXISTS", &locked_key]).await, Frame::Integer(0));
    // ... and once unlocked, every reply comes back in request order.
    cluster.proxy.router().fill(&[route(false)]).await.expect("unlock");
    assert_eq!(client.receive().await, ok());
    assert_eq!(client.receive().await, bulk("1"));
    assert_eq!(client.receive().await, ok());
}

/// Synchronous mode (`sync_replicas` in the table): a write is answered once a replica has it
/// (single keys, split `MSET`, transactions); with the replica gone, writes fail with
/// `NOREPLICAS` after `backend_sync_timeout`, and so do reads of what no replica has.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_in_synchronous_mode_wait_for_a_replica() {
    let config = ProxyConfig { backend_sync_timeout: Duration::from_millis(300), ..ProxyConfig::default() };
    let cluster = Cluster::start(config).await;
    let master = cluster.servers[0].clone();
    let (host, port) = master.rsplit_once(':').expect("host:port");
    let mut replica = cluster.server(1).await;
    assert_eq!(replica.call(&["REPLICAOF", host, port]).await, ok());
    for _ in 0..500 {
        let Frame::Bulk(info) = replica.call(&["INFO", "replication"]).await else { panic!("INFO") };
        if String::from_utf8_lossy(&info).contains("master_link_status:up") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let slots: Vec<Slot> = (0..1024u32)
        .map(|id| Slot {
            id: SlotId::new(id).expect("slot"),
            backend_addr: master.clone(),
            sync_replicas: 1,
            ..Slot::default()
        })
        .collect();
    cluster.proxy.router().fill(&slots).await.expect("fill");
    let mut client = cluster.client().await;
    assert_eq!(client.call(&["SET", "k", "v"]).await, ok());
    // Answered only once the replica had it: it reads there at once.
    assert_eq!(replica.call(&["GET", "k"]).await, bulk("v"));
    assert_eq!(client.call(&["MSET", "a", "1", "b", "2"]).await, ok());
    assert_eq!(replica.call(&["MGET", "a", "b"]).await, Frame::Array(vec![bulk("1"), bulk("2")]));
    assert_eq!(client.call(&["MULTI"]).await, ok());
    assert_eq!(client.call(&["INCR", "{t}n"]).await, Frame::Simple("QUEUED".into()));
    assert_eq!(client.call(&["EXEC"]).await, Frame::Array(vec![Frame::Integer(1)]));
    assert_eq!(replica.call(&["GET", "{t}n"]).await, bulk("1"));
    // Reads of what the replica has answer at once.
    assert_eq!(client.call(&["GET", "k"]).await, bulk("v"));
    // The replica goes away: writes cannot be promised, and neither can a read of a value no
    // replica has (a failover could take it back).
    assert_eq!(replica.call(&["REPLICAOF", "NO", "ONE"]).await, ok());
    let Frame::Error(refused) = client.call(&["SET", "k", "w"]).await else { panic!("a write without its replica") };
    assert!(String::from_utf8_lossy(&refused).starts_with("NOREPLICAS"), "{refused:?}");
    let Frame::Error(refused) = client.call(&["GET", "k"]).await else { panic!("a read of an unreplicated value") };
    assert!(String::from_utf8_lossy(&refused).starts_with("NOREPLICAS"), "{refused:?}");
    let master_says = Client::connect(&cluster.env, &master).await.call(&["GET", "k"]).await;
    assert_eq!(master_says, bulk("w"), "the write may still be applied, as the error says");
    // Meanwhile requests fail at once rather than each holding the connection for the timeout;
    // once the replica is back, they go through again.
    let Frame::Error(fast) = client.call(&["SET", "k", "x"]).await else { panic!("no replica yet") };
    assert!(String::from_utf8_lossy(&fast).contains("not sent"), "{fast:?}");
    assert_eq!(replica.call(&["REPLICAOF", host, port]).await, ok());
    let mut back = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if client.call(&["SET", "k", "y"]).await == ok() {
            back = true;
            break;
        }
    }
    assert!(back, "writes go through once the replica is back");
    assert_eq!(replica.call(&["GET", "k"]).await, bulk("y"));
}

/// The table's epoch reaches the servers: a proxy connecting to a backend tells it its group's
/// epoch (`EPOCH`), so a master that was superseded by a promotion (it was not confirmed at that
/// epoch) refuses writes as soon as a proxy that knows reaches it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_tells_backends_their_groups_epoch() {
    let cluster = Cluster::start(ProxyConfig::default()).await;
    let OurServer { addr: server, stop: _stop } = start_server(&cluster.env).await;
    let key = key_on(0, "e");
    let slot = Slot {
        id: SlotId::new(slot_of(key.as_bytes()).index() as u32).expect("slot"),
        backend_addr: server.clone(),
        epoch: 2,
        ..Slot::default()
    };
    cluster.proxy.router().fill(&[slot]).await.expect("fill");
    let mut client = cluster.client().await;
    let Frame::Error(refused) = client.call(&["SET", &key, "v"]).await else { panic!("a superseded master wrote") };
    assert!(String::from_utf8_lossy(&refused).starts_with("READONLY"), "{refused:?}");
    let mut direct = Client::connect(&cluster.env, &server).await;
    assert_eq!(direct.call(&["EPOCH"]).await, Frame::Integer(2));
    // The dashboard confirms the group's master at the epoch: it takes writes again.
    assert_eq!(direct.call(&["EPOCH", "2", "MASTER"]).await, Frame::Integer(2));
    assert_eq!(client.call(&["SET", &key, "v"]).await, ok());
}

/// A slot moved away from a backend that went silent with requests in flight (a master that
/// died without a word) is not held up for `backend_recv_timeout`: after a second the table
/// change drops that backend's connections, its requests get an error, and the slot is served
/// at its new place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_change_does_not_wait_for_a_silent_backend() {
    let cluster = Cluster::start(ProxyConfig::default()).await;
    let silent = cluster.env.bind("127.0.0.1:0").await.expect("bind");
    let silent_addr = silent.local_addr().expect("addr").to_string();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream);
        }
    });
    let key = key_on(0, "s");
    let id = SlotId::new(slot_of(key.as_bytes()).index() as u32).expect("slot");
    let to = |addr: &str| Slot { id, backend_addr: addr.to_string(), ..Slot::default() };
    cluster.proxy.router().fill(&[to(&silent_addr)]).await.expect("fill");
    let mut client = cluster.client().await;
    client.send(&["SET", &key, "lost"]).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let moved = tokio::time::timeout(Duration::from_secs(10), cluster.proxy.router().fill(&[to(&cluster.servers[0])]))
        .await
        .expect("the table change is not held for backend_recv_timeout (30 s)");
    moved.expect("fill");
    assert!(matches!(client.receive().await, Frame::Error(_)), "the request in flight fails");
    assert_eq!(client.call(&["SET", &key, "kept"]).await, ok());
    assert_eq!(cluster.server(0).await.call(&["GET", &key]).await, bulk("kept"));
}
