//! DMA remapping: the IOVA allocator (delayed reuse, so a stale IOVA faults), the page table the
//! bus translates through, and the cost model of map, unmap, IOTLB invalidation and the
//! device's IOTLB misses.

use crate::fasthash::FastMap;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::{IOVA_END, IOVA_FIRST, IOVA_REUSE_DELAY};

/// The IOMMU cost model.
///
/// Nanoseconds the CPU spends per operation (busy-waited by the thread that mapped or unmapped,
/// after it releases the machine's lock, so it shows in that thread's throughput without
/// stalling the device's DMA), with IOTLB invalidation either per unmap (strict) or once per
/// `batch` unmaps (deferred, as Linux's flush queue does); and nanoseconds the device's DMA
/// stalls per IOTLB miss (busy-waited by the device's thread after its access, outside the
/// lock). The IOTLB is modelled as one entry: a device access misses on every page other than
/// the one the IOMMU translated last, and an invalidation empties it. A real IOTLB holds more
/// entries (its size is not published), so this is exact for an access stream that moves
/// through a buffer far larger than the IOTLB's reach (a circular buffer of thousands of 4 KiB
/// pages, where every page misses) and pessimistic for one that returns to a few pages.
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
    /// Per IOTLB miss of a device access (the device's DMA stalls; see above).
    pub iotlb_miss_ns: u64,
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
    /// Device accesses' IOTLB misses (pages translated other than the last one).
    pub iotlb_misses: u64,
    /// Nanoseconds charged by the cost model (to the CPUs and to the device).
    pub charged_ns: u64,
}

/// The IOVA allocator's reusable ranges, coalesced, indexed by address (to merge neighbours)
/// and by length (best fit): every operation is O(log n) in the number of ranges, whatever the
/// mix of sizes.
#[derive(Debug, Default)]
pub(super) struct FreeRanges {
    by_addr: BTreeMap<u64, u64>,
    by_len: BTreeSet<(u64, u64)>,
}

impl FreeRanges {
    /// Makes `[start, start + pages)` reusable, merged with free neighbours.
    pub(super) fn insert(&mut self, mut start: u64, mut pages: u64) {
        if let Some((&s, &n)) = self.by_addr.range(..start).next_back()
            && s + n == start
        {
            self.by_addr.remove(&s);
            self.by_len.remove(&(n, s));
            start = s;
            pages += n;
        }
        if let Some(n) = self.by_addr.remove(&(start + pages)) {
            self.by_len.remove(&(n, start + pages));
            pages += n;
        }
        self.by_addr.insert(start, pages);
        self.by_len.insert((pages, start));
    }

    /// The smallest free range of at least `pages`, cut to `pages` (the rest stays free).
    pub(super) fn take(&mut self, pages: u64) -> Option<u64> {
        let &(n, s) = self.by_len.range((pages, 0)..).next()?;
        self.by_len.remove(&(n, s));
        self.by_addr.remove(&s);
        if n > pages {
            self.by_addr.insert(s + pages, n - pages);
            self.by_len.insert((n - pages, s + pages));
        }
        Some(s)
    }

    /// Free ranges (after merging).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.by_addr.len()
    }
}

#[derive(Debug, Default)]
pub(super) struct Iommu {
    pub(super) table: FastMap<u64, (u64, bool)>,
    pub(super) next: u64,
    /// Unmapped ranges waiting out the reuse delay, oldest first: an IOVA is not handed out
    /// again until [`IOVA_REUSE_DELAY`] later unmaps, so a device that uses a stale one faults.
    pub(super) cooling: VecDeque<(u64, u64)>,
    /// Ranges past the delay, ready for reuse.
    pub(super) free: FreeRanges,
    pub(super) cost: Option<IommuCost>,
    pub(super) stats: IommuStats,
    pub(super) unflushed: u32,
    /// The one IOTLB entry: the IOVA page the IOMMU translated last, until an invalidation.
    pub(super) tlb_page: Option<u64>,
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
    /// A device access's translation of IOVA page `page`: a miss unless it is the page the
    /// IOTLB holds, which it then holds. A miss's cost is charged to the calling thread (the
    /// device's), as [`charge`] does.
    #[inline]
    pub(super) fn translated(&mut self, page: u64) {
        if self.tlb_page != Some(page) {
            self.tlb_page = Some(page);
            self.stats.iotlb_misses += 1;
            if let Some(c) = self.cost {
                charge(&mut self.stats, c.iotlb_miss_ns);
            }
        }
    }

    pub(super) fn alloc(&mut self, pages: u64) -> Option<u64> {
        if self.next == 0 {
            self.next = IOVA_FIRST;
        }
        if let Some(s) = self.free.take(pages) {
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
        self.cooling.push_back((start, pages));
        while self.cooling.len() > IOVA_REUSE_DELAY {
            if let Some((s, n)) = self.cooling.pop_front() {
                self.free.insert(s, n);
            }
        }
        self.stats.unmaps += 1;
        if let Some(c) = self.cost {
            charge(&mut self.stats, c.unmap_ns);
            self.unflushed += 1;
            if !c.deferred || self.unflushed >= c.batch.max(1) {
                self.unflushed = 0;
                self.stats.invalidations += 1;
                self.tlb_page = None;
                charge(&mut self.stats, c.invalidate_ns);
            }
        } else {
            self.stats.invalidations += 1;
            self.tlb_page = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ranges_merge_neighbours_and_fit_best() {
        let mut f = FreeRanges::default();
        f.insert(100, 4);
        f.insert(110, 8);
        f.insert(104, 6); // joins both neighbours: [100, 118)
        assert_eq!(f.len(), 1);
        assert_eq!(f.take(18), Some(100));
        assert_eq!(f.len(), 0);
        f.insert(0, 2);
        f.insert(10, 5);
        f.insert(20, 3);
        // Best fit: the 3-page range for 3, the 5-page one (cut) for 4.
        assert_eq!(f.take(3), Some(20));
        assert_eq!(f.take(4), Some(10));
        assert_eq!(f.take(2), Some(0));
        assert_eq!(f.take(1), Some(14));
        assert_eq!(f.take(1), None);
    }

    #[test]
    fn an_unmapped_iova_waits_out_the_reuse_delay_and_live_ranges_never_overlap() {
        let mut m = Iommu::default();
        let mut live: Vec<(u64, u64)> = Vec::new();
        let mut freed_at: std::collections::HashMap<u64, usize> = std::collections::HashMap::new();
        let mut unmaps = 0usize;
        // Mixed sizes, allocated and released in an interleaved order.
        for i in 0..20_000u64 {
            let pages = [1, 3, 16, 2, 64, 5, 1, 256][(i % 8) as usize];
            let s = m.alloc(pages).expect("IOVA space");
            if let Some(&at) = freed_at.get(&s) {
                assert!(
                    unmaps - at >= IOVA_REUSE_DELAY,
                    "reused after {} unmaps",
                    unmaps - at
                );
            }
            for &(a, n) in &live {
                assert!(s + pages <= a || a + n <= s, "overlap");
            }
            live.push((s, pages));
            if live.len() > 40 {
                let (a, n) = live.remove((i as usize * 7) % live.len());
                m.unmap(a, n);
                unmaps += 1;
                freed_at.insert(a, unmaps);
            }
        }
        // Reuse keeps the space compact: far below what bump allocation alone would use.
        assert!(m.next < IOVA_FIRST + 200_000, "next {:#x}", m.next);
    }
}
