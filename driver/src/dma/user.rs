//! The caller's circular buffer: the locked MDL of a direct-I/O request, seen segment by segment.
//!
//! A stream's buffer belongs to the application. The I/O manager probed and locked its pages
//! when it built the `METHOD_OUT_DIRECT`/`IN_DIRECT` request, and unlocks them when the request
//! is completed; the driver keeps the request pending for the stream's life so the pages stay
//! put. [`UserBuffer`] borrows that MDL: it maps the pages into system space (the
//! `MmGetSystemAddressForMdlSafe` body, which wdk-sys does not generate) for staging copies and
//! `CreateCommonBufferFromMdl`, and builds one partial MDL per segment (`IoBuildPartialMdl`) so
//! that a flush names exactly one segment's bytes and never bytes the device may be writing.
//!
//! # Safety story
//! The MDL outlives this value by construction: [`UserBuffer`] holds the (non-`Copy`) request
//! and gives it back, to be completed, only from [`UserBuffer::into_request`], after the partial
//! MDLs are freed; the stream releases every mapping made over the pages before that. The application may write the buffer at
//! any time, so the driver never forms a Rust reference to it: copies go through raw pointers,
//! and only for segments the stream's credit protocol says the driver owns.

use alloc::vec::Vec;
use core::ptr::NonNull;

use super::{Adapter, CommonBuffer, DmaError};
use crate::sys::wdf::Request;
use crate::sys::{
    _MEMORY_CACHING_TYPE, _MODE, BOOLEAN_FALSE, FALSE, MDL, MDL_MAPPED_TO_SYSTEM_VA,
    MDL_SOURCE_IS_NONPAGED_POOL, MdlMappingNoExecute, NORMAL_PAGE_PRIORITY, NT_SUCCESS, PMDL,
    PVOID, ntddk,
};

/// A direct-I/O buffer cut into equal segments.
#[derive(Debug)]
pub struct UserBuffer {
    // Field order is teardown order: the partial MDLs go before the request is handed back.
    m: Mapping,
    /// The direct-I/O request whose MDL this is; it stays pending while this value lives,
    /// because the only way out is [`UserBuffer::into_request`].
    request: Request,
}

/// The borrowed MDL, its system mapping and the partial MDLs over it.
#[derive(Debug)]
struct Mapping {
    partials: Partials,
    mdl: NonNull<MDL>,
    sys: NonNull<u8>,
    len: u32,
    seg: u32,
    page_aligned: bool,
}

/// One partial MDL per segment, freed on drop.
#[derive(Debug)]
struct Partials(Vec<NonNull<MDL>>);

impl Drop for Partials {
    fn drop(&mut self) {
        for p in self.0.drain(..) {
            // SAFETY: a partial MDL built in `Mapping::new`, freed once (its pages belong to the
            // source MDL, which stays locked: a partial MDL is never unlocked itself).
            unsafe { ntddk::IoFreeMdl(p.as_ptr()) };
        }
        // The system mapping of the request's MDL is released by the I/O manager when it
        // completes the request (MmUnlockPages unmaps an MDL mapped to system space).
    }
}

// SAFETY: the MDL and the system mapping may be used from any CPU; this value owns the partial
// MDLs and only borrows the request's MDL (see `Mapping::new`).
unsafe impl Send for Mapping {}
// SAFETY: MDLs may be freed on any CPU; the list is owned and moved whole.
unsafe impl Send for Partials {}

impl UserBuffer {
    /// The output buffer of `request`, a pending `METHOD_OUT_DIRECT`/`IN_DIRECT` request the
    /// caller owns, cut into `seg_size`-byte segments. The request can be completed only after
    /// [`UserBuffer::into_request`] has released everything made over its pages.
    ///
    /// # Errors
    /// [`DmaError::BadLength`] when the request has no output MDL or the buffer is not a whole
    /// number of segments; [`DmaError::NoMemory`] when the system mapping or a partial MDL
    /// cannot be made. The request comes back with the error, still pending.
    pub fn for_request(request: Request, seg_size: u32) -> Result<Self, (Request, DmaError)> {
        let Ok(mdl) = request.output_mdl() else {
            return Err((request, DmaError::BadLength(0)));
        };
        // SAFETY: the framework's MDL of the request's output buffer, locked until the request
        // is completed; the request stays pending while the mapping lives, because this value
        // holds both and gives the request back only in `into_request`, which drops the
        // mapping first.
        match unsafe { Mapping::new(mdl, seg_size) } {
            Ok(m) => Ok(Self { m, request }),
            Err(e) => Err((request, e)),
        }
    }

    /// Releases the partial MDLs and gives the request back, to be completed.
    pub fn into_request(self) -> Request {
        let Self { m, request } = self;
        drop(m);
        request
    }

    /// The pending request (to mark it cancelable, or to find it again).
    pub const fn request(&self) -> &Request {
        &self.request
    }
}

impl Mapping {
    /// Borrows the request's MDL and cuts it into `seg_size`-byte segments. `<= DISPATCH_LEVEL`.
    ///
    /// # Errors
    /// [`DmaError::BadLength`] when the buffer is not a whole number of segments;
    /// [`DmaError::NoMemory`] when the system mapping or a partial MDL cannot be made.
    ///
    /// # Safety
    /// `mdl` must be the locked MDL of a direct-I/O request the caller owns (one MDL, not a
    /// chain), and the request must not be completed before this value is dropped.
    unsafe fn new(mdl: PMDL, seg_size: u32) -> Result<Self, DmaError> {
        let mdl = NonNull::new(mdl).ok_or(DmaError::NoMemory)?;
        // SAFETY: a live MDL (caller's contract); its header is plain data.
        let h = unsafe { mdl.as_ptr().read() };
        let len = h.ByteCount;
        if seg_size == 0 || len == 0 || !len.is_multiple_of(seg_size) || !h.Next.is_null() {
            return Err(DmaError::BadLength(len as usize));
        }
        // `MdlFlags` is a `CSHORT`; the `MDL_*` flags are `u32` `#define`s.
        let mapped = u32::from(h.MdlFlags.cast_unsigned())
            & (MDL_MAPPED_TO_SYSTEM_VA | MDL_SOURCE_IS_NONPAGED_POOL)
            != 0;
        let sys = if mapped {
            h.MappedSystemVa
        } else {
            // SAFETY: the MDL's pages are locked (caller's contract); a kernel-mode, cached,
            // no-execute mapping that may fail instead of bug checking.
            unsafe {
                ntddk::MmMapLockedPagesSpecifyCache(
                    mdl.as_ptr(),
                    _MODE::KernelMode as i8,
                    _MEMORY_CACHING_TYPE::MmCached,
                    core::ptr::null_mut(),
                    // `ULONG BugCheckOnFailure`: wdk-sys's `FALSE` has that type.
                    FALSE,
                    NORMAL_PAGE_PRIORITY | MdlMappingNoExecute,
                )
            }
        };
        let sys = NonNull::new(sys.cast::<u8>()).ok_or(DmaError::NoMemory)?;
        let va = h.StartVa.cast::<u8>().wrapping_add(h.ByteOffset as usize);
        // Built before the partial MDLs, so that a failure part-way frees those made so far.
        let mut partials = Partials(Vec::with_capacity((len / seg_size) as usize));
        for i in 0..len / seg_size {
            let at: PVOID = va.wrapping_add((i * seg_size) as usize).cast();
            // SAFETY: `at .. at + seg_size` lies inside the source MDL; IoAllocateMdl only sizes
            // the new MDL for it.
            let p = unsafe {
                ntddk::IoAllocateMdl(
                    at,
                    seg_size,
                    BOOLEAN_FALSE,
                    BOOLEAN_FALSE,
                    core::ptr::null_mut(),
                )
            };
            let Some(p) = NonNull::new(p) else {
                return Err(DmaError::NoMemory);
            };
            // SAFETY: a live source MDL and a target sized for the range, which lies inside it.
            unsafe { ntddk::IoBuildPartialMdl(mdl.as_ptr(), p.as_ptr(), at, seg_size) };
            partials.0.push(p);
        }
        Ok(Self {
            partials,
            mdl,
            sys,
            len,
            seg: seg_size,
            page_aligned: h.ByteOffset == 0,
        })
    }
}

impl UserBuffer {
    /// The request's MDL.
    pub(super) const fn mdl(&self) -> PMDL {
        self.m.mdl.as_ptr()
    }

    /// Segment `i`'s partial MDL.
    pub(super) fn segment_mdl(&self, i: u32) -> PMDL {
        self.m.partials.0[i as usize].as_ptr()
    }

    /// The system address of the whole buffer.
    pub(super) const fn system_va(&self) -> NonNull<u8> {
        self.m.sys
    }

    /// Bytes in the buffer.
    #[must_use]
    pub const fn len(&self) -> u32 {
        self.m.len
    }

    /// Whether the buffer is empty (never: `new` refuses it).
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.m.len == 0
    }

    /// Bytes per segment.
    #[must_use]
    pub const fn segment_size(&self) -> u32 {
        self.m.seg
    }

    /// Number of segments.
    #[must_use]
    pub const fn segments(&self) -> u32 {
        self.m.len / self.m.seg
    }

    /// Whether the buffer starts on a page boundary (`CreateCommonBufferFromMdl` needs it).
    #[must_use]
    pub const fn page_aligned(&self) -> bool {
        self.m.page_aligned
    }

    /// `FlushDmaBuffer` on segment `i` of a buffer mapped for the whole stream: after the device
    /// wrote the segment (`device_wrote`, `ReadOperation = TRUE`: the HAL copies a bounce or
    /// Verifier double buffer back and invalidates caches) or before it reads it (`FALSE`: the
    /// CPU's bytes are made visible to, or copied for, the device). `<= DISPATCH_LEVEL`.
    ///
    /// # Errors
    /// [`DmaError::MissingRoutine`] when the adapter's table lacks `FlushDmaBuffer`;
    /// [`DmaError::Map`] with the routine's status.
    pub fn flush_segment(
        &self,
        adapter: &Adapter,
        i: u32,
        device_wrote: bool,
    ) -> Result<(), DmaError> {
        if !adapter.has_flush_dma_buffer() {
            return Err(DmaError::MissingRoutine("FlushDmaBuffer"));
        }
        let Some(flush) = adapter.inner.ops.FlushDmaBuffer else {
            return Err(DmaError::MissingRoutine("FlushDmaBuffer"));
        };
        // SAFETY: a live adapter and the partial MDL of a segment of a buffer it has mapped.
        let st = unsafe {
            flush(
                adapter.inner.ptr(),
                self.segment_mdl(i),
                u8::from(device_wrote),
            )
        };
        if NT_SUCCESS(st) {
            Ok(())
        } else {
            Err(DmaError::Map(st))
        }
    }

    /// `KeFlushIoBuffers` on segment `i`: processor-cache maintenance only (no operation on
    /// x86/x64), for memory the device reaches without map registers. `<= DISPATCH_LEVEL`.
    pub fn cache_flush_segment(&self, i: u32, device_wrote: bool) {
        // SAFETY: the partial MDL of a segment of the locked buffer.
        unsafe { crate::sys::flush_io_buffers(self.segment_mdl(i), device_wrote) };
    }

    fn check(&self, i: u32, common: &CommonBuffer, offset: usize) {
        assert!(i < self.segments(), "segment index out of range");
        assert!(
            offset
                .checked_add(self.m.seg as usize)
                .is_some_and(|end| end <= common.len() as usize),
            "staging range out of the common buffer"
        );
    }

    /// Copies segment `i` out of `common` at `offset` (capture staging: the device filled the
    /// common buffer). The driver must own segment `i` (no credit for it outstanding).
    ///
    /// # Panics
    /// When `i` or the range is out of bounds (a driver bug).
    pub fn copy_from_common(&self, i: u32, common: &CommonBuffer, offset: usize) {
        self.check(i, common, offset);
        let dst = self.m.sys.as_ptr().wrapping_add((i * self.m.seg) as usize);
        // SAFETY: both ranges lie inside their buffers (checked) and do not overlap (one is user
        // memory, the other a common buffer); raw copies, because the application may touch its
        // buffer concurrently and the device may read the common buffer.
        unsafe {
            core::ptr::copy_nonoverlapping(
                common.va().as_ptr().wrapping_add(offset),
                dst,
                self.m.seg as usize,
            );
        }
    }

    /// Copies segment `i` into `common` at `offset` (playback staging: the application filled
    /// the segment and released it).
    ///
    /// # Panics
    /// When `i` or the range is out of bounds (a driver bug).
    pub fn copy_to_common(&self, i: u32, common: &CommonBuffer, offset: usize) {
        self.check(i, common, offset);
        let src = self.m.sys.as_ptr().wrapping_add((i * self.m.seg) as usize);
        // SAFETY: as in `copy_from_common`, in the other direction.
        unsafe {
            core::ptr::copy_nonoverlapping(
                src,
                common.va().as_ptr().wrapping_add(offset),
                self.m.seg as usize,
            );
        }
    }
}
