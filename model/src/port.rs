//! The model's one way out to a host: [`HostPort`].
//!
//! It is what the device needs of the bus it sits on: read and write host memory by device
//! address, send an MSI-X message, drive its `INTx` line, leave the bus.
//!
//! Two hosts implement it: `wdk-sim`'s [`DeviceBus`] (the simulated machine, with its IOMMU,
//! bounce buffers and Driver Verifier checks) and `rhca-vfio-user`'s guest port (a VM's memory
//! as the client maps it, interrupts through the client's eventfds). The device model is the
//! same code on both.

use wdk_sim::{DeviceBus, DmaFault};

/// The bus as the device sees it.
pub trait HostPort: Send + Sync + std::fmt::Debug {
    /// Reads `buf.len()` bytes of host memory at device (logical) address `addr`.
    ///
    /// # Errors
    /// Why the bus refused the access; the device reports it as a DMA error.
    fn dma_read(&self, addr: u64, buf: &mut [u8]) -> Result<(), DmaFault>;

    /// Writes `buf` to host memory at device address `addr`.
    ///
    /// # Errors
    /// As [`HostPort::dma_read`].
    fn dma_write(&self, addr: u64, buf: &[u8]) -> Result<(), DmaFault>;

    /// Writes `data` as one burst over the `(device address, length)` pieces, in order: the
    /// first piece takes the first bytes, and so on (the pieces of a scatter/gather list that
    /// one DMA burst covers; their lengths add up to `data`'s). The default writes them one by
    /// one; a bus that can take a burst at once overrides it.
    ///
    /// # Errors
    /// The index of the first piece that failed and why; the pieces before it were written.
    fn dma_write_pieces(
        &self,
        data: &[u8],
        pieces: &[(u64, usize)],
    ) -> Result<(), (usize, DmaFault)> {
        let mut at = 0usize;
        for (i, &(addr, len)) in pieces.iter().enumerate() {
            let bytes = data
                .get(at..at + len)
                .ok_or((i, DmaFault::NoMemory(addr)))?;
            self.dma_write(addr, bytes).map_err(|f| (i, f))?;
            at += len;
        }
        Ok(())
    }

    /// As [`HostPort::dma_write_pieces`], issued only if `live()` still returns true when the
    /// bus takes the burst; returns whether it was issued (a burst that was not wrote
    /// nothing). A bus with a lock calls `live` once with it held, so that nothing the bus
    /// serialises (a driver freeing the buffer) can come between the answer and the burst;
    /// `live` must therefore only read atomics. The device prepares a stream burst under its
    /// own lock and writes it without, and passes whether no reset came in between.
    ///
    /// # Errors
    /// As [`HostPort::dma_write_pieces`].
    fn dma_write_pieces_if(
        &self,
        data: &[u8],
        pieces: &[(u64, usize)],
        live: &dyn Fn() -> bool,
    ) -> Result<bool, (usize, DmaFault)> {
        if !live() {
            return Ok(false);
        }
        self.dma_write_pieces(data, pieces).map(|()| true)
    }

    /// Sends the MSI-X message of table entry `vector`; false when it could not be delivered
    /// (the device is gone, or bus mastering is off).
    fn signal_msi(&self, vector: u32) -> bool;

    /// Sets the `INTx` line's level; false when the device is gone.
    fn set_intx(&self, asserted: bool) -> bool;

    /// The device leaves the bus, as a hot-unplug would (fault injection): its registers read
    /// all-ones from now on and it performs no more DMA.
    fn surprise_remove(&self);
}

impl HostPort for DeviceBus {
    fn dma_read(&self, addr: u64, buf: &mut [u8]) -> Result<(), DmaFault> {
        Self::dma_read(self, addr, buf)
    }

    fn dma_write(&self, addr: u64, buf: &[u8]) -> Result<(), DmaFault> {
        Self::dma_write(self, addr, buf)
    }

    fn dma_write_pieces(
        &self,
        data: &[u8],
        pieces: &[(u64, usize)],
    ) -> Result<(), (usize, DmaFault)> {
        Self::dma_write_pieces(self, data, pieces)
    }

    fn dma_write_pieces_if(
        &self,
        data: &[u8],
        pieces: &[(u64, usize)],
        live: &dyn Fn() -> bool,
    ) -> Result<bool, (usize, DmaFault)> {
        Self::dma_write_pieces_if(self, data, pieces, live)
    }

    fn signal_msi(&self, vector: u32) -> bool {
        Self::signal_msi(self, vector)
    }

    fn set_intx(&self, asserted: bool) -> bool {
        Self::set_intx(self, asserted)
    }

    fn surprise_remove(&self) {
        Self::surprise_remove(self);
    }
}
