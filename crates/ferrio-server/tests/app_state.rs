//! Application state given to the builder reaches every handler, the namespaces and the server
//! without globals or captured clones.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};

use common::{serve, RawWs};
use ferrio_server::{Ferrio, Message, Socket};

/// A counter shared by every connection (a stand-in for a database pool).
struct Visits(AtomicU64);

/// A second value of another type.
struct Greeting(&'static str);

#[tokio::test]
async fn state_reaches_handlers_namespaces_and_the_server() {
    let io = Ferrio::builder()
        .state(Visits(AtomicU64::new(0)))
        .state(Greeting("hello"))
        .build();
    io.on_connection(|socket: Socket| async move {
        socket.on("visit", |s: Socket, msg: Message| async move {
            let visits = s.state::<Visits>().expect("the builder's Visits");
            let greeting = s.state::<Greeting>().expect("the builder's Greeting");
            let n = visits.0.fetch_add(1, Ordering::Relaxed) + 1;
            let _ = msg.ack(&(greeting.0, n));
        });
    });
    // a namespace created after the server was built sees it too
    assert!(io.of("/late").state::<Visits>().is_some());
    // a type that was never given is absent
    assert!(io.state::<String>().is_none());

    let addr = serve(io.clone()).await;
    let mut first = RawWs::open(addr).await;
    first.send("40").await;
    assert!(first.recv().await.starts_with("40{"));
    let mut second = RawWs::open(addr).await;
    second.send("40").await;
    assert!(second.recv().await.starts_with("40{"));

    first.send(r#"421["visit"]"#).await;
    assert_eq!(first.recv().await, r#"431["hello",1]"#);
    second.send(r#"427["visit"]"#).await;
    assert_eq!(second.recv().await, r#"437["hello",2]"#);
    // the server's handle reads the same value the handlers changed
    let visits = io.state::<Visits>().expect("the builder's Visits");
    assert_eq!(visits.0.load(Ordering::Relaxed), 2);
}
