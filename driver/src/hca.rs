//! The HCA as the driver runs it: rings in common buffers, the MAD send and receive paths, the
//! completion queue poll, quiesce — everything between the KMDF callbacks and the registers.
//!
//! [`Hca`] is the device: its registers, adapter and capabilities, and two parts that share
//! nothing but those — the MAD path (`mad`: send, receive and completion queues) and the stream
//! engines ([`stream`], [`StreamEngines`] with its own methods). `bringup` resets, identifies,
//! programs, enables, quiesces and recovers the device; `rings` holds ring memory and the
//! `rings::WorkQueue` post path both queue kinds share; [`HcaError`] is the
//! layer's one error type.
//!
//! The state lives behind the device's spin lock ([`crate::sys::SpinMutex`]); every method here
//! runs with it held, at `DISPATCH_LEVEL`, which is what the mapping routines need. No `unsafe`:
//! DMA goes through [`crate::dma`], registers through [`crate::sys::Mmio`].
//!
//! Teardown order (the field order of [`Hca`]): outstanding mappings, then the rings, then the
//! adapter (its last reference), then the register mapping. The device is quiesced or reset
//! before any of it is released.

#![forbid(unsafe_code)]

use alloc::sync::Arc;

use rhca_hw::ioctl::StatisticsOut;
use rhca_hw::regs::{self, Caps};

use crate::dma::Adapter;
use crate::sys::Mmio;

/// Milliseconds between two ticks of the watchdog ([`Hca::watchdog_tick`]).
pub const WATCHDOG_PERIOD_MS: u32 = 100;

/// Watchdog ticks a send queue may hold posted sends without completing any before it stalls.
///
/// Two seconds: a thousand times what a MAD send takes, and long enough for a device slowed
/// down (a slow fabric, a loaded host) to still make progress in.
pub const STALL_TICKS: u32 = 20;

const CQ_LOG: u32 = 8;
const SQ_LOG: u32 = 6;
const RQ_LOG: u32 = 5;
const SQ_LOG_STRIDE: u32 = 9;
const RQ_LOG_STRIDE: u32 = 6;
/// Receive buffers kept posted per QP.
pub const RECV_DEPTH: usize = 32;
/// MADs kept when no receive request is pending.
pub const BACKLOG: usize = 64;
const PAGE: usize = 4096;
/// The largest WQE stride the interface allows (`2^LOG_MAX_STRIDE`): WQEs are built on the stack.
const MAX_STRIDE: usize = 1 << regs::LOG_MAX_STRIDE;

mod bringup;
mod error;
mod mad;
mod rings;
pub mod stream;

pub use bringup::{identify, reset};
pub use error::HcaError;
use mad::MadPath;
pub use mad::{DONE_BATCH, Done};
pub use stream::StreamEngines;

/// The running HCA.
#[derive(Debug)]
pub struct Hca {
    // Field order is teardown order. Streams are released before the HCA is dropped (at D0 exit);
    // any left are dropped first, then the MAD path's mappings and rings, then the adapter.
    streams: StreamEngines,
    mad: MadPath,
    /// The MAD path's and the device's counters (the streams keep their own).
    stats: StatisticsOut,
    adapter: Adapter,
    caps: Caps,
    node_guid: u64,
    vectors: u32,
    running: bool,
    /// A queue stopped on an error (a DMA fault, a CQ overflow) or stalled: the device needs a
    /// reset, done at `PASSIVE_LEVEL` by the work item ([`Hca::recover`]).
    needs_reset: bool,
    /// What the requests in flight fail with when that reset quiesces the device:
    /// [`HcaError::Timeout`] after a stall, [`HcaError::Cancelled`] otherwise.
    reset_status: HcaError,
    regs: Arc<Mmio>,
}

const fn gone(v: u32) -> bool {
    v == regs::ALL_ONES
}

impl Hca {
    /// The capabilities read at start.
    #[must_use]
    pub const fn caps(&self) -> &Caps {
        &self.caps
    }

    /// The node GUID.
    #[must_use]
    pub const fn node_guid(&self) -> u64 {
        self.node_guid
    }

    /// The adapter.
    #[must_use]
    pub const fn adapter(&self) -> &Adapter {
        &self.adapter
    }

    /// The registers.
    #[must_use]
    pub const fn regs(&self) -> &Arc<Mmio> {
        &self.regs
    }

    /// The stream engines.
    pub const fn streams(&mut self) -> &mut StreamEngines {
        &mut self.streams
    }

    /// Whether the device takes new work: in D0, and no failed queue awaits its reset.
    #[must_use]
    pub const fn accepts_work(&self) -> bool {
        self.running && !self.needs_reset
    }

    /// Whether the device is in D0 with its queues enabled.
    #[must_use]
    pub const fn is_running(&self) -> bool {
        self.running
    }

    /// The counters `IOCTL_RHCA_STATISTICS` reports: the MAD path's and the streams'.
    #[must_use]
    pub const fn statistics(&self) -> StatisticsOut {
        let s = self.streams.stats();
        let mut out = self.stats;
        out.stream_segments = s.segments;
        out.stream_bytes = s.bytes;
        out.stream_flushes = s.flushes;
        out.stream_errors = s.errors;
        out.stream_strategy = s.strategy;
        out.hostile_cqes += s.hostile;
        out
    }
}
