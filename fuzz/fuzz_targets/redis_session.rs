//! A recovery offset and a stored session of the Redis streams adapter: parsing them never
//! panics, and a session that decodes encodes back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ferrio_redis::fuzzing::session(data);
});
