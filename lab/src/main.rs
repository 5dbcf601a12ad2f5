//! `rhca-lab`: the RHCA test machine.
//!
//! It boots a simulated Windows machine (`wdk-sim`, Driver Verifier on) with the RHCA driver
//! (`rhca`) and device (`rhca-model`) and runs the main job (`run`); `regs` prints the register
//! map compiled into `rhca-hw`; `bench` measures throughput and costs against baselines of the
//! same run; `scenario` runs the Device Fundamentals battery (`rhca_tests::scenario`).

//!
//! `rhca-lab` runs on the simulated machine only: on Windows (where the driver is a kernel
//! binary, not a library) it is built empty and says so; the test machine there is a real one
//! (`docs/test-machine.md`).

use std::process::ExitCode;

#[cfg(not(windows))]
mod bench;
#[cfg(not(windows))]
mod lab;
#[cfg(not(windows))]
mod run;

#[cfg(not(windows))]
fn main() -> ExitCode {
    lab::main()
}

#[cfg(windows)]
fn main() -> ExitCode {
    eprintln!(
        "rhca-lab runs the driver on the simulated machine, which is built on Linux; on Windows, \
         install the driver on a test machine (docs/test-machine.md)"
    );
    ExitCode::from(2)
}
