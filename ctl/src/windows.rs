//! `DeviceIoControl` on the RHCA device interface (Windows only).
//!
//! The device is found through its interface class (`rhca_hw::ioctl::DEVICE_INTERFACE_GUID`,
//! `CM_Get_Device_Interface_ListW`) and opened for overlapped I/O, so that a stream's START can
//! stay pending while WAIT, RELEASE and STOP go through the same handle. Every other request is
//! issued and waited for at once (`GetOverlappedResult` with `bWait = TRUE`).
//!
//! Written against windows-sys 0.59's signatures; the RHCA developers' machines cannot build
//! for Windows, so this module has not been compiled there (README, docs/test-machine.md).

use std::ffi::c_void;
use std::time::Duration;

use windows_sys::Win32::Devices::DeviceAndDriverInstallation::{
    CM_GET_DEVICE_INTERFACE_LIST_PRESENT, CM_Get_Device_Interface_List_SizeW,
    CM_Get_Device_Interface_ListW, CR_SUCCESS,
};
use windows_sys::Win32::Foundation::{
    CloseHandle, ERROR_IO_PENDING, GENERIC_READ, GENERIC_WRITE, GetLastError, HANDLE,
    INVALID_HANDLE_VALUE, WAIT_OBJECT_0,
};
use windows_sys::Win32::Storage::FileSystem::{
    CreateFileW, FILE_FLAG_OVERLAPPED, FILE_SHARE_READ, FILE_SHARE_WRITE, OPEN_EXISTING,
};
use windows_sys::Win32::System::IO::{
    CancelIoEx, DeviceIoControl, GetOverlappedResult, OVERLAPPED,
};
use windows_sys::Win32::System::Threading::{CreateEventW, WaitForSingleObject};
use windows_sys::core::GUID;

use crate::{DirectIo, IoError, Transport};

/// An open RHCA device.
#[derive(Debug)]
pub struct Device {
    h: HANDLE,
}

impl Drop for Device {
    fn drop(&mut self) {
        // SAFETY: the handle CreateFileW returned, closed once.
        unsafe { CloseHandle(self.h) };
    }
}

fn last_error() -> IoError {
    // SAFETY: no preconditions.
    IoError::Status(unsafe { GetLastError() }.cast_signed())
}

impl Device {
    /// Opens the first present RHCA device interface.
    ///
    /// # Errors
    /// [`IoError::Transport`] when no RHCA is present, or the open's error.
    pub fn open_first() -> Result<Self, IoError> {
        let (d1, d2, d3, d4) = rhca_hw::ioctl::DEVICE_INTERFACE_GUID;
        let guid = GUID {
            data1: d1,
            data2: d2,
            data3: d3,
            data4: d4,
        };
        let mut len = 0u32;
        // SAFETY: live out parameter and GUID; no device-instance filter.
        let cr = unsafe {
            CM_Get_Device_Interface_List_SizeW(
                &raw mut len,
                &raw const guid,
                std::ptr::null(),
                CM_GET_DEVICE_INTERFACE_LIST_PRESENT,
            )
        };
        if cr != CR_SUCCESS || len <= 1 {
            return Err(IoError::Transport("no RHCA device interface is present"));
        }
        let mut list = vec![0u16; len as usize];
        // SAFETY: a buffer of `len` UTF-16 units, as the size call asked for.
        let cr = unsafe {
            CM_Get_Device_Interface_ListW(
                &raw const guid,
                std::ptr::null(),
                list.as_mut_ptr(),
                len,
                CM_GET_DEVICE_INTERFACE_LIST_PRESENT,
            )
        };
        if cr != CR_SUCCESS {
            return Err(IoError::Transport("cannot list the RHCA device interfaces"));
        }
        // The list is a sequence of NUL-terminated paths; the first one, NUL-terminated.
        let end = list.iter().position(|&c| c == 0).unwrap_or(list.len());
        let mut path: Vec<u16> = list[..end].to_vec();
        path.push(0);
        // SAFETY: a NUL-terminated path; no security attributes or template.
        let h = unsafe {
            CreateFileW(
                path.as_ptr(),
                GENERIC_READ | GENERIC_WRITE,
                FILE_SHARE_READ | FILE_SHARE_WRITE,
                std::ptr::null(),
                OPEN_EXISTING,
                FILE_FLAG_OVERLAPPED,
                std::ptr::null_mut(),
            )
        };
        if h == INVALID_HANDLE_VALUE {
            return Err(last_error());
        }
        Ok(Self { h })
    }

    /// Issues one request with its own event; returns it still pending when `wait` is false.
    fn issue(
        &self,
        code: u32,
        input: &[u8],
        out: *mut c_void,
        out_len: usize,
    ) -> Result<Box<Overlapped>, IoError> {
        // SAFETY: an unnamed manual-reset event, initially not signalled.
        let event = unsafe { CreateEventW(std::ptr::null(), 1, 0, std::ptr::null()) };
        if event.is_null() {
            return Err(last_error());
        }
        let mut ov = Box::new(Overlapped {
            ov: OVERLAPPED {
                hEvent: event,
                // SAFETY: an all-zero OVERLAPPED (offsets and internal fields) is valid.
                ..unsafe { std::mem::zeroed() }
            },
            event,
        });
        // SAFETY: live buffers for the call's duration (the input) and until completion (the
        // output: the caller keeps it alive); the OVERLAPPED is boxed and outlives the request.
        let ok = unsafe {
            DeviceIoControl(
                self.h,
                code,
                input.as_ptr().cast(),
                input.len() as u32,
                out,
                out_len as u32,
                std::ptr::null_mut(),
                &raw mut ov.ov,
            )
        };
        // SAFETY: no preconditions.
        if ok == 0 && unsafe { GetLastError() } != ERROR_IO_PENDING {
            return Err(last_error());
        }
        Ok(ov)
    }
}

/// Waits for the request of `ov` on handle `h` to complete; its `Information`.
fn finish(h: HANDLE, ov: &Overlapped) -> Result<usize, IoError> {
    let mut n = 0u32;
    // SAFETY: the request's OVERLAPPED; bWait = TRUE blocks until it completes.
    let ok = unsafe { GetOverlappedResult(h, &raw const ov.ov, &raw mut n, 1) };
    if ok == 0 {
        return Err(last_error());
    }
    Ok(n as usize)
}

/// An OVERLAPPED and its event, freed together.
struct Overlapped {
    ov: OVERLAPPED,
    event: HANDLE,
}

impl Drop for Overlapped {
    fn drop(&mut self) {
        // SAFETY: the event CreateEventW returned, closed once (the request has completed).
        unsafe { CloseHandle(self.event) };
    }
}

/// A pending START with its buffer. The buffer is memory the driver maps for the device, so it
/// is kept as a raw allocation the CPU only copies out of, and freed only after the request has
/// completed.
pub struct Direct {
    h: HANDLE,
    buffer: *mut u8,
    len: usize,
    ov: Box<Overlapped>,
    done: bool,
}

impl Transport for Device {
    type Direct = Direct;

    fn ioctl(&self, code: u32, input: &[u8], out_len: usize) -> Result<Vec<u8>, IoError> {
        let mut out = vec![0u8; out_len];
        let ov = self.issue(code, input, out.as_mut_ptr().cast(), out_len)?;
        let n = finish(self.h, &ov)?;
        out.truncate(n);
        Ok(out)
    }

    fn start_direct(&self, code: u32, input: &[u8], len: usize) -> Result<Direct, IoError> {
        let buffer = Box::into_raw(vec![0u8; len].into_boxed_slice()).cast::<u8>();
        let ov = match self.issue(code, input, buffer.cast(), len) {
            Ok(ov) => ov,
            Err(e) => {
                // SAFETY: the allocation made above; the request never started.
                drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(buffer, len)) });
                return Err(e);
            }
        };
        let mut d = Direct {
            h: self.h,
            buffer,
            len,
            ov,
            done: false,
        };
        // A START that failed at once has completed already.
        // SAFETY: the request's event.
        if unsafe { WaitForSingleObject(d.ov.event, 0) } == WAIT_OBJECT_0 {
            d.done = true;
            finish(d.h, &d.ov)?;
        }
        Ok(d)
    }
}

impl DirectIo for Direct {
    fn read(&self, offset: usize, out: &mut [u8]) -> Result<(), IoError> {
        if offset.checked_add(out.len()).is_none_or(|e| e > self.len) {
            return Err(IoError::Transport("read outside the stream buffer"));
        }
        // The driver has made the segment visible and handed it over (WAIT): its bytes are
        // final, while the device may be writing other segments — a raw copy, no reference.
        // SAFETY: `offset` lies inside the allocation (checked).
        let src = unsafe { self.buffer.add(offset) };
        // SAFETY: `out.len()` bytes from `src` lie inside the allocation (checked), which lives
        // until the request completes; `out` is ours.
        unsafe { std::ptr::copy_nonoverlapping(src, out.as_mut_ptr(), out.len()) };
        Ok(())
    }

    fn wait(mut self, timeout: Duration) -> Result<usize, IoError> {
        let ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
        // SAFETY: the request's event.
        let signalled = unsafe { WaitForSingleObject(self.ov.event, ms) } == WAIT_OBJECT_0;
        if !signalled {
            // The buffer must not be freed under a pending request: cancel it and wait.
            // SAFETY: our handle and the request's OVERLAPPED.
            unsafe { CancelIoEx(self.h, &raw const self.ov.ov) };
        }
        let r = finish(self.h, &self.ov);
        self.done = true;
        if signalled { r } else { Err(IoError::Timeout) }
    }
}

impl Drop for Direct {
    fn drop(&mut self) {
        if !self.done {
            // SAFETY: our handle and the request's OVERLAPPED; then wait for the completion.
            unsafe { CancelIoEx(self.h, &raw const self.ov.ov) };
            let _ = finish(self.h, &self.ov);
        }
        // SAFETY: the allocation made in start_direct; the request has completed.
        drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(self.buffer, self.len)) });
    }
}
