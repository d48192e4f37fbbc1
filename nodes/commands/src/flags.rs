//! The three sets of names a command carries — command flags, key-access flags, ACL categories —
//! as bit sets, each with its names in the order Redis 7.0 lists them.

/// Declares a bit set whose members are named in a table (the reply's order).
macro_rules! named_bits {
    ($(#[$meta:meta])* $name:ident : $repr:ty { $($(#[$doc:meta])* $flag:ident = $text:literal $(hidden $hidden:literal)?,)* }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
        pub struct $name($repr);

        #[allow(non_upper_case_globals)]
        mod bits {
            named_bits!(@consts 0u32; $($flag,)*);
        }

        impl $name {
            $($(#[$doc])* pub const $flag: $name = $name(1 << bits::$flag);)*
            /// None.
            pub const NONE: $name = $name(0);
            /// Every member with its name and whether replies list it.
            const TABLE: &'static [($name, &'static str, bool)] = &[
                $(($name::$flag, $text, named_bits!(@visible $($hidden)?)),)*
            ];

            /// Both sets.
            pub const fn with(self, other: $name) -> $name {
                $name(self.0 | other.0)
            }

            /// Whether every member of `other` is here.
            pub const fn contains(self, other: $name) -> bool {
                self.0 & other.0 == other.0
            }

            /// Whether any member of `other` is here.
            pub const fn intersects(self, other: $name) -> bool {
                self.0 & other.0 != 0
            }

            /// Whether the set is empty.
            pub const fn is_empty(self) -> bool {
                self.0 == 0
            }

            /// The member named `name` (any case), if there is one.
            pub fn parse(name: &str) -> Option<$name> {
                Self::TABLE.iter().find(|(_, text, _)| text.eq_ignore_ascii_case(name)).map(|(flag, _, _)| *flag)
            }

            /// The names replies list, in Redis' order (hidden members left out).
            pub fn names(self) -> impl Iterator<Item = &'static str> {
                Self::TABLE
                    .iter()
                    .filter(move |(flag, _, visible)| *visible && self.contains(*flag))
                    .map(|(_, text, _)| *text)
            }
        }
    };
    (@consts $n:expr; $first:ident, $($rest:ident,)*) => {
        pub const $first: u32 = $n;
        named_bits!(@consts $n + 1; $($rest,)*);
    };
    (@consts $n:expr;) => {};
    (@visible) => { true };
    (@visible $hidden:literal) => { !$hidden };
}

/// Command flags (`COMMAND INFO`'s third field), and the ones Redis keeps to itself.
pub mod command {
    named_bits! {
        /// What kind of command it is.
        Flags: u64 {
            /// May modify the dataset.
            WRITE = "write",
            /// Never modifies the dataset.
            READONLY = "readonly",
            /// May grow memory: refused over `maxmemory`.
            DENYOOM = "denyoom",
            /// From a module.
            MODULE = "module",
            /// Administrative.
            ADMIN = "admin",
            /// Pub/sub.
            PUBSUB = "pubsub",
            /// Not allowed from scripts.
            NOSCRIPT = "noscript",
            /// May block the client.
            BLOCKING = "blocking",
            /// Allowed while loading the dataset.
            LOADING = "loading",
            /// Allowed on a replica with a broken link.
            STALE = "stale",
            /// Not shown to `MONITOR`.
            SKIP_MONITOR = "skip_monitor",
            /// Not logged as slow.
            SKIP_SLOWLOG = "skip_slowlog",
            /// Cluster: allowed on an importing slot.
            ASKING = "asking",
            /// O(1) or O(log n).
            FAST = "fast",
            /// Allowed before authenticating.
            NO_AUTH = "no_auth",
            /// May replicate even when read-only (`PUBLISH`, `EVAL`).
            MAY_REPLICATE = "may_replicate" hidden true,
            /// Sentinel's.
            SENTINEL = "sentinel" hidden true,
            /// Only in Sentinel.
            ONLY_SENTINEL = "only_sentinel" hidden true,
            /// Keys may be absent.
            NO_MANDATORY_KEYS = "no_mandatory_keys",
            /// Refused unless enabled (`DEBUG`, `MODULE`).
            PROTECTED = "protected" hidden true,
            /// Refused while loading asynchronously.
            NO_ASYNC_LOADING = "no_async_loading",
            /// Not allowed inside `MULTI`.
            NO_MULTI = "no_multi",
            /// Where the keys are depends on the arguments.
            MOVABLE_KEYS = "movablekeys",
            /// Allowed while a script is busy.
            ALLOW_BUSY = "allow_busy",
            /// May look at (and so expire) keys it was not given (`SCAN`, `RANDOMKEY`): the
            /// deletions of the expired keys it finds are propagated one by one, not as one
            /// transaction.
            TOUCHES_ARBITRARY_KEYS = "touches_arbitrary_keys" hidden true,
            /// Ours: runs at once inside `MULTI` instead of being queued (`EXEC`, `DISCARD`,
            /// `MULTI`, `WATCH`, `QUIT`, `RESET`, as Redis' `processCommand` lists them).
            NOT_QUEUED = "not_queued" hidden true,
            /// Ours: allowed to a RESP2 client that is subscribed (`(P|S)SUBSCRIBE`,
            /// `(P|S)UNSUBSCRIBE`, `PING`, `QUIT`, `RESET`).
            WHILE_SUBSCRIBED = "while_subscribed" hidden true,
            /// Ours: counts as a read in `INFO stats`' keyspace hits and misses although it
            /// writes (`GETDEL`, `GETEX`).
            COUNTS_READS = "counts_reads" hidden true,
            /// Ours: writes every key of its database (`FLUSHDB`, `SLOTSDEL`): waits while any
            /// key of the database is being migrated.
            WRITES_DATABASE = "writes_database" hidden true,
            /// Ours: may write keys of any database (`FLUSHALL`, `SWAPDB`, `MOVE`, `COPY`): waits
            /// while any key is being migrated.
            WRITES_ANY_DATABASE = "writes_any_database" hidden true,
            /// Ours: never waits for migration's fences: the wrapper answers a key in flight
            /// itself ("being migrated", as Codis' proxy expects), and migration's own restore
            /// chooses its keys (`SLOTSMGRT-EXEC-WRAPPER`, `SLOTSRESTORE-ASYNC`).
            NOT_FENCED = "not_fenced" hidden true,
            /// Ours: a read a proxy sends to the master, never a replica: its effect is on the
            /// server that serves it (`TOUCH` updates the access times eviction reads).
            MASTER_ONLY = "master_only" hidden true,
        }
    }
}

/// How a key specification accesses its keys (`COMMAND INFO`'s key-spec flags).
pub mod key {
    named_bits! {
        /// Access flags of a key specification.
        KeyFlags: u32 {
            /// Read-only.
            RO = "RO",
            /// Read and written.
            RW = "RW",
            /// Overwritten.
            OW = "OW",
            /// Removed.
            RM = "RM",
            /// The value is returned or used.
            ACCESS = "access",
            /// The value is updated.
            UPDATE = "update",
            /// Data is added.
            INSERT = "insert",
            /// Data is removed.
            DELETE = "delete",
            /// Not a key (a channel routed like one).
            NOT_KEY = "not_key",
            /// Not every key is found by the specification.
            INCOMPLETE = "incomplete",
            /// The flags depend on the arguments.
            VARIABLE_FLAGS = "variable_flags",
        }
    }
}

/// ACL categories.
pub mod acl {
    named_bits! {
        /// The ACL categories of a command.
        AclCategories: u32 {
            /// Works on keys as keys.
            KEYSPACE = "keyspace",
            /// Reads.
            READ = "read",
            /// Writes.
            WRITE = "write",
            /// Sets.
            SET = "set",
            /// Sorted sets.
            SORTEDSET = "sortedset",
            /// Lists.
            LIST = "list",
            /// Hashes.
            HASH = "hash",
            /// Strings.
            STRING = "string",
            /// Bitmaps.
            BITMAP = "bitmap",
            /// HyperLogLog.
            HYPERLOGLOG = "hyperloglog",
            /// Geospatial.
            GEO = "geo",
            /// Streams.
            STREAM = "stream",
            /// Pub/sub.
            PUBSUB = "pubsub",
            /// Administration.
            ADMIN = "admin",
            /// O(1) or O(log n).
            FAST = "fast",
            /// Not fast.
            SLOW = "slow",
            /// May block.
            BLOCKING = "blocking",
            /// Dangerous.
            DANGEROUS = "dangerous",
            /// Connection.
            CONNECTION = "connection",
            /// Transactions.
            TRANSACTION = "transaction",
            /// Scripting.
            SCRIPTING = "scripting",
        }
    }
}
