//! Shared helpers of the wdk-sim integration tests: a trivial PCI function and wrappers that
//! call the mirrored routines the way a driver does.

#![allow(
    dead_code,
    reason = "each test binary uses a different subset of the helpers"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use wdk_sim::ntddk;
use wdk_sim::*;
// wdk-sys's `#define`s are `u32`; these tests pass them where the kernel takes `BOOLEAN`/`KIRQL`.
use wdk_sim::typed::{DISPATCH_LEVEL, FALSE, TRUE};

/// A device with one 4 KiB register BAR of plain read/write registers.
pub struct TestDevice {
    pub regs: Vec<AtomicU32>,
    pub width: u32,
}

impl TestDevice {
    pub fn new(width: u32) -> Arc<Self> {
        Arc::new(Self {
            regs: (0..1024).map(|_| AtomicU32::new(0)).collect(),
            width,
        })
    }
}

impl PciFunction for TestDevice {
    fn identity(&self) -> PciIdentity {
        PciIdentity {
            vendor_id: 0x1234,
            device_id: 0x0001,
            class_code: 0xFF_00_00,
            revision: 1,
        }
    }
    fn bar_size(&self, bar: u8) -> u64 {
        if bar == 0 { 4096 } else { 0 }
    }
    fn mmio_read(&self, _bar: u8, offset: u64) -> u32 {
        self.regs[usize::try_from(offset / 4).unwrap()].load(Ordering::SeqCst)
    }
    fn mmio_write(&self, _bar: u8, offset: u64, value: u32) {
        self.regs[usize::try_from(offset / 4).unwrap()].store(value, Ordering::SeqCst);
    }
    fn dma_address_width(&self) -> u32 {
        self.width
    }
}

/// A machine with one attached test device.
pub fn machine(profile: Profile, width: u32) -> (Machine, Attached, DeviceBus) {
    machine_with(Config::with_profile(profile), width)
}

/// As [`machine`] with a full configuration.
pub fn machine_with(config: Config, width: u32) -> (Machine, Attached, DeviceBus) {
    let m = Machine::new(config);
    let (att, bus) = m.attach(TestDevice::new(width));
    (m, att, bus)
}

/// A `Send` wrapper for raw addresses moved into simulated CPUs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Addr(pub usize);

/// `IoGetDmaAdapter` with a zeroed version-`version` description of a bus master.
pub fn adapter(pdo: PDEVICE_OBJECT, version: u32, width: u32, max_len: u32) -> (PDMA_ADAPTER, u32) {
    let mut d = DEVICE_DESCRIPTION {
        Version: version,
        Master: TRUE,
        ScatterGather: TRUE,
        InterfaceType: _INTERFACE_TYPE::PCIBus,
        MaximumLength: max_len,
        DmaAddressWidth: if version >= 3 { width } else { 0 },
        Dma64BitAddresses: u8::from(width == 64 && version < 3),
        ..DEVICE_DESCRIPTION::default()
    };
    let mut n = 0u32;
    // SAFETY: test code; valid arguments.
    let a = unsafe { ntddk::IoGetDmaAdapter(pdo, &raw mut d, &raw mut n) };
    (a, n)
}

/// The operations table of an adapter.
pub fn ops(a: PDMA_ADAPTER) -> &'static DMA_OPERATIONS {
    // SAFETY: `a` is a live adapter.
    let table = unsafe { (*a).DmaOperations };
    // SAFETY: the table is static and never written.
    unsafe { &*table }
}

/// Runs `f` at `DISPATCH_LEVEL`.
pub fn at_dispatch<R>(f: impl FnOnce() -> R) -> R {
    let mut old = 0;
    // SAFETY: test code; raising from PASSIVE.
    unsafe { wdk_sim::inline::KeRaiseIrql(DISPATCH_LEVEL, &raw mut old) };
    let r = f();
    // SAFETY: restoring the level we came from.
    unsafe { wdk_sim::inline::KeLowerIrql(old) };
    r
}

/// Non-paged pool with an MDL built for it.
pub fn pool_buffer(len: usize) -> (usize, PMDL) {
    // SAFETY: test code.
    let p = unsafe {
        ntddk::ExAllocatePool2(
            POOL_FLAG_NON_PAGED,
            len as u64,
            u32::from_le_bytes(*b"Test"),
        )
    };
    assert!(!p.is_null());
    // SAFETY: test code; `p` is a live pool block of `len` bytes.
    let mdl = unsafe {
        ntddk::IoAllocateMdl(
            p,
            u32::try_from(len).unwrap(),
            FALSE,
            FALSE,
            std::ptr::null_mut(),
        )
    };
    // SAFETY: `mdl` describes pool memory.
    unsafe { ntddk::MmBuildMdlForNonPagedPool(mdl) };
    (p as usize, mdl)
}

/// Frees what [`pool_buffer`] allocated.
pub fn free_pool_buffer(p: usize, mdl: PMDL) {
    // SAFETY: test code; both were allocated by pool_buffer.
    unsafe {
        ntddk::IoFreeMdl(mdl);
    }
    // SAFETY: as above.
    unsafe { ntddk::ExFreePool(p as PVOID) };
}

/// The execution routine tests use: records the list and the IRQL it ran at.
pub unsafe extern "C" fn record_list(
    _d: PDEVICE_OBJECT,
    _i: PIRP,
    list: PSCATTER_GATHER_LIST,
    ctx: PVOID,
) {
    let out = ctx.cast::<[usize; 2]>();
    // SAFETY: reading the simulated CPU's IRQL has no preconditions on a machine CPU.
    let irql = unsafe { ntddk::KeGetCurrentIrql() };
    // SAFETY: tests pass a [usize; 2] as context.
    unsafe { *out = [list as usize, usize::from(irql)] };
}

/// `GetScatterGatherList` at `DISPATCH_LEVEL`; returns the status and the list (0 if not yet run).
pub fn get_sg(a: PDMA_ADAPTER, mdl: PMDL, va: usize, len: u32, write: bool) -> (NTSTATUS, usize) {
    let mut out = [0usize; 2];
    let get = ops(a).GetScatterGatherList.unwrap();
    let st = at_dispatch(|| {
        // SAFETY: test code; the routine and context are valid for the call.
        unsafe {
            get(
                a,
                std::ptr::null_mut(),
                mdl,
                va as PVOID,
                len,
                Some(record_list),
                (&raw mut out).cast(),
                u8::from(write),
            )
        }
    });
    if out[0] != 0 {
        assert_eq!(
            out[1],
            usize::from(DISPATCH_LEVEL),
            "execution routines run at DISPATCH_LEVEL"
        );
    }
    (st, out[0])
}

/// `PutScatterGatherList` at `DISPATCH_LEVEL`.
pub fn put_sg(a: PDMA_ADAPTER, list: usize, write: bool) {
    let put = ops(a).PutScatterGatherList.unwrap();
    // SAFETY: test code.
    at_dispatch(|| unsafe { put(a, list as PSCATTER_GATHER_LIST, u8::from(write)) });
}

/// The elements of a list: (logical address, length).
pub fn elements(list: usize) -> Vec<(u64, u32)> {
    let l = list as PSCATTER_GATHER_LIST;
    // SAFETY: a live list built by the HAL.
    let list = unsafe { &*l };
    // SAFETY: the HAL wrote NumberOfElements elements after the header.
    let elems = unsafe { list.Elements.as_slice(list.NumberOfElements as usize) };
    elems
        .iter()
        .map(|e| {
            // SAFETY: every bit pattern of the union is a valid LONGLONG.
            (unsafe { e.Address.QuadPart }.cast_unsigned(), e.Length)
        })
        .collect()
}

/// `AllocateCommonBuffer` at `PASSIVE_LEVEL`.
pub fn common_buffer(a: PDMA_ADAPTER, len: u32) -> (usize, u64) {
    let mut la = PHYSICAL_ADDRESS::default();
    let alloc = ops(a).AllocateCommonBuffer.unwrap();
    // SAFETY: test code.
    let va = unsafe { alloc(a, len, &raw mut la, TRUE) };
    // SAFETY: the HAL wrote the logical address.
    (va as usize, unsafe { la.QuadPart }.cast_unsigned())
}

/// `FreeCommonBuffer` with the allocation's arguments.
pub fn free_common(a: PDMA_ADAPTER, len: u32, va: usize, la: u64) {
    let free = ops(a).FreeCommonBuffer.unwrap();
    // SAFETY: test code.
    unsafe {
        free(
            a,
            len,
            PHYSICAL_ADDRESS {
                QuadPart: la.cast_signed(),
            },
            va as PVOID,
            TRUE,
        );
    }
}

/// `PutDmaAdapter`.
pub fn put_adapter(a: PDMA_ADAPTER) {
    let put = ops(a).PutDmaAdapter.unwrap();
    // SAFETY: test code.
    unsafe { put(a) };
}

/// Runs `f` on a simulated CPU and expects it to stop the machine with E6 and `p1`.
pub fn expect_dma_bugcheck<F: FnOnce() + Send + 'static>(m: &Machine, p1: u64, f: F) -> BugCheck {
    let b = m.run(f).expect_err("the misuse must stop the machine");
    assert!(b.is_dma(p1), "expected E6/{p1:#x}, got {b}");
    assert_eq!(m.bugcheck(), Some(b), "the machine records the stop");
    assert_eq!(
        m.run(|| ()).unwrap_err(),
        b,
        "a stopped machine runs nothing"
    );
    b
}

/// Runs `f` on a simulated CPU and expects it to stop the machine with `code`/`p1`.
pub fn expect_bugcheck<F: FnOnce() + Send + 'static>(
    m: &Machine,
    code: u32,
    p1: u64,
    f: F,
) -> BugCheck {
    let b = m.run(f).expect_err("the misuse must stop the machine");
    assert_eq!((b.code, b.params[0]), (code, p1), "got {b}");
    b
}

/// `ExAllocatePool2`.
pub fn alloc(flags: POOL_FLAGS, size: u64, tag: u32) -> PVOID {
    // SAFETY: pool allocation has no pointer preconditions.
    unsafe { ntddk::ExAllocatePool2(flags, size, tag) }
}

/// `ExFreePool`.
pub fn free(p: PVOID) {
    // SAFETY: test code; misuse is what some tests provoke, and the machine checks it.
    unsafe { ntddk::ExFreePool(p) };
}

/// `ExFreePoolWithTag`.
pub fn free_tag(p: PVOID, tag: u32) {
    // SAFETY: as for `free`.
    unsafe { ntddk::ExFreePoolWithTag(p, tag) };
}

/// `KeRaiseIrql`; returns the old level.
pub fn raise(level: KIRQL) -> KIRQL {
    let mut old = 0;
    // SAFETY: `old` is writable.
    unsafe { wdk_sim::inline::KeRaiseIrql(level, &raw mut old) };
    old
}

/// `KeLowerIrql`.
pub fn lower(level: KIRQL) {
    // SAFETY: no pointer arguments; the machine checks the level.
    unsafe { wdk_sim::inline::KeLowerIrql(level) };
}

/// `KeGetCurrentIrql`.
pub fn current_irql() -> KIRQL {
    // SAFETY: no preconditions on a machine CPU.
    unsafe { ntddk::KeGetCurrentIrql() }
}

/// `MmGetPhysicalAddress(p).QuadPart`.
pub fn physical(p: usize) -> u64 {
    // SAFETY: the routine only looks the address up.
    let pa = unsafe { ntddk::MmGetPhysicalAddress(p as PVOID) };
    // SAFETY: every bit pattern of the union is a valid LONGLONG.
    unsafe { pa.QuadPart }.cast_unsigned()
}

/// `KeAcquireSpinLockRaiseToDpc`.
pub fn acquire(lock: PKSPIN_LOCK) -> KIRQL {
    // SAFETY: tests pass a lock that lives for the call.
    unsafe { ntddk::KeAcquireSpinLockRaiseToDpc(lock) }
}

/// `KeReleaseSpinLock`.
pub fn release(lock: PKSPIN_LOCK, old: KIRQL) {
    // SAFETY: tests pass a lock that lives for the call.
    unsafe { ntddk::KeReleaseSpinLock(lock, old) };
}

/// `IoAllocateMdl` without an IRP.
pub fn alloc_mdl(va: usize, len: u32) -> PMDL {
    // SAFETY: IoAllocateMdl only records the address.
    unsafe { ntddk::IoAllocateMdl(va as PVOID, len, FALSE, FALSE, std::ptr::null_mut()) }
}

/// `IoFreeMdl`.
pub fn free_mdl(mdl: PMDL) {
    // SAFETY: the machine checks the MDL.
    unsafe { ntddk::IoFreeMdl(mdl) };
}

/// `IoBuildPartialMdl`.
pub fn partial_mdl(source: PMDL, target: PMDL, va: usize, len: u32) {
    // SAFETY: the machine checks both MDLs and the range.
    unsafe { ntddk::IoBuildPartialMdl(source, target, va as PVOID, len) };
}

/// `MmProbeAndLockPages` in user mode.
pub fn probe_and_lock(mdl: PMDL, op: LOCK_OPERATION) {
    // SAFETY: the machine checks the MDL and the range.
    unsafe { ntddk::MmProbeAndLockPages(mdl, 1, op) };
}

/// `MmUnlockPages`.
pub fn unlock(mdl: PMDL) {
    // SAFETY: the machine checks the MDL.
    unsafe { ntddk::MmUnlockPages(mdl) };
}

/// A copy of an MDL's header.
pub const fn mdl_header(mdl: PMDL) -> MDL {
    // SAFETY: tests pass live MDLs.
    unsafe { mdl.read() }
}

/// The first entry of an MDL's PFN array.
pub const fn first_pfn(mdl: PMDL) -> u64 {
    // SAFETY: the PFN array follows the header of a live MDL.
    let array = unsafe { mdl.add(1) }.cast::<u64>();
    // SAFETY: a live MDL has at least one PFN entry.
    unsafe { array.read() }
}

/// Reads a device register through a mapping.
pub fn read_reg(base: usize, index: usize) -> u32 {
    // SAFETY: tests pass a live register mapping.
    unsafe { read_register_ulong((base as *const u32).wrapping_add(index)) }
}

/// Writes a device register through a mapping.
pub fn write_reg(base: usize, index: usize, value: u32) {
    // SAFETY: tests pass a live register mapping.
    unsafe { write_register_ulong((base as *mut u32).wrapping_add(index), value) };
}

/// `MmMapIoSpaceEx` of a BAR.
pub fn map_io(pa: u64, len: u64) -> usize {
    // SAFETY: the routine checks that `pa` is a BAR of an attached device.
    unsafe {
        ntddk::MmMapIoSpaceEx(
            PHYSICAL_ADDRESS {
                QuadPart: pa.cast_signed(),
            },
            len,
            PAGE_READWRITE | PAGE_NOCACHE,
        ) as usize
    }
}

/// `MmUnmapIoSpace`.
pub fn unmap_io(va: usize, len: u64) {
    // SAFETY: the routine checks the mapping.
    unsafe { ntddk::MmUnmapIoSpace(va as PVOID, len) };
}

/// The test body an execution routine runs: receives `MapRegisterBase`, returns the action.
pub type Exec = Box<dyn FnMut(usize) -> IO_ALLOCATION_ACTION>;

unsafe extern "C" fn exec_trampoline(
    _d: PDEVICE_OBJECT,
    _i: PIRP,
    base: PVOID,
    ctx: PVOID,
) -> IO_ALLOCATION_ACTION {
    let f = ctx.cast::<Exec>();
    // SAFETY: `allocate_channel` passes a leaked, live `Exec`.
    unsafe { (*f)(base as usize) }
}

/// `AllocateAdapterChannel` at `DISPATCH_LEVEL` with `body` as the execution routine. The body
/// is leaked so that a queued routine can still run later.
pub fn allocate_channel(
    a: PDMA_ADAPTER,
    registers: u32,
    body: impl FnMut(usize) -> IO_ALLOCATION_ACTION + 'static,
) -> NTSTATUS {
    let ctx: &'static mut Exec = Box::leak(Box::new(Box::new(body)));
    let alloc = ops(a).AllocateAdapterChannel.unwrap();
    let ctx = std::ptr::from_mut(ctx).cast::<core::ffi::c_void>();
    // SAFETY: test code; the context lives forever.
    at_dispatch(|| unsafe {
        alloc(
            a,
            std::ptr::null_mut(),
            registers,
            Some(exec_trampoline),
            ctx,
        )
    })
}

/// `MapTransfer`; returns (logical address, bytes mapped).
pub fn map_transfer(
    a: PDMA_ADAPTER,
    mdl: PMDL,
    base: usize,
    va: usize,
    len: u32,
    write: bool,
) -> (u64, u32) {
    let mut n = len;
    let map = ops(a).MapTransfer.unwrap();
    // SAFETY: test code; `n` is writable.
    let la = unsafe {
        map(
            a,
            mdl,
            base as PVOID,
            va as PVOID,
            &raw mut n,
            u8::from(write),
        )
    };
    // SAFETY: every bit pattern of the union is a valid LONGLONG.
    (unsafe { la.QuadPart }.cast_unsigned(), n)
}

/// `FlushAdapterBuffers`.
pub fn flush_adapter(a: PDMA_ADAPTER, mdl: PMDL, base: usize, va: usize, len: u32, write: bool) {
    let flush = ops(a).FlushAdapterBuffers.unwrap();
    // SAFETY: test code.
    unsafe { flush(a, mdl, base as PVOID, va as PVOID, len, u8::from(write)) };
}

/// `FreeMapRegisters` at `DISPATCH_LEVEL`.
pub fn free_map_registers(a: PDMA_ADAPTER, base: usize, registers: u32) {
    let free = ops(a).FreeMapRegisters.unwrap();
    // SAFETY: test code.
    at_dispatch(|| unsafe { free(a, base as PVOID, registers) });
}

/// `FreeAdapterChannel` at `DISPATCH_LEVEL`.
pub fn free_adapter_channel(a: PDMA_ADAPTER) {
    let free = ops(a).FreeAdapterChannel.unwrap();
    // SAFETY: test code.
    at_dispatch(|| unsafe { free(a) });
}

/// `WdfDriverCreate` with the callbacks a test driver registers (the body of its `DriverEntry`).
pub fn create_test_driver(
    driver: PDRIVER_OBJECT,
    registry: PCUNICODE_STRING,
    add: PFN_WDF_DRIVER_DEVICE_ADD,
    unload: PFN_WDF_DRIVER_UNLOAD,
) -> NTSTATUS {
    let mut config = WDF_DRIVER_CONFIG {
        Size: u32::try_from(size_of::<WDF_DRIVER_CONFIG>()).unwrap(),
        EvtDriverDeviceAdd: add,
        EvtDriverUnload: unload,
        ..WDF_DRIVER_CONFIG::default()
    };
    // SAFETY: the loader's arguments (the caller is a DriverEntry) and a live config.
    unsafe {
        wdk_sim::call_unsafe_wdf_function_binding!(
            WdfDriverCreate,
            driver,
            registry,
            WDF_NO_OBJECT_ATTRIBUTES,
            &raw mut config,
            core::ptr::null_mut()
        )
    }
}
