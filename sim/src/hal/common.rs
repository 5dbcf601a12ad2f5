//! Common buffers: allocation (contiguous within the adapter's reach, guarded by Driver
//! Verifier's padding under `verifier`), release with the guard checks, and common buffers made
//! from an MDL (`CreateCommonBufferFromMdl`).

use super::Hal;
use super::{bytes_to_pages, known_mdl};
use crate::bugcheck::{BugCheck, sim_rule};
use crate::machine::Config;
use crate::mem::Memory;

use crate::mem::{Kind, PAGE, Zone};

#[derive(Debug, Clone, Copy)]
pub(crate) struct CommonBuf {
    pub(crate) len: u32,
    pub(crate) logical: u64,
    /// `CacheEnabled` of the allocation; `None` for a buffer made from an MDL.
    pub(crate) cache: Option<u8>,
    /// The HAL's own region, freed with the buffer; `None` for a buffer made from an MDL (the
    /// driver owns those pages).
    pub(super) region: Option<usize>,
    /// The MDL a `CreateCommonBufferFromMdl` buffer was made from.
    pub(crate) mdl: Option<usize>,
    pub(super) iova: Option<(u64, u64)>,
    /// Driver Verifier's guard: a page of padding before the buffer and the bytes from its
    /// length to the end of a page after its last one, filled with [`PADDING`]; checked when
    /// the buffer is freed and when its adapter is released.
    pub(super) guarded: bool,
}

/// The padding byte Driver Verifier's DMA checking puts around DMA buffers (E6/0x0F).
pub(crate) const PADDING: u8 = 0x0F;

impl CommonBuf {
    /// The guard areas of a buffer at `va`: (start, length, E6/0x0F parameter 2).
    pub(super) fn guards(&self, va: usize) -> [(usize, usize, u64); 2] {
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

/// Allocates a common buffer for `adapter`: physically contiguous (and below the adapter's
/// reach) without remapping, scattered behind a contiguous IOVA range with it.
pub(crate) fn alloc_common(
    hal: &mut Hal,
    mem: &mut Memory,
    cfg: &Config,
    adapter: usize,
    len: u32,
    max_address: Option<u64>,
    cache: u8,
) -> Option<(usize, u64)> {
    let width = hal.adapters.get(&adapter)?.width;
    let guarded = cfg.profile.verifier;
    let pages = bytes_to_pages(u64::from(len)).max(1);
    // Under Driver Verifier a guard page flanks the buffer on each side (the allocation
    // behind the buffer is `total` pages; the buffer starts one page in).
    let total = pages + if guarded { 2 } else { 0 };
    let limit = max_address
        .map_or(u64::MAX, |m| m.saturating_add(1))
        .min(if width >= 64 { u64::MAX } else { 1u64 << width });
    let (region, logical, iova) = if cfg.profile.iommu {
        let region = mem.alloc_region(total as usize, Kind::CommonBuffer, Zone::General, false)?;
        let pfns = mem.region_pfns(region)?.to_vec();
        let Some(start) = hal.iommu.alloc(total) else {
            mem.free_region(region);
            return None;
        };
        hal.iommu.map(start, &pfns, true);
        (region, start << 12, Some((start, total)))
    } else {
        // Without remapping the device sees physical addresses: the buffer must be contiguous
        // and entirely below the adapter's limit.
        let zone = if mem.general_is_reachable(limit) {
            Zone::General
        } else {
            Zone::Low
        };
        let region = mem.alloc_region(total as usize, Kind::CommonBuffer, zone, true)?;
        let pa = mem.pfn_of(region)? << 12;
        if pa + total * PAGE as u64 > limit {
            mem.free_region(region);
            return None;
        }
        (region, pa, None)
    };
    if !cfg.profile.iommu {
        hal.add_visible(logical, total * PAGE as u64);
    }
    let skip = if guarded { PAGE } else { 0 };
    let (va, logical) = (region + skip, logical + skip as u64);
    // Common buffer contents are undefined; a pattern makes a driver that forgets to
    // initialise a ring fail visibly.
    mem.fill_va(va, 0xCB, pages as usize * PAGE);
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
            mem.fill_va(start, PADDING, n);
        }
    }
    let a = hal.adapters.get_mut(&adapter)?;
    a.common.insert(va, cb);
    a.freed_common.remove(&va);
    a.counters.common_buffers_allocated += 1;
    Some((va, logical))
}

/// Frees a common buffer; the arguments must match the allocation exactly.
#[expect(
    clippy::too_many_arguments,
    reason = "FreeCommonBuffer's own arguments, each checked against the allocation, and the HAL and memory it changes"
)]
pub(crate) fn free_common(
    hal: &mut Hal,
    mem: &mut Memory,
    cfg: &Config,
    adapter: usize,
    len: u32,
    logical: u64,
    va: usize,
    cache: u8,
) -> Result<(), BugCheck> {
    let a = hal.adapters.get_mut(&adapter).ok_or_else(|| {
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
    cb.check_guards(mem, va)?;
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
        hal.iommu.unmap(start, pages);
    } else if !cfg.profile.iommu {
        // The visible range starts at the allocation, a guard page before a guarded buffer.
        let guard = if cb.guarded { PAGE as u64 } else { 0 };
        hal.remove_visible(cb.logical - guard);
    }
    if let Some(region) = cb.region {
        mem.free_region(region);
    }
    Ok(())
}

/// `CreateCommonBufferFromMdl`: makes the pages an MDL describes a common buffer (one logical
/// range), or says why not (`Err(status)`).
pub(crate) fn common_from_mdl(
    hal: &mut Hal,
    mem: &Memory,
    cfg: &Config,
    adapter: usize,
    mdl: usize,
) -> Result<Result<(usize, u64), crate::NTSTATUS>, BugCheck> {
    use crate::{STATUS_INSUFFICIENT_RESOURCES, STATUS_INVALID_PARAMETER};
    let m = known_mdl(
        mem,
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
        let Some(pfn) = mem.pfn_of(va + i * PAGE) else {
            return Ok(Err(STATUS_INVALID_PARAMETER));
        };
        pfns.push(pfn);
    }
    let width = hal.adapters.get(&adapter).map_or(64, |a| a.width);
    let (logical, iova) = if cfg.profile.iommu {
        let Some(start) = hal.iommu.alloc(pfns.len() as u64) else {
            return Ok(Err(STATUS_INSUFFICIENT_RESOURCES));
        };
        hal.iommu.map(start, &pfns, true);
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
        hal.add_visible(pa, len as u64);
        (pa, None)
    };
    let a = hal.adapters.get_mut(&adapter).ok_or_else(|| {
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
pub(crate) fn mdl_backs_common_buffer(hal: &Hal, mdl: usize) -> bool {
    hal.adapters
        .values()
        .any(|a| a.common.values().any(|c| c.mdl == Some(mdl)))
}
