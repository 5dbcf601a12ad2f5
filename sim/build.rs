//! Compiles wdk-sim's one C file: `DbgPrint` and `DbgPrintEx`, which wdk-sys declares as
//! C-variadic functions that stable Rust cannot define (`csrc/dbgprint.c` says more).
//!
//! Only for the hosts wdk-sim runs on. When the workspace is type-checked for
//! `x86_64-pc-windows-msvc` (`.ci/windows-check`) nothing is linked and no MSVC compiler is
//! there, so the file is not compiled.

fn main() {
    println!("cargo::rerun-if-changed=csrc/dbgprint.c");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("windows") {
        return;
    }
    cc::Build::new()
        .file("csrc/dbgprint.c")
        .warnings(true)
        .extra_warnings(true)
        .warnings_into_errors(true)
        .compile("wdk_sim_dbgprint");
}
