//! The simulated machine as `rhcactl`'s transport (every host but Windows).
//!
//! The RHCA driver, loaded on a `wdk-sim` machine with the device model (by the `rhcactl`
//! binary's `--sim` option, or a test), is reached through the machine's user-mode handle API —
//! the same IOCTL codes and buffers `DeviceIoControl` would carry. The library itself does not
//! link the driver: the binary and the tests do, so that one build of the simulator serves both.

use std::time::Duration;

use wdk_sim::wdf::host::{Handle, Pending, Process};
use wdk_sim::{Machine, STATUS_SUCCESS};

use crate::{DirectIo, IoError, Transport};

/// A process's open handle on the simulated machine, as a transport.
#[derive(Debug)]
pub struct Sim<'a> {
    /// The process.
    pub p: &'a Process,
    /// Its handle to the device.
    pub h: Handle,
    /// The machine (for the process's memory).
    pub m: &'a Machine,
}

/// A pending direct-I/O request on the simulated machine.
#[derive(Debug)]
pub struct SimDirect<'a> {
    pending: Pending,
    va: usize,
    m: &'a Machine,
}

/// How long a synchronous request may take.
const LIMIT: Duration = Duration::from_secs(20);

impl<'a> Transport for Sim<'a> {
    type Direct = SimDirect<'a>;

    fn ioctl(&self, code: u32, input: &[u8], out_len: usize) -> Result<Vec<u8>, IoError> {
        let pend = self
            .p
            .ioctl_async(&self.h, code, input, out_len)
            .map_err(|_| IoError::Transport("the simulated machine stopped"))?;
        let r = pend.wait(LIMIT).ok_or(IoError::Timeout)?;
        if r.status == STATUS_SUCCESS {
            Ok(r.output)
        } else {
            Err(IoError::Status(r.status))
        }
    }

    fn start_direct(&self, code: u32, input: &[u8], len: usize) -> Result<Self::Direct, IoError> {
        let va = self.p.alloc(len);
        let pending = self
            .p
            .ioctl_with_buffer(&self.h, code, input, va, len)
            .map_err(|_| IoError::Transport("the simulated machine stopped"))?;
        if let Some(r) = pending.wait(Duration::ZERO) {
            return Err(IoError::Status(r.status));
        }
        Ok(SimDirect {
            pending,
            va,
            m: self.m,
        })
    }
}

impl DirectIo for SimDirect<'_> {
    fn read(&self, offset: usize, out: &mut [u8]) -> Result<(), IoError> {
        self.m
            .cpu_read(self.va + offset, out)
            .map_err(|_| IoError::Transport("the stream buffer is gone"))
    }

    fn wait(self, timeout: Duration) -> Result<usize, IoError> {
        let r = self.pending.wait(timeout).ok_or(IoError::Timeout)?;
        if r.status == STATUS_SUCCESS {
            Ok(r.information)
        } else {
            Err(IoError::Status(r.status))
        }
    }
}
