//! Requests: the owned [`Request`] (made only from a handle the framework presented, consumed
//! by its completion), its buffers and parameters, cancelation, and the [`RequestCallbacks`]
//! trampolines through which the framework presents requests to the driver.

use core::ptr::null_mut;

use super::{Device, File, Queue, init};
use crate::sys::{
    NT_SUCCESS, NTSTATUS, PFN_WDF_REQUEST_CANCEL, PMDL, PVOID, STATUS_BUFFER_TOO_SMALL,
    STATUS_INVALID_PARAMETER, STATUS_SUCCESS, ULONG, ULONG_PTR, WDFDEVICE, WDFFILEOBJECT, WDFQUEUE,
    WDFREQUEST, call_unsafe_wdf_function_binding,
};
use rhca_hw::ioctl::WireField;
use rhca_hw::wire::Writer;

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
        let b = raw.get_mut(..T::SIZE).ok_or(STATUS_INVALID_PARAMETER)?;
        self.read_input(b)?;
        T::decode_abi(b).map_err(|_| STATUS_INVALID_PARAMETER)
    }

    /// Runs `f` on the first `len` bytes of the output buffer.
    ///
    /// # Errors
    /// `STATUS_BUFFER_TOO_SMALL`, the framework's status, or `f`'s error.
    fn with_output(
        &self,
        len: usize,
        f: impl FnOnce(&mut [u8]) -> Result<(), NTSTATUS>,
    ) -> Result<(), NTSTATUS> {
        let mut p: PVOID = null_mut();
        let mut have = 0usize;
        // SAFETY: a live request and out parameters.
        let st = unsafe {
            call_unsafe_wdf_function_binding!(
                WdfRequestRetrieveOutputBuffer,
                self.0,
                len,
                &raw mut p,
                &raw mut have
            )
        };
        if !NT_SUCCESS(st) {
            return Err(st);
        }
        if have < len || p.is_null() {
            return Err(STATUS_BUFFER_TOO_SMALL);
        }
        // SAFETY: the framework's buffer holds at least `len` bytes until the request
        // completes, which this request (owned here) has not; it is the request's system
        // buffer, which no device and no other thread reaches, so one exclusive slice over it
        // for the duration of `f` is sound.
        let b = unsafe { core::slice::from_raw_parts_mut(p.cast::<u8>(), len) };
        f(b)
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
        // Encoded in place: a WAIT reply is 1,560 bytes, more than a kernel stack should carry
        // a second copy of.
        let written = result.and_then(|v| {
            self.with_output(T::SIZE, |b| {
                v.write(&mut Writer::new(b))
                    .map_err(|_| STATUS_INVALID_PARAMETER)
            })?;
            Ok(T::SIZE)
        });
        match written {
            Ok(n) => self.complete(STATUS_SUCCESS, n),
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
