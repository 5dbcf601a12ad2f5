//! Sustained concurrency on the threaded machine: MAD traffic with receives cancelled at random
//! (seeded), a capture stream, and a playback stream, each on its own thread and process, with
//! the interrupt CPU's ISRs and DPCs racing all of them — then a clean removal.

#![expect(
    clippy::many_single_char_names,
    reason = "lab, machine, process, handle, client, outcome, result: l, m, p, h, c, o, r"
)]

mod common;

use std::time::{Duration, Instant};

use common::lab;
use rhca_hw::ioctl::{self, RecvMadOut, START_FLAG_VERIFY, SendMadIn, SendMadOut, Strategy};
use rhca_hw::mad::{self, attr};
use rhca_hw::stream::Direction;
use rhca_tests::stream::Client;
use wdk_sim::STATUS_SUCCESS;

/// How long the threads run (CI size).
const RUN: Duration = Duration::from_secs(3);

#[test]
#[expect(
    clippy::too_many_lines,
    reason = "three workers side by side, each a few lines, read best in one place"
)]
fn mads_cancellations_and_two_streams_race_the_isr_and_dpc() {
    let l = lab("verifier+iommu");
    let (host, node, m) = (l.host(), l.node, &l.m);
    let (mads, verified) = std::thread::scope(|s| {
        let mad_thread = s.spawn(move || {
            let p = host.process();
            let h = p.open(&node).unwrap();
            let mut rng = 0x9E37_79B9_7F4A_7C15u64;
            let (mut ok, mut cancelled) = (0u64, 0u64);
            let end = Instant::now() + RUN;
            let mut tid = 0u64;
            while Instant::now() < end {
                tid += 1;
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let recv = p
                    .ioctl_async(&h, ioctl::IOCTL_RHCA_RECV_MAD, &[], RecvMadOut::SIZE)
                    .unwrap();
                if rng.is_multiple_of(4) {
                    // A receive cancelled while MADs arrive: it completes exactly once.
                    recv.cancel().unwrap();
                    let r = recv.wait(Duration::from_secs(10)).expect("completed");
                    assert!(r.status == STATUS_SUCCESS || r.status == wdk_sim::STATUS_CANCELLED);
                    cancelled += 1;
                    continue;
                }
                let q = SendMadIn {
                    qp: 0,
                    dlid: mad::PERMISSIVE_LID,
                    mad: mad::directed_route_get(attr::NODE_INFO, 0, &[0], tid).unwrap(),
                    ..SendMadIn::default()
                };
                let mut b = [0u8; SendMadIn::SIZE];
                q.encode(&mut b).unwrap();
                let r = p
                    .ioctl(&h, ioctl::IOCTL_RHCA_SEND_MAD, &b, SendMadOut::SIZE)
                    .unwrap();
                assert_eq!(r.status, STATUS_SUCCESS);
                let r = recv.wait(Duration::from_secs(10)).expect("an answer");
                assert_eq!(r.status, STATUS_SUCCESS);
                ok += 1;
            }
            p.close(h).unwrap();
            (ok, cancelled)
        });
        let capture = s.spawn(move || {
            let p = host.process();
            let h = p.open(&node).unwrap();
            let c = Client::start(
                &p,
                &h,
                m,
                0,
                Direction::Capture,
                65536,
                16,
                Strategy::Auto,
                0,
            )
            .unwrap();
            let end = Instant::now() + RUN;
            let mut verified = 0;
            while Instant::now() < end {
                let o = c.run(32);
                assert_eq!(o.bad, 0);
                verified += o.verified;
            }
            let _ = c.stop();
            p.close(h).unwrap();
            verified
        });
        let playback = s.spawn(move || {
            let p = host.process();
            let h = p.open(&node).unwrap();
            let c = Client::start(
                &p,
                &h,
                m,
                1,
                Direction::Playback,
                65536,
                16,
                Strategy::PerSegment,
                START_FLAG_VERIFY,
            )
            .unwrap();
            let end = Instant::now() + RUN;
            let mut played = 0;
            while Instant::now() < end {
                let o = c.run(32);
                assert_eq!(o.bad, 0, "the device verified every played segment");
                played += o.verified;
            }
            let _ = c.stop();
            p.close(h).unwrap();
            played
        });
        let mads = mad_thread.join().unwrap();
        (mads, capture.join().unwrap() + playback.join().unwrap())
    });
    assert!(mads.0 > 50 && mads.1 > 10, "MADs {mads:?}");
    assert!(verified > 200, "segments {verified}");
    l.finish();
}
