//! Fuzzes the decoders of device-supplied register values (capabilities, error syndrome).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rhca_hw::regs::{Caps, ErrorCode, ErrorSource, ERR_SYNDROME_CODE, ERR_SYNDROME_SOURCE};

fuzz_target!(|data: [u32; 4]| {
    if let Ok(c) = Caps::decode(data[0], data[1], data[2]) {
        assert_eq!(c.encode(), (data[0], data[1], data[2]), "capabilities must round-trip");
    }
    let _ = ErrorCode::from_u8(ERR_SYNDROME_CODE.get(data[3]).to_le_bytes()[0]);
    let _ = ErrorSource::decode(ERR_SYNDROME_SOURCE.get(data[3]).to_le_bytes()[0]);
});
