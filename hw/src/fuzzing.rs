//! The bodies of the `cargo fuzz` targets in `hw/fuzz`, one function per target.
//!
//! They live here, not in the fuzz crate, so that `hw/tests/fuzz_regressions.rs` can replay every
//! input saved under `hw/fuzz/regressions/<target>/` on stable in `cargo test`: an input that
//! once crashed a decoder stays a test for good. Each function takes the fuzzer's bytes, feeds
//! them to a decoder (device-written, fabric-written or user-supplied bytes in real life), and
//! panics only when an invariant breaks: a decoder that panics, a value that does not survive
//! `decode → encode → decode`, a check that accepts what its decoder refused.
//!
//! Nothing here allocates: the crate stays `no_std` without `alloc`.

use crate::attrs::{GuidInfo, NodeDescription, NodeInfo, PKeyTable, PortCounters, PortInfo};
use crate::cqe::{Cqe, Posted};
use crate::ioctl::{self, Ioctl};
use crate::mad::{Grh, MadHeader};
use crate::regs::{Caps, ERR_SYNDROME_CODE, ERR_SYNDROME_SOURCE, ErrorCode, ErrorSource};
use crate::stream::{self, Record};
use crate::wqe::{self, Limits, Wqe};
use crate::{Ring, ioctl::AbiStruct};

/// The largest encoding of any structure checked here (the stream WAIT reply).
const MAX: usize = crate::ioctl::StreamWaitOut::SIZE;

/// Decode, and when that succeeds, check that the value survives an encode and a second decode.
macro_rules! round_trip {
    ($t:ty, $data:expr, $encode:expr) => {
        if let Ok(v) = <$t>::decode($data) {
            let mut buf = [0u8; MAX];
            let out = &mut buf[..<$t>::SIZE];
            $encode(&v, &mut *out).expect("a decoded value encodes");
            assert_eq!(
                <$t>::decode(out).expect("an encoded value decodes"),
                v,
                concat!(stringify!($t), " must round-trip")
            );
        }
    };
}

/// Target `wqe`: the device's WQE fetch, with queue limits from the first four bytes.
///
/// # Panics
/// When a decoder panics.
pub fn wqe(data: &[u8]) {
    let Some((&[a, b, c, d], rest)) = data.split_first_chunk::<4>() else {
        return;
    };
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
    let at = ring
        .index(u32::from(a >> 4) % (2 * lim.entries))
        .expect("a reduced index");
    if let Err(e) = Wqe::decode_posted(rest, &lim, ring, at) {
        let _ = wqe::syndrome(&e);
    }
}

/// Target `cqe`: the driver's CQE decode and check (a hostile device writes arbitrary CQEs).
///
/// # Panics
/// When a decoder panics.
pub fn cqe(data: &[u8]) {
    let Some((&[e0, e1, l0, l1], rest)) = data.split_first_chunk::<4>() else {
        return;
    };
    if let Ok(c) = Cqe::decode(rest) {
        let posted = Posted {
            entries: u32::from(u16::from_le_bytes([e0, e1])),
            len: u32::from(u16::from_le_bytes([l0, l1])),
        };
        let _ = c.check(&posted);
    }
}

/// Target `mad`: the MAD header and GRH decoders (received MADs come from the fabric).
///
/// # Panics
/// When a decoder panics.
pub fn mad(data: &[u8]) {
    if let Ok(h) = MadHeader::decode(data) {
        let _ = (
            h.hop_count(),
            h.hop_pointer(),
            h.direction(),
            h.is_response(),
        );
    }
    let _ = Grh::decode(data);
}

/// Target `attrs`: the IBTA attributes the driver's agents decode from received MADs; each
/// decoded value must round-trip.
///
/// # Panics
/// When a decoder panics or a value does not round-trip.
pub fn attrs(data: &[u8]) {
    round_trip!(NodeInfo, data, NodeInfo::encode);
    round_trip!(PortInfo, data, PortInfo::encode);
    round_trip!(GuidInfo, data, GuidInfo::encode);
    round_trip!(PKeyTable, data, PKeyTable::encode);
    round_trip!(PortCounters, data, PortCounters::encode);
    let _ = NodeDescription::decode(data);
}

/// Target `stream`: the stream engine's descriptor table, completion records and pattern check.
///
/// # Panics
/// When a decoder panics.
pub fn stream(data: &[u8]) {
    let Some((&[n, s0, s1, k], rest)) = data.split_first_chunk::<4>() else {
        return;
    };
    let count = u32::from(n);
    let _ = stream::validate_table(rest, count, u64::from(u16::from_le_bytes([s0, s1])) * 4096);
    if let Ok(r) = Record::decode(rest) {
        let ring = Ring::new(count.max(1)).expect("1..=255 entries");
        let at = ring
            .index(u32::from(k) % (2 * count.max(1)))
            .expect("a reduced index");
        let _ = r.check(ring, at, u64::from(k), 4096);
    }
    let _ = stream::verify_pattern(rest, u64::from(k), u64::from(n));
}

/// Target `ioctl`: a control code and a buffer, through the length checks, every request and
/// response decoder (each decoded value must round-trip) and the validators.
///
/// # Panics
/// When a decoder panics or a value does not round-trip.
pub fn ioctl(data: &[u8]) {
    let Some((code, rest)) = data.split_first_chunk::<4>() else {
        return;
    };
    if let Ok(i) = Ioctl::from_code(u32::from_le_bytes(*code)) {
        let _ = i.check_lengths(rest.len(), rest.len());
        if let Ok(s) = ioctl::StreamStartIn::decode(rest) {
            let _ = s.validate(i, rest.len() as u64 * 4096, 8, 4096, 1 << 20);
        }
    }
    if let Ok(s) = ioctl::SendMadIn::decode(rest) {
        let _ = s.validate();
    }
    round_trip!(ioctl::QueryDeviceOut, rest, ioctl::QueryDeviceOut::encode);
    round_trip!(ioctl::QueryPortOut, rest, ioctl::QueryPortOut::encode);
    round_trip!(ioctl::SendMadIn, rest, ioctl::SendMadIn::encode);
    round_trip!(ioctl::SendMadOut, rest, ioctl::SendMadOut::encode);
    round_trip!(ioctl::RecvMadOut, rest, ioctl::RecvMadOut::encode);
    round_trip!(ioctl::StreamStartIn, rest, ioctl::StreamStartIn::encode);
    round_trip!(ioctl::StreamWaitIn, rest, ioctl::StreamWaitIn::encode);
    round_trip!(ioctl::StreamWaitOut, rest, ioctl::StreamWaitOut::encode);
    round_trip!(ioctl::StreamReleaseIn, rest, ioctl::StreamReleaseIn::encode);
    round_trip!(ioctl::StreamStopIn, rest, ioctl::StreamStopIn::encode);
    round_trip!(ioctl::StatisticsOut, rest, ioctl::StatisticsOut::encode);
    // The generic path the driver's dispatch uses must agree with the typed one.
    assert_eq!(
        ioctl::StreamStartIn::decode_abi(rest).is_ok(),
        ioctl::StreamStartIn::decode(rest).is_ok()
    );
}

/// Target `regs`: device-supplied register values (capabilities, error syndrome) from the first
/// 16 bytes; capabilities that decode must round-trip.
///
/// # Panics
/// When a decoder panics or capabilities do not round-trip.
pub fn regs(data: &[u8]) {
    let Some((words, _)) = data.split_first_chunk::<16>() else {
        return;
    };
    let w = |i: usize| u32::from_le_bytes([words[i], words[i + 1], words[i + 2], words[i + 3]]);
    let (c0, c1, c2, syndrome) = (w(0), w(4), w(8), w(12));
    if let Ok(c) = Caps::decode(c0, c1, c2) {
        assert_eq!(c.encode(), (c0, c1, c2), "capabilities must round-trip");
    }
    let _ = ErrorCode::from_u8(ERR_SYNDROME_CODE.get(syndrome).to_le_bytes()[0]);
    let _ = ErrorSource::decode(ERR_SYNDROME_SOURCE.get(syndrome).to_le_bytes()[0]);
}

/// A target's body: the fuzzer's bytes in, a panic out when an invariant breaks.
pub type Body = fn(&[u8]);

/// Every target, by name (the fuzz crate's binaries and the regression directories).
pub const TARGETS: [(&str, Body); 7] = [
    ("wqe", wqe),
    ("cqe", cqe),
    ("mad", mad),
    ("attrs", attrs),
    ("stream", stream),
    ("ioctl", ioctl),
    ("regs", regs),
];
