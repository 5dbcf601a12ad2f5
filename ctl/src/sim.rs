//! The simulated machine as `rhcactl`'s transport (every host but Windows).
//!
//! The RHCA driver is loaded on a `wdk-sim` machine with the device model and reached through
//! the machine's user-mode handle API — the same IOCTL codes and buffers `DeviceIoControl` would
//! carry.

use std::sync::Arc;
use std::time::Duration;

use rhca_model::{ModelConfig, RhcaDevice, Worker};
use wdk_sim::wdf::host::{DevNode, Handle, Host, InterruptResources, Mode, Pending, Process};
use wdk_sim::{Config, Machine, Profile, STATUS_SUCCESS};

use crate::{DirectIo, IoError, Transport};

/// A simulated test machine with the driver started on one RHCA.
pub struct SimMachine {
    /// The machine.
    pub m: Machine,
    host: Option<Host>,
    node: DevNode,
    _dev: Arc<RhcaDevice>,
    worker: Option<Worker>,
}

impl std::fmt::Debug for SimMachine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimMachine").finish_non_exhaustive()
    }
}

impl SimMachine {
    /// Boots a machine with `profile` (e.g. `verifier+iommu`), loads the driver and starts the
    /// device.
    ///
    /// # Errors
    /// A bad profile, or the step that failed.
    pub fn boot(profile: &str) -> Result<Self, String> {
        let p = Profile::parse(profile)?;
        let m = Machine::new(Config::with_profile(p));
        let model = if p.bounce {
            ModelConfig::dma_32bit()
        } else {
            ModelConfig::default()
        };
        let (dev, att) = RhcaDevice::attach(&m, model).map_err(|e| e.to_string())?;
        let worker = dev.spawn_worker();
        let host =
            Host::load_with(&m, rhca::driver_entry, Mode::Threaded).map_err(|e| e.to_string())?;
        let node = host
            .add_device(&att, InterruptResources::Msi(2))
            .map_err(|e| e.to_string())?;
        host.start(&node).map_err(|e| e.to_string())?;
        Ok(Self {
            m,
            host: Some(host),
            node,
            _dev: dev,
            worker: Some(worker),
        })
    }

    /// A new process on the machine.
    ///
    /// # Panics
    /// Never: the host lives until [`SimMachine::shutdown`].
    #[must_use]
    pub fn process(&self) -> Process {
        self.host.as_ref().expect("the host is up").process()
    }

    /// Opens the device in process `p`.
    ///
    /// # Errors
    /// A bug check during the open.
    ///
    /// # Panics
    /// Never: the host lives until [`SimMachine::shutdown`].
    pub fn open(&self, p: &Process) -> Result<Handle, String> {
        let _ = self.host.as_ref().expect("the host is up");
        p.open(&self.node).map_err(|e| e.to_string())
    }

    /// Removes the device, unloads the driver, and returns what leaked (empty when clean).
    ///
    /// # Errors
    /// A bug check during removal or unload, or one recorded earlier.
    pub fn shutdown(mut self) -> Result<Vec<String>, String> {
        if let Some(host) = self.host.take() {
            host.remove(&self.node).map_err(|e| e.to_string())?;
            host.unload().map_err(|e| e.to_string())?;
        }
        drop(self.worker.take());
        if let Some(b) = self.m.bugcheck() {
            return Err(b.to_string());
        }
        self.m.leaks().map_err(|b| b.to_string())
    }
}

/// A process's open handle on the simulated machine, as a transport.
#[derive(Debug)]
pub struct Sim<'a> {
    /// The process.
    pub p: &'a Process,
    /// Its handle to the device.
    pub h: Handle,
    /// The machine (for the process's memory).
    pub m: &'a Machine,
}

/// A pending direct-I/O request on the simulated machine.
#[derive(Debug)]
pub struct SimDirect<'a> {
    pending: Pending,
    va: usize,
    m: &'a Machine,
}

/// How long a synchronous request may take.
const LIMIT: Duration = Duration::from_secs(20);

impl<'a> Transport for Sim<'a> {
    type Direct = SimDirect<'a>;

    fn ioctl(&self, code: u32, input: &[u8], out_len: usize) -> Result<Vec<u8>, IoError> {
        let pend = self
            .p
            .ioctl_async(&self.h, code, input, out_len)
            .map_err(|_| IoError::Transport("the simulated machine stopped"))?;
        let r = pend.wait(LIMIT).ok_or(IoError::Timeout)?;
        if r.status == STATUS_SUCCESS {
            Ok(r.output)
        } else {
            Err(IoError::Status(r.status))
        }
    }

    fn start_direct(&self, code: u32, input: &[u8], len: usize) -> Result<Self::Direct, IoError> {
        let va = self.p.alloc(len);
        let pending = self
            .p
            .ioctl_with_buffer(&self.h, code, input, va, len)
            .map_err(|_| IoError::Transport("the simulated machine stopped"))?;
        if let Some(r) = pending.wait(Duration::ZERO) {
            return Err(IoError::Status(r.status));
        }
        Ok(SimDirect {
            pending,
            va,
            m: self.m,
        })
    }
}

impl DirectIo for SimDirect<'_> {
    fn read(&self, offset: usize, out: &mut [u8]) -> Result<(), IoError> {
        self.m
            .cpu_read(self.va + offset, out)
            .map_err(|_| IoError::Transport("the stream buffer is gone"))
    }

    fn wait(self, timeout: Duration) -> Result<usize, IoError> {
        let r = self.pending.wait(timeout).ok_or(IoError::Timeout)?;
        if r.status == STATUS_SUCCESS {
            Ok(r.information)
        } else {
            Err(IoError::Status(r.status))
        }
    }
}
