//! The HCA layer's one error type: why a MAD, a stream operation or the device refused or
//! failed. The KMDF layer turns it into an `NTSTATUS` in one function
//! (`kmdf::status_of`), so the statuses an application sees are decided in one place.

use thiserror::Error;

use crate::dma::DmaError;

/// Why the HCA layer refused a request or ended it in error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum HcaError {
    /// The device is not running (not in D0, or a failed queue awaits its reset): retry later.
    #[error("the device is not running")]
    NotReady,
    /// The device is gone (surprise removal, or reads return all ones).
    #[error("the device was removed")]
    Removed,
    /// The request was cancelled, or flushed by a reset that was not caused by a stall.
    #[error("cancelled")]
    Cancelled,
    /// The request was flushed by the reset that followed a queue stall.
    #[error("the device stalled and was reset")]
    Timeout,
    /// An input the interface does not allow (a field `rhca-hw` rejects, a sequence the
    /// stream protocol does not expect, an engine the device lacks).
    #[error("invalid parameter")]
    InvalidParameter,
    /// A forced stream strategy this platform or adapter cannot do correctly.
    #[error("not supported on this platform or adapter")]
    NotSupported,
    /// A mapping, common buffer or descriptor table could not be had.
    #[error("out of resources")]
    NoResources,
    /// The stream engine already has a stream.
    #[error("the engine is busy")]
    Busy,
    /// No stream on the engine (and none ended on this handle).
    #[error("no stream on this engine")]
    NoStream,
    /// The stream belongs to another handle.
    #[error("the stream belongs to another handle")]
    AccessDenied,
    /// The engine refused to start (it did not run, or reported an error at once).
    #[error("the engine refused to start")]
    EngineRefused,
    /// The device reported an error, or wrote something it could not legitimately write.
    #[error("device error")]
    DeviceError,
    /// Bring-up: the device reports an interface version or capabilities this driver does not
    /// know.
    #[error("the device's interface version or capabilities are not supported")]
    UnsupportedDevice,
    /// Bring-up: reset or quiesce did not complete within its bound.
    #[error("reset or quiesce did not complete in time")]
    BringUpTimeout,
    /// Bring-up: a DMA resource (an adapter, a common buffer) could not be obtained.
    #[error("DMA resource: {0:?}")]
    Dma(DmaError),
    /// Bring-up: the device refused a queue configuration (the register value it reported).
    #[error("the device refused a queue configuration ({0:#x})")]
    QueueRefused(u32),
}
