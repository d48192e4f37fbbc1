//! One conformance suite, four stores: the filesystem, the in-memory store in-process, the
//! in-memory store behind our etcd gateway (as the simulator hosts it), and a real etcd
//! (Debian's `etcd-server`, started here on loopback). Whatever the dashboard relies on must
//! hold on every one of them.

// The checks are helper functions (not #[test]s): an unwrap's panic names the line. The log
// file of the etcd started here is a std::fs::File, outside any component.
#![allow(clippy::unwrap_used, clippy::disallowed_types)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use coordinator::etcd::{EtcdClient, EtcdCoordinator};
use coordinator::memory::MemoryStore;
use coordinator::{AnyCoordinator, Coordinator, Error};
use net::{Env, TokioEnv};

/// The shortest lease etcd grants.
const TTL: Duration = Duration::from_secs(2);

/// How long anything that should happen may take (a lease expiring is TTL plus etcd's
/// expiry tick).
const PATIENCE: Duration = Duration::from_secs(10);

fn env() -> TokioEnv {
    TokioEnv::new().expect("environment")
}

/// Runs every check against `store`, under `root` (so runs against one store don't meet).
async fn conformance<C: Coordinator>(store: &C, root: &str) {
    records(store, root).await;
    listing(store, root).await;
    compare_and_set(store, root).await;
    invalid_paths(store).await;
    locks(store, root).await;
    fencing(store, root).await;
    registrations(store, root).await;
    watches(store, root).await;
}

async fn records<C: Coordinator>(store: &C, root: &str) {
    let path = format!("{root}/records/topom");
    assert_eq!(store.read(&path).await.unwrap(), None, "{}: nothing there yet", store.backend());
    let first = store.create(&path, b"{\"a\": 1}").await.unwrap();
    assert_eq!(
        store.create(&path, b"other").await,
        Err(Error::Exists { path: path.clone() }),
        "{}: create refuses an existing record",
        store.backend()
    );
    let read = store.read(&path).await.unwrap().expect("created");
    assert_eq!((read.value.as_slice(), read.version), (&b"{\"a\": 1}"[..], first));
    let second = store.update(&path, b"{\"a\": 2}").await.unwrap();
    assert_ne!(first, second, "{}: an update changes the version", store.backend());
    assert_eq!(store.read(&path).await.unwrap().expect("updated").value, b"{\"a\": 2}");
    store.delete(&path).await.unwrap();
    assert_eq!(store.read(&path).await.unwrap(), None);
    store.delete(&path).await.expect("deleting what is gone is fine");
    // Update creates.
    store.update(&path, b"").await.unwrap();
    assert_eq!(store.read(&path).await.unwrap().expect("empty record").value, b"");
}

async fn listing<C: Coordinator>(store: &C, root: &str) {
    let dir = format!("{root}/list");
    assert_eq!(store.list(&dir).await.unwrap(), Vec::<String>::new(), "{}: empty", store.backend());
    for name in ["slot-0002", "slot-0000", "slot-0001"] {
        store.create(&format!("{dir}/slots/{name}"), b"{}").await.unwrap();
    }
    store.create(&format!("{dir}/topom"), b"{}").await.unwrap();
    store.create(&format!("{dir}/group/group-0001"), b"{}").await.unwrap();
    // A sibling whose name extends the directory's is not inside it.
    store.create(&format!("{root}/list-other"), b"{}").await.unwrap();
    assert_eq!(
        store.list(&dir).await.unwrap(),
        vec![format!("{dir}/group"), format!("{dir}/slots"), format!("{dir}/topom")],
        "{}: direct children, sorted",
        store.backend()
    );
    assert_eq!(
        store.list(&format!("{dir}/slots")).await.unwrap(),
        vec![format!("{dir}/slots/slot-0000"), format!("{dir}/slots/slot-0001"), format!("{dir}/slots/slot-0002")]
    );
    let records = store.read_dir(&format!("{dir}/slots")).await.unwrap();
    assert_eq!(
        records.iter().map(|(path, record)| (path.as_str(), record.value.as_slice())).collect::<Vec<_>>(),
        [0, 1, 2]
            .map(|slot| (format!("{dir}/slots/slot-000{slot}"), &b"{}"[..]))
            .iter()
            .map(|(p, v)| (p.as_str(), *v))
            .collect::<Vec<_>>(),
        "{}: read_dir returns the records with their values",
        store.backend()
    );
    assert_eq!(
        store.read_dir(&dir).await.unwrap().into_iter().map(|(path, _)| path).collect::<Vec<_>>(),
        vec![format!("{dir}/topom")],
        "{}: read_dir skips subdirectories",
        store.backend()
    );
    store.delete(&format!("{dir}/group/group-0001")).await.unwrap();
    assert_eq!(
        store.list(&dir).await.unwrap(),
        vec![format!("{dir}/slots"), format!("{dir}/topom")],
        "{}: a directory with no record left is not listed",
        store.backend()
    );
}

async fn compare_and_set<C: Coordinator>(store: &C, root: &str) {
    let path = format!("{root}/cas/slot-0007");
    let first = store.compare_and_set(&path, None, b"one").await.expect("absent, as expected");
    assert_eq!(store.compare_and_set(&path, None, b"again").await, Err(Error::Conflict { path: path.clone() }));
    let second = store.compare_and_set(&path, Some(first), b"two").await.expect("at the version read");
    assert_eq!(
        store.compare_and_set(&path, Some(first), b"stale").await,
        Err(Error::Conflict { path: path.clone() }),
        "{}: a stale version is refused",
        store.backend()
    );
    assert_eq!(
        store.read(&path).await.unwrap().expect("there"),
        coordinator::Record { value: b"two".to_vec(), version: second }
    );
}

async fn invalid_paths<C: Coordinator>(store: &C) {
    for bad in ["relative", "/", "/a//b", "/a/../b", "/a b"] {
        assert!(matches!(store.read(bad).await, Err(Error::InvalidPath { .. })), "{}: {bad:?}", store.backend());
        assert!(
            matches!(store.update(bad, b"x").await, Err(Error::InvalidPath { .. })),
            "{}: {bad:?}",
            store.backend()
        );
    }
}

/// Takes `path` as soon as its previous holder's lease runs out.
async fn lock_when_free<C: Coordinator>(store: &C, path: &str, value: &[u8]) -> coordinator::Lease {
    tokio::time::timeout(PATIENCE, async {
        loop {
            match store.lock(path, value, TTL).await {
                Ok(lease) => return lease,
                Err(Error::Locked { .. }) => tokio::time::sleep(Duration::from_millis(100)).await,
                Err(error) => panic!("{}: locking {path}: {error}", store.backend()),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{}: {path} never came free", store.backend()))
}

async fn locks<C: Coordinator>(store: &C, root: &str) {
    let path = format!("{root}/locks/topom");
    let first = store.lock(&path, b"dashboard one", TTL).await.expect("free");
    assert!(first.is_held());
    assert_eq!(store.read(&path).await.unwrap().expect("lock record").value, b"dashboard one");
    match store.lock(&path, b"dashboard two", TTL).await {
        Err(Error::Locked { holder, .. }) => assert_eq!(holder, "dashboard one", "{}", store.backend()),
        other => panic!("{}: a held lock must refuse: {other:?}", store.backend()),
    }
    // Held beyond its time to live while renewed.
    tokio::time::sleep(TTL + Duration::from_millis(500)).await;
    assert!(first.is_held(), "{}: renewed", store.backend());
    assert!(matches!(store.lock(&path, b"two", TTL).await, Err(Error::Locked { .. })));
    // Released: free at once.
    first.release().await.unwrap();
    assert_eq!(store.read(&path).await.unwrap(), None, "{}: released", store.backend());
    let second = store.lock(&path, b"dashboard two", TTL).await.expect("free after release");
    // A holder that dies (stops renewing) loses the lock after its time to live, with no
    // `--remove-lock`.
    drop(second);
    let started = tokio::time::Instant::now();
    let third = lock_when_free(store, &path, b"dashboard three").await;
    assert!(started.elapsed() >= TTL / 2, "{}: taken over too early ({:?})", store.backend(), started.elapsed());
    // A lock removed by hand (`--remove-lock`) is lost by its holder, whose lease lives on.
    store.delete(&path).await.unwrap();
    tokio::time::timeout(PATIENCE, third.lost())
        .await
        .unwrap_or_else(|_| panic!("{}: a holder must notice its lock was removed", store.backend()));
    assert!(!third.is_held());
}

async fn fencing<C: Coordinator>(store: &C, root: &str) {
    let lock = format!("{root}/fence/topom");
    let slot = format!("{root}/fence/slots/slot-0001");
    let lease = store.lock(&lock, b"one", TTL).await.unwrap();
    let fenced = store.fenced(&lease);
    let version = fenced.create(&slot, b"by one").await.expect("fenced write while held");
    fenced.compare_and_set(&slot, Some(version), b"by one, again").await.expect("fenced cas while held");
    fenced.update(&slot, b"by one, thrice").await.unwrap();
    // The lock passes to another holder (here after a release; an expiry behaves the same).
    lease.release().await.unwrap();
    let successor = store.lock(&lock, b"two", TTL).await.unwrap();
    for outcome in [
        fenced.update(&slot, b"stale").await.map(|_| ()),
        fenced.create(&format!("{root}/fence/new"), b"stale").await.map(|_| ()),
        fenced.delete(&slot).await,
    ] {
        assert_eq!(outcome, Err(Error::LockLost { path: lock.clone() }), "{}", store.backend());
    }
    assert_eq!(store.read(&slot).await.unwrap().expect("kept").value, b"by one, thrice");
    assert_eq!(store.read(&format!("{root}/fence/new")).await.unwrap(), None);
    // The successor's own fence works, and conflicts are still conflicts under a fence.
    let fenced = store.fenced(&successor);
    fenced.update(&slot, b"by two").await.unwrap();
    assert_eq!(fenced.create(&slot, b"x").await, Err(Error::Exists { path: slot.clone() }));
    successor.release().await.unwrap();
}

async fn registrations<C: Coordinator>(store: &C, root: &str) {
    let path = format!("{root}/jodis/proxy-1");
    let first = store.register(&path, b"{\"state\": \"online\"}", TTL).await.unwrap();
    // A restarted owner registers again before the old lease ran out: it replaces it.
    let second = store.register(&path, b"{\"state\": \"online\", \"again\": true}", TTL).await.unwrap();
    drop(first);
    assert_eq!(store.list(&format!("{root}/jodis")).await.unwrap(), vec![path.clone()]);
    second.release().await.unwrap();
    assert_eq!(store.read(&path).await.unwrap(), None, "{}: released registration", store.backend());
    // One that is not renewed disappears by itself.
    drop(store.register(&path, b"{}", TTL).await.unwrap());
    tokio::time::timeout(PATIENCE, async {
        while store.read(&path).await.unwrap().is_some() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{}: an abandoned registration must expire", store.backend()));
}

async fn watches<C: Coordinator>(store: &C, root: &str) {
    let dir = format!("{root}/watched");
    store.update(&format!("{dir}/before"), b"0").await.unwrap();
    let mut watch = store.watch(&dir).await.unwrap();
    // A change elsewhere is not news.
    store.update(&format!("{root}/watched-not/x"), b"1").await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(700), watch.changed()).await.is_err(),
        "{}: a change outside the directory",
        store.backend()
    );
    for change in 0..3 {
        match change {
            0 => store.update(&format!("{dir}/slots/slot-0001"), b"1").await.map(|_| ()).unwrap(),
            1 => store.update(&format!("{dir}/before"), b"2").await.map(|_| ()).unwrap(),
            _ => store.delete(&format!("{dir}/before")).await.unwrap(),
        }
        tokio::time::timeout(PATIENCE, watch.changed())
            .await
            .unwrap_or_else(|_| panic!("{}: change {change} not seen", store.backend()))
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_filesystem_store_conforms() {
    let dir = std::env::temp_dir().join(format!("coordinator-fs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let root = dir.to_string_lossy().into_owned();
    let store = AnyCoordinator::connect(env(), &coordinator::CoordinatorAddr::Filesystem(root.clone()), PATIENCE);
    conformance(&store, "/codis3/fs").await;
    // Codis' layout: records are plain files under data/.
    assert_eq!(std::fs::read(dir.join("data/codis3/fs/records/topom")).unwrap(), b"");
    assert!(dir.join("data.lck").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_store_conforms() {
    let store = AnyCoordinator::memory(env(), MemoryStore::new());
    conformance(&store, "/codis3/memory").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_store_behind_our_gateway_conforms() {
    let env = env();
    let listener = env.bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let server = env.spawn(coordinator::gateway::serve(env.clone(), MemoryStore::new(), listener));
    let store = EtcdCoordinator::new(EtcdClient::new(env.clone(), &[addr], PATIENCE), env.clone());
    conformance(&store, "/codis3/gateway").await;
    server.abort();
}

/// A private etcd on free loopback ports, killed on drop.
struct Etcd {
    child: Child,
    dir: std::path::PathBuf,
    client: String,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn free_port(env: &TokioEnv) -> u16 {
    env.bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port()
}

/// A real etcd on two freshly probed ports. Tests running side by side may be handed the same
/// free port before etcd binds it; etcd then exits, and it is started again on others.
async fn start_etcd(env: &TokioEnv) -> Etcd {
    let mut failures = Vec::new();
    for attempt in 0..5 {
        match try_start_etcd(env, attempt).await {
            Ok(etcd) => return etcd,
            Err(why) => failures.push(why),
        }
    }
    panic!("etcd did not start: {}", failures.join("; "))
}

async fn try_start_etcd(env: &TokioEnv, attempt: usize) -> Result<Etcd, String> {
    let ports = test_support::free_ports(2);
    let (client_port, peer_port) = (ports[0], ports[1]);
    let dir = std::env::temp_dir().join(format!("coordinator-etcd-{}-{attempt}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let log = std::fs::File::create(dir.join("etcd.log")).unwrap();
    let client = format!("127.0.0.1:{client_port}");
    let peer = format!("http://127.0.0.1:{peer_port}");
    let child = Command::new("etcd")
        .args(["--name", "conformance", "--data-dir"])
        .arg(dir.join("data"))
        .args([
            "--listen-client-urls",
            &format!("http://{client}"),
            "--advertise-client-urls",
            &format!("http://{client}"),
        ])
        .args(["--listen-peer-urls", &peer, "--initial-advertise-peer-urls", &peer])
        .args(["--initial-cluster", &format!("conformance={peer}"), "--log-level", "warn"])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("etcd is installed (`just deps` installs Debian's etcd-server)");
    let mut etcd = Etcd { child, dir, client };
    let probe = EtcdClient::new(env.clone(), std::slice::from_ref(&etcd.client), Duration::from_secs(1));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(Some(status)) = etcd.child.try_wait() {
            let log = std::fs::read_to_string(etcd.dir.join("etcd.log")).unwrap_or_default();
            return Err(format!("it exited ({status}); its log: {log}"));
        }
        use coordinator::kv::Kv as _;
        match probe.range("/probe", None, true).await {
            // Answering, and still running: the port is its own (had it been taken, etcd would
            // have exited).
            Ok(_) if etcd.child.try_wait().is_ok_and(|status| status.is_none()) => return Ok(etcd),
            Ok(_) => {}
            // Refused until it listens; anything else is a bug worth seeing.
            Err(error) if !error.is_transient() => panic!("etcd's first answer was not understood: {error}"),
            Err(_) => {}
        }
        if tokio::time::Instant::now() > deadline {
            let log = std::fs::read_to_string(etcd.dir.join("etcd.log")).unwrap_or_default();
            panic!("etcd did not answer within 30 s; its log:\n{log}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_etcd_conforms() {
    let env = env();
    let etcd = start_etcd(&env).await;
    let store =
        AnyCoordinator::connect(env.clone(), &coordinator::CoordinatorAddr::Etcd(vec![etcd.client.clone()]), PATIENCE);
    conformance(&store, "/codis3/etcd").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_etcd_is_an_error_not_a_hang() {
    let env = env();
    let port = free_port(&env).await;
    let store = AnyCoordinator::connect(
        env.clone(),
        &coordinator::CoordinatorAddr::Etcd(vec![format!("127.0.0.1:{port}")]),
        Duration::from_secs(1),
    );
    let error = store.read("/codis3/x/topom").await.unwrap_err();
    assert!(error.is_transient(), "{error}");
}
