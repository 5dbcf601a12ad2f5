//! `wdk-build` on the simulated machine: the build-script entry points of wdk-build 0.6.0 that
//! a windows-drivers-rs driver calls (`configure_wdk_binary_build`,
//! `configure_wdk_library_build`), doing on Linux what the real ones do that matters there.
//!
//! The real crate refuses a non-Windows host. It reads the `[package.metadata.wdk.driver-model]`
//! table, emits `cargo::rustc-check-cfg` for `driver_model__driver_type` and the one
//! `cargo::rustc-cfg=driver_model__driver_type="…"`, and, for a driver binary, the WDK's link
//! arguments. This one emits the same two cfg lines, from the same table of the package being
//! built (or of its workspace root, as the real one accepts either), and no link arguments:
//! on Linux the driver links into a host program, against wdk-sim.
//!
//! # Safety story
//! No `unsafe`.

use std::env;
use std::fmt;
use std::path::{Path, PathBuf};

/// Why configuration failed (wdk-build's `ConfigError`, reduced to its message).
#[derive(Debug)]
pub struct ConfigError(String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// The `driver-type` of a `[package.metadata.wdk.driver-model]` or
/// `[workspace.metadata.wdk.driver-model]` table in `manifest`, read line by line: the key
/// `driver-type = "…"` inside that table.
fn driver_type_in(manifest: &Path) -> Result<Option<String>, ConfigError> {
    let text = std::fs::read_to_string(manifest)
        .map_err(|e| ConfigError(format!("{}: {e}", manifest.display())))?;
    let mut inside = false;
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.starts_with('[') {
            let table = line.trim_matches(|c| c == '[' || c == ']').trim();
            inside = table == "package.metadata.wdk.driver-model"
                || table == "workspace.metadata.wdk.driver-model";
            continue;
        }
        if !inside {
            continue;
        }
        if let Some((key, value)) = line.split_once('=')
            && key.trim() == "driver-type"
        {
            let value = value.trim().trim_matches('"').to_owned();
            return match value.as_str() {
                "WDM" | "KMDF" | "UMDF" => Ok(Some(value)),
                _ => Err(ConfigError(format!(
                    "{}: driver-type {value:?} is not WDM, KMDF or UMDF",
                    manifest.display()
                ))),
            };
        }
    }
    Ok(None)
}

/// The driver model of the package being built, else of the nearest workspace manifest above
/// it that has one.
fn driver_type() -> Result<Option<String>, ConfigError> {
    let dir =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").map_err(|_| {
            ConfigError("CARGO_MANIFEST_DIR is not set: not a build script".into())
        })?);
    for d in dir.ancestors() {
        let manifest = d.join("Cargo.toml");
        if manifest.exists() {
            println!("cargo::rerun-if-changed={}", manifest.display());
            if let Some(t) = driver_type_in(&manifest)? {
                return Ok(Some(t));
            }
        }
    }
    Ok(None)
}

/// As wdk-build's `configure_wdk_library_build`: the check-cfg, then the cfg of the driver
/// model when there is one.
///
/// # Errors
/// When a manifest cannot be read, or names an unknown driver type.
pub fn configure_wdk_library_build() -> Result<(), ConfigError> {
    println!(
        r#"cargo::rustc-check-cfg=cfg(driver_model__driver_type, values("WDM","KMDF","UMDF"))"#
    );
    if let Some(t) = driver_type()? {
        println!(r#"cargo::rustc-cfg=driver_model__driver_type="{t}""#);
    }
    Ok(())
}

/// As wdk-build's `configure_wdk_binary_build`, less the WDK link arguments. A driver binary
/// needs a driver model, as with the real one.
///
/// # Errors
/// When the package has no `metadata.wdk.driver-model` table, or as
/// [`configure_wdk_library_build`].
pub fn configure_wdk_binary_build() -> Result<(), ConfigError> {
    if driver_type()?.is_none() {
        return Err(ConfigError(
            "no [package.metadata.wdk.driver-model] table: wdk-build needs the driver model".into(),
        ));
    }
    configure_wdk_library_build()
}
