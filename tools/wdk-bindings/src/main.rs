//! `rhca-wdk-bindings`: wdk-sys's bindings, generated on Linux the way wdk-build generates them,
//! and the check that wdk-sim mirrors them.
//!
//! ```text
//! rhca-wdk-bindings generate --mingw DIR --kmdf-json FILE --include DIR --stage DIR --out DIR
//! rhca-wdk-bindings sim --bindings DIR --kmdf-json FILE --sim DIR --wdk-sys-src DIR
//! ```
//! See `docs/sim-fidelity.md`, "The Windows build on Linux".

mod generate;
mod items;
mod sim;

use std::path::PathBuf;
use std::process::ExitCode;

fn arg(args: &[String], name: &str) -> Result<PathBuf, String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from)
        .ok_or_else(|| format!("missing {name} PATH"))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("generate") => (|| {
            let inputs = generate::Inputs {
                mingw: arg(&args, "--mingw")?,
                kmdf_json: arg(&args, "--kmdf-json")?,
                ours: arg(&args, "--include")?,
                stage: arg(&args, "--stage")?,
            };
            generate::generate(&inputs, &arg(&args, "--out")?)
        })(),
        Some("sim") => (|| {
            sim::generate(&sim::Inputs {
                bindings: arg(&args, "--bindings")?,
                kmdf_json: arg(&args, "--kmdf-json")?,
                sim: arg(&args, "--sim")?,
                wdk_sys_src: arg(&args, "--wdk-sys-src")?,
            })
        })(),
        _ => Err("usage: rhca-wdk-bindings generate --mingw DIR --kmdf-json FILE --include DIR --stage DIR --out DIR | sim --bindings DIR --kmdf-json FILE --sim DIR --wdk-sys-src DIR".to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rhca-wdk-bindings: {e}");
            ExitCode::FAILURE
        }
    }
}
