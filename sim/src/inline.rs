//! The WDK's inline functions and function-like macros that the driver and the tests need.
//!
//! wdk-sys generates none of them (bindgen emits no `FORCEINLINE` body and no function-like
//! macro), so they are not in [`crate::ntddk`], which holds exactly what `wdk_sys::ntddk` holds
//! (checked by `crate::conformance`). The driver's `sys.rs` carries its own equivalents for
//! Windows and calls these on the simulated machine.
//!
//! - `KeRaiseIrql`/`KeLowerIrql` (CR8 writes on x64) and `KeInitializeSpinLock` (`*SpinLock = 0`);
//! - `KeFlushIoBuffers`: an empty macro on x64; a kernel routine on ARM64, which the
//!   `noncoherent` profile models (processor-cache maintenance for DMA);
//! - `MmGetSystemAddressForMdlSafe` and the MDL accessor macros.

#![expect(non_snake_case, reason = "mirrors the C routine and parameter names")]

use crate::bugcheck::BugCheck;
use crate::machine::{irql, set_irql, with_state};
use crate::ntddk::{MmMapLockedPagesSpecifyCache, check_max, known_mdl, mdl_header};
use crate::typed::{DISPATCH_LEVEL, MDL_MAPPED_TO_SYSTEM_VA, MDL_SOURCE_IS_NONPAGED_POOL};
use crate::types::{_MEMORY_CACHING_TYPE, BOOLEAN, KIRQL, PKIRQL, PKSPIN_LOCK, PMDL, PVOID, ULONG};

/// `VOID KeRaiseIrql(KIRQL NewIrql, PKIRQL OldIrql)`.
///
/// An inline (CR8) macro on x64 that wdk-sys does not generate; the driver's `sys.rs` provides it on Windows. Raising to a lower level is
/// 0xC4/0x30 (Driver Verifier).
///
/// # Safety
/// `OldIrql` must be writable.
pub unsafe fn KeRaiseIrql(NewIrql: KIRQL, OldIrql: PKIRQL) {
    let cur = irql();
    if NewIrql < cur {
        crate::machine::halt(BugCheck::new(
            0xC4,
            [0x30, u64::from(cur), u64::from(NewIrql), 0],
            "KeRaiseIrql to a level below the current IRQL",
            "docs/sim-fidelity.md",
        ));
    }
    // SAFETY: the caller passes a writable KIRQL.
    unsafe { OldIrql.write(cur) };
    set_irql(NewIrql);
}

/// `VOID KeLowerIrql(KIRQL NewIrql)` — inline on x64 (see [`KeRaiseIrql`]). Lowering to a higher
/// level is 0xC4/0x31.
///
/// # Safety
/// Pointer arguments must be valid as the WDK documents for this routine, and the caller
/// must run on a CPU of a [`crate::Machine`] (`Machine::run` or `Machine::enter`).
pub unsafe fn KeLowerIrql(NewIrql: KIRQL) {
    let cur = irql();
    if NewIrql > cur {
        crate::machine::halt(BugCheck::new(
            0xC4,
            [0x31, u64::from(cur), u64::from(NewIrql), 0],
            "KeLowerIrql to a level above the current IRQL",
            "docs/sim-fidelity.md",
        ));
    }
    set_irql(NewIrql);
}

/// `VOID KeInitializeSpinLock(PKSPIN_LOCK)` — inline (`*SpinLock = 0`) on x64, not generated.
///
/// # Safety
/// `SpinLock` must be writable.
pub unsafe fn KeInitializeSpinLock(SpinLock: PKSPIN_LOCK) {
    // SAFETY: the caller passes a writable KSPIN_LOCK.
    unsafe { SpinLock.write(0) };
}

/// `VOID KeFlushIoBuffers(PMDL Mdl, BOOLEAN ReadOperation, BOOLEAN DmaOperation)`: a no-op on
/// coherent x64 (windows-dma.md §4), with its IRQL rule enforced.
///
/// # Safety
/// Pointer arguments must be valid as the WDK documents for this routine, and the caller
/// must run on a CPU of a [`crate::Machine`] (`Machine::run` or `Machine::enter`).
pub unsafe fn KeFlushIoBuffers(Mdl: PMDL, ReadOperation: BOOLEAN, _DmaOperation: BOOLEAN) {
    check_max(DISPATCH_LEVEL, "KeFlushIoBuffers");
    with_state(|st, _| {
        known_mdl(st, Mdl, "KeFlushIoBuffers")?;
        // Coherent pages need nothing (x64: a no-op). On a non-coherent platform a read
        // (device→memory) invalidates the CPU caches over the buffer and a write cleans them
        // (windows-dma.md §4; simulator reading in docs/sim-fidelity.md).
        let mut mdl = Mdl;
        while !mdl.is_null() {
            let h = mdl_header(mdl);
            st.mem.cache_sync(
                h.StartVa as usize + h.ByteOffset as usize,
                h.ByteCount as usize,
                ReadOperation == 0,
            );
            mdl = h.Next;
        }
        Ok(())
    });
}

/// `MmGetSystemAddressForMdlSafe` is an inline function in `wdm.h` that wdk-sys does not generate;
/// this is its body, for the simulator's own tests (the driver's `sys.rs` carries its own).
///
/// # Safety
/// `mdl` must be a locked or non-paged-pool MDL.
#[must_use]
pub unsafe fn MmGetSystemAddressForMdlSafe(mdl: PMDL, priority: ULONG) -> PVOID {
    // SAFETY: `mdl` is a live MDL per the contract.
    let h = unsafe { core::ptr::read(mdl) };
    if i32::from(h.MdlFlags) & i32::from(MDL_MAPPED_TO_SYSTEM_VA | MDL_SOURCE_IS_NONPAGED_POOL) != 0
    {
        h.MappedSystemVa
    } else {
        // SAFETY: forwarded contract.
        unsafe {
            MmMapLockedPagesSpecifyCache(
                mdl,
                0,
                _MEMORY_CACHING_TYPE::MmCached,
                core::ptr::null_mut(),
                0,
                priority,
            )
        }
    }
}

/// The `wdm.h` MDL accessor macros, for the simulator's tests (the driver's `sys.rs` carries
/// its own, for both platforms).
pub mod mdl_macros {
    use super::{PMDL, PVOID, ULONG};

    /// `MmGetMdlVirtualAddress(Mdl)`.
    ///
    /// # Safety
    /// `mdl` must be a live MDL.
    #[must_use]
    pub unsafe fn MmGetMdlVirtualAddress(mdl: PMDL) -> PVOID {
        // SAFETY: per the contract.
        let h = unsafe { core::ptr::read(mdl) };
        (h.StartVa as usize + h.ByteOffset as usize) as PVOID
    }

    /// `MmGetMdlByteCount(Mdl)`.
    ///
    /// # Safety
    /// `mdl` must be a live MDL.
    #[must_use]
    pub unsafe fn MmGetMdlByteCount(mdl: PMDL) -> ULONG {
        // SAFETY: per the contract.
        unsafe { (*mdl).ByteCount }
    }

    /// `MmGetMdlByteOffset(Mdl)`.
    ///
    /// # Safety
    /// `mdl` must be a live MDL.
    #[must_use]
    pub unsafe fn MmGetMdlByteOffset(mdl: PMDL) -> ULONG {
        // SAFETY: per the contract.
        unsafe { (*mdl).ByteOffset }
    }
}
