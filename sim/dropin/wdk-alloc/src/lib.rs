//! `wdk-alloc` on the simulated machine: [`WdkAllocator`], the global allocator a
//! windows-drivers-rs driver installs, as wdk-sim's watched driver heap.
//!
//! On Windows, wdk-alloc 0.4.2's `WdkAllocator` is `ExAllocatePool2(POOL_FLAG_NON_PAGED, size,
//! 'rust')` and `ExFreePool`. In a test process the global allocator serves every thread
//! (the test harness's too), so this one serves from the host heap like
//! [`wdk_sim::DriverHeap`] and holds the driver's own code to non-paged pool's rule: an
//! allocation or free above `DISPATCH_LEVEL` stops the machine with 0xC4 (0xA without
//! Verifier), and allocations in DPCs, timers and ISRs are counted
//! (`Machine::dpc_allocations`). Difference, listed in `docs/sim-fidelity.md`: these blocks
//! are not in the simulated pool, so they are not tagged `rust` there and a leak of one at
//! unload is not reported.
//!
//! # Safety story
//! Every method forwards to [`wdk_sim::DriverHeap`] with the caller's arguments, under the
//! caller's `GlobalAlloc` contract.

#![no_std]

use core::alloc::{GlobalAlloc, Layout};

/// The allocator a driver names in `#[global_allocator]`, as with wdk-alloc.
#[derive(Debug, Clone, Copy, Default)]
pub struct WdkAllocator;

// SAFETY: forwards every call to `DriverHeap`, a correct `GlobalAlloc`, unchanged.
unsafe impl GlobalAlloc for WdkAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        unsafe { wdk_sim::DriverHeap.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on; the block came from `alloc` above.
        unsafe { wdk_sim::DriverHeap.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        unsafe { wdk_sim::DriverHeap.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        unsafe { wdk_sim::DriverHeap.realloc(ptr, layout, new_size) }
    }
}
