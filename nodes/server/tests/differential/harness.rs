//! A real `redis-server` 7.0 and our server side by side, fed the same commands.

use std::time::Duration;

use net::{Env, TokioEnv};
use resp::{Connection, Frame, Limits, Request};
use server::ServerConfig;
use tokio::sync::oneshot;

type Stream = <TokioEnv as Env>::Stream;

/// How replies are compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compare {
    /// Exactly equal.
    Exact,
    /// Equal once the top-level array is sorted (replies Redis leaves unordered: `KEYS`).
    Unordered,
    /// Equal once the key/value pairs of a flat array or map are sorted (`CONFIG GET`,
    /// `HGETALL`).
    Pairs,
    /// Integers within this distance (`PTTL`, which moves with the clock).
    Near(i64),
    /// Same shape (both errors, both integers, both bulks, …) but not the same value.
    Kind,
}

/// The two servers and a client connection to each.
pub struct Pair {
    _redis: test_support::Process,
    stop: Option<oneshot::Sender<()>>,
    env: TokioEnv,
    theirs_addr: String,
    ours_addr: String,
    main: Duo,
}

impl Pair {
    /// Starts both servers with default settings.
    pub async fn start() -> Pair {
        Pair::start_with(&[], ServerConfig::default()).await
    }

    /// Starts both servers; `redis_args` are extra `redis-server` options, `config` ours.
    pub async fn start_with(redis_args: &[&str], mut config: ServerConfig) -> Pair {
        let env = TokioEnv::with_seed(1);
        let args: Vec<&str> = ["--appendonly", "no", "--enable-debug-command", "yes"]
            .into_iter()
            .chain(redis_args.iter().copied())
            .collect();
        let redis = test_support::redis_server(&args);

        config.bind = "127.0.0.1".into();
        config.port = 0;
        config.enable_debug_command = server::config::DebugCommand::Yes;
        let (bound, address) = oneshot::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(server::bind_and_run(
            env.clone(),
            config,
            bound,
            futures_util::stream::once(async {
                let _ = stopped.await;
            }),
        ));
        let ours_addr = address.await.expect("our server binds").to_string();
        let theirs_addr = format!("127.0.0.1:{}", redis.port);
        let main = Duo::connect(&env, &theirs_addr, &ours_addr).await;
        Pair { _redis: redis, stop: Some(stop), env, theirs_addr, ours_addr, main }
    }

    /// Each server's address: `redis-server`'s, then ours.
    pub fn addrs(&self) -> (&str, &str) {
        (&self.theirs_addr, &self.ours_addr)
    }

    /// Another client of each server.
    pub async fn connect(&self) -> Duo {
        Duo::connect(&self.env, &self.theirs_addr, &self.ours_addr).await
    }

    /// Sends `line` (split like an inline command) to both and returns both replies.
    pub async fn both(&mut self, line: &str) -> (Frame, Frame) {
        self.main.both(line).await
    }

    /// Sends already split (binary) arguments to both and returns both replies.
    pub async fn both_args(&mut self, args: &[Vec<u8>], label: &str) -> (Frame, Frame) {
        self.main.both_args(args, label).await
    }

    /// Sends `line` to both without waiting for the replies.
    pub async fn send(&mut self, line: &str) {
        self.main.send(line).await
    }

    /// Whether each server closed the main connection.
    pub async fn closed(&mut self) -> (bool, bool) {
        self.main.closed().await
    }

    /// Sends different commands to each server (ids differ between them).
    pub async fn both_lines(&mut self, theirs: &str, ours: &str) -> (Frame, Frame) {
        self.main.both_lines(theirs, ours).await
    }

    /// Sends `line` to both and requires the same reply.
    pub async fn check(&mut self, line: &str) -> Frame {
        self.main.check(line).await
    }

    /// Sends `line` to both and compares the replies as `compare` says.
    pub async fn check_with(&mut self, line: &str, compare: Compare) -> Frame {
        self.main.check_with(line, compare).await
    }

    /// Runs every line with [`Pair::check`].
    pub async fn check_all(&mut self, lines: &[&str]) {
        self.main.check_all(lines).await
    }

    /// Fails with both replies and the history when they differ.
    pub fn assert_same(&self, label: &str, theirs: &Frame, ours: &Frame, compare: Compare) {
        self.main.assert_same(label, theirs, ours, compare)
    }

    /// Switches both connections to RESP3 (`HELLO 3`).
    pub async fn resp3(&mut self) {
        self.main.resp3().await
    }

    /// Waits until both servers report `blocked` blocked clients (`INFO clients`), so a test can
    /// act on a client it knows is waiting.
    pub async fn wait_blocked(&mut self, blocked: usize) {
        let wanted = format!("blocked_clients:{blocked}\r\n");
        for _ in 0..500 {
            let (theirs, ours) = self.main.both("INFO clients").await;
            if text(&theirs).contains(&wanted) && text(&ours).contains(&wanted) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("servers never reported {blocked} blocked clients");
    }
}

/// The text of a bulk or verbatim reply.
pub fn text(frame: &Frame) -> String {
    match frame {
        Frame::Bulk(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        Frame::Verbatim { text, .. } => String::from_utf8_lossy(text).into_owned(),
        other => format!("{other:?}"),
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// One client connection to each server, used in lockstep.
pub struct Duo {
    theirs: Connection<Stream>,
    ours: Connection<Stream>,
    /// The commands sent so far, for failure reports.
    history: Vec<String>,
}

impl Duo {
    async fn connect(env: &TokioEnv, theirs: &str, ours: &str) -> Duo {
        Duo { theirs: connect(env, theirs).await, ours: connect(env, ours).await, history: Vec::new() }
    }

    /// Sends `line` (split like an inline command) to both and returns both replies.
    pub async fn both(&mut self, line: &str) -> (Frame, Frame) {
        let args = resp::split_inline(line.as_bytes()).expect("test command splits");
        self.both_args(&args, line).await
    }

    /// Sends already split arguments to both.
    pub async fn both_args(&mut self, args: &[Vec<u8>], label: &str) -> (Frame, Frame) {
        self.send_args(args, label).await;
        self.receive().await
    }

    /// Sends `line` to both without waiting for replies (a blocking command, a pipeline).
    pub async fn send(&mut self, line: &str) {
        let args = resp::split_inline(line.as_bytes()).expect("test command splits");
        self.send_args(&args, line).await;
    }

    /// Sends different commands to each (`CLIENT UNBLOCK` needs each server's client id), and
    /// returns both replies.
    pub async fn both_lines(&mut self, theirs: &str, ours: &str) -> (Frame, Frame) {
        self.history.push(format!("{theirs} / {ours}"));
        let split = |line: &str| Request::from_args(resp::split_inline(line.as_bytes()).expect("test command splits"));
        self.theirs.write_request(&split(theirs));
        self.ours.write_request(&split(ours));
        self.theirs.flush().await.expect("send");
        self.ours.flush().await.expect("send");
        self.receive().await
    }

    async fn send_args(&mut self, args: &[Vec<u8>], label: &str) {
        self.history.push(label.to_string());
        let request = Request::from_args(args);
        self.theirs.write_request(&request);
        self.ours.write_request(&request);
        self.theirs.flush().await.expect("send");
        self.ours.flush().await.expect("send");
    }

    /// The next reply (or message) from each.
    pub async fn receive(&mut self) -> (Frame, Frame) {
        (receive(&mut self.theirs).await, receive(&mut self.ours).await)
    }

    /// Receives the next reply from each and compares them.
    pub async fn check_reply(&mut self, label: &str, compare: Compare) -> Frame {
        let (theirs, ours) = self.receive().await;
        self.assert_same(label, &theirs, &ours, compare);
        theirs
    }

    /// Whether either connection has a reply within `millis` (a blocked client must not).
    pub async fn has_reply_within(&mut self, millis: u64) -> bool {
        let wait = Duration::from_millis(millis);
        let theirs = tokio::time::timeout(wait, self.theirs.read_frame()).await.is_ok();
        let ours = tokio::time::timeout(wait, self.ours.read_frame()).await.is_ok();
        theirs || ours
    }

    /// Whether each server closed this connection (reading hits the end of the stream).
    pub async fn closed(&mut self) -> (bool, bool) {
        async fn closed(connection: &mut Connection<Stream>) -> bool {
            loop {
                match tokio::time::timeout(Duration::from_secs(10), connection.read_frame()).await {
                    Ok(Ok(Some(_))) => continue,
                    Ok(Ok(None) | Err(_)) => return true,
                    Err(_) => return false,
                }
            }
        }
        (closed(&mut self.theirs).await, closed(&mut self.ours).await)
    }

    /// Sends `line` to both and requires the same reply.
    pub async fn check(&mut self, line: &str) -> Frame {
        self.check_with(line, Compare::Exact).await
    }

    /// Sends `line` to both and compares the replies as `compare` says.
    pub async fn check_with(&mut self, line: &str, compare: Compare) -> Frame {
        let (theirs, ours) = self.both(line).await;
        self.assert_same(line, &theirs, &ours, compare);
        theirs
    }

    /// Runs every line with [`Duo::check`].
    pub async fn check_all(&mut self, lines: &[&str]) {
        for line in lines {
            self.check(line).await;
        }
    }

    /// Fails with both replies and the history when they differ.
    pub fn assert_same(&self, label: &str, theirs: &Frame, ours: &Frame, compare: Compare) {
        if !agree(theirs, ours, compare) {
            let recent: Vec<&String> = self.history.iter().rev().take(12).rev().collect();
            panic!(
                "replies differ for `{label}`\n  redis-server: {}\n  codis-server: {}\n  recent commands: {recent:#?}",
                show(theirs),
                show(ours)
            );
        }
    }

    /// Switches both connections to RESP3 (`HELLO 3`), checking the handshake replies agree on
    /// everything but the client id and version string.
    pub async fn resp3(&mut self) {
        let (theirs, ours) = self.both("HELLO 3").await;
        assert!(matches!((&theirs, &ours), (Frame::Map(_), Frame::Map(_))), "{theirs:?} / {ours:?}");
    }
}

async fn connect(env: &TokioEnv, addr: &str) -> Connection<Stream> {
    for _ in 0..200 {
        if let Ok(stream) = env.connect(addr, Duration::from_secs(1)).await {
            return Connection::new(stream, Limits { max_array_len: usize::MAX, ..Limits::default() });
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("could not connect to {addr}");
}

async fn receive(connection: &mut Connection<Stream>) -> Frame {
    match tokio::time::timeout(Duration::from_secs(10), connection.read_frame()).await {
        Ok(Ok(Some(frame))) => frame,
        other => panic!("no reply: {other:?}"),
    }
}

/// Whether two replies agree as `compare` says.
pub fn agree(theirs: &Frame, ours: &Frame, compare: Compare) -> bool {
    match compare {
        Compare::Exact => theirs == ours,
        Compare::Unordered => sorted(theirs) == sorted(ours),
        Compare::Pairs => sorted_pairs(theirs) == sorted_pairs(ours),
        Compare::Near(distance) => match (theirs, ours) {
            (Frame::Integer(a), Frame::Integer(b)) => (a - b).abs() <= distance,
            _ => theirs == ours,
        },
        Compare::Kind => std::mem::discriminant(theirs) == std::mem::discriminant(ours),
    }
}

fn sorted(frame: &Frame) -> Frame {
    match frame {
        Frame::Array(items) | Frame::Set(items) => {
            let mut items = items.clone();
            items.sort_by_key(show);
            Frame::Array(items)
        }
        other => other.clone(),
    }
}

fn sorted_pairs(frame: &Frame) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = match frame {
        Frame::Array(items) => {
            items.chunks(2).map(|pair| (show(&pair[0]), pair.get(1).map(show).unwrap_or_default())).collect()
        }
        Frame::Map(pairs) => pairs.iter().map(|(key, value)| (show(key), show(value))).collect(),
        other => vec![(show(other), String::new())],
    };
    pairs.sort();
    pairs
}

/// A frame in a short, readable form for failure messages.
pub fn show(frame: &Frame) -> String {
    match frame {
        Frame::Simple(text) => format!("+{}", String::from_utf8_lossy(text)),
        Frame::Error(text) => format!("-{}", String::from_utf8_lossy(text)),
        Frame::Bulk(bytes) => format!("{:?}", String::from_utf8_lossy(bytes)),
        Frame::Array(items) => format!("[{}]", items.iter().map(show).collect::<Vec<_>>().join(", ")),
        other => format!("{other:?}"),
    }
}
