//! The echo node of the `ping` scenario, unchanged, on real sockets with the production backend:
//! the same generic component code runs in both worlds.

use std::time::Duration;

use net::{Env, TokioEnv};
use resp::{Connection, Frame, Limits, Request};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_node_serves_real_clients() {
    let env = TokioEnv::with_seed(5);
    // Find a free port, then serve on it.
    let port = {
        let probe = env.bind("127.0.0.1:0").await.unwrap();
        net::Listener::local_addr(&probe).unwrap().port()
    };
    let addr = format!("127.0.0.1:{port}");
    let server = env.spawn({
        let (env, addr) = (env.clone(), addr.clone());
        async move { scenarios::echo::serve(env, &addr).await }
    });

    let mut connection = loop {
        match env.connect(&addr, Duration::from_secs(1)).await {
            Ok(stream) => break Connection::new(stream, Limits::default()),
            Err(_) => tokio::task::yield_now().await,
        }
    };
    // A pipeline of three, answered in order.
    connection.write_request(&Request::from_args(["PING"]));
    connection.write_request(&Request::from_args(["ECHO", "over real tcp"]));
    connection.write_request(&Request::from_args(["NOPE"]));
    connection.flush().await.unwrap();
    assert_eq!(connection.read_frame().await.unwrap(), Some(Frame::simple("PONG")));
    assert_eq!(connection.read_frame().await.unwrap(), Some(Frame::bulk("over real tcp")));
    assert_eq!(
        connection.read_frame().await.unwrap(),
        Some(Frame::error("ERR unknown command 'NOPE', with args beginning with: "))
    );
    server.abort();
}
