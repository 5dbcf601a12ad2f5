//! `cargo fuzz` target `attrs`: the body is `rhca_hw::fuzzing::attrs`, which the tests also run over
//! every input saved in `hw/fuzz/regressions/attrs/`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rhca_hw::fuzzing::attrs(data));
