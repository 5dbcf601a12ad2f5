//! The mirrored `wdk-sys` type surface.
//!
//! C types, structures, enums and function-pointer typedefs the driver uses, spelled as bindgen 0.73 spells them in wdk-sys 0.5.2
//! (`default_enum_style(ModuleConsts)`, `derive_default(true)`, `use_core`).
//!
//! Every item's doc cites the C definition (header and line of the 10.0.22621 `km/wdm.h` copy
//! named in `../shared/reference/windows-drivers-rs.md` §2.2, or `../shared/reference/
//! windows-dma.md` section). Differences from the generated bindings are listed in
//! `docs/sim-fidelity.md`; the test module `mirror` lists every name for a reviewer to diff.

#![expect(
    non_camel_case_types,
    non_snake_case,
    non_upper_case_globals,
    clippy::pub_underscore_fields,
    clippy::use_self,
    reason = "mirrors the C names bindgen emits"
)]

use core::ffi::c_void;
use core::marker::PhantomData;

/// `typedef unsigned char UCHAR;`
pub type UCHAR = u8;
/// `typedef unsigned short USHORT;`
pub type USHORT = u16;
/// `typedef unsigned long ULONG;` (32 bits on Windows).
pub type ULONG = u32;
/// `typedef long LONG;`
pub type LONG = i32;
/// `typedef short CSHORT;` (`ntdef.h`).
pub type CSHORT = i16;
/// `typedef char CCHAR;`
pub type CCHAR = i8;
/// `typedef __int64 LONGLONG;`
pub type LONGLONG = i64;
/// `typedef unsigned __int64 ULONGLONG;`
pub type ULONGLONG = u64;
/// `typedef unsigned __int64 ULONG64;`
pub type ULONG64 = u64;
/// `typedef unsigned __int64 ULONG_PTR;` (x64).
pub type ULONG_PTR = u64;
/// `typedef ULONG_PTR SIZE_T;`
pub type SIZE_T = ULONG_PTR;
/// `typedef UCHAR BOOLEAN;`
pub type BOOLEAN = u8;
/// `typedef void *PVOID;`
pub type PVOID = *mut c_void;
/// `typedef PVOID HANDLE;`
pub type HANDLE = PVOID;
/// `typedef ULONG *PULONG;`
pub type PULONG = *mut ULONG;
/// `typedef ULONG_PTR PFN_NUMBER;` (`wdm.h`: `PFN_NUMBER` is `ULONG_PTR` on x64).
pub type PFN_NUMBER = ULONG_PTR;
/// `typedef PFN_NUMBER *PPFN_NUMBER;`
pub type PPFN_NUMBER = *mut PFN_NUMBER;
/// `typedef ULONG NODE_REQUIREMENT;` (`wdm.h`).
pub type NODE_REQUIREMENT = ULONG;
/// `typedef ULONG64 POOL_FLAGS;` (`wdm.h`, `ExAllocatePool2`).
pub type POOL_FLAGS = ULONG64;
/// `typedef UCHAR KIRQL;` (`wdm.h`).
pub type KIRQL = UCHAR;
/// `typedef KIRQL *PKIRQL;`
pub type PKIRQL = *mut KIRQL;
/// `typedef ULONG_PTR KAFFINITY;`
pub type KAFFINITY = ULONG_PTR;
/// `typedef ULONG_PTR KSPIN_LOCK;` (`wdm.h`).
pub type KSPIN_LOCK = ULONG_PTR;
/// `typedef KSPIN_LOCK *PKSPIN_LOCK;`
pub type PKSPIN_LOCK = *mut KSPIN_LOCK;
/// `typedef CCHAR KPROCESSOR_MODE;`
pub type KPROCESSOR_MODE = CCHAR;
/// `typedef BOOLEAN TRUE` is `1` in `ntdef.h`.
pub const TRUE: BOOLEAN = 1;
/// `FALSE` (`ntdef.h`).
pub const FALSE: BOOLEAN = 0;

/// `PASSIVE_LEVEL` (`wdm.h`, x64).
pub const PASSIVE_LEVEL: KIRQL = 0;
/// `LOW_LEVEL`.
pub const LOW_LEVEL: KIRQL = 0;
/// `APC_LEVEL`.
pub const APC_LEVEL: KIRQL = 1;
/// `DISPATCH_LEVEL`.
pub const DISPATCH_LEVEL: KIRQL = 2;
/// `CMCI_LEVEL` (x64).
pub const CMCI_LEVEL: KIRQL = 5;
/// `CLOCK_LEVEL` (x64).
pub const CLOCK_LEVEL: KIRQL = 13;
/// `IPI_LEVEL` (x64).
pub const IPI_LEVEL: KIRQL = 14;
/// `POWER_LEVEL` (x64).
pub const POWER_LEVEL: KIRQL = 14;
/// `PROFILE_LEVEL` (x64).
pub const PROFILE_LEVEL: KIRQL = 15;
/// `HIGH_LEVEL` (x64).
pub const HIGH_LEVEL: KIRQL = 15;

/// `#define PAGE_SIZE 0x1000` (`wdm.h`, x64).
pub const PAGE_SIZE: u32 = 0x1000;
/// `#define PAGE_SHIFT 12L`.
pub const PAGE_SHIFT: u32 = 12;

/// `PAGE_NOACCESS` (`winnt.h`/`wdm.h` memory protection constants).
pub const PAGE_NOACCESS: ULONG = 0x01;
/// `PAGE_READONLY`.
pub const PAGE_READONLY: ULONG = 0x02;
/// `PAGE_READWRITE`.
pub const PAGE_READWRITE: ULONG = 0x04;
/// `PAGE_WRITECOPY`.
pub const PAGE_WRITECOPY: ULONG = 0x08;
/// `PAGE_EXECUTE`.
pub const PAGE_EXECUTE: ULONG = 0x10;
/// `PAGE_EXECUTE_READ`.
pub const PAGE_EXECUTE_READ: ULONG = 0x20;
/// `PAGE_EXECUTE_READWRITE`.
pub const PAGE_EXECUTE_READWRITE: ULONG = 0x40;
/// `PAGE_GUARD`.
pub const PAGE_GUARD: ULONG = 0x100;
/// `PAGE_NOCACHE`.
pub const PAGE_NOCACHE: ULONG = 0x200;
/// `PAGE_WRITECOMBINE`.
pub const PAGE_WRITECOMBINE: ULONG = 0x400;

/// `POOL_FLAG_USE_QUOTA` (`wdm.h`; wdk-sys writes the `POOL_FLAG_*` values by hand).
pub const POOL_FLAG_USE_QUOTA: POOL_FLAGS = 0x0000_0000_0000_0001;
/// `POOL_FLAG_UNINITIALIZED`: do not zero the allocation.
pub const POOL_FLAG_UNINITIALIZED: POOL_FLAGS = 0x0000_0000_0000_0002;
/// `POOL_FLAG_SESSION`.
pub const POOL_FLAG_SESSION: POOL_FLAGS = 0x0000_0000_0000_0004;
/// `POOL_FLAG_CACHE_ALIGNED`.
pub const POOL_FLAG_CACHE_ALIGNED: POOL_FLAGS = 0x0000_0000_0000_0008;
/// `POOL_FLAG_RAISE_ON_FAILURE`.
pub const POOL_FLAG_RAISE_ON_FAILURE: POOL_FLAGS = 0x0000_0000_0000_0020;
/// `POOL_FLAG_NON_PAGED`: non-paged, no-execute.
pub const POOL_FLAG_NON_PAGED: POOL_FLAGS = 0x0000_0000_0000_0040;
/// `POOL_FLAG_NON_PAGED_EXECUTE`.
pub const POOL_FLAG_NON_PAGED_EXECUTE: POOL_FLAGS = 0x0000_0000_0000_0080;
/// `POOL_FLAG_PAGED`.
pub const POOL_FLAG_PAGED: POOL_FLAGS = 0x0000_0000_0000_0100;
/// `POOL_FLAG_SPECIAL_POOL`.
pub const POOL_FLAG_SPECIAL_POOL: POOL_FLAGS = 0x0000_0001_0000_0000;

/// `MDL_MAPPED_TO_SYSTEM_VA` (`wdm.h`).
pub const MDL_MAPPED_TO_SYSTEM_VA: CSHORT = 0x0001;
/// `MDL_PAGES_LOCKED`.
pub const MDL_PAGES_LOCKED: CSHORT = 0x0002;
/// `MDL_SOURCE_IS_NONPAGED_POOL`.
pub const MDL_SOURCE_IS_NONPAGED_POOL: CSHORT = 0x0004;
/// `MDL_ALLOCATED_FIXED_SIZE`.
pub const MDL_ALLOCATED_FIXED_SIZE: CSHORT = 0x0008;
/// `MDL_PARTIAL`.
pub const MDL_PARTIAL: CSHORT = 0x0010;
/// `MDL_PARTIAL_HAS_BEEN_MAPPED`.
pub const MDL_PARTIAL_HAS_BEEN_MAPPED: CSHORT = 0x0020;
/// `MDL_IO_PAGE_READ`.
pub const MDL_IO_PAGE_READ: CSHORT = 0x0040;
/// `MDL_WRITE_OPERATION`.
pub const MDL_WRITE_OPERATION: CSHORT = 0x0080;
/// `MDL_IO_SPACE`.
pub const MDL_IO_SPACE: CSHORT = 0x0800;
/// `MDL_MAPPING_CAN_FAIL`.
pub const MDL_MAPPING_CAN_FAIL: CSHORT = 0x2000;

/// `enum _MM_PAGE_PRIORITY` values (`wdm.h`): `LowPagePriority`.
pub const LowPagePriority: ULONG = 0;
/// `NormalPagePriority`.
pub const NormalPagePriority: ULONG = 16;
/// `HighPagePriority`.
pub const HighPagePriority: ULONG = 32;
/// `MdlMappingNoWrite` (`wdm.h`, OR-ed into the priority).
pub const MdlMappingNoWrite: ULONG = 0x8000_0000;
/// `MdlMappingNoExecute`.
pub const MdlMappingNoExecute: ULONG = 0x4000_0000;

/// `DEVICE_DESCRIPTION_VERSION` (`wdm.h`; object-like macros land in `constants.rs`).
pub const DEVICE_DESCRIPTION_VERSION: ULONG = 0;
/// `DEVICE_DESCRIPTION_VERSION1`.
pub const DEVICE_DESCRIPTION_VERSION1: ULONG = 1;
/// `DEVICE_DESCRIPTION_VERSION2`.
pub const DEVICE_DESCRIPTION_VERSION2: ULONG = 2;
/// `DEVICE_DESCRIPTION_VERSION3`.
pub const DEVICE_DESCRIPTION_VERSION3: ULONG = 3;
/// `DMA_ADAPTER_INFO_VERSION1`.
pub const DMA_ADAPTER_INFO_VERSION1: ULONG = 1;
/// `DMA_TRANSFER_INFO_VERSION1`.
pub const DMA_TRANSFER_INFO_VERSION1: ULONG = 1;
/// `DMA_TRANSFER_INFO_VERSION2`.
pub const DMA_TRANSFER_INFO_VERSION2: ULONG = 2;
/// `DMA_TRANSFER_CONTEXT_SIZE_V1` (x64).
pub const DMA_TRANSFER_CONTEXT_SIZE_V1: ULONG = 128;
/// `DMA_SYNCHRONOUS_CALLBACK`.
pub const DMA_SYNCHRONOUS_CALLBACK: ULONG = 1;
/// `DMA_ZERO_BUFFERS`.
pub const DMA_ZERO_BUFFERS: ULONG = 2;
/// `DMA_FAIL_ON_BOUNCE`.
pub const DMA_FAIL_ON_BOUNCE: ULONG = 4;

/// `struct { ULONG LowPart; LONG HighPart; }` inside `_LARGE_INTEGER` (`DUMMYSTRUCTNAME`).
#[repr(C)]
#[derive(Debug, Default, Copy, Clone)]
pub struct _LARGE_INTEGER__bindgen_ty_1 {
    /// `ULONG LowPart;`
    pub LowPart: ULONG,
    /// `LONG HighPart;`
    pub HighPart: LONG,
}

/// `struct { ULONG LowPart; LONG HighPart; } u;` inside `_LARGE_INTEGER`.
#[repr(C)]
#[derive(Debug, Default, Copy, Clone)]
pub struct _LARGE_INTEGER__bindgen_ty_2 {
    /// `ULONG LowPart;`
    pub LowPart: ULONG,
    /// `LONG HighPart;`
    pub HighPart: LONG,
}

/// `typedef union _LARGE_INTEGER { struct {…} DUMMYSTRUCTNAME; struct {…} u; LONGLONG QuadPart; }`
/// (`km/miniport.h` l.932 in the 22621 copy).
#[repr(C)]
#[derive(Copy, Clone)]
pub union _LARGE_INTEGER {
    /// The anonymous `DUMMYSTRUCTNAME` member, as bindgen names it.
    pub __bindgen_anon_1: _LARGE_INTEGER__bindgen_ty_1,
    /// `u`.
    pub u: _LARGE_INTEGER__bindgen_ty_2,
    /// `LONGLONG QuadPart;`
    pub QuadPart: LONGLONG,
}

impl Default for _LARGE_INTEGER {
    fn default() -> Self {
        Self { QuadPart: 0 }
    }
}

impl core::fmt::Debug for _LARGE_INTEGER {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // SAFETY: every bit pattern of the union is a valid LONGLONG.
        let q = unsafe { self.QuadPart };
        write!(f, "LARGE_INTEGER({q:#x})")
    }
}

/// `typedef _LARGE_INTEGER LARGE_INTEGER;`
pub type LARGE_INTEGER = _LARGE_INTEGER;
/// `typedef LARGE_INTEGER PHYSICAL_ADDRESS;`
pub type PHYSICAL_ADDRESS = LARGE_INTEGER;
/// `typedef PHYSICAL_ADDRESS *PPHYSICAL_ADDRESS;`
pub type PPHYSICAL_ADDRESS = *mut LARGE_INTEGER;

/// `struct _EPROCESS` — opaque to drivers.
#[repr(C)]
#[derive(Debug, Default, Copy, Clone)]
pub struct _EPROCESS {
    _unused: [u8; 0],
}

/// `struct _IRP` — opaque here: RHCA uses KMDF requests, never IRP fields (see sim-fidelity.md).
#[repr(C)]
#[derive(Debug, Default, Copy, Clone)]
pub struct _IRP {
    _unused: [u8; 0],
}
/// `typedef struct _IRP *PIRP;`
pub type PIRP = *mut _IRP;

/// `typedef struct _MDL {…} MDL;` (`wdm.h`).
///
/// Fields: `struct _MDL *Next; CSHORT Size; CSHORT MdlFlags; struct _EPROCESS *Process;
/// PVOID MappedSystemVa; PVOID StartVa; ULONG ByteCount; ULONG ByteOffset;`. The page-frame
/// array (`PFN_NUMBER[]`) follows the structure in memory.
#[repr(C)]
#[derive(Debug, Copy, Clone)]
pub struct _MDL {
    /// Next MDL of a chain.
    pub Next: *mut _MDL,
    /// Bytes of the MDL including its PFN array.
    pub Size: CSHORT,
    /// `MDL_*` flags.
    pub MdlFlags: CSHORT,
    /// Owning process (user buffers).
    pub Process: *mut _EPROCESS,
    /// System VA when mapped (`MDL_MAPPED_TO_SYSTEM_VA` or `MDL_SOURCE_IS_NONPAGED_POOL`).
    pub MappedSystemVa: PVOID,
    /// Page-aligned virtual address of the first page.
    pub StartVa: PVOID,
    /// Bytes described.
    pub ByteCount: ULONG,
    /// Offset of the buffer in its first page.
    pub ByteOffset: ULONG,
}

impl Default for _MDL {
    fn default() -> Self {
        Self {
            Next: core::ptr::null_mut(),
            Size: 0,
            MdlFlags: 0,
            Process: core::ptr::null_mut(),
            MappedSystemVa: core::ptr::null_mut(),
            StartVa: core::ptr::null_mut(),
            ByteCount: 0,
            ByteOffset: 0,
        }
    }
}

/// `typedef _MDL MDL;`
pub type MDL = _MDL;
/// `typedef MDL *PMDL;`
pub type PMDL = *mut _MDL;

/// `struct _DRIVER_OBJECT` — the fields a KMDF driver never touches are left out (opaque enough;
/// see sim-fidelity.md).
#[repr(C)]
#[derive(Debug)]
pub struct _DRIVER_OBJECT {
    /// `CSHORT Type;` (`IO_TYPE_DRIVER` = 4).
    pub Type: CSHORT,
    /// `CSHORT Size;`
    pub Size: CSHORT,
    /// `PDEVICE_OBJECT DeviceObject;` — first device object created by the driver.
    pub DeviceObject: *mut _DEVICE_OBJECT,
    /// `ULONG Flags;`
    pub Flags: ULONG,
}
/// `typedef _DRIVER_OBJECT DRIVER_OBJECT;`
pub type DRIVER_OBJECT = _DRIVER_OBJECT;
/// `typedef DRIVER_OBJECT *PDRIVER_OBJECT;`
pub type PDRIVER_OBJECT = *mut _DRIVER_OBJECT;

/// `struct _DEVICE_OBJECT` (`wdm.h`) — the leading fields and `AlignmentRequirement`, which
/// drivers read; the rest is private to the I/O manager (see sim-fidelity.md).
#[repr(C)]
#[derive(Debug)]
pub struct _DEVICE_OBJECT {
    /// `CSHORT Type;` (`IO_TYPE_DEVICE` = 3).
    pub Type: CSHORT,
    /// `USHORT Size;`
    pub Size: USHORT,
    /// `LONG ReferenceCount;`
    pub ReferenceCount: LONG,
    /// `struct _DRIVER_OBJECT *DriverObject;`
    pub DriverObject: *mut _DRIVER_OBJECT,
    /// `struct _DEVICE_OBJECT *NextDevice;`
    pub NextDevice: *mut _DEVICE_OBJECT,
    /// `struct _DEVICE_OBJECT *AttachedDevice;`
    pub AttachedDevice: *mut _DEVICE_OBJECT,
    /// `struct _IRP *CurrentIrp;` — passed to `DRIVER_CONTROL`/`DRIVER_LIST_CONTROL`.
    pub CurrentIrp: *mut _IRP,
    /// `ULONG Flags;`
    pub Flags: ULONG,
    /// `ULONG Characteristics;`
    pub Characteristics: ULONG,
    /// `PVOID DeviceExtension;`
    pub DeviceExtension: PVOID,
    /// `DEVICE_TYPE DeviceType;`
    pub DeviceType: ULONG,
    /// `CCHAR StackSize;`
    pub StackSize: CCHAR,
    /// `ULONG AlignmentRequirement;`
    pub AlignmentRequirement: ULONG,
}
/// `typedef _DEVICE_OBJECT DEVICE_OBJECT;`
pub type DEVICE_OBJECT = _DEVICE_OBJECT;
/// `typedef DEVICE_OBJECT *PDEVICE_OBJECT;`
pub type PDEVICE_OBJECT = *mut _DEVICE_OBJECT;

/// `typedef enum _INTERFACE_TYPE {…} INTERFACE_TYPE;` (`wdm.h`), bindgen module-const style.
pub mod _INTERFACE_TYPE {
    /// The C enum's representation.
    pub type Type = core::ffi::c_int;
    /// `InterfaceTypeUndefined = -1`.
    pub const InterfaceTypeUndefined: Type = -1;
    /// `Internal`.
    pub const Internal: Type = 0;
    /// `Isa`.
    pub const Isa: Type = 1;
    /// `Eisa`.
    pub const Eisa: Type = 2;
    /// `MicroChannel`.
    pub const MicroChannel: Type = 3;
    /// `TurboChannel`.
    pub const TurboChannel: Type = 4;
    /// `PCIBus`.
    pub const PCIBus: Type = 5;
    /// `VMEBus`.
    pub const VMEBus: Type = 6;
    /// `NuBus`.
    pub const NuBus: Type = 7;
    /// `PCMCIABus`.
    pub const PCMCIABus: Type = 8;
    /// `CBus`.
    pub const CBus: Type = 9;
    /// `MPIBus`.
    pub const MPIBus: Type = 10;
    /// `MPSABus`.
    pub const MPSABus: Type = 11;
    /// `ProcessorInternal`.
    pub const ProcessorInternal: Type = 12;
    /// `InternalPowerBus`.
    pub const InternalPowerBus: Type = 13;
    /// `PNPISABus`.
    pub const PNPISABus: Type = 14;
    /// `PNPBus`.
    pub const PNPBus: Type = 15;
    /// `Vmcs`.
    pub const Vmcs: Type = 16;
    /// `ACPIBus`.
    pub const ACPIBus: Type = 17;
    /// `MaximumInterfaceType`.
    pub const MaximumInterfaceType: Type = 18;
}
/// `INTERFACE_TYPE`.
pub type INTERFACE_TYPE = _INTERFACE_TYPE::Type;

/// `typedef enum _DMA_WIDTH {…} DMA_WIDTH;` (`wdm.h`).
pub mod _DMA_WIDTH {
    /// The C enum's representation.
    pub type Type = core::ffi::c_int;
    /// `Width8Bits`.
    pub const Width8Bits: Type = 0;
    /// `Width16Bits`.
    pub const Width16Bits: Type = 1;
    /// `Width32Bits`.
    pub const Width32Bits: Type = 2;
    /// `Width64Bits`.
    pub const Width64Bits: Type = 3;
    /// `WidthNoWrap`.
    pub const WidthNoWrap: Type = 4;
    /// `MaximumDmaWidth`.
    pub const MaximumDmaWidth: Type = 5;
}
/// `DMA_WIDTH`.
pub type DMA_WIDTH = _DMA_WIDTH::Type;

/// `typedef enum _DMA_SPEED {…} DMA_SPEED;` (`wdm.h`).
pub mod _DMA_SPEED {
    /// The C enum's representation.
    pub type Type = core::ffi::c_int;
    /// `Compatible`.
    pub const Compatible: Type = 0;
    /// `TypeA`.
    pub const TypeA: Type = 1;
    /// `TypeB`.
    pub const TypeB: Type = 2;
    /// `TypeC`.
    pub const TypeC: Type = 3;
    /// `TypeF`.
    pub const TypeF: Type = 4;
    /// `MaximumDmaSpeed`.
    pub const MaximumDmaSpeed: Type = 5;
}
/// `DMA_SPEED`.
pub type DMA_SPEED = _DMA_SPEED::Type;

/// `typedef enum _MEMORY_CACHING_TYPE {…} MEMORY_CACHING_TYPE;` (`wdm.h`).
pub mod _MEMORY_CACHING_TYPE {
    /// The C enum's representation.
    pub type Type = core::ffi::c_int;
    /// `MmNotMapped = -1`.
    pub const MmNotMapped: Type = -1;
    /// `MmNonCached`.
    pub const MmNonCached: Type = 0;
    /// `MmCached`.
    pub const MmCached: Type = 1;
    /// `MmWriteCombined`.
    pub const MmWriteCombined: Type = 2;
    /// `MmHardwareCoherentCached`.
    pub const MmHardwareCoherentCached: Type = 3;
    /// `MmNonCachedUnordered`.
    pub const MmNonCachedUnordered: Type = 4;
    /// `MmUSWCCached`.
    pub const MmUSWCCached: Type = 5;
    /// `MmMaximumCacheType`.
    pub const MmMaximumCacheType: Type = 6;
}
/// `MEMORY_CACHING_TYPE`.
pub type MEMORY_CACHING_TYPE = _MEMORY_CACHING_TYPE::Type;

/// `typedef enum _LOCK_OPERATION {…} LOCK_OPERATION;` (`wdm.h`).
pub mod _LOCK_OPERATION {
    /// The C enum's representation.
    pub type Type = core::ffi::c_int;
    /// `IoReadAccess`.
    pub const IoReadAccess: Type = 0;
    /// `IoWriteAccess`.
    pub const IoWriteAccess: Type = 1;
    /// `IoModifyAccess`.
    pub const IoModifyAccess: Type = 2;
}
/// `LOCK_OPERATION`.
pub type LOCK_OPERATION = _LOCK_OPERATION::Type;

/// `typedef enum _MODE { KernelMode, UserMode, MaximumMode } MODE;` (`wdm.h`).
pub mod _MODE {
    /// The C enum's representation.
    pub type Type = core::ffi::c_int;
    /// `KernelMode`.
    pub const KernelMode: Type = 0;
    /// `UserMode`.
    pub const UserMode: Type = 1;
    /// `MaximumMode`.
    pub const MaximumMode: Type = 2;
}

/// `typedef enum _IO_ALLOCATION_ACTION { KeepObject = 1, DeallocateObject,
/// DeallocateObjectKeepRegisters } IO_ALLOCATION_ACTION;` (`wdm.h`; windows-dma.md §2.2).
pub mod _IO_ALLOCATION_ACTION {
    /// The C enum's representation.
    pub type Type = core::ffi::c_int;
    /// `KeepObject`.
    pub const KeepObject: Type = 1;
    /// `DeallocateObject`.
    pub const DeallocateObject: Type = 2;
    /// `DeallocateObjectKeepRegisters`.
    pub const DeallocateObjectKeepRegisters: Type = 3;
}
/// `IO_ALLOCATION_ACTION`.
pub type IO_ALLOCATION_ACTION = _IO_ALLOCATION_ACTION::Type;

/// `typedef enum _DMA_COMPLETION_STATUS { DmaComplete, DmaAborted, DmaError, DmaCancelled }`.
pub mod _DMA_COMPLETION_STATUS {
    /// The C enum's representation.
    pub type Type = core::ffi::c_int;
    /// `DmaComplete`.
    pub const DmaComplete: Type = 0;
    /// `DmaAborted`.
    pub const DmaAborted: Type = 1;
    /// `DmaError`.
    pub const DmaError: Type = 2;
    /// `DmaCancelled`.
    pub const DmaCancelled: Type = 3;
}
/// `DMA_COMPLETION_STATUS`.
pub type DMA_COMPLETION_STATUS = _DMA_COMPLETION_STATUS::Type;

/// `typedef struct _DEVICE_DESCRIPTION {…}` with the Windows 8 (version 3) fields
/// (`wdm.h` l.37844; windows-dma.md §1.2).
#[repr(C)]
#[derive(Debug, Default, Copy, Clone)]
pub struct _DEVICE_DESCRIPTION {
    /// `ULONG Version;` (`DEVICE_DESCRIPTION_VERSION*`).
    pub Version: ULONG,
    /// `BOOLEAN Master;`
    pub Master: BOOLEAN,
    /// `BOOLEAN ScatterGather;`
    pub ScatterGather: BOOLEAN,
    /// `BOOLEAN DemandMode;`
    pub DemandMode: BOOLEAN,
    /// `BOOLEAN AutoInitialize;`
    pub AutoInitialize: BOOLEAN,
    /// `BOOLEAN Dma32BitAddresses;`
    pub Dma32BitAddresses: BOOLEAN,
    /// `BOOLEAN IgnoreCount;`
    pub IgnoreCount: BOOLEAN,
    /// `BOOLEAN Reserved1;` (must be FALSE).
    pub Reserved1: BOOLEAN,
    /// `BOOLEAN Dma64BitAddresses;`
    pub Dma64BitAddresses: BOOLEAN,
    /// `ULONG BusNumber;`
    pub BusNumber: ULONG,
    /// `ULONG DmaChannel;`
    pub DmaChannel: ULONG,
    /// `INTERFACE_TYPE InterfaceType;`
    pub InterfaceType: INTERFACE_TYPE,
    /// `DMA_WIDTH DmaWidth;`
    pub DmaWidth: DMA_WIDTH,
    /// `DMA_SPEED DmaSpeed;`
    pub DmaSpeed: DMA_SPEED,
    /// `ULONG MaximumLength;`
    pub MaximumLength: ULONG,
    /// `ULONG DmaPort;`
    pub DmaPort: ULONG,
    /// `ULONG DmaAddressWidth;` (version 3).
    pub DmaAddressWidth: ULONG,
    /// `ULONG DmaControllerInstance;` (version 3, unused).
    pub DmaControllerInstance: ULONG,
    /// `ULONG DmaRequestLine;` (version 3, subordinate only).
    pub DmaRequestLine: ULONG,
    /// `PHYSICAL_ADDRESS DeviceAddress;` (version 3, subordinate only).
    pub DeviceAddress: PHYSICAL_ADDRESS,
}
/// `DEVICE_DESCRIPTION`.
pub type DEVICE_DESCRIPTION = _DEVICE_DESCRIPTION;
/// `PDEVICE_DESCRIPTION`.
pub type PDEVICE_DESCRIPTION = *mut _DEVICE_DESCRIPTION;

/// `typedef struct _DMA_ADAPTER { USHORT Version; USHORT Size; PDMA_OPERATIONS DmaOperations; }`
/// (`wdm.h` l.38067).
#[repr(C)]
#[derive(Debug)]
pub struct _DMA_ADAPTER {
    /// `USHORT Version;` — always 1 (windows-dma.md §1.1).
    pub Version: USHORT,
    /// `USHORT Size;`
    pub Size: USHORT,
    /// `struct _DMA_OPERATIONS *DmaOperations;`
    pub DmaOperations: *mut _DMA_OPERATIONS,
}
/// `DMA_ADAPTER`.
pub type DMA_ADAPTER = _DMA_ADAPTER;
/// `PDMA_ADAPTER`.
pub type PDMA_ADAPTER = *mut _DMA_ADAPTER;
/// `typedef struct _DMA_ADAPTER *PADAPTER_OBJECT;` (`wdm.h` l.30651).
pub type PADAPTER_OBJECT = *mut _DMA_ADAPTER;

/// bindgen's representation of a C flexible array member (`T Elements[];`).
#[repr(C)]
#[derive(Default)]
pub struct __IncompleteArrayField<T>(PhantomData<T>, [T; 0]);

impl<T> __IncompleteArrayField<T> {
    /// A zero-length field.
    #[must_use]
    pub const fn new() -> Self {
        Self(PhantomData, [])
    }
    /// Pointer to the first element.
    #[must_use]
    pub const fn as_ptr(&self) -> *const T {
        core::ptr::from_ref(self).cast::<T>()
    }
    /// Mutable pointer to the first element.
    pub const fn as_mut_ptr(&mut self) -> *mut T {
        core::ptr::from_mut(self).cast::<T>()
    }
    /// The first `len` elements.
    ///
    /// # Safety
    /// `len` elements must follow the structure in the same allocation.
    #[must_use]
    pub const unsafe fn as_slice(&self, len: usize) -> &[T] {
        // SAFETY: the caller guarantees `len` initialised elements follow.
        unsafe { core::slice::from_raw_parts(self.as_ptr(), len) }
    }
    /// The first `len` elements, mutably.
    ///
    /// # Safety
    /// As [`Self::as_slice`], and no other reference to them may exist.
    pub const unsafe fn as_mut_slice(&mut self, len: usize) -> &mut [T] {
        // SAFETY: the caller guarantees `len` initialised, unaliased elements follow.
        unsafe { core::slice::from_raw_parts_mut(self.as_mut_ptr(), len) }
    }
}

impl<T> core::fmt::Debug for __IncompleteArrayField<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("__IncompleteArrayField")
    }
}

/// `typedef struct _SCATTER_GATHER_ELEMENT { PHYSICAL_ADDRESS Address; ULONG Length; ULONG_PTR
/// Reserved; }` (`wdm.h` l.38031).
#[repr(C)]
#[derive(Debug, Default, Copy, Clone)]
pub struct _SCATTER_GATHER_ELEMENT {
    /// Logical (device) address.
    pub Address: PHYSICAL_ADDRESS,
    /// Bytes.
    pub Length: ULONG,
    /// Reserved.
    pub Reserved: ULONG_PTR,
}
/// `SCATTER_GATHER_ELEMENT`.
pub type SCATTER_GATHER_ELEMENT = _SCATTER_GATHER_ELEMENT;
/// `PSCATTER_GATHER_ELEMENT`.
pub type PSCATTER_GATHER_ELEMENT = *mut _SCATTER_GATHER_ELEMENT;

/// `typedef struct _SCATTER_GATHER_LIST { ULONG NumberOfElements; ULONG_PTR Reserved;
/// SCATTER_GATHER_ELEMENT Elements[]; }` (`wdm.h` l.38037, `_MSC_EXTENSIONS` form).
#[repr(C)]
#[derive(Debug, Default)]
pub struct _SCATTER_GATHER_LIST {
    /// Elements that follow.
    pub NumberOfElements: ULONG,
    /// Reserved for the HAL (the simulator keeps its mapping id here; drivers must not touch it).
    pub Reserved: ULONG_PTR,
    /// The elements.
    pub Elements: __IncompleteArrayField<_SCATTER_GATHER_ELEMENT>,
}
/// `SCATTER_GATHER_LIST`.
pub type SCATTER_GATHER_LIST = _SCATTER_GATHER_LIST;
/// `PSCATTER_GATHER_LIST`.
pub type PSCATTER_GATHER_LIST = *mut _SCATTER_GATHER_LIST;

/// `typedef struct _DMA_ADAPTER_INFO_V1 { ULONG ReadDmaCounterAvailable; ULONG ScatterGatherLimit;
/// ULONG DmaAddressWidth; ULONG Flags; ULONG MinimumTransferUnit; }` (windows-dma.md §2.3).
#[repr(C)]
#[derive(Debug, Default, Copy, Clone)]
pub struct _DMA_ADAPTER_INFO_V1 {
    /// `ReadDmaCounterAvailable`.
    pub ReadDmaCounterAvailable: ULONG,
    /// `ScatterGatherLimit`.
    pub ScatterGatherLimit: ULONG,
    /// `DmaAddressWidth`.
    pub DmaAddressWidth: ULONG,
    /// `Flags`.
    pub Flags: ULONG,
    /// `MinimumTransferUnit`.
    pub MinimumTransferUnit: ULONG,
}
/// `DMA_ADAPTER_INFO_V1`.
pub type DMA_ADAPTER_INFO_V1 = _DMA_ADAPTER_INFO_V1;

/// The anonymous union of `_DMA_ADAPTER_INFO` (`V1`; the crash-dump variant is not mirrored).
#[repr(C)]
#[derive(Copy, Clone)]
pub union _DMA_ADAPTER_INFO__bindgen_ty_1 {
    /// `DMA_ADAPTER_INFO_V1 V1;`
    pub V1: DMA_ADAPTER_INFO_V1,
}

impl Default for _DMA_ADAPTER_INFO__bindgen_ty_1 {
    fn default() -> Self {
        Self {
            V1: DMA_ADAPTER_INFO_V1::default(),
        }
    }
}

/// `typedef struct _DMA_ADAPTER_INFO { ULONG Version; union { DMA_ADAPTER_INFO_V1 V1; … }; }`.
#[repr(C)]
#[derive(Default, Copy, Clone)]
pub struct _DMA_ADAPTER_INFO {
    /// `DMA_ADAPTER_INFO_VERSION1`.
    pub Version: ULONG,
    /// The anonymous union.
    pub __bindgen_anon_1: _DMA_ADAPTER_INFO__bindgen_ty_1,
}
/// `DMA_ADAPTER_INFO`.
pub type DMA_ADAPTER_INFO = _DMA_ADAPTER_INFO;
/// `PDMA_ADAPTER_INFO`.
pub type PDMA_ADAPTER_INFO = *mut _DMA_ADAPTER_INFO;

/// `DMA_TRANSFER_INFO_V1 { ULONG MapRegisterCount; ULONG ScatterGatherElementCount; ULONG
/// ScatterGatherListSize; }`.
#[repr(C)]
#[derive(Debug, Default, Copy, Clone)]
pub struct _DMA_TRANSFER_INFO_V1 {
    /// `MapRegisterCount`.
    pub MapRegisterCount: ULONG,
    /// `ScatterGatherElementCount`.
    pub ScatterGatherElementCount: ULONG,
    /// `ScatterGatherListSize`.
    pub ScatterGatherListSize: ULONG,
}
/// `DMA_TRANSFER_INFO_V1`.
pub type DMA_TRANSFER_INFO_V1 = _DMA_TRANSFER_INFO_V1;

/// `DMA_TRANSFER_INFO_V2`: V1 plus `LogicalPageCount`.
#[repr(C)]
#[derive(Debug, Default, Copy, Clone)]
pub struct _DMA_TRANSFER_INFO_V2 {
    /// `MapRegisterCount`.
    pub MapRegisterCount: ULONG,
    /// `ScatterGatherElementCount`.
    pub ScatterGatherElementCount: ULONG,
    /// `ScatterGatherListSize`.
    pub ScatterGatherListSize: ULONG,
    /// `LogicalPageCount`.
    pub LogicalPageCount: ULONG,
}
/// `DMA_TRANSFER_INFO_V2`.
pub type DMA_TRANSFER_INFO_V2 = _DMA_TRANSFER_INFO_V2;

/// The anonymous union of `_DMA_TRANSFER_INFO`.
#[repr(C)]
#[derive(Copy, Clone)]
pub union _DMA_TRANSFER_INFO__bindgen_ty_1 {
    /// `V1`.
    pub V1: DMA_TRANSFER_INFO_V1,
    /// `V2`.
    pub V2: DMA_TRANSFER_INFO_V2,
}

impl Default for _DMA_TRANSFER_INFO__bindgen_ty_1 {
    fn default() -> Self {
        Self {
            V2: DMA_TRANSFER_INFO_V2::default(),
        }
    }
}

/// `typedef struct _DMA_TRANSFER_INFO { ULONG Version; union { V1; V2; }; }`.
#[repr(C)]
#[derive(Default, Copy, Clone)]
pub struct _DMA_TRANSFER_INFO {
    /// `DMA_TRANSFER_INFO_VERSION1` or `2`.
    pub Version: ULONG,
    /// The anonymous union.
    pub __bindgen_anon_1: _DMA_TRANSFER_INFO__bindgen_ty_1,
}
/// `DMA_TRANSFER_INFO`.
pub type DMA_TRANSFER_INFO = _DMA_TRANSFER_INFO;
/// `PDMA_TRANSFER_INFO`.
pub type PDMA_TRANSFER_INFO = *mut _DMA_TRANSFER_INFO;

/// `struct _DMA_COMMON_BUFFER_VECTOR` — opaque (`wdm.h`).
#[repr(C)]
#[derive(Debug, Default, Copy, Clone)]
pub struct _DMA_COMMON_BUFFER_VECTOR {
    _unused: [u8; 0],
}
/// `PDMA_COMMON_BUFFER_VECTOR`.
pub type PDMA_COMMON_BUFFER_VECTOR = *mut _DMA_COMMON_BUFFER_VECTOR;

/// `DMA_COMMON_BUFFER_EXTENDED_CONFIGURATION` — mirrored by size only here (`ULONG Type` plus a
/// 16-byte union); `CreateCommonBufferFromMdl` accepts no extended configuration (sim-fidelity.md).
#[repr(C)]
#[derive(Debug, Default, Copy, Clone)]
pub struct _DMA_COMMON_BUFFER_EXTENDED_CONFIGURATION {
    /// `DMA_COMMON_BUFFER_EXTENDED_CONFIGURATION_TYPE ConfigType;`
    pub ConfigType: core::ffi::c_int,
    /// The configuration union (`LogicalAddressLimits`, `SubSection`, …).
    pub __bindgen_anon_1: [u64; 2],
}
/// `PDMA_COMMON_BUFFER_EXTENDED_CONFIGURATION`.
pub type PDMA_COMMON_BUFFER_EXTENDED_CONFIGURATION = *mut _DMA_COMMON_BUFFER_EXTENDED_CONFIGURATION;

/// `DRIVER_CONTROL`: `IO_ALLOCATION_ACTION (PDEVICE_OBJECT, PIRP, PVOID MapRegisterBase, PVOID
/// Context)` (`wdm.h`; windows-dma.md §2.2).
pub type PDRIVER_CONTROL = Option<
    unsafe extern "C" fn(
        DeviceObject: *mut _DEVICE_OBJECT,
        Irp: *mut _IRP,
        MapRegisterBase: PVOID,
        Context: PVOID,
    ) -> IO_ALLOCATION_ACTION,
>;
/// `DRIVER_LIST_CONTROL`: `VOID (PDEVICE_OBJECT, PIRP, PSCATTER_GATHER_LIST, PVOID Context)`.
pub type PDRIVER_LIST_CONTROL = Option<
    unsafe extern "C" fn(
        DeviceObject: *mut _DEVICE_OBJECT,
        Irp: *mut _IRP,
        ScatterGather: *mut _SCATTER_GATHER_LIST,
        Context: PVOID,
    ),
>;
/// `DMA_COMPLETION_ROUTINE`: `VOID (PDMA_ADAPTER, PDEVICE_OBJECT, PVOID, DMA_COMPLETION_STATUS)`.
pub type PDMA_COMPLETION_ROUTINE = Option<
    unsafe extern "C" fn(
        DmaAdapter: PDMA_ADAPTER,
        DeviceObject: PDEVICE_OBJECT,
        CompletionContext: PVOID,
        Status: DMA_COMPLETION_STATUS,
    ),
>;

/// Declares the `P*` function-pointer typedefs of the `DMA_OPERATIONS` members.
macro_rules! dma_fn_types {
    ($( $(#[$m:meta])* $name:ident = fn($($arg:ident : $ty:ty),*) $(-> $ret:ty)?; )*) => {$(
        $(#[$m])*
        pub type $name = Option<unsafe extern "C" fn($($arg: $ty),*) $(-> $ret)?>;
    )*};
}

dma_fn_types! {
    /// `VOID PutDmaAdapter(PDMA_ADAPTER)`.
    PPUT_DMA_ADAPTER = fn(DmaAdapter: PDMA_ADAPTER);
    /// `PVOID AllocateCommonBuffer(PDMA_ADAPTER, ULONG, PPHYSICAL_ADDRESS, BOOLEAN)`.
    PALLOCATE_COMMON_BUFFER = fn(DmaAdapter: PDMA_ADAPTER, Length: ULONG, LogicalAddress: PPHYSICAL_ADDRESS, CacheEnabled: BOOLEAN) -> PVOID;
    /// `VOID FreeCommonBuffer(PDMA_ADAPTER, ULONG, PHYSICAL_ADDRESS, PVOID, BOOLEAN)`.
    PFREE_COMMON_BUFFER = fn(DmaAdapter: PDMA_ADAPTER, Length: ULONG, LogicalAddress: PHYSICAL_ADDRESS, VirtualAddress: PVOID, CacheEnabled: BOOLEAN);
    /// `NTSTATUS AllocateAdapterChannel(PDMA_ADAPTER, PDEVICE_OBJECT, ULONG, PDRIVER_CONTROL, PVOID)`.
    PALLOCATE_ADAPTER_CHANNEL = fn(DmaAdapter: PDMA_ADAPTER, DeviceObject: PDEVICE_OBJECT, NumberOfMapRegisters: ULONG, ExecutionRoutine: PDRIVER_CONTROL, Context: PVOID) -> crate::NTSTATUS;
    /// `BOOLEAN FlushAdapterBuffers(PDMA_ADAPTER, PMDL, PVOID, PVOID, ULONG, BOOLEAN)`.
    PFLUSH_ADAPTER_BUFFERS = fn(DmaAdapter: PDMA_ADAPTER, Mdl: PMDL, MapRegisterBase: PVOID, CurrentVa: PVOID, Length: ULONG, WriteToDevice: BOOLEAN) -> BOOLEAN;
    /// `VOID FreeAdapterChannel(PDMA_ADAPTER)`.
    PFREE_ADAPTER_CHANNEL = fn(DmaAdapter: PDMA_ADAPTER);
    /// `VOID FreeMapRegisters(PDMA_ADAPTER, PVOID, ULONG)`.
    PFREE_MAP_REGISTERS = fn(DmaAdapter: PDMA_ADAPTER, MapRegisterBase: PVOID, NumberOfMapRegisters: ULONG);
    /// `PHYSICAL_ADDRESS MapTransfer(PDMA_ADAPTER, PMDL, PVOID, PVOID, PULONG, BOOLEAN)`.
    PMAP_TRANSFER = fn(DmaAdapter: PDMA_ADAPTER, Mdl: PMDL, MapRegisterBase: PVOID, CurrentVa: PVOID, Length: PULONG, WriteToDevice: BOOLEAN) -> PHYSICAL_ADDRESS;
    /// `ULONG GetDmaAlignment(PDMA_ADAPTER)`.
    PGET_DMA_ALIGNMENT = fn(DmaAdapter: PDMA_ADAPTER) -> ULONG;
    /// `ULONG ReadDmaCounter(PDMA_ADAPTER)`.
    PREAD_DMA_COUNTER = fn(DmaAdapter: PDMA_ADAPTER) -> ULONG;
    /// `NTSTATUS GetScatterGatherList(PDMA_ADAPTER, PDEVICE_OBJECT, PMDL, PVOID, ULONG,
    /// PDRIVER_LIST_CONTROL, PVOID, BOOLEAN)`.
    PGET_SCATTER_GATHER_LIST = fn(DmaAdapter: PDMA_ADAPTER, DeviceObject: PDEVICE_OBJECT, Mdl: PMDL, CurrentVa: PVOID, Length: ULONG, ExecutionRoutine: PDRIVER_LIST_CONTROL, Context: PVOID, WriteToDevice: BOOLEAN) -> crate::NTSTATUS;
    /// `VOID PutScatterGatherList(PDMA_ADAPTER, PSCATTER_GATHER_LIST, BOOLEAN)`.
    PPUT_SCATTER_GATHER_LIST = fn(DmaAdapter: PDMA_ADAPTER, ScatterGather: PSCATTER_GATHER_LIST, WriteToDevice: BOOLEAN);
    /// `NTSTATUS CalculateScatterGatherList(PDMA_ADAPTER, PMDL, PVOID, ULONG, PULONG, PULONG)`.
    PCALCULATE_SCATTER_GATHER_LIST_SIZE = fn(DmaAdapter: PDMA_ADAPTER, Mdl: PMDL, CurrentVa: PVOID, Length: ULONG, ScatterGatherListSize: PULONG, pNumberOfMapRegisters: PULONG) -> crate::NTSTATUS;
    /// `NTSTATUS BuildScatterGatherList(PDMA_ADAPTER, PDEVICE_OBJECT, PMDL, PVOID, ULONG,
    /// PDRIVER_LIST_CONTROL, PVOID, BOOLEAN, PVOID, ULONG)`.
    PBUILD_SCATTER_GATHER_LIST = fn(DmaAdapter: PDMA_ADAPTER, DeviceObject: PDEVICE_OBJECT, Mdl: PMDL, CurrentVa: PVOID, Length: ULONG, ExecutionRoutine: PDRIVER_LIST_CONTROL, Context: PVOID, WriteToDevice: BOOLEAN, ScatterGatherBuffer: PVOID, ScatterGatherLength: ULONG) -> crate::NTSTATUS;
    /// `NTSTATUS BuildMdlFromScatterGatherList(PDMA_ADAPTER, PSCATTER_GATHER_LIST, PMDL, PMDL*)`.
    PBUILD_MDL_FROM_SCATTER_GATHER_LIST = fn(DmaAdapter: PDMA_ADAPTER, ScatterGather: PSCATTER_GATHER_LIST, OriginalMdl: PMDL, TargetMdl: *mut PMDL) -> crate::NTSTATUS;
    /// `NTSTATUS GetDmaAdapterInfo(PDMA_ADAPTER, PDMA_ADAPTER_INFO)`.
    PGET_DMA_ADAPTER_INFO = fn(DmaAdapter: PDMA_ADAPTER, AdapterInfo: PDMA_ADAPTER_INFO) -> crate::NTSTATUS;
    /// `NTSTATUS GetDmaTransferInfo(PDMA_ADAPTER, PMDL, ULONGLONG, ULONG, BOOLEAN, PDMA_TRANSFER_INFO)`.
    PGET_DMA_TRANSFER_INFO = fn(DmaAdapter: PDMA_ADAPTER, Mdl: PMDL, Offset: ULONGLONG, Length: ULONG, WriteOnly: BOOLEAN, TransferInfo: PDMA_TRANSFER_INFO) -> crate::NTSTATUS;
    /// `NTSTATUS InitializeDmaTransferContext(PDMA_ADAPTER, PVOID)`.
    PINITIALIZE_DMA_TRANSFER_CONTEXT = fn(DmaAdapter: PDMA_ADAPTER, DmaTransferContext: PVOID) -> crate::NTSTATUS;
    /// `PVOID AllocateCommonBufferEx(PDMA_ADAPTER, PPHYSICAL_ADDRESS, ULONG, PPHYSICAL_ADDRESS,
    /// BOOLEAN, NODE_REQUIREMENT)`.
    PALLOCATE_COMMON_BUFFER_EX = fn(DmaAdapter: PDMA_ADAPTER, MaximumAddress: PPHYSICAL_ADDRESS, Length: ULONG, LogicalAddress: PPHYSICAL_ADDRESS, CacheEnabled: BOOLEAN, PreferredNode: NODE_REQUIREMENT) -> PVOID;
    /// `NTSTATUS AllocateAdapterChannelEx(PDMA_ADAPTER, PDEVICE_OBJECT, PVOID, ULONG, ULONG,
    /// PDRIVER_CONTROL, PVOID, PVOID*)`.
    PALLOCATE_ADAPTER_CHANNEL_EX = fn(DmaAdapter: PDMA_ADAPTER, DeviceObject: PDEVICE_OBJECT, DmaTransferContext: PVOID, NumberOfMapRegisters: ULONG, Flags: ULONG, ExecutionRoutine: PDRIVER_CONTROL, ExecutionContext: PVOID, MapRegisterBase: *mut PVOID) -> crate::NTSTATUS;
    /// `NTSTATUS ConfigureAdapterChannel(PDMA_ADAPTER, ULONG, PVOID)`.
    PCONFIGURE_ADAPTER_CHANNEL = fn(DmaAdapter: PDMA_ADAPTER, FunctionNumber: ULONG, Context: PVOID) -> crate::NTSTATUS;
    /// `BOOLEAN CancelAdapterChannel(PDMA_ADAPTER, PDEVICE_OBJECT, PVOID)`.
    PCANCEL_ADAPTER_CHANNEL = fn(DmaAdapter: PDMA_ADAPTER, DeviceObject: PDEVICE_OBJECT, DmaTransferContext: PVOID) -> BOOLEAN;
    /// `NTSTATUS MapTransferEx(PDMA_ADAPTER, PMDL, PVOID, ULONGLONG, ULONG, PULONG, BOOLEAN,
    /// PSCATTER_GATHER_LIST, ULONG, PDMA_COMPLETION_ROUTINE, PVOID)`.
    PMAP_TRANSFER_EX = fn(DmaAdapter: PDMA_ADAPTER, Mdl: PMDL, MapRegisterBase: PVOID, Offset: ULONGLONG, DeviceOffset: ULONG, Length: PULONG, WriteToDevice: BOOLEAN, ScatterGatherBuffer: PSCATTER_GATHER_LIST, ScatterGatherBufferLength: ULONG, DmaCompletionRoutine: PDMA_COMPLETION_ROUTINE, CompletionContext: PVOID) -> crate::NTSTATUS;
    /// `NTSTATUS GetScatterGatherListEx(PDMA_ADAPTER, PDEVICE_OBJECT, PVOID, PMDL, ULONGLONG, ULONG,
    /// ULONG, PDRIVER_LIST_CONTROL, PVOID, BOOLEAN, PDMA_COMPLETION_ROUTINE, PVOID,
    /// PSCATTER_GATHER_LIST*)`.
    PGET_SCATTER_GATHER_LIST_EX = fn(DmaAdapter: PDMA_ADAPTER, DeviceObject: PDEVICE_OBJECT, DmaTransferContext: PVOID, Mdl: PMDL, Offset: ULONGLONG, Length: ULONG, Flags: ULONG, ExecutionRoutine: PDRIVER_LIST_CONTROL, Context: PVOID, WriteToDevice: BOOLEAN, DmaCompletionRoutine: PDMA_COMPLETION_ROUTINE, CompletionContext: PVOID, ScatterGatherList: *mut PSCATTER_GATHER_LIST) -> crate::NTSTATUS;
    /// `NTSTATUS BuildScatterGatherListEx(…, PVOID ScatterGatherBuffer, ULONG, …)`.
    PBUILD_SCATTER_GATHER_LIST_EX = fn(DmaAdapter: PDMA_ADAPTER, DeviceObject: PDEVICE_OBJECT, DmaTransferContext: PVOID, Mdl: PMDL, Offset: ULONGLONG, Length: ULONG, Flags: ULONG, ExecutionRoutine: PDRIVER_LIST_CONTROL, Context: PVOID, WriteToDevice: BOOLEAN, ScatterGatherBuffer: PVOID, ScatterGatherLength: ULONG, DmaCompletionRoutine: PDMA_COMPLETION_ROUTINE, CompletionContext: PVOID, ScatterGatherList: *mut PSCATTER_GATHER_LIST) -> crate::NTSTATUS;
    /// `NTSTATUS FlushAdapterBuffersEx(PDMA_ADAPTER, PMDL, PVOID, ULONGLONG, ULONG, BOOLEAN)`.
    PFLUSH_ADAPTER_BUFFERS_EX = fn(DmaAdapter: PDMA_ADAPTER, Mdl: PMDL, MapRegisterBase: PVOID, Offset: ULONGLONG, Length: ULONG, WriteToDevice: BOOLEAN) -> crate::NTSTATUS;
    /// `VOID FreeAdapterObject(PDMA_ADAPTER, IO_ALLOCATION_ACTION)`.
    PFREE_ADAPTER_OBJECT = fn(DmaAdapter: PDMA_ADAPTER, AllocationAction: IO_ALLOCATION_ACTION);
    /// `NTSTATUS CancelMappedTransfer(PDMA_ADAPTER, PVOID)`.
    PCANCEL_MAPPED_TRANSFER = fn(DmaAdapter: PDMA_ADAPTER, DmaTransferContext: PVOID) -> crate::NTSTATUS;
    /// `NTSTATUS AllocateDomainCommonBuffer(PDMA_ADAPTER, HANDLE, PPHYSICAL_ADDRESS, ULONG, ULONG,
    /// MEMORY_CACHING_TYPE*, NODE_REQUIREMENT, PPHYSICAL_ADDRESS, PVOID*)`.
    PALLOCATE_DOMAIN_COMMON_BUFFER = fn(DmaAdapter: PDMA_ADAPTER, DomainHandle: HANDLE, MaximumAddress: PPHYSICAL_ADDRESS, Length: ULONG, Flags: ULONG, CacheType: *mut MEMORY_CACHING_TYPE, PreferredNode: NODE_REQUIREMENT, LogicalAddress: PPHYSICAL_ADDRESS, VirtualAddress: *mut PVOID) -> crate::NTSTATUS;
    /// `NTSTATUS FlushDmaBuffer(PDMA_ADAPTER, PMDL, BOOLEAN ReadOperation)`.
    PFLUSH_DMA_BUFFER = fn(DmaAdapter: PDMA_ADAPTER, Mdl: PMDL, ReadOperation: BOOLEAN) -> crate::NTSTATUS;
    /// `NTSTATUS JoinDmaDomain(PDMA_ADAPTER, HANDLE)`.
    PJOIN_DMA_DOMAIN = fn(DmaAdapter: PDMA_ADAPTER, DomainHandle: HANDLE) -> crate::NTSTATUS;
    /// `NTSTATUS LeaveDmaDomain(PDMA_ADAPTER)`.
    PLEAVE_DMA_DOMAIN = fn(DmaAdapter: PDMA_ADAPTER) -> crate::NTSTATUS;
    /// `HANDLE GetDmaDomain(PDMA_ADAPTER)`.
    PGET_DMA_DOMAIN = fn(DmaAdapter: PDMA_ADAPTER) -> HANDLE;
    /// `PVOID AllocateCommonBufferWithBounds(PDMA_ADAPTER, PPHYSICAL_ADDRESS, PPHYSICAL_ADDRESS,
    /// ULONG, ULONG, MEMORY_CACHING_TYPE*, NODE_REQUIREMENT, PPHYSICAL_ADDRESS)`.
    PALLOCATE_COMMON_BUFFER_WITH_BOUNDS = fn(DmaAdapter: PDMA_ADAPTER, MinimumAddress: PPHYSICAL_ADDRESS, MaximumAddress: PPHYSICAL_ADDRESS, Length: ULONG, Flags: ULONG, CacheType: *mut MEMORY_CACHING_TYPE, PreferredNode: NODE_REQUIREMENT, LogicalAddress: PPHYSICAL_ADDRESS) -> PVOID;
    /// `NTSTATUS AllocateCommonBufferVector(PDMA_ADAPTER, PHYSICAL_ADDRESS, PHYSICAL_ADDRESS,
    /// MEMORY_CACHING_TYPE, ULONG, ULONG, ULONG, ULONGLONG, PDMA_COMMON_BUFFER_VECTOR*)`.
    PALLOCATE_COMMON_BUFFER_VECTOR = fn(DmaAdapter: PDMA_ADAPTER, LowAddress: PHYSICAL_ADDRESS, HighAddress: PHYSICAL_ADDRESS, CacheType: MEMORY_CACHING_TYPE, IdealNode: ULONG, Flags: ULONG, NumberOfElements: ULONG, SizeOfElements: ULONGLONG, VectorOut: *mut PDMA_COMMON_BUFFER_VECTOR) -> crate::NTSTATUS;
    /// `VOID GetCommonBufferFromVectorByIndex(PDMA_ADAPTER, PDMA_COMMON_BUFFER_VECTOR, ULONG,
    /// PVOID*, PPHYSICAL_ADDRESS)`.
    PGET_COMMON_BUFFER_FROM_VECTOR_BY_INDEX = fn(DmaAdapter: PDMA_ADAPTER, Vector: PDMA_COMMON_BUFFER_VECTOR, Index: ULONG, VirtualAddressOut: *mut PVOID, LogicalAddressOut: PPHYSICAL_ADDRESS);
    /// `VOID FreeCommonBufferFromVector(PDMA_ADAPTER, PDMA_COMMON_BUFFER_VECTOR, ULONG)`.
    PFREE_COMMON_BUFFER_FROM_VECTOR = fn(DmaAdapter: PDMA_ADAPTER, Vector: PDMA_COMMON_BUFFER_VECTOR, Index: ULONG);
    /// `VOID FreeCommonBufferVector(PDMA_ADAPTER, PDMA_COMMON_BUFFER_VECTOR)`.
    PFREE_COMMON_BUFFER_VECTOR = fn(DmaAdapter: PDMA_ADAPTER, Vector: PDMA_COMMON_BUFFER_VECTOR);
    /// `NTSTATUS CreateCommonBufferFromMdl(PDMA_ADAPTER, PMDL,
    /// PDMA_COMMON_BUFFER_EXTENDED_CONFIGURATION, ULONG, PPHYSICAL_ADDRESS)`.
    PCREATE_COMMON_BUFFER_FROM_MDL = fn(DmaAdapter: PDMA_ADAPTER, Mdl: PMDL, ExtendedConfigs: PDMA_COMMON_BUFFER_EXTENDED_CONFIGURATION, ExtendedConfigsCount: ULONG, LogicalAddress: PPHYSICAL_ADDRESS) -> crate::NTSTATUS;
}

/// `typedef struct _DMA_OPERATIONS {…}`.
///
/// `Size` and the 39 routines, in header order
/// (`wdm.h` l.38497; windows-dma.md §2.1). `CreateCommonBufferFromMdl` is present because the
/// simulator models Windows Server 2022+; wdk-sys may omit it when `NTDDI_VERSION` is older
/// (windows-drivers-rs.md §2.2) — the driver checks `Size` before using it either way.
#[repr(C)]
#[derive(Debug, Default, Copy, Clone)]
pub struct _DMA_OPERATIONS {
    /// `ULONG Size;` — bytes of the table for the granted version.
    pub Size: ULONG,
    /// 1
    pub PutDmaAdapter: PPUT_DMA_ADAPTER,
    /// 2
    pub AllocateCommonBuffer: PALLOCATE_COMMON_BUFFER,
    /// 3
    pub FreeCommonBuffer: PFREE_COMMON_BUFFER,
    /// 4
    pub AllocateAdapterChannel: PALLOCATE_ADAPTER_CHANNEL,
    /// 5
    pub FlushAdapterBuffers: PFLUSH_ADAPTER_BUFFERS,
    /// 6
    pub FreeAdapterChannel: PFREE_ADAPTER_CHANNEL,
    /// 7
    pub FreeMapRegisters: PFREE_MAP_REGISTERS,
    /// 8
    pub MapTransfer: PMAP_TRANSFER,
    /// 9
    pub GetDmaAlignment: PGET_DMA_ALIGNMENT,
    /// 10
    pub ReadDmaCounter: PREAD_DMA_COUNTER,
    /// 11
    pub GetScatterGatherList: PGET_SCATTER_GATHER_LIST,
    /// 12
    pub PutScatterGatherList: PPUT_SCATTER_GATHER_LIST,
    /// 13 (v2)
    pub CalculateScatterGatherList: PCALCULATE_SCATTER_GATHER_LIST_SIZE,
    /// 14 (v2)
    pub BuildScatterGatherList: PBUILD_SCATTER_GATHER_LIST,
    /// 15 (v2)
    pub BuildMdlFromScatterGatherList: PBUILD_MDL_FROM_SCATTER_GATHER_LIST,
    /// 16 (v3)
    pub GetDmaAdapterInfo: PGET_DMA_ADAPTER_INFO,
    /// 17 (v3)
    pub GetDmaTransferInfo: PGET_DMA_TRANSFER_INFO,
    /// 18 (v3)
    pub InitializeDmaTransferContext: PINITIALIZE_DMA_TRANSFER_CONTEXT,
    /// 19 (v3)
    pub AllocateCommonBufferEx: PALLOCATE_COMMON_BUFFER_EX,
    /// 20 (v3)
    pub AllocateAdapterChannelEx: PALLOCATE_ADAPTER_CHANNEL_EX,
    /// 21 (v3)
    pub ConfigureAdapterChannel: PCONFIGURE_ADAPTER_CHANNEL,
    /// 22 (v3)
    pub CancelAdapterChannel: PCANCEL_ADAPTER_CHANNEL,
    /// 23 (v3)
    pub MapTransferEx: PMAP_TRANSFER_EX,
    /// 24 (v3)
    pub GetScatterGatherListEx: PGET_SCATTER_GATHER_LIST_EX,
    /// 25 (v3)
    pub BuildScatterGatherListEx: PBUILD_SCATTER_GATHER_LIST_EX,
    /// 26 (v3)
    pub FlushAdapterBuffersEx: PFLUSH_ADAPTER_BUFFERS_EX,
    /// 27 (v3)
    pub FreeAdapterObject: PFREE_ADAPTER_OBJECT,
    /// 28 (v3)
    pub CancelMappedTransfer: PCANCEL_MAPPED_TRANSFER,
    /// 29 (Windows 10)
    pub AllocateDomainCommonBuffer: PALLOCATE_DOMAIN_COMMON_BUFFER,
    /// 30 (Windows 10)
    pub FlushDmaBuffer: PFLUSH_DMA_BUFFER,
    /// 31 (Windows 10)
    pub JoinDmaDomain: PJOIN_DMA_DOMAIN,
    /// 32 (Windows 10)
    pub LeaveDmaDomain: PLEAVE_DMA_DOMAIN,
    /// 33 (Windows 10)
    pub GetDmaDomain: PGET_DMA_DOMAIN,
    /// 34 (Windows 10 1803)
    pub AllocateCommonBufferWithBounds: PALLOCATE_COMMON_BUFFER_WITH_BOUNDS,
    /// 35
    pub AllocateCommonBufferVector: PALLOCATE_COMMON_BUFFER_VECTOR,
    /// 36
    pub GetCommonBufferFromVectorByIndex: PGET_COMMON_BUFFER_FROM_VECTOR_BY_INDEX,
    /// 37
    pub FreeCommonBufferFromVector: PFREE_COMMON_BUFFER_FROM_VECTOR,
    /// 38
    pub FreeCommonBufferVector: PFREE_COMMON_BUFFER_VECTOR,
    /// 39 (Windows Server 2022)
    pub CreateCommonBufferFromMdl: PCREATE_COMMON_BUFFER_FROM_MDL,
}
/// `DMA_OPERATIONS`.
pub type DMA_OPERATIONS = _DMA_OPERATIONS;
/// `PDMA_OPERATIONS`.
pub type PDMA_OPERATIONS = *mut _DMA_OPERATIONS;
