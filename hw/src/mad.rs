//! Management datagrams (`docs/device.md` §9): sizes, the common MAD header, the SMP layout
//! fields RHCA uses, and the GRH.
//!
//! MAD fields are big-endian as on the wire (IBTA vol. 1 §13.4). Sizes follow Linux `ib_mad`
//! and `WinOF`: 256-byte MADs, received into 296-byte buffers whose first 40 bytes are reserved
//! for the GRH (`../shared/reference/rings-and-iommu.md` §1.1, §1.5).

use crate::error::{Error, Result};
use crate::wire::{Reader, Writer};

/// A MAD on the wire.
pub const MAD_SIZE: usize = 256;
/// The common MAD header.
pub const MAD_HDR_SIZE: usize = 24;
/// The Global Route Header.
pub const GRH_SIZE: usize = 40;
/// A receive buffer: GRH area, then the MAD.
pub const RECV_BUF_SIZE: usize = GRH_SIZE + MAD_SIZE;
/// The only base version of IB MADs.
pub const BASE_VERSION: u8 = 1;
/// The well-known `Q_Key` of QP1 (GSI).
pub const QKEY_GSI: u32 = 0x8001_0000;
/// The permissive LID, used by directed-route SMPs.
pub const PERMISSIVE_LID: u16 = 0xFFFF;
/// The most hops a directed-route path may have (the path arrays hold 64 bytes, entry 0 unused).
pub const MAX_DR_HOPS: u8 = 63;

/// Management classes RHCA understands.
pub mod class {
    /// Subnet management, LID routed.
    pub const SUBN_LID_ROUTED: u8 = 0x01;
    /// Subnet management, directed route.
    pub const SUBN_DIRECTED_ROUTE: u8 = 0x81;
    /// Subnet administration.
    pub const SUBN_ADM: u8 = 0x03;
    /// Performance management.
    pub const PERF_MGT: u8 = 0x04;
    /// Baseboard management.
    pub const BM: u8 = 0x05;
    /// Device management.
    pub const DEV_MGT: u8 = 0x06;
    /// Communication management.
    pub const CM: u8 = 0x07;
    /// SNMP tunnelling.
    pub const SNMP: u8 = 0x08;
    /// Congestion control.
    pub const CC: u8 = 0x21;

    /// Whether `c` is a subnet management class (QP0 only).
    #[must_use]
    pub const fn is_smp(c: u8) -> bool {
        c == SUBN_LID_ROUTED || c == SUBN_DIRECTED_ROUTE
    }

    /// Whether `c` is a class the interface accepts (IBTA Table 115 plus the vendor ranges).
    #[must_use]
    pub const fn is_known(c: u8) -> bool {
        matches!(c, 0x01 | 0x81 | 0x03..=0x08 | 0x09..=0x0F | 0x21 | 0x30..=0x4F)
    }
}

/// MAD methods (IBTA Table 113); responses have bit 7 set.
pub mod method {
    /// Get.
    pub const GET: u8 = 0x01;
    /// Set.
    pub const SET: u8 = 0x02;
    /// Send.
    pub const SEND: u8 = 0x03;
    /// Trap.
    pub const TRAP: u8 = 0x05;
    /// Report.
    pub const REPORT: u8 = 0x06;
    /// `TrapRepress`.
    pub const TRAP_REPRESS: u8 = 0x07;
    /// `GetTable`.
    pub const GET_TABLE: u8 = 0x12;
    /// `GetTraceTable`.
    pub const GET_TRACE_TABLE: u8 = 0x13;
    /// `GetMulti`.
    pub const GET_MULTI: u8 = 0x14;
    /// Delete.
    pub const DELETE: u8 = 0x15;
    /// The response bit.
    pub const RESPONSE: u8 = 0x80;
    /// `GetResp`.
    pub const GET_RESP: u8 = GET | RESPONSE;
    /// `ReportResp`.
    pub const REPORT_RESP: u8 = REPORT | RESPONSE;

    /// Whether `m` is a defined method.
    #[must_use]
    pub const fn is_known(m: u8) -> bool {
        matches!(
            m,
            0x01 | 0x02
                | 0x03
                | 0x05
                | 0x06
                | 0x07
                | 0x12
                | 0x13
                | 0x14
                | 0x15
                | 0x81
                | 0x86
                | 0x92
                | 0x93
                | 0x94
                | 0x95
        )
    }
}

/// Attribute ids used by RHCA's agents and tools.
pub mod attr {
    /// `ClassPortInfo` (every GMP class).
    pub const CLASS_PORT_INFO: u16 = 0x0001;
    /// Notice (traps).
    pub const NOTICE: u16 = 0x0002;
    /// SMP `NodeDescription`.
    pub const NODE_DESCRIPTION: u16 = 0x0010;
    /// SMP `NodeInfo`.
    pub const NODE_INFO: u16 = 0x0011;
    /// SMP `GUIDInfo`.
    pub const GUID_INFO: u16 = 0x0014;
    /// SMP `PortInfo`.
    pub const PORT_INFO: u16 = 0x0015;
    /// SMP `P_KeyTable`.
    pub const PKEY_TABLE: u16 = 0x0016;
    /// `PerfMgt` `PortCounters`.
    pub const PORT_COUNTERS: u16 = 0x0012;
}

/// MAD status codes (IBTA Table 114), bits 4:2 of the status field.
pub mod status {
    /// Success.
    pub const OK: u16 = 0x0000;
    /// Bad base or class version.
    pub const BAD_VERSION: u16 = 0x0004;
    /// Method not supported.
    pub const METHOD_NOT_SUPPORTED: u16 = 0x0008;
    /// Method/attribute combination not supported.
    pub const METHOD_ATTR_NOT_SUPPORTED: u16 = 0x000C;
    /// Invalid attribute or attribute modifier value.
    pub const INVALID_FIELD: u16 = 0x001C;
    /// The direction bit of a directed-route SMP's status field (set on returning packets).
    pub const DR_DIRECTION: u16 = 0x8000;
}

/// Byte offsets inside a 256-byte SMP (IBTA §14.2.1.1 and §14.2.1.2).
pub mod smp {
    /// `M_Key` (8 bytes).
    pub const MKEY: usize = 24;
    /// `DrSLID` (directed route only).
    pub const DR_SLID: usize = 32;
    /// `DrDLID` (directed route only).
    pub const DR_DLID: usize = 34;
    /// SMP data (64 bytes).
    pub const DATA: usize = 64;
    /// Length of the SMP data.
    pub const DATA_SIZE: usize = 64;
    /// Initial path (directed route, 64 bytes).
    pub const INITIAL_PATH: usize = 128;
    /// Return path (directed route, 64 bytes).
    pub const RETURN_PATH: usize = 192;
}

/// Byte offset of the data of a `PerfMgt` (and other GMP) MAD: header, 40 reserved bytes, data.
pub const GMP_DATA: usize = 64;

/// The 24-byte common MAD header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MadHeader {
    /// Base version (1).
    pub base_version: u8,
    /// Management class.
    pub mgmt_class: u8,
    /// Class version.
    pub class_version: u8,
    /// Method (bit 7: response).
    pub method: u8,
    /// Status (for directed-route SMPs bit 15 is the direction bit D).
    pub status: u16,
    /// Class-specific (for directed-route SMPs: hop pointer in the high byte, hop count low).
    pub class_specific: u16,
    /// Transaction id.
    pub tid: u64,
    /// Attribute id.
    pub attr_id: u16,
    /// Attribute modifier.
    pub attr_mod: u32,
}

impl MadHeader {
    /// Encodes the header into the first 24 bytes of `out` (big-endian).
    ///
    /// # Errors
    /// [`Error::Truncated`] when `out` is short.
    pub fn encode(&self, out: &mut [u8]) -> Result<()> {
        Reader::require(out, MAD_HDR_SIZE)?;
        let mut w = Writer::new(out);
        w.u8(self.base_version)?;
        w.u8(self.mgmt_class)?;
        w.u8(self.class_version)?;
        w.u8(self.method)?;
        w.u16_be(self.status)?;
        w.u16_be(self.class_specific)?;
        w.u64_be(self.tid)?;
        w.u16_be(self.attr_id)?;
        w.u16_be(0)?;
        w.u32_be(self.attr_mod)
    }

    /// Decodes and validates a MAD header.
    ///
    /// # Errors
    /// [`Error::InvalidField`] for a base version other than 1, an unknown class or method, or a
    /// directed-route hop count beyond 63; [`Error::ReservedNonZero`] for the reserved field.
    pub fn decode(buf: &[u8]) -> Result<Self> {
        let mut r = Reader::new(buf);
        let h = Self {
            base_version: r.u8()?,
            mgmt_class: r.u8()?,
            class_version: r.u8()?,
            method: r.u8()?,
            status: r.u16_be()?,
            class_specific: r.u16_be()?,
            tid: r.u64_be()?,
            attr_id: {
                let a = r.u16_be()?;
                let reserved = r.u16_be()?;
                if reserved != 0 {
                    return Err(Error::ReservedNonZero {
                        field: "mad.reserved",
                        value: u64::from(reserved),
                    });
                }
                a
            },
            attr_mod: r.u32_be()?,
        };
        if h.base_version != BASE_VERSION {
            return Err(Error::InvalidField {
                field: "mad.base_version",
                value: u64::from(h.base_version),
            });
        }
        if !class::is_known(h.mgmt_class) {
            return Err(Error::InvalidField {
                field: "mad.mgmt_class",
                value: u64::from(h.mgmt_class),
            });
        }
        if !method::is_known(h.method) {
            return Err(Error::InvalidField {
                field: "mad.method",
                value: u64::from(h.method),
            });
        }
        if h.mgmt_class == class::SUBN_DIRECTED_ROUTE && h.hop_count() > MAX_DR_HOPS {
            return Err(Error::InvalidField {
                field: "mad.hop_count",
                value: u64::from(h.hop_count()),
            });
        }
        Ok(h)
    }

    /// Whether the method is a response.
    #[must_use]
    pub const fn is_response(&self) -> bool {
        self.method & method::RESPONSE != 0
    }

    /// Directed route: the hop count.
    #[must_use]
    pub const fn hop_count(&self) -> u8 {
        (self.class_specific & 0xFF) as u8
    }

    /// Directed route: the hop pointer.
    #[must_use]
    pub const fn hop_pointer(&self) -> u8 {
        (self.class_specific >> 8) as u8
    }

    /// Directed route: the direction bit (set on the way back).
    #[must_use]
    pub const fn direction(&self) -> bool {
        self.status & status::DR_DIRECTION != 0
    }
}

/// A `PerfMgt` `Get(PortCounters)` of port `port` (IBTA §16.1.3.5): the class header, and the
/// `PortSelect` byte at offset 1 of the attribute data.
#[must_use]
pub fn port_counters_get(port: u8, tid: u64) -> [u8; MAD_SIZE] {
    let mut m = [0u8; MAD_SIZE];
    // The buffer is MAD_SIZE bytes: the 24-byte header always fits.
    let _ = MadHeader {
        base_version: BASE_VERSION,
        mgmt_class: class::PERF_MGT,
        class_version: 1,
        method: method::GET,
        tid,
        attr_id: attr::PORT_COUNTERS,
        ..MadHeader::default()
    }
    .encode(&mut m);
    m[GMP_DATA + 1] = port;
    m
}

/// A directed-route `SubnGet(attr_id, attr_mod)` SMP along `path` (IBTA §14.2.2).
///
/// The initial path's entry 0 is unused, entry *i* is the output port at hop *i*, so the hop count is
/// `path.len() - 1`; `DrSLID` and `DrDLID` are the permissive LID (the whole route is directed).
///
/// # Errors
/// [`Error::LengthTooSmall`] for an empty path, [`Error::LengthTooLarge`] for more than
/// [`MAX_DR_HOPS`] hops.
pub fn directed_route_get(
    attr_id: u16,
    attr_mod: u32,
    path: &[u8],
    tid: u64,
) -> Result<[u8; MAD_SIZE]> {
    let hops = path.len().checked_sub(1).ok_or(Error::LengthTooSmall {
        field: "path",
        len: 0,
        min: 1,
    })?;
    let hops = u8::try_from(hops)
        .ok()
        .filter(|&h| h <= MAX_DR_HOPS)
        .ok_or_else(|| Error::LengthTooLarge {
            field: "path",
            len: path.len() as u64,
            limit: u64::from(MAX_DR_HOPS) + 1,
        })?;
    let mut m = [0u8; MAD_SIZE];
    MadHeader {
        base_version: BASE_VERSION,
        mgmt_class: class::SUBN_DIRECTED_ROUTE,
        class_version: 1,
        method: method::GET,
        class_specific: u16::from(hops),
        tid,
        attr_id,
        attr_mod,
        ..MadHeader::default()
    }
    .encode(&mut m)?;
    m[smp::DR_SLID..smp::DR_SLID + 2].copy_from_slice(&PERMISSIVE_LID.to_be_bytes());
    m[smp::DR_DLID..smp::DR_DLID + 2].copy_from_slice(&PERMISSIVE_LID.to_be_bytes());
    m[smp::INITIAL_PATH..smp::INITIAL_PATH + path.len()].copy_from_slice(path);
    Ok(m)
}

/// The 40-byte Global Route Header (IBTA §8.3), big-endian.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Grh {
    /// IP version (6), traffic class and flow label: `version << 28 | tclass << 20 | flow`.
    pub version_tclass_flow: u32,
    /// Payload length.
    pub paylen: u16,
    /// Next header (0x1B for IBA transport).
    pub next_hdr: u8,
    /// Hop limit.
    pub hop_limit: u8,
    /// Source GID.
    pub sgid: [u8; 16],
    /// Destination GID.
    pub dgid: [u8; 16],
}

impl Grh {
    /// Encodes into the first 40 bytes of `out`.
    ///
    /// # Errors
    /// [`Error::Truncated`] when `out` is short.
    pub fn encode(&self, out: &mut [u8]) -> Result<()> {
        Reader::require(out, GRH_SIZE)?;
        let mut w = Writer::new(out);
        w.u32_be(self.version_tclass_flow)?;
        w.u16_be(self.paylen)?;
        w.u8(self.next_hdr)?;
        w.u8(self.hop_limit)?;
        w.bytes(&self.sgid)?;
        w.bytes(&self.dgid)
    }

    /// Decodes a GRH, checking the IP version.
    ///
    /// # Errors
    /// [`Error::Truncated`]; [`Error::InvalidField`] for an IP version other than 6.
    pub fn decode(buf: &[u8]) -> Result<Self> {
        let mut r = Reader::new(buf);
        let g = Self {
            version_tclass_flow: r.u32_be()?,
            paylen: r.u16_be()?,
            next_hdr: r.u8()?,
            hop_limit: r.u8()?,
            sgid: r.array()?,
            dgid: r.array()?,
        };
        if g.version_tclass_flow >> 28 != 6 {
            return Err(Error::InvalidField {
                field: "grh.ip_version",
                value: u64::from(g.version_tclass_flow >> 28),
            });
        }
        Ok(g)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directed_route_get_lays_out_the_route() {
        let m = directed_route_get(attr::NODE_INFO, 0, &[0, 1, 3], 9).unwrap();
        let h = MadHeader::decode(&m).unwrap();
        assert_eq!(
            (
                h.mgmt_class,
                h.method,
                h.hop_count(),
                h.hop_pointer(),
                h.tid
            ),
            (class::SUBN_DIRECTED_ROUTE, method::GET, 2, 0, 9)
        );
        assert_eq!(&m[smp::DR_SLID..smp::DR_DLID + 2], &[0xFF; 4]);
        assert_eq!(&m[smp::INITIAL_PATH..smp::INITIAL_PATH + 4], &[0, 1, 3, 0]);
        assert!(directed_route_get(attr::NODE_INFO, 0, &[], 1).is_err());
        assert!(directed_route_get(attr::NODE_INFO, 0, &[0; 65], 1).is_err());
        assert!(directed_route_get(attr::NODE_INFO, 0, &[0; 64], 1).is_ok());
    }

    #[test]
    fn header_layout_is_ibta_big_endian() {
        let h = MadHeader {
            base_version: 1,
            mgmt_class: class::SUBN_DIRECTED_ROUTE,
            class_version: 1,
            method: method::GET,
            status: 0,
            class_specific: 0x0002, // hop pointer 0, hop count 2
            tid: 0x0102_0304_0506_0708,
            attr_id: attr::NODE_INFO,
            attr_mod: 0x0000_0001,
        };
        let mut b = [0u8; 24];
        h.encode(&mut b).unwrap();
        assert_eq!(
            b,
            [
                1, 0x81, 1, 1, 0, 0, 0, 2, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0x11, 0, 0, 0, 0, 0, 1
            ]
        );
        let d = MadHeader::decode(&b).unwrap();
        assert_eq!(d, h);
        assert_eq!(d.hop_count(), 2);
        assert_eq!(d.hop_pointer(), 0);
        assert!(!d.is_response());
    }

    #[test]
    fn header_rejects_invalid_fields() {
        let mut b = [0u8; 24];
        MadHeader {
            base_version: 1,
            mgmt_class: 4,
            class_version: 1,
            method: 1,
            ..Default::default()
        }
        .encode(&mut b)
        .unwrap();
        assert!(MadHeader::decode(&b).is_ok());
        let mut x = b;
        x[0] = 2;
        assert!(matches!(
            MadHeader::decode(&x),
            Err(Error::InvalidField {
                field: "mad.base_version",
                ..
            })
        ));
        let mut x = b;
        x[1] = 0x02;
        assert!(matches!(
            MadHeader::decode(&x),
            Err(Error::InvalidField {
                field: "mad.mgmt_class",
                ..
            })
        ));
        let mut x = b;
        x[3] = 0x04;
        assert!(matches!(
            MadHeader::decode(&x),
            Err(Error::InvalidField {
                field: "mad.method",
                ..
            })
        ));
        let mut x = b;
        x[19] = 1;
        assert!(matches!(
            MadHeader::decode(&x),
            Err(Error::ReservedNonZero { .. })
        ));
        let mut x = b;
        x[1] = 0x81;
        x[7] = 64;
        assert!(matches!(
            MadHeader::decode(&x),
            Err(Error::InvalidField {
                field: "mad.hop_count",
                ..
            })
        ));
        assert!(MadHeader::decode(&b[..23]).is_err());
    }

    #[test]
    fn smp_layout_fills_256_bytes() {
        assert_eq!(smp::RETURN_PATH + 64, MAD_SIZE);
        assert_eq!(smp::DATA + smp::DATA_SIZE, smp::INITIAL_PATH);
        assert_eq!(GMP_DATA + 192, MAD_SIZE);
        assert_eq!(RECV_BUF_SIZE, 296);
    }

    #[test]
    fn grh_round_trip() {
        let g = Grh {
            version_tclass_flow: 6 << 28 | 0x12345,
            paylen: 256,
            next_hdr: 0x1B,
            hop_limit: 1,
            sgid: [1; 16],
            dgid: [2; 16],
        };
        let mut b = [0u8; 40];
        g.encode(&mut b).unwrap();
        assert_eq!(&b[0..4], &[0x60, 0x01, 0x23, 0x45]);
        assert_eq!(Grh::decode(&b), Ok(g));
        b[0] = 0x40;
        assert!(Grh::decode(&b).is_err());
    }
}
