//! Work queue entries (`docs/device.md` §6).
//!
//! A WQE occupies one ring slot of `stride` bytes (64..=512, a power of two). It starts with a
//! 16-byte control segment followed by `ds_count` 16-byte segments: either 1..=4 data segments
//! `{byte_count, lkey, addr}` or one inline segment (a 4-byte header with bit 31 set and the
//! length, then the data, zero-padded to 16 bytes). All fields are little-endian.
//!
//! [`Wqe::decode`] is what the device does on fetch and accepts nothing the interface does not
//! define; [`syndrome`] maps its errors to the code the device latches in `ERR_SYNDROME`.

use crate::error::{Error, Result};
use crate::regs::{ErrorCode, MAX_SGE};
use crate::ring::{Ring, RingIndex};
use crate::wire::{Reader, Writer};

/// Size of the control segment.
pub const CTRL_SIZE: usize = 16;
/// Size of a data segment and the unit of `ds_count`.
pub const SEG_SIZE: usize = 16;
/// The basic block: the smallest WQE stride.
pub const BASIC_BLOCK: usize = 64;
/// The reserved "local DMA" `L_Key`: addresses are adapter logical addresses, untranslated.
pub const LKEY_LOCAL_DMA: u32 = 0;
/// Bit 31 of a segment's first word marks an inline segment.
pub const INLINE_FLAG: u32 = 1 << 31;
/// Size of the inline segment header.
pub const INLINE_HDR: usize = 4;
/// The largest data segment: byte counts use 31 bits.
pub const MAX_SEG_BYTES: u32 = INLINE_FLAG - 1;

/// `ctrl.flags` bit: generate a CQE when this WQE completes successfully.
const FLAG_SIGNALED: u8 = 1 << 0;
/// `ctrl.flags` bit: set the solicited-event indication on the send.
const FLAG_SOLICITED: u8 = 1 << 1;
/// `ctrl.flags` bit: the owner bit (see [`crate::ring`]).
const FLAG_OWNER: u8 = 1 << 7;
/// Offset of the flags byte (holding the owner bit) in a WQE.
pub const OWNER_OFFSET: usize = 1;
/// The owner bit in the flags byte.
pub const OWNER_BIT: u8 = FLAG_OWNER;

/// WQE opcodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Opcode {
    /// No operation (send queues only); completes like a send of 0 bytes.
    Nop = 0x00,
    /// Unreliable-datagram send of a MAD (send queues only).
    Send = 0x0A,
    /// Receive buffer (receive queues only).
    Recv = 0x0B,
}

impl Opcode {
    /// Decodes an opcode byte.
    ///
    /// # Errors
    /// [`Error::UnknownOpcode`].
    pub const fn from_u8(v: u8) -> Result<Self> {
        match v {
            0x00 => Ok(Self::Nop),
            0x0A => Ok(Self::Send),
            0x0B => Ok(Self::Recv),
            _ => Err(Error::UnknownOpcode {
                kind: "WQE",
                opcode: v,
            }),
        }
    }
}

/// The 16-byte control segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ctrl {
    /// The operation.
    pub opcode: u8,
    /// Request a CQE on success (errors always produce one). Receive WQEs are always signalled.
    pub signaled: bool,
    /// Solicited event.
    pub solicited: bool,
    /// Owner bit: the value [`Ring::owner`] gives for this WQE's ring index.
    pub owner: bool,
    /// The slot this WQE occupies (0..entries): the device checks it against the slot it fetched.
    pub wqe_index: u16,
    /// Number of 16-byte segments after the control segment.
    pub ds_count: u8,
    /// Service level (0..=15), sends only.
    pub sl: u8,
    /// Local QP number (0 or 1): must match the queue the WQE is posted on.
    pub qpn: u8,
    /// Destination LID, sends only.
    pub dlid: u16,
    /// Destination QP number (24 bits), sends only; 0 on QP0.
    pub remote_qpn: u32,
    /// `P_Key` table index, sends only.
    pub pkey_index: u8,
    /// `Q_Key`, sends on QP1 only (QP0 ignores it and requires 0).
    pub qkey: u32,
}

impl Ctrl {
    /// Encodes the control segment into the first 16 bytes of `out`.
    ///
    /// # Errors
    /// [`Error::Truncated`] when `out` is short; [`Error::InvalidField`] for values that do not
    /// fit their fields.
    pub fn encode(&self, out: &mut [u8]) -> Result<()> {
        if self.sl > 15 {
            return Err(Error::InvalidField {
                field: "sl",
                value: u64::from(self.sl),
            });
        }
        if self.qpn > 1 {
            return Err(Error::InvalidField {
                field: "qpn",
                value: u64::from(self.qpn),
            });
        }
        if self.remote_qpn >> 24 != 0 {
            return Err(Error::InvalidField {
                field: "remote_qpn",
                value: u64::from(self.remote_qpn),
            });
        }
        let mut flags = 0;
        if self.signaled {
            flags |= FLAG_SIGNALED;
        }
        if self.solicited {
            flags |= FLAG_SOLICITED;
        }
        if self.owner {
            flags |= FLAG_OWNER;
        }
        Reader::require(out, CTRL_SIZE)?;
        let mut w = Writer::new(out);
        w.u8(self.opcode)?;
        w.u8(flags)?;
        w.u16_le(self.wqe_index)?;
        w.u8(self.ds_count)?;
        w.u8(self.sl | (self.qpn << 4))?;
        w.u16_le(self.dlid)?;
        w.bytes(&self.remote_qpn.to_le_bytes()[..3])?;
        w.u8(self.pkey_index)?;
        w.u32_le(self.qkey)
    }

    /// Decodes a control segment, checking reserved bits.
    ///
    /// # Errors
    /// [`Error::Truncated`] or [`Error::ReservedNonZero`].
    pub fn decode(buf: &[u8]) -> Result<Self> {
        let mut r = Reader::new(buf);
        let opcode = r.u8()?;
        let flags = r.u8()?;
        if flags & !(FLAG_SIGNALED | FLAG_SOLICITED | FLAG_OWNER) != 0 {
            return Err(Error::ReservedNonZero {
                field: "ctrl.flags",
                value: u64::from(flags),
            });
        }
        let wqe_index = r.u16_le()?;
        let ds_count = r.u8()?;
        let b5 = r.u8()?;
        if b5 & 0xE0 != 0 {
            return Err(Error::ReservedNonZero {
                field: "ctrl.sl_qpn",
                value: u64::from(b5),
            });
        }
        let dlid = r.u16_le()?;
        let q = r.array::<3>()?;
        let remote_qpn = u32::from_le_bytes([q[0], q[1], q[2], 0]);
        let pkey_index = r.u8()?;
        let qkey = r.u32_le()?;
        Ok(Self {
            opcode,
            signaled: flags & FLAG_SIGNALED != 0,
            solicited: flags & FLAG_SOLICITED != 0,
            owner: flags & FLAG_OWNER != 0,
            wqe_index,
            ds_count,
            sl: b5 & 0x0F,
            qpn: (b5 >> 4) & 1,
            dlid,
            remote_qpn,
            pkey_index,
            qkey,
        })
    }
}

/// A data segment: `byte_count` bytes at adapter logical address `addr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DataSeg {
    /// Bytes (1..=2^31-1).
    pub byte_count: u32,
    /// Must be [`LKEY_LOCAL_DMA`].
    pub lkey: u32,
    /// Adapter logical address (from the DMA adapter, never a physical address).
    pub addr: u64,
}

impl DataSeg {
    /// Encodes into the first 16 bytes of `out`.
    ///
    /// # Errors
    /// [`Error::Truncated`] when `out` is short.
    pub fn encode(&self, out: &mut [u8]) -> Result<()> {
        Reader::require(out, SEG_SIZE)?;
        let mut w = Writer::new(out);
        w.u32_le(self.byte_count)?;
        w.u32_le(self.lkey)?;
        w.u64_le(self.addr)
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let byte_count = r.u32_le()?;
        let lkey = r.u32_le()?;
        let addr = r.u64_le()?;
        if byte_count == 0 || byte_count > MAX_SEG_BYTES {
            return Err(Error::InvalidField {
                field: "byte_count",
                value: u64::from(byte_count),
            });
        }
        if lkey != LKEY_LOCAL_DMA {
            return Err(Error::InvalidField {
                field: "lkey",
                value: u64::from(lkey),
            });
        }
        if addr.checked_add(u64::from(byte_count)).is_none() {
            return Err(Error::InvalidField {
                field: "addr",
                value: addr,
            });
        }
        Ok(Self {
            byte_count,
            lkey,
            addr,
        })
    }
}

/// What follows the control segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload<'a> {
    /// No data (NOP).
    None,
    /// Gather (send) or scatter (receive) list.
    Segments {
        /// The segments; only the first `count` are meaningful.
        segs: [DataSeg; MAX_SGE as usize],
        /// How many segments are used (1..=4).
        count: usize,
    },
    /// Inline data carried in the WQE itself.
    Inline(&'a [u8]),
}

impl Payload<'_> {
    /// The number of 16-byte units this payload occupies.
    #[must_use]
    pub const fn ds_count(&self) -> usize {
        match self {
            Self::None => 0,
            Self::Segments { count, .. } => *count,
            Self::Inline(d) => (INLINE_HDR + d.len()).div_ceil(SEG_SIZE),
        }
    }

    /// Total bytes described.
    #[must_use]
    pub fn byte_len(&self) -> u64 {
        match self {
            Self::None => 0,
            Self::Segments { segs, count } => {
                segs[..*count].iter().map(|s| u64::from(s.byte_count)).sum()
            }
            Self::Inline(d) => d.len() as u64,
        }
    }
}

/// The limits a queue imposes on its WQEs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes per slot (64..=512, a power of two).
    pub stride: usize,
    /// Slots in the ring.
    pub entries: u32,
    /// `CAP0.MAX_SGE`.
    pub max_sge: usize,
    /// `CAP1.MAX_INLINE`.
    pub max_inline: usize,
    /// The queue's QP number (0 or 1).
    pub qpn: u8,
    /// Whether the queue is a receive queue.
    pub receive: bool,
}

/// A decoded WQE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wqe<'a> {
    /// The control segment (its `ds_count` agrees with the payload).
    pub ctrl: Ctrl,
    /// The data.
    pub payload: Payload<'a>,
}

impl<'a> Wqe<'a> {
    /// Encodes into `out` (at least `16 * (1 + ds_count)` bytes; a slot of the ring). The
    /// control segment's `ds_count` is computed from the payload. Padding of an inline segment
    /// is zeroed.
    ///
    /// # Errors
    /// [`Error::Truncated`] when the WQE does not fit `out`; [`Error::LengthTooLarge`] for more
    /// than 4 segments or over-long inline data.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize> {
        let ds = self.payload.ds_count();
        let ds_u8 = u8::try_from(ds).map_err(|_| Error::LengthTooLarge {
            field: "ds_count",
            len: ds as u64,
            limit: 255,
        })?;
        let size = CTRL_SIZE + ds * SEG_SIZE;
        Reader::require(out, size)?;
        let ctrl = Ctrl {
            ds_count: ds_u8,
            ..self.ctrl
        };
        ctrl.encode(out)?;
        match self.payload {
            Payload::None => {}
            Payload::Segments { segs, count } => {
                if count == 0 || count > MAX_SGE as usize {
                    return Err(Error::LengthTooLarge {
                        field: "segments",
                        len: count as u64,
                        limit: u64::from(MAX_SGE),
                    });
                }
                for (i, s) in segs[..count].iter().enumerate() {
                    s.encode(&mut out[CTRL_SIZE + i * SEG_SIZE..])?;
                }
            }
            Payload::Inline(data) => {
                let len = u32::try_from(data.len())
                    .ok()
                    .filter(|&l| l & INLINE_FLAG == 0 && l <= 0x3FF)
                    .ok_or(Error::LengthTooLarge {
                        field: "inline",
                        len: data.len() as u64,
                        limit: 0x3FF,
                    })?;
                let region = &mut out[CTRL_SIZE..size];
                region.fill(0);
                let mut w = Writer::new(region);
                w.u32_le(INLINE_FLAG | len)?;
                w.bytes(data)?;
            }
        }
        Ok(size)
    }

    /// Decodes and validates a WQE the way the device does on fetch.
    ///
    /// # Errors
    /// [`Error::UnknownOpcode`] for an opcode the queue does not accept; [`Error::IndexOutOfRange`]
    /// for a `wqe_index` beyond the ring; [`Error::InvalidField`] for a wrong `qpn`, an `L_Key`
    /// other than 0, a bad segment length; [`Error::LengthTooLarge`] for a segment list that
    /// does not fit the stride or the limits; [`Error::ReservedNonZero`] for stray bits.
    pub fn decode(buf: &'a [u8], lim: &Limits) -> Result<Self> {
        let slot = buf.get(..lim.stride).ok_or(Error::Truncated {
            need: lim.stride,
            have: buf.len(),
        })?;
        let ctrl = Ctrl::decode(slot)?;
        let op = Opcode::from_u8(ctrl.opcode)?;
        let op_ok = match op {
            Opcode::Recv => lim.receive,
            Opcode::Nop | Opcode::Send => !lim.receive,
        };
        if !op_ok {
            return Err(Error::UnknownOpcode {
                kind: "WQE",
                opcode: ctrl.opcode,
            });
        }
        if u32::from(ctrl.wqe_index) >= lim.entries {
            return Err(Error::IndexOutOfRange {
                field: "wqe_index",
                index: u64::from(ctrl.wqe_index),
                limit: u64::from(lim.entries),
            });
        }
        if ctrl.qpn != lim.qpn {
            return Err(Error::InvalidField {
                field: "qpn",
                value: u64::from(ctrl.qpn),
            });
        }
        let ds = usize::from(ctrl.ds_count);
        if CTRL_SIZE + ds * SEG_SIZE > lim.stride {
            return Err(Error::LengthTooLarge {
                field: "ds_count",
                len: ds as u64,
                limit: ((lim.stride - CTRL_SIZE) / SEG_SIZE) as u64,
            });
        }
        if lim.receive || op == Opcode::Nop {
            // Receive WQEs and NOPs carry no destination: those fields are reserved.
            if ctrl.sl != 0
                || ctrl.dlid != 0
                || ctrl.remote_qpn != 0
                || ctrl.pkey_index != 0
                || ctrl.qkey != 0
                || ctrl.solicited
            {
                return Err(Error::ReservedNonZero {
                    field: "ctrl.destination",
                    value: u64::from(ctrl.dlid),
                });
            }
        } else if lim.qpn == 0 && (ctrl.remote_qpn != 0 || ctrl.qkey != 0) {
            // QP0 talks only to QP0 and uses no Q_Key (IBTA 13.5.3, SMPs).
            return Err(Error::InvalidField {
                field: "remote_qpn",
                value: u64::from(ctrl.remote_qpn),
            });
        }
        let body = &slot[CTRL_SIZE..CTRL_SIZE + ds * SEG_SIZE];
        let payload = if op == Opcode::Nop {
            if ds != 0 {
                return Err(Error::LengthTooLarge {
                    field: "ds_count",
                    len: ds as u64,
                    limit: 0,
                });
            }
            Payload::None
        } else {
            Self::decode_payload(body, lim)?
        };
        Ok(Self { ctrl, payload })
    }

    fn decode_payload(body: &'a [u8], lim: &Limits) -> Result<Payload<'a>> {
        let ds = body.len() / SEG_SIZE;
        if ds == 0 {
            return Err(Error::LengthTooSmall {
                field: "ds_count",
                len: 0,
                min: 1,
            });
        }
        let first = Reader::new(body).u32_le()?;
        if first & INLINE_FLAG != 0 {
            if lim.receive {
                return Err(Error::InvalidField {
                    field: "inline",
                    value: u64::from(first),
                });
            }
            let len = (first & !INLINE_FLAG) as usize;
            if first & !INLINE_FLAG > 0x3FF {
                return Err(Error::ReservedNonZero {
                    field: "inline header",
                    value: u64::from(first),
                });
            }
            if len == 0 {
                return Err(Error::LengthTooSmall {
                    field: "inline",
                    len: 0,
                    min: 1,
                });
            }
            if len > lim.max_inline {
                return Err(Error::LengthTooLarge {
                    field: "inline",
                    len: len as u64,
                    limit: lim.max_inline as u64,
                });
            }
            if (INLINE_HDR + len).div_ceil(SEG_SIZE) != ds {
                return Err(Error::InvalidField {
                    field: "ds_count",
                    value: ds as u64,
                });
            }
            let data = &body[INLINE_HDR..INLINE_HDR + len];
            if body[INLINE_HDR + len..].iter().any(|&b| b != 0) {
                return Err(Error::ReservedNonZero {
                    field: "inline padding",
                    value: 0,
                });
            }
            return Ok(Payload::Inline(data));
        }
        if ds > lim.max_sge.min(MAX_SGE as usize) {
            return Err(Error::LengthTooLarge {
                field: "segments",
                len: ds as u64,
                limit: lim.max_sge as u64,
            });
        }
        let mut segs = [DataSeg::default(); MAX_SGE as usize];
        let mut r = Reader::new(body);
        for s in segs.iter_mut().take(ds) {
            *s = DataSeg::decode(&mut r)?;
        }
        Ok(Payload::Segments { segs, count: ds })
    }

    /// Decodes the WQE at ring index `at` and checks that it was posted there: its owner bit
    /// is the one [`Ring::owner`] gives for `at` and its `wqe_index` is `at`'s slot.
    ///
    /// # Errors
    /// [`Error::NotOwned`] when the owner bit is stale (a doorbell beyond the posted work),
    /// [`Error::IndexOutOfRange`] when the index names another slot, and every error of
    /// [`Wqe::decode`].
    pub fn decode_posted(buf: &'a [u8], lim: &Limits, ring: Ring, at: RingIndex) -> Result<Self> {
        let flags = *buf.get(OWNER_OFFSET).ok_or(Error::Truncated {
            need: CTRL_SIZE,
            have: buf.len(),
        })?;
        let owner = flags & OWNER_BIT != 0;
        if !ring.is_owned(at, owner) {
            return Err(Error::NotOwned {
                found: owner,
                expected: ring.owner(at),
            });
        }
        let wqe = Self::decode(buf, lim)?;
        if u32::from(wqe.ctrl.wqe_index) != ring.slot(at) {
            return Err(Error::IndexOutOfRange {
                field: "wqe_index",
                index: u64::from(wqe.ctrl.wqe_index),
                limit: u64::from(ring.slot(at)) + 1,
            });
        }
        Ok(wqe)
    }
}

/// The error code the device latches for a WQE that failed [`Wqe::decode_posted`].
#[must_use]
pub fn syndrome(e: &Error) -> ErrorCode {
    match e {
        Error::NotOwned { .. }
        | Error::IndexOutOfRange {
            field: "wqe_index", ..
        } => ErrorCode::WqeNotPosted,
        Error::UnknownOpcode { .. } => ErrorCode::BadOpcode,
        Error::InvalidField { field: "lkey", .. } => ErrorCode::BadLkey,
        _ => ErrorCode::BadSegment,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send_limits() -> Limits {
        Limits {
            stride: 64,
            entries: 16,
            max_sge: 4,
            max_inline: 256,
            qpn: 1,
            receive: false,
        }
    }

    fn send_ctrl() -> Ctrl {
        Ctrl {
            opcode: Opcode::Send as u8,
            signaled: true,
            owner: true,
            wqe_index: 3,
            sl: 2,
            qpn: 1,
            dlid: 0x0042,
            remote_qpn: 1,
            pkey_index: 0,
            qkey: 0x8001_0000,
            ..Ctrl::default()
        }
    }

    fn one_seg(addr: u64, len: u32) -> Payload<'static> {
        let mut segs = [DataSeg::default(); 4];
        segs[0] = DataSeg {
            byte_count: len,
            lkey: 0,
            addr,
        };
        Payload::Segments { segs, count: 1 }
    }

    #[test]
    fn control_segment_layout_is_as_documented() {
        let mut b = [0u8; 16];
        let c = Ctrl {
            ds_count: 1,
            ..send_ctrl()
        };
        c.encode(&mut b).unwrap();
        assert_eq!(b[0], 0x0A, "opcode");
        assert_eq!(b[1], 0x81, "signaled | owner");
        assert_eq!(&b[2..4], &[3, 0], "wqe_index LE");
        assert_eq!(b[4], 1, "ds_count");
        assert_eq!(b[5], 0x12, "sl 2, qpn 1");
        assert_eq!(&b[6..8], &[0x42, 0], "dlid LE");
        assert_eq!(&b[8..11], &[1, 0, 0], "remote qpn 24-bit LE");
        assert_eq!(b[11], 0, "pkey index");
        assert_eq!(&b[12..16], &0x8001_0000u32.to_le_bytes(), "qkey");
        assert_eq!(Ctrl::decode(&b), Ok(c));
    }

    #[test]
    fn data_segment_round_trip() {
        let mut slot = [0u8; 64];
        let w = Wqe {
            ctrl: send_ctrl(),
            payload: one_seg(0x1_2345_6000, 256),
        };
        assert_eq!(w.encode(&mut slot), Ok(32));
        assert_eq!(&slot[16..20], &256u32.to_le_bytes());
        assert_eq!(&slot[20..24], &[0; 4], "reserved L_Key");
        assert_eq!(&slot[24..32], &0x1_2345_6000u64.to_le_bytes());
        let d = Wqe::decode(&slot, &send_limits()).unwrap();
        assert_eq!(d.ctrl.ds_count, 1);
        assert_eq!(d.payload, w.payload);
    }

    #[test]
    fn inline_round_trip_and_padding() {
        let data = [0x5Au8; 37];
        let mut slot = [0xFFu8; 128];
        let w = Wqe {
            ctrl: send_ctrl(),
            payload: Payload::Inline(&data),
        };
        // 4 + 37 = 41 bytes -> 3 units.
        assert_eq!(w.encode(&mut slot), Ok(16 + 48));
        assert_eq!(&slot[16..20], &(INLINE_FLAG | 0x25).to_le_bytes());
        assert!(slot[16 + 41..64].iter().all(|&b| b == 0), "padding zeroed");
        let lim = Limits {
            stride: 128,
            ..send_limits()
        };
        assert_eq!(
            Wqe::decode(&slot, &lim).unwrap().payload,
            Payload::Inline(&data)
        );
        // Dirty padding is rejected.
        slot[63] = 1;
        assert!(matches!(
            Wqe::decode(&slot, &lim),
            Err(Error::ReservedNonZero { .. })
        ));
    }

    #[test]
    fn full_mad_inline_needs_a_512_byte_stride() {
        let mad = [1u8; 256];
        let mut slot = [0u8; 512];
        let w = Wqe {
            ctrl: send_ctrl(),
            payload: Payload::Inline(&mad),
        };
        let n = w.encode(&mut slot).unwrap();
        assert_eq!(n, 16 + 272);
        assert!(
            Wqe::decode(
                &slot,
                &Limits {
                    stride: 512,
                    ..send_limits()
                }
            )
            .is_ok()
        );
        assert!(
            Wqe::decode(
                &slot,
                &Limits {
                    stride: 256,
                    ..send_limits()
                }
            )
            .is_err()
        );
        assert!(
            Wqe::decode(
                &slot,
                &Limits {
                    stride: 512,
                    max_inline: 255,
                    ..send_limits()
                }
            )
            .is_err()
        );
    }

    #[test]
    fn rejects_each_invalid_field() {
        let lim = send_limits();
        let good = || {
            let mut s = [0u8; 64];
            Wqe {
                ctrl: send_ctrl(),
                payload: one_seg(0x1000, 256),
            }
            .encode(&mut s)
            .unwrap();
            s
        };
        let mut s = good();
        s[0] = 0x0B; // Recv opcode on a send queue.
        assert_eq!(
            syndrome(&Wqe::decode(&s, &lim).unwrap_err()),
            ErrorCode::BadOpcode
        );
        let mut s = good();
        s[0] = 0x77;
        assert_eq!(
            Wqe::decode(&s, &lim),
            Err(Error::UnknownOpcode {
                kind: "WQE",
                opcode: 0x77
            })
        );
        let mut s = good();
        s[2] = 16; // wqe_index beyond a 16-entry ring.
        assert!(matches!(
            Wqe::decode(&s, &lim),
            Err(Error::IndexOutOfRange {
                field: "wqe_index",
                ..
            })
        ));
        let mut s = good();
        s[20] = 1; // lkey 1
        let e = Wqe::decode(&s, &lim).unwrap_err();
        assert_eq!(syndrome(&e), ErrorCode::BadLkey);
        let mut s = good();
        s[16..20].fill(0); // byte_count 0
        assert_eq!(
            syndrome(&Wqe::decode(&s, &lim).unwrap_err()),
            ErrorCode::BadSegment
        );
        let mut s = good();
        s[4] = 4; // ds_count 4 does not fit a 64-byte stride
        assert!(matches!(
            Wqe::decode(&s, &lim),
            Err(Error::LengthTooLarge {
                field: "ds_count",
                ..
            })
        ));
        let mut s = good();
        s[5] = 0x02; // qpn 0 on QP1's queue
        assert!(matches!(
            Wqe::decode(&s, &lim),
            Err(Error::InvalidField { field: "qpn", .. })
        ));
        let mut s = good();
        s[1] |= 0x10; // reserved flag
        assert!(matches!(
            Wqe::decode(&s, &lim),
            Err(Error::ReservedNonZero { .. })
        ));
        let mut s = good();
        s[24..32].copy_from_slice(&u64::MAX.to_le_bytes()); // address wraps
        assert!(matches!(
            Wqe::decode(&s, &lim),
            Err(Error::InvalidField { field: "addr", .. })
        ));
        assert!(Wqe::decode(&good()[..63], &lim).is_err());
    }

    #[test]
    fn receive_wqe_rules() {
        let lim = Limits {
            stride: 64,
            entries: 8,
            max_sge: 1,
            max_inline: 0,
            qpn: 0,
            receive: true,
        };
        let ctrl = Ctrl {
            opcode: Opcode::Recv as u8,
            owner: true,
            ..Ctrl::default()
        };
        let mut s = [0u8; 64];
        Wqe {
            ctrl,
            payload: one_seg(0x2000, 296),
        }
        .encode(&mut s)
        .unwrap();
        assert!(Wqe::decode(&s, &lim).is_ok());
        // Destination fields are reserved on receive WQEs.
        let mut bad = s;
        bad[6] = 1;
        assert!(matches!(
            Wqe::decode(&bad, &lim),
            Err(Error::ReservedNonZero { .. })
        ));
        // Two segments exceed max_sge 1.
        let mut segs = [DataSeg {
            byte_count: 8,
            lkey: 0,
            addr: 0,
        }; 4];
        segs[1].addr = 64;
        Wqe {
            ctrl,
            payload: Payload::Segments { segs, count: 2 },
        }
        .encode(&mut s)
        .unwrap();
        assert!(matches!(
            Wqe::decode(&s, &lim),
            Err(Error::LengthTooLarge {
                field: "segments",
                ..
            })
        ));
        // Inline data on a receive queue.
        Wqe {
            ctrl,
            payload: Payload::Inline(&[1, 2, 3]),
        }
        .encode(&mut s)
        .unwrap();
        assert!(Wqe::decode(&s, &lim).is_err());
    }

    #[test]
    fn qp0_sends_have_no_qkey_or_remote_qpn() {
        let lim = Limits {
            qpn: 0,
            ..send_limits()
        };
        let mut s = [0u8; 64];
        let ctrl = Ctrl {
            qpn: 0,
            remote_qpn: 0,
            qkey: 0,
            ..send_ctrl()
        };
        Wqe {
            ctrl,
            payload: one_seg(0x1000, 256),
        }
        .encode(&mut s)
        .unwrap();
        assert!(Wqe::decode(&s, &lim).is_ok());
        Wqe {
            ctrl: Ctrl {
                remote_qpn: 1,
                ..ctrl
            },
            payload: one_seg(0x1000, 256),
        }
        .encode(&mut s)
        .unwrap();
        assert!(Wqe::decode(&s, &lim).is_err());
    }

    #[test]
    fn posted_check_uses_owner_and_slot() {
        let ring = Ring::new(16).unwrap();
        let lim = send_limits();
        let at = ring.index(3).unwrap();
        let mut s = [0u8; 64];
        Wqe {
            ctrl: send_ctrl(),
            payload: one_seg(0x1000, 256),
        }
        .encode(&mut s)
        .unwrap();
        assert!(Wqe::decode_posted(&s, &lim, ring, at).is_ok());
        // The same slot on the next lap expects owner 0: the stale WQE is "not posted".
        let next_lap = ring.index(19).unwrap();
        let e = Wqe::decode_posted(&s, &lim, ring, next_lap).unwrap_err();
        assert_eq!(
            e,
            Error::NotOwned {
                found: true,
                expected: false
            }
        );
        assert_eq!(syndrome(&e), ErrorCode::WqeNotPosted);
        // A WQE written for slot 3 found in slot 4.
        let e = Wqe::decode_posted(&s, &lim, ring, ring.index(4).unwrap()).unwrap_err();
        assert_eq!(syndrome(&e), ErrorCode::WqeNotPosted);
        // A zeroed slot on lap 0 is never posted.
        assert!(matches!(
            Wqe::decode_posted(&[0u8; 64], &lim, ring, at),
            Err(Error::NotOwned { .. })
        ));
    }
}
