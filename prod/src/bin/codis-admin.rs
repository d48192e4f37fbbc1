//! `codis-admin`: Codis' admin verbs against a dashboard, a proxy or the coordinator directly.
//! Human output by default, `--json` for scripts; long operations (rebalance, migrating a
//! range) show progress and can be followed to the end with `--wait`.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use clap::Parser;
use coordinator::{AnyCoordinator, Coordinator, CoordinatorAddr};
use net::TokioEnv;
use net::http::{HttpClient, Method};
use serde_json::Value;

/// Codis' admin tool.
#[derive(Parser, Debug)]
#[command(
    name = "codis-admin",
    version,
    about = "Operate a Codis product: its dashboard, a proxy, or the coordinator."
)]
struct Args {
    /// Talk to the dashboard at ADDR (host:port).
    #[arg(long, value_name = "ADDR", conflicts_with_all = ["proxy", "filesystem", "etcd"])]
    dashboard: Option<String>,
    /// Talk to the proxy whose admin API is at ADDR.
    #[arg(long, value_name = "ADDR", conflicts_with_all = ["filesystem", "etcd"])]
    proxy: Option<String>,
    /// Work on the filesystem coordinator at ROOT directly.
    #[arg(long, value_name = "ROOT")]
    filesystem: Option<String>,
    /// Work on etcd at ADDRS directly.
    #[arg(long, value_name = "ADDRS")]
    etcd: Option<String>,
    /// The product's password (what the REST APIs' secrets are derived from).
    #[arg(long, default_value = "")]
    auth: String,
    /// The product, for coordinator verbs.
    #[arg(long)]
    product: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Follow slot actions until none is left (after --rebalance --confirm, --slot-action …).
    #[arg(long)]
    wait: bool,

    // Dashboard verbs.
    /// The groups and their servers.
    #[arg(long)]
    list_group: bool,
    /// The proxies and their standing.
    #[arg(long)]
    list_proxy: bool,
    /// Slots per group and the actions under way.
    #[arg(long)]
    slots_status: bool,
    /// Create group --gid.
    #[arg(long)]
    create_group: bool,
    /// Remove group --gid (it must be empty).
    #[arg(long)]
    remove_group: bool,
    /// Add server --addr to group --gid [--datacenter].
    #[arg(long)]
    group_add: bool,
    /// Remove server --addr from group --gid.
    #[arg(long)]
    group_del: bool,
    /// Push group --gid's slots (or --all) to every proxy again.
    #[arg(long)]
    resync_group: bool,
    /// Let proxies read from replica --addr of --gid (--enable) or stop (--disable).
    #[arg(long)]
    replica_groups: bool,
    /// Replica sync: make server --addr follow its group's master now (--create).
    #[arg(long)]
    sync_action: bool,
    /// Promote replica --addr of group --gid to master (waits until it is done).
    #[arg(long)]
    promote_server: bool,
    /// Automatic failover of group --gid: --enable or --disable.
    #[arg(long)]
    group_failover: bool,
    /// Register the proxy whose admin API is at --addr.
    #[arg(long)]
    create_proxy: bool,
    /// Register (or take back) the proxy at --addr.
    #[arg(long)]
    online_proxy: bool,
    /// Remove the proxy (--addr or --token) [--force].
    #[arg(long)]
    remove_proxy: bool,
    /// Re-initialise the proxy (--addr, --token or --all).
    #[arg(long)]
    reinit_proxy: bool,
    /// Slot actions: --create --sid --gid | --create-range --beg --end --gid | --create-some
    /// --gid-from --gid-to --num-slots | --remove --sid | --interval=N | --disabled=0/1.
    #[arg(long)]
    slot_action: bool,
    /// Force slots --beg..--end to group --gid (or --offline), moving no key; needs --confirm.
    #[arg(long)]
    slots_assign: bool,
    /// Plan a rebalance (and start it with --confirm).
    #[arg(long)]
    rebalance: bool,
    /// Read the model from the coordinator again.
    #[arg(long)]
    reload: bool,
    /// Shut the dashboard (or, with --proxy, the proxy) down.
    #[arg(long)]
    shutdown: bool,

    // Proxy verbs.
    /// Start the proxy (serve clients).
    #[arg(long)]
    start: bool,
    /// Fill the proxy's slots from a JSON file of slots.
    #[arg(long, value_name = "FILE")]
    fillslots: Option<std::path::PathBuf>,
    /// With --fillslots: lock every slot filled.
    #[arg(long)]
    locked: bool,
    /// Reset the proxy's counters.
    #[arg(long)]
    reset_stats: bool,

    // Coordinator verbs.
    /// Remove the product's dashboard lock.
    #[arg(long)]
    remove_lock: bool,
    /// Print the product's model ({slots, group, proxy}).
    #[arg(long)]
    config_dump: bool,
    /// The products in the coordinator and their dashboards.
    #[arg(long)]
    dashboard_list: bool,

    // Arguments.
    #[arg(long)]
    gid: Option<u32>,
    #[arg(long)]
    addr: Option<String>,
    #[arg(long, default_value = "")]
    datacenter: String,
    #[arg(long)]
    token: Option<String>,
    #[arg(long)]
    sid: Option<u32>,
    #[arg(long)]
    beg: Option<u32>,
    #[arg(long)]
    end: Option<u32>,
    #[arg(long)]
    gid_from: Option<u32>,
    #[arg(long)]
    gid_to: Option<u32>,
    #[arg(long)]
    num_slots: Option<u32>,
    #[arg(long)]
    create: bool,
    #[arg(long)]
    create_range: bool,
    #[arg(long)]
    create_some: bool,
    #[arg(long)]
    remove: bool,
    #[arg(long)]
    interval: Option<u64>,
    #[arg(long)]
    disabled: Option<u8>,
    #[arg(long)]
    enable: bool,
    #[arg(long)]
    disable: bool,
    #[arg(long)]
    all: bool,
    #[arg(long)]
    force: bool,
    #[arg(long)]
    offline: bool,
    #[arg(long)]
    confirm: bool,
    /// Log level of the tool itself.
    #[arg(long, short = 'v', default_value = "warn")]
    log_level: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let _log = prod::logging::init(&args.log_level);
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("codis-admin: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("codis-admin: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn env() -> anyhow::Result<TokioEnv> {
    TokioEnv::new().context("seeding randomness")
}

async fn run(args: Args) -> anyhow::Result<()> {
    if let Some(addr) = args.dashboard.clone() {
        let dashboard = DashboardClient::connect(env()?, &addr, &args.auth).await?;
        return dashboard_verb(&dashboard, &args).await;
    }
    if let Some(addr) = args.proxy.clone() {
        return proxy_verb(env()?, &addr, &args).await;
    }
    let coordinator = match (&args.filesystem, &args.etcd) {
        (Some(root), _) => CoordinatorAddr::Filesystem(root.clone()),
        (None, Some(endpoints)) => CoordinatorAddr::new("etcd", endpoints)?,
        (None, None) => bail!("say what to talk to: --dashboard ADDR, --proxy ADDR, --filesystem ROOT or --etcd ADDRS"),
    };
    coordinator_verb(AnyCoordinator::connect(env()?, &coordinator, Duration::from_secs(5)), &args).await
}

fn need<T: Clone>(value: &Option<T>, flag: &str) -> anyhow::Result<T> {
    value.clone().ok_or_else(|| anyhow!("{flag} is needed"))
}

/// A dashboard's REST API.
struct DashboardClient {
    http: HttpClient<TokioEnv>,
    xauth: String,
}

impl DashboardClient {
    async fn connect(env: TokioEnv, addr: &str, auth: &str) -> anyhow::Result<DashboardClient> {
        let http = HttpClient::new(env, addr, Duration::from_secs(60));
        let model: Value = decode(&http, Method::GET, "/api/topom/model", None).await?;
        let product = model["product_name"].as_str().ok_or_else(|| anyhow!("{addr} is not a dashboard: {model}"))?;
        let xauth = model::auth::dashboard_xauth(product, auth);
        let client = DashboardClient { http, xauth };
        client.put(&["xping"]).await.map_err(|error| anyhow!("{error} (is --auth the product's password?)"))?;
        Ok(client)
    }

    /// `PUT /api/topom/<verb…>/<xauth>/<args…>`: the first element is the verb's path.
    async fn put(&self, parts: &[&str]) -> anyhow::Result<Value> {
        self.call(Method::PUT, parts, None).await
    }

    async fn call(&self, method: Method, parts: &[&str], body: Option<Vec<u8>>) -> anyhow::Result<Value> {
        let (verb, rest) = parts.split_first().ok_or_else(|| anyhow!("no verb"))?;
        let mut path = format!("/api/topom/{verb}/{}", self.xauth);
        for part in rest {
            path.push('/');
            path.push_str(part);
        }
        let method = if *verb == "xping" || *verb == "stats" { Method::GET } else { method };
        decode(&self.http, method, &path, body).await
    }

    async fn stats(&self) -> anyhow::Result<Value> {
        self.call(Method::GET, &["stats"], None).await
    }
}

async fn decode(
    http: &HttpClient<TokioEnv>,
    method: Method,
    path: &str,
    body: Option<Vec<u8>>,
) -> anyhow::Result<Value> {
    let response = http.request(method, path, body).await?;
    let value: Value = serde_json::from_slice(&response.body).unwrap_or_else(|_| Value::String(response.text()));
    if !response.is_success() {
        let message = value["error"].as_str().map(str::to_string).unwrap_or_else(|| response.text());
        bail!("{message} (HTTP {})", response.status);
    }
    Ok(value)
}

fn print_json(value: &Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// `value` as JSON with `--json`, else what `human` prints.
fn show(json: bool, value: &Value, human: impl FnOnce()) -> anyhow::Result<()> {
    if json {
        return print_json(value);
    }
    human();
    Ok(())
}

async fn dashboard_verb(dashboard: &DashboardClient, args: &Args) -> anyhow::Result<()> {
    let gid = || need(&args.gid, "--gid").map(|gid| gid.to_string());
    let addr = || need(&args.addr, "--addr");
    let done = |answer: Value| show(args.json, &answer, || println!("done"));
    if args.create_group {
        return done(dashboard.put(&["group/create", &gid()?]).await?);
    }
    if args.remove_group {
        return done(dashboard.put(&["group/remove", &gid()?]).await?);
    }
    if args.group_add {
        let (gid, addr) = (gid()?, addr()?);
        let mut parts = vec!["group/add", &gid, &addr];
        if !args.datacenter.is_empty() {
            parts.push(&args.datacenter);
        }
        return done(dashboard.put(&parts).await?);
    }
    if args.group_del {
        return done(dashboard.put(&["group/del", &gid()?, &addr()?]).await?);
    }
    if args.resync_group {
        return done(if args.all {
            dashboard.put(&["group/resync-all"]).await?
        } else {
            dashboard.put(&["group/resync", &gid()?]).await?
        });
    }
    if args.replica_groups {
        let value = match (args.enable, args.disable) {
            (true, false) => "1",
            (false, true) => "0",
            _ => bail!("say --enable or --disable"),
        };
        return done(dashboard.put(&["group/replica-groups", &gid()?, &addr()?, value]).await?);
    }
    if args.promote_server {
        return done(dashboard.put(&["group/promote", &gid()?, &addr()?]).await?);
    }
    if args.group_failover {
        let value = match (args.enable, args.disable) {
            (true, false) => "1",
            (false, true) => "0",
            _ => bail!("say --enable or --disable"),
        };
        return done(dashboard.put(&["group/failover", &gid()?, value]).await?);
    }
    if args.sync_action {
        if !args.create {
            bail!("--sync-action takes --create --addr (a sync runs at once; there is nothing to remove)");
        }
        return done(dashboard.put(&["group/action/create", &addr()?]).await?);
    }
    if args.create_proxy || args.online_proxy {
        let verb = if args.create_proxy { "proxy/create" } else { "proxy/online" };
        let proxy = dashboard.put(&[verb, &addr()?]).await?;
        return show(args.json, &proxy, || println!("proxy {} online (token {})", proxy["admin_addr"], proxy["token"]));
    }
    if args.remove_proxy || args.reinit_proxy {
        let stats = dashboard.stats().await?;
        let models = stats["proxy"]["models"].as_array().cloned().unwrap_or_default();
        let tokens: Vec<String> = if args.all && args.reinit_proxy {
            models.iter().filter_map(|proxy| proxy["token"].as_str().map(str::to_string)).collect()
        } else if let Some(token) = &args.token {
            vec![token.clone()]
        } else {
            let addr = addr()?;
            let found = models.iter().find(|proxy| {
                proxy["admin_addr"].as_str() == Some(addr.as_str())
                    || proxy["proxy_addr"].as_str() == Some(addr.as_str())
            });
            vec![
                found
                    .and_then(|proxy| proxy["token"].as_str())
                    .ok_or_else(|| anyhow!("no proxy at {addr}"))?
                    .to_string(),
            ]
        };
        for token in tokens {
            if args.remove_proxy {
                dashboard.put(&["proxy/remove", &token, if args.force { "1" } else { "0" }]).await?;
            } else {
                dashboard.put(&["proxy/reinit", &token]).await?;
            }
            if !args.json {
                println!("proxy {token}: done");
            }
        }
        return Ok(());
    }
    if args.slot_action {
        if let Some(micros) = args.interval {
            return done(dashboard.put(&["slots/action/interval", &micros.to_string()]).await?);
        }
        if let Some(disabled) = args.disabled {
            return done(dashboard.put(&["slots/action/disabled", &disabled.to_string()]).await?);
        }
        let answer = if args.create_range {
            let (beg, end) = (need(&args.beg, "--beg")?.to_string(), need(&args.end, "--end")?.to_string());
            dashboard.put(&["slots/action/create-range", &beg, &end, &gid()?]).await?
        } else if args.create_some {
            let (from, to) =
                (need(&args.gid_from, "--gid-from")?.to_string(), need(&args.gid_to, "--gid-to")?.to_string());
            dashboard
                .put(&["slots/action/create-some", &from, &to, &need(&args.num_slots, "--num-slots")?.to_string()])
                .await?
        } else if args.create {
            dashboard.put(&["slots/action/create", &need(&args.sid, "--sid")?.to_string(), &gid()?]).await?
        } else if args.remove {
            dashboard.put(&["slots/action/remove", &need(&args.sid, "--sid")?.to_string()]).await?
        } else {
            bail!("--slot-action needs --create, --create-range, --create-some, --remove, --interval or --disabled");
        };
        done(answer)?;
        return if args.wait { follow(dashboard).await } else { Ok(()) };
    }
    if args.slots_assign {
        let (beg, end) = (need(&args.beg, "--beg")?, need(&args.end, "--end")?);
        let group = if args.offline { 0 } else { need(&args.gid, "--gid")? };
        let mappings: Vec<Value> = (beg..=end).map(|sid| serde_json::json!({ "id": sid, "group_id": group })).collect();
        let body = serde_json::to_vec(&mappings)?;
        if !args.confirm {
            println!("{}", serde_json::to_string_pretty(&mappings)?);
            println!("(not applied: add --confirm; this moves no key, so data in those slots stays where it is)");
            return Ok(());
        }
        let mut parts = vec!["slots/assign"];
        if args.offline {
            parts.push("offline");
        }
        return done(dashboard.call(Method::PUT, &parts, Some(body)).await?);
    }
    if args.rebalance {
        let plan = dashboard.put(&["slots/rebalance", if args.confirm { "1" } else { "0" }]).await?;
        if args.json {
            print_json(&plan)?;
        } else {
            print_plan(&plan, args.confirm);
        }
        return if args.confirm && args.wait { follow(dashboard).await } else { Ok(()) };
    }
    if args.reload {
        return done(dashboard.put(&["reload"]).await?);
    }
    if args.shutdown {
        return done(dashboard.put(&["shutdown"]).await?);
    }
    let stats = dashboard.stats().await?;
    if args.list_group {
        return show(args.json, &stats["group"]["models"], || print_groups(&stats));
    }
    if args.list_proxy {
        return show(args.json, &stats["proxy"], || print_proxies(&stats));
    }
    if args.slots_status {
        return show(args.json, &stats["slots"], || print_slots(&stats));
    }
    if args.json {
        return print_json(&stats);
    }
    print_groups(&stats);
    print_proxies(&stats);
    print_slots(&stats);
    Ok(())
}

/// `[beg, end] => gid` ranges, as Codis prints a plan.
fn print_plan(plan: &Value, confirmed: bool) {
    let mut moves: Vec<(u32, u64)> = plan
        .as_object()
        .map(|plan| plan.iter().filter_map(|(slot, group)| Some((slot.parse().ok()?, group.as_u64()?))).collect())
        .unwrap_or_default();
    moves.sort_unstable();
    if moves.is_empty() {
        println!("balanced: nothing to move");
        return;
    }
    let mut start = 0;
    for index in 1..=moves.len() {
        let breaks =
            index == moves.len() || moves[index].0 != moves[index - 1].0 + 1 || moves[index].1 != moves[start].1;
        if breaks {
            println!("[{:4}, {:4}] => group {}", moves[start].0, moves[index - 1].0, moves[start].1);
            start = index;
        }
    }
    println!(
        "{} slots to move{}",
        moves.len(),
        if confirmed { "; actions created" } else { " (add --confirm to start)" }
    );
}

fn print_groups(stats: &Value) {
    for group in stats["group"]["models"].as_array().into_iter().flatten() {
        let servers: Vec<String> = group["servers"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
            .map(|(index, server)| {
                let role = if index == 0 { "master" } else { "replica" };
                let reads = if server["replica_group"].as_bool() == Some(true) { ", reads" } else { "" };
                let addr = server["server"].as_str().unwrap_or("?");
                let probe = &stats["group"]["servers"][addr];
                let down = probe["down_ms"].as_u64().filter(|down| *down > 0);
                let health = down.map(|down| format!(", down {down} ms")).unwrap_or_default();
                format!("{addr} ({role}{reads}{health})")
            })
            .collect();
        let epoch = group["epoch"].as_u64().unwrap_or(0);
        let auto = if group["failover_disabled"].as_bool() == Some(true) { ", failover off" } else { "" };
        let status = stats["failover"]["status"][group["id"].to_string()].as_str().unwrap_or_default();
        println!(
            "group {:>4}: {} [epoch {epoch}{auto}] {status}",
            group["id"],
            if servers.is_empty() { "no server".into() } else { servers.join(", ") }
        );
    }
}

fn print_proxies(stats: &Value) {
    for proxy in stats["proxy"]["models"].as_array().into_iter().flatten() {
        let token = proxy["token"].as_str().unwrap_or_default();
        let standing = &stats["proxy"]["stats"][token];
        println!(
            "proxy {:>3}: {} (admin {}) {}{}",
            proxy["id"],
            proxy["proxy_addr"].as_str().unwrap_or("?"),
            proxy["admin_addr"].as_str().unwrap_or("?"),
            standing["state"].as_str().unwrap_or("?"),
            standing["error"]
                .as_str()
                .filter(|error| !error.is_empty())
                .map(|error| format!(": {error}"))
                .unwrap_or_default()
        );
    }
}

fn print_slots(stats: &Value) {
    let mut per_group: BTreeMap<u64, usize> = BTreeMap::new();
    let mut actions = Vec::new();
    for slot in stats["slots"].as_array().into_iter().flatten() {
        *per_group.entry(slot["group_id"].as_u64().unwrap_or(0)).or_default() += 1;
        if let Some(state) = slot["action"]["state"].as_str().filter(|state| !state.is_empty()) {
            actions.push(format!("slot {:>4} → group {} ({state})", slot["id"], slot["action"]["target_id"]));
        }
    }
    for (group, count) in per_group {
        if group == 0 {
            println!("offline: {count} slots");
        } else {
            println!("group {group:>4}: {count} slots");
        }
    }
    println!("{} slot actions under way", actions.len());
    for line in actions.iter().take(20) {
        println!("  {line}");
    }
    for (slot, status) in stats["slot_action"]["progress"]["status"].as_object().into_iter().flatten() {
        if status.as_str().is_some_and(|status| status.starts_with("[ERROR]")) {
            println!("  slot {slot}: {}", status.as_str().unwrap_or_default());
        }
    }
}

/// Follows slot actions with a progress bar until none is left.
async fn follow(dashboard: &DashboardClient) -> anyhow::Result<()> {
    let active = |stats: &Value| {
        stats["slots"].as_array().map_or(0, |slots| {
            slots.iter().filter(|slot| slot["action"]["state"].as_str().is_some_and(|state| !state.is_empty())).count()
        })
    };
    let first = active(&dashboard.stats().await?);
    let bar = indicatif::ProgressBar::new(first as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} slots moved ({elapsed}, about {eta} left) {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    loop {
        let stats = dashboard.stats().await?;
        let left = active(&stats);
        bar.set_length(first.max(left) as u64);
        bar.set_position((first.saturating_sub(left)) as u64);
        let waiting = stats["slot_action"]["progress"]["status"].as_object().and_then(|status| {
            status.values().filter_map(Value::as_str).find(|line| line.starts_with("[ERROR]")).map(str::to_string)
        });
        bar.set_message(waiting.unwrap_or_default());
        if left == 0 {
            bar.finish_with_message("done");
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn proxy_verb(env: TokioEnv, addr: &str, args: &Args) -> anyhow::Result<()> {
    let http = HttpClient::new(env, addr, Duration::from_secs(30));
    let model: Value = decode(&http, Method::GET, "/api/proxy/model", None).await?;
    let (product, token) =
        (model["product_name"].as_str().unwrap_or_default(), model["token"].as_str().unwrap_or_default());
    let xauth = model::auth::proxy_xauth(product, &args.auth, token);
    let put = |verb: &str, body: Option<Vec<u8>>| {
        let path = format!("/api/proxy/{verb}/{xauth}");
        let http = http.clone();
        async move { decode(&http, Method::PUT, &path, body).await }
    };
    if args.start {
        put("start", None).await?;
    } else if args.shutdown {
        put("shutdown", None).await?;
    } else if args.reset_stats {
        put("stats/reset", None).await?;
    } else if let Some(file) = &args.fillslots {
        let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let mut slots: Vec<Value> =
            serde_json::from_str(&text).with_context(|| format!("{} is not a JSON array of slots", file.display()))?;
        if args.locked {
            for slot in &mut slots {
                slot["locked"] = Value::Bool(true);
            }
        }
        put("fillslots", Some(serde_json::to_vec(&slots)?)).await?;
    } else {
        let overview = decode(&http, Method::GET, "/proxy", None).await?;
        return print_json(&overview);
    }
    if !args.json {
        println!("done");
    }
    Ok(())
}

async fn coordinator_verb(coordinator: AnyCoordinator<TokioEnv>, args: &Args) -> anyhow::Result<()> {
    if args.dashboard_list {
        let list = web_console::products::dashboards(&coordinator).await?;
        return print_json(&serde_json::to_value(list)?);
    }
    let product = model::ProductName::new(need(&args.product, "--product")?)?;
    if args.remove_lock {
        coordinator.delete(&product.topom_path()).await?;
        println!("removed {}", product.topom_path());
        return Ok(());
    }
    if args.config_dump {
        let mut dump = serde_json::Map::new();
        for (key, dir) in
            [("slots", product.slots_dir()), ("group", product.groups_dir()), ("proxy", product.proxies_dir())]
        {
            let records = coordinator.read_dir(&dir).await?;
            let values: Vec<Value> =
                records.iter().filter_map(|(_, record)| serde_json::from_slice(&record.value).ok()).collect();
            dump.insert(key.into(), Value::Array(values));
        }
        return print_json(&Value::Object(dump));
    }
    bail!("with a coordinator, say --remove-lock, --config-dump or --dashboard-list")
}
