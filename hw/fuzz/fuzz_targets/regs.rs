//! `cargo fuzz` target `regs`: the body is `rhca_hw::fuzzing::regs`, which the tests also run over
//! every input saved in `hw/fuzz/regressions/regs/`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rhca_hw::fuzzing::regs(data));
