//! A copy of the echo driver that misuses request memory objects: a read's input memory is
//! refused with `STATUS_INVALID_DEVICE_REQUEST` (`WdfRequestRetrieveInputMemory`), and writing
//! into a write's buffer, which the framework marks read-only, is the verifier's break
//! (`FxMemoryObject::CopyFromPtr`): bug check 0x1E with `STATUS_BREAKPOINT`.

mod broken;

use std::sync::Mutex;

use wdk_sim::wdf::host::{Host, HostError, Mode};
use wdk_sim::{Config, Machine, Profile, STATUS_INVALID_DEVICE_REQUEST};

/// The two tests choose different bugs of the one broken driver: one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn boot(bug: broken::Bug, service: &str) -> (Machine, Host, wdk_sim::wdf::host::DevNode) {
    broken::set(bug);
    let machine = Machine::new(Config::with_profile(Profile::VERIFIER));
    let host =
        Host::load_service(&machine, service, broken::driver_entry, Mode::Threaded).expect("load");
    let device = host.add_root_device("ROOT\\ECHOMEM").expect("add");
    host.start(&device).expect("start");
    (machine, host, device)
}

#[test]
fn a_reads_input_memory_is_refused() {
    let _one = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let (_m, host, device) = boot(broken::Bug::InputMemoryOfARead, "echomem1");
    let p = host.process();
    let h = p.open(&device).expect("open");
    assert_eq!(
        p.read(&h, 16),
        Err(HostError::Status(STATUS_INVALID_DEVICE_REQUEST))
    );
    p.close(h).expect("close");
    host.remove(&device).expect("remove");
    host.unload().expect("unload");
}

#[test]
fn writing_into_a_write_requests_buffer_is_the_verifiers_break() {
    let _one = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let (_m, host, device) = boot(broken::Bug::WriteIntoWriteBuffer, "echomem2");
    let p = host.process();
    let h = p.open(&device).expect("open");
    let Err(HostError::BugCheck(stop)) = p.write(&h, b"data") else {
        panic!("a write into a read-only request buffer must stop the machine");
    };
    assert_eq!(stop.code, 0x1E, "{stop:?}");
    assert_eq!(stop.params[0], 0x8000_0003);
    assert_eq!(
        stop.params[3], 0x5309,
        "wdk-sim's number for the read-only memory check"
    );
}
