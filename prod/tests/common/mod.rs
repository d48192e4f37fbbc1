//! What the tests of real processes share: a child process stopped on drop, `codis-admin`,
//! and a `codis demo` cluster on free ports.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A child process, stopped on drop (SIGTERM first, so `codis demo` stops its own children).
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.0.id().to_string()).status();
        for _ in 0..100 {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn admin(dashboard: &str, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_codis-admin"))
        .args(["--dashboard", dashboard])
        .args(args)
        .output()
        .expect("codis-admin runs");
    assert!(output.status.success(), "codis-admin {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A running `codis demo` on free ports, stopped (and its files removed) on drop.
pub struct Demo {
    /// The demo's process.
    pub running: Option<Running>,
    /// Its files.
    pub dir: PathBuf,
    /// The four codis-servers' ports: group 1 is the first two, group 2 the others.
    pub server_ports: Vec<u16>,
    /// The proxy's client port.
    pub proxy_port: u16,
    /// The proxy's address.
    pub proxy: String,
    /// The dashboard's address.
    pub dashboard: String,
    /// The servers the demo started outside any group.
    pub spare_servers: Vec<String>,
    /// The web console's address (codis-fe).
    pub console: String,
}

impl Demo {
    /// Starts `codis demo` in a fresh directory named after `name` and waits until it is ready.
    pub fn start(name: &str) -> Demo {
        Demo::start_with_auth(name, "")
    }

    /// The same, with `auth` as the product's password.
    pub fn start_with_auth(name: &str, auth: &str) -> Demo {
        let mut tried = Vec::new();
        for _ in 0..5 {
            match Demo::try_start(name, auth) {
                Ok(demo) => return demo,
                Err(why) => tried.push(why),
            }
        }
        panic!("codis demo did not start: {}", tried.join("; "))
    }

    /// One attempt on freshly probed ports: the demo must get ready, and each of its servers'
    /// ports must lead to one of its own children (tests running side by side may be handed the
    /// same free port between the probe and the bind).
    fn try_start(name: &str, auth: &str) -> Result<Demo, String> {
        let ports = test_support::free_ports(11);
        let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let server_ports = ports[..4].to_vec();
        let joined = server_ports.iter().map(u16::to_string).collect::<Vec<_>>().join(",");
        let (proxy_port, dashboard_port) = (ports[4], ports[6]);
        let mut demo = Command::new(env!("CARGO_BIN_EXE_codis"))
            .args(["demo", "--dir"])
            .arg(&dir)
            .args(["--server-ports", &joined])
            .args(["--proxy-port", &proxy_port.to_string(), "--proxy-admin-port", &ports[5].to_string()])
            .args(["--dashboard-port", &dashboard_port.to_string()])
            .args(["--auth", auth])
            .args(["--spare-ports", &format!("{},{}", ports[8], ports[9]), "--console-port", &ports[10].to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("codis demo starts");
        let stdout = demo.stdout.take().expect("piped");
        let running = Running(demo);
        let mut lines = BufReader::new(stdout).lines();
        loop {
            match lines.next() {
                Some(Ok(line)) if line.starts_with("Ctrl-C stops everything") => break,
                Some(Ok(_)) => {}
                // It stopped before it was ready: a port it was given was taken.
                _ => return Err(format!("it exited before it was ready (ports {ports:?})")),
            }
        }
        let demo_pid = running.0.id();
        for port in server_ports.iter().chain(&ports[8..10]) {
            if test_support::redis_answer_with(*port, demo_pid, auth) != test_support::Answer::Ours {
                return Err(format!("port {port} does not lead to one of its servers"));
            }
        }
        // The rest of its output (a server exiting) is not read: keep the pipe drained.
        #[allow(clippy::disallowed_methods)] // a test driving real processes: a thread drains a pipe
        std::thread::spawn(move || for _ in lines {});
        Ok(Demo {
            running: Some(running),
            dir,
            server_ports,
            proxy_port,
            proxy: format!("127.0.0.1:{proxy_port}"),
            dashboard: format!("127.0.0.1:{dashboard_port}"),
            spare_servers: ports[8..10].iter().map(|port| format!("127.0.0.1:{port}")).collect(),
            console: format!("127.0.0.1:{}", ports[10]),
        })
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        drop(self.running.take());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
