//! Driver-owned DMA-able buffers: non-paged pool described by an MDL.

use core::ptr::NonNull;

use super::DmaError;
use crate::sys::{BOOLEAN_FALSE, MDL, PMDL, POOL_FLAG_NON_PAGED, ntddk};

/// Pool tag of MAD buffers ('Rmad').
pub const TAG_MAD: u32 = u32::from_le_bytes(*b"Rmad");

/// Non-paged pool of `len` bytes with an MDL built for it.
///
/// While the driver holds a
/// `DmaBuffer` the CPU owns the bytes ([`DmaBuffer::as_mut_slice`]); mapping it for the device
/// moves it into an [`super::SgMapping`] until the mapping is released.
#[derive(Debug)]
pub struct DmaBuffer {
    va: NonNull<u8>,
    len: u32,
    mdl: NonNull<MDL>,
}

// SAFETY: the buffer is plain memory owned by this value; the MDL only describes it.
unsafe impl Send for DmaBuffer {}

impl DmaBuffer {
    /// Allocates `len` zeroed bytes of non-paged pool and builds their MDL
    /// (`ExAllocatePool2`, `IoAllocateMdl`, `MmBuildMdlForNonPagedPool`). `<= DISPATCH_LEVEL`.
    ///
    /// # Errors
    /// [`DmaError::NoMemory`], [`DmaError::BadLength`] for 0 bytes.
    pub fn new(len: u32, tag: u32) -> Result<Self, DmaError> {
        if len == 0 {
            return Err(DmaError::BadLength(0));
        }
        // SAFETY: pool allocation has no pointer preconditions.
        let p = unsafe { ntddk::ExAllocatePool2(POOL_FLAG_NON_PAGED, u64::from(len), tag) };
        let va = NonNull::new(p.cast::<u8>()).ok_or(DmaError::NoMemory)?;
        // SAFETY: `va .. va + len` is the pool block just allocated; the MDL only records it.
        let mdl = unsafe {
            ntddk::IoAllocateMdl(p, len, BOOLEAN_FALSE, BOOLEAN_FALSE, core::ptr::null_mut())
        };
        let Some(mdl) = NonNull::new(mdl) else {
            // SAFETY: the block allocated above, freed once.
            unsafe { ntddk::ExFreePool(p) };
            return Err(DmaError::NoMemory);
        };
        // SAFETY: the MDL describes non-paged pool.
        unsafe { ntddk::MmBuildMdlForNonPagedPool(mdl.as_ptr()) };
        Ok(Self { va, len, mdl })
    }

    /// Length in bytes.
    #[must_use]
    pub const fn len(&self) -> u32 {
        self.len
    }

    /// Whether the buffer is empty (never).
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes, owned by the CPU while the buffer is not mapped.
    #[must_use]
    pub const fn as_slice(&self) -> &[u8] {
        // SAFETY: the allocation is `len` bytes, initialised (pool from ExAllocatePool2 is
        // zeroed unless POOL_FLAG_UNINITIALIZED), and no device may write it while this value is
        // not inside a mapping.
        unsafe { core::slice::from_raw_parts(self.va.as_ptr(), self.len as usize) }
    }

    /// The bytes, mutably.
    #[must_use]
    pub const fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as for `as_slice`, and `&mut self` makes the access exclusive.
        unsafe { core::slice::from_raw_parts_mut(self.va.as_ptr(), self.len as usize) }
    }

    pub(super) const fn mdl(&self) -> PMDL {
        self.mdl.as_ptr()
    }

    pub(super) const fn va(&self) -> *mut u8 {
        self.va.as_ptr()
    }
}

impl Drop for DmaBuffer {
    fn drop(&mut self) {
        // SAFETY: the MDL built in `new`, freed once (its pages were never locked: pool MDL).
        unsafe { ntddk::IoFreeMdl(self.mdl.as_ptr()) };
        // SAFETY: the pool block allocated in `new`, freed once, after its MDL.
        unsafe { ntddk::ExFreePool(self.va.as_ptr().cast()) };
    }
}
