//! The IOCTL ABI between user mode and the RHCA driver (`docs/device.md` §11).
//!
//! Control codes are computed like the `CTL_CODE` macro of `devioctl.h` at compile time. Every
//! request and response is a versioned `#[repr(C)]` structure that starts with an
//! [`AbiHeader`] `{ size, version }`; its layout is declared once (the `abi_struct!` macro) and
//! both a `size_of` assertion and the sum of the field sizes are checked against the declared
//! wire size at compile time, so there is no implicit padding for user mode to get wrong.
//!
//! Nothing here trusts its input: [`Ioctl::check_lengths`] runs before any buffer is touched,
//! `decode` checks the header, and each request's `validate` checks every field.

use crate::error::{Error, Result};
use crate::mad::{self, MadHeader};
use crate::wire::{Reader, Writer};

/// The vendor device type of RHCA (vendor types are 0x8000..=0xFFFF).
pub const FILE_DEVICE_RHCA: u32 = 0xA1CA;
/// `METHOD_BUFFERED`.
pub const METHOD_BUFFERED: u32 = 0;
/// `METHOD_IN_DIRECT`: the output buffer is an MDL the driver reads (data to the device).
pub const METHOD_IN_DIRECT: u32 = 1;
/// `METHOD_OUT_DIRECT`: the output buffer is an MDL the driver writes (data from the device).
pub const METHOD_OUT_DIRECT: u32 = 2;
/// `METHOD_NEITHER`: not used by RHCA (no raw user pointers reach the driver).
pub const METHOD_NEITHER: u32 = 3;
/// `FILE_ANY_ACCESS`.
pub const FILE_ANY_ACCESS: u32 = 0;
/// `FILE_READ_ACCESS`.
pub const FILE_READ_ACCESS: u32 = 1;
/// `FILE_WRITE_ACCESS`.
pub const FILE_WRITE_ACCESS: u32 = 2;
/// The ABI version this crate implements. Version 2: a WAIT reply reports up to 64 segments
/// (16 in version 1, whose `StreamWaitOut` was 408 bytes).
pub const ABI_VERSION: u32 = 2;
/// Most segments one WAIT reply reports.
///
/// A whole ring of 64 segments can change hands in one WAIT and one RELEASE. With 16, a stream of small segments cost the application two system
/// calls per 16 segments, which bounded a 4 KiB stream's rate on the simulated machine.
pub const MAX_WAIT_SEGMENTS: usize = 64;
/// `StreamStartIn::flags` bit 0: the device checks playback data against the pattern of
/// `docs/device.md` §8.4 and reports mismatches in the segment's status (`SEn.CTRL.VERIFY`).
pub const START_FLAG_VERIFY: u32 = 1;
/// `StreamWaitOut::flags` bit 0: the stream has ended; no more segments will become ready.
pub const WAIT_FLAG_ENDED: u32 = 1;

/// The device interface class GUID `{c1de4983-6209-40cf-ae20-3f7a1429a10f}` that user mode
/// opens (`WdfDeviceCreateDeviceInterface`), as `(Data1, Data2, Data3, Data4)`.
pub const DEVICE_INTERFACE_GUID: (u32, u16, u16, [u8; 8]) = (
    0xc1de_4983,
    0x6209,
    0x40cf,
    [0xae, 0x20, 0x3f, 0x7a, 0x14, 0x29, 0xa1, 0x0f],
);

/// `CTL_CODE(DeviceType, Function, Method, Access)` from `devioctl.h`.
#[must_use]
pub const fn ctl_code(device_type: u32, function: u32, method: u32, access: u32) -> u32 {
    (device_type << 16) | (access << 14) | (function << 2) | method
}

/// The transfer method of a control code (bits 1:0).
#[must_use]
pub const fn method_of(code: u32) -> u32 {
    code & 3
}

/// The required access of a control code (bits 15:14).
#[must_use]
pub const fn access_of(code: u32) -> u32 {
    (code >> 14) & 3
}

/// The device type of a control code (bits 31:16).
#[must_use]
pub const fn device_type_of(code: u32) -> u32 {
    code >> 16
}

/// The function number of a control code (bits 13:2).
#[must_use]
pub const fn function_of(code: u32) -> u32 {
    (code >> 2) & 0xFFF
}

/// `IOCTL_RHCA_QUERY_DEVICE`: out [`QueryDeviceOut`].
pub const IOCTL_RHCA_QUERY_DEVICE: u32 =
    ctl_code(FILE_DEVICE_RHCA, 0x800, METHOD_BUFFERED, FILE_ANY_ACCESS);
/// `IOCTL_RHCA_QUERY_PORT`: out [`QueryPortOut`].
pub const IOCTL_RHCA_QUERY_PORT: u32 =
    ctl_code(FILE_DEVICE_RHCA, 0x801, METHOD_BUFFERED, FILE_ANY_ACCESS);
/// `IOCTL_RHCA_SEND_MAD`: in [`SendMadIn`], out [`SendMadOut`]; completes with the send's status.
pub const IOCTL_RHCA_SEND_MAD: u32 = ctl_code(
    FILE_DEVICE_RHCA,
    0x802,
    METHOD_BUFFERED,
    FILE_READ_ACCESS | FILE_WRITE_ACCESS,
);
/// `IOCTL_RHCA_RECV_MAD`: out [`RecvMadOut`]; pends until a MAD arrives.
pub const IOCTL_RHCA_RECV_MAD: u32 =
    ctl_code(FILE_DEVICE_RHCA, 0x803, METHOD_BUFFERED, FILE_READ_ACCESS);
/// `IOCTL_RHCA_STREAM_START_CAPTURE`: in [`StreamStartIn`], out the circular buffer (MDL the
/// device writes); pends for the stream's life.
pub const IOCTL_RHCA_STREAM_START_CAPTURE: u32 =
    ctl_code(FILE_DEVICE_RHCA, 0x810, METHOD_OUT_DIRECT, FILE_READ_ACCESS);
/// `IOCTL_RHCA_STREAM_START_PLAYBACK`: in [`StreamStartIn`], out the circular buffer (MDL the
/// device reads); pends for the stream's life.
pub const IOCTL_RHCA_STREAM_START_PLAYBACK: u32 =
    ctl_code(FILE_DEVICE_RHCA, 0x811, METHOD_IN_DIRECT, FILE_WRITE_ACCESS);
/// `IOCTL_RHCA_STREAM_WAIT`: in [`StreamWaitIn`], out [`StreamWaitOut`]; pends until segments
/// are ready.
pub const IOCTL_RHCA_STREAM_WAIT: u32 =
    ctl_code(FILE_DEVICE_RHCA, 0x812, METHOD_BUFFERED, FILE_ANY_ACCESS);
/// `IOCTL_RHCA_STREAM_RELEASE`: in [`StreamReleaseIn`].
pub const IOCTL_RHCA_STREAM_RELEASE: u32 =
    ctl_code(FILE_DEVICE_RHCA, 0x813, METHOD_BUFFERED, FILE_ANY_ACCESS);
/// `IOCTL_RHCA_STREAM_STOP`: in [`StreamStopIn`].
pub const IOCTL_RHCA_STREAM_STOP: u32 =
    ctl_code(FILE_DEVICE_RHCA, 0x814, METHOD_BUFFERED, FILE_ANY_ACCESS);
/// `IOCTL_RHCA_STATISTICS`: out [`StatisticsOut`].
pub const IOCTL_RHCA_STATISTICS: u32 =
    ctl_code(FILE_DEVICE_RHCA, 0x820, METHOD_BUFFERED, FILE_ANY_ACCESS);

/// The RHCA control codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ioctl {
    /// [`IOCTL_RHCA_QUERY_DEVICE`].
    QueryDevice,
    /// [`IOCTL_RHCA_QUERY_PORT`].
    QueryPort,
    /// [`IOCTL_RHCA_SEND_MAD`].
    SendMad,
    /// [`IOCTL_RHCA_RECV_MAD`].
    RecvMad,
    /// [`IOCTL_RHCA_STREAM_START_CAPTURE`].
    StreamStartCapture,
    /// [`IOCTL_RHCA_STREAM_START_PLAYBACK`].
    StreamStartPlayback,
    /// [`IOCTL_RHCA_STREAM_WAIT`].
    StreamWait,
    /// [`IOCTL_RHCA_STREAM_RELEASE`].
    StreamRelease,
    /// [`IOCTL_RHCA_STREAM_STOP`].
    StreamStop,
    /// [`IOCTL_RHCA_STATISTICS`].
    Statistics,
}

impl Ioctl {
    /// Every control code, in function order.
    pub const ALL: [Self; 10] = [
        Self::QueryDevice,
        Self::QueryPort,
        Self::SendMad,
        Self::RecvMad,
        Self::StreamStartCapture,
        Self::StreamStartPlayback,
        Self::StreamWait,
        Self::StreamRelease,
        Self::StreamStop,
        Self::Statistics,
    ];

    /// The control code.
    #[must_use]
    pub const fn code(self) -> u32 {
        match self {
            Self::QueryDevice => IOCTL_RHCA_QUERY_DEVICE,
            Self::QueryPort => IOCTL_RHCA_QUERY_PORT,
            Self::SendMad => IOCTL_RHCA_SEND_MAD,
            Self::RecvMad => IOCTL_RHCA_RECV_MAD,
            Self::StreamStartCapture => IOCTL_RHCA_STREAM_START_CAPTURE,
            Self::StreamStartPlayback => IOCTL_RHCA_STREAM_START_PLAYBACK,
            Self::StreamWait => IOCTL_RHCA_STREAM_WAIT,
            Self::StreamRelease => IOCTL_RHCA_STREAM_RELEASE,
            Self::StreamStop => IOCTL_RHCA_STREAM_STOP,
            Self::Statistics => IOCTL_RHCA_STATISTICS,
        }
    }

    /// The control for a code.
    ///
    /// # Errors
    /// [`Error::UnknownIoctl`] for any other code, including an RHCA function number with a
    /// different method or access (a caller cannot downgrade the access check).
    pub const fn from_code(code: u32) -> Result<Self> {
        let mut i = 0;
        while i < Self::ALL.len() {
            if Self::ALL[i].code() == code {
                return Ok(Self::ALL[i]);
            }
            i += 1;
        }
        Err(Error::UnknownIoctl(code))
    }

    /// The input length the control requires exactly (0: no input).
    #[must_use]
    pub const fn input_len(self) -> usize {
        match self {
            Self::QueryDevice | Self::QueryPort | Self::RecvMad | Self::Statistics => 0,
            Self::SendMad => SendMadIn::SIZE,
            Self::StreamStartCapture | Self::StreamStartPlayback => StreamStartIn::SIZE,
            Self::StreamWait => StreamWaitIn::SIZE,
            Self::StreamRelease => StreamReleaseIn::SIZE,
            Self::StreamStop => StreamStopIn::SIZE,
        }
    }

    /// The smallest output length the control accepts (for stream starts: two pages, the
    /// smallest circular buffer; the driver checks the real segment arithmetic).
    #[must_use]
    pub const fn min_output_len(self) -> usize {
        match self {
            Self::QueryDevice => QueryDeviceOut::SIZE,
            Self::QueryPort => QueryPortOut::SIZE,
            Self::SendMad => SendMadOut::SIZE,
            Self::RecvMad => RecvMadOut::SIZE,
            Self::StreamStartCapture | Self::StreamStartPlayback => {
                2 * crate::stream::SEG_ALIGN as usize
            }
            Self::StreamWait => StreamWaitOut::SIZE,
            Self::StreamRelease | Self::StreamStop => 0,
            Self::Statistics => StatisticsOut::SIZE,
        }
    }

    /// Checks the buffer lengths of a request before anything reads or writes them.
    ///
    /// # Errors
    /// [`Error::Truncated`] for a short buffer, [`Error::SizeMismatch`] for an input that is
    /// longer than the structure (a caller built against another ABI).
    pub const fn check_lengths(self, input_len: usize, output_len: usize) -> Result<()> {
        let need = self.input_len();
        if input_len < need {
            return Err(Error::Truncated {
                need,
                have: input_len,
            });
        }
        if input_len > need {
            return Err(Error::SizeMismatch {
                found: saturate_u32(input_len),
                expected: saturate_u32(need),
            });
        }
        let out = self.min_output_len();
        if output_len < out {
            return Err(Error::Truncated {
                need: out,
                have: output_len,
            });
        }
        Ok(())
    }
}

/// `v` as `u32`, saturating (lengths reported in errors and headers; ABI structures are small).
#[expect(
    clippy::cast_possible_truncation,
    reason = "the value is compared with u32::MAX first"
)]
const fn saturate_u32(v: usize) -> u32 {
    if v as u64 > u32::MAX as u64 {
        u32::MAX
    } else {
        v as u32
    }
}

/// A structure of the IOCTL ABI (every `…In`/`…Out` type): decoded with its header checked.
pub trait AbiStruct: WireField {
    /// Decodes from `buf`, checking the header's version and size first.
    ///
    /// # Errors
    /// [`Error::Truncated`], [`Error::UnsupportedVersion`], [`Error::SizeMismatch`].
    fn decode_abi(buf: &[u8]) -> Result<Self>;
}

/// The largest request (input) structure, for callers that decode one into a stack buffer.
///
/// The driver does. Replies may be larger (`StreamWaitOut`); the driver encodes them straight into the
/// request's output buffer.
pub const MAX_ABI_SIZE: usize = 512;

/// A fixed-size little-endian field of an ABI structure.
pub trait WireField: Sized + Copy {
    /// Bytes on the wire.
    const SIZE: usize;
    /// The all-zero value.
    const ZERO: Self;
    /// Reads the field.
    ///
    /// # Errors
    /// [`Error::Truncated`].
    fn read(r: &mut Reader<'_>) -> Result<Self>;
    /// Writes the field.
    ///
    /// # Errors
    /// [`Error::Truncated`].
    fn write(&self, w: &mut Writer<'_>) -> Result<()>;
    /// Reads `out.len()` consecutive fields (an array's elements), one by one; byte arrays copy
    /// in one go (a 256-byte MAD was 256 calls).
    ///
    /// # Errors
    /// [`Error::Truncated`].
    fn read_slice(r: &mut Reader<'_>, out: &mut [Self]) -> Result<()> {
        for v in out {
            *v = Self::read(r)?;
        }
        Ok(())
    }
    /// Writes consecutive fields (an array's elements).
    ///
    /// # Errors
    /// [`Error::Truncated`].
    fn write_slice(w: &mut Writer<'_>, v: &[Self]) -> Result<()> {
        v.iter().try_for_each(|x| x.write(w))
    }
}

macro_rules! wire_int {
    ($($t:ty => $rd:ident, $wr:ident;)*) => {$(
        impl WireField for $t {
            const SIZE: usize = core::mem::size_of::<$t>();
            const ZERO: Self = 0;
            fn read(r: &mut Reader<'_>) -> Result<Self> {
                r.$rd()
            }
            fn write(&self, w: &mut Writer<'_>) -> Result<()> {
                w.$wr(*self)
            }
        }
    )*};
}

impl WireField for u8 {
    const SIZE: usize = 1;
    const ZERO: Self = 0;
    fn read(r: &mut Reader<'_>) -> Result<Self> {
        r.u8()
    }
    fn write(&self, w: &mut Writer<'_>) -> Result<()> {
        w.u8(*self)
    }
    fn read_slice(r: &mut Reader<'_>, out: &mut [Self]) -> Result<()> {
        out.copy_from_slice(r.bytes(out.len())?);
        Ok(())
    }
    fn write_slice(w: &mut Writer<'_>, v: &[Self]) -> Result<()> {
        w.bytes(v)
    }
}

wire_int! {
    u16 => u16_le, u16_le;
    u32 => u32_le, u32_le;
    u64 => u64_le, u64_le;
}

impl<T: WireField, const N: usize> WireField for [T; N] {
    const SIZE: usize = T::SIZE * N;
    const ZERO: Self = [T::ZERO; N];
    fn read(r: &mut Reader<'_>) -> Result<Self> {
        let mut out = Self::ZERO;
        T::read_slice(r, &mut out)?;
        Ok(out)
    }
    fn write(&self, w: &mut Writer<'_>) -> Result<()> {
        T::write_slice(w, self)
    }
}

/// Declares a `#[repr(C)]` wire structure, its [`WireField`] codec and compile-time size checks.
macro_rules! wire_struct {
    (
        $(#[$m:meta])*
        pub struct $name:ident ($size:expr) {
            $( $(#[$fm:meta])* pub $f:ident : $t:ty, )*
        }
    ) => {
        $(#[$m])*
        #[repr(C)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name {
            $( $(#[$fm])* pub $f: $t, )*
        }

        impl $name {
            /// Bytes on the wire (and `size_of::<Self>()`).
            pub const SIZE: usize = $size;
        }

        const _: () = assert!(core::mem::size_of::<$name>() == $size, "implicit padding");
        const _: () = assert!(0 $(+ <$t as WireField>::SIZE)* == $size, "field sizes");

        impl WireField for $name {
            const SIZE: usize = $size;
            const ZERO: Self = Self { $( $f: <$t as WireField>::ZERO, )* };
            fn read(r: &mut Reader<'_>) -> Result<Self> {
                Ok(Self { $( $f: <$t as WireField>::read(r)?, )* })
            }
            fn write(&self, w: &mut Writer<'_>) -> Result<()> {
                $( self.$f.write(w)?; )*
                Ok(())
            }
        }
    };
}

/// Declares a versioned ABI structure: a [`wire_struct!`] whose first field is the header.
macro_rules! abi_struct {
    (
        $(#[$m:meta])*
        pub struct $name:ident ($size:expr) {
            $( $(#[$fm:meta])* pub $f:ident : $t:ty, )*
        }
    ) => {
        wire_struct! {
            $(#[$m])*
            pub struct $name ($size) {
                /// `{ size, version }` of this structure.
                pub header: AbiHeader,
                $( $(#[$fm])* pub $f: $t, )*
            }
        }

        impl Default for $name {
            /// A structure with a correct header and every other field zero.
            fn default() -> Self {
                Self { header: AbiHeader::for_size($size), ..<Self as WireField>::ZERO }
            }
        }

        impl AbiStruct for $name {
            fn decode_abi(buf: &[u8]) -> Result<Self> {
                Self::decode(buf)
            }
        }

        impl $name {
            /// Decodes from `buf`, checking the header's version and size first.
            ///
            /// # Errors
            /// [`Error::Truncated`] for a short buffer, [`Error::UnsupportedVersion`],
            /// [`Error::SizeMismatch`].
            pub fn decode(buf: &[u8]) -> Result<Self> {
                let h = AbiHeader::read(&mut Reader::new(buf))?;
                if h.version != ABI_VERSION {
                    return Err(Error::UnsupportedVersion { found: h.version, supported: ABI_VERSION });
                }
                // CAST: SIZE is a small constant.
                if h.size != $size as u32 {
                    return Err(Error::SizeMismatch { found: h.size, expected: $size as u32 });
                }
                Reader::require(buf, $size)?;
                Self::read(&mut Reader::new(buf))
            }

            /// Encodes into `out`, returning the bytes written.
            ///
            /// # Errors
            /// [`Error::Truncated`] when `out` is shorter than the structure.
            pub fn encode(&self, out: &mut [u8]) -> Result<usize> {
                Reader::require(out, $size)?;
                self.write(&mut Writer::new(out))?;
                Ok($size)
            }
        }
    };
}

wire_struct! {
    /// The first 8 bytes of every ABI structure.
    pub struct AbiHeader (8) {
        /// `sizeof` the whole structure.
        pub size: u32,
        /// [`ABI_VERSION`].
        pub version: u32,
    }
}

impl AbiHeader {
    /// The header of a structure of `size` bytes at the current version.
    #[must_use]
    pub const fn for_size(size: usize) -> Self {
        Self {
            size: saturate_u32(size),
            version: ABI_VERSION,
        }
    }
}

abi_struct! {
    /// `IOCTL_RHCA_QUERY_DEVICE` reply.
    pub struct QueryDeviceOut (48) {
        /// PCI vendor id.
        pub vendor_id: u16,
        /// PCI device id.
        pub device_id: u16,
        /// PCI revision.
        pub revision: u8,
        /// `CAP0.DMA_WIDTH`.
        pub dma_width: u8,
        /// `CAP0.MAX_SGE`.
        pub max_sge: u8,
        /// `CAP1.STREAM_ENGINES`.
        pub stream_engines: u8,
        /// `VERSION` register.
        pub interface_version: u32,
        /// `CAP1.MAX_INLINE`.
        pub max_inline: u32,
        /// `CAP0.LOG_MAX_WQ`.
        pub log_max_wq: u8,
        /// `CAP0.LOG_MAX_CQ`.
        pub log_max_cq: u8,
        /// MSI-X vectors connected (0: `INTx`).
        pub interrupt_vectors: u8,
        /// `CAP2.LOG_MIN_SEG`.
        pub log_min_seg: u8,
        /// `CAP2.LOG_MAX_SEG`.
        pub log_max_seg: u8,
        /// `CAP2.LOG_MAX_SEGS`.
        pub log_max_segs: u8,
        /// Reserved, zero.
        pub reserved0: u16,
        /// Node GUID.
        pub node_guid: u64,
        /// The `DEVICE_DESCRIPTION` version the DMA adapter was granted with (2 or 3).
        pub dma_description_version: u32,
        /// Map registers granted by `IoGetDmaAdapter`.
        pub map_registers: u32,
    }
}

abi_struct! {
    /// `IOCTL_RHCA_QUERY_PORT` reply.
    pub struct QueryPortOut (24) {
        /// `PortInfo:PortState` (1 Down .. 4 Active).
        pub state: u8,
        /// LID mask control.
        pub lmc: u8,
        /// Reserved, zero.
        pub reserved0: u16,
        /// Base LID.
        pub lid: u16,
        /// The subnet manager's LID.
        pub sm_lid: u16,
        /// Port GUID.
        pub port_guid: u64,
    }
}

abi_struct! {
    /// `IOCTL_RHCA_SEND_MAD` request: a 256-byte MAD and its destination.
    pub struct SendMadIn (280) {
        /// Local QP: 0 (SMI, subnet management classes only) or 1 (GSI, all other classes).
        pub qp: u8,
        /// Service level (0..=15).
        pub sl: u8,
        /// `P_Key` table index.
        pub pkey_index: u8,
        /// Reserved, zero.
        pub flags: u8,
        /// Destination LID (the permissive LID 0xFFFF for directed-route SMPs).
        pub dlid: u16,
        /// Reserved, zero.
        pub reserved0: u16,
        /// Destination QP (0 for QP0; 24 bits).
        pub remote_qpn: u32,
        /// `Q_Key` (0 for QP0; usually [`mad::QKEY_GSI`] for QP1).
        pub qkey: u32,
        /// The MAD, big-endian fields as on the wire.
        pub mad: [u8; mad::MAD_SIZE],
    }
}

impl SendMadIn {
    /// Validates the destination and the MAD header; returns the decoded header.
    ///
    /// # Errors
    /// [`Error::InvalidField`] naming the first bad field; [`Error::ReservedNonZero`].
    pub fn validate(&self) -> Result<MadHeader> {
        let hdr = MadHeader::decode(&self.mad)?;
        if self.qp > 1 {
            return Err(Error::InvalidField {
                field: "qp",
                value: u64::from(self.qp),
            });
        }
        if self.sl > 15 {
            return Err(Error::InvalidField {
                field: "sl",
                value: u64::from(self.sl),
            });
        }
        if self.flags != 0 || self.reserved0 != 0 {
            return Err(Error::ReservedNonZero {
                field: "flags",
                value: u64::from(self.flags),
            });
        }
        if self.dlid == 0 {
            return Err(Error::InvalidField {
                field: "dlid",
                value: 0,
            });
        }
        if self.remote_qpn >> 24 != 0 {
            return Err(Error::InvalidField {
                field: "remote_qpn",
                value: u64::from(self.remote_qpn),
            });
        }
        let smp = mad::class::is_smp(hdr.mgmt_class);
        if (self.qp == 0) != smp {
            // Subnet management MADs travel on QP0 only, everything else on QP1 (IBTA 13.5.3).
            return Err(Error::InvalidField {
                field: "mgmt_class",
                value: u64::from(hdr.mgmt_class),
            });
        }
        if self.qp == 0 && (self.remote_qpn != 0 || self.qkey != 0) {
            return Err(Error::InvalidField {
                field: "remote_qpn",
                value: u64::from(self.remote_qpn),
            });
        }
        if hdr.mgmt_class == mad::class::SUBN_DIRECTED_ROUTE && self.dlid != mad::PERMISSIVE_LID {
            return Err(Error::InvalidField {
                field: "dlid",
                value: u64::from(self.dlid),
            });
        }
        Ok(hdr)
    }
}

abi_struct! {
    /// `IOCTL_RHCA_SEND_MAD` reply.
    pub struct SendMadOut (24) {
        /// The send's completion status (`cqe::Status` as `u32`).
        pub status: u32,
        /// The device syndrome for a failed send.
        pub syndrome: u32,
        /// The MAD's transaction id, echoed.
        pub tid: u64,
    }
}

abi_struct! {
    /// `IOCTL_RHCA_RECV_MAD` reply: one received MAD.
    pub struct RecvMadOut (320) {
        /// The QP it arrived on.
        pub qp: u8,
        /// Service level.
        pub sl: u8,
        /// 1 when `grh` holds a received GRH.
        pub grh_present: u8,
        /// Reserved, zero.
        pub reserved0: u8,
        /// Source LID.
        pub slid: u16,
        /// `P_Key` index.
        pub pkey_index: u16,
        /// Source QP.
        pub src_qpn: u32,
        /// Bytes received, counting the 40-byte GRH area.
        pub byte_count: u32,
        /// The GRH area.
        pub grh: [u8; mad::GRH_SIZE],
        /// The MAD.
        pub mad: [u8; mad::MAD_SIZE],
    }
}

/// How the driver moves stream data (`docs/dma.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Strategy {
    /// Let the driver choose the best correct strategy.
    Auto = 0,
    /// `CreateCommonBufferFromMdl` over the caller's buffer.
    CommonBufferFromMdl = 1,
    /// One scatter/gather mapping held for the stream's life, with a flush per segment.
    PersistentSg = 2,
    /// `GetScatterGatherList`/`PutScatterGatherList` per segment.
    PerSegment = 3,
    /// Staging through a common buffer and a CPU copy.
    Staging = 4,
}

impl Strategy {
    /// Decodes a strategy value.
    ///
    /// # Errors
    /// [`Error::InvalidField`].
    pub const fn from_u32(v: u32) -> Result<Self> {
        match v {
            0 => Ok(Self::Auto),
            1 => Ok(Self::CommonBufferFromMdl),
            2 => Ok(Self::PersistentSg),
            3 => Ok(Self::PerSegment),
            4 => Ok(Self::Staging),
            _ => Err(Error::InvalidField {
                field: "strategy",
                value: v as u64,
            }),
        }
    }
}

abi_struct! {
    /// Stream START request (the circular buffer is the request's output buffer).
    pub struct StreamStartIn (32) {
        /// Stream engine (0..`CAP1.STREAM_ENGINES`).
        pub engine: u32,
        /// `stream::Direction` as `u32`; must match the control code.
        pub direction: u32,
        /// Bytes per segment.
        pub segment_size: u32,
        /// [`Strategy`] as `u32` (0: automatic).
        pub strategy: u32,
        /// [`START_FLAG_VERIFY`] (playback only); other bits reserved, zero.
        pub flags: u32,
        /// Reserved, zero.
        pub reserved0: u32,
    }
}

impl StreamStartIn {
    /// Validates the request for control `ioctl` and a circular buffer of `buffer_len` bytes:
    /// direction matching the code, segment size a multiple of `align` (the DMA alignment and a
    /// page) within `min_seg..=max_seg`, and the buffer a whole number (at least 2) of segments.
    ///
    /// # Errors
    /// [`Error::InvalidField`], [`Error::Misaligned`], [`Error::LengthTooSmall`],
    /// [`Error::LengthTooLarge`], [`Error::ReservedNonZero`].
    pub fn validate(
        &self,
        ioctl: Ioctl,
        buffer_len: u64,
        align: u32,
        min_seg: u32,
        max_seg: u32,
    ) -> Result<Strategy> {
        let dir = crate::stream::Direction::from_u32(self.direction)?;
        let expected = match ioctl {
            Ioctl::StreamStartCapture => crate::stream::Direction::Capture,
            Ioctl::StreamStartPlayback => crate::stream::Direction::Playback,
            _ => return Err(Error::UnknownIoctl(ioctl.code())),
        };
        if dir != expected {
            return Err(Error::InvalidField {
                field: "direction",
                value: u64::from(self.direction),
            });
        }
        let allowed = match dir {
            crate::stream::Direction::Playback => START_FLAG_VERIFY,
            crate::stream::Direction::Capture => 0,
        };
        if self.flags & !allowed != 0 || self.reserved0 != 0 {
            return Err(Error::ReservedNonZero {
                field: "flags",
                value: u64::from(self.flags),
            });
        }
        let strategy = Strategy::from_u32(self.strategy)?;
        let seg = self.segment_size;
        let align = align.max(1);
        if seg == 0 || !seg.is_multiple_of(align) || !seg.is_multiple_of(crate::stream::SEG_ALIGN) {
            return Err(Error::Misaligned {
                field: "segment_size",
                value: u64::from(seg),
                align: u64::from(align.max(crate::stream::SEG_ALIGN)),
            });
        }
        if seg < min_seg {
            return Err(Error::LengthTooSmall {
                field: "segment_size",
                len: u64::from(seg),
                min: u64::from(min_seg),
            });
        }
        if seg > max_seg {
            return Err(Error::LengthTooLarge {
                field: "segment_size",
                len: u64::from(seg),
                limit: u64::from(max_seg),
            });
        }
        if !buffer_len.is_multiple_of(u64::from(seg)) {
            return Err(Error::Misaligned {
                field: "buffer length",
                value: buffer_len,
                align: u64::from(seg),
            });
        }
        if buffer_len / u64::from(seg) < u64::from(crate::stream::MIN_SEGMENTS) {
            return Err(Error::LengthTooSmall {
                field: "buffer length",
                len: buffer_len,
                min: u64::from(seg) * 2,
            });
        }
        Ok(strategy)
    }
}

abi_struct! {
    /// Stream WAIT request.
    pub struct StreamWaitIn (16) {
        /// Stream engine.
        pub engine: u32,
        /// Most segments to report (1..=[`MAX_WAIT_SEGMENTS`]).
        pub max_segments: u32,
    }
}

wire_struct! {
    /// One ready segment in a WAIT reply.
    pub struct SegmentInfo (24) {
        /// The segment's sequence number since START.
        pub sequence: u64,
        /// The segment's index in the circular buffer.
        pub index: u32,
        /// Bytes moved.
        pub bytes: u32,
        /// `stream::RecordStatus` as `u32`.
        pub status: u32,
        /// Reserved, zero.
        pub reserved0: u32,
    }
}

abi_struct! {
    /// Stream WAIT reply.
    pub struct StreamWaitOut (1560) {
        /// Stream engine.
        pub engine: u32,
        /// The [`Strategy`] in use (never `Auto`).
        pub strategy: u32,
        /// Valid entries in `segments`.
        pub count: u32,
        /// Bit 0: the stream has ended (stopped or failed); no more segments will come.
        pub flags: u32,
        /// The ready segments, oldest first.
        pub segments: [SegmentInfo; MAX_WAIT_SEGMENTS],
    }
}

abi_struct! {
    /// Stream RELEASE request: hands the oldest `count` segments back, starting at `first_sequence`.
    pub struct StreamReleaseIn (24) {
        /// Stream engine.
        pub engine: u32,
        /// Segments released (1..=segment count).
        pub count: u32,
        /// The sequence of the first released segment (must be the oldest the application holds).
        pub first_sequence: u64,
    }
}

abi_struct! {
    /// Stream STOP request.
    pub struct StreamStopIn (16) {
        /// Stream engine.
        pub engine: u32,
        /// Reserved, zero.
        pub reserved0: u32,
    }
}

abi_struct! {
    /// `IOCTL_RHCA_STATISTICS` reply: counters since the device started.
    pub struct StatisticsOut (152) {
        /// MAD sends completed.
        pub mad_sends: u64,
        /// Of which sent inline (no mapping).
        pub mad_sends_inline: u64,
        /// MADs received.
        pub mad_receives: u64,
        /// MADs dropped because the backlog was full.
        pub mad_receive_drops: u64,
        /// Scatter/gather mappings made by the MAD path (stream mappings are not counted).
        pub mappings_made: u64,
        /// Scatter/gather mappings released.
        pub mappings_released: u64,
        /// Sends that waited in the overflow list.
        pub overflow_waits: u64,
        /// CQEs rejected as hostile or corrupt.
        pub hostile_cqes: u64,
        /// Sends that completed with an error.
        pub send_errors: u64,
        /// Interrupts taken.
        pub interrupts: u64,
        /// DPCs run (and watchdog ticks, which do a DPC's work).
        pub dpcs: u64,
        /// Stream segments completed.
        pub stream_segments: u64,
        /// Stream bytes moved.
        pub stream_bytes: u64,
        /// Stream flush calls made.
        pub stream_flushes: u64,
        /// Stream errors.
        pub stream_errors: u64,
        /// The [`Strategy`] of the last stream started.
        pub stream_strategy: u64,
        /// Device resets that brought back a queue (after an error or a stall).
        pub queue_resets: u64,
        /// Send queues the watchdog found stalled (sends held, none completed, for
        /// the watchdog's limit).
        pub queue_stalls: u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_request_fits_the_decode_buffer() {
        for size in [
            SendMadIn::SIZE,
            StreamStartIn::SIZE,
            StreamWaitIn::SIZE,
            StreamReleaseIn::SIZE,
            StreamStopIn::SIZE,
        ] {
            assert!(size <= MAX_ABI_SIZE);
        }
        assert_eq!(
            StreamWaitOut::SIZE,
            24 + 24 * MAX_WAIT_SEGMENTS,
            "a reply the driver writes in place may be larger"
        );
    }

    #[test]
    fn ctl_code_matches_devioctl_h() {
        // CTL_CODE(FILE_DEVICE_UNKNOWN=0x22, 0x800, METHOD_BUFFERED, FILE_ANY_ACCESS) = 0x222000,
        // the value every Windows driver sample's first private IOCTL has.
        assert_eq!(
            ctl_code(0x22, 0x800, METHOD_BUFFERED, FILE_ANY_ACCESS),
            0x0022_2000
        );
        assert_eq!(
            ctl_code(0x22, 0x801, METHOD_OUT_DIRECT, FILE_READ_ACCESS),
            0x0022_6006
        );
        for i in Ioctl::ALL {
            let c = i.code();
            assert_eq!(device_type_of(c), FILE_DEVICE_RHCA);
            assert!(
                function_of(c) >= 0x800,
                "vendor function codes start at 0x800"
            );
            assert_ne!(method_of(c), METHOD_NEITHER);
            assert_eq!(Ioctl::from_code(c), Ok(i));
        }
        assert_eq!(
            method_of(IOCTL_RHCA_STREAM_START_CAPTURE),
            METHOD_OUT_DIRECT
        );
        assert_eq!(
            method_of(IOCTL_RHCA_STREAM_START_PLAYBACK),
            METHOD_IN_DIRECT
        );
        assert_eq!(
            access_of(IOCTL_RHCA_SEND_MAD),
            FILE_READ_ACCESS | FILE_WRITE_ACCESS
        );
        // The same function with a weaker access is not an RHCA code.
        let weakened = ctl_code(FILE_DEVICE_RHCA, 0x802, METHOD_BUFFERED, FILE_ANY_ACCESS);
        assert_eq!(
            Ioctl::from_code(weakened),
            Err(Error::UnknownIoctl(weakened))
        );
    }

    #[test]
    fn lengths_are_checked_first() {
        assert_eq!(Ioctl::SendMad.check_lengths(280, 24), Ok(()));
        assert_eq!(
            Ioctl::SendMad.check_lengths(279, 24),
            Err(Error::Truncated {
                need: 280,
                have: 279
            })
        );
        assert!(matches!(
            Ioctl::SendMad.check_lengths(281, 24),
            Err(Error::SizeMismatch { .. })
        ));
        assert!(Ioctl::SendMad.check_lengths(280, 23).is_err());
        assert!(Ioctl::QueryDevice.check_lengths(1, 48).is_err());
        assert!(Ioctl::RecvMad.check_lengths(0, 319).is_err());
        assert!(Ioctl::StreamStop.check_lengths(16, 0).is_ok());
    }

    #[test]
    fn header_is_checked() {
        let mut buf = [0u8; 24];
        let s = SendMadOut {
            tid: 5,
            ..SendMadOut::default()
        };
        assert_eq!(s.encode(&mut buf), Ok(24));
        assert_eq!(&buf[0..8], &[24, 0, 0, 0, 2, 0, 0, 0]);
        assert_eq!(SendMadOut::decode(&buf), Ok(s));
        // A version-1 client (whose WAIT reply held 16 segments) is told so.
        let mut v1 = buf;
        v1[4] = 1;
        assert_eq!(
            SendMadOut::decode(&v1),
            Err(Error::UnsupportedVersion {
                found: 1,
                supported: 2
            })
        );
        let mut big = buf;
        big[0] = 25;
        assert_eq!(
            SendMadOut::decode(&big),
            Err(Error::SizeMismatch {
                found: 25,
                expected: 24
            })
        );
        assert!(SendMadOut::decode(&buf[..23]).is_err());
        assert!(s.encode(&mut [0u8; 23]).is_err());
    }

    fn smp_get() -> SendMadIn {
        let mut m = SendMadIn {
            qp: 0,
            dlid: mad::PERMISSIVE_LID,
            ..SendMadIn::default()
        };
        MadHeader {
            base_version: 1,
            mgmt_class: mad::class::SUBN_DIRECTED_ROUTE,
            class_version: 1,
            method: mad::method::GET,
            tid: 9,
            attr_id: mad::attr::NODE_INFO,
            ..MadHeader::default()
        }
        .encode(&mut m.mad)
        .unwrap();
        m
    }

    #[test]
    fn send_mad_validation() {
        let m = smp_get();
        assert_eq!(m.validate().map(|h| h.tid), Ok(9));
        let mut buf = [0u8; 280];
        m.encode(&mut buf).unwrap();
        assert_eq!(SendMadIn::decode(&buf), Ok(m));
        assert!(
            SendMadIn {
                qp: 1,
                remote_qpn: 1,
                qkey: mad::QKEY_GSI,
                ..m
            }
            .validate()
            .is_err(),
            "SMP on QP1"
        );
        assert!(SendMadIn { qp: 2, ..m }.validate().is_err());
        assert!(SendMadIn { sl: 16, ..m }.validate().is_err());
        assert!(SendMadIn { dlid: 0, ..m }.validate().is_err());
        assert!(
            SendMadIn { dlid: 5, ..m }.validate().is_err(),
            "DR SMP needs the permissive LID"
        );
        assert!(SendMadIn { flags: 1, ..m }.validate().is_err());
        assert!(SendMadIn { remote_qpn: 1, ..m }.validate().is_err());
        let mut gmp = SendMadIn {
            qp: 1,
            dlid: 3,
            remote_qpn: 1,
            qkey: mad::QKEY_GSI,
            ..m
        };
        gmp.mad[1] = mad::class::PERF_MGT;
        assert!(gmp.validate().is_ok());
        assert!(
            SendMadIn {
                qp: 0,
                remote_qpn: 0,
                qkey: 0,
                ..gmp
            }
            .validate()
            .is_err(),
            "GMP on QP0"
        );
        assert!(
            SendMadIn {
                remote_qpn: 1 << 24,
                ..gmp
            }
            .validate()
            .is_err()
        );
        let mut bad = gmp;
        bad.mad[0] = 2;
        assert!(bad.validate().is_err());
    }

    #[test]
    fn verify_is_a_playback_flag() {
        let s = StreamStartIn {
            segment_size: 65536,
            ..StreamStartIn::default()
        };
        let ok = |s: &StreamStartIn, i, len| s.validate(i, len, 8, 4096, 1 << 20);
        assert!(
            ok(
                &StreamStartIn {
                    flags: START_FLAG_VERIFY,
                    direction: 1,
                    ..s
                },
                Ioctl::StreamStartPlayback,
                4 << 20
            )
            .is_ok()
        );
        assert!(
            ok(
                &StreamStartIn {
                    flags: 2,
                    direction: 1,
                    ..s
                },
                Ioctl::StreamStartPlayback,
                4 << 20
            )
            .is_err()
        );
    }

    #[test]
    fn stream_start_validation() {
        let s = StreamStartIn {
            segment_size: 65536,
            ..StreamStartIn::default()
        };
        let ok = |s: &StreamStartIn, i, len| s.validate(i, len, 8, 4096, 1 << 20);
        assert_eq!(
            ok(&s, Ioctl::StreamStartCapture, 64 * 65536),
            Ok(Strategy::Auto)
        );
        assert!(
            ok(&s, Ioctl::StreamStartPlayback, 64 * 65536).is_err(),
            "direction vs code"
        );
        let p = StreamStartIn {
            direction: 1,
            strategy: 2,
            ..s
        };
        assert_eq!(
            ok(&p, Ioctl::StreamStartPlayback, 2 * 65536),
            Ok(Strategy::PersistentSg)
        );
        assert!(
            ok(&s, Ioctl::StreamStartCapture, 65536).is_err(),
            "one segment"
        );
        assert!(
            ok(&s, Ioctl::StreamStartCapture, 64 * 65536 + 4096).is_err(),
            "not whole segments"
        );
        assert!(
            ok(
                &StreamStartIn {
                    segment_size: 6000,
                    ..s
                },
                Ioctl::StreamStartCapture,
                12000
            )
            .is_err()
        );
        assert!(
            ok(
                &StreamStartIn {
                    segment_size: 2 << 20,
                    ..s
                },
                Ioctl::StreamStartCapture,
                4 << 20
            )
            .is_err()
        );
        assert!(
            ok(
                &StreamStartIn { strategy: 5, ..s },
                Ioctl::StreamStartCapture,
                4 << 20
            )
            .is_err()
        );
        assert!(
            ok(
                &StreamStartIn { flags: 1, ..s },
                Ioctl::StreamStartCapture,
                4 << 20
            )
            .is_err(),
            "VERIFY is a playback flag"
        );

        assert!(
            ok(
                &StreamStartIn { direction: 2, ..s },
                Ioctl::StreamStartCapture,
                4 << 20
            )
            .is_err()
        );
        assert!(ok(&s, Ioctl::StreamStop, 4 << 20).is_err());
        assert!(
            s.validate(Ioctl::StreamStartCapture, 2 * 65536, 1 << 17, 4096, 1 << 20)
                .is_err(),
            "DMA alignment"
        );
    }

    #[test]
    fn nested_arrays_round_trip() {
        let mut w = StreamWaitOut {
            count: 2,
            strategy: 2,
            ..StreamWaitOut::default()
        };
        w.segments[1] = SegmentInfo {
            sequence: 77,
            index: 13,
            bytes: 4096,
            status: 0,
            reserved0: 0,
        };
        let mut buf = [0u8; StreamWaitOut::SIZE];
        w.encode(&mut buf).unwrap();
        // header 8 + 4 u32 = 24, second entry at 24 + 24.
        assert_eq!(&buf[48..56], &77u64.to_le_bytes());
        assert_eq!(StreamWaitOut::decode(&buf), Ok(w));
    }
}
