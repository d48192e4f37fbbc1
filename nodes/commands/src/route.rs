//! How a Codis proxy handles a command: the proxy reads this instead of lists of names.

/// What a proxy does with a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Route {
    /// Refused: `ERR handle request, command 'X' is not allowed` (Codis' list, and what a
    /// proxy in front of many servers cannot do: `KEYS`, `FLUSHALL`, `MIGRATE`, …).
    NotAllowed,
    /// Answered by the proxy itself in its usual form (`PING`, `AUTH`, `SELECT`, …); other
    /// forms go to the slot's master by their first key.
    Local,
    /// Forwarded to the master of its first key's slot.
    Master,
    /// Forwarded by its first key; a replica may serve it when the proxy reads from replicas.
    Replica,
    /// Forwarded to the master of its keys' slot, whole: atomic over its keys, it is refused
    /// (`CROSSSLOT`) when they are in different slots (`MSETNX`).
    SameSlot,
    /// Split by key across slots and the replies joined (`MGET`, `MSET`, `DEL`, …): its key
    /// specification gives each key's arguments, its `response_policy` tip the join.
    Split,
    /// Sent to every group, the replies joined (none yet).
    Broadcast,
    /// A cursor walk over every group (`SCAN`).
    Scan,
    /// Enters subscribed mode (`SUBSCRIBE`, `PSUBSCRIBE`, and their opposites).
    Subscribe,
    /// The proxy's own transaction (`MULTI`, `EXEC`, `DISCARD`, `WATCH`, `UNWATCH`).
    Transaction,
    /// Routed by its channel's slot (`PUBLISH`): it names no data, so a migrating slot does not
    /// hold it back.
    Publish,
}

impl Route {
    /// Every route with its name in the data files.
    const NAMES: [(Route, &'static str); 11] = [
        (Route::NotAllowed, "not_allowed"),
        (Route::Local, "local"),
        (Route::Master, "master"),
        (Route::Replica, "replica"),
        (Route::SameSlot, "same_slot"),
        (Route::Split, "split"),
        (Route::Broadcast, "broadcast"),
        (Route::Scan, "scan"),
        (Route::Subscribe, "subscribe"),
        (Route::Transaction, "transaction"),
        (Route::Publish, "publish"),
    ];

    /// The route named `name` in a data file.
    pub fn parse(name: &str) -> Option<Route> {
        Self::NAMES.iter().find(|(_, text)| *text == name).map(|(route, _)| *route)
    }

    /// Its name in the data files.
    pub fn name(self) -> &'static str {
        Self::NAMES.iter().find(|(route, _)| *route == self).map_or("", |(_, text)| text)
    }
}
