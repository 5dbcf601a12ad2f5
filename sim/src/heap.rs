//! The driver's heap, watched: [`DriverHeap`], the global allocator a driver crate installs on
//! the simulated machine where wdk-alloc's `WdkAllocator` stands on Windows.
//!
//! On Windows every Rust allocation of a kernel driver is an `ExAllocatePool2` from non-paged
//! pool, so it obeys pool's IRQL rule: at `DISPATCH_LEVEL` or below. Above it, Driver Verifier
//! stops the machine with 0xC4, parameter 1 = 0x02 (current IRQL, pool type, bytes), and without
//! Verifier the pool code faults with 0xA. This allocator serves from the host's heap and applies
//! the same rule to the driver's own code: the simulator knows when a thread runs a driver
//! callback ([`crate::wdf`] marks every call into the driver) and when that callback is inside
//! a kernel routine (whose allocations are the kernel's, not the driver's).
//!
//! It also counts what Windows allows but a careful driver avoids: allocations made by the
//! driver in its DPCs, timer callbacks and ISRs ([`crate::Machine::dpc_allocations`]), so a
//! test can hold the driver to "the interrupt path allocates nothing".
//!
//! An allocator may not unwind, so a violation is recorded here and the machine stops when the
//! offending callback returns to the framework — with the parameters of the first violation.
//! `docs/sim-fidelity.md` lists the difference (Windows stops at the allocation itself).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use crate::KIRQL;
use crate::typed::DISPATCH_LEVEL;

/// What kind of driver callback the thread is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Context {
    /// Not in driver code.
    None,
    /// A callback outside the interrupt path (`PnP`, power, I/O, work items).
    Other,
    /// A DPC or a timer callback.
    Dpc,
    /// An ISR.
    Isr,
}

#[derive(Debug, Clone, Copy)]
struct Watch {
    context: Context,
    /// Kernel routines entered from the current callback (their allocations are not counted).
    kernel: u32,
    /// The first pool operation above `DISPATCH_LEVEL`: Verifier's parameter 1 (0x02 for an
    /// allocation, 0x12 for a free), the IRQL, and the bytes (allocation) or address (free).
    violation: Option<(u64, KIRQL, usize)>,
}

thread_local! {
    static WATCH: Cell<Watch> = const {
        Cell::new(Watch { context: Context::None, kernel: 0, violation: None })
    };
}

fn update(f: impl FnOnce(&mut Watch)) {
    // During thread teardown the slot may be gone: nothing to watch then.
    let _ = WATCH.try_with(|w| {
        let mut v = w.get();
        f(&mut v);
        w.set(v);
    });
}

/// Notes an allocation of `value` bytes (`free` false), or the free of address `value`, by
/// whoever runs on this thread.
fn note(value: usize, free: bool) {
    let irql = crate::machine::try_irql().unwrap_or(0);
    update(|w| {
        if w.context == Context::None || w.kernel > 0 {
            return;
        }
        if irql > DISPATCH_LEVEL && w.violation.is_none() {
            w.violation = Some((if free { 0x12 } else { 0x02 }, irql, value));
        }
        if !free {
            // Counted at once (not when the callback returns), so that a request the callback
            // completes is never seen before its allocation is.
            crate::machine::count_allocation(
                matches!(w.context, Context::Dpc | Context::Isr),
                irql >= DISPATCH_LEVEL,
            );
        }
    });
}

/// Notes a pool allocation the driver asked the kernel for directly (`ExAllocatePool2`): in
/// the interrupt path it counts as the driver's, like a Rust allocation.
pub(crate) fn note_pool_allocation() {
    update(|w| {
        if w.context != Context::None && w.kernel == 0 {
            crate::machine::count_allocation(
                matches!(w.context, Context::Dpc | Context::Isr),
                crate::machine::try_irql().is_some_and(|i| i >= DISPATCH_LEVEL),
            );
        }
    });
}

/// Enters a driver callback of kind `context`; returns what to restore with [`leave_callback`].
pub(crate) fn enter_callback(context: Context) -> (Context, u32) {
    let mut saved = (Context::None, 0);
    update(|w| {
        saved = (w.context, w.kernel);
        w.context = context;
        w.kernel = 0;
    });
    saved
}

/// Leaves a driver callback: the first pool operation above `DISPATCH_LEVEL` it made
/// (Verifier's parameter 1, IRQL, bytes or address).
pub(crate) fn leave_callback(saved: (Context, u32)) -> Option<(u64, KIRQL, usize)> {
    let mut out = None;
    update(|w| {
        out = w.violation.take();
        (w.context, w.kernel) = saved;
    });
    out
}

/// The stop for a pool operation above its pool type's maximum IRQL `max`. Under Driver
/// Verifier: 0xC4 with `p1` (0x01 / 0x02: allocating paged / non-paged pool; 0x11 / 0x12:
/// freeing it), the IRQL, the pool type and `p4` (bytes allocated, or the address freed).
/// Without it the pool code faults: 0xA with the IRQL and the maximum.
pub(crate) fn pool_irql_stop(
    p1: u64,
    irql: KIRQL,
    max: KIRQL,
    pool_type: u64,
    p4: u64,
    what: &'static str,
) -> crate::BugCheck {
    if crate::machine::current().config.profile.verifier {
        crate::BugCheck::new(
            crate::bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION,
            [p1, u64::from(irql), pool_type, p4],
            what,
            "Bug check 0xC4, parameter 1 = 0x01 / 0x02 / 0x11 / 0x12 (docs/sim-fidelity.md §2)",
        )
    } else {
        crate::BugCheck::new(
            crate::bugcheck::IRQL_NOT_LESS_OR_EQUAL,
            [0, u64::from(irql), u64::from(max), 0],
            what,
            "windows-dma.md §2.1",
        )
    }
}

/// `NonPagedPoolNx`: what wdk-alloc's `ExAllocatePool2(POOL_FLAG_NON_PAGED, …)` allocates.
pub(crate) const NON_PAGED_POOL_NX: u64 = 0x200;
/// `PagedPool`.
pub(crate) const PAGED_POOL: u64 = 1;

/// Marks a kernel routine's extent (the guard's life): allocations inside are the kernel's.
/// Public only for `call_unsafe_wdf_function_binding!`, which expands in the driver's crate.
#[doc(hidden)]
#[derive(Debug)]
pub struct KernelEntry(());

impl KernelEntry {
    #[doc(hidden)]
    #[must_use]
    pub fn new() -> Self {
        update(|w| w.kernel += 1);
        Self(())
    }
}

impl Drop for KernelEntry {
    fn drop(&mut self) {
        update(|w| w.kernel = w.kernel.saturating_sub(1));
    }
}

/// The global allocator of a driver on the simulated machine (see the module documentation).
///
/// A driver crate installs it where it installs wdk-alloc's allocator on Windows:
///
/// ```ignore
/// #[cfg(not(windows))]
/// #[global_allocator]
/// static GLOBAL_ALLOCATOR: wdk_sim::DriverHeap = wdk_sim::DriverHeap;
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct DriverHeap;

// SAFETY: every method forwards to the system allocator with the caller's arguments; the
// bookkeeping before it touches only a thread-local `Cell` and never allocates.
unsafe impl GlobalAlloc for DriverHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size(), false);
        // SAFETY: the caller's contract for `GlobalAlloc::alloc`, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size(), false);
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size, false);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note(ptr as usize, true);
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}
