//! The KMDF statuses of `wdfstatus.h` (KMDF 1.33, l.81–270) that the simulated framework returns.
//!
//! They are not in wdk-sys: bindgen skips their `((NTSTATUS)0xC0200209L)` cast macros, and
//! wdk-sys's hand-written `constants.rs` lists only `ntstatus.h`. A driver that compares a status
//! with one of them defines it itself; this module is wdk-sim's, not part of the mirrored surface.

use crate::types::NTSTATUS;

const fn s(v: u32) -> NTSTATUS {
    // NTSTATUS values are 32-bit patterns; reinterpretation is intended.
    v.cast_signed()
}

/// `STATUS_WDF_OBJECT_ATTRIBUTES_INVALID` (0xC0200209).
pub const STATUS_WDF_OBJECT_ATTRIBUTES_INVALID: NTSTATUS = s(0xC020_0209);
/// `STATUS_WDF_NO_CALLBACK` (0xC020020B).
pub const STATUS_WDF_NO_CALLBACK: NTSTATUS = s(0xC020_020B);
/// `STATUS_WDF_PARENT_ASSIGNMENT_NOT_ALLOWED` (0xC020020F).
pub const STATUS_WDF_PARENT_ASSIGNMENT_NOT_ALLOWED: NTSTATUS = s(0xC020_020F);
/// `STATUS_WDF_SYNCHRONIZATION_SCOPE_INVALID` (0xC0200210).
pub const STATUS_WDF_SYNCHRONIZATION_SCOPE_INVALID: NTSTATUS = s(0xC020_0210);
/// `STATUS_WDF_EXECUTION_LEVEL_INVALID` (0xC0200211).
pub const STATUS_WDF_EXECUTION_LEVEL_INVALID: NTSTATUS = s(0xC020_0211);
/// `STATUS_WDF_PARENT_NOT_SPECIFIED` (0xC0200212).
pub const STATUS_WDF_PARENT_NOT_SPECIFIED: NTSTATUS = s(0xC020_0212);
