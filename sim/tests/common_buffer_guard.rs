//! Driver Verifier's guard around common buffers: the page before a buffer and the bytes from
//! its length to the end of the page after it hold padding 0x0F; a write there by the driver or
//! by the device is bug check 0xE6 with parameter 1 = 0x0F (parameter 2 = 4 before, 5 after;
//! parameter 3 the buffer, 4 the first changed byte) when the buffer is freed or its adapter
//! released (windows-dma.md §5.1, §5.2). The rings of the driver live in common buffers: this
//! is the check that protects them.

mod common;

use common::*;
use wdk_sim::*;

/// A verifier machine with an adapter and one common buffer of `len` bytes.
fn setup(len: u32) -> (Machine, DeviceBus, Addr, usize, u64) {
    let (m, att, bus) = machine(Profile::VERIFIER, 64);
    let pdo = Addr(att.pdo as usize);
    let (a, va, la) = m
        .run(move || {
            let (a, _) = adapter(pdo.0 as PDEVICE_OBJECT, 3, 64, 65536);
            let (va, la) = common_buffer(a, len);
            (Addr(a as usize), va, la)
        })
        .expect("allocation");
    (m, bus, a, va, la)
}

fn free_and_put(m: &Machine, a: &Addr, len: u32, va: usize, la: u64) -> Result<(), BugCheck> {
    let a = Addr(a.0);
    m.run(move || {
        let a = a.0 as PDMA_ADAPTER;
        free_common(a, len, va, la);
        put_adapter(a);
    })
}

fn expect_padding(b: Result<(), BugCheck>, which: u64, va: usize, at: usize) {
    let b = b.expect_err("the changed padding must stop the machine");
    assert!(b.is_dma(0x0F), "expected E6/0x0F, got {b}");
    assert_eq!(b.params[1..], [which, va as u64, at as u64], "{b}");
}

#[test]
fn the_driver_writing_past_a_buffer_is_caught_at_free() {
    let (m, _bus, a, va, la) = setup(1000);
    m.cpu_write(va + 1000, &[0]).unwrap();
    expect_padding(free_and_put(&m, &a, 1000, va, la), 5, va, va + 1000);
}

#[test]
fn the_driver_writing_before_a_buffer_is_caught_at_free() {
    let (m, _bus, a, va, la) = setup(1000);
    m.cpu_write(va - 1, &[0]).unwrap();
    expect_padding(free_and_put(&m, &a, 1000, va, la), 4, va, va - 1);
}

#[test]
fn a_page_multiple_buffer_has_a_guard_page_after_it() {
    let (m, _bus, a, va, la) = setup(4096);
    m.cpu_write(va + 4096 + 100, &[0xFF; 4]).unwrap();
    expect_padding(free_and_put(&m, &a, 4096, va, la), 5, va, va + 4196);
}

#[test]
fn the_device_writing_past_a_buffer_is_caught_at_free() {
    let (m, bus, a, va, la) = setup(1000);
    bus.dma_write(la + 1000, &[0xAA; 8])
        .expect("the guard is mapped for the device");
    expect_padding(free_and_put(&m, &a, 1000, va, la), 5, va, va + 1000);
}

#[test]
fn an_overrun_in_a_buffer_still_allocated_is_caught_at_adapter_release() {
    let (m, _bus, a, va, _la) = setup(1000);
    m.cpu_write(va + 1500, &[1]).unwrap();
    let a = Addr(a.0);
    let b = m.run(move || put_adapter(a.0 as PDMA_ADAPTER));
    // The padding is checked before the outstanding buffer is reported (E6/0x07).
    expect_padding(b, 5, va, va + 1500);
}

#[test]
fn writes_inside_a_buffer_by_driver_and_device_are_not_reported() {
    let (m, bus, a, va, la) = setup(1000);
    m.cpu_write(va, &[0x11; 1000]).unwrap();
    bus.dma_write(la, &[0x22; 1000]).unwrap();
    free_and_put(&m, &a, 1000, va, la).expect("no padding changed");
}

#[test]
fn without_driver_verifier_there_is_no_guard() {
    // The check belongs to Driver Verifier's DMA option: the coherent profile allocates the
    // buffer alone, as Windows does without it.
    let (m, att, _bus) = machine(Profile::COHERENT, 64);
    let pdo = Addr(att.pdo as usize);
    m.run(move || {
        let (a, _) = adapter(pdo.0 as PDEVICE_OBJECT, 3, 64, 65536);
        let (va, la) = common_buffer(a, 1000);
        assert_eq!(va % 4096, 0, "the buffer starts its own allocation");
        free_common(a, 1000, va, la);
        put_adapter(a);
    })
    .unwrap();
}

#[test]
fn a_freed_guarded_buffer_is_gone_for_the_device() {
    // The whole allocation (guard pages included) leaves the device's view at free: without
    // remapping, a later device access is recorded as stray DMA.
    let (m, att, bus) = machine(Profile::VERIFIER, 64);
    let pdo = Addr(att.pdo as usize);
    let la = m
        .run(move || {
            let (a, _) = adapter(pdo.0 as PDEVICE_OBJECT, 3, 64, 65536);
            let (va, la) = common_buffer(a, 1000);
            free_common(a, 1000, va, la);
            put_adapter(a);
            la
        })
        .unwrap();
    assert!(m.stray_dma(att.slot).is_empty());
    for at in [la - 4096, la, la + 4096] {
        let _ = bus.dma_write(at, &[1]);
    }
    assert_eq!(
        m.stray_dma(att.slot).len(),
        3,
        "every page of the allocation is gone"
    );
}
