//! Fuzzes the IOCTL ABI: control code, buffer lengths and every request/response decoder.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rhca_hw::ioctl::{self, Ioctl};

fuzz_target!(|data: &[u8]| {
    let Some((code, rest)) = data.split_first_chunk::<4>() else { return };
    if let Ok(i) = Ioctl::from_code(u32::from_le_bytes(*code)) {
        let _ = i.check_lengths(rest.len(), rest.len());
        if let Ok(s) = ioctl::StreamStartIn::decode(rest) {
            let _ = s.validate(i, rest.len() as u64 * 4096, 8, 4096, 1 << 20);
        }
    }
    if let Ok(s) = ioctl::SendMadIn::decode(rest) {
        let _ = s.validate();
    }
    let _ = ioctl::QueryDeviceOut::decode(rest);
    let _ = ioctl::QueryPortOut::decode(rest);
    let _ = ioctl::SendMadOut::decode(rest);
    let _ = ioctl::RecvMadOut::decode(rest);
    let _ = ioctl::StreamWaitIn::decode(rest);
    let _ = ioctl::StreamWaitOut::decode(rest);
    let _ = ioctl::StreamReleaseIn::decode(rest);
    let _ = ioctl::StreamStopIn::decode(rest);
    let _ = ioctl::StatisticsOut::decode(rest);
});
