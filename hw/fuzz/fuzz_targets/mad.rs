//! Fuzzes the MAD header and GRH decoders (received MADs come from the fabric).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rhca_hw::mad::{Grh, MadHeader};

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = MadHeader::decode(data) {
        let _ = (h.hop_count(), h.hop_pointer(), h.direction(), h.is_response());
    }
    let _ = Grh::decode(data);
});
