//! wdk-sys's `#define` constants at the types the simulator's own code compares them with.
//!
//! bindgen gives every integer `#define` the type `u32`, so wdk-sys's (and wdk-sim's generated)
//! `TRUE`, `DISPATCH_LEVEL` and `MDL_MAPPED_TO_SYSTEM_VA` are `u32`, while the kernel stores them
//! in `BOOLEAN`, `KIRQL` and `CSHORT` (`MdlFlags`). A driver must convert where it uses them
//! (the RHCA driver does so in `sys.rs`); the simulator's internals import these narrowed
//! copies instead (and so do its tests; this module is not part of the wdk-sys surface, and
//! a driver that used it would fail the Windows check). Each is the generated value, narrowed at compile time (a value that does not
//! fit fails the build), so none can drift from wdk-sys.

use crate::types::{BOOLEAN, CSHORT, KIRQL};

const fn to_u8(v: u32) -> u8 {
    assert!(v <= u8::MAX as u32, "does not fit a u8");
    v as u8
}

const fn to_i16(v: u32) -> i16 {
    assert!(v <= i16::MAX as u32, "does not fit a CSHORT");
    v as i16
}

/// `TRUE` as a `BOOLEAN`.
pub const TRUE: BOOLEAN = to_u8(crate::types::TRUE);
/// `FALSE` as a `BOOLEAN`.
pub const FALSE: BOOLEAN = to_u8(crate::types::FALSE);

/// `PASSIVE_LEVEL` as a `KIRQL`.
pub const PASSIVE_LEVEL: KIRQL = to_u8(crate::types::PASSIVE_LEVEL);
/// `APC_LEVEL` as a `KIRQL`.
pub const APC_LEVEL: KIRQL = to_u8(crate::types::APC_LEVEL);
/// `DISPATCH_LEVEL` as a `KIRQL`.
pub const DISPATCH_LEVEL: KIRQL = to_u8(crate::types::DISPATCH_LEVEL);
/// `HIGH_LEVEL` as a `KIRQL`.
pub const HIGH_LEVEL: KIRQL = to_u8(crate::types::HIGH_LEVEL);

/// `MDL_MAPPED_TO_SYSTEM_VA` as a `CSHORT`.
pub const MDL_MAPPED_TO_SYSTEM_VA: CSHORT = to_i16(crate::types::MDL_MAPPED_TO_SYSTEM_VA);
/// `MDL_PAGES_LOCKED` as a `CSHORT`.
pub const MDL_PAGES_LOCKED: CSHORT = to_i16(crate::types::MDL_PAGES_LOCKED);
/// `MDL_SOURCE_IS_NONPAGED_POOL` as a `CSHORT`.
pub const MDL_SOURCE_IS_NONPAGED_POOL: CSHORT = to_i16(crate::types::MDL_SOURCE_IS_NONPAGED_POOL);
/// `MDL_ALLOCATED_FIXED_SIZE` as a `CSHORT`.
pub const MDL_ALLOCATED_FIXED_SIZE: CSHORT = to_i16(crate::types::MDL_ALLOCATED_FIXED_SIZE);
/// `MDL_PARTIAL` as a `CSHORT`.
pub const MDL_PARTIAL: CSHORT = to_i16(crate::types::MDL_PARTIAL);
/// `MDL_WRITE_OPERATION` as a `CSHORT`.
pub const MDL_WRITE_OPERATION: CSHORT = to_i16(crate::types::MDL_WRITE_OPERATION);

/// A wdk-sys record kept in a simulator structure that derives `Debug`, where wdk-sys derives
/// none (`_DEVICE_OBJECT`, `_WDF_IO_QUEUE_CONFIG`, `_CM_PARTIAL_RESOURCE_DESCRIPTOR`: bindgen
/// derives no `Debug` for records with unions or long callback lists). Prints the type name.
#[derive(Clone, Copy, Default)]
#[repr(transparent)]
pub(crate) struct NoDebug<T>(pub(crate) T);

impl<T> core::fmt::Debug for NoDebug<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(core::any::type_name::<T>())
    }
}

impl<T> core::ops::Deref for NoDebug<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> core::ops::DerefMut for NoDebug<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}
