//! `wdk-sim`: the Windows kernel that the RHCA driver runs on in every test on Linux.
//!
//! It mirrors the items of `wdk-sys` (windows-drivers-rs, bindgen output) that the driver uses,
//! with the same names, field names, module paths and signatures, so that `driver/src/sys.rs`
//! can switch between `wdk_sys` and `wdk_sim` and nothing else in the driver changes. Types and
//! constants are at the crate root (as in `wdk_sys`), routines in [`ntddk`].
//!
//! What it owns:
//! - [`types`]: the mirrored C types (`PHYSICAL_ADDRESS`, `MDL`, `DEVICE_DESCRIPTION`,
//!   `DMA_ADAPTER`, `DMA_OPERATIONS`, scatter/gather lists, IRQLs, pool flags);
//! - [`Machine`]: simulated physical memory whose addresses are not host pointers, pool with
//!   per-tag tracking, MDLs, IRQL per thread, simulated CPUs;
//! - HAL DMA under the platform profiles `coherent`, `iommu`, `bounce` and `verifier`, with
//!   Driver Verifier's DMA checks reported as bug check 0xE6 ([`BugCheck`]);
//! - [`bus`]: the device's side of the bus, for `rhca-model`;
//! - [`testkit`]: safe adapter, buffer and mapping handles for tests that play the driver;
//! - [`wdf`] (part 2): KMDF objects, queues, requests, interrupts, and the [`wdf::host`] harness
//!   that plays `PnP`, power and user-mode processes with handles.
//!
//! Every mirrored item cites the C definition it mirrors; `docs/sim-fidelity.md` lists what is
//! modelled, from which source, and the known differences from Windows.
//!
//! # Safety story
//! `unsafe` is confined to this crate's internals: host page allocation (`mem`), copies into and
//! out of simulated memory, reads of driver-owned structures (MDLs, descriptions) at the
//! addresses the driver passes, and the `extern "C"` DMA routines. Every block states its
//! reasoning in a `// SAFETY:` comment.

#![forbid(unsafe_op_in_unsafe_fn)]
#![expect(
    clippy::cast_possible_truncation,
    reason = "the simulator only builds for 64-bit hosts (checked below): usize and u64 have one width, and the remaining u32 casts are of sizes bounded by the C structures"
)]
#![expect(
    clippy::used_underscore_items,
    reason = "bindgen names anonymous members and flexible arrays with leading underscores"
)]
#![expect(
    clippy::missing_const_for_fn,
    reason = "simulator routines are runtime code; making them const would promise an API the kernel surface does not have"
)]
#![expect(
    clippy::option_if_let_else,
    reason = "matches with side effects read clearer than map_or_else chains"
)]
#![expect(
    clippy::redundant_pub_crate,
    reason = "pub(crate) marks the machine-internal API explicitly; the nursery lint conflicts with rustc's unreachable_pub"
)]

#[cfg(not(target_pointer_width = "64"))]
compile_error!("wdk-sim models x64 Windows and needs a 64-bit host");

pub mod bugcheck;
pub mod bus;
mod hal;
mod machine;
mod mem;
pub mod ntddk;
pub mod testkit;
pub mod types;
pub mod wdf;

pub use bugcheck::BugCheck;
pub use bus::{
    Attached, DeviceBus, DmaFault, Interrupt, InterruptSink, PciFunction, PciIdentity,
    read_register_ulong, write_register_ulong,
};
pub use hal::{AdapterReport, DmaCounters, IommuCost, IommuStats};
pub use machine::{Config, Entered, Machine, Profile};

/// The byte the simulated I/O manager leaves in the output part of a `METHOD_BUFFERED` system
/// buffer (Windows does not clear it): a reply that carries it leaked uninitialised memory.
pub const UNINITIALIZED_FILL: u8 = 0xA5;
pub use mem::{TagUsage, tag_name};
pub use types::*;
pub use wdf::types::*;

/// `typedef LONG NTSTATUS;` (`shared/ntdef.h`).
///
/// wdk-sys 0.5.2 generates it as `i32` and marks it `#[must_use]` (bindgen `must_use_type("NTSTATUS")`); a type alias cannot carry that attribute,
/// so functions returning it are `#[must_use]` here instead.
pub type NTSTATUS = i32;

/// `#define NT_SUCCESS(Status) (((NTSTATUS)(Status)) >= 0)` (`shared/ntdef.h`). wdk-sys writes it
/// by hand as a function of the same name (wdk-sys 0.5.2 `src/lib.rs`).
#[expect(non_snake_case, reason = "mirrors the C macro name, as wdk-sys does")]
#[must_use]
pub const fn NT_SUCCESS(nt_status: NTSTATUS) -> bool {
    nt_status >= 0
}

/// `NT_INFORMATION(Status)`: severity 1 (`shared/ntdef.h`; wdk-sys 0.5.2 `src/lib.rs`).
#[expect(non_snake_case, reason = "mirrors the C macro name, as wdk-sys does")]
#[must_use]
pub const fn NT_INFORMATION(nt_status: NTSTATUS) -> bool {
    nt_status.cast_unsigned() >> 30 == 1
}

/// `NT_WARNING(Status)`: severity 2 (`shared/ntdef.h`; wdk-sys 0.5.2 `src/lib.rs`).
#[expect(non_snake_case, reason = "mirrors the C macro name, as wdk-sys does")]
#[must_use]
pub const fn NT_WARNING(nt_status: NTSTATUS) -> bool {
    nt_status.cast_unsigned() >> 30 == 2
}

/// `NT_ERROR(Status)`: severity 3 (`shared/ntdef.h`; wdk-sys 0.5.2 `src/lib.rs`).
#[expect(non_snake_case, reason = "mirrors the C macro name, as wdk-sys does")]
#[must_use]
pub const fn NT_ERROR(nt_status: NTSTATUS) -> bool {
    nt_status.cast_unsigned() >> 30 == 3
}

/// The `STATUS_*` values the driver uses, from `shared/ntstatus.h`. wdk-sys 0.5.2 writes them by
/// hand in `src/constants.rs` as `NTSTATUS` constants at the crate root, as here.
mod status {
    use super::NTSTATUS;

    /// Converts the `ntstatus.h` bit pattern `0xC000_0001`-style literal to `NTSTATUS`.
    const fn s(v: u32) -> NTSTATUS {
        // NTSTATUS values are defined as 32-bit patterns; reinterpretation is intended.
        v.cast_signed()
    }

    /// `STATUS_SUCCESS` (0x00000000).
    pub const STATUS_SUCCESS: NTSTATUS = s(0x0000_0000);
    /// `STATUS_PENDING` (0x00000103).
    pub const STATUS_PENDING: NTSTATUS = s(0x0000_0103);
    /// `STATUS_UNSUCCESSFUL` (0xC0000001).
    pub const STATUS_UNSUCCESSFUL: NTSTATUS = s(0xC000_0001);
    /// `STATUS_NOT_IMPLEMENTED` (0xC0000002).
    pub const STATUS_NOT_IMPLEMENTED: NTSTATUS = s(0xC000_0002);
    /// `STATUS_INVALID_PARAMETER` (0xC000000D).
    pub const STATUS_INVALID_PARAMETER: NTSTATUS = s(0xC000_000D);
    /// `STATUS_INVALID_DEVICE_REQUEST` (0xC0000010).
    pub const STATUS_INVALID_DEVICE_REQUEST: NTSTATUS = s(0xC000_0010);
    /// `STATUS_ACCESS_DENIED` (0xC0000022).
    pub const STATUS_ACCESS_DENIED: NTSTATUS = s(0xC000_0022);
    /// `STATUS_BUFFER_TOO_SMALL` (0xC0000023).
    pub const STATUS_BUFFER_TOO_SMALL: NTSTATUS = s(0xC000_0023);
    /// `STATUS_INSUFFICIENT_RESOURCES` (0xC000009A).
    pub const STATUS_INSUFFICIENT_RESOURCES: NTSTATUS = s(0xC000_009A);
    /// `STATUS_DEVICE_NOT_READY` (0xC00000A3).
    pub const STATUS_DEVICE_NOT_READY: NTSTATUS = s(0xC000_00A3);
    /// `STATUS_NOT_SUPPORTED` (0xC00000BB).
    pub const STATUS_NOT_SUPPORTED: NTSTATUS = s(0xC000_00BB);
    /// `STATUS_CANCELLED` (0xC0000120).
    pub const STATUS_CANCELLED: NTSTATUS = s(0xC000_0120);
    /// `STATUS_DEVICE_REMOVED` (0xC00002B6).
    pub const STATUS_DEVICE_REMOVED: NTSTATUS = s(0xC000_02B6);
    /// `STATUS_IO_TIMEOUT` (0xC00000B5).
    pub const STATUS_IO_TIMEOUT: NTSTATUS = s(0xC000_00B5);
    /// `STATUS_IO_DEVICE_ERROR` (0xC0000185).
    pub const STATUS_IO_DEVICE_ERROR: NTSTATUS = s(0xC000_0185);
    /// `STATUS_DEVICE_HARDWARE_ERROR` (0xC0000483).
    pub const STATUS_DEVICE_HARDWARE_ERROR: NTSTATUS = s(0xC000_0483);
    /// `STATUS_INVALID_BUFFER_SIZE` (0xC0000206).
    pub const STATUS_INVALID_BUFFER_SIZE: NTSTATUS = s(0xC000_0206);
    /// `STATUS_REVISION_MISMATCH` (0xC0000059).
    pub const STATUS_REVISION_MISMATCH: NTSTATUS = s(0xC000_0059);
    /// `STATUS_INVALID_DEVICE_STATE` (0xC0000184).
    pub const STATUS_INVALID_DEVICE_STATE: NTSTATUS = s(0xC000_0184);
    /// `STATUS_DEVICE_CONFIGURATION_ERROR` (0xC0000182).
    pub const STATUS_DEVICE_CONFIGURATION_ERROR: NTSTATUS = s(0xC000_0182);
    /// `STATUS_DEVICE_BUSY` (0x80000011, a warning).
    pub const STATUS_DEVICE_BUSY: NTSTATUS = s(0x8000_0011);
}

pub use status::*;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_helpers_follow_ntdef_h() {
        assert!(NT_SUCCESS(STATUS_SUCCESS));
        assert!(NT_SUCCESS(STATUS_PENDING));
        assert!(!NT_SUCCESS(STATUS_CANCELLED));
        assert!(!NT_SUCCESS(STATUS_DEVICE_BUSY));
        assert!(NT_WARNING(STATUS_DEVICE_BUSY));
        assert!(NT_ERROR(STATUS_INSUFFICIENT_RESOURCES));
        assert!(!NT_ERROR(STATUS_SUCCESS));
        assert!(NT_INFORMATION(0x4000_0000));
        assert_eq!(STATUS_INSUFFICIENT_RESOURCES, -1_073_741_670);
    }
}
