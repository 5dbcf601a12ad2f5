//! The driver's ETW provider and debug prints as a trace session on the test machine sees them:
//! a start that fails explains itself (the step, the reason and the status behind the Code 10),
//! a queue reset says why it happened, every event decodes as `TraceLogging`, and the provider
//! is unregistered when the driver unloads.

#![expect(
    clippy::many_single_char_names,
    reason = "tests name the lab, process, handle and machine l, p, h, m"
)]

mod common;

use std::sync::Arc;

use common::{lab_model, stats};
use rhca_model::{Fault, ModelConfig};
use wdk_sim::bus::{PciFunction, PciIdentity};
use wdk_sim::trace::{TraceEvent, TraceValue};
use wdk_sim::wdf::host::{Host, HostError, InterruptResources, Mode};
use wdk_sim::{Config, Machine, Profile, STATUS_DEVICE_CONFIGURATION_ERROR};

const VI: Profile = Profile {
    verifier: true,
    iommu: true,
    ..Profile::COHERENT
};

/// A PCI function with the RHCA's identity and BAR 0 of `bar0` bytes (0: none), whose
/// registers read as zero.
struct Bare {
    bar0: u64,
}

impl PciFunction for Bare {
    fn identity(&self) -> PciIdentity {
        PciIdentity {
            vendor_id: 0x1234,
            device_id: 0x5248,
            class_code: 0x0c_0600,
            revision: 1,
        }
    }

    fn bar_size(&self, bar: u8) -> u64 {
        if bar == 0 { self.bar0 } else { 0 }
    }

    fn mmio_read(&self, _bar: u8, _offset: u64) -> u32 {
        0
    }

    fn mmio_write(&self, _bar: u8, _offset: u64, _value: u32) {}

    fn dma_address_width(&self) -> u32 {
        64
    }
}

fn named<'a>(events: &'a [TraceEvent], name: &str) -> Vec<&'a TraceEvent> {
    events.iter().filter(|e| e.name == name).collect()
}

fn str_field<'a>(e: &'a TraceEvent, field: &str) -> &'a str {
    match e.field(field) {
        Some(TraceValue::Str(s)) => s,
        other => panic!("{}.{field}: {other:?}", e.name),
    }
}

/// Starts a device made of `function` with `interrupts` and returns what the start said, after
/// removing the device and unloading the driver (which must leave the machine clean).
fn failed_start(function: Bare, interrupts: InterruptResources) -> (HostError, Machine) {
    let m = Machine::new(Config::with_profile(VI));
    let (att, _bus) = m.attach(Arc::new(function));
    let host = Host::load_with(&m, rhca::driver_entry, Mode::Threaded).expect("DriverEntry");
    let node = host.add_device(&att, interrupts).expect("AddDevice");
    let err = host
        .start(&node)
        .expect_err("a device without its BAR cannot start");
    host.remove(&node).expect("remove after a failed start");
    host.unload().expect("unload");
    assert!(m.bugcheck().is_none(), "{:?}", m.bugcheck());
    assert_eq!(m.leaks().unwrap(), Vec::<String>::new(), "leaks");
    assert_eq!(m.trace_errors(), Vec::<String>::new(), "undecodable events");
    (err, m)
}

#[test]
fn a_start_without_resources_is_a_clear_code_10_in_the_trace() {
    // What `devgen /add /bus ROOT /hardwareid PCI\VEN_1234&DEV_5248` gives the driver: a device
    // with no memory and no interrupt resources.
    let (err, m) = failed_start(Bare { bar0: 0 }, InterruptResources::None);
    assert!(
        matches!(err, HostError::Status(s) if s == STATUS_DEVICE_CONFIGURATION_ERROR),
        "{err}"
    );
    let events = m.trace_events();
    let failed = named(&events, "PrepareHardwareFailed");
    assert_eq!(failed.len(), 1, "{events:#?}");
    let f = failed[0];
    assert_eq!(f.provider, "RHCA.Driver");
    assert_eq!(f.provider_guid, "{bb157faf-f98e-586b-544d-6e0627b3224d}");
    assert_eq!(f.level, 2, "an error");
    assert_eq!(str_field(f, "Stage"), "resources");
    assert!(
        str_field(f, "Reason").contains("no hardware resources"),
        "{f}"
    );
    assert_eq!(
        f.field("Status"),
        Some(&TraceValue::NtStatus(
            STATUS_DEVICE_CONFIGURATION_ERROR.cast_unsigned()
        ))
    );
    // Nothing after the failure claims the device started.
    assert!(named(&events, "HardwarePrepared").is_empty());
    assert!(named(&events, "D0Entry").is_empty());
    // The same error reaches the kernel debugger, with the IHV driver component.
    let prints = m.debug_prints();
    assert!(
        prints.iter().any(|p| p.component == 77
            && p.level == 0
            && p.text
                .starts_with("rhca: PrepareHardwareFailed Stage=resources")
            && p.text.contains("Status=0xc0000182")),
        "{prints:#?}"
    );
    // The provider was registered first and unregistered last.
    assert_eq!(
        events.first().map(|e| e.name.as_str()),
        Some("DriverLoaded")
    );
    assert_eq!(
        events.last().map(|e| e.name.as_str()),
        Some("DriverUnloading")
    );
}

#[test]
fn a_start_with_interrupts_but_no_bar_names_the_missing_bar() {
    let (err, m) = failed_start(Bare { bar0: 0 }, InterruptResources::Msi(2));
    assert!(matches!(err, HostError::Status(_)), "{err}");
    let events = m.trace_events();
    let failed = named(&events, "PrepareHardwareFailed");
    assert_eq!(failed.len(), 1, "{events:#?}");
    assert!(
        str_field(failed[0], "Reason").contains("no memory BAR of at least 16 KiB"),
        "{}",
        failed[0]
    );
}

#[test]
fn a_device_that_does_not_identify_fails_at_identify() {
    // BAR 0 is there, but every register reads zero: not an RHCA.
    let (err, m) = failed_start(Bare { bar0: 0x4000 }, InterruptResources::Msi(2));
    assert!(matches!(err, HostError::Status(_)), "{err}");
    let events = m.trace_events();
    let failed = named(&events, "PrepareHardwareFailed");
    assert_eq!(failed.len(), 1, "{events:#?}");
    assert_eq!(str_field(failed[0], "Stage"), "identify");
}

#[test]
fn a_queue_error_and_its_reset_are_traced() {
    // 256-byte MADs do not fit inline: every send is mapped, and the fault hits its gather.
    let mut model = ModelConfig::default();
    model.caps.max_inline = 64;
    let l = lab_model(Config::with_profile(VI), model);
    let p = l.host().process();
    let h = p.open(&l.node).unwrap();
    l.dev.inject(Fault::DmaErrorNextSend);
    // Sends until the fault has fired and the device has been reset. The reset runs in a work
    // item, which a loaded host may start late: a count of sends was once used up before it
    // ran (every send failing fast meanwhile), so the loop is bounded by time.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut tid = 0u64;
    while std::time::Instant::now() < deadline {
        tid += 1;
        if common::node_info(&p, &h, tid).is_err() {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        if stats(&p, &h).queue_resets > 0 && common::node_info(&p, &h, (1 << 32) + tid).is_ok() {
            break;
        }
    }
    let resets = stats(&p, &h).queue_resets;
    assert!(resets >= 1, "the fault reset the device");
    p.close(h).unwrap();
    let m = l.m.clone();
    l.finish();
    let events = m.trace_events();
    let errors = named(&events, "QueueError");
    assert!(!errors.is_empty(), "{events:#?}");
    assert!(
        matches!(errors[0].field("FailedQueues"), Some(TraceValue::Hex32(q)) if *q != 0)
            || matches!(errors[0].field("CqStatus"), Some(TraceValue::Hex32(s)) if *s != 0),
        "the registers that said so: {}",
        errors[0]
    );
    let reset = named(&events, "QueueReset");
    assert_eq!(reset.len() as u64, resets, "{events:#?}");
    assert_eq!(str_field(reset[0], "Cause"), "queue-error");
    assert_eq!(reset[0].field("Enabled"), Some(&TraceValue::Bool(true)));
    assert_eq!(reset[0].level, 3, "a warning: the device recovered");
    // The error came first, from the DPC.
    assert!(errors[0].seq < reset[0].seq);
    assert_eq!(errors[0].irql, 2, "written at DISPATCH_LEVEL");
    assert_eq!(m.trace_errors(), Vec::<String>::new());
    let prints = m.debug_prints();
    assert!(
        prints
            .iter()
            .any(|p| p.text.starts_with("rhca: QueueError")),
        "{prints:#?}"
    );
    assert!(
        prints
            .iter()
            .any(|p| p.text.starts_with("rhca: QueueReset Cause=queue-error")),
        "{prints:#?}"
    );
}

#[test]
fn the_catalogue_and_its_kmdf_version_match_their_sources() {
    let root = rhca_tests::workspace_root();
    let cargo = std::fs::read_to_string(root.join("driver/Cargo.toml")).unwrap();
    let (major, minor) = rhca::trace::KMDF_VERSION;
    assert_eq!(
        rhca_tests::inf::kmdf_version(&cargo).unwrap(),
        format!("{major}.{minor}"),
        "DriverLoaded reports the KMDF version the driver is built for"
    );
    let doc = std::fs::read_to_string(root.join("docs/test-machine.md")).unwrap();
    let table = &doc[doc
        .find("### The events")
        .expect("docs/test-machine.md §10")..];
    for e in rhca::trace::ALL {
        assert!(
            table.contains(&format!("`{}`", e.name)),
            "{} is documented",
            e.name
        );
        for (field, _) in e.fields {
            assert!(
                table.contains(&format!("`{field}`")),
                "{}.{field} is documented",
                e.name
            );
        }
    }
}
