//! The version 2 routines: scatter/gather lists in driver-supplied buffers
//! (`CalculateScatterGatherList`, `BuildScatterGatherList`, `BuildMdlFromScatterGatherList`).

use super::{Level, check_adapter, prologue, start_mapping};
use crate::hal::Request;
use crate::machine::with_state;
use crate::typed::DISPATCH_LEVEL;
use crate::types::{
    BOOLEAN, PDEVICE_OBJECT, PDMA_ADAPTER, PDRIVER_LIST_CONTROL, PMDL, PSCATTER_GATHER_LIST,
    PULONG, PVOID, ULONG,
};
use crate::{NTSTATUS, STATUS_INSUFFICIENT_RESOURCES, STATUS_INVALID_PARAMETER, STATUS_SUCCESS};

// ---- version 2 ----

pub(super) unsafe extern "C" fn calculate_scatter_gather_list(
    a: PDMA_ADAPTER,
    mdl: PMDL,
    current_va: PVOID,
    length: ULONG,
    size: PULONG,
    registers: PULONG,
) -> NTSTATUS {
    let r = with_state(|st, _| {
        let key = check_adapter(st, a)?;
        let regs = if mdl.is_null() {
            crate::hal::bytes_to_pages(u64::from(length)) + 1
        } else {
            let req = Request {
                mdl: mdl as usize,
                current_va: current_va as usize,
                length: length as usize,
                write: false,
                buffer: None,
                registers: 0,
                v3: false,
            };
            u64::from(crate::hal::check_request(&st.mem, &req)?)
        };
        Ok((regs, st.hal.adapters[&key].granted))
    });
    let (regs, granted) = r;
    if size.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    let bytes = u32::try_from(16 + 24 * regs).unwrap_or(u32::MAX);
    // SAFETY: `size` is non-null and points to the caller's ULONG.
    unsafe { size.write(bytes) };
    if !registers.is_null() {
        // SAFETY: `registers` is non-null and points to the caller's ULONG.
        unsafe { registers.write(u32::try_from(regs).unwrap_or(u32::MAX)) };
    }
    if regs > u64::from(granted) {
        STATUS_INSUFFICIENT_RESOURCES
    } else {
        STATUS_SUCCESS
    }
}

pub(super) unsafe extern "C" fn build_scatter_gather_list(
    a: PDMA_ADAPTER,
    device: PDEVICE_OBJECT,
    mdl: PMDL,
    current_va: PVOID,
    length: ULONG,
    routine: PDRIVER_LIST_CONTROL,
    context: PVOID,
    write: BOOLEAN,
    buffer: PVOID,
    buffer_length: ULONG,
) -> NTSTATUS {
    with_state(|st, _| {
        prologue(
            st,
            a,
            Level::Exact(DISPATCH_LEVEL),
            "BuildScatterGatherList",
        )
        .map(|_| ())
    });
    if buffer.is_null() || !(buffer as usize).is_multiple_of(8) {
        return STATUS_INVALID_PARAMETER;
    }
    start_mapping(
        a,
        device,
        mdl,
        current_va,
        length,
        routine,
        context,
        write,
        Some((buffer as usize, buffer_length as usize)),
        Level::Exact(DISPATCH_LEVEL),
        None,
        "BuildScatterGatherList",
    )
}

pub(super) unsafe extern "C" fn build_mdl_from_scatter_gather_list(
    a: PDMA_ADAPTER,
    _list: PSCATTER_GATHER_LIST,
    original: PMDL,
    target: *mut PMDL,
) -> NTSTATUS {
    with_state(|st, _| {
        prologue(
            st,
            a,
            Level::Max(DISPATCH_LEVEL),
            "BuildMdlFromScatterGatherList",
        )
        .map(|_| ())
    });
    if original.is_null() || target.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    // "Reserved for system use" (windows-dma.md §2.4). The simulator supports the documented
    // case where the list describes the original buffer: the target is the original MDL.
    // SAFETY: `target` is non-null and points to the caller's PMDL.
    unsafe { target.write(original) };
    STATUS_SUCCESS
}
