//! The harness that plays Windows around a KMDF driver: the PnP manager (add, start, stop,
//! surprise removal, removal), the power manager (D0 ↔ D3), the I/O manager (requests from
//! user-mode handles, buffered and direct transfers, cancellation, process termination), and an
//! interrupt CPU that runs ISRs at DIRQL and DPCs at `DISPATCH_LEVEL`.
//!
//! Execution is threaded: each PnP step and each system call runs on a fresh simulated CPU, the
//! interrupt CPU runs beside them, and the device model runs on its own thread. After every
//! transition that releases hardware the harness checks that no DMA adapter, common buffer,
//! map register or scatter/gather list is left, and at removal that no request was lost.

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::functions::{
    SIM_DIRQL, acquire_interrupt_lock, callback, callback_in, release_interrupt_lock,
};
#[allow(
    clippy::wildcard_imports,
    reason = "the harness uses the mirrored surface wholesale"
)]
use super::types::*;
use super::{Completion, Kind, ReqKind, ReqState, RequestData, wdf_rule};
use crate::bugcheck::BugCheck;
use crate::bus::{Attached, Interrupt, InterruptSink};
use crate::constants::POOL_FLAG_NON_PAGED;
use crate::heap::Context;
use crate::machine::{Machine, set_irql, with_state};
use crate::typed::{DISPATCH_LEVEL, FALSE, PASSIVE_LEVEL, TRUE};
use crate::types::{_DRIVER_OBJECT, PDRIVER_OBJECT, PMDL, PVOID, ULONG};
use crate::{
    NT_SUCCESS, NTSTATUS, STATUS_CANCELLED, STATUS_DEVICE_REMOVED, STATUS_INVALID_DEVICE_REQUEST,
    STATUS_SUCCESS, ntddk,
};

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

#[derive(Debug)]
struct Core {
    machine: Machine,
    driver_object: usize,
    registry: usize,
    tx: Sender<IrqEvent>,
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
    let r = run(&core.machine, f)?;
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
    _buffers: (Box<_DRIVER_OBJECT>, Box<UNICODE_STRING>, Box<[u16]>),
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
        let mut driver = Box::new(_DRIVER_OBJECT {
            Type: 4,
            // 336 bytes on x64: well inside a CSHORT.
            Size: CSHORT::try_from(core::mem::size_of::<_DRIVER_OBJECT>()).unwrap_or(CSHORT::MAX),
            ..Default::default()
        });
        let mut text: Box<[u16]> = "\\Registry\\Machine\\System\\CurrentControlSet\\Services\\rhca"
            .encode_utf16()
            .collect();
        let mut reg = Box::new(UNICODE_STRING {
            Length: (text.len() * 2) as u16,
            MaximumLength: (text.len() * 2) as u16,
            Buffer: text.as_mut_ptr(),
        });
        let (tx, rx) = channel();
        let core = Arc::new(Core {
            security: Mutex::new(std::collections::HashMap::new()),
            machine: machine.clone(),
            driver_object: core::ptr::from_mut(&mut *driver) as usize,
            registry: core::ptr::from_mut(&mut *reg) as usize,
            tx: tx.clone(),
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
            _buffers: (driver, reg, text),
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

    /// `IRP_MN_START_DEVICE`: resources, `EvtDevicePrepareHardware`, `EvtDeviceD0Entry`,
    /// interrupts connected and enabled, power-managed queues started.
    ///
    /// # Errors
    /// The failing callback's status (hardware released again), or a bug check.
    pub fn start(&self, d: &DevNode) -> Result<(), HostError> {
        let node = *d;
        let tx = self.core.tx.clone();
        let m = self.core.machine.clone();
        let sink: InterruptSink = Arc::new(move |i| {
            let _ = tx.send(IrqEvent::Device(node.slot, i));
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
        let r = step(&self.core, unload_driver);
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
            memory: Mutex::new(Vec::new()),
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

// ---- PnP and power, on a simulated CPU ----

fn start_device(d: &DevNode) -> NTSTATUS {
    let (raw, trans, prepare) = with_state(|st, _| {
        let w = &mut st.wdf;
        let dev = d.device;
        let (mut rawl, mut transl) = resources(&d.att, d.interrupts);
        // The framework applies each interrupt object's ShareVector to its interrupt
        // resource when it filters the requirements (`FxInterrupt::FilterResourceRequirements`,
        // `interruptobjectkm.cpp` l.241–266): WdfTrue claims it shared, WdfFalse
        // device-exclusive, WdfUseDefault keeps the bus's disposition. Interrupt objects take
        // the interrupt resources in creation order.
        let shares: Vec<WDF_TRI_STATE> = w
            .device(dev)?
            .interrupts
            .clone()
            .into_iter()
            .map(|i| w.interrupt(i).map(|d| d.config.ShareVector))
            .collect::<Result<_, _>>()?;
        for list in [&mut rawl, &mut transl] {
            let ints = list
                .iter_mut()
                .filter(|r| u32::from(r.Type) == CmResourceTypeInterrupt);
            for (r, share) in ints.zip(&shares) {
                match *share {
                    _WDF_TRI_STATE::WdfTrue => r.ShareDisposition = CM_SHARE_SHARED,
                    _WDF_TRI_STATE::WdfFalse => r.ShareDisposition = CM_SHARE_DEVICE_EXCLUSIVE,
                    _ => {}
                }
            }
        }
        let raw = w.insert(
            Kind::ResList(crate::typed::NoDebug(rawl.into_boxed_slice())),
            Some(dev),
            None,
        );
        let trans = w.insert(
            Kind::ResList(crate::typed::NoDebug(transl.into_boxed_slice())),
            Some(dev),
            None,
        );
        Ok((raw, trans, w.device(dev)?.pnp.EvtDevicePrepareHardware))
    });
    if let Some(f) = prepare {
        // SAFETY: the driver's callback with its device and the resource lists.
        let s = callback(|| unsafe {
            f(
                d.device as WDFDEVICE,
                raw as WDFCMRESLIST,
                trans as WDFCMRESLIST,
            )
        });
        if !NT_SUCCESS(s) {
            release_hardware(d, trans);
            return s;
        }
    }
    with_state(|st, _| {
        st.wdf.device(d.device)?.res_lists = Some((raw, trans));
        Ok(())
    });
    let s = enter_d0(d, _WDF_POWER_DEVICE_STATE::WdfPowerDeviceD3Final);
    if !NT_SUCCESS(s) {
        release_hardware(d, trans);
    }
    s
}

/// D0 entry, interrupts connected and enabled, post-interrupt entry, queues started.
fn enter_d0(d: &DevNode, from: WDF_POWER_DEVICE_STATE) -> NTSTATUS {
    let (pnp, interrupts) = with_state(|st, _| {
        let dev = st.wdf.device(d.device)?;
        Ok((dev.pnp, dev.interrupts.clone()))
    });
    if let Some(f) = pnp.EvtDeviceD0Entry {
        // SAFETY: the driver's callback.
        let s = callback(|| unsafe { f(d.device as WDFDEVICE, from) });
        if !NT_SUCCESS(s) {
            return s;
        }
    }
    for &i in &interrupts {
        let enable = with_state(|st, _| {
            let int = st.wdf.interrupt(i)?;
            int.connected = true;
            Ok(int.config.EvtInterruptEnable)
        });
        if let Some(f) = enable {
            let old = acquire_interrupt_lock(i);
            // SAFETY: the driver's enable callback at DIRQL under the interrupt lock.
            let s = callback(|| unsafe { f(i as WDFINTERRUPT, d.device as WDFDEVICE) });
            release_interrupt_lock(i, old);
            if !NT_SUCCESS(s) {
                return s;
            }
        }
    }
    if let Some(f) = pnp.EvtDeviceD0EntryPostInterruptsEnabled {
        // SAFETY: the driver's callback.
        let s = callback(|| unsafe { f(d.device as WDFDEVICE, from) });
        if !NT_SUCCESS(s) {
            return s;
        }
    }
    let queues = with_state(|st, _| {
        let dev = st.wdf.device(d.device)?;
        dev.in_d0 = true;
        let qs = dev.queues.clone();
        for &q in &qs {
            let q = st.wdf.queue(q)?;
            if q.power_managed {
                q.started = true;
            }
        }
        Ok(qs)
    });
    for q in queues {
        dispatch(q);
    }
    STATUS_SUCCESS
}

/// Power-managed queues held (`EvtIoStop` for requests the driver owns), interrupts disabled,
/// D0 exit; with `release`, hardware released and the DMA check made.
fn stop_device(d: &DevNode, target: WDF_POWER_DEVICE_STATE, release: bool) {
    let (pnp, interrupts, queues, in_d0) = with_state(|st, _| {
        let dev = st.wdf.device(d.device)?;
        Ok((
            dev.pnp,
            dev.interrupts.clone(),
            dev.queues.clone(),
            dev.in_d0,
        ))
    });
    if in_d0 {
        for &q in &queues {
            let (stop, owned) = with_state(|st, _| {
                let qd = st.wdf.queue(q)?;
                if !qd.power_managed {
                    return Ok((None, Vec::new()));
                }
                qd.started = false;
                let stop = qd.config.EvtIoStop;
                let owned = presented_on(&st.wdf, q);
                Ok((stop, owned))
            });
            if let Some(f) = stop {
                for r in owned {
                    // SAFETY: the driver's EvtIoStop for a request it owns.
                    callback(|| unsafe {
                        f(
                            q as WDFQUEUE,
                            r as WDFREQUEST,
                            _WDF_REQUEST_STOP_ACTION_FLAGS::WdfRequestStopActionSuspend as ULONG,
                        );
                    });
                }
            }
        }
        if let Some(f) = pnp.EvtDeviceD0ExitPreInterruptsDisabled {
            // SAFETY: the driver's callback.
            let _ = callback(|| unsafe { f(d.device as WDFDEVICE, target) });
        }
        for &i in &interrupts {
            let disable = with_state(|st, _| Ok(st.wdf.interrupt(i)?.config.EvtInterruptDisable));
            // Disconnecting takes the interrupt lock, so it waits for an ISR that is running
            // (IoDisconnectInterruptEx synchronises with the ISR the same way).
            let old = acquire_interrupt_lock(i);
            if let Some(f) = disable {
                // SAFETY: the driver's disable callback at DIRQL under the interrupt lock.
                let _ = callback(|| unsafe { f(i as WDFINTERRUPT, d.device as WDFDEVICE) });
            }
            with_state(|st, _| {
                st.wdf.interrupt(i)?.connected = false;
                Ok(())
            });
            release_interrupt_lock(i, old);
        }
        flush_dpcs(&interrupts);
        if let Some(f) = pnp.EvtDeviceD0Exit {
            // SAFETY: the driver's callback.
            let _ = callback(|| unsafe { f(d.device as WDFDEVICE, target) });
        }
        with_state(|st, _| {
            st.wdf.device(d.device)?.in_d0 = false;
            Ok(())
        });
    }
    if release {
        let lists = with_state(|st, _| Ok(st.wdf.device(d.device)?.res_lists.take()));
        if let Some((_, trans)) = lists {
            release_hardware(d, trans);
        }
    }
}

fn release_hardware(d: &DevNode, trans: usize) {
    let f = with_state(|st, _| Ok(st.wdf.device(d.device)?.pnp.EvtDeviceReleaseHardware));
    if let Some(f) = f {
        // SAFETY: the driver's callback with the translated list of this start.
        let _ = callback(|| unsafe { f(d.device as WDFDEVICE, trans as WDFCMRESLIST) });
    }
    let objs = with_state(|st, _| {
        let mut objs = Vec::new();
        for (h, _) in st.wdf.live() {
            if let Some(o) = st.wdf.objects.get(&h)
                && matches!(o.kind, Kind::ResList(_))
                && o.parent == Some(d.device)
            {
                objs.extend(st.wdf.detach_tree(h));
            }
        }
        // Everything DMA must be gone once the hardware is released (Device Fundamentals'
        // rebalance and removal tests look for exactly this).
        for r in crate::hal::reports(st) {
            if r.leaks() {
                return Err(BugCheck::sim(
                    wdf_rule::DMA_AFTER_RELEASE,
                    r.adapter as u64,
                    (r.common_buffers + r.sg_lists + r.register_files) as u64,
                    "a DMA adapter, common buffer, scatter/gather list or map register file is still held after EvtDeviceReleaseHardware",
                ));
            }
        }
        Ok(objs)
    });
    super::run_cleanup(objs);
}

fn remove_device(d: &DevNode) {
    stop_device(d, _WDF_POWER_DEVICE_STATE::WdfPowerDeviceD3Final, true);
    let queues = with_state(|st, _| Ok(st.wdf.device(d.device)?.queues.clone()));
    for q in queues {
        purge(q);
    }
    let cleanup =
        with_state(|st, _| Ok(st.wdf.device(d.device)?.pnp.EvtDeviceSelfManagedIoCleanup));
    if let Some(f) = cleanup {
        // SAFETY: the driver's callback.
        callback(|| unsafe { f(d.device as WDFDEVICE) });
    }
    // Deleting a work item waits for its callback (KMDF flushes it): the device's are flushed
    // before the device and its context go away.
    let items = with_state(|st, _| {
        Ok(st
            .wdf
            .objects
            .iter()
            .filter(|(_, o)| matches!(o.kind, Kind::WorkItem(_)) && o.parent == Some(d.device))
            .map(|(&h, _)| h)
            .collect::<Vec<usize>>())
    });
    for w in items {
        // SAFETY: a live work item of the device, flushed at PASSIVE_LEVEL.
        unsafe { super::functions::WdfWorkItemFlush(w as crate::WDFWORKITEM) };
    }
    // Deleting a timer stops it and waits for a running callback (KMDF does this for a timer
    // deleted at PASSIVE_LEVEL): the device's timers are stopped before the device goes away.
    let timers = with_state(|st, _| {
        Ok(st
            .wdf
            .objects
            .iter()
            .filter(|(_, o)| matches!(o.kind, Kind::Timer(_)) && o.parent == Some(d.device))
            .map(|(&h, _)| h)
            .collect::<Vec<usize>>())
    });
    for t in timers {
        // SAFETY: a live timer of the device, stopped at PASSIVE_LEVEL.
        let _ = unsafe { super::functions::WdfTimerStop(t as crate::WDFTIMER, TRUE) };
    }
    let objs = with_state(|st, _| {
        let live: Vec<usize> = st
            .wdf
            .objects
            .iter()
            .filter(|(_, o)| matches!(&o.kind, Kind::Request(r) if r.device == d.device))
            .map(|(&h, _)| h)
            .collect();
        if let Some(&r) = live.first() {
            return Err(BugCheck::sim(
                wdf_rule::REQUEST_LEAKED,
                r as u64,
                live.len() as u64,
                "requests still outstanding when the device was removed (never completed)",
            ));
        }
        Ok(st.wdf.detach_tree(d.device))
    });
    super::run_cleanup(objs);
}

fn unload_driver() {
    let (driver, unload) = with_state(|st, _| {
        let Some(h) = st.wdf.driver else {
            return Ok((0, None));
        };
        let f = match &st.wdf.get(h, "WDFDRIVER")?.kind {
            Kind::Driver(c) => c.EvtDriverUnload,
            _ => None,
        };
        Ok((h, f))
    });
    if let Some(f) = unload {
        // SAFETY: the driver's unload callback with its driver handle.
        callback(|| unsafe { f(driver as WDFDRIVER) });
    }
    let objs = with_state(|st, _| {
        let referenced: Vec<(usize, &'static str)> = st
            .wdf
            .objects
            .iter()
            .filter(|(_, o)| o.refs > 0)
            .map(|(&h, o)| (h, o.kind.name()))
            .collect();
        if let Some(&(h, _)) = referenced.first() {
            let names: Vec<String> = referenced
                .iter()
                .map(|(h, n)| format!("{n} {h:#x}"))
                .collect();
            return Err(BugCheck::sim(
                wdf_rule::OBJECTS_LEAKED,
                h as u64,
                referenced.len() as u64,
                Box::leak(
                    format!(
                        "framework objects still referenced at driver unload: {}",
                        names.join(", ")
                    )
                    .into_boxed_str(),
                ),
            ));
        }
        let objs = if driver == 0 {
            Vec::new()
        } else {
            st.wdf.detach_tree(driver)
        };
        st.wdf.driver = None;
        if !st.wdf.objects.is_empty() {
            let names: Vec<String> = st
                .wdf
                .live()
                .iter()
                .map(|(h, n)| format!("{n} {h:#x}"))
                .collect();
            return Err(BugCheck::sim(
                wdf_rule::OBJECTS_LEAKED,
                st.wdf.live()[0].0 as u64,
                names.len() as u64,
                Box::leak(
                    format!(
                        "framework objects outside the driver's tree at unload: {}",
                        names.join(", ")
                    )
                    .into_boxed_str(),
                ),
            ));
        }
        Ok(objs)
    });
    super::run_cleanup(objs);
    // Driver Verifier's unload checks, once the driver's cleanup callbacks have run.
    with_state(crate::machine::Machine::unload_checks);
}

/// `CmResourceShareDeviceExclusive` (`_CM_SHARE_DISPOSITION`, wdm.h).
const CM_SHARE_DEVICE_EXCLUSIVE: u8 = 1;
/// `CmResourceShareShared`.
const CM_SHARE_SHARED: u8 = 3;

/// The raw and translated resource lists of a device: its memory BARs, then its interrupts.
fn resources(
    att: &Attached,
    ints: InterruptResources,
) -> (
    Vec<CM_PARTIAL_RESOURCE_DESCRIPTOR>,
    Vec<CM_PARTIAL_RESOURCE_DESCRIPTOR>,
) {
    let mut raw = Vec::new();
    let mut trans = Vec::new();
    for bar in 0..6 {
        if att.bar_len[bar] == 0 {
            continue;
        }
        let mem = CM_PARTIAL_RESOURCE_DESCRIPTOR {
            Type: CmResourceTypeMemory as u8,
            ShareDisposition: CM_SHARE_DEVICE_EXCLUSIVE,
            Flags: CM_RESOURCE_MEMORY_READ_WRITE as u16,
            u: _CM_PARTIAL_RESOURCE_DESCRIPTOR__bindgen_ty_1 {
                Memory: _CM_PARTIAL_RESOURCE_DESCRIPTOR__bindgen_ty_1__bindgen_ty_5 {
                    Start: crate::types::PHYSICAL_ADDRESS {
                        QuadPart: att.bar_phys[bar].cast_signed(),
                    },
                    Length: att.bar_len[bar] as u32,
                },
            },
        };
        raw.push(mem);
        trans.push(mem);
    }
    let (n, flags) = match ints {
        InterruptResources::Msi(n) => (
            n,
            (CM_RESOURCE_INTERRUPT_LATCHED | CM_RESOURCE_INTERRUPT_MESSAGE) as u16,
        ),
        InterruptResources::Line => (1, CM_RESOURCE_INTERRUPT_LEVEL_SENSITIVE as u16),
    };
    for k in 0..n {
        // The mingw-w64 layout (no `NT_PROCESSOR_GROUPS`: `ULONG Level`, no `Group`); see
        // docs/sim-fidelity.md.
        let translated = _CM_PARTIAL_RESOURCE_DESCRIPTOR__bindgen_ty_1__bindgen_ty_3 {
            Level: u32::from(SIM_DIRQL),
            Vector: 0x80 + k,
            Affinity: 1,
        };
        let u_raw = if flags & CM_RESOURCE_INTERRUPT_MESSAGE as u16 != 0 {
            _CM_PARTIAL_RESOURCE_DESCRIPTOR__bindgen_ty_1 {
                MessageInterrupt: _CM_PARTIAL_RESOURCE_DESCRIPTOR__bindgen_ty_1__bindgen_ty_4 {
                    __bindgen_anon_1: _CM_PARTIAL_RESOURCE_DESCRIPTOR__bindgen_ty_1__bindgen_ty_4__bindgen_ty_1 {
                        Raw: _CM_PARTIAL_RESOURCE_DESCRIPTOR__bindgen_ty_1__bindgen_ty_4__bindgen_ty_1__bindgen_ty_1 {
                            Reserved: 0,
                            MessageCount: 1,
                            Vector: 0xFEE0_0000,
                            Affinity: 1,
                        },
                    },
                },
            }
        } else {
            _CM_PARTIAL_RESOURCE_DESCRIPTOR__bindgen_ty_1 {
                Interrupt: translated,
            }
        };
        let d = |u| CM_PARTIAL_RESOURCE_DESCRIPTOR {
            Type: CmResourceTypeInterrupt as u8,
            ShareDisposition: if ints == InterruptResources::Line {
                CM_SHARE_SHARED
            } else {
                CM_SHARE_DEVICE_EXCLUSIVE
            },
            Flags: flags,
            u,
        };
        raw.push(d(u_raw));
        trans.push(d(_CM_PARTIAL_RESOURCE_DESCRIPTOR__bindgen_ty_1 {
            Interrupt: translated,
        }));
    }
    (raw, trans)
}

// ---- the interrupt CPU ----

fn interrupt_cpu(rx: &Receiver<IrqEvent>) {
    loop {
        // Sleep until the next event or the next timer, whichever comes first.
        let wait = with_state(|st, _| Ok(next_timer_due(&st.wdf))).map_or(
            Duration::from_millis(50),
            |due| {
                due.saturating_duration_since(std::time::Instant::now())
                    .min(Duration::from_millis(50))
            },
        );
        match rx.recv_timeout(wait) {
            Ok(IrqEvent::Quit) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
            Ok(e) => deliver(e),
            Err(_) => {}
        }
        run_timers();
        run_dpcs();
        run_work_items();
    }
}

/// The earliest due time of the timers in the timer queue.
fn next_timer_due(w: &super::WdfState) -> Option<std::time::Instant> {
    w.objects
        .values()
        .filter_map(|o| match &o.kind {
            Kind::Timer(t) => t.due,
            _ => None,
        })
        .min()
}

/// The system's timer expiry: every timer due by now leaves the timer queue (a periodic one is
/// re-armed one period later) and its callback runs at `DISPATCH_LEVEL`, as a timer DPC does.
pub(crate) fn run_timers() {
    let now = std::time::Instant::now();
    let due: Vec<usize> = with_state(|st, _| {
        Ok(st
            .wdf
            .objects
            .iter()
            .filter(|(_, o)| matches!(&o.kind, Kind::Timer(t) if t.due.is_some_and(|d| d <= now)))
            .map(|(&h, _)| h)
            .collect())
    });
    for h in due {
        let f = with_state(
            |st, _| match st.wdf.objects.get_mut(&h).map(|o| &mut o.kind) {
                Some(Kind::Timer(t)) if t.due.is_some_and(|d| d <= now) && !t.running => {
                    t.due = (t.config.Period > 0)
                        .then(|| now + Duration::from_millis(u64::from(t.config.Period)));
                    t.running = true;
                    Ok(t.config.EvtTimerFunc)
                }
                _ => Ok(None),
            },
        );
        let Some(f) = f else { continue };
        let old = crate::machine::irql();
        set_irql(DISPATCH_LEVEL);
        // SAFETY: the driver's timer callback at DISPATCH_LEVEL with its timer.
        callback_in(Context::Dpc, || unsafe { f(h as crate::WDFTIMER) });
        set_irql(old);
        with_state(|st, _| {
            if let Some(Kind::Timer(t)) = st.wdf.objects.get_mut(&h).map(|o| &mut o.kind) {
                t.running = false;
            }
            Ok(())
        });
    }
}

/// The system worker thread: runs enqueued work items at `PASSIVE_LEVEL`, in order.
pub(crate) fn run_work_items() {
    while let Some(h) = with_state(|st, _| Ok(st.wdf.work_items.front().copied())) {
        run_work_item(h);
    }
}

/// Runs work item `h` if it is queued: dequeued, marked running, its callback called at
/// `PASSIVE_LEVEL`.
pub(crate) fn run_work_item(h: usize) {
    let f = with_state(|st, _| {
        let w = &mut st.wdf;
        w.work_items.retain(|&x| x != h);
        match w.objects.get_mut(&h).map(|o| &mut o.kind) {
            Some(Kind::WorkItem(d)) if d.queued => {
                d.queued = false;
                d.running = true;
                Ok(d.config.EvtWorkItemFunc)
            }
            _ => Ok(None),
        }
    });
    let Some(f) = f else { return };
    let old = crate::machine::irql();
    set_irql(PASSIVE_LEVEL);
    // SAFETY: the driver's work item callback at PASSIVE_LEVEL with its work item.
    callback(|| unsafe { f(h as crate::WDFWORKITEM) });
    set_irql(old);
    with_state(|st, _| {
        if let Some(Kind::WorkItem(d)) = st.wdf.objects.get_mut(&h).map(|o| &mut o.kind) {
            d.running = false;
        }
        Ok(())
    });
}

fn deliver(e: IrqEvent) {
    match e {
        IrqEvent::Device(slot, Interrupt::Msi { vector }) => {
            let _ = isr(slot, vector);
        }
        IrqEvent::Device(slot, Interrupt::IntxAsserted) => {
            // A level-triggered line interrupts for as long as it is asserted: after an ISR
            // that claimed it returns (the end of interrupt), the controller sees the level
            // again. A cause that arrived between the ISR's read and its acknowledgement keeps
            // the line up, and must interrupt again. An unclaimed, still-asserted line would be
            // an interrupt storm on Windows (bug check 0xF2): not modelled, the line is left.
            for _ in 0..LEVEL_REDELIVERY_LIMIT {
                if !isr(slot, 0) || !with_state(|st, _| Ok(st.bus.intx_asserted(slot))) {
                    break;
                }
            }
        }
        IrqEvent::Device(_, Interrupt::IntxDeasserted) | IrqEvent::Dpc | IrqEvent::Quit => {}
    }
}

/// How many times in a row a still-asserted line is delivered again to an ISR that claims it.
/// A device that keeps its line up through this many claimed interrupts is broken; the line is
/// then left until its next edge.
const LEVEL_REDELIVERY_LIMIT: usize = 1000;

/// Calls the ISR connected to `message` of the device in `slot`. Returns whether it claimed the
/// interrupt.
fn isr(slot: usize, message: u32) -> bool {
    let target = with_state(|st, _| {
        let w = &mut st.wdf;
        let found = w.objects.iter().find_map(|(&h, o)| match &o.kind {
            Kind::Interrupt(i) if i.connected && i.message == message => {
                let dev_slot = match w.objects.get(&i.device).map(|o| &o.kind) {
                    Some(Kind::Device(d)) => d.slot,
                    _ => usize::MAX,
                };
                (dev_slot == slot).then_some((h, i.config.EvtInterruptIsr))
            }
            _ => None,
        });
        Ok(found)
    });
    let Some((h, Some(f))) = target else {
        return false;
    };
    // The interrupt may have been disconnected, or even deleted by the device's removal,
    // between the lookup and the lock: a disconnected interrupt's ISR is never called.
    let Some((lock, old)) = super::functions::try_lock_interrupt(h) else {
        return false;
    };
    let connected = with_state(|st, _| Ok(st.wdf.interrupt(h).is_ok_and(|i| i.connected)));
    let claimed = connected && {
        // SAFETY: the driver's ISR at DIRQL under the interrupt's lock.
        callback_in(Context::Isr, || unsafe { f(h as WDFINTERRUPT, message) }) != 0
    };
    super::functions::unlock_interrupt(&lock, old);
    claimed
}

fn run_dpcs() {
    set_irql(DISPATCH_LEVEL);
    while let Some(h) = with_state(|st, _| {
        let w = &mut st.wdf;
        let h = w.dpcs.pop_front();
        w.dpc_running = h;
        Ok(h)
    }) {
        run_dpc(h);
        with_state(|st, _| {
            st.wdf.dpc_running = None;
            Ok(())
        });
    }
    set_irql(PASSIVE_LEVEL);
}

/// Calls interrupt `h`'s `EvtInterruptDpc` (dequeued by the caller) at `DISPATCH_LEVEL`.
fn run_dpc(h: usize) {
    let (f, dev) = with_state(|st, _| {
        let Ok(i) = st.wdf.interrupt(h) else {
            return Ok((None, 0));
        };
        i.dpc_queued = false;
        Ok((i.config.EvtInterruptDpc, i.device))
    });
    if let Some(f) = f {
        let old = crate::machine::irql();
        set_irql(DISPATCH_LEVEL);
        // SAFETY: the driver's DPC at DISPATCH_LEVEL with its interrupt and device.
        callback_in(Context::Dpc, || unsafe {
            f(h as WDFINTERRUPT, dev as PVOID);
        });
        set_irql(old);
    }
}

/// After interrupts are disconnected, their DPCs are flushed (as KMDF does before
/// `EvtDeviceD0Exit`): queued ones run now on this CPU, and a running one is waited for.
fn flush_dpcs(interrupts: &[usize]) {
    while let Some(h) = with_state(|st, _| {
        let w = &mut st.wdf;
        let at = w.dpcs.iter().position(|h| interrupts.contains(h));
        Ok(at.and_then(|i| w.dpcs.remove(i)))
    }) {
        run_dpc(h);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while with_state(|st, _| Ok(st.wdf.dpc_running.is_some_and(|h| interrupts.contains(&h))))
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(1));
    }
}

// ---- queues and requests ----

fn presented_on(w: &super::WdfState, q: usize) -> Vec<usize> {
    w.objects
        .iter()
        .filter(|(_, o)| matches!(&o.kind, Kind::Request(r) if r.queue == Some(q) && r.state == ReqState::Presented))
        .map(|(&h, _)| h)
        .collect()
}

/// Whether `q` is a sequential queue.
pub(crate) fn sequential(q: usize) -> bool {
    with_state(|st, _| {
        Ok(st.wdf.queue(q).is_ok_and(|qd| {
            qd.config.DispatchType == _WDF_IO_QUEUE_DISPATCH_TYPE::WdfIoQueueDispatchSequential
        }))
    })
}

/// Presents waiting requests to the driver as the queue's dispatch type allows.
pub(crate) fn dispatch(q: usize) {
    loop {
        let next = with_state(|st, _| {
            let w = &mut st.wdf;
            let Ok(qd) = w.queue(q) else { return Ok(None) };
            if !qd.started
                || qd.config.DispatchType == _WDF_IO_QUEUE_DISPATCH_TYPE::WdfIoQueueDispatchManual
            {
                return Ok(None);
            }
            if qd.config.DispatchType == _WDF_IO_QUEUE_DISPATCH_TYPE::WdfIoQueueDispatchSequential
                && qd.presented > 0
            {
                return Ok(None);
            }
            // A parallel queue presents while the driver owns fewer of its requests than
            // `NumberOfPresentedRequests` (`FxIoQueue::DispatchEvents`, `fxioqueue.cpp`
            // l.3075–3083); with 0 it never presents one (`WDF_IO_QUEUE_CONFIG_INIT` sets
            // (ULONG)-1).
            if qd.config.DispatchType == _WDF_IO_QUEUE_DISPATCH_TYPE::WdfIoQueueDispatchParallel
                // SAFETY: a union of plain integers; the parallel member, as the framework reads.
                && qd.presented >= unsafe { qd.config.Settings.Parallel.NumberOfPresentedRequests } as usize
            {
                return Ok(None);
            }
            let Some(r) = qd.waiting.pop_front() else {
                return Ok(None);
            };
            qd.presented += 1;
            let cfg = qd.config;
            let rd = w.request(r)?;
            rd.state = ReqState::Presented;
            Ok(Some((r, cfg, rd.kind, rd.in_len, rd.out_len)))
        });
        let Some((r, cfg, kind, in_len, out_len)) = next else {
            return;
        };
        match (kind, cfg.EvtIoDeviceControl, cfg.EvtIoDefault) {
            (ReqKind::Ioctl { code }, Some(f), _) => {
                // SAFETY: the driver's EvtIoDeviceControl with a request it now owns.
                callback(|| unsafe { f(q as WDFQUEUE, r as WDFREQUEST, out_len, in_len, code) });
            }
            (_, _, Some(f)) => {
                // SAFETY: the driver's EvtIoDefault with a request it now owns.
                callback(|| unsafe { f(q as WDFQUEUE, r as WDFREQUEST) });
            }
            _ => complete(r, STATUS_INVALID_DEVICE_REQUEST, 0),
        }
    }
}

/// Completes a request: copies a buffered output back, releases the system buffer and the
/// locked pages, wakes the waiting thread, deletes the request, presents the next one.
pub(crate) fn complete(r: usize, status: NTSTATUS, info: usize) {
    let (rd, queue, objs, in_mdl, idle) = with_state(|st, _| {
        let w = &mut st.wdf;
        let rd = w.request(r)?;
        let queue = rd.queue;
        let presented = rd.state == ReqState::Presented;
        let in_mdl = rd.in_mdl;
        let snapshot = (
            rd.sys_buf,
            rd.user_out,
            rd.out_len,
            rd.out_mdl,
            rd.method,
            rd.completion.clone(),
        );
        if let Some(qh) = queue
            && presented
            && let Ok(q) = w.queue(qh)
        {
            q.presented = q.presented.saturating_sub(1);
        }
        let mut idle = None;
        if let Some(qh) = queue
            && let Ok(q) = w.queue(qh)
        {
            q.waiting.retain(|&x| x != r);
            if q.presented == 0 {
                idle = q.idle_callback.take().map(|(f, c)| (qh, f, c));
            }
        }
        if snapshot.4 == 0 && snapshot.0 != 0 && snapshot.1 != 0 && NT_SUCCESS(status) {
            // METHOD_BUFFERED: the I/O manager copies Information bytes back to the caller.
            st.mem.copy_va(snapshot.1, snapshot.0, info.min(snapshot.2));
        }
        let objs = st.wdf.detach_tree(r);
        st.wdf.note_completed(r);
        Ok((snapshot, queue, objs, in_mdl, idle))
    });
    let (sys_buf, _, _, out_mdl, _, completion) = rd;
    if in_mdl != 0 {
        // SAFETY: the MDL WdfRequestRetrieveInputWdmMdl built (pages never locked), freed once.
        unsafe { ntddk::IoFreeMdl(in_mdl as PMDL) };
    }
    if out_mdl != 0 {
        // SAFETY: the I/O manager's MDL for this request, locked at dispatch.
        unsafe { ntddk::MmUnlockPages(out_mdl as PMDL) };
        // SAFETY: unlocked above; freed once.
        unsafe { ntddk::IoFreeMdl(out_mdl as PMDL) };
    }
    if sys_buf != 0 {
        // SAFETY: the system buffer allocated at dispatch, freed once.
        unsafe { ntddk::ExFreePool(sys_buf as PVOID) };
    }
    super::run_cleanup(objs);
    {
        let mut done = completion
            .done
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *done = Some((status, info));
    }
    completion.cv.notify_all();
    // A completion frees the one slot of a sequential queue: the next request is presented on
    // this CPU. Parallel queues present each request on the thread that queued it (or at a
    // queue start), never from another request's completion.
    if let Some(q) = queue
        && sequential(q)
    {
        dispatch(q);
    }
    if let Some((q, Some(f), ctx)) = idle {
        // SAFETY: the driver's stop/purge-complete callback with its own context.
        callback(|| unsafe { f(q as WDFQUEUE, ctx as WDFCONTEXT) });
    }
}

/// Cancels a request (`CancelIo`, handle close, process exit).
pub(crate) fn cancel(r: usize) {
    enum Act {
        Nothing,
        OnQueue(usize, PFN_WDF_IO_QUEUE_IO_CANCELED_ON_QUEUE),
        Routine(PFN_WDF_REQUEST_CANCEL),
    }
    let act = with_state(|st, _| {
        let w = &mut st.wdf;
        let Ok(rd) = w.request(r) else {
            return Ok(Act::Nothing);
        };
        rd.cancelled = true;
        match (rd.state, rd.queue) {
            (ReqState::Queued, Some(q)) => {
                let qd = w.queue(q)?;
                qd.waiting.retain(|&x| x != r);
                let cb = qd.config.EvtIoCanceledOnQueue;
                if cb.is_some() {
                    qd.presented += 1;
                    w.request(r)?.state = ReqState::Presented;
                }
                Ok(Act::OnQueue(q, cb))
            }
            (ReqState::Queued, None) => Ok(Act::OnQueue(0, None)),
            (ReqState::Presented, _) => Ok(Act::Routine(rd.cancel.take())),
        }
    });
    match act {
        Act::Nothing | Act::Routine(None) => {}
        Act::OnQueue(q, Some(f)) => {
            // SAFETY: the driver's EvtIoCanceledOnQueue for a request it now owns.
            callback(|| unsafe { f(q as WDFQUEUE, r as WDFREQUEST) });
        }
        Act::OnQueue(_, None) => complete(r, STATUS_CANCELLED, 0),
        Act::Routine(Some(f)) => {
            let old = crate::machine::irql();
            set_irql(DISPATCH_LEVEL.max(old));
            // SAFETY: the driver's cancel routine, at DISPATCH_LEVEL as KMDF calls it.
            callback(|| unsafe { f(r as WDFREQUEST) });
            set_irql(old);
        }
    }
}

/// Purges a queue: waiting requests cancelled, owned ones offered to `EvtIoStop(Purge)` or
/// their cancel routine, then a bounded wait for the driver to complete them.
pub(crate) fn purge(q: usize) {
    let (waiting, owned, stop) = with_state(|st, _| {
        let w = &mut st.wdf;
        let qd = w.queue(q)?;
        qd.started = false;
        qd.accepting = false;
        let waiting: Vec<usize> = qd.waiting.iter().copied().collect();
        let stop = qd.config.EvtIoStop;
        Ok((waiting, presented_on(w, q), stop))
    });
    for r in waiting {
        cancel(r);
    }
    for r in owned {
        if let Some(f) = stop {
            // SAFETY: the driver's EvtIoStop for a request it owns.
            callback(|| unsafe {
                f(
                    q as WDFQUEUE,
                    r as WDFREQUEST,
                    _WDF_REQUEST_STOP_ACTION_FLAGS::WdfRequestStopActionPurge as ULONG,
                );
            });
        } else {
            cancel(r);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        let left = with_state(|st, _| Ok(presented_on(&st.wdf, q).len()));
        if left == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

// ---- user mode ----

/// A simulated user-mode process.
pub struct Process {
    core: Arc<Core>,
    /// The file objects of the handles still open.
    handles: Mutex<Vec<usize>>,
    /// Every file object the process ever opened: a request sent on a handle closed since is
    /// still the process's, and its rundown waits for it.
    opened: Mutex<Vec<usize>>,
    memory: Mutex<Vec<usize>>,
    identity: Identity,
}

impl std::fmt::Debug for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Process").finish_non_exhaustive()
    }
}

/// An open handle to a device (a file object).
#[derive(Debug, Clone, Copy)]
pub struct Handle {
    file: usize,
    device: usize,
}

/// The result of an I/O request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IoResult {
    /// Final status.
    pub status: NTSTATUS,
    /// `IoStatus.Information`.
    pub information: usize,
    /// The output buffer after completion (buffered I/O), `information` bytes.
    pub output: Vec<u8>,
}

/// An overlapped request in flight.
#[derive(Debug)]
pub struct Pending {
    core: Arc<Core>,
    request: usize,
    completion: Arc<Completion>,
    user_out: usize,
    out_len: usize,
}

impl Pending {
    /// Waits up to `timeout` for completion.
    #[must_use]
    pub fn wait(&self, timeout: Duration) -> Option<IoResult> {
        let deadline = Instant::now() + timeout;
        let mut g = self
            .completion
            .done
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while g.is_none() {
            let now = Instant::now();
            if now >= deadline || self.core.machine.bugcheck().is_some() {
                return None;
            }
            if self.core.mode != Mode::Threaded {
                // The waiting thread drives the event loop: deliver everything pending.
                drop(g);
                let delivered = pump(&self.core, true).unwrap_or(false);
                g = self
                    .completion
                    .done
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if delivered || g.is_some() {
                    continue;
                }
            }
            g = self
                .completion
                .cv
                .wait_timeout(g, (deadline - now).min(Duration::from_millis(20)))
                .map_or_else(|e| e.into_inner().0, |(g, _)| g);
        }
        let (status, information) = (*g)?;
        drop(g);
        let mut output = vec![0u8; information.min(self.out_len)];
        if self.user_out != 0 && !output.is_empty() {
            let _ = self.core.machine.cpu_read(self.user_out, &mut output);
        }
        Some(IoResult {
            status,
            information,
            output,
        })
    }

    /// `CancelIoEx` for this request.
    ///
    /// # Errors
    /// A bug check the cancellation caused.
    pub fn cancel(&self) -> Result<(), HostError> {
        let r = self.request;
        if self
            .completion
            .done
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_some()
        {
            return Ok(());
        }
        step(&self.core, move || cancel(r))
    }

    /// The request's handle value (for tests that inspect the framework).
    #[must_use]
    pub const fn request(&self) -> usize {
        self.request
    }
}

impl Process {
    /// `CreateFile` on the device: a file object, `EvtDeviceFileCreate`.
    ///
    /// # Errors
    /// The status the driver failed the create with, or a bug check.
    pub fn open(&self, d: &DevNode) -> Result<Handle, HostError> {
        self.open_name(d, "")
    }

    /// `CreateFile` of a name below the device (`\\.\Device\suffix`). The I/O manager checks
    /// the device's DACL for the device itself, and for names below it only when the device
    /// object has `FILE_DEVICE_SECURE_OPEN` (otherwise the driver would have to).
    ///
    /// # Errors
    /// `STATUS_ACCESS_DENIED` when the DACL does not admit the process; as [`Process::open`].
    pub fn open_name(&self, d: &DevNode, suffix: &str) -> Result<Handle, HostError> {
        let allowed = self
            .core
            .security
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&d.slot)
            .cloned();
        if let Some(allowed) = allowed {
            let dev = d.device;
            let secure_open = run(&self.core.machine, move || {
                with_state(|st, _| {
                    Ok(st.wdf.device(dev).map_or(0, |d| d.fdo.Characteristics)
                        & crate::FILE_DEVICE_SECURE_OPEN
                        != 0)
                })
            })?;
            let checked = suffix.is_empty() || secure_open;
            if checked
                && !self
                    .identity
                    .sids()
                    .iter()
                    .any(|s| allowed.iter().any(|a| a == s))
            {
                return Err(HostError::Status(crate::STATUS_ACCESS_DENIED));
            }
        }
        let dev = d.device;
        let (file, pending) = step(&self.core, move || {
            let (file, req, cb, completion) = with_state(|st, _| {
                let w = &mut st.wdf;
                if !w.objects.contains_key(&dev) {
                    return Ok(None);
                }
                let cb = w.device(dev)?.file.EvtDeviceFileCreate;
                let file = w.insert(
                    Kind::File(Box::new(super::FileData { device: dev })),
                    Some(dev),
                    None,
                );
                let completion = Arc::new(Completion::default());
                let req = w.insert(
                    Kind::Request(Box::new(RequestData::new(
                        ReqKind::Create,
                        dev,
                        file,
                        completion.clone(),
                    ))),
                    Some(dev),
                    None,
                );
                w.request(req)?.state = ReqState::Presented;
                Ok(Some((file, req, cb, completion)))
            })
            .ok_or(HostError::Status(STATUS_DEVICE_REMOVED))?;
            match cb {
                // SAFETY: the driver's create callback with a create request it must complete.
                Some(f) => callback(|| unsafe {
                    f(dev as WDFDEVICE, req as WDFREQUEST, file as WDFFILEOBJECT);
                }),
                None => complete(req, STATUS_SUCCESS, 0),
            }
            Ok::<_, HostError>((file, completion))
        })??;
        let p = Pending {
            core: self.core.clone(),
            request: 0,
            completion: pending,
            user_out: 0,
            out_len: 0,
        };
        let r = p
            .wait(Duration::from_secs(5))
            .ok_or(HostError::State("the create request was never completed"))?;
        if !NT_SUCCESS(r.status) {
            let c = self.core.clone();
            step(&c, move || {
                let objs = with_state(|st, _| Ok(st.wdf.detach_tree(file)));
                super::run_cleanup(objs);
            })?;
            return Err(HostError::Status(r.status));
        }
        self.handles
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(file);
        self.opened
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(file);
        Ok(Handle { file, device: dev })
    }

    /// User memory of this process (a buffer for direct I/O).
    #[must_use]
    pub fn alloc(&self, len: usize) -> usize {
        let va = self.core.machine.alloc_user(len);
        self.memory
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(va);
        va
    }

    /// `DeviceIoControl`, synchronous.
    ///
    /// # Errors
    /// A bug check, or `State` when the request never completes (5 s).
    pub fn ioctl(
        &self,
        h: &Handle,
        code: u32,
        input: &[u8],
        out_len: usize,
    ) -> Result<IoResult, HostError> {
        let p = self.ioctl_async(h, code, input, out_len)?;
        p.wait(Duration::from_secs(5)).ok_or_else(|| {
            self.core.machine.bugcheck().map_or(
                HostError::State("the request never completed"),
                HostError::BugCheck,
            )
        })
    }

    /// `DeviceIoControl` on an overlapped handle: returns once the driver has the request.
    ///
    /// # Errors
    /// A bug check during dispatch.
    pub fn ioctl_async(
        &self,
        h: &Handle,
        code: u32,
        input: &[u8],
        out_len: usize,
    ) -> Result<Pending, HostError> {
        let method = code & 3;
        let user_in = if input.is_empty() {
            0
        } else {
            self.alloc(input.len())
        };
        if user_in != 0 {
            let _ = self.core.machine.cpu_write(user_in, input);
        }
        let user_out = if out_len == 0 { 0 } else { self.alloc(out_len) };
        self.submit(h, code, method, user_in, input.len(), user_out, out_len)
    }

    /// `DeviceIoControl` with a caller-supplied output buffer (`METHOD_OUT_DIRECT`/`IN_DIRECT`:
    /// the buffer is locked for the request's life and described by an MDL).
    ///
    /// # Errors
    /// A bug check during dispatch.
    pub fn ioctl_with_buffer(
        &self,
        h: &Handle,
        code: u32,
        input: &[u8],
        user_out: usize,
        out_len: usize,
    ) -> Result<Pending, HostError> {
        let user_in = if input.is_empty() {
            0
        } else {
            self.alloc(input.len())
        };
        if user_in != 0 {
            let _ = self.core.machine.cpu_write(user_in, input);
        }
        self.submit(h, code, code & 3, user_in, input.len(), user_out, out_len)
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "the fields of one DeviceIoControl call"
    )]
    fn submit(
        &self,
        h: &Handle,
        code: u32,
        method: u32,
        user_in: usize,
        in_len: usize,
        user_out: usize,
        out_len: usize,
    ) -> Result<Pending, HostError> {
        let (file, dev) = (h.file, h.device);
        let (req, completion) = step(&self.core, move || {
            submit_ioctl(dev, file, code, method, user_in, in_len, user_out, out_len)
        })?;
        Ok(Pending {
            core: self.core.clone(),
            request: req,
            completion,
            user_out,
            out_len,
        })
    }

    /// `CloseHandle`: pending requests of the handle cancelled, then `EvtFileCleanup` and
    /// `EvtFileClose`, and the file object deleted.
    ///
    /// # Errors
    /// A bug check.
    pub fn close(&self, h: Handle) -> Result<(), HostError> {
        self.handles
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|&f| f != h.file);
        let (file, dev) = (h.file, h.device);
        step(&self.core, move || close_file(dev, file))
    }

    /// The process is terminated: every handle closed abruptly (pending requests cancelled),
    /// then, once every request of the process has completed (I/O rundown), its memory
    /// released — a device DMA into it afterwards is a fault.
    ///
    /// # Errors
    /// A bug check.
    pub fn kill(&self) -> Result<(), HostError> {
        let files: Vec<usize> = std::mem::take(
            &mut *self
                .handles
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for f in files {
            let dev = step(&self.core, move || {
                with_state(|st, _| {
                    Ok(match st.wdf.objects.get(&f).map(|o| &o.kind) {
                        Some(Kind::File(fd)) => fd.device,
                        _ => 0,
                    })
                })
            })?;
            if dev != 0 {
                step(&self.core, move || close_file(dev, f))?;
            }
        }
        // Requests sent on handles closed before are the process's too (an IRP belongs to the
        // thread that issued it, not to the handle): the rundown waits for them all.
        let closed: Vec<usize> = self
            .opened
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        // I/O rundown: Windows deletes the address space only after every request of the
        // process has completed (thread termination waits for the threads' IRPs, whose locked
        // pages keep the memory pinned). A driver that never completes a cancelled request
        // hangs the process there; here that is a bug check after `Config::rundown_limit`.
        let deadline = Instant::now() + self.core.machine.config().rundown_limit;
        loop {
            let files = closed.clone();
            let left = run(&self.core.machine, move || {
                with_state(|st, _| {
                    Ok(st
                        .wdf
                        .objects
                        .iter()
                        .filter(
                            |(_, o)| matches!(&o.kind, Kind::Request(r) if files.contains(&r.file)),
                        )
                        .map(|(&h, _)| h)
                        .collect::<Vec<usize>>())
                })
            })?;
            let Some(&first) = left.first() else { break };
            if Instant::now() >= deadline {
                let n = left.len() as u64;
                return run(&self.core.machine, move || {
                    with_state::<()>(|_, _| {
                        Err(BugCheck::sim(
                            wdf_rule::RUNDOWN_HUNG,
                            first as u64,
                            n,
                            "process terminated with requests the driver never completed (the process would hang in rundown)",
                        ))
                    });
                });
            }
            // Deterministic mode: this thread drives the interrupts and DPCs that complete them.
            if !pump(&self.core, true)? {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        // The address space goes away: later device DMA into these pages is a fault.
        let memory: Vec<usize> = std::mem::take(
            &mut *self
                .memory
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for va in memory {
            self.core.machine.free_user(va);
        }
        Ok(())
    }
}

#[expect(
    clippy::too_many_arguments,
    clippy::too_many_lines,
    reason = "the fields of one DeviceIoControl call, and the I/O manager's buffer setup for each method in one place"
)]
fn submit_ioctl(
    dev: usize,
    file: usize,
    code: u32,
    method: u32,
    user_in: usize,
    in_len: usize,
    user_out: usize,
    out_len: usize,
) -> (usize, Arc<Completion>) {
    let completion = Arc::new(Completion::default());
    // The I/O manager builds the buffers before the driver sees the request.
    let mut sys_buf = 0usize;
    let mut out_mdl = 0usize;
    let (in_buf, out_buf) = match method {
        0 => {
            let len = in_len.max(out_len);
            if len > 0 {
                // SAFETY: pool allocation has no pointer preconditions.
                sys_buf = unsafe {
                    ntddk::ExAllocatePool2(
                        POOL_FLAG_NON_PAGED,
                        len as u64,
                        u32::from_le_bytes(*b"Irp "),
                    )
                } as usize;
                // The I/O manager copies the input and does not clear the rest: the output part
                // holds whatever the pool held (here a recognisable fill), so a driver that
                // reports more bytes than it wrote leaks it to the caller.
                with_state(|st, _| {
                    st.mem
                        .fill_va(sys_buf + in_len, crate::UNINITIALIZED_FILL, len - in_len);
                    if in_len > 0 {
                        st.mem.copy_va(sys_buf, user_in, in_len);
                    }
                    Ok(())
                });
            }
            (
                if in_len > 0 { sys_buf } else { 0 },
                if out_len > 0 { sys_buf } else { 0 },
            )
        }
        1 | 2 => {
            if in_len > 0 {
                // SAFETY: as above.
                sys_buf = unsafe {
                    ntddk::ExAllocatePool2(
                        POOL_FLAG_NON_PAGED,
                        in_len as u64,
                        u32::from_le_bytes(*b"Irp "),
                    )
                } as usize;
                with_state(|st, _| {
                    st.mem.copy_va(sys_buf, user_in, in_len);
                    Ok(())
                });
            }
            if out_len > 0 {
                // SAFETY: the user buffer belongs to the calling process; the MDL only records it.
                let mdl = unsafe {
                    ntddk::IoAllocateMdl(
                        user_out as PVOID,
                        out_len as u32,
                        FALSE,
                        FALSE,
                        core::ptr::null_mut(),
                    )
                };
                let op = if method == 2 {
                    crate::types::_LOCK_OPERATION::IoWriteAccess
                } else {
                    crate::types::_LOCK_OPERATION::IoReadAccess
                };
                // SAFETY: the MDL describes the caller's user buffer; the machine checks the range.
                unsafe { ntddk::MmProbeAndLockPages(mdl, 1, op) };
                out_mdl = mdl as usize;
            }
            (if in_len > 0 { sys_buf } else { 0 }, user_out)
        }
        _ => (user_in, user_out),
    };
    let queued = with_state(|st, _| {
        let w = &mut st.wdf;
        let Ok(d) = w.device(dev) else {
            return Ok(None);
        };
        let q = d.ioctl_queue.or(d.default_queue);
        let mut rd = RequestData::new(ReqKind::Ioctl { code }, dev, file, completion.clone());
        rd.in_len = in_len;
        rd.out_len = out_len;
        rd.in_buf = in_buf;
        rd.out_buf = out_buf;
        rd.out_mdl = out_mdl;
        rd.sys_buf = sys_buf;
        rd.user_out = if method == 0 { user_out } else { 0 };
        rd.method = method;
        rd.queue = q;
        let accepting = q.is_some_and(|q| w.queue(q).is_ok_and(|qd| qd.accepting));
        let r = w.insert(Kind::Request(Box::new(rd)), Some(dev), None);
        if accepting && let Some(q) = q {
            w.queue(q)?.waiting.push_back(r);
        }
        Ok(Some((r, q, accepting)))
    });
    match queued {
        Some((r, Some(q), true)) => {
            dispatch(q);
            (r, completion)
        }
        Some((r, _, _)) => {
            complete(r, STATUS_INVALID_DEVICE_REQUEST, 0);
            (r, completion)
        }
        None => {
            if sys_buf != 0 {
                // SAFETY: allocated above, never handed out.
                unsafe { ntddk::ExFreePool(sys_buf as PVOID) };
            }
            *completion
                .done
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) =
                Some((STATUS_DEVICE_REMOVED, 0));
            (0, completion)
        }
    }
}

fn close_file(dev: usize, file: usize) {
    // Cancel every request of this handle, then cleanup and close.
    let (mine, cfg) = with_state(|st, _| {
        let w = &mut st.wdf;
        let mine: Vec<usize> = w
            .objects
            .iter()
            .filter(|(_, o)| matches!(&o.kind, Kind::Request(r) if r.file == file))
            .map(|(&h, _)| h)
            .collect();
        let cfg = w.device(dev).map(|d| d.file).unwrap_or_default();
        Ok((mine, cfg))
    });
    for r in mine {
        cancel(r);
    }
    if let Some(f) = cfg.EvtFileCleanup {
        // SAFETY: the driver's cleanup callback with the closing file object.
        callback(|| unsafe { f(file as WDFFILEOBJECT) });
    }
    if let Some(f) = cfg.EvtFileClose {
        // SAFETY: the driver's close callback.
        callback(|| unsafe { f(file as WDFFILEOBJECT) });
    }
    let objs = with_state(|st, _| Ok(st.wdf.detach_tree(file)));
    super::run_cleanup(objs);
}
