//! Fuzzes the stream engine's descriptor table, completion records and pattern check.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rhca_hw::stream::{self, Record};
use rhca_hw::Ring;

fuzz_target!(|data: &[u8]| {
    let Some((&[n, s0, s1, k], rest)) = data.split_first_chunk::<4>() else { return };
    let count = u32::from(n);
    let _ = stream::validate_table(rest, count, u64::from(u16::from_le_bytes([s0, s1])) * 4096);
    if let Ok(r) = Record::decode(rest) {
        let ring = Ring::new(count.max(1)).expect("1..=255 entries");
        let at = ring.index(u32::from(k) % (2 * count.max(1))).expect("reduced index");
        let _ = r.check(ring, at, u64::from(k), 4096);
    }
    let _ = stream::verify_pattern(rest, u64::from(k), u64::from(n));
});
