//! The completion queue: CQEs consumed in order (owner byte read with `Acquire` first),
//! checked against what was posted (a CQE that fails is hostile, counted and dropped), and the
//! sends and receives they complete.

use crate::batch::Batch;
use crate::sys::AtDispatch;
use crate::trace::{self, Value};
use rhca_hw::cqe;
use rhca_hw::cqe::{CQE_SIZE, Cqe, Posted};
use rhca_hw::ioctl::{RecvMadOut, SendMadOut};
use rhca_hw::mad::{GRH_SIZE, MAD_SIZE, RECV_BUF_SIZE};
use rhca_hw::regs::db;

use super::{DONE_BATCH, Done, RecvSlot, STAGE, STAGES_PER_PAGE};
use crate::hca::{BACKLOG, Hca};

impl Hca {
    /// Counts and traces a completion the device could not legitimately have written; the
    /// caller drops it.
    fn hostile(&mut self, kind: &'static str, reason: &'static str) {
        self.stats.hostile_cqes += 1;
        trace::emit(
            &trace::HOSTILE_CQE,
            &[
                Value::Str(kind),
                Value::Str(reason),
                Value::U64(self.stats.hostile_cqes),
            ],
        );
    }

    /// The DPC's work: consume valid CQEs (owner byte read with Acquire first), complete their
    /// sends and receives, recycle receive buffers, post waiting sends, re-arm the CQ.
    pub fn poll(&mut self, at: &AtDispatch<'_>) {
        self.stats.dpcs += 1;
        self.promote_waiting_receives();
        loop {
            let ring = self.mad.cq.ring;
            let Ok(at_idx) = ring.index(self.mad.cq.ci) else {
                break;
            };
            let off = ring.slot(at_idx) as usize * CQE_SIZE;
            let owner = self.mad.cq.mem.load_acquire(off + cqe::OWNER_OFFSET);
            if !ring.is_owned(at_idx, Cqe::owner_of(owner)) {
                break;
            }
            let mut bytes = [0u8; CQE_SIZE];
            self.mad.cq.mem.read(off, &mut bytes);
            self.mad.cq.ci = ring.next(at_idx).raw();
            match Cqe::decode(&bytes) {
                Ok(c) => self.complete(&c, at),
                Err(_) => self.hostile("undecodable", "an opcode, status or field out of range"),
            }
        }
        self.pump(at);
        // Unmaps above released map registers: receive mappings that waited for them have
        // their lists now, and must be posted before the CQ is re-armed (no interrupt would
        // come otherwise while the device holds MADs for want of a receive WQE).
        self.promote_waiting_receives();
        if self.running {
            self.refill_receives(at);
            self.regs.write(db::cq_arm(0).unwrap_or(0), self.mad.cq.ci);
            // A queue that hit an error stopped for good (it completes what remains with
            // WrFlushed, which the loop above has handled): only a reset brings it back.
            if self.queue_failed() {
                let (cq_status, failed) = self.queue_error_detail();
                trace::emit(
                    &trace::QUEUE_ERROR,
                    &[Value::U32(cq_status), Value::U32(failed)],
                );
                self.needs_reset = true;
            }
        }
    }

    #[expect(
        clippy::too_many_lines,
        reason = "one match over the two completion kinds"
    )]
    pub(in crate::hca) fn complete(&mut self, c: &Cqe, at: &AtDispatch<'_>) {
        // `Cqe::decode` refuses a QPN above 1, but the queue index is checked here against the
        // queues this HCA has, not assumed: a CQE naming a queue pair that does not exist is
        // hostile, counted and dropped.
        let q = usize::from(c.qpn);
        if q >= self.mad.sq.len() || q >= self.mad.rq.len() {
            return self.hostile("queue", "names a queue pair this HCA does not have");
        }
        match c.opcode {
            cqe::Opcode::Send => {
                let s = &mut self.mad.sq[q];
                let entries = s.wq.ring.entries();
                // The CQE must name the oldest outstanding send (completions are in order).
                let expected = s.wq.ring.index(s.ci).map(|i| s.wq.ring.slot(i)).ok();
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
                    return self.hostile(
                        "send",
                        "not the oldest outstanding send, or a slot with nothing posted",
                    );
                };
                if let Ok(i) = s.wq.ring.index(s.ci) {
                    s.ci = s.wq.ring.next(i).raw();
                }
                if let Some(m) = slot.mapping {
                    let b = m.unmap(at);
                    self.stats.mappings_released += 1;
                    // Kept for the next send while there is reserved room (never grown here).
                    if s.spare.len() < s.spare.capacity() {
                        s.spare.push(b);
                    }
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
                    self.mad.done.push_back(Done {
                        request: req,
                        result: Ok(reply),
                    });
                }
            }
            cqe::Opcode::Recv => {
                let r = &mut self.mad.rq[q];
                let entries = r.wq.ring.entries();
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
                    return self.hostile(
                        "receive",
                        "a byte count or slot that no posted receive matches",
                    );
                };
                r.occupied = r.occupied.saturating_sub(1);
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
                    if self.mad.backlog.len() >= BACKLOG {
                        self.stats.mad_receive_drops += 1;
                    } else {
                        self.mad.backlog.push_back(out);
                    }
                }
                if self.running {
                    let _ = self.post_receive(q, buf, at);
                } else {
                    self.mad.rq[q].keep_spare(buf);
                }
            }
        }
    }

    /// The requests finished since the last call, to complete without the lock (`None`: none).
    ///
    /// At most [`DONE_BATCH`] at a time, without allocating: a full batch means there may be
    /// more (take the lock again for them).
    pub fn take_done(&mut self) -> Option<Batch<Done, DONE_BATCH>> {
        if self.mad.done.is_empty() {
            return None;
        }
        let mut out = Batch::new();
        out.fill(|| self.mad.done.pop_front());
        Some(out)
    }
}
