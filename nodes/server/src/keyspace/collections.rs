//! The collection types: hashes, sets and lists.
//!
//! Where Redis' compact encodings make an order observable, we keep the same order: a small hash
//! (`listpack`) returns fields in insertion order even across deletions, and a set of integers
//! (`intset`) returns its members sorted. Past the same thresholds as Redis, collections switch,
//! one way, to their `hashtable` form, whose order Redis leaves unspecified (ours is deterministic
//! for a given seed and history). `OBJECT ENCODING` reports the form, as Redis does.

use std::collections::VecDeque;

use foldhash::fast::FixedState;
use indexmap::{IndexMap, IndexSet};

use super::bulk::Bulk;
use super::memory::{heap_of, table, vector};
use super::skiplist::{Iter, SkipList, level_from_bits};

/// The thresholds at which collections leave their compact encodings (Redis' compiled-in
/// defaults, which a `redis-server` started without a config file uses).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EncodingLimits {
    /// `hash-max-listpack-entries`.
    pub hash_entries: usize,
    /// `hash-max-listpack-value`.
    pub hash_value: usize,
    /// `set-max-intset-entries`.
    pub set_intset_entries: usize,
    /// `zset-max-listpack-entries`.
    pub zset_entries: usize,
    /// `zset-max-listpack-value`.
    pub zset_value: usize,
}

impl Default for EncodingLimits {
    fn default() -> Self {
        Self { hash_entries: 512, hash_value: 64, set_intset_entries: 512, zset_entries: 128, zset_value: 64 }
    }
}

/// Visits up to `count` entries of an indexed collection from `cursor` (0 starts), walking
/// positions downwards like the keyspace scan; returns the cursor to continue from.
fn scan_positions(len: usize, cursor: u64, count: usize, mut visit: impl FnMut(usize)) -> u64 {
    let mut remaining = usize::try_from(cursor).unwrap_or(usize::MAX);
    if remaining == 0 || remaining > len {
        remaining = len;
    }
    let mut visited = 0;
    while remaining > 0 && visited < count {
        remaining -= 1;
        visit(remaining);
        visited += 1;
    }
    remaining as u64
}

/// A hash.
#[derive(Debug, PartialEq)]
pub struct Hash {
    fields: IndexMap<Bulk, Bulk, FixedState>,
    /// Still in Redis' compact form: removals keep the order of the other fields.
    listpack: bool,
    /// Heap bytes of the fields and values.
    heap: usize,
}

// Cloning (`COPY`) recounts the heap bytes: a clone of a spilled `Bulk` is built by collecting,
// so its capacity (a power of two) need not be the original's (exactly its length, from
// `Bulk::from_slice`), and a copied counter would later underflow as the clone's elements go.

impl Clone for Hash {
    fn clone(&self) -> Hash {
        let fields = self.fields.clone();
        let heap = fields.iter().map(|(field, value)| heap_of(field) + heap_of(value)).sum();
        Hash { fields, listpack: self.listpack, heap }
    }
}

impl Clone for Set {
    fn clone(&self) -> Set {
        let repr = self.repr.clone();
        let heap = match &repr {
            SetRepr::Ints(_) => 0,
            SetRepr::Table(table) => table.iter().map(heap_of).sum(),
        };
        Set { repr, hasher_seed: self.hasher_seed, heap }
    }
}

impl Clone for ZSet {
    fn clone(&self) -> ZSet {
        let scores = self.scores.clone();
        let heap = scores.keys().map(heap_of).sum();
        ZSet { scores, order: self.order.clone(), listpack: self.listpack, hasher_seed: self.hasher_seed, heap }
    }
}

impl Clone for List {
    fn clone(&self) -> List {
        let items = self.items.clone();
        let heap = items.iter().map(heap_of).sum();
        List { items, heap }
    }
}

impl Hash {
    /// An empty hash hashing with `hasher`.
    pub fn new(hasher: FixedState) -> Hash {
        Hash { fields: IndexMap::with_hasher(hasher), listpack: true, heap: 0 }
    }

    /// Drops fields beyond the first `len`, for freeing a detached big value a piece at a time
    /// (the heap count is not kept: the value is on its way out).
    pub fn truncate(&mut self, len: usize) {
        self.fields.truncate(len);
    }

    /// Makes room for `additional` more fields at once (a migration target that knows the final
    /// size), so the table does not rehash step by step while chunks arrive.
    pub fn reserve(&mut self, additional: usize) {
        self.fields.reserve(additional);
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether there are no fields (such a hash is deleted).
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The value of `field`.
    pub fn get(&self, field: &[u8]) -> Option<&Bulk> {
        self.fields.get(field)
    }

    /// Sets `field` to `value`; returns whether the field is new.
    pub fn insert(&mut self, field: &[u8], value: &[u8], limits: &EncodingLimits) -> bool {
        if self.listpack && (field.len() > limits.hash_value || value.len() > limits.hash_value) {
            self.listpack = false;
        }
        let value = Bulk::from_slice(value);
        self.heap += heap_of(&value);
        let new = match self.fields.get_mut(field) {
            Some(existing) => {
                self.heap -= heap_of(existing);
                *existing = value;
                false
            }
            None => {
                let field = Bulk::from_slice(field);
                self.heap += heap_of(&field);
                self.fields.insert(field, value);
                true
            }
        };
        if self.listpack && self.fields.len() > limits.hash_entries {
            self.listpack = false;
        }
        new
    }

    /// Removes `field`; returns whether it existed.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        let removed =
            if self.listpack { self.fields.shift_remove_entry(field) } else { self.fields.swap_remove_entry(field) };
        match removed {
            Some((field, value)) => {
                self.heap -= heap_of(&field) + heap_of(&value);
                true
            }
            None => false,
        }
    }

    /// Bytes the hash holds in memory beyond its own struct.
    pub fn bytes(&self) -> usize {
        self.heap + table(self.fields.capacity(), 2 * std::mem::size_of::<Bulk>())
    }

    /// Every field and value, in the hash's order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&Bulk, &Bulk)> {
        self.fields.iter()
    }

    /// The field and value at position `index`.
    pub fn get_index(&self, index: usize) -> Option<(&Bulk, &Bulk)> {
        self.fields.get_index(index)
    }

    /// `OBJECT ENCODING`'s answer.
    pub fn encoding(&self) -> &'static str {
        if self.listpack { "listpack" } else { "hashtable" }
    }

    /// `HSCAN`: a compact hash is returned whole with cursor 0, as Redis does; a large one a part
    /// at a time.
    pub fn scan(&self, cursor: u64, count: usize, mut visit: impl FnMut(&Bulk, &Bulk)) -> u64 {
        if self.listpack {
            self.fields.iter().for_each(|(field, value)| visit(field, value));
            return 0;
        }
        scan_positions(self.fields.len(), cursor, count, |index| {
            if let Some((field, value)) = self.fields.get_index(index) {
                visit(field, value);
            }
        })
    }
}

/// A set.
#[derive(Debug, PartialEq)]
pub struct Set {
    repr: SetRepr,
    /// Seeds the table if the set becomes one.
    hasher_seed: u64,
    /// Heap bytes of the members of a table.
    heap: usize,
}

#[derive(Clone, Debug, PartialEq)]
enum SetRepr {
    /// Redis' `intset`: sorted 64-bit integers.
    Ints(Vec<i64>),
    /// Redis' `hashtable`.
    Table(IndexSet<Bulk, FixedState>),
}

impl Set {
    /// An empty set for a first member `first` (Redis picks the encoding from the first member),
    /// whose table, if it gets one, hashes with `hasher_seed`.
    pub fn for_member(first: &[u8], hasher_seed: u64) -> Set {
        let repr = if resp::parse_i64(first).is_some() {
            SetRepr::Ints(Vec::new())
        } else {
            SetRepr::Table(IndexSet::with_hasher(FixedState::with_seed(hasher_seed)))
        };
        Set { repr, hasher_seed, heap: 0 }
    }

    /// Drops members beyond the first `len` (see [`Hash::truncate`]).
    pub fn truncate(&mut self, len: usize) {
        match &mut self.repr {
            SetRepr::Ints(ints) => ints.truncate(len),
            SetRepr::Table(members) => members.truncate(len),
        }
    }

    /// Makes room for `additional` more members if the set is a table (see [`Hash::reserve`]).
    pub fn reserve(&mut self, additional: usize) {
        if let SetRepr::Table(members) = &mut self.repr {
            members.reserve(additional);
        }
    }

    /// An empty set that starts as an `intset`, as Redis builds the results of `SUNION`, `SDIFF`
    /// and the `STORE` variants.
    pub fn new_result(hasher_seed: u64) -> Set {
        Set { repr: SetRepr::Ints(Vec::new()), hasher_seed, heap: 0 }
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        match &self.repr {
            SetRepr::Ints(ints) => ints.len(),
            SetRepr::Table(table) => table.len(),
        }
    }

    /// Whether the set is empty (such a set is deleted).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `member` is in the set.
    pub fn contains(&self, member: &[u8]) -> bool {
        match &self.repr {
            SetRepr::Ints(ints) => resp::parse_i64(member).is_some_and(|int| ints.binary_search(&int).is_ok()),
            SetRepr::Table(table) => table.contains(member),
        }
    }

    /// Adds `member`; returns whether it is new.
    pub fn insert(&mut self, member: &[u8], limits: &EncodingLimits) -> bool {
        if let SetRepr::Ints(ints) = &mut self.repr
            && let Some(int) = resp::parse_i64(member)
        {
            let Err(position) = ints.binary_search(&int) else {
                return false;
            };
            ints.insert(position, int);
            if ints.len() > limits.set_intset_entries {
                self.convert_to_table();
            }
            return true;
        }
        self.convert_to_table();
        match &mut self.repr {
            SetRepr::Table(table) => {
                let member = Bulk::from_slice(member);
                let heap = heap_of(&member);
                let new = table.insert(member);
                if new {
                    self.heap += heap;
                }
                new
            }
            SetRepr::Ints(_) => false,
        }
    }

    /// Removes `member`; returns whether it was there.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        match &mut self.repr {
            SetRepr::Ints(ints) => match resp::parse_i64(member).map(|int| ints.binary_search(&int)) {
                Some(Ok(position)) => {
                    ints.remove(position);
                    true
                }
                _ => false,
            },
            SetRepr::Table(table) => match table.swap_remove_full(member) {
                Some((_, member)) => {
                    self.heap -= heap_of(&member);
                    true
                }
                None => false,
            },
        }
    }

    /// Bytes the set holds in memory beyond its own struct.
    pub fn bytes(&self) -> usize {
        match &self.repr {
            SetRepr::Ints(ints) => vector::<i64>(ints.capacity()),
            SetRepr::Table(members) => self.heap + table(members.capacity(), std::mem::size_of::<Bulk>()),
        }
    }

    /// The member at position `index` (random choices draw an index).
    pub fn get_index(&self, index: usize) -> Option<Bulk> {
        match &self.repr {
            SetRepr::Ints(ints) => {
                ints.get(index).map(|int| Bulk::from_slice(itoa::Buffer::new().format(*int).as_bytes()))
            }
            SetRepr::Table(table) => table.get_index(index).cloned(),
        }
    }

    /// Every member, in the set's order (ascending for an `intset`).
    pub fn members(&self) -> Vec<Bulk> {
        (0..self.len()).filter_map(|index| self.get_index(index)).collect()
    }

    /// `OBJECT ENCODING`'s answer.
    pub fn encoding(&self) -> &'static str {
        match self.repr {
            SetRepr::Ints(_) => "intset",
            SetRepr::Table(_) => "hashtable",
        }
    }

    /// `SSCAN`: an `intset` is returned whole with cursor 0, as Redis does.
    pub fn scan(&self, cursor: u64, count: usize, mut visit: impl FnMut(Bulk)) -> u64 {
        match &self.repr {
            SetRepr::Ints(_) => {
                self.members().into_iter().for_each(visit);
                0
            }
            SetRepr::Table(table) => scan_positions(table.len(), cursor, count, |index| {
                if let Some(member) = table.get_index(index) {
                    visit(member.clone());
                }
            }),
        }
    }

    fn convert_to_table(&mut self) {
        if let SetRepr::Ints(ints) = &self.repr {
            let mut table = IndexSet::with_capacity_and_hasher(ints.len(), FixedState::with_seed(self.hasher_seed));
            for int in ints {
                let member = Bulk::from_slice(itoa::Buffer::new().format(*int).as_bytes());
                self.heap += heap_of(&member);
                table.insert(member);
            }
            self.repr = SetRepr::Table(table);
        }
    }
}

/// A sorted set: scores by member, and the members in order.
#[derive(Debug, PartialEq)]
pub struct ZSet {
    scores: IndexMap<Bulk, f64, FixedState>,
    order: SkipList,
    /// Still in Redis' compact form (which only changes what `OBJECT ENCODING` and `ZSCAN` say:
    /// the order is the same in both forms).
    listpack: bool,
    hasher_seed: u64,
    /// Heap bytes of the members in the score map (the skiplist counts its own copies).
    heap: usize,
}

impl ZSet {
    /// An empty sorted set; `listpack` if Redis would create it compact.
    pub fn new(hasher_seed: u64, listpack: bool) -> ZSet {
        ZSet {
            scores: IndexMap::with_hasher(FixedState::with_seed(hasher_seed)),
            order: SkipList::default(),
            listpack,
            hasher_seed,
            heap: 0,
        }
    }

    /// Makes room for `additional` more members in the member map (see [`Hash::reserve`]).
    pub fn reserve(&mut self, additional: usize) {
        self.scores.reserve(additional);
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.scores.len()
    }

    /// Whether the set is empty (such a set is deleted).
    pub fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }

    /// The score of `member`.
    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.scores.get(member).copied()
    }

    /// Sets `member`'s score (the caller has refused NaN); returns whether the member is new.
    ///
    /// As in Redis, a score equal to the current one changes nothing (`-0` does not replace `0`,
    /// nor the other way round), and a set that stays compact keeps a zero score as `0`: Redis'
    /// listpack writes scores as text and reads `-0` back as `0`. A member that makes the set
    /// outgrow the compact form is inserted after the conversion, keeping its sign.
    pub fn insert(&mut self, member: &[u8], score: f64, limits: &EncodingLimits) -> bool {
        // A compact sorted set stores whole scores as integers (Redis 7.0's `zzlInsertAt`), so -0
        // reads back as 0 while the set stays compact (`DUMP` writes it that way too).
        let score = if score == 0.0 && score.is_sign_negative() && self.stays_compact_with(member, limits) {
            0.0
        } else {
            score
        };
        let level = self.level_of(member);
        let exists = self.scores.contains_key(member);
        let stays_compact = self.listpack
            && self.scores.len() + usize::from(!exists) <= limits.zset_entries
            && member.len() <= limits.zset_value;
        let score = if stays_compact && score == 0.0 { 0.0 } else { score };
        let new = match self.scores.get_mut(member) {
            Some(current) => {
                if *current != score {
                    self.order.remove(*current, member);
                    self.order.insert(score, member, level);
                    *current = score;
                }
                false
            }
            None => {
                let owned = Bulk::from_slice(member);
                self.heap += heap_of(&owned);
                self.scores.insert(owned, score);
                self.order.insert(score, member, level);
                true
            }
        };
        if self.listpack && (self.scores.len() > limits.zset_entries || member.len() > limits.zset_value) {
            self.listpack = false;
        }
        new
    }

    /// Whether the set is compact and stays so with `member` in it (Redis converts before it
    /// inserts a member that does not fit).
    fn stays_compact_with(&self, member: &[u8], limits: &EncodingLimits) -> bool {
        let len = self.scores.len() + usize::from(!self.scores.contains_key(member));
        self.listpack && len <= limits.zset_entries && member.len() <= limits.zset_value
    }

    /// Removes `member`; returns whether it was there.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        match self.scores.swap_remove_entry(member) {
            Some((owned, score)) => {
                self.heap -= heap_of(&owned);
                self.order.remove(score, member)
            }
            None => false,
        }
    }

    /// Bytes the sorted set holds in memory beyond its own struct.
    pub fn bytes(&self) -> usize {
        self.heap
            + table(self.scores.capacity(), std::mem::size_of::<Bulk>() + std::mem::size_of::<f64>())
            + self.order.bytes()
    }

    /// `member`'s 0-based rank, ascending or (`reverse`) descending.
    pub fn rank(&self, member: &[u8], reverse: bool) -> Option<usize> {
        let score = self.score(member)?;
        let rank = self.order.rank(score, member)?;
        Some(if reverse { self.len() - 1 - rank } else { rank })
    }

    /// Members with scores from 0-based rank `from`, ascending or (`reverse`) descending.
    pub fn iter_from_rank(&self, from: usize, reverse: bool) -> Iter<'_> {
        self.order.iter_from_rank(from, reverse)
    }

    /// Whether the set is still in Redis' compact form (a listpack, scanned from one end).
    pub fn is_compact(&self) -> bool {
        self.listpack
    }

    /// The ascending rank of the first member for which `accept` holds (`accept` must be false
    /// then true along the order); `len()` if none.
    pub fn first_rank_where(&self, accept: impl Fn(f64, &[u8]) -> bool) -> usize {
        self.order.lower_bound(accept)
    }

    /// The member and score at position `index` of the member map (random choices).
    pub fn get_index(&self, index: usize) -> Option<(&Bulk, f64)> {
        self.scores.get_index(index).map(|(member, score)| (member, *score))
    }

    /// `OBJECT ENCODING`'s answer.
    pub fn encoding(&self) -> &'static str {
        if self.listpack { "listpack" } else { "skiplist" }
    }

    /// `ZSCAN`: a compact sorted set is returned whole, in order, with cursor 0, as Redis does.
    pub fn scan(&self, cursor: u64, count: usize, mut visit: impl FnMut(&Bulk, f64)) -> u64 {
        if self.listpack {
            self.order.iter_from_rank(0, false).for_each(|(score, member)| visit(member, score));
            return 0;
        }
        scan_positions(self.scores.len(), cursor, count, |index| {
            if let Some((member, score)) = self.scores.get_index(index) {
                visit(member, *score);
            }
        })
    }

    /// A node level for `member`, from its hash under this set's seed: the skiplist's shape
    /// follows from the contents and the seed alone.
    fn level_of(&self, member: &[u8]) -> usize {
        use std::hash::BuildHasher;
        let bits = FixedState::with_seed(self.hasher_seed.rotate_left(7)).hash_one(member);
        level_from_bits(bits)
    }
}

/// A list (`quicklist` in Redis 7.0, whatever its size).
#[derive(Debug, Default, PartialEq)]
pub struct List {
    /// The elements, head first.
    items: VecDeque<Bulk>,
    /// Heap bytes of the elements.
    heap: usize,
}

impl List {
    /// Adds `element` at the head.
    pub fn push_front(&mut self, element: &[u8]) {
        let element = Bulk::from_slice(element);
        self.heap += heap_of(&element);
        self.items.push_front(element);
    }

    /// Adds `element` at the tail.
    pub fn push_back(&mut self, element: &[u8]) {
        let element = Bulk::from_slice(element);
        self.heap += heap_of(&element);
        self.items.push_back(element);
    }

    /// Takes the head element.
    pub fn pop_front(&mut self) -> Option<Bulk> {
        let element = self.items.pop_front()?;
        self.heap -= heap_of(&element);
        Some(element)
    }

    /// Takes the tail element.
    pub fn pop_back(&mut self) -> Option<Bulk> {
        let element = self.items.pop_back()?;
        self.heap -= heap_of(&element);
        Some(element)
    }

    /// Drops elements beyond the first `len` (see [`Hash::truncate`]).
    pub fn truncate(&mut self, len: usize) {
        self.items.truncate(len);
    }

    /// The element at `position`.
    pub fn get(&self, position: usize) -> Option<&Bulk> {
        self.items.get(position)
    }

    /// Every element, head first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Bulk> + ExactSizeIterator {
        self.items.iter()
    }

    /// The elements from `start` to `end` inclusive (positions in range).
    pub fn range(&self, start: usize, end: usize) -> impl Iterator<Item = &Bulk> {
        self.items.range(start..=end)
    }

    /// Replaces the element at `position` (in range).
    pub fn set(&mut self, position: usize, element: &[u8]) {
        if let Some(slot) = self.items.get_mut(position) {
            let element = Bulk::from_slice(element);
            self.heap = self.heap - heap_of(slot) + heap_of(&element);
            *slot = element;
        }
    }

    /// Inserts `element` before `position` (at most the length).
    pub fn insert(&mut self, position: usize, element: &[u8]) {
        let element = Bulk::from_slice(element);
        self.heap += heap_of(&element);
        self.items.insert(position, element);
    }

    /// Removes the element at `position`.
    pub fn remove(&mut self, position: usize) -> Option<Bulk> {
        let element = self.items.remove(position)?;
        self.heap -= heap_of(&element);
        Some(element)
    }

    /// Keeps only the elements from `start` to `end` inclusive; `None` keeps nothing (`LTRIM`).
    pub fn retain_range(&mut self, range: Option<(usize, usize)>) {
        match range {
            None => {
                self.items.clear();
                self.heap = 0;
            }
            Some((start, end)) => {
                for element in self.items.drain(end + 1..) {
                    self.heap -= heap_of(&element);
                }
                for element in self.items.drain(..start) {
                    self.heap -= heap_of(&element);
                }
            }
        }
    }

    /// Bytes the list holds in memory beyond its own struct.
    pub fn bytes(&self) -> usize {
        self.heap + vector::<Bulk>(self.items.capacity())
    }
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the list is empty (such a list is deleted).
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Resolves a Redis index (negative counts from the tail) to a position, if in range.
    pub fn position(&self, index: i64) -> Option<usize> {
        let len = self.items.len() as i64;
        let index = if index < 0 { len + index } else { index };
        (0..len).contains(&index).then_some(index as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_hashes_keep_insertion_order_across_deletions() {
        let limits = EncodingLimits::default();
        let mut hash = Hash::new(FixedState::with_seed(1));
        for field in ["a", "b", "c", "d"] {
            hash.insert(field.as_bytes(), b"v", &limits);
        }
        hash.remove(b"b");
        hash.insert(b"b", b"v", &limits);
        let order: Vec<&[u8]> = hash.iter().map(|(field, _)| field.as_slice()).collect();
        assert_eq!(order, [&b"a"[..], b"c", b"d", b"b"]);
        assert_eq!(hash.encoding(), "listpack");
        hash.insert(b"long", &[b'x'; 65], &limits);
        assert_eq!(hash.encoding(), "hashtable");
    }

    #[test]
    fn clones_count_their_own_heap_bytes() {
        let limits = EncodingLimits::default();
        let long = b"9223372036854775807-and-more";
        let mut list = List::default();
        list.push_back(long);
        list.push_back(b"0");
        let mut copy = list.clone();
        assert_eq!(copy.heap, copy.items.iter().map(heap_of).sum::<usize>());
        copy.pop_front();
        copy.pop_front();
        assert_eq!(copy.heap, 0);

        let mut hash = Hash::new(FixedState::with_seed(1));
        hash.insert(long, long, &limits);
        let mut copy = hash.clone();
        copy.remove(long);
        assert_eq!(copy.heap, 0);

        let mut set = Set::for_member(long, 1);
        set.insert(long, &limits);
        let mut copy = set.clone();
        copy.remove(long);
        assert_eq!(copy.heap, 0);

        let mut zset = ZSet::new(1, true);
        zset.insert(long, 1.0, &limits);
        let mut copy = zset.clone();
        copy.remove(long);
        assert_eq!(copy.heap, 0);
        assert_eq!(copy.order.clone(), copy.order);
    }

    #[test]
    fn integer_sets_stay_sorted_until_they_cannot() {
        let limits = EncodingLimits { set_intset_entries: 3, ..EncodingLimits::default() };
        let mut set = Set::for_member(b"5", 1);
        for member in ["5", "-2", "9", "5"] {
            set.insert(member.as_bytes(), &limits);
        }
        assert_eq!(set.encoding(), "intset");
        assert_eq!(set.members(), vec![Bulk::from_slice(b"-2"), Bulk::from_slice(b"5"), Bulk::from_slice(b"9")]);
        assert!(set.contains(b"9") && !set.contains(b"09"));
        set.insert(b"10", &limits);
        assert_eq!(set.encoding(), "hashtable", "past set-max-intset-entries");
        let mut words = Set::for_member(b"x", 1);
        words.insert(b"1", &limits);
        assert_eq!(words.encoding(), "hashtable");
    }
}
