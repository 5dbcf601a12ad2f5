//! Scatter/gather mappings made with `GetScatterGatherList`, one per transfer.
//!
//! `GetScatterGatherList` calls its execution routine either before it returns (map registers
//! were free) or later, when another transfer releases registers. [`Adapter::map`] reports the
//! two cases as [`MapOutcome::Ready`] and [`MapOutcome::Waiting`]; a waiting mapping becomes
//! ready when the routine has run ([`PendingMapping::poll`]). The routine itself only records the
//! list: it may run inside another CPU's `PutScatterGatherList`, where taking driver locks could
//! deadlock.

use alloc::alloc::{Layout, dealloc};
use alloc::boxed::Box;
use alloc::sync::Arc;
use core::cell::UnsafeCell;
use core::mem::MaybeUninit;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicPtr, AtomicU8, AtomicUsize, Ordering};

use super::adapter::AdapterInner;
use super::{Adapter, Direction, DmaBuffer, DmaError, UserBuffer};
use crate::sys::{
    AtDispatch, DMA_SYNCHRONOUS_CALLBACK, DMA_TRANSFER_CONTEXT_SIZE_V1, KSpinLock, NT_SUCCESS,
    PDEVICE_OBJECT, PIRP, PSCATTER_GATHER_LIST, PVOID, SCATTER_GATHER_LIST,
};

const WAITING: u8 = 0;
const ARRIVED: u8 = 1;
const ABANDONED: u8 = 2;

/// The execution routine's context: where the list lands, and what an abandoned mapping leaves
/// for the routine to release.
struct MapCell {
    state: AtomicU8,
    list: AtomicUsize,
    adapter: Arc<AdapterInner>,
    write_to_device: u8,
    /// Set only when the mapping is abandoned before the list arrived: the routine then puts the
    /// list and frees the buffer (which must stay alive until the HAL is done with it).
    orphan: UnsafeCell<Option<DmaBuffer>>,
}

impl MapCell {
    /// A fresh cell, leaked for the execution routine (freed with [`free_cell`] by whichever side
    /// finishes last). Its memory comes from the adapter's [`CellCache`] when one is spare, so
    /// a mapping made at `DISPATCH_LEVEL` (a receive reposted by the DPC) allocates nothing.
    fn leak(adapter: &Adapter, dir: Direction) -> *mut Self {
        let block = adapter
            .inner
            .cells
            .take()
            .unwrap_or_else(|| Box::into_raw(Box::<MaybeUninit<Self>>::new_uninit()).cast());
        // SAFETY: `block` is an allocation of `Layout::new::<MapCell>()` with nothing in it
        // (fresh, or a cache block whose cell was dropped in place by `free_cell`).
        unsafe {
            block.write(Self {
                state: AtomicU8::new(WAITING),
                list: AtomicUsize::new(0),
                adapter: adapter.inner.clone(),
                write_to_device: dir.write_to_device(),
                orphan: UnsafeCell::new(None),
            });
        }
        block
    }
}

/// Drops a cell made by [`MapCell::leak`] and gives its memory back to its adapter's cache (or
/// frees it when the cache is full).
///
/// # Safety
/// `cell` came from [`MapCell::leak`], and this is its last use by either side.
unsafe fn free_cell(cell: *mut MapCell) {
    // SAFETY: live until dropped below (the caller's contract).
    let adapter = unsafe { (*cell).adapter.clone() };
    // SAFETY: as above; after this the block holds no value.
    unsafe { core::ptr::drop_in_place(cell) };
    if !adapter.cells.give(cell) {
        // SAFETY: the block was allocated with this layout (Box of MaybeUninit<MapCell>).
        unsafe { dealloc(cell.cast(), Layout::new::<MapCell>()) };
    }
}

/// Memory for mapping cells kept by each adapter: a mapping takes a block and gives it back
/// when it has its list (or is released), so steady-state mapping allocates nothing. Each
/// slot holds null or an allocation of `Layout::new::<MapCell>()` with no value in it.
pub(super) struct CellCache([AtomicPtr<MapCell>; CELL_CACHE]);

/// Blocks an adapter keeps: more than the mappings ever waiting at once on the MAD path's
/// adapter (a cell lives from the mapping request until the list arrives).
const CELL_CACHE: usize = 16;

impl CellCache {
    /// A full cache (allocated at `PASSIVE_LEVEL`, with the adapter).
    pub(super) fn new() -> Self {
        Self(core::array::from_fn(|_| {
            AtomicPtr::new(Box::into_raw(Box::<MaybeUninit<MapCell>>::new_uninit()).cast())
        }))
    }

    fn take(&self) -> Option<*mut MapCell> {
        self.0.iter().find_map(|s| {
            let p = s.swap(core::ptr::null_mut(), Ordering::Acquire);
            (!p.is_null()).then_some(p)
        })
    }

    /// Stores `block`; false when every slot is taken (the caller frees it).
    fn give(&self, block: *mut MapCell) -> bool {
        self.0.iter().any(|s| {
            s.compare_exchange(
                core::ptr::null_mut(),
                block,
                Ordering::Release,
                Ordering::Relaxed,
            )
            .is_ok()
        })
    }
}

impl Drop for CellCache {
    fn drop(&mut self) {
        for s in &self.0 {
            let p = s.swap(core::ptr::null_mut(), Ordering::Acquire);
            if !p.is_null() {
                // SAFETY: a block of this layout with no value in it (the cache's invariant).
                unsafe { dealloc(p.cast(), Layout::new::<MapCell>()) };
            }
        }
    }
}

impl core::fmt::Debug for CellCache {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CellCache").finish_non_exhaustive()
    }
}

/// The result of [`Adapter::map`].
#[derive(Debug)]
pub enum MapOutcome {
    /// The list was built before `GetScatterGatherList` returned.
    Ready(SgMapping),
    /// Map registers were busy: the list arrives when another transfer releases them.
    Waiting(PendingMapping),
}

/// A live scatter/gather mapping: the device may access the buffer through
/// [`SgMapping::elements`] until [`SgMapping::unmap`] (or drop) puts the list.
#[derive(Debug)]
pub struct SgMapping {
    adapter: Arc<AdapterInner>,
    list: NonNull<SCATTER_GATHER_LIST>,
    dir: Direction,
    /// The driver buffer the mapping owns (`None` for a range of a [`UserBuffer`]).
    buffer: Option<DmaBuffer>,
    /// Not put yet.
    live: bool,
}

// SAFETY: the list is owned by this value until it is put; the HAL allows Put from any CPU.
unsafe impl Send for SgMapping {}

/// A mapping whose list has not arrived yet.
pub struct PendingMapping {
    cell: NonNull<MapCell>,
    dir: Direction,
    buffer: Option<DmaBuffer>,
}

// SAFETY: the cell is shared with the execution routine only through atomics; the buffer moves
// with this value.
unsafe impl Send for PendingMapping {}

impl core::fmt::Debug for PendingMapping {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PendingMapping")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// The execution routine (`PDRIVER_LIST_CONTROL`), at `DISPATCH_LEVEL`.
unsafe extern "C" fn list_arrived(
    _device: PDEVICE_OBJECT,
    _irp: PIRP,
    list: PSCATTER_GATHER_LIST,
    context: PVOID,
) {
    let cell = context.cast::<MapCell>();
    // SAFETY: `map` passes a live, leaked MapCell as the context; it is freed only after the
    // routine has run (by the waiting side once it sees ARRIVED, or here when abandoned).
    let c = unsafe { &*cell };
    c.list.store(list as usize, Ordering::Release);
    if c.state
        .compare_exchange(WAITING, ARRIVED, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        // Abandoned: nobody will use the list. Put it and free what the mapping left behind.
        if let Some(put) = c.adapter.ops.PutScatterGatherList {
            // SAFETY: the list the HAL just built for this adapter, put once, at DISPATCH_LEVEL.
            unsafe { put(c.adapter.ptr(), list, c.write_to_device) };
        }
        // SAFETY: the cell was leaked by `map` and abandoned by the waiting side, which no longer
        // touches it; this is its last use.
        unsafe { free_cell(cell) };
    }
}

impl Adapter {
    /// Maps `buffer` for a transfer in direction `dir` with `GetScatterGatherList`, at
    /// `DISPATCH_LEVEL`. On failure the buffer is handed back unchanged, so nothing is lost.
    ///
    /// # Errors
    /// [`DmaError::Map`] with the routine's status (`STATUS_INSUFFICIENT_RESOURCES` when the
    /// transfer needs more map registers than the adapter has), and the buffer.
    pub fn map(
        &self,
        buffer: DmaBuffer,
        dir: Direction,
        _at: &AtDispatch<'_>,
    ) -> Result<MapOutcome, (DmaError, DmaBuffer)> {
        let Some(get) = self.inner.ops.GetScatterGatherList else {
            return Err((DmaError::MissingRoutine("GetScatterGatherList"), buffer));
        };
        // Before a transfer the buffer leaves the processor caches (cleaned for memory→device,
        // invalidated for device→memory): `GetScatterGatherList` does not do it on platforms
        // whose DMA is not cache-coherent (windows-dma.md §4).
        // SAFETY: the buffer's own MDL, describing memory it owns.
        unsafe { crate::sys::flush_io_buffers(buffer.mdl(), dir == Direction::FromDevice) };
        let cell = MapCell::leak(self, dir);
        // SAFETY: a live adapter; the buffer's MDL and address; a context that outlives the
        // routine; the caller is at DISPATCH_LEVEL (`_at`).
        let st = unsafe {
            get(
                self.inner.ptr(),
                self.inner.device,
                buffer.mdl(),
                buffer.va().cast(),
                buffer.len(),
                Some(list_arrived),
                cell.cast(),
                dir.write_to_device(),
            )
        };
        if !NT_SUCCESS(st) {
            // SAFETY: on failure the routine never runs; the cell is still ours alone.
            unsafe { free_cell(cell) };
            return Err((DmaError::Map(st), buffer));
        }
        // SAFETY: `cell` is live until one side frees it (see list_arrived).
        let arrived = unsafe { &*cell }.state.load(Ordering::Acquire) == ARRIVED;
        let pending = PendingMapping {
            // SAFETY: Box::into_raw never returns null.
            cell: unsafe { NonNull::new_unchecked(cell) },
            dir,
            buffer: Some(buffer),
        };
        if arrived {
            return Ok(MapOutcome::Ready(pending.finish()));
        }
        Ok(MapOutcome::Waiting(pending))
    }
}

/// A version 3 DMA transfer context (`DMA_TRANSFER_CONTEXT_SIZE_V1` bytes), initialised with
/// `InitializeDmaTransferContext` before each mapping request made with it.
#[derive(Debug)]
pub struct TransferContext(Box<[u64; DMA_TRANSFER_CONTEXT_SIZE_V1 as usize / 8]>);

impl Default for TransferContext {
    fn default() -> Self {
        Self(Box::new([0; DMA_TRANSFER_CONTEXT_SIZE_V1 as usize / 8]))
    }
}

impl Adapter {
    /// Whether the table has the version 3 routines [`Adapter::map_range`] uses
    /// (`InitializeDmaTransferContext`, `GetScatterGatherListEx`).
    #[must_use]
    pub fn has_synchronous_mapping(&self) -> bool {
        let ops = self.inner.ops;
        ops.Size as usize >= ops_member_end!(GetScatterGatherListEx)
            && ops.InitializeDmaTransferContext.is_some()
            && ops.GetScatterGatherListEx.is_some()
    }

    /// Maps `segments` segments of `user` from segment `first` for a transfer in direction
    /// `dir`: `GetScatterGatherListEx` with `DMA_SYNCHRONOUS_CALLBACK`, so the list is built
    /// before the call returns or the call fails — a mapping of the caller's pages is never left
    /// waiting for map registers after the driver has given up on it. `<= DISPATCH_LEVEL`.
    ///
    /// # Errors
    /// [`DmaError::MissingRoutine`]; [`DmaError::Map`] with the routine's status
    /// (`STATUS_INSUFFICIENT_RESOURCES`: more map registers than the adapter has, or not free now).
    pub fn map_range(
        &self,
        user: &UserBuffer,
        first: u32,
        segments: u32,
        dir: Direction,
        ctx: &mut TransferContext,
        _at: &AtDispatch<'_>,
    ) -> Result<SgMapping, DmaError> {
        if !self.has_synchronous_mapping() {
            return Err(DmaError::MissingRoutine("GetScatterGatherListEx"));
        }
        let (Some(init), Some(get)) = (
            self.inner.ops.InitializeDmaTransferContext,
            self.inner.ops.GetScatterGatherListEx,
        ) else {
            return Err(DmaError::MissingRoutine("GetScatterGatherListEx"));
        };
        if segments == 0
            || first
                .checked_add(segments)
                .is_none_or(|e| e > user.segments())
        {
            return Err(DmaError::BadLength(segments as usize));
        }
        // The bytes leave the processor caches before the transfer (windows-dma.md §4).
        for i in first..first + segments {
            user.cache_flush_segment(i, dir == Direction::FromDevice);
        }
        let ctx_ptr: PVOID = ctx.0.as_mut_ptr().cast();
        // SAFETY: a live adapter and a context of DMA_TRANSFER_CONTEXT_SIZE_V1 bytes that no
        // other request uses (the synchronous call below finishes with it before returning).
        let st = unsafe { init(self.inner.ptr(), ctx_ptr) };
        if !NT_SUCCESS(st) {
            return Err(DmaError::Map(st));
        }
        let cell = MapCell::leak(self, dir);
        let seg = u64::from(user.segment_size());
        let mut out: PSCATTER_GATHER_LIST = core::ptr::null_mut();
        // SAFETY: a live adapter and device object; the request's locked MDL with an offset and
        // length inside it; the synchronous flag with an execution routine (which runs before
        // the call returns) and its context; no completion routine (bus master).
        let st = unsafe {
            get(
                self.inner.ptr(),
                self.inner.device,
                ctx_ptr,
                user.mdl(),
                u64::from(first) * seg,
                segments * user.segment_size(),
                DMA_SYNCHRONOUS_CALLBACK,
                Some(list_arrived),
                cell.cast(),
                dir.write_to_device(),
                None,
                core::ptr::null_mut(),
                &raw mut out,
            )
        };
        if !NT_SUCCESS(st) {
            // SAFETY: on failure the routine never runs; the cell is still ours alone.
            unsafe { free_cell(cell) };
            return Err(DmaError::Map(st));
        }
        let pending = PendingMapping {
            // SAFETY: Box::into_raw never returns null.
            cell: unsafe { NonNull::new_unchecked(cell) },
            dir,
            buffer: None,
        };
        // With DMA_SYNCHRONOUS_CALLBACK a successful call has run the routine: the list is here.
        pending
            .poll()
            .map_err(|_| DmaError::Map(crate::sys::STATUS_INSUFFICIENT_RESOURCES))
    }
}

impl PendingMapping {
    /// The mapping, once the execution routine has run; otherwise `self` back.
    ///
    /// # Errors
    /// `self`, when the list has not arrived yet.
    pub fn poll(self) -> Result<SgMapping, Self> {
        // SAFETY: the cell is live while this value is (the routine frees it only if abandoned).
        let arrived = unsafe { self.cell.as_ref() }.state.load(Ordering::Acquire) == ARRIVED;
        if arrived {
            Ok(self.finish())
        } else {
            Err(self)
        }
    }

    fn finish(mut self) -> SgMapping {
        // SAFETY: ARRIVED was observed: the routine has finished with the cell and will not
        // touch it again; we read it and free it here, once.
        let cell = unsafe { self.cell.as_ref() };
        let list = cell.list.load(Ordering::Acquire) as PSCATTER_GATHER_LIST;
        let adapter = cell.adapter.clone();
        let dir = if cell.write_to_device != 0 {
            Direction::ToDevice
        } else {
            Direction::FromDevice
        };
        let buffer = self.buffer.take();
        let raw = self.cell.as_ptr();
        core::mem::forget(self);
        // SAFETY: the last use of the cell (see above); nothing read from it borrows it.
        unsafe { free_cell(raw) };
        SgMapping {
            adapter,
            // SAFETY: the HAL passes a non-null list to the execution routine.
            list: unsafe { NonNull::new_unchecked(list) },
            dir,
            buffer,
            live: true,
        }
    }
}

impl Drop for PendingMapping {
    fn drop(&mut self) {
        // SAFETY: the cell is live while this value is.
        let cell = unsafe { self.cell.as_ref() };
        // Hand the buffer to the cell first, so that the routine can free it after the Put.
        // SAFETY: nobody else touches `orphan` before the state says ABANDONED.
        unsafe { *cell.orphan.get() = self.buffer.take() };
        if cell
            .state
            .compare_exchange(WAITING, ABANDONED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            // The routine will put the list and free the cell and the buffer.
            return;
        }
        // The list arrived meanwhile: release it here, at DISPATCH_LEVEL.
        let raise = KSpinLock::new();
        let _at = raise.lock();
        // SAFETY: ARRIVED: the routine is done with the cell; it is ours to use and free, once.
        let c = unsafe { self.cell.as_ref() };
        let list = c.list.load(Ordering::Acquire) as PSCATTER_GATHER_LIST;
        if let Some(put) = c.adapter.ops.PutScatterGatherList {
            // SAFETY: the list built for this adapter, put once with its direction.
            unsafe { put(c.adapter.ptr(), list, c.write_to_device) };
        }
        // SAFETY: the cell's last use.
        unsafe { free_cell(self.cell.as_ptr()) };
    }
}

impl SgMapping {
    /// The list's elements: (logical address, length), in buffer order.
    pub fn elements(&self) -> impl Iterator<Item = (u64, u32)> + '_ {
        // SAFETY: the list is live until this mapping puts it.
        let l = unsafe { self.list.as_ref() };
        // SAFETY: the HAL wrote `NumberOfElements` elements after the header.
        let e = unsafe { l.Elements.as_slice(l.NumberOfElements as usize) };
        // SAFETY: every bit pattern of the union is a valid LONGLONG.
        e.iter()
            .map(|e| (unsafe { e.Address.QuadPart }.cast_unsigned(), e.Length))
    }

    /// The transfer direction.
    #[must_use]
    pub const fn direction(&self) -> Direction {
        self.dir
    }

    /// `PutScatterGatherList` with the mapping's direction, at `DISPATCH_LEVEL`; the buffer
    /// returns to the CPU (for a device→memory transfer, with the device's data now visible).
    ///
    /// # Panics
    /// Never: a live mapping always owns its buffer.
    #[must_use]
    pub fn unmap(mut self, _at: &AtDispatch<'_>) -> DmaBuffer {
        self.put();
        let b = self.buffer.take().expect("a live mapping owns its buffer");
        drop(self);
        b
    }

    /// `PutScatterGatherList` of a mapping over a [`UserBuffer`] range, at `DISPATCH_LEVEL`: for
    /// a device→memory mapping the HAL copies any bounce or Verifier double buffer back.
    pub fn release(mut self, _at: &AtDispatch<'_>) {
        self.put();
    }

    fn put(&mut self) {
        if !self.live {
            return;
        }
        self.live = false;
        // PutScatterGatherList runs at DISPATCH_LEVEL: a private spin lock raises to it when the
        // caller is lower (a drop at PASSIVE_LEVEL during teardown).
        let raise = KSpinLock::new();
        let _at = raise.lock();
        if let Some(put) = self.adapter.ops.PutScatterGatherList {
            // SAFETY: the list this mapping owns, put once with the direction it was built with.
            unsafe {
                put(
                    self.adapter.ptr(),
                    self.list.as_ptr(),
                    self.dir.write_to_device(),
                );
            }
        }
    }
}

impl Drop for SgMapping {
    fn drop(&mut self) {
        // Dropping a live mapping puts it (the caller holds the CPU at DISPATCH_LEVEL or knows
        // the device can no longer access the buffer: quiesced or removed).
        self.put();
    }
}
