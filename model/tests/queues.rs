//! Queues driven by hand through the registers: post, doorbell, fetch, completion; the SMA and
//! the fabric's agents checked field by field; arming, moderation, page-list rings, and the
//! errors a careful device reports.

#![expect(
    clippy::cast_possible_truncation,
    clippy::too_many_lines,
    reason = "test sizes are small; the SMA test walks every attribute in one story"
)]

use rhca_hw::attrs::{
    GuidInfo, NodeDescription, NodeInfo, PKeyTable, PortCounters, PortInfo, node_type, port_state,
};
use rhca_hw::cqe::{self, Cqe, Posted};
use rhca_hw::mad::{self, MadHeader, attr, class, method, smp, status};
use rhca_hw::regs::{self, ErrorCode, WqId, cause, cq, db, wq};
use rhca_hw::wqe::{Ctrl, DataSeg, Opcode, Payload};
use rhca_model::rig::*;
use rhca_model::{FabricConfig, ModelConfig};
use wdk_sim::{Config, Interrupt, Profile};

/// QP0 and QP1 send and receive queues on CQ 0, with `recvs` receive buffers posted per QP.
fn rig_with_queues(rig: &Rig, recvs: usize) -> (CqH, [WqH; 4], Vec<usize>) {
    rig.bring_up();
    let c = rig.create_cq(0, 6);
    let mut qs = WqId::ALL.map(|id| rig.create_wq(id, 5, 9, 0));
    let mut bufs = Vec::new();
    for q in [1, 3] {
        for _ in 0..recvs {
            bufs.push(rig.post_recv(&mut qs[q], mad::RECV_BUF_SIZE as u32));
        }
        rig.ring(&qs[q]);
    }
    (c, qs, bufs)
}

/// Sends `m` on QP0 and returns the response MAD from the QP0 receive buffer.
fn smp_round_trip(
    rig: &Rig,
    c: &mut CqH,
    qs: &mut [WqH; 4],
    bufs: &[usize],
    m: &[u8; 256],
) -> [u8; 256] {
    rig.post_send(&mut qs[0], m, mad::PERMISSIVE_LID, 0, 0);
    rig.ring(&qs[0]);
    rig.dev.run_until_idle();
    let cqes = rig.drain(c);
    assert_eq!(cqes.len(), 2, "a send and a receive completion: {cqes:?}");
    let send = cqes.iter().find(|e| e.opcode == cqe::Opcode::Send).unwrap();
    assert_eq!(
        (send.status, send.byte_count, send.qpn),
        (cqe::Status::Success, 256, 0)
    );
    let recv = cqes.iter().find(|e| e.opcode == cqe::Opcode::Recv).unwrap();
    assert_eq!(
        (recv.status, recv.byte_count, recv.qpn, recv.grh),
        (cqe::Status::Success, 296, 0, false)
    );
    recv.check(&Posted {
        entries: 32,
        len: 296,
    })
    .unwrap();
    let buf = rig.recv_data(bufs[usize::from(recv.wqe_index)]);
    let mut out = [0u8; 256];
    out.copy_from_slice(&buf[mad::GRH_SIZE..]);
    out
}

#[test]
fn a_hand_written_ring_post_completes_in_order_with_valid_cqes() {
    let rig = Rig::new(Profile::COHERENT);
    let (mut c, mut qs, _) = rig_with_queues(&rig, 0);
    // Three NOPs and an inline send, one doorbell for all four.
    for signaled in [true, false, true] {
        rig.post(
            &mut qs[2],
            Ctrl {
                opcode: Opcode::Nop as u8,
                signaled,
                ..Ctrl::default()
            },
            Payload::None,
        );
    }
    let perf = mad_with(MadHeader {
        base_version: 1,
        mgmt_class: class::PERF_MGT,
        class_version: 1,
        method: method::GET,
        tid: 7,
        attr_id: attr::PORT_COUNTERS,
        ..MadHeader::default()
    });
    rig.post(
        &mut qs[2],
        Ctrl {
            opcode: Opcode::Send as u8,
            signaled: true,
            dlid: 4,
            remote_qpn: 1,
            qkey: mad::QKEY_GSI,
            ..Ctrl::default()
        },
        Payload::Inline(&perf),
    );
    assert_eq!(
        rig.r(wq::offset(WqId::Qp1Send, wq::STATUS)),
        0,
        "nothing fetched before the doorbell"
    );
    rig.ring(&qs[2]);
    rig.dev.run_until_idle();
    let cqes = rig.drain(&mut c);
    let idx: Vec<u16> = cqes.iter().map(|e| e.wqe_index).collect();
    assert_eq!(
        idx,
        vec![0, 2, 3],
        "unsignaled NOP 1 completes silently; order kept"
    );
    assert!(
        cqes.iter()
            .all(|e| e.status == cqe::Status::Success && e.qpn == 1)
    );
    assert_eq!(cqes[2].byte_count, 256);
    assert_eq!(
        wq::STATUS_HW_INDEX.get(rig.r(wq::offset(WqId::Qp1Send, wq::STATUS))),
        4
    );
    assert_eq!(
        cq::STATUS_PRODUCER.get(rig.r(cq::offset(0, cq::STATUS).unwrap())),
        3
    );
    let n = rig.dev.counters();
    assert_eq!((n.wqes_fetched, n.cqes_written, n.sends), (4, 3, 1));
    // No receive buffer was posted on QP1: the PerfMgt response waits in the device.
    assert_eq!(n.receives, 0);
    assert_eq!(rig.syndrome(), (0, 0), "no error latched");
}

#[test]
fn the_local_sma_answers_every_attribute_field_by_field() {
    let rig = Rig::new(Profile::COHERENT);
    let (mut c, mut qs, bufs) = rig_with_queues(&rig, 12);
    let bufs = &bufs[..12];
    let cfg = ModelConfig::default();

    let r = smp_round_trip(
        &rig,
        &mut c,
        &mut qs,
        bufs,
        &dr_get(attr::NODE_INFO, 0, &[0], 0x11),
    );
    let h = MadHeader::decode(&r).unwrap();
    assert_eq!(
        (h.method, h.tid, h.attr_id, h.status & 0x7FFF, h.direction()),
        (method::GET_RESP, 0x11, attr::NODE_INFO, status::OK, true)
    );
    let ni = NodeInfo::decode(&r[smp::DATA..]).unwrap();
    assert_eq!(
        ni,
        NodeInfo {
            base_version: 1,
            class_version: 1,
            node_type: node_type::CA,
            num_ports: 1,
            system_image_guid: cfg.node_guid,
            node_guid: cfg.node_guid,
            port_guid: cfg.node_guid + 1,
            partition_cap: 32,
            device_id: 0x5248,
            revision: 1,
            local_port_num: 1,
            vendor_id: 0x1234,
        }
    );
    // The raw bytes at the IBTA offsets, independently of rhca-hw's decoder.
    assert_eq!(
        &r[smp::DATA + 12..smp::DATA + 20],
        &cfg.node_guid.to_be_bytes(),
        "NodeGUID at byte 12"
    );
    assert_eq!(r[smp::DATA + 2], 1, "NodeType at byte 2");

    let r = smp_round_trip(
        &rig,
        &mut c,
        &mut qs,
        bufs,
        &dr_get(attr::NODE_DESCRIPTION, 0, &[0], 0x12),
    );
    assert_eq!(
        NodeDescription::decode(&r[smp::DATA..]).unwrap().text(),
        Some("rhca-sim HCA")
    );

    let r = smp_round_trip(
        &rig,
        &mut c,
        &mut qs,
        bufs,
        &dr_get(attr::PORT_INFO, 1, &[0], 0x13),
    );
    let pi = PortInfo::decode(&r[smp::DATA..]).unwrap();
    assert_eq!(
        (pi.lid, pi.master_sm_lid, pi.port_state, pi.local_port_num),
        (1, 3, port_state::ACTIVE, 1)
    );
    assert_eq!(pi.gid_prefix, 0xfe80_0000_0000_0000);
    assert_eq!(
        &r[smp::DATA + 16..smp::DATA + 18],
        &1u16.to_be_bytes(),
        "LID at byte 16"
    );

    let r = smp_round_trip(
        &rig,
        &mut c,
        &mut qs,
        bufs,
        &dr_get(attr::GUID_INFO, 0, &[0], 0x14),
    );
    assert_eq!(
        GuidInfo::decode(&r[smp::DATA..]).unwrap().0[0],
        cfg.node_guid + 1
    );

    let r = smp_round_trip(
        &rig,
        &mut c,
        &mut qs,
        bufs,
        &dr_get(attr::PKEY_TABLE, 0, &[0], 0x15),
    );
    let pk = PKeyTable::decode(&r[smp::DATA..]).unwrap();
    assert_eq!((pk.0[0], pk.0[1]), (0xFFFF, 0));

    // A block beyond the table and an unknown attribute get IBTA status codes.
    let r = smp_round_trip(
        &rig,
        &mut c,
        &mut qs,
        bufs,
        &dr_get(attr::PKEY_TABLE, 5, &[0], 0x16),
    );
    assert_eq!(
        MadHeader::decode(&r).unwrap().status & 0x7FFF,
        status::INVALID_FIELD
    );
    let r = smp_round_trip(&rig, &mut c, &mut qs, bufs, &dr_get(0x00FF, 0, &[0], 0x17));
    assert_eq!(
        MadHeader::decode(&r).unwrap().status & 0x7FFF,
        status::METHOD_ATTR_NOT_SUPPORTED
    );

    // Directed route to a remote node through the switch, and LID-routed to the same node.
    let r = smp_round_trip(
        &rig,
        &mut c,
        &mut qs,
        bufs,
        &dr_get(attr::NODE_INFO, 0, &[0, 1, 2], 0x18),
    );
    assert_eq!(
        NodeInfo::decode(&r[smp::DATA..]).unwrap().node_guid,
        FabricConfig::default().remotes[0].node_guid
    );
    let mut lr = dr_get(attr::NODE_DESCRIPTION, 0, &[0], 0x19);
    lr[1] = class::SUBN_LID_ROUTED;
    lr[7] = 0;
    rig.post_send(&mut qs[0], &lr, 4, 0, 0);
    rig.ring(&qs[0]);
    rig.dev.run_until_idle();
    let cqes = rig.drain(&mut c);
    let recv = cqes.iter().find(|e| e.opcode == cqe::Opcode::Recv).unwrap();
    assert_eq!(recv.slid, 4, "the LID-routed answer comes from LID 4");
    let b = rig.recv_data(bufs[usize::from(recv.wqe_index)]);
    assert_eq!(
        NodeDescription::decode(&b[40 + smp::DATA..])
            .unwrap()
            .text(),
        Some("rhca-sim remote 2")
    );
}

#[test]
fn perfmgt_port_counters_count_the_traffic() {
    let rig = Rig::new(Profile::COHERENT);
    let (mut c, mut qs, bufs) = rig_with_queues(&rig, 8);
    let q1_bufs = &bufs[8..];
    let mut get = mad_with(MadHeader {
        base_version: 1,
        mgmt_class: class::PERF_MGT,
        class_version: 1,
        method: method::GET,
        tid: 0x77,
        attr_id: attr::PORT_COUNTERS,
        ..MadHeader::default()
    });
    get[mad::GMP_DATA + 1] = 1;
    for round in 1..=2u32 {
        rig.post_send(&mut qs[2], &get, 5, 1, mad::QKEY_GSI);
        rig.ring(&qs[2]);
        rig.dev.run_until_idle();
        let cqes = rig.drain(&mut c);
        let recv = cqes
            .iter()
            .find(|e| e.opcode == cqe::Opcode::Recv)
            .expect("a response");
        assert_eq!((recv.qpn, recv.slid, recv.src_qpn), (1, 5, 1));
        let b = rig.recv_data(q1_bufs[usize::from(recv.wqe_index)]);
        let h = MadHeader::decode(&b[40..]).unwrap();
        assert_eq!(
            (h.method, h.status, h.tid),
            (method::GET_RESP, status::OK, 0x77)
        );
        let pc = PortCounters::decode(&b[40 + mad::GMP_DATA..]).unwrap();
        assert_eq!(pc.port_select, 1);
        // The remote saw (round - 1) earlier requests and sent as many answers before this one.
        assert_eq!((pc.rcv_pkts, pc.xmit_pkts), (round, round - 1));
        assert_eq!(pc.rcv_data, round * 64, "PortRcvData counts 32-bit words");
    }
    // A wrong Q_Key is dropped by the fabric: the send completes, nothing comes back.
    rig.post_send(&mut qs[2], &get, 5, 1, 0x1234);
    rig.ring(&qs[2]);
    rig.dev.run_until_idle();
    let cqes = rig.drain(&mut c);
    assert_eq!(cqes.len(), 1);
    assert_eq!(cqes[0].opcode, cqe::Opcode::Send);
}

#[test]
fn arming_and_moderation_raise_one_msi_per_event() {
    let rig = Rig::new(Profile::COHERENT);
    let (mut c, mut qs, _) = rig_with_queues(&rig, 0);
    rig.w(regs::INT_CFG.offset, 4);
    rig.w(regs::INT_CAUSE.offset, u32::MAX);
    rig.w(regs::INT_MASK.offset, 0);
    let _ = rig.m.take_interrupts(rig.att.slot);
    let nop = |rig: &Rig, qs: &mut [WqH; 4], k: usize| {
        for _ in 0..k {
            rig.post(
                &mut qs[2],
                Ctrl {
                    opcode: Opcode::Nop as u8,
                    signaled: true,
                    ..Ctrl::default()
                },
                Payload::None,
            );
        }
        rig.ring(&qs[2]);
        rig.dev.run_until_idle();
    };
    nop(&rig, &mut qs, 2);
    assert!(
        rig.m.take_interrupts(rig.att.slot).is_empty(),
        "an unarmed CQ raises nothing"
    );
    // Arming with CQEs already beyond the armed index raises at once.
    rig.w(db::cq_arm(0).unwrap(), c.ci);
    assert_eq!(
        rig.m.take_interrupts(rig.att.slot),
        vec![Interrupt::Msi { vector: 1 }]
    );
    assert_eq!(rig.r(regs::INT_CAUSE.offset), cause::cq(0));
    rig.w(regs::INT_CAUSE.offset, cause::cq(0));
    assert_eq!(rig.drain(&mut c).len(), 2);
    // Moderation: 4 CQEs per event.
    rig.w(cq::offset(0, cq::MOD).unwrap(), cq::MOD_COUNT.set(0, 4));
    rig.w(db::cq_arm(0).unwrap(), c.ci);
    nop(&rig, &mut qs, 3);
    assert!(
        rig.m.take_interrupts(rig.att.slot).is_empty(),
        "3 < 4 unreported"
    );
    assert!(cq::STATUS_ARMED.is_set(rig.r(cq::offset(0, cq::STATUS).unwrap())));
    nop(&rig, &mut qs, 1);
    assert_eq!(
        rig.m.take_interrupts(rig.att.slot),
        vec![Interrupt::Msi { vector: 1 }]
    );
    assert!(
        !cq::STATUS_ARMED.is_set(rig.r(cq::offset(0, cq::STATUS).unwrap())),
        "one event per arm"
    );
    // A masked cause latches without a message; unmasking sends it.
    rig.w(regs::INT_CAUSE.offset, cause::cq(0));
    rig.w(regs::INT_MASK.offset, cause::cq(0));
    assert_eq!(rig.drain(&mut c).len(), 4);
    rig.w(db::cq_arm(0).unwrap(), c.ci);
    rig.w(cq::offset(0, cq::MOD).unwrap(), 0);
    nop(&rig, &mut qs, 1);
    assert!(rig.m.take_interrupts(rig.att.slot).is_empty());
    assert_eq!(rig.r(regs::INT_CAUSE.offset), cause::cq(0));
    rig.w(regs::INT_MASK.offset, 0);
    assert_eq!(
        rig.m.take_interrupts(rig.att.slot),
        vec![Interrupt::Msi { vector: 1 }]
    );
}

#[test]
fn moderation_timer_fires_after_usec() {
    let rig = Rig::new(Profile::COHERENT);
    let (_c, mut qs, _) = rig_with_queues(&rig, 0);
    rig.w(regs::INT_CFG.offset, 4);
    rig.w(regs::INT_MASK.offset, 0);
    let _ = rig.m.take_interrupts(rig.att.slot);
    rig.w(
        cq::offset(0, cq::MOD).unwrap(),
        cq::MOD_COUNT.set(0, 100) | cq::MOD_USEC.set(0, 200),
    );
    rig.w(db::cq_arm(0).unwrap(), 0);
    rig.post(
        &mut qs[2],
        Ctrl {
            opcode: Opcode::Nop as u8,
            signaled: true,
            ..Ctrl::default()
        },
        Payload::None,
    );
    rig.ring(&qs[2]);
    rig.dev.run_until_idle();
    assert!(
        rig.m.take_interrupts(rig.att.slot).is_empty(),
        "1 of 100, timer running"
    );
    std::thread::sleep(std::time::Duration::from_millis(2));
    rig.dev.service();
    assert_eq!(
        rig.m.take_interrupts(rig.att.slot),
        vec![Interrupt::Msi { vector: 1 }]
    );
}

#[test]
fn intx_follows_the_unmasked_causes() {
    let rig = Rig::new(Profile::COHERENT);
    let (_c, mut qs, _) = rig_with_queues(&rig, 0);
    rig.w(regs::INT_MASK.offset, !cause::cq(0));
    let _ = rig.m.take_interrupts(rig.att.slot);
    rig.w(db::cq_arm(0).unwrap(), 0);
    rig.post(
        &mut qs[2],
        Ctrl {
            opcode: Opcode::Nop as u8,
            signaled: true,
            ..Ctrl::default()
        },
        Payload::None,
    );
    rig.ring(&qs[2]);
    rig.dev.run_until_idle();
    assert_eq!(
        rig.m.take_interrupts(rig.att.slot),
        vec![Interrupt::IntxAsserted]
    );
    rig.w(regs::INT_CAUSE.offset, cause::cq(0));
    assert_eq!(
        rig.m.take_interrupts(rig.att.slot),
        vec![Interrupt::IntxDeasserted]
    );
}

#[test]
fn a_page_list_cq_spans_scattered_pages() {
    let rig = Rig::new(Profile::IOMMU);
    rig.bring_up();
    let mut c = rig.create_cq_paged(1, 8); // 256 CQEs = 8 KiB in two pages
    let mut q = rig.create_wq(WqId::Qp1Send, 8, 6, 1);
    let mut total = 0;
    for _round in 0..3 {
        for _ in 0..200 {
            rig.post(
                &mut q,
                Ctrl {
                    opcode: Opcode::Nop as u8,
                    signaled: true,
                    ..Ctrl::default()
                },
                Payload::None,
            );
        }
        rig.ring(&q);
        rig.dev.run_until_idle();
        let got = rig.drain(&mut c);
        assert_eq!(got.len(), 200);
        assert!(
            got.windows(2)
                .all(|w| (w[0].wqe_index + 1) % 256 == w[1].wqe_index)
        );
        total += got.len();
    }
    assert_eq!(total, 600, "three laps of CQ slots across both pages");
    assert!(rig.m.bugcheck().is_none());
    assert!(rig.m.stray_dma(rig.att.slot).is_empty());
}

#[test]
fn loopback_and_unsolicited_mads_reach_the_receive_queues() {
    let model = ModelConfig {
        fabric: FabricConfig {
            loopback: true,
            unsolicited_per_sec: 2000,
            ..FabricConfig::default()
        },
        ..ModelConfig::default()
    };
    let rig = Rig::with(Config::with_profile(Profile::COHERENT), model);
    let (mut c, mut qs, bufs) = rig_with_queues(&rig, 16);
    let mut m = mad_with(MadHeader {
        base_version: 1,
        mgmt_class: class::CM,
        class_version: 2,
        method: method::SEND,
        tid: 9,
        attr_id: 0x10,
        ..MadHeader::default()
    });
    m[100] = 0xAB;
    rig.post_send(&mut qs[2], &m, 1, 1, mad::QKEY_GSI);
    rig.ring(&qs[2]);
    rig.dev.run_until_idle();
    let cqes = rig.drain(&mut c);
    let recv = cqes
        .iter()
        .find(|e| e.opcode == cqe::Opcode::Recv && e.qpn == 1)
        .expect("looped back");
    assert_eq!(
        rig.recv_data(bufs[16 + usize::from(recv.wqe_index)])[40..],
        m[..]
    );
    // Unsolicited SubnSet(PortInfo) from the SM at LID 3 arrives on QP0 without a request.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut got = Vec::new();
    while got.len() < 2 {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(std::time::Duration::from_millis(1));
        rig.dev.service();
        got.extend(rig.drain(&mut c));
    }
    let e = got[0];
    assert_eq!((e.opcode, e.qpn, e.slid), (cqe::Opcode::Recv, 0, 3));
    let h = MadHeader::decode(&rig.recv_data(bufs[usize::from(e.wqe_index)])[40..]).unwrap();
    assert_eq!(
        (h.mgmt_class, h.method, h.attr_id),
        (class::SUBN_LID_ROUTED, method::SET, attr::PORT_INFO)
    );
}

#[test]
fn receive_buffering_drops_beyond_its_depth() {
    let model = ModelConfig {
        receive_buffering: 2,
        ..ModelConfig::default()
    };
    let rig = Rig::with(Config::with_profile(Profile::COHERENT), model);
    let (_c, _qs, _) = rig_with_queues(&rig, 0);
    for _ in 0..5 {
        rig.dev.receive(rhca_model::Packet {
            slid: 3,
            dlid: 1,
            src_qp: 0,
            dst_qp: 0,
            qkey: 0,
            sl: 0,
            pkey_index: 0,
            mad: [0; 256],
        });
    }
    assert_eq!(rig.dev.counters().rx_drops, 3);
}

#[test]
fn doorbell_mistakes_are_latched_with_their_syndrome() {
    let rig = Rig::new(Profile::COHERENT);
    let (_c, mut qs, _) = rig_with_queues(&rig, 0);
    // A doorbell beyond what was posted: the slot's owner bit is stale.
    rig.post(
        &mut qs[2],
        Ctrl {
            opcode: Opcode::Nop as u8,
            signaled: true,
            ..Ctrl::default()
        },
        Payload::None,
    );
    rig.w(db::wq(WqId::Qp1Send), 2);
    rig.dev.run_until_idle();
    assert_eq!(rig.syndrome(), (ErrorCode::WqeNotPosted as u32, 2));
    assert_eq!(
        rig.r(regs::ERR_INFO.offset),
        1,
        "the ring index that was not posted"
    );
    assert!(wq::STATUS_ERROR.is_set(rig.r(wq::offset(WqId::Qp1Send, wq::STATUS))));
    assert_ne!(rig.r(regs::INT_CAUSE.offset) & cause::ERROR, 0);
    // A later error is counted, not latched, until ERROR is cleared.
    rig.w(db::wq(WqId::Qp0Send), 0xFFFF);
    assert_eq!(rig.syndrome().0, ErrorCode::WqeNotPosted as u32);
    rig.w(regs::INT_CAUSE.offset, cause::ERROR);
    rig.w(db::wq(WqId::Qp0Send), 0x1_0000);
    assert_eq!(rig.syndrome(), (ErrorCode::DoorbellOverrun as u32, 0));
    rig.w(regs::INT_CAUSE.offset, cause::ERROR);
    rig.w(db::cq_ci(0).unwrap(), 5);
    assert_eq!(rig.syndrome(), (ErrorCode::BadCqIndex as u32, 0x10));
    // Doorbells while not enabled.
    rig.w(regs::INT_CAUSE.offset, cause::ERROR);
    rig.w(regs::CTRL.offset, 0);
    rig.w(db::wq(WqId::Qp1Recv), 1);
    assert_eq!(rig.syndrome(), (ErrorCode::NotEnabled as u32, 3));
    assert!(rig.dev.counters().errors >= 4);
}

#[test]
fn malformed_wqes_complete_in_error_and_flush_the_rest() {
    let rig = Rig::new(Profile::COHERENT);
    let (mut c, mut qs, _) = rig_with_queues(&rig, 0);
    let (_va, el) = rig.pool(256, false);
    let seg = DataSeg {
        byte_count: 256,
        lkey: 0x55,
        addr: el[0].0,
    };
    let mut segs = [DataSeg::default(); 4];
    segs[0] = seg;
    rig.post(
        &mut qs[2],
        Ctrl {
            opcode: Opcode::Send as u8,
            signaled: true,
            dlid: 4,
            remote_qpn: 1,
            qkey: mad::QKEY_GSI,
            ..Ctrl::default()
        },
        Payload::Segments { segs, count: 1 },
    );
    rig.post(
        &mut qs[2],
        Ctrl {
            opcode: Opcode::Nop as u8,
            signaled: false,
            ..Ctrl::default()
        },
        Payload::None,
    );
    rig.ring(&qs[2]);
    rig.dev.run_until_idle();
    let cqes = rig.drain(&mut c);
    assert_eq!(cqes.len(), 2);
    assert_eq!(
        (cqes[0].status, cqes[0].syndrome),
        (cqe::Status::LocalProtection, ErrorCode::BadLkey as u8)
    );
    assert_eq!(
        (cqes[1].wqe_index, cqes[1].status),
        (1, cqe::Status::WrFlushed),
        "flushed even though unsignaled"
    );
    assert_eq!(rig.syndrome(), (ErrorCode::BadLkey as u32, 2));
    // The queue stays in error: new work is flushed too.
    rig.post(
        &mut qs[2],
        Ctrl {
            opcode: Opcode::Nop as u8,
            signaled: true,
            ..Ctrl::default()
        },
        Payload::None,
    );
    rig.ring(&qs[2]);
    rig.dev.run_until_idle();
    assert_eq!(rig.drain(&mut c)[0].status, cqe::Status::WrFlushed);
    // A receive WQE on a send queue is a bad opcode.
    let mut segs = [DataSeg::default(); 4];
    segs[0] = DataSeg {
        byte_count: 296,
        lkey: 0,
        addr: el[0].0,
    };
    rig.post(
        &mut qs[0],
        Ctrl {
            opcode: Opcode::Recv as u8,
            signaled: true,
            ..Ctrl::default()
        },
        Payload::Segments { segs, count: 1 },
    );
    rig.ring(&qs[0]);
    rig.dev.run_until_idle();
    let e = rig.drain(&mut c)[0];
    assert_eq!(
        (e.qpn, e.status, e.syndrome),
        (0, cqe::Status::LocalQpOperation, ErrorCode::BadOpcode as u8)
    );
}

#[test]
fn bad_queue_configurations_are_refused() {
    let rig = Rig::new(Profile::COHERENT);
    rig.bring_up();
    // A work queue on a CQ that does not exist.
    rig.w(
        wq::offset(WqId::Qp1Send, wq::CFG),
        wq::CFG_LOG_ENTRIES.set(0, 4)
            | wq::CFG_LOG_STRIDE.set(0, 6)
            | wq::CFG_CQN.set(0, 2)
            | wq::CFG_VALID.mask(),
    );
    assert_eq!(rig.syndrome(), (ErrorCode::BadQueueConfig as u32, 2));
    assert!(wq::STATUS_ERROR.is_set(rig.r(wq::offset(WqId::Qp1Send, wq::STATUS))));
    rig.w(regs::INT_CAUSE.offset, cause::ERROR);
    // A stride above LOG_MAX_STRIDE, and a misaligned base.
    let _c = rig.create_cq(0, 4);
    rig.w(
        wq::offset(WqId::Qp0Send, wq::CFG),
        wq::CFG_LOG_ENTRIES.set(0, 4) | wq::CFG_LOG_STRIDE.set(0, 10) | wq::CFG_VALID.mask(),
    );
    assert_eq!(rig.syndrome(), (ErrorCode::BadQueueConfig as u32, 0));
    rig.w(regs::INT_CAUSE.offset, cause::ERROR);
    rig.w(cq::offset(1, cq::BASE_LO).unwrap(), 0x1010);
    rig.w(
        cq::offset(1, cq::CFG).unwrap(),
        cq::CFG_LOG_ENTRIES.set(0, 4) | cq::CFG_VALID.mask(),
    );
    assert_eq!(rig.syndrome(), (ErrorCode::BadQueueConfig as u32, 0x11));
    // Destroying a CQ while enabled and not quiesced.
    rig.w(regs::INT_CAUSE.offset, cause::ERROR);
    rig.w(cq::offset(0, cq::CFG).unwrap(), 0);
    assert_eq!(rig.syndrome(), (ErrorCode::BadQueueConfig as u32, 0x10));
}

#[test]
fn a_32_bit_device_reports_its_width_and_works_through_bounce_buffers() {
    let rig = Rig::with(
        Config::with_profile(Profile::BOUNCE),
        ModelConfig::dma_32bit(),
    );
    assert_eq!(regs::CAP0_DMA_WIDTH.get(rig.r(regs::CAP0.offset)), 32);
    let (mut c, mut qs, bufs) = rig_with_queues(&rig, 4);
    // Everything the adapter hands out is below 4 GiB, so the round trip works.
    let r = smp_round_trip(
        &rig,
        &mut c,
        &mut qs,
        &bufs[..4],
        &dr_get(attr::NODE_INFO, 0, &[0], 1),
    );
    assert_eq!(MadHeader::decode(&r).unwrap().method, method::GET_RESP);
}

#[test]
fn cqes_never_fail_the_drivers_checks() {
    let rig = Rig::new(Profile::COHERENT);
    let (mut c, mut qs, _) = rig_with_queues(&rig, 0);
    for _ in 0..40 {
        rig.post(
            &mut qs[2],
            Ctrl {
                opcode: Opcode::Nop as u8,
                signaled: true,
                ..Ctrl::default()
            },
            Payload::None,
        );
        rig.ring(&qs[2]);
        rig.dev.run_until_idle();
        for e in rig.drain(&mut c) {
            e.check(&Posted {
                entries: 32,
                len: 0,
            })
            .unwrap();
            let mut b = [0u8; 32];
            e.encode(&mut b).unwrap();
            assert_eq!(Cqe::decode(&b).unwrap(), e);
        }
    }
}

#[test]
fn a_worker_thread_services_doorbells_on_its_own() {
    let rig = Rig::new(Profile::COHERENT);
    let (mut c, mut qs, _) = rig_with_queues(&rig, 0);
    let worker = rig.dev.spawn_worker();
    let mut seen = 0;
    for _ in 0..10 {
        rig.post(
            &mut qs[2],
            Ctrl {
                opcode: Opcode::Nop as u8,
                signaled: true,
                ..Ctrl::default()
            },
            Payload::None,
        );
        rig.ring(&qs[2]);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let got = rig.drain(&mut c).len();
            seen += got;
            if got > 0 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the worker never completed the NOP"
            );
            std::thread::yield_now();
        }
    }
    drop(worker);
    assert_eq!(seen, 10);
}
