//! `cargo fuzz` target `wqe`: the body is `rhca_hw::fuzzing::wqe`, which the tests also run over
//! every input saved in `hw/fuzz/regressions/wqe/`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rhca_hw::fuzzing::wqe(data));
