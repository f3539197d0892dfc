//! Numbers to and from their text as JavaScript converts them (`String(x)`, `Number(text)`),
//! for the parsers: the JSON decoder reads attachment counts and placeholder indexes with
//! `Number()` as the reference does, and the msgpack codec turns floats into JSON text and back.
//! Rust's own conversions by default; a driver with JavaScript at hand (the browser client)
//! passes the page's instead, and its module then carries no float formatting or parsing.

/// How numbers convert to and from text, for [`Parser::json_with`](super::Parser::json_with) and
/// [`Parser::msgpack_with`](super::Parser::msgpack_with). The default is Rust's own
/// (`Display`/`LowerExp`, and an implementation of ECMAScript's `StringToNumber` over
/// `str::parse`); a driver whose platform converts numbers already can pass those instead.
///
/// ```
/// use bytes::Bytes;
/// use ferrio_proto::socket::{JsNumbers, Parser};
/// // A `Number()` for decimal text only (no hexadecimal, no `Infinity`); the JSON parser never
/// // writes a number.
/// let numbers = JsNumbers {
///     to_string: |_, _| {},
///     to_number: |text| text.trim().parse().unwrap_or(f64::NAN),
/// };
/// let mut decoder = Parser::json_with(numbers).decoder(10);
/// let header = r#"51-["photo",{"_placeholder":true,"num":0}]"#;
/// assert!(decoder.decode_text(header.into()).unwrap().is_none());
/// let packet = decoder.decode_binary(Bytes::from_static(b"\x89PNG")).unwrap().unwrap();
/// assert_eq!(packet.attachments().len(), 1);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct JsNumbers {
    /// `String(x)` of a finite, non-zero double: digits that read back to the same double (the
    /// msgpack decoder's `float 32` and `float 64` values). JavaScript writes the shortest such
    /// digits, in exponent form from 1e21 up and below 1e-6.
    pub to_string: fn(f64, &mut String),
    /// `Number(text)`: the double a numeric string stands for, correctly rounded, with
    /// JavaScript's white space around it allowed, `0x`/`0o`/`0b` integers and `Infinity`; `NaN`
    /// for anything else. The JSON decoder reads attachment counts and placeholder indexes with
    /// it, the msgpack encoder the JSON numbers that are not 64-bit integers.
    pub to_number: fn(&str) -> f64,
}

impl Default for JsNumbers {
    fn default() -> Self {
        JsNumbers {
            to_string: shortest,
            to_number: crate::js::string_to_number,
        }
    }
}

impl JsNumbers {
    /// Conversions that are never called: those of a decoder that hands every message to another
    /// parser's decoder. (Not the default: the browser build would then carry Rust's.)
    #[cfg(feature = "parsers")]
    pub(crate) const UNUSED: JsNumbers = JsNumbers {
        to_string: |_, _| {},
        to_number: |_| f64::NAN,
    };

    /// `Number(text)` when it is an integer ≥ 0 (`-0` included): `None` when it is `NaN`,
    /// infinite, negative or has a fraction; past `u64::MAX` it saturates. (Counts and indexes:
    /// any value past 2^53, where doubles skip integers, is refused by the caller either way.)
    pub(crate) fn index(&self, text: &str) -> Option<u64> {
        let n = (self.to_number)(text);
        (n.is_finite() && n >= 0.0 && n.fract() == 0.0).then_some(n as u64)
    }
}

/// The shortest digits that read back to `f`, in exponent form where JavaScript writes one (from
/// 1e21 up and below 1e-6), so that no double takes more than about 24 characters (plain
/// `Display` writes 5e-324 with 324 digits). `Display` and `LowerExp`, not `Debug`, whose output
/// a size build may leave out.
fn shortest(f: f64, out: &mut String) {
    use std::fmt::Write;
    if (1e-6..1e21).contains(&f.abs()) {
        let _ = write!(out, "{f}");
    } else {
        let _ = write!(out, "{f:e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_reads_as_number_does() {
        let numbers = JsNumbers::default();
        for (s, v) in [
            ("", Some(0)),
            (" 12 ", Some(12)),
            ("0x1f", Some(31)),
            ("0o17", Some(15)),
            ("1e3", Some(1000)),
            ("1.50e1", Some(15)),
            ("5.", Some(5)),
            ("+7", Some(7)),
            ("007", Some(7)),
            ("-0", Some(0)),
            ("-0.0e5", Some(0)),
            ("0.000", Some(0)),
            ("120e-1", Some(12)),
            ("1e400", None),
            ("1.7976931348623159e308", None),
            ("1.7976931348623157e308", Some(u64::MAX)),
            ("99999999999999999999999", Some(u64::MAX)),
            ("10e9223372036854775807", None),
            ("1.5e-9223372036854775808", Some(0)),
            ("1e-400", Some(0)),
            ("-1e-400", Some(0)),
            ("1e-323", None),
            (".5", None),
            ("1.25e1", None),
            ("-1", None),
            ("Infinity", None),
            ("a", None),
            ("0x", None),
            ("1 2", None),
            // `Number()` rounds to the nearest double: an integer, as JavaScript sees it.
            ("1.000000000000000001", Some(1)),
        ] {
            assert_eq!(numbers.index(s), v, "{s:?}");
        }
    }

    #[test]
    fn shortest_digits() {
        for (f, text) in [
            (0.1, "0.1"),
            (-2.5, "-2.5"),
            (1e21, "1e21"),
            (1.5e-7, "1.5e-7"),
            (123456.789, "123456.789"),
            (5e-324, "5e-324"),
        ] {
            let mut out = String::new();
            shortest(f, &mut out);
            assert_eq!(out, text);
            assert_eq!(out.parse::<f64>(), Ok(f));
        }
    }
}
