//! Unguessable ids from the operating system's random number generator.

use base64::Engine as _;
use ferrio_proto::Str;

/// A fresh id: 15 random bytes as URL-safe base64, 20 characters, like the reference's
/// `base64id` (which uses 12 random bytes and a 3-byte counter). `None` if the OS RNG fails.
pub(crate) fn generate() -> Option<Str> {
    let mut bytes = [0u8; 15];
    getrandom::fill(&mut bytes).ok()?;
    Some(Str::from(
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes),
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_20_url_safe_characters_and_differ() {
        let a = super::generate().unwrap();
        let b = super::generate().unwrap();
        assert_eq!(a.len(), 20);
        assert!(a
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_ne!(a, b);
    }
}
