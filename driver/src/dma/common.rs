//! Common buffers: memory the device and the CPU share for the buffer's whole life.

use alloc::sync::Arc;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU8, Ordering};

use super::adapter::AdapterInner;
use super::{Adapter, DmaError, UserBuffer};
use crate::sys::{BOOLEAN_TRUE, NT_SUCCESS, PHYSICAL_ADDRESS};

/// An `AllocateCommonBuffer` allocation (cached; the HAL makes it coherent where the platform
/// is not).
///
/// Freed on drop with exactly the arguments of the allocation (length, logical
/// address, virtual address, `CacheEnabled`), as Driver Verifier demands.
///
/// The device may read or write any byte at any time while the buffer lives, so the CPU side
/// works with copies ([`CommonBuffer::read`], [`CommonBuffer::write`]) and one-byte atomic
/// loads and stores for owner bits — never a `&mut [u8]`.
#[derive(Debug)]
pub struct CommonBuffer {
    adapter: Arc<AdapterInner>,
    va: NonNull<u8>,
    logical: u64,
    len: u32,
}

// SAFETY: the buffer is shared memory accessed only by copies and atomics; the adapter is Sync.
unsafe impl Send for CommonBuffer {}
// SAFETY: as above: `&CommonBuffer` exposes only copy and atomic access.
unsafe impl Sync for CommonBuffer {}

impl Adapter {
    /// `AllocateCommonBuffer(len, CacheEnabled = TRUE)`, zeroed. Call at `PASSIVE_LEVEL`.
    ///
    /// # Errors
    /// [`DmaError::NoCommonBuffer`].
    pub fn common_buffer(&self, len: u32) -> Result<CommonBuffer, DmaError> {
        let alloc = self
            .inner
            .ops
            .AllocateCommonBuffer
            .ok_or(DmaError::MissingRoutine("AllocateCommonBuffer"))?;
        let mut la = PHYSICAL_ADDRESS::default();
        // SAFETY: a live adapter and a live out parameter.
        let va = unsafe { alloc(self.inner.ptr(), len, &raw mut la, BOOLEAN_TRUE) };
        let va = NonNull::new(va.cast::<u8>()).ok_or(DmaError::NoCommonBuffer { len })?;
        // SAFETY: every bit pattern of the union is a valid LONGLONG.
        let logical = unsafe { la.QuadPart }.cast_unsigned();
        let b = CommonBuffer {
            adapter: self.inner.clone(),
            va,
            logical,
            len,
        };
        b.fill(0);
        Ok(b)
    }
}

impl CommonBuffer {
    /// The CPU address (for copies inside this module).
    pub(super) const fn va(&self) -> NonNull<u8> {
        self.va
    }

    /// The logical address to give the device.
    #[must_use]
    pub const fn logical(&self) -> u64 {
        self.logical
    }

    /// Length in bytes.
    #[must_use]
    pub const fn len(&self) -> u32 {
        self.len
    }

    /// Whether the buffer is empty (never, for a successful allocation).
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn check(&self, offset: usize, n: usize) -> bool {
        offset
            .checked_add(n)
            .is_some_and(|end| end <= self.len as usize)
    }

    /// Copies `out.len()` bytes at `offset` out of the buffer.
    ///
    /// # Panics
    /// When the range is outside the buffer (a driver bug, not a device one: offsets come from
    /// the driver's own ring arithmetic).
    pub fn read(&self, offset: usize, out: &mut [u8]) {
        assert!(
            self.check(offset, out.len()),
            "common buffer read out of range"
        );
        // SAFETY: the range is inside the allocation (checked); the source may change under
        // the device's writes, which a byte copy tolerates (the owner-bit protocol decides
        // whether the bytes are meaningful).
        unsafe {
            core::ptr::copy_nonoverlapping(
                self.va.as_ptr().wrapping_add(offset),
                out.as_mut_ptr(),
                out.len(),
            );
        }
    }

    /// Copies `data` into the buffer at `offset`.
    ///
    /// # Panics
    /// When the range is outside the buffer.
    pub fn write(&self, offset: usize, data: &[u8]) {
        assert!(
            self.check(offset, data.len()),
            "common buffer write out of range"
        );
        // SAFETY: the range is inside the allocation (checked); the driver writes only slots
        // it owns by the ring protocol.
        unsafe {
            core::ptr::copy_nonoverlapping(
                data.as_ptr(),
                self.va.as_ptr().wrapping_add(offset),
                data.len(),
            );
        }
    }

    /// Fills the whole buffer with `byte` (rings are zeroed before a queue is created).
    pub const fn fill(&self, byte: u8) {
        // SAFETY: the whole allocation, which this buffer owns.
        unsafe { core::ptr::write_bytes(self.va.as_ptr(), byte, self.len as usize) };
    }

    /// The byte at `offset` read with `Acquire` ordering: an owner byte the device writes last.
    ///
    /// # Panics
    /// When `offset` is outside the buffer.
    #[must_use]
    pub fn load_acquire(&self, offset: usize) -> u8 {
        assert!(self.check(offset, 1), "common buffer load out of range");
        // SAFETY: inside the allocation (checked); u8 has no alignment requirement and the
        // memory lives as long as `self`.
        let cell = unsafe { AtomicU8::from_ptr(self.va.as_ptr().wrapping_add(offset)) };
        cell.load(Ordering::Acquire)
    }
}

impl Drop for CommonBuffer {
    fn drop(&mut self) {
        // SAFETY: the arguments of this allocation, freed once.
        unsafe { free_common(&self.adapter, self.len, self.logical, self.va) };
    }
}

/// `FreeCommonBuffer(len, logical, va, CacheEnabled = TRUE)`, at `PASSIVE_LEVEL`.
///
/// # Safety
/// The arguments must be exactly those of a live common buffer of `adapter` (allocated or made
/// from an MDL), freed once.
unsafe fn free_common(adapter: &AdapterInner, len: u32, logical: u64, va: NonNull<u8>) {
    if let Some(free) = adapter.ops.FreeCommonBuffer {
        // SAFETY: the caller's contract; the adapter outlives the call (the buffer holds a
        // reference to it).
        unsafe {
            free(
                adapter.ptr(),
                len,
                PHYSICAL_ADDRESS {
                    QuadPart: logical.cast_signed(),
                },
                va.as_ptr().cast(),
                BOOLEAN_TRUE,
            );
        }
    }
}

/// A common buffer made over the caller's own pages with `CreateCommonBufferFromMdl`.
///
/// The device reaches the application's buffer at one logical address for the stream's life,
/// with no map registers and no double buffer, so only processor caches need maintenance.
///
/// Freed (`FreeCommonBuffer` with the system address) on drop, at `PASSIVE_LEVEL`, which must
/// happen before the request whose MDL it was made from is completed.
#[derive(Debug)]
pub struct MdlCommonBuffer {
    adapter: Arc<AdapterInner>,
    sys: NonNull<u8>,
    logical: u64,
    len: u32,
}

// SAFETY: the value only names the allocation; the CPU reaches the bytes through the
// `UserBuffer` it was made from.
unsafe impl Send for MdlCommonBuffer {}

/// Byte offset of the end of `DMA_OPERATIONS::CreateCommonBufferFromMdl`.
const CREATE_FROM_MDL_END: usize =
    core::mem::offset_of!(crate::sys::DMA_OPERATIONS, CreateCommonBufferFromMdl)
        + core::mem::size_of::<usize>();

impl Adapter {
    /// Whether the operations table holds `CreateCommonBufferFromMdl` (Windows Server 2022 and
    /// later version 3 tables).
    #[must_use]
    pub fn has_common_buffer_from_mdl(&self) -> bool {
        self.inner.ops.Size as usize >= CREATE_FROM_MDL_END
            && self.inner.ops.CreateCommonBufferFromMdl.is_some()
    }

    /// `CreateCommonBufferFromMdl` over the whole of `user`. Call at `PASSIVE_LEVEL`.
    ///
    /// # Errors
    /// [`DmaError::MissingRoutine`]; [`DmaError::Map`] with the routine's status: the platform
    /// refuses when the pages are not page aligned, or, without DMA remapping, not physically
    /// contiguous and within the device's reach (windows-dma.md §9).
    pub fn common_buffer_from_mdl(&self, user: &UserBuffer) -> Result<MdlCommonBuffer, DmaError> {
        if !self.has_common_buffer_from_mdl() {
            return Err(DmaError::MissingRoutine("CreateCommonBufferFromMdl"));
        }
        let create = self
            .inner
            .ops
            .CreateCommonBufferFromMdl
            .ok_or(DmaError::MissingRoutine("CreateCommonBufferFromMdl"))?;
        let mut la = PHYSICAL_ADDRESS::default();
        // SAFETY: a live adapter; the request's locked, system-mapped MDL; no extended
        // configuration; a live out parameter.
        let st = unsafe {
            create(
                self.inner.ptr(),
                user.mdl(),
                core::ptr::null_mut(),
                0,
                &raw mut la,
            )
        };
        if !NT_SUCCESS(st) {
            return Err(DmaError::Map(st));
        }
        // SAFETY: every bit pattern of the union is a valid LONGLONG.
        let logical = unsafe { la.QuadPart }.cast_unsigned();
        Ok(MdlCommonBuffer {
            adapter: self.inner.clone(),
            sys: user.system_va(),
            logical,
            len: user.len(),
        })
    }
}

impl MdlCommonBuffer {
    /// The logical address of byte 0 of the buffer.
    #[must_use]
    pub const fn logical(&self) -> u64 {
        self.logical
    }
}

impl Drop for MdlCommonBuffer {
    fn drop(&mut self) {
        // SAFETY: the buffer made by CreateCommonBufferFromMdl, freed once with its length,
        // logical address and system address (windows-dma.md §2.4).
        unsafe { free_common(&self.adapter, self.len, self.logical, self.sys) };
    }
}
