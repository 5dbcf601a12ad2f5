//! `rhca-lab`: the RHCA test machine.
//!
//! It boots a simulated Windows machine (`wdk-sim`, Driver Verifier on) with the RHCA driver
//! (`rhca`) and device (`rhca-model`) and runs the main job (`run`); `regs` prints the register
//! map compiled into `rhca-hw`. The Device Fundamentals scenarios (`scenario`) and the
//! benchmarks (`bench`) come with later issues, and the command says so plainly.

mod run;

use std::process::ExitCode;

use rhca_hw::regs::{self, REGISTERS};

const USAGE: &str = "\
usage: rhca-lab <command>

commands:
  run [--profile P] [--json]
              boot the simulated machine (default profile verifier+iommu), load the driver,
              start the device, discover the fabric with SMPs, send PerfMgt queries, stop,
              remove, and report (exit status 1 when anything failed)
  regs        print the RHCA register map compiled into rhca-hw
  help        print this text

Profiles: coherent, iommu, bounce, noncoherent, verifier, joined with '+'.
Coming with later issues: scenario, bench.";

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
        Some("run") => {
            let json = args.iter().any(|a| a == "--json");
            let profile = args
                .iter()
                .position(|a| a == "--profile")
                .and_then(|i| args.get(i + 1))
                .map_or("verifier+iommu", String::as_str);
            let report = run::run(profile, !json);
            if json {
                println!("{}", report.json());
            } else {
                print!("{}", report.text());
            }
            if report.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Some(cmd @ ("scenario" | "bench")) => {
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
