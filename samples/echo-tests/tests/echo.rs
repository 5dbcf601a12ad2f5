//! kmdf-echo on the simulated machine, under the `verifier` profile: load, I/O from simulated
//! processes (write, read back, cancel, close, kill), removal and a clean unload.

use std::time::Duration;

use kmdf_echo::MAX_WRITE_LENGTH;
use kmdf_echo_tests::{EchoMachine, HARDWARE_ID, boot};
use wdk_sim::wdf::host::HostError;
use wdk_sim::{STATUS_BUFFER_OVERFLOW, STATUS_CANCELLED, STATUS_SUCCESS};

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i.to_le_bytes()[0]).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Removes the device and unloads the driver; under the `verifier` profile the unload checks
/// pool, MDLs and framework objects, so a leak fails here.
fn shut_down(m: EchoMachine) {
    m.host.remove(&m.device).expect("remove");
    m.host
        .unload()
        .expect("the driver unloads clean under Verifier");
    assert!(m.machine.bugcheck().is_none());
    let leaks = m.machine.leaks().expect("leak report");
    assert!(leaks.is_empty(), "leaks: {leaks:?}");
}

#[test]
fn the_driver_loads_on_a_root_device_checks_the_framework_and_unloads_clean() {
    let m = boot(1).expect("boot");
    assert_eq!(m.host.hardware_id(&m.device).as_deref(), Some(HARDWARE_ID));
    let prints: Vec<String> = m
        .machine
        .debug_prints()
        .into_iter()
        .map(|p| p.text)
        .collect();
    assert!(
        prints.iter().any(|p| p == "kmdf-echo: DriverEntry\n"),
        "{prints:?}"
    );
    assert!(
        prints.iter().any(|p| p
            .starts_with("kmdf-echo: Kernel Mode Driver Framework (verifier on) version 1.33.")),
        "{prints:?}"
    );
    // The framework's default pool tag comes from the service name.
    assert_eq!(m.host.driver_pool_tag().expect("tag"), Some(*b"echo"));
    let machine = m.machine.clone();
    shut_down(m);
    let prints: Vec<String> = machine.debug_prints().into_iter().map(|p| p.text).collect();
    assert_eq!(
        prints.last().map(String::as_str),
        Some("kmdf-echo: unload\n")
    );
}

#[test]
fn a_write_is_read_back_through_request_memory_objects() {
    let m = boot(2).expect("boot");
    let p = m.host.process();
    let h = p.open(&m.device).expect("open");
    // Nothing written yet: a read returns nothing.
    assert_eq!(p.read(&h, 64).expect("empty read"), Vec::<u8>::new());
    let data = pattern(3000, 7);
    assert_eq!(p.write(&h, &data).expect("write"), data.len());
    assert_eq!(p.read(&h, 8192).expect("read"), data);
    assert_eq!(p.read(&h, 10).expect("short read"), data[..10].to_vec());
    // A second write replaces the first (the queue's memory object is deleted and remade).
    let again = pattern(MAX_WRITE_LENGTH, 9);
    assert_eq!(p.write(&h, &again).expect("write"), again.len());
    assert_eq!(p.read(&h, MAX_WRITE_LENGTH).expect("read"), again);
    p.close(h).expect("close");
    shut_down(m);
}

#[test]
fn a_write_over_the_limit_is_refused_with_buffer_overflow() {
    let m = boot(3).expect("boot");
    let p = m.host.process();
    let h = p.open(&m.device).expect("open");
    let too_long = vec![1u8; MAX_WRITE_LENGTH + 1];
    assert_eq!(
        p.write(&h, &too_long),
        Err(HostError::Status(STATUS_BUFFER_OVERFLOW))
    );
    p.close(h).expect("close");
    shut_down(m);
}

#[test]
fn a_cancelled_read_completes_cancelled_or_whole_and_nothing_is_lost() {
    let m = boot(4).expect("boot");
    let p = m.host.process();
    let h = p.open(&m.device).expect("open");
    let data = pattern(512, 3);
    p.write(&h, &data).expect("write");
    let mut cancelled = 0;
    for _ in 0..20 {
        let read = p.read_async(&h, 512).expect("read");
        read.cancel().expect("cancel");
        let done = read
            .wait(Duration::from_secs(5))
            .expect("the read completes");
        // The timer and the cancellation race; either way the request completes once, with a
        // consistent result.
        match done.status {
            STATUS_CANCELLED => {
                assert_eq!(done.information, 0);
                cancelled += 1;
            }
            STATUS_SUCCESS => assert_eq!(done.output, data),
            s => panic!("unexpected status {s:#x}"),
        }
    }
    assert!(cancelled > 0, "a cancel issued at once beats a 10 ms timer");
    // The queue still works after the cancellations.
    assert_eq!(p.read(&h, 512).expect("read"), data);
    p.close(h).expect("close");
    shut_down(m);
}

#[test]
fn closing_a_handle_cancels_its_pending_request() {
    let m = boot(5).expect("boot");
    let p = m.host.process();
    let h = p.open(&m.device).expect("open");
    p.write(&h, &pattern(100, 1)).expect("write");
    let r = p.read_async(&h, 100).expect("read");
    p.close(h).expect("close");
    let done = r.wait(Duration::from_secs(5)).expect("the read completes");
    assert!(done.status == STATUS_CANCELLED || done.status == STATUS_SUCCESS);
    shut_down(m);
}

#[test]
fn a_process_killed_with_io_in_flight_loses_nothing_for_another() {
    let m = boot(6).expect("boot");
    let victim = m.host.process();
    let h = victim.open(&m.device).expect("open");
    let pending = victim.write_async(&h, &pattern(2048, 5)).expect("write");
    victim
        .kill()
        .expect("the process terminates (I/O rundown completes)");
    let done = pending
        .wait(Duration::from_secs(5))
        .expect("completed by rundown");
    assert!(done.status == STATUS_CANCELLED || done.status == STATUS_SUCCESS);
    let other = m.host.process();
    let h = other.open(&m.device).expect("open");
    let data = pattern(777, 11);
    assert_eq!(other.write(&h, &data).expect("write"), data.len());
    assert_eq!(other.read(&h, 777).expect("read"), data);
    other.close(h).expect("close");
    shut_down(m);
}

#[test]
fn the_device_stops_and_starts_again_with_its_data() {
    let m = boot(7).expect("boot");
    let p = m.host.process();
    let h = p.open(&m.device).expect("open");
    let data = pattern(64, 2);
    p.write(&h, &data).expect("write");
    m.host.power_down(&m.device).expect("D3");
    // In D3 the queue is stopped (self-managed I/O suspended it): a read waits.
    let pending = p.read_async(&h, 64).expect("read");
    assert!(
        pending.wait(Duration::from_millis(50)).is_none(),
        "no I/O while in D3"
    );
    m.host.power_up(&m.device).expect("D0");
    let done = pending
        .wait(Duration::from_secs(5))
        .expect("the read completes in D0");
    assert_eq!((done.status, done.output), (STATUS_SUCCESS, data.clone()));
    assert_eq!(p.read(&h, 64).expect("read"), data);
    let prints: Vec<String> = m
        .machine
        .debug_prints()
        .into_iter()
        .map(|p| p.text)
        .collect();
    let starts = prints
        .iter()
        .filter(|p| p.contains("self-managed I/O starts"))
        .count();
    let suspends = prints
        .iter()
        .filter(|p| p.contains("self-managed I/O suspends"))
        .count();
    assert_eq!(
        (starts, suspends),
        (2, 1),
        "init, suspend, restart: {prints:?}"
    );
    p.close(h).expect("close");
    shut_down(m);
}

#[test]
fn a_surprise_removal_with_a_read_in_flight_completes_it_and_unloads_clean() {
    let m = boot(8).expect("boot");
    let p = m.host.process();
    let h = p.open(&m.device).expect("open");
    p.write(&h, &pattern(300, 4)).expect("write");
    let pending = p.read_async(&h, 300).expect("read");
    m.host.surprise_remove(&m.device).expect("surprise removal");
    let done = pending
        .wait(Duration::from_secs(5))
        .expect("the read completes");
    assert!(done.status == STATUS_CANCELLED || done.status == STATUS_SUCCESS);
    p.close(h).expect("close");
    // The surprise removal removed the device as well; only the unload is left.
    m.host
        .unload()
        .expect("the driver unloads clean under Verifier");
    let leaks = m.machine.leaks().expect("leak report");
    assert!(leaks.is_empty(), "leaks: {leaks:?}");
}
