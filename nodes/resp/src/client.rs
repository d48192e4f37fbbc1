//! A reconnecting client with deadlines, over any [`net::Env`]: the dashboard's calls to its
//! servers (`SLOTSMGRT…`, `INFO`, `SLOTSINFO`) and the simulator's workloads.

use std::time::Duration;

use net::Env;
use tokio::time::timeout;

use crate::{Connection, Frame, Limits, Request};

/// A command got no answer: the connection could not be made, broke, or the reply did not come in
/// time. Whether the command ran is unknown (Jepsen's `info`); the connection is dropped, and the
/// next call connects afresh.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unavailable(pub String);

/// A client that (re)connects on demand and gives every call a deadline, as a careful production
/// client does: over a lossy network a stream can stay wedged forever.
pub struct Client<E: Env> {
    env: E,
    addr: String,
    connection: Option<Connection<E::Stream>>,
    password: Option<String>,
    connections: u64,
    connect_timeout: Duration,
    reply_timeout: Duration,
}

impl<E: Env> Client<E> {
    /// A client of `addr` (`"host:port"`).
    pub fn new(env: E, addr: &str) -> Client<E> {
        Client {
            env,
            addr: addr.to_string(),
            connection: None,
            password: None,
            connections: 0,
            connect_timeout: Duration::from_millis(500),
            reply_timeout: Duration::from_millis(300),
        }
    }

    /// Sends `AUTH password` on every new connection (the product's password, for servers).
    pub fn with_password(mut self, password: &str) -> Client<E> {
        self.password = (!password.is_empty()).then(|| password.to_string());
        self
    }

    /// Gives connects `connect` and replies `reply` to arrive.
    pub fn with_timeouts(mut self, connect: Duration, reply: Duration) -> Client<E> {
        self.connect_timeout = connect;
        self.reply_timeout = reply;
        self
    }

    /// The address it calls.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// How many connections have been opened so far: a change means a call may now reach a
    /// different incarnation of the server.
    pub fn connections(&self) -> u64 {
        self.connections
    }

    /// Whether a connection is open (the next call will not connect first).
    pub fn is_connected(&self) -> bool {
        self.connection.is_some()
    }

    /// Sends one command and waits for its reply.
    pub async fn call<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<Frame, Unavailable> {
        self.call_with_timeout(args, self.reply_timeout).await
    }

    /// Sends one command and waits up to `reply_timeout` for its reply (a blocking command
    /// waits longer than the usual deadline).
    pub async fn call_with_timeout<A: AsRef<[u8]>>(
        &mut self,
        args: &[A],
        reply_timeout: Duration,
    ) -> Result<Frame, Unavailable> {
        let result = self.try_call(args, reply_timeout).await;
        if result.is_err() {
            self.connection = None;
        }
        result
    }

    /// Sends `commands` back to back and reads their replies, in order: one deadline for all. An
    /// error leaves the outcome of every command unknown (the connection is dropped).
    pub async fn pipeline(&mut self, commands: &[Vec<String>]) -> Result<Vec<Frame>, Unavailable> {
        let result = self.try_pipeline(commands).await;
        if result.is_err() {
            self.connection = None;
        }
        result
    }

    /// The open connection, connecting first if there is none.
    async fn connected(&mut self) -> Result<&mut Connection<E::Stream>, Unavailable> {
        if self.connection.is_none() {
            let stream = self
                .env
                .connect(&self.addr, self.connect_timeout)
                .await
                .map_err(|error| Unavailable(format!("connect: {:?} ({error})", error.kind())))?;
            let mut connection = Connection::new(stream, Limits::default());
            if let Some(password) = &self.password {
                connection.write_request(&Request::from_args([b"AUTH".as_slice(), password.as_bytes()]));
                connection.flush().await.map_err(|error| Unavailable(format!("write: {error}")))?;
                match timeout(self.reply_timeout, connection.read_frame()).await {
                    Ok(Ok(Some(reply))) if !reply.is_error() => {}
                    Ok(Ok(Some(reply))) => return Err(Unavailable(format!("AUTH refused: {reply:?}"))),
                    _ => return Err(Unavailable("no reply to AUTH".into())),
                }
            }
            self.connection = Some(connection);
            self.connections += 1;
        }
        self.connection.as_mut().ok_or_else(|| Unavailable("no connection".into()))
    }

    async fn try_pipeline(&mut self, commands: &[Vec<String>]) -> Result<Vec<Frame>, Unavailable> {
        let reply_timeout = self.reply_timeout;
        let connection = self.connected().await?;
        for command in commands {
            connection.write_request(&Request::from_args(command));
        }
        connection.flush().await.map_err(|error| Unavailable(format!("write: {error}")))?;
        let mut replies = Vec::with_capacity(commands.len());
        let deadline = tokio::time::Instant::now() + reply_timeout;
        for _ in commands {
            match tokio::time::timeout_at(deadline, connection.read_frame()).await {
                Err(_) => return Err(Unavailable("reply timed out".into())),
                Ok(Err(error)) => return Err(Unavailable(format!("read: {error}"))),
                Ok(Ok(None)) => return Err(Unavailable("connection closed".into())),
                Ok(Ok(Some(frame))) => replies.push(frame),
            }
        }
        Ok(replies)
    }

    async fn try_call<A: AsRef<[u8]>>(&mut self, args: &[A], reply_timeout: Duration) -> Result<Frame, Unavailable> {
        let connection = self.connected().await?;
        connection.write_request(&Request::from_args(args));
        connection.flush().await.map_err(|error| Unavailable(format!("write: {error}")))?;
        match timeout(reply_timeout, connection.read_frame()).await {
            Err(_) => Err(Unavailable("reply timed out".into())),
            Ok(Err(error)) => Err(Unavailable(format!("read: {error}"))),
            Ok(Ok(None)) => Err(Unavailable("connection closed".into())),
            Ok(Ok(Some(frame))) => Ok(frame),
        }
    }
}
