//! `rhca`: the RHCA KMDF bus-master driver.
//!
//! The driver gets its DMA adapter with `IoGetDmaAdapter` on the PDO and never hands the device
//! a physical address; keeps its work and completion rings in `AllocateCommonBuffer` memory;
//! maps every MAD per post with `GetScatterGatherList` and releases it on completion; and streams
//! into an externally supplied circular buffer through one persistent mapping with an explicit
//! flush per segment. See `../shared/ARCHITECTURE.md` and `docs/dma.md`.
//!
//! What this crate owns:
//! - [`sys`]: the only platform switch (`wdk_sys` on Windows, `wdk_sim` elsewhere), and the typed
//!   KMDF boundary ([`sys::wdf`]);
//! - [`dma`]: safe RAII layers over the HAL DMA surface (`Adapter`, `CommonBuffer`, `SgMapping`,
//!   `UserBuffer`, `MdlCommonBuffer`), where the driver's DMA `unsafe` lives;
//! - [`hca`]: the rings, the MAD send/receive path and the stream engines ([`hca::stream`]),
//!   built on `rhca-hw`;
//! - [`kmdf`]: `DriverEntry`'s callbacks — device add, `PnP`/power, ISR/DPC, the IOCTL queue, the
//!   stream work item.
//!
//! # Safety story
//! `unsafe` is confined to [`sys`] (with the KMDF boundary [`sys::wdf`]), [`dma`] and the
//! `DriverEntry` export below; [`hca`] and [`kmdf`] are `#![forbid(unsafe_code)]`. Every block
//! carries a SAFETY comment and every `unsafe fn` a `# Safety` section (workspace lints).
//!
//! Dependencies point down only: `kmdf` → `hca` → `dma` → `sys` (and `kmdf` → `sys`); `sys`
//! names nothing above it.

#![no_std]
#![expect(
    clippy::cast_possible_truncation,
    reason = "register fields, ring slots and structure sizes are bounded by the device interface (docs/device.md) far below the target types' ranges"
)]

extern crate alloc;

// The kernel runtime pieces of windows-drivers-rs, on Windows only (not under `cfg(test)`, where
// the standard library's panic handler and allocator are linked instead): wdk-panic bug-checks
// with code 'RPNC' on a panic.
#[cfg(all(windows, not(test)))]
extern crate wdk_panic;

/// The kernel allocator: `ExAllocatePool2(POOL_FLAG_NON_PAGED, …)` tagged `RHCA`
/// ([`sys::pool`]; wdk-alloc's `WdkAllocator` would tag it `rust`). Never used for memory a
/// device can see: DMA memory comes from the DMA adapter.
#[cfg(all(windows, not(test)))]
#[global_allocator]
static GLOBAL_ALLOCATOR: sys::pool::PoolAllocator = sys::pool::PoolAllocator;

/// On the simulated machine, wdk-sim's heap: the host's allocator, held to the pool's IRQL rule
/// (an allocation above `DISPATCH_LEVEL` stops the machine as Verifier does), counting what the
/// DPC and ISR allocate.
#[cfg(not(windows))]
#[global_allocator]
static GLOBAL_ALLOCATOR: wdk_sim::DriverHeap = wdk_sim::DriverHeap;

pub mod batch;
pub mod dma;
pub mod hca;
pub mod hooks;
pub mod kmdf;
pub mod sys;
pub mod trace;

/// `DriverEntry`: creates the framework driver object with the RHCA's `EvtDriverDeviceAdd`.
///
/// Here, at the crate root where the windows-drivers-rs template puts it, because it is where
/// the layers meet: [`sys`] depends on nothing above it, and [`kmdf`] is free of `unsafe`.
///
/// # Safety
/// Called by the kernel loader (or the simulated one) with the driver object and registry path.
#[cfg_attr(all(windows, not(test)), unsafe(export_name = "DriverEntry"))]
pub unsafe extern "system" fn driver_entry(
    driver: sys::PDRIVER_OBJECT,
    registry: sys::PCUNICODE_STRING,
) -> sys::NTSTATUS {
    // The provider first, so that everything after it can be traced; EvtDriverUnload
    // unregisters it, and a failed DriverEntry (after which no unload routine runs) here.
    trace::register();
    trace::emit(
        &trace::DRIVER_LOADED,
        &[
            trace::Value::Str(env!("CARGO_PKG_VERSION")),
            trace::Value::U32(trace::KMDF_VERSION.0),
            trace::Value::U32(trace::KMDF_VERSION.1),
        ],
    );
    // SAFETY: the loader's arguments, passed through.
    let st = unsafe {
        sys::wdf::driver_create(
            driver,
            registry,
            Some(kmdf::evt_device_add),
            Some(kmdf::evt_driver_unload),
        )
    };
    if st != sys::STATUS_SUCCESS {
        trace::emit(
            &trace::DEVICE_ADD_FAILED,
            &[
                trace::Value::Str("WdfDriverCreate"),
                trace::Value::Status(st),
            ],
        );
        trace::unregister();
    }
    st
}
