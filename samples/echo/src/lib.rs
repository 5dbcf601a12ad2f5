//! `kmdf-echo`: a KMDF echo driver written as the windows-drivers-rs samples are.
//!
//! A write stores the caller's bytes in a framework memory object the queue owns; a read returns
//! them. Neither completes at once: each request is held, cancelable, until the queue's timer
//! fires 10 ms later and completes it, as the KMDF echo sample simulates a device; the length to
//! complete with waits in the request's own context. The default queue is sequential, so one
//! request is in the driver at a time; a spin lock orders the I/O callbacks, the timer and the
//! cancel routine. Self-managed I/O stops the queue when the device leaves D0 and starts it when
//! it returns. `DriverEntry` checks the framework version and prints its version string with
//! `wdk::println!`.
//!
//! Nothing here knows whether it runs on Windows or on wdk-sim: there is no `cfg`.
//!
//! # Safety story
//! The `unsafe` blocks call the framework with handles it gave us and structures we own, as
//! the C samples do. The one piece of shared state is the queue's context, written once after
//! the queue is created and then touched only with the queue's spin lock held.

#![no_std]
#![expect(
    clippy::cast_possible_truncation,
    reason = "the framework's Size fields are ULONGs, and every structure is far below 4 GiB"
)]

extern crate wdk_panic;

use core::ffi::c_char;
use core::ptr::null_mut;

use wdk::println;
use wdk::wdf::{SpinLock, Timer};
use wdk_alloc::WdkAllocator;
use wdk_sys::{
    _POOL_TYPE, _WDF_DEVICE_IO_TYPE, _WDF_EXECUTION_LEVEL, _WDF_IO_QUEUE_DISPATCH_TYPE,
    _WDF_SYNCHRONIZATION_SCOPE, _WDF_TRI_STATE, DRIVER_OBJECT, GUID, NTSTATUS, PCUNICODE_STRING,
    PWDFDEVICE_INIT, STATUS_BUFFER_OVERFLOW, STATUS_CANCELLED, STATUS_INSUFFICIENT_RESOURCES,
    STATUS_SUCCESS, ULONG, UNICODE_STRING, WDF_DRIVER_CONFIG, WDF_DRIVER_VERSION_AVAILABLE_PARAMS,
    WDF_IO_QUEUE_CONFIG, WDF_NO_OBJECT_ATTRIBUTES, WDF_OBJECT_ATTRIBUTES,
    WDF_OBJECT_CONTEXT_TYPE_INFO, WDF_PNPPOWER_EVENT_CALLBACKS, WDF_TIMER_CONFIG, WDFDEVICE,
    WDFDRIVER, WDFMEMORY, WDFOBJECT, WDFQUEUE, WDFREQUEST, WDFSTRING, WDFTIMER,
    call_unsafe_wdf_function_binding,
};

#[global_allocator]
static GLOBAL_ALLOCATOR: WdkAllocator = WdkAllocator;

/// The largest write the driver keeps (the KMDF echo sample's `MAX_WRITE_LENGTH`).
pub const MAX_WRITE_LENGTH: usize = 40 * 1024;

/// How long a request waits for the timer: 10 ms, relative, in 100 ns units.
const COMPLETION_DELAY: i64 = -10 * 10_000;

/// The pool tag of the echo buffer ("Echo" as the debugger shows it).
const ECHO_TAG: ULONG = u32::from_le_bytes(*b"Echo");

/// The device interface class the echo device registers ({CDC35B6E-0BE4-4936-BF5F-5537380A7C1A},
/// the KMDF echo sample's).
pub const GUID_DEVINTERFACE_ECHO: GUID = GUID {
    Data1: 0xCDC3_5B6E,
    Data2: 0x0BE4,
    Data3: 0x4936,
    Data4: [0xBF, 0x5F, 0x55, 0x37, 0x38, 0x0A, 0x7C, 0x1A],
};

/// The queue's context: the stored bytes and the one request waiting for the timer.
struct QueueContext {
    /// Orders the I/O callbacks, the timer callback and the cancel routine.
    lock: SpinLock,
    /// Completes the waiting request.
    timer: Timer,
    /// The last write's bytes (a memory object the queue owns), or null before any write.
    buffer: WDFMEMORY,
    /// Bytes in `buffer`.
    length: usize,
    /// The request the timer will complete, or null.
    current: WDFREQUEST,
}

/// Every request's context (`WdfDeviceInitSetRequestAttributes`): what to complete it with.
struct RequestContext {
    information: usize,
}

/// A context type declaration, as `WDF_DECLARE_CONTEXT_TYPE_WITH_NAME` makes one.
#[repr(transparent)]
struct ContextType(WDF_OBJECT_CONTEXT_TYPE_INFO);

// SAFETY: the type info is immutable after initialisation; its pointers name a static string
// and the static itself.
unsafe impl Sync for ContextType {}

static REQUEST_CONTEXT_TYPE: ContextType = ContextType(WDF_OBJECT_CONTEXT_TYPE_INFO {
    Size: size_of::<WDF_OBJECT_CONTEXT_TYPE_INFO>() as ULONG,
    ContextName: c"REQUEST_CONTEXT".as_ptr().cast::<c_char>(),
    ContextSize: size_of::<RequestContext>(),
    UniqueType: &raw const REQUEST_CONTEXT_TYPE.0,
    EvtDriverGetUniqueContextType: None,
});

static QUEUE_CONTEXT_TYPE: ContextType = ContextType(WDF_OBJECT_CONTEXT_TYPE_INFO {
    Size: size_of::<WDF_OBJECT_CONTEXT_TYPE_INFO>() as ULONG,
    ContextName: c"QUEUE_CONTEXT".as_ptr().cast::<c_char>(),
    ContextSize: size_of::<QueueContext>(),
    UniqueType: &raw const QUEUE_CONTEXT_TYPE.0,
    EvtDriverGetUniqueContextType: None,
});

/// `WDF_OBJECT_ATTRIBUTES_INIT` (an inline function of the WDK, which bindgen does not give).
fn object_attributes() -> WDF_OBJECT_ATTRIBUTES {
    WDF_OBJECT_ATTRIBUTES {
        Size: size_of::<WDF_OBJECT_ATTRIBUTES>() as ULONG,
        ExecutionLevel: _WDF_EXECUTION_LEVEL::WdfExecutionLevelInheritFromParent,
        SynchronizationScope: _WDF_SYNCHRONIZATION_SCOPE::WdfSynchronizationScopeInheritFromParent,
        ..WDF_OBJECT_ATTRIBUTES::default()
    }
}

/// The driver's entry point.
///
/// # Safety
/// Called by the I/O manager with its driver object and registry path.
#[unsafe(export_name = "DriverEntry")]
pub unsafe extern "system" fn driver_entry(
    driver: &mut DRIVER_OBJECT,
    registry_path: PCUNICODE_STRING,
) -> NTSTATUS {
    println!("kmdf-echo: DriverEntry");
    let mut config = WDF_DRIVER_CONFIG {
        Size: size_of::<WDF_DRIVER_CONFIG>() as ULONG,
        EvtDriverDeviceAdd: Some(evt_device_add),
        EvtDriverUnload: Some(evt_driver_unload),
        ..WDF_DRIVER_CONFIG::default()
    };
    let mut handle: WDFDRIVER = null_mut();
    // SAFETY: the loader's driver object and path, our config and handle slot.
    let status = unsafe {
        call_unsafe_wdf_function_binding!(
            WdfDriverCreate,
            driver,
            registry_path,
            WDF_NO_OBJECT_ATTRIBUTES,
            &raw mut config,
            &raw mut handle,
        )
    };
    if !wdk::nt_success(status) {
        println!("kmdf-echo: WdfDriverCreate failed {status:#x}");
        return status;
    }
    print_framework_version(handle)
}

/// Refuses a framework older than the one the driver was built for, and prints its version
/// string, as the KMDF echo sample does.
fn print_framework_version(driver: WDFDRIVER) -> NTSTATUS {
    let mut string: WDFSTRING = null_mut();
    // SAFETY: no initial text, no attributes, our handle slot.
    let status = unsafe {
        call_unsafe_wdf_function_binding!(
            WdfStringCreate,
            null_mut(),
            WDF_NO_OBJECT_ATTRIBUTES,
            &raw mut string,
        )
    };
    if !wdk::nt_success(status) {
        return status;
    }
    // SAFETY: the driver's handle and the string just created.
    let status = unsafe {
        call_unsafe_wdf_function_binding!(WdfDriverRetrieveVersionString, driver, string)
    };
    if wdk::nt_success(status) {
        let mut text = UNICODE_STRING::default();
        // SAFETY: the string just filled, and our descriptor.
        unsafe {
            call_unsafe_wdf_function_binding!(WdfStringGetUnicodeString, string, &raw mut text);
        }
        let chars = usize::from(text.Length) / 2;
        let mut ascii = [0u8; 96];
        let wide: &[u16] = if chars == 0 {
            &[]
        } else {
            // SAFETY: `Length` bytes of UTF-16 at `Buffer`, as the framework describes them,
            // valid until the string changes.
            unsafe { core::slice::from_raw_parts(text.Buffer, chars) }
        };
        for (a, &c) in ascii.iter_mut().zip(wide) {
            *a = u8::try_from(c).unwrap_or(b'?');
        }
        let shown = core::str::from_utf8(&ascii[..chars.min(ascii.len())]).unwrap_or("?");
        println!("kmdf-echo: {shown}");
    }
    // SAFETY: the string object this function created, deleted once.
    unsafe { call_unsafe_wdf_function_binding!(WdfObjectDelete, string as WDFOBJECT) };
    let mut version = WDF_DRIVER_VERSION_AVAILABLE_PARAMS {
        Size: size_of::<WDF_DRIVER_VERSION_AVAILABLE_PARAMS>() as ULONG,
        MajorVersion: 1,
        MinorVersion: 33,
    };
    // SAFETY: the driver's handle and our params.
    let available = unsafe {
        call_unsafe_wdf_function_binding!(WdfDriverIsVersionAvailable, driver, &raw mut version)
    };
    if available == 0 {
        println!("kmdf-echo: KMDF 1.33 is not available");
        return wdk_sys::STATUS_REVISION_MISMATCH;
    }
    STATUS_SUCCESS
}

extern "C" fn evt_driver_unload(_driver: WDFDRIVER) {
    println!("kmdf-echo: unload");
}

extern "C" fn evt_device_add(_driver: WDFDRIVER, mut init: PWDFDEVICE_INIT) -> NTSTATUS {
    wdk::paged_code!();
    // SAFETY: the framework's device init, before WdfDeviceCreate.
    unsafe {
        call_unsafe_wdf_function_binding!(
            WdfDeviceInitSetIoType,
            init,
            _WDF_DEVICE_IO_TYPE::WdfDeviceIoBuffered,
        );
    }
    let mut pnp = WDF_PNPPOWER_EVENT_CALLBACKS {
        Size: size_of::<WDF_PNPPOWER_EVENT_CALLBACKS>() as ULONG,
        EvtDeviceSelfManagedIoInit: Some(evt_self_managed_io_start),
        EvtDeviceSelfManagedIoRestart: Some(evt_self_managed_io_start),
        EvtDeviceSelfManagedIoSuspend: Some(evt_self_managed_io_suspend),
        ..WDF_PNPPOWER_EVENT_CALLBACKS::default()
    };
    // SAFETY: the framework's device init and our callbacks.
    unsafe {
        call_unsafe_wdf_function_binding!(
            WdfDeviceInitSetPnpPowerEventCallbacks,
            init,
            &raw mut pnp
        );
    }
    let mut request_attributes = object_attributes();
    request_attributes.ContextTypeInfo = &raw const REQUEST_CONTEXT_TYPE.0;
    // SAFETY: the framework's device init and our attributes (copied by the framework).
    unsafe {
        call_unsafe_wdf_function_binding!(
            WdfDeviceInitSetRequestAttributes,
            init,
            &raw mut request_attributes,
        );
    }
    let mut device: WDFDEVICE = null_mut();
    // SAFETY: the framework's device init and our handle slot.
    let status = unsafe {
        call_unsafe_wdf_function_binding!(
            WdfDeviceCreate,
            &raw mut init,
            WDF_NO_OBJECT_ATTRIBUTES,
            &raw mut device,
        )
    };
    if !wdk::nt_success(status) {
        return status;
    }
    // SAFETY: the device just created, a static GUID, no reference string.
    let status = unsafe {
        call_unsafe_wdf_function_binding!(
            WdfDeviceCreateDeviceInterface,
            device,
            &GUID_DEVINTERFACE_ECHO,
            null_mut(),
        )
    };
    if !wdk::nt_success(status) {
        return status;
    }
    queue_initialize(device)
}

/// The default queue, sequential, with its context, lock and timer.
fn queue_initialize(device: WDFDEVICE) -> NTSTATUS {
    let mut config = WDF_IO_QUEUE_CONFIG {
        Size: size_of::<WDF_IO_QUEUE_CONFIG>() as ULONG,
        PowerManaged: _WDF_TRI_STATE::WdfUseDefault,
        DefaultQueue: 1,
        DispatchType: _WDF_IO_QUEUE_DISPATCH_TYPE::WdfIoQueueDispatchSequential,
        EvtIoRead: Some(evt_io_read),
        EvtIoWrite: Some(evt_io_write),
        ..WDF_IO_QUEUE_CONFIG::default()
    };
    let mut attributes = object_attributes();
    attributes.ContextTypeInfo = &raw const QUEUE_CONTEXT_TYPE.0;
    let mut queue: WDFQUEUE = null_mut();
    // SAFETY: the device, our config, attributes and handle slot.
    let status = unsafe {
        call_unsafe_wdf_function_binding!(
            WdfIoQueueCreate,
            device,
            &raw mut config,
            &raw mut attributes,
            &raw mut queue,
        )
    };
    if !wdk::nt_success(status) {
        return status;
    }
    let mut lock_attributes = object_attributes();
    lock_attributes.ParentObject = queue.cast();
    let lock = match SpinLock::create(&mut lock_attributes) {
        Ok(lock) => lock,
        Err(status) => return status,
    };
    let mut timer_config = WDF_TIMER_CONFIG {
        Size: size_of::<WDF_TIMER_CONFIG>() as ULONG,
        EvtTimerFunc: Some(evt_timer),
        ..WDF_TIMER_CONFIG::default()
    };
    let mut timer_attributes = object_attributes();
    timer_attributes.ParentObject = queue.cast();
    let timer = match Timer::create(&mut timer_config, &mut timer_attributes) {
        Ok(timer) => timer,
        Err(status) => return status,
    };
    let context = queue_context(queue);
    // SAFETY: the queue's context memory, sized and aligned for QueueContext by the framework;
    // no callback of the queue can run before WdfDeviceCreate's caller returns, so nothing
    // reads it before this write.
    unsafe {
        context.write(QueueContext {
            lock,
            timer,
            buffer: null_mut(),
            length: 0,
            current: null_mut(),
        });
    }
    STATUS_SUCCESS
}

/// The queue's context.
fn queue_context(queue: WDFQUEUE) -> *mut QueueContext {
    // SAFETY: a queue created with QUEUE_CONTEXT_TYPE.
    unsafe {
        call_unsafe_wdf_function_binding!(
            WdfObjectGetTypedContextWorker,
            queue as WDFOBJECT,
            &raw const QUEUE_CONTEXT_TYPE.0,
        )
    }
    .cast()
}

/// Runs `f` with the queue's context, under its lock.
fn with_context<R>(queue: WDFQUEUE, f: impl FnOnce(&mut QueueContext) -> R) -> R {
    let context = queue_context(queue);
    // SAFETY: written in queue_initialize before any callback; the lock field is never
    // written again, so reading it without the lock is sound.
    let lock = unsafe { &(*context).lock };
    lock.acquire();
    // SAFETY: the lock is held: this is the only reference to the context's other fields.
    let r = f(unsafe { &mut *context });
    lock.release();
    r
}

/// A request's context (every request of the device has one).
fn request_context(request: WDFREQUEST) -> *mut RequestContext {
    // SAFETY: requests of this device are created with REQUEST_CONTEXT_TYPE.
    unsafe {
        call_unsafe_wdf_function_binding!(
            WdfObjectGetTypedContextWorker,
            request as WDFOBJECT,
            &raw const REQUEST_CONTEXT_TYPE.0,
        )
    }
    .cast()
}

/// Holds `request` for the timer, cancelable, with `information` to complete it with.
fn hold(queue: WDFQUEUE, request: WDFREQUEST, information: usize) {
    // SAFETY: the request's own context, which only the driver, owning the request, touches.
    unsafe { (*request_context(request)).information = information };
    // SAFETY: a request the driver owns, and our cancel routine.
    let status = unsafe {
        call_unsafe_wdf_function_binding!(
            WdfRequestMarkCancelableEx,
            request,
            Some(evt_request_cancel)
        )
    };
    if !wdk::nt_success(status) {
        // Already cancelled: complete it ourselves, as the framework asks.
        complete(request, status, 0);
        return;
    }
    with_context(queue, |c| {
        c.current = request;
        let _ = c.timer.start(COMPLETION_DELAY);
    });
}

fn complete(request: WDFREQUEST, status: NTSTATUS, information: usize) {
    // SAFETY: a request the driver owns, completed once.
    unsafe {
        call_unsafe_wdf_function_binding!(
            WdfRequestCompleteWithInformation,
            request,
            status,
            information as u64,
        );
    }
}

extern "C" fn evt_io_write(queue: WDFQUEUE, request: WDFREQUEST, length: usize) {
    if length > MAX_WRITE_LENGTH {
        println!("kmdf-echo: write of {length} bytes refused");
        complete(request, STATUS_BUFFER_OVERFLOW, 0);
        return;
    }
    if length == 0 {
        complete(request, STATUS_SUCCESS, 0);
        return;
    }
    let mut memory: WDFMEMORY = null_mut();
    // SAFETY: a write request the driver owns, and our handle slot.
    let status = unsafe {
        call_unsafe_wdf_function_binding!(WdfRequestRetrieveInputMemory, request, &raw mut memory)
    };
    if !wdk::nt_success(status) {
        complete(request, status, 0);
        return;
    }
    // The old bytes go; the new ones live in a memory object the queue owns.
    let old = with_context(queue, |c| {
        c.length = 0;
        core::mem::replace(&mut c.buffer, null_mut())
    });
    if !old.is_null() {
        // SAFETY: the memory object this driver created, no longer referenced.
        unsafe { call_unsafe_wdf_function_binding!(WdfObjectDelete, old as WDFOBJECT) };
    }
    let mut attributes = object_attributes();
    attributes.ParentObject = queue.cast();
    let mut buffer: WDFMEMORY = null_mut();
    let mut data: *mut core::ffi::c_void = null_mut();
    // SAFETY: our attributes and out-parameters.
    let status = unsafe {
        call_unsafe_wdf_function_binding!(
            WdfMemoryCreate,
            &raw mut attributes,
            _POOL_TYPE::NonPagedPoolNx,
            ECHO_TAG,
            length,
            &raw mut buffer,
            &raw mut data,
        )
    };
    if !wdk::nt_success(status) {
        complete(request, STATUS_INSUFFICIENT_RESOURCES, 0);
        return;
    }
    // SAFETY: the request's memory of `length` bytes, into our buffer of `length` bytes.
    let status = unsafe {
        call_unsafe_wdf_function_binding!(WdfMemoryCopyToBuffer, memory, 0, data, length)
    };
    if !wdk::nt_success(status) {
        // SAFETY: the memory object just created, deleted once.
        unsafe { call_unsafe_wdf_function_binding!(WdfObjectDelete, buffer as WDFOBJECT) };
        complete(request, status, 0);
        return;
    }
    with_context(queue, |c| {
        c.buffer = buffer;
        c.length = length;
    });
    hold(queue, request, length);
}

extern "C" fn evt_io_read(queue: WDFQUEUE, request: WDFREQUEST, length: usize) {
    let (buffer, stored) = with_context(queue, |c| (c.buffer, c.length));
    if buffer.is_null() || length == 0 {
        complete(request, STATUS_SUCCESS, 0);
        return;
    }
    let n = length.min(stored);
    let mut memory: WDFMEMORY = null_mut();
    // SAFETY: a read request the driver owns, and our handle slot.
    let status = unsafe {
        call_unsafe_wdf_function_binding!(WdfRequestRetrieveOutputMemory, request, &raw mut memory)
    };
    if !wdk::nt_success(status) {
        complete(request, status, 0);
        return;
    }
    let mut size = 0usize;
    // SAFETY: our memory object and a size slot.
    let data =
        unsafe { call_unsafe_wdf_function_binding!(WdfMemoryGetBuffer, buffer, &raw mut size) };
    // SAFETY: `n` bytes of our buffer (at most its size) into the request's memory (at most
    // the read's length).
    let status = unsafe {
        call_unsafe_wdf_function_binding!(WdfMemoryCopyFromBuffer, memory, 0, data, n.min(size))
    };
    if !wdk::nt_success(status) {
        complete(request, status, 0);
        return;
    }
    hold(queue, request, n.min(size));
}

extern "C" fn evt_timer(timer: WDFTIMER) {
    // SAFETY: a timer this driver created, parented by its queue.
    let queue: WDFQUEUE =
        unsafe { call_unsafe_wdf_function_binding!(WdfTimerGetParentObject, timer) }.cast();
    let request = with_context(queue, |c| core::mem::replace(&mut c.current, null_mut()));
    if request.is_null() {
        return;
    }
    // SAFETY: the request's context; the request is still the driver's (not yet completed).
    let information = unsafe { (*request_context(request)).information };
    // SAFETY: the request this driver marked cancelable.
    let status = unsafe { call_unsafe_wdf_function_binding!(WdfRequestUnmarkCancelable, request) };
    if status == STATUS_CANCELLED {
        // The cancel routine runs (or ran) and completes it.
        return;
    }
    complete(request, STATUS_SUCCESS, information);
}

extern "C" fn evt_request_cancel(request: WDFREQUEST) {
    // SAFETY: a request of this driver's queue.
    let queue = unsafe { call_unsafe_wdf_function_binding!(WdfRequestGetIoQueue, request) };
    // Whether or not the timer took the request first, the cancel routine completes it: the
    // timer's unmark then sees STATUS_CANCELLED and leaves it alone.
    with_context(queue, |c| {
        if c.current == request {
            c.current = null_mut();
        }
    });
    complete(request, STATUS_CANCELLED, 0);
}

/// `EvtDeviceSelfManagedIoInit` and `…Restart`: the default queue runs while the device is in
/// D0.
extern "C" fn evt_self_managed_io_start(device: WDFDEVICE) -> NTSTATUS {
    println!("kmdf-echo: self-managed I/O starts");
    // SAFETY: the device the framework passes.
    let queue = unsafe { call_unsafe_wdf_function_binding!(WdfDeviceGetDefaultQueue, device) };
    // SAFETY: the device's default queue.
    unsafe { call_unsafe_wdf_function_binding!(WdfIoQueueStart, queue) };
    STATUS_SUCCESS
}

/// `EvtDeviceSelfManagedIoSuspend`: the default queue stops, and waits for the request the
/// driver holds, before the device leaves D0.
extern "C" fn evt_self_managed_io_suspend(device: WDFDEVICE) -> NTSTATUS {
    wdk::paged_code!();
    println!("kmdf-echo: self-managed I/O suspends");
    // SAFETY: the device the framework passes.
    let queue = unsafe { call_unsafe_wdf_function_binding!(WdfDeviceGetDefaultQueue, device) };
    // SAFETY: the device's default queue, at PASSIVE_LEVEL.
    unsafe { call_unsafe_wdf_function_binding!(WdfIoQueueStopSynchronously, queue) };
    STATUS_SUCCESS
}
