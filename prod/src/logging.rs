//! Log output for the binaries.

use tracing_subscriber::EnvFilter;

/// The log levels an operator may pick.
const LEVELS: [&str; 5] = ["error", "warn", "info", "debug", "trace"];

/// Sends `tracing` events to stderr at `level` (`error`, `warn`, `info`, `debug`, `trace`), unless
/// `RUST_LOG` says otherwise. Returns what changes the level while running (the proxy's admin
/// `loglevel`).
pub fn init(level: &str) -> impl Fn(&str) -> Result<(), String> + Send + Sync + 'static {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .with_target(false)
        .with_filter_reloading();
    let handle = builder.reload_handle();
    builder.init();
    move |level: &str| {
        let level = level.to_ascii_lowercase();
        let level = if level == "warning" { "warn".to_string() } else { level };
        if !LEVELS.contains(&level.as_str()) {
            return Err(format!("unknown log level {level:?}: one of {}", LEVELS.join(", ")));
        }
        handle.reload(EnvFilter::new(&level)).map_err(|error| error.to_string())?;
        tracing::info!(%level, "log level changed");
        Ok(())
    }
}
