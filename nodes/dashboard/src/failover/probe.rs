//! Probing: every server's `ROLE` and `EPOCH`, all at once, every period; what each answered
//! (or how long it has not) is what detection and upkeep decide from.

use std::collections::BTreeMap;

use futures_util::future::join_all;
use net::Env;
use resp::Frame;
use resp::client::Client;
use tokio::time::Instant;

use super::{PROBE_TIMEOUT, Role, ServerProbe, guard};
use crate::dashboard::Dashboard;

/// Probes every server of the model, all at once.
pub(crate) async fn probe_all<E: Env>(dashboard: &Dashboard<E>, clients: &mut BTreeMap<String, Client<E>>) {
    let addrs = dashboard.model_guard().server_addrs();
    clients.retain(|addr, _| addrs.contains(addr));
    let probes = addrs.into_iter().map(|addr| {
        let mut client = clients.remove(&addr).unwrap_or_else(|| dashboard.probe_client(&addr));
        async move {
            let answer = probe(&mut client).await;
            (addr, client, answer)
        }
    });
    let answers = join_all(probes).await;
    let now = Instant::now();
    let mut servers = guard(&dashboard.inner.failover.servers);
    let previous = std::mem::take(&mut *servers);
    for (addr, client, answer) in answers {
        let mut entry = previous.get(&addr).cloned().unwrap_or_default();
        match answer {
            Ok((role, epoch)) => {
                entry.known_role = Some(role.clone());
                entry.role = Some(role);
                entry.epoch = Some(epoch);
                entry.error = None;
                entry.down_since = None;
                entry.last_answer = Some(now);
                entry.down_ms = 0;
            }
            Err(error) => {
                entry.role = None;
                entry.epoch = None;
                entry.error = Some(error);
                let since = *entry.down_since.get_or_insert(entry.last_answer.unwrap_or(now));
                entry.down_ms = u64::try_from(now.saturating_duration_since(since).as_millis()).unwrap_or(u64::MAX);
            }
        }
        servers.insert(addr.clone(), entry);
        clients.insert(addr, client);
    }
}

/// One server's `ROLE` and `EPOCH`.
pub(crate) async fn probe<E: Env>(client: &mut Client<E>) -> std::result::Result<(Role, u64), String> {
    let replies =
        client.pipeline(&[vec!["ROLE".to_string()], vec!["EPOCH".to_string()]]).await.map_err(|error| error.0)?;
    let [role, epoch] = replies.as_slice() else { return Err("short reply".into()) };
    let role = parse_role(role).ok_or_else(|| format!("ROLE answered {role:?}"))?;
    // A server without `EPOCH` (a stock codis-server) is at epoch 0: it cannot be fenced.
    let epoch = match epoch {
        Frame::Integer(epoch) => u64::try_from(*epoch).unwrap_or(0),
        Frame::Error(_) => 0,
        other => return Err(format!("EPOCH answered {other:?}")),
    };
    Ok((role, epoch))
}

pub(crate) fn int(frame: &Frame) -> Option<u64> {
    match frame {
        Frame::Integer(value) => u64::try_from(*value).ok(),
        Frame::Bulk(text) => std::str::from_utf8(text).ok()?.parse().ok(),
        _ => None,
    }
}

pub(crate) fn text(frame: &Frame) -> Option<String> {
    match frame {
        Frame::Bulk(text) | Frame::Simple(text) => Some(String::from_utf8_lossy(text).into_owned()),
        _ => None,
    }
}

/// Parses `ROLE`'s reply (a master's or a replica's).
pub(crate) fn parse_role(frame: &Frame) -> Option<Role> {
    let Frame::Array(items) = frame else { return None };
    match text(items.first()?)?.as_str() {
        "master" => Some(Role::Master { offset: int(items.get(1)?)? }),
        "slave" => Some(Role::Replica {
            master: format!("{}:{}", text(items.get(1)?)?, int(items.get(2)?)?),
            link: text(items.get(3)?)?,
            offset: int(items.get(4)?)?,
        }),
        _ => None,
    }
}

impl<E: Env> Dashboard<E> {
    /// A client of `addr` that gives up after a second (probes, and the console's `INFO`).
    pub(crate) fn probe_client(&self, addr: &str) -> Client<E> {
        Client::new(self.inner.env.clone(), addr)
            .with_password(&self.inner.settings.product_auth)
            .with_timeouts(PROBE_TIMEOUT, PROBE_TIMEOUT)
    }

    pub(crate) fn probe_of(&self, addr: &str) -> ServerProbe {
        guard(&self.inner.failover.servers).get(addr).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_as_redis_sends_them() {
        let master = Frame::Array(vec![Frame::Bulk("master".into()), Frame::Integer(42), Frame::Array(vec![])]);
        assert_eq!(parse_role(&master), Some(Role::Master { offset: 42 }));
        let replica = Frame::Array(vec![
            Frame::Bulk("slave".into()),
            Frame::Bulk("10.0.0.1".into()),
            Frame::Integer(6379),
            Frame::Bulk("connected".into()),
            Frame::Integer(7),
        ]);
        assert_eq!(
            parse_role(&replica),
            Some(Role::Replica { master: "10.0.0.1:6379".into(), link: "connected".into(), offset: 7 })
        );
        assert_eq!(parse_role(&Frame::Integer(1)), None);
    }
}
