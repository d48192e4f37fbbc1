//! The ordered index of a sorted set: Redis' skiplist, with spans, so ranks are O(log n).
//!
//! Elements are ordered by score, then by member bytes (Redis' order). Each node has a random
//! number of levels (p = 1/4, at most 32, as Redis); each forward link records its span, the
//! number of elements it skips, which is what makes `rank` and `by_rank` logarithmic. Nodes live in
//! an arena (`Vec`) linked by index, with a free list, so the structure is safe Rust.
//!
//! A node's level comes from the caller (a hash of the member with the set's seeded hasher), so
//! the list's shape is a function of its contents and the seed, never of a hidden generator.

use std::cmp::Ordering;

use smallvec::SmallVec;

use super::bulk::Bulk;

/// "No node".
const NIL: u32 = u32::MAX;
/// The header node's index.
const HEAD: u32 = 0;
/// Redis' `ZSKIPLIST_MAXLEVEL`.
pub const MAX_LEVEL: usize = 32;

#[derive(Clone, Copy, Debug, PartialEq)]
struct Link {
    forward: u32,
    span: u32,
}

#[derive(Clone, Debug, PartialEq)]
struct Node {
    member: Bulk,
    score: f64,
    backward: u32,
    /// Four levels inline: the tall nodes a search walks across stay one cache miss each (levels
    /// past four are one node in 256). With two inline, ZADD into a million members cost 7.0
    /// µs of CPU against 5.5.
    links: SmallVec<[Link; 4]>,
}

/// A skiplist of `(score, member)` pairs.
#[derive(Debug, PartialEq)]
pub struct SkipList {
    nodes: Vec<Node>,
    free: Vec<u32>,
    level: usize,
    len: usize,
    tail: u32,
    /// Heap bytes of the nodes' members and of links past the inline four levels.
    heap: usize,
}

/// A clone recounts its heap bytes: cloned members and links need not have the originals'
/// capacities (a spilled `SmallVec` clones by collecting).
impl Clone for SkipList {
    fn clone(&self) -> SkipList {
        let nodes = self.nodes.clone();
        let heap = nodes.iter().map(|node| node_heap(&node.member, &node.links)).sum();
        SkipList { nodes, free: self.free.clone(), level: self.level, len: self.len, tail: self.tail, heap }
    }
}

/// Heap bytes a node holds beyond its slot in the arena.
fn node_heap(member: &Bulk, links: &SmallVec<[Link; 4]>) -> usize {
    super::memory::heap_of(member) + if links.spilled() { super::memory::vector::<Link>(links.capacity()) } else { 0 }
}

/// Orders `(score, member)` pairs as Redis does: scores as C compares doubles, so `-0` and `0`
/// are equal and their members decide (scores are never NaN).
fn compare(score_a: f64, member_a: &[u8], score_b: f64, member_b: &[u8]) -> Ordering {
    score_a.partial_cmp(&score_b).unwrap_or(Ordering::Equal).then_with(|| member_a.cmp(member_b))
}

/// A node level drawn from 64 random bits: each further level with probability 1/4.
pub fn level_from_bits(bits: u64) -> usize {
    ((bits.trailing_ones() / 2) as usize + 1).min(MAX_LEVEL)
}

impl Default for SkipList {
    fn default() -> Self {
        let head = Node {
            member: Bulk::new(),
            score: 0.0,
            backward: NIL,
            links: SmallVec::from_elem(Link { forward: NIL, span: 0 }, MAX_LEVEL),
        };
        let heap = node_heap(&head.member, &head.links);
        SkipList { nodes: vec![head], free: Vec::new(), level: 1, len: 0, tail: NIL, heap }
    }
}

impl SkipList {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes the skiplist holds in memory: its arena and free list, and what nodes hold on the
    /// heap.
    pub fn bytes(&self) -> usize {
        super::memory::vector::<Node>(self.nodes.capacity())
            + super::memory::vector::<u32>(self.free.capacity())
            + self.heap
    }

    fn node(&self, index: u32) -> &Node {
        &self.nodes[index as usize]
    }

    fn link(&self, index: u32, level: usize) -> Link {
        self.nodes[index as usize].links[level]
    }

    fn link_mut(&mut self, index: u32, level: usize) -> &mut Link {
        &mut self.nodes[index as usize].links[level]
    }

    /// Walks down from the head to the last node before `(score, member)` on every level; returns
    /// those nodes and the rank (0-based count of elements) each stands at.
    fn predecessors(&self, score: f64, member: &[u8]) -> ([u32; MAX_LEVEL], [u32; MAX_LEVEL]) {
        let mut update = [HEAD; MAX_LEVEL];
        let mut rank = [0u32; MAX_LEVEL];
        let mut node = HEAD;
        for level in (0..self.level).rev() {
            rank[level] = if level == self.level - 1 { 0 } else { rank[level + 1] };
            loop {
                let link = self.link(node, level);
                if link.forward == NIL {
                    break;
                }
                let next = self.node(link.forward);
                if compare(next.score, &next.member, score, member) != Ordering::Less {
                    break;
                }
                rank[level] += link.span;
                node = link.forward;
            }
            update[level] = node;
        }
        (update, rank)
    }

    /// Inserts `(score, member)` with a node of `level` levels. The pair must not be present
    /// (the sorted set's member map guarantees it).
    pub fn insert(&mut self, score: f64, member: &[u8], level: usize) {
        debug_assert!(!score.is_nan(), "NaN scores are refused before they get here");
        let level = level.clamp(1, MAX_LEVEL);
        let (mut update, mut rank) = self.predecessors(score, member);
        if level > self.level {
            for extra in self.level..level {
                rank[extra] = 0;
                update[extra] = HEAD;
                self.link_mut(HEAD, extra).span = self.len as u32;
            }
            self.level = level;
        }
        let node = Node {
            member: Bulk::from_slice(member),
            score,
            backward: NIL,
            links: SmallVec::from_elem(Link { forward: NIL, span: 0 }, level),
        };
        self.heap += node_heap(&node.member, &node.links);
        let index = match self.free.pop() {
            Some(index) => {
                let old = &self.nodes[index as usize];
                self.heap -= node_heap(&old.member, &old.links);
                self.nodes[index as usize] = node;
                index
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        };
        for current in 0..level {
            let before = self.link(update[current], current);
            let skipped = rank[0] - rank[current];
            *self.link_mut(index, current) = Link { forward: before.forward, span: before.span - skipped };
            *self.link_mut(update[current], current) = Link { forward: index, span: skipped + 1 };
        }
        for (current, node) in update.iter().enumerate().take(self.level).skip(level) {
            self.link_mut(*node, current).span += 1;
        }
        let backward = if update[0] == HEAD { NIL } else { update[0] };
        self.nodes[index as usize].backward = backward;
        let next = self.link(index, 0).forward;
        if next == NIL {
            self.tail = index;
        } else {
            self.nodes[next as usize].backward = index;
        }
        self.len += 1;
    }

    /// Removes `(score, member)`; returns whether it was there.
    pub fn remove(&mut self, score: f64, member: &[u8]) -> bool {
        let (update, _) = self.predecessors(score, member);
        let target = self.link(update[0], 0).forward;
        if target == NIL {
            return false;
        }
        let found = self.node(target);
        if compare(found.score, &found.member, score, member) != Ordering::Equal {
            return false;
        }
        for (level, node) in update.iter().enumerate().take(self.level) {
            let link = self.link(*node, level);
            if link.forward == target {
                let removed = self.link(target, level);
                *self.link_mut(*node, level) = Link { forward: removed.forward, span: link.span + removed.span - 1 };
            } else {
                self.link_mut(*node, level).span -= 1;
            }
        }
        let next = self.link(target, 0).forward;
        let backward = self.node(target).backward;
        if next == NIL {
            self.tail = backward;
        } else {
            self.nodes[next as usize].backward = backward;
        }
        while self.level > 1 && self.link(HEAD, self.level - 1).forward == NIL {
            self.level -= 1;
        }
        self.heap -= super::memory::heap_of(&self.nodes[target as usize].member);
        self.nodes[target as usize].member = Bulk::new();
        self.free.push(target);
        self.len -= 1;
        true
    }

    /// The 0-based rank of `(score, member)`, if present.
    pub fn rank(&self, score: f64, member: &[u8]) -> Option<usize> {
        let mut rank = 0usize;
        let mut node = HEAD;
        for level in (0..self.level).rev() {
            loop {
                let link = self.link(node, level);
                if link.forward == NIL {
                    break;
                }
                let next = self.node(link.forward);
                if compare(next.score, &next.member, score, member) == Ordering::Greater {
                    break;
                }
                rank += link.span as usize;
                node = link.forward;
            }
            if node != HEAD {
                let here = self.node(node);
                if compare(here.score, &here.member, score, member) == Ordering::Equal {
                    return Some(rank - 1);
                }
            }
        }
        None
    }

    /// The node at 0-based `rank`.
    fn at_rank(&self, rank: usize) -> u32 {
        let target = rank + 1;
        let mut traversed = 0usize;
        let mut node = HEAD;
        for level in (0..self.level).rev() {
            loop {
                let link = self.link(node, level);
                if link.forward == NIL || traversed + link.span as usize > target {
                    break;
                }
                traversed += link.span as usize;
                node = link.forward;
            }
            if traversed == target {
                return node;
            }
        }
        NIL
    }

    /// Elements from 0-based rank `from`, ascending (`reverse`: descending from the end), as a
    /// cursor over `(score, member)`.
    pub fn iter_from_rank(&self, from: usize, reverse: bool) -> Iter<'_> {
        let start = if from >= self.len {
            NIL
        } else if reverse {
            self.at_rank(self.len - 1 - from)
        } else {
            self.at_rank(from)
        };
        Iter { list: self, node: start, reverse }
    }

    /// The 0-based rank of the first element not ordered before `(score, member)` (the insertion
    /// point): ranges by score or member start here.
    pub fn lower_bound(&self, accept: impl Fn(f64, &[u8]) -> bool) -> usize {
        // `accept` is monotone along the order (false…false true…true): find the first true.
        let mut rank = 0usize;
        let mut node = HEAD;
        for level in (0..self.level).rev() {
            loop {
                let link = self.link(node, level);
                if link.forward == NIL {
                    break;
                }
                let next = self.node(link.forward);
                if accept(next.score, &next.member) {
                    break;
                }
                rank += link.span as usize;
                node = link.forward;
            }
        }
        rank
    }
}

/// A walk over a [`SkipList`] in either direction.
pub struct Iter<'a> {
    list: &'a SkipList,
    node: u32,
    reverse: bool,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (f64, &'a Bulk);

    fn next(&mut self) -> Option<Self::Item> {
        if self.node == NIL {
            return None;
        }
        let node = self.list.node(self.node);
        self.node = if self.reverse { node.backward } else { node.links[0].forward };
        Some((node.score, &node.member))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    /// A model element ordered as the skiplist orders.
    #[derive(Clone, Debug, PartialEq)]
    struct Element(f64, Vec<u8>);

    impl Eq for Element {}
    impl PartialOrd for Element {
        fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
            Some(self.cmp(other))
        }
    }
    impl Ord for Element {
        fn cmp(&self, other: &Self) -> Ordering {
            compare(self.0, &self.1, other.0, &other.1)
        }
    }

    proptest! {
        #[test]
        fn behaves_like_an_ordered_set(ops in proptest::collection::vec((any::<bool>(), -20i32..20, 0u8..12, any::<u64>()), 0..300)) {
            let mut list = SkipList::default();
            let mut model: BTreeSet<Element> = BTreeSet::new();
            for (insert, score, member, bits) in ops {
                let element = Element(f64::from(score) / 2.0, vec![b'm', member]);
                if insert {
                    if model.insert(element.clone()) {
                        list.insert(element.0, &element.1, level_from_bits(bits));
                    }
                } else {
                    let removed = list.remove(element.0, &element.1);
                    prop_assert_eq!(removed, model.remove(&element));
                }
                prop_assert_eq!(list.len(), model.len());
            }
            let forward: Vec<Element> = list.iter_from_rank(0, false).map(|(score, member)| Element(score, member.to_vec())).collect();
            prop_assert_eq!(&forward, &model.iter().cloned().collect::<Vec<_>>());
            let backward: Vec<Element> = list.iter_from_rank(0, true).map(|(score, member)| Element(score, member.to_vec())).collect();
            prop_assert_eq!(backward, model.iter().rev().cloned().collect::<Vec<_>>());
            for (rank, element) in model.iter().enumerate() {
                prop_assert_eq!(list.rank(element.0, &element.1), Some(rank));
                let at: Vec<Element> = list.iter_from_rank(rank, false).take(1).map(|(score, member)| Element(score, member.to_vec())).collect();
                prop_assert_eq!(at, vec![element.clone()]);
                prop_assert_eq!(list.lower_bound(|score, member| compare(score, member, element.0, &element.1) != Ordering::Less), rank);
            }
            prop_assert_eq!(list.rank(100.0, b"absent"), None);
        }
    }

    #[test]
    fn levels_are_geometric() {
        assert_eq!(level_from_bits(0), 1);
        assert_eq!(level_from_bits(0b11), 2);
        assert_eq!(level_from_bits(0b1111), 3);
        assert_eq!(level_from_bits(u64::MAX), MAX_LEVEL);
    }
}
