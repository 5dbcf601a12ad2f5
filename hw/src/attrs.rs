//! IBTA attribute layouts RHCA's agents and tools exchange (`docs/device.md` §9).
//!
//! They are `NodeInfo`, `NodeDescription`, `PortInfo`, `GUIDInfo` and `P_KeyTable` (subnet management, IBTA vol. 1
//! §14.2.5) and `PortCounters` (performance management, §16.1.3.5). All big-endian.
//!
//! Each attribute encodes into and decodes from the data area of its MAD (`mad::smp::DATA`
//! for SMPs, `mad::GMP_DATA` plus 40 for `PortCounters`, which follows the 40-byte PMA
//! reserved area). Decoders check lengths and the values the interface constrains.

use crate::error::{Error, Result};
use crate::wire::{Reader, Writer};

/// `NodeInfo` (40 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NodeInfo {
    /// `BaseVersion` (1).
    pub base_version: u8,
    /// `ClassVersion` (1).
    pub class_version: u8,
    /// `NodeType`: 1 channel adapter, 2 switch, 3 router.
    pub node_type: u8,
    /// `NumPorts`.
    pub num_ports: u8,
    /// `SystemImageGUID`.
    pub system_image_guid: u64,
    /// `NodeGUID`.
    pub node_guid: u64,
    /// `PortGUID` of the port the SMP arrived on.
    pub port_guid: u64,
    /// `PartitionCap`: `P_Key` table entries.
    pub partition_cap: u16,
    /// `DeviceID`.
    pub device_id: u16,
    /// `Revision`.
    pub revision: u32,
    /// `LocalPortNum`: the port the SMP arrived on.
    pub local_port_num: u8,
    /// `VendorID` (24 bits).
    pub vendor_id: u32,
}

/// Node types.
pub mod node_type {
    /// Channel adapter.
    pub const CA: u8 = 1;
    /// Switch.
    pub const SWITCH: u8 = 2;
}

impl NodeInfo {
    /// Encoded size.
    pub const SIZE: usize = 40;

    /// Encodes into `out`.
    ///
    /// # Errors
    /// [`Error::Truncated`]; [`Error::InvalidField`] for a vendor id over 24 bits.
    pub fn encode(&self, out: &mut [u8]) -> Result<()> {
        if self.vendor_id >> 24 != 0 {
            return Err(Error::InvalidField {
                field: "NodeInfo.VendorID",
                value: u64::from(self.vendor_id),
            });
        }
        Reader::require(out, Self::SIZE)?;
        let mut w = Writer::new(out);
        w.u8(self.base_version)?;
        w.u8(self.class_version)?;
        w.u8(self.node_type)?;
        w.u8(self.num_ports)?;
        w.u64_be(self.system_image_guid)?;
        w.u64_be(self.node_guid)?;
        w.u64_be(self.port_guid)?;
        w.u16_be(self.partition_cap)?;
        w.u16_be(self.device_id)?;
        w.u32_be(self.revision)?;
        w.u8(self.local_port_num)?;
        w.bytes(&self.vendor_id.to_be_bytes()[1..])
    }

    /// Decodes.
    ///
    /// # Errors
    /// [`Error::Truncated`]; [`Error::InvalidField`] for a node type outside 1..=3.
    pub fn decode(buf: &[u8]) -> Result<Self> {
        let mut r = Reader::new(buf);
        let n = Self {
            base_version: r.u8()?,
            class_version: r.u8()?,
            node_type: r.u8()?,
            num_ports: r.u8()?,
            system_image_guid: r.u64_be()?,
            node_guid: r.u64_be()?,
            port_guid: r.u64_be()?,
            partition_cap: r.u16_be()?,
            device_id: r.u16_be()?,
            revision: r.u32_be()?,
            local_port_num: r.u8()?,
            vendor_id: {
                let v = r.array::<3>()?;
                u32::from_be_bytes([0, v[0], v[1], v[2]])
            },
        };
        if !(1..=3).contains(&n.node_type) {
            return Err(Error::InvalidField {
                field: "NodeInfo.NodeType",
                value: u64::from(n.node_type),
            });
        }
        Ok(n)
    }
}

/// `NodeDescription`: 64 bytes of UTF-8, NUL padded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeDescription(pub [u8; 64]);

impl NodeDescription {
    /// Encoded size.
    pub const SIZE: usize = 64;

    /// A description from `text` (truncated to 64 bytes).
    #[must_use]
    pub fn new(text: &str) -> Self {
        let mut d = [0u8; 64];
        let n = text.len().min(64);
        d[..n].copy_from_slice(&text.as_bytes()[..n]);
        Self(d)
    }

    /// The text up to the first NUL, if it is UTF-8.
    #[must_use]
    pub fn text(&self) -> Option<&str> {
        let end = self.0.iter().position(|&b| b == 0).unwrap_or(64);
        core::str::from_utf8(&self.0[..end]).ok()
    }

    /// Decodes.
    ///
    /// # Errors
    /// [`Error::Truncated`].
    pub fn decode(buf: &[u8]) -> Result<Self> {
        Ok(Self(Reader::new(buf).array()?))
    }
}

/// `PortInfo` (64 bytes): the fields RHCA uses; the others encode as 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PortInfo {
    /// `M_Key`.
    pub m_key: u64,
    /// `GidPrefix`.
    pub gid_prefix: u64,
    /// `LID`.
    pub lid: u16,
    /// `MasterSMLID`.
    pub master_sm_lid: u16,
    /// `CapabilityMask`.
    pub capability_mask: u32,
    /// `LocalPortNum`.
    pub local_port_num: u8,
    /// `LinkWidthActive` (1: 1x, 2: 4x, 4: 8x, 8: 12x).
    pub link_width_active: u8,
    /// `PortState`: 1 Down, 2 Init, 3 Armed, 4 Active.
    pub port_state: u8,
    /// `PortPhysicalState`: 5 is `LinkUp`.
    pub port_physical_state: u8,
    /// `LMC` (3 bits).
    pub lmc: u8,
    /// `LinkSpeedActive` (1: 2.5 Gb/s ... ).
    pub link_speed_active: u8,
    /// `NeighborMTU` (4 bits; 4 = 2048).
    pub neighbor_mtu: u8,
    /// `MasterSMSL` (4 bits).
    pub master_sm_sl: u8,
}

/// Port states (`PortInfo.PortState`).
pub mod port_state {
    /// Down.
    pub const DOWN: u8 = 1;
    /// Init.
    pub const INIT: u8 = 2;
    /// Armed.
    pub const ARMED: u8 = 3;
    /// Active.
    pub const ACTIVE: u8 = 4;
}

impl PortInfo {
    /// Encoded size.
    pub const SIZE: usize = 64;

    /// Encodes into `out` (IBTA Table 146 byte positions).
    ///
    /// # Errors
    /// [`Error::Truncated`]; [`Error::InvalidField`] for 4-bit or 3-bit fields out of range.
    pub fn encode(&self, out: &mut [u8]) -> Result<()> {
        for (field, v, bits) in [
            ("PortInfo.PortState", self.port_state, 4),
            ("PortInfo.PortPhysicalState", self.port_physical_state, 4),
            ("PortInfo.LMC", self.lmc, 3),
            ("PortInfo.LinkSpeedActive", self.link_speed_active, 4),
            ("PortInfo.NeighborMTU", self.neighbor_mtu, 4),
            ("PortInfo.MasterSMSL", self.master_sm_sl, 4),
        ] {
            if v >> bits != 0 {
                return Err(Error::InvalidField {
                    field,
                    value: u64::from(v),
                });
            }
        }
        Reader::require(out, Self::SIZE)?;
        out[..Self::SIZE].fill(0);
        let mut w = Writer::new(out);
        w.u64_be(self.m_key)?;
        w.u64_be(self.gid_prefix)?;
        w.u16_be(self.lid)?;
        w.u16_be(self.master_sm_lid)?;
        w.u32_be(self.capability_mask)?;
        out[28] = self.local_port_num;
        out[31] = self.link_width_active;
        out[32] = self.port_state; // LinkSpeedSupported (high nibble) 0, PortState (low nibble)
        out[33] = self.port_physical_state << 4;
        out[34] = self.lmc;
        out[35] = self.link_speed_active << 4;
        out[36] = (self.neighbor_mtu << 4) | self.master_sm_sl;
        Ok(())
    }

    /// Decodes.
    ///
    /// # Errors
    /// [`Error::Truncated`]; [`Error::InvalidField`] for a port state outside 0..=4.
    pub fn decode(buf: &[u8]) -> Result<Self> {
        Reader::require(buf, Self::SIZE)?;
        let mut r = Reader::new(buf);
        let p = Self {
            m_key: r.u64_be()?,
            gid_prefix: r.u64_be()?,
            lid: r.u16_be()?,
            master_sm_lid: r.u16_be()?,
            capability_mask: r.u32_be()?,
            local_port_num: buf[28],
            link_width_active: buf[31],
            port_state: buf[32] & 0x0F,
            port_physical_state: buf[33] >> 4,
            lmc: buf[34] & 0x07,
            link_speed_active: buf[35] >> 4,
            neighbor_mtu: buf[36] >> 4,
            master_sm_sl: buf[36] & 0x0F,
        };
        if p.port_state > port_state::ACTIVE {
            return Err(Error::InvalidField {
                field: "PortInfo.PortState",
                value: u64::from(p.port_state),
            });
        }
        Ok(p)
    }
}

/// One `GUIDInfo` block: 8 GUIDs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GuidInfo(pub [u64; 8]);

impl GuidInfo {
    /// Encoded size.
    pub const SIZE: usize = 64;

    /// Encodes.
    ///
    /// # Errors
    /// [`Error::Truncated`].
    pub fn encode(&self, out: &mut [u8]) -> Result<()> {
        let mut w = Writer::new(out);
        self.0.iter().try_for_each(|&g| w.u64_be(g))
    }

    /// Decodes.
    ///
    /// # Errors
    /// [`Error::Truncated`].
    pub fn decode(buf: &[u8]) -> Result<Self> {
        let mut r = Reader::new(buf);
        let mut g = [0u64; 8];
        for v in &mut g {
            *v = r.u64_be()?;
        }
        Ok(Self(g))
    }
}

/// One `P_KeyTable` block: 32 `P_Key`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PKeyTable(pub [u16; 32]);

impl PKeyTable {
    /// Encoded size.
    pub const SIZE: usize = 64;
    /// The default full-membership `P_Key`.
    pub const DEFAULT_PKEY: u16 = 0xFFFF;

    /// Encodes.
    ///
    /// # Errors
    /// [`Error::Truncated`].
    pub fn encode(&self, out: &mut [u8]) -> Result<()> {
        let mut w = Writer::new(out);
        self.0.iter().try_for_each(|&k| w.u16_be(k))
    }

    /// Decodes.
    ///
    /// # Errors
    /// [`Error::Truncated`].
    pub fn decode(buf: &[u8]) -> Result<Self> {
        let mut r = Reader::new(buf);
        let mut k = [0u16; 32];
        for v in &mut k {
            *v = r.u16_be()?;
        }
        Ok(Self(k))
    }
}

/// `PortCounters` (PerfMgt): the counters RHCA's fabric keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PortCounters {
    /// `PortSelect`.
    pub port_select: u8,
    /// `CounterSelect`.
    pub counter_select: u16,
    /// `SymbolErrorCounter`.
    pub symbol_errors: u16,
    /// `LinkDownedCounter`.
    pub link_downed: u8,
    /// `PortRcvErrors`.
    pub rcv_errors: u16,
    /// `PortXmitDiscards`.
    pub xmit_discards: u16,
    /// `PortXmitData` (in 32-bit words).
    pub xmit_data: u32,
    /// `PortRcvData` (in 32-bit words).
    pub rcv_data: u32,
    /// `PortXmitPkts`.
    pub xmit_pkts: u32,
    /// `PortRcvPkts`.
    pub rcv_pkts: u32,
}

impl PortCounters {
    /// Encoded size (the attribute's first 40 bytes).
    pub const SIZE: usize = 40;

    /// Encodes (IBTA Table 247 byte positions).
    ///
    /// # Errors
    /// [`Error::Truncated`].
    pub fn encode(&self, out: &mut [u8]) -> Result<()> {
        Reader::require(out, Self::SIZE)?;
        out[..Self::SIZE].fill(0);
        out[1] = self.port_select;
        out[2..4].copy_from_slice(&self.counter_select.to_be_bytes());
        out[4..6].copy_from_slice(&self.symbol_errors.to_be_bytes());
        out[7] = self.link_downed;
        out[8..10].copy_from_slice(&self.rcv_errors.to_be_bytes());
        out[14..16].copy_from_slice(&self.xmit_discards.to_be_bytes());
        out[24..28].copy_from_slice(&self.xmit_data.to_be_bytes());
        out[28..32].copy_from_slice(&self.rcv_data.to_be_bytes());
        out[32..36].copy_from_slice(&self.xmit_pkts.to_be_bytes());
        out[36..40].copy_from_slice(&self.rcv_pkts.to_be_bytes());
        Ok(())
    }

    /// Decodes.
    ///
    /// # Errors
    /// [`Error::Truncated`].
    pub fn decode(buf: &[u8]) -> Result<Self> {
        Reader::require(buf, Self::SIZE)?;
        let be16 = |i: usize| u16::from_be_bytes([buf[i], buf[i + 1]]);
        let be32 = |i: usize| u32::from_be_bytes([buf[i], buf[i + 1], buf[i + 2], buf[i + 3]]);
        Ok(Self {
            port_select: buf[1],
            counter_select: be16(2),
            symbol_errors: be16(4),
            link_downed: buf[7],
            rcv_errors: be16(8),
            xmit_discards: be16(14),
            xmit_data: be32(24),
            rcv_data: be32(28),
            xmit_pkts: be32(32),
            rcv_pkts: be32(36),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_info_layout() {
        let n = NodeInfo {
            base_version: 1,
            class_version: 1,
            node_type: node_type::CA,
            num_ports: 1,
            system_image_guid: 0x1111_2222_3333_4444,
            node_guid: 0x0002_c903_0000_0001,
            port_guid: 0x0002_c903_0000_0002,
            partition_cap: 32,
            device_id: 0x5248,
            revision: 1,
            local_port_num: 1,
            vendor_id: 0x00_1234,
        };
        let mut b = [0u8; 40];
        n.encode(&mut b).unwrap();
        assert_eq!(&b[0..4], &[1, 1, 1, 1]);
        assert_eq!(&b[12..20], &0x0002_c903_0000_0001u64.to_be_bytes());
        assert_eq!(&b[30..32], &[0x52, 0x48]);
        assert_eq!(b[36], 1);
        assert_eq!(&b[37..40], &[0x00, 0x12, 0x34]);
        assert_eq!(NodeInfo::decode(&b), Ok(n));
        b[2] = 7;
        assert!(NodeInfo::decode(&b).is_err());
        assert!(
            NodeInfo {
                vendor_id: 1 << 24,
                ..n
            }
            .encode(&mut b)
            .is_err()
        );
    }

    #[test]
    fn port_info_layout() {
        let p = PortInfo {
            gid_prefix: 0xfe80_0000_0000_0000,
            lid: 7,
            master_sm_lid: 1,
            local_port_num: 1,
            link_width_active: 2,
            port_state: port_state::ACTIVE,
            port_physical_state: 5,
            lmc: 0,
            link_speed_active: 1,
            neighbor_mtu: 4,
            ..PortInfo::default()
        };
        let mut b = [0xAAu8; 64];
        p.encode(&mut b).unwrap();
        assert_eq!(&b[16..18], &[0, 7], "LID");
        assert_eq!(&b[18..20], &[0, 1], "MasterSMLID");
        assert_eq!(b[32] & 0x0F, 4, "PortState");
        assert_eq!(b[33] >> 4, 5, "PortPhysicalState");
        assert_eq!(b[63], 0, "unused bytes are zero");
        assert_eq!(PortInfo::decode(&b), Ok(p));
        assert!(
            PortInfo {
                port_state: 16,
                ..p
            }
            .encode(&mut b)
            .is_err()
        );
    }

    #[test]
    fn tables_and_counters_round_trip() {
        let guids = GuidInfo([1, 2, 3, 4, 5, 6, 7, 8]);
        let mut buf = [0u8; 64];
        guids.encode(&mut buf).unwrap();
        assert_eq!(&buf[8..16], &2u64.to_be_bytes());
        assert_eq!(GuidInfo::decode(&buf), Ok(guids));
        let mut keys = [0u16; 32];
        keys[0] = PKeyTable::DEFAULT_PKEY;
        let table = PKeyTable(keys);
        table.encode(&mut buf).unwrap();
        assert_eq!(&buf[0..2], &[0xFF, 0xFF]);
        assert_eq!(PKeyTable::decode(&buf), Ok(table));
        let counters = PortCounters {
            port_select: 1,
            xmit_pkts: 10,
            rcv_pkts: 9,
            xmit_data: 640,
            rcv_data: 576,
            ..PortCounters::default()
        };
        let mut buf = [0u8; 40];
        counters.encode(&mut buf).unwrap();
        assert_eq!(&buf[32..36], &10u32.to_be_bytes());
        assert_eq!(PortCounters::decode(&buf), Ok(counters));
        let desc = NodeDescription::new("rhca-sim node 1");
        assert_eq!(desc.text(), Some("rhca-sim node 1"));
        assert_eq!(NodeDescription::decode(&desc.0), Ok(desc));
    }
}
