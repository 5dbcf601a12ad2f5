//! The KMDF 1.33 types a bus-master driver uses, spelled as bindgen spells them in wdk-sys
//! (`default_enum_style(ModuleConsts)`, handles as pointers to opaque `WDF*__` structs, callback
//! typedefs as `Option<unsafe extern "C" fn>`). Each item cites its C definition (`wdf*.h` of
//! KMDF 1.33, `wdm.h` for resource descriptors).

#![expect(
    non_camel_case_types,
    non_snake_case,
    non_upper_case_globals,
    clippy::pub_underscore_fields,
    reason = "mirrors the C names bindgen emits"
)]

use crate::NTSTATUS;
use crate::types::{BOOLEAN, KAFFINITY, PHYSICAL_ADDRESS, PVOID, UCHAR, ULONG, USHORT};

/// Declares `DECLARE_HANDLE(name)` handles: `struct name__ { int unused; }; typedef struct
/// name__ *name;`.
macro_rules! handles {
    ($($name:ident / $opaque:ident),* $(,)?) => {$(
        #[doc = concat!("`struct ", stringify!($opaque), " { int unused; }` (`DECLARE_HANDLE`).")]
        #[repr(C)]
        #[derive(Debug, Default, Copy, Clone)]
        pub struct $opaque {
            /// The `unused` member of `DECLARE_HANDLE`'s struct.
            pub unused: core::ffi::c_int,
        }
        #[doc = concat!("`DECLARE_HANDLE(", stringify!($name), ")` (`wdftypes.h`).")]
        pub type $name = *mut $opaque;
    )*};
}

handles! {
    WDFDRIVER / WDFDRIVER__,
    WDFDEVICE / WDFDEVICE__,
    WDFQUEUE / WDFQUEUE__,
    WDFREQUEST / WDFREQUEST__,
    WDFFILEOBJECT / WDFFILEOBJECT__,
    WDFINTERRUPT / WDFINTERRUPT__,
    WDFSPINLOCK / WDFSPINLOCK__,
    WDFWAITLOCK / WDFWAITLOCK__,
    WDFCMRESLIST / WDFCMRESLIST__,
    WDFMEMORY / WDFMEMORY__,
    WDFWORKITEM / WDFWORKITEM__,
    WDFTIMER / WDFTIMER__,
}

/// `typedef HANDLE WDFOBJECT;` (`wdftypes.h`: "General Handle Type, should always be typeless").
pub type WDFOBJECT = PVOID;
/// `typedef PVOID WDFCONTEXT;`
pub type WDFCONTEXT = PVOID;

/// `struct WDFDEVICE_INIT` — opaque (`wdftypes.h`).
#[repr(C)]
#[derive(Debug, Default, Copy, Clone)]
pub struct WDFDEVICE_INIT {
    _unused: [u8; 0],
}
/// `typedef struct WDFDEVICE_INIT *PWDFDEVICE_INIT;`
pub type PWDFDEVICE_INIT = *mut WDFDEVICE_INIT;

/// `typedef struct _GUID { ULONG Data1; USHORT Data2; USHORT Data3; UCHAR Data4[8]; } GUID;`
#[repr(C)]
#[derive(Debug, Default, Copy, Clone, PartialEq, Eq, Hash)]
pub struct _GUID {
    /// `Data1`.
    pub Data1: ULONG,
    /// `Data2`.
    pub Data2: USHORT,
    /// `Data3`.
    pub Data3: USHORT,
    /// `Data4`.
    pub Data4: [UCHAR; 8],
}
/// `typedef struct _GUID GUID;`
pub type GUID = _GUID;
/// `const GUID *`
pub type LPCGUID = *const _GUID;

/// `typedef struct _UNICODE_STRING { USHORT Length; USHORT MaximumLength; PWCH Buffer; }`.
#[repr(C)]
#[derive(Debug, Copy, Clone)]
pub struct _UNICODE_STRING {
    /// Bytes used.
    pub Length: USHORT,
    /// Bytes allocated.
    pub MaximumLength: USHORT,
    /// UTF-16 text.
    pub Buffer: *mut u16,
}
/// `typedef _UNICODE_STRING UNICODE_STRING;`
pub type UNICODE_STRING = _UNICODE_STRING;
/// `const UNICODE_STRING *`
pub type PCUNICODE_STRING = *const _UNICODE_STRING;

/// Declares a bindgen module-const enum: `pub mod _X { pub type Type = i32; pub const A: Type }`.
macro_rules! wdf_enum {
    ($(#[$m:meta])* $module:ident / $alias:ident { $($(#[$vm:meta])* $name:ident = $v:expr),* $(,)? }) => {
        $(#[$m])*
        pub mod $module {
            /// The C enum's representation.
            pub type Type = core::ffi::c_int;
            $( $(#[$vm])* #[doc = concat!("`", stringify!($name), "`")] pub const $name: Type = $v; )*
        }
        #[doc = concat!("`typedef enum ", stringify!($module), " ", stringify!($alias), ";`")]
        pub type $alias = $module::Type;
    };
}

wdf_enum! {
    /// `enum _WDF_TRI_STATE` (`wdftypes.h`).
    _WDF_TRI_STATE / WDF_TRI_STATE { WdfFalse = 0, WdfTrue = 1, WdfUseDefault = 2 }
}
wdf_enum! {
    /// `enum _WDF_EXECUTION_LEVEL` (`wdfobject.h`).
    _WDF_EXECUTION_LEVEL / WDF_EXECUTION_LEVEL {
        WdfExecutionLevelInvalid = 0, WdfExecutionLevelInheritFromParent = 1,
        WdfExecutionLevelPassive = 2, WdfExecutionLevelDispatch = 3,
    }
}
wdf_enum! {
    /// `enum _WDF_SYNCHRONIZATION_SCOPE` (`wdfobject.h`).
    _WDF_SYNCHRONIZATION_SCOPE / WDF_SYNCHRONIZATION_SCOPE {
        WdfSynchronizationScopeInvalid = 0, WdfSynchronizationScopeInheritFromParent = 1,
        WdfSynchronizationScopeDevice = 2, WdfSynchronizationScopeQueue = 3,
        WdfSynchronizationScopeNone = 4,
    }
}
wdf_enum! {
    /// `enum _WDF_DEVICE_IO_TYPE` (`wdfdevice.h`).
    _WDF_DEVICE_IO_TYPE / WDF_DEVICE_IO_TYPE {
        WdfDeviceIoUndefined = 0, WdfDeviceIoNeither = 1, WdfDeviceIoBuffered = 2,
        WdfDeviceIoDirect = 3, WdfDeviceIoBufferedOrDirect = 4,
    }
}
wdf_enum! {
    /// `enum _WDF_IO_QUEUE_DISPATCH_TYPE` (`wdfio.h`).
    _WDF_IO_QUEUE_DISPATCH_TYPE / WDF_IO_QUEUE_DISPATCH_TYPE {
        WdfIoQueueDispatchInvalid = 0, WdfIoQueueDispatchSequential = 1,
        WdfIoQueueDispatchParallel = 2, WdfIoQueueDispatchManual = 3, WdfIoQueueDispatchMax = 4,
    }
}
wdf_enum! {
    /// `enum _WDF_REQUEST_TYPE` (`wdfrequest.h`; the values are the IRP major codes).
    _WDF_REQUEST_TYPE / WDF_REQUEST_TYPE {
        WdfRequestTypeCreate = 0x0, WdfRequestTypeClose = 0x2, WdfRequestTypeRead = 0x3,
        WdfRequestTypeWrite = 0x4, WdfRequestTypeDeviceControl = 0xE,
        WdfRequestTypeDeviceControlInternal = 0xF, WdfRequestTypeCleanup = 0x12,
        WdfRequestTypeOther = 0x1C,
    }
}
wdf_enum! {
    /// `enum _WDF_POWER_DEVICE_STATE` (`wdfdevice.h`).
    _WDF_POWER_DEVICE_STATE / WDF_POWER_DEVICE_STATE {
        WdfPowerDeviceInvalid = 0, WdfPowerDeviceD0 = 1, WdfPowerDeviceD1 = 2,
        WdfPowerDeviceD2 = 3, WdfPowerDeviceD3 = 4, WdfPowerDeviceD3Final = 5,
        WdfPowerDevicePrepareForHibernation = 6, WdfPowerDeviceMaximum = 7,
    }
}
wdf_enum! {
    /// `enum _WDF_FILEOBJECT_CLASS` (`wdfdevice.h`).
    _WDF_FILEOBJECT_CLASS / WDF_FILEOBJECT_CLASS {
        WdfFileObjectInvalid = 0, WdfFileObjectNotRequired = 1, WdfFileObjectWdfCanUseFsContext = 2,
        WdfFileObjectWdfCanUseFsContext2 = 3, WdfFileObjectWdfCannotUseFsContexts = 4,
        WdfFileObjectCanBeOptional = 0x8000_0000_u32.cast_signed(),
    }
}
wdf_enum! {
    /// `enum _WDF_DEVICE_FAILED_ACTION` (`wdfdevice.h`).
    _WDF_DEVICE_FAILED_ACTION / WDF_DEVICE_FAILED_ACTION {
        WdfDeviceFailedUndefined = 0, WdfDeviceFailedAttemptRestart = 1,
        WdfDeviceFailedNoRestart = 2,
    }
}
wdf_enum! {
    /// `enum _WDF_REQUEST_STOP_ACTION_FLAGS` (`wdfrequest.h`).
    _WDF_REQUEST_STOP_ACTION_FLAGS / WDF_REQUEST_STOP_ACTION_FLAGS {
        WdfRequestStopActionInvalid = 0, WdfRequestStopActionSuspend = 1,
        WdfRequestStopActionPurge = 2, WdfRequestStopRequestCancelable = 0x1000_0000,
    }
}

/// Declares `PFN_*` callback typedefs: `typedef EVT_X *PFN_X;` becomes
/// `Option<unsafe extern "C" fn(...)>`.
macro_rules! pfn_types {
    ($( $(#[$m:meta])* $name:ident = fn($($arg:ident : $ty:ty),*) $(-> $ret:ty)?; )*) => {$(
        $(#[$m])*
        pub type $name = Option<unsafe extern "C" fn($($arg: $ty),*) $(-> $ret)?>;
    )*};
}

pfn_types! {
    /// `NTSTATUS EVT_WDF_DRIVER_DEVICE_ADD(WDFDRIVER, PWDFDEVICE_INIT)`.
    PFN_WDF_DRIVER_DEVICE_ADD = fn(Driver: WDFDRIVER, DeviceInit: PWDFDEVICE_INIT) -> NTSTATUS;
    /// `VOID EVT_WDF_DRIVER_UNLOAD(WDFDRIVER)`.
    PFN_WDF_DRIVER_UNLOAD = fn(Driver: WDFDRIVER);
    /// `VOID EVT_WDF_OBJECT_CONTEXT_CLEANUP(WDFOBJECT)`.
    PFN_WDF_OBJECT_CONTEXT_CLEANUP = fn(Object: WDFOBJECT);
    /// `VOID EVT_WDF_OBJECT_CONTEXT_DESTROY(WDFOBJECT)`.
    PFN_WDF_OBJECT_CONTEXT_DESTROY = fn(Object: WDFOBJECT);
    /// `PCWDF_OBJECT_CONTEXT_TYPE_INFO EVT_WDF_GET_UNIQUE_CONTEXT_TYPE(VOID)`.
    PFN_GET_UNIQUE_CONTEXT_TYPE = fn() -> PCWDF_OBJECT_CONTEXT_TYPE_INFO;
    /// `NTSTATUS EVT_WDF_DEVICE_D0_ENTRY(WDFDEVICE, WDF_POWER_DEVICE_STATE PreviousState)`.
    PFN_WDF_DEVICE_D0_ENTRY = fn(Device: WDFDEVICE, PreviousState: WDF_POWER_DEVICE_STATE) -> NTSTATUS;
    /// `NTSTATUS EVT_WDF_DEVICE_D0_ENTRY_POST_INTERRUPTS_ENABLED(WDFDEVICE, WDF_POWER_DEVICE_STATE)`.
    PFN_WDF_DEVICE_D0_ENTRY_POST_INTERRUPTS_ENABLED = fn(Device: WDFDEVICE, PreviousState: WDF_POWER_DEVICE_STATE) -> NTSTATUS;
    /// `NTSTATUS EVT_WDF_DEVICE_D0_EXIT(WDFDEVICE, WDF_POWER_DEVICE_STATE TargetState)`.
    PFN_WDF_DEVICE_D0_EXIT = fn(Device: WDFDEVICE, TargetState: WDF_POWER_DEVICE_STATE) -> NTSTATUS;
    /// `NTSTATUS EVT_WDF_DEVICE_D0_EXIT_PRE_INTERRUPTS_DISABLED(WDFDEVICE, WDF_POWER_DEVICE_STATE)`.
    PFN_WDF_DEVICE_D0_EXIT_PRE_INTERRUPTS_DISABLED = fn(Device: WDFDEVICE, TargetState: WDF_POWER_DEVICE_STATE) -> NTSTATUS;
    /// `NTSTATUS EVT_WDF_DEVICE_PREPARE_HARDWARE(WDFDEVICE, WDFCMRESLIST Raw, WDFCMRESLIST Translated)`.
    PFN_WDF_DEVICE_PREPARE_HARDWARE = fn(Device: WDFDEVICE, ResourcesRaw: WDFCMRESLIST, ResourcesTranslated: WDFCMRESLIST) -> NTSTATUS;
    /// `NTSTATUS EVT_WDF_DEVICE_RELEASE_HARDWARE(WDFDEVICE, WDFCMRESLIST Translated)`.
    PFN_WDF_DEVICE_RELEASE_HARDWARE = fn(Device: WDFDEVICE, ResourcesTranslated: WDFCMRESLIST) -> NTSTATUS;
    /// `VOID EVT_WDF_DEVICE_SELF_MANAGED_IO_CLEANUP(WDFDEVICE)`.
    PFN_WDF_DEVICE_SELF_MANAGED_IO_CLEANUP = fn(Device: WDFDEVICE);
    /// `VOID EVT_WDF_DEVICE_SELF_MANAGED_IO_FLUSH(WDFDEVICE)`.
    PFN_WDF_DEVICE_SELF_MANAGED_IO_FLUSH = fn(Device: WDFDEVICE);
    /// `NTSTATUS EVT_WDF_DEVICE_SELF_MANAGED_IO_INIT(WDFDEVICE)`.
    PFN_WDF_DEVICE_SELF_MANAGED_IO_INIT = fn(Device: WDFDEVICE) -> NTSTATUS;
    /// `NTSTATUS EVT_WDF_DEVICE_SELF_MANAGED_IO_SUSPEND(WDFDEVICE)`.
    PFN_WDF_DEVICE_SELF_MANAGED_IO_SUSPEND = fn(Device: WDFDEVICE) -> NTSTATUS;
    /// `NTSTATUS EVT_WDF_DEVICE_SELF_MANAGED_IO_RESTART(WDFDEVICE)`.
    PFN_WDF_DEVICE_SELF_MANAGED_IO_RESTART = fn(Device: WDFDEVICE) -> NTSTATUS;
    /// `VOID EVT_WDF_DEVICE_SURPRISE_REMOVAL(WDFDEVICE)`.
    PFN_WDF_DEVICE_SURPRISE_REMOVAL = fn(Device: WDFDEVICE);
    /// `NTSTATUS EVT_WDF_DEVICE_QUERY_REMOVE(WDFDEVICE)`.
    PFN_WDF_DEVICE_QUERY_REMOVE = fn(Device: WDFDEVICE) -> NTSTATUS;
    /// `NTSTATUS EVT_WDF_DEVICE_QUERY_STOP(WDFDEVICE)`.
    PFN_WDF_DEVICE_QUERY_STOP = fn(Device: WDFDEVICE) -> NTSTATUS;
    /// `VOID EVT_WDF_DEVICE_USAGE_NOTIFICATION(WDFDEVICE, WDF_SPECIAL_FILE_TYPE, BOOLEAN)`.
    PFN_WDF_DEVICE_USAGE_NOTIFICATION = fn(Device: WDFDEVICE, NotificationType: core::ffi::c_int, IsInNotificationPath: BOOLEAN);
    /// `VOID EVT_WDF_DEVICE_RELATIONS_QUERY(WDFDEVICE, DEVICE_RELATION_TYPE)`.
    PFN_WDF_DEVICE_RELATIONS_QUERY = fn(Device: WDFDEVICE, RelationType: core::ffi::c_int);
    /// `NTSTATUS EVT_WDF_DEVICE_USAGE_NOTIFICATION_EX(WDFDEVICE, WDF_SPECIAL_FILE_TYPE, BOOLEAN)`.
    PFN_WDF_DEVICE_USAGE_NOTIFICATION_EX = fn(Device: WDFDEVICE, NotificationType: core::ffi::c_int, IsInNotificationPath: BOOLEAN) -> NTSTATUS;
    /// `VOID EVT_WDF_DEVICE_FILE_CREATE(WDFDEVICE, WDFREQUEST, WDFFILEOBJECT)`.
    PFN_WDF_DEVICE_FILE_CREATE = fn(Device: WDFDEVICE, Request: WDFREQUEST, FileObject: WDFFILEOBJECT);
    /// `VOID EVT_WDF_FILE_CLOSE(WDFFILEOBJECT)`.
    PFN_WDF_FILE_CLOSE = fn(FileObject: WDFFILEOBJECT);
    /// `VOID EVT_WDF_FILE_CLEANUP(WDFFILEOBJECT)`.
    PFN_WDF_FILE_CLEANUP = fn(FileObject: WDFFILEOBJECT);
    /// `VOID EVT_WDF_IO_QUEUE_IO_DEFAULT(WDFQUEUE, WDFREQUEST)`.
    PFN_WDF_IO_QUEUE_IO_DEFAULT = fn(Queue: WDFQUEUE, Request: WDFREQUEST);
    /// `VOID EVT_WDF_IO_QUEUE_IO_READ(WDFQUEUE, WDFREQUEST, size_t Length)`.
    PFN_WDF_IO_QUEUE_IO_READ = fn(Queue: WDFQUEUE, Request: WDFREQUEST, Length: usize);
    /// `VOID EVT_WDF_IO_QUEUE_IO_WRITE(WDFQUEUE, WDFREQUEST, size_t Length)`.
    PFN_WDF_IO_QUEUE_IO_WRITE = fn(Queue: WDFQUEUE, Request: WDFREQUEST, Length: usize);
    /// `VOID EVT_WDF_IO_QUEUE_IO_DEVICE_CONTROL(WDFQUEUE, WDFREQUEST, size_t OutputBufferLength,
    /// size_t InputBufferLength, ULONG IoControlCode)`.
    PFN_WDF_IO_QUEUE_IO_DEVICE_CONTROL = fn(Queue: WDFQUEUE, Request: WDFREQUEST, OutputBufferLength: usize, InputBufferLength: usize, IoControlCode: ULONG);
    /// `VOID EVT_WDF_IO_QUEUE_IO_INTERNAL_DEVICE_CONTROL(...)` (same parameters).
    PFN_WDF_IO_QUEUE_IO_INTERNAL_DEVICE_CONTROL = fn(Queue: WDFQUEUE, Request: WDFREQUEST, OutputBufferLength: usize, InputBufferLength: usize, IoControlCode: ULONG);
    /// `VOID EVT_WDF_IO_QUEUE_IO_STOP(WDFQUEUE, WDFREQUEST, ULONG ActionFlags)`.
    PFN_WDF_IO_QUEUE_IO_STOP = fn(Queue: WDFQUEUE, Request: WDFREQUEST, ActionFlags: ULONG);
    /// `VOID EVT_WDF_IO_QUEUE_IO_RESUME(WDFQUEUE, WDFREQUEST)`.
    PFN_WDF_IO_QUEUE_IO_RESUME = fn(Queue: WDFQUEUE, Request: WDFREQUEST);
    /// `VOID EVT_WDF_IO_QUEUE_IO_CANCELED_ON_QUEUE(WDFQUEUE, WDFREQUEST)`.
    PFN_WDF_IO_QUEUE_IO_CANCELED_ON_QUEUE = fn(Queue: WDFQUEUE, Request: WDFREQUEST);
    /// `VOID EVT_WDF_IO_QUEUE_STATE(WDFQUEUE, WDFCONTEXT)`.
    PFN_WDF_IO_QUEUE_STATE = fn(Queue: WDFQUEUE, Context: WDFCONTEXT);
    /// `VOID EVT_WDF_REQUEST_CANCEL(WDFREQUEST)`.
    PFN_WDF_REQUEST_CANCEL = fn(Request: WDFREQUEST);
    /// `BOOLEAN EVT_WDF_INTERRUPT_ISR(WDFINTERRUPT, ULONG MessageID)`.
    PFN_WDF_INTERRUPT_ISR = fn(Interrupt: WDFINTERRUPT, MessageID: ULONG) -> BOOLEAN;
    /// `VOID EVT_WDF_INTERRUPT_DPC(WDFINTERRUPT, WDFOBJECT AssociatedObject)`.
    PFN_WDF_INTERRUPT_DPC = fn(Interrupt: WDFINTERRUPT, AssociatedObject: WDFOBJECT);
    /// `NTSTATUS EVT_WDF_INTERRUPT_ENABLE(WDFINTERRUPT, WDFDEVICE)`.
    PFN_WDF_INTERRUPT_ENABLE = fn(Interrupt: WDFINTERRUPT, AssociatedDevice: WDFDEVICE) -> NTSTATUS;
    /// `NTSTATUS EVT_WDF_INTERRUPT_DISABLE(WDFINTERRUPT, WDFDEVICE)`.
    PFN_WDF_INTERRUPT_DISABLE = fn(Interrupt: WDFINTERRUPT, AssociatedDevice: WDFDEVICE) -> NTSTATUS;
    /// `VOID EVT_WDF_INTERRUPT_WORKITEM(WDFINTERRUPT, WDFOBJECT)`.
    PFN_WDF_INTERRUPT_WORKITEM = fn(Interrupt: WDFINTERRUPT, AssociatedObject: WDFOBJECT);
    /// `BOOLEAN EVT_WDF_INTERRUPT_SYNCHRONIZE(WDFINTERRUPT, WDFCONTEXT)`.
    PFN_WDF_INTERRUPT_SYNCHRONIZE = fn(Interrupt: WDFINTERRUPT, Context: WDFCONTEXT) -> BOOLEAN;
    /// `VOID EVT_WDF_WORKITEM(WDFWORKITEM)`.
    PFN_WDF_WORKITEM = fn(WorkItem: WDFWORKITEM);
    /// `VOID EVT_WDF_TIMER(WDFTIMER)`.
    PFN_WDF_TIMER = fn(Timer: WDFTIMER);
}

/// `typedef struct _WDF_WORKITEM_CONFIG {…}` (`wdfworkitem.h`).
#[repr(C)]
#[derive(Debug, Default, Copy, Clone)]
pub struct _WDF_WORKITEM_CONFIG {
    /// `sizeof(WDF_WORKITEM_CONFIG)`.
    pub Size: ULONG,
    /// `EvtWorkItemFunc`, at `PASSIVE_LEVEL`.
    pub EvtWorkItemFunc: PFN_WDF_WORKITEM,
    /// Whether the callback is serialized with the parent's other callbacks.
    pub AutomaticSerialization: BOOLEAN,
}
/// `typedef _WDF_WORKITEM_CONFIG WDF_WORKITEM_CONFIG;`
pub type WDF_WORKITEM_CONFIG = _WDF_WORKITEM_CONFIG;
/// `*PWDF_WORKITEM_CONFIG`.
pub type PWDF_WORKITEM_CONFIG = *mut _WDF_WORKITEM_CONFIG;

/// `typedef struct _WDF_TIMER_CONFIG {…}` (`wdftimer.h`, KMDF 1.33).
#[repr(C)]
#[derive(Debug, Default, Copy, Clone)]
pub struct _WDF_TIMER_CONFIG {
    /// `sizeof(WDF_TIMER_CONFIG)`.
    pub Size: ULONG,
    /// `EvtTimerFunc`, at `DISPATCH_LEVEL` (the default execution level).
    pub EvtTimerFunc: PFN_WDF_TIMER,
    /// Milliseconds between calls; 0 for a one-shot timer.
    pub Period: ULONG,
    /// Whether the callback is serialized with the parent's other callbacks.
    pub AutomaticSerialization: BOOLEAN,
    /// Milliseconds the system may delay the timer by (coalescing).
    pub TolerableDelay: ULONG,
    /// Whether the timer uses the high-resolution system clock.
    pub UseHighResolutionTimer: BOOLEAN,
}
/// `typedef _WDF_TIMER_CONFIG WDF_TIMER_CONFIG;`
pub type WDF_TIMER_CONFIG = _WDF_TIMER_CONFIG;
/// `*PWDF_TIMER_CONFIG`.
pub type PWDF_TIMER_CONFIG = *mut _WDF_TIMER_CONFIG;

/// `typedef struct _WDF_DRIVER_CONFIG {…}` (`wdfdriver.h`).
#[repr(C)]
#[derive(Debug, Default, Copy, Clone)]
pub struct _WDF_DRIVER_CONFIG {
    /// `sizeof(WDF_DRIVER_CONFIG)`.
    pub Size: ULONG,
    /// `EvtDriverDeviceAdd`.
    pub EvtDriverDeviceAdd: PFN_WDF_DRIVER_DEVICE_ADD,
    /// `EvtDriverUnload`.
    pub EvtDriverUnload: PFN_WDF_DRIVER_UNLOAD,
    /// `WDF_DRIVER_INIT_FLAGS`.
    pub DriverInitFlags: ULONG,
    /// Pool tag for framework allocations on the driver's behalf.
    pub DriverPoolTag: ULONG,
}
/// `typedef _WDF_DRIVER_CONFIG WDF_DRIVER_CONFIG;`
pub type WDF_DRIVER_CONFIG = _WDF_DRIVER_CONFIG;
/// `*PWDF_DRIVER_CONFIG`.
pub type PWDF_DRIVER_CONFIG = *mut _WDF_DRIVER_CONFIG;

/// `typedef struct _WDF_OBJECT_CONTEXT_TYPE_INFO {…}` (`wdfobject.h`).
#[repr(C)]
#[derive(Debug, Copy, Clone)]
pub struct _WDF_OBJECT_CONTEXT_TYPE_INFO {
    /// `sizeof(WDF_OBJECT_CONTEXT_TYPE_INFO)`.
    pub Size: ULONG,
    /// `PCHAR ContextName`.
    pub ContextName: *mut core::ffi::c_char,
    /// `size_t ContextSize`.
    pub ContextSize: usize,
    /// `PCWDF_OBJECT_CONTEXT_TYPE_INFO UniqueType`: the identity of the type.
    pub UniqueType: PCWDF_OBJECT_CONTEXT_TYPE_INFO,
    /// `PFN_GET_UNIQUE_CONTEXT_TYPE EvtDriverGetUniqueContextType`.
    pub EvtDriverGetUniqueContextType: PFN_GET_UNIQUE_CONTEXT_TYPE,
}
// SAFETY: the type info is immutable static data (`WDF_DECLARE_CONTEXT_TYPE` makes it a
// static); its pointers are identities and a name, shared read-only between threads.
unsafe impl Sync for _WDF_OBJECT_CONTEXT_TYPE_INFO {}
/// `typedef _WDF_OBJECT_CONTEXT_TYPE_INFO WDF_OBJECT_CONTEXT_TYPE_INFO;`
pub type WDF_OBJECT_CONTEXT_TYPE_INFO = _WDF_OBJECT_CONTEXT_TYPE_INFO;
/// `const WDF_OBJECT_CONTEXT_TYPE_INFO *`.
pub type PCWDF_OBJECT_CONTEXT_TYPE_INFO = *const _WDF_OBJECT_CONTEXT_TYPE_INFO;

/// `typedef struct _WDF_OBJECT_ATTRIBUTES {…}` (`wdfobject.h`).
#[repr(C)]
#[derive(Debug, Copy, Clone)]
pub struct _WDF_OBJECT_ATTRIBUTES {
    /// `sizeof(WDF_OBJECT_ATTRIBUTES)`.
    pub Size: ULONG,
    /// Called when the object is being deleted (children first, at `<= DISPATCH_LEVEL`).
    pub EvtCleanupCallback: PFN_WDF_OBJECT_CONTEXT_CLEANUP,
    /// Called when the last reference is gone, after cleanup.
    pub EvtDestroyCallback: PFN_WDF_OBJECT_CONTEXT_DESTROY,
    /// Maximum IRQL of the object's callbacks.
    pub ExecutionLevel: WDF_EXECUTION_LEVEL,
    /// Callback serialisation.
    pub SynchronizationScope: WDF_SYNCHRONIZATION_SCOPE,
    /// The parent (default: the driver or the device, per object type).
    pub ParentObject: WDFOBJECT,
    /// Context size if larger than the type's.
    pub ContextSizeOverride: usize,
    /// The context type, or NULL.
    pub ContextTypeInfo: PCWDF_OBJECT_CONTEXT_TYPE_INFO,
}
impl Default for _WDF_OBJECT_ATTRIBUTES {
    fn default() -> Self {
        Self {
            Size: 0,
            EvtCleanupCallback: None,
            EvtDestroyCallback: None,
            ExecutionLevel: 0,
            SynchronizationScope: 0,
            ParentObject: core::ptr::null_mut(),
            ContextSizeOverride: 0,
            ContextTypeInfo: core::ptr::null(),
        }
    }
}
/// `typedef _WDF_OBJECT_ATTRIBUTES WDF_OBJECT_ATTRIBUTES;`
pub type WDF_OBJECT_ATTRIBUTES = _WDF_OBJECT_ATTRIBUTES;
/// `*PWDF_OBJECT_ATTRIBUTES`.
pub type PWDF_OBJECT_ATTRIBUTES = *mut _WDF_OBJECT_ATTRIBUTES;

/// `typedef struct _WDF_PNPPOWER_EVENT_CALLBACKS {…}` (`wdfdevice.h`).
#[repr(C)]
#[derive(Debug, Default, Copy, Clone)]
pub struct _WDF_PNPPOWER_EVENT_CALLBACKS {
    /// `sizeof(WDF_PNPPOWER_EVENT_CALLBACKS)`.
    pub Size: ULONG,
    /// `EvtDeviceD0Entry`.
    pub EvtDeviceD0Entry: PFN_WDF_DEVICE_D0_ENTRY,
    /// `EvtDeviceD0EntryPostInterruptsEnabled`.
    pub EvtDeviceD0EntryPostInterruptsEnabled: PFN_WDF_DEVICE_D0_ENTRY_POST_INTERRUPTS_ENABLED,
    /// `EvtDeviceD0Exit`.
    pub EvtDeviceD0Exit: PFN_WDF_DEVICE_D0_EXIT,
    /// `EvtDeviceD0ExitPreInterruptsDisabled`.
    pub EvtDeviceD0ExitPreInterruptsDisabled: PFN_WDF_DEVICE_D0_EXIT_PRE_INTERRUPTS_DISABLED,
    /// `EvtDevicePrepareHardware`.
    pub EvtDevicePrepareHardware: PFN_WDF_DEVICE_PREPARE_HARDWARE,
    /// `EvtDeviceReleaseHardware`.
    pub EvtDeviceReleaseHardware: PFN_WDF_DEVICE_RELEASE_HARDWARE,
    /// `EvtDeviceSelfManagedIoCleanup`.
    pub EvtDeviceSelfManagedIoCleanup: PFN_WDF_DEVICE_SELF_MANAGED_IO_CLEANUP,
    /// `EvtDeviceSelfManagedIoFlush`.
    pub EvtDeviceSelfManagedIoFlush: PFN_WDF_DEVICE_SELF_MANAGED_IO_FLUSH,
    /// `EvtDeviceSelfManagedIoInit`.
    pub EvtDeviceSelfManagedIoInit: PFN_WDF_DEVICE_SELF_MANAGED_IO_INIT,
    /// `EvtDeviceSelfManagedIoSuspend`.
    pub EvtDeviceSelfManagedIoSuspend: PFN_WDF_DEVICE_SELF_MANAGED_IO_SUSPEND,
    /// `EvtDeviceSelfManagedIoRestart`.
    pub EvtDeviceSelfManagedIoRestart: PFN_WDF_DEVICE_SELF_MANAGED_IO_RESTART,
    /// `EvtDeviceSurpriseRemoval`.
    pub EvtDeviceSurpriseRemoval: PFN_WDF_DEVICE_SURPRISE_REMOVAL,
    /// `EvtDeviceQueryRemove`.
    pub EvtDeviceQueryRemove: PFN_WDF_DEVICE_QUERY_REMOVE,
    /// `EvtDeviceQueryStop`.
    pub EvtDeviceQueryStop: PFN_WDF_DEVICE_QUERY_STOP,
    /// `EvtDeviceUsageNotification`.
    pub EvtDeviceUsageNotification: PFN_WDF_DEVICE_USAGE_NOTIFICATION,
    /// `EvtDeviceRelationsQuery`.
    pub EvtDeviceRelationsQuery: PFN_WDF_DEVICE_RELATIONS_QUERY,
    /// `EvtDeviceUsageNotificationEx`.
    pub EvtDeviceUsageNotificationEx: PFN_WDF_DEVICE_USAGE_NOTIFICATION_EX,
}
/// `typedef _WDF_PNPPOWER_EVENT_CALLBACKS WDF_PNPPOWER_EVENT_CALLBACKS;`
pub type WDF_PNPPOWER_EVENT_CALLBACKS = _WDF_PNPPOWER_EVENT_CALLBACKS;
/// `*PWDF_PNPPOWER_EVENT_CALLBACKS`.
pub type PWDF_PNPPOWER_EVENT_CALLBACKS = *mut _WDF_PNPPOWER_EVENT_CALLBACKS;

/// `typedef struct _WDF_FILEOBJECT_CONFIG {…}` (`wdfdevice.h`).
#[repr(C)]
#[derive(Debug, Default, Copy, Clone)]
pub struct _WDF_FILEOBJECT_CONFIG {
    /// `sizeof(WDF_FILEOBJECT_CONFIG)`.
    pub Size: ULONG,
    /// `EvtDeviceFileCreate`.
    pub EvtDeviceFileCreate: PFN_WDF_DEVICE_FILE_CREATE,
    /// `EvtFileClose`.
    pub EvtFileClose: PFN_WDF_FILE_CLOSE,
    /// `EvtFileCleanup`.
    pub EvtFileCleanup: PFN_WDF_FILE_CLEANUP,
    /// `AutoForwardCleanupClose`.
    pub AutoForwardCleanupClose: WDF_TRI_STATE,
    /// `FileObjectClass`.
    pub FileObjectClass: WDF_FILEOBJECT_CLASS,
}
/// `typedef _WDF_FILEOBJECT_CONFIG WDF_FILEOBJECT_CONFIG;`
pub type WDF_FILEOBJECT_CONFIG = _WDF_FILEOBJECT_CONFIG;
/// `*PWDF_FILEOBJECT_CONFIG`.
pub type PWDF_FILEOBJECT_CONFIG = *mut _WDF_FILEOBJECT_CONFIG;

/// `struct { ULONG NumberOfPresentedRequests; } Parallel;`
#[repr(C)]
#[derive(Debug, Default, Copy, Clone)]
pub struct _WDF_IO_QUEUE_CONFIG__bindgen_ty_1__bindgen_ty_1 {
    /// Requests a parallel queue presents at once (-1: unlimited).
    pub NumberOfPresentedRequests: ULONG,
}
/// `union { … } Settings;`
#[repr(C)]
#[derive(Copy, Clone)]
pub union _WDF_IO_QUEUE_CONFIG__bindgen_ty_1 {
    /// `Parallel`.
    pub Parallel: _WDF_IO_QUEUE_CONFIG__bindgen_ty_1__bindgen_ty_1,
}
impl Default for _WDF_IO_QUEUE_CONFIG__bindgen_ty_1 {
    fn default() -> Self {
        Self {
            Parallel: _WDF_IO_QUEUE_CONFIG__bindgen_ty_1__bindgen_ty_1::default(),
        }
    }
}
impl core::fmt::Debug for _WDF_IO_QUEUE_CONFIG__bindgen_ty_1 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Settings")
    }
}

/// `typedef struct _WDF_IO_QUEUE_CONFIG {…}` (`wdfio.h`).
#[repr(C)]
#[derive(Debug, Copy, Clone)]
pub struct _WDF_IO_QUEUE_CONFIG {
    /// `sizeof(WDF_IO_QUEUE_CONFIG)`.
    pub Size: ULONG,
    /// Sequential, parallel or manual.
    pub DispatchType: WDF_IO_QUEUE_DISPATCH_TYPE,
    /// Whether the queue stops while the device leaves D0 (`WdfUseDefault`: yes for FDOs).
    pub PowerManaged: WDF_TRI_STATE,
    /// Whether zero-length reads and writes reach the driver.
    pub AllowZeroLengthRequests: BOOLEAN,
    /// The device's default queue.
    pub DefaultQueue: BOOLEAN,
    /// `EvtIoDefault`.
    pub EvtIoDefault: PFN_WDF_IO_QUEUE_IO_DEFAULT,
    /// `EvtIoRead`.
    pub EvtIoRead: PFN_WDF_IO_QUEUE_IO_READ,
    /// `EvtIoWrite`.
    pub EvtIoWrite: PFN_WDF_IO_QUEUE_IO_WRITE,
    /// `EvtIoDeviceControl`.
    pub EvtIoDeviceControl: PFN_WDF_IO_QUEUE_IO_DEVICE_CONTROL,
    /// `EvtIoInternalDeviceControl`.
    pub EvtIoInternalDeviceControl: PFN_WDF_IO_QUEUE_IO_INTERNAL_DEVICE_CONTROL,
    /// `EvtIoStop`.
    pub EvtIoStop: PFN_WDF_IO_QUEUE_IO_STOP,
    /// `EvtIoResume`.
    pub EvtIoResume: PFN_WDF_IO_QUEUE_IO_RESUME,
    /// `EvtIoCanceledOnQueue`.
    pub EvtIoCanceledOnQueue: PFN_WDF_IO_QUEUE_IO_CANCELED_ON_QUEUE,
    /// `Settings`.
    pub Settings: _WDF_IO_QUEUE_CONFIG__bindgen_ty_1,
    /// `WDFDRIVER Driver` (KMDF 1.11+).
    pub Driver: WDFDRIVER,
}
impl Default for _WDF_IO_QUEUE_CONFIG {
    fn default() -> Self {
        Self {
            Size: 0,
            DispatchType: 0,
            PowerManaged: 0,
            AllowZeroLengthRequests: 0,
            DefaultQueue: 0,
            EvtIoDefault: None,
            EvtIoRead: None,
            EvtIoWrite: None,
            EvtIoDeviceControl: None,
            EvtIoInternalDeviceControl: None,
            EvtIoStop: None,
            EvtIoResume: None,
            EvtIoCanceledOnQueue: None,
            Settings: _WDF_IO_QUEUE_CONFIG__bindgen_ty_1::default(),
            Driver: core::ptr::null_mut(),
        }
    }
}
/// `typedef _WDF_IO_QUEUE_CONFIG WDF_IO_QUEUE_CONFIG;`
pub type WDF_IO_QUEUE_CONFIG = _WDF_IO_QUEUE_CONFIG;
/// `*PWDF_IO_QUEUE_CONFIG`.
pub type PWDF_IO_QUEUE_CONFIG = *mut _WDF_IO_QUEUE_CONFIG;

/// `typedef struct _WDF_INTERRUPT_CONFIG {…}` (`wdfinterrupt.h`).
#[repr(C)]
#[derive(Debug, Copy, Clone)]
pub struct _WDF_INTERRUPT_CONFIG {
    /// `sizeof(WDF_INTERRUPT_CONFIG)`.
    pub Size: ULONG,
    /// A spin lock shared with other interrupts of the device, or NULL.
    pub SpinLock: WDFSPINLOCK,
    /// `ShareVector`.
    pub ShareVector: WDF_TRI_STATE,
    /// `FloatingSave`.
    pub FloatingSave: BOOLEAN,
    /// Serialise the DPC with the device's other callbacks.
    pub AutomaticSerialization: BOOLEAN,
    /// `EvtInterruptIsr` (required).
    pub EvtInterruptIsr: PFN_WDF_INTERRUPT_ISR,
    /// `EvtInterruptDpc`.
    pub EvtInterruptDpc: PFN_WDF_INTERRUPT_DPC,
    /// `EvtInterruptEnable` (at DIRQL, after D0Entry).
    pub EvtInterruptEnable: PFN_WDF_INTERRUPT_ENABLE,
    /// `EvtInterruptDisable` (at DIRQL, before D0Exit).
    pub EvtInterruptDisable: PFN_WDF_INTERRUPT_DISABLE,
    /// `EvtInterruptWorkItem`.
    pub EvtInterruptWorkItem: PFN_WDF_INTERRUPT_WORKITEM,
    /// Raw resource (interrupts created in `EvtDevicePrepareHardware`).
    pub InterruptRaw: PCM_PARTIAL_RESOURCE_DESCRIPTOR,
    /// Translated resource.
    pub InterruptTranslated: PCM_PARTIAL_RESOURCE_DESCRIPTOR,
    /// `WaitLock` (passive-level interrupts).
    pub WaitLock: WDFWAITLOCK,
    /// `PassiveHandling`.
    pub PassiveHandling: BOOLEAN,
    /// `ReportInactiveOnPowerDown`.
    pub ReportInactiveOnPowerDown: WDF_TRI_STATE,
    /// `CanWakeDevice`.
    pub CanWakeDevice: BOOLEAN,
}
impl Default for _WDF_INTERRUPT_CONFIG {
    fn default() -> Self {
        Self {
            Size: 0,
            SpinLock: core::ptr::null_mut(),
            ShareVector: 0,
            FloatingSave: 0,
            AutomaticSerialization: 0,
            EvtInterruptIsr: None,
            EvtInterruptDpc: None,
            EvtInterruptEnable: None,
            EvtInterruptDisable: None,
            EvtInterruptWorkItem: None,
            InterruptRaw: core::ptr::null_mut(),
            InterruptTranslated: core::ptr::null_mut(),
            WaitLock: core::ptr::null_mut(),
            PassiveHandling: 0,
            ReportInactiveOnPowerDown: 0,
            CanWakeDevice: 0,
        }
    }
}
/// `typedef _WDF_INTERRUPT_CONFIG WDF_INTERRUPT_CONFIG;`
pub type WDF_INTERRUPT_CONFIG = _WDF_INTERRUPT_CONFIG;
/// `*PWDF_INTERRUPT_CONFIG`.
pub type PWDF_INTERRUPT_CONFIG = *mut _WDF_INTERRUPT_CONFIG;

/// `Parameters.Create` of `WDF_REQUEST_PARAMETERS`.
#[repr(C)]
#[derive(Debug, Copy, Clone)]
pub struct _WDF_REQUEST_PARAMETERS__bindgen_ty_1__bindgen_ty_1 {
    /// `PIO_SECURITY_CONTEXT SecurityContext`.
    pub SecurityContext: PVOID,
    /// `Options`.
    pub Options: ULONG,
    /// `FileAttributes` (`POINTER_ALIGNMENT`).
    pub FileAttributes: USHORT,
    /// `ShareAccess`.
    pub ShareAccess: USHORT,
    /// `EaLength` (`POINTER_ALIGNMENT`).
    pub EaLength: ULONG,
}
/// `Parameters.Read` / `Parameters.Write`.
#[repr(C)]
#[derive(Debug, Default, Copy, Clone)]
pub struct _WDF_REQUEST_PARAMETERS__bindgen_ty_1__bindgen_ty_2 {
    /// `size_t Length`.
    pub Length: usize,
    /// `Key`.
    pub Key: ULONG,
    /// `DeviceOffset`.
    pub DeviceOffset: i64,
}
/// `Parameters.DeviceIoControl`.
#[repr(C)]
#[derive(Debug, Copy, Clone)]
pub struct _WDF_REQUEST_PARAMETERS__bindgen_ty_1__bindgen_ty_4 {
    /// `size_t OutputBufferLength`.
    pub OutputBufferLength: usize,
    /// `size_t InputBufferLength`.
    pub InputBufferLength: usize,
    /// `ULONG IoControlCode`.
    pub IoControlCode: ULONG,
    /// `PVOID Type3InputBuffer` (METHOD_NEITHER only).
    pub Type3InputBuffer: PVOID,
}
/// `Parameters.Others`.
#[repr(C)]
#[derive(Debug, Copy, Clone)]
pub struct _WDF_REQUEST_PARAMETERS__bindgen_ty_1__bindgen_ty_5 {
    /// `Arg1`.
    pub Arg1: PVOID,
    /// `Arg2`.
    pub Arg2: PVOID,
    /// `IoControlCode`.
    pub IoControlCode: ULONG,
    /// `Arg4`.
    pub Arg4: PVOID,
}
/// `union { … } Parameters;` of `WDF_REQUEST_PARAMETERS`.
#[repr(C)]
#[derive(Copy, Clone)]
pub union _WDF_REQUEST_PARAMETERS__bindgen_ty_1 {
    /// `Create`.
    pub Create: _WDF_REQUEST_PARAMETERS__bindgen_ty_1__bindgen_ty_1,
    /// `Read`.
    pub Read: _WDF_REQUEST_PARAMETERS__bindgen_ty_1__bindgen_ty_2,
    /// `Write`.
    pub Write: _WDF_REQUEST_PARAMETERS__bindgen_ty_1__bindgen_ty_2,
    /// `DeviceIoControl`.
    pub DeviceIoControl: _WDF_REQUEST_PARAMETERS__bindgen_ty_1__bindgen_ty_4,
    /// `Others`.
    pub Others: _WDF_REQUEST_PARAMETERS__bindgen_ty_1__bindgen_ty_5,
}
impl Default for _WDF_REQUEST_PARAMETERS__bindgen_ty_1 {
    fn default() -> Self {
        Self {
            Read: _WDF_REQUEST_PARAMETERS__bindgen_ty_1__bindgen_ty_2::default(),
        }
    }
}
impl core::fmt::Debug for _WDF_REQUEST_PARAMETERS__bindgen_ty_1 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Parameters")
    }
}

/// `typedef struct _WDF_REQUEST_PARAMETERS {…}` (`wdfrequest.h`).
#[repr(C)]
#[derive(Debug, Default, Copy, Clone)]
pub struct _WDF_REQUEST_PARAMETERS {
    /// `sizeof(WDF_REQUEST_PARAMETERS)`.
    pub Size: USHORT,
    /// `MinorFunction`.
    pub MinorFunction: UCHAR,
    /// `Type`.
    pub Type: WDF_REQUEST_TYPE,
    /// `Parameters`.
    pub Parameters: _WDF_REQUEST_PARAMETERS__bindgen_ty_1,
}
/// `typedef _WDF_REQUEST_PARAMETERS WDF_REQUEST_PARAMETERS;`
pub type WDF_REQUEST_PARAMETERS = _WDF_REQUEST_PARAMETERS;
/// `*PWDF_REQUEST_PARAMETERS`.
pub type PWDF_REQUEST_PARAMETERS = *mut _WDF_REQUEST_PARAMETERS;

/// `u.Memory` / `u.Generic`: `PHYSICAL_ADDRESS Start; ULONG Length;` (`#pragma pack(4)`).
#[repr(C, packed(4))]
#[derive(Copy, Clone)]
pub struct _CM_PARTIAL_RESOURCE_DESCRIPTOR__bindgen_ty_1__bindgen_ty_1 {
    /// `Start`.
    pub Start: PHYSICAL_ADDRESS,
    /// `Length`.
    pub Length: ULONG,
}
/// `u.Interrupt`: `USHORT Level; USHORT Group; ULONG Vector; KAFFINITY Affinity;`.
#[repr(C, packed(4))]
#[derive(Debug, Default, Copy, Clone)]
pub struct _CM_PARTIAL_RESOURCE_DESCRIPTOR__bindgen_ty_1__bindgen_ty_3 {
    /// `Level` (a USHORT since Windows 7 with groups).
    pub Level: USHORT,
    /// `Group`.
    pub Group: USHORT,
    /// `Vector`.
    pub Vector: ULONG,
    /// `Affinity`.
    pub Affinity: KAFFINITY,
}
/// `u.MessageInterrupt.Raw`: `USHORT Group; USHORT MessageCount; ULONG Vector; KAFFINITY Affinity;`.
#[repr(C, packed(4))]
#[derive(Debug, Default, Copy, Clone)]
pub struct _CM_PARTIAL_RESOURCE_DESCRIPTOR__bindgen_ty_1__bindgen_ty_4__bindgen_ty_1__bindgen_ty_1 {
    /// `Group`.
    pub Group: USHORT,
    /// `MessageCount`.
    pub MessageCount: USHORT,
    /// `Vector`.
    pub Vector: ULONG,
    /// `Affinity`.
    pub Affinity: KAFFINITY,
}
/// `union { Raw; Translated; }` of `u.MessageInterrupt`.
#[repr(C, packed(4))]
#[derive(Copy, Clone)]
pub union _CM_PARTIAL_RESOURCE_DESCRIPTOR__bindgen_ty_1__bindgen_ty_4__bindgen_ty_1 {
    /// `Raw`.
    pub Raw:
        _CM_PARTIAL_RESOURCE_DESCRIPTOR__bindgen_ty_1__bindgen_ty_4__bindgen_ty_1__bindgen_ty_1,
    /// `Translated` (the same layout as `u.Interrupt`).
    pub Translated: _CM_PARTIAL_RESOURCE_DESCRIPTOR__bindgen_ty_1__bindgen_ty_3,
}
/// `u.MessageInterrupt`.
#[repr(C, packed(4))]
#[derive(Copy, Clone)]
pub struct _CM_PARTIAL_RESOURCE_DESCRIPTOR__bindgen_ty_1__bindgen_ty_4 {
    /// `DUMMYUNIONNAME`.
    pub __bindgen_anon_1: _CM_PARTIAL_RESOURCE_DESCRIPTOR__bindgen_ty_1__bindgen_ty_4__bindgen_ty_1,
}
/// `union { … } u;` of `CM_PARTIAL_RESOURCE_DESCRIPTOR` (the members RHCA reads).
#[repr(C, packed(4))]
#[derive(Copy, Clone)]
pub union _CM_PARTIAL_RESOURCE_DESCRIPTOR__bindgen_ty_1 {
    /// `Generic`.
    pub Generic: _CM_PARTIAL_RESOURCE_DESCRIPTOR__bindgen_ty_1__bindgen_ty_1,
    /// `Port`.
    pub Port: _CM_PARTIAL_RESOURCE_DESCRIPTOR__bindgen_ty_1__bindgen_ty_1,
    /// `Interrupt`.
    pub Interrupt: _CM_PARTIAL_RESOURCE_DESCRIPTOR__bindgen_ty_1__bindgen_ty_3,
    /// `MessageInterrupt`.
    pub MessageInterrupt: _CM_PARTIAL_RESOURCE_DESCRIPTOR__bindgen_ty_1__bindgen_ty_4,
    /// `Memory`.
    pub Memory: _CM_PARTIAL_RESOURCE_DESCRIPTOR__bindgen_ty_1__bindgen_ty_1,
}

/// `typedef struct _CM_PARTIAL_RESOURCE_DESCRIPTOR {…}` (`wdm.h`, `#pragma pack(4)`, 20 bytes).
#[repr(C, packed(4))]
#[derive(Copy, Clone)]
pub struct _CM_PARTIAL_RESOURCE_DESCRIPTOR {
    /// `CmResourceType*`.
    pub Type: UCHAR,
    /// `CmResourceShare*`.
    pub ShareDisposition: UCHAR,
    /// `CM_RESOURCE_*` flags.
    pub Flags: USHORT,
    /// The type-specific part.
    pub u: _CM_PARTIAL_RESOURCE_DESCRIPTOR__bindgen_ty_1,
}
impl core::fmt::Debug for _CM_PARTIAL_RESOURCE_DESCRIPTOR {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let (t, fl) = (self.Type, self.Flags);
        f.debug_struct("CM_PARTIAL_RESOURCE_DESCRIPTOR")
            .field("Type", &t)
            .field("Flags", &fl)
            .finish_non_exhaustive()
    }
}
/// `typedef _CM_PARTIAL_RESOURCE_DESCRIPTOR CM_PARTIAL_RESOURCE_DESCRIPTOR;`
pub type CM_PARTIAL_RESOURCE_DESCRIPTOR = _CM_PARTIAL_RESOURCE_DESCRIPTOR;
/// `*PCM_PARTIAL_RESOURCE_DESCRIPTOR`.
pub type PCM_PARTIAL_RESOURCE_DESCRIPTOR = *mut _CM_PARTIAL_RESOURCE_DESCRIPTOR;

/// `#define CmResourceTypePort 1` (`wdm.h`).
pub const CmResourceTypePort: u32 = 1;
/// `#define CmResourceTypeInterrupt 2`.
pub const CmResourceTypeInterrupt: u32 = 2;
/// `#define CmResourceTypeMemory 3`.
pub const CmResourceTypeMemory: u32 = 3;
/// `#define CM_RESOURCE_INTERRUPT_LEVEL_SENSITIVE 0`.
pub const CM_RESOURCE_INTERRUPT_LEVEL_SENSITIVE: u32 = 0;
/// `#define CM_RESOURCE_INTERRUPT_LATCHED 1`.
pub const CM_RESOURCE_INTERRUPT_LATCHED: u32 = 1;
/// `#define CM_RESOURCE_INTERRUPT_MESSAGE 2`.
pub const CM_RESOURCE_INTERRUPT_MESSAGE: u32 = 2;
/// `#define CM_RESOURCE_MEMORY_READ_WRITE 0`.
pub const CM_RESOURCE_MEMORY_READ_WRITE: u32 = 0;
/// `#define FILE_DEVICE_SECURE_OPEN 0x00000100` (`wdm.h`): the I/O manager applies the device
/// object's security to every open, including opens of names inside the device's namespace.
pub const FILE_DEVICE_SECURE_OPEN: u32 = 0x0000_0100;
/// `#define FILE_DEVICE_UNKNOWN 0x22`.
pub const FILE_DEVICE_UNKNOWN: u32 = 0x22;

/// `WDF_NO_OBJECT_ATTRIBUTES` (wdk-sys writes it by hand as a null pointer).
pub const WDF_NO_OBJECT_ATTRIBUTES: PWDF_OBJECT_ATTRIBUTES = core::ptr::null_mut();
/// `WDF_NO_HANDLE`.
pub const WDF_NO_HANDLE: PVOID = core::ptr::null_mut();
/// `WDF_NO_CONTEXT`.
pub const WDF_NO_CONTEXT: PVOID = core::ptr::null_mut();
