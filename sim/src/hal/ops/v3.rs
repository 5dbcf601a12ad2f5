//! The version 3 routines: adapter information, transfer contexts and the `…Ex` forms of
//! channel allocation, mapping and flushing.

use super::{Ex, Level, common_buffer, prologue, run_channel, start_mapping};
use crate::bugcheck::BugCheck;
use crate::hal::PendingChannel;
use crate::hal::packet::{self, Channel};
use crate::machine::with_state;
use crate::typed::DISPATCH_LEVEL;
use crate::types::{
    _IO_ALLOCATION_ACTION, BOOLEAN, DMA_ADAPTER_INFO_V1, DMA_ADAPTER_INFO_VERSION1,
    DMA_SYNCHRONOUS_CALLBACK, DMA_TRANSFER_CONTEXT_SIZE_V1, DMA_TRANSFER_INFO_V1,
    DMA_TRANSFER_INFO_V2, DMA_TRANSFER_INFO_VERSION1, DMA_TRANSFER_INFO_VERSION2,
    IO_ALLOCATION_ACTION, NODE_REQUIREMENT, PDEVICE_OBJECT, PDMA_ADAPTER, PDMA_ADAPTER_INFO,
    PDMA_COMPLETION_ROUTINE, PDMA_TRANSFER_INFO, PDRIVER_CONTROL, PDRIVER_LIST_CONTROL,
    PHYSICAL_ADDRESS, PMDL, PPHYSICAL_ADDRESS, PSCATTER_GATHER_LIST, PULONG, PVOID, ULONG,
    ULONGLONG,
};
use crate::{
    NTSTATUS, STATUS_CANCELLED, STATUS_INSUFFICIENT_RESOURCES, STATUS_INVALID_PARAMETER,
    STATUS_NOT_SUPPORTED, STATUS_SUCCESS,
};

// ---- version 3 ----

pub(super) unsafe extern "C" fn get_dma_adapter_info(
    a: PDMA_ADAPTER,
    info: PDMA_ADAPTER_INFO,
) -> NTSTATUS {
    let (width, granted) = with_state(|st, _| {
        let key = prologue(st, a, Level::Max(DISPATCH_LEVEL), "GetDmaAdapterInfo")?;
        let ad = &st.hal.adapters[&key];
        Ok((ad.width, ad.granted))
    });
    if info.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    // SAFETY: `info` is non-null and points to the caller's DMA_ADAPTER_INFO.
    let version = unsafe { (*info).Version };
    if version != DMA_ADAPTER_INFO_VERSION1 {
        return STATUS_NOT_SUPPORTED;
    }
    let v1 = DMA_ADAPTER_INFO_V1 {
        ReadDmaCounterAvailable: 0,
        ScatterGatherLimit: granted,
        DmaAddressWidth: width,
        Flags: 0,
        MinimumTransferUnit: 1,
    };
    // SAFETY: as above: `info` is valid and exclusively the caller's for this call.
    let info = unsafe { &mut *info };
    // Version 1 defines the V1 member.
    info.__bindgen_anon_1.V1 = v1;
    STATUS_SUCCESS
}

pub(super) unsafe extern "C" fn get_dma_transfer_info(
    a: PDMA_ADAPTER,
    mdl: PMDL,
    offset: ULONGLONG,
    length: ULONG,
    _write_only: BOOLEAN,
    info: PDMA_TRANSFER_INFO,
) -> NTSTATUS {
    let regs = with_state(|st, _| {
        prologue(st, a, Level::Max(DISPATCH_LEVEL), "GetDmaTransferInfo")?;
        let Some(m) = st.mem.mdl(mdl as usize) else {
            return Ok(None);
        };
        let total = u64::from(m.ByteCount);
        if offset >= total || length == 0 || u64::from(length) > total - offset {
            return Ok(None);
        }
        let va = m.StartVa as usize
            + m.ByteOffset as usize
            + usize::try_from(offset).unwrap_or(usize::MAX);
        Ok(Some(crate::hal::span_pages(va, length as usize)))
    });
    let Some(regs) = regs else {
        return STATUS_INVALID_PARAMETER;
    };
    if info.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    // SAFETY: `info` is non-null and points to the caller's DMA_TRANSFER_INFO.
    let version = unsafe { (*info).Version };
    let regs = u32::try_from(regs).unwrap_or(u32::MAX);
    let v2 = DMA_TRANSFER_INFO_V2 {
        MapRegisterCount: regs,
        ScatterGatherElementCount: regs,
        ScatterGatherListSize: 16 + 24 * regs,
        LogicalPageCount: regs,
    };
    // SAFETY: `info` is valid (above) and exclusively the caller's for this call.
    let info = unsafe { &mut *info };
    match version {
        DMA_TRANSFER_INFO_VERSION1 => {
            info.__bindgen_anon_1.V1 = DMA_TRANSFER_INFO_V1 {
                MapRegisterCount: regs,
                ScatterGatherElementCount: regs,
                ScatterGatherListSize: 16 + 24 * regs,
            };
        }
        DMA_TRANSFER_INFO_VERSION2 => info.__bindgen_anon_1.V2 = v2,
        _ => return STATUS_NOT_SUPPORTED,
    }
    STATUS_SUCCESS
}

pub(super) unsafe extern "C" fn initialize_dma_transfer_context(
    a: PDMA_ADAPTER,
    context: PVOID,
) -> NTSTATUS {
    if context.is_null() {
        with_state(|st, _| {
            prologue(
                st,
                a,
                Level::Max(DISPATCH_LEVEL),
                "InitializeDmaTransferContext",
            )
            .map(|_| ())
        });
        return STATUS_INVALID_PARAMETER;
    }
    // SAFETY: the caller supplies DMA_TRANSFER_CONTEXT_SIZE_V1 writable bytes.
    unsafe {
        core::ptr::write_bytes(
            context.cast::<u8>(),
            0,
            DMA_TRANSFER_CONTEXT_SIZE_V1 as usize,
        );
    }
    with_state(|st, _| {
        let key = prologue(
            st,
            a,
            Level::Max(DISPATCH_LEVEL),
            "InitializeDmaTransferContext",
        )?;
        let ad = st.hal.adapters.get_mut(&key).expect("checked adapter");
        ad.contexts
            .insert(context as usize, crate::hal::TransferContext::default());
        Ok(())
    });
    STATUS_SUCCESS
}

pub(super) unsafe extern "C" fn allocate_common_buffer_ex(
    a: PDMA_ADAPTER,
    max: PPHYSICAL_ADDRESS,
    length: ULONG,
    logical: PPHYSICAL_ADDRESS,
    cache: BOOLEAN,
    _node: NODE_REQUIREMENT,
) -> PVOID {
    let max = if max.is_null() {
        None
    } else {
        // SAFETY: a non-null MaximumAddress points to the caller's PHYSICAL_ADDRESS.
        let m = unsafe { max.read() };
        // SAFETY: every bit pattern of the union is a valid LONGLONG.
        Some(unsafe { m.QuadPart }.cast_unsigned())
    };
    common_buffer(a, max, length, logical, cache, "AllocateCommonBufferEx")
}

pub(super) unsafe extern "C" fn allocate_adapter_channel_ex(
    a: PDMA_ADAPTER,
    device: PDEVICE_OBJECT,
    transfer_context: PVOID,
    registers: ULONG,
    flags: ULONG,
    routine: PDRIVER_CONTROL,
    context: PVOID,
    base_out: *mut PVOID,
) -> NTSTATUS {
    let sync = flags & DMA_SYNCHRONOUS_CALLBACK != 0;
    let decided = with_state(|st, cfg| {
        let key = prologue(
            st,
            a,
            Level::Exact(DISPATCH_LEVEL),
            "AllocateAdapterChannelEx",
        )?;
        // windows-dma.md §2.4: a routine excludes MapRegisterBase; without a routine the call
        // must be synchronous and return MapRegisterBase.
        let valid = flags & !DMA_SYNCHRONOUS_CALLBACK == 0
            && if routine.is_some() {
                base_out.is_null()
            } else {
                sync && !base_out.is_null()
            };
        if !valid {
            return Ok(Err(STATUS_INVALID_PARAMETER));
        }
        let ad = st.hal.adapters.get_mut(&key).expect("checked adapter");
        let Some(tc) = ad.contexts.get_mut(&(transfer_context as usize)) else {
            return Ok(Err(STATUS_INVALID_PARAMETER));
        };
        if tc.busy {
            return Ok(Err(STATUS_INVALID_PARAMETER));
        }
        if tc.precancelled {
            tc.precancelled = false;
            return Ok(Err(STATUS_CANCELLED));
        }
        let req = PendingChannel {
            device: device as usize,
            registers,
            routine,
            context: context as usize,
            transfer_context: transfer_context as usize,
        };
        Ok(
            match packet::allocate_channel(&mut st.hal, cfg, key, req, sync)? {
                Channel::Run(base) if routine.is_none() => {
                    packet::hold_object(&mut st.hal, key, base)?;
                    Ok(Some((key, req, base, false)))
                }
                Channel::Run(base) => Ok(Some((key, req, base, true))),
                Channel::Queued => {
                    if let Some(tc) = st
                        .hal
                        .adapters
                        .get_mut(&key)
                        .and_then(|ad| ad.contexts.get_mut(&(transfer_context as usize)))
                    {
                        tc.busy = true;
                    }
                    Ok(None)
                }
                Channel::TooMany => Err(STATUS_INSUFFICIENT_RESOURCES),
            },
        )
    });
    match decided {
        Err(status) => status,
        Ok(None) => STATUS_SUCCESS,
        Ok(Some((key, req, base, run))) => {
            if run {
                run_channel(key, req, base);
            } else {
                // SAFETY: checked non-null above; the caller's out pointer.
                unsafe { base_out.write(base as PVOID) };
            }
            STATUS_SUCCESS
        }
    }
}

pub(super) unsafe extern "C" fn configure_adapter_channel(
    a: PDMA_ADAPTER,
    _f: ULONG,
    _c: PVOID,
) -> NTSTATUS {
    // System-DMA adapters only (windows-dma.md §2.4).
    with_state(|st, _| {
        prologue(st, a, Level::Max(DISPATCH_LEVEL), "ConfigureAdapterChannel").map(|_| ())
    });
    STATUS_NOT_SUPPORTED
}

pub(super) unsafe extern "C" fn cancel_adapter_channel(
    a: PDMA_ADAPTER,
    _device: PDEVICE_OBJECT,
    transfer_context: PVOID,
) -> BOOLEAN {
    let cancelled = with_state(|st, _| {
        let key = prologue(st, a, Level::Max(DISPATCH_LEVEL), "CancelAdapterChannel")?;
        let ctx = transfer_context as usize;
        if packet::cancel_channel(&mut st.hal, key, ctx)? {
            if let Some(tc) = st
                .hal
                .adapters
                .get_mut(&key)
                .and_then(|ad| ad.contexts.get_mut(&ctx))
            {
                tc.busy = false;
            }
            return Ok(true);
        }
        let ad = st.hal.adapters.get_mut(&key).expect("checked adapter");
        if let Some(i) = ad.waiting.iter().position(|p| p.transfer_context == ctx) {
            // Still queued: it will never run.
            ad.waiting.remove(i);
            if let Some(tc) = ad.contexts.get_mut(&ctx) {
                tc.busy = false;
            }
            return Ok(true);
        }
        match ad.contexts.get_mut(&ctx) {
            // Not yet allocated: the next request on this context is cancelled in advance.
            Some(tc) if !tc.busy => {
                tc.precancelled = true;
                Ok(true)
            }
            _ => Ok(false),
        }
    });
    u8::from(cancelled)
}

pub(super) unsafe extern "C" fn map_transfer_ex(
    a: PDMA_ADAPTER,
    mdl: PMDL,
    base: PVOID,
    offset: ULONGLONG,
    device_offset: ULONG,
    length: PULONG,
    write: BOOLEAN,
    list: PSCATTER_GATHER_LIST,
    list_length: ULONG,
    completion: PDMA_COMPLETION_ROUTINE,
    _completion_context: PVOID,
) -> NTSTATUS {
    let mapped = with_state(|st, cfg| {
        let key = prologue(st, a, Level::Max(DISPATCH_LEVEL), "MapTransferEx")?;
        // Bus masters: a list buffer for at least one element, no completion routine, no
        // device offset (windows-dma.md §2.4, §10 rule 39).
        if length.is_null()
            || list.is_null()
            || (list_length as usize) < 16 + 24
            || completion.is_some()
            || device_offset != 0
            || mdl.is_null()
        {
            return Ok(None);
        }
        let Some(h) = st.mem.mdl(mdl as usize) else {
            return Ok(None);
        };
        // SAFETY: `length` is non-null and points to the caller's ULONG.
        let wanted = u64::from(unsafe { length.read() });
        if offset >= u64::from(h.ByteCount)
            || wanted == 0
            || wanted > u64::from(h.ByteCount) - offset
        {
            return Ok(None);
        }
        let va = h.StartVa as usize
            + h.ByteOffset as usize
            + usize::try_from(offset).unwrap_or(usize::MAX);
        let r = packet::map_transfer(
            &mut st.hal,
            &mut st.mem,
            cfg,
            key,
            mdl as usize,
            base as usize,
            va,
            usize::try_from(wanted).unwrap_or(usize::MAX),
            write != 0,
            true,
        )?;
        Ok(Some(r))
    });
    let Some((logical, n)) = mapped else {
        return STATUS_INVALID_PARAMETER;
    };
    // SAFETY: checked non-null and large enough for one element above.
    let header = unsafe { &mut *list };
    header.NumberOfElements = 1;
    // SAFETY: the buffer holds at least one element after the header.
    unsafe {
        header
            .Elements
            .as_mut_ptr()
            .write(crate::types::_SCATTER_GATHER_ELEMENT {
                Address: PHYSICAL_ADDRESS {
                    QuadPart: logical.cast_signed(),
                },
                Length: u32::try_from(n).unwrap_or(u32::MAX),
                Reserved: 0,
            });
    }
    // SAFETY: checked non-null above; MapTransferEx reports the bytes it mapped.
    unsafe { length.write(u32::try_from(n).unwrap_or(u32::MAX)) };
    STATUS_SUCCESS
}

pub(super) unsafe extern "C" fn get_scatter_gather_list_ex(
    a: PDMA_ADAPTER,
    device: PDEVICE_OBJECT,
    transfer_context: PVOID,
    mdl: PMDL,
    offset: ULONGLONG,
    length: ULONG,
    flags: ULONG,
    routine: PDRIVER_LIST_CONTROL,
    context: PVOID,
    write: BOOLEAN,
    completion: PDMA_COMPLETION_ROUTINE,
    _completion_context: PVOID,
    list: *mut PSCATTER_GATHER_LIST,
) -> NTSTATUS {
    start_ex(
        a,
        device,
        transfer_context,
        mdl,
        (offset, length, flags),
        routine,
        context,
        write,
        None,
        completion,
        list,
        (Level::Max(DISPATCH_LEVEL), "GetScatterGatherListEx"),
    )
}

/// The shared body of `GetScatterGatherListEx` and `BuildScatterGatherListEx`:
/// `range` is `(Offset, Length, Flags)`, `routine_of` the IRQL rule and name.
#[expect(
    clippy::too_many_arguments,
    reason = "mirrors the version 3 routines' parameters"
)]
pub(super) fn start_ex(
    a: PDMA_ADAPTER,
    device: PDEVICE_OBJECT,
    transfer_context: PVOID,
    mdl: PMDL,
    (offset, length, flags): (ULONGLONG, ULONG, ULONG),
    routine: PDRIVER_LIST_CONTROL,
    context: PVOID,
    write: BOOLEAN,
    buffer: Option<(usize, usize)>,
    completion: PDMA_COMPLETION_ROUTINE,
    list: *mut PSCATTER_GATHER_LIST,
    (level, name): (Level, &'static str),
) -> NTSTATUS {
    with_state(|st, _| prologue(st, a, level, name).map(|_| ()));
    let Some(va) = ex_va(mdl, offset, length, flags, completion) else {
        return STATUS_INVALID_PARAMETER;
    };
    let ex = Ex {
        sync: flags & DMA_SYNCHRONOUS_CALLBACK != 0,
        context: transfer_context as usize,
        out: list as usize,
    };
    start_mapping(
        a,
        device,
        mdl,
        va as PVOID,
        length,
        routine,
        context,
        write,
        buffer,
        level,
        Some(ex),
        name,
    )
}

/// The version 3 mapping routines' shared parameter checks: bus masters take no completion
/// routine, `Offset`/`Length` must lie in the MDL chain, and the only flag is
/// `DMA_SYNCHRONOUS_CALLBACK` (windows-dma.md §2.4, §10 rules 36, 38).
pub(super) fn ex_va(
    mdl: PMDL,
    offset: ULONGLONG,
    length: ULONG,
    flags: ULONG,
    completion: PDMA_COMPLETION_ROUTINE,
) -> Option<usize> {
    if completion.is_some()
        || flags & !DMA_SYNCHRONOUS_CALLBACK != 0
        || mdl.is_null()
        || length == 0
    {
        return None;
    }
    with_state(|st, _| {
        let Some(first) = st.mem.mdl(mdl as usize) else {
            return Ok(None);
        };
        // The chain's total length bounds Offset and Length; an unknown MDL in it is refused.
        let mut total = 0u64;
        let mut h = first;
        loop {
            total += u64::from(h.ByteCount);
            if h.Next.is_null() {
                break;
            }
            let Some(next) = st.mem.mdl(h.Next as usize) else {
                return Ok(None);
            };
            h = next;
        }
        if offset >= total || u64::from(length) > total - offset {
            return Ok(None);
        }
        Ok(usize::try_from(offset)
            .ok()
            .map(|o| first.StartVa as usize + first.ByteOffset as usize + o))
    })
}

pub(super) unsafe extern "C" fn build_scatter_gather_list_ex(
    a: PDMA_ADAPTER,
    device: PDEVICE_OBJECT,
    transfer_context: PVOID,
    mdl: PMDL,
    offset: ULONGLONG,
    length: ULONG,
    flags: ULONG,
    routine: PDRIVER_LIST_CONTROL,
    context: PVOID,
    write: BOOLEAN,
    buffer: PVOID,
    buffer_length: ULONG,
    completion: PDMA_COMPLETION_ROUTINE,
    _completion_context: PVOID,
    list: *mut PSCATTER_GATHER_LIST,
) -> NTSTATUS {
    if buffer.is_null() || !(buffer as usize).is_multiple_of(8) {
        with_state(|st, _| {
            prologue(
                st,
                a,
                Level::Exact(DISPATCH_LEVEL),
                "BuildScatterGatherListEx",
            )
            .map(|_| ())
        });
        return STATUS_INVALID_PARAMETER;
    }
    start_ex(
        a,
        device,
        transfer_context,
        mdl,
        (offset, length, flags),
        routine,
        context,
        write,
        Some((buffer as usize, buffer_length as usize)),
        completion,
        list,
        (Level::Exact(DISPATCH_LEVEL), "BuildScatterGatherListEx"),
    )
}

pub(super) unsafe extern "C" fn flush_adapter_buffers_ex(
    a: PDMA_ADAPTER,
    mdl: PMDL,
    base: PVOID,
    offset: ULONGLONG,
    length: ULONG,
    write: BOOLEAN,
) -> NTSTATUS {
    let done = with_state(|st, cfg| {
        let key = prologue(st, a, Level::Max(DISPATCH_LEVEL), "FlushAdapterBuffersEx")?;
        let Some(h) = st.mem.mdl(mdl as usize) else {
            return Ok(false);
        };
        if offset >= u64::from(h.ByteCount) {
            return Ok(false);
        }
        let va = h.StartVa as usize
            + h.ByteOffset as usize
            + usize::try_from(offset).unwrap_or(usize::MAX);
        packet::flush_adapter_buffers(
            &mut st.hal,
            &mut st.mem,
            cfg,
            key,
            mdl as usize,
            base as usize,
            va,
            length as usize,
            write != 0,
        )?;
        Ok(true)
    });
    if done {
        STATUS_SUCCESS
    } else {
        STATUS_INVALID_PARAMETER
    }
}

pub(super) unsafe extern "C" fn free_adapter_object(a: PDMA_ADAPTER, action: IO_ALLOCATION_ACTION) {
    with_state(|st, _| {
        let key = prologue(st, a, Level::Max(DISPATCH_LEVEL), "FreeAdapterObject")?;
        if action == _IO_ALLOCATION_ACTION::KeepObject {
            // KeepObject has no effect (windows-dma.md §2.4).
            return Ok(());
        }
        if packet::free_object(&mut st.hal, key, action)? {
            return Ok(());
        }
        let ad = st.hal.adapters.get_mut(&key).expect("checked adapter");
        if ad.held_objects == 0 {
            return Err(BugCheck::dma(
                0x04,
                1,
                key as u64,
                0,
                "FreeAdapterObject with no adapter object held",
                "windows-dma.md §5.2, §10 rule 37",
            ));
        }
        ad.held_objects -= 1;
        ad.counters.adapter_channels_freed += 1;
        Ok(())
    });
}

pub(super) unsafe extern "C" fn cancel_mapped_transfer(
    a: PDMA_ADAPTER,
    _transfer_context: PVOID,
) -> NTSTATUS {
    // System DMA only (windows-dma.md §2.4): a bus-master adapter has nothing to cancel.
    with_state(|st, _| {
        prologue(st, a, Level::Max(DISPATCH_LEVEL), "CancelMappedTransfer").map(|_| ())
    });
    STATUS_INVALID_PARAMETER
}
