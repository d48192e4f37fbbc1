//! One client connection: read requests, execute them in batches, write replies.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use net::{Env, Stream};
use resp::{Connection, ConnectionError, Request, Version, encode};
use tokio::sync::Notify;
use tracing::debug;

use crate::cmd;
use crate::keyspace::Bulk;
use crate::server::Shared;
use crate::state::{Client, ClientInfo};

/// Removes a client from the registry when its task ends, however it ends.
struct Registration {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.shared.lock().clients.remove(&self.id);
    }
}

/// Serves one connection until the peer leaves, a protocol error, `QUIT`, `CLIENT KILL`, or the
/// idle timeout.
pub(crate) async fn serve<E: Env>(shared: Arc<Shared>, env: E, stream: E::Stream, peer: SocketAddr) {
    let laddr = stream.local_addr().map(|addr| addr.to_string()).unwrap_or_default();
    let kill = Arc::new(Notify::new());
    let now = env.unix_millis();
    let registered = {
        let mut state = shared.lock();
        if state.clients.len() >= state.config.maxclients {
            state.stats.rejected_connections += 1;
            None
        } else {
            state.stats.connections_received += 1;
            let info = ClientInfo {
                addr: peer.to_string(),
                laddr,
                name: Bulk::new(),
                db: 0,
                version: Version::Resp2,
                created_ms: now,
                last_interaction_ms: now,
                last_command: "NULL",
                kill: kill.clone(),
            };
            let id = state.register_client(info);
            Some((id, state.config.requirepass.is_empty(), state.config.limits(), state.config.timeout))
        }
    };
    let mut connection = Connection::new(stream, resp::Limits::default());
    let Some((id, authenticated, limits, idle_timeout)) = registered else {
        // As Redis: say why, then close.
        encode::write_error(connection.write_buffer(), b"ERR max number of clients reached");
        let _ = connection.flush().await;
        return;
    };
    let _registration = Registration { shared: shared.clone(), id };
    connection.set_limits(limits);
    let mut client = Client { id, db: 0, version: Version::Resp2, authenticated, close_after_reply: false };
    debug!(client = id, %peer, "connected");

    loop {
        let request = tokio::select! {
            biased;
            () = kill.notified() => {
                debug!(client = id, "killed");
                return;
            }
            read = read_with_timeout(&mut connection, idle_timeout) => match read {
                Some(Ok(Some(request))) => request,
                Some(Ok(None)) => {
                    debug!(client = id, "closed by peer");
                    return;
                }
                Some(Err(ConnectionError::Protocol(error))) => {
                    debug!(client = id, %error, "protocol error");
                    encode::write_error(connection.write_buffer(), format!("ERR {error}").as_bytes());
                    let _ = connection.flush().await;
                    return;
                }
                Some(Err(error)) => {
                    debug!(client = id, %error, "connection failed");
                    return;
                }
                None => {
                    debug!(client = id, "idle timeout");
                    return;
                }
            },
        };
        execute_batch(&shared, &env, &mut client, &mut connection, request);
        if connection.flush().await.is_err() || client.close_after_reply {
            return;
        }
    }
}

/// Reads a request, giving up after `idle_seconds` of silence (0: wait forever). `None` means the
/// client was idle too long.
async fn read_with_timeout<S: Stream>(
    connection: &mut Connection<S>,
    idle_seconds: u64,
) -> Option<Result<Option<Request>, ConnectionError>> {
    if idle_seconds == 0 {
        return Some(connection.read_request().await);
    }
    tokio::time::timeout(Duration::from_secs(idle_seconds), connection.read_request()).await.ok()
}

/// Executes `first` and every further request already buffered, under one acquisition of the
/// lock, so a pipeline costs one lock and one write.
fn execute_batch<E: Env, S: Stream>(
    shared: &Shared,
    env: &E,
    client: &mut Client,
    connection: &mut Connection<S>,
    first: Request,
) {
    let mut state = shared.lock();
    cmd::execute(&mut state, client, connection.write_buffer(), &first, env.unix_millis());
    while !client.close_after_reply {
        match connection.try_read_request() {
            Ok(Some(request)) => {
                cmd::execute(&mut state, client, connection.write_buffer(), &request, env.unix_millis())
            }
            Ok(None) => break,
            Err(error) => {
                encode::write_error(connection.write_buffer(), format!("ERR {error}").as_bytes());
                client.close_after_reply = true;
            }
        }
    }
}
