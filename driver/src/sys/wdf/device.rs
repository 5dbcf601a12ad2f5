//! Devices: what `EvtDriverDeviceAdd` configures before the device exists ([`DeviceInit`]),
//! the driver's context value in the framework's context slot (boxed, its type checked on every
//! access, dropped at the device's cleanup), and the objects a device parents (queues,
//! interrupts, work items, timers).

use alloc::boxed::Box;
use core::any::TypeId;
use core::ffi::c_void;
use core::ptr::null_mut;

use super::init;
use super::{Device, Interrupt, Queue, Timer, WorkItem, size_of_u32};
use crate::sys::{
    _WDF_DEVICE_FAILED_ACTION, BOOLEAN_FALSE, GUID, NT_SUCCESS, NTSTATUS, PDEVICE_OBJECT,
    PFN_WDF_DEVICE_FILE_CREATE, PFN_WDF_FILE_CLEANUP, PFN_WDF_TIMER, PFN_WDF_WORKITEM,
    PWDFDEVICE_INIT, STATUS_INSUFFICIENT_RESOURCES, WDF_DEVICE_IO_TYPE, WDF_INTERRUPT_CONFIG,
    WDF_IO_QUEUE_CONFIG, WDF_NO_OBJECT_ATTRIBUTES, WDF_OBJECT_ATTRIBUTES,
    WDF_OBJECT_CONTEXT_TYPE_INFO, WDF_PNPPOWER_EVENT_CALLBACKS, WDF_TIMER_CONFIG,
    WDF_WORKITEM_CONFIG, WDFDEVICE, WDFINTERRUPT, WDFOBJECT, WDFQUEUE, WDFTIMER, WDFWORKITEM,
    call_unsafe_wdf_function_binding,
};

/// What `EvtDriverDeviceAdd` configures before the device exists.
#[derive(Debug)]
pub struct DeviceInit(pub PWDFDEVICE_INIT);

/// The context slot the framework allocates for a device: the driver's value, boxed, and its
/// type, checked on every access.
#[repr(C)]
struct Slot {
    value: *mut c_void,
    type_id: TypeId,
    drop: unsafe fn(*mut c_void),
}

/// The type info `WDF_DECLARE_CONTEXT_TYPE` would declare, in a static: wdk-sys's
/// `WDF_OBJECT_CONTEXT_TYPE_INFO` holds raw pointers and so is not `Sync`, which a static
/// must be.
#[repr(transparent)]
struct ContextTypeInfo(WDF_OBJECT_CONTEXT_TYPE_INFO);

// SAFETY: never written after initialisation (the framework only reads it), and its pointers
// name 'static data: the name literal and the static itself.
unsafe impl Sync for ContextTypeInfo {}

static SLOT_TYPE: ContextTypeInfo = ContextTypeInfo(WDF_OBJECT_CONTEXT_TYPE_INFO {
    Size: size_of_u32::<WDF_OBJECT_CONTEXT_TYPE_INFO>(),
    ContextName: c"RhcaSlot".as_ptr(),
    ContextSize: core::mem::size_of::<Slot>(),
    UniqueType: (&raw const SLOT_TYPE).cast(),
    EvtDriverGetUniqueContextType: None,
});

unsafe fn drop_box<T>(p: *mut c_void) {
    // SAFETY: `p` came from Box::into_raw of a `Box<T>` in `DeviceInit::create`.
    drop(unsafe { Box::from_raw(p.cast::<T>()) });
}

fn slot(object: WDFOBJECT) -> *mut Slot {
    // SAFETY: the framework returns the context of `object` or NULL; `SLOT_TYPE` is static.
    unsafe {
        call_unsafe_wdf_function_binding!(
            WdfObjectGetTypedContextWorker,
            object,
            &raw const SLOT_TYPE.0
        )
    }
    .cast()
}

/// `EvtCleanupCallback` of a device: drops the driver's context value.
unsafe extern "C" fn cleanup_slot(object: WDFOBJECT) {
    let s = slot(object);
    if s.is_null() {
        return;
    }
    // SAFETY: the slot written in `create`, read once here at the device's cleanup.
    let taken = unsafe { s.read() };
    if !taken.value.is_null() {
        // SAFETY: the value and its drop function were stored together in `create`.
        unsafe { (taken.drop)(taken.value) };
    }
    // SAFETY: the slot stays allocated until the framework frees the context; clear it.
    unsafe { (*s).value = null_mut() };
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

    /// `WdfDeviceCreate`, with `value` as the device's context (dropped at the device's cleanup).
    ///
    /// # Errors
    /// The framework's status.
    pub fn create<T: Send + Sync + 'static>(mut self, value: T) -> Result<Device, NTSTATUS> {
        let mut attrs = WDF_OBJECT_ATTRIBUTES {
            EvtCleanupCallback: Some(cleanup_slot),
            ContextTypeInfo: &raw const SLOT_TYPE.0,
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
        let s = slot(device.cast());
        if s.is_null() {
            return Err(STATUS_INSUFFICIENT_RESOURCES);
        }
        let value = Box::into_raw(Box::new(value)).cast::<c_void>();
        // SAFETY: the framework allocated a Slot-sized context for the new device.
        unsafe {
            s.write(Slot {
                value,
                type_id: TypeId::of::<T>(),
                drop: drop_box::<T>,
            });
        }
        Ok(Device(device))
    }
}

impl Device {
    /// The driver's context value, when it is a `T`.
    #[must_use]
    pub fn context<T: 'static>(self) -> Option<&'static T> {
        let s = slot(self.0.cast());
        if s.is_null() {
            return None;
        }
        // SAFETY: the slot written at creation (or zeroed by the framework before it).
        let s = unsafe { &*s };
        if s.value.is_null() || s.type_id != TypeId::of::<T>() {
            return None;
        }
        // SAFETY: the value is a live `T` (type checked) until the device's cleanup, which runs
        // after every callback of the device has returned.
        Some(unsafe { &*s.value.cast::<T>() })
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
