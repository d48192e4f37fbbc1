//! What the web console shows beyond the model: each server's memory, keys, clients and
//! replication link (from `INFO`), and each proxy's counters (from its `/proxy/stats`).
//!
//! Gathered once a second, all servers and proxies at once, but only while someone is looking:
//! a read of the stats within the last [`WATCHED_FOR`] keeps it going, and the gathering task
//! sleeps on a notification otherwise, so a dashboard nobody watches (and every simulated one)
//! adds no load and no timer. What was gathered is forgotten when watching stops, so a new
//! viewer never sees old figures as current. Nothing here feeds a decision: failover has its
//! own probes ([`crate::failover`]), and leases their own calls.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use futures_util::future::join_all;
use net::Env;
use resp::Frame;
use resp::client::Client;
use serde::Serialize;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::dashboard::Dashboard;
use crate::proxies::ProxyClient;

/// How often servers and proxies are asked.
const PERIOD: Duration = Duration::from_secs(1);
/// How long a proxy's answer may take (servers are asked through the failover probes' client,
/// which gives up as soon).
const TIMEOUT: Duration = Duration::from_secs(1);
/// How long after the last read of the stats the dashboard keeps gathering.
pub const WATCHED_FOR: Duration = Duration::from_secs(60);

/// One server as its last `INFO` described it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ServerStats {
    /// Why the last `INFO` got no answer (the other fields are from the last answer).
    pub error: Option<String>,
    /// `used_memory`, bytes.
    pub used_memory: u64,
    /// `maxmemory`, bytes (0: no limit).
    pub maxmemory: u64,
    /// Keys in every database.
    pub keys: u64,
    /// `connected_clients`.
    pub clients: u64,
    /// `role`: `master` or `slave`.
    pub role: String,
    /// The master it follows (`host:port`), for a replica.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub master_addr: String,
    /// `master_link_status` (`up` or `down`), for a replica.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub link: String,
    /// Its replication offset (`master_repl_offset`, or `slave_repl_offset` for a replica).
    pub offset: u64,
    /// For a replica of its group's master: bytes behind it. Filled when the stats are read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lag: Option<u64>,
}

impl ServerStats {
    /// Reads the fields the console shows out of `INFO`'s text.
    pub fn parse(info: &str) -> ServerStats {
        let mut stats = ServerStats::default();
        let (mut host, mut port) = ("", "");
        let mut replica_offset = None;
        for (key, value) in info_fields(info) {
            let number = || value.parse::<u64>().unwrap_or(0);
            match key {
                "used_memory" => stats.used_memory = number(),
                "maxmemory" => stats.maxmemory = number(),
                "connected_clients" => stats.clients = number(),
                "role" => stats.role = value.to_string(),
                "master_host" => host = value,
                "master_port" => port = value,
                "master_link_status" => stats.link = value.to_string(),
                "master_repl_offset" => stats.offset = number(),
                "slave_repl_offset" => replica_offset = Some(number()),
                // `db0:keys=12,expires=0,avg_ttl=0`
                db if db.strip_prefix("db").is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())) => {
                    let keys = value.split(',').find_map(|part| part.strip_prefix("keys="));
                    stats.keys += keys.and_then(|keys| keys.parse::<u64>().ok()).unwrap_or(0);
                }
                _ => {}
            }
        }
        if !host.is_empty() {
            stats.master_addr = format!("{host}:{port}");
        }
        stats.offset = replica_offset.unwrap_or(stats.offset);
        stats
    }
}

/// `INFO`'s `key:value` lines (section headers and blank lines left out), values trimmed.
pub(crate) fn info_fields(info: &str) -> impl Iterator<Item = (&str, &str)> {
    info.lines().filter_map(|line| line.split_once(':')).map(|(key, value)| (key, value.trim()))
}

/// One proxy as its last `/proxy/stats` described it (all zero when it did not answer: its
/// last counters are not current).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ProxyStats {
    /// Why the last call got no answer (empty: it answered).
    pub stats_error: String,
    /// It serves clients.
    pub online: bool,
    /// It refuses clients for want of a lease.
    pub fenced: bool,
    /// It reads from masters only.
    pub primary_only: bool,
    /// Commands: `total`, `fails`, `qps`.
    pub ops: BTreeMap<String, u64>,
    /// Client connections: `total`, `alive`.
    pub sessions: BTreeMap<String, u64>,
}

impl ProxyStats {
    fn from_json(stats: &serde_json::Value) -> ProxyStats {
        let counters = |object: &serde_json::Value, names: &[&str]| -> BTreeMap<String, u64> {
            names.iter().map(|name| (name.to_string(), object[*name].as_u64().unwrap_or(0))).collect()
        };
        ProxyStats {
            stats_error: String::new(),
            online: stats["online"].as_bool().unwrap_or(false),
            fenced: stats["fenced"].as_bool().unwrap_or(false),
            primary_only: stats["primary_only"].as_bool().unwrap_or(false),
            ops: counters(&stats["ops"], &["total", "fails", "qps"]),
            sessions: counters(&stats["sessions"], &["total", "alive"]),
        }
    }
}

/// The last observations, for the stats page.
#[derive(Debug, Default)]
pub struct Observations {
    /// Per server address.
    pub servers: Mutex<BTreeMap<String, ServerStats>>,
    /// Per proxy token.
    pub proxies: Mutex<BTreeMap<String, ProxyStats>>,
    /// When someone last read the stats.
    watched: Mutex<Option<Instant>>,
    /// Wakes the gathering when someone starts watching.
    start: Notify,
}

fn guard<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Observations {
    /// Notes that someone is looking (keeps the gathering going for [`WATCHED_FOR`]).
    pub fn watched(&self) {
        let was = self.is_watched();
        *guard(&self.watched) = Some(Instant::now());
        if !was {
            self.start.notify_one();
        }
    }

    fn is_watched(&self) -> bool {
        guard(&self.watched).is_some_and(|last| last.elapsed() < WATCHED_FOR)
    }

    fn forget(&self) {
        guard(&self.servers).clear();
        guard(&self.proxies).clear();
    }

    /// The servers' stats, with each replica's lag behind its group's master filled in.
    pub fn servers_with_lag(&self, groups: &[model::Group]) -> BTreeMap<String, ServerStats> {
        let mut servers = guard(&self.servers).clone();
        for group in groups {
            let Some(master) = group.master() else { continue };
            let Some(master_offset) = servers.get(master).filter(|stats| stats.error.is_none()).map(|s| s.offset)
            else {
                continue;
            };
            for replica in group.servers.iter().skip(1) {
                if let Some(stats) = servers.get_mut(&replica.addr)
                    && stats.error.is_none()
                    && stats.master_addr == master
                {
                    stats.lag = Some(master_offset.saturating_sub(stats.offset));
                }
            }
        }
        servers
    }
}

/// Gathers while watched, until the dashboard stops.
pub(crate) async fn run<E: Env>(dashboard: Dashboard<E>) {
    let mut servers: BTreeMap<String, Client<E>> = BTreeMap::new();
    let mut proxies: BTreeMap<String, ProxyClient<E>> = BTreeMap::new();
    let observations = &dashboard.inner.observations;
    loop {
        // A wake-up left over from an earlier start is checked against the clock, not trusted.
        while !observations.is_watched() {
            (servers, proxies) = (BTreeMap::new(), BTreeMap::new());
            observations.forget();
            tokio::select! {
                () = dashboard.closed() => return,
                () = observations.start.notified() => {}
            }
        }
        tokio::join!(observe_servers(&dashboard, &mut servers), observe_proxies(&dashboard, &mut proxies));
        tokio::select! {
            () = dashboard.closed() => return,
            () = tokio::time::sleep(PERIOD) => {}
        }
    }
}

async fn observe_servers<E: Env>(dashboard: &Dashboard<E>, clients: &mut BTreeMap<String, Client<E>>) {
    let addrs = dashboard.model_guard().server_addrs();
    clients.retain(|addr, _| addrs.contains(addr));
    let asks = addrs.into_iter().map(|addr| {
        let mut client = clients.remove(&addr).unwrap_or_else(|| dashboard.probe_client(&addr));
        async move {
            let answer = match client.call(&["INFO"]).await {
                Ok(Frame::Bulk(text)) => Ok(ServerStats::parse(&String::from_utf8_lossy(&text))),
                Ok(Frame::Error(text)) => Err(format!("INFO refused: {}", String::from_utf8_lossy(&text))),
                Ok(_) => Err("INFO answered something other than text".to_string()),
                Err(error) => Err(error.0),
            };
            (addr, client, answer)
        }
    });
    let answers = join_all(asks).await;
    let mut servers = guard(&dashboard.inner.observations.servers);
    let previous = std::mem::take(&mut *servers);
    for (addr, client, answer) in answers {
        let stats = match answer {
            Ok(stats) => stats,
            // Its link and lag are unknown now; only its memory limit does not go stale at once.
            Err(error) => ServerStats {
                error: Some(error),
                maxmemory: previous.get(&addr).map_or(0, |stats| stats.maxmemory),
                ..ServerStats::default()
            },
        };
        servers.insert(addr.clone(), stats);
        clients.insert(addr, client);
    }
}

/// Every proxy's counters; one client per proxy, kept while it is registered, so its connection
/// is reused.
async fn observe_proxies<E: Env>(dashboard: &Dashboard<E>, clients: &mut BTreeMap<String, ProxyClient<E>>) {
    {
        let model = dashboard.model_guard();
        clients.retain(|token, _| model.proxies.contains_key(token));
        for (token, proxy) in &model.proxies {
            clients.entry(token.clone()).or_insert_with(|| dashboard.proxy_client(proxy));
        }
    }
    let asks = clients.iter().map(|(token, client)| async move {
        let answer = match tokio::time::timeout(TIMEOUT, client.stats()).await {
            Ok(Ok(stats)) => ProxyStats::from_json(&stats),
            Ok(Err(error)) => ProxyStats { stats_error: error.to_string(), ..ProxyStats::default() },
            Err(_) => ProxyStats {
                stats_error: format!("no answer within {} ms", TIMEOUT.as_millis()),
                ..ProxyStats::default()
            },
        };
        (token.clone(), answer)
    });
    let answers: BTreeMap<String, ProxyStats> = join_all(asks).await.into_iter().collect();
    *guard(&dashboard.inner.observations.proxies) = answers;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_of_a_replica_reads_as_shown() {
        let info = "# Memory\r\nused_memory:2048\r\nmaxmemory:1048576\r\n# Clients\r\nconnected_clients:7\r\n\
                    # Replication\r\nrole:slave\r\nmaster_host:10.0.0.1\r\nmaster_port:6379\r\n\
                    master_link_status:up\r\nslave_repl_offset:900\r\nmaster_repl_offset:900\r\n\
                    # Keyspace\r\ndb0:keys=12,expires=1,avg_ttl=0\r\ndb3:keys=5,expires=0,avg_ttl=0\r\n";
        let stats = ServerStats::parse(info);
        assert_eq!(stats.used_memory, 2048);
        assert_eq!(stats.maxmemory, 1_048_576);
        assert_eq!(stats.clients, 7);
        assert_eq!(stats.role, "slave");
        assert_eq!(stats.master_addr, "10.0.0.1:6379");
        assert_eq!(stats.link, "up");
        assert_eq!(stats.offset, 900);
        assert_eq!(stats.keys, 17);
        assert_eq!(ServerStats::parse("dbsize:3\r\ndb:keys=4\r\n").keys, 0, "only db<n> lines count");
    }

    #[test]
    fn lag_is_counted_against_the_groups_master_only() {
        let observations = Observations::default();
        {
            let mut servers = guard(&observations.servers);
            servers.insert("m:1".into(), ServerStats { role: "master".into(), offset: 1000, ..Default::default() });
            let replica = |master: &str, offset| ServerStats {
                role: "slave".into(),
                master_addr: master.into(),
                offset,
                ..Default::default()
            };
            servers.insert("r:1".into(), replica("m:1", 400));
            // Follows someone else: its lag behind this group's master means nothing.
            servers.insert("r:2".into(), replica("x:1", 10));
            // Did not answer: its offset is old.
            servers.insert("r:3".into(), ServerStats { error: Some("timeout".into()), ..replica("m:1", 5) });
        }
        let server = |addr: &str| model::GroupServer { addr: addr.into(), ..Default::default() };
        let group = model::Group {
            id: model::GroupId(1),
            servers: vec![server("m:1"), server("r:1"), server("r:2"), server("r:3")],
            ..Default::default()
        };
        let servers = observations.servers_with_lag(&[group]);
        assert_eq!(servers["r:1"].lag, Some(600));
        assert_eq!(servers["r:2"].lag, None);
        assert_eq!(servers["r:3"].lag, None);
        assert_eq!(servers["m:1"].lag, None);
    }
}
