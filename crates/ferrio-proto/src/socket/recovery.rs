//! Connection state recovery: the store that keeps, for one namespace, the events recently
//! broadcast and the sessions of recently disconnected sockets, so that a client reconnecting
//! within `max_disconnection_duration` gets back its id, rooms and data, and the events it missed.
//!
//! This is the reference's `SessionAwareAdapter` as a state machine: no timers, no clock. Every
//! call takes `now`; the driver calls [`RecoveryStore::handle_timeout`] at
//! [`RecoveryStore::poll_timeout`] to drop what has expired (the calls that read the store also
//! drop it first, so a late timer never lets anything expired through).
//!
//! # The flow
//!
//! 1. A socket connects: the server remembers [`RecoveryStore::position`], the newest event
//!    stored so far (its *start*: everything after it may concern this socket; [`Admission`]
//!    gives it).
//! 2. Every broadcast (with recovery on, direct emits are broadcasts to the socket's own room)
//!    goes through [`RecoveryStore::record`]: an EVENT without ack id that is not volatile gets
//!    an offset appended as the last element of its data, `42["hello",1]` becoming
//!    `42["hello",1,"MzEo9-6"]`, and is stored with its rooms and except rooms. The client keeps
//!    the last string argument of every event as its offset.
//! 3. The socket disconnects: the server calls [`RecoveryStore::leave`] with its id, private id
//!    (`pid`), rooms, data and start, and the session is kept ([`RecoveryStore::persist`]) if the
//!    reason is recoverable ([`is_recoverable`]).
//! 4. The client reconnects with `{"pid":…,"offset":…}` in its CONNECT auth (no `offset` if it
//!    received no event): [`RecoveryStore::admit`] restores the session
//!    ([`RecoveryStore::restore`]) with the events the client missed, which the server sends
//!    before the CONNECT accept, or starts a fresh one; it also says whether the middlewares run.
//!
//! # Offsets
//!
//! In the format of the reference's `yeast()`: the millisecond of `now` in base 64 with the
//! alphabet `0-9A-Za-z-_`, then `.<n>` (`n` in the same base, from `0`) for the second and later
//! offsets of the same millisecond. They are unique and increasing per store even if `now` goes
//! backwards (the store then keeps counting in its latest millisecond). A driver that counts
//! [`Instant`] from the Unix epoch gets offsets that look exactly like the reference's; any other
//! origin works as well, since offsets only have to be unique within one store's lifetime.
//!
//! # Which events are kept
//!
//! As in the reference: EVENT packets, without ack id (an ack callback cannot be replayed), not
//! volatile. Like the reference, Ferrio also keeps events with binary attachments: the reference
//! tests the type before its encoder turns an event with buffers into a BINARY_EVENT, so it
//! stores them too. The offset goes after the last argument, after any placeholder, which keeps
//! the attachment numbering intact. An event whose data is not a JSON array is not kept.
//!
//! # Two fixes over the reference
//!
//! - **Recovery after zero events.** A client that received no event yet sends no `offset`, and
//!   the reference then does not even try to recover, although the client may have missed events
//!   in flight when its transport died. Ferrio accepts `offset: None` with a known `pid`: the
//!   session carries its start ([`PersistedSession::since`], the newest stored event when the
//!   socket connected), and the missed events are the matching ones stored after it, exactly
//!   those the client could not have seen. After a recovery the start is carried on, so a client
//!   that still has no offset after several reconnections loses nothing. (An offset from before
//!   the session's start, left over in a client whose previous recovery failed, counts as the
//!   start: events from before this session are not replayed.)
//! - **Recovering twice.** The reference keeps a session after restoring it, so two connections
//!   presenting the same `pid` both get its id and its missed events. Ferrio removes the session
//!   on the first restore attempt (successful or not: a refused attempt could never succeed
//!   later, since events only ever leave the store); the recovered socket's session is persisted
//!   again at its next recoverable disconnection.
//!
//! # Bounds
//!
//! Sessions expire `max_disconnection_duration` after the disconnection; events expire
//! `max_disconnection_duration` after they were emitted, and at most
//! [`RecoveryConfig::max_packets`] are kept (the oldest are dropped first). A client whose
//! position (its offset, or its start when it has none) is older than a dropped event cannot
//! recover: it may have missed that event. So a client that received nothing for longer than
//! `max_disconnection_duration` while other events went through the namespace cannot recover,
//! which is also the reference's behaviour for offsets.
//!
//! Costs: `record` O(1) amortised (plus the copy of the event's text); `restore` O(log n) to find
//! the offset plus O(events after it); `persist` O(1); expiry O(1) per expired item. A stored
//! event holds the packet (sharing its text and attachments with what was sent) and its rooms.
//!
//! ```
//! use std::time::Duration;
//! use ferrio_proto::rooms::BroadcastOptions;
//! use ferrio_proto::socket::recovery::{PersistedSession, RecoveryConfig, RecoveryStore};
//! use ferrio_proto::socket::Packet;
//! use ferrio_proto::Instant;
//!
//! let mut store = RecoveryStore::new(RecoveryConfig::default());
//! let t = Instant::from_millis(1_700_000_000_000);
//! let since = store.position(); // socket "abc" connects
//!
//! // io.emit("hello", 1): sent with an offset.
//! let hello = Packet::event_with("/", "hello", &(1,)).unwrap();
//! let sent = store.record(t, &hello, &BroadcastOptions::new()).unwrap();
//! assert_eq!(&**sent.encode().message(), r#"42["hello",1,"OlFvMW0"]"#);
//!
//! // The transport dies before the client got it; the session is kept.
//! store.persist(t, PersistedSession {
//!     sid: "abc".into(), pid: "secret".into(), rooms: vec!["abc".into()], data: None, since,
//! });
//!
//! // The client comes back without an offset: it gets the event it missed.
//! let restored = store.restore(t + Duration::from_secs(5), "secret", None).unwrap();
//! assert_eq!(restored.session.sid, "abc");
//! assert_eq!(restored.missed, [sent]);
//! // The session was handed over: a second connection cannot take it too.
//! assert!(store.restore(t + Duration::from_secs(5), "secret", None).is_none());
//! ```

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use super::server::{DisconnectReason, RecoveryRequest};
use super::{Packet, RawJson};
use crate::rooms::BroadcastOptions;
use crate::{Instant, Str};

/// The disconnect reasons after which a session is kept for recovery, as the reference writes
/// them. The others (`parse error`, `client namespace disconnect`, `server namespace
/// disconnect`, ...) end the session for good.
pub const RECOVERABLE_REASONS: [&str; 6] = [
    "transport error",
    "transport close",
    "forced close",
    "ping timeout",
    "server shutting down",
    "forced server close",
];

/// True if a socket disconnected for `reason` (as the reference writes it) may be recovered.
///
/// ```
/// use ferrio_proto::socket::recovery::is_recoverable;
/// assert!(is_recoverable("ping timeout"));
/// assert!(!is_recoverable("client namespace disconnect"));
/// ```
pub fn is_recoverable(reason: &str) -> bool {
    RECOVERABLE_REASONS.contains(&reason)
}

/// True if connection state recovery keeps this broadcast (and gives it an offset): an EVENT
/// (or BINARY_EVENT) without ack id, not volatile, whose data is a JSON array. The rule of
/// [`RecoveryStore::record`], for a cluster that keeps the events itself (a shared log).
///
/// ```
/// use ferrio_proto::rooms::BroadcastOptions;
/// use ferrio_proto::socket::recovery::is_kept;
/// use ferrio_proto::socket::Packet;
///
/// let hello = Packet::event_with("/", "hello", &(1,)).unwrap();
/// assert!(is_kept(&hello, &BroadcastOptions::new()));
/// let mut volatile = BroadcastOptions::new();
/// volatile.flags.volatile = true;
/// assert!(!is_kept(&hello, &volatile));
/// ```
pub fn is_kept(packet: &Packet, opts: &BroadcastOptions) -> bool {
    packet.kind().is_event()
        && packet.id().is_none()
        && !opts.flags.volatile
        && packet
            .data()
            .is_some_and(|d| d.as_str().trim_start().starts_with('['))
}

/// `packet` with `offset` appended as the last element of its data (after any binary
/// placeholder), as the client expects it; `None` if its data is not a JSON array.
///
/// ```
/// use ferrio_proto::socket::recovery::with_offset;
/// use ferrio_proto::socket::Packet;
///
/// let hello = Packet::event_with("/", "hello", &(1,)).unwrap();
/// let sent = with_offset(&hello, "1795357745917-0").unwrap();
/// assert_eq!(&**sent.encode().message(), r#"42["hello",1,"1795357745917-0"]"#);
/// ```
pub fn with_offset(packet: &Packet, offset: &str) -> Option<Packet> {
    let data = packet.data()?.as_str();
    let plain = offset
        .chars()
        .all(|c| c != '"' && c != '\\' && !c.is_control());
    let text = if plain {
        append_offset(data, offset)?
    } else {
        // Written as a JSON string; `append_offset` adds the quotes back.
        let quoted = serde_json::to_string(offset).ok()?;
        let inner = quoted.get(1..quoted.len().saturating_sub(1))?;
        append_offset(data, inner)?
    };
    Some(Packet {
        kind: packet.kind(),
        nsp: packet.nsp().clone(),
        id: packet.id().cloned(),
        data: Some(RawJson::from_trusted(Str::from(text))),
        attachments: packet.attachments().to_vec(),
    })
}

/// True if an event broadcast to `rooms` (every socket when empty) except those in `except`
/// concerns a session whose socket was in `session_rooms`: the rule that decides which stored
/// events a recovered client missed.
///
/// ```
/// use ferrio_proto::socket::recovery::concerns;
/// use ferrio_proto::Str;
///
/// let session: Vec<Str> = vec!["abc".into(), "room1".into()];
/// assert!(concerns(&session, &[], &[]));
/// assert!(concerns(&session, &["room1".into()], &[]));
/// assert!(!concerns(&session, &["room2".into()], &[]));
/// assert!(!concerns(&session, &[], &["room1".into()]));
/// ```
pub fn concerns(session_rooms: &[Str], rooms: &[Str], except: &[Str]) -> bool {
    (rooms.is_empty() || rooms.iter().any(|r| session_rooms.contains(r)))
        && !except.iter().any(|r| session_rooms.contains(r))
}

/// The settings of connection state recovery (the reference's `connectionStateRecovery`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryConfig {
    /// How long a session and the events broadcast are kept after, respectively, the
    /// disconnection and the emission. Default 2 minutes.
    pub max_disconnection_duration: Duration,
    /// Whether a recovered connection skips the namespace middlewares. Default true (see
    /// [`Admission::run_middlewares`]).
    pub skip_middlewares: bool,
    /// The most events kept, a hard cap on memory whatever the traffic. Default 10 000. When it is
    /// reached the oldest event is dropped, and a client whose offset (or start) is older than a
    /// dropped event can no longer recover. 0 keeps nothing: no client can recover.
    pub max_packets: usize,
}

impl Default for RecoveryConfig {
    fn default() -> Self {
        RecoveryConfig {
            max_disconnection_duration: Duration::from_secs(120),
            skip_middlewares: true,
            max_packets: 10_000,
        }
    }
}

/// A place in a store's sequence of events: everything stored after it is newer.
///
/// [`RecoveryStore::position`] gives the newest; [`Position::START`] is before every event. A
/// position is meaningful only for the store that gave it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position(u64);

impl Position {
    /// Before every event: a session with this start is owed every event still stored.
    pub const START: Position = Position(0);
}

/// What the server keeps of a socket that disconnected for a recoverable reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersistedSession {
    /// The socket id, which the recovered socket takes again.
    pub sid: Str,
    /// The private session id the client presents to recover (never shared with other clients).
    pub pid: Str,
    /// The rooms the socket was in, its own id room included.
    pub rooms: Vec<Str>,
    /// The socket's `data`, as JSON.
    pub data: Option<RawJson>,
    /// The socket's start: [`RecoveryStore::position`] when it connected, or, for a socket that
    /// was itself recovered, the `since` of the [`Restored`] session it got. Events after it
    /// are what a client that received no event missed.
    pub since: Position,
}

/// A session handed back by [`RecoveryStore::restore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    /// The session. Its `since` is now the client's position (its offset, or its start if it
    /// had none): keep it as the recovered socket's start, to persist again later.
    pub session: PersistedSession,
    /// The events the client missed, oldest first, with their offsets: send them before the
    /// CONNECT accept.
    pub missed: Vec<Packet>,
}

/// What a CONNECT becomes under connection state recovery: see [`RecoveryStore::admit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    /// The previous session and the events its client missed, when it was recovered: the socket
    /// takes its id and rooms again (`session.sid`, `session.rooms`), and the missed events go
    /// out before the CONNECT accept.
    pub restored: Option<Restored>,
    /// The socket's private id, for its CONNECT accept: the recovered session's, or the fresh
    /// one given.
    pub pid: Str,
    /// The socket's start, to keep for [`RecoveryStore::leave`]: the recovered session's, or
    /// [`RecoveryStore::position`] now.
    pub since: Position,
    /// Whether the namespace's connect middlewares run: not for a recovered socket when
    /// [`RecoveryConfig::skip_middlewares`] is set (the reference's `skipMiddlewares`).
    pub run_middlewares: bool,
}

/// An offset as an ordered key: the millisecond, and 0 for the first offset of that millisecond
/// or `n + 1` for the one written `.<n>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct OffsetKey {
    ms: u64,
    sub: u64,
}

const ALPHABET: &[u8; 64] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_";

/// Appends `n` in the reference's base 64 (most significant digit first, `0` for zero).
fn push_base64(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 11]; // 64 bits are at most 11 digits of 6 bits
    let mut len = 0;
    loop {
        if let (Some(slot), Some(&c)) = (digits.get_mut(len), ALPHABET.get((n % 64) as usize)) {
            *slot = c;
            len += 1;
        }
        n /= 64;
        if n == 0 {
            break;
        }
    }
    out.extend(digits.iter().take(len).rev().map(|&b| char::from(b)));
}

fn parse_base64(s: &str) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.bytes().try_fold(0u64, |n, b| {
        let d = ALPHABET.iter().position(|&c| c == b)?;
        n.checked_mul(64)?.checked_add(d as u64)
    })
}

impl OffsetKey {
    fn format(self) -> String {
        let mut s = String::with_capacity(16);
        push_base64(&mut s, self.ms);
        if let Some(n) = self.sub.checked_sub(1) {
            s.push('.');
            push_base64(&mut s, n);
        }
        s
    }

    /// The key of an offset this module formats; `None` for any other string (including
    /// another spelling of the same numbers, such as a leading `0`).
    fn parse(s: &str) -> Option<OffsetKey> {
        let key = match s.split_once('.') {
            Some((ms, n)) => OffsetKey {
                ms: parse_base64(ms)?,
                sub: parse_base64(n)?.checked_add(1)?,
            },
            None => OffsetKey {
                ms: parse_base64(s)?,
                sub: 0,
            },
        };
        (key.format() == s).then_some(key)
    }
}

/// `data` with `offset` appended as a JSON string after its last element, if `data` is an array.
fn append_offset(data: &str, offset: &str) -> Option<String> {
    let ws = |c: char| matches!(c, ' ' | '\t' | '\n' | '\r');
    let data = data.trim_matches(ws);
    if !data.starts_with('[') {
        return None;
    }
    let head = data.strip_suffix(']')?.trim_end_matches(ws);
    let mut out = String::with_capacity(head.len() + offset.len() + 4);
    out.push_str(head);
    // `head` ends with `[` only for an empty array: any element ends with another character.
    if head != "[" {
        out.push(',');
    }
    out.push('"');
    out.push_str(offset); // the alphabet needs no escaping
    out.push_str("\"]");
    Some(out)
}

#[derive(Debug, Clone)]
struct StoredPacket {
    key: OffsetKey,
    emitted_at: Instant,
    rooms: Box<[Str]>,
    except: Box<[Str]>,
    packet: Packet,
}

impl StoredPacket {
    /// The reference's `shouldIncludePacket`.
    fn concerns(&self, session_rooms: &HashSet<&str>) -> bool {
        (self.rooms.is_empty()
            || self
                .rooms
                .iter()
                .any(|r| session_rooms.contains(r.as_str())))
            && !self
                .except
                .iter()
                .any(|r| session_rooms.contains(r.as_str()))
    }
}

#[derive(Debug, Clone)]
struct StoredSession {
    session: PersistedSession,
    /// Tells this persist apart from an earlier one of the same pid in the expiry queue.
    generation: u64,
}

/// The connection state recovery store of one namespace. See the [module documentation](self).
#[derive(Debug, Clone)]
pub struct RecoveryStore {
    config: RecoveryConfig,
    /// Stored events, oldest first; `packets[i]` has sequence number `dropped + 1 + i`.
    packets: VecDeque<StoredPacket>,
    /// The sequence number of the newest event dropped (0: none yet).
    dropped: u64,
    /// The key of the newest offset issued.
    last_key: Option<OffsetKey>,
    sessions: HashMap<Str, StoredSession>,
    /// `(disconnected_at, pid, generation)` in persist order; entries whose session was
    /// restored or persisted again are skipped when they come up.
    expiry: VecDeque<(Instant, Str, u64)>,
    generation: u64,
    last_persist: Instant,
}

impl RecoveryStore {
    /// An empty store.
    pub fn new(config: RecoveryConfig) -> RecoveryStore {
        RecoveryStore {
            config,
            packets: VecDeque::new(),
            dropped: 0,
            last_key: None,
            sessions: HashMap::new(),
            expiry: VecDeque::new(),
            generation: 0,
            last_persist: Instant::default(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &RecoveryConfig {
        &self.config
    }

    /// The newest event stored so far: take it as the start of a socket that connects now.
    pub fn position(&self) -> Position {
        Position(self.newest())
    }

    fn newest(&self) -> u64 {
        self.dropped.saturating_add(self.packets.len() as u64)
    }

    /// The number of events stored.
    pub fn packet_count(&self) -> usize {
        self.packets.len()
    }

    /// The number of sessions waiting for their client.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Stores a broadcast event for recovery and returns it with its offset appended, to be sent
    /// instead of `packet`; `None` if it is not kept (not an EVENT or BINARY_EVENT, has an ack id,
    /// volatile, or data that is not an array), in which case `packet` is sent unchanged.
    ///
    /// `opts` are the broadcast's options: their rooms and except rooms decide which recovered
    /// sessions get the event.
    pub fn record(
        &mut self,
        now: Instant,
        packet: &Packet,
        opts: &BroadcastOptions,
    ) -> Option<Packet> {
        if !packet.kind().is_event() || packet.id().is_some() || opts.flags.volatile {
            return None;
        }
        let data = packet.data()?.as_str();
        // Checked before an offset is issued, so that a refused packet leaves no gap.
        if !data.trim_start().starts_with('[') {
            return None;
        }
        self.expire_packets(now);
        let key = self.next_key(now);
        let text = append_offset(data, &key.format())?;
        let sent = Packet {
            kind: packet.kind(),
            nsp: packet.nsp().clone(),
            id: None,
            data: Some(RawJson::from_trusted(Str::from(text))),
            attachments: packet.attachments().to_vec(),
        };
        self.packets.push_back(StoredPacket {
            key,
            emitted_at: Instant::from_millis(key.ms),
            rooms: opts.rooms.iter().cloned().collect(),
            except: opts.except.iter().cloned().collect(),
            packet: sent.clone(),
        });
        while self.packets.len() > self.config.max_packets {
            self.drop_oldest();
        }
        Some(sent)
    }

    /// The key of a new offset: the millisecond of `now`, or the latest one if `now` is not
    /// later, with the next sub-number.
    fn next_key(&mut self, now: Instant) -> OffsetKey {
        let ms = now.as_millis();
        let key = match self.last_key {
            Some(last) if ms <= last.ms => OffsetKey {
                ms: last.ms,
                sub: last.sub.saturating_add(1),
            },
            _ => OffsetKey { ms, sub: 0 },
        };
        self.last_key = Some(key);
        key
    }

    fn drop_oldest(&mut self) {
        if self.packets.pop_front().is_some() {
            self.dropped = self.dropped.saturating_add(1);
        }
    }

    /// Keeps the session of a socket that disconnected at `now` for a recoverable reason (see
    /// [`is_recoverable`]), until `now + max_disconnection_duration`. A session already kept under
    /// the same `pid` is replaced.
    pub fn persist(&mut self, now: Instant, session: PersistedSession) {
        self.expire_sessions(now);
        // Kept in order for the expiry queue, even if `now` goes backwards.
        let at = now.max(self.last_persist);
        self.last_persist = at;
        self.generation = self.generation.wrapping_add(1);
        self.expiry
            .push_back((at, session.pid.clone(), self.generation));
        self.sessions.insert(
            session.pid.clone(),
            StoredSession {
                session,
                generation: self.generation,
            },
        );
    }

    /// Admits a CONNECT: when the client asks to recover (`request`, read from its auth by the
    /// connection machine), the session is restored if it can be ([`RecoveryStore::restore`]);
    /// otherwise the socket starts anew with `fresh_pid` (generated by the driver, which owns the
    /// randomness) and the current position. Says whether the middlewares run.
    pub fn admit(
        &mut self,
        now: Instant,
        request: Option<&RecoveryRequest>,
        fresh_pid: Str,
    ) -> Admission {
        let restored = request.and_then(|r| self.restore(now, &r.pid, r.offset.as_deref()));
        match restored {
            Some(restored) => Admission {
                pid: restored.session.pid.clone(),
                since: restored.session.since,
                run_middlewares: !self.config.skip_middlewares,
                restored: Some(restored),
            },
            None => Admission {
                restored: None,
                pid: fresh_pid,
                since: self.position(),
                run_middlewares: true,
            },
        }
    }

    /// A socket left its namespace for `reason`: its session is kept ([`RecoveryStore::persist`])
    /// when the reason is recoverable (see [`is_recoverable`]: the transport failed or closed,
    /// not a disconnection asked for by either side). Returns whether it was kept.
    pub fn leave(
        &mut self,
        now: Instant,
        reason: DisconnectReason,
        session: PersistedSession,
    ) -> bool {
        if !reason.is_recoverable() {
            return false;
        }
        self.persist(now, session);
        true
    }

    /// Hands back the session kept under `pid` and the events its client missed, or `None` if
    /// there is no such session (unknown, expired, or already restored), if `offset` is given
    /// but is not a stored event's offset (unknown or dropped), or if the client has no offset
    /// and an event after the session's start was dropped.
    ///
    /// The missed events are the stored events after the client's position (its offset; its
    /// start if it has no offset or an older one) that concern the session's rooms: sent to every
    /// socket or to one of its rooms, and not excepting any of its rooms.
    ///
    /// The session is removed by the attempt, whatever its outcome.
    pub fn restore(&mut self, now: Instant, pid: &str, offset: Option<&str>) -> Option<Restored> {
        self.expire_sessions(now);
        self.expire_packets(now);
        let mut session = self.sessions.remove(pid)?.session;
        let since = session.since.0;
        let from = match offset {
            Some(offset) => {
                let key = OffsetKey::parse(offset)?;
                let index = self.packets.binary_search_by(|p| p.key.cmp(&key)).ok()?;
                let seq = self.dropped.saturating_add(1).saturating_add(index as u64);
                seq.max(since)
            }
            None if since < self.dropped => return None,
            None => since,
        }
        .min(self.newest());
        session.since = Position(from);
        let first = usize::try_from(from.saturating_sub(self.dropped))
            .unwrap_or(usize::MAX)
            .min(self.packets.len());
        let rooms: HashSet<&str> = session.rooms.iter().map(Str::as_str).collect();
        let missed = self
            .packets
            .range(first..)
            .filter(|p| p.concerns(&rooms))
            .map(|p| p.packet.clone())
            .collect();
        Some(Restored { session, missed })
    }

    /// True if a session is kept under `pid`: not restored (or tried) yet, and not dropped as
    /// expired (a session past its expiry may still be there until the next call that expires).
    pub fn has_session(&self, pid: &str) -> bool {
        self.sessions.contains_key(pid)
    }

    /// When [`RecoveryStore::handle_timeout`] should next be called: just after the oldest
    /// event or session expires. `None` when there is nothing to expire. (It may come early
    /// for a session that was restored in the meantime; the call is then a no-op.)
    pub fn poll_timeout(&self) -> Option<Instant> {
        let after = self
            .config
            .max_disconnection_duration
            .saturating_add(Duration::from_millis(1));
        let packet = self.packets.front().map(|p| p.emitted_at + after);
        let session = self.expiry.front().map(|(at, _, _)| *at + after);
        match (packet, session) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Drops the events emitted and the sessions disconnected more than
    /// `max_disconnection_duration` before `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.expire_packets(now);
        self.expire_sessions(now);
    }

    fn is_expired(&self, at: Instant, now: Instant) -> bool {
        at + self.config.max_disconnection_duration < now
    }

    fn expire_packets(&mut self, now: Instant) {
        while let Some(front) = self.packets.front() {
            if !self.is_expired(front.emitted_at, now) {
                break;
            }
            self.drop_oldest();
        }
    }

    fn expire_sessions(&mut self, now: Instant) {
        while let Some(&(at, _, _)) = self.expiry.front() {
            if !self.is_expired(at, now) {
                break;
            }
            if let Some((_, pid, generation)) = self.expiry.pop_front() {
                if self
                    .sessions
                    .get(&pid)
                    .is_some_and(|s| s.generation == generation)
                {
                    self.sessions.remove(&pid);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::socket::PacketType;
    use bytes::Bytes;

    const T0: u64 = 1_700_000_000_000;

    fn at(ms: u64) -> Instant {
        Instant::from_millis(T0 + ms)
    }

    fn raw(s: &str) -> RawJson {
        RawJson::parse(s).expect("json")
    }

    fn event(data: &str) -> Packet {
        Packet::event("/", raw(data), vec![])
    }

    fn all() -> BroadcastOptions {
        BroadcastOptions::new()
    }

    fn to(room: &str) -> BroadcastOptions {
        BroadcastOptions::new().to(room)
    }

    fn wire(p: &Packet) -> String {
        p.encode().message().to_string()
    }

    /// The last element of an event's data, as the client reads its offset.
    fn offset_of(p: &Packet) -> String {
        let v = p.data().expect("data").to_value().expect("json");
        v.as_array()
            .and_then(|a| a.last())
            .and_then(|o| o.as_str())
            .expect("offset")
            .to_owned()
    }

    #[test]
    fn has_session_follows_persist_restore_and_expiry() {
        let mut s = store();
        assert!(!s.has_session("p1"));
        s.persist(at(0), session("a", "p1", &["a"], Position::START));
        s.persist(at(0), session("b", "p2", &["b"], Position::START));
        assert!(s.has_session("p1") && s.has_session("p2"));
        assert!(s.restore(at(1), "p1", None).is_some());
        assert!(!s.has_session("p1"), "handed over");
        s.handle_timeout(at(3_600_000));
        assert!(!s.has_session("p2"), "expired");
    }

    fn session(sid: &str, pid: &str, rooms: &[&str], since: Position) -> PersistedSession {
        PersistedSession {
            sid: sid.into(),
            pid: pid.into(),
            rooms: rooms.iter().map(|r| Str::from(*r)).collect(),
            data: Some(raw(r#"{"user":1}"#)),
            since,
        }
    }

    fn store() -> RecoveryStore {
        RecoveryStore::new(RecoveryConfig::default())
    }

    #[test]
    fn defaults_and_reasons() {
        let c = RecoveryConfig::default();
        assert_eq!(c.max_disconnection_duration, Duration::from_secs(120));
        assert!(c.skip_middlewares);
        assert_eq!(c.max_packets, 10_000);
        for r in RECOVERABLE_REASONS {
            assert!(is_recoverable(r));
        }
        for r in [
            "parse error",
            "client namespace disconnect",
            "server namespace disconnect",
            "buffer full",
            "",
        ] {
            assert!(!is_recoverable(r));
        }
    }

    #[test]
    fn offsets_in_the_reference_format() {
        let f = |ms, sub| OffsetKey { ms, sub }.format();
        assert_eq!(f(0, 0), "0");
        assert_eq!(f(63, 0), "_");
        assert_eq!(f(64, 0), "10");
        assert_eq!(f(64 * 64 - 1, 0), "__");
        assert_eq!(f(10 * 64 + 36, 0), "Aa");
        // yeast() at 1700000000000 ms (2023-11-14T22:13:20Z)
        assert_eq!(f(T0, 0), "OlFvMW0");
        assert_eq!(f(T0, 1), "OlFvMW0.0");
        assert_eq!(f(T0, 65), "OlFvMW0.10");
        assert_eq!(f(u64::MAX, 0), "F__________");
        for (ms, sub) in [(0, 0), (T0, 0), (T0, 1), (T0, 65), (u64::MAX, u64::MAX)] {
            let key = OffsetKey { ms, sub };
            assert_eq!(OffsetKey::parse(&key.format()), Some(key));
        }
        // Only the exact spelling this module writes parses.
        for bad in [
            "",
            ".",
            "0A",
            "A.",
            ".0",
            "A.0.0",
            "A.00",
            "A B",
            "é",
            "G__________",
        ] {
            assert_eq!(OffsetKey::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn offsets_are_unique_and_increasing() {
        let mut s = store();
        let p = event(r#"["e"]"#);
        let times = [0, 0, 0, 1, 1, 5, 3, 3, 6, 6];
        let offsets: Vec<String> = times
            .iter()
            .map(|&ms| offset_of(&s.record(at(ms), &p, &all()).expect("kept")))
            .collect();
        assert_eq!(
            offsets,
            [
                "OlFvMW0",
                "OlFvMW0.0",
                "OlFvMW0.1",
                "OlFvMW1",
                "OlFvMW1.0",
                "OlFvMW5",
                // the clock went back: the store keeps counting in its latest millisecond
                "OlFvMW5.0",
                "OlFvMW5.1",
                "OlFvMW6",
                "OlFvMW6.0",
            ]
        );
        let keys: Vec<OffsetKey> = offsets
            .iter()
            .map(|o| OffsetKey::parse(o).expect("parse"))
            .collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn record_appends_the_offset_to_the_data() {
        let mut s = store();
        let sent = s
            .record(at(0), &event(r#"["hello",1]"#), &all())
            .expect("kept");
        assert_eq!(wire(&sent), r#"42["hello",1,"OlFvMW0"]"#);
        let sent = s.record(at(0), &event("[]"), &all()).expect("kept");
        assert_eq!(wire(&sent), r#"42["OlFvMW0.0"]"#);
        let sent = s
            .record(
                at(0),
                &Packet::event("/", RawJson::from_trusted(Str::from(" [ ] ")), vec![]),
                &all(),
            )
            .expect("kept");
        assert_eq!(wire(&sent), r#"42["OlFvMW0.1"]"#);
        let sent = s
            .record(
                at(0),
                &event(r#"[ "a" , {"x":[1,2]} , [] ]"#).with_nsp("/chat"),
                &all(),
            )
            .expect("kept");
        assert_eq!(
            wire(&sent),
            r#"42/chat,[ "a" , {"x":[1,2]} , [],"OlFvMW0.2"]"#
        );
        // The result is valid JSON and the event name and arguments are untouched.
        let (x,): (serde_json::Value,) = sent.args().expect("args");
        assert_eq!(x, serde_json::json!({"x":[1,2]}));
        assert_eq!(sent.event_name().as_deref(), Some("a"));
        assert_eq!(s.packet_count(), 4);
    }

    #[test]
    fn binary_events_are_kept_with_their_attachments() {
        let mut s = store();
        let bin = Packet::event_with("/", "file", &(Bytes::from_static(b"\x01\x02"),)).expect("p");
        let sent = s.record(at(0), &bin, &all()).expect("kept");
        assert_eq!(sent.kind(), PacketType::BinaryEvent);
        assert_eq!(
            wire(&sent),
            r#"451-["file",{"_placeholder":true,"num":0},"OlFvMW0"]"#
        );
        assert_eq!(sent.attachments(), bin.attachments());
        let (b, o): (Bytes, String) = sent.args().expect("args");
        assert_eq!((&b[..], o.as_str()), (&[1u8, 2][..], "OlFvMW0"));
    }

    #[test]
    fn only_plain_events_are_kept() {
        let mut s = store();
        let e = event(r#"["e"]"#);
        assert!(s.record(at(0), &e.clone().with_id(3), &all()).is_none());
        let mut volatile = all();
        volatile.flags.volatile = true;
        assert!(s.record(at(0), &e, &volatile).is_none());
        assert!(s
            .record(at(0), &Packet::ack("/", 1, raw("[]"), vec![]), &all())
            .is_none());
        assert!(s
            .record(at(0), &Packet::connect("/", None), &all())
            .is_none());
        assert!(s.record(at(0), &Packet::disconnect("/"), &all()).is_none());
        assert!(s
            .record(
                at(0),
                &Packet::event("/", raw(r#"{"a":1}"#), vec![]),
                &all()
            )
            .is_none());
        assert!(s.record(at(0), &event(r#""e""#), &all()).is_none());
        assert_eq!(s.packet_count(), 0);
        // Refused packets use no offset: the next one is the first of its millisecond.
        let sent = s.record(at(0), &e, &all()).expect("kept");
        assert_eq!(offset_of(&sent), "OlFvMW0");
        // Other flags do not matter.
        let mut flagged = to("r");
        flagged.flags.compress = Some(true);
        flagged.flags.local = true;
        assert!(s.record(at(0), &e, &flagged).is_some());
    }

    #[test]
    fn restore_with_and_without_missed_events() {
        let mut s = store();
        let since = s.position();
        let e1 = s.record(at(0), &event(r#"["a"]"#), &all()).expect("kept");
        let e2 = s.record(at(1), &event(r#"["b"]"#), &all()).expect("kept");
        let e3 = s.record(at(2), &event(r#"["c"]"#), &all()).expect("kept");
        s.persist(at(3), session("sid1", "pid1", &["sid1"], since));
        assert_eq!(s.session_count(), 1);

        // The client saw e1: e2 and e3 are missed.
        let r = s
            .restore(at(4), "pid1", Some(&offset_of(&e1)))
            .expect("restored");
        assert_eq!(r.missed, [e2.clone(), e3.clone()]);
        assert_eq!(r.session.sid, "sid1");
        assert_eq!(r.session.rooms, [Str::from("sid1")]);
        assert_eq!(r.session.data, Some(raw(r#"{"user":1}"#)));
        assert_eq!(s.session_count(), 0);

        // The client saw everything: nothing is missed.
        s.persist(at(5), r.session);
        let r = s
            .restore(at(6), "pid1", Some(&offset_of(&e3)))
            .expect("restored");
        assert!(r.missed.is_empty());
        assert_eq!(r.session.since, s.position());

        // Unknown pid, unknown offset.
        assert!(s.restore(at(6), "nobody", None).is_none());
        s.persist(at(7), session("sid1", "pid1", &["sid1"], since));
        assert!(s.restore(at(8), "pid1", Some("OlFvMWz")).is_none());
        s.persist(at(7), session("sid1", "pid1", &["sid1"], since));
        assert!(s.restore(at(8), "pid1", Some("not an offset")).is_none());
    }

    #[test]
    fn missed_events_are_filtered_by_the_session_rooms() {
        let mut s = store();
        let since = s.position();
        let mut record = |data: &str, opts: BroadcastOptions| {
            s.record(at(0), &event(data), &opts).expect("kept")
        };
        let to_all = record(r#"["all"]"#, all());
        let _to_b = record(r#"["b"]"#, to("b"));
        let to_a = record(r#"["a"]"#, to("a"));
        let to_a_or_b = record(r#"["ab"]"#, to("a").to("b"));
        let _all_but_a = record(r#"["not a"]"#, all().except_room("a"));
        let _a_but_me = record(r#"["a not me"]"#, to("a").except_room("me"));
        let all_but_b = record(r#"["not b"]"#, all().except_room("b"));
        let direct = record(r#"["direct"]"#, to("me"));
        let _other = record(r#"["other"]"#, to("other"));
        s.persist(at(1), session("me", "p", &["me", "a"], since));
        let r = s.restore(at(2), "p", None).expect("restored");
        assert_eq!(r.missed, [to_all, to_a, to_a_or_b, all_but_b, direct]);
    }

    #[test]
    fn recovery_after_zero_events() {
        let mut s = store();
        let before = s
            .record(at(0), &event(r#"["before"]"#), &all())
            .expect("kept");
        // The socket connects now; it receives nothing (the event is lost in flight).
        let since = s.position();
        let lost = s
            .record(at(1), &event(r#"["lost"]"#), &all())
            .expect("kept");
        s.persist(at(2), session("sid", "pid", &["sid"], since));
        let after = s
            .record(at(3), &event(r#"["after"]"#), &all())
            .expect("kept");

        // No offset: everything since the socket's start, nothing from before it.
        let r = s.restore(at(4), "pid", None).expect("restored");
        assert_eq!(r.missed, [lost.clone(), after.clone()]);
        assert_eq!(r.session.since, since);

        // The replay is lost too; the client still has no offset: same answer, plus newer.
        s.persist(at(5), r.session);
        let newer = s
            .record(at(6), &event(r#"["newer"]"#), &all())
            .expect("kept");
        let r = s.restore(at(7), "pid", None).expect("restored");
        assert_eq!(r.missed, [lost.clone(), after.clone(), newer.clone()]);

        // An offset from before the session's start (a previous, unrecovered session of the
        // same client) counts as the start.
        s.persist(at(8), r.session);
        let r = s
            .restore(at(9), "pid", Some(&offset_of(&before)))
            .expect("restored");
        assert_eq!(r.missed, [lost, after, newer]);
        assert_eq!(r.session.since, since);

        // A quiet store: a client with no offset gets nothing and is still recovered.
        let mut quiet = store();
        quiet.persist(at(0), session("q", "qp", &["q"], quiet.position()));
        let r = quiet.restore(at(1), "qp", None).expect("restored");
        assert!(r.missed.is_empty());
        assert_eq!(r.session.since, Position::START);
    }

    #[test]
    fn zero_events_recovery_refused_when_an_event_after_the_start_was_dropped() {
        let mut s = RecoveryStore::new(RecoveryConfig {
            max_packets: 2,
            ..RecoveryConfig::default()
        });
        s.record(at(0), &event(r#"["old"]"#), &all());
        let since = s.position();
        s.record(at(1), &event(r#"["1"]"#), &all());
        let two = s.record(at(2), &event(r#"["2"]"#), &all()).expect("kept");
        let three = s.record(at(3), &event(r#"["3"]"#), &all()).expect("kept");
        // "old" and "1" are gone: "1" came after the start, the client may have missed it.
        s.persist(at(4), session("sid", "pid", &["sid"], since));
        assert!(s.restore(at(5), "pid", None).is_none());
        // With an offset that is still stored, it recovers.
        s.persist(at(4), session("sid", "pid", &["sid"], since));
        let r = s
            .restore(at(5), "pid", Some(&offset_of(&two)))
            .expect("restored");
        assert_eq!(r.missed, std::slice::from_ref(&three));
        // A start at the newest dropped event is fine: nothing after it is missing.
        s.persist(at(6), session("sid2", "pid2", &["sid2"], Position(2)));
        let r = s.restore(at(7), "pid2", None).expect("restored");
        assert_eq!(r.missed, [two, three]);
    }

    #[test]
    fn a_session_is_restored_once() {
        let mut s = store();
        let since = s.position();
        let e = s.record(at(0), &event(r#"["e"]"#), &all()).expect("kept");
        s.persist(at(1), session("sid", "pid", &["sid"], since));
        let first = s.restore(at(2), "pid", None).expect("first");
        assert_eq!(first.missed, std::slice::from_ref(&e));
        // A second connection with the same pid gets nothing, with or without offset.
        assert!(s.restore(at(2), "pid", None).is_none());
        assert!(s.restore(at(2), "pid", Some(&offset_of(&e))).is_none());
        // The recovered socket disconnects again: persisted again, restorable again.
        s.persist(at(3), first.session);
        assert!(s.restore(at(4), "pid", Some(&offset_of(&e))).is_some());
        // A refused attempt also consumes the session.
        s.persist(at(5), session("sid", "pid", &["sid"], since));
        assert!(s.restore(at(6), "pid", Some("zzz")).is_none());
        assert!(s.restore(at(6), "pid", None).is_none());
    }

    #[test]
    fn sessions_expire() {
        let mut s = store();
        let d = 120_000;
        s.persist(at(0), session("a", "pa", &["a"], Position::START));
        s.persist(at(10), session("b", "pb", &["b"], Position::START));
        assert_eq!(s.poll_timeout(), Some(at(d + 1)));
        // Exactly max_disconnection_duration later: still valid (the reference's `<`).
        assert!(s.restore(at(d), "pa", None).is_some());
        // Lazily: a restore after the deadline finds nothing, without a timer.
        assert!(s.restore(at(d + 11), "pb", None).is_none());
        assert_eq!(s.session_count(), 0);

        s.persist(at(d), session("c", "pc", &["c"], Position::START));
        s.handle_timeout(at(2 * d));
        assert_eq!(s.session_count(), 1);
        s.handle_timeout(at(2 * d + 1));
        assert_eq!(s.session_count(), 0);
        assert_eq!(s.poll_timeout(), None);
    }

    #[test]
    fn a_stale_expiry_entry_does_not_expire_a_newer_persist() {
        let mut s = store();
        let d = 120_000;
        s.persist(at(0), session("a", "pa", &["a"], Position::START));
        let r = s.restore(at(1), "pa", None).expect("restored");
        s.persist(at(d), r.session);
        // The first persist's entry comes up first: a no-op for the newer session.
        assert_eq!(s.poll_timeout(), Some(at(d + 1)));
        s.handle_timeout(at(d + 1));
        assert_eq!(s.session_count(), 1);
        assert_eq!(s.poll_timeout(), Some(at(2 * d + 1)));
        assert!(s.restore(at(2 * d), "pa", None).is_some());
    }

    #[test]
    fn packets_expire_by_age() {
        let mut s = store();
        let d = 120_000;
        assert_eq!(s.poll_timeout(), None);
        let since = s.position();
        let e0 = s.record(at(0), &event(r#"["0"]"#), &all()).expect("kept");
        let e1 = s.record(at(100), &event(r#"["1"]"#), &all()).expect("kept");
        assert_eq!(s.poll_timeout(), Some(at(d + 1)));
        s.handle_timeout(at(d));
        assert_eq!(s.packet_count(), 2);
        s.handle_timeout(at(d + 1));
        assert_eq!(s.packet_count(), 1);
        assert_eq!(s.poll_timeout(), Some(at(d + 101)));

        // e0 is gone: its offset no longer recovers, e1's does.
        s.persist(at(d + 1), session("s", "p", &["s"], since));
        assert!(s.restore(at(d + 2), "p", Some(&offset_of(&e0))).is_none());
        s.persist(at(d + 1), session("s", "p", &["s"], since));
        assert!(s.restore(at(d + 2), "p", Some(&offset_of(&e1))).is_some());

        // Lazily on record: e1 expires when a later event is recorded.
        let e2 = s
            .record(at(d + 200), &event(r#"["2"]"#), &all())
            .expect("kept");
        assert_eq!(s.packet_count(), 1);
        // And lazily on restore.
        s.persist(at(2 * d + 200), session("s", "p", &["s"], Position::START));
        assert!(s
            .restore(at(2 * d + 201), "p", Some(&offset_of(&e2)))
            .is_none());
        assert_eq!(s.packet_count(), 0);
    }

    #[test]
    fn the_packet_cap_drops_the_oldest() {
        let mut s = RecoveryStore::new(RecoveryConfig {
            max_packets: 3,
            ..RecoveryConfig::default()
        });
        let sent: Vec<Packet> = (0..5)
            .map(|i| {
                s.record(at(i), &event(&format!("[{i}]")), &all())
                    .expect("kept")
            })
            .collect();
        assert_eq!(s.packet_count(), 3);
        assert_eq!(s.position(), Position(5));
        s.persist(at(6), session("s", "p", &["s"], Position::START));
        assert!(s.restore(at(7), "p", Some(&offset_of(&sent[1]))).is_none());
        s.persist(at(6), session("s", "p", &["s"], Position::START));
        let r = s
            .restore(at(7), "p", Some(&offset_of(&sent[2])))
            .expect("kept");
        assert_eq!(r.missed, sent[3..]);
        assert_eq!(r.session.since, Position(3));

        // 0 keeps nothing, and nobody recovers from it.
        let mut none = RecoveryStore::new(RecoveryConfig {
            max_packets: 0,
            ..RecoveryConfig::default()
        });
        let since = none.position();
        let e = none.record(at(0), &event("[1]"), &all()).expect("sent");
        assert_eq!(none.packet_count(), 0);
        none.persist(at(1), session("s", "p", &["s"], since));
        assert!(none.restore(at(2), "p", Some(&offset_of(&e))).is_none());
        none.persist(at(1), session("s", "p", &["s"], since));
        assert!(none.restore(at(2), "p", None).is_none());
    }

    #[test]
    fn an_unbounded_duration_never_expires() {
        let mut s = RecoveryStore::new(RecoveryConfig {
            max_disconnection_duration: Duration::MAX,
            ..RecoveryConfig::default()
        });
        s.record(at(0), &event("[1]"), &all());
        s.persist(at(0), session("s", "p", &["s"], Position::START));
        assert_eq!(s.poll_timeout(), Some(Instant::from_millis(u64::MAX)));
        s.handle_timeout(Instant::from_millis(u64::MAX));
        assert_eq!((s.packet_count(), s.session_count()), (1, 1));
    }

    #[test]
    fn bounded_under_sustained_traffic() {
        let mut s = RecoveryStore::new(RecoveryConfig {
            max_disconnection_duration: Duration::from_secs(1),
            max_packets: 100,
            ..RecoveryConfig::default()
        });
        let p = event(r#"["tick"]"#);
        for i in 0..5_000u64 {
            let now = at(i);
            s.record(now, &p, &all());
            if i % 10 == 0 {
                s.persist(now, session("s", &format!("p{i}"), &["s"], s.position()));
            }
            if s.poll_timeout().is_some_and(|t| t <= now) {
                s.handle_timeout(now);
            }
            assert!(s.packet_count() <= 100);
            assert!(s.session_count() <= 101);
            assert!(s.expiry.len() <= 101);
        }
    }

    #[test]
    fn admit_restores_or_starts_anew_and_leave_keeps_only_recoverable_sessions() {
        let mut store = RecoveryStore::new(RecoveryConfig::default());
        let session = |sid: &str, pid: &str| PersistedSession {
            sid: sid.into(),
            pid: pid.into(),
            rooms: vec![sid.into()],
            data: None,
            since: Position::START,
        };
        // Left on purpose: nothing kept. Left by a transport failure: kept.
        let gone = session("s1", "p1");
        assert!(!store.leave(at(0), DisconnectReason::ClientNamespaceDisconnect, gone));
        assert!(store.leave(at(0), DisconnectReason::PingTimeout, session("s2", "p2")));
        assert_eq!(store.session_count(), 1);

        let ask = |pid: &str| RecoveryRequest {
            pid: pid.into(),
            offset: None,
        };
        // An unknown pid starts anew with the fresh pid, and the middlewares run.
        let fresh = store.admit(at(10), Some(&ask("p1")), "new".into());
        assert_eq!((fresh.restored, fresh.pid.as_str()), (None, "new"));
        assert!(fresh.run_middlewares);
        assert_eq!(fresh.since, store.position());
        // The kept session comes back with its id and pid, and skips the middlewares.
        let back = store.admit(at(10), Some(&ask("p2")), "other".into());
        assert_eq!(back.restored.map(|r| r.session.sid), Some("s2".into()));
        assert_eq!(back.pid.as_str(), "p2");
        assert!(!back.run_middlewares);
        // Without `skipMiddlewares` a recovered socket goes through them too.
        let mut strict = RecoveryStore::new(RecoveryConfig {
            skip_middlewares: false,
            ..RecoveryConfig::default()
        });
        strict.leave(at(0), DisconnectReason::TransportClose, session("s3", "p3"));
        let back = strict.admit(at(1), Some(&ask("p3")), "x".into());
        assert!(back.restored.is_some() && back.run_middlewares);
        // No request: a fresh socket.
        assert_eq!(strict.admit(at(1), None, "y".into()).pid.as_str(), "y");
    }
}
