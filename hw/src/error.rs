//! The one error type of `rhca-hw`.
//!
//! Every decoder and validator in this crate returns [`enum@Error`]. The variants name the field
//! that failed and carry the offending value, so that a driver can log a hostile completion
//! precisely and a test can assert the exact reason. Nothing here maps to `NTSTATUS`: only the driver's
//! KMDF boundary does that.

use thiserror::Error;

/// Why a buffer, register value or IOCTL request was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum Error {
    /// The buffer is shorter than the structure being decoded or encoded.
    #[error("buffer too short: need {need} bytes, have {have}")]
    Truncated {
        /// Bytes the structure needs.
        need: usize,
        /// Bytes the caller supplied.
        have: usize,
    },
    /// A field holds a value the interface does not define.
    #[error("field `{field}` has invalid value {value:#x}")]
    InvalidField {
        /// The field's name as `docs/device.md` spells it.
        field: &'static str,
        /// The value found.
        value: u64,
    },
    /// A reserved field or bit is not zero.
    #[error("reserved bits of `{field}` are not zero ({value:#x})")]
    ReservedNonZero {
        /// The field holding the reserved bits.
        field: &'static str,
        /// The value found (reserved bits included).
        value: u64,
    },
    /// An index points outside the ring or table it refers to.
    #[error("`{field}` index {index} is outside 0..{limit}")]
    IndexOutOfRange {
        /// The index field.
        field: &'static str,
        /// The index found.
        index: u64,
        /// The number of valid entries.
        limit: u64,
    },
    /// A length exceeds what the interface or the posted buffer allows.
    #[error("`{field}` length {len} exceeds the limit {limit}")]
    LengthTooLarge {
        /// The length field.
        field: &'static str,
        /// The length found.
        len: u64,
        /// The largest length allowed here.
        limit: u64,
    },
    /// A length is below what the interface requires.
    #[error("`{field}` length {len} is below the minimum {min}")]
    LengthTooSmall {
        /// The length field.
        field: &'static str,
        /// The length found.
        len: u64,
        /// The smallest length allowed here.
        min: u64,
    },
    /// A value is not aligned as the interface requires.
    #[error("`{field}` value {value:#x} is not a multiple of {align:#x}")]
    Misaligned {
        /// The field.
        field: &'static str,
        /// The value found.
        value: u64,
        /// The required alignment (a power of two, or the segment size for strides).
        align: u64,
    },
    /// An opcode is not one the interface defines (in this position).
    #[error("unknown {kind} opcode {opcode:#04x}")]
    UnknownOpcode {
        /// Which structure the opcode came from (`"WQE"` or `"CQE"`).
        kind: &'static str,
        /// The opcode found.
        opcode: u8,
    },
    /// An ownership (owner/phase) bit says the entry does not belong to the reader yet.
    #[error("entry is not owned by the reader (owner bit {found}, expected {expected})")]
    NotOwned {
        /// The owner bit found.
        found: bool,
        /// The owner bit that marks a valid entry for the reader's current lap.
        expected: bool,
    },
    /// A versioned IOCTL structure carries a version this build does not speak.
    #[error("unsupported ABI version {found} (supported: {supported})")]
    UnsupportedVersion {
        /// The version found in the request header.
        found: u32,
        /// The version this crate implements.
        supported: u32,
    },
    /// A versioned IOCTL structure declares a size that does not match its version.
    #[error("ABI structure size {found} does not match the expected {expected}")]
    SizeMismatch {
        /// The size declared in the header (or the buffer length).
        found: u32,
        /// The size of the structure for the declared version.
        expected: u32,
    },
    /// An IOCTL control code is not part of the RHCA ABI.
    #[error("unknown IOCTL control code {0:#010x}")]
    UnknownIoctl(u32),
}

/// The result type of this crate.
pub type Result<T> = core::result::Result<T, Error>;
