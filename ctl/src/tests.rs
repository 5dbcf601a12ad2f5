//! `rhcactl`'s commands against the real driver on the simulated machine (`verifier+iommu`).
//!
//! Unit tests of the binary rather than integration tests: an integration test would make cargo
//! build the binary a second time with the driver's `panic = "abort"` profile, and the driver's
//! cdylib+rlib outputs have no hash in their names, so the two builds would overwrite each other.

#![expect(
    clippy::many_single_char_names,
    reason = "process, handle, transport, code and output are p, h, t, c, o"
)]

use rhcactl::boot::SimMachine;
use rhcactl::sim::Sim;
use rhcactl::{IoError, Transport};

fn run(t: &Sim<'_>, args: &[&str]) -> (u8, String) {
    let mut out = String::new();
    let code = rhcactl::run(t, args, &mut out);
    (code, out)
}

#[test]
fn every_command_works_against_the_driver() {
    let machine = SimMachine::boot("verifier+iommu").expect("boot");
    let p = machine.process();
    let h = machine.open(&p).expect("open");
    let t = Sim {
        p: &p,
        h,
        m: &machine.m,
    };
    let (c, o) = run(&t, &["query"]);
    assert_eq!(c, 0, "{o}");
    assert!(
        o.contains("RHCA 1234:5248") && o.contains("DEVICE_DESCRIPTION v3"),
        "{o}"
    );
    let (c, o) = run(&t, &["mad", "nodeinfo"]);
    assert_eq!(c, 0, "{o}");
    assert!(
        o.contains("channel adapter") && o.contains("0x0002c90300000001"),
        "{o}"
    );
    let (c, o) = run(&t, &["mad", "perf", "3"]);
    assert_eq!(c, 0, "{o}");
    assert!(o.contains("MAD status 0x0000"), "{o}");
    let file = std::env::temp_dir().join(format!("rhcactl-capture-{}.bin", std::process::id()));
    let name = file.to_string_lossy().into_owned();
    let (c, o) = run(&t, &["capture", &name, "50"]);
    assert_eq!(c, 0, "{o}");
    assert!(
        o.contains("captured 50 segments") && o.contains("50 verified"),
        "{o}"
    );
    let data = std::fs::read(&file).unwrap();
    let _ = std::fs::remove_file(&file);
    assert_eq!(data.len(), 50 * 64 * 1024);
    // The file holds the segments in sequence order, each with its pattern.
    for (seq, seg) in data.chunks_exact(64 * 1024).enumerate() {
        assert_eq!(
            rhca_hw::stream::verify_pattern(seg, seq as u64, 0),
            Ok(None),
            "segment {seq}"
        );
    }
    let (c, o) = run(&t, &["stats"]);
    assert_eq!(c, 0, "{o}");
    assert!(
        o.contains("MADs: 2 sent") && o.contains("CreateCommonBufferFromMdl"),
        "{o}"
    );
    let (c, o) = run(&t, &["loop", "1"]);
    assert_eq!(c, 0, "{o}");
    assert!(o.contains("0 streams interrupted"), "{o}");
    p.close(h).unwrap();
    assert_eq!(
        machine.shutdown().expect("clean shutdown"),
        Vec::<String>::new()
    );
}

#[test]
fn bad_usage_and_refused_requests_are_reported_clearly() {
    let machine = SimMachine::boot("coherent").expect("boot");
    let p = machine.process();
    let h = machine.open(&p).expect("open");
    let t = Sim {
        p: &p,
        h,
        m: &machine.m,
    };
    for args in [&["mad", "perf", "x"][..], &["frobnicate"], &[]] {
        let (c, o) = run(&t, args);
        assert_eq!(c, 2, "{args:?}");
        assert!(o.contains("usage: rhcactl"), "{o}");
    }
    // A STOP with no stream: the driver's status, explained.
    let e = t
        .ioctl(rhca_hw::ioctl::IOCTL_RHCA_STREAM_STOP, &[0u8; 16], 0)
        .unwrap_err();
    assert!(matches!(e, IoError::Status(_)), "{e:?}");
    // A short input (no ABI header at all) is refused before anything is touched.
    let e = t
        .ioctl(rhca_hw::ioctl::IOCTL_RHCA_SEND_MAD, &[1, 2, 3], 24)
        .unwrap_err();
    assert_eq!(e, IoError::Status(wdk_sim::STATUS_INVALID_PARAMETER));
    assert!(e.to_string().contains("invalid parameter"), "{e}");
    p.close(h).unwrap();
    assert_eq!(
        machine.shutdown().expect("clean shutdown"),
        Vec::<String>::new()
    );
}

/// The driver's interrupt path — ISR, DPC, watchdog timer — allocates nothing, neither Rust
/// heap nor pool: the machine counts every allocation the driver makes there
/// (`Machine::dpc_allocations`), and every one at `DISPATCH_LEVEL` anywhere
/// (`Machine::dispatch_allocations`). MADs in both directions and a capture stream of many segments
/// go through it, under each profile that changes the DMA path.
#[test]
fn the_interrupt_path_allocates_nothing() {
    for profile in ["coherent", "verifier+iommu", "verifier+bounce"] {
        let machine = SimMachine::boot(profile).expect("boot");
        let p = machine.process();
        let h = machine.open(&p).expect("open");
        let t = Sim {
            p: &p,
            h,
            m: &machine.m,
        };
        for tid in 0..100 {
            rhcactl::ask(&t, &rhcactl::node_info_query(tid)).expect("NodeInfo");
            rhcactl::ask(&t, &rhcactl::port_counters_query(1, 1000 + tid)).expect("PerfMgt");
        }
        let c = rhcactl::capture(&t, 16 * 1024, 32, 512, &mut std::io::sink()).expect("capture");
        assert_eq!(c.verified, 512, "{profile}");
        let n = machine.m.dpc_allocations();
        let d = machine.m.dispatch_allocations();
        p.close(t.h).expect("close");
        drop(p);
        assert_eq!(machine.shutdown().expect("shutdown"), Vec::<String>::new());
        assert_eq!(n, 0, "{profile}: allocations in the DPC, timer or ISR");
        // Allowed on Windows (non-paged pool), but this workload needs none anywhere: every
        // queue the lock protects has its room reserved at start.
        assert_eq!(d, 0, "{profile}: allocations at DISPATCH_LEVEL");
    }
}
