//! The MAD send path: validated `SEND_MAD`s queued in order, mapped per post with
//! `GetScatterGatherList` (or sent inline), and posted on the send queue.

use crate::dma::{Direction, DmaBuffer, MapOutcome, SgMapping, TAG_MAD};
use crate::sys::AtDispatch;
use crate::sys::wdf::Request;
use rhca_hw::ioctl::SendMadIn;
use rhca_hw::mad::MAD_SIZE;
use rhca_hw::wqe::{Ctrl, Opcode, Payload, Wqe};

use super::{Done, SendSlot, Waiting};
use crate::hca::rings::data_segs;
use crate::hca::{Hca, HcaError};

impl Hca {
    /// A validated `SEND_MAD`: posted now, or queued (FIFO) behind earlier sends when the send
    /// queue is full or map registers are busy. Completes when its CQE arrives.
    pub fn send(&mut self, request: Request, input: SendMadIn, at: &AtDispatch<'_>) {
        // Not running, or a failed queue waiting for its reset: new work is refused (the
        // caller may retry) rather than posted to a queue that would flush it.
        if !self.running || self.needs_reset {
            self.mad.done.push_back(Done {
                request,
                result: Err(HcaError::NotReady),
            });
            return;
        }
        if !self.mad.overflow.is_empty() || self.sq_full(usize::from(input.qp)) {
            self.stats.overflow_waits += 1;
        }
        self.mad.overflow.push_back(Waiting {
            request,
            input,
            mapping: None,
        });
        self.pump(at);
    }

    pub(in crate::hca) fn sq_full(&self, q: usize) -> bool {
        let s = &self.mad.sq[q];
        match (s.wq.ring.index(s.wq.pi), s.wq.ring.index(s.ci)) {
            (Ok(p), Ok(c)) => s.wq.ring.free(p, c).unwrap_or(0) == 0,
            _ => true,
        }
    }

    pub(super) const fn inline_ok(&self, q: usize) -> bool {
        MAD_SIZE <= self.caps.max_inline as usize
            && 16 + (4 + MAD_SIZE).div_ceil(16) * 16 <= self.mad.sq[q].wq.stride
    }

    /// Posts waiting sends in order while there is room and mappings are ready.
    pub(in crate::hca) fn pump(&mut self, at: &AtDispatch<'_>) {
        while let Some(q) = self.mad.overflow.front().map(|w| usize::from(w.input.qp)) {
            if self.sq_full(q) {
                return;
            }
            let inline = self.inline_ok(q);
            let Some(front) = self.mad.overflow.front_mut() else {
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
                // A buffer of an earlier send, or a new one.
                let spare = self.mad.sq[q].spare.pop();
                let Ok(mut b) = spare.map_or_else(|| DmaBuffer::new(MAD_SIZE as u32, TAG_MAD), Ok)
                else {
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
                    Err((_, b)) => {
                        let s = &mut self.mad.sq[q];
                        if s.spare.len() < s.spare.capacity() {
                            s.spare.push(b);
                        }
                        return;
                    }
                }
            };
            let Some(w) = self.mad.overflow.pop_front() else {
                return;
            };
            self.post_send(q, w, mapping);
        }
    }

    pub(in crate::hca) fn post_send(&mut self, q: usize, w: Waiting, mapping: Option<SgMapping>) {
        let max_sge = self.caps.max_sge as usize;
        let s = &mut self.mad.sq[q];
        let Some(pi) = s.wq.producer() else {
            return;
        };
        let slot = s.wq.ring.slot(pi);
        let ctrl = Ctrl {
            opcode: Opcode::Send as u8,
            signaled: true,
            owner: s.wq.ring.owner(pi),
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
        let posted =
            payload.is_some_and(|payload| s.wq.post(&self.regs, pi, &Wqe { ctrl, payload }));
        if !posted {
            drop(mapping);
            self.stats.mappings_released += 1;
            self.stats.send_errors += 1;
            self.mad.done.push_back(Done {
                request: w.request,
                result: Err(HcaError::InvalidParameter),
            });
            return;
        }
        let tid = u64::from_be_bytes(w.input.mad[8..16].try_into().unwrap_or([0; 8]));
        if mapping.is_none() {
            self.stats.mad_sends_inline += 1;
        }
        s.slots[slot as usize] = Some(SendSlot {
            request: Some(w.request),
            mapping,
            tid,
        });
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
