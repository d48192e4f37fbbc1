//! A client connection's own state: its database, protocol, authentication, transaction, and
//! what is left of its input.

use net::Env;
use resp::{ConnectionError, ProtocolError, Request, Version};
use tracing::debug;

use crate::transaction::Transaction;

/// Which backend connections a client's requests use: its database and protocol.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Target {
    pub(crate) db: usize,
    pub(crate) version: Version,
}

/// A client's own state.
pub(crate) struct Client<E: Env> {
    pub(crate) id: u64,
    pub(crate) db: usize,
    pub(crate) version: Version,
    pub(crate) authenticated: bool,
    /// The client sent `QUIT`: its `+OK` is the last reply, and nothing pipelined after it runs
    /// (Redis stops parsing there, so a malformed request after it is never seen either).
    pub(crate) quit: bool,
    pub(crate) tx: Transaction<E>,
}

/// What is left to read of the client's side of the connection.
///
/// Kept apart from [`Client::quit`], which the client asks for: after `QUIT` nothing more runs,
/// while after a protocol error every request read before it still runs and is answered, in
/// order, and only then is the error written and the connection closed.
#[derive(Debug)]
pub(crate) enum Input {
    /// More requests may come.
    Open,
    /// The client closed its side, the connection failed or idled out, or the client sent more
    /// than its unprocessed input limit: what is owed is answered (if it still reads), then the
    /// connection closes.
    Ended,
    /// The bytes after the requests read so far cannot be framed: those requests run and are
    /// answered, then this error is the last reply and the connection closes, as Redis closes a
    /// client after a protocol error once its replies are written (`CLIENT_CLOSE_AFTER_REPLY`).
    Broken(ProtocolError),
}

impl Input {
    pub(crate) fn is_open(&self) -> bool {
        matches!(self, Input::Open)
    }

    /// Records why a read gave no request.
    pub(crate) fn failed(&mut self, error: ConnectionError) {
        *self = match error {
            ConnectionError::Protocol(error) => {
                debug!(%error, "protocol error");
                Input::Broken(error)
            }
            error => {
                debug!(%error, "client connection ended");
                Input::Ended
            }
        };
    }

    /// What a read returned, as the next request (`None`: the input stopped here).
    pub(crate) fn take(&mut self, read: Result<Option<Request>, ConnectionError>) -> Option<Request> {
        match read {
            Ok(Some(request)) => Some(request),
            Ok(None) => {
                *self = Input::Ended;
                None
            }
            Err(error) => {
                self.failed(error);
                None
            }
        }
    }
}

impl<E: Env> Client<E> {
    pub(crate) fn target(&self) -> Target {
        Target { db: self.db, version: self.version }
    }
}
