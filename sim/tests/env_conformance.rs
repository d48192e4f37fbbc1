//! One environment suite, run on both backends: the production `TokioEnv` with `OsDisk` on real
//! sockets and files, and the simulator's `SimEnv` with `SimDisk`. Components are written against
//! the `Env` traits and rely on what this suite checks; running the same bodies in both worlds
//! keeps them from drifting apart (as the coordinator's conformance suite does for its stores).

use std::net::SocketAddr;
use std::time::Duration;

use net::rand::RngCore;
use net::{Disk, DiskFile, Env, Listener, Stream, TokioEnv};
use sim::{Harness, SimConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

type Result<T = ()> = std::result::Result<T, String>;

fn failed(what: &str) -> impl Fn(std::io::Error) -> String + '_ {
    move |error| format!("{what}: {error}")
}

fn check(holds: bool, what: &str) -> Result {
    if holds { Ok(()) } else { Err(what.to_string()) }
}

/// Bind, accept, connect, echo through split halves, end of stream both ways, addresses, and a
/// refused connection. `reach` names the listener as a client must (the simulator's hosts have
/// names, the real loopback an address).
async fn network<E: Env>(env: &E, bind: &str, reach: impl Fn(SocketAddr) -> String) -> Result {
    let listener = env.bind(bind).await.map_err(failed("bind"))?;
    let local = Listener::local_addr(&listener).map_err(failed("listener address"))?;
    let server = env.spawn(async move {
        let (stream, _peer) = listener.accept().await.map_err(failed("accept"))?;
        let (mut read, mut write) = stream.into_split();
        let mut buf = [0u8; 5];
        read.read_exact(&mut buf).await.map_err(failed("server read"))?;
        write.write_all(&buf).await.map_err(failed("server write"))?;
        // The client shut its side down: the next read sees the end of the stream.
        let mut rest = Vec::new();
        read.read_to_end(&mut rest).await.map_err(failed("server read to end"))?;
        check(rest == b"bye", "the server reads what was sent before the end of the stream")
    });
    let mut client = env.connect(&reach(local), Duration::from_secs(5)).await.map_err(failed("connect"))?;
    let peer = Stream::peer_addr(&client).map_err(failed("peer address"))?;
    check(peer.port() == local.port(), "a client's peer is the listener's port")?;
    client.write_all(b"hello").await.map_err(failed("client write"))?;
    let mut echoed = [0u8; 5];
    client.read_exact(&mut echoed).await.map_err(failed("client read"))?;
    check(&echoed == b"hello", "bytes come back in order")?;
    client.write_all(b"bye").await.map_err(failed("client write"))?;
    client.shutdown().await.map_err(failed("client shutdown"))?;
    server.await.map_err(|error| format!("server task: {error}"))??;
    // The server dropped its halves: the client reads the end of the stream.
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).await.map_err(failed("client read to end"))?;
    check(rest.is_empty(), "nothing after the server closed")?;

    // A port nobody listens on refuses at once, well before the deadline.
    let closed = {
        let listener = env.bind(bind).await.map_err(failed("bind again"))?;
        Listener::local_addr(&listener).map_err(failed("listener address"))?
    };
    let closed =
        SocketAddr::new(local.ip(), if closed.port() == local.port() { local.port() + 1 } else { closed.port() });
    let started = tokio::time::Instant::now();
    match env.connect(&reach(closed), Duration::from_secs(30)).await {
        Ok(_) => return Err(format!("connected to {closed}, where nothing listens")),
        Err(error) => check(
            error.kind() == std::io::ErrorKind::ConnectionRefused,
            &format!("a closed port refuses the connection (got {error})"),
        )?,
    }
    check(started.elapsed() < Duration::from_secs(10), "a refused connect does not wait for its deadline")
}

/// The operations durability relies on: appends that survive reopening, atomic replacement by
/// rename, truncation, removal, directories, listing, and an exclusive lock.
async fn disk<E: Env>(env: &E, dir: &str) -> Result {
    let disk = env.disk();
    let path = |name: &str| format!("{dir}/{name}");
    disk.create_dir(dir).await.map_err(failed("create the directory"))?;
    check(disk.read(&path("absent")).await.map_err(failed("read"))?.is_none(), "an absent file reads as none")?;
    let mut log = disk.append(&path("log")).await.map_err(failed("append"))?;
    log.write_all(b"one;").await.map_err(failed("write"))?;
    log.sync().await.map_err(failed("sync"))?;
    drop(log);
    let mut log = disk.append(&path("log")).await.map_err(failed("reopen"))?;
    log.write_all(b"two;").await.map_err(failed("write"))?;
    log.sync().await.map_err(failed("sync"))?;
    drop(log);
    let read = disk.read(&path("log")).await.map_err(failed("read"))?;
    check(read.as_deref() == Some(&b"one;two;"[..]), "appends follow what is there")?;
    disk.truncate(&path("log"), 4).await.map_err(failed("truncate"))?;
    let read = disk.read(&path("log")).await.map_err(failed("read"))?;
    check(read.as_deref() == Some(&b"one;"[..]), "truncation keeps the prefix")?;
    let mut snapshot = disk.create(&path("log.tmp")).await.map_err(failed("create"))?;
    snapshot.write_all(b"new").await.map_err(failed("write"))?;
    snapshot.sync().await.map_err(failed("sync"))?;
    drop(snapshot);
    disk.rename(&path("log.tmp"), &path("log")).await.map_err(failed("rename"))?;
    let read = disk.read(&path("log")).await.map_err(failed("read"))?;
    check(read.as_deref() == Some(&b"new"[..]), "a rename replaces the file whole")?;
    check(disk.read(&path("log.tmp")).await.map_err(failed("read"))?.is_none(), "a renamed file is gone")?;
    // Big writes (a snapshot) may take another path than small ones (a log's commands).
    let big: Vec<u8> = (0..3_000_000u32).map(|index| index as u8).collect();
    let mut snapshot = disk.create(&path("big")).await.map_err(failed("create"))?;
    snapshot.write_all(b"head;").await.map_err(failed("write"))?;
    snapshot.write_all(&big).await.map_err(failed("write"))?;
    snapshot.sync().await.map_err(failed("sync"))?;
    drop(snapshot);
    let read = disk.read(&path("big")).await.map_err(failed("read"))?.unwrap_or_default();
    check(
        read.len() == 5 + big.len() && read[..5] == b"head;"[..] && read[5..] == big[..],
        "a big write reads back whole",
    )?;
    disk.remove(&path("big")).await.map_err(failed("remove"))?;
    disk.create_dir(&path("sub/deeper")).await.map_err(failed("nested directories"))?;
    disk.create_dir(&path("sub/deeper")).await.map_err(failed("an existing directory"))?;
    let mut names: Vec<(String, bool)> = disk
        .list(dir)
        .await
        .map_err(failed("list"))?
        .into_iter()
        .map(|entry| (entry.name, entry.is_dir))
        .filter(|(name, _)| !name.starts_with('.'))
        .collect();
    names.sort();
    check(
        names == [("log".to_string(), false), ("sub".to_string(), true)],
        &format!("the listing names each file and directory once: {names:?}"),
    )?;
    let missing = disk.list(&path("missing")).await.map_err(failed("list a missing directory"))?;
    check(missing.is_empty(), "a missing directory lists as empty")?;
    disk.remove(&path("log")).await.map_err(failed("remove"))?;
    disk.remove(&path("log")).await.map_err(failed("removing an absent file"))?;
    check(disk.read(&path("log")).await.map_err(failed("read"))?.is_none(), "a removed file is gone")?;

    let held = disk.lock(&path("lock"), Duration::from_secs(1)).await.map_err(failed("lock"))?;
    match disk.lock(&path("lock"), Duration::from_millis(300)).await {
        Ok(_) => return Err("a held lock was taken twice".into()),
        Err(error) => check(error.kind() == std::io::ErrorKind::WouldBlock, &format!("a held lock refuses ({error})"))?,
    }
    drop(held);
    disk.lock(&path("lock"), Duration::from_secs(1)).await.map_err(failed("lock after release"))?;
    Ok(())
}

/// The wall clock moves with time, randomness streams are named and repeatable, and spawned
/// tasks return their results.
async fn clock_randomness_and_tasks<E: Env>(env: &E, fresh: impl Fn() -> E) -> Result {
    let before = env.unix_millis();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after = env.unix_millis();
    check(after >= before + 1500, &format!("the clock moved {} ms over a 1.5 s sleep", after.saturating_sub(before)))?;
    check(after < before + 60_000, "the clock does not leap")?;

    check(env.rng("x").next_u64() == env.rng("x").next_u64(), "a named stream starts the same each time")?;
    check(env.rng("x").next_u64() == fresh().rng("x").next_u64(), "the same seed gives the same streams")?;
    check(env.rng("x").next_u64() != env.rng("y").next_u64(), "streams with other names differ")?;

    let answer = env.spawn(async { 6 * 7 }).await.map_err(|error| format!("spawned task: {error}"))?;
    check(answer == 42, "a spawned task's result comes back")
}

#[tokio::test]
async fn the_production_backend_conforms() {
    let env = TokioEnv::with_seed(7);
    network(&env, "127.0.0.1:0", |addr| addr.to_string()).await.expect("network");
    let dir = std::env::temp_dir().join(format!("codis-env-conformance-{}", std::process::id()));
    let dir = dir.to_string_lossy().into_owned();
    disk(&env, &dir).await.expect("disk");
    std::fs::remove_dir_all(&dir).expect("clean up");
    clock_randomness_and_tasks(&env, || TokioEnv::with_seed(7)).await.expect("clock, randomness and tasks");
}

#[test]
fn the_simulated_backend_conforms() {
    let mut config = SimConfig::new(7);
    config.duration = Duration::from_secs(60);
    let mut harness = Harness::new(config);
    harness.client("client", |env| async move {
        let fresh = |env: &sim::SimEnv| sim::SimEnv::new(7, env.host(), 0, false, sim::SimDisk::default());
        network(&env, "0.0.0.0:7000", |addr| format!("client:{}", addr.port())).await?;
        disk(&env, "/data").await?;
        clock_randomness_and_tasks(&env, || fresh(&env)).await?;
        Ok(())
    });
    let outcome = harness.run();
    if let Err(error) = outcome.result {
        panic!("{error}\n{}", outcome.trace.join("\n"));
    }
}
