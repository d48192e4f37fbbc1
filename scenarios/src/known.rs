//! What a client may know of one key's value: the model the workload checkers share.

use std::collections::BTreeSet;

/// What a key may hold.
#[derive(Clone, Debug, PartialEq)]
pub enum Known {
    /// Exactly this (`None`: absent).
    Value(Option<String>),
    /// One of these: writes that got no answer, or a crash that may have lost the key.
    OneOf(BTreeSet<Option<String>>),
}

impl Known {
    /// Whether a read of `observed` is possible.
    pub fn allows(&self, observed: &Option<String>) -> bool {
        match self {
            Known::Value(value) => value == observed,
            Known::OneOf(values) => values.contains(observed),
        }
    }

    /// What the key may hold once `possible` may also have happened.
    pub fn or(&self, possible: Option<String>) -> Known {
        let mut values = match self {
            Known::Value(value) => BTreeSet::from([value.clone()]),
            Known::OneOf(values) => values.clone(),
        };
        values.insert(possible);
        Known::OneOf(values)
    }
}
