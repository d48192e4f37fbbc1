//! The replication backlog: the last bytes of the replication stream, so a replica that lost its
//! link for a moment resumes from its offset (`PSYNC` answered `+CONTINUE`) instead of copying
//! everything again.
//!
//! Offsets are Redis': the stream's bytes are numbered from 1, `offset()` is the number of bytes
//! ever appended (`master_repl_offset`), and a replica asks for the first byte it lacks.

use std::collections::VecDeque;

/// The last `capacity` bytes of the stream.
#[derive(Debug)]
pub struct Backlog {
    bytes: VecDeque<u8>,
    capacity: usize,
    /// Bytes ever appended.
    offset: u64,
}

impl Backlog {
    /// An empty backlog keeping up to `capacity` bytes, whose stream is at `offset`.
    pub fn new(capacity: usize, offset: u64) -> Backlog {
        Backlog { bytes: VecDeque::new(), capacity: capacity.max(1), offset }
    }

    /// Appends `bytes` to the stream, forgetting the oldest beyond the capacity.
    pub fn append(&mut self, bytes: &[u8]) {
        self.offset += bytes.len() as u64;
        let keep = bytes.len().min(self.capacity);
        let overflow = (self.bytes.len() + keep).saturating_sub(self.capacity);
        self.bytes.drain(..overflow);
        self.bytes.extend(&bytes[bytes.len() - keep..]);
    }

    /// Bytes ever appended (`master_repl_offset`).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The number of the first byte held (`repl_backlog_first_byte_offset`).
    pub fn first_byte(&self) -> u64 {
        self.offset + 1 - self.bytes.len() as u64
    }

    /// Bytes held (`repl_backlog_histlen`).
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The configured capacity (`repl_backlog_size`).
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The stream from byte `from` on, if the backlog still holds it (`from` may be one past the
    /// end: nothing to send).
    pub fn since(&self, from: u64) -> Option<Vec<u8>> {
        if from < self.first_byte() || from > self.offset + 1 {
            return None;
        }
        let skip = usize::try_from(from - self.first_byte()).ok()?;
        Some(self.bytes.range(skip..).copied().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backlog_keeps_the_stream_tail_by_offset() {
        let mut backlog = Backlog::new(8, 0);
        assert_eq!((backlog.offset(), backlog.first_byte(), backlog.len()), (0, 1, 0));
        assert_eq!(backlog.since(1), Some(Vec::new()));
        backlog.append(b"abcde");
        assert_eq!(backlog.since(1).as_deref(), Some(&b"abcde"[..]));
        assert_eq!(backlog.since(4).as_deref(), Some(&b"de"[..]));
        backlog.append(b"fghij");
        // 10 bytes appended, 8 kept: bytes 3..=10.
        assert_eq!((backlog.offset(), backlog.first_byte(), backlog.len()), (10, 3, 8));
        assert_eq!(backlog.since(2), None, "forgotten");
        assert_eq!(backlog.since(3).as_deref(), Some(&b"cdefghij"[..]));
        assert_eq!(backlog.since(11), Some(Vec::new()));
        assert_eq!(backlog.since(12), None, "beyond the stream");
        backlog.append(b"0123456789xy");
        assert_eq!(backlog.since(15).as_deref(), Some(&b"456789xy"[..]));
        let resumed = Backlog::new(8, 100);
        assert_eq!((resumed.first_byte(), resumed.since(101)), (101, Some(Vec::new())));
    }
}
