//! Appends and counters checked as Elle checks list-append histories: a write applied twice, a
//! reordered one, a phantom and a lost one are each visible in what a read returns.
//!
//! Each key has one writer, which appends unique elements in order (`RPUSH` to a list, or
//! `APPEND` of `element,` to a string) or increments a counter. A read of a sequence must hold
//! no element twice (a double application: the wrapper's bug), only elements that were
//! appended, in the order they were appended, and every element that had become visible
//! (acknowledged, or seen by an earlier read) before the read started, unless its loss falls
//! inside a window the scenario opened (asynchronous failover). A counter must never exceed
//! the increments sent to it.

use std::collections::{BTreeMap, BTreeSet};

/// One sequence key's history.
#[derive(Debug, Default)]
pub struct Sequence {
    /// Elements appended, in order, each with when it became visible (acknowledged, or seen by
    /// a read), if it did.
    appended: Vec<(String, Option<u64>)>,
    /// Elements found lost (inside a loss window): not required again.
    lost: BTreeSet<String>,
}

/// What a read of a sequence found wrong.
#[derive(Debug, PartialEq, Eq)]
pub enum Anomaly {
    /// An element appears twice: a write applied twice.
    Duplicate(String),
    /// An element no write appended.
    Phantom(String),
    /// Two elements in the reverse of their append order.
    Reordered(String, String),
    /// An element visible at `visible_ms` is missing, outside any loss window.
    Lost {
        /// The element.
        element: String,
        /// When it became visible.
        visible_ms: u64,
    },
}

impl std::fmt::Display for Anomaly {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Anomaly::Duplicate(element) => write!(f, "{element} appears twice: a write was applied twice"),
            Anomaly::Phantom(element) => write!(f, "{element} was never appended"),
            Anomaly::Reordered(first, second) => write!(f, "{second} comes before {first}, appended before it"),
            Anomaly::Lost { element, visible_ms } => {
                write!(f, "{element}, visible at {visible_ms} ms, is missing outside any loss window")
            }
        }
    }
}

impl Sequence {
    /// The writer is about to append `element`.
    pub fn appending(&mut self, element: &str) {
        self.appended.push((element.to_string(), None));
    }

    /// The append of `element` was acknowledged at `at_ms`.
    pub fn acknowledged(&mut self, element: &str, at_ms: u64) {
        self.visible(element, at_ms);
    }

    /// The append of `element` was refused before any server saw it: it will never appear.
    pub fn refused(&mut self, element: &str) {
        self.appended.retain(|(appended, _)| appended != element);
    }

    fn visible(&mut self, element: &str, at_ms: u64) {
        if let Some((_, visible)) = self.appended.iter_mut().find(|(appended, _)| appended == element) {
            visible.get_or_insert(at_ms);
        }
    }

    /// Checks a read that started at `started_ms` and returned `observed` at `now_ms`; losses
    /// inside `windows` are allowed and returned (and not required again).
    pub fn read(
        &mut self,
        observed: &[String],
        started_ms: u64,
        now_ms: u64,
        windows: &[(u64, u64)],
    ) -> Result<Vec<String>, Anomaly> {
        let mut seen = BTreeSet::new();
        let mut last: Option<(usize, &String)> = None;
        for element in observed {
            if !seen.insert(element) {
                return Err(Anomaly::Duplicate(element.clone()));
            }
            let Some(position) = self.appended.iter().position(|(appended, _)| appended == element) else {
                return Err(Anomaly::Phantom(element.clone()));
            };
            if let Some((before, previous)) = last
                && position < before
            {
                return Err(Anomaly::Reordered(element.clone(), previous.clone()));
            }
            last = Some((position, element));
        }
        let mut lost = Vec::new();
        for (element, visible) in &self.appended {
            let Some(visible_ms) = *visible else { continue };
            if visible_ms >= started_ms || seen.contains(element) || self.lost.contains(element) {
                continue;
            }
            if !windows.iter().any(|(from, to)| *from <= visible_ms && visible_ms <= *to) {
                return Err(Anomaly::Lost { element: element.clone(), visible_ms });
            }
            lost.push(element.clone());
        }
        self.lost.extend(lost.iter().cloned());
        for element in observed {
            self.visible(element, now_ms);
        }
        Ok(lost)
    }
}

/// The elements of an appended string (`e1,e2,…,`).
pub fn split_appended(value: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(value).split(',').filter(|part| !part.is_empty()).map(str::to_string).collect()
}

/// Counters: increments sent to each.
#[derive(Debug, Default)]
pub struct Counters {
    sent: BTreeMap<String, i64>,
}

impl Counters {
    /// An increment of `key` is about to be sent.
    pub fn sending(&mut self, key: &str) {
        *self.sent.entry(key.to_string()).or_default() += 1;
    }

    /// An increment was refused before any server saw it.
    pub fn refused(&mut self, key: &str) {
        *self.sent.entry(key.to_string()).or_default() -= 1;
    }

    /// Checks a value the counter was seen to hold: never more than the increments sent.
    pub fn check(&self, key: &str, value: i64) -> Result<(), String> {
        let sent = self.sent.get(key).copied().unwrap_or(0);
        if value > sent {
            return Err(format!("{key} is {value} after {sent} increments: an increment was applied twice"));
        }
        Ok(())
    }

    /// Every counter.
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.sent.keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elements(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| name.to_string()).collect()
    }

    #[test]
    fn each_anomaly_is_found() {
        let mut sequence = Sequence::default();
        for (index, element) in ["e1", "e2", "e3"].iter().enumerate() {
            sequence.appending(element);
            sequence.acknowledged(element, 10 * (index as u64 + 1));
        }
        sequence.appending("e4");
        assert_eq!(sequence.read(&elements(&["e1", "e2", "e3", "e4"]), 100, 100, &[]), Ok(vec![]));
        assert_eq!(
            sequence.read(&elements(&["e1", "e2", "e2", "e3"]), 100, 100, &[]),
            Err(Anomaly::Duplicate("e2".into()))
        );
        assert_eq!(sequence.read(&elements(&["e1", "e9"]), 100, 100, &[]), Err(Anomaly::Phantom("e9".into())));
        assert_eq!(
            sequence.read(&elements(&["e2", "e1", "e3", "e4"]), 100, 100, &[]),
            Err(Anomaly::Reordered("e1".into(), "e2".into()))
        );
        // e4 was seen at 100 by the first read: missing later, it is lost.
        assert_eq!(
            sequence.read(&elements(&["e1", "e2", "e3"]), 200, 200, &[]),
            Err(Anomaly::Lost { element: "e4".into(), visible_ms: 100 })
        );
        // Inside a window, the loss is allowed, counted once, and not required again.
        assert_eq!(sequence.read(&elements(&["e1", "e2", "e3"]), 200, 200, &[(90, 110)]), Ok(vec!["e4".into()]));
        assert_eq!(sequence.read(&elements(&["e1", "e2", "e3"]), 300, 300, &[]), Ok(vec![]));
    }

    #[test]
    fn a_read_that_started_before_an_acknowledgement_may_miss_it() {
        let mut sequence = Sequence::default();
        sequence.appending("e1");
        sequence.acknowledged("e1", 50);
        assert_eq!(sequence.read(&[], 40, 60, &[]), Ok(vec![]));
    }

    #[test]
    fn a_counter_above_its_increments_is_a_double_application() {
        let mut counters = Counters::default();
        counters.sending("c");
        counters.sending("c");
        assert!(counters.check("c", 2).is_ok());
        assert!(counters.check("c", 3).is_err());
    }

    #[test]
    fn appended_strings_split_into_elements() {
        assert_eq!(split_appended(b"e1,e2,"), elements(&["e1", "e2"]));
        assert!(split_appended(b"").is_empty());
    }
}
