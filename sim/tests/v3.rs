//! Version 3 routines: `GetScatterGatherListEx`/`BuildScatterGatherListEx` with transfer
//! contexts, `FreeAdapterObject`, `CancelAdapterChannel`, and `CreateCommonBufferFromMdl`.

mod common;

use common::*;
use wdk_sim::*;
// wdk-sys's `#define`s are `u32`; these tests pass them where the kernel takes `BOOLEAN`/`KIRQL`/`CSHORT`.
use wdk_sim::typed::TRUE;

#[expect(
    clippy::unnecessary_box_returns,
    reason = "the HAL knows a transfer context by its address: it must not move"
)]
fn init_context(a: PDMA_ADAPTER) -> Box<[u8; 128]> {
    let mut ctx = Box::new([0xFFu8; 128]);
    let init = ops(a).InitializeDmaTransferContext.unwrap();
    // SAFETY: 128 writable bytes (DMA_TRANSFER_CONTEXT_SIZE_V1).
    assert_eq!(unsafe { init(a, ctx.as_mut_ptr().cast()) }, STATUS_SUCCESS);
    assert!(ctx.iter().all(|&b| b == 0), "the context is initialised");
    ctx
}

/// `GetScatterGatherListEx` at `DISPATCH_LEVEL`; returns (status, list from the out pointer,
/// list seen by the routine if it ran before the call returned).
fn get_ex(
    a: PDMA_ADAPTER,
    ctx: &mut [u8; 128],
    mdl: PMDL,
    offset: u64,
    len: u32,
    flags: ULONG,
    with_routine: bool,
) -> (NTSTATUS, usize, usize) {
    let seen: &'static mut [usize; 2] = Box::leak(Box::new([0usize; 2]));
    let (st, out) = get_ex_into(a, ctx, mdl, offset, len, flags, with_routine, seen);
    (st, out, seen[0])
}

/// As [`get_ex`], with the routine's record in `seen` (which must outlive a queued request).
#[expect(
    clippy::too_many_arguments,
    reason = "mirrors the routine's parameters"
)]
fn get_ex_into(
    a: PDMA_ADAPTER,
    ctx: &mut [u8; 128],
    mdl: PMDL,
    offset: u64,
    len: u32,
    flags: ULONG,
    with_routine: bool,
    seen: *mut [usize; 2],
) -> (NTSTATUS, usize) {
    let mut out: PSCATTER_GATHER_LIST = std::ptr::null_mut();
    let get = ops(a).GetScatterGatherListEx.unwrap();
    let routine: PDRIVER_LIST_CONTROL = if with_routine {
        Some(record_list)
    } else {
        None
    };
    let st = at_dispatch(|| {
        // SAFETY: test code; every pointer is valid for the call.
        unsafe {
            get(
                a,
                std::ptr::null_mut(),
                ctx.as_mut_ptr().cast(),
                mdl,
                offset,
                len,
                flags,
                routine,
                seen.cast(),
                0,
                None,
                std::ptr::null_mut(),
                &raw mut out,
            )
        }
    });
    (st, out as usize)
}

#[test]
fn get_scatter_gather_list_ex_maps_an_offset_range() {
    let (m, att, bus) = machine(Profile::VERIFIER, 64);
    let pdo = Addr(att.pdo as usize);
    m.run(move || {
        let (a, _) = adapter(pdo.0 as PDEVICE_OBJECT, 3, 64, 1 << 20);
        let mut ctx = init_context(a);
        let (p, mdl) = pool_buffer(16384);
        // Asynchronous with a routine: the routine gets the list for bytes 4096..12288.
        let (st, _, list) = get_ex(a, &mut ctx, mdl, 4096, 8192, 0, true);
        assert_eq!(st, STATUS_SUCCESS);
        let (la, len) = elements(list)[0];
        assert_eq!(len, 8192);
        bus.dma_write(la, &[0x77; 8192]).unwrap();
        put_sg(a, list, false);
        // SAFETY: the buffer is live.
        let buf = unsafe { std::slice::from_raw_parts(p as *const u8, 16384) };
        assert!(
            buf[..4096].iter().all(|&b| b == 0),
            "bytes before the offset untouched"
        );
        assert!(buf[4096..12288].iter().all(|&b| b == 0x77));
        assert!(
            buf[12288..].iter().all(|&b| b == 0),
            "bytes after the range untouched"
        );
        // Synchronous without a routine: the list comes back through the out pointer and the
        // adapter object is held until FreeAdapterObject.
        let (st, out, _) = get_ex(a, &mut ctx, mdl, 0, 512, DMA_SYNCHRONOUS_CALLBACK, false);
        assert_eq!(st, STATUS_SUCCESS);
        assert_ne!(out, 0);
        let free = ops(a).FreeAdapterObject.unwrap();
        // SAFETY: test code.
        unsafe { free(a, _IO_ALLOCATION_ACTION::DeallocateObjectKeepRegisters) };
        put_sg(a, out, false);
        free_pool_buffer(p, mdl);
        put_adapter(a);
    })
    .unwrap();
    assert_eq!(m.leaks().unwrap(), Vec::<String>::new());
}

#[test]
fn ex_parameter_rules() {
    let (m, att, _) = machine(Profile::COHERENT, 64);
    let pdo = Addr(att.pdo as usize);
    m.run(move || {
        let (a, _) = adapter(pdo.0 as PDEVICE_OBJECT, 3, 64, 1 << 20);
        let mut ctx = init_context(a);
        let (p, mdl) = pool_buffer(4096);
        // No flag and no routine; flag without routine and without out pointer is covered by
        // the same rule. Unknown flags; offset past the MDL; length past the end.
        assert_eq!(
            get_ex(a, &mut ctx, mdl, 0, 64, 0, false).0,
            STATUS_INVALID_PARAMETER
        );
        assert_eq!(
            get_ex(a, &mut ctx, mdl, 0, 64, 0x10, true).0,
            STATUS_INVALID_PARAMETER
        );
        assert_eq!(
            get_ex(a, &mut ctx, mdl, 4096, 64, 0, true).0,
            STATUS_INVALID_PARAMETER
        );
        assert_eq!(
            get_ex(a, &mut ctx, mdl, 4000, 200, 0, true).0,
            STATUS_INVALID_PARAMETER
        );
        // A context that was never initialised.
        let mut fresh = [0u8; 128];
        assert_eq!(
            get_ex(a, &mut fresh, mdl, 0, 64, 0, true).0,
            STATUS_INVALID_PARAMETER
        );
        // A pre-cancelled context cancels the next request.
        let cancel = ops(a).CancelAdapterChannel.unwrap();
        // SAFETY: test code.
        let got = unsafe { cancel(a, std::ptr::null_mut(), ctx.as_mut_ptr().cast()) };
        assert_eq!(got, TRUE);
        assert_eq!(get_ex(a, &mut ctx, mdl, 0, 64, 0, true).0, STATUS_CANCELLED);
        free_pool_buffer(p, mdl);
        put_adapter(a);
    })
    .unwrap();
}

#[test]
fn synchronous_ex_fails_at_once_and_asynchronous_ex_can_be_cancelled() {
    let cfg = Config {
        map_register_limit: Some(1),
        ..Config::with_profile(Profile::COHERENT)
    };
    let (m, att, _) = machine_with(cfg, 64);
    let pdo = Addr(att.pdo as usize);
    m.run(move || {
        let (a, _) = adapter(pdo.0 as PDEVICE_OBJECT, 3, 64, 1 << 20);
        let mut ctx = init_context(a);
        let (p, mdl) = pool_buffer(4096);
        let (first_st, _, first) = get_ex(a, &mut ctx, mdl, 0, 64, 0, true);
        assert_eq!(first_st, STATUS_SUCCESS);
        let mut ctx2 = init_context(a);
        // The single register is taken: synchronous requests fail without waiting.
        assert_eq!(
            get_ex(a, &mut ctx2, mdl, 128, 64, DMA_SYNCHRONOUS_CALLBACK, true).0,
            STATUS_INSUFFICIENT_RESOURCES
        );
        // An asynchronous one waits; cancelling it means its routine never runs.
        let seen: &'static mut [usize; 2] = Box::leak(Box::new([0usize; 2]));
        let seen_ptr = std::ptr::from_mut(seen);
        let (st, _) = get_ex_into(a, &mut ctx2, mdl, 128, 64, 0, true, seen_ptr);
        assert_eq!(st, STATUS_SUCCESS);
        // SAFETY: the leaked record is live; nothing writes it concurrently.
        assert_eq!(unsafe { (*seen_ptr)[0] }, 0, "queued");
        let cancel = ops(a).CancelAdapterChannel.unwrap();
        // SAFETY: test code.
        let got = unsafe { cancel(a, std::ptr::null_mut(), ctx2.as_mut_ptr().cast()) };
        assert_eq!(got, TRUE);
        // SAFETY: test code: a second cancel finds nothing queued (the context is not busy,
        // so it pre-cancels the next request instead).
        let got = unsafe { cancel(a, std::ptr::null_mut(), ctx2.as_mut_ptr().cast()) };
        assert_eq!(got, TRUE);
        put_sg(a, first, false);
        // SAFETY: as above.
        let got = unsafe { (*seen_ptr)[0] };
        assert_eq!(
            got, 0,
            "the cancelled routine never ran when the register was freed"
        );
        free_pool_buffer(p, mdl);
        put_adapter(a);
    })
    .unwrap();
}

#[test]
fn e6_08_and_04_adapter_object_rules() {
    let (m, att, _) = machine(Profile::VERIFIER, 64);
    let pdo = Addr(att.pdo as usize);
    expect_dma_bugcheck(&m, 0x08, move || {
        let (a, _) = adapter(pdo.0 as PDEVICE_OBJECT, 3, 64, 1 << 20);
        let mut ctx = init_context(a);
        let (_, mdl) = pool_buffer(256);
        let (_, out, _) = get_ex(a, &mut ctx, mdl, 0, 256, DMA_SYNCHRONOUS_CALLBACK, false);
        put_sg(a, out, false);
        // FreeAdapterObject was never called.
        put_adapter(a);
    });
    let (m, att, _) = machine(Profile::VERIFIER, 64);
    let pdo = Addr(att.pdo as usize);
    expect_dma_bugcheck(&m, 0x04, move || {
        let (a, _) = adapter(pdo.0 as PDEVICE_OBJECT, 3, 64, 1 << 20);
        let free = ops(a).FreeAdapterObject.unwrap();
        // SAFETY: test code: nothing is held; KeepObject is a no-op, DeallocateObject is the misuse.
        unsafe { free(a, _IO_ALLOCATION_ACTION::KeepObject) };
        // SAFETY: as above.
        unsafe { free(a, _IO_ALLOCATION_ACTION::DeallocateObject) };
    });
}

#[test]
fn common_buffer_from_mdl_per_profile() {
    for (profile, width, expect_ok) in [
        (Profile::IOMMU, 64, true),
        (
            Profile {
                verifier: true,
                iommu: true,
                ..Profile::COHERENT
            },
            64,
            true,
        ),
        // Without remapping the user pages are physically scattered: refused.
        (Profile::COHERENT, 64, false),
        (Profile::BOUNCE, 32, false),
    ] {
        let (m, att, bus) = machine(profile, width);
        let pdo = Addr(att.pdo as usize);
        let user = m.alloc_user(4 * 4096);
        let result = m
            .run(move || {
                let (a, _) = adapter(pdo.0 as PDEVICE_OBJECT, 3, width, 1 << 20);
                let mdl = alloc_mdl(user, 4 * 4096);
                probe_and_lock(mdl, _LOCK_OPERATION::IoWriteAccess);
                let create = ops(a).CreateCommonBufferFromMdl.unwrap();
                let mut la = PHYSICAL_ADDRESS::default();
                // SAFETY: test code.
                let st = unsafe { create(a, mdl, std::ptr::null_mut(), 0, &raw mut la) };
                // SAFETY: every bit pattern of the union is a valid LONGLONG.
                let la = unsafe { la.QuadPart }.cast_unsigned();
                (st, la, Addr(a as usize), Addr(mdl as usize))
            })
            .unwrap();
        let (st, la, a, mdl) = result;
        if !expect_ok {
            assert_ne!(st, STATUS_SUCCESS, "{profile}");
            continue;
        }
        assert_eq!(st, STATUS_SUCCESS, "{profile}");
        // One logical range over four scattered pages, written by the device with no copy.
        bus.dma_write(la + 4090, &[9; 12]).unwrap();
        // SAFETY: the user buffer is live.
        let got = unsafe { std::slice::from_raw_parts((user + 4090) as *const u8, 12) };
        assert_eq!(got, [9; 12], "{profile}");
        m.run(move || {
            let a = a.0 as PDMA_ADAPTER;
            free_common(a, 4 * 4096, user, la);
            unlock(mdl.0 as PMDL);
            free_mdl(mdl.0 as PMDL);
            put_adapter(a);
        })
        .unwrap();
        assert_eq!(m.leaks().unwrap(), Vec::<String>::new(), "{profile}");
    }
}

#[test]
fn common_buffer_mdl_must_stay_locked() {
    let (m, att, _) = machine(Profile::IOMMU, 64);
    let pdo = Addr(att.pdo as usize);
    let user = m.alloc_user(4096);
    let b = expect_bugcheck(&m, 0xC4, 0x510B, move || {
        let (a, _) = adapter(pdo.0 as PDEVICE_OBJECT, 3, 64, 1 << 20);
        let mdl = alloc_mdl(user, 4096);
        probe_and_lock(mdl, _LOCK_OPERATION::IoWriteAccess);
        let create = ops(a).CreateCommonBufferFromMdl.unwrap();
        let mut la = PHYSICAL_ADDRESS::default();
        // SAFETY: test code.
        let got = unsafe { create(a, mdl, std::ptr::null_mut(), 0, &raw mut la) };
        assert_eq!(got, STATUS_SUCCESS);
        // Unlocking the pages while the device may still use them is the misuse.
        unlock(mdl);
    });
    assert!(b.rule.contains("back a live common buffer"));
}
