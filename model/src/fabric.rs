//! The port and the fabric behind it: the local subnet management agent, a switch, remote
//! channel adapters with their SMAs and performance agents, the subnet manager's unsolicited
//! SMPs, and loopback.
//!
//! The fabric exchanges whole MADs with the device: [`Fabric::transmit`] takes what the local
//! port sends and returns what comes back to it. Responses follow IBTA vol. 1: `GetResp` with
//! the request's TID, status `METHOD_ATTR_NOT_SUPPORTED` (0x000C) for an attribute the agent
//! lacks, the direction bit on returning directed-route SMPs; undeliverable packets (an invalid
//! path or LID, a wrong `Q_Key`) are dropped, as on a real subnet.

use rhca_hw::attrs::{
    GuidInfo, NodeDescription, NodeInfo, PKeyTable, PortCounters, PortInfo, node_type, port_state,
};
use rhca_hw::mad::{self, MadHeader, attr, class, method, smp, status};

use crate::config::{FabricConfig, ModelConfig};

/// A MAD on the wire between two ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet {
    /// Source LID.
    pub slid: u16,
    /// Destination LID.
    pub dlid: u16,
    /// Source QP.
    pub src_qp: u32,
    /// Destination QP (0 or 1 for MADs).
    pub dst_qp: u32,
    /// `Q_Key`.
    pub qkey: u32,
    /// Service level.
    pub sl: u8,
    /// `P_Key` index at the receiver.
    pub pkey_index: u16,
    /// The MAD.
    pub mad: [u8; mad::MAD_SIZE],
}

#[derive(Debug, Clone)]
#[expect(
    clippy::struct_field_names,
    reason = "node_guid and node_type are the IBTA NodeInfo field names"
)]
struct Node {
    lid: u16,
    node_guid: u64,
    node_type: u8,
    ports: u8,
    description: String,
    counters: PortCounters,
}

/// The simulated subnet seen from the local port.
#[derive(Debug)]
pub struct Fabric {
    config: FabricConfig,
    local: Node,
    switch: Option<Node>,
    remotes: Vec<Node>,
    next_tid: u64,
}

impl Fabric {
    /// The fabric of a model configuration.
    #[must_use]
    pub fn new(cfg: &ModelConfig) -> Self {
        let f = &cfg.fabric;
        let node = |lid, guid, node_type, ports, description: &str| Node {
            lid,
            node_guid: guid,
            node_type,
            ports,
            description: description.into(),
            counters: PortCounters {
                port_select: 1,
                ..PortCounters::default()
            },
        };
        Self {
            config: f.clone(),
            local: node(cfg.lid, cfg.node_guid, node_type::CA, 1, &cfg.description),
            switch: (f.switch_lid != 0).then(|| {
                node(
                    f.switch_lid,
                    f.switch_guid,
                    node_type::SWITCH,
                    u8::try_from(f.remotes.len() + 1).unwrap_or(u8::MAX),
                    "rhca-sim switch",
                )
            }),
            remotes: f
                .remotes
                .iter()
                .map(|r| node(r.lid, r.node_guid, node_type::CA, 1, &r.description))
                .collect(),
            next_tid: 0x5100_0000_0000_0000,
        }
    }

    /// The local port's `PortInfo`.
    #[must_use]
    pub const fn local_port_info(&self) -> PortInfo {
        self.port_info(&self.local)
    }

    const fn port_info(&self, n: &Node) -> PortInfo {
        PortInfo {
            gid_prefix: 0xfe80_0000_0000_0000,
            lid: n.lid,
            master_sm_lid: self.config.sm_lid,
            capability_mask: if n.lid == self.config.sm_lid {
                1 << 1
            } else {
                0
            },
            local_port_num: 1,
            link_width_active: 2,
            port_state: port_state::ACTIVE,
            port_physical_state: 5,
            lmc: 0,
            link_speed_active: 1,
            neighbor_mtu: 4,
            master_sm_sl: 0,
            m_key: 0,
        }
    }

    fn all_nodes_mut(&mut self) -> impl Iterator<Item = &mut Node> {
        std::iter::once(&mut self.local)
            .chain(self.switch.iter_mut())
            .chain(self.remotes.iter_mut())
    }

    fn count_xmit(n: &mut Node, bytes: usize) {
        n.counters.xmit_pkts = n.counters.xmit_pkts.wrapping_add(1);
        n.counters.xmit_data = n
            .counters
            .xmit_data
            .wrapping_add(u32::try_from(bytes / 4).unwrap_or(u32::MAX));
    }

    fn count_rcv(n: &mut Node, bytes: usize) {
        n.counters.rcv_pkts = n.counters.rcv_pkts.wrapping_add(1);
        n.counters.rcv_data = n
            .counters
            .rcv_data
            .wrapping_add(u32::try_from(bytes / 4).unwrap_or(u32::MAX));
    }

    /// Sends `p` from the local port; returns the packets that come back to it.
    pub fn transmit(&mut self, p: &Packet) -> Vec<Packet> {
        Self::count_xmit(&mut self.local, mad::MAD_SIZE);
        let Ok(hdr) = MadHeader::decode(&p.mad) else {
            return Vec::new();
        };
        if hdr.is_response() {
            // Responses from the host (to an SM's SubnSet, say) go to the SM; nothing returns.
            return Vec::new();
        }
        let target = match (p.dst_qp, hdr.mgmt_class) {
            (0, class::SUBN_DIRECTED_ROUTE) => self.route_directed(&p.mad, hdr.hop_count()),
            (0, class::SUBN_LID_ROUTED) => self.route_lid(p.dlid),
            (1, _) if p.qkey == mad::QKEY_GSI => {
                if self.config.loopback
                    && p.dlid == self.local.lid
                    && hdr.mgmt_class != class::PERF_MGT
                {
                    let mut back = *p;
                    back.slid = self.local.lid;
                    back.src_qp = 1;
                    Self::count_rcv(&mut self.local, mad::MAD_SIZE);
                    return vec![back];
                }
                self.route_lid(p.dlid)
            }
            _ => None,
        };
        let Some(t) = target else { return Vec::new() };
        let responder_lid = self.node(t).lid;
        // The agent answers after its port counted the request, and before it counts the
        // response: a PortCounters answer includes the query itself.
        if let Some(n) = self.all_nodes_mut().find(|n| n.lid == responder_lid) {
            Self::count_rcv(n, mad::MAD_SIZE);
        }
        let Some(response) = self.answer(t, &hdr, &p.mad, p.dst_qp) else {
            return Vec::new();
        };
        if let Some(n) = self.all_nodes_mut().find(|n| n.lid == responder_lid) {
            Self::count_xmit(n, mad::MAD_SIZE);
        }
        Self::count_rcv(&mut self.local, mad::MAD_SIZE);
        vec![Packet {
            slid: if hdr.mgmt_class == class::SUBN_DIRECTED_ROUTE {
                mad::PERMISSIVE_LID
            } else {
                responder_lid
            },
            dlid: self.local.lid,
            src_qp: p.dst_qp,
            dst_qp: p.src_qp,
            qkey: p.qkey,
            sl: p.sl,
            pkey_index: 0,
            mad: response,
        }]
    }

    /// Which node a directed-route SMP reaches: hop 0 is the local node, hop 1 (out of local
    /// port 1) the switch, hop 2 (out of switch port `k`) remote `k - 2`.
    fn route_directed(&self, m: &[u8; mad::MAD_SIZE], hops: u8) -> Option<Target> {
        let path = &m[smp::INITIAL_PATH..smp::INITIAL_PATH + 64];
        match hops {
            0 => Some(Target::Local),
            1 if path[1] == 1 && self.switch.is_some() => Some(Target::Switch),
            2 if path[1] == 1 && self.switch.is_some() => {
                let k = usize::from(path[2]);
                (2..2 + self.remotes.len())
                    .contains(&k)
                    .then(|| Target::Remote(k - 2))
            }
            _ => None,
        }
    }

    fn route_lid(&self, lid: u16) -> Option<Target> {
        if lid == self.local.lid {
            return Some(Target::Local);
        }
        if self.switch.as_ref().is_some_and(|s| s.lid == lid) {
            return Some(Target::Switch);
        }
        self.remotes
            .iter()
            .position(|n| n.lid == lid)
            .map(Target::Remote)
    }

    fn node(&self, t: Target) -> &Node {
        match t {
            Target::Local => &self.local,
            Target::Switch => self.switch.as_ref().unwrap_or(&self.local),
            Target::Remote(i) => &self.remotes[i],
        }
    }

    /// The agent of node `t` answers `req`.
    fn answer(
        &self,
        t: Target,
        hdr: &MadHeader,
        req: &[u8; mad::MAD_SIZE],
        qp: u32,
    ) -> Option<[u8; mad::MAD_SIZE]> {
        let mut resp = *req;
        let st = if qp == 0 {
            if hdr.method == method::GET {
                self.smp_get(t, hdr, &mut resp)
            } else {
                status::METHOD_ATTR_NOT_SUPPORTED
            }
        } else if hdr.mgmt_class == class::PERF_MGT {
            if hdr.method == method::GET && hdr.attr_id == attr::PORT_COUNTERS {
                let n = self.node(t);
                // PerfMgt data follow the 24-byte header and 40 reserved bytes (offset 64).
                let c = PortCounters {
                    port_select: req[mad::GMP_DATA + 1],
                    ..n.counters
                };
                let _ = c.encode(&mut resp[mad::GMP_DATA..]);
                status::OK
            } else {
                status::METHOD_ATTR_NOT_SUPPORTED
            }
        } else {
            // No agent for this class on the node: unsupported class (IBTA 13.4.7).
            status::BAD_VERSION
        };
        let mut h = *hdr;
        h.method = method::GET_RESP;
        h.status = st
            | if hdr.mgmt_class == class::SUBN_DIRECTED_ROUTE {
                status::DR_DIRECTION
            } else {
                0
            };
        if hdr.mgmt_class == class::SUBN_DIRECTED_ROUTE {
            // The responder's hop pointer equals the hop count on the way back.
            h.class_specific = (u16::from(hdr.hop_count()) << 8) | u16::from(hdr.hop_count());
        }
        h.encode(&mut resp).ok()?;
        Some(resp)
    }

    fn smp_get(&self, t: Target, hdr: &MadHeader, resp: &mut [u8; mad::MAD_SIZE]) -> u16 {
        let n = self.node(t);
        let data = &mut resp[smp::DATA..smp::DATA + smp::DATA_SIZE];
        data.fill(0);
        let ok = match hdr.attr_id {
            attr::NODE_INFO => NodeInfo {
                base_version: 1,
                class_version: 1,
                node_type: n.node_type,
                num_ports: n.ports,
                system_image_guid: n.node_guid,
                node_guid: n.node_guid,
                port_guid: n.node_guid + 1,
                partition_cap: 32,
                device_id: if n.node_type == node_type::CA {
                    rhca_hw::pci::DEVICE_ID
                } else {
                    0xB924
                },
                revision: 1,
                local_port_num: 1,
                vendor_id: u32::from(rhca_hw::pci::VENDOR_ID),
            }
            .encode(data)
            .is_ok(),
            attr::NODE_DESCRIPTION => {
                data.copy_from_slice(&NodeDescription::new(&n.description).0);
                true
            }
            attr::PORT_INFO if hdr.attr_mod <= 1 => self.port_info(n).encode(data).is_ok(),
            attr::GUID_INFO if hdr.attr_mod == 0 => {
                GuidInfo([n.node_guid + 1, 0, 0, 0, 0, 0, 0, 0])
                    .encode(data)
                    .is_ok()
            }
            attr::PKEY_TABLE if hdr.attr_mod == 0 => {
                let mut keys = [0u16; 32];
                keys[0] = PKeyTable::DEFAULT_PKEY;
                PKeyTable(keys).encode(data).is_ok()
            }
            attr::PORT_INFO | attr::GUID_INFO | attr::PKEY_TABLE => return status::INVALID_FIELD,
            _ => false,
        };
        if ok {
            status::OK
        } else {
            status::METHOD_ATTR_NOT_SUPPORTED
        }
    }

    /// A `SubnSet(PortInfo)` from the subnet manager to the local port (unsolicited traffic).
    pub fn unsolicited_subn_set(&mut self) -> Packet {
        self.next_tid = self.next_tid.wrapping_add(1);
        let mut m = [0u8; mad::MAD_SIZE];
        let hdr = MadHeader {
            base_version: 1,
            mgmt_class: class::SUBN_LID_ROUTED,
            class_version: 1,
            method: method::SET,
            tid: self.next_tid,
            attr_id: attr::PORT_INFO,
            attr_mod: 1,
            ..MadHeader::default()
        };
        let _ = hdr.encode(&mut m);
        let _ = self.local_port_info().encode(&mut m[smp::DATA..]);
        Self::count_rcv(&mut self.local, mad::MAD_SIZE);
        Packet {
            slid: self.config.sm_lid,
            dlid: self.local.lid,
            src_qp: 0,
            dst_qp: 0,
            qkey: 0,
            sl: 0,
            pkey_index: 0,
            mad: m,
        }
    }

    /// The fabric's configuration.
    #[must_use]
    pub const fn config(&self) -> &FabricConfig {
        &self.config
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Local,
    Switch,
    Remote(usize),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn smp(class_: u8, attr_id: u16, hops: u8, path: &[u8]) -> Packet {
        let mut m = [0u8; mad::MAD_SIZE];
        MadHeader {
            base_version: 1,
            mgmt_class: class_,
            class_version: 1,
            method: method::GET,
            class_specific: u16::from(hops),
            tid: 42,
            attr_id,
            ..MadHeader::default()
        }
        .encode(&mut m)
        .unwrap();
        m[smp::INITIAL_PATH..smp::INITIAL_PATH + path.len()].copy_from_slice(path);
        Packet {
            slid: 1,
            dlid: mad::PERMISSIVE_LID,
            src_qp: 0,
            dst_qp: 0,
            qkey: 0,
            sl: 0,
            pkey_index: 0,
            mad: m,
        }
    }

    #[test]
    fn directed_route_reaches_each_node() {
        let mut f = Fabric::new(&ModelConfig::default());
        let local = f.transmit(&smp(class::SUBN_DIRECTED_ROUTE, attr::NODE_INFO, 0, &[0]));
        let ni = NodeInfo::decode(&local[0].mad[smp::DATA..]).unwrap();
        assert_eq!(
            (ni.node_type, ni.node_guid, ni.device_id),
            (node_type::CA, 0x0002_c903_0000_0001, 0x5248)
        );
        let sw = f.transmit(&smp(
            class::SUBN_DIRECTED_ROUTE,
            attr::NODE_INFO,
            1,
            &[0, 1],
        ));
        assert_eq!(
            NodeInfo::decode(&sw[0].mad[smp::DATA..]).unwrap().node_type,
            node_type::SWITCH
        );
        let r = f.transmit(&smp(
            class::SUBN_DIRECTED_ROUTE,
            attr::NODE_INFO,
            2,
            &[0, 1, 3],
        ));
        let h = MadHeader::decode(&r[0].mad).unwrap();
        assert_eq!(
            (h.method, h.tid, h.direction()),
            (method::GET_RESP, 42, true)
        );
        assert_eq!(
            NodeInfo::decode(&r[0].mad[smp::DATA..]).unwrap().node_guid,
            0x0002_c903_0000_0210,
            "switch port 3 is remote 2"
        );
        assert!(
            f.transmit(&smp(
                class::SUBN_DIRECTED_ROUTE,
                attr::NODE_INFO,
                2,
                &[0, 1, 9]
            ))
            .is_empty(),
            "no such port: dropped"
        );
        assert!(
            f.transmit(&smp(
                class::SUBN_DIRECTED_ROUTE,
                attr::NODE_INFO,
                2,
                &[0, 2, 2]
            ))
            .is_empty(),
            "local port 2 does not exist"
        );
    }

    #[test]
    fn unsupported_attributes_get_a_status() {
        let mut f = Fabric::new(&ModelConfig::default());
        let r = f.transmit(&smp(class::SUBN_DIRECTED_ROUTE, 0x0077, 0, &[0]));
        assert_eq!(
            MadHeader::decode(&r[0].mad).unwrap().status & 0x7FFF,
            status::METHOD_ATTR_NOT_SUPPORTED
        );
    }
}
