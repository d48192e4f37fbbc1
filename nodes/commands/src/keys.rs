//! Finding a request's keys, as Redis 7.0 does: by the command's key specifications, or — when
//! they cannot say (incomplete specifications, flags that depend on the arguments, a count that
//! does not parse) — by the command's own key-finding function.
//!
//! `COMMAND GETKEYS`, migration's write fences and the proxy's routing all use this, so they
//! agree on what a request's keys are.

use crate::{BeginSearch, Command, FindKeys, KeyFlags};

/// A request's arguments, the name first.
pub trait Args {
    /// How many there are, the name included.
    fn count(&self) -> usize;
    /// The argument at `index` (`index < count()`).
    fn get(&self, index: usize) -> &[u8];
}

impl<T: AsRef<[u8]>> Args for [T] {
    fn count(&self) -> usize {
        self.len()
    }

    fn get(&self, index: usize) -> &[u8] {
        self[index].as_ref()
    }
}

impl Args for resp::Request {
    fn count(&self) -> usize {
        self.len()
    }

    fn get(&self, index: usize) -> &[u8] {
        self.arg(index).unwrap_or_default()
    }
}

/// One key of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyRef {
    /// Its argument index.
    pub position: usize,
    /// How it is accessed (empty when a key-finding function does not say).
    pub flags: KeyFlags,
}

/// Why key specifications could not find a request's keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeysError;

/// A command's own key-finding function (Redis' `getkeys_proc`), for what key specifications
/// cannot say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GetKeys {
    /// A count, then keys, with an optional destination before the count (`ZUNIONSTORE`, `EVAL`,
    /// `LMPOP`): positions of the destination (0: none), the count and the first key, and the
    /// step.
    Numkeys {
        /// The destination key's index, or 0.
        store: usize,
        /// The count's index.
        count: usize,
        /// The first key's index.
        first: usize,
        /// Distance between keys.
        step: usize,
    },
    /// `SORT key … [STORE destination]`.
    Sort,
    /// `SORT_RO key …`.
    SortRo,
    /// `MIGRATE host port key|"" … [KEYS key …]`.
    Migrate,
    /// `GEORADIUS[BYMEMBER] key … [STORE|STOREDIST key]`.
    Georadius,
    /// `XREAD[GROUP] … STREAMS key … id …`.
    Xread,
    /// `SET key value … [GET]`: read and written with `GET`, overwritten without.
    Set,
    /// `BITFIELD key …`: read-only when every operation is a `GET`.
    Bitfield,
}

impl GetKeys {
    /// The function named as Redis names it (`zunionInterDiffStoreGetKeys`).
    pub fn parse(name: &str) -> Option<GetKeys> {
        let numkeys = |store, count, first| GetKeys::Numkeys { store, count, first, step: 1 };
        Some(match name {
            "sintercardGetKeys" | "zunionInterDiffGetKeys" | "lmpopGetKeys" | "zmpopGetKeys" => numkeys(0, 1, 2),
            "zunionInterDiffStoreGetKeys" => numkeys(1, 2, 3),
            "evalGetKeys" | "functionGetKeys" | "blmpopGetKeys" | "bzmpopGetKeys" => numkeys(0, 2, 3),
            "sortGetKeys" => GetKeys::Sort,
            "sortROGetKeys" => GetKeys::SortRo,
            "migrateGetKeys" => GetKeys::Migrate,
            "georadiusGetKeys" => GetKeys::Georadius,
            "xreadGetKeys" => GetKeys::Xread,
            "setGetKeys" => GetKeys::Set,
            "bitfieldGetKeys" => GetKeys::Bitfield,
            _ => return None,
        })
    }

    /// The keys of `args` by this function.
    pub fn keys(self, args: &(impl Args + ?Sized)) -> Vec<KeyRef> {
        let argc = args.count();
        let key = |position: usize, flags: KeyFlags| KeyRef { position, flags };
        let is = |index: usize, word: &str| index < argc && args.get(index).eq_ignore_ascii_case(word.as_bytes());
        match self {
            GetKeys::Numkeys { store, count, first, step } => {
                if count >= argc {
                    return Vec::new();
                }
                // C's atoi returns an int: the low 32 bits of what strtol read.
                let num = i64::from(atoi(args.get(count)) as i32);
                let room = argc.saturating_sub(first) / step.max(1);
                if num < 1 || usize::try_from(num).map_or(true, |num| num > room) {
                    return Vec::new();
                }
                let num = usize::try_from(num).unwrap_or_default();
                let mut keys: Vec<KeyRef> = (0..num).map(|index| key(first + index * step, KeyFlags::NONE)).collect();
                if store != 0 {
                    keys.push(key(store, KeyFlags::NONE));
                }
                keys
            }
            GetKeys::SortRo => vec![key(1, KeyFlags::RO.with(KeyFlags::ACCESS))],
            GetKeys::Sort => {
                let mut keys = vec![key(1, KeyFlags::RO.with(KeyFlags::ACCESS))];
                let mut store = None;
                let mut index = 2;
                while index < argc {
                    // Options take 0 arguments unless listed; the last STORE wins, as in SORT.
                    if is(index, "limit") {
                        index += 2;
                    } else if is(index, "get") || is(index, "by") {
                        index += 1;
                    } else if is(index, "store") && index + 1 < argc {
                        store = Some(index + 1);
                    }
                    index += 1;
                }
                keys.extend(store.map(|position| key(position, KeyFlags::OW.with(KeyFlags::UPDATE))));
                keys
            }
            GetKeys::Migrate => {
                let (mut first, mut num) = (3, 1);
                if argc > 6 {
                    let mut index = 6;
                    while index < argc {
                        if is(index, "keys") {
                            if args.get(3).is_empty() {
                                first = index + 1;
                                num = argc - first;
                            } else {
                                // A syntax error MIGRATE reports itself.
                                num = 0;
                            }
                            break;
                        }
                        if is(index, "auth") {
                            index += 1;
                        } else if is(index, "auth2") {
                            index += 2;
                        }
                        index += 1;
                    }
                }
                let flags = KeyFlags::RW.with(KeyFlags::ACCESS).with(KeyFlags::DELETE);
                (0..num).map(|offset| key(first + offset, flags)).filter(|key| key.position < argc).collect()
            }
            GetKeys::Georadius => {
                let mut stored = None;
                let mut index = 5;
                while index < argc {
                    if (is(index, "store") || is(index, "storedist")) && index + 1 < argc {
                        stored = Some(index + 1);
                        index += 1;
                    }
                    index += 1;
                }
                std::iter::once(1).chain(stored).map(|position| key(position, KeyFlags::NONE)).collect()
            }
            GetKeys::Xread => {
                let mut streams = None;
                let mut index = 1;
                while index < argc {
                    if is(index, "block") || is(index, "count") {
                        index += 1;
                    } else if is(index, "group") {
                        index += 2;
                    } else if is(index, "noack") {
                    } else if is(index, "streams") {
                        streams = Some(index);
                        break;
                    } else {
                        break;
                    }
                    index += 1;
                }
                let Some(streams) = streams else { return Vec::new() };
                let num = argc - streams - 1;
                if num == 0 || !num.is_multiple_of(2) {
                    return Vec::new();
                }
                (streams + 1..argc - num / 2).map(|position| key(position, KeyFlags::NONE)).collect()
            }
            GetKeys::Set => {
                let get = (3..argc).any(|index| args.get(index).eq_ignore_ascii_case(b"get"));
                let flags = if get {
                    KeyFlags::RW.with(KeyFlags::ACCESS).with(KeyFlags::UPDATE)
                } else {
                    KeyFlags::OW.with(KeyFlags::UPDATE)
                };
                vec![key(1, flags)]
            }
            GetKeys::Bitfield => {
                let mut readonly = true;
                let mut index = 2;
                while index < argc {
                    let remaining = argc - index - 1;
                    if is(index, "get") && remaining >= 2 {
                        index += 2;
                    } else if (is(index, "set") || is(index, "incrby")) && remaining >= 3 {
                        readonly = false;
                        break;
                    } else if is(index, "overflow") && remaining >= 1 {
                        index += 1;
                    } else {
                        // A syntax error: safer to call it a write.
                        readonly = false;
                        break;
                    }
                    index += 1;
                }
                let flags = if readonly {
                    KeyFlags::RO.with(KeyFlags::ACCESS)
                } else {
                    KeyFlags::RW.with(KeyFlags::ACCESS).with(KeyFlags::UPDATE)
                };
                vec![key(1, flags)]
            }
        }
    }
}

/// C's `atoi`: leading blanks, a sign, digits up to the first non-digit; 0 when there are none.
fn atoi(text: &[u8]) -> i64 {
    let text = &text[text.iter().take_while(|byte| byte.is_ascii_whitespace()).count()..];
    let (negative, digits) = match text.first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let value = digits
        .iter()
        .take_while(|byte| byte.is_ascii_digit())
        .fold(0i64, |value, digit| value.saturating_mul(10).saturating_add(i64::from(digit - b'0')));
    if negative { -value } else { value }
}

impl Command {
    /// Whether the command can have keys at all (`COMMAND GETKEYS` refuses one that cannot).
    pub fn has_keys(&self) -> bool {
        self.get_keys.is_some() || self.key_specs.iter().any(|spec| !spec.flags.contains(KeyFlags::NOT_KEY))
    }

    /// The keys of `args` (the name first, and the subcommand for a subcommand), in Redis 7.0's
    /// order: by the key specifications when they can say, else by the key-finding function.
    pub fn keys(&self, args: &(impl Args + ?Sized)) -> Vec<KeyRef> {
        let has_spec = self.key_specs.iter().any(|spec| !spec.flags.contains(KeyFlags::NOT_KEY));
        let variable = self.key_specs.iter().any(|spec| spec.flags.contains(KeyFlags::VARIABLE_FLAGS));
        if has_spec
            && !variable
            && let Ok(keys) = self.keys_by_specs(args)
        {
            return keys;
        }
        self.get_keys.map(|function| function.keys(args)).unwrap_or_default()
    }

    /// The first key's index, for routing: most commands name it at a fixed place, found
    /// without building the whole list. (A malformed request may be routed by an argument
    /// `keys` would not call a key: its server refuses it anyway.)
    pub fn first_key(&self, args: &(impl Args + ?Sized)) -> Option<usize> {
        let unreliable = KeyFlags::NOT_KEY.with(KeyFlags::VARIABLE_FLAGS).with(KeyFlags::INCOMPLETE);
        if self.get_keys.is_none()
            && let Some(spec) = self.key_specs.first()
            && let (BeginSearch::Index { index }, FindKeys::Range { .. }) = (&spec.begin_search, &spec.find_keys)
            && !spec.flags.intersects(unreliable)
        {
            return usize::try_from(*index).ok().filter(|index| *index < args.count());
        }
        self.keys(args).first().map(|key| key.position)
    }

    /// Redis' `getKeysUsingKeySpecs`: every specification's keys, or an error when one cannot be
    /// followed (an unknown or incomplete specification, a count that does not parse, a range
    /// outside the arguments).
    pub fn keys_by_specs(&self, args: &(impl Args + ?Sized)) -> Result<Vec<KeyRef>, KeysError> {
        let argc = i64::try_from(args.count()).unwrap_or(i64::MAX);
        let mut keys = Vec::new();
        for spec in &self.key_specs {
            if spec.flags.contains(KeyFlags::NOT_KEY) {
                continue;
            }
            let mut first = match &spec.begin_search {
                BeginSearch::Index { index } => *index,
                BeginSearch::Keyword { keyword, startfrom } => {
                    match find_keyword(args, argc, keyword.as_bytes(), *startfrom) {
                        Some(found) => found + 1,
                        None => continue,
                    }
                }
                BeginSearch::Unknown {} => return Err(KeysError),
            };
            let (last, step) = match spec.find_keys {
                FindKeys::Range { lastkey, keystep, limit } => {
                    let last = if lastkey >= 0 {
                        first + lastkey
                    } else if limit == 0 {
                        argc + lastkey
                    } else {
                        first + ((argc - first) / limit + lastkey)
                    };
                    (last, keystep)
                }
                FindKeys::Keynum { keynumidx, firstkey, keystep } => {
                    let at = first + keynumidx;
                    if keynumidx >= argc || at >= argc {
                        return Err(KeysError);
                    }
                    let count = usize::try_from(at).map_err(|_| KeysError)?;
                    let numkeys = parse_i64(args.get(count)).filter(|numkeys| *numkeys >= 0).ok_or(KeysError)?;
                    first += firstkey;
                    // Redis adds `(int)numkeys`: the low 32 bits.
                    (first + i64::from(numkeys as i32) - 1, keystep)
                }
                FindKeys::Unknown {} => return Err(KeysError),
            };
            if last >= argc || last < first || first >= argc {
                return Err(KeysError);
            }
            let step = usize::try_from(step.max(1)).unwrap_or(1);
            let (first, last) =
                (usize::try_from(first).map_err(|_| KeysError)?, usize::try_from(last).map_err(|_| KeysError)?);
            keys.extend((first..=last).step_by(step).map(|position| KeyRef { position, flags: spec.flags }));
            if spec.flags.contains(KeyFlags::INCOMPLETE) {
                return Err(KeysError);
            }
        }
        Ok(keys)
    }
}

/// The index of `keyword` searched from `startfrom` (forwards; negative: from the end,
/// backwards), never at the far end of the search, as Redis searches.
fn find_keyword(args: &(impl Args + ?Sized), argc: i64, keyword: &[u8], startfrom: i64) -> Option<i64> {
    let (start, end) = if startfrom > 0 { (startfrom, argc - 1) } else { (argc + startfrom, 1) };
    let forwards = start <= end;
    let mut index = start;
    while index != end {
        if index >= argc || index < 1 {
            return None;
        }
        if args.get(usize::try_from(index).ok()?).eq_ignore_ascii_case(keyword) {
            return Some(index);
        }
        index = if forwards { index + 1 } else { index - 1 };
    }
    None
}

/// Redis' `string2ll`: a strict decimal `i64` (no blanks, no `+`, no leading zeros).
fn parse_i64(text: &[u8]) -> Option<i64> {
    let digits = text.strip_prefix(b"-").unwrap_or(text);
    if digits.is_empty() || (digits.len() > 1 && digits[0] == b'0') || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if text == b"-0" {
        return None;
    }
    std::str::from_utf8(text).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table;

    fn keys(args: &[&str]) -> Vec<(String, Vec<&'static str>)> {
        let command = table().lookup(args[0].as_bytes()).expect("a known command");
        let command = if command.is_container() {
            command.subcommand(args[1].as_bytes()).expect("a known subcommand")
        } else {
            command
        };
        command
            .keys(args)
            .into_iter()
            .map(|key| (args[key.position].to_string(), key.flags.names().collect()))
            .collect()
    }

    fn names(args: &[&str]) -> Vec<String> {
        keys(args).into_iter().map(|(name, _)| name).collect()
    }

    #[test]
    fn keys_by_specification() {
        assert_eq!(keys(&["get", "a"]), vec![("a".to_string(), vec!["RO", "access"])]);
        assert_eq!(names(&["mset", "a", "1", "b", "2"]), ["a", "b"]);
        assert_eq!(names(&["zunionstore", "d", "2", "a", "b", "WEIGHTS", "1", "2"]), ["d", "a", "b"]);
        assert_eq!(names(&["lmove", "a", "b", "LEFT", "RIGHT"]), ["a", "b"]);
        assert_eq!(names(&["object", "encoding", "k"]), ["k"]);
    }

    #[test]
    fn a_count_that_does_not_parse_falls_back_to_the_function() {
        // The specification refuses `2abc`; Redis' function reads it as C's atoi does, and lists
        // the destination last.
        assert_eq!(names(&["zunionstore", "d", "2abc", "a", "b"]), ["a", "b", "d"]);
        assert!(names(&["zunionstore", "d", "0", "a"]).is_empty());
        assert!(names(&["zunionstore", "d", "3", "a", "b"]).is_empty());
    }

    #[test]
    fn variable_flags_come_from_the_function() {
        assert_eq!(keys(&["set", "k", "v"]), vec![("k".to_string(), vec!["OW", "update"])]);
        assert_eq!(keys(&["set", "k", "v", "GET"]), vec![("k".to_string(), vec!["RW", "access", "update"])]);
    }

    #[test]
    fn keywords_are_searched_as_redis_searches() {
        assert_eq!(names(&["xread", "COUNT", "2", "STREAMS", "a", "b", "0", "0"]), ["a", "b"]);
        assert_eq!(names(&["sort", "k", "BY", "w_*", "STORE", "d"]), ["k", "d"]);
        assert_eq!(names(&["migrate", "h", "6379", "", "0", "5", "KEYS", "a", "b"]), ["a", "b"]);
    }

    #[test]
    fn atoi_and_string2ll() {
        assert_eq!(atoi(b" 12x"), 12);
        assert_eq!(atoi(b"-3"), -3);
        assert_eq!(atoi(b"x"), 0);
        assert_eq!(parse_i64(b"12"), Some(12));
        assert_eq!(parse_i64(b"012"), None);
        assert_eq!(parse_i64(b"+1"), None);
        assert_eq!(parse_i64(b""), None);
    }
}
