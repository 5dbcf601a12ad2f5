//! The KMDF boundary: typed handles and the framework methods the driver calls, each wrapping
//! one `call_unsafe_wdf_function_binding!` with the arguments its C prototype requires.
//!
//! Handles are opaque values the framework validates (a stale or wrong handle stops the machine
//! under KMDF Verifier, it does not corrupt memory), so the wrappers are safe to call with any
//! handle the framework gave the driver. Callbacks stay `extern "C"` functions in the driver's
//! modules and wrap the handles they receive, except those that receive a request: a
//! [`Request`] is an owned value made only here (the [`RequestCallbacks`] trampolines and
//! [`Queue::retrieve_next`]), so a completion is a move and a second one does not compile.
//!
//! This file holds the handle types, `WdfDriverCreate`, resource lists and the small objects
//! (files, work items, timers, queues, interrupts); `device` holds device creation and the
//! context slot, `request` the owned request and the callback trampolines, `init` the
//! `WDF_*_INIT` helpers wdk-sys does not generate.

use core::ptr::null_mut;

use super::{
    CM_RESOURCE_INTERRUPT_MESSAGE, CmResourceTypeInterrupt, CmResourceTypeMemory, Mmio, NT_SUCCESS,
    NTSTATUS, PCUNICODE_STRING, PDRIVER_OBJECT, PFN_WDF_DRIVER_DEVICE_ADD, PFN_WDF_DRIVER_UNLOAD,
    WDF_DRIVER_CONFIG, WDF_NO_OBJECT_ATTRIBUTES, WDFCMRESLIST, WDFDEVICE, WDFFILEOBJECT,
    WDFINTERRUPT, WDFQUEUE, WDFREQUEST, WDFTIMER, WDFWORKITEM, call_unsafe_wdf_function_binding,
};

mod device;
pub mod init;
mod request;

pub(crate) use device::context_type;
pub use device::{ContextType, ContextTypeInfo, DeviceInit};
pub use request::{
    Request, RequestCallbacks, RequestId, evt_file_create, evt_io_device_control,
    evt_request_cancel,
};

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
        // The framework's allocations for this driver carry the driver's own tag, as its heap
        // does (`sys::pool`), so one `poolmon` tag shows all of RHCA's pool.
        DriverPoolTag: super::pool::POOL_TAG,
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
