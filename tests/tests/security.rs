//! The device admits only whom the INF's security descriptor admits: the SDDL is read from
//! `driver/rhca.inx` (as the `PnP` manager applies the `HKR,,Security` value) and the simulated
//! I/O manager checks every open against it — including opens of names below the device, which
//! the driver's `FILE_DEVICE_SECURE_OPEN` brings under the same check.

mod common;

use common::lab;
use rhca_tests::inf::{self, Stamp};
use rhca_tests::workspace_root;
use wdk_sim::wdf::host::{HostError, Identity};
use wdk_sim::{FILE_DEVICE_SECURE_OPEN, STATUS_ACCESS_DENIED};

/// The SDDL of the INF's `HKR,,Security` value.
fn inf_sddl() -> String {
    let text = std::fs::read_to_string(workspace_root().join("driver/rhca.inx")).unwrap();
    let stamped = inf::stamp(
        &text,
        &Stamp {
            arch: "amd64",
            kmdf: "1.33",
            driver_ver: "11/21/2026,0.1.0.0",
            catalog: "rhca.cat",
        },
    );
    let parsed = inf::parse(&stamped).unwrap();
    parsed
        .sections
        .values()
        .flatten()
        .find(|l| l.values.len() >= 5 && l.values[0] == "HKR" && l.values[2] == "Security")
        .map(|l| l.values[4].trim_matches('"').to_owned())
        .expect("the INF sets a security descriptor")
}

#[test]
fn only_system_and_administrators_open_the_device() {
    let l = lab("verifier");
    let sddl = inf_sddl();
    assert_eq!(sddl, "D:P(A;;GA;;;SY)(A;;GA;;;BA)");
    l.host().set_security(&l.node, &sddl).unwrap();
    assert_ne!(
        l.host().device_characteristics(&l.node).unwrap() & FILE_DEVICE_SECURE_OPEN,
        0,
        "the driver asks for FILE_DEVICE_SECURE_OPEN (the INF's DeviceCharacteristics too)"
    );
    for who in [Identity::System, Identity::Administrator] {
        let p = l.host().process_as(who);
        let h = p.open(&l.node).unwrap_or_else(|e| panic!("{who:?}: {e:?}"));
        p.close(h).unwrap();
    }
    let user = l.host().process_as(Identity::User);
    assert!(matches!(
        user.open(&l.node),
        Err(HostError::Status(STATUS_ACCESS_DENIED))
    ));
    // A name below the device gets the same check (FILE_DEVICE_SECURE_OPEN).
    assert!(matches!(
        user.open_name(&l.node, "anything"),
        Err(HostError::Status(STATUS_ACCESS_DENIED))
    ));
    l.finish();
}
