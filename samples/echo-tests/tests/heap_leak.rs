//! A copy of the echo driver that leaks a Rust allocation per write. On Windows its heap is
//! wdk-alloc's pool (tag `rust`), so Driver Verifier's pool tracking stops the machine at
//! unload with 0xC4/0x62; the drop-in wdk-alloc counts the driver's blocks so that the
//! simulated machine does the same.

mod broken;

// The global allocator under test is the one the echo driver installs (wdk-alloc's
// `WdkAllocator`, here the drop-in), linked with the echo test support.
use kmdf_echo_tests as _;
use wdk_sim::wdf::host::{Host, HostError, Mode};
use wdk_sim::{Config, Machine, Profile};

#[test]
fn a_rust_heap_leak_at_unload_is_bug_check_0xc4_0x62() {
    broken::set(broken::Bug::HeapLeak);
    let machine = Machine::new(Config::with_profile(Profile::VERIFIER));
    let host = Host::load_service(&machine, "echoheap", broken::driver_entry, Mode::Threaded)
        .expect("load");
    let device = host.add_root_device("ROOT\\ECHOHEAP").expect("add");
    host.start(&device).expect("start");
    let before = machine.rust_heap_live();
    let p = host.process();
    let h = p.open(&device).expect("open");
    for n in [10usize, 20] {
        assert_eq!(p.write(&h, &vec![1u8; n]).expect("write"), n);
    }
    p.close(h).expect("close");
    let after = machine.rust_heap_live();
    assert_eq!(after.0 - before.0, 2, "two blocks still live");
    assert_eq!(after.1 - before.1, 30, "of 10 and 20 bytes");
    // As poolmon would show them: tag `rust`.
    let usage = machine.pool_usage();
    let rust = usage.iter().find(|(t, _)| t == "rust").expect("a rust row");
    assert!(rust.1.allocations >= 2 && rust.1.bytes >= 30, "{usage:?}");
    host.remove(&device).expect("remove");
    let Err(HostError::BugCheck(b)) = host.unload() else {
        panic!("the unload of a driver that leaks its heap must stop the machine");
    };
    assert_eq!((b.code, b.params[0]), (0xC4, 0x62));
    assert!(b.params[3] >= 2, "{b:?}");
}
