//! The RHCA device: its BAR0 register file, interrupts, error latch, faults and counters, and
//! the service loop that moves work.
//!
//! # How the device runs
//! Register writes only record what the driver asked (a producer index, credits, a start); the
//! work itself happens in [`RhcaDevice::service`], one round at a time, as the ASIC's engines
//! would run beside the CPU. Tests call [`RhcaDevice::run_until_idle`] for deterministic
//! interleavings; the lab and the driver tests start a [`Worker`] thread that services the device
//! continuously and wakes on every doorbell. Either way the device touches host memory only by
//! logical address through its [`DeviceBus`](wdk_sim::DeviceBus).
//!
//! # Locking
//! One mutex guards the device state. The device may take the machine's lock (every DMA does)
//! while holding its own; the machine never calls into the device while holding its lock.
//! Interrupts are signalled only after the device lock is released, because an interrupt sink
//! (the driver's ISR) reads device registers. A stream engine's capture burst is the one DMA
//! made without the device lock: planned under it, written after it is released and committed
//! under it again (`engine::Burst`), so that the driver's register accesses do not wait for
//! 64 KiB of data movement.

mod engine;
mod queues;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rhca_hw::regs::{self, Caps, ErrorCode, ErrorSource, cause};
use wdk_sim::{Attached, DmaFault, Interrupt, Machine, PciFunction, PciIdentity};

use crate::ModelError;
use crate::config::{Counters, Fault, ModelConfig, RandomFaults};
use crate::fabric::{Fabric, Packet};
use crate::port::HostPort;

use engine::{Burst, Engine};
use queues::{Cq, Wq};

/// BAR0's size (`docs/device.md` §1).
pub const BAR0_SIZE: u64 = 0x4000;
/// Offset of the MSI-X table in BAR0.
pub const MSIX_TABLE: u64 = 0x2000;
/// Offset of the MSI-X pending bit array in BAR0.
pub const MSIX_PBA: u64 = 0x3000;
/// Most bytes a stream engine moves per bus burst (from its scratch buffer): what
/// `rhca-lab bench`'s memcpy baseline copies per step to do the same data movement.
pub const STREAM_BURST: u32 = 64 * 1024;
/// The doorbell page.
const DOORBELLS: u64 = 0x1000;
/// The stream engines' credit doorbells, after the queues' (`docs/device.md` §5.4).
const STREAM_DOORBELLS: u64 = 0x1200;

/// The first error latched since `INT_CAUSE.ERROR` was last cleared (§4.2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Latch {
    syndrome: u32,
    info: u32,
    addr: u64,
}

/// Fault injection state.
#[derive(Debug, Default)]
struct Faults {
    dma_error_send: bool,
    dma_error_recv: bool,
    cq_overflow: [bool; 4],
    hostile_index: bool,
    hostile_length: bool,
    hostile_opcode: bool,
    hostile_qpn: bool,
    remove_after: Option<u64>,
    slow: Duration,
    stream_error: [bool; 8],
    random: Option<(RandomFaults, u64)>,
}

impl Faults {
    /// Draws from the seeded generator: true with probability `ppm` per million.
    fn roll(&mut self, pick: impl Fn(&RandomFaults) -> u32) -> bool {
        let Some((cfg, state)) = self.random.as_mut() else {
            return false;
        };
        let ppm = pick(cfg);
        if ppm == 0 {
            return false;
        }
        *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let draw = rhca_hw::stream::pattern_word(*state, 0x5EED) % 1_000_000;
        draw < u64::from(ppm)
    }
}

/// Everything behind the device lock.
struct State {
    cfg: ModelConfig,
    bus: Option<Arc<dyn HostPort>>,
    removed: bool,
    enable: bool,
    quiesce: bool,
    fatal: bool,
    ready_at: Option<Instant>,
    int_cfg: u32,
    int_cause: u32,
    int_mask: u32,
    latched: Option<Latch>,
    port: u32,
    wq: [Wq; 4],
    cq: [Cq; 4],
    se: Vec<Engine>,
    msix: [[u32; 4]; 16],
    pba: u32,
    intx: bool,
    fabric: Fabric,
    /// Inbound MADs waiting for a receive WQE, per QP.
    rx: [VecDeque<Packet>; 2],
    next_unsolicited: Option<Instant>,
    faults: Faults,
    counters: Counters,
    /// Interrupts to signal once the lock is released.
    out: Vec<Interrupt>,
    /// Capture bursts planned in this round, written once the lock is released
    /// ([`engine::Burst`]).
    bursts: Vec<Burst>,
    /// Counts resets and removals: a burst planned under an older epoch is not written.
    epoch: Arc<AtomicU64>,
}

/// The RHCA device model, a [`PciFunction`] on a `wdk-sim` machine.
pub struct RhcaDevice {
    state: Mutex<State>,
    bus: OnceLock<Arc<dyn HostPort>>,
    wake: Condvar,
    /// Counts the events that give the device work (doorbells, inbound packets, faults, resets,
    /// the worker's stop), always incremented under `state`'s lock before `wake` is notified:
    /// the worker compares it, under that lock, with the value it saw before its last service
    /// round, so a doorbell rung between that round and the worker's wait is never slept
    /// through.
    kicks: AtomicU64,
    /// The state's `epoch`, read by the bus (under its lock) before it writes a burst planned
    /// in that epoch.
    epoch: Arc<AtomicU64>,
}

impl std::fmt::Debug for RhcaDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RhcaDevice")
            .field("port", &self.bus.get())
            .finish_non_exhaustive()
    }
}

impl RhcaDevice {
    /// Builds a device from `cfg`, not yet on a bus.
    ///
    /// # Errors
    /// [`ModelError::BadConfig`] for capabilities outside the interface or a fabric whose LIDs
    /// collide.
    pub fn new(cfg: ModelConfig) -> Result<Arc<Self>, ModelError> {
        let (c0, c1, c2) = cfg.caps.encode();
        if Caps::decode(c0, c1, c2) != Ok(cfg.caps) {
            return Err(ModelError::BadConfig("capabilities outside the interface"));
        }
        let mut lids: Vec<u16> = cfg.fabric.remotes.iter().map(|r| r.lid).collect();
        lids.push(cfg.lid);
        if cfg.fabric.switch_lid != 0 {
            lids.push(cfg.fabric.switch_lid);
        }
        let n = lids.len();
        lids.sort_unstable();
        lids.dedup();
        if lids.len() != n || lids.contains(&0) || lids.iter().any(|&l| l >= 0xC000) {
            return Err(ModelError::BadConfig(
                "fabric LIDs must be unique unicast LIDs",
            ));
        }
        let engines = cfg.caps.stream_engines as usize;
        let fabric = Fabric::new(&cfg);
        let epoch = Arc::new(AtomicU64::new(0));
        Ok(Arc::new(Self {
            state: Mutex::new(State {
                cfg,
                bus: None,
                removed: false,
                enable: false,
                quiesce: false,
                fatal: false,
                ready_at: None,
                int_cfg: 0,
                int_cause: 0,
                int_mask: u32::MAX,
                latched: None,
                port: 1,
                wq: Default::default(),
                cq: Default::default(),
                se: (0..engines).map(|_| Engine::default()).collect(),
                // The OS programs and unmasks the MSI-X table when the driver connects its
                // interrupts; the model starts with every entry unmasked (docs/sim-fidelity.md).
                msix: [[0; 4]; 16],
                pba: 0,
                intx: false,
                fabric,
                rx: [VecDeque::new(), VecDeque::new()],
                next_unsolicited: None,
                faults: Faults::default(),
                counters: Counters::default(),
                out: Vec::new(),
                bursts: Vec::with_capacity(engines),
                epoch: epoch.clone(),
            }),
            bus: OnceLock::new(),
            wake: Condvar::new(),
            kicks: AtomicU64::new(0),
            epoch,
        }))
    }

    /// Builds a device and attaches it to `machine`.
    ///
    /// # Errors
    /// As [`RhcaDevice::new`].
    pub fn attach(
        machine: &Machine,
        cfg: ModelConfig,
    ) -> Result<(Arc<Self>, Attached), ModelError> {
        let dev = Self::new(cfg)?;
        let (att, bus) = machine.attach(dev.clone());
        dev.connect(Arc::new(bus));
        Ok((dev, att))
    }

    /// Puts the device on `port`'s bus: from now on its DMA and interrupts go there. A device
    /// is connected once; a second port is ignored.
    pub fn connect(&self, port: Arc<dyn HostPort>) {
        if self.bus.set(port.clone()).is_ok() {
            self.lock().bus = Some(port);
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while the lock was held (a failed test assertion elsewhere) leaves the state
        // consistent enough to read counters; keep going.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records an event that gives the device work; called with `state` locked (see `kicks`).
    fn kick(&self) {
        self.kicks.fetch_add(1, Ordering::Release);
    }

    /// Runs `f` on the state, then signals the interrupts it produced.
    ///
    /// `INTx` level changes are signalled before the state lock is released: the bus keeps the
    /// line's level, and two threads that each changed it (the device asserting, the driver's
    /// ISR clearing the cause) must reach the bus in the order the device changed it. Signalled
    /// after the unlock, a deassert could overtake the assert before it and leave the bus's line
    /// high while the device's is low; the next assertion would then be no edge, and no ISR
    /// would run (a stuck `INTx` device, seen once in 500 rebalance cycles). The bus takes only the
    /// machine lock, which is always taken after this one. MSI-X messages are events, not
    /// levels: they go after the unlock.
    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let (r, msis) = {
            let mut st = self.lock();
            let r = f(&mut st);
            let mut msis = Vec::new();
            for i in std::mem::take(&mut st.out) {
                match (i, self.bus.get()) {
                    (Interrupt::Msi { vector }, _) => msis.push(vector),
                    (Interrupt::IntxAsserted, Some(bus)) => {
                        let _ = bus.set_intx(true);
                    }
                    (Interrupt::IntxDeasserted, Some(bus)) => {
                        let _ = bus.set_intx(false);
                    }
                    (_, None) => {}
                }
            }
            drop(st);
            (r, msis)
        };
        if let Some(bus) = self.bus.get() {
            for vector in msis {
                let _ = bus.signal_msi(vector);
            }
        }
        r
    }

    /// A `PCIe` function-level reset (or a VMM's device reset): registers, queues, engines and
    /// the interrupt state back to their reset values, as `CTRL.RESET` does, and the MSI-X
    /// table cleared. A device that has left the bus stays gone.
    pub fn function_level_reset(&self) {
        self.with(|st| {
            st.reset();
            st.msix = [[0; 4]; 16];
            self.kick();
        });
        self.wake.notify_all();
    }

    /// One round of device work: fetch and execute posted WQEs, deliver inbound MADs, move
    /// stream data as credits allow, fire moderation timers. Returns whether anything moved.
    ///
    /// A round's capture bursts are written after the device's lock is released, then
    /// committed under it again (`engine::Burst`): the driver's register accesses do not
    /// wait for the data movement, as they do not on hardware.
    pub fn service(&self) -> bool {
        let (progress, slow, bursts) = self.with(|st| {
            let p = st.service();
            // Taken only when there is one, and given back after the commit: the list keeps its
            // buffer, so a round allocates nothing.
            let bursts = (!st.bursts.is_empty()).then(|| std::mem::take(&mut st.bursts));
            (p, st.faults.slow, bursts)
        });
        if let Some(mut bursts) = bursts {
            // A reset or removal since the plan cancels a burst the bus has not taken yet:
            // the bus reads the epoch with its lock held, which a driver freeing the buffer
            // after the reset also takes.
            for b in &mut bursts {
                let planned = b.epoch;
                let live = || self.epoch.load(Ordering::Acquire) == planned;
                match self.bus.get() {
                    Some(bus) => b.write(bus.as_ref(), &live),
                    None => b.outcome = engine::BurstOutcome::Cancelled,
                }
            }
            self.with(|st| {
                // Popped: engines' bursts are independent, so their order does not matter.
                while let Some(b) = bursts.pop() {
                    st.commit_burst(b);
                }
                st.bursts = bursts;
            });
        }
        if progress && !slow.is_zero() {
            std::thread::sleep(slow);
        }
        progress
    }

    /// Services the device until a round makes no progress (at most `10^6` rounds). Returns the
    /// number of rounds that made progress.
    pub fn run_until_idle(&self) -> usize {
        let mut n = 0;
        while n < 1_000_000 && self.service() {
            n += 1;
        }
        n
    }

    /// Injects a fault.
    pub fn inject(&self, f: Fault) {
        self.with(|st| {
            st.inject(f);
            self.kick();
        });
        self.wake.notify_all();
    }

    /// Turns on (or off) random faults from a seeded generator.
    pub fn set_random_faults(&self, r: Option<RandomFaults>) {
        self.with(|st| st.faults.random = r.map(|r| (r, r.seed)));
    }

    /// What the device has done.
    #[must_use]
    pub fn counters(&self) -> Counters {
        self.lock().counters
    }

    /// The fabric's view of the local port (`PortInfo`), as the SMA answers it.
    #[must_use]
    pub fn port_info(&self) -> rhca_hw::attrs::PortInfo {
        self.lock().fabric.local_port_info()
    }

    /// Delivers `p` to the local port as if it arrived from the fabric.
    pub fn receive(&self, p: Packet) {
        self.with(|st| {
            st.inbound(p);
            self.kick();
        });
        self.wake.notify_all();
    }

    /// Starts a thread that services the device continuously until the handle drops.
    ///
    /// # Panics
    /// When the host cannot start a thread.
    #[must_use]
    pub fn spawn_worker(self: &Arc<Self>) -> Worker {
        let stop = Arc::new(AtomicBool::new(false));
        let dev = self.clone();
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name("rhca-model".into())
            .spawn(move || {
                // Whether the device has had nothing to do since its last sleep ran out.
                let mut dormant = false;
                while !flag.load(Ordering::Acquire) {
                    let seen = dev.kicks.load(Ordering::Acquire);
                    if dev.service() {
                        dormant = false;
                        continue;
                    }
                    // Nothing moved. Just after work a doorbell often follows within
                    // microseconds (the driver posting the next WQE): poll for one briefly
                    // before sleeping. A dormant device does not: it would take a core from a
                    // busy machine beside it every time its timer wakes it.
                    let kicked = || {
                        (dev.kicks.load(Ordering::Acquire) != seen || flag.load(Ordering::Acquire))
                            .then_some(())
                    };
                    if !dormant && wdk_sim::spin::spin(kicked).is_some() {
                        continue;
                    }
                    dormant = true;
                    let st = dev.lock();
                    // Sleep until a doorbell, or briefly, so that timers (moderation, stream
                    // rate, unsolicited MADs) still fire; not at all if one was rung since the
                    // round above (kicks change only under this lock).
                    if dev.kicks.load(Ordering::Acquire) == seen {
                        let _ = dev.wake.wait_timeout(st, Duration::from_micros(200));
                    }
                }
            })
            .expect("spawning the device thread");
        Worker {
            stop,
            dev: self.clone(),
            handle: Some(handle),
        }
    }
}

/// The device's service thread; stops and joins when dropped.
#[derive(Debug)]
pub struct Worker {
    stop: Arc<AtomicBool>,
    dev: Arc<RhcaDevice>,
    handle: Option<JoinHandle<()>>,
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        {
            // Under the lock, so that a worker between its check and its wait sees the kick.
            let _st = self.dev.lock();
            self.dev.kick();
        }
        self.dev.wake.notify_all();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl PciFunction for RhcaDevice {
    fn identity(&self) -> PciIdentity {
        PciIdentity {
            vendor_id: rhca_hw::pci::VENDOR_ID,
            device_id: rhca_hw::pci::DEVICE_ID,
            class_code: rhca_hw::pci::CLASS_CODE,
            revision: rhca_hw::pci::REVISION_ID,
        }
    }

    fn bar_size(&self, bar: u8) -> u64 {
        if bar == 0 { BAR0_SIZE } else { 0 }
    }

    fn mmio_read(&self, bar: u8, offset: u64) -> u32 {
        if bar != 0 {
            return regs::ALL_ONES;
        }
        self.with(|st| st.read(offset))
    }

    fn mmio_write(&self, bar: u8, offset: u64, value: u32) {
        if bar != 0 {
            return;
        }
        // A queue's doorbell rung by a CPU that steps the device before its system call
        // returns needs no wake-up of the device's thread; a stream engine's credit does (the
        // engines run only there).
        let wake =
            offset >= DOORBELLS && !(offset < STREAM_DOORBELLS && wdk_sim::stepped_by_caller());
        self.with(|st| {
            st.write(offset, value);
            if offset >= DOORBELLS {
                self.kick();
            }
        });
        if wake {
            self.wake.notify_all();
        }
    }

    /// A round of the queues' work (WQEs, inbound MADs, completion moderation), for the CPU
    /// that rang a doorbell. Stream engines are not moved here: their data movement runs on
    /// the device's own thread, beside the CPUs, as on hardware.
    fn step(&self) -> bool {
        let (progress, slow) = self.with(|st| (st.service_queues(), st.faults.slow));
        if progress && !slow.is_zero() {
            std::thread::sleep(slow);
        }
        progress
    }

    fn dma_address_width(&self) -> u32 {
        self.lock().cfg.caps.dma_width
    }
}

impl State {
    fn ready(&mut self) -> bool {
        match self.ready_at {
            None => true,
            Some(t) if Instant::now() >= t => {
                self.ready_at = None;
                true
            }
            Some(_) => false,
        }
    }

    /// Whether a capture burst is being written (without the device's lock).
    fn bursting(&self) -> bool {
        self.se.iter().any(Engine::in_flight)
    }

    /// Whether the device may fetch work and move data now.
    fn running(&mut self) -> bool {
        !self.removed && self.ready() && self.enable && !self.quiesce && !self.fatal
    }

    // ---- DMA ----

    fn dma_read(&self, addr: u64, buf: &mut [u8]) -> Result<(), DmaFault> {
        if self.removed {
            return Err(DmaFault::NotPresent);
        }
        self.bus
            .as_ref()
            .ok_or(DmaFault::NotPresent)?
            .dma_read(addr, buf)
    }

    fn dma_write(&self, addr: u64, buf: &[u8]) -> Result<(), DmaFault> {
        if self.removed {
            return Err(DmaFault::NotPresent);
        }
        self.bus
            .as_ref()
            .ok_or(DmaFault::NotPresent)?
            .dma_write(addr, buf)
    }

    // ---- interrupts ----

    fn nvec(&self) -> u32 {
        regs::INT_CFG_NVEC
            .get(self.int_cfg)
            .min(self.cfg.caps.msix_vectors)
    }

    /// Sets cause bits; a bit going from 0 to 1 while unmasked sends its message.
    fn raise(&mut self, bits: u32) {
        let newly = bits & !self.int_cause;
        self.int_cause |= bits;
        self.deliver(newly & !self.int_mask);
    }

    /// Sends the messages for `bits` (which are pending and unmasked), or updates `INTx`.
    fn deliver(&mut self, bits: u32) {
        let nvec = self.nvec();
        if nvec == 0 {
            self.update_intx();
            return;
        }
        let mut sent = 0u32;
        for bit in 0..32 {
            if bits & (1 << bit) != 0 {
                let v = cause::vector(bit, nvec);
                if sent & (1 << v) == 0 {
                    sent |= 1 << v;
                    self.send_msi(v);
                }
            }
        }
    }

    fn send_msi(&mut self, v: u32) {
        if self.removed || v >= self.cfg.caps.msix_vectors {
            return;
        }
        if self.msix[v as usize][3] & 1 != 0 {
            self.pba |= 1 << v;
        } else {
            self.counters.interrupts += 1;
            self.out.push(Interrupt::Msi { vector: v });
        }
    }

    fn update_intx(&mut self) {
        let level = !self.removed && self.nvec() == 0 && self.int_cause & !self.int_mask != 0;
        if level != self.intx {
            self.intx = level;
            if level {
                self.counters.interrupts += 1;
                self.out.push(Interrupt::IntxAsserted);
            } else {
                self.out.push(Interrupt::IntxDeasserted);
            }
        }
    }

    /// Latches an error (the first since `INT_CAUSE.ERROR` was cleared) and raises ERROR.
    fn error(&mut self, code: ErrorCode, source: ErrorSource, info: u32, addr: u64) {
        self.counters.errors += 1;
        if self.latched.is_none() {
            let l = Latch {
                syndrome: regs::ERR_SYNDROME_SOURCE.set(
                    regs::ERR_SYNDROME_CODE.set(0, code as u32),
                    u32::from(source.encode()),
                ),
                info,
                addr,
            };
            self.latched = Some(l);
        }
        self.raise(cause::ERROR);
    }

    // ---- registers ----

    fn read(&mut self, offset: u64) -> u32 {
        if self.removed {
            return regs::ALL_ONES;
        }
        let Ok(off) = u32::try_from(offset) else {
            return 0;
        };
        if off & 3 != 0 {
            return 0;
        }
        let (c0, c1, c2) = self.cfg.caps.encode();
        match off {
            0x000 => regs::ID_VALUE,
            0x004 => regs::VERSION.reset,
            0x008 => c0,
            0x00C => c1,
            0x010 => c2,
            0x014 => flag(self.enable, regs::CTRL_ENABLE) | flag(self.quiesce, regs::CTRL_QUIESCE),
            0x018 => {
                let ready = self.ready();
                flag(ready, regs::STATUS_READY)
                    | flag(ready && self.enable, regs::STATUS_ENABLED)
                    | flag(
                        ready && self.quiesce && !self.bursting(),
                        regs::STATUS_QUIESCED,
                    )
                    | flag(self.fatal, regs::STATUS_FATAL)
            }
            0x01C => self.int_cfg,
            0x020 => self.int_cause,
            0x024 => self.int_mask,
            0x028 => self.latched.map_or(0, |l| l.syndrome),
            0x02C => self.latched.map_or(0, |l| l.info),
            0x030 => self.latched.map_or(0, |l| l.addr as u32),
            0x034 => self.latched.map_or(0, |l| (l.addr >> 32) as u32),
            0x040 => regs::PORT_STATE_LID.set(
                self.port,
                u32::from(self.cfg.lid) * u32::from(self.port >= 2),
            ),
            0x048 => self.cfg.node_guid as u32,
            0x04C => (self.cfg.node_guid >> 32) as u32,
            0x100..0x180 => self.read_wq((off - 0x100) / 0x20, off % 0x20),
            0x200..0x280 => self.read_cq((off - 0x200) / 0x20, off % 0x20),
            0x400..0x600 => self.read_se((off - 0x400) / 0x40, off % 0x40),
            0x2000..0x2100 => {
                let v = (off - 0x2000) / 16;
                if v < self.cfg.caps.msix_vectors {
                    self.msix[v as usize][((off % 16) / 4) as usize]
                } else {
                    0
                }
            }
            0x3000 => self.pba,
            _ => 0,
        }
    }

    fn write(&mut self, offset: u64, value: u32) {
        if self.removed {
            return;
        }
        let Ok(off) = u32::try_from(offset) else {
            return;
        };
        if off & 3 != 0 {
            return;
        }
        match off {
            0x014 => self.write_ctrl(value),
            0x01C => {
                self.int_cfg = value & regs::INT_CFG_NVEC.mask();
                self.update_intx();
            }
            0x020 => {
                self.int_cause &= !value;
                if value & cause::ERROR != 0 {
                    self.latched = None;
                }
                self.update_intx();
            }
            0x024 => {
                let unmasked = self.int_mask & !value;
                self.int_mask = value;
                self.deliver(unmasked & self.int_cause);
                self.update_intx();
            }
            0x100..0x180 => self.write_wq((off - 0x100) / 0x20, off % 0x20, value),
            0x200..0x280 => self.write_cq((off - 0x200) / 0x20, off % 0x20, value),
            0x400..0x600 => self.write_se((off - 0x400) / 0x40, off % 0x40, value),
            0x1000..0x2000 => self.doorbell(off, value),
            0x2000..0x2100 => {
                let v = (off - 0x2000) / 16;
                let word = ((off % 16) / 4) as usize;
                if v < self.cfg.caps.msix_vectors {
                    self.msix[v as usize][word] = value;
                    if word == 3 && value & 1 == 0 && self.pba & (1 << v) != 0 {
                        self.pba &= !(1 << v);
                        self.send_msi(v);
                    }
                }
            }
            _ => {}
        }
    }

    fn write_ctrl(&mut self, value: u32) {
        if regs::CTRL_RESET.is_set(value) {
            self.reset();
            return;
        }
        let enable = regs::CTRL_ENABLE.is_set(value);
        let quiesce = regs::CTRL_QUIESCE.is_set(value);
        if (quiesce && !self.quiesce) || (self.enable && !enable) {
            // Quiesce (or disable) stops every engine at a burst boundary; queues stop fetching
            // because `running()` is now false. All of it happens under this lock, so by the
            // time STATUS.QUIESCED can be read no DMA is in flight.
            let ack = quiesce;
            for n in 0..self.se.len() {
                self.stop_engine(n, ack);
            }
        }
        if enable && !self.enable && self.port < 4 {
            // The subnet manager brings the link to Active once the port is enabled.
            self.port = 4;
            self.raise(cause::PORT);
        }
        self.enable = enable;
        self.quiesce = quiesce;
    }

    /// `CTRL.RESET`: abandon everything without DMA (§3.2).
    fn reset(&mut self) {
        // A burst planned before the reset is not written (§3.2: no DMA from here on).
        self.epoch.fetch_add(1, Ordering::Release);
        let fabric = Fabric::new(&self.cfg);
        self.enable = false;
        self.quiesce = false;
        self.fatal = false;
        self.ready_at = Some(Instant::now() + self.cfg.reset_time);
        self.int_cause = 0;
        self.int_mask = u32::MAX;
        self.int_cfg = 0;
        self.latched = None;
        self.port = 1;
        self.wq = Default::default();
        self.cq = Default::default();
        for e in &mut self.se {
            *e = Engine::default();
        }
        self.pba = 0;
        self.rx = [VecDeque::new(), VecDeque::new()];
        self.fabric = fabric;
        self.update_intx();
    }

    // ---- faults ----

    fn inject(&mut self, f: Fault) {
        match f {
            Fault::DmaErrorNextSend => self.faults.dma_error_send = true,
            Fault::DmaErrorNextReceive => self.faults.dma_error_recv = true,
            Fault::CqOverflow(n) => {
                if let Some(c) = self.faults.cq_overflow.get_mut(n as usize) {
                    *c = true;
                }
            }
            Fault::StuckQueue(n) | Fault::UnstickQueue(n) => {
                if let Some(w) = self.wq.get_mut(n as usize) {
                    w.stuck = matches!(f, Fault::StuckQueue(_));
                    self.counters.faults_injected += u64::from(w.stuck);
                }
            }
            Fault::HostileCqeIndex => self.faults.hostile_index = true,
            Fault::HostileCqeLength => self.faults.hostile_length = true,
            Fault::HostileCqeOpcode => self.faults.hostile_opcode = true,
            Fault::HostileCqeQpn => self.faults.hostile_qpn = true,
            Fault::InterruptStorm(n) => {
                self.counters.faults_injected += 1;
                for _ in 0..n {
                    if self.nvec() == 0 {
                        // A level-triggered line that bounces with no cause behind it.
                        self.out.push(Interrupt::IntxAsserted);
                        self.out.push(Interrupt::IntxDeasserted);
                        self.counters.interrupts += 1;
                    } else {
                        self.send_msi(u32::from(self.nvec() > 1));
                    }
                }
            }
            Fault::SurpriseRemoval => self.remove(),
            Fault::RemoveAfterWqes(n) => {
                self.faults.remove_after = Some(self.counters.wqes_fetched + n);
            }
            Fault::Slow(d) => self.faults.slow = d,
            Fault::StreamDmaError(n) => {
                if let Some(e) = self.faults.stream_error.get_mut(n as usize) {
                    *e = true;
                }
            }
        }
    }

    /// Surprise removal: the device leaves the bus. No further DMA, registers read all-ones.
    fn remove(&mut self) {
        if self.removed {
            return;
        }
        self.counters.faults_injected += 1;
        self.epoch.fetch_add(1, Ordering::Release);
        if let Some(b) = &self.bus {
            b.surprise_remove();
        }
        self.removed = true;
        self.out.clear();
    }

    // ---- the service round ----

    fn service(&mut self) -> bool {
        self.round(true)
    }

    /// The queues' part of a round: [`State::service`] without the stream engines.
    fn service_queues(&mut self) -> bool {
        self.round(false)
    }

    /// A round: the queues, the stream engines when `engines`, the moderation timers.
    fn round(&mut self, engines: bool) -> bool {
        if self.removed {
            return false;
        }
        let mut progress = false;
        if self.running() {
            progress = self.queues();
            if self.removed {
                return true;
            }
            if engines {
                for n in 0..self.se.len() {
                    progress |= self.service_engine(n);
                }
            }
        }
        self.moderation_timers();
        progress
    }

    /// Work queues, then unsolicited and inbound MADs (the device must be running).
    fn queues(&mut self) -> bool {
        let mut progress = false;
        for n in 0..4 {
            progress |= self.service_wq(n);
            if self.removed {
                return true;
            }
        }
        self.unsolicited();
        progress | self.deliver_rx()
    }

    /// Unsolicited SMPs from the subnet manager at the configured rate.
    fn unsolicited(&mut self) {
        let rate = self.fabric.config().unsolicited_per_sec;
        if rate == 0 {
            return;
        }
        let period = Duration::from_secs(1) / rate;
        let now = Instant::now();
        match self.next_unsolicited {
            None => self.next_unsolicited = Some(now + period),
            Some(t) if now >= t => {
                let p = self.fabric.unsolicited_subn_set();
                self.inbound(p);
                // Catch up at most one period: a device that was not serviced for a while
                // does not burst.
                self.next_unsolicited =
                    Some(t.max(now.checked_sub(period).unwrap_or(now)) + period);
            }
            Some(_) => {}
        }
    }

    /// An inbound MAD: queued for the QP's receive queue, or dropped when the device's receive
    /// buffering is full (a real HCA drops too; the sender's retry logic recovers).
    #[expect(
        clippy::large_types_passed_by_value,
        reason = "the packet moves into the receive backlog"
    )]
    fn inbound(&mut self, p: Packet) {
        let qp = usize::from(p.dst_qp != 0);
        if p.dst_qp > 1 || self.rx[qp].len() >= self.cfg.receive_buffering {
            self.counters.rx_drops += 1;
            return;
        }
        self.rx[qp].push_back(p);
    }

    fn moderation_timers(&mut self) {
        let now = Instant::now();
        for n in 0..4 {
            if self.cq[n].timer_due(now) {
                self.cq_event(n);
            }
        }
        for n in 0..self.se.len() {
            if self.se[n].timer_due(now) {
                self.se[n].unreported = 0;
                self.se[n].first_unreported = None;
                self.raise(cause::se_segment(n as u32));
            }
        }
    }
}

/// The moderation rule shared by CQs and stream engines (§7.3): report when `count` events are
/// unreported, or `usec` after the first unreported one.
fn moderation_due(modr: u32, unreported: u32, first: Option<Instant>, now: Instant) -> bool {
    let count = regs::cq::MOD_COUNT.get(modr);
    let usec = regs::cq::MOD_USEC.get(modr);
    if unreported == 0 {
        return false;
    }
    if count <= 1 || unreported >= count {
        return true;
    }
    usec != 0
        && first.is_some_and(|t| now.duration_since(t) >= Duration::from_micros(u64::from(usec)))
}

/// `b`'s mask when `on`, else 0: one status bit.
const fn flag(on: bool, b: regs::Bit) -> u32 {
    if on { b.mask() } else { 0 }
}

/// The `ErrorSource` of work queue `n`.
const fn wq_source(n: usize) -> ErrorSource {
    ErrorSource::Wq(n as u8)
}
