//! [`RawJson`]: a payload kept as JSON text, and the serde bridges around it: serialising user
//! types with `Bytes` fields into JSON plus attachments, and deserialising event arguments
//! (attachments included) into user types.

use std::fmt;
use std::io;

use bytes::Bytes;
use serde::de::{self, DeserializeOwned, DeserializeSeed, IgnoredAny, SeqAccess, Visitor};
use serde::Serialize;
use serde_json::Value;

use crate::{scan, Str};

/// A JSON value kept as its text, shared with the buffer it was decoded from.
///
/// The server's broadcast path hands a `RawJson` on without parsing or re-serialising it; typed
/// access parses it on demand.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RawJson(Str);

impl RawJson {
    /// Validates `text` as one JSON value, nested no deeper than
    /// [`MAX_JSON_DEPTH`](super::MAX_JSON_DEPTH); surrounding white space is dropped (without
    /// copying).
    ///
    /// ```
    /// use ferrio_proto::socket::RawJson;
    /// assert_eq!(RawJson::parse(" [1, 2] ").unwrap().as_str(), "[1, 2]");
    /// assert!(RawJson::parse("[1,").is_err());
    /// ```
    pub fn parse(text: impl Into<Str>) -> Result<RawJson, InvalidJson> {
        let text: Str = text.into();
        scan::validate(&text).ok_or(InvalidJson)?;
        let trimmed = scan::trim_ws(&text);
        Ok(RawJson(text.slice_ref(trimmed).unwrap_or_default()))
    }

    /// Wraps text already known to be one valid JSON value (or, for a client whose driver took
    /// the check of events over, `ManagerConfig::defer_json_check`, an event's payload of the
    /// right shape that the driver checks).
    pub(crate) fn from_trusted(text: Str) -> RawJson {
        RawJson(text)
    }

    /// The JSON text of a `serde_json::Value`.
    pub fn from_value(value: &Value) -> RawJson {
        RawJson(Str::from(value.to_string()))
    }

    /// A JSON string literal holding `s`.
    pub fn string(s: &str) -> RawJson {
        RawJson(Str::from(scan::quote(s)))
    }

    /// Serialises a value without attachments (`Bytes` become arrays of numbers); see
    /// [`to_json_with_attachments`] for the Socket.IO binary form.
    pub fn from_serialize<T: Serialize + ?Sized>(value: &T) -> Result<RawJson, serde_json::Error> {
        serde_json::to_string(value).map(|s| RawJson(Str::from(s)))
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The JSON text as a shared string.
    pub fn as_shared(&self) -> &Str {
        &self.0
    }

    /// Parses the text into a `serde_json::Value`.
    pub fn to_value(&self) -> Result<Value, serde_json::Error> {
        serde_json::from_str(&self.0)
    }

    /// Deserialises the whole value into `T`, reading the text directly (no intermediate `Value`).
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(&self.0)
    }
}

impl fmt::Debug for RawJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RawJson({})", self.as_str())
    }
}

impl fmt::Display for RawJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of [`RawJson::parse`]: the text is not one JSON value, or is nested too deeply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidJson;

impl fmt::Display for InvalidJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid JSON")
    }
}

impl std::error::Error for InvalidJson {}

/// A serde_json formatter that writes every byte string (`Bytes`, `serde_bytes`) as a placeholder
/// `{"_placeholder":true,"num":N}` and collects the bytes as attachment N, in serialisation order
/// (depth-first, fields in declaration order: the reference's order).
struct AttachmentFormatter<'a> {
    attachments: &'a mut Vec<Bytes>,
}

impl serde_json::ser::Formatter for AttachmentFormatter<'_> {
    fn write_byte_array<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        value: &[u8],
    ) -> io::Result<()> {
        // Arguments written as their text ([`ArgsText::serialize_as_text`]): the tail of a
        // JSON array, made a whole array again. Not in the browser build, which has no use
        // for it (a client passes arguments on rarely) and counts its bytes.
        #[cfg(not(target_family = "wasm"))]
        if RAW_TAIL.take() == Some((value.as_ptr() as usize, value.len())) {
            writer.write_all(b"[")?;
            return writer.write_all(value);
        }
        let num = self.attachments.len();
        let shared = SHARED.with_borrow(|known| {
            known
                .iter()
                .find(|b| b.as_ptr() == value.as_ptr() && b.len() == value.len())
                .cloned()
        });
        self.attachments
            .push(shared.unwrap_or_else(|| Bytes::copy_from_slice(value)));
        write!(writer, "{{\"_placeholder\":true,\"num\":{num}}}")
    }
}

thread_local! {
    /// The buffers [`share_attachments`] made known to the serialiser on this thread.
    static SHARED: std::cell::RefCell<Vec<Bytes>> = const { std::cell::RefCell::new(Vec::new()) };
    /// The address and length of the array tail that [`ArgsText::serialize_as_text`] hands the
    /// serialiser as bytes, to be written as it is.
    static RAW_TAIL: std::cell::Cell<Option<(usize, usize)>> = const { std::cell::Cell::new(None) };
}

/// The serialiser of [`to_json_with_attachments`].
type AttachmentSerializer<'a, 'b> =
    serde_json::Serializer<&'a mut Vec<u8>, AttachmentFormatter<'b>>;

/// The arguments of an event or an ack as received, without attachments: the items of its data
/// array from an index on, kept as the array's text. Passed on (an echo, a relay), they are
/// written as that text, neither parsed nor serialised again; [`ArgsText::to_values`] reads them.
#[derive(Clone, PartialEq, Eq)]
pub struct ArgsText {
    /// The data array.
    data: RawJson,
    /// The items skipped (the event name).
    skip: usize,
    /// Where the first argument starts in `data` (or its closing bracket, without arguments).
    start: usize,
}

impl ArgsText {
    /// The items of `data`, a JSON array, from index `skip` on (`None` if `data` is not an
    /// array or has fewer than `skip` items).
    pub fn new(data: &RawJson, skip: usize) -> Option<ArgsText> {
        let text = data.as_str();
        let b = text.as_bytes();
        if b.first() != Some(&b'[') {
            return None;
        }
        let mut i = scan::skip_ws(b, 1);
        for n in 0..skip {
            if b.get(i) == Some(&b']') {
                return None;
            }
            let end = match scan::plain_first_string(text) {
                // The first item (an event's name), found as the name is read.
                Some(name) if n == 0 => name.len() + 3,
                _ => scan::value_end(b, i)?,
            };
            i = scan::skip_ws(b, end);
            if b.get(i) == Some(&b',') {
                i = scan::skip_ws(b, i + 1);
            }
        }
        Some(ArgsText {
            data: data.clone(),
            skip,
            start: i,
        })
    }

    /// The arguments' text after the opening bracket: `a,b]` (`]` for none).
    fn tail(&self) -> &str {
        self.data.as_str().get(self.start..).unwrap_or("]")
    }

    /// The number of arguments.
    pub fn len(&self) -> usize {
        scan::array_items(self.data.as_str())
            .skip(self.skip)
            .count()
    }

    /// True if there are no arguments.
    pub fn is_empty(&self) -> bool {
        self.tail().starts_with(']')
    }

    /// The arguments as `serde_json` values.
    pub fn to_values(&self) -> Result<Vec<Value>, serde_json::Error> {
        deserialize_args(&self.data, self.skip, &[])
    }

    /// True when [`ArgsText::to_values`] cannot fail. The text is valid JSON, but serde_json
    /// refuses a little of what `JSON.parse` takes (numbers beyond `f64`, lone surrogates): a
    /// caller that must report such an error where the arguments are taken reads them at
    /// once unless this is true, and may read them later otherwise.
    pub fn reads_as_values(&self) -> bool {
        scan::reads_as_values(self.tail())
    }

    /// Writes the arguments as a JSON array of their text when `s` is the serialiser that
    /// builds events and acks ([`to_json_with_attachments`], which [`event_json`] and
    /// [`ack_json`] use; known by its exact type); gives `s` back otherwise (another
    /// serialiser, or the browser build), for the caller to serialise the values.
    pub fn serialize_as_text<S: serde::Serializer>(
        &self,
        s: S,
    ) -> Result<Result<S::Ok, S::Error>, S> {
        #[cfg(not(target_family = "wasm"))]
        if typeid::of::<S>() == typeid::of::<&mut AttachmentSerializer<'_, '_>>() {
            return Ok(self.write_tail(s));
        }
        Err(s)
    }

    /// Hands the arguments' text to the core's serialiser (see [`ArgsText::serialize_as_text`]).
    #[cfg(not(target_family = "wasm"))]
    fn write_tail<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let tail = self.tail();
        RAW_TAIL.set(Some((tail.as_ptr() as usize, tail.len())));
        s.serialize_bytes(tail.as_bytes())
    }
}

impl fmt::Debug for ArgsText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ArgsText([{})", self.tail())
    }
}

/// Runs `f` (a serialisation) with `bufs` known to the serialiser: a byte string that is one of
/// them (the same memory, the same length) becomes an attachment that shares it, instead of a
/// copy. serde hands a serialiser bytes as a slice; a value that holds its bytes as [`Bytes`]
/// (arguments passed on as received, say) can so send them on without copying them.
///
/// ```
/// use bytes::Bytes;
/// use ferrio_proto::socket::{share_attachments, to_json_with_attachments};
/// let buf = Bytes::from(vec![7u8; 1024]);
/// let (_, attachments) =
///     share_attachments(std::slice::from_ref(&buf), || to_json_with_attachments(&(&buf,))).unwrap();
/// assert_eq!(attachments[0].as_ptr(), buf.as_ptr());
/// ```
pub fn share_attachments<R>(bufs: &[Bytes], f: impl FnOnce() -> R) -> R {
    /// Forgets the buffers made known, however `f` ends.
    struct Forget(usize);
    impl Drop for Forget {
        fn drop(&mut self) {
            SHARED.with_borrow_mut(|known| known.truncate(self.0));
        }
    }
    if bufs.is_empty() {
        return f();
    }
    let _forget = Forget(SHARED.with_borrow_mut(|known| {
        let before = known.len();
        known.extend_from_slice(bufs);
        before
    }));
    f()
}

/// Serialises `value` as Socket.IO does: JSON in which every byte string is replaced by a
/// placeholder, plus the attachments. No `serde_json::Value` in between.
///
/// ```
/// use bytes::Bytes;
/// use ferrio_proto::socket::to_json_with_attachments;
/// #[derive(serde::Serialize)]
/// struct Photo { name: &'static str, data: Bytes }
/// let (json, attachments) = to_json_with_attachments(&Photo { name: "a", data: Bytes::from_static(b"\x01") }).unwrap();
/// assert_eq!(json.as_str(), r#"{"name":"a","data":{"_placeholder":true,"num":0}}"#);
/// assert_eq!(attachments, [Bytes::from_static(b"\x01")]);
/// ```
pub fn to_json_with_attachments<T: Serialize + ?Sized>(
    value: &T,
) -> Result<(RawJson, Vec<Bytes>), serde_json::Error> {
    let mut out = Vec::with_capacity(64);
    let mut attachments = Vec::new();
    let mut ser: AttachmentSerializer<'_, '_> = serde_json::Serializer::with_formatter(
        &mut out,
        AttachmentFormatter {
            attachments: &mut attachments,
        },
    );
    value.serialize(&mut ser)?;
    let text = String::from_utf8(out).map_err(de::Error::custom)?;
    Ok((RawJson(Str::from(text)), attachments))
}

/// Builds the data array of an event, `[name, ...args]`, from `args`, a value that serialises as a
/// sequence (a tuple, `()` for none): each element becomes one argument.
///
/// ```
/// use ferrio_proto::socket::event_json;
/// let (json, _) = event_json("chat", &("hi", 2)).unwrap();
/// assert_eq!(json.as_str(), r#"["chat","hi",2]"#);
/// let (json, _) = event_json("ping", &()).unwrap();
/// assert_eq!(json.as_str(), r#"["ping"]"#);
/// ```
pub fn event_json<T: Serialize + ?Sized>(
    name: &str,
    args: &T,
) -> Result<(RawJson, Vec<Bytes>), serde_json::Error> {
    let (args, attachments) = to_json_with_attachments(args)?;
    let inner = seq_inner(args.as_str())?;
    let name = serde_json::to_string(name)?;
    let mut text = String::with_capacity(name.len() + inner.len() + 3);
    text.push('[');
    text.push_str(&name);
    if !inner.is_empty() {
        text.push(',');
        text.push_str(inner);
    }
    text.push(']');
    Ok((RawJson(Str::from(text)), attachments))
}

thread_local! {
    /// The buffer [`with_ack_json`] serialises into, kept for the next one on this thread
    /// (up to [`SCRATCH_KEEP`] bytes).
    static SCRATCH: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// The most room [`SCRATCH`] keeps between serialisations.
const SCRATCH_KEEP: usize = 16 * 1024;

/// Serialises `args` as [`ack_json`] does, into a buffer reused from one call to the next,
/// and hands the JSON and the attachments to `f`: a caller that copies the JSON into a text of
/// its own (an encoded packet) allocates nothing more for it.
pub(crate) fn with_ack_json<T: Serialize + ?Sized, R>(
    args: &T,
    f: impl FnOnce(&str, Vec<Bytes>) -> R,
) -> Result<R, serde_json::Error> {
    // Taken out while in use: a serialisation that serialises (a `Serialize` of the
    // application's) finds it empty and uses a buffer of its own.
    let mut out = SCRATCH.take();
    out.clear();
    let result = (|| {
        let mut attachments = Vec::new();
        let mut ser: AttachmentSerializer<'_, '_> = serde_json::Serializer::with_formatter(
            &mut out,
            AttachmentFormatter {
                attachments: &mut attachments,
            },
        );
        args.serialize(&mut ser)?;
        let json = std::str::from_utf8(&out).map_err(de::Error::custom)?;
        let data = if seq_inner(json)?.is_empty() {
            "[]"
        } else {
            json
        };
        Ok(f(data, attachments))
    })();
    if out.capacity() <= SCRATCH_KEEP {
        SCRATCH.set(out);
    }
    result
}

/// Builds the data array of an ack from `args`, a value that serialises as a sequence.
pub fn ack_json<T: Serialize + ?Sized>(
    args: &T,
) -> Result<(RawJson, Vec<Bytes>), serde_json::Error> {
    let (json, attachments) = to_json_with_attachments(args)?;
    if seq_inner(json.as_str())?.is_empty() {
        return Ok((RawJson(Str::from_static("[]")), attachments));
    }
    Ok((json, attachments))
}

/// The text between the brackets of a compact JSON array (`null` counts as no arguments, which is
/// how `()` serialises).
fn seq_inner(json: &str) -> Result<&str, serde_json::Error> {
    if json == "null" {
        return Ok("");
    }
    json.strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .ok_or_else(|| {
            de::Error::custom("arguments must serialise as a sequence: pass a tuple, e.g. (value,)")
        })
}

/// Deserialises the elements of a JSON array from index `skip` on as `T` (a tuple or a struct
/// read as a sequence). With no attachments it reads the text directly; with attachments it goes
/// through a `Value` so that placeholders can become `Bytes`. A zero-sized `T` (`()`, a unit
/// struct) takes any arguments, as a JavaScript listener declared without parameters does.
pub(crate) fn deserialize_args<T: DeserializeOwned>(
    json: &RawJson,
    skip: usize,
    attachments: &[Bytes],
) -> Result<T, serde_json::Error> {
    if std::mem::size_of::<T>() == 0 {
        if let Ok(unit) = serde_json::from_str::<T>("null") {
            return Ok(unit);
        }
    }
    if attachments.is_empty() {
        let mut de = serde_json::Deserializer::from_str(json.as_str());
        let value = de.deserialize_seq_with(ArgsVisitor::<T> {
            skip,
            marker: std::marker::PhantomData,
        })?;
        de.end()?;
        Ok(value)
    } else {
        let value = json.to_value()?;
        let items = value
            .as_array()
            .ok_or_else(|| de::Error::custom("payload is not an array"))?;
        let rest = items.get(skip..).unwrap_or_default();
        T::deserialize(ValueSeqDe {
            items: rest,
            bufs: attachments,
        })
    }
}

/// Deserialises a whole value, placeholders becoming `Bytes` when there are attachments.
pub(crate) fn deserialize_value<T: DeserializeOwned>(
    json: &RawJson,
    attachments: &[Bytes],
) -> Result<T, serde_json::Error> {
    if attachments.is_empty() {
        json.deserialize()
    } else {
        let value = json.to_value()?;
        T::deserialize(ValueDe {
            v: &value,
            bufs: attachments,
        })
    }
}

trait DeserializeSeqWith<'de> {
    fn deserialize_seq_with<V: Visitor<'de>>(
        &mut self,
        v: V,
    ) -> Result<V::Value, serde_json::Error>;
}

impl<'de, R: serde_json::de::Read<'de>> DeserializeSeqWith<'de> for serde_json::Deserializer<R> {
    fn deserialize_seq_with<V: Visitor<'de>>(
        &mut self,
        v: V,
    ) -> Result<V::Value, serde_json::Error> {
        de::Deserializer::deserialize_seq(self, v)
    }
}

struct ArgsVisitor<T> {
    skip: usize,
    marker: std::marker::PhantomData<T>,
}

impl<'de, T: DeserializeOwned> Visitor<'de> for ArgsVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of arguments")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<T, A::Error> {
        for _ in 0..self.skip {
            seq.next_element::<IgnoredAny>()?;
        }
        let value = T::deserialize(RestSeq { seq: &mut seq })?;
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(value)
    }
}

/// The remaining elements of a sequence, offered to `T` as a sequence of its own.
struct RestSeq<'s, A> {
    seq: &'s mut A,
}

impl<'de, A: SeqAccess<'de>> de::Deserializer<'de> for RestSeq<'_, A> {
    type Error = A::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, A::Error> {
        visitor.visit_seq(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier
        ignored_any
    }
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for RestSeq<'_, A> {
    type Error = A::Error;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, A::Error> {
        self.seq.next_element_seed(seed)
    }
}

/// The attachment a placeholder object stands for, if `map` is one.
fn placeholder<'b>(map: &serde_json::Map<String, Value>, bufs: &'b [Bytes]) -> Option<&'b Bytes> {
    if bufs.is_empty() || map.get("_placeholder") != Some(&Value::Bool(true)) {
        return None;
    }
    let num = map.get("num")?.as_f64()?;
    if num.fract() != 0.0 || num < 0.0 {
        return None;
    }
    bufs.get(num as usize)
}

/// A `Value` deserialiser that turns placeholder objects into byte strings wherever the target
/// type asks for bytes (`Bytes`, `serde_bytes`); a target that takes any value (such as
/// `serde_json::Value`) sees the placeholder object itself.
struct ValueDe<'a> {
    v: &'a Value,
    bufs: &'a [Bytes],
}

impl<'de> de::Deserializer<'de> for ValueDe<'_> {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.v {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Number(n) => de::Deserializer::deserialize_any(n, visitor),
            Value::String(s) => visitor.visit_str(s),
            Value::Array(items) => visitor.visit_seq(ValueSeqDe {
                items,
                bufs: self.bufs,
            }),
            Value::Object(map) => visitor.visit_map(ValueMapDe {
                iter: map.iter(),
                value: None,
                bufs: self.bufs,
            }),
        }
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.v {
            Value::Object(map) => match placeholder(map, self.bufs) {
                Some(buf) => visitor.visit_bytes(buf),
                None => self.deserialize_any(visitor),
            },
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.v {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        // Enums are rare in event arguments: read them from an owned copy of the value.
        de::Deserializer::deserialize_enum(self.v.clone(), name, variants, visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string unit unit_struct
        seq tuple tuple_struct map struct identifier ignored_any
    }
}

struct ValueSeqDe<'a> {
    items: &'a [Value],
    bufs: &'a [Bytes],
}

impl<'de> SeqAccess<'de> for ValueSeqDe<'_> {
    type Error = serde_json::Error;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, Self::Error> {
        match self.items.split_first() {
            None => Ok(None),
            Some((first, rest)) => {
                self.items = rest;
                seed.deserialize(ValueDe {
                    v: first,
                    bufs: self.bufs,
                })
                .map(Some)
            }
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

impl<'de> de::Deserializer<'de> for ValueSeqDe<'_> {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_seq(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier
        ignored_any
    }
}

struct ValueMapDe<'a> {
    iter: serde_json::map::Iter<'a>,
    value: Option<&'a Value>,
    bufs: &'a [Bytes],
}

impl<'de> de::MapAccess<'de> for ValueMapDe<'_> {
    type Error = serde_json::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        match self.iter.next() {
            None => Ok(None),
            Some((k, v)) => {
                self.value = Some(v);
                seed.deserialize(de::value::StrDeserializer::<serde_json::Error>::new(k))
                    .map(Some)
            }
        }
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<S::Value, Self::Error> {
        let v = self
            .value
            .take()
            .ok_or_else(|| <serde_json::Error as de::Error>::custom("value before key"))?;
        seed.deserialize(ValueDe { v, bufs: self.bufs })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_read_as_json_parse_reads_them() {
        // The nearest double, where serde_json's default reading is a unit of the last place
        // off (-7.249999999999999e-300).
        let args = RawJson::parse("[-7.25e-300,0.1,5e-324]").expect("json");
        let read: Vec<f64> = args.deserialize().expect("floats");
        assert_eq!(read, [-7.25e-300, 0.1, 5e-324]);
        assert_eq!(
            args.to_value().expect("value")[0].as_f64(),
            Some(-7.25e-300)
        );
    }

    #[derive(Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Photo {
        name: String,
        data: Bytes,
        thumbs: Vec<Bytes>,
        caption: Option<String>,
    }

    #[test]
    fn placeholders_in_depth_first_order() {
        let photo = Photo {
            name: "cat".into(),
            data: Bytes::from_static(b"\x01\x02"),
            thumbs: vec![Bytes::from_static(b"\x03"), Bytes::from_static(b"\x04")],
            caption: None,
        };
        let (json, atts) = event_json("photo", &(&photo, 7)).expect("serialises");
        assert_eq!(
            json.as_str(),
            r#"["photo",{"name":"cat","data":{"_placeholder":true,"num":0},"thumbs":[{"_placeholder":true,"num":1},{"_placeholder":true,"num":2}],"caption":null},7]"#
        );
        assert_eq!(atts.len(), 3);
        let (back, n): (Photo, u32) = deserialize_args(&json, 1, &atts).expect("deserialises");
        assert_eq!(back, photo);
        assert_eq!(n, 7);
    }

    #[test]
    fn args_read_directly_without_attachments() {
        let json = RawJson::parse(r#"["ev",{"a":1},"x",true]"#).expect("json");
        let (a, b): (Value, String) = deserialize_args(&json, 1, &[]).expect("ok");
        assert_eq!(a["a"], 1);
        assert_eq!(b, "x");
        let err = deserialize_args::<(u8,)>(&json, 1, &[]);
        assert!(err.is_err());
    }

    #[test]
    fn unit_takes_any_arguments() {
        let none = RawJson::parse(r#"["ev"]"#).expect("json");
        let some = RawJson::parse(r#"["ev",1,{"a":2}]"#).expect("json");
        deserialize_args::<()>(&none, 1, &[]).expect("no arguments");
        deserialize_args::<()>(&some, 1, &[]).expect("arguments ignored");
        assert!(deserialize_args::<(u8,)>(&none, 1, &[]).is_err());
    }

    /// Arguments handed to [`ArgsText::serialize_as_text`] as a value of their own.
    struct Passed<'a>(&'a ArgsText);

    impl Serialize for Passed<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            match self.0.serialize_as_text(s) {
                Ok(done) => done,
                Err(s) => serde::Serialize::serialize(&self.0.to_values().expect("values"), s),
            }
        }
    }

    #[test]
    fn args_text_is_written_as_received() {
        let data = RawJson::parse(r#"[ "ev" , {"b":1,"a":2.50} ,"x\n" ]"#).expect("json");
        let args = ArgsText::new(&data, 1).expect("array");
        assert_eq!((args.len(), args.is_empty()), (2, false));
        assert!(args.reads_as_values());
        let values = args.to_values().expect("values");
        assert_eq!(
            values,
            [serde_json::json!({"a": 2.5, "b": 1}), "x\n".into()]
        );
        // Events and acks built from them: the text as it came (key order, number form).
        let (json, attachments) = ack_json(&Passed(&args)).expect("ack");
        assert_eq!(json.as_str(), r#"[{"b":1,"a":2.50} ,"x\n" ]"#);
        assert!(attachments.is_empty());
        let (json, _) = event_json("back", &Passed(&args)).expect("event");
        assert_eq!(json.as_str(), r#"["back",{"b":1,"a":2.50} ,"x\n" ]"#);
        assert!(RawJson::parse(json.as_str()).is_ok());
        // Nested in other arguments, too.
        let (json, _) = ack_json(&(1, Passed(&args))).expect("nested");
        assert_eq!(json.as_str(), r#"[1,[{"b":1,"a":2.50} ,"x\n" ]]"#);
        // Another serialiser gets the values.
        assert_eq!(
            serde_json::to_string(&Passed(&args)).expect("plain"),
            r#"[{"a":2.5,"b":1},"x\n"]"#
        );
        // No arguments; an ack's arguments are all its items.
        let bare = ArgsText::new(&RawJson::parse(r#"["ev"]"#).expect("json"), 1).expect("array");
        assert_eq!((bare.len(), bare.is_empty()), (0, true));
        assert_eq!(ack_json(&Passed(&bare)).expect("ack").0.as_str(), "[]");
        let all = ArgsText::new(&RawJson::parse("[1,2]").expect("json"), 0).expect("array");
        assert_eq!(ack_json(&Passed(&all)).expect("ack").0.as_str(), "[1,2]");
        // Not an array, or fewer items than skipped.
        assert!(ArgsText::new(&RawJson::parse("{}").expect("json"), 0).is_none());
        assert!(ArgsText::new(&RawJson::parse("[]").expect("json"), 1).is_none());
    }

    #[test]
    fn args_text_that_serde_json_may_refuse_is_known() {
        let reads = |text: &str| {
            let data = RawJson::parse(text).expect("json");
            ArgsText::new(&data, 0).expect("array").reads_as_values()
        };
        assert!(reads(r#"[1,-2.5,"e1",true,false,null,{"e":[0.125]}]"#));
        // What serde_json refuses (and the scanner accepts), and what is near it.
        for text in [
            "[1e400]",
            r#"["\ud800"]"#,
            "[1E2]",
            r#"["a\u0041"]"#,
            &format!("[{}]", "9".repeat(301)),
        ] {
            assert!(!reads(text), "{text}");
        }
        assert!(serde_json::from_str::<Value>("[1e400]").is_err());
        assert!(serde_json::from_str::<Value>(r#"["\ud800"]"#).is_err());
        assert!(reads(&format!("[{}]", "9".repeat(300))));
        assert!(serde_json::from_str::<Value>(&format!("[{}]", "9".repeat(300))).is_ok());
    }

    #[test]
    fn non_sequence_args_are_refused() {
        assert!(event_json("e", &5).is_err());
        assert!(ack_json(&"x").is_err());
        assert_eq!(ack_json(&()).expect("ok").0.as_str(), "[]");
        assert_eq!(ack_json(&(1,)).expect("ok").0.as_str(), "[1]");
    }
}
