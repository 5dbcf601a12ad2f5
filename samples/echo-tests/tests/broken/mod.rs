//! A copy of kmdf-echo's skeleton with one bug each, written as the driver is (wdk-sys, the
//! WDF method macro, no knowledge of the simulator): `DriverEntry`, a device with a default
//! sequential queue, and a write handler that keeps the caller's bytes in pool. [`Bug`] picks
//! what the write handler gets wrong.

use core::ptr::null_mut;
use std::sync::atomic::{AtomicU8, Ordering};

use wdk_sys::{
    _WDF_IO_QUEUE_DISPATCH_TYPE, _WDF_TRI_STATE, NTSTATUS, PCUNICODE_STRING, PDRIVER_OBJECT,
    POOL_FLAG_NON_PAGED, PWDFDEVICE_INIT, STATUS_SUCCESS, ULONG, WDF_DRIVER_CONFIG,
    WDF_IO_QUEUE_CONFIG, WDF_NO_HANDLE, WDF_NO_OBJECT_ATTRIBUTES, WDFDEVICE, WDFDRIVER, WDFMEMORY,
    WDFQUEUE, WDFREQUEST, call_unsafe_wdf_function_binding,
};

/// What the write handler gets wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Bug {
    /// It copies the bytes into pool and never frees the block.
    PoolLeak = 1,
    /// It completes the request twice.
    DoubleCompletion = 2,
    /// It writes into a write request's buffer (read-only) through its memory object.
    WriteIntoWriteBuffer = 3,
    /// Its read handler asks a read for its input memory (reads have only output).
    InputMemoryOfARead = 4,
    /// It keeps each write's bytes in a Rust `Vec` it leaks (wdk-alloc's pool, tag `rust`).
    HeapLeak = 5,
}

static BUG: AtomicU8 = AtomicU8::new(0);

/// Chooses the bug (once per test program: each test program has one broken driver).
pub fn set(bug: Bug) {
    BUG.store(bug as u8, Ordering::SeqCst);
}

/// The broken driver's entry point.
///
/// # Safety
/// Called by the loader with its driver object and registry path.
pub unsafe extern "system" fn driver_entry(
    driver: PDRIVER_OBJECT,
    registry_path: PCUNICODE_STRING,
) -> NTSTATUS {
    let mut config = WDF_DRIVER_CONFIG {
        Size: u32::try_from(size_of::<WDF_DRIVER_CONFIG>()).unwrap_or(0),
        EvtDriverDeviceAdd: Some(evt_device_add),
        ..WDF_DRIVER_CONFIG::default()
    };
    // SAFETY: the loader's driver object and path, our config.
    unsafe {
        call_unsafe_wdf_function_binding!(
            WdfDriverCreate,
            driver,
            registry_path,
            WDF_NO_OBJECT_ATTRIBUTES,
            &raw mut config,
            WDF_NO_HANDLE.cast(),
        )
    }
}

extern "C" fn evt_device_add(_driver: WDFDRIVER, mut init: PWDFDEVICE_INIT) -> NTSTATUS {
    let mut device: WDFDEVICE = null_mut();
    // SAFETY: the framework's init and our handle slot.
    let status = unsafe {
        call_unsafe_wdf_function_binding!(
            WdfDeviceCreate,
            &raw mut init,
            WDF_NO_OBJECT_ATTRIBUTES,
            &raw mut device,
        )
    };
    if !wdk_sys::NT_SUCCESS(status) {
        return status;
    }
    let mut config = WDF_IO_QUEUE_CONFIG {
        Size: u32::try_from(size_of::<WDF_IO_QUEUE_CONFIG>()).unwrap_or(0),
        PowerManaged: _WDF_TRI_STATE::WdfUseDefault,
        DefaultQueue: 1,
        DispatchType: _WDF_IO_QUEUE_DISPATCH_TYPE::WdfIoQueueDispatchSequential,
        EvtIoWrite: Some(evt_io_write),
        EvtIoRead: Some(evt_io_read),
        ..WDF_IO_QUEUE_CONFIG::default()
    };
    let mut queue: WDFQUEUE = null_mut();
    // SAFETY: the device, our config and handle slot.
    unsafe {
        call_unsafe_wdf_function_binding!(
            WdfIoQueueCreate,
            device,
            &raw mut config,
            WDF_NO_OBJECT_ATTRIBUTES,
            &raw mut queue,
        )
    }
}

extern "C" fn evt_io_read(_queue: WDFQUEUE, request: WDFREQUEST, _length: usize) {
    let mut memory: WDFMEMORY = null_mut();
    let status = if BUG.load(Ordering::SeqCst) == Bug::InputMemoryOfARead as u8 {
        // SAFETY: a read request the driver owns; the bug is asking it for the wrong buffer.
        unsafe {
            call_unsafe_wdf_function_binding!(
                WdfRequestRetrieveInputMemory,
                request,
                &raw mut memory
            )
        }
    } else {
        STATUS_SUCCESS
    };
    // SAFETY: the request the driver owns, completed once.
    unsafe { call_unsafe_wdf_function_binding!(WdfRequestComplete, request, status) };
}

extern "C" fn evt_io_write(_queue: WDFQUEUE, request: WDFREQUEST, length: usize) {
    if BUG.load(Ordering::SeqCst) == Bug::WriteIntoWriteBuffer as u8 {
        let mut memory: WDFMEMORY = null_mut();
        // SAFETY: a write request the driver owns.
        let status = unsafe {
            call_unsafe_wdf_function_binding!(
                WdfRequestRetrieveInputMemory,
                request,
                &raw mut memory
            )
        };
        assert!(wdk_sys::NT_SUCCESS(status));
        let mut reply = [0u8; 4];
        // SAFETY: four bytes of ours into the request's memory; the bug is that it is read-only.
        let _ = unsafe {
            call_unsafe_wdf_function_binding!(
                WdfMemoryCopyFromBuffer,
                memory,
                0,
                reply.as_mut_ptr().cast(),
                reply.len(),
            )
        };
    }
    if BUG.load(Ordering::SeqCst) == Bug::HeapLeak as u8 {
        // The bug: a copy of nothing in particular, on the driver's heap, never freed.
        core::mem::forget(vec![0u8; length]);
    }
    let mut buffer = null_mut();
    // SAFETY: a write request the driver owns, and our out-parameter.
    let status = unsafe {
        call_unsafe_wdf_function_binding!(
            WdfRequestRetrieveInputBuffer,
            request,
            length,
            &raw mut buffer,
            null_mut(),
        )
    };
    if wdk_sys::NT_SUCCESS(status) && BUG.load(Ordering::SeqCst) == Bug::PoolLeak as u8 {
        // SAFETY: a pool allocation; the bug is that nothing ever frees it.
        let block = unsafe {
            wdk_sys::ntddk::ExAllocatePool2(
                POOL_FLAG_NON_PAGED,
                length as u64,
                ULONG::from_le_bytes(*b"Leak"),
            )
        };
        if !block.is_null() {
            // SAFETY: `length` bytes from the request's buffer into the new block.
            unsafe {
                core::ptr::copy_nonoverlapping(buffer.cast::<u8>(), block.cast::<u8>(), length);
            }
        }
    }
    // SAFETY: the request the driver owns, completed once…
    unsafe {
        call_unsafe_wdf_function_binding!(
            WdfRequestCompleteWithInformation,
            request,
            STATUS_SUCCESS,
            length as u64,
        );
    }
    if BUG.load(Ordering::SeqCst) == Bug::DoubleCompletion as u8 {
        // …and, the bug, a second time.
        // SAFETY: none: the request is no longer the driver's. The framework must catch it.
        unsafe {
            call_unsafe_wdf_function_binding!(
                WdfRequestCompleteWithInformation,
                request,
                STATUS_SUCCESS,
                length as u64,
            );
        }
    }
}
