//! A stream entry of the Redis streams adapter (its field list, an `XREAD`/`XRANGE` reply, a
//! pub/sub message): decoding it and reading every part the adapter reads never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ferrio_redis::fuzzing::stream_entry(data);
});
