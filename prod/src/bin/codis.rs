//! `codis`: the product's front door. `codis demo` starts a complete local cluster.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use clap::{Parser, Subcommand};
use net::TokioEnv;
use net::http::{HttpClient, Method};
use serde_json::Value;

#[derive(Parser, Debug)]
#[command(name = "codis", version, about = "A Codis-style distributed Redis.")]
struct Args {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Subcommand, Debug)]
enum Commands {
    /// Start a complete cluster on 127.0.0.1: a dashboard (filesystem coordinator), two groups
    /// of a master and a replica, two spare servers, one proxy, slots rebalanced, and the web
    /// console. Ctrl-C stops everything.
    Demo(Demo),
}

#[derive(Parser, Debug)]
struct Demo {
    /// Where the cluster keeps its files (coordinator, snapshots); a fresh temporary directory,
    /// removed at the end, if not given. An existing one is reused as it is.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The four codis-servers' ports: group 1's master and replica, group 2's master and replica.
    #[arg(long, value_delimiter = ',', default_value = "6379,6380,6381,6382")]
    server_ports: Vec<u16>,
    /// codis-servers started outside any group, to try growing the cluster from the console
    /// (new group, add server, rebalance).
    #[arg(long, value_delimiter = ',', default_value = "6383,6384")]
    spare_ports: Vec<u16>,
    /// The web console (codis-fe) for every product of the demo's coordinator; 0 starts none
    /// (the dashboard serves the page too).
    #[arg(long, default_value_t = 9090)]
    console_port: u16,
    /// Where clients connect to the proxy.
    #[arg(long, default_value_t = 19000)]
    proxy_port: u16,
    /// The proxy's admin API.
    #[arg(long, default_value_t = 11080)]
    proxy_admin_port: u16,
    /// The dashboard's REST API.
    #[arg(long, default_value_t = 18080)]
    dashboard_port: u16,
    /// The product's name.
    #[arg(long, default_value = "codis-demo")]
    product: String,
    /// The product's password (servers require it; the REST API's secret derives from it).
    #[arg(long, default_value = "")]
    auth: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let _log = prod::logging::init("warn");
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("codis: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = match args.command {
        Commands::Demo(demo) => runtime.block_on(run_demo(demo)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("codis: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The cluster's processes, stopped (SIGTERM, then waited for) on drop.
struct Processes(Vec<(String, Child)>);

impl Processes {
    fn spawn(&mut self, name: &str, binary: &Path, args: &[String], log: &Path) -> anyhow::Result<()> {
        #[allow(clippy::disallowed_types)] // a binary's own launcher: the children's log files
        let log = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let child = Command::new(binary)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        self.0.push((name.to_string(), child));
        Ok(())
    }

    /// The processes that exited since the last call (each named once).
    fn exited(&mut self) -> Vec<String> {
        let mut gone = Vec::new();
        self.0.retain_mut(|(name, child)| {
            let exited = matches!(child.try_wait(), Ok(Some(_)));
            if exited {
                gone.push(name.clone());
            }
            !exited
        });
        gone
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        // SIGTERM first, so each shuts down cleanly (the dashboard releases its lock).
        for (_, child) in &self.0 {
            let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
        }
        for (_, child) in &mut self.0 {
            for _ in 0..50 {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A sibling binary (built alongside this one).
fn sibling(name: &str) -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe().context("finding this binary")?;
    let path = me.with_file_name(name);
    if !path.exists() {
        bail!("{} is missing (build it with `cargo build --release -p prod`)", path.display());
    }
    Ok(path)
}

async fn run_demo(demo: Demo) -> anyhow::Result<()> {
    if demo.server_ports.len() != 4 {
        bail!("--server-ports takes four ports");
    }
    let (dir, temporary) = match &demo.dir {
        Some(dir) => (dir.clone(), false),
        None => (std::env::temp_dir().join(format!("codis-demo-{}", std::process::id())), true),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let result = demo_in(&demo, &dir).await;
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

async fn demo_in(demo: &Demo, dir: &Path) -> anyhow::Result<()> {
    let env = TokioEnv::new().context("seeding randomness")?;
    let mut processes = Processes(Vec::new());
    let servers: Vec<String> = demo.server_ports.iter().map(|port| format!("127.0.0.1:{port}")).collect();
    for port in demo.server_ports.iter().chain(&demo.spare_ports) {
        let data = dir.join(format!("server-{port}"));
        std::fs::create_dir_all(&data)?;
        let mut args = vec![
            "--bind".into(),
            "127.0.0.1".into(),
            "--port".into(),
            port.to_string(),
            "--dir".into(),
            data.display().to_string(),
        ];
        args.extend(["--appendonly".into(), "yes".into(), "--log-level".into(), "warn".into()]);
        if !demo.auth.is_empty() {
            args.extend(["--requirepass".into(), demo.auth.clone()]);
        }
        processes.spawn(
            &format!("codis-server {port}"),
            &sibling("codis-server")?,
            &args,
            &dir.join(format!("server-{port}.log")),
        )?;
    }
    let dashboard_addr = format!("127.0.0.1:{}", demo.dashboard_port);
    let coordinator = dir.join("coordinator");
    let args = vec![
        "--filesystem".into(),
        coordinator.display().to_string(),
        "--host-admin".into(),
        dashboard_addr.clone(),
        "--product_name".into(),
        demo.product.clone(),
        "--product_auth".into(),
        demo.auth.clone(),
        "--log-level".into(),
        "warn".into(),
    ];
    processes.spawn("codis-dashboard", &sibling("codis-dashboard")?, &args, &dir.join("dashboard.log"))?;
    let http = HttpClient::new(env.clone(), dashboard_addr.clone(), Duration::from_secs(60));
    wait_for(&mut processes, || async {
        http.request(Method::GET, "/topom", None).await.ok().filter(|answer| answer.is_success())
    })
    .await?;
    let xauth = model::auth::dashboard_xauth(&demo.product, &demo.auth);
    let put = |parts: Vec<String>| {
        let http = http.clone();
        let path = format!("/api/topom/{}/{xauth}/{}", parts[0], parts[1..].join("/"));
        let path = path.trim_end_matches('/').to_string();
        async move {
            let answer = http.request(Method::PUT, &path, None).await?;
            if !answer.is_success() {
                bail!("PUT {path}: {}", answer.text());
            }
            Ok(serde_json::from_slice::<Value>(&answer.body).unwrap_or(Value::Null))
        }
    };
    let stats = || async {
        let answer = http.request(Method::GET, &format!("/api/topom/stats/{xauth}"), None).await?;
        anyhow::Ok(serde_json::from_slice::<Value>(&answer.body)?)
    };
    let fresh = stats().await?["group"]["models"].as_array().is_none_or(Vec::is_empty);
    if fresh {
        for (group, pair) in [(1, &servers[0..2]), (2, &servers[2..4])] {
            put(vec!["group/create".into(), group.to_string()]).await?;
            for server in pair {
                put(vec!["group/add".into(), group.to_string(), server.clone()]).await?;
            }
            // The second server follows the first.
            put(vec!["group/action/create".into(), pair[1].clone()]).await?;
        }
    }
    let proxy_addr = format!("127.0.0.1:{}", demo.proxy_port);
    let proxy_admin = format!("127.0.0.1:{}", demo.proxy_admin_port);
    let args = vec![
        "--proxy-addr".into(),
        proxy_addr.clone(),
        "--admin-addr".into(),
        proxy_admin.clone(),
        "--product_name".into(),
        demo.product.clone(),
        "--product_auth".into(),
        demo.auth.clone(),
        "--dashboard".into(),
        dashboard_addr.clone(),
        "--log-level".into(),
        "warn".into(),
    ];
    processes.spawn("codis-proxy", &sibling("codis-proxy")?, &args, &dir.join("proxy.log"))?;
    wait_for(&mut processes, || async {
        let stats = stats().await.ok()?;
        stats["proxy"]["stats"].as_object()?.values().any(|proxy| proxy["state"] == "in_sync").then_some(())
    })
    .await?;
    put(vec!["slots/rebalance".into(), "1".into()]).await?;
    wait_for(&mut processes, || async {
        let stats = stats().await.ok()?;
        let busy = stats["slots"]
            .as_array()?
            .iter()
            .any(|slot| slot["action"]["state"].as_str().is_some_and(|state| !state.is_empty()));
        (!busy).then_some(())
    })
    .await?;
    let console = if demo.console_port == 0 {
        format!("http://{dashboard_addr}/")
    } else {
        let console_addr = format!("127.0.0.1:{}", demo.console_port);
        let args = vec![
            "--listen".into(),
            console_addr.clone(),
            "--filesystem".into(),
            coordinator.display().to_string(),
            "--log-level".into(),
            "warn".into(),
        ];
        processes.spawn("codis-fe", &sibling("codis-fe")?, &args, &dir.join("fe.log"))?;
        let fe = HttpClient::new(env.clone(), console_addr.clone(), Duration::from_secs(5));
        wait_for(&mut processes, || async {
            fe.request(Method::GET, "/list", None).await.ok().filter(|answer| answer.is_success())
        })
        .await
        .with_context(|| {
            format!("the console did not start (is {console_addr} taken? --console-port PORT, or 0 for none)")
        })?;
        format!("http://{console_addr}/#p={}", demo.product)
    };
    println!("Codis demo cluster ready (product {}, files in {}):", demo.product, dir.display());
    println!("  console:    {console}   (web page: groups, slots, rebalance)");
    println!("  proxy:      redis-cli -p {}", demo.proxy_port);
    println!("  dashboard:  http://{dashboard_addr}/topom   (REST API; secret {xauth})");
    println!("  admin:      codis-admin --dashboard {dashboard_addr} --auth '{}' --list-group", demo.auth);
    println!("  group 1:    {} (master), {} (replica)", servers[0], servers[1]);
    println!("  group 2:    {} (master), {} (replica)", servers[2], servers[3]);
    if !demo.spare_ports.is_empty() {
        let spares: Vec<String> = demo.spare_ports.iter().map(|port| format!("127.0.0.1:{port}")).collect();
        println!(
            "  spare:      {} (in no group: add them as group 3 from the console, then rebalance)",
            spares.join(", ")
        );
    }
    println!("Ctrl-C stops everything.");
    loop {
        tokio::select! {
            () = prod::signals::shutdown() => break,
            () = tokio::time::sleep(Duration::from_secs(1)) => {
                for name in processes.exited() {
                    // A server may die (or be killed to try failover): the dashboard promotes
                    // its replica, and a server started again on its port rejoins as a
                    // replica. Without the dashboard or the proxy there is no demo.
                    if !name.starts_with("codis-server") {
                        bail!("{name} exited; its log is in {}", dir.display());
                    }
                    println!("{name} exited; the dashboard fails its group over if it was a master (logs in {})", dir.display());
                }
            }
        }
    }
    println!("stopping");
    drop(processes);
    Ok(())
}

/// Polls `ready` until it gives something (60 s at most), failing early if a process died.
async fn wait_for<T, F, Fut>(processes: &mut Processes, ready: F) -> anyhow::Result<T>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..600 {
        if let Some(value) = ready().await {
            return Ok(value);
        }
        if let Some(name) = processes.exited().first() {
            return Err(anyhow!("{name} exited during start-up"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(anyhow!("the cluster did not come up within 60 s"))
}
