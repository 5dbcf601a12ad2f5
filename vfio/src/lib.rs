//! `rhca-vfio-user`: the RHCA device model served as a PCI function over vfio-user, so that a
//! VM — QEMU 10.1 or later (`-device vfio-user-pci,socket=…`) or Cloud Hypervisor
//! (`--user-device socket=…`) — has an RHCA to install the real driver on, under the real
//! kernel, HAL, DMA remapping, Driver Verifier and HLK.
//!
//! What it owns:
//! - [`config`]: the function's PCI configuration space (identity, BAR0, power management,
//!   MSI-X and PCI Express capabilities, function-level reset); pure logic;
//! - [`guest`]: the guest memory the client maps for DMA — the crate's only `unsafe`;
//! - [`server`]: the vfio-user backend (regions, DMA map and unmap, interrupts, reset) over
//!   `rhca_model::RhcaDevice`, the same model the simulated machine runs, reached through its
//!   [`rhca_model::HostPort`] seam.
//!
//! The binary (`src/main.rs`) listens on a Unix socket and serves one client at a time; a
//! client that disconnects leaves the device reset and its memory unmapped for the next.
//!
//! vfio-user is a Unix protocol: on other hosts the crate is empty.
//!
//! # Limits
//! - Every BAR0 access is a message (no mmap of the BAR): slower than a mapped BAR, and every
//!   register access reaches the device in order.
//! - Guest memory must come with a file descriptor (a VMM with shared memory); the protocol's
//!   `DMA_READ`/`DMA_WRITE` messages are not used.
//! - `INTx` is signalled on assertion only: the VMM keeps the line until the guest's EOI.
//! - rust-vmm's `vfio_user` 0.1.7 server, which parses the messages, trusts two things a client
//!   sends before this crate sees them: a `VERSION` message's capability string must be
//!   NUL-terminated and its size sane (otherwise the library panics, and the server, built with
//!   `panic = "abort"`, exits), and a region read's count is allocated as given. A VMM sends
//!   neither; a hostile client could stop the server, never the guest. Everything the
//!   backend receives is checked here.

#![cfg(unix)]

pub mod config;
pub mod guest;
pub mod server;

pub use server::{GuestPort, RhcaBackend};
