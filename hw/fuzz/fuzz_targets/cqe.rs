//! Fuzzes the driver's CQE decode and check: a hostile device writes arbitrary CQEs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rhca_hw::cqe::{Cqe, Posted};

fuzz_target!(|data: &[u8]| {
    let Some((&[e0, e1, l0, l1], rest)) = data.split_first_chunk::<4>() else { return };
    if let Ok(c) = Cqe::decode(rest) {
        let posted = Posted { entries: u32::from(u16::from_le_bytes([e0, e1])), len: u32::from(u16::from_le_bytes([l0, l1])) };
        let _ = c.check(&posted);
    }
});
