//! Protocol errors, worded as Redis 7.0 words them.

use thiserror::Error;

use crate::frame::Frame;

/// A peer sent bytes that are not valid RESP (or exceed a [`crate::Limits`]).
///
/// The `Display` text is Redis' own for the cases Redis has (so a client sees the same error from
/// us as from `redis-server`); the server prefixes it with `ERR ` in the reply and then closes the
/// connection, as Redis does, because the stream can no longer be framed.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum ProtocolError {
    /// `*<count>` is not an integer or exceeds the array limit.
    #[error("Protocol error: invalid multibulk length")]
    InvalidMultibulkLength,
    /// `$<len>` is not an integer, is negative, or exceeds the bulk limit.
    #[error("Protocol error: invalid bulk length")]
    InvalidBulkLength,
    /// No line end within the inline limit after `*`.
    #[error("Protocol error: too big mbulk count string")]
    TooBigMultibulkCount,
    /// No line end within the inline limit after `$`.
    #[error("Protocol error: too big bulk count string")]
    TooBigBulkCount,
    /// A multibulk request held something other than a bulk string.
    #[error("Protocol error: expected '$', got '{}'", char::from(*.0))]
    ExpectedBulk(u8),
    /// An inline command without a line end within the inline limit.
    #[error("Protocol error: too big inline request")]
    TooBigInlineRequest,
    /// An inline command with an unterminated or badly closed quote.
    #[error("Protocol error: unbalanced quotes in request")]
    UnbalancedQuotes,
    /// A frame started with a byte that is no RESP type.
    #[error("Protocol error: invalid frame type byte '{}'", char::from(*.0))]
    InvalidFrameType(u8),
    /// A header or simple line longer than the inline limit.
    #[error("Protocol error: too big line")]
    LineTooLong,
    /// A line held a `\r` not followed by `\n`.
    #[error("Protocol error: expected '\\n' after '\\r'")]
    BadLineEnd,
    /// An integer frame, or an aggregate count, that is not a valid 64-bit integer.
    #[error("Protocol error: invalid integer")]
    InvalidInteger,
    /// A RESP3 double that does not parse.
    #[error("Protocol error: invalid double")]
    InvalidDouble,
    /// A RESP3 boolean other than `#t` or `#f`.
    #[error("Protocol error: invalid boolean")]
    InvalidBoolean,
    /// A RESP3 null (`_`) with a payload.
    #[error("Protocol error: invalid null")]
    InvalidNull,
    /// A RESP3 big number that is not a decimal integer.
    #[error("Protocol error: invalid big number")]
    InvalidBigNumber,
    /// A RESP3 verbatim string without its `xxx:` format prefix.
    #[error("Protocol error: invalid verbatim string")]
    InvalidVerbatim,
    /// A bulk payload not followed by `\r\n`.
    #[error("Protocol error: expected CRLF after bulk payload")]
    MissingBulkTerminator,
    /// An aggregate with a negative count (other than the RESP2 null array `*-1`), or above the
    /// array limit.
    #[error("Protocol error: invalid aggregate length")]
    InvalidAggregateLength,
    /// Aggregates nested deeper than the depth limit.
    #[error("Protocol error: nesting deeper than {0} levels")]
    TooDeep(usize),
    /// RESP3 streamed strings and aggregates (`$?`, `*?`): Redis never sends them, and accepting
    /// them would let a peer grow a frame without bound.
    #[error("Protocol error: streamed RESP3 types are not supported")]
    Streamed,
}

impl ProtocolError {
    /// The error reply a server sends before closing the connection: `-ERR Protocol error: …`.
    pub fn to_reply(&self) -> Frame {
        Frame::Error(format!("ERR {self}").into())
    }
}
