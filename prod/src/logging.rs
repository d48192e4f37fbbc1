//! Log output for the binaries.

use tracing_subscriber::EnvFilter;

/// Sends `tracing` events to stderr at `level` (`error`, `warn`, `info`, `debug`, `trace`), unless
/// `RUST_LOG` says otherwise.
pub fn init(level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .with_target(false)
        .init();
}
