//! A tiny RESP echo node: `PING [message]` and `ECHO message`, pipelined, one task per connection.
//!
//! It is the subject of the `ping` scenario, which exists to exercise the simulator itself (hosts,
//! faults, restarts, the trace) before the real components arrive. Written once against
//! `net::Env`, it runs unchanged under the simulator and on real sockets (see
//! `tests/echo_on_tokio.rs`), which is the one-code-path rule in miniature.

use std::io;

use net::{Env, Listener, Stream};
use resp::{Connection, ConnectionError, Frame, Limits, Request};
use tracing::{debug, info};

/// Serves the echo protocol on `addr` until the listener fails.
pub async fn serve<E: Env>(env: E, addr: &str) -> io::Result<()> {
    let listener = env.bind(addr).await?;
    info!(addr, "listening");
    let mut sessions = 0u64;
    loop {
        let (stream, peer) = listener.accept().await?;
        sessions += 1;
        let session = sessions;
        debug!(session, %peer, "accepted");
        env.spawn(async move {
            match serve_session(stream).await {
                Ok(()) => debug!(session, "closed by peer"),
                Err(error) => debug!(session, %error, "ended"),
            }
        });
    }
}

/// Answers one connection's requests, flushing once per batch of pipelined requests.
async fn serve_session<S: Stream>(stream: S) -> Result<(), ConnectionError> {
    let mut connection = Connection::new(stream, Limits::default());
    loop {
        let request = match connection.read_request().await {
            Ok(Some(request)) => request,
            Ok(None) => return Ok(()),
            Err(ConnectionError::Protocol(error)) => {
                // As Redis does: say what was wrong, then close, since the stream cannot be
                // framed any more.
                connection.write_frame(&error.to_reply());
                connection.flush().await?;
                return Err(error.into());
            }
            Err(error) => return Err(error),
        };
        connection.write_frame(&respond(&request));
        if !connection.has_buffered_input() {
            connection.flush().await?;
        }
    }
}

/// The reply to one request, worded as Redis words it.
pub fn respond(request: &Request) -> Frame {
    let name = request.name().to_ascii_lowercase();
    match (name.as_slice(), request.arg_bytes(1), request.len()) {
        (b"ping", None, _) => Frame::simple("PONG"),
        (b"ping", Some(message), 2) | (b"echo", Some(message), 2) => Frame::Bulk(message),
        (b"ping" | b"echo", _, _) => {
            Frame::error(format!("ERR wrong number of arguments for '{}' command", String::from_utf8_lossy(&name)))
        }
        _ => {
            let args: String =
                request.args().skip(1).map(|arg| format!("'{}' ", String::from_utf8_lossy(arg))).collect();
            Frame::error(format!(
                "ERR unknown command '{}', with args beginning with: {args}",
                String::from_utf8_lossy(request.name())
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_match_redis() {
        let reply = |args: &[&str]| respond(&Request::from_args(args));
        assert_eq!(reply(&["PING"]), Frame::simple("PONG"));
        assert_eq!(reply(&["ping", "hi"]), Frame::bulk("hi"));
        assert_eq!(reply(&["ECHO", "x y"]), Frame::bulk("x y"));
        assert_eq!(reply(&["echo"]), Frame::error("ERR wrong number of arguments for 'echo' command"));
        assert_eq!(reply(&["PING", "a", "b"]), Frame::error("ERR wrong number of arguments for 'ping' command"));
        assert_eq!(
            reply(&["FOO", "a", "b"]),
            Frame::error("ERR unknown command 'FOO', with args beginning with: 'a' 'b' ")
        );
    }
}
