//! Requests: buffers and MDLs, parameters, completion (with the verifier's checks),
//! cancelation, forwarding.

#![expect(
    clippy::missing_safety_doc,
    reason = "the module documents the one safety contract every WDF method shares"
)]
#![expect(non_snake_case, reason = "mirrors the C method and parameter names")]

use core::ptr::null_mut;

use super::{null_arg, wdf};
use crate::bugcheck::BugCheck;
use crate::ntddk::check_max;
use crate::typed::DISPATCH_LEVEL;
use crate::types::{PMDL, PVOID, ULONG, ULONG_PTR};
#[allow(
    clippy::wildcard_imports,
    reason = "the methods use the mirrored surface wholesale"
)]
use crate::wdf::types::*;
use crate::wdf::validate::{verifier_break, verifier_check};
use crate::wdf::{Kind, ReqKind, ReqState, WDF_VIOLATION};
use crate::{
    NTSTATUS, STATUS_BUFFER_TOO_SMALL, STATUS_CANCELLED, STATUS_INVALID_DEVICE_REQUEST,
    STATUS_SUCCESS,
};

// ---- requests ----

/// `NTSTATUS WdfRequestRetrieveInputBuffer(WDFREQUEST, size_t MinimumRequiredLength,
/// PVOID *Buffer, size_t *Length)`; `<= DISPATCH_LEVEL`.
#[must_use]
#[inline(never)]
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
#[inline(never)]
pub unsafe fn WdfRequestRetrieveOutputBuffer(
    Request: WDFREQUEST,
    MinimumRequiredSize: usize,
    Buffer: *mut PVOID,
    Length: *mut usize,
) -> NTSTATUS {
    check_max(DISPATCH_LEVEL, "WdfRequestRetrieveOutputBuffer");
    retrieve(Request, MinimumRequiredSize, Buffer, Length, true)
}

pub(super) fn retrieve(
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
#[inline(never)]
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
#[inline(never)]
pub unsafe fn WdfRequestRetrieveInputWdmMdl(Request: WDFREQUEST, Mdl: *mut PMDL) -> NTSTATUS {
    check_max(DISPATCH_LEVEL, "WdfRequestRetrieveInputWdmMdl");
    if Mdl.is_null() {
        null_arg("Mdl");
    }
    let (buf, len, have) = wdf(|w| {
        let r = w.request(Request as usize)?;
        // A direct write's input is the caller's pages, already described and locked by the
        // I/O manager's MDL (`Irp->MdlAddress`).
        let locked = if r.kind == ReqKind::Write && r.method == 1 {
            r.out_mdl
        } else {
            r.in_mdl
        };
        Ok((r.in_buf, r.in_len, locked))
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
#[inline(never)]
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
        ReqKind::Read => {
            p.Type = _WDF_REQUEST_TYPE::WdfRequestTypeRead;
            p.Parameters.Read = _WDF_REQUEST_PARAMETERS__bindgen_ty_1__bindgen_ty_2 {
                Length: out_len,
                Key: 0,
                DeviceOffset: 0,
            };
        }
        ReqKind::Write => {
            p.Type = _WDF_REQUEST_TYPE::WdfRequestTypeWrite;
            p.Parameters.Write = _WDF_REQUEST_PARAMETERS__bindgen_ty_1__bindgen_ty_3 {
                Length: in_len,
                Key: 0,
                DeviceOffset: 0,
            };
        }
    }
    // SAFETY: checked non-null.
    unsafe { *Parameters = p };
}

/// `WDFFILEOBJECT WdfRequestGetFileObject(WDFREQUEST)`; `<= DISPATCH_LEVEL`.
#[must_use]
#[inline(never)]
pub unsafe fn WdfRequestGetFileObject(Request: WDFREQUEST) -> WDFFILEOBJECT {
    check_max(DISPATCH_LEVEL, "WdfRequestGetFileObject");
    wdf(|w| Ok(w.request(Request as usize)?.file as WDFFILEOBJECT))
}

/// `WDFDEVICE WdfFileObjectGetDevice(WDFFILEOBJECT)`; `<= DISPATCH_LEVEL`.
#[must_use]
#[inline(never)]
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
pub(super) fn driver_complete(r: usize, status: NTSTATUS, info: Option<usize>) {
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
    crate::wdf::host::complete(r, status, info);
}

/// `VOID WdfRequestComplete(WDFREQUEST, NTSTATUS)`; `<= DISPATCH_LEVEL`.
#[inline(never)]
pub unsafe fn WdfRequestComplete(Request: WDFREQUEST, Status: NTSTATUS) {
    check_max(DISPATCH_LEVEL, "WdfRequestComplete");
    driver_complete(Request as usize, Status, None);
}

/// `VOID WdfRequestCompleteWithInformation(WDFREQUEST, NTSTATUS, ULONG_PTR Information)`;
/// `<= DISPATCH_LEVEL`.
#[inline(never)]
pub unsafe fn WdfRequestCompleteWithInformation(
    Request: WDFREQUEST,
    Status: NTSTATUS,
    Information: ULONG_PTR,
) {
    check_max(DISPATCH_LEVEL, "WdfRequestCompleteWithInformation");
    driver_complete(Request as usize, Status, Some(Information as usize));
}

/// `VOID WdfRequestSetInformation(WDFREQUEST, ULONG_PTR Information)`; `<= DISPATCH_LEVEL`.
#[inline(never)]
pub unsafe fn WdfRequestSetInformation(Request: WDFREQUEST, Information: ULONG_PTR) {
    check_max(DISPATCH_LEVEL, "WdfRequestSetInformation");
    wdf(|w| {
        w.request(Request as usize)?.info = Information as usize;
        Ok(())
    });
}

/// `VOID WdfRequestMarkCancelable(WDFREQUEST, PFN_WDF_REQUEST_CANCEL)`; `<= DISPATCH_LEVEL`.
/// For a request already cancelled, the framework calls the cancel routine at once, before
/// returning (`FxRequest::MarkCancelable`), so the driver must not hold a lock its cancel
/// routine takes — the reason `WdfRequestMarkCancelableEx` exists.
#[inline(never)]
pub unsafe fn WdfRequestMarkCancelable(
    Request: WDFREQUEST,
    EvtRequestCancel: PFN_WDF_REQUEST_CANCEL,
) {
    check_max(DISPATCH_LEVEL, "WdfRequestMarkCancelable");
    if EvtRequestCancel.is_none() {
        null_arg("EvtRequestCancel");
    }
    let cancelled = wdf(|w| {
        let r = w.request(Request as usize)?;
        r.cancel = EvtRequestCancel;
        Ok(r.cancelled)
    });
    if cancelled {
        crate::wdf::host::cancel(Request as usize);
    }
}

/// `NTSTATUS WdfRequestMarkCancelableEx(WDFREQUEST, PFN_WDF_REQUEST_CANCEL)`;
/// `<= DISPATCH_LEVEL`. `STATUS_CANCELLED` if the request was already cancelled (the routine is
/// then not registered and the driver must complete the request).
#[must_use]
#[inline(never)]
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
#[inline(never)]
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
#[inline(never)]
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
                crate::wdf::host::cancel(from);
            }
            crate::wdf::host::dispatch(to);
            if let Some(s) = src
                && crate::wdf::host::sequential(s)
            {
                crate::wdf::host::dispatch(s);
            }
            STATUS_SUCCESS
        }
        Err(st) => st,
    }
}
