//! A copy of the echo driver that completes each write twice: the framework's verifier catches
//! the second completion of a request the driver no longer owns, and with no kernel debugger
//! attached the machine stops as Windows does, `KMODE_EXCEPTION_NOT_HANDLED` (0x1E) with
//! `STATUS_BREAKPOINT`.

mod broken;

use wdk_sim::wdf::host::{Host, HostError, Mode};
use wdk_sim::{Config, Machine, Profile};

#[test]
fn a_double_completion_stops_the_machine_at_the_second_completion() {
    broken::set(broken::Bug::DoubleCompletion);
    let machine = Machine::new(Config::with_profile(Profile::VERIFIER));
    let host = Host::load_service(&machine, "echodbl", broken::driver_entry, Mode::Threaded)
        .expect("load");
    let device = host.add_root_device("ROOT\\ECHODBL").expect("add");
    host.start(&device).expect("start");
    let p = host.process();
    let h = p.open(&device).expect("open");
    // A zero-length write never reaches the driver (the queue does not allow zero-length
    // requests, the default): the framework completes it, so the bug does not fire.
    assert_eq!(p.write(&h, &[]), Ok(0));
    assert!(machine.bugcheck().is_none());
    // The write is dispatched on a simulated CPU; the stop comes inside the driver's callback.
    let Err(HostError::BugCheck(stop)) = p.write(&h, b"twice") else {
        panic!("a second completion must stop the machine");
    };
    assert_eq!(stop.code, 0x1E, "{stop:?}");
    assert_eq!(stop.params[0], 0x8000_0003);
    assert_eq!(machine.bugcheck(), Some(stop));
}
