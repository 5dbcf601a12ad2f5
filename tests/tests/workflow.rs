//! The Windows job of `.github/workflows/windows.yml`, checked against what wdk-build 0.6.0 reads
//! (`cargo_make.rs` `setup_path`: `WDKBinRoot` and `WDKToolRoot` are full paths down to the SDK
//! version folder, joined only with the host architecture) and the points a review found
//! wrong: a newer LLVM left in place, the SDK package pinned to the WDK's version, builds
//! without `--locked`. `.ci/run` parses the file as YAML (`python3 -c 'import yaml'`).

use std::fs;

fn workflow() -> String {
    fs::read_to_string(rhca_tests::workspace_root().join(".github/workflows/windows.yml"))
        .expect("the workflow")
}

#[test]
fn the_tool_paths_carry_the_sdk_version_folder() {
    let w = workflow();
    let set = |var: &str| {
        w.lines()
            .find(|l| l.trim_start().starts_with(&format!("\"{var}=")))
            .unwrap_or_else(|| panic!("{var} is set"))
            .to_owned()
    };
    assert!(
        set("WDKBinRoot").contains("\\bin\\$sdkVersion\""),
        "{}",
        set("WDKBinRoot")
    );
    assert!(
        set("WDKToolRoot").contains("\\tools\\$sdkVersion\""),
        "{}",
        set("WDKToolRoot")
    );
    // WindowsSdkBinPath is the bin folder itself: wdk-build appends the version.
    assert!(set("WindowsSdkBinPath").ends_with("\\c\\bin\" >> $env:GITHUB_ENV"));
    assert!(set("Version_Number").contains("$sdkVersion"));
}

#[test]
fn llvm_is_forced_and_checked_and_the_sdk_comes_as_a_dependency() {
    let w = workflow();
    let winget = w.lines().find(|l| l.contains("winget install")).unwrap();
    assert!(winget.contains("--force"), "{winget}");
    assert!(
        w.contains("--version"),
        "clang's version is checked after the install"
    );
    assert!(
        !w.contains("nuget install $name") && !w.contains("Microsoft.Windows.SDK.CPP -Version"),
        "the SDK package is not pinned to the WDK's version"
    );
}

#[test]
fn every_cargo_build_is_locked() {
    let w = workflow();
    assert!(w.contains("cargo fetch --locked"));
    for l in w.lines().filter(|l| {
        let l = l.trim_start();
        (l.starts_with("run: cargo ") || l.starts_with("cargo "))
            && (l.contains(" build") || l.contains(" install") || l.contains(" fetch"))
    }) {
        assert!(l.contains("--locked"), "{l}");
    }
}

#[test]
fn the_root_cargo_make_packages_the_driver_only() {
    let m = fs::read_to_string(rhca_tests::workspace_root().join("Makefile.toml")).unwrap();
    let skip = m
        .lines()
        .find(|l| l.starts_with("CARGO_MAKE_WORKSPACE_SKIP_MEMBERS"))
        .unwrap();
    for member in [
        "\"sim\"",
        "\"sim/bindings\"",
        "\"model\"",
        "\"lab\"",
        "\"tests\"",
        "\"ctl\"",
    ] {
        assert!(skip.contains(member), "{member} skipped: {skip}");
    }
    assert!(!skip.contains("\"driver\""));
    // The offline signing switch reaches signtool-sign's arguments.
    assert!(m.contains("@@split(RHCA_SIGNTOOL_TIMESTAMP, ,remove-empty)"));
}
