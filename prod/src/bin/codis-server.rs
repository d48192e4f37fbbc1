//! `codis-server`: the data server on real sockets.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use net::TokioEnv;
use server::{EvictionPolicy, ServerConfig};

/// A Redis-compatible data server with a keyspace indexed by Codis slot.
#[derive(Parser, Debug)]
#[command(name = "codis-server", version)]
struct Args {
    /// A TOML config file (see --default-config); flags override it.
    #[arg(long, short = 'c')]
    config: Option<PathBuf>,
    /// Print the default configuration, documented, and exit.
    #[arg(long)]
    default_config: bool,
    /// Address to listen on.
    #[arg(long)]
    bind: Option<String>,
    /// Port to listen on.
    #[arg(long)]
    port: Option<u16>,
    /// Password clients must AUTH with.
    #[arg(long)]
    requirepass: Option<String>,
    /// Number of databases.
    #[arg(long)]
    databases: Option<usize>,
    /// Memory limit in bytes (0: none).
    #[arg(long)]
    maxmemory: Option<u64>,
    /// What to do at the memory limit (noeviction, allkeys-lru, …).
    #[arg(long)]
    maxmemory_policy: Option<String>,
    /// Log level: error, warn, info, debug, trace.
    #[arg(long, default_value = "info")]
    log_level: String,
}

/// The default configuration, with a comment on every option. A test checks that it parses to
/// exactly `ServerConfig::default()`, so the two cannot drift apart.
const DEFAULT_CONFIG: &str = r#"# codis-server configuration. Option names are Redis' own.

# Address and port to listen on. Loopback by default: expose the server deliberately.
bind = "127.0.0.1"
port = 6379

# Password clients must AUTH with (the `default` user); empty for none. Proxies authenticate
# with the product's `product_auth`, so set this to the same value across a product.
requirepass = ""

# Number of databases (SELECT 0 .. databases-1).
databases = 16

# Most simultaneous clients; more are refused with "-ERR max number of clients reached".
maxclients = 10000

# Memory limit for the dataset in bytes (0: none), and what to do when it is reached.
maxmemory = 0
maxmemory-policy = "noeviction"

# Close clients idle for this many seconds (0: never).
timeout = 0

# Longest bulk string a client may send, in bytes (Redis' default, 512 MiB).
proto-max-bulk-len = 536870912

# Background cycle frequency (active expiry runs this many times a second), and how hard active
# expiry works (1 to 10).
hz = 10
active-expire-effort = 1

# Collections keep Redis' compact encodings up to these sizes (Redis' compiled-in defaults); past
# them they switch, one way, to hash tables. OBJECT ENCODING reports which.
hash-max-listpack-entries = 512
hash-max-listpack-value = 64
set-max-intset-entries = 512
zset-max-listpack-entries = 128
zset-max-listpack-value = 64
"#;

fn main() -> ExitCode {
    let args = Args::parse();
    if args.default_config {
        print!("{DEFAULT_CONFIG}");
        return ExitCode::SUCCESS;
    }
    prod::logging::init(&args.log_level);
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let mut config: ServerConfig = match &args.config {
        Some(path) => prod::config::load(path)?,
        None => ServerConfig::default(),
    };
    if let Some(bind) = args.bind {
        config.bind = bind;
    }
    if let Some(port) = args.port {
        config.port = port;
    }
    if let Some(password) = args.requirepass {
        config.requirepass = password;
    }
    if let Some(databases) = args.databases {
        config.databases = databases;
    }
    if let Some(maxmemory) = args.maxmemory {
        config.maxmemory = maxmemory;
    }
    if let Some(policy) = args.maxmemory_policy {
        config.maxmemory_policy =
            EvictionPolicy::parse(&policy).with_context(|| format!("unknown maxmemory-policy {policy:?}"))?;
    }
    config.validate()?;

    let env = TokioEnv::new().context("seeding randomness")?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    runtime.block_on(async move {
        let (bound, address) = tokio::sync::oneshot::channel();
        let serving = server::bind_and_run(env, config, bound, prod::signals::shutdown());
        tokio::pin!(serving);
        tokio::select! {
            biased;
            result = &mut serving => return result.context("serving"),
            address = address => {
                if let Ok(address) = address {
                    tracing::info!(%address, "codis-server listening; connect with redis-cli -h {} -p {}", address.ip(), address.port());
                }
            }
        }
        serving.await.context("serving")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_default_config_is_the_default() {
        let parsed: ServerConfig = toml::from_str(DEFAULT_CONFIG).expect("the default config parses");
        assert_eq!(parsed, ServerConfig::default());
    }

    #[test]
    fn unknown_options_are_refused() {
        let error = toml::from_str::<ServerConfig>("maxmemmory = 1").unwrap_err();
        assert!(error.to_string().contains("maxmemmory"), "{error}");
    }
}
