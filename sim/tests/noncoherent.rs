//! The `noncoherent` profile: CPU writes are invisible to the device until the caches are
//! cleaned, device writes invisible to the CPU until they are invalidated.

mod common;

use common::*;
use wdk_sim::*;
// wdk-sys's `#define`s are `u32`; these tests pass them where the kernel takes `BOOLEAN`/`KIRQL`.
use wdk_sim::typed::TRUE;

const fn fill(p: usize, len: usize, byte: u8) {
    // SAFETY: `p .. p + len` is a live buffer the test owns.
    unsafe { std::ptr::write_bytes(p as *mut u8, byte, len) };
}

fn read(p: usize, len: usize) -> Vec<u8> {
    // SAFETY: `p .. p + len` is a live buffer the test owns.
    unsafe { std::slice::from_raw_parts(p as *const u8, len) }.to_vec()
}

fn flush_io_buffers(mdl: PMDL, read_operation: bool) {
    // SAFETY: a live MDL.
    unsafe { wdk_sim::inline::KeFlushIoBuffers(mdl, u8::from(read_operation), TRUE) };
}

/// Memory→device with a version 1 mapping; returns what the device reads.
fn memory_to_device(flush_first: bool) -> Vec<u8> {
    let (m, att, bus) = machine(Profile::NONCOHERENT, 64);
    let pdo = Addr(att.pdo as usize);
    m.run(move || {
        let (a, _) = adapter(pdo.0 as PDEVICE_OBJECT, 3, 64, 1 << 20);
        let (p, mdl) = pool_buffer(256);
        fill(p, 256, 0x3C);
        if flush_first {
            flush_io_buffers(mdl, false);
        }
        let (_, list) = get_sg(a, mdl, p, 256, true);
        let mut seen = vec![0u8; 256];
        bus.dma_read(elements(list)[0].0, &mut seen).unwrap();
        put_sg(a, list, true);
        free_pool_buffer(p, mdl);
        put_adapter(a);
        seen
    })
    .unwrap()
}

#[test]
fn cpu_writes_reach_the_device_only_after_a_clean() {
    assert!(
        memory_to_device(true).iter().all(|&b| b == 0x3C),
        "KeFlushIoBuffers before the transfer"
    );
    assert!(
        memory_to_device(false).iter().all(|&b| b != 0x3C),
        "without it the device reads stale memory"
    );
}

#[test]
fn device_writes_reach_the_cpu_only_after_invalidation() {
    let (m, att, bus) = machine(Profile::NONCOHERENT, 64);
    let pdo = Addr(att.pdo as usize);
    m.run(move || {
        let (a, _) = adapter(pdo.0 as PDEVICE_OBJECT, 3, 64, 1 << 20);
        let (p, mdl) = pool_buffer(8192);
        fill(p, 8192, 0x11);
        let (_, list) = get_sg(a, mdl, p, 8192, false);
        for (la, len) in elements(list) {
            bus.dma_write(la, &vec![0xD4; len as usize]).unwrap();
        }
        assert!(
            read(p, 8192).iter().all(|&b| b == 0x11),
            "the CPU still sees its cached bytes"
        );
        put_sg(a, list, false);
        assert!(
            read(p, 8192).iter().all(|&b| b == 0xD4),
            "PutScatterGatherList invalidated the caches"
        );
        free_pool_buffer(p, mdl);
        put_adapter(a);
    })
    .unwrap();
}

#[test]
fn version_3_mapping_cleans_by_itself() {
    let (m, att, bus) = machine(Profile::NONCOHERENT, 64);
    let pdo = Addr(att.pdo as usize);
    m.run(move || {
        let (a, _) = adapter(pdo.0 as PDEVICE_OBJECT, 3, 64, 1 << 20);
        let (p, mdl) = pool_buffer(512);
        fill(p, 512, 0x5E);
        let mut ctx = Box::new([0u8; 128]);
        let init = ops(a).InitializeDmaTransferContext.unwrap();
        // SAFETY: 128 writable bytes.
        assert_eq!(unsafe { init(a, ctx.as_mut_ptr().cast()) }, STATUS_SUCCESS);
        let mut out: PSCATTER_GATHER_LIST = std::ptr::null_mut();
        let get = ops(a).GetScatterGatherListEx.unwrap();
        let st = at_dispatch(|| {
            // SAFETY: test code.
            unsafe {
                get(
                    a,
                    std::ptr::null_mut(),
                    ctx.as_mut_ptr().cast(),
                    mdl,
                    0,
                    512,
                    DMA_SYNCHRONOUS_CALLBACK,
                    None,
                    std::ptr::null_mut(),
                    1,
                    None,
                    std::ptr::null_mut(),
                    &raw mut out,
                )
            }
        });
        assert_eq!(st, STATUS_SUCCESS);
        let mut seen = vec![0u8; 512];
        bus.dma_read(elements(out as usize)[0].0, &mut seen)
            .unwrap();
        assert!(
            seen.iter().all(|&b| b == 0x5E),
            "GetScatterGatherListEx cleaned the caches"
        );
        let free = ops(a).FreeAdapterObject.unwrap();
        // SAFETY: test code.
        unsafe { free(a, _IO_ALLOCATION_ACTION::DeallocateObjectKeepRegisters) };
        put_sg(a, out as usize, true);
        free_pool_buffer(p, mdl);
        put_adapter(a);
    })
    .unwrap();
}

#[test]
fn common_buffers_are_uncached_and_coherent() {
    let (m, att, bus) = machine(Profile::NONCOHERENT, 64);
    let pdo = Addr(att.pdo as usize);
    m.run(move || {
        let (a, _) = adapter(pdo.0 as PDEVICE_OBJECT, 3, 64, 1 << 20);
        let (va, la) = common_buffer(a, 4096);
        fill(va, 64, 0x42);
        let mut seen = [0u8; 64];
        bus.dma_read(la, &mut seen).unwrap();
        assert_eq!(
            seen, [0x42; 64],
            "no flush needed for an uncached common buffer"
        );
        bus.dma_write(la + 64, &[7; 8]).unwrap();
        assert_eq!(read(va + 64, 8), vec![7; 8]);
        free_common(a, 4096, va, la);
        put_adapter(a);
    })
    .unwrap();
}

#[test]
fn flush_dma_buffer_syncs_a_persistent_direct_mapping() {
    let (m, att, bus) = machine(Profile::NONCOHERENT, 64);
    let pdo = Addr(att.pdo as usize);
    m.run(move || {
        let (a, _) = adapter(pdo.0 as PDEVICE_OBJECT, 3, 64, 1 << 20);
        let (p, mdl) = pool_buffer(8192);
        let (_, list) = get_sg(a, mdl, p, 8192, false);
        let els = elements(list);
        // The device fills everything; the driver invalidates only the segment it consumes.
        for &(la, len) in &els {
            bus.dma_write(la, &vec![0x99; len as usize]).unwrap();
        }
        let part = alloc_mdl(p + 4096, 4096);
        partial_mdl(mdl, part, p + 4096, 4096);
        let flush = ops(a).FlushDmaBuffer.unwrap();
        // SAFETY: test code.
        let st = at_dispatch(|| unsafe { flush(a, part, TRUE) });
        assert_eq!(st, STATUS_SUCCESS);
        assert!(
            read(p + 4096, 4096).iter().all(|&b| b == 0x99),
            "the flushed segment is visible"
        );
        assert!(
            read(p, 4096).iter().all(|&b| b != 0x99),
            "the other segment is still stale"
        );
        free_mdl(part);
        put_sg(a, list, false);
        free_pool_buffer(p, mdl);
        put_adapter(a);
    })
    .unwrap();
}

#[test]
fn flush_dma_buffer_with_a_freed_mdl_stops_the_machine() {
    let (m, att, _bus) = machine(Profile::NONCOHERENT, 64);
    let pdo = Addr(att.pdo as usize);
    let stop = m
        .run(move || {
            let (a, _) = adapter(pdo.0 as PDEVICE_OBJECT, 3, 64, 1 << 20);
            let (p, mdl) = pool_buffer(8192);
            let part = alloc_mdl(p, 4096);
            partial_mdl(mdl, part, p, 4096);
            free_mdl(part);
            let flush = ops(a).FlushDmaBuffer.unwrap();
            // SAFETY: test code; the freed MDL is the mistake under test.
            at_dispatch(|| unsafe { flush(a, part, TRUE) })
        })
        .expect_err("a freed MDL must stop the machine");
    assert_eq!(stop.code, 0xC4, "{stop}");
    assert_eq!(stop.params[0], 0x5103, "BAD_MDL: {stop}");
}
