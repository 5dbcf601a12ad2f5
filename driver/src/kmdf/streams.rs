//! The stream IOCTLs and the stream parts of the callbacks: START (the caller's buffer stays
//! pending and cancelable for the stream's life), WAIT, RELEASE, STOP, handle cleanup, the
//! START cancel routine, and the work item that releases ended streams at `PASSIVE_LEVEL`.
//!
//! Every way a stream ends (STOP, handle close, process termination, D0 exit, surprise removal,
//! an engine error, a hostile record) goes through the same steps: STOP written to the engine,
//! its acknowledgement awaited (or the device found gone), then — at `PASSIVE_LEVEL`, without
//! the device lock — the device's view of the buffer released (lists put, which copies any bounce
//! or Verifier buffer back; common buffers freed), and only then the START request completed
//! with the bytes moved, which lets the I/O manager unlock the pages.

use crate::trace::{self, Value};
use alloc::vec::Vec;

use rhca_hw::ioctl::{
    Ioctl, MAX_WAIT_SEGMENTS, StreamReleaseIn, StreamStartIn, StreamStopIn, StreamWaitIn,
    StreamWaitOut, WAIT_FLAG_ENDED,
};
use rhca_hw::regs;
use rhca_hw::stream::Direction;

use super::{DeviceCtx, complete_outcome, ctx, status_of, with_hca, with_hca_owning};
use crate::batch::Batch;
use crate::dma::{Adapter, UserBuffer};
use crate::hca::stream::{self, EndReason, StartParams, Stream};
use crate::hca::{Hca, StreamEngines};
use crate::sys::AtDispatch;
use crate::sys::wdf::{self, Device, File, Queue, Request, WorkItem};
use crate::sys::{
    STATUS_CANCELLED, STATUS_DEVICE_NOT_READY, STATUS_INSUFFICIENT_RESOURCES,
    STATUS_INVALID_PARAMETER, STATUS_SUCCESS, WDFFILEOBJECT, WDFWORKITEM, stall_us,
};

/// How long a stopping engine may take to acknowledge before the device is reset (the engine
/// stops at its next burst boundary: microseconds on real hardware): 2000 × 50 µs = 100 ms.
const STOP_ACK_POLLS: u32 = 2000;
const STOP_ACK_POLL_US: u32 = 50;

fn ended(engine: u32) -> StreamWaitOut {
    StreamWaitOut {
        engine,
        flags: WAIT_FLAG_ENDED,
        ..StreamWaitOut::default()
    }
}

/// `IOCTL_RHCA_STREAM_START_CAPTURE`/`_PLAYBACK`, at `PASSIVE_LEVEL`.
pub(super) fn start(c: &DeviceCtx, device: Device, req: Request, ioctl: Ioctl, out_len: usize) {
    let input = match req.input::<StreamStartIn>() {
        Ok(i) => i,
        Err(st) => return req.complete(st, 0),
    };
    let Some(caps) = with_hca(c, |h, _| *h.caps()) else {
        return req.complete(STATUS_DEVICE_NOT_READY, 0);
    };
    let (align, min, max) = stream::segment_limits(&caps);
    let Ok(strategy) = input.validate(ioctl, out_len as u64, align, min, max) else {
        return req.complete(STATUS_INVALID_PARAMETER, 0);
    };
    if out_len as u64 / u64::from(input.segment_size) > 1u64 << caps.log_max_segs {
        return req.complete(STATUS_INVALID_PARAMETER, 0);
    }
    let params = StartParams {
        engine: input.engine,
        dir: if ioctl == Ioctl::StreamStartPlayback {
            Direction::Playback
        } else {
            Direction::Capture
        },
        strategy,
        verify: stream::verify_flag(input.flags),
    };
    match with_hca(c, |h, _| {
        let accepting = h.accepts_work();
        h.streams().reserve(params.engine, accepting)
    }) {
        Some(Ok(())) => {}
        Some(Err(e)) => return req.complete(status_of(e), 0),
        None => return req.complete(STATUS_DEVICE_NOT_READY, 0),
    }
    // The stream's own adapter, sized for the whole buffer: its mappings never wait for map
    // registers the MAD path holds, and never hold registers the MAD path needs.
    let built = UserBuffer::for_request(req, input.segment_size)
        .map_err(|(req, _)| (req, STATUS_INVALID_PARAMETER))
        .and_then(
            |user| match Adapter::for_device(device, caps.dma_width, user.len()) {
                Ok(adapter) => Stream::build(adapter, user, &caps, params)
                    .map_err(|(req, e)| (req, status_of(e))),
                Err(_) => Err((user.into_request(), STATUS_INSUFFICIENT_RESOURCES)),
            },
        );
    let s = match built {
        Ok(s) => s,
        Err((req, st)) => {
            with_engines(c, |e, _| e.unreserve(params.engine));
            trace::emit(
                &trace::STREAM_START_FAILED,
                &[
                    Value::U32(params.engine),
                    Value::Str(stream::strategy_name(params.strategy)),
                    Value::Status(st),
                ],
            );
            return req.complete(st, 0);
        }
    };
    let (engine, strategy, ring_bytes, segment) = s.describe();
    if s.request()
        .mark_cancelable(Some(wdf::evt_request_cancel::<super::Rhca>))
        .is_err()
    {
        // Cancelled before the device was given anything: release and complete here.
        with_engines(c, |e, _| e.unreserve(params.engine));
        let r = stream::discard(s);
        return r.complete(STATUS_CANCELLED, 0);
    }
    if with_hca(c, |h, at| {
        let running = h.is_running();
        h.streams().install(s, running, at)
    }) == Some(true)
    {
        trace::emit(
            &trace::STREAM_STARTED,
            &[
                Value::U32(engine),
                Value::Str(strategy),
                Value::U64(ring_bytes),
                Value::U32(segment),
            ],
        );
    } else {
        // Parked as ended (the engine refused or the device left D0): released like any other.
        finish(c, None);
    }
}

/// `IOCTL_RHCA_STREAM_WAIT`.
pub(super) fn wait(c: &DeviceCtx, req: Request) {
    let input = match req.input::<StreamWaitIn>() {
        Ok(i) => i,
        Err(st) => return req.complete(st, 0),
    };
    let max = input.max_segments;
    if input.engine >= regs::MAX_STREAM_ENGINES || max == 0 || max as usize > MAX_WAIT_SEGMENTS {
        return req.complete(STATUS_INVALID_PARAMETER, 0);
    }
    let n = input.engine;
    let queue = c
        .objects
        .get()
        .and_then(|o| o.waits.get(n as usize).copied());
    let file = req.file();
    // Under the lock, so that segments becoming ready meanwhile find this request queued.
    let outcome = with_hca_owning(c, req, |h, req, at| {
        // Segments the device finished but has not interrupted for yet are ready too.
        h.streams().poll_stream(n, at);
        match h.streams().wait(n, Some(file), max) {
            Ok(Some(out)) => Some((req, Ok(out))),
            Ok(None) => match queue {
                Some(q) => req.forward(q).err().map(|(req, st)| (req, Err(st))),
                None => Some((req, Err(STATUS_DEVICE_NOT_READY))),
            },
            Err(e) => Some((req, Err(status_of(e)))),
        }
    });
    match outcome {
        Ok(Some((req, result))) => req.complete_with(result),
        Ok(None) => {}
        Err(req) => req.complete_with(Ok(ended(n))),
    }
}

/// `IOCTL_RHCA_STREAM_RELEASE`.
pub(super) fn release(c: &DeviceCtx, req: Request) {
    let input = match req.input::<StreamReleaseIn>() {
        Ok(i) => i,
        Err(st) => return req.complete(st, 0),
    };
    let file = req.file();
    let r = with_engines(c, |e, at| {
        let r = e.release(input.engine, file, input.first_sequence, input.count, at);
        (r, e.awaiting_ack())
    });
    match r {
        Some((Ok(()), ending)) => {
            if ending {
                kick(c);
            }
            req.complete(STATUS_SUCCESS, 0);
        }
        Some((Err(e), _)) => req.complete(status_of(e), 0),
        None => req.complete(STATUS_DEVICE_NOT_READY, 0),
    }
}

/// `IOCTL_RHCA_STREAM_STOP`: pends until the stream is released.
pub(super) fn stop(c: &DeviceCtx, req: Request) {
    let input = match req.input::<StreamStopIn>() {
        Ok(i) => i,
        Err(st) => return req.complete(st, 0),
    };
    if input.reserved0 != 0 {
        return req.complete(STATUS_INVALID_PARAMETER, 0);
    }
    match with_hca_owning(c, req, |h, req, _| h.streams().stop(input.engine, req)) {
        Ok(Ok(())) => kick(c),
        Ok(Err((req, e))) => req.complete(status_of(e), 0),
        Err(req) => req.complete(STATUS_DEVICE_NOT_READY, 0),
    }
}

/// `EvtFileCleanup`: the handle's streams end.
pub(super) extern "C" fn evt_file_cleanup(file: WDFFILEOBJECT) {
    let file = File(file);
    let Some(c) = ctx(file.device()) else {
        return;
    };
    if with_engines(c, |e, _| e.end_file(file)) == Some(true) {
        kick(c);
    }
}

/// `EvtRequestCancel` of a pending START: the stream ends; its request is completed when the
/// stream has been released (the engine stopped and the pages are no longer mapped). The
/// stream's buffer (or its finisher) holds a second value for the request: `StreamEngines::cancel`
/// completes exactly one of the two and relinquishes the other.
pub(super) fn start_cancel(req: Request) {
    let Some(c) = ctx(req.file().device()) else {
        req.relinquish();
        return;
    };
    match with_hca_owning(c, req, |h, req, _| h.streams().cancel(req)) {
        Ok(Some((r, outcome, info))) => complete_outcome(r, outcome, info),
        Ok(None) => kick(c),
        // No HCA: every stream was released with it, and each START completed by its finisher.
        Err(req) => {
            req.relinquish();
        }
    }
}

/// Completes a STOP request (twice under the `COMPLETE_STOP_TWICE` test hook, the defect the
/// framework's verifier must stop).
fn complete_stop(s: Request) {
    #[cfg(feature = "test-hooks")]
    if crate::hooks::complete_stop_twice() {
        return s.complete_twice(STATUS_SUCCESS);
    }
    s.complete(STATUS_SUCCESS, 0);
}

/// As [`with_hca`], for the stream engines alone.
fn with_engines<R>(
    c: &DeviceCtx,
    f: impl FnOnce(&mut StreamEngines, &AtDispatch<'_>) -> R,
) -> Option<R> {
    with_hca(c, |h, at| f(h.streams(), at))
}

/// Enqueues the stream work item.
fn kick(c: &DeviceCtx) {
    if let Some(o) = c.objects.get() {
        o.work.enqueue();
    }
}

/// `EvtWorkItem`: recovers a device whose queue failed (reset at `PASSIVE_LEVEL`, then the
/// streams the reset ended are released), and releases the streams that ended.
pub(super) extern "C" fn evt_stream_work(work: WDFWORKITEM) {
    let Some(c) = ctx(WorkItem(work).device()) else {
        return;
    };
    if with_hca(c, Hca::recover) == Some(true) {
        finish(c, Some(EndReason::DeviceError));
    }
    finish(c, None);
}

/// WAIT requests paired with segments per lock hold. Two, for the reason of `RECV_BATCH` in
/// `interrupt.rs` (each entry is a 1,560-byte reply moved out of the lock); more wait for the
/// next hold.
pub(super) const WAIT_BATCH: usize = 2;

/// The DPC's stream work, under the lock: pairs ready segments with queued WAIT requests, to be
/// completed after the lock is released (a full batch: there may be more).
pub(super) fn deliver_waits(
    e: &mut StreamEngines,
    queues: &[Queue],
) -> Batch<(Request, StreamWaitOut), WAIT_BATCH> {
    let mut out = Batch::new();
    for (n, &q) in queues.iter().enumerate() {
        let n = n as u32;
        out.fill(|| {
            if !e.has_ready(n) {
                return None;
            }
            let req = q.retrieve_next()?;
            let max = req.input::<StreamWaitIn>().map_or(1, |i| i.max_segments);
            match e.wait(n, None, max) {
                Ok(Some(o)) => Some((req, o)),
                _ => Some((req, ended(n))),
            }
        });
    }
    out
}

/// Completes WAIT requests paired with segments.
pub(super) fn complete_waits(waits: impl IntoIterator<Item = (Request, StreamWaitOut)>) {
    for (r, o) in waits {
        r.complete_with(Ok(o));
    }
}

/// Releases ended streams at `PASSIVE_LEVEL` and completes their requests. `all`: every stream
/// (the device is quiesced or gone), ending with that reason unless the device is gone.
/// Otherwise the ending streams, once their engines acknowledge; when an engine does not within
/// 100 ms, the device is quiesced and reset (which ends all its DMA) and brought back.
pub(super) fn finish(c: &DeviceCtx, all: Option<EndReason>) {
    let mut all = all;
    if all.is_none() {
        let mut polls = 0;
        while with_engines(c, |e, _| e.awaiting_ack()) == Some(true) {
            if polls == STOP_ACK_POLLS {
                with_hca(c, |h, at| {
                    h.quiesce(at);
                    let _ = h.enable(at);
                });
                all = Some(EndReason::DeviceError);
                break;
            }
            stall_us(STOP_ACK_POLL_US);
            polls += 1;
        }
    }
    let queues: &[Queue] = c.objects.get().map_or(&[], |o| &o.waits);
    // The streams come out of their engines and the WAITs queued for them are answered under
    // one lock hold: a new stream cannot start on an engine (nor queue a WAIT of its own) until
    // the lock is released, so every WAIT taken here was for a stream that just ended. They get
    // what the stream left, then the end.
    let (taken, waits) = with_engines(c, |e, at| {
        let taken = e.take_ended(all, at);
        let mut waits = Vec::new();
        for n in taken.iter().map(stream::Ended::engine) {
            let Some(q) = queues.get(n as usize) else {
                continue;
            };
            while let Some(w) = q.retrieve_next() {
                let max = w.input::<StreamWaitIn>().map_or(1, |i| i.max_segments);
                let out = e
                    .wait(n, Some(w.file()), max)
                    .ok()
                    .flatten()
                    .unwrap_or_else(|| ended(n));
                waits.push((w, out));
            }
        }
        (taken, waits)
    })
    .unwrap_or_default();
    complete_waits(waits);
    for e in taken {
        let f = stream::finish(e);
        if let Some((r, outcome, info)) = f.start {
            complete_outcome(r, outcome, info);
        }
        if let Some((r, st, info)) = f.rendezvous
            && let Some(Some((r, st, info))) =
                with_engines(c, |e, _| e.rendezvous_done(r, st, info))
        {
            complete_outcome(r, st, info);
        }
        for s in f.stops {
            complete_stop(s);
        }
    }
}
