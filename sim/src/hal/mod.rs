//! HAL DMA: adapters, common buffers, scatter/gather mappings, map registers, DMA remapping and
//! Driver Verifier's double buffering, and the translation the bus applies to device accesses.
//!
//! The `DMA_OPERATIONS` routines themselves are in [`ops`]; this module holds the state they
//! change and the rules they check (`../shared/reference/windows-dma.md` §2–§5, §10).
//!
//! How a mapping reaches the device, per profile:
//! - `coherent`: logical = physical; each physically contiguous run of the buffer is one
//!   scatter/gather element.
//! - `bounce`: a device whose address width cannot reach a page of the buffer gets a bounce copy
//!   in low memory (map registers): memory→device data is copied at map time, device→memory data
//!   copied back only at `PutScatterGatherList`/`FlushDmaBuffer`.
//! - `iommu`: every mapping gets a fresh IOVA range (delayed reuse, so a stale IOVA faults);
//!   memory→device mappings are read-only to the device.
//! - `verifier`: every mapped transfer is double-buffered in a buffer flanked by `DmaVrfy0` tags
//!   and 0x0F padding, checked at Put; released buffers are filled with 0x0F and checked again
//!   before reuse.

pub(crate) mod ops;
pub(crate) mod packet;

use crate::fasthash::FastMap;
use std::collections::{BTreeMap, VecDeque};

use crate::bus::Access;
use crate::machine::Config;

use crate::mem::PAGE;

mod adapter;
mod common;
mod iommu;
mod mapping;
mod verifier;

pub(crate) use adapter::{
    Adapter, Holder, Pending, PendingChannel, RegisterFile, Transfer, TransferContext,
    dequeue_ready, reserve_registers,
};
pub(crate) use common::{
    CommonBuf, alloc_common, common_from_mdl, free_common, mdl_backs_common_buffer,
};
use iommu::Iommu;
pub(crate) use iommu::pay as iommu_pay;
pub use iommu::{IommuCost, IommuStats};
pub(crate) use mapping::{
    MapOutcome, Mapped, Request, SgMap, check_request, check_request_pieces, flush_dma_buffer,
    known_mdl, map_pieces, map_request, map_request_pieces, put_map, release_mapped,
};
pub(crate) use verifier::drain_quarantine;
use verifier::{check_guards, check_quarantine};

/// Verifier's guard tag.
pub(crate) const VERIFIER_TAG: &[u8; 8] = b"DmaVrfy0";
/// Verifier's padding and free-buffer fill byte.
pub(crate) const VERIFIER_FILL: u8 = 0x0F;
/// First IOVA page handed out (1 MiB).
const IOVA_FIRST: u64 = 0x100;
/// One past the last IOVA page (4 GiB: every device can reach every IOVA).
const IOVA_END: u64 = 0x10_0000;
/// Freed IOVA ranges wait this long (in ranges) before reuse.
const IOVA_REUSE_DELAY: usize = 256;
/// Verifier keeps this many released double buffers filled with 0x0F before freeing them.
const QUARANTINE: usize = 16;

/// The `!dma` counters of one adapter.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DmaCounters {
    /// Common buffers allocated.
    pub common_buffers_allocated: u64,
    /// Common buffers freed.
    pub common_buffers_freed: u64,
    /// Scatter/gather lists built.
    pub sg_lists_allocated: u64,
    /// Scatter/gather lists put.
    pub sg_lists_freed: u64,
    /// Map registers allocated (one per page a mapping spans).
    pub map_registers_allocated: u64,
    /// Map registers freed.
    pub map_registers_freed: u64,
    /// Requests that waited for map registers.
    pub requests_queued: u64,
    /// Bytes copied by bounce or verifier double buffering.
    pub bytes_double_buffered: u64,
    /// Adapter channels allocated (`AllocateAdapterChannel`).
    pub adapter_channels_allocated: u64,
    /// Adapter channels released.
    pub adapter_channels_freed: u64,
}

/// What `!dma` would print for one adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdapterReport {
    /// The adapter's address.
    pub adapter: usize,
    /// The `DEVICE_DESCRIPTION` version it was granted with.
    pub version: u32,
    /// Address width in bits.
    pub width: u32,
    /// Map registers granted.
    pub map_registers: u32,
    /// Whether `PutDmaAdapter` was called.
    pub released: bool,
    /// Common buffers still allocated.
    pub common_buffers: usize,
    /// Scatter/gather lists not yet put.
    pub sg_lists: usize,
    /// Requests still waiting for map registers.
    pub waiting: usize,
    /// Map register files (`AllocateAdapterChannel`) not yet freed.
    pub register_files: usize,
    /// Counters.
    pub counters: DmaCounters,
}

impl AdapterReport {
    /// Whether anything is outstanding (a leak once the device is removed).
    #[must_use]
    pub const fn leaks(&self) -> bool {
        !self.released
            || self.common_buffers > 0
            || self.sg_lists > 0
            || self.waiting > 0
            || self.register_files > 0
    }
}

/// HAL state.
#[derive(Debug, Default)]
pub(crate) struct Hal {
    pub(crate) adapters: FastMap<usize, Adapter>,
    iommu: Iommu,
    /// Logical ranges a device may touch on non-remapped profiles (for stray-DMA reports).
    visible: BTreeMap<u64, u64>,
    /// For each page of a visible range of at most [`VISIBLE_HINT_BYTES`], the last such range
    /// added there: one hash lookup answers most accesses (a capture burst over an application
    /// buffer's scattered pages touches one small range per page), the ordered map the rest.
    visible_hint: FastMap<u64, (u64, u64)>,
    /// The visible range that answered the last look-up (a large common buffer's, typically).
    last_visible: Option<(u64, u64)>,
    /// For each page, how many visible ranges cover all of it: an access within one such page
    /// is visible after one indexed load (a capture burst over an application buffer's
    /// scattered pages makes one access per page; under `coherent` each is its own range).
    full_pages: crate::pagetable::PageTable<u32>,
    /// Verifier: released double buffers, filled with 0x0F: (region, va, len).
    quarantine: VecDeque<(usize, usize, usize)>,
    /// The bus's translation runs, kept between accesses so that a device access allocates
    /// nothing ([`Hal::take_runs`]).
    runs: Vec<(u64, usize)>,
    /// Where each piece of a burst starts in the runs, kept for the same reason.
    piece_starts: Vec<usize>,
    /// Element vectors and list storage of released scatter/gather lists, for the next
    /// `GetScatterGatherList` ([`Hal::take_elements`], [`Hal::take_list_storage`]): a mapped
    /// send or receive then allocates nothing on the host for them. A list's storage at the
    /// address of one just released is what the host allocator gave before as well (its
    /// freed blocks are reused last-in, first-out), and is what Windows's HAL does with its
    /// own lists; a stale pointer to it is caught only while no other list lives there.
    spare_elements: Vec<Vec<(u64, u32)>>,
    spare_lists: Vec<Box<[u64]>>,
    /// Piece vectors (the buffer's virtual pieces) of released mappings, for the same reason.
    spare_pieces: Vec<Vec<(usize, usize)>>,
}

/// Released element vectors and list storages the HAL keeps for reuse, at most, each.
const SPARE_LISTS: usize = 16;

impl Drop for Hal {
    fn drop(&mut self) {
        // The `DMA_ADAPTER` structures outlive `PutDmaAdapter` (a driver that calls through a
        // put adapter must still read its operations table, so that the machine can tell it
        // what it did): they go with the machine.
        for &a in self.adapters.keys() {
            // SAFETY: every key is a pointer `IoGetDmaAdapter` made with `Box::into_raw`, freed
            // only here, once, when no driver code of this machine can run any more.
            drop(unsafe { Box::from_raw(a as *mut crate::types::_DMA_ADAPTER) });
        }
    }
}

impl Hal {
    /// The HAL of a machine configured with `config`.
    pub(crate) fn new(config: &Config) -> Self {
        let mut h = Self::default();
        h.iommu.cost = config.iommu_cost;
        h
    }

    /// The IOMMU's counters.
    pub(crate) const fn iommu_stats(&self) -> IommuStats {
        self.iommu.stats
    }

    /// Translates a device access into physical runs `(pa, len)`, appended to `runs` (a buffer
    /// kept across accesses, so that an access allocates nothing); `Err(address)` on an IOMMU
    /// fault.
    pub(crate) fn translate(
        &mut self,
        logical: u64,
        len: usize,
        kind: Access,
        iommu: bool,
        runs: &mut Vec<(u64, usize)>,
    ) -> Result<(), u64> {
        self.translate_each(logical, len, kind, iommu, |pa, n| runs.push((pa, n)))
    }

    /// Translates a device access page by page, handing each physical run `(pa, len)` (within
    /// one page, in order) to `each`; `Err(address)` on an IOMMU fault, after the runs before
    /// it were handed over. Under DMA remapping each page goes through the IOTLB model
    /// (`Iommu::translated`), whose misses the device's thread pays for once it has released
    /// the machine's lock ([`iommu_pay`]).
    #[inline]
    pub(crate) fn translate_each(
        &mut self,
        logical: u64,
        len: usize,
        kind: Access,
        iommu: bool,
        mut each: impl FnMut(u64, usize),
    ) -> Result<(), u64> {
        let mut at = logical;
        let end = logical + len as u64;
        while at < end {
            let n = (0x1000 - (at & 0xFFF)).min(end - at);
            let pa = if iommu {
                let &(pfn, writable) = self.iommu.table.get(&(at >> 12)).ok_or(at)?;
                self.iommu.translated(at >> 12);
                if kind == Access::Write && !writable {
                    return Err(at);
                }
                (pfn << 12) | (at & 0xFFF)
            } else {
                at
            };
            // CAST: n <= 4096.
            each(pa, n as usize);
            at += n;
        }
        Ok(())
    }

    /// The run buffer for [`Hal::translate`], taken out of the HAL (empty) for one access and
    /// given back with [`Hal::put_runs`].
    pub(crate) fn take_runs(&mut self) -> Vec<(u64, usize)> {
        let mut runs = std::mem::take(&mut self.runs);
        runs.clear();
        runs
    }

    /// Gives the run buffer back.
    pub(crate) fn put_runs(&mut self, runs: Vec<(u64, usize)>) {
        self.runs = runs;
    }

    /// An empty element vector for a new mapping: one a released list left, or a new one.
    pub(crate) fn take_elements(&mut self) -> Vec<(u64, u32)> {
        self.spare_elements.pop().unwrap_or_default()
    }

    /// An empty piece vector for a new mapping: one a released mapping left, or a new one.
    pub(crate) fn take_pieces(&mut self) -> Vec<(usize, usize)> {
        self.spare_pieces.pop().unwrap_or_default()
    }

    /// Zeroed storage of `words` 8-byte words for a scatter/gather list the HAL allocates: a
    /// released list's of that size, or a new one.
    pub(crate) fn take_list_storage(&mut self, words: usize) -> Box<[u64]> {
        match self.spare_lists.iter().rposition(|b| b.len() == words) {
            Some(i) => {
                let mut b = self.spare_lists.swap_remove(i);
                b.fill(0);
                b
            }
            None => vec![0u64; words].into_boxed_slice(),
        }
    }

    /// Keeps a released list's element and piece vectors and its storage for the next
    /// mappings (while there is room).
    pub(crate) fn recycle_list(
        &mut self,
        mut elements: Vec<(u64, u32)>,
        mut pieces: Vec<(usize, usize)>,
        storage: Option<Box<[u64]>>,
    ) {
        if self.spare_elements.len() < SPARE_LISTS {
            elements.clear();
            self.spare_elements.push(elements);
        }
        if self.spare_pieces.len() < SPARE_LISTS {
            pieces.clear();
            self.spare_pieces.push(pieces);
        }
        if let Some(b) = storage
            && self.spare_lists.len() < SPARE_LISTS
        {
            self.spare_lists.push(b);
        }
    }

    /// The buffer of a burst's piece starts, as [`Hal::take_runs`].
    pub(crate) fn take_piece_starts(&mut self) -> Vec<usize> {
        let mut starts = std::mem::take(&mut self.piece_starts);
        starts.clear();
        starts
    }

    /// Gives the piece starts back.
    pub(crate) fn put_piece_starts(&mut self, starts: Vec<usize>) {
        self.piece_starts = starts;
    }

    /// How many visible ranges cover each page whole, by page number (the bus's fast path,
    /// `bus::common_runs`).
    #[inline]
    pub(crate) const fn full_page_table(&self) -> &crate::pagetable::PageTable<u32> {
        &self.full_pages
    }

    /// Whether `logical .. logical + len` lies in a range the driver mapped for a device.
    #[inline]
    pub(crate) fn device_visible(&mut self, logical: u64, len: usize, iommu: bool) -> bool {
        if iommu {
            return true;
        }
        let end = logical.saturating_add(len as u64);
        if len > 0 && logical >> 12 == (end - 1) >> 12 && self.full_pages.get(logical >> 12) > 0 {
            return true;
        }
        self.visible_in_part(logical, end)
    }

    /// [`Hal::device_visible`] for an access that is not within one page covered whole: the
    /// ranges are searched. Kept out of line, so that the common case above inlines into the
    /// bus's per-page loop.
    #[inline(never)]
    fn visible_in_part(&mut self, logical: u64, end: u64) -> bool {
        let covers = |&(s, l): &(u64, u64)| s <= logical && end <= s + l;
        if self.last_visible.as_ref().is_some_and(covers) {
            return true;
        }
        let found = self
            .visible_hint
            .get(&(logical >> 12))
            .copied()
            .filter(covers)
            .or_else(|| {
                self.visible
                    .range(..=logical)
                    .next_back()
                    .map(|(&s, &l)| (s, l))
                    .filter(covers)
            });
        if found.is_some() {
            self.last_visible = found;
        }
        found.is_some()
    }

    fn add_visible(&mut self, start: u64, len: u64) {
        if let Some(old) = self.visible.insert(start, len) {
            self.unhint(start, old);
        }
        self.count_full_pages(start, len, true);
        if len > 0 && len <= VISIBLE_HINT_BYTES {
            for pfn in start >> 12..=(start + len - 1) >> 12 {
                self.visible_hint.insert(pfn, (start, len));
            }
        }
    }

    fn remove_visible(&mut self, start: u64) {
        if let Some(len) = self.visible.remove(&start) {
            self.unhint(start, len);
        }
    }

    /// Counts (or uncounts) the range `start, len` on every page it covers whole.
    fn count_full_pages(&mut self, start: u64, len: u64, add: bool) {
        let first = start.div_ceil(PAGE as u64);
        let end = start.saturating_add(len) / PAGE as u64;
        for pfn in first..end {
            // A page beyond the table's reach is not counted (it reads 0): the ordered map
            // answers for it.
            let Some(count) = self.full_pages.entry(pfn) else {
                continue;
            };
            if add {
                *count += 1;
            } else {
                debug_assert!(*count > 0, "a page uncounted more often than counted");
                *count = count.saturating_sub(1);
            }
        }
    }

    /// Forgets the look-up shortcuts to the range `start, len`, which is no longer visible.
    fn unhint(&mut self, start: u64, len: u64) {
        self.count_full_pages(start, len, false);
        if self.last_visible == Some((start, len)) {
            self.last_visible = None;
        }
        if len > 0 && len <= VISIBLE_HINT_BYTES {
            for pfn in start >> 12..=(start + len - 1) >> 12 {
                if self.visible_hint.get(&pfn) == Some(&(start, len)) {
                    self.visible_hint.remove(&pfn);
                }
            }
        }
    }
}

/// The largest visible range whose pages get a look-up hint (larger ones are found through the
/// ordered map, then stay in `last_visible` while the device works in them).
const VISIBLE_HINT_BYTES: u64 = 64 * 1024;

/// `BYTES_TO_PAGES(n)`.
pub(crate) const fn bytes_to_pages(n: u64) -> u64 {
    n.div_ceil(PAGE as u64)
}

/// `ADDRESS_AND_SIZE_TO_SPAN_PAGES(va, size)`.
pub(crate) const fn span_pages(va: usize, size: usize) -> u64 {
    if size == 0 {
        return 0;
    }
    (((va & (PAGE - 1)) + size).div_ceil(PAGE)) as u64
}

/// Per-adapter reports.
pub(crate) fn reports(hal: &Hal) -> Vec<AdapterReport> {
    let mut v: Vec<AdapterReport> = hal
        .adapters
        .iter()
        .map(|(&adapter, a)| AdapterReport {
            adapter,
            version: a.version,
            width: a.width,
            map_registers: a.granted,
            released: a.released,
            common_buffers: a.common.len(),
            sg_lists: a.maps.len(),
            waiting: a.waiting.len() + usize::from(a.waiting_channel.is_some()),
            register_files: a.files.len(),
            counters: a.counters,
        })
        .collect();
    v.sort_by_key(|r| r.adapter);
    v
}

/// The IOMMU's live page count (for tests).
pub(crate) fn iommu_pages(hal: &Hal) -> usize {
    hal.iommu.table.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visibility_is_exact_with_and_without_the_lookup_hints() {
        let mut h = Hal::default();
        // A small range inside one page (hinted), a page-spanning one (hinted), a large one
        // (found through the ordered map only).
        h.add_visible(0x1_0100, 0x128);
        h.add_visible(0x2_0F00, 0x200);
        h.add_visible(0x10_0000, 0x40_0000);
        for _ in 0..2 {
            // Twice: the second look-ups are answered by the shortcuts.
            assert!(h.device_visible(0x1_0100, 0x128, false));
            assert!(
                !h.device_visible(0x1_0100, 0x129, false),
                "one byte past the end"
            );
            assert!(
                !h.device_visible(0x1_00FF, 2, false),
                "one byte before the start"
            );
            assert!(h.device_visible(0x2_1000, 0x100, false));
            assert!(h.device_visible(0x12_3456, 0x1000, false));
            assert!(
                !h.device_visible(0x50_0000, 1, false),
                "past the large range"
            );
        }
        // A range replaced at the same start, then removed: no shortcut outlives it.
        h.add_visible(0x1_0100, 0x10);
        assert!(!h.device_visible(0x1_0100, 0x128, false));
        assert!(h.device_visible(0x1_0100, 0x10, false));
        h.remove_visible(0x1_0100);
        assert!(!h.device_visible(0x1_0100, 0x10, false));
        assert!(
            h.device_visible(0x12_3456, 0x1000, false),
            "now the last range found"
        );
        h.remove_visible(0x10_0000);
        assert!(!h.device_visible(0x12_3456, 0x1000, false));
        assert!(h.device_visible(0x2_0F00, 0x200, false));
        // Under DMA remapping the IOMMU decides, not this table.
        assert!(h.device_visible(0x99_0000, 8, true));
    }

    #[test]
    fn a_page_covered_whole_is_visible_while_any_range_covering_it_is() {
        let mut h = Hal::default();
        // Two ranges cover page 0x50 whole; one more covers only part of page 0x60.
        h.add_visible(0x5_0000, 0x1000);
        h.add_visible(0x4_F000, 0x2000);
        h.add_visible(0x6_0800, 0x400);
        assert_eq!(h.full_pages.get(0x50), 2);
        assert_eq!(h.full_pages.get(0x60), 0, "covered in part only");
        assert!(h.device_visible(0x5_0000, 0x1000, false));
        assert!(h.device_visible(0x6_0800, 0x400, false));
        assert!(!h.device_visible(0x6_0000, 0x1000, false));
        h.remove_visible(0x5_0000);
        assert!(
            h.device_visible(0x5_0800, 0x800, false),
            "the other range still covers it"
        );
        h.remove_visible(0x4_F000);
        assert_eq!(h.full_pages.get(0x50), 0);
        assert!(!h.device_visible(0x5_0800, 0x800, false));
        // Replacing a range at the same start uncounts the pages of the old one.
        h.add_visible(0x7_0000, 0x3000);
        h.add_visible(0x7_0000, 0x1000);
        assert_eq!((h.full_pages.get(0x70), h.full_pages.get(0x72)), (1, 0));
        assert!(!h.device_visible(0x7_2000, 0x10, false));
        // A range far beyond every frame is found through the ordered map, not counted.
        h.add_visible(1 << 50, 0x2000);
        assert!(h.device_visible((1 << 50) + 0x1000, 0x1000, false));
        assert!(h.full_pages.directory_len() < 1 << 20);
    }
}
