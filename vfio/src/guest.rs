//! The guest's memory as the client maps it for DMA (`VFIO_USER_DMA_MAP`): each region a file
//! descriptor of the VM's RAM, mapped here shared, with the protection the client gives.
//!
//! This is the crate's only `unsafe`: `mmap`/`munmap` of the client's descriptors and the byte
//! copies in and out of the mappings. The safety story: a `Region` owns its mapping (unmapped
//! on drop); the region table is behind a lock that every DMA holds for its copy, so a region
//! is never unmapped while a copy runs; every access is bounds-checked against the table before
//! a pointer is formed. The memory is shared with another process (the VM), which may write it
//! at any time: copies go through raw pointers, never through Rust references to guest memory,
//! and the device treats what it reads as untrusted input, as hardware does.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::ptr::NonNull;

/// Why a map or unmap request was refused.
#[derive(Debug, thiserror::Error)]
pub enum GuestError {
    /// The region is empty, wraps the address space, or is not page-aligned.
    #[error("DMA region {iova:#x}+{len:#x} is empty, wraps or is not page-aligned")]
    BadRange {
        /// Its device address.
        iova: u64,
        /// Its length.
        len: u64,
    },
    /// The region overlaps one already mapped.
    #[error("DMA region {iova:#x}+{len:#x} overlaps a mapped region")]
    Overlap {
        /// Its device address.
        iova: u64,
        /// Its length.
        len: u64,
    },
    /// A map without a file descriptor: this server reaches guest memory only through one.
    #[error("DMA region {0:#x} came without a file descriptor")]
    NoFd(u64),
    /// An unmap that does not cover whole mapped regions.
    #[error("no mapped regions make up exactly {iova:#x}+{len:#x}")]
    NotMapped {
        /// Its device address.
        iova: u64,
        /// Its length.
        len: u64,
    },
    /// `mmap` refused the descriptor.
    #[error("mapping the client's memory failed: {0}")]
    Mmap(std::io::Error),
}

/// Why a DMA access failed: the address range is not (entirely) mapped, or not with the access
/// the device attempted. The device reports it as a DMA error, as a master abort would be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unmapped(pub u64);

/// One mapped region.
#[derive(Debug)]
struct Region {
    iova: u64,
    len: u64,
    ptr: NonNull<u8>,
    readable: bool,
    writable: bool,
}

// SAFETY: the region is a process-shared mapping owned by this value; it carries no thread
// affinity, and every access to its bytes is a raw-pointer copy made under the table's lock.
unsafe impl Send for Region {}
// SAFETY: as above: shared access only ever copies through raw pointers.
unsafe impl Sync for Region {}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are the mapping `map` made, unmapped once, here; no copy runs
        // (the table's lock is held by whoever drops a region).
        unsafe {
            libc::munmap(
                self.ptr.as_ptr().cast(),
                usize::try_from(self.len).unwrap_or(0),
            )
        };
    }
}

/// The guest memory the device may reach: regions by device address, sorted, disjoint.
#[derive(Debug, Default)]
pub struct GuestMemory {
    regions: Vec<Region>,
}

/// Page size of the mappings.
const PAGE: u64 = 4096;

impl GuestMemory {
    /// Maps `len` bytes of `fd` from `file_offset` at device address `iova`.
    ///
    /// # Errors
    /// [`GuestError`] for an empty, wrapping, unaligned or overlapping range, a missing
    /// descriptor, or a descriptor `mmap` refuses (too short, wrong type).
    pub fn map(
        &mut self,
        iova: u64,
        len: u64,
        fd: Option<&File>,
        file_offset: u64,
        readable: bool,
        writable: bool,
    ) -> Result<(), GuestError> {
        let end = iova.checked_add(len);
        if len == 0
            || end.is_none()
            || !iova.is_multiple_of(PAGE)
            || !len.is_multiple_of(PAGE)
            || !file_offset.is_multiple_of(PAGE)
        {
            return Err(GuestError::BadRange { iova, len });
        }
        let end = end.unwrap_or(u64::MAX);
        if self
            .regions
            .iter()
            .any(|r| iova < r.iova + r.len && r.iova < end)
        {
            return Err(GuestError::Overlap { iova, len });
        }
        let fd = fd.ok_or(GuestError::NoFd(iova))?;
        let size = usize::try_from(len).map_err(|_| GuestError::BadRange { iova, len })?;
        let off =
            libc::off_t::try_from(file_offset).map_err(|_| GuestError::BadRange { iova, len })?;
        // A descriptor shorter than the region would map pages that SIGBUS on access: refuse.
        let file_len = fd.metadata().map_err(GuestError::Mmap)?.len();
        if file_offset.checked_add(len).is_none_or(|e| e > file_len) {
            return Err(GuestError::Mmap(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "the descriptor holds {file_len} bytes, the region needs {file_offset}+{len}"
                ),
            )));
        }
        let mut prot = 0;
        if readable {
            prot |= libc::PROT_READ;
        }
        if writable {
            prot |= libc::PROT_WRITE;
        }
        // SAFETY: a fresh shared mapping of a live descriptor at an address the kernel picks;
        // no existing memory is affected. The result is checked below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size,
                if prot == 0 { libc::PROT_NONE } else { prot },
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                off,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(GuestError::Mmap(std::io::Error::last_os_error()));
        }
        let ptr = NonNull::new(p.cast::<u8>())
            .ok_or_else(|| GuestError::Mmap(std::io::Error::other("mmap returned NULL")))?;
        let at = self.regions.partition_point(|r| r.iova < iova);
        self.regions.insert(
            at,
            Region {
                iova,
                len,
                ptr,
                readable,
                writable,
            },
        );
        Ok(())
    }

    /// Unmaps the regions that make up exactly `iova`..`iova + len`.
    ///
    /// # Errors
    /// [`GuestError::NotMapped`] when the range is not a run of whole mapped regions (nothing
    /// is unmapped then).
    pub fn unmap(&mut self, iova: u64, len: u64) -> Result<(), GuestError> {
        let end = iova
            .checked_add(len)
            .ok_or(GuestError::NotMapped { iova, len })?;
        let first = self.regions.partition_point(|r| r.iova < iova);
        let mut at = iova;
        let mut last = first;
        while at < end {
            match self.regions.get(last) {
                Some(r) if r.iova == at => {
                    at = r.iova + r.len;
                    last += 1;
                }
                _ => return Err(GuestError::NotMapped { iova, len }),
            }
        }
        if at != end || last == first {
            return Err(GuestError::NotMapped { iova, len });
        }
        self.regions.drain(first..last);
        Ok(())
    }

    /// Unmaps everything (the client went away).
    pub fn clear(&mut self) {
        self.regions.clear();
    }

    /// How many regions are mapped.
    #[must_use]
    pub const fn regions(&self) -> usize {
        self.regions.len()
    }

    /// Visits the pieces of `addr`..`addr + len` region by region: `f(region, offset in it,
    /// offset in the access, bytes)`. Fails, before visiting anything, unless the whole range
    /// is mapped with the access asked for: one walk checks, a second copies.
    fn pieces(
        &self,
        addr: u64,
        len: usize,
        write: bool,
        mut f: impl FnMut(&Region, usize, usize, usize),
    ) -> Result<(), Unmapped> {
        let first = self.regions.partition_point(|r| r.iova + r.len <= addr);
        for visit in [false, true] {
            let mut done = 0usize;
            let mut idx = first;
            while done < len {
                let at = addr.checked_add(done as u64).ok_or(Unmapped(addr))?;
                let r = self.regions.get(idx).ok_or(Unmapped(at))?;
                if at < r.iova || !(if write { r.writable } else { r.readable }) {
                    return Err(Unmapped(at));
                }
                let off = at - r.iova;
                let take = usize::try_from((r.len - off).min((len - done) as u64))
                    .map_err(|_| Unmapped(at))?;
                if visit {
                    f(
                        r,
                        usize::try_from(off).map_err(|_| Unmapped(at))?,
                        done,
                        take,
                    );
                }
                done += take;
                idx += 1;
            }
        }
        Ok(())
    }

    /// Copies guest memory at `addr` into `buf`.
    ///
    /// # Errors
    /// [`Unmapped`] with the first address not mapped readable (nothing is copied).
    pub fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Unmapped> {
        let dst = buf.as_mut_ptr();
        self.pieces(addr, buf.len(), false, |r, off, at, take| {
            // SAFETY: `off + take <= r.len` (checked in `pieces`): inside the live mapping (the
            // caller holds the table).
            let from = unsafe { r.ptr.as_ptr().add(off) };
            // SAFETY: `at + take <= buf.len()` (checked in `pieces`).
            let to = unsafe { dst.add(at) };
            // SAFETY: both ranges are valid for `take` bytes (above) and never overlap (the
            // buffer is this process's heap, the mapping another object). The guest may write
            // the bytes meanwhile: the copy is of raw memory, as a device's read is.
            unsafe { std::ptr::copy_nonoverlapping(from, to, take) };
        })
    }

    /// Copies `buf` into guest memory at `addr`.
    ///
    /// # Errors
    /// [`Unmapped`] with the first address not mapped writable (nothing is written).
    pub fn write(&self, addr: u64, buf: &[u8]) -> Result<(), Unmapped> {
        let src = buf.as_ptr();
        self.pieces(addr, buf.len(), true, |r, off, at, take| {
            // SAFETY: `at + take <= buf.len()` (checked in `pieces`).
            let from = unsafe { src.add(at) };
            // SAFETY: `off + take <= r.len`: inside the live mapping, which is writable.
            let to = unsafe { r.ptr.as_ptr().add(off) };
            // SAFETY: as in `read`, the other way round.
            unsafe { std::ptr::copy_nonoverlapping(from, to, take) };
        })
    }
}
