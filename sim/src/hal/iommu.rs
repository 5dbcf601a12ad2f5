//! DMA remapping: the IOVA allocator (delayed reuse, so a stale IOVA faults), the page table the
//! bus translates through, and the cost model of map, unmap and IOTLB invalidation.

use crate::fasthash::FastMap;
use std::collections::VecDeque;

use super::{IOVA_END, IOVA_FIRST, IOVA_REUSE_DELAY};

/// The IOMMU cost model.
///
/// Nanoseconds the CPU spends per operation (busy-waited by the thread that mapped or unmapped,
/// after it releases the machine's lock, so it shows in that thread's throughput without
/// stalling the device's DMA), with IOTLB invalidation either per unmap (strict) or once per
/// `batch` unmaps (deferred, as Linux's flush queue does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IommuCost {
    /// Per map call.
    pub map_ns: u64,
    /// Per unmap call.
    pub unmap_ns: u64,
    /// Per IOTLB invalidation.
    pub invalidate_ns: u64,
    /// Batch invalidations instead of invalidating at every unmap.
    pub deferred: bool,
    /// Unmaps per invalidation when deferred (at least 1).
    pub batch: u32,
}

/// What the IOMMU did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct IommuStats {
    /// Map calls.
    pub maps: u64,
    /// Unmap calls.
    pub unmaps: u64,
    /// IOTLB invalidations.
    pub invalidations: u64,
    /// Nanoseconds charged by the cost model.
    pub charged_ns: u64,
}

#[derive(Debug, Default)]
pub(super) struct Iommu {
    pub(super) table: FastMap<u64, (u64, bool)>,
    pub(super) next: u64,
    pub(super) freed: VecDeque<(u64, u64)>,
    pub(super) cost: Option<IommuCost>,
    pub(super) stats: IommuStats,
    pub(super) unflushed: u32,
}

thread_local! {
    /// CPU time the cost model has charged this thread and it has not yet spent.
    static DEBT_NS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Charges `ns` nanoseconds of CPU time to the calling thread, as the modelled hardware
/// operation would cost the CPU that maps or unmaps. The time is spent by [`pay`] once the
/// machine's lock is released: busy-waiting under the lock would stall every other simulated
/// CPU and the device's DMA, which a real IOMMU operation does not.
pub(super) fn charge(stats: &mut IommuStats, ns: u64) {
    if ns == 0 {
        return;
    }
    stats.charged_ns += ns;
    let _ = DEBT_NS.try_with(|d| d.set(d.get() + ns));
}

/// Spends the CPU time [`charge`] put on this thread (called without the machine's lock).
pub(crate) fn pay() {
    let ns = DEBT_NS.try_with(|d| d.replace(0)).unwrap_or(0);
    if ns == 0 {
        return;
    }
    let until = std::time::Instant::now() + std::time::Duration::from_nanos(ns);
    while std::time::Instant::now() < until {
        std::hint::spin_loop();
    }
}

impl Iommu {
    pub(super) fn alloc(&mut self, pages: u64) -> Option<u64> {
        if self.next == 0 {
            self.next = IOVA_FIRST;
        }
        if self.freed.len() > IOVA_REUSE_DELAY
            && let Some(i) = self.freed.iter().position(|&(_, n)| n >= pages)
        {
            let (s, n) = self.freed.remove(i)?;
            if n > pages {
                self.freed.push_back((s + pages, n - pages));
            }
            return Some(s);
        }
        if self.next + pages > IOVA_END {
            return None;
        }
        let s = self.next;
        self.next += pages;
        Some(s)
    }

    pub(super) fn map(&mut self, start: u64, pfns: &[u64], device_writable: bool) {
        for (i, &pfn) in pfns.iter().enumerate() {
            self.table.insert(start + i as u64, (pfn, device_writable));
        }
        self.stats.maps += 1;
        if let Some(c) = self.cost {
            charge(&mut self.stats, c.map_ns);
        }
    }

    pub(super) fn unmap(&mut self, start: u64, pages: u64) {
        for p in start..start + pages {
            self.table.remove(&p);
        }
        self.freed.push_back((start, pages));
        self.stats.unmaps += 1;
        if let Some(c) = self.cost {
            charge(&mut self.stats, c.unmap_ns);
            self.unflushed += 1;
            if !c.deferred || self.unflushed >= c.batch.max(1) {
                self.unflushed = 0;
                self.stats.invalidations += 1;
                charge(&mut self.stats, c.invalidate_ns);
            }
        } else {
            self.stats.invalidations += 1;
        }
    }
}
