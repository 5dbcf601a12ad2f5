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

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use crate::bugcheck::{BugCheck, sim_rule};
use crate::bus::Access;
use crate::machine::{Config, State};
use crate::mem::{Kind, PAGE, Zone};
use crate::types::PDRIVER_LIST_CONTROL;

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

#[derive(Debug, Clone, Copy)]
pub(crate) struct CommonBuf {
    pub(crate) len: u32,
    pub(crate) logical: u64,
    /// `CacheEnabled` of the allocation; `None` for a buffer made from an MDL.
    pub(crate) cache: Option<u8>,
    /// The HAL's own region, freed with the buffer; `None` for a buffer made from an MDL (the
    /// driver owns those pages).
    region: Option<usize>,
    /// The MDL a `CreateCommonBufferFromMdl` buffer was made from.
    pub(crate) mdl: Option<usize>,
    iova: Option<(u64, u64)>,
    /// Driver Verifier's guard: a page of padding before the buffer and the bytes from its
    /// length to the end of a page after its last one, filled with [`PADDING`]; checked when
    /// the buffer is freed and when its adapter is released.
    guarded: bool,
}

/// The padding byte Driver Verifier's DMA checking puts around DMA buffers (E6/0x0F).
pub(crate) const PADDING: u8 = 0x0F;

impl CommonBuf {
    /// The guard areas of a buffer at `va`: (start, length, E6/0x0F parameter 2).
    fn guards(&self, va: usize) -> [(usize, usize, u64); 2] {
        let len = self.len as usize;
        let after = bytes_to_pages(u64::from(self.len)).max(1) as usize * PAGE - len + PAGE;
        [(va - PAGE, PAGE, 4), (va + len, after, 5)]
    }

    /// Driver Verifier's check of a guarded buffer's padding: a byte changed before it is
    /// E6/0x0F with parameter 2 = 4, after it 5; parameter 3 the buffer, 4 the first changed
    /// byte (windows-dma.md §5.1, §5.2 code 0x0F).
    pub(crate) fn check_guards(&self, mem: &crate::mem::Memory, va: usize) -> Result<(), BugCheck> {
        if !self.guarded {
            return Ok(());
        }
        for (start, len, which) in self.guards(va) {
            let mut bytes = vec![0u8; len];
            mem.read_va(start, &mut bytes);
            if let Some(i) = bytes.iter().position(|&b| b != PADDING) {
                return Err(BugCheck::dma(
                    0x0F,
                    which,
                    va as u64,
                    (start + i) as u64,
                    if which == 4 {
                        "a common buffer's padding before it was modified (an underrun by the driver or the device)"
                    } else {
                        "a common buffer's padding after it was modified (an overrun by the driver or the device)"
                    },
                    "windows-dma.md §5.1 (guard padding 0x0F), §5.2 code 0x0F, §10 rule 13",
                ));
            }
        }
        Ok(())
    }
}

/// How a mapping's data reach the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// The device accesses the buffer's own pages.
    Direct,
    /// Through a copy at `va` inside region `region`.
    Copy {
        region: usize,
        va: usize,
        verifier: bool,
    },
}

/// A buffer mapped for a device (one scatter/gather list, or one `MapTransfer` run).
#[derive(Debug)]
pub(crate) struct Mapped {
    write: bool,
    /// The buffer as the driver sees it: (virtual address, length) pieces in order.
    pieces: Vec<(usize, usize)>,
    length: usize,
    route: Route,
    iova: Option<(u64, u64)>,
    visible: Vec<(u64, u64)>,
    /// The elements as the device sees them: (logical address, length).
    elements: Vec<(u64, u32)>,
}

#[derive(Debug)]
pub(crate) struct SgMap {
    mapped: Mapped,
    registers: u32,
    /// Storage of a list the HAL allocated (`GetScatterGatherList`); `None` for Build. Owned here
    /// so that the list stays valid until Put and is freed by it.
    #[expect(
        dead_code,
        reason = "owns the list memory; never read, only dropped at Put"
    )]
    storage: Option<Box<[u64]>>,
}

/// A request waiting for map registers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pending {
    pub(crate) device: usize,
    pub(crate) request: Request,
    pub(crate) routine: PDRIVER_LIST_CONTROL,
    pub(crate) context: usize,
    /// The version 3 transfer context backing the request (0 for version 1/2 routines).
    pub(crate) transfer_context: usize,
}

/// The state of a version 3 DMA transfer context (`InitializeDmaTransferContext`).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct TransferContext {
    /// A request backed by this context is waiting for resources.
    pub(crate) busy: bool,
    /// `CancelAdapterChannel` ran before the allocation: the next one is cancelled.
    pub(crate) precancelled: bool,
}

/// What to map.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Request {
    pub(crate) mdl: usize,
    pub(crate) current_va: usize,
    pub(crate) length: usize,
    pub(crate) write: bool,
    /// A caller-supplied list buffer (`BuildScatterGatherList`).
    pub(crate) buffer: Option<(usize, usize)>,
    pub(crate) registers: u32,
    /// A version 3 routine: it performs the cache maintenance itself (windows-dma.md §4).
    pub(crate) v3: bool,
}

#[derive(Debug)]
pub(crate) struct Adapter {
    pub(crate) version: u32,
    pub(crate) width: u32,
    pub(crate) granted: u32,
    pub(crate) pdo: usize,
    pub(crate) released: bool,
    pub(crate) common: HashMap<usize, CommonBuf>,
    freed_common: HashSet<usize>,
    pub(crate) maps: HashMap<usize, SgMap>,
    pub(crate) registers_in_use: u32,
    pub(crate) waiting: VecDeque<Pending>,
    pub(crate) counters: DmaCounters,
    /// Map register files of `AllocateAdapterChannel`, by `MapRegisterBase`.
    pub(crate) files: HashMap<usize, packet::RegisterFile>,
    pub(crate) freed_files: HashSet<usize>,
    /// An adapter channel is allocated (from the allocation until the execution routine
    /// returns, and after it while it returned `KeepObject`).
    pub(crate) channel: bool,
    /// A channel request waiting for map registers.
    pub(crate) waiting_channel: Option<packet::PendingChannel>,
    /// Version 3 transfer contexts, by address.
    pub(crate) contexts: HashMap<usize, TransferContext>,
    /// Adapter objects held by synchronous, routine-less version 3 allocations until
    /// `FreeAdapterObject`.
    pub(crate) held_objects: u32,
}

impl Adapter {
    pub(crate) fn new(version: u32, width: u32, granted: u32, pdo: usize) -> Self {
        Self {
            version,
            width,
            granted,
            pdo,
            released: false,
            common: HashMap::new(),
            freed_common: HashSet::new(),
            maps: HashMap::new(),
            registers_in_use: 0,
            waiting: VecDeque::new(),
            counters: DmaCounters::default(),
            files: HashMap::new(),
            freed_files: HashSet::new(),
            channel: false,
            waiting_channel: None,
            contexts: HashMap::new(),
            held_objects: 0,
        }
    }

    /// Map registers not held by a live mapping.
    pub(crate) const fn free_registers(&self) -> u32 {
        self.granted.saturating_sub(self.registers_in_use)
    }
}

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
struct Iommu {
    table: HashMap<u64, (u64, bool)>,
    next: u64,
    freed: VecDeque<(u64, u64)>,
    cost: Option<IommuCost>,
    stats: IommuStats,
    unflushed: u32,
}

/// Spends `ns` nanoseconds of CPU time, as the modelled hardware operation would.
fn charge(stats: &mut IommuStats, ns: u64) {
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
    fn alloc(&mut self, pages: u64) -> Option<u64> {
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

    fn map(&mut self, start: u64, pfns: &[u64], device_writable: bool) {
        for (i, &pfn) in pfns.iter().enumerate() {
            self.table.insert(start + i as u64, (pfn, device_writable));
        }
        self.stats.maps += 1;
        if let Some(c) = self.cost {
            charge(&mut self.stats, c.map_ns);
        }
    }

    fn unmap(&mut self, start: u64, pages: u64) {
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

/// HAL state.
#[derive(Debug, Default)]
pub(crate) struct Hal {
    pub(crate) adapters: HashMap<usize, Adapter>,
    iommu: Iommu,
    /// Logical ranges a device may touch on non-remapped profiles (for stray-DMA reports).
    visible: BTreeMap<u64, u64>,
    /// Verifier: released double buffers, filled with 0x0F: (region, va, len).
    quarantine: VecDeque<(usize, usize, usize)>,
}

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

    /// Translates a device access into physical runs `(pa, 0, len)`; `Err(address)` on an
    /// IOMMU fault.
    pub(crate) fn translate(
        &self,
        logical: u64,
        len: usize,
        kind: Access,
        iommu: bool,
    ) -> Result<Vec<(u64, u64, usize)>, u64> {
        let mut runs = Vec::new();
        let mut at = logical;
        let end = logical + len as u64;
        while at < end {
            let n = (0x1000 - (at & 0xFFF)).min(end - at);
            let pa = if iommu {
                let &(pfn, writable) = self.iommu.table.get(&(at >> 12)).ok_or(at)?;
                if kind == Access::Write && !writable {
                    return Err(at);
                }
                (pfn << 12) | (at & 0xFFF)
            } else {
                at
            };
            // CAST: n <= 4096.
            runs.push((pa, 0, n as usize));
            at += n;
        }
        Ok(runs)
    }

    /// Whether `logical .. logical + len` lies in a range the driver mapped for a device.
    pub(crate) fn device_visible(&self, logical: u64, len: usize, iommu: bool) -> bool {
        if iommu {
            return true;
        }
        self.visible
            .range(..=logical)
            .next_back()
            .is_some_and(|(&s, &l)| logical + len as u64 <= s + l)
    }

    fn add_visible(&mut self, start: u64, len: u64) {
        self.visible.insert(start, len);
    }

    fn remove_visible(&mut self, start: u64) {
        self.visible.remove(&start);
    }
}

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

/// Allocates a common buffer for `adapter`: physically contiguous (and below the adapter's
/// reach) without remapping, scattered behind a contiguous IOVA range with it.
pub(crate) fn alloc_common(
    st: &mut State,
    cfg: &Config,
    adapter: usize,
    len: u32,
    max_address: Option<u64>,
    cache: u8,
) -> Option<(usize, u64)> {
    let width = st.hal.adapters.get(&adapter)?.width;
    let guarded = cfg.profile.verifier;
    let pages = bytes_to_pages(u64::from(len)).max(1);
    // Under Driver Verifier a guard page flanks the buffer on each side (the allocation
    // behind the buffer is `total` pages; the buffer starts one page in).
    let total = pages + if guarded { 2 } else { 0 };
    let limit = max_address
        .map_or(u64::MAX, |m| m.saturating_add(1))
        .min(if width >= 64 { u64::MAX } else { 1u64 << width });
    let (region, logical, iova) = if cfg.profile.iommu {
        let region =
            st.mem
                .alloc_region(total as usize, Kind::CommonBuffer, Zone::General, false)?;
        let pfns = st.mem.region_pfns(region)?.to_vec();
        let Some(start) = st.hal.iommu.alloc(total) else {
            st.mem.free_region(region);
            return None;
        };
        st.hal.iommu.map(start, &pfns, true);
        (region, start << 12, Some((start, total)))
    } else {
        // Without remapping the device sees physical addresses: the buffer must be contiguous
        // and entirely below the adapter's limit.
        let zone = if st.mem.general_is_reachable(limit) {
            Zone::General
        } else {
            Zone::Low
        };
        let region = st
            .mem
            .alloc_region(total as usize, Kind::CommonBuffer, zone, true)?;
        let pa = st.mem.pfn_of(region)? << 12;
        if pa + total * PAGE as u64 > limit {
            st.mem.free_region(region);
            return None;
        }
        (region, pa, None)
    };
    if !cfg.profile.iommu {
        st.hal.add_visible(logical, total * PAGE as u64);
    }
    let skip = if guarded { PAGE } else { 0 };
    let (va, logical) = (region + skip, logical + skip as u64);
    // Common buffer contents are undefined; a pattern makes a driver that forgets to
    // initialise a ring fail visibly.
    st.mem.fill_va(va, 0xCB, pages as usize * PAGE);
    let cb = CommonBuf {
        len,
        logical,
        cache: Some(cache),
        region: Some(region),
        mdl: None,
        iova,
        guarded,
    };
    if guarded {
        for (start, n, _) in cb.guards(va) {
            st.mem.fill_va(start, PADDING, n);
        }
    }
    let a = st.hal.adapters.get_mut(&adapter)?;
    a.common.insert(va, cb);
    a.freed_common.remove(&va);
    a.counters.common_buffers_allocated += 1;
    Some((va, logical))
}

/// Frees a common buffer; the arguments must match the allocation exactly.
pub(crate) fn free_common(
    st: &mut State,
    cfg: &Config,
    adapter: usize,
    len: u32,
    logical: u64,
    va: usize,
    cache: u8,
) -> Result<(), BugCheck> {
    let a = st.hal.adapters.get_mut(&adapter).ok_or_else(|| {
        BugCheck::dma(
            0x19,
            0,
            0,
            0,
            "NULL or unknown DMA adapter",
            "windows-dma.md §5.2",
        )
    })?;
    let Some(cb) = a.common.get(&va).copied() else {
        if a.freed_common.contains(&va) {
            return Err(BugCheck::dma(
                0x03,
                1,
                va as u64,
                0,
                "freed a common buffer that was already freed",
                "windows-dma.md §2.4, §5.2",
            ));
        }
        return Err(BugCheck::dma(
            0x03,
            1,
            va as u64,
            u64::from(len),
            "FreeCommonBuffer of an address that is not a common buffer of this adapter",
            "windows-dma.md §2.4, §10 rule 14",
        ));
    };
    cb.check_guards(&st.mem, va)?;
    if cb.len != len || cb.logical != logical || cb.cache.is_some_and(|c| c != cache) {
        return Err(BugCheck::sim(
            sim_rule::FREE_COMMON_MISMATCH,
            va as u64,
            u64::from(len),
            "FreeCommonBuffer arguments differ from the allocation (length, logical address, virtual address and CacheEnabled must match exactly)",
        ));
    }
    a.common.remove(&va);
    a.freed_common.insert(va);
    a.counters.common_buffers_freed += 1;
    if let Some((start, pages)) = cb.iova {
        st.hal.iommu.unmap(start, pages);
    } else if !cfg.profile.iommu {
        // The visible range starts at the allocation, a guard page before a guarded buffer.
        let guard = if cb.guarded { PAGE as u64 } else { 0 };
        st.hal.remove_visible(cb.logical - guard);
    }
    if let Some(region) = cb.region {
        st.mem.free_region(region);
    }
    Ok(())
}

/// `CreateCommonBufferFromMdl`: makes the pages an MDL describes a common buffer (one logical
/// range), or says why not (`Err(status)`).
pub(crate) fn common_from_mdl(
    st: &mut State,
    cfg: &Config,
    adapter: usize,
    mdl: usize,
) -> Result<Result<(usize, u64), crate::NTSTATUS>, BugCheck> {
    use crate::{STATUS_INSUFFICIENT_RESOURCES, STATUS_INVALID_PARAMETER};
    let m = known_mdl(
        &st.mem,
        mdl,
        "CreateCommonBufferFromMdl given an unknown or freed MDL",
    )?;
    let resident = i32::from(m.MdlFlags)
        & i32::from(crate::typed::MDL_PAGES_LOCKED | crate::typed::MDL_SOURCE_IS_NONPAGED_POOL)
        != 0;
    let va = m.StartVa as usize;
    let len = m.ByteCount as usize;
    // The MDL must be resident, page aligned, a whole number of pages and not chained
    // (windows-dma.md §9).
    if !resident || m.ByteOffset != 0 || len == 0 || !len.is_multiple_of(PAGE) || !m.Next.is_null()
    {
        return Ok(Err(STATUS_INVALID_PARAMETER));
    }
    let mut pfns = Vec::with_capacity(len / PAGE);
    for i in 0..len / PAGE {
        let Some(pfn) = st.mem.pfn_of(va + i * PAGE) else {
            return Ok(Err(STATUS_INVALID_PARAMETER));
        };
        pfns.push(pfn);
    }
    let width = st.hal.adapters.get(&adapter).map_or(64, |a| a.width);
    let (logical, iova) = if cfg.profile.iommu {
        let Some(start) = st.hal.iommu.alloc(pfns.len() as u64) else {
            return Ok(Err(STATUS_INSUFFICIENT_RESOURCES));
        };
        st.hal.iommu.map(start, &pfns, true);
        (start << 12, Some((start, pfns.len() as u64)))
    } else {
        // Without remapping the device needs the pages physically contiguous and in reach.
        if pfns.windows(2).any(|w| w[1] != w[0] + 1) {
            return Ok(Err(STATUS_INVALID_PARAMETER));
        }
        let pa = pfns[0] << 12;
        if width < 64 && pa + len as u64 > 1u64 << width {
            return Ok(Err(STATUS_INSUFFICIENT_RESOURCES));
        }
        st.hal.add_visible(pa, len as u64);
        (pa, None)
    };
    let a = st.hal.adapters.get_mut(&adapter).ok_or_else(|| {
        BugCheck::dma(0x19, 0, 0, 0, "unknown DMA adapter", "windows-dma.md §5.2")
    })?;
    let sys_va = if m.MappedSystemVa.is_null() {
        va
    } else {
        m.MappedSystemVa as usize
    };
    a.common.insert(
        sys_va,
        CommonBuf {
            len: m.ByteCount,
            logical,
            cache: None,
            region: None,
            mdl: Some(mdl),
            iova,
            // The driver's own pages: no room for a guard.
            guarded: false,
        },
    );
    a.freed_common.remove(&sys_va);
    a.counters.common_buffers_allocated += 1;
    Ok(Ok((sys_va, logical)))
}

/// Whether `mdl` backs a live common buffer (its pages must stay locked until it is freed).
pub(crate) fn mdl_backs_common_buffer(st: &State, mdl: usize) -> bool {
    st.hal
        .adapters
        .values()
        .any(|a| a.common.values().any(|c| c.mdl == Some(mdl)))
}

/// The result of trying to map a request.
pub(crate) enum MapOutcome {
    /// Mapped: the list's address.
    Mapped(usize),
    /// The caller's buffer is too small (`BuildScatterGatherList`).
    BufferTooSmall,
    /// Not enough memory for bounce or verifier buffers.
    NoMemory,
}

fn mdl_pieces(st: &State, req: &Request) -> Result<Vec<(usize, usize)>, BugCheck> {
    // The bytes to map: `length` bytes from `current_va`, walking the MDL chain.
    let mut pieces = Vec::new();
    let mut mdl = req.mdl;
    let mut remaining = req.length;
    let mut first = true;
    while remaining > 0 {
        if mdl == 0 {
            return Err(BugCheck::dma(
                0x1F,
                3,
                req.current_va as u64,
                remaining as u64,
                "transfer length runs past the end of the MDL chain",
                "windows-dma.md §5.2, §10 rule 20",
            ));
        }
        let m = known_mdl(&st.mem, mdl, "DMA routine given an unknown or freed MDL")?;
        let va = m.StartVa as usize + m.ByteOffset as usize;
        let end = va + m.ByteCount as usize;
        let start = if first {
            if req.current_va < va {
                return Err(BugCheck::dma(
                    0x1F,
                    1,
                    req.current_va as u64,
                    mdl as u64,
                    "CurrentVa lies before the first MDL",
                    "windows-dma.md §5.2, §10 rule 20",
                ));
            }
            if req.current_va >= end {
                return Err(BugCheck::dma(
                    0x1F,
                    2,
                    req.current_va as u64,
                    mdl as u64,
                    "CurrentVa lies after the first MDL",
                    "windows-dma.md §5.2, §10 rule 20",
                ));
            }
            req.current_va
        } else {
            va
        };
        let locked = i32::from(m.MdlFlags)
            & i32::from(
                crate::typed::MDL_PAGES_LOCKED
                    | crate::typed::MDL_SOURCE_IS_NONPAGED_POOL
                    | crate::typed::MDL_PARTIAL,
            )
            != 0;
        if !locked {
            return Err(BugCheck::dma(
                0x0E,
                mdl as u64,
                0,
                0,
                "DMA on a buffer whose pages are not locked (MDL neither probed and locked nor built for non-paged pool)",
                "windows-dma.md §5.2, §10 rule 22",
            ));
        }
        if st.mem.region_of(start).is_none() {
            return Err(BugCheck::dma(
                0x22,
                mdl as u64,
                0,
                0,
                "DMA buffer not mapped in system virtual address space",
                "windows-dma.md §5.2, §10 rule 22",
            ));
        }
        let n = (end - start).min(remaining);
        pieces.push((start, n));
        remaining -= n;
        mdl = m.Next as usize;
        first = false;
    }
    Ok(pieces)
}

/// Validates a request against the MDL and returns the map registers it needs.
pub(crate) fn check_request(st: &State, req: &Request) -> Result<u32, BugCheck> {
    if req.length == 0 {
        return Err(BugCheck::dma(
            0x21,
            req.current_va as u64,
            req.mdl as u64,
            0,
            "mapped a zero-length buffer",
            "windows-dma.md §5.2, §10 rule 20",
        ));
    }
    let pieces = mdl_pieces(st, req)?;
    let regs: u64 = pieces.iter().map(|&(va, n)| span_pages(va, n)).sum();
    Ok(u32::try_from(regs).unwrap_or(u32::MAX))
}

/// Maps `pieces` of a driver buffer for the device as the profile requires (directly, through a
/// bounce copy, or through a verifier double buffer; behind IOVAs under remapping).
/// `Ok(None)` when bounce or verifier memory is exhausted.
#[expect(
    clippy::too_many_lines,
    clippy::single_match_else,
    reason = "the per-profile mapping decision reads best as one sequence: pieces, route, copy, elements, list"
)]
pub(crate) fn map_pieces(
    st: &mut State,
    cfg: &Config,
    adapter: usize,
    pieces: Vec<(usize, usize)>,
    write: bool,
    mdl: usize,
) -> Result<Option<Mapped>, BugCheck> {
    let width = st.hal.adapters.get(&adapter).map_or(64, |a| a.width);
    let limit = if width >= 64 { u64::MAX } else { 1u64 << width };
    let length: usize = pieces.iter().map(|p| p.1).sum();

    // Physical runs of the buffer.
    let mut runs: Vec<(u64, usize)> = Vec::new();
    for &(va, n) in &pieces {
        let mut at = va;
        while at < va + n {
            let chunk = (PAGE - (at & (PAGE - 1))).min(va + n - at);
            let pfn = st.mem.pfn_of(at).ok_or_else(|| {
                BugCheck::dma(
                    0x22,
                    mdl as u64,
                    at as u64,
                    0,
                    "DMA buffer page is not mapped",
                    "windows-dma.md §5.2",
                )
            })?;
            let pa = (pfn << 12) | (at & (PAGE - 1)) as u64;
            match runs.last_mut() {
                Some((s, l)) if *s + *l as u64 == pa => *l += chunk,
                _ => runs.push((pa, chunk)),
            }
            at += chunk;
        }
    }
    let reachable = runs.iter().all(|&(pa, l)| pa + l as u64 <= limit);

    let mut route = Route::Direct;
    let mut device_base: Option<(usize, usize)> = None; // (va of device copy, offset of data)
    if cfg.profile.verifier {
        // Verifier double-buffers every transfer: a guard page of 0x0F padding ending in the
        // tag, the data, the tag, and 0x0F padding to the end of the next page.
        let data_off = PAGE;
        let pages = (data_off + length + 8).div_ceil(PAGE) + 1;
        let zone = if width <= 32 || !st.mem.general_is_reachable(limit) {
            Zone::Low
        } else {
            Zone::General
        };
        let Some(region) = st
            .mem
            .alloc_region(pages, Kind::Hal, zone, !cfg.profile.iommu)
        else {
            return Ok(None);
        };
        st.mem.fill_va(region, VERIFIER_FILL, pages * PAGE);
        st.mem.copy_from_slice(region + data_off - 8, VERIFIER_TAG);
        st.mem
            .copy_from_slice(region + data_off + length, VERIFIER_TAG);
        route = Route::Copy {
            region,
            va: region + data_off,
            verifier: true,
        };
        device_base = Some((region, data_off));
    } else if !cfg.profile.iommu && !reachable {
        // Map registers: a bounce copy below the adapter's limit, at the buffer's page offset.
        let off = pieces[0].0 & (PAGE - 1);
        let pages = (off + length).div_ceil(PAGE);
        let Some(region) = st.mem.alloc_region(pages, Kind::Hal, Zone::Low, true) else {
            return Ok(None);
        };
        route = Route::Copy {
            region,
            va: region + off,
            verifier: false,
        };
        device_base = Some((region, off));
    }

    // Memory→device data are captured now: CPU writes after mapping do not reach the device.
    if let Route::Copy { va, .. } = route {
        if write {
            let mut at = va;
            for &(src, n) in &pieces {
                st.mem.copy_va(at, src, n);
                at += n;
            }
        }
        if let Some(a) = st.hal.adapters.get_mut(&adapter) {
            a.counters.bytes_double_buffered += length as u64;
        }
    }

    // Elements as the device sees them.
    let mut iova = None;
    let mut visible = Vec::new();
    let elements: Vec<(u64, u32)> = if cfg.profile.iommu {
        let (first_va, pfns) = match device_base {
            Some((region, off)) => {
                let all = st
                    .mem
                    .region_pfns(region)
                    .map(<[u64]>::to_vec)
                    .unwrap_or_default();
                let first_page = off / PAGE;
                let last_page = (off + length - 1) / PAGE;
                (region + off, all[first_page..=last_page].to_vec())
            }
            None => {
                let mut pfns = Vec::new();
                for &(va, n) in &pieces {
                    let mut p = va & !(PAGE - 1);
                    while p < va + n {
                        pfns.push(st.mem.pfn_of(p).unwrap_or(0));
                        p += PAGE;
                    }
                }
                (pieces[0].0, pfns)
            }
        };
        let pages = pfns.len() as u64;
        let Some(start) = st.hal.iommu.alloc(pages) else {
            if let Route::Copy { region, .. } = route {
                st.mem.free_region(region);
            }
            return Ok(None);
        };
        // A memory→device mapping is read-only to the device.
        st.hal.iommu.map(start, &pfns, !write);
        iova = Some((start, pages));
        vec![(
            (start << 12) | (first_va & (PAGE - 1)) as u64,
            u32::try_from(length).unwrap_or(u32::MAX),
        )]
    } else if let Some((region, off)) = device_base {
        let pa = (st.mem.pfn_of(region).unwrap_or(0) << 12) + off as u64;
        visible.push((pa, length as u64));
        vec![(pa, u32::try_from(length).unwrap_or(u32::MAX))]
    } else {
        for &(pa, l) in &runs {
            visible.push((pa, l as u64));
        }
        runs.iter()
            .map(|&(pa, l)| (pa, u32::try_from(l).unwrap_or(u32::MAX)))
            .collect()
    };

    for &(s, l) in &visible {
        st.hal.add_visible(s, l);
    }
    Ok(Some(Mapped {
        write,
        pieces,
        length,
        route,
        iova,
        visible,
        elements,
    }))
}

/// Undoes a mapping whose list could not be written (the caller's buffer was too small).
fn unmap_unused(st: &mut State, m: &Mapped) {
    if let Route::Copy { region, .. } = m.route {
        st.mem.free_region(region);
    }
    for &(s, _) in &m.visible {
        st.hal.remove_visible(s);
    }
    if let Some((s, p)) = m.iova {
        st.hal.iommu.unmap(s, p);
    }
}

/// Maps a request on `adapter` (registers already reserved by the caller) and writes its list.
pub(crate) fn map_request(
    st: &mut State,
    cfg: &Config,
    adapter: usize,
    req: &Request,
) -> Result<MapOutcome, BugCheck> {
    let pieces = mdl_pieces(st, req)?;
    if req.v3 && req.write {
        // Version 3 mapping cleans the CPU caches before a memory→device transfer.
        for &(va, n) in &pieces {
            st.mem.cache_sync(va, n, true);
        }
    }
    let Some(mapped) = map_pieces(st, cfg, adapter, pieces, req.write, req.mdl)? else {
        return Ok(MapOutcome::NoMemory);
    };
    // The list: header (NumberOfElements, Reserved) then 24-byte elements.
    let need = 16 + mapped.elements.len() * 24;
    let (list, storage) = if let Some((buf, len)) = req.buffer {
        if len < need {
            unmap_unused(st, &mapped);
            return Ok(MapOutcome::BufferTooSmall);
        }
        (buf, None)
    } else {
        let mut b = vec![0u64; need / 8].into_boxed_slice();
        (b.as_mut_ptr() as usize, Some(b))
    };
    write_list(list, &mapped.elements);
    let registers = req.registers;
    let a = st.hal.adapters.get_mut(&adapter).ok_or_else(|| {
        BugCheck::dma(0x19, 0, 0, 0, "unknown DMA adapter", "windows-dma.md §5.2")
    })?;
    a.counters.sg_lists_allocated += 1;
    a.counters.map_registers_allocated += u64::from(registers);
    a.maps.insert(
        list,
        SgMap {
            mapped,
            registers,
            storage,
        },
    );
    Ok(MapOutcome::Mapped(list))
}

fn write_list(list: usize, elements: &[(u64, u32)]) {
    let l = list as *mut crate::types::_SCATTER_GATHER_LIST;
    // SAFETY: `list` points to at least 16 + 24 * n writable bytes, 8-byte aligned (HAL storage
    // or a caller buffer whose size was checked); the writes stay inside it.
    let header = unsafe { &mut *l };
    header.NumberOfElements = u32::try_from(elements.len()).unwrap_or(u32::MAX);
    // The HAL's own mark; drivers must not touch Reserved.
    header.Reserved = 0x5347_4C53;
    let first = header.Elements.as_mut_ptr();
    for (i, &(addr, len)) in elements.iter().enumerate() {
        // SAFETY: element `i` lies at 16 + 24 * i, inside the checked size.
        let e = unsafe { first.add(i) };
        // SAFETY: `e` is in bounds and suitably aligned (8-byte elements after a 16-byte header).
        unsafe {
            e.write(crate::types::_SCATTER_GATHER_ELEMENT {
                Address: crate::types::_LARGE_INTEGER {
                    QuadPart: addr.cast_signed(),
                },
                Length: len,
                Reserved: 0,
            });
        }
    }
}

/// Releases a mapping (PutScatterGatherList): copies device→memory data back, checks the
/// verifier guards, unmaps, frees the registers.
pub(crate) fn put_map(
    st: &mut State,
    cfg: &Config,
    adapter: usize,
    list: usize,
    write: bool,
) -> Result<(), BugCheck> {
    let a = st.hal.adapters.get_mut(&adapter).ok_or_else(|| {
        BugCheck::dma(0x19, 0, 0, 0, "unknown DMA adapter", "windows-dma.md §5.2")
    })?;
    let Some(map) = a.maps.remove(&list) else {
        return Err(BugCheck::dma(
            0x06,
            a.counters.sg_lists_allocated,
            a.counters.sg_lists_freed + 1,
            list as u64,
            "freed a scatter/gather list that is not outstanding (double Put, or a list of another adapter)",
            "windows-dma.md §5.2, §10 rule 27",
        ));
    };
    if map.mapped.write != write {
        a.maps.insert(list, map);
        return Err(BugCheck::sim(
            sim_rule::DIRECTION_MISMATCH,
            list as u64,
            u64::from(write),
            "PutScatterGatherList with a WriteToDevice different from the mapping's",
        ));
    }
    a.counters.sg_lists_freed += 1;
    a.counters.map_registers_freed += u64::from(map.registers);
    a.registers_in_use = a.registers_in_use.saturating_sub(map.registers);
    release_mapped(st, cfg, &map.mapped)
}

/// Ends a mapping: copies device→memory data back, checks the verifier guards, unmaps.
pub(crate) fn release_mapped(st: &mut State, cfg: &Config, m: &Mapped) -> Result<(), BugCheck> {
    let result = release_route(st, cfg, m);
    for &(s, _) in &m.visible {
        st.hal.remove_visible(s);
    }
    if let Some((s, p)) = m.iova {
        st.hal.iommu.unmap(s, p);
    }
    result
}

fn release_route(st: &mut State, cfg: &Config, map: &Mapped) -> Result<(), BugCheck> {
    if !map.write && map.route == Route::Direct {
        // The end of a device→memory transfer invalidates the CPU caches over the buffer
        // (FlushAdapterBuffers, PutScatterGatherList).
        for &(va, n) in &map.pieces {
            st.mem.cache_sync(va, n, false);
        }
    }
    let Route::Copy {
        region,
        va,
        verifier,
    } = map.route
    else {
        return Ok(());
    };
    let check = if verifier {
        check_guards(st, va, map.length)
    } else {
        Ok(())
    };
    if !map.write {
        sync_back(st, map);
    }
    if verifier && cfg.profile.verifier {
        // Released double buffers are filled with 0x0F and watched: a device write after Put
        // is caught when the buffer leaves quarantine.
        let pages = st.mem.region_of(region).map_or(1, |r| r.1);
        st.mem.fill_va(region, VERIFIER_FILL, pages * PAGE);
        st.hal.quarantine.push_back((region, region, pages * PAGE));
        while st.hal.quarantine.len() > QUARANTINE {
            let q = st.hal.quarantine.pop_front().unwrap_or_default();
            check_quarantine(st, q)?;
        }
    } else {
        st.mem.free_region(region);
    }
    check
}

/// Copies the device's copy of a device→memory mapping back to the driver's buffer.
fn sync_back(st: &State, map: &Mapped) {
    if let Route::Copy { va, .. } = map.route {
        let mut at = va;
        for &(dst, n) in &map.pieces {
            st.mem.copy_va(dst, at, n);
            at += n;
        }
    }
}

fn check_guards(st: &State, data: usize, length: usize) -> Result<(), BugCheck> {
    let mut tag = [0u8; 8];
    st.mem.read_va(data - 8, &mut tag);
    if &tag != VERIFIER_TAG {
        return Err(BugCheck::dma(
            0x0F,
            1,
            length as u64,
            data as u64,
            "wrote outside the DMA buffer: the tag before it was modified (expected DmaVrfy0)",
            "windows-dma.md §5.1, §5.2",
        ));
    }
    st.mem.read_va(data + length, &mut tag);
    if &tag != VERIFIER_TAG {
        return Err(BugCheck::dma(
            0x0F,
            2,
            length as u64,
            (data + length) as u64,
            "wrote outside the DMA buffer: the tag after it was modified (expected DmaVrfy0)",
            "windows-dma.md §5.1, §5.2",
        ));
    }
    let region = data - PAGE;
    let mut pad = vec![0u8; PAGE - 8];
    st.mem.read_va(region, &mut pad);
    if let Some(i) = pad.iter().position(|&b| b != VERIFIER_FILL) {
        return Err(BugCheck::dma(
            0x0F,
            4,
            length as u64,
            (region + i) as u64,
            "wrote outside the DMA buffer: padding before it was modified (expected 0x0F)",
            "windows-dma.md §5.1, §5.2",
        ));
    }
    let after = data + length + 8;
    let end = (after.div_ceil(PAGE) + 1) * PAGE;
    let mut pad = vec![0u8; end - after];
    st.mem.read_va(after, &mut pad);
    if let Some(i) = pad.iter().position(|&b| b != VERIFIER_FILL) {
        return Err(BugCheck::dma(
            0x0F,
            5,
            length as u64,
            (after + i) as u64,
            "wrote outside the DMA buffer: padding after it was modified (expected 0x0F)",
            "windows-dma.md §5.1, §5.2",
        ));
    }
    Ok(())
}

fn check_quarantine(
    st: &mut State,
    (region, va, len): (usize, usize, usize),
) -> Result<(), BugCheck> {
    let mut buf = vec![0u8; len];
    st.mem.read_va(va, &mut buf);
    let bad = buf.iter().position(|&b| b != VERIFIER_FILL);
    st.mem.free_region(region);
    bad.map_or(Ok(()), |i| Err(BugCheck::dma(
            0x0F,
            3,
            len as u64,
            (va + i) as u64,
            "a released map register buffer was overwritten (expected 0x0F): DMA after PutScatterGatherList",
            "windows-dma.md §5.1, §5.2",
        )))
}

/// Verifier: checks every quarantined buffer now (at `PutDmaAdapter` and in leak checks).
pub(crate) fn drain_quarantine(st: &mut State) -> Result<(), BugCheck> {
    while let Some(q) = st.hal.quarantine.pop_front() {
        check_quarantine(st, q)?;
    }
    Ok(())
}

/// `FlushDmaBuffer`: makes the part of a live mapping that `mdl` describes consistent between
/// the driver's buffer and the device's copy, without ending the mapping.
pub(crate) fn flush_dma_buffer(
    st: &mut State,
    adapter: usize,
    mdl: usize,
    read_operation: bool,
) -> Result<bool, BugCheck> {
    let m = known_mdl(&st.mem, mdl, "FlushDmaBuffer given an unknown MDL")?;
    let va = m.StartVa as usize + m.ByteOffset as usize;
    let len = m.ByteCount as usize;
    let a = st.hal.adapters.get(&adapter).ok_or_else(|| {
        BugCheck::dma(0x19, 0, 0, 0, "unknown DMA adapter", "windows-dma.md §5.2")
    })?;
    // Find the live mapping whose buffer contains [va, va + len).
    let mut found = None;
    for map in a.maps.values() {
        let mut offset = 0usize;
        for &(p, n) in &map.mapped.pieces {
            if va >= p && va + len <= p + n {
                found = Some((map.mapped.route, offset + (va - p), map.mapped.write));
            }
            offset += n;
        }
        if found.is_some() {
            break;
        }
    }
    let Some((route, offset, write)) = found else {
        // A buffer made with CreateCommonBufferFromMdl needs only cache maintenance.
        let in_mdl_buffer = a
            .common
            .iter()
            .any(|(&base, c)| c.mdl.is_some() && va >= base && va + len <= base + c.len as usize);
        if in_mdl_buffer {
            st.mem.cache_sync(va, len, !read_operation);
        }
        return Ok(in_mdl_buffer);
    };
    if route == Route::Direct {
        // Read: invalidate so the CPU sees what the device wrote; write: clean so the device
        // sees what the CPU wrote.
        st.mem.cache_sync(va, len, !read_operation);
    }
    if let Route::Copy { va: copy, .. } = route {
        if read_operation {
            if write {
                return Err(BugCheck::sim(
                    sim_rule::DIRECTION_MISMATCH,
                    mdl as u64,
                    1,
                    "FlushDmaBuffer(ReadOperation = TRUE) on a memory→device mapping",
                ));
            }
            st.mem.copy_va(va, copy + offset, len);
        } else {
            if !write {
                return Err(BugCheck::sim(
                    sim_rule::DIRECTION_MISMATCH,
                    mdl as u64,
                    0,
                    "FlushDmaBuffer(ReadOperation = FALSE) on a device→memory mapping",
                ));
            }
            st.mem.copy_va(copy + offset, va, len);
        }
        if let Some(a) = st.hal.adapters.get_mut(&adapter) {
            a.counters.bytes_double_buffered += len as u64;
        }
    }
    Ok(true)
}

/// Reserves registers for a request, or tells the caller to queue it.
pub(crate) fn reserve_registers(st: &mut State, adapter: usize, registers: u32) -> bool {
    let Some(a) = st.hal.adapters.get_mut(&adapter) else {
        return false;
    };
    if a.waiting.is_empty() && a.free_registers() >= registers {
        a.registers_in_use += registers;
        true
    } else {
        false
    }
}

/// Takes the waiting requests that now fit, in FIFO order, reserving their registers.
pub(crate) fn dequeue_ready(st: &mut State, adapter: usize) -> Vec<Pending> {
    let mut out = Vec::new();
    if let Some(a) = st.hal.adapters.get_mut(&adapter) {
        while let Some(p) = a.waiting.front() {
            if a.free_registers() < p.request.registers {
                break;
            }
            a.registers_in_use += p.request.registers;
            out.push(p.to_owned());
            a.waiting.pop_front();
        }
    }
    out
}

/// Per-adapter reports.
pub(crate) fn reports(st: &State) -> Vec<AdapterReport> {
    let mut v: Vec<AdapterReport> = st
        .hal
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
pub(crate) fn iommu_pages(st: &State) -> usize {
    st.hal.iommu.table.len()
}

/// The MDL a DMA routine was given, or the stop for one the memory manager does not know (never
/// built, or freed): wdk-sim-private `BAD_MDL` (Windows would read freed memory; see
/// docs/sim-fidelity.md). `routine` says which routine and is the stop's rule text.
pub(crate) fn known_mdl(
    mem: &crate::mem::Memory,
    mdl: usize,
    routine: &'static str,
) -> Result<crate::types::_MDL, BugCheck> {
    mem.mdl(mdl)
        .ok_or_else(|| BugCheck::sim(sim_rule::BAD_MDL, mdl as u64, 0, routine))
}
