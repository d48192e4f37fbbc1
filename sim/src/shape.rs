//! The named hosts of a simulated cluster.
//!
//! Names are fixed by role so that schedules, traces and failing-seed reports read the same in
//! every scenario: `g2s0` is group 2's first server (its initial master), `proxy1`, `client3`,
//! `dashboard`, `coordinator`.

/// What a host is in the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A data server: `group` counts from 1; `index` 0 is the group's initial master.
    Server {
        /// The group.
        group: u32,
        /// Position in the group.
        index: u32,
    },
    /// A proxy, counting from 1.
    Proxy(u32),
    /// The dashboard.
    Dashboard,
    /// The coordinator (the simulator hosts it so its state survives a dashboard crash).
    Coordinator,
    /// A workload client, counting from 1.
    Client(u32),
}

/// A host to register: its name and role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostSpec {
    /// The host name (also its DNS name in the simulation).
    pub name: String,
    /// Its role.
    pub role: Role,
}

/// How many of each node a simulated cluster has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterShape {
    /// Server groups.
    pub groups: u32,
    /// Servers per group, the master included.
    pub servers_per_group: u32,
    /// Proxies.
    pub proxies: u32,
    /// Whether a dashboard runs.
    pub dashboard: bool,
    /// Whether a coordinator runs.
    pub coordinator: bool,
    /// Workload clients.
    pub clients: u32,
}

impl ClusterShape {
    /// The name of server `index` of `group`.
    pub fn server_name(group: u32, index: u32) -> String {
        format!("g{group}s{index}")
    }

    /// The name of proxy `index`.
    pub fn proxy_name(index: u32) -> String {
        format!("proxy{index}")
    }

    /// The name of client `index`.
    pub fn client_name(index: u32) -> String {
        format!("client{index}")
    }

    /// The dashboard's name.
    pub const DASHBOARD: &'static str = "dashboard";

    /// The coordinator's name.
    pub const COORDINATOR: &'static str = "coordinator";

    /// Every host, in registration order: coordinator, servers by group, proxies, dashboard,
    /// clients. The order is part of a run's identity (turmoil hands out addresses and ticks hosts
    /// in registration order), so it never depends on anything but the shape.
    pub fn hosts(&self) -> Vec<HostSpec> {
        let mut hosts = Vec::new();
        if self.coordinator {
            hosts.push(HostSpec { name: Self::COORDINATOR.into(), role: Role::Coordinator });
        }
        for group in 1..=self.groups {
            for index in 0..self.servers_per_group {
                hosts.push(HostSpec { name: Self::server_name(group, index), role: Role::Server { group, index } });
            }
        }
        for index in 1..=self.proxies {
            hosts.push(HostSpec { name: Self::proxy_name(index), role: Role::Proxy(index) });
        }
        if self.dashboard {
            hosts.push(HostSpec { name: Self::DASHBOARD.into(), role: Role::Dashboard });
        }
        for index in 1..=self.clients {
            hosts.push(HostSpec { name: Self::client_name(index), role: Role::Client(index) });
        }
        hosts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_named_by_role_in_a_fixed_order() {
        let shape = ClusterShape {
            groups: 2,
            servers_per_group: 2,
            proxies: 1,
            dashboard: true,
            coordinator: true,
            clients: 2,
        };
        let names: Vec<String> = shape.hosts().into_iter().map(|host| host.name).collect();
        assert_eq!(names, ["coordinator", "g1s0", "g1s1", "g2s0", "g2s1", "proxy1", "dashboard", "client1", "client2"]);
    }
}
