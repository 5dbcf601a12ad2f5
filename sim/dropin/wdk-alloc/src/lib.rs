//! `wdk-alloc` on the simulated machine: [`WdkAllocator`], the global allocator a
//! windows-drivers-rs driver installs, as wdk-sim's watched driver heap.
//!
//! On Windows, wdk-alloc 0.4.2's `WdkAllocator` is `ExAllocatePool2(POOL_FLAG_NON_PAGED, size,
//! 'rust')` and `ExFreePool`. In a test process the global allocator serves every thread
//! (the test harness's too), so this one is [`wdk_sim::RustPoolHeap`]: it serves from the host
//! heap and holds the driver's own code to non-paged pool's rule (an allocation or free above
//! `DISPATCH_LEVEL` stops the machine with 0xC4, 0xA without Verifier; allocations in DPCs,
//! timers and ISRs are counted), and it counts every block the driver allocates against its
//! machine until freed, so that a block still live when the driver unloads is Driver
//! Verifier's pool leak (0xC4/0x62) as a `rust`-tagged pool block would be on Windows.
//!
//! # Safety story
//! Every method forwards to [`wdk_sim::RustPoolHeap`] with the caller's arguments, under the
//! caller's `GlobalAlloc` contract.

#![no_std]

use core::alloc::{GlobalAlloc, Layout};

/// The allocator a driver names in `#[global_allocator]`, as with wdk-alloc.
#[derive(Debug, Clone, Copy, Default)]
pub struct WdkAllocator;

// SAFETY: forwards every call to `RustPoolHeap`, a correct `GlobalAlloc`, unchanged.
unsafe impl GlobalAlloc for WdkAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        unsafe { wdk_sim::RustPoolHeap.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on; the block came from `alloc` above.
        unsafe { wdk_sim::RustPoolHeap.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        unsafe { wdk_sim::RustPoolHeap.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        unsafe { wdk_sim::RustPoolHeap.realloc(ptr, layout, new_size) }
    }
}
