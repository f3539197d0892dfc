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

/// `Number(s)` when it is an integer ≥ 0 (`-0` included), without floating point: `None` when
/// `Number(s)` is `NaN`, infinite, negative or has a fraction; integers past `u64::MAX` saturate.
/// Decimal literals are read exactly, so one with more than 17 significant digits that
/// `Number()` would round to an integer (`"1.000000000000000001"`) reads as a fraction here;
/// values below half the smallest double (`"1e-400"`) are 0, as `Number()` rounds them, and
/// values past the largest (`"1e400"`) are `None` (Infinity); both boundaries are compared to 17
/// significant digits.
/// (The decoders use it for counts and indexes, where such input is refused either way.)
pub(crate) fn string_to_index(s: &str) -> Option<u64> {
    let t = trim_js_whitespace(s);
    let bytes = t.as_bytes();
    if let Some((radix, digits)) = radix_literal(bytes) {
        let mut value = 0u64;
        for &b in digits {
            let d = (b as char).to_digit(radix)?;
            value = value
                .saturating_mul(u64::from(radix))
                .saturating_add(u64::from(d));
        }
        return Some(value);
    }
    if !t.is_empty() && !is_decimal_literal(bytes) {
        return None;
    }
    // One pass over the validated literal. The value is 0.D × 10^p, D the significant digits
    // (from the first non-zero digit to the last, `n` of them, the first 17 in `head`).
    let mut head = [b'0'; 17];
    let (mut n, mut p, mut zeros) = (0i64, 0i64, 0i64);
    let mut value = 0u64;
    let (mut seen_point, mut negative) = (false, false);
    let mut rest = bytes;
    while let [b, tail @ ..] = rest {
        match b {
            b'-' => negative = true,
            b'.' => seen_point = true,
            b'0'..=b'9' => {
                if n == 0 && *b == b'0' {
                    // a leading zero: before the point it does not count, after it shifts p
                    p -= i64::from(seen_point);
                } else {
                    if *b == b'0' {
                        zeros += 1;
                    } else {
                        // the zeros seen since the last non-zero digit are significant after all
                        for _ in 0..zeros.min(20) {
                            value = value.saturating_mul(10);
                        }
                        value = value.saturating_mul(10).saturating_add(u64::from(b - b'0'));
                        n += zeros + 1;
                        zeros = 0;
                        if let Some(slot) = head.get_mut(n as usize - 1) {
                            *slot = *b;
                        }
                    }
                    p += i64::from(!seen_point);
                }
            }
            b'e' | b'E' => {
                // Saturate absurd exponents: past ±10^6 the value is 0, a fraction or out of
                // range anyway.
                let (sign, digits) = match tail {
                    [b'-', d @ ..] => (-1, d),
                    [b'+', d @ ..] => (1, d),
                    d => (1, d),
                };
                let e = digits
                    .iter()
                    .fold(0i64, |e, d| (e * 10 + i64::from(d - b'0')).min(1_000_000));
                p += sign * e;
                break;
            }
            _ => {}
        }
        rest = tail;
    }
    if n == 0 {
        return Some(0);
    }
    // Past the largest double, `Number()` is Infinity: p > 309, or p = 309 and D above
    // 0.17976931348623158 (where rounding reaches Infinity, to 17 digits).
    if p > 309 || (p == 309 && head.as_slice() > b"17976931348623158".as_slice()) {
        return None;
    }
    if n > p {
        // A fraction, unless it is below half the smallest double, which `Number()` rounds to
        // (minus) zero.
        let below_half = p <= -324
            || (p == -323
                && match head.as_slice().cmp(b"24703282292062327".as_slice()) {
                    std::cmp::Ordering::Less => true,
                    std::cmp::Ordering::Equal => n <= 17,
                    std::cmp::Ordering::Greater => false,
                });
        return below_half.then_some(0);
    }
    if negative {
        return None;
    }
    for _ in 0..(p - n).min(20) {
        value = value.saturating_mul(10);
    }
    Some(value)
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
    fn index_matches_number() {
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
            ("1.7976931348623158e308", Some(u64::MAX)),
            ("99999999999999999999999", Some(u64::MAX)),
            ("10e9223372036854775807", None),
            ("1.5e-9223372036854775808", Some(0)),
            ("1e-99999999999999999999999", Some(0)),
            ("1e-400", Some(0)),
            ("-1e-400", Some(0)),
            ("2.4703282292062327e-324", Some(0)),
            ("2.4703282292062328e-324", None),
            ("1e-323", None),
            ("9e-324", None),
            (".5", None),
            ("1.25e1", None),
            ("-1", None),
            ("Infinity", None),
            ("a", None),
            ("0x", None),
            ("1 2", None),
        ] {
            assert_eq!(string_to_index(s), v, "{s:?}");
        }
    }

    proptest::proptest! {
        /// Agrees with `Number()` wherever that is exact: integers up to 2^53, where every
        /// integer is a double (above it `Number()` rounds to the nearest double, while the
        /// index keeps the exact integer: "580000.000001E12" is 580000000001000000, not
        /// 580000000000999936; both are far past any count or index accepted).
        #[test]
        fn index_agrees_with_number(s in "[ +\\-]?[0-9]{0,8}(\\.[0-9]{0,6})?([eE][+\\-]?[0-9]{1,2})?") {
            let n = string_to_number(&s);
            const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
            let expected = (n.is_finite() && n >= 0.0 && n.fract() == 0.0).then_some(n as u64);
            if n <= EXACT || n.is_nan() {
                proptest::prop_assert_eq!(string_to_index(&s), expected, "{:?}", s);
            }
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
