//! Pub/sub against redis-server 7.0: subscriptions, messages in both protocols, the subscribed
//! context of RESP2, introspection, and slow subscribers cut off by the output buffer limit.

use crate::harness::{Compare, Pair};

#[tokio::test]
async fn subscribers_receive_what_is_published() {
    let mut pair = Pair::start().await;
    let mut subscriber = pair.connect().await;
    subscriber.send("SUBSCRIBE news weather").await;
    subscriber.check_reply("subscribe news", Compare::Exact).await;
    subscriber.check_reply("subscribe weather", Compare::Exact).await;
    subscriber.send("PSUBSCRIBE w* n?ws").await;
    subscriber.check_reply("psubscribe w*", Compare::Exact).await;
    subscriber.check_reply("psubscribe n?ws", Compare::Exact).await;
    pair.check_all(&["PUBLISH news hello", "PUBLISH nobody x", "PUBLISH wind gust"]).await;
    subscriber.check_reply("message news", Compare::Exact).await;
    subscriber.check_reply("pmessage n?ws news", Compare::Exact).await;
    subscriber.check_reply("pmessage w* wind", Compare::Exact).await;
    pair.check_all(&["PUBSUB NUMSUB news weather nobody", "PUBSUB NUMPAT", "PUBSUB NUMSUB"]).await;
    pair.check_with("PUBSUB CHANNELS", Compare::Unordered).await;
    pair.check_with("PUBSUB CHANNELS w*", Compare::Unordered).await;
    pair.check_all(&["PUBSUB CHANNELS a b", "PUBSUB NUMPAT x", "PUBSUB FOO", "PUBSUB SHARDCHANNELS", "PUBSUB"]).await;

    subscriber.check_all(&["PING", "PING hi", "GET k", "CLIENT ID", "PING a b"]).await;
    subscriber.send("UNSUBSCRIBE news").await;
    subscriber.check_reply("unsubscribe news", Compare::Exact).await;
    subscriber.send("PUNSUBSCRIBE").await;
    subscriber.check_reply("punsubscribe all", Compare::Kind).await;
    subscriber.check_reply("punsubscribe all", Compare::Kind).await;
    subscriber.send("UNSUBSCRIBE").await;
    subscriber.check_reply("unsubscribe all", Compare::Exact).await;
    subscriber.send("UNSUBSCRIBE").await;
    subscriber.check_reply("unsubscribe none", Compare::Exact).await;
    // Out of the subscribed context, everything is allowed again.
    subscriber.check_all(&["PING", "SET k v", "GET k"]).await;
    pair.check_all(&["PUBLISH news hello", "PUBSUB NUMSUB news", "PUBSUB NUMPAT", "PUBSUB CHANNELS"]).await;
}

#[tokio::test]
async fn resp3_subscribers_get_pushes_and_keep_every_command() {
    let mut pair = Pair::start().await;
    let mut subscriber = pair.connect().await;
    subscriber.resp3().await;
    subscriber.send("SUBSCRIBE ch").await;
    subscriber.check_reply("subscribe", Compare::Exact).await;
    subscriber.check_all(&["SET k v", "GET k", "PING", "PUBSUB NUMSUB ch x", "PUBSUB CHANNELS", "PUBSUB NUMPAT"]).await;
    pair.check("PUBLISH ch one").await;
    subscriber.check_reply("message", Compare::Exact).await;
    // Publishing to itself: the message comes before the reply.
    subscriber.send("PUBLISH ch self").await;
    subscriber.check_reply("message to itself", Compare::Exact).await;
    subscriber.check_reply("PUBLISH reply", Compare::Exact).await;
    // A RESP2 subscriber and a RESP3 one get the same message, each in its protocol.
    let mut plain = pair.connect().await;
    plain.send("PSUBSCRIBE c*").await;
    plain.check_reply("psubscribe", Compare::Exact).await;
    pair.check("PUBLISH ch two").await;
    subscriber.check_reply("message", Compare::Exact).await;
    plain.check_reply("pmessage", Compare::Exact).await;
}

#[tokio::test]
async fn subscribing_inside_a_transaction_and_reset() {
    let mut pair = Pair::start().await;
    let mut subscriber = pair.connect().await;
    subscriber.check_all(&["MULTI", "SUBSCRIBE a", "PING", "EXEC"]).await;
    subscriber.check_all(&["PING", "MULTI", "EXEC", "RESET", "PING"]).await;
    pair.check("PUBSUB NUMSUB a").await;
}

#[tokio::test]
async fn a_subscriber_that_stops_reading_is_dropped() {
    let mut pair = Pair::start().await;
    pair.check("CONFIG SET client-output-buffer-limit pubsub 256kb 0 0").await;
    let mut subscriber = pair.connect().await;
    subscriber.send("SUBSCRIBE firehose").await;
    subscriber.check_reply("subscribe", Compare::Exact).await;
    // The subscriber reads nothing more. Socket buffers absorb a few megabytes; then the
    // server's own buffer passes the limit and the server must drop the subscriber.
    let payload = "x".repeat(64 * 1024);
    let mut dropped = false;
    for _ in 0..2000 {
        let (theirs, ours) = pair.both(&format!("PUBLISH firehose {payload}")).await;
        if theirs == resp::Frame::Integer(0) && ours == resp::Frame::Integer(0) {
            dropped = true;
            break;
        }
    }
    assert!(dropped, "a stalled subscriber was never dropped");
    assert_eq!(subscriber.closed().await, (true, true));
    pair.check_all(&["PUBSUB NUMSUB firehose", "PING"]).await;
}
