//! String commands against redis-server 7.0.

use crate::harness::{Compare, Pair};

#[tokio::test]
async fn set_and_get_with_every_option() {
    let mut pair = Pair::start().await;
    pair.check_all(&[
        "GET k",
        "SET k v",
        "GET k",
        "SET k v2 NX",
        "SET k v3 XX",
        "GET k",
        "SET k v4 GET",
        "SET missing v GET",
        "SET k v5 NX GET",
        "SET k v6 XX GET",
        "SET fresh v XX",
        "SET k v EX 0",
        "SET k v EX -1",
        "SET k v EX x",
        "SET k v PX 0",
        "SET k v NX XX",
        "SET k v EX 10 PX 10",
        "SET k v KEEPTTL EX 10",
        "SET k v EX 10 KEEPTTL",
        "SET k v EX 10 EX 20",
        "SET k v EX",
        "SET k v FOO",
        "SET k v EX 9223372036854775",
        "SET k v PX 9223372036854775807",
        "SET k v EXAT 9223372036854775807",
        "SET k v PXAT 1",
        "GET k",
        "SET k v EX 100",
        "TTL k",
        "SET k w KEEPTTL",
        "TTL k",
        "SET k w",
        "TTL k",
        "SET n 42",
        "OBJECT ENCODING n",
        "SET s 0123",
        "OBJECT ENCODING s",
        "SET long aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "OBJECT ENCODING long",
        "SET neg -9223372036854775808",
        "OBJECT ENCODING neg",
        "SET big 9223372036854775808",
        "OBJECT ENCODING big",
        "GET",
        "SET k",
    ])
    .await;
}

#[tokio::test]
async fn set_variants() {
    let mut pair = Pair::start().await;
    pair.check_all(&[
        "SETNX k a",
        "SETNX k b",
        "GET k",
        "SETEX k 100 v",
        "TTL k",
        "SETEX k 0 v",
        "SETEX k x v",
        "PSETEX k 100000 v",
        "PSETEX k -5 v",
        "GETSET k new",
        "GETSET nothing new",
        "TTL k",
        "GETEX k",
        "GETEX k EX 100",
        "TTL k",
        "GETEX k PERSIST",
        "TTL k",
        "GETEX k PX 50000",
        "GETEX k EX 0",
        "GETEX k PERSIST EX 1",
        "GETEX k FOO",
        "GETEX missing EX 10",
        "GETEX k EXAT 1",
        "EXISTS k",
        "SET k v",
        "GETDEL k",
        "GETDEL k",
        "EXISTS k",
    ])
    .await;
}

#[tokio::test]
async fn multi_key_strings() {
    let mut pair = Pair::start().await;
    pair.check_all(&[
        "MSET a 1 b 2 c 3",
        "MGET a b c d",
        "MSET a 1 b",
        "MSETNX a 1 x 2",
        "MSETNX x 1 y 2",
        "MGET x y",
        "SET {t}1 v",
        "MGET {t}1 {t}2",
    ])
    .await;
}

#[tokio::test]
async fn append_strlen_ranges() {
    let mut pair = Pair::start().await;
    pair.check_all(&[
        "APPEND k hello",
        "APPEND k \" world\"",
        "GET k",
        "STRLEN k",
        "STRLEN missing",
        "OBJECT ENCODING k",
        "APPEND n 123",
        "OBJECT ENCODING n",
        "APPEND n 4",
        "OBJECT ENCODING n",
        "GETRANGE k 0 4",
        "GETRANGE k -5 -1",
        "GETRANGE k -1 -5",
        "GETRANGE k 100 200",
        "GETRANGE k 3 1",
        "GETRANGE k -100 2",
        "GETRANGE missing 0 -1",
        "GETRANGE k x 1",
        "SUBSTR k 0 2",
        "SETRANGE k 6 WORLD",
        "GET k",
        "SETRANGE k 15 !",
        "GET k",
        "SETRANGE fresh 3 abc",
        "GET fresh",
        "SETRANGE empty 3 \"\"",
        "EXISTS empty",
        "SETRANGE k 0 \"\"",
        "SETRANGE k -1 x",
        "SETRANGE k 536870912 x",
        "SET i 100",
        "SETRANGE i 1 5",
        "GET i",
        "OBJECT ENCODING i",
    ])
    .await;
}

#[tokio::test]
async fn counters() {
    let mut pair = Pair::start().await;
    pair.check_all(&[
        "INCR c",
        "INCR c",
        "DECR c",
        "INCRBY c 10",
        "DECRBY c 3",
        "INCRBY c x",
        "INCRBY c 9223372036854775807",
        "DECRBY c -9223372036854775808",
        "SET c 9223372036854775807",
        "INCR c",
        "SET c -9223372036854775808",
        "DECR c",
        "SET s abc",
        "INCR s",
        "SET sp \" 1\"",
        "INCR sp",
        "SET e 100",
        "EXPIRE e 1000",
        "INCR e",
        "TTL e",
        "OBJECT ENCODING e",
        "SET z 0010",
        "INCR z",
    ])
    .await;
}

#[tokio::test]
async fn incrbyfloat_matches_long_double_arithmetic() {
    let mut pair = Pair::start().await;
    pair.check_all(&[
        "INCRBYFLOAT f 0.1",
        "INCRBYFLOAT f 0.2",
        "INCRBYFLOAT f -0.3",
        "INCRBYFLOAT f 1e3",
        "INCRBYFLOAT f 5.0e3",
        "INCRBYFLOAT f 0x10",
        "INCRBYFLOAT f 0x",
        "INCRBYFLOAT f 0x1p1",
        "INCRBYFLOAT f 1e",
        "OBJECT ENCODING f",
        "SET n -9223372036854775797",
        "INCRBYFLOAT n 5.0e3",
        "SET big 1e308",
        "INCRBYFLOAT big 1e308",
        "INCRBYFLOAT f x",
        "INCRBYFLOAT f inf",
        "INCRBYFLOAT f nan",
        "INCRBYFLOAT f \" 1\"",
        "SET s abc",
        "INCRBYFLOAT s 1",
        "INCRBYFLOAT g 3",
        "OBJECT ENCODING g",
        "INCRBYFLOAT g 10.5",
        "INCRBYFLOAT g -13.5",
        "INCRBYFLOAT h 1.23456789012345678",
        "INCRBYFLOAT h 0.000000000000000001",
        "SET e 1.5",
        "EXPIRE e 1000",
        "INCRBYFLOAT e 1",
        "TTL e",
    ])
    .await;
}

#[tokio::test]
async fn bits() {
    let mut pair = Pair::start().await;
    pair.check_all(&[
        "SETBIT b 7 1",
        "SETBIT b 7 0",
        "SETBIT b 100 1",
        "GETBIT b 100",
        "GETBIT b 101",
        "GETBIT b 100000",
        "GETBIT missing 5",
        "STRLEN b",
        "SETBIT b -1 1",
        "SETBIT b x 1",
        "SETBIT b 1 2",
        "SETBIT b 4294967296 1",
        "OBJECT ENCODING b",
        "SET s foobar",
        "BITCOUNT s",
        "BITCOUNT s 0 0",
        "BITCOUNT s 1 1",
        "BITCOUNT s 1 -2",
        "BITCOUNT s 5 30 BIT",
        "BITCOUNT s -10 -1 BIT",
        "BITCOUNT s 0 -1 BYTE",
        "BITCOUNT s 0 -1 FOO",
        "BITCOUNT s 0",
        "BITCOUNT missing 0",
        "BITCOUNT s 3 1",
        "SET p \"\\xff\\xf0\\x00\"",
        "BITPOS p 0",
        "BITPOS p 1",
        "BITPOS p 0 2",
        "BITPOS p 1 2",
        "BITPOS p 0 0 0",
        "BITPOS p 1 2 -1",
        "BITPOS p 0 2 -1",
        "BITPOS p 1 7 15 BIT",
        "BITPOS p 0 7 15 BIT",
        "BITPOS p 0 0 11 BIT",
        "BITPOS p 2",
        "BITPOS missing 0",
        "BITPOS missing 1",
        "SET ones \"\\xff\\xff\"",
        "BITPOS ones 0",
        "BITPOS ones 0 0 -1",
        "BITPOS ones 0 1",
        "SET x abc",
        "SET y \"a\\x00z\"",
        "BITOP AND dest x y",
        "GET dest",
        "BITOP OR dest x y missing",
        "GET dest",
        "BITOP XOR dest x y",
        "GET dest",
        "BITOP NOT dest x",
        "GET dest",
        "BITOP NOT dest x y",
        "BITOP FOO dest x",
        "BITOP AND dest missing1 missing2",
        "EXISTS dest",
    ])
    .await;
}

#[tokio::test]
async fn wrong_types_are_refused() {
    let mut pair = Pair::start().await;
    // Until the collection families land, a wrong type can only be produced by Redis itself; the
    // string commands' own type checks are covered per family as those arrive.
    pair.check_all(&["SET k v", "GET k"]).await;
    let _ = pair.check_with("STRLEN k", Compare::Exact).await;
}

#[tokio::test]
async fn the_same_holds_over_resp3() {
    let mut pair = Pair::start().await;
    pair.resp3().await;
    pair.check_all(&[
        "GET missing",
        "SET k 1",
        "INCR k",
        "MGET k missing",
        "GETEX missing",
        "INCRBYFLOAT f 1.5",
        "SET k v GET",
    ])
    .await;
}

/// Found by the generated sequences.
#[tokio::test]
async fn option_repeats_and_bit_ranges() {
    let mut pair = Pair::start().await;
    pair.check_all(&[
        "SET a 0 KEEPTTL KEEPTTL",
        "SET a 0 KEEPTTL PX 100",
        "SET a 0 PX 100 KEEPTTL",
        "GETEX a PERSIST PERSIST",
        "GETEX a PERSIST EX 10",
        "GETEX a EX 10 PERSIST",
        "SET a 1",
        "BITCOUNT a -1 -10",
        "BITCOUNT a -1 -10 FOO",
        "BITCOUNT a -1 -10 BIT",
        "BITCOUNT a -10 -1",
        "BITCOUNT a -1 -1",
        "BITCOUNT missing -1 -10",
    ])
    .await;
}
