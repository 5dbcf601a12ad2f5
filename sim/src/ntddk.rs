//! The kernel routines, at the module path wdk-sys generates them (`wdk_sys::ntddk::…`).
//!
//! Each routine checks its documented IRQL: DMA routines with E6/0x13, `IoGetDmaAdapter` with
//! the `IrqlIoPassive5` rule (0xC4/0x2000E), and the others with `IRQL_NOT_LESS_OR_EQUAL`
//! (0xA) naming the routine. They are Rust-ABI `unsafe fn`s with the C parameter names and
//! types; wdk-sys declares them in an `extern "C"` block. Calls are written the same way
//! (`unsafe { ntddk::IoAllocateMdl(…) }`); only taking a function pointer would differ
//! (`docs/sim-fidelity.md`). Each is `#[inline(never)]`, as a kernel export is to a driver, so
//! that a profile attributes its cost to the kernel.
//!
//! This file holds IRQL, spin locks, time, pool, I/O space and `IoGetDmaAdapter`; `mdl` holds
//! the MDL routines, re-exported here.

#![expect(non_snake_case, reason = "mirrors the C routine and parameter names")]

use core::ffi::c_void;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::bugcheck::{BugCheck, sim_rule};
use crate::constants::{
    POOL_FLAG_CACHE_ALIGNED, POOL_FLAG_NON_PAGED, POOL_FLAG_NON_PAGED_EXECUTE, POOL_FLAG_PAGED,
    POOL_FLAG_UNINITIALIZED,
};
use crate::hal;
use crate::machine::{irql, set_irql, with_state};
use crate::mem::{Kind, PAGE};
use crate::typed::{APC_LEVEL, DISPATCH_LEVEL, PASSIVE_LEVEL};
use crate::types::{
    _DEVICE_DESCRIPTION, _DMA_ADAPTER, DEVICE_DESCRIPTION_VERSION3, KIRQL, LARGE_INTEGER,
    PDEVICE_OBJECT, PHYSICAL_ADDRESS, PKSPIN_LOCK, POOL_FLAGS, PULONG, PVOID, SIZE_T, ULONG,
};

mod debug;
mod etw;
mod mdl;

pub use debug::{DbgPrint, DbgPrintEx};
pub use etw::{EtwEventEnabled, EtwProviderEnabled, EtwRegister, EtwUnregister, EtwWriteTransfer};
pub use mdl::{
    IoAllocateMdl, IoBuildPartialMdl, IoFreeMdl, MmBuildMdlForNonPagedPool,
    MmMapLockedPagesSpecifyCache, MmProbeAndLockPages, MmUnlockPages, MmUnmapLockedPages,
};
pub(crate) use mdl::{known_mdl, mdl_header};

/// A non-DMA routine called above its maximum IRQL: `IRQL_NOT_LESS_OR_EQUAL`.
pub(crate) fn check_max(max: KIRQL, routine: &'static str) {
    let cur = irql();
    if cur > max {
        crate::machine::halt(BugCheck::new(
            crate::bugcheck::IRQL_NOT_LESS_OR_EQUAL,
            [0, u64::from(cur), u64::from(max), 0],
            Box::leak(format!("{routine} called above its maximum IRQL").into_boxed_str()),
            "windows-dma.md §2.1, §5.3",
        ));
    }
}

/// `KIRQL KeGetCurrentIrql(VOID)` (`wdm.h`, NTKERNELAPI unless inlined).
///
/// # Safety
/// Pointer arguments must be valid as the WDK documents for this routine, and the caller
/// must run on a CPU of a [`crate::Machine`] (`Machine::run` or `Machine::enter`).
#[must_use]
#[inline(never)]
pub unsafe fn KeGetCurrentIrql() -> KIRQL {
    irql()
}

fn lock_word<'a>(lock: PKSPIN_LOCK) -> &'a AtomicU64 {
    // SAFETY: a KSPIN_LOCK is an aligned ULONG_PTR the caller owns for the lock's lifetime; all
    // simulator accesses to it are atomic.
    unsafe { AtomicU64::from_ptr(lock) }
}

/// `KIRQL KeAcquireSpinLockRaiseToDpc(PKSPIN_LOCK)` (what `KeAcquireSpinLock` expands to on x64):
/// raises to `DISPATCH_LEVEL` and spins until the lock is free.
///
/// # Safety
/// `SpinLock` must be an initialised spin lock.
#[must_use]
#[inline(never)]
pub unsafe fn KeAcquireSpinLockRaiseToDpc(SpinLock: PKSPIN_LOCK) -> KIRQL {
    check_max(DISPATCH_LEVEL, "KeAcquireSpinLockRaiseToDpc");
    let old = irql();
    set_irql(DISPATCH_LEVEL);
    acquire(SpinLock);
    old
}

/// Spins until `lock` is free and takes it (no IRQL change).
pub(crate) fn spin_acquire(lock: PKSPIN_LOCK) {
    acquire(lock);
}

fn acquire(lock: PKSPIN_LOCK) {
    let w = lock_word(lock);
    let me = thread_token();
    let mut spins = 0u32;
    loop {
        match w.compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed) {
            Ok(_) => return,
            Err(owner) if owner == me => crate::machine::halt(BugCheck::sim(
                sim_rule::SPIN_LOCK_MISUSE,
                lock as u64,
                1,
                "recursive acquisition of a spin lock (the CPU would deadlock)",
            )),
            Err(_) => {
                // A real CPU spins; a simulated one shares the host's cores with the holder, so
                // after a short spin it yields its core to let the holder run (same semantics:
                // the caller still waits at its raised IRQL until the lock is free).
                spins += 1;
                if spins < 64 {
                    std::hint::spin_loop();
                } else {
                    std::thread::yield_now();
                }
            }
        }
    }
}

/// A number naming the calling thread (never 0): a spin lock's owner, the CPU draining the
/// DPC queue.
pub(crate) fn thread_token() -> u64 {
    thread_local!(static TOKEN: u64 = {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        NEXT.fetch_add(1, Ordering::Relaxed)
    });
    TOKEN.with(|t| *t)
}

/// `VOID KeReleaseSpinLock(PKSPIN_LOCK, KIRQL NewIrql)`: releases and lowers to `NewIrql`.
///
/// # Safety
/// `SpinLock` must be held by the caller.
#[inline(never)]
pub unsafe fn KeReleaseSpinLock(SpinLock: PKSPIN_LOCK, NewIrql: KIRQL) {
    release(SpinLock);
    if NewIrql > irql() {
        crate::machine::halt(BugCheck::new(
            0xC4,
            [0x31, u64::from(irql()), u64::from(NewIrql), 0],
            "KeReleaseSpinLock to a level above the current IRQL",
            "docs/sim-fidelity.md",
        ));
    }
    set_irql(NewIrql);
}

/// Releases `lock` (held by this CPU, at `DISPATCH_LEVEL` or above).
pub(crate) fn spin_release(lock: PKSPIN_LOCK) {
    release(lock);
}

fn release(lock: PKSPIN_LOCK) {
    if irql() < DISPATCH_LEVEL {
        crate::machine::halt(BugCheck::sim(
            sim_rule::SPIN_LOCK_MISUSE,
            lock as u64,
            2,
            "spin lock released below DISPATCH_LEVEL",
        ));
    }
    let w = lock_word(lock);
    if w.compare_exchange(thread_token(), 0, Ordering::Release, Ordering::Relaxed)
        .is_err()
    {
        crate::machine::halt(BugCheck::sim(
            sim_rule::SPIN_LOCK_MISUSE,
            lock as u64,
            3,
            "released a spin lock this CPU does not hold",
        ));
    }
}

/// `VOID KeAcquireSpinLockAtDpcLevel(PKSPIN_LOCK)`: caller already at `DISPATCH_LEVEL` or above.
///
/// # Safety
/// `SpinLock` must be an initialised spin lock.
#[inline(never)]
pub unsafe fn KeAcquireSpinLockAtDpcLevel(SpinLock: PKSPIN_LOCK) {
    if irql() < DISPATCH_LEVEL {
        crate::machine::halt(BugCheck::sim(
            sim_rule::SPIN_LOCK_MISUSE,
            SpinLock as u64,
            4,
            "KeAcquireSpinLockAtDpcLevel below DISPATCH_LEVEL",
        ));
    }
    acquire(SpinLock);
}

/// `VOID KeReleaseSpinLockFromDpcLevel(PKSPIN_LOCK)`.
///
/// # Safety
/// `SpinLock` must be held by the caller.
#[inline(never)]
pub unsafe fn KeReleaseSpinLockFromDpcLevel(SpinLock: PKSPIN_LOCK) {
    release(SpinLock);
}

/// `VOID KeStallExecutionProcessor(ULONG MicroSeconds)` (HAL; any IRQL).
///
/// # Safety
/// Pointer arguments must be valid as the WDK documents for this routine, and the caller
/// must run on a CPU of a [`crate::Machine`] (`Machine::run` or `Machine::enter`).
#[inline(never)]
pub unsafe fn KeStallExecutionProcessor(MicroSeconds: ULONG) {
    let until = Instant::now() + std::time::Duration::from_micros(u64::from(MicroSeconds));
    while Instant::now() < until {
        std::hint::spin_loop();
    }
}

fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// `LARGE_INTEGER KeQueryPerformanceCounter(PLARGE_INTEGER PerformanceFrequency)`: a 10 MHz
/// counter, as on current x64 Windows.
///
/// # Safety
/// `PerformanceFrequency` must be null or writable.
#[inline(never)]
pub unsafe fn KeQueryPerformanceCounter(PerformanceFrequency: *mut LARGE_INTEGER) -> LARGE_INTEGER {
    if !PerformanceFrequency.is_null() {
        // SAFETY: non-null and writable per the contract.
        unsafe {
            PerformanceFrequency.write(LARGE_INTEGER {
                QuadPart: 10_000_000,
            });
        }
    }
    let ticks = epoch().elapsed().as_nanos() / 100;
    LARGE_INTEGER {
        QuadPart: i64::try_from(ticks).unwrap_or(i64::MAX),
    }
}

/// `PVOID ExAllocatePool2(POOL_FLAGS Flags, SIZE_T NumberOfBytes, ULONG Tag)`.
///
/// Exactly one of `POOL_FLAG_NON_PAGED`, `POOL_FLAG_NON_PAGED_EXECUTE`, `POOL_FLAG_PAGED` must be
/// set; paged pool is served as non-paged memory but its IRQL limit (`APC_LEVEL`) is enforced.
///
/// # Safety
/// Pointer arguments must be valid as the WDK documents for this routine, and the caller
/// must run on a CPU of a [`crate::Machine`] (`Machine::run` or `Machine::enter`).
#[must_use]
#[inline(never)]
pub unsafe fn ExAllocatePool2(Flags: POOL_FLAGS, NumberOfBytes: SIZE_T, Tag: ULONG) -> PVOID {
    let kinds = Flags & (POOL_FLAG_NON_PAGED | POOL_FLAG_NON_PAGED_EXECUTE | POOL_FLAG_PAGED);
    if kinds.count_ones() != 1 || NumberOfBytes == 0 {
        return core::ptr::null_mut();
    }
    crate::heap::note_pool_allocation();
    let max = if kinds == POOL_FLAG_PAGED {
        APC_LEVEL
    } else {
        DISPATCH_LEVEL
    };
    let cur = irql();
    if cur > max {
        let paged = kinds == POOL_FLAG_PAGED;
        crate::machine::halt(crate::heap::pool_irql_stop(
            if paged { 0x01 } else { 0x02 },
            cur,
            max,
            if paged {
                crate::heap::PAGED_POOL
            } else {
                crate::heap::NON_PAGED_POOL_NX
            },
            NumberOfBytes,
            "ExAllocatePool2 above the pool type's maximum IRQL",
        ));
    }
    let size = usize::try_from(NumberOfBytes).unwrap_or(usize::MAX);
    with_state(|st, _| {
        if st.faults.pool_fails(Tag) {
            return Ok(None);
        }
        Ok(st.mem.pool_alloc(
            size,
            Tag,
            Flags & POOL_FLAG_CACHE_ALIGNED != 0,
            Flags & POOL_FLAG_UNINITIALIZED == 0,
        ))
    })
    .map_or(core::ptr::null_mut(), |p| p as PVOID)
}

fn pool_free(p: PVOID, tag: Option<ULONG>, routine: &'static str) {
    let cur = irql();
    if cur > DISPATCH_LEVEL {
        crate::machine::halt(crate::heap::pool_irql_stop(
            0x12,
            cur,
            DISPATCH_LEVEL,
            crate::heap::NON_PAGED_POOL_NX,
            p as u64,
            routine,
        ));
    }
    with_state(|st, _| match st.mem.pool_free(p as usize, tag) {
        Ok(()) => Ok(()),
        Err((1, _)) => Err(BugCheck::new(
            crate::bugcheck::BAD_POOL_CALLER,
            [0x07, 0, p as u64, 0],
            "freed pool that was already freed",
            "docs/sim-fidelity.md",
        )),
        Err((3, expected)) => Err(BugCheck::new(
            crate::bugcheck::BAD_POOL_CALLER,
            [
                0x0A,
                p as u64,
                u64::from(tag.unwrap_or(0)),
                u64::from(expected),
            ],
            "ExFreePoolWithTag with a tag that differs from the allocation's",
            "docs/sim-fidelity.md",
        )),
        Err(_) => Err(BugCheck::new(
            crate::bugcheck::BAD_POOL_CALLER,
            [0x99, p as u64, 0, 0],
            "freed an address that is not a pool allocation",
            "docs/sim-fidelity.md",
        )),
    });
}

/// `VOID ExFreePoolWithTag(PVOID P, ULONG Tag)`.
///
/// # Safety
/// Pointer arguments must be valid as the WDK documents for this routine, and the caller
/// must run on a CPU of a [`crate::Machine`] (`Machine::run` or `Machine::enter`).
#[inline(never)]
pub unsafe fn ExFreePoolWithTag(P: PVOID, Tag: ULONG) {
    pool_free(P, Some(Tag), "ExFreePoolWithTag");
}

/// `VOID ExFreePool(PVOID P)`.
///
/// # Safety
/// Pointer arguments must be valid as the WDK documents for this routine, and the caller
/// must run on a CPU of a [`crate::Machine`] (`Machine::run` or `Machine::enter`).
#[inline(never)]
pub unsafe fn ExFreePool(P: PVOID) {
    pool_free(P, None, "ExFreePool");
}

/// `PHYSICAL_ADDRESS MmGetPhysicalAddress(PVOID BaseAddress)`: the CPU physical address. Under
/// DMA remapping it is useless to a device, which only reaches logical addresses.
///
/// # Safety
/// Pointer arguments must be valid as the WDK documents for this routine, and the caller
/// must run on a CPU of a [`crate::Machine`] (`Machine::run` or `Machine::enter`).
#[must_use]
#[inline(never)]
pub unsafe fn MmGetPhysicalAddress(BaseAddress: PVOID) -> PHYSICAL_ADDRESS {
    let va = BaseAddress as usize;
    let pa = with_state(|st, _| {
        Ok(st
            .mem
            .pfn_of(va)
            .map_or(0, |pfn| (pfn << 12) | (va & (PAGE - 1)) as u64))
    });
    PHYSICAL_ADDRESS {
        QuadPart: pa.cast_signed(),
    }
}

/// `PVOID MmMapIoSpaceEx(PHYSICAL_ADDRESS, SIZE_T, ULONG Protect)`: maps device registers.
///
/// Accesses through the mapping must use the register routines
/// ([`crate::bus::read_register_ulong`]), which reach the device synchronously.
///
/// # Safety
/// Pointer arguments must be valid as the WDK documents for this routine, and the caller
/// must run on a CPU of a [`crate::Machine`] (`Machine::run` or `Machine::enter`).
#[must_use]
#[inline(never)]
pub unsafe fn MmMapIoSpaceEx(
    PhysicalAddress: PHYSICAL_ADDRESS,
    NumberOfBytes: SIZE_T,
    _Protect: ULONG,
) -> PVOID {
    check_max(DISPATCH_LEVEL, "MmMapIoSpaceEx");
    // SAFETY: every bit pattern of the union is a valid LONGLONG.
    let pa = unsafe { PhysicalAddress.QuadPart }.cast_unsigned();
    let len = usize::try_from(NumberOfBytes).unwrap_or(0);
    with_state(|st, _| {
        let Some((device, bar, offset)) = st.bus.bar_at(pa, len as u64) else {
            return Ok(core::ptr::null_mut());
        };
        let pages = (len + (pa as usize & (PAGE - 1))).div_ceil(PAGE);
        let Some(base) = st
            .mem
            .alloc_region(pages, Kind::IoSpace, crate::mem::Zone::Low, false)
        else {
            return Ok(core::ptr::null_mut());
        };
        let va = base + (pa as usize & (PAGE - 1));
        st.bus.io_maps.push(crate::bus::IoMapping {
            va,
            len,
            device,
            bar,
            offset,
            moved: false,
        });
        Ok(va as PVOID)
    })
}

/// `VOID MmUnmapIoSpace(PVOID BaseAddress, SIZE_T NumberOfBytes)`.
///
/// # Safety
/// Pointer arguments must be valid as the WDK documents for this routine, and the caller
/// must run on a CPU of a [`crate::Machine`] (`Machine::run` or `Machine::enter`).
#[inline(never)]
pub unsafe fn MmUnmapIoSpace(BaseAddress: PVOID, NumberOfBytes: SIZE_T) {
    check_max(DISPATCH_LEVEL, "MmUnmapIoSpace");
    let va = BaseAddress as usize;
    with_state(|st, _| {
        let i = st
            .bus
            .io_maps
            .iter()
            .position(|m| m.va == va && m.len as u64 == NumberOfBytes)
            .ok_or_else(|| {
                BugCheck::sim(
                    sim_rule::BAD_IO_SPACE_UNMAP,
                    va as u64,
                    NumberOfBytes,
                    "MmUnmapIoSpace of an address and size that were not mapped",
                )
            })?;
        st.bus.io_maps.remove(i);
        st.mem.free_region(va & !(PAGE - 1));
        Ok(())
    });
}

/// `struct _DMA_ADAPTER *IoGetDmaAdapter(PDEVICE_OBJECT PhysicalDeviceObject, struct
/// _DEVICE_DESCRIPTION *DeviceDescription, PULONG NumberOfMapRegisters)` (windows-dma.md §1).
///
/// # Safety
/// Pointer arguments must be valid as the WDK documents for this routine, and the caller
/// must run on a CPU of a [`crate::Machine`] (`Machine::run` or `Machine::enter`).
#[must_use]
#[inline(never)]
pub unsafe fn IoGetDmaAdapter(
    PhysicalDeviceObject: PDEVICE_OBJECT,
    DeviceDescription: *mut _DEVICE_DESCRIPTION,
    NumberOfMapRegisters: PULONG,
) -> *mut _DMA_ADAPTER {
    if irql() != PASSIVE_LEVEL {
        crate::machine::halt(BugCheck::new(
            0xC4,
            [0x0002_000E, u64::from(irql()), 0, 0],
            "IoGetDmaAdapter called above PASSIVE_LEVEL (IrqlIoPassive5)",
            "windows-dma.md §5.3, §10 rule 1",
        ));
    }
    if DeviceDescription.is_null() || NumberOfMapRegisters.is_null() {
        return core::ptr::null_mut();
    }
    // SAFETY: non-null; the caller passes a DEVICE_DESCRIPTION it initialised.
    let d = unsafe { core::ptr::read(DeviceDescription) };
    let granted = with_state(|st, cfg| {
        if d.Version > DEVICE_DESCRIPTION_VERSION3 {
            if cfg.profile.verifier {
                return Err(BugCheck::dma(
                    0x25,
                    u64::from(d.Version),
                    0,
                    0,
                    "unknown DEVICE_DESCRIPTION version",
                    "windows-dma.md §5.2, §10 rule 2",
                ));
            }
            return Ok(None);
        }
        if d.Version > cfg.max_description_version || d.Reserved1 != 0 || d.Master == 0 {
            return Ok(None);
        }
        let width = match d.Version {
            DEVICE_DESCRIPTION_VERSION3 => {
                if d.DmaAddressWidth == 0 || d.DmaAddressWidth > 64 {
                    return Ok(None);
                }
                d.DmaAddressWidth
            }
            _ if d.Dma64BitAddresses != 0 => 64,
            _ => 32,
        };
        let Some(slot) = st.bus.slot_of_pdo(PhysicalDeviceObject) else {
            return Err(BugCheck::sim(
                sim_rule::BAD_ADDRESS,
                PhysicalDeviceObject as u64,
                0,
                "IoGetDmaAdapter given something that is not a PDO of this machine",
            ));
        };
        let _ = slot;
        let wanted =
            u32::try_from(hal::bytes_to_pages(u64::from(d.MaximumLength)) + 1).unwrap_or(u32::MAX);
        let granted = cfg
            .map_register_limit
            .map_or(wanted, |l| wanted.min(l))
            .max(1);
        if cfg.profile.verifier {
            let outstanding = st
                .hal
                .adapters
                .values()
                .filter(|a| !a.released && a.pdo == PhysicalDeviceObject as usize)
                .count();
            if outstanding >= 8 {
                return Err(BugCheck::dma(
                    0x11,
                    outstanding as u64 + 1,
                    PhysicalDeviceObject as u64,
                    0,
                    "too many outstanding DMA adapter references for one device",
                    "windows-dma.md §5.2",
                ));
            }
        }
        let version = d.Version.max(1);
        let adapter = Box::into_raw(Box::new(_DMA_ADAPTER {
            Version: 1,
            Size: u16::try_from(core::mem::size_of::<_DMA_ADAPTER>()).unwrap_or(u16::MAX),
            DmaOperations: hal::ops::table(version),
        }));
        st.hal.adapters.insert(
            adapter as usize,
            hal::Adapter::new(version, width, granted, PhysicalDeviceObject as usize),
        );
        Ok(Some((adapter, granted)))
    });
    match granted {
        Some((adapter, n)) => {
            // SAFETY: non-null (checked) and points to the caller's ULONG.
            unsafe { NumberOfMapRegisters.write(n) };
            adapter
        }
        None => core::ptr::null_mut(),
    }
}

/// Keeps `c_void` referenced for the mirrored signatures above.
const _: Option<*mut c_void> = None;
