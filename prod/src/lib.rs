//! What every production binary shares: logging, the shutdown signal, and reading TOML configs.
//!
//! Binaries stay thin (parse flags and config, build `net::TokioEnv`, run the component); anything
//! two of them would otherwise repeat lives here.
//!
//! # Modules
//! - [`logging`]: `tracing` output to stderr, level from a flag or `RUST_LOG`.
//! - [`signals`]: a future that completes on SIGTERM or Ctrl-C.
//! - [`host`]: the host's name and the addresses a binary announces.
//! - [`config`]: loading a TOML file over a component's defaults.

pub mod config;
pub mod host;
pub mod logging;
pub mod signals;

/// The exit code of a binary whose work ended with `result`: failure is logged first.
pub fn exit_code(result: anyhow::Result<()>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
