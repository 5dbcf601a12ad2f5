//! The WDF methods, mirrored from `wdf*.h` (KMDF 1.33) without the `DriverGlobals` parameter,
//! as `call_unsafe_wdf_function_binding!` passes them. Each cites its C prototype and IRQL.
//!
//! # Safety
//! Every method is an `unsafe fn`: pointer arguments must be valid as the WDK documents for the
//! method, and the caller must run on a CPU of a [`crate::Machine`].

#![expect(
    clippy::missing_safety_doc,
    reason = "the module documents the one safety contract every WDF method shares"
)]
#![expect(non_snake_case, reason = "mirrors the C method and parameter names")]

use core::ptr::null_mut;

use super::status::{STATUS_WDF_NO_CALLBACK, STATUS_WDF_PARENT_NOT_SPECIFIED};
#[allow(
    clippy::wildcard_imports,
    reason = "the methods use the mirrored surface wholesale"
)]
use super::types::*;
use super::validate::{self, opt, verifier_break, verifier_check};
use super::{Kind, ReqKind, ReqState, SpinLockData, WDF_VIOLATION, WdfState, wdf_rule};
use crate::bugcheck::BugCheck;
use crate::heap::{self, Context};
use crate::machine::{halt, irql, set_irql, with_state};
use crate::ntddk::check_max;
use crate::typed::{DISPATCH_LEVEL, PASSIVE_LEVEL};
use crate::types::{
    BOOLEAN, KIRQL, LONGLONG, PDEVICE_OBJECT, PDRIVER_OBJECT, PMDL, PVOID, ULONG, ULONG_PTR,
};
use crate::{
    NTSTATUS, STATUS_BUFFER_TOO_SMALL, STATUS_CANCELLED, STATUS_DRIVER_INTERNAL_ERROR,
    STATUS_INFO_LENGTH_MISMATCH, STATUS_INVALID_DEVICE_REQUEST, STATUS_INVALID_DEVICE_STATE,
    STATUS_INVALID_PARAMETER, STATUS_NOT_SUPPORTED, STATUS_SUCCESS,
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
    let (violation, allocations) = heap::leave_callback(saved);
    let after = irql();
    if allocations > 0 {
        crate::machine::current()
            .dpc_allocations
            .fetch_add(allocations, core::sync::atomic::Ordering::Relaxed);
    }
    if let Some((p1, at, bytes)) = violation {
        let verifier = crate::machine::current().config.profile.verifier;
        halt(if verifier {
            BugCheck::new(
                crate::bugcheck::DRIVER_VERIFIER_DETECTED_VIOLATION,
                // NonPagedPoolNx (0x200): what wdk-alloc's ExAllocatePool2(POOL_FLAG_NON_PAGED) is.
                [p1, u64::from(at), 0x200, bytes as u64],
                if p1 == 0x02 {
                    "the driver allocated non-paged pool above DISPATCH_LEVEL"
                } else {
                    "the driver freed non-paged pool above DISPATCH_LEVEL"
                },
                "Bug check 0xC4, parameter 1 = 0x02 / 0x12 (docs/sim-fidelity.md)",
            )
        } else {
            BugCheck::new(
                crate::bugcheck::IRQL_NOT_LESS_OR_EQUAL,
                [0, u64::from(at), u64::from(DISPATCH_LEVEL), 0],
                "pool used above DISPATCH_LEVEL",
                "windows-dma.md §2.1",
            )
        });
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
pub unsafe fn WdfDriverCreate(
    DriverObject: PDRIVER_OBJECT,
    _RegistryPath: PCUNICODE_STRING,
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
    let h = wdf(|w| {
        let h = w.insert(Kind::Driver(config), None, a);
        w.driver = Some(h);
        Ok(h)
    });
    if !Driver.is_null() {
        // SAFETY: the driver passes a writable handle slot (or WDF_NO_HANDLE).
        unsafe { *Driver = h as WDFDRIVER };
    }
    STATUS_SUCCESS
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
pub unsafe fn WdfDeviceInitSetIoType(DeviceInit: PWDFDEVICE_INIT, IoType: WDF_DEVICE_IO_TYPE) {
    check_max(PASSIVE_LEVEL, "WdfDeviceInitSetIoType");
    with_init(DeviceInit, |d| d.io_type = IoType);
}

/// `VOID WdfDeviceInitSetFileObjectConfig(PWDFDEVICE_INIT, PWDF_FILEOBJECT_CONFIG,
/// PWDF_OBJECT_ATTRIBUTES)`; PASSIVE_LEVEL.
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
pub unsafe fn WdfDeviceInitSetExclusive(
    DeviceInit: PWDFDEVICE_INIT,
    IsExclusive: crate::types::BOOLEAN,
) {
    check_max(PASSIVE_LEVEL, "WdfDeviceInitSetExclusive");
    with_init(DeviceInit, |d| d.exclusive = IsExclusive != 0);
}

/// `VOID WdfDeviceInitSetCharacteristics(PWDFDEVICE_INIT, ULONG DeviceCharacteristics,
/// BOOLEAN OrInValues)`; PASSIVE_LEVEL.
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
            queues: Vec::new(),
            interrupts: Vec::new(),
            in_d0: false,
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
pub unsafe fn WdfDeviceWdmGetPhysicalDevice(Device: WDFDEVICE) -> PDEVICE_OBJECT {
    check_max(DISPATCH_LEVEL, "WdfDeviceWdmGetPhysicalDevice");
    wdf(|w| Ok(w.device(Device as usize)?.pdo as PDEVICE_OBJECT))
}

/// `PDEVICE_OBJECT WdfDeviceWdmGetDeviceObject(WDFDEVICE)`; `<= DISPATCH_LEVEL`.
#[must_use]
pub unsafe fn WdfDeviceWdmGetDeviceObject(Device: WDFDEVICE) -> PDEVICE_OBJECT {
    check_max(DISPATCH_LEVEL, "WdfDeviceWdmGetDeviceObject");
    wdf(|w| {
        let d = w.device(Device as usize)?;
        Ok(core::ptr::from_mut(&mut d.fdo.0))
    })
}

/// `VOID WdfDeviceSetFailed(WDFDEVICE, WDF_DEVICE_FAILED_ACTION)`; `<= DISPATCH_LEVEL`.
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
pub unsafe fn WdfCmResourceListGetCount(List: WDFCMRESLIST) -> ULONG {
    check_max(DISPATCH_LEVEL, "WdfCmResourceListGetCount");
    wdf(|w| Ok(res_list(w, List as usize)?.len() as ULONG))
}

/// `PCM_PARTIAL_RESOURCE_DESCRIPTOR WdfCmResourceListGetDescriptor(WDFCMRESLIST, ULONG Index)`;
/// `<= DISPATCH_LEVEL`. NULL for an index beyond the list.
#[must_use]
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

// ---- interrupts ----

/// `NTSTATUS WdfInterruptCreate(WDFDEVICE, PWDF_INTERRUPT_CONFIG, PWDF_OBJECT_ATTRIBUTES,
/// WDFINTERRUPT *Interrupt)`; PASSIVE_LEVEL (in `EvtDriverDeviceAdd` or
/// `EvtDevicePrepareHardware`). Interrupts take message numbers in creation order.
#[must_use]
pub unsafe fn WdfInterruptCreate(
    Device: WDFDEVICE,
    Configuration: PWDF_INTERRUPT_CONFIG,
    Attributes: PWDF_OBJECT_ATTRIBUTES,
    Interrupt: *mut WDFINTERRUPT,
) -> NTSTATUS {
    check_max(PASSIVE_LEVEL, "WdfInterruptCreate");
    if Configuration.is_null() || Interrupt.is_null() {
        null_arg("Configuration or Interrupt");
    }
    // SAFETY: checked non-null.
    let config = unsafe { *Configuration };
    // `fxinterruptapi.cpp` l.111–352, in its order.
    if config.Size as usize != size_of::<crate::types::WDF_INTERRUPT_CONFIG>() {
        return STATUS_INFO_LENGTH_MISMATCH;
    }
    if config.EvtInterruptIsr.is_none() {
        return STATUS_INVALID_PARAMETER;
    }
    let a = attrs(Attributes);
    let flags = if config.AutomaticSerialization == 0 {
        opt::PARENT_NOT_ALLOWED
    } else {
        opt::NONE
    };
    if let Err(st) = validate::object_attributes(a, flags) {
        return st;
    }
    if config.EvtInterruptDpc.is_some() && config.EvtInterruptWorkItem.is_some() {
        return STATUS_INVALID_PARAMETER;
    }
    if config.PassiveHandling == 0 && (!config.WaitLock.is_null() || config.CanWakeDevice != 0) {
        return STATUS_INVALID_PARAMETER;
    }
    let h = wdf(|w| {
        let dev = Device as usize;
        let message = w.device(dev)?.interrupts.len() as u32;
        let data = super::InterruptData {
            config,
            device: dev,
            lock: std::sync::Arc::default(),
            message,
            irql: SIM_DIRQL,
            connected: false,
            dpc_queued: false,
            held_irql: 0,
        };
        let h = w.insert(Kind::Interrupt(Box::new(data)), Some(parent_of(a, dev)), a);
        w.device(dev)?.interrupts.push(h);
        Ok(h)
    });
    // SAFETY: checked non-null.
    unsafe { *Interrupt = h as WDFINTERRUPT };
    STATUS_SUCCESS
}

/// `BOOLEAN WdfInterruptQueueDpcForIsr(WDFINTERRUPT)`; any IRQL. FALSE when already queued.
#[must_use]
pub unsafe fn WdfInterruptQueueDpcForIsr(Interrupt: WDFINTERRUPT) -> crate::types::BOOLEAN {
    let (queued, tx) = wdf(|w| {
        let i = w.interrupt(Interrupt as usize)?;
        if i.dpc_queued {
            return Ok((false, None));
        }
        i.dpc_queued = true;
        w.dpcs.push_back(Interrupt as usize);
        Ok((true, w.irq_tx.clone()))
    });
    if let Some(tx) = tx {
        let _ = tx.send(super::host::IrqEvent::Dpc);
    }
    u8::from(queued)
}

/// An interrupt's lock word (a reference of its own) and DIRQL.
type InterruptLock = (std::sync::Arc<std::sync::atomic::AtomicU64>, KIRQL);

fn interrupt_lock(h: usize) -> InterruptLock {
    wdf(|w| {
        let i = w.interrupt(h)?;
        Ok((std::sync::Arc::clone(&i.lock), i.irql))
    })
}

/// Acquires an interrupt's lock at its DIRQL; returns the previous IRQL.
pub(crate) fn acquire_interrupt_lock(h: usize) -> KIRQL {
    lock_interrupt(&interrupt_lock(h))
}

/// The interrupt CPU's way in: the lock of interrupt `h` if the object still exists, taken
/// at its DIRQL, with the previous IRQL. The lock word stays alive for the caller even if the
/// device's removal deletes the object meanwhile (removal disconnects first, which waits for
/// the lock, so a holder never runs against a deleted interrupt).
pub(crate) fn try_lock_interrupt(h: usize) -> Option<(InterruptLock, KIRQL)> {
    let lock = with_state(|st, _| {
        Ok(st
            .wdf
            .interrupt(h)
            .ok()
            .map(|i| (std::sync::Arc::clone(&i.lock), i.irql)))
    })?;
    let old = lock_interrupt(&lock);
    Some((lock, old))
}

/// Releases a lock taken by [`try_lock_interrupt`] and returns to `old`.
pub(crate) fn unlock_interrupt(lock: &InterruptLock, old: KIRQL) {
    crate::ntddk::spin_release(lock.0.as_ptr());
    set_irql(old);
}

fn lock_interrupt((lock, dirql): &InterruptLock) -> KIRQL {
    let dirql = *dirql;
    let old = irql();
    if old > dirql {
        halt(BugCheck::new(
            crate::bugcheck::IRQL_NOT_LESS_OR_EQUAL,
            [0, u64::from(old), u64::from(dirql), 0],
            "interrupt lock acquired above the interrupt's DIRQL",
            "wdfinterrupt.h: WdfInterruptAcquireLock, IRQL <= DIRQL",
        ));
    }
    set_irql(dirql);
    crate::ntddk::spin_acquire(lock.as_ptr());
    old
}

/// Releases an interrupt's lock and returns to `old`.
pub(crate) fn release_interrupt_lock(h: usize, old: KIRQL) {
    unlock_interrupt(&interrupt_lock(h), old);
}

/// `VOID WdfInterruptAcquireLock(WDFINTERRUPT)`; `<= DIRQL`, raises to DIRQL.
pub unsafe fn WdfInterruptAcquireLock(Interrupt: WDFINTERRUPT) {
    let old = acquire_interrupt_lock(Interrupt as usize);
    wdf(|w| {
        w.interrupt(Interrupt as usize)?.held_irql = old;
        Ok(())
    });
}

/// `VOID WdfInterruptReleaseLock(WDFINTERRUPT)`; at DIRQL, returns to the acquiring IRQL.
pub unsafe fn WdfInterruptReleaseLock(Interrupt: WDFINTERRUPT) {
    let old = wdf(|w| Ok(w.interrupt(Interrupt as usize)?.held_irql));
    release_interrupt_lock(Interrupt as usize, old);
}

/// `BOOLEAN WdfInterruptSynchronize(WDFINTERRUPT, PFN_WDF_INTERRUPT_SYNCHRONIZE, WDFCONTEXT)`;
/// `<= DISPATCH_LEVEL`: runs the callback at DIRQL under the interrupt's lock.
#[must_use]
pub unsafe fn WdfInterruptSynchronize(
    Interrupt: WDFINTERRUPT,
    Callback: PFN_WDF_INTERRUPT_SYNCHRONIZE,
    Context: WDFCONTEXT,
) -> crate::types::BOOLEAN {
    check_max(DISPATCH_LEVEL, "WdfInterruptSynchronize");
    let Some(cb) = Callback else {
        null_arg("Callback")
    };
    let old = acquire_interrupt_lock(Interrupt as usize);
    // SAFETY: the driver's synchronize callback with its own context, at DIRQL under the lock.
    let r = callback(|| unsafe { cb(Interrupt, Context) });
    release_interrupt_lock(Interrupt as usize, old);
    r
}

/// `WDFDEVICE WdfInterruptGetDevice(WDFINTERRUPT)`; `<= DIRQL`.
#[must_use]
pub unsafe fn WdfInterruptGetDevice(Interrupt: WDFINTERRUPT) -> WDFDEVICE {
    wdf(|w| Ok(w.interrupt(Interrupt as usize)?.device as WDFDEVICE))
}

// ---- spin locks ----

/// `NTSTATUS WdfSpinLockCreate(PWDF_OBJECT_ATTRIBUTES, WDFSPINLOCK *SpinLock)`;
/// `<= DISPATCH_LEVEL`.
#[must_use]
pub unsafe fn WdfSpinLockCreate(
    SpinLockAttributes: PWDF_OBJECT_ATTRIBUTES,
    SpinLock: *mut WDFSPINLOCK,
) -> NTSTATUS {
    check_max(DISPATCH_LEVEL, "WdfSpinLockCreate");
    if SpinLock.is_null() {
        null_arg("SpinLock");
    }
    let a = attrs(SpinLockAttributes);
    // `fxspinlockapi.cpp` l.75.
    if let Err(st) = validate::object_attributes(a, opt::NONE) {
        return st;
    }
    let h = wdf(|w| {
        let parent = parent_of(a, w.driver.unwrap_or(0));
        Ok(w.insert(
            Kind::SpinLock(Box::new(SpinLockData {
                lock: Box::new(0),
                old_irql: 0,
            })),
            (parent != 0).then_some(parent),
            a,
        ))
    });
    // SAFETY: checked non-null.
    unsafe { *SpinLock = h as WDFSPINLOCK };
    STATUS_SUCCESS
}

fn spin(h: usize) -> *mut crate::types::KSPIN_LOCK {
    wdf(|w| match &mut w.get_mut(h, "WDFSPINLOCK")?.kind {
        Kind::SpinLock(s) => Ok(core::ptr::from_mut(&mut *s.lock)),
        k => Err(super::wrong_type(h, k.name(), "WDFSPINLOCK")),
    })
}

/// `VOID WdfSpinLockAcquire(WDFSPINLOCK)`; `<= DISPATCH_LEVEL`, raises to `DISPATCH_LEVEL`.
pub unsafe fn WdfSpinLockAcquire(SpinLock: WDFSPINLOCK) {
    check_max(DISPATCH_LEVEL, "WdfSpinLockAcquire");
    let lock = spin(SpinLock as usize);
    let old = irql();
    set_irql(DISPATCH_LEVEL);
    crate::ntddk::spin_acquire(lock);
    wdf(|w| {
        if let Kind::SpinLock(s) = &mut w.get_mut(SpinLock as usize, "WDFSPINLOCK")?.kind {
            s.old_irql = old;
        }
        Ok(())
    });
}

/// `VOID WdfSpinLockRelease(WDFSPINLOCK)`; at `DISPATCH_LEVEL`, returns to the acquiring IRQL.
pub unsafe fn WdfSpinLockRelease(SpinLock: WDFSPINLOCK) {
    let lock = spin(SpinLock as usize);
    let old = wdf(|w| match &w.get(SpinLock as usize, "WDFSPINLOCK")?.kind {
        Kind::SpinLock(s) => Ok(s.old_irql),
        _ => Ok(DISPATCH_LEVEL),
    });
    crate::ntddk::spin_release(lock);
    set_irql(old);
}

// ---- work items ----

/// `NTSTATUS WdfWorkItemCreate(PWDF_WORKITEM_CONFIG, PWDF_OBJECT_ATTRIBUTES, WDFWORKITEM *)`;
/// `<= DISPATCH_LEVEL`. The attributes must name a parent (a device, or an object under one).
#[must_use]
pub unsafe fn WdfWorkItemCreate(
    Config: PWDF_WORKITEM_CONFIG,
    Attributes: PWDF_OBJECT_ATTRIBUTES,
    WorkItem: *mut WDFWORKITEM,
) -> NTSTATUS {
    check_max(DISPATCH_LEVEL, "WdfWorkItemCreate");
    if Config.is_null() {
        null_arg("Config");
    }
    if WorkItem.is_null() {
        null_arg("WorkItem");
    }
    // SAFETY: checked non-null; the driver passes a live config.
    let config = unsafe { *Config };
    let a = attrs(Attributes);
    // `fxworkitemapi.cpp` l.95–136, in its order; then `FxWorkItem::Initialize`.
    if let Err(st) = parent_handle(a) {
        return st;
    }
    if config.Size as usize != size_of::<crate::types::WDF_WORKITEM_CONFIG>() {
        return STATUS_INFO_LENGTH_MISMATCH;
    }
    if config.EvtWorkItemFunc.is_none() {
        return STATUS_INVALID_PARAMETER;
    }
    if let Err(st) = validate::object_attributes(a, opt::NONE) {
        return st;
    }
    let parent = parent_of(a, 0);
    let h = wdf(|w| {
        w.get(parent, "WDFOBJECT")?;
        Ok(w.insert(
            Kind::WorkItem(Box::new(super::WorkItemData {
                config,
                queued: false,
                running: false,
            })),
            Some(parent),
            a,
        ))
    });
    // SAFETY: checked non-null.
    unsafe { *WorkItem = h as WDFWORKITEM };
    STATUS_SUCCESS
}

fn work_item(w: &mut WdfState, h: usize) -> Result<&mut super::WorkItemData, BugCheck> {
    match &mut w.get_mut(h, "WDFWORKITEM")?.kind {
        Kind::WorkItem(d) => Ok(d),
        k => Err(super::wrong_type(h, k.name(), "WDFWORKITEM")),
    }
}

/// `VOID WdfWorkItemEnqueue(WDFWORKITEM)`; `<= DISPATCH_LEVEL`. Ignored while the item is
/// already queued (not yet started).
pub unsafe fn WdfWorkItemEnqueue(WorkItem: WDFWORKITEM) {
    check_max(DISPATCH_LEVEL, "WdfWorkItemEnqueue");
    let tx = wdf(|w| {
        let d = work_item(w, WorkItem as usize)?;
        if d.queued {
            return Ok(None);
        }
        d.queued = true;
        w.work_items.push_back(WorkItem as usize);
        Ok(w.irq_tx.clone())
    });
    if let Some(tx) = tx {
        let _ = tx.send(super::host::IrqEvent::Dpc);
    }
}

/// `VOID WdfWorkItemFlush(WDFWORKITEM)`; `PASSIVE_LEVEL`. Returns when the item is neither
/// queued nor running; a queued item runs now, on the caller's thread.
pub unsafe fn WdfWorkItemFlush(WorkItem: WDFWORKITEM) {
    check_max(PASSIVE_LEVEL, "WdfWorkItemFlush");
    let h = WorkItem as usize;
    loop {
        let (queued, running) = wdf(|w| {
            let d = work_item(w, h)?;
            Ok((d.queued, d.running))
        });
        if queued {
            super::host::run_work_item(h);
        } else if running {
            std::thread::sleep(std::time::Duration::from_millis(1));
        } else {
            return;
        }
    }
}

/// `WDFOBJECT WdfWorkItemGetParentObject(WDFWORKITEM)`; `<= DISPATCH_LEVEL`.
#[must_use]
pub unsafe fn WdfWorkItemGetParentObject(WorkItem: WDFWORKITEM) -> WDFOBJECT {
    check_max(DISPATCH_LEVEL, "WdfWorkItemGetParentObject");
    wdf(|w| {
        work_item(w, WorkItem as usize)?;
        Ok(w.get(WorkItem as usize, "WDFWORKITEM")?.parent.unwrap_or(0) as WDFOBJECT)
    })
}

// ---- timers ----

/// `NTSTATUS WdfTimerCreate(PWDF_TIMER_CONFIG, PWDF_OBJECT_ATTRIBUTES, WDFTIMER *)`;
/// `<= DISPATCH_LEVEL`. The attributes must name a parent (a device, a queue, or an object under
/// one). The callback runs at `DISPATCH_LEVEL`; passive-level timers (`ExecutionLevel`) and
/// automatic serialization are not modelled (`docs/sim-fidelity.md` §8).
#[must_use]
pub unsafe fn WdfTimerCreate(
    Config: PWDF_TIMER_CONFIG,
    Attributes: PWDF_OBJECT_ATTRIBUTES,
    Timer: *mut WDFTIMER,
) -> NTSTATUS {
    check_max(DISPATCH_LEVEL, "WdfTimerCreate");
    if Config.is_null() {
        null_arg("Config");
    }
    if Timer.is_null() {
        null_arg("Timer");
    }
    // SAFETY: checked non-null; the driver passes a live config.
    let config = unsafe { *Config };
    let a = attrs(Attributes);
    // `fxtimerapi.cpp` l.89–194, in its order.
    if let Err(st) = parent_handle(a) {
        return st;
    }
    if config.Size as usize != size_of::<crate::types::WDF_TIMER_CONFIG>() {
        return STATUS_INFO_LENGTH_MISMATCH;
    }
    if config.Period > i32::MAX.cast_unsigned()
        || (config.UseHighResolutionTimer != 0 && config.TolerableDelay > 0)
    {
        return STATUS_INVALID_PARAMETER;
    }
    if let Err(st) = validate::object_attributes(a, opt::EXECUTION_LEVEL_ALLOWED) {
        return st;
    }
    if config.EvtTimerFunc.is_none() {
        // FxTimer::Initialize stores the callback unchecked; a NULL one would be called.
        null_arg("Config->EvtTimerFunc");
    }
    // Passive-level timers are not modelled: refused, where Windows would run the callback
    // on a work item (docs/sim-fidelity.md §8).
    if a.is_some_and(|a| a.ExecutionLevel == _WDF_EXECUTION_LEVEL::WdfExecutionLevelPassive) {
        return STATUS_NOT_SUPPORTED;
    }
    let parent = parent_of(a, 0);
    let h = wdf(|w| {
        w.get(parent, "WDFOBJECT")?;
        Ok(w.insert(
            Kind::Timer(Box::new(super::TimerData {
                config,
                due: None,
                running: false,
            })),
            Some(parent),
            a,
        ))
    });
    // SAFETY: checked non-null.
    unsafe { *Timer = h as WDFTIMER };
    STATUS_SUCCESS
}

fn timer(w: &mut WdfState, h: usize) -> Result<&mut super::TimerData, BugCheck> {
    match &mut w.get_mut(h, "WDFTIMER")?.kind {
        Kind::Timer(d) => Ok(d),
        k => Err(super::wrong_type(h, k.name(), "WDFTIMER")),
    }
}

/// `BOOLEAN WdfTimerStart(WDFTIMER, LONGLONG DueTime)`; `<= DISPATCH_LEVEL`. A negative due time
/// is relative, in 100-nanosecond units (`WDF_REL_TIMEOUT_IN_MS`); an absolute (positive) one is
/// taken as due now. Returns whether the timer was already in the timer queue (it is then
/// re-armed with the new due time, as KMDF does).
#[must_use]
pub unsafe fn WdfTimerStart(Timer: WDFTIMER, DueTime: LONGLONG) -> BOOLEAN {
    check_max(DISPATCH_LEVEL, "WdfTimerStart");
    let delay = std::time::Duration::from_nanos(DueTime.min(0).unsigned_abs().saturating_mul(100));
    let (was, tx) = wdf(|w| {
        let d = timer(w, Timer as usize)?;
        let was = d.due.is_some();
        d.due = Some(std::time::Instant::now() + delay);
        Ok((was, w.irq_tx.clone()))
    });
    // Wake the interrupt CPU so that it waits for the new due time.
    if let Some(tx) = tx {
        let _ = tx.send(super::host::IrqEvent::Dpc);
    }
    BOOLEAN::from(was)
}

/// `BOOLEAN WdfTimerStop(WDFTIMER, BOOLEAN Wait)`; `<= DISPATCH_LEVEL`, and `PASSIVE_LEVEL` when
/// `Wait` (it then returns only once a running callback has returned). Returns whether the timer
/// was in the timer queue.
#[must_use]
pub unsafe fn WdfTimerStop(Timer: WDFTIMER, Wait: BOOLEAN) -> BOOLEAN {
    check_max(
        if Wait == 0 {
            DISPATCH_LEVEL
        } else {
            PASSIVE_LEVEL
        },
        "WdfTimerStop",
    );
    let h = Timer as usize;
    let was = wdf(|w| Ok(timer(w, h)?.due.take().is_some()));
    if Wait != 0 {
        while wdf(|w| Ok(timer(w, h)?.running)) {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
    BOOLEAN::from(was)
}

/// `WDFOBJECT WdfTimerGetParentObject(WDFTIMER)`; `<= DISPATCH_LEVEL`.
#[must_use]
pub unsafe fn WdfTimerGetParentObject(Timer: WDFTIMER) -> WDFOBJECT {
    check_max(DISPATCH_LEVEL, "WdfTimerGetParentObject");
    wdf(|w| {
        timer(w, Timer as usize)?;
        Ok(w.get(Timer as usize, "WDFTIMER")?.parent.unwrap_or(0) as WDFOBJECT)
    })
}

// ---- objects ----

/// `VOID WdfObjectDelete(WDFOBJECT)`; `<= DISPATCH_LEVEL`. Deletes the object and its
/// children: cleanup callbacks children first, then destroy callbacks. An object the driver
/// still references gets its cleanup now and its destroy at the last dereference.
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
            .find(|(t, _)| *t == unique)
            .map_or(null_mut(), |(_, mem)| mem.as_mut_ptr().cast()))
    })
}

// ---- queues ----

/// `NTSTATUS WdfIoQueueCreate(WDFDEVICE, PWDF_IO_QUEUE_CONFIG, PWDF_OBJECT_ATTRIBUTES,
/// WDFQUEUE *Queue)`; `<= DISPATCH_LEVEL`.
#[must_use]
pub unsafe fn WdfIoQueueCreate(
    Device: WDFDEVICE,
    Config: PWDF_IO_QUEUE_CONFIG,
    QueueAttributes: PWDF_OBJECT_ATTRIBUTES,
    Queue: *mut WDFQUEUE,
) -> NTSTATUS {
    check_max(DISPATCH_LEVEL, "WdfIoQueueCreate");
    if Config.is_null() {
        null_arg("Config");
    }
    // SAFETY: checked non-null.
    let config = unsafe { *Config };
    let a = attrs(QueueAttributes);
    // `fxioqueueapi.cpp` l.119–154, then `FxIoQueue::Initialize` (`fxioqueue.cpp` l.275–374).
    if let Err(st) = validate::object_attributes(
        a,
        opt::EXECUTION_LEVEL_ALLOWED | opt::SYNCHRONIZATION_SCOPE_ALLOWED,
    ) {
        return st;
    }
    if let Err(st) = no_serialization(a) {
        return st;
    }
    if config.Size as usize != size_of::<crate::types::WDF_IO_QUEUE_CONFIG>() {
        return STATUS_INFO_LENGTH_MISMATCH;
    }
    if config.DefaultQueue == 0 && Queue.is_null() {
        return crate::STATUS_INVALID_PARAMETER_4;
    }
    if !(_WDF_IO_QUEUE_DISPATCH_TYPE::WdfIoQueueDispatchSequential
        ..=_WDF_IO_QUEUE_DISPATCH_TYPE::WdfIoQueueDispatchManual)
        .contains(&config.DispatchType)
    {
        return STATUS_INVALID_PARAMETER;
    }
    let manual = config.DispatchType == _WDF_IO_QUEUE_DISPATCH_TYPE::WdfIoQueueDispatchManual;
    let has_callback = config.EvtIoDefault.is_some()
        || config.EvtIoRead.is_some()
        || config.EvtIoWrite.is_some()
        || config.EvtIoDeviceControl.is_some()
        || config.EvtIoInternalDeviceControl.is_some();
    if !manual && !has_callback {
        return STATUS_WDF_NO_CALLBACK;
    }
    if manual && has_callback {
        return STATUS_INVALID_PARAMETER;
    }
    // SAFETY: a union of plain integers; the parallel member is what the framework reads.
    let presented_limit = unsafe { config.Settings.Parallel.NumberOfPresentedRequests };
    if config.DispatchType != _WDF_IO_QUEUE_DISPATCH_TYPE::WdfIoQueueDispatchParallel
        && presented_limit != 0
    {
        return STATUS_INVALID_PARAMETER;
    }
    let h = wdf(|w| {
        let dev = Device as usize;
        let in_d0 = w.device(dev)?.in_d0;
        let pm = config.PowerManaged != _WDF_TRI_STATE::WdfFalse;
        let data = super::QueueData {
            config: crate::typed::NoDebug(config),
            device: dev,
            started: !pm || in_d0,
            power_managed: pm,
            waiting: std::collections::VecDeque::new(),
            presented: 0,
            accepting: true,
            idle_callback: None,
        };
        let h = w.insert(Kind::Queue(Box::new(data)), Some(parent_of(a, dev)), a);
        let d = w.device(dev)?;
        d.queues.push(h);
        if config.DefaultQueue != 0 {
            d.default_queue = Some(h);
        }
        Ok(h)
    });
    if !Queue.is_null() {
        // SAFETY: a writable slot (or WDF_NO_HANDLE).
        unsafe { *Queue = h as WDFQUEUE };
    }
    STATUS_SUCCESS
}

/// `NTSTATUS WdfDeviceConfigureRequestDispatching(WDFDEVICE, WDFQUEUE, WDF_REQUEST_TYPE)`;
/// PASSIVE_LEVEL.
#[must_use]
pub unsafe fn WdfDeviceConfigureRequestDispatching(
    Device: WDFDEVICE,
    Queue: WDFQUEUE,
    RequestType: WDF_REQUEST_TYPE,
) -> NTSTATUS {
    check_max(PASSIVE_LEVEL, "WdfDeviceConfigureRequestDispatching");
    if RequestType != _WDF_REQUEST_TYPE::WdfRequestTypeDeviceControl {
        return STATUS_INVALID_PARAMETER;
    }
    wdf(|w| {
        w.queue(Queue as usize)?;
        w.device(Device as usize)?.ioctl_queue = Some(Queue as usize);
        Ok(())
    });
    STATUS_SUCCESS
}

/// `WDFDEVICE WdfIoQueueGetDevice(WDFQUEUE)`; `<= DISPATCH_LEVEL`.
#[must_use]
pub unsafe fn WdfIoQueueGetDevice(Queue: WDFQUEUE) -> WDFDEVICE {
    wdf(|w| Ok(w.queue(Queue as usize)?.device as WDFDEVICE))
}

/// `NTSTATUS WdfIoQueueRetrieveNextRequest(WDFQUEUE, WDFREQUEST *OutRequest)`;
/// `<= DISPATCH_LEVEL`. `STATUS_NO_MORE_ENTRIES` when the queue is empty.
#[must_use]
pub unsafe fn WdfIoQueueRetrieveNextRequest(
    Queue: WDFQUEUE,
    OutRequest: *mut WDFREQUEST,
) -> NTSTATUS {
    check_max(DISPATCH_LEVEL, "WdfIoQueueRetrieveNextRequest");
    if OutRequest.is_null() {
        null_arg("OutRequest");
    }
    let r = wdf(|w| {
        let q = w.queue(Queue as usize)?;
        if !q.started && q.power_managed {
            return Ok(None);
        }
        let Some(r) = q.waiting.pop_front() else {
            return Ok(None);
        };
        q.presented += 1;
        w.request(r)?.state = ReqState::Presented;
        Ok(Some(r))
    });
    match r {
        Some(r) => {
            // SAFETY: checked non-null.
            unsafe { *OutRequest = r as WDFREQUEST };
            STATUS_SUCCESS
        }
        None => STATUS_NO_MORE_ENTRIES,
    }
}

/// `VOID WdfIoQueueStart(WDFQUEUE)`; `<= DISPATCH_LEVEL`.
pub unsafe fn WdfIoQueueStart(Queue: WDFQUEUE) {
    check_max(DISPATCH_LEVEL, "WdfIoQueueStart");
    wdf(|w| {
        let q = w.queue(Queue as usize)?;
        q.started = true;
        q.accepting = true;
        Ok(())
    });
    super::host::dispatch(Queue as usize);
}

/// `VOID WdfIoQueueStopSynchronously(WDFQUEUE)`; PASSIVE_LEVEL. New requests wait in the queue.
pub unsafe fn WdfIoQueueStopSynchronously(Queue: WDFQUEUE) {
    check_max(PASSIVE_LEVEL, "WdfIoQueueStopSynchronously");
    wdf(|w| {
        w.queue(Queue as usize)?.started = false;
        Ok(())
    });
}

/// `VOID WdfIoQueueStop(WDFQUEUE, PFN_WDF_IO_QUEUE_STATE StopComplete, WDFCONTEXT Context)`;
/// `<= DISPATCH_LEVEL`. New requests wait in the queue; `StopComplete` runs once the driver
/// owns none of the queue's requests (at once if it owns none now).
pub unsafe fn WdfIoQueueStop(
    Queue: WDFQUEUE,
    StopComplete: PFN_WDF_IO_QUEUE_STATE,
    Context: WDFCONTEXT,
) {
    check_max(DISPATCH_LEVEL, "WdfIoQueueStop");
    arm_idle(Queue as usize, StopComplete, Context as usize, false);
}

/// `VOID WdfIoQueuePurge(WDFQUEUE, PFN_WDF_IO_QUEUE_STATE PurgeComplete, WDFCONTEXT Context)`;
/// `<= DISPATCH_LEVEL`. Waiting requests are cancelled; `PurgeComplete` runs once the driver
/// owns none of the queue's requests.
pub unsafe fn WdfIoQueuePurge(
    Queue: WDFQUEUE,
    PurgeComplete: PFN_WDF_IO_QUEUE_STATE,
    Context: WDFCONTEXT,
) {
    check_max(DISPATCH_LEVEL, "WdfIoQueuePurge");
    arm_idle(Queue as usize, PurgeComplete, Context as usize, true);
}

fn arm_idle(q: usize, cb: PFN_WDF_IO_QUEUE_STATE, ctx: usize, purge: bool) {
    let (waiting, now) = wdf(|w| {
        let qd = w.queue(q)?;
        qd.started = false;
        if purge {
            qd.accepting = false;
        }
        let waiting: Vec<usize> = if purge {
            qd.waiting.iter().copied().collect()
        } else {
            Vec::new()
        };
        let now = qd.presented == 0;
        if !now {
            qd.idle_callback = Some((cb, ctx));
        }
        Ok((waiting, now))
    });
    for r in waiting {
        super::host::cancel(r);
    }
    if now && let Some(f) = cb {
        // SAFETY: the driver's queue-state callback with its own context.
        super::functions::callback(|| unsafe { f(q as WDFQUEUE, ctx as WDFCONTEXT) });
    }
}

/// `VOID WdfIoQueuePurgeSynchronously(WDFQUEUE)`; PASSIVE_LEVEL. Waiting requests are cancelled
/// (`EvtIoCanceledOnQueue`, or completed with `STATUS_CANCELLED`); the queue stops accepting.
pub unsafe fn WdfIoQueuePurgeSynchronously(Queue: WDFQUEUE) {
    check_max(PASSIVE_LEVEL, "WdfIoQueuePurgeSynchronously");
    super::host::purge(Queue as usize);
}

// ---- requests ----

/// `NTSTATUS WdfRequestRetrieveInputBuffer(WDFREQUEST, size_t MinimumRequiredLength,
/// PVOID *Buffer, size_t *Length)`; `<= DISPATCH_LEVEL`.
#[must_use]
pub unsafe fn WdfRequestRetrieveInputBuffer(
    Request: WDFREQUEST,
    MinimumRequiredLength: usize,
    Buffer: *mut PVOID,
    Length: *mut usize,
) -> NTSTATUS {
    check_max(DISPATCH_LEVEL, "WdfRequestRetrieveInputBuffer");
    retrieve(Request, MinimumRequiredLength, Buffer, Length, false)
}

/// `NTSTATUS WdfRequestRetrieveOutputBuffer(WDFREQUEST, size_t MinimumRequiredSize,
/// PVOID *Buffer, size_t *Length)`; `<= DISPATCH_LEVEL`.
#[must_use]
pub unsafe fn WdfRequestRetrieveOutputBuffer(
    Request: WDFREQUEST,
    MinimumRequiredSize: usize,
    Buffer: *mut PVOID,
    Length: *mut usize,
) -> NTSTATUS {
    check_max(DISPATCH_LEVEL, "WdfRequestRetrieveOutputBuffer");
    retrieve(Request, MinimumRequiredSize, Buffer, Length, true)
}

fn retrieve(
    Request: WDFREQUEST,
    min: usize,
    Buffer: *mut PVOID,
    Length: *mut usize,
    output: bool,
) -> NTSTATUS {
    if Buffer.is_null() {
        null_arg("Buffer");
    }
    let (buf, len) = wdf(|w| {
        let r = w.request(Request as usize)?;
        Ok(if output {
            (r.out_buf, r.out_len)
        } else {
            (r.in_buf, r.in_len)
        })
    });
    if len == 0 || buf == 0 {
        return STATUS_BUFFER_TOO_SMALL;
    }
    if len < min {
        return STATUS_BUFFER_TOO_SMALL;
    }
    // SAFETY: checked non-null.
    unsafe { *Buffer = buf as PVOID };
    if !Length.is_null() {
        // SAFETY: checked non-null (Length is optional).
        unsafe { *Length = len };
    }
    STATUS_SUCCESS
}

/// `NTSTATUS WdfRequestRetrieveOutputWdmMdl(WDFREQUEST, PMDL *Mdl)`; `<= DISPATCH_LEVEL`.
/// The MDL of a `METHOD_OUT_DIRECT`/`IN_DIRECT` buffer, locked for the request's life.
#[must_use]
pub unsafe fn WdfRequestRetrieveOutputWdmMdl(Request: WDFREQUEST, Mdl: *mut PMDL) -> NTSTATUS {
    check_max(DISPATCH_LEVEL, "WdfRequestRetrieveOutputWdmMdl");
    if Mdl.is_null() {
        null_arg("Mdl");
    }
    let m = wdf(|w| Ok(w.request(Request as usize)?.out_mdl));
    if m == 0 {
        return STATUS_BUFFER_TOO_SMALL;
    }
    // SAFETY: checked non-null.
    unsafe { *Mdl = m as PMDL };
    STATUS_SUCCESS
}

/// `NTSTATUS WdfRequestRetrieveInputWdmMdl(WDFREQUEST, PMDL *Mdl)`; `<= DISPATCH_LEVEL`. An MDL
/// for the input buffer, built on first use and freed with the request.
#[must_use]
pub unsafe fn WdfRequestRetrieveInputWdmMdl(Request: WDFREQUEST, Mdl: *mut PMDL) -> NTSTATUS {
    check_max(DISPATCH_LEVEL, "WdfRequestRetrieveInputWdmMdl");
    if Mdl.is_null() {
        null_arg("Mdl");
    }
    let (buf, len, have) = wdf(|w| {
        let r = w.request(Request as usize)?;
        Ok((r.in_buf, r.in_len, r.in_mdl))
    });
    if buf == 0 || len == 0 {
        return STATUS_BUFFER_TOO_SMALL;
    }
    let m = if have == 0 {
        // SAFETY: the request's input buffer (system buffer or user pages) of `len` bytes.
        let m =
            unsafe { crate::ntddk::IoAllocateMdl(buf as PVOID, len as ULONG, 0, 0, null_mut()) };
        if m.is_null() {
            return crate::STATUS_INSUFFICIENT_RESOURCES;
        }
        // SAFETY: the system buffer is non-paged pool.
        unsafe { crate::ntddk::MmBuildMdlForNonPagedPool(m) };
        wdf(|w| {
            w.request(Request as usize)?.in_mdl = m as usize;
            Ok(())
        });
        m as usize
    } else {
        have
    };
    // SAFETY: checked non-null.
    unsafe { *Mdl = m as PMDL };
    STATUS_SUCCESS
}

/// `VOID WdfRequestGetParameters(WDFREQUEST, PWDF_REQUEST_PARAMETERS)`; `<= DISPATCH_LEVEL`.
pub unsafe fn WdfRequestGetParameters(Request: WDFREQUEST, Parameters: PWDF_REQUEST_PARAMETERS) {
    check_max(DISPATCH_LEVEL, "WdfRequestGetParameters");
    if Parameters.is_null() {
        null_arg("Parameters");
    }
    let (kind, in_len, out_len) = wdf(|w| {
        let r = w.request(Request as usize)?;
        Ok((r.kind, r.in_len, r.out_len))
    });
    let mut p = WDF_REQUEST_PARAMETERS {
        Size: core::mem::size_of::<WDF_REQUEST_PARAMETERS>() as u16,
        ..WDF_REQUEST_PARAMETERS::default()
    };
    match kind {
        ReqKind::Ioctl { code } => {
            p.Type = _WDF_REQUEST_TYPE::WdfRequestTypeDeviceControl;
            p.Parameters.DeviceIoControl = _WDF_REQUEST_PARAMETERS__bindgen_ty_1__bindgen_ty_4 {
                OutputBufferLength: out_len,
                InputBufferLength: in_len,
                IoControlCode: code,
                Type3InputBuffer: null_mut(),
            };
        }
        ReqKind::Create => p.Type = _WDF_REQUEST_TYPE::WdfRequestTypeCreate,
    }
    // SAFETY: checked non-null.
    unsafe { *Parameters = p };
}

/// `WDFFILEOBJECT WdfRequestGetFileObject(WDFREQUEST)`; `<= DISPATCH_LEVEL`.
#[must_use]
pub unsafe fn WdfRequestGetFileObject(Request: WDFREQUEST) -> WDFFILEOBJECT {
    check_max(DISPATCH_LEVEL, "WdfRequestGetFileObject");
    wdf(|w| Ok(w.request(Request as usize)?.file as WDFFILEOBJECT))
}

/// `WDFDEVICE WdfFileObjectGetDevice(WDFFILEOBJECT)`; `<= DISPATCH_LEVEL`.
#[must_use]
pub unsafe fn WdfFileObjectGetDevice(FileObject: WDFFILEOBJECT) -> WDFDEVICE {
    wdf(
        |w| match &w.get(FileObject as usize, "WDFFILEOBJECT")?.kind {
            Kind::File(f) => Ok(f.device as WDFDEVICE),
            _ => Ok(null_mut()),
        },
    )
}

/// The KMDF verifier's checks of a driver's completion (`WdfRequestComplete` l.382–437 with
/// `VerifyRequestComplete`, `VerifyRequestIsDriverOwned` and `VerifyCompleteInternal`,
/// `fxrequestapi.cpp` and `fxrequest.cpp`), then the completion. `info` is the `Information`
/// to complete with, or `None` for the request's own.
fn driver_complete(r: usize, status: NTSTATUS, info: Option<usize>) {
    const SOURCE: &str = "fxrequest.cpp l.2786-2821, l.395-425 (FxVerifierDbgBreakPoint)";
    let info = wdf(|w| {
        if !w.objects.contains_key(&r) && w.completed.contains(&r) {
            // A request completed earlier: not driver-owned. The framework refuses with
            // STATUS_INVALID_DEVICE_REQUEST and breaks; the request is not completed again.
            return Err(verifier_break(
                verifier_check::REQUEST_NOT_DRIVER_OWNED,
                "WdfRequestComplete of a request already completed",
                SOURCE,
            ));
        }
        let rd = w.request(r)?;
        if rd.state != ReqState::Presented {
            return Err(verifier_break(
                verifier_check::REQUEST_NOT_DRIVER_OWNED,
                "WdfRequestComplete of a request the driver does not own (waiting in a queue)",
                SOURCE,
            ));
        }
        if rd.cancel.is_some() && !rd.cancelled {
            return Err(verifier_break(
                verifier_check::COMPLETING_CANCELABLE,
                "WdfRequestComplete of a request still marked cancelable (call WdfRequestUnmarkCancelable first)",
                SOURCE,
            ));
        }
        let info = info.unwrap_or(rd.info);
        // `VerifyCompleteInternal` (l.429–515): a successful user-mode IOCTL with an output
        // buffer may not report more bytes than that buffer holds.
        if matches!(rd.kind, ReqKind::Ioctl { .. })
            && rd.out_len > 0
            && crate::NT_SUCCESS(status)
            && info > rd.out_len
        {
            return Err(BugCheck::new(
                WDF_VIOLATION,
                [0x6, 0x4, r as u64, 0],
                "a request completed with Information larger than its output buffer",
                "Bug check 0x10D WDF_VIOLATION, WDF_REQUEST_FATAL_ERROR (0x6), WDF_REQUEST_FATAL_ERROR_INFORMATION_LENGTH_MISMATCH (0x4); fxrequest.cpp l.490-512",
            ));
        }
        Ok(info)
    });
    super::host::complete(r, status, info);
}

/// `VOID WdfRequestComplete(WDFREQUEST, NTSTATUS)`; `<= DISPATCH_LEVEL`.
pub unsafe fn WdfRequestComplete(Request: WDFREQUEST, Status: NTSTATUS) {
    check_max(DISPATCH_LEVEL, "WdfRequestComplete");
    driver_complete(Request as usize, Status, None);
}

/// `VOID WdfRequestCompleteWithInformation(WDFREQUEST, NTSTATUS, ULONG_PTR Information)`;
/// `<= DISPATCH_LEVEL`.
pub unsafe fn WdfRequestCompleteWithInformation(
    Request: WDFREQUEST,
    Status: NTSTATUS,
    Information: ULONG_PTR,
) {
    check_max(DISPATCH_LEVEL, "WdfRequestCompleteWithInformation");
    driver_complete(Request as usize, Status, Some(Information as usize));
}

/// `VOID WdfRequestSetInformation(WDFREQUEST, ULONG_PTR Information)`; `<= DISPATCH_LEVEL`.
pub unsafe fn WdfRequestSetInformation(Request: WDFREQUEST, Information: ULONG_PTR) {
    check_max(DISPATCH_LEVEL, "WdfRequestSetInformation");
    wdf(|w| {
        w.request(Request as usize)?.info = Information as usize;
        Ok(())
    });
}

/// `NTSTATUS WdfRequestMarkCancelableEx(WDFREQUEST, PFN_WDF_REQUEST_CANCEL)`;
/// `<= DISPATCH_LEVEL`. `STATUS_CANCELLED` if the request was already cancelled (the routine is
/// then not registered and the driver must complete the request).
#[must_use]
pub unsafe fn WdfRequestMarkCancelableEx(
    Request: WDFREQUEST,
    EvtRequestCancel: PFN_WDF_REQUEST_CANCEL,
) -> NTSTATUS {
    check_max(DISPATCH_LEVEL, "WdfRequestMarkCancelableEx");
    if EvtRequestCancel.is_none() {
        null_arg("EvtRequestCancel");
    }
    wdf(|w| {
        let r = w.request(Request as usize)?;
        if r.cancelled {
            return Ok(STATUS_CANCELLED);
        }
        r.cancel = EvtRequestCancel;
        Ok(STATUS_SUCCESS)
    })
}

/// `NTSTATUS WdfRequestUnmarkCancelable(WDFREQUEST)`; `<= DISPATCH_LEVEL`. `STATUS_CANCELLED`
/// when the cancel routine has run or is about to (the driver must not complete the request
/// then; the cancel routine does).
#[must_use]
pub unsafe fn WdfRequestUnmarkCancelable(Request: WDFREQUEST) -> NTSTATUS {
    check_max(DISPATCH_LEVEL, "WdfRequestUnmarkCancelable");
    wdf(|w| {
        let r = w.request(Request as usize)?;
        if r.cancelled && r.cancel.is_none() {
            return Ok(STATUS_CANCELLED);
        }
        r.cancel = None;
        Ok(STATUS_SUCCESS)
    })
}

/// `NTSTATUS WdfRequestForwardToIoQueue(WDFREQUEST, WDFQUEUE DestinationQueue)`;
/// `<= DISPATCH_LEVEL`. The request leaves the driver and waits in the destination queue.
#[must_use]
pub unsafe fn WdfRequestForwardToIoQueue(
    Request: WDFREQUEST,
    DestinationQueue: WDFQUEUE,
) -> NTSTATUS {
    check_max(DISPATCH_LEVEL, "WdfRequestForwardToIoQueue");
    let (from, to) = (Request as usize, DestinationQueue as usize);
    let source = wdf(|w| {
        w.queue(to)?;
        let r = w.request(from)?;
        if r.state != ReqState::Presented || r.cancel.is_some() {
            return Ok(Err(STATUS_INVALID_DEVICE_REQUEST));
        }
        let src = r.queue;
        let cancelled = r.cancelled;
        r.queue = Some(to);
        r.state = ReqState::Queued;
        if let Some(s) = src {
            let q = w.queue(s)?;
            q.presented = q.presented.saturating_sub(1);
        }
        w.queue(to)?.waiting.push_back(from);
        Ok(Ok((src, cancelled)))
    });
    match source {
        Ok((src, cancelled)) => {
            if cancelled {
                // The I/O manager cancelled the request while the driver owned it: queued now, it
                // is cancelled from the queue at once (KMDF sets the IRP's cancel routine as it
                // queues it and finds the IRP already cancelled).
                super::host::cancel(from);
            }
            super::host::dispatch(to);
            if let Some(s) = src
                && super::host::sequential(s)
            {
                super::host::dispatch(s);
            }
            STATUS_SUCCESS
        }
        Err(st) => st,
    }
}
