//! The web console in a real browser: `codis demo` (which starts `codis-fe`), Debian's headless
//! Chromium driven through chromedriver. The test does what an operator does on the page: load
//! it, create a group, add a server (and see a bad address refused in plain words), slow the
//! actions down, rebalance after reading the plan, and watch the migration run and finish on
//! the slot map. Screenshots go to `target/tmp/console-screenshots/` for a person to look at.
//!
//! Also, without a browser: `codis-fe`'s `/list` and forwarding, and the dashboard serving the
//! page itself.

mod common;

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use net::http::{HttpClient, Method};
use net::{Env, TokioEnv};
use resp::Frame;
use resp::client::Client as RedisClient;
use serde_json::{Value, json};

use common::Demo;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Where the screenshots go.
fn screenshots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

/// chromedriver and the Chromium it starts, in a process group of their own: all stopped, and
/// the browser's profile removed, on drop (also when the test fails half-way).
struct Driver {
    process: std::process::Child,
    profile: PathBuf,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The group is signalled while its leader is not yet reaped, so its id cannot have been
        // taken by anything else.
        let group = format!("-{}", self.process.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        for _ in 0..30 {
            if matches!(self.process.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.process.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// chromedriver on a free port, and a headless Chromium session through it.
struct Browser {
    client: Client,
    _driver: Driver,
}

impl Browser {
    async fn start(env: &TokioEnv) -> Browser {
        for binary in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                std::path::Path::new(binary).exists(),
                "{binary} is missing: `just deps` installs Debian's chromium and chromium-driver"
            );
        }
        let profile = std::env::temp_dir().join(format!("console-test-chromium-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&profile);
        // On a freshly probed port; another test may be handed the same one before chromedriver
        // binds it, and then chromedriver exits: start again on another.
        let mut attempt = 0;
        let (driver, port) = loop {
            attempt += 1;
            let port = test_support::free_port();
            let mut driver = Driver {
                process: Command::new(CHROMEDRIVER)
                    .arg(format!("--port={port}"))
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .process_group(0)
                    .spawn()
                    .expect("chromedriver starts"),
                profile: profile.clone(),
            };
            let status = HttpClient::new(env.clone(), format!("127.0.0.1:{port}"), Duration::from_secs(2));
            let mut up = false;
            for _ in 0..100 {
                if matches!(driver.process.try_wait(), Ok(Some(_))) {
                    break;
                }
                if status.request(Method::GET, "/status", None).await.is_ok_and(|answer| answer.is_success()) {
                    // Still running once it answered: the port is its own.
                    up = matches!(driver.process.try_wait(), Ok(None));
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            if up {
                break (driver, port);
            }
            assert!(attempt < 5, "chromedriver did not start on a port of its own in {attempt} attempts");
        };
        // The flags this machine needs (no sandbox as root, no GPU, nothing fetched from outside).
        let args = [
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--window-size=1440,1200".into(),
            format!("--user-data-dir={}", profile.display()),
        ];
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("goog:chromeOptions".into(), json!({ "binary": CHROMIUM, "args": args }));
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a Chromium session");
        Browser { client, _driver: driver }
    }

    /// Runs `script` (a function body) in the page and returns what it returns.
    async fn eval(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.expect("script runs")
    }

    /// Waits (up to `patience`) until `script` returns true, saying `what` if it never does.
    async fn until(&self, what: &str, patience: Duration, script: &str) {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            if self.eval(script).await == Value::Bool(true) {
                return;
            }
            if tokio::time::Instant::now() > deadline {
                self.screenshot("failed").await;
                let messages = self.eval("return document.querySelector('#messages')?.innerText ?? ''").await;
                panic!("waited {} s for {what}; messages on the page: {messages}", patience.as_secs());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn fill(&self, selector: &str, text: &str) {
        let input = self.client.find(Locator::Css(selector)).await.expect(selector);
        input.clear().await.expect("clear");
        input.send_keys(text).await.expect("type");
    }

    /// Clicks as a person does: the element scrolled to the middle of the window first (the
    /// page's sticky header would take a click at the very top).
    async fn click(&self, selector: &str) {
        let element = self.client.find(Locator::Css(selector)).await.expect(selector);
        let reference = serde_json::to_value(&element).expect("an element reference");
        self.client.execute("arguments[0].scrollIntoView({block: 'center'})", vec![reference]).await.expect("scrolls");
        element.click().await.expect("click");
    }

    /// Waits until the confirmation dialog is open (after a click that asks first).
    async fn until_asked(&self, what: &str) {
        self.until(what, Duration::from_secs(30), "return document.querySelector('dialog#confirm').open").await;
    }

    /// Waits for the next refresh of the page's data (the counter the page bumps).
    async fn next_refresh(&self) {
        let seen = self.eval("return Number(document.body.dataset.refreshes || 0)").await;
        let script = format!("return Number(document.body.dataset.refreshes || 0) > {seen}");
        self.until("a refresh", Duration::from_secs(30), &script).await;
    }

    async fn screenshot(&self, name: &str) {
        if let Ok(png) = self.client.screenshot().await {
            let _ = std::fs::write(screenshots().join(format!("{name}.png")), png);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_grows_the_cluster_from_the_console() {
    let env = TokioEnv::new().expect("env");
    let demo = Demo::start("codis-console-test");
    let browser = Browser::start(&env).await;

    // Clients at work through the proxy all along: the page shows their ops/s, and the
    // rebalance started from the page must not fail one of their writes.
    let writing = Arc::new(AtomicBool::new(true));
    let writer = {
        let (env, proxy, writing) = (env.clone(), demo.proxy.clone(), writing.clone());
        tokio::spawn(async move {
            let mut client =
                RedisClient::new(env, &proxy).with_timeouts(Duration::from_secs(2), Duration::from_secs(10));
            let mut written = 0u64;
            while writing.load(Ordering::Relaxed) {
                let reply = client.call(&["SET", &format!("console:{written}"), &written.to_string()]).await;
                assert_eq!(reply.expect("the proxy answers"), Frame::ok(), "write {written}");
                written += 1;
            }
            (client, written)
        })
    };
    let page = format!("http://{}/#p=codis-demo", demo.console);
    browser.client.goto(&page).await.expect("the console loads");
    browser.until("the first render", Duration::from_secs(30), "return document.body.dataset.ready === '1'").await;

    // What the overview says: the product, its dashboard, two groups owning every slot.
    let product = browser.eval("return document.querySelector('#overview [data-stat=product]').innerText").await;
    assert!(product.as_str().is_some_and(|text| text.contains("codis-demo")), "product shown: {product}");
    let dashboard = browser.eval("return document.querySelector('#overview [data-stat=dashboard]').innerText").await;
    assert!(dashboard.as_str().is_some_and(|text| text.contains(&demo.dashboard)), "dashboard shown: {dashboard}");
    browser
        .until(
            "the clients' ops/s in the overview",
            Duration::from_secs(30),
            "return Number(document.querySelector('#overview [data-stat=ops]').innerText.replace(/[^0-9.]/g, '')) > 0",
        )
        .await;
    let cells = browser.eval("return document.querySelectorAll('#slot-map .slot').length").await;
    assert_eq!(cells, json!(1024));
    let owned = browser
        .eval("return [...document.querySelectorAll('#slot-map .slot')].filter(c => ['1','2'].includes(c.dataset.group)).length")
        .await;
    assert_eq!(owned, json!(1024), "the demo's two groups own every slot");
    browser.screenshot("1-overview").await;

    // A new group, and a server in it; a bad address is refused in plain words.
    browser.fill("#new-group-id", "3").await;
    browser.click("#new-group").await;
    browser
        .until(
            "group 3 on the page",
            Duration::from_secs(30),
            "return !!document.querySelector('section.group[data-group=\"3\"]')",
        )
        .await;
    browser.fill("#add-server-gid", "3").await;
    browser.fill("#add-server-addr", "not-an-address").await;
    browser.click("#add-server").await;
    browser
        .until(
            "the refusal of a bad address",
            Duration::from_secs(30),
            "return [...document.querySelectorAll('#messages .message.error')].some(m => m.innerText.includes('not-an-address'))",
        )
        .await;
    let spare = &demo.spare_servers[0];
    browser.fill("#add-server-addr", spare).await;
    browser.click("#add-server").await;
    let row = format!("tr[data-server=\"{spare}\"]");
    browser
        .until("the new server's row", Duration::from_secs(30), &format!("return !!document.querySelector('{row}')"))
        .await;
    // Its memory and keys come from INFO once the dashboard has looked.
    browser
        .until(
            "the new server's stats",
            Duration::from_secs(30),
            &format!("return document.querySelector('{row}').innerText.includes('no limit')"),
        )
        .await;
    browser.screenshot("2-group-added").await;

    // Slow the actions down so the migration can be watched: 20 ms between steps.
    browser.fill("#action-interval", "20000").await;
    browser.click("#set-interval").await;
    let http = HttpClient::new(env.clone(), demo.dashboard.clone(), Duration::from_secs(10));
    let stats = || async {
        let answer = http.request(Method::GET, "/topom/stats", None).await.expect("the dashboard answers");
        serde_json::from_slice::<Value>(&answer.body).expect("JSON")
    };
    for _ in 0..100 {
        if stats().await["slot_action"]["interval"] == 20000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(stats().await["slot_action"]["interval"], 20000, "the interval set from the page");

    // Rebalance: the plan is shown before anything moves; cancelling moves nothing.
    browser.click("#rebalance").await;
    browser.until_asked("the plan").await;
    let plan = browser.eval("return document.querySelector('#confirm-body').innerText").await;
    let plan = plan.as_str().unwrap_or_default().to_string();
    assert!(plan.contains('3'), "the plan moves slots to group 3: {plan}");
    browser.screenshot("3-rebalance-plan").await;
    browser.click("#confirm-cancel").await;
    browser.next_refresh().await;
    browser.next_refresh().await;
    let moving = browser.eval("return document.querySelectorAll('#slot-map .slot.migrating').length").await;
    assert_eq!(moving, json!(0), "cancelled: nothing moves");
    browser.click("#rebalance").await;
    browser.until_asked("the plan again").await;
    browser.click("#confirm-ok").await;

    // The migration on the slot map: cells marked while they move, then all settled, with
    // group 3 owning about a third of the slots.
    browser
        .until(
            "migrating slots on the map",
            Duration::from_secs(60),
            "return document.querySelectorAll('#slot-map .slot.migrating').length > 0",
        )
        .await;
    browser.screenshot("4-migrating").await;
    browser
        .until(
            "the migration to finish",
            Duration::from_secs(300),
            "return document.querySelectorAll('#slot-map .slot.migrating').length === 0 && \
             document.querySelectorAll('#slot-map .slot[data-group=\"3\"]').length > 300",
        )
        .await;
    let third = browser.eval("return document.querySelectorAll('#slot-map .slot[data-group=\"3\"]').length").await;
    let third = third.as_u64().unwrap_or_default();
    assert!((341..=342).contains(&third), "group 3 owns a third of the slots: {third}");
    browser.screenshot("5-rebalanced").await;

    // The page agrees with the dashboard.
    let stats = stats().await;
    let in_three = stats["slots"].as_array().expect("slots").iter().filter(|slot| slot["group_id"] == 3).count();
    assert_eq!(in_three as u64, third);

    // Every write went through, and reads back.
    writing.store(false, Ordering::Relaxed);
    let (mut client, written) = writer.await.expect("the writer did not fail");
    assert!(written > 0);
    for key in (0..written).step_by(97) {
        let reply = client.call(&["GET", &format!("console:{key}")]).await.expect("GET");
        assert_eq!(reply, Frame::Bulk(key.to_string().into()), "key console:{key}");
    }
    let _ = browser.client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboards_own_page_asks_for_the_password_and_confirms_removals() {
    let env = TokioEnv::new().expect("env");
    let demo = Demo::start_with_auth("codis-console-auth-test", "s3cret");
    let browser = Browser::start(&env).await;
    // The page as the dashboard itself serves it (no codis-fe).
    browser.client.goto(&format!("http://{}/", demo.dashboard)).await.expect("the page loads");
    browser.until("the first render", Duration::from_secs(30), "return document.body.dataset.ready === '1'").await;

    // A change needs the password: a wrong one is refused and asked again, the right one works.
    browser.fill("#new-group-id", "4").await;
    browser.click("#new-group").await;
    let asked = "return document.querySelector('#auth-dialog').open";
    browser.until("the password prompt", Duration::from_secs(30), asked).await;
    browser.fill("#auth-password", "wrong").await;
    browser.click("#auth-ok").await;
    browser.until("the prompt again after a wrong password", Duration::from_secs(30), asked).await;
    browser.screenshot("6-password").await;
    browser.fill("#auth-password", "s3cret").await;
    browser.click("#auth-ok").await;
    let group = r#"return !!document.querySelector('section.group[data-group="4"]')"#;
    browser.until("group 4 created with the password", Duration::from_secs(30), group).await;
    let kept = browser.eval("return JSON.stringify(sessionStorage)").await;
    assert!(!kept.as_str().unwrap_or_default().contains("s3cret"), "the password itself is not kept: {kept}");

    // Removing it asks first; cancelling keeps it, confirming removes it.
    let remove = r#"section.group[data-group="4"] [data-act="group-remove"]"#;
    browser.click(remove).await;
    browser.until_asked("the confirmation").await;
    browser.click("#confirm-cancel").await;
    browser.next_refresh().await;
    assert_eq!(browser.eval(group).await, json!(true), "cancelled: group 4 stays");
    browser.click(remove).await;
    browser.until_asked("the confirmation again").await;
    browser.click("#confirm-ok").await;
    browser.until("group 4 removed", Duration::from_secs(30), &group.replace("return !!", "return !")).await;
    let _ = browser.client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codis_fe_lists_products_and_forwards_to_their_dashboards() {
    let env = TokioEnv::new().expect("env");
    let demo = Demo::start("codis-fe-test");
    let fe = HttpClient::new(env.clone(), demo.console.clone(), Duration::from_secs(10));
    let get = |path: &str| {
        let (fe, path) = (fe.clone(), path.to_string());
        async move { fe.request(Method::GET, &path, None).await.expect("codis-fe answers") }
    };

    let list = get("/list").await;
    assert_eq!(serde_json::from_slice::<Value>(&list.body).expect("JSON"), json!(["codis-demo"]));
    let page = get("/").await;
    assert!(page.is_success() && page.text().contains("<html"), "the page: {}", page.text());
    assert!(get("/assets/app.js").await.is_success());

    // Forwarded: the dashboard's overview, and its refusals as they are.
    let overview = get("/topom?forward=codis-demo").await;
    let overview: Value = serde_json::from_slice(&overview.body).expect("JSON");
    assert_eq!(overview["config"]["product_name"], "codis-demo");
    let refused = fe
        .request(Method::PUT, "/api/topom/group/create/wrong-secret/9?forward=codis-demo", None)
        .await
        .expect("answered");
    assert_eq!(refused.status, 403, "{}", refused.text());
    let xauth = model::auth::dashboard_xauth("codis-demo", "");
    let created = fe
        .request(Method::PUT, &format!("/api/topom/group/create/{xauth}/9?forward=codis-demo"), None)
        .await
        .expect("answered");
    assert!(created.is_success(), "{}", created.text());

    // An unknown product, and a path that is neither the page nor forwarded.
    let unknown = get("/topom?forward=nope").await;
    assert_eq!(unknown.status, 404);
    assert!(unknown.text().contains("no product named"), "{}", unknown.text());
    assert_eq!(get("/topom").await.status, 404);

    // A browser calling it by a name it does not know is refused (DNS rebinding); by its
    // address it is served; a tool (no browser's User-Agent) is served whatever name it uses.
    for (server, host, browser, expected) in [
        (&demo.console, "rebound.example", true, "421"),
        (&demo.console, demo.console.as_str(), true, "200"),
        (&demo.console, "rebound.example", false, "200"),
        (&demo.dashboard, "rebound.example", true, "421"),
        (&demo.dashboard, "localhost", true, "200"),
    ] {
        let status = raw_get(&env, server, "/topom?forward=codis-demo", host, browser).await;
        assert!(status.contains(expected), "GET {server} as {host} (browser {browser}): {status}");
    }

    // The dashboard serves the same page, and names its one product.
    let dashboard = HttpClient::new(env.clone(), demo.dashboard.clone(), Duration::from_secs(10));
    let page = dashboard.request(Method::GET, "/", None).await.expect("the dashboard answers");
    assert!(page.text().contains("<html"), "{}", page.text());
    let list = dashboard.request(Method::GET, "/list", None).await.expect("the dashboard answers");
    assert_eq!(serde_json::from_slice::<Value>(&list.body).expect("JSON"), json!(["codis-demo"]));
}

/// The status line of `GET path` sent to `server` with `Host: host`, as a browser sends it over
/// plain HTTP to a name (its User-Agent, no `Sec-Fetch-*`) or as a tool does.
async fn raw_get(env: &TokioEnv, server: &str, path: &str, host: &str, browser: bool) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = env.connect(server, Duration::from_secs(5)).await.expect("connects");
    let fetch = if browser { "User-Agent: Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0\r\n" } else { "" };
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{fetch}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("sends");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).lines().next().unwrap_or_default().to_string()
}
