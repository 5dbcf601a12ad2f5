//! The version 1 routines: adapters, common buffers, packet-based DMA (adapter channels, map
//! registers, `MapTransfer`), and `GetScatterGatherList`/`PutScatterGatherList`.

use super::{Level, prologue};
use crate::bugcheck::BugCheck;
use crate::hal::packet::{self, Channel};
use crate::hal::{Holder, PendingChannel};
use crate::hal::{MapOutcome, Pending, Request, check_request_pieces};
use crate::machine::{State, at_dispatch, with_state};
use crate::typed::{DISPATCH_LEVEL, PASSIVE_LEVEL, TRUE};
use crate::types::{
    BOOLEAN, PDEVICE_OBJECT, PDMA_ADAPTER, PDRIVER_CONTROL, PDRIVER_LIST_CONTROL, PHYSICAL_ADDRESS,
    PMDL, PPHYSICAL_ADDRESS, PSCATTER_GATHER_LIST, PULONG, PVOID, ULONG,
};
use crate::{
    NTSTATUS, STATUS_BUFFER_TOO_SMALL, STATUS_CANCELLED, STATUS_INSUFFICIENT_RESOURCES,
    STATUS_INVALID_PARAMETER, STATUS_SUCCESS,
};

// ---- version 1 ----

pub(super) unsafe extern "C" fn put_dma_adapter(a: PDMA_ADAPTER) {
    with_state(|st, _cfg| {
        let key = prologue(st, a, Level::Max(DISPATCH_LEVEL), "PutDmaAdapter")?;
        crate::hal::drain_quarantine(&mut st.hal, &mut st.mem)?;
        let ad = &st.hal.adapters[&key];
        if !ad.common.is_empty() {
            // Driver Verifier checks the padding of what is still allocated first: an overrun
            // is the more specific finding (E6/0x0F before E6/0x07).
            for (&va, cb) in &ad.common {
                cb.check_guards(&st.mem, va)?;
            }
            return Err(BugCheck::dma(
                0x07,
                key as u64,
                ad.common.len() as u64,
                0,
                "adapter released with outstanding common buffers",
                "windows-dma.md §5.2, §10 rule 9",
            ));
        }
        let channels = ad
            .files
            .values()
            .filter(|f| f.holder != Holder::Registers)
            .count()
            + usize::from(ad.waiting_channel.is_some());
        if channels > 0 {
            return Err(BugCheck::dma(
                0x08,
                key as u64,
                channels as u64,
                0,
                "adapter released with an outstanding adapter channel",
                "windows-dma.md §5.2, §10 rule 9",
            ));
        }
        if !ad.maps.is_empty() || !ad.waiting.is_empty() {
            return Err(BugCheck::dma(
                0x0A,
                key as u64,
                (ad.maps.len() + ad.waiting.len()) as u64,
                0,
                "adapter released with outstanding scatter/gather lists",
                "windows-dma.md §5.2, §10 rule 9",
            ));
        }
        if ad.held_objects > 0 {
            return Err(BugCheck::dma(
                0x08,
                key as u64,
                u64::from(ad.held_objects),
                0,
                "adapter released while an adapter object is held (FreeAdapterObject missing)",
                "windows-dma.md §5.2, §10 rule 37",
            ));
        }
        if ad.free_registers() < ad.granted {
            return Err(BugCheck::dma(
                0x09,
                key as u64,
                u64::from(ad.granted - ad.free_registers()),
                0,
                "adapter released with outstanding map registers",
                "windows-dma.md §5.2, §10 rule 9",
            ));
        }
        if let Some(ad) = st.hal.adapters.get_mut(&key) {
            ad.released = true;
        }
        Ok(())
    });
}

pub(super) unsafe extern "C" fn allocate_common_buffer(
    a: PDMA_ADAPTER,
    length: ULONG,
    logical: PPHYSICAL_ADDRESS,
    cache: BOOLEAN,
) -> PVOID {
    common_buffer(a, None, length, logical, cache, "AllocateCommonBuffer")
}

pub(super) fn common_buffer(
    a: PDMA_ADAPTER,
    max: Option<u64>,
    length: ULONG,
    logical: PPHYSICAL_ADDRESS,
    cache: BOOLEAN,
    routine: &'static str,
) -> PVOID {
    let got = with_state(|st, cfg| {
        let key = prologue(st, a, Level::Max(PASSIVE_LEVEL), routine)?;
        if length == 0 || logical.is_null() {
            return Ok(None);
        }
        // BYTES_TO_PAGES(Length) cannot exceed the map registers granted (windows-dma.md §2.4).
        if crate::hal::bytes_to_pages(u64::from(length)) > u64::from(st.hal.adapters[&key].granted)
        {
            return Ok(None);
        }
        if st.faults.common_buffer_fails() {
            return Ok(None);
        }
        Ok(crate::hal::alloc_common(
            &mut st.hal,
            &mut st.mem,
            cfg,
            key,
            length,
            max,
            cache,
        ))
    });
    match got {
        Some((va, la)) => {
            // SAFETY: `logical` is non-null (checked) and points to the caller's PHYSICAL_ADDRESS.
            unsafe {
                logical.write(PHYSICAL_ADDRESS {
                    QuadPart: la.cast_signed(),
                });
            }
            va as PVOID
        }
        None => core::ptr::null_mut(),
    }
}

pub(super) unsafe extern "C" fn free_common_buffer(
    a: PDMA_ADAPTER,
    length: ULONG,
    logical: PHYSICAL_ADDRESS,
    va: PVOID,
    cache: BOOLEAN,
) {
    with_state(|st, cfg| {
        let key = prologue(st, a, Level::Max(PASSIVE_LEVEL), "FreeCommonBuffer")?;
        // SAFETY: every bit pattern of the union is a valid LONGLONG.
        let la = unsafe { logical.QuadPart }.cast_unsigned();
        crate::hal::free_common(
            &mut st.hal,
            &mut st.mem,
            cfg,
            key,
            length,
            la,
            va as usize,
            cache,
        )
    });
}

pub(super) unsafe extern "C" fn allocate_adapter_channel(
    a: PDMA_ADAPTER,
    device: PDEVICE_OBJECT,
    registers: ULONG,
    routine: PDRIVER_CONTROL,
    context: PVOID,
) -> NTSTATUS {
    let decided = with_state(|st, cfg| {
        let key = prologue(
            st,
            a,
            Level::Exact(DISPATCH_LEVEL),
            "AllocateAdapterChannel",
        )?;
        if routine.is_none() {
            return Ok(Err(STATUS_INVALID_PARAMETER));
        }
        let req = PendingChannel {
            device: device as usize,
            registers,
            routine,
            context: context as usize,
            transfer_context: 0,
        };
        Ok(
            match packet::allocate_channel(&mut st.hal, cfg, key, req, false)? {
                Channel::Run(base) => Ok(Some((key, req, base))),
                Channel::Queued => Ok(None),
                Channel::TooMany => Err(STATUS_INSUFFICIENT_RESOURCES),
            },
        )
    });
    match decided {
        Err(status) => status,
        Ok(None) => STATUS_SUCCESS,
        Ok(Some((key, req, base))) => {
            run_channel(key, req, base);
            STATUS_SUCCESS
        }
    }
}

/// Runs a driver's `DRIVER_CONTROL` at `DISPATCH_LEVEL`, applies its `IO_ALLOCATION_ACTION`,
/// then starts whatever the released resources let run.
pub(super) fn run_channel(key: usize, req: PendingChannel, base: usize) {
    let Some(f) = req.routine else { return };
    let dev = req.device as PDEVICE_OBJECT;
    let irp = if dev.is_null() {
        core::ptr::null_mut()
    } else {
        // SAFETY: a non-null device object passed by the driver is a live DEVICE_OBJECT.
        unsafe { (*dev).CurrentIrp }
    };
    let action = at_dispatch(|| {
        // SAFETY: the driver's execution routine with the documented signature.
        unsafe { f(dev, irp, base as PVOID, req.context as PVOID) }
    });
    let ready = with_state(|st, cfg| {
        packet::after_execution(&mut st.hal, key, base, action)?;
        collect_ready(st, cfg, key)
    });
    run_ready(ready);
}

/// Work that freed map registers made possible, in the order it runs.
pub(super) enum Ready {
    List(Pending, usize),
    Channel(usize, PendingChannel, usize),
}

/// Maps the waiting scatter/gather requests that now fit (FIFO), then a waiting channel.
pub(super) fn collect_ready(
    st: &mut State,
    cfg: &crate::machine::Config,
    key: usize,
) -> Result<Vec<Ready>, BugCheck> {
    let mut run = Vec::new();
    for p in crate::hal::dequeue_ready(&mut st.hal, key) {
        if let MapOutcome::Mapped(l) =
            crate::hal::map_request(&mut st.hal, &mut st.mem, cfg, key, &p.request)?
        {
            if let Some(tc) = st
                .hal
                .adapters
                .get_mut(&key)
                .and_then(|ad| ad.contexts.get_mut(&p.transfer_context))
            {
                tc.busy = false;
            }
            run.push(Ready::List(p, l));
        } else {
            // Out of bounce memory: the request keeps waiting, at the head of the queue.
            let ad = st.hal.adapters.get_mut(&key).expect("checked adapter");
            ad.registers_in_use -= p.request.registers;
            ad.waiting.push_front(p);
            break;
        }
    }
    if let Some((p, base)) = packet::dequeue_channel(&mut st.hal, key)? {
        if let Some(tc) = st
            .hal
            .adapters
            .get_mut(&key)
            .and_then(|ad| ad.contexts.get_mut(&p.transfer_context))
        {
            tc.busy = false;
        }
        run.push(Ready::Channel(key, p, base));
    }
    Ok(run)
}

pub(super) fn run_ready(ready: Vec<Ready>) {
    for r in ready {
        match r {
            Ready::List(p, l) => call_list_control(p.routine, p.device, l, p.context),
            Ready::Channel(key, p, base) => run_channel(key, p, base),
        }
    }
}

pub(super) unsafe extern "C" fn flush_adapter_buffers(
    a: PDMA_ADAPTER,
    mdl: PMDL,
    base: PVOID,
    current_va: PVOID,
    length: ULONG,
    write: BOOLEAN,
) -> BOOLEAN {
    with_state(|st, cfg| {
        let key = prologue(st, a, Level::Max(DISPATCH_LEVEL), "FlushAdapterBuffers")?;
        packet::flush_adapter_buffers(
            &mut st.hal,
            &mut st.mem,
            cfg,
            key,
            mdl as usize,
            base as usize,
            current_va as usize,
            length as usize,
            write != 0,
        )
    });
    TRUE
}

pub(super) unsafe extern "C" fn free_adapter_channel(a: PDMA_ADAPTER) {
    let ready = with_state(|st, cfg| {
        let key = prologue(st, a, Level::Exact(DISPATCH_LEVEL), "FreeAdapterChannel")?;
        packet::free_adapter_channel(&mut st.hal, key)?;
        collect_ready(st, cfg, key)
    });
    run_ready(ready);
}

pub(super) unsafe extern "C" fn free_map_registers(a: PDMA_ADAPTER, base: PVOID, registers: ULONG) {
    let ready = with_state(|st, cfg| {
        let key = prologue(st, a, Level::Exact(DISPATCH_LEVEL), "FreeMapRegisters")?;
        packet::free_map_registers(&mut st.hal, key, base as usize, registers)?;
        collect_ready(st, cfg, key)
    });
    run_ready(ready);
}

pub(super) unsafe extern "C" fn map_transfer(
    a: PDMA_ADAPTER,
    mdl: PMDL,
    base: PVOID,
    current_va: PVOID,
    length: PULONG,
    write: BOOLEAN,
) -> PHYSICAL_ADDRESS {
    let (logical, mapped) = with_state(|st, cfg| {
        let key = prologue(st, a, Level::Max(DISPATCH_LEVEL), "MapTransfer")?;
        if length.is_null() {
            return Err(BugCheck::dma(
                0x21,
                current_va as u64,
                mdl as u64,
                0,
                "MapTransfer without a Length",
                "windows-dma.md §5.2",
            ));
        }
        // SAFETY: `length` is non-null and points to the caller's ULONG.
        let wanted = unsafe { length.read() } as usize;
        packet::map_transfer(
            &mut st.hal,
            &mut st.mem,
            cfg,
            key,
            mdl as usize,
            base as usize,
            current_va as usize,
            wanted,
            write != 0,
            false,
        )
    });
    // SAFETY: checked non-null above; MapTransfer reports the bytes it mapped.
    unsafe { length.write(u32::try_from(mapped).unwrap_or(u32::MAX)) };
    PHYSICAL_ADDRESS {
        QuadPart: logical.cast_signed(),
    }
}

pub(super) unsafe extern "C" fn get_dma_alignment(a: PDMA_ADAPTER) -> ULONG {
    with_state(|st, cfg| {
        prologue(st, a, Level::Max(PASSIVE_LEVEL), "GetDmaAlignment")?;
        Ok(cfg.dma_alignment)
    })
}

pub(super) unsafe extern "C" fn read_dma_counter(a: PDMA_ADAPTER) -> ULONG {
    // Only subordinate (system DMA) adapters have a counter; RHCA's adapters are bus masters.
    with_state(|st, _| {
        prologue(st, a, Level::Max(DISPATCH_LEVEL), "ReadDmaCounter")?;
        Ok(0)
    })
}

pub(super) enum Start {
    Status(NTSTATUS),
    Run(usize, NTSTATUS),
    Return(usize),
}

/// The version 3 (`…ScatterGatherListEx`) parts of a mapping request.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ex {
    /// `DMA_SYNCHRONOUS_CALLBACK`: never queue; fail at once without resources.
    pub(super) sync: bool,
    /// The `DmaTransferContext`.
    pub(super) context: usize,
    /// Where to return the list when there is no execution routine.
    pub(super) out: usize,
}

#[expect(
    clippy::too_many_arguments,
    reason = "mirrors GetScatterGatherList/BuildScatterGatherList"
)]
pub(super) fn start_mapping(
    a: PDMA_ADAPTER,
    device: PDEVICE_OBJECT,
    mdl: PMDL,
    current_va: PVOID,
    length: ULONG,
    routine: PDRIVER_LIST_CONTROL,
    context: PVOID,
    write: BOOLEAN,
    buffer: Option<(usize, usize)>,
    level: Level,
    ex: Option<Ex>,
    name: &'static str,
) -> NTSTATUS {
    let start = with_state(|st, cfg| {
        let key = prologue(st, a, level, name)?;
        if mdl.is_null() {
            return Ok(Start::Status(STATUS_INVALID_PARAMETER));
        }
        match ex {
            None if routine.is_none() => return Ok(Start::Status(STATUS_INVALID_PARAMETER)),
            // Without DMA_SYNCHRONOUS_CALLBACK an execution routine is required; with it and
            // without a routine, the list is returned through ScatterGatherList.
            Some(e) if routine.is_none() && (!e.sync || e.out == 0) => {
                return Ok(Start::Status(STATUS_INVALID_PARAMETER));
            }
            Some(e) => {
                let ad = st.hal.adapters.get_mut(&key).expect("checked adapter");
                let Some(tc) = ad.contexts.get_mut(&e.context) else {
                    // InitializeDmaTransferContext must come first (windows-dma.md §10 rule 35).
                    return Ok(Start::Status(STATUS_INVALID_PARAMETER));
                };
                if tc.busy {
                    return Ok(Start::Status(STATUS_INVALID_PARAMETER));
                }
                if tc.precancelled {
                    tc.precancelled = false;
                    return Ok(Start::Status(STATUS_CANCELLED));
                }
            }
            None => {}
        }
        let mut req = Request {
            mdl: mdl as usize,
            current_va: current_va as usize,
            length: length as usize,
            write: write != 0,
            buffer,
            registers: 0,
            v3: ex.is_some(),
        };
        let (registers, pieces) = check_request_pieces(&st.mem, &req, st.hal.take_pieces())?;
        req.registers = registers;
        if req.registers > st.hal.adapters[&key].granted {
            return Ok(Start::Status(STATUS_INSUFFICIENT_RESOURCES));
        }
        if let Some((_, len)) = buffer
            && len < 16 + 24 * req.registers as usize
        {
            return Ok(Start::Status(STATUS_BUFFER_TOO_SMALL));
        }
        if !crate::hal::reserve_registers(&mut st.hal, key, req.registers) {
            if ex.is_some_and(|e| e.sync) {
                return Ok(Start::Status(STATUS_INSUFFICIENT_RESOURCES));
            }
            let ad = st.hal.adapters.get_mut(&key).expect("checked adapter");
            ad.counters.requests_queued += 1;
            let transfer_context = ex.map_or(0, |e| e.context);
            if let Some(tc) = ad.contexts.get_mut(&transfer_context) {
                tc.busy = true;
            }
            ad.waiting.push_back(Pending {
                device: device as usize,
                request: req,
                routine,
                context: context as usize,
                transfer_context,
            });
            return Ok(Start::Status(STATUS_SUCCESS));
        }
        match crate::hal::map_request_pieces(&mut st.hal, &mut st.mem, cfg, key, &req, pieces)? {
            MapOutcome::Mapped(list) if routine.is_none() => {
                // Synchronous and routine-less: the caller holds the adapter object until
                // FreeAdapterObject.
                let ad = st.hal.adapters.get_mut(&key).expect("checked adapter");
                ad.held_objects += 1;
                Ok(Start::Return(list))
            }
            MapOutcome::Mapped(list) => Ok(Start::Run(list, STATUS_SUCCESS)),
            other => {
                let ad = st.hal.adapters.get_mut(&key).expect("checked adapter");
                ad.registers_in_use -= req.registers;
                Ok(Start::Status(
                    if matches!(other, MapOutcome::BufferTooSmall) {
                        STATUS_BUFFER_TOO_SMALL
                    } else {
                        STATUS_INSUFFICIENT_RESOURCES
                    },
                ))
            }
        }
    });
    match start {
        Start::Status(s) => s,
        Start::Return(list) => {
            let out = ex.map_or(0, |e| e.out) as *mut PSCATTER_GATHER_LIST;
            // SAFETY: checked non-null above; the caller's out pointer.
            unsafe { out.write(list as PSCATTER_GATHER_LIST) };
            STATUS_SUCCESS
        }
        Start::Run(list, s) => {
            if let Some(e) = ex
                && e.out != 0
            {
                // SAFETY: a non-null out pointer from the caller.
                unsafe { (e.out as *mut PSCATTER_GATHER_LIST).write(list as PSCATTER_GATHER_LIST) };
            }
            call_list_control(routine, device as usize, list, context as usize);
            s
        }
    }
}

/// Calls a driver's `DRIVER_LIST_CONTROL` at `DISPATCH_LEVEL` with `Irp = DeviceObject->CurrentIrp`.
pub(super) fn call_list_control(
    routine: PDRIVER_LIST_CONTROL,
    device: usize,
    list: usize,
    context: usize,
) {
    let Some(f) = routine else { return };
    let dev = device as PDEVICE_OBJECT;
    let irp = if dev.is_null() {
        core::ptr::null_mut()
    } else {
        // SAFETY: a non-null device object passed by the driver is a live DEVICE_OBJECT.
        unsafe { (*dev).CurrentIrp }
    };
    at_dispatch(|| {
        // SAFETY: the routine is the driver's execution routine with the documented signature;
        // the list stays valid until the driver puts it.
        unsafe { f(dev, irp, list as PSCATTER_GATHER_LIST, context as PVOID) }
    });
}

pub(super) unsafe extern "C" fn get_scatter_gather_list(
    a: PDMA_ADAPTER,
    device: PDEVICE_OBJECT,
    mdl: PMDL,
    current_va: PVOID,
    length: ULONG,
    routine: PDRIVER_LIST_CONTROL,
    context: PVOID,
    write: BOOLEAN,
) -> NTSTATUS {
    start_mapping(
        a,
        device,
        mdl,
        current_va,
        length,
        routine,
        context,
        write,
        None,
        Level::Exact(DISPATCH_LEVEL),
        None,
        "GetScatterGatherList",
    )
}

pub(super) unsafe extern "C" fn put_scatter_gather_list(
    a: PDMA_ADAPTER,
    list: PSCATTER_GATHER_LIST,
    write: BOOLEAN,
) {
    let ready = with_state(|st, cfg| {
        let key = prologue(st, a, Level::Exact(DISPATCH_LEVEL), "PutScatterGatherList")?;
        crate::hal::put_map(
            &mut st.hal,
            &mut st.mem,
            cfg,
            key,
            list as usize,
            write != 0,
        )?;
        collect_ready(st, cfg, key)
    });
    run_ready(ready);
}
