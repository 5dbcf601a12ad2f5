//! Every item `wdk-sim` mirrors from `wdk-sys`, by the path the driver uses. A reviewer with a
//! WDK can diff this list against the generated `types.rs`, `constants.rs` and `ntddk.rs` of
//! wdk-sys 0.5.2: each line below must compile against `wdk_sys` with `wdk_sim` replaced by
//! `wdk_sys` (apart from the simulator-only items listed at the end).
//!
//! The test itself checks what can be checked on this host: layouts (sizes and field offsets
//! as the C headers define them on x64) and the spelling of every name (by using it).

#![expect(
    clippy::too_many_lines,
    reason = "each test is a flat list of mirrored names, one per line"
)]

use core::mem::{offset_of, size_of};

use wdk_sim::*;

/// Types and constants at the crate root, as wdk-sys re-exports `types.rs`/`constants.rs`.
#[allow(
    clippy::no_effect_underscore_binding,
    reason = "the bindings exist to name each item"
)]
#[test]
fn root_items_exist_with_c_layouts() {
    let _types: [usize; 34] = [
        size_of::<UCHAR>(),
        size_of::<USHORT>(),
        size_of::<ULONG>(),
        size_of::<LONG>(),
        size_of::<CSHORT>(),
        size_of::<CCHAR>(),
        size_of::<LONGLONG>(),
        size_of::<ULONGLONG>(),
        size_of::<ULONG64>(),
        size_of::<ULONG_PTR>(),
        size_of::<SIZE_T>(),
        size_of::<BOOLEAN>(),
        size_of::<PVOID>(),
        size_of::<HANDLE>(),
        size_of::<PULONG>(),
        size_of::<PFN_NUMBER>(),
        size_of::<NODE_REQUIREMENT>(),
        size_of::<POOL_FLAGS>(),
        size_of::<KIRQL>(),
        size_of::<PKIRQL>(),
        size_of::<KSPIN_LOCK>(),
        size_of::<PKSPIN_LOCK>(),
        size_of::<KPROCESSOR_MODE>(),
        size_of::<NTSTATUS>(),
        size_of::<LARGE_INTEGER>(),
        size_of::<PHYSICAL_ADDRESS>(),
        size_of::<PPHYSICAL_ADDRESS>(),
        size_of::<INTERFACE_TYPE>(),
        size_of::<DMA_WIDTH>(),
        size_of::<DMA_SPEED>(),
        size_of::<MEMORY_CACHING_TYPE>(),
        size_of::<LOCK_OPERATION>(),
        size_of::<IO_ALLOCATION_ACTION>(),
        size_of::<DMA_COMPLETION_STATUS>(),
    ];
    assert_eq!(size_of::<ULONG>(), 4, "ULONG is 32 bits on Windows");
    assert_eq!(size_of::<PHYSICAL_ADDRESS>(), 8);
    assert_eq!(size_of::<KIRQL>(), 1);

    // MDL (wdm.h): 8 + 2 + 2 + (pad 4) + 8 + 8 + 8 + 4 + 4 = 48 bytes on x64.
    assert_eq!(size_of::<MDL>(), 48);
    assert_eq!(offset_of!(_MDL, Size), 8);
    assert_eq!(offset_of!(_MDL, MdlFlags), 10);
    assert_eq!(offset_of!(_MDL, Process), 16);
    assert_eq!(offset_of!(_MDL, MappedSystemVa), 24);
    assert_eq!(offset_of!(_MDL, StartVa), 32);
    assert_eq!(offset_of!(_MDL, ByteCount), 40);
    assert_eq!(offset_of!(_MDL, ByteOffset), 44);
    let _mdl_types: (PMDL, PIRP, *mut _EPROCESS) = (
        core::ptr::null_mut(),
        core::ptr::null_mut(),
        core::ptr::null_mut(),
    );

    // DEVICE_DESCRIPTION (wdm.h, version 3 fields).
    assert_eq!(offset_of!(_DEVICE_DESCRIPTION, Master), 4);
    assert_eq!(offset_of!(_DEVICE_DESCRIPTION, Dma64BitAddresses), 11);
    assert_eq!(offset_of!(_DEVICE_DESCRIPTION, BusNumber), 12);
    assert_eq!(offset_of!(_DEVICE_DESCRIPTION, InterfaceType), 20);
    assert_eq!(offset_of!(_DEVICE_DESCRIPTION, MaximumLength), 32);
    assert_eq!(offset_of!(_DEVICE_DESCRIPTION, DmaAddressWidth), 40);
    assert_eq!(offset_of!(_DEVICE_DESCRIPTION, DeviceAddress), 56);
    assert_eq!(size_of::<DEVICE_DESCRIPTION>(), 64);
    let _: PDEVICE_DESCRIPTION = core::ptr::null_mut();

    // DMA_ADAPTER and DMA_OPERATIONS: Size, then 39 pointers.
    assert_eq!(size_of::<DMA_ADAPTER>(), 16);
    assert_eq!(offset_of!(_DMA_ADAPTER, DmaOperations), 8);
    assert_eq!(size_of::<DMA_OPERATIONS>(), 8 + 39 * 8);
    assert_eq!(offset_of!(_DMA_OPERATIONS, PutDmaAdapter), 8);
    assert_eq!(
        offset_of!(_DMA_OPERATIONS, GetScatterGatherList),
        8 + 10 * 8
    );
    assert_eq!(offset_of!(_DMA_OPERATIONS, GetDmaAdapterInfo), 8 + 15 * 8);
    assert_eq!(offset_of!(_DMA_OPERATIONS, FlushDmaBuffer), 8 + 29 * 8);
    assert_eq!(
        offset_of!(_DMA_OPERATIONS, CreateCommonBufferFromMdl),
        8 + 38 * 8
    );
    let _: (PDMA_ADAPTER, PADAPTER_OBJECT, PDMA_OPERATIONS) = (
        core::ptr::null_mut(),
        core::ptr::null_mut(),
        core::ptr::null_mut(),
    );

    // Scatter/gather lists: the flexible array as bindgen emits it.
    assert_eq!(size_of::<SCATTER_GATHER_ELEMENT>(), 24);
    assert_eq!(offset_of!(_SCATTER_GATHER_LIST, Elements), 16);
    let _: (
        PSCATTER_GATHER_LIST,
        PSCATTER_GATHER_ELEMENT,
        __IncompleteArrayField<SCATTER_GATHER_ELEMENT>,
    ) = (
        core::ptr::null_mut(),
        core::ptr::null_mut(),
        __IncompleteArrayField::new(),
    );

    // v3 information structures.
    assert_eq!(size_of::<DMA_ADAPTER_INFO_V1>(), 20);
    assert_eq!(size_of::<DMA_ADAPTER_INFO>(), 24);
    assert_eq!(size_of::<DMA_TRANSFER_INFO>(), 20);
    let _: (
        PDMA_ADAPTER_INFO,
        PDMA_TRANSFER_INFO,
        DMA_TRANSFER_INFO_V1,
        DMA_TRANSFER_INFO_V2,
    ) = (
        core::ptr::null_mut(),
        core::ptr::null_mut(),
        DMA_TRANSFER_INFO_V1::default(),
        DMA_TRANSFER_INFO_V2::default(),
    );
    let _: (
        PDMA_COMMON_BUFFER_VECTOR,
        PDMA_COMMON_BUFFER_EXTENDED_CONFIGURATION,
    ) = (core::ptr::null_mut(), core::ptr::null_mut());

    // Device and driver objects (partial: see sim-fidelity.md).
    let _: (PDEVICE_OBJECT, PDRIVER_OBJECT) = (core::ptr::null_mut(), core::ptr::null_mut());

    // Callback typedefs and every DMA_OPERATIONS member typedef.
    let _: (
        PDRIVER_CONTROL,
        PDRIVER_LIST_CONTROL,
        PDMA_COMPLETION_ROUTINE,
    ) = (None, None, None);
    let _: (
        PPUT_DMA_ADAPTER,
        PALLOCATE_COMMON_BUFFER,
        PFREE_COMMON_BUFFER,
        PALLOCATE_ADAPTER_CHANNEL,
        PFLUSH_ADAPTER_BUFFERS,
    ) = (None, None, None, None, None);
    let _: (
        PFREE_ADAPTER_CHANNEL,
        PFREE_MAP_REGISTERS,
        PMAP_TRANSFER,
        PGET_DMA_ALIGNMENT,
        PREAD_DMA_COUNTER,
    ) = (None, None, None, None, None);
    let _: (
        PGET_SCATTER_GATHER_LIST,
        PPUT_SCATTER_GATHER_LIST,
        PCALCULATE_SCATTER_GATHER_LIST_SIZE,
        PBUILD_SCATTER_GATHER_LIST,
    ) = (None, None, None, None);
    let _: (
        PBUILD_MDL_FROM_SCATTER_GATHER_LIST,
        PGET_DMA_ADAPTER_INFO,
        PGET_DMA_TRANSFER_INFO,
        PINITIALIZE_DMA_TRANSFER_CONTEXT,
    ) = (None, None, None, None);
    let _: (
        PALLOCATE_COMMON_BUFFER_EX,
        PALLOCATE_ADAPTER_CHANNEL_EX,
        PCONFIGURE_ADAPTER_CHANNEL,
        PCANCEL_ADAPTER_CHANNEL,
    ) = (None, None, None, None);
    let _: (
        PMAP_TRANSFER_EX,
        PGET_SCATTER_GATHER_LIST_EX,
        PBUILD_SCATTER_GATHER_LIST_EX,
        PFLUSH_ADAPTER_BUFFERS_EX,
    ) = (None, None, None, None);
    let _: (
        PFREE_ADAPTER_OBJECT,
        PCANCEL_MAPPED_TRANSFER,
        PALLOCATE_DOMAIN_COMMON_BUFFER,
        PFLUSH_DMA_BUFFER,
    ) = (None, None, None, None);
    let _: (
        PJOIN_DMA_DOMAIN,
        PLEAVE_DMA_DOMAIN,
        PGET_DMA_DOMAIN,
        PALLOCATE_COMMON_BUFFER_WITH_BOUNDS,
    ) = (None, None, None, None);
    let _: (
        PALLOCATE_COMMON_BUFFER_VECTOR,
        PGET_COMMON_BUFFER_FROM_VECTOR_BY_INDEX,
        PFREE_COMMON_BUFFER_FROM_VECTOR,
    ) = (None, None, None);
    let _: (PFREE_COMMON_BUFFER_VECTOR, PCREATE_COMMON_BUFFER_FROM_MDL) = (None, None);
}

#[test]
fn constants_have_header_values() {
    assert_eq!(
        (PASSIVE_LEVEL, APC_LEVEL, DISPATCH_LEVEL, HIGH_LEVEL),
        (0, 1, 2, 15)
    );
    assert_eq!(
        (
            CMCI_LEVEL,
            CLOCK_LEVEL,
            IPI_LEVEL,
            POWER_LEVEL,
            PROFILE_LEVEL,
            LOW_LEVEL
        ),
        (5, 13, 14, 14, 15, 0)
    );
    assert_eq!((PAGE_SIZE, PAGE_SHIFT), (4096, 12));
    assert_eq!(
        (
            POOL_FLAG_NON_PAGED,
            POOL_FLAG_PAGED,
            POOL_FLAG_UNINITIALIZED
        ),
        (0x40, 0x100, 0x2)
    );
    assert_eq!(
        (
            POOL_FLAG_USE_QUOTA,
            POOL_FLAG_SESSION,
            POOL_FLAG_CACHE_ALIGNED,
            POOL_FLAG_RAISE_ON_FAILURE
        ),
        (0x1, 0x4, 0x8, 0x20)
    );
    assert_eq!(
        (POOL_FLAG_NON_PAGED_EXECUTE, POOL_FLAG_SPECIAL_POOL),
        (0x80, 0x1_0000_0000)
    );
    assert_eq!(
        (PAGE_NOACCESS, PAGE_READONLY, PAGE_READWRITE, PAGE_WRITECOPY),
        (1, 2, 4, 8)
    );
    assert_eq!(
        (PAGE_EXECUTE, PAGE_EXECUTE_READ, PAGE_EXECUTE_READWRITE),
        (0x10, 0x20, 0x40)
    );
    assert_eq!(
        (PAGE_GUARD, PAGE_NOCACHE, PAGE_WRITECOMBINE),
        (0x100, 0x200, 0x400)
    );
    assert_eq!(
        (
            MDL_MAPPED_TO_SYSTEM_VA,
            MDL_PAGES_LOCKED,
            MDL_SOURCE_IS_NONPAGED_POOL,
            MDL_ALLOCATED_FIXED_SIZE
        ),
        (1, 2, 4, 8)
    );
    assert_eq!(
        (
            MDL_PARTIAL,
            MDL_PARTIAL_HAS_BEEN_MAPPED,
            MDL_IO_PAGE_READ,
            MDL_WRITE_OPERATION
        ),
        (0x10, 0x20, 0x40, 0x80)
    );
    assert_eq!((MDL_IO_SPACE, MDL_MAPPING_CAN_FAIL), (0x800, 0x2000));
    assert_eq!(
        (LowPagePriority, NormalPagePriority, HighPagePriority),
        (0, 16, 32)
    );
    assert_eq!(
        (MdlMappingNoWrite, MdlMappingNoExecute),
        (0x8000_0000, 0x4000_0000)
    );
    assert_eq!(
        (
            DEVICE_DESCRIPTION_VERSION,
            DEVICE_DESCRIPTION_VERSION1,
            DEVICE_DESCRIPTION_VERSION2,
            DEVICE_DESCRIPTION_VERSION3
        ),
        (0, 1, 2, 3)
    );
    assert_eq!(
        (
            DMA_ADAPTER_INFO_VERSION1,
            DMA_TRANSFER_INFO_VERSION1,
            DMA_TRANSFER_INFO_VERSION2
        ),
        (1, 1, 2)
    );
    assert_eq!(DMA_TRANSFER_CONTEXT_SIZE_V1, 128);
    assert_eq!(
        (
            DMA_SYNCHRONOUS_CALLBACK,
            DMA_ZERO_BUFFERS,
            DMA_FAIL_ON_BOUNCE
        ),
        (1, 2, 4)
    );
    assert_eq!((TRUE, FALSE), (1, 0));
    assert_eq!(
        (
            _INTERFACE_TYPE::InterfaceTypeUndefined,
            _INTERFACE_TYPE::PCIBus,
            _INTERFACE_TYPE::ACPIBus,
            _INTERFACE_TYPE::MaximumInterfaceType
        ),
        (-1, 5, 17, 18)
    );
    assert_eq!(
        (
            _DMA_WIDTH::Width8Bits,
            _DMA_WIDTH::Width32Bits,
            _DMA_WIDTH::Width64Bits,
            _DMA_WIDTH::MaximumDmaWidth
        ),
        (0, 2, 3, 5)
    );
    assert_eq!(
        (
            _DMA_SPEED::Compatible,
            _DMA_SPEED::TypeF,
            _DMA_SPEED::MaximumDmaSpeed
        ),
        (0, 4, 5)
    );
    assert_eq!(
        (
            _MEMORY_CACHING_TYPE::MmNotMapped,
            _MEMORY_CACHING_TYPE::MmNonCached,
            _MEMORY_CACHING_TYPE::MmCached
        ),
        (-1, 0, 1)
    );
    assert_eq!(
        (
            _LOCK_OPERATION::IoReadAccess,
            _LOCK_OPERATION::IoWriteAccess,
            _LOCK_OPERATION::IoModifyAccess
        ),
        (0, 1, 2)
    );
    assert_eq!((_MODE::KernelMode, _MODE::UserMode), (0, 1));
    assert_eq!(
        (
            _IO_ALLOCATION_ACTION::KeepObject,
            _IO_ALLOCATION_ACTION::DeallocateObject,
            _IO_ALLOCATION_ACTION::DeallocateObjectKeepRegisters
        ),
        (1, 2, 3)
    );
    assert_eq!(
        (
            _DMA_COMPLETION_STATUS::DmaComplete,
            _DMA_COMPLETION_STATUS::DmaCancelled
        ),
        (0, 3)
    );
    // NTSTATUS values (ntstatus.h).
    assert_eq!(STATUS_SUCCESS, 0);
    assert_eq!(STATUS_PENDING, 0x103);
    assert_eq!(STATUS_INSUFFICIENT_RESOURCES.cast_unsigned(), 0xC000_009A);
    assert_eq!(STATUS_BUFFER_TOO_SMALL.cast_unsigned(), 0xC000_0023);
    assert_eq!(STATUS_INVALID_PARAMETER.cast_unsigned(), 0xC000_000D);
    assert_eq!(STATUS_NOT_SUPPORTED.cast_unsigned(), 0xC000_00BB);
    assert_eq!(STATUS_CANCELLED.cast_unsigned(), 0xC000_0120);
    assert_eq!(STATUS_DEVICE_REMOVED.cast_unsigned(), 0xC000_02B6);
    assert!(NT_SUCCESS(STATUS_SUCCESS) && !NT_SUCCESS(STATUS_UNSUCCESSFUL));
}

/// The routines, at `wdk_sys::ntddk::` paths, with their C signatures. (wdk-sys declares them
/// `extern "C"`; the simulator's are Rust-ABI `unsafe fn`s with the same parameter and return
/// types — sim-fidelity.md.)
#[test]
fn ntddk_routines_have_the_c_signatures() {
    let _: unsafe fn(PDEVICE_OBJECT, *mut _DEVICE_DESCRIPTION, PULONG) -> *mut _DMA_ADAPTER =
        ntddk::IoGetDmaAdapter;
    let _: unsafe fn(POOL_FLAGS, SIZE_T, ULONG) -> PVOID = ntddk::ExAllocatePool2;
    let _: unsafe fn(PVOID, ULONG) = ntddk::ExFreePoolWithTag;
    let _: unsafe fn(PVOID) = ntddk::ExFreePool;
    let _: unsafe fn(PVOID, ULONG, BOOLEAN, BOOLEAN, PIRP) -> PMDL = ntddk::IoAllocateMdl;
    let _: unsafe fn(PMDL) = ntddk::IoFreeMdl;
    let _: unsafe fn(PMDL, PMDL, PVOID, ULONG) = ntddk::IoBuildPartialMdl;
    let _: unsafe fn(PMDL) = ntddk::MmBuildMdlForNonPagedPool;
    let _: unsafe fn(PMDL, KPROCESSOR_MODE, LOCK_OPERATION) = ntddk::MmProbeAndLockPages;
    let _: unsafe fn(PMDL) = ntddk::MmUnlockPages;
    let _: unsafe fn(PMDL, KPROCESSOR_MODE, MEMORY_CACHING_TYPE, PVOID, ULONG, ULONG) -> PVOID =
        ntddk::MmMapLockedPagesSpecifyCache;
    let _: unsafe fn(PVOID, PMDL) = ntddk::MmUnmapLockedPages;
    let _: unsafe fn(PVOID) -> PHYSICAL_ADDRESS = ntddk::MmGetPhysicalAddress;
    let _: unsafe fn(PHYSICAL_ADDRESS, SIZE_T, ULONG) -> PVOID = ntddk::MmMapIoSpaceEx;
    let _: unsafe fn(PVOID, SIZE_T) = ntddk::MmUnmapIoSpace;
    let _: unsafe fn() -> KIRQL = ntddk::KeGetCurrentIrql;
    let _: unsafe fn(PKSPIN_LOCK) -> KIRQL = ntddk::KeAcquireSpinLockRaiseToDpc;
    let _: unsafe fn(PKSPIN_LOCK, KIRQL) = ntddk::KeReleaseSpinLock;
    let _: unsafe fn(PKSPIN_LOCK) = ntddk::KeAcquireSpinLockAtDpcLevel;
    let _: unsafe fn(PKSPIN_LOCK) = ntddk::KeReleaseSpinLockFromDpcLevel;
    let _: unsafe fn(PMDL, BOOLEAN, BOOLEAN) = ntddk::KeFlushIoBuffers;
    let _: unsafe fn(ULONG) = ntddk::KeStallExecutionProcessor;
    let _: unsafe fn(*mut LARGE_INTEGER) -> LARGE_INTEGER = ntddk::KeQueryPerformanceCounter;
    // Inline in wdm.h on x64 and not generated by wdk-sys: the driver's sys.rs provides these
    // on Windows; the simulator offers them for host code and its own tests.
    let _: unsafe fn(KIRQL, PKIRQL) = ntddk::KeRaiseIrql;
    let _: unsafe fn(KIRQL) = ntddk::KeLowerIrql;
    let _: unsafe fn(PKSPIN_LOCK) = ntddk::KeInitializeSpinLock;
    let _: unsafe fn(PMDL, ULONG) -> PVOID = ntddk::MmGetSystemAddressForMdlSafe;
    let _: unsafe fn(PMDL) -> PVOID = ntddk::mdl_macros::MmGetMdlVirtualAddress;
    let _: unsafe fn(PMDL) -> ULONG = ntddk::mdl_macros::MmGetMdlByteCount;
    let _: unsafe fn(PMDL) -> ULONG = ntddk::mdl_macros::MmGetMdlByteOffset;
}

/// The KMDF structures have the sizes and field offsets of the 1.33 headers on x64 (`wdf*.h`,
/// `wdm.h` with `#pragma pack(4)` for resource descriptors).
#[test]
fn wdf_structures_have_c_layouts() {
    use std::mem::offset_of;
    assert_eq!(size_of::<WDF_DRIVER_CONFIG>(), 32);
    assert_eq!(size_of::<WDF_OBJECT_ATTRIBUTES>(), 0x38);
    assert_eq!(offset_of!(WDF_OBJECT_ATTRIBUTES, ParentObject), 0x20);
    assert_eq!(offset_of!(WDF_OBJECT_ATTRIBUTES, ContextTypeInfo), 0x30);
    assert_eq!(size_of::<WDF_OBJECT_CONTEXT_TYPE_INFO>(), 40);
    assert_eq!(
        size_of::<WDF_PNPPOWER_EVENT_CALLBACKS>(),
        0x90,
        "17 callbacks after Size"
    );
    assert_eq!(
        offset_of!(WDF_PNPPOWER_EVENT_CALLBACKS, EvtDevicePrepareHardware),
        0x28
    );
    assert_eq!(size_of::<WDF_FILEOBJECT_CONFIG>(), 40);
    assert_eq!(size_of::<WDF_IO_QUEUE_CONFIG>(), 0x60);
    assert_eq!(offset_of!(WDF_IO_QUEUE_CONFIG, EvtIoDeviceControl), 0x28);
    assert_eq!(offset_of!(WDF_IO_QUEUE_CONFIG, Driver), 0x58);
    // wdftimer.h: ULONG Size; PFN_WDF_TIMER EvtTimerFunc; ULONG Period; BOOLEAN
    // AutomaticSerialization; ULONG TolerableDelay; BOOLEAN UseHighResolutionTimer.
    assert_eq!(size_of::<WDF_TIMER_CONFIG>(), 0x20);
    assert_eq!(offset_of!(WDF_TIMER_CONFIG, EvtTimerFunc), 0x8);
    assert_eq!(offset_of!(WDF_TIMER_CONFIG, Period), 0x10);
    assert_eq!(offset_of!(WDF_TIMER_CONFIG, AutomaticSerialization), 0x14);
    assert_eq!(offset_of!(WDF_TIMER_CONFIG, TolerableDelay), 0x18);
    assert_eq!(offset_of!(WDF_TIMER_CONFIG, UseHighResolutionTimer), 0x1C);
    assert_eq!(size_of::<WDF_WORKITEM_CONFIG>(), 0x18);
    assert_eq!(offset_of!(WDF_WORKITEM_CONFIG, EvtWorkItemFunc), 0x8);
    assert_eq!(
        offset_of!(WDF_WORKITEM_CONFIG, AutomaticSerialization),
        0x10
    );
    assert_eq!(size_of::<WDF_INTERRUPT_CONFIG>(), 0x68);
    assert_eq!(offset_of!(WDF_INTERRUPT_CONFIG, EvtInterruptIsr), 0x18);
    assert_eq!(offset_of!(WDF_INTERRUPT_CONFIG, InterruptTranslated), 0x48);
    assert_eq!(size_of::<WDF_REQUEST_PARAMETERS>(), 40);
    assert_eq!(offset_of!(WDF_REQUEST_PARAMETERS, Parameters), 8);
    assert_eq!(size_of::<CM_PARTIAL_RESOURCE_DESCRIPTOR>(), 20);
    assert_eq!(offset_of!(CM_PARTIAL_RESOURCE_DESCRIPTOR, u), 4);
    assert_eq!(size_of::<GUID>(), 16);
    assert_eq!(size_of::<UNICODE_STRING>(), 16);
    // Handles are pointers to opaque DECLARE_HANDLE structs; WDFOBJECT is a plain HANDLE.
    assert_eq!(size_of::<WDFDEVICE>(), 8);
    let _: WDFOBJECT = std::ptr::null_mut::<core::ffi::c_void>();
    assert_eq!(_WDF_IO_QUEUE_DISPATCH_TYPE::WdfIoQueueDispatchManual, 3);
    assert_eq!(_WDF_REQUEST_TYPE::WdfRequestTypeDeviceControl, 0xE);
    assert_eq!(_WDF_POWER_DEVICE_STATE::WdfPowerDeviceD3Final, 5);
    assert_eq!((CmResourceTypeMemory, CmResourceTypeInterrupt), (3, 2));
}

/// The WDF methods take the C parameters minus `DriverGlobals`, as
/// `call_unsafe_wdf_function_binding!` passes them.
#[test]
fn wdf_methods_have_the_c_signatures() {
    use wdk_sim::wdf::functions as f;
    let _: unsafe fn(
        PDRIVER_OBJECT,
        PCUNICODE_STRING,
        PWDF_OBJECT_ATTRIBUTES,
        PWDF_DRIVER_CONFIG,
        *mut WDFDRIVER,
    ) -> NTSTATUS = f::WdfDriverCreate;
    let _: unsafe fn(*mut PWDFDEVICE_INIT, PWDF_OBJECT_ATTRIBUTES, *mut WDFDEVICE) -> NTSTATUS =
        f::WdfDeviceCreate;
    let _: unsafe fn(
        WDFDEVICE,
        PWDF_IO_QUEUE_CONFIG,
        PWDF_OBJECT_ATTRIBUTES,
        *mut WDFQUEUE,
    ) -> NTSTATUS = f::WdfIoQueueCreate;
    let _: unsafe fn(
        WDFDEVICE,
        PWDF_INTERRUPT_CONFIG,
        PWDF_OBJECT_ATTRIBUTES,
        *mut WDFINTERRUPT,
    ) -> NTSTATUS = f::WdfInterruptCreate;
    let _: unsafe fn(WDFREQUEST, usize, *mut PVOID, *mut usize) -> NTSTATUS =
        f::WdfRequestRetrieveInputBuffer;
    let _: unsafe fn(WDFREQUEST, NTSTATUS, ULONG_PTR) = f::WdfRequestCompleteWithInformation;
    let _: unsafe fn(PWDF_WORKITEM_CONFIG, PWDF_OBJECT_ATTRIBUTES, *mut WDFWORKITEM) -> NTSTATUS =
        f::WdfWorkItemCreate;
    let _: unsafe fn(WDFWORKITEM) = f::WdfWorkItemEnqueue;
    let _: unsafe fn(WDFWORKITEM) = f::WdfWorkItemFlush;
    let _: unsafe fn(WDFWORKITEM) -> WDFOBJECT = f::WdfWorkItemGetParentObject;
    let _: unsafe fn(PWDF_TIMER_CONFIG, PWDF_OBJECT_ATTRIBUTES, *mut WDFTIMER) -> NTSTATUS =
        f::WdfTimerCreate;
    let _: unsafe fn(WDFTIMER, LONGLONG) -> BOOLEAN = f::WdfTimerStart;
    let _: unsafe fn(WDFTIMER, BOOLEAN) -> BOOLEAN = f::WdfTimerStop;
    let _: unsafe fn(WDFTIMER) -> WDFOBJECT = f::WdfTimerGetParentObject;
    let _: unsafe fn(WDFREQUEST, PFN_WDF_REQUEST_CANCEL) -> NTSTATUS =
        f::WdfRequestMarkCancelableEx;
    let _: unsafe fn(WDFOBJECT, PCWDF_OBJECT_CONTEXT_TYPE_INFO) -> PVOID =
        f::WdfObjectGetTypedContextWorker;
    let _: unsafe fn(WDFCMRESLIST, ULONG) -> PCM_PARTIAL_RESOURCE_DESCRIPTOR =
        f::WdfCmResourceListGetDescriptor;
    let _: unsafe fn(WDFINTERRUPT, PFN_WDF_INTERRUPT_SYNCHRONIZE, WDFCONTEXT) -> BOOLEAN =
        f::WdfInterruptSynchronize;
}
