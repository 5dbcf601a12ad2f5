//! A stream ends safely however it ends: the process killed mid-stream ×50 and the device
//! surprise-removed mid-stream ×50, under `verifier+iommu` — where any device access to pages
//! after their mapping is gone faults (E6/0x26) and any DMA resource left behind is a leak.

#![expect(
    clippy::many_single_char_names,
    reason = "tests name the lab, process, handle, client and result l, p, h, c, r"
)]

mod common;

use std::time::Duration;

use common::lab;
use rhca_hw::ioctl::{self, Strategy, StreamWaitIn, StreamWaitOut};
use rhca_hw::stream::Direction;
use rhca_tests::stream::Client;
use wdk_sim::wdf::host::{Handle, Pending, Process};
use wdk_sim::{STATUS_CANCELLED, STATUS_DEVICE_REMOVED, STATUS_SUCCESS};

const STRATEGIES: [Strategy; 4] = [
    Strategy::CommonBufferFromMdl,
    Strategy::PersistentSg,
    Strategy::PerSegment,
    Strategy::Staging,
];

/// A WAIT left pending (or completed at once if segments are ready) across the teardown.
fn wait_async(p: &Process, h: &Handle, engine: u32) -> Pending {
    let mut b = [0u8; StreamWaitIn::SIZE];
    StreamWaitIn {
        engine,
        max_segments: 1,
        ..StreamWaitIn::default()
    }
    .encode(&mut b)
    .unwrap();
    p.ioctl_async(h, ioctl::IOCTL_RHCA_STREAM_WAIT, &b, StreamWaitOut::SIZE)
        .unwrap()
}

#[test]
fn process_killed_mid_stream_fifty_times() {
    let l = lab("verifier+iommu");
    for i in 0..50u32 {
        let p = l.host().process();
        let h = p.open(&l.node).unwrap();
        let s = STRATEGIES[i as usize % 4];
        let dir = if i % 2 == 0 {
            Direction::Capture
        } else {
            Direction::Playback
        };
        let c = Client::start(&p, &h, &l.m, i % 2, dir, 64 * 1024, 8, s, 0).expect("START");
        let o = c.run(u64::from(i % 7) + 1);
        assert_eq!(o.bad, 0);
        let w = wait_async(&p, &h, i % 2);
        p.kill().expect("rundown completes");
        let r = c
            .start
            .wait(Duration::from_secs(10))
            .expect("START completed");
        assert_eq!(r.status, STATUS_CANCELLED, "iteration {i}");
        assert!(w.wait(Duration::from_secs(10)).is_some(), "WAIT completed");
        assert!(l.m.bugcheck().is_none(), "{:?}", l.m.bugcheck());
    }
    assert_eq!(
        l.dev.counters().errors,
        0,
        "the device never faulted on a page"
    );
    // The device is still fine afterwards.
    let p = l.host().process();
    let h = p.open(&l.node).unwrap();
    let c = Client::start(
        &p,
        &h,
        &l.m,
        0,
        Direction::Capture,
        64 * 1024,
        8,
        Strategy::Auto,
        0,
    )
    .unwrap();
    assert_eq!(c.run(32).bad, 0);
    let (st, r) = c.stop();
    assert_eq!((st, r.status), (STATUS_SUCCESS, STATUS_SUCCESS));
    p.close(h).unwrap();
    l.finish();
}

#[test]
fn surprise_removal_mid_stream_fifty_times() {
    for i in 0..50u32 {
        let mut l = lab("verifier+iommu");
        let p = l.host().process();
        let h = p.open(&l.node).unwrap();
        let s = STRATEGIES[i as usize % 4];
        let dir = if i % 2 == 0 {
            Direction::Capture
        } else {
            Direction::Playback
        };
        let c = Client::start(&p, &h, &l.m, i % 2, dir, 64 * 1024, 8, s, 0).expect("START");
        let _ = c.run(u64::from(i % 5) + 1);
        let w = wait_async(&p, &h, i % 2);
        l.host().surprise_remove(&l.node).expect("surprise removal");
        let r = c
            .start
            .wait(Duration::from_secs(10))
            .expect("START completed");
        assert_eq!(r.status, STATUS_DEVICE_REMOVED, "iteration {i}");
        assert!(w.wait(Duration::from_secs(10)).is_some(), "WAIT completed");
        p.close(h).unwrap();
        let host = l.host.take().unwrap();
        host.unload().expect("unload");
        drop(l.worker.take());
        assert_eq!(
            l.m.leaks().unwrap(),
            Vec::<String>::new(),
            "leaks, iteration {i}"
        );
        assert!(l.m.bugcheck().is_none(), "{:?}", l.m.bugcheck());
        assert!(l.m.stray_dma(l.att.slot).is_empty());
    }
}
