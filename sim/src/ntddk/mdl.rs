//! MDLs: `IoAllocateMdl`/`IoFreeMdl`, building and locking (`MmBuildMdlForNonPagedPool`,
//! `MmProbeAndLockPages`, `MmUnlockPages`), partial MDLs, and system-space mappings of locked
//! pages.

#![expect(non_snake_case, reason = "mirrors the C routine and parameter names")]

use super::check_max;
use crate::bugcheck::{BugCheck, sim_rule};
use crate::hal;
use crate::machine::{irql, with_state};
use crate::mem::{MdlInfo, PAGE};
use crate::typed::{
    APC_LEVEL, DISPATCH_LEVEL, MDL_ALLOCATED_FIXED_SIZE, MDL_MAPPED_TO_SYSTEM_VA, MDL_PAGES_LOCKED,
    MDL_PARTIAL, MDL_SOURCE_IS_NONPAGED_POOL, MDL_WRITE_OPERATION,
};
use crate::types::{
    _LOCK_OPERATION, _MDL, BOOLEAN, KPROCESSOR_MODE, LOCK_OPERATION, MEMORY_CACHING_TYPE,
    PFN_NUMBER, PIRP, PMDL, PVOID, ULONG,
};

pub(crate) fn mdl_header(mdl: PMDL) -> _MDL {
    // SAFETY: callers pass MDLs the machine allocated (checked against its MDL table first).
    unsafe { core::ptr::read(mdl) }
}

pub(super) fn pfn_array(mdl: PMDL) -> *mut PFN_NUMBER {
    // SAFETY: the PFN array immediately follows the MDL header in the same allocation.
    unsafe { mdl.add(1).cast::<PFN_NUMBER>() }
}

pub(super) fn mdl_layout(pages: usize) -> std::alloc::Layout {
    std::alloc::Layout::from_size_align(core::mem::size_of::<_MDL>() + pages * 8, 8)
        .expect("MDL layout")
}

/// `PMDL IoAllocateMdl(PVOID VirtualAddress, ULONG Length, BOOLEAN SecondaryBuffer, BOOLEAN
/// ChargeQuota, PIRP Irp)`. `Irp` must be NULL (KMDF drivers never attach MDLs to IRPs here).
///
/// # Safety
/// Pointer arguments must be valid as the WDK documents for this routine, and the caller
/// must run on a CPU of a [`crate::Machine`] (`Machine::run` or `Machine::enter`).
#[must_use]
#[inline(never)]
pub unsafe fn IoAllocateMdl(
    VirtualAddress: PVOID,
    Length: ULONG,
    _SecondaryBuffer: BOOLEAN,
    _ChargeQuota: BOOLEAN,
    Irp: PIRP,
) -> PMDL {
    check_max(DISPATCH_LEVEL, "IoAllocateMdl");
    if Length == 0 || !Irp.is_null() {
        return core::ptr::null_mut();
    }
    let va = VirtualAddress as usize;
    let pages = usize::try_from(hal::span_pages(va, Length as usize)).unwrap_or(usize::MAX);
    let layout = mdl_layout(pages);
    // SAFETY: the layout is non-zero sized.
    let raw = unsafe { std::alloc::alloc_zeroed(layout) };
    #[expect(
        clippy::cast_ptr_alignment,
        reason = "allocated with the 8-byte alignment of _MDL"
    )]
    let mdl = raw.cast::<_MDL>();
    if mdl.is_null() {
        return mdl;
    }
    let header = _MDL {
        Next: core::ptr::null_mut(),
        Size: i16::try_from(layout.size()).unwrap_or(i16::MAX),
        MdlFlags: MDL_ALLOCATED_FIXED_SIZE,
        Process: core::ptr::null_mut(),
        MappedSystemVa: core::ptr::null_mut(),
        StartVa: (va & !(PAGE - 1)) as PVOID,
        ByteCount: Length,
        ByteOffset: u32::try_from(va & (PAGE - 1)).unwrap_or(0),
    };
    // SAFETY: `mdl` was just allocated with room for the header.
    unsafe { mdl.write(header) };
    with_state(|st, _| {
        st.mem.mdl_insert(
            mdl as usize,
            MdlInfo {
                layout_size: layout.size(),
                locked: false,
                partial: false,
            },
        );
        Ok(())
    });
    mdl
}

pub(crate) fn known_mdl(
    st: &crate::machine::State,
    mdl: PMDL,
    routine: &'static str,
) -> Result<(), BugCheck> {
    if mdl.is_null() || !st.mem.mdls.contains_key(&(mdl as usize)) {
        return Err(BugCheck::sim(
            sim_rule::BAD_MDL,
            mdl as u64,
            0,
            Box::leak(format!("{routine}: unknown or freed MDL").into_boxed_str()),
        ));
    }
    Ok(())
}

pub(super) fn fill_pfns(st: &crate::machine::State, mdl: PMDL) -> Result<(), BugCheck> {
    let h = mdl_header(mdl);
    let va = h.StartVa as usize + h.ByteOffset as usize;
    let pages = hal::span_pages(va, h.ByteCount as usize) as usize;
    for i in 0..pages {
        let page_va = h.StartVa as usize + i * PAGE;
        let pfn = st.mem.pfn_of(page_va).ok_or_else(|| {
            BugCheck::sim(
                sim_rule::BAD_ADDRESS,
                page_va as u64,
                mdl as u64,
                "MDL describes an address the machine does not map",
            )
        })?;
        // SAFETY: the PFN array has `pages` entries (IoAllocateMdl sized it from the same span).
        let slot = unsafe { pfn_array(mdl).add(i) };
        // SAFETY: `slot` is in bounds (above) and aligned (the array follows an 8-aligned header).
        unsafe { slot.write(pfn) };
    }
    Ok(())
}

/// `VOID MmBuildMdlForNonPagedPool(PMDL MemoryDescriptorList)`.
///
/// # Safety
/// Pointer arguments must be valid as the WDK documents for this routine, and the caller
/// must run on a CPU of a [`crate::Machine`] (`Machine::run` or `Machine::enter`).
#[inline(never)]
pub unsafe fn MmBuildMdlForNonPagedPool(MemoryDescriptorList: PMDL) {
    check_max(DISPATCH_LEVEL, "MmBuildMdlForNonPagedPool");
    let mdl = MemoryDescriptorList;
    with_state(|st, _| {
        known_mdl(st, mdl, "MmBuildMdlForNonPagedPool")?;
        let h = mdl_header(mdl);
        let va = h.StartVa as usize + h.ByteOffset as usize;
        if !st.mem.is_nonpaged(va, h.ByteCount as usize) {
            return Err(BugCheck::sim(
                sim_rule::NOT_NONPAGED,
                va as u64,
                mdl as u64,
                "MmBuildMdlForNonPagedPool on memory that is not non-paged system memory",
            ));
        }
        fill_pfns(st, mdl)?;
        // SAFETY: `mdl` is live (checked); updating its flags and mapping is what the routine does.
        let m = unsafe { &mut *mdl };
        m.MdlFlags |= MDL_SOURCE_IS_NONPAGED_POOL;
        m.MappedSystemVa = va as PVOID;
        Ok(())
    });
}

/// `VOID MmProbeAndLockPages(PMDL, KPROCESSOR_MODE, LOCK_OPERATION)`.
///
/// The machine has no structured exceptions: an invalid buffer stops the machine instead of
/// raising `STATUS_ACCESS_VIOLATION` (`docs/sim-fidelity.md`).
///
/// # Safety
/// Pointer arguments must be valid as the WDK documents for this routine, and the caller
/// must run on a CPU of a [`crate::Machine`] (`Machine::run` or `Machine::enter`).
#[inline(never)]
pub unsafe fn MmProbeAndLockPages(
    MemoryDescriptorList: PMDL,
    _AccessMode: KPROCESSOR_MODE,
    Operation: LOCK_OPERATION,
) {
    let mdl = MemoryDescriptorList;
    with_state(|st, _| {
        known_mdl(st, mdl, "MmProbeAndLockPages")?;
        let h = mdl_header(mdl);
        let va = h.StartVa as usize + h.ByteOffset as usize;
        let user = st.mem.is_user(va, h.ByteCount as usize);
        let max = if user { APC_LEVEL } else { DISPATCH_LEVEL };
        if irql() > max {
            return Err(BugCheck::new(
                crate::bugcheck::IRQL_NOT_LESS_OR_EQUAL,
                [0, u64::from(irql()), u64::from(max), 0],
                "MmProbeAndLockPages called above its maximum IRQL",
                "windows-dma.md §4",
            ));
        }
        if !user && !st.mem.is_nonpaged(va, h.ByteCount as usize) {
            return Err(BugCheck::sim(
                sim_rule::BAD_ADDRESS,
                va as u64,
                mdl as u64,
                "MmProbeAndLockPages on an address range the machine does not map",
            ));
        }
        if st.mem.mdls[&(mdl as usize)].locked {
            return Err(BugCheck::sim(
                sim_rule::LOCK_STATE,
                mdl as u64,
                0,
                "MmProbeAndLockPages on an MDL that is already locked",
            ));
        }
        fill_pfns(st, mdl)?;
        if let Some(i) = st.mem.mdls.get_mut(&(mdl as usize)) {
            i.locked = true;
        }
        // SAFETY: `mdl` is live; set the flags the routine sets.
        let m = unsafe { &mut *mdl };
        m.MdlFlags |= MDL_PAGES_LOCKED;
        if Operation != _LOCK_OPERATION::IoReadAccess {
            m.MdlFlags |= MDL_WRITE_OPERATION;
        }
        Ok(())
    });
}

/// `VOID MmUnlockPages(PMDL MemoryDescriptorList)`.
///
/// # Safety
/// Pointer arguments must be valid as the WDK documents for this routine, and the caller
/// must run on a CPU of a [`crate::Machine`] (`Machine::run` or `Machine::enter`).
///
/// # Panics
/// Never: the MDL table entry is checked before it is used.
#[inline(never)]
pub unsafe fn MmUnlockPages(MemoryDescriptorList: PMDL) {
    check_max(DISPATCH_LEVEL, "MmUnlockPages");
    let mdl = MemoryDescriptorList;
    with_state(|st, _| {
        known_mdl(st, mdl, "MmUnlockPages")?;
        if crate::hal::mdl_backs_common_buffer(&st.hal, mdl as usize) {
            return Err(BugCheck::sim(
                sim_rule::MDL_BACKS_COMMON_BUFFER,
                mdl as u64,
                0,
                "MmUnlockPages on an MDL whose pages back a live common buffer (FreeCommonBuffer first)",
            ));
        }
        let info = st.mem.mdls.get_mut(&(mdl as usize)).expect("checked");
        if !info.locked {
            return Err(BugCheck::sim(
                sim_rule::LOCK_STATE,
                mdl as u64,
                1,
                "MmUnlockPages on an MDL that is not locked",
            ));
        }
        info.locked = false;
        // SAFETY: `mdl` is live.
        unsafe {
            (*mdl).MdlFlags &= !(MDL_PAGES_LOCKED | MDL_MAPPED_TO_SYSTEM_VA | MDL_WRITE_OPERATION);
        }
        Ok(())
    });
}

/// `VOID IoBuildPartialMdl(PMDL SourceMdl, PMDL TargetMdl, PVOID VirtualAddress, ULONG Length)`.
/// A `Length` of 0 means "to the end of the source".
///
/// # Safety
/// Pointer arguments must be valid as the WDK documents for this routine, and the caller
/// must run on a CPU of a [`crate::Machine`] (`Machine::run` or `Machine::enter`).
#[inline(never)]
pub unsafe fn IoBuildPartialMdl(
    SourceMdl: PMDL,
    TargetMdl: PMDL,
    VirtualAddress: PVOID,
    Length: ULONG,
) {
    check_max(DISPATCH_LEVEL, "IoBuildPartialMdl");
    with_state(|st, _| {
        known_mdl(st, SourceMdl, "IoBuildPartialMdl")?;
        known_mdl(st, TargetMdl, "IoBuildPartialMdl")?;
        let s = mdl_header(SourceMdl);
        let s_va = s.StartVa as usize + s.ByteOffset as usize;
        let s_end = s_va + s.ByteCount as usize;
        let va = VirtualAddress as usize;
        let len = if Length == 0 {
            s_end.saturating_sub(va)
        } else {
            Length as usize
        };
        if va < s_va || va + len > s_end || len == 0 {
            return Err(BugCheck::sim(
                sim_rule::PARTIAL_OUTSIDE_SOURCE,
                va as u64,
                SourceMdl as u64,
                "IoBuildPartialMdl range lies outside the source MDL",
            ));
        }
        let t = mdl_header(TargetMdl);
        let pages = hal::span_pages(va, len) as usize;
        let capacity =
            (st.mem.mdls[&(TargetMdl as usize)].layout_size - core::mem::size_of::<_MDL>()) / 8;
        if pages > capacity {
            return Err(BugCheck::sim(
                sim_rule::PARTIAL_OUTSIDE_SOURCE,
                va as u64,
                TargetMdl as u64,
                "IoBuildPartialMdl target MDL too small for the range",
            ));
        }
        let first = (va & !(PAGE - 1)) - s.StartVa as usize;
        for i in 0..pages {
            // SAFETY: the source array covers the range (checked above).
            let from = unsafe { pfn_array(SourceMdl).add(first / PAGE + i) };
            // SAFETY: the target array has `capacity >= pages` entries.
            let to = unsafe { pfn_array(TargetMdl).add(i) };
            // SAFETY: `from` is an in-bounds, aligned PFN entry of a live MDL.
            let pfn = unsafe { from.read() };
            // SAFETY: `to` is an in-bounds, aligned PFN entry of another live MDL.
            unsafe { to.write(pfn) };
        }
        let mapped = i32::from(s.MdlFlags)
            & i32::from(MDL_MAPPED_TO_SYSTEM_VA | MDL_SOURCE_IS_NONPAGED_POOL)
            != 0;
        // SAFETY: `TargetMdl` is live; this is the header the routine writes.
        unsafe {
            TargetMdl.write(_MDL {
                Next: core::ptr::null_mut(),
                Size: t.Size,
                MdlFlags: MDL_ALLOCATED_FIXED_SIZE
                    | MDL_PARTIAL
                    | if mapped { MDL_MAPPED_TO_SYSTEM_VA } else { 0 },
                Process: s.Process,
                MappedSystemVa: if mapped {
                    va as PVOID
                } else {
                    core::ptr::null_mut()
                },
                StartVa: (va & !(PAGE - 1)) as PVOID,
                ByteCount: u32::try_from(len).unwrap_or(u32::MAX),
                ByteOffset: u32::try_from(va & (PAGE - 1)).unwrap_or(0),
            });
        }
        if let Some(i) = st.mem.mdls.get_mut(&(TargetMdl as usize)) {
            i.partial = true;
        }
        Ok(())
    });
}

/// `VOID IoFreeMdl(PMDL Mdl)`.
///
/// # Safety
/// Pointer arguments must be valid as the WDK documents for this routine, and the caller
/// must run on a CPU of a [`crate::Machine`] (`Machine::run` or `Machine::enter`).
///
/// # Panics
/// Never: the MDL table entry is checked before it is used.
#[inline(never)]
pub unsafe fn IoFreeMdl(Mdl: PMDL) {
    check_max(DISPATCH_LEVEL, "IoFreeMdl");
    let info = with_state(|st, _| {
        known_mdl(st, Mdl, "IoFreeMdl")?;
        if crate::hal::mdl_backs_common_buffer(&st.hal, Mdl as usize) {
            return Err(BugCheck::sim(
                sim_rule::MDL_BACKS_COMMON_BUFFER,
                Mdl as u64,
                1,
                "IoFreeMdl on an MDL whose pages back a live common buffer (FreeCommonBuffer first)",
            ));
        }
        if st.mem.mdls[&(Mdl as usize)].locked {
            return Err(BugCheck::sim(
                sim_rule::FREE_LOCKED_MDL,
                Mdl as u64,
                0,
                "IoFreeMdl on an MDL whose pages are still locked (MmUnlockPages first)",
            ));
        }
        Ok(st.mem.mdl_remove(Mdl as usize).expect("checked"))
    });
    // SAFETY: the MDL was allocated by IoAllocateMdl with this layout size and is freed once
    // (it was just removed from the table).
    unsafe {
        std::alloc::dealloc(
            Mdl.cast::<u8>(),
            std::alloc::Layout::from_size_align(info.layout_size, 8).expect("layout"),
        );
    }
}

/// `PVOID MmMapLockedPagesSpecifyCache(PMDL, KPROCESSOR_MODE, MEMORY_CACHING_TYPE, PVOID, …)`.
///
/// The system mapping `MmGetSystemAddressForMdlSafe` asks for. The machine's
/// system and user addresses coincide, so the mapping is the buffer's own address.
///
/// # Safety
/// Pointer arguments must be valid as the WDK documents for this routine, and the caller
/// must run on a CPU of a [`crate::Machine`] (`Machine::run` or `Machine::enter`).
#[inline(never)]
pub unsafe fn MmMapLockedPagesSpecifyCache(
    MemoryDescriptorList: PMDL,
    _AccessMode: KPROCESSOR_MODE,
    _CacheType: MEMORY_CACHING_TYPE,
    _RequestedAddress: PVOID,
    _BugCheckOnFailure: ULONG,
    _Priority: ULONG,
) -> PVOID {
    check_max(DISPATCH_LEVEL, "MmMapLockedPagesSpecifyCache");
    let mdl = MemoryDescriptorList;
    with_state(|st, _| {
        known_mdl(st, mdl, "MmMapLockedPagesSpecifyCache")?;
        let h = mdl_header(mdl);
        if i32::from(h.MdlFlags) & i32::from(MDL_PAGES_LOCKED | MDL_PARTIAL) == 0 {
            return Err(BugCheck::sim(
                sim_rule::LOCK_STATE,
                mdl as u64,
                2,
                "mapping an MDL whose pages are not locked",
            ));
        }
        let va = (h.StartVa as usize + h.ByteOffset as usize) as PVOID;
        // SAFETY: `mdl` is live.
        let m = unsafe { &mut *mdl };
        m.MappedSystemVa = va;
        m.MdlFlags |= MDL_MAPPED_TO_SYSTEM_VA;
        Ok(va)
    })
}

/// `VOID MmUnmapLockedPages(PVOID BaseAddress, PMDL MemoryDescriptorList)`.
///
/// # Safety
/// Pointer arguments must be valid as the WDK documents for this routine, and the caller
/// must run on a CPU of a [`crate::Machine`] (`Machine::run` or `Machine::enter`).
#[inline(never)]
pub unsafe fn MmUnmapLockedPages(_BaseAddress: PVOID, MemoryDescriptorList: PMDL) {
    check_max(DISPATCH_LEVEL, "MmUnmapLockedPages");
    let mdl = MemoryDescriptorList;
    with_state(|st, _| {
        known_mdl(st, mdl, "MmUnmapLockedPages")?;
        // SAFETY: `mdl` is live.
        unsafe { (*mdl).MdlFlags &= !MDL_MAPPED_TO_SYSTEM_VA };
        Ok(())
    });
}
