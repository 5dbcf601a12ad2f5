//! The INF check: `driver/rhca.inx` stamped as `stampinf` would and checked against the rules
//! `infverif` enforces for the sections RHCA uses; each of a set of broken variants fails with a
//! message that names the rule.

use rhca_tests::inf::{self, Stamp};
use rhca_tests::workspace_root;

fn template() -> String {
    std::fs::read_to_string(workspace_root().join("driver/rhca.inx")).expect("driver/rhca.inx")
}

fn kmdf() -> String {
    let toml = std::fs::read_to_string(workspace_root().join("driver/Cargo.toml")).unwrap();
    inf::kmdf_version(&toml).unwrap()
}

/// Stamps and checks `text`; the violations found.
fn errors(text: &str) -> Vec<String> {
    let k = kmdf();
    let stamped = inf::stamp(
        text,
        &Stamp {
            arch: "amd64",
            kmdf: &k,
            driver_ver: "11/21/2026,0.1.0.0",
            catalog: "rhca.cat",
        },
    );
    match inf::parse(&stamped) {
        Ok(i) => inf::check(&i, &stamped, &k, "amd64"),
        Err(e) => vec![e],
    }
}

#[test]
fn the_inf_passes_every_rule() {
    assert_eq!(
        kmdf(),
        "1.33",
        "the crates.io wdk crates support KMDF 1.33 only"
    );
    assert_eq!(errors(&template()), Vec::<String>::new());
    // arm64 stamps and checks as well.
    let k = kmdf();
    let s = inf::stamp(
        &template(),
        &Stamp {
            arch: "arm64",
            kmdf: &k,
            driver_ver: "11/21/2026,0.1.0.0",
            catalog: "rhca.cat",
        },
    );
    let i = inf::parse(&s).unwrap();
    assert!(inf::check(&i, &s, &k, "arm64").is_empty());
    assert!(i.sections.contains_key("rhca_models.ntarm64.10.0...20348"));
}

#[test]
fn the_template_is_unstamped() {
    let t = template();
    assert!(t.contains("$ARCH$") && t.contains("$KMDFVERSION$"));
    let e = inf::parse(&t)
        .map(|i| inf::check(&i, &t, &kmdf(), "amd64"))
        .unwrap();
    assert!(e.iter().any(|e| e.contains("unstamped")), "{e:?}");
}

/// Each broken variant, and the words its error must contain.
#[test]
#[expect(
    clippy::too_many_lines,
    reason = "a table of broken variants, one per rule"
)]
fn broken_variants_fail_with_a_clear_message() {
    let t = template();
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "no PnpLockdown",
            t.replace("PnpLockdown = 1", "PnpLockdown = 0"),
            "PnpLockdown",
        ),
        (
            "undefined string",
            t.replace("RHCA.DeviceDesc    = ", "RHCA.Description   = "),
            "undefined string token %RHCA.DeviceDesc%",
        ),
        (
            "undecorated models",
            t.replace(", NT$ARCH$.10.0...20348", ""),
            "must be decorated",
        ),
        (
            "models section missing",
            t.replace(
                "[RHCA_Models.NT$ARCH$.10.0...20348]",
                "[RHCA_Other.NT$ARCH$.10.0...20348]",
            ),
            "models section [RHCA_Models.ntamd64.10.0...20348] is missing",
        ),
        (
            "service binary outside the driver store",
            t.replace(
                "ServiceBinary  = %13%\\rhca.sys",
                "ServiceBinary  = %12%\\rhca.sys",
            ),
            "DIRID 13",
        ),
        (
            "wrong KMDF version",
            t.replace(
                "KmdfLibraryVersion = $KMDFVERSION$",
                "KmdfLibraryVersion = 1.15",
            ),
            "KmdfLibraryVersion must be 1.33",
        ),
        (
            "no .Wdf section",
            t.replace("[RHCA_Device.NT.Wdf]", "[RHCA_Device.NT.Unused]"),
            "KmdfService is missing",
        ),
        (
            "remapping opted out",
            t.replace(
                "RemappingSupported,0x00010001,1",
                "RemappingSupported,0x00010001,0",
            ),
            "DMA remapping",
        ),
        (
            "legacy remapping key missing",
            t.replace("HKR,Parameters,DmaRemappingCompatible,0x00010001,1", ""),
            "DmaRemappingCompatible",
        ),
        (
            "no MSI",
            t.replace("MSISupported,0x00010001,1", "MSISupported,0x00010001,0"),
            "MSI",
        ),
        (
            "everyone may open the device",
            t.replace("(A;;GA;;;BA)\"", "(A;;GA;;;BA)(A;;GA;;;WD)\""),
            "SYSTEM and Administrators only",
        ),
        (
            "unreferenced AddReg section",
            t.replace(
                "AddReg = RHCA_Security_AddReg,",
                "AddReg = RHCA_Missing_AddReg,",
            ),
            "AddReg section [RHCA_Missing_AddReg] is missing",
        ),
        (
            "not a function driver",
            t.replace(
                "AddService = rhca, 0x00000002,",
                "AddService = rhca, 0x00000000,",
            ),
            "SPSVCINST_ASSOCSERVICE",
        ),
        (
            "auto start",
            t.replace("StartType      = 3", "StartType      = 2"),
            "StartType must be 3",
        ),
        (
            "file not on the disk",
            t.replace("rhca.sys = 1,,", "other.sys = 1,,"),
            "rhca.sys is not in [SourceDisksFiles]",
        ),
        (
            "bad class GUID",
            t.replace("{30ef7132-d858-4a0c-ac24-b9028a5cca3f}", "{30ef7132}"),
            "ClassGuid",
        ),
        (
            "a line outside any section",
            format!("stray = 1\n{t}"),
            "outside any section",
        ),
        (
            "an OS floor below KMDF 1.33's",
            t.replace("10.0...20348", "10.0...16299"),
            "below the OS floor of KMDF 1.33 (20348",
        ),
        (
            "a non-ASCII character",
            t.replace("; Ask PnP for MSI-X", "; Ask PnP for MSI\u{2011}X"),
            "non-ASCII character",
        ),
        (
            "unbalanced quotes",
            t.replace("\"RHCA Project\"", "\"RHCA Project"),
            "unbalanced quotes",
        ),
    ];
    for (what, text, want) in cases {
        let e = errors(&text);
        assert!(
            e.iter().any(|m| m.contains(want)),
            "{what}: expected an error containing {want:?}, got {e:?}"
        );
    }
}
