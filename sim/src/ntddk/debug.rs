//! `DbgPrint` and `DbgPrintEx` (`wdm.h`): C-variadic in wdk-sys, so declared here exactly as
//! wdk-sys declares them and defined in C (`sim/csrc/dbgprint.c`), which formats the message
//! and hands it to [`wdk_sim_debug_print`] for the machine's debug print buffer.

use core::ffi::c_char;

use crate::trace::DebugPrint;
use crate::types::{PCSTR, ULONG};

unsafe extern "C" {
    /// `ULONG DbgPrint(PCSTR Format, ...)`: `DbgPrintEx(DPFLTR_DEFAULT_ID, DPFLTR_INFO_LEVEL, …)`.
    pub fn DbgPrint(Format: PCSTR, ...) -> ULONG;
    /// `ULONG DbgPrintEx(ULONG ComponentId, ULONG Level, PCSTR Format, ...)`.
    pub fn DbgPrintEx(ComponentId: ULONG, Level: ULONG, Format: PCSTR, ...) -> ULONG;
}

/// Called by `dbgprint.c` with the formatted message (`len` bytes, at most 511). Keeps it in the
/// calling CPU's machine; off a machine (a harness thread) it goes to standard error. Never
/// panics and never stops the machine: it runs under C frames.
#[unsafe(no_mangle)]
extern "C" fn wdk_sim_debug_print(
    component: u32,
    level: u32,
    text: *const c_char,
    len: usize,
) -> u32 {
    // The debugger's buffer is the kernel's: what is kept here is not the driver's allocation.
    let _kernel = crate::heap::KernelEntry::new();
    let bytes = if text.is_null() {
        &[][..]
    } else {
        // SAFETY: dbgprint.c passes its formatting buffer and the length it wrote.
        unsafe { core::slice::from_raw_parts(text.cast::<u8>(), len) }
    };
    let text = String::from_utf8_lossy(bytes).into_owned();
    match crate::machine::try_current() {
        Some(m) => m.lock().etw.prints.push(DebugPrint {
            component,
            level,
            text,
        }),
        None => eprint!("{text}"),
    }
    0
}
