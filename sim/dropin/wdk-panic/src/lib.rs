//! `wdk-panic` on the simulated machine: nothing. On Windows, wdk-panic 0.5.0 is the driver's
//! `#[panic_handler]` (a breakpoint in debug builds, then `KeBugCheckEx` with code `RPNC`). A
//! driver on the simulated machine is linked into a host program whose standard library
//! already has a panic handler, so this crate defines none: a driver's `extern crate
//! wdk_panic;` resolves, and a panic in driver code fails the test that ran it.
//!
//! # Safety story
//! No code, no `unsafe`.

#![no_std]
