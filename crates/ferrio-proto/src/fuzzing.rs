//! `Arbitrary` for the core's own input types, with the `arbitrary` feature: fuzzers generate
//! the machines' [`Input`](crate::engine::server::Input)s directly.

use arbitrary::{Arbitrary, Result, Unstructured};
use bytes::Bytes;

use crate::Str;

/// Arbitrary bytes as a `Bytes` (which has no `Arbitrary` of its own).
pub(crate) fn bytes(u: &mut Unstructured<'_>) -> Result<Bytes> {
    Ok(Bytes::copy_from_slice(<&[u8]>::arbitrary(u)?))
}

/// Arbitrary bytes, or none.
pub(crate) fn option_bytes(u: &mut Unstructured<'_>) -> Result<Option<Bytes>> {
    Ok(if bool::arbitrary(u)? {
        Some(bytes(u)?)
    } else {
        None
    })
}

impl<'a> Arbitrary<'a> for Str {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(Str::from(<&str>::arbitrary(u)?))
    }
}

/// Small ids: a session numbers its transports from 0, so generated input names the transports
/// it uses, not only unknown ones.
impl<'a> Arbitrary<'a> for crate::engine::client::TransportId {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(Self::from_u64(u64::from(u8::arbitrary(u)? % 16)))
    }
}
