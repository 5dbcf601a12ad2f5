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

/// The calling thread's watch, saved by a system call run on the caller's thread
/// ([`crate::Machine::run`]) and put back with [`restore_watch`] when it returns or halts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SavedWatch(Watch);

/// Saves the calling thread's watch.
pub(crate) fn save_watch() -> SavedWatch {
    SavedWatch(WATCH.try_with(Cell::get).unwrap_or(Watch {
        context: Context::None,
        kernel: 0,
        violation: None,
    }))
}

/// Puts back a watch saved with [`save_watch`].
pub(crate) fn restore_watch(w: SavedWatch) {
    let _ = WATCH.try_with(|c| c.set(w.0));
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

/// The live allocations of one machine's driver through [`RustPoolHeap`].
#[derive(Debug, Default)]
pub struct HeapLive {
    allocations: std::sync::atomic::AtomicU64,
    bytes: std::sync::atomic::AtomicU64,
    frees: std::sync::atomic::AtomicU64,
}

impl HeapLive {
    /// (allocations, bytes) still live.
    #[must_use]
    pub fn live(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.allocations.load(Relaxed), self.bytes.load(Relaxed))
    }

    /// The blocks freed so far.
    #[must_use]
    pub fn frees(&self) -> u64 {
        self.frees.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// What [`RustPoolHeap`] puts before every block: whose driver allocated it (a counted
/// reference to its machine's [`HeapLive`], or null when no driver did) and its size.
#[repr(C)]
struct Header {
    live: *const HeapLive,
    size: usize,
}

/// The header's room before a block of `layout`: at least the header, and a multiple of the
/// block's alignment so that the block stays aligned.
fn header_room(layout: Layout) -> usize {
    size_of::<Header>().next_multiple_of(layout.align())
}

/// The whole host allocation for a block of `layout`.
fn outer(layout: Layout) -> Option<Layout> {
    Layout::from_size_align(
        layout.size().checked_add(header_room(layout))?,
        layout.align().max(align_of::<Header>()),
    )
    .ok()
}

/// Whether an allocation on this thread, now, is the driver's: inside a driver callback and
/// outside a kernel routine (the attribution [`DriverHeap`] uses).
fn drivers_own() -> bool {
    let mut own = false;
    update(|w| own = w.context != Context::None && w.kernel == 0);
    own
}

/// The global allocator wdk-sim's drop-in `wdk-alloc` is.
///
/// It applies [`DriverHeap`]'s IRQL rules and counts, plus what Driver Verifier's pool tracking
/// sees of wdk-alloc's blocks (pool tagged `rust` on Windows). Every block the driver allocates in its callbacks is counted against its
/// machine until freed, wherever it is freed; at unload under the `verifier` profile a block
/// still live is a pool leak (0xC4/0x62), and [`crate::Machine::leaks`] lists them. Each block
/// carries a small header before it (the owner and size), so the counts need no table and no
/// lock.
#[derive(Debug, Clone, Copy, Default)]
pub struct RustPoolHeap;

// SAFETY: every block is a host allocation of `outer(layout)` whose first `header_room` bytes
// hold the header; the pointer returned is `header_room` bytes in, aligned as `layout` asks
// (the room is a multiple of the alignment and the outer block has at least that alignment).
// `dealloc` reverses exactly that. The bookkeeping touches atomics and a thread-local `Cell`
// and never allocates.
unsafe impl GlobalAlloc for RustPoolHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size(), false);
        let Some(outer) = outer(layout) else {
            return core::ptr::null_mut();
        };
        // SAFETY: `outer` has a non-zero size (it holds the header).
        let base = unsafe { System.alloc(outer) };
        if base.is_null() {
            return base;
        }
        let live = if drivers_own() {
            crate::machine::current_rust_heap().map_or(core::ptr::null(), |h| {
                use std::sync::atomic::Ordering::Relaxed;
                h.allocations.fetch_add(1, Relaxed);
                h.bytes.fetch_add(layout.size() as u64, Relaxed);
                std::sync::Arc::into_raw(h)
            })
        } else {
            core::ptr::null()
        };
        let room = header_room(layout);
        // SAFETY: `room` < `outer.size()`: the block starts inside the allocation.
        let block = unsafe { base.add(room) };
        #[expect(
            clippy::cast_ptr_alignment,
            reason = "8-aligned: the outer block is, and the room before the block is 16 or a multiple of an alignment of at least 8"
        )]
        // SAFETY: the header's place, just before the block and inside the allocation
        // (`room` >= the header's size).
        let place = unsafe { block.sub(size_of::<Header>()) }.cast::<Header>();
        // SAFETY: as above: the header's place, inside the allocation, 8-aligned.
        unsafe {
            place.write(Header {
                live,
                size: layout.size(),
            });
        }
        block
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note(ptr as usize, true);
        #[expect(clippy::cast_ptr_alignment, reason = "as in `alloc`")]
        // SAFETY: `ptr` came from `alloc` with this layout (the caller's contract): its header
        // sits just before it.
        let place = unsafe { ptr.sub(size_of::<Header>()) }.cast::<Header>();
        // SAFETY: as above: the header `alloc` wrote there.
        let header = unsafe { place.read() };
        if !header.live.is_null() {
            use std::sync::atomic::Ordering::Relaxed;
            // SAFETY: the counted reference `alloc` leaked into the header, taken back once.
            let h = unsafe { std::sync::Arc::from_raw(header.live) };
            h.allocations.fetch_sub(1, Relaxed);
            h.bytes.fetch_sub(header.size as u64, Relaxed);
            h.frees.fetch_add(1, Relaxed);
        }
        let Some(outer) = outer(layout) else { return };
        // SAFETY: the start of the allocation `alloc` made, with the same outer layout.
        let base = unsafe { ptr.sub(header_room(layout)) };
        // SAFETY: as above.
        unsafe { System.dealloc(base, outer) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_pool_heap_blocks_keep_their_alignment_and_round_trip() {
        for align in [1usize, 2, 8, 16, 32, 64, 4096] {
            for size in [1usize, 7, 16, 100, 5000] {
                let layout = Layout::from_size_align(size, align).expect("layout");
                // SAFETY: a non-zero layout; freed below with the same layout.
                let p = unsafe { RustPoolHeap.alloc(layout) };
                assert!(!p.is_null());
                assert_eq!(p as usize % align, 0, "size {size} align {align}");
                // SAFETY: `size` bytes of the block just allocated.
                unsafe { p.write_bytes(0x5A, size) };
                // SAFETY: as allocated.
                let q = unsafe { RustPoolHeap.realloc(p, layout, size * 2) };
                assert_eq!(q as usize % align, 0);
                // SAFETY: the realloc kept the first `size` bytes of its block.
                let kept = unsafe { core::slice::from_raw_parts(q, size) };
                assert!(kept.iter().all(|&b| b == 0x5A));
                let grown = Layout::from_size_align(size * 2, align).expect("layout");
                // SAFETY: the block realloc returned, with its new layout.
                unsafe { RustPoolHeap.dealloc(q, grown) };
            }
        }
    }

    #[test]
    fn blocks_allocated_off_a_driver_callback_are_nobodys() {
        let layout = Layout::from_size_align(24, 8).expect("layout");
        // SAFETY: as above.
        let p = unsafe { RustPoolHeap.alloc(layout) };
        // SAFETY: the header's place, before the block, inside the allocation.
        let place = unsafe { p.sub(size_of::<Header>()) };
        // SAFETY: the header `alloc` wrote there.
        let h = unsafe { place.cast::<Header>().read_unaligned() };
        assert!(h.live.is_null());
        assert_eq!(h.size, 24);
        // SAFETY: as allocated.
        unsafe { RustPoolHeap.dealloc(p, layout) };
    }
}
