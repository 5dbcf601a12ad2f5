//! The Device Fundamentals battery at CI size: every scenario under `verifier` + `iommu` with
//! I/O before, during and after each transition, and seeded IOCTL fuzzing (`rhca-lab scenario`
//! runs the same at default size).

use rhca_tests::scenario::{self, Outcome};
use wdk_sim::Profile;

const VI: Profile = Profile {
    verifier: true,
    iommu: true,
    ..Profile::COHERENT
};

fn check(o: &Outcome, cycles: u64) {
    assert!(o.ok(), "{o:#?}");
    assert_eq!(o.cycles, cycles, "{o:#?}");
    assert!(o.segments_verified > 0, "the stream ran: {o:#?}");
    assert!(o.mads_sent > 0, "MADs ran: {o:#?}");
}

#[test]
fn disable_enable_with_io() {
    check(&scenario::run("disable-enable", 3, VI, 11), 3);
}

#[test]
fn remove_and_readd_with_io() {
    check(&scenario::run("remove", 3, VI, 12), 3);
}

#[test]
fn surprise_remove_with_io() {
    check(&scenario::run("surprise-remove", 3, VI, 13), 3);
}

#[test]
fn stop_start_rebalance_with_io() {
    check(&scenario::run("stop-start", 3, VI, 14), 3);
}

#[test]
fn query_remove_then_cancel_leaves_io_running() {
    check(&scenario::run("query-remove-cancel", 3, VI, 21), 3);
}

#[test]
fn query_stop_then_cancel_leaves_io_running() {
    check(&scenario::run("query-stop-cancel", 3, VI, 22), 3);
}

#[test]
fn rebalance_with_new_resources_with_io() {
    // Four cycles: one message, a line interrupt, four messages, two messages; the BARs move
    // every time.
    check(&scenario::run("rebalance-new-resources", 4, VI, 23), 4);
}

#[test]
fn rebalance_with_a_failed_restart_with_io() {
    // Two cycles: the start failed above the driver after it started, and before it saw it.
    check(&scenario::run("rebalance-fail-restart", 2, VI, 24), 2);
}

#[test]
fn dif_remove_and_rescan_with_io() {
    check(&scenario::run("dif-remove", 3, VI, 25), 3);
}

#[test]
fn sleep_with_io_during() {
    check(&scenario::run("sleep", 3, VI, 15), 3);
}

#[test]
fn sleep_then_disable_enable_with_io_before_and_after() {
    check(&scenario::run("sleep-disable-enable", 3, VI, 17), 3);
}

#[test]
fn a_process_killed_with_io_pending_leaves_other_io_alone() {
    check(&scenario::run("io-process-termination", 3, VI, 18), 3);
}

#[test]
fn the_root_port_goes_away_with_io_in_flight() {
    let o = scenario::run("root-port-surprise-remove", 2, VI, 19);
    check(&o, 2);
    // The MADs posted on the dead link cannot succeed: they fail with a status, none is lost.
    assert!(o.mads_failed > 0, "{o:#?}");
}

#[test]
fn reboot_with_io() {
    check(&scenario::run("reboot", 3, VI, 16), 3);
}

#[test]
fn reinstall_with_io() {
    check(&scenario::run("reinstall", 3, VI, 17), 3);
}

#[test]
fn device_faults_with_io() {
    let o = scenario::run("faults", 5, VI, 20);
    check(&o, 5);
    assert!(o.faults_injected >= 4, "{o:#?}");
}

#[test]
fn random_operation_sequences() {
    for seed in 30..34 {
        let o = scenario::run("ops", 400, VI, seed);
        assert!(o.ok(), "seed {seed}: {o:#?}");
    }
}

#[test]
fn fuzzed_ioctls_change_nothing_and_leak_nothing() {
    let o = scenario::run("fuzz", 3000, VI, 18);
    assert!(o.ok(), "{o:#?}");
    assert_eq!(o.ioctls_fuzzed, 3000);
}

#[test]
fn the_summary_is_one_json_object_with_the_required_keys() {
    let o = scenario::run("sleep", 1, VI, 19);
    let j = scenario::json(&[o]);
    for key in [
        "\"cycles\":1",
        "\"faults_injected\":0",
        "\"ioctls_fuzzed\":0",
        "\"bugchecks\":0",
        "\"leaks\":0",
        "\"mads_lost\":0",
        "\"stream_bytes_corrupted\":0",
        "\"scenarios\":[{\"name\":\"sleep\"",
    ] {
        assert!(j.contains(key), "{key} in {j}");
    }
}
