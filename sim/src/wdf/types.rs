//! The KMDF 1.33 types, as wdk-sys generates them: part of the generated crate
//! `wdk-sim-bindings` (re-exported here and at the crate root; see [`crate::types`]).

pub use wdk_sim_bindings::*;
