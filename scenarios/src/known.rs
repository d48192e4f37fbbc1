//! What a client may know of one key's value: the model the workload checkers share.
//!
//! A write whose outcome the client does not know (an error, a timeout) may have happened, or
//! may still happen at any later time: its request can be on its way (held by a partition, in
//! a proxy's queue) long after the client gave up. So it stays possible until a read sees it,
//! as a linearizability checker treats an indeterminate operation. Values are unique per write
//! (except absence), so seeing one pins down which write it was.

use std::collections::BTreeSet;

/// What a key may hold.
#[derive(Clone, Debug, PartialEq)]
pub struct Known {
    /// What it may hold now (`None`: absent).
    now: BTreeSet<Option<String>>,
    /// Writes with an unknown outcome, not seen yet: each may still land.
    pending: BTreeSet<Option<String>>,
}

impl Known {
    /// Exactly `value`.
    pub fn value(value: Option<String>) -> Known {
        Known { now: BTreeSet::from([value]), pending: BTreeSet::new() }
    }

    /// Whether a read of `observed` is possible.
    pub fn allows(&self, observed: &Option<String>) -> bool {
        self.now.contains(observed) || self.pending.contains(observed)
    }

    /// Whether some possible value passes `test`.
    pub fn could_be(&self, test: impl Fn(&Option<String>) -> bool) -> bool {
        self.now.iter().chain(&self.pending).any(test)
    }

    /// A read saw `observed` (which [`Known::allows`]), or an acknowledged write left it.
    pub fn saw(&mut self, observed: Option<String>) {
        // A unique value seen has landed; absence may still come from another delete.
        if observed.is_some() {
            self.pending.remove(&observed);
        }
        self.now = BTreeSet::from([observed]);
    }

    /// A write of `value` whose outcome is unknown.
    pub fn maybe_wrote(&mut self, value: Option<String>) {
        self.pending.insert(value);
    }

    /// A failover lost the writes after `observed` (which a read saw): the key holds it now, and
    /// writes whose outcome is unknown may still land.
    pub fn rewind(&mut self, observed: Option<String>) {
        if observed.is_some() {
            self.pending.remove(&observed);
        }
        self.now = BTreeSet::from([observed]);
    }

    /// A crash may have lost the key.
    pub fn maybe_lost(&mut self) {
        self.now.insert(None);
    }
}
