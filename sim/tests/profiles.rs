//! Every profile: data arrive intact when the DMA rules are followed, and the failures the
//! rules exist for are visible when they are not (stale data before Put under `bounce` and
//! `verifier`, CPU writes after mapping unseen by the device, stale IOVAs faulting).

mod common;

use common::*;
use wdk_sim::ntddk;
use wdk_sim::*;
// wdk-sys's `#define`s are `u32`; these tests pass them where the kernel takes `BOOLEAN`/`KIRQL`/`CSHORT`.
use wdk_sim::typed::{FALSE, TRUE};

const fn fill(p: usize, len: usize, byte: u8) {
    // SAFETY: `p .. p + len` is a live buffer the test owns.
    unsafe { std::ptr::write_bytes(p as *mut u8, byte, len) };
}

fn read(p: usize, len: usize) -> Vec<u8> {
    // SAFETY: `p .. p + len` is a live buffer the test owns.
    unsafe { std::slice::from_raw_parts(p as *const u8, len) }.to_vec()
}

/// Device→memory: the device writes every element; returns (bytes seen before Put, after Put).
fn device_to_memory(
    profile: Profile,
    width: u32,
    len: usize,
) -> (Vec<u8>, Vec<u8>, Vec<(u64, u32)>) {
    let (m, att, bus) = machine(profile, width);
    let pdo = Addr(att.pdo as usize);
    m.run(move || {
        let (a, _) = adapter(pdo.0 as PDEVICE_OBJECT, 3, width, 1 << 20);
        let (p, mdl) = pool_buffer(len);
        fill(p, len, 0x11);
        let (s, list) = get_sg(a, mdl, p, u32::try_from(len).unwrap(), false);
        assert_eq!(s, STATUS_SUCCESS);
        let els = elements(list);
        assert_eq!(els.iter().map(|e| e.1 as usize).sum::<usize>(), len);
        let mut off = 0usize;
        for &(la, l) in &els {
            let data: Vec<u8> = (0..l as usize)
                .map(|i| u8::try_from((off + i) % 256).unwrap())
                .collect();
            bus.dma_write(la, &data).unwrap();
            off += l as usize;
        }
        let before = read(p, len);
        put_sg(a, list, false);
        let after = read(p, len);
        free_pool_buffer(p, mdl);
        put_adapter(a);
        (before, after, els)
    })
    .unwrap()
}

fn expected(len: usize) -> Vec<u8> {
    (0..len).map(|i| u8::try_from(i % 256).unwrap()).collect()
}

#[test]
fn coherent_device_writes_land_in_place() {
    let (before, after, els) = device_to_memory(Profile::COHERENT, 64, 10_000);
    assert_eq!(after, expected(10_000));
    assert_eq!(
        before, after,
        "coherent and unbounced: the device writes the buffer itself"
    );
    assert!(
        els.len() > 1,
        "a multi-page pool buffer is physically scattered: {els:?}"
    );
}

#[test]
fn bounce_data_appear_only_at_put() {
    let (before, after, els) = device_to_memory(Profile::BOUNCE, 32, 6000);
    assert_eq!(after, expected(6000), "Put copies the bounce buffer back");
    assert!(
        before.iter().all(|&b| b == 0x11),
        "before Put the driver's buffer is stale"
    );
    assert!(
        els.iter().all(|&(la, l)| la + u64::from(l) <= 1 << 32),
        "a 32-bit device gets addresses below 4 GiB"
    );
}

#[test]
fn bounce_is_not_used_for_a_64_bit_device() {
    let (before, after, _) = device_to_memory(Profile::BOUNCE, 64, 6000);
    assert_eq!(before, after);
    assert_eq!(after, expected(6000));
}

#[test]
fn verifier_double_buffers_every_transfer() {
    let (before, after, els) = device_to_memory(Profile::VERIFIER, 64, 3000);
    assert_eq!(after, expected(3000));
    assert!(
        before.iter().all(|&b| b == 0x11),
        "before Put the driver's buffer is stale under verifier"
    );
    assert_eq!(els.len(), 1, "the verifier's double buffer is contiguous");
}

#[test]
fn iommu_maps_a_contiguous_iova_range() {
    let (before, after, els) = device_to_memory(Profile::IOMMU, 64, 9000);
    assert_eq!(before, after);
    assert_eq!(after, expected(9000));
    assert_eq!(els.len(), 1, "one IOVA range");
}

#[test]
fn verifier_plus_iommu() {
    let p = Profile {
        verifier: true,
        iommu: true,
        ..Profile::COHERENT
    };
    let (before, after, _) = device_to_memory(p, 64, 5000);
    assert_eq!(after, expected(5000));
    assert!(before.iter().all(|&b| b == 0x11));
}

/// Memory→device: the CPU writes after mapping; returns what the device reads.
fn memory_to_device(profile: Profile, width: u32) -> (Vec<u8>, Vec<u8>) {
    let (m, att, bus) = machine(profile, width);
    let pdo = Addr(att.pdo as usize);
    m.run(move || {
        let (a, _) = adapter(pdo.0 as PDEVICE_OBJECT, 3, width, 1 << 20);
        let (p, mdl) = pool_buffer(256);
        fill(p, 256, 0xA1);
        let (_, list) = get_sg(a, mdl, p, 256, true);
        let (la, _) = elements(list)[0];
        let mut seen_first = vec![0u8; 256];
        bus.dma_read(la, &mut seen_first).unwrap();
        // The driver changes the buffer after mapping it: a bug.
        fill(p, 256, 0xB2);
        let mut seen_late = vec![0u8; 256];
        bus.dma_read(la, &mut seen_late).unwrap();
        put_sg(a, list, true);
        free_pool_buffer(p, mdl);
        put_adapter(a);
        (seen_first, seen_late)
    })
    .unwrap()
}

#[test]
fn memory_to_device_data_are_captured_at_map_time() {
    for (profile, width) in [(Profile::VERIFIER, 64), (Profile::BOUNCE, 32)] {
        let (first, late) = memory_to_device(profile, width);
        assert!(
            first.iter().all(|&b| b == 0xA1),
            "{profile}: the device reads the mapped data"
        );
        assert!(
            late.iter().all(|&b| b == 0xA1),
            "{profile}: a CPU write after mapping is not seen"
        );
    }
    // Coherent and unbounced: the device reads memory itself (the write is seen; the rule is
    // still broken, and the stricter profiles catch it).
    let (_, late) = memory_to_device(Profile::COHERENT, 64);
    assert!(late.iter().all(|&b| b == 0xB2));
}

#[test]
fn flush_dma_buffer_syncs_a_live_mapping_without_ending_it() {
    let (m, att, bus) = machine(Profile::VERIFIER, 64);
    let pdo = Addr(att.pdo as usize);
    m.run(move || {
        let (a, _) = adapter(pdo.0 as PDEVICE_OBJECT, 3, 64, 1 << 20);
        let (p, mdl) = pool_buffer(8192);
        let (_, list) = get_sg(a, mdl, p, 8192, false);
        let (la, _) = elements(list)[0];
        // The device fills the second half.
        bus.dma_write(la + 4096, &[0x5A; 4096]).unwrap();
        // A partial MDL of that segment, flushed device→memory.
        // SAFETY: test code.
        let part = unsafe {
            ntddk::IoAllocateMdl(
                (p + 4096) as PVOID,
                4096,
                FALSE,
                FALSE,
                std::ptr::null_mut(),
            )
        };
        // SAFETY: test code; the range lies inside `mdl`.
        unsafe { ntddk::IoBuildPartialMdl(mdl, part, (p + 4096) as PVOID, 4096) };
        let flush = ops(a).FlushDmaBuffer.unwrap();
        // SAFETY: test code.
        let flushed = at_dispatch(|| unsafe { flush(a, part, TRUE) });
        assert_eq!(flushed, STATUS_SUCCESS);
        assert!(
            read(p + 4096, 4096).iter().all(|&b| b == 0x5A),
            "flushed bytes are visible"
        );
        assert!(
            read(p, 4096).iter().all(|&b| b == 0),
            "unflushed bytes are not copied"
        );
        // The mapping is still live: the device keeps using it.
        bus.dma_write(la, &[0x6B; 16]).unwrap();
        put_sg(a, list, false);
        assert_eq!(read(p, 16), vec![0x6B; 16]);
        // SAFETY: test code.
        unsafe { ntddk::IoFreeMdl(part) };
        free_pool_buffer(p, mdl);
        put_adapter(a);
    })
    .unwrap();
    assert_eq!(m.leaks().unwrap(), Vec::<String>::new());
}

#[test]
fn common_buffers_per_profile() {
    for profile in [
        Profile::COHERENT,
        Profile::IOMMU,
        Profile::BOUNCE,
        Profile::VERIFIER,
    ] {
        let (m, att, bus) = machine(profile, 32);
        let pdo = Addr(att.pdo as usize);
        let (va, la, pa) = m
            .run(move || {
                let (a, n) = adapter(pdo.0 as PDEVICE_OBJECT, 3, 32, 65536);
                assert_eq!(n, 17, "BYTES_TO_PAGES(64 KiB) + 1");
                let (va, la) = common_buffer(a, 3 * 4096);
                assert_ne!(va, 0);
                let pa = physical(va);
                (Addr(va), la, pa)
            })
            .unwrap();
        assert!(
            la + 3 * 4096 <= 1 << 32,
            "{profile}: reachable by a 32-bit device"
        );
        if profile.iommu {
            assert_ne!(la, pa, "{profile}: logical addresses are IOVAs");
        } else {
            assert_eq!(la, pa, "{profile}: identity");
        }
        // The device writes across the whole buffer through its logical address.
        bus.dma_write(la + 4090, &[7; 12]).unwrap();
        // SAFETY: the common buffer is live.
        let got = unsafe { std::slice::from_raw_parts((va.0 + 4090) as *const u8, 12) };
        assert_eq!(got, [7; 12], "{profile}");
        assert!(
            m.stray_dma(att.slot).is_empty(),
            "{profile}: the access was inside a mapping"
        );
    }
}

#[test]
fn device_dma_outside_mappings_is_reported_without_iommu() {
    let (m, att, bus) = machine(Profile::COHERENT, 64);
    let pdo = Addr(att.pdo as usize);
    let pa = m
        .run(move || {
            let (_a, _) = adapter(pdo.0 as PDEVICE_OBJECT, 3, 64, 65536);
            let (p, _mdl) = pool_buffer(64);
            physical(p)
        })
        .unwrap();
    bus.dma_write(pa, &[1; 8]).unwrap();
    assert_eq!(
        m.stray_dma(att.slot),
        vec![(pa, 8, true)],
        "hardware would do it; the simulator reports it"
    );
}

#[test]
fn map_register_starvation_queues_in_fifo_order() {
    let cfg = Config {
        map_register_limit: Some(1),
        ..Config::with_profile(Profile::VERIFIER)
    };
    let (m, att, _) = machine_with(cfg, 64);
    let pdo = Addr(att.pdo as usize);
    m.run(move || {
        let (a, n) = adapter(pdo.0 as PDEVICE_OBJECT, 3, 64, 65536);
        assert_eq!(n, 1, "the configured grant");
        let bufs: Vec<(usize, PMDL)> = (0..3).map(|_| pool_buffer_in_one_page()).collect();
        let mut outs = [[0usize; 2]; 3];
        let get = ops(a).GetScatterGatherList.unwrap();
        for (i, &(p, mdl)) in bufs.iter().enumerate() {
            // SAFETY: test code; `outs` outlives every callback (all run before it drops).
            let s = at_dispatch(|| unsafe {
                get(
                    a,
                    std::ptr::null_mut(),
                    mdl,
                    p as PVOID,
                    64,
                    Some(record_list),
                    (&raw mut outs[i]).cast(),
                    0,
                )
            });
            assert_eq!(s, STATUS_SUCCESS);
        }
        assert_ne!(outs[0][0], 0, "the first request runs at once");
        assert_eq!(
            (outs[1][0], outs[2][0]),
            (0, 0),
            "the others wait for the register"
        );
        put_sg(a, outs[0][0], false);
        assert_ne!(outs[1][0], 0, "the second runs when the first is put");
        assert_eq!(outs[2][0], 0, "FIFO: the third still waits");
        put_sg(a, outs[1][0], false);
        assert_ne!(outs[2][0], 0);
        put_sg(a, outs[2][0], false);
        // A transfer needing more registers than granted fails at once.
        let (p, mdl) = pool_buffer(3 * 4096);
        assert_eq!(
            get_sg(a, mdl, p, 3 * 4096, false).0,
            STATUS_INSUFFICIENT_RESOURCES
        );
        free_pool_buffer(p, mdl);
        for (p, mdl) in bufs {
            free_pool_buffer(p, mdl);
        }
        put_adapter(a);
    })
    .unwrap();
    let r = &m.dma_adapters()[0];
    assert_eq!(r.counters.requests_queued, 2);
    assert_eq!(r.counters.sg_lists_allocated, r.counters.sg_lists_freed);
    assert_eq!(m.leaks().unwrap(), Vec::<String>::new());
}

/// A 64-byte pool buffer that does not straddle a page (one map register).
fn pool_buffer_in_one_page() -> (usize, PMDL) {
    loop {
        let (p, mdl) = pool_buffer(64);
        if p % 4096 <= 4096 - 64 {
            return (p, mdl);
        }
        free_pool_buffer(p, mdl);
    }
}

#[test]
fn clean_driver_leaves_no_leaks_and_stale_iova_faults() {
    let (m, att, bus) = machine(Profile::IOMMU, 64);
    let pdo = Addr(att.pdo as usize);
    let la = m
        .run(move || {
            let (a, _) = adapter(pdo.0 as PDEVICE_OBJECT, 3, 64, 65536);
            let (va, la) = common_buffer(a, 4096);
            free_common(a, 4096, va, la);
            put_adapter(a);
            la
        })
        .unwrap();
    assert_eq!(m.leaks().unwrap(), Vec::<String>::new());
    assert_eq!(m.iommu_pages(), 0, "every IOVA unmapped");
    assert!(
        bus.dma_write(la, &[0; 4]).is_err(),
        "a freed common buffer's IOVA faults"
    );
    assert!(m.bugcheck().unwrap().is_dma(0x26));
}

#[test]
fn leaks_are_reported() {
    let (m, att, _) = machine(Profile::COHERENT, 64);
    let pdo = Addr(att.pdo as usize);
    m.run(move || {
        let (a, _) = adapter(pdo.0 as PDEVICE_OBJECT, 3, 64, 65536);
        let _ = common_buffer(a, 4096);
        let _ = pool_buffer(100);
    })
    .unwrap();
    let leaks = m.leaks().unwrap();
    assert_eq!(leaks.len(), 3, "{leaks:?}");
    assert!(leaks[0].contains("released=false common buffers=1"));
    assert!(leaks[1].contains("pool tag 'Test': 1 allocations, 100 bytes"));
    assert!(leaks[2].contains("1 MDLs"));
}
