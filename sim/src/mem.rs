//! Simulated physical memory, non-paged pool, user memory and MDL bookkeeping.
//!
//! Virtual addresses the driver dereferences are real host addresses (the driver writes its
//! rings and buffers through pointers, as on Windows). Behind every host page the machine keeps a
//! **page frame number** of its own: physical addresses are `pfn << 12`, never host pointers, and
//! are handed out in a scattered, seeded order so that a multi-page buffer is physically
//! discontiguous. Non-`bounce` profiles place general memory below 4 GiB, the `bounce` profile
//! above it; map registers (bounce pages) always come from below 4 GiB.
//!
//! A device reaches memory only by physical page frame (after the HAL translated a logical
//! address); frames that are not allocated are faults, never silently readable.
//!
//! # Safety story
//! Host pages come from `std::alloc` with page alignment and are freed only when their region is
//! freed. Device accesses copy through raw pointers into live pages; the driver side accesses
//! device-visible memory with volatile operations, as it must on real hardware. A device read,
//! and a write on a platform with cached pages, copies with the machine lock held. A burst
//! write ([`Memory::resolve_run`]) is checked and translated with the lock held and copied
//! after it is released, as a device's DMA engine works beside the CPUs: the burst holds a
//! [`DmaPin`] while it copies, and a region freed meanwhile keeps its host pages (neither
//! returned to the host nor reused) until no pin is left, so the copy always lands in the pages
//! it was translated to, which are still allocated.

use crate::fasthash::{FastMap, FastSet};
use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::machine::Config;

/// Bytes per page.
pub const PAGE: usize = 4096;

/// Page frames below 4 GiB: 16 MiB .. 4 GiB (half of it scattered frames, about 2 GiB, so that
/// a process can hold a 1 GiB stream buffer; frames are host pages only once allocated).
const LOW: (u64, u64) = (0x1000, 0x10_0000);
/// Page frames above 4 GiB: 8 GiB .. 40 GiB.
const HIGH: (u64, u64) = (0x20_0000, 0xA0_0000);

/// What a region of host pages is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Non-paged pool (`ExAllocatePool2`).
    Pool,
    /// A DMA common buffer.
    CommonBuffer,
    /// Memory of a simulated user process.
    User,
    /// A HAL bounce or verifier double-buffer.
    Hal,
    /// A mapping of device registers (`MmMapIoSpaceEx`).
    IoSpace,
}

/// Where new frames come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Zone {
    /// Below 4 GiB.
    Low,
    /// General memory: below 4 GiB, or above it under the `bounce` profile.
    General,
}

#[derive(Debug)]
struct Region {
    base: usize,
    pages: usize,
    kind: Kind,
    pfns: Vec<u64>,
}

/// Greatest common divisor.
const fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Frames per block of the scattered walk (see [`Frames::scattered`]).
const SCATTER_BLOCK: u64 = 512;

/// A stride for a walk over `n` items that visits each once: coprime with `n`, derived from
/// `seed`, and never 1 or `n - 1` (which would walk in order, forwards or backwards).
fn walk_stride(seed: u64, n: u64) -> u64 {
    if n < 4 {
        // Too few items to walk out of order.
        return 1;
    }
    // An odd stride alone is not enough: the sizes are not powers of two, and a stride sharing
    // a factor with the size would hand out a frame twice once size / gcd frames are used.
    let mut stride = (seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) % n) | 1;
    while gcd(stride, n) != 1 || stride == 1 || stride + 1 == n {
        stride = (stride + 2) % n;
    }
    stride
}

/// A frame allocator over one range: a seeded permutation for scattered frames, runs for
/// contiguous ones, and FIFO reuse of freed frames (so a stale address soon names new memory).
#[derive(Debug)]
struct Frames {
    base: u64,
    size: u64,
    next: u64,
    /// The walk's stride over blocks of [`SCATTER_BLOCK`] frames, and within a block.
    stride: u64,
    inner_stride: u64,
    freed: VecDeque<u64>,
    contig_next: u64,
    contig_free: Vec<(u64, u64)>,
}

impl Frames {
    fn new(range: (u64, u64), seed: u64) -> Self {
        let total = range.1 - range.0;
        // The first half serves scattered frames, the second half contiguous runs.
        let size = total / 2;
        assert!(
            size.is_multiple_of(SCATTER_BLOCK) && range.0.is_multiple_of(SCATTER_BLOCK),
            "the scattered half is whole blocks"
        );
        Self {
            base: range.0,
            size,
            next: 0,
            stride: walk_stride(seed, size / SCATTER_BLOCK),
            inner_stride: walk_stride(seed.rotate_left(17) ^ 0x5A5A, SCATTER_BLOCK),
            freed: VecDeque::new(),
            contig_next: range.0 + size,
            contig_free: Vec::new(),
        }
    }

    fn scattered(&mut self) -> Option<u64> {
        if self.freed.len() > 64 {
            return self.freed.pop_front();
        }
        if self.next < self.size {
            // A permutation of the blocks, and within each block a permutation of its frames:
            // consecutive frames are never neighbours (a multi-page buffer is physically
            // discontiguous, every page its own scatter/gather element), but a buffer's frames
            // lie in few blocks. Why: the bus looks up every page a device writes in tables
            // indexed by frame, and frames strewn over the whole range (as the walk was until
            // the sixth session) made each look-up of a scattered buffer a cache miss.
            let (block, i) = (self.next / SCATTER_BLOCK, self.next % SCATTER_BLOCK);
            let blocks = self.size / SCATTER_BLOCK;
            let pfn = self.base
                + (block.wrapping_mul(self.stride) % blocks) * SCATTER_BLOCK
                + i.wrapping_mul(self.inner_stride) % SCATTER_BLOCK;
            self.next += 1;
            return Some(pfn);
        }
        self.freed.pop_front()
    }

    fn contiguous(&mut self, n: u64) -> Option<u64> {
        if let Some(i) = self.contig_free.iter().position(|&(_, len)| len >= n) {
            let (start, len) = self.contig_free[i];
            if len == n {
                self.contig_free.remove(i);
            } else {
                self.contig_free[i] = (start + n, len - n);
            }
            return Some(start);
        }
        let start = self.contig_next;
        if start + n > self.base + 2 * self.size {
            return None;
        }
        self.contig_next += n;
        Some(start)
    }

    fn contains_contig(&self, pfn: u64) -> bool {
        pfn >= self.base + self.size && pfn < self.base + 2 * self.size
    }

    fn free(&mut self, pfn: u64) {
        if self.contains_contig(pfn) {
            self.contig_free.push((pfn, 1));
            Self::coalesce(&mut self.contig_free);
        } else {
            self.freed.push_back(pfn);
        }
    }

    fn coalesce(runs: &mut Vec<(u64, u64)>) {
        runs.sort_unstable();
        let mut out: Vec<(u64, u64)> = Vec::with_capacity(runs.len());
        for &(s, l) in runs.iter() {
            match out.last_mut() {
                Some((ps, pl)) if *ps + *pl == s => *pl += l,
                _ => out.push((s, l)),
            }
        }
        *runs = out;
    }
}

/// One live pool allocation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PoolAlloc {
    pub(crate) tag: u32,
    pub(crate) size: usize,
    region: usize,
}

/// Per-tag pool accounting, as `!poolused` shows it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TagUsage {
    /// Live allocations.
    pub allocations: u64,
    /// Live bytes.
    pub bytes: u64,
    /// Frees so far.
    pub frees: u64,
}

/// MDL bookkeeping (the MDL itself lives in host memory, laid out as `_MDL` + PFN array).
#[derive(Debug, Clone)]
pub(crate) struct MdlInfo {
    pub(crate) layout_size: usize,
    pub(crate) locked: bool,
    pub(crate) partial: bool,
}

/// The machine's memory.
#[derive(Debug)]
pub(crate) struct Memory {
    low: Frames,
    high: Frames,
    general_high: bool,
    /// The host page behind each allocated frame (0: none).
    frames: crate::pagetable::PageTable<usize>,
    va_pages: FastMap<usize, u64>,
    regions: BTreeMap<usize, Region>,
    /// User regions allocated since boot.
    user_allocated: u64,
    pub(crate) pool: FastMap<usize, PoolAlloc>,
    freed_pool: FastSet<usize>,
    pub(crate) tags: BTreeMap<u32, TagUsage>,
    pub(crate) mdls: FastMap<usize, MdlInfo>,
    freed_mdls: FastSet<usize>,
    rng: u64,
    /// `noncoherent` profile: the memory ("RAM") copy of cached pages, which is what a device
    /// reads and writes; the host page is the CPU's cached view.
    noncoherent: bool,
    ram: FastMap<u64, Box<[u8]>>,
    /// Single host pages freed and kept for the next one-page region (a slab, so that a small
    /// pool allocation does not cost the host a fresh zeroed page), at most [`SPARE_PAGES`].
    spare_pages: Vec<usize>,
    /// The same for two-page regions: a small pool block placed near the end of its page
    /// continues on a second one (as a Windows pool block may cross a page boundary, and so a
    /// physical discontiguity), about one system buffer in fourteen; each cost the host a
    /// fresh, zeroed, page-aligned allocation (~7,600 instructions) and its free.
    spare_pairs: Vec<usize>,
    /// The host page of each run of the write in progress ([`Memory::write_runs`]), kept so
    /// that a device write allocates nothing and looks each frame up once.
    hosts: Vec<usize>,
    /// Device bursts copying outside the machine's lock ([`DmaPin`]).
    pins: Arc<AtomicU32>,
    /// Host regions (base, pages) freed while a burst was copying: released once none is.
    deferred: Vec<(usize, usize)>,
}

/// A device burst copying into host pages outside the machine's lock: while any pin is alive,
/// freed regions keep their host pages ([`Memory::free_region`]). Dropping it ends the copy.
#[derive(Debug)]
pub(crate) struct DmaPin(Arc<AtomicU32>);

impl Drop for DmaPin {
    fn drop(&mut self) {
        // Release: the copy's writes happen before a free that sees the count drop.
        self.0.fetch_sub(1, Ordering::Release);
    }
}

/// How many freed host pages [`Memory`] keeps for reuse.
const SPARE_PAGES: usize = 1024;

mod host {
    //! The only place host pages are allocated and freed.

    use super::{Layout, PAGE, alloc_zeroed, dealloc};

    fn layout(pages: usize) -> Layout {
        Layout::from_size_align(pages * PAGE, PAGE).expect("page layout")
    }

    /// Allocates `pages` zeroed, page-aligned host pages.
    pub(super) fn alloc(pages: usize) -> usize {
        let l = layout(pages.max(1));
        // SAFETY: the layout has non-zero size (at least one page).
        let p = unsafe { alloc_zeroed(l) };
        if p.is_null() {
            std::alloc::handle_alloc_error(l);
        }
        p as usize
    }

    /// Frees pages from [`alloc`].
    ///
    /// # Safety
    /// `base` and `pages` must come from one `alloc` call and not have been freed.
    pub(super) unsafe fn free(base: usize, pages: usize) {
        // SAFETY: per the contract, `base` was returned by `alloc` with this layout.
        unsafe { dealloc(base as *mut u8, layout(pages.max(1))) }
    }
}

impl Drop for Memory {
    fn drop(&mut self) {
        for r in self.regions.values() {
            // SAFETY: every region was allocated by host::alloc with exactly these pages and is
            // freed once, here or in free_region (which removes it from the map).
            unsafe { host::free(r.base, r.pages) };
        }
        for &(base, pages) in &self.deferred {
            // SAFETY: a region's pages, kept by free_region while a burst was copying; the
            // region is in no map any more, so they are freed once, here (no burst outlives
            // the machine: each holds a reference to it).
            unsafe { host::free(base, pages) };
        }
        for &page in &self.spare_pages {
            // SAFETY: a one-page region's page, kept by free_region instead of freed; it is in
            // no region any more, so it is freed once, here.
            unsafe { host::free(page, 1) };
        }
        for &pair in &self.spare_pairs {
            // SAFETY: a two-page region's pages, kept the same way, freed once, here.
            unsafe { host::free(pair, 2) };
        }
    }
}

impl Memory {
    pub(crate) fn new(config: &Config) -> Self {
        Self {
            low: Frames::new(LOW, config.seed),
            high: Frames::new(HIGH, config.seed ^ 0x5555),
            general_high: config.profile.bounce,
            frames: crate::pagetable::PageTable::default(),
            va_pages: FastMap::default(),
            regions: BTreeMap::new(),
            user_allocated: 0,
            pool: FastMap::default(),
            freed_pool: FastSet::default(),
            tags: BTreeMap::new(),
            mdls: FastMap::default(),
            freed_mdls: FastSet::default(),
            rng: config.seed.wrapping_mul(0x2545_F491_4F6C_DD1D) | 1,
            noncoherent: config.profile.noncoherent,
            ram: FastMap::default(),
            spare_pages: Vec::new(),
            spare_pairs: Vec::new(),
            hosts: Vec::new(),
            pins: Arc::new(AtomicU32::new(0)),
            deferred: Vec::new(),
        }
    }

    /// A seeded pseudo-random number (xorshift64).
    pub(crate) fn random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }

    fn zone(&mut self, zone: Zone) -> &mut Frames {
        match zone {
            Zone::General if self.general_high => &mut self.high,
            Zone::Low | Zone::General => &mut self.low,
        }
    }

    /// Allocates a region of `pages` host pages with frames from `zone`, scattered or
    /// physically contiguous. Returns the base virtual address.
    pub(crate) fn alloc_region(
        &mut self,
        pages: usize,
        kind: Kind,
        zone: Zone,
        contiguous: bool,
    ) -> Option<usize> {
        let pages = pages.max(1);
        self.reclaim_deferred();
        let pfns: Vec<u64> = if contiguous {
            let start = self.zone(zone).contiguous(pages as u64)?;
            (start..start + pages as u64).collect()
        } else {
            let mut v = Vec::with_capacity(pages);
            for _ in 0..pages {
                let Some(p) = self.zone(zone).scattered() else {
                    for p in v {
                        self.free_frame(p);
                    }
                    return None;
                };
                v.push(p);
            }
            v
        };
        let spare = match pages {
            1 => self.spare_pages.pop(),
            2 => self.spare_pairs.pop(),
            _ => None,
        };
        let base = match spare {
            Some(reused) => {
                // Reused pages: zeroed as fresh ones are, except for pool, whose allocator
                // initialises the block it hands out (the rest of the pages is not the
                // caller's, as the neighbours of a Windows pool block are not).
                if kind != Kind::Pool {
                    self.fill_va(reused, 0, pages * PAGE);
                }
                reused
            }
            None => host::alloc(pages),
        };
        // On a non-coherent platform pool and user pages are cached; common buffers and HAL
        // buffers are uncached (ACPI _CCA = 0 makes the OS map them so), hence coherent.
        let cached = self.noncoherent && matches!(kind, Kind::Pool | Kind::User);
        for (i, &pfn) in pfns.iter().enumerate() {
            let va = base + i * PAGE;
            *self
                .frames
                .entry(pfn)
                .expect("frames lie below the table's limit") = va;
            self.va_pages.insert(va / PAGE, pfn);
            if cached {
                self.ram.insert(pfn, vec![0u8; PAGE].into_boxed_slice());
            }
        }
        self.regions.insert(
            base,
            Region {
                base,
                pages,
                kind,
                pfns,
            },
        );
        Some(base)
    }

    fn free_frame(&mut self, pfn: u64) {
        if pfn >= HIGH.0 {
            self.high.free(pfn);
        } else {
            self.low.free(pfn);
        }
    }

    /// Frees a region by its base address; returns its kind.
    pub(crate) fn free_region(&mut self, base: usize) -> Option<Kind> {
        let r = self.regions.remove(&base)?;
        for (i, &pfn) in r.pfns.iter().enumerate() {
            self.ram.remove(&pfn);
            if let Some(host) = self.frames.entry(pfn) {
                *host = 0;
            }
            self.va_pages.remove(&(r.base / PAGE + i));
            self.free_frame(pfn);
        }
        if self.pins.load(Ordering::Acquire) > 0 {
            // A burst may still be copying into these pages: keep them until none is.
            self.deferred.push((r.base, r.pages));
        } else {
            self.release_host(r.base, r.pages);
            self.reclaim_deferred();
        }
        Some(r.kind)
    }

    /// Returns the host pages of freed regions once no burst is copying ([`DmaPin`]).
    fn reclaim_deferred(&mut self) {
        if !self.deferred.is_empty() && self.pins.load(Ordering::Acquire) == 0 {
            // Popped, so the list keeps its buffer: nothing is allocated per free.
            while let Some((base, pages)) = self.deferred.pop() {
                self.release_host(base, pages);
            }
        }
    }

    /// Returns a freed region's host pages: one or two pages to their slab, others to the host.
    fn release_host(&mut self, base: usize, pages: usize) {
        if pages == 1 && self.spare_pages.len() < SPARE_PAGES {
            self.spare_pages.push(base);
        } else if pages == 2 && self.spare_pairs.len() < SPARE_PAGES / 2 {
            self.spare_pairs.push(base);
        } else {
            // SAFETY: the region came from host::alloc with `pages` pages and was removed from
            // the map by free_region (directly or through `deferred`), so it is freed once.
            unsafe { host::free(base, pages) };
        }
    }

    /// Pins host memory for a burst that copies after the machine's lock is released.
    /// Waits, with the machine's lock held, until no burst is copying (every [`DmaPin`] has
    /// been dropped). A burst takes effect when it is translated, under the lock; its bytes
    /// land after. So a release that reads or refills memory a burst may still be writing (the
    /// copy back from a bounce or Verifier buffer, the fill of a released Verifier buffer)
    /// settles first: otherwise a burst translated before `PutScatterGatherList` would land
    /// after the release and read as DMA after it (or be missing from the copy back). No new
    /// burst can start meanwhile (each takes its pin under the lock), and a copy needs no lock
    /// to finish, so the wait is short and cannot deadlock.
    pub(crate) fn settle_copies(&self) {
        while self.pins.load(Ordering::Acquire) > 0 {
            std::thread::yield_now();
        }
    }

    pub(crate) fn pin(&self) -> DmaPin {
        // Taken with the lock held; a free sees it under the same lock.
        self.pins.fetch_add(1, Ordering::Relaxed);
        DmaPin(self.pins.clone())
    }

    /// Whether device writes must be copied with the machine's lock held: on a platform with
    /// cached pages, a write goes to the page's memory copy, which the lock guards.
    pub(crate) fn writes_need_lock(&self) -> bool {
        !self.ram.is_empty()
    }

    /// The host address and length of the physical run `pa, n` (within one page), for a copy
    /// after the lock is released (with a [`DmaPin`] held), or `None` when its page has no
    /// frame.
    #[inline]
    pub(crate) fn resolve_run(&self, pa: u64, n: usize) -> Option<(usize, usize)> {
        let off = (pa & 0xFFF) as usize;
        assert!(off + n <= PAGE, "a run crosses a page boundary");
        Some((self.frame(pa >> 12)? + off, n))
    }

    /// The region containing `va`: (base, pages, kind).
    pub(crate) fn region_of(&self, va: usize) -> Option<(usize, usize, Kind)> {
        let (_, r) = self.regions.range(..=va).next_back()?;
        (va < r.base + r.pages * PAGE).then_some((r.base, r.pages, r.kind))
    }

    /// The frames of the region at `base`.
    pub(crate) fn region_pfns(&self, base: usize) -> Option<&[u64]> {
        self.regions.get(&base).map(|r| r.pfns.as_slice())
    }

    /// The frame behind virtual address `va`.
    pub(crate) fn pfn_of(&self, va: usize) -> Option<u64> {
        self.va_pages.get(&(va / PAGE)).copied()
    }

    /// The frame table: each frame's host page by frame number, or 0 for none (the bus's fast
    /// path, `bus::common_runs`).
    #[inline]
    pub(crate) const fn frame_table(&self) -> &crate::pagetable::PageTable<usize> {
        &self.frames
    }

    /// The host address of frame `pfn`, if it is allocated.
    #[inline]
    pub(crate) fn frame(&self, pfn: u64) -> Option<usize> {
        // A host page is never at address 0: 0 is the entry of a frame without one.
        Some(self.frames.get(pfn)).filter(|&host| host != 0)
    }

    /// Copies physical memory at `pa` into `buf`; `Err(pa)` names the first unallocated byte.
    pub(crate) fn read_phys(&self, pa: u64, buf: &mut [u8]) -> Result<(), u64> {
        for (at, addr, off, n) in pieces(pa, buf.len()) {
            let host = self.frame(addr >> 12).ok_or(addr)?;
            let dst = &mut buf[at..at + n];
            if let Some(ram) = self.ram.get(&(addr >> 12)) {
                dst.copy_from_slice(&ram[off..off + n]);
            } else {
                // SAFETY: `host` is a live page of PAGE bytes (frames holds only allocated
                // pages) and `off + n <= PAGE`.
                unsafe {
                    std::ptr::copy_nonoverlapping((host + off) as *const u8, dst.as_mut_ptr(), n);
                }
            }
        }
        Ok(())
    }

    /// Copies the bytes of `bufs`, in order, over `runs`: physical addresses and lengths, each
    /// within one page and within one of the buffers (the HAL's translation of each buffer's
    /// device address makes them so), together as many bytes as the buffers hold.
    /// `Err((i, pa))` names the first run whose page is not allocated, by index and address;
    /// nothing is written in that case.
    pub(crate) fn write_runs<'a>(
        &mut self,
        runs: &[(u64, usize)],
        bufs: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<(), (usize, u64)> {
        // Look every run's frame up first, so that a faulting write changes nothing.
        let mut hosts = std::mem::take(&mut self.hosts);
        hosts.clear();
        for (i, &(pa, _)) in runs.iter().enumerate() {
            let Some(host) = self.frame(pa >> 12) else {
                self.hosts = hosts;
                return Err((i, pa));
            };
            hosts.push(host);
        }
        let cached = !self.ram.is_empty();
        let srcs = run_sources(runs.iter().map(|r| r.1), bufs);
        for ((&(pa, n), &host), src) in runs.iter().zip(&hosts).zip(srcs) {
            let off = (pa & 0xFFF) as usize;
            assert!(off + n <= PAGE, "a run crosses a page boundary");
            if cached && let Some(ram) = self.ram.get_mut(&(pa >> 12)) {
                ram[off..off + n].copy_from_slice(src);
                continue;
            }
            // SAFETY: as in read_phys, `host` is a live page of PAGE bytes (looked up above,
            // and nothing is freed in between: the caller holds the machine's lock) and
            // `off + n <= PAGE` (asserted above).
            unsafe {
                std::ptr::copy_nonoverlapping(src.as_ptr(), (host + off) as *mut u8, n);
            }
        }
        self.hosts = hosts;
        Ok(())
    }

    /// Cache maintenance on `va .. va + len` (no-op for coherent pages): `clean` writes the
    /// CPU's cached bytes back to memory, otherwise the cache is invalidated and the CPU sees
    /// memory's bytes. Returns the bytes that were non-coherent.
    pub(crate) fn cache_sync(&mut self, va: usize, len: usize, clean: bool) -> usize {
        if self.ram.is_empty() {
            // Coherent platform (or no cached page at all): nothing to maintain.
            return 0;
        }
        let mut synced = 0;
        let mut at = va;
        while at < va + len {
            let off = at & (PAGE - 1);
            let n = (PAGE - off).min(va + len - at);
            if let Some(pfn) = self.pfn_of(at)
                && let Some(ram) = self.ram.get_mut(&pfn)
            {
                let cpu = at as *mut u8;
                if clean {
                    // SAFETY: `at .. at + n` lies in one live host page (it has a frame).
                    unsafe { std::ptr::copy_nonoverlapping(cpu, ram[off..].as_mut_ptr(), n) };
                } else {
                    // SAFETY: as above.
                    unsafe { std::ptr::copy_nonoverlapping(ram[off..].as_ptr(), cpu, n) };
                }
                synced += n;
            }
            at += n;
        }
        synced
    }

    /// Whether general memory lies entirely below `limit` (an exclusive physical bound).
    pub(crate) const fn general_is_reachable(&self, limit: u64) -> bool {
        let top = if self.general_high { HIGH.1 } else { LOW.1 };
        limit >= top << 12
    }

    /// Writes `src` at a virtual address the machine maps.
    #[expect(
        clippy::unused_self,
        reason = "taking the memory ties the access to holding the machine lock"
    )]
    pub(crate) fn copy_from_slice(&self, dst: usize, src: &[u8]) {
        // SAFETY: callers pass ranges inside live regions; `src` is a distinct host buffer.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), dst as *mut u8, src.len()) };
    }

    /// Live user regions, and user regions allocated since boot.
    pub(crate) fn user_regions(&self) -> (usize, u64) {
        let live = self
            .regions
            .values()
            .filter(|r| r.kind == Kind::User)
            .count();
        (live, self.user_allocated)
    }

    /// Allocates zeroed user memory for a simulated process.
    pub(crate) fn alloc_user(&mut self, len: usize) -> Option<usize> {
        let va = self.alloc_region(len.div_ceil(PAGE), Kind::User, Zone::General, false)?;
        self.user_allocated += 1;
        Some(va)
    }

    /// Copies between two virtual ranges the machine maps (used by bounce buffering).
    #[expect(
        clippy::unused_self,
        reason = "taking the memory ties the access to holding the machine lock"
    )]
    pub(crate) fn copy_va(&self, dst: usize, src: usize, len: usize) {
        // SAFETY: callers pass ranges inside live regions (mapped buffers and their bounce
        // copies), which never overlap because they are distinct allocations.
        unsafe { std::ptr::copy_nonoverlapping(src as *const u8, dst as *mut u8, len) };
    }

    /// Fills a virtual range the machine maps.
    #[expect(
        clippy::unused_self,
        reason = "taking the memory ties the access to holding the machine lock"
    )]
    pub(crate) fn fill_va(&self, dst: usize, byte: u8, len: usize) {
        // SAFETY: callers pass ranges inside live regions.
        unsafe { std::ptr::write_bytes(dst as *mut u8, byte, len) };
    }

    /// Reads a virtual range the machine maps.
    #[expect(
        clippy::unused_self,
        reason = "taking the memory ties the access to holding the machine lock"
    )]
    pub(crate) fn read_va(&self, src: usize, out: &mut [u8]) {
        // SAFETY: callers pass ranges inside live regions; `out` is a distinct host buffer.
        unsafe { std::ptr::copy_nonoverlapping(src as *const u8, out.as_mut_ptr(), out.len()) };
    }

    // ---- pool ----

    /// Allocates `size` bytes of non-paged pool with `tag`; small allocations are placed at a
    /// seeded 16-byte-aligned offset and may straddle a page boundary, as pool blocks do.
    pub(crate) fn pool_alloc(
        &mut self,
        size: usize,
        tag: u32,
        cache_aligned: bool,
        zero: bool,
    ) -> Option<usize> {
        let align = if cache_aligned { 64 } else { 16 };
        let offset = if size < PAGE {
            (self.random() as usize % PAGE) & !(align - 1)
        } else {
            0
        };
        let pages = (offset + size).div_ceil(PAGE);
        let base = self.alloc_region(pages, Kind::Pool, Zone::General, false)?;
        let p = base + offset;
        // Zeroed unless asked not to (the region's page may be a reused one). Uninitialised pool
        // is not zero on Windows either; a recognisable pattern lets tests find bytes the driver
        // copies out without writing them.
        self.fill_va(p, if zero { 0 } else { 0xAB }, size);
        self.pool.insert(
            p,
            PoolAlloc {
                tag,
                size,
                region: base,
            },
        );
        self.freed_pool.remove(&p);
        let t = self.tags.entry(tag).or_default();
        t.allocations += 1;
        t.bytes += size as u64;
        Some(p)
    }

    /// Frees a pool block. `Err(1)`: already freed; `Err(2)`: never allocated; `Err(3)`: tag
    /// mismatch (the expected tag is returned in the `Ok` of the caller's check).
    pub(crate) fn pool_free(&mut self, p: usize, tag: Option<u32>) -> Result<(), (u8, u32)> {
        let Some(a) = self.pool.get(&p).copied() else {
            return Err((if self.freed_pool.contains(&p) { 1 } else { 2 }, 0));
        };
        if let Some(t) = tag
            && t != 0
            && t != a.tag
        {
            return Err((3, a.tag));
        }
        self.pool.remove(&p);
        self.freed_pool.insert(p);
        let t = self.tags.entry(a.tag).or_default();
        t.allocations -= 1;
        t.bytes -= a.size as u64;
        t.frees += 1;
        self.free_region(a.region);
        Ok(())
    }

    /// Whether `va .. va + len` lies inside one live pool block or common buffer (non-paged
    /// system memory the driver owns).
    pub(crate) fn is_nonpaged(&self, va: usize, len: usize) -> bool {
        match self.region_of(va) {
            Some((base, pages, Kind::Pool | Kind::CommonBuffer | Kind::Hal)) => {
                va + len <= base + pages * PAGE
            }
            _ => false,
        }
    }

    /// Whether `va .. va + len` lies inside one live user region.
    pub(crate) fn is_user(&self, va: usize, len: usize) -> bool {
        matches!(self.region_of(va), Some((base, pages, Kind::User)) if va + len <= base + pages * PAGE)
    }

    // ---- MDL bookkeeping ----

    /// The header of a live MDL the machine allocated, or `None` for anything else.
    pub(crate) fn mdl(&self, mdl: usize) -> Option<crate::types::_MDL> {
        self.mdls.contains_key(&mdl).then(|| {
            // SAFETY: `mdl` is in the MDL table, so it points to a live `_MDL` header that
            // IoAllocateMdl wrote; reading a copy of plain data is sound.
            unsafe { std::ptr::read(mdl as *const crate::types::_MDL) }
        })
    }

    pub(crate) fn mdl_insert(&mut self, mdl: usize, info: MdlInfo) {
        self.freed_mdls.remove(&mdl);
        self.mdls.insert(mdl, info);
    }

    pub(crate) fn mdl_remove(&mut self, mdl: usize) -> Option<MdlInfo> {
        let i = self.mdls.remove(&mdl)?;
        self.freed_mdls.insert(mdl);
        Some(i)
    }

    /// Live pool allocations by tag.
    pub(crate) fn outstanding_pool(&self) -> Vec<(u32, TagUsage)> {
        self.tags
            .iter()
            .filter(|(_, u)| u.allocations > 0)
            .map(|(t, u)| (*t, *u))
            .collect()
    }
}

/// Copies the bytes of `src`, in order, into `runs` (host addresses and lengths from
/// [`Memory::resolve_run`]), after the machine's lock was released: a device burst's data
/// movement.
///
/// One source buffer (a burst's data), not several as [`Memory::write_runs`] takes: the cut of
/// the source into runs is then one split per run, about half the instructions a run cost when
/// it went through [`run_sources`].
///
/// # Safety
/// `runs` must come from [`Memory::resolve_run`] of a machine that is still alive, called with
/// the lock held that also took `pin`, and `pin` must be held until this returns (the pages
/// stay allocated then, see [`DmaPin`]); the runs must cover exactly the bytes of `src`, and
/// `src` may not lie in those pages.
pub(crate) unsafe fn copy_to_runs(runs: &[(usize, usize)], src: &[u8], pin: &DmaPin) {
    let _ = pin;
    let mut rest = src;
    for &(host, n) in runs {
        // PANIC: never: the runs cover the bytes of `src` (the caller's contract).
        let (bytes, after) = rest.split_at(n);
        // SAFETY: `host .. host + n` lies in one host page that was allocated when the run was
        // resolved and is still (the caller holds the pin taken then: a region freed since
        // keeps its pages); `bytes` is the caller's buffer, not in those pages. Simulated CPUs
        // may touch these bytes meanwhile only through raw or volatile accesses, as they
        // would memory under DMA on real hardware.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), host as *mut u8, n) };
        rest = after;
    }
}

/// The bytes of `bufs`, in order, cut into pieces of the run lengths `lens`: each run lies
/// within one buffer (its translation made it so), and the runs cover the buffers' bytes.
fn run_sources<'a>(
    lens: impl IntoIterator<Item = usize>,
    bufs: impl IntoIterator<Item = &'a [u8]>,
) -> impl Iterator<Item = &'a [u8]> {
    let mut bufs = bufs.into_iter();
    let mut cur: &[u8] = &[];
    lens.into_iter().map(move |n| {
        while cur.is_empty() {
            cur = bufs.next().expect("the runs cover the buffers' bytes");
        }
        // PANIC: never: a run lies within one buffer.
        let (src, rest) = cur.split_at(n);
        cur = rest;
        src
    })
}

/// Renders a pool tag (`'RHCA'` is stored little-endian, first character in the low byte).
#[must_use]
pub fn tag_name(tag: u32) -> String {
    tag.to_le_bytes()
        .iter()
        .map(|&b| if b.is_ascii_graphic() { b as char } else { '.' })
        .collect()
}

/// The page-bounded pieces of the physical range `pa .. pa + len`, in order: (offset in the
/// range, physical address, offset in its page, bytes).
fn pieces(pa: u64, len: usize) -> impl Iterator<Item = (usize, u64, usize, usize)> {
    let mut done = 0usize;
    core::iter::from_fn(move || {
        if done >= len {
            return None;
        }
        let addr = pa + done as u64;
        let off = (addr & 0xFFF) as usize;
        let n = (PAGE - off).min(len - done);
        let piece = (done, addr, off, n);
        done += n;
        Some(piece)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scattered_walk_hands_out_every_frame_once_for_any_seed() {
        for range in [LOW, HIGH] {
            for seed in [1u64, 2, 3, 7, 42, 0xDEAD_BEEF] {
                let mut f = Frames::new(range, seed);
                let size = f.size;
                let mut seen = vec![false; usize::try_from(size).unwrap_or(0)];
                for _ in 0..size {
                    let p = f.scattered().expect("a frame");
                    let i = usize::try_from(p - f.base).unwrap_or(usize::MAX);
                    assert!(!seen[i], "frame {p:#x} handed out twice (seed {seed})");
                    seen[i] = true;
                }
            }
        }
    }

    #[test]
    fn frames_are_scattered_unique_and_reused_fifo() {
        let mut f = Frames::new(LOW, 7);
        let v: Vec<u64> = (0..1000).map(|_| f.scattered().unwrap()).collect();
        let set: std::collections::HashSet<_> = v.iter().collect();
        assert_eq!(set.len(), v.len());
        let adjacent = v
            .windows(2)
            .filter(|w| w[1] == w[0] + 1 || w[0] == w[1] + 1)
            .count();
        assert_eq!(
            adjacent, 0,
            "consecutive frames must not be neighbours ({adjacent} adjacent pairs)"
        );
        assert!(v.iter().all(|&p| (LOW.0..LOW.1).contains(&p)));
        let c = f.contiguous(8).unwrap();
        assert!(f.contains_contig(c) && f.contains_contig(c + 7));
        for p in c..c + 8 {
            f.free(p);
        }
        assert_eq!(
            f.contiguous(8),
            Some(c),
            "freed runs coalesce and are reused"
        );
    }

    #[test]
    fn settling_waits_for_the_copies_in_flight() {
        let mut m = Memory::new(&Config::default());
        let base = m.alloc_region(1, Kind::Hal, Zone::General, false).unwrap();
        let pfn = m.pfn_of(base).unwrap();
        let run = m.resolve_run(pfn << 12, 8).unwrap();
        // A burst resolved under the lock, its copy still running on the device's thread.
        let pin = m.pin();
        let copier = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            // SAFETY: the run was resolved with the pin taken, which is held until this returns.
            unsafe { copy_to_runs(&[run], &[0xABu8; 8], &pin) };
            drop(pin);
        });
        let t = std::time::Instant::now();
        m.settle_copies();
        assert!(
            t.elapsed() >= std::time::Duration::from_millis(40),
            "settled before the copy was done"
        );
        let mut b = [0u8; 8];
        m.read_phys(pfn << 12, &mut b).unwrap();
        assert_eq!(b, [0xAB; 8], "the copy landed before the settle returned");
        copier.join().unwrap();
        m.settle_copies();
    }

    #[test]
    fn physical_access_follows_frames() {
        let mut m = Memory::new(&Config::default());
        let base = m.alloc_region(2, Kind::Pool, Zone::General, false).unwrap();
        let (p0, p1) = (m.pfn_of(base).unwrap(), m.pfn_of(base + PAGE).unwrap());
        m.fill_va(base + PAGE - 4, 0x11, 8);
        let mut b = [0u8; 4];
        m.read_phys((p0 << 12) + 4092, &mut b).unwrap();
        assert_eq!(b, [0x11; 4]);
        m.read_phys(p1 << 12, &mut b).unwrap();
        assert_eq!(b, [0x11; 4]);
        assert_eq!(
            m.write_runs(&[((p0 << 12) + 8, 4), (0x10, 4)], [&[0x22u8; 8][..]]),
            Err((1, 0x10)),
            "unallocated frame"
        );
        m.read_phys((p0 << 12) + 8, &mut b).unwrap();
        assert_eq!(b, [0; 4], "a write with a run that faults writes nothing");
        m.write_runs(
            &[((p0 << 12) + 4094, 2), (p1 << 12, 2)],
            [&[0x33u8; 2][..], &[], &[0x33; 2]],
        )
        .unwrap();
        let mut two = [0u8; 2];
        m.read_phys((p0 << 12) + 4094, &mut two).unwrap();
        assert_eq!(two, [0x33; 2], "the first run, at the end of one frame");
        m.read_phys(p1 << 12, &mut two).unwrap();
        assert_eq!(two, [0x33; 2], "the second run, at the start of another");
        m.free_region(base);
        assert!(m.read_phys(p0 << 12, &mut b).is_err(), "freed frame");
        assert_eq!(m.pfn_of(base), None);
    }

    #[test]
    fn a_burst_copying_after_the_lock_keeps_freed_pages_until_it_is_done() {
        let mut m = Memory::new(&Config::default());
        let base = m.alloc_region(1, Kind::User, Zone::General, false).unwrap();
        let pfn = m.pfn_of(base).unwrap();
        assert_eq!(m.resolve_run(0x10, 4), None, "a run without a frame");
        let hosts = [m.resolve_run((pfn << 12) + 16, 8).unwrap()];
        assert_eq!(hosts, [(base + 16, 8)]);
        let pin = m.pin();
        // The driver frees the buffer while the burst copies: the region is gone at once (its
        // frame faults for the next burst), but its host page is neither freed nor reused.
        m.free_region(base);
        assert_eq!(m.pfn_of(base), None);
        let other = m.alloc_region(1, Kind::User, Zone::General, false).unwrap();
        assert_ne!(
            other, base,
            "a page a burst may still write is not handed out again"
        );
        // SAFETY: `hosts` was resolved before the pin was taken, in this thread, and the pin
        // is held; the source is a distinct buffer.
        unsafe { copy_to_runs(&hosts, &[0x5Au8; 8], &pin) };
        assert_eq!(m.deferred, [(base, 1)]);
        drop(pin);
        // The next free or allocation returns the kept page (here to the slab).
        let again = m.alloc_region(1, Kind::User, Zone::General, false).unwrap();
        assert!(m.deferred.is_empty());
        assert_eq!(
            again, base,
            "the kept page is reused once no burst is copying"
        );
        let mut b = [0xFFu8; 8];
        m.read_va(again + 16, &mut b);
        assert_eq!(b, [0; 8], "a reused page is zeroed");
        m.free_region(other);
        m.free_region(again);
    }

    #[test]
    fn bounce_profile_puts_general_memory_above_4g() {
        let cfg = Config::with_profile(crate::Profile::BOUNCE);
        let mut m = Memory::new(&cfg);
        let g = m.alloc_region(1, Kind::Pool, Zone::General, false).unwrap();
        let l = m.alloc_region(1, Kind::Hal, Zone::Low, false).unwrap();
        assert!(m.pfn_of(g).unwrap() << 12 >= 1 << 32);
        assert!(m.pfn_of(l).unwrap() << 12 < 1 << 32);
        let mut c = Memory::new(&Config::default());
        let g = c.alloc_region(1, Kind::Pool, Zone::General, false).unwrap();
        assert!(c.pfn_of(g).unwrap() << 12 < 1 << 32);
    }

    #[test]
    fn pool_tracks_tags_and_double_frees() {
        let mut m = Memory::new(&Config::default());
        let tag = u32::from_le_bytes(*b"RHCA");
        let a = m.pool_alloc(296, tag, false, true).unwrap();
        let b = m.pool_alloc(5000, tag, false, false).unwrap();
        assert_eq!(a % 16, 0);
        assert_eq!(
            m.outstanding_pool(),
            vec![(
                tag,
                TagUsage {
                    allocations: 2,
                    bytes: 5296,
                    frees: 0
                }
            )]
        );
        let mut x = [0u8; 4];
        m.read_va(b, &mut x);
        assert_eq!(x, [0xAB; 4], "uninitialised pool is patterned");
        assert_eq!(
            m.pool_free(a, Some(u32::from_le_bytes(*b"XXXX"))),
            Err((3, tag))
        );
        assert_eq!(m.pool_free(a, Some(tag)), Ok(()));
        assert_eq!(m.pool_free(a, None), Err((1, 0)));
        assert_eq!(m.pool_free(12345, None), Err((2, 0)));
        m.pool_free(b, None).unwrap();
        assert!(m.outstanding_pool().is_empty());
        assert_eq!(tag_name(tag), "RHCA");
    }
}
