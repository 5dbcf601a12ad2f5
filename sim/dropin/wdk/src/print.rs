//! `print!`/`println!`: formatting into a fixed buffer, flushed to `DbgPrint` in chunks of at
//! most 511 bytes (its limit is 512 with the NUL), as wdk 0.5.0 does.

use core::fmt::{self, Write};

/// `DbgPrint`'s limit, less the terminating NUL.
const CHUNK: usize = 511;

struct Chunks {
    buf: [u8; CHUNK + 1],
    len: usize,
}

impl Chunks {
    fn flush(&mut self) {
        if self.len == 0 {
            return;
        }
        self.buf[self.len] = 0;
        // SAFETY: "%s" with a NUL-terminated buffer this function owns; DbgPrint reads up to
        // the first NUL (interior NULs cut a chunk short, as wdk documents).
        unsafe {
            wdk_sys::ntddk::DbgPrint(c"%s".as_ptr(), self.buf.as_ptr());
        }
        self.len = 0;
    }
}

impl Write for Chunks {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if self.len == CHUNK {
                self.flush();
            }
            self.buf[self.len] = b;
            self.len += 1;
        }
        Ok(())
    }
}

/// What [`crate::print!`] calls.
pub fn _print(args: fmt::Arguments) {
    let mut c = Chunks {
        buf: [0; CHUNK + 1],
        len: 0,
    };
    // Formatting into `Chunks` cannot fail: `write_str` always succeeds.
    let _ = c.write_fmt(args);
    c.flush();
}

/// Prints to the kernel debugger (the simulated machine's debug print buffer), as wdk's
/// `print!`.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => {
        ($crate::_print(format_args!($($arg)*)))
    };
}

/// [`print!`] with a newline, as wdk's `println!`.
#[macro_export]
macro_rules! println {
    () => {
        ($crate::print!("\n"));
    };
    ($($arg:tt)*) => {
        ($crate::print!("{}\n", format_args!($($arg)*)))
    };
}
