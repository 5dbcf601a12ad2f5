//! The MAD path's state: the two send queues and two receive queues (QP0 and QP1), the one
//! completion queue, the sends waiting for room or map registers, the received MADs no request
//! has taken yet, and the requests finished under the lock.
//!
//! The work is in the submodules, one per direction: `send` (validated sends mapped per post
//! and posted), `recv` (receive buffers mapped per post, or staged when map registers are
//! scarce, and received MADs paired with requests) and `completion` (the CQ poll). SQ and RQ
//! share the ring and post path of [`super::rings::WorkQueue`].
//!
//! Teardown order (the field order of [`MadPath`]): sends waiting for map registers, the send
//! queues (with the mappings of posted sends), the receive queues (posted buffers' mappings,
//! then staging buffers), the completion queue. The device is quiesced before any of it goes.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use rhca_hw::cqe::CQE_SIZE;
use rhca_hw::ioctl::{RecvMadOut, SendMadIn, SendMadOut};
use rhca_hw::regs::{Caps, WqId};
use rhca_hw::ring::Ring;

use super::rings::{RingMem, WorkQueue};
use super::{
    BACKLOG, CQ_LOG, HcaError, PAGE, RECV_DEPTH, RQ_LOG, RQ_LOG_STRIDE, SQ_LOG, SQ_LOG_STRIDE,
};
use crate::dma::{Adapter, CommonBuffer, DmaBuffer, PendingMapping, SgMapping, TAG_MAD};
use crate::sys::wdf::Request;
use rhca_hw::mad::RECV_BUF_SIZE;

mod completion;
mod recv;
mod send;

/// A posted send.
#[derive(Debug)]
pub(super) struct SendSlot {
    pub(super) request: Option<Request>,
    pub(super) mapping: Option<SgMapping>,
    pub(super) tid: u64,
}

/// A send waiting for room in the send queue or for map registers.
#[derive(Debug)]
pub(super) struct Waiting {
    pub(super) request: Request,
    pub(super) input: SendMadIn,
    pub(super) mapping: Option<PendingMapping>,
}

/// A send queue: its ring, what each posted WQE holds, and the watchdog's view of progress.
#[derive(Debug)]
pub(super) struct SendQueue {
    pub(super) wq: WorkQueue,
    /// The consumer index: the next send whose completion is due.
    pub(super) ci: u32,
    pub(super) slots: Vec<Option<SendSlot>>,
    /// The consumer index at the watchdog's last look, and how many ticks it has not moved
    /// while sends were outstanding.
    pub(super) watched_ci: u32,
    pub(super) stalled_ticks: u32,
    /// Send buffers back from completed sends (unmapped), reused by the next mapped send
    /// instead of a pool allocation and an MDL per MAD. At most one per slot: the capacity is
    /// reserved up front, so the CQ poll never allocates to keep one.
    pub(super) spare: Vec<DmaBuffer>,
}

/// A receive queue: its ring, the buffer each posted WQE points to, and where buffers come
/// from.
#[derive(Debug)]
pub(super) struct RecvQueue {
    pub(super) wq: WorkQueue,
    pub(super) slots: Vec<Option<RecvSlot>>,
    /// How many of `slots` hold a posted buffer.
    pub(super) occupied: usize,
    /// Staging receive buffers in common-buffer memory (13 per page), used instead of per-post
    /// mappings when map registers are too scarce to keep receives mapped.
    pub(super) staging: Vec<CommonBuffer>,
    /// Receive buffers whose mapping waits for map registers.
    pub(super) waiting: VecDeque<PendingMapping>,
    /// Receive buffers not posted, allocated at start (`PASSIVE_LEVEL`) and reused: a receive
    /// completed in the DPC is reposted with its own buffer, or one of these, never a new one.
    pub(super) spare: Vec<DmaBuffer>,
}

impl RecvQueue {
    /// Keeps `buffer` for a later post, within the room reserved at start (beyond it the
    /// buffer is freed: freeing never waits and is allowed at `DISPATCH_LEVEL`).
    pub(super) fn keep_spare(&mut self, buffer: Option<DmaBuffer>) {
        if let Some(b) = buffer
            && self.spare.len() < self.spare.capacity()
        {
            self.spare.push(b);
        }
    }
}

/// A posted receive buffer.
#[derive(Debug)]
pub(super) enum RecvSlot {
    /// A driver buffer mapped for this post.
    Mapped(SgMapping),
    /// A staging slot in common-buffer memory (no mapping).
    Staged,
}

/// Bytes per staging receive buffer (296 rounded to 16).
pub(super) const STAGE: usize = 304;
pub(super) const STAGES_PER_PAGE: usize = PAGE / STAGE;

/// The completion queue both QPs' work completes to.
#[derive(Debug)]
pub(super) struct CompletionQueue {
    pub(super) ring: Ring,
    pub(super) mem: RingMem,
    pub(super) ci: u32,
}

/// Finished requests handed out per lock hold ([`super::Hca::take_done`]).
///
/// Small on purpose: the batch leaves the lock by value, and moving eight entries where one or
/// two are used cost ~190 driver instructions per MAD round trip more than four (callgrind); a
/// full batch only means one more lock hold.
pub const DONE_BATCH: usize = 4;

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

impl MadPath {
    /// The rings of both QPs and the CQ in common buffers from `adapter`, sized within `caps`.
    pub(super) fn new(adapter: &Adapter, caps: &Caps) -> Result<Self, HcaError> {
        let recv_depth = (adapter.map_registers() as usize / 4).clamp(1, RECV_DEPTH);
        let cq_ring = Ring::from_log2(CQ_LOG).map_err(|_| HcaError::UnsupportedDevice)?;
        let cq_mem =
            RingMem::new(adapter, cq_ring.entries() as usize * CQE_SIZE).map_err(HcaError::Dma)?;
        let sq = |id: WqId| -> Result<SendQueue, HcaError> {
            let ring = Ring::from_log2(SQ_LOG.min(caps.log_max_wq))
                .map_err(|_| HcaError::UnsupportedDevice)?;
            let stride = 1usize << SQ_LOG_STRIDE.min(caps.log_max_stride);
            Ok(SendQueue {
                wq: WorkQueue::new(adapter, id, ring, stride).map_err(HcaError::Dma)?,
                ci: 0,
                slots: (0..ring.entries()).map(|_| None).collect(),
                watched_ci: 0,
                stalled_ticks: 0,
                spare: Vec::with_capacity(ring.entries() as usize),
            })
        };
        let rq = |id: WqId| -> Result<RecvQueue, HcaError> {
            let ring = Ring::from_log2(RQ_LOG.min(caps.log_max_wq))
                .map_err(|_| HcaError::UnsupportedDevice)?;
            // Too few map registers to keep even one buffer per QP mapped: stage receives in
            // common-buffer memory and copy instead (docs/dma.md).
            let staging = if adapter.map_registers() < 4 {
                let pages = (ring.entries() as usize).div_ceil(STAGES_PER_PAGE);
                (0..pages)
                    .map(|_| adapter.common_buffer(PAGE as u32))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(HcaError::Dma)?
            } else {
                Vec::new()
            };
            // One buffer per receive kept posted, plus one: the buffer of a MAD being reposted.
            let buffers = if staging.is_empty() {
                recv_depth.min(ring.entries() as usize) + 1
            } else {
                0
            };
            let mut spare = Vec::with_capacity(ring.entries() as usize + 1);
            for _ in 0..buffers {
                spare.push(DmaBuffer::new(RECV_BUF_SIZE as u32, TAG_MAD).map_err(HcaError::Dma)?);
            }
            Ok(RecvQueue {
                wq: WorkQueue::new(adapter, id, ring, 1 << RQ_LOG_STRIDE).map_err(HcaError::Dma)?,
                slots: (0..ring.entries()).map(|_| None).collect(),
                occupied: 0,
                staging,
                waiting: VecDeque::with_capacity(ring.entries() as usize),
                spare,
            })
        };
        Ok(Self {
            // Room for a full send queue's worth per QP waiting: beyond it a send waits in
            // memory allocated at DISPATCH_LEVEL (non-paged, allowed, never in the DPC).
            overflow: VecDeque::with_capacity(2 << SQ_LOG),
            sq: [sq(WqId::Qp0Send)?, sq(WqId::Qp1Send)?],
            rq: [rq(WqId::Qp0Recv)?, rq(WqId::Qp1Recv)?],
            cq: CompletionQueue {
                ring: cq_ring,
                mem: cq_mem,
                ci: 0,
            },
            backlog: VecDeque::with_capacity(BACKLOG),
            done: VecDeque::with_capacity(2 * (1 << SQ_LOG) + DONE_BATCH),
            recv_depth,
        })
    }
}

/// The MAD path's queues and what is waiting on them.
#[derive(Debug)]
pub(super) struct MadPath {
    // Field order is teardown order (see the module documentation).
    pub(super) overflow: VecDeque<Waiting>,
    pub(super) sq: [SendQueue; 2],
    pub(super) rq: [RecvQueue; 2],
    pub(super) cq: CompletionQueue,
    /// Received MADs no request has taken yet (at most [`super::BACKLOG`]).
    pub(super) backlog: VecDeque<RecvMadOut>,
    /// Requests finished under the lock, completed after it is released (room for every send
    /// slot reserved up front: the CQ poll never grows it).
    pub(super) done: VecDeque<Done>,
    /// Receive buffers kept posted per QP: a posted buffer holds its map registers (one, or two
    /// when it straddles a page) until its MAD arrives, so both QPs together may hold at most
    /// the adapter's grant — otherwise one QP's idle receives could pin every register.
    pub(super) recv_depth: usize,
}
