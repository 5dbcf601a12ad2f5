//! The driver's `WDF_*_INIT` helpers (`rhca::sys::wdf::init`) against the KMDF 1.33 headers,
//! field by field.
//!
//! The expected structure is built from `../shared/reference/kmdf-1.33/kmdf-1.33-x64.json`: the
//! helper's assignments (`inline_init`: zeroing, each field and value, conditions), placed at the
//! offsets and sizes of the table's own record layouts. Every byte that belongs to a field of the
//! structure (padding excluded) must equal the helper's. A helper that sets a field the header
//! does not, forgets one, or sets another value fails here.

#![expect(
    clippy::cast_possible_truncation,
    reason = "values from the table are written into fields of their declared widths"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use rhca::sys::wdf::init::*;
use rhca::sys::{
    _WDF_IO_QUEUE_DISPATCH_TYPE, BOOLEAN, NTSTATUS, PWDFDEVICE_INIT, ULONG,
    WDF_IO_QUEUE_DISPATCH_TYPE, WDFDEVICE, WDFDRIVER, WDFFILEOBJECT, WDFINTERRUPT, WDFOBJECT,
    WDFREQUEST, WDFTIMER, WDFWORKITEM,
};
use serde_json::Value;

struct Table {
    structs: BTreeMap<String, Value>,
    enum_aliases: BTreeSet<String>,
    constants: BTreeMap<String, i64>,
    inits: BTreeMap<String, Value>,
}

impl Table {
    fn load() -> Self {
        // The copy in the repository (CI has no ../shared); .ci/windows-check checks that it
        // equals ../shared/reference/kmdf-1.33/ wherever that is present.
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../tools/wdk-bindings/kmdf-1.33/kmdf-1.33-x64.json");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (the vendored KMDF 1.33 fact table)",
                path.display()
            )
        });
        let j: Value = serde_json::from_str(&text).expect("the fact table is JSON");
        let mut structs = BTreeMap::new();
        for s in j["structs"].as_array().expect("structs") {
            structs.insert(s["name"].as_str().unwrap().to_string(), s.clone());
            for a in s["typedef_aliases"].as_array().into_iter().flatten() {
                structs.insert(a.as_str().unwrap().to_string(), s.clone());
            }
        }
        let mut enum_aliases = BTreeSet::new();
        let mut constants = BTreeMap::new();
        for e in j["enums"].as_array().expect("enums") {
            for a in e["rust_type_alias"].as_array().into_iter().flatten() {
                enum_aliases.insert(a.as_str().unwrap().to_string());
            }
            for c in e["constants"].as_array().expect("constants") {
                constants.insert(
                    c["name"].as_str().unwrap().to_string(),
                    c["value"].as_i64().unwrap(),
                );
            }
        }
        let inits = j["inline_init"]
            .as_array()
            .expect("inline_init")
            .iter()
            .map(|f| (f["function"].as_str().unwrap().to_string(), f.clone()))
            .collect();
        Self {
            structs,
            enum_aliases,
            constants,
            inits,
        }
    }

    fn record(&self, name: &str) -> &Value {
        self.structs
            .get(name)
            .unwrap_or_else(|| panic!("no record {name} in the table"))
    }

    /// The size of a field of Rust type `ty` (x64).
    fn size_of(&self, ty: &str) -> usize {
        match ty {
            "BOOLEAN" | "UCHAR" | "u8" | "CHAR" | "i8" => 1,
            "USHORT" | "u16" | "SHORT" | "i16" => 2,
            "ULONG" | "LONG" | "u32" | "i32" => 4,
            "usize" | "isize" | "ULONG64" | "LONG64" | "ULONGLONG" | "LONGLONG" | "u64" | "i64" => {
                8
            }
            t if self.enum_aliases.contains(t) => 4,
            t if self.structs.contains_key(t) => self.record(t)["size"].as_u64().unwrap() as usize,
            t if t.starts_with("PFN_")
                || t.starts_with('P')
                || t.starts_with('*')
                || t.starts_with("WDF") =>
            {
                8
            }
            t => panic!("no size known for field type {t}"),
        }
    }

    /// Offset and size of a dotted field path inside `record`.
    fn locate(&self, record: &str, path: &str) -> (usize, usize) {
        let mut rec = self.record(record);
        let mut offset = 0;
        let parts: Vec<&str> = path.split('.').collect();
        for (i, part) in parts.iter().enumerate() {
            let f = rec["fields"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["name"] == *part)
                .unwrap_or_else(|| panic!("{record} has no field {path}"));
            offset += f["offset"].as_u64().unwrap() as usize;
            let ty = f["rust_type"].as_str().unwrap();
            if i + 1 == parts.len() {
                return (offset, self.size_of(ty));
            }
            rec = self.record(ty);
        }
        unreachable!("a non-empty path")
    }

    /// Every byte range of `record` that belongs to a field, unions' members included.
    fn field_bytes(&self, record: &str, base: usize, out: &mut Vec<bool>) {
        for f in self.record(record)["fields"].as_array().unwrap() {
            if f["bindgen_synthetic"].as_bool() == Some(true) {
                continue;
            }
            let off = base + f["offset"].as_u64().unwrap() as usize;
            let ty = f["rust_type"].as_str().unwrap();
            if self.structs.contains_key(ty) && !self.enum_aliases.contains(ty) {
                self.field_bytes(ty, off, out);
            } else {
                for b in &mut out[off..off + self.size_of(ty)] {
                    *b = true;
                }
            }
        }
    }
}

/// The value of an assignment, as the little-endian bytes the field holds.
fn value(table: &Table, text: &str, args: &BTreeMap<&str, Vec<u8>>, param: bool) -> Vec<u8> {
    if param {
        return args
            .get(text)
            .unwrap_or_else(|| panic!("no argument {text}"))
            .clone();
    }
    let text = text.trim();
    let size_of_record = |rest: &str| {
        let name = rest
            .trim()
            .trim_start_matches('(')
            .trim_end_matches(')')
            .trim();
        table.record(name)["size"].as_i64().unwrap()
    };
    let n: i64 = match (text.split("WDF_STRUCTURE_SIZE").nth(1), text) {
        (Some(rest), _) => size_of_record(rest),
        (None, "TRUE") => 1,
        (None, "FALSE") => 0,
        (None, "(ULONG)-1") => i64::from(u32::MAX),
        (None, t) => t
            .parse::<i64>()
            .ok()
            .or_else(|| table.constants.get(t).copied())
            .unwrap_or_else(|| panic!("cannot evaluate the table's value {t:?}")),
    };
    n.to_le_bytes().to_vec()
}

/// Checks `actual` (a helper's result) against the table's entry for `function`.
fn check<T>(table: &Table, function: &str, record: &str, actual: &T, args: &[(&str, Vec<u8>)]) {
    let args: BTreeMap<&str, Vec<u8>> = args.iter().cloned().collect();
    let size = table.record(record)["size"].as_u64().unwrap() as usize;
    assert_eq!(
        size,
        size_of::<T>(),
        "{record}: the table's size and the Rust type's differ"
    );
    let entry = table
        .inits
        .get(function)
        .unwrap_or_else(|| panic!("no {function} in the table"));
    let mut expected = vec![0u8; size];
    let mut set = vec![false; size];
    let mut zeroed = false;
    for a in entry["sets"].as_array().unwrap() {
        let field = a["field"].as_str().unwrap();
        if field == "*" {
            zeroed = true;
            continue;
        }
        if let Some(cond) = a["when"].as_str() {
            // The table's conditions compare a field already set with a constant.
            let (lhs, rhs) = cond.split_once("==").expect("a `==` condition");
            let lhs = lhs.trim().rsplit("->").next().unwrap();
            let (off, len) = table.locate(record, lhs);
            let want = value(table, rhs, &args, false);
            if expected[off..off + len] != want[..len] {
                continue;
            }
        }
        let (off, len) = table.locate(record, field);
        let v = value(
            table,
            a["value"].as_str().unwrap(),
            &args,
            a["value_is_parameter"] == true,
        );
        expected[off..off + len].copy_from_slice(&v[..len]);
        set[off..off + len].fill(true);
    }
    let mut fields = vec![false; size];
    table.field_bytes(record, 0, &mut fields);
    let base = std::ptr::from_ref(actual).cast::<u8>();
    for i in (0..size).filter(|&i| fields[i] && (zeroed || set[i])) {
        let at = base.wrapping_add(i);
        // SAFETY: `at` is inside a field of `actual` (never padding), and every field of the
        // helpers' results is initialized (bindgen's `Default` zeroes unions whole).
        let got = unsafe { at.read() };
        assert_eq!(
            got, expected[i],
            "{function}: byte {i} of {record} is {got:#x}, the header gives {:#x}",
            expected[i]
        );
    }
}

fn fnptr(p: *const ()) -> Vec<u8> {
    (p.addr() as u64).to_le_bytes().to_vec()
}

const extern "C" fn isr(_: WDFINTERRUPT, _: ULONG) -> BOOLEAN {
    0
}
const extern "C" fn dpc(_: WDFINTERRUPT, _: WDFOBJECT) {}
const extern "C" fn work(_: WDFWORKITEM) {}
const extern "C" fn tick(_: WDFTIMER) {}
const extern "C" fn add(_: WDFDRIVER, _: PWDFDEVICE_INIT) -> NTSTATUS {
    0
}
const extern "C" fn create(_: WDFDEVICE, _: WDFREQUEST, _: WDFFILEOBJECT) {}
const extern "C" fn close(_: WDFFILEOBJECT) {}
const extern "C" fn cleanup(_: WDFFILEOBJECT) {}

#[test]
fn every_helper_sets_what_its_header_sets() {
    let t = Table::load();
    check(
        &t,
        "WDF_OBJECT_ATTRIBUTES_INIT",
        "WDF_OBJECT_ATTRIBUTES",
        &WDF_OBJECT_ATTRIBUTES_INIT(),
        &[],
    );
    check(
        &t,
        "WDF_DRIVER_CONFIG_INIT",
        "WDF_DRIVER_CONFIG",
        &WDF_DRIVER_CONFIG_INIT(Some(add)),
        &[("EvtDriverDeviceAdd", fnptr(add as *const ()))],
    );
    check(
        &t,
        "WDF_PNPPOWER_EVENT_CALLBACKS_INIT",
        "WDF_PNPPOWER_EVENT_CALLBACKS",
        &WDF_PNPPOWER_EVENT_CALLBACKS_INIT(),
        &[],
    );
    check(
        &t,
        "WDF_FILEOBJECT_CONFIG_INIT",
        "WDF_FILEOBJECT_CONFIG",
        &WDF_FILEOBJECT_CONFIG_INIT(Some(create), Some(close), Some(cleanup)),
        &[
            ("EvtDeviceFileCreate", fnptr(create as *const ())),
            ("EvtFileClose", fnptr(close as *const ())),
            ("EvtFileCleanup", fnptr(cleanup as *const ())),
        ],
    );
    let types: [WDF_IO_QUEUE_DISPATCH_TYPE; 3] = [
        _WDF_IO_QUEUE_DISPATCH_TYPE::WdfIoQueueDispatchSequential,
        _WDF_IO_QUEUE_DISPATCH_TYPE::WdfIoQueueDispatchParallel,
        _WDF_IO_QUEUE_DISPATCH_TYPE::WdfIoQueueDispatchManual,
    ];
    for d in types {
        let arg = [("DispatchType", i64::from(d).to_le_bytes().to_vec())];
        check(
            &t,
            "WDF_IO_QUEUE_CONFIG_INIT",
            "WDF_IO_QUEUE_CONFIG",
            &WDF_IO_QUEUE_CONFIG_INIT(d),
            &arg,
        );
        check(
            &t,
            "WDF_IO_QUEUE_CONFIG_INIT_DEFAULT_QUEUE",
            "WDF_IO_QUEUE_CONFIG",
            &WDF_IO_QUEUE_CONFIG_INIT_DEFAULT_QUEUE(d),
            &arg,
        );
    }
    check(
        &t,
        "WDF_INTERRUPT_CONFIG_INIT",
        "WDF_INTERRUPT_CONFIG",
        &WDF_INTERRUPT_CONFIG_INIT(Some(isr), Some(dpc)),
        &[
            ("EvtInterruptIsr", fnptr(isr as *const ())),
            ("EvtInterruptDpc", fnptr(dpc as *const ())),
        ],
    );
    check(
        &t,
        "WDF_WORKITEM_CONFIG_INIT",
        "WDF_WORKITEM_CONFIG",
        &WDF_WORKITEM_CONFIG_INIT(Some(work)),
        &[("EvtWorkItemFunc", fnptr(work as *const ()))],
    );
    check(
        &t,
        "WDF_TIMER_CONFIG_INIT",
        "WDF_TIMER_CONFIG",
        &WDF_TIMER_CONFIG_INIT(Some(tick)),
        &[("EvtTimerFunc", fnptr(tick as *const ()))],
    );
    check(
        &t,
        "WDF_TIMER_CONFIG_INIT_PERIODIC",
        "WDF_TIMER_CONFIG",
        &WDF_TIMER_CONFIG_INIT_PERIODIC(Some(tick), 250),
        &[
            ("EvtTimerFunc", fnptr(tick as *const ())),
            ("Period", 250i64.to_le_bytes().to_vec()),
        ],
    );
    check(
        &t,
        "WDF_REQUEST_PARAMETERS_INIT",
        "WDF_REQUEST_PARAMETERS",
        &WDF_REQUEST_PARAMETERS_INIT(),
        &[],
    );
}

/// The comparison itself can fail: a structure with one field off is caught.
#[test]
fn a_helper_that_differs_from_its_header_is_caught() {
    let t = Table::load();
    let mut wrong =
        WDF_IO_QUEUE_CONFIG_INIT(_WDF_IO_QUEUE_DISPATCH_TYPE::WdfIoQueueDispatchParallel);
    wrong.Settings.Parallel.NumberOfPresentedRequests = 0;
    let arg = [(
        "DispatchType",
        i64::from(_WDF_IO_QUEUE_DISPATCH_TYPE::WdfIoQueueDispatchParallel)
            .to_le_bytes()
            .to_vec(),
    )];
    let r = std::panic::catch_unwind(|| {
        check(
            &t,
            "WDF_IO_QUEUE_CONFIG_INIT",
            "WDF_IO_QUEUE_CONFIG",
            &wrong,
            &arg,
        );
    });
    assert!(
        r.is_err(),
        "a parallel queue config with NumberOfPresentedRequests 0 passed"
    );
    let mut wrong = WDF_OBJECT_ATTRIBUTES_INIT();
    wrong.ExecutionLevel = 0;
    let r = std::panic::catch_unwind(|| {
        check(
            &t,
            "WDF_OBJECT_ATTRIBUTES_INIT",
            "WDF_OBJECT_ATTRIBUTES",
            &wrong,
            &[],
        );
    });
    assert!(r.is_err(), "attributes with ExecutionLevel 0 passed");
}
