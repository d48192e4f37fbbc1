//! [`Watch`]: notice that something changed under a directory.
//!
//! Notices carry no content and coalesce: a watcher re-reads what it cares about, as Codis'
//! `WatchInOrder` users do. That keeps every backend honest (the filesystem can only poll) and
//! lets a slow watcher miss nothing that matters: after any number of changes it sees one
//! notice and then the latest state.

use std::future::Future;

use net::Env;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::Error;

/// Notice of changes under a directory. Dropping it stops watching.
#[derive(Debug)]
pub struct Watch {
    changes: watch::Receiver<Result<u64, Error>>,
    task: JoinHandle<()>,
}

impl Watch {
    /// Waits for the next change (any number of changes since the last call count as one).
    /// An error means the watch broke (the store went away); watch again to go on.
    pub async fn changed(&mut self) -> Result<(), Error> {
        if self.changes.changed().await.is_err() {
            return Err(Error::Unavailable { backend: "watch", reason: "the watch ended".into() });
        }
        self.changes.borrow_and_update().clone().map(|_| ())
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Where a backend's watch task reports.
#[derive(Debug)]
pub(crate) struct Notifier(watch::Sender<Result<u64, Error>>);

impl Notifier {
    /// Something changed.
    pub(crate) fn notify(&self) {
        self.0.send_modify(|count| {
            if let Ok(count) = count {
                *count += 1;
            }
        });
    }
}

/// Starts a watch whose task is `pump`: it calls [`Notifier::notify`] on each change and
/// returns the error that ended it.
pub(crate) fn start<E, F>(env: &E, pump: impl FnOnce(Notifier) -> F) -> Watch
where
    E: Env,
    F: Future<Output = Error> + Send + 'static,
{
    let (sender, changes) = watch::channel(Ok(0));
    let notifier = Notifier(sender.clone());
    let pumping = pump(notifier);
    let task = env.spawn(async move {
        let error = pumping.await;
        let _ = sender.send_replace(Err(error));
    });
    Watch { changes, task }
}
