//! What goes wrong without the flush: the persistent strategy with its per-segment flushes
//! switched off (feature `test-hooks`) reads stale data under `bounce` and `verifier`, where the
//! device works on a copy of the buffer — and the same bug is invisible on a coherent machine
//! without remapping or double buffering, which is why the simulated platforms matter.
//!
//! Its own test binary: the hook is process-wide.

#![expect(
    clippy::many_single_char_names,
    reason = "tests name the lab, process, handle, client and outcome l, p, h, c, o"
)]

mod common;

use std::sync::atomic::Ordering;

use common::lab;
use rhca::hooks::SKIP_PERSISTENT_FLUSH;
use rhca_hw::ioctl::{START_FLAG_VERIFY, Strategy};
use rhca_hw::stream::Direction;
use rhca_tests::stream::{Client, Outcome};

fn run(profile: &str, dir: Direction) -> Outcome {
    let l = lab(profile);
    let p = l.host().process();
    let h = p.open(&l.node).unwrap();
    let flags = if dir == Direction::Playback {
        START_FLAG_VERIFY
    } else {
        0
    };
    let c = Client::start(
        &p,
        &h,
        &l.m,
        0,
        dir,
        64 * 1024,
        16,
        Strategy::PersistentSg,
        flags,
    )
    .expect("START");
    let o = c.run(64);
    let _ = c.stop();
    p.close(h).unwrap();
    l.finish();
    o
}

#[test]
fn without_the_flush_bounce_and_verifier_deliver_stale_data() {
    for profile in ["bounce", "verifier"] {
        for dir in [Direction::Capture, Direction::Playback] {
            SKIP_PERSISTENT_FLUSH.store(false, Ordering::SeqCst);
            let good = run(profile, dir);
            assert_eq!(good.bad, 0, "{profile} {dir:?} with flushes: {good:?}");
            SKIP_PERSISTENT_FLUSH.store(true, Ordering::SeqCst);
            let bad = run(profile, dir);
            SKIP_PERSISTENT_FLUSH.store(false, Ordering::SeqCst);
            assert!(
                bad.bad > 0,
                "{profile} {dir:?}: stale data must be caught without flushes: {bad:?}"
            );
        }
    }
    // On a coherent machine the device works on the buffer itself: the missing flush goes
    // unnoticed there.
    SKIP_PERSISTENT_FLUSH.store(true, Ordering::SeqCst);
    let o = run("coherent", Direction::Capture);
    SKIP_PERSISTENT_FLUSH.store(false, Ordering::SeqCst);
    assert_eq!(o.bad, 0, "{o:?}");
}
