//! Random interleavings of client input, application commands and timeouts against the server
//! machines: no panic, and the invariants hold — at most one pending poll, buffers within their
//! limits, every ack answered or failed exactly once, no timer in the past, nothing after close.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use bytes::Bytes;
use ferrio_proto::engine::server as eio;
use ferrio_proto::engine::server::SendOptions;
use ferrio_proto::engine::{Frame, Protocol};
use ferrio_proto::socket::server::{AckIds, Config, Connection, Event, Input, Output};
use ferrio_proto::socket::{AckId, Packet};
use ferrio_proto::{Instant, Str};
use proptest::prelude::*;

/// One step: the machine's own input, a poll the driver starts or drops (the driver picks the
/// request ids), time passing, or an application command.
#[derive(Debug, Clone)]
enum Step {
    Input(Input),
    Get,
    Abort,
    Advance(u64),
    AcceptAll,
    RejectAll,
    Emit { volatile: bool },
    EmitWithAck(u64),
    Disconnect,
    Close,
}

const TEXTS: &[&str] = &[
    "40",
    "40/a,",
    "41",
    "41/a,",
    "42[\"x\",1]",
    "4212[\"y\"]",
    "430[1]",
    "431[]",
    "451-[\"b\",{\"_placeholder\":true,\"num\":0}]",
    "3",
    "2",
    "1",
    "4abc",
    "6",
    "5",
    "2probe",
    "40{\"pid\":\"p\"}",
    "40\u{1e}42[\"x\"]",
    "bAQID",
    "",
];

fn text() -> impl Strategy<Value = &'static str> {
    proptest::sample::select(TEXTS)
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => Just(Step::Get),
        1 => Just(Step::Abort),
        3 => text().prop_map(|t| Step::Input(Input::Post {
            body: Some(Bytes::from_static(t.as_bytes())),
            binary: false,
        })),
        3 => text().prop_map(|t| Step::Input(Input::WsFrame(Frame::Text(t.into())))),
        1 => any::<u8>()
            .prop_map(|b| Step::Input(Input::WsFrame(Frame::Binary(Bytes::from(vec![b]))))),
        1 => Just(Step::Input(Input::WsClosed { error: false })),
        1 => Just(Step::Input(Input::UpgradeRequest)),
        2 => prop_oneof![Just("2probe"), Just("5"), Just("4x")]
            .prop_map(|t| Step::Input(Input::ProbeFrame(Frame::Text(t.into())))),
        1 => Just(Step::Input(Input::ProbeClosed)),
        3 => (0u64..400).prop_map(Step::Advance),
        2 => Just(Step::AcceptAll),
        1 => Just(Step::RejectAll),
        2 => any::<bool>().prop_map(|volatile| Step::Emit { volatile }),
        2 => (1u64..500).prop_map(Step::EmitWithAck),
        1 => Just(Step::Disconnect),
        1 => Just(Step::Close),
    ]
}

struct World {
    c: Connection,
    now: u64,
    next_request: u64,
    pending_gets: HashSet<u64>,
    connecting: Vec<Str>,
    joined: HashSet<Str>,
    ids: AckIds,
    acks_waiting: HashSet<(Str, u64)>,
    ack_outcomes: HashMap<(Str, u64), u32>,
    closed: bool,
    max_buffered: usize,
}

impl World {
    fn new(transport: eio::Transport) -> World {
        let max_buffered = 2_000;
        let c = Connection::new(
            Instant::from_millis(0),
            "s".into(),
            Protocol::V4,
            transport,
            eio::Config {
                ping_interval: Duration::from_millis(300),
                ping_timeout: Duration::from_millis(200),
                upgrade_timeout: Duration::from_millis(500),
                max_payload: 64,
                max_buffered_bytes: max_buffered,
                ..eio::Config::default()
            },
            Config {
                connect_timeout: Duration::from_millis(1_000),
                ..Config::default()
            },
        );
        World {
            c,
            now: 0,
            next_request: 0,
            pending_gets: HashSet::new(),
            connecting: Vec::new(),
            joined: HashSet::new(),
            ids: AckIds::default(),
            acks_waiting: HashSet::new(),
            ack_outcomes: HashMap::new(),
            closed: false,
            max_buffered,
        }
    }

    fn t(&self) -> Instant {
        Instant::from_millis(self.now)
    }

    fn drain(&mut self) {
        while let Some(out) = self.c.poll_output() {
            assert!(!self.closed, "output after Closed: {out:?}");
            match out {
                Output::Io(eio::Io::PollResponse { request, .. }) => {
                    assert!(
                        self.pending_gets.remove(&request),
                        "answered a GET that is not pending"
                    );
                }
                Output::Event(Event::Connect { nsp, .. }) => self.connecting.push(nsp),
                Output::Event(Event::Disconnect { nsp, .. }) => {
                    assert!(
                        self.joined.remove(&nsp),
                        "disconnect of a namespace not joined"
                    );
                }
                Output::Event(Event::Ack(p)) => {
                    self.outcome(p.nsp().clone(), p.id().and_then(AckId::as_u64).expect("id"))
                }
                Output::Event(Event::AckFailed { nsp, id, .. }) => self.outcome(nsp, id),
                Output::Event(Event::Closed(_)) => {
                    self.closed = true;
                    assert!(self.joined.is_empty(), "sockets still joined after close");
                }
                _ => {}
            }
        }
        assert!(self.pending_gets.len() <= 1, "more than one pending GET");
        assert!(self.c.engine().buffered_bytes() <= self.max_buffered);
        if self.closed {
            assert!(
                self.pending_gets.is_empty(),
                "a GET left hanging after close"
            );
            assert!(self.c.poll_timeout().is_none());
        }
    }

    fn outcome(&mut self, nsp: Str, id: u64) {
        let key = (nsp, id);
        assert!(
            self.acks_waiting.remove(&key),
            "ack outcome for {key:?} that was not awaited"
        );
        *self.ack_outcomes.entry(key).or_default() += 1;
    }

    fn step(&mut self, s: Step) {
        let now = self.t();
        match s {
            Step::Get => {
                let id = self.next_request;
                self.next_request += 1;
                if self.c.handle_input(now, Input::Poll(id)).is_ok() {
                    self.pending_gets.insert(id);
                }
            }
            Step::Abort => {
                if let Some(&id) = self.pending_gets.iter().next() {
                    self.pending_gets.remove(&id);
                    self.c.handle_input(now, Input::PollAborted(id)).unwrap();
                }
            }
            Step::Input(input) => {
                // POSTs and upgrades may be refused; the other inputs never are.
                let refusable = matches!(input, Input::Post { .. } | Input::UpgradeRequest);
                let result = self.c.handle_input(now, input);
                assert!(refusable || result.is_ok(), "refused: {result:?}");
                assert!(
                    self.c.poll_timeout().is_none_or(|d| d > now),
                    "timer left in the past"
                );
            }
            Step::Advance(ms) => {
                self.now += ms;
                let now = self.t();
                if self.c.poll_timeout().is_some_and(|d| d <= now) {
                    self.c.handle_input(now, Input::Timeout).unwrap();
                    assert!(
                        self.c.poll_timeout().is_none_or(|d| d > now),
                        "timer left in the past"
                    );
                }
            }
            Step::AcceptAll => {
                for nsp in std::mem::take(&mut self.connecting) {
                    if self.c.accept(now, &nsp, "sock", None, []).is_ok() {
                        self.joined.insert(nsp);
                    }
                }
            }
            Step::RejectAll => {
                for nsp in std::mem::take(&mut self.connecting) {
                    let _ = self.c.reject(now, &nsp, "no", None);
                }
            }
            Step::Emit { volatile } => {
                if let Some(nsp) = self.joined.iter().next().cloned() {
                    let p = Packet::event_with(nsp.clone(), "e", &("payload",))
                        .expect("ok")
                        .encode();
                    let _ = self.c.send(
                        now,
                        &p,
                        &nsp,
                        SendOptions {
                            volatile,
                            compress: false,
                        },
                    );
                }
            }
            Step::EmitWithAck(timeout) => {
                if let Some(nsp) = self.joined.iter().next().cloned() {
                    let id = self.ids.next_id();
                    let p = Packet::event_with(nsp.clone(), "q", &())
                        .expect("ok")
                        .with_id(id)
                        .encode();
                    if self
                        .c
                        .emit_with_ack(now, &p, &nsp, id, Duration::from_millis(timeout))
                        .is_ok()
                    {
                        self.acks_waiting.insert((nsp, id));
                    }
                }
            }
            Step::Disconnect => {
                if let Some(nsp) = self.joined.iter().next().cloned() {
                    let _ = self.c.disconnect(now, &nsp);
                }
            }
            Step::Close => self.c.close(
                now,
                ferrio_proto::socket::server::DisconnectReason::ForcedServerClose,
            ),
        }
        self.drain();
    }

    /// Lets every timer run out: each awaited ack must then have exactly one outcome.
    fn finish(&mut self) {
        for _ in 0..100 {
            let Some(deadline) = self.c.poll_timeout() else {
                break;
            };
            self.now = self.now.max(deadline.as_millis());
            self.c.handle_input(self.t(), Input::Timeout).unwrap();
            self.drain();
        }
        assert!(
            self.acks_waiting.is_empty(),
            "acks never answered: {:?}",
            self.acks_waiting
        );
        assert!(self.ack_outcomes.values().all(|&n| n == 1));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, .. ProptestConfig::default() })]

    #[test]
    fn polling_sessions_keep_their_invariants(steps in proptest::collection::vec(step(), 0..60)) {
        let mut w = World::new(eio::Transport::Polling);
        w.drain();
        for s in steps {
            w.step(s);
        }
        w.finish();
    }

    #[test]
    fn websocket_sessions_keep_their_invariants(steps in proptest::collection::vec(step(), 0..60)) {
        let mut w = World::new(eio::Transport::WebSocket);
        w.drain();
        for s in steps {
            w.step(s);
        }
        w.finish();
    }
}
