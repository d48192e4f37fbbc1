//! Connection commands and protocol handling against redis-server 7.0.

use crate::harness::{Compare, Pair};

#[tokio::test]
async fn connection_commands() {
    let mut pair = Pair::start().await;
    pair.check_all(&[
        "PING",
        "PING hello",
        "PING a b",
        "ECHO x",
        "ECHO",
        "AUTH x",
        "AUTH a b c",
        "AUTH default x",
        "HELLO 4",
        "HELLO x",
        "HELLO 2 SETNAME",
        "HELLO 2 FOO",
        "CLIENT SETNAME \"a b\"",
        "CLIENT SETNAME good",
        "CLIENT GETNAME",
        "CLIENT FOO",
        "CLIENT KILL ID 999999",
        "CLIENT KILL 1.2.3.4:5",
        "CLIENT KILL FOO bar",
        "CLIENT GETNAME x",
        "NOSUCHCOMMAND a b",
        "nosuchcommand",
        "RESET",
        "CLIENT GETNAME",
    ])
    .await;
    pair.check_with("CLIENT ID", Compare::Kind).await;
    pair.check_with("CLIENT LIST", Compare::Kind).await;
    pair.check_with("CLIENT INFO", Compare::Kind).await;
    pair.check_with("TIME", Compare::Kind).await;
    pair.check_with("COMMAND COUNT", Compare::Kind).await;
}

#[tokio::test]
async fn passwords() {
    let mut pair = Pair::start_with(
        &["--requirepass", "secret"],
        server::ServerConfig { requirepass: "secret".into(), ..server::ServerConfig::default() },
    )
    .await;
    pair.check_all(&[
        "GET k",
        "PING",
        "NOSUCH",
        "HELLO 3",
        "AUTH wrong",
        "AUTH default wrong",
        "AUTH other secret",
        "GET k",
        "AUTH secret",
        "GET k",
        "RESET",
        "GET k",
        "AUTH default secret",
        "SET k v",
        "HELLO 2 AUTH default wrong",
    ])
    .await;
}

#[tokio::test]
async fn config_commands() {
    let mut pair = Pair::start().await;
    pair.check_all(&[
        "CONFIG GET save",
        "CONFIG GET appendonly",
        "CONFIG GET timeout",
        "CONFIG GET nosuch",
        "CONFIG SET nosuch 1",
        "CONFIG SET maxclients x",
        "CONFIG SET timeout 10 hz 20",
        "CONFIG GET timeout",
        "CONFIG GET hz",
        "CONFIG SET timeout 0 hz 10",
        "CONFIG SET hz 1000",
        "CONFIG GET hz",
        "CONFIG SET active-expire-effort 11",
        "CONFIG SET timeout",
        "CONFIG SET timeout 1 hz",
        "CONFIG RESETSTAT",
        "CONFIG GET",
        "CONFIG FOO",
        "CONFIG SET databases 4",
        "CONFIG SET requirepass \"\"",
    ])
    .await;
    pair.check_with("CONFIG GET databases requirepass proto-max-bulk-len active-expire-effort", Compare::Pairs).await;
    pair.check_with("CONFIG GET active-expire-eff?rt proto-max-bulk-[l]en", Compare::Pairs).await;
}
