//! Stream engines as the driver runs them: continuous DMA between the device and an
//! application's circular buffer (`docs/dma.md` §5, `docs/device.md` §8).
//!
//! A stream owns, in teardown order: the device's view of the buffer ([`Access`], one of the
//! four strategies), the descriptor table and the record ring (common buffers), the caller's
//! buffer ([`UserBuffer`], the START request's locked MDL), its own DMA adapter, and the START
//! request itself, completed only after everything before it is released.
//!
//! Segments change hands by credits, and each hand-over carries its flush:
//! - capture: the device fills a segment it holds a credit for and writes its record; the driver
//!   reads the record (owner byte with `Acquire`), makes the segment's bytes visible to the CPU
//!   (the strategy's flush), and only then offers it to the application (`WAIT`); when the
//!   application hands it back (`RELEASE`) the driver grants its credit again;
//! - playback: the application fills a segment and releases it; the driver makes the bytes
//!   visible to the device (the strategy's flush) and only then grants the credit; the record
//!   returns the segment to the application.
//!
//! A flush therefore only ever covers a segment the device holds no credit for: never bytes the
//! device may be writing or reading.
//!
//! No `unsafe`: DMA goes through [`crate::dma`], registers through [`crate::sys::Mmio`].

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::sync::atomic::{Ordering, fence};

use rhca_hw::ioctl::{
    MAX_WAIT_SEGMENTS, START_FLAG_VERIFY, SegmentInfo, Strategy, StreamWaitOut, WAIT_FLAG_ENDED,
};
use rhca_hw::regs::{self, db, se};
use rhca_hw::ring::Ring;
use rhca_hw::stream::{self, Descriptor, Direction, Record, RecordStatus};

use super::{Hca, gone};
use crate::dma::{
    self, Adapter, CommonBuffer, DmaError, MdlCommonBuffer, SgMapping, TransferContext, UserBuffer,
};
use crate::sys::AtDispatch;
use crate::sys::wdf::{File, Request, RequestId};

use super::HcaError;

/// A START request's outcome: success, or why the stream ended in error.
pub type Outcome = Result<(), HcaError>;

/// Why a stream ends; it decides the START request's final status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// `IOCTL_RHCA_STREAM_STOP` or the handle was closed.
    Stopped,
    /// The START request was cancelled (the process is terminating, or `CancelIoEx`).
    Cancelled,
    /// The device left D0.
    PowerDown,
    /// The device is gone.
    Removed,
    /// The engine reported an error (a DMA fault, a refused configuration).
    DeviceError,
    /// A record the device could not legitimately have written.
    Hostile,
    /// A mapping or allocation needed to hand a segment over failed.
    NoResources,
    /// The stream could not start (the status says why).
    Failed(HcaError),
}

impl EndReason {
    /// The START request's outcome.
    ///
    /// # Errors
    /// Every reason but [`EndReason::Stopped`] ends the request in error.
    pub const fn result(self) -> Result<(), HcaError> {
        match self {
            Self::Stopped => Ok(()),
            Self::Cancelled | Self::PowerDown => Err(HcaError::Cancelled),
            Self::Removed => Err(HcaError::Removed),
            Self::DeviceError | Self::Hostile => Err(HcaError::DeviceError),
            Self::NoResources => Err(HcaError::NoResources),
            Self::Failed(e) => Err(e),
        }
    }
}

/// How the device reaches the caller's buffer: the four strategies of `docs/dma.md` §5.
#[derive(Debug)]
pub enum Access {
    /// `CreateCommonBufferFromMdl`: one logical range for the stream's life, cache flushes only.
    FromMdl(MdlCommonBuffer),
    /// One scatter/gather mapping of the whole buffer for the stream's life, `FlushDmaBuffer`
    /// per segment.
    Persistent(SgMapping),
    /// A mapping per segment, made when the device is given the segment and put when it gives
    /// it back; the device reads each segment's descriptor group as it begins the segment.
    PerSegment {
        /// The live mapping of each segment the device holds.
        maps: Vec<Option<SgMapping>>,
        /// The version 3 transfer context the mappings are requested with.
        ctx: TransferContext,
        /// Entries per segment group.
        group: u32,
    },
    /// The device moves data to and from common buffers (one per segment); the CPU copies.
    Staging(Vec<CommonBuffer>),
}

impl Access {
    /// The strategy.
    #[must_use]
    pub const fn strategy(&self) -> Strategy {
        match self {
            Self::FromMdl(_) => Strategy::CommonBufferFromMdl,
            Self::Persistent(_) => Strategy::PersistentSg,
            Self::PerSegment { .. } => Strategy::PerSegment,
            Self::Staging(_) => Strategy::Staging,
        }
    }
}

fn leak_on_removal(why: Option<EndReason>) -> bool {
    why == Some(EndReason::Removed) && crate::hooks::leak_on_removal()
}

/// What a START asks for, validated.
#[derive(Debug, Clone, Copy)]
pub struct StartParams {
    /// Engine.
    pub engine: u32,
    /// Direction.
    pub dir: Direction,
    /// Strategy asked for (`Auto`: the driver chooses).
    pub strategy: Strategy,
    /// Playback: the device checks the pattern.
    pub verify: bool,
}

/// A running stream.
#[derive(Debug)]
pub struct Stream {
    // Field order is teardown order (see the module documentation).
    access: Access,
    table: CommonBuffer,
    records: CommonBuffer,
    user: UserBuffer,
    adapter: Adapter,
    file: File,
    engine: u32,
    dir: Direction,
    verify: bool,
    seg: u32,
    count: u32,
    ring: Ring,
    /// Sequence number of the next record.
    next_record: u64,
    /// Segments credited since START (every sequence below it was or is the device's).
    granted: u64,
    /// Segments ready for the application, oldest first.
    ready: VecDeque<SegmentInfo>,
    /// The oldest sequence the application holds (the next `RELEASE` must start there).
    app_oldest: u64,
    /// One past the newest sequence handed to the application.
    app_next: u64,
    /// Bytes the device moved.
    bytes: u64,
    ending: Option<EndReason>,
    stop_written: bool,
    cancel_ran: bool,
    stop_waiters: Vec<Request>,
}

/// A stream taken out of its engine, ready to be released at `PASSIVE_LEVEL`.
#[derive(Debug)]
pub struct Ended {
    stream: Box<Stream>,
    /// Who completes the START request.
    start_owner: StartOwner,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StartOwner {
    /// The finisher (the request is no longer cancelable).
    Finisher,
    /// Whichever of the finisher and the cancel routine comes second (see
    /// [`Hca::stream_cancel`]).
    Rendezvous,
}

impl Ended {
    /// The engine the stream ran on.
    #[must_use]
    pub fn engine(&self) -> u32 {
        self.stream.engine
    }
}

/// A START request whose cancel routine and finisher meet (the request was being cancelled
/// when the stream ended).
#[derive(Debug)]
pub struct Rendezvous {
    request: RequestId,
    /// The cancel routine has run.
    cancel_arrived: bool,
    /// The stream is released: the final status and byte count.
    done: Option<(Outcome, usize)>,
}

const fn seg_index(seq: u64, count: u32) -> u32 {
    (seq % count as u64) as u32
}

impl Stream {
    /// Builds a stream's DMA resources for `user` (the START request's buffer) with the strategy
    /// `p` asks for, or the best correct one. Call at `PASSIVE_LEVEL`, without the device lock.
    ///
    /// # Errors
    /// [`HcaError::NotSupported`] for a forced strategy the platform or adapter cannot do correctly;
    /// [`HcaError::NoResources`] when no strategy can get its resources. The buffer and
    /// the adapter are released then, and the START request comes back, still pending.
    pub fn build(
        adapter: Adapter,
        user: UserBuffer,
        caps: &regs::Caps,
        p: StartParams,
    ) -> Result<Box<Self>, (Request, HcaError)> {
        let (access, table, records, ring) = match Self::resources(&adapter, &user, caps, p) {
            Ok(r) => r,
            Err(st) => {
                // The adapter goes first: nothing it made refers to the pages any more.
                drop(adapter);
                return Err((user.into_request(), st));
            }
        };
        Ok(Box::new(Self {
            access,
            table,
            records,
            file: user.request().file(),
            seg: user.segment_size(),
            count: user.segments(),
            user,
            adapter,
            engine: p.engine,
            dir: p.dir,
            verify: p.verify,
            ring,
            next_record: 0,
            granted: 0,
            ready: VecDeque::new(),
            app_oldest: 0,
            app_next: 0,
            bytes: 0,
            ending: None,
            stop_written: false,
            cancel_ran: false,
            stop_waiters: Vec::new(),
        }))
    }

    /// The first strategy in `p`'s order that gets its resources: its access, descriptor
    /// table, record ring memory and ring arithmetic.
    fn resources(
        adapter: &Adapter,
        user: &UserBuffer,
        caps: &regs::Caps,
        p: StartParams,
    ) -> Result<(Access, CommonBuffer, CommonBuffer, Ring), HcaError> {
        let order: &[Strategy] = match p.strategy {
            Strategy::Auto => &[
                Strategy::CommonBufferFromMdl,
                Strategy::PersistentSg,
                Strategy::PerSegment,
                Strategy::Staging,
            ],
            Strategy::CommonBufferFromMdl => &[Strategy::CommonBufferFromMdl],
            Strategy::PersistentSg => &[Strategy::PersistentSg],
            Strategy::PerSegment => &[Strategy::PerSegment],
            Strategy::Staging => &[Strategy::Staging],
        };
        let max_desc = 1u64 << caps.log_max_desc;
        let mut last = HcaError::NotSupported;
        for &s in order {
            match Self::access(adapter, user, s, p.dir, max_desc) {
                Ok((access, table)) => {
                    let records = adapter
                        .common_buffer((user.segments() as usize * stream::RECORD_SIZE) as u32)
                        .map_err(|_| HcaError::NoResources)?;
                    let ring =
                        Ring::new(user.segments()).map_err(|_| HcaError::InvalidParameter)?;
                    return Ok((access, table, records, ring));
                }
                Err(st) => last = st,
            }
        }
        Err(last)
    }

    /// The access and descriptor table of strategy `s`, or why it cannot be used here.
    fn access(
        adapter: &Adapter,
        user: &UserBuffer,
        s: Strategy,
        dir: Direction,
        max_desc: u64,
    ) -> Result<(Access, CommonBuffer), HcaError> {
        let table_for = |entries: &[(u64, u32)]| -> Result<CommonBuffer, HcaError> {
            if entries.is_empty() || entries.len() as u64 > max_desc {
                return Err(HcaError::NotSupported);
            }
            let t = adapter
                .common_buffer((entries.len() * stream::DESC_SIZE) as u32)
                .map_err(|_| HcaError::NoResources)?;
            write_entries(&t, 0, entries);
            Ok(t)
        };
        let dma_dir = match dir {
            Direction::Capture => dma::Direction::FromDevice,
            Direction::Playback => dma::Direction::ToDevice,
        };
        match s {
            Strategy::CommonBufferFromMdl => {
                if !user.page_aligned() {
                    return Err(HcaError::NotSupported);
                }
                let b = adapter
                    .common_buffer_from_mdl(user)
                    .map_err(|_| HcaError::NotSupported)?;
                let t = table_for(&[(b.logical(), user.len())])?;
                Ok((Access::FromMdl(b), t))
            }
            Strategy::PersistentSg => {
                // The per-segment flush needs FlushDmaBuffer; without it a bounce or Verifier
                // double buffer would never be synchronised (docs/dma.md §5.2).
                if !adapter.has_flush_dma_buffer() || !adapter.has_synchronous_mapping() {
                    return Err(HcaError::NotSupported);
                }
                let raise = crate::sys::KSpinLock::new();
                let guard = raise.lock();
                let mut ctx = TransferContext::default();
                let m = adapter
                    .map_range(
                        user,
                        0,
                        user.segments(),
                        dma_dir,
                        &mut ctx,
                        &guard.at_dispatch(),
                    )
                    .map_err(|e| match e {
                        DmaError::MissingRoutine(_) => HcaError::NotSupported,
                        _ => HcaError::NoResources,
                    })?;
                drop(guard);
                let entries: Vec<(u64, u32)> = m.elements().collect();
                let t = table_for(&entries)?;
                Ok((Access::Persistent(m), t))
            }
            Strategy::PerSegment => {
                if !adapter.has_synchronous_mapping() {
                    return Err(HcaError::NotSupported);
                }
                // A segment's list has at most one element per page it spans.
                let group = user.segment_size().div_ceil(4096) + 1;
                if u64::from(group) * u64::from(user.segments()) > max_desc {
                    return Err(HcaError::NotSupported);
                }
                let t = adapter
                    .common_buffer(group * user.segments() * stream::DESC_SIZE as u32)
                    .map_err(|_| HcaError::NoResources)?;
                Ok((
                    Access::PerSegment {
                        maps: (0..user.segments()).map(|_| None).collect(),
                        ctx: TransferContext::default(),
                        group,
                    },
                    t,
                ))
            }
            Strategy::Staging => {
                let pages = (0..user.segments())
                    .map(|_| adapter.common_buffer(user.segment_size()))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| HcaError::NoResources)?;
                let entries: Vec<(u64, u32)> = pages
                    .iter()
                    .map(|p| (p.logical(), user.segment_size()))
                    .collect();
                let t = table_for(&entries)?;
                Ok((Access::Staging(pages), t))
            }
            Strategy::Auto => Err(HcaError::NotSupported),
        }
    }

    /// The strategy in use.
    #[must_use]
    pub const fn strategy(&self) -> Strategy {
        self.access.strategy()
    }

    /// The engine.
    #[must_use]
    pub const fn engine(&self) -> u32 {
        self.engine
    }

    /// The START request (pending, and held by the stream's buffer).
    pub const fn request(&self) -> &Request {
        self.user.request()
    }

    /// Releases the device's view of the buffer, the rings, the buffer and the adapter, in that
    /// order, at `PASSIVE_LEVEL` (the device has stopped or is gone). Returns the START request,
    /// its status and `Information` (the bytes of the buffer that hold stream data), and the
    /// STOP requests waiting for the end.
    fn dismantle(self: Box<Self>) -> (Request, Outcome, usize, Vec<Request>) {
        let s = *self;
        let leak = leak_on_removal(s.ending);
        let status = s.ending.unwrap_or(EndReason::Stopped).result();
        // `Information` may not exceed the request's output buffer: the KMDF verifier stops a
        // successful user-mode IOCTL that reports more (WDF_REQUEST_FATAL_ERROR, INFORMATION_
        // LENGTH_MISMATCH). A circular buffer usually moves more than it holds, so the START
        // reports the bytes of its buffer that hold stream data; the application counts what
        // moved from the segments WAIT delivers (each with its byte count).
        let info = s.bytes.min(u64::from(s.user.len())) as usize;
        let Self {
            access,
            table,
            records,
            user,
            adapter,
            stop_waiters,
            ..
        } = s;
        // A device→memory list put here copies any bounce or Verifier double buffer back, so
        // the partial segment of a stop reaches the application too.
        if leak {
            core::mem::forget(access);
            core::mem::forget(table);
            core::mem::forget(records);
        } else {
            drop(access);
            drop(table);
            drop(records);
        }
        let request = user.into_request();
        drop(adapter);
        (request, status, info, stop_waiters)
    }
}

/// Segments a released stream left undelivered, for its handle's next WAIT.
#[derive(Debug)]
pub struct Leftover {
    file: File,
    ready: VecDeque<SegmentInfo>,
}

/// Moves up to `max` (1..=16) ready segments into `out`; returns how many.
fn take_ready(ready: &mut VecDeque<SegmentInfo>, out: &mut StreamWaitOut, max: u32) -> u32 {
    let k = (max as usize).clamp(1, MAX_WAIT_SEGMENTS).min(ready.len());
    for slot in out.segments.iter_mut().take(k) {
        if let Some(e) = ready.pop_front() {
            *slot = e;
        }
    }
    k as u32
}

/// Writes descriptor entries at entry `first` of `table`; the last one is marked last.
fn write_entries(table: &CommonBuffer, first: usize, entries: &[(u64, u32)]) {
    let mut b = [0u8; stream::DESC_SIZE];
    for (i, &(addr, len)) in entries.iter().enumerate() {
        let d = Descriptor {
            addr,
            len,
            last: i + 1 == entries.len(),
        };
        if d.encode(&mut b).is_ok() {
            table.write((first + i) * stream::DESC_SIZE, &b);
        }
    }
}

impl Hca {
    fn se_reg(&self, n: u32, reg: u32) -> u32 {
        se::offset(n, reg).map_or(regs::ALL_ONES, |o| self.regs.read(o))
    }

    fn se_write(&self, n: u32, reg: u32, v: u32) {
        if let Ok(o) = se::offset(n, reg) {
            self.regs.write(o, v);
        }
    }

    /// Stream engines the device has.
    #[must_use]
    pub const fn stream_engines(&self) -> u32 {
        self.caps.stream_engines
    }

    /// Reserves engine `n` for a START being built.
    ///
    /// # Errors
    /// [`HcaError::InvalidParameter`] for an engine the device lacks, [`HcaError::Busy`] when
    /// the engine has a stream (at most one per engine), [`HcaError::NotReady`] when the
    /// device is not in D0.
    pub fn stream_reserve(&mut self, n: u32) -> Result<(), HcaError> {
        if n >= self.caps.stream_engines || n >= regs::MAX_STREAM_ENGINES {
            return Err(HcaError::InvalidParameter);
        }
        if !self.running || self.needs_reset {
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
    pub const fn stream_unreserve(&mut self, n: u32) {
        self.reserved &= !(1 << n);
    }

    /// Programs and starts engine `s.engine()` with the stream `s`, and gives the device its
    /// first credits (capture: every segment). The START request must already be cancelable.
    ///
    /// A stream that cannot start is parked in its engine as ended (the engine is not running),
    /// so that it is released, and its START completed, like any other: the caller runs the
    /// release ([`Hca::take_ended`]) when this returns false.
    pub fn stream_install(&mut self, s: Box<Stream>, at: &AtDispatch<'_>) -> bool {
        let n = s.engine;
        self.reserved &= !(1 << n);
        match self.try_install(s, at) {
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
        at: &AtDispatch<'_>,
    ) -> Result<(), (Box<Stream>, HcaError)> {
        let n = s.engine;
        if !self.running {
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
        // Interrupt moderation: one interrupt per 64 KiB of segments (at most a quarter of the
        // ring, so the application always has segments to work on), or 100 µs after the first
        // unreported segment — small segments do not cost an interrupt each.
        let coalesce = (65536 / s.seg).clamp(1, (s.count / 4).max(1));
        let usec = if coalesce > 1 { 100 } else { 0 };
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
        self.stats.stream_strategy = s.strategy() as u64;
        match s.dir {
            Direction::Capture => {
                let all = s.count;
                let granted = self.grant(&mut s, all, at);
                if granted < u64::from(all) {
                    self.streams[n as usize] = Some(s);
                    self.stream_end(n, EndReason::NoResources);
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

    /// Hands the device the next `k` segments (sequences `granted ..`): each one's hand-over
    /// (mapping, flush or copy), then one release fence and one credit doorbell. Returns how
    /// many were handed over (fewer when a mapping failed).
    fn grant(&mut self, s: &mut Stream, segments: u32, at: &AtDispatch<'_>) -> u64 {
        let mut done = 0u32;
        for _ in 0..segments {
            let seq = s.granted + u64::from(done);
            let idx = seg_index(seq, s.count);
            let ok = match (&mut s.access, s.dir) {
                (Access::FromMdl(_), d) => {
                    // Cache maintenance before the transfer: clean for playback, invalidate for
                    // capture (no operation on coherent x86/x64).
                    s.user.cache_flush_segment(idx, d == Direction::Capture);
                    true
                }
                (Access::Persistent(_), Direction::Capture) => {
                    s.user.cache_flush_segment(idx, true);
                    true
                }
                (Access::Persistent(_), Direction::Playback) => {
                    // The application's bytes reach the device's view (a bounce or Verifier
                    // double buffer is refreshed) before the device may read them.
                    crate::hooks::skip_persistent_flush()
                        || s.user.flush_segment(&s.adapter, idx, false).is_ok()
                }
                (Access::PerSegment { maps, ctx, group }, d) => {
                    let dma_dir = match d {
                        Direction::Capture => dma::Direction::FromDevice,
                        Direction::Playback => dma::Direction::ToDevice,
                    };
                    match s.adapter.map_range(&s.user, idx, 1, dma_dir, ctx, at) {
                        Ok(m) => {
                            let entries: Vec<(u64, u32)> = m.elements().collect();
                            if entries.len() > *group as usize {
                                false
                            } else {
                                write_entries(&s.table, (idx * *group) as usize, &entries);
                                maps[idx as usize] = Some(m);
                                true
                            }
                        }
                        Err(_) => false,
                    }
                }
                (Access::Staging(pages), Direction::Playback) => {
                    s.user.copy_to_common(idx, &pages[idx as usize], 0);
                    true
                }
                (Access::Staging(_), Direction::Capture) => true,
            };
            if !ok {
                break;
            }
            self.stats.stream_flushes += 1;
            done += 1;
        }
        if done > 0 {
            s.granted += u64::from(done);
            // Segment bytes, descriptor groups and cache maintenance are complete before the
            // device learns of the credit: the release fence pairs with the device's reads
            // after it sees the doorbell.
            fence(Ordering::Release);
            if let Ok(o) = db::se_credit(s.engine) {
                self.regs.write(o, done);
            }
        }
        u64::from(done)
    }

    /// The DPC's stream work: consume the records of every stream (owner byte read with
    /// `Acquire` first), make completed segments visible, notice engines that stopped or
    /// failed. Returns whether a stream is waiting to be released (enqueue the work item).
    pub fn poll_streams(&mut self, at: &AtDispatch<'_>) -> bool {
        let mut stopped = false;
        for n in 0..self.streams.len() {
            let Some(mut s) = self.streams[n].take() else {
                continue;
            };
            self.poll_records(&mut s, at);
            let st = self.se_reg(n as u32, se::STATUS);
            self.streams[n] = Some(s);
            if gone(st) {
                self.stream_end(n as u32, EndReason::Removed);
            } else if se::STATUS_ERROR.is_set(st) {
                self.stream_end(n as u32, EndReason::DeviceError);
            }
            if self.streams[n].as_ref().is_some_and(|s| s.ending.is_some()) {
                stopped = true;
            }
        }
        stopped
    }

    fn poll_records(&mut self, s: &mut Stream, at: &AtDispatch<'_>) {
        loop {
            let modulus = 2 * u64::from(s.count);
            let Ok(idx) = s.ring.index((s.next_record % modulus) as u32) else {
                return;
            };
            let off = s.ring.slot(idx) as usize * stream::RECORD_SIZE;
            let owner = s.records.load_acquire(off + stream::RECORD_OWNER_OFFSET);
            if !s.ring.is_owned(idx, owner & stream::RECORD_OWNER_BIT != 0) {
                return;
            }
            let mut b = [0u8; stream::RECORD_SIZE];
            s.records.read(off, &mut b);
            // A record is accepted only for a segment the device holds a credit for, with the
            // expected sequence and a sane byte count; anything else is a hostile or broken
            // device, and the stream ends without touching the buffer again.
            let rec = match Record::decode(&b) {
                Ok(r)
                    if s.next_record < s.granted
                        && r.check(s.ring, idx, s.next_record, s.seg).is_ok() =>
                {
                    r
                }
                _ => {
                    self.stats.stream_errors += 1;
                    self.stats.hostile_cqes += 1;
                    if s.ending.is_none() {
                        s.ending = Some(EndReason::Hostile);
                    }
                    return;
                }
            };
            let i = seg_index(rec.seq, s.count);
            match (&mut s.access, s.dir) {
                (Access::FromMdl(_), Direction::Capture) => {
                    s.user.cache_flush_segment(i, true);
                }
                (Access::Persistent(_), Direction::Capture) => {
                    // The device finished this segment and holds no credit for it: its bytes
                    // are copied out of a bounce or Verifier double buffer (or invalidated in
                    // the caches) before the application may see them.
                    if !crate::hooks::skip_persistent_flush()
                        && s.user.flush_segment(&s.adapter, i, true).is_err()
                    {
                        self.stats.stream_errors += 1;
                    }
                }
                (Access::PerSegment { maps, .. }, _) => {
                    if let Some(m) = maps[i as usize].take() {
                        m.release(at);
                    }
                }
                (Access::Staging(pages), Direction::Capture) => {
                    s.user.copy_from_common(i, &pages[i as usize], 0);
                }
                (Access::FromMdl(_) | Access::Persistent(_) | Access::Staging(_), _) => {}
            }
            if s.dir == Direction::Capture || matches!(s.access, Access::PerSegment { .. }) {
                self.stats.stream_flushes += 1;
            }
            s.next_record += 1;
            s.bytes += u64::from(rec.byte_count);
            self.stats.stream_bytes += u64::from(rec.byte_count);
            match rec.status {
                RecordStatus::Ok => self.stats.stream_segments += 1,
                RecordStatus::PatternMismatch | RecordStatus::Stopped => {
                    self.stats.stream_errors +=
                        u64::from(rec.status == RecordStatus::PatternMismatch);
                }
                RecordStatus::DmaError => {
                    self.stats.stream_errors += 1;
                    if s.ending.is_none() {
                        s.ending = Some(EndReason::DeviceError);
                    }
                }
            }
            let ready = match s.dir {
                Direction::Capture => SegmentInfo {
                    sequence: rec.seq,
                    index: i,
                    bytes: rec.byte_count,
                    status: rec.status as u32,
                    reserved0: 0,
                },
                Direction::Playback => SegmentInfo {
                    sequence: rec.seq + u64::from(s.count),
                    index: i,
                    bytes: s.seg,
                    status: rec.status as u32,
                    reserved0: 0,
                },
            };
            // Every segment the device gives back goes to the application, with its status and
            // byte count (a failed or stopped capture segment says so), so that RELEASE
            // accounting holds.
            s.ready.push_back(ready);
        }
    }

    /// Ends the stream on engine `n` (if any): writes STOP once. The stream is released once the
    /// engine acknowledges (or the device is gone) by [`Hca::take_ended`].
    pub fn stream_end(&mut self, n: u32, why: EndReason) {
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
    pub fn stream_end_file(&mut self, file: File) -> bool {
        let mine: Vec<u32> = self
            .streams
            .iter()
            .flatten()
            .filter(|s| s.file == file)
            .map(|s| s.engine)
            .collect();
        for &n in &mine {
            self.stream_end(n, EndReason::Stopped);
        }
        !mine.is_empty()
    }

    /// The START cancel routine's work: ends the stream the request belongs to (the request is
    /// completed when the stream is released), or completes a request whose stream is already
    /// released. Returns the request to complete now, with its status and byte count.
    ///
    /// The cancel routine's `request` is a second owner of a request the stream's buffer (or
    /// its finisher) still holds: exactly one of the two values is completed, the other is given
    /// up ([`Request::relinquish`]).
    pub fn stream_cancel(&mut self, request: Request) -> Option<(Request, Outcome, usize)> {
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
            self.stream_end(n, EndReason::Cancelled);
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
    pub fn stream_stop(&mut self, n: u32, stop: Request) -> Result<(), (Request, HcaError)> {
        match self.streams.get_mut(n as usize).and_then(Option::as_mut) {
            None => Err((stop, HcaError::NoStream)),
            Some(s) if s.file != stop.file() => Err((stop, HcaError::AccessDenied)),
            Some(s) => {
                s.stop_waiters.push(stop);
                self.stream_end(n, EndReason::Stopped);
                Ok(())
            }
        }
    }

    /// `RELEASE`: the application hands back `count` segments from `first`, the oldest it holds.
    ///
    /// # Errors
    /// [`HcaError::NoStream`] (no stream, and none ended on this handle),
    /// [`HcaError::AccessDenied`] (another handle's
    /// stream), [`HcaError::InvalidParameter`] (not the oldest held, or more than held).
    pub fn stream_release(
        &mut self,
        n: u32,
        file: File,
        first: u64,
        count: u32,
        at: &AtDispatch<'_>,
    ) -> Result<(), HcaError> {
        let Some(mut s) = self.streams.get_mut(n as usize).and_then(Option::take) else {
            // Segments of a stream that has ended go nowhere: handing them back is harmless for
            // the handle that ran it, and an error for anyone else.
            return match self.leftovers.get(n as usize) {
                Some(Some(l)) if l.file == file => Ok(()),
                _ => Err(HcaError::NoStream),
            };
        };
        let r = if s.file != file {
            Err(HcaError::AccessDenied)
        } else if count == 0
            || first != s.app_oldest
            || u64::from(count) > s.app_next - s.app_oldest
        {
            Err(HcaError::InvalidParameter)
        } else {
            s.app_oldest += u64::from(count);
            if s.ending.is_none() {
                let granted = self.grant(&mut s, count, at);
                if granted < u64::from(count) {
                    s.ending = Some(EndReason::NoResources);
                }
            }
            Ok(())
        };
        let ending = s.ending.is_some() && !s.stop_written;
        self.streams[n as usize] = Some(s);
        if ending {
            let why = self.streams[n as usize]
                .as_ref()
                .and_then(|s| s.ending)
                .unwrap_or(EndReason::Stopped);
            self.stream_end(n, why);
        }
        r
    }

    /// `WAIT`: up to `max` ready segments of engine `n`. `Ok(None)`: none ready yet (pend the
    /// request until some are).
    ///
    /// # Errors
    /// [`HcaError::AccessDenied`] for another handle's stream.
    pub fn stream_wait(
        &mut self,
        n: u32,
        file: Option<File>,
        max: u32,
    ) -> Result<Option<StreamWaitOut>, HcaError> {
        let Some(s) = self.streams.get_mut(n as usize).and_then(Option::as_mut) else {
            // No stream: the segments a released stream left undelivered go to its handle
            // first, the last of them flagged as the end; otherwise the wait ends at once.
            let strategy = self.stats.stream_strategy as u32;
            let mut out = StreamWaitOut {
                engine: n,
                strategy,
                flags: WAIT_FLAG_ENDED,
                ..StreamWaitOut::default()
            };
            if let Some(Some(left)) = self.leftovers.get_mut(n as usize)
                && file.is_none_or(|f| f == left.file)
            {
                out.count = take_ready(&mut left.ready, &mut out, max);
                if !left.ready.is_empty() {
                    out.flags = 0;
                }
            }
            return Ok(Some(out));
        };
        if file.is_some_and(|f| f != s.file) {
            return Err(HcaError::AccessDenied);
        }
        if s.ready.is_empty() {
            return Ok(None);
        }
        let mut out = StreamWaitOut {
            engine: n,
            strategy: s.strategy() as u32,
            ..StreamWaitOut::default()
        };
        out.count = take_ready(&mut s.ready, &mut out, max);
        s.app_next += u64::from(out.count);
        Ok(Some(out))
    }

    /// Whether engine `n` has a stream with segments ready.
    #[must_use]
    pub fn stream_has_ready(&self, n: u32) -> bool {
        self.streams
            .get(n as usize)
            .and_then(Option::as_ref)
            .is_some_and(|s| !s.ready.is_empty())
    }

    /// Takes out every ending stream whose engine has stopped (or whose device is gone; every
    /// ending stream when `all`), after a last look at its records. Call under the lock; release
    /// the result with [`finish`] at `PASSIVE_LEVEL` without it.
    pub fn take_ended(&mut self, all: Option<EndReason>, at: &AtDispatch<'_>) -> Vec<Ended> {
        let mut out = Vec::new();
        for n in 0..self.streams.len() {
            let Some(s) = self.streams[n].as_ref() else {
                continue;
            };
            let st = self.se_reg(n as u32, se::STATUS);
            let stopped =
                gone(st) || se::STATUS_STOPPED.is_set(st) || !se::STATUS_RUNNING.is_set(st);
            if !(all.is_some() || (s.ending.is_some() && stopped)) {
                continue;
            }
            let Some(mut s) = self.streams[n].take() else {
                continue;
            };
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
            out.push(Ended {
                stream: s,
                start_owner,
            });
        }
        out
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
    pub fn streams_awaiting_ack(&self) -> bool {
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
    pub fn has_streams(&self) -> bool {
        self.streams.iter().any(Option::is_some)
    }
}

/// What releasing a stream leaves to complete.
#[derive(Debug)]
pub struct Finished {
    /// The engine.
    pub engine: u32,
    /// The START request, its status and byte count — `None` when its cancel routine completes
    /// it.
    pub start: Option<(Request, Outcome, usize)>,
    /// STOP requests, to complete with success.
    pub stops: Vec<Request>,
    /// The START request when its completion goes through the rendezvous.
    pub rendezvous: Option<(Request, Outcome, usize)>,
}

/// Releases an ended stream's DMA resources at `PASSIVE_LEVEL`, without the device lock.
#[must_use]
pub fn finish(e: Ended) -> Finished {
    let engine = e.stream.engine;
    let (request, status, info, stops) = e.stream.dismantle();
    match e.start_owner {
        StartOwner::Finisher => Finished {
            engine,
            start: Some((request, status, info)),
            stops,
            rendezvous: None,
        },
        StartOwner::Rendezvous => Finished {
            engine,
            start: None,
            stops,
            rendezvous: Some((request, status, info)),
        },
    }
}

/// Releases a stream that never reached its engine, at `PASSIVE_LEVEL`; returns its START
/// request, to be completed.
pub fn discard(s: Box<Stream>) -> Request {
    s.dismantle().0
}

/// The START validation's device limits: (alignment, smallest segment, largest segment).
#[must_use]
pub const fn segment_limits(caps: &regs::Caps) -> (u32, u32, u32) {
    (
        stream::SEG_ALIGN,
        1 << caps.log_min_seg,
        1 << caps.log_max_seg,
    )
}

/// `StreamStartIn` flags to parameters.
#[must_use]
pub const fn verify_flag(flags: u32) -> bool {
    flags & START_FLAG_VERIFY != 0
}
