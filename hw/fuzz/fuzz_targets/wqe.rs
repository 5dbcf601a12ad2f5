//! Fuzzes the device's WQE fetch: queue limits from the first bytes, the WQE from the rest.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rhca_hw::wqe::{self, Limits, Wqe};
use rhca_hw::Ring;

fuzz_target!(|data: &[u8]| {
    let Some((&[a, b, c, d], rest)) = data.split_first_chunk::<4>() else { return };
    let lim = Limits {
        stride: 64 << (a & 3),
        entries: u32::from(b) + 1,
        max_sge: usize::from(c & 3) + 1,
        max_inline: usize::from(d) * 2,
        qpn: (a >> 2) & 1,
        receive: a & 8 != 0,
    };
    let _ = wqe::Ctrl::decode(rest);
    let _ = Wqe::decode(rest, &lim);
    let ring = Ring::new(lim.entries).expect("1..=256 entries");
    let at = ring.index(u32::from(a >> 4) % (2 * lim.entries)).expect("reduced index");
    if let Err(e) = Wqe::decode_posted(rest, &lim, ring, at) {
        let _ = wqe::syndrome(&e);
    }
});
