//! The KMDF boundary: typed handles and the framework methods the driver calls, each wrapping
//! one `call_unsafe_wdf_function_binding!` with the arguments its C prototype requires.
//!
//! Handles are opaque values the framework validates (a stale or wrong handle stops the machine
//! under KMDF Verifier, it does not corrupt memory), so the wrappers are safe to call with any
//! handle the framework gave the driver. Callbacks stay `extern "C"` functions in the driver's
//! modules and wrap the handles they receive, except those that receive a request: a
//! [`Request`] is an owned value made only here (the [`RequestCallbacks`] trampolines and
//! [`Queue::retrieve_next`]), so a completion is a move and a second one does not compile.

use alloc::boxed::Box;
use core::any::TypeId;
use core::ffi::c_void;
use core::ptr::null_mut;

use super::{
    _WDF_DEVICE_FAILED_ACTION, BOOLEAN_FALSE, CM_RESOURCE_INTERRUPT_MESSAGE,
    CmResourceTypeInterrupt, CmResourceTypeMemory, GUID, Mmio, NT_SUCCESS, NTSTATUS,
    PCUNICODE_STRING, PDEVICE_OBJECT, PDRIVER_OBJECT, PFN_WDF_DEVICE_FILE_CREATE,
    PFN_WDF_DRIVER_DEVICE_ADD, PFN_WDF_DRIVER_UNLOAD, PFN_WDF_FILE_CLEANUP, PFN_WDF_REQUEST_CANCEL,
    PFN_WDF_TIMER, PFN_WDF_WORKITEM, PMDL, PVOID, PWDFDEVICE_INIT, STATUS_BUFFER_TOO_SMALL,
    STATUS_INSUFFICIENT_RESOURCES, ULONG, ULONG_PTR, WDF_DEVICE_IO_TYPE, WDF_DRIVER_CONFIG,
    WDF_INTERRUPT_CONFIG, WDF_IO_QUEUE_CONFIG, WDF_NO_OBJECT_ATTRIBUTES, WDF_OBJECT_ATTRIBUTES,
    WDF_OBJECT_CONTEXT_TYPE_INFO, WDF_PNPPOWER_EVENT_CALLBACKS, WDF_TIMER_CONFIG,
    WDF_WORKITEM_CONFIG, WDFCMRESLIST, WDFDEVICE, WDFFILEOBJECT, WDFINTERRUPT, WDFOBJECT, WDFQUEUE,
    WDFREQUEST, WDFTIMER, WDFWORKITEM, call_unsafe_wdf_function_binding,
};

pub mod init;

use rhca_hw::ioctl::{MAX_ABI_SIZE, WireField};
use rhca_hw::wire::Writer;

/// Declares a `Copy` wrapper for a WDF handle.
macro_rules! handle {
    ($(#[$m:meta])* $name:ident($raw:ty)) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name(pub $raw);
        // SAFETY: WDF handles may be used from any CPU at the IRQL each method allows.
        unsafe impl Send for $name {}
        // SAFETY: as above.
        unsafe impl Sync for $name {}
        impl $name {
            /// The raw handle.
            #[must_use]
            pub const fn raw(self) -> $raw {
                self.0
            }
        }
    };
}

handle!(
    /// A `WDFDEVICE`.
    Device(WDFDEVICE)
);
/// A `WDFREQUEST` the driver owns: the right, and the duty, to complete it once.
///
/// Not `Copy` and without a public field: a value is made only by [`Request::from_raw`] (from a
/// handle the framework presented) or by [`Queue::retrieve_next`], and [`Request::complete`],
/// [`Request::complete_with`] and a successful [`Request::forward`] consume it, so a second
/// completion of the same value does not compile:
///
/// ```compile_fail,E0382
/// # use rhca::sys::{STATUS_SUCCESS, wdf::Request};
/// fn twice(r: Request) {
///     r.complete(STATUS_SUCCESS, 0);
///     r.complete(STATUS_SUCCESS, 0); // E0382: use of moved value
/// }
/// ```
///
/// Dropping a value without completing it is safe (the caller's I/O just never finishes, as in
/// C), so every path that gives a request up says so with [`Request::relinquish`].
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a request the driver owns must be completed, forwarded or handed on"]
pub struct Request(WDFREQUEST);
// SAFETY: a WDF request may be completed or queried from any CPU at the IRQL each method allows;
// the value moves between the callbacks that own it in turn.
unsafe impl Send for Request {}
// SAFETY: the `&self` methods only query the framework, which serialises its own state.
unsafe impl Sync for Request {}

/// The identity of a request, to find it again (a cancel routine's request among the pending
/// ones): it can be compared, never completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestId(WDFREQUEST);
// SAFETY: a plain value: no method dereferences or passes on the handle.
unsafe impl Send for RequestId {}
// SAFETY: as above.
unsafe impl Sync for RequestId {}
handle!(
    /// A `WDFQUEUE`.
    Queue(WDFQUEUE)
);
handle!(
    /// A `WDFINTERRUPT`.
    Interrupt(WDFINTERRUPT)
);
handle!(
    /// A `WDFCMRESLIST`.
    ResList(WDFCMRESLIST)
);
handle!(
    /// A `WDFFILEOBJECT` (an open handle of the device).
    File(WDFFILEOBJECT)
);
handle!(
    /// A `WDFWORKITEM`.
    WorkItem(WDFWORKITEM)
);
handle!(
    /// A `WDFTIMER`.
    Timer(WDFTIMER)
);

/// `sizeof` a WDF structure, for its `Size` field (`WDF_STRUCTURE_SIZE` is not generated).
const fn size_of_u32<T>() -> u32 {
    core::mem::size_of::<T>() as u32
}

/// `WdfDriverCreate` with `EvtDriverDeviceAdd` and `EvtDriverUnload`.
///
/// # Safety
/// `driver` and `registry` are `DriverEntry`'s arguments.
pub unsafe fn driver_create(
    driver: PDRIVER_OBJECT,
    registry: PCUNICODE_STRING,
    add: PFN_WDF_DRIVER_DEVICE_ADD,
    unload: PFN_WDF_DRIVER_UNLOAD,
) -> NTSTATUS {
    let mut config = WDF_DRIVER_CONFIG {
        EvtDriverUnload: unload,
        ..init::WDF_DRIVER_CONFIG_INIT(add)
    };
    // SAFETY: the loader's arguments and a live config; no driver handle is needed back.
    unsafe {
        call_unsafe_wdf_function_binding!(
            WdfDriverCreate,
            driver,
            registry,
            WDF_NO_OBJECT_ATTRIBUTES,
            &raw mut config,
            null_mut()
        )
    }
}

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

/// A resource of the translated list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// A memory BAR.
    Memory {
        /// Physical start.
        start: i64,
        /// Length.
        len: u32,
    },
    /// A message-signalled interrupt.
    Message,
    /// A line interrupt.
    Line,
    /// Something else.
    Other,
}

impl ResList {
    /// The list's resources, in order.
    #[must_use]
    #[expect(
        clippy::many_single_char_names,
        reason = "n, v, i, d, t: count, list, index, descriptor, type"
    )]
    pub fn resources(self) -> alloc::vec::Vec<Resource> {
        // SAFETY: a list the framework passed to PrepareHardware.
        let n = unsafe { call_unsafe_wdf_function_binding!(WdfCmResourceListGetCount, self.0) };
        let mut v = alloc::vec::Vec::new();
        for i in 0..n {
            // SAFETY: `i` is below the count.
            let d = unsafe {
                call_unsafe_wdf_function_binding!(WdfCmResourceListGetDescriptor, self.0, i)
            };
            if d.is_null() {
                continue;
            }
            // SAFETY: a live descriptor of the list.
            let d = unsafe { d.read_unaligned() };
            let t = u32::from(d.Type);
            let r = match t {
                _ if t == CmResourceTypeMemory => {
                    // SAFETY: the memory member of a memory descriptor.
                    let m = unsafe { d.u.Memory };
                    // SAFETY: every bit pattern of the union is a valid LONGLONG.
                    let start = unsafe { m.Start.QuadPart };
                    Resource::Memory {
                        start,
                        len: m.Length,
                    }
                }
                _ if t == CmResourceTypeInterrupt
                    && u32::from(d.Flags) & CM_RESOURCE_INTERRUPT_MESSAGE != 0 =>
                {
                    Resource::Message
                }
                _ if t == CmResourceTypeInterrupt => Resource::Line,
                _ => Resource::Other,
            };
            v.push(r);
        }
        v
    }
}

impl ResList {
    /// Maps the first memory resource of at least `min_len` bytes (the register BAR).
    #[must_use]
    pub fn map_registers(self, min_len: u32) -> Option<Mmio> {
        let (start, len) = self.resources().into_iter().find_map(|r| match r {
            Resource::Memory { start, len } if len >= min_len => Some((start, len)),
            _ => None,
        })?;
        // SAFETY: a memory resource of the device's translated list is one of its BARs.
        unsafe { Mmio::map(start, len as usize) }
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

impl File {
    /// The device the handle was opened on (`WdfFileObjectGetDevice`).
    #[must_use]
    pub fn device(self) -> Device {
        // SAFETY: a live file object.
        Device(unsafe { call_unsafe_wdf_function_binding!(WdfFileObjectGetDevice, self.0) })
    }
}

impl WorkItem {
    /// `WdfWorkItemEnqueue` (`<= DISPATCH_LEVEL`); ignored while already queued.
    pub fn enqueue(self) {
        // SAFETY: a live work item.
        unsafe { call_unsafe_wdf_function_binding!(WdfWorkItemEnqueue, self.0) };
    }

    /// `WdfWorkItemFlush` (`PASSIVE_LEVEL`): returns when the callback is neither queued nor
    /// running.
    pub fn flush(self) {
        // SAFETY: a live work item, at PASSIVE_LEVEL (caller's context: PnP and power callbacks).
        unsafe { call_unsafe_wdf_function_binding!(WdfWorkItemFlush, self.0) };
    }

    /// The device the work item was created for (`WdfWorkItemGetParentObject`).
    #[must_use]
    pub fn device(self) -> Device {
        // SAFETY: a live work item whose parent is a device (`Device::create_work_item`).
        Device(
            unsafe { call_unsafe_wdf_function_binding!(WdfWorkItemGetParentObject, self.0) }.cast(),
        )
    }
}

impl Timer {
    /// `WdfTimerStart` (`<= DISPATCH_LEVEL`) with a relative due time of `due_ms` milliseconds
    /// (`WDF_REL_TIMEOUT_IN_MS`). Returns whether the timer was already queued.
    #[must_use = "whether the timer was already queued"]
    pub fn start(self, due_ms: u32) -> bool {
        let due = -i64::from(due_ms) * 10_000;
        // SAFETY: a live timer; a negative due time is relative, in 100-nanosecond units.
        let was = unsafe { call_unsafe_wdf_function_binding!(WdfTimerStart, self.0, due) };
        was != 0
    }

    /// `WdfTimerStop(Wait = TRUE)` (`PASSIVE_LEVEL`): dequeues the timer and returns once a
    /// running callback has returned. Never call it from the timer's own callback.
    pub fn stop_and_wait(self) {
        // SAFETY: a live timer, at PASSIVE_LEVEL (caller's context: PnP and power callbacks).
        let _ = unsafe { call_unsafe_wdf_function_binding!(WdfTimerStop, self.0, 1) };
    }

    /// The device the timer was created for (`WdfTimerGetParentObject`).
    #[must_use]
    pub fn device(self) -> Device {
        // SAFETY: a live timer whose parent is a device (`Device::create_timer`).
        Device(unsafe { call_unsafe_wdf_function_binding!(WdfTimerGetParentObject, self.0) }.cast())
    }
}

impl Queue {
    /// `WdfIoQueueGetDevice`.
    #[must_use]
    pub fn device(self) -> Device {
        // SAFETY: a live queue.
        Device(unsafe { call_unsafe_wdf_function_binding!(WdfIoQueueGetDevice, self.0) })
    }

    /// `WdfIoQueueRetrieveNextRequest`: the oldest waiting request of a manual queue
    /// (`STATUS_NO_MORE_ENTRIES`, a warning and so not a success, when there is none).
    #[must_use]
    pub fn retrieve_next(self) -> Option<Request> {
        let mut r: WDFREQUEST = null_mut();
        // SAFETY: a live queue and out parameter.
        let st = unsafe {
            call_unsafe_wdf_function_binding!(WdfIoQueueRetrieveNextRequest, self.0, &raw mut r)
        };
        // SAFETY: the framework has just presented `r` to the driver: the driver owns it.
        (NT_SUCCESS(st) && !r.is_null()).then(|| unsafe { Request::from_raw(r) })
    }
}

impl Interrupt {
    /// `WdfInterruptQueueDpcForIsr`.
    #[must_use]
    pub fn queue_dpc(self) -> bool {
        // SAFETY: a live interrupt.
        unsafe { call_unsafe_wdf_function_binding!(WdfInterruptQueueDpcForIsr, self.0) != 0 }
    }

    /// `WdfInterruptGetDevice`.
    #[must_use]
    pub fn device(self) -> Device {
        // SAFETY: a live interrupt.
        Device(unsafe { call_unsafe_wdf_function_binding!(WdfInterruptGetDevice, self.0) })
    }
}

impl Request {
    /// Takes ownership of a request the framework presented to the driver.
    ///
    /// # Safety
    /// `raw` is a live `WDFREQUEST` the framework handed to the caller (an I/O callback's
    /// argument, or a queue's next request), and no other [`Request`] for it exists, except for
    /// a cancel routine's, which shares it with the value the request was marked cancelable
    /// through until one of them gives it up ([`Request::relinquish`]).
    pub const unsafe fn from_raw(raw: WDFREQUEST) -> Self {
        Self(raw)
    }

    /// The request's identity.
    #[must_use]
    pub const fn id(&self) -> RequestId {
        RequestId(self.0)
    }

    /// Gives this value up without completing the request, for a request another value
    /// completes (a cancel routine's copy of a request its stream still holds).
    pub const fn relinquish(self) {
        let _ = self;
    }

    /// The raw handle, for the framework's own calls.
    #[must_use]
    pub const fn raw(&self) -> WDFREQUEST {
        self.0
    }

    /// The request's IOCTL code and buffer lengths (`WdfRequestGetParameters`).
    #[must_use]
    pub fn ioctl_parameters(&self) -> (u32, usize, usize) {
        let mut p = init::WDF_REQUEST_PARAMETERS_INIT();
        // SAFETY: a live request and struct.
        unsafe { call_unsafe_wdf_function_binding!(WdfRequestGetParameters, self.0, &raw mut p) };
        // SAFETY: a device control request's parameters are the DeviceIoControl member.
        let d = unsafe { p.Parameters.DeviceIoControl };
        (d.IoControlCode, d.InputBufferLength, d.OutputBufferLength)
    }

    /// Copies the input buffer into `out` (exactly `out.len()` bytes must be available).
    ///
    /// # Errors
    /// `STATUS_BUFFER_TOO_SMALL` or the framework's status.
    pub fn read_input(&self, out: &mut [u8]) -> Result<(), NTSTATUS> {
        let mut p: PVOID = null_mut();
        let mut len = 0usize;
        // SAFETY: a live request and out parameters.
        let st = unsafe {
            call_unsafe_wdf_function_binding!(
                WdfRequestRetrieveInputBuffer,
                self.0,
                out.len(),
                &raw mut p,
                &raw mut len
            )
        };
        if !NT_SUCCESS(st) {
            return Err(st);
        }
        if len < out.len() || p.is_null() {
            return Err(STATUS_BUFFER_TOO_SMALL);
        }
        // SAFETY: the framework's buffer holds at least `out.len()` bytes until completion.
        unsafe { core::ptr::copy_nonoverlapping(p.cast::<u8>(), out.as_mut_ptr(), out.len()) };
        Ok(())
    }

    /// Reads and decodes the request's input structure (`rhca-hw` checks its header).
    ///
    /// # Errors
    /// `STATUS_BUFFER_TOO_SMALL`, the framework's status, or `STATUS_INVALID_PARAMETER` for
    /// bytes `rhca-hw` rejects.
    pub fn input<T: rhca_hw::ioctl::AbiStruct>(&self) -> Result<T, NTSTATUS> {
        let mut raw = [0u8; rhca_hw::ioctl::MAX_ABI_SIZE];
        let b = raw
            .get_mut(..T::SIZE)
            .ok_or(super::STATUS_INVALID_PARAMETER)?;
        self.read_input(b)?;
        T::decode_abi(b).map_err(|_| super::STATUS_INVALID_PARAMETER)
    }

    /// Copies `data` into the output buffer.
    ///
    /// # Errors
    /// `STATUS_BUFFER_TOO_SMALL` or the framework's status.
    pub fn write_output(&self, data: &[u8]) -> Result<(), NTSTATUS> {
        let mut p: PVOID = null_mut();
        let mut len = 0usize;
        // SAFETY: a live request and out parameters.
        let st = unsafe {
            call_unsafe_wdf_function_binding!(
                WdfRequestRetrieveOutputBuffer,
                self.0,
                data.len(),
                &raw mut p,
                &raw mut len
            )
        };
        if !NT_SUCCESS(st) {
            return Err(st);
        }
        if len < data.len() || p.is_null() {
            return Err(STATUS_BUFFER_TOO_SMALL);
        }
        // SAFETY: the framework's buffer holds at least `data.len()` bytes until completion.
        unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), p.cast::<u8>(), data.len()) };
        Ok(())
    }

    /// `WdfRequestCompleteWithInformation`: the request is gone afterwards.
    pub fn complete(self, status: NTSTATUS, information: usize) {
        // SAFETY: a request the driver owns, completed once (ownership ends here).
        unsafe {
            call_unsafe_wdf_function_binding!(
                WdfRequestCompleteWithInformation,
                self.0,
                status,
                information as ULONG_PTR
            );
        };
    }

    /// Encodes `result`'s value into the output buffer and completes the request with its
    /// size, or completes it with the error (and no bytes). An output buffer too small for the
    /// value completes it with `STATUS_BUFFER_TOO_SMALL`.
    pub fn complete_with<T: WireField>(self, result: Result<T, NTSTATUS>) {
        let mut raw = [0u8; MAX_ABI_SIZE];
        let written = result.and_then(|v| {
            let b = raw
                .get_mut(..T::SIZE)
                .ok_or(super::STATUS_INVALID_PARAMETER)?;
            v.write(&mut Writer::new(b))
                .map_err(|_| super::STATUS_INVALID_PARAMETER)?;
            self.write_output(b)?;
            Ok(T::SIZE)
        });
        match written {
            Ok(n) => self.complete(super::STATUS_SUCCESS, n),
            Err(st) => self.complete(st, 0),
        }
    }

    /// Completes the request twice: a deliberate driver defect, for the test that proves the
    /// (simulated) framework stops it.
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    pub fn complete_twice(self, status: NTSTATUS) {
        let raw = self.0;
        self.complete(status, 0);
        // SAFETY: none: this is the defect under test. The framework's verifier stops the
        // machine (0x10D) before the handle is used.
        let again = unsafe { Self::from_raw(raw) };
        again.complete(status, 0);
    }

    /// `WdfRequestForwardToIoQueue`.
    ///
    /// # Errors
    /// The framework's status, with the request, which the driver still owns.
    pub fn forward(self, queue: Queue) -> Result<(), (Self, NTSTATUS)> {
        // SAFETY: a request the driver owns and a live queue.
        let st = unsafe {
            call_unsafe_wdf_function_binding!(WdfRequestForwardToIoQueue, self.0, queue.0)
        };
        if NT_SUCCESS(st) {
            Ok(())
        } else {
            Err((self, st))
        }
    }

    /// The file object (open handle) the request came through (`WdfRequestGetFileObject`).
    #[must_use]
    pub fn file(&self) -> File {
        // SAFETY: a live request.
        File(unsafe { call_unsafe_wdf_function_binding!(WdfRequestGetFileObject, self.0) })
    }

    /// The MDL of a direct-I/O request's output buffer (`WdfRequestRetrieveOutputWdmMdl`):
    /// the caller's pages, locked until the request is completed.
    ///
    /// # Errors
    /// The framework's status (`STATUS_BUFFER_TOO_SMALL` for a request without one).
    pub fn output_mdl(&self) -> Result<PMDL, NTSTATUS> {
        let mut mdl: PMDL = null_mut();
        // SAFETY: a live request and out parameter.
        let st = unsafe {
            call_unsafe_wdf_function_binding!(WdfRequestRetrieveOutputWdmMdl, self.0, &raw mut mdl)
        };
        if NT_SUCCESS(st) && !mdl.is_null() {
            Ok(mdl)
        } else if NT_SUCCESS(st) {
            Err(STATUS_BUFFER_TOO_SMALL)
        } else {
            Err(st)
        }
    }

    /// `WdfRequestMarkCancelableEx`.
    ///
    /// # Errors
    /// `STATUS_CANCELLED` when the request was cancelled already (complete it then).
    pub fn mark_cancelable(&self, cancel: PFN_WDF_REQUEST_CANCEL) -> Result<(), NTSTATUS> {
        // SAFETY: a request the driver owns.
        let st = unsafe {
            call_unsafe_wdf_function_binding!(WdfRequestMarkCancelableEx, self.0, cancel)
        };
        if NT_SUCCESS(st) { Ok(()) } else { Err(st) }
    }

    /// `WdfRequestUnmarkCancelable`.
    ///
    /// # Errors
    /// `STATUS_CANCELLED` when the cancel routine runs or has run (it completes the request).
    pub fn unmark_cancelable(&self) -> Result<(), NTSTATUS> {
        // SAFETY: a request the driver owns.
        let st = unsafe { call_unsafe_wdf_function_binding!(WdfRequestUnmarkCancelable, self.0) };
        if NT_SUCCESS(st) { Ok(()) } else { Err(st) }
    }
}

/// The driver's callbacks that receive a request.
///
/// The framework's raw handle becomes an owned [`Request`] in the trampolines below ([`evt_file_create`], [`evt_io_device_control`],
/// [`evt_request_cancel`]), where the ownership argument is made once, so the layers above
/// need no `unsafe` to handle requests.
pub trait RequestCallbacks {
    /// `EvtDeviceFileCreate`: the create request is the callback's to complete.
    fn file_create(device: Device, request: Request, file: File);
    /// `EvtIoDeviceControl`: the request is the callback's to complete or forward.
    fn io_device_control(
        queue: Queue,
        request: Request,
        output_len: usize,
        input_len: usize,
        code: u32,
    );
    /// `EvtRequestCancel`: the cancelled request, shared with the value it was marked
    /// cancelable through, until one of them is relinquished ([`Request::relinquish`]).
    fn request_cancel(request: Request);
}

/// `EvtDeviceFileCreate` for `C`.
///
/// # Safety
/// Called only by the framework, with the handles of a live callback invocation (register it
/// as the callback; never call it).
pub unsafe extern "C" fn evt_file_create<C: RequestCallbacks>(
    device: WDFDEVICE,
    request: WDFREQUEST,
    file: WDFFILEOBJECT,
) {
    // SAFETY: the framework presents the create request to this callback, which owns it.
    let request = unsafe { Request::from_raw(request) };
    C::file_create(Device(device), request, File(file));
}

/// `EvtIoDeviceControl` for `C`.
///
/// # Safety
/// Called only by the framework, with the handles of a live callback invocation (register it
/// as the callback; never call it).
pub unsafe extern "C" fn evt_io_device_control<C: RequestCallbacks>(
    queue: WDFQUEUE,
    request: WDFREQUEST,
    output_len: usize,
    input_len: usize,
    code: ULONG,
) {
    // SAFETY: the framework presents the request to this callback, which owns it.
    let request = unsafe { Request::from_raw(request) };
    C::io_device_control(Queue(queue), request, output_len, input_len, code);
}

/// `EvtRequestCancel` for `C`.
///
/// # Safety
/// Called only by the framework, with the handles of a live callback invocation (register it
/// as the callback; never call it).
pub unsafe extern "C" fn evt_request_cancel<C: RequestCallbacks>(request: WDFREQUEST) {
    // SAFETY: the framework hands the cancelled request to its cancel routine; the value it was
    // marked cancelable through is the only other one, and `C::request_cancel` completes at
    // most one of the two (the contract of `RequestCallbacks::request_cancel`).
    let request = unsafe { Request::from_raw(request) };
    C::request_cancel(request);
}
