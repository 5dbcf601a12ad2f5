//! Devices: what `EvtDriverDeviceAdd` configures before the device exists ([`DeviceInit`]),
//! the driver's context value in the framework's context memory (in place, under a type name the
//! debugger can dump, its declaration checked against the type on every access, dropped at the
//! device's cleanup), and the objects a device parents (queues, interrupts, work items, timers).

use core::any::TypeId;
use core::ffi::CStr;
use core::mem::MaybeUninit;
use core::ptr::null_mut;

use super::init;
use super::{Device, Interrupt, Queue, Timer, WorkItem, size_of_u32};
use crate::sys::{
    _WDF_DEVICE_FAILED_ACTION, BOOLEAN_FALSE, GUID, NT_SUCCESS, NTSTATUS, PDEVICE_OBJECT,
    PFN_WDF_DEVICE_FILE_CREATE, PFN_WDF_FILE_CLEANUP, PFN_WDF_TIMER, PFN_WDF_WORKITEM,
    PWDFDEVICE_INIT, STATUS_INSUFFICIENT_RESOURCES, STATUS_INVALID_PARAMETER, WDF_DEVICE_IO_TYPE,
    WDF_INTERRUPT_CONFIG, WDF_IO_QUEUE_CONFIG, WDF_NO_OBJECT_ATTRIBUTES, WDF_OBJECT_ATTRIBUTES,
    WDF_OBJECT_CONTEXT_TYPE_INFO, WDF_PNPPOWER_EVENT_CALLBACKS, WDF_TIMER_CONFIG,
    WDF_WORKITEM_CONFIG, WDFDEVICE, WDFINTERRUPT, WDFOBJECT, WDFQUEUE, WDFTIMER, WDFWORKITEM,
    call_unsafe_wdf_function_binding,
};

/// What `EvtDriverDeviceAdd` configures before the device exists.
#[derive(Debug)]
pub struct DeviceInit(pub PWDFDEVICE_INIT);

/// `MEMORY_ALLOCATION_ALIGNMENT` on x64 (winnt.h: 16 under `_WIN64`; a macro bindgen does not
/// translate): the framework aligns every context to it.
const MEMORY_ALLOCATION_ALIGNMENT: usize = 16;

/// The declaration of a context type: what `WDF_DECLARE_CONTEXT_TYPE` makes in C.
///
/// The framework's type info, with the Rust type it was declared for. Made by
/// `context_type!` (one static per type), read by the framework and never written.
#[derive(Debug)]
pub struct ContextTypeInfo {
    info: WDF_OBJECT_CONTEXT_TYPE_INFO,
    /// The type the info was declared for: [`DeviceInit::create`] and [`Device::context`]
    /// refuse a declaration made for another type, so a wrong declaration cannot confuse types.
    type_id: fn() -> TypeId,
}

// SAFETY: never written after initialisation (the framework only reads it), and its pointers
// name 'static data: the name literal and the static itself.
unsafe impl Sync for ContextTypeInfo {}

impl ContextTypeInfo {
    /// The declaration of `T`'s context, named `name` (the type's path, as the PDB names it,
    /// so that `!wdfkd.wdfobject` can dump it), at `this`: the static being initialised, which
    /// is the type's identity for the framework (`UniqueType`).
    #[must_use]
    pub const fn new<T: 'static>(name: &'static CStr, this: *const Self) -> Self {
        Self {
            info: WDF_OBJECT_CONTEXT_TYPE_INFO {
                Size: size_of_u32::<WDF_OBJECT_CONTEXT_TYPE_INFO>(),
                ContextName: name.as_ptr(),
                ContextSize: core::mem::size_of::<InPlace<T>>(),
                UniqueType: this.cast(),
                EvtDriverGetUniqueContextType: None,
            },
            type_id: TypeId::of::<T>,
        }
    }
}

/// A type the framework allocates, in place, as an object's context.
pub trait ContextType: Send + Sync + Sized + 'static {
    /// The type's declaration: `context_type!(Self, c"crate::path::Type")`.
    fn type_info() -> &'static ContextTypeInfo;
}

/// The declaration of `$ty`'s context, named `$name`: a static [`ContextTypeInfo`] whose
/// address is the type's identity. The name is the type's full path (`core::any::type_name`),
/// which is how the PDB names a Rust type, so `!wdfkd.wdfdevice` lists the context as
/// `dt rhca!rhca::kmdf::DeviceCtx` and `dx` can show it.
macro_rules! context_type {
    ($ty:ty, $name:literal) => {{
        static INFO: $crate::sys::wdf::ContextTypeInfo =
            $crate::sys::wdf::ContextTypeInfo::new::<$ty>($name, &raw const INFO);
        &INFO
    }};
}
pub(crate) use context_type;

/// The framework's context memory as the driver lays it out: the value first, so that the
/// debugger's `dt`/`dx` at the context's address shows the value as its declared type, then
/// whether the value is live (the framework zeroes the memory; the value is written after
/// `WdfDeviceCreate` returns and dropped at the object's cleanup).
#[repr(C)]
struct InPlace<T> {
    value: MaybeUninit<T>,
    live: bool,
}

/// The context of `object` declared by `T`, or NULL.
fn in_place<T: ContextType>(object: WDFOBJECT) -> *mut InPlace<T> {
    let info = T::type_info();
    if (info.type_id)() != TypeId::of::<T>() {
        return null_mut();
    }
    // SAFETY: the framework returns the context of `object` or NULL; the type info is static.
    unsafe {
        call_unsafe_wdf_function_binding!(
            WdfObjectGetTypedContextWorker,
            object,
            &raw const info.info
        )
    }
    .cast()
}

/// `EvtCleanupCallback` of an object with a `T` context: drops the value in place.
unsafe extern "C" fn cleanup_in_place<T: ContextType>(object: WDFOBJECT) {
    let c = in_place::<T>(object);
    if c.is_null() {
        return;
    }
    // SAFETY: the framework's context memory, laid out as `InPlace<T>` (`ContextSize` is its
    // size and the type was checked); cleanup runs once, after every callback of the object
    // has returned, so nothing else reaches the context now.
    let c = unsafe { &mut *c };
    if c.live {
        c.live = false;
        // SAFETY: live: written in `create` and not dropped since.
        unsafe { c.value.assume_init_drop() };
    }
}

impl DeviceInit {
    /// `WdfDeviceInitSetPnpPowerEventCallbacks`.
    pub fn set_pnp_power(&self, callbacks: &WDF_PNPPOWER_EVENT_CALLBACKS) {
        let mut c = *callbacks;
        // SAFETY: the framework's init and a live struct (copied by the framework).
        unsafe {
            call_unsafe_wdf_function_binding!(
                WdfDeviceInitSetPnpPowerEventCallbacks,
                self.0,
                &raw mut c
            );
        };
    }

    /// `WdfDeviceInitSetIoType`.
    pub fn set_io_type(&self, io_type: WDF_DEVICE_IO_TYPE) {
        // SAFETY: the framework's init.
        unsafe { call_unsafe_wdf_function_binding!(WdfDeviceInitSetIoType, self.0, io_type) };
    }

    /// `WdfDeviceInitSetFileObjectConfig` with create and cleanup callbacks.
    pub fn set_file_callbacks(
        &self,
        create: PFN_WDF_DEVICE_FILE_CREATE,
        cleanup: PFN_WDF_FILE_CLEANUP,
    ) {
        let mut c = init::WDF_FILEOBJECT_CONFIG_INIT(create, None, cleanup);
        // SAFETY: the framework's init and a live struct.
        unsafe {
            call_unsafe_wdf_function_binding!(
                WdfDeviceInitSetFileObjectConfig,
                self.0,
                &raw mut c,
                WDF_NO_OBJECT_ATTRIBUTES
            );
        };
    }

    /// `WdfDeviceInitSetCharacteristics` (or-ed into the defaults).
    pub fn add_characteristics(&self, characteristics: u32) {
        // SAFETY: the framework's init.
        unsafe {
            call_unsafe_wdf_function_binding!(
                WdfDeviceInitSetCharacteristics,
                self.0,
                characteristics,
                1
            );
        };
    }

    /// `WdfDeviceInitSetExclusive`.
    pub fn set_exclusive(&self, exclusive: bool) {
        // SAFETY: the framework's init.
        unsafe {
            call_unsafe_wdf_function_binding!(
                WdfDeviceInitSetExclusive,
                self.0,
                u8::from(exclusive)
            );
        };
    }

    /// `WdfDeviceCreate`, with `value` as the device's context, in place (dropped at the
    /// device's cleanup).
    ///
    /// # Errors
    /// The framework's status; `STATUS_INVALID_PARAMETER` for a declaration made for another
    /// type.
    pub fn create<T: ContextType>(mut self, value: T) -> Result<Device, NTSTATUS> {
        const {
            assert!(
                core::mem::align_of::<InPlace<T>>() <= MEMORY_ALLOCATION_ALIGNMENT,
                "the framework aligns contexts to MEMORY_ALLOCATION_ALIGNMENT only"
            );
        };
        let info = T::type_info();
        if (info.type_id)() != TypeId::of::<T>() {
            return Err(STATUS_INVALID_PARAMETER);
        }
        let mut attrs = WDF_OBJECT_ATTRIBUTES {
            EvtCleanupCallback: Some(cleanup_in_place::<T>),
            ContextTypeInfo: &raw const info.info,
            ..init::WDF_OBJECT_ATTRIBUTES_INIT()
        };
        let mut device: WDFDEVICE = null_mut();
        // SAFETY: the framework's init (consumed on success) and live out parameters.
        let st = unsafe {
            call_unsafe_wdf_function_binding!(
                WdfDeviceCreate,
                &raw mut self.0,
                &raw mut attrs,
                &raw mut device
            )
        };
        if !NT_SUCCESS(st) {
            return Err(st);
        }
        let c = in_place::<T>(device.cast());
        if c.is_null() {
            return Err(STATUS_INSUFFICIENT_RESOURCES);
        }
        // SAFETY: the framework allocated `ContextSize` (= size_of::<InPlace<T>>) zeroed bytes,
        // aligned as asserted above, for the new device (zero is a valid `InPlace<T>`: the value
        // uninitialised, not live); nothing else reaches them yet (the device's callbacks start
        // after EvtDriverDeviceAdd returns).
        let c = unsafe { &mut *c };
        c.value.write(value);
        c.live = true;
        Ok(Device(device))
    }
}

impl Device {
    /// The driver's context value, when the device has a live `T` context.
    #[must_use]
    pub fn context<T: ContextType>(self) -> Option<&'static T> {
        let c = in_place::<T>(self.0.cast());
        if c.is_null() {
            return None;
        }
        // SAFETY: the framework's context memory, laid out as `InPlace<T>`; `live` is set once
        // in `create` before the device's callbacks run and cleared at its cleanup, after they
        // have all returned.
        let c = unsafe { &*c };
        if !c.live {
            return None;
        }
        // SAFETY: live: written in `create`, not dropped before the device's cleanup. The value
        // is only ever shared (its interior mutability is its own), and `'static` stands for
        // "while a callback of the device runs", the only place drivers reach it from.
        Some(unsafe { c.value.assume_init_ref() })
    }

    /// `WdfDeviceWdmGetPhysicalDevice`.
    #[must_use]
    pub fn pdo(self) -> PDEVICE_OBJECT {
        // SAFETY: a live device.
        unsafe { call_unsafe_wdf_function_binding!(WdfDeviceWdmGetPhysicalDevice, self.0) }
    }

    /// `WdfDeviceWdmGetDeviceObject`.
    #[must_use]
    pub fn wdm_device(self) -> PDEVICE_OBJECT {
        // SAFETY: a live device.
        unsafe { call_unsafe_wdf_function_binding!(WdfDeviceWdmGetDeviceObject, self.0) }
    }

    /// `WdfDeviceCreateDeviceInterface` for `guid`.
    ///
    /// # Errors
    /// The framework's status.
    pub fn create_interface(self, guid: &GUID) -> Result<(), NTSTATUS> {
        // SAFETY: a live device and GUID; no reference string.
        let st = unsafe {
            call_unsafe_wdf_function_binding!(
                WdfDeviceCreateDeviceInterface,
                self.0,
                core::ptr::from_ref(guid),
                core::ptr::null()
            )
        };
        if NT_SUCCESS(st) { Ok(()) } else { Err(st) }
    }

    /// `WdfIoQueueCreate`.
    ///
    /// # Errors
    /// The framework's status.
    pub fn create_queue(self, config: &WDF_IO_QUEUE_CONFIG) -> Result<Queue, NTSTATUS> {
        let mut c = *config;
        let mut q: WDFQUEUE = null_mut();
        // SAFETY: a live device, config and out parameter.
        let st = unsafe {
            call_unsafe_wdf_function_binding!(
                WdfIoQueueCreate,
                self.0,
                &raw mut c,
                WDF_NO_OBJECT_ATTRIBUTES,
                &raw mut q
            )
        };
        if NT_SUCCESS(st) {
            Ok(Queue(q))
        } else {
            Err(st)
        }
    }

    /// `WdfInterruptCreate`.
    ///
    /// # Errors
    /// The framework's status.
    pub fn create_interrupt(self, config: &WDF_INTERRUPT_CONFIG) -> Result<Interrupt, NTSTATUS> {
        let mut c = *config;
        let mut i: WDFINTERRUPT = null_mut();
        // SAFETY: a live device, config and out parameter.
        let st = unsafe {
            call_unsafe_wdf_function_binding!(
                WdfInterruptCreate,
                self.0,
                &raw mut c,
                WDF_NO_OBJECT_ATTRIBUTES,
                &raw mut i
            )
        };
        if NT_SUCCESS(st) {
            Ok(Interrupt(i))
        } else {
            Err(st)
        }
    }

    /// `WdfWorkItemCreate` with the device as parent: `callback` runs at `PASSIVE_LEVEL` on a
    /// system worker thread after each [`WorkItem::enqueue`].
    ///
    /// # Errors
    /// The framework's status.
    pub fn create_work_item(self, callback: PFN_WDF_WORKITEM) -> Result<WorkItem, NTSTATUS> {
        let mut config = WDF_WORKITEM_CONFIG {
            // The callback takes the device lock itself; the framework need not serialise it.
            AutomaticSerialization: BOOLEAN_FALSE,
            ..init::WDF_WORKITEM_CONFIG_INIT(callback)
        };
        let mut attributes = WDF_OBJECT_ATTRIBUTES {
            ParentObject: self.0.cast(),
            ..init::WDF_OBJECT_ATTRIBUTES_INIT()
        };
        let mut w: WDFWORKITEM = null_mut();
        // SAFETY: live config, attributes and out parameter; the parent is a live device.
        let st = unsafe {
            call_unsafe_wdf_function_binding!(
                WdfWorkItemCreate,
                &raw mut config,
                &raw mut attributes,
                &raw mut w
            )
        };
        if NT_SUCCESS(st) {
            Ok(WorkItem(w))
        } else {
            Err(st)
        }
    }

    /// `WdfTimerCreate` with the device as parent: `callback` runs at `DISPATCH_LEVEL` each
    /// `period_ms` milliseconds once started (0: once per [`Timer::start`]).
    ///
    /// # Errors
    /// The status `WdfTimerCreate` failed with.
    pub fn create_timer(self, callback: PFN_WDF_TIMER, period_ms: u32) -> Result<Timer, NTSTATUS> {
        let mut config = WDF_TIMER_CONFIG {
            // The callback takes the device lock itself; the framework need not serialise it.
            AutomaticSerialization: BOOLEAN_FALSE,
            // A watchdog does not mind the system coalescing its expiries a little.
            TolerableDelay: period_ms / 4,
            // A period above MAXLONG wraps here and stays above it there: KMDF refuses it.
            ..init::WDF_TIMER_CONFIG_INIT_PERIODIC(callback, period_ms.cast_signed())
        };
        let mut attributes = WDF_OBJECT_ATTRIBUTES {
            ParentObject: self.0.cast(),
            ..init::WDF_OBJECT_ATTRIBUTES_INIT()
        };
        let mut t: WDFTIMER = null_mut();
        // SAFETY: live config, attributes and out parameter; the parent is a live device.
        let st = unsafe {
            call_unsafe_wdf_function_binding!(
                WdfTimerCreate,
                &raw mut config,
                &raw mut attributes,
                &raw mut t
            )
        };
        if NT_SUCCESS(st) {
            Ok(Timer(t))
        } else {
            Err(st)
        }
    }

    /// `WdfDeviceSetFailed(WdfDeviceFailedNoRestart)`.
    pub fn set_failed(self) {
        // SAFETY: a live device.
        unsafe {
            call_unsafe_wdf_function_binding!(
                WdfDeviceSetFailed,
                self.0,
                _WDF_DEVICE_FAILED_ACTION::WdfDeviceFailedNoRestart
            );
        };
    }
}
