//! `wdk` on the simulated machine: the safe helpers of wdk 0.5.0 over the drop-in `wdk-sys`.
//!
//! - [`println!`] and [`print!`] format into a 512-byte buffer and hand each chunk to
//!   `DbgPrint("%s", …)`, as wdk does, so the text lands in the simulated machine's debug print
//!   buffer (where a test reads it) with `DbgPrint`'s IRQL rules;
//! - [`paged_code!`] and [`nt_success`] are wdk-sys's, re-exported as wdk re-exports them;
//! - [`wdf::SpinLock`] and [`wdf::Timer`] wrap `WdfSpinLock*` and `WdfTimer*` with wdk's
//!   signatures;
//! - [`dbg_break`] is the breakpoint a kernel debugger would take; the simulated machine has no
//!   debugger, so it stops as Windows does without one (`KMODE_EXCEPTION_NOT_HANDLED`, 0x1E, with
//!   `STATUS_BREAKPOINT`).
//!
//! # Safety story
//! The `unsafe` blocks call WDF methods and `DbgPrint` with handles this crate created and
//! buffers it owns; each says why beside it.

#![no_std]

pub use wdk_sys::NT_SUCCESS as nt_success;
pub use wdk_sys::PAGED_CODE as paged_code;

pub mod wdf;

mod print;

#[doc(hidden)]
pub use print::_print;

/// A breakpoint (`int 3` in wdk). With no kernel debugger attached — always, on the simulated
/// machine — Windows bug-checks with `KMODE_EXCEPTION_NOT_HANDLED` and `STATUS_BREAKPOINT`,
/// and so does this.
pub fn dbg_break() {
    wdk_sim::bugcheck::debugger_break();
}
