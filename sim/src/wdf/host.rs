//! The harness that plays Windows around a KMDF driver: the PnP manager (add, start, stop,
//! surprise removal, removal), the power manager (D0 ↔ D3), the I/O manager (requests from
//! user-mode handles, buffered and direct transfers, cancellation, process termination), and an
//! interrupt CPU that runs ISRs at DIRQL and DPCs at `DISPATCH_LEVEL`.
//!
//! Execution is threaded: each PnP step and each system call runs on the calling thread as a
//! simulated CPU (on a stack of its own, which a bug check abandons), the interrupt CPU runs
//! beside them, and the device model runs on its own thread. After every
//! transition that releases hardware the harness checks that no DMA adapter, common buffer,
//! map register or scatter/gather list is left, and at removal that no request was lost.
//!
//! This file holds the host, its device nodes and the execution modes; the machines it plays
//! are in `pnp` (the `PnP` and power managers), `cpu` (the interrupt CPU: ISRs, DPCs, timers,
//! work items), `io` (queues and requests, the I/O manager's side) and `process` (user mode).

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};

use super::functions::callback;
#[allow(
    clippy::wildcard_imports,
    reason = "the harness uses the mirrored surface wholesale"
)]
use super::types::*;
use super::{Kind, wdf_rule};
use crate::bugcheck::BugCheck;
use crate::bus::{Attached, Interrupt, InterruptSink};
use crate::machine::{Machine, with_state};
use crate::types::{_DRIVER_OBJECT, PDRIVER_OBJECT};
use crate::{NT_SUCCESS, NTSTATUS, STATUS_INVALID_DEVICE_REQUEST, STATUS_SUCCESS};

mod cpu;
mod io;
mod pnp;
mod process;

use cpu::{deliver, flush_dpcs, interrupt_cpu, next_timer_due, run_dpcs};
pub(crate) use cpu::{forget_taken, runs_own_dpcs};
pub(crate) use cpu::{run_timers, run_work_item, run_work_items};
use io::presented_on;
pub(crate) use io::{cancel, complete, dispatch, purge, sequential};
use pnp::{enter_d0, remove_device, start_device, stop_device, unload_driver};
pub use process::{Handle, IoResult, Pending, Process};

/// What the interrupt CPU is told.
#[derive(Debug, Clone, Copy)]
pub(crate) enum IrqEvent {
    /// A device signalled (slot, signal).
    Device(usize, Interrupt),
    /// A DPC was queued.
    Dpc,
    /// The host is going away.
    Quit,
}

/// The driver's `DriverEntry`, as the driver crate exports it.
pub type DriverEntry = unsafe extern "system" fn(PDRIVER_OBJECT, PCUNICODE_STRING) -> NTSTATUS;

/// Why a harness step failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostError {
    /// The machine stopped.
    BugCheck(BugCheck),
    /// The driver failed the step with this status.
    Status(NTSTATUS),
    /// The step is not valid now.
    State(&'static str),
}

impl std::fmt::Display for HostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::BugCheck(b) => write!(f, "{b}"),
            Self::Status(s) => write!(f, "the driver failed with {:#010x}", s.cast_unsigned()),
            Self::State(s) => f.write_str(s),
        }
    }
}

impl From<BugCheck> for HostError {
    fn from(b: BugCheck) -> Self {
        Self::BugCheck(b)
    }
}

/// Interrupt resources the PnP manager assigns to a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InterruptResources {
    /// `n` MSI-X messages.
    Msi(u32),
    /// One level-triggered line (`INTx`).
    Line,
    /// No interrupt resources: a software device (`devgen /add /bus ROOT`), or a function whose
    /// interrupt could not be assigned.
    None,
}

/// One context of a framework object, as the debugger extension lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextReport {
    /// `ContextName` of the type info: the type the debugger dumps the context as.
    pub name: String,
    /// The context's size in bytes.
    pub size: usize,
    /// Its address (aligned to 16 bytes, `MEMORY_ALLOCATION_ALIGNMENT` on x64).
    pub address: usize,
}

/// A device the PnP manager knows.
#[derive(Debug, Clone, Copy)]
pub struct DevNode {
    /// The `WDFDEVICE` handle (an opaque number).
    pub device: usize,
    /// The bus slot.
    pub slot: usize,
    att: Attached,
    interrupts: InterruptResources,
}

/// The bus side of a root-enumerated software device: no BAR, no register, no DMA.
#[derive(Debug)]
struct SoftwareDevice;

impl crate::bus::PciFunction for SoftwareDevice {
    fn identity(&self) -> crate::bus::PciIdentity {
        crate::bus::PciIdentity {
            vendor_id: 0xFFFF,
            device_id: 0xFFFF,
            class_code: 0,
            revision: 0,
        }
    }
    fn bar_size(&self, _bar: u8) -> u64 {
        0
    }
    fn mmio_read(&self, _bar: u8, _offset: u64) -> u32 {
        u32::MAX
    }
    fn mmio_write(&self, _bar: u8, _offset: u64, _value: u32) {}
    fn dma_address_width(&self) -> u32 {
        64
    }
}

#[derive(Debug)]
struct Core {
    /// Hardware IDs of root-enumerated devices, by slot.
    hardware_ids: Mutex<std::collections::HashMap<usize, String>>,
    machine: Machine,
    driver_object: usize,
    registry: usize,
    tx: Sender<IrqEvent>,
    /// Application threads waiting for a request, which take device interrupts (threaded
    /// mode).
    idle: Arc<cpu::IdleCpus>,
    mode: Mode,
    det: Mutex<DetState>,
    /// Per bus slot: the SIDs the device's DACL allows (the INF's `Security` value, which the
    /// PnP manager applies to every device object of the device node).
    security: Mutex<std::collections::HashMap<usize, Vec<String>>>,
}

/// Who a process runs as: the groups of its token that a device DACL can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    /// `LocalSystem` (`SY`; also a member of `BA`).
    System,
    /// An elevated administrator (`BA`).
    Administrator,
    /// A standard user (`BU`, `IU`).
    User,
}

impl Identity {
    /// The SDDL SID strings of the token's groups.
    const fn sids(self) -> &'static [&'static str] {
        match self {
            Self::System => &["SY", "BA", "AU", "WD"],
            Self::Administrator => &["BA", "BU", "AU", "IU", "WD"],
            Self::User => &["BU", "AU", "IU", "WD"],
        }
    }
}

/// The SIDs an SDDL DACL allows: `D:` (optionally `P`, protected) followed by allow ACEs
/// `(A;flags;rights;;;SID)`. Anything else is refused (this is not a general SDDL parser).
fn parse_dacl(sddl: &str) -> Result<Vec<String>, HostError> {
    let bad = HostError::State("unsupported SDDL (D:[P] followed by allow ACEs only)");
    let rest = sddl.strip_prefix("D:").ok_or(bad)?;
    let mut rest = rest.strip_prefix('P').unwrap_or(rest);
    let mut sids = Vec::new();
    while !rest.is_empty() {
        let inner = rest.strip_prefix('(').ok_or(bad)?;
        let end = inner.find(')').ok_or(bad)?;
        let fields: Vec<&str> = inner[..end].split(';').collect();
        if fields.len() != 6 || fields[0] != "A" || fields[2].is_empty() {
            return Err(bad);
        }
        sids.push(fields[5].to_owned());
        rest = &inner[end + 1..];
    }
    Ok(sids)
}

/// How the host schedules interrupts and DPCs against everything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// An interrupt CPU runs ISRs and DPCs beside the callers, as on a multiprocessor: real races.
    Threaded,
    /// One event loop: interrupts and DPCs are delivered only between harness steps and while a
    /// caller waits, in an order drawn from `seed`, so a failing seed replays exactly.
    Deterministic {
        /// The scheduling seed.
        seed: u64,
    },
}

/// The deterministic event loop's state.
#[derive(Debug, Default)]
struct DetState {
    rx: Option<Receiver<IrqEvent>>,
    pending: std::collections::VecDeque<IrqEvent>,
    rng: u64,
    trace: Vec<String>,
}

impl DetState {
    fn next(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Runs one harness step on a simulated CPU; in deterministic mode, then lets the event loop
/// deliver a seeded share of the pending interrupts.
fn step<R: Send + 'static>(
    core: &Core,
    f: impl FnOnce() -> R + Send + 'static,
) -> Result<R, HostError> {
    let r = if core.mode == Mode::Threaded {
        run(&core.machine, move || cpu::system_call(f))?
    } else {
        run(&core.machine, f)?
    };
    pump(core, false)?;
    Ok(r)
}

/// Deterministic mode: delivers pending interrupts and DPCs (all of them when `force`, else a
/// seeded number of them). Returns whether anything was delivered.
fn pump(core: &Core, force: bool) -> Result<bool, HostError> {
    if core.mode == Mode::Threaded {
        return Ok(false);
    }
    let batch: Vec<IrqEvent> = {
        let mut st = core
            .det
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut incoming = Vec::new();
        if let Some(rx) = &st.rx {
            while let Ok(e) = rx.try_recv() {
                incoming.push(e);
            }
        }
        st.pending.extend(incoming);
        let n = st.pending.len();
        if n == 0 {
            drop(st);
            // No interrupt pending: a timer that has come due still expires (its DPC runs
            // between harness steps and while a caller waits, like every other event here).
            let now = std::time::Instant::now();
            let timer_due = next_timer_due(&core.machine.0.lock().wdf).is_some_and(|d| d <= now);
            if timer_due {
                run(&core.machine, run_timers)?;
            }
            return Ok(timer_due);
        }
        let k = if force {
            n
        } else {
            (st.next() % (n as u64 + 1)) as usize
        };
        let batch: Vec<IrqEvent> = st.pending.drain(..k).collect();
        let mark = format!("deliver {k} of {n}");
        st.trace.push(mark);
        for e in &batch {
            let t = format!("{e:?}");
            st.trace.push(t);
        }
        batch
    };
    if batch.is_empty() {
        return Ok(false);
    }
    run(&core.machine, move || {
        for e in batch {
            deliver(e);
            run_dpcs();
        }
        run_timers();
        run_work_items();
    })?;
    Ok(true)
}

/// A loaded driver on a machine.
pub struct Host {
    core: Arc<Core>,
    irq: Option<std::thread::JoinHandle<()>>,
    _buffers: LoaderBuffers,
}

/// What the loader allocates for a driver and keeps for its life: the driver object, its
/// extension, and the strings they point at (registry path, `\Driver\name`).
struct LoaderBuffers {
    _driver: Box<_DRIVER_OBJECT>,
    _extension: Box<crate::types::DRIVER_EXTENSION>,
    _registry: Box<UNICODE_STRING>,
    _text: Vec<Box<[u16]>>,
}

impl std::fmt::Debug for LoaderBuffers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LoaderBuffers")
    }
}

/// A counted string over `text` (which the caller keeps alive).
fn counted(text: &mut [u16]) -> UNICODE_STRING {
    // Service names and paths are short: far inside a USHORT of bytes.
    let bytes = u16::try_from(text.len() * 2).unwrap_or(0xFFFE);
    UNICODE_STRING {
        Length: bytes,
        MaximumLength: bytes,
        Buffer: text.as_mut_ptr(),
    }
}

// SAFETY: a shared `Host` only reaches the machine through `Core` (an `Arc` of locks and
// channels); the driver object and registry buffers it keeps are touched by the driver on the
// machine's CPUs (through the pointers `DriverEntry` received), never through `&Host`.
unsafe impl Sync for Host {}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host").finish_non_exhaustive()
    }
}

/// The `Send` form of a raw address moved onto a simulated CPU.
#[derive(Debug, Clone, Copy)]
struct Addr(usize);

fn run<R: Send + 'static>(
    m: &Machine,
    f: impl FnOnce() -> R + Send + 'static,
) -> Result<R, HostError> {
    m.run(f).map_err(HostError::BugCheck)
}

/// The framework's `DriverUnload` (`FxDriver::Unload`). The harness recognises it in the
/// driver object and runs the unload itself ([`Host::unload`]); called directly, as a driver
/// must not, it does nothing.
pub(crate) unsafe extern "C" fn framework_unload(_driver: PDRIVER_OBJECT) {}

/// The framework's `AddDevice`. The harness plays `PnP` through [`Host::add_device`]; called
/// directly it refuses.
pub(crate) unsafe extern "C" fn framework_add_device(
    _driver: PDRIVER_OBJECT,
    _pdo: crate::types::PDEVICE_OBJECT,
) -> NTSTATUS {
    STATUS_INVALID_DEVICE_REQUEST
}

/// The framework's dispatch routine for every major function. The harness delivers I/O
/// through its processes; an IRP sent here directly is refused.
pub(crate) unsafe extern "C" fn framework_dispatch(
    _device: crate::types::PDEVICE_OBJECT,
    _irp: *mut crate::types::_IRP,
) -> NTSTATUS {
    STATUS_INVALID_DEVICE_REQUEST
}

impl Host {
    /// Loads the driver: calls `DriverEntry` on a simulated CPU and starts the interrupt CPU.
    ///
    /// # Errors
    /// The status `DriverEntry` failed with, or the bug check it caused.
    pub fn load(machine: &Machine, entry: DriverEntry) -> Result<Self, HostError> {
        Self::load_with(machine, entry, Mode::Threaded)
    }

    /// As [`Host::load`], with an execution mode.
    ///
    /// # Errors
    /// As [`Host::load`].
    pub fn load_with(machine: &Machine, entry: DriverEntry, mode: Mode) -> Result<Self, HostError> {
        Self::load_service(machine, "rhca", entry, mode)
    }

    /// Loads a driver as the I/O manager loads the image of service `service`: a complete
    /// `DRIVER_OBJECT` (`DriverName` `\Driver\<service>`, a `DRIVER_EXTENSION` with the
    /// `ServiceKeyName`), the registry path `…\Services\<service>`, then `DriverEntry` on a
    /// simulated CPU. The framework's default pool tag comes from the service name.
    ///
    /// # Errors
    /// As [`Host::load`].
    pub fn load_service(
        machine: &Machine,
        service: &str,
        entry: DriverEntry,
        mode: Mode,
    ) -> Result<Self, HostError> {
        let mut path: Box<[u16]> =
            format!("\\Registry\\Machine\\System\\CurrentControlSet\\Services\\{service}")
                .encode_utf16()
                .collect();
        let mut name: Box<[u16]> = format!("\\Driver\\{service}").encode_utf16().collect();
        let mut key: Box<[u16]> = service.encode_utf16().collect();
        let mut driver = Box::new(_DRIVER_OBJECT {
            Type: 4,
            // 336 bytes on x64: well inside a CSHORT.
            Size: CSHORT::try_from(core::mem::size_of::<_DRIVER_OBJECT>()).unwrap_or(CSHORT::MAX),
            DriverName: counted(&mut name),
            ..Default::default()
        });
        let mut extension = Box::new(crate::types::DRIVER_EXTENSION {
            DriverObject: core::ptr::from_mut(&mut *driver),
            ServiceKeyName: counted(&mut key),
            ..Default::default()
        });
        driver.DriverExtension = core::ptr::from_mut(&mut *extension);
        let mut reg = Box::new(counted(&mut path));
        let (tx, rx) = channel();
        let core = Arc::new(Core {
            hardware_ids: Mutex::new(std::collections::HashMap::new()),
            security: Mutex::new(std::collections::HashMap::new()),
            machine: machine.clone(),
            driver_object: core::ptr::from_mut(&mut *driver) as usize,
            registry: core::ptr::from_mut(&mut *reg) as usize,
            tx: tx.clone(),
            idle: Arc::default(),
            mode,
            det: Mutex::new(DetState::default()),
        });
        machine.0.lock().wdf.irq_tx = Some(tx);
        let (d, r) = (Addr(core.driver_object), Addr(core.registry));
        let status = run(machine, move || {
            // SAFETY: the driver object and registry path live in the Host for the driver's life.
            unsafe { entry(d.0 as PDRIVER_OBJECT, r.0 as PCUNICODE_STRING) }
        })?;
        if !NT_SUCCESS(status) {
            return Err(HostError::Status(status));
        }
        let irq = match mode {
            Mode::Threaded => {
                Some(machine.spawn_cpu("sim-interrupt-cpu", move || interrupt_cpu(&rx)))
            }
            Mode::Deterministic { seed } => {
                let mut st = core
                    .det
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                st.rx = Some(rx);
                st.rng = seed;
                None
            }
        };
        Ok(Self {
            core,
            irq,
            _buffers: LoaderBuffers {
                _driver: driver,
                _extension: extension,
                _registry: reg,
                _text: vec![path, name, key],
            },
        })
    }

    /// The machine.
    #[must_use]
    pub fn machine(&self) -> &Machine {
        &self.core.machine
    }

    /// `IRP_MN_START_DEVICE`'s predecessor: `EvtDriverDeviceAdd` for an attached device.
    ///
    /// # Errors
    /// The status or bug check of `EvtDriverDeviceAdd`.
    pub fn add_device(
        &self,
        att: &Attached,
        interrupts: InterruptResources,
    ) -> Result<DevNode, HostError> {
        let (pdo, slot) = (att.pdo as usize, att.slot);
        let created = step(&self.core, move || {
            let (driver, add, init) = with_state(|st, _| {
                let w = &mut st.wdf;
                let driver = w.driver.ok_or_else(|| {
                    BugCheck::sim(wdf_rule::BAD_DEVICE_INIT, 0, 3, "no WDFDRIVER")
                })?;
                let add = match &w.get(driver, "WDFDRIVER")?.kind {
                    Kind::Driver(c) => c.EvtDriverDeviceAdd,
                    _ => None,
                };
                let init = w.new_handle();
                w.inits.insert(
                    init,
                    super::DeviceInitData {
                        pdo,
                        slot,
                        ..Default::default()
                    },
                );
                Ok((driver, add, init))
            });
            let status = add.map_or(STATUS_INVALID_DEVICE_REQUEST, |f| {
                // SAFETY: the driver's EvtDriverDeviceAdd with its driver handle and a live init.
                callback(|| unsafe { f(driver as WDFDRIVER, init as PWDFDEVICE_INIT) })
            });
            let dev = with_state(|st, _| Ok(st.wdf.inits.remove(&init).and_then(|i| i.created)));
            (status, dev)
        })?;
        match created {
            (s, Some(device)) if NT_SUCCESS(s) => Ok(DevNode {
                device,
                slot,
                att: *att,
                interrupts,
            }),
            (s, _) if !NT_SUCCESS(s) => Err(HostError::Status(s)),
            _ => Err(HostError::State(
                "EvtDriverDeviceAdd returned success without creating a device",
            )),
        }
    }

    /// A root-enumerated software device, as `devgen /add /bus ROOT /hardwareid <id>` makes:
    /// a PDO with no resources, no interrupts and no DMA, then `EvtDriverDeviceAdd` for it.
    /// Start, stop, power transitions, surprise removal and removal work for it as for a PCI
    /// device ([`Host::start`] with empty resource lists). Internally it occupies a bus slot that
    /// decodes no BAR and never masters the bus.
    ///
    /// # Errors
    /// `State` for an empty hardware ID; as [`Host::add_device`].
    pub fn add_root_device(&self, hardware_id: &str) -> Result<DevNode, HostError> {
        if hardware_id.trim().is_empty() {
            return Err(HostError::State(
                "a root-enumerated device needs a hardware ID",
            ));
        }
        let function = Arc::new(SoftwareDevice);
        let (att, bus) = self.core.machine.attach(function);
        // A software device never reaches memory: its bus handle is dropped at once, and bus
        // mastering is off.
        drop(bus);
        self.core.machine.set_bus_master(att.slot, false);
        self.core
            .hardware_ids
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(att.slot, hardware_id.to_owned());
        self.add_device(&att, InterruptResources::None)
    }

    /// The hardware ID a device was added with ([`Host::add_root_device`]); `None` for a PCI
    /// function (its IDs come from its configuration space).
    #[must_use]
    pub fn hardware_id(&self, d: &DevNode) -> Option<String> {
        self.core
            .hardware_ids
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&d.slot)
            .cloned()
    }

    /// `IRP_MN_START_DEVICE`: resources, `EvtDevicePrepareHardware`, `EvtDeviceD0Entry`,
    /// interrupts connected and enabled, power-managed queues started.
    ///
    /// # Errors
    /// The failing callback's status (hardware released again), or a bug check.
    pub fn start(&self, d: &DevNode) -> Result<(), HostError> {
        let node = *d;
        let tx = self.core.tx.clone();
        let idle = Arc::clone(&self.core.idle);
        let m = self.core.machine.clone();
        let sink: InterruptSink = Arc::new(move |i| {
            // A CPU stepping the device at the end of its system call takes the interrupt
            // itself (`cpu::system_call`); else an application thread waiting for a request
            // (an idle CPU, `cpu::IdleCpus`); otherwise the interrupt CPU.
            if !cpu::take_here(node.slot, i) && !idle.take(IrqEvent::Device(node.slot, i)) {
                let _ = tx.send(IrqEvent::Device(node.slot, i));
            }
        });
        let status = step(&self.core, move || start_device(&node))?;
        if !NT_SUCCESS(status) {
            return Err(HostError::Status(status));
        }
        m.set_interrupt_sink(node.slot, &sink);
        Ok(())
    }

    /// Query-stop and stop (resource rebalance): queues held, interrupts disabled,
    /// `EvtDeviceD0Exit(WdfPowerDeviceD3Final)`, `EvtDeviceReleaseHardware`, then the DMA check.
    ///
    /// # Errors
    /// A bug check (a DMA resource held after release, an IRQL violation).
    pub fn stop(&self, d: &DevNode) -> Result<(), HostError> {
        let node = *d;
        step(&self.core, move || {
            stop_device(&node, _WDF_POWER_DEVICE_STATE::WdfPowerDeviceD3Final, true);
        })?;
        Ok(())
    }

    /// Rebalance with new resources: the stop above, then the bus driver moves every BAR and the
    /// `PnP` manager assigns `interrupts`, then `IRP_MN_START_DEVICE` with the new resource lists
    /// (what Device Fundamentals' "Rebalance Resources in IRP_MN_FILTER_RESOURCE_REQUIREMENTS"
    /// test forces). A register mapping kept across the stop no longer reaches the device.
    /// Returns the device node with its new resources.
    ///
    /// # Errors
    /// A bug check, or the status the restart failed with.
    pub fn rebalance(
        &self,
        d: &DevNode,
        interrupts: InterruptResources,
    ) -> Result<DevNode, HostError> {
        self.stop(d)?;
        let node = DevNode {
            att: self.core.machine.move_bars(d.slot),
            interrupts,
            ..*d
        };
        self.start(&node)?;
        Ok(node)
    }

    /// The device goes to D3 (queues held, interrupts disabled, `EvtDeviceD0Exit(D3)`), keeping
    /// its hardware resources.
    ///
    /// # Errors
    /// A bug check.
    pub fn power_down(&self, d: &DevNode) -> Result<(), HostError> {
        let node = *d;
        step(&self.core, move || {
            stop_device(&node, _WDF_POWER_DEVICE_STATE::WdfPowerDeviceD3, false);
        })?;
        Ok(())
    }

    /// The device returns to D0 (`EvtDeviceD0Entry(D3)`, interrupts, queues restarted).
    ///
    /// # Errors
    /// The status `EvtDeviceD0Entry` failed with, or a bug check.
    pub fn power_up(&self, d: &DevNode) -> Result<(), HostError> {
        let node = *d;
        let s = step(&self.core, move || {
            enter_d0(&node, _WDF_POWER_DEVICE_STATE::WdfPowerDeviceD3)
        })?;
        if NT_SUCCESS(s) {
            Ok(())
        } else {
            Err(HostError::Status(s))
        }
    }

    /// Surprise removal: the device vanishes from the bus first (registers read all-ones), then
    /// `EvtDeviceSurpriseRemoval`, D0 exit and hardware release, then removal.
    ///
    /// # Errors
    /// A bug check (including a request lost or a DMA resource left).
    pub fn surprise_remove(&self, d: &DevNode) -> Result<(), HostError> {
        self.core.machine.surprise_remove(d.slot);
        self.pnp_surprise_removal(d)
    }

    /// `IRP_MN_SURPRISE_REMOVAL` for a device that is still on the bus, then the removal: what
    /// the PnP manager does when a restart fails (the Device Fundamentals "Rebalance Fail
    /// Restart" test's filter fails the START after the driver started).
    ///
    /// # Errors
    /// A bug check.
    pub fn pnp_surprise_removal(&self, d: &DevNode) -> Result<(), HostError> {
        let node = *d;
        step(&self.core, move || {
            let cb =
                with_state(|st, _| Ok(st.wdf.device(node.device)?.pnp.EvtDeviceSurpriseRemoval));
            if let Some(f) = cb {
                // SAFETY: the driver's callback with its device handle.
                callback(|| unsafe { f(node.device as WDFDEVICE) });
            }
            stop_device(&node, _WDF_POWER_DEVICE_STATE::WdfPowerDeviceD3Final, true);
        })?;
        self.remove(d)
    }

    /// `IRP_MN_QUERY_REMOVE_DEVICE`: the driver's `EvtDeviceQueryRemove` (if any) may veto.
    /// Returns the query's status. The caller then removes the device ([`Host::remove`]) or
    /// cancels: `IRP_MN_CANCEL_REMOVE_DEVICE` leaves the device started, and KMDF calls no
    /// driver callback for it, so a cancel is simply no further call.
    ///
    /// # Errors
    /// A bug check.
    pub fn query_remove(&self, d: &DevNode) -> Result<NTSTATUS, HostError> {
        let node = *d;
        step(&self.core, move || {
            let cb = with_state(|st, _| Ok(st.wdf.device(node.device)?.pnp.EvtDeviceQueryRemove));
            cb.map_or(STATUS_SUCCESS, |f| {
                // SAFETY: the driver's callback with its device handle.
                callback(|| unsafe { f(node.device as WDFDEVICE) })
            })
        })
    }

    /// `IRP_MN_QUERY_STOP_DEVICE`: the driver's `EvtDeviceQueryStop` (if any) may veto. Returns
    /// the query's status. The caller then stops the device ([`Host::stop`],
    /// [`Host::rebalance`]) or cancels (`IRP_MN_CANCEL_STOP_DEVICE`: no driver callback).
    ///
    /// # Errors
    /// A bug check.
    pub fn query_stop(&self, d: &DevNode) -> Result<NTSTATUS, HostError> {
        let node = *d;
        step(&self.core, move || {
            let cb = with_state(|st, _| Ok(st.wdf.device(node.device)?.pnp.EvtDeviceQueryStop));
            cb.map_or(STATUS_SUCCESS, |f| {
                // SAFETY: the driver's callback with its device handle.
                callback(|| unsafe { f(node.device as WDFDEVICE) })
            })
        })
    }

    /// Orderly removal: stop if started, purge every queue, `EvtDeviceSelfManagedIoCleanup`,
    /// delete the device and its children; no request may remain.
    ///
    /// # Errors
    /// A bug check.
    pub fn remove(&self, d: &DevNode) -> Result<(), HostError> {
        let node = *d;
        step(&self.core, move || remove_device(&node))?;
        Ok(())
    }

    /// Unloads the driver: `EvtDriverUnload`, the driver object and its children deleted. Objects
    /// still referenced (`WdfObjectReference` without a matching dereference) are leaks: the
    /// machine stops, as KMDF Verifier's handle tracking reports them.
    ///
    /// # Errors
    /// A bug check.
    pub fn unload(mut self) -> Result<(), HostError> {
        // The I/O manager calls the driver object's `DriverUnload`: the framework's routine for
        // a KMDF driver (`EvtDriverUnload`, then the driver's objects deleted), the driver's own
        // for a WDM driver; without one, Windows cannot unload the driver.
        let object = self.core.driver_object;
        let unload = step(&self.core, move || {
            // SAFETY: the loader's driver object, alive for the Host's life.
            unsafe { (*(object as PDRIVER_OBJECT)).DriverUnload }
        })?;
        let r = match unload {
            None => Err(HostError::State(
                "the driver object has no DriverUnload routine: Windows cannot unload the driver",
            )),
            Some(f)
                if core::ptr::fn_addr_eq(
                    f,
                    framework_unload as unsafe extern "C" fn(PDRIVER_OBJECT),
                ) =>
            {
                step(&self.core, unload_driver)
            }
            Some(f) => step(&self.core, move || {
                // SAFETY: the driver's own unload routine with its driver object.
                callback(|| unsafe { f(object as PDRIVER_OBJECT) });
            }),
        };
        let _ = self.core.tx.send(IrqEvent::Quit);
        if let Some(h) = self.irq.take() {
            // A CPU that bug-checked is parked for good: joining it would hang the caller.
            if self.core.machine.bugcheck().is_none() {
                let _ = h.join();
            }
        }
        r
    }

    /// Deterministic mode: the events the loop delivered, in order (for replay checks).
    #[must_use]
    pub fn trace(&self) -> Vec<String> {
        self.core
            .det
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .trace
            .clone()
    }

    /// Deterministic mode: delivers every pending interrupt and DPC now.
    ///
    /// # Errors
    /// A bug check an ISR or DPC caused.
    pub fn settle(&self) -> Result<(), HostError> {
        while pump(&self.core, true)? {}
        Ok(())
    }

    /// The `Characteristics` of the device object the driver created for `d` (what
    /// `WdfDeviceInitSetCharacteristics` asked for).
    ///
    /// # Errors
    /// A bug check (the device does not exist).
    pub fn device_characteristics(&self, d: &DevNode) -> Result<u32, HostError> {
        let dev = d.device;
        run(&self.core.machine, move || {
            with_state(|st, _| Ok(st.wdf.device(dev)?.fdo.Characteristics))
        })
    }

    /// The pool tag the framework gives the driver's allocations, as `!wdfkd.wdfdriverinfo`
    /// shows it: the driver's `DriverPoolTag`, or the default `WdfDriverCreate` derived from the
    /// service name. `None` before `WdfDriverCreate` succeeded.
    ///
    /// # Errors
    /// A bug check stopped the machine.
    pub fn driver_pool_tag(&self) -> Result<Option<[u8; 4]>, HostError> {
        run(&self.core.machine, move || {
            with_state(|st, _| Ok(st.wdf.driver.map(|_| st.wdf.driver_pool_tag.to_le_bytes())))
        })
    }

    /// The contexts of the device object made for `d`, in the order the framework added them:
    /// what `!wdfkd.wdfdevice` and `!wdfkd.wdfobject` list (each context's type name, size and
    /// address), so a test can hold a driver to a context the debugger can show.
    ///
    /// # Errors
    /// A bug check (the device does not exist).
    pub fn device_contexts(&self, d: &DevNode) -> Result<Vec<ContextReport>, HostError> {
        let dev = d.device;
        run(&self.core.machine, move || {
            with_state(|st, _| {
                let o = st.wdf.get_mut(dev, "WDFDEVICE")?;
                Ok(o.contexts
                    .iter_mut()
                    .map(|c| ContextReport {
                        name: c.name.clone(),
                        size: c.size,
                        address: c.address() as usize,
                    })
                    .collect())
            })
        })
    }

    /// The share disposition of each interrupt resource in the translated list the device was
    /// started with (`CmResourceShareShared` = 3, `…DeviceExclusive` = 1): what the framework
    /// made of the bus's resources and the interrupt objects' `ShareVector`.
    ///
    /// # Errors
    /// [`HostError::State`] when the device is not started.
    pub fn interrupt_share_dispositions(&self, d: &DevNode) -> Result<Vec<u8>, HostError> {
        let dev = d.device;
        run(&self.core.machine, move || {
            with_state(|st, _| {
                let Some((_, trans)) = st.wdf.device(dev)?.res_lists else {
                    return Ok(None);
                };
                let Kind::ResList(list) = &st.wdf.get(trans, "WDFCMRESLIST")?.kind else {
                    return Ok(None);
                };
                Ok(Some(
                    list.0
                        .iter()
                        .filter(|r| u32::from(r.Type) == CmResourceTypeInterrupt)
                        .map(|r| r.ShareDisposition)
                        .collect(),
                ))
            })
        })?
        .ok_or(HostError::State("the device is not started"))
    }

    /// A new user-mode process, running as an elevated administrator.
    #[must_use]
    pub fn process(&self) -> Process {
        self.process_as(Identity::Administrator)
    }

    /// A new user-mode process running as `identity`.
    #[must_use]
    pub fn process_as(&self, identity: Identity) -> Process {
        Process {
            core: self.core.clone(),
            handles: Mutex::new(Vec::new()),
            opened: Mutex::new(Vec::new()),
            memory: Arc::new(Mutex::new(Vec::new())),
            spare: Arc::new(Mutex::new(Vec::new())),
            issued: Mutex::new(Vec::new()),
            identity,
        }
    }

    /// Applies a security descriptor (SDDL, as an INF's `HKR,,Security` value) to the device:
    /// opens are checked against its DACL from now on.
    ///
    /// # Errors
    /// [`HostError::State`] for SDDL this model does not understand.
    pub fn set_security(&self, d: &DevNode, sddl: &str) -> Result<(), HostError> {
        let sids = parse_dacl(sddl)?;
        self.core
            .security
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(d.slot, sids);
        Ok(())
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.core.tx.send(IrqEvent::Quit);
        if let Some(h) = self.irq.take() {
            // A CPU that bug-checked is parked for good: joining it would hang the caller.
            if self.core.machine.bugcheck().is_none() {
                let _ = h.join();
            }
        }
    }
}
