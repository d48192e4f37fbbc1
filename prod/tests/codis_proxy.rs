//! The `codis-proxy` binary with real tools: two `codis-server`s behind it, slots filled and the
//! proxy started through its admin HTTP API, then `redis-cli` (pipelined writes, `--scan`, a
//! transaction, pub/sub) and `redis-benchmark` through it.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::time::Duration;

use net::{Env, TokioEnv};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A running binary, killed on drop.
struct Running {
    child: Child,
    _stderr: BufReader<ChildStderr>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `binary` and returns it with the addresses its log announces after each `markers`.
fn start(binary: &str, args: &[&str], markers: &[&str]) -> (Running, Vec<String>) {
    let mut child = Command::new(binary)
        .args(args)
        .args(["--log-level", "info"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the binary");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr is piped"));
    let mut found = Vec::new();
    let mut line = String::new();
    while found.len() < markers.len() {
        line.clear();
        if stderr.read_line(&mut line).expect("read the log") == 0 {
            panic!("{binary} exited early");
        }
        let marker = markers[found.len()];
        if let Some(rest) = line.split(marker).nth(1) {
            found.push(rest.split_whitespace().next().unwrap_or_default().to_string());
        }
    }
    (Running { child, _stderr: stderr }, found)
}

fn redis_cli(port: &str, args: &[&str]) -> String {
    let output = Command::new("redis-cli")
        .args(["-p", port])
        .args(args)
        .output()
        .expect("redis-cli must be installed (`just test` installs redis-tools)");
    assert!(output.status.success(), "redis-cli {args:?}: {output:?}");
    String::from_utf8_lossy(&output.stdout).trim_end().to_string()
}

/// `redis-cli` reading its commands from `input`, as when a script pipes them in.
fn redis_cli_input(port: &str, input: &str) -> String {
    use std::io::Write as _;
    let mut child = Command::new("redis-cli")
        .args(["-p", port])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("redis-cli must be installed (`just test` installs redis-tools)");
    child.stdin.take().expect("stdin is piped").write_all(input.as_bytes()).expect("write");
    let output = child.wait_with_output().expect("redis-cli");
    assert!(output.status.success(), "redis-cli < {input:?}: {output:?}");
    String::from_utf8_lossy(&output.stdout).trim_end().to_string()
}

/// One HTTP/1.1 request; returns the status code and the body.
fn http(addr: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let env = TokioEnv::with_seed(1);
        let mut stream = env.connect(addr, Duration::from_secs(5)).await.expect("connect to the admin API");
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.expect("send");
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.expect("read");
        let response = String::from_utf8_lossy(&response).into_owned();
        let status = response.split_whitespace().nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
        let body = response.split("\r\n\r\n").nth(1).unwrap_or_default().to_string();
        (status, body)
    })
}

fn port_of(addr: &str) -> String {
    addr.rsplit(':').next().unwrap_or_default().to_string()
}

#[test]
fn a_two_group_cluster_through_the_admin_api_serves_redis_tools() {
    let server = env!("CARGO_BIN_EXE_codis-server");
    // The servers share the product's password, which the proxy AUTHs with.
    let (_first, first) = start(server, &["--port", "0", "--requirepass", "pw"], &["addr="]);
    let (_second, second) = start(server, &["--port", "0", "--requirepass", "pw"], &["addr="]);
    let (_proxy, addrs) = start(
        env!("CARGO_BIN_EXE_codis-proxy"),
        &[
            "--proxy-addr",
            "127.0.0.1:0",
            "--admin-addr",
            "127.0.0.1:0",
            "--product_name",
            "test",
            "--product_auth",
            "pw",
        ],
        &["admin=", "addr="],
    );
    let (admin, proxy) = (addrs[0].clone(), port_of(&addrs[1]));
    // Waiting online until started.
    assert_eq!(redis_cli(&proxy, &["GET", "a"]), "ERR router is not online");

    let (status, model) = http(&admin, "GET", "/proxy/model", "");
    assert_eq!(status, 200, "{model}");
    let model: serde_json::Value = serde_json::from_str(&model).expect("model JSON");
    let token = model["token"].as_str().expect("token").to_string();
    assert_eq!(model["product_name"], "test");
    let xauth = proxy::admin::xauth("test", "pw", &token);
    let (status, body) = http(&admin, "PUT", "/api/proxy/start/wrong", "");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("\"error\""), "{body}");

    let slots: Vec<serde_json::Value> = (0..1024)
        .map(|id| serde_json::json!({ "id": id, "backend_addr": if id < 512 { &first[0] } else { &second[0] } }))
        .collect();
    let body = serde_json::to_string(&slots).expect("slots JSON");
    let (status, reply) = http(&admin, "PUT", &format!("/api/proxy/fillslots/{xauth}"), &body);
    assert_eq!(status, 200, "{reply}");
    let (status, reply) = http(&admin, "PUT", &format!("/api/proxy/fillslots/{xauth}"), "[{\"id\": 5000}]");
    assert_eq!(status, 400, "{reply}");
    let (status, reply) = http(&admin, "PUT", &format!("/api/proxy/start/{xauth}"), "");
    assert_eq!(status, 200, "{reply}");

    assert_eq!(redis_cli(&proxy, &["SET", "a", "1"]), "OK");
    assert_eq!(redis_cli(&proxy, &["MSET", "b", "2", "c", "3"]), "OK");
    assert_eq!(redis_cli(&proxy, &["MGET", "a", "b", "c"]), "1\n2\n3");
    let mut scanned: Vec<String> = redis_cli(&proxy, &["--scan"]).lines().map(str::to_string).collect();
    scanned.sort();
    assert_eq!(scanned, ["a", "b", "c"]);
    // A transaction of one slot, typed in.
    assert_eq!(redis_cli_input(&proxy, "MULTI\nSET {t}x 1\nINCR {t}x\nEXEC\n"), "OK\nQUEUED\nQUEUED\nOK\n2");
    redis_cli(&proxy, &["DEL", "{t}x"]);
    // Pub/sub: a subscriber hears what is published through the proxy, whichever group the
    // channel's slot is on.
    let mut subscriber = Command::new("redis-cli")
        .args(["-p", &proxy, "SUBSCRIBE", "news", "weather"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("redis-cli");
    let mut heard = BufReader::new(subscriber.stdout.take().expect("stdout is piped"));
    let mut lines = |count: usize| -> Vec<String> {
        (0..count)
            .map(|_| {
                let mut line = String::new();
                heard.read_line(&mut line).expect("read");
                line.trim_end().to_string()
            })
            .collect()
    };
    assert_eq!(lines(6), ["subscribe", "news", "1", "subscribe", "weather", "2"]);
    assert_eq!(redis_cli(&proxy, &["PUBLISH", "news", "hello"]), "1");
    assert_eq!(redis_cli(&proxy, &["PUBLISH", "weather", "rain"]), "1");
    assert_eq!(lines(6), ["message", "news", "hello", "message", "weather", "rain"]);
    let _ = subscriber.kill();
    let _ = subscriber.wait();
    let benchmark = Command::new("redis-benchmark")
        .args(["-p", &proxy, "-t", "set,get,mset", "-n", "5000", "-P", "16", "-q"])
        .output()
        .expect("redis-benchmark must be installed");
    assert!(benchmark.status.success(), "{benchmark:?}");
    let both: u64 = [&first[0], &second[0]]
        .iter()
        .map(|addr| {
            let port = port_of(addr);
            redis_cli(&port, &["-a", "pw", "--no-auth-warning", "DBSIZE"]).parse::<u64>().expect("DBSIZE")
        })
        .sum();
    assert!(both >= 4, "keys landed on the servers: {both}");

    let (status, stats) = http(&admin, "GET", "/proxy/stats", "");
    assert_eq!(status, 200);
    let stats: serde_json::Value = serde_json::from_str(&stats).expect("stats JSON");
    assert_eq!(stats["online"], true);
    assert!(stats["ops"]["total"].as_u64().unwrap_or(0) > 10_000, "{stats}");
    let (status, metrics) = http(&admin, "GET", "/metrics", "");
    assert_eq!(status, 200);
    assert!(metrics.contains("codis_proxy_ops_total "), "{metrics}");
    for server in [&first[0], &second[0]] {
        let up = format!("codis_proxy_backend_up{{addr=\"{server}\",health=\"up\"}} 1");
        assert!(metrics.contains(&up), "{metrics}");
    }
    // Per command: calls and a latency histogram whose +Inf bucket counts every call.
    let calls = metrics
        .lines()
        .find_map(|line| line.strip_prefix("codis_proxy_command_calls_total{cmd=\"SET\"} "))
        .and_then(|value| value.parse::<u64>().ok())
        .expect("SET calls in /metrics");
    assert!(calls >= 5_000, "{calls}");
    assert!(
        metrics.contains(&format!("codis_proxy_command_duration_seconds_bucket{{cmd=\"SET\",le=\"+Inf\"}} {calls}\n")),
        "{metrics}"
    );
    let (status, stats) = http(&admin, "GET", &format!("/api/proxy/stats/{xauth}/1"), "");
    assert_eq!(status, 200, "{stats}");
    let stats: serde_json::Value = serde_json::from_str(&stats).expect("stats JSON");
    let commands = stats["ops"]["cmd"].as_array().expect("per-command stats");
    let get = commands.iter().find(|command| command["opstr"] == "GET").expect("GET's stats");
    assert!(get["calls"].as_u64().unwrap_or(0) >= 5_000, "{get}");
    assert!(get["usecs_percall"].as_u64().is_some(), "{get}");
    // The log level changes at run time; a bad one is refused.
    let (status, body) = http(&admin, "PUT", &format!("/api/proxy/loglevel/{xauth}/DEBUG"), "");
    assert_eq!(status, 200, "{body}");
    let (status, body) = http(&admin, "PUT", &format!("/api/proxy/loglevel/{xauth}/loud"), "");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("unknown log level"), "{body}");
    let (status, slots) = http(&admin, "GET", &format!("/api/proxy/slots/{xauth}"), "");
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_str::<Vec<serde_json::Value>>(&slots).expect("slots").len(), 1024);
    let (status, _) = http(&admin, "PUT", &format!("/api/proxy/shutdown/{xauth}"), "");
    assert_eq!(status, 200);
}

/// Accepts one HTTP request on `listener`, answers it with `status` and `body`, and returns its
/// request line.
fn answer_one(
    runtime: &tokio::runtime::Runtime,
    listener: &<TokioEnv as Env>::Listener,
    status: &str,
    body: &str,
) -> String {
    runtime.block_on(async {
        let (mut stream, _) = listener.accept().await.expect("the proxy connects");
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            head.push(stream.read_u8().await.expect("the request ended early"));
        }
        let reply = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(reply.as_bytes()).await.expect("answer");
        String::from_utf8_lossy(&head).lines().next().unwrap_or_default().to_string()
    })
}

#[test]
fn a_proxy_given_its_dashboard_asks_it_to_take_the_proxy_online() {
    let (_server, server) =
        start(env!("CARGO_BIN_EXE_codis-server"), &["--port", "0", "--requirepass", "secret"], &["addr="]);
    // The dashboard's side of `online-proxy`, played by the test (the dashboard itself is
    // built with the coordinator): take the request, then fill and start the proxy.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let dashboard = runtime.block_on(TokioEnv::with_seed(2).bind("127.0.0.1:0")).expect("bind");
    let dashboard_addr = net::Listener::local_addr(&dashboard).expect("addr").to_string();
    let args = [
        "--proxy-addr",
        "127.0.0.1:0",
        "--admin-addr",
        "127.0.0.1:0",
        "--product_name",
        "demo",
        "--product_auth",
        "secret",
        "--dashboard",
        &dashboard_addr,
    ];
    let (_proxy, addrs) = start(env!("CARGO_BIN_EXE_codis-proxy"), &args, &["admin=", "addr="]);
    let (admin, proxy) = (addrs[0].clone(), port_of(&addrs[1]));
    let request = answer_one(&runtime, &dashboard, "200 OK", "\"OK\"");
    let xauth = proxy::register::dashboard_xauth("demo", "secret");
    assert_eq!(request, format!("PUT /api/topom/proxy/online/{xauth}/{admin} HTTP/1.1"));
    assert_ne!(xauth, proxy::register::dashboard_xauth("demo", ""), "the secret covers the password");
    let (_, model) = http(&admin, "GET", "/api/proxy/model", "");
    let token =
        serde_json::from_str::<serde_json::Value>(&model).expect("model")["token"].as_str().expect("token").to_string();
    let proxy_xauth = proxy::admin::xauth("demo", "secret", &token);
    let slots: Vec<serde_json::Value> =
        (0..1024).map(|id| serde_json::json!({ "id": id, "backend_addr": &server[0] })).collect();
    let body = serde_json::to_string(&slots).expect("slots JSON");
    assert_eq!(http(&admin, "PUT", &format!("/api/proxy/fillslots/{proxy_xauth}"), &body).0, 200);
    assert_eq!(http(&admin, "PUT", &format!("/api/proxy/start/{proxy_xauth}"), "").0, 200);
    assert_eq!(redis_cli(&proxy, &["SET", "a", "1"]), "OK");

    // A dashboard that refuses (a wrong password, say) makes the proxy exit with an error.
    let (mut refused, _) = start(env!("CARGO_BIN_EXE_codis-proxy"), &args, &["admin="]);
    answer_one(&runtime, &dashboard, "403 Forbidden", "{\"error\":\"invalid xauth\"}");
    let status = refused.child.wait().expect("the proxy exits");
    assert!(!status.success(), "{status:?}");
}
