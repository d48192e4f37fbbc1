//! `COMMAND` and its subcommands against redis-server 7.0, over every command both serve: the
//! replies come from the shared command table (`nodes/commands`), so this checks the table's data
//! and its encoding in RESP2 and RESP3 alike.

use resp::Frame;

use crate::harness::{Compare, Pair, show};

/// The top-level names we serve (our `COMMAND LIST`, subcommands left out).
async fn our_commands(pair: &mut Pair) -> Vec<String> {
    let (_, ours) = pair.both("COMMAND LIST").await;
    let Frame::Array(names) = ours else { panic!("COMMAND LIST: {}", show(&ours)) };
    names.iter().map(text).filter(|name| !name.contains('|')).collect()
}

fn text(frame: &Frame) -> String {
    match frame {
        Frame::Bulk(bytes) | Frame::Simple(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        other => panic!("not a string: {}", show(other)),
    }
}

/// A `COMMAND INFO` entry with its subcommands sorted by name, and Redis' restricted to the ones
/// `served` (we serve a subset of some containers' subcommands; Redis lists them in hash order).
fn info_entry(frame: &Frame, served: Option<&[String]>) -> Frame {
    let Frame::Array(fields) = frame else { return frame.clone() };
    let mut fields = fields.clone();
    if let Some(Frame::Array(subs)) = fields.get_mut(9) {
        subs.retain(|sub| served.is_none_or(|served| served.contains(&entry_name(sub))));
        subs.sort_by_key(entry_name);
        for sub in subs.iter_mut() {
            *sub = info_entry(sub, None);
        }
    }
    Frame::Array(fields)
}

fn entry_name(entry: &Frame) -> String {
    match entry {
        Frame::Array(fields) => fields.first().map(text).unwrap_or_default(),
        other => show(other),
    }
}

/// The subcommand names of a `COMMAND INFO` entry.
fn sub_names(entry: &Frame) -> Vec<String> {
    match entry {
        Frame::Array(fields) => match fields.get(9) {
            Some(Frame::Array(subs)) => subs.iter().map(entry_name).collect(),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// A `COMMAND DOCS` reply (name → docs, as a map or a flat array) with every `subcommands` map
/// sorted and Redis' restricted to the ones `served`.
fn docs_reply(frame: &Frame, served: &[String]) -> Vec<(String, Frame)> {
    let mut pairs = pairs(frame);
    for (_, docs) in &mut pairs {
        *docs = docs_entry(docs, served);
    }
    pairs
}

fn docs_entry(docs: &Frame, served: &[String]) -> Frame {
    let fields = pairs(docs);
    let fields: Vec<(String, Frame)> = fields
        .into_iter()
        .map(|(name, value)| {
            if name != "subcommands" {
                return (name, value);
            }
            let mut subs: Vec<(String, Frame)> =
                pairs(&value).into_iter().filter(|(sub, _)| served.contains(sub)).collect();
            subs.sort_by(|a, b| a.0.cmp(&b.0));
            (name, Frame::Array(subs.into_iter().flat_map(|(sub, docs)| [Frame::Bulk(sub.into()), docs]).collect()))
        })
        .collect();
    Frame::Array(fields.into_iter().flat_map(|(name, value)| [Frame::Bulk(name.into()), value]).collect())
}

fn pairs(frame: &Frame) -> Vec<(String, Frame)> {
    match frame {
        Frame::Map(pairs) => pairs.iter().map(|(key, value)| (text(key), value.clone())).collect(),
        Frame::Array(items) => items.chunks(2).map(|pair| (text(&pair[0]), pair[1].clone())).collect(),
        other => panic!("not a map: {}", show(other)),
    }
}

/// For every command both serve: `COMMAND INFO` and `COMMAND DOCS` agree, in RESP2 and RESP3.
#[tokio::test]
async fn info_and_docs_match_redis_for_every_command_both_serve() {
    let mut pair = Pair::start().await;
    let names = our_commands(&mut pair).await;
    assert!(names.len() > 150, "we serve {} commands", names.len());
    let mut compared = 0;
    for resp3 in [false, true] {
        if resp3 {
            pair.resp3().await;
        }
        for name in &names {
            let (theirs, ours) = pair.both(&format!("COMMAND INFO {name}")).await;
            let (Frame::Array(theirs), Frame::Array(ours)) = (&theirs, &ours) else { panic!("COMMAND INFO {name}") };
            if matches!(theirs[0], Frame::Null | Frame::NullBulk) {
                // Codis' own commands: Redis does not have them.
                assert!(name.starts_with("slots") || name == "epoch", "Redis lacks {name}");
                continue;
            }
            let served = sub_names(&ours[0]);
            let (theirs_entry, ours_entry) = (info_entry(&theirs[0], Some(&served)), info_entry(&ours[0], None));
            pair.assert_same(&format!("COMMAND INFO {name}"), &theirs_entry, &ours_entry, Compare::Exact);

            let (theirs, ours) = pair.both(&format!("COMMAND DOCS {name}")).await;
            let served: Vec<String> = served.clone();
            let (theirs_docs, ours_docs) = (docs_reply(&theirs, &served), docs_reply(&ours, &served));
            assert_eq!(
                theirs_docs.iter().map(|(name, docs)| (name.clone(), show(docs))).collect::<Vec<_>>(),
                ours_docs.iter().map(|(name, docs)| (name.clone(), show(docs))).collect::<Vec<_>>(),
                "COMMAND DOCS {name} (resp3: {resp3})"
            );
            assert_eq!(
                theirs_docs, ours_docs,
                "COMMAND DOCS {name}: the same text, not the same frames (resp3: {resp3})"
            );
            compared += 1;
        }
    }
    assert!(compared > 300, "compared {compared}");
}

/// Subcommands by their full names, names Redis does not know, and the forms around them.
#[tokio::test]
async fn info_docs_and_errors_by_name() {
    let mut pair = Pair::start().await;
    for resp3 in [false, true] {
        if resp3 {
            pair.resp3().await;
        }
        pair.check_all(&[
            "COMMAND INFO nosuch",
            "COMMAND INFO get client|kill nosuch GET",
            "COMMAND INFO client|nosuch",
            "COMMAND DOCS nosuch",
            "COMMAND DOCS client|kill config|get",
            "COMMAND HELP",
            "COMMAND COUNT extra",
            "COMMAND nosuch",
            "COMMAND LIST FILTERBY",
            "COMMAND LIST FOO",
            "COMMAND LIST FILTERBY ACLCAT hash extra",
            "COMMAND LIST FILTERBY NOSUCH x",
            "COMMAND LIST FILTERBY ACLCAT nosuch",
            "COMMAND LIST FILTERBY MODULE nosuch",
            "CLIENT NOSUCH",
            "CLIENT",
            "OBJECT nosuch k",
            "CONFIG GET",
            "COMMAND GETKEYS",
            // A full name is no command: `CONFIG|GET` must not reach CONFIG GET.
            "CONFIG|GET GET maxmemory",
            "client|list",
        ])
        .await;
    }
}

/// `COMMAND LIST` with filters: Redis' answer restricted to what we serve is ours.
#[tokio::test]
async fn list_filters_match_redis() {
    let mut pair = Pair::start().await;
    let (_, all) = pair.both("COMMAND LIST").await;
    let Frame::Array(all) = all else { panic!("COMMAND LIST") };
    let served: Vec<String> = all.iter().map(text).collect();
    for filter in [
        "",
        "FILTERBY ACLCAT hash",
        "FILTERBY ACLCAT keyspace",
        "FILTERBY ACLCAT dangerous",
        "FILTERBY PATTERN z*",
        "FILTERBY PATTERN CLIENT*",
        "FILTERBY PATTERN *|*",
    ] {
        let (theirs, ours) = pair.both(&format!("COMMAND LIST {filter}")).await;
        let names = |frame: &Frame, restrict: bool| -> Vec<String> {
            let Frame::Array(names) = frame else { panic!("COMMAND LIST {filter}: {}", show(frame)) };
            let mut names: Vec<String> =
                names.iter().map(text).filter(|name| !restrict || served.contains(name)).collect();
            names.sort();
            names
        };
        let mut ours = names(&ours, false);
        assert!(!ours.is_empty(), "COMMAND LIST {filter}");
        // Codis' own commands: Redis does not have them.
        ours.retain(|name| !name.starts_with("slots") && name != "epoch");
        assert_eq!(names(&theirs, true), ours, "COMMAND LIST {filter}");
    }
    let (_, count) = pair.both("COMMAND COUNT").await;
    let top_level = served.iter().filter(|name| !name.contains('|')).count();
    assert_eq!(count, Frame::Integer(i64::try_from(top_level).expect("a count")));
}

/// `COMMAND GETKEYS` and `GETKEYSANDFLAGS`: key specifications, count arguments that do not
/// parse (Redis falls back to its key-finding functions), variable flags, and every error.
#[tokio::test]
async fn getkeys_matches_redis() {
    let mut pair = Pair::start().await;
    let cases = [
        "GET k",
        "MSET a 1 b 2",
        "MSET a 1 b",
        "DEL a b c",
        "ZUNIONSTORE d 2 a b WEIGHTS 1 2",
        "ZUNIONSTORE d 2abc a b",
        "ZUNIONSTORE d 0 a",
        "ZUNIONSTORE d 3 a b",
        "ZUNIONSTORE d -1 a b",
        // Counts beyond 32 bits: Redis keeps their low 32 bits (an int), both ways of reading.
        "ZUNION 4294967297 a",
        "ZUNIONSTORE d 4294967298 a b",
        "ZUNIONSTORE d 4294967298x a b",
        "ZINTER 2 a b",
        "ZDIFF 1 a",
        "ZINTERCARD 2 a b LIMIT 3",
        "SINTERCARD 2 a b",
        "ZRANGESTORE d s 0 -1",
        "LMPOP 2 a b LEFT",
        "LMPOP 2x a b LEFT",
        "BLMPOP 0 2 a b LEFT",
        "ZMPOP 1 a MIN",
        "BZMPOP 0 1 a MIN",
        "SET k v",
        "SET k v GET",
        "SET k v get EX 10",
        "GETEX k PERSIST",
        "LMOVE a b LEFT RIGHT",
        "BLMOVE a b LEFT RIGHT 0",
        "RPOPLPUSH a b",
        "SMOVE a b m",
        "RENAME a b",
        "COPY a b DB 1",
        "MOVE k 1",
        "BLPOP a b 0",
        "BZPOPMIN a b 0",
        "OBJECT ENCODING k",
        "OBJECT ENCODING",
        "OBJECT HELP",
        "CLIENT KILL x",
        "CLIENT NOSUCH",
        "PING",
        "NOSUCH k",
        "GET",
        "GET a b",
        "WATCH a b",
        "EXISTS a b",
        "RESTORE k 0 x REPLACE",
        "PUBLISH c m",
        "SUBSCRIBE c",
    ];
    for resp3 in [false, true] {
        if resp3 {
            pair.resp3().await;
        }
        for case in cases {
            pair.check(&format!("COMMAND GETKEYS {case}")).await;
            pair.check(&format!("COMMAND GETKEYSANDFLAGS {case}")).await;
        }
    }
}
