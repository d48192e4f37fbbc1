//! What coordinator operations fail with.

/// Why a coordinator operation failed. Cloneable so one failure can reach every waiter of a
/// [`crate::Watch`] or [`crate::Lease`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// [`crate::Coordinator::create`] found a record there.
    #[error("{path} already exists")]
    Exists {
        /// The path.
        path: String,
    },
    /// [`crate::Coordinator::lock`] found the lock held.
    #[error("{path} is locked by another holder: {holder}")]
    Locked {
        /// The lock.
        path: String,
        /// The holder's record, as text.
        holder: String,
    },
    /// [`crate::Coordinator::compare_and_set`] found another version.
    #[error("{path} changed since it was read")]
    Conflict {
        /// The path.
        path: String,
    },
    /// A fenced write found its lock gone or held by someone else.
    #[error("the lock {path} is no longer held by this process (its lease expired or it was removed)")]
    LockLost {
        /// The lock.
        path: String,
    },
    /// A path that is not absolute, has empty or dot components, or characters outside the
    /// allowed set.
    #[error("invalid coordinator path {path:?}: {reason}")]
    InvalidPath {
        /// The path.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The store could not be reached or failed (I/O error, timeout, connection refused).
    #[error("coordinator {backend} unavailable: {reason}")]
    Unavailable {
        /// The backend.
        backend: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// The store answered something this client does not understand, or refused a request.
    #[error("coordinator {backend} answered unexpectedly: {reason}")]
    Protocol {
        /// The backend.
        backend: &'static str,
        /// What was wrong.
        reason: String,
    },
}

impl Error {
    /// Whether trying again later may succeed (the store was unreachable), as opposed to an
    /// answer that will not change by itself.
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Unavailable { .. })
    }
}
