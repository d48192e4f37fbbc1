//! The event trace of a run, and its digest.
//!
//! Every `tracing` event a component emits while the simulation runs is recorded as one line,
//! stamped with simulated time and the simulated host it came from (turmoil enters a `node` span
//! named after the host around each host's tick), together with the harness's own events (faults,
//! start, end). Nothing real leaks in: no wall-clock time, no thread ids, no real addresses. Two
//! runs of the same seed must therefore produce the same lines, and [`Trace::digest`] compares
//! them in one number.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// The recorded lines of one run, shared between the harness and the tracing layer.
#[derive(Clone, Debug, Default)]
pub struct Trace {
    lines: Arc<Mutex<Vec<String>>>,
}

impl Trace {
    /// Appends an event line.
    pub fn record(&self, at: Duration, host: &str, level: Level, target: &str, message: &str) {
        let line = format!("{:>5}.{:03}s {host:<12} {level:<5} {target}: {message}", at.as_secs(), at.subsec_millis());
        self.lock().push(line);
    }

    /// A copy of every line so far.
    pub fn lines(&self) -> Vec<String> {
        self.lock().clone()
    }

    /// How many events were recorded.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// The digest of the whole trace: 64-bit FNV-1a over the lines, each ended by `\n`. Written out
    /// rather than taken from `std::hash` because std's hashers are documented as unstable across
    /// releases, and a digest printed by `just sim` must stay comparable.
    pub fn digest(&self) -> u64 {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for line in self.lock().iter() {
            for byte in line.bytes().chain(std::iter::once(b'\n')) {
                hash ^= u64::from(byte);
                hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        hash
    }

    fn lock(&self) -> MutexGuard<'_, Vec<String>> {
        // The trace is only ever touched from the simulation's one thread; a poisoned lock means
        // a panic is already failing the run, and the lines recorded so far are still worth
        // keeping for the report.
        self.lines.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The `tracing` layer that records component events into a [`Trace`].
#[derive(Debug)]
pub struct TraceLayer {
    trace: Trace,
    max_level: Level,
}

impl TraceLayer {
    /// Records events at `max_level` and more severe into `trace`. turmoil's own (very verbose,
    /// per-packet) events are left out.
    pub fn new(trace: Trace, max_level: Level) -> Self {
        Self { trace, max_level }
    }
}

/// The simulated host a span belongs to, remembered on turmoil's `node` spans.
struct HostName(String);

impl<S> tracing_subscriber::Layer<S> for TraceLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != "node" {
            return;
        }
        let mut visitor = Fields::default();
        attrs.record(&mut visitor);
        if let (Some(name), Some(span)) = (visitor.name, ctx.span(id)) {
            span.extensions_mut().insert(HostName(name));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let metadata = event.metadata();
        if *metadata.level() > self.max_level || metadata.target().starts_with("turmoil") {
            return;
        }
        let host = ctx
            .event_scope(event)
            .and_then(|scope| {
                scope.from_root().find_map(|span| span.extensions().get::<HostName>().map(|host| host.0.clone()))
            })
            .unwrap_or_else(|| "harness".to_string());
        let mut visitor = Fields::default();
        event.record(&mut visitor);
        let at = turmoil::sim_elapsed().unwrap_or_default();
        self.trace.record(at, &host, *metadata.level(), metadata.target(), &visitor.line);
    }
}

/// Formats an event's message and fields as one line; remembers a `name` field for spans.
#[derive(Default)]
struct Fields {
    line: String,
    name: Option<String>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "name" {
            self.name = Some(value.to_string());
        }
        self.record_debug(field, &value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if !self.line.is_empty() {
            self.line.push(' ');
        }
        // `write!` into a String cannot fail.
        let _ = if field.name() == "message" {
            write!(self.line, "{value:?}")
        } else {
            write!(self.line, "{}={value:?}", field.name())
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_depends_on_every_line_and_their_order() {
        let a = Trace::default();
        a.record(Duration::from_millis(1500), "echo", Level::INFO, "t", "one");
        a.record(Duration::from_millis(1501), "echo", Level::INFO, "t", "two");
        let b = Trace::default();
        b.record(Duration::from_millis(1501), "echo", Level::INFO, "t", "two");
        b.record(Duration::from_millis(1500), "echo", Level::INFO, "t", "one");
        assert_ne!(a.digest(), b.digest());
        assert_eq!(a.lines()[0], "    1.500s echo         INFO  t: one");
        let c = Trace::default();
        c.record(Duration::from_millis(1500), "echo", Level::INFO, "t", "one");
        c.record(Duration::from_millis(1501), "echo", Level::INFO, "t", "two");
        assert_eq!(a.digest(), c.digest());
    }
}
