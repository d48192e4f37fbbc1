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
