//! `wdk-sim-bindings`: the wdk-sys items wdk-sim mirrors, as wdk-sys generates them.
//!
//! `src/generated.rs` is written by `tools/wdk-bindings` (`rhca-wdk-bindings sim`, run by
//! `.ci/windows-check`, which fails when the file in the repository differs from a fresh run):
//! the items named in `roots.txt`, every item they mention, and every type wdk-sim's routines
//! mention, copied from the bindings that bindgen 0.73.2 gives with wdk-build 0.6.0's settings
//! for `x86_64-pc-windows-msvc` (Debian's mingw-w64 DDK headers, our v3 DMA header, the KMDF 1.33
//! fact table). Names, module paths (`_X::Type` enums at the root), field order, bindgen's
//! padding fields, derives, layout assertions and the absence of `Sync`/`Send` impls are
//! therefore wdk-sys's. The one rewrite is `c_ulong`/`c_long`, spelled `u32`/`i32` — their
//! widths on the Windows target, which a Linux host (LP64) does not share.
//!
//! # Safety story
//! The only `unsafe` here is bindgen's: the zeroing `Default` of records that cannot derive
//! one, and the accessors of `__IncompleteArrayField`, `__BindgenUnionField` and
//! `__BindgenBitfieldUnit`, exactly as wdk-sys has them.

#![no_std]
#![allow(
    non_camel_case_types,
    non_snake_case,
    non_upper_case_globals,
    unsafe_op_in_unsafe_fn,
    unused_imports,
    clippy::all,
    clippy::pedantic,
    clippy::nursery,
    clippy::cargo,
    clippy::undocumented_unsafe_blocks,
    clippy::multiple_unsafe_ops_per_block,
    clippy::ptr_as_ptr,
    clippy::ref_as_ptr,
    clippy::ptr_cast_constness,
    reason = "bindgen's output, kept as wdk-sys has it; wdk-sys allows the same lints on its generated modules"
)]

mod generated;

pub use generated::*;
