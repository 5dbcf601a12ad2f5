//! The mirrored `wdk-sys` type surface: the generated crate `wdk-sim-bindings`.
//!
//! It is cut from the same bindings wdk-build generates for `x86_64-pc-windows-msvc` (see its
//! crate docs and `docs/sim-fidelity.md`, "The Windows build on Linux"). Nothing here is
//! written by hand: to mirror another wdk-sys item, name it in `sim/bindings/roots.txt` and
//! regenerate.

pub use wdk_sim_bindings::*;
