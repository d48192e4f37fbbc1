//! A buffered, framed connection over any async byte stream.

use std::future::Future;
use std::io;
use std::pin::pin;
use std::task::Poll;

use bytes::{Bytes, BytesMut};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::decode::Decoder;
use crate::error::ProtocolError;
use crate::frame::Frame;
use crate::limits::Limits;
use crate::request::{Request, RequestDecoder};

/// Why reading from a [`Connection`] failed.
#[derive(Debug, Error)]
pub enum ConnectionError {
    /// The stream failed.
    #[error("connection error: {0}")]
    Io(#[from] io::Error),
    /// The peer sent something that is not RESP; the stream cannot be framed any more.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// The peer closed the stream in the middle of a frame.
    #[error("connection closed by peer in the middle of a frame")]
    ClosedMidFrame,
    /// The peer sent more unprocessed input than [`Limits::max_buffered_input`] allows (Redis'
    /// `client-query-buffer-limit`).
    #[error("unprocessed input exceeds {0} bytes")]
    InputBufferFull(usize),
}

/// What [`Connection::read_request_or_write_some`] did.
#[derive(Debug)]
pub enum ReadOrWrote {
    /// It read the next request (`None`: the peer closed the stream cleanly between requests).
    Read(Option<Request>),
    /// It wrote this many bytes of the buffered output (0: the stream takes no more).
    Wrote(usize),
}

/// A RESP connection: a read buffer with the two decoders, and a write buffer flushed explicitly.
///
/// Writes only append to the write buffer; nothing reaches the socket until [`Connection::flush`].
/// That is what makes pipelining cheap: a server answers every request already buffered, then
/// flushes once (see [`Connection::has_buffered_input`]).
#[derive(Debug)]
pub struct Connection<S> {
    stream: S,
    read_buf: BytesMut,
    write_buf: BytesMut,
    requests: RequestDecoder,
    frames: Decoder,
    max_buffered_input: usize,
}

/// Bytes requested from the stream per read: Redis' `PROTO_IOBUF_LEN`.
const READ_CHUNK: usize = 16 * 1024;

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    /// Wraps `stream`, decoding under `limits`.
    pub fn new(stream: S, limits: Limits) -> Self {
        Self {
            stream,
            read_buf: BytesMut::with_capacity(READ_CHUNK),
            write_buf: BytesMut::with_capacity(READ_CHUNK),
            requests: RequestDecoder::new(limits),
            frames: Decoder::new(limits),
            max_buffered_input: limits.max_buffered_input,
        }
    }

    /// Replaces the decoding limits (a server learns its configured limits after accepting).
    pub fn set_limits(&mut self, limits: Limits) {
        self.requests.set_limits(limits);
        self.frames = Decoder::new(limits);
        self.max_buffered_input = limits.max_buffered_input;
    }

    /// Reads the next client request; `Ok(None)` when the peer closed the stream cleanly between
    /// requests.
    pub async fn read_request(&mut self) -> Result<Option<Request>, ConnectionError> {
        loop {
            if let Some(request) = self.requests.decode(&mut self.read_buf)? {
                return Ok(Some(request));
            }
            if !self.fill().await? {
                return Ok(None);
            }
        }
    }

    /// The next request already buffered, without reading: a server drains a pipeline with this
    /// after [`Connection::read_request`] returned its first request.
    pub fn try_read_request(&mut self) -> Result<Option<Request>, ProtocolError> {
        self.requests.decode(&mut self.read_buf)
    }

    /// Reads the next frame (a reply, for a client); `Ok(None)` on a clean close between frames.
    pub async fn read_frame(&mut self) -> Result<Option<Frame>, ConnectionError> {
        loop {
            if let Some(frame) = self.frames.decode(&mut self.read_buf)? {
                return Ok(Some(frame));
            }
            if !self.fill().await? {
                return Ok(None);
            }
        }
    }

    /// Whether unread bytes are buffered: a server keeps answering without flushing while this
    /// holds, so a pipeline of requests costs one write.
    pub fn has_buffered_input(&self) -> bool {
        !self.read_buf.is_empty()
    }

    /// How many unread bytes are buffered.
    pub fn buffered_input_len(&self) -> usize {
        self.read_buf.len()
    }

    /// Reads more bytes into the buffer without decoding them, returning how many arrived (0: the
    /// peer closed the stream). A server reads this way while a client is blocked (`BLPOP`):
    /// its next requests wait in the buffer, and a client that goes away is noticed at once.
    pub async fn read_more(&mut self) -> Result<usize, ConnectionError> {
        self.read_buf.reserve(READ_CHUNK);
        let read = self.stream.read_buf(&mut self.read_buf).await?;
        self.check_buffered_input()?;
        Ok(read)
    }

    /// Reads one line (without its `\r\n`, or `\n`) as raw bytes: what a replica reads of the
    /// replication handshake, where a master may send bare newlines to keep the link alive.
    pub async fn read_line(&mut self, max: usize) -> Result<Bytes, ConnectionError> {
        loop {
            if let Some(end) = self.read_buf.iter().position(|&byte| byte == b'\n') {
                let mut line = self.read_buf.split_to(end + 1).freeze();
                line.truncate(end);
                if line.last() == Some(&b'\r') {
                    line.truncate(end - 1);
                }
                return Ok(line);
            }
            if self.read_buf.len() > max {
                return Err(ConnectionError::InputBufferFull(max));
            }
            if self.read_more().await? == 0 {
                return Err(ConnectionError::ClosedMidFrame);
            }
        }
    }

    /// Reads exactly `len` raw bytes (a snapshot sent after `+FULLRESYNC`, which has no
    /// `\r\n` after it).
    pub async fn read_exact(&mut self, len: usize) -> Result<Bytes, ConnectionError> {
        self.read_buf.reserve(len.saturating_sub(self.read_buf.len()));
        while self.read_buf.len() < len {
            if self.stream.read_buf(&mut self.read_buf).await? == 0 {
                return Err(ConnectionError::ClosedMidFrame);
            }
        }
        Ok(self.read_buf.split_to(len).freeze())
    }

    /// Appends `frame` to the write buffer.
    pub fn write_frame(&mut self, frame: &Frame) {
        frame.encode(&mut self.write_buf);
    }

    /// Appends a request to the write buffer (the client side).
    pub fn write_request(&mut self, request: &Request) {
        self.write_buf.extend_from_slice(request.wire());
    }

    /// The write buffer, for encoding replies directly with [`crate::encode`]'s writers.
    pub fn write_buffer(&mut self) -> &mut BytesMut {
        &mut self.write_buf
    }

    /// Writes everything buffered to the stream.
    pub async fn flush(&mut self) -> io::Result<()> {
        if !self.write_buf.is_empty() {
            self.stream.write_all_buf(&mut self.write_buf).await?;
        }
        self.stream.flush().await
    }

    /// Reads the next request and, meanwhile, writes the buffered output: returns when a
    /// request is complete or a write was made, whichever comes first. A server whose client
    /// must be heard even while it is behind on reading (a subscriber may `UNSUBSCRIBE`, `PING`
    /// or `QUIT` its way out of a flood of messages, as Redis, which reads a client whatever it
    /// owes it, lets it) waits on this rather than on a read or a write alone. Reading is tried
    /// first, so a client that reads as fast as it is written to is still heard.
    ///
    /// Cancel-safe: bytes read stay buffered for the next call, and bytes written have left
    /// the buffer.
    pub async fn read_request_or_write_some(&mut self) -> Result<ReadOrWrote, ConnectionError> {
        /// One step: a read or a write.
        enum Step {
            Read(io::Result<usize>),
            Wrote(io::Result<usize>),
        }
        loop {
            if let Some(request) = self.requests.decode(&mut self.read_buf)? {
                return Ok(ReadOrWrote::Read(Some(request)));
            }
            self.read_buf.reserve(READ_CHUNK);
            // One stream both ways: each direction is polled in turn, each poll a fresh
            // (stateless) read or write future, so neither borrow outlives its poll.
            let step = std::future::poll_fn(|cx| {
                if let Poll::Ready(read) = pin!(self.stream.read_buf(&mut self.read_buf)).poll(cx) {
                    return Poll::Ready(Step::Read(read));
                }
                if !self.write_buf.is_empty()
                    && let Poll::Ready(wrote) = pin!(self.stream.write_buf(&mut self.write_buf)).poll(cx)
                {
                    return Poll::Ready(Step::Wrote(wrote));
                }
                Poll::Pending
            })
            .await;
            match step {
                Step::Read(read) => {
                    if read? == 0 {
                        if self.read_buf.is_empty() {
                            return Ok(ReadOrWrote::Read(None));
                        }
                        return Err(ConnectionError::ClosedMidFrame);
                    }
                    self.check_buffered_input()?;
                }
                Step::Wrote(wrote) => return Ok(ReadOrWrote::Wrote(wrote?)),
            }
        }
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// Reads more bytes; `false` on a clean end of stream.
    async fn fill(&mut self) -> Result<bool, ConnectionError> {
        if self.read_more().await? == 0 {
            if self.read_buf.is_empty() {
                return Ok(false);
            }
            return Err(ConnectionError::ClosedMidFrame);
        }
        Ok(true)
    }

    fn check_buffered_input(&self) -> Result<(), ConnectionError> {
        if self.read_buf.len() > self.max_buffered_input {
            return Err(ConnectionError::InputBufferFull(self.max_buffered_input));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_pipeline_is_read_request_by_request_and_answered_in_one_flush() {
        let (client, server) = tokio::io::duplex(64);
        let mut server = Connection::new(server, Limits::default());
        let mut client = Connection::new(client, Limits::default());
        client.write_request(&Request::from_args(["PING"]));
        client.write_request(&Request::from_args(["ECHO", "hi"]));
        client.flush().await.unwrap();

        let first = server.read_request().await.unwrap().unwrap();
        assert_eq!(first.name(), b"PING");
        server.write_frame(&Frame::simple("PONG"));
        let second = server.read_request().await.unwrap().unwrap();
        assert_eq!(second.arg(1), Some(&b"hi"[..]));
        assert!(!server.has_buffered_input());
        server.write_frame(&Frame::bulk("hi"));
        server.flush().await.unwrap();

        assert_eq!(client.read_frame().await.unwrap(), Some(Frame::simple("PONG")));
        assert_eq!(client.read_frame().await.unwrap(), Some(Frame::bulk("hi")));
        drop(server);
        assert_eq!(client.read_frame().await.unwrap(), None);
    }

    #[tokio::test]
    async fn raw_lines_and_bytes_read_as_a_replica_reads_its_master() {
        let (mut master, replica) = tokio::io::duplex(64);
        let mut replica = Connection::new(replica, Limits::default());
        master.write_all(b"\n+FULLRESYNC id 7\r\n$3\r\nabc*1\r\n$4\r\nPING\r\n").await.unwrap();
        assert_eq!(replica.read_line(1024).await.unwrap(), Bytes::new(), "a keep-alive newline");
        assert_eq!(replica.read_line(1024).await.unwrap(), Bytes::from("+FULLRESYNC id 7"));
        assert_eq!(replica.read_line(1024).await.unwrap(), Bytes::from("$3"));
        assert_eq!(replica.read_exact(3).await.unwrap(), Bytes::from("abc"));
        assert_eq!(replica.read_request().await.unwrap().unwrap().name(), b"PING");
        drop(master);
        assert!(replica.read_exact(1).await.is_err());
    }

    #[tokio::test]
    async fn requests_are_read_while_output_waits_for_the_peer() {
        // The peer reads nothing: the output cannot all be written, and the requests it sends
        // meanwhile are read all the same.
        let (client, mut server) = tokio::io::duplex(8);
        let mut client = Connection::new(client, Limits::default());
        client.write_buffer().extend_from_slice(b"0123456789abcdef");
        assert!(matches!(client.read_request_or_write_some().await.unwrap(), ReadOrWrote::Wrote(8)));
        // Inline, so it fits in the pipe's 8 bytes.
        server.write_all(b"PING\r\n").await.unwrap();
        let ReadOrWrote::Read(Some(request)) = client.read_request_or_write_some().await.unwrap() else {
            panic!("the request, though the output waits")
        };
        assert_eq!(request.name(), b"PING");
        assert_eq!(&client.write_buffer()[..], b"89abcdef", "still owed");
        // Once the peer reads, the rest goes out; then its end of the stream is seen.
        let mut read = [0u8; 8];
        server.read_exact(&mut read).await.unwrap();
        assert!(matches!(client.read_request_or_write_some().await.unwrap(), ReadOrWrote::Wrote(8)));
        drop(server);
        assert!(matches!(client.read_request_or_write_some().await.unwrap(), ReadOrWrote::Read(None)));
    }

    #[tokio::test]
    async fn a_close_mid_frame_is_an_error() {
        let (client, mut server) = tokio::io::duplex(64);
        let mut client = Connection::new(client, Limits::default());
        server.write_all(b"$5\r\nab").await.unwrap();
        drop(server);
        assert!(matches!(client.read_frame().await, Err(ConnectionError::ClosedMidFrame)));
    }

    #[tokio::test]
    async fn unprocessed_input_is_bounded() {
        let (mut client, server) = tokio::io::duplex(1 << 16);
        let limits = Limits { max_buffered_input: 1000, ..Limits::default() };
        let mut server = Connection::new(server, limits);
        // One request bigger than the limit, arriving in pieces: refused before it completes.
        client.write_all(b"*2\r\n$3\r\nSET\r\n$5000\r\n").await.unwrap();
        client.write_all(&[b'x'; 2000]).await.unwrap();
        assert!(matches!(server.read_request().await, Err(ConnectionError::InputBufferFull(1000))));
    }
}
