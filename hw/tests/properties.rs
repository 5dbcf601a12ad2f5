//! Property tests of `rhca-hw`: every layout round-trips, ring arithmetic is consistent at every
//! index, and no decoder panics on arbitrary bytes (10^5 random buffers per decoder).

use proptest::prelude::*;
use rhca_hw::cqe::{self, Cqe};
use rhca_hw::ioctl::{self, Ioctl};
use rhca_hw::mad::{Grh, MadHeader};
use rhca_hw::regs::{Caps, ErrorCode, ErrorSource};
use rhca_hw::stream::{self, Descriptor, Record, RecordStatus};
use rhca_hw::wqe::{self, Ctrl, DataSeg, Payload, Wqe};
use rhca_hw::{Ring, RingIndex};

/// Cases for the "never panics" properties, as the workspace issue requires.
const FUZZ_CASES: u32 = 100_000;

fn fuzz_config() -> ProptestConfig {
    ProptestConfig {
        cases: FUZZ_CASES,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..600)
}

fn limits() -> impl Strategy<Value = wqe::Limits> {
    (
        6u32..=9,
        1u32..=32,
        1usize..=4,
        0usize..=492,
        0u8..=1,
        any::<bool>(),
    )
        .prop_map(
            |(log_stride, entries, max_sge, max_inline, qpn, receive)| wqe::Limits {
                stride: 1 << log_stride,
                entries,
                max_sge,
                max_inline,
                qpn,
                receive,
            },
        )
}

proptest! {
    #![proptest_config(fuzz_config())]

    #[test]
    fn wqe_decoders_never_panic(buf in bytes(), lim in limits(), raw in 0u32..64) {
        let _ = Ctrl::decode(&buf);
        let _ = Wqe::decode(&buf, &lim);
        let ring = Ring::new(lim.entries).unwrap();
        let at = ring.index(raw % (2 * lim.entries)).unwrap();
        if let Err(e) = Wqe::decode_posted(&buf, &lim, ring, at) {
            let _ = wqe::syndrome(&e);
        }
    }

    #[test]
    fn mutated_valid_wqes_never_panic(lim in limits(), flips in prop::collection::vec((0usize..512, any::<u8>()), 1..4)) {
        // Start from a valid WQE for the queue so that mutations reach the deeper checks.
        let mut slot = vec![0u8; lim.stride];
        let ctrl = Ctrl {
            opcode: if lim.receive { wqe::Opcode::Recv as u8 } else { wqe::Opcode::Send as u8 },
            owner: true,
            qpn: lim.qpn,
            ..Ctrl::default()
        };
        let mut segs = [DataSeg { byte_count: 296, lkey: 0, addr: 0x1000 }; 4];
        segs[1].addr = 0x2000;
        let count = lim.max_sge.min((lim.stride - 16) / 16);
        let _ = Wqe { ctrl, payload: Payload::Segments { segs, count } }.encode(&mut slot);
        for (at, x) in flips {
            let n = slot.len();
            slot[at % n] ^= x;
        }
        let ring = Ring::new(lim.entries).unwrap();
        if let Err(e) = Wqe::decode_posted(&slot, &lim, ring, ring.start()) {
            let _ = wqe::syndrome(&e);
        }
    }

    #[test]
    fn mutated_valid_cqes_never_panic(flips in prop::collection::vec((0usize..32, any::<u8>()), 1..4), entries in 0u32..70_000, len in any::<u32>()) {
        let mut b = [0u8; 32];
        Cqe {
            wqe_index: 1, qpn: 1, opcode: cqe::Opcode::Recv, byte_count: 296, slid: 1, pkey_index: 0,
            src_qpn: 1, status: cqe::Status::Success, syndrome: 0, grh: false, sl: 0, owner: true,
        }
        .encode(&mut b)
        .unwrap();
        for (at, x) in flips {
            b[at] ^= x;
        }
        if let Ok(c) = Cqe::decode(&b) {
            let _ = c.check(&cqe::Posted { entries, len });
        }
    }

    #[test]
    fn cqe_decoder_never_panics(buf in bytes(), entries in 0u32..70_000, len in any::<u32>()) {
        if let Ok(c) = Cqe::decode(&buf) {
            let _ = c.check(&cqe::Posted { entries, len });
        }
    }

    #[test]
    fn mad_decoders_never_panic(buf in bytes()) {
        let _ = MadHeader::decode(&buf);
        let _ = Grh::decode(&buf);
    }

    #[test]
    fn stream_decoders_never_panic(buf in bytes(), count in 0u32..64, total in any::<u64>(), raw in 0u32..128, seq in any::<u64>(), seg in any::<u32>()) {
        let _ = Descriptor::decode(&buf);
        let _ = stream::validate_table(&buf, count, total);
        if let Ok(r) = Record::decode(&buf) {
            let ring = Ring::new(64).unwrap();
            let _ = r.check(ring, ring.index(raw).unwrap(), seq, seg);
        }
        let _ = stream::verify_pattern(&buf, seq, u64::from(raw));
    }

    #[test]
    fn register_decoders_never_panic(c0 in any::<u32>(), c1 in any::<u32>(), c2 in any::<u32>(), b in any::<u8>()) {
        if let Ok(c) = Caps::decode(c0, c1, c2) {
            prop_assert_eq!(c.encode(), (c0, c1, c2));
        }
        let _ = ErrorCode::from_u8(b);
        let _ = ErrorSource::decode(b);
    }

    #[test]
    fn ioctl_decoders_never_panic(buf in bytes(), code in any::<u32>(), inl in 0usize..1000, outl in 0usize..1000, blen in any::<u64>(), align in any::<u32>()) {
        if let Ok(i) = Ioctl::from_code(code) {
            let _ = i.check_lengths(inl, outl);
        }
        let _ = ioctl::QueryDeviceOut::decode(&buf);
        let _ = ioctl::QueryPortOut::decode(&buf);
        if let Ok(s) = ioctl::SendMadIn::decode(&buf) {
            let _ = s.validate();
        }
        let _ = ioctl::SendMadOut::decode(&buf);
        let _ = ioctl::RecvMadOut::decode(&buf);
        if let Ok(s) = ioctl::StreamStartIn::decode(&buf) {
            let _ = s.validate(Ioctl::StreamStartCapture, blen, align, 4096, 1 << 20);
        }
        let _ = ioctl::StreamWaitIn::decode(&buf);
        let _ = ioctl::StreamWaitOut::decode(&buf);
        let _ = ioctl::StreamReleaseIn::decode(&buf);
        let _ = ioctl::StreamStopIn::decode(&buf);
        let _ = ioctl::StatisticsOut::decode(&buf);
    }

    #[test]
    fn abi_decoders_accept_only_their_own_header(mut buf in prop::collection::vec(any::<u8>(), 1560..1572)) {
        // Give the random bytes a valid header for one structure: only that structure accepts it.
        let size = u32::try_from(ioctl::StreamWaitOut::SIZE).unwrap();
        buf[0..4].copy_from_slice(&size.to_le_bytes());
        buf[4..8].copy_from_slice(&ioctl::ABI_VERSION.to_le_bytes());
        prop_assert!(ioctl::StreamWaitOut::decode(&buf).is_ok());
        prop_assert!(ioctl::StatisticsOut::decode(&buf).is_err());
        prop_assert!(ioctl::SendMadIn::decode(&buf).is_err());
    }
}

fn arb_ctrl(receive: bool, qpn: u8) -> impl Strategy<Value = Ctrl> {
    (
        any::<bool>(),
        any::<bool>(),
        0u16..32,
        0u8..16,
        any::<u16>(),
        0u32..(1 << 24),
        any::<u8>(),
        any::<u32>(),
        any::<bool>(),
    )
        .prop_map(
            move |(
                signaled,
                solicited,
                wqe_index,
                sl,
                dlid,
                remote_qpn,
                pkey_index,
                qkey,
                owner,
            )| {
                if receive {
                    Ctrl {
                        opcode: wqe::Opcode::Recv as u8,
                        signaled,
                        owner,
                        wqe_index,
                        qpn,
                        ..Ctrl::default()
                    }
                } else {
                    let (remote_qpn, qkey) = if qpn == 0 { (0, 0) } else { (remote_qpn, qkey) };
                    Ctrl {
                        opcode: wqe::Opcode::Send as u8,
                        signaled,
                        solicited,
                        owner,
                        wqe_index,
                        ds_count: 0,
                        sl,
                        qpn,
                        dlid,
                        remote_qpn,
                        pkey_index,
                        qkey,
                    }
                }
            },
        )
}

fn arb_segs() -> impl Strategy<Value = ([DataSeg; 4], usize)> {
    prop::collection::vec((1u32..=wqe::MAX_SEG_BYTES, 0u64..(1 << 62)), 1..=4).prop_map(|v| {
        let mut segs = [DataSeg::default(); 4];
        for (s, (byte_count, addr)) in segs.iter_mut().zip(&v) {
            *s = DataSeg {
                byte_count: *byte_count,
                lkey: 0,
                addr: *addr,
            };
        }
        (segs, v.len())
    })
}

proptest! {
    #[test]
    fn wqe_round_trip_segments(
        (receive, qpn, ctrl) in (any::<bool>(), 0u8..=1).prop_flat_map(|(r, q)| (Just(r), Just(q), arb_ctrl(r, q))),
        (segs, count) in arb_segs(),
    ) {
        let lim = wqe::Limits { stride: 128, entries: 32, max_sge: 4, max_inline: 100, qpn, receive };
        let w = Wqe { ctrl, payload: Payload::Segments { segs, count } };
        let mut slot = [0u8; 128];
        w.encode(&mut slot).unwrap();
        let d = Wqe::decode(&slot, &lim).unwrap();
        prop_assert_eq!(d.payload, w.payload);
        prop_assert_eq!(d.ctrl, Ctrl { ds_count: u8::try_from(count).unwrap(), ..ctrl });
    }

    #[test]
    fn wqe_round_trip_inline(ctrl in arb_ctrl(false, 1), data in prop::collection::vec(any::<u8>(), 1..=492)) {
        let lim = wqe::Limits { stride: 512, entries: 32, max_sge: 4, max_inline: 492, qpn: 1, receive: false };
        let mut slot = [0u8; 512];
        let n = Wqe { ctrl, payload: Payload::Inline(&data) }.encode(&mut slot).unwrap();
        prop_assert_eq!(n, 16 + (4 + data.len()).div_ceil(16) * 16);
        let d = Wqe::decode(&slot, &lim).unwrap();
        prop_assert_eq!(d.payload, Payload::Inline(&data));
    }

    #[test]
    fn cqe_round_trip(
        wqe_index in any::<u16>(), qpn in 0u8..=1, recv in any::<bool>(), byte_count in any::<u32>(),
        slid in any::<u16>(), pkey_index in any::<u16>(), src_qpn in 0u32..(1 << 24), st in 0u8..=6,
        syndrome in 1u8..=0x0D, grh in any::<bool>(), sl in 0u8..16, owner in any::<bool>(),
    ) {
        let status = cqe::Status::from_u8(st).unwrap();
        let syndrome = if status == cqe::Status::Success { 0 } else { syndrome };
        let c = if recv {
            Cqe { wqe_index, qpn, opcode: cqe::Opcode::Recv, byte_count, slid, pkey_index, src_qpn, status, syndrome, grh, sl, owner }
        } else {
            Cqe { wqe_index, qpn, opcode: cqe::Opcode::Send, byte_count, slid: 0, pkey_index: 0, src_qpn: 0, status, syndrome, grh: false, sl: 0, owner }
        };
        let mut b = [0u8; 32];
        c.encode(&mut b).unwrap();
        prop_assert_eq!(Cqe::owner_of(b[cqe::OWNER_OFFSET]), owner);
        prop_assert_eq!(Cqe::decode(&b), Ok(c));
    }

    #[test]
    fn mad_header_round_trip(
        class in prop::sample::select(vec![0x01u8, 0x81, 0x03, 0x04, 0x07, 0x0A, 0x21, 0x30, 0x4F]),
        method in prop::sample::select(vec![0x01u8, 0x02, 0x03, 0x05, 0x06, 0x07, 0x12, 0x81, 0x86, 0x92, 0x95]),
        class_version in any::<u8>(), status in any::<u16>(), hops in 0u16..=63, ptr in any::<u8>(),
        tid in any::<u64>(), attr_id in any::<u16>(), attr_mod in any::<u32>(),
    ) {
        let h = MadHeader { base_version: 1, mgmt_class: class, class_version, method, status, class_specific: u16::from(ptr) << 8 | hops, tid, attr_id, attr_mod };
        let mut b = [0u8; 24];
        h.encode(&mut b).unwrap();
        prop_assert_eq!(MadHeader::decode(&b), Ok(h));
    }

    #[test]
    fn grh_round_trip(vtf in 0u32..(1 << 28), paylen in any::<u16>(), nh in any::<u8>(), hl in any::<u8>(), sgid in any::<[u8; 16]>(), dgid in any::<[u8; 16]>()) {
        let g = Grh { version_tclass_flow: 6 << 28 | vtf, paylen, next_hdr: nh, hop_limit: hl, sgid, dgid };
        let mut b = [0u8; 40];
        g.encode(&mut b).unwrap();
        prop_assert_eq!(Grh::decode(&b), Ok(g));
    }

    #[test]
    fn stream_records_and_descriptors_round_trip(seq in any::<u64>(), bc in any::<u32>(), st in 0u8..=3, owner in any::<bool>(), addr in 0u64..(1 << 63), len in 1u32.., last in any::<bool>()) {
        let r = Record { seq, byte_count: bc, status: RecordStatus::from_u8(st).unwrap(), owner };
        let mut b = [0u8; 16];
        r.encode(&mut b).unwrap();
        prop_assert_eq!(Record::decode(&b), Ok(r));
        let d = Descriptor { addr, len, last };
        d.encode(&mut b).unwrap();
        prop_assert_eq!(Descriptor::decode(&b), Ok(d));
    }

    #[test]
    fn pattern_round_trip(seq in any::<u64>(), words in 1usize..512, skew in 0usize..64) {
        let mut seg = vec![0u8; words * 8];
        stream::fill_pattern(&mut seg, seq, 0).unwrap();
        prop_assert_eq!(stream::verify_pattern(&seg, seq, 0), Ok(None));
        prop_assert!(stream::verify_pattern(&seg, seq.wrapping_add(1), 0).unwrap().is_some());
        let at = (skew % words) * 8;
        seg[at] ^= 1;
        prop_assert_eq!(stream::verify_pattern(&seg, seq, 0), Ok(Some(at as u64)));
    }

    #[test]
    fn abi_round_trip(engine in any::<u32>(), count in any::<u32>(), first in any::<u64>(), stats in any::<[u64; 16]>()) {
        let r = ioctl::StreamReleaseIn { engine, count, first_sequence: first, ..Default::default() };
        let mut b = [0u8; 24];
        r.encode(&mut b).unwrap();
        prop_assert_eq!(ioctl::StreamReleaseIn::decode(&b), Ok(r));
        let s = ioctl::StatisticsOut {
            mad_sends: stats[0], mad_sends_inline: stats[1], mad_receives: stats[2], mad_receive_drops: stats[3],
            mappings_made: stats[4], mappings_released: stats[5], overflow_waits: stats[6], hostile_cqes: stats[7],
            send_errors: stats[8], interrupts: stats[9], dpcs: stats[10], stream_segments: stats[11],
            stream_bytes: stats[12], stream_flushes: stats[13], stream_errors: stats[14], stream_strategy: stats[15],
            ..Default::default()
        };
        let mut b = [0u8; ioctl::StatisticsOut::SIZE];
        s.encode(&mut b).unwrap();
        prop_assert_eq!(ioctl::StatisticsOut::decode(&b), Ok(s));
    }

    #[test]
    fn ring_arithmetic_is_consistent(entries in 1u32..=(1 << 15), a in any::<u32>(), n in any::<u32>(), m in 0u32..=(1 << 15)) {
        let r = Ring::new(entries).unwrap();
        let i = r.index(a % (2 * entries)).unwrap();
        let j = r.advance(i, n);
        prop_assert!(j.raw() < 2 * entries);
        prop_assert_eq!(r.distance(i, j), n % (2 * entries));
        prop_assert_eq!(r.slot(j), (i.raw() + n % (2 * entries)) % (2 * entries) % entries);
        prop_assert_eq!(r.lap_parity(j), j.raw() >= entries);
        prop_assert_eq!(r.owner(j), !r.lap_parity(j));
        // A producer at most one lap ahead: used + free == entries.
        let k = m % (entries + 1);
        let p = r.advance(i, k);
        prop_assert_eq!(r.used(p, i), Ok(k));
        prop_assert_eq!(r.used(p, i).unwrap() + r.free(p, i).unwrap(), entries);
        // Stepping one lap flips the owner bit and keeps the slot.
        let lap = r.advance(i, entries);
        prop_assert_eq!(r.slot(lap), r.slot(i));
        prop_assert_ne!(r.owner(lap), r.owner(i));
        prop_assert_eq!(RingIndex::default(), r.start());
    }
}
