//! Test support for `kmdf-echo` on the simulated machine: a machine under the `verifier`
//! profile with the echo driver loaded from its exported `DriverEntry` symbol (not its Rust
//! path, as the I/O manager finds it) and a root-enumerated device started.
//!
//! The crate is empty on Windows (the simulated machine is the Linux test bed; on Windows the
//! driver runs on the real one).
//!
//! # Safety story
//! The one `unsafe` is the call of the driver's `DriverEntry` through its exported symbol,
//! with the loader's arguments, as the I/O manager makes it.

#![cfg(not(windows))]

use wdk_sim::wdf::host::{DevNode, Host, HostError, Mode};
use wdk_sim::{Config, Machine, NTSTATUS, PCUNICODE_STRING, PDRIVER_OBJECT, Profile};

// Link the driver's code: its `DriverEntry` is found by symbol below.
use kmdf_echo as _;

unsafe extern "system" {
    /// The echo driver's entry point, by the name it exports (`#[unsafe(export_name =
    /// "DriverEntry")]`).
    #[link_name = "DriverEntry"]
    fn echo_driver_entry(driver: PDRIVER_OBJECT, registry_path: PCUNICODE_STRING) -> NTSTATUS;
}

/// The hardware ID of the echo device (`devgen /add /bus ROOT /hardwareid "ROOT\ECHO"`).
pub const HARDWARE_ID: &str = "ROOT\\ECHO";

/// A machine with the echo driver loaded and its device started.
#[derive(Debug)]
pub struct EchoMachine {
    /// The machine (under the `verifier` profile).
    pub machine: Machine,
    /// The harness, with the driver loaded.
    pub host: Host,
    /// The started root-enumerated device.
    pub device: DevNode,
}

/// Boots a verifier machine, loads the echo driver as service `echo`, adds and starts its
/// device.
///
/// # Errors
/// What the harness reported.
pub fn boot(seed: u64) -> Result<EchoMachine, HostError> {
    let machine = Machine::new(Config {
        seed,
        ..Config::with_profile(Profile::VERIFIER)
    });
    let host = Host::load_service(&machine, "echo", entry, Mode::Threaded)?;
    let device = host.add_root_device(HARDWARE_ID)?;
    host.start(&device)?;
    Ok(EchoMachine {
        machine,
        host,
        device,
    })
}

/// The loader's call of the driver's `DriverEntry`.
unsafe extern "system" fn entry(
    driver: PDRIVER_OBJECT,
    registry_path: PCUNICODE_STRING,
) -> NTSTATUS {
    // SAFETY: the loader's driver object and registry path, passed on unchanged.
    unsafe { echo_driver_entry(driver, registry_path) }
}
