//! Bounds-checked little- and big-endian field access on byte slices.
//!
//! Every decoder in this crate reads through [`Reader`] and every encoder writes through
//! [`Writer`], so that no decode of device-written or user-supplied bytes can index out of bounds:
//! a short buffer becomes [`Error::Truncated`], never a panic. Device structures (WQE, CQE, stream
//! descriptors and records, registers) are little-endian; MAD fields are big-endian as on the wire.

use crate::error::{Error, Result};

/// A cursor that reads fixed-width fields from a byte slice.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading at offset 0 of `buf`.
    #[must_use]
    pub const fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Fails with [`Error::Truncated`] unless `buf` holds at least `need` bytes.
    ///
    /// # Errors
    /// [`Error::Truncated`] when the buffer is shorter than `need`.
    pub const fn require(buf: &[u8], need: usize) -> Result<()> {
        if buf.len() < need {
            Err(Error::Truncated {
                need,
                have: buf.len(),
            })
        } else {
            Ok(())
        }
    }

    /// The current offset.
    #[must_use]
    pub const fn position(&self) -> usize {
        self.pos
    }

    /// Takes the next `n` bytes.
    ///
    /// # Errors
    /// [`Error::Truncated`] when fewer than `n` bytes remain.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or(Error::Truncated {
            need: usize::MAX,
            have: self.buf.len(),
        })?;
        let out = self.buf.get(self.pos..end).ok_or(Error::Truncated {
            need: end,
            have: self.buf.len(),
        })?;
        self.pos = end;
        Ok(out)
    }

    /// Takes the next `N` bytes as an array.
    ///
    /// # Errors
    /// [`Error::Truncated`] when fewer than `N` bytes remain.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }

    /// Skips `n` bytes.
    ///
    /// # Errors
    /// [`Error::Truncated`] when fewer than `n` bytes remain.
    pub fn skip(&mut self, n: usize) -> Result<()> {
        self.bytes(n).map(|_| ())
    }

    /// Reads a byte.
    ///
    /// # Errors
    /// [`Error::Truncated`] at the end of the buffer.
    pub fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }

    /// Reads a little-endian `u16`.
    ///
    /// # Errors
    /// [`Error::Truncated`] when fewer than 2 bytes remain.
    pub fn u16_le(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    /// Reads a little-endian `u32`.
    ///
    /// # Errors
    /// [`Error::Truncated`] when fewer than 4 bytes remain.
    pub fn u32_le(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// Reads a little-endian `u64`.
    ///
    /// # Errors
    /// [`Error::Truncated`] when fewer than 8 bytes remain.
    pub fn u64_le(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// Reads a big-endian `u16`.
    ///
    /// # Errors
    /// [`Error::Truncated`] when fewer than 2 bytes remain.
    pub fn u16_be(&mut self) -> Result<u16> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    /// Reads a big-endian `u32`.
    ///
    /// # Errors
    /// [`Error::Truncated`] when fewer than 4 bytes remain.
    pub fn u32_be(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// Reads a big-endian `u64`.
    ///
    /// # Errors
    /// [`Error::Truncated`] when fewer than 8 bytes remain.
    pub fn u64_be(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(self.array()?))
    }
}

/// A cursor that writes fixed-width fields into a byte slice.
#[derive(Debug)]
pub struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> Writer<'a> {
    /// Starts writing at offset 0 of `buf`.
    pub const fn new(buf: &'a mut [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// The current offset.
    #[must_use]
    pub const fn position(&self) -> usize {
        self.pos
    }

    /// Writes `src` at the current offset.
    ///
    /// # Errors
    /// [`Error::Truncated`] when `src` does not fit.
    pub fn bytes(&mut self, src: &[u8]) -> Result<()> {
        let have = self.buf.len();
        let end = self.pos.checked_add(src.len()).ok_or(Error::Truncated {
            need: usize::MAX,
            have,
        })?;
        let dst = self
            .buf
            .get_mut(self.pos..end)
            .ok_or(Error::Truncated { need: end, have })?;
        dst.copy_from_slice(src);
        self.pos = end;
        Ok(())
    }

    /// Writes `n` zero bytes (reserved fields).
    ///
    /// # Errors
    /// [`Error::Truncated`] when `n` bytes do not fit.
    pub fn zeros(&mut self, n: usize) -> Result<()> {
        let have = self.buf.len();
        let end = self.pos.checked_add(n).ok_or(Error::Truncated {
            need: usize::MAX,
            have,
        })?;
        self.buf
            .get_mut(self.pos..end)
            .ok_or(Error::Truncated { need: end, have })?
            .fill(0);
        self.pos = end;
        Ok(())
    }

    /// Writes a byte.
    ///
    /// # Errors
    /// [`Error::Truncated`] at the end of the buffer.
    pub fn u8(&mut self, v: u8) -> Result<()> {
        self.bytes(&[v])
    }

    /// Writes a little-endian `u16`.
    ///
    /// # Errors
    /// [`Error::Truncated`] when 2 bytes do not fit.
    pub fn u16_le(&mut self, v: u16) -> Result<()> {
        self.bytes(&v.to_le_bytes())
    }

    /// Writes a little-endian `u32`.
    ///
    /// # Errors
    /// [`Error::Truncated`] when 4 bytes do not fit.
    pub fn u32_le(&mut self, v: u32) -> Result<()> {
        self.bytes(&v.to_le_bytes())
    }

    /// Writes a little-endian `u64`.
    ///
    /// # Errors
    /// [`Error::Truncated`] when 8 bytes do not fit.
    pub fn u64_le(&mut self, v: u64) -> Result<()> {
        self.bytes(&v.to_le_bytes())
    }

    /// Writes a big-endian `u16`.
    ///
    /// # Errors
    /// [`Error::Truncated`] when 2 bytes do not fit.
    pub fn u16_be(&mut self, v: u16) -> Result<()> {
        self.bytes(&v.to_be_bytes())
    }

    /// Writes a big-endian `u32`.
    ///
    /// # Errors
    /// [`Error::Truncated`] when 4 bytes do not fit.
    pub fn u32_be(&mut self, v: u32) -> Result<()> {
        self.bytes(&v.to_be_bytes())
    }

    /// Writes a big-endian `u64`.
    ///
    /// # Errors
    /// [`Error::Truncated`] when 8 bytes do not fit.
    pub fn u64_be(&mut self, v: u64) -> Result<()> {
        self.bytes(&v.to_be_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_reports_truncation_instead_of_panicking() {
        let buf = [1u8, 2, 3];
        let mut r = Reader::new(&buf);
        assert_eq!(r.u16_le(), Ok(0x0201));
        assert_eq!(r.u16_le(), Err(Error::Truncated { need: 4, have: 3 }));
        // A failed read does not move the cursor.
        assert_eq!(r.u8(), Ok(3));
        assert_eq!(r.u8(), Err(Error::Truncated { need: 4, have: 3 }));
    }

    #[test]
    fn endianness_is_as_named() {
        let buf = [0x12u8, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0];
        assert_eq!(Reader::new(&buf).u32_le(), Ok(0x7856_3412));
        assert_eq!(Reader::new(&buf).u32_be(), Ok(0x1234_5678));
        assert_eq!(Reader::new(&buf).u64_be(), Ok(0x1234_5678_9abc_def0));
        let mut out = [0u8; 8];
        let mut w = Writer::new(&mut out);
        w.u16_be(0x1234).unwrap();
        w.u16_le(0x1234).unwrap();
        w.u32_le(0xdead_beef).unwrap();
        assert_eq!(out, [0x12, 0x34, 0x34, 0x12, 0xef, 0xbe, 0xad, 0xde]);
    }

    #[test]
    fn writer_refuses_overflow_and_keeps_buffer() {
        let mut out = [0xaau8; 3];
        let mut w = Writer::new(&mut out);
        assert_eq!(w.u32_le(1), Err(Error::Truncated { need: 4, have: 3 }));
        assert_eq!(w.position(), 0);
        assert_eq!(out, [0xaa; 3]);
    }
}
