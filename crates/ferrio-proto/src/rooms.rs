//! The room index of one namespace and the broadcast target set: the model every adapter (the
//! in-memory one and the cluster ones) shares.
//!
//! A socket id and a room name are both [`Str`]. Every socket joins the room named by its own id
//! when it is added ([`RoomIndex::add_socket`]), so a direct emit is a broadcast to one room.
//! Mutations return the adapter room events that happened ([`RoomEvent`]), in the order the
//! reference adapter emits them, so a server can forward them to its listeners.
//!
//! [`BroadcastOptions`] says who receives a broadcast: the union of the members of `rooms` (every
//! socket when `rooms` is empty), minus every member of any `except` room. It serialises as the
//! reference's `{rooms, except, flags}` object, the shape cluster messages carry.
//!
//! ```
//! use ferrio_proto::rooms::{BroadcastOptions, RoomEvent, RoomIndex};
//! use ferrio_proto::Str;
//!
//! let mut index = RoomIndex::new();
//! let (a, b) = (Str::from("a1"), Str::from("b2"));
//! index.add_socket(a.clone());
//! index.add_socket(b.clone());
//! let events = index.join(&a, ["chat"]);
//! assert_eq!(events[0], RoomEvent::CreateRoom { room: "chat".into() });
//! index.join(&b, ["chat"]);
//!
//! // io.to("chat").except("a1").emit(...)
//! let opts = BroadcastOptions::new().to("chat").except_room("a1");
//! let targets: Vec<&Str> = index.targets(&opts).collect();
//! assert_eq!(targets, [&b]);
//! ```
//!
//! # Cost
//!
//! Two hash maps: room → members and socket → rooms. Each room set is stored inline while it has
//! one element, as a short vector up to 16 elements and as a hash set beyond. Every entry holds a
//! clone of the one `Str` the index was first given for that id or room, so the text of an id is
//! stored once however many rooms the socket is in.
//!
//! Time (expected, hashing included; `k` = rooms of the socket, `m` = members of a room):
//!
//! | Operation | Time |
//! |---|---|
//! | `add_socket`, `leave`, `has_socket`, `is_member` | O(1) |
//! | `join(id, rooms)` | O(number of rooms given) |
//! | `remove_socket` | O(k) |
//! | `rooms_of`, `members` | O(1) to start, O(k) / O(m) to iterate |
//! | `targets` with rooms | O(Σ m over the target rooms × (1 + existing except rooms)) |
//! | `targets` without rooms | O(sockets × (1 + existing except rooms)) |
//!
//! Memory, measured on 64-bit by the `memory_per_socket_and_membership` test (table sizes
//! computed from capacities, so it counts the hash tables and vectors, not allocator overhead):
//! about **190 bytes per socket** (its entries in both maps, its own room included) and about
//! **110 bytes per further room membership** (one entry on each side), plus the text of the id,
//! allocated once with a small shared header. 100 000 sockets, each in its own room and one of
//! 1 000 rooms, take about 30 MB.
//!
//! The maps use the standard library's `RandomState`, so room names chosen by clients cannot be
//! used to force collisions; iteration order is therefore not stable between runs (nothing here
//! promises an order except for the events of one call).

use std::collections::hash_map::{self, Entry};
use std::collections::{hash_set, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Str;

/// One adapter room event, as the reference adapter emits it (`io.of(nsp).adapter.on(...)`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RoomEvent {
    /// `create-room(room)`: the room got its first member.
    CreateRoom {
        /// The room.
        room: Str,
    },
    /// `join-room(room, id)`: the socket joined the room.
    JoinRoom {
        /// The room.
        room: Str,
        /// The socket id.
        id: Str,
    },
    /// `leave-room(room, id)`: the socket left the room.
    LeaveRoom {
        /// The room.
        room: Str,
        /// The socket id.
        id: Str,
    },
    /// `delete-room(room)`: the room lost its last member.
    DeleteRoom {
        /// The room.
        room: Str,
    },
}

impl RoomEvent {
    /// The event name in the reference: `create-room`, `join-room`, `leave-room`, `delete-room`.
    pub fn name(&self) -> &'static str {
        match self {
            RoomEvent::CreateRoom { .. } => "create-room",
            RoomEvent::JoinRoom { .. } => "join-room",
            RoomEvent::LeaveRoom { .. } => "leave-room",
            RoomEvent::DeleteRoom { .. } => "delete-room",
        }
    }

    /// The room the event is about.
    pub fn room(&self) -> &Str {
        match self {
            RoomEvent::CreateRoom { room }
            | RoomEvent::JoinRoom { room, .. }
            | RoomEvent::LeaveRoom { room, .. }
            | RoomEvent::DeleteRoom { room } => room,
        }
    }

    /// The socket id, for `join-room` and `leave-room`.
    pub fn id(&self) -> Option<&Str> {
        match self {
            RoomEvent::JoinRoom { id, .. } | RoomEvent::LeaveRoom { id, .. } => Some(id),
            RoomEvent::CreateRoom { .. } | RoomEvent::DeleteRoom { .. } => None,
        }
    }
}

/// Above this many elements a set moves from a vector to a hash set.
const FEW_MAX: usize = 16;

/// A set of strings sized for the common cases: one element (a socket's own room), a few (the
/// rooms of a socket), many (a busy room). Up to [`FEW_MAX`] elements it keeps insertion order.
#[derive(Debug, Clone)]
enum StrSet {
    One(Str),
    Few(Vec<Str>),
    /// Boxed on purpose: the extra indirection is paid only by big sets, and it keeps every
    /// map entry's value at the size of a `Str` instead of a `HashSet`.
    #[allow(clippy::box_collection)]
    Many(Box<HashSet<Str>>),
}

impl Default for StrSet {
    fn default() -> Self {
        StrSet::Few(Vec::new())
    }
}

impl StrSet {
    fn len(&self) -> usize {
        match self {
            StrSet::One(_) => 1,
            StrSet::Few(v) => v.len(),
            StrSet::Many(s) => s.len(),
        }
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn contains(&self, s: &str) -> bool {
        match self {
            StrSet::One(a) => a == s,
            StrSet::Few(v) => v.iter().any(|a| a == s),
            StrSet::Many(set) => set.contains(s),
        }
    }

    /// Adds `s`; false if it was there already.
    fn insert(&mut self, s: Str) -> bool {
        if self.contains(&s) {
            return false;
        }
        *self = match std::mem::take(self) {
            StrSet::One(a) => StrSet::Few(vec![a, s]),
            StrSet::Few(v) if v.is_empty() => StrSet::One(s),
            StrSet::Few(mut v) if v.len() < FEW_MAX => {
                v.push(s);
                StrSet::Few(v)
            }
            StrSet::Few(v) => {
                let mut set = HashSet::with_capacity(2 * FEW_MAX);
                set.extend(v);
                set.insert(s);
                StrSet::Many(Box::new(set))
            }
            StrSet::Many(mut set) => {
                set.insert(s);
                StrSet::Many(set)
            }
        };
        true
    }

    /// Removes `s` and returns the stored string.
    fn take(&mut self, s: &str) -> Option<Str> {
        match self {
            StrSet::One(a) if a == s => match std::mem::take(self) {
                StrSet::One(a) => Some(a),
                _ => None,
            },
            StrSet::One(_) => None,
            StrSet::Few(v) => {
                let i = v.iter().position(|a| a == s)?;
                let taken = v.remove(i);
                if v.len() == 1 {
                    if let Some(last) = v.pop() {
                        *self = StrSet::One(last);
                    }
                }
                Some(taken)
            }
            StrSet::Many(set) => {
                let taken = set.take(s)?;
                if set.len() <= FEW_MAX / 2 {
                    *self = StrSet::Few(set.drain().collect());
                }
                Some(taken)
            }
        }
    }

    fn iter(&self) -> Iter<'_> {
        Iter(match self {
            StrSet::One(a) => IterInner::One(Some(a)),
            StrSet::Few(v) => IterInner::Few(v.iter()),
            StrSet::Many(set) => IterInner::Many(set.iter()),
        })
    }

    fn into_vec(self) -> Vec<Str> {
        match self {
            StrSet::One(a) => vec![a],
            StrSet::Few(v) => v,
            StrSet::Many(set) => (*set).into_iter().collect(),
        }
    }
}

/// An iterator over socket ids or room names (of [`RoomIndex::members`], [`RoomIndex::rooms_of`]).
#[derive(Debug, Clone)]
pub struct Iter<'a>(IterInner<'a>);

#[derive(Debug, Clone)]
enum IterInner<'a> {
    One(Option<&'a Str>),
    Few(std::slice::Iter<'a, Str>),
    Many(hash_set::Iter<'a, Str>),
}

impl<'a> Iter<'a> {
    fn empty() -> Iter<'a> {
        Iter(IterInner::One(None))
    }
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a Str;

    fn next(&mut self) -> Option<&'a Str> {
        match &mut self.0 {
            IterInner::One(a) => a.take(),
            IterInner::Few(it) => it.next(),
            IterInner::Many(it) => it.next(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = match &self.0 {
            IterInner::One(a) => usize::from(a.is_some()),
            IterInner::Few(it) => it.len(),
            IterInner::Many(it) => it.len(),
        };
        (n, Some(n))
    }
}

impl ExactSizeIterator for Iter<'_> {}

/// The rooms of one namespace: which sockets are in which rooms, both ways.
///
/// See the [module documentation](self) for costs.
#[derive(Debug, Clone, Default)]
pub struct RoomIndex {
    rooms: HashMap<Str, StrSet>,
    sids: HashMap<Str, StrSet>,
}

impl RoomIndex {
    /// An empty index.
    pub fn new() -> RoomIndex {
        RoomIndex::default()
    }

    /// An empty index with room for `sockets` sockets (and their own rooms) before rehashing.
    pub fn with_capacity(sockets: usize) -> RoomIndex {
        RoomIndex {
            rooms: HashMap::with_capacity(sockets),
            sids: HashMap::with_capacity(sockets),
        }
    }

    /// Adds a socket: it joins the room named by its own id, as in the reference
    /// (`create-room(id)`, `join-room(id, id)`). Adding a known socket only makes sure it is in
    /// its own room.
    pub fn add_socket(&mut self, id: Str) -> Vec<RoomEvent> {
        let own = id.clone();
        self.join(&id, [own])
    }

    /// Makes socket `id` join `rooms`, in order: for each room, `create-room` if the room is new,
    /// then `join-room` if the socket was not in it yet. As in the reference, an unknown `id`
    /// becomes a known socket (without its own room: use [`RoomIndex::add_socket`] for that),
    /// even when `rooms` is empty.
    pub fn join<I>(&mut self, id: &Str, rooms: I) -> Vec<RoomEvent>
    where
        I: IntoIterator,
        I::Item: Into<Str>,
    {
        let mut events = Vec::new();
        let (id, socket_rooms) = match self.sids.entry(id.clone()) {
            Entry::Occupied(e) => (e.key().clone(), e.into_mut()),
            Entry::Vacant(e) => (e.key().clone(), e.insert(StrSet::default())),
        };
        for room in rooms {
            let (room, members) = match self.rooms.entry(room.into()) {
                Entry::Occupied(e) => (e.key().clone(), e.into_mut()),
                Entry::Vacant(e) => {
                    let room = e.key().clone();
                    events.push(RoomEvent::CreateRoom { room: room.clone() });
                    (room, e.insert(StrSet::default()))
                }
            };
            socket_rooms.insert(room.clone());
            if members.insert(id.clone()) {
                events.push(RoomEvent::JoinRoom {
                    room,
                    id: id.clone(),
                });
            }
        }
        events
    }

    /// Makes socket `id` leave `room`: `leave-room`, then `delete-room` if the room is now empty.
    /// No events if the socket was not in the room. The socket stays known even if it is now in
    /// no room (as in the reference; [`RoomIndex::remove_socket`] forgets it).
    pub fn leave(&mut self, id: &str, room: &str) -> Vec<RoomEvent> {
        let mut events = Vec::new();
        let Some(socket_rooms) = self.sids.get_mut(id) else {
            return events;
        };
        let Some(room) = socket_rooms.take(room) else {
            return events;
        };
        self.del(&room, id, &mut events);
        events
    }

    /// Removes a socket from every room it is in and forgets it: for each room, `leave-room`
    /// then, if the room is now empty, `delete-room`. Rooms come in the order the socket joined
    /// them while it is in at most 16 rooms; beyond that the order between rooms is unspecified.
    pub fn remove_socket(&mut self, id: &str) -> Vec<RoomEvent> {
        let Some(socket_rooms) = self.sids.remove(id) else {
            return Vec::new();
        };
        let rooms = socket_rooms.into_vec();
        let mut events = Vec::with_capacity(2 * rooms.len());
        for room in &rooms {
            self.del(room, id, &mut events);
        }
        events
    }

    /// The room side of a leave: the reference's `_del`.
    fn del(&mut self, room: &Str, id: &str, events: &mut Vec<RoomEvent>) {
        let Some(members) = self.rooms.get_mut(room.as_str()) else {
            return;
        };
        if let Some(id) = members.take(id) {
            events.push(RoomEvent::LeaveRoom {
                room: room.clone(),
                id,
            });
        }
        if members.is_empty() {
            self.rooms.remove(room.as_str());
            events.push(RoomEvent::DeleteRoom { room: room.clone() });
        }
    }

    /// The rooms socket `id` is in (its own id room included); empty for an unknown socket.
    pub fn rooms_of(&self, id: &str) -> Iter<'_> {
        self.sids.get(id).map_or_else(Iter::empty, StrSet::iter)
    }

    /// The sockets in `room`; empty for a room that does not exist.
    pub fn members(&self, room: &str) -> Iter<'_> {
        self.rooms.get(room).map_or_else(Iter::empty, StrSet::iter)
    }

    /// True if socket `id` is known.
    pub fn has_socket(&self, id: &str) -> bool {
        self.sids.contains_key(id)
    }

    /// True if room `room` exists (has at least one member).
    pub fn has_room(&self, room: &str) -> bool {
        self.rooms.contains_key(room)
    }

    /// True if socket `id` is in `room`.
    pub fn is_member(&self, id: &str, room: &str) -> bool {
        self.rooms.get(room).is_some_and(|m| m.contains(id))
    }

    /// The number of members of `room` (0 if it does not exist).
    pub fn room_size(&self, room: &str) -> usize {
        self.rooms.get(room).map_or(0, StrSet::len)
    }

    /// The number of known sockets.
    pub fn socket_count(&self) -> usize {
        self.sids.len()
    }

    /// The number of rooms (own id rooms included).
    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }

    /// Every known socket id.
    pub fn sockets(&self) -> impl ExactSizeIterator<Item = &Str> + '_ {
        self.sids.keys()
    }

    /// Every room name (own id rooms included), as the reference's `adapter.rooms.keys()`.
    pub fn rooms(&self) -> impl ExactSizeIterator<Item = &Str> + '_ {
        self.rooms.keys()
    }

    /// The sockets a broadcast with `opts` reaches, each once, in no particular order.
    ///
    /// With `opts.rooms` non-empty: the members of those rooms (rooms that do not exist are
    /// skipped); with `opts.rooms` empty: every known socket. In both cases minus every member of
    /// any `opts.except` room. The flags play no part.
    pub fn targets(&self, opts: &BroadcastOptions) -> Targets<'_> {
        let except = opts
            .except
            .iter()
            .filter_map(|room| self.rooms.get(room.as_str()))
            .collect();
        let mode = if opts.rooms.is_empty() {
            Mode::All(self.sids.keys())
        } else {
            let sets: Vec<&StrSet> = opts
                .rooms
                .iter()
                .filter_map(|room| self.rooms.get(room.as_str()))
                .collect();
            let seen = (sets.len() > DEDUP_BY_LOOKUP_MAX).then(HashSet::new);
            Mode::Rooms {
                sets,
                next: 0,
                current: Iter::empty(),
                seen,
            }
        };
        Targets { except, mode }
    }
}

/// Up to this many target rooms, a socket found in room `i` is recognised as a duplicate by
/// looking it up in rooms `0..i`; with more, the iterator keeps a set of the sockets it yielded.
const DEDUP_BY_LOOKUP_MAX: usize = 4;

/// The iterator returned by [`RoomIndex::targets`].
#[derive(Debug, Clone)]
pub struct Targets<'a> {
    except: Vec<&'a StrSet>,
    mode: Mode<'a>,
}

#[derive(Debug, Clone)]
enum Mode<'a> {
    All(hash_map::Keys<'a, Str, StrSet>),
    Rooms {
        sets: Vec<&'a StrSet>,
        /// Index of the next set to walk; the current one is `next - 1`.
        next: usize,
        current: Iter<'a>,
        seen: Option<HashSet<&'a str>>,
    },
}

impl<'a> Iterator for Targets<'a> {
    type Item = &'a Str;

    fn next(&mut self) -> Option<&'a Str> {
        let Targets { except, mode } = self;
        let excluded = |id: &str| except.iter().any(|set| set.contains(id));
        match mode {
            Mode::All(keys) => keys.find(|id| !excluded(id)),
            Mode::Rooms {
                sets,
                next,
                current,
                seen,
            } => loop {
                let Some(id) = current.next() else {
                    let set = sets.get(*next)?;
                    *next += 1;
                    *current = set.iter();
                    continue;
                };
                if excluded(id) {
                    continue;
                }
                let duplicate = match seen {
                    Some(seen) => !seen.insert(id.as_str()),
                    None => sets
                        .get(..next.saturating_sub(1))
                        .unwrap_or_default()
                        .iter()
                        .any(|set| set.contains(id)),
                };
                if !duplicate {
                    return Some(id);
                }
            },
        }
    }
}

/// Who receives a broadcast, and how: the reference's `BroadcastOptions`.
///
/// Serialises as the reference's JSON / MessagePack object
/// `{"rooms":[...],"except":[...],"flags":{...}}` (the shape `@socket.io/redis-adapter` puts in
/// its broadcast messages); `except` and `flags` may be missing when read.
///
/// ```
/// use std::time::Duration;
/// use ferrio_proto::rooms::BroadcastOptions;
///
/// let mut opts = BroadcastOptions::new().to("news").except_room("banned");
/// opts.flags.timeout = Some(Duration::from_secs(5));
/// assert_eq!(
///     serde_json::to_string(&opts).unwrap(),
///     r#"{"rooms":["news"],"except":["banned"],"flags":{"timeout":5000}}"#
/// );
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BroadcastOptions {
    /// The rooms to reach; empty means every socket of the namespace.
    #[serde(default, with = "str_set")]
    pub rooms: BTreeSet<Str>,
    /// Rooms whose members are left out.
    #[serde(default, with = "str_set")]
    pub except: BTreeSet<Str>,
    /// How to send.
    #[serde(default)]
    pub flags: BroadcastFlags,
}

impl BroadcastOptions {
    /// Every socket, no exception, no flags.
    pub fn new() -> BroadcastOptions {
        BroadcastOptions::default()
    }

    /// Adds a room to reach (`to(room)`).
    pub fn to(mut self, room: impl Into<Str>) -> BroadcastOptions {
        self.rooms.insert(room.into());
        self
    }

    /// Adds a room whose members are left out (`except(room)`).
    pub fn except_room(mut self, room: impl Into<Str>) -> BroadcastOptions {
        self.except.insert(room.into());
        self
    }

    /// True if a socket in the rooms for which `in_room` answers true is reached: `rooms` is
    /// empty or one of them is a room of the socket, and no `except` room is. This is the
    /// reference's filter for packets missed during a disconnection.
    pub fn includes(&self, in_room: impl Fn(&str) -> bool) -> bool {
        (self.rooms.is_empty() || self.rooms.iter().any(|r| in_room(r)))
            && !self.except.iter().any(|r| in_room(r))
    }
}

/// The flags of a broadcast: the reference's `BroadcastFlags`.
///
/// Serialised with the reference's member names (`volatile`, `compress`, `local`, `broadcast`,
/// `timeout` in milliseconds, `expectSingleResponse`); members that are false or unset are left
/// out, as JavaScript leaves out `undefined` ones. Unknown members (the deprecated `binary`) are
/// ignored when read; `null` reads as unset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BroadcastFlags {
    /// The packet may be dropped for a recipient whose transport is not writable right now.
    /// Volatile packets are not kept for connection state recovery. (The reference's recovery
    /// treats any present `volatile` member as volatile, even `false`; Ferrio reads `false` as
    /// not volatile.)
    #[serde(
        default,
        skip_serializing_if = "is_false",
        deserialize_with = "lenient_bool"
    )]
    pub volatile: bool,
    /// Per-packet compression (WebSocket permessage-deflate / polling HTTP compression); unset
    /// means the transport's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compress: Option<bool>,
    /// Reach only the sockets of this node, not the rest of the cluster.
    #[serde(
        default,
        skip_serializing_if = "is_false",
        deserialize_with = "lenient_bool"
    )]
    pub local: bool,
    /// Set by `socket.broadcast` (every socket but the sender).
    #[serde(
        default,
        skip_serializing_if = "is_false",
        deserialize_with = "lenient_bool"
    )]
    pub broadcast: bool,
    /// How long to wait for acknowledgements (`timeout(ms)`); written as whole milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "millis")]
    pub timeout: Option<Duration>,
    /// An emit with ack to one remote socket: the ack callback gets one response, not a list.
    #[serde(
        default,
        skip_serializing_if = "is_false",
        deserialize_with = "lenient_bool"
    )]
    pub expect_single_response: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(Option::<bool>::deserialize(d)?.unwrap_or(false))
}

/// A set of `Str` as a sequence of strings.
mod str_set {
    use super::*;

    pub(super) fn serialize<S: Serializer>(set: &BTreeSet<Str>, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(set.iter().map(Str::as_str))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeSet<Str>, D::Error> {
        let names = Option::<Vec<String>>::deserialize(d)?.unwrap_or_default();
        Ok(names.into_iter().map(Str::from).collect())
    }
}

/// `Option<Duration>` as a number of milliseconds (fractions accepted when read).
mod millis {
    use super::*;
    use serde::de::{self, Visitor};

    pub(super) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        d.deserialize_option(OptionalMillis)
    }

    struct OptionalMillis;

    impl<'de> Visitor<'de> for OptionalMillis {
        type Value = Option<Duration>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a number of milliseconds")
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            let ms = f64::deserialize(d)?;
            if ms.is_nan() {
                return Err(de::Error::custom("timeout is not a number"));
            }
            let ms = ms.max(0.0);
            Ok(Some(if ms.fract() == 0.0 {
                // Saturating float-to-integer conversion: a huge value waits "forever".
                Duration::from_millis(ms as u64)
            } else {
                Duration::from_nanos((ms * 1_000_000.0) as u64)
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn s(x: &str) -> Str {
        Str::from(x)
    }

    fn create(room: &str) -> RoomEvent {
        RoomEvent::CreateRoom { room: s(room) }
    }
    fn joined(room: &str, id: &str) -> RoomEvent {
        RoomEvent::JoinRoom {
            room: s(room),
            id: s(id),
        }
    }
    fn left(room: &str, id: &str) -> RoomEvent {
        RoomEvent::LeaveRoom {
            room: s(room),
            id: s(id),
        }
    }
    fn delete(room: &str) -> RoomEvent {
        RoomEvent::DeleteRoom { room: s(room) }
    }

    fn sorted<'a>(it: impl Iterator<Item = &'a Str>) -> Vec<&'a str> {
        let mut v: Vec<&str> = it.map(Str::as_str).collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn event_names_and_accessors() {
        assert_eq!(create("r").name(), "create-room");
        assert_eq!(joined("r", "a").name(), "join-room");
        assert_eq!(left("r", "a").name(), "leave-room");
        assert_eq!(delete("r").name(), "delete-room");
        assert_eq!(joined("r", "a").room(), "r");
        assert_eq!(joined("r", "a").id().map(Str::as_str), Some("a"));
        assert_eq!(delete("r").id(), None);
    }

    #[test]
    fn add_socket_joins_its_own_room() {
        let mut index = RoomIndex::new();
        assert_eq!(index.add_socket(s("a")), [create("a"), joined("a", "a")]);
        assert!(index.has_socket("a"));
        assert!(index.is_member("a", "a"));
        assert_eq!(sorted(index.rooms_of("a")), ["a"]);
        assert_eq!(sorted(index.members("a")), ["a"]);
        assert_eq!((index.socket_count(), index.room_count()), (1, 1));
        // Adding again changes nothing.
        assert_eq!(index.add_socket(s("a")), []);
        assert_eq!((index.socket_count(), index.room_count()), (1, 1));
    }

    #[test]
    fn join_events_in_reference_order() {
        let mut index = RoomIndex::new();
        index.add_socket(s("a"));
        index.add_socket(s("b"));
        assert_eq!(
            index.join(&s("a"), ["x", "y"]),
            [create("x"), joined("x", "a"), create("y"), joined("y", "a")]
        );
        // Existing room: no create-room; already a member: nothing.
        assert_eq!(index.join(&s("b"), ["x"]), [joined("x", "b")]);
        assert_eq!(index.join(&s("b"), ["x", "x"]), []);
        assert_eq!(sorted(index.members("x")), ["a", "b"]);
        assert_eq!(
            index.rooms_of("a").map(Str::as_str).collect::<Vec<_>>(),
            ["a", "x", "y"]
        );
        assert_eq!(index.room_size("x"), 2);
        assert_eq!(index.room_size("nope"), 0);
        assert!(index.has_room("y"));
        assert_eq!(index.rooms_of("a").len(), 3);
    }

    #[test]
    fn join_of_unknown_socket_adds_it_without_own_room() {
        let mut index = RoomIndex::new();
        assert_eq!(index.join(&s("z"), Vec::<Str>::new()), []);
        assert!(index.has_socket("z"));
        assert_eq!(index.rooms_of("z").len(), 0);
        assert_eq!(index.join(&s("z"), ["r"]), [create("r"), joined("r", "z")]);
        assert!(!index.has_room("z"));
    }

    #[test]
    fn leave_events() {
        let mut index = RoomIndex::new();
        index.add_socket(s("a"));
        index.add_socket(s("b"));
        index.join(&s("a"), ["x"]);
        index.join(&s("b"), ["x"]);
        assert_eq!(index.leave("a", "x"), [left("x", "a")]);
        assert_eq!(index.leave("a", "x"), []);
        assert_eq!(index.leave("b", "x"), [left("x", "b"), delete("x")]);
        assert!(!index.has_room("x"));
        assert_eq!(index.leave("nobody", "x"), []);
        // Leaving its own room keeps the socket known.
        assert_eq!(index.leave("a", "a"), [left("a", "a"), delete("a")]);
        assert!(index.has_socket("a"));
        assert_eq!(index.rooms_of("a").len(), 0);
    }

    #[test]
    fn remove_socket_leaves_every_room_in_join_order() {
        let mut index = RoomIndex::new();
        index.add_socket(s("a"));
        index.add_socket(s("b"));
        index.join(&s("a"), ["x", "y"]);
        index.join(&s("b"), ["y"]);
        assert_eq!(
            index.remove_socket("a"),
            [
                left("a", "a"),
                delete("a"),
                left("x", "a"),
                delete("x"),
                left("y", "a"),
            ]
        );
        assert!(!index.has_socket("a"));
        assert_eq!(sorted(index.members("y")), ["b"]);
        assert_eq!(index.remove_socket("a"), []);
        assert_eq!((index.socket_count(), index.room_count()), (1, 2));
        assert_eq!(sorted(index.sockets()), ["b"]);
        assert_eq!(sorted(index.rooms()), ["b", "y"]);
    }

    #[test]
    fn sets_grow_and_shrink_across_representations() {
        let mut index = RoomIndex::new();
        index.add_socket(s("a"));
        let rooms: Vec<String> = (0..40).map(|i| format!("r{i}")).collect();
        index.join(&s("a"), rooms.iter().map(String::as_str));
        assert_eq!(index.rooms_of("a").len(), 41);
        for r in &rooms {
            assert!(index.is_member("a", r));
        }
        // A room with many members.
        for i in 0..40 {
            index.add_socket(s(&format!("m{i}")));
            index.join(&s(&format!("m{i}")), ["big"]);
        }
        assert_eq!(index.room_size("big"), 40);
        for i in 0..39 {
            assert_eq!(
                index.leave(&format!("m{i}"), "big"),
                [left("big", &format!("m{i}"))]
            );
            assert_eq!(index.room_size("big"), 39 - i);
            assert!(index.is_member("m39", "big"));
        }
        assert_eq!(
            index.leave("m39", "big"),
            [left("big", "m39"), delete("big")]
        );
        for r in rooms.iter().take(39) {
            index.leave("a", r);
        }
        assert_eq!(sorted(index.rooms_of("a")), ["a", "r39"]);
        assert_eq!(index.remove_socket("a").len(), 4);
        assert_eq!(index.room_count(), 40); // the m* own rooms
    }

    #[test]
    fn members_share_the_socket_id_storage() {
        let mut index = RoomIndex::new();
        let id = s("shared-id");
        index.add_socket(id.clone());
        // A different copy of the same text is given to join: the stored one is reused.
        index.join(&s("shared-id"), [s("room")]);
        let base = id.as_bytes().as_ptr();
        let member = index.members("room").next().expect("member");
        assert_eq!(member.as_bytes().as_ptr(), base);
        let own = index.members("shared-id").next().expect("own");
        assert_eq!(own.as_bytes().as_ptr(), base);
    }

    fn index_abc() -> RoomIndex {
        // a in x; b in x, y; c in y; d in nothing but its own room
        let mut index = RoomIndex::new();
        for id in ["a", "b", "c", "d"] {
            index.add_socket(s(id));
        }
        index.join(&s("a"), ["x"]);
        index.join(&s("b"), ["x", "y"]);
        index.join(&s("c"), ["y"]);
        index
    }

    fn targets_of(index: &RoomIndex, opts: &BroadcastOptions) -> Vec<String> {
        let v: Vec<&Str> = index.targets(opts).collect();
        let mut out: Vec<String> = v.iter().map(|s| s.to_string()).collect();
        out.sort();
        let mut dedup = out.clone();
        dedup.dedup();
        assert_eq!(out, dedup, "each socket once");
        out
    }

    #[test]
    fn targets_rooms_union_minus_except() {
        let index = index_abc();
        let t = |o: BroadcastOptions| targets_of(&index, &o);
        assert_eq!(t(BroadcastOptions::new()), ["a", "b", "c", "d"]);
        assert_eq!(t(BroadcastOptions::new().to("x")), ["a", "b"]);
        assert_eq!(t(BroadcastOptions::new().to("x").to("y")), ["a", "b", "c"]);
        assert_eq!(
            t(BroadcastOptions::new().to("x").to("y").except_room("b")),
            ["a", "c"]
        );
        assert_eq!(t(BroadcastOptions::new().to("x").except_room("y")), ["a"]);
        assert_eq!(t(BroadcastOptions::new().except_room("x")), ["c", "d"]);
        assert_eq!(
            t(BroadcastOptions::new().except_room("x").except_room("c")),
            ["d"]
        );
        // Rooms that do not exist reach nobody; except rooms that do not exist exclude nobody.
        assert!(t(BroadcastOptions::new().to("nope")).is_empty());
        assert_eq!(
            t(BroadcastOptions::new()
                .to("nope")
                .to("y")
                .except_room("zzz")),
            ["b", "c"]
        );
        // Direct emit: the socket's own room.
        assert_eq!(t(BroadcastOptions::new().to("d")), ["d"]);
        // socket.broadcast: everyone but the sender.
        assert_eq!(t(BroadcastOptions::new().except_room("a")), ["b", "c", "d"]);
    }

    #[test]
    fn targets_with_many_rooms_dedups_with_a_set() {
        let index = index_abc();
        let mut opts = BroadcastOptions::new();
        for room in ["a", "b", "c", "d", "x", "y", "nope"] {
            opts = opts.to(room);
        }
        assert!(opts.rooms.len() > DEDUP_BY_LOOKUP_MAX);
        assert_eq!(targets_of(&index, &opts), ["a", "b", "c", "d"]);
        assert_eq!(
            targets_of(&index, &opts.clone().except_room("y")),
            ["a", "d"]
        );
    }

    #[test]
    fn includes_is_the_recovery_filter() {
        let rooms = ["sid", "x"];
        let in_room = |r: &str| rooms.contains(&r);
        assert!(BroadcastOptions::new().includes(in_room));
        assert!(BroadcastOptions::new().to("x").to("z").includes(in_room));
        assert!(!BroadcastOptions::new().to("z").includes(in_room));
        assert!(!BroadcastOptions::new().except_room("x").includes(in_room));
        assert!(!BroadcastOptions::new()
            .to("x")
            .except_room("sid")
            .includes(in_room));
    }

    #[test]
    fn options_json_shape() {
        let opts = BroadcastOptions::new();
        assert_eq!(
            serde_json::to_string(&opts).expect("json"),
            r#"{"rooms":[],"except":[],"flags":{}}"#
        );
        let mut opts = BroadcastOptions::new().to("b").to("a").except_room("c");
        opts.flags = BroadcastFlags {
            volatile: true,
            compress: Some(false),
            local: true,
            broadcast: true,
            timeout: Some(Duration::from_millis(1500)),
            expect_single_response: true,
        };
        let json = serde_json::to_string(&opts).expect("json");
        assert_eq!(
            json,
            r#"{"rooms":["a","b"],"except":["c"],"flags":{"volatile":true,"compress":false,"local":true,"broadcast":true,"timeout":1500,"expectSingleResponse":true}}"#
        );
        let back: BroadcastOptions = serde_json::from_str(&json).expect("back");
        assert_eq!(back, opts);
    }

    #[test]
    fn options_read_leniently() {
        // What the reference sends: except and flags may be missing, flags may carry members
        // Ferrio does not know, null means unset, the timeout may be fractional.
        let o: BroadcastOptions = serde_json::from_str(r#"{"rooms":["r"]}"#).expect("min");
        assert_eq!(o, BroadcastOptions::new().to("r"));
        let o: BroadcastOptions = serde_json::from_str(
            r#"{"rooms":[],"except":["e","e"],"flags":{"binary":true,"compress":null,"volatile":null,"timeout":2.5}}"#,
        )
        .expect("lenient");
        assert_eq!(o.except.len(), 1);
        assert_eq!(o.flags.compress, None);
        assert!(!o.flags.volatile);
        assert_eq!(o.flags.timeout, Some(Duration::from_micros(2500)));
        let o: BroadcastOptions =
            serde_json::from_str(r#"{"rooms":null,"flags":{"timeout":null}}"#).expect("nulls");
        assert!(o.rooms.is_empty());
        assert_eq!(o.flags.timeout, None);
        let o: BroadcastOptions =
            serde_json::from_str(r#"{"rooms":[],"flags":{"timeout":-5}}"#).expect("negative");
        assert_eq!(o.flags.timeout, Some(Duration::ZERO));
        assert!(serde_json::from_str::<BroadcastOptions>(r#"{"rooms":[1]}"#).is_err());
        assert!(serde_json::from_str::<BroadcastOptions>(r#"{"flags":{"timeout":"5"}}"#).is_err());
    }

    // ----- a model of the reference adapter, for a property test -------------------------------

    /// The reference's maps with JavaScript's insertion-ordered sets.
    #[derive(Default)]
    struct Model {
        rooms: BTreeMap<String, Vec<String>>,
        sids: BTreeMap<String, Vec<String>>,
    }

    fn ev(name: &str, room: &str, id: Option<&str>) -> RoomEvent {
        match (name, id) {
            ("create-room", _) => create(room),
            ("delete-room", _) => delete(room),
            ("join-room", Some(id)) => joined(room, id),
            (_, id) => left(room, id.unwrap_or_default()),
        }
    }

    impl Model {
        fn add_all(&mut self, id: &str, rooms: &[&str]) -> Vec<RoomEvent> {
            let mut out = Vec::new();
            self.sids.entry(id.to_owned()).or_default();
            for room in rooms {
                let set = self.sids.entry(id.to_owned()).or_default();
                if !set.iter().any(|r| r == room) {
                    set.push((*room).to_owned());
                }
                if !self.rooms.contains_key(*room) {
                    self.rooms.insert((*room).to_owned(), Vec::new());
                    out.push(ev("create-room", room, None));
                }
                let members = self.rooms.entry((*room).to_owned()).or_default();
                if !members.iter().any(|m| m == id) {
                    members.push(id.to_owned());
                    out.push(ev("join-room", room, Some(id)));
                }
            }
            out
        }
        fn del_room(&mut self, room: &str, id: &str, out: &mut Vec<RoomEvent>) {
            if let Some(members) = self.rooms.get_mut(room) {
                if let Some(i) = members.iter().position(|m| m == id) {
                    members.remove(i);
                    out.push(ev("leave-room", room, Some(id)));
                }
                if members.is_empty() {
                    self.rooms.remove(room);
                    out.push(ev("delete-room", room, None));
                }
            }
        }
        fn del(&mut self, id: &str, room: &str) -> Vec<RoomEvent> {
            let mut out = Vec::new();
            if let Some(set) = self.sids.get_mut(id) {
                set.retain(|r| r != room);
            }
            self.del_room(room, id, &mut out);
            out
        }
        fn del_all(&mut self, id: &str) -> Vec<RoomEvent> {
            let mut out = Vec::new();
            if let Some(rooms) = self.sids.remove(id) {
                for room in rooms {
                    self.del_room(&room, id, &mut out);
                }
            }
            out
        }
        fn apply(&self, rooms: &[&str], except: &[&str]) -> Vec<String> {
            let excluded: Vec<&String> = except
                .iter()
                .filter_map(|r| self.rooms.get(*r))
                .flatten()
                .collect();
            let mut out: Vec<String> = if rooms.is_empty() {
                self.sids.keys().cloned().collect()
            } else {
                rooms
                    .iter()
                    .filter_map(|r| self.rooms.get(*r))
                    .flatten()
                    .cloned()
                    .collect()
            };
            out.retain(|id| !excluded.contains(&id));
            out.sort();
            out.dedup();
            out
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Add(usize),
        Join(usize, Vec<usize>),
        Leave(usize, usize),
        Remove(usize),
        Targets(Vec<usize>, Vec<usize>),
    }

    const IDS: [&str; 6] = ["s0", "s1", "s2", "s3", "s4", "s5"];
    // Room names include socket ids: joining another socket's room is allowed.
    const ROOMS: [&str; 8] = ["r0", "r1", "r2", "r3", "r4", "s0", "s1", "s2"];

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        let id = 0..IDS.len();
        let room = 0..ROOMS.len();
        prop_oneof![
            id.clone().prop_map(Op::Add),
            (id.clone(), proptest::collection::vec(room.clone(), 0..4))
                .prop_map(|(i, r)| Op::Join(i, r)),
            (id.clone(), room.clone()).prop_map(|(i, r)| Op::Leave(i, r)),
            id.prop_map(Op::Remove),
            (
                proptest::collection::vec(room.clone(), 0..7),
                proptest::collection::vec(room, 0..3)
            )
                .prop_map(|(r, e)| Op::Targets(r, e)),
        ]
    }

    proptest::proptest! {
        #[test]
        fn behaves_like_the_reference_adapter(ops in proptest::collection::vec(op(), 0..60)) {
            let mut index = RoomIndex::new();
            let mut model = Model::default();
            for op in ops {
                match op {
                    Op::Add(i) => {
                        let id = IDS[i];
                        proptest::prop_assert_eq!(index.add_socket(s(id)), model.add_all(id, &[id]));
                    }
                    Op::Join(i, rooms) => {
                        let rooms: Vec<&str> = rooms.iter().map(|r| ROOMS[*r]).collect();
                        proptest::prop_assert_eq!(
                            index.join(&s(IDS[i]), rooms.iter().copied()),
                            model.add_all(IDS[i], &rooms)
                        );
                    }
                    Op::Leave(i, r) => {
                        proptest::prop_assert_eq!(index.leave(IDS[i], ROOMS[r]), model.del(IDS[i], ROOMS[r]));
                    }
                    Op::Remove(i) => {
                        proptest::prop_assert_eq!(index.remove_socket(IDS[i]), model.del_all(IDS[i]));
                    }
                    Op::Targets(rooms, except) => {
                        let rooms: Vec<&str> = rooms.iter().map(|r| ROOMS[*r]).collect();
                        let except: Vec<&str> = except.iter().map(|r| ROOMS[*r]).collect();
                        let mut opts = BroadcastOptions::new();
                        for r in &rooms { opts = opts.to(*r); }
                        for r in &except { opts = opts.except_room(*r); }
                        proptest::prop_assert_eq!(targets_of(&index, &opts), model.apply(&rooms, &except));
                    }
                }
                // Both directions agree with the model after every step.
                proptest::prop_assert_eq!(index.socket_count(), model.sids.len());
                proptest::prop_assert_eq!(index.room_count(), model.rooms.len());
                for (id, rooms) in &model.sids {
                    let got: Vec<&str> = index.rooms_of(id).map(Str::as_str).collect();
                    proptest::prop_assert_eq!(&got, rooms);
                }
                for (room, members) in &model.rooms {
                    let mut want: Vec<&str> = members.iter().map(String::as_str).collect();
                    want.sort_unstable();
                    proptest::prop_assert_eq!(sorted(index.members(room)), want);
                }
            }
        }
    }

    // ----- size --------------------------------------------------------------------------------

    /// Bytes of a hashbrown table holding `capacity` elements of `T`: buckets (a power of two,
    /// at most 7/8 full from 8 buckets on) times the element size, plus one control byte per
    /// bucket and one SIMD group of trailing control bytes.
    fn table_bytes<T>(capacity: usize) -> usize {
        if capacity == 0 {
            return 0;
        }
        let buckets = if capacity < 8 {
            capacity + 1
        } else {
            capacity / 7 * 8
        };
        buckets * std::mem::size_of::<T>() + buckets + 16
    }

    impl StrSet {
        fn heap_bytes(&self) -> usize {
            match self {
                StrSet::One(_) => 0,
                StrSet::Few(v) => v.capacity() * std::mem::size_of::<Str>(),
                StrSet::Many(set) => {
                    std::mem::size_of::<HashSet<Str>>() + table_bytes::<Str>(set.capacity())
                }
            }
        }
    }

    impl RoomIndex {
        /// The heap bytes of the index's tables and vectors (string text not included).
        fn heap_bytes(&self) -> usize {
            table_bytes::<(Str, StrSet)>(self.rooms.capacity())
                + table_bytes::<(Str, StrSet)>(self.sids.capacity())
                + self
                    .rooms
                    .values()
                    .chain(self.sids.values())
                    .map(StrSet::heap_bytes)
                    .sum::<usize>()
        }
    }

    #[test]
    fn a_set_is_as_small_as_a_str() {
        // A `Str` plus the discriminant: the map entries stay at 72 bytes.
        assert!(std::mem::size_of::<StrSet>() <= std::mem::size_of::<Str>() + 8);
    }

    #[test]
    fn table_estimate_matches_hashbrown_capacities() {
        // 3, 7, 14, 28, ... are the capacities of 4, 8, 16, 32 buckets.
        let mut set: HashSet<u64> = HashSet::new();
        set.insert(1);
        assert_eq!(set.capacity(), 3);
        assert_eq!(table_bytes::<u64>(3), 4 * 8 + 4 + 16);
        set.extend(0..10);
        assert_eq!(set.capacity(), 14);
        assert_eq!(table_bytes::<u64>(14), 16 * 8 + 16 + 16);
    }

    #[test]
    fn memory_per_socket_and_membership() {
        const SOCKETS: usize = 100_000;
        const ROOMS: usize = 1_000;
        let ids: Vec<Str> = (0..SOCKETS).map(|i| s(&format!("sock{i:07}"))).collect();
        let rooms: Vec<Str> = (0..ROOMS).map(|i| s(&format!("room{i}"))).collect();
        let start = std::time::Instant::now();

        let mut index = RoomIndex::with_capacity(SOCKETS + ROOMS);
        for id in &ids {
            index.add_socket(id.clone());
        }
        let sockets_only = index.heap_bytes();
        for (i, id) in ids.iter().enumerate() {
            index.join(id, [rooms[i % ROOMS].clone()]);
        }
        let one_room = index.heap_bytes();
        for (i, id) in ids.iter().enumerate() {
            index.join(id, [rooms[(i + 1) % ROOMS].clone()]);
        }
        let two_rooms = index.heap_bytes();
        let built = start.elapsed();

        assert_eq!(index.socket_count(), SOCKETS);
        assert_eq!(index.room_count(), SOCKETS + ROOMS);
        assert_eq!(index.room_size("room7"), 2 * SOCKETS / ROOMS);

        // io.to("room1").to("room2").except("room3") and io.except("room0").emit(...)
        let opts = BroadcastOptions::new()
            .to("room1")
            .to("room2")
            .except_room("room3");
        let to_rooms = index.targets(&opts).count();
        // room1 ∪ room2 = sockets ≡ 0,1,2 (mod 1000); room3 removes those ≡ 2.
        assert_eq!(to_rooms, 2 * SOCKETS / ROOMS);
        let all_but = index
            .targets(&BroadcastOptions::new().except_room("room0"))
            .count();
        assert_eq!(all_but, SOCKETS - 2 * SOCKETS / ROOMS);
        let elapsed = start.elapsed();

        let per_socket = sockets_only / SOCKETS;
        let per_first_membership = (one_room - sockets_only) / SOCKETS;
        let per_second_membership = (two_rooms - one_room) / SOCKETS;
        println!(
            "RoomIndex, {SOCKETS} sockets in {ROOMS} rooms: {per_socket} B/socket, \
             {per_first_membership} B for a first room, {per_second_membership} B for a second, \
             {} MB in all; built in {built:?}, with two target sets in {elapsed:?}",
            two_rooms / 1_000_000
        );
        // The figures the module documentation states, with some slack for the table load.
        assert!(per_socket <= 300, "{per_socket} B per socket");
        assert!(
            (per_first_membership + per_second_membership) / 2 <= 120,
            "{per_first_membership} / {per_second_membership} B per membership"
        );
    }
}
