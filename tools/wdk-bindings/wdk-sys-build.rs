//! RHCA's replacement for the build script of wdk-sys 0.5.2, used only by .ci/windows-check.
//!
//! The real script runs bindgen against an installed WDK; here the bindings were generated
//! beforehand by `rhca-wdk-bindings generate` (bindgen 0.73.2 with wdk-build's settings over
//! Debian's mingw-w64 DDK headers and the KMDF 1.33 fact table) into `RHCA_WDK_BINDINGS`. This
//! script copies them into `OUT_DIR` and writes the three small files the real script writes
//! from its templates, with the same contents for a KMDF 1.33 configuration.

use std::env;
use std::fs;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    wdk_build::configure_wdk_library_build()?;
    println!("cargo::rerun-if-env-changed=RHCA_WDK_BINDINGS");
    let bindings = PathBuf::from(env::var("RHCA_WDK_BINDINGS").map_err(|_| "RHCA_WDK_BINDINGS is not set")?);
    let out = PathBuf::from(env::var("OUT_DIR")?);
    for file in ["types.rs", "constants.rs", "ntddk.rs", "wdf.rs"] {
        let src = bindings.join(file);
        println!("cargo::rerun-if-changed={}", src.display());
        fs::copy(&src, out.join(file)).map_err(|e| format!("{}: {e}", src.display()))?;
    }
    // KMDF 1.33 >= 1.25: the table size is the `WdfFunctionCount` symbol.
    fs::write(
        out.join("wdf_function_count.rs"),
        "#[allow(clippy::must_use_candidate)]\n/// Returns the number of functions available in the WDF function table.\n/// Should not be used in public API.\npub fn get_wdf_function_count() -> usize {\n    // SAFETY: `crate::WdfFunctionCount` is generated as a mutable static, but is not supposed to be ever mutated by WDF.\n    (unsafe { crate::WdfFunctionCount }) as usize\n}\n",
    )?;
    // The macro hands the proc macro the path of types.rs, where it reads the PFN_ types.
    let types = out.join("types.rs");
    fs::write(
        out.join("call_unsafe_wdf_function_binding.rs"),
        format!(
            "/// Calls a WDF function by name through `WdfFunctions` (wdk-macros).\n#[macro_export]\nmacro_rules! call_unsafe_wdf_function_binding {{\n    ( $($tt:tt)* ) => {{\n        $crate::__proc_macros::call_unsafe_wdf_function_binding! (\n            r\"{}\",\n            $($tt)*\n        )\n    }}\n}}\n",
            types.display()
        ),
    )?;
    fs::write(
        out.join("test_stubs.rs"),
        "use crate::WDFFUNC;\n\n/// Stub of the symbol `WdfFunctions` links to, for test builds.\n// SAFETY: the generated symbol name is unique per build.\n#[unsafe(no_mangle)]\npub static mut WdfFunctions_01033: *const WDFFUNC = core::ptr::null();\n",
    )?;
    Ok(())
}
