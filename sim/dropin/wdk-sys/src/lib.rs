//! `wdk-sys` on the simulated machine: wdk-sim's kernel surface under wdk-sys 0.5.2's crate
//! name and module layout, so that a windows-drivers-rs driver builds and runs on Linux with
//! only a `[patch.crates-io]` block in its workspace (README, "Run your own windows-drivers-rs
//! driver on Linux").
//!
//! What it owns: nothing of its own. The types, `#define` constants and hand-written
//! constants are wdk-sim's, which are wdk-sys's by construction (generated from the same
//! bindings and checked against wdk-sys's published source: `docs/sim-fidelity.md` §1); the
//! routines are wdk-sim's (`ntddk`), the WDF methods are reached with the same
//! `call_unsafe_wdf_function_binding!` syntax, and `PAGED_CODE!` and `WdfDriverGlobals` are
//! where wdk-sys has them. What a driver may use here and what is not simulated yet is listed
//! in `docs/sim-fidelity.md`, "Running other drivers".
//!
//! # Safety story
//! No `unsafe` of its own: everything is a re-export of wdk-sim, whose routines carry their
//! own contracts (those of the C routines they model).

#![no_std]

pub use wdk_sim::call_unsafe_wdf_function_binding;
pub use wdk_sim::constants::*;
pub use wdk_sim::types::*;
pub use wdk_sim::wdf::WdfDriverGlobals;
pub use wdk_sim::{NT_ERROR, NT_INFORMATION, NT_SUCCESS, NT_WARNING};

/// The kernel routines (`wdk_sys::ntddk`): wdk-sim's, with wdk-sys's names and signatures.
pub mod ntddk {
    pub use wdk_sim::ntddk::*;
}

/// `PAGED_CODE()`, as wdk-sys 0.5.2 defines it.
///
/// In a debug build, a debug assertion that the current IRQL is at most `APC_LEVEL` (wdk-sim
/// tracks the IRQL of every simulated CPU, so a pageable routine called at `DISPATCH_LEVEL`
/// fails it).
#[macro_export]
macro_rules! PAGED_CODE {
    () => {
        debug_assert!(
            // SAFETY: KeGetCurrentIrql has no preconditions.
            unsafe { $crate::ntddk::KeGetCurrentIrql() <= $crate::APC_LEVEL as u8 }
        );
    };
}
