//! Bug checks: how the simulated machine stops when the driver breaks a rule.
//!
//! A violation produces a [`BugCheck`] `{ code, params }` exactly as `KeBugCheckEx` would report
//! it (0xE6 `DRIVER_VERIFIER_DMA_VIOLATION` with the documented parameter 1 for DMA rules), plus
//! the rule broken and the reference section that states it.
//!
//! How the machine stops depends on where the violation happens:
//! - on a simulated CPU ([`crate::Machine::run`]), the CPU **halts**: the bug check is recorded,
//!   the caller of `run` receives it as `Err(BugCheck)`, and the CPU thread never returns into
//!   driver code again (it parks forever). This is necessary because driver callbacks and DMA
//!   routines are `extern "C"` functions, through which a Rust panic cannot unwind;
//! - anywhere else (a test calling `ntddk` functions directly on its own thread), the bug check
//!   is a panic whose payload is the [`BugCheck`], which the test can catch with
//!   `std::panic::catch_unwind`.
//!
//! In both cases the machine records the bug check and refuses further work.

use std::fmt;

/// `DRIVER_VERIFIER_DMA_VIOLATION`.
pub const DRIVER_VERIFIER_DMA_VIOLATION: u32 = 0xE6;
/// `IRQL_NOT_LESS_OR_EQUAL`.
pub const IRQL_NOT_LESS_OR_EQUAL: u32 = 0x0A;
/// `DRIVER_VERIFIER_DETECTED_VIOLATION`.
pub const DRIVER_VERIFIER_DETECTED_VIOLATION: u32 = 0xC4;
/// `BAD_POOL_CALLER`.
pub const BAD_POOL_CALLER: u32 = 0xC2;

/// First parameter of 0xC4 for rules the simulator enforces that have no public Windows
/// parameter value (documented in `docs/sim-fidelity.md`). Values start at 0x5100.
pub mod sim_rule {
    /// An MDL routine was given an address the machine does not map.
    pub const BAD_ADDRESS: u64 = 0x5100;
    /// `MmBuildMdlForNonPagedPool` on memory that is not non-paged system memory.
    pub const NOT_NONPAGED: u64 = 0x5101;
    /// `IoFreeMdl` on an MDL whose pages are still locked.
    pub const FREE_LOCKED_MDL: u64 = 0x5102;
    /// An unknown or already freed MDL.
    pub const BAD_MDL: u64 = 0x5103;
    /// `IoBuildPartialMdl` outside the source MDL.
    pub const PARTIAL_OUTSIDE_SOURCE: u64 = 0x5104;
    /// `MmUnmapIoSpace` of an address or size that was not mapped.
    pub const BAD_IO_SPACE_UNMAP: u64 = 0x5105;
    /// A register access outside any mapped BAR.
    pub const BAD_REGISTER_ACCESS: u64 = 0x5106;
    /// Put/Flush of a scatter/gather list with the opposite direction.
    pub const DIRECTION_MISMATCH: u64 = 0x5107;
    /// `KeReleaseSpinLock` of a lock that is not held, or at the wrong IRQL.
    pub const SPIN_LOCK_MISUSE: u64 = 0x5108;
    /// `MmProbeAndLockPages` on an MDL that is already locked, or `MmUnlockPages` on one that is not.
    pub const LOCK_STATE: u64 = 0x5109;
    /// A DMA routine was called with an MDL the routine cannot use (not a single buffer).
    pub const BAD_DMA_MDL: u64 = 0x510A;
    /// An MDL was unlocked or freed while a `CreateCommonBufferFromMdl` buffer still uses it.
    pub const MDL_BACKS_COMMON_BUFFER: u64 = 0x510B;
    /// `FreeCommonBuffer` whose length, logical address or `CacheEnabled` differ from the
    /// allocation's (Windows documents no code for it).
    pub const FREE_COMMON_MISMATCH: u64 = 0x510C;
    /// An execution routine returned a value that is not an `IO_ALLOCATION_ACTION`.
    pub const BAD_ALLOCATION_ACTION: u64 = 0x510D;
    /// `FreeMapRegisters` with fewer registers than were allocated (more is E6/0x05).
    pub const FREE_MAP_REGISTERS_COUNT: u64 = 0x510E;
    /// `MapTransfer` with a `MapRegisterBase` that is no live allocation of the adapter.
    pub const BAD_MAP_REGISTER_BASE: u64 = 0x510F;
    /// The driver unloaded with a DMA adapter it never released (`PutDmaAdapter`): Driver
    /// Verifier's DMA checking detects leaked adapters, with no published parameter value.
    pub const ADAPTER_NOT_RELEASED_AT_UNLOAD: u64 = 0x5110;
    /// The driver unloaded with a register mapping (`MmMapIoSpaceEx`) it never unmapped.
    pub const IO_SPACE_MAPPED_AT_UNLOAD: u64 = 0x5111;
}

/// Driver Verifier's pool tracking at unload: parameter 1 of 0xC4.
///
/// For a driver that unloads without freeing its pool allocations (MDLs from `IoAllocateMdl`
/// included); parameter 4 is the number of allocations not freed.
pub const POOL_LEAKED_AT_UNLOAD: u64 = 0x62;

/// A stop of the simulated machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BugCheck {
    /// The bug check code (0xE6 for Driver Verifier DMA violations).
    pub code: u32,
    /// The four bug check parameters.
    pub params: [u64; 4],
    /// The rule broken, in words.
    pub rule: &'static str,
    /// Where the rule is stated (a section of `../shared/reference/windows-dma.md`, or
    /// `docs/sim-fidelity.md` for simulator rules).
    pub source: &'static str,
}

impl BugCheck {
    /// A bug check.
    #[must_use]
    pub const fn new(
        code: u32,
        params: [u64; 4],
        rule: &'static str,
        source: &'static str,
    ) -> Self {
        Self {
            code,
            params,
            rule,
            source,
        }
    }

    /// A 0xE6 `DRIVER_VERIFIER_DMA_VIOLATION` with parameter 1 `p1`.
    #[must_use]
    pub const fn dma(
        p1: u64,
        p2: u64,
        p3: u64,
        p4: u64,
        rule: &'static str,
        source: &'static str,
    ) -> Self {
        Self::new(
            DRIVER_VERIFIER_DMA_VIOLATION,
            [p1, p2, p3, p4],
            rule,
            source,
        )
    }

    /// A 0xC4 with a simulator-only parameter 1 from [`sim_rule`].
    #[must_use]
    pub const fn sim(p1: u64, p2: u64, p3: u64, rule: &'static str) -> Self {
        Self::new(
            DRIVER_VERIFIER_DETECTED_VIOLATION,
            [p1, p2, p3, 0],
            rule,
            "docs/sim-fidelity.md",
        )
    }

    /// Whether this is a 0xE6 with parameter 1 `p1`.
    #[must_use]
    pub const fn is_dma(&self, p1: u64) -> bool {
        self.code == DRIVER_VERIFIER_DMA_VIOLATION && self.params[0] == p1
    }

    /// The bug check's name.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self.code {
            DRIVER_VERIFIER_DMA_VIOLATION => "DRIVER_VERIFIER_DMA_VIOLATION",
            IRQL_NOT_LESS_OR_EQUAL => "IRQL_NOT_LESS_OR_EQUAL",
            DRIVER_VERIFIER_DETECTED_VIOLATION => "DRIVER_VERIFIER_DETECTED_VIOLATION",
            BAD_POOL_CALLER => "BAD_POOL_CALLER",
            _ => "BUGCHECK",
        }
    }
}

impl fmt::Display for BugCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "*** STOP: 0x{:08X} ({:#x}, {:#x}, {:#x}, {:#x}) {}: {} [{}]",
            self.code,
            self.params[0],
            self.params[1],
            self.params[2],
            self.params[3],
            self.name(),
            self.rule,
            self.source
        )
    }
}

impl std::error::Error for BugCheck {}

/// Extracts the [`BugCheck`] from a caught panic payload, if it is one.
#[must_use]
pub fn from_panic(payload: &(dyn std::any::Any + Send)) -> Option<BugCheck> {
    payload.downcast_ref::<BugCheck>().copied()
}

/// A breakpoint in driver code (`DbgBreakPoint`, or wdk's `dbg_break`, an `int 3`).
///
/// The simulated machine has no kernel debugger, so it stops as Windows does without one:
/// `KMODE_EXCEPTION_NOT_HANDLED` (0x1E) with `STATUS_BREAKPOINT` (0x80000003). Not in
/// `ntddk`: wdk-sys's bindings do not declare `DbgBreakPoint`.
///
/// # Panics
/// Always: this is how the machine stops (see [`BugCheck`]).
pub fn debugger_break() -> ! {
    crate::machine::halt(BugCheck::new(
        crate::wdf::validate::KMODE_EXCEPTION_NOT_HANDLED,
        [crate::wdf::validate::STATUS_BREAKPOINT_CODE, 0, 0, 0],
        "a breakpoint with no kernel debugger attached",
        "int 3 / DbgBreakPoint; bug check 0x1E without a debugger",
    ))
}
