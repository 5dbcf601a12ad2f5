//! The stream tests' machine: the driver loaded on a simulated machine with the device model,
//! started with two MSI-X messages.

#![allow(
    dead_code,
    reason = "each test binary uses part of the harness; `expect` would fail in the others"
)]

use std::sync::Arc;

use std::time::Duration;

use rhca_hw::ioctl::{self, RecvMadOut, SendMadIn, SendMadOut, StatisticsOut};
use rhca_hw::mad::{self, MadHeader, attr};
use rhca_model::{ModelConfig, RhcaDevice, Worker};
use wdk_sim::wdf::host::{DevNode, Handle, Host, InterruptResources, Mode, Process};
use wdk_sim::{Attached, Config, Machine, Profile, STATUS_SUCCESS};

pub fn stats(p: &Process, h: &Handle) -> StatisticsOut {
    let r = p
        .ioctl(h, ioctl::IOCTL_RHCA_STATISTICS, &[], StatisticsOut::SIZE)
        .unwrap();
    StatisticsOut::decode(&r.output).unwrap()
}

#[expect(
    clippy::many_single_char_names,
    reason = "process, handle, query, buffer, result: p, h, q, b, r as in every test"
)]
/// One `NodeInfo` round trip: `Ok` when answered, `Err` with the send's or receive's status.
pub fn node_info(p: &Process, h: &Handle, tid: u64) -> Result<(), String> {
    let q = SendMadIn {
        qp: 0,
        dlid: mad::PERMISSIVE_LID,
        mad: mad::directed_route_get(attr::NODE_INFO, 0, &[0], tid).unwrap(),
        ..SendMadIn::default()
    };
    let mut b = [0u8; SendMadIn::SIZE];
    q.encode(&mut b).unwrap();
    let r = p
        .ioctl(h, ioctl::IOCTL_RHCA_SEND_MAD, &b, SendMadOut::SIZE)
        .map_err(|e| e.to_string())?;
    if r.status != STATUS_SUCCESS {
        return Err(format!("send status {:#x}", r.status));
    }
    let out = SendMadOut::decode(&r.output).unwrap();
    if out.status != 0 {
        return Err(format!("send completed with {}", out.status));
    }
    // The answer (skipping late answers to earlier MADs).
    for _ in 0..8 {
        let pend = p
            .ioctl_async(h, ioctl::IOCTL_RHCA_RECV_MAD, &[], RecvMadOut::SIZE)
            .unwrap();
        let Some(r) = pend.wait(Duration::from_secs(2)) else {
            let _ = pend.cancel();
            return Err("no answer".into());
        };
        let m = RecvMadOut::decode(&r.output).map_err(|e| e.to_string())?;
        if MadHeader::decode(&m.mad).is_ok_and(|h| h.tid == tid) {
            return Ok(());
        }
    }
    Err("no answer with the TID".into())
}

pub struct Lab {
    pub m: Machine,
    pub host: Option<Host>,
    pub node: DevNode,
    pub dev: Arc<RhcaDevice>,
    pub att: Attached,
    pub worker: Option<Worker>,
}

pub fn lab(profile: &str) -> Lab {
    lab_with(Config::with_profile(
        Profile::parse(profile).expect("profile"),
    ))
}

/// A lab on a machine built from `config`.
pub fn lab_with(config: Config) -> Lab {
    let model = if config.profile.bounce {
        ModelConfig::dma_32bit()
    } else {
        ModelConfig::default()
    };
    lab_model(config, model)
}

/// A lab on a machine built from `config`, with device `model`.
pub fn lab_model(config: Config, model: ModelConfig) -> Lab {
    let m = Machine::new(config);
    let (dev, att) = RhcaDevice::attach(&m, model).expect("model");
    let worker = dev.spawn_worker();
    let host = Host::load_with(&m, rhca::driver_entry, Mode::Threaded).expect("DriverEntry");
    let node = host
        .add_device(&att, InterruptResources::Msi(2))
        .expect("AddDevice");
    host.start(&node).expect("start");
    Lab {
        m,
        host: Some(host),
        node,
        dev,
        att,
        worker: Some(worker),
    }
}

impl Lab {
    pub const fn host(&self) -> &Host {
        self.host.as_ref().unwrap()
    }

    /// Removes the device and unloads the driver; the machine must be clean.
    pub fn finish(mut self) {
        let host = self.host.take().unwrap();
        host.remove(&self.node).expect("remove");
        host.unload().expect("unload");
        drop(self.worker.take());
        assert_eq!(self.m.leaks().unwrap(), Vec::<String>::new(), "leaks");
        assert!(self.m.bugcheck().is_none(), "{:?}", self.m.bugcheck());
        assert!(
            self.m.stray_dma(self.att.slot).is_empty(),
            "device DMA outside live mappings"
        );
        let _ = &self.dev;
    }
}
