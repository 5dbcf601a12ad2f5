//! A copy of the echo driver that leaks the pool block of every write: under the `verifier`
//! profile its unload stops the machine as Driver Verifier's pool tracking does, with
//! `DRIVER_VERIFIER_DETECTED_VIOLATION` (0xC4), parameter 1 = 0x62, parameter 4 = the number of
//! allocations not freed.

mod broken;

use wdk_sim::wdf::host::{Host, HostError, Mode};
use wdk_sim::{Config, Machine, Profile};

#[test]
fn a_pool_leak_at_unload_is_bug_check_0xc4_0x62() {
    broken::set(broken::Bug::PoolLeak);
    let machine = Machine::new(Config::with_profile(Profile::VERIFIER));
    let host = Host::load_service(&machine, "echoleak", broken::driver_entry, Mode::Threaded)
        .expect("load");
    let device = host.add_root_device("ROOT\\ECHOLEAK").expect("add");
    host.start(&device).expect("start");
    let p = host.process();
    let h = p.open(&device).expect("open");
    for n in [100usize, 2000, 5] {
        assert_eq!(p.write(&h, &vec![7u8; n]).expect("write"), n);
    }
    p.close(h).expect("close");
    host.remove(&device).expect("remove");
    let Err(HostError::BugCheck(b)) = host.unload() else {
        panic!("the unload of a leaking driver must stop the machine");
    };
    assert_eq!(b.code, 0xC4);
    assert_eq!(b.params[0], 0x62);
    assert_eq!(b.params[3], 3, "three writes, three blocks never freed");
}

/// Boots the leaking driver with `config`, leaks one block, removes the device and unloads.
fn leak_once(config: Config, service: &str) -> (Machine, Result<(), HostError>) {
    broken::set(broken::Bug::PoolLeak);
    let machine = Machine::new(config);
    let host =
        Host::load_service(&machine, service, broken::driver_entry, Mode::Threaded).expect("load");
    let device = host.add_root_device("ROOT\\ECHOLEAK").expect("add");
    host.start(&device).expect("start");
    let p = host.process();
    let h = p.open(&device).expect("open");
    p.write(&h, b"kept forever").expect("write");
    p.close(h).expect("close");
    host.remove(&device).expect("remove");
    (machine, host.unload())
}

#[test]
fn pool_tracking_is_the_harnesss_choice_and_on_by_default_under_verifier() {
    // Asked for without the rest of Verifier.
    let (_, r) = leak_once(
        Config {
            pool_tracking: Some(true),
            ..Config::with_profile(Profile::COHERENT)
        },
        "leak-on",
    );
    let Err(HostError::BugCheck(b)) = r else {
        panic!("pool tracking was asked for");
    };
    assert_eq!((b.code, b.params[0], b.params[3]), (0xC4, 0x62, 1));
    // Turned off under the verifier profile: the unload succeeds, the leak is still reported.
    let (m, r) = leak_once(
        Config {
            pool_tracking: Some(false),
            ..Config::with_profile(Profile::VERIFIER)
        },
        "leak-off",
    );
    r.expect("no pool tracking: Windows checks nothing at unload");
    let leaks = m.leaks().expect("report");
    assert!(leaks.iter().any(|l| l.contains("'Leak'")), "{leaks:?}");
    // Off by default without Verifier.
    let (_, r) = leak_once(Config::with_profile(Profile::COHERENT), "leak-default");
    r.expect("no Verifier, no check");
}
