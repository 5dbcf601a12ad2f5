//! Stream engines driven by hand: a persistent mapping of a user buffer described once by a
//! descriptor table, credits, per-segment records checked the way the driver checks them, the
//! data pattern verified segment by segment (1 GiB of capture), playback verification, STOP,
//! credit overflow and DMA faults.

#![expect(
    clippy::cast_possible_truncation,
    reason = "test geometry is small: segment counts and 32-bit register halves of addresses"
)]

use rhca_hw::regs::{self, ErrorCode, cause, se};
use rhca_hw::ring::Ring;
use rhca_hw::stream::{self, Descriptor, Record, RecordStatus};
use rhca_model::rig::*;
use rhca_model::{Fault, ModelConfig};
use wdk_sim::{Config, Profile};

type Stream = StreamH;

/// A user buffer of `seg_count` segments (filled with the pattern for playback), mapped for
/// the stream's life, and engine `n` started over it.
fn start_stream(
    rig: &Rig,
    n: u32,
    capture: bool,
    verify: bool,
    seg_size: u32,
    seg_count: u32,
) -> Stream {
    let len = seg_size * seg_count;
    let va = rig.m.alloc_user(len as usize);
    if !capture {
        // Playback: the application fills the buffer before the stream starts.
        let mut data = vec![0u8; len as usize];
        for (s, seg) in data.chunks_exact_mut(seg_size as usize).enumerate() {
            stream::fill_pattern(seg, s as u64, 0).unwrap();
        }
        rig.write(va, &data);
    }
    let el = rig.map_user(va, len, capture);
    StreamH::start(rig, n, capture, verify, seg_size, seg_count, va, &el)
}

/// Runs a capture stream whose credits were granted until `total` segments have been
/// recorded, checking each record's status and each segment's pattern, and handing each
/// segment back as it is checked.
fn capture_until(rig: &Rig, s: &mut Stream, total: u64) {
    while s.next < total {
        assert!(
            rig.dev.run_until_idle() > 0,
            "the engine stalled with credits"
        );
        let mut got = 0;
        while let Some(rec) = s.poll(rig) {
            assert_eq!(rec.status, RecordStatus::Ok);
            rig.flush(s.va);
            let data = s.segment(rig, rec.seq);
            assert_eq!(
                stream::verify_pattern(&data, rec.seq, 0),
                Ok(None),
                "segment {}",
                rec.seq
            );
            got += 1;
        }
        assert!(got > 0);
        let grant = got.min((total - s.next) as u32);
        if grant > 0 {
            s.grant(rig, grant);
        }
    }
}

#[test]
fn capture_of_one_gib_verifies_every_segment() {
    let rig = Rig::new(Profile::COHERENT);
    rig.bring_up();
    let seg = 1 << 20;
    let mut s = start_stream(&rig, 0, true, false, seg, 8);
    assert!(se::STATUS_RUNNING.is_set(s.status(&rig)));
    assert_eq!(rig.dev.counters().bytes_streamed, 0, "no credit, no data");
    s.grant(&rig, 8);
    let total = 1024u64; // 1 GiB
    capture_until(&rig, &mut s, total);
    let c = rig.dev.counters();
    assert_eq!((c.segments, c.bytes_streamed), (1024, 1 << 30));
    assert_eq!(rig.r(se::offset(0, se::SEQ).unwrap()), 1024);
    assert_eq!(se::STATUS_CREDITS.get(s.status(&rig)), 0);
    assert!(rig.m.bugcheck().is_none());
}

#[test]
fn bursts_that_start_and_end_inside_descriptor_pieces_move_every_byte() {
    // Under remapping the buffer is one contiguous IOVA range, so the descriptor table may cut
    // it anywhere: pieces of 12, 20, 4 and 28 KiB (and 8 bytes, then 4 KiB less 8) put burst
    // boundaries inside pieces, and each burst takes several whole pieces between a cut first
    // and a cut last one. Two laps of capture, every segment's pattern checked.
    let rig = Rig::new(Profile::IOMMU);
    rig.bring_up();
    let (seg, segs) = (256 * 1024u32, 4u32);
    let len = seg * segs;
    let va = rig.m.alloc_user(len as usize);
    let [(iova, n)] = rig.map_user(va, len, true)[..] else {
        panic!("one remapped element");
    };
    assert_eq!(n, len);
    let sizes = [12 << 10, 20 << 10, 4 << 10, 28 << 10, 8, (4 << 10) - 8];
    let mut el = Vec::new();
    let mut at = 0u32;
    for &size in sizes.iter().cycle() {
        let take = size.min(len - at);
        el.push((iova + u64::from(at), take));
        at += take;
        if at == len {
            break;
        }
    }
    assert!(el.len() > 4 * 16, "several pieces per 64 KiB burst");
    let mut s = StreamH::start(&rig, 0, true, false, seg, segs, va, &el);
    s.grant(&rig, segs);
    let total = u64::from(2 * segs);
    capture_until(&rig, &mut s, total);
    assert_eq!(rig.dev.counters().bytes_streamed, total * u64::from(seg));
    assert!(rig.m.bugcheck().is_none());
}

#[test]
fn the_engine_never_moves_a_segment_without_a_credit() {
    let rig = Rig::new(Profile::COHERENT);
    rig.bring_up();
    let mut s = start_stream(&rig, 1, true, false, 4096, 4);
    s.grant(&rig, 2);
    rig.dev.run_until_idle();
    assert!(s.poll(&rig).is_some() && s.poll(&rig).is_some());
    assert!(s.poll(&rig).is_none(), "two credits, two segments");
    assert_eq!(s.segment(&rig, 2), vec![0u8; 4096], "segment 2 untouched");
    assert_eq!(rig.dev.counters().bytes_streamed, 8192);
    // Too many credits: CreditOverflow stops the engine.
    s.grant(&rig, 5);
    assert_eq!(rig.syndrome(), (ErrorCode::CreditOverflow as u32, 0x21));
    assert!(se::STATUS_ERROR.is_set(s.status(&rig)));
    assert!(!se::STATUS_RUNNING.is_set(s.status(&rig)));
}

#[test]
fn playback_verifies_the_pattern_and_reports_a_corrupted_segment() {
    let rig = Rig::new(Profile::IOMMU);
    rig.bring_up();
    let seg = 16 * 1024;
    let mut s = start_stream(&rig, 0, false, true, seg, 4);
    // Corrupt one word of segment 2 (the application wrote the wrong thing).
    rig.write(s.va + 2 * seg as usize + 800, &[0xEE]);
    rig.flush(s.va);
    s.grant(&rig, 4);
    rig.dev.run_until_idle();
    let st: Vec<RecordStatus> = std::iter::from_fn(|| s.poll(&rig))
        .map(|r| r.status)
        .collect();
    assert_eq!(
        st,
        vec![
            RecordStatus::Ok,
            RecordStatus::Ok,
            RecordStatus::PatternMismatch,
            RecordStatus::Ok
        ]
    );
    assert!(rig.m.bugcheck().is_none());
    assert!(rig.m.stray_dma(rig.att.slot).is_empty());
}

#[test]
fn stop_mid_segment_writes_a_stopped_record_and_acknowledges() {
    let model = ModelConfig {
        stream_rate: Some(50_000_000),
        ..ModelConfig::default()
    };
    let rig = Rig::with(Config::with_profile(Profile::COHERENT), model);
    rig.bring_up();
    rig.w(regs::INT_CFG.offset, 4);
    rig.w(regs::INT_CAUSE.offset, u32::MAX);
    rig.w(regs::INT_MASK.offset, 0);
    let mut s = start_stream(&rig, 0, true, false, 1 << 20, 4);
    s.grant(&rig, 4);
    // At 50 MB/s a 1 MiB segment takes ~20 ms; stop after a few bursts.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while rig.dev.counters().bytes_streamed < 128 * 1024 {
        assert!(std::time::Instant::now() < deadline);
        rig.dev.service();
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    rig.w(se::offset(0, se::CTRL).unwrap(), se::CTRL_STOP.mask());
    let st = s.status(&rig);
    assert!(se::STATUS_STOPPED.is_set(st) && !se::STATUS_RUNNING.is_set(st));
    assert_ne!(rig.r(regs::INT_CAUSE.offset) & cause::se_stopped(0), 0);
    let recs: Vec<Record> = std::iter::from_fn(|| s.poll(&rig)).collect();
    let last = recs.last().expect("a record for the partial segment");
    assert_eq!(last.status, RecordStatus::Stopped);
    assert!(last.byte_count > 0 && last.byte_count < 1 << 20 && last.byte_count.is_multiple_of(8));
    // The partial data are the pattern, as far as they go.
    let data = s.segment(&rig, last.seq);
    assert_eq!(
        stream::verify_pattern(&data[..last.byte_count as usize], last.seq, 0),
        Ok(None)
    );
    // After STOPPED, nothing moves.
    let before = rig.dev.counters().bytes_streamed;
    s.grant(&rig, 1);
    rig.dev.run_until_idle();
    assert_eq!(rig.dev.counters().bytes_streamed, before);
}

#[test]
fn quiesce_stops_every_engine_before_it_reads_quiesced() {
    let rig = Rig::new(Profile::COHERENT);
    rig.bring_up();
    let s0 = start_stream(&rig, 0, true, false, 4096, 4);
    let s1 = start_stream(&rig, 1, true, false, 4096, 4);
    s0.grant(&rig, 1);
    rig.w(
        regs::CTRL.offset,
        regs::CTRL_ENABLE.mask() | regs::CTRL_QUIESCE.mask(),
    );
    assert!(regs::STATUS_QUIESCED.is_set(rig.r(regs::STATUS.offset)));
    for s in [&s0, &s1] {
        assert!(se::STATUS_STOPPED.is_set(s.status(&rig)));
    }
    rig.dev.run_until_idle();
    assert_eq!(
        rig.dev.counters().bytes_streamed,
        0,
        "quiesced: no DMA at all"
    );
    // START while quiesced is refused.
    rig.w(se::offset(0, se::CTRL).unwrap(), se::CTRL_START.mask());
    assert_eq!(rig.syndrome(), (ErrorCode::NotEnabled as u32, 0x20));
}

#[test]
fn a_bad_descriptor_table_is_refused_at_start() {
    let rig = Rig::new(Profile::COHERENT);
    rig.bring_up();
    let (tva, tla) = rig.common(4096);
    // Two entries that cover only half the buffer.
    let mut t = [0u8; 32];
    Descriptor {
        addr: 0x10_0000,
        len: 4096,
        last: false,
    }
    .encode(&mut t)
    .unwrap();
    Descriptor {
        addr: 0x20_0000,
        len: 4096,
        last: true,
    }
    .encode(&mut t[16..])
    .unwrap();
    rig.write(tva, &t);
    let r = |reg| se::offset(0, reg).unwrap();
    rig.w(r(se::DESC_LO), tla as u32);
    rig.w(r(se::DESC_HI), (tla >> 32) as u32);
    rig.w(r(se::DESC_COUNT), 2);
    rig.w(r(se::SEG_SIZE), 4096);
    rig.w(r(se::SEG_COUNT), 4);
    rig.w(r(se::REC_LO), tla as u32 + 1024);
    rig.w(r(se::CTRL), se::CTRL_START.mask());
    assert_eq!(rig.syndrome(), (ErrorCode::BadStreamConfig as u32, 0x20));
    assert!(!se::STATUS_RUNNING.is_set(rig.r(r(se::STATUS))));
    // A segment size that is not a multiple of 4 KiB.
    rig.w(regs::INT_CAUSE.offset, cause::ERROR);
    rig.w(r(se::SEG_SIZE), 6000);
    rig.w(r(se::CTRL), se::CTRL_START.mask());
    assert_eq!(rig.syndrome(), (ErrorCode::BadStreamConfig as u32, 0x20));
}

#[test]
fn a_dma_fault_stops_the_engine_with_a_dma_error_record() {
    let rig = Rig::new(Profile::COHERENT);
    rig.bring_up();
    let mut s = start_stream(&rig, 0, true, false, 8192, 4);
    s.grant(&rig, 4);
    rig.dev.inject(Fault::StreamDmaError(0));
    rig.dev.run_until_idle();
    let r = s.poll(&rig).expect("a record");
    assert_eq!(
        (r.seq, r.status, r.byte_count),
        (0, RecordStatus::DmaError, 0)
    );
    assert!(se::STATUS_ERROR.is_set(s.status(&rig)));
    assert_eq!(rig.syndrome(), (ErrorCode::DmaWriteFault as u32, 0x20));
    assert!(s.poll(&rig).is_none(), "the engine stopped");
    assert_eq!(rig.dev.counters().faults_injected, 1);
}

#[test]
fn segment_interrupts_follow_moderation() {
    let rig = Rig::new(Profile::COHERENT);
    rig.bring_up();
    rig.w(regs::INT_CFG.offset, 4);
    rig.w(regs::INT_CAUSE.offset, u32::MAX);
    rig.w(regs::INT_MASK.offset, 0);
    let _ = rig.m.take_interrupts(rig.att.slot);
    rig.w(
        se::offset(1, se::MOD).unwrap(),
        rhca_hw::regs::cq::MOD_COUNT.set(0, 3),
    );
    let s = start_stream(&rig, 1, true, false, 4096, 8);
    s.grant(&rig, 8);
    rig.dev.run_until_idle();
    let msis = rig.m.take_interrupts(rig.att.slot);
    assert_eq!(
        msis.len(),
        1,
        "8 segments, count 3: one message while the cause stays set"
    );
    assert_eq!(
        msis[0],
        wdk_sim::Interrupt::Msi { vector: 3 },
        "engine 1 on vector 2 + 1"
    );
    assert_eq!(rig.r(regs::INT_CAUSE.offset), cause::se_segment(1));
}

/// Segment-table mode (§8.2): each segment is described by its own group of entries, read when
/// the engine begins the segment, so the host may map a segment only while it holds it and
/// rewrite its group before granting it.
#[test]
fn segment_table_mode_reads_each_group_when_its_segment_begins() {
    let rig = Rig::new(Profile::IOMMU);
    rig.bring_up();
    let (seg, count, per) = (8192u32, 4u32, 4u32);
    let va = rig.m.alloc_user((seg * count) as usize);
    let (tva, tla) = rig.common(4096);
    let (rec_va, rla) = rig.common(4096);
    // Map each segment on its own and write its group.
    let write_group = |s: u32| {
        let el = rig.map_user(va + (s * seg) as usize, seg, true);
        assert!(el.len() <= per as usize);
        let mut g = vec![0u8; per as usize * stream::DESC_SIZE];
        for (i, (&(addr, len), out)) in el.iter().zip(g.chunks_exact_mut(16)).enumerate() {
            Descriptor {
                addr,
                len,
                last: i + 1 == el.len(),
            }
            .encode(out)
            .unwrap();
        }
        rig.write(tva + (s * per) as usize * stream::DESC_SIZE, &g);
    };
    for s in 0..count {
        write_group(s);
    }
    let r = |reg| se::offset(0, reg).unwrap();
    rig.w(r(se::DESC_LO), tla as u32);
    rig.w(r(se::DESC_HI), (tla >> 32) as u32);
    rig.w(r(se::DESC_COUNT), per);
    rig.w(r(se::SEG_SIZE), seg);
    rig.w(r(se::SEG_COUNT), count);
    rig.w(r(se::REC_LO), rla as u32);
    rig.w(r(se::REC_HI), (rla >> 32) as u32);
    rig.w(
        r(se::CTRL),
        se::CTRL_START.mask() | se::CTRL_SEG_TABLE.mask(),
    );
    let mut s = Stream {
        n: 0,
        va,
        seg_size: seg,
        seg_count: count,
        rec_va,
        ring: Ring::new(count).unwrap(),
        next: 0,
    };
    s.grant(&rig, count);
    rig.dev.run_until_idle();
    for seq in 0..u64::from(count) {
        let rec = s.poll(&rig).expect("record");
        assert_eq!((rec.seq, rec.status), (seq, RecordStatus::Ok));
        assert_eq!(
            stream::verify_pattern(&s.segment(&rig, seq), seq, 0),
            Ok(None)
        );
    }
    // A group without a last entry stops the engine with BadStreamConfig and a DmaError record.
    rig.write(tva, &[0u8; 4 * stream::DESC_SIZE]);
    s.grant(&rig, 1);
    rig.dev.run_until_idle();
    let rec = s.poll(&rig).expect("record");
    assert_eq!(rec.status, RecordStatus::DmaError);
    assert_eq!(rig.syndrome(), (ErrorCode::BadStreamConfig as u32, 0x20));
    assert!(se::STATUS_ERROR.is_set(s.status(&rig)));
}
