//! Replies the proxy writes itself.

use bytes::{Bytes, BytesMut};
use resp::encode;

pub(crate) fn error(text: &str) -> Bytes {
    let mut out = BytesMut::new();
    encode::write_error(&mut out, text.as_bytes());
    out.freeze()
}

pub(crate) fn simple(text: &str) -> Bytes {
    let mut out = BytesMut::new();
    encode::write_line(&mut out, b'+', text.as_bytes());
    out.freeze()
}

pub(crate) fn bulk(bytes: &[u8]) -> Bytes {
    let mut out = BytesMut::new();
    encode::write_bulk(&mut out, bytes);
    out.freeze()
}

/// The reply a backend error becomes.
pub(crate) fn backend_error(failure: &impl std::fmt::Display) -> Bytes {
    error(&format!("ERR handle response, {failure}"))
}
