//! A strict JSON scanner over text: validation, and reading the few members the protocol needs
//! (array items, object members, strings, non-negative integers), with nothing built and no
//! serde. The packet decoders and the client path use it, so the browser build carries no JSON
//! library; typed arguments still go through serde_json ([`crate::socket::RawJson`]).
//!
//! The grammar is RFC 8259's, as `JSON.parse` reads it: white space is space, tab, LF and CR;
//! `\u` escapes may be lone surrogates (read as U+FFFD); numbers may be out of `f64`'s range.
//! Nesting is limited to [`MAX_DEPTH`], so the scan's recursion is bounded.

use std::borrow::Cow;

/// The deepest nesting of arrays and objects accepted: serde_json's own limit, so that every
/// text that passes can also be read into a `serde_json::Value` or a user type.
pub(crate) const MAX_DEPTH: usize = 127;

/// The kind of a JSON value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Null,
    Bool,
    Number,
    String,
    Array,
    Object,
}

/// If `text` is one JSON value (white space around it allowed), nested no deeper than
/// [`MAX_DEPTH`]: its kind.
pub(crate) fn validate(text: &str) -> Option<Kind> {
    let b = text.as_bytes();
    let (kind, end) = value(b, skip_ws(b, 0), 0)?;
    (skip_ws(b, end) == b.len()).then_some(kind)
}

/// The index of the first byte at or after `i` that is not JSON white space.
pub(crate) fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// Scans the value starting exactly at `i`, nested in `depth` arrays or objects: its kind and
/// the index just past it.
fn value(b: &[u8], i: usize, depth: usize) -> Option<(Kind, usize)> {
    match *b.get(i)? {
        b'"' => Some((Kind::String, string_end(b, i)?)),
        b'[' => Some((Kind::Array, container_end(b, i, depth + 1, b']')?)),
        b'{' => Some((Kind::Object, container_end(b, i, depth + 1, b'}')?)),
        b't' => literal(b, i, b"true", Kind::Bool),
        b'f' => literal(b, i, b"false", Kind::Bool),
        b'n' => literal(b, i, b"null", Kind::Null),
        b'-' | b'0'..=b'9' => Some((Kind::Number, number_end(b, i)?)),
        _ => None,
    }
}

fn literal(b: &[u8], i: usize, word: &[u8], kind: Kind) -> Option<(Kind, usize)> {
    b.get(i..i + word.len())
        .filter(|w| *w == word)
        .map(|_| (kind, i + word.len()))
}

fn digits(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    i
}

/// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
fn number_end(b: &[u8], mut i: usize) -> Option<usize> {
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    match b.get(i)? {
        b'0' => i += 1,
        b'1'..=b'9' => i = digits(b, i + 1),
        _ => return None,
    }
    if b.get(i) == Some(&b'.') {
        let end = digits(b, i + 1);
        if end == i + 1 {
            return None;
        }
        i = end;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let end = digits(b, i);
        if end == i {
            return None;
        }
        i = end;
    }
    Some(i)
}

/// The index just past the value starting exactly at `i`.
pub(crate) fn value_end(b: &[u8], i: usize) -> Option<usize> {
    value(b, i, 0).map(|(_, end)| end)
}

/// The index just past the string starting at `i` (a `"`). Control characters must be escaped;
/// the text is UTF-8 already.
pub(crate) fn string_end(b: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    loop {
        match *b.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' => {
                i += 1;
                match *b.get(i)? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i += 1,
                    b'u' => {
                        hex4(b, i + 1)?;
                        i += 5;
                    }
                    _ => return None,
                }
            }
            0..=0x1f => return None,
            _ => i += 1,
        }
    }
}

fn hex4(b: &[u8], i: usize) -> Option<u16> {
    let mut v = 0u16;
    for &c in b.get(i..i + 4)? {
        v = v << 4 | (c as char).to_digit(16)? as u16;
    }
    Some(v)
}

/// The index just past the array (`close` = `]`) or object (`}`) starting at `start`, nested
/// in `depth` containers counting itself.
fn container_end(b: &[u8], start: usize, depth: usize, close: u8) -> Option<usize> {
    if depth > MAX_DEPTH {
        return None;
    }
    let mut i = skip_ws(b, start + 1);
    if b.get(i) == Some(&close) {
        return Some(i + 1);
    }
    loop {
        if close == b'}' {
            if b.get(i) != Some(&b'"') {
                return None;
            }
            i = skip_ws(b, string_end(b, i)?);
            if b.get(i) != Some(&b':') {
                return None;
            }
            i = skip_ws(b, i + 1);
        }
        i = skip_ws(b, value(b, i, depth)?.1);
        match *b.get(i)? {
            b',' => i = skip_ws(b, i + 1),
            c if c == close => return Some(i + 1),
            _ => return None,
        }
    }
}

/// The items of the JSON array `text`, as the text of each value. Stops (early) on invalid
/// text; callers pass validated text.
pub(crate) fn array_items(text: &str) -> impl Iterator<Item = &str> {
    Members::new(text, false).map(|(_, value)| value)
}

/// The members of the JSON object `text`, in order: the key's JSON text (quoted) and the value's
/// text. Stops (early) on invalid text; callers pass validated text.
pub(crate) fn object_members(text: &str) -> impl Iterator<Item = (&str, &str)> {
    Members::new(text, true)
}

/// The members of a JSON object (the key's text and the value's) or the items of a JSON array
/// (an empty key and the value's text): one iterator for both, so that the browser's module
/// has one copy of the walk.
struct Members<'a> {
    text: &'a str,
    /// Where the next member or item starts (white space before it included).
    i: usize,
    /// False once the closing bracket or invalid text was reached.
    open: bool,
    /// An object (members with keys) or an array.
    object: bool,
}

impl<'a> Members<'a> {
    fn new(text: &'a str, object: bool) -> Self {
        let b = text.as_bytes();
        let i = skip_ws(b, 0);
        let open = b.get(i).copied() == Some(if object { b'{' } else { b'[' });
        Members {
            text,
            i: i + 1,
            open,
            object,
        }
    }

    fn member(&mut self) -> Option<(&'a str, &'a str)> {
        let b = self.text.as_bytes();
        let mut i = skip_ws(b, self.i);
        let mut key = 0..0;
        if self.object {
            if b.get(i) != Some(&b'"') {
                return None;
            }
            let key_end = string_end(b, i)?;
            key = i..key_end;
            i = skip_ws(b, key_end);
            if b.get(i) != Some(&b':') {
                return None;
            }
            i = skip_ws(b, i + 1);
        } else if b.get(i) == Some(&b']') {
            return None;
        }
        let (_, end) = value(b, i, 1)?;
        self.i = skip_ws(b, end);
        match b.get(self.i) {
            Some(b',') => self.i += 1,
            _ => self.open = false,
        }
        Some((self.text.get(key)?, self.text.get(i..end)?))
    }
}

impl<'a> Iterator for Members<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        if !self.open {
            return None;
        }
        let member = self.member();
        if member.is_none() {
            self.open = false;
        }
        member
    }
}

/// The value of member `key` of the JSON object `text`; the last one when a key repeats, as
/// `JSON.parse` keeps it.
pub(crate) fn member<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    object_members(text)
        .filter(|(k, _)| string(k).as_deref() == Some(key))
        .last()
        .map(|(_, v)| v)
}

/// The string a JSON string token (quotes included) stands for. Lone surrogates read as U+FFFD.
pub(crate) fn string(token: &str) -> Option<Cow<'_, str>> {
    let inner = token.strip_prefix('"')?.strip_suffix('"')?;
    if !has_byte(inner, b'\\') {
        return Some(Cow::Borrowed(inner));
    }
    let b = inner.as_bytes();
    let mut out = String::with_capacity(inner.len());
    let mut i = 0;
    while i < b.len() {
        let run = find_byte(&inner[i..], b'\\').map_or(b.len(), |n| i + n);
        out.push_str(inner.get(i..run)?);
        if run == b.len() {
            break;
        }
        i = run + 1;
        match *b.get(i)? {
            b'"' => out.push('"'),
            b'\\' => out.push('\\'),
            b'/' => out.push('/'),
            b'b' => out.push('\u{8}'),
            b'f' => out.push('\u{c}'),
            b'n' => out.push('\n'),
            b'r' => out.push('\r'),
            b't' => out.push('\t'),
            b'u' => {
                let unit = hex4(b, i + 1)?;
                i += 4;
                let low = (b.get(i + 1..i + 3) == Some(b"\\u"))
                    .then(|| hex4(b, i + 3))
                    .flatten()
                    .filter(|low| (0xDC00..0xE000).contains(low));
                let c = match (unit, low) {
                    (0xD800..=0xDBFF, Some(low)) => {
                        i += 6;
                        char::from_u32(
                            0x10000
                                + ((u32::from(unit) - 0xD800) << 10)
                                + (u32::from(low) - 0xDC00),
                        )
                    }
                    _ => char::from_u32(u32::from(unit)),
                };
                out.push(c.unwrap_or(char::REPLACEMENT_CHARACTER));
            }
            _ => return None,
        }
        i += 1;
    }
    Some(Cow::Owned(out))
}

/// True if the text of a valid JSON value is a number (it starts with `-` or a digit).
pub(crate) fn is_number(token: &str) -> bool {
    // By its first byte: no `char` decoded (both are ASCII).
    matches!(token.as_bytes().first(), Some(b'-' | b'0'..=b'9'))
}

/// A non-negative JSON integer written with digits only (no fraction, exponent or sign), as the
/// handshake's numbers are.
pub(crate) fn unsigned(token: &str) -> Option<u64> {
    let mut n: u64 = 0;
    for c in token.bytes() {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    (!token.is_empty()).then_some(n)
}

/// The position of the first byte `b` (ASCII) in `s`. In the browser build a plain loop: the
/// strings searched are short, and `str::find` would bring its searcher and `memchr` into the
/// module; elsewhere `str::find`, whose word-at-a-time search suits long strings.
pub(crate) fn find_byte(s: &str, b: u8) -> Option<usize> {
    #[cfg(target_family = "wasm")]
    {
        s.bytes().position(|c| c == b)
    }
    #[cfg(not(target_family = "wasm"))]
    {
        s.find(char::from(b))
    }
}

/// Whether `s` holds the byte `b` (ASCII): a plain loop in the browser build, as
/// [`find_byte`]; elsewhere `<[u8]>::contains` (what `str::contains` does for an ASCII `char`).
pub(crate) fn has_byte(s: &str, b: u8) -> bool {
    #[cfg(target_family = "wasm")]
    {
        find_byte(s, b).is_some()
    }
    #[cfg(not(target_family = "wasm"))]
    {
        s.as_bytes().contains(&b)
    }
}

/// Whether serde_json reads the valid JSON text `text` into values without an error. The
/// scanner accepts what `JSON.parse` accepts, serde_json two things less: numbers out of
/// `f64`'s range and `\u` escapes of lone surrogates. Conservative: `false` for any `\u`
/// escape, any number with an exponent and any number written with more than 300 characters
/// (one without an exponent is then below 10^300).
pub(crate) fn reads_as_values(text: &str) -> bool {
    let b = text.as_bytes();
    let mut i = 0;
    // The characters of the number being read, if one is.
    let mut number = 0usize;
    while i < b.len() {
        let c = b[i];
        i += 1;
        if c == b'"' {
            // To the closing quote, over escapes (a `\\` and the byte after it).
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    if b.get(i + 1) == Some(&b'u') {
                        return false;
                    }
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            number = 0;
        } else if c.is_ascii_digit() || c == b'-' || c == b'+' || c == b'.' {
            number += 1;
            if number > 300 {
                return false;
            }
        } else if number > 0 && (c | 0x20) == b'e' {
            return false;
        } else {
            number = 0;
        }
    }
    true
}

/// The characters of the first item of the JSON array `text` when it is a string without
/// escapes right after the bracket (an event's name, as a rule): found by its closing quote
/// alone.
pub(crate) fn plain_first_string(text: &str) -> Option<&str> {
    let b = text.as_bytes();
    if b.first() != Some(&b'[') || b.get(1) != Some(&b'"') {
        return None;
    }
    let mut i = 2;
    while i < b.len() {
        match b[i] {
            b'"' => return text.get(2..i),
            b'\\' => return None,
            _ => i += 1,
        }
    }
    None
}

/// `s` without JSON white space (space, tab, LF, CR) at either end.
pub(crate) fn trim_ws(s: &str) -> &str {
    let is_ws = |c: &u8| matches!(c, b' ' | b'\t' | b'\n' | b'\r');
    let b = s.as_bytes();
    let start = b.iter().position(|c| !is_ws(c)).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !is_ws(c)).map_or(start, |e| e + 1);
    // Both ends are next to ASCII bytes: char boundaries.
    s.get(start..end).unwrap_or_default()
}

/// Appends `s` as a JSON string, escaped as `JSON.stringify` does.
pub(crate) fn push_string(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    let mut start = 0;
    // By bytes: every character escaped is ASCII, so each `i` below is a character boundary
    // (the bytes of other characters are all 0x80 and up).
    for (i, &c) in s.as_bytes().iter().enumerate() {
        let escape = match c {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            8 => "\\b",
            12 => "\\f",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=31 => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push_str("\\u00");
            out.push(HEX[(c as usize) >> 4] as char);
            out.push(HEX[(c as usize) & 0xf] as char);
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// `s` as a JSON string.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::new();
    push_string(&mut out, s);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn validates() {
        for ok in [
            "0",
            "-0",
            "1.5e-3",
            "2E+10",
            "1e400",
            " true ",
            "null",
            r#""a\u0041\ud800""#,
            r#"[1,"b",{"c":[null,false]}]"#,
            "[ ]",
            "{ }",
            "{\"a\" : 1 , \"a\":2}",
        ] {
            assert!(validate(ok).is_some(), "{ok}");
        }
        for bad in [
            "",
            " ",
            "01",
            "1.",
            ".5",
            "-",
            "1e",
            "+1",
            "[1,]",
            "[,1]",
            "{\"a\"}",
            "{a:1}",
            "{\"a\":1,}",
            "\"\n\"",
            "\"\\x\"",
            "\"\\u12\"",
            "tru",
            "nul",
            "[1] 2",
            "'a'",
            "NaN",
            "[",
            "{\"a\":",
            "\"abc",
        ] {
            assert!(validate(bad).is_none(), "{bad:?}");
        }
        assert_eq!(validate(" {} "), Some(Kind::Object));
        assert_eq!(validate("[]"), Some(Kind::Array));
        assert_eq!(validate("\"\""), Some(Kind::String));
    }

    #[test]
    fn unsigned_matches_str_parse() {
        for t in [
            "0",
            "007",
            "18446744073709551615",
            "18446744073709551616",
            "",
            "+1",
            "1 ",
            "é",
        ] {
            let expected = t
                .bytes()
                .all(|c| c.is_ascii_digit())
                .then(|| t.parse().ok())
                .flatten();
            assert_eq!(unsigned(t), expected, "{t:?}");
        }
    }

    #[test]
    fn find_byte_and_trim_ws() {
        assert_eq!(find_byte("a/b,c", b','), Some(3));
        assert_eq!(find_byte("é,", b','), Some(2));
        assert_eq!(find_byte("abc", b','), None);
        assert!(has_byte("a\\b", b'\\'));
        assert!(!has_byte("ab", b'\\'));
        assert_eq!(trim_ws(" \t\n\r[1, 2] \r\n"), "[1, 2]");
        assert_eq!(trim_ws("  "), "");
        assert_eq!(trim_ws(""), "");
        assert_eq!(trim_ws("\u{a0}\"é\""), "\u{a0}\"é\"");
    }

    #[test]
    fn depth_limit() {
        let nest = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
        assert!(validate(&nest(MAX_DEPTH)).is_some());
        assert!(validate(&nest(MAX_DEPTH + 1)).is_none());
        assert!(serde_json::from_str::<serde_json::Value>(&nest(MAX_DEPTH)).is_ok());
        assert!(serde_json::from_str::<serde_json::Value>(&nest(MAX_DEPTH + 1)).is_err());
        // very deep input fails without exhausting the stack
        assert!(validate(&"[".repeat(1_000_000)).is_none());
        assert!(validate(&"{\"a\":".repeat(100_000)).is_none());
    }

    #[test]
    fn reads_items_members_and_strings() {
        let items: Vec<&str> = array_items(r#" [ "a" , [1,2] ,{"b":3}, -1.5e2 ] "#).collect();
        assert_eq!(items, [r#""a""#, "[1,2]", r#"{"b":3}"#, "-1.5e2"]);
        assert_eq!(array_items("[]").count(), 0);
        assert_eq!(array_items("{}").count(), 0);
        let members: Vec<(&str, &str)> = object_members(r#"{"a":1, "b\"" : [ ] }"#).collect();
        assert_eq!(members, [(r#""a""#, "1"), (r#""b\"""#, "[ ]")]);
        assert_eq!(member(r#"{"a":1,"\u0061":2}"#, "a"), Some("2"));
        assert_eq!(member(r#"{"a":1}"#, "b"), None);
        assert_eq!(string(r#""plain""#).as_deref(), Some("plain"));
        assert_eq!(
            string(r#""a\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00\ud800x""#).as_deref(),
            Some("a\"\\/\u{8}\u{c}\n\r\té😀\u{fffd}x")
        );
        assert_eq!(unsigned("25000"), Some(25000));
        assert_eq!(unsigned("2.5"), None);
        assert_eq!(unsigned("-1"), None);
        assert_eq!(unsigned("99999999999999999999999"), None);
    }

    #[test]
    fn quotes_as_json_stringify() {
        assert_eq!(quote("a\"b\\c\n\u{1}é😀"), r#""a\"b\\c\n\u0001é😀""#);
        assert_eq!(quote(""), r#""""#);
    }

    #[test]
    fn plain_first_strings() {
        for (text, first) in [
            (r#"["echo",1]"#, Some("echo")),
            (r#"["a\"b",1]"#, None),
            (r#"["a\\",1]"#, None),
            (r#"[ "x" ]"#, None),
            (r#"[""]"#, Some("")),
            (r#"["é"]"#, Some("é")),
            ("[12,3]", None),
            ("[]", None),
        ] {
            assert_eq!(plain_first_string(text), first, "{text}");
        }
    }

    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        use serde_json::Value;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            any::<String>().prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(any::<String>(), inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Same verdict as serde_json on any text (serde_json refuses lone surrogates and
        /// numbers out of range only when it builds values, which the scanner never does).
        #[test]
        fn agrees_with_serde_json(text in "[\\[\\]{}\":,0-9eE.+\\-a-z\\\\ \n]{0,24}") {
            let serde_ok = {
                let mut de = serde_json::Deserializer::from_str(&text);
                serde::de::Deserialize::deserialize(&mut de)
                    .map(|_: serde::de::IgnoredAny| ())
                    .and_then(|()| de.end())
                    .is_ok()
            };
            prop_assert_eq!(validate(&text).is_some(), serde_ok);
        }

        #[test]
        fn reads_what_serde_json_writes(v in json_value()) {
            let text = v.to_string();
            prop_assert!(validate(&text).is_some());
            let pretty = serde_json::to_string_pretty(&v).unwrap_or_default();
            prop_assert!(validate(&pretty).is_some());
            match &v {
                serde_json::Value::String(s) => {
                    let read = string(&text);
                    prop_assert_eq!(read.as_deref(), Some(s.as_str()));
                    prop_assert_eq!(&quote(s), &text);
                }
                serde_json::Value::Array(items) => {
                    if let Some(first) = plain_first_string(&text) {
                        let quoted = format!("\"{first}\"");
                        prop_assert_eq!(Some(quoted.as_str()), array_items(&text).next());
                    }
                    let read: Vec<&str> = array_items(&text).collect();
                    let written: Vec<String> = items.iter().map(|v| v.to_string()).collect();
                    prop_assert_eq!(read, written);
                    prop_assert_eq!(array_items(&pretty).count(), items.len());
                }
                serde_json::Value::Object(map) => {
                    for (k, item) in map {
                        let written = item.to_string();
                        prop_assert_eq!(member(&text, k), Some(written.as_str()));
                        let key = string(object_members(&pretty).find(|(key, _)| string(key).as_deref() == Some(k)).map_or("", |m| m.0));
                        prop_assert_eq!(key.as_deref(), Some(k.as_str()));
                    }
                    prop_assert_eq!(object_members(&text).count(), map.len());
                }
                _ => {}
            }
        }

        /// Text said to read as values does read into serde_json values.
        #[test]
        fn reads_as_values_only_when_serde_json_reads(
            text in "[\\[\\]{}\":,0-9eE.+\\-a-z\\\\ \n]{0,24}|[\\[\"0-9eE.\\-\\\\ud8c]{0,40}\\]?"
        ) {
            if validate(&text).is_some() && reads_as_values(&text) {
                prop_assert!(serde_json::from_str::<serde_json::Value>(&text).is_ok());
            }
        }

        #[test]
        fn values_serde_json_writes_read(v in json_value()) {
            prop_assert!(reads_as_values(&v.to_string()) || v.to_string().contains(['e', 'E', '\\']));
        }

        #[test]
        fn never_panics(text in "\\PC{0,64}") {
            let _ = validate(&text);
            let _ = array_items(&text).count();
            let _ = object_members(&text).count();
            let _ = string(&text);
            let _ = reads_as_values(&text);
        }
    }
}
