/* RHCA: the DEVICE_DESCRIPTION version-3 members (windows-dma.md §1.2), spliced after DmaPort. */
  ULONG DmaAddressWidth;
  ULONG DmaControllerInstance;
  ULONG DmaRequestLine;
  PHYSICAL_ADDRESS DeviceAddress;
