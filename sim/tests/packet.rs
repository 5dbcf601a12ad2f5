//! Packet-based DMA (`AllocateAdapterChannel`, `MapTransfer`, `FlushAdapterBuffers`,
//! `FreeMapRegisters`, `FreeAdapterChannel`): a transfer per profile, and each E6 code these
//! routines raise.

mod common;

use std::cell::Cell;
use std::rc::Rc;

use common::*;
use wdk_sim::*;
// wdk-sys's `#define`s are `u32`; these tests pass them where the kernel takes `BOOLEAN`/`KIRQL`.
use wdk_sim::typed::DISPATCH_LEVEL;

const KEEP_REGISTERS: IO_ALLOCATION_ACTION = _IO_ALLOCATION_ACTION::DeallocateObjectKeepRegisters;
const KEEP_OBJECT: IO_ALLOCATION_ACTION = _IO_ALLOCATION_ACTION::KeepObject;
const DEALLOCATE: IO_ALLOCATION_ACTION = _IO_ALLOCATION_ACTION::DeallocateObject;

/// Maps a whole buffer with as many `MapTransfer` runs as needed; returns the runs.
fn map_all(
    a: PDMA_ADAPTER,
    mdl: PMDL,
    base: usize,
    va: usize,
    len: u32,
    write: bool,
) -> Vec<(u64, u32)> {
    let mut runs = Vec::new();
    let mut done = 0u32;
    while done < len {
        let (la, n) = map_transfer(a, mdl, base, va + done as usize, len - done, write);
        assert!(n > 0);
        runs.push((la, n));
        done += n;
    }
    runs
}

fn transfer(profile: Profile, width: u32) -> Vec<u8> {
    let (machine, att, bus) = machine(profile, width);
    let pdo = Addr(att.pdo as usize);
    machine
        .run(move || {
            let (a, granted) = adapter(pdo.0 as PDEVICE_OBJECT, 3, width, 64 * 1024);
            let (p, mdl) = pool_buffer(20_000);
            let base_out = Rc::new(Cell::new(0usize));
            let b = base_out.clone();
            let a2 = Addr(a as usize);
            let bus2 = bus;
            let st = allocate_channel(a, granted, move |base| {
                let a = a2.0 as PDMA_ADAPTER;
                assert_eq!(current_irql(), DISPATCH_LEVEL);
                let runs = map_all(a, mdl, base, p, 20_000, false);
                let mut off = 0u32;
                for (la, len) in runs {
                    let data: Vec<u8> = (off..off + len)
                        .map(|i| u8::try_from(i % 251).unwrap())
                        .collect();
                    bus2.dma_write(la, &data).unwrap();
                    off += len;
                }
                b.set(base);
                KEEP_REGISTERS
            });
            assert_eq!(st, STATUS_SUCCESS);
            let base = base_out.get();
            at_dispatch(|| flush_adapter(a, mdl, base, p, 20_000, false));
            free_map_registers(a, base, granted);
            // SAFETY: the buffer is live.
            let got = unsafe { std::slice::from_raw_parts(p as *const u8, 20_000) }.to_vec();
            free_pool_buffer(p, mdl);
            put_adapter(a);
            got
        })
        .unwrap()
}

#[test]
fn packet_transfer_per_profile() {
    let want: Vec<u8> = (0..20_000u32)
        .map(|i| u8::try_from(i % 251).unwrap())
        .collect();
    for (profile, width) in [
        (Profile::COHERENT, 64),
        (Profile::IOMMU, 64),
        (Profile::BOUNCE, 32),
        (Profile::VERIFIER, 64),
    ] {
        assert_eq!(transfer(profile, width), want, "{profile}");
    }
}

fn packet_machine(profile: Profile) -> (Machine, Addr) {
    let (m, att, _) = machine(profile, 64);
    (m, Addr(att.pdo as usize))
}

#[test]
fn e6_15_more_registers_than_granted_under_verifier() {
    let (m, pdo) = packet_machine(Profile::VERIFIER);
    expect_dma_bugcheck(&m, 0x15, move || {
        let (a, n) = adapter(pdo.0 as PDEVICE_OBJECT, 3, 64, 8192);
        let _ = allocate_channel(a, n + 1, |_| KEEP_REGISTERS);
    });
    // Without Driver Verifier the allocation fails and the routine never runs.
    let (m, pdo) = packet_machine(Profile::COHERENT);
    m.run(move || {
        let (a, n) = adapter(pdo.0 as PDEVICE_OBJECT, 3, 64, 8192);
        assert_eq!(
            allocate_channel(a, n + 1, |_| panic!("must not run")),
            STATUS_INSUFFICIENT_RESOURCES
        );
        put_adapter(a);
    })
    .unwrap();
}

#[test]
fn e6_0b_second_channel_while_one_is_held() {
    let (m, pdo) = packet_machine(Profile::VERIFIER);
    expect_dma_bugcheck(&m, 0x0B, move || {
        let (a, _) = adapter(pdo.0 as PDEVICE_OBJECT, 3, 64, 65536);
        let _ = allocate_channel(a, 1, |_| KEEP_OBJECT);
        let _ = allocate_channel(a, 1, |_| KEEP_OBJECT);
    });
}

#[test]
fn e6_04_channel_freed_twice() {
    let (m, pdo) = packet_machine(Profile::VERIFIER);
    expect_dma_bugcheck(&m, 0x04, move || {
        let (a, _) = adapter(pdo.0 as PDEVICE_OBJECT, 3, 64, 65536);
        let _ = allocate_channel(a, 1, |_| KEEP_OBJECT);
        free_adapter_channel(a);
        free_adapter_channel(a);
    });
}

#[test]
fn e6_05_map_registers_freed_twice() {
    let (m, pdo) = packet_machine(Profile::VERIFIER);
    expect_dma_bugcheck(&m, 0x05, move || {
        let (a, _) = adapter(pdo.0 as PDEVICE_OBJECT, 3, 64, 65536);
        let base = Rc::new(Cell::new(0));
        let b = base.clone();
        let _ = allocate_channel(a, 2, move |x| {
            b.set(x);
            KEEP_REGISTERS
        });
        free_map_registers(a, base.get(), 2);
        free_map_registers(a, base.get(), 2);
    });
}

#[test]
fn e6_05_more_map_registers_freed_than_allocated() {
    // The same code as freeing them twice: more registers freed than are held.
    let (m, pdo) = packet_machine(Profile::VERIFIER);
    let b = expect_dma_bugcheck(&m, 0x05, move || {
        let (a, _) = adapter(pdo.0 as PDEVICE_OBJECT, 3, 64, 65536);
        let base = Rc::new(Cell::new(0));
        let b = base.clone();
        let _ = allocate_channel(a, 2, move |x| {
            b.set(x);
            KEEP_REGISTERS
        });
        free_map_registers(a, base.get(), 3);
    });
    assert_eq!(b.params[1], 1, "one register too many: {b}");
}

#[test]
fn e6_08_and_09_adapter_put_with_channel_or_registers() {
    let (m, pdo) = packet_machine(Profile::VERIFIER);
    expect_dma_bugcheck(&m, 0x08, move || {
        let (a, _) = adapter(pdo.0 as PDEVICE_OBJECT, 3, 64, 65536);
        let _ = allocate_channel(a, 1, |_| KEEP_OBJECT);
        put_adapter(a);
    });
    let (m, pdo) = packet_machine(Profile::VERIFIER);
    let b = expect_dma_bugcheck(&m, 0x09, move || {
        let (a, _) = adapter(pdo.0 as PDEVICE_OBJECT, 3, 64, 65536);
        let _ = allocate_channel(a, 3, |_| KEEP_REGISTERS);
        put_adapter(a);
    });
    assert_eq!(b.params[2], 3, "three registers outstanding");
}

/// Allocates a channel whose routine maps `len` bytes of a fresh pool buffer and then runs
/// `then(adapter, mdl, base, va)`.
fn in_routine(
    m: &Machine,
    pdo: Addr,
    registers: u32,
    len: usize,
    then: impl FnOnce(PDMA_ADAPTER, PMDL, usize, usize) + Send + 'static,
) -> BugCheck {
    m.run(move || {
        let (a, _) = adapter(pdo.0 as PDEVICE_OBJECT, 3, 64, 65536);
        let (p, mdl) = pool_buffer(len);
        let a2 = Addr(a as usize);
        let mut then = Some(then);
        let _ = allocate_channel(a, registers, move |base| {
            (then.take().unwrap())(a2.0 as PDMA_ADAPTER, mdl, base, p);
            KEEP_REGISTERS
        });
        unreachable!("the routine stops the machine");
    })
    .unwrap_err()
}

#[test]
fn e6_21_1f_zero_length_and_outside_the_mdl() {
    let (m, pdo) = packet_machine(Profile::VERIFIER);
    let b = in_routine(&m, pdo, 2, 512, |a, mdl, base, va| {
        let _ = map_transfer(a, mdl, base, va, 0, true);
    });
    assert!(b.is_dma(0x21), "{b}");
    let (m, pdo) = packet_machine(Profile::VERIFIER);
    let b = in_routine(&m, pdo, 2, 512, |a, mdl, base, va| {
        let _ = map_transfer(a, mdl, base, va + 256, 512, true);
    });
    // The scatter/gather routines' code for the same mistake: a length past the MDL's end.
    assert!(b.is_dma(0x1F) && b.params[1] == 3, "{b}");
    let (m, pdo) = packet_machine(Profile::VERIFIER);
    let b = in_routine(&m, pdo, 2, 512, |a, mdl, base, va| {
        let _ = map_transfer(a, mdl, base, va + 4096, 16, true);
    });
    assert!(b.is_dma(0x1F) && b.params[1] == 2, "after the MDL: {b}");
}

#[test]
fn e6_1d_mapping_an_already_mapped_range() {
    let (m, pdo) = packet_machine(Profile::VERIFIER);
    let b = in_routine(&m, pdo, 4, 1024, |a, mdl, base, va| {
        let _ = map_transfer(a, mdl, base, va, 512, true);
        let _ = map_transfer(a, mdl, base, va + 256, 256, true);
    });
    assert!(b.is_dma(0x1D), "{b}");
}

#[test]
fn e6_0d_new_transfer_without_flush() {
    let (m, pdo) = packet_machine(Profile::VERIFIER);
    let b = in_routine(&m, pdo, 4, 1024, |a, mdl, base, va| {
        let _ = map_transfer(a, mdl, base, va, 256, true);
        // A second, separate transfer without flushing the first.
        let _ = map_transfer(a, mdl, base, va + 512, 256, true);
    });
    assert!(b.is_dma(0x0D), "{b}");
    assert_eq!(b.params[1], 256, "bytes mapped and not flushed");
}

#[test]
fn e6_0c_more_registers_than_the_allocation_holds() {
    let (m, pdo) = packet_machine(Profile::VERIFIER);
    let b = in_routine(&m, pdo, 1, 3 * 4096, |a, mdl, base, va| {
        // One register covers at most the rest of the first page; the continuation needs more.
        let (_, n) = map_transfer(a, mdl, base, va, 3 * 4096, true);
        assert!(
            n < 3 * 4096,
            "MapTransfer maps only what one register covers"
        );
        let _ = map_transfer(a, mdl, base, va + n as usize, 3 * 4096 - n, true);
    });
    assert!(b.is_dma(0x0C), "{b}");
}

#[test]
fn e6_16_20_00_flush_errors() {
    // Flushing with a CurrentVa other than the transfer's initial one.
    let (m, pdo) = packet_machine(Profile::VERIFIER);
    let b = in_routine(&m, pdo, 2, 1024, |a, mdl, base, va| {
        let _ = map_transfer(a, mdl, base, va, 512, false);
        flush_adapter(a, mdl, base, va + 8, 504, false);
    });
    assert!(b.is_dma(0x16), "{b}");
    // Flushing when nothing was mapped.
    let (m, pdo) = packet_machine(Profile::VERIFIER);
    let b = in_routine(&m, pdo, 2, 1024, |a, mdl, base, va| {
        flush_adapter(a, mdl, base, va, 512, false);
    });
    assert!(b.is_dma(0x20), "{b}");
    // Flushing more bytes than were mapped.
    let (m, pdo) = packet_machine(Profile::VERIFIER);
    let b = in_routine(&m, pdo, 2, 1024, |a, mdl, base, va| {
        let _ = map_transfer(a, mdl, base, va, 512, false);
        flush_adapter(a, mdl, base, va, 1024, false);
    });
    assert!(b.is_dma(0x00) && b.params[1] == 1, "{b}");
}

#[test]
fn e6_10_registers_freed_while_mapped() {
    let (m, pdo) = packet_machine(Profile::VERIFIER);
    expect_dma_bugcheck(&m, 0x10, move || {
        let (a, _) = adapter(pdo.0 as PDEVICE_OBJECT, 3, 64, 65536);
        let (p, mdl) = pool_buffer(512);
        let base = Rc::new(Cell::new(0));
        let b = base.clone();
        let a2 = Addr(a as usize);
        let _ = allocate_channel(a, 2, move |x| {
            let _ = map_transfer(a2.0 as PDMA_ADAPTER, mdl, x, p, 512, true);
            b.set(x);
            KEEP_REGISTERS
        });
        free_map_registers(a, base.get(), 2);
    });
    // Returning DeallocateObject with a live mapping frees mapped registers too.
    let (m, pdo) = packet_machine(Profile::VERIFIER);
    expect_dma_bugcheck(&m, 0x10, move || {
        let (a, _) = adapter(pdo.0 as PDEVICE_OBJECT, 3, 64, 65536);
        let (p, mdl) = pool_buffer(512);
        let a2 = Addr(a as usize);
        let _ = allocate_channel(a, 2, move |x| {
            let _ = map_transfer(a2.0 as PDMA_ADAPTER, mdl, x, p, 512, true);
            DEALLOCATE
        });
    });
}

#[test]
fn queued_channel_runs_when_registers_free() {
    let cfg = Config {
        map_register_limit: Some(2),
        ..Config::with_profile(Profile::VERIFIER)
    };
    let (m, att, _) = machine_with(cfg, 64);
    let pdo = Addr(att.pdo as usize);
    m.run(move || {
        let (a, granted) = adapter(pdo.0 as PDEVICE_OBJECT, 3, 64, 65536);
        assert_eq!(granted, 2);
        let (p, mdl) = pool_buffer(64);
        // A scatter/gather list holds one register...
        let (_, list) = get_sg(a, mdl, p, 64, false);
        // ...so a two-register channel waits.
        let ran = Rc::new(Cell::new(false));
        let r = ran.clone();
        assert_eq!(
            allocate_channel(a, 2, move |_| {
                r.set(true);
                DEALLOCATE
            }),
            STATUS_SUCCESS
        );
        assert!(!ran.get(), "queued");
        put_sg(a, list, false);
        assert!(ran.get(), "runs when the list's register is freed");
        free_pool_buffer(p, mdl);
        put_adapter(a);
    })
    .unwrap();
    let r = &m.dma_adapters()[0];
    assert_eq!(
        (
            r.counters.adapter_channels_allocated,
            r.counters.adapter_channels_freed
        ),
        (1, 1)
    );
    assert_eq!(m.leaks().unwrap(), Vec::<String>::new());
}

/// A transfer context registered with the adapter (boxed: the HAL knows it by address).
#[expect(
    clippy::unnecessary_box_returns,
    reason = "the HAL knows a transfer context by its address: it must not move"
)]
fn transfer_context(a: PDMA_ADAPTER) -> Box<[u8; 128]> {
    let mut ctx = Box::new([0u8; 128]);
    let init = ops(a).InitializeDmaTransferContext.unwrap();
    // SAFETY: 128 writable bytes.
    let st = unsafe { init(a, ctx.as_mut_ptr().cast()) };
    assert_eq!(st, STATUS_SUCCESS);
    ctx
}

/// `AllocateAdapterChannelEx`, synchronous and routine-less; returns the status and base.
fn allocate_channel_ex_sync(
    a: PDMA_ADAPTER,
    ctx: &mut [u8; 128],
    registers: u32,
) -> (NTSTATUS, usize) {
    let mut base: PVOID = std::ptr::null_mut();
    let alloc = ops(a).AllocateAdapterChannelEx.unwrap();
    // SAFETY: test code.
    let st = at_dispatch(|| unsafe {
        alloc(
            a,
            std::ptr::null_mut(),
            ctx.as_mut_ptr().cast(),
            registers,
            DMA_SYNCHRONOUS_CALLBACK,
            None,
            std::ptr::null_mut(),
            &raw mut base,
        )
    });
    (st, base as usize)
}

/// `MapTransferEx` of `len` bytes at `offset`; returns (status, element, bytes mapped).
fn map_ex(
    a: PDMA_ADAPTER,
    mdl: PMDL,
    base: usize,
    offset: u64,
    len: u32,
    write: bool,
) -> (NTSTATUS, (u64, u32), u32) {
    let mut buf = [0u64; 8];
    let mut n = len;
    let map = ops(a).MapTransferEx.unwrap();
    // SAFETY: test code; a 64-byte list buffer holds two elements.
    let st = unsafe {
        map(
            a,
            mdl,
            base as PVOID,
            offset,
            0,
            &raw mut n,
            u8::from(write),
            buf.as_mut_ptr().cast(),
            64,
            None,
            std::ptr::null_mut(),
        )
    };
    let el = if st == STATUS_SUCCESS {
        elements(buf.as_mut_ptr() as usize)[0]
    } else {
        (0, 0)
    };
    (st, el, n)
}

#[test]
fn version_3_packet_transfer() {
    let (m, att, bus) = machine(Profile::VERIFIER, 64);
    let pdo = Addr(att.pdo as usize);
    m.run(move || {
        let (a, _) = adapter(pdo.0 as PDEVICE_OBJECT, 3, 64, 1 << 20);
        let mut ctx = transfer_context(a);
        let (p, mdl) = pool_buffer(6000);
        let (st, base) = allocate_channel_ex_sync(a, &mut ctx, 4);
        assert_eq!(st, STATUS_SUCCESS);
        let (st, (la, len), n) = at_dispatch(|| map_ex(a, mdl, base, 1000, 3000, false));
        assert_eq!((st, len, n), (STATUS_SUCCESS, 3000, 3000));
        bus.dma_write(la, &[0xAA; 3000]).unwrap();
        let flush = ops(a).FlushAdapterBuffersEx.unwrap();
        // SAFETY: test code.
        let st = at_dispatch(|| unsafe { flush(a, mdl, base as PVOID, 1000, 3000, 0) });
        assert_eq!(st, STATUS_SUCCESS);
        // SAFETY: the buffer is live.
        let got = unsafe { std::slice::from_raw_parts((p + 1000) as *const u8, 3000) };
        assert!(got.iter().all(|&b| b == 0xAA));
        let free = ops(a).FreeAdapterObject.unwrap();
        // SAFETY: test code.
        at_dispatch(|| unsafe { free(a, _IO_ALLOCATION_ACTION::DeallocateObjectKeepRegisters) });
        free_map_registers(a, base, 4);
        free_pool_buffer(p, mdl);
        put_adapter(a);
    })
    .unwrap();
    assert_eq!(m.leaks().unwrap(), Vec::<String>::new());
}

#[test]
fn version_3_packet_rules() {
    // Each MapTransferEx must be flushed before the next.
    let (m, pdo) = packet_machine(Profile::VERIFIER);
    expect_dma_bugcheck(&m, 0x0D, move || {
        let (a, _) = adapter(pdo.0 as PDEVICE_OBJECT, 3, 64, 1 << 20);
        let mut ctx = transfer_context(a);
        let (p, mdl) = pool_buffer(4096);
        let _ = p;
        let (_, base) = allocate_channel_ex_sync(a, &mut ctx, 2);
        at_dispatch(|| {
            let _ = map_ex(a, mdl, base, 0, 256, true);
            let _ = map_ex(a, mdl, base, 256, 256, true);
        });
    });
    // Parameter rules.
    let (m, pdo) = packet_machine(Profile::COHERENT);
    m.run(move || {
        let (a, _) = adapter(pdo.0 as PDEVICE_OBJECT, 3, 64, 1 << 20);
        let mut ctx = transfer_context(a);
        let alloc = ops(a).AllocateAdapterChannelEx.unwrap();
        let mut base: PVOID = std::ptr::null_mut();
        // Asynchronous with an out pointer, and neither routine nor out pointer: invalid.
        // SAFETY: test code.
        let st = at_dispatch(|| unsafe {
            alloc(
                a,
                std::ptr::null_mut(),
                ctx.as_mut_ptr().cast(),
                1,
                0,
                None,
                std::ptr::null_mut(),
                &raw mut base,
            )
        });
        assert_eq!(st, STATUS_INVALID_PARAMETER);
        // SAFETY: test code.
        let st = at_dispatch(|| unsafe {
            alloc(
                a,
                std::ptr::null_mut(),
                ctx.as_mut_ptr().cast(),
                1,
                DMA_SYNCHRONOUS_CALLBACK,
                None,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        });
        assert_eq!(st, STATUS_INVALID_PARAMETER);
        // A context that was never initialised.
        let mut fresh = [0u8; 128];
        let (st, _) = allocate_channel_ex_sync(a, &mut fresh, 1);
        assert_eq!(st, STATUS_INVALID_PARAMETER);
        // Synchronous allocation of more registers than are free fails at once.
        let (st, base) = allocate_channel_ex_sync(a, &mut ctx, 1);
        assert_eq!(st, STATUS_SUCCESS);
        let (p, mdl) = pool_buffer(4096);
        // MapTransferEx needs a list buffer, no device offset and no completion routine.
        let map = ops(a).MapTransferEx.unwrap();
        let mut n = 64u32;
        // SAFETY: test code.
        let st = unsafe {
            map(
                a,
                mdl,
                base as PVOID,
                0,
                0,
                &raw mut n,
                1,
                std::ptr::null_mut(),
                0,
                None,
                std::ptr::null_mut(),
            )
        };
        assert_eq!(st, STATUS_INVALID_PARAMETER);
        let cancel = ops(a).CancelMappedTransfer.unwrap();
        // SAFETY: test code: bus masters have nothing to cancel.
        let st = unsafe { cancel(a, ctx.as_mut_ptr().cast()) };
        assert_eq!(st, STATUS_INVALID_PARAMETER);
        let free = ops(a).FreeAdapterObject.unwrap();
        // SAFETY: test code.
        at_dispatch(|| unsafe { free(a, _IO_ALLOCATION_ACTION::DeallocateObject) });
        free_pool_buffer(p, mdl);
        put_adapter(a);
    })
    .unwrap();
}
