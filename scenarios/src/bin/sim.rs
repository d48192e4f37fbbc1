//! `just sim SEED=… [SCENARIO=…]`: runs a scenario under the simulator with one seed, prints what
//! happened in a few lines, and writes the full trace to a file under `target/sim/`.
//!
//! A failing seed is a bug report: the same command replays the same run, event for event.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Parser;

/// Runs a named fault scenario under the deterministic simulator.
#[derive(Parser, Debug)]
#[command(name = "sim", version)]
struct Args {
    /// The seed: the same seed replays the same run.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The scenario to run (see --list).
    #[arg(long, default_value = "ping")]
    scenario: String,
    /// Run this many consecutive seeds starting at --seed, one line each, stopping at the first
    /// failure.
    #[arg(long, default_value_t = 1)]
    count: u64,
    /// Where traces go (default: target/sim next to the build).
    #[arg(long)]
    trace_dir: Option<PathBuf>,
    /// List the scenarios and exit.
    #[arg(long)]
    list: bool,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(code) => code,
        Err(error) => {
            // The message alone: a backtrace of the runner says nothing about the simulated run.
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.list {
        for scenario in scenarios::all() {
            println!("{:<12} {}", scenario.name, scenario.summary);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let Some(scenario) = scenarios::find(&args.scenario) else {
        let names: Vec<&str> = scenarios::all().iter().map(|scenario| scenario.name).collect();
        bail!("no scenario named {:?}; there are: {}", args.scenario, names.join(", "));
    };
    let trace_dir = match args.trace_dir {
        Some(dir) => dir,
        None => default_trace_dir()?,
    };
    std::fs::create_dir_all(&trace_dir).with_context(|| format!("creating {}", trace_dir.display()))?;

    for seed in args.seed..args.seed.saturating_add(args.count.max(1)) {
        let outcome = (scenario.run)(seed);
        let trace_path = trace_dir.join(format!("{}-{seed}.trace", scenario.name));
        let mut text = outcome.trace.join("\n");
        text.push('\n');
        std::fs::write(&trace_path, text).with_context(|| format!("writing {}", trace_path.display()))?;
        let verdict = match &outcome.result {
            Ok(()) => "PASS".to_string(),
            Err(error) => format!("FAIL: {error}"),
        };
        if args.count > 1 {
            println!(
                "{} seed={seed} events={} digest={} {verdict}",
                scenario.name,
                outcome.trace.len(),
                outcome.digest_hex()
            );
        } else {
            println!("scenario  {}", scenario.name);
            println!("seed      {seed}");
            println!("events    {}", outcome.trace.len());
            println!("simulated {:.3} s", outcome.elapsed.as_secs_f64());
            println!("digest    {}", outcome.digest_hex());
            println!("trace     {}", trace_path.display());
            println!("result    {verdict}");
        }
        if !outcome.passed() {
            println!("replay    just sim SEED={seed} SCENARIO={}", scenario.name);
            return Ok(ExitCode::FAILURE);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `target/sim`, found from this binary's own location (`target/<profile>/sim`), so the trace lands
/// in the workspace's build directory wherever it is.
fn default_trace_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return Ok(PathBuf::from(dir).join("sim"));
    }
    let exe = std::env::current_exe().context("locating the sim binary")?;
    let target = exe
        .parent()
        .and_then(|profile_dir| profile_dir.parent())
        .context("the sim binary is not inside a cargo target directory; pass --trace-dir")?;
    Ok(target.join("sim"))
}
