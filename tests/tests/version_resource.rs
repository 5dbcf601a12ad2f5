//! `rhca.sys`'s version resource script (`driver/rhca.rc.in`, filled in by the driver's build
//! script through `driver/build/version.rs`): every field filled from Cargo.toml's version, the
//! flags a debug or pre-1.0 build carries, and a clear error for what a `VERSIONINFO` cannot
//! hold. `.ci/windows-check` compiles the result with llvm-rc and reads the binary back.

#[path = "../../driver/build/version.rs"]
mod version;

const TEMPLATE: &str = include_str!("../../driver/rhca.rc.in");

#[test]
fn the_template_fills_in_from_the_drivers_version() {
    let v = env!("CARGO_PKG_VERSION");
    let rc = version::render(TEMPLATE, v, false).unwrap();
    assert!(!rc.contains('@'), "a field left unfilled");
    assert!(
        rc.is_ascii(),
        "resource compilers differ on non-ASCII input"
    );
    assert!(rc.contains(&format!("\"FileVersion\", \"{v}\"")));
    assert!(rc.contains(&format!("\"ProductVersion\", \"{v}\"")));
    let numbers = v.split('.').collect::<Vec<_>>().join(", ");
    assert!(rc.contains(&format!("FILEVERSION {numbers}, 0")), "{rc}");
    assert!(rc.contains("FILETYPE 0x3L"), "VFT_DRV");
    assert!(rc.contains("\"OriginalFilename\", \"rhca.sys\""));
}

#[test]
fn flags_mark_debug_builds_and_prereleases() {
    let flags = |v: &str, debug: bool| {
        let rc = version::render(TEMPLATE, v, debug).unwrap();
        let line = rc
            .lines()
            .find(|l| l.starts_with("FILEFLAGS "))
            .unwrap()
            .to_owned();
        line.split_whitespace().nth(1).unwrap().to_owned()
    };
    assert_eq!(flags("1.2.3", false), "0x0L");
    assert_eq!(flags("1.2.3", true), "0x1L", "VS_FF_DEBUG");
    assert_eq!(flags("0.9.0", false), "0x2L", "VS_FF_PRERELEASE before 1.0");
    assert_eq!(flags("2.0.0-rc.1", true), "0x3L");
    let rc = version::render(TEMPLATE, "2.0.0-rc.1", false).unwrap();
    assert!(rc.contains("FILEVERSION 2, 0, 0, 0"));
    assert!(rc.contains("\"FileVersion\", \"2.0.0-rc.1\""));
}

#[test]
fn a_version_the_resource_cannot_hold_is_refused() {
    for bad in [
        "1.2",
        "1.2.3.4",
        "1.70000.0",
        "1.x.0",
        "1.2.3-\"q\"",
        "1.2.3-\u{e9}",
    ] {
        let err = version::render(TEMPLATE, bad, false).expect_err(bad);
        assert!(err.contains("version"), "{bad}: {err}");
    }
    let err = version::render("VALUE \"X\", \"@RHCA_VER_NEW@\"", "1.0.0", false).unwrap_err();
    assert!(err.contains("@RHCA_VER_NEW@"), "{err}");
}
