//! `cargo fuzz` target `ops`: random operation sequences (open, close, process kill, MADs,
//! stream START/WAIT/RELEASE/STOP, cancellation, D3 and back, stop and start) against the driver
//! on the simulated machine. Any bug check, leak, lost MAD, corrupted byte or request left
//! pending fails the input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let o = rhca_tests::scenario::ops_from_bytes(data);
    assert!(o.ok(), "{o:#?}");
});
