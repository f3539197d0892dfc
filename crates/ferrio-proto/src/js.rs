//! The few JavaScript semantics the reference decoders rely on, reproduced exactly:
//! which characters `Number()` treats as white space, and `Number(string)` itself.

/// True for the characters ECMAScript's `StrWhiteSpaceChar` accepts (white space and line
/// terminators), i.e. those `Number(" ")`-style conversions trim and treat as zero. (The
/// decoders read them by bytes, [`js_whitespace_len`]; this is the definition it is tested
/// against.)
#[cfg(test)]
pub(crate) fn is_js_whitespace(c: char) -> bool {
    matches!(
        c,
        '\u{0009}'
            | '\u{000A}'
            | '\u{000B}'
            | '\u{000C}'
            | '\u{000D}'
            | '\u{0020}'
            | '\u{00A0}'
            | '\u{1680}'
            | '\u{2000}'
            ..='\u{200A}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202F}'
                | '\u{205F}'
                | '\u{3000}'
                | '\u{FEFF}'
    )
}

/// The length in bytes of the JavaScript white-space character (`StrWhiteSpaceChar`, see
/// `is_js_whitespace`) that `b` starts with, in UTF-8; 0 if it starts with none. By bytes:
/// no UTF-8 decoding (the browser build carries no `char` iteration for it).
pub(crate) fn js_whitespace_len(b: &[u8]) -> usize {
    let at = |k: usize| b.get(k).map_or(0, |&x| u32::from(x));
    let w = at(0) << 16 | at(1) << 8 | at(2);
    whitespace_len(w >> 16, w >> 8, w)
}

/// The length of a white-space character given its candidate encodings of 1, 2 and 3 bytes
/// (as numbers, big-endian; a byte that is not there is 0, which no encoding ends or starts
/// with but the one-byte ones, checked alone), or 0.
fn whitespace_len(one: u32, two: u32, three: u32) -> usize {
    if matches!(one, 0x09..=0x0d | 0x20) {
        1
    } else if two == 0xc2a0 {
        2
    } else if matches!(
        three,
        0xe1_9a_80 | 0xe2_80_80
            ..=0xe2_80_8a
                | 0xe2_80_a8
                | 0xe2_80_a9
                | 0xe2_80_af
                | 0xe2_81_9f
                | 0xe3_80_80
                | 0xef_bb_bf
    ) {
        3
    } else {
        0
    }
}

/// `s` without the JavaScript white space at either end (`s.trim_matches(is_js_whitespace)`),
/// by bytes. A white-space sequence at the end starts with an ASCII or a lead byte, so every
/// cut falls on a character boundary.
pub(crate) fn trim_js_whitespace(s: &str) -> &str {
    let b = s.as_bytes();
    let mut start = 0;
    loop {
        let n = js_whitespace_len(b.get(start..).unwrap_or_default());
        if n == 0 {
            break;
        }
        start += n;
    }
    let mut end = b.len();
    while end > start {
        // The last three bytes before `end` (not before `start`), big-endian.
        let at = |k: usize| {
            if end - start >= k {
                u32::from(b[end - k])
            } else {
                0
            }
        };
        let w = at(3) << 16 | at(2) << 8 | at(1);
        let n = whitespace_len(w & 0xff, w & 0xffff, w);
        if n == 0 {
            break;
        }
        end -= n;
    }
    s.get(start..end).unwrap_or_default()
}

/// ECMAScript `Number(s)` for a string (`StringToNumber`): `NaN` when `s` is not a numeric literal.
pub(crate) fn string_to_number(s: &str) -> f64 {
    let t = trim_js_whitespace(s);
    if t.is_empty() {
        return 0.0;
    }
    match t {
        "Infinity" | "+Infinity" => return f64::INFINITY,
        "-Infinity" => return f64::NEG_INFINITY,
        _ => {}
    }
    let bytes = t.as_bytes();
    if let Some((radix, digits)) = radix_literal(bytes) {
        let mut value = 0f64;
        for &b in digits {
            match (b as char).to_digit(radix) {
                Some(d) => value = value * radix as f64 + d as f64,
                None => return f64::NAN,
            }
        }
        return value;
    }
    if is_decimal_literal(bytes) {
        t.parse::<f64>().unwrap_or(f64::NAN)
    } else {
        f64::NAN
    }
}

/// A `0x`/`0o`/`0b` literal (`NonDecimalIntegerLiteral`): its radix and the digits after the
/// prefix (not checked yet).
fn radix_literal(bytes: &[u8]) -> Option<(u32, &[u8])> {
    if bytes.len() <= 2 || bytes[0] != b'0' {
        return None;
    }
    let radix = match bytes[1] {
        b'x' | b'X' => 16,
        b'o' | b'O' => 8,
        b'b' | b'B' => 2,
        _ => return None,
    };
    Some((radix, &bytes[2..]))
}

/// `StrDecimalLiteral` without `Infinity`: `[+-]? (d+ (. d*)? | . d+) ([eE] [+-]? d+)?`.
fn is_decimal_literal(b: &[u8]) -> bool {
    let mut i = 0;
    if matches!(b.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    let int_start = i;
    while b.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    let int_digits = i - int_start;
    let mut frac_digits = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        frac_digits = i - start;
    }
    if int_digits + frac_digits == 0 {
        return false;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    i == b.len()
}

/// Length of `s` in UTF-16 code units, as JavaScript's `String.prototype.length` counts it.
pub(crate) fn utf16_len(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_matches_javascript() {
        assert_eq!(string_to_number(""), 0.0);
        assert_eq!(string_to_number("  "), 0.0);
        assert_eq!(string_to_number(" 12 "), 12.0);
        assert_eq!(string_to_number("0x1f"), 31.0);
        assert_eq!(string_to_number("0b11"), 3.0);
        assert_eq!(string_to_number("1e3"), 1000.0);
        assert_eq!(string_to_number(".5"), 0.5);
        assert_eq!(string_to_number("5."), 5.0);
        assert_eq!(string_to_number("-Infinity"), f64::NEG_INFINITY);
        for nan in [
            "a",
            "1 2",
            "0x",
            "-0x1",
            "inf",
            "NaN",
            "1e",
            ".",
            "+",
            "1_000",
            "\u{0085}1",
        ] {
            assert!(string_to_number(nan).is_nan(), "{nan:?}");
        }
    }

    #[test]
    fn whitespace_by_bytes_matches_the_characters() {
        // Every character, alone and followed by another byte.
        for c in (0..=0x10ffffu32).filter_map(char::from_u32) {
            let mut buf = [0u8; 5];
            let len = c.encode_utf8(&mut buf).len();
            let expected = if is_js_whitespace(c) { len } else { 0 };
            assert_eq!(js_whitespace_len(&buf[..len]), expected, "{c:?}");
            buf[len] = b'1';
            assert_eq!(js_whitespace_len(&buf[..len + 1]), expected, "{c:?}");
            let s = c.to_string();
            assert_eq!(
                trim_js_whitespace(&s),
                s.trim_matches(is_js_whitespace),
                "{c:?}"
            );
        }
        // Truncated sequences are not white space.
        assert_eq!(js_whitespace_len(&[0xe2, 0x80]), 0);
        assert_eq!(js_whitespace_len(&[0xc2]), 0);
    }

    proptest::proptest! {
        /// The byte trim cuts where `trim_matches(is_js_whitespace)` does.
        #[test]
        fn trim_by_bytes_matches_trim_matches(
            s in "[ \t\n\u{b}\u{c}\r\u{a0}\u{1680}\u{2000}-\u{200b}\u{2028}-\u{202f}\u{205f}\u{3000}\u{feff}\u{85}\u{180e}a1é€😀]{0,12}"
        ) {
            proptest::prop_assert_eq!(trim_js_whitespace(&s), s.trim_matches(is_js_whitespace));
        }
    }

    #[test]
    fn utf16_length() {
        assert_eq!(utf16_len("4€"), 2);
        assert_eq!(utf16_len("😀"), 2);
    }
}
