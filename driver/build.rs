//! Build script of the RHCA driver.
//!
//! On a Windows host it is windows-drivers-rs's one call, `configure_wdk_binary_build()`, which
//! emits the KMDF link arguments and checks `+crt-static`
//! (../shared/reference/windows-drivers-rs.md §1.2). wdk-build has no step for a version
//! resource, so for a Windows target this script adds one: `rhca.rc.in` filled in from
//! Cargo.toml's version (`build/version.rs`), compiled with the SDK's `rc.exe` (on PATH in an
//! eWDK prompt and in wdk-build's cargo-make flow; `RC` overrides it) or, on another host,
//! `llvm-rc`, and linked into the cdylib. On any other target there is no WDK to configure: the
//! driver links against `wdk-sim` as an ordinary Rust library.

use std::env;
use std::error::Error;
use std::path::PathBuf;
use std::process::Command;

#[path = "build/version.rs"]
mod version;

fn main() -> Result<(), Box<dyn Error>> {
    #[cfg(windows)]
    wdk_build::configure_wdk_binary_build()?;
    println!("cargo:rerun-if-changed=rhca.rc.in");
    println!("cargo:rerun-if-changed=build/version.rs");
    println!("cargo:rerun-if-env-changed=RC");
    if env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("windows") {
        version_resource()?;
    }
    Ok(())
}

/// Writes `rhca.rc` into `OUT_DIR`, compiles it to `rhca.res` and links that into the cdylib.
fn version_resource() -> Result<(), Box<dyn Error>> {
    let out = PathBuf::from(env::var("OUT_DIR")?);
    let template = std::fs::read_to_string("rhca.rc.in")?;
    let debug = env::var("PROFILE").as_deref() == Ok("debug");
    let script = version::render(&template, &env::var("CARGO_PKG_VERSION")?, debug)?;
    let rc = out.join("rhca.rc");
    let res = out.join("rhca.res");
    std::fs::write(&rc, script)?;
    let compiler = env::var("RC")
        .unwrap_or_else(|_| if cfg!(windows) { "rc.exe" } else { "llvm-rc" }.to_owned());
    let mut cmd = Command::new(&compiler);
    // The script needs no preprocessor; llvm-rc would otherwise look for clang.
    if !cfg!(windows) {
        cmd.arg("/no-preprocess");
    }
    // Both files are named relative to OUT_DIR: an absolute Unix path such as `/check/...` would
    // be read by llvm-rc as one of its slash options (`/C`, the code page), not as the input.
    let status = cmd
        .current_dir(&out)
        .arg("/nologo")
        .arg("/fo")
        .arg("rhca.res")
        .arg("rhca.rc")
        .status()
        .map_err(|e| {
            format!(
                "the resource compiler {compiler:?} did not run ({e}): build in an eWDK prompt, \
                 install llvm (llvm-rc) off Windows, or set RC to a resource compiler"
            )
        })?;
    if !status.success() {
        return Err(format!("{compiler} failed ({status}) on {}", rc.display()).into());
    }
    println!("cargo:rustc-link-arg-cdylib={}", res.display());
    Ok(())
}
