//! A message from Redis (a cluster adapter's broadcast, request or response, JSON or msgpack):
//! decoding it and reading every part the adapters read never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ferrio_redis::fuzzing::message(data);
});
