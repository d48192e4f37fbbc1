//! TOML configuration files.

use std::path::Path;

use anyhow::Context;
use serde::de::DeserializeOwned;

/// Reads `path` as TOML into `T`; options the file leaves out keep their defaults, unknown options
/// are an error (a misspelt option silently ignored is worse than a refused start).
pub fn load<T: DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading config {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("parsing config {}", path.display()))
}

/// Reads `path` if given (see [`load`]), else the defaults.
pub fn load_or_default<T: DeserializeOwned + Default>(path: Option<&Path>) -> anyhow::Result<T> {
    match path {
        Some(path) => load(path),
        None => Ok(T::default()),
    }
}
