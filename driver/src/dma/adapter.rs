//! The DMA adapter.

use alloc::sync::Arc;
use core::ptr::NonNull;

use super::DmaError;
use crate::sys::{
    _INTERFACE_TYPE, BOOLEAN, BOOLEAN_TRUE, DEVICE_DESCRIPTION, DMA_ADAPTER, DMA_OPERATIONS,
    PDEVICE_OBJECT, PDMA_ADAPTER, ntddk,
};

/// The shared part of an adapter: the pointer and its operations table. Dropped (Put) when the
/// [`Adapter`] and every buffer and mapping made from it are gone.
pub(super) struct AdapterInner {
    pub(super) raw: NonNull<DMA_ADAPTER>,
    pub(super) ops: &'static DMA_OPERATIONS,
    /// The device object the mapping routines name (the driver's FDO).
    pub(super) device: PDEVICE_OBJECT,
    /// Memory for the mapping routines' contexts, reused (`sg.rs`).
    pub(super) cells: super::sg::CellCache,
}

// By hand: wdk-sys derives no `Debug` for `DMA_OPERATIONS` (bindgen derives none for function
// pointers of more than 12 parameters), so the table is left out.
impl core::fmt::Debug for AdapterInner {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AdapterInner")
            .field("raw", &self.raw)
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

// SAFETY: a DMA adapter may be used from any CPU; the HAL serialises its own state.
unsafe impl Send for AdapterInner {}
// SAFETY: as above; the table is immutable.
unsafe impl Sync for AdapterInner {}

impl AdapterInner {
    pub(super) const fn ptr(&self) -> PDMA_ADAPTER {
        self.raw.as_ptr()
    }
}

impl Drop for AdapterInner {
    fn drop(&mut self) {
        if let Some(put) = self.ops.PutDmaAdapter {
            // SAFETY: the adapter is live and this is the last reference to it; every common
            // buffer and mapping held an `Arc` of this and has been released.
            unsafe { put(self.raw.as_ptr()) };
        }
    }
}

/// The device's DMA adapter.
#[derive(Debug, Clone)]
pub struct Adapter {
    pub(super) inner: Arc<AdapterInner>,
    version: u32,
    map_registers: u32,
}

impl Adapter {
    /// `IoGetDmaAdapter` for a scatter/gather bus master on PCI that drives `width` address
    /// bits and transfers at most `max_len` bytes at once: a version 3 description
    /// (`DmaAddressWidth`), or version 2 (`Dma64BitAddresses`/`Dma32BitAddresses`) when the
    /// system refuses version 3. Call at `PASSIVE_LEVEL`.
    ///
    /// # Errors
    /// [`DmaError::NoAdapter`]; [`DmaError::MissingRoutine`] when the table lacks the
    /// scatter/gather or common-buffer routines.
    ///
    /// # Safety
    /// `pdo` must be the device's physical device object (`WdfDeviceWdmGetPhysicalDevice`) and
    /// `device` the driver's device object for it (`WdfDeviceWdmGetDeviceObject`), both live
    /// for the adapter's life.
    pub unsafe fn new(
        pdo: PDEVICE_OBJECT,
        device: PDEVICE_OBJECT,
        width: u32,
        max_len: u32,
    ) -> Result<Self, DmaError> {
        for version in [3u32, 2] {
            let mut d = DEVICE_DESCRIPTION {
                Version: version,
                Master: BOOLEAN_TRUE,
                ScatterGather: BOOLEAN_TRUE,
                InterfaceType: _INTERFACE_TYPE::PCIBus,
                MaximumLength: max_len,
                ..DEVICE_DESCRIPTION::default()
            };
            if version == 3 {
                d.DmaAddressWidth = width;
            } else {
                d.Dma64BitAddresses = BOOLEAN::from(width == 64);
                d.Dma32BitAddresses = BOOLEAN::from(width != 64);
            }
            let mut n = 0u32;
            // SAFETY: `pdo` is the device's PDO (caller's contract); `d` and `n` are live locals.
            let raw = unsafe { ntddk::IoGetDmaAdapter(pdo, &raw mut d, &raw mut n) };
            let Some(raw) = NonNull::new(raw) else {
                continue;
            };
            // SAFETY: a non-null adapter from IoGetDmaAdapter is live until PutDmaAdapter.
            let table = unsafe { raw.as_ref() }.DmaOperations;
            // SAFETY: the HAL's operations tables are statics that are never written.
            let ops: &'static DMA_OPERATIONS = unsafe { &*table };
            let inner = Arc::new(AdapterInner {
                raw,
                ops,
                device,
                cells: super::sg::CellCache::new(),
            });
            let adapter = Self {
                inner,
                version,
                map_registers: n,
            };
            for (name, present) in [
                ("AllocateCommonBuffer", ops.AllocateCommonBuffer.is_some()),
                ("FreeCommonBuffer", ops.FreeCommonBuffer.is_some()),
                ("GetScatterGatherList", ops.GetScatterGatherList.is_some()),
                ("PutScatterGatherList", ops.PutScatterGatherList.is_some()),
            ] {
                if !present {
                    return Err(DmaError::MissingRoutine(name));
                }
            }
            return Ok(adapter);
        }
        Err(DmaError::NoAdapter)
    }

    /// [`Adapter::new`] for a framework device: its PDO and its device object.
    ///
    /// # Errors
    /// As [`Adapter::new`].
    pub fn for_device(
        device: crate::sys::wdf::Device,
        width: u32,
        max_len: u32,
    ) -> Result<Self, DmaError> {
        // SAFETY: the framework gives the device's own PDO and device object, which live as long
        // as the device (and the adapter is released in EvtDeviceReleaseHardware, before that).
        unsafe { Self::new(device.pdo(), device.wdm_device(), width, max_len) }
    }

    /// The `DEVICE_DESCRIPTION` version the adapter was granted with (3, or 2 as a fallback).
    #[must_use]
    pub const fn description_version(&self) -> u32 {
        self.version
    }

    /// Map registers `IoGetDmaAdapter` granted: the most pages one transfer may span at once.
    #[must_use]
    pub const fn map_registers(&self) -> u32 {
        self.map_registers
    }

    /// Whether the operations table is large enough to hold `FlushDmaBuffer` (version 3
    /// tables); the driver checks `Size` before it uses any newer member.
    #[must_use]
    pub fn has_flush_dma_buffer(&self) -> bool {
        self.inner.ops.Size as usize >= ops_member_end!(FlushDmaBuffer)
            && self.inner.ops.FlushDmaBuffer.is_some()
    }

    /// The raw adapter, for reports.
    #[must_use]
    pub fn raw(&self) -> PDMA_ADAPTER {
        self.inner.ptr()
    }
}
