//! The harness: registers hosts, runs a schedule of faults against them, and reports the outcome.

use std::cell::Cell;
use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use net::Rng;
use net::rand::Rng as _;
use tracing::Level;
use tracing_subscriber::layer::SubscriberExt;

use crate::disk::SimDisk;
use crate::env::SimEnv;
use crate::fault::Fault;
use crate::pause::PauseGate;
use crate::shape::{ClusterShape, HostSpec, Role};
use crate::trace::{Trace, TraceLayer};

/// What a host's or client's software returns; an `Err` fails the run with its message.
pub type HostResult = Result<(), Box<dyn std::error::Error>>;

/// Knobs of one simulated run. Everything else about the run follows from `seed`.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// The seed: same seed, same run.
    pub seed: u64,
    /// Simulated time after which a run that has not finished fails ("ran for duration").
    pub duration: Duration,
    /// Granularity of simulated time. 1 ms keeps races visible; coarser ticks hide them.
    pub tick: Duration,
    /// Least latency of a message.
    pub min_latency: Duration,
    /// Most latency of a message (latencies follow an exponential curve between the two).
    pub max_latency: Duration,
    /// Whether `Env::buggify` may fire.
    pub buggify: bool,
    /// The least severe component event recorded in the trace.
    pub trace_level: Level,
}

impl SimConfig {
    /// Defaults for a LAN-like cluster: 1 ms ticks, 1–5 ms latency, 60 s budget, buggify on,
    /// debug-level trace.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            duration: Duration::from_secs(60),
            tick: Duration::from_millis(1),
            min_latency: Duration::from_millis(1),
            max_latency: Duration::from_millis(5),
            buggify: true,
            trace_level: Level::DEBUG,
        }
    }
}

/// A handle clients use to request faults while the run goes on ("crash the server after my
/// 100th write"); requests are applied between simulation steps, in order.
#[derive(Clone, Debug, Default)]
pub struct Nemesis {
    requests: Arc<Mutex<VecDeque<Fault>>>,
}

impl Nemesis {
    /// Asks for `fault` to be applied before the next step.
    pub fn inject(&self, fault: Fault) {
        self.lock().push_back(fault);
    }

    fn take(&self) -> Vec<Fault> {
        self.lock().drain(..).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Fault>> {
        self.requests.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// How a run ended, with everything needed to report and replay it.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The run's seed.
    pub seed: u64,
    /// `Ok` if every client finished and nothing failed; otherwise why not.
    pub result: Result<(), String>,
    /// Every recorded event.
    pub trace: Vec<String>,
    /// The digest of the trace (see [`Trace::digest`]).
    pub digest: u64,
    /// Simulated time at the end.
    pub elapsed: Duration,
}

impl Outcome {
    /// Whether the run passed.
    pub fn passed(&self) -> bool {
        self.result.is_ok()
    }

    /// The digest as 16 hex digits, as `just sim` prints it.
    pub fn digest_hex(&self) -> String {
        format!("{:016x}", self.digest)
    }
}

/// A software factory for one host, as [`Harness::add_cluster`] takes it.
pub type Software = Box<dyn Fn(SimEnv) -> std::pin::Pin<Box<dyn Future<Output = HostResult>>>>;

/// Boxes a host's software factory for [`Harness::add_cluster`].
pub fn software<F, Fut>(factory: F) -> Software
where
    F: Fn(SimEnv) -> Fut + 'static,
    Fut: Future<Output = HostResult> + 'static,
{
    Box::new(move |env| Box::pin(factory(env)))
}

/// One simulated run being set up: hosts, clients and a fault schedule.
pub struct Harness {
    config: SimConfig,
    sim: turmoil::Sim<'static>,
    trace: Trace,
    schedule: BTreeMap<Duration, Vec<Fault>>,
    nemesis: Nemesis,
    hosts: Vec<String>,
    clients: Vec<String>,
    rng: Rng,
    /// Each host's disk, which outlives its incarnations.
    disks: BTreeMap<String, SimDisk>,
    /// Each host's pause switch, which every incarnation's sockets obey.
    gates: BTreeMap<String, PauseGate>,
    /// Crashes so far (each draws its own tear from the run's seed).
    crashes: u64,
}

impl Harness {
    /// A run with `config`.
    pub fn new(config: SimConfig) -> Self {
        // A fixed epoch, so the wall clock components read (EXPIREAT, stored timestamps) is the
        // same in every run: 2026-01-01T00:00:00Z.
        #[allow(clippy::disallowed_types)] // a constant instant for turmoil's API, not a clock read
        let epoch = std::time::UNIX_EPOCH + Duration::from_secs(1_767_225_600);
        let sim = turmoil::Builder::new()
            .rng_seed(config.seed)
            .epoch(epoch)
            .simulation_duration(config.duration)
            .tick_duration(config.tick)
            .min_message_latency(config.min_latency)
            .max_message_latency(config.max_latency)
            .build();
        let rng = net::rng_from_seed(config.seed, "harness");
        Self {
            config,
            sim,
            trace: Trace::default(),
            schedule: BTreeMap::new(),
            nemesis: Nemesis::default(),
            hosts: Vec::new(),
            clients: Vec::new(),
            rng,
            disks: BTreeMap::new(),
            gates: BTreeMap::new(),
            crashes: 0,
        }
    }

    /// The run's seed.
    pub fn seed(&self) -> u64 {
        self.config.seed
    }

    /// Registers a host: long-running software that can be crashed and restarted. `software` is
    /// called at every start with a fresh environment; state it captures (a simulated disk)
    /// survives restarts, state it creates does not.
    pub fn host<F, Fut>(&mut self, name: &str, software: F)
    where
        F: Fn(SimEnv) -> Fut + 'static,
        Fut: Future<Output = HostResult> + 'static,
    {
        let incarnation = Rc::new(Cell::new(0u32));
        let (seed, buggify, host) = (self.config.seed, self.config.buggify, name.to_string());
        let disk = self.disks.entry(name.to_string()).or_default().clone();
        let gate = self.gates.entry(name.to_string()).or_default().clone();
        self.sim.host(name, move || {
            let count = incarnation.get();
            incarnation.set(count + 1);
            software(SimEnv::new(seed, &host, count, buggify, disk.clone()).with_pause_gate(gate.clone()))
        });
        self.hosts.push(name.to_string());
    }

    /// The disk of host `name` (the same one its every incarnation writes, created if the host
    /// has none yet): a checker reads a server's files with it, as a fresh process would.
    pub fn disk(&mut self, name: &str) -> SimDisk {
        self.disks.entry(name.to_string()).or_default().clone()
    }

    /// Registers a client: test code that drives the cluster. The run ends when every client has
    /// returned.
    pub fn client<F, Fut>(&mut self, name: &str, software: F)
    where
        F: FnOnce(SimEnv) -> Fut,
        Fut: Future<Output = HostResult> + 'static,
    {
        let env = SimEnv::new(self.config.seed, name, 0, self.config.buggify, SimDisk::default());
        self.sim.client(name, software(env));
        self.clients.push(name.to_string());
    }

    /// Registers every non-client host of `shape`, in the shape's order, with the software
    /// `software_for` picks for it. Clients are left to the scenario, which registers them with
    /// [`Harness::client`] under [`ClusterShape::client_name`].
    pub fn add_cluster(&mut self, shape: &ClusterShape, mut software_for: impl FnMut(&HostSpec) -> Software) {
        for spec in shape.hosts() {
            if matches!(spec.role, Role::Client(_)) {
                continue;
            }
            let software = software_for(&spec);
            self.host(&spec.name, software);
        }
    }

    /// Schedules `fault` at simulated time `at`. Faults at the same time apply in the order they
    /// were scheduled.
    pub fn at(&mut self, at: Duration, fault: Fault) -> &mut Self {
        self.schedule.entry(at).or_default().push(fault);
        self
    }

    /// The handle clients use to inject faults at run time.
    pub fn nemesis(&self) -> Nemesis {
        self.nemesis.clone()
    }

    /// The trace, for clients that want to record their own observations.
    pub fn trace(&self) -> Trace {
        self.trace.clone()
    }

    /// Runs the simulation to the end and reports. A panic anywhere in the simulated world (a
    /// failed assertion in a component) is caught and reported as the run's failure, with the
    /// trace up to that point.
    pub fn run(mut self) -> Outcome {
        let layer = TraceLayer::new(self.trace.clone(), self.config.trace_level);
        let subscriber = tracing_subscriber::registry().with(layer);
        let guard = tracing::subscriber::set_default(subscriber);

        let result = match self.check_schedule() {
            Err(error) => Err(error),
            Ok(()) => {
                self.note(&format!(
                    "start seed={} hosts={:?} clients={:?}",
                    self.config.seed, self.hosts, self.clients
                ));
                match catch_unwind(AssertUnwindSafe(|| self.run_loop())) {
                    Ok(result) => result,
                    Err(panic) => Err(format!("panic: {}", panic_message(&panic))),
                }
            }
        };
        let verdict = match &result {
            Ok(()) => "PASS".to_string(),
            Err(error) => format!("FAIL: {error}"),
        };
        self.note(&format!("end {verdict}"));
        drop(guard);
        Outcome {
            seed: self.config.seed,
            result,
            trace: self.trace.lines(),
            digest: self.trace.digest(),
            elapsed: self.sim.elapsed(),
        }
    }

    fn run_loop(&mut self) -> Result<(), String> {
        loop {
            let now = self.sim.elapsed();
            while let Some(entry) = self.schedule.first_entry() {
                if *entry.key() > now {
                    break;
                }
                for fault in entry.remove() {
                    self.apply(fault);
                }
            }
            for fault in self.nemesis.take() {
                self.check_fault(&fault)?;
                self.apply(fault);
            }
            match self.sim.step() {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(error) => return Err(error.to_string()),
            }
        }
    }

    /// Refuses a schedule that names hosts that do not exist, or crashes a client.
    fn check_schedule(&self) -> Result<(), String> {
        self.schedule.values().flatten().try_for_each(|fault| self.check_fault(fault))
    }

    fn check_fault(&self, fault: &Fault) -> Result<(), String> {
        for host in fault.hosts() {
            let known = self.hosts.iter().chain(&self.clients).any(|name| name == host);
            if !known {
                return Err(format!("fault '{fault}' names unknown host {host:?}"));
            }
        }
        if let Fault::Crash(host) | Fault::Restart(host) | Fault::Pause(host) | Fault::Resume(host) = fault
            && !self.hosts.contains(host)
        {
            return Err(format!("fault '{fault}': only hosts can crash, restart or pause, {host:?} is a client"));
        }
        Ok(())
    }

    /// `host`'s pause switch.
    fn gate(&mut self, host: &str) -> PauseGate {
        self.gates.entry(host.to_string()).or_default().clone()
    }

    /// `host` died: its disk keeps what was synced (and a torn part of the rest).
    fn crash_disk(&mut self, host: &str) {
        self.crashes += 1;
        if let Some(disk) = self.disks.get(host) {
            let mut rng = net::rng_from_seed(self.config.seed, &format!("disk-crash-{}", self.crashes));
            disk.crash(&mut rng);
        }
    }

    fn apply(&mut self, fault: Fault) {
        self.note(&format!("fault: {fault}"));
        let sim = &mut self.sim;
        match &fault {
            Fault::Partition(a, b) => sim.partition(a.as_str(), b.as_str()),
            Fault::PartitionOneWay { from, to } => sim.partition_oneway(from.as_str(), to.as_str()),
            Fault::Repair(a, b) => sim.repair(a.as_str(), b.as_str()),
            Fault::RepairOneWay { from, to } => sim.repair_oneway(from.as_str(), to.as_str()),
            Fault::Hold(a, b) => sim.hold(a.as_str(), b.as_str()),
            Fault::Release(a, b) => sim.release(a.as_str(), b.as_str()),
            Fault::Crash(host) => {
                sim.crash(host.as_str());
                self.crash_disk(host);
                // A dead process is no longer stopped: its next incarnation runs.
                self.gate(host).resume();
            }
            Fault::Restart(host) => {
                // A restart of a running host kills it first.
                sim.bounce(host.as_str());
                self.crash_disk(host);
                self.gate(host).resume();
            }
            Fault::Pause(host) => self.gate(host).pause(),
            Fault::Resume(host) => self.gate(host).resume(),
            Fault::Latency { a, b, latency } => sim.set_link_latency(a.as_str(), b.as_str(), *latency),
            Fault::Flap { a, b, period, duration } => self.schedule_flap(a, b, *period, *duration),
            Fault::HealAll => {
                let names: Vec<String> = self.hosts.iter().chain(&self.clients).cloned().collect();
                for a in &names {
                    for b in &names {
                        if a < b {
                            sim.repair(a.as_str(), b.as_str());
                            sim.release(a.as_str(), b.as_str());
                        }
                    }
                }
            }
        }
    }

    /// Turns a flap into alternating partitions and repairs at seeded times from now on.
    fn schedule_flap(&mut self, a: &str, b: &str, period: Duration, duration: Duration) {
        let start = self.sim.elapsed();
        let end = start + duration;
        let half = period.as_millis().max(2) as u64 / 2;
        let mut at = start;
        let mut down = true;
        while at < end {
            let fault = if down {
                Fault::Partition(a.to_string(), b.to_string())
            } else {
                Fault::Repair(a.to_string(), b.to_string())
            };
            self.at(at, fault);
            at += Duration::from_millis(self.rng.random_range(half..=3 * half));
            down = !down;
        }
        self.at(end, Fault::Repair(a.to_string(), b.to_string()));
    }

    fn note(&self, message: &str) {
        self.trace.record(self.sim.elapsed(), "harness", Level::INFO, "sim", message);
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        text.to_string()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "non-text panic payload".to_string()
    }
}
