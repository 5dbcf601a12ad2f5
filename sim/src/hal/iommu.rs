//! DMA remapping: the IOVA allocator (delayed reuse, so a stale IOVA faults), the page table the
//! bus translates through, and the cost model of map, unmap and IOTLB invalidation.

use std::collections::{HashMap, VecDeque};

use super::{IOVA_END, IOVA_FIRST, IOVA_REUSE_DELAY};

/// The IOMMU cost model.
///
/// Nanoseconds the CPU spends per operation (busy-waited, so it shows in throughput), with IOTLB
/// invalidation either per unmap (strict) or once per `batch` unmaps
/// (deferred, as Linux's flush queue does).
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
    pub(super) table: HashMap<u64, (u64, bool)>,
    pub(super) next: u64,
    pub(super) freed: VecDeque<(u64, u64)>,
    pub(super) cost: Option<IommuCost>,
    pub(super) stats: IommuStats,
    pub(super) unflushed: u32,
}

/// Spends `ns` nanoseconds of CPU time, as the modelled hardware operation would.
pub(super) fn charge(stats: &mut IommuStats, ns: u64) {
    if ns == 0 {
        return;
    }
    stats.charged_ns += ns;
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
