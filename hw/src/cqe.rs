//! Completion queue entries (`docs/device.md` §7).
//!
//! A CQE is 32 bytes, little-endian, with the owner bit in bit 7 of its last byte. The device
//! writes the body, then (after a write barrier) the byte holding the owner bit, so a reader that
//! sees the owner bit of its current lap with an Acquire load may then read the body.
//!
//! The driver must not trust a CQE: [`Cqe::decode`] checks every field a device could get wrong,
//! and [`Cqe::check`] checks it against what the driver posted (ring size, buffer length).

use crate::error::{Error, Result};
use crate::mad::{GRH_SIZE, MAD_HDR_SIZE};
use crate::wire::{Reader, Writer};

/// Size of a CQE.
pub const CQE_SIZE: usize = 32;
/// Offset of the byte holding the owner bit.
pub const OWNER_OFFSET: usize = 31;
/// The owner bit in that byte.
pub const OWNER_BIT: u8 = 0x80;
/// `flags` bit 0: a GRH was received (the first 40 bytes of the buffer hold it).
const FLAG_GRH: u8 = 1;

/// What completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Opcode {
    /// A send WQE (or NOP) completed.
    Send = 0x01,
    /// A receive WQE consumed an incoming MAD.
    Recv = 0x02,
}

impl Opcode {
    /// Decodes an opcode byte.
    ///
    /// # Errors
    /// [`Error::UnknownOpcode`].
    pub const fn from_u8(v: u8) -> Result<Self> {
        match v {
            0x01 => Ok(Self::Send),
            0x02 => Ok(Self::Recv),
            _ => Err(Error::UnknownOpcode {
                kind: "CQE",
                opcode: v,
            }),
        }
    }
}

/// Completion status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Status {
    /// The work completed.
    Success = 0x00,
    /// An incoming MAD did not fit the receive buffer, or a send exceeded the MTU.
    LocalLength = 0x01,
    /// A malformed WQE (the syndrome byte holds the `ErrorCode`).
    LocalQpOperation = 0x02,
    /// An `L_Key` other than the reserved key.
    LocalProtection = 0x03,
    /// Flushed: the queue was destroyed, reset or quiesced before the WQE executed.
    WrFlushed = 0x04,
    /// A DMA read or write for this WQE faulted (the syndrome holds the `ErrorCode`).
    DmaError = 0x05,
    /// Any other device error.
    GeneralError = 0x06,
}

impl Status {
    /// Decodes a status byte.
    ///
    /// # Errors
    /// [`Error::InvalidField`].
    pub const fn from_u8(v: u8) -> Result<Self> {
        Ok(match v {
            0x00 => Self::Success,
            0x01 => Self::LocalLength,
            0x02 => Self::LocalQpOperation,
            0x03 => Self::LocalProtection,
            0x04 => Self::WrFlushed,
            0x05 => Self::DmaError,
            0x06 => Self::GeneralError,
            _ => {
                return Err(Error::InvalidField {
                    field: "cqe.status",
                    value: v as u64,
                });
            }
        })
    }
}

/// A decoded CQE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cqe {
    /// The slot of the completed WQE in its work queue.
    pub wqe_index: u16,
    /// The local QP (0 or 1).
    pub qpn: u8,
    /// Send or receive.
    pub opcode: Opcode,
    /// Bytes sent, or bytes placed in the receive buffer counting the 40-byte GRH area.
    pub byte_count: u32,
    /// Receive: source LID.
    pub slid: u16,
    /// Receive: `P_Key` index the packet matched.
    pub pkey_index: u16,
    /// Receive: source QP number (24 bits).
    pub src_qpn: u32,
    /// Completion status.
    pub status: Status,
    /// Device `ErrorCode` for failed completions, 0 on success.
    pub syndrome: u8,
    /// Receive: a GRH is present in the first 40 bytes of the buffer.
    pub grh: bool,
    /// Receive: service level (0..=15).
    pub sl: u8,
    /// The owner bit.
    pub owner: bool,
}

/// What the driver knows about the WQE a CQE claims to complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Posted {
    /// Slots in the work queue named by the CQE.
    pub entries: u32,
    /// Bytes the posted WQE described (the buffer length for a receive).
    pub len: u32,
}

impl Cqe {
    /// Encodes the CQE (the device model's side) with the owner bit as given.
    ///
    /// # Errors
    /// [`Error::Truncated`] when `out` is short.
    pub fn encode(&self, out: &mut [u8]) -> Result<()> {
        Reader::require(out, CQE_SIZE)?;
        let mut w = Writer::new(out);
        w.u16_le(self.wqe_index)?;
        w.u8(self.qpn)?;
        w.u8(self.opcode as u8)?;
        w.u32_le(self.byte_count)?;
        w.u16_le(self.slid)?;
        w.u16_le(self.pkey_index)?;
        w.u32_le(self.src_qpn & 0x00FF_FFFF)?;
        w.u8(self.status as u8)?;
        w.u8(self.syndrome)?;
        w.u8(if self.grh { FLAG_GRH } else { 0 })?;
        w.u8(self.sl & 0x0F)?;
        w.zeros(11)?;
        w.u8(if self.owner { OWNER_BIT } else { 0 })
    }

    /// The owner bit of an encoded CQE (read it first, with Acquire ordering, in the driver).
    #[must_use]
    pub const fn owner_of(byte: u8) -> bool {
        byte & OWNER_BIT != 0
    }

    /// Decodes a CQE, checking every field that does not depend on driver state.
    ///
    /// # Errors
    /// [`Error::UnknownOpcode`], [`Error::InvalidField`] for an unknown status, a QP other than
    /// 0/1, a syndrome on success; [`Error::ReservedNonZero`] for stray bits or receive-only
    /// fields set on a send completion.
    pub fn decode(buf: &[u8]) -> Result<Self> {
        let mut r = Reader::new(buf);
        let wqe_index = r.u16_le()?;
        let qpn = r.u8()?;
        let opcode = Opcode::from_u8(r.u8()?)?;
        let byte_count = r.u32_le()?;
        let slid = r.u16_le()?;
        let pkey_index = r.u16_le()?;
        let src = r.u32_le()?;
        let status = Status::from_u8(r.u8()?)?;
        let syndrome = r.u8()?;
        let flags = r.u8()?;
        let sl = r.u8()?;
        let reserved = r.array::<11>()?;
        let last = r.u8()?;
        if qpn > 1 {
            return Err(Error::InvalidField {
                field: "cqe.qpn",
                value: u64::from(qpn),
            });
        }
        if src >> 24 != 0 {
            return Err(Error::ReservedNonZero {
                field: "cqe.src_qpn",
                value: u64::from(src),
            });
        }
        if flags & !FLAG_GRH != 0 {
            return Err(Error::ReservedNonZero {
                field: "cqe.flags",
                value: u64::from(flags),
            });
        }
        if sl > 15 {
            return Err(Error::ReservedNonZero {
                field: "cqe.sl",
                value: u64::from(sl),
            });
        }
        if reserved.iter().any(|&b| b != 0) || last & !OWNER_BIT != 0 {
            return Err(Error::ReservedNonZero {
                field: "cqe.reserved",
                value: u64::from(last),
            });
        }
        if (status == Status::Success) != (syndrome == 0) {
            return Err(Error::InvalidField {
                field: "cqe.syndrome",
                value: u64::from(syndrome),
            });
        }
        if opcode == Opcode::Send
            && (slid != 0 || pkey_index != 0 || src != 0 || flags != 0 || sl != 0)
        {
            return Err(Error::ReservedNonZero {
                field: "cqe.receive fields",
                value: u64::from(slid),
            });
        }
        Ok(Self {
            wqe_index,
            qpn,
            opcode,
            byte_count,
            slid,
            pkey_index,
            src_qpn: src,
            status,
            syndrome,
            grh: flags & FLAG_GRH != 0,
            sl,
            owner: Self::owner_of(last),
        })
    }

    /// Checks the CQE against the work queue it names and the WQE posted in that slot.
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`] for a `wqe_index` beyond the ring; [`Error::LengthTooLarge`]
    /// for a byte count beyond the posted buffer; [`Error::LengthTooSmall`] for a successful
    /// receive too short to hold the GRH area and a MAD header.
    pub const fn check(&self, posted: &Posted) -> Result<()> {
        if self.wqe_index as u32 >= posted.entries {
            return Err(Error::IndexOutOfRange {
                field: "cqe.wqe_index",
                index: self.wqe_index as u64,
                limit: posted.entries as u64,
            });
        }
        if self.byte_count > posted.len {
            return Err(Error::LengthTooLarge {
                field: "cqe.byte_count",
                len: self.byte_count as u64,
                limit: posted.len as u64,
            });
        }
        #[expect(clippy::cast_possible_truncation, reason = "a 64-byte constant")]
        let min = (GRH_SIZE + MAD_HDR_SIZE) as u32;
        if matches!(self.opcode, Opcode::Recv)
            && matches!(self.status, Status::Success)
            && self.byte_count < min
        {
            return Err(Error::LengthTooSmall {
                field: "cqe.byte_count",
                len: self.byte_count as u64,
                min: min as u64,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recv() -> Cqe {
        Cqe {
            wqe_index: 7,
            qpn: 1,
            opcode: Opcode::Recv,
            byte_count: 296,
            slid: 0x11,
            pkey_index: 0,
            src_qpn: 1,
            status: Status::Success,
            syndrome: 0,
            grh: true,
            sl: 3,
            owner: true,
        }
    }

    #[test]
    fn layout_is_as_documented() {
        let mut b = [0u8; 32];
        recv().encode(&mut b).unwrap();
        assert_eq!(&b[0..2], &[7, 0]);
        assert_eq!(b[2], 1);
        assert_eq!(b[3], 0x02);
        assert_eq!(&b[4..8], &296u32.to_le_bytes());
        assert_eq!(&b[8..10], &[0x11, 0]);
        assert_eq!(&b[12..16], &[1, 0, 0, 0]);
        assert_eq!(b[16], 0, "status");
        assert_eq!(b[18], 1, "GRH flag");
        assert_eq!(b[19], 3, "sl");
        assert_eq!(b[31], 0x80, "owner in the last byte");
        assert_eq!(Cqe::decode(&b), Ok(recv()));
    }

    #[test]
    fn hostile_cqes_are_rejected() {
        let enc = |c: &Cqe| {
            let mut b = [0u8; 32];
            c.encode(&mut b).unwrap();
            b
        };
        let mut b = enc(&recv());
        b[3] = 0x09;
        assert_eq!(
            Cqe::decode(&b),
            Err(Error::UnknownOpcode {
                kind: "CQE",
                opcode: 9
            })
        );
        let mut b = enc(&recv());
        b[16] = 0x42;
        assert!(matches!(
            Cqe::decode(&b),
            Err(Error::InvalidField {
                field: "cqe.status",
                ..
            })
        ));
        let mut b = enc(&recv());
        b[2] = 2;
        assert!(matches!(
            Cqe::decode(&b),
            Err(Error::InvalidField {
                field: "cqe.qpn",
                ..
            })
        ));
        let mut b = enc(&recv());
        b[25] = 1;
        assert!(matches!(
            Cqe::decode(&b),
            Err(Error::ReservedNonZero { .. })
        ));
        let mut b = enc(&recv());
        b[31] |= 0x01;
        assert!(matches!(
            Cqe::decode(&b),
            Err(Error::ReservedNonZero { .. })
        ));
        let mut b = enc(&recv());
        b[17] = 3; // syndrome on a successful completion
        assert!(matches!(
            Cqe::decode(&b),
            Err(Error::InvalidField {
                field: "cqe.syndrome",
                ..
            })
        ));
        let send = Cqe {
            opcode: Opcode::Send,
            slid: 5,
            ..recv()
        };
        assert!(matches!(
            Cqe::decode(&enc(&send)),
            Err(Error::ReservedNonZero { .. })
        ));
        assert!(Cqe::decode(&[0u8; 31]).is_err());
    }

    #[test]
    fn check_against_posted_work() {
        let c = recv();
        assert_eq!(
            c.check(&Posted {
                entries: 8,
                len: 296
            }),
            Ok(())
        );
        assert!(matches!(
            c.check(&Posted {
                entries: 7,
                len: 296
            }),
            Err(Error::IndexOutOfRange { .. })
        ));
        assert!(matches!(
            c.check(&Posted {
                entries: 8,
                len: 295
            }),
            Err(Error::LengthTooLarge { .. })
        ));
        let short = Cqe {
            byte_count: 40,
            ..c
        };
        assert!(matches!(
            short.check(&Posted {
                entries: 8,
                len: 296
            }),
            Err(Error::LengthTooSmall { .. })
        ));
        let flushed = Cqe {
            byte_count: 0,
            status: Status::WrFlushed,
            syndrome: 0x0D,
            ..c
        };
        assert_eq!(
            flushed.check(&Posted {
                entries: 8,
                len: 296
            }),
            Ok(())
        );
    }
}
