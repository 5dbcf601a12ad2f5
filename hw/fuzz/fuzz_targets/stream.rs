//! `cargo fuzz` target `stream`: the body is `rhca_hw::fuzzing::stream`, which the tests also run over
//! every input saved in `hw/fuzz/regressions/stream/`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rhca_hw::fuzzing::stream(data));
