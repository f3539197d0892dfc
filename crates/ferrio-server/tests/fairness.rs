//! One client flooding the server does not keep the others from running: the tasks that read a
//! burst and run its handlers yield to the runtime after a bounded amount of work.
//!
//! Each test runs the server and its clients on one thread (tokio's current-thread runtime), so
//! the order in which tasks run is fixed, and asserts an order: a task that became ready while
//! a burst was handled (a task spawned by the first handler, another client's event) runs
//! before the burst's last item is handled. The bursts: events in one polling POST (the socket
//! task's event queue), events in one WebSocket write (the session's WebSocket reads, and the
//! socket's queue), and commands waiting in a session's queue.
//!
//! The bursts have fewer events than a socket's event queue holds ([`EVENT_QUEUE`]): on one
//! thread a larger burst is cut at that bound anyway (the socket's task empties its queue and
//! waits for the session to refill it), while on a multi-threaded runtime the session refills
//! the queue from another thread as fast as the handlers empty it, so nothing but the yield
//! ends the run.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::{patiently, serve, Polling, RawWs};
use ferrio_server::{Ferrio, Message, Socket, EVENT_QUEUE};
use tokio::sync::Notify;

/// The burst's events: fewer than a socket's event queue holds (see the module docs).
const BURST: usize = 200;

#[derive(Default)]
struct Flood {
    /// `flood` events handled.
    handled: AtomicUsize,
    /// What the task spawned by the first handler saw when it ran.
    seen_by_task: Mutex<Option<usize>>,
    /// The last one was handled.
    done: Notify,
}

/// A server whose `/` handles `flood` (the first one spawns a task that notes how many were
/// handled when it runs) and acks `ping` with the number of `flood` events handled so far.
async fn server() -> (std::net::SocketAddr, Arc<Flood>) {
    let flood = Arc::new(Flood::default());
    let io = Ferrio::builder().build();
    let state = flood.clone();
    io.of("/").on_connection(move |socket: Socket| {
        let state = state.clone();
        async move {
            let f = state.clone();
            socket.on("flood", move |_: Socket, _: Message| {
                let f = f.clone();
                async move {
                    let n = f.handled.fetch_add(1, Ordering::SeqCst) + 1;
                    if n == 1 {
                        let f = f.clone();
                        tokio::spawn(async move {
                            let seen = f.handled.load(Ordering::SeqCst);
                            *f.seen_by_task.lock().expect("lock") = Some(seen);
                        });
                    }
                    if n == BURST {
                        f.done.notify_one();
                    }
                }
            });
            let f = state.clone();
            socket.on("ping", move |_: Socket, msg: Message| {
                let f = f.clone();
                async move { msg.ack(&(f.handled.load(Ordering::SeqCst),)) }
            });
        }
    });
    (serve(io).await, flood)
}

fn burst() -> Vec<String> {
    (0..BURST).map(|i| format!(r#"42["flood",{i}]"#)).collect()
}

/// Waits for the burst's last event; what the spawned task saw.
async fn finish(flood: &Flood) -> usize {
    patiently("the burst's last event", flood.done.notified()).await;
    assert_eq!(flood.handled.load(Ordering::SeqCst), BURST);
    // It ran (at the latest) once the handlers were done.
    tokio::task::yield_now().await;
    flood
        .seen_by_task
        .lock()
        .expect("lock")
        .expect("the spawned task ran")
}

const _: () = assert!(BURST < EVENT_QUEUE);

#[tokio::test(flavor = "current_thread")]
async fn a_polling_burst_lets_another_task_run_before_its_last_event() {
    let (addr, flood) = server().await;
    let client = Polling::open(addr).await;
    client.post(&["40"]).await;
    assert!(client.get().await[0].starts_with(r#"40{"sid":"#));
    // All the events in one POST: the session hands them to the socket's queue at once.
    client.post(&burst()).await;
    let seen = finish(&flood).await;
    assert!(
        seen < BURST,
        "the spawned task ran only after all {seen} events"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_websocket_burst_lets_another_client_in_before_its_last_event() {
    let (addr, flood) = server().await;
    let mut flooder = RawWs::open(addr).await;
    flooder.send("40").await;
    assert!(flooder.recv().await.starts_with(r#"40{"sid":"#));
    let mut other = RawWs::open(addr).await;
    other.send("40").await;
    assert!(other.recv().await.starts_with(r#"40{"sid":"#));

    // The burst in one write, then the other client's event: both are there to be read when
    // the server's tasks next run.
    flooder.send_burst(&burst()).await;
    other.send(r#"421["ping"]"#).await;
    let ack = other.recv().await;
    let before: usize = ack
        .strip_prefix("431[")
        .and_then(|s| s.strip_suffix(']'))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not the ping's ack: {ack}"));
    let seen = finish(&flood).await;
    assert!(
        before < BURST,
        "the other client's event was handled only after all {before} of the burst"
    );
    assert!(
        seen < BURST,
        "the spawned task ran only after all {seen} events"
    );
}

/// A burst of commands for one session (here the verdicts of many connect middlewares, which
/// the session applies in its own task) lets a task that became ready meanwhile run before the
/// last one is applied.
#[tokio::test(flavor = "current_thread")]
async fn a_burst_of_commands_lets_another_task_run_before_the_last_is_applied() {
    const NAMESPACES: usize = 1000;
    let joined = Arc::new(AtomicUsize::new(0));
    let seen_by_task = Arc::new(Mutex::new(None));
    let all_joined = Arc::new(Notify::new());
    let io = Ferrio::builder().build();
    for i in 0..NAMESPACES {
        let ns = io.of(&format!("/n{i}"));
        ns.use_connect(|_: Socket| async { Ok(()) });
        let (joined, seen_by_task, all_joined) =
            (joined.clone(), seen_by_task.clone(), all_joined.clone());
        // Room events are reported by the session's task as it accepts each socket.
        ns.on_room_event(move |event| {
            if !matches!(event, ferrio_server::RoomEvent::JoinRoom { .. }) {
                return;
            }
            let n = joined.fetch_add(1, Ordering::SeqCst) + 1;
            if n == 1 {
                let (joined, seen_by_task) = (joined.clone(), seen_by_task.clone());
                tokio::spawn(async move {
                    *seen_by_task.lock().expect("lock") = Some(joined.load(Ordering::SeqCst));
                });
            }
            if n == NAMESPACES {
                all_joined.notify_one();
            }
        });
    }
    let addr = serve(io).await;
    let client = Polling::open(addr).await;
    // One POST: the session starts every middleware run, each sends its verdict to the session
    // once it ran, and the session finds them all waiting in its queue.
    let connects: Vec<String> = (0..NAMESPACES).map(|i| format!("40/n{i},")).collect();
    client.post(&connects).await;
    patiently("every socket", all_joined.notified()).await;
    tokio::task::yield_now().await;
    let seen = seen_by_task
        .lock()
        .expect("lock")
        .expect("the spawned task ran");
    assert!(
        seen < NAMESPACES,
        "the spawned task ran only after all {seen} sockets joined"
    );
}
