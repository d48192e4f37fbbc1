//! A connection from this server to a migration target, remembering what it has already told
//! the target (`AUTH`, `SELECT`) so each batch sends only what changed.

use std::time::Duration;

use bytes::BytesMut;
use net::Env;
use resp::{Connection, Frame, Limits, encode};

/// Why a migration step failed. The `Display` text becomes (part of) the caller's error reply.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The connection could not be made in time.
    #[error("IOERR error or timeout connecting to {target}: {source}")]
    Connect {
        /// `host:port`.
        target: String,
        /// What the network said.
        source: std::io::Error,
    },
    /// Writing or reading failed, or a reply did not come in time.
    #[error("IOERR error or timeout {doing} {target}")]
    Io {
        /// `"writing to"` or `"reading from"`.
        doing: &'static str,
        /// `host:port`.
        target: String,
    },
    /// The target closed the connection.
    #[error("IOERR connection closed by {target}")]
    Closed {
        /// `host:port`.
        target: String,
    },
    /// The target refused a step.
    #[error("ERR target {target} refused {step}: {message}")]
    Refused {
        /// `host:port`.
        target: String,
        /// What was refused (`AUTH`, `SELECT`, `SLOTSRESTORE` …).
        step: &'static str,
        /// The target's reply.
        message: String,
    },
}

/// An open connection to a target.
pub struct Link<S> {
    connection: Connection<S>,
    target: String,
    /// The database selected there, if any yet.
    selected: Option<usize>,
    authenticated: bool,
}

impl<S: net::Stream> Link<S> {
    /// Connects to `target` within `timeout`.
    pub async fn open<E: Env<Stream = S>>(env: &E, target: &str, timeout: Duration) -> Result<Link<S>, LinkError> {
        let stream = env
            .connect(target, timeout)
            .await
            .map_err(|source| LinkError::Connect { target: target.to_string(), source })?;
        // The target's replies are small; its limits are for what clients send us, not needed
        // here beyond the defaults.
        Ok(Link {
            connection: Connection::new(stream, Limits::default()),
            target: target.to_string(),
            selected: None,
            authenticated: false,
        })
    }

    /// `host:port` of the target.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Appends `AUTH password` if the link has not authenticated yet and `password` is set;
    /// returns how many replies that adds.
    pub fn prepare_auth(&mut self, out: &mut BytesMut, password: &[u8], command: &str) -> usize {
        if password.is_empty() || self.authenticated {
            return 0;
        }
        self.authenticated = true;
        encode::write_array_header(out, 2);
        encode::write_bulk(out, command.as_bytes());
        encode::write_bulk(out, password);
        1
    }

    /// Appends `SELECT db` if another database is selected there; returns how many replies that
    /// adds.
    pub fn prepare_select(&mut self, out: &mut BytesMut, db: usize, command: &str) -> usize {
        if self.selected == Some(db) {
            return 0;
        }
        self.selected = Some(db);
        encode::write_array_header(out, 2);
        encode::write_bulk(out, command.as_bytes());
        encode::write_bulk(out, itoa::Buffer::new().format(db).as_bytes());
        1
    }

    /// Sends `bytes` within `timeout`.
    pub async fn send(&mut self, bytes: &[u8], timeout: Duration) -> Result<(), LinkError> {
        self.connection.write_buffer().extend_from_slice(bytes);
        match tokio::time::timeout(timeout, self.connection.flush()).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(LinkError::Io { doing: "writing to", target: self.target.clone() }),
        }
    }

    /// Reads one reply within `timeout`.
    pub async fn receive(&mut self, timeout: Duration) -> Result<Frame, LinkError> {
        match tokio::time::timeout(timeout, self.connection.read_frame()).await {
            Ok(Ok(Some(frame))) => Ok(frame),
            Ok(Ok(None)) => Err(LinkError::Closed { target: self.target.clone() }),
            _ => Err(LinkError::Io { doing: "reading from", target: self.target.clone() }),
        }
    }

    /// Reads one reply and requires `+OK`.
    pub async fn expect_ok(&mut self, timeout: Duration, step: &'static str) -> Result<(), LinkError> {
        match self.receive(timeout).await? {
            Frame::Simple(text) if text.as_ref() == b"OK" => Ok(()),
            other => Err(self.refused(step, &other)),
        }
    }

    /// The error for a reply that refused `step`.
    pub fn refused(&self, step: &'static str, reply: &Frame) -> LinkError {
        let message = match reply {
            Frame::Error(text) | Frame::BlobError(text) | Frame::Simple(text) | Frame::Bulk(text) => {
                String::from_utf8_lossy(text).into_owned()
            }
            other => format!("{other:?}"),
        };
        LinkError::Refused { target: self.target.clone(), step, message }
    }
}
