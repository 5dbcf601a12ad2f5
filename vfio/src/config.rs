//! The RHCA's PCI configuration space, as a VMM reads and writes it through the vfio-user
//! config region.
//!
//! It holds the type 0 header with the identity of `docs/device.md` §1, BAR0 (64-bit,
//! non-prefetchable, 16 KiB, sized the way firmware probes it), and three capabilities —
//! power management (D0/D3hot), MSI-X (table and PBA in BAR0), PCI Express (an endpoint with
//! function-level reset).
//!
//! Each byte has a write mask (what software may change) and a write-one-to-clear mask; the
//! rest is read-only, as in silicon. Pure logic, no `unsafe`.

#![expect(
    clippy::cast_possible_truncation,
    reason = "capability offsets are below 0x100 and vector counts at most 16, by construction"
)]

use rhca_hw::pci;

/// Size of the configuration space served (the conventional 256 bytes; no extended space).
pub const CONFIG_SIZE: usize = 256;

/// Offsets of the capabilities.
const CAP_PM: usize = 0x40;
const CAP_MSIX: usize = 0x48;
const CAP_PCIE: usize = 0x54;

/// The Command register's bits the device implements: memory space, bus master, parity error
/// response, SERR#, `INTx` disable.
const COMMAND_WRITABLE: u16 = 0x0546;
/// Command: bus master enable.
const COMMAND_BUS_MASTER: u16 = 1 << 2;
/// Command: `INTx` disable.
const COMMAND_INTX_DISABLE: u16 = 1 << 10;
/// Status: capabilities list present.
const STATUS_CAP_LIST: u16 = 1 << 4;
/// MSI-X Message Control: enable, function mask.
const MSIX_ENABLE: u16 = 1 << 15;
const MSIX_FUNCTION_MASK: u16 = 1 << 14;
/// `PCIe` Device Capabilities: function-level reset supported.
const DEVCAP_FLR: u32 = 1 << 28;
/// `PCIe` Device Control: initiate function-level reset (reads as 0).
const DEVCTL_FLR: u16 = 1 << 15;

/// What a configuration write asked of the device beyond the bytes it changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteEffect {
    /// The write initiated a function-level reset.
    pub flr: bool,
}

/// A configuration access outside the space, or not naturally aligned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "configuration access of {len} bytes at {offset:#x} is outside the {CONFIG_SIZE}-byte space or not naturally aligned"
)]
pub struct ConfigError {
    /// The offset asked for.
    pub offset: u64,
    /// The access size.
    pub len: usize,
}

/// The configuration space of one RHCA function.
#[derive(Debug, Clone)]
pub struct ConfigSpace {
    bytes: [u8; CONFIG_SIZE],
    writable: [u8; CONFIG_SIZE],
    write_one_to_clear: [u8; CONFIG_SIZE],
    reset_image: [u8; CONFIG_SIZE],
}

impl ConfigSpace {
    /// The space at power-on, for a device with `msix_vectors` MSI-X table entries (1..=16).
    #[must_use]
    pub fn new(msix_vectors: u32) -> Self {
        let mut c = Self {
            bytes: [0; CONFIG_SIZE],
            writable: [0; CONFIG_SIZE],
            write_one_to_clear: [0; CONFIG_SIZE],
            reset_image: [0; CONFIG_SIZE],
        };
        c.put16(0x00, pci::VENDOR_ID);
        c.put16(0x02, pci::DEVICE_ID);
        c.put16(0x04, 0);
        c.mask16(0x04, COMMAND_WRITABLE);
        c.put16(0x06, STATUS_CAP_LIST);
        // Status: the error bits (parity, SERR, aborts) clear on a write of one.
        c.w1c16(0x06, 0xF900);
        c.bytes[0x08] = pci::REVISION_ID;
        let class = pci::CLASS_CODE.to_le_bytes();
        c.bytes[0x09..0x0C].copy_from_slice(&class[..3]);
        c.writable[0x0C] = 0xFF; // cache line size
        c.bytes[0x0E] = 0x00; // header type 0, single function
        // BAR0: 64-bit (type 10b), non-prefetchable memory; the address bits above its size
        // are writable, so writing all-ones reads back the size mask.
        c.put32(0x10, 0b0100);
        let size_mask = !(u32::try_from(pci::BAR0_SIZE).unwrap_or(u32::MAX) - 1) & !0xF;
        c.mask32(0x10, size_mask);
        c.mask32(0x14, u32::MAX);
        c.put16(0x2C, pci::SUBSYSTEM_VENDOR_ID);
        c.put16(0x2E, pci::SUBSYSTEM_ID);
        c.bytes[0x34] = CAP_PM as u8;
        c.writable[0x3C] = 0xFF; // interrupt line
        c.bytes[0x3D] = pci::INTERRUPT_PIN;
        // Power management, version 3: D0 and D3hot; No_Soft_Reset (D3hot→D0 keeps state
        // the driver must not rely on anyway: it re-initialises in D0 entry).
        c.bytes[CAP_PM] = 0x01;
        c.bytes[CAP_PM + 1] = CAP_MSIX as u8;
        c.put16(CAP_PM + 2, 0x0003);
        c.put16(CAP_PM + 4, 0x0008);
        c.mask16(CAP_PM + 4, 0x0003);
        // MSI-X: table size N-1, enable and function mask writable; table and PBA in BAR0.
        c.bytes[CAP_MSIX] = 0x11;
        c.bytes[CAP_MSIX + 1] = CAP_PCIE as u8;
        let n = msix_vectors.clamp(1, pci::MSIX_MAX_VECTORS);
        c.put16(CAP_MSIX + 2, u16::try_from(n - 1).unwrap_or(0));
        c.mask16(CAP_MSIX + 2, MSIX_ENABLE | MSIX_FUNCTION_MASK);
        c.put32(CAP_MSIX + 4, pci::MSIX_TABLE_OFFSET);
        c.put32(CAP_MSIX + 8, pci::MSIX_PBA_OFFSET);
        // PCI Express capability, version 2, endpoint; 128-byte payload, FLR; a x1 2.5 GT/s
        // link.
        c.bytes[CAP_PCIE] = 0x10;
        c.bytes[CAP_PCIE + 1] = 0x00;
        c.put16(CAP_PCIE + 2, 0x0002);
        c.put32(CAP_PCIE + 4, DEVCAP_FLR);
        // Device Control: error reporting enables, relaxed ordering, payload and read request
        // sizes, no snoop, and the FLR bit (self-clearing).
        c.put16(CAP_PCIE + 8, 0x2810);
        c.mask16(CAP_PCIE + 8, 0xFFFF);
        c.w1c16(CAP_PCIE + 10, 0x000F);
        c.put32(CAP_PCIE + 12, 0x0000_0011);
        c.mask16(CAP_PCIE + 16, 0x01C3);
        c.put16(CAP_PCIE + 18, 0x0011);
        c.reset_image = c.bytes;
        c
    }

    fn put16(&mut self, at: usize, v: u16) {
        self.bytes[at..at + 2].copy_from_slice(&v.to_le_bytes());
    }

    fn put32(&mut self, at: usize, v: u32) {
        self.bytes[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }

    fn mask16(&mut self, at: usize, m: u16) {
        self.writable[at..at + 2].copy_from_slice(&m.to_le_bytes());
    }

    fn mask32(&mut self, at: usize, m: u32) {
        self.writable[at..at + 4].copy_from_slice(&m.to_le_bytes());
    }

    fn w1c16(&mut self, at: usize, m: u16) {
        self.write_one_to_clear[at..at + 2].copy_from_slice(&m.to_le_bytes());
    }

    const fn get16(&self, at: usize) -> u16 {
        u16::from_le_bytes([self.bytes[at], self.bytes[at + 1]])
    }

    fn range(offset: u64, len: usize) -> Result<usize, ConfigError> {
        let err = ConfigError { offset, len };
        let at = usize::try_from(offset).map_err(|_| err)?;
        if !matches!(len, 1 | 2 | 4)
            || !at.is_multiple_of(len)
            || at.checked_add(len).is_none_or(|end| end > CONFIG_SIZE)
        {
            return Err(err);
        }
        Ok(at)
    }

    /// Reads `data.len()` (1, 2 or 4) bytes at `offset`.
    ///
    /// # Errors
    /// [`ConfigError`] for an access outside the space or not naturally aligned.
    pub fn read(&self, offset: u64, data: &mut [u8]) -> Result<(), ConfigError> {
        let at = Self::range(offset, data.len())?;
        data.copy_from_slice(&self.bytes[at..at + data.len()]);
        Ok(())
    }

    /// Writes `data` (1, 2 or 4 bytes) at `offset`: writable bits change, write-one-to-clear
    /// bits clear where a one is written, the rest stays.
    ///
    /// # Errors
    /// [`ConfigError`] for an access outside the space or not naturally aligned.
    pub fn write(&mut self, offset: u64, data: &[u8]) -> Result<WriteEffect, ConfigError> {
        let at = Self::range(offset, data.len())?;
        for (i, &v) in data.iter().enumerate() {
            let b = &mut self.bytes[at + i];
            let w = self.writable[at + i];
            *b = (*b & !w) | (v & w);
            *b &= !(v & self.write_one_to_clear[at + i]);
        }
        let mut effect = WriteEffect::default();
        let devctl = CAP_PCIE + 8;
        if self.get16(devctl) & DEVCTL_FLR != 0 {
            effect.flr = true;
            self.reset();
        }
        Ok(effect)
    }

    /// A function-level reset: every register back to its power-on value (the BAR address
    /// included: software restores it after an FLR, as the `PCIe` specification requires).
    pub const fn reset(&mut self) {
        self.bytes = self.reset_image;
    }

    /// Whether the Command register lets the device master the bus (DMA and MSI-X messages).
    #[must_use]
    pub const fn bus_master(&self) -> bool {
        self.get16(0x04) & COMMAND_BUS_MASTER != 0
    }

    /// Whether `INTx` is disabled in the Command register.
    #[must_use]
    pub const fn intx_disabled(&self) -> bool {
        self.get16(0x04) & COMMAND_INTX_DISABLE != 0
    }

    /// Whether MSI-X is enabled (masked or not): `INTx` is then not used.
    #[must_use]
    pub const fn msix_enabled(&self) -> bool {
        self.get16(CAP_MSIX + 2) & MSIX_ENABLE != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r32(c: &ConfigSpace, at: u64) -> u32 {
        let mut b = [0; 4];
        c.read(at, &mut b).unwrap();
        u32::from_le_bytes(b)
    }

    fn w32(c: &mut ConfigSpace, at: u64, v: u32) -> WriteEffect {
        c.write(at, &v.to_le_bytes()).unwrap()
    }

    #[test]
    fn identity_and_header_are_the_datasheets() {
        let c = ConfigSpace::new(4);
        assert_eq!(r32(&c, 0), 0x5248_1234);
        assert_eq!(r32(&c, 8), 0x0C06_0001, "class 0x0C0600, revision 1");
        assert_eq!(r32(&c, 0x2C), 0x0001_1234);
        assert_eq!(r32(&c, 0x3C) >> 8 & 0xFF, 1, "INTA#");
        assert_eq!(r32(&c, 4) >> 16 & 0x10, 0x10, "capabilities list");
    }

    #[test]
    fn bar0_sizes_as_firmware_probes_it() {
        let mut c = ConfigSpace::new(4);
        w32(&mut c, 0x10, u32::MAX);
        w32(&mut c, 0x14, u32::MAX);
        let lo = r32(&c, 0x10);
        let hi = r32(&c, 0x14);
        assert_eq!(lo & 0xF, 0b0100, "64-bit non-prefetchable memory");
        let size = !((u64::from(hi) << 32) | u64::from(lo & !0xF)) + 1;
        assert_eq!(size, 0x4000);
        w32(&mut c, 0x10, 0xFEB0_0000);
        w32(&mut c, 0x14, 0);
        assert_eq!(r32(&c, 0x10), 0xFEB0_0004);
    }

    #[test]
    fn capabilities_chain_pm_msix_pcie() {
        let c = ConfigSpace::new(4);
        let mut at = r32(&c, 0x34) & 0xFF;
        let mut ids = Vec::new();
        while at != 0 {
            let h = r32(&c, u64::from(at));
            ids.push(h & 0xFF);
            at = h >> 8 & 0xFF;
        }
        assert_eq!(ids, [0x01, 0x11, 0x10]);
        let msix = r32(&c, 0x48);
        assert_eq!(msix >> 16 & 0x7FF, 3, "table size N-1");
        assert_eq!(r32(&c, 0x4C), 0x2000, "table at BAR0 + 0x2000");
        assert_eq!(r32(&c, 0x50), 0x3000, "PBA at BAR0 + 0x3000");
    }

    #[test]
    fn read_only_bits_stay_and_command_bits_change() {
        let mut c = ConfigSpace::new(4);
        w32(&mut c, 0, 0);
        assert_eq!(r32(&c, 0), 0x5248_1234);
        assert!(!c.bus_master());
        c.write(4, &[0x06, 0x00]).unwrap();
        assert!(c.bus_master());
        assert_eq!(r32(&c, 4) & 0xFFFF, 0x0006);
        c.write(0x4A, &[0x00, 0x80]).unwrap();
        assert!(c.msix_enabled());
        assert_eq!(r32(&c, 0x48) >> 16 & 0xC000, 0x8000);
        c.write(0x4A, &[0x00, 0xC0]).unwrap();
        assert_eq!(
            r32(&c, 0x48) >> 16 & 0xC000,
            0xC000,
            "function mask writable"
        );
        c.write(0x4A, &[0x00, 0x00]).unwrap();
        assert!(!c.msix_enabled());
    }

    #[test]
    fn flr_resets_everything_and_reads_back_zero() {
        let mut c = ConfigSpace::new(4);
        c.write(4, &[0x06, 0x00]).unwrap();
        w32(&mut c, 0x10, 0xFEB0_0000);
        let e = c.write(0x5C, &0x8000u16.to_le_bytes()).unwrap();
        assert!(e.flr);
        assert!(!c.bus_master());
        assert_eq!(r32(&c, 0x5C) & 0x8000, 0);
        assert_eq!(r32(&c, 0x10), 0b0100);
    }

    #[test]
    fn bad_accesses_are_refused() {
        let mut c = ConfigSpace::new(4);
        let mut b = [0; 4];
        assert!(c.read(254, &mut b).is_err(), "crosses the end");
        assert!(c.read(2, &mut b).is_err(), "misaligned");
        assert!(c.read(u64::MAX, &mut b[..1]).is_err());
        assert!(c.write(0, &[0; 3]).is_err(), "three bytes");
        assert!(c.write(256, &[0]).is_err());
    }
}
