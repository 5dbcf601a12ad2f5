//! Driver Verifier's DMA checks on buffers: the `DmaVrfy0` tags and 0x0F padding around
//! double buffers checked at release, and the quarantine of released buffers checked before
//! reuse.

use super::Hal;
use super::{VERIFIER_FILL, VERIFIER_TAG};
use crate::bugcheck::BugCheck;
use crate::mem::Memory;

use crate::mem::PAGE;

pub(super) fn check_guards(mem: &Memory, data: usize, length: usize) -> Result<(), BugCheck> {
    let mut tag = [0u8; 8];
    mem.read_va(data - 8, &mut tag);
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
    mem.read_va(data + length, &mut tag);
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
    mem.read_va(region, &mut pad);
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
    mem.read_va(after, &mut pad);
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

pub(super) fn check_quarantine(
    mem: &mut Memory,
    (region, va, len): (usize, usize, usize),
) -> Result<(), BugCheck> {
    let mut buf = vec![0u8; len];
    mem.read_va(va, &mut buf);
    let bad = buf.iter().position(|&b| b != VERIFIER_FILL);
    mem.free_region(region);
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
pub(crate) fn drain_quarantine(hal: &mut Hal, mem: &mut Memory) -> Result<(), BugCheck> {
    while let Some(q) = hal.quarantine.pop_front() {
        check_quarantine(mem, q)?;
    }
    Ok(())
}
