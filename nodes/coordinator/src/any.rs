//! [`AnyCoordinator`]: the backend a config names, chosen at run time.

use std::fmt;
use std::time::Duration;

use net::Env;

use crate::etcd::{EtcdClient, EtcdCoordinator};
use crate::fs::FsCoordinator;
use crate::memory::{MemoryCoordinator, MemoryStore};
use crate::{Coordinator, Error, Lease, Record, Watch};

/// Where the coordinator is, as Codis' configs say it (`coordinator_name` and
/// `coordinator_addr`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CoordinatorAddr {
    /// A directory on this machine.
    Filesystem(String),
    /// etcd endpoints (`host:port`).
    Etcd(Vec<String>),
}

/// A coordinator name or address that makes no sense.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AddrError {
    /// Not one of the names.
    #[error("unknown coordinator {0:?}: use filesystem (fs) or etcd (zookeeper is not supported)")]
    UnknownName(String),
    /// Nothing to connect to.
    #[error("the {0} coordinator needs an address")]
    Empty(&'static str),
}

impl CoordinatorAddr {
    /// From Codis' pair: `filesystem`/`fs` and a directory, or `etcd` and comma-separated
    /// endpoints (`http://` prefixes accepted).
    pub fn new(name: &str, addr: &str) -> Result<CoordinatorAddr, AddrError> {
        match name.to_ascii_lowercase().as_str() {
            "filesystem" | "fs" => {
                if addr.trim().is_empty() {
                    return Err(AddrError::Empty("filesystem"));
                }
                Ok(CoordinatorAddr::Filesystem(addr.trim().to_string()))
            }
            "etcd" => {
                let endpoints: Vec<String> = addr
                    .split(',')
                    .map(|endpoint| endpoint.trim().trim_start_matches("http://").trim_end_matches('/').to_string())
                    .filter(|endpoint| !endpoint.is_empty())
                    .collect();
                if endpoints.is_empty() {
                    return Err(AddrError::Empty("etcd"));
                }
                Ok(CoordinatorAddr::Etcd(endpoints))
            }
            _ => Err(AddrError::UnknownName(name.to_string())),
        }
    }

    /// The config name (`filesystem`, `etcd`).
    pub fn name(&self) -> &'static str {
        match self {
            CoordinatorAddr::Filesystem(_) => "filesystem",
            CoordinatorAddr::Etcd(_) => "etcd",
        }
    }

    /// The address as a config writes it.
    pub fn addr(&self) -> String {
        match self {
            CoordinatorAddr::Filesystem(root) => root.clone(),
            CoordinatorAddr::Etcd(endpoints) => endpoints.join(","),
        }
    }
}

impl fmt::Display for CoordinatorAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.name(), self.addr())
    }
}

/// One of the backends.
#[derive(Clone, Debug)]
pub enum AnyCoordinator<E> {
    /// [`crate::fs`].
    Filesystem(FsCoordinator<E>),
    /// [`crate::etcd`].
    Etcd(EtcdCoordinator<E>),
    /// [`crate::memory`], in-process.
    Memory(MemoryCoordinator<E>),
}

impl<E: Env> AnyCoordinator<E> {
    /// The coordinator at `addr`; requests to a remote one give up after `timeout`.
    pub fn connect(env: E, addr: &CoordinatorAddr, timeout: Duration) -> AnyCoordinator<E> {
        match addr {
            CoordinatorAddr::Filesystem(root) => AnyCoordinator::Filesystem(FsCoordinator::new(env, root.clone())),
            CoordinatorAddr::Etcd(endpoints) => {
                AnyCoordinator::Etcd(EtcdCoordinator::new(EtcdClient::new(env.clone(), endpoints, timeout), env))
            }
        }
    }

    /// An in-process memory coordinator over `store` (tests).
    pub fn memory(env: E, store: MemoryStore) -> AnyCoordinator<E> {
        env.spawn(store.clone().reap());
        AnyCoordinator::Memory(MemoryCoordinator::new(store, env))
    }
}

/// Runs `$body` with `$inner` bound to whichever backend `$self` is.
macro_rules! dispatch {
    ($self:expr, $inner:ident => $body:expr) => {
        match $self {
            AnyCoordinator::Filesystem($inner) => $body,
            AnyCoordinator::Etcd($inner) => $body,
            AnyCoordinator::Memory($inner) => $body,
        }
    };
}

impl<E: Env> Coordinator for AnyCoordinator<E> {
    fn backend(&self) -> &'static str {
        dispatch!(self, inner => inner.backend())
    }

    async fn create(&self, path: &str, value: &[u8]) -> Result<u64, Error> {
        dispatch!(self, inner => inner.create(path, value).await)
    }

    async fn update(&self, path: &str, value: &[u8]) -> Result<u64, Error> {
        dispatch!(self, inner => inner.update(path, value).await)
    }

    async fn read(&self, path: &str) -> Result<Option<Record>, Error> {
        dispatch!(self, inner => inner.read(path).await)
    }

    async fn delete(&self, path: &str) -> Result<(), Error> {
        dispatch!(self, inner => inner.delete(path).await)
    }

    async fn list(&self, dir: &str) -> Result<Vec<String>, Error> {
        dispatch!(self, inner => inner.list(dir).await)
    }

    async fn read_dir(&self, dir: &str) -> Result<Vec<(String, Record)>, Error> {
        dispatch!(self, inner => inner.read_dir(dir).await)
    }

    async fn compare_and_set(&self, path: &str, expected: Option<u64>, value: &[u8]) -> Result<u64, Error> {
        dispatch!(self, inner => inner.compare_and_set(path, expected, value).await)
    }

    async fn lock(&self, path: &str, value: &[u8], ttl: Duration) -> Result<Lease, Error> {
        dispatch!(self, inner => inner.lock(path, value, ttl).await)
    }

    async fn register(&self, path: &str, value: &[u8], ttl: Duration) -> Result<Lease, Error> {
        dispatch!(self, inner => inner.register(path, value, ttl).await)
    }

    async fn watch(&self, dir: &str) -> Result<Watch, Error> {
        dispatch!(self, inner => inner.watch(dir).await)
    }

    fn fenced(&self, lease: &Lease) -> Self {
        match self {
            AnyCoordinator::Filesystem(inner) => AnyCoordinator::Filesystem(inner.fenced(lease)),
            AnyCoordinator::Etcd(inner) => AnyCoordinator::Etcd(inner.fenced(lease)),
            AnyCoordinator::Memory(inner) => AnyCoordinator::Memory(inner.fenced(lease)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_read_as_codis_configs_write_them() {
        assert_eq!(CoordinatorAddr::new("fs", "/tmp/codis"), Ok(CoordinatorAddr::Filesystem("/tmp/codis".into())));
        assert_eq!(
            CoordinatorAddr::new("etcd", "http://a:2379/, b:2379"),
            Ok(CoordinatorAddr::Etcd(vec!["a:2379".into(), "b:2379".into()]))
        );
        assert_eq!(CoordinatorAddr::new("zookeeper", "z:2181"), Err(AddrError::UnknownName("zookeeper".into())));
        assert_eq!(CoordinatorAddr::new("etcd", " , "), Err(AddrError::Empty("etcd")));
    }
}
