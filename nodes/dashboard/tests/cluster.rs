//! The dashboard driving a real cluster on loopback, through its REST API: three of our servers,
//! one proxy, the filesystem coordinator. Groups are created, the proxy comes online, slots are
//! rebalanced onto one group, then onto three while a client writes through the proxy; then
//! every value must read back, every slot's keys must live on its owner only, and a restarted
//! dashboard must find the same model.

use std::time::Duration;

use dashboard::{Dashboard, DashboardConfig, Launch};
use model::{ActionState, GroupId, MAX_SLOT_NUM, slot_of};
use net::http::{HttpClient, Method};
use net::{Env, TokioEnv};
use proxy::{Proxy, ProxyConfig};
use resp::Frame;
use resp::client::Client;
use server::ServerConfig;
use tokio::sync::oneshot;

const PRODUCT: &str = "cluster-test";
const AUTH: &str = "s3cret";

async fn start_server(env: &TokioEnv) -> (String, oneshot::Sender<()>) {
    let config =
        ServerConfig { bind: "127.0.0.1".into(), port: 0, requirepass: AUTH.into(), ..ServerConfig::default() };
    let (bound, address) = oneshot::channel();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(server::bind_and_run(
        env.clone(),
        config,
        bound,
        futures_util::stream::once(async {
            let _ = stopped.await;
        }),
    ));
    (address.await.expect("bound").to_string(), stop)
}

/// A proxy with its admin API; returns (client address, admin address).
async fn start_proxy(env: &TokioEnv) -> (String, String) {
    let config = ProxyConfig { product_name: PRODUCT.into(), product_auth: AUTH.into(), ..ProxyConfig::default() };
    let listener = env.bind("127.0.0.1:0").await.expect("bind");
    let admin = env.bind("127.0.0.1:0").await.expect("bind admin");
    let (proxy_addr, admin_addr) =
        (listener.local_addr().expect("addr").to_string(), admin.local_addr().expect("addr").to_string());
    let identity = proxy::admin::Identity::new(PRODUCT, AUTH, &proxy_addr, &admin_addr, "localhost");
    let token = identity.model.token.clone();
    let proxy = Proxy::new(env.clone(), config);
    tokio::spawn(proxy::admin::serve(env.clone(), proxy.shared().clone(), identity, None, admin));
    let run_env = env.clone();
    tokio::spawn(async move { proxy.run(run_env, listener, &token, std::future::pending()).await });
    (proxy_addr, admin_addr)
}

async fn start_dashboard(env: &TokioEnv, root: &str) -> (Dashboard<TokioEnv>, String) {
    let listener = env.bind("127.0.0.1:0").await.expect("bind");
    let admin_addr = listener.local_addr().expect("addr").to_string();
    let config = DashboardConfig {
        coordinator_name: "filesystem".into(),
        coordinator_addr: root.into(),
        product_name: PRODUCT.into(),
        product_auth: AUTH.into(),
        admin_addr: admin_addr.clone(),
        proxy_lease: Duration::from_secs(5),
        ..DashboardConfig::default()
    };
    let dashboard =
        Dashboard::start(env.clone(), &config, Launch { admin_addr: admin_addr.clone(), ..Launch::default() })
            .await
            .expect("dashboard starts");
    let serving = dashboard.clone();
    tokio::spawn(async move { serving.serve(listener).await });
    (dashboard, admin_addr)
}

/// `PUT /api/topom/<verb>/<xauth>/<args…>`; panics on an error answer.
async fn api(http: &HttpClient<TokioEnv>, verb: &str, args: &[&str]) -> serde_json::Value {
    let xauth = model::auth::dashboard_xauth(PRODUCT, AUTH);
    let mut path = format!("/api/topom/{verb}/{xauth}");
    for arg in args {
        path.push('/');
        path.push_str(arg);
    }
    let response = http.request(Method::PUT, &path, None).await.expect("dashboard answers");
    assert!(response.is_success(), "PUT {path}: HTTP {}: {}", response.status, response.text());
    serde_json::from_slice(&response.body).expect("JSON answer")
}

async fn wait_until_idle(dashboard: &Dashboard<TokioEnv>) {
    tokio::time::timeout(Duration::from_secs(120), async {
        loop {
            if dashboard.model().slots.iter().all(|slot| slot.action.state == ActionState::Nothing) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("actions still running: {:?}", dashboard.actions().status.lock().map(|s| s.clone())));
}

fn int(frame: &Frame) -> i64 {
    match frame {
        Frame::Integer(value) => *value,
        other => panic!("expected an integer, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_rebalances_a_live_cluster_without_losing_a_write() {
    let env = TokioEnv::with_seed(11);
    let root = std::env::temp_dir().join(format!("dashboard-cluster-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let root = root.to_string_lossy().into_owned();
    let mut stops = Vec::new();
    let mut servers = Vec::new();
    for _ in 0..3 {
        let (addr, stop) = start_server(&env).await;
        servers.push(addr);
        stops.push(stop);
    }
    let (proxy_addr, proxy_admin) = start_proxy(&env).await;
    let (dashboard, dashboard_addr) = start_dashboard(&env, &root).await;
    let http = HttpClient::new(env.clone(), dashboard_addr.clone(), Duration::from_secs(10));

    for group in ["1", "2", "3"] {
        api(&http, "group/create", &[group]).await;
    }
    api(&http, "group/add", &["1", &servers[0]]).await;
    api(&http, "proxy/create", &[&proxy_admin]).await;
    // One group: the rebalance brings every slot online there.
    let plan = api(&http, "slots/rebalance", &["1"]).await;
    assert_eq!(plan.as_object().map(|plan| plan.len()), Some(MAX_SLOT_NUM));
    wait_until_idle(&dashboard).await;
    assert!(dashboard.model().slots.iter().all(|slot| slot.group_id == GroupId(1)));

    // A writer through the proxy while the slots spread over three groups.
    let writer_env = env.clone();
    let writer_proxy = proxy_addr.clone();
    let (stop_writer, mut writer_stopped) = oneshot::channel::<()>();
    let writer = tokio::spawn(async move {
        let mut client =
            Client::new(writer_env, &writer_proxy).with_timeouts(Duration::from_secs(2), Duration::from_secs(10));
        let mut acknowledged = std::collections::BTreeMap::new();
        let mut round = 0u64;
        loop {
            for key in 0..500u64 {
                let (key, value) = (format!("key:{key}"), format!("{round}-{key}"));
                let reply = client.call(&["SET", &key, &value]).await.expect("the proxy answers");
                assert_eq!(reply, Frame::ok(), "SET {key} during the rebalance");
                acknowledged.insert(key, value);
            }
            round += 1;
            if writer_stopped.try_recv().is_ok() {
                return acknowledged;
            }
        }
    });
    api(&http, "group/add", &["2", &servers[1]]).await;
    api(&http, "group/add", &["3", &servers[2]]).await;
    let plan = api(&http, "slots/rebalance", &["1"]).await;
    assert!(plan.as_object().is_some_and(|plan| plan.len() >= 680), "two thirds move: {plan}");
    wait_until_idle(&dashboard).await;
    let _ = stop_writer.send(());
    let acknowledged = writer.await.expect("writer");

    // Balanced, every value readable, and every key on its slot's owner only.
    let model = dashboard.model();
    for group in 1..=3 {
        let owned = model.slots.iter().filter(|slot| slot.group_id == GroupId(group)).count();
        assert!((341..=342).contains(&owned), "group {group} owns {owned}");
    }
    let mut client = Client::new(env.clone(), &proxy_addr);
    for (key, value) in &acknowledged {
        assert_eq!(client.call(&["GET", key]).await.expect("GET"), Frame::bulk(value.clone()), "{key}");
    }
    for (index, server) in servers.iter().enumerate() {
        let mut direct = Client::new(env.clone(), server).with_password(AUTH);
        let group = GroupId(index as u32 + 1);
        for key in acknowledged.keys() {
            let owner = model.slots[slot_of(key.as_bytes()).index()].group_id;
            let present = int(&direct.call(&["EXISTS", key]).await.expect("EXISTS"));
            assert_eq!(present == 1, owner == group, "{key} on {server} (group {group}, owner {owner})");
        }
    }

    // The proxy holds a lease and serves.
    let proxy_http = HttpClient::new(env.clone(), proxy_admin.clone(), Duration::from_secs(5));
    let stats = proxy_http.request(Method::GET, "/proxy/stats", None).await.expect("proxy stats");
    let stats: serde_json::Value = serde_json::from_slice(&stats.body).expect("JSON");
    assert_eq!((stats["online"].as_bool(), stats["fenced"].as_bool()), (Some(true), Some(false)), "{stats}");

    // A dashboard shut down releases its lock; its successor finds the same model at once.
    dashboard.shutdown().await;
    let (successor, _) =
        tokio::time::timeout(Duration::from_secs(5), start_dashboard(&env, &root)).await.expect("no wait for the lock");
    assert_eq!(successor.model(), model);
    // Codis' layout on disk.
    assert!(std::path::Path::new(&root).join(format!("data/codis3/{PRODUCT}/slots/slot-1023")).exists());
    successor.shutdown().await;
    drop(stops);
    let _ = std::fs::remove_dir_all(&root);
}

/// `PUT` with a secret and arguments; the status and the JSON answer, whatever they are.
async fn try_put(http: &HttpClient<TokioEnv>, xauth: &str, verb: &str, args: &[&str]) -> (u16, serde_json::Value) {
    let mut path = format!("/api/topom/{verb}/{xauth}");
    for arg in args {
        path.push('/');
        path.push_str(arg);
    }
    let response = http.request(Method::PUT, &path, None).await.expect("dashboard answers");
    (response.status, serde_json::from_slice(&response.body).unwrap_or(serde_json::Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slot_actions_move_every_database_and_bad_calls_get_clear_errors() {
    let env = TokioEnv::with_seed(12);
    let root = std::env::temp_dir().join(format!("dashboard-actions-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let root = root.to_string_lossy().into_owned();
    let (first, _stop_first) = start_server(&env).await;
    let (second, _stop_second) = start_server(&env).await;
    let (proxy_addr, proxy_admin) = start_proxy(&env).await;
    let (dashboard, dashboard_addr) = start_dashboard(&env, &root).await;
    let http = HttpClient::new(env.clone(), dashboard_addr, Duration::from_secs(10));
    let xauth = model::auth::dashboard_xauth(PRODUCT, AUTH);
    for group in ["1", "2"] {
        api(&http, "group/create", &[group]).await;
    }
    api(&http, "group/add", &["1", &first]).await;
    api(&http, "group/add", &["2", &second]).await;
    api(&http, "proxy/create", &[&proxy_admin]).await;
    api(&http, "slots/action/create-range", &["0", "1023", "1"]).await;
    wait_until_idle(&dashboard).await;

    // Keys in three databases, through the proxy.
    let mut client =
        Client::new(env.clone(), &proxy_addr).with_timeouts(Duration::from_secs(2), Duration::from_secs(10));
    for db in ["0", "3", "15"] {
        assert_eq!(client.call(&["SELECT", db]).await.expect("SELECT"), Frame::ok());
        for key in 0..300 {
            let reply = client.call(&["SET", &format!("k{key}"), &format!("{db}-{key}")]).await.expect("SET");
            assert_eq!(reply, Frame::ok());
        }
    }

    // Bad calls: a clear JSON error and a 4xx status, and nothing changes.
    let refusals: [(&str, &str, Vec<&str>, u16); 7] = [
        (xauth.as_str(), "group/create", vec!["0"], 400),
        (xauth.as_str(), "group/create", vec!["1"], 409),
        (xauth.as_str(), "slots/action/create", vec!["1024", "2"], 400),
        (xauth.as_str(), "slots/action/create", vec!["5", "9"], 404),
        (xauth.as_str(), "group/remove", vec!["1"], 409),
        (xauth.as_str(), "slots/action/remove", vec!["5"], 404),
        ("0123456789abcdef0123456789abcdef", "group/create", vec!["7"], 403),
    ];
    for (secret, verb, args, status) in refusals {
        let (got, body) = try_put(&http, secret, verb, &args).await;
        assert_eq!(got, status, "{verb} {args:?}: {body}");
        assert!(body["error"].as_str().is_some_and(|error| !error.is_empty()), "{verb} {args:?}: {body}");
    }

    // Pending actions can be removed; disabled actions do not start; create-some and a range
    // move the rest; every database's keys follow their slots.
    api(&http, "slots/action/disabled", &["1"]).await;
    api(&http, "slots/action/create-range", &["0", "99", "2"]).await;
    api(&http, "slots/action/remove", &["7"]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let model = dashboard.model();
    assert!(
        model.slots[..100]
            .iter()
            .enumerate()
            .all(|(index, slot)| (slot.action.state == ActionState::Pending) == (index != 7))
    );
    let (status, _) = try_put(&http, &xauth, "slots/action/create-range", &["50", "60", "2"]).await;
    assert_eq!(status, 409, "slots with an action already are refused");
    api(&http, "slots/action/interval", &["100"]).await;
    api(&http, "slots/action/disabled", &["0"]).await;
    wait_until_idle(&dashboard).await;
    assert_eq!(dashboard.model().slots[7].group_id, GroupId(1), "the removed action did not run");
    api(&http, "slots/action/create-some", &["1", "2", "412"]).await;
    wait_until_idle(&dashboard).await;
    let model = dashboard.model();
    let in_second = model.slots.iter().filter(|slot| slot.group_id == GroupId(2)).count();
    assert_eq!(in_second, 99 + 412);
    for db in ["0", "3", "15"] {
        assert_eq!(client.call(&["SELECT", db]).await.expect("SELECT"), Frame::ok());
        for key in 0..300 {
            let reply = client.call(&["GET", &format!("k{key}")]).await.expect("GET");
            assert_eq!(reply, Frame::bulk(format!("{db}-{key}")), "k{key} in db {db}");
        }
        for (server, group) in [(&first, GroupId(1)), (&second, GroupId(2))] {
            let mut direct = Client::new(env.clone(), server).with_password(AUTH);
            assert_eq!(direct.call(&["SELECT", db]).await.expect("SELECT"), Frame::ok());
            let Frame::Array(slots) = direct.call(&["SLOTSINFO"]).await.expect("SLOTSINFO") else {
                panic!("SLOTSINFO")
            };
            for entry in slots {
                let Frame::Array(pair) = entry else { panic!("pair") };
                let slot = usize::try_from(int(&pair[0])).expect("slot");
                assert_eq!(model.slots[slot].group_id, group, "db {db} of {server} holds slot {slot}");
            }
        }
    }
    dashboard.shutdown().await;
    let _ = std::fs::remove_dir_all(&root);
}
