//! The stream engines: which engine runs which stream, the START reservations, what ended
//! streams left for their handles, and the START requests whose cancel routine and finisher
//! meet. Starting, ending and taking out streams are here; moving segments (credits, records,
//! WAIT and RELEASE) is in `transfer`.
//!
//! [`StreamEngines`] lives inside the HCA, behind the device's spin lock: every method runs at
//! `DISPATCH_LEVEL` with it held. No `unsafe`: registers go through [`crate::sys::Mmio`].

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{Ordering, fence};

use rhca_hw::ioctl::SegmentInfo;
use rhca_hw::regs::{self, se};
use rhca_hw::stream::{self, Direction, RecordStatus};

use super::{
    Access, EndReason, Ended, Leftover, Outcome, Rendezvous, StartOwner, Stream, StreamStats,
};
use crate::batch::Batch;
use crate::hca::{HcaError, gone};
use crate::sys::wdf::{File, Request};
use crate::sys::{AtDispatch, Mmio};

/// The device's stream engines and the streams on them.
#[derive(Debug)]
pub struct StreamEngines {
    // Field order is teardown order: streams are released before the HCA is dropped (at D0
    // exit); any left are dropped before the register mapping.
    pub(super) streams: Vec<Option<Box<Stream>>>,
    /// Engines reserved by a START being built.
    reserved: u8,
    /// Per engine: segments a released stream left undelivered.
    pub(super) leftovers: Vec<Option<Leftover>>,
    /// START requests whose cancel routine and finisher meet.
    rendezvous: Vec<Rendezvous>,
    /// The counters the streams add to `IOCTL_RHCA_STATISTICS`.
    pub(super) stats: StreamStats,
    /// Engines the device has (at most [`regs::MAX_STREAM_ENGINES`]).
    engines: u32,
    pub(super) regs: Arc<Mmio>,
}

impl StreamEngines {
    /// No streams on the `engines` engines of the device behind `regs`.
    #[must_use]
    pub fn new(regs: Arc<Mmio>, engines: u32) -> Self {
        let engines = engines.min(regs::MAX_STREAM_ENGINES);
        Self {
            streams: (0..engines).map(|_| None).collect(),
            reserved: 0,
            leftovers: (0..engines).map(|_| None).collect(),
            // At most one START per engine meets its cancel routine at a time.
            rendezvous: Vec::with_capacity(engines as usize),
            stats: StreamStats::default(),
            engines,
            regs,
        }
    }

    /// The counters the streams add to the statistics.
    #[must_use]
    pub const fn stats(&self) -> &StreamStats {
        &self.stats
    }

    pub(super) fn se_reg(&self, n: u32, reg: u32) -> u32 {
        se::offset(n, reg).map_or(regs::ALL_ONES, |o| self.regs.read(o))
    }

    pub(super) fn se_write(&self, n: u32, reg: u32, v: u32) {
        if let Ok(o) = se::offset(n, reg) {
            self.regs.write(o, v);
        }
    }

    /// Stream engines the device has.
    #[must_use]
    pub const fn count(&self) -> u32 {
        self.engines
    }

    /// Reserves engine `n` for a START being built.
    ///
    /// # Errors
    /// [`HcaError::InvalidParameter`] for an engine the device lacks, [`HcaError::Busy`] when
    /// the engine has a stream (at most one per engine), [`HcaError::NotReady`] when the
    /// device does not accept work (`accepting`: in D0, no failed queue awaiting its reset).
    pub fn reserve(&mut self, n: u32, accepting: bool) -> Result<(), HcaError> {
        if n >= self.engines || n >= regs::MAX_STREAM_ENGINES {
            return Err(HcaError::InvalidParameter);
        }
        if !accepting {
            return Err(HcaError::NotReady);
        }
        if self.streams[n as usize].is_some() || self.reserved & (1 << n) != 0 {
            return Err(HcaError::Busy);
        }
        self.reserved |= 1 << n;
        if let Some(l) = self.leftovers.get_mut(n as usize) {
            *l = None;
        }
        Ok(())
    }

    /// Gives back a reservation whose START failed.
    pub const fn unreserve(&mut self, n: u32) {
        self.reserved &= !(1 << n);
    }

    /// Programs and starts engine `s.engine()` with the stream `s`, and gives the device its
    /// first credits (capture: every segment). The START request must already be cancelable.
    ///
    /// A stream that cannot start is parked in its engine as ended (the engine is not running),
    /// so that it is released, and its START completed, like any other: the caller runs the
    /// release ([`Self::take_ended`]) when this returns false.
    pub fn install(&mut self, s: Box<Stream>, running: bool, at: &AtDispatch<'_>) -> bool {
        let n = s.engine;
        self.reserved &= !(1 << n);
        match self.try_install(s, running, at) {
            Ok(()) => true,
            Err((mut s, st)) => {
                s.ending = Some(EndReason::Failed(st));
                s.stop_written = true;
                self.streams[n as usize] = Some(s);
                false
            }
        }
    }

    fn try_install(
        &mut self,
        mut s: Box<Stream>,
        running: bool,
        at: &AtDispatch<'_>,
    ) -> Result<(), (Box<Stream>, HcaError)> {
        let n = s.engine;
        if !running {
            return Err((s, HcaError::NotReady));
        }
        let (desc_count, per_segment) = match &s.access {
            Access::PerSegment { group, .. } => (*group, true),
            _ => ((s.table.len() as usize / stream::DESC_SIZE) as u32, false),
        };
        let desc_count = match &s.access {
            Access::Persistent(m) => m.elements().count() as u32,
            Access::FromMdl(_) => 1,
            Access::Staging(p) => p.len() as u32,
            Access::PerSegment { .. } => desc_count,
        };
        let t = s.table.logical();
        let r = s.records.logical();
        self.se_write(n, se::DESC_LO, t as u32);
        self.se_write(n, se::DESC_HI, (t >> 32) as u32);
        self.se_write(n, se::DESC_COUNT, desc_count);
        self.se_write(n, se::SEG_SIZE, s.seg);
        self.se_write(n, se::SEG_COUNT, s.count);
        self.se_write(n, se::REC_LO, r as u32);
        self.se_write(n, se::REC_HI, (r >> 32) as u32);
        // Interrupt moderation: one interrupt per quarter of the ring (the application works
        // on one quarter while the next fills), or 1 ms after the first unreported segment,
        // whichever comes first. A fast stream is reported a quarter ring at a time whatever
        // its segment size (one interrupt per 64 KiB of segments, as before, interrupted
        // every 26 µs for 256 KiB segments at 10 GB/s, and each interrupt costs the
        // application a WAIT and a RELEASE); a slow one waits at most 1 ms to be reported, well
        // within a ring's worth of buffering, and a WAIT that finds nothing ready looks at the
        // record ring itself before it pends (`StreamEngines::poll_stream`). On the simulated
        // machine 32,768 segments of 256 KiB took 2,048 WAITs, against 8,813 with a 100 µs
        // timer.
        let coalesce = (s.count / 4).max(1);
        let usec = if coalesce > 1 { 1000 } else { 0 };
        self.se_write(n, se::MOD, coalesce | (usec << 16));
        let mut ctrl = se::CTRL_START.mask();
        if s.dir == Direction::Playback {
            ctrl |= se::CTRL_DIR.mask();
            if s.verify {
                ctrl |= se::CTRL_VERIFY.mask();
            }
        }
        if per_segment {
            ctrl |= se::CTRL_SEG_TABLE.mask();
        }
        // The table and the zeroed record ring must be visible to the device before START.
        fence(Ordering::Release);
        self.se_write(n, se::CTRL, ctrl);
        let st = self.se_reg(n, se::STATUS);
        if gone(st) {
            return Err((s, HcaError::Removed));
        }
        if !se::STATUS_RUNNING.is_set(st) || se::STATUS_ERROR.is_set(st) {
            return Err((s, HcaError::EngineRefused));
        }
        self.stats.strategy = s.strategy() as u64;
        match s.dir {
            Direction::Capture => {
                let all = s.count;
                let granted = self.grant(&mut s, all, at);
                if granted < u64::from(all) {
                    self.streams[n as usize] = Some(s);
                    self.end(n, EndReason::NoResources);
                    return Ok(());
                }
            }
            Direction::Playback => {
                // Every segment starts with the application, to be filled.
                for i in 0..u64::from(s.count) {
                    s.ready.push_back(SegmentInfo {
                        sequence: i,
                        index: i as u32,
                        bytes: s.seg,
                        status: RecordStatus::Ok as u32,
                        reserved0: 0,
                    });
                }
            }
        }
        self.streams[n as usize] = Some(s);
        Ok(())
    }

    /// Ends the stream on engine `n` (if any): writes STOP once. The stream is released once the
    /// engine acknowledges (or the device is gone) by [`Self::take_ended`].
    pub fn end(&mut self, n: u32, why: EndReason) {
        let Some(s) = self.streams.get_mut(n as usize).and_then(Option::as_mut) else {
            return;
        };
        if s.ending.is_none() {
            s.ending = Some(why);
        }
        if !s.stop_written {
            s.stop_written = true;
            self.se_write(n, se::CTRL, se::CTRL_STOP.mask());
        }
    }

    /// Ends every stream opened through `file` (`EvtFileCleanup`). Returns whether one was.
    pub fn end_file(&mut self, file: File) -> bool {
        let mut any = false;
        for n in 0..self.streams.len() {
            if self.streams[n].as_ref().is_some_and(|s| s.file == file) {
                self.end(n as u32, EndReason::Stopped);
                any = true;
            }
        }
        any
    }

    /// The START cancel routine's work: ends the stream the request belongs to (the request is
    /// completed when the stream is released), or completes a request whose stream is already
    /// released. Returns the request to complete now, with its status and byte count.
    ///
    /// The cancel routine's `request` is a second owner of a request the stream's buffer (or
    /// its finisher) still holds: exactly one of the two values is completed, the other is given
    /// up ([`Request::relinquish`]).
    pub fn cancel(&mut self, request: Request) -> Option<(Request, Outcome, usize)> {
        let id = request.id();
        if let Some(n) = self
            .streams
            .iter()
            .flatten()
            .find(|s| s.request().id() == id)
            .map(|s| s.engine)
        {
            if let Some(s) = self.streams[n as usize].as_mut() {
                s.cancel_ran = true;
            }
            self.end(n, EndReason::Cancelled);
            // The stream's value completes it when the stream is released.
            request.relinquish();
            return None;
        }
        let Some(i) = self.rendezvous.iter().position(|r| r.request == id) else {
            // Not ours to complete (the finisher completed it before the routine could run).
            request.relinquish();
            return None;
        };
        if let Some((st, info)) = self.rendezvous[i].done {
            self.rendezvous.swap_remove(i);
            Some((request, st, info))
        } else {
            // The finisher completes it with its own value once the stream is released.
            self.rendezvous[i].cancel_arrived = true;
            request.relinquish();
            None
        }
    }

    /// Adds `stop` to the requests that complete when engine `n`'s stream is released, and ends
    /// the stream.
    ///
    /// # Errors
    /// [`HcaError::NoStream`] when the engine has no stream; [`HcaError::AccessDenied`]
    /// when it belongs to another handle. The request is handed back.
    pub fn stop(&mut self, n: u32, stop: Request) -> Result<(), (Request, HcaError)> {
        match self.streams.get_mut(n as usize).and_then(Option::as_mut) {
            None => Err((stop, HcaError::NoStream)),
            Some(s) if s.file != stop.file() => Err((stop, HcaError::AccessDenied)),
            Some(s) => {
                s.stop_waiters.push(stop);
                self.end(n, EndReason::Stopped);
                Ok(())
            }
        }
    }

    /// Takes out every ending stream whose engine has stopped (or whose device is gone; every
    /// ending stream when `all`), after a last look at its records. Call under the lock; release
    /// the result with [`super::build::finish`] at `PASSIVE_LEVEL` without it.
    ///
    /// Without allocating: at most one stream per engine, and at most
    /// [`regs::MAX_STREAM_ENGINES`] engines.
    pub fn take_ended(
        &mut self,
        all: Option<EndReason>,
        at: &AtDispatch<'_>,
    ) -> Batch<Ended, { regs::MAX_STREAM_ENGINES as usize }> {
        let mut out = Batch::new();
        // `fill` asks for a stream only while the batch has room, so none is taken out and
        // then lost; with one stream per engine the batch never fills before the engines end.
        let mut next = 0;
        out.fill(|| {
            while next < self.streams.len() {
                let n = next;
                next += 1;
                if let Some(e) = self.take_if_ended(n, all, at) {
                    return Some(e);
                }
            }
            None
        });
        out
    }

    /// Takes engine `n`'s stream out if it is ending and its engine has stopped (or the device
    /// is gone; or `all`), records what it leaves, and decides who completes its START.
    fn take_if_ended(
        &mut self,
        n: usize,
        all: Option<EndReason>,
        at: &AtDispatch<'_>,
    ) -> Option<Ended> {
        let s = self.streams[n].as_ref()?;
        let st = self.se_reg(n as u32, se::STATUS);
        let stopped = gone(st) || se::STATUS_STOPPED.is_set(st) || !se::STATUS_RUNNING.is_set(st);
        if !(all.is_some() || (s.ending.is_some() && stopped)) {
            return None;
        }
        let mut s = self.streams[n].take()?;
        // After STOPPED the engine writes nothing more: what is in the ring is final.
        if !gone(st) {
            self.poll_records(&mut s, at);
        }
        if gone(st) {
            s.ending = Some(EndReason::Removed);
        } else if s.ending.is_none() {
            s.ending = Some(all.unwrap_or(EndReason::Stopped));
        }
        self.leftovers[n] = Some(Leftover {
            file: s.file,
            ready: core::mem::take(&mut s.ready),
        });
        let start_owner = if s.cancel_ran || s.request().unmark_cancelable().is_ok() {
            StartOwner::Finisher
        } else {
            // The cancel routine is about to run: whichever of it and the finisher comes
            // second completes the request.
            self.rendezvous.push(Rendezvous {
                request: s.request().id(),
                cancel_arrived: false,
                done: None,
            });
            StartOwner::Rendezvous
        };
        Some(Ended {
            stream: s,
            start_owner,
        })
    }

    /// Records a released stream's outcome for its START request's cancel routine, or returns
    /// the request to complete now if the routine has run.
    pub fn rendezvous_done(
        &mut self,
        request: Request,
        status: Outcome,
        info: usize,
    ) -> Option<(Request, Outcome, usize)> {
        let id = request.id();
        let Some(i) = self.rendezvous.iter().position(|r| r.request == id) else {
            // Every stream whose finisher meets its cancel routine has an entry: not reached.
            return Some((request, status, info));
        };
        if self.rendezvous[i].cancel_arrived {
            self.rendezvous.swap_remove(i);
            Some((request, status, info))
        } else {
            // The cancel routine completes it with its own value when it runs.
            self.rendezvous[i].done = Some((status, info));
            request.relinquish();
            None
        }
    }

    /// Whether an ending stream's engine has not acknowledged its stop yet.
    #[must_use]
    pub fn awaiting_ack(&self) -> bool {
        self.streams.iter().flatten().any(|s| {
            let st = self.se_reg(s.engine, se::STATUS);
            s.ending.is_some()
                && !gone(st)
                && !se::STATUS_STOPPED.is_set(st)
                && se::STATUS_RUNNING.is_set(st)
        })
    }

    /// Whether any stream exists.
    #[must_use]
    pub fn any(&self) -> bool {
        self.streams.iter().any(Option::is_some)
    }
}
