//! `rhca-hw`: the RHCA hardware interface in code.
//!
//! This crate is `docs/device.md` made executable, and the one place where the driver
//! (`rhca`), the device model (`rhca-model`) and user mode (`rhcactl`) learn what the device looks
//! like. It owns:
//!
//! - [`pci`]: PCI identity and the BAR0 layout;
//! - [`regs`]: the register map, bit fields, error syndromes, capability decoding;
//! - [`ring`]: ring index arithmetic (wrap, owner/phase parity, distance, free slots);
//! - [`wqe`], [`cqe`]: work and completion queue entries;
//! - [`stream`]: the stream engine's descriptor table, completion records and data pattern;
//! - [`mad`]: MAD and GRH layouts; [`attrs`]: the IBTA attributes RHCA's agents exchange;
//! - [`ioctl`]: the user-mode ABI (control codes and versioned request/response structures).
//!
//! # Safety story
//! There is none to tell: the crate is `#![forbid(unsafe_code)]`. Every decoder reads through a
//! bounds-checked cursor ([`wire::Reader`]) and validates every field, so device-written or
//! user-supplied bytes produce an [`Error`], never a panic. Property tests decode random bytes
//! with every decoder, and `hw/fuzz` holds `cargo fuzz` targets for the same decoders, whose
//! bodies are in [`fuzzing`] so that the tests replay every saved input.
//!
//! The crate is `no_std` without `alloc`, so the driver can use it in kernel mode as is.

#![no_std]
#![forbid(unsafe_code)]

pub mod attrs;
pub mod cqe;
pub mod error;
pub mod fuzzing;
pub mod ioctl;
pub mod mad;
pub mod pci;
pub mod regs;
pub mod ring;
pub mod stream;
pub mod wire;
pub mod wqe;

pub use error::{Error, Result};
pub use ring::{Ring, RingIndex};
