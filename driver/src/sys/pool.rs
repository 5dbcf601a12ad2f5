//! The driver's global allocator on Windows: non-paged pool tagged `RHCA`.
//!
//! windows-drivers-rs's `WdkAllocator` (wdk-alloc 0.4.2) tags every allocation `rust`, so
//! `poolmon`, `!poolused` and Driver Verifier's leak report at unload cannot tell this driver's
//! memory from any other Rust driver's, and it ignores a layout's alignment. [`PoolAllocator`]
//! is the same `ExAllocatePool2(POOL_FLAG_NON_PAGED, …)` with the driver's own tag
//! ([`POOL_TAG`], which is also the framework's `DriverPoolTag`), freed with
//! `ExFreePoolWithTag`, refusing an alignment pool cannot give, and skipping the zeroing that
//! `GlobalAlloc::alloc` does not promise.
//!
//! On the simulated machine the global allocator is `wdk_sim::DriverHeap` (the host heap
//! under pool's IRQL rule: test binaries share one allocator with code that runs outside any
//! machine); this allocator is compiled and tested there all the same, through the machine's
//! pool.
//!
//! Safety story: pool is callable at `IRQL <= DISPATCH_LEVEL`, the same contract as
//! wdk-alloc's, which Rust code in an ISR must not break (it allocates nothing there; the
//! simulator counts and stops on it).

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::null_mut;

use super::{POOL_FLAG_NON_PAGED, POOL_FLAG_UNINITIALIZED, POOL_FLAGS, ntddk};

/// The driver's pool tag, `RHCA` as `poolmon` and `!pool` print it (the tag's bytes in memory
/// order, hence little-endian).
pub const POOL_TAG: u32 = u32::from_le_bytes(*b"RHCA");

/// What pool guarantees every block (`MEMORY_ALLOCATION_ALIGNMENT`: 16 bytes on x64).
const POOL_ALIGNMENT: usize = 16;

/// Non-paged pool tagged [`POOL_TAG`] as the global allocator (see the module documentation).
#[derive(Debug, Clone, Copy, Default)]
pub struct PoolAllocator;

impl PoolAllocator {
    fn allocate(layout: Layout, flags: POOL_FLAGS) -> *mut u8 {
        // Pool aligns to 16 bytes and no further: a stricter layout gets no memory rather than
        // misaligned memory.
        if layout.align() > POOL_ALIGNMENT {
            return null_mut();
        }
        // SAFETY: pool allocation has no pointer preconditions; the caller is at
        // `<= DISPATCH_LEVEL` (the allocator's contract).
        unsafe { ntddk::ExAllocatePool2(flags, layout.size() as u64, POOL_TAG) }.cast()
    }
}

// SAFETY: blocks come from pool, which never unwinds, and are at least `layout.size()` bytes
// aligned to 16 (larger alignments are refused); each is freed once, with the tag it was
// allocated with.
unsafe impl GlobalAlloc for PoolAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::allocate(layout, POOL_FLAG_NON_PAGED | POOL_FLAG_UNINITIALIZED)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // ExAllocatePool2 zeroes unless told not to.
        Self::allocate(layout, POOL_FLAG_NON_PAGED)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from `alloc` or `alloc_zeroed` above (the caller's contract), so it
        // is a live pool block with this tag.
        unsafe { ntddk::ExFreePoolWithTag(ptr.cast(), POOL_TAG) };
    }
}
