//! What the tests that start real processes share: a port nobody else is handed, and proof that
//! a test talks to its own child.
//!
//! Tests run side by side, and many start `redis-server`s and other processes on ports probed
//! free beforehand. Between the probe and the child's bind another test may be handed the same
//! port: one child then fails to bind (and exits), and a test that did not look would talk to the
//! other test's server. So every start here waits until the process answering on the port is
//! provably the child it spawned (for Redis servers, by the process id `INFO server` reports),
//! and starts again on a fresh port when the child found its port taken.
//!
//! A dev-dependency only; nothing that ships links it.

use std::process::{Child, Command, ExitStatus};
use std::time::Duration;

/// Attempts before giving up on starting a process.
const ATTEMPTS: usize = 8;
/// How long one attempt waits for its child to answer.
const PATIENCE: Duration = Duration::from_secs(30);
/// How often an attempt looks.
const POLL: Duration = Duration::from_millis(20);

/// A process started on a port of its own, killed (and reaped) on drop.
#[derive(Debug)]
pub struct Process {
    /// The child.
    pub child: Child,
    /// Its port.
    pub port: u16,
}

impl Process {
    /// The child's process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port free now (the kernel's pick). Another process may take it before the caller binds it:
/// [`start`] copes with that.
pub fn free_port() -> u16 {
    free_ports(1)[0]
}

/// `count` distinct ports free now, probed together so they differ.
pub fn free_ports(count: usize) -> Vec<u16> {
    // A test's probe of the kernel's port allocator: the socket is closed at once.
    #[allow(clippy::disallowed_types)]
    let probes: Vec<std::net::TcpListener> =
        (0..count).map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("probe a free port")).collect();
    probes.iter().map(|probe| probe.local_addr().expect("a probed address").port()).collect()
}

/// What a look at the port found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Nothing answers yet.
    Nothing,
    /// The child answers.
    Ours,
    /// Another process answers: the port was taken between the probe and the child's bind.
    Someone,
}

/// Starts `command(port)` on a free port and waits until `look(port, pid)` says the child
/// answers there; starts again on another port when the child exits first (its port was taken)
/// or someone else answers. `what` names the process in failures.
pub fn start(what: &str, mut command: impl FnMut(u16) -> Command, mut look: impl FnMut(u16, u32) -> Answer) -> Process {
    let mut tried = Vec::new();
    for _ in 0..ATTEMPTS {
        let port = free_port();
        let child = command(port).spawn().unwrap_or_else(|error| panic!("cannot start {what}: {error}"));
        let mut process = Process { child, port };
        match wait_for(&mut process, &mut look) {
            Ok(()) => return process,
            Err(why) => tried.push(format!("port {port}: {why}")),
        }
    }
    panic!("{what} did not start: {}", tried.join("; "))
}

/// Waits until `process` answers on its port as itself.
// A test waiting for a real process, on the real clock.
#[allow(clippy::disallowed_methods, clippy::disallowed_types)]
fn wait_for(process: &mut Process, look: &mut impl FnMut(u16, u32) -> Answer) -> Result<(), String> {
    let deadline = std::time::Instant::now() + PATIENCE;
    while std::time::Instant::now() < deadline {
        if let Some(status) = exited(&mut process.child) {
            return Err(format!("it exited ({status}), most likely because the port was taken"));
        }
        match look(process.port, process.child.id()) {
            Answer::Ours => return Ok(()),
            Answer::Someone => return Err("another process answers there".into()),
            Answer::Nothing => std::thread::sleep(POLL),
        }
    }
    Err(format!("nothing answered within {PATIENCE:?}"))
}

fn exited(child: &mut Child) -> Option<ExitStatus> {
    child.try_wait().ok().flatten()
}

/// The process id the Redis-compatible server on `port` reports (`INFO server`), if one answers.
pub fn redis_process_id(port: u16) -> Option<u32> {
    redis_process_id_with(port, "")
}

/// [`redis_process_id`] for a server that wants `password` (empty: none).
pub fn redis_process_id_with(port: u16, password: &str) -> Option<u32> {
    let mut command = Command::new("redis-cli");
    command.args(["-p", &port.to_string()]);
    if !password.is_empty() {
        command.args(["--no-auth-warning", "-a", password]);
    }
    let output = command
        .args(["INFO", "server"])
        .output()
        .expect("redis-cli must be installed (`just test` installs redis-tools)");
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines().find_map(|line| line.strip_prefix("process_id:")).and_then(|pid| pid.trim().parse().ok())
}

/// Whether the Redis-compatible server on `port` is process `pid` (or a child of it, as the
/// servers `codis demo` starts are).
pub fn redis_answer(port: u16, pid: u32) -> Answer {
    redis_answer_with(port, pid, "")
}

/// [`redis_answer`] for a server that wants `password` (empty: none).
pub fn redis_answer_with(port: u16, pid: u32, password: &str) -> Answer {
    match redis_process_id_with(port, password) {
        None => Answer::Nothing,
        Some(found) if found == pid || parent_of(found) == Some(pid) => Answer::Ours,
        Some(_) => Answer::Someone,
    }
}

/// The parent of process `pid`, from `/proc`.
pub fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid …`: the command may hold spaces and parentheses, so read after
    // the last ')'.
    stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()
}

/// A `redis-server` on a port of its own with `args` (`--save ""`, loopback only, unless `args`
/// say otherwise), checked to be the one answering there (with the password `--requirepass`
/// in `args` gives, if any).
pub fn redis_server(args: &[&str]) -> Process {
    let password = args
        .windows(2)
        .rev()
        .find(|pair| pair[0].eq_ignore_ascii_case("--requirepass"))
        .map_or(String::new(), |pair| pair[1].to_string());
    start(
        "redis-server",
        |port| {
            let mut command = Command::new("redis-server");
            command
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", ""])
                .args(args)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
            command
        },
        |port, pid| redis_answer_with(port, pid, &password),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redis_server_started_here_is_our_own_child() {
        let server = redis_server(&[]);
        assert_eq!(redis_process_id(server.port), Some(server.id()));
    }

    #[test]
    fn a_taken_port_is_noticed_and_another_is_used() {
        let first = redis_server(&[]);
        // The first attempt is handed the first server's port, as a race would hand it.
        let mut ports = vec![first.port];
        let second = start(
            "redis-server",
            |port| {
                let port = ports.pop().unwrap_or(port);
                let mut command = Command::new("redis-server");
                command
                    .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", ""])
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null());
                command
            },
            redis_answer,
        );
        assert_ne!(second.port, first.port);
        assert_eq!(redis_process_id(second.port), Some(second.id()));
    }

    #[test]
    fn a_redis_server_that_wants_a_password_is_recognised_with_it() {
        let server = redis_server(&["--requirepass", "secret"]);
        assert_eq!(redis_process_id(server.port), None, "no answer without the password");
        assert_eq!(redis_process_id_with(server.port, "secret"), Some(server.id()));
    }

    #[test]
    fn the_parent_of_this_process_is_found() {
        assert!(parent_of(std::process::id()).is_some_and(|parent| parent > 0));
    }
}
