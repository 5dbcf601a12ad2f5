//! The commands of `rhca-lab` (see the binary's documentation).

use crate::{bench, run};
use std::process::ExitCode;

use rhca_hw::regs::{self, REGISTERS};

const USAGE: &str = "\
usage: rhca-lab <command>

commands:
  run [--profile P] [--json] [--trace]
              boot the simulated machine (default profile verifier+iommu), load the driver,
              start the device, discover the fabric with SMPs, send PerfMgt queries, stop,
              remove, and report (exit status 1 when anything failed); --trace lists the
              driver's ETW events and DbgPrintEx lines (the JSON always holds them)
  bench [--quick] [--json PATH] [--plots DIR]
              measure stream throughput per strategy and profile, a segment-size sweep, MAD
              round trips and doorbell batching, each against a baseline measured in the same
              run; print a table, write JSON and SVG plots (default DIR: target/bench); exit
              status 1 when a target is missed (build with --release)
  bench --scaling [--quick] [--json PATH]
              how each cost per operation grows: MADs in flight, buffer size and segment
              count, concurrent streams, live IOMMU mappings (mixed sizes)
  scenario <all|name> [--count N] [--profile P] [--seed S] [--json]
              Device Fundamentals scenarios with I/O before, during and after (disable-enable,
              query-remove-cancel, remove, surprise-remove, query-stop-cancel, stop-start,
              rebalance-new-resources, rebalance-fail-restart, dif-remove, sleep, reboot,
              reinstall), device faults (faults), random operation sequences (ops, 10^5)
              and IOCTL fuzzing (fuzz), under verifier+iommu, 100 cycles each (fuzz: 10^6
              IOCTLs); summary or one JSON object; exit status 1 on any bug check, leak,
              lost MAD or corrupted byte
  regs        print the RHCA register map compiled into rhca-hw
  help        print this text

Profiles: coherent, iommu, bounce, noncoherent, verifier, joined with '+'.";

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

fn arg<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

/// Runs scenario `name` in a child process of this program (`scenario-child`), so that a panic
/// in the harness — which aborts the process: the release profile is the driver's, with
/// `panic = "abort"` — costs that scenario only and is reported, with the child's last words,
/// instead of ending the whole run without a summary. Bug checks never abort (the simulated CPU
/// parks and the harness reports them); this is for everything else.
fn run_isolated(
    name: &str,
    cycles: u64,
    profile: &str,
    seed: u64,
) -> rhca_tests::scenario::Outcome {
    match std::env::current_exe() {
        Ok(exe) => run_in(&exe, name, cycles, profile, seed),
        Err(e) => failed(
            name,
            format!("cannot find this program to run the scenario: {e}"),
        ),
    }
}

/// The outcome of scenario `name` when it could not run, or its child died: one error, `why`.
fn failed(name: &str, why: String) -> rhca_tests::scenario::Outcome {
    rhca_tests::scenario::Outcome {
        name: name.into(),
        errors: vec![why],
        ..rhca_tests::scenario::Outcome::default()
    }
}

/// [`run_isolated`] with the program to run as the child.
fn run_in(
    exe: &std::path::Path,
    name: &str,
    cycles: u64,
    profile: &str,
    seed: u64,
) -> rhca_tests::scenario::Outcome {
    use rhca_tests::scenario::decode_outcome;
    let out = match std::process::Command::new(exe)
        .args([
            "scenario-child",
            name,
            &cycles.to_string(),
            profile,
            &seed.to_string(),
        ])
        .stdin(std::process::Stdio::null())
        .output()
    {
        Ok(o) => o,
        Err(e) => return failed(name, format!("cannot start the scenario's process: {e}")),
    };
    decode_outcome(&String::from_utf8_lossy(&out.stdout)).unwrap_or_else(|| {
        let stderr = String::from_utf8_lossy(&out.stderr);
        // The panic message, without the backtrace's frames.
        let lines: Vec<&str> = stderr
            .lines()
            .filter(|l| {
                let l = l.trim_start();
                !l.starts_with(|c: char| c.is_ascii_digit()) && !l.starts_with("at ")
            })
            .collect();
        failed(
            name,
            format!(
                "the scenario's process ended ({}) without its outcome; its last words: {}",
                out.status,
                lines[lines.len().saturating_sub(6)..].join(" | ")
            ),
        )
    })
}

/// `scenario-child <name> <cycles> <profile> <seed>`: one scenario, its outcome on stdout
/// ([`rhca_tests::scenario::encode_outcome`]).
fn scenario_child(args: &[String]) -> ExitCode {
    use rhca_tests::scenario;
    let (Some(name), Some(cycles), Some(profile), Some(seed)) = (
        args.get(1),
        args.get(2).and_then(|c| c.parse().ok()),
        args.get(3).and_then(|p| wdk_sim::Profile::parse(p).ok()),
        args.get(4).and_then(|s| s.parse().ok()),
    ) else {
        eprintln!("usage: rhca-lab scenario-child <name> <cycles> <profile> <seed>");
        return ExitCode::from(2);
    };
    print!(
        "{}",
        scenario::encode_outcome(&scenario::run(name, cycles, profile, seed))
    );
    ExitCode::SUCCESS
}

fn scenario_command(args: &[String]) -> ExitCode {
    use rhca_tests::scenario;
    let Some(name) = args.get(1).map(String::as_str) else {
        eprintln!(
            "usage: rhca-lab scenario <all|{}> [--count N] [--profile P] [--seed S] [--json]",
            scenario::SCENARIOS.join("|")
        );
        return ExitCode::from(2);
    };
    let names: Vec<&str> = if name == "all" {
        scenario::SCENARIOS.to_vec()
    } else if scenario::SCENARIOS.contains(&name) {
        vec![name]
    } else {
        eprintln!(
            "rhca-lab: unknown scenario `{name}` (known: all, {})",
            scenario::SCENARIOS.join(", ")
        );
        return ExitCode::from(2);
    };
    let profile = match wdk_sim::Profile::parse(arg(args, "--profile").unwrap_or("verifier+iommu"))
    {
        Ok(p) => p,
        Err(e) => {
            eprintln!("rhca-lab: {e}");
            return ExitCode::from(2);
        }
    };
    let count: Option<u64> = arg(args, "--count").and_then(|c| c.parse().ok());
    let seed: u64 = arg(args, "--seed")
        .and_then(|c| c.parse().ok())
        .unwrap_or(1);
    let json = args.iter().any(|a| a == "--json");
    let mut outcomes = Vec::new();
    for n in names {
        // 100 cycles per scenario; the fuzzer sends 10^6 IOCTLs.
        let cycles = count.unwrap_or(match n {
            "fuzz" => 1_000_000,
            "ops" => 100_000,
            _ => 100,
        });
        if !json {
            eprintln!(
                "scenario {n}: {cycles} {} under {profile}",
                if n == "fuzz" { "IOCTLs" } else { "cycles" }
            );
        }
        let o = run_isolated(n, cycles, &profile.to_string(), seed);
        if !json {
            println!(
                "{:<25} {} cycles {:>7}  faults {:>4}  MADs {:>6} sent {:>4} failed {} lost  segments {:>7} verified, {} bytes corrupted  IOCTLs fuzzed {:>8}  bug checks {}  leaks {}",
                o.name,
                if o.ok() { "PASS" } else { "FAIL" },
                o.cycles,
                o.faults_injected,
                o.mads_sent,
                o.mads_failed,
                o.mads_lost,
                o.segments_verified,
                o.stream_bytes_corrupted,
                o.ioctls_fuzzed,
                o.bugchecks.len(),
                o.leaks.len()
            );
            for e in o.errors.iter().chain(&o.bugchecks).chain(&o.leaks) {
                println!("    {e}");
            }
        }
        outcomes.push(o);
    }
    let ok = outcomes.iter().all(scenario::Outcome::ok);
    if json {
        println!("{}", scenario::json(&outcomes));
    } else {
        println!("\nverdict: {}", if ok { "PASS" } else { "FAIL" });
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// `bench --scaling`: the scaling figures, a table and the growth summary (and JSON with
/// `--json`). Fails when a run fails, not on a growth (the summary names it).
fn scaling_command(size: bench::Size, args: &[String]) -> ExitCode {
    let figs = match bench::scaling::run(size, true) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("rhca-lab bench --scaling: {e}");
            return ExitCode::FAILURE;
        }
    };
    print!("{}", bench::table(&figs));
    print!("{}", bench::scaling::summary(&figs));
    if let Some(path) = arg(args, "--json")
        && let Err(e) = std::fs::write(path, bench::json(&figs))
    {
        eprintln!("rhca-lab bench --scaling: {path}: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn bench_command(args: &[String]) -> ExitCode {
    let size = if args.iter().any(|a| a == "--quick") {
        bench::Size::QUICK
    } else {
        bench::Size::DEFAULT
    };
    if args.iter().any(|a| a == "--scaling") {
        return scaling_command(size, args);
    }
    let figs = match bench::run(size, true) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("rhca-lab bench: {e}");
            return ExitCode::from(1);
        }
    };
    print!("{}", bench::table(&figs));
    let targets = bench::targets(&figs);
    print!("{}", bench::targets_text(&targets));
    if let Some(path) = arg(args, "--json") {
        if let Err(e) = std::fs::write(path, bench::json(&figs)) {
            eprintln!("rhca-lab bench: {path}: {e}");
            return ExitCode::from(1);
        }
        println!("JSON: {path}");
    }
    let dir = std::path::PathBuf::from(arg(args, "--plots").unwrap_or("target/bench"));
    let written = std::fs::create_dir_all(&dir).and_then(|()| {
        std::fs::write(dir.join("strategies.svg"), bench::svg_strategies(&figs))?;
        std::fs::write(dir.join("sweep.svg"), bench::svg_sweep(&figs))
    });
    match written {
        Ok(()) => println!(
            "plots: {}/strategies.svg, {}/sweep.svg",
            dir.display(),
            dir.display()
        ),
        Err(e) => eprintln!("rhca-lab bench: plots in {}: {e}", dir.display()),
    }
    if cfg!(debug_assertions) {
        println!("note: a debug build; figures are meaningful only with --release");
    }
    if targets.iter().all(bench::Target::met) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Whether the arguments ask for the usage text: `help` as the command, or `--help` / `-h`
/// anywhere (so that `rhca-lab bench --help` prints it instead of starting a minute of
/// measurements).
fn wants_help(args: &[String]) -> bool {
    args.first().is_some_and(|a| a == "help") || args.iter().any(|a| a == "--help" || a == "-h")
}

/// Runs the command named by the arguments.
pub fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if wants_help(&args) {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    match args.first().map(String::as_str) {
        Some("regs") => {
            print_regs();
            ExitCode::SUCCESS
        }
        Some("run") => {
            let json = args.iter().any(|a| a == "--json");
            let profile = args
                .iter()
                .position(|a| a == "--profile")
                .and_then(|i| args.get(i + 1))
                .map_or("verifier+iommu", String::as_str);
            let trace = args.iter().any(|a| a == "--trace");
            let report = run::run(profile, !json, trace);
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
        Some("bench") => bench_command(&args),
        // Internal: the work `bench` measures under callgrind, in a child process.
        Some("profile-ops") => {
            let n = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(100);
            match bench::profile_ops(args.get(1).map_or("", String::as_str), n) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("rhca-lab profile-ops: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Some("scenario") => scenario_command(&args),
        Some("scenario-child") => scenario_child(&args),
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{run_in, wants_help};

    #[test]
    fn help_anywhere_asks_for_the_usage_not_the_command() {
        let args = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert!(wants_help(&args(&["help"])));
        assert!(wants_help(&args(&["bench", "--help"])));
        assert!(wants_help(&args(&["run", "-h"])));
        assert!(!wants_help(&args(&["bench", "--quick"])));
        assert!(
            !wants_help(&args(&["scenario", "help"])),
            "a scenario's name"
        );
        assert!(!wants_help(&args(&[])));
    }

    #[test]
    fn a_scenario_process_that_dies_is_reported_not_fatal() {
        // A child that dies without writing its outcome (here a shell that cannot open the
        // "script" named by the first argument, and says so on stderr).
        let o = run_in(std::path::Path::new("/bin/sh"), "sleep", 1, "verifier", 1);
        assert!(!o.ok());
        assert_eq!(o.name, "sleep");
        let e = &o.errors[0];
        assert!(e.contains("without its outcome"), "{e}");
        assert!(
            e.contains("scenario-child"),
            "the child's last words are kept: {e}"
        );
    }
}
