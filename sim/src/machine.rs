//! The simulated machine: configuration, platform profiles, simulated CPUs, per-thread IRQL and
//! the "current machine" every mirrored kernel routine works on.
//!
//! A [`Machine`] owns all simulated state (physical memory, pool, MDLs, DMA adapters, the bus).
//! Kernel routines find it through a thread-local set by [`Machine::run`] (a simulated CPU) or
//! [`Machine::enter`] (the calling thread joins the machine). State lives behind one mutex that
//! is never held while driver code runs: routines take it, change state, drop it, and only then
//! call driver callbacks or stop the machine.

use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::rc::Rc;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::bugcheck::{self, BugCheck};
use crate::typed::{DISPATCH_LEVEL, PASSIVE_LEVEL};
use crate::types::KIRQL;

/// Platform profiles; they combine (`verifier+iommu`).
#[expect(
    clippy::struct_excessive_bools,
    reason = "independent platform switches that combine freely"
)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Profile {
    /// DMA remapping: logical addresses are IOVAs allocated per mapping; device accesses outside
    /// live mappings fault with E6/0x26.
    pub iommu: bool,
    /// All general memory lies above 4 GiB, so a device narrower than 64 bits is bounce-buffered
    /// through map registers.
    pub bounce: bool,
    /// Non-coherent caches: CPU writes are invisible to the device and device writes invisible
    /// to the CPU until the documented flush routines run.
    pub noncoherent: bool,
    /// Driver Verifier DMA checking (flag 0x80): every mapped transfer double-buffered with
    /// guard tags, every rule of windows-dma.md §10 enforced, leak checks.
    pub verifier: bool,
}

impl Profile {
    /// x64 with coherent DMA and identity logical addresses.
    pub const COHERENT: Self = Self {
        iommu: false,
        bounce: false,
        noncoherent: false,
        verifier: false,
    };
    /// DMA remapping on.
    pub const IOMMU: Self = Self {
        iommu: true,
        ..Self::COHERENT
    };
    /// Memory above 4 GiB: narrow devices bounce.
    pub const BOUNCE: Self = Self {
        bounce: true,
        ..Self::COHERENT
    };
    /// Non-coherent caches.
    pub const NONCOHERENT: Self = Self {
        noncoherent: true,
        ..Self::COHERENT
    };
    /// Driver Verifier DMA checking.
    pub const VERIFIER: Self = Self {
        verifier: true,
        ..Self::COHERENT
    };

    /// Parses `coherent`, `iommu`, `bounce`, `noncoherent`, `verifier`, joined with `+`.
    ///
    /// # Errors
    /// The unknown profile name.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut p = Self::COHERENT;
        for part in s.split('+').map(str::trim) {
            match part {
                "coherent" => {}
                "iommu" => p.iommu = true,
                "bounce" => p.bounce = true,
                "noncoherent" => p.noncoherent = true,
                "verifier" => p.verifier = true,
                other => return Err(format!("unknown profile `{other}`")),
            }
        }
        Ok(p)
    }
}

impl std::fmt::Display for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if self.verifier {
            parts.push("verifier");
        }
        if self.iommu {
            parts.push("iommu");
        }
        if self.bounce {
            parts.push("bounce");
        }
        if self.noncoherent {
            parts.push("noncoherent");
        }
        if parts.is_empty() {
            parts.push("coherent");
        }
        f.write_str(&parts.join("+"))
    }
}

/// How the machine is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Platform profiles.
    pub profile: Profile,
    /// Seed of every pseudo-random choice (page frame placement, pool offsets).
    pub seed: u64,
    /// Caps the map registers `IoGetDmaAdapter` grants (to force starvation); `None` grants
    /// `BYTES_TO_PAGES(MaximumLength) + 1`.
    pub map_register_limit: Option<u32>,
    /// The highest `DEVICE_DESCRIPTION` version `IoGetDmaAdapter` accepts (to simulate older
    /// systems that refuse version 3).
    pub max_description_version: u32,
    /// What `GetDmaAlignment` returns.
    pub dma_alignment: u32,
    /// The IOMMU cost model (`iommu` profile); `None` charges nothing.
    pub iommu_cost: Option<crate::hal::IommuCost>,
    /// How long a terminated process waits for the driver to complete its requests before the
    /// simulator reports the rundown hung (Windows waits indefinitely).
    pub rundown_limit: std::time::Duration,
    /// The level up to which the machine's ETW session takes events (`TRACE_LEVEL_VERBOSE` = 5:
    /// all; 0: no session, `EtwWriteTransfer` logs nothing), every keyword.
    pub trace_level: u8,
    /// Driver Verifier's pool tracking at unload (pool, MDLs and the driver's Rust heap still
    /// allocated stop the machine with 0xC4/0x62): `None` follows the profile (on under
    /// `verifier`, off otherwise), as Verifier's standard flags include pool tracking.
    pub pool_tracking: Option<bool>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            profile: Profile::COHERENT,
            seed: 1,
            map_register_limit: None,
            max_description_version: 3,
            dma_alignment: 1,
            iommu_cost: None,
            rundown_limit: std::time::Duration::from_secs(5),
            trace_level: 5,
            pool_tracking: None,
        }
    }
}

impl Config {
    /// The default configuration with `profile`.
    #[must_use]
    pub fn with_profile(profile: Profile) -> Self {
        Self {
            profile,
            ..Self::default()
        }
    }
}

/// Everything the machine simulates, behind one lock.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) mem: crate::mem::Memory,
    pub(crate) hal: crate::hal::Hal,
    pub(crate) bus: crate::bus::Bus,
    pub(crate) wdf: crate::wdf::WdfState,
    pub(crate) faults: KernelFaults,
    /// ETW providers, the trace session's events and the debug print buffer.
    pub(crate) etw: crate::trace::Etw,
    /// The driver's live Rust allocations through [`crate::heap::RustPoolHeap`] (wdk-alloc's
    /// pool blocks tagged `rust` on Windows), shared with [`Inner`].
    pub(crate) rust_heap: Arc<crate::heap::HeapLive>,
}

/// Allocation failures the kernel model injects (`Machine::fail_common_buffers`,
/// `Machine::fail_pool`): resources a real system can run out of at any time.
#[derive(Debug, Default)]
pub(crate) struct KernelFaults {
    /// `AllocateCommonBuffer*` calls to let through before the failures start.
    pub(crate) common_skip: u64,
    /// Common-buffer allocations still to fail.
    pub(crate) common_fail: u64,
    /// Pool allocations with this tag fail.
    pub(crate) pool_tag: u32,
    /// Pool allocations still to fail.
    pub(crate) pool_fail: u64,
    /// Failures injected so far.
    pub(crate) injected: u64,
}

impl KernelFaults {
    /// Whether this common-buffer allocation fails.
    pub(crate) const fn common_buffer_fails(&mut self) -> bool {
        if self.common_fail == 0 {
            return false;
        }
        if self.common_skip > 0 {
            self.common_skip -= 1;
            return false;
        }
        self.common_fail -= 1;
        self.injected += 1;
        true
    }

    /// Whether this pool allocation with `tag` fails.
    pub(crate) const fn pool_fails(&mut self, tag: u32) -> bool {
        if self.pool_fail == 0 || tag != self.pool_tag {
            return false;
        }
        self.pool_fail -= 1;
        self.injected += 1;
        true
    }
}

pub(crate) struct Inner {
    pub(crate) config: Config,
    state: Mutex<State>,
    halted: Mutex<Option<BugCheck>>,
    /// Allocations the driver made in its DPCs, timer callbacks and ISRs ([`crate::heap`]).
    pub(crate) dpc_allocations: std::sync::atomic::AtomicU64,
    /// Allocations the driver made at `DISPATCH_LEVEL` or above, anywhere ([`crate::heap`]).
    pub(crate) dispatch_allocations: std::sync::atomic::AtomicU64,
    /// See [`State::rust_heap`]: the allocator reaches it without the machine lock.
    pub(crate) rust_heap: Arc<crate::heap::HeapLive>,
    /// This machine among the live ones (how much its threads spin depends on it).
    _live: crate::spin::LiveMachine,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Machine")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Inner {
    /// Locks the state. A poisoned lock means a simulator bug panicked while holding it; the
    /// state is still used (tests report the original panic).
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn halted(&self) -> Option<BugCheck> {
        *self
            .halted
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records a bug check (the first one stops the machine; later ones are ignored).
    pub(crate) fn record(&self, b: BugCheck) {
        let mut h = self
            .halted
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if h.is_none() {
            *h = Some(b);
        }
    }
}

type HaltHook = Box<dyn Fn(BugCheck)>;

thread_local! {
    static CURRENT: RefCell<Option<Arc<Inner>>> = const { RefCell::new(None) };
    static IRQL: Cell<KIRQL> = const { Cell::new(PASSIVE_LEVEL) };
    static HALT_HOOK: RefCell<Option<HaltHook>> = const { RefCell::new(None) };
}

/// The machine of the calling thread, if it has entered one (never panics, even during the
/// thread's teardown).
pub(crate) fn try_current() -> Option<Arc<Inner>> {
    CURRENT.try_with(|c| c.borrow().clone()).ok().flatten()
}

/// The machine of the calling thread.
///
/// # Panics
/// When the thread has not entered a machine: calling a kernel routine outside any machine is a
/// test-harness error.
pub(crate) fn current() -> Arc<Inner> {
    CURRENT.with(|c| c.borrow().clone()).expect(
        "wdk-sim: kernel routine called outside a machine (use Machine::run or Machine::enter)",
    )
}

/// Stops the machine with `b`. On a simulated CPU the thread parks forever; elsewhere it panics
/// with the [`BugCheck`] as payload.
pub(crate) fn halt(b: BugCheck) -> ! {
    if let Some(m) = CURRENT.with(|c| c.borrow().clone()) {
        m.record(b);
    }
    let hooked = HALT_HOOK.with(|h| {
        if let Some(hook) = h.borrow().as_ref() {
            hook(b);
            true
        } else {
            false
        }
    });
    if hooked {
        // The CPU stops here, as a real one does at KeBugCheckEx. A system call running on a
        // stack of its own leaves it for the caller's (`syscall_stack`), which never comes
        // back to it; a CPU of its own parks. Either way no frame of driver code below us is
        // unwound (its extern "C" frames cannot be).
        if let Some(leave) = syscall_stack::leave() {
            leave();
        }
        loop {
            std::thread::park();
        }
    }
    std::panic::panic_any(b)
}

/// Runs `f` on the machine state; a returned bug check stops the machine after the lock is
/// released. A machine that has already stopped stops the caller too.
pub(crate) fn with_state<R>(f: impl FnOnce(&mut State, &Config) -> Result<R, BugCheck>) -> R {
    let m = current();
    if let Some(b) = m.halted() {
        halt(b);
    }
    let r = {
        let _kernel = crate::heap::KernelEntry::new();
        let mut st = m.lock();
        f(&mut st, &m.config)
    };
    // The IOMMU cost model's time, spent outside the lock (see `hal::iommu::charge`).
    crate::hal::iommu_pay();
    r.unwrap_or_else(|b| halt(b))
}

/// Adds one driver allocation to the calling CPU's machine counters (in the interrupt path,
/// at `DISPATCH_LEVEL` or above). Allocates nothing; does nothing off a machine or during the
/// thread's teardown.
/// The calling thread's machine's live-heap counters (see [`State::rust_heap`]), if the
/// thread is on a machine.
pub(crate) fn current_rust_heap() -> Option<Arc<crate::heap::HeapLive>> {
    CURRENT
        .try_with(|c| {
            c.try_borrow()
                .ok()
                .and_then(|m| m.as_ref().map(|m| m.rust_heap.clone()))
        })
        .ok()
        .flatten()
}

pub(crate) fn count_allocation(interrupt_path: bool, at_dispatch: bool) {
    let _ = CURRENT.try_with(|c| {
        if let Ok(m) = c.try_borrow()
            && let Some(m) = m.as_ref()
        {
            if interrupt_path {
                m.dpc_allocations
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            if at_dispatch {
                m.dispatch_allocations
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    });
}

/// The calling thread's IRQL, or `None` while the thread is being torn down.
pub(crate) fn try_irql() -> Option<KIRQL> {
    IRQL.try_with(Cell::get).ok()
}

/// The calling thread's IRQL.
pub(crate) fn irql() -> KIRQL {
    IRQL.with(Cell::get)
}

/// Sets the calling thread's IRQL (no checks).
pub(crate) fn set_irql(v: KIRQL) {
    IRQL.with(|i| i.set(v));
}

/// Runs `f` at `DISPATCH_LEVEL` (as the HAL calls execution routines), restoring the IRQL after.
pub(crate) fn at_dispatch<R>(f: impl FnOnce() -> R) -> R {
    let old = irql();
    set_irql(DISPATCH_LEVEL.max(old));
    let r = f();
    set_irql(old);
    r
}

enum Outcome<R> {
    Done(R),
    Halted(BugCheck),
    Panicked(Box<dyn std::any::Any + Send>),
}

/// A simulated machine. Cloning shares it.
#[derive(Clone, Debug)]
pub struct Machine(pub(crate) Arc<Inner>);

/// The guard of [`Machine::enter`]: the thread leaves the machine when it drops.
#[derive(Debug)]
pub struct Entered {
    previous: Option<Arc<Inner>>,
    previous_irql: KIRQL,
}

impl Drop for Entered {
    fn drop(&mut self) {
        let prev = self.previous.take();
        CURRENT.with(|c| *c.borrow_mut() = prev);
        set_irql(self.previous_irql);
    }
}

impl Machine {
    /// Builds a machine.
    #[must_use]
    pub fn new(config: Config) -> Self {
        let rust_heap = Arc::new(crate::heap::HeapLive::default());
        let state = State {
            rust_heap: rust_heap.clone(),
            mem: crate::mem::Memory::new(&config),
            hal: crate::hal::Hal::new(&config),
            bus: crate::bus::Bus::default(),
            wdf: crate::wdf::WdfState::default(),
            faults: KernelFaults::default(),
            etw: crate::trace::Etw::default(),
        };
        Self(Arc::new(Inner {
            config,
            state: Mutex::new(state),
            halted: Mutex::new(None),
            dpc_allocations: std::sync::atomic::AtomicU64::new(0),
            dispatch_allocations: std::sync::atomic::AtomicU64::new(0),
            rust_heap,
            _live: crate::spin::LiveMachine::new(),
        }))
    }

    /// A machine with the default configuration and `profile`.
    #[must_use]
    pub fn with_profile(profile: Profile) -> Self {
        Self::new(Config::with_profile(profile))
    }

    /// What `!dma` would show: one report per DMA adapter ever created.
    #[must_use]
    pub fn dma_adapters(&self) -> Vec<crate::hal::AdapterReport> {
        {
            let st = self.0.lock();
            crate::hal::reports(&st.hal)
        }
    }

    /// Live pool allocations by tag.
    #[must_use]
    pub fn pool_usage(&self) -> Vec<(String, crate::mem::TagUsage)> {
        let mut usage: Vec<(String, crate::mem::TagUsage)> = self
            .0
            .lock()
            .mem
            .outstanding_pool()
            .into_iter()
            .map(|(t, u)| (crate::mem::tag_name(t), u))
            .collect();
        // The driver's Rust heap through the drop-in wdk-alloc: pool tagged `rust` on Windows.
        let (allocations, bytes) = self.0.rust_heap.live();
        if allocations > 0 {
            usage.push((
                "rust".to_owned(),
                crate::mem::TagUsage {
                    allocations,
                    bytes,
                    frees: self.0.rust_heap.frees(),
                },
            ));
        }
        usage
    }

    /// User memory of every simulated process: (allocations live now, allocations made
    /// since boot). Live: the buffers applications allocated, and those of calls in flight or
    /// kept for reuse.
    #[must_use]
    pub fn user_allocations(&self) -> (usize, u64) {
        self.0.lock().mem.user_regions()
    }

    /// Live MDLs.
    #[must_use]
    pub fn live_mdls(&self) -> usize {
        self.0.lock().mem.mdls.len()
    }

    /// What the IOMMU did (maps, unmaps, invalidations, time charged by the cost model).
    #[must_use]
    pub fn iommu_stats(&self) -> crate::hal::IommuStats {
        self.0.lock().hal.iommu_stats()
    }

    /// Pages mapped in the IOMMU (0 without remapping).
    #[must_use]
    pub fn iommu_pages(&self) -> usize {
        {
            let st = self.0.lock();
            crate::hal::iommu_pages(&st.hal)
        }
    }

    /// The events the machine's ETW session recorded since boot, decoded from their
    /// `TraceLogging` metadata (what `tracefmt` or WPA would show), oldest first.
    #[must_use]
    pub fn trace_events(&self) -> Vec<crate::trace::TraceEvent> {
        self.0.lock().etw.events.clone()
    }

    /// Events `EtwWriteTransfer` accepted that do not decode as `TraceLogging`, with the reason
    /// (a driver bug a real decoder would show as garbage or drop).
    #[must_use]
    pub fn trace_errors(&self) -> Vec<String> {
        self.0.lock().etw.errors.clone()
    }

    /// The `DbgPrint`/`DbgPrintEx` lines since boot, oldest first.
    #[must_use]
    pub fn debug_prints(&self) -> Vec<crate::trace::DebugPrint> {
        self.0.lock().etw.prints.clone()
    }

    /// Allocations the driver made at `DISPATCH_LEVEL` or above since boot, in any callback
    /// (under a spin lock in an I/O callback, too): legal for non-paged pool on Windows, and a
    /// measure of what a driver could fail for want of memory where it cannot wait.
    #[must_use]
    pub fn dispatch_allocations(&self) -> u64 {
        self.0
            .dispatch_allocations
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Allocations the driver made in its DPCs, timer callbacks and ISRs since boot: its own
    /// (Rust heap) and the pool it asked for directly (`docs/sim-fidelity.md`). Windows allows
    /// non-paged allocations at `DISPATCH_LEVEL`; a driver that keeps its interrupt path free of
    /// them cannot fail there for want of memory.
    #[must_use]
    pub fn dpc_allocations(&self) -> u64 {
        self.0
            .dpc_allocations
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Everything the driver still holds: adapters not put (or with resources), pool by tag and
    /// MDLs. Empty when the driver cleaned up. Under `verifier` it also checks the released
    /// double buffers for late device writes.
    ///
    /// # Errors
    /// The bug check a late device write into a released verifier buffer causes.
    #[expect(
        clippy::significant_drop_tightening,
        reason = "the report reads state under the lock"
    )]
    pub fn leaks(&self) -> Result<Vec<String>, BugCheck> {
        let mut guard = self.0.lock();
        let st = &mut *guard;
        crate::hal::drain_quarantine(&mut st.hal, &mut st.mem)?;
        let mut out = Vec::new();
        for r in crate::hal::reports(&st.hal).iter().filter(|r| r.leaks()) {
            out.push(format!(
                "DMA adapter {:#x}: released={} common buffers={} scatter/gather lists={} waiting={}",
                r.adapter, r.released, r.common_buffers, r.sg_lists, r.waiting
            ));
        }
        for (tag, u) in st.mem.outstanding_pool() {
            out.push(format!(
                "pool tag '{}': {} allocations, {} bytes",
                crate::mem::tag_name(tag),
                u.allocations,
                u.bytes
            ));
        }
        if !st.mem.mdls.is_empty() {
            out.push(format!("{} MDLs not freed", st.mem.mdls.len()));
        }
        let (allocations, bytes) = st.rust_heap.live();
        if allocations > 0 {
            out.push(format!(
                "pool tag 'rust' (the driver's Rust heap, wdk-alloc): {allocations} allocations, {bytes} bytes"
            ));
        }
        // A provider is the driver's to unregister at unload: while a driver is loaded it is
        // not a leak.
        let unloaded = st.wdf.driver.is_none();
        for p in st.etw.providers.iter().filter(|_| unloaded) {
            out.push(format!(
                "ETW provider {} still registered (EtwUnregister not called)",
                crate::trace::guid_bytes_string(&p.guid)
            ));
        }
        if !st.bus.io_maps.is_empty() {
            out.push(format!(
                "{} register mappings (MmMapIoSpaceEx) not unmapped",
                st.bus.io_maps.len()
            ));
        }
        Ok(out)
    }

    /// Driver Verifier's checks when the driver unloads. Pool tracking (on under the `verifier`
    /// profile, or as [`Config::pool_tracking`] says): pool still allocated (MDLs and the
    /// driver's Rust heap included) is 0xC4/0x62 with the number of allocations as parameter 4.
    /// On the `verifier` profile, a DMA adapter never released, or a register mapping never
    /// unmapped, stops the machine with a wdk-sim code of 0xC4 (`sim_rule`). Without Verifier,
    /// Windows checks nothing at unload: the leaks stay in [`Machine::leaks`].
    pub(crate) fn unload_checks(st: &mut State, cfg: &Config) -> Result<(), BugCheck> {
        if cfg.profile.verifier {
            crate::hal::drain_quarantine(&mut st.hal, &mut st.mem)?;
            if let Some(r) = crate::hal::reports(&st.hal).iter().find(|r| !r.released) {
                return Err(BugCheck::sim(
                    crate::bugcheck::sim_rule::ADAPTER_NOT_RELEASED_AT_UNLOAD,
                    r.adapter as u64,
                    r.common_buffers as u64 + r.sg_lists as u64,
                    "the driver unloaded without releasing a DMA adapter (PutDmaAdapter)",
                ));
            }
        }
        if cfg.pool_tracking.unwrap_or(cfg.profile.verifier) {
            let pool: u64 = st
                .mem
                .outstanding_pool()
                .iter()
                .map(|(_, u)| u.allocations)
                .sum();
            // wdk-alloc's blocks are pool tagged `rust` on Windows: Verifier counts them too.
            let allocations = pool + st.mem.mdls.len() as u64 + st.rust_heap.live().0;
            if allocations > 0 {
                return Err(BugCheck::new(
                    crate::bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION,
                    [crate::bugcheck::POOL_LEAKED_AT_UNLOAD, 0, 0, allocations],
                    "the driver unloaded without freeing its pool allocations",
                    "Bug check 0xC4, parameter 1 = 0x62 (Driver Verifier pool tracking)",
                ));
            }
        }
        if !cfg.profile.verifier {
            return Ok(());
        }
        if let Some(map) = st.bus.io_maps.first() {
            return Err(BugCheck::sim(
                crate::bugcheck::sim_rule::IO_SPACE_MAPPED_AT_UNLOAD,
                map.va as u64,
                st.bus.io_maps.len() as u64,
                "the driver unloaded with a register mapping (MmMapIoSpaceEx) it never unmapped",
            ));
        }
        Ok(())
    }

    /// Allocates zeroed memory in a simulated user process (the caller's buffer for direct I/O).
    ///
    /// # Panics
    /// When simulated memory is exhausted.
    #[must_use]
    pub fn alloc_user(&self, len: usize) -> usize {
        self.0
            .lock()
            .mem
            .alloc_user(len)
            .expect("simulated memory exhausted")
    }

    /// Releases user memory (process exit): later device DMA to it is a fault.
    pub fn free_user(&self, va: usize) {
        self.0.lock().mem.free_region(va & !(crate::mem::PAGE - 1));
    }

    /// The driver's live Rust allocations through [`crate::heap::RustPoolHeap`]: (allocations,
    /// bytes), as poolmon would show tag `rust` for a driver using wdk-alloc.
    #[must_use]
    pub fn rust_heap_live(&self) -> (u64, u64) {
        self.0.rust_heap.live()
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.0.config
    }

    /// The bug check that stopped the machine, if any.
    #[must_use]
    pub fn bugcheck(&self) -> Option<BugCheck> {
        self.0.halted()
    }

    /// Fails `count` common-buffer allocations (`AllocateCommonBuffer*`) after letting `skip`
    /// more through: the driver sees NULL, as on a system short of contiguous memory or map
    /// registers.
    pub fn fail_common_buffers(&self, skip: u64, count: u64) {
        let mut st = self.0.lock();
        st.faults.common_skip = skip;
        st.faults.common_fail = count;
    }

    /// Fails the next `count` `ExAllocatePool2` calls with pool tag `tag`.
    pub fn fail_pool(&self, tag: u32, count: u64) {
        let mut st = self.0.lock();
        st.faults.pool_tag = tag;
        st.faults.pool_fail = count;
    }

    /// Allocation failures injected so far.
    #[must_use]
    pub fn kernel_faults_injected(&self) -> u64 {
        self.0.lock().faults.injected
    }

    /// Makes the calling thread a CPU of this machine at `PASSIVE_LEVEL` until the guard drops.
    /// Bug checks on this thread panic with a [`BugCheck`] payload.
    #[must_use]
    pub fn enter(&self) -> Entered {
        let previous = CURRENT.with(|c| c.borrow_mut().replace(self.0.clone()));
        let previous_irql = irql();
        set_irql(PASSIVE_LEVEL);
        Entered {
            previous,
            previous_irql,
        }
    }

    /// Starts a long-lived simulated CPU (an interrupt or DPC processor) running `f`. A bug
    /// check on it stops the machine and parks the thread, as on any CPU.
    pub(crate) fn spawn_cpu<F>(&self, name: &str, f: F) -> std::thread::JoinHandle<()>
    where
        F: FnOnce() + Send + 'static,
    {
        let inner = self.0.clone();
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                CURRENT.with(|c| *c.borrow_mut() = Some(inner.clone()));
                set_irql(PASSIVE_LEVEL);
                HALT_HOOK.with(|h| *h.borrow_mut() = Some(Box::new(|_| {})));
                if let Err(p) = catch_unwind(AssertUnwindSafe(f))
                    && let Some(b) = bugcheck::from_panic(p.as_ref())
                {
                    inner.record(b);
                }
            })
            .expect("wdk-sim: cannot start a simulated CPU")
    }

    /// Runs `f` as a simulated CPU at `PASSIVE_LEVEL`: on the calling thread, on a stack of its
    /// own (`syscall_stack`), so that a bug check can stop it where it is.
    ///
    /// # Errors
    /// The [`BugCheck`] that stopped the machine, if `f` (or anything before it) stopped it.
    /// A CPU that returns above `PASSIVE_LEVEL` stops the machine with
    /// `IRQL_GT_ZERO_AT_SYSTEM_SERVICE` (0x4A), as a thread returning to user mode would.
    ///
    /// # Panics
    /// Re-raises any panic of `f` that is not a bug check (a failed assertion in a test).
    pub fn run<F, R>(&self, f: F) -> Result<R, BugCheck>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        if let Some(b) = self.bugcheck() {
            return Err(b);
        }
        // The call runs on this thread before `syscall_stack::run` returns: its outcome (or the
        // bug check that stopped it) is left here.
        let outcome: Rc<Cell<Option<Outcome<R>>>> = Rc::new(Cell::new(None));
        let (slot, halted) = (outcome.clone(), outcome.clone());
        let inner = self.0.clone();
        syscall_stack::run(Box::new(move || {
            CURRENT.with(|c| *c.borrow_mut() = Some(inner.clone()));
            set_irql(PASSIVE_LEVEL);
            HALT_HOOK.with(|h| {
                *h.borrow_mut() = Some(Box::new(move |b| halted.set(Some(Outcome::Halted(b)))));
            });
            let out = catch_unwind(AssertUnwindSafe(f));
            let level = irql();
            let msg = match out {
                Ok(_) if level != PASSIVE_LEVEL => {
                    let b = BugCheck::new(
                        0x4A,
                        [0, u64::from(level), 0, 0],
                        "IRQL_GT_ZERO_AT_SYSTEM_SERVICE: returned from the driver above PASSIVE_LEVEL",
                        "windows-dma.md §2.1",
                    );
                    inner.record(b);
                    Outcome::Halted(b)
                }
                Ok(v) => Outcome::Done(v),
                Err(p) => match bugcheck::from_panic(p.as_ref()) {
                    Some(b) => {
                        inner.record(b);
                        Outcome::Halted(b)
                    }
                    None => Outcome::Panicked(p),
                },
            };
            // The caller's machine and halt hook come back with `syscall_stack::run`.
            slot.set(Some(msg));
        }));
        match outcome.take() {
            Some(Outcome::Done(v)) => Ok(v),
            Some(Outcome::Halted(b)) => Err(b),
            Some(Outcome::Panicked(p)) => resume_unwind(p),
            None => Err(self.bugcheck().unwrap_or_else(|| {
                BugCheck::new(
                    0xDEAD,
                    [0; 4],
                    "simulated CPU vanished",
                    "docs/sim-fidelity.md",
                )
            })),
        }
    }
}

/// System calls and harness steps run on the calling thread, each on a stack of its own: the
/// calling thread is the simulated CPU for the call, as a Windows thread is the CPU that runs
/// its own system call, and no hand-off to another thread is made (each one cost a wake-up and
/// a context switch, most of a simulated MAD round trip).
///
/// A bug check stops a CPU where it is, with driver frames on its stack that cannot be unwound
/// (they are `extern "C"`). On a stack of its own the call is simply left there: the caller's
/// stack takes over with the bug check as the call's outcome, and the call's stack is never
/// resumed nor freed (a stopped CPU's). The calling thread's per-CPU state (its machine,
/// IRQL, halt hook, allocation watch) is saved before the call and put back after it, so a
/// call that halts leaves the caller as it was.
mod syscall_stack {
    use std::cell::RefCell;

    use corosensei::stack::DefaultStack;
    use corosensei::{Coroutine, CoroutineResult, Yielder};

    type Job = Box<dyn FnOnce()>;
    type Leave = Box<dyn Fn()>;

    /// A call's stack: as much as a host thread's by default. The Windows kernel stack is far
    /// smaller (24 KiB on x64), but the simulated kernel and a debug build of the driver are
    /// not Windows's.
    const STACK_BYTES: usize = 2 << 20;
    /// Stacks kept per thread for its next calls.
    const KEPT: usize = 4;

    thread_local! {
        static STACKS: RefCell<Vec<DefaultStack>> = const { RefCell::new(Vec::new()) };
        /// How the call running on this thread leaves its stack at a bug check.
        static LEAVE: RefCell<Option<Leave>> = const { RefCell::new(None) };
    }

    /// How the running call leaves its stack, if the calling thread is running one (taken: a
    /// call leaves once).
    pub(super) fn leave() -> Option<Leave> {
        LEAVE.try_with(|l| l.borrow_mut().take()).ok().flatten()
    }

    /// Runs `job` on a stack of its own on the calling thread, until it returns or halts.
    ///
    /// # Panics
    /// When the host cannot map a stack.
    pub(super) fn run(job: Job) {
        let stack = STACKS
            .with(|s| s.borrow_mut().pop())
            .map_or_else(|| DefaultStack::new(STACK_BYTES), Ok)
            .unwrap_or_else(|e| panic!("wdk-sim: cannot map a simulated CPU's stack: {e}"));
        let saved = Saved::take();
        let mut call = Coroutine::with_stack(stack, move |y: &Yielder<(), ()>, ()| {
            let y: *const Yielder<(), ()> = y;
            // SAFETY: the yielder lives as long as this body runs, and `leave` is called only
            // from this body's stack (a halt inside `job`); after it the body never resumes.
            let leave: Leave = Box::new(move || unsafe { (*y).suspend(()) });
            LEAVE.with(|l| *l.borrow_mut() = Some(leave));
            job();
            LEAVE.with(|l| *l.borrow_mut() = None);
        });
        match call.resume(()) {
            CoroutineResult::Return(()) => {
                let stack = call.into_stack();
                STACKS.with(|s| {
                    let mut s = s.borrow_mut();
                    if s.len() < KEPT {
                        s.push(stack);
                    }
                });
            }
            // A bug check: the stopped CPU's stack stays as it is, never resumed (dropping
            // the coroutine would unwind it through driver frames).
            CoroutineResult::Yield(()) => std::mem::forget(call),
        }
        saved.restore();
    }

    /// The calling thread's per-CPU state, put back after a call.
    struct Saved {
        current: Option<std::sync::Arc<super::Inner>>,
        irql: super::KIRQL,
        hook: Option<super::HaltHook>,
        watch: crate::heap::SavedWatch,
        leave: Option<Leave>,
    }

    impl Saved {
        fn take() -> Self {
            Self {
                current: super::CURRENT.with(|c| c.borrow().clone()),
                irql: super::irql(),
                hook: super::HALT_HOOK.with(|h| h.borrow_mut().take()),
                watch: crate::heap::save_watch(),
                leave: LEAVE.with(|l| l.borrow_mut().take()),
            }
        }

        fn restore(self) {
            super::CURRENT.with(|c| *c.borrow_mut() = self.current);
            super::set_irql(self.irql);
            super::HALT_HOOK.with(|h| *h.borrow_mut() = self.hook);
            crate::heap::restore_watch(self.watch);
            LEAVE.with(|l| *l.borrow_mut() = self.leave);
            // A call that halted mid-way may have left the per-CPU state of the system call
            // layer set.
            crate::bus::set_stepping(false);
            crate::wdf::host::forget_taken();
        }
    }
}
