//! Mappings: a request's MDL cut into physically contiguous pieces, each routed to the device
//! (direct, bounced, through the IOMMU, or double-buffered by Verifier), the scatter/gather
//! list written, and the release and `FlushDmaBuffer` that copy data back.

use super::Hal;
use super::{QUARANTINE, VERIFIER_FILL, VERIFIER_TAG, check_guards, check_quarantine, span_pages};
use crate::bugcheck::{BugCheck, sim_rule};
use crate::machine::Config;
use crate::mem::Memory;

use crate::mem::{Kind, PAGE, Zone};

/// How a mapping's data reach the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Route {
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
    pub(super) write: bool,
    /// The buffer as the driver sees it: (virtual address, length) pieces in order.
    pub(super) pieces: Vec<(usize, usize)>,
    pub(super) length: usize,
    pub(super) route: Route,
    pub(super) iova: Option<(u64, u64)>,
    /// The elements as the device sees them: (logical address, length).
    pub(super) elements: Vec<(u64, u32)>,
}

impl Mapped {
    /// The physical ranges this mapping makes visible to the device (the HAL's record of what
    /// a device may access on a platform without remapping, see `Hal::device_visible`): its
    /// elements, which are physical addresses there; none under remapping, where the IOMMU's
    /// table is the record.
    pub(super) fn visible(&self) -> &[(u64, u32)] {
        if self.iova.is_some() {
            &[]
        } else {
            &self.elements
        }
    }
}

#[derive(Debug)]
pub(crate) struct SgMap {
    pub(super) mapped: Mapped,
    pub(super) registers: u32,
    /// Storage of a list the HAL allocated (`GetScatterGatherList`); `None` for Build. Owned here
    /// so that the list stays valid until Put, which hands it back to the HAL for reuse.
    pub(super) storage: Option<Box<[u64]>>,
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

/// The result of trying to map a request.
pub(crate) enum MapOutcome {
    /// Mapped: the list's address.
    Mapped(usize),
    /// The caller's buffer is too small (`BuildScatterGatherList`).
    BufferTooSmall,
    /// Not enough memory for bounce or verifier buffers.
    NoMemory,
}

/// The bytes a request maps: `length` bytes from `current_va`, walking the MDL chain, as
/// (virtual address, length) pieces, one per MDL, in `pieces` (cleared first; a released
/// mapping's vector, so that a mapping allocates nothing on the host for them).
pub(super) fn mdl_pieces(
    mem: &Memory,
    req: &Request,
    mut pieces: Vec<(usize, usize)>,
) -> Result<Vec<(usize, usize)>, BugCheck> {
    pieces.clear();
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
        let m = known_mdl(mem, mdl, "DMA routine given an unknown or freed MDL")?;
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
        // A page of a live region has a frame (regions and their pages come and go together):
        // one hashed look-up instead of a search of the region map.
        if mem.pfn_of(start).is_none() {
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
pub(crate) fn check_request(mem: &Memory, req: &Request) -> Result<u32, BugCheck> {
    check_request_pieces(mem, req, Vec::new()).map(|(registers, _)| registers)
}

/// As [`check_request`], also returning the pieces of the buffer to map (for
/// [`map_request_pieces`] in the same critical section: the MDL cannot change in between).
pub(crate) fn check_request_pieces(
    mem: &Memory,
    req: &Request,
    pieces: Vec<(usize, usize)>,
) -> Result<(u32, Vec<(usize, usize)>), BugCheck> {
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
    let pieces = mdl_pieces(mem, req, pieces)?;
    let regs: u64 = pieces.iter().map(|&(va, n)| span_pages(va, n)).sum();
    Ok((u32::try_from(regs).unwrap_or(u32::MAX), pieces))
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
    hal: &mut Hal,
    mem: &mut Memory,
    cfg: &Config,
    adapter: usize,
    pieces: Vec<(usize, usize)>,
    write: bool,
    mdl: usize,
) -> Result<Option<Mapped>, BugCheck> {
    let width = hal.adapters.get(&adapter).map_or(64, |a| a.width);
    let limit = if width >= 64 { u64::MAX } else { 1u64 << width };
    let length: usize = pieces.iter().map(|p| p.1).sum();

    // Physical runs of the buffer: the elements themselves when the device accesses the
    // buffer's own pages without remapping (the common case, which then allocates nothing
    // more), else only what decides the route.
    let mut runs = hal.take_elements();
    let mut reachable = true;
    for &(va, n) in &pieces {
        let mut at = va;
        while at < va + n {
            let chunk = (PAGE - (at & (PAGE - 1))).min(va + n - at);
            let pfn = mem.pfn_of(at).ok_or_else(|| {
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
            // CAST: chunk <= PAGE.
            let chunk32 = chunk as u32;
            reachable &= pa + chunk as u64 <= limit;
            match runs.last_mut() {
                Some((s, l)) if *s + u64::from(*l) == pa && l.checked_add(chunk32).is_some() => {
                    *l += chunk32;
                }
                _ => runs.push((pa, chunk32)),
            }
            at += chunk;
        }
    }

    let mut route = Route::Direct;
    let mut device_base: Option<(usize, usize)> = None; // (va of device copy, offset of data)
    if cfg.profile.verifier {
        // Verifier double-buffers every transfer: a guard page of 0x0F padding ending in the
        // tag, the data, the tag, and 0x0F padding to the end of the next page.
        let data_off = PAGE;
        let pages = (data_off + length + 8).div_ceil(PAGE) + 1;
        let zone = if width <= 32 || !mem.general_is_reachable(limit) {
            Zone::Low
        } else {
            Zone::General
        };
        let Some(region) = mem.alloc_region(pages, Kind::Hal, zone, !cfg.profile.iommu) else {
            return Ok(None);
        };
        mem.fill_va(region, VERIFIER_FILL, pages * PAGE);
        mem.copy_from_slice(region + data_off - 8, VERIFIER_TAG);
        mem.copy_from_slice(region + data_off + length, VERIFIER_TAG);
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
        let Some(region) = mem.alloc_region(pages, Kind::Hal, Zone::Low, true) else {
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
                mem.copy_va(at, src, n);
                at += n;
            }
        }
        if let Some(a) = hal.adapters.get_mut(&adapter) {
            a.counters.bytes_double_buffered += length as u64;
        }
    }

    // Elements as the device sees them.
    let mut iova = None;
    // Without remapping or a copy, the runs are the elements; otherwise one element replaces
    // them.
    if cfg.profile.iommu {
        let (first_va, pfns) = match device_base {
            Some((region, off)) => {
                let all = mem
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
                        pfns.push(mem.pfn_of(p).unwrap_or(0));
                        p += PAGE;
                    }
                }
                (pieces[0].0, pfns)
            }
        };
        let pages = pfns.len() as u64;
        let Some(start) = hal.iommu.alloc(pages) else {
            if let Route::Copy { region, .. } = route {
                mem.free_region(region);
            }
            return Ok(None);
        };
        // A memory→device mapping is read-only to the device.
        hal.iommu.map(start, &pfns, !write);
        iova = Some((start, pages));
        runs.clear();
        runs.push((
            (start << 12) | (first_va & (PAGE - 1)) as u64,
            u32::try_from(length).unwrap_or(u32::MAX),
        ));
    } else if let Some((region, off)) = device_base {
        let pa = (mem.pfn_of(region).unwrap_or(0) << 12) + off as u64;
        runs.clear();
        runs.push((pa, u32::try_from(length).unwrap_or(u32::MAX)));
    }
    let elements = runs;

    let mapped = Mapped {
        write,
        pieces,
        length,
        route,
        iova,
        elements,
    };
    for &(s, l) in mapped.visible() {
        hal.add_visible(s, u64::from(l));
    }
    Ok(Some(mapped))
}

/// Undoes a mapping whose list could not be written (the caller's buffer was too small).
pub(super) fn unmap_unused(hal: &mut Hal, mem: &mut Memory, m: &Mapped) {
    if let Route::Copy { region, .. } = m.route {
        mem.free_region(region);
    }
    for &(s, _) in m.visible() {
        hal.remove_visible(s);
    }
    if let Some((s, p)) = m.iova {
        hal.iommu.unmap(s, p);
    }
}

/// Maps a request on `adapter` (registers already reserved by the caller) and writes its list.
pub(crate) fn map_request(
    hal: &mut Hal,
    mem: &mut Memory,
    cfg: &Config,
    adapter: usize,
    req: &Request,
) -> Result<MapOutcome, BugCheck> {
    let pieces = mdl_pieces(mem, req, hal.take_pieces())?;
    map_request_pieces(hal, mem, cfg, adapter, req, pieces)
}

/// As [`map_request`], with the pieces [`check_request_pieces`] found.
pub(crate) fn map_request_pieces(
    hal: &mut Hal,
    mem: &mut Memory,
    cfg: &Config,
    adapter: usize,
    req: &Request,
    pieces: Vec<(usize, usize)>,
) -> Result<MapOutcome, BugCheck> {
    if req.v3 && req.write {
        // Version 3 mapping cleans the CPU caches before a memory→device transfer.
        for &(va, n) in &pieces {
            mem.cache_sync(va, n, true);
        }
    }
    let Some(mapped) = map_pieces(hal, mem, cfg, adapter, pieces, req.write, req.mdl)? else {
        return Ok(MapOutcome::NoMemory);
    };
    // The list: header (NumberOfElements, Reserved) then 24-byte elements.
    let need = 16 + mapped.elements.len() * 24;
    let (list, storage) = if let Some((buf, len)) = req.buffer {
        if len < need {
            unmap_unused(hal, mem, &mapped);
            return Ok(MapOutcome::BufferTooSmall);
        }
        (buf, None)
    } else {
        let mut b = hal.take_list_storage(need / 8);
        (b.as_mut_ptr() as usize, Some(b))
    };
    write_list(list, &mapped.elements);
    let registers = req.registers;
    let a = hal.adapters.get_mut(&adapter).ok_or_else(|| {
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

pub(super) fn write_list(list: usize, elements: &[(u64, u32)]) {
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
    hal: &mut Hal,
    mem: &mut Memory,
    cfg: &Config,
    adapter: usize,
    list: usize,
    write: bool,
) -> Result<(), BugCheck> {
    let a = hal.adapters.get_mut(&adapter).ok_or_else(|| {
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
    let released = release_mapped(hal, mem, cfg, &map.mapped);
    hal.recycle_list(map.mapped.elements, map.mapped.pieces, map.storage);
    released
}

/// Ends a mapping: copies device→memory data back, checks the verifier guards, unmaps.
pub(crate) fn release_mapped(
    hal: &mut Hal,
    mem: &mut Memory,
    cfg: &Config,
    m: &Mapped,
) -> Result<(), BugCheck> {
    let result = release_route(hal, mem, cfg, m);
    for &(s, _) in m.visible() {
        hal.remove_visible(s);
    }
    if let Some((s, p)) = m.iova {
        hal.iommu.unmap(s, p);
    }
    result
}

pub(super) fn release_route(
    hal: &mut Hal,
    mem: &mut Memory,
    cfg: &Config,
    map: &Mapped,
) -> Result<(), BugCheck> {
    if !map.write && map.route == Route::Direct {
        // The end of a device→memory transfer invalidates the CPU caches over the buffer
        // (FlushAdapterBuffers, PutScatterGatherList).
        for &(va, n) in &map.pieces {
            mem.cache_sync(va, n, false);
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
    // Bursts translated before this release land before it reads or refills the copy.
    mem.settle_copies();
    let check = if verifier {
        check_guards(mem, va, map.length)
    } else {
        Ok(())
    };
    if !map.write {
        sync_back(mem, map);
    }
    if verifier && cfg.profile.verifier {
        // Released double buffers are filled with 0x0F and watched: a device write after Put
        // is caught when the buffer leaves quarantine.
        let pages = mem.region_of(region).map_or(1, |r| r.1);
        mem.fill_va(region, VERIFIER_FILL, pages * PAGE);
        hal.quarantine.push_back((region, region, pages * PAGE));
        while hal.quarantine.len() > QUARANTINE {
            let q = hal.quarantine.pop_front().unwrap_or_default();
            check_quarantine(mem, q)?;
        }
    } else {
        mem.free_region(region);
    }
    check
}

/// Copies the device's copy of a device→memory mapping back to the driver's buffer.
pub(super) fn sync_back(mem: &Memory, map: &Mapped) {
    if let Route::Copy { va, .. } = map.route {
        let mut at = va;
        for &(dst, n) in &map.pieces {
            mem.copy_va(dst, at, n);
            at += n;
        }
    }
}

/// `FlushDmaBuffer`: makes the part of a live mapping that `mdl` describes consistent between
/// the driver's buffer and the device's copy, without ending the mapping.
pub(crate) fn flush_dma_buffer(
    hal: &mut Hal,
    mem: &mut Memory,
    adapter: usize,
    mdl: usize,
    read_operation: bool,
) -> Result<bool, BugCheck> {
    let m = known_mdl(mem, mdl, "FlushDmaBuffer given an unknown MDL")?;
    let va = m.StartVa as usize + m.ByteOffset as usize;
    let len = m.ByteCount as usize;
    let a = hal.adapters.get(&adapter).ok_or_else(|| {
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
            mem.cache_sync(va, len, !read_operation);
        }
        return Ok(in_mdl_buffer);
    };
    if route == Route::Direct {
        // Read: invalidate so the CPU sees what the device wrote; write: clean so the device
        // sees what the CPU wrote.
        mem.cache_sync(va, len, !read_operation);
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
            mem.copy_va(va, copy + offset, len);
        } else {
            if !write {
                return Err(BugCheck::sim(
                    sim_rule::DIRECTION_MISMATCH,
                    mdl as u64,
                    0,
                    "FlushDmaBuffer(ReadOperation = FALSE) on a device→memory mapping",
                ));
            }
            mem.copy_va(copy + offset, va, len);
        }
        if let Some(a) = hal.adapters.get_mut(&adapter) {
            a.counters.bytes_double_buffered += len as u64;
        }
    }
    Ok(true)
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
