//! `IoGetDmaAdapter` versions and tables, IRQL rules of the non-DMA routines, spin locks, pool
//! and MDL routines.

mod common;

use common::*;
use wdk_sim::*;
// wdk-sys's `#define`s are `u32`; these tests pass them where the kernel takes `BOOLEAN`/`KIRQL`/`CSHORT`.
use wdk_sim::typed::{
    APC_LEVEL, DISPATCH_LEVEL, FALSE, MDL_PAGES_LOCKED, MDL_PARTIAL, MDL_SOURCE_IS_NONPAGED_POOL,
    MDL_WRITE_OPERATION, PASSIVE_LEVEL, TRUE,
};

#[test]
fn adapter_tables_follow_the_granted_version() {
    let (m, att, _) = machine(Profile::COHERENT, 64);
    let pdo = Addr(att.pdo as usize);
    m.run(move || {
        let offset = |members: usize| 8 + (members - 1) * 8;
        for (version, size) in [
            (0u32, offset(13)),
            (1, offset(13)),
            (2, offset(16)),
            (3, core::mem::size_of::<DMA_OPERATIONS>()),
        ] {
            let (a, _) = adapter(pdo.0 as PDEVICE_OBJECT, version, 64, 4096);
            assert!(!a.is_null());
            // SAFETY: a live adapter.
            let version_field = unsafe { (*a).Version };
            assert_eq!(version_field, 1, "DMA_ADAPTER.Version is always 1");
            let t = ops(a);
            assert_eq!(t.Size as usize, size, "v{version}");
            assert_eq!(
                t.CalculateScatterGatherList.is_some(),
                version >= 2,
                "v{version}"
            );
            assert_eq!(t.GetDmaAdapterInfo.is_some(), version >= 3, "v{version}");
            assert_eq!(
                t.CreateCommonBufferFromMdl.is_some(),
                version >= 3,
                "v{version}"
            );
            put_adapter(a);
        }
    })
    .unwrap();
}

fn raw_adapter(pdo: PDEVICE_OBJECT, d: &mut DEVICE_DESCRIPTION) -> PDMA_ADAPTER {
    let mut n = 0;
    // SAFETY: both pointers are valid for the call.
    unsafe { ntddk::IoGetDmaAdapter(pdo, d, &raw mut n) }
}

#[test]
fn description_validation_and_map_register_grant() {
    let cfg = Config {
        max_description_version: 2,
        map_register_limit: Some(8),
        ..Config::default()
    };
    let (m, att, _) = machine_with(cfg, 64);
    let pdo = Addr(att.pdo as usize);
    m.run(move || {
        let pdo = pdo.0 as PDEVICE_OBJECT;
        assert!(
            adapter(pdo, 3, 64, 4096).0.is_null(),
            "an older system refuses version 3"
        );
        let (a, n) = adapter(pdo, 2, 64, 1 << 20);
        assert!(!a.is_null());
        assert_eq!(n, 8, "the grant is capped below BYTES_TO_PAGES(1 MiB) + 1");
        put_adapter(a);
        let mut d = DEVICE_DESCRIPTION {
            Version: 2,
            Master: TRUE,
            Reserved1: TRUE,
            ..DEVICE_DESCRIPTION::default()
        };
        assert!(
            raw_adapter(pdo, &mut d).is_null(),
            "Reserved1 must be FALSE"
        );
        d.Reserved1 = FALSE;
        d.Master = FALSE;
        assert!(
            raw_adapter(pdo, &mut d).is_null(),
            "system DMA is not modelled"
        );
    })
    .unwrap();
    let (m, att, _) = machine(Profile::COHERENT, 64);
    let pdo = Addr(att.pdo as usize);
    m.run(move || {
        let pdo = pdo.0 as PDEVICE_OBJECT;
        let mut d = DEVICE_DESCRIPTION {
            Version: 3,
            Master: TRUE,
            ScatterGather: TRUE,
            DmaAddressWidth: 65,
            ..DEVICE_DESCRIPTION::default()
        };
        assert!(raw_adapter(pdo, &mut d).is_null(), "width above 64");
        d.DmaAddressWidth = 0;
        assert!(raw_adapter(pdo, &mut d).is_null(), "width 0");
        let (a, n) = adapter(pdo, 3, 48, 8192);
        assert_eq!(n, 3);
        let info_fn = ops(a).GetDmaAdapterInfo.unwrap();
        let mut info = DMA_ADAPTER_INFO {
            Version: DMA_ADAPTER_INFO_VERSION1,
            ..DMA_ADAPTER_INFO::default()
        };
        // SAFETY: `info` is valid for the call.
        assert_eq!(unsafe { info_fn(a, &raw mut info) }, STATUS_SUCCESS);
        // SAFETY: version 1 filled V1.
        assert_eq!(unsafe { info.__bindgen_anon_1.V1.DmaAddressWidth }, 48);
        info.Version = 2;
        // SAFETY: `info` is valid for the call.
        assert_eq!(unsafe { info_fn(a, &raw mut info) }, STATUS_NOT_SUPPORTED);
        put_adapter(a);
    })
    .unwrap();
}

#[test]
fn io_get_dma_adapter_only_at_passive() {
    let (m, att, _) = machine(Profile::COHERENT, 64);
    let pdo = Addr(att.pdo as usize);
    expect_bugcheck(&m, 0xC4, 0x2000E, move || {
        at_dispatch(|| adapter(pdo.0 as PDEVICE_OBJECT, 3, 64, 4096));
    });
}

#[test]
fn pool_irql_rules() {
    let m = Machine::with_profile(Profile::COHERENT);
    // Non-paged pool is fine at DISPATCH_LEVEL.
    m.run(|| {
        let p = at_dispatch(|| alloc(POOL_FLAG_NON_PAGED, 64, 1));
        assert!(!p.is_null());
        at_dispatch(|| free_tag(p, 1));
    })
    .unwrap();
    let b = expect_bugcheck(&m, 0x0A, 0, || {
        // Paged pool above APC_LEVEL.
        let _ = at_dispatch(|| alloc(POOL_FLAG_PAGED, 64, 1));
    });
    assert_eq!(b.params[1], u64::from(DISPATCH_LEVEL));
    let m = Machine::with_profile(Profile::COHERENT);
    expect_bugcheck(&m, 0x0A, 0, || {
        raise(5);
        // Non-paged pool above DISPATCH_LEVEL.
        let _ = alloc(POOL_FLAG_NON_PAGED, 64, 1);
    });
}

#[test]
fn pool_misuse_bug_checks() {
    let m = Machine::with_profile(Profile::COHERENT);
    expect_bugcheck(&m, 0xC2, 0x07, || {
        let p = alloc(POOL_FLAG_NON_PAGED, 64, 1);
        free(p);
        free(p);
    });
    let m = Machine::with_profile(Profile::COHERENT);
    expect_bugcheck(&m, 0xC2, 0x0A, || {
        let p = alloc(POOL_FLAG_NON_PAGED, 64, u32::from_le_bytes(*b"AAAA"));
        free_tag(p, u32::from_le_bytes(*b"BBBB"));
    });
    let m = Machine::with_profile(Profile::COHERENT);
    expect_bugcheck(&m, 0xC2, 0x99, || free(0x1234_5678 as PVOID));
    let m = Machine::with_profile(Profile::COHERENT);
    m.run(|| {
        // Invalid flag combinations and zero sizes fail without a bug check.
        assert!(alloc(POOL_FLAG_NON_PAGED | POOL_FLAG_PAGED, 64, 1).is_null());
        assert!(alloc(0, 64, 1).is_null());
        assert!(alloc(POOL_FLAG_NON_PAGED, 0, 1).is_null());
    })
    .unwrap();
}

#[test]
fn raise_and_lower_rules() {
    let m = Machine::with_profile(Profile::COHERENT);
    expect_bugcheck(&m, 0xC4, 0x30, || {
        raise(DISPATCH_LEVEL);
        raise(APC_LEVEL);
    });
    let m = Machine::with_profile(Profile::COHERENT);
    expect_bugcheck(&m, 0xC4, 0x31, || lower(DISPATCH_LEVEL));
    let m = Machine::with_profile(Profile::COHERENT);
    // Returning to "user mode" at DISPATCH_LEVEL.
    let b = m
        .run(|| {
            let _ = raise(DISPATCH_LEVEL);
        })
        .unwrap_err();
    assert_eq!(b.code, 0x4A);
}

#[test]
fn spin_locks_raise_to_dispatch_and_exclude() {
    let m = Machine::with_profile(Profile::COHERENT);
    m.run(|| {
        let mut lock: KSPIN_LOCK = 0;
        let old = acquire(&raw mut lock);
        assert_eq!((old, current_irql()), (PASSIVE_LEVEL, DISPATCH_LEVEL));
        assert_ne!(lock, 0);
        release(&raw mut lock, old);
        assert_eq!((lock, current_irql()), (0, PASSIVE_LEVEL));
    })
    .unwrap();
    let b = expect_bugcheck(&m, 0xC4, 0x5108, || {
        let mut lock: KSPIN_LOCK = 0;
        acquire(&raw mut lock);
        acquire(&raw mut lock);
    });
    assert!(b.rule.contains("recursive"));
    let m = Machine::with_profile(Profile::COHERENT);
    expect_bugcheck(&m, 0xC4, 0x5108, || {
        let mut lock: KSPIN_LOCK = 0;
        let old = raise(DISPATCH_LEVEL);
        release(&raw mut lock, old);
    });
}

#[test]
fn spin_lock_excludes_other_cpus() {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let m = Machine::with_profile(Profile::COHERENT);
    let lock = Box::into_raw(Box::new(0u64)) as usize;
    let cpus: Vec<_> = (0..4)
        .map(|_| {
            let m = m.clone();
            std::thread::spawn(move || {
                m.run(move || {
                    for _ in 0..2000 {
                        let old = acquire(lock as PKSPIN_LOCK);
                        // A non-atomic read-modify-write made atomic by the lock.
                        let v = COUNTER.load(Ordering::Relaxed);
                        std::hint::spin_loop();
                        COUNTER.store(v + 1, Ordering::Relaxed);
                        release(lock as PKSPIN_LOCK, old);
                    }
                })
                .unwrap();
            })
        })
        .collect();
    for c in cpus {
        c.join().unwrap();
    }
    assert_eq!(COUNTER.load(Ordering::Relaxed), 8000);
}

#[test]
fn mdls_describe_scattered_pages() {
    let m = Machine::with_profile(Profile::COHERENT);
    m.run(|| {
        let (p, mdl) = pool_buffer(3 * 4096 + 100);
        let h = mdl_header(mdl);
        assert_eq!(h.StartVa as usize + h.ByteOffset as usize, p);
        assert_eq!(h.ByteCount, 3 * 4096 + 100);
        assert!(i32::from(h.MdlFlags) & i32::from(MDL_SOURCE_IS_NONPAGED_POOL) != 0);
        // SAFETY: a non-paged-pool MDL.
        let system = unsafe {
            wdk_sim::inline::MmGetSystemAddressForMdlSafe(
                mdl,
                _MM_PAGE_PRIORITY::NormalPagePriority.cast_unsigned(),
            )
        };
        assert_eq!(system as usize, p);
        let pa0 = physical(p);
        assert_eq!(pa0 >> 12, first_pfn(mdl));
        assert_ne!(
            pa0 & !0xFFF,
            (p & !0xFFF) as u64,
            "physical addresses are not host pointers"
        );
        // A partial MDL of the second page.
        let part = alloc_mdl(p + 4096, 4096);
        partial_mdl(mdl, part, p + 4096, 4096);
        assert!(i32::from(mdl_header(part).MdlFlags) & i32::from(MDL_PARTIAL) != 0);
        free_mdl(part);
        free_pool_buffer(p, mdl);
    })
    .unwrap();
    assert_eq!(m.live_mdls(), 0);
}

#[test]
fn user_buffers_are_probed_locked_and_unlocked() {
    let m = Machine::with_profile(Profile::COHERENT);
    let user = m.alloc_user(8192);
    m.run(move || {
        let mdl = alloc_mdl(user, 8192);
        probe_and_lock(mdl, _LOCK_OPERATION::IoWriteAccess);
        let want = i32::from(MDL_PAGES_LOCKED | MDL_WRITE_OPERATION);
        assert_eq!(i32::from(mdl_header(mdl).MdlFlags) & want, want);
        unlock(mdl);
        free_mdl(mdl);
    })
    .unwrap();
    let b = expect_bugcheck(&m, 0xC4, 0x5102, move || {
        let mdl = alloc_mdl(user, 100);
        probe_and_lock(mdl, _LOCK_OPERATION::IoReadAccess);
        free_mdl(mdl);
    });
    assert!(b.rule.contains("still locked"));
}

#[test]
fn direct_calls_outside_a_cpu_panic_with_the_bug_check() {
    let m = Machine::with_profile(Profile::COHERENT);
    let _cpu = m.enter();
    let caught = std::panic::catch_unwind(|| {
        let p = alloc(POOL_FLAG_NON_PAGED, 16, 1);
        free(p);
        free(p);
    })
    .unwrap_err();
    let b = bugcheck::from_panic(caught.as_ref()).expect("the payload is a BugCheck");
    assert_eq!((b.code, b.params[0]), (0xC2, 0x07));
    assert!(b.to_string().starts_with("*** STOP: 0x000000C2"), "{b}");
}

#[test]
fn registers_reach_the_device_and_read_all_ones_after_removal() {
    let (m, att, _) = machine(Profile::COHERENT, 64);
    let bar = att.bar_phys[0];
    let va = m
        .run(move || {
            let va = map_io(bar, 4096);
            assert_ne!(va, 0);
            write_reg(va, 3, 0xDEAD_BEEF);
            assert_eq!(read_reg(va, 3), 0xDEAD_BEEF);
            va
        })
        .unwrap();
    m.surprise_remove(att.slot);
    m.run(move || {
        assert_eq!(read_reg(va, 3), u32::MAX, "a removed device reads all-ones");
        write_reg(va, 3, 1);
        unmap_io(va, 4096);
    })
    .unwrap();
}

#[test]
fn a_register_mapping_kept_across_a_rebalance_no_longer_reaches_the_device() {
    let (m, att, _) = machine(Profile::COHERENT, 64);
    let bar = att.bar_phys[0];
    let stale = m.run(move || map_io(bar, 4096)).unwrap();
    let moved = m.move_bars(att.slot);
    assert_ne!(moved.bar_phys[0], bar, "the BAR has a new address");
    assert_eq!(moved.bar_len, att.bar_len);
    // A driver that maps the new resources reaches the device.
    let fresh = moved.bar_phys[0];
    m.run(move || {
        let va = map_io(fresh, 4096);
        write_reg(va, 3, 0x1234_5678);
        assert_eq!(read_reg(va, 3), 0x1234_5678);
        unmap_io(va, 4096);
    })
    .unwrap();
    let leaks = m.leaks().unwrap();
    assert!(
        leaks.iter().any(|l| l.contains("register mappings")),
        "the stale mapping is a leak: {leaks:?}"
    );
    // One that kept the old mapping across the stop bug-checks on its first access.
    let b = m.run(move || read_reg(stale, 3)).unwrap_err();
    assert_eq!(
        b.params[0],
        wdk_sim::bugcheck::sim_rule::BAD_REGISTER_ACCESS
    );
    assert!(b.to_string().contains("rebalance"), "{b}");
}
