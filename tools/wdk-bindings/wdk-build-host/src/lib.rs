//! A host stand-in for the build-script entry points of wdk-build 0.6.0.
//!
//! The real crate reads the `[package.metadata.wdk.driver-model]` table of the workspace,
//! emits `cargo::rustc-check-cfg` for `driver_model__driver_type` and the one
//! `cargo::rustc-cfg=driver_model__driver_type="…"`, and, for a driver binary, the WDK's link
//! arguments. This stand-in does the first two the same way (it reads the same table, through
//! `cargo metadata --no-deps` of the top-level manifest); it has no WDK to link against, which a
//! `cargo check` does not need. It exists so that the unmodified wdk, wdk-alloc and wdk-panic
//! build scripts run on Linux.

use std::env;
use std::fmt;
use std::path::PathBuf;
use std::process::Command;

/// The error of the entry points.
#[derive(Debug)]
pub struct ConfigError(String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// The top-level manifest, found as wdk-build finds it: the nearest ancestor of `OUT_DIR`
/// holding a `Cargo.lock`.
fn top_level_manifest() -> Result<PathBuf, ConfigError> {
    let out = PathBuf::from(env::var("OUT_DIR").map_err(|_| ConfigError("OUT_DIR is not set: not a build script".into()))?);
    out.ancestors()
        .find(|p| p.join("Cargo.lock").exists())
        .map(|p| p.join("Cargo.toml"))
        .ok_or_else(|| ConfigError("no Cargo.lock above OUT_DIR".into()))
}

/// The driver type of the one `metadata.wdk.driver-model` table in the workspace, if any.
fn driver_type() -> Result<Option<String>, ConfigError> {
    let manifest = top_level_manifest()?;
    println!("cargo::rerun-if-changed={}", manifest.display());
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline", "--manifest-path"])
        .arg(&manifest)
        .output()
        .map_err(|e| ConfigError(format!("cargo metadata: {e}")))?;
    if !out.status.success() {
        return Err(ConfigError(format!("cargo metadata: {}", String::from_utf8_lossy(&out.stderr))));
    }
    let meta: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| ConfigError(format!("cargo metadata: {e}")))?;
    let mut types: Vec<String> = Vec::new();
    let workspace_table = &meta["metadata"]["wdk"]["driver-model"]["driver-type"];
    if let Some(t) = workspace_table.as_str() {
        types.push(t.to_string());
    }
    for p in meta["packages"].as_array().into_iter().flatten() {
        println!("cargo::rerun-if-changed={}", p["manifest_path"].as_str().unwrap_or_default());
        if let Some(t) = p["metadata"]["wdk"]["driver-model"]["driver-type"].as_str() {
            types.push(t.to_string());
        }
    }
    types.sort();
    types.dedup();
    match types.len() {
        0 => Ok(None),
        1 => Ok(types.pop()),
        _ => Err(ConfigError(format!("MultipleWdkConfigurationsDetected: {types:?}"))),
    }
}

fn emit_check_cfg() {
    println!(r#"cargo::rustc-check-cfg=cfg(driver_model__driver_type, values("WDM","KMDF","UMDF"))"#);
}

/// As wdk-build's `configure_wdk_library_build`: the check-cfg, then the cfg of the driver
/// model when the workspace has one.
///
/// # Errors
/// When `cargo metadata` fails or the workspace has two driver models.
pub fn configure_wdk_library_build() -> Result<(), ConfigError> {
    emit_check_cfg();
    if let Some(t) = driver_type()? {
        println!(r#"cargo::rustc-cfg=driver_model__driver_type="{t}""#);
    }
    Ok(())
}

/// As wdk-build's `configure_wdk_binary_build`, less the WDK link arguments (nothing links in
/// a `cargo check`). Like the real one it refuses a target without `+crt-static`.
///
/// # Errors
/// When the target lacks `crt-static`, or as [`configure_wdk_library_build`].
pub fn configure_wdk_binary_build() -> Result<(), ConfigError> {
    let features = env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    if !features.split(',').any(|f| f == "crt-static") {
        return Err(ConfigError("StaticCrtNotEnabled: the target must enable crt-static".into()));
    }
    configure_wdk_library_build()
}
