//! The I/O manager's side of queues and requests: dispatch to the driver by queue type,
//! completion (with the verifier's checks), cancellation and purge.

use std::time::{Duration, Instant};

use crate::machine::{set_irql, with_state};
use crate::typed::DISPATCH_LEVEL;
use crate::types::{PMDL, PVOID, ULONG};
use crate::wdf::functions::callback;
#[allow(
    clippy::wildcard_imports,
    reason = "the harness uses the mirrored surface wholesale"
)]
use crate::wdf::types::*;
use crate::wdf::{Kind, ReqKind, ReqState};
use crate::{NT_SUCCESS, NTSTATUS, STATUS_CANCELLED, STATUS_INVALID_DEVICE_REQUEST, ntddk};

pub(super) fn presented_on(w: &crate::wdf::WdfState, q: usize) -> Vec<usize> {
    w.objects
        .iter()
        .filter(|(_, o)| matches!(&o.kind, Kind::Request(r) if r.queue == Some(q) && r.state == ReqState::Presented))
        .map(|(&h, _)| h)
        .collect()
}

/// Whether `q` is a sequential queue.
pub(crate) fn sequential(q: usize) -> bool {
    with_state(|st, _| {
        Ok(st.wdf.queue(q).is_ok_and(|qd| {
            qd.config.DispatchType == _WDF_IO_QUEUE_DISPATCH_TYPE::WdfIoQueueDispatchSequential
        }))
    })
}

/// Presents waiting requests to the driver as the queue's dispatch type allows.
pub(crate) fn dispatch(q: usize) {
    loop {
        let next = with_state(|st, _| {
            let w = &mut st.wdf;
            let Ok(qd) = w.queue(q) else { return Ok(None) };
            if !qd.started
                || qd.config.DispatchType == _WDF_IO_QUEUE_DISPATCH_TYPE::WdfIoQueueDispatchManual
            {
                return Ok(None);
            }
            if qd.config.DispatchType == _WDF_IO_QUEUE_DISPATCH_TYPE::WdfIoQueueDispatchSequential
                && qd.presented > 0
            {
                return Ok(None);
            }
            // A parallel queue presents while the driver owns fewer of its requests than
            // `NumberOfPresentedRequests` (`FxIoQueue::DispatchEvents`, `fxioqueue.cpp`
            // l.3075–3083); with 0 it never presents one (`WDF_IO_QUEUE_CONFIG_INIT` sets
            // (ULONG)-1).
            if qd.config.DispatchType == _WDF_IO_QUEUE_DISPATCH_TYPE::WdfIoQueueDispatchParallel
                // SAFETY: a union of plain integers; the parallel member, as the framework reads.
                && qd.presented >= unsafe { qd.config.Settings.Parallel.NumberOfPresentedRequests } as usize
            {
                return Ok(None);
            }
            let Some(r) = qd.waiting.pop_front() else {
                return Ok(None);
            };
            qd.presented += 1;
            let cfg = qd.config;
            let rd = w.request(r)?;
            rd.state = ReqState::Presented;
            Ok(Some((r, cfg, rd.kind, rd.in_len, rd.out_len)))
        });
        let Some((r, cfg, kind, in_len, out_len)) = next else {
            return;
        };
        // `FxIoQueue::DispatchRequestToDriver`: the type's own callback, else EvtIoDefault.
        match (
            kind,
            cfg.EvtIoDeviceControl,
            cfg.EvtIoRead,
            cfg.EvtIoWrite,
            cfg.EvtIoDefault,
        ) {
            (ReqKind::Ioctl { code }, Some(f), _, _, _) => {
                // SAFETY: the driver's EvtIoDeviceControl with a request it now owns.
                callback(|| unsafe { f(q as WDFQUEUE, r as WDFREQUEST, out_len, in_len, code) });
            }
            (ReqKind::Read, _, Some(f), _, _) => {
                // SAFETY: the driver's EvtIoRead with a request it now owns.
                callback(|| unsafe { f(q as WDFQUEUE, r as WDFREQUEST, out_len) });
            }
            (ReqKind::Write, _, _, Some(f), _) => {
                // SAFETY: the driver's EvtIoWrite with a request it now owns.
                callback(|| unsafe { f(q as WDFQUEUE, r as WDFREQUEST, in_len) });
            }
            (_, _, _, _, Some(f)) => {
                // SAFETY: the driver's EvtIoDefault with a request it now owns.
                callback(|| unsafe { f(q as WDFQUEUE, r as WDFREQUEST) });
            }
            _ => complete(r, STATUS_INVALID_DEVICE_REQUEST, 0),
        }
    }
}

/// Completes a request: copies a buffered output back, releases the system buffer and the
/// locked pages, wakes the waiting thread, deletes the request, presents the next one.
pub(crate) fn complete(r: usize, status: NTSTATUS, info: usize) {
    let (rd, queue, objs, in_mdl, idle) = with_state(|st, _| {
        let w = &mut st.wdf;
        let rd = w.request(r)?;
        let queue = rd.queue;
        let presented = rd.state == ReqState::Presented;
        let in_mdl = rd.in_mdl;
        let snapshot = (
            rd.sys_buf,
            rd.user_out,
            rd.out_len,
            rd.out_mdl,
            rd.method,
            rd.completion.clone(),
        );
        if let Some(qh) = queue
            && presented
            && let Ok(q) = w.queue(qh)
        {
            q.presented = q.presented.saturating_sub(1);
        }
        let mut idle = None;
        if let Some(qh) = queue
            && let Ok(q) = w.queue(qh)
        {
            q.waiting.retain(|&x| x != r);
            if q.presented == 0 {
                idle = q.idle_callback.take().map(|(f, c)| (qh, f, c));
            }
        }
        if snapshot.4 == 0 && snapshot.0 != 0 && snapshot.1 != 0 && NT_SUCCESS(status) {
            // METHOD_BUFFERED: the I/O manager copies Information bytes back to the caller.
            st.mem.copy_va(snapshot.1, snapshot.0, info.min(snapshot.2));
        }
        let objs = st.wdf.detach_tree(r);
        st.wdf.note_completed(r);
        Ok((snapshot, queue, objs, in_mdl, idle))
    });
    let (sys_buf, _, _, out_mdl, _, completion) = rd;
    if in_mdl != 0 {
        // SAFETY: the MDL WdfRequestRetrieveInputWdmMdl built (pages never locked), freed once.
        unsafe { ntddk::IoFreeMdl(in_mdl as PMDL) };
    }
    if out_mdl != 0 {
        // SAFETY: the I/O manager's MDL for this request, locked at dispatch.
        unsafe { ntddk::MmUnlockPages(out_mdl as PMDL) };
        // SAFETY: unlocked above; freed once.
        unsafe { ntddk::IoFreeMdl(out_mdl as PMDL) };
    }
    if sys_buf != 0 {
        // SAFETY: the system buffer allocated at dispatch, freed once.
        unsafe { ntddk::ExFreePool(sys_buf as PVOID) };
    }
    crate::wdf::run_cleanup(objs);
    {
        let mut done = completion
            .done
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *done = Some((status, info));
    }
    completion.cv.notify_all();
    // A completion frees the one slot of a sequential queue: the next request is presented on
    // this CPU. Parallel queues present each request on the thread that queued it (or at a
    // queue start), never from another request's completion.
    if let Some(q) = queue
        && sequential(q)
    {
        dispatch(q);
    }
    if let Some((q, Some(f), ctx)) = idle {
        // SAFETY: the driver's stop/purge-complete callback with its own context.
        callback(|| unsafe { f(q as WDFQUEUE, ctx as WDFCONTEXT) });
    }
}

/// Cancels a request (`CancelIo`, handle close, process exit).
pub(crate) fn cancel(r: usize) {
    enum Act {
        Nothing,
        OnQueue(usize, PFN_WDF_IO_QUEUE_IO_CANCELED_ON_QUEUE),
        Routine(PFN_WDF_REQUEST_CANCEL),
    }
    let act = with_state(|st, _| {
        let w = &mut st.wdf;
        let Ok(rd) = w.request(r) else {
            return Ok(Act::Nothing);
        };
        rd.cancelled = true;
        match (rd.state, rd.queue) {
            (ReqState::Queued, Some(q)) => {
                let qd = w.queue(q)?;
                qd.waiting.retain(|&x| x != r);
                let cb = qd.config.EvtIoCanceledOnQueue;
                if cb.is_some() {
                    qd.presented += 1;
                    w.request(r)?.state = ReqState::Presented;
                }
                Ok(Act::OnQueue(q, cb))
            }
            (ReqState::Queued, None) => Ok(Act::OnQueue(0, None)),
            (ReqState::Presented, _) => Ok(Act::Routine(rd.cancel.take())),
        }
    });
    match act {
        Act::Nothing | Act::Routine(None) => {}
        Act::OnQueue(q, Some(f)) => {
            // SAFETY: the driver's EvtIoCanceledOnQueue for a request it now owns.
            callback(|| unsafe { f(q as WDFQUEUE, r as WDFREQUEST) });
        }
        Act::OnQueue(_, None) => complete(r, STATUS_CANCELLED, 0),
        Act::Routine(Some(f)) => {
            let old = crate::machine::irql();
            set_irql(DISPATCH_LEVEL.max(old));
            // SAFETY: the driver's cancel routine, at DISPATCH_LEVEL as KMDF calls it.
            callback(|| unsafe { f(r as WDFREQUEST) });
            set_irql(old);
        }
    }
}

/// Purges a queue: waiting requests cancelled, owned ones offered to `EvtIoStop(Purge)` or
/// their cancel routine, then a bounded wait for the driver to complete them.
pub(crate) fn purge(q: usize) {
    let (waiting, owned, stop) = with_state(|st, _| {
        let w = &mut st.wdf;
        let qd = w.queue(q)?;
        qd.started = false;
        qd.accepting = false;
        let waiting: Vec<usize> = qd.waiting.iter().copied().collect();
        let stop = qd.config.EvtIoStop;
        Ok((waiting, presented_on(w, q), stop))
    });
    for r in waiting {
        cancel(r);
    }
    for r in owned {
        if let Some(f) = stop {
            // SAFETY: the driver's EvtIoStop for a request it owns.
            callback(|| unsafe {
                f(
                    q as WDFQUEUE,
                    r as WDFREQUEST,
                    _WDF_REQUEST_STOP_ACTION_FLAGS::WdfRequestStopActionPurge as ULONG,
                );
            });
        } else {
            cancel(r);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        let left = with_state(|st, _| Ok(presented_on(&st.wdf, q).len()));
        if left == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}
