//! `cargo fuzz` target `ioctl`: the body is `rhca_hw::fuzzing::ioctl`, which the tests also run over
//! every input saved in `hw/fuzz/regressions/ioctl/`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rhca_hw::fuzzing::ioctl(data));
