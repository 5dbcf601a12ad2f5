//! One RHCA as a vfio-user server's backend.
//!
//! It is the PCI function a VMM sees (configuration space,
//! BAR0 with the registers, doorbells, MSI-X table and PBA, `INTx` and MSI-X through the
//! client's eventfds) over the same [`RhcaDevice`] the simulated machine runs, and the
//! [`GuestPort`] through which that device reaches the guest's memory.
//!
//! Bad input from the client — an unknown region, an access outside BAR0 or the configuration
//! space, a sub-dword register write, an overlapping or vanished DMA region, an interrupt index
//! the device does not have — is refused with an error reply; nothing the client sends stops
//! the server. A device DMA outside every mapped region is a DMA error the device reports to
//! its driver (`ERR_SYNDROME`, an error CQE), as a master abort would be on real hardware.

use std::fs::File;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use rhca_model::{HostPort, ModelConfig, RhcaDevice, Worker};
use vfio_bindings::bindings::vfio::{
    VFIO_IRQ_INFO_EVENTFD, VFIO_IRQ_INFO_NORESIZE, VFIO_IRQ_SET_ACTION_TRIGGER,
    VFIO_IRQ_SET_DATA_EVENTFD, VFIO_IRQ_SET_DATA_NONE, VFIO_PCI_BAR0_REGION_INDEX,
    VFIO_PCI_CONFIG_REGION_INDEX, VFIO_PCI_INTX_IRQ_INDEX, VFIO_PCI_MSIX_IRQ_INDEX,
    VFIO_PCI_NUM_IRQS, VFIO_PCI_NUM_REGIONS, VFIO_REGION_INFO_FLAG_READ,
    VFIO_REGION_INFO_FLAG_WRITE, vfio_region_info,
};
use vfio_user::{DmaMapFlags, DmaUnmapFlags, IrqInfo, ServerBackend, ServerRegion};
use wdk_sim::{DmaFault, PciFunction};

use crate::config::{CONFIG_SIZE, ConfigSpace};
use crate::guest::GuestMemory;

/// The guest side of the device's bus: the client's memory and interrupt eventfds, and the
/// Command register bits that gate DMA and interrupts.
#[derive(Debug, Default)]
pub struct GuestPort {
    memory: RwLock<GuestMemory>,
    msix: Mutex<Vec<Option<File>>>,
    intx: Mutex<Option<File>>,
    bus_master: AtomicBool,
    intx_disabled: AtomicBool,
    msix_enabled: AtomicBool,
    removed: AtomicBool,
    dma_faults: AtomicU64,
    interrupts: AtomicU64,
}

impl GuestPort {
    fn memory(&self) -> std::sync::RwLockReadGuard<'_, GuestMemory> {
        self.memory
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn memory_mut(&self) -> std::sync::RwLockWriteGuard<'_, GuestMemory> {
        self.memory
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn gate(&self) -> Result<(), DmaFault> {
        if self.removed.load(Ordering::Acquire) {
            Err(DmaFault::NotPresent)
        } else if !self.bus_master.load(Ordering::Acquire) {
            Err(DmaFault::BusMasterDisabled)
        } else {
            Ok(())
        }
    }

    /// Device accesses refused so far (outside every mapped region, or without bus mastering).
    #[must_use]
    pub fn dma_faults(&self) -> u64 {
        self.dma_faults.load(Ordering::Relaxed)
    }

    /// Interrupts signalled to the client's eventfds so far.
    #[must_use]
    pub fn interrupts(&self) -> u64 {
        self.interrupts.load(Ordering::Relaxed)
    }

    fn fault(&self, f: DmaFault) -> DmaFault {
        self.dma_faults.fetch_add(1, Ordering::Relaxed);
        f
    }

    fn kick(&self, fd: &File) -> bool {
        // An eventfd counts 8-byte native-endian writes.
        let ok = (&*fd).write_all(&1u64.to_ne_bytes()).is_ok();
        if ok {
            self.interrupts.fetch_add(1, Ordering::Relaxed);
        }
        ok
    }
}

impl HostPort for GuestPort {
    fn dma_read(&self, addr: u64, buf: &mut [u8]) -> Result<(), DmaFault> {
        self.gate().map_err(|f| self.fault(f))?;
        self.memory()
            .read(addr, buf)
            .map_err(|u| self.fault(DmaFault::NoMemory(u.0)))
    }

    fn dma_write(&self, addr: u64, buf: &[u8]) -> Result<(), DmaFault> {
        self.gate().map_err(|f| self.fault(f))?;
        self.memory()
            .write(addr, buf)
            .map_err(|u| self.fault(DmaFault::NoMemory(u.0)))
    }

    fn signal_msi(&self, vector: u32) -> bool {
        // An MSI-X message is a posted memory write: no bus mastering, no message.
        if self.gate().is_err() {
            return false;
        }
        let fds = self
            .msix
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        fds.get(vector as usize)
            .and_then(Option::as_ref)
            .is_some_and(|fd| self.kick(fd))
    }

    fn set_intx(&self, asserted: bool) -> bool {
        if self.removed.load(Ordering::Acquire) {
            return false;
        }
        // vfio's INTx is an eventfd: the assertion is the event (the VMM raises the line and
        // keeps it until the guest's EOI and its unmask); a deassertion sends nothing. With
        // MSI-X enabled, or INTx disabled in the Command register, the pin stays quiet.
        if asserted
            && !self.intx_disabled.load(Ordering::Acquire)
            && !self.msix_enabled.load(Ordering::Acquire)
        {
            let fd = self
                .intx
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(fd) = fd.as_ref() {
                self.kick(fd);
            }
        }
        true
    }

    fn surprise_remove(&self) {
        self.removed.store(true, Ordering::Release);
    }
}

fn invalid(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, what.into())
}

/// One RHCA served to a vfio-user client.
#[derive(Debug)]
pub struct RhcaBackend {
    dev: Arc<RhcaDevice>,
    port: Arc<GuestPort>,
    config: ConfigSpace,
    msix_vectors: u32,
    _worker: Worker,
}

impl RhcaBackend {
    /// A device built from `model`, its service thread running.
    ///
    /// # Errors
    /// The model's configuration error.
    pub fn new(model: ModelConfig) -> Result<Self, rhca_model::ModelError> {
        let msix_vectors = model.caps.msix_vectors;
        let dev = RhcaDevice::new(model)?;
        let port = Arc::new(GuestPort::default());
        dev.connect(port.clone());
        let worker = dev.spawn_worker();
        Ok(Self {
            dev,
            port,
            config: ConfigSpace::new(msix_vectors),
            msix_vectors,
            _worker: worker,
        })
    }

    /// The device model.
    #[must_use]
    pub const fn device(&self) -> &Arc<RhcaDevice> {
        &self.dev
    }

    /// The guest port (for counters).
    #[must_use]
    pub const fn port(&self) -> &Arc<GuestPort> {
        &self.port
    }

    /// The regions the server announces: the configuration space and BAR0, neither mappable
    /// (every access is a message, so the device sees every register access in order).
    #[must_use]
    pub fn regions() -> Vec<ServerRegion> {
        (0..VFIO_PCI_NUM_REGIONS)
            .map(|index| {
                let (size, flags) = match index {
                    VFIO_PCI_CONFIG_REGION_INDEX => (
                        CONFIG_SIZE as u64,
                        VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE,
                    ),
                    VFIO_PCI_BAR0_REGION_INDEX => (
                        rhca_hw::pci::BAR0_SIZE,
                        VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE,
                    ),
                    _ => (0, 0),
                };
                ServerRegion {
                    region_info: vfio_region_info {
                        argsz: u32::try_from(size_of::<vfio_region_info>()).unwrap_or(32),
                        flags,
                        index,
                        size,
                        ..vfio_region_info::default()
                    },
                    sparse_areas: Vec::new(),
                    mmap_fd: None,
                }
            })
            .collect()
    }

    /// The interrupts the server announces: `INTx` (one) and MSI-X (the table's size).
    #[must_use]
    pub fn irqs(msix_vectors: u32) -> Vec<IrqInfo> {
        (0..VFIO_PCI_NUM_IRQS)
            .map(|index| {
                let (count, flags) = match index {
                    VFIO_PCI_INTX_IRQ_INDEX => (1, VFIO_IRQ_INFO_EVENTFD),
                    VFIO_PCI_MSIX_IRQ_INDEX => {
                        (msix_vectors, VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE)
                    }
                    _ => (0, 0),
                };
                IrqInfo {
                    index,
                    flags,
                    count,
                }
            })
            .collect()
    }

    /// The client went away: its memory is unmapped, its eventfds closed, and the function
    /// reset (as a VM's shutdown leaves it), so that the next client starts clean.
    pub fn disconnect(&mut self) {
        self.function_reset();
        self.port.memory_mut().clear();
        self.port
            .msix
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
        *self
            .port
            .intx
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }

    /// A function-level reset: configuration space and device to power-on state (mappings
    /// and eventfds are the client's and stay).
    fn function_reset(&mut self) {
        self.config.reset();
        self.sync_command();
        self.dev.function_level_reset();
    }

    fn sync_command(&self) {
        self.port
            .bus_master
            .store(self.config.bus_master(), Ordering::Release);
        self.port
            .intx_disabled
            .store(self.config.intx_disabled(), Ordering::Release);
        self.port
            .msix_enabled
            .store(self.config.msix_enabled(), Ordering::Release);
    }

    fn bar0_range(offset: u64, len: usize) -> io::Result<u64> {
        let end = offset.checked_add(len as u64);
        if end.is_none_or(|e| e > rhca_hw::pci::BAR0_SIZE) {
            return Err(invalid(format!(
                "BAR0 access of {len} bytes at {offset:#x} is outside its {:#x} bytes",
                rhca_hw::pci::BAR0_SIZE
            )));
        }
        Ok(offset)
    }
}

impl ServerBackend for RhcaBackend {
    fn region_read(&mut self, region: u32, offset: u64, data: &mut [u8]) -> io::Result<()> {
        match region {
            VFIO_PCI_CONFIG_REGION_INDEX => self
                .config
                .read(offset, data)
                .map_err(|e| invalid(e.to_string())),
            VFIO_PCI_BAR0_REGION_INDEX => {
                Self::bar0_range(offset, data.len())?;
                match data.len() {
                    1 | 2 | 4 => {
                        let dword = offset & !3;
                        let shift = usize::try_from(offset - dword).unwrap_or(0);
                        if shift + data.len() > 4 {
                            return Err(invalid("a BAR0 read may not cross a dword"));
                        }
                        let v = self.dev.mmio_read(0, dword).to_le_bytes();
                        data.copy_from_slice(&v[shift..shift + data.len()]);
                        Ok(())
                    }
                    8 if offset.is_multiple_of(8) => {
                        data[..4].copy_from_slice(&self.dev.mmio_read(0, offset).to_le_bytes());
                        data[4..].copy_from_slice(&self.dev.mmio_read(0, offset + 4).to_le_bytes());
                        Ok(())
                    }
                    n => Err(invalid(format!("a BAR0 read of {n} bytes at {offset:#x}"))),
                }
            }
            r => Err(invalid(format!("region {r} is not implemented"))),
        }
    }

    fn region_write(&mut self, region: u32, offset: u64, data: &[u8]) -> io::Result<()> {
        match region {
            VFIO_PCI_CONFIG_REGION_INDEX => {
                let effect = self
                    .config
                    .write(offset, data)
                    .map_err(|e| invalid(e.to_string()))?;
                // The configuration space reset itself; the device follows.
                if effect.flr {
                    self.dev.function_level_reset();
                }
                self.sync_command();
                Ok(())
            }
            VFIO_PCI_BAR0_REGION_INDEX => {
                Self::bar0_range(offset, data.len())?;
                // Registers and doorbells are 32 bits wide (docs/device.md §2): a narrower
                // write has no defined effect, so it is refused rather than guessed at.
                if !offset.is_multiple_of(4) || !matches!(data.len(), 4 | 8) {
                    return Err(invalid(format!(
                        "a BAR0 write of {} bytes at {offset:#x}: registers take aligned 32-bit writes",
                        data.len()
                    )));
                }
                for (i, chunk) in data.chunks_exact(4).enumerate() {
                    let v = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
                    self.dev.mmio_write(0, offset + 4 * i as u64, v);
                }
                Ok(())
            }
            r => Err(invalid(format!("region {r} is not implemented"))),
        }
    }

    fn dma_map(
        &mut self,
        flags: DmaMapFlags,
        offset: u64,
        address: u64,
        size: u64,
        fd: Option<File>,
    ) -> io::Result<()> {
        self.port
            .memory_mut()
            .map(
                address,
                size,
                fd.as_ref(),
                offset,
                flags.contains(DmaMapFlags::READ),
                flags.contains(DmaMapFlags::WRITE),
            )
            .map_err(|e| invalid(e.to_string()))
        // The descriptor closes here: the mapping keeps the memory.
    }

    fn dma_unmap(&mut self, flags: DmaUnmapFlags, address: u64, size: u64) -> io::Result<()> {
        let mut memory = self.port.memory_mut();
        if flags.contains(DmaUnmapFlags::UNMAP_ALL) {
            memory.clear();
            return Ok(());
        }
        memory
            .unmap(address, size)
            .map_err(|e| invalid(e.to_string()))
    }

    fn reset(&mut self) -> io::Result<()> {
        self.function_reset();
        Ok(())
    }

    #[expect(
        clippy::significant_drop_tightening,
        reason = "an interrupt table is locked for the whole of its update"
    )]
    fn set_irqs(
        &mut self,
        index: u32,
        flags: u32,
        start: u32,
        count: u32,
        fds: Vec<File>,
    ) -> io::Result<()> {
        if flags & VFIO_IRQ_SET_ACTION_TRIGGER == 0 {
            // Mask and unmask are the VMM's business for eventfd interrupts; accept them.
            return Ok(());
        }
        let end = start
            .checked_add(count)
            .ok_or_else(|| invalid("interrupt range wraps"))?;
        match index {
            VFIO_PCI_MSIX_IRQ_INDEX => {
                if end > self.msix_vectors {
                    return Err(invalid(format!(
                        "MSI-X vectors {start}..{end}: the table has {}",
                        self.msix_vectors
                    )));
                }
                let mut table = self
                    .port
                    .msix
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if table.len() < self.msix_vectors as usize {
                    table.resize_with(self.msix_vectors as usize, || None);
                }
                if flags & VFIO_IRQ_SET_DATA_NONE != 0 && count == 0 {
                    table.iter_mut().for_each(|s| *s = None);
                    return Ok(());
                }
                if flags & VFIO_IRQ_SET_DATA_EVENTFD == 0 || fds.len() != count as usize {
                    return Err(invalid(format!(
                        "MSI-X: {count} vectors need {count} eventfds, got {}",
                        fds.len()
                    )));
                }
                for (slot, fd) in table[start as usize..end as usize].iter_mut().zip(fds) {
                    *slot = Some(fd);
                }
                Ok(())
            }
            VFIO_PCI_INTX_IRQ_INDEX => {
                let mut intx = self
                    .port
                    .intx
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                match (count, fds.len()) {
                    (0, 0) => {
                        *intx = None;
                        Ok(())
                    }
                    (1, 1) if start == 0 && flags & VFIO_IRQ_SET_DATA_EVENTFD != 0 => {
                        *intx = fds.into_iter().next();
                        Ok(())
                    }
                    _ => Err(invalid("INTx takes one eventfd at index 0")),
                }
            }
            i => Err(invalid(format!("interrupt index {i} is not implemented"))),
        }
    }
}
