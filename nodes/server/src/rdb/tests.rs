//! Round trips, Redis' own bytes, legacy encodings, and corrupt input.

use foldhash::fast::FixedState;
use proptest::prelude::*;

use super::*;
use crate::keyspace::{EncodingLimits, Hash, List, Set, Str, ZSet};

const SEED: u64 = 7;

fn options() -> LoadOptions {
    LoadOptions { limits: EncodingLimits::default(), seed: SEED }
}

/// A payload with a valid footer around `object` (type byte and body).
fn seal(object: &[u8]) -> Vec<u8> {
    let mut payload = object.to_vec();
    payload.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64::crc64(&payload);
    payload.extend_from_slice(&crc.to_le_bytes());
    payload
}

/// What a value holds, in a form that compares what matters: contents, encoding, and the order
/// where the encoding makes it observable.
#[derive(Debug, PartialEq)]
enum Shape {
    Str(Vec<u8>, &'static str),
    List(Vec<Vec<u8>>),
    Set(Vec<Vec<u8>>, &'static str),
    ZSet(Vec<(Vec<u8>, u64)>, &'static str),
    Hash(Vec<(Vec<u8>, Vec<u8>)>, &'static str),
}

fn shape(value: &Value) -> Shape {
    match value {
        // A restored string takes the encoding Redis gives a string set whole, whatever the
        // dumped one had (an appended "raw" string of 3 bytes comes back "embstr").
        Value::Str(string) => Shape::Str(string.bytes().to_vec(), Str::from_value(&string.bytes()).encoding()),
        Value::List(list) => Shape::List(list.iter().map(|element| element.to_vec()).collect()),
        Value::Set(set) => {
            let mut members: Vec<Vec<u8>> = set.members().iter().map(|member| member.to_vec()).collect();
            members.sort();
            Shape::Set(members, set.encoding())
        }
        Value::ZSet(zset) => Shape::ZSet(
            zset.iter_from_rank(0, false).map(|(score, member)| (member.to_vec(), score.to_bits())).collect(),
            zset.encoding(),
        ),
        Value::Hash(hash) => {
            let mut pairs: Vec<(Vec<u8>, Vec<u8>)> =
                hash.iter().map(|(field, value)| (field.to_vec(), value.to_vec())).collect();
            if hash.encoding() != "listpack" {
                pairs.sort();
            }
            Shape::Hash(pairs, hash.encoding())
        }
    }
}

fn restore(payload: &[u8]) -> Result<Value, RdbError> {
    restore_payload_with(payload, &options())
}

fn string(text: &[u8]) -> Value {
    Value::Str(Str::from_value(text))
}

#[test]
fn dumps_are_redis_bytes() {
    let limits = EncodingLimits::default();
    // Each expected payload is what redis-server 7.0.15 replied to DUMP after the commands named.
    // SET k hello
    assert_eq!(dump_payload(&string(b"hello")), b"\x00\x05hello\n\x00cr\xdfve4 \n");
    // HSET h a 1
    let mut hash = Hash::new(FixedState::with_seed(SEED));
    hash.insert(b"a", b"1", &limits);
    assert_eq!(
        dump_payload(&Value::Hash(Box::new(hash))),
        b"\x10\x0c\x0c\x00\x00\x00\x02\x00\x81a\x02\x01\x01\xff\n\x00\x84\xa6\x93\xe8\xaa\x17\xe4\xdb"
    );
    // ZADD z 1.5 a 2 b
    let mut zset = ZSet::new(SEED, true);
    zset.insert(b"a", 1.5, &limits);
    zset.insert(b"b", 2.0, &limits);
    assert_eq!(
        dump_payload(&Value::ZSet(Box::new(zset))),
        b"\x11\x14\x14\x00\x00\x00\x04\x00\x81a\x02\x831.5\x04\x81b\x02\x02\x01\xff\n\x00\xfa\x02\xb4%\xaf\x18\x87c"
    );
    // SADD s 1 2 -3
    let mut set = Set::for_member(b"1", SEED);
    for member in [b"1".as_slice(), b"2", b"-3"] {
        set.insert(member, &limits);
    }
    assert_eq!(
        dump_payload(&Value::Set(Box::new(set))),
        b"\x0b\x0e\x02\x00\x00\x00\x03\x00\x00\x00\xfd\xff\x01\x00\x02\x00\n\x00\xd1\xb7\x8e\xd9\xbc\x07\xc2\x7f"
    );
    // RPUSH l a 1
    let mut list = List::default();
    list.push_back(b"a");
    list.push_back(b"1");
    assert_eq!(
        dump_payload(&Value::List(Box::new(list))),
        b"\x12\x01\x02\x0c\x0c\x00\x00\x00\x02\x00\x81a\x02\x01\x01\xff\n\x00\x94\x96+#\xac\x17\xaa\x85"
    );
    // SET k aaaaaaaaaaaaaaaaaaaaaaaaa (25 bytes: compressed)
    assert_eq!(
        dump_payload(&string(&[b'a'; 25])),
        b"\x00\xc3\t\x19\x01aa\xe0\x0c\x00\x01aa\n\x00\xd0\x8dg\x00\x9b\x1b\x83\xb3"
    );
}

#[test]
fn strings_take_integer_encodings() {
    let body = |value: &Value| {
        let mut out = Vec::new();
        write_object(&mut out, value);
        out
    };
    assert_eq!(body(&string(b"-128")), b"\x00\xc0\x80");
    assert_eq!(body(&string(b"300")), b"\x00\xc1\x2c\x01");
    assert_eq!(body(&string(b"-2147483648")), b"\x00\xc2\x00\x00\x00\x80");
    assert_eq!(body(&string(b"2147483648")), b"\x00\x0a2147483648");
    assert_eq!(body(&Value::Str(Str::Embstr(b"12".as_slice().into()))), b"\x00\xc0\x0c", "any canonical integer");
    assert_eq!(body(&string(b"012")), b"\x00\x03012");
    let restored = restore(&dump_payload(&string(b"-9223372036854775808"))).expect("valid");
    assert_eq!(shape(&restored), Shape::Str(b"-9223372036854775808".to_vec(), "int"));
}

#[test]
fn footer_is_checked() {
    let payload = dump_payload(&string(b"hello"));
    assert!(restore(&payload).is_ok());
    assert_eq!(restore(&payload[..9]), Err(RdbError::TooShort(9)));
    let mut flipped = payload.clone();
    flipped[2] ^= 1;
    assert_eq!(restore(&flipped), Err(RdbError::Checksum));
    let mut newer = payload[..payload.len() - 10].to_vec();
    newer.extend_from_slice(&11u16.to_le_bytes());
    let crc = crc64::crc64(&newer);
    newer.extend_from_slice(&crc.to_le_bytes());
    assert_eq!(restore(&newer), Err(RdbError::VersionTooNew(11)));
    assert!(RdbError::Checksum.is_footer() && !RdbError::Truncated.is_footer());
}

#[test]
fn the_object_may_run_into_the_footer_as_in_redis() {
    // Ten zero bytes: version 0, and a CRC of zero over two zero bytes; the object is type 0
    // (string) of length 0, read from the footer itself. Redis restores an empty string.
    assert_eq!(restore(&[0; 10]).map(|value| shape(&value)), Ok(Shape::Str(Vec::new(), "embstr")));
    // Bytes after the object are ignored.
    assert_eq!(restore(&seal(b"\x00\x01xjunk")).map(|value| shape(&value)), Ok(Shape::Str(b"x".to_vec(), "embstr")));
}

#[test]
fn reads_every_legacy_encoding() {
    let list = |elements: &[&[u8]]| Shape::List(elements.iter().map(|element| element.to_vec()).collect());
    // RDB_TYPE_LIST: a length and strings.
    assert_eq!(restore(&seal(b"\x01\x02\x01a\xc0\x05")).map(|value| shape(&value)), Ok(list(&[b"a", b"5"])));
    // RDB_TYPE_LIST_ZIPLIST: "a", 12, 300.
    let ziplist = b"\x14\x00\x00\x00\x0f\x00\x00\x00\x03\x00\x00\x01a\x03\xfd\x02\xc0\x2c\x01\xff";
    let mut object = vec![types::LIST_ZIPLIST, ziplist.len() as u8];
    object.extend_from_slice(ziplist);
    assert_eq!(restore(&seal(&object)).map(|value| shape(&value)), Ok(list(&[b"a", b"12", b"300"])));
    // RDB_TYPE_LIST_QUICKLIST: nodes that are ziplists.
    let mut object = vec![types::LIST_QUICKLIST, 2, ziplist.len() as u8];
    object.extend_from_slice(ziplist);
    object.push(ziplist.len() as u8);
    object.extend_from_slice(ziplist);
    assert_eq!(
        restore(&seal(&object)).map(|value| shape(&value)),
        Ok(list(&[b"a", b"12", b"300", b"a", b"12", b"300"]))
    );
    // RDB_TYPE_HASH_ZIPLIST with the same entries is odd: refused; a pair is read.
    let pair = b"\x12\x00\x00\x00\x0d\x00\x00\x00\x02\x00\x00\x01a\x03\x02bb\xff";
    let mut object = vec![types::HASH_ZIPLIST, pair.len() as u8];
    object.extend_from_slice(pair);
    assert_eq!(
        restore(&seal(&object)).map(|value| shape(&value)),
        Ok(Shape::Hash(vec![(b"a".to_vec(), b"bb".to_vec())], "listpack"))
    );
    let mut object = vec![types::HASH_ZIPLIST, ziplist.len() as u8];
    object.extend_from_slice(ziplist);
    assert!(restore(&seal(&object)).is_err());
    // RDB_TYPE_ZSET_ZIPLIST: member "a", score 12.
    let zset = b"\x10\x00\x00\x00\x0d\x00\x00\x00\x02\x00\x00\x01a\x03\xfd\xff";
    let mut object = vec![types::ZSET_ZIPLIST, zset.len() as u8];
    object.extend_from_slice(zset);
    assert_eq!(
        restore(&seal(&object)).map(|value| shape(&value)),
        Ok(Shape::ZSet(vec![(b"a".to_vec(), 12f64.to_bits())], "listpack"))
    );
    // RDB_TYPE_HASH_ZIPMAP.
    let zipmap = b"\x02\x03foo\x03\x01barX\x01k\x01\x001\xff";
    let mut object = vec![types::HASH_ZIPMAP, zipmap.len() as u8];
    object.extend_from_slice(zipmap);
    assert_eq!(
        restore(&seal(&object)).map(|value| shape(&value)),
        Ok(Shape::Hash(vec![(b"foo".to_vec(), b"bar".to_vec()), (b"k".to_vec(), b"1".to_vec())], "listpack"))
    );
    // RDB_TYPE_SET with integers becomes an intset; RDB_TYPE_HASH a listpack.
    assert_eq!(
        restore(&seal(b"\x02\x02\xc0\x05\x01x")).map(|value| shape(&value)),
        Ok(Shape::Set(vec![b"5".to_vec(), b"x".to_vec()], "hashtable"))
    );
    assert_eq!(
        restore(&seal(b"\x02\x02\xc0\x05\x013")).map(|value| shape(&value)),
        Ok(Shape::Set(vec![b"3".to_vec(), b"5".to_vec()], "intset"))
    );
    assert_eq!(
        restore(&seal(b"\x04\x01\x01f\x01v")).map(|value| shape(&value)),
        Ok(Shape::Hash(vec![(b"f".to_vec(), b"v".to_vec())], "listpack"))
    );
    // A plain quicklist node holds one element as is.
    assert_eq!(restore(&seal(b"\x12\x01\x01\x03abc")).map(|value| shape(&value)), Ok(list(&[b"abc"])));
}

#[test]
fn refuses_what_deep_sanitisation_refuses() {
    let cases: [(&[u8], &str); 12] = [
        (b"\x01\x00", "empty list"),
        (b"\x02\x02\x01a\x01a", "duplicate set member"),
        (b"\x02\x02\xc0\x01\x011", "duplicate integer member"),
        (b"\x04\x02\x01a\x01b\x01a\x01c", "duplicate hash field"),
        (b"\x05\x01\x01a\x00\x00\x00\x00\x00\x00\xf8\x7f", "NaN score"),
        (b"\x0b\x08\x02\x00\x00\x00\x00\x00\x00\x00", "empty intset"),
        (b"\x12\x01\x03\x01a", "unknown container"),
        (b"\x12\x01\x02\x00", "empty node"),
        (b"\x10\x07\x07\x00\x00\x00\x00\x00\xff", "empty hash listpack"),
        (b"\x10\x0a\x0a\x00\x00\x00\x01\x00\x81a\x02\xff", "odd hash listpack"),
        (b"\x11\x0d\x0d\x00\x00\x00\x02\x00\x81a\x02\x81a\x02\xff", "score that is no number"),
        (b"\x00\xc3\x02\x05\x00a", "LZF shorter than claimed"),
    ];
    for (object, what) in cases {
        let result = restore(&seal(object));
        assert!(result.as_ref().is_err_and(|error| !error.is_footer()), "{what}: {result:?}");
    }
}

#[test]
fn loading_follows_the_encoding_thresholds() {
    let small = LoadOptions {
        limits: EncodingLimits { hash_entries: 1, set_intset_entries: 1, zset_entries: 1, ..EncodingLimits::default() },
        seed: SEED,
    };
    let hash = restore_payload_with(&seal(b"\x04\x02\x01a\x011\x01b\x012"), &small).expect("valid");
    assert_eq!(hash.encoding(), "hashtable");
    let set = restore_payload_with(&seal(b"\x02\x02\xc0\x01\xc0\x02"), &small).expect("valid");
    assert_eq!(set.encoding(), "hashtable");
    // A listpack hash keeps a long value (Redis only counts its entries when loading it).
    let mut listpack = listpack::ListpackWriter::new();
    listpack.push(b"f");
    listpack.push(&[b'v'; 100]);
    let mut object = vec![types::HASH_LISTPACK];
    write_string(&mut object, &listpack.finish());
    assert_eq!(restore(&seal(&object)).map(|value| value.encoding()), Ok("listpack"));
    // The same pair written as RDB_TYPE_HASH is converted.
    let mut object = vec![types::HASH, 1, 1, b'f'];
    write_string(&mut object, &[b'v'; 100]);
    assert_eq!(restore(&seal(&object)).map(|value| value.encoding()), Ok("hashtable"));
}

#[test]
fn long_lists_split_into_nodes_of_8_kib() {
    let mut list = List::default();
    for index in 0..3000 {
        list.push_back(format!("element-{index}").as_bytes());
    }
    let payload = dump_payload(&Value::List(Box::new(list)));
    let mut reader = Reader::new(&payload[1..]);
    let nodes = reader.read_len().expect("node count");
    assert!(nodes > 1, "{nodes} nodes");
    for _ in 0..nodes {
        assert_eq!(reader.read_len(), Ok(2));
        let node = reader.read_string().expect("node");
        assert!(node.len() <= 8192);
        assert!(listpack::parse(&node).is_ok());
    }
    let restored = restore(&payload).expect("valid");
    assert!(matches!(restored, Value::List(list) if list.len() == 3000));
}

fn element() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        any::<i64>().prop_map(|int| int.to_string().into_bytes()),
        (0i64..300).prop_map(|int| int.to_string().into_bytes()),
        "[a-c]{0,12}".prop_map(String::into_bytes),
        (1usize..200, "[a-z]{1,3}").prop_map(|(times, unit)| unit.repeat(times).into_bytes()),
        proptest::collection::vec(any::<u8>(), 0..90),
    ]
}

fn score() -> impl Strategy<Value = f64> {
    prop_oneof![
        (-1000i64..1000).prop_map(|int| int as f64),
        any::<f64>().prop_filter("not NaN", |score| !score.is_nan()),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(-0.0),
        Just(0.1),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    let limits = EncodingLimits::default();
    prop_oneof![
        element().prop_map(|bytes| Value::Str(Str::from_value(&bytes))),
        (element(), 0usize..400).prop_map(|(bytes, times)| Value::Str(Str::Raw(bytes.repeat(times.max(1)).into()))),
        proptest::collection::vec(prop_oneof![element(), "[x]{1000,3000}".prop_map(String::into_bytes)], 1..40)
            .prop_map(|elements| {
                let mut list = List::default();
                elements.iter().for_each(|element| list.push_back(element));
                Value::List(Box::new(list))
            }),
        prop_oneof![
            proptest::collection::vec(element(), 1..40),
            proptest::collection::vec(any::<i32>().prop_map(|int| int.to_string().into_bytes()), 1..700),
        ]
        .prop_map(move |members| {
            let mut set = Set::for_member(&members[0], SEED);
            members.iter().for_each(|member| {
                set.insert(member, &limits);
            });
            Value::Set(Box::new(set))
        }),
        proptest::collection::vec((element(), score()), 1..200).prop_map(move |members| {
            let compact = members[0].0.len() <= limits.zset_value;
            let mut zset = ZSet::new(SEED, compact);
            members.iter().for_each(|(member, score)| {
                zset.insert(member, *score, &limits);
            });
            Value::ZSet(Box::new(zset))
        }),
        proptest::collection::vec((element(), element()), 1..80).prop_map(move |pairs| {
            let mut hash = Hash::new(FixedState::with_seed(SEED));
            pairs.iter().for_each(|(field, value)| {
                hash.insert(field, value, &limits);
            });
            Value::Hash(Box::new(hash))
        }),
    ]
}

/// Applies one of a few kinds of damage to `bytes`.
fn damage(bytes: &mut Vec<u8>, kind: u8, at: usize, byte: u8) {
    if bytes.is_empty() {
        return;
    }
    let at = at % bytes.len();
    match kind % 4 {
        0 => bytes[at] = byte,
        1 => bytes[at] ^= 1 << (byte % 8),
        2 => bytes.truncate(at),
        _ => bytes.insert(at, byte),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Whatever we dump restores to the same contents, in the same encoding.
    #[test]
    fn dump_then_restore_is_the_identity(value in value()) {
        let payload = dump_payload(&value);
        let restored = restore(&payload);
        prop_assert!(restored.is_ok(), "{:?}", restored);
        if let Ok(restored) = restored {
            if let Value::Str(string) = &restored {
                prop_assert_eq!(string.encoding(), Str::from_value(&string.bytes()).encoding());
            }
            prop_assert_eq!(shape(&restored), shape(&value));
            prop_assert_eq!(dump_payload(&restored), payload, "dumping again gives the same bytes");
        }
    }

    /// Damaged objects, sealed with a valid footer so that the parser sees them, never panic;
    /// whatever they restore to dumps and restores again.
    #[test]
    fn damaged_payloads_never_panic(
        value in value(),
        damages in proptest::collection::vec((any::<u8>(), any::<usize>(), any::<u8>()), 1..4),
    ) {
        let mut object = Vec::new();
        write_object(&mut object, &value);
        for (kind, at, byte) in damages {
            damage(&mut object, kind, at, byte);
        }
        if let Ok(restored) = restore(&seal(&object)) {
            let again = restore(&dump_payload(&restored));
            prop_assert_eq!(again.map(|value| shape(&value)), Ok(shape(&restored)));
        }
    }

    /// Random bytes, with and without a valid footer.
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = restore(&bytes);
        let _ = restore(&seal(&bytes));
    }
}
