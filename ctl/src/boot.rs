//! The simulated test machine `rhcactl --sim`, its tests and `rhca-lab bench` run the driver
//! on: one place that boots a machine, attaches an RHCA, loads the driver and starts the device.

use std::sync::Arc;

use rhca_model::{ModelConfig, RhcaDevice, Worker};
use wdk_sim::wdf::host::{DevNode, Handle, Host, InterruptResources, Mode, Process};
use wdk_sim::{Config, Machine, Profile};

/// A simulated test machine with the driver started on one RHCA.
pub struct SimMachine {
    /// The machine.
    pub m: Machine,
    host: Option<Host>,
    node: DevNode,
    dev: Arc<RhcaDevice>,
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
        let model = if p.bounce {
            ModelConfig::dma_32bit()
        } else {
            ModelConfig::default()
        };
        Self::boot_with(Config::with_profile(p), model, InterruptResources::Msi(2))
    }

    /// Boots a machine built from `config` with an RHCA built from `model`, granted
    /// `interrupts`, loads the driver and starts the device.
    ///
    /// # Errors
    /// The step that failed.
    pub fn boot_with(
        config: Config,
        model: ModelConfig,
        interrupts: InterruptResources,
    ) -> Result<Self, String> {
        let m = Machine::new(config);
        let (dev, att) = RhcaDevice::attach(&m, model).map_err(|e| e.to_string())?;
        let worker = dev.spawn_worker();
        let host =
            Host::load_with(&m, rhca::driver_entry, Mode::Threaded).map_err(|e| e.to_string())?;
        let node = host
            .add_device(&att, interrupts)
            .map_err(|e| e.to_string())?;
        host.start(&node).map_err(|e| e.to_string())?;
        Ok(Self {
            m,
            host: Some(host),
            node,
            dev,
            worker: Some(worker),
        })
    }

    /// The device model behind the machine's RHCA (its counters: what the device itself did).
    #[must_use]
    pub const fn device(&self) -> &Arc<RhcaDevice> {
        &self.dev
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

    /// Stops the device (`IRP_MN_STOP_DEVICE`: D0 exit and hardware released) without
    /// removing it.
    ///
    /// # Errors
    /// A bug check during the stop.
    ///
    /// # Panics
    /// Never: the host lives until [`SimMachine::power_off`].
    pub fn stop_device(&self) -> Result<(), String> {
        let host = self.host.as_ref().expect("the host is up");
        host.stop(&self.node).map_err(|e| e.to_string())
    }

    /// Removes the device, unloads the driver and stops the device model; the machine stays
    /// for inspection ([`SimMachine::m`]: leaks, counters, a bug check). Does nothing the second
    /// time.
    ///
    /// # Errors
    /// A bug check during removal or unload.
    pub fn power_off(&mut self) -> Result<(), String> {
        let r = self.host.take().map_or(Ok(()), |host| {
            host.remove(&self.node).map_err(|e| e.to_string())?;
            host.unload().map_err(|e| e.to_string())
        });
        drop(self.worker.take());
        r
    }

    /// Removes the device, unloads the driver, and returns what leaked (empty when clean).
    ///
    /// # Errors
    /// A bug check during removal or unload, or one recorded earlier.
    pub fn shutdown(mut self) -> Result<Vec<String>, String> {
        self.power_off()?;
        if let Some(b) = self.m.bugcheck() {
            return Err(b.to_string());
        }
        self.m.leaks().map_err(|b| b.to_string())
    }
}
