//! Safe handles for tests that play the driver's part without a driver: a DMA adapter, common
//! buffers, scatter/gather mappings of pool and user memory, and CPU reads and writes of
//! simulated memory.
//!
//! The device model's own tests use these to lay out rings and buffers the way a driver would
//! (through the real HAL routines, so every profile's translation, bounce buffering and
//! verifier checks apply) and then drive the device through its registers. The RHCA driver does
//! not use this module: it calls the routines itself, through `driver/src/dma/`.
//!
//! Every handle must be used on a CPU of its machine ([`Machine::enter`] or [`Machine::run`]).
//! Handles release what they hold when dropped, in the order the DDI requires (lists before the
//! adapter, buffers before the adapter).
//!
//! # Safety story
//! Each wrapper calls one HAL routine through the adapter's operations table with arguments
//! the wrapper itself created and still owns, so the routine's pointer preconditions hold.
//! CPU accesses go through [`Machine::cpu_write`]/[`Machine::cpu_read`], which check that the
//! range lies in a live region of simulated memory.

use crate::bus::Attached;
use crate::constants::POOL_FLAG_NON_PAGED;
use crate::machine::Machine;
use crate::typed::{DISPATCH_LEVEL, FALSE, TRUE};
use crate::types::{
    _INTERFACE_TYPE, _LOCK_OPERATION, DEVICE_DESCRIPTION, DMA_OPERATIONS, PDEVICE_OBJECT,
    PDMA_ADAPTER, PDRIVER_LIST_CONTROL, PHYSICAL_ADDRESS, PIRP, PMDL, PSCATTER_GATHER_LIST, PVOID,
};
use crate::{NTSTATUS, ntddk};

/// Why a test handle could not be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KitError {
    /// `IoGetDmaAdapter` returned NULL.
    NoAdapter,
    /// A common buffer allocation returned NULL.
    NoCommonBuffer,
    /// Pool or an MDL could not be allocated.
    NoMemory,
    /// `GetScatterGatherList` failed with this status.
    Map(NTSTATUS),
    /// The range is not mapped by the simulated machine.
    BadRange,
}

impl Machine {
    /// Writes `data` at virtual address `va` as a CPU store would (through the CPU's cache on
    /// the `noncoherent` profile).
    ///
    /// # Errors
    /// [`KitError::BadRange`] when the range is not inside one live region.
    pub fn cpu_write(&self, va: usize, data: &[u8]) -> Result<(), KitError> {
        let st = self.0.lock();
        let (base, pages, _) = st.mem.region_of(va).ok_or(KitError::BadRange)?;
        if va + data.len() > base + pages * crate::mem::PAGE {
            return Err(KitError::BadRange);
        }
        st.mem.copy_from_slice(va, data);
        drop(st);
        Ok(())
    }

    /// Reads `out.len()` bytes at virtual address `va` as a CPU load would.
    ///
    /// # Errors
    /// [`KitError::BadRange`] when the range is not inside one live region.
    pub fn cpu_read(&self, va: usize, out: &mut [u8]) -> Result<(), KitError> {
        let st = self.0.lock();
        let (base, pages, _) = st.mem.region_of(va).ok_or(KitError::BadRange)?;
        if va + out.len() > base + pages * crate::mem::PAGE {
            return Err(KitError::BadRange);
        }
        st.mem.read_va(va, out);
        drop(st);
        Ok(())
    }
}

/// A DMA adapter obtained with `IoGetDmaAdapter` (version 3 description, scatter/gather bus
/// master); `PutDmaAdapter` on drop.
#[derive(Debug)]
pub struct TestAdapter {
    adapter: PDMA_ADAPTER,
    map_registers: u32,
}

/// A common buffer of a [`TestAdapter`].
#[derive(Debug)]
pub struct CommonBuffer {
    /// Kernel virtual address.
    pub va: usize,
    /// Logical address to give the device.
    pub logical: u64,
    /// Length in bytes.
    pub len: u32,
}

/// Non-paged pool (or user memory) mapped for the device with `GetScatterGatherList`.
#[derive(Debug)]
pub struct Mapping {
    /// Kernel virtual address of the buffer.
    pub va: usize,
    /// Length in bytes.
    pub len: u32,
    /// The list's elements: (logical address, length).
    pub elements: Vec<(u64, u32)>,
    /// Whether the device writes the buffer (a read from the device).
    pub device_writes: bool,
    list: usize,
    mdl: usize,
    pool: bool,
}

impl TestAdapter {
    /// `IoGetDmaAdapter` for the attached device's PDO with `DmaAddressWidth = width` and `MaximumLength`
    /// `max_len`.
    ///
    /// # Errors
    /// [`KitError::NoAdapter`].
    pub fn new(device: &Attached, width: u32, max_len: u32) -> Result<Self, KitError> {
        let mut d = DEVICE_DESCRIPTION {
            Version: 3,
            Master: TRUE,
            ScatterGather: TRUE,
            InterfaceType: _INTERFACE_TYPE::PCIBus,
            MaximumLength: max_len,
            DmaAddressWidth: width,
            ..DEVICE_DESCRIPTION::default()
        };
        let mut n = 0u32;
        // SAFETY: `d` and `n` are live locals for the duration of the call; the PDO is the one
        // the machine created for the device (the machine validates it anyway).
        let adapter = unsafe { ntddk::IoGetDmaAdapter(device.pdo, &raw mut d, &raw mut n) };
        if adapter.is_null() {
            return Err(KitError::NoAdapter);
        }
        Ok(Self {
            adapter,
            map_registers: n,
        })
    }

    /// The map registers the HAL granted.
    #[must_use]
    pub const fn map_registers(&self) -> u32 {
        self.map_registers
    }

    /// The raw adapter pointer.
    #[must_use]
    pub const fn raw(&self) -> PDMA_ADAPTER {
        self.adapter
    }

    fn ops(&self) -> &'static DMA_OPERATIONS {
        // SAFETY: `self.adapter` is live until drop and its table pointer is static.
        let table = unsafe { (*self.adapter).DmaOperations };
        // SAFETY: the HAL's tables are statics that are never written.
        unsafe { &*table }
    }

    /// `AllocateCommonBuffer` (cached) of `len` bytes, zeroed by the CPU.
    ///
    /// # Errors
    /// [`KitError::NoCommonBuffer`].
    pub fn common_buffer(&self, len: u32) -> Result<CommonBuffer, KitError> {
        let alloc = self.ops().AllocateCommonBuffer.ok_or(KitError::NoAdapter)?;
        let mut la = PHYSICAL_ADDRESS::default();
        // SAFETY: the adapter is live and `la` is a live local.
        let va = unsafe { alloc(self.adapter, len, &raw mut la, TRUE) };
        if va.is_null() {
            return Err(KitError::NoCommonBuffer);
        }
        // SAFETY: every bit pattern of the union is a valid LONGLONG.
        let logical = unsafe { la.QuadPart }.cast_unsigned();
        Ok(CommonBuffer {
            va: va as usize,
            logical,
            len,
        })
    }

    /// `FreeCommonBuffer` with the allocation's own arguments.
    #[expect(
        clippy::needless_pass_by_value,
        reason = "consuming the handle makes a second free impossible"
    )]
    pub fn free_common(&self, b: CommonBuffer) {
        let Some(free) = self.ops().FreeCommonBuffer else {
            return;
        };
        // SAFETY: `b` came from `common_buffer` on this adapter and is freed once (moved in).
        unsafe {
            free(
                self.adapter,
                b.len,
                PHYSICAL_ADDRESS {
                    QuadPart: b.logical.cast_signed(),
                },
                b.va as PVOID,
                TRUE,
            );
        }
    }

    /// Allocates `len` bytes of non-paged pool and maps them with `GetScatterGatherList`.
    ///
    /// # Errors
    /// [`KitError::NoMemory`] or [`KitError::Map`].
    pub fn map_pool(&self, len: u32, device_writes: bool) -> Result<Mapping, KitError> {
        // SAFETY: pool allocation has no pointer preconditions.
        let p = unsafe {
            ntddk::ExAllocatePool2(
                POOL_FLAG_NON_PAGED,
                u64::from(len),
                u32::from_le_bytes(*b"Tkit"),
            )
        };
        if p.is_null() {
            return Err(KitError::NoMemory);
        }
        self.map_va(p as usize, len, device_writes, true)
    }

    /// Allocates non-paged pool, fills it with `data` and maps it for the device to read: the
    /// order a driver must follow, because a bounce buffer is filled when the mapping is made.
    ///
    /// # Errors
    /// As [`TestAdapter::map_pool`].
    pub fn map_pool_with(&self, data: &[u8]) -> Result<Mapping, KitError> {
        let len = u32::try_from(data.len()).map_err(|_| KitError::BadRange)?;
        // SAFETY: pool allocation has no pointer preconditions.
        let p = unsafe {
            ntddk::ExAllocatePool2(
                POOL_FLAG_NON_PAGED,
                u64::from(len),
                u32::from_le_bytes(*b"Tkit"),
            )
        };
        if p.is_null() {
            return Err(KitError::NoMemory);
        }
        crate::machine::with_state(|st, _| {
            st.mem.copy_from_slice(p as usize, data);
            Ok(())
        });
        self.map_va(p as usize, len, false, true)
    }

    /// Unmaps like [`TestAdapter::unmap`] and returns the buffer's contents as the CPU sees
    /// them after the unmap (bounce buffers copied back, caches flushed).
    #[must_use]
    #[expect(
        clippy::needless_pass_by_value,
        reason = "consuming the handle makes a second unmap impossible"
    )]
    pub fn unmap_read(&self, m: Mapping) -> Vec<u8> {
        let (va, len, mdl) = (m.va, m.len as usize, m.mdl);
        let pool = m.pool;
        if let Some(put) = self.ops().PutScatterGatherList {
            at_dispatch(|| {
                // SAFETY: as in `unmap`.
                unsafe {
                    put(
                        self.adapter,
                        m.list as PSCATTER_GATHER_LIST,
                        u8::from(!m.device_writes),
                    );
                }
            });
        }
        // SAFETY: the MDL is live until release_mdl below.
        unsafe { crate::inline::KeFlushIoBuffers(mdl as PMDL, TRUE, TRUE) };
        let mut out = vec![0u8; len];
        crate::machine::with_state(|st, _| {
            st.mem.read_va(va, &mut out);
            Ok(())
        });
        release_mdl(mdl as PMDL, pool, va);
        out
    }

    /// Maps `len` bytes of memory at `va` (pool, or user memory from [`Machine::alloc_user`])
    /// with an MDL and `GetScatterGatherList`.
    ///
    /// # Errors
    /// [`KitError::NoMemory`] or [`KitError::Map`].
    pub fn map_user(&self, va: usize, len: u32, device_writes: bool) -> Result<Mapping, KitError> {
        self.map_va(va, len, device_writes, false)
    }

    fn map_va(
        &self,
        va: usize,
        len: u32,
        device_writes: bool,
        pool: bool,
    ) -> Result<Mapping, KitError> {
        // SAFETY: `va .. va + len` is memory the caller owns; IoAllocateMdl only records it.
        let mdl =
            unsafe { ntddk::IoAllocateMdl(va as PVOID, len, FALSE, FALSE, std::ptr::null_mut()) };
        if mdl.is_null() {
            return Err(KitError::NoMemory);
        }
        if pool {
            // SAFETY: `mdl` describes non-paged pool just allocated.
            unsafe { ntddk::MmBuildMdlForNonPagedPool(mdl) };
        } else {
            // SAFETY: `mdl` describes user memory of the simulated process; the machine checks
            // the range and locks (pins) its pages.
            unsafe {
                ntddk::MmProbeAndLockPages(
                    mdl,
                    1,
                    if device_writes {
                        _LOCK_OPERATION::IoWriteAccess
                    } else {
                        _LOCK_OPERATION::IoReadAccess
                    },
                );
            }
        }
        // Before a transfer a driver flushes the buffer from the processor caches (cleans it
        // for memory→device, invalidates it for device→memory); `GetScatterGatherList` does
        // not do this itself (windows-dma.md §4).
        // SAFETY: the MDL was just built for memory the caller owns.
        unsafe { crate::inline::KeFlushIoBuffers(mdl, u8::from(device_writes), TRUE) };
        let get = self.ops().GetScatterGatherList.ok_or(KitError::NoAdapter)?;
        let mut out = 0usize;
        let st = at_dispatch(|| {
            // SAFETY: the adapter, the MDL and the context are live for the call; the
            // execution routine writes a usize through the context pointer.
            unsafe {
                get(
                    self.adapter,
                    std::ptr::null_mut(),
                    mdl,
                    va as PVOID,
                    len,
                    Some(keep_list),
                    (&raw mut out).cast(),
                    u8::from(!device_writes),
                )
            }
        });
        if st < 0 || out == 0 {
            release_mdl(mdl, pool, va);
            return Err(KitError::Map(st));
        }
        let l = out as PSCATTER_GATHER_LIST;
        // SAFETY: the HAL built the list and keeps it until PutScatterGatherList.
        let list = unsafe { &*l };
        // SAFETY: the HAL wrote `NumberOfElements` elements after the header.
        let elems = unsafe { list.Elements.as_slice(list.NumberOfElements as usize) };
        let elements = elems
            .iter()
            // SAFETY: every bit pattern of the union is a valid LONGLONG.
            .map(|e| (unsafe { e.Address.QuadPart }.cast_unsigned(), e.Length))
            .collect();
        Ok(Mapping {
            va,
            len,
            elements,
            device_writes,
            list: out,
            mdl: mdl as usize,
            pool,
        })
    }

    /// `PutScatterGatherList`, then frees the MDL (and the pool, for [`TestAdapter::map_pool`]).
    #[expect(
        clippy::needless_pass_by_value,
        reason = "consuming the handle makes a second unmap impossible"
    )]
    pub fn unmap(&self, m: Mapping) {
        if let Some(put) = self.ops().PutScatterGatherList {
            at_dispatch(|| {
                // SAFETY: `m.list` came from GetScatterGatherList on this adapter and is put
                // once (the mapping is moved in).
                unsafe {
                    put(
                        self.adapter,
                        m.list as PSCATTER_GATHER_LIST,
                        u8::from(!m.device_writes),
                    );
                }
            });
        }
        release_mdl(m.mdl as PMDL, m.pool, m.va);
    }

    /// `FlushDmaBuffer` on the whole mapping, keeping it: after the device wrote (the CPU then
    /// sees the data), or after the CPU wrote (the device then sees it).
    ///
    /// # Errors
    /// [`KitError::Map`] with the routine's status.
    pub fn flush_dma(&self, m: &Mapping) -> Result<(), KitError> {
        let flush = self.ops().FlushDmaBuffer.ok_or(KitError::NoAdapter)?;
        let st = at_dispatch(|| {
            // SAFETY: the adapter and the mapping's MDL are live.
            unsafe { flush(self.adapter, m.mdl as PMDL, u8::from(m.device_writes)) }
        });
        if st < 0 {
            Err(KitError::Map(st))
        } else {
            Ok(())
        }
    }
}

impl Drop for TestAdapter {
    fn drop(&mut self) {
        if let Some(put) = self.ops().PutDmaAdapter {
            // SAFETY: the adapter is put once, here.
            unsafe { put(self.adapter) };
        }
    }
}

fn release_mdl(mdl: PMDL, pool: bool, va: usize) {
    if !pool {
        // SAFETY: the MDL's pages were locked by MmProbeAndLockPages in map_va.
        unsafe { ntddk::MmUnlockPages(mdl) };
    }
    // SAFETY: the MDL was allocated by map_va and is freed once.
    unsafe { ntddk::IoFreeMdl(mdl) };
    if pool {
        // SAFETY: the pool block was allocated by map_pool and is freed once.
        unsafe { ntddk::ExFreePool(va as PVOID) };
    }
}

fn at_dispatch<R>(f: impl FnOnce() -> R) -> R {
    let mut old = 0;
    // SAFETY: `old` is a live local; raising to DISPATCH_LEVEL from at most DISPATCH_LEVEL.
    unsafe { crate::inline::KeRaiseIrql(DISPATCH_LEVEL, &raw mut old) };
    let r = f();
    // SAFETY: restores the level saved above.
    unsafe { crate::inline::KeLowerIrql(old) };
    r
}

/// The execution routine: stores the list pointer in the context.
unsafe extern "C" fn keep_list(
    _device: PDEVICE_OBJECT,
    _irp: PIRP,
    list: PSCATTER_GATHER_LIST,
    context: PVOID,
) {
    // SAFETY: `map_va` passes a pointer to a live usize as the context.
    unsafe { *context.cast::<usize>() = list as usize };
}

const _: PDRIVER_LIST_CONTROL = Some(keep_list);
