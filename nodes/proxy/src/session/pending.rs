//! Replies on their way: one backend's, a split command's parts joined, or a request held
//! until its slot is served in line; and the parsing of backend replies the joins need.

use std::future::Future;
use std::pin::Pin;

use bytes::{Bytes, BytesMut};
use resp::{Decoder, Limits, encode};
use tokio::sync::oneshot;

use super::reply::{backend_error, simple};
use crate::backend::Reply;
use crate::router::InFlight;

/// A backend reply on its way, counting its slots' requests in flight until it arrives (a
/// slot table change waits for them: see [`crate::router::Router::fill`]).
pub(crate) struct Tracked {
    pub(crate) receiver: oneshot::Receiver<Reply>,
    pub(crate) _in_flight: Vec<InFlight>,
}

/// A reply on its way.
pub(crate) enum Pending {
    /// Already known.
    Ready(Bytes),
    /// One backend reply, forwarded as it is.
    One(Tracked),
    /// `MGET` split across connections: each part's reply array holds the values of the listed
    /// positions.
    Mget { total: usize, parts: Vec<(Vec<usize>, Tracked)> },
    /// `DEL`/`UNLINK`/`EXISTS`/`TOUCH` split: the sum of the parts' integers.
    Sum(Vec<Tracked>),
    /// `MSET` split: `+OK` once every part said it.
    AllOk(Vec<Tracked>),
    /// A request for a locked or migrating slot: served when its turn comes in the replies
    /// (so after every earlier request), once the slot is not locked.
    Held(Pin<Box<dyn Future<Output = Bytes> + Send>>),
}

/// What to do with one request.
pub(crate) enum Dispatch {
    /// Sent (or answered): its reply is on its way.
    Now(Pending),
    /// Its slot migrates or is locked: serve it after everything before it.
    InLine,
}

pub(crate) fn ready(reply: Bytes) -> Dispatch {
    Dispatch::Now(Pending::Ready(reply))
}

pub(crate) async fn receive(tracked: Tracked) -> Result<Bytes, Bytes> {
    receive_raw(tracked.receiver).await
}

/// A reply whose slot the caller keeps counted in flight itself.
pub(crate) async fn receive_raw(receiver: oneshot::Receiver<Reply>) -> Result<Bytes, Bytes> {
    match receiver.await {
        Ok(Ok(reply)) => Ok(reply),
        Ok(Err(error)) => Err(backend_error(&error)),
        Err(_) => Err(backend_error(&"backend conn closed")),
    }
}

/// The elements of an array reply, as raw frames.
pub(crate) fn elements(reply: &Bytes) -> Option<Vec<Bytes>> {
    if reply.first() != Some(&b'*') {
        return None;
    }
    let end = line_end(reply, 0)?;
    let count = usize::try_from(resp::parse_i64(&reply[1..end - 1])?).unwrap_or(0);
    let mut out = Vec::with_capacity(count.min(1024));
    // Bulk strings and nulls (all an MGET returns) are sliced out of the reply, not copied.
    let mut at = end + 1;
    while out.len() < count {
        let end = line_end(reply, at)?;
        let stop = match reply.get(at) {
            Some(b'$') => match usize::try_from(resp::parse_i64(&reply[at + 1..end - 1])?) {
                Ok(len) => end + 1 + len + 2,
                Err(_) => end + 1,
            },
            Some(b'_') => end + 1,
            _ => return elements_decoded(reply),
        };
        if stop > reply.len() {
            return None;
        }
        out.push(reply.slice(at..stop));
        at = stop;
    }
    Some(out)
}

/// The index of the `\n` ending the line that starts at `from`.
pub(crate) fn line_end(reply: &[u8], from: usize) -> Option<usize> {
    Some(from + reply.get(from..)?.iter().position(|byte| *byte == b'\n')?).filter(|end| *end > from)
}

/// [`elements`] for any element type, through the decoder.
pub(crate) fn elements_decoded(reply: &Bytes) -> Option<Vec<Bytes>> {
    let end = line_end(reply, 0)?;
    let mut rest = BytesMut::from(&reply[end + 1..]);
    let mut decoder =
        Decoder::new(Limits { max_bulk_len: usize::MAX / 2, max_array_len: usize::MAX / 2, ..Limits::default() });
    let mut out = Vec::new();
    while let Ok(Some(element)) = decoder.decode_raw(&mut rest) {
        out.push(element);
    }
    Some(out)
}

pub(crate) async fn resolve(pending: Pending) -> Bytes {
    match pending {
        Pending::Ready(reply) => reply,
        Pending::Held(serve) => serve.await,
        Pending::One(receiver) => receive(receiver).await.unwrap_or_else(|error| error),
        Pending::Mget { total, parts } => {
            let mut values: Vec<Bytes> = vec![Bytes::new(); total];
            let mut failure = None;
            for (positions, receiver) in parts {
                match receive(receiver).await {
                    Ok(reply) => match elements(&reply) {
                        Some(found) if found.len() == positions.len() => {
                            for (position, value) in positions.into_iter().zip(found) {
                                values[position] = value;
                            }
                        }
                        _ => failure = failure.or(Some(reply)),
                    },
                    Err(error) => failure = failure.or(Some(error)),
                }
            }
            if let Some(failure) = failure {
                return failure;
            }
            let mut out = BytesMut::new();
            encode::write_array_header(&mut out, total);
            for value in values {
                out.extend_from_slice(&value);
            }
            out.freeze()
        }
        Pending::Sum(parts) => {
            let mut sum = 0i64;
            let mut failure = None;
            for receiver in parts {
                match receive(receiver).await {
                    Ok(reply) => match integer(&reply) {
                        Some(count) => sum += count,
                        None => failure = failure.or(Some(reply)),
                    },
                    Err(error) => failure = failure.or(Some(error)),
                }
            }
            failure.unwrap_or_else(|| {
                let mut out = BytesMut::new();
                encode::write_integer(&mut out, sum);
                out.freeze()
            })
        }
        Pending::AllOk(parts) => {
            let mut failure = None;
            for receiver in parts {
                match receive(receiver).await {
                    Ok(reply) if reply.starts_with(b"+OK") => {}
                    Ok(reply) | Err(reply) => failure = failure.or(Some(reply)),
                }
            }
            failure.unwrap_or_else(|| simple("OK"))
        }
    }
}

/// The value of an integer reply.
pub(crate) fn integer(reply: &[u8]) -> Option<i64> {
    let body = reply.strip_prefix(b":")?.strip_suffix(b"\r\n")?;
    resp::parse_i64(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(reply: &'static [u8]) -> Option<Vec<Bytes>> {
        elements(&Bytes::from_static(reply))
    }

    fn expected(parts: &[&'static str]) -> Option<Vec<Bytes>> {
        Some(parts.iter().map(|part| Bytes::from_static(part.as_bytes())).collect())
    }

    #[test]
    fn array_elements_are_sliced_whole() {
        assert_eq!(parts(b"*3\r\n$1\r\na\r\n$-1\r\n$0\r\n\r\n"), expected(&["$1\r\na\r\n", "$-1\r\n", "$0\r\n\r\n"]));
        assert_eq!(parts(b"*2\r\n_\r\n$2\r\nbc\r\n"), expected(&["_\r\n", "$2\r\nbc\r\n"]));
        // Other element types go through the decoder.
        assert_eq!(parts(b"*2\r\n:1\r\n*1\r\n+x\r\n"), expected(&[":1\r\n", "*1\r\n+x\r\n"]));
        assert_eq!(parts(b"*-1\r\n"), expected(&[]));
        assert_eq!(parts(b"*2\r\n$5\r\nab\r\n"), None, "a bulk string longer than the reply");
        assert_eq!(parts(b"+OK\r\n"), None);
    }
}
