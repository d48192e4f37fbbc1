//! Limits on what a peer may make us buffer or build.

/// Bounds applied while decoding; exceeding one is a [`crate::ProtocolError`], never an
/// allocation. Defaults follow Redis 7.0 where Redis has a number, and say why where it does not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest bulk string, in bytes. Redis' `proto-max-bulk-len` default: 512 MiB.
    pub max_bulk_len: usize,
    /// Most elements in one aggregate (arguments of a request, items of an array reply).
    /// Codis' proxy caps requests at 1,048,576 arguments; a backend decoder reading replies
    /// (`LRANGE` of a big list) should raise it.
    pub max_array_len: usize,
    /// Deepest nesting of aggregates. Redis' replies nest a few levels (`XREAD`, `COMMAND`);
    /// 64 leaves room while bounding the decoder's stack. Clamped to [`Limits::MAX_DEPTH`].
    pub max_depth: usize,
    /// Longest inline command and longest header line (`*<count>`, `$<len>`, simple strings).
    /// Redis' `PROTO_INLINE_MAX_SIZE`: 64 KiB.
    pub max_inline_len: usize,
    /// Most unprocessed input a connection buffers: a request still arriving, or requests
    /// pipelined behind a blocked one. Redis' `client-query-buffer-limit` default: 1 GiB.
    pub max_buffered_input: usize,
}

impl Limits {
    /// The hard ceiling on [`Limits::max_depth`]: the frame builder recurses once per level.
    pub const MAX_DEPTH: usize = 512;

    /// The depth actually enforced.
    pub fn depth(&self) -> usize {
        self.max_depth.min(Self::MAX_DEPTH)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bulk_len: 512 * 1024 * 1024,
            max_array_len: 1024 * 1024,
            max_depth: 64,
            max_inline_len: 64 * 1024,
            max_buffered_input: 1024 * 1024 * 1024,
        }
    }
}
