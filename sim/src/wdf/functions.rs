//! The WDF methods, mirrored from `wdf*.h` (KMDF 1.33) without the `DriverGlobals` parameter,
//! as `call_unsafe_wdf_function_binding!` passes them. Each cites its C prototype and IRQL.
//!
//! Every method is `#[inline(never)]`: on Windows the driver reaches it through the framework's
//! function table, which no compiler inlines, so a profile of the driver on the simulated
//! machine (`rhca-lab bench`'s callgrind figures) counts the framework's work as the
//! framework's, not the driver's.
//!
//! # Safety
//! Every method is an `unsafe fn`: pointer arguments must be valid as the WDK documents for the
//! method, and the caller must run on a CPU of a [`crate::Machine`].
//!
//! This file holds the shared helpers (the callback wrappers, attribute checks), the driver,
//! device and resource-list methods and object lifetime; `interrupt` (interrupts, spin locks),
//! `deferred` (work items, timers), `queue` and `request` the rest, re-exported here under the
//! path `call_unsafe_wdf_function_binding!` names.

#![expect(
    clippy::missing_safety_doc,
    reason = "the module documents the one safety contract every WDF method shares"
)]
#![expect(non_snake_case, reason = "mirrors the C method and parameter names")]

use core::ptr::null_mut;

use super::status::STATUS_WDF_PARENT_NOT_SPECIFIED;
#[allow(
    clippy::wildcard_imports,
    reason = "the methods use the mirrored surface wholesale"
)]
use super::types::*;
use super::validate::{self, opt, verifier_break, verifier_check};
use super::{Kind, WDF_VIOLATION, WdfState, wdf_rule};
use crate::bugcheck::BugCheck;
use crate::heap::{self, Context};
use crate::machine::{halt, irql, with_state};
use crate::ntddk::check_max;
use crate::typed::{DISPATCH_LEVEL, PASSIVE_LEVEL};
use crate::types::{KIRQL, PDEVICE_OBJECT, PDRIVER_OBJECT, PVOID, ULONG};
use crate::{
    NTSTATUS, STATUS_DRIVER_INTERNAL_ERROR, STATUS_INFO_LENGTH_MISMATCH,
    STATUS_INVALID_DEVICE_STATE, STATUS_INVALID_PARAMETER, STATUS_NOT_SUPPORTED, STATUS_SUCCESS,
};

mod deferred;
mod interrupt;
mod memory;
mod queue;
mod request;

pub use deferred::{
    WdfTimerCreate, WdfTimerGetParentObject, WdfTimerStart, WdfTimerStop, WdfWorkItemCreate,
    WdfWorkItemEnqueue, WdfWorkItemFlush, WdfWorkItemGetParentObject,
};
pub use interrupt::{
    WdfInterruptAcquireLock, WdfInterruptCreate, WdfInterruptGetDevice, WdfInterruptQueueDpcForIsr,
    WdfInterruptReleaseLock, WdfInterruptSynchronize, WdfSpinLockAcquire, WdfSpinLockCreate,
    WdfSpinLockRelease,
};
pub(crate) use interrupt::{
    acquire_interrupt_lock, release_interrupt_lock, try_lock_interrupt, unlock_interrupt,
};
pub use memory::{
    WdfDeviceGetDefaultQueue, WdfDeviceInitSetRequestAttributes, WdfDriverIsVersionAvailable,
    WdfDriverRetrieveVersionString, WdfMemoryCopyFromBuffer, WdfMemoryCopyToBuffer,
    WdfMemoryCreate, WdfMemoryGetBuffer, WdfRequestGetIoQueue, WdfRequestRetrieveInputMemory,
    WdfRequestRetrieveOutputMemory, WdfStringCreate, WdfStringGetUnicodeString,
};
pub use queue::{
    WdfDeviceConfigureRequestDispatching, WdfIoQueueCreate, WdfIoQueueGetDevice, WdfIoQueuePurge,
    WdfIoQueuePurgeSynchronously, WdfIoQueueRetrieveNextRequest, WdfIoQueueStart, WdfIoQueueStop,
    WdfIoQueueStopSynchronously,
};
pub use request::{
    WdfFileObjectGetDevice, WdfRequestComplete, WdfRequestCompleteWithInformation,
    WdfRequestForwardToIoQueue, WdfRequestGetFileObject, WdfRequestGetParameters,
    WdfRequestMarkCancelable, WdfRequestMarkCancelableEx, WdfRequestRetrieveInputBuffer,
    WdfRequestRetrieveInputWdmMdl, WdfRequestRetrieveOutputBuffer, WdfRequestRetrieveOutputWdmMdl,
    WdfRequestSetInformation, WdfRequestUnmarkCancelable,
};

/// `STATUS_NO_MORE_ENTRIES` (0x8000001A).
pub const STATUS_NO_MORE_ENTRIES: NTSTATUS = 0x8000_001A_u32.cast_signed();

/// The device IRQL the simulator gives every interrupt (a DIRQL above `DISPATCH_LEVEL`).
pub const SIM_DIRQL: KIRQL = 9;

fn wdf<R>(f: impl FnOnce(&mut WdfState) -> Result<R, BugCheck>) -> R {
    with_state(|st, _| f(&mut st.wdf))
}

fn null_arg(what: &'static str) -> ! {
    halt(BugCheck::new(
        WDF_VIOLATION,
        [0x4, 0, 0, 0],
        Box::leak(format!("NULL passed as {what}, which must not be NULL").into_boxed_str()),
        "Bug check 0x10D WDF_VIOLATION, parameter 1 = 0x4",
    ))
}

/// Calls a driver callback and checks it returned at the IRQL it was called at (KMDF Verifier:
/// 0x10D, parameter 1 = 0xE).
pub(crate) fn callback<R>(f: impl FnOnce() -> R) -> R {
    callback_in(Context::Other, f)
}

/// As [`callback`] for a callback of the interrupt path (`Dpc`: a DPC or timer callback; `Isr`),
/// whose allocations the machine counts. After any callback, a pool allocation or free the
/// driver made above `DISPATCH_LEVEL` stops the machine as Verifier would have at the call
/// (0xC4, parameter 1 = 0x02 or 0x12; 0xA without Verifier).
pub(crate) fn callback_in<R>(context: Context, f: impl FnOnce() -> R) -> R {
    let before = irql();
    let saved = heap::enter_callback(context);
    let r = f();
    let violation = heap::leave_callback(saved);
    let after = irql();
    if let Some((p1, at, value)) = violation {
        halt(heap::pool_irql_stop(
            p1,
            at,
            DISPATCH_LEVEL,
            heap::NON_PAGED_POOL_NX,
            value as u64,
            if p1 == 0x02 {
                "the driver allocated non-paged pool above DISPATCH_LEVEL"
            } else {
                "the driver freed non-paged pool above DISPATCH_LEVEL"
            },
        ));
    }
    if before != after {
        halt(BugCheck::new(
            WDF_VIOLATION,
            [0xE, u64::from(before), u64::from(after), 0],
            "an event callback returned at another IRQL than it was called at",
            "Bug check 0x10D WDF_VIOLATION, parameter 1 = 0xE",
        ));
    }
    r
}

fn attrs<'a>(a: PWDF_OBJECT_ATTRIBUTES) -> Option<&'a WDF_OBJECT_ATTRIBUTES> {
    // SAFETY: WDF_NO_OBJECT_ATTRIBUTES is NULL; otherwise the driver passes a live struct.
    (!a.is_null()).then(|| unsafe { &*a })
}

/// `FxValidateObjectAttributesForParentHandle` (`fxvalidatefunctions.hpp` l.70–108).
fn parent_handle(a: Option<&WDF_OBJECT_ATTRIBUTES>) -> Result<(), NTSTATUS> {
    match a {
        None => Err(STATUS_WDF_PARENT_NOT_SPECIFIED),
        Some(a) if a.ParentObject.is_null() => Err(STATUS_WDF_PARENT_NOT_SPECIFIED),
        Some(a) if a.Size as usize != size_of::<WDF_OBJECT_ATTRIBUTES>() => {
            Err(STATUS_INFO_LENGTH_MISMATCH)
        }
        Some(_) => Ok(()),
    }
}

/// wdk-sim does not model the framework's callback serialization (synchronization scopes
/// Device and Queue): it refuses them, where Windows would serialize (docs/sim-fidelity.md §8).
/// So no parent ever has a callback lock, and `FxObject::_GetEffectiveLock` takes none.
fn no_serialization(a: Option<&WDF_OBJECT_ATTRIBUTES>) -> Result<(), NTSTATUS> {
    match a.map(|a| a.SynchronizationScope) {
        Some(
            _WDF_SYNCHRONIZATION_SCOPE::WdfSynchronizationScopeDevice
            | _WDF_SYNCHRONIZATION_SCOPE::WdfSynchronizationScopeQueue,
        ) => Err(STATUS_NOT_SUPPORTED),
        _ => Ok(()),
    }
}

fn parent_of(a: Option<&WDF_OBJECT_ATTRIBUTES>, default: usize) -> usize {
    a.map(|a| a.ParentObject as usize)
        .filter(|&p| p != 0)
        .unwrap_or(default)
}

// ---- driver ----

/// `NTSTATUS WdfDriverCreate(PDRIVER_OBJECT, PCUNICODE_STRING RegistryPath,
/// PWDF_OBJECT_ATTRIBUTES, PWDF_DRIVER_CONFIG, WDFDRIVER *Driver)`; PASSIVE_LEVEL.
#[must_use]
#[inline(never)]
pub unsafe fn WdfDriverCreate(
    DriverObject: PDRIVER_OBJECT,
    RegistryPath: PCUNICODE_STRING,
    DriverAttributes: PWDF_OBJECT_ATTRIBUTES,
    DriverConfig: PWDF_DRIVER_CONFIG,
    Driver: *mut WDFDRIVER,
) -> NTSTATUS {
    check_max(PASSIVE_LEVEL, "WdfDriverCreate");
    if DriverObject.is_null() || DriverConfig.is_null() {
        null_arg("DriverObject or DriverConfig");
    }
    // SAFETY: checked non-null; the driver passes its config.
    let config = unsafe { *DriverConfig };
    // The checks and their order are `WdfDriverCreate`'s (`fxdriverapi.cpp` l.127–256).
    if config.Size as usize != size_of::<crate::types::WDF_DRIVER_CONFIG>() {
        return STATUS_INFO_LENGTH_MISMATCH;
    }
    let valid = (_WDF_DRIVER_INIT_FLAGS::WdfDriverInitNonPnpDriver
        | _WDF_DRIVER_INIT_FLAGS::WdfDriverInitNoDispatchOverride
        | _WDF_DRIVER_INIT_FLAGS::WdfDriverInitCompanion)
        .cast_unsigned();
    if config.DriverInitFlags & !valid != 0 {
        return STATUS_INVALID_PARAMETER;
    }
    let a = attrs(DriverAttributes);
    if wdf(|w| Ok(w.driver.is_some())) {
        return STATUS_DRIVER_INTERNAL_ERROR;
    }
    let non_pnp = _WDF_DRIVER_INIT_FLAGS::WdfDriverInitNonPnpDriver.cast_unsigned();
    if config.DriverInitFlags & non_pnp != 0 && config.EvtDriverDeviceAdd.is_some() {
        return STATUS_INVALID_PARAMETER;
    }
    if let Err(st) = validate::object_attributes(
        a,
        opt::PARENT_NOT_ALLOWED | opt::EXECUTION_LEVEL_ALLOWED | opt::SYNCHRONIZATION_SCOPE_ALLOWED,
    ) {
        return st;
    }
    if let Err(st) = no_serialization(a) {
        return st;
    }
    let tag = if config.DriverPoolTag == 0 {
        // SAFETY: the loader's registry path (or NULL), passed on by the driver.
        super::default_pool_tag(&unsafe { service_name(RegistryPath) })
    } else {
        config.DriverPoolTag
    };
    let h = wdf(|w| {
        let h = w.insert(Kind::Driver(config), None, a);
        w.driver = Some(h);
        w.driver_pool_tag = tag;
        Ok(h)
    });
    // SAFETY: checked non-null; the loader's driver object, which outlives the driver.
    let object = unsafe { &mut *DriverObject };
    // `FxDriver::Initialize` (`fxdriver.cpp` l.455–512): unless the driver keeps its own
    // dispatch table, the framework takes the driver object's entry points. A non-PnP driver
    // without `EvtDriverUnload` cannot be unloaded (no `DriverUnload`) and has no AddDevice.
    if config.DriverInitFlags
        & _WDF_DRIVER_INIT_FLAGS::WdfDriverInitNoDispatchOverride.cast_unsigned()
        == 0
    {
        let pnp = config.DriverInitFlags & non_pnp == 0;
        object.DriverUnload = if pnp || config.EvtDriverUnload.is_some() {
            Some(super::host::framework_unload)
        } else {
            None
        };
        if !object.DriverExtension.is_null() {
            // SAFETY: the loader's extension of this driver object.
            unsafe {
                (*object.DriverExtension).AddDevice =
                    pnp.then_some(super::host::framework_add_device);
            }
        }
        for f in &mut object.MajorFunction {
            *f = Some(super::host::framework_dispatch);
        }
    }
    // `WdfDriverGlobals`: the framework's per-driver globals, which wdk-sys's method macro
    // passes to every method.
    // SAFETY: the loader passes the registry path on; NULL gives "".
    let service = unsafe { service_name(RegistryPath) };
    let mut name = [0 as crate::types::CHAR; 32];
    for (d, b) in name.iter_mut().zip(service.bytes().take(31)) {
        *d = b.cast_signed();
    }
    let globals = Box::leak(Box::new(WDF_DRIVER_GLOBALS {
        Driver: h as WDFDRIVER,
        DriverFlags: config.DriverInitFlags,
        DriverTag: tag,
        DriverName: name,
        DisplaceDriverUnload: 0,
    }));
    // SAFETY: a plain store of a pointer; see `WdfDriverGlobals` for what it means with more
    // than one machine in the process.
    unsafe { super::WdfDriverGlobals = core::ptr::from_mut(globals) };
    if !Driver.is_null() {
        // SAFETY: the driver passes a writable handle slot (or WDF_NO_HANDLE).
        unsafe { *Driver = h as WDFDRIVER };
    }
    STATUS_SUCCESS
}

/// The service name: the last component of the driver's registry path
/// (`\Registry\Machine\System\CurrentControlSet\Services\<name>`), or "" without one.
///
/// # Safety
/// `path` is NULL or a live `UNICODE_STRING` whose buffer holds `Length` bytes.
unsafe fn service_name(path: PCUNICODE_STRING) -> String {
    if path.is_null() {
        return String::new();
    }
    // SAFETY: the caller's contract.
    let u = unsafe { &*path };
    if u.Buffer.is_null() {
        return String::new();
    }
    // SAFETY: as above: `Length` bytes of UTF-16 at `Buffer`.
    let units = unsafe { core::slice::from_raw_parts(u.Buffer, usize::from(u.Length) / 2) };
    let full = String::from_utf16_lossy(units);
    full.rsplit('\\').next().unwrap_or_default().to_owned()
}

// ---- device init ----

fn with_init<R>(init: PWDFDEVICE_INIT, f: impl FnOnce(&mut super::DeviceInitData) -> R) -> R {
    wdf(|w| {
        let d = w.inits.get_mut(&(init as usize)).ok_or_else(|| {
            BugCheck::sim(
                wdf_rule::BAD_DEVICE_INIT,
                init as u64,
                0,
                "a WDFDEVICE_INIT that is not live (used after WdfDeviceCreate, or never given)",
            )
        })?;
        if d.created.is_some() {
            return Err(BugCheck::sim(
                wdf_rule::BAD_DEVICE_INIT,
                init as u64,
                1,
                "WDFDEVICE_INIT used after WdfDeviceCreate consumed it",
            ));
        }
        Ok(f(d))
    })
}

/// `VOID WdfDeviceInitSetPnpPowerEventCallbacks(PWDFDEVICE_INIT, PWDF_PNPPOWER_EVENT_CALLBACKS)`;
/// PASSIVE_LEVEL.
#[inline(never)]
pub unsafe fn WdfDeviceInitSetPnpPowerEventCallbacks(
    DeviceInit: PWDFDEVICE_INIT,
    PnpPowerEventCallbacks: PWDF_PNPPOWER_EVENT_CALLBACKS,
) {
    check_max(PASSIVE_LEVEL, "WdfDeviceInitSetPnpPowerEventCallbacks");
    if PnpPowerEventCallbacks.is_null() {
        null_arg("PnpPowerEventCallbacks");
    }
    // SAFETY: checked non-null.
    let cb = unsafe { *PnpPowerEventCallbacks };
    // `fxdeviceinitapi.cpp` l.586–640: a wrong size (or both usage-notification callbacks) is a
    // verifier break, and the callbacks are ignored.
    if cb.Size as usize != size_of::<crate::types::WDF_PNPPOWER_EVENT_CALLBACKS>() {
        halt(verifier_break(
            verifier_check::PNP_POWER_CALLBACKS_SIZE,
            "WdfDeviceInitSetPnpPowerEventCallbacks with a Size other than sizeof(WDF_PNPPOWER_EVENT_CALLBACKS)",
            "fxdeviceinitapi.cpp l.598-607 (FxVerifierDbgBreakPoint)",
        ));
    }
    if cb.EvtDeviceUsageNotification.is_some() && cb.EvtDeviceUsageNotificationEx.is_some() {
        halt(verifier_break(
            verifier_check::PNP_POWER_CALLBACKS_SIZE,
            "WdfDeviceInitSetPnpPowerEventCallbacks with both EvtDeviceUsageNotification and EvtDeviceUsageNotificationEx",
            "fxdeviceinitapi.cpp l.609-617 (FxVerifierDbgBreakPoint)",
        ));
    }
    with_init(DeviceInit, |d| d.pnp = cb);
}

/// `VOID WdfDeviceInitSetIoType(PWDFDEVICE_INIT, WDF_DEVICE_IO_TYPE)`; PASSIVE_LEVEL.
#[inline(never)]
pub unsafe fn WdfDeviceInitSetIoType(DeviceInit: PWDFDEVICE_INIT, IoType: WDF_DEVICE_IO_TYPE) {
    check_max(PASSIVE_LEVEL, "WdfDeviceInitSetIoType");
    with_init(DeviceInit, |d| d.io_type = IoType);
}

/// `VOID WdfDeviceInitSetFileObjectConfig(PWDFDEVICE_INIT, PWDF_FILEOBJECT_CONFIG,
/// PWDF_OBJECT_ATTRIBUTES)`; PASSIVE_LEVEL.
#[inline(never)]
pub unsafe fn WdfDeviceInitSetFileObjectConfig(
    DeviceInit: PWDFDEVICE_INIT,
    FileObjectConfig: PWDF_FILEOBJECT_CONFIG,
    FileObjectAttributes: PWDF_OBJECT_ATTRIBUTES,
) {
    const SOURCE: &str = "fxdeviceinitapi.cpp l.320-395 (FxVerifierDbgBreakPoint)";
    check_max(PASSIVE_LEVEL, "WdfDeviceInitSetFileObjectConfig");
    if FileObjectConfig.is_null() {
        null_arg("FileObjectConfig");
    }
    // SAFETY: checked non-null.
    let cfg = unsafe { *FileObjectConfig };
    // `fxdeviceinitapi.cpp` l.286–400: each refusal is a verifier break, the config ignored.
    if cfg.Size as usize != size_of::<crate::types::WDF_FILEOBJECT_CONFIG>() {
        halt(verifier_break(
            verifier_check::FILE_OBJECT_CONFIG_SIZE,
            "WdfDeviceInitSetFileObjectConfig with a Size other than sizeof(WDF_FILEOBJECT_CONFIG)",
            SOURCE,
        ));
    }
    if validate::object_attributes(
        attrs(FileObjectAttributes),
        opt::PARENT_NOT_ALLOWED | opt::EXECUTION_LEVEL_ALLOWED | opt::SYNCHRONIZATION_SCOPE_ALLOWED,
    )
    .is_err()
    {
        halt(verifier_break(
            verifier_check::FILE_OBJECT_ATTRIBUTES,
            "WdfDeviceInitSetFileObjectConfig with invalid file object attributes",
            SOURCE,
        ));
    }
    // `FxFileObjectClassNormalize` strips WdfFileObjectCanBeOptional.
    let class = cfg.FileObjectClass & !_WDF_FILEOBJECT_CLASS::WdfFileObjectCanBeOptional;
    if !(_WDF_TRI_STATE::WdfFalse..=_WDF_TRI_STATE::WdfUseDefault)
        .contains(&cfg.AutoForwardCleanupClose)
        || class == _WDF_FILEOBJECT_CLASS::WdfFileObjectInvalid
        || class > _WDF_FILEOBJECT_CLASS::WdfFileObjectWdfCannotUseFsContexts
    {
        halt(verifier_break(
            verifier_check::FILE_OBJECT_CONFIG_VALUE,
            "WdfDeviceInitSetFileObjectConfig with an AutoForwardCleanupClose or FileObjectClass out of range",
            SOURCE,
        ));
    }
    with_init(DeviceInit, |d| d.file = cfg);
}

/// `VOID WdfDeviceInitSetExclusive(PWDFDEVICE_INIT, BOOLEAN IsExclusive)`; PASSIVE_LEVEL.
#[inline(never)]
pub unsafe fn WdfDeviceInitSetExclusive(
    DeviceInit: PWDFDEVICE_INIT,
    IsExclusive: crate::types::BOOLEAN,
) {
    check_max(PASSIVE_LEVEL, "WdfDeviceInitSetExclusive");
    with_init(DeviceInit, |d| d.exclusive = IsExclusive != 0);
}

/// `VOID WdfDeviceInitSetCharacteristics(PWDFDEVICE_INIT, ULONG DeviceCharacteristics,
/// BOOLEAN OrInValues)`; PASSIVE_LEVEL.
#[inline(never)]
pub unsafe fn WdfDeviceInitSetCharacteristics(
    DeviceInit: PWDFDEVICE_INIT,
    DeviceCharacteristics: ULONG,
    OrInValues: crate::types::BOOLEAN,
) {
    check_max(PASSIVE_LEVEL, "WdfDeviceInitSetCharacteristics");
    with_init(DeviceInit, |d| {
        d.characteristics = if OrInValues != 0 {
            d.characteristics | DeviceCharacteristics
        } else {
            DeviceCharacteristics
        };
    });
}

/// `NTSTATUS WdfDeviceCreate(PWDFDEVICE_INIT *DeviceInit, PWDF_OBJECT_ATTRIBUTES,
/// WDFDEVICE *Device)`; PASSIVE_LEVEL. On success `*DeviceInit` becomes NULL.
#[must_use]
#[inline(never)]
pub unsafe fn WdfDeviceCreate(
    DeviceInit: *mut PWDFDEVICE_INIT,
    DeviceAttributes: PWDF_OBJECT_ATTRIBUTES,
    Device: *mut WDFDEVICE,
) -> NTSTATUS {
    check_max(PASSIVE_LEVEL, "WdfDeviceCreate");
    if DeviceInit.is_null() || Device.is_null() {
        null_arg("DeviceInit or Device");
    }
    // SAFETY: checked non-null; the driver passes the address of its PWDFDEVICE_INIT.
    let init = unsafe { *DeviceInit };
    if init.is_null() {
        null_arg("*DeviceInit");
    }
    let a = attrs(DeviceAttributes);
    // `fxdeviceapi.cpp` l.903–922.
    if let Err(st) = validate::object_attributes(
        a,
        opt::PARENT_NOT_ALLOWED | opt::EXECUTION_LEVEL_ALLOWED | opt::SYNCHRONIZATION_SCOPE_ALLOWED,
    ) {
        return st;
    }
    if let Err(st) = no_serialization(a) {
        return st;
    }
    let used = wdf(|w| {
        Ok(w.inits
            .get(&(init as usize))
            .is_some_and(|d| d.created.is_some()))
    });
    if used {
        return STATUS_INVALID_DEVICE_STATE;
    }
    let h = wdf(|w| {
        let driver = w.driver.ok_or_else(|| {
            BugCheck::sim(
                wdf_rule::BAD_DEVICE_INIT,
                0,
                2,
                "WdfDeviceCreate before WdfDriverCreate",
            )
        })?;
        let d = w.inits.get_mut(&(init as usize)).ok_or_else(|| {
            BugCheck::sim(
                wdf_rule::BAD_DEVICE_INIT,
                init as u64,
                0,
                "WdfDeviceCreate with a dead WDFDEVICE_INIT",
            )
        })?;
        let data = super::DeviceData {
            pnp: d.pnp,
            file: d.file,
            pdo: d.pdo,
            fdo: Box::new(crate::typed::NoDebug(crate::types::_DEVICE_OBJECT {
                Type: 3,
                Size: size_of::<crate::types::_DEVICE_OBJECT>() as crate::types::USHORT,
                AttachedDevice: d.pdo as PDEVICE_OBJECT,
                Characteristics: d.characteristics,
                DeviceType: FILE_DEVICE_UNKNOWN,
                StackSize: 2,
                ..Default::default()
            })),
            slot: d.slot,
            interfaces: Vec::new(),
            default_queue: None,
            ioctl_queue: None,
            read_queue: None,
            write_queue: None,
            io_type: d.io_type,
            request_attributes: d.request_attributes,
            queues: Vec::new(),
            interrupts: Vec::new(),
            in_d0: false,
            self_managed_io: false,
            failed: false,
            res_lists: None,
        };
        let h = w.insert(Kind::Device(Box::new(data)), Some(driver), a);
        if let Some(d) = w.inits.get_mut(&(init as usize)) {
            d.created = Some(h);
        }
        Ok(h)
    });
    // SAFETY: as above.
    unsafe { *DeviceInit = null_mut() };
    // SAFETY: as above.
    unsafe { *Device = h as WDFDEVICE };
    STATUS_SUCCESS
}

/// `NTSTATUS WdfDeviceCreateDeviceInterface(WDFDEVICE, const GUID *InterfaceClassGUID,
/// PCUNICODE_STRING ReferenceString)`; PASSIVE_LEVEL.
#[must_use]
#[inline(never)]
pub unsafe fn WdfDeviceCreateDeviceInterface(
    Device: WDFDEVICE,
    InterfaceClassGUID: *const GUID,
    _ReferenceString: PCUNICODE_STRING,
) -> NTSTATUS {
    check_max(PASSIVE_LEVEL, "WdfDeviceCreateDeviceInterface");
    if InterfaceClassGUID.is_null() {
        null_arg("InterfaceClassGUID");
    }
    // SAFETY: checked non-null.
    let g = unsafe { *InterfaceClassGUID };
    wdf(|w| {
        w.device(Device as usize)?.interfaces.push(g);
        Ok(())
    });
    STATUS_SUCCESS
}

/// `PDEVICE_OBJECT WdfDeviceWdmGetPhysicalDevice(WDFDEVICE)`; `<= DISPATCH_LEVEL`.
#[must_use]
#[inline(never)]
pub unsafe fn WdfDeviceWdmGetPhysicalDevice(Device: WDFDEVICE) -> PDEVICE_OBJECT {
    check_max(DISPATCH_LEVEL, "WdfDeviceWdmGetPhysicalDevice");
    wdf(|w| Ok(w.device(Device as usize)?.pdo as PDEVICE_OBJECT))
}

/// `PDEVICE_OBJECT WdfDeviceWdmGetDeviceObject(WDFDEVICE)`; `<= DISPATCH_LEVEL`.
#[must_use]
#[inline(never)]
pub unsafe fn WdfDeviceWdmGetDeviceObject(Device: WDFDEVICE) -> PDEVICE_OBJECT {
    check_max(DISPATCH_LEVEL, "WdfDeviceWdmGetDeviceObject");
    wdf(|w| {
        let d = w.device(Device as usize)?;
        Ok(core::ptr::from_mut(&mut d.fdo.0))
    })
}

/// `VOID WdfDeviceSetFailed(WDFDEVICE, WDF_DEVICE_FAILED_ACTION)`; `<= DISPATCH_LEVEL`.
#[inline(never)]
pub unsafe fn WdfDeviceSetFailed(Device: WDFDEVICE, _FailedAction: WDF_DEVICE_FAILED_ACTION) {
    check_max(DISPATCH_LEVEL, "WdfDeviceSetFailed");
    wdf(|w| {
        w.device(Device as usize)?.failed = true;
        Ok(())
    });
}

// ---- resources ----

fn res_list(w: &WdfState, h: usize) -> Result<&[CM_PARTIAL_RESOURCE_DESCRIPTOR], BugCheck> {
    match &w.get(h, "WDFCMRESLIST")?.kind {
        Kind::ResList(l) => Ok(&l.0),
        k => Err(super::wrong_type(h, k.name(), "WDFCMRESLIST")),
    }
}

/// `ULONG WdfCmResourceListGetCount(WDFCMRESLIST)`; `<= DISPATCH_LEVEL`.
#[must_use]
#[inline(never)]
pub unsafe fn WdfCmResourceListGetCount(List: WDFCMRESLIST) -> ULONG {
    check_max(DISPATCH_LEVEL, "WdfCmResourceListGetCount");
    wdf(|w| Ok(res_list(w, List as usize)?.len() as ULONG))
}

/// `PCM_PARTIAL_RESOURCE_DESCRIPTOR WdfCmResourceListGetDescriptor(WDFCMRESLIST, ULONG Index)`;
/// `<= DISPATCH_LEVEL`. NULL for an index beyond the list.
#[must_use]
#[inline(never)]
pub unsafe fn WdfCmResourceListGetDescriptor(
    List: WDFCMRESLIST,
    Index: ULONG,
) -> PCM_PARTIAL_RESOURCE_DESCRIPTOR {
    check_max(DISPATCH_LEVEL, "WdfCmResourceListGetDescriptor");
    wdf(|w| {
        let l = res_list(w, List as usize)?;
        Ok(l.get(Index as usize)
            .map_or(null_mut(), |d| core::ptr::from_ref(d).cast_mut()))
    })
}

// ---- objects ----

/// `VOID WdfObjectDelete(WDFOBJECT)`; `<= DISPATCH_LEVEL`. Deletes the object and its
/// children: cleanup callbacks children first, then destroy callbacks. An object the driver
/// still references gets its cleanup now and its destroy at the last dereference.
#[inline(never)]
pub unsafe fn WdfObjectDelete(Object: WDFOBJECT) {
    check_max(DISPATCH_LEVEL, "WdfObjectDelete");
    let h = Object as usize;
    let (objs, zombie_cleanup) = wdf(|w| {
        let o = w.get_mut(h, "WDFOBJECT")?;
        if matches!(
            o.kind,
            Kind::Device(_) | Kind::Driver(_) | Kind::File(_) | Kind::Interrupt(_)
        ) {
            // `IsNoDeleteDDI` (fxobjectapi.cpp, WdfObjectDelete): the framework breaks and
            // deletes nothing.
            return Err(verifier_break(
                verifier_check::NO_DELETE_DDI,
                "WdfObjectDelete of an object the driver may not delete (driver, device, file object, interrupt)",
                "fxobjectapi.cpp WdfObjectDelete (IsNoDeleteDDI, FxVerifierDbgBreakPoint)",
            ));
        }
        if let Kind::Memory(m) = &o.kind
            && m.request != 0
        {
            return Err(verifier_break(
                verifier_check::REQUEST_MEMORY_DELETE,
                "WdfObjectDelete of a request's memory object (the request's completion releases it)",
                "fxrequestapi.cpp WdfRequestRetrieveInputMemory: released when the request completes",
            ));
        }
        if matches!(o.kind, Kind::Request(_)) {
            // Requests are deleted by completing them.
            return Err(BugCheck::new(
                WDF_VIOLATION,
                [0x7, h as u64, 0, 0],
                "WdfObjectDelete on an object the framework deletes itself",
                "Bug check 0x10D WDF_VIOLATION (framework-owned object deleted by the driver)",
            ));
        }
        if o.refs > 0 {
            if o.zombie {
                return Ok((Vec::new(), None));
            }
            o.zombie = true;
            return Ok((Vec::new(), o.cleanup));
        }
        Ok((w.detach_tree(h), None))
    });
    if let Some(f) = zombie_cleanup {
        // SAFETY: the driver's cleanup callback for its object.
        unsafe { f(Object) };
    }
    super::run_cleanup(objs);
}

/// `VOID WdfObjectReferenceActual(WDFOBJECT, PVOID Tag, LONG Line, PCHAR File)` (what the
/// `WdfObjectReference` macro calls); `<= DISPATCH_LEVEL`.
#[inline(never)]
pub unsafe fn WdfObjectReferenceActual(
    Handle: WDFOBJECT,
    _Tag: PVOID,
    _Line: crate::types::LONG,
    _File: PCCH,
) {
    check_max(DISPATCH_LEVEL, "WdfObjectReferenceActual");
    wdf(|w| {
        w.get_mut(Handle as usize, "WDFOBJECT")?.refs += 1;
        Ok(())
    });
}

/// `VOID WdfObjectDereferenceActual(WDFOBJECT, PVOID Tag, LONG Line, PCHAR File)`;
/// `<= DISPATCH_LEVEL`. The last dereference of a deleted object destroys it.
#[inline(never)]
pub unsafe fn WdfObjectDereferenceActual(
    Handle: WDFOBJECT,
    _Tag: PVOID,
    _Line: crate::types::LONG,
    _File: PCCH,
) {
    check_max(DISPATCH_LEVEL, "WdfObjectDereferenceActual");
    let h = Handle as usize;
    let objs = wdf(|w| {
        let o = w.get_mut(h, "WDFOBJECT")?;
        if o.refs == 0 {
            return Err(BugCheck::new(
                WDF_VIOLATION,
                [0x7, h as u64, 0, 0],
                "WdfObjectDereference without a matching reference",
                "Bug check 0x10D WDF_VIOLATION, parameter 1 = 0x7",
            ));
        }
        o.refs -= 1;
        if o.refs == 0 && o.zombie {
            let mut objs = w.detach_tree(h);
            // Its cleanup already ran at WdfObjectDelete.
            if let Some((_, o)) = objs.iter_mut().find(|(x, _)| *x == h) {
                o.cleanup = None;
            }
            return Ok(objs);
        }
        Ok(Vec::new())
    });
    super::run_cleanup(objs);
}

/// `PVOID WdfObjectGetTypedContextWorker(WDFOBJECT, PCWDF_OBJECT_CONTEXT_TYPE_INFO)`; any IRQL.
/// NULL when the object has no context of that type.
#[must_use]
#[inline(never)]
pub unsafe fn WdfObjectGetTypedContextWorker(
    Handle: WDFOBJECT,
    TypeInfo: PCWDF_OBJECT_CONTEXT_TYPE_INFO,
) -> PVOID {
    if TypeInfo.is_null() {
        null_arg("TypeInfo");
    }
    // SAFETY: checked non-null; a static type info.
    let info = unsafe { &*TypeInfo };
    let unique = if info.UniqueType.is_null() {
        TypeInfo as usize
    } else {
        info.UniqueType as usize
    };
    wdf(|w| {
        let o = w.get_mut(Handle as usize, "WDFOBJECT")?;
        Ok(o.contexts
            .iter_mut()
            .find(|c| c.unique == unique)
            .map_or(null_mut(), super::ObjContext::address))
    })
}
