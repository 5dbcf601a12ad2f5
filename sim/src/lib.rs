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
mod conformance;
pub mod constants;
mod fasthash;
mod hal;
#[doc(hidden)]
pub mod heap;
pub mod inline;
mod machine;
mod mem;
pub mod ntddk;
mod pagetable;
pub mod spin;
pub mod testkit;
pub mod trace;
pub mod typed;
pub mod types;
pub mod wdf;

pub use bugcheck::BugCheck;
pub use bus::{
    Attached, DeviceBus, DmaFault, Interrupt, InterruptSink, PciFunction, PciIdentity,
    read_register_ulong, stepped_by_caller, write_register_ulong,
};
pub use hal::{AdapterReport, DmaCounters, IommuCost, IommuStats};
pub use heap::{DriverHeap, RustPoolHeap};
pub use machine::{Config, Entered, Machine, Profile};

/// The byte the simulated I/O manager leaves in the output part of a `METHOD_BUFFERED` system
/// buffer (Windows does not clear it): a reply that carries it leaked uninitialised memory.
pub const UNINITIALIZED_FILL: u8 = 0xA5;
pub use mem::{TagUsage, tag_name};
pub use types::*;

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

pub use constants::*;

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
