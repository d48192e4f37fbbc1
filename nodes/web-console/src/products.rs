//! Which products exist and where their dashboards listen: from a coordinator (each
//! `/codis3/<product>/topom` lock record names its dashboard's admin address) or from a
//! dashboard list file (`[{"name": "…", "dashboard": "host:port"}]`, what `codis-admin
//! --dashboard-list` prints).

use std::collections::BTreeMap;
use std::sync::Arc;

use coordinator::{AnyCoordinator, Coordinator};
use futures_util::future::BoxFuture;
use net::Env;
use serde::{Deserialize, Serialize};

/// One product and its dashboard.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DashboardEntry {
    /// The product's name.
    pub name: String,
    /// Its dashboard's admin address (`host:port`).
    pub dashboard: String,
}

/// Why the products could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum ProductsError {
    /// The coordinator did not answer.
    #[error("the coordinator: {0}")]
    Coordinator(#[from] coordinator::Error),
    /// The list file could not be read.
    #[error("the dashboard list {path}: {reason}")]
    ListFile {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

/// Reads a dashboard list file's bytes (the binary's job: components do not open files).
pub type ReadList = Arc<dyn Fn() -> BoxFuture<'static, Result<Vec<u8>, String>> + Send + Sync>;

/// Where the products come from.
#[derive(Clone)]
pub enum ProductSource<E> {
    /// Every product with a dashboard lock in this coordinator.
    Coordinator(AnyCoordinator<E>),
    /// A dashboard list file, named for error messages, read anew on each refresh.
    ListFile {
        /// The file's path.
        path: String,
        /// How to read it.
        read: ReadList,
    },
}

impl<E> std::fmt::Debug for ProductSource<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProductSource::Coordinator(_) => f.write_str("ProductSource::Coordinator"),
            ProductSource::ListFile { path, .. } => write!(f, "ProductSource::ListFile({path})"),
        }
    }
}

impl<E: Env> ProductSource<E> {
    /// The products and their dashboards, by name.
    pub async fn load(&self) -> Result<BTreeMap<String, String>, ProductsError> {
        let entries = match self {
            ProductSource::Coordinator(coordinator) => dashboards(coordinator).await?,
            ProductSource::ListFile { path, read } => {
                let bytes = read().await.map_err(|reason| ProductsError::ListFile { path: path.clone(), reason })?;
                serde_json::from_slice::<Vec<DashboardEntry>>(&bytes).map_err(|error| ProductsError::ListFile {
                    path: path.clone(),
                    reason: format!("not a JSON array of {{\"name\", \"dashboard\"}}: {error}"),
                })?
            }
        };
        Ok(entries.into_iter().map(|entry| (entry.name, entry.dashboard)).collect())
    }
}

/// Every product of `coordinator` whose dashboard holds its lock, sorted by name. The locks are
/// read all at once; a product whose lock cannot be read (or is some other tool's record) is
/// left out with a warning rather than hiding every other product.
pub async fn dashboards<E: Env>(coordinator: &AnyCoordinator<E>) -> Result<Vec<DashboardEntry>, ProductsError> {
    let dirs = coordinator.list(model::product::CODIS_DIR).await?;
    let reads = dirs.iter().map(|dir| async move { (dir, coordinator.read(&format!("{dir}/topom")).await) });
    let mut entries = Vec::new();
    for (dir, read) in futures_util::future::join_all(reads).await {
        let name = dir.rsplit('/').next().unwrap_or_default().to_string();
        match read {
            Ok(Some(record)) => match serde_json::from_slice::<model::Topom>(&record.value) {
                Ok(topom) => entries.push(DashboardEntry { name, dashboard: topom.admin_addr }),
                Err(error) => tracing::warn!(product = %name, %error, "its dashboard lock is not a dashboard's record"),
            },
            // No dashboard holds it now.
            Ok(None) => {}
            Err(error) => tracing::warn!(product = %name, %error, "cannot read its dashboard lock"),
        }
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(entries)
}
