//! The HCA as the driver runs it: rings in common buffers, the MAD send and receive paths, the
//! completion queue poll, quiesce — everything between the KMDF callbacks and the registers.
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
use core::sync::atomic::{Ordering, fence};

use rhca_hw::cqe::{self, CQE_SIZE, Cqe, Posted};
use rhca_hw::ioctl::{RecvMadOut, SendMadIn, SendMadOut, StatisticsOut};
use rhca_hw::mad::{GRH_SIZE, MAD_SIZE, RECV_BUF_SIZE};
use rhca_hw::regs::{self, Caps, WqId, cause, cq, db, wq};
use rhca_hw::ring::{Ring, RingIndex};
use rhca_hw::wqe::{Ctrl, DataSeg, Opcode, Payload, Wqe};

use crate::dma::{
    Adapter, CommonBuffer, Direction, DmaBuffer, DmaError, MapOutcome, PendingMapping, SgMapping,
    TAG_MAD,
};
use crate::sys::wdf::Request;
use crate::sys::{AtDispatch, Mmio, stall_us};

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

/// A ring's memory: one common buffer when it fits a page, else one common buffer per page
/// and a page list (`docs/device.md` §5.5), so no contiguous allocation beyond a page is needed.
#[derive(Debug)]
struct RingMem {
    pages: Vec<CommonBuffer>,
    list: Option<CommonBuffer>,
}

impl RingMem {
    fn new(adapter: &Adapter, bytes: usize) -> Result<Self, DmaError> {
        if bytes <= PAGE {
            return Ok(Self {
                pages: alloc::vec![adapter.common_buffer(PAGE as u32)?],
                list: None,
            });
        }
        let n = bytes.div_ceil(PAGE);
        let list = adapter.common_buffer(PAGE as u32)?;
        let mut pages = Vec::with_capacity(n);
        for i in 0..n {
            let p = adapter.common_buffer(PAGE as u32)?;
            list.write(i * 8, &p.logical().to_le_bytes());
            pages.push(p);
        }
        Ok(Self {
            pages,
            list: Some(list),
        })
    }

    fn base(&self) -> u64 {
        self.list
            .as_ref()
            .map_or_else(|| self.pages[0].logical(), CommonBuffer::logical)
    }

    const fn paged(&self) -> bool {
        self.list.is_some()
    }

    fn page(&self, off: usize) -> (&CommonBuffer, usize) {
        (&self.pages[off / PAGE], off % PAGE)
    }

    fn write(&self, off: usize, data: &[u8]) {
        let (p, o) = self.page(off);
        p.write(o, data);
    }

    fn read(&self, off: usize, out: &mut [u8]) {
        let (p, o) = self.page(off);
        p.read(o, out);
    }

    fn load_acquire(&self, off: usize) -> u8 {
        let (p, o) = self.page(off);
        p.load_acquire(o)
    }
}

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

mod error;
pub mod stream;

pub use error::HcaError;

/// The data segments of a WQE for a scatter/gather list: `None` when the list has more
/// elements than the queue allows (`max_sge`, at most the four a WQE holds).
fn data_segs(
    elements: impl Iterator<Item = (u64, u32)>,
    max_sge: usize,
) -> Option<([DataSeg; 4], usize)> {
    let mut segs = [DataSeg::default(); 4];
    let mut n = 0;
    for (addr, len) in elements {
        *segs.get_mut(n).filter(|_| n < max_sge)? = DataSeg {
            byte_count: len,
            lkey: 0,
            addr,
        };
        n += 1;
    }
    Some((segs, n))
}

/// The one post path of both queue kinds: encodes `wqe` into the ring slot of producer index
/// `pi`, then rings the queue's doorbell with the next producer index, which it returns.
/// `None` when the WQE does not fit the queue's stride (nothing is written then).
fn post_wqe(
    regs: &Mmio,
    mem: &RingMem,
    stride: usize,
    id: WqId,
    ring: Ring,
    pi: RingIndex,
    wqe: &Wqe<'_>,
) -> Option<u32> {
    let mut buf = [0u8; MAX_STRIDE];
    let bytes = buf.get_mut(..stride)?;
    wqe.encode(bytes).ok()?;
    mem.write(ring.slot(pi) as usize * stride, bytes);
    let next = ring.next(pi).raw();
    // Every WQE byte must be visible to the device before the doorbell is: the release fence
    // pairs with the device's read of the ring after it sees the doorbell.
    fence(Ordering::Release);
    regs.write(db::wq(id), next);
    Some(next)
}

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

/// Resets the device and waits for READY (100 ms bound).
///
/// # Errors
/// [`HcaError::Removed`] or [`HcaError::BringUpTimeout`].
pub fn reset(regs: &Mmio) -> Result<(), HcaError> {
    regs.write(regs::CTRL.offset, regs::CTRL_RESET.mask());
    for _ in 0..2000 {
        let s = regs.read(regs::STATUS.offset);
        if gone(s) {
            return Err(HcaError::Removed);
        }
        if regs::STATUS_READY.is_set(s) {
            return Ok(());
        }
        stall_us(50);
    }
    Err(HcaError::BringUpTimeout)
}

/// Reads and validates the identity and capabilities.
///
/// # Errors
/// [`HcaError::Removed`] or [`HcaError::UnsupportedDevice`].
pub fn identify(regs: &Mmio) -> Result<(Caps, u64), HcaError> {
    let id = regs.read(regs::ID.offset);
    if gone(id) {
        return Err(HcaError::Removed);
    }
    let v = regs.read(regs::VERSION.offset);
    if id != regs::ID_VALUE || regs::VERSION_MAJOR.get(v) != regs::INTERFACE_MAJOR {
        return Err(HcaError::UnsupportedDevice);
    }
    let caps = Caps::decode(
        regs.read(regs::CAP0.offset),
        regs.read(regs::CAP1.offset),
        regs.read(regs::CAP2.offset),
    )
    .map_err(|_| HcaError::UnsupportedDevice)?;
    let guid = u64::from(regs.read(regs::NODE_GUID_LO.offset))
        | (u64::from(regs.read(regs::NODE_GUID_HI.offset)) << 32);
    Ok((caps, guid))
}

impl Hca {
    /// Allocates the rings and programs the queues of a device that has just been reset.
    ///
    /// # Errors
    /// A DMA allocation failure, or a queue the device refused.
    pub fn new(
        regs: Arc<Mmio>,
        adapter: Adapter,
        caps: Caps,
        node_guid: u64,
        vectors: u32,
    ) -> Result<Self, HcaError> {
        let cq_ring = Ring::from_log2(CQ_LOG).map_err(|_| HcaError::UnsupportedDevice)?;
        let cq_mem =
            RingMem::new(&adapter, cq_ring.entries() as usize * CQE_SIZE).map_err(HcaError::Dma)?;
        let sq = |id: WqId| -> Result<SendQueue, HcaError> {
            let ring = Ring::from_log2(SQ_LOG.min(caps.log_max_wq))
                .map_err(|_| HcaError::UnsupportedDevice)?;
            let stride = 1usize << SQ_LOG_STRIDE.min(caps.log_max_stride);
            let mem =
                RingMem::new(&adapter, ring.entries() as usize * stride).map_err(HcaError::Dma)?;
            Ok(SendQueue {
                id,
                ring,
                mem,
                stride,
                pi: 0,
                ci: 0,
                slots: (0..ring.entries()).map(|_| None).collect(),
                watched_ci: 0,
                stalled_ticks: 0,
            })
        };
        let rq = |id: WqId| -> Result<RecvQueue, HcaError> {
            let ring = Ring::from_log2(RQ_LOG.min(caps.log_max_wq))
                .map_err(|_| HcaError::UnsupportedDevice)?;
            let stride = 1usize << RQ_LOG_STRIDE;
            let mem =
                RingMem::new(&adapter, ring.entries() as usize * stride).map_err(HcaError::Dma)?;
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
            Ok(RecvQueue {
                id,
                ring,
                mem,
                stride,
                pi: 0,
                slots: (0..ring.entries()).map(|_| None).collect(),
                staging,
                waiting: VecDeque::new(),
            })
        };
        let hca = Self {
            streams: (0..caps.stream_engines.min(regs::MAX_STREAM_ENGINES))
                .map(|_| None)
                .collect(),
            reserved: 0,
            leftovers: (0..caps.stream_engines.min(regs::MAX_STREAM_ENGINES))
                .map(|_| None)
                .collect(),
            rendezvous: Vec::new(),
            overflow: VecDeque::new(),
            sq: [sq(WqId::Qp0Send)?, sq(WqId::Qp1Send)?],
            rq: [rq(WqId::Qp0Recv)?, rq(WqId::Qp1Recv)?],
            cq: CompletionQueue {
                ring: cq_ring,
                mem: cq_mem,
                ci: 0,
            },
            backlog: VecDeque::new(),
            stats: StatisticsOut::default(),
            done: Vec::new(),
            adapter,
            caps,
            node_guid,
            vectors,
            running: false,
            needs_reset: false,
            reset_status: HcaError::Cancelled,
            recv_depth: 0,
            regs,
        };
        let mut hca = hca;
        hca.recv_depth = (hca.adapter.map_registers() as usize / 4).clamp(1, RECV_DEPTH);
        hca.program()?;
        Ok(hca)
    }

    fn program(&self) -> Result<(), HcaError> {
        let r = &self.regs;
        let base = self.cq.mem.base();
        let off = |reg| cq::offset(0, reg).unwrap_or(0);
        r.write(off(cq::BASE_LO), base as u32);
        r.write(off(cq::BASE_HI), (base >> 32) as u32);
        let mut cfg = cq::CFG_LOG_ENTRIES.set(0, CQ_LOG) | cq::CFG_VALID.mask();
        if self.cq.mem.paged() {
            cfg |= cq::CFG_PAGE_LIST.mask();
        }
        r.write(off(cq::CFG), cfg);
        if cq::STATUS_ERROR.is_set(r.read(off(cq::STATUS))) {
            return Err(HcaError::QueueRefused(0x10));
        }
        let program_wq =
            |id: WqId, mem: &RingMem, ring: Ring, stride: usize| -> Result<(), HcaError> {
                let base = mem.base();
                r.write(wq::offset(id, wq::BASE_LO), base as u32);
                r.write(wq::offset(id, wq::BASE_HI), (base >> 32) as u32);
                let mut cfg = wq::CFG_LOG_ENTRIES.set(0, ring.entries().trailing_zeros())
                    | wq::CFG_LOG_STRIDE.set(0, stride.trailing_zeros())
                    | wq::CFG_VALID.mask();
                if mem.paged() {
                    cfg |= wq::CFG_PAGE_LIST.mask();
                }
                r.write(wq::offset(id, wq::CFG), cfg);
                if wq::STATUS_ERROR.is_set(r.read(wq::offset(id, wq::STATUS))) {
                    return Err(HcaError::QueueRefused(id.index()));
                }
                Ok(())
            };
        for q in &self.sq {
            program_wq(q.id, &q.mem, q.ring, q.stride)?;
        }
        for q in &self.rq {
            program_wq(q.id, &q.mem, q.ring, q.stride)?;
        }
        Ok(())
    }

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

    /// D0 entry: interrupts configured, device enabled, receive rings filled, CQ armed.
    ///
    /// # Errors
    /// [`HcaError::Removed`].
    pub fn enable(&mut self, at: &AtDispatch<'_>) -> Result<(), HcaError> {
        let r = self.regs.clone();
        r.write(regs::INT_CFG.offset, self.vectors);
        r.write(regs::INT_CAUSE.offset, u32::MAX);
        r.write(
            regs::INT_MASK.offset,
            !(cause::ALL_CQ | cause::ALL_SE | cause::ERROR),
        );
        r.write(regs::CTRL.offset, regs::CTRL_ENABLE.mask());
        if gone(r.read(regs::STATUS.offset)) {
            return Err(HcaError::Removed);
        }
        self.running = true;
        for q in 0..2 {
            while self.posted_receives(q) < self.recv_depth.min(self.rq[q].ring.entries() as usize)
            {
                if !self.post_receive(q, None, at) {
                    break;
                }
            }
        }
        r.write(db::cq_arm(0).unwrap_or(0), self.cq.ci);
        Ok(())
    }

    fn posted_receives(&self, q: usize) -> usize {
        self.rq[q].slots.iter().filter(|s| s.is_some()).count() + self.rq[q].waiting.len()
    }

    /// D0 exit: quiesce and wait for the acknowledgement (100 ms; a removed device is not waited
    /// for), then fail what is in flight and release every mapping.
    pub fn quiesce(&mut self, at: &AtDispatch<'_>) {
        let r = self.regs.clone();
        if self.running {
            r.write(
                regs::CTRL.offset,
                regs::CTRL_ENABLE.mask() | regs::CTRL_QUIESCE.mask(),
            );
            for _ in 0..2000 {
                let s = r.read(regs::STATUS.offset);
                if gone(s) || regs::STATUS_QUIESCED.is_set(s) {
                    break;
                }
                stall_us(50);
            }
        }
        self.running = false;
        // The device performs no more DMA: completions already written are still honoured.
        self.poll(at);
        let removed = gone(r.read(regs::STATUS.offset));
        let status = if removed {
            HcaError::Removed
        } else {
            self.reset_status
        };
        for q in &mut self.sq {
            for s in q.slots.iter_mut().filter_map(Option::take) {
                if let Some(m) = s.mapping {
                    let _ = m.unmap(at);
                    self.stats.mappings_released += 1;
                }
                if let Some(request) = s.request {
                    self.done.push(Done {
                        request,
                        result: Err(status),
                    });
                }
            }
            q.ci = q.pi;
        }
        for w in self.overflow.drain(..) {
            drop(w.mapping);
            self.done.push(Done {
                request: w.request,
                result: Err(status),
            });
        }
        for q in &mut self.rq {
            for slot in q.slots.iter_mut().filter_map(Option::take) {
                if let RecvSlot::Mapped(m) = slot {
                    let _ = m.unmap(at);
                    self.stats.mappings_released += 1;
                }
            }
            q.waiting.clear();
        }
        if !removed {
            // Back to a clean state: the rings are reprogrammed at the next D0 entry.
            let _ = reset(&r);
            for q in &mut self.sq {
                q.pi = 0;
                q.ci = 0;
                q.watched_ci = 0;
                q.stalled_ticks = 0;
                q.mem.pages.iter().for_each(|p| p.fill(0));
            }
            for q in &mut self.rq {
                q.pi = 0;
                q.mem.pages.iter().for_each(|p| p.fill(0));
            }
            self.cq.ci = 0;
            self.cq.mem.pages.iter().for_each(|p| p.fill(0));
            let _ = self.program();
        }
    }

    /// Maps a fresh (or recycled) receive buffer and posts it on receive queue `q`. Returns
    /// false when the ring is full or mapping failed (the buffer is dropped then).
    fn post_receive(&mut self, q: usize, buffer: Option<DmaBuffer>, at: &AtDispatch<'_>) -> bool {
        let rq = &self.rq[q];
        let Ok(pi) = rq.ring.index(rq.pi) else {
            return false;
        };
        let slot = rq.ring.slot(pi) as usize;
        if rq.slots[slot].is_some() {
            return false;
        }
        if !rq.staging.is_empty() {
            let page = &rq.staging[slot / STAGES_PER_PAGE];
            let addr = page.logical() + ((slot % STAGES_PER_PAGE) * STAGE) as u64;
            return self.write_recv(q, &[(addr, RECV_BUF_SIZE as u32)], RecvSlot::Staged);
        }
        let buf = match buffer {
            Some(b) => b,
            None => match DmaBuffer::new(RECV_BUF_SIZE as u32, TAG_MAD) {
                Ok(b) => b,
                Err(_) => return false,
            },
        };
        match self.adapter.map(buf, Direction::FromDevice, at) {
            Ok(MapOutcome::Ready(m)) => {
                self.stats.mappings_made += 1;
                self.write_recv_wqe(q, m)
            }
            Ok(MapOutcome::Waiting(p)) => {
                self.stats.mappings_made += 1;
                self.rq[q].waiting.push_back(p);
                true
            }
            Err(_) => false,
        }
    }

    fn write_recv_wqe(&mut self, q: usize, m: SgMapping) -> bool {
        // A WQE holds at most four segments: a longer list cannot be posted.
        let mut el = [(0u64, 0u32); 4];
        let mut n = 0;
        for e in m.elements() {
            if n == el.len() {
                return false;
            }
            el[n] = e;
            n += 1;
        }
        self.write_recv(q, &el[..n], RecvSlot::Mapped(m))
    }

    fn write_recv(&mut self, q: usize, el: &[(u64, u32)], value: RecvSlot) -> bool {
        let max_sge = self.caps.max_sge as usize;
        let rq = &mut self.rq[q];
        let Ok(pi) = rq.ring.index(rq.pi) else {
            return false;
        };
        let slot = rq.ring.slot(pi);
        let Some((segs, n)) = data_segs(el.iter().copied(), max_sge) else {
            return false;
        };
        let w = Wqe {
            ctrl: Ctrl {
                opcode: Opcode::Recv as u8,
                signaled: true,
                owner: rq.ring.owner(pi),
                wqe_index: slot as u16,
                qpn: rq.id.qpn() as u8,
                ..Ctrl::default()
            },
            payload: Payload::Segments { segs, count: n },
        };
        let Some(next) = post_wqe(&self.regs, &rq.mem, rq.stride, rq.id, rq.ring, pi, &w) else {
            return false;
        };
        rq.slots[slot as usize] = Some(value);
        rq.pi = next;
        true
    }

    /// A validated `SEND_MAD`: posted now, or queued (FIFO) behind earlier sends when the send
    /// queue is full or map registers are busy. Completes when its CQE arrives.
    pub fn send(&mut self, request: Request, input: SendMadIn, at: &AtDispatch<'_>) {
        // Not running, or a failed queue waiting for its reset: new work is refused (the
        // caller may retry) rather than posted to a queue that would flush it.
        if !self.running || self.needs_reset {
            self.done.push(Done {
                request,
                result: Err(HcaError::NotReady),
            });
            return;
        }
        if !self.overflow.is_empty() || self.sq_full(usize::from(input.qp)) {
            self.stats.overflow_waits += 1;
        }
        self.overflow.push_back(Waiting {
            request,
            input,
            mapping: None,
        });
        self.pump(at);
    }

    fn sq_full(&self, q: usize) -> bool {
        let s = &self.sq[q];
        match (s.ring.index(s.pi), s.ring.index(s.ci)) {
            (Ok(p), Ok(c)) => s.ring.free(p, c).unwrap_or(0) == 0,
            _ => true,
        }
    }

    const fn inline_ok(&self, q: usize) -> bool {
        MAD_SIZE <= self.caps.max_inline as usize
            && 16 + (4 + MAD_SIZE).div_ceil(16) * 16 <= self.sq[q].stride
    }

    /// Posts waiting sends in order while there is room and mappings are ready.
    fn pump(&mut self, at: &AtDispatch<'_>) {
        while let Some(q) = self.overflow.front().map(|w| usize::from(w.input.qp)) {
            if self.sq_full(q) {
                return;
            }
            let inline = self.inline_ok(q);
            let Some(front) = self.overflow.front_mut() else {
                return;
            };
            let mapping = if inline {
                None
            } else if let Some(p) = front.mapping.take() {
                match p.poll() {
                    Ok(m) => Some(m),
                    Err(p) => {
                        front.mapping = Some(p);
                        return;
                    }
                }
            } else {
                let Ok(mut b) = DmaBuffer::new(MAD_SIZE as u32, TAG_MAD) else {
                    return;
                };
                b.as_mut_slice().copy_from_slice(&front.input.mad);
                match self.adapter.map(b, Direction::ToDevice, at) {
                    Ok(MapOutcome::Ready(m)) => {
                        self.stats.mappings_made += 1;
                        Some(m)
                    }
                    Ok(MapOutcome::Waiting(p)) => {
                        self.stats.mappings_made += 1;
                        front.mapping = Some(p);
                        return;
                    }
                    // Not enough map registers right now: retry when a completion frees some.
                    Err(_) => return,
                }
            };
            let Some(w) = self.overflow.pop_front() else {
                return;
            };
            self.post_send(q, w, mapping);
        }
    }

    fn post_send(&mut self, q: usize, w: Waiting, mapping: Option<SgMapping>) {
        let max_sge = self.caps.max_sge as usize;
        let s = &mut self.sq[q];
        let Ok(pi) = s.ring.index(s.pi) else { return };
        let slot = s.ring.slot(pi);
        let ctrl = Ctrl {
            opcode: Opcode::Send as u8,
            signaled: true,
            owner: s.ring.owner(pi),
            wqe_index: slot as u16,
            qpn: q as u8,
            sl: w.input.sl,
            dlid: w.input.dlid,
            remote_qpn: w.input.remote_qpn,
            pkey_index: w.input.pkey_index,
            qkey: w.input.qkey,
            ..Ctrl::default()
        };
        let payload = match &mapping {
            None => Some(Payload::Inline(&w.input.mad)),
            Some(m) => data_segs(m.elements(), max_sge)
                .map(|(segs, count)| Payload::Segments { segs, count }),
        };
        let posted = payload.and_then(|payload| {
            post_wqe(
                &self.regs,
                &s.mem,
                s.stride,
                s.id,
                s.ring,
                pi,
                &Wqe { ctrl, payload },
            )
        });
        let Some(next) = posted else {
            drop(mapping);
            self.stats.mappings_released += 1;
            self.stats.send_errors += 1;
            self.done.push(Done {
                request: w.request,
                result: Err(HcaError::InvalidParameter),
            });
            return;
        };
        let tid = u64::from_be_bytes(w.input.mad[8..16].try_into().unwrap_or([0; 8]));
        if mapping.is_none() {
            self.stats.mad_sends_inline += 1;
        }
        s.slots[slot as usize] = Some(SendSlot {
            request: Some(w.request),
            mapping,
            tid,
        });
        s.pi = next;
    }

    /// The DPC's work: consume valid CQEs (owner byte read with Acquire first), complete their
    /// sends and receives, recycle receive buffers, post waiting sends, re-arm the CQ.
    pub fn poll(&mut self, at: &AtDispatch<'_>) {
        self.stats.dpcs += 1;
        self.promote_waiting_receives();
        loop {
            let ring = self.cq.ring;
            let Ok(at_idx) = ring.index(self.cq.ci) else {
                break;
            };
            let off = ring.slot(at_idx) as usize * CQE_SIZE;
            let owner = self.cq.mem.load_acquire(off + cqe::OWNER_OFFSET);
            if !ring.is_owned(at_idx, Cqe::owner_of(owner)) {
                break;
            }
            let mut bytes = [0u8; CQE_SIZE];
            self.cq.mem.read(off, &mut bytes);
            self.cq.ci = ring.next(at_idx).raw();
            match Cqe::decode(&bytes) {
                Ok(c) => self.complete(&c, at),
                Err(_) => self.stats.hostile_cqes += 1,
            }
        }
        self.pump(at);
        // Unmaps above released map registers: receive mappings that waited for them have
        // their lists now, and must be posted before the CQ is re-armed (no interrupt would
        // come otherwise while the device holds MADs for want of a receive WQE).
        self.promote_waiting_receives();
        if self.running {
            for q in 0..2 {
                while self.posted_receives(q)
                    < self.recv_depth.min(self.rq[q].ring.entries() as usize)
                {
                    if !self.post_receive(q, None, at) {
                        break;
                    }
                }
            }
            self.regs.write(db::cq_arm(0).unwrap_or(0), self.cq.ci);
            // A queue that hit an error stopped for good (it completes what remains with
            // WrFlushed, which the loop above has handled): only a reset brings it back.
            if self.queue_failed() {
                self.needs_reset = true;
            }
        }
    }

    /// Whether a work queue or the CQ reports `STATUS.ERROR`.
    fn queue_failed(&self) -> bool {
        let r = &self.regs;
        let cq = r.read(cq::offset(0, cq::STATUS).unwrap_or(0));
        if gone(cq) {
            return false;
        }
        cq::STATUS_ERROR.is_set(cq)
            || self
                .sq
                .iter()
                .map(|q| q.id)
                .chain(self.rq.iter().map(|q| q.id))
                .any(|id| wq::STATUS_ERROR.is_set(r.read(wq::offset(id, wq::STATUS))))
    }

    /// Whether the device needs the reset of [`Hca::recover`].
    #[must_use]
    pub const fn needs_reset(&self) -> bool {
        self.needs_reset
    }

    /// Recovery from a failed or stalled queue: quiesce (what is in flight fails with
    /// [`HcaError::Cancelled`], or [`HcaError::Timeout`] after a stall; stream engines stop), reset,
    /// reprogram and enable again. Returns whether it ran. The caller then releases the streams
    /// the reset ended.
    pub fn recover(&mut self, at: &AtDispatch<'_>) -> bool {
        if !self.needs_reset {
            return false;
        }
        self.needs_reset = false;
        self.stats.queue_resets += 1;
        self.quiesce(at);
        self.reset_status = HcaError::Cancelled;
        let _ = self.enable(at);
        true
    }

    /// One tick of the watchdog, every [`WATCHDOG_PERIOD_MS`] while the device is in D0 (after
    /// the caller has polled the CQ, so that completions already written count). A device
    /// whose firmware hangs a queue raises no error and sends no interrupt: the only sign is a
    /// send queue holding posted sends while its consumer index stands still. After
    /// [`STALL_TICKS`] such ticks the queue is stalled: the device is reset as for a queue
    /// error ([`Hca::recover`]), and the sends it held fail with [`HcaError::Timeout`].
    /// Receive queues are not watched (they wait for the fabric for as long as it is quiet),
    /// nor stream engines (a segment takes as long as the source's rate makes it take, which
    /// the driver does not know; a STOP that is not acknowledged in 100 ms ends a stream).
    /// Returns whether a reset is needed.
    pub fn watchdog_tick(&mut self) -> bool {
        if !self.running || self.needs_reset {
            return self.needs_reset;
        }
        let mut stalled = false;
        for q in &mut self.sq {
            if q.pi == q.ci || q.ci != q.watched_ci {
                q.watched_ci = q.ci;
                q.stalled_ticks = 0;
            } else {
                q.stalled_ticks += 1;
                stalled |= q.stalled_ticks >= STALL_TICKS;
            }
        }
        if stalled {
            self.stats.queue_stalls += 1;
            self.needs_reset = true;
            self.reset_status = HcaError::Timeout;
            for q in &mut self.sq {
                q.stalled_ticks = 0;
            }
        }
        self.needs_reset
    }

    /// Posts receive buffers whose mapping has arrived, in order.
    fn promote_waiting_receives(&mut self) {
        for q in 0..2 {
            while let Some(p) = self.rq[q].waiting.pop_front() {
                match p.poll() {
                    Ok(m) => {
                        let _ = self.write_recv_wqe(q, m);
                    }
                    Err(p) => {
                        self.rq[q].waiting.push_front(p);
                        break;
                    }
                }
            }
        }
    }

    #[expect(
        clippy::too_many_lines,
        reason = "one match over the two completion kinds"
    )]
    fn complete(&mut self, c: &Cqe, at: &AtDispatch<'_>) {
        // `Cqe::decode` refuses a QPN above 1, but the queue index is checked here against the
        // queues this HCA has, not assumed: a CQE naming a queue pair that does not exist is
        // hostile, counted and dropped.
        let q = usize::from(c.qpn);
        if q >= self.sq.len() || q >= self.rq.len() {
            self.stats.hostile_cqes += 1;
            return;
        }
        match c.opcode {
            cqe::Opcode::Send => {
                let s = &mut self.sq[q];
                let entries = s.ring.entries();
                // The CQE must name the oldest outstanding send (completions are in order).
                let expected = s.ring.index(s.ci).map(|i| s.ring.slot(i)).ok();
                let valid = c
                    .check(&Posted {
                        entries,
                        len: MAD_SIZE as u32,
                    })
                    .is_ok()
                    && Some(u32::from(c.wqe_index)) == expected;
                // The device-written index is looked up, never indexed with: an index beyond
                // the slots, or a slot with nothing posted, is hostile.
                let Some(slot) = valid
                    .then(|| s.slots.get_mut(usize::from(c.wqe_index)))
                    .flatten()
                    .and_then(Option::take)
                else {
                    self.stats.hostile_cqes += 1;
                    return;
                };
                if let Ok(i) = s.ring.index(s.ci) {
                    s.ci = s.ring.next(i).raw();
                }
                if let Some(m) = slot.mapping {
                    let _ = m.unmap(at);
                    self.stats.mappings_released += 1;
                }
                if c.status == cqe::Status::Success {
                    self.stats.mad_sends += 1;
                } else {
                    self.stats.send_errors += 1;
                }
                if let Some(req) = slot.request {
                    let reply = SendMadOut {
                        status: c.status as u32,
                        syndrome: u32::from(c.syndrome),
                        tid: slot.tid,
                        ..SendMadOut::default()
                    };
                    self.done.push(Done {
                        request: req,
                        result: Ok(reply),
                    });
                }
            }
            cqe::Opcode::Recv => {
                let r = &mut self.rq[q];
                let entries = r.ring.entries();
                let slot = usize::from(c.wqe_index);
                let checked = c
                    .check(&Posted {
                        entries,
                        len: RECV_BUF_SIZE as u32,
                    })
                    .is_ok();
                // As for sends: the device-written index is looked up, never indexed with.
                let Some(posted) = checked
                    .then(|| r.slots.get_mut(slot))
                    .flatten()
                    .and_then(Option::take)
                else {
                    self.stats.hostile_cqes += 1;
                    return;
                };
                let mut data = [0u8; RECV_BUF_SIZE];
                let buf = match posted {
                    RecvSlot::Mapped(m) => {
                        let buf = m.unmap(at);
                        self.stats.mappings_released += 1;
                        data.copy_from_slice(&buf.as_slice()[..RECV_BUF_SIZE]);
                        Some(buf)
                    }
                    RecvSlot::Staged => {
                        // PANIC: never: `slot` named a posted slot (the lookup above), and a
                        // queue that stages has a staging page for every STAGES_PER_PAGE slots.
                        let page = &r.staging[slot / STAGES_PER_PAGE];
                        page.read((slot % STAGES_PER_PAGE) * STAGE, &mut data);
                        None
                    }
                };
                if c.status == cqe::Status::Success {
                    self.stats.mad_receives += 1;
                    let mut out = RecvMadOut {
                        qp: q as u8,
                        sl: c.sl,
                        grh_present: u8::from(c.grh),
                        slid: c.slid,
                        pkey_index: c.pkey_index,
                        src_qpn: c.src_qpn,
                        byte_count: c.byte_count,
                        ..RecvMadOut::default()
                    };
                    out.grh.copy_from_slice(&data[..GRH_SIZE]);
                    out.mad
                        .copy_from_slice(&data[GRH_SIZE..GRH_SIZE + MAD_SIZE]);
                    if self.backlog.len() >= BACKLOG {
                        self.stats.mad_receive_drops += 1;
                    } else {
                        self.backlog.push_back(out);
                    }
                }
                if self.running {
                    let _ = self.post_receive(q, buf, at);
                }
            }
        }
    }

    /// The requests finished since the last call, to complete without the lock.
    pub fn take_done(&mut self) -> Vec<Done> {
        core::mem::take(&mut self.done)
    }

    /// The oldest received MAD not yet handed to a request.
    pub fn take_received(&mut self) -> Option<RecvMadOut> {
        self.backlog.pop_front()
    }

    /// Hands the oldest received MAD to the request `next` supplies. `next` is asked only
    /// when a MAD is waiting, and the MAD stays queued when it has no request, so neither is
    /// ever taken and put back.
    pub fn pair_received(
        &mut self,
        next: impl FnOnce() -> Option<Request>,
    ) -> Option<(Request, RecvMadOut)> {
        let m = *self.backlog.front()?;
        let req = next()?;
        self.backlog.pop_front();
        Some((req, m))
    }

    /// Checks a decoded `SEND_MAD` input's fields (its header was checked by the decode).
    ///
    /// # Errors
    /// [`HcaError::InvalidParameter`] for anything `rhca-hw` rejects.
    pub fn check_send(input: SendMadIn) -> Result<SendMadIn, HcaError> {
        input.validate().map_err(|_| HcaError::InvalidParameter)?;
        Ok(input)
    }
}
