/* RHCA: kernel routines newer than mingw-w64's wdm.h, from Microsoft's documented prototypes
 * (ExAllocatePool2: Windows 10 2004; MmMapIoSpaceEx: Windows 10). Spliced before the end of
 * the staged wdm.h, inside its extern "C" block. */
#define DEVICE_DESCRIPTION_VERSION3 0x0003
typedef ULONG64 POOL_FLAGS;
NTKERNELAPI PVOID NTAPI ExAllocatePool2(POOL_FLAGS Flags, SIZE_T NumberOfBytes, ULONG Tag);
NTKERNELAPI PVOID NTAPI MmMapIoSpaceEx(PHYSICAL_ADDRESS PhysicalAddress, SIZE_T NumberOfBytes, ULONG Protect);
/* MM_PAGE_PRIORITY flags of MmGetSystemAddressForMdlSafe / MmMapLockedPagesSpecifyCache
 * (Windows 8 and later; documented values). */
#define MdlMappingNoWrite   0x80000000
#define MdlMappingNoExecute 0x40000000
