//! `rhcactl`: see the library documentation. On Windows it opens the RHCA device interface;
//! elsewhere `--sim [profile]` boots the simulated machine with the driver and runs the command
//! there (e.g. `rhcactl --sim verifier+iommu mad nodeinfo`).

#[cfg(all(test, not(windows)))]
mod tests;

use std::fmt::Write as _;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut out = String::new();
    let code = run(&args, &mut out);
    print!("{out}");
    ExitCode::from(code)
}

#[cfg(windows)]
fn run(args: &[&str], out: &mut String) -> u8 {
    match rhcactl::windows::Device::open_first() {
        Ok(d) => rhcactl::run(&d, args, out),
        Err(e) => {
            let _ = writeln!(out, "rhcactl: no RHCA device: {e}");
            1
        }
    }
}

#[cfg(not(windows))]
fn run(args: &[&str], out: &mut String) -> u8 {
    let (profile, rest) = match args {
        ["--sim", p, rest @ ..]
            if p.contains(|c: char| c.is_ascii_lowercase()) && !is_command(p) =>
        {
            (*p, rest)
        }
        ["--sim", rest @ ..] => ("verifier+iommu", rest),
        _ => {
            out.push_str(
                "rhcactl: this host has no RHCA device; use --sim [profile] to run the command \
                 against the driver on the simulated machine\n",
            );
            out.push_str(rhcactl::USAGE);
            out.push('\n');
            return 2;
        }
    };
    let machine = match rhcactl::boot::SimMachine::boot(profile) {
        Ok(m) => m,
        Err(e) => {
            let _ = writeln!(out, "rhcactl: cannot boot the simulated machine: {e}");
            return 1;
        }
    };
    let p = machine.process();
    let code = match machine.open(&p) {
        Ok(h) => {
            let t = rhcactl::sim::Sim {
                p: &p,
                h,
                m: &machine.m,
            };
            let c = rhcactl::run(&t, rest, out);
            let _ = p.close(h);
            c
        }
        Err(e) => {
            let _ = writeln!(out, "rhcactl: cannot open the device: {e}");
            1
        }
    };
    match machine.shutdown() {
        Ok(leaks) if leaks.is_empty() => code,
        Ok(leaks) => {
            let _ = writeln!(out, "rhcactl: the simulated machine leaked: {leaks:?}");
            1
        }
        Err(e) => {
            let _ = writeln!(out, "rhcactl: the simulated machine stopped: {e}");
            1
        }
    }
}

#[cfg(not(windows))]
fn is_command(s: &str) -> bool {
    matches!(s, "query" | "mad" | "capture" | "stats" | "loop")
}
