//! End to end: continuous DMA through the stream IOCTLs — the driver (`rhca`) on the simulated
//! machine with the device model — for every strategy and platform profile, with every segment's
//! pattern verified, and every way a stream can end.

#![expect(
    clippy::many_single_char_names,
    reason = "tests name the lab, process, handle, client and outcome l, p, h, c, o"
)]

mod common;

use common::{Lab, lab, stats};
use rhca_hw::ioctl::{START_FLAG_VERIFY, Strategy};
use rhca_hw::stream::Direction;
use rhca_model::{ModelConfig, RhcaDevice};
use rhca_tests::stream::Client;
use wdk_sim::wdf::host::{Handle, Host, InterruptResources, Mode, Process};
use wdk_sim::{
    Config, Machine, NTSTATUS, Profile, STATUS_ACCESS_DENIED, STATUS_CANCELLED, STATUS_DEVICE_BUSY,
    STATUS_INVALID_PARAMETER, STATUS_NOT_SUPPORTED, STATUS_SUCCESS,
};

/// Segment size and count of the done-when runs: 64 segments of 256 KiB (a 16 MiB buffer), so
/// 1 GiB is 4096 segments, 64 laps of the buffer.
const SEG: u32 = 256 * 1024;
const SEGS: u32 = 64;
const GIB_SEGMENTS: u64 = (1 << 30) / SEG as u64;

const STRATEGIES: [Strategy; 4] = [
    Strategy::CommonBufferFromMdl,
    Strategy::PersistentSg,
    Strategy::PerSegment,
    Strategy::Staging,
];

/// Whether `s` is correct on `profile` (the driver must refuse it otherwise):
/// `CreateCommonBufferFromMdl` needs DMA remapping for a user buffer, whose pages are never
/// physically contiguous; every other strategy is correct everywhere with a version 3 adapter.
fn valid(s: Strategy, profile: &str) -> bool {
    s != Strategy::CommonBufferFromMdl || Profile::parse(profile).is_ok_and(|p| p.iommu)
}

fn start(l: &Lab, p: &Process, h: &Handle, dir: Direction, s: Strategy) -> Result<(), NTSTATUS> {
    let flags = if dir == Direction::Playback {
        START_FLAG_VERIFY
    } else {
        0
    };
    let c = Client::start(p, h, &l.m, 0, dir, SEG, SEGS, s, flags)?;
    let o = c.run(GIB_SEGMENTS);
    assert!(
        o.verified >= GIB_SEGMENTS && o.bad == 0 && !o.ended_early,
        "{s:?} {dir:?}: {o:?}"
    );
    assert_eq!(o.strategy, s as u32, "the strategy in use is reported");
    assert_eq!(o.bytes, o.verified * u64::from(SEG));
    let (st, r) = c.stop();
    assert_eq!((st, r.status), (STATUS_SUCCESS, STATUS_SUCCESS));
    // The START reports the bytes of its buffer that hold stream data: never more than the
    // buffer (the KMDF verifier stops a larger Information), all of it once the stream wrapped.
    assert_eq!(
        r.information as u64,
        u64::from(SEG) * u64::from(SEGS),
        "the START completes with the bytes its wrapped buffer holds"
    );
    Ok(())
}

/// The done-when matrix for one profile: 1 GiB captured and 1 GiB played back (the device
/// verifying the pattern) with every valid strategy; every invalid one refused.
fn matrix(profile: &str) {
    let l = lab(profile);
    let p = l.host().process();
    let h = p.open(&l.node).unwrap();
    for s in STRATEGIES {
        for dir in [Direction::Capture, Direction::Playback] {
            match start(&l, &p, &h, dir, s) {
                Ok(()) => assert!(valid(s, profile), "{s:?} on {profile} must be refused"),
                Err(st) => {
                    assert!(
                        !valid(s, profile),
                        "{s:?} {dir:?} on {profile} failed: {st:#x}"
                    );
                    assert_eq!(st, STATUS_NOT_SUPPORTED, "a clear refusal");
                }
            }
        }
    }
    let s = stats(&p, &h);
    assert_eq!(s.stream_errors, 0);
    assert_eq!(l.dev.counters().errors, 0, "the device saw no DMA fault");
    p.close(h).unwrap();
    l.finish();
}

#[test]
fn coherent_every_strategy_one_gib_each_way() {
    matrix("coherent");
}

#[test]
fn iommu_every_strategy_one_gib_each_way() {
    matrix("iommu");
}

#[test]
fn bounce_every_strategy_one_gib_each_way() {
    matrix("bounce");
}

#[test]
fn noncoherent_every_strategy_one_gib_each_way() {
    matrix("noncoherent");
}

#[test]
fn verifier_every_strategy_one_gib_each_way() {
    matrix("verifier");
}

#[test]
fn verifier_iommu_every_strategy_one_gib_each_way() {
    matrix("verifier+iommu");
}

#[test]
fn automatic_choice_is_the_best_correct_strategy() {
    for (profile, want) in [
        ("coherent", Strategy::PersistentSg),
        ("iommu", Strategy::CommonBufferFromMdl),
        ("verifier", Strategy::PersistentSg),
        ("verifier+iommu", Strategy::CommonBufferFromMdl),
    ] {
        let l = lab(profile);
        let p = l.host().process();
        let h = p.open(&l.node).unwrap();
        let c = Client::start(
            &p,
            &h,
            &l.m,
            1,
            Direction::Capture,
            64 * 1024,
            16,
            Strategy::Auto,
            0,
        )
        .unwrap();
        let o = c.run(64);
        assert!(o.verified >= 64 && o.bad == 0, "{profile}: {o:?}");
        assert_eq!(o.strategy, want as u32, "{profile}");
        let (st, r) = c.stop();
        assert_eq!((st, r.status), (STATUS_SUCCESS, STATUS_SUCCESS));
        assert_eq!(stats(&p, &h).stream_strategy, want as u64);
        p.close(h).unwrap();
        l.finish();
    }
}

#[test]
fn a_version_2_adapter_streams_by_staging_and_refuses_what_needs_version_3() {
    let p = Profile::VERIFIER;
    let m = Machine::new(Config {
        max_description_version: 2,
        ..Config::with_profile(p)
    });
    let (dev, att) = RhcaDevice::attach(&m, ModelConfig::default()).unwrap();
    let worker = dev.spawn_worker();
    let host = Host::load_with(&m, rhca::driver_entry, Mode::Threaded).unwrap();
    let node = host.add_device(&att, InterruptResources::Msi(2)).unwrap();
    host.start(&node).unwrap();
    let l = Lab {
        m,
        host: Some(host),
        node,
        dev,
        att,
        worker: Some(worker),
    };
    let pr = l.host().process();
    let h = pr.open(&l.node).unwrap();
    for s in [
        Strategy::CommonBufferFromMdl,
        Strategy::PersistentSg,
        Strategy::PerSegment,
    ] {
        let r = Client::start(&pr, &h, &l.m, 0, Direction::Capture, 65536, 8, s, 0);
        assert_eq!(r.err(), Some(STATUS_NOT_SUPPORTED), "{s:?}");
    }
    let c = Client::start(
        &pr,
        &h,
        &l.m,
        0,
        Direction::Capture,
        65536,
        8,
        Strategy::Auto,
        0,
    )
    .unwrap();
    let o = c.run(32);
    assert!(o.verified >= 32 && o.bad == 0, "{o:?}");
    assert_eq!(o.strategy, Strategy::Staging as u32);
    let _ = c.stop();
    pr.close(h).unwrap();
    l.finish();
}

#[test]
fn bad_requests_get_clear_errors_and_change_nothing() {
    let l = lab("verifier");
    let p = l.host().process();
    let h = p.open(&l.node).unwrap();
    let go = |engine, seg, count, s| {
        Client::start(&p, &h, &l.m, engine, Direction::Capture, seg, count, s, 0).err()
    };
    assert_eq!(
        go(0, 6000, 8, Strategy::Auto),
        Some(STATUS_INVALID_PARAMETER),
        "segment size"
    );
    assert_eq!(
        go(0, 65536, 1, Strategy::Auto),
        Some(STATUS_INVALID_PARAMETER),
        "one segment"
    );
    assert_eq!(
        go(0, 2 << 20, 4, Strategy::Auto),
        Some(STATUS_INVALID_PARAMETER),
        "too large"
    );
    assert_eq!(
        go(9, 65536, 8, Strategy::Auto),
        Some(STATUS_INVALID_PARAMETER),
        "no engine 9"
    );
    let c = Client::start(
        &p,
        &h,
        &l.m,
        0,
        Direction::Capture,
        65536,
        8,
        Strategy::Auto,
        0,
    )
    .unwrap();
    assert_eq!(
        go(0, 65536, 8, Strategy::Auto),
        Some(STATUS_DEVICE_BUSY),
        "one stream per engine"
    );
    // Another handle may not drive this stream.
    let h2 = p.open(&l.node).unwrap();
    let other = Client {
        h: &h2,
        ..Client::start(
            &p,
            &h2,
            &l.m,
            1,
            Direction::Capture,
            65536,
            8,
            Strategy::Auto,
            0,
        )
        .unwrap()
    };
    let w = c.wait(4);
    assert!(w.count > 0);
    let spoof = Client { engine: 0, ..other };
    assert_eq!(
        spoof.release(w.segments[0].sequence, 1),
        STATUS_ACCESS_DENIED
    );
    // Release must start at the oldest segment held, and cover no more than is held.
    assert_eq!(
        c.release(w.segments[0].sequence + 1, 1),
        STATUS_INVALID_PARAMETER
    );
    assert_eq!(
        c.release(w.segments[0].sequence, w.count + 1),
        STATUS_INVALID_PARAMETER
    );
    assert_eq!(c.release(w.segments[0].sequence, w.count), STATUS_SUCCESS);
    let o = c.run(16);
    assert!(
        o.verified >= 16 && o.bad == 0,
        "the stream went on unharmed: {o:?}"
    );
    let (st, r) = c.stop();
    assert_eq!((st, r.status), (STATUS_SUCCESS, STATUS_SUCCESS));
    let (st, r) = Client { engine: 1, ..spoof }.stop();
    assert_eq!((st, r.status), (STATUS_SUCCESS, STATUS_SUCCESS));
    p.close(h2).unwrap();
    p.close(h).unwrap();
    l.finish();
}

#[test]
fn close_power_cycle_and_cancel_end_a_stream_safely() {
    let l = lab("verifier+iommu");
    // Closing the handle mid-stream.
    let p = l.host().process();
    let h = p.open(&l.node).unwrap();
    let c = Client::start(
        &p,
        &h,
        &l.m,
        0,
        Direction::Capture,
        65536,
        8,
        Strategy::PersistentSg,
        0,
    )
    .unwrap();
    let _ = c.run(10);
    let start = c.start;
    p.close(h).unwrap();
    let r = start
        .wait(std::time::Duration::from_secs(10))
        .expect("START completes");
    assert_eq!(r.status, STATUS_CANCELLED);
    // D0 -> D3 -> D0 mid-stream.
    let h = p.open(&l.node).unwrap();
    let c = Client::start(
        &p,
        &h,
        &l.m,
        1,
        Direction::Playback,
        65536,
        8,
        Strategy::PerSegment,
        0,
    )
    .unwrap();
    let _ = c.run(10);
    l.host().power_down(&l.node).unwrap();
    let r = c
        .start
        .wait(std::time::Duration::from_secs(10))
        .expect("START completes");
    assert_eq!(r.status, STATUS_CANCELLED);
    l.host().power_up(&l.node).unwrap();
    // CancelIoEx on the START.
    let c = Client::start(
        &p,
        &h,
        &l.m,
        1,
        Direction::Capture,
        65536,
        8,
        Strategy::Staging,
        0,
    )
    .unwrap();
    let _ = c.run(10);
    c.start.cancel().unwrap();
    let r = c
        .start
        .wait(std::time::Duration::from_secs(10))
        .expect("START completes");
    assert_eq!(r.status, STATUS_CANCELLED);
    assert_eq!(
        r.information,
        8 * 65536,
        "ten segments through eight: the wrapped buffer is full"
    );
    p.close(h).unwrap();
    l.finish();
}

#[test]
fn an_engine_dma_error_ends_the_stream_with_an_error_and_releases_everything() {
    for s in [
        Strategy::PersistentSg,
        Strategy::PerSegment,
        Strategy::Staging,
    ] {
        let l = lab("verifier+iommu");
        let p = l.host().process();
        let h = p.open(&l.node).unwrap();
        let c = Client::start(&p, &h, &l.m, 0, Direction::Capture, 65536, 8, s, 0).unwrap();
        assert_eq!(c.run(8).bad, 0);
        l.dev.inject(rhca_model::Fault::StreamDmaError(0));
        let o = c.run(64);
        assert!(o.ended_early, "{s:?}: the stream ends: {o:?}");
        assert!(o.bad >= 1, "the failed segment is reported as such");
        let r = c.finish();
        assert_eq!(r.status, wdk_sim::STATUS_IO_DEVICE_ERROR, "{s:?}");
        assert!(stats(&p, &h).stream_errors >= 1);
        // The engine works again for the next stream.
        let c = Client::start(&p, &h, &l.m, 0, Direction::Capture, 65536, 8, s, 0).unwrap();
        assert_eq!(c.run(16).bad, 0);
        let _ = c.stop();
        p.close(h).unwrap();
        l.finish();
    }
}

/// A persistent capture stream on engine 0 of 64 segments of 4 KiB (the device fills the ring
/// on its START credits).
fn ring_of_4k<'a>(l: &'a Lab, p: &'a Process, h: &'a Handle) -> Client<'a> {
    Client::start(
        p,
        h,
        &l.m,
        0,
        Direction::Capture,
        4096,
        64,
        Strategy::PersistentSg,
        0,
    )
    .unwrap()
}

/// Waits (bounded) until the device has written all 64 segments of [`ring_of_4k`].
fn until_the_ring_is_filled(l: &Lab) {
    let t = std::time::Instant::now();
    while l.dev.counters().segments < 64 {
        assert!(t.elapsed().as_secs() < 10, "the device fills the ring");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// ABI version 2: one WAIT hands out up to 64 segments (a whole 64-segment ring), oldest first;
/// a count of 0 or above 64 is refused and changes nothing.
#[test]
fn a_wait_hands_out_up_to_a_whole_ring_and_refuses_more() {
    let l = lab("coherent");
    let p = l.host().process();
    let h = p.open(&l.node).unwrap();
    let c = ring_of_4k(&l, &p, &h);
    for bad in [0, 65] {
        let e = c.try_wait(bad).expect_err("refused");
        assert!(e.contains("0xc000000d"), "max_segments {bad}: {e}");
    }
    // The device fills the ring on its START credits; its records reach the driver by
    // interrupt (one per 16 segments), which the pause lets the DPC finish.
    until_the_ring_is_filled(&l);
    std::thread::sleep(std::time::Duration::from_millis(20));
    let (mut next, mut largest) = (0u64, 0u32);
    while next < 64 {
        let w = c.wait(64);
        assert!(w.count >= 1 && w.count <= 64, "{}", w.count);
        for s in &w.segments[..w.count as usize] {
            assert_eq!((s.sequence, s.bytes), (next, 4096), "oldest first, whole");
            next += 1;
        }
        largest = largest.max(w.count);
    }
    assert!(
        largest > 16,
        "a WAIT reported {largest} segments at most, no more than ABI version 1 could"
    );
    assert_eq!(c.release(0, 64), STATUS_SUCCESS, "the whole ring goes back");
    let o = c.run(128);
    assert!(o.verified >= 128 && o.bad == 0, "{o:?}");
    let (st, r) = c.stop();
    assert_eq!((st, r.status), (STATUS_SUCCESS, STATUS_SUCCESS));
    p.close(h).unwrap();
    l.finish();
}

/// A WAIT that finds no segment ready looks at the record ring itself before it pends: the
/// segments the device finished are handed out although the device's moderation held their
/// interrupt back (here for good: SE0.MOD rewritten behind the driver to a count never reached
/// and no timer). Without that look a WAIT would pend until the driver's watchdog (every
/// 100 ms) polled the ring.
#[test]
fn a_wait_finds_segments_the_device_has_not_interrupted_for() {
    use wdk_sim::PciFunction;
    let l = lab("coherent");
    // A slow device (a pause after every burst), so that the moderation is rewritten before
    // the first quarter ring is done.
    l.dev
        .inject(rhca_model::Fault::Slow(std::time::Duration::from_millis(1)));
    let p = l.host().process();
    let h = p.open(&l.node).unwrap();
    let c = ring_of_4k(&l, &p, &h);
    let modr = rhca_hw::regs::se::offset(0, rhca_hw::regs::se::MOD).unwrap();
    l.dev.mmio_write(0, u64::from(modr), 0xFFFF);
    until_the_ring_is_filled(&l);
    let interrupts = l.dev.counters().interrupts;
    // The first WAIT completes in its own dispatch: when the call returns, its reply is there
    // (had it pended, only the driver's 100 ms watchdog would have found the segments).
    let mut b = [0u8; rhca_hw::ioctl::StreamWaitIn::SIZE];
    rhca_hw::ioctl::StreamWaitIn {
        engine: 0,
        max_segments: 8,
        ..Default::default()
    }
    .encode(&mut b)
    .unwrap();
    let pend = p
        .ioctl_async(
            &h,
            rhca_hw::ioctl::IOCTL_RHCA_STREAM_WAIT,
            &b,
            rhca_hw::ioctl::StreamWaitOut::SIZE,
        )
        .unwrap();
    let r = pend
        .wait(std::time::Duration::ZERO)
        .expect("the WAIT completed in its dispatch");
    let first = rhca_hw::ioctl::StreamWaitOut::decode(&r.output).unwrap();
    assert_eq!(first.count, 8);
    let mut next = 8u64;
    while next < 64 {
        let w = c
            .try_wait(64)
            .expect("a WAIT returns the finished segments");
        for s in &w.segments[..w.count as usize] {
            assert_eq!(s.sequence, next, "oldest first");
            next += 1;
        }
    }
    assert_eq!(
        l.dev.counters().interrupts,
        interrupts,
        "no interrupt brought them"
    );
    l.dev
        .inject(rhca_model::Fault::Slow(std::time::Duration::ZERO));
    assert_eq!(c.release(0, 64), STATUS_SUCCESS);
    let _ = c.stop();
    p.close(h).unwrap();
    l.finish();
}
