//! The MAD receive path: receive buffers mapped per post (or staged in common buffers when map
//! registers are scarce), reposted as they complete, and received MADs handed to requests.

use crate::dma::{Direction, DmaBuffer, MapOutcome, SgMapping, TAG_MAD};
use crate::sys::AtDispatch;
use crate::sys::wdf::Request;
use rhca_hw::ioctl::RecvMadOut;
use rhca_hw::mad::RECV_BUF_SIZE;
use rhca_hw::wqe::{Ctrl, Opcode, Payload, Wqe};

use super::{RecvSlot, STAGE, STAGES_PER_PAGE};
use crate::hca::Hca;
use crate::hca::rings::data_segs;

impl Hca {
    pub(in crate::hca) fn posted_receives(&self, q: usize) -> usize {
        self.mad.rq[q].occupied + self.mad.rq[q].waiting.len()
    }

    /// Maps a receive buffer (`buffer`, else a spare one) and posts it on receive queue `q`.
    /// Returns false when the ring is full or mapping failed; the buffer is kept as a spare
    /// then. A new buffer is allocated only when no spare is left (never in steady state).
    pub(in crate::hca) fn post_receive(
        &mut self,
        q: usize,
        buffer: Option<DmaBuffer>,
        at: &AtDispatch<'_>,
    ) -> bool {
        let rq = &mut self.mad.rq[q];
        let Some(pi) = rq.wq.producer() else {
            rq.keep_spare(buffer);
            return false;
        };
        let slot = rq.wq.ring.slot(pi) as usize;
        if rq.slots[slot].is_some() {
            rq.keep_spare(buffer);
            return false;
        }
        if !rq.staging.is_empty() {
            let page = &rq.staging[slot / STAGES_PER_PAGE];
            let addr = page.logical() + ((slot % STAGES_PER_PAGE) * STAGE) as u64;
            return self.write_recv(q, &[(addr, RECV_BUF_SIZE as u32)], RecvSlot::Staged);
        }
        let buf = match buffer.or_else(|| rq.spare.pop()) {
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
                self.mad.rq[q].waiting.push_back(p);
                true
            }
            Err((_, buf)) => {
                self.mad.rq[q].keep_spare(Some(buf));
                false
            }
        }
    }

    pub(in crate::hca) fn write_recv_wqe(&mut self, q: usize, m: SgMapping) -> bool {
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

    pub(in crate::hca) fn write_recv(
        &mut self,
        q: usize,
        el: &[(u64, u32)],
        value: RecvSlot,
    ) -> bool {
        let max_sge = self.caps.max_sge as usize;
        let rq = &mut self.mad.rq[q];
        let Some(pi) = rq.wq.producer() else {
            return false;
        };
        let slot = rq.wq.ring.slot(pi);
        let Some((segs, n)) = data_segs(el.iter().copied(), max_sge) else {
            return false;
        };
        let w = Wqe {
            ctrl: Ctrl {
                opcode: Opcode::Recv as u8,
                signaled: true,
                owner: rq.wq.ring.owner(pi),
                wqe_index: slot as u16,
                qpn: rq.wq.id.qpn() as u8,
                ..Ctrl::default()
            },
            payload: Payload::Segments { segs, count: n },
        };
        if !rq.wq.post(&self.regs, pi, &w) {
            return false;
        }
        rq.slots[slot as usize] = Some(value);
        rq.occupied += 1;
        true
    }

    /// Posts receive buffers on both QPs until each holds its share (`recv_depth`, at most a
    /// ring's worth), or a post fails (no map registers or memory now: the next CQ poll tries
    /// again).
    pub(in crate::hca) fn refill_receives(&mut self, at: &AtDispatch<'_>) {
        for q in 0..2 {
            let depth = self
                .mad
                .recv_depth
                .min(self.mad.rq[q].wq.ring.entries() as usize);
            // Counted once: each successful post adds exactly one (to the ring or to the
            // receives waiting for map registers).
            let mut posted = self.posted_receives(q);
            while posted < depth {
                if !self.post_receive(q, None, at) {
                    break;
                }
                posted += 1;
            }
        }
    }

    /// Posts receive buffers whose mapping has arrived, in order.
    pub(in crate::hca) fn promote_waiting_receives(&mut self) {
        for q in 0..2 {
            while let Some(p) = self.mad.rq[q].waiting.pop_front() {
                match p.poll() {
                    Ok(m) => {
                        let _ = self.write_recv_wqe(q, m);
                    }
                    Err(p) => {
                        self.mad.rq[q].waiting.push_front(p);
                        break;
                    }
                }
            }
        }
    }

    /// Whether a received MAD waits for a request.
    #[must_use]
    pub fn has_received(&self) -> bool {
        !self.mad.backlog.is_empty()
    }

    /// The oldest received MAD not yet handed to a request.
    pub fn take_received(&mut self) -> Option<RecvMadOut> {
        self.mad.backlog.pop_front()
    }

    /// Hands the oldest received MAD to the request `next` supplies. `next` is asked only
    /// when a MAD is waiting, and the MAD stays queued when it has no request, so neither is
    /// ever taken and put back.
    pub fn pair_received(
        &mut self,
        next: impl FnOnce() -> Option<Request>,
    ) -> Option<(Request, RecvMadOut)> {
        let m = *self.mad.backlog.front()?;
        let req = next()?;
        self.mad.backlog.pop_front();
        Some((req, m))
    }
}
