//! The `DMA_OPERATIONS` routines and the three tables `IoGetDmaAdapter` hands out (version 1,
//! 2 and 3; members beyond a table's `Size` are `None`).
//!
//! Every routine first checks the adapter (NULL: E6/0x19; released: E6/0x18) and its documented
//! IRQL (E6/0x13; windows-dma.md §2.1 table), then does its work under the machine lock, and
//! calls driver callbacks only after releasing it, at `DISPATCH_LEVEL`.
//!
//! Every member of the table is modelled; `docs/sim-fidelity.md` says how, and where the model
//! is an inference.
//!
//! This file holds the checks every routine starts with and the tables; the routines are in one
//! file per table version that added them: `v1`, `v2`, `v3` and `win10`.

use core::mem::offset_of;

use crate::bugcheck::BugCheck;
use crate::machine::{State, irql};
use crate::types::{_DMA_OPERATIONS, KIRQL, PDMA_ADAPTER, PDMA_OPERATIONS, ULONG};

mod v1;
mod v2;
mod v3;
mod win10;

use v1::{
    Ex, allocate_adapter_channel, allocate_common_buffer, common_buffer, flush_adapter_buffers,
    free_adapter_channel, free_common_buffer, free_map_registers, get_dma_alignment,
    get_scatter_gather_list, map_transfer, put_dma_adapter, put_scatter_gather_list,
    read_dma_counter, run_channel, start_mapping,
};
use v2::{
    build_mdl_from_scatter_gather_list, build_scatter_gather_list, calculate_scatter_gather_list,
};
use v3::{
    allocate_adapter_channel_ex, allocate_common_buffer_ex, build_scatter_gather_list_ex,
    cancel_adapter_channel, cancel_mapped_transfer, configure_adapter_channel,
    flush_adapter_buffers_ex, free_adapter_object, get_dma_adapter_info, get_dma_transfer_info,
    get_scatter_gather_list_ex, initialize_dma_transfer_context, map_transfer_ex,
};
use win10::{
    allocate_common_buffer_vector, allocate_common_buffer_with_bounds,
    allocate_domain_common_buffer, create_common_buffer_from_mdl, flush_dma_buffer,
    free_common_buffer_from_vector, free_common_buffer_vector,
    get_common_buffer_from_vector_by_index, get_dma_domain, join_dma_domain, leave_dma_domain,
};

/// An IRQL requirement from windows-dma.md §2.1.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Level {
    /// Must be called at exactly this IRQL.
    Exact(KIRQL),
    /// Must be called at or below this IRQL.
    Max(KIRQL),
}

/// Checks the caller's IRQL for a DMA routine (E6/0x13).
pub(crate) fn check_irql(level: Level, routine: &'static str) -> Result<(), BugCheck> {
    let cur = irql();
    match level {
        Level::Exact(want) if cur != want => Err(BugCheck::dma(
            0x13,
            1,
            u64::from(want),
            u64::from(cur),
            leak_name(
                "DMA routine called at an IRQL different from the one required",
                routine,
            ),
            "windows-dma.md §2.1, §10 rule 11",
        )),
        Level::Max(max) if cur > max => Err(BugCheck::dma(
            0x13,
            2,
            u64::from(max),
            u64::from(cur),
            leak_name("DMA routine called above its maximum IRQL", routine),
            "windows-dma.md §2.1, §10 rules 11-12",
        )),
        _ => Ok(()),
    }
}

/// Combines a rule and a routine name into a `'static` message (bug checks are rare and end
/// the machine, so the few bytes this leaks do not matter).
fn leak_name(rule: &str, routine: &str) -> &'static str {
    Box::leak(format!("{rule}: {routine}").into_boxed_str())
}

/// Checks the adapter pointer: NULL is E6/0x19, a released adapter E6/0x18.
pub(crate) fn check_adapter(st: &State, a: PDMA_ADAPTER) -> Result<usize, BugCheck> {
    if a.is_null() {
        return Err(BugCheck::dma(
            0x19,
            0,
            0,
            0,
            "NULL DMA_ADAPTER passed to a HAL DMA routine",
            "windows-dma.md §5.2, §10 rule 7",
        ));
    }
    let key = a as usize;
    match st.hal.adapters.get(&key) {
        None => Err(BugCheck::dma(
            0x19,
            key as u64,
            0,
            0,
            "pointer is not a DMA adapter of this machine",
            "windows-dma.md §5.2, §10 rule 7",
        )),
        Some(ad) if ad.released => Err(BugCheck::dma(
            0x18,
            key as u64,
            0,
            0,
            "used a DMA adapter after PutDmaAdapter",
            "windows-dma.md §5.2, §10 rule 8",
        )),
        Some(_) => Ok(key),
    }
}

fn prologue(
    st: &State,
    a: PDMA_ADAPTER,
    level: Level,
    routine: &'static str,
) -> Result<usize, BugCheck> {
    let key = check_adapter(st, a)?;
    check_irql(level, routine)?;
    Ok(key)
}

const FULL: _DMA_OPERATIONS = _DMA_OPERATIONS {
    Size: core::mem::size_of::<_DMA_OPERATIONS>() as ULONG,
    PutDmaAdapter: Some(put_dma_adapter),
    AllocateCommonBuffer: Some(allocate_common_buffer),
    FreeCommonBuffer: Some(free_common_buffer),
    AllocateAdapterChannel: Some(allocate_adapter_channel),
    FlushAdapterBuffers: Some(flush_adapter_buffers),
    FreeAdapterChannel: Some(free_adapter_channel),
    FreeMapRegisters: Some(free_map_registers),
    MapTransfer: Some(map_transfer),
    GetDmaAlignment: Some(get_dma_alignment),
    ReadDmaCounter: Some(read_dma_counter),
    GetScatterGatherList: Some(get_scatter_gather_list),
    PutScatterGatherList: Some(put_scatter_gather_list),
    CalculateScatterGatherList: Some(calculate_scatter_gather_list),
    BuildScatterGatherList: Some(build_scatter_gather_list),
    BuildMdlFromScatterGatherList: Some(build_mdl_from_scatter_gather_list),
    GetDmaAdapterInfo: Some(get_dma_adapter_info),
    GetDmaTransferInfo: Some(get_dma_transfer_info),
    InitializeDmaTransferContext: Some(initialize_dma_transfer_context),
    AllocateCommonBufferEx: Some(allocate_common_buffer_ex),
    AllocateAdapterChannelEx: Some(allocate_adapter_channel_ex),
    ConfigureAdapterChannel: Some(configure_adapter_channel),
    CancelAdapterChannel: Some(cancel_adapter_channel),
    MapTransferEx: Some(map_transfer_ex),
    GetScatterGatherListEx: Some(get_scatter_gather_list_ex),
    BuildScatterGatherListEx: Some(build_scatter_gather_list_ex),
    FlushAdapterBuffersEx: Some(flush_adapter_buffers_ex),
    FreeAdapterObject: Some(free_adapter_object),
    CancelMappedTransfer: Some(cancel_mapped_transfer),
    AllocateDomainCommonBuffer: Some(allocate_domain_common_buffer),
    FlushDmaBuffer: Some(flush_dma_buffer),
    JoinDmaDomain: Some(join_dma_domain),
    LeaveDmaDomain: Some(leave_dma_domain),
    GetDmaDomain: Some(get_dma_domain),
    AllocateCommonBufferWithBounds: Some(allocate_common_buffer_with_bounds),
    AllocateCommonBufferVector: Some(allocate_common_buffer_vector),
    GetCommonBufferFromVectorByIndex: Some(get_common_buffer_from_vector_by_index),
    FreeCommonBufferFromVector: Some(free_common_buffer_from_vector),
    FreeCommonBufferVector: Some(free_common_buffer_vector),
    CreateCommonBufferFromMdl: Some(create_common_buffer_from_mdl),
};

/// The version 3 table (Windows Server 2022: every member present).
static OPS_V3: _DMA_OPERATIONS = FULL;

/// The version 2 table: members from `GetDmaAdapterInfo` on are absent.
static OPS_V2: _DMA_OPERATIONS = _DMA_OPERATIONS {
    Size: offset_of!(_DMA_OPERATIONS, GetDmaAdapterInfo) as ULONG,
    GetDmaAdapterInfo: None,
    GetDmaTransferInfo: None,
    InitializeDmaTransferContext: None,
    AllocateCommonBufferEx: None,
    AllocateAdapterChannelEx: None,
    ConfigureAdapterChannel: None,
    CancelAdapterChannel: None,
    MapTransferEx: None,
    GetScatterGatherListEx: None,
    BuildScatterGatherListEx: None,
    FlushAdapterBuffersEx: None,
    FreeAdapterObject: None,
    CancelMappedTransfer: None,
    AllocateDomainCommonBuffer: None,
    FlushDmaBuffer: None,
    JoinDmaDomain: None,
    LeaveDmaDomain: None,
    GetDmaDomain: None,
    AllocateCommonBufferWithBounds: None,
    AllocateCommonBufferVector: None,
    GetCommonBufferFromVectorByIndex: None,
    FreeCommonBufferFromVector: None,
    FreeCommonBufferVector: None,
    CreateCommonBufferFromMdl: None,
    ..FULL
};

/// The version 1 table: members from `CalculateScatterGatherList` on are absent.
static OPS_V1: _DMA_OPERATIONS = _DMA_OPERATIONS {
    Size: offset_of!(_DMA_OPERATIONS, CalculateScatterGatherList) as ULONG,
    CalculateScatterGatherList: None,
    BuildScatterGatherList: None,
    BuildMdlFromScatterGatherList: None,
    ..OPS_V2
};

/// The table for a granted version (1, 2 or 3). Drivers never write through it.
pub(crate) fn table(version: u32) -> PDMA_OPERATIONS {
    let t: &'static _DMA_OPERATIONS = match version {
        0 | 1 => &OPS_V1,
        2 => &OPS_V2,
        _ => &OPS_V3,
    };
    core::ptr::from_ref(t).cast_mut()
}
