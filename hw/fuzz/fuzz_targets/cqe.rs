//! `cargo fuzz` target `cqe`: the body is `rhca_hw::fuzzing::cqe`, which the tests also run over
//! every input saved in `hw/fuzz/regressions/cqe/`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rhca_hw::fuzzing::cqe(data));
