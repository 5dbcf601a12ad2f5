//! I/O queues: `WdfIoQueue*` (creation with the framework's checks, dispatching, start, stop,
//! purge, manual retrieval) and `WdfDeviceConfigureRequestDispatching`.

#![expect(
    clippy::missing_safety_doc,
    reason = "the module documents the one safety contract every WDF method shares"
)]
#![expect(non_snake_case, reason = "mirrors the C method and parameter names")]

use super::{STATUS_NO_MORE_ENTRIES, attrs, no_serialization, null_arg, parent_of, wdf};
use crate::ntddk::check_max;
use crate::typed::{DISPATCH_LEVEL, PASSIVE_LEVEL};
use crate::wdf::status::STATUS_WDF_NO_CALLBACK;
#[allow(
    clippy::wildcard_imports,
    reason = "the methods use the mirrored surface wholesale"
)]
use crate::wdf::types::*;
use crate::wdf::validate::{self, opt};
use crate::wdf::{Kind, ReqState};
use crate::{NTSTATUS, STATUS_INFO_LENGTH_MISMATCH, STATUS_INVALID_PARAMETER, STATUS_SUCCESS};

// ---- queues ----

/// `NTSTATUS WdfIoQueueCreate(WDFDEVICE, PWDF_IO_QUEUE_CONFIG, PWDF_OBJECT_ATTRIBUTES,
/// WDFQUEUE *Queue)`; `<= DISPATCH_LEVEL`.
#[must_use]
#[inline(never)]
pub unsafe fn WdfIoQueueCreate(
    Device: WDFDEVICE,
    Config: PWDF_IO_QUEUE_CONFIG,
    QueueAttributes: PWDF_OBJECT_ATTRIBUTES,
    Queue: *mut WDFQUEUE,
) -> NTSTATUS {
    check_max(DISPATCH_LEVEL, "WdfIoQueueCreate");
    if Config.is_null() {
        null_arg("Config");
    }
    // SAFETY: checked non-null.
    let config = unsafe { *Config };
    let a = attrs(QueueAttributes);
    // `fxioqueueapi.cpp` l.119–154, then `FxIoQueue::Initialize` (`fxioqueue.cpp` l.275–374).
    if let Err(st) = validate::object_attributes(
        a,
        opt::EXECUTION_LEVEL_ALLOWED | opt::SYNCHRONIZATION_SCOPE_ALLOWED,
    ) {
        return st;
    }
    if let Err(st) = no_serialization(a) {
        return st;
    }
    if config.Size as usize != size_of::<crate::types::WDF_IO_QUEUE_CONFIG>() {
        return STATUS_INFO_LENGTH_MISMATCH;
    }
    if config.DefaultQueue == 0 && Queue.is_null() {
        return crate::STATUS_INVALID_PARAMETER_4;
    }
    if !(_WDF_IO_QUEUE_DISPATCH_TYPE::WdfIoQueueDispatchSequential
        ..=_WDF_IO_QUEUE_DISPATCH_TYPE::WdfIoQueueDispatchManual)
        .contains(&config.DispatchType)
    {
        return STATUS_INVALID_PARAMETER;
    }
    let manual = config.DispatchType == _WDF_IO_QUEUE_DISPATCH_TYPE::WdfIoQueueDispatchManual;
    let has_callback = config.EvtIoDefault.is_some()
        || config.EvtIoRead.is_some()
        || config.EvtIoWrite.is_some()
        || config.EvtIoDeviceControl.is_some()
        || config.EvtIoInternalDeviceControl.is_some();
    if !manual && !has_callback {
        return STATUS_WDF_NO_CALLBACK;
    }
    if manual && has_callback {
        return STATUS_INVALID_PARAMETER;
    }
    // SAFETY: a union of plain integers; the parallel member is what the framework reads.
    let presented_limit = unsafe { config.Settings.Parallel.NumberOfPresentedRequests };
    if config.DispatchType != _WDF_IO_QUEUE_DISPATCH_TYPE::WdfIoQueueDispatchParallel
        && presented_limit != 0
    {
        return STATUS_INVALID_PARAMETER;
    }
    let h = wdf(|w| {
        let dev = Device as usize;
        let in_d0 = w.device(dev)?.in_d0;
        let pm = config.PowerManaged != _WDF_TRI_STATE::WdfFalse;
        let data = crate::wdf::QueueData {
            config: crate::typed::NoDebug(config),
            device: dev,
            started: !pm || in_d0,
            power_managed: pm,
            waiting: std::collections::VecDeque::new(),
            presented: 0,
            accepting: true,
            idle_callback: None,
        };
        let h = w.insert(Kind::Queue(Box::new(data)), Some(parent_of(a, dev)), a);
        let d = w.device(dev)?;
        d.queues.push(h);
        if config.DefaultQueue != 0 {
            d.default_queue = Some(h);
        }
        Ok(h)
    });
    if !Queue.is_null() {
        // SAFETY: a writable slot (or WDF_NO_HANDLE).
        unsafe { *Queue = h as WDFQUEUE };
    }
    STATUS_SUCCESS
}

/// `NTSTATUS WdfDeviceConfigureRequestDispatching(WDFDEVICE, WDFQUEUE, WDF_REQUEST_TYPE)`;
/// PASSIVE_LEVEL.
#[must_use]
#[inline(never)]
pub unsafe fn WdfDeviceConfigureRequestDispatching(
    Device: WDFDEVICE,
    Queue: WDFQUEUE,
    RequestType: WDF_REQUEST_TYPE,
) -> NTSTATUS {
    check_max(PASSIVE_LEVEL, "WdfDeviceConfigureRequestDispatching");
    // The request types a queue can be given here (`FxPkgIo::ConfigureDynamicDispatching`
    // accepts these and the internal I/O control; wdk-sim has no internal I/O controls).
    let slot: fn(&mut super::super::DeviceData) -> &mut Option<usize> = match RequestType {
        _WDF_REQUEST_TYPE::WdfRequestTypeDeviceControl => |d| &mut d.ioctl_queue,
        _WDF_REQUEST_TYPE::WdfRequestTypeRead => |d| &mut d.read_queue,
        _WDF_REQUEST_TYPE::WdfRequestTypeWrite => |d| &mut d.write_queue,
        _ => return STATUS_INVALID_PARAMETER,
    };
    wdf(|w| {
        w.queue(Queue as usize)?;
        *slot(w.device(Device as usize)?) = Some(Queue as usize);
        Ok(())
    });
    STATUS_SUCCESS
}

/// `WDFDEVICE WdfIoQueueGetDevice(WDFQUEUE)`; `<= DISPATCH_LEVEL`.
#[must_use]
#[inline(never)]
pub unsafe fn WdfIoQueueGetDevice(Queue: WDFQUEUE) -> WDFDEVICE {
    wdf(|w| Ok(w.queue(Queue as usize)?.device as WDFDEVICE))
}

/// `NTSTATUS WdfIoQueueRetrieveNextRequest(WDFQUEUE, WDFREQUEST *OutRequest)`;
/// `<= DISPATCH_LEVEL`. `STATUS_NO_MORE_ENTRIES` when the queue is empty.
#[must_use]
#[inline(never)]
pub unsafe fn WdfIoQueueRetrieveNextRequest(
    Queue: WDFQUEUE,
    OutRequest: *mut WDFREQUEST,
) -> NTSTATUS {
    check_max(DISPATCH_LEVEL, "WdfIoQueueRetrieveNextRequest");
    if OutRequest.is_null() {
        null_arg("OutRequest");
    }
    let r = wdf(|w| {
        let q = w.queue(Queue as usize)?;
        if !q.started && q.power_managed {
            return Ok(None);
        }
        let Some(r) = q.waiting.pop_front() else {
            return Ok(None);
        };
        q.presented += 1;
        w.request(r)?.state = ReqState::Presented;
        Ok(Some(r))
    });
    match r {
        Some(r) => {
            // SAFETY: checked non-null.
            unsafe { *OutRequest = r as WDFREQUEST };
            STATUS_SUCCESS
        }
        None => STATUS_NO_MORE_ENTRIES,
    }
}

/// `VOID WdfIoQueueStart(WDFQUEUE)`; `<= DISPATCH_LEVEL`.
#[inline(never)]
pub unsafe fn WdfIoQueueStart(Queue: WDFQUEUE) {
    check_max(DISPATCH_LEVEL, "WdfIoQueueStart");
    wdf(|w| {
        let q = w.queue(Queue as usize)?;
        q.started = true;
        q.accepting = true;
        Ok(())
    });
    crate::wdf::host::dispatch(Queue as usize);
}

/// `VOID WdfIoQueueStopSynchronously(WDFQUEUE)`; PASSIVE_LEVEL. New requests wait in the queue.
#[inline(never)]
pub unsafe fn WdfIoQueueStopSynchronously(Queue: WDFQUEUE) {
    check_max(PASSIVE_LEVEL, "WdfIoQueueStopSynchronously");
    wdf(|w| {
        w.queue(Queue as usize)?.started = false;
        Ok(())
    });
}

/// `VOID WdfIoQueueStop(WDFQUEUE, PFN_WDF_IO_QUEUE_STATE StopComplete, WDFCONTEXT Context)`;
/// `<= DISPATCH_LEVEL`. New requests wait in the queue; `StopComplete` runs once the driver
/// owns none of the queue's requests (at once if it owns none now).
#[inline(never)]
pub unsafe fn WdfIoQueueStop(
    Queue: WDFQUEUE,
    StopComplete: PFN_WDF_IO_QUEUE_STATE,
    Context: WDFCONTEXT,
) {
    check_max(DISPATCH_LEVEL, "WdfIoQueueStop");
    arm_idle(Queue as usize, StopComplete, Context as usize, false);
}

/// `VOID WdfIoQueuePurge(WDFQUEUE, PFN_WDF_IO_QUEUE_STATE PurgeComplete, WDFCONTEXT Context)`;
/// `<= DISPATCH_LEVEL`. Waiting requests are cancelled; `PurgeComplete` runs once the driver
/// owns none of the queue's requests.
#[inline(never)]
pub unsafe fn WdfIoQueuePurge(
    Queue: WDFQUEUE,
    PurgeComplete: PFN_WDF_IO_QUEUE_STATE,
    Context: WDFCONTEXT,
) {
    check_max(DISPATCH_LEVEL, "WdfIoQueuePurge");
    arm_idle(Queue as usize, PurgeComplete, Context as usize, true);
}

pub(super) fn arm_idle(q: usize, cb: PFN_WDF_IO_QUEUE_STATE, ctx: usize, purge: bool) {
    let (waiting, now) = wdf(|w| {
        let qd = w.queue(q)?;
        qd.started = false;
        if purge {
            qd.accepting = false;
        }
        let waiting: Vec<usize> = if purge {
            qd.waiting.iter().copied().collect()
        } else {
            Vec::new()
        };
        let now = qd.presented == 0;
        if !now {
            qd.idle_callback = Some((cb, ctx));
        }
        Ok((waiting, now))
    });
    for r in waiting {
        crate::wdf::host::cancel(r);
    }
    if now && let Some(f) = cb {
        // SAFETY: the driver's queue-state callback with its own context.
        crate::wdf::functions::callback(|| unsafe { f(q as WDFQUEUE, ctx as WDFCONTEXT) });
    }
}

/// `VOID WdfIoQueuePurgeSynchronously(WDFQUEUE)`; PASSIVE_LEVEL. Waiting requests are cancelled
/// (`EvtIoCanceledOnQueue`, or completed with `STATUS_CANCELLED`); the queue stops accepting.
#[inline(never)]
pub unsafe fn WdfIoQueuePurgeSynchronously(Queue: WDFQUEUE) {
    check_max(PASSIVE_LEVEL, "WdfIoQueuePurgeSynchronously");
    crate::wdf::host::purge(Queue as usize);
}
