//! The shape of one file in `data/`: one command or subcommand, as `COMMAND INFO` and
//! `COMMAND DOCS` describe it in Redis 7.0, plus what Redis keeps to itself (hidden flags, the
//! key-finding function of commands whose key specifications are incomplete) and how a Codis
//! proxy routes it.
//!
//! Field names and values are the ones the replies use, so a file reads like the reply it
//! produces. `examples/regen.rs` writes these files from a running redis-server 7.0 and keeps
//! the fields that are ours.

use serde::{Deserialize, Serialize};

/// One command or subcommand.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandFile {
    /// Lower-case full name: `get`, or `client|kill` for a subcommand.
    pub name: String,
    /// For a subcommand, its container's name (`client`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// Argument count including the name (and the subcommand): `n` exactly, `-n` at least `n`.
    pub arity: i32,
    /// The flags `COMMAND INFO` lists, in its order.
    pub flags: Vec<String>,
    /// Flags Redis keeps but does not list (`touches_arbitrary_keys`, `may_replicate`), and ours.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hidden_flags: Vec<String>,
    /// The legacy key range: first key, last key (negative: from the end), step.
    pub first_key: i32,
    /// See `first_key`.
    pub last_key: i32,
    /// See `first_key`.
    pub step: i32,
    /// ACL categories, with their `@`.
    pub acl_categories: Vec<String>,
    /// Hints for clients (`nondeterministic_output`, `request_policy:all_shards`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tips: Vec<String>,
    /// Where the keys are, in Redis 7's form.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_specs: Vec<KeySpecFile>,
    /// How keys are found when the specifications cannot say (Redis' `getkeys_proc`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub get_keys: Option<String>,
    /// What `COMMAND DOCS` says.
    pub docs: DocsFile,
    /// How a proxy routes it (top-level commands only; a subcommand goes where its container goes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<String>,
    /// The argument a proxy routes it by, where Codis fixes one other than its first key
    /// (`ZUNIONSTORE`'s first source, not its destination): kept so existing applications are
    /// routed as Codis routes them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_key: Option<usize>,
}

/// One key specification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySpecFile {
    /// Free text Redis attaches to some specifications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// Access flags (`RO`, `RW`, `OW`, `RM`, `access`, `update`, `insert`, `delete`, …).
    pub flags: Vec<String>,
    /// Where the search for the keys begins.
    pub begin_search: BeginSearch,
    /// How the keys are found from there.
    pub find_keys: FindKeys,
}

/// Where a key search begins.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum BeginSearch {
    /// At this argument index.
    Index {
        /// The argument index (the name is 0).
        index: i64,
    },
    /// After the first argument equal to `keyword`, searching from `startfrom` (negative: from
    /// the end, backwards).
    Keyword {
        /// The keyword (any case matches).
        keyword: String,
        /// Where the search starts.
        startfrom: i64,
    },
    /// Not describable.
    Unknown {},
}

/// How keys are found from where the search began.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum FindKeys {
    /// A range: up to `lastkey` (relative; negative counts from the end), every `keystep`;
    /// with `limit`, only that fraction of the remaining arguments.
    Range {
        /// The last key, relative to the first.
        lastkey: i64,
        /// Distance between keys.
        keystep: i64,
        /// With `lastkey` -1: the remaining arguments divided by this.
        limit: i64,
    },
    /// A count at `keynumidx` (relative to the first), then keys from `firstkey`, every `keystep`.
    Keynum {
        /// Where the count is.
        keynumidx: i64,
        /// Where the first key is, relative to the search's start.
        firstkey: i64,
        /// Distance between keys.
        keystep: i64,
    },
    /// Not describable.
    Unknown {},
}

/// `COMMAND DOCS` for one command.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocsFile {
    /// One line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// The Redis version that added it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// `string`, `sorted-set`, …
    pub group: String,
    /// Time complexity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub complexity: Option<String>,
    /// `deprecated`, `syscmd`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc_flags: Option<Vec<String>>,
    /// The version that deprecated it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deprecated_since: Option<String>,
    /// What replaces it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaced_by: Option<String>,
    /// `[version, change]` pairs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<(String, String)>>,
    /// The argument tree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<Vec<ArgFile>>,
}

/// One documented argument.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArgFile {
    /// Its name.
    pub name: String,
    /// `string`, `integer`, `double`, `key`, `pattern`, `unix-time`, `pure-token`, `oneof`, `block`.
    #[serde(rename = "type")]
    pub kind: String,
    /// For a key, the index of its specification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_spec_index: Option<i64>,
    /// The keyword before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// One line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// The version that added it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// The version that deprecated it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deprecated_since: Option<String>,
    /// `optional`, `multiple`, `multiple_token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flags: Option<Vec<String>>,
    /// For `oneof` and `block`: the arguments inside.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<Vec<ArgFile>>,
}
