//! PCI identity of the RHCA function (`docs/device.md` §1).

/// PCI vendor id: 0x1234, the conventional test vendor (as used by QEMU's test devices).
pub const VENDOR_ID: u16 = 0x1234;
/// PCI device id of the RHCA function ("RH" in ASCII).
pub const DEVICE_ID: u16 = 0x5248;
/// PCI revision id of the interface described by this crate.
pub const REVISION_ID: u8 = 0x01;
/// Subsystem vendor id.
pub const SUBSYSTEM_VENDOR_ID: u16 = 0x1234;
/// Subsystem id.
pub const SUBSYSTEM_ID: u16 = 0x0001;
/// Class code: base class 0x0C (serial bus controller), subclass 0x06 (InfiniBand), interface 0.
pub const CLASS_CODE: u32 = 0x0C_06_00;
/// The Windows hardware id the INF matches.
pub const HARDWARE_ID: &str = "PCI\\VEN_1234&DEV_5248";

/// BAR0: 64-bit, non-prefetchable memory BAR holding registers, doorbells and MSI-X.
pub const BAR0_SIZE: u64 = 0x4000;
/// Offset of the register page in BAR0.
pub const REGS_OFFSET: u32 = 0x0000;
/// Offset of the doorbell page in BAR0.
pub const DOORBELL_OFFSET: u32 = 0x1000;
/// Offset of the MSI-X table in BAR0 (table BIR 0).
pub const MSIX_TABLE_OFFSET: u32 = 0x2000;
/// Offset of the MSI-X pending-bit array in BAR0 (PBA BIR 0).
pub const MSIX_PBA_OFFSET: u32 = 0x3000;
/// Size of one MSI-X table entry (address low, address high, data, vector control).
pub const MSIX_ENTRY_SIZE: u32 = 16;
/// The most MSI-X vectors the interface defines (table size field + 1).
pub const MSIX_MAX_VECTORS: u32 = 16;
/// The legacy interrupt pin: INTA#.
pub const INTERRUPT_PIN: u8 = 1;
