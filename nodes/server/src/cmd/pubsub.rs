//! Pub/sub: SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE, PUBLISH, PUBSUB.
//!
//! Messages are encoded once per protocol and posted to each receiver's outbox, where its
//! connection task writes them. A receiver whose unwritten messages pass the `pubsub` output
//! buffer limit (hard, or soft for longer than its seconds) is closed, as Redis closes a slow
//! subscriber, so one stalled consumer cannot grow the server's memory without bound.

use bytes::{Bytes, BytesMut};
use resp::{Request, Version};
use tracing::warn;

use super::{Ctx, Handler};
use crate::args::is;
use crate::config::OutputLimit;
use crate::error::{CmdError, CmdResult};
use crate::keyspace::Bulk;
use crate::outbox::Delivery;
use crate::pubsub::Receiver;
use crate::reply::Reply;
use crate::state::State;

pub(super) const HANDLERS: &[(&str, Handler)] = &[
    ("subscribe", subscribe),
    ("unsubscribe", unsubscribe),
    ("psubscribe", psubscribe),
    ("punsubscribe", punsubscribe),
    ("publish", publish),
    ("pubsub", pubsub),
    ("pubsub|help", pubsub),
    ("pubsub|numsub", pubsub),
    ("pubsub|channels", pubsub),
    ("pubsub|numpat", pubsub),
    ("pubsub|shardchannels", pubsub),
    ("pubsub|shardnumsub", pubsub),
];

/// Which subscription list a command works on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Channel,
    Pattern,
}

impl Kind {
    fn subscribed(self) -> &'static [u8] {
        match self {
            Kind::Channel => b"subscribe",
            Kind::Pattern => b"psubscribe",
        }
    }

    fn unsubscribed(self) -> &'static [u8] {
        match self {
            Kind::Channel => b"unsubscribe",
            Kind::Pattern => b"punsubscribe",
        }
    }
}

/// One confirmation: `[kind, name, subscriptions now]`, a push in RESP3.
fn confirm(reply: &mut Reply<'_>, kind: &[u8], name: Option<&[u8]>, count: usize) {
    reply.push(3);
    reply.bulk(kind);
    match name {
        Some(name) => reply.bulk(name),
        None => reply.null(),
    }
    reply.count(count);
}

fn subscribe_generic(ctx: &mut Ctx<'_>, request: &Request, kind: Kind) -> CmdResult {
    let id = ctx.client.id;
    for name in request.args().skip(1) {
        match kind {
            Kind::Channel => ctx.state.pubsub.subscribe(id, name),
            Kind::Pattern => ctx.state.pubsub.psubscribe(id, name),
        };
        confirm(&mut ctx.reply, kind.subscribed(), Some(name), ctx.state.pubsub.count(id));
    }
    ctx.client.subscriptions = ctx.state.pubsub.count(id);
    Ok(())
}

fn unsubscribe_generic(ctx: &mut Ctx<'_>, request: &Request, kind: Kind) -> CmdResult {
    let id = ctx.client.id;
    let names: Vec<Bulk> = if request.len() > 1 {
        request.args().skip(1).map(Bulk::from_slice).collect()
    } else {
        // All of them, in subscription order.
        ctx.state
            .pubsub
            .of(id)
            .map(|subscriptions| match kind {
                Kind::Channel => subscriptions.channels.iter().cloned().collect(),
                Kind::Pattern => subscriptions.patterns.iter().cloned().collect(),
            })
            .unwrap_or_default()
    };
    if names.is_empty() {
        confirm(&mut ctx.reply, kind.unsubscribed(), None, ctx.state.pubsub.count(id));
    }
    for name in &names {
        match kind {
            Kind::Channel => ctx.state.pubsub.unsubscribe(id, name),
            Kind::Pattern => ctx.state.pubsub.punsubscribe(id, name),
        };
        confirm(&mut ctx.reply, kind.unsubscribed(), Some(name), ctx.state.pubsub.count(id));
    }
    ctx.client.subscriptions = ctx.state.pubsub.count(id);
    Ok(())
}

fn subscribe(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    subscribe_generic(ctx, request, Kind::Channel)
}

fn unsubscribe(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    unsubscribe_generic(ctx, request, Kind::Channel)
}

fn psubscribe(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    subscribe_generic(ctx, request, Kind::Pattern)
}

fn punsubscribe(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    unsubscribe_generic(ctx, request, Kind::Pattern)
}

/// A message encoded for each protocol, built on first use.
struct Message<'a> {
    pattern: Option<&'a [u8]>,
    channel: &'a [u8],
    payload: &'a [u8],
    encoded: [Option<Bytes>; 2],
}

impl Message<'_> {
    fn write(&self, reply: &mut Reply<'_>) {
        match self.pattern {
            Some(pattern) => {
                reply.push(4);
                reply.bulk(b"pmessage");
                reply.bulk(pattern);
            }
            None => {
                reply.push(3);
                reply.bulk(b"message");
            }
        }
        reply.bulk(self.channel);
        reply.bulk(self.payload);
    }

    fn encoded(&mut self, version: Version) -> Bytes {
        let slot = usize::from(version == Version::Resp3);
        if let Some(bytes) = &self.encoded[slot] {
            return bytes.clone();
        }
        let mut out = BytesMut::new();
        self.write(&mut Reply::new(&mut out, version));
        let bytes = out.freeze();
        self.encoded[slot] = Some(bytes.clone());
        bytes
    }
}

fn publish(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let channel = request.arg(1).unwrap_or_default();
    let payload = request.arg(2).unwrap_or_default();
    let receivers = ctx.state.pubsub.receivers(channel);
    let mut plain = Message { pattern: None, channel, payload, encoded: [None, None] };
    for receiver in &receivers {
        let (id, pattern) = match receiver {
            Receiver::Channel(id) => (*id, None),
            Receiver::Pattern(id, pattern) => (*id, Some(pattern)),
        };
        if id == ctx.client.id {
            // To itself (a RESP3 client): straight into its own output, before the reply.
            let message =
                Message { pattern: pattern.map(|pattern| &pattern[..]), channel, payload, encoded: [None, None] };
            message.write(&mut ctx.reply);
            continue;
        }
        let Some(version) = ctx.state.clients.get(&id).map(|info| info.version) else {
            continue;
        };
        let bytes = match pattern {
            None => plain.encoded(version),
            Some(pattern) => {
                let mut message = Message { pattern: Some(pattern), channel, payload, encoded: [None, None] };
                message.encoded(version)
            }
        };
        deliver(ctx.state, id, bytes, ctx.now_ms);
    }
    ctx.reply.count(receivers.len());
    // Replicas forward it to their own subscribers (not the log: a message is not data).
    ctx.state.propagation.replicate_only(request.args());
    Ok(())
}

/// Posts a message to client `id`, closing the client if its unwritten output passes the
/// `pubsub` limits (Redis' `closeClientOnOutputBufferLimitReached`).
fn deliver(state: &mut State, id: u64, bytes: Bytes, now_ms: u64) {
    let limit = state.config.client_output_buffer_limit.pubsub;
    let Some(info) = state.clients.get_mut(&id) else {
        return;
    };
    if info.closing {
        return;
    }
    info.outbox.send(Delivery::Push(bytes));
    if limit.exceeded(info.outbox.pending(), &mut info.soft_limit_since_ms, now_ms) {
        warn!(client = id, addr = %info.addr, pending = info.outbox.pending(), "closing a subscriber over its output buffer limit");
        info.closing = true;
        info.kill.notify_one();
        state.stats.output_limit_disconnections += 1;
    }
}

impl OutputLimit {
    /// Whether a client with `pending` bytes of unwritten output must be closed: over the hard
    /// limit, or over the soft limit for longer than its seconds (`since_ms` remembers when it
    /// first was), as Redis' `checkClientOutputBufferLimits`.
    pub fn exceeded(&self, pending: usize, since_ms: &mut Option<u64>, now_ms: u64) -> bool {
        let pending = pending as u64;
        let hard = self.hard_bytes > 0 && pending >= self.hard_bytes;
        let mut soft = self.soft_bytes > 0 && pending >= self.soft_bytes;
        if soft {
            match *since_ms {
                None => {
                    *since_ms = Some(now_ms);
                    soft = false;
                }
                Some(since) => soft = now_ms.saturating_sub(since) / 1000 > self.soft_seconds,
            }
        } else {
            *since_ms = None;
        }
        hard || soft
    }
}

fn pubsub(ctx: &mut Ctx<'_>, request: &Request) -> CmdResult {
    let sub = request.arg(1).unwrap_or_default();
    // Too many arguments to CHANNELS is caught by its handler (a syntax error); a wrong count
    // for NUMPAT by its fixed arity.
    let syntax = || {
        CmdError::message(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try PUBSUB HELP.",
            String::from_utf8_lossy(sub)
        ))
    };
    if is(sub, "CHANNELS") || is(sub, "SHARDCHANNELS") {
        let name = if is(sub, "CHANNELS") { "channels" } else { "shardchannels" };
        if request.len() > 3 {
            return Err(syntax());
        }
        // Sharded channels (SSUBSCRIBE) are not implemented: there are none.
        let channels = if name == "channels" { ctx.state.pubsub.channels(request.arg(2)) } else { Vec::new() };
        ctx.reply.array(channels.len());
        for channel in &channels {
            ctx.reply.bulk(channel);
        }
    } else if is(sub, "NUMSUB") || is(sub, "SHARDNUMSUB") {
        let sharded = is(sub, "SHARDNUMSUB");
        // A flat array in both protocols, as Redis 7.0 replies.
        ctx.reply.array((request.len() - 2) * 2);
        for channel in request.args().skip(2) {
            ctx.reply.bulk(channel);
            ctx.reply.count(if sharded { 0 } else { ctx.state.pubsub.subscribers(channel) });
        }
    } else if is(sub, "NUMPAT") {
        if request.len() != 2 {
            return Err(CmdError::other("ERR wrong number of arguments for 'pubsub|numpat' command"));
        }
        ctx.reply.count(ctx.state.pubsub.pattern_count());
    } else if is(sub, "HELP") {
        ctx.reply.help(&[
            "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "CHANNELS [<pattern>]",
            "    Return the currently active channels matching a <pattern> (default: '*').",
            "NUMPAT",
            "    Return number of subscriptions to patterns.",
            "NUMSUB [<channel> ...]",
            "    Return the number of subscribers for the specified channels, excluding",
            "    pattern subscriptions(default: no channels).",
            "SHARDCHANNELS [<pattern>]",
            "    Return the currently active shard level channels matching a <pattern> (default: '*').",
            "SHARDNUMSUB [<shardchannel> ...]",
            "    Return the number of subscribers for the specified shard level channel(s)",
            "HELP",
            "    Prints this help.",
        ]);
    } else {
        return Err(CmdError::UnknownSubcommand {
            sub: String::from_utf8_lossy(sub).into_owned(),
            command: "PUBSUB".into(),
        });
    }
    Ok(())
}
