//! The KMDF callbacks: device add, `PnP` and power, the ISR and DPC, and the IOCTL queue. This
//! is the only place errors become `NTSTATUS` values.
//!
//! This file holds the device context, device add, the lock helpers and the IOCTL dispatch;
//! `pnp` prepares and releases the hardware and enters and leaves D0, `interrupt` is the ISR,
//! the DPC and the watchdog, `streams` the stream IOCTLs and the work item.
//!
//! Locking: the [`Hca`] lives in the device context behind one spin lock. `PnP` and power
//! callbacks, the DPC and the IOCTL handlers take it; the ISR never does (it runs at DIRQL and
//! reaches the registers through [`IsrRegs`]). Requests are completed after the lock is
//! released (`with_hca`), so a completion that lets the framework present a new request on
//! this CPU never finds the lock held.
//!
//! No `unsafe`: requests arrive as owned [`Request`] values through the trampolines of
//! [`crate::sys::wdf::RequestCallbacks`].

#![forbid(unsafe_code)]

mod interrupt;
mod pnp;
mod streams;

use interrupt::{evt_d0_entry_post_interrupts_enabled, evt_dpc, evt_isr, evt_watchdog};
use pnp::{evt_d0_entry, evt_d0_exit, evt_prepare_hardware, evt_release_hardware};

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use rhca_hw::ioctl::{self, Ioctl, QueryDeviceOut, RecvMadOut, SendMadIn};
use rhca_hw::regs::{self};

use crate::batch::Batch;
use crate::hca::stream::Outcome;
use crate::hca::{self, DONE_BATCH, Done, Hca, HcaError};
use crate::sys::wdf::init as wdf_init;
use crate::sys::wdf::{
    self, ContextType, ContextTypeInfo, Device, DeviceInit, File, Queue, Request, RequestCallbacks,
    Timer, WorkItem,
};
use crate::sys::{
    _WDF_DEVICE_IO_TYPE, _WDF_IO_QUEUE_DISPATCH_TYPE, _WDF_TRI_STATE, AtDispatch,
    FILE_DEVICE_SECURE_OPEN, GUID, IsrRegs, NTSTATUS, PWDFDEVICE_INIT, STATUS_ACCESS_DENIED,
    STATUS_BUFFER_TOO_SMALL, STATUS_CANCELLED, STATUS_DEVICE_BUSY, STATUS_DEVICE_HARDWARE_ERROR,
    STATUS_DEVICE_NOT_READY, STATUS_DEVICE_REMOVED, STATUS_INSUFFICIENT_RESOURCES,
    STATUS_INVALID_DEVICE_REQUEST, STATUS_INVALID_DEVICE_STATE, STATUS_INVALID_PARAMETER,
    STATUS_IO_DEVICE_ERROR, STATUS_IO_TIMEOUT, STATUS_NOT_SUPPORTED, STATUS_SUCCESS, SetOnce,
    SpinMutex, WDF_IO_QUEUE_CONFIG, WDF_PNPPOWER_EVENT_CALLBACKS, WDFDRIVER,
};
use crate::trace::{self, Value};

/// The device context, in the framework's context memory under its own name.
///
/// `!wdfkd.wdfdevice` lists it as `rhca::kmdf::DeviceCtx`, and `dx` shows the HCA (rings,
/// queues, streams, statistics), the framework objects and the interrupt counters.
#[derive(Debug, Default)]
pub struct DeviceCtx {
    /// The one lock: the running HCA and what outlives it.
    hca: SpinMutex<HcaSlot>,
    /// The registers as the ISR reaches them (lock-free; see [`IsrRegs`]).
    isr_regs: IsrRegs,
    /// The framework objects made in `EvtDriverDeviceAdd`, set once and read without a lock.
    objects: SetOnce<Objects>,
    /// Interrupt vectors granted at the last prepare-hardware (reported by `QUERY_DEVICE`).
    vectors: AtomicU32,
    interrupts: AtomicU64,
}

impl ContextType for DeviceCtx {
    fn type_info() -> &'static ContextTypeInfo {
        wdf::context_type!(DeviceCtx, c"rhca::kmdf::DeviceCtx")
    }
}

/// What the device lock guards.
#[derive(Debug, Default)]
struct HcaSlot {
    /// The running HCA, between prepare-hardware and release-hardware.
    hca: Option<Hca>,
    /// Statistics that outlive a stop/start (the HCA's own restart at each start), under the
    /// same lock so that `STATISTICS` adds the two from one snapshot.
    carried: ioctl::StatisticsOut,
}

/// The device's framework objects: made once in `EvtDriverDeviceAdd`, children of the device,
/// alive as long as it.
#[derive(Debug)]
struct Objects {
    /// The manual queue where `RECV_MAD` requests wait, oldest first.
    recv: Queue,
    /// One manual queue per stream engine, where `WAIT` requests wait for segments.
    waits: [Queue; regs::MAX_STREAM_ENGINES as usize],
    /// Releases ended streams at `PASSIVE_LEVEL`.
    work: WorkItem,
    /// The watchdog ([`evt_watchdog`]), running while the device is in D0.
    watchdog: Timer,
}

/// `MaximumLength` of the DMA adapter. Every mapping holds its map registers until it is put,
/// and the driver keeps up to `2 × RECV_DEPTH` receive buffers and a send ring of mappings
/// outstanding (each at most two pages): 2 MiB of registers covers them all, so posting never
/// waits on itself.
const ADAPTER_MAX_LENGTH: u32 = 2 * 1024 * 1024;

/// MSI-X vectors the MAD path uses: 0 (errors, port) and 1 (completion queues).
const INTERRUPT_VECTORS: u32 = 2;

fn ctx(device: Device) -> Option<&'static DeviceCtx> {
    device.context::<DeviceCtx>()
}

/// `EvtDriverDeviceAdd`. A failure is traced with the step that failed: the device then shows
/// Code 10 (or 31) with no other explanation.
pub extern "C" fn evt_device_add(_driver: WDFDRIVER, init: PWDFDEVICE_INIT) -> NTSTATUS {
    let mut stage = "create-device";
    let st = device_add(DeviceInit(init), &mut stage);
    if st != STATUS_SUCCESS {
        trace::emit(
            &trace::DEVICE_ADD_FAILED,
            &[Value::Str(stage), Value::Status(st)],
        );
    }
    st
}

/// `EvtDriverUnload`: the provider is unregistered last, after the last device is gone.
pub extern "C" fn evt_driver_unload(_driver: WDFDRIVER) {
    trace::unregister();
}

fn device_add(init: DeviceInit, stage: &mut &'static str) -> NTSTATUS {
    init.set_pnp_power(&WDF_PNPPOWER_EVENT_CALLBACKS {
        EvtDevicePrepareHardware: Some(evt_prepare_hardware),
        EvtDeviceReleaseHardware: Some(evt_release_hardware),
        EvtDeviceD0Entry: Some(evt_d0_entry),
        EvtDeviceD0EntryPostInterruptsEnabled: Some(evt_d0_entry_post_interrupts_enabled),
        EvtDeviceD0Exit: Some(evt_d0_exit),
        ..wdf_init::WDF_PNPPOWER_EVENT_CALLBACKS_INIT()
    });
    init.set_io_type(_WDF_DEVICE_IO_TYPE::WdfDeviceIoBuffered);
    init.set_file_callbacks(
        Some(wdf::evt_file_create::<Rhca>),
        Some(streams::evt_file_cleanup),
    );
    init.set_exclusive(false);
    // Opens of any name under the device object get the device's own security (the INF sets
    // an SDDL that admits administrators and SYSTEM only).
    init.add_characteristics(FILE_DEVICE_SECURE_OPEN);
    let device = match init.create(DeviceCtx::default()) {
        Ok(d) => d,
        Err(st) => return st,
    };
    *stage = "device-interface";
    let (d1, d2, d3, d4) = ioctl::DEVICE_INTERFACE_GUID;
    let guid = GUID {
        Data1: d1,
        Data2: d2,
        Data3: d3,
        Data4: d4,
    };
    if let Err(st) = device.create_interface(&guid) {
        return st;
    }
    *stage = "default-queue";
    let io = WDF_IO_QUEUE_CONFIG {
        EvtIoDeviceControl: Some(wdf::evt_io_device_control::<Rhca>),
        ..wdf_init::WDF_IO_QUEUE_CONFIG_INIT_DEFAULT_QUEUE(
            _WDF_IO_QUEUE_DISPATCH_TYPE::WdfIoQueueDispatchParallel,
        )
    };
    if let Err(st) = device.create_queue(&io) {
        return st;
    }
    *stage = "manual-queues";
    // Receive requests wait here, oldest first; the framework cancels them on handle close.
    let manual = WDF_IO_QUEUE_CONFIG {
        PowerManaged: _WDF_TRI_STATE::WdfFalse,
        ..wdf_init::WDF_IO_QUEUE_CONFIG_INIT(_WDF_IO_QUEUE_DISPATCH_TYPE::WdfIoQueueDispatchManual)
    };
    let recv = manual;
    let recv = match device.create_queue(&recv) {
        Ok(q) => q,
        Err(st) => return st,
    };
    // Stream WAIT requests wait in their engine's queue; the framework cancels them on handle
    // close.
    let mut waits = [recv; regs::MAX_STREAM_ENGINES as usize];
    for w in &mut waits {
        match device.create_queue(&manual) {
            Ok(q) => *w = q,
            Err(st) => return st,
        }
    }
    *stage = "work-item-and-timer";
    let work = match device.create_work_item(Some(streams::evt_stream_work)) {
        Ok(w) => w,
        Err(st) => return st,
    };
    let watchdog = match device.create_timer(Some(evt_watchdog), hca::WATCHDOG_PERIOD_MS) {
        Ok(t) => t,
        Err(st) => return st,
    };
    let objects = Objects {
        recv,
        waits,
        work,
        watchdog,
    };
    if ctx(device).is_none_or(|c| c.objects.set(objects).is_err()) {
        return STATUS_INVALID_DEVICE_STATE;
    }
    // One interrupt object per MSI-X vector the driver uses (docs/device.md §4): vector 0
    // carries errors and port events, vector 1 the completion queues. The framework connects
    // them to the message resources in order; with one message (or a line) every cause arrives
    // on the first, which handles them all.
    *stage = "interrupts";
    let interrupt = wdf_init::WDF_INTERRUPT_CONFIG_INIT(Some(evt_isr), Some(evt_dpc));
    for _ in 0..INTERRUPT_VECTORS {
        if let Err(st) = device.create_interrupt(&interrupt) {
            return st;
        }
    }
    STATUS_SUCCESS
}

/// The RHCA's request callbacks.
struct Rhca;

impl RequestCallbacks for Rhca {
    fn file_create(_device: Device, request: Request, _file: File) {
        request.complete(STATUS_SUCCESS, 0);
    }

    fn io_device_control(queue: Queue, req: Request, out_len: usize, in_len: usize, code: u32) {
        io_device_control(queue, req, out_len, in_len, code);
    }

    fn request_cancel(request: Request) {
        streams::start_cancel(request);
    }
}

/// The one place an HCA-layer error becomes the `NTSTATUS` the framework and the application
/// see.
pub(crate) const fn status_of(e: HcaError) -> NTSTATUS {
    match e {
        HcaError::NotReady => STATUS_DEVICE_NOT_READY,
        HcaError::Removed => STATUS_DEVICE_REMOVED,
        HcaError::Cancelled => STATUS_CANCELLED,
        HcaError::Timeout => STATUS_IO_TIMEOUT,
        HcaError::InvalidParameter => STATUS_INVALID_PARAMETER,
        HcaError::NotSupported | HcaError::UnsupportedDevice => STATUS_NOT_SUPPORTED,
        HcaError::NoResources | HcaError::Dma(_) => STATUS_INSUFFICIENT_RESOURCES,
        HcaError::Busy => STATUS_DEVICE_BUSY,
        HcaError::NoStream => STATUS_INVALID_DEVICE_STATE,
        HcaError::AccessDenied => STATUS_ACCESS_DENIED,
        HcaError::EngineRefused | HcaError::BringUpTimeout | HcaError::QueueRefused(_) => {
            STATUS_DEVICE_HARDWARE_ERROR
        }
        HcaError::DeviceError => STATUS_IO_DEVICE_ERROR,
    }
}

/// Completes `r` with a stream outcome and its `Information`.
pub(crate) fn complete_outcome(r: Request, outcome: Outcome, info: usize) {
    r.complete(outcome.map_or_else(status_of, |()| STATUS_SUCCESS), info);
}

/// Writes a finished send's reply and completes it. Call without the device lock.
fn finish_done(d: Done) {
    d.request.complete_with(d.result.map_err(status_of));
}

/// Runs `f` on the HCA with the lock held and the `DISPATCH_LEVEL` proof it gives, then
/// completes the requests it finished, after the lock is released.
fn with_hca<R>(c: &DeviceCtx, f: impl FnOnce(&mut Hca, &AtDispatch<'_>) -> R) -> Option<R> {
    let (r, done) = c.hca.with(|s, at| {
        s.hca.as_mut().map_or_else(
            || (None, None),
            |h| {
                let r = f(h, at);
                (Some(r), h.take_done())
            },
        )
    });
    complete_done(c, done);
    r
}

/// As [`with_hca`] for work that takes ownership of `req`: without an HCA the request comes
/// back untouched, for the caller to complete.
fn with_hca_owning<R>(
    c: &DeviceCtx,
    req: Request,
    f: impl FnOnce(&mut Hca, Request, &AtDispatch<'_>) -> R,
) -> Result<R, Request> {
    let (r, done) = c.hca.with(|s, at| match s.hca.as_mut() {
        Some(h) => {
            let r = f(h, req, at);
            (Ok(r), h.take_done())
        }
        None => (Err(req), None),
    });
    complete_done(c, done);
    r
}

/// Completes finished requests without the lock, a batch at a time: a full batch means the
/// HCA may hold more, taken under the lock again.
fn complete_done(c: &DeviceCtx, mut done: Option<Batch<Done, DONE_BATCH>>) {
    while let Some(batch) = done {
        let more = batch.is_full();
        batch.into_iter().for_each(finish_done);
        done = if more {
            c.hca.with(|s, _| s.hca.as_mut().and_then(Hca::take_done))
        } else {
            None
        };
    }
}

const fn add_stats(into: &mut ioctl::StatisticsOut, s: &ioctl::StatisticsOut) {
    into.mad_sends += s.mad_sends;
    into.mad_sends_inline += s.mad_sends_inline;
    into.mad_receives += s.mad_receives;
    into.mad_receive_drops += s.mad_receive_drops;
    into.mappings_made += s.mappings_made;
    into.mappings_released += s.mappings_released;
    into.overflow_waits += s.overflow_waits;
    into.hostile_cqes += s.hostile_cqes;
    into.send_errors += s.send_errors;
    into.dpcs += s.dpcs;
    into.stream_segments += s.stream_segments;
    into.stream_bytes += s.stream_bytes;
    into.stream_flushes += s.stream_flushes;
    into.stream_errors += s.stream_errors;
    if s.stream_strategy != 0 {
        into.stream_strategy = s.stream_strategy;
    }
    into.queue_resets += s.queue_resets;
    into.queue_stalls += s.queue_stalls;
}

/// `EvtIoDeviceControl`: every IOCTL, lengths checked before any buffer is touched.
fn io_device_control(queue: Queue, req: Request, out_len: usize, in_len: usize, code: u32) {
    let device = queue.device();
    let Some(c) = ctx(device) else {
        req.complete(STATUS_INVALID_DEVICE_STATE, 0);
        return;
    };
    let Ok(ioctl) = Ioctl::from_code(code) else {
        req.complete(STATUS_INVALID_DEVICE_REQUEST, 0);
        return;
    };
    // Lengths are checked before any buffer is touched.
    if ioctl.check_lengths(in_len, out_len).is_err() {
        let st = if out_len < ioctl.min_output_len() {
            STATUS_BUFFER_TOO_SMALL
        } else {
            STATUS_INVALID_PARAMETER
        };
        req.complete(st, 0);
        return;
    }
    match ioctl {
        Ioctl::QueryDevice => query_device(c, req),
        Ioctl::SendMad => match req
            .input::<SendMadIn>()
            .and_then(|i| Hca::check_send(i).map_err(status_of))
        {
            Ok(input) => {
                if let Err(req) = with_hca_owning(c, req, |h, req, at| h.send(req, input, at)) {
                    req.complete(STATUS_DEVICE_NOT_READY, 0);
                }
            }
            Err(st) => req.complete(st, 0),
        },
        Ioctl::RecvMad => {
            let recv = c.objects.get().map(|o| o.recv);
            // Under the lock, so that a MAD arriving meanwhile finds this request queued.
            let outcome = with_hca_owning(c, req, |h, req, _| match (h.take_received(), recv) {
                (Some(m), _) => Some((req, Ok(m))),
                (None, Some(q)) => req.forward(q).err().map(|(req, st)| (req, Err(st))),
                (None, None) => Some((req, Err(STATUS_INVALID_DEVICE_STATE))),
            });
            match outcome {
                Ok(Some((req, result))) => req.complete_with::<RecvMadOut>(result),
                Ok(None) => {}
                Err(req) => req.complete(STATUS_DEVICE_NOT_READY, 0),
            }
        }
        Ioctl::Statistics => {
            // One lock hold: the carried and the live figures are one snapshot.
            let mut s = c.hca.with(|slot, _| {
                let mut s = slot.carried;
                if let Some(h) = &slot.hca {
                    add_stats(&mut s, &h.statistics());
                }
                s
            });
            s.interrupts = c.interrupts.load(Ordering::Relaxed);
            req.complete_with(Ok(s));
        }
        Ioctl::StreamStartCapture | Ioctl::StreamStartPlayback => {
            streams::start(c, device, req, ioctl, out_len);
        }
        Ioctl::StreamWait => streams::wait(c, req),
        Ioctl::StreamRelease => streams::release(c, req),
        Ioctl::StreamStop => streams::stop(c, req),
        Ioctl::QueryPort => req.complete(STATUS_NOT_SUPPORTED, 0),
    }
}

fn query_device(c: &DeviceCtx, req: Request) {
    let vectors = c.vectors.load(Ordering::Relaxed);
    let q = with_hca(c, |h, _| {
        let caps = *h.caps();
        QueryDeviceOut {
            vendor_id: rhca_hw::pci::VENDOR_ID,
            device_id: rhca_hw::pci::DEVICE_ID,
            revision: rhca_hw::pci::REVISION_ID,
            dma_width: caps.dma_width as u8,
            max_sge: caps.max_sge as u8,
            stream_engines: caps.stream_engines as u8,
            interface_version: regs::VERSION.reset,
            max_inline: caps.max_inline,
            log_max_wq: caps.log_max_wq as u8,
            log_max_cq: caps.log_max_cq as u8,
            interrupt_vectors: vectors as u8,
            log_min_seg: caps.log_min_seg as u8,
            log_max_seg: caps.log_max_seg as u8,
            log_max_segs: caps.log_max_segs as u8,
            node_guid: h.node_guid(),
            dma_description_version: h.adapter().description_version(),
            map_registers: h.adapter().map_registers(),
            ..QueryDeviceOut::default()
        }
    });
    req.complete_with(q.ok_or(STATUS_DEVICE_NOT_READY));
}
