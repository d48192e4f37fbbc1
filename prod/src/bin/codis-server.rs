//! `codis-server`: the data server on real sockets.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use net::TokioEnv;
use server::{DebugCommand, EvictionPolicy, ServerConfig};

/// jemalloc, as redis-server uses: it packs millions of small values tighter than glibc's malloc
/// (no per-block header, 32-byte values in 32-byte blocks), and the server's memory estimate
/// (`used_memory`) models its size classes.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
    /// Memory limit for the data, in bytes or with Redis' units (100mb, 2gb; 0: none).
    #[arg(long)]
    maxmemory: Option<String>,
    /// What to do at the memory limit (noeviction, allkeys-lru, …).
    #[arg(long)]
    maxmemory_policy: Option<String>,
    /// Directory of the snapshot file and the append-only log (loaded at start).
    #[arg(long)]
    dir: Option<String>,
    /// The snapshot file's name in --dir.
    #[arg(long)]
    dbfilename: Option<String>,
    /// Snapshot rules, Redis' form: "3600 1 300 100" (seconds changes …); "" for none.
    #[arg(long)]
    save: Option<String>,
    /// Log every write to the append-only log in --dir (loaded at start instead of the snapshot).
    #[arg(long, value_parser = ["yes", "no"])]
    appendonly: Option<String>,
    /// When the append-only log is synced: always (before replying), everysec, or no.
    #[arg(long, value_parser = ["always", "everysec", "no"])]
    appendfsync: Option<String>,
    /// Who may run DEBUG: no, yes, or local (loopback clients only).
    #[arg(long, value_parser = ["no", "yes", "local"])]
    enable_debug_command: Option<String>,
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

# Memory limit for the data (0: none), in bytes or with Redis' units ("100mb", "2gb"), and what
# to do when it is reached: noeviction (refuse writes with -OOM), allkeys-lru, allkeys-lfu,
# allkeys-random, volatile-lru, volatile-lfu, volatile-random, volatile-ttl. The memory counted
# is the data's own (keys, values, their indexes), as INFO memory's used_memory reports it.
maxmemory = 0
maxmemory-policy = "noeviction"
# Keys sampled per eviction (more is closer to exact LRU/LFU, and slower); how hard one command
# works to get under the limit before it runs anyway (0 to 100; 100: until it fits).
maxmemory-samples = 5
maxmemory-eviction-tenacity = 10
# LFU: how slowly a key's access counter grows, and after how many idle minutes it decrements.
lfu-log-factor = 10
lfu-decay-time = 1

# Close clients idle for this many seconds (0: never).
timeout = 0

# Longest bulk string a client may send, in bytes (Redis' default, 512 MiB), and most unprocessed
# input one client may make the server hold (1 GiB; the client is closed past it).
proto-max-bulk-len = 536870912
client-query-buffer-limit = 1073741824

# Output buffer limits per client class: class, hard limit, soft limit, seconds over the soft
# limit. A client past one is closed: a subscriber that stops reading cannot exhaust memory.
client-output-buffer-limit = "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"

# Who may run DEBUG: "no", "yes", or "local" (loopback clients).
enable-debug-command = "no"

# Background cycle frequency (active expiry runs this many times a second), and how hard active
# expiry works (1 to 10).
hz = 10
active-expire-effort = 1

# Snapshots: the file (dbfilename in dir) is loaded at start if it exists, and written by SAVE,
# BGSAVE, SHUTDOWN and these rules: "3600 1 300 100" saves after 3600 s if 1 key changed, or
# after 300 s if 100 did. None by default, unlike Redis: a server started anywhere neither
# litters nor loads the working directory unless told to.
dir = "."
dbfilename = "dump.rdb"
save = ""

# Stopping (SIGTERM, Ctrl-C or SHUTDOWN): clients are paused, replicas get up to this many seconds
# to acknowledge the last writes, the snapshot above is saved if save rules exist, and the log is
# synced. A snapshot that fails keeps the server running, as Redis does (SHUTDOWN NOSAVE stops it).
shutdown-timeout = 10

# The append-only log: every write, in Redis 7's multi-part layout (a base snapshot, increments
# and a manifest in appenddirname under dir), loaded at start instead of the snapshot; if it does
# not exist yet, its first base is the snapshot (Redis 7 would start empty). appendfsync: always
# (no reply before the write is on disk), everysec (a crash loses about a second), or no. The log
# is rewritten on its own once it has grown by auto-aof-rewrite-percentage since the last rewrite
# and is at least auto-aof-rewrite-min-size. A log whose last command a crash cut short loads
# without it unless aof-load-truncated is "no"; damage anywhere else refuses the start.
appendonly = "no"
appendfilename = "appendonly.aof"
appenddirname = "appendonlydir"
appendfsync = "everysec"
auto-aof-rewrite-percentage = 100
auto-aof-rewrite-min-size = 67108864
aof-load-truncated = "yes"

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
    let _ = prod::logging::init(&args.log_level);
    prod::exit_code(run(args))
}

fn run(args: Args) -> anyhow::Result<()> {
    let mut config: ServerConfig = prod::config::load_or_default(args.config.as_deref())?;
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
        config.maxmemory = server::config::parse_memory(&maxmemory).with_context(|| {
            format!("--maxmemory {maxmemory:?} is not a memory amount (like 1073741824, 100mb, 2gb)")
        })?;
    }
    if let Some(policy) = args.maxmemory_policy {
        config.maxmemory_policy =
            EvictionPolicy::parse(&policy).with_context(|| format!("unknown maxmemory-policy {policy:?}"))?;
    }
    if let Some(dir) = args.dir {
        config.dir = dir;
    }
    if let Some(name) = args.dbfilename {
        config.dbfilename = name;
    }
    if let Some(rules) = args.save {
        config.save = server::config::SaveRules::try_from(rules.clone())
            .map_err(|error| anyhow::anyhow!("--save {rules:?}: {error} (pairs of seconds and changes)"))?;
    }
    if let Some(appendonly) = args.appendonly.as_deref() {
        config.appendonly = appendonly == "yes";
    }
    if let Some(fsync) = args.appendfsync.as_deref() {
        config.appendfsync = server::config::FsyncPolicy::parse(fsync).context("appendfsync")?;
    }
    if let Some(debug) = args.enable_debug_command.as_deref() {
        config.enable_debug_command = match debug {
            "yes" => DebugCommand::Yes,
            "local" => DebugCommand::Local,
            _ => DebugCommand::No,
        };
    }
    // The version tikv-jemalloc-sys builds.
    config.mem_allocator = "jemalloc-5.3.0".into();
    config.validate()?;

    let env = TokioEnv::new().context("seeding randomness")?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    runtime.block_on(async move {
        let (bound, address) = tokio::sync::oneshot::channel();
        let serving = server::bind_and_run(env, config, bound, prod::signals::stops());
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
    fn memory_amounts_take_redis_units() {
        let parsed: ServerConfig =
            toml::from_str("maxmemory = \"100mb\"\nclient-query-buffer-limit = 2097152").expect("parses");
        assert_eq!((parsed.maxmemory, parsed.client_query_buffer_limit), (100 * 1024 * 1024, 2 * 1024 * 1024));
        let error = toml::from_str::<ServerConfig>("maxmemory = \"lots\"").unwrap_err();
        assert!(error.to_string().contains("not a memory amount"), "{error}");
    }

    #[test]
    fn unknown_options_are_refused() {
        let error = toml::from_str::<ServerConfig>("maxmemmory = 1").unwrap_err();
        assert!(error.to_string().contains("maxmemmory"), "{error}");
    }
}
