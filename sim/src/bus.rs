//! The device's side of the bus: PCI functions attached to the machine, their BARs and
//! interrupts, and DMA by logical address.
//!
//! A device model implements [`PciFunction`] and is attached with [`crate::Machine::attach`],
//! which gives it a [`DeviceBus`]: the only way it can touch host memory. Every access names a
//! logical address; the bus translates it as the platform would (identity, or the IOMMU's table
//! under the `iommu` profile), checks the device's address width, bus-master enable and
//! presence, and reports a [`DmaFault`] instead of touching memory it cannot reach. Under the
//! `iommu` profile an access outside a live mapping stops the machine with E6/0x26, as DMA
//! remapping does on Windows.
//!
//! Register accesses by the driver (`mmio_read32`/`mmio_write32` on a `MmMapIoSpaceEx` mapping)
//! are routed synchronously to the device that owns the BAR, without the machine lock held, so
//! the device may perform DMA from inside a register write (a doorbell).

use std::sync::{Arc, Weak};

use crate::bugcheck::BugCheck;
use crate::machine::{Inner, Machine};
use crate::types::{_DEVICE_OBJECT, PDEVICE_OBJECT, USHORT};

/// What a device model must provide to sit on the simulated PCI bus.
pub trait PciFunction: Send + Sync {
    /// Vendor id, device id, class code and revision.
    fn identity(&self) -> PciIdentity;
    /// Size of memory BAR `bar` in bytes (0: not implemented).
    fn bar_size(&self, bar: u8) -> u64;
    /// A 32-bit register read at `offset` of BAR `bar`.
    fn mmio_read(&self, bar: u8, offset: u64) -> u32;
    /// A 32-bit register write at `offset` of BAR `bar`.
    fn mmio_write(&self, bar: u8, offset: u64, value: u32);
    /// Address bits the device drives on the bus (32 or 64).
    fn dma_address_width(&self) -> u32;
    /// One round of the work that register writes gave the function, done on the calling
    /// thread: a simulated CPU that wrote its registers during a system call calls this until
    /// it returns false, before the call returns to the application ([`stepped_by_caller`]).
    /// Returns whether anything moved. The default does nothing: a function that runs only on
    /// threads of its own needs nothing from the CPU.
    ///
    /// The work done here is the device's, not the driver's: the device runs beside the CPU
    /// on hardware, and a round here is one order of events a real machine can show (the
    /// device took until the end of the dispatch routine to fetch the doorbell's work).
    fn step(&self) -> bool {
        false
    }
}

/// Whether the calling thread steps the functions it writes to ([`PciFunction::step`]).
///
/// True on a simulated CPU in a system call, which steps them before the call returns. A
/// device model need not wake a thread of its own for work that a register write gives it
/// here: it gets the round anyway.
#[must_use]
pub fn stepped_by_caller() -> bool {
    STEPPED.try_with(|s| s.borrow().active).unwrap_or(false)
}

/// The functions a CPU owes a round of work ([`PciFunction::step`]): those it wrote to since
/// it last stepped them, while it is in a system call that steps them.
#[derive(Default)]
struct Stepped {
    active: bool,
    touched: Vec<Arc<dyn PciFunction>>,
}

thread_local! {
    static STEPPED: std::cell::RefCell<Stepped> = std::cell::RefCell::new(Stepped::default());
}

/// Starts (`true`) or ends (`false`) a system call that steps the functions it writes to. At
/// the end, anything not yet stepped is forgotten: a doorbell the CPU rang without stepping it
/// has also woken the device's own thread.
pub(crate) fn set_stepping(on: bool) {
    let _ = STEPPED.try_with(|s| {
        let mut s = s.borrow_mut();
        s.active = on;
        if !on {
            s.touched.clear();
        }
    });
}

/// Moves the functions written to since the last call into `into` (emptied first).
pub(crate) fn take_touched(into: &mut Vec<Arc<dyn PciFunction>>) {
    into.clear();
    let _ = STEPPED.try_with(|s| std::mem::swap(&mut s.borrow_mut().touched, into));
}

/// Notes a register write to `func` by this thread, when it steps what it writes to.
fn touched(func: &Arc<dyn PciFunction>) {
    let _ = STEPPED.try_with(|s| {
        let mut s = s.borrow_mut();
        if s.active && !s.touched.iter().any(|f| Arc::ptr_eq(f, func)) {
            s.touched.push(func.clone());
        }
    });
}

/// PCI configuration-space identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PciIdentity {
    /// Vendor id.
    pub vendor_id: u16,
    /// Device id.
    pub device_id: u16,
    /// Class code (base, sub, interface).
    pub class_code: u32,
    /// Revision.
    pub revision: u8,
}

/// Why a device's DMA did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DmaFault {
    /// The device has been removed from the bus.
    NotPresent,
    /// Bus-master enable is off.
    BusMasterDisabled,
    /// The address needs more bits than the device drives.
    BeyondAddressWidth(u64),
    /// DMA remapping found no live mapping (the machine stopped with E6/0x26).
    IommuFault(u64),
    /// No memory answers at this physical address (master abort).
    NoMemory(u64),
    /// The machine has stopped.
    MachineHalted,
}

/// An interrupt a device signals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interrupt {
    /// An MSI-X message for `vector` (a posted memory write: it needs bus-master enable).
    Msi {
        /// The table entry.
        vector: u32,
    },
    /// The `INTx` line went from deasserted to asserted.
    IntxAsserted,
    /// The `INTx` line was deasserted.
    IntxDeasserted,
}

/// Where a device's interrupts go: the interrupt controller of wdk-sim part 2 (KMDF) or a test.
pub type InterruptSink = Arc<dyn Fn(Interrupt) + Send + Sync>;

/// Direction of a device access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    Read,
    Write,
}

#[derive(Debug)]
pub(crate) struct Slot {
    pub(crate) pdo: Box<crate::typed::NoDebug<_DEVICE_OBJECT>>,
    pub(crate) bar_phys: [u64; 6],
    pub(crate) bar_len: [u64; 6],
    pub(crate) present: bool,
    pub(crate) bus_master: bool,
    pub(crate) width: u32,
    pub(crate) identity: PciIdentity,
    pub(crate) stray: Vec<(u64, usize, bool)>,
    pub(crate) intx: bool,
    pub(crate) pending: Vec<Interrupt>,
}

#[expect(
    clippy::non_send_fields_in_send_ty,
    reason = "see the SAFETY comment: the pointers are identifiers only"
)]
// SAFETY: the PDO's pointer fields are never dereferenced by the simulator (they are null or
// point at machine-owned objects); the slot moves between threads only inside the machine lock.
unsafe impl Send for Slot {}

/// One `MmMapIoSpaceEx` mapping of a BAR.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IoMapping {
    pub(crate) va: usize,
    pub(crate) len: usize,
    pub(crate) device: usize,
    pub(crate) bar: u8,
    pub(crate) offset: u64,
    /// The BAR has since been moved by a rebalance: the mapping's physical range no longer
    /// decodes to this device, and an access through it is a bug.
    pub(crate) moved: bool,
}

/// The bus: attached devices and register mappings.
#[derive(Default)]
pub(crate) struct Bus {
    pub(crate) slots: Vec<Slot>,
    pub(crate) functions: Vec<Arc<dyn PciFunction>>,
    pub(crate) sinks: Vec<Option<InterruptSink>>,
    pub(crate) io_maps: Vec<IoMapping>,
    next_bar: u64,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus")
            .field("slots", &self.slots.len())
            .field("io_maps", &self.io_maps)
            .finish_non_exhaustive()
    }
}

impl Bus {
    /// The slot whose PDO is `pdo`.
    pub(crate) fn slot_of_pdo(&self, pdo: PDEVICE_OBJECT) -> Option<usize> {
        self.slots
            .iter()
            .position(|s| std::ptr::eq((&raw const *s.pdo).cast::<_DEVICE_OBJECT>(), pdo))
    }

    /// The device and BAR offset that physical address range `pa .. pa + len` falls in.
    pub(crate) fn bar_at(&self, pa: u64, len: u64) -> Option<(usize, u8, u64)> {
        for (i, s) in self.slots.iter().enumerate() {
            for bar in 0..6u8 {
                let (b, l) = (s.bar_phys[bar as usize], s.bar_len[bar as usize]);
                if l > 0 && pa >= b && pa + len <= b + l {
                    return Some((i, bar, pa - b));
                }
            }
        }
        None
    }

    /// A fresh BAR window of at least `len` bytes: BARs live in a 64-bit window above all RAM
    /// frames, naturally aligned, and are never reused (a moved BAR gets a new address).
    fn assign_bar(&mut self, len: u64) -> (u64, u64) {
        let base = 0x80_0000_0000 + self.next_bar;
        let len = len.next_power_of_two().max(0x1000);
        let base = base.div_ceil(len) * len;
        self.next_bar = base + len - 0x80_0000_0000;
        (base, len)
    }

    /// Whether the `INTx` line of the device in `slot` is asserted (and the device present).
    pub(crate) fn intx_asserted(&self, slot: usize) -> bool {
        self.slots.get(slot).is_some_and(|s| s.present && s.intx)
    }

    /// The register mapping containing `va .. va + 4`.
    pub(crate) fn io_map_at(&self, va: usize) -> Option<IoMapping> {
        self.io_maps
            .iter()
            .copied()
            .find(|m| va >= m.va && va + 4 <= m.va + m.len)
    }
}

/// A device's handle on the bus.
#[derive(Clone, Debug)]
pub struct DeviceBus {
    machine: Weak<Inner>,
    slot: usize,
}

/// The PDO and resources of an attached device, for the `PnP` harness and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attached {
    /// The physical device object (what `WdfDeviceWdmGetPhysicalDevice` returns).
    pub pdo: PDEVICE_OBJECT,
    /// Physical base address of each implemented BAR (0 otherwise).
    pub bar_phys: [u64; 6],
    /// Length of each BAR.
    pub bar_len: [u64; 6],
    /// The slot number.
    pub slot: usize,
}

// SAFETY: `Attached` only carries the PDO's address as an identifier; the PDO itself is owned
// by the machine and never dereferenced through this copy outside the machine.
unsafe impl Send for Attached {}

impl Machine {
    /// Attaches a PCI function: assigns BAR addresses, creates its PDO and enables bus mastering.
    #[expect(
        clippy::significant_drop_tightening,
        reason = "the lock covers the whole slot creation"
    )]
    pub fn attach(&self, function: Arc<dyn PciFunction>) -> (Attached, DeviceBus) {
        let identity = function.identity();
        let width = function.dma_address_width();
        let mut st = self.0.lock();
        let bus = &mut st.bus;
        let slot = bus.slots.len();
        let mut bar_phys = [0u64; 6];
        let mut bar_len = [0u64; 6];
        for bar in 0..6u8 {
            let len = function.bar_size(bar);
            if len > 0 {
                let (base, len) = bus.assign_bar(len);
                bar_phys[bar as usize] = base;
                bar_len[bar as usize] = len;
            }
        }
        let pdo = Box::new(crate::typed::NoDebug(_DEVICE_OBJECT {
            Type: 3,
            Size: size_of::<_DEVICE_OBJECT>() as USHORT,
            ReferenceCount: 1,
            StackSize: 1,
            ..Default::default()
        }));
        let pdo_ptr = std::ptr::from_ref(&*pdo)
            .cast_mut()
            .cast::<_DEVICE_OBJECT>();
        bus.slots.push(Slot {
            pdo,
            bar_phys,
            bar_len,
            present: true,
            bus_master: true,
            width,
            identity,
            stray: Vec::new(),
            intx: false,
            pending: Vec::new(),
        });
        bus.functions.push(function);
        bus.sinks.push(None);
        (
            Attached {
                pdo: pdo_ptr,
                bar_phys,
                bar_len,
                slot,
            },
            DeviceBus {
                machine: Arc::downgrade(&self.0),
                slot,
            },
        )
    }

    /// Moves every BAR of the device in `slot` to a new address, as the PCI bus driver does when
    /// the `PnP` manager rebalances resources (between `IRP_MN_STOP_DEVICE` and the next
    /// `IRP_MN_START_DEVICE`). Register mappings still held on the old addresses stop decoding to
    /// the device: an access through one bug-checks. Returns the device's new resources.
    ///
    /// # Panics
    /// If `slot` names no device.
    #[must_use]
    pub fn move_bars(&self, slot: usize) -> Attached {
        let mut st = self.0.lock();
        let bus = &mut st.bus;
        let lens = bus.slots[slot].bar_len;
        let mut phys = [0u64; 6];
        for bar in 0..6 {
            if lens[bar] > 0 {
                phys[bar] = bus.assign_bar(lens[bar]).0;
            }
        }
        bus.slots[slot].bar_phys = phys;
        for m in bus.io_maps.iter_mut().filter(|m| m.device == slot) {
            m.moved = true;
        }
        let pdo = std::ptr::from_ref(&*bus.slots[slot].pdo)
            .cast_mut()
            .cast::<_DEVICE_OBJECT>();
        drop(st);
        Attached {
            pdo,
            bar_phys: phys,
            bar_len: lens,
            slot,
        }
    }

    /// Removes a device from the bus abruptly (surprise removal): its registers read all-ones,
    /// writes are dropped and it can no longer perform DMA.
    pub fn surprise_remove(&self, slot: usize) {
        if let Some(s) = self.0.lock().bus.slots.get_mut(slot) {
            s.present = false;
        }
    }

    /// The PCI identity of the device in `slot`.
    #[must_use]
    pub fn identity(&self, slot: usize) -> Option<PciIdentity> {
        self.0.lock().bus.slots.get(slot).map(|s| s.identity)
    }

    /// Routes the interrupts of the device in `slot` to `sink` (called without the machine lock);
    /// signals that arrived before are delivered to it now, in order.
    pub fn set_interrupt_sink(&self, slot: usize, sink: &InterruptSink) {
        let pending = {
            let mut st = self.0.lock();
            if let Some(s) = st.bus.sinks.get_mut(slot) {
                *s = Some(sink.clone());
            }
            st.bus
                .slots
                .get_mut(slot)
                .map(|s| std::mem::take(&mut s.pending))
                .unwrap_or_default()
        };
        for i in pending {
            sink(i);
        }
    }

    /// Interrupts the device in `slot` signalled while no sink was set.
    #[must_use]
    pub fn take_interrupts(&self, slot: usize) -> Vec<Interrupt> {
        self.0
            .lock()
            .bus
            .slots
            .get_mut(slot)
            .map(|s| std::mem::take(&mut s.pending))
            .unwrap_or_default()
    }

    /// Sets the device's bus-master enable bit (PCI command register).
    pub fn set_bus_master(&self, slot: usize, enabled: bool) {
        if let Some(s) = self.0.lock().bus.slots.get_mut(slot) {
            s.bus_master = enabled;
        }
    }

    /// DMA the device performed outside every range the driver mapped for it, on profiles where
    /// that does not stop the machine: `(logical address, length, was a write)`.
    #[must_use]
    pub fn stray_dma(&self, slot: usize) -> Vec<(u64, usize, bool)> {
        self.0
            .lock()
            .bus
            .slots
            .get(slot)
            .map(|s| s.stray.clone())
            .unwrap_or_default()
    }
}

/// The address checks of one device access: `logical .. logical + len` neither wraps nor
/// lies beyond the device's address width.
#[inline]
fn within_width(width: u32, logical: u64, len: usize) -> Result<(), Result<DmaFault, BugCheck>> {
    let end = logical
        .checked_add(len as u64)
        .ok_or(Ok(DmaFault::BeyondAddressWidth(logical)))?;
    if width < 64 && end > 1u64 << width {
        return Err(Ok(DmaFault::BeyondAddressWidth(logical)));
    }
    Ok(())
}

/// The host runs of the leading pieces of a burst on a platform without remapping that are
/// the common case, appended to `hosts`: each within one page, within the device's address
/// width (`width` bits), on a page a mapped range covers whole (`full`, so not stray), with a
/// frame (`frames`). Returns how many pieces it took; the first piece it did not take goes
/// down the general path, which checks it in full (and reports what is wrong).
///
/// Why: under `coherent` a burst over a scattered buffer is one piece per page, and the general
/// path's translation loop, closure and separate visibility check cost about 85 instructions
/// per piece, a fifth of the page's copy under valgrind. A loop over single pieces that took
/// the machine's state cost ~60 more, most of them reloads of the two tables and spills; here
/// the tables are arguments (nothing the loop writes can change them) and the width's check
/// is one compare.
#[inline]
fn common_runs(
    full: &crate::pagetable::PageTable<u32>,
    frames: &crate::pagetable::PageTable<usize>,
    width: u32,
    pieces: &[(u64, usize)],
    hosts: &mut Vec<(usize, usize)>,
) -> usize {
    // The highest address the device can reach (as `within_width` checks it).
    let last_reachable = if width < 64 {
        (1u64 << width) - 1
    } else {
        u64::MAX
    };
    // Room for every piece, written in place and cut back to those taken: a push per piece
    // stored the vector's length back each time.
    let base = hosts.len();
    hosts.resize(base + pieces.len(), (0, 0));
    let mut taken = 0;
    for (run, &(logical, len)) in hosts[base..].iter_mut().zip(pieces) {
        let off = (logical & 0xFFF) as usize;
        // Within one page and not empty: the last byte's address cannot overflow (the page
        // ends at or below 2^64).
        if len == 0 || off + len > crate::mem::PAGE || logical + (len as u64 - 1) > last_reachable {
            break;
        }
        let page = logical >> 12;
        if full.get(page) == 0 {
            break;
        }
        let host = frames.get(page);
        if host == 0 {
            break;
        }
        *run = (host + off, len);
        taken += 1;
    }
    hosts.truncate(base + taken);
    taken
}

/// The bytes a burst's `(address, length)` pieces cover.
fn bytes_of(pieces: &[(u64, usize)]) -> usize {
    pieces.iter().map(|p| p.1).sum()
}

/// The bug check of a device access at `at` that the IOMMU refused (no live mapping, or a write
/// through a read-only one), by the device whose PDO is `pdo`.
fn iommu_violation(pdo: u64, at: u64, kind: Access) -> BugCheck {
    BugCheck::dma(
        0x26,
        pdo,
        at,
        if kind == Access::Write { 2 } else { 1 },
        "IOMMU detected DMA violation: device access outside every live mapping",
        "windows-dma.md §5.2, §6",
    )
}

impl DeviceBus {
    fn machine(&self) -> Result<Arc<Inner>, DmaFault> {
        let m = self.machine.upgrade().ok_or(DmaFault::MachineHalted)?;
        if m.halted().is_some() {
            return Err(DmaFault::MachineHalted);
        }
        Ok(m)
    }

    /// Runs one device access `op` with the machine's state locked; a bug check it returns
    /// stops the machine once the lock is released, and the device sees an IOMMU fault.
    fn locked(
        &self,
        op: impl FnOnce(&mut crate::machine::State, &Inner) -> Result<(), Result<DmaFault, BugCheck>>,
    ) -> Result<(), DmaFault> {
        let m = self.machine()?;
        let r = op(&mut m.lock(), &m);
        // The IOTLB misses of the access stall the device, not the machine: they are spent
        // after the lock is released.
        crate::hal::iommu_pay();
        let fault = match r {
            Ok(()) => return Ok(()),
            Err(Ok(f)) => return Err(f),
            Err(Err(b)) => b,
        };
        m.record(fault);
        Err(DmaFault::IommuFault(fault.params[2]))
    }

    /// One access with the machine's state locked: `Err(Ok(fault))` for a fault the device
    /// sees, `Err(Err(bug check))` for one that stops the machine (recorded by the caller once
    /// the lock is released).
    fn access_locked(
        &self,
        st: &mut crate::machine::State,
        m: &Inner,
        logical: u64,
        len: usize,
        kind: Access,
        f: &mut dyn FnMut(&mut crate::mem::Memory, u64) -> Result<(), u64>,
    ) -> Result<(), Result<DmaFault, BugCheck>> {
        let mut runs = st.hal.take_runs();
        let r = self
            .translate_locked(st, m, logical, len, kind, &mut runs)
            .and_then(|()| {
                for &(pa, _n) in &runs {
                    f(&mut st.mem, pa).map_err(|at| Ok(DmaFault::NoMemory(at)))?;
                }
                Ok(())
            });
        st.hal.put_runs(runs);
        r
    }

    /// One device write of `buf` at `logical` with the machine's state locked, as
    /// [`DeviceBus::access_locked`] checks it; the bytes go to memory run by run with one frame
    /// lookup each (the path every DMA write the device model makes takes, a capture burst's
    /// pieces included). A piece with a page that has no frame writes nothing.
    fn write_locked(
        &self,
        st: &mut crate::machine::State,
        m: &Inner,
        logical: u64,
        buf: &[u8],
    ) -> Result<(), Result<DmaFault, BugCheck>> {
        let mut runs = st.hal.take_runs();
        let r = self
            .translate_locked(st, m, logical, buf.len(), Access::Write, &mut runs)
            .and_then(|()| {
                st.mem
                    .write_runs(&runs, [buf])
                    .map_err(|(_, at)| Ok(DmaFault::NoMemory(at)))
            });
        st.hal.put_runs(runs);
        r
    }

    /// The checks of one device access and its translation into physical runs (each within
    /// one page): the function present with bus mastering on, the address within the device's
    /// width, every page mapped (under DMA remapping: bug check 0x26 otherwise), and an access
    /// outside every range the driver mapped recorded as stray.
    fn translate_locked(
        &self,
        st: &mut crate::machine::State,
        m: &Inner,
        logical: u64,
        len: usize,
        kind: Access,
        runs: &mut Vec<(u64, usize)>,
    ) -> Result<(), Result<DmaFault, BugCheck>> {
        let slot = self.slot_checks(st)?;
        self.translate_checked(st, m, slot, logical, len, kind, runs)
    }

    /// The checks of a device access that hold for a whole burst (the lock is held across it):
    /// the function present with bus mastering on. Returns its address width and PDO.
    fn slot_checks(
        &self,
        st: &crate::machine::State,
    ) -> Result<(u32, u64), Result<DmaFault, BugCheck>> {
        let slot = st
            .bus
            .slots
            .get(self.slot)
            .ok_or(Ok(DmaFault::NotPresent))?;
        if !slot.present {
            return Err(Ok(DmaFault::NotPresent));
        }
        if !slot.bus_master {
            return Err(Ok(DmaFault::BusMasterDisabled));
        }
        Ok((slot.width, std::ptr::from_ref(&*slot.pdo) as u64))
    }

    /// The checks of one access after [`DeviceBus::slot_checks`] (`(width, pdo)` is what they
    /// returned) and its translation, as [`DeviceBus::translate_locked`] describes.
    #[expect(
        clippy::too_many_arguments,
        reason = "the access, the slot's checked facts and the run buffer, all needed per piece"
    )]
    fn translate_checked(
        &self,
        st: &mut crate::machine::State,
        m: &Inner,
        (width, pdo): (u32, u64),
        logical: u64,
        len: usize,
        kind: Access,
        runs: &mut Vec<(u64, usize)>,
    ) -> Result<(), Result<DmaFault, BugCheck>> {
        within_width(width, logical, len)?;
        let iommu = m.config.profile.iommu;
        st.hal
            .translate(logical, len, kind, iommu, runs)
            .map_err(|at| Err(iommu_violation(pdo, at, kind)))?;
        self.note_if_stray(st, logical, len, kind, iommu);
        Ok(())
    }

    /// Records an access outside every range the driver mapped for a device (non-remapped
    /// platforms: under DMA remapping the IOMMU's table is the check).
    #[inline]
    fn note_if_stray(
        &self,
        st: &mut crate::machine::State,
        logical: u64,
        len: usize,
        kind: Access,
        iommu: bool,
    ) {
        if !st.hal.device_visible(logical, len, iommu) {
            st.bus.slots[self.slot]
                .stray
                .push((logical, len, kind == Access::Write));
        }
    }

    /// A burst's checks and translation on a platform whose pages have no cached copies, with
    /// the machine's lock held: each piece checked as [`DeviceBus::translate_checked`] checks
    /// it and translated straight to the host runs it is copied to (`hosts`, cleared first) in
    /// one pass, a frame looked up once per page. Returns the first piece that faulted and why;
    /// `hosts` then holds the runs of the pieces before it, and nothing of it or after it was
    /// checked: a DMA engine's burst ends at its first fault.
    fn resolve_burst(
        &self,
        st: &mut crate::machine::State,
        m: &Inner,
        (width, pdo): (u32, u64),
        pieces: &[(u64, usize)],
        hosts: &mut Vec<(usize, usize)>,
    ) -> Option<(usize, Result<DmaFault, BugCheck>)> {
        hosts.clear();
        let iommu = m.config.profile.iommu;
        let mut i = 0;
        while i < pieces.len() {
            if !iommu {
                let (full, frames) = (st.hal.full_page_table(), st.mem.frame_table());
                i += common_runs(full, frames, width, &pieces[i..], hosts);
                if i == pieces.len() {
                    break;
                }
            }
            let (logical, len) = pieces[i];
            if let Err(e) = within_width(width, logical, len) {
                return Some((i, e));
            }
            let mark = hosts.len();
            // A page without a frame ends the burst with this piece, but only after the whole
            // piece is translated: an IOMMU fault further on in it stops the machine, as when
            // the translation ran before any frame was looked up.
            let mut missing = None;
            let mem = &st.mem;
            let translated = st
                .hal
                .translate_each(logical, len, Access::Write, iommu, |pa, n| {
                    if missing.is_none() {
                        match mem.resolve_run(pa, n) {
                            Some(run) => hosts.push(run),
                            None => missing = Some(pa),
                        }
                    }
                });
            if let Err(at) = translated {
                hosts.truncate(mark);
                return Some((i, Err(iommu_violation(pdo, at, Access::Write))));
            }
            self.note_if_stray(st, logical, len, Access::Write, iommu);
            if let Some(pa) = missing {
                hosts.truncate(mark);
                return Some((i, Ok(DmaFault::NoMemory(pa))));
            }
            i += 1;
        }
        None
    }

    /// A burst on a platform with cached pages, written with the machine's lock held (the
    /// copy updates the pages' memory copies): every piece is checked and translated first,
    /// then written in one pass over its runs. Returns the first piece that faulted (in its
    /// checks or translation, or a page without a frame) and why; the pieces before it are
    /// written, as if they had been written one by one. (One difference: a piece after a page
    /// without a frame has been translated, so it is recorded as stray DMA if it lies outside
    /// every mapped range, though it was never written.)
    fn write_burst_locked(
        &self,
        st: &mut crate::machine::State,
        m: &Inner,
        slot: (u32, u64),
        data: &[u8],
        pieces: &[(u64, usize)],
    ) -> Option<(usize, Result<DmaFault, BugCheck>)> {
        let mut runs = st.hal.take_runs();
        let mut starts = st.hal.take_piece_starts();
        let mut failed = None;
        for (i, &(logical, len)) in pieces.iter().enumerate() {
            starts.push(runs.len());
            if let Err(e) =
                self.translate_checked(st, m, slot, logical, len, Access::Write, &mut runs)
            {
                runs.truncate(starts[i]);
                failed = Some((i, e));
                break;
            }
        }
        let upto = failed.as_ref().map_or(pieces.len(), |f| f.0);
        if let Err((run, pa)) = st
            .mem
            .write_runs(&runs, [&data[..bytes_of(&pieces[..upto])]])
        {
            // The piece the missing page belongs to faults; those before it are written.
            let piece = starts.partition_point(|&s| s <= run) - 1;
            let before = &runs[..starts[piece]];
            let written = st
                .mem
                .write_runs(before, [&data[..bytes_of(&pieces[..piece])]]);
            debug_assert!(
                written.is_ok(),
                "every page before the missing one has a frame"
            );
            failed = Some((piece, Ok(DmaFault::NoMemory(pa))));
        }
        st.hal.put_runs(runs);
        st.hal.put_piece_starts(starts);
        failed
    }

    /// Writes `data` over the `(logical address, length)` pieces in order, as one burst (the
    /// first piece takes the first bytes, and so on; the lengths add up to `data`'s): the bus
    /// is taken once for all of them (a burst over a scatter/gather list whose pages are not
    /// contiguous is still one transaction for the device's DMA engine). Every piece is checked
    /// as [`DeviceBus::dma_write`] checks it.
    ///
    /// The checks and the translation run with the machine's lock held; the bytes are copied
    /// after it is released (with the pages pinned, see `mem::DmaPin`), as a device's DMA engine
    /// moves data while the CPUs run: a driver's register access, DPC or system call does not
    /// wait for a 64 KiB copy. The burst takes effect as a whole when it is translated: a page
    /// freed while it is copying keeps its bytes until the copy is done, and is not reused
    /// before (a driver that frees memory the device still writes is caught by the next
    /// burst's checks, as a later transaction would be on real hardware). On a platform with
    /// cached pages the copy stays under the lock (it writes the pages' memory copies).
    ///
    /// # Errors
    /// The index of the first piece that faulted and its [`DmaFault`]; the pieces before it
    /// were written.
    ///
    /// # Panics
    /// When the pieces' lengths do not add up to `data`'s (a device model's bug).
    pub fn dma_write_pieces(
        &self,
        data: &[u8],
        pieces: &[(u64, usize)],
    ) -> Result<(), (usize, DmaFault)> {
        self.dma_write_pieces_if(data, pieces, &|| true).map(drop)
    }

    /// As [`DeviceBus::dma_write_pieces`], but the burst is issued only if `live()` returns
    /// true when the bus takes it: `live` is called once, with the machine's lock held, before
    /// any check (it must not take a lock the machine's holder could wait for; reading an
    /// atomic is what it is for). A device model that prepares a burst without its own lock
    /// held passes whether the burst is still wanted (no reset since), so that a reset the
    /// driver wrote before it frees the buffer is never followed by the burst's DMA.
    ///
    /// Returns whether the burst was issued; a burst that was not wrote nothing.
    ///
    /// # Errors
    /// As [`DeviceBus::dma_write_pieces`].
    ///
    /// # Panics
    /// As [`DeviceBus::dma_write_pieces`].
    pub fn dma_write_pieces_if(
        &self,
        data: &[u8],
        pieces: &[(u64, usize)],
        live: &dyn Fn() -> bool,
    ) -> Result<bool, (usize, DmaFault)> {
        assert_eq!(
            bytes_of(pieces),
            data.len(),
            "a burst's pieces cover its bytes exactly"
        );
        thread_local! {
            /// Each run's host address and length, for the copy after the lock is released.
            static HOSTS: std::cell::RefCell<Vec<(usize, usize)>> =
                const { std::cell::RefCell::new(Vec::new()) };
        }
        let m = self.machine().map_err(|f| (0, f))?;
        HOSTS.with_borrow_mut(|hosts| {
            let mut guard = m.lock();
            if !live() {
                return Ok(false);
            }
            let st = &mut *guard;
            // The slot's checks hold for the whole burst: the lock is held across it.
            let (failed, upto, pin) = match self.slot_checks(st) {
                Err(e) => (Some((0, e)), 0, None),
                Ok(slot) if st.mem.writes_need_lock() => {
                    (self.write_burst_locked(st, &m, slot, data, pieces), 0, None)
                }
                Ok(slot) => {
                    let failed = self.resolve_burst(st, &m, slot, pieces, hosts);
                    let upto = failed.as_ref().map_or(pieces.len(), |f| f.0);
                    (failed, upto, Some(st.mem.pin()))
                }
            };
            drop(guard);
            if let Some(pin) = pin {
                // SAFETY: `hosts` was resolved with the lock held that took `pin`, which is
                // held until the copy returns (and `m` keeps the machine alive); the runs
                // cover exactly the bytes of the pieces before `upto` (their translation made
                // them so), and the pieces are the device's buffers, not simulated memory.
                unsafe {
                    crate::mem::copy_to_runs(hosts, &data[..bytes_of(&pieces[..upto])], &pin);
                };
            }
            // The burst's IOTLB misses stall the device (this thread), outside the lock.
            crate::hal::iommu_pay();
            match failed {
                None => Ok(true),
                Some((i, Ok(f))) => Err((i, f)),
                Some((i, Err(fault))) => {
                    let p2 = fault.params[2];
                    m.record(fault);
                    Err((i, DmaFault::IommuFault(p2)))
                }
            }
        })
    }

    /// Reads `buf.len()` bytes at logical address `logical`.
    ///
    /// # Errors
    /// A [`DmaFault`]; nothing is read then.
    pub fn dma_read(&self, logical: u64, buf: &mut [u8]) -> Result<(), DmaFault> {
        let len = buf.len();
        let mut done = 0usize;
        self.locked(|st, m| {
            self.access_locked(st, m, logical, len, Access::Read, &mut |mem, pa| {
                // Runs arrive in order; each covers the next bytes up to a page boundary.
                let n = (0x1000 - (pa & 0xFFF) as usize).min(len - done);
                mem.read_phys(pa, &mut buf[done..done + n])?;
                done += n;
                Ok(())
            })
        })
    }

    /// Writes `buf` at logical address `logical`.
    ///
    /// # Errors
    /// A [`DmaFault`]; nothing is written then.
    pub fn dma_write(&self, logical: u64, buf: &[u8]) -> Result<(), DmaFault> {
        self.locked(|st, m| self.write_locked(st, m, logical, buf))
    }

    fn signal(&self, i: Interrupt) -> bool {
        let Ok(m) = self.machine() else { return false };
        let sink = {
            let mut st = m.lock();
            let Some(slot) = st.bus.slots.get_mut(self.slot) else {
                return false;
            };
            if !slot.present {
                return false;
            }
            match i {
                // An MSI is a posted memory write by the device: bus mastering must be on.
                Interrupt::Msi { .. } if !slot.bus_master => return false,
                Interrupt::IntxAsserted if slot.intx => return true,
                Interrupt::IntxDeasserted if !slot.intx => return true,
                Interrupt::IntxAsserted => slot.intx = true,
                Interrupt::IntxDeasserted => slot.intx = false,
                Interrupt::Msi { .. } => {}
            }
            let sink = st.bus.sinks.get(self.slot).cloned().flatten();
            if sink.is_none() {
                st.bus.slots[self.slot].pending.push(i);
            }
            sink
        };
        if let Some(s) = sink {
            s(i);
        }
        true
    }

    /// Sends MSI-X message `vector`. Returns whether it left the device (not when the device is
    /// removed or bus mastering is off).
    #[must_use = "false means the message never left the device"]
    pub fn signal_msi(&self, vector: u32) -> bool {
        self.signal(Interrupt::Msi { vector })
    }

    /// Drives the `INTx` line. Only level changes are signalled.
    #[must_use = "false means the device is gone"]
    pub fn set_intx(&self, asserted: bool) -> bool {
        self.signal(if asserted {
            Interrupt::IntxAsserted
        } else {
            Interrupt::IntxDeasserted
        })
    }

    /// Removes the device from the bus, as a hot-unplug would (used by fault injection): its
    /// registers read all-ones, writes are dropped, DMA and interrupts stop.
    pub fn surprise_remove(&self) {
        if let Some(m) = self.machine.upgrade()
            && let Some(s) = m.lock().bus.slots.get_mut(self.slot)
        {
            s.present = false;
        }
    }

    /// The device's slot number.
    #[must_use]
    pub const fn slot(&self) -> usize {
        self.slot
    }

    /// Whether the device is still on the bus.
    #[must_use]
    pub fn present(&self) -> bool {
        self.machine
            .upgrade()
            .is_some_and(|m| m.lock().bus.slots.get(self.slot).is_some_and(|s| s.present))
    }
}

/// Reads a 32-bit device register through a `MmMapIoSpaceEx` mapping (the simulator's
/// `READ_REGISTER_ULONG`; the driver's `sys.rs` calls it on non-Windows hosts). A removed device
/// reads all-ones.
///
/// # Safety
/// `register` must lie in a live register mapping of the current machine.
#[must_use]
pub unsafe fn read_register_ulong(register: *const u32) -> u32 {
    // The device model answers inside this call: what it allocates is not the driver's.
    let _kernel = crate::heap::KernelEntry::new();
    let va = register as usize;
    let (func, bar, offset, present) = crate::machine::with_state(|st, _| {
        let m = st.bus.io_map_at(va).ok_or_else(|| {
            BugCheck::sim(
                crate::bugcheck::sim_rule::BAD_REGISTER_ACCESS,
                va as u64,
                0,
                "register read outside any MmMapIoSpaceEx mapping",
            )
        })?;
        if m.moved {
            return Err(BugCheck::sim(
                crate::bugcheck::sim_rule::BAD_REGISTER_ACCESS,
                va as u64,
                2,
                "register access through a mapping of a BAR that a rebalance has moved (the driver kept its MmMapIoSpaceEx mapping across a stop)",
            ));
        }
        Ok((
            st.bus.functions[m.device].clone(),
            m.bar,
            m.offset + (va - m.va) as u64,
            st.bus.slots[m.device].present,
        ))
    });
    if !present {
        return u32::MAX;
    }
    func.mmio_read(bar, offset)
}

/// Writes a 32-bit device register through a `MmMapIoSpaceEx` mapping (the simulator's
/// `WRITE_REGISTER_ULONG`). Writes to a removed device are dropped.
///
/// # Safety
/// `register` must lie in a live register mapping of the current machine.
pub unsafe fn write_register_ulong(register: *mut u32, value: u32) {
    // The device model answers inside this call: what it allocates is not the driver's.
    let _kernel = crate::heap::KernelEntry::new();
    let va = register as usize;
    let (func, bar, offset, present) = crate::machine::with_state(|st, _| {
        let m = st.bus.io_map_at(va).ok_or_else(|| {
            BugCheck::sim(
                crate::bugcheck::sim_rule::BAD_REGISTER_ACCESS,
                va as u64,
                1,
                "register write outside any MmMapIoSpaceEx mapping",
            )
        })?;
        if m.moved {
            return Err(BugCheck::sim(
                crate::bugcheck::sim_rule::BAD_REGISTER_ACCESS,
                va as u64,
                2,
                "register access through a mapping of a BAR that a rebalance has moved (the driver kept its MmMapIoSpaceEx mapping across a stop)",
            ));
        }
        Ok((
            st.bus.functions[m.device].clone(),
            m.bar,
            m.offset + (va - m.va) as u64,
            st.bus.slots[m.device].present,
        ))
    });
    if present {
        func.mmio_write(bar, offset, value);
        touched(&func);
    }
}
