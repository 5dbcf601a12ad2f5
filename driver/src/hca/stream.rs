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

//! The module's parts: this file holds the types; `build` makes and releases a stream's DMA
//! resources, [`StreamEngines`] (`engines`) starts, ends and takes out streams, and `transfer`
//! moves segments between the device and the application.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec::Vec;

use rhca_hw::ioctl::{MAX_WAIT_SEGMENTS, START_FLAG_VERIFY, SegmentInfo, Strategy, StreamWaitOut};
use rhca_hw::regs;
use rhca_hw::ring::Ring;
use rhca_hw::stream::{self, Descriptor, Direction};

use crate::dma::{Adapter, CommonBuffer, MdlCommonBuffer, SgMapping, TransferContext, UserBuffer};
use crate::sys::wdf::{File, Request, RequestId};

use super::HcaError;

mod build;
mod engines;
mod transfer;

pub use build::{discard, finish};
pub use engines::StreamEngines;

/// What the streams add to `IOCTL_RHCA_STATISTICS` (the `stream_*` counters, and hostile
/// records among the hostile completions).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// Segments completed without error.
    pub segments: u64,
    /// Bytes the devices moved.
    pub bytes: u64,
    /// Segment hand-overs (flushes, mappings, copies).
    pub flushes: u64,
    /// Segments that failed, and stream errors.
    pub errors: u64,
    /// The strategy of the last stream started.
    pub strategy: u64,
    /// Records the device could not legitimately have written.
    pub hostile: u64,
}

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
    /// The reason's name, for the trace.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Stopped => "stopped",
            Self::Cancelled => "cancelled",
            Self::PowerDown => "power-down",
            Self::Removed => "removed",
            Self::DeviceError => "device-error",
            Self::Hostile => "hostile-record",
            Self::NoResources => "no-resources",
            Self::Failed(_) => "start-failed",
        }
    }

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
    /// [`StreamEngines::cancel`]).
    Rendezvous,
}

/// A strategy's name, for the trace.
#[must_use]
pub const fn strategy_name(s: Strategy) -> &'static str {
    match s {
        Strategy::Auto => "auto",
        Strategy::CommonBufferFromMdl => "common-buffer-from-mdl",
        Strategy::PersistentSg => "persistent-sg",
        Strategy::PerSegment => "per-segment",
        Strategy::Staging => "staging",
    }
}

impl Stream {
    /// The engine, the strategy in use, the buffer's length and the segment size, for the
    /// trace.
    #[must_use]
    pub fn describe(&self) -> (u32, &'static str, u64, u32) {
        (
            self.engine,
            strategy_name(self.access.strategy()),
            u64::from(self.user.len()),
            self.seg,
        )
    }
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
