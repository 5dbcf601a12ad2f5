//! The model under DMA remapping and Driver Verifier: when the driver side follows the rules,
//! the device never touches memory outside live mappings and never touches a guard; when the
//! driver breaks them, the platform catches the device's access.

#![expect(clippy::cast_possible_truncation, reason = "test geometry is small")]

use rhca_hw::cqe;
use rhca_hw::mad::{self, attr};
use rhca_hw::regs::{WqId, db, se};
use rhca_hw::stream::{self, Descriptor};
use rhca_model::rig::*;
use wdk_sim::Profile;

/// MAD round trips with a fresh mapping per post, then a short capture through a persistent
/// mapping flushed per lap, then teardown. Returns what leaked.
fn workload(profile: Profile) -> Vec<String> {
    let mut rig = Rig::new(profile);
    rig.bring_up();
    let mut c = rig.create_cq(0, 6);
    let mut qs = WqId::ALL.map(|id| rig.create_wq(id, 5, 9, 0));
    let mut answered = 0;
    for round in 0..20u64 {
        let buf = rig.post_recv(&mut qs[1], mad::RECV_BUF_SIZE as u32);
        rig.ring(&qs[1]);
        let path: &[u8] = if round % 2 == 0 { &[0] } else { &[0, 1, 2] };
        rig.post_send(
            &mut qs[0],
            &dr_get(attr::NODE_INFO, 0, path, round),
            mad::PERMISSIVE_LID,
            0,
            0,
        );
        rig.ring(&qs[0]);
        rig.dev.run_until_idle();
        for e in rig.drain(&mut c) {
            assert_eq!(e.status, cqe::Status::Success);
            if e.opcode == cqe::Opcode::Recv {
                let data = rig.recv_data(buf);
                assert_eq!(mad::MadHeader::decode(&data[40..]).unwrap().tid, round);
                answered += 1;
            }
        }
    }
    assert_eq!(answered, 20);

    // Capture 4 segments into a user buffer mapped once.
    let (seg, count) = (8192u32, 4u32);
    let va = rig.m.alloc_user((seg * count) as usize);
    let el = rig.map_user(va, seg * count, true);
    let mut table = vec![0u8; el.len() * 16];
    for (i, (&(addr, len), out)) in el.iter().zip(table.chunks_exact_mut(16)).enumerate() {
        Descriptor {
            addr,
            len,
            last: i + 1 == el.len(),
        }
        .encode(out)
        .unwrap();
    }
    let (tva, tla) = rig.common(4096);
    rig.write(tva, &table);
    let (_rva, rla) = rig.common(4096);
    let r = |reg| se::offset(0, reg).unwrap();
    for (reg, v) in [
        (se::DESC_LO, tla as u32),
        (se::DESC_HI, (tla >> 32) as u32),
        (se::DESC_COUNT, el.len() as u32),
        (se::SEG_SIZE, seg),
        (se::SEG_COUNT, count),
        (se::REC_LO, rla as u32),
        (se::REC_HI, (rla >> 32) as u32),
        (se::CTRL, se::CTRL_START.mask()),
    ] {
        rig.w(r(reg), v);
    }
    rig.w(db::se_credit(0).unwrap(), count);
    rig.dev.run_until_idle();
    assert_eq!(rig.dev.counters().segments, 4);
    rig.flush(va);
    let data = rig.read(va, (seg * count) as usize);
    for (s, chunk) in data.chunks_exact(seg as usize).enumerate() {
        assert_eq!(
            stream::verify_pattern(chunk, s as u64, 0),
            Ok(None),
            "segment {s}"
        );
    }
    rig.w(r(se::CTRL), se::CTRL_STOP.mask());
    assert!(se::STATUS_STOPPED.is_set(rig.r(r(se::STATUS))));
    assert!(rig.m.bugcheck().is_none(), "{:?}", rig.m.bugcheck());
    assert!(rig.m.stray_dma(rig.att.slot).is_empty());
    let leaks = rig.teardown();
    rig.m.free_user(va);
    leaks
}

#[test]
fn under_iommu_the_device_stays_inside_live_mappings() {
    assert_eq!(workload(Profile::IOMMU), Vec::<String>::new());
}

#[test]
fn under_verifier_no_guard_is_touched_and_nothing_leaks() {
    assert_eq!(workload(Profile::VERIFIER), Vec::<String>::new());
}

#[test]
fn on_a_noncoherent_platform_the_flushes_make_the_data_visible() {
    assert_eq!(workload(Profile::NONCOHERENT), Vec::<String>::new());
}

#[test]
fn a_driver_that_unmaps_too_early_is_caught_by_the_iommu() {
    let rig = Rig::new(Profile::IOMMU);
    rig.bring_up();
    let mut c = rig.create_cq(0, 6);
    let mut qs = WqId::ALL.map(|id| rig.create_wq(id, 5, 9, 0));
    let buf = rig.post_recv(&mut qs[1], mad::RECV_BUF_SIZE as u32);
    rig.ring(&qs[1]);
    rig.dev.run_until_idle();
    // The driver unmaps the posted receive buffer without quiescing: a rule violation.
    let _ = rig.recv_data(buf);
    rig.post_send(
        &mut qs[0],
        &dr_get(attr::NODE_INFO, 0, &[0], 1),
        mad::PERMISSIVE_LID,
        0,
        0,
    );
    rig.ring(&qs[0]);
    rig.dev.run_until_idle();
    let b = rig
        .m
        .bugcheck()
        .expect("the device's write faulted in the IOMMU");
    assert!(b.is_dma(0x26), "{b}");
    assert!(
        rig.drain(&mut c)
            .iter()
            .all(|e| e.opcode == cqe::Opcode::Send),
        "no receive completed"
    );
}
