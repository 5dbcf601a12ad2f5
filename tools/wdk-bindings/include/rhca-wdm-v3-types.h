/*
 * RHCA: the version-3 DMA surface that Debian's mingw-w64 wdm.h lacks, declared from
 * Microsoft's documented prototypes (shared/reference/windows-dma.md §1.2, §2.1-§2.3).
 * Written for this project; it is not a copy of any header. The generator splices it into
 * a staged copy of mingw's wdm.h just before `typedef struct _DMA_OPERATIONS`, where
 * DMA_ADAPTER, MDL, DEVICE_OBJECT, IO_ALLOCATION_ACTION and the v1/v2 routine types exist.
 */

#define DMA_ADAPTER_INFO_VERSION1   1
#define DMA_TRANSFER_INFO_VERSION1  1
#define DMA_TRANSFER_INFO_VERSION2  2
#define DMA_TRANSFER_CONTEXT_SIZE_V1 128
#define DMA_SYNCHRONOUS_CALLBACK    0x01
#define DMA_ZERO_BUFFERS            0x02
#define DMA_FAIL_ON_BOUNCE          0x04
#define DOMAIN_COMMON_BUFFER_LARGE_PAGE 0x00000001

typedef struct _DMA_ADAPTER_INFO_V1 {
  ULONG ReadDmaCounterAvailable;
  ULONG ScatterGatherLimit;
  ULONG DmaAddressWidth;
  ULONG Flags;
  ULONG MinimumTransferUnit;
} DMA_ADAPTER_INFO_V1, *PDMA_ADAPTER_INFO_V1;

/* The crash-dump member of the union (DMA_ADAPTER_INFO_CRASHDUMP) is not declared: its layout
 * is not in our reference, and RHCA never uses it (docs/sim-fidelity.md). */
typedef struct _DMA_ADAPTER_INFO {
  ULONG Version;
  union {
    DMA_ADAPTER_INFO_V1 V1;
  };
} DMA_ADAPTER_INFO, *PDMA_ADAPTER_INFO;

typedef struct _DMA_TRANSFER_INFO_V1 {
  ULONG MapRegisterCount;
  ULONG ScatterGatherElementCount;
  ULONG ScatterGatherListSize;
} DMA_TRANSFER_INFO_V1, *PDMA_TRANSFER_INFO_V1;

typedef struct _DMA_TRANSFER_INFO_V2 {
  ULONG MapRegisterCount;
  ULONG ScatterGatherElementCount;
  ULONG ScatterGatherListSize;
  ULONG LogicalPageCount;
} DMA_TRANSFER_INFO_V2, *PDMA_TRANSFER_INFO_V2;

typedef struct _DMA_TRANSFER_INFO {
  ULONG Version;
  union {
    DMA_TRANSFER_INFO_V1 V1;
    DMA_TRANSFER_INFO_V2 V2;
  };
} DMA_TRANSFER_INFO, *PDMA_TRANSFER_INFO;

typedef struct _DMA_COMMON_BUFFER_VECTOR DMA_COMMON_BUFFER_VECTOR, *PDMA_COMMON_BUFFER_VECTOR;

typedef enum _DMA_COMMON_BUFFER_EXTENDED_CONFIGURATION_TYPE {
  CommonBufferConfigTypeLogicalAddressLimits,
  CommonBufferConfigTypeSubSection,
  CommonBufferConfigTypeHardwareAccessPermissions,
  CommonBufferConfigTypeMax
} DMA_COMMON_BUFFER_EXTENDED_CONFIGURATION_TYPE, *PDMA_COMMON_BUFFER_EXTENDED_CONFIGURATION_TYPE;

typedef enum _DMA_COMMON_BUFFER_EXTENDED_CONFIGURATION_ACCESS_TYPE {
  CommonBufferHardwareAccessReadOnly,
  CommonBufferHardwareAccessWriteOnly,
  CommonBufferHardwareAccessReadWrite,
  CommonBufferHardwareAccessMax
} DMA_COMMON_BUFFER_EXTENDED_CONFIGURATION_ACCESS_TYPE, *PDMA_COMMON_BUFFER_EXTENDED_CONFIGURATION_ACCESS_TYPE;

typedef struct _DMA_COMMON_BUFFER_EXTENDED_CONFIGURATION {
  DMA_COMMON_BUFFER_EXTENDED_CONFIGURATION_TYPE ConfigType;
  union {
    struct {
      PHYSICAL_ADDRESS MinimumAddress;
      PHYSICAL_ADDRESS MaximumAddress;
    } LogicalAddressLimits;
    struct {
      ULONGLONG Offset;
      ULONG Length;
    } SubSection;
    DMA_COMMON_BUFFER_EXTENDED_CONFIGURATION_ACCESS_TYPE HardwareAccessType;
    ULONGLONG Reserved[4];
  };
} DMA_COMMON_BUFFER_EXTENDED_CONFIGURATION, *PDMA_COMMON_BUFFER_EXTENDED_CONFIGURATION;

typedef VOID (NTAPI *PDMA_COMPLETION_ROUTINE)(PDMA_ADAPTER DmaAdapter, PDEVICE_OBJECT DeviceObject,
    PVOID CompletionContext, DMA_COMPLETION_STATUS Status);

typedef NTSTATUS (NTAPI *PGET_DMA_ADAPTER_INFO)(PDMA_ADAPTER DmaAdapter, PDMA_ADAPTER_INFO AdapterInfo);
typedef NTSTATUS (NTAPI *PGET_DMA_TRANSFER_INFO)(PDMA_ADAPTER DmaAdapter, PMDL Mdl, ULONGLONG Offset,
    ULONG Length, BOOLEAN WriteOnly, PDMA_TRANSFER_INFO TransferInfo);
typedef NTSTATUS (NTAPI *PINITIALIZE_DMA_TRANSFER_CONTEXT)(PDMA_ADAPTER DmaAdapter, PVOID DmaTransferContext);
typedef PVOID (NTAPI *PALLOCATE_COMMON_BUFFER_EX)(PDMA_ADAPTER DmaAdapter, PPHYSICAL_ADDRESS MaximumAddress,
    ULONG Length, PPHYSICAL_ADDRESS LogicalAddress, BOOLEAN CacheEnabled, NODE_REQUIREMENT PreferredNode);
typedef NTSTATUS (NTAPI *PALLOCATE_ADAPTER_CHANNEL_EX)(PDMA_ADAPTER DmaAdapter, PDEVICE_OBJECT DeviceObject,
    PVOID DmaTransferContext, ULONG NumberOfMapRegisters, ULONG Flags, PDRIVER_CONTROL ExecutionRoutine,
    PVOID ExecutionContext, PVOID *MapRegisterBase);
typedef NTSTATUS (NTAPI *PCONFIGURE_ADAPTER_CHANNEL)(PDMA_ADAPTER DmaAdapter, ULONG FunctionNumber, PVOID Context);
typedef BOOLEAN (NTAPI *PCANCEL_ADAPTER_CHANNEL)(PDMA_ADAPTER DmaAdapter, PDEVICE_OBJECT DeviceObject,
    PVOID DmaTransferContext);
typedef NTSTATUS (NTAPI *PMAP_TRANSFER_EX)(PDMA_ADAPTER DmaAdapter, PMDL Mdl, PVOID MapRegisterBase,
    ULONGLONG Offset, ULONG DeviceOffset, PULONG Length, BOOLEAN WriteToDevice,
    PSCATTER_GATHER_LIST ScatterGatherBuffer, ULONG ScatterGatherBufferLength,
    PDMA_COMPLETION_ROUTINE DmaCompletionRoutine, PVOID CompletionContext);
typedef NTSTATUS (NTAPI *PGET_SCATTER_GATHER_LIST_EX)(PDMA_ADAPTER DmaAdapter, PDEVICE_OBJECT DeviceObject,
    PVOID DmaTransferContext, PMDL Mdl, ULONGLONG Offset, ULONG Length, ULONG Flags,
    PDRIVER_LIST_CONTROL ExecutionRoutine, PVOID Context, BOOLEAN WriteToDevice,
    PDMA_COMPLETION_ROUTINE DmaCompletionRoutine, PVOID CompletionContext,
    PSCATTER_GATHER_LIST *ScatterGatherList);
typedef NTSTATUS (NTAPI *PBUILD_SCATTER_GATHER_LIST_EX)(PDMA_ADAPTER DmaAdapter, PDEVICE_OBJECT DeviceObject,
    PVOID DmaTransferContext, PMDL Mdl, ULONGLONG Offset, ULONG Length, ULONG Flags,
    PDRIVER_LIST_CONTROL ExecutionRoutine, PVOID Context, BOOLEAN WriteToDevice,
    PVOID ScatterGatherBuffer, ULONG ScatterGatherLength, PDMA_COMPLETION_ROUTINE DmaCompletionRoutine,
    PVOID CompletionContext, PSCATTER_GATHER_LIST *ScatterGatherList);
typedef NTSTATUS (NTAPI *PFLUSH_ADAPTER_BUFFERS_EX)(PDMA_ADAPTER DmaAdapter, PMDL Mdl, PVOID MapRegisterBase,
    ULONGLONG Offset, ULONG Length, BOOLEAN WriteToDevice);
typedef VOID (NTAPI *PFREE_ADAPTER_OBJECT)(PDMA_ADAPTER DmaAdapter, IO_ALLOCATION_ACTION AllocationAction);
typedef NTSTATUS (NTAPI *PCANCEL_MAPPED_TRANSFER)(PDMA_ADAPTER DmaAdapter, PVOID DmaTransferContext);
typedef NTSTATUS (NTAPI *PALLOCATE_DOMAIN_COMMON_BUFFER)(PDMA_ADAPTER DmaAdapter, HANDLE DomainHandle,
    PPHYSICAL_ADDRESS MaximumAddress, ULONG Length, ULONG Flags, MEMORY_CACHING_TYPE *CacheType,
    NODE_REQUIREMENT PreferredNode, PPHYSICAL_ADDRESS LogicalAddress, PVOID *VirtualAddress);
typedef NTSTATUS (NTAPI *PFLUSH_DMA_BUFFER)(PDMA_ADAPTER DmaAdapter, PMDL Mdl, BOOLEAN ReadOperation);
typedef NTSTATUS (NTAPI *PJOIN_DMA_DOMAIN)(PDMA_ADAPTER DmaAdapter, HANDLE DomainHandle);
typedef NTSTATUS (NTAPI *PLEAVE_DMA_DOMAIN)(PDMA_ADAPTER DmaAdapter);
typedef HANDLE (NTAPI *PGET_DMA_DOMAIN)(PDMA_ADAPTER DmaAdapter);
typedef PVOID (NTAPI *PALLOCATE_COMMON_BUFFER_WITH_BOUNDS)(PDMA_ADAPTER DmaAdapter,
    PPHYSICAL_ADDRESS MinimumAddress, PPHYSICAL_ADDRESS MaximumAddress, ULONG Length, ULONG Flags,
    MEMORY_CACHING_TYPE *CacheType, NODE_REQUIREMENT PreferredNode, PPHYSICAL_ADDRESS LogicalAddress);
typedef NTSTATUS (NTAPI *PALLOCATE_COMMON_BUFFER_VECTOR)(PDMA_ADAPTER DmaAdapter, PHYSICAL_ADDRESS LowAddress,
    PHYSICAL_ADDRESS HighAddress, MEMORY_CACHING_TYPE CacheType, ULONG IdealNode, ULONG Flags,
    ULONG NumberOfElements, ULONGLONG SizeOfElements, PDMA_COMMON_BUFFER_VECTOR *VectorOut);
typedef VOID (NTAPI *PGET_COMMON_BUFFER_FROM_VECTOR_BY_INDEX)(PDMA_ADAPTER DmaAdapter,
    PDMA_COMMON_BUFFER_VECTOR Vector, ULONG Index, PVOID *VirtualAddressOut,
    PPHYSICAL_ADDRESS LogicalAddressOut);
typedef VOID (NTAPI *PFREE_COMMON_BUFFER_FROM_VECTOR)(PDMA_ADAPTER DmaAdapter,
    PDMA_COMMON_BUFFER_VECTOR Vector, ULONG Index);
typedef VOID (NTAPI *PFREE_COMMON_BUFFER_VECTOR)(PDMA_ADAPTER DmaAdapter, PDMA_COMMON_BUFFER_VECTOR Vector);
typedef NTSTATUS (NTAPI *PCREATE_COMMON_BUFFER_FROM_MDL)(PDMA_ADAPTER DmaAdapter, PMDL Mdl,
    PDMA_COMMON_BUFFER_EXTENDED_CONFIGURATION ExtendedConfigs, ULONG ExtendedConfigsCount,
    PPHYSICAL_ADDRESS LogicalAddress);
