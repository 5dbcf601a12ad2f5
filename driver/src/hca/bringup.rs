//! Bring-up, quiesce and recovery: the device reset and identified, the rings allocated and
//! programmed, the queues enabled; quiesce (the device stops all DMA before anything it could
//! reach is released); the watchdog's stall check and the reset that recovers a failed queue.

use crate::dma::Adapter;
use crate::sys::{AtDispatch, Mmio, stall_us};
use crate::trace::{self, Value};
use alloc::sync::Arc;
use rhca_hw::ioctl::StatisticsOut;
use rhca_hw::regs;
use rhca_hw::regs::{Caps, WqId, cause, cq, db, wq};
use rhca_hw::ring::Ring;

use super::mad::{Done, MadPath, RecvSlot};
use super::rings::RingMem;
use super::{CQ_LOG, Hca, HcaError, STALL_TICKS, StreamEngines, gone};

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
        let mad = MadPath::new(&adapter, &caps)?;
        let hca = Self {
            streams: StreamEngines::new(regs.clone(), caps.stream_engines),
            mad,
            stats: StatisticsOut::default(),
            adapter,
            caps,
            node_guid,
            vectors,
            running: false,
            needs_reset: false,
            reset_status: HcaError::Cancelled,
            regs,
        };
        hca.program()?;
        Ok(hca)
    }

    pub(super) fn program(&self) -> Result<(), HcaError> {
        let r = &self.regs;
        let base = self.mad.cq.mem.base();
        let off = |reg| cq::offset(0, reg).unwrap_or(0);
        r.write(off(cq::BASE_LO), base as u32);
        r.write(off(cq::BASE_HI), (base >> 32) as u32);
        let mut cfg = cq::CFG_LOG_ENTRIES.set(0, CQ_LOG) | cq::CFG_VALID.mask();
        if self.mad.cq.mem.paged() {
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
        let send = self.mad.sq.iter().map(|q| &q.wq);
        for q in send.chain(self.mad.rq.iter().map(|q| &q.wq)) {
            program_wq(q.id, &q.mem, q.ring, q.stride)?;
        }
        Ok(())
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
        self.refill_receives(at);
        r.write(db::cq_arm(0).unwrap_or(0), self.mad.cq.ci);
        Ok(())
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
        for q in &mut self.mad.sq {
            for s in q.slots.iter_mut().filter_map(Option::take) {
                if let Some(m) = s.mapping {
                    let _ = m.unmap(at);
                    self.stats.mappings_released += 1;
                }
                if let Some(request) = s.request {
                    self.mad.done.push_back(Done {
                        request,
                        result: Err(status),
                    });
                }
            }
            q.ci = q.wq.pi;
        }
        for w in self.mad.overflow.drain(..) {
            drop(w.mapping);
            self.mad.done.push_back(Done {
                request: w.request,
                result: Err(status),
            });
        }
        for q in &mut self.mad.rq {
            for i in 0..q.slots.len() {
                if let Some(RecvSlot::Mapped(m)) = q.slots[i].take() {
                    q.keep_spare(Some(m.unmap(at)));
                    self.stats.mappings_released += 1;
                }
            }
            q.occupied = 0;
            q.waiting.clear();
        }
        if !removed {
            // Back to a clean state: the rings are reprogrammed at the next D0 entry.
            let _ = reset(&r);
            for q in &mut self.mad.sq {
                q.wq.clear();
                q.ci = 0;
                q.watched_ci = 0;
                q.stalled_ticks = 0;
            }
            for q in &mut self.mad.rq {
                q.wq.clear();
            }
            self.mad.cq.ci = 0;
            self.mad.cq.mem.pages.iter().for_each(|p| p.fill(0));
            let _ = self.program();
        }
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
        let cause = if self.reset_status == HcaError::Timeout {
            "stalled-send-queue"
        } else {
            "queue-error"
        };
        self.quiesce(at);
        self.reset_status = HcaError::Cancelled;
        let enabled = self.enable(at).is_ok();
        trace::emit(
            &trace::QUEUE_RESET,
            &[
                Value::Str(cause),
                Value::Bool(enabled),
                Value::U64(self.stats.queue_resets),
            ],
        );
        true
    }

    /// Whether the device needs the reset of [`Hca::recover`].
    #[must_use]
    pub const fn needs_reset(&self) -> bool {
        self.needs_reset
    }

    /// The CQ's `STATUS` and a mask of the work queues (by id) whose `STATUS.ERROR` is set, for
    /// the trace of a queue error.
    pub(super) fn queue_error_detail(&self) -> (u32, u32) {
        let r = &self.regs;
        let cq = r.read(cq::offset(0, cq::STATUS).unwrap_or(0));
        let mask = self
            .mad
            .sq
            .iter()
            .map(|q| q.wq.id)
            .chain(self.mad.rq.iter().map(|q| q.wq.id))
            .filter(|&id| wq::STATUS_ERROR.is_set(r.read(wq::offset(id, wq::STATUS))))
            .fold(0u32, |m, id| m | 1u32 << (id as u32));
        (cq, mask)
    }

    /// Whether a work queue or the CQ reports `STATUS.ERROR`.
    pub(super) fn queue_failed(&self) -> bool {
        let r = &self.regs;
        let cq = r.read(cq::offset(0, cq::STATUS).unwrap_or(0));
        if gone(cq) {
            return false;
        }
        cq::STATUS_ERROR.is_set(cq)
            || self
                .mad
                .sq
                .iter()
                .map(|q| q.wq.id)
                .chain(self.mad.rq.iter().map(|q| q.wq.id))
                .any(|id| wq::STATUS_ERROR.is_set(r.read(wq::offset(id, wq::STATUS))))
    }

    /// One tick of the watchdog, every [`super::WATCHDOG_PERIOD_MS`] while the device is in D0 (after
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
        for q in &mut self.mad.sq {
            if q.wq.pi == q.ci || q.ci != q.watched_ci {
                q.watched_ci = q.ci;
                q.stalled_ticks = 0;
            } else {
                q.stalled_ticks += 1;
                stalled |= q.stalled_ticks >= STALL_TICKS;
            }
        }
        if stalled {
            trace::emit(&trace::QUEUE_STALLED, &[Value::U32(STALL_TICKS)]);
            self.stats.queue_stalls += 1;
            self.needs_reset = true;
            self.reset_status = HcaError::Timeout;
            for q in &mut self.mad.sq {
                q.stalled_ticks = 0;
            }
        }
        self.needs_reset
    }
}
