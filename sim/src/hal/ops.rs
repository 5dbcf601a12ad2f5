//! The `DMA_OPERATIONS` routines and the three tables `IoGetDmaAdapter` hands out (version 1,
//! 2 and 3; members beyond a table's `Size` are `None`).
//!
//! Every routine first checks the adapter (NULL: E6/0x19; released: E6/0x18) and its documented
//! IRQL (E6/0x13; windows-dma.md §2.1 table), then does its work under the machine lock, and
//! calls driver callbacks only after releasing it, at `DISPATCH_LEVEL`.
//!
//! Every member of the table is modelled; `docs/sim-fidelity.md` says how, and where the model
//! is an inference.

use core::mem::offset_of;

use super::packet::{self, Channel, PendingChannel};
use super::{MapOutcome, Pending, Request};
use crate::bugcheck::BugCheck;
use crate::machine::{State, at_dispatch, irql, with_state};
use crate::typed::{DISPATCH_LEVEL, PASSIVE_LEVEL, TRUE};
use crate::types::{
    _DMA_OPERATIONS, _IO_ALLOCATION_ACTION, BOOLEAN, DMA_ADAPTER_INFO_V1,
    DMA_ADAPTER_INFO_VERSION1, DMA_SYNCHRONOUS_CALLBACK, DMA_TRANSFER_CONTEXT_SIZE_V1,
    DMA_TRANSFER_INFO_V1, DMA_TRANSFER_INFO_V2, DMA_TRANSFER_INFO_VERSION1,
    DMA_TRANSFER_INFO_VERSION2, HANDLE, IO_ALLOCATION_ACTION, KIRQL, MEMORY_CACHING_TYPE,
    NODE_REQUIREMENT, PDEVICE_OBJECT, PDMA_ADAPTER, PDMA_ADAPTER_INFO,
    PDMA_COMMON_BUFFER_EXTENDED_CONFIGURATION, PDMA_COMMON_BUFFER_VECTOR, PDMA_COMPLETION_ROUTINE,
    PDMA_OPERATIONS, PDMA_TRANSFER_INFO, PDRIVER_CONTROL, PDRIVER_LIST_CONTROL, PHYSICAL_ADDRESS,
    PMDL, PPHYSICAL_ADDRESS, PSCATTER_GATHER_LIST, PULONG, PVOID, ULONG, ULONGLONG,
};
use crate::{
    NTSTATUS, STATUS_BUFFER_TOO_SMALL, STATUS_CANCELLED, STATUS_INSUFFICIENT_RESOURCES,
    STATUS_INVALID_PARAMETER, STATUS_NOT_SUPPORTED, STATUS_SUCCESS,
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

// ---- version 1 ----

unsafe extern "C" fn put_dma_adapter(a: PDMA_ADAPTER) {
    with_state(|st, _cfg| {
        let key = prologue(st, a, Level::Max(DISPATCH_LEVEL), "PutDmaAdapter")?;
        super::drain_quarantine(&mut st.hal, &mut st.mem)?;
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
            .filter(|f| f.holder != packet::Holder::Registers)
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

unsafe extern "C" fn allocate_common_buffer(
    a: PDMA_ADAPTER,
    length: ULONG,
    logical: PPHYSICAL_ADDRESS,
    cache: BOOLEAN,
) -> PVOID {
    common_buffer(a, None, length, logical, cache, "AllocateCommonBuffer")
}

fn common_buffer(
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
        if super::bytes_to_pages(u64::from(length)) > u64::from(st.hal.adapters[&key].granted) {
            return Ok(None);
        }
        if st.faults.common_buffer_fails() {
            return Ok(None);
        }
        Ok(super::alloc_common(
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

unsafe extern "C" fn free_common_buffer(
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
        super::free_common(
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

unsafe extern "C" fn allocate_adapter_channel(
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
fn run_channel(key: usize, req: PendingChannel, base: usize) {
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
enum Ready {
    List(Pending, usize),
    Channel(usize, PendingChannel, usize),
}

/// Maps the waiting scatter/gather requests that now fit (FIFO), then a waiting channel.
fn collect_ready(
    st: &mut State,
    cfg: &crate::machine::Config,
    key: usize,
) -> Result<Vec<Ready>, BugCheck> {
    let mut run = Vec::new();
    for p in super::dequeue_ready(&mut st.hal, key) {
        if let MapOutcome::Mapped(l) =
            super::map_request(&mut st.hal, &mut st.mem, cfg, key, &p.request)?
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

fn run_ready(ready: Vec<Ready>) {
    for r in ready {
        match r {
            Ready::List(p, l) => call_list_control(p.routine, p.device, l, p.context),
            Ready::Channel(key, p, base) => run_channel(key, p, base),
        }
    }
}

unsafe extern "C" fn flush_adapter_buffers(
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

unsafe extern "C" fn free_adapter_channel(a: PDMA_ADAPTER) {
    let ready = with_state(|st, cfg| {
        let key = prologue(st, a, Level::Exact(DISPATCH_LEVEL), "FreeAdapterChannel")?;
        packet::free_adapter_channel(&mut st.hal, key)?;
        collect_ready(st, cfg, key)
    });
    run_ready(ready);
}

unsafe extern "C" fn free_map_registers(a: PDMA_ADAPTER, base: PVOID, registers: ULONG) {
    let ready = with_state(|st, cfg| {
        let key = prologue(st, a, Level::Exact(DISPATCH_LEVEL), "FreeMapRegisters")?;
        packet::free_map_registers(&mut st.hal, key, base as usize, registers)?;
        collect_ready(st, cfg, key)
    });
    run_ready(ready);
}

unsafe extern "C" fn map_transfer(
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

unsafe extern "C" fn get_dma_alignment(a: PDMA_ADAPTER) -> ULONG {
    with_state(|st, cfg| {
        prologue(st, a, Level::Max(PASSIVE_LEVEL), "GetDmaAlignment")?;
        Ok(cfg.dma_alignment)
    })
}

unsafe extern "C" fn read_dma_counter(a: PDMA_ADAPTER) -> ULONG {
    // Only subordinate (system DMA) adapters have a counter; RHCA's adapters are bus masters.
    with_state(|st, _| {
        prologue(st, a, Level::Max(DISPATCH_LEVEL), "ReadDmaCounter")?;
        Ok(0)
    })
}

enum Start {
    Status(NTSTATUS),
    Run(usize, NTSTATUS),
    Return(usize),
}

/// The version 3 (`…ScatterGatherListEx`) parts of a mapping request.
#[derive(Debug, Clone, Copy)]
struct Ex {
    /// `DMA_SYNCHRONOUS_CALLBACK`: never queue; fail at once without resources.
    sync: bool,
    /// The `DmaTransferContext`.
    context: usize,
    /// Where to return the list when there is no execution routine.
    out: usize,
}

#[expect(
    clippy::too_many_arguments,
    reason = "mirrors GetScatterGatherList/BuildScatterGatherList"
)]
fn start_mapping(
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
        req.registers = super::check_request(&st.mem, &req)?;
        if req.registers > st.hal.adapters[&key].granted {
            return Ok(Start::Status(STATUS_INSUFFICIENT_RESOURCES));
        }
        if let Some((_, len)) = buffer
            && len < 16 + 24 * req.registers as usize
        {
            return Ok(Start::Status(STATUS_BUFFER_TOO_SMALL));
        }
        if !super::reserve_registers(&mut st.hal, key, req.registers) {
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
        match super::map_request(&mut st.hal, &mut st.mem, cfg, key, &req)? {
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
fn call_list_control(routine: PDRIVER_LIST_CONTROL, device: usize, list: usize, context: usize) {
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

unsafe extern "C" fn get_scatter_gather_list(
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

unsafe extern "C" fn put_scatter_gather_list(
    a: PDMA_ADAPTER,
    list: PSCATTER_GATHER_LIST,
    write: BOOLEAN,
) {
    let ready = with_state(|st, cfg| {
        let key = prologue(st, a, Level::Exact(DISPATCH_LEVEL), "PutScatterGatherList")?;
        super::put_map(
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

// ---- version 2 ----

unsafe extern "C" fn calculate_scatter_gather_list(
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
            super::bytes_to_pages(u64::from(length)) + 1
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
            u64::from(super::check_request(&st.mem, &req)?)
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

unsafe extern "C" fn build_scatter_gather_list(
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

unsafe extern "C" fn build_mdl_from_scatter_gather_list(
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

// ---- version 3 ----

unsafe extern "C" fn get_dma_adapter_info(a: PDMA_ADAPTER, info: PDMA_ADAPTER_INFO) -> NTSTATUS {
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

unsafe extern "C" fn get_dma_transfer_info(
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
        Ok(Some(super::span_pages(va, length as usize)))
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

unsafe extern "C" fn initialize_dma_transfer_context(a: PDMA_ADAPTER, context: PVOID) -> NTSTATUS {
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
            .insert(context as usize, super::TransferContext::default());
        Ok(())
    });
    STATUS_SUCCESS
}

unsafe extern "C" fn allocate_common_buffer_ex(
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

unsafe extern "C" fn allocate_adapter_channel_ex(
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

unsafe extern "C" fn configure_adapter_channel(a: PDMA_ADAPTER, _f: ULONG, _c: PVOID) -> NTSTATUS {
    // System-DMA adapters only (windows-dma.md §2.4).
    with_state(|st, _| {
        prologue(st, a, Level::Max(DISPATCH_LEVEL), "ConfigureAdapterChannel").map(|_| ())
    });
    STATUS_NOT_SUPPORTED
}

unsafe extern "C" fn cancel_adapter_channel(
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

unsafe extern "C" fn map_transfer_ex(
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

unsafe extern "C" fn get_scatter_gather_list_ex(
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
fn start_ex(
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
fn ex_va(
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

unsafe extern "C" fn build_scatter_gather_list_ex(
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

unsafe extern "C" fn flush_adapter_buffers_ex(
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

unsafe extern "C" fn free_adapter_object(a: PDMA_ADAPTER, action: IO_ALLOCATION_ACTION) {
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

unsafe extern "C" fn cancel_mapped_transfer(a: PDMA_ADAPTER, _transfer_context: PVOID) -> NTSTATUS {
    // System DMA only (windows-dma.md §2.4): a bus-master adapter has nothing to cancel.
    with_state(|st, _| {
        prologue(st, a, Level::Max(DISPATCH_LEVEL), "CancelMappedTransfer").map(|_| ())
    });
    STATUS_INVALID_PARAMETER
}

// ---- Windows 10 and later ----

unsafe extern "C" fn allocate_domain_common_buffer(
    a: PDMA_ADAPTER,
    _h: HANDLE,
    _m: PPHYSICAL_ADDRESS,
    _l: ULONG,
    _f: ULONG,
    _c: *mut MEMORY_CACHING_TYPE,
    _n: NODE_REQUIREMENT,
    _la: PPHYSICAL_ADDRESS,
    _va: *mut PVOID,
) -> NTSTATUS {
    // DMA domains are not modelled: the call fails as on a system without domain support.
    with_state(|st, _| {
        prologue(
            st,
            a,
            Level::Max(PASSIVE_LEVEL),
            "AllocateDomainCommonBuffer",
        )
        .map(|_| ())
    });
    STATUS_NOT_SUPPORTED
}

unsafe extern "C" fn flush_dma_buffer(
    a: PDMA_ADAPTER,
    mdl: PMDL,
    read_operation: BOOLEAN,
) -> NTSTATUS {
    let found = with_state(|st, _| {
        let key = prologue(st, a, Level::Max(DISPATCH_LEVEL), "FlushDmaBuffer")?;
        super::flush_dma_buffer(
            &mut st.hal,
            &mut st.mem,
            key,
            mdl as usize,
            read_operation != 0,
        )
    });
    if found {
        STATUS_SUCCESS
    } else {
        STATUS_INVALID_PARAMETER
    }
}

unsafe extern "C" fn join_dma_domain(a: PDMA_ADAPTER, _h: HANDLE) -> NTSTATUS {
    with_state(|st, _| prologue(st, a, Level::Max(PASSIVE_LEVEL), "JoinDmaDomain").map(|_| ()));
    STATUS_NOT_SUPPORTED
}

unsafe extern "C" fn leave_dma_domain(a: PDMA_ADAPTER) -> NTSTATUS {
    with_state(|st, _| prologue(st, a, Level::Max(PASSIVE_LEVEL), "LeaveDmaDomain").map(|_| ()));
    STATUS_NOT_SUPPORTED
}

unsafe extern "C" fn get_dma_domain(a: PDMA_ADAPTER) -> HANDLE {
    with_state(|st, _| prologue(st, a, Level::Max(PASSIVE_LEVEL), "GetDmaDomain").map(|_| ()));
    core::ptr::null_mut()
}

unsafe extern "C" fn allocate_common_buffer_with_bounds(
    a: PDMA_ADAPTER,
    _min: PPHYSICAL_ADDRESS,
    max: PPHYSICAL_ADDRESS,
    length: ULONG,
    _flags: ULONG,
    _c: *mut MEMORY_CACHING_TYPE,
    _n: NODE_REQUIREMENT,
    logical: PPHYSICAL_ADDRESS,
) -> PVOID {
    let max = if max.is_null() {
        None
    } else {
        // SAFETY: a non-null MaximumAddress points to the caller's PHYSICAL_ADDRESS.
        let m = unsafe { max.read() };
        // SAFETY: every bit pattern of the union is a valid LONGLONG.
        Some(unsafe { m.QuadPart }.cast_unsigned())
    };
    common_buffer(a, max, length, logical, 1, "AllocateCommonBufferWithBounds")
}

unsafe extern "C" fn allocate_common_buffer_vector(
    a: PDMA_ADAPTER,
    _l: PHYSICAL_ADDRESS,
    _h: PHYSICAL_ADDRESS,
    _c: MEMORY_CACHING_TYPE,
    _i: ULONG,
    _f: ULONG,
    _n: ULONG,
    _s: ULONGLONG,
    _v: *mut PDMA_COMMON_BUFFER_VECTOR,
) -> NTSTATUS {
    with_state(|st, _| {
        prologue(
            st,
            a,
            Level::Max(PASSIVE_LEVEL),
            "AllocateCommonBufferVector",
        )
        .map(|_| ())
    });
    STATUS_NOT_SUPPORTED
}

fn no_vector(a: PDMA_ADAPTER, index: ULONG) -> ! {
    with_state(|st, _| {
        check_adapter(st, a)?;
        Err::<(), _>(BugCheck::new(
            0x1DC,
            [0x03, 0, u64::from(index), 0],
            "common buffer vector index out of bounds: this machine never allocates vectors",
            "windows-dma.md §5.2",
        ))
    });
    unreachable!("with_state halts on Err")
}

unsafe extern "C" fn get_common_buffer_from_vector_by_index(
    a: PDMA_ADAPTER,
    _v: PDMA_COMMON_BUFFER_VECTOR,
    index: ULONG,
    _va: *mut PVOID,
    _la: PPHYSICAL_ADDRESS,
) {
    no_vector(a, index)
}

unsafe extern "C" fn free_common_buffer_from_vector(
    a: PDMA_ADAPTER,
    _v: PDMA_COMMON_BUFFER_VECTOR,
    index: ULONG,
) {
    no_vector(a, index)
}

unsafe extern "C" fn free_common_buffer_vector(a: PDMA_ADAPTER, _v: PDMA_COMMON_BUFFER_VECTOR) {
    no_vector(a, 0)
}

unsafe extern "C" fn create_common_buffer_from_mdl(
    a: PDMA_ADAPTER,
    mdl: PMDL,
    _configs: PDMA_COMMON_BUFFER_EXTENDED_CONFIGURATION,
    config_count: ULONG,
    logical: PPHYSICAL_ADDRESS,
) -> NTSTATUS {
    let made = with_state(|st, cfg| {
        let key = prologue(
            st,
            a,
            Level::Max(PASSIVE_LEVEL),
            "CreateCommonBufferFromMdl",
        )?;
        if mdl.is_null() || logical.is_null() {
            return Ok(Err(STATUS_INVALID_PARAMETER));
        }
        if config_count != 0 {
            // Extended configurations (bounds, subsections, access rights) are not modelled.
            return Ok(Err(STATUS_NOT_SUPPORTED));
        }
        super::common_from_mdl(&mut st.hal, &st.mem, cfg, key, mdl as usize)
    });
    match made {
        Ok((_, la)) => {
            // SAFETY: `logical` is non-null (checked) and points to the caller's PHYSICAL_ADDRESS.
            unsafe {
                logical.write(PHYSICAL_ADDRESS {
                    QuadPart: la.cast_signed(),
                });
            }
            STATUS_SUCCESS
        }
        Err(status) => status,
    }
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
