//! Each check is shown to fire: the driver is broken on purpose (feature `test-hooks`) and the
//! battery catches it. Its own test binary: the hooks are process-wide.

use std::sync::atomic::Ordering;

use rhca::hooks::{COMPLETE_STOP_TWICE, LEAK_ON_REMOVAL};
use rhca_tests::scenario;
use wdk_sim::Profile;

const VI: Profile = Profile {
    verifier: true,
    iommu: true,
    ..Profile::COHERENT
};

/// One test, so the process-wide hooks never overlap.
#[test]
fn each_deliberate_bug_is_caught() {
    a_mapping_left_behind_at_surprise_removal_is_caught();
    a_request_completed_twice_is_caught();
}

fn a_mapping_left_behind_at_surprise_removal_is_caught() {
    LEAK_ON_REMOVAL.store(true, Ordering::SeqCst);
    let o = scenario::run("surprise-remove", 1, VI, 21);
    LEAK_ON_REMOVAL.store(false, Ordering::SeqCst);
    assert!(!o.ok(), "the leak must be caught: {o:#?}");
    let all = format!("{:?} {:?} {:?}", o.bugchecks, o.leaks, o.errors);
    assert!(
        all.contains("DMA") || all.contains("leak") || all.contains("common buffer"),
        "{all}"
    );
    // The same scenario passes with the driver intact.
    assert!(scenario::run("surprise-remove", 1, VI, 21).ok());
}

fn a_request_completed_twice_is_caught() {
    COMPLETE_STOP_TWICE.store(true, Ordering::SeqCst);
    let o = scenario::run("sleep", 1, VI, 22);
    COMPLETE_STOP_TWICE.store(false, Ordering::SeqCst);
    assert!(!o.ok(), "the double completion must be caught: {o:#?}");
    let all = format!("{:?} {:?}", o.bugchecks, o.errors);
    assert!(
        all.contains("0xc4") || all.contains("twice") || all.contains("completed"),
        "{all}"
    );
}
