//! The Windows job of `.github/workflows/windows.yml`, checked against what wdk-build 0.6.0 reads
//! (`cargo_make.rs` `setup_path`: `WDKBinRoot` and `WDKToolRoot` are full paths down to the SDK
//! version folder, joined only with the host architecture) and the points a review found
//! wrong: a newer LLVM left in place, the SDK package pinned to the WDK's version, builds
//! without `--locked`; and its tool paths against windows-drivers-rs's own CI. `.ci/run` lints the
//! file with yamllint (`.yamllint.yaml`) and parses it as YAML.

use std::fs;

fn workflow() -> String {
    fs::read_to_string(rhca_tests::workspace_root().join(".github/workflows/windows.yml"))
        .expect("the workflow")
}

/// The environment windows-drivers-rs's own CI sets after a `NuGet` WDK install: the `$envVars`
/// table of `.github/actions/install-wdk/action.yaml` (microsoft/windows-drivers-rs, read at
/// commit 7d3000c6), with its `$hostWdkPackageDir` and `$targetWdkPackageDir` both
/// `$wdkPackageDir` (an x64 host building for x64, one package). `$sdkVersion` is the
/// three-part version there (`10.0.26100`), so the tool roots end in the SDK version folder
/// `10.0.26100.0`, which wdk-build 0.6.0's `setup_path` joins with the host architecture only.
const INSTALL_WDK_ENV: [(&str, &str); 7] = [
    ("Version_Number", r"$sdkVersion.0"),
    ("WindowsSdkBinPath", r"$($sdkPackageDir.FullName)\c\bin"),
    ("WDKContentRoot", r"$wdkPackageDir\c\"),
    ("WDKBinRoot", r"$wdkPackageDir\c\bin\$sdkVersion.0"),
    ("WDKToolRoot", r"$wdkPackageDir\c\tools\$sdkVersion.0"),
    ("NugetPackagesRoot", r"$packagesRootDir"),
    ("FullVersionNumber", r"$version"),
];

#[test]
fn the_tool_paths_are_those_of_windows_drivers_rs_ci() {
    let w = workflow();
    // `"Name" = "value"` lines of the workflow's `$envVars` table, in order.
    let ours: Vec<(String, String)> = w
        .lines()
        .filter_map(|l| {
            let (k, v) = l.trim().split_once(" = ")?;
            let k = k.strip_prefix('"')?.strip_suffix('"')?;
            let v = v.strip_prefix('"')?.strip_suffix('"')?;
            Some((k.to_owned(), v.to_owned()))
        })
        .collect();
    let theirs: Vec<(String, String)> = INSTALL_WDK_ENV
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    assert_eq!(ours, theirs);
    // Every variable of the table reaches the job's environment.
    assert!(w.contains(
        r#"foreach ($v in $envVars.GetEnumerator()) { "$($v.Key)=$($v.Value)" >> $env:GITHUB_ENV }"#
    ));
    // `$sdkVersion` is the three-part WDK version, as in the action.
    assert!(w.contains("$sdkVersion = $env:WDK_VERSION"));
    let wdk = w
        .lines()
        .find_map(|l| l.trim().strip_prefix("WDK_VERSION: "))
        .expect("WDK_VERSION is set")
        .trim_matches('"');
    let parts: Vec<&str> = wdk.split('.').collect();
    assert!(
        parts.len() == 3
            && parts[..2] == ["10", "0"]
            && parts[2].len() == 5
            && parts[2].bytes().all(|b| b.is_ascii_digit()),
        "WDK_VERSION {wdk} is not 10.0.XXXXX"
    );
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
