//! `rhca-model`: the RHCA device, as hardware in every test.
//!
//! The model implements `docs/device.md` from the device's side, on a bus it reaches through
//! [`HostPort`]: `wdk-sim`'s simulated machine, or a VM through `rhca-vfio-user`. It owns:
//! - [`RhcaDevice`]: the BAR0 register file (reset, enable, quiesce, capabilities with a
//!   configurable DMA width), interrupt cause/mask with MSI-X and `INTx` delivery, the error
//!   latch, doorbells;
//! - the work and completion queues: WQE fetch and validation through `rhca_hw::wqe`, gather and
//!   scatter by logical address only, CQE writes (body, release barrier, owner byte), CQ arming
//!   and moderation, page-list rings, overflow and the flush of a failed queue;
//! - [`fabric`]: a port, a subnet management agent and a small fabric of remote nodes answering
//!   SMPs and `PerfMgt` GMPs with IBTA layouts, unsolicited SMPs, loopback;
//! - the stream engines (descriptor table read once, credits, per-segment records, the
//!   verifiable data pattern of `rhca_hw::stream`, rates);
//! - fault injection ([`Fault`], [`RandomFaults`]) and [`Counters`];
//! - [`rig`]: a host side without a driver — rings laid out and WQEs posted by hand through the
//!   HAL — for the model's own tests and the raw-ring baselines of `rhca-lab bench`.
//!
//! The model is a careful ASIC, not a helper: it trusts nothing the driver wrote, and reports
//! every mistake a real device would notice through `ERR_SYNDROME` and CQE status.
//!
//! # Safety story
//! None: the crate forbids `unsafe`. Host memory is reached only through a [`HostPort`]
//! (`wdk_sim::DeviceBus`, or a vfio-user client's mapped memory), by device address.

#![forbid(unsafe_code)]
#![expect(
    clippy::struct_excessive_bools,
    reason = "device state mirrors register bits, each a named flag of the datasheet"
)]
#![expect(
    clippy::cast_possible_truncation,
    reason = "register fields are 32-bit halves of 64-bit addresses and ring indices bounded by 2^16; each cast is of a value the interface bounds"
)]

pub mod config;
pub mod device;
pub mod fabric;
pub mod port;
pub mod rig;

pub use config::{Counters, FabricConfig, Fault, ModelConfig, RandomFaults, RemoteNode};
pub use device::{RhcaDevice, Worker};
pub use fabric::{Fabric, Packet};
pub use port::HostPort;

/// Why a model could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// The configuration is outside what the interface allows.
    #[error("invalid model configuration: {0}")]
    BadConfig(&'static str),
}

use rhca_hw::{pci, regs};

/// The PCI identity and capability registers one model instance presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceIdentity {
    /// PCI vendor id.
    pub vendor_id: u16,
    /// PCI device id.
    pub device_id: u16,
    /// PCI class code.
    pub class_code: u32,
    /// Capabilities reported in `CAP0`..`CAP2`.
    pub caps: regs::Caps,
}

impl DeviceIdentity {
    /// The default RHCA: 64-bit DMA and the capability registers' documented reset values.
    ///
    /// # Panics
    /// Never: the reset values are checked against the interface by `rhca-hw`'s tests.
    #[must_use]
    pub fn rhca() -> Self {
        let caps = regs::Caps::decode(regs::CAP0.reset, regs::CAP1.reset, regs::CAP2.reset)
            .expect("documented reset capabilities are valid");
        Self {
            vendor_id: pci::VENDOR_ID,
            device_id: pci::DEVICE_ID,
            class_code: pci::CLASS_CODE,
            caps,
        }
    }

    /// The same device driving only 32 address bits, so that the `bounce` profile has to
    /// double-buffer every transfer above 4 GiB.
    #[must_use]
    pub fn rhca_32bit() -> Self {
        let mut d = Self::rhca();
        d.caps.dma_width = 32;
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_encode_valid_capabilities() {
        for id in [DeviceIdentity::rhca(), DeviceIdentity::rhca_32bit()] {
            let (c0, c1, c2) = id.caps.encode();
            assert_eq!(regs::Caps::decode(c0, c1, c2), Ok(id.caps));
            assert_eq!(id.vendor_id, 0x1234);
        }
        assert_eq!(DeviceIdentity::rhca_32bit().caps.dma_width, 32);
    }
}
