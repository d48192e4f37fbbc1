//! [`Lease`]: a held lock or registration, renewed in the background until released, dropped
//! or lost.
//!
//! The holder must stop acting as the holder *before* the store lets the lease go, or two
//! holders could overlap: so the lease counts as lost locally once three quarters of its time
//! passed since the last renewal that succeeded was *sent*. Writes that matter are also fenced
//! in the store itself ([`crate::Coordinator::fenced`]), which closes the remaining gap.

use std::future::Future;
use std::time::Duration;

use net::Env;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::Error;

/// What a backend does to keep a lease and to give it up.
pub(crate) trait Keeper: Send + 'static {
    /// Renews the lease: `Ok(true)` renewed, `Ok(false)` the store no longer has it.
    fn renew(&mut self) -> impl Future<Output = Result<bool, Error>> + Send;

    /// Ends the lease and removes its record.
    fn release(&mut self) -> impl Future<Output = Result<(), Error>> + Send;
}

/// Which lock a fenced write checks: the lock's path and the lease that must still hold it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Fence {
    pub(crate) path: String,
    pub(crate) id: u64,
}

/// A lock or registration bound to a lease. Renewed in the background; [`Lease::release`] gives
/// it up at once; dropping it stops the renewals, so the store drops it after its time to live
/// (what a crash does too).
#[derive(Debug)]
pub struct Lease {
    fence: Fence,
    ttl: Duration,
    held: watch::Receiver<bool>,
    release: mpsc::Sender<oneshot::Sender<Result<(), Error>>>,
}

impl Lease {
    /// The locked or registered path.
    pub fn path(&self) -> &str {
        &self.fence.path
    }

    /// The lease's identity in its store.
    pub fn id(&self) -> u64 {
        self.fence.id
    }

    /// Its time to live as granted.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Whether it is still held (renewed recently enough).
    pub fn is_held(&self) -> bool {
        *self.held.borrow()
    }

    /// Waits until the lease is lost (not renewed in time, or gone from the store). Returns at
    /// once if it is lost already.
    pub async fn lost(&self) {
        let mut held = self.held.clone();
        let _ = held.wait_for(|held| !held).await;
    }

    /// Gives the lease up now: its record is removed and a successor can take it at once.
    /// Releasing twice, or a lease already lost, is not an error.
    pub async fn release(&self) -> Result<(), Error> {
        let (reply, answer) = oneshot::channel();
        if self.release.send(reply).await.is_err() {
            return Ok(()); // the keeper ended: the lease was lost already
        }
        answer.await.unwrap_or(Ok(()))
    }

    pub(crate) fn fence(&self) -> Fence {
        self.fence.clone()
    }
}

/// Starts keeping a lease of `ttl` granted (as `id`) for `path` by a request sent at `asked`
/// (the store's clock for the lease started no earlier).
pub(crate) fn start<E: Env, K: Keeper>(
    env: &E,
    path: String,
    id: u64,
    ttl: Duration,
    asked: Instant,
    mut keeper: K,
) -> Lease {
    let (held_tx, held) = watch::channel(true);
    let (release, mut requests) = mpsc::channel::<oneshot::Sender<Result<(), Error>>>(1);
    let period = (ttl / 5).max(Duration::from_millis(20));
    let margin = move |sent: Instant| sent + ttl * 3 / 4;
    let granted = asked;
    let task_path = path.clone();
    env.spawn(async move {
        let mut valid_until = margin(granted);
        let mut next_renewal = granted + period;
        loop {
            tokio::select! {
                request = requests.recv() => {
                    held_tx.send_replace(false);
                    let Some(reply) = request else {
                        debug!(path = %task_path, "lease dropped: left to expire");
                        return;
                    };
                    let _ = reply.send(keeper.release().await);
                    return;
                }
                () = tokio::time::sleep_until(next_renewal.min(valid_until)) => {}
            }
            if Instant::now() >= valid_until {
                warn!(path = %task_path, "lease lost: not renewed in time");
                held_tx.send_replace(false);
                return;
            }
            let sent = Instant::now();
            // A renewal still on its way when the lease runs out does not keep it held.
            match tokio::time::timeout_at((sent + period).min(valid_until), keeper.renew()).await {
                Ok(Ok(true)) => valid_until = margin(sent),
                Ok(Ok(false)) => {
                    warn!(path = %task_path, "lease lost: the store no longer has it");
                    held_tx.send_replace(false);
                    return;
                }
                Ok(Err(error)) => debug!(path = %task_path, %error, "lease renewal failed; retrying"),
                Err(_) => debug!(path = %task_path, "lease renewal timed out; retrying"),
            }
            next_renewal = Instant::now() + period;
        }
    });
    Lease { fence: Fence { path, id }, ttl, held, release }
}
