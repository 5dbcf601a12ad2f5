//! The `WDF_*_INIT` helpers of the KMDF 1.33 headers, for both platforms.
//!
//! They are `FORCEINLINE` functions, which bindgen does not emit, so wdk-sys has none
//! (windows-drivers-rs issue #242). Each here returns what its C namesake leaves in the structure
//! it initializes — every field the helper sets, set to the same value, and every other field
//! zero — so that a driver changes only what it means to change. A configuration built field by
//! field with `..default()` leaves fields at 0 that the framework refuses (`ExecutionLevel`,
//! `SynchronizationScope`) or reads as a limit (`NumberOfPresentedRequests`), which is why the
//! driver builds every configuration through these. `rhca-tests` (`tests/tests/wdf_init.rs`)
//! compares each result with the helper's assignments in
//! `../shared/reference/kmdf-1.33/kmdf-1.33-x64.json` (`inline_init`), field by field.

#![expect(
    non_snake_case,
    reason = "the helpers keep the names of wdf*.h, so that a reader finds them in the headers and the docs"
)]

use crate::sys::{
    _WDF_EXECUTION_LEVEL, _WDF_FILEOBJECT_CLASS, _WDF_IO_QUEUE_DISPATCH_TYPE,
    _WDF_SYNCHRONIZATION_SCOPE, _WDF_TRI_STATE, BOOLEAN_TRUE, LONG, PFN_WDF_DEVICE_FILE_CREATE,
    PFN_WDF_DRIVER_DEVICE_ADD, PFN_WDF_FILE_CLEANUP, PFN_WDF_FILE_CLOSE, PFN_WDF_INTERRUPT_DPC,
    PFN_WDF_INTERRUPT_ISR, PFN_WDF_TIMER, PFN_WDF_WORKITEM, ULONG, USHORT, WDF_DRIVER_CONFIG,
    WDF_FILEOBJECT_CONFIG, WDF_INTERRUPT_CONFIG, WDF_IO_QUEUE_CONFIG, WDF_IO_QUEUE_DISPATCH_TYPE,
    WDF_OBJECT_ATTRIBUTES, WDF_PNPPOWER_EVENT_CALLBACKS, WDF_REQUEST_PARAMETERS, WDF_TIMER_CONFIG,
    WDF_WORKITEM_CONFIG,
};

/// `WDF_STRUCTURE_SIZE(T)`: `sizeof(T)` as the `ULONG` every `Size` field is.
const fn size<T>() -> ULONG {
    size_of::<T>() as ULONG
}

/// `WDF_OBJECT_ATTRIBUTES_INIT` (wdfobject.h): both constraints inherited from the parent.
#[must_use]
pub fn WDF_OBJECT_ATTRIBUTES_INIT() -> WDF_OBJECT_ATTRIBUTES {
    WDF_OBJECT_ATTRIBUTES {
        Size: size::<WDF_OBJECT_ATTRIBUTES>(),
        ExecutionLevel: _WDF_EXECUTION_LEVEL::WdfExecutionLevelInheritFromParent,
        SynchronizationScope: _WDF_SYNCHRONIZATION_SCOPE::WdfSynchronizationScopeInheritFromParent,
        ..WDF_OBJECT_ATTRIBUTES::default()
    }
}

/// `WDF_DRIVER_CONFIG_INIT` (wdfdriver.h).
#[must_use]
pub fn WDF_DRIVER_CONFIG_INIT(EvtDriverDeviceAdd: PFN_WDF_DRIVER_DEVICE_ADD) -> WDF_DRIVER_CONFIG {
    WDF_DRIVER_CONFIG {
        Size: size::<WDF_DRIVER_CONFIG>(),
        EvtDriverDeviceAdd,
        ..WDF_DRIVER_CONFIG::default()
    }
}

/// `WDF_PNPPOWER_EVENT_CALLBACKS_INIT` (wdfdevice.h): no callbacks.
#[must_use]
pub fn WDF_PNPPOWER_EVENT_CALLBACKS_INIT() -> WDF_PNPPOWER_EVENT_CALLBACKS {
    WDF_PNPPOWER_EVENT_CALLBACKS {
        Size: size::<WDF_PNPPOWER_EVENT_CALLBACKS>(),
        ..WDF_PNPPOWER_EVENT_CALLBACKS::default()
    }
}

/// `WDF_FILEOBJECT_CONFIG_INIT` (wdfdevice.h): the framework owns the file objects' contexts
/// and forwards cleanup and close as it decides.
#[must_use]
pub fn WDF_FILEOBJECT_CONFIG_INIT(
    EvtDeviceFileCreate: PFN_WDF_DEVICE_FILE_CREATE,
    EvtFileClose: PFN_WDF_FILE_CLOSE,
    EvtFileCleanup: PFN_WDF_FILE_CLEANUP,
) -> WDF_FILEOBJECT_CONFIG {
    WDF_FILEOBJECT_CONFIG {
        Size: size::<WDF_FILEOBJECT_CONFIG>(),
        EvtDeviceFileCreate,
        EvtFileClose,
        EvtFileCleanup,
        FileObjectClass: _WDF_FILEOBJECT_CLASS::WdfFileObjectWdfCannotUseFsContexts,
        AutoForwardCleanupClose: _WDF_TRI_STATE::WdfUseDefault,
    }
}

/// `WDF_IO_QUEUE_CONFIG_INIT` (wdfio.h): power-managed by default; a parallel queue presents
/// any number of requests at once (`(ULONG)-1`).
#[must_use]
pub fn WDF_IO_QUEUE_CONFIG_INIT(DispatchType: WDF_IO_QUEUE_DISPATCH_TYPE) -> WDF_IO_QUEUE_CONFIG {
    let mut c = WDF_IO_QUEUE_CONFIG {
        Size: size::<WDF_IO_QUEUE_CONFIG>(),
        PowerManaged: _WDF_TRI_STATE::WdfUseDefault,
        DispatchType,
        ..WDF_IO_QUEUE_CONFIG::default()
    };
    if DispatchType == _WDF_IO_QUEUE_DISPATCH_TYPE::WdfIoQueueDispatchParallel {
        c.Settings.Parallel.NumberOfPresentedRequests = ULONG::MAX;
    }
    c
}

/// `WDF_IO_QUEUE_CONFIG_INIT_DEFAULT_QUEUE` (wdfio.h): as [`WDF_IO_QUEUE_CONFIG_INIT`], and
/// the device's default queue.
#[must_use]
pub fn WDF_IO_QUEUE_CONFIG_INIT_DEFAULT_QUEUE(
    DispatchType: WDF_IO_QUEUE_DISPATCH_TYPE,
) -> WDF_IO_QUEUE_CONFIG {
    WDF_IO_QUEUE_CONFIG {
        DefaultQueue: BOOLEAN_TRUE,
        ..WDF_IO_QUEUE_CONFIG_INIT(DispatchType)
    }
}

/// `WDF_INTERRUPT_CONFIG_INIT` (wdfinterrupt.h): vector sharing and inactive reporting left to
/// the resources and the framework (`WdfUseDefault`).
#[must_use]
pub fn WDF_INTERRUPT_CONFIG_INIT(
    EvtInterruptIsr: PFN_WDF_INTERRUPT_ISR,
    EvtInterruptDpc: PFN_WDF_INTERRUPT_DPC,
) -> WDF_INTERRUPT_CONFIG {
    WDF_INTERRUPT_CONFIG {
        Size: size::<WDF_INTERRUPT_CONFIG>(),
        ShareVector: _WDF_TRI_STATE::WdfUseDefault,
        EvtInterruptIsr,
        EvtInterruptDpc,
        ReportInactiveOnPowerDown: _WDF_TRI_STATE::WdfUseDefault,
        ..WDF_INTERRUPT_CONFIG::default()
    }
}

/// `WDF_WORKITEM_CONFIG_INIT` (wdfworkitem.h): serialized with the parent's callbacks, when the
/// parent has a synchronization scope.
#[must_use]
pub fn WDF_WORKITEM_CONFIG_INIT(EvtWorkItemFunc: PFN_WDF_WORKITEM) -> WDF_WORKITEM_CONFIG {
    WDF_WORKITEM_CONFIG {
        Size: size::<WDF_WORKITEM_CONFIG>(),
        EvtWorkItemFunc,
        AutomaticSerialization: BOOLEAN_TRUE,
    }
}

/// `WDF_TIMER_CONFIG_INIT` (wdftimer.h): a one-shot timer, serialized with its parent's
/// callbacks when the parent has a synchronization scope.
#[must_use]
pub fn WDF_TIMER_CONFIG_INIT(EvtTimerFunc: PFN_WDF_TIMER) -> WDF_TIMER_CONFIG {
    WDF_TIMER_CONFIG {
        Size: size::<WDF_TIMER_CONFIG>(),
        EvtTimerFunc,
        Period: 0,
        AutomaticSerialization: BOOLEAN_TRUE,
        TolerableDelay: 0,
        ..WDF_TIMER_CONFIG::default()
    }
}

/// `WDF_TIMER_CONFIG_INIT_PERIODIC` (wdftimer.h): as [`WDF_TIMER_CONFIG_INIT`], every `Period`
/// milliseconds. The header takes a `LONG` and stores it in the `ULONG` field, as here.
#[must_use]
pub fn WDF_TIMER_CONFIG_INIT_PERIODIC(
    EvtTimerFunc: PFN_WDF_TIMER,
    Period: LONG,
) -> WDF_TIMER_CONFIG {
    WDF_TIMER_CONFIG {
        Period: Period.cast_unsigned(),
        ..WDF_TIMER_CONFIG_INIT(EvtTimerFunc)
    }
}

/// `WDF_REQUEST_PARAMETERS_INIT` (wdfrequest.h): its `Size` is a `USHORT`.
#[must_use]
pub fn WDF_REQUEST_PARAMETERS_INIT() -> WDF_REQUEST_PARAMETERS {
    WDF_REQUEST_PARAMETERS {
        Size: size_of::<WDF_REQUEST_PARAMETERS>() as USHORT,
        ..WDF_REQUEST_PARAMETERS::default()
    }
}
