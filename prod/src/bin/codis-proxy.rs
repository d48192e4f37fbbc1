//! `codis-proxy`: the proxy on real sockets.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use net::{Env, TokioEnv};
use proxy::{Proxy, ProxyConfig};

/// jemalloc: a proxy allocates and frees a few small buffers per request (the split parts of a
/// multi-key command, their replies), which glibc's malloc made about a third of the proxy's CPU
/// time under pipelined MGET.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// A stateless Redis front door that routes each request to the group owning its slot.
#[derive(Parser, Debug)]
#[command(name = "codis-proxy", version)]
struct Args {
    /// A TOML config file with Codis' keys (see --default-config); flags override it.
    #[arg(long, short = 'c')]
    config: Option<PathBuf>,
    /// Print the default configuration, documented, and exit.
    #[arg(long)]
    default_config: bool,
    /// Where clients connect (config key `proxy_addr`).
    #[arg(long)]
    proxy_addr: Option<String>,
    /// Where the admin HTTP API listens (config key `admin_addr`).
    #[arg(long)]
    admin_addr: Option<String>,
    /// The product (cluster) name.
    #[arg(long = "product_name")]
    product_name: Option<String>,
    /// Password of the backend servers.
    #[arg(long = "product_auth")]
    product_auth: Option<String>,
    /// Password clients must AUTH with.
    #[arg(long = "session_auth")]
    session_auth: Option<String>,
    /// Start at once with the slot table in FILE: a JSON array of Codis `Slot`s (`id`,
    /// `backend_addr`, `migrate_from`, `forward_method`, `locked`). Without it the proxy waits
    /// for `fillslots` and `start` through the admin API.
    #[arg(long, conflicts_with = "dashboard")]
    fillslots: Option<PathBuf>,
    /// At start, ask the dashboard at ADDR (host:port) to take this proxy online: it fills the
    /// slots and starts the proxy. Tried 10 times, 3 s apart; the proxy exits if it fails.
    #[arg(long, value_name = "ADDR")]
    dashboard: Option<String>,
    /// Log level: error, warn, info, debug, trace.
    #[arg(long, default_value = "info")]
    log_level: String,
}

/// The default configuration, with a comment on every option; a test keeps it equal to
/// `ProxyConfig::default()`.
const DEFAULT_CONFIG: &str = r#"# codis-proxy configuration. Keys are Codis' own (proxy.toml).

# The product (cluster) this proxy serves, and the password of its servers (every backend
# connection AUTHs with it; empty for none).
product_name = "codis-demo"
product_auth = ""

# Password clients must AUTH with; empty for none.
session_auth = ""

# Where clients connect, and where the admin HTTP API listens (Codis' paths: /proxy,
# /api/proxy/fillslots/<xauth>, /api/proxy/start/<xauth> …, and Prometheus /metrics).
proxy_addr = "0.0.0.0:19000"
admin_addr = "0.0.0.0:11080"

# Most clients at once; more are refused with "-ERR max number of clients reached".
proxy_max_clients = 1000

# Connections per backend address and database. Requests of one slot always share one, so a
# client's requests to a slot keep their order whatever this is.
backend_primary_parallel = 1
# Reads (GET, HGET … not SCAN-like) of slots whose group lists replicas for reads go to the first
# replica that is up, else the primary. Replicas may lag: such reads can miss the latest writes.
# backend_primary_only = true reads from primaries only.
backend_replica_parallel = 1
backend_primary_only = false
# Databases a client may SELECT (each backend gets connections for those in use).
backend_number_databases = 16
# How long a backend connect (and its AUTH/SELECT) may take.
backend_connect_timeout = "5s"
# How long requests may wait with no reply at all from their backend before its connection is
# declared dead and reopened (they get "-ERR handle response, backend conn reset …").
backend_recv_timeout = "30s"
# How often an idle backend connection sends PING; its reply tells the backend's health (up,
# or stale after MASTERDOWN/LOADING: no replica reads go there). "0s": never.
backend_ping_period = "5s"
# TCP keep-alive on backend connections ("0s": off).
backend_keepalive_period = "75s"
# When the dashboard asks for synchronous replication (sync_replicas), how long a write waits for
# its replicas before the client is told it may not be kept (NOREPLICAS).
backend_sync_timeout = "1s"

# Most requests read from one client before their replies are written: past this the proxy
# stops reading that client until it has answered (back-pressure, where Codis closes the
# session). And how long a silent client stays connected.
session_max_pipeline = 10000
session_recv_timeout = "30m"
# TCP keep-alive on client connections ("0s": off).
session_keepalive_period = "75s"
# The longest bulk string, and the most elements, a client's request may have; past them the
# client gets "-ERR Protocol error: …" and is disconnected, as Redis does.
session_max_bulk_len = 536870912
session_max_array_len = 1048576
# A subscriber that cannot keep up with what is published to it is disconnected, as Redis'
# client-output-buffer-limit pubsub does (its default: 32mb 8mb 60): once the proxy holds
# session_pubsub_hard_limit_bytes for it (messages and replies not yet written), or has held
# session_pubsub_soft_limit_bytes for longer than session_pubsub_soft_limit_seconds. The
# client then knows to resubscribe and catch up, rather than miss messages unawares. 0: no limit.
session_pubsub_hard_limit_bytes = 33554432
session_pubsub_soft_limit_bytes = 8388608
session_pubsub_soft_limit_seconds = 60
# Most bytes of messages written to a subscriber in one go before its requests and the proxy's
# other work for it are looked at again (Redis' 64 KB per client per event loop turn).
session_pubsub_batch_bytes = 65536
# How long a subscriber being disconnected (a link to a server lost, a slot table change that
# may have hidden messages from it) has to read what the proxy still holds for it before its
# connection is dropped with the rest.
session_pubsub_close_timeout = "10s"
# How long a slot table change that brings in a server (a migration's target, a promoted
# replica) waits for every subscriber to listen there before the proxy acknowledges it; a
# subscriber that does not by then is disconnected if it listens to a pattern or to a channel of
# that server's slots.
session_pubsub_follow_timeout = "1s"
"#;

fn main() -> ExitCode {
    let args = Args::parse();
    if args.default_config {
        print!("{DEFAULT_CONFIG}");
        return ExitCode::SUCCESS;
    }
    let log_level = prod::logging::init(&args.log_level);
    match run(args, std::sync::Arc::new(log_level)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args, log_level: proxy::admin::LogLevel) -> anyhow::Result<()> {
    let mut config: ProxyConfig = prod::config::load_or_default(args.config.as_deref())?;
    if let Some(addr) = args.proxy_addr {
        config.proxy_addr = addr;
    }
    if let Some(addr) = args.admin_addr {
        config.admin_addr = addr;
    }
    if let Some(name) = args.product_name {
        config.product_name = name;
    }
    if let Some(auth) = args.product_auth {
        config.product_auth = auth;
    }
    if let Some(auth) = args.session_auth {
        config.session_auth = auth;
    }
    let slots: Option<Vec<model::Slot>> = match &args.fillslots {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            Some(
                serde_json::from_str(&text)
                    .with_context(|| format!("{} is not a JSON array of slots", path.display()))?,
            )
        }
        None => None,
    };

    let env = TokioEnv::new().context("seeding randomness")?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    runtime.block_on(async move {
        let listener = env.bind(&config.proxy_addr).await.with_context(|| format!("binding {}", config.proxy_addr))?;
        let admin = env.bind(&config.admin_addr).await.with_context(|| format!("binding {}", config.admin_addr))?;
        let hostname = prod::host::hostname();
        // The addresses others reach this proxy at (the dashboard, clients listing proxies).
        let admin_addr = prod::host::announced(admin.local_addr()?, &hostname);
        let identity = proxy::admin::Identity::new(
            &config.product_name,
            &config.product_auth,
            &prod::host::announced(listener.local_addr()?, &hostname),
            &admin_addr,
            &hostname,
        );
        tracing::info!(token = %identity.model.token, admin = %admin_addr, "admin API ready");
        let token = identity.model.token.clone();
        let proxy = Proxy::new(env.clone(), config);
        match slots {
            Some(slots) => {
                proxy.router().fill(&slots).await.context("filling slots")?;
                proxy.start();
                tracing::info!(slots = slots.len(), "slots filled from the --fillslots file; online");
            }
            None => tracing::info!("waiting online: fill slots and start through the admin API"),
        }
        let config = &proxy.shared().config;
        let (product, product_auth) = (config.product_name.clone(), config.product_auth.clone());
        env.spawn(proxy::admin::serve(env.clone(), proxy.shared().clone(), identity, Some(log_level), admin));
        let refused = std::sync::Arc::new(std::sync::OnceLock::<proxy::register::RegisterError>::new());
        if let Some(dashboard) = args.dashboard {
            let (task_env, shared, refused) = (env.clone(), proxy.shared().clone(), refused.clone());
            env.spawn(async move {
                if let Err(error) =
                    proxy::register::online(&task_env, &dashboard, &product, &product_auth, &admin_addr).await
                {
                    let _ = refused.set(error);
                    shared.closing.send_replace(true);
                }
            });
        }
        proxy.run(env, listener, &token, prod::signals::shutdown()).await.context("serving")?;
        match refused.get() {
            Some(error) => Err(anyhow::anyhow!("going online at the dashboard: {error}")),
            None => Ok(()),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_default_config_is_the_default() {
        let parsed: ProxyConfig = toml::from_str(DEFAULT_CONFIG).expect("the default config parses");
        assert_eq!(parsed, ProxyConfig::default());
    }

    #[test]
    fn durations_and_unknown_keys() {
        let parsed: ProxyConfig = toml::from_str("session_recv_timeout = \"90s\"").expect("parses");
        assert_eq!(parsed.session_recv_timeout, std::time::Duration::from_secs(90));
        assert!(toml::from_str::<ProxyConfig>("session_recv_timeout = \"soon\"").is_err());
        assert!(toml::from_str::<ProxyConfig>("proxy_adr = \"x\"").is_err());
    }
}
