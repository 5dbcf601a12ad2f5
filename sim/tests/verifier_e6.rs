//! Every E6 (`DRIVER_VERIFIER_DMA_VIOLATION`) parameter-1 code the simulator raises today has a
//! test that commits the misuse and asserts the exact bug check. Codes of the packet-DMA
//! routines (AllocateAdapterChannel/MapTransfer/FlushAdapterBuffers family) are listed in
//! docs/sim-fidelity.md as not yet modelled.

mod common;

use common::*;
use wdk_sim::ntddk;
use wdk_sim::*;
// wdk-sys's `#define`s are `u32`; these tests pass them where the kernel takes `BOOLEAN`/`KIRQL`/`CSHORT`.
use wdk_sim::typed::{DISPATCH_LEVEL, FALSE, MDL_PAGES_LOCKED, PASSIVE_LEVEL};

#[test]
fn e6_19_null_adapter() {
    let (m, att, _) = machine(Profile::VERIFIER, 64);
    let pdo = Addr(att.pdo as usize);
    expect_dma_bugcheck(&m, 0x19, move || {
        let (a, _) = adapter(pdo.0 as PDEVICE_OBJECT, 3, 64, 4096);
        // A driver that lost its adapter pointer calls through the table with NULL.
        // SAFETY: deliberately passing NULL to provoke the check.
        unsafe { ops(a).GetDmaAlignment.unwrap()(std::ptr::null_mut()) };
    });
}

#[test]
fn e6_18_adapter_used_after_put() {
    let (m, att, _) = machine(Profile::COHERENT, 64);
    let pdo = Addr(att.pdo as usize);
    let b = expect_dma_bugcheck(&m, 0x18, move || {
        let (a, _) = adapter(pdo.0 as PDEVICE_OBJECT, 3, 64, 4096);
        let t = ops(a);
        put_adapter(a);
        // SAFETY: deliberately using the released adapter.
        unsafe { t.GetDmaAlignment.unwrap()(a) };
    });
    assert!(b.to_string().contains("after PutDmaAdapter"), "{b}");
}

#[test]
fn e6_25_unknown_description_version_under_verifier() {
    let (m, att, _) = machine(Profile::VERIFIER, 64);
    let pdo = Addr(att.pdo as usize);
    expect_dma_bugcheck(&m, 0x25, move || {
        let _ = adapter(pdo.0 as PDEVICE_OBJECT, 4, 64, 4096);
    });
    // Without Driver Verifier the same call just fails.
    let (m, att, _) = machine(Profile::COHERENT, 64);
    let pdo = Addr(att.pdo as usize);
    let got = m
        .run(move || adapter(pdo.0 as PDEVICE_OBJECT, 4, 64, 4096).0.is_null())
        .unwrap();
    assert!(got);
}

#[test]
fn e6_03_common_buffer_freed_twice() {
    let (m, att, _) = machine(Profile::VERIFIER, 64);
    let pdo = Addr(att.pdo as usize);
    expect_dma_bugcheck(&m, 0x03, move || {
        let (a, _) = adapter(pdo.0 as PDEVICE_OBJECT, 3, 64, 65536);
        let (va, la) = common_buffer(a, 4096);
        free_common(a, 4096, va, la);
        free_common(a, 4096, va, la);
    });
}

#[test]
fn e6_07_adapter_put_with_common_buffer() {
    let (m, att, _) = machine(Profile::VERIFIER, 64);
    let pdo = Addr(att.pdo as usize);
    let b = expect_dma_bugcheck(&m, 0x07, move || {
        let (a, _) = adapter(pdo.0 as PDEVICE_OBJECT, 3, 64, 65536);
        let _ = common_buffer(a, 8192);
        put_adapter(a);
    });
    assert_eq!(b.params[2], 1, "one outstanding common buffer");
}

#[test]
fn e6_0a_adapter_put_with_scatter_gather_list() {
    let (m, att, _) = machine(Profile::VERIFIER, 64);
    let pdo = Addr(att.pdo as usize);
    expect_dma_bugcheck(&m, 0x0A, move || {
        let (a, _) = adapter(pdo.0 as PDEVICE_OBJECT, 3, 64, 65536);
        let (p, mdl) = pool_buffer(296);
        let (s, list) = get_sg(a, mdl, p, 296, false);
        assert_eq!((s, list != 0), (STATUS_SUCCESS, true));
        put_adapter(a);
    });
}

#[test]
fn e6_06_scatter_gather_list_put_twice() {
    let (m, att, _) = machine(Profile::VERIFIER, 64);
    let pdo = Addr(att.pdo as usize);
    let b = expect_dma_bugcheck(&m, 0x06, move || {
        let (a, _) = adapter(pdo.0 as PDEVICE_OBJECT, 3, 64, 65536);
        let (p, mdl) = pool_buffer(256);
        let (_, list) = get_sg(a, mdl, p, 256, true);
        put_sg(a, list, true);
        put_sg(a, list, true);
    });
    assert_eq!(
        (b.params[1], b.params[2]),
        (1, 2),
        "one list allocated, a second free attempted"
    );
}

#[test]
fn e6_06_put_inside_execution_routine_twice_halts_the_cpu() {
    // The bug check happens inside an extern "C" callback, where a panic could not unwind:
    // the simulated CPU halts instead and the test still receives the bug check.
    unsafe extern "C" fn put_twice(
        _d: PDEVICE_OBJECT,
        _i: PIRP,
        list: PSCATTER_GATHER_LIST,
        ctx: PVOID,
    ) {
        let a = ctx.cast::<DMA_ADAPTER>();
        let put = ops(a).PutScatterGatherList.unwrap();
        // SAFETY: test code; the adapter and list are live.
        unsafe { put(a, list, 0) };
        // SAFETY: the second Put is the misuse under test.
        unsafe { put(a, list, 0) };
    }
    let (m, att, _) = machine(Profile::VERIFIER, 64);
    let pdo = Addr(att.pdo as usize);
    expect_dma_bugcheck(&m, 0x06, move || {
        let (a, _) = adapter(pdo.0 as PDEVICE_OBJECT, 3, 64, 65536);
        let (p, mdl) = pool_buffer(64);
        at_dispatch(|| {
            // SAFETY: test code.
            unsafe {
                ops(a).GetScatterGatherList.unwrap()(
                    a,
                    std::ptr::null_mut(),
                    mdl,
                    p as PVOID,
                    64,
                    Some(put_twice),
                    a.cast(),
                    0,
                )
            }
        });
        unreachable!("the CPU halted inside the execution routine");
    });
}

#[test]
fn e6_0e_mdl_not_locked() {
    let (m, att, _) = machine(Profile::VERIFIER, 64);
    let pdo = Addr(att.pdo as usize);
    expect_dma_bugcheck(&m, 0x0E, move || {
        let (a, _) = adapter(pdo.0 as PDEVICE_OBJECT, 3, 64, 65536);
        // SAFETY: test code.
        let p = unsafe { ntddk::ExAllocatePool2(POOL_FLAG_NON_PAGED, 512, 1) };
        // An MDL that was allocated but never built or probed: its pages are not locked.
        // SAFETY: test code.
        let mdl = unsafe { ntddk::IoAllocateMdl(p, 512, FALSE, FALSE, std::ptr::null_mut()) };
        let _ = get_sg(a, mdl, p as usize, 512, true);
    });
}

#[test]
fn e6_0f_verifier_guards_catch_device_overruns() {
    // P2 = 1: the device wrote just before the buffer; P2 = 2: just after it.
    for (p2, offset) in [(1u64, -8i64), (2, 256)] {
        let (m, att, bus) = machine(Profile::VERIFIER, 64);
        let pdo = Addr(att.pdo as usize);
        let b = expect_dma_bugcheck(&m, 0x0F, move || {
            let (a, _) = adapter(pdo.0 as PDEVICE_OBJECT, 3, 64, 65536);
            let (p, mdl) = pool_buffer(256);
            let (_, list) = get_sg(a, mdl, p, 256, false);
            let (la, len) = elements(list)[0];
            assert_eq!(len, 256);
            bus.dma_write(la.wrapping_add_signed(offset), &[0xEE; 8])
                .unwrap();
            put_sg(a, list, false);
        });
        assert_eq!(b.params[1], p2, "{b}");
    }
}

#[test]
fn e6_0f_padding_before_and_after() {
    // P2 = 4: padding before the leading tag; P2 = 5: padding after the trailing tag.
    for (p2, offset) in [(4u64, -64i64), (5, 256 + 8 + 32)] {
        let (m, att, bus) = machine(Profile::VERIFIER, 64);
        let pdo = Addr(att.pdo as usize);
        let b = expect_dma_bugcheck(&m, 0x0F, move || {
            let (a, _) = adapter(pdo.0 as PDEVICE_OBJECT, 3, 64, 65536);
            let (p, mdl) = pool_buffer(256);
            let (_, list) = get_sg(a, mdl, p, 256, false);
            let (la, _) = elements(list)[0];
            bus.dma_write(la.wrapping_add_signed(offset), &[0xEE; 4])
                .unwrap();
            put_sg(a, list, false);
        });
        assert_eq!(b.params[1], p2, "{b}");
    }
}

#[test]
fn e6_0f_device_write_after_put_is_caught() {
    let (m, att, bus) = machine(Profile::VERIFIER, 64);
    let pdo = Addr(att.pdo as usize);
    let stale = m
        .run(move || {
            let (a, _) = adapter(pdo.0 as PDEVICE_OBJECT, 3, 64, 65536);
            let (p, mdl) = pool_buffer(128);
            let (_, list) = get_sg(a, mdl, p, 128, false);
            let la = elements(list)[0].0;
            put_sg(a, list, false);
            free_pool_buffer(p, mdl);
            (Addr(a as usize), la)
        })
        .unwrap();
    // The device keeps writing to an address it was given, after the driver released it.
    bus.dma_write(stale.1, &[1, 2, 3, 4]).unwrap();
    let a = stale.0;
    let b = m.run(move || put_adapter(a.0 as PDMA_ADAPTER)).unwrap_err();
    assert!(
        b.is_dma(0x0F) && b.params[1] == 3,
        "freed map register overwritten: {b}"
    );
}

#[test]
fn e6_11_too_many_adapter_references() {
    let (m, att, _) = machine(Profile::VERIFIER, 64);
    let pdo = Addr(att.pdo as usize);
    expect_dma_bugcheck(&m, 0x11, move || {
        for _ in 0..9 {
            let _ = adapter(pdo.0 as PDEVICE_OBJECT, 3, 64, 4096);
        }
    });
}

#[test]
fn e6_13_dispatch_routine_at_passive() {
    let (m, att, _) = machine(Profile::VERIFIER, 64);
    let pdo = Addr(att.pdo as usize);
    let b = expect_dma_bugcheck(&m, 0x13, move || {
        let (a, _) = adapter(pdo.0 as PDEVICE_OBJECT, 3, 64, 65536);
        let (p, mdl) = pool_buffer(64);
        let mut out = [0usize; 2];
        // GetScatterGatherList must be called at exactly DISPATCH_LEVEL.
        // SAFETY: test code.
        unsafe {
            ops(a).GetScatterGatherList.unwrap()(
                a,
                std::ptr::null_mut(),
                mdl,
                p as PVOID,
                64,
                Some(record_list),
                (&raw mut out).cast(),
                0,
            )
        };
    });
    assert_eq!(
        b.params[1..],
        [1, u64::from(DISPATCH_LEVEL), u64::from(PASSIVE_LEVEL)]
    );
}

#[test]
fn e6_13_passive_routine_at_dispatch() {
    let (m, att, _) = machine(Profile::VERIFIER, 64);
    let pdo = Addr(att.pdo as usize);
    let b = expect_dma_bugcheck(&m, 0x13, move || {
        let (a, _) = adapter(pdo.0 as PDEVICE_OBJECT, 3, 64, 65536);
        at_dispatch(|| common_buffer(a, 4096));
    });
    assert_eq!(
        b.params[1..],
        [2, u64::from(PASSIVE_LEVEL), u64::from(DISPATCH_LEVEL)]
    );
}

#[test]
fn e6_1f_current_va_outside_the_mdl_and_length_past_it() {
    for (p2, va_delta, len) in [(1u64, -16isize, 64u32), (2, 512, 64), (3, 0, 1024)] {
        let (m, att, _) = machine(Profile::VERIFIER, 64);
        let pdo = Addr(att.pdo as usize);
        let b = expect_dma_bugcheck(&m, 0x1F, move || {
            let (a, _) = adapter(pdo.0 as PDEVICE_OBJECT, 3, 64, 65536);
            let (p, mdl) = pool_buffer(512);
            let _ = get_sg(a, mdl, p.wrapping_add_signed(va_delta), len, true);
        });
        assert_eq!(b.params[1], p2, "{b}");
    }
}

#[test]
fn e6_21_zero_length_mapping() {
    let (m, att, _) = machine(Profile::VERIFIER, 64);
    let pdo = Addr(att.pdo as usize);
    expect_dma_bugcheck(&m, 0x21, move || {
        let (a, _) = adapter(pdo.0 as PDEVICE_OBJECT, 3, 64, 65536);
        let (p, mdl) = pool_buffer(64);
        let _ = get_sg(a, mdl, p, 0, true);
    });
}

#[test]
fn e6_22_buffer_not_mapped_in_system_va() {
    let (m, att, _) = machine(Profile::VERIFIER, 64);
    let pdo = Addr(att.pdo as usize);
    expect_dma_bugcheck(&m, 0x22, move || {
        let (a, _) = adapter(pdo.0 as PDEVICE_OBJECT, 3, 64, 65536);
        // An MDL for an address nothing maps, whose flags the driver set by hand.
        let bogus = 0x7000_0000_0000usize;
        // SAFETY: test code; IoAllocateMdl only records the address.
        let mdl = unsafe {
            ntddk::IoAllocateMdl(bogus as PVOID, 256, FALSE, FALSE, std::ptr::null_mut())
        };
        // SAFETY: test code mangling the MDL flags, as a buggy driver would.
        unsafe { (*mdl).MdlFlags |= MDL_PAGES_LOCKED };
        let _ = get_sg(a, mdl, bogus, 256, true);
    });
}

#[test]
fn e6_26_device_access_outside_live_mappings_under_iommu() {
    // A stale IOVA: the list was put, the device still uses the address.
    let (m, att, bus) = machine(Profile::IOMMU, 64);
    let pdo = Addr(att.pdo as usize);
    let la = m
        .run(move || {
            let (a, _) = adapter(pdo.0 as PDEVICE_OBJECT, 3, 64, 65536);
            let (p, mdl) = pool_buffer(256);
            let (_, list) = get_sg(a, mdl, p, 256, false);
            let la = elements(list)[0].0;
            put_sg(a, list, false);
            la
        })
        .unwrap();
    assert_eq!(bus.dma_write(la, &[0; 4]), Err(DmaFault::IommuFault(la)));
    let b = m.bugcheck().expect("the IOMMU fault stops the machine");
    assert!(b.is_dma(0x26), "{b}");
    assert_eq!(
        b.params[1], att.pdo as u64,
        "P2 is the faulting device object"
    );
    assert_eq!(b.params[3], 2, "P4: a write");
}

#[test]
fn e6_26_physical_address_is_useless_to_the_device_under_iommu() {
    let (m, att, bus) = machine(Profile::IOMMU, 64);
    let pdo = Addr(att.pdo as usize);
    let pa = m
        .run(move || {
            let (_a, _) = adapter(pdo.0 as PDEVICE_OBJECT, 3, 64, 65536);
            let (p, _mdl) = pool_buffer(256);
            // The WinOF mistake: handing the device MmGetPhysicalAddress results.
            // SAFETY: test code.
            let pa = unsafe { ntddk::MmGetPhysicalAddress(p as PVOID) };
            // SAFETY: every bit pattern of the union is a valid LONGLONG.
            unsafe { pa.QuadPart }.cast_unsigned()
        })
        .unwrap();
    let mut buf = [0u8; 16];
    assert!(matches!(
        bus.dma_read(pa, &mut buf),
        Err(DmaFault::IommuFault(_))
    ));
    assert!(m.bugcheck().unwrap().is_dma(0x26));
}

#[test]
fn e6_26_device_write_to_a_memory_to_device_mapping() {
    let (m, att, bus) = machine(Profile::IOMMU, 64);
    let pdo = Addr(att.pdo as usize);
    let la = m
        .run(move || {
            let (a, _) = adapter(pdo.0 as PDEVICE_OBJECT, 3, 64, 65536);
            let (p, mdl) = pool_buffer(256);
            let (_, list) = get_sg(a, mdl, p, 256, true);
            elements(list)[0].0
        })
        .unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(
        bus.dma_read(la, &mut buf),
        Ok(()),
        "reading a memory→device mapping is fine"
    );
    assert!(
        matches!(bus.dma_write(la, &buf), Err(DmaFault::IommuFault(_))),
        "writing it is a permission fault"
    );
    assert!(m.bugcheck().unwrap().is_dma(0x26));
}

#[test]
fn free_common_buffer_with_other_arguments_than_the_allocation() {
    // Windows documents no code: wdk-sim's 0xC4/FREE_COMMON_MISMATCH (docs/sim-fidelity.md §10).
    let (m, att, _) = machine(Profile::VERIFIER, 64);
    let pdo = Addr(att.pdo as usize);
    expect_bugcheck(
        &m,
        0xC4,
        wdk_sim::bugcheck::sim_rule::FREE_COMMON_MISMATCH,
        move || {
            let (a, _) = adapter(pdo.0 as PDEVICE_OBJECT, 3, 64, 65536);
            let (va, la) = common_buffer(a, 4096);
            free_common(a, 2048, va, la);
        },
    );
    // The control: the allocation's own arguments.
    let (m, att, _) = machine(Profile::VERIFIER, 64);
    let pdo = Addr(att.pdo as usize);
    m.run(move || {
        let (a, _) = adapter(pdo.0 as PDEVICE_OBJECT, 3, 64, 65536);
        let (va, la) = common_buffer(a, 4096);
        free_common(a, 4096, va, la);
        put_adapter(a);
    })
    .unwrap();
}
