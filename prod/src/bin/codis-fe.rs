//! `codis-fe`: the web console for every product of a coordinator, on real sockets.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use coordinator::{AnyCoordinator, CoordinatorAddr};
use net::{Env, TokioEnv};
use web_console::fe::Fe;
use web_console::hosts::AllowedHosts;
use web_console::products::ProductSource;

/// Serves the web console: lists the products it finds and passes each page's calls to that
/// product's dashboard.
#[derive(Parser, Debug)]
#[command(name = "codis-fe", version)]
struct Args {
    /// Where the console listens.
    #[arg(long, default_value = "0.0.0.0:9090")]
    listen: String,
    /// Find products in the filesystem coordinator at ROOT.
    #[arg(long, value_name = "ROOT", conflicts_with_all = ["etcd", "dashboard_list"])]
    filesystem: Option<String>,
    /// Find products in etcd at these endpoints (comma-separated host:port).
    #[arg(long, value_name = "ADDRS", conflicts_with = "dashboard_list")]
    etcd: Option<String>,
    /// Read products from a JSON file `[{"name": "…", "dashboard": "host:port"}]` (what
    /// `codis-admin --dashboard-list` prints), re-read every few seconds.
    #[arg(long, value_name = "FILE")]
    dashboard_list: Option<PathBuf>,
    /// A host name browsers may call the console by, besides IP addresses, `localhost` and this
    /// machine's name (repeat for more). Browsers calling it by any other name are refused, so a
    /// web page cannot reach it by DNS rebinding.
    #[arg(long = "allow-host", value_name = "NAME")]
    allow_hosts: Vec<String>,
    /// Log level: error, warn, info, debug, trace.
    #[arg(long, default_value = "info")]
    log_level: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let _log_level = prod::logging::init(&args.log_level);
    prod::exit_code(run(args))
}

fn run(args: Args) -> anyhow::Result<()> {
    let env = TokioEnv::new().context("seeding randomness")?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    runtime.block_on(async move {
        let source = match (args.filesystem, args.etcd, args.dashboard_list) {
            (Some(root), _, _) => coordinator_source(&env, CoordinatorAddr::Filesystem(root)),
            (None, Some(endpoints), _) => coordinator_source(&env, CoordinatorAddr::new("etcd", &endpoints)?),
            (None, None, Some(file)) => ProductSource::ListFile {
                path: file.display().to_string(),
                read: Arc::new(move |/* each refresh */| {
                    let file = file.clone();
                    Box::pin(async move { tokio::fs::read(&file).await.map_err(|error| error.to_string()) })
                }),
            },
            (None, None, None) => {
                bail!("say where the products are: --filesystem ROOT, --etcd ADDRS or --dashboard-list FILE")
            }
        };
        let listener = env.bind(&args.listen).await.with_context(|| format!("binding {}", args.listen))?;
        let hostname = prod::host::hostname();
        let addr = prod::host::announced(listener.local_addr()?, &hostname);
        tracing::info!("web console on http://{addr}/");
        let allowed = AllowedHosts::new(args.allow_hosts.iter().chain([&hostname, &addr]));
        let fe = Fe::new(env.clone(), source, allowed);
        tokio::select! {
            () = fe.serve(listener) => {}
            () = prod::signals::shutdown() => {}
        }
        Ok(())
    })
}

fn coordinator_source(env: &TokioEnv, addr: CoordinatorAddr) -> ProductSource<TokioEnv> {
    ProductSource::Coordinator(AnyCoordinator::connect(env.clone(), &addr, Duration::from_secs(5)))
}
