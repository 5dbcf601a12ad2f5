//! The BAR0 register map (`docs/device.md` §2–§3), as typed constants.
//!
//! Every register is a 32-bit little-endian location; the driver accesses it with one 32-bit
//! MMIO read or write. [`REGISTERS`] lists every fixed register with its access type and reset
//! value, so that the device model builds its register file from the same table the driver
//! programs against, and a test checks this table against the datasheet.
//!
//! Per-queue and per-engine registers are grouped in blocks; the `wq`, `cq`, `se` and `db`
//! helpers compute their offsets and reject indices beyond the architectural limits.

use crate::error::{Error, Result};

/// How software may access a register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read-only: writes are ignored.
    Ro,
    /// Read-write.
    Rw,
    /// Read, write-1-to-clear.
    W1c,
    /// Write-only: reads return 0.
    Wo,
}

impl Access {
    /// The abbreviation `docs/device.md` uses.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ro => "RO",
            Self::Rw => "RW",
            Self::W1c => "W1C",
            Self::Wo => "WO",
        }
    }
}

/// One 32-bit register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reg {
    /// The name `docs/device.md` uses.
    pub name: &'static str,
    /// Byte offset in BAR0.
    pub offset: u32,
    /// Software access.
    pub access: Access,
    /// Value after reset (for capability registers: the device model's default configuration).
    pub reset: u32,
}

/// A bit field inside a register or structure word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// Position of the least significant bit.
    pub shift: u32,
    /// Number of bits (1..=32).
    pub width: u32,
}

impl Field {
    /// A field of `width` bits at `shift`.
    ///
    /// # Panics
    /// When the field does not fit a 32-bit word; every use is in a constant, so this is a
    /// compile-time error in practice.
    #[must_use]
    pub const fn new(shift: u32, width: u32) -> Self {
        assert!(
            width >= 1 && shift + width <= 32,
            "field outside a 32-bit word"
        );
        Self { shift, width }
    }

    /// The field's bits, in place.
    #[must_use]
    pub const fn mask(self) -> u32 {
        (u32::MAX >> (32 - self.width)) << self.shift
    }

    /// The field's value in `word`.
    #[must_use]
    pub const fn get(self, word: u32) -> u32 {
        (word & self.mask()) >> self.shift
    }

    /// `word` with the field set to `value` (bits of `value` beyond the width are dropped).
    #[must_use]
    pub const fn set(self, word: u32, value: u32) -> u32 {
        (word & !self.mask()) | ((value << self.shift) & self.mask())
    }

    /// `word` with the field set to `value`, refusing values that do not fit.
    ///
    /// # Errors
    /// [`Error::InvalidField`] when `value` needs more than `width` bits.
    pub const fn try_set(self, word: u32, value: u32, name: &'static str) -> Result<u32> {
        if self.width < 32 && value >> self.width != 0 {
            return Err(Error::InvalidField {
                field: name,
                value: value as u64,
            });
        }
        Ok(self.set(word, value))
    }
}

/// A single-bit flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bit(pub u32);

impl Bit {
    /// The bit's mask.
    #[must_use]
    pub const fn mask(self) -> u32 {
        1 << self.0
    }

    /// Whether the bit is set in `word`.
    #[must_use]
    pub const fn is_set(self, word: u32) -> bool {
        word & self.mask() != 0
    }
}

/// `ID`: reads "RHCA" as bytes in memory order.
pub const ID: Reg = Reg {
    name: "ID",
    offset: 0x000,
    access: Access::Ro,
    reset: ID_VALUE,
};
/// The value of `ID`.
pub const ID_VALUE: u32 = u32::from_le_bytes(*b"RHCA");
/// `VERSION`: interface major.minor.
pub const VERSION: Reg = Reg {
    name: "VERSION",
    offset: 0x004,
    access: Access::Ro,
    reset: 0x0001_0000,
};
/// `VERSION.MINOR`.
pub const VERSION_MINOR: Field = Field::new(0, 16);
/// `VERSION.MAJOR`: a driver refuses a device whose major version it does not know.
pub const VERSION_MAJOR: Field = Field::new(16, 16);
/// The interface major version this crate implements.
pub const INTERFACE_MAJOR: u32 = 1;

/// `CAP0`: DMA width and queue limits.
pub const CAP0: Reg = Reg {
    name: "CAP0",
    offset: 0x008,
    access: Access::Ro,
    reset: 0x040D_0C40,
};
/// `CAP0.DMA_WIDTH`: address bits the device drives (32 or 64).
pub const CAP0_DMA_WIDTH: Field = Field::new(0, 8);
/// `CAP0.LOG_MAX_WQ`: log2 of the largest work queue.
pub const CAP0_LOG_MAX_WQ: Field = Field::new(8, 8);
/// `CAP0.LOG_MAX_CQ`: log2 of the largest completion queue.
pub const CAP0_LOG_MAX_CQ: Field = Field::new(16, 8);
/// `CAP0.MAX_SGE`: data segments per WQE (1..=4).
pub const CAP0_MAX_SGE: Field = Field::new(24, 4);

/// `CAP1`: inline limit, interrupts, stream engines, WQE stride.
pub const CAP1: Reg = Reg {
    name: "CAP1",
    offset: 0x00C,
    access: Access::Ro,
    reset: 0x9204_0100,
};
/// `CAP1.MAX_INLINE`: bytes of inline data a send WQE may carry.
pub const CAP1_MAX_INLINE: Field = Field::new(0, 16);
/// `CAP1.MSIX_VECTORS`: MSI-X table size.
pub const CAP1_MSIX_VECTORS: Field = Field::new(16, 8);
/// `CAP1.STREAM_ENGINES`: stream engines present (0..=8).
pub const CAP1_STREAM_ENGINES: Field = Field::new(24, 4);
/// `CAP1.LOG_MAX_STRIDE`: log2 of the largest WQE stride (6..=9).
pub const CAP1_LOG_MAX_STRIDE: Field = Field::new(28, 4);

/// `CAP2`: stream engine limits.
pub const CAP2: Reg = Reg {
    name: "CAP2",
    offset: 0x010,
    access: Access::Ro,
    reset: 0x0C10_140C,
};
/// `CAP2.LOG_MIN_SEG`: log2 of the smallest segment size.
pub const CAP2_LOG_MIN_SEG: Field = Field::new(0, 8);
/// `CAP2.LOG_MAX_SEG`: log2 of the largest segment size.
pub const CAP2_LOG_MAX_SEG: Field = Field::new(8, 8);
/// `CAP2.LOG_MAX_DESC`: log2 of the most stream descriptors per engine.
pub const CAP2_LOG_MAX_DESC: Field = Field::new(16, 8);
/// `CAP2.LOG_MAX_SEGS`: log2 of the most segments per circular buffer.
pub const CAP2_LOG_MAX_SEGS: Field = Field::new(24, 8);

/// `CTRL`: reset, enable, quiesce.
pub const CTRL: Reg = Reg {
    name: "CTRL",
    offset: 0x014,
    access: Access::Rw,
    reset: 0,
};
/// `CTRL.RESET`: write 1 to reset; self-clearing, reads 0.
pub const CTRL_RESET: Bit = Bit(0);
/// `CTRL.ENABLE`: the device processes doorbells and performs DMA.
pub const CTRL_ENABLE: Bit = Bit(1);
/// `CTRL.QUIESCE`: stop all DMA; acknowledged by `STATUS.QUIESCED`.
pub const CTRL_QUIESCE: Bit = Bit(2);

/// `STATUS`: device state. Reserved bits read 0, so all-ones means the device is gone.
pub const STATUS: Reg = Reg {
    name: "STATUS",
    offset: 0x018,
    access: Access::Ro,
    reset: 0x0000_0001,
};
/// `STATUS.READY`: reset complete.
pub const STATUS_READY: Bit = Bit(0);
/// `STATUS.ENABLED`: `CTRL.ENABLE` has taken effect.
pub const STATUS_ENABLED: Bit = Bit(1);
/// `STATUS.QUIESCED`: no DMA is in progress and none will start.
pub const STATUS_QUIESCED: Bit = Bit(2);
/// `STATUS.FATAL`: an unrecoverable error; only a reset clears it.
pub const STATUS_FATAL: Bit = Bit(3);
/// Bits of `STATUS` that may read 1 on a present device.
pub const STATUS_DEFINED: u32 = 0xF;
/// What every MMIO read returns once the device has been removed.
pub const ALL_ONES: u32 = u32::MAX;

/// `INT_CFG`: interrupt delivery.
pub const INT_CFG: Reg = Reg {
    name: "INT_CFG",
    offset: 0x01C,
    access: Access::Rw,
    reset: 0,
};
/// `INT_CFG.NVEC`: MSI-X vectors in use (0: `INTx`).
pub const INT_CFG_NVEC: Field = Field::new(0, 8);

/// `INT_CAUSE`: pending interrupt causes (write 1 to clear).
pub const INT_CAUSE: Reg = Reg {
    name: "INT_CAUSE",
    offset: 0x020,
    access: Access::W1c,
    reset: 0,
};
/// `INT_MASK`: 1 masks the cause bit of the same position.
pub const INT_MASK: Reg = Reg {
    name: "INT_MASK",
    offset: 0x024,
    access: Access::Rw,
    reset: u32::MAX,
};
/// `ERR_SYNDROME`: the first error since it was last cleared.
pub const ERR_SYNDROME: Reg = Reg {
    name: "ERR_SYNDROME",
    offset: 0x028,
    access: Access::Ro,
    reset: 0,
};
/// `ERR_SYNDROME.CODE`: an [`ErrorCode`].
pub const ERR_SYNDROME_CODE: Field = Field::new(0, 8);
/// `ERR_SYNDROME.SOURCE`: an [`ErrorSource`] encoding.
pub const ERR_SYNDROME_SOURCE: Field = Field::new(8, 8);
/// `ERR_INFO`: code-specific detail (a ring index, a length, a credit count).
pub const ERR_INFO: Reg = Reg {
    name: "ERR_INFO",
    offset: 0x02C,
    access: Access::Ro,
    reset: 0,
};
/// `ERR_ADDR_LO`: the logical address involved, low half.
pub const ERR_ADDR_LO: Reg = Reg {
    name: "ERR_ADDR_LO",
    offset: 0x030,
    access: Access::Ro,
    reset: 0,
};
/// `ERR_ADDR_HI`: the logical address involved, high half.
pub const ERR_ADDR_HI: Reg = Reg {
    name: "ERR_ADDR_HI",
    offset: 0x034,
    access: Access::Ro,
    reset: 0,
};
/// `PORT_STATE`: the port's logical state and LID.
pub const PORT_STATE: Reg = Reg {
    name: "PORT_STATE",
    offset: 0x040,
    access: Access::Ro,
    reset: 0x0000_0001,
};
/// `PORT_STATE.STATE`: 1 Down, 2 Init, 3 Armed, 4 Active (IBTA `PortInfo:PortState`).
pub const PORT_STATE_STATE: Field = Field::new(0, 4);
/// `PORT_STATE.LID`: the port's base LID (0 until assigned).
pub const PORT_STATE_LID: Field = Field::new(16, 16);
/// `NODE_GUID_LO`: node GUID, low half.
pub const NODE_GUID_LO: Reg = Reg {
    name: "NODE_GUID_LO",
    offset: 0x048,
    access: Access::Ro,
    reset: 0,
};
/// `NODE_GUID_HI`: node GUID, high half.
pub const NODE_GUID_HI: Reg = Reg {
    name: "NODE_GUID_HI",
    offset: 0x04C,
    access: Access::Ro,
    reset: 0,
};

/// Every fixed (non-block) register, in offset order.
pub const REGISTERS: &[Reg] = &[
    ID,
    VERSION,
    CAP0,
    CAP1,
    CAP2,
    CTRL,
    STATUS,
    INT_CFG,
    INT_CAUSE,
    INT_MASK,
    ERR_SYNDROME,
    ERR_INFO,
    ERR_ADDR_LO,
    ERR_ADDR_HI,
    PORT_STATE,
    NODE_GUID_LO,
    NODE_GUID_HI,
];

/// Interrupt cause bits (`INT_CAUSE`, `INT_MASK`).
pub mod cause {
    /// Completion event on CQ `n` (bits 0..=3).
    #[must_use]
    pub const fn cq(n: u32) -> u32 {
        1 << (n & 3)
    }
    /// Stream engine `n` completed one or more segments (bits 8..=15).
    #[must_use]
    pub const fn se_segment(n: u32) -> u32 {
        1 << (8 + (n & 7))
    }
    /// Stream engine `n` acknowledged a stop (bits 16..=23).
    #[must_use]
    pub const fn se_stopped(n: u32) -> u32 {
        1 << (16 + (n & 7))
    }
    /// Port state changed.
    pub const PORT: u32 = 1 << 30;
    /// An error was latched in `ERR_SYNDROME`.
    pub const ERROR: u32 = 1 << 31;
    /// All CQ cause bits.
    pub const ALL_CQ: u32 = 0x0000_000F;
    /// All stream-engine cause bits.
    pub const ALL_SE: u32 = 0x00FF_FF00;
    /// Every defined cause bit.
    pub const DEFINED: u32 = ALL_CQ | ALL_SE | PORT | ERROR;

    /// The MSI-X vector a cause bit is signalled on when `nvec` vectors are enabled.
    ///
    /// Vector 0 carries errors and port events, vector 1 the completion queues, vector `2 + n`
    /// stream engine `n`; a cause whose vector is not enabled falls back to vector 0.
    #[must_use]
    pub const fn vector(cause_bit: u32, nvec: u32) -> u32 {
        let v = if cause_bit < 4 {
            1
        } else if cause_bit >= 8 && cause_bit < 16 {
            2 + (cause_bit - 8)
        } else if cause_bit >= 16 && cause_bit < 24 {
            2 + (cause_bit - 16)
        } else {
            0
        };
        if v < nvec { v } else { 0 }
    }
}

/// Error codes latched in `ERR_SYNDROME.CODE` and reported in CQE `syndrome` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ErrorCode {
    /// No error.
    None = 0x00,
    /// A DMA read by logical address failed (master abort or remapping fault).
    DmaReadFault = 0x01,
    /// A DMA write by logical address failed.
    DmaWriteFault = 0x02,
    /// A doorbell covered a slot whose WQE was not posted (owner bit or index mismatch).
    WqeNotPosted = 0x03,
    /// A doorbell index that is not a ring index or is more than a ring ahead.
    DoorbellOverrun = 0x04,
    /// A WQE opcode the queue does not accept.
    BadOpcode = 0x05,
    /// A malformed WQE segment list (count, stride, length, inline size).
    BadSegment = 0x06,
    /// An `L_Key` other than the reserved local DMA key 0.
    BadLkey = 0x07,
    /// A completion arrived while the CQ was full.
    CqOverflow = 0x08,
    /// Invalid queue configuration (size, stride, alignment, binding).
    BadQueueConfig = 0x09,
    /// Invalid stream engine configuration or descriptor table.
    BadStreamConfig = 0x0A,
    /// More credits granted than segments exist.
    CreditOverflow = 0x0B,
    /// A CQ consumer index beyond the producer index.
    BadCqIndex = 0x0C,
    /// A doorbell arrived while the device was not enabled, or while quiescing.
    NotEnabled = 0x0D,
}

impl ErrorCode {
    /// Decodes `ERR_SYNDROME.CODE`.
    ///
    /// # Errors
    /// [`Error::InvalidField`] for an undefined code.
    pub const fn from_u8(v: u8) -> Result<Self> {
        Ok(match v {
            0x00 => Self::None,
            0x01 => Self::DmaReadFault,
            0x02 => Self::DmaWriteFault,
            0x03 => Self::WqeNotPosted,
            0x04 => Self::DoorbellOverrun,
            0x05 => Self::BadOpcode,
            0x06 => Self::BadSegment,
            0x07 => Self::BadLkey,
            0x08 => Self::CqOverflow,
            0x09 => Self::BadQueueConfig,
            0x0A => Self::BadStreamConfig,
            0x0B => Self::CreditOverflow,
            0x0C => Self::BadCqIndex,
            0x0D => Self::NotEnabled,
            _ => {
                return Err(Error::InvalidField {
                    field: "ERR_SYNDROME.CODE",
                    value: v as u64,
                });
            }
        })
    }
}

/// Which part of the device latched an error (`ERR_SYNDROME.SOURCE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorSource {
    /// Work queue `n` (0x00..=0x03).
    Wq(u8),
    /// Completion queue `n` (0x10..=0x13).
    Cq(u8),
    /// Stream engine `n` (0x20..=0x27).
    StreamEngine(u8),
    /// The device as a whole (0xFF).
    Device,
}

impl ErrorSource {
    /// The encoding in `ERR_SYNDROME.SOURCE`.
    #[must_use]
    pub const fn encode(self) -> u8 {
        match self {
            Self::Wq(n) => n & 0x03,
            Self::Cq(n) => 0x10 | (n & 0x03),
            Self::StreamEngine(n) => 0x20 | (n & 0x07),
            Self::Device => 0xFF,
        }
    }

    /// Decodes `ERR_SYNDROME.SOURCE`.
    ///
    /// # Errors
    /// [`Error::InvalidField`] for an undefined encoding.
    pub const fn decode(v: u8) -> Result<Self> {
        match v {
            0x00..=0x03 => Ok(Self::Wq(v)),
            0x10..=0x13 => Ok(Self::Cq(v & 0x03)),
            0x20..=0x27 => Ok(Self::StreamEngine(v & 0x07)),
            0xFF => Ok(Self::Device),
            _ => Err(Error::InvalidField {
                field: "ERR_SYNDROME.SOURCE",
                value: v as u64,
            }),
        }
    }
}

/// Number of work queues: QP0 send, QP0 receive, QP1 send, QP1 receive.
pub const NUM_WQ: u32 = 4;
/// Number of completion queues.
pub const NUM_CQ: u32 = 4;
/// Most stream engines the interface defines.
pub const MAX_STREAM_ENGINES: u32 = 8;

/// The work queues (`WQn`), by the QP and direction they serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum WqId {
    /// QP0 (SMI) send queue.
    Qp0Send = 0,
    /// QP0 (SMI) receive queue.
    Qp0Recv = 1,
    /// QP1 (GSI) send queue.
    Qp1Send = 2,
    /// QP1 (GSI) receive queue.
    Qp1Recv = 3,
}

impl WqId {
    /// All work queues in register-block order.
    pub const ALL: [Self; 4] = [Self::Qp0Send, Self::Qp0Recv, Self::Qp1Send, Self::Qp1Recv];

    /// The queue for `qpn` (0 or 1) and direction.
    ///
    /// # Errors
    /// [`Error::InvalidField`] for a QP number other than 0 or 1.
    pub const fn new(qpn: u32, receive: bool) -> Result<Self> {
        match (qpn, receive) {
            (0, false) => Ok(Self::Qp0Send),
            (0, true) => Ok(Self::Qp0Recv),
            (1, false) => Ok(Self::Qp1Send),
            (1, true) => Ok(Self::Qp1Recv),
            _ => Err(Error::InvalidField {
                field: "qpn",
                value: qpn as u64,
            }),
        }
    }

    /// The queue with register-block index `n`.
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`] for `n >= 4`.
    pub const fn from_index(n: u32) -> Result<Self> {
        match n {
            0 => Ok(Self::Qp0Send),
            1 => Ok(Self::Qp0Recv),
            2 => Ok(Self::Qp1Send),
            3 => Ok(Self::Qp1Recv),
            _ => Err(Error::IndexOutOfRange {
                field: "WQ",
                index: n as u64,
                limit: NUM_WQ as u64,
            }),
        }
    }

    /// The register-block index.
    #[must_use]
    pub const fn index(self) -> u32 {
        self as u32
    }

    /// The QP number (0 or 1).
    #[must_use]
    pub const fn qpn(self) -> u32 {
        self.index() >> 1
    }

    /// Whether this is a receive queue.
    #[must_use]
    pub const fn is_receive(self) -> bool {
        self.index() & 1 == 1
    }
}

/// Offsets within a work-queue register block (`WQn`, 0x20 bytes at `0x100 + n * 0x20`).
pub mod wq {
    use super::{Bit, Field, WqId};

    /// Base of WQ block 0.
    pub const BLOCK_BASE: u32 = 0x100;
    /// Size of each WQ block.
    pub const BLOCK_SIZE: u32 = 0x20;
    /// `BASE_LO` (RW): ring (or page-list) logical address, low half; page aligned.
    pub const BASE_LO: u32 = 0x00;
    /// `BASE_HI` (RW): high half.
    pub const BASE_HI: u32 = 0x04;
    /// `CFG` (RW).
    pub const CFG: u32 = 0x08;
    /// `STATUS` (RO).
    pub const STATUS: u32 = 0x0C;
    /// `CFG.LOG_ENTRIES`.
    pub const CFG_LOG_ENTRIES: Field = Field::new(0, 5);
    /// `CFG.LOG_STRIDE`: log2 of the WQE size (6..=`CAP1.LOG_MAX_STRIDE`).
    pub const CFG_LOG_STRIDE: Field = Field::new(8, 4);
    /// `CFG.CQN`: the completion queue this work queue reports to.
    pub const CFG_CQN: Field = Field::new(16, 2);
    /// `CFG.PAGE_LIST`: `BASE` points at a page list, not at the ring.
    pub const CFG_PAGE_LIST: Bit = Bit(24);
    /// `CFG.VALID`: writing 1 creates the queue, 0 destroys it.
    pub const CFG_VALID: Bit = Bit(31);
    /// `STATUS.HW_INDEX`: ring index of the next WQE the device will fetch.
    pub const STATUS_HW_INDEX: Field = Field::new(0, 16);
    /// `STATUS.ERROR`: the queue stopped on an error.
    pub const STATUS_ERROR: Bit = Bit(31);

    /// Absolute BAR0 offset of register `reg` of `wq`.
    #[must_use]
    pub const fn offset(wq: WqId, reg: u32) -> u32 {
        BLOCK_BASE + wq.index() * BLOCK_SIZE + reg
    }
}

/// Offsets within a completion-queue register block (`CQn`, 0x20 bytes at `0x200 + n * 0x20`).
pub mod cq {
    use super::{Bit, Error, Field, NUM_CQ, Result};

    /// Base of CQ block 0.
    pub const BLOCK_BASE: u32 = 0x200;
    /// Size of each CQ block.
    pub const BLOCK_SIZE: u32 = 0x20;
    /// `BASE_LO` (RW).
    pub const BASE_LO: u32 = 0x00;
    /// `BASE_HI` (RW).
    pub const BASE_HI: u32 = 0x04;
    /// `CFG` (RW).
    pub const CFG: u32 = 0x08;
    /// `STATUS` (RO).
    pub const STATUS: u32 = 0x0C;
    /// `MOD` (RW): interrupt moderation.
    pub const MOD: u32 = 0x10;
    /// `CFG.LOG_ENTRIES`.
    pub const CFG_LOG_ENTRIES: Field = Field::new(0, 5);
    /// `CFG.PAGE_LIST`.
    pub const CFG_PAGE_LIST: Bit = Bit(24);
    /// `CFG.VALID`.
    pub const CFG_VALID: Bit = Bit(31);
    /// `STATUS.PRODUCER`: ring index of the next CQE the device will write.
    pub const STATUS_PRODUCER: Field = Field::new(0, 16);
    /// `STATUS.ARMED`.
    pub const STATUS_ARMED: Bit = Bit(29);
    /// `STATUS.OVERFLOW`.
    pub const STATUS_OVERFLOW: Bit = Bit(30);
    /// `STATUS.ERROR`.
    pub const STATUS_ERROR: Bit = Bit(31);
    /// `MOD.COUNT`: raise the event after this many CQEs (0 or 1: every CQE).
    pub const MOD_COUNT: Field = Field::new(0, 16);
    /// `MOD.USEC`: or after this many microseconds since the first unsignalled CQE (0: off).
    pub const MOD_USEC: Field = Field::new(16, 16);

    /// Absolute BAR0 offset of register `reg` of CQ `n`.
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`] for `n >= 4`.
    pub const fn offset(n: u32, reg: u32) -> Result<u32> {
        if n >= NUM_CQ {
            return Err(Error::IndexOutOfRange {
                field: "CQ",
                index: n as u64,
                limit: NUM_CQ as u64,
            });
        }
        Ok(BLOCK_BASE + n * BLOCK_SIZE + reg)
    }
}

/// Offsets within a stream-engine register block (`SEn`, 0x40 bytes at `0x400 + n * 0x40`).
pub mod se {
    use super::{Bit, Error, Field, MAX_STREAM_ENGINES, Result};

    /// Base of SE block 0.
    pub const BLOCK_BASE: u32 = 0x400;
    /// Size of each SE block.
    pub const BLOCK_SIZE: u32 = 0x40;
    /// `DESC_LO` (RW): descriptor table logical address, low half; 64-byte aligned.
    pub const DESC_LO: u32 = 0x00;
    /// `DESC_HI` (RW).
    pub const DESC_HI: u32 = 0x04;
    /// `DESC_COUNT` (RW): descriptor table entries.
    pub const DESC_COUNT: u32 = 0x08;
    /// `SEG_SIZE` (RW): bytes per segment.
    pub const SEG_SIZE: u32 = 0x0C;
    /// `SEG_COUNT` (RW): segments in the circular buffer.
    pub const SEG_COUNT: u32 = 0x10;
    /// `REC_LO` (RW): completion record ring logical address, low half; 64-byte aligned.
    pub const REC_LO: u32 = 0x14;
    /// `REC_HI` (RW).
    pub const REC_HI: u32 = 0x18;
    /// `CTRL` (RW).
    pub const CTRL: u32 = 0x1C;
    /// `STATUS` (RO).
    pub const STATUS: u32 = 0x20;
    /// `SEQ` (RO): low 32 bits of the number of segments completed since START.
    pub const SEQ: u32 = 0x24;
    /// `MOD` (RW): interrupt moderation, as `CQn.MOD`.
    pub const MOD: u32 = 0x28;
    /// `CTRL.START`: write 1 to start (self-clearing).
    pub const CTRL_START: Bit = Bit(0);
    /// `CTRL.STOP`: write 1 to stop (self-clearing); acknowledged by `STATUS.STOPPED`.
    pub const CTRL_STOP: Bit = Bit(1);
    /// `CTRL.DIR`: 0 capture (device to host), 1 playback (host to device).
    pub const CTRL_DIR: Bit = Bit(8);
    /// `CTRL.VERIFY`: in playback, check the data against the pattern of `docs/device.md` §8.4.
    pub const CTRL_VERIFY: Bit = Bit(9);
    /// `CTRL.SEG_TABLE`: segment-table mode (`docs/device.md` §8.2): `DESC_COUNT` entries per
    /// segment, re-read each time the engine begins a segment.
    pub const CTRL_SEG_TABLE: Bit = Bit(10);
    /// `STATUS.RUNNING`.
    pub const STATUS_RUNNING: Bit = Bit(0);
    /// `STATUS.STOPPED`: the engine has stopped and will not touch the buffer again.
    pub const STATUS_STOPPED: Bit = Bit(1);
    /// `STATUS.ERROR`.
    pub const STATUS_ERROR: Bit = Bit(2);
    /// `STATUS.CREDITS`: segments the engine currently holds.
    pub const STATUS_CREDITS: Field = Field::new(16, 16);

    /// Absolute BAR0 offset of register `reg` of stream engine `n`.
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`] for `n >= 8`.
    pub const fn offset(n: u32, reg: u32) -> Result<u32> {
        if n >= MAX_STREAM_ENGINES {
            return Err(Error::IndexOutOfRange {
                field: "stream engine",
                index: n as u64,
                limit: MAX_STREAM_ENGINES as u64,
            });
        }
        Ok(BLOCK_BASE + n * BLOCK_SIZE + reg)
    }
}

/// The doorbell page (write-only; reads return 0).
pub mod db {
    use super::{Error, MAX_STREAM_ENGINES, NUM_CQ, Result, WqId};
    use crate::pci::DOORBELL_OFFSET;

    /// `WQn_DB`: bits 15:0 are the producer ring index.
    #[must_use]
    pub const fn wq(wq: WqId) -> u32 {
        DOORBELL_OFFSET + wq.index() * 4
    }

    /// `CQn_CI`: bits 15:0 are the consumer ring index.
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`] for `n >= 4`.
    pub const fn cq_ci(n: u32) -> Result<u32> {
        if n >= NUM_CQ {
            return Err(Error::IndexOutOfRange {
                field: "CQ",
                index: n as u64,
                limit: NUM_CQ as u64,
            });
        }
        Ok(DOORBELL_OFFSET + 0x100 + n * 8)
    }

    /// `CQn_ARM`: bits 15:0 are the consumer ring index; the write also arms the CQ.
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`] for `n >= 4`.
    pub const fn cq_arm(n: u32) -> Result<u32> {
        match cq_ci(n) {
            Ok(o) => Ok(o + 4),
            Err(e) => Err(e),
        }
    }

    /// `SEn_CREDIT`: the value is the number of segments handed to engine `n`.
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`] for `n >= 8`.
    pub const fn se_credit(n: u32) -> Result<u32> {
        if n >= MAX_STREAM_ENGINES {
            return Err(Error::IndexOutOfRange {
                field: "stream engine",
                index: n as u64,
                limit: MAX_STREAM_ENGINES as u64,
            });
        }
        Ok(DOORBELL_OFFSET + 0x200 + n * 4)
    }

    /// `DB.INDEX`: the field of a WQ or CQ doorbell that holds a ring index.
    pub const INDEX: super::Field = super::Field::new(0, 16);
}

/// The capabilities the device reports in `CAP0`..`CAP2`, validated.
///
/// The driver must not trust these values blindly: a broken or hostile device could report a
/// DMA width of 13 or a stride of 2^15. [`Caps::decode`] rejects anything outside the interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// Address bits the device drives on the bus: 32 or 64.
    pub dma_width: u32,
    /// log2 of the largest work queue.
    pub log_max_wq: u32,
    /// log2 of the largest completion queue.
    pub log_max_cq: u32,
    /// Data segments per WQE.
    pub max_sge: u32,
    /// Inline bytes per send WQE.
    pub max_inline: u32,
    /// MSI-X vectors.
    pub msix_vectors: u32,
    /// Stream engines.
    pub stream_engines: u32,
    /// log2 of the largest WQE stride.
    pub log_max_stride: u32,
    /// log2 of the smallest stream segment.
    pub log_min_seg: u32,
    /// log2 of the largest stream segment.
    pub log_max_seg: u32,
    /// log2 of the most descriptors per stream engine.
    pub log_max_desc: u32,
    /// log2 of the most segments per circular buffer.
    pub log_max_segs: u32,
}

/// The smallest WQE stride (one 64-byte basic block).
pub const LOG_MIN_STRIDE: u32 = 6;
/// The largest WQE stride the interface allows (512 bytes).
pub const LOG_MAX_STRIDE: u32 = 9;
/// The most data segments a WQE may carry.
pub const MAX_SGE: u32 = 4;

impl Caps {
    /// Decodes and validates the three capability registers.
    ///
    /// # Errors
    /// [`Error::InvalidField`] naming the first field outside the interface's limits.
    pub const fn decode(cap0: u32, cap1: u32, cap2: u32) -> Result<Self> {
        const fn bad(field: &'static str, value: u32) -> Result<Caps> {
            Err(Error::InvalidField {
                field,
                value: value as u64,
            })
        }
        let c = Self {
            dma_width: CAP0_DMA_WIDTH.get(cap0),
            log_max_wq: CAP0_LOG_MAX_WQ.get(cap0),
            log_max_cq: CAP0_LOG_MAX_CQ.get(cap0),
            max_sge: CAP0_MAX_SGE.get(cap0),
            max_inline: CAP1_MAX_INLINE.get(cap1),
            msix_vectors: CAP1_MSIX_VECTORS.get(cap1),
            stream_engines: CAP1_STREAM_ENGINES.get(cap1),
            log_max_stride: CAP1_LOG_MAX_STRIDE.get(cap1),
            log_min_seg: CAP2_LOG_MIN_SEG.get(cap2),
            log_max_seg: CAP2_LOG_MAX_SEG.get(cap2),
            log_max_desc: CAP2_LOG_MAX_DESC.get(cap2),
            log_max_segs: CAP2_LOG_MAX_SEGS.get(cap2),
        };
        if cap0 >> 28 != 0 {
            return Err(Error::ReservedNonZero {
                field: "CAP0",
                value: cap0 as u64,
            });
        }
        if c.dma_width != 32 && c.dma_width != 64 {
            return bad("CAP0.DMA_WIDTH", c.dma_width);
        }
        if c.log_max_wq < 1 || c.log_max_wq > 15 {
            return bad("CAP0.LOG_MAX_WQ", c.log_max_wq);
        }
        if c.log_max_cq < 1 || c.log_max_cq > 15 {
            return bad("CAP0.LOG_MAX_CQ", c.log_max_cq);
        }
        if c.max_sge < 1 || c.max_sge > MAX_SGE {
            return bad("CAP0.MAX_SGE", c.max_sge);
        }
        if c.log_max_stride < LOG_MIN_STRIDE || c.log_max_stride > LOG_MAX_STRIDE {
            return bad("CAP1.LOG_MAX_STRIDE", c.log_max_stride);
        }
        // Inline data shares the WQE with the 16-byte control segment and a 4-byte header.
        if c.max_inline > (1 << c.log_max_stride) - 20 {
            return bad("CAP1.MAX_INLINE", c.max_inline);
        }
        if c.msix_vectors > crate::pci::MSIX_MAX_VECTORS {
            return bad("CAP1.MSIX_VECTORS", c.msix_vectors);
        }
        if c.stream_engines > MAX_STREAM_ENGINES {
            return bad("CAP1.STREAM_ENGINES", c.stream_engines);
        }
        if c.log_min_seg < 12 || c.log_max_seg > 30 || c.log_min_seg > c.log_max_seg {
            return bad("CAP2.LOG_MIN_SEG/LOG_MAX_SEG", cap2 & 0xFFFF);
        }
        if c.log_max_desc > 20 {
            return bad("CAP2.LOG_MAX_DESC", c.log_max_desc);
        }
        if c.log_max_segs < 1 || c.log_max_segs > 15 {
            return bad("CAP2.LOG_MAX_SEGS", c.log_max_segs);
        }
        Ok(c)
    }

    /// Encodes the three capability registers (the device model's side).
    #[must_use]
    pub const fn encode(&self) -> (u32, u32, u32) {
        let cap0 = CAP0_MAX_SGE.set(
            CAP0_LOG_MAX_CQ.set(
                CAP0_LOG_MAX_WQ.set(CAP0_DMA_WIDTH.set(0, self.dma_width), self.log_max_wq),
                self.log_max_cq,
            ),
            self.max_sge,
        );
        let cap1 = CAP1_LOG_MAX_STRIDE.set(
            CAP1_STREAM_ENGINES.set(
                CAP1_MSIX_VECTORS.set(CAP1_MAX_INLINE.set(0, self.max_inline), self.msix_vectors),
                self.stream_engines,
            ),
            self.log_max_stride,
        );
        let cap2 = CAP2_LOG_MAX_SEGS.set(
            CAP2_LOG_MAX_DESC.set(
                CAP2_LOG_MAX_SEG.set(CAP2_LOG_MIN_SEG.set(0, self.log_min_seg), self.log_max_seg),
                self.log_max_desc,
            ),
            self.log_max_segs,
        );
        (cap0, cap1, cap2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_table_is_sorted_aligned_and_unique() {
        for w in REGISTERS.windows(2) {
            assert!(
                w[0].offset < w[1].offset,
                "{} and {} out of order",
                w[0].name,
                w[1].name
            );
        }
        for r in REGISTERS {
            assert_eq!(r.offset % 4, 0, "{} misaligned", r.name);
            assert!(
                r.offset < wq::BLOCK_BASE,
                "{} overlaps the WQ blocks",
                r.name
            );
        }
    }

    #[test]
    fn blocks_do_not_overlap() {
        assert!(wq::offset(WqId::Qp1Recv, wq::STATUS) < cq::BLOCK_BASE);
        assert!(cq::offset(NUM_CQ - 1, cq::MOD).unwrap() < se::BLOCK_BASE);
        assert!(se::offset(MAX_STREAM_ENGINES - 1, se::MOD).unwrap() < crate::pci::DOORBELL_OFFSET);
        assert!(db::se_credit(7).unwrap() < crate::pci::MSIX_TABLE_OFFSET);
        assert!(cq::offset(4, 0).is_err());
        assert!(se::offset(8, 0).is_err());
        assert!(db::cq_arm(4).is_err());
    }

    #[test]
    fn id_reads_rhca_in_memory_order() {
        assert_eq!(ID_VALUE.to_le_bytes(), *b"RHCA");
        assert_eq!(ID_VALUE, 0x4143_4852);
    }

    #[test]
    fn reset_caps_decode_to_the_default_model() {
        let c = Caps::decode(CAP0.reset, CAP1.reset, CAP2.reset).unwrap();
        assert_eq!(c.dma_width, 64);
        assert_eq!(c.log_max_wq, 12);
        assert_eq!(c.log_max_cq, 13);
        assert_eq!(c.max_sge, 4);
        assert_eq!(c.max_inline, 256);
        assert_eq!(c.msix_vectors, 4);
        assert_eq!(c.stream_engines, 2);
        assert_eq!(c.log_max_stride, 9);
        assert_eq!(
            (c.log_min_seg, c.log_max_seg, c.log_max_desc, c.log_max_segs),
            (12, 20, 16, 12)
        );
        assert_eq!(c.encode(), (CAP0.reset, CAP1.reset, CAP2.reset));
    }

    #[test]
    fn caps_reject_each_bad_field() {
        let (c0, c1, c2) = (CAP0.reset, CAP1.reset, CAP2.reset);
        let with = |f: Field, w: u32, v: u32| f.set(w, v);
        assert!(Caps::decode(with(CAP0_DMA_WIDTH, c0, 48), c1, c2).is_err());
        assert!(Caps::decode(with(CAP0_DMA_WIDTH, c0, 32), c1, c2).is_ok());
        assert!(Caps::decode(with(CAP0_LOG_MAX_WQ, c0, 16), c1, c2).is_err());
        assert!(Caps::decode(with(CAP0_LOG_MAX_CQ, c0, 0), c1, c2).is_err());
        assert!(Caps::decode(with(CAP0_MAX_SGE, c0, 5), c1, c2).is_err());
        assert!(Caps::decode(c0 | 1 << 31, c1, c2).is_err());
        assert!(Caps::decode(c0, with(CAP1_MAX_INLINE, c1, 493), c2).is_err());
        assert!(Caps::decode(c0, with(CAP1_LOG_MAX_STRIDE, c1, 10), c2).is_err());
        assert!(Caps::decode(c0, with(CAP1_STREAM_ENGINES, c1, 9), c2).is_err());
        assert!(Caps::decode(c0, with(CAP1_MSIX_VECTORS, c1, 17), c2).is_err());
        assert!(Caps::decode(c0, c1, with(CAP2_LOG_MIN_SEG, c2, 11)).is_err());
        assert!(Caps::decode(c0, c1, with(CAP2_LOG_MAX_SEG, c2, 11)).is_err());
        assert!(Caps::decode(c0, c1, with(CAP2_LOG_MAX_SEGS, c2, 0)).is_err());
        // A removed device reads all-ones everywhere: never valid capabilities.
        assert!(Caps::decode(ALL_ONES, ALL_ONES, ALL_ONES).is_err());
    }

    #[test]
    fn fields_round_trip_and_refuse_overflow() {
        let f = Field::new(8, 4);
        assert_eq!(f.mask(), 0xF00);
        assert_eq!(f.get(f.set(0xFFFF_FFFF, 0x5)), 0x5);
        assert_eq!(f.set(0, 0x1F), 0xF00);
        assert!(f.try_set(0, 0x10, "x").is_err());
        assert_eq!(Field::new(0, 32).mask(), u32::MAX);
        assert_eq!(Field::new(0, 32).try_set(0, u32::MAX, "x"), Ok(u32::MAX));
    }

    #[test]
    fn cause_vectors() {
        assert_eq!(cause::vector(31, 4), 0);
        assert_eq!(cause::vector(30, 4), 0);
        assert_eq!(cause::vector(0, 4), 1);
        assert_eq!(cause::vector(3, 4), 1);
        assert_eq!(cause::vector(8, 4), 2);
        assert_eq!(cause::vector(17, 4), 3);
        assert_eq!(
            cause::vector(9 + 2, 4),
            0,
            "engine 3 needs vector 5, not enabled"
        );
        assert_eq!(cause::vector(0, 1), 0, "single vector: everything on 0");
        assert_eq!(cause::vector(0, 0), 0);
        assert_eq!(cause::DEFINED.count_ones(), 4 + 16 + 2);
    }

    #[test]
    fn error_code_and_source_round_trip() {
        for v in 0..=u8::MAX {
            if let Ok(c) = ErrorCode::from_u8(v) {
                assert_eq!(c as u8, v);
            }
            if let Ok(s) = ErrorSource::decode(v) {
                assert_eq!(s.encode(), v);
            }
        }
        assert!(ErrorCode::from_u8(0x0E).is_err());
        assert!(ErrorSource::decode(0x04).is_err());
    }

    #[test]
    fn wq_ids() {
        for (n, w) in WqId::ALL.iter().enumerate() {
            assert_eq!(WqId::from_index(u32::try_from(n).unwrap()), Ok(*w));
            assert_eq!(WqId::new(w.qpn(), w.is_receive()), Ok(*w));
        }
        assert!(WqId::new(2, false).is_err());
        assert!(WqId::from_index(4).is_err());
    }
}
