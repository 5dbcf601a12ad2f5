//! KMDF's create-time validation on the simulated machine: each form the framework refuses is
//! refused with its status (or stops the machine as the KMDF verifier does), beside a positive
//! control that uses the routine correctly. The sources are in `docs/sim-fidelity.md` §8 and
//! `../shared/reference/kmdf-1.33/framework-validation.md`.

#![expect(
    clippy::cast_possible_truncation,
    reason = "structure sizes are far below u32::MAX"
)]

mod common;

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use common::machine;
use wdk_sim::wdf::host::{Host, HostError, InterruptResources, Mode};
use wdk_sim::wdf::status::{
    STATUS_WDF_EXECUTION_LEVEL_INVALID, STATUS_WDF_NO_CALLBACK,
    STATUS_WDF_OBJECT_ATTRIBUTES_INVALID, STATUS_WDF_PARENT_ASSIGNMENT_NOT_ALLOWED,
    STATUS_WDF_PARENT_NOT_SPECIFIED, STATUS_WDF_SYNCHRONIZATION_SCOPE_INVALID,
};
use wdk_sim::wdf::validate::{KMODE_EXCEPTION_NOT_HANDLED, STATUS_BREAKPOINT_CODE, verifier_check};
use wdk_sim::*;

/// `WDF_OBJECT_ATTRIBUTES_INIT`.
fn attributes_init() -> WDF_OBJECT_ATTRIBUTES {
    WDF_OBJECT_ATTRIBUTES {
        Size: size_of::<WDF_OBJECT_ATTRIBUTES>() as u32,
        ExecutionLevel: _WDF_EXECUTION_LEVEL::WdfExecutionLevelInheritFromParent,
        SynchronizationScope: _WDF_SYNCHRONIZATION_SCOPE::WdfSynchronizationScopeInheritFromParent,
        ..WDF_OBJECT_ATTRIBUTES::default()
    }
}

/// The attributes RHCA's driver used to build: sized and parented, levels left at 0.
fn zeroed_attributes(parent: WDFDEVICE) -> WDF_OBJECT_ATTRIBUTES {
    WDF_OBJECT_ATTRIBUTES {
        Size: size_of::<WDF_OBJECT_ATTRIBUTES>() as u32,
        ParentObject: parent.cast(),
        ..WDF_OBJECT_ATTRIBUTES::default()
    }
}

fn parented(parent: WDFDEVICE) -> WDF_OBJECT_ATTRIBUTES {
    WDF_OBJECT_ATTRIBUTES {
        ParentObject: parent.cast(),
        ..attributes_init()
    }
}

fn queue_config(dispatch: WDF_IO_QUEUE_DISPATCH_TYPE) -> WDF_IO_QUEUE_CONFIG {
    let mut c = WDF_IO_QUEUE_CONFIG {
        Size: size_of::<WDF_IO_QUEUE_CONFIG>() as u32,
        PowerManaged: _WDF_TRI_STATE::WdfUseDefault,
        DispatchType: dispatch,
        ..WDF_IO_QUEUE_CONFIG::default()
    };
    if dispatch == _WDF_IO_QUEUE_DISPATCH_TYPE::WdfIoQueueDispatchParallel {
        c.Settings.Parallel.NumberOfPresentedRequests = u32::MAX;
    }
    c
}

fn interrupt_config() -> WDF_INTERRUPT_CONFIG {
    WDF_INTERRUPT_CONFIG {
        Size: size_of::<WDF_INTERRUPT_CONFIG>() as u32,
        ShareVector: _WDF_TRI_STATE::WdfUseDefault,
        EvtInterruptIsr: Some(isr),
        ReportInactiveOnPowerDown: _WDF_TRI_STATE::WdfUseDefault,
        ..WDF_INTERRUPT_CONFIG::default()
    }
}

fn work_config() -> WDF_WORKITEM_CONFIG {
    WDF_WORKITEM_CONFIG {
        Size: size_of::<WDF_WORKITEM_CONFIG>() as u32,
        EvtWorkItemFunc: Some(work),
        AutomaticSerialization: 1,
    }
}

fn timer_config() -> WDF_TIMER_CONFIG {
    WDF_TIMER_CONFIG {
        Size: size_of::<WDF_TIMER_CONFIG>() as u32,
        EvtTimerFunc: Some(tick),
        AutomaticSerialization: 1,
        ..WDF_TIMER_CONFIG::default()
    }
}

const extern "C" fn isr(_: WDFINTERRUPT, _: ULONG) -> BOOLEAN {
    0
}
const extern "C" fn work(_: WDFWORKITEM) {}
const extern "C" fn tick(_: WDFTIMER) {}
extern "C" fn io_control(_: WDFQUEUE, r: WDFREQUEST, _: usize, _: usize, _: ULONG) {
    // SAFETY: the request the framework just presented.
    unsafe { call_unsafe_wdf_function_binding!(WdfRequestComplete, r, STATUS_SUCCESS) };
}

fn driver_entry_with(
    driver: PDRIVER_OBJECT,
    registry: PCUNICODE_STRING,
    add: PFN_WDF_DRIVER_DEVICE_ADD,
) -> NTSTATUS {
    common::create_test_driver(driver, registry, add, None)
}

fn create_device(mut init: PWDFDEVICE_INIT) -> Result<WDFDEVICE, NTSTATUS> {
    let mut attrs = attributes_init();
    let mut device: WDFDEVICE = core::ptr::null_mut();
    // SAFETY: the framework's init and live out parameters.
    let st = unsafe {
        call_unsafe_wdf_function_binding!(
            WdfDeviceCreate,
            &raw mut init,
            &raw mut attrs,
            &raw mut device
        )
    };
    if NT_SUCCESS(st) { Ok(device) } else { Err(st) }
}

// ---- the create-time checks, each recorded by name ----

static RESULTS: Mutex<BTreeMap<&'static str, NTSTATUS>> = Mutex::new(BTreeMap::new());

fn record(name: &'static str, st: NTSTATUS) {
    RESULTS.lock().unwrap().insert(name, st);
}

fn work_item(config: &WDF_WORKITEM_CONFIG, attrs: Option<&WDF_OBJECT_ATTRIBUTES>) -> NTSTATUS {
    let (mut c, mut a) = (*config, attrs.copied());
    let pa = a.as_mut().map_or(core::ptr::null_mut(), |a| &raw mut *a);
    let mut h: WDFWORKITEM = core::ptr::null_mut();
    // SAFETY: live config, attributes (or none) and out slot.
    unsafe { call_unsafe_wdf_function_binding!(WdfWorkItemCreate, &raw mut c, pa, &raw mut h) }
}

fn timer(config: &WDF_TIMER_CONFIG, attrs: &WDF_OBJECT_ATTRIBUTES) -> NTSTATUS {
    let (mut c, mut a) = (*config, *attrs);
    let mut h: WDFTIMER = core::ptr::null_mut();
    // SAFETY: live config, attributes and out slot.
    unsafe { call_unsafe_wdf_function_binding!(WdfTimerCreate, &raw mut c, &raw mut a, &raw mut h) }
}

fn spin_lock(attrs: &WDF_OBJECT_ATTRIBUTES) -> NTSTATUS {
    let mut a = *attrs;
    let mut h: WDFSPINLOCK = core::ptr::null_mut();
    // SAFETY: live attributes and out slot.
    unsafe { call_unsafe_wdf_function_binding!(WdfSpinLockCreate, &raw mut a, &raw mut h) }
}

fn queue(device: WDFDEVICE, config: &WDF_IO_QUEUE_CONFIG) -> NTSTATUS {
    let mut c = *config;
    let mut h: WDFQUEUE = core::ptr::null_mut();
    // SAFETY: a live device, config and out slot.
    unsafe {
        call_unsafe_wdf_function_binding!(
            WdfIoQueueCreate,
            device,
            &raw mut c,
            WDF_NO_OBJECT_ATTRIBUTES,
            &raw mut h
        )
    }
}

fn interrupt(
    device: WDFDEVICE,
    config: &WDF_INTERRUPT_CONFIG,
    attrs: Option<&WDF_OBJECT_ATTRIBUTES>,
) -> NTSTATUS {
    let (mut c, mut a) = (*config, attrs.copied());
    let pa = a.as_mut().map_or(core::ptr::null_mut(), |a| &raw mut *a);
    let mut h: WDFINTERRUPT = core::ptr::null_mut();
    // SAFETY: a live device, config, attributes (or none) and out slot.
    unsafe {
        call_unsafe_wdf_function_binding!(WdfInterruptCreate, device, &raw mut c, pa, &raw mut h)
    }
}

#[expect(
    clippy::too_many_lines,
    reason = "one AddDevice tries every form, each a line or two, so one boot covers them all"
)]
extern "C" fn add_checks(_driver: WDFDRIVER, init: PWDFDEVICE_INIT) -> NTSTATUS {
    let device = match create_device(init) {
        Ok(d) => d,
        Err(st) => return st,
    };
    // The framework's DeviceInit, kept by the driver and passed again (fxdeviceapi.cpp l.913).
    record(
        "device, DeviceInit already used",
        create_device(init).err().unwrap_or(STATUS_SUCCESS),
    );
    // Context type infos (fxvalidatefunctions.cpp l.77-135), through a spin lock's attributes.
    let info = |size: usize, name: bool| WDF_OBJECT_CONTEXT_TYPE_INFO {
        Size: size as u32,
        ContextName: if name {
            c"Ctx".as_ptr()
        } else {
            core::ptr::null()
        },
        ContextSize: 16,
        ..WDF_OBJECT_CONTEXT_TYPE_INFO::default()
    };
    let good = info(size_of::<WDF_OBJECT_CONTEXT_TYPE_INFO>(), true);
    let typed = |i: &WDF_OBJECT_CONTEXT_TYPE_INFO, over: usize| WDF_OBJECT_ATTRIBUTES {
        ContextTypeInfo: core::ptr::from_ref(i),
        ContextSizeOverride: over,
        ..parented(device)
    };
    record("context, valid type info", spin_lock(&typed(&good, 0)));
    record(
        "context, type info of another Size",
        spin_lock(&typed(&info(8, true), 0)),
    );
    record(
        "context, a size without a name",
        spin_lock(&typed(
            &info(size_of::<WDF_OBJECT_CONTEXT_TYPE_INFO>(), false),
            0,
        )),
    );
    record(
        "context, an override below the size",
        spin_lock(&typed(&good, 8)),
    );
    record(
        "context, an override without a type",
        spin_lock(&WDF_OBJECT_ATTRIBUTES {
            ContextSizeOverride: 64,
            ..parented(device)
        }),
    );
    // Work items: parent required, attributes validated with no freedom (fxworkitemapi.cpp).
    record(
        "work item, INIT attributes",
        work_item(&work_config(), Some(&parented(device))),
    );
    record(
        "work item, zeroed levels",
        work_item(&work_config(), Some(&zeroed_attributes(device))),
    );
    record("work item, no attributes", work_item(&work_config(), None));
    record(
        "work item, wrong Size",
        work_item(
            &WDF_WORKITEM_CONFIG {
                Size: 8,
                ..work_config()
            },
            Some(&parented(device)),
        ),
    );
    record(
        "work item, no callback",
        work_item(
            &WDF_WORKITEM_CONFIG {
                EvtWorkItemFunc: None,
                ..work_config()
            },
            Some(&parented(device)),
        ),
    );
    record(
        "work item, passive level",
        work_item(
            &work_config(),
            Some(&WDF_OBJECT_ATTRIBUTES {
                ExecutionLevel: _WDF_EXECUTION_LEVEL::WdfExecutionLevelPassive,
                ..parented(device)
            }),
        ),
    );
    // Timers (fxtimerapi.cpp).
    record(
        "timer, INIT attributes",
        timer(&timer_config(), &parented(device)),
    );
    record(
        "timer, zeroed levels",
        timer(&timer_config(), &zeroed_attributes(device)),
    );
    record(
        "timer, period above MAXLONG",
        timer(
            &WDF_TIMER_CONFIG {
                Period: 0x8000_0000,
                ..timer_config()
            },
            &parented(device),
        ),
    );
    record(
        "timer, high resolution with a tolerable delay",
        timer(
            &WDF_TIMER_CONFIG {
                UseHighResolutionTimer: 1,
                TolerableDelay: 5,
                ..timer_config()
            },
            &parented(device),
        ),
    );
    record(
        "timer, passive level",
        timer(
            &timer_config(),
            &WDF_OBJECT_ATTRIBUTES {
                ExecutionLevel: _WDF_EXECUTION_LEVEL::WdfExecutionLevelPassive,
                ..parented(device)
            },
        ),
    );
    // Spin locks (fxspinlockapi.cpp).
    record("spin lock, INIT attributes", spin_lock(&parented(device)));
    record(
        "spin lock, zeroed levels",
        spin_lock(&zeroed_attributes(device)),
    );
    record(
        "spin lock, device scope",
        spin_lock(&WDF_OBJECT_ATTRIBUTES {
            SynchronizationScope: _WDF_SYNCHRONIZATION_SCOPE::WdfSynchronizationScopeDevice,
            ..parented(device)
        }),
    );
    // Queues (fxioqueueapi.cpp, fxioqueue.cpp).
    let parallel = WDF_IO_QUEUE_CONFIG {
        EvtIoDeviceControl: Some(io_control),
        ..queue_config(_WDF_IO_QUEUE_DISPATCH_TYPE::WdfIoQueueDispatchParallel)
    };
    record("queue, parallel with a callback", queue(device, &parallel));
    record(
        "queue, parallel without a callback",
        queue(
            device,
            &queue_config(_WDF_IO_QUEUE_DISPATCH_TYPE::WdfIoQueueDispatchParallel),
        ),
    );
    record(
        "queue, manual with a callback",
        queue(
            device,
            &WDF_IO_QUEUE_CONFIG {
                EvtIoDeviceControl: Some(io_control),
                ..queue_config(_WDF_IO_QUEUE_DISPATCH_TYPE::WdfIoQueueDispatchManual)
            },
        ),
    );
    let mut sequential = WDF_IO_QUEUE_CONFIG {
        EvtIoDeviceControl: Some(io_control),
        ..queue_config(_WDF_IO_QUEUE_DISPATCH_TYPE::WdfIoQueueDispatchSequential)
    };
    sequential.Settings.Parallel.NumberOfPresentedRequests = 4;
    record(
        "queue, sequential with a presented-requests limit",
        queue(device, &sequential),
    );
    record(
        "queue, wrong Size",
        queue(
            device,
            &WDF_IO_QUEUE_CONFIG {
                Size: 16,
                ..parallel
            },
        ),
    );
    // Interrupts (fxinterruptapi.cpp).
    record(
        "interrupt, INIT config",
        interrupt(device, &interrupt_config(), None),
    );
    record(
        "interrupt, no ISR",
        interrupt(
            device,
            &WDF_INTERRUPT_CONFIG {
                EvtInterruptIsr: None,
                ..interrupt_config()
            },
            None,
        ),
    );
    record(
        "interrupt, wrong Size",
        interrupt(
            device,
            &WDF_INTERRUPT_CONFIG {
                Size: 40,
                ..interrupt_config()
            },
            None,
        ),
    );
    record(
        "interrupt, a parent without automatic serialization",
        interrupt(device, &interrupt_config(), Some(&parented(device))),
    );
    STATUS_SUCCESS
}

fn driver_create(d: PDRIVER_OBJECT, r: PCUNICODE_STRING, config: WDF_DRIVER_CONFIG) -> NTSTATUS {
    let mut config = config;
    // SAFETY: the loader's arguments and a live config.
    unsafe {
        call_unsafe_wdf_function_binding!(
            WdfDriverCreate,
            d,
            r,
            WDF_NO_OBJECT_ATTRIBUTES,
            &raw mut config,
            core::ptr::null_mut()
        )
    }
}

unsafe extern "system" fn entry_checks(d: PDRIVER_OBJECT, r: PCUNICODE_STRING) -> NTSTATUS {
    // WdfDriverCreate's own refusals (fxdriverapi.cpp l.127-256), before and after the real one.
    let good = WDF_DRIVER_CONFIG {
        Size: size_of::<WDF_DRIVER_CONFIG>() as u32,
        EvtDriverDeviceAdd: Some(add_checks),
        ..WDF_DRIVER_CONFIG::default()
    };
    record(
        "driver, wrong Size",
        driver_create(d, r, WDF_DRIVER_CONFIG { Size: 12, ..good }),
    );
    record(
        "driver, unknown init flags",
        driver_create(
            d,
            r,
            WDF_DRIVER_CONFIG {
                DriverInitFlags: 0x100,
                ..good
            },
        ),
    );
    record(
        "driver, non-PnP with AddDevice",
        driver_create(
            d,
            r,
            WDF_DRIVER_CONFIG {
                DriverInitFlags: _WDF_DRIVER_INIT_FLAGS::WdfDriverInitNonPnpDriver.cast_unsigned(),
                ..good
            },
        ),
    );
    let st = driver_create(d, r, good);
    record(
        "driver, a second WdfDriverCreate",
        driver_create(d, r, good),
    );
    st
}

/// Boots one machine whose `AddDevice` records every check; the tests read the results.
fn results() -> &'static BTreeMap<&'static str, NTSTATUS> {
    static ONCE: OnceLock<BTreeMap<&'static str, NTSTATUS>> = OnceLock::new();
    ONCE.get_or_init(|| {
        let (m, att, _bus) = machine(Profile::VERIFIER, 64);
        let host = Host::load_with(&m, entry_checks, Mode::Threaded).expect("DriverEntry");
        let node = host
            .add_device(&att, InterruptResources::Msi(4))
            .expect("AddDevice");
        host.remove(&node).expect("remove");
        host.unload().expect("unload");
        RESULTS.lock().unwrap().clone()
    })
}

fn status(name: &str) -> NTSTATUS {
    *results()
        .get(name)
        .unwrap_or_else(|| panic!("no result for {name}"))
}

#[test]
fn zeroed_execution_level_and_scope_are_refused_as_kmdf_refuses_them() {
    assert_eq!(status("work item, INIT attributes"), STATUS_SUCCESS);
    assert_eq!(
        status("work item, zeroed levels"),
        STATUS_WDF_OBJECT_ATTRIBUTES_INVALID
    );
    assert_eq!(status("timer, INIT attributes"), STATUS_SUCCESS);
    assert_eq!(
        status("timer, zeroed levels"),
        STATUS_WDF_OBJECT_ATTRIBUTES_INVALID
    );
    assert_eq!(status("spin lock, INIT attributes"), STATUS_SUCCESS);
    assert_eq!(
        status("spin lock, zeroed levels"),
        STATUS_WDF_OBJECT_ATTRIBUTES_INVALID
    );
}

#[test]
fn driver_creation_is_validated_as_the_framework_does() {
    assert_eq!(status("driver, wrong Size"), STATUS_INFO_LENGTH_MISMATCH);
    assert_eq!(
        status("driver, unknown init flags"),
        STATUS_INVALID_PARAMETER
    );
    assert_eq!(
        status("driver, non-PnP with AddDevice"),
        STATUS_INVALID_PARAMETER
    );
    assert_eq!(
        status("driver, a second WdfDriverCreate"),
        STATUS_DRIVER_INTERNAL_ERROR
    );
    // The control: the driver that recorded these loaded, and its AddDevice ran.
    assert_eq!(status("work item, INIT attributes"), STATUS_SUCCESS);
}

#[test]
fn a_device_init_cannot_create_two_devices() {
    assert_eq!(
        status("device, DeviceInit already used"),
        STATUS_INVALID_DEVICE_STATE
    );
}

#[test]
fn context_type_infos_are_validated_as_the_framework_does() {
    assert_eq!(status("context, valid type info"), STATUS_SUCCESS);
    assert_eq!(
        status("context, type info of another Size"),
        STATUS_INFO_LENGTH_MISMATCH
    );
    assert_eq!(
        status("context, a size without a name"),
        STATUS_WDF_OBJECT_ATTRIBUTES_INVALID
    );
    assert_eq!(
        status("context, an override below the size"),
        STATUS_WDF_OBJECT_ATTRIBUTES_INVALID
    );
    assert_eq!(
        status("context, an override without a type"),
        STATUS_WDF_OBJECT_ATTRIBUTES_INVALID
    );
}

#[test]
fn passive_level_timers_are_refused_as_not_modelled() {
    // Stricter than Windows (docs/sim-fidelity.md §10): KMDF would run the callback on a work item.
    assert_eq!(status("timer, passive level"), STATUS_NOT_SUPPORTED);
}

#[test]
fn work_items_need_a_parent_their_size_and_a_callback() {
    assert_eq!(
        status("work item, no attributes"),
        STATUS_WDF_PARENT_NOT_SPECIFIED
    );
    assert_eq!(status("work item, wrong Size"), STATUS_INFO_LENGTH_MISMATCH);
    assert_eq!(status("work item, no callback"), STATUS_INVALID_PARAMETER);
    assert_eq!(
        status("work item, passive level"),
        STATUS_WDF_EXECUTION_LEVEL_INVALID
    );
}

#[test]
fn timers_refuse_an_overlong_period_and_a_tolerable_high_resolution_timer() {
    assert_eq!(
        status("timer, period above MAXLONG"),
        STATUS_INVALID_PARAMETER
    );
    assert_eq!(
        status("timer, high resolution with a tolerable delay"),
        STATUS_INVALID_PARAMETER
    );
}

#[test]
fn a_spin_lock_cannot_take_a_synchronization_scope() {
    assert_eq!(
        status("spin lock, device scope"),
        STATUS_WDF_SYNCHRONIZATION_SCOPE_INVALID
    );
}

#[test]
fn queues_are_validated_as_the_framework_does() {
    assert_eq!(status("queue, parallel with a callback"), STATUS_SUCCESS);
    assert_eq!(
        status("queue, parallel without a callback"),
        STATUS_WDF_NO_CALLBACK
    );
    assert_eq!(
        status("queue, manual with a callback"),
        STATUS_INVALID_PARAMETER
    );
    assert_eq!(
        status("queue, sequential with a presented-requests limit"),
        STATUS_INVALID_PARAMETER
    );
    assert_eq!(status("queue, wrong Size"), STATUS_INFO_LENGTH_MISMATCH);
}

#[test]
fn interrupts_are_validated_as_the_framework_does() {
    assert_eq!(status("interrupt, INIT config"), STATUS_SUCCESS);
    assert_eq!(status("interrupt, no ISR"), STATUS_INVALID_PARAMETER);
    assert_eq!(status("interrupt, wrong Size"), STATUS_INFO_LENGTH_MISMATCH);
    assert_eq!(
        status("interrupt, a parent without automatic serialization"),
        STATUS_WDF_PARENT_ASSIGNMENT_NOT_ALLOWED
    );
}

// ---- a parallel queue's presented-requests limit ----

static LIMIT: Mutex<u32> = Mutex::new(u32::MAX);

extern "C" fn add_limited(_driver: WDFDRIVER, init: PWDFDEVICE_INIT) -> NTSTATUS {
    let device = match create_device(init) {
        Ok(d) => d,
        Err(st) => return st,
    };
    let mut c = WDF_IO_QUEUE_CONFIG {
        DefaultQueue: 1,
        EvtIoDeviceControl: Some(io_control),
        ..queue_config(_WDF_IO_QUEUE_DISPATCH_TYPE::WdfIoQueueDispatchParallel)
    };
    c.Settings.Parallel.NumberOfPresentedRequests = *LIMIT.lock().unwrap();
    queue(device, &c)
}

unsafe extern "system" fn entry_limited(d: PDRIVER_OBJECT, r: PCUNICODE_STRING) -> NTSTATUS {
    driver_entry_with(d, r, Some(add_limited))
}

/// Sends one IOCTL to a device whose default parallel queue has `limit`; whether it completed.
fn ioctl_completes_with_limit(limit: u32) -> bool {
    let (m, att, _bus) = machine(Profile::VERIFIER, 64);
    *LIMIT.lock().unwrap() = limit;
    let host = Host::load_with(&m, entry_limited, Mode::Threaded).expect("DriverEntry");
    let node = host
        .add_device(&att, InterruptResources::Msi(1))
        .expect("AddDevice");
    host.start(&node).expect("start");
    let p = host.process();
    let h = p.open(&node).expect("open");
    let pending = p.ioctl_async(&h, 0x0022_2000, &[], 0).expect("send");
    let done = pending.wait(Duration::from_millis(300)).is_some();
    // Closing the handle cancels a request still waiting in the queue (the framework's
    // cleanup of the file object).
    p.close(h).expect("close");
    host.remove(&node).expect("remove");
    host.unload().expect("unload");
    done
}

#[test]
fn a_parallel_queue_with_no_presented_requests_never_presents_one() {
    // The same queue with WDF_IO_QUEUE_CONFIG_INIT's (ULONG)-1 completes the request; the
    // limit of 0 that a zeroed config leaves keeps it queued, as FxIoQueue::DispatchEvents does.
    let _one_at_a_time = SERIAL.lock().unwrap();
    assert!(
        ioctl_completes_with_limit(u32::MAX),
        "the control: an unlimited queue presents the request"
    );
    assert!(
        !ioctl_completes_with_limit(0),
        "a limit of 0 presented a request"
    );
}

static SERIAL: Mutex<()> = Mutex::new(());

// ---- ShareVector ----

static SHARE: Mutex<WDF_TRI_STATE> = Mutex::new(_WDF_TRI_STATE::WdfUseDefault);
static SEEN: Mutex<Vec<u8>> = Mutex::new(Vec::new());

extern "C" fn add_share(_driver: WDFDRIVER, mut init: PWDFDEVICE_INIT) -> NTSTATUS {
    let mut pnp = WDF_PNPPOWER_EVENT_CALLBACKS {
        Size: size_of::<WDF_PNPPOWER_EVENT_CALLBACKS>() as u32,
        EvtDevicePrepareHardware: Some(prepare_share),
        ..WDF_PNPPOWER_EVENT_CALLBACKS::default()
    };
    // SAFETY: the framework's init and a live struct.
    unsafe {
        call_unsafe_wdf_function_binding!(
            WdfDeviceInitSetPnpPowerEventCallbacks,
            init,
            &raw mut pnp
        );
    };
    let device = match create_device(core::mem::replace(&mut init, core::ptr::null_mut())) {
        Ok(d) => d,
        Err(st) => return st,
    };
    let config = WDF_INTERRUPT_CONFIG {
        ShareVector: *SHARE.lock().unwrap(),
        ..interrupt_config()
    };
    interrupt(device, &config, None)
}

extern "C" fn prepare_share(
    _device: WDFDEVICE,
    _raw: WDFCMRESLIST,
    translated: WDFCMRESLIST,
) -> NTSTATUS {
    // SAFETY: the list the framework passed.
    let n = unsafe { call_unsafe_wdf_function_binding!(WdfCmResourceListGetCount, translated) };
    let mut seen = SEEN.lock().unwrap();
    seen.clear();
    for i in 0..n {
        // SAFETY: an index below the count.
        let d = unsafe {
            call_unsafe_wdf_function_binding!(WdfCmResourceListGetDescriptor, translated, i)
        };
        // SAFETY: the framework's descriptor, live for the callback.
        let d = unsafe { &*d };
        if u32::from(d.Type) == CmResourceTypeInterrupt {
            seen.push(d.ShareDisposition);
        }
    }
    STATUS_SUCCESS
}

unsafe extern "system" fn entry_share(d: PDRIVER_OBJECT, r: PCUNICODE_STRING) -> NTSTATUS {
    driver_entry_with(d, r, Some(add_share))
}

fn share_disposition_with(share: WDF_TRI_STATE) -> Vec<u8> {
    let (m, att, _bus) = machine(Profile::VERIFIER, 64);
    *SHARE.lock().unwrap() = share;
    let host = Host::load_with(&m, entry_share, Mode::Threaded).expect("DriverEntry");
    let node = host
        .add_device(&att, InterruptResources::Line)
        .expect("AddDevice");
    host.start(&node).expect("start");
    let seen = SEEN.lock().unwrap().clone();
    host.remove(&node).expect("remove");
    host.unload().expect("unload");
    seen
}

#[test]
fn share_vector_decides_the_interrupt_resource_share_disposition() {
    let _one_at_a_time = SERIAL.lock().unwrap();
    // A line interrupt is shared by the bus; WdfUseDefault (the INIT value) keeps that, and
    // WdfFalse claims it device-exclusive (FxInterrupt::FilterResourceRequirements).
    assert_eq!(
        share_disposition_with(_WDF_TRI_STATE::WdfUseDefault),
        vec![3]
    );
    assert_eq!(share_disposition_with(_WDF_TRI_STATE::WdfFalse), vec![1]);
    assert_eq!(share_disposition_with(_WDF_TRI_STATE::WdfTrue), vec![3]);
}

// ---- a KMDF verifier break ----

/// Sets a file object configuration with `class` (and no callbacks), then creates the device.
fn add_with_file_class(init: PWDFDEVICE_INIT, class: WDF_FILEOBJECT_CLASS) -> NTSTATUS {
    let mut files = WDF_FILEOBJECT_CONFIG {
        Size: size_of::<WDF_FILEOBJECT_CONFIG>() as u32,
        AutoForwardCleanupClose: _WDF_TRI_STATE::WdfUseDefault,
        FileObjectClass: class,
        ..WDF_FILEOBJECT_CONFIG::default()
    };
    // SAFETY: the framework's init and a live struct.
    unsafe {
        call_unsafe_wdf_function_binding!(
            WdfDeviceInitSetFileObjectConfig,
            init,
            &raw mut files,
            WDF_NO_OBJECT_ATTRIBUTES
        );
    };
    create_device(init).map_or_else(|st| st, |_| STATUS_SUCCESS)
}

extern "C" fn add_bad_file_config(_driver: WDFDRIVER, init: PWDFDEVICE_INIT) -> NTSTATUS {
    // The form RHCA's sample drivers had: sized, the class left at 0.
    add_with_file_class(init, WDF_FILEOBJECT_CONFIG::default().FileObjectClass)
}

unsafe extern "system" fn entry_bad_file(d: PDRIVER_OBJECT, r: PCUNICODE_STRING) -> NTSTATUS {
    driver_entry_with(d, r, Some(add_bad_file_config))
}

extern "C" fn add_good_file_config(_driver: WDFDRIVER, init: PWDFDEVICE_INIT) -> NTSTATUS {
    add_with_file_class(
        init,
        _WDF_FILEOBJECT_CLASS::WdfFileObjectWdfCannotUseFsContexts,
    )
}

unsafe extern "system" fn entry_good_file(d: PDRIVER_OBJECT, r: PCUNICODE_STRING) -> NTSTATUS {
    driver_entry_with(d, r, Some(add_good_file_config))
}

#[test]
fn an_invalid_file_object_class_stops_the_machine_at_the_verifier_break() {
    let (m, att, _bus) = machine(Profile::VERIFIER, 64);
    let host = Host::load_with(&m, entry_bad_file, Mode::Threaded).expect("DriverEntry");
    match host.add_device(&att, InterruptResources::Msi(1)) {
        Err(HostError::BugCheck(b)) => {
            assert_eq!(b.code, KMODE_EXCEPTION_NOT_HANDLED);
            assert_eq!(
                b.params,
                [
                    STATUS_BREAKPOINT_CODE,
                    0,
                    0,
                    verifier_check::FILE_OBJECT_CONFIG_VALUE
                ]
            );
        }
        other => panic!("expected the KMDF verifier break, got {other:?}"),
    }
}

#[test]
fn a_valid_file_object_config_is_accepted() {
    let (m, att, _bus) = machine(Profile::VERIFIER, 64);
    let host = Host::load_with(&m, entry_good_file, Mode::Threaded).expect("DriverEntry");
    let node = host
        .add_device(&att, InterruptResources::Msi(1))
        .expect("AddDevice");
    host.remove(&node).expect("remove");
    host.unload().expect("unload");
}

// ---- the KMDF verifier's request and object checks ----

const DELETE_DEVICE: u32 = 0x0022_2004;
const DELETE_WORK_ITEM: u32 = 0x0022_2008;
const COMPLETE_CANCELABLE: u32 = 0x0022_200C;
const UNMARK_THEN_COMPLETE: u32 = 0x0022_2010;
const INFORMATION_TOO_LARGE: u32 = 0x0022_2014;
const INFORMATION_EXACT: u32 = 0x0022_2018;
const USE_AFTER_COMPLETION: u32 = 0x0022_201C;
const COMPLETE_WHILE_QUEUED: u32 = 0x0022_2020;
const NULL_CANCEL_ROUTINE: u32 = 0x0022_2024;
const DELETE_REQUEST: u32 = 0x0022_2028;

extern "C" fn cancel(r: WDFREQUEST) {
    // SAFETY: the framework's cancelled request, now the driver's to complete.
    unsafe { call_unsafe_wdf_function_binding!(WdfRequestComplete, r, STATUS_CANCELLED) };
}

fn complete(r: WDFREQUEST, status: NTSTATUS, information: Option<usize>) {
    match information {
        // SAFETY: a request the driver owns (or, for the misuses, the one it means to misuse).
        Some(i) => unsafe {
            call_unsafe_wdf_function_binding!(
                WdfRequestCompleteWithInformation,
                r,
                status,
                i as u64
            );
        },
        // SAFETY: as above.
        None => unsafe { call_unsafe_wdf_function_binding!(WdfRequestComplete, r, status) },
    }
}

fn delete(object: WDFOBJECT) {
    // SAFETY: a live object; whether the driver may delete it is what the tests ask.
    unsafe { call_unsafe_wdf_function_binding!(WdfObjectDelete, object) };
}

fn mark_cancelable(request: WDFREQUEST) {
    // SAFETY: a request the driver owns and a cancel routine that completes it.
    let st = unsafe {
        call_unsafe_wdf_function_binding!(WdfRequestMarkCancelableEx, request, Some(cancel))
    };
    assert!(NT_SUCCESS(st));
}

extern "C" fn misuse(
    queue_: WDFQUEUE,
    request: WDFREQUEST,
    out_len: usize,
    _in: usize,
    code: ULONG,
) {
    // SAFETY: the queue that presented the request.
    let device = unsafe { call_unsafe_wdf_function_binding!(WdfIoQueueGetDevice, queue_) };
    match code {
        DELETE_DEVICE => delete(device.cast()),
        DELETE_WORK_ITEM => {
            let (mut config, mut attrs) = (work_config(), parented(device));
            let mut item: WDFWORKITEM = core::ptr::null_mut();
            // SAFETY: live config, attributes and out slot.
            let st = unsafe {
                call_unsafe_wdf_function_binding!(
                    WdfWorkItemCreate,
                    &raw mut config,
                    &raw mut attrs,
                    &raw mut item
                )
            };
            assert!(NT_SUCCESS(st));
            delete(item.cast());
        }
        COMPLETE_CANCELABLE => mark_cancelable(request),
        NULL_CANCEL_ROUTINE => {
            // SAFETY: deliberately not: the cancel routine is a required parameter.
            let _ = unsafe {
                call_unsafe_wdf_function_binding!(WdfRequestMarkCancelableEx, request, None)
            };
        }
        DELETE_REQUEST => return delete(request.cast()),
        UNMARK_THEN_COMPLETE => {
            mark_cancelable(request);
            // SAFETY: a request the driver marked cancelable.
            let st =
                unsafe { call_unsafe_wdf_function_binding!(WdfRequestUnmarkCancelable, request) };
            assert!(NT_SUCCESS(st));
        }
        INFORMATION_TOO_LARGE => return complete(request, STATUS_SUCCESS, Some(out_len + 1)),
        INFORMATION_EXACT => return complete(request, STATUS_SUCCESS, Some(out_len)),
        USE_AFTER_COMPLETION => {
            complete(request, STATUS_SUCCESS, None);
            // SAFETY: deliberately not: the request was completed just above.
            let _ = unsafe { call_unsafe_wdf_function_binding!(WdfRequestGetFileObject, request) };
            return;
        }
        COMPLETE_WHILE_QUEUED => {
            let mut config = queue_config(_WDF_IO_QUEUE_DISPATCH_TYPE::WdfIoQueueDispatchManual);
            let mut manual: WDFQUEUE = core::ptr::null_mut();
            // SAFETY: a live device, config and out slot.
            let st = unsafe {
                call_unsafe_wdf_function_binding!(
                    WdfIoQueueCreate,
                    device,
                    &raw mut config,
                    WDF_NO_OBJECT_ATTRIBUTES,
                    &raw mut manual
                )
            };
            assert!(NT_SUCCESS(st));
            // SAFETY: a request the driver owns and a live queue.
            let st = unsafe {
                call_unsafe_wdf_function_binding!(WdfRequestForwardToIoQueue, request, manual)
            };
            assert!(NT_SUCCESS(st));
        }
        _ => {}
    }
    complete(request, STATUS_SUCCESS, None);
}

extern "C" fn add_misuse(_driver: WDFDRIVER, init: PWDFDEVICE_INIT) -> NTSTATUS {
    let device = match create_device(init) {
        Ok(d) => d,
        Err(st) => return st,
    };
    let c = WDF_IO_QUEUE_CONFIG {
        DefaultQueue: 1,
        EvtIoDeviceControl: Some(misuse),
        ..queue_config(_WDF_IO_QUEUE_DISPATCH_TYPE::WdfIoQueueDispatchParallel)
    };
    queue(device, &c)
}

unsafe extern "system" fn entry_misuse(d: PDRIVER_OBJECT, r: PCUNICODE_STRING) -> NTSTATUS {
    driver_entry_with(d, r, Some(add_misuse))
}

/// One IOCTL with `code` to a fresh machine running the misuse driver; the bug check it ends
/// in, or `None` when it completed (and the device was removed and the driver unloaded cleanly).
fn misuse_ends_in(code: u32, out_len: usize) -> Option<wdk_sim::BugCheck> {
    let (m, att, _bus) = machine(Profile::VERIFIER, 64);
    let host = Host::load_with(&m, entry_misuse, Mode::Threaded).expect("DriverEntry");
    let node = host
        .add_device(&att, InterruptResources::Msi(1))
        .expect("AddDevice");
    host.start(&node).expect("start");
    let p = host.process();
    let h = p.open(&node).expect("open");
    match p.ioctl(&h, code, &[], out_len) {
        Ok(_) => {
            p.close(h).expect("close");
            host.remove(&node).expect("remove");
            host.unload().expect("unload");
            None
        }
        Err(HostError::BugCheck(b)) => Some(b),
        Err(e) => panic!("{e}"),
    }
}

fn verifier_break_named(b: Option<wdk_sim::BugCheck>) -> u64 {
    let b = b.expect("the misuse stopped the machine");
    assert_eq!(
        (b.code, b.params[0]),
        (KMODE_EXCEPTION_NOT_HANDLED, STATUS_BREAKPOINT_CODE),
        "{b}"
    );
    b.params[3]
}

#[test]
fn deleting_an_object_the_framework_owns_is_a_verifier_break() {
    assert_eq!(
        verifier_break_named(misuse_ends_in(DELETE_DEVICE, 0)),
        verifier_check::NO_DELETE_DDI
    );
    assert!(
        misuse_ends_in(DELETE_WORK_ITEM, 0).is_none(),
        "the control: a driver's work item may be deleted"
    );
}

#[test]
fn completing_a_request_still_marked_cancelable_is_a_verifier_break() {
    assert_eq!(
        verifier_break_named(misuse_ends_in(COMPLETE_CANCELABLE, 0)),
        verifier_check::COMPLETING_CANCELABLE
    );
    assert!(
        misuse_ends_in(UNMARK_THEN_COMPLETE, 0).is_none(),
        "the control: unmarked, then completed"
    );
}

#[test]
fn completing_a_request_waiting_in_a_queue_is_a_verifier_break() {
    assert_eq!(
        verifier_break_named(misuse_ends_in(COMPLETE_WHILE_QUEUED, 0)),
        verifier_check::REQUEST_NOT_DRIVER_OWNED
    );
}

#[test]
fn reporting_more_bytes_than_the_output_buffer_is_a_request_fatal_error() {
    let b = misuse_ends_in(INFORMATION_TOO_LARGE, 16).expect("stopped");
    assert_eq!((b.code, b.params[0], b.params[1]), (0x10D, 0x6, 0x4), "{b}");
    assert!(
        misuse_ends_in(INFORMATION_EXACT, 16).is_none(),
        "the control: exactly the buffer"
    );
}

#[test]
fn using_a_request_after_completing_it_is_an_invalid_handle() {
    let b = misuse_ends_in(USE_AFTER_COMPLETION, 0).expect("stopped");
    assert_eq!((b.code, b.params[0]), (0x10D, 0x5), "{b}");
}

#[test]
fn a_null_required_parameter_is_wdf_required_parameter_is_null() {
    let b = misuse_ends_in(NULL_CANCEL_ROUTINE, 0).expect("stopped");
    assert_eq!((b.code, b.params[0]), (0x10D, 0x4), "{b}");
    assert!(
        misuse_ends_in(UNMARK_THEN_COMPLETE, 0).is_none(),
        "the control: a cancel routine given"
    );
}

#[test]
fn deleting_a_request_stops_the_machine() {
    // Not derived from the framework source (docs/sim-fidelity.md §10): a request ends by its
    // completion, and wdk-sim stops a driver that deletes one instead.
    let b = misuse_ends_in(DELETE_REQUEST, 0).expect("stopped");
    assert_eq!((b.code, b.params[0]), (0x10D, 0x7), "{b}");
}

extern "C" fn add_bad_pnp_callbacks(_driver: WDFDRIVER, init: PWDFDEVICE_INIT) -> NTSTATUS {
    let mut pnp = WDF_PNPPOWER_EVENT_CALLBACKS {
        Size: 16,
        ..WDF_PNPPOWER_EVENT_CALLBACKS::default()
    };
    // SAFETY: the framework's init and a live struct.
    unsafe {
        call_unsafe_wdf_function_binding!(
            WdfDeviceInitSetPnpPowerEventCallbacks,
            init,
            &raw mut pnp
        );
    };
    create_device(init).map_or_else(|st| st, |_| STATUS_SUCCESS)
}

unsafe extern "system" fn entry_bad_pnp(d: PDRIVER_OBJECT, r: PCUNICODE_STRING) -> NTSTATUS {
    driver_entry_with(d, r, Some(add_bad_pnp_callbacks))
}

#[test]
fn pnp_power_callbacks_of_another_size_stop_at_the_verifier_break() {
    let (m, att, _bus) = machine(Profile::VERIFIER, 64);
    let host = Host::load_with(&m, entry_bad_pnp, Mode::Threaded).expect("DriverEntry");
    match host.add_device(&att, InterruptResources::Msi(1)) {
        Err(HostError::BugCheck(b)) => {
            assert_eq!(b.code, KMODE_EXCEPTION_NOT_HANDLED);
            assert_eq!(b.params[3], verifier_check::PNP_POWER_CALLBACKS_SIZE);
        }
        other => panic!("expected the KMDF verifier break, got {other:?}"),
    }
    // The control: the share-vector tests' driver sets its callbacks with the right size.
}
