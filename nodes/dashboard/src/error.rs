//! What dashboard operations fail with; each maps to an HTTP status in the REST API.

/// Why an operation failed.
#[derive(Clone, Debug, thiserror::Error)]
pub enum DashboardError {
    /// The coordinator failed or refused (unreachable, or the dashboard lost its lock).
    #[error(transparent)]
    Coordinator(#[from] coordinator::Error),
    /// A stored record that is not what it should be.
    #[error("the record {path} cannot be read: {reason}")]
    Corrupt {
        /// Where.
        path: String,
        /// Why.
        reason: String,
    },
    /// A request that makes no sense (bad id, bad address).
    #[error("{0}")]
    Invalid(String),
    /// A request naming what does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A request the current state refuses (a group in use, an action in the way).
    #[error("{0}")]
    Conflict(String),
    /// A proxy or server that did not answer or refused.
    #[error("{0}")]
    Unreachable(String),
}

impl DashboardError {
    /// The HTTP status the REST API answers with.
    pub fn status(&self) -> u16 {
        match self {
            DashboardError::Invalid(_) => 400,
            DashboardError::NotFound(_) => 404,
            DashboardError::Conflict(_) => 409,
            DashboardError::Coordinator(coordinator::Error::LockLost { .. }) => 503,
            DashboardError::Coordinator(_) | DashboardError::Corrupt { .. } | DashboardError::Unreachable(_) => 502,
        }
    }
}

/// The dashboard's results.
pub type Result<T, E = DashboardError> = std::result::Result<T, E>;
