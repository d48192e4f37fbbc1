//! Replication with a real `redis-server` 7.0, both ways: a stock replica follows ours (a full
//! copy, the stream, a resume from the backlog after its link drops, `WAIT`,
//! `min-replicas-to-write`), and ours follows a stock master and is promoted.

mod common;

use std::time::Duration;

use net::TokioEnv;
use resp::Frame;
use server::ServerConfig;

use common::{Redis, Served, temp_dir};

fn ok() -> Frame {
    Frame::Simple("OK".into())
}

/// One field of `INFO section`.
async fn info(mut call: impl AsyncFnMut(&[&str]) -> Frame, section: &str, field: &str) -> String {
    let Frame::Bulk(text) = call(&["INFO", section]).await else { panic!("INFO") };
    let text = String::from_utf8_lossy(&text).into_owned();
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")).map(str::to_string))
        .unwrap_or_else(|| panic!("no {field} in {text}"))
}

/// Waits until the replica has everything the master has sent (equal offsets).
async fn caught_up(master: &mut Served, replica: &mut Redis) {
    for _ in 0..500 {
        let sent = info(async |args: &[&str]| master.call(args).await, "replication", "master_repl_offset").await;
        let link = info(async |args: &[&str]| replica.call(args).await, "replication", "master_link_status").await;
        let had = info(async |args: &[&str]| replica.call(args).await, "replication", "master_repl_offset").await;
        if link == "up" && sent == had {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the replica never caught up");
}

/// The same reads on both servers give the same replies.
async fn same(master: &mut Served, replica: &mut Redis, reads: &[&[&str]]) {
    for read in reads {
        assert_eq!(replica.call(read).await, master.call(read).await, "{read:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_server_replica_follows_ours_and_resumes_from_the_backlog() {
    let env = TokioEnv::with_seed(7);
    let dir = temp_dir("replica-of-ours");
    let config = ServerConfig { port: 0, dir: dir.to_string_lossy().into_owned(), ..ServerConfig::default() };
    let mut master = Served::start(&env, config).await;
    assert_eq!(master.call(&["SET", "before", "the copy"]).await, ok());
    assert_eq!(master.call(&["RPUSH", "list", "a", "b", "c"]).await, Frame::Integer(3));
    let port = master.addr.rsplit_once(':').expect("host:port").1.to_string();
    let mut replica = Redis::start_with(&env, &dir, &["--replicaof", "127.0.0.1", &port]).await;
    caught_up(&mut master, &mut replica).await;
    assert_eq!(info(async |args: &[&str]| master.call(args).await, "stats", "sync_full").await, "1");
    // The stream: writes in other databases, expiries as absolute times, a transaction, an
    // expired key deleted.
    for command in [
        &["SET", "after", "the copy"][..],
        &["INCRBYFLOAT", "float", "2.5"],
        &["SELECT", "4"],
        &["HSET", "h", "f", "v"],
        &["SET", "ttl", "x", "EX", "600"],
        &["SET", "gone", "x", "PX", "1"],
        &["SELECT", "0"],
        &["MULTI"],
        &["INCR", "n"],
        &["LPOP", "list"],
        &["EXEC"],
    ] {
        assert!(!matches!(master.call(command).await, Frame::Error(_)), "{command:?}");
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(master.call(&["SELECT", "4"]).await, ok());
    assert_eq!(master.call(&["GET", "gone"]).await, Frame::NullBulk);
    assert_eq!(master.call(&["SELECT", "0"]).await, ok());
    caught_up(&mut master, &mut replica).await;
    same(
        &mut master,
        &mut replica,
        &[&["MGET", "before", "after", "float", "n"], &["LRANGE", "list", "0", "-1"], &["DBSIZE"]],
    )
    .await;
    assert_eq!(replica.call(&["SELECT", "4"]).await, ok());
    assert_eq!(master.call(&["SELECT", "4"]).await, ok());
    same(&mut master, &mut replica, &[&["HGET", "h", "f"], &["DBSIZE"], &["EXISTS", "gone"]]).await;
    let Frame::Integer(left) = replica.call(&["TTL", "ttl"]).await else { panic!("TTL") };
    assert!((590..=600).contains(&left), "{left}");
    // ROLE and INFO name the replica.
    let Frame::Array(role) = master.call(&["ROLE"]).await else { panic!("ROLE") };
    assert_eq!(role[0], Frame::Bulk("master".into()));
    assert_eq!(info(async |args: &[&str]| master.call(args).await, "replication", "connected_slaves").await, "1");
    // The replica's link drops; it resumes from the backlog instead of copying again.
    assert_eq!(replica.call(&["CLIENT", "KILL", "TYPE", "master"]).await, Frame::Integer(1));
    assert_eq!(master.call(&["SET", "while", "reconnecting"]).await, ok());
    caught_up(&mut master, &mut replica).await;
    assert_eq!(info(async |args: &[&str]| master.call(args).await, "stats", "sync_partial_ok").await, "1");
    assert_eq!(info(async |args: &[&str]| master.call(args).await, "stats", "sync_full").await, "1");
    same(&mut master, &mut replica, &[&["GET", "while"], &["DBSIZE"]]).await;
    // WAIT: until the replica acknowledged the write; with more replicas asked for than there
    // are, until the timeout, answering how many did.
    assert_eq!(master.call(&["SET", "acknowledged", "yes"]).await, ok());
    assert_eq!(master.call(&["WAIT", "1", "5000"]).await, Frame::Integer(1));
    assert_eq!(master.call(&["WAIT", "2", "100"]).await, Frame::Integer(1));
    // min-replicas-to-write: writes need that many replicas acknowledging lately.
    assert_eq!(master.call(&["CONFIG", "SET", "min-replicas-to-write", "2"]).await, ok());
    let Frame::Error(refused) = master.call(&["SET", "k", "v"]).await else { panic!("a write without replicas") };
    assert!(refused.starts_with(b"NOREPLICAS"), "{refused:?}");
    assert_eq!(master.call(&["CONFIG", "SET", "min-replicas-to-write", "1"]).await, ok());
    assert_eq!(master.call(&["SET", "k", "v"]).await, ok());
    drop(replica);
    master.stop().await;
    std::fs::remove_dir_all(&dir).expect("clean up");
}

/// Waits until our replica has applied everything `master` has sent.
async fn ours_caught_up(master: &mut Redis, replica: &mut Served) {
    for _ in 0..500 {
        let sent = info(async |args: &[&str]| master.call(args).await, "replication", "master_repl_offset").await;
        let link = info(async |args: &[&str]| replica.call(args).await, "replication", "master_link_status").await;
        let had = info(async |args: &[&str]| replica.call(args).await, "replication", "slave_repl_offset").await;
        if link == "up" && sent == had {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("our replica never caught up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ours_follows_a_redis_server_master_and_takes_over_with_replicaof_no_one() {
    let env = TokioEnv::with_seed(8);
    let dir = temp_dir("ours-of-redis");
    let mut master = Redis::start_with(&env, &dir, &["--appendonly", "no", "--requirepass", "secret"]).await;
    assert_eq!(master.call(&["AUTH", "secret"]).await, ok());
    assert_eq!(master.call(&["SET", "before", "the copy"]).await, ok());
    assert_eq!(master.call(&["ZADD", "z", "1", "a", "2", "b"]).await, Frame::Integer(2));
    let config = ServerConfig {
        port: 0,
        dir: dir.to_string_lossy().into_owned(),
        masterauth: "secret".into(),
        ..ServerConfig::default()
    };
    let mut replica = Served::start(&env, config).await;
    assert_eq!(replica.call(&["SET", "mine", "lost in the copy"]).await, ok());
    let port = master.port.to_string();
    assert_eq!(replica.call(&["REPLICAOF", "127.0.0.1", &port]).await, ok());
    ours_caught_up(&mut master, &mut replica).await;
    for command in [
        &["SET", "after", "the copy"][..],
        &["SELECT", "2"],
        &["SADD", "s", "x", "y"],
        &["SET", "ttl", "v", "EX", "600"],
        &["SELECT", "0"],
        &["MULTI"],
        &["INCR", "n"],
        &["ZINCRBY", "z", "5", "a"],
        &["EXEC"],
        &["SET", "gone", "x", "PX", "1"],
    ] {
        assert!(!matches!(master.call(command).await, Frame::Error(_)), "{command:?}");
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(master.call(&["GET", "gone"]).await, Frame::NullBulk);
    ours_caught_up(&mut master, &mut replica).await;
    for read in
        [&["MGET", "before", "after", "mine", "n", "gone"][..], &["ZRANGE", "z", "0", "-1", "WITHSCORES"], &["DBSIZE"]]
    {
        assert_eq!(replica.call(read).await, master.call(read).await, "{read:?}");
    }
    assert_eq!(replica.call(&["SELECT", "2"]).await, ok());
    assert_eq!(
        replica.call(&["SMEMBERS", "s"]).await,
        Frame::Array(vec![Frame::Bulk("x".into()), Frame::Bulk("y".into())])
    );
    let Frame::Integer(left) = replica.call(&["TTL", "ttl"]).await else { panic!("TTL") };
    assert!((590..=600).contains(&left), "{left}");
    assert_eq!(replica.call(&["SELECT", "0"]).await, ok());
    // The link drops while the master's stream is in database 3; resumed from the backlog, the
    // stream carries no new SELECT, and the writes must still land in database 3.
    assert_eq!(master.call(&["SELECT", "3"]).await, ok());
    assert_eq!(master.call(&["SET", "in-three", "before"]).await, ok());
    ours_caught_up(&mut master, &mut replica).await;
    assert_eq!(master.call(&["CLIENT", "KILL", "TYPE", "replica"]).await, Frame::Integer(1));
    assert_eq!(master.call(&["SET", "in-three", "after"]).await, ok());
    ours_caught_up(&mut master, &mut replica).await;
    assert_eq!(info(async |args: &[&str]| master.call(args).await, "stats", "sync_partial_ok").await, "1");
    assert_eq!(replica.call(&["SELECT", "3"]).await, ok());
    assert_eq!(replica.call(&["GET", "in-three"]).await, Frame::Bulk("after".into()));
    assert_eq!(replica.call(&["SELECT", "0"]).await, ok());
    assert_eq!(master.call(&["SELECT", "0"]).await, ok());
    // A replica is read-only, and says whom it follows.
    let Frame::Error(refused) = replica.call(&["SET", "mine", "again"]).await else { panic!("a write on a replica") };
    assert!(refused.starts_with(b"READONLY"), "{refused:?}");
    let Frame::Array(role) = replica.call(&["ROLE"]).await else { panic!("ROLE") };
    assert_eq!(role[..2], [Frame::Bulk("slave".into()), Frame::Bulk("127.0.0.1".into())]);
    assert_eq!(role[3], Frame::Bulk("connected".into()));
    // Promoted: it keeps the data and takes writes.
    assert_eq!(replica.call(&["REPLICAOF", "NO", "ONE"]).await, ok());
    assert_eq!(replica.call(&["INCR", "n"]).await, Frame::Integer(2));
    assert_eq!(info(async |args: &[&str]| replica.call(args).await, "replication", "role").await, "master");
    drop(master);
    replica.stop().await;
    std::fs::remove_dir_all(&dir).expect("clean up");
}

/// A stop (SIGTERM, `SHUTDOWN`) gives replicas the last writes: it asks them to acknowledge
/// (`REPLCONF GETACK *`) and stops only once they have (or at `shutdown-timeout`, 10 s here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_waits_until_replicas_acknowledge_the_last_writes() {
    let env = TokioEnv::with_seed(1);
    let mut master = Served::start(&env, ServerConfig::default()).await;
    let (mut replica, start) = common::attach_replica(&env, &master.addr).await;
    assert_eq!(master.call(&["SET", "a", "1"]).await, ok());
    let stopping = tokio::spawn(master.stop());
    let mut received = Vec::new();
    let mut consumed = 0;
    loop {
        let before = replica.buffered_input_len();
        match replica.try_read_request().expect("the stream decodes") {
            Some(request) => {
                consumed += (before - replica.buffered_input_len()) as u64;
                let args: Vec<String> = request.args().map(|arg| String::from_utf8_lossy(arg).into_owned()).collect();
                if args[..2] == ["REPLCONF", "GETACK"] {
                    break;
                }
                received.push(args.join(" "));
            }
            None => assert!(replica.read_more().await.expect("the stream") > 0, "the master closed the link"),
        }
    }
    assert!(received.contains(&"SET a 1".to_string()), "the last write comes before GETACK: {received:?}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!stopping.is_finished(), "the server stopped before its replica acknowledged");
    replica.write_request(&resp::Request::from_args(["REPLCONF", "ACK", &(start + consumed).to_string()]));
    replica.flush().await.expect("acknowledge");
    tokio::time::timeout(Duration::from_secs(5), stopping)
        .await
        .expect("the server stops once its replica acknowledged")
        .expect("the stop");
}

/// `EPOCH`: a master told of a newer failover epoch refuses writes (a replica was promoted in its
/// place) until it is confirmed master again; an older epoch than the server's is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_told_of_a_newer_epoch_is_fenced() {
    let env = TokioEnv::with_seed(8);
    let dir = temp_dir("epoch-fence");
    let config = ServerConfig { port: 0, dir: dir.to_string_lossy().into_owned(), ..ServerConfig::default() };
    let mut master = Served::start(&env, config).await;
    assert_eq!(master.call(&["EPOCH"]).await, Frame::Integer(0));
    assert_eq!(master.call(&["SET", "k", "1"]).await, ok());
    assert_eq!(master.call(&["EPOCH", "2"]).await, Frame::Integer(2));
    let Frame::Error(refused) = master.call(&["SET", "k", "2"]).await else { panic!("a fenced master wrote") };
    let refused = String::from_utf8_lossy(&refused);
    assert!(refused.starts_with("READONLY") && refused.contains("epoch 2"), "{refused}");
    assert_eq!(master.call(&["GET", "k"]).await, Frame::Bulk("1".into()), "reads still answer");
    assert_eq!(info(async |args: &[&str]| master.call(args).await, "replication", "codis_fenced").await, "1");
    let Frame::Error(stale) = master.call(&["EPOCH", "1"]).await else { panic!("an older epoch was taken") };
    let stale = String::from_utf8_lossy(&stale);
    assert!(stale.starts_with("STALE"), "{stale}");
    assert!(matches!(master.call(&["EPOCH", "2", "SLAVE"]).await, Frame::Error(_)));
    assert_eq!(master.call(&["EPOCH", "2", "MASTER"]).await, Frame::Integer(2));
    assert_eq!(master.call(&["SET", "k", "3"]).await, ok());
    assert_eq!(master.call(&["EPOCH", "3"]).await, Frame::Integer(3));
    assert_eq!(master.call(&["REPLICAOF", "NO", "ONE"]).await, ok());
    assert_eq!(master.call(&["SET", "k", "4"]).await, ok(), "REPLICAOF NO ONE makes it master at its epoch");
    assert_eq!(info(async |args: &[&str]| master.call(args).await, "replication", "codis_master_epoch").await, "3");
    // Guarded actions: refused with a stale epoch, and then nothing else happens.
    let Frame::Error(stale) = master.call(&["EPOCH", "2", "FOLLOW", "127.0.0.1", "1"]).await else { panic!("STALE") };
    assert!(String::from_utf8_lossy(&stale).starts_with("STALE"));
    assert_eq!(info(async |args: &[&str]| master.call(args).await, "replication", "role").await, "master");
    assert_eq!(master.call(&["EPOCH", "4", "FOLLOW", "127.0.0.1", "1"]).await, Frame::Integer(4));
    assert_eq!(info(async |args: &[&str]| master.call(args).await, "replication", "role").await, "slave");
    assert!(matches!(master.call(&["EPOCH", "4", "MASTER"]).await, Frame::Error(_)), "a replica is no master");
    assert!(matches!(master.call(&["EPOCH", "3", "PROMOTE"]).await, Frame::Error(_)));
    assert_eq!(info(async |args: &[&str]| master.call(args).await, "replication", "role").await, "slave");
    assert_eq!(master.call(&["EPOCH", "5", "PROMOTE"]).await, Frame::Integer(5));
    assert_eq!(master.call(&["SET", "k", "5"]).await, ok());
    assert_eq!(info(async |args: &[&str]| master.call(args).await, "replication", "codis_master_epoch").await, "5");
    master.stop().await;
}

/// A master of our own making, to cut the stream exactly inside a transaction: the replica must
/// not count what it queued as applied, and must ask to resume at the `MULTI`, so the whole
/// transaction is applied once (counting the queued bytes would lose the writes queued before
/// the cut and apply the rest without their transaction).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_cut_inside_a_transaction_resumes_at_its_multi() {
    use net::Env;
    use resp::{Connection, Limits, Request};

    let env = TokioEnv::with_seed(11);
    let listener = env.bind("127.0.0.1:0").await.expect("bind");
    let master_port = listener.local_addr().expect("addr").port();
    let dir = temp_dir("cut-inside-transaction");
    let config = ServerConfig {
        port: 0,
        dir: dir.to_string_lossy().into_owned(),
        replicaof: format!("127.0.0.1 {master_port}"),
        ..ServerConfig::default()
    };
    let mut replica = Served::start(&env, config).await;
    let replid = "0123456789012345678901234567890123456789";
    let wire = |commands: &[&[&str]]| -> Vec<u8> {
        commands.iter().flat_map(|args| Request::from_args(args.iter()).wire().to_vec()).collect()
    };
    let handshake = async |link: &mut Connection<_>| -> Vec<String> {
        loop {
            let request = link.read_request().await.expect("read").expect("a request");
            let args: Vec<String> = request.args().map(|arg| String::from_utf8_lossy(arg).into_owned()).collect();
            if args[0].eq_ignore_ascii_case("PSYNC") {
                return args;
            }
            link.write_buffer().extend_from_slice(if args[0].eq_ignore_ascii_case("PING") {
                b"+PONG\r\n"
            } else {
                b"+OK\r\n"
            });
            link.flush().await.expect("answer");
        }
    };

    // The first link: a full copy of nothing, a write, then a transaction cut before its EXEC.
    let (stream, _) = listener.accept().await.expect("the replica connects");
    let mut link = Connection::new(stream, Limits::default());
    assert_eq!(handshake(&mut link).await, ["PSYNC", "?", "-1"]);
    let empty = {
        let state = server::state::State::new(ServerConfig::default(), net::rng_from_seed(1, "copy"), 0, 0);
        server::persist::encode_snapshot(&state, 0)
    };
    link.write_buffer().extend_from_slice(format!("+FULLRESYNC {replid} 100\r\n${}\r\n", empty.len()).as_bytes());
    link.write_buffer().extend_from_slice(&empty);
    let before = wire(&[&["SELECT", "0"], &["SET", "a", "1"]]);
    link.write_buffer().extend_from_slice(&before);
    link.write_buffer().extend_from_slice(&wire(&[&["MULTI"], &["INCR", "a"]]));
    // One write of a few dozen bytes: the replica reads the transaction's start with the SET it
    // is seen to apply below, so a replica counting queued bytes would ask to resume after them.
    link.flush().await.expect("stream");
    for _ in 0..500 {
        if replica.call(&["GET", "a"]).await == Frame::Bulk("1".into()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(replica.call(&["GET", "a"]).await, Frame::Bulk("1".into()));
    drop(link);

    // The second link: the replica asks for the bytes after the SET, which begin with MULTI.
    let (stream, _) = listener.accept().await.expect("the replica reconnects");
    let mut link = Connection::new(stream, Limits::default());
    let resume_at = 100 + before.len() as u64 + 1;
    assert_eq!(handshake(&mut link).await, ["PSYNC", replid, resume_at.to_string().as_str()]);
    link.write_buffer().extend_from_slice(b"+CONTINUE\r\n");
    link.write_buffer().extend_from_slice(&wire(&[
        &["MULTI"],
        &["INCR", "a"],
        &["INCR", "a"],
        &["EXEC"],
        &["SET", "done", "1"],
    ]));
    link.flush().await.expect("stream");
    for _ in 0..500 {
        if replica.call(&["GET", "done"]).await == Frame::Bulk("1".into()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(replica.call(&["GET", "a"]).await, Frame::Bulk("3".into()), "the transaction applied once, whole");
    replica.stop().await;
}
