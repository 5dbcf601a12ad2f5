//! Packet-based bus-master DMA: `AllocateAdapterChannel`, `MapTransfer`, `FlushAdapterBuffers`,
//! `FreeMapRegisters` and `FreeAdapterChannel` (windows-dma.md §2.4, §10 rules 15–24).
//!
//! An allocation reserves a *map register file* (identified by the `MapRegisterBase` handed to
//! the execution routine). Within it a driver maps a transfer with one or more `MapTransfer`
//! calls that continue each other (one per scatter/gather element), then ends it with one
//! `FlushAdapterBuffers` at the transfer's initial `CurrentVa`. Driver Verifier's checks:
//! mapping twice (0x1D), outside the MDL (0x1B), more registers than allocated (0x0C, 0x15),
//! starting a new transfer without flushing the last (0x0D), flushing what was not mapped
//! (0x16, 0x20) or more than was mapped (0x00/1), freeing registers still mapped (0x10), double
//! frees (0x04, 0x05), a second channel (0x0B).

use super::{Adapter, Hal, Holder, PendingChannel, RegisterFile, Transfer};
use super::{map_pieces, release_mapped, span_pages};
use crate::bugcheck::{BugCheck, sim_rule};
use crate::machine::Config;
use crate::mem::Memory;

use crate::mem::PAGE;
use crate::types::{_IO_ALLOCATION_ACTION, IO_ALLOCATION_ACTION};

/// What `AllocateAdapterChannel` decided.
pub(crate) enum Channel {
    /// Run the execution routine now with this `MapRegisterBase`.
    Run(usize),
    /// Queued until registers are free.
    Queued,
    /// More registers than granted.
    TooMany,
}

fn adapter_mut(hal: &mut Hal, adapter: usize) -> Result<&mut Adapter, BugCheck> {
    hal.adapters
        .get_mut(&adapter)
        .ok_or_else(|| BugCheck::dma(0x19, 0, 0, 0, "unknown DMA adapter", "windows-dma.md §5.2"))
}

/// Creates a register file of `registers`, held by a running execution routine.
fn new_file(hal: &mut Hal, adapter: usize, registers: u32) -> Result<usize, BugCheck> {
    let a = adapter_mut(hal, adapter)?;
    a.counters.adapter_channels_allocated += 1;
    a.counters.map_registers_allocated += u64::from(registers);
    a.channel = true;
    // MapRegisterBase is opaque to drivers: a kernel-looking token the driver never dereferences.
    let base = 0xFFFF_A000_0000_0000usize
        + ((a.counters.adapter_channels_allocated as usize) << 12)
        + (adapter & 0xFFF);
    a.files.insert(
        base,
        RegisterFile {
            registers,
            used: 0,
            holder: Holder::Running,
            transfers: Vec::new(),
        },
    );
    Ok(base)
}

/// `AllocateAdapterChannel(Ex)` after the adapter and IRQL checks; `sync` never queues.
pub(crate) fn allocate_channel(
    hal: &mut Hal,
    cfg: &Config,
    adapter: usize,
    request: PendingChannel,
    sync: bool,
) -> Result<Channel, BugCheck> {
    let a = adapter_mut(hal, adapter)?;
    if request.registers > a.granted {
        if cfg.profile.verifier {
            return Err(BugCheck::dma(
                0x15,
                u64::from(request.registers),
                u64::from(a.granted),
                0,
                "allocated more map registers than IoGetDmaAdapter granted",
                "windows-dma.md §5.2, §10 rule 15",
            ));
        }
        return Ok(Channel::TooMany);
    }
    if a.channel || a.waiting_channel.is_some() {
        return Err(BugCheck::dma(
            0x0B,
            2,
            adapter as u64,
            0,
            "a second adapter channel while one is allocated or queued (only one per adapter at a time)",
            "windows-dma.md §2.4, §10 rule 16",
        ));
    }
    if a.waiting.is_empty() && a.free_registers() >= request.registers {
        a.registers_in_use += request.registers;
        return Ok(Channel::Run(new_file(hal, adapter, request.registers)?));
    }
    if sync {
        return Ok(Channel::TooMany);
    }
    a.waiting_channel = Some(request);
    a.counters.requests_queued += 1;
    Ok(Channel::Queued)
}

/// Takes a waiting channel request if its registers are now free; returns its file.
pub(crate) fn dequeue_channel(
    hal: &mut Hal,
    adapter: usize,
) -> Result<Option<(PendingChannel, usize)>, BugCheck> {
    let a = adapter_mut(hal, adapter)?;
    let Some(p) = a.waiting_channel else {
        return Ok(None);
    };
    if a.free_registers() < p.registers {
        return Ok(None);
    }
    a.waiting_channel = None;
    a.registers_in_use += p.registers;
    let base = new_file(hal, adapter, p.registers)?;
    Ok(Some((p, base)))
}

/// `FreeAdapterObject` for a channel held by a routine-less `AllocateAdapterChannelEx`: applies
/// `action` as if an execution routine had returned it. `Ok(false)` when no such channel exists.
pub(crate) fn free_object(
    hal: &mut Hal,
    adapter: usize,
    action: IO_ALLOCATION_ACTION,
) -> Result<bool, BugCheck> {
    let a = adapter_mut(hal, adapter)?;
    let Some((&base, _)) = a.files.iter().find(|(_, f)| f.holder == Holder::Object) else {
        return Ok(false);
    };
    after_execution(hal, adapter, base, action)?;
    Ok(true)
}

/// Marks a routine-less synchronous allocation's file as held by the caller.
pub(crate) fn hold_object(hal: &mut Hal, adapter: usize, base: usize) -> Result<(), BugCheck> {
    if let Some(f) = adapter_mut(hal, adapter)?.files.get_mut(&base) {
        f.holder = Holder::Object;
    }
    Ok(())
}

/// Cancels a queued `AllocateAdapterChannelEx` backed by `transfer_context`.
pub(crate) fn cancel_channel(
    hal: &mut Hal,
    adapter: usize,
    transfer_context: usize,
) -> Result<bool, BugCheck> {
    let a = adapter_mut(hal, adapter)?;
    if transfer_context != 0
        && a.waiting_channel
            .is_some_and(|p| p.transfer_context == transfer_context)
    {
        a.waiting_channel = None;
        return Ok(true);
    }
    Ok(false)
}

/// Applies the execution routine's `IO_ALLOCATION_ACTION`.
pub(crate) fn after_execution(
    hal: &mut Hal,
    adapter: usize,
    base: usize,
    action: IO_ALLOCATION_ACTION,
) -> Result<(), BugCheck> {
    let a = adapter_mut(hal, adapter)?;
    match action {
        _IO_ALLOCATION_ACTION::KeepObject => {
            if let Some(f) = a.files.get_mut(&base) {
                f.holder = Holder::Channel;
            }
            Ok(())
        }
        _IO_ALLOCATION_ACTION::DeallocateObjectKeepRegisters => {
            a.channel = false;
            a.counters.adapter_channels_freed += 1;
            if let Some(f) = a.files.get_mut(&base) {
                f.holder = Holder::Registers;
            }
            Ok(())
        }
        _IO_ALLOCATION_ACTION::DeallocateObject => {
            a.channel = false;
            a.counters.adapter_channels_freed += 1;
            release_file(
                hal,
                adapter,
                base,
                "the execution routine returned DeallocateObject",
            )
        }
        other => Err(BugCheck::sim(
            sim_rule::BAD_ALLOCATION_ACTION,
            other.cast_unsigned().into(),
            base as u64,
            "execution routine returned a value that is not an IO_ALLOCATION_ACTION",
        )),
    }
}

/// Frees a register file: no transfer may still be mapped (0x10).
fn release_file(
    hal: &mut Hal,
    adapter: usize,
    base: usize,
    why: &'static str,
) -> Result<(), BugCheck> {
    let a = adapter_mut(hal, adapter)?;
    let Some(f) = a.files.get(&base) else {
        return Ok(());
    };
    let mapped = f.mapped_runs();
    if mapped > 0 {
        let _ = why;
        return Err(BugCheck::dma(
            0x10,
            mapped as u64,
            base as u64,
            0,
            "freed map registers while some are still mapped (FlushAdapterBuffers first)",
            "windows-dma.md §5.2, §10 rule 19",
        ));
    }
    let f = a.files.remove(&base).expect("present");
    a.freed_files.insert(base);
    a.registers_in_use = a.registers_in_use.saturating_sub(f.registers);
    a.counters.map_registers_freed += u64::from(f.registers);
    Ok(())
}

/// `FreeMapRegisters`.
pub(crate) fn free_map_registers(
    hal: &mut Hal,
    adapter: usize,
    base: usize,
    count: u32,
) -> Result<(), BugCheck> {
    let a = adapter_mut(hal, adapter)?;
    match a.files.get(&base) {
        Some(f) if f.holder == Holder::Registers => {
            if count > f.registers {
                return Err(BugCheck::dma(
                    0x05,
                    u64::from(count - f.registers),
                    0,
                    0,
                    "freed too many map registers",
                    "windows-dma.md §5.2 code 0x05, §10 rule 18",
                ));
            }
            if count < f.registers {
                return Err(BugCheck::sim(
                    sim_rule::FREE_MAP_REGISTERS_COUNT,
                    u64::from(count),
                    u64::from(f.registers),
                    "FreeMapRegisters with fewer registers than were allocated",
                ));
            }
            release_file(hal, adapter, base, "FreeMapRegisters")
        }
        _ => Err(BugCheck::dma(
            0x05,
            1,
            base as u64,
            u64::from(count),
            "freed map registers that are not held (double free, or registers kept with KeepObject)",
            "windows-dma.md §5.2, §10 rule 18",
        )),
    }
}

/// `FreeAdapterChannel`.
pub(crate) fn free_adapter_channel(hal: &mut Hal, adapter: usize) -> Result<(), BugCheck> {
    let a = adapter_mut(hal, adapter)?;
    let Some((&base, _)) = a.files.iter().find(|(_, f)| f.holder == Holder::Channel) else {
        return Err(BugCheck::dma(
            0x04,
            1,
            adapter as u64,
            0,
            "freed an adapter channel that is not held (double free, or the routine did not return KeepObject)",
            "windows-dma.md §5.2, §10 rule 18",
        ));
    };
    release_file(hal, adapter, base, "FreeAdapterChannel")?;
    let a = adapter_mut(hal, adapter)?;
    a.channel = false;
    a.counters.adapter_channels_freed += 1;
    Ok(())
}

/// `MapTransfer` on a scatter/gather adapter: maps one run from `current_va`; returns
/// (logical address, bytes mapped).
#[expect(
    clippy::too_many_arguments,
    reason = "mirrors MapTransfer's parameters"
)]
#[expect(
    clippy::too_many_lines,
    reason = "one check per Driver Verifier rule, in the order Windows applies them"
)]
pub(crate) fn map_transfer(
    hal: &mut Hal,
    mem: &mut Memory,
    cfg: &Config,
    adapter: usize,
    mdl: usize,
    base: usize,
    current_va: usize,
    length: usize,
    write: bool,
    single: bool,
) -> Result<(u64, usize), BugCheck> {
    if length == 0 {
        return Err(BugCheck::dma(
            0x21,
            current_va as u64,
            mdl as u64,
            0,
            "mapped a zero-length buffer",
            "windows-dma.md §5.2, §10 rule 20",
        ));
    }
    let m = super::known_mdl(mem, mdl, "MapTransfer given an unknown or freed MDL")?;
    let mdl_va = m.StartVa as usize + m.ByteOffset as usize;
    let mdl_end = mdl_va + m.ByteCount as usize;
    // The same codes as the scatter/gather routines give the same mistakes (E6/0x1F with
    // parameter 2 = 1 before the MDL, 2 after it, 3 a length past its end).
    let outside = if current_va < mdl_va {
        Some((1, "MapTransfer CurrentVa lies before the MDL"))
    } else if current_va >= mdl_end {
        Some((2, "MapTransfer CurrentVa lies after the MDL"))
    } else if current_va + length > mdl_end {
        Some((3, "MapTransfer length runs past the end of the MDL"))
    } else {
        None
    };
    if let Some((which, rule)) = outside {
        return Err(BugCheck::dma(
            0x1F,
            which,
            current_va as u64,
            mdl as u64,
            rule,
            "windows-dma.md §5.2, §10 rule 20",
        ));
    }
    if i32::from(m.MdlFlags)
        & i32::from(
            crate::typed::MDL_PAGES_LOCKED
                | crate::typed::MDL_SOURCE_IS_NONPAGED_POOL
                | crate::typed::MDL_PARTIAL,
        )
        == 0
    {
        return Err(BugCheck::dma(
            0x0E,
            mdl as u64,
            0,
            0,
            "DMA on a buffer whose pages are not locked",
            "windows-dma.md §5.2, §10 rule 22",
        ));
    }
    let width = adapter_mut(hal, adapter)?.width;
    let a = adapter_mut(hal, adapter)?;
    let Some(file) = a.files.get_mut(&base) else {
        return Err(BugCheck::sim(
            sim_rule::BAD_MAP_REGISTER_BASE,
            base as u64,
            current_va as u64,
            "MapTransfer with a MapRegisterBase that is not a live allocation of this adapter",
        ));
    };
    // A call either continues the last transfer or starts a new one; a new one may not overlap
    // a mapped range (0x1D), and the previous one must have been flushed (0x0D).
    // MapTransferEx maps one transfer per call: each must be flushed before the next.
    let continues = !single
        && file
            .transfers
            .last()
            .is_some_and(|t| t.mdl == mdl && t.next == current_va && t.write == write);
    if !continues {
        for t in &file.transfers {
            if t.mdl == mdl && current_va < t.next && current_va + length > t.start {
                return Err(BugCheck::dma(
                    0x1D,
                    current_va as u64,
                    (current_va + length) as u64,
                    t.start as u64,
                    "mapping a range that is already mapped",
                    "windows-dma.md §5.2, §10 rule 20",
                ));
            }
        }
        if let Some(t) = file.transfers.last() {
            return Err(BugCheck::dma(
                0x0D,
                t.mapped_len() as u64,
                u64::from(file.registers) * PAGE as u64,
                t.start as u64,
                "started a new transfer without flushing the adapter buffers of the last one",
                "windows-dma.md §2.4, §10 rule 24",
            ));
        }
    }
    // As many bytes as the file's free registers cover.
    let free_regs = file.registers - file.used;
    let room = (free_regs as usize * PAGE).saturating_sub(current_va & (PAGE - 1));
    if room == 0 {
        return Err(BugCheck::dma(
            0x0C,
            span_pages(current_va, length),
            u64::from(file.registers),
            0,
            "more map registers needed than the allocation holds",
            "windows-dma.md §5.2, §2.4",
        ));
    }
    let mut n = length.min(room);
    // Without copying or remapping the device sees physical addresses: one run is one
    // physically contiguous stretch (MapTransfer shortens *Length to it).
    if !cfg.profile.verifier && !cfg.profile.iommu {
        let limit = if width >= 64 { u64::MAX } else { 1u64 << width };
        let mut at = current_va;
        let mut prev: Option<u64> = None;
        let mut reach = true;
        while at < current_va + n {
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
            if prev.is_some_and(|p| p + 1 != pfn) {
                break;
            }
            reach &= (pfn + 1) << 12 <= limit;
            prev = Some(pfn);
            at = (at & !(PAGE - 1)) + PAGE;
        }
        if reach {
            n = n.min(at - current_va);
        }
    }
    let regs = u32::try_from(span_pages(current_va, n)).unwrap_or(u32::MAX);
    let Some(mapped) = map_pieces(hal, mem, cfg, adapter, vec![(current_va, n)], write, mdl)?
    else {
        return Err(BugCheck::dma(
            0x00,
            2,
            u64::from(regs),
            0,
            "out of contiguous map registers (bounce memory exhausted)",
            "windows-dma.md §5.2",
        ));
    };
    let logical = mapped.elements[0].0;
    let a = adapter_mut(hal, adapter)?;
    let file = a.files.get_mut(&base).expect("checked above");
    file.used += regs;
    if continues {
        let t = file.transfers.last_mut().expect("continues");
        t.next += n;
        t.runs.push((mapped, regs));
    } else {
        file.transfers.push(Transfer {
            mdl,
            start: current_va,
            next: current_va + n,
            write,
            runs: vec![(mapped, regs)],
        });
    }
    Ok((logical, n))
}

/// `FlushAdapterBuffers`: ends the transfer that began at `current_va`.
#[expect(
    clippy::too_many_arguments,
    reason = "mirrors FlushAdapterBuffers' parameters"
)]
pub(crate) fn flush_adapter_buffers(
    hal: &mut Hal,
    mem: &mut Memory,
    cfg: &Config,
    adapter: usize,
    mdl: usize,
    base: usize,
    current_va: usize,
    length: usize,
    write: bool,
) -> Result<(), BugCheck> {
    let a = adapter_mut(hal, adapter)?;
    let Some(file) = a.files.get_mut(&base) else {
        return Err(BugCheck::dma(
            0x20,
            base as u64,
            current_va as u64,
            mdl as u64,
            "flushed map registers that have not been mapped (no such MapRegisterBase)",
            "windows-dma.md §5.2, §10 rule 23",
        ));
    };
    if file.transfers.is_empty() {
        return Err(BugCheck::dma(
            0x20,
            base as u64,
            current_va as u64,
            mdl as u64,
            "flushed map registers that have not been mapped",
            "windows-dma.md §5.2, §10 rule 23",
        ));
    }
    let Some(i) = file
        .transfers
        .iter()
        .position(|t| t.mdl == mdl && t.start == current_va)
    else {
        return Err(BugCheck::dma(
            0x16,
            current_va as u64,
            mdl as u64,
            0,
            "flushed a buffer that is not mapped (CurrentVa must be the transfer's initial CurrentVa)",
            "windows-dma.md §2.4, §10 rule 23",
        ));
    };
    let t = &file.transfers[i];
    if length > t.mapped_len() {
        return Err(BugCheck::dma(
            0x00,
            1,
            t.mapped_len() as u64,
            length as u64,
            "flushed more bytes than the transfer mapped",
            "windows-dma.md §5.2, §10 rule 23",
        ));
    }
    if t.write != write {
        return Err(BugCheck::sim(
            sim_rule::DIRECTION_MISMATCH,
            current_va as u64,
            u64::from(write),
            "FlushAdapterBuffers with a WriteToDevice different from the mapping's",
        ));
    }
    let t = file.transfers.remove(i);
    let regs: u32 = t.runs.iter().map(|r| r.1).sum();
    file.used -= regs;
    for (m, _) in &t.runs {
        release_mapped(hal, mem, cfg, m)?;
    }
    Ok(())
}
