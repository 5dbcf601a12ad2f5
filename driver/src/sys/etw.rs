//! The driver's ETW provider registration and event writes (`EtwRegister`, `EtwWriteTransfer`,
//! `EtwUnregister`), and `DbgPrintEx` — the `unsafe` half of [`crate::trace`].
//!
//! What it owns: the one registration handle, in a static, written at `DriverEntry` (before any
//! other driver code runs) and unregistered at `EvtDriverUnload` (after the last device is
//! gone), read lock-free by every event. The static keeps the value after `EtwUnregister`: no
//! driver code runs once the driver has unloaded, and a failed `DriverEntry` writes no event
//! after it. (On the simulated machine several machines in one test process share the driver's
//! statics; wdk-sim gives the driver the same handle on each, `docs/sim-fidelity.md`.) Events are written from any IRQL, so nothing here allocates or
//! blocks: descriptors live on the stack, and `DbgPrintEx` text is formatted into a stack buffer.
//!
//! Data descriptors are written through `DataDescriptor`, our own `#[repr(C)]` record with
//! `EVENT_DATA_DESCRIPTOR`'s layout (asserted below): the WDK names its last member through an
//! anonymous union (`Reserved` or `Type`), which bindgen spells differently from mingw-w64's
//! header, so the driver never names it.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU64, Ordering};

use super::{
    _DPFLTR_TYPE, EVENT_DATA_DESCRIPTOR, EVENT_DESCRIPTOR, GUID, NTSTATUS, STATUS_SUCCESS, ntddk,
};

/// The registration handle (`REGHANDLE`); 0 while unregistered.
static HANDLE: AtomicU64 = AtomicU64::new(0);

/// `EVENT_DATA_DESCRIPTOR` with its union member as one `u32` (`Reserved`; its low byte is
/// `Type`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct DataDescriptor {
    ptr: u64,
    size: u32,
    kind: u32,
}

const _: () = {
    assert!(size_of::<DataDescriptor>() == size_of::<EVENT_DATA_DESCRIPTOR>());
    assert!(align_of::<DataDescriptor>() == align_of::<EVENT_DATA_DESCRIPTOR>());
};

/// `EVENT_DATA_DESCRIPTOR_TYPE_EVENT_METADATA` (`evntprov.h`).
const TYPE_EVENT_METADATA: u32 = 1;
/// `EVENT_DATA_DESCRIPTOR_TYPE_PROVIDER_METADATA` (`evntprov.h`).
const TYPE_PROVIDER_METADATA: u32 = 2;

/// The most data slices one event carries (a `TraceLogging` counted string takes two).
pub const MAX_EVENT_DATA: usize = 16;

/// `EtwRegister` of the provider `guid`, without an enable callback (events are filtered by ETW
/// itself from the level and keyword of their descriptor). At `PASSIVE_LEVEL`, in
/// `DriverEntry`.
///
/// # Errors
/// `EtwRegister`'s status; the driver then runs without tracing.
pub fn register(guid: &GUID) -> Result<(), NTSTATUS> {
    let mut handle = 0u64;
    // SAFETY: a live GUID and handle location; no callback, so no context.
    let st = unsafe { ntddk::EtwRegister(guid, None, core::ptr::null_mut(), &raw mut handle) };
    if st != STATUS_SUCCESS {
        return Err(st);
    }
    HANDLE.store(handle, Ordering::Release);
    Ok(())
}

/// `EtwUnregister`, at `EvtDriverUnload` (`PASSIVE_LEVEL`). No event is written afterwards:
/// every device, and so every caller of [`write()`], is gone by then.
pub fn unregister() {
    let handle = HANDLE.load(Ordering::Acquire);
    if handle != 0 {
        // SAFETY: the handle EtwRegister returned, unregistered once.
        let _ = unsafe { ntddk::EtwUnregister(handle) };
    }
}

/// Writes one `TraceLogging` event.
///
/// `provider` and `event` are the metadata blocks, `data` the field values in the order the
/// event metadata lists them. At any IRQL (every slice is in
/// non-paged memory: the stack, statics, or the driver's non-paged pool).
pub fn write(descriptor: &EVENT_DESCRIPTOR, provider: &[u8], event: &[u8], data: &[&[u8]]) {
    let handle = HANDLE.load(Ordering::Acquire);
    if handle == 0 {
        return;
    }
    let slice = |bytes: &[u8], kind: u32| DataDescriptor {
        ptr: bytes.as_ptr() as u64,
        size: bytes.len() as u32,
        kind,
    };
    let mut descriptors = [DataDescriptor {
        ptr: 0,
        size: 0,
        kind: 0,
    }; MAX_EVENT_DATA + 2];
    descriptors[0] = slice(provider, TYPE_PROVIDER_METADATA);
    descriptors[1] = slice(event, TYPE_EVENT_METADATA);
    let n = data.len().min(MAX_EVENT_DATA);
    for (d, bytes) in descriptors[2..].iter_mut().zip(&data[..n]) {
        *d = slice(bytes, 0);
    }
    // SAFETY: a registered handle; the descriptor and the `n + 2` data descriptors (same
    // layout as EVENT_DATA_DESCRIPTOR, asserted above) name slices alive for the call.
    let _ = unsafe {
        ntddk::EtwWriteTransfer(
            handle,
            descriptor,
            core::ptr::null(),
            core::ptr::null(),
            (n + 2) as u32,
            descriptors.as_mut_ptr().cast::<EVENT_DATA_DESCRIPTOR>(),
        )
    };
}

/// A fixed buffer that `fmt::Write` fills, cutting what does not fit (and keeping room for the
/// nul).
struct Line {
    buf: [u8; 256],
    len: usize,
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            // A nul inside the text would end it early for the debugger.
            let b = if b == 0 { b'?' } else { b };
            if self.len + 1 < self.buf.len() {
                self.buf[self.len] = b;
                self.len += 1;
            }
        }
        Ok(())
    }
}

/// `DbgPrintEx(DPFLTR_IHVDRIVER_ID, level, "rhca: %s\n", text)`, the text formatted here into a
/// 256-byte stack buffer (cut beyond). At any IRQL up to `DIRQL`: `%s` of non-paged memory.
pub fn debug_print(level: u32, args: fmt::Arguments<'_>) {
    let mut line = Line {
        buf: [0; 256],
        len: 0,
    };
    let _ = line.write_fmt(args);
    line.buf[line.len] = 0;
    // SAFETY: a literal format with one `%s`, and a nul-terminated buffer alive for the call.
    let _ = unsafe {
        ntddk::DbgPrintEx(
            _DPFLTR_TYPE::DPFLTR_IHVDRIVER_ID.cast_unsigned(),
            level,
            c"rhca: %s\n".as_ptr(),
            line.buf.as_ptr(),
        )
    };
}
