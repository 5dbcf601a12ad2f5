//! Ring memory: a ring's pages of common buffer (and its page list when it spans more than one
//! page), and [`WorkQueue`], what a send queue and a receive queue share: the ring, its memory
//! and the one post path (a WQE encoded into the producer slot, a `Release` fence, the
//! doorbell).

use crate::dma::{Adapter, CommonBuffer, DmaError};
use crate::sys::Mmio;
use alloc::vec::Vec;
use core::sync::atomic::{Ordering, fence};
use rhca_hw::regs::{WqId, db};
use rhca_hw::ring::{Ring, RingIndex};
use rhca_hw::wqe::{DataSeg, Wqe};

use super::{MAX_STRIDE, PAGE};

/// A ring's memory: one common buffer when it fits a page, else one common buffer per page
/// and a page list (`docs/device.md` §5.5), so no contiguous allocation beyond a page is needed.
#[derive(Debug)]
pub(super) struct RingMem {
    pub(super) pages: Vec<CommonBuffer>,
    pub(super) list: Option<CommonBuffer>,
}

impl RingMem {
    pub(super) fn new(adapter: &Adapter, bytes: usize) -> Result<Self, DmaError> {
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

    pub(super) fn base(&self) -> u64 {
        self.list
            .as_ref()
            .map_or_else(|| self.pages[0].logical(), CommonBuffer::logical)
    }

    pub(super) const fn paged(&self) -> bool {
        self.list.is_some()
    }

    pub(super) fn page(&self, off: usize) -> (&CommonBuffer, usize) {
        (&self.pages[off / PAGE], off % PAGE)
    }

    pub(super) fn write(&self, off: usize, data: &[u8]) {
        let (p, o) = self.page(off);
        p.write(o, data);
    }

    pub(super) fn read(&self, off: usize, out: &mut [u8]) {
        let (p, o) = self.page(off);
        p.read(o, out);
    }

    pub(super) fn load_acquire(&self, off: usize) -> u8 {
        let (p, o) = self.page(off);
        p.load_acquire(o)
    }
}

/// The data segments of a WQE for a scatter/gather list: `None` when the list has more
/// elements than the queue allows (`max_sge`, at most the four a WQE holds).
pub(super) fn data_segs(
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

/// A work queue's ring as the driver posts to it: what a send queue and a receive queue share.
#[derive(Debug)]
pub(super) struct WorkQueue {
    pub(super) id: WqId,
    pub(super) ring: Ring,
    pub(super) mem: RingMem,
    /// Bytes per WQE.
    pub(super) stride: usize,
    /// The producer index (slot and wrap bit) of the next WQE.
    pub(super) pi: u32,
}

impl WorkQueue {
    /// An empty queue of `ring`'s entries of `stride` bytes, in ring memory from `adapter`.
    pub(super) fn new(
        adapter: &Adapter,
        id: WqId,
        ring: Ring,
        stride: usize,
    ) -> Result<Self, DmaError> {
        Ok(Self {
            id,
            ring,
            mem: RingMem::new(adapter, ring.entries() as usize * stride)?,
            stride,
            pi: 0,
        })
    }

    /// The producer index as a ring index (`None` only if it were out of the ring's range,
    /// which the post path never produces).
    pub(super) fn producer(&self) -> Option<RingIndex> {
        self.ring.index(self.pi).ok()
    }

    /// Empties the ring after a device reset: producer index zero, every WQE byte zero.
    pub(super) fn clear(&mut self) {
        self.pi = 0;
        self.mem.pages.iter().for_each(|p| p.fill(0));
    }

    /// The one post path of both queue kinds: encodes `wqe` into the ring slot of producer
    /// index `pi`, then rings the queue's doorbell with the next producer index. False when the
    /// WQE does not fit the queue's stride (nothing is written then).
    pub(super) fn post(&mut self, regs: &Mmio, pi: RingIndex, wqe: &Wqe<'_>) -> bool {
        let mut buf = [0u8; MAX_STRIDE];
        let Some(bytes) = buf.get_mut(..self.stride) else {
            return false;
        };
        if wqe.encode(bytes).is_err() {
            return false;
        }
        self.mem
            .write(self.ring.slot(pi) as usize * self.stride, bytes);
        let next = self.ring.next(pi).raw();
        // Every WQE byte must be visible to the device before the doorbell is: the release
        // fence pairs with the device's read of the ring after it sees the doorbell.
        fence(Ordering::Release);
        regs.write(db::wq(self.id), next);
        self.pi = next;
        true
    }
}
