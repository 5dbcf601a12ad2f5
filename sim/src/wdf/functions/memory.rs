//! Memory objects, string objects, the driver's version queries, and the small accessors an
//! ordinary KMDF driver uses beside them (default queue, a request's queue, request
//! attributes). Each method follows the framework source it cites
//! (microsoft/Windows-Driver-Frameworks: `fxmemorybufferapi.cpp`, `ifxmemory.hpp`,
//! `fxmemoryobject.cpp`, `fxrequestapi.cpp`, `fxrequestsystembuffer.cpp`, `fxstringapi.cpp`,
//! `fxdriverapi.cpp`, `fxdeviceinitapi.cpp`).

#![expect(
    clippy::missing_safety_doc,
    reason = "the module documents the one safety contract every WDF method shares"
)]
#![expect(non_snake_case, reason = "mirrors the C method and parameter names")]

use core::ptr::null_mut;

use super::{attrs, null_arg, parent_handle, parent_of, wdf};
use crate::ntddk::check_max;
use crate::typed::{APC_LEVEL, DISPATCH_LEVEL, PASSIVE_LEVEL};
use crate::types::{BOOLEAN, PVOID, ULONG};
#[allow(
    clippy::wildcard_imports,
    reason = "the methods use the mirrored surface wholesale"
)]
use crate::wdf::types::*;
use crate::wdf::validate::{self, opt, verifier_break, verifier_check};
use crate::wdf::{Kind, MemoryData, ReqKind, StringData};
use crate::{
    NTSTATUS, STATUS_BUFFER_TOO_SMALL, STATUS_INSUFFICIENT_RESOURCES, STATUS_INVALID_BUFFER_SIZE,
    STATUS_INVALID_DEVICE_REQUEST, STATUS_INVALID_PARAMETER, STATUS_SUCCESS,
};

/// The framework's major and minor version (KMDF 1.33, the version windows-drivers-rs binds).
pub const KMDF_MAJOR: ULONG = 1;
/// See [`KMDF_MAJOR`].
pub const KMDF_MINOR: ULONG = 33;

// ---- memory objects ----

/// `NTSTATUS WdfMemoryCreate(PWDF_OBJECT_ATTRIBUTES, POOL_TYPE, ULONG PoolTag, size_t
/// BufferSize, WDFMEMORY *Memory, PVOID *Buffer)`; `<= DISPATCH_LEVEL` (`<= APC_LEVEL` for
/// paged pool). The buffer is pool tagged `PoolTag`, or the driver's tag when it is 0; the
/// object's parent is the driver unless the attributes name one. Deleting the object frees the
/// buffer.
#[must_use]
#[inline(never)]
pub unsafe fn WdfMemoryCreate(
    Attributes: PWDF_OBJECT_ATTRIBUTES,
    PoolType: POOL_TYPE,
    PoolTag: ULONG,
    BufferSize: usize,
    Memory: *mut WDFMEMORY,
    Buffer: *mut PVOID,
) -> NTSTATUS {
    let paged = paged_pool(PoolType);
    check_max(
        if paged { APC_LEVEL } else { DISPATCH_LEVEL },
        "WdfMemoryCreate",
    );
    let a = attrs(Attributes);
    if parent_handle(a).is_ok() {
        let parent = parent_of(a, 0);
        wdf(|w| w.get(parent, "WDFOBJECT").map(|_| ()));
    }
    if Memory.is_null() {
        null_arg("Memory");
    }
    // `fxmemorybufferapi.cpp` WdfMemoryCreate: a zero size fails before anything is created.
    if BufferSize == 0 {
        return STATUS_INVALID_PARAMETER;
    }
    // SAFETY: checked non-null.
    unsafe { *Memory = null_mut() };
    if let Err(st) = validate::object_attributes(a, opt::NONE) {
        return st;
    }
    let tag = if PoolTag == 0 {
        wdf(|w| Ok(w.driver_pool_tag))
    } else {
        PoolTag
    };
    let flags = if paged {
        crate::POOL_FLAG_PAGED
    } else {
        crate::POOL_FLAG_NON_PAGED
    };
    // SAFETY: pool allocation has no pointer preconditions; the IRQL was checked above.
    let block = unsafe { crate::ntddk::ExAllocatePool2(flags, BufferSize as u64, tag) } as usize;
    if block == 0 {
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    let h = wdf(|w| {
        let parent = parent_of(a, w.driver.unwrap_or(0));
        Ok(w.insert(
            Kind::Memory(Box::new(MemoryData {
                buf: block,
                len: BufferSize,
                read_only: false,
                pool: block,
                request: 0,
            })),
            (parent != 0).then_some(parent),
            a,
        ))
    });
    // SAFETY: checked non-null.
    unsafe { *Memory = h as WDFMEMORY };
    if !Buffer.is_null() {
        // SAFETY: the optional out-parameter, checked non-null.
        unsafe { *Buffer = block as PVOID };
    }
    STATUS_SUCCESS
}

/// `POOL_TYPE`'s paged kinds: the base type (low bits, less the must-succeed and cache-aligned
/// modifiers) is odd for paged pool (`PagedPool` 1, `PagedPoolCacheAligned` 5, …).
const fn paged_pool(pool: POOL_TYPE) -> bool {
    (pool as i64) & 1 == 1
}

/// `PVOID WdfMemoryGetBuffer(WDFMEMORY, size_t *BufferSize)`; any IRQL.
#[must_use]
#[inline(never)]
pub unsafe fn WdfMemoryGetBuffer(Memory: WDFMEMORY, BufferSize: *mut usize) -> PVOID {
    let (buf, len) = wdf(|w| {
        let m = w.memory(Memory as usize)?;
        Ok((m.buf, m.len))
    });
    if !BufferSize.is_null() {
        // SAFETY: the optional out-parameter, checked non-null.
        unsafe { *BufferSize = len };
    }
    buf as PVOID
}

/// `NTSTATUS WdfMemoryCopyToBuffer(WDFMEMORY SourceMemory, size_t SourceOffset, PVOID Buffer,
/// size_t NumBytesToCopyTo)`; `<= DISPATCH_LEVEL`. `IFxMemory::CopyToPtr` through
/// `_CopyPtrToPtr`: an offset at or past the end, or more bytes than remain after it, is
/// `STATUS_BUFFER_TOO_SMALL`; zero bytes is `STATUS_INVALID_PARAMETER`.
#[must_use]
#[inline(never)]
pub unsafe fn WdfMemoryCopyToBuffer(
    SourceMemory: WDFMEMORY,
    SourceOffset: usize,
    Buffer: PVOID,
    NumBytesToCopyTo: usize,
) -> NTSTATUS {
    check_max(DISPATCH_LEVEL, "WdfMemoryCopyToBuffer");
    let (buf, len, _) = memory_of(SourceMemory);
    if Buffer.is_null() {
        null_arg("Buffer");
    }
    if NumBytesToCopyTo == 0 {
        return STATUS_INVALID_PARAMETER;
    }
    if SourceOffset != 0 && SourceOffset >= len {
        return STATUS_BUFFER_TOO_SMALL;
    }
    if NumBytesToCopyTo > len - SourceOffset {
        return STATUS_BUFFER_TOO_SMALL;
    }
    // SAFETY: the memory object's buffer holds `len` bytes and the range was checked against
    // it; the caller's buffer holds `NumBytesToCopyTo` (its contract, as in C).
    unsafe {
        core::ptr::copy(
            (buf + SourceOffset) as *const u8,
            Buffer.cast::<u8>(),
            NumBytesToCopyTo,
        );
    }
    STATUS_SUCCESS
}

/// `NTSTATUS WdfMemoryCopyFromBuffer(WDFMEMORY DestinationMemory, size_t DestinationOffset,
/// PVOID Buffer, size_t NumBytesToCopyFrom)`; `<= DISPATCH_LEVEL`. `IFxMemory::CopyFromPtr`:
/// a read-only buffer (a write request's) is `STATUS_ACCESS_VIOLATION` with a verifier
/// break; an offset at or past the end, or more bytes than fit after it, is
/// `STATUS_INVALID_BUFFER_SIZE`; zero bytes is `STATUS_INVALID_PARAMETER`.
#[must_use]
#[inline(never)]
pub unsafe fn WdfMemoryCopyFromBuffer(
    DestinationMemory: WDFMEMORY,
    DestinationOffset: usize,
    Buffer: PVOID,
    NumBytesToCopyFrom: usize,
) -> NTSTATUS {
    check_max(DISPATCH_LEVEL, "WdfMemoryCopyFromBuffer");
    let (buf, len, read_only) = memory_of(DestinationMemory);
    if Buffer.is_null() {
        null_arg("Buffer");
    }
    if NumBytesToCopyFrom == 0 {
        return STATUS_INVALID_PARAMETER;
    }
    if read_only {
        // `FxMemoryObject::CopyFromPtr`: "Target WDFMEMORY is ReadOnly", a verifier break.
        crate::machine::halt(verifier_break(
            verifier_check::READ_ONLY_MEMORY,
            "WdfMemoryCopyFromBuffer into a read-only WDFMEMORY (a write request's buffer)",
            "fxmemoryobject.cpp FxMemoryObject::CopyFromPtr (FxVerifierDbgBreakPoint)",
        ));
    }
    if DestinationOffset != 0 && DestinationOffset >= len {
        return STATUS_INVALID_BUFFER_SIZE;
    }
    if NumBytesToCopyFrom > len - DestinationOffset {
        return STATUS_INVALID_BUFFER_SIZE;
    }
    // SAFETY: as in WdfMemoryCopyToBuffer, the other way round.
    unsafe {
        core::ptr::copy(
            Buffer.cast::<u8>().cast_const(),
            (buf + DestinationOffset) as *mut u8,
            NumBytesToCopyFrom,
        );
    }
    STATUS_SUCCESS
}

/// `(buffer, length, read-only)` of a memory object.
fn memory_of(m: WDFMEMORY) -> (usize, usize, bool) {
    wdf(|w| {
        let m = w.memory(m as usize)?;
        Ok((m.buf, m.len, m.read_only))
    })
}

/// `NTSTATUS WdfRequestRetrieveInputMemory(WDFREQUEST, WDFMEMORY *Memory)`;
/// `<= DISPATCH_LEVEL`. Not for a read (`STATUS_INVALID_DEVICE_REQUEST`); a write's buffer is
/// read-only. The object belongs to the request and goes with its completion.
#[must_use]
#[inline(never)]
pub unsafe fn WdfRequestRetrieveInputMemory(
    Request: WDFREQUEST,
    Memory: *mut WDFMEMORY,
) -> NTSTATUS {
    check_max(DISPATCH_LEVEL, "WdfRequestRetrieveInputMemory");
    request_memory(Request, Memory, false)
}

/// `NTSTATUS WdfRequestRetrieveOutputMemory(WDFREQUEST, WDFMEMORY *Memory)`;
/// `<= DISPATCH_LEVEL`. Not for a write (`STATUS_INVALID_DEVICE_REQUEST`).
#[must_use]
#[inline(never)]
pub unsafe fn WdfRequestRetrieveOutputMemory(
    Request: WDFREQUEST,
    Memory: *mut WDFMEMORY,
) -> NTSTATUS {
    check_max(DISPATCH_LEVEL, "WdfRequestRetrieveOutputMemory");
    request_memory(Request, Memory, true)
}

fn request_memory(Request: WDFREQUEST, Memory: *mut WDFMEMORY, output: bool) -> NTSTATUS {
    let r = Request as usize;
    let found = wdf(|w| {
        let rd = w.request(r)?;
        if Memory.is_null() {
            null_arg("Memory");
        }
        let wrong = if output {
            rd.kind == ReqKind::Write
        } else {
            rd.kind == ReqKind::Read
        };
        if wrong {
            return Ok(Err(STATUS_INVALID_DEVICE_REQUEST));
        }
        let slot = usize::from(output);
        if rd.memory[slot] != 0 {
            return Ok(Ok(rd.memory[slot]));
        }
        let (buf, len) = if output {
            (rd.out_buf, rd.out_len)
        } else {
            (rd.in_buf, rd.in_len)
        };
        // `FxRequest::GetMemoryObject`: no buffer, or an empty one, is STATUS_BUFFER_TOO_SMALL.
        if buf == 0 || len == 0 {
            return Ok(Err(STATUS_BUFFER_TOO_SMALL));
        }
        // `FxRequestSystemBuffer::GetFlags`: a write's buffer, and a direct I/O control's,
        // are read-only; a read's and a buffered I/O control's are not.
        let read_only = match rd.kind {
            ReqKind::Write => true,
            ReqKind::Ioctl { .. } => !output && (rd.method == 1 || rd.method == 2),
            ReqKind::Read | ReqKind::Create => false,
        };
        let h = w.insert(
            Kind::Memory(Box::new(MemoryData {
                buf,
                len,
                read_only,
                pool: 0,
                request: r,
            })),
            Some(r),
            None,
        );
        w.request(r)?.memory[slot] = h;
        Ok(Ok(h))
    });
    match found {
        Ok(h) => {
            // SAFETY: checked non-null above.
            unsafe { *Memory = h as WDFMEMORY };
            STATUS_SUCCESS
        }
        Err(st) => st,
    }
}

// ---- strings ----

/// `FxValidateUnicodeString` (`fxvalidatefunctions.cpp`): even lengths, `Length` within
/// `MaximumLength`, a buffer whenever there are characters.
fn valid_unicode_string(u: &UNICODE_STRING) -> bool {
    u.Length.is_multiple_of(2)
        && u.MaximumLength.is_multiple_of(2)
        && u.Length <= u.MaximumLength
        && (u.Length == 0 || !u.Buffer.is_null())
}

/// `NTSTATUS WdfStringCreate(PCUNICODE_STRING UnicodeString, PWDF_OBJECT_ATTRIBUTES,
/// WDFSTRING *String)`; PASSIVE_LEVEL. The string copies `UnicodeString` (when given); its
/// parent is the driver unless the attributes name one.
#[must_use]
#[inline(never)]
pub unsafe fn WdfStringCreate(
    UnicodeString: PCUNICODE_STRING,
    StringAttributes: PWDF_OBJECT_ATTRIBUTES,
    String: *mut WDFSTRING,
) -> NTSTATUS {
    let a = attrs(StringAttributes);
    if parent_handle(a).is_ok() {
        let parent = parent_of(a, 0);
        wdf(|w| w.get(parent, "WDFOBJECT").map(|_| ()));
    }
    if String.is_null() {
        null_arg("String");
    }
    // SAFETY: checked non-null.
    unsafe { *String = null_mut() };
    check_max(PASSIVE_LEVEL, "WdfStringCreate");
    if let Err(st) = validate::object_attributes(a, opt::NONE) {
        return st;
    }
    let mut text = Vec::new();
    if !UnicodeString.is_null() {
        // SAFETY: a non-null PCUNICODE_STRING is the caller's live descriptor.
        let u = unsafe { &*UnicodeString };
        if !valid_unicode_string(u) {
            return STATUS_INVALID_PARAMETER;
        }
        if u.Length > 0 {
            // SAFETY: `Length` bytes of UTF-16 at `Buffer`, validated above.
            text.extend_from_slice(unsafe {
                core::slice::from_raw_parts(u.Buffer, usize::from(u.Length) / 2)
            });
        }
    }
    let h = wdf(|w| {
        let parent = parent_of(a, w.driver.unwrap_or(0));
        Ok(w.insert(
            Kind::String(Box::new(StringData { text })),
            (parent != 0).then_some(parent),
            a,
        ))
    });
    // SAFETY: checked non-null.
    unsafe { *String = h as WDFSTRING };
    STATUS_SUCCESS
}

/// `VOID WdfStringGetUnicodeString(WDFSTRING, PUNICODE_STRING)`; PASSIVE_LEVEL. The
/// descriptor points into the string object: valid until the string changes or is deleted.
#[inline(never)]
pub unsafe fn WdfStringGetUnicodeString(String: WDFSTRING, UnicodeString: PUNICODE_STRING) {
    let u = wdf(|w| {
        let s = w.string(String as usize)?;
        // A string object's length fits a UNICODE_STRING (Assign refuses longer ones).
        let bytes = (s.text.len() * 2) as u16;
        Ok(UNICODE_STRING {
            Length: bytes,
            MaximumLength: bytes,
            Buffer: if s.text.is_empty() {
                null_mut()
            } else {
                s.text.as_mut_ptr()
            },
        })
    });
    if UnicodeString.is_null() {
        null_arg("UnicodeString");
    }
    check_max(PASSIVE_LEVEL, "WdfStringGetUnicodeString");
    // SAFETY: checked non-null.
    unsafe { *UnicodeString = u };
}

// ---- the driver's version ----

/// `NTSTATUS WdfDriverRetrieveVersionString(WDFDRIVER, WDFSTRING)`; PASSIVE_LEVEL. Assigns
/// "Kernel Mode Driver Framework version 1.33.`<build>`" to the string ("(verifier on)" after
/// "Framework" when the machine runs the `verifier` profile).
#[must_use]
#[inline(never)]
pub unsafe fn WdfDriverRetrieveVersionString(Driver: WDFDRIVER, String: WDFSTRING) -> NTSTATUS {
    driver_handle(Driver);
    if String.is_null() {
        null_arg("String");
    }
    check_max(PASSIVE_LEVEL, "WdfDriverRetrieveVersionString");
    let on = crate::machine::with_state(|_, cfg| Ok(cfg.profile.verifier));
    let text = format!(
        "Kernel Mode Driver Framework {}version {KMDF_MAJOR}.{KMDF_MINOR}.{KMDF_BUILD}",
        if on { "(verifier on) " } else { "" }
    );
    wdf(|w| {
        w.string(String as usize)?.text = text.encode_utf16().collect();
        Ok(())
    });
    STATUS_SUCCESS
}

/// Stops the machine unless `h` is the driver's handle (`FxObjectHandleGetPtr` with
/// `FX_TYPE_DRIVER`).
fn driver_handle(h: WDFDRIVER) {
    let h = h as usize;
    wdf(|w| match &w.get(h, "WDFDRIVER")?.kind {
        Kind::Driver(_) => Ok(()),
        k => Err(crate::wdf::wrong_type(h, k.name(), "WDFDRIVER")),
    });
}

/// The build number in the version string. **Inference**: the framework's `__WDF_BUILD_NUMBER`
/// is not in our sources; 0 marks it as unknown.
pub const KMDF_BUILD: ULONG = 0;

/// `BOOLEAN WdfDriverIsVersionAvailable(WDFDRIVER, PWDF_DRIVER_VERSION_AVAILABLE_PARAMS)`;
/// PASSIVE_LEVEL. TRUE when the major version is 1 and the minor at most 33; FALSE for a
/// params `Size` that is not the structure's.
#[must_use]
#[inline(never)]
pub unsafe fn WdfDriverIsVersionAvailable(
    Driver: WDFDRIVER,
    VersionAvailableParams: PWDF_DRIVER_VERSION_AVAILABLE_PARAMS,
) -> BOOLEAN {
    driver_handle(Driver);
    if VersionAvailableParams.is_null() {
        null_arg("VersionAvailableParams");
    }
    check_max(PASSIVE_LEVEL, "WdfDriverIsVersionAvailable");
    // SAFETY: checked non-null; the driver's initialised params.
    let p = unsafe { *VersionAvailableParams };
    if p.Size as usize != size_of::<WDF_DRIVER_VERSION_AVAILABLE_PARAMS>() {
        return 0;
    }
    BOOLEAN::from(p.MajorVersion == KMDF_MAJOR && p.MinorVersion <= KMDF_MINOR)
}

// ---- accessors ----

/// `VOID WdfDeviceInitSetRequestAttributes(PWDFDEVICE_INIT, PWDF_OBJECT_ATTRIBUTES)`;
/// PASSIVE_LEVEL. Every request of the device is created with these attributes (its context
/// and cleanup callbacks); a parent is not allowed (requests are the device's). Invalid
/// attributes are a verifier break and change nothing.
#[inline(never)]
pub unsafe fn WdfDeviceInitSetRequestAttributes(
    DeviceInit: PWDFDEVICE_INIT,
    RequestAttributes: PWDF_OBJECT_ATTRIBUTES,
) {
    check_max(PASSIVE_LEVEL, "WdfDeviceInitSetRequestAttributes");
    if DeviceInit.is_null() {
        null_arg("DeviceInit");
    }
    if RequestAttributes.is_null() {
        null_arg("RequestAttributes");
    }
    let a = attrs(RequestAttributes);
    if validate::object_attributes(a, opt::PARENT_NOT_ALLOWED).is_err() {
        crate::machine::halt(verifier_break(
            verifier_check::REQUEST_ATTRIBUTES,
            "WdfDeviceInitSetRequestAttributes with invalid attributes",
            "fxdeviceinitapi.cpp WdfDeviceInitSetRequestAttributes (FxVerifierDbgBreakPoint)",
        ));
    }
    let copy = a.copied();
    super::with_init(DeviceInit, |d| d.request_attributes = copy);
}

/// `WDFQUEUE WdfDeviceGetDefaultQueue(WDFDEVICE)`; `<= DISPATCH_LEVEL`. NULL when the device
/// has no default queue.
#[must_use]
#[inline(never)]
pub unsafe fn WdfDeviceGetDefaultQueue(Device: WDFDEVICE) -> WDFQUEUE {
    check_max(DISPATCH_LEVEL, "WdfDeviceGetDefaultQueue");
    wdf(|w| {
        Ok(w.device(Device as usize)?
            .default_queue
            .map_or(null_mut(), |q| q as WDFQUEUE))
    })
}

/// `WDFQUEUE WdfRequestGetIoQueue(WDFREQUEST)`; `<= DISPATCH_LEVEL`. The queue that presented
/// the request, or NULL for one that came from no queue (a create without a queue).
#[must_use]
#[inline(never)]
pub unsafe fn WdfRequestGetIoQueue(Request: WDFREQUEST) -> WDFQUEUE {
    check_max(DISPATCH_LEVEL, "WdfRequestGetIoQueue");
    wdf(|w| {
        Ok(w.request(Request as usize)?
            .queue
            .map_or(null_mut(), |q| q as WDFQUEUE))
    })
}
