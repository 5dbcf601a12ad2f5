//! `cargo fuzz` target `mad`: the body is `rhca_hw::fuzzing::mad`, which the tests also run over
//! every input saved in `hw/fuzz/regressions/mad/`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rhca_hw::fuzzing::mad(data));
