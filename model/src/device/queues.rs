//! Work queues and completion queues (§5–§7): creation and validation, doorbells, WQE fetch,
//! gather and scatter, CQE writes with the owner byte last, arming, moderation, overflow, and
//! the flush of a queue that hit an error.

use std::collections::VecDeque;
use std::sync::atomic::{Ordering, fence};
use std::time::Instant;

use rhca_hw::cqe::{self, CQE_SIZE, Cqe};
use rhca_hw::mad::{self, MAD_SIZE, RECV_BUF_SIZE};
use rhca_hw::regs::{self, ErrorCode, ErrorSource, WqId, cause, cq, db, wq};
use rhca_hw::ring::Ring;
use rhca_hw::wqe::{self, Limits, Payload, Wqe};

use super::{State, flag, moderation_due, wq_source};
use crate::fabric::Packet;

/// Ring geometry of a created queue.
#[derive(Debug, Clone, Copy)]
pub(super) struct Geometry {
    ring: Ring,
    stride: usize,
    base: u64,
    page_list: bool,
}

impl Geometry {
    const fn bytes(&self) -> u64 {
        self.ring.entries() as u64 * self.stride as u64
    }
}

/// A receive WQE the device has fetched and holds until a MAD arrives for it.
#[derive(Debug, Clone)]
pub(super) struct PostedRecv {
    index: u32,
    slot: u16,
    segs: Vec<(u64, u32)>,
}

/// One work queue's registers and state.
#[derive(Debug, Default)]
pub(super) struct Wq {
    base: u64,
    cfg: u32,
    geo: Option<Geometry>,
    cqn: usize,
    /// Ring index of the next WQE to fetch (`STATUS.HW_INDEX`).
    hw_index: u32,
    /// The producer index of the last doorbell.
    db: u32,
    /// Ring index of the oldest WQE not yet completed.
    done: u32,
    error: bool,
    /// The error that stopped the queue: the syndrome of its flushed completions.
    fail_code: Option<ErrorCode>,
    pub(super) stuck: bool,
    pages: Option<Vec<u64>>,
    recv: VecDeque<PostedRecv>,
}

/// One completion queue's registers and state.
#[derive(Debug, Default)]
pub(super) struct Cq {
    base: u64,
    cfg: u32,
    modr: u32,
    geo: Option<Geometry>,
    producer: u32,
    consumer: u32,
    armed: bool,
    overflow: bool,
    error: bool,
    unreported: u32,
    first_unreported: Option<Instant>,
    pages: Option<Vec<u64>>,
}

impl Cq {
    /// Whether the moderation timer of an armed CQ has expired.
    pub(super) fn timer_due(&self, now: Instant) -> bool {
        self.armed && moderation_due(self.modr, self.unreported, self.first_unreported, now)
    }
}

/// A ring byte's logical address and a freshly read page list to cache, or the error code and
/// address of the failure.
type RingAddr = Result<(u64, Option<Vec<u64>>), (ErrorCode, u64)>;

/// How the device completes a WQE.
#[derive(Debug, Clone, Copy)]
struct Completion {
    wq: usize,
    slot: u16,
    opcode: cqe::Opcode,
    status: cqe::Status,
    syndrome: ErrorCode,
    byte_count: u32,
    rx: Option<(u16, u16, u32, u8)>,
    /// The posted length, for the hostile-length fault.
    posted_len: u32,
}

/// The CQE status for a WQE that failed validation with `code`.
const fn status_for(code: ErrorCode) -> cqe::Status {
    match code {
        ErrorCode::BadOpcode => cqe::Status::LocalQpOperation,
        ErrorCode::BadLkey => cqe::Status::LocalProtection,
        ErrorCode::BadSegment => cqe::Status::LocalLength,
        ErrorCode::DmaReadFault | ErrorCode::DmaWriteFault => cqe::Status::DmaError,
        _ => cqe::Status::GeneralError,
    }
}

impl State {
    /// Logical address of byte `off` of a ring (contiguous, or through its page list).
    fn ring_addr(&self, geo: Geometry, pages: Option<&Vec<u64>>, off: u64) -> RingAddr {
        if !geo.page_list {
            return Ok((geo.base + off, None));
        }
        let list = if let Some(p) = pages {
            p.clone()
        } else {
            // The page list is read at first use, not at creation: the device performs no DMA
            // before a doorbell (§3.3).
            let n = geo.bytes().div_ceil(4096) as usize;
            let mut raw = vec![0u8; n * 8];
            self.dma_read(geo.base, &mut raw)
                .map_err(|_| (ErrorCode::DmaReadFault, geo.base))?;
            let list: Vec<u64> = raw
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default()))
                .collect();
            if let Some(bad) = list.iter().find(|&&a| a % 4096 != 0) {
                return Err((ErrorCode::BadQueueConfig, *bad));
            }
            list
        };
        let addr = list[(off / 4096) as usize] + off % 4096;
        let cache = pages.is_none().then_some(list);
        Ok((addr, cache))
    }

    fn wq_addr(&mut self, n: usize, off: u64) -> Result<u64, (ErrorCode, u64)> {
        let geo = self.wq[n].geo.ok_or((ErrorCode::BadQueueConfig, 0))?;
        let pages = self.wq[n].pages.take();
        let r = self.ring_addr(geo, pages.as_ref(), off);
        match r {
            Ok((a, cache)) => {
                self.wq[n].pages = cache.or(pages);
                Ok(a)
            }
            Err(e) => {
                self.wq[n].pages = pages;
                Err(e)
            }
        }
    }

    fn cq_addr(&mut self, n: usize, off: u64) -> Result<u64, (ErrorCode, u64)> {
        let geo = self.cq[n].geo.ok_or((ErrorCode::BadQueueConfig, 0))?;
        let pages = self.cq[n].pages.take();
        let r = self.ring_addr(geo, pages.as_ref(), off);
        match r {
            Ok((a, cache)) => {
                self.cq[n].pages = cache.or(pages);
                Ok(a)
            }
            Err(e) => {
                self.cq[n].pages = pages;
                Err(e)
            }
        }
    }

    // ---- registers ----

    pub(super) fn read_wq(&self, n: u32, reg: u32) -> u32 {
        let Some(w) = self.wq.get(n as usize) else {
            return 0;
        };
        match reg {
            wq::BASE_LO => w.base as u32,
            wq::BASE_HI => (w.base >> 32) as u32,
            wq::CFG => w.cfg,
            wq::STATUS => wq::STATUS_HW_INDEX.set(0, w.hw_index) | flag(w.error, wq::STATUS_ERROR),
            _ => 0,
        }
    }

    pub(super) fn read_cq(&self, n: u32, reg: u32) -> u32 {
        let Some(c) = self.cq.get(n as usize) else {
            return 0;
        };
        match reg {
            cq::BASE_LO => c.base as u32,
            cq::BASE_HI => (c.base >> 32) as u32,
            cq::CFG => c.cfg,
            cq::STATUS => {
                cq::STATUS_PRODUCER.set(0, c.producer)
                    | flag(c.armed, cq::STATUS_ARMED)
                    | flag(c.overflow, cq::STATUS_OVERFLOW)
                    | flag(c.error, cq::STATUS_ERROR)
            }
            cq::MOD => c.modr,
            _ => 0,
        }
    }

    /// Whether destroying a queue is allowed now (§5.2: quiesced or not enabled).
    const fn may_destroy(&self) -> bool {
        !self.enable || self.quiesce
    }

    pub(super) fn write_wq(&mut self, n: u32, reg: u32, value: u32) {
        let i = n as usize;
        if i >= self.wq.len() {
            return;
        }
        match reg {
            wq::BASE_LO => self.wq[i].base = (self.wq[i].base & !0xFFFF_FFFF) | u64::from(value),
            wq::BASE_HI => {
                self.wq[i].base = (self.wq[i].base & 0xFFFF_FFFF) | (u64::from(value) << 32);
            }
            wq::CFG => {
                if wq::CFG_VALID.is_set(value) {
                    self.create_wq(i, value);
                } else if self.may_destroy() {
                    let base = self.wq[i].base;
                    self.wq[i] = super::Wq {
                        base,
                        cfg: value,
                        ..Default::default()
                    };
                } else {
                    self.error(
                        ErrorCode::BadQueueConfig,
                        wq_source(i),
                        value,
                        self.wq[i].base,
                    );
                }
            }
            _ => {}
        }
    }

    fn create_wq(&mut self, i: usize, value: u32) {
        let caps = self.cfg.caps;
        let log_entries = wq::CFG_LOG_ENTRIES.get(value);
        let log_stride = wq::CFG_LOG_STRIDE.get(value);
        let cqn = wq::CFG_CQN.get(value) as usize;
        let page_list = wq::CFG_PAGE_LIST.is_set(value);
        let defined = wq::CFG_LOG_ENTRIES.mask()
            | wq::CFG_LOG_STRIDE.mask()
            | wq::CFG_CQN.mask()
            | wq::CFG_PAGE_LIST.mask()
            | wq::CFG_VALID.mask();
        let base = self.wq[i].base;
        let ok = value & !defined == 0
            && self.wq[i].geo.is_none()
            && (1..=caps.log_max_wq).contains(&log_entries)
            && (regs::LOG_MIN_STRIDE..=caps.log_max_stride).contains(&log_stride)
            && self.cq[cqn].geo.is_some()
            && !self.cq[cqn].error;
        let geo = ok
            .then(|| Ring::from_log2(log_entries).ok())
            .flatten()
            .map(|ring| Geometry {
                ring,
                stride: 1 << log_stride,
                base,
                page_list,
            })
            .filter(ring_layout_ok);
        let Some(geo) = geo else {
            self.wq[i].error = true;
            self.error(ErrorCode::BadQueueConfig, wq_source(i), value, base);
            return;
        };
        self.wq[i] = super::Wq {
            base,
            cfg: value,
            geo: Some(geo),
            cqn,
            ..Default::default()
        };
    }

    pub(super) fn write_cq(&mut self, n: u32, reg: u32, value: u32) {
        let i = n as usize;
        if i >= self.cq.len() {
            return;
        }
        match reg {
            cq::BASE_LO => self.cq[i].base = (self.cq[i].base & !0xFFFF_FFFF) | u64::from(value),
            cq::BASE_HI => {
                self.cq[i].base = (self.cq[i].base & 0xFFFF_FFFF) | (u64::from(value) << 32);
            }
            cq::MOD => self.cq[i].modr = value,
            cq::CFG => {
                let src = ErrorSource::Cq(n as u8);
                if cq::CFG_VALID.is_set(value) {
                    let log_entries = cq::CFG_LOG_ENTRIES.get(value);
                    let defined = cq::CFG_LOG_ENTRIES.mask()
                        | cq::CFG_PAGE_LIST.mask()
                        | cq::CFG_VALID.mask();
                    let base = self.cq[i].base;
                    let geo = (value & !defined == 0
                        && self.cq[i].geo.is_none()
                        && (1..=self.cfg.caps.log_max_cq).contains(&log_entries))
                    .then(|| Ring::from_log2(log_entries).ok())
                    .flatten()
                    .map(|ring| Geometry {
                        ring,
                        stride: CQE_SIZE,
                        base,
                        page_list: cq::CFG_PAGE_LIST.is_set(value),
                    })
                    .filter(ring_layout_ok);
                    if let Some(geo) = geo {
                        let modr = self.cq[i].modr;
                        self.cq[i] = Cq {
                            base,
                            cfg: value,
                            modr,
                            geo: Some(geo),
                            ..Default::default()
                        };
                    } else {
                        self.cq[i].error = true;
                        self.error(ErrorCode::BadQueueConfig, src, value, base);
                    }
                } else if self.may_destroy()
                    && !self.wq.iter().any(|w| w.geo.is_some() && w.cqn == i)
                {
                    let (base, modr) = (self.cq[i].base, self.cq[i].modr);
                    self.cq[i] = Cq {
                        base,
                        cfg: value,
                        modr,
                        ..Default::default()
                    };
                } else {
                    self.error(ErrorCode::BadQueueConfig, src, value, self.cq[i].base);
                }
            }
            _ => {}
        }
    }

    // ---- doorbells ----

    pub(super) fn doorbell(&mut self, off: u32, value: u32) {
        if off < 0x1100 {
            let Ok(id) = WqId::from_index((off - 0x1000) / 4) else {
                return;
            };
            if off != db::wq(id) {
                return;
            }
            self.wq_doorbell(id.index() as usize, value);
        } else if off < 0x1200 {
            let n = ((off - 0x1100) / 8) as usize;
            if n < self.cq.len() {
                self.cq_doorbell(n, value, off % 8 == 4);
            }
        } else if off < 0x1300 {
            let n = ((off - 0x1200) / 4) as usize;
            if n < self.se.len() {
                self.credit(n, value);
            }
        }
    }

    fn wq_doorbell(&mut self, n: usize, value: u32) {
        if !self.running() {
            self.error(ErrorCode::NotEnabled, wq_source(n), value, 0);
            return;
        }
        let Some(geo) = self.wq[n].geo else {
            self.error(ErrorCode::BadQueueConfig, wq_source(n), value, 0);
            return;
        };
        let ring = geo.ring;
        let valid = value & !db::INDEX.mask() == 0
            && ring.index(value).is_ok_and(|v| {
                ring.index(self.wq[n].done)
                    .is_ok_and(|done| ring.used(v, done).is_ok())
            });
        if !valid {
            self.wq[n].error = true;
            self.wq[n].fail_code = Some(ErrorCode::DoorbellOverrun);
            self.error(ErrorCode::DoorbellOverrun, wq_source(n), value, 0);
            self.flush_wq(n);
            return;
        }
        self.wq[n].db = value;
    }

    fn cq_doorbell(&mut self, n: usize, value: u32, arm: bool) {
        let src = ErrorSource::Cq(n as u8);
        let Some(geo) = self.cq[n].geo else {
            self.error(ErrorCode::BadQueueConfig, src, value, 0);
            return;
        };
        let ring = geo.ring;
        let ok = value & !db::INDEX.mask() == 0
            && ring.index(value).is_ok_and(|ci| {
                ring.index(self.cq[n].producer)
                    .is_ok_and(|p| ring.used(p, ci).is_ok())
            });
        if !ok {
            self.error(ErrorCode::BadCqIndex, src, value, 0);
            return;
        }
        self.cq[n].consumer = value;
        if arm {
            self.cq[n].armed = true;
            if self.cq[n].producer != value {
                // CQEs beyond the armed index already exist: report at once (§7.3).
                self.cq_event(n);
            }
        }
    }

    // ---- fetch and execute ----

    /// Fetches and executes every WQE the last doorbell covered.
    pub(super) fn service_wq(&mut self, n: usize) -> bool {
        let w = &self.wq[n];
        if w.geo.is_none() || w.hw_index == w.db || w.stuck {
            return false;
        }
        if w.error {
            self.flush_wq(n);
            return true;
        }
        let mut budget = 64;
        while budget > 0
            && !self.wq[n].error
            && self.wq[n].hw_index != self.wq[n].db
            && !self.removed
        {
            self.fetch_one(n);
            budget -= 1;
        }
        true
    }

    fn fetch_one(&mut self, n: usize) {
        let Some(geo) = self.wq[n].geo else { return };
        let ring = geo.ring;
        let raw = self.wq[n].hw_index;
        let Ok(at) = ring.index(raw) else { return };
        let slot = ring.slot(at);
        let addr = match self.wq_addr(n, u64::from(slot) * geo.stride as u64) {
            Ok(a) => a,
            Err((code, a)) => {
                self.fail_wq(n, code, raw, a);
                return;
            }
        };
        // On the stack for every stride a conforming device offers (2^LOG_MAX_STRIDE bytes at
        // most): a WQE fetch is on every round trip's path and allocated nothing else. A model
        // configured with larger strides still works, from the heap.
        let mut stack = [0u8; 1 << regs::LOG_MAX_STRIDE];
        let mut heap = Vec::new();
        let buf: &mut [u8] = if geo.stride <= stack.len() {
            &mut stack[..geo.stride]
        } else {
            heap.resize(geo.stride, 0);
            &mut heap
        };
        if self.dma_read(addr, buf).is_err() {
            self.fail_wq(n, ErrorCode::DmaReadFault, raw, addr);
            return;
        }
        self.counters.wqes_fetched += 1;
        if self
            .faults
            .remove_after
            .is_some_and(|k| self.counters.wqes_fetched >= k)
        {
            self.faults.remove_after = None;
            self.remove();
            return;
        }
        let id = WqId::ALL[n];
        let lim = Limits {
            stride: geo.stride,
            entries: ring.entries(),
            max_sge: self.cfg.caps.max_sge as usize,
            max_inline: self.cfg.caps.max_inline as usize,
            qpn: id.qpn() as u8,
            receive: id.is_receive(),
        };
        let wqe = match Wqe::decode_posted(buf, &lim, ring, at) {
            Ok(w) => w,
            Err(e) => {
                let code = wqe::syndrome(&e);
                if code != ErrorCode::WqeNotPosted {
                    // A posted but malformed WQE completes in error; an unposted slot is not
                    // a WQE at all and gets no completion.
                    self.complete(Completion {
                        wq: n,
                        slot: slot as u16,
                        opcode: if id.is_receive() {
                            cqe::Opcode::Recv
                        } else {
                            cqe::Opcode::Send
                        },
                        status: status_for(code),
                        syndrome: code,
                        byte_count: 0,
                        rx: None,
                        posted_len: 0,
                    });
                    self.wq[n].hw_index = ring.next(at).raw();
                    self.wq[n].done = self.wq[n].hw_index;
                }
                self.fail_wq(n, code, raw, addr);
                return;
            }
        };
        self.wq[n].hw_index = ring.next(at).raw();
        if id.is_receive() {
            let segs = match wqe.payload {
                Payload::Segments { segs, count } => segs[..count]
                    .iter()
                    .map(|s| (s.addr, s.byte_count))
                    .collect(),
                _ => Vec::new(),
            };
            self.wq[n].recv.push_back(PostedRecv {
                index: raw,
                slot: slot as u16,
                segs,
            });
        } else {
            self.execute_send(n, slot as u16, &wqe);
            self.wq[n].done = self.wq[n].hw_index;
        }
    }

    fn execute_send(&mut self, n: usize, slot: u16, w: &Wqe<'_>) {
        let signaled = w.ctrl.signaled;
        let base = Completion {
            wq: n,
            slot,
            opcode: cqe::Opcode::Send,
            status: cqe::Status::Success,
            syndrome: ErrorCode::None,
            byte_count: 0,
            rx: None,
            posted_len: 0,
        };
        let mut mad = [0u8; MAD_SIZE];
        match w.payload {
            Payload::None => {
                if signaled {
                    self.complete(base);
                }
                return;
            }
            Payload::Inline(d) if d.len() == MAD_SIZE => mad.copy_from_slice(d),
            Payload::Segments { segs, count } if w.payload.byte_len() == MAD_SIZE as u64 => {
                let mut at = 0usize;
                let inject = std::mem::take(&mut self.faults.dma_error_send)
                    || self.faults.roll(|r| r.dma_error_ppm);
                for s in &segs[..count] {
                    let len = s.byte_count as usize;
                    if inject || self.dma_read(s.addr, &mut mad[at..at + len]).is_err() {
                        self.counters.faults_injected += u64::from(inject);
                        self.complete(Completion {
                            status: cqe::Status::DmaError,
                            syndrome: ErrorCode::DmaReadFault,
                            ..base
                        });
                        self.fail_wq(n, ErrorCode::DmaReadFault, u32::from(slot), s.addr);
                        return;
                    }
                    at += len;
                }
            }
            _ => {
                // Every send carries exactly one 256-byte MAD (§9).
                self.complete(Completion {
                    status: cqe::Status::LocalLength,
                    syndrome: ErrorCode::BadSegment,
                    ..base
                });
                self.fail_wq(n, ErrorCode::BadSegment, w.payload.byte_len() as u32, 0);
                return;
            }
        }
        let qpn = WqId::ALL[n].qpn();
        let p = Packet {
            slid: self.cfg.lid,
            dlid: w.ctrl.dlid,
            src_qp: qpn,
            dst_qp: w.ctrl.remote_qpn,
            qkey: w.ctrl.qkey,
            sl: w.ctrl.sl,
            pkey_index: u16::from(w.ctrl.pkey_index),
            mad,
        };
        // QP0 carries subnet management classes only, QP1 everything else (§9); a MAD on the
        // wrong QP leaves the port but no agent takes it.
        let class_ok = mad::class::is_smp(mad[1]) == (qpn == 0);
        self.counters.sends += 1;
        if class_ok {
            let replies = self.fabric.transmit(&p);
            self.counters.mads_answered += replies.len() as u64;
            for r in replies {
                self.inbound(r);
            }
        }
        if signaled {
            self.complete(Completion {
                byte_count: MAD_SIZE as u32,
                ..base
            });
        }
    }

    /// Delivers queued inbound MADs to posted receive WQEs.
    pub(super) fn deliver_rx(&mut self) -> bool {
        let mut progress = false;
        for qp in 0..2 {
            let n = if qp == 0 { 1 } else { 3 };
            while !self.rx[qp].is_empty()
                && !self.wq[n].error
                && !self.wq[n].stuck
                && !self.wq[n].recv.is_empty()
            {
                let (Some(p), Some(r)) = (self.rx[qp].pop_front(), self.wq[n].recv.pop_front())
                else {
                    break;
                };
                self.scatter(n, &p, &r);
                progress = true;
                if self.removed {
                    return true;
                }
            }
        }
        progress
    }

    fn scatter(&mut self, n: usize, p: &Packet, r: &PostedRecv) {
        let posted: u64 = r.segs.iter().map(|s| u64::from(s.1)).sum();
        let base = Completion {
            wq: n,
            slot: r.slot,
            opcode: cqe::Opcode::Recv,
            status: cqe::Status::Success,
            syndrome: ErrorCode::None,
            byte_count: 0,
            rx: None,
            posted_len: u32::try_from(posted).unwrap_or(u32::MAX),
        };
        self.advance_done(n, r.index);
        if posted < RECV_BUF_SIZE as u64 {
            self.complete(Completion {
                status: cqe::Status::LocalLength,
                syndrome: ErrorCode::BadSegment,
                ..base
            });
            self.fail_wq(n, ErrorCode::BadSegment, posted as u32, 0);
            return;
        }
        // No GRH on a subnet-local packet: the first 40 bytes are left as they are and the
        // MAD lands at offset 40 (§9).
        let inject = std::mem::take(&mut self.faults.dma_error_recv)
            || self.faults.roll(|c| c.dma_error_ppm);
        let mut data = &p.mad[..];
        let mut skip = mad::GRH_SIZE as u64;
        for &(addr, len) in &r.segs {
            if data.is_empty() {
                break;
            }
            let len = u64::from(len);
            if skip >= len {
                skip -= len;
                continue;
            }
            let n_bytes = ((len - skip) as usize).min(data.len());
            let target = addr + skip;
            skip = 0;
            if inject || self.dma_write(target, &data[..n_bytes]).is_err() {
                self.counters.faults_injected += u64::from(inject);
                self.complete(Completion {
                    status: cqe::Status::DmaError,
                    syndrome: ErrorCode::DmaWriteFault,
                    ..base
                });
                self.fail_wq(n, ErrorCode::DmaWriteFault, u32::from(r.slot), target);
                return;
            }
            data = &data[n_bytes..];
        }
        self.counters.receives += 1;
        self.complete(Completion {
            byte_count: RECV_BUF_SIZE as u32,
            rx: Some((p.slid, p.pkey_index, p.src_qp, p.sl)),
            ..base
        });
    }

    const fn advance_done(&mut self, n: usize, index: u32) {
        if let Some(g) = self.wq[n].geo
            && let Ok(i) = g.ring.index(index)
        {
            self.wq[n].done = g.ring.next(i).raw();
        }
    }

    // ---- errors ----

    /// A work queue hit an error: latch it, stop the queue, flush what remains (§4.2).
    fn fail_wq(&mut self, n: usize, code: ErrorCode, info: u32, addr: u64) {
        self.wq[n].error = true;
        self.wq[n].fail_code = Some(code);
        if code == ErrorCode::WqeNotPosted {
            // The doorbell covered slots the driver never wrote: there is nothing there to
            // complete, so none of them gets a CQE.
            self.wq[n].db = self.wq[n].hw_index;
        }
        self.error(code, wq_source(n), info, addr);
        self.flush_wq(n);
    }

    /// Completes every WQE still posted on an errored queue with `WrFlushed`.
    fn flush_wq(&mut self, n: usize) {
        let Some(geo) = self.wq[n].geo else { return };
        let ring = geo.ring;
        let recv: Vec<PostedRecv> = self.wq[n].recv.drain(..).collect();
        let opcode = if WqId::ALL[n].is_receive() {
            cqe::Opcode::Recv
        } else {
            cqe::Opcode::Send
        };
        let syndrome = self.wq[n].fail_code.unwrap_or(ErrorCode::CqOverflow);
        let flushed = |slot: u16| Completion {
            wq: n,
            slot,
            opcode,
            status: cqe::Status::WrFlushed,
            syndrome,
            byte_count: 0,
            rx: None,
            posted_len: 0,
        };
        for r in recv {
            self.complete(flushed(r.slot));
        }
        // WQEs covered by the doorbell but not fetched: flushed by slot, without reading them.
        while self.wq[n].hw_index != self.wq[n].db {
            let Ok(i) = ring.index(self.wq[n].hw_index) else {
                break;
            };
            self.complete(flushed(ring.slot(i) as u16));
            self.wq[n].hw_index = ring.next(i).raw();
        }
        self.wq[n].done = self.wq[n].hw_index;
    }

    // ---- completions ----

    /// Writes the CQE for `c` into the work queue's CQ: body, release barrier, owner byte.
    #[expect(
        clippy::many_single_char_names,
        reason = "n, p, c and e follow the datasheet's names for queue, producer, completion and entry"
    )]
    fn complete(&mut self, c: Completion) {
        let n = self.wq[c.wq].cqn;
        let Some(geo) = self.cq[n].geo else { return };
        if self.cq[n].error || self.removed {
            return;
        }
        let ring = geo.ring;
        let (Ok(p), Ok(ci)) = (
            ring.index(self.cq[n].producer),
            ring.index(self.cq[n].consumer),
        ) else {
            return;
        };
        let full = ring.used(p, ci).map_or(true, |u| u == ring.entries());
        let forced = std::mem::take(&mut self.faults.cq_overflow[n]);
        if full || forced {
            self.counters.faults_injected += u64::from(forced);
            self.cq[n].overflow = true;
            self.cq[n].error = true;
            self.error(
                ErrorCode::CqOverflow,
                ErrorSource::Cq(n as u8),
                self.cq[n].producer,
                0,
            );
            // Every work queue reporting to this CQ stops as well (§7.2).
            for w in &mut self.wq {
                if w.geo.is_some() && w.cqn == n {
                    w.error = true;
                }
            }
            return;
        }
        let (slid, pkey_index, src_qpn, sl) = c.rx.unwrap_or_default();
        let e = Cqe {
            wqe_index: c.slot,
            qpn: WqId::ALL[c.wq].qpn() as u8,
            opcode: c.opcode,
            byte_count: c.byte_count,
            slid,
            pkey_index,
            src_qpn,
            status: c.status,
            syndrome: c.syndrome as u8,
            grh: false,
            sl,
            owner: ring.owner(p),
        };
        let mut bytes = [0u8; CQE_SIZE];
        if e.encode(&mut bytes).is_err() {
            return;
        }
        self.hostile(&mut bytes, ring, c.posted_len);
        let addr = match self.cq_addr(n, u64::from(ring.slot(p)) * CQE_SIZE as u64) {
            Ok(a) => a,
            Err((code, a)) => {
                self.cq[n].error = true;
                self.error(code, ErrorSource::Cq(n as u8), self.cq[n].producer, a);
                return;
            }
        };
        let body = self.dma_write(addr, &bytes[..cqe::OWNER_OFFSET]);
        // The owner byte must not become visible before the body (§7.2): the hardware's write
        // barrier. The driver pairs it with an Acquire load of byte 31.
        fence(Ordering::Release);
        let owner = body.and_then(|()| {
            self.dma_write(addr + cqe::OWNER_OFFSET as u64, &bytes[cqe::OWNER_OFFSET..])
        });
        if owner.is_err() {
            self.cq[n].error = true;
            self.error(
                ErrorCode::DmaWriteFault,
                ErrorSource::Cq(n as u8),
                self.cq[n].producer,
                addr,
            );
            return;
        }
        self.counters.cqes_written += 1;
        self.cq[n].producer = ring.next(p).raw();
        self.cq[n].unreported += 1;
        if self.cq[n].unreported == 1 {
            self.cq[n].first_unreported = Some(Instant::now());
        }
        if self.cq[n].armed
            && moderation_due(
                self.cq[n].modr,
                self.cq[n].unreported,
                self.cq[n].first_unreported,
                Instant::now(),
            )
        {
            self.cq_event(n);
        }
    }

    /// Corrupts a CQE as a hostile or broken device would, when that fault is armed.
    fn hostile(&mut self, bytes: &mut [u8; CQE_SIZE], ring: Ring, posted_len: u32) {
        let random = self.faults.roll(|r| r.hostile_cqe_ppm);
        if std::mem::take(&mut self.faults.hostile_index) || random {
            let bad = ring.entries().min(u32::from(u16::MAX)) as u16;
            bytes[0..2].copy_from_slice(&bad.to_le_bytes());
            self.counters.faults_injected += 1;
        }
        if std::mem::take(&mut self.faults.hostile_length) {
            let claim = posted_len.max(RECV_BUF_SIZE as u32).saturating_add(4096);
            bytes[4..8].copy_from_slice(&claim.to_le_bytes());
            self.counters.faults_injected += 1;
        }
        if std::mem::take(&mut self.faults.hostile_opcode) {
            bytes[3] = 0x7F;
            self.counters.faults_injected += 1;
        }
        if std::mem::take(&mut self.faults.hostile_qpn) {
            // Byte 2 is the QPN; the device has QP0 and QP1 only.
            bytes[2] = 2;
            self.counters.faults_injected += 1;
        }
    }

    /// Raises CQ `n`'s event and disarms it.
    pub(super) fn cq_event(&mut self, n: usize) {
        self.cq[n].armed = false;
        self.cq[n].unreported = 0;
        self.cq[n].first_unreported = None;
        self.raise(cause::cq(n as u32));
    }
}

/// Alignment and size rules of a ring (§5.2, §5.5).
fn ring_layout_ok(g: &Geometry) -> bool {
    let bytes = g.bytes();
    if !g.base.is_multiple_of(4096) {
        return false;
    }
    if g.page_list {
        (4096..=512 * 4096).contains(&bytes)
    } else {
        g.base.checked_add(bytes).is_some()
    }
}
