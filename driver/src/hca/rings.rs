//! Ring memory: a ring's pages of common buffer (and its page list when it spans more than one
//! page), and the one post path of both work-queue kinds (a WQE encoded into the producer slot,
//! a `Release` fence, the doorbell).

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

/// The one post path of both queue kinds: encodes `wqe` into the ring slot of producer index
/// `pi`, then rings the queue's doorbell with the next producer index, which it returns.
/// `None` when the WQE does not fit the queue's stride (nothing is written then).
pub(super) fn post_wqe(
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
