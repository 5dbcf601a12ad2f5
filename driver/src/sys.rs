//! The single platform switch of the RHCA driver.
//!
//! Every other driver file reaches the kernel through `crate::sys::…`, with the C names exactly
//! as bindgen emits them in `wdk-sys`. On Windows that is `wdk_sys` itself; on every other host
//! it is `wdk_sim`, which mirrors the same names, field names, module paths and signatures
//! (see `docs/sim-fidelity.md` for the differences). This is the only file of the driver that
//! contains `cfg(windows)`, apart from the crate-root attributes in `lib.rs`.
//!
//! The few helpers that `wdk-sys` does not generate (inline functions and function-like macros
//! of the WDK headers: register access, MDL macros, `WDF_*_INIT`) will be written here, once,
//! for both platforms, as the driver needs them.

#[cfg(windows)]
pub use wdk_sys::*;

#[cfg(not(windows))]
pub use wdk_sim::*;
