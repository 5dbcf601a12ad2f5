//! Every fault injection, observed the way a driver would observe it: a completion status, an
//! error syndrome, a CQE that fails the driver's checks, interrupts without causes, registers
//! that read all-ones, a queue that stops moving.

#![expect(clippy::cast_possible_truncation, reason = "test geometry is small")]

use std::time::{Duration, Instant};

use rhca_hw::cqe::{self, Cqe, Posted};
use rhca_hw::mad::{self, attr};
use rhca_hw::regs::{self, ErrorCode, WqId, cq, wq};
use rhca_hw::wqe::{Ctrl, Opcode, Payload};
use rhca_model::rig::*;
use rhca_model::{Fault, RandomFaults};
use wdk_sim::{Interrupt, Profile};

fn setup(rig: &Rig, recvs: usize) -> (CqH, [WqH; 4]) {
    rig.bring_up();
    let c = rig.create_cq(0, 6);
    let mut qs = WqId::ALL.map(|id| rig.create_wq(id, 5, 9, 0));
    for q in [1, 3] {
        for _ in 0..recvs {
            rig.post_recv(&mut qs[q], mad::RECV_BUF_SIZE as u32);
        }
        rig.ring(&qs[q]);
    }
    (c, qs)
}

fn nops(rig: &Rig, q: &mut WqH, k: usize) {
    for _ in 0..k {
        rig.post(
            q,
            Ctrl {
                opcode: Opcode::Nop as u8,
                signaled: true,
                ..Ctrl::default()
            },
            Payload::None,
        );
    }
    rig.ring(q);
}

fn node_info_query(rig: &Rig, qs: &mut [WqH; 4]) {
    rig.post_send(
        &mut qs[0],
        &dr_get(attr::NODE_INFO, 0, &[0], 5),
        mad::PERMISSIVE_LID,
        0,
        0,
    );
    rig.ring(&qs[0]);
}

#[test]
fn dma_error_on_a_send_gather() {
    let rig = Rig::new(Profile::COHERENT);
    let (mut c, mut qs) = setup(&rig, 2);
    rig.dev.inject(Fault::DmaErrorNextSend);
    node_info_query(&rig, &mut qs);
    rig.dev.run_until_idle();
    let e = rig.drain(&mut c);
    assert_eq!(e.len(), 1, "no response: the MAD never left");
    assert_eq!(
        (e[0].status, e[0].syndrome),
        (cqe::Status::DmaError, ErrorCode::DmaReadFault as u8)
    );
    assert_eq!(rig.syndrome(), (ErrorCode::DmaReadFault as u32, 0));
    assert_eq!(rig.dev.counters().faults_injected, 1);
}

#[test]
fn dma_error_on_a_receive_scatter_flushes_the_other_receives() {
    let rig = Rig::new(Profile::COHERENT);
    let (mut c, mut qs) = setup(&rig, 3);
    rig.dev.inject(Fault::DmaErrorNextReceive);
    node_info_query(&rig, &mut qs);
    rig.dev.run_until_idle();
    let e = rig.drain(&mut c);
    let recv: Vec<(cqe::Status, u8)> = e
        .iter()
        .filter(|e| e.opcode == cqe::Opcode::Recv)
        .map(|e| (e.status, e.syndrome))
        .collect();
    let fault = ErrorCode::DmaWriteFault as u8;
    assert_eq!(
        recv,
        vec![
            (cqe::Status::DmaError, fault),
            (cqe::Status::WrFlushed, fault),
            (cqe::Status::WrFlushed, fault)
        ]
    );
    assert_eq!(rig.syndrome(), (ErrorCode::DmaWriteFault as u32, 1));
}

#[test]
fn cq_overflow_stops_the_cq_and_its_queues() {
    let rig = Rig::new(Profile::COHERENT);
    let (mut c, mut qs) = setup(&rig, 0);
    nops(&rig, &mut qs[2], 2);
    rig.dev.inject(Fault::CqOverflow(0));
    rig.dev.run_until_idle();
    assert!(rig.drain(&mut c).is_empty());
    let st = rig.r(cq::offset(0, cq::STATUS).unwrap());
    assert!(cq::STATUS_OVERFLOW.is_set(st) && cq::STATUS_ERROR.is_set(st));
    assert_eq!(rig.syndrome(), (ErrorCode::CqOverflow as u32, 0x10));
    assert!(wq::STATUS_ERROR.is_set(rig.r(wq::offset(WqId::Qp1Send, wq::STATUS))));
}

#[test]
fn a_real_overflow_when_the_driver_does_not_consume() {
    let rig = Rig::new(Profile::COHERENT);
    rig.bring_up();
    let mut c = rig.create_cq(0, 2); // 4 CQEs
    let mut q = rig.create_wq(WqId::Qp1Send, 4, 6, 0);
    nops(&rig, &mut q, 5);
    rig.dev.run_until_idle();
    assert_eq!(rig.drain(&mut c).len(), 4, "the fifth did not fit");
    assert_eq!(rig.syndrome(), (ErrorCode::CqOverflow as u32, 0x10));
}

#[test]
fn a_stuck_queue_makes_no_progress_until_released() {
    let rig = Rig::new(Profile::COHERENT);
    let (mut c, mut qs) = setup(&rig, 0);
    rig.dev.inject(Fault::StuckQueue(2));
    nops(&rig, &mut qs[2], 3);
    rig.dev.run_until_idle();
    assert!(rig.drain(&mut c).is_empty());
    assert_eq!(
        wq::STATUS_HW_INDEX.get(rig.r(wq::offset(WqId::Qp1Send, wq::STATUS))),
        0
    );
    rig.dev.inject(Fault::UnstickQueue(2));
    rig.dev.run_until_idle();
    assert_eq!(rig.drain(&mut c).len(), 3);
}

#[test]
fn hostile_cqes_fail_the_drivers_checks() {
    let rig = Rig::new(Profile::COHERENT);
    let (mut c, mut qs) = setup(&rig, 4);
    let posted = Posted {
        entries: 32,
        len: 296,
    };
    for (fault, what) in [
        (Fault::HostileCqeIndex, "index"),
        (Fault::HostileCqeLength, "length"),
        (Fault::HostileCqeOpcode, "opcode"),
        (Fault::HostileCqeQpn, "qpn"),
    ] {
        rig.dev.inject(fault);
        node_info_query(&rig, &mut qs);
        rig.dev.run_until_idle();
        let raw = rig.poll_raw(&mut c).expect("a CQE");
        let verdict = Cqe::decode(&raw).and_then(|e| e.check(&posted));
        assert!(verdict.is_err(), "{what}: the driver must reject {raw:?}");
        // The rest are well formed.
        while let Some(b) = rig.poll_raw(&mut c) {
            let e = Cqe::decode(&b).unwrap();
            if what == "length" {
                assert!(e.byte_count <= 296);
            }
        }
    }
    assert_eq!(rig.dev.counters().faults_injected, 4);
}

#[test]
fn an_interrupt_storm_raises_messages_with_no_cause() {
    let rig = Rig::new(Profile::COHERENT);
    rig.bring_up();
    rig.w(regs::INT_CFG.offset, 4);
    rig.w(regs::INT_CAUSE.offset, u32::MAX);
    rig.w(regs::INT_MASK.offset, 0);
    let _ = rig.m.take_interrupts(rig.att.slot);
    rig.dev.inject(Fault::InterruptStorm(50));
    let msis = rig.m.take_interrupts(rig.att.slot);
    assert_eq!(msis.len(), 50);
    assert!(msis.iter().all(|i| *i == Interrupt::Msi { vector: 1 }));
    assert_eq!(
        rig.r(regs::INT_CAUSE.offset),
        0,
        "nothing to claim: the ISR must return FALSE"
    );
}

#[test]
fn surprise_removal_reads_all_ones_and_stops_dma() {
    let rig = Rig::new(Profile::COHERENT);
    let (mut c, mut qs) = setup(&rig, 2);
    rig.dev.run_until_idle();
    nops(&rig, &mut qs[2], 2);
    rig.dev.inject(Fault::SurpriseRemoval);
    for r in [regs::ID, regs::STATUS, regs::INT_CAUSE] {
        assert_eq!(rig.r(r.offset), regs::ALL_ONES, "{}", r.name);
    }
    rig.dev.run_until_idle();
    assert!(rig.drain(&mut c).is_empty(), "no DMA after removal");
    assert_eq!(
        rig.dev.counters().wqes_fetched,
        4,
        "only the receives before removal"
    );
    assert!(rig.m.bugcheck().is_none());
}

#[test]
fn removal_after_n_wqes_strikes_mid_batch() {
    let rig = Rig::new(Profile::COHERENT);
    let (mut c, mut qs) = setup(&rig, 0);
    rig.dev.inject(Fault::RemoveAfterWqes(3));
    nops(&rig, &mut qs[2], 6);
    rig.dev.run_until_idle();
    assert_eq!(
        rig.drain(&mut c).len(),
        2,
        "the third fetch found the device gone"
    );
    assert_eq!(rig.r(regs::STATUS.offset), regs::ALL_ONES);
}

#[test]
fn a_slow_device_takes_at_least_its_delay_per_round() {
    let rig = Rig::new(Profile::COHERENT);
    let (mut c, mut qs) = setup(&rig, 0);
    rig.dev.inject(Fault::Slow(Duration::from_millis(5)));
    nops(&rig, &mut qs[2], 1);
    let t = Instant::now();
    assert!(rig.dev.service());
    assert!(t.elapsed() >= Duration::from_millis(5));
    assert_eq!(rig.drain(&mut c).len(), 1, "slow, but correct");
}

#[test]
fn random_faults_replay_exactly_from_their_seed() {
    let run = |seed: u64| {
        let rig = Rig::new(Profile::COHERENT);
        let (mut c, mut qs) = setup(&rig, 0);
        rig.dev.set_random_faults(Some(RandomFaults {
            seed,
            dma_error_ppm: 0,
            hostile_cqe_ppm: 200_000,
        }));
        let mut bad = Vec::new();
        for i in 0..40 {
            nops(&rig, &mut qs[2], 1);
            rig.dev.run_until_idle();
            let raw = rig.poll_raw(&mut c).unwrap();
            rig.w(rhca_hw::regs::db::cq_ci(0).unwrap(), c.ci);
            if Cqe::decode(&raw)
                .and_then(|e| {
                    e.check(&Posted {
                        entries: 32,
                        len: 0,
                    })
                })
                .is_err()
            {
                bad.push(i);
            }
        }
        bad
    };
    let a = run(42);
    assert_eq!(a, run(42), "same seed, same faults");
    assert!(!a.is_empty() && a.len() < 40, "about one in five: {a:?}");
    assert_ne!(a, run(43));
}
