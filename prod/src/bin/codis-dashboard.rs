//! `codis-dashboard`: the dashboard on real sockets.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use coordinator::{AnyCoordinator, Coordinator};
use dashboard::{Dashboard, DashboardConfig, Launch};
use net::{Env, TokioEnv};

/// The controller of a product: keeps its model in the coordinator, pushes slot tables to
/// proxies, migrates and rebalances slots.
#[derive(Parser, Debug)]
#[command(name = "codis-dashboard", version)]
struct Args {
    /// A TOML config file with Codis' keys (see --default-config); flags override it.
    #[arg(long, short = 'c')]
    config: Option<PathBuf>,
    /// Print the default configuration, documented, and exit.
    #[arg(long)]
    default_config: bool,
    /// Where the REST API listens (config key `admin_addr`).
    #[arg(long = "host-admin", alias = "admin-addr")]
    admin_addr: Option<String>,
    /// Keep the model in this directory (the filesystem coordinator).
    #[arg(long, value_name = "ROOT", conflicts_with = "etcd")]
    filesystem: Option<String>,
    /// Keep the model in etcd at these endpoints (comma-separated host:port).
    #[arg(long, value_name = "ADDRS")]
    etcd: Option<String>,
    /// The product (cluster) name.
    #[arg(long = "product_name")]
    product_name: Option<String>,
    /// The servers' password; the REST API's secret is derived from it.
    #[arg(long = "product_auth")]
    product_auth: Option<String>,
    /// Remove the product's dashboard lock first (after a crash; the lock also expires by
    /// itself `dashboard_lock_ttl` after its holder died).
    #[arg(long)]
    remove_lock: bool,
    /// Log level: error, warn, info, debug, trace.
    #[arg(long, default_value = "info")]
    log_level: String,
}

/// The default configuration, with a comment on every option; a test keeps it equal to
/// `DashboardConfig::default()`.
const DEFAULT_CONFIG: &str = r#"# codis-dashboard configuration. Keys are Codis' own (dashboard.toml), plus leases
# and failover.

# Where the product's model lives: "filesystem" (a directory on this machine) or "etcd"
# (comma-separated host:port endpoints of etcd v3).
coordinator_name = "filesystem"
coordinator_addr = "/tmp/codis"

# The product (cluster) and the password of its servers. The REST API's secret (the <xauth> in
# /api/topom/... paths) is derived from both, so it cannot be guessed from the name.
product_name = "codis-demo"
product_auth = ""

# Where the REST API listens.
admin_addr = "0.0.0.0:18080"

# How slots move: "semi-async" (the source streams keys in chunks and keeps serving) or "sync".
migration_method = "semi-async"
# Most slots migrating at once (at most one per group).
migration_parallel_slots = 100
# Asynchronous migration: elements per message, bytes in flight, keys per batch.
migration_async_maxbulks = 200
migration_async_maxbytes = "32mb"
migration_async_numkeys = 500
# How long one migration step may take.
migration_timeout = "30s"

# The dashboard's lock is leased: if this dashboard dies, another may start this long after.
dashboard_lock_ttl = "10s"
# Proxies hold a lease from the dashboard and refuse clients without one: a proxy the dashboard
# cannot reach holds a slot migration back at most this long (plus a tenth).
proxy_lease = "30s"
# How long a call to a proxy's admin API may take.
proxy_timeout = "5s"

# High availability (Codis leaves it to redis-sentinel). The dashboard fails a dead master over
# to its best replica when the dashboard and a majority of proxies have not heard from it for
# failover_down_after (redis-sentinel's down-after-milliseconds is 30 s). Groups can opt out one
# by one (codis-admin --group-failover --gid N --disable); manual promotion always works.
failover_auto = true
failover_down_after = "5s"
# A manual promotion of a replica while its master lives first waits this long for it to catch up.
failover_catch_up = "10s"
# Proxies answer a write only once this many replicas of its group have it (WAIT): a failover
# then loses no acknowledged write. 0 replicates asynchronously, as Redis and Codis do.
sync_replicas = 0

# Host names browsers may call the dashboard by (its web console at / and its API), besides IP
# addresses, localhost and the name it announces. A browser calling it by another name is
# refused, so a web page cannot reach it by DNS rebinding. Tools that are not browsers are not
# affected.
console_allowed_hosts = []
"#;

fn main() -> ExitCode {
    let args = Args::parse();
    if args.default_config {
        print!("{DEFAULT_CONFIG}");
        return ExitCode::SUCCESS;
    }
    let _log_level = prod::logging::init(&args.log_level);
    prod::exit_code(run(args))
}

fn run(args: Args) -> anyhow::Result<()> {
    let mut config: DashboardConfig = prod::config::load_or_default(args.config.as_deref())?;
    if let Some(addr) = args.admin_addr {
        config.admin_addr = addr;
    }
    if let Some(root) = args.filesystem {
        (config.coordinator_name, config.coordinator_addr) = ("filesystem".into(), root);
    }
    if let Some(endpoints) = args.etcd {
        (config.coordinator_name, config.coordinator_addr) = ("etcd".into(), endpoints);
    }
    if let Some(name) = args.product_name {
        config.product_name = name;
    }
    if let Some(auth) = args.product_auth {
        config.product_auth = auth;
    }
    let settings = config.settings()?;
    let env = TokioEnv::new().context("seeding randomness")?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    runtime.block_on(async move {
        let coordinator = AnyCoordinator::connect(env.clone(), &settings.coordinator, Duration::from_secs(5));
        if args.remove_lock {
            coordinator.delete(&settings.product.topom_path()).await.context("removing the dashboard lock")?;
            tracing::warn!(product = %settings.product, "removed the dashboard lock");
        }
        let listener = env.bind(&config.admin_addr).await.with_context(|| format!("binding {}", config.admin_addr))?;
        let hostname = prod::host::hostname();
        let admin_addr = prod::host::announced(listener.local_addr()?, &hostname);
        let launch = Launch {
            admin_addr: admin_addr.clone(),
            pid: std::process::id(),
            pwd: std::env::current_dir().map(|dir| dir.display().to_string()).unwrap_or_default(),
            sys: prod::host::uname(),
        };
        let dashboard = Dashboard::start_with(env.clone(), settings, coordinator, launch).await?;
        tracing::info!(admin = %admin_addr, xauth = %dashboard.xauth(), "dashboard ready: REST API on http://{admin_addr}/topom");
        let serving = dashboard.clone();
        env.spawn(async move { serving.serve(listener).await });
        tokio::select! {
            () = prod::signals::shutdown() => {}
            () = dashboard.closed() => {}
        }
        let lost = dashboard.is_closing();
        dashboard.shutdown().await;
        if lost {
            // Closed by itself: the lock was lost or it was shut down through the API.
            tracing::info!("dashboard stopped");
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_default_config_is_the_default() {
        let parsed: DashboardConfig = toml::from_str(DEFAULT_CONFIG).expect("the default config parses");
        assert_eq!(parsed, DashboardConfig::default());
        assert!(toml::from_str::<DashboardConfig>("proxy_leas = \"1s\"").is_err(), "unknown keys are refused");
    }
}
