//! `rhca-lab`: the RHCA test machine.
//!
//! It will boot a simulated Windows machine (`wdk-sim`, Driver Verifier on) with the RHCA driver
//! (`rhca`) and device (`rhca-model`), and run the main job (`run`), the Device Fundamentals
//! scenarios (`scenario`) and the benchmarks (`bench`).
//!
//! Today it offers `regs`, which prints the register map compiled into `rhca-hw` (the same
//! table the model and the driver use), and says plainly which commands are not there yet.

use std::process::ExitCode;

use rhca_hw::regs::{self, REGISTERS};

const USAGE: &str = "\
usage: rhca-lab <command>

commands:
  regs        print the RHCA register map compiled into rhca-hw
  help        print this text

Coming with later issues: run (the main job), scenario, bench.";

fn print_regs() {
    println!(
        "{:<14} {:>6}  {:<4} {:>10}",
        "register", "offset", "acc", "reset"
    );
    for r in REGISTERS {
        println!(
            "{:<14} {:>#6x}  {:<4} {:>#010x}",
            r.name,
            r.offset,
            r.access.as_str(),
            r.reset
        );
    }
    let caps = regs::Caps::decode(regs::CAP0.reset, regs::CAP1.reset, regs::CAP2.reset);
    println!("\ndefault capabilities: {caps:?}");
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("regs") => {
            print_regs();
            ExitCode::SUCCESS
        }
        Some("help" | "--help" | "-h") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some(cmd @ ("run" | "scenario" | "bench")) => {
            eprintln!(
                "rhca-lab: `{cmd}` is not implemented yet (it needs the simulated machine and the driver)"
            );
            ExitCode::from(2)
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}
