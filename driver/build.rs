//! Build script of the RHCA driver.
//!
//! On a Windows host it is windows-drivers-rs's one call, `configure_wdk_binary_build()`, which
//! emits the KMDF link arguments and checks `+crt-static`
//! (../shared/reference/windows-drivers-rs.md §1.2). On any other host there is no WDK to
//! configure: the driver links against `wdk-sim` as an ordinary Rust library, and this script
//! does nothing.

#[cfg(windows)]
fn main() -> Result<(), wdk_build::ConfigError> {
    wdk_build::configure_wdk_binary_build()
}

#[cfg(not(windows))]
fn main() {}
