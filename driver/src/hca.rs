//! The HCA as the driver runs it: rings in common buffers, the MAD send and receive paths, the
//! completion queue poll, quiesce — everything between the KMDF callbacks and the registers.
//!
//! This file holds the state ([`Hca`] and its queues); the work is in the submodules:
//! `bringup` (reset, identify, program, enable, quiesce, recovery), `rings` (ring memory and the
//! one post path), `send`, `recv`, `completion` (the CQ poll), [`stream`] (the stream engines)
//! and [`HcaError`].
//!
//! The state lives behind the device's spin lock ([`crate::sys::SpinMutex`]); every method here
//! runs with it held, at `DISPATCH_LEVEL`, which is what the mapping routines need. No `unsafe`:
//! DMA goes through [`crate::dma`], registers through [`crate::sys::Mmio`].
//!
//! Teardown order (the field order of [`Hca`]): outstanding mappings, then the rings, then the
//! adapter (its last reference), then the register mapping. The device is quiesced or reset
//! before any of it is released.

#![forbid(unsafe_code)]

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;

use rhca_hw::ioctl::{RecvMadOut, SendMadIn, SendMadOut, StatisticsOut};
use rhca_hw::regs::{self, Caps, WqId};
use rhca_hw::ring::Ring;

use crate::dma::{Adapter, CommonBuffer, PendingMapping, SgMapping};
use crate::sys::Mmio;
use crate::sys::wdf::Request;

/// Milliseconds between two ticks of the watchdog ([`Hca::watchdog_tick`]).
pub const WATCHDOG_PERIOD_MS: u32 = 100;

/// Watchdog ticks a send queue may hold posted sends without completing any before it stalls.
///
/// Two seconds: a thousand times what a MAD send takes, and long enough for a device slowed
/// down (a slow fabric, a loaded host) to still make progress in.
pub const STALL_TICKS: u32 = 20;

const CQ_LOG: u32 = 8;
const SQ_LOG: u32 = 6;
const RQ_LOG: u32 = 5;
const SQ_LOG_STRIDE: u32 = 9;
const RQ_LOG_STRIDE: u32 = 6;
/// Receive buffers kept posted per QP.
pub const RECV_DEPTH: usize = 32;
/// MADs kept when no receive request is pending.
pub const BACKLOG: usize = 64;
const PAGE: usize = 4096;
/// The largest WQE stride the interface allows (`2^LOG_MAX_STRIDE`): WQEs are built on the stack.
const MAX_STRIDE: usize = 1 << regs::LOG_MAX_STRIDE;

/// A posted send.
#[derive(Debug)]
struct SendSlot {
    request: Option<Request>,
    mapping: Option<SgMapping>,
    tid: u64,
}

/// A send waiting for room in the send queue or for map registers.
#[derive(Debug)]
struct Waiting {
    request: Request,
    input: SendMadIn,
    mapping: Option<PendingMapping>,
}

#[derive(Debug)]
struct SendQueue {
    id: WqId,
    ring: Ring,
    mem: RingMem,
    stride: usize,
    pi: u32,
    ci: u32,
    slots: Vec<Option<SendSlot>>,
    /// The consumer index at the watchdog's last look, and how many ticks it has not moved
    /// while sends were outstanding.
    watched_ci: u32,
    stalled_ticks: u32,
}

#[derive(Debug)]
struct RecvQueue {
    id: WqId,
    ring: Ring,
    mem: RingMem,
    stride: usize,
    pi: u32,
    slots: Vec<Option<RecvSlot>>,
    /// Staging receive buffers in common-buffer memory (13 per page), used instead of per-post
    /// mappings when map registers are too scarce to keep receives mapped.
    staging: Vec<CommonBuffer>,
    /// Receive buffers whose mapping waits for map registers.
    waiting: VecDeque<PendingMapping>,
}

/// A posted receive buffer.
#[derive(Debug)]
enum RecvSlot {
    /// A driver buffer mapped for this post.
    Mapped(SgMapping),
    /// A staging slot in common-buffer memory (no mapping).
    Staged,
}

/// Bytes per staging receive buffer (296 rounded to 16).
const STAGE: usize = 304;
const STAGES_PER_PAGE: usize = PAGE / STAGE;

#[derive(Debug)]
struct CompletionQueue {
    ring: Ring,
    mem: RingMem,
    ci: u32,
}

/// A request the HCA has finished with, to be completed once the device lock is released.
///
/// Completing under the lock could let the framework present a new request to this driver on
/// this CPU, which would then wait for the lock it already holds.
#[derive(Debug)]
pub struct Done {
    /// The request.
    pub request: Request,
    /// What to copy into its output buffer, or why it failed.
    pub result: Result<SendMadOut, HcaError>,
}

mod bringup;
mod completion;
mod error;
mod recv;
mod rings;
mod send;
pub mod stream;

pub use bringup::{identify, reset};
pub use error::HcaError;
use rings::RingMem;

/// The running HCA.
#[derive(Debug)]
pub struct Hca {
    // Field order is teardown order. Streams are released before the HCA is dropped (at D0 exit);
    // any left are dropped first.
    streams: Vec<Option<alloc::boxed::Box<stream::Stream>>>,
    /// Engines reserved by a START being built.
    reserved: u8,
    /// Per engine: segments a released stream left undelivered.
    leftovers: Vec<Option<stream::Leftover>>,
    /// START requests whose cancel routine and finisher meet.
    rendezvous: Vec<stream::Rendezvous>,
    overflow: VecDeque<Waiting>,
    sq: [SendQueue; 2],
    rq: [RecvQueue; 2],
    cq: CompletionQueue,
    backlog: VecDeque<RecvMadOut>,
    /// Counters reported by `IOCTL_RHCA_STATISTICS`.
    pub stats: StatisticsOut,
    done: Vec<Done>,
    adapter: Adapter,
    caps: Caps,
    node_guid: u64,
    vectors: u32,
    running: bool,
    /// A queue stopped on an error (a DMA fault, a CQ overflow) or stalled: the device needs a
    /// reset, done at `PASSIVE_LEVEL` by the work item ([`Hca::recover`]).
    needs_reset: bool,
    /// What the requests in flight fail with when that reset quiesces the device:
    /// [`HcaError::Timeout`] after a stall, [`HcaError::Cancelled`] otherwise.
    reset_status: HcaError,
    /// Receive buffers kept posted per QP: a posted buffer holds its map registers (one, or two
    /// when it straddles a page) until its MAD arrives, so both QPs together may hold at most
    /// the adapter's grant — otherwise one QP's idle receives could pin every register.
    recv_depth: usize,
    regs: Arc<Mmio>,
}

const fn gone(v: u32) -> bool {
    v == regs::ALL_ONES
}

impl Hca {
    /// The capabilities read at start.
    #[must_use]
    pub const fn caps(&self) -> &Caps {
        &self.caps
    }

    /// The node GUID.
    #[must_use]
    pub const fn node_guid(&self) -> u64 {
        self.node_guid
    }

    /// The adapter.
    #[must_use]
    pub const fn adapter(&self) -> &Adapter {
        &self.adapter
    }

    /// The registers.
    #[must_use]
    pub const fn regs(&self) -> &Arc<Mmio> {
        &self.regs
    }
}
