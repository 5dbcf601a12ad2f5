//! Adapters and their map registers: what `IoGetDmaAdapter` granted, the requests waiting for
//! registers, version 3 transfer contexts. Depends on the mapping types, never the reverse.

use crate::fasthash::{FastMap, FastSet};
use std::collections::VecDeque;

use super::Hal;
use super::{CommonBuf, DmaCounters, Mapped, Request, SgMap};

use crate::types::{PDRIVER_CONTROL, PDRIVER_LIST_CONTROL};

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

/// One transfer inside a register file: `MapTransfer` runs from `start` on.
#[derive(Debug)]
pub(crate) struct Transfer {
    pub(super) mdl: usize,
    pub(super) start: usize,
    pub(super) next: usize,
    pub(super) write: bool,
    pub(super) runs: Vec<(Mapped, u32)>,
}

impl Transfer {
    pub(super) fn mapped_len(&self) -> usize {
        self.next - self.start
    }
}

/// Who holds a register file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Holder {
    /// The execution routine is running.
    Running,
    /// It returned `KeepObject`: channel and registers held until `FreeAdapterChannel`.
    Channel,
    /// It returned `DeallocateObjectKeepRegisters`: registers held until `FreeMapRegisters`.
    Registers,
    /// A synchronous `AllocateAdapterChannelEx` without a routine: held until
    /// `FreeAdapterObject`.
    Object,
}

/// A map register file.
#[derive(Debug)]
pub(crate) struct RegisterFile {
    pub(super) registers: u32,
    pub(super) used: u32,
    pub(crate) holder: Holder,
    pub(super) transfers: Vec<Transfer>,
}

impl RegisterFile {
    pub(super) fn mapped_runs(&self) -> usize {
        self.transfers.iter().map(|t| t.runs.len()).sum()
    }
}

/// A channel request waiting for map registers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PendingChannel {
    pub(crate) device: usize,
    pub(crate) registers: u32,
    pub(crate) routine: PDRIVER_CONTROL,
    pub(crate) context: usize,
    /// The version 3 transfer context (0 for `AllocateAdapterChannel`).
    pub(crate) transfer_context: usize,
}

#[derive(Debug)]
pub(crate) struct Adapter {
    pub(crate) version: u32,
    pub(crate) width: u32,
    pub(crate) granted: u32,
    pub(crate) pdo: usize,
    pub(crate) released: bool,
    pub(crate) common: FastMap<usize, CommonBuf>,
    pub(super) freed_common: FastSet<usize>,
    pub(crate) maps: FastMap<usize, SgMap>,
    pub(crate) registers_in_use: u32,
    pub(crate) waiting: VecDeque<Pending>,
    pub(crate) counters: DmaCounters,
    /// Map register files of `AllocateAdapterChannel`, by `MapRegisterBase`.
    pub(crate) files: FastMap<usize, RegisterFile>,
    pub(crate) freed_files: FastSet<usize>,
    /// An adapter channel is allocated (from the allocation until the execution routine
    /// returns, and after it while it returned `KeepObject`).
    pub(crate) channel: bool,
    /// A channel request waiting for map registers.
    pub(crate) waiting_channel: Option<PendingChannel>,
    /// Version 3 transfer contexts, by address.
    pub(crate) contexts: FastMap<usize, TransferContext>,
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
            common: FastMap::default(),
            freed_common: FastSet::default(),
            maps: FastMap::default(),
            registers_in_use: 0,
            waiting: VecDeque::new(),
            counters: DmaCounters::default(),
            files: FastMap::default(),
            freed_files: FastSet::default(),
            channel: false,
            waiting_channel: None,
            contexts: FastMap::default(),
            held_objects: 0,
        }
    }

    /// Map registers not held by a live mapping.
    pub(crate) const fn free_registers(&self) -> u32 {
        self.granted.saturating_sub(self.registers_in_use)
    }
}

/// Reserves registers for a request, or tells the caller to queue it.
pub(crate) fn reserve_registers(hal: &mut Hal, adapter: usize, registers: u32) -> bool {
    let Some(a) = hal.adapters.get_mut(&adapter) else {
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
pub(crate) fn dequeue_ready(hal: &mut Hal, adapter: usize) -> Vec<Pending> {
    let mut out = Vec::new();
    if let Some(a) = hal.adapters.get_mut(&adapter) {
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
