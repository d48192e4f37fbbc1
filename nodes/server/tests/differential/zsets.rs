//! Sorted set commands (non-blocking) against redis-server 7.0.

use crate::harness::{Compare, Pair};

#[tokio::test]
async fn zadd_and_scores() {
    let mut pair = Pair::start().await;
    pair.check_all(&[
        "ZADD z NX XX 1 a",
        "ZADD z GT LT 1 a",
        "ZADD z NX GT 1 a",
        "ZADD z INCR 1 a 2 b",
        "ZADD z x a",
        "ZADD z nan a",
        "ZADD z 1 a 2",
        "ZADD z",
        "ZADD z 1 a 2 b 3 c",
        "ZADD z CH 5 a 2 b 9 d",
        "ZADD z INCR 1 a",
        "ZADD z NX INCR 1 a",
        "ZADD z XX INCR 1 zz",
        "ZADD z GT 1 a",
        "ZADD z GT CH 100 a",
        "ZADD z LT CH 100 a",
        "ZADD z XX 7 b 8 new",
        "ZADD missing XX 1 a",
        "EXISTS missing",
        "ZADD missing XX INCR 1 a",
        "ZINCRBY z x a",
        "ZINCRBY z inf a",
        "ZINCRBY z -inf a",
        "ZINCRBY fresh 2.5 m",
        "ZSCORE z a",
        "ZSCORE z zz",
        "ZSCORE missing a",
        "ZMSCORE z a zz b",
        "ZMSCORE missing a",
        "ZADD z +inf inf -inf ninf 0.1 tenth",
        "ZRANGE z 0 -1 WITHSCORES",
        "ZCARD z",
        "ZCARD missing",
        "ZRANK z b",
        "ZREVRANK z b",
        "ZRANK z missing",
        "ZRANK missing a",
        "ZREM z a zz",
        "ZREM missing a",
        "ZADD one 1 x",
        "ZREM one x",
        "EXISTS one",
        "OBJECT ENCODING z",
    ])
    .await;
}

#[tokio::test]
async fn ranges() {
    let mut pair = Pair::start().await;
    pair.check_all(&[
        "ZADD z 1 a 2 b 3 c 4 d 5 e 5 f",
        "ZRANGE z 0 -1",
        "ZRANGE z 1 3 WITHSCORES",
        "ZRANGE z -2 -1",
        "ZRANGE z 4 2",
        "ZRANGE z 0 -1 REV",
        "ZRANGE z (1 +inf BYSCORE LIMIT 1 2",
        "ZRANGE z -inf (3 BYSCORE WITHSCORES",
        "ZRANGE z +inf -inf BYSCORE REV",
        "ZRANGE z 5 2 BYSCORE REV LIMIT 1 10",
        "ZRANGE z 1 5 BYSCORE LIMIT 0 -1",
        "ZRANGE z 1 5 BYSCORE LIMIT -1 2",
        "ZRANGE z [b [d BYLEX",
        "ZRANGE z - + BYLEX",
        "ZRANGE z + - BYLEX REV LIMIT 1 2",
        "ZRANGE z (a (e BYLEX",
        "ZRANGE z 0 -1 LIMIT 0 1",
        "ZRANGE z 0 -1 BYSCORE BYLEX",
        "ZRANGE z a b BYLEX",
        "ZRANGE z - + BYLEX WITHSCORES",
        "ZRANGE z x y BYSCORE",
        "ZRANGE z 0 -1 FOO",
        "ZRANGE missing 0 -1",
        "ZREVRANGE z 0 2 WITHSCORES",
        "ZRANGEBYSCORE z 2 4",
        "ZRANGEBYSCORE z (2 4 WITHSCORES LIMIT 0 1",
        "ZRANGEBYSCORE z x y",
        "ZREVRANGEBYSCORE z 4 2",
        "ZREVRANGEBYSCORE z +inf -inf LIMIT 1 1",
        "ZRANGEBYLEX z - [c",
        "ZRANGEBYLEX z a b",
        "ZREVRANGEBYLEX z + (c",
        "ZRANGEBYLEX z - + WITHSCORES",
        "ZCOUNT z 2 4",
        "ZCOUNT z (2 (4",
        "ZCOUNT z -inf +inf",
        "ZCOUNT z x 1",
        "ZCOUNT missing 0 1",
        "ZLEXCOUNT z - +",
        "ZLEXCOUNT z [b (e",
        "ZLEXCOUNT z a b",
        "ZRANGESTORE dst z 0 1",
        "ZRANGE dst 0 -1 WITHSCORES",
        "ZRANGESTORE dst z 1 3 BYSCORE REV",
        "ZRANGESTORE dst z 0 -1 WITHSCORES",
        "ZRANGESTORE dst missing 0 -1",
        "EXISTS dst",
    ])
    .await;
}

#[tokio::test]
async fn removal_by_range_and_pops() {
    let mut pair = Pair::start().await;
    pair.check_all(&[
        "ZADD z 1 a 2 b 3 c 4 d 5 e 6 f",
        "ZREMRANGEBYRANK z 0 0",
        "ZREMRANGEBYSCORE z (4 5",
        "ZREMRANGEBYLEX z [b [c",
        "ZRANGE z 0 -1",
        "ZREMRANGEBYRANK z x 1",
        "ZREMRANGEBYSCORE missing 0 1",
        "ZREMRANGEBYRANK z 0 -1",
        "EXISTS z",
        "ZADD z 1 a 2 b 3 c 4 d",
        "ZPOPMIN z",
        "ZPOPMAX z",
        "ZPOPMIN z -1",
        "ZPOPMIN missing",
        "ZPOPMIN missing 2",
        "ZPOPMIN z 0",
        "ZPOPMIN z 1 2",
        "ZPOPMAX z 5",
        "EXISTS z",
        "ZADD y 1 a 2 b 3 c",
        "ZMPOP 1 y MIN COUNT 2",
        "ZMPOP 2 missing y MAX",
        "ZMPOP 1 missing MIN",
        "ZMPOP 0 y MIN",
        "ZMPOP 1 y MIDDLE",
        "ZMPOP 1 y MIN COUNT 0",
        "ZMPOP 2 y MIN",
        "SET str v",
        "ZMPOP 1 str MIN",
        "ZPOPMIN str",
    ])
    .await;
}

#[tokio::test]
async fn algebra() {
    let mut pair = Pair::start().await;
    pair.check_all(&[
        "ZADD a 1 x 2 y 3 z",
        "ZADD b 10 y 20 z 30 w",
        "SADD s y w q",
        "ZUNION 2 a b",
        "ZUNION 2 a b WITHSCORES",
        "ZUNION 2 a missing WITHSCORES",
        "ZUNION 2 a b WEIGHTS 2 0.5 WITHSCORES",
        "ZUNION 2 a b AGGREGATE MIN WITHSCORES",
        "ZUNION 2 a b AGGREGATE MAX WITHSCORES",
        "ZUNION 3 a b s WITHSCORES",
        "ZINTER 2 a b WITHSCORES",
        "ZINTER 2 a missing",
        "ZINTER 3 a b s WITHSCORES",
        "ZINTER 2 a b WEIGHTS 1 -1 AGGREGATE SUM WITHSCORES",
        "ZDIFF 2 a b WITHSCORES",
        "ZDIFF 1 a",
        "ZDIFF 2 b s WITHSCORES",
        "ZDIFF 0 a",
        "ZUNION 0 a",
        "ZUNION 3 a b",
        "ZUNION 2 a b WEIGHTS 2",
        "ZUNION 2 a b WEIGHTS 2 x",
        "ZUNION 2 a b AGGREGATE MID",
        "ZDIFF 2 a b WEIGHTS 1 1",
        "ZUNIONSTORE dst 2 a b WEIGHTS 2 1",
        "ZRANGE dst 0 -1 WITHSCORES",
        "ZUNIONSTORE dst 2 a b WITHSCORES",
        "ZINTERSTORE dst 2 a b AGGREGATE MAX",
        "ZRANGE dst 0 -1 WITHSCORES",
        "ZDIFFSTORE dst 2 a a",
        "EXISTS dst",
        "ZINTERCARD 2 a b",
        "ZINTERCARD 2 a b LIMIT 1",
        "ZINTERCARD 1 z LIMIT -1",
        "ZINTERCARD 0 a",
        "ZINTERCARD 3 a b",
        "SET str v",
        "ZUNION 2 a str",
        "ZADD inf1 +inf m",
        "ZADD inf2 -inf m",
        "ZUNION 2 inf1 inf2 WITHSCORES",
        "ZINTER 2 inf1 inf2 WITHSCORES",
    ])
    .await;
}

#[tokio::test]
async fn encodings_random_and_scan() {
    let mut pair = Pair::start().await;
    pair.check_all(&[
        "ZADD z 1 a 2 b 3 c",
        "OBJECT ENCODING z",
        "ZADD long 1 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "OBJECT ENCODING long",
        "ZSCAN z 0",
        "ZSCAN z 0 MATCH b*",
        "ZSCAN z x",
        "ZSCAN missing 0",
        "ZRANDMEMBER missing",
        "ZRANDMEMBER missing 2",
        "ZRANDMEMBER z 0",
        "ZRANDMEMBER z 5",
        "ZRANDMEMBER z 5 WITHSCORES",
        "ZRANDMEMBER z 2 WITHSCORES x",
        "ZRANDMEMBER z x",
        "CONFIG SET zset-max-listpack-entries 2",
        "ZADD small 1 a 2 b",
        "OBJECT ENCODING small",
        "ZADD small 3 c",
        "OBJECT ENCODING small",
    ])
    .await;
    pair.check_with("ZSCAN small 0 COUNT 100", Compare::Kind).await;
}

/// A compact sorted set stores whole scores as integers, so -0 comes back as 0; a skiplist keeps
/// the double. Whether a new set starts compact depends on its first member alone.
#[tokio::test]
async fn negative_zero_follows_the_encoding() {
    let long = "m".repeat(65);
    let mut pair = Pair::start().await;
    pair.check_all(&[
        "ZADD compact -0 a",
        "ZSCORE compact a",
        "ZINCRBY compact -0 a",
        "ZADD compact -0 b",
        "ZRANGE compact 0 -1 WITHSCORES",
        &format!("ZADD converted -0 a 1 {long}"),
        "OBJECT ENCODING converted",
        "ZSCORE converted a",
        &format!("ZADD skiplist 1 {long} -0 a"),
        "OBJECT ENCODING skiplist",
        "ZSCORE skiplist a",
        "ZADD skiplist -0 b",
        "ZSCORE skiplist b",
    ])
    .await;
}

#[tokio::test]
async fn sorted_sets_over_resp3() {
    let mut pair = Pair::start().await;
    pair.resp3().await;
    pair.check_all(&[
        "ZADD z 1 a 2.5 b 3 c",
        "ZSCORE z b",
        "ZMSCORE z a zz",
        "ZINCRBY z 1 a",
        "ZADD z INCR 1 a",
        "ZRANGE z 0 -1 WITHSCORES",
        "ZRANGEBYSCORE z 0 10 WITHSCORES",
        "ZUNION 1 z WITHSCORES",
        "ZRANDMEMBER z 5 WITHSCORES",
        "ZPOPMIN z",
        "ZPOPMIN z 1",
        "ZPOPMAX missing",
        "ZMPOP 1 z MAX",
        "ZMPOP 1 missing MIN",
        "ZSCAN z 0",
    ])
    .await;
}

/// Found by the generated sequences: a compact set stores a zero score as `0`; in a large
/// (skiplist) set `-0` and `0` are equal scores, ordered by member, and a score equal to the
/// current one changes nothing.
#[tokio::test]
async fn negative_zero_scores() {
    let mut pair = Pair::start().await;
    pair.check_all(&[
        "ZADD small -0 a",
        "ZSCORE small a",
        "ZINCRBY small -0 b",
        "ZSCORE small b",
        "ZADD small INCR -0 c",
        "ZRANGE small 0 -1 WITHSCORES",
        "ZUNIONSTORE copy 1 small WEIGHTS -1",
        "ZRANGE copy 0 -1 WITHSCORES",
        "ZUNION 1 small WEIGHTS -1 WITHSCORES",
    ])
    .await;
    pair.check_all(&["CONFIG SET zset-max-listpack-entries 1"]).await;
    pair.check_all(&[
        "ZADD big 1 m1 2 m2",
        "OBJECT ENCODING big",
        "ZADD big 0 a",
        "ZADD big -0 a",
        "ZSCORE big a",
        "ZADD big -0 b",
        "ZSCORE big b",
        "ZADD big 0 b",
        "ZSCORE big b",
        "ZINCRBY big 0 b",
        "ZSCORE big b",
        "ZADD big -0 z0 0 a0",
        "ZRANGEBYSCORE big -1 1 WITHSCORES",
        "ZRANK big z0",
        "ZREM big b",
        "ZRANGE big 0 -1 WITHSCORES",
    ])
    .await;
}

/// Found by the generated sequences: scores are read as Redis' `strtod` reads them (hexadecimal
/// accepted, out of range refused), range bounds as bare `strtod` (empty is 0, overflow is
/// infinity), and a zero score stored compact reads back as `0`.
#[tokio::test]
async fn scores_parse_like_strtod() {
    let mut pair = Pair::start().await;
    pair.check_all(&[
        "ZADD z 1e400 a",
        "ZADD z -1e400 a",
        "ZADD z 1e-400 a",
        "ZADD z 1e-310 b",
        "ZADD z 0x10 c",
        "ZADD z 0X1p4 d",
        "ZADD z -0 o",
        "ZADD z -0.0 p",
        "ZSCORE z o",
        "ZRANGE z 0 -1 WITHSCORES",
        "ZRANGEBYSCORE z \"\" 1",
        "ZRANGEBYSCORE z \" 1\" +inf",
        "ZRANGEBYSCORE z ( +inf",
        "ZRANGEBYSCORE z (1e400 +inf",
        "ZRANGEBYSCORE z 0x10 +inf",
        "ZRANGEBYSCORE z \"1 \" +inf",
        "ZCOUNT z \"\" \"\"",
        "ZCOUNT z -inf 1e-400",
        "ZINCRBY z 1e400 a",
        "ZINCRBY z 0x10 zz",
        "ZINCRBY fresh -0 a",
        "ZSCORE fresh a",
        "ZUNIONSTORE d 1 z WEIGHTS 1e400",
        "ZUNIONSTORE d 1 z WEIGHTS 0x2",
        "ZRANGE d 0 -1 WITHSCORES",
        "SET str v",
        "ZADD str 1e400 m",
    ])
    .await;
}

/// Found by the generated sequences: a lexicographic range over a compact set whose scores
/// differ (members out of lexicographic order, which Redis leaves unspecified) selects what
/// Redis' scan of its listpack selects.
#[tokio::test]
async fn lex_ranges_over_mixed_scores() {
    let mut pair = Pair::start().await;
    pair.check_all(&[
        "ZADD c 0 m 1 2",
        "ZREMRANGEBYLEX c [m +",
        "ZRANGEBYLEX c - +",
        "ZRANGEBYLEX c [2 +",
        "ZREVRANGEBYLEX c + [2",
        "ZREVRANGEBYLEX c + -",
        "ZLEXCOUNT c [1 [n",
        "ZLEXCOUNT c - +",
        "ZADD d 2 a 1 b 0 c",
        "ZRANGEBYLEX d - [b",
        "ZRANGEBYLEX d [b +",
        "ZREVRANGEBYLEX d [b -",
        "ZRANGEBYLEX d (b (a",
        "ZREMRANGEBYLEX d [b [c",
        "ZRANGE d 0 -1 WITHSCORES",
    ])
    .await;
}

/// Found by the generated sequences: Redis reads every input of `ZUNION`/`ZINTER`/… before their
/// options, pops check their argument count first, and scans look the key up first.
#[tokio::test]
async fn sorted_set_checks_in_redis_order() {
    let mut pair = Pair::start().await;
    pair.check_all(&[
        "SET str v",
        "ZADD z 1 a",
        "ZINTERCARD 2 str missing LIMIT -1",
        "ZINTERCARD 1 missing LIMIT x",
        "ZINTERCARD 1 str FOO",
        "ZUNIONSTORE d 1 str WEIGHTS x",
        "ZUNIONSTORE d 1 str FOO",
        "ZUNION 1 str WEIGHTS x",
        "ZUNION 1 z WEIGHTS x",
        "ZPOPMIN z x",
        "ZPOPMIN z -1 x",
        "ZPOPMAX missing x y",
        "ZMPOP 1 z MIN COUNT x",
        "ZSCAN missing 0 x",
        "ZSCAN str 0 x",
        "ZSCAN z 0 x",
    ])
    .await;
}
