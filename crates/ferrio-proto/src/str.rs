//! [`Str`]: an immutable UTF-8 string that shares its storage with a [`Bytes`] buffer.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;

use bytes::Bytes;
use bytestring::ByteString;

/// An immutable, cheaply cloneable UTF-8 string backed by [`Bytes`].
///
/// Decoders hand out `Str` slices of the buffer they were given, so a decoded namespace or JSON
/// payload shares memory with the frame it came from instead of being copied.
///
/// ```
/// use ferrio_proto::Str;
/// let s = Str::from_static("hello");
/// assert_eq!(&*s, "hello");
/// assert_eq!(s.slice(1..3), "el");
/// ```
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Str(ByteString);

impl Str {
    /// A `Str` pointing at static memory (no allocation).
    pub const fn from_static(s: &'static str) -> Self {
        Str(ByteString::from_static(s))
    }

    /// Validates `bytes` as UTF-8 and wraps it without copying.
    pub fn from_utf8(bytes: Bytes) -> Result<Self, std::str::Utf8Error> {
        // One check (ASCII first, then UTF-8 if needed).
        ByteString::try_from(bytes).map(Str)
    }

    /// The string as `&str`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The underlying bytes (shared, no copy).
    pub fn as_bytes(&self) -> &Bytes {
        self.0.as_bytes()
    }

    /// Consumes the string and returns its bytes.
    pub fn into_bytes(self) -> Bytes {
        self.0.into_bytes()
    }

    /// A sub-string sharing the same storage.
    ///
    /// # Panics
    /// If the range is out of bounds or does not fall on char boundaries, like `&str` indexing.
    pub fn slice(&self, range: std::ops::Range<usize>) -> Str {
        Str(self.0.slice_ref(&self.0[range]))
    }

    /// A sub-string from a `&str` that points into this string's memory, sharing storage.
    /// Returns `None` if `sub` does not lie inside `self`.
    pub fn slice_ref(&self, sub: &str) -> Option<Str> {
        let base = self.0.as_ptr() as usize;
        let start = (sub.as_ptr() as usize).checked_sub(base)?;
        let end = start.checked_add(sub.len())?;
        if end > self.0.len() {
            return None;
        }
        if sub.is_empty() {
            return Some(Str::default());
        }
        Some(Str(self.0.slice_ref(sub)))
    }
}

/// The number of digits of `n` in decimal.
pub(crate) fn decimal_len(n: u64) -> usize {
    n.checked_ilog10().map_or(1, |l| l as usize + 1)
}

/// Appends the decimal digits of `n` (what `write!(out, "{n}")` writes, without the formatting
/// machinery, which the browser build leaves out).
pub(crate) fn push_decimal(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[at..] {
        out.push(char::from(d));
    }
}

impl Deref for Str {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Str {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for Str {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for Str {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Str {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<String> for Str {
    fn from(s: String) -> Self {
        Str(ByteString::from(s))
    }
}

impl From<&str> for Str {
    fn from(s: &str) -> Self {
        Str(ByteString::from(s))
    }
}

impl From<Str> for Bytes {
    fn from(s: Str) -> Bytes {
        s.0.into_bytes()
    }
}

impl PartialEq<str> for Str {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Str {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_len_counts_what_push_decimal_writes() {
        for n in [0, 1, 9, 10, 99, 100, 12345, u64::MAX / 10, u64::MAX] {
            let mut s = String::new();
            push_decimal(&mut s, n);
            assert_eq!(decimal_len(n), s.len(), "{n}");
        }
    }

    #[test]
    fn slice_ref_shares_memory() {
        let s = Str::from("abcdef");
        let sub = &s[2..4];
        let shared = s.slice_ref(sub).expect("inside");
        assert_eq!(shared, "cd");
        assert_eq!(shared.as_bytes().as_ptr(), s.as_bytes()[2..].as_ptr());
        assert!(s.slice_ref("elsewhere").is_none());
    }

    #[test]
    fn from_utf8_rejects_invalid() {
        assert!(Str::from_utf8(Bytes::from_static(&[0xff, 0xfe])).is_err());
    }
}
