//! Safe RAII layers over the HAL's DMA surface: where the driver's DMA `unsafe` lives.
//!
//! - [`Adapter`]: the `DMA_ADAPTER` from `IoGetDmaAdapter` on the PDO (version 3 description,
//!   version 2 when 3 is refused); checks the operations table's `Size` before it uses a newer
//!   member; `PutDmaAdapter` when the last user is gone.
//! - [`CommonBuffer`]: `AllocateCommonBuffer` memory (rings, page lists, descriptor tables),
//!   freed with exactly the allocation's arguments on drop. The device sees it for its whole life,
//!   so the CPU never gets a `&mut` to it: only copies in and out, and an `Acquire` load of an
//!   owner byte.
//! - [`DmaBuffer`]: driver-owned non-paged pool with its MDL, for MADs — CPU-owned: `&mut [u8]`.
//! - [`SgMapping`]: a [`DmaBuffer`] mapped for the device with `GetScatterGatherList`; it owns
//!   the buffer while mapped (the CPU cannot touch it) and gives it back at
//!   [`SgMapping::unmap`] (`PutScatterGatherList`, same direction). Dropping a mapping unmaps it.
//!
//! - [`UserBuffer`]: the locked MDL of a stream's direct-I/O request, cut into segments (partial
//!   MDLs), with the per-segment flushes of the persistent strategy and the staging copies.
//! - [`MdlCommonBuffer`]: `CreateCommonBufferFromMdl` over a [`UserBuffer`].
//! - [`Adapter::map_range`]: a synchronous `GetScatterGatherListEx` over part of a
//!   [`UserBuffer`] (the persistent mapping, or one segment).
//!
//! Teardown order is enforced by ownership: every buffer and mapping holds the adapter
//! (reference-counted), so `PutDmaAdapter` runs after the last of them is released.
//!
//! # Safety story
//! Each `unsafe` block calls one HAL routine through the adapter's operations table with
//! arguments this module created and still owns (the adapter, an MDL, a list, a buffer and its
//! logical address), or reads/writes memory this module allocated within its length. The
//! routines' IRQL rules are carried by types: mapping needs an [`crate::sys::AtDispatch`] proof.

/// Byte offset of the end of a `DMA_OPERATIONS` member, to compare with the table's `Size`
/// (a table from an older HAL stops before the routines it does not have). Every member is a
/// function pointer, so its end is its offset plus a pointer.
macro_rules! ops_member_end {
    ($field:ident) => {
        core::mem::offset_of!(crate::sys::DMA_OPERATIONS, $field) + core::mem::size_of::<usize>()
    };
}

mod adapter;
mod buffer;
mod common;
mod sg;
mod user;

pub use adapter::Adapter;
pub use buffer::{DmaBuffer, TAG_MAD};
pub use common::{CommonBuffer, MdlCommonBuffer};
pub use sg::{MapOutcome, PendingMapping, SgMapping, TransferContext};
pub use user::UserBuffer;

use crate::sys::NTSTATUS;

/// Why a DMA resource could not be obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DmaError {
    /// `IoGetDmaAdapter` returned NULL for every description version tried.
    NoAdapter,
    /// The adapter's operations table lacks a routine this driver needs.
    MissingRoutine(&'static str),
    /// `AllocateCommonBuffer` returned NULL.
    NoCommonBuffer {
        /// Bytes asked for.
        len: u32,
    },
    /// Pool or an MDL could not be allocated.
    NoMemory,
    /// A mapping routine failed.
    Map(NTSTATUS),
    /// A length outside what the adapter or the buffer allows.
    BadLength(usize),
}

/// Which way data move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Memory → device (a send).
    ToDevice,
    /// Device → memory (a receive).
    FromDevice,
}

impl Direction {
    /// The `WriteToDevice` argument of the mapping routines.
    #[must_use]
    pub const fn write_to_device(self) -> u8 {
        match self {
            Self::ToDevice => 1,
            Self::FromDevice => 0,
        }
    }
}
