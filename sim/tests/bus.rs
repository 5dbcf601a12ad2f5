//! The device's side of the bus: interrupts, bus-master enable, removal, address width, and the
//! IOMMU cost model.

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use wdk_sim::*;

#[test]
fn interrupts_queue_until_a_sink_is_set_then_flow_to_it() {
    let (m, att, bus) = machine(Profile::COHERENT, 64);
    assert!(bus.signal_msi(1));
    assert!(bus.set_intx(true));
    assert!(
        bus.set_intx(true),
        "same level: accepted, not signalled twice"
    );
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    let sink: InterruptSink = Arc::new(move |i| g.lock().unwrap().push(i));
    m.set_interrupt_sink(att.slot, &sink);
    assert!(bus.set_intx(false));
    assert!(bus.signal_msi(0));
    assert_eq!(
        *got.lock().unwrap(),
        vec![
            Interrupt::Msi { vector: 1 },
            Interrupt::IntxAsserted,
            Interrupt::IntxDeasserted,
            Interrupt::Msi { vector: 0 }
        ]
    );
    assert!(m.take_interrupts(att.slot).is_empty());
}

#[test]
fn msi_needs_bus_mastering_and_a_present_device() {
    let (m, att, bus) = machine(Profile::COHERENT, 64);
    m.set_bus_master(att.slot, false);
    assert!(!bus.signal_msi(0), "an MSI is a memory write");
    assert!(bus.set_intx(true), "INTx is a wire");
    let mut b = [0u8; 4];
    assert_eq!(
        bus.dma_read(0x1000, &mut b),
        Err(DmaFault::BusMasterDisabled)
    );
    m.set_bus_master(att.slot, true);
    m.surprise_remove(att.slot);
    assert!(!bus.signal_msi(0));
    assert!(!bus.present());
    assert_eq!(bus.dma_read(0x1000, &mut b), Err(DmaFault::NotPresent));
    assert_eq!(m.take_interrupts(att.slot), vec![Interrupt::IntxAsserted]);
}

#[test]
fn a_32_bit_device_cannot_reach_above_4_gib() {
    let (_m, _att, bus) = machine(Profile::COHERENT, 32);
    let mut b = [0u8; 8];
    assert_eq!(
        bus.dma_read(0xFFFF_FFFC, &mut b),
        Err(DmaFault::BeyondAddressWidth(0xFFFF_FFFC))
    );
    assert!(
        matches!(bus.dma_read(0x10_0000, &mut b), Err(DmaFault::NoMemory(_))),
        "no memory answers there"
    );
}

fn map_unmap_cycles(cost: Option<IommuCost>, cycles: usize) -> (IommuStats, std::time::Duration) {
    let cfg = Config {
        iommu_cost: cost,
        ..Config::with_profile(Profile::IOMMU)
    };
    let (machine, att, _) = machine_with(cfg, 64);
    let pdo = Addr(att.pdo as usize);
    let start = std::time::Instant::now();
    machine
        .run(move || {
            let (a, _) = adapter(pdo.0 as PDEVICE_OBJECT, 3, 64, 65536);
            let (p, mdl) = pool_buffer(256);
            for _ in 0..cycles {
                let (_, list) = get_sg(a, mdl, p, 256, false);
                put_sg(a, list, false);
            }
            free_pool_buffer(p, mdl);
            put_adapter(a);
        })
        .unwrap();
    (machine.iommu_stats(), start.elapsed())
}

#[test]
fn iommu_cost_model_counts_and_charges() {
    let (free, _) = map_unmap_cycles(None, 20);
    assert_eq!(
        (free.maps, free.unmaps, free.invalidations, free.charged_ns),
        (20, 20, 20, 0)
    );
    let strict = IommuCost {
        map_ns: 1000,
        unmap_ns: 1000,
        invalidate_ns: 10_000,
        deferred: false,
        batch: 1,
        iotlb_miss_ns: 0,
    };
    let (s, elapsed) = map_unmap_cycles(Some(strict), 20);
    assert_eq!(s.invalidations, 20, "strict: one invalidation per unmap");
    assert_eq!(s.charged_ns, 20 * (1000 + 1000 + 10_000));
    assert!(
        elapsed.as_nanos() >= u128::from(s.charged_ns),
        "the cost is really spent"
    );
    let deferred = IommuCost {
        deferred: true,
        batch: 8,
        ..strict
    };
    let (d, _) = map_unmap_cycles(Some(deferred), 20);
    assert_eq!(
        d.invalidations, 2,
        "deferred: one invalidation per 8 unmaps"
    );
    assert_eq!(d.charged_ns, 20 * 2000 + 2 * 10_000);
}

#[test]
fn iommu_cost_is_spent_outside_the_machines_lock() {
    // A map that costs 300 ms of CPU: while the mapping thread spends it, the device and the
    // machine's other CPUs must not wait (a real IOMMU operation stalls only the CPU
    // that makes it).
    let slow = IommuCost {
        map_ns: 300_000_000,
        unmap_ns: 0,
        invalidate_ns: 0,
        deferred: false,
        batch: 1,
        iotlb_miss_ns: 0,
    };
    let cfg = Config {
        iommu_cost: Some(slow),
        ..Config::with_profile(Profile::IOMMU)
    };
    let (machine, att, bus) = machine_with(cfg, 64);
    let pdo = Addr(att.pdo as usize);
    let (tx, rx) = std::sync::mpsc::channel();
    let m2 = machine.clone();
    let mapper = std::thread::spawn(move || {
        m2.run(move || {
            let (a, _) = adapter(pdo.0 as PDEVICE_OBJECT, 3, 64, 65536);
            let (p, mdl) = pool_buffer(256);
            let _ = tx.send(());
            let (_, list) = get_sg(a, mdl, p, 256, false);
            put_sg(a, list, false);
            free_pool_buffer(p, mdl);
            put_adapter(a);
        })
        .unwrap();
    });
    rx.recv().unwrap();
    // Give the mapper time to enter its map and start spending the cost.
    std::thread::sleep(std::time::Duration::from_millis(50));
    let t = std::time::Instant::now();
    // Both take the machine's lock: they answer at once only if the cost is not spent under it.
    assert!(bus.present());
    let _ = machine.iommu_stats();
    let waited = t.elapsed();
    mapper.join().unwrap();
    assert_eq!(machine.iommu_stats().charged_ns, 300_000_000);
    assert!(
        waited < std::time::Duration::from_millis(150),
        "the bus and the machine waited {waited:?} for another CPU's IOMMU cost"
    );
}

/// The logical address of byte `off` of a mapping with scatter/gather list `elements`.
fn logical_at(elements: &[(u64, u32)], off: u64) -> u64 {
    let mut o = off;
    for &(l, n) in elements {
        if o < u64::from(n) {
            return l + o;
        }
        o -= u64::from(n);
    }
    panic!("offset {off} beyond the mapping");
}

#[test]
fn a_burst_writes_its_pieces_up_to_the_first_that_faults() {
    // Coherent and remapped bursts are copied after the machine's lock is released; a
    // non-coherent one is written under it (its pages have cached copies): both paths.
    for profile in [Profile::COHERENT, Profile::IOMMU, Profile::NONCOHERENT] {
        let (m, att, bus) = machine(profile, 64);
        let _cpu = m.enter();
        let adapter = testkit::TestAdapter::new(&att, 64, 1 << 20).expect("adapter");
        // Three pages the device may write, scattered or remapped.
        let map = adapter.map_pool(3 * 4096, true).expect("mapping");
        let at = |off: u64| logical_at(&map.elements, off);
        let (first, second, third) = ([0x11u8; 100], [0x22u8; 4096], [0x33u8; 8]);
        // All three pieces land.
        let data = [&first[..], &second[..], &third[..]].concat();
        assert_eq!(
            bus.dma_write_pieces(
                &data,
                &[(at(0), 100), (at(4096), 4096), (at(3 * 4096 - 8), 8)]
            ),
            Ok(())
        );
        // A piece with no memory behind it (physical address 0x10 under `coherent`, an
        // unmapped IOVA under remapping, which is also a bug check there) stops the burst: the
        // piece before it is written, it and the one after are not.
        let (before, after) = ([0x44u8; 16], [0x55u8; 16]);
        let data = [&before[..], &after[..], &after[..]].concat();
        let r = bus.dma_write_pieces(&data, &[(at(200), 16), (0x10, 16), (at(300), 16)]);
        if profile.iommu {
            assert!(matches!(r, Err((1, DmaFault::IommuFault(_)))), "{r:?}");
            let stop = m.bugcheck().expect("the IOMMU fault stopped the machine");
            assert_eq!((stop.code, stop.params[0]), (0xE6, 0x26));
            // The machine is stopped: nothing more runs on it, not even the teardown.
            std::mem::forget((map, adapter));
            continue;
        }
        assert_eq!(r, Err((1, DmaFault::NoMemory(0x10))), "{profile}");
        assert_eq!(
            m.stray_dma(att.slot),
            [(0x10, 16, true)],
            "{profile}: the faulting piece lies outside every mapping"
        );
        let bytes = adapter.unmap_read(map);
        assert_eq!(&bytes[..100], &first[..]);
        assert_eq!(&bytes[4096..8192], &second[..]);
        assert_eq!(&bytes[3 * 4096 - 8..], &third[..]);
        assert_eq!(&bytes[200..216], &before[..], "the piece before the fault");
        assert!(
            bytes[300..316].iter().all(|&b| b == 0),
            "the piece after it"
        );
    }
}

#[test]
fn a_burst_goes_back_to_the_fast_path_after_a_piece_that_needs_the_full_checks() {
    // Under `coherent` a piece within one page that a mapping covers whole takes the bus's
    // fast path; a piece on a page mapped only in part takes the full checks, and the pieces
    // after it the fast path again. Every piece lands, in order.
    let (m, att, bus) = machine(Profile::COHERENT, 64);
    let _cpu = m.enter();
    let adapter = testkit::TestAdapter::new(&att, 64, 1 << 20).expect("adapter");
    let map = adapter.map_pool(3 * 4096, true).expect("mapping");
    let part = adapter.map_pool(100, true).expect("mapping");
    let at = |off: u64| logical_at(&map.elements, off);
    let (p, _) = part.elements[0];
    let pieces = [
        (at(0), 16),
        (p + 10, 40),
        (at(4096 + 100), 16),
        (at(4096 + 200), 16),
        (p + 60, 8),
        (at(2 * 4096 + 8), 16),
    ];
    let data: Vec<u8> = (0..pieces.iter().map(|p| p.1).sum::<usize>())
        .map(|i| u8::try_from(i % 251).unwrap() + 1)
        .collect();
    assert_eq!(bus.dma_write_pieces(&data, &pieces), Ok(()));
    assert!(
        m.stray_dma(att.slot).is_empty(),
        "every piece lies in a mapping"
    );
    let bytes = adapter.unmap_read(map);
    let part_bytes = adapter.unmap_read(part);
    let mut from = 0;
    let mut check = |landed: &[u8], what: &str| {
        assert_eq!(landed, &data[from..from + landed.len()], "{what}");
        from += landed.len();
    };
    check(&bytes[..16], "the first piece (fast path)");
    check(
        &part_bytes[10..50],
        "a piece on a page mapped in part (full checks)",
    );
    check(&bytes[4096 + 100..4096 + 116], "the fast path again");
    check(&bytes[4096 + 200..4096 + 216], "and again");
    check(&part_bytes[60..68], "the full checks again");
    check(&bytes[2 * 4096 + 8..2 * 4096 + 24], "the last piece");
    assert_eq!(from, data.len());
}

#[test]
fn a_burst_piece_beyond_the_device_width_after_fast_pieces_faults_at_its_index() {
    // A 32-bit device: the fast path takes the first piece, the second lies beyond the
    // device's reach and ends the burst there (the first written, the third not).
    let (m, att, bus) = machine(Profile::COHERENT, 32);
    let _cpu = m.enter();
    let adapter = testkit::TestAdapter::new(&att, 32, 1 << 20).expect("adapter");
    let map = adapter.map_pool(2 * 4096, true).expect("mapping");
    let (l, _) = map.elements[0];
    let data = [0x77u8; 48];
    let r = bus.dma_write_pieces(&data, &[(l, 16), (1 << 33, 16), (l + 64, 16)]);
    assert_eq!(r, Err((1, DmaFault::BeyondAddressWidth(1 << 33))));
    let bytes = adapter.unmap_read(map);
    assert_eq!(&bytes[..16], &data[..16]);
    assert!(
        bytes[64..80].iter().all(|&b| b == 0),
        "the piece after the fault"
    );
}

#[test]
fn a_burst_piece_on_a_page_mapped_only_in_part_is_stray_only_outside_the_mapping() {
    // A mapping of 100 bytes covers no page whole, so a piece on its page is checked against
    // the ranges themselves, not the whole-page counts.
    let (m, att, bus) = machine(Profile::COHERENT, 64);
    let _cpu = m.enter();
    let adapter = testkit::TestAdapter::new(&att, 64, 1 << 20).expect("adapter");
    let map = adapter.map_pool(100, true).expect("mapping");
    let (at, n) = map.elements[0];
    assert_eq!(n, 100);
    let inside = [0x66u8; 40];
    assert_eq!(bus.dma_write_pieces(&inside, &[(at + 10, 40)]), Ok(()));
    assert!(m.stray_dma(att.slot).is_empty(), "inside the mapping");
    // Past the mapping's end but on the same page (which has memory: the write lands).
    assert_eq!(bus.dma_write_pieces(&inside, &[(at + 90, 40)]), Ok(()));
    assert_eq!(m.stray_dma(att.slot), [(at + 90, 40, true)]);
    let bytes = adapter.unmap_read(map);
    assert_eq!(&bytes[10..50], &inside[..]);
    assert_eq!(&bytes[90..100], &inside[..10]);
}

#[test]
fn a_devices_iotlb_misses_are_counted_per_page_it_moves_to_and_paid_outside_the_lock() {
    // A miss costs the device 50 ms here, so that the time it spends shows against the lock.
    let cost = IommuCost {
        map_ns: 0,
        unmap_ns: 0,
        invalidate_ns: 0,
        deferred: false,
        batch: 1,
        iotlb_miss_ns: 50_000_000,
    };
    let cfg = Config {
        iommu_cost: Some(cost),
        ..Config::with_profile(Profile::IOMMU)
    };
    let (m, att, bus) = machine_with(cfg, 64);
    let _cpu = m.enter();
    let adapter = testkit::TestAdapter::new(&att, 64, 1 << 20).expect("adapter");
    let map = adapter.map_pool(4 * 4096, true).expect("mapping");
    let other = adapter.map_pool(64, true).expect("mapping");
    let [(iova, len)] = map.elements[..] else {
        panic!("one remapped element: {:?}", map.elements);
    };
    let last = iova + u64::from(len) - 8;
    let pages = (last >> 12) - (iova >> 12) + 1;
    let misses = || m.iommu_stats().iotlb_misses;

    // A burst over the whole buffer misses once per page; the device's thread spends the
    // misses' time, and the machine answers meanwhile.
    let before = misses();
    let writer = {
        let bus = bus.clone();
        let data = vec![7u8; len as usize];
        std::thread::spawn(move || {
            let t = std::time::Instant::now();
            let r = bus.dma_write_pieces(&data, &[(iova, data.len())]);
            (r, t.elapsed())
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(20));
    let t = std::time::Instant::now();
    assert!(bus.present(), "the lock is free while the device stalls");
    let waited = t.elapsed();
    let (r, took) = writer.join().unwrap();
    assert_eq!(r, Ok(()));
    assert_eq!(misses() - before, pages);
    assert!(
        took >= std::time::Duration::from_millis(50 * pages),
        "the device's thread spent its misses' time ({took:?})"
    );
    assert!(
        waited < std::time::Duration::from_millis(100),
        "the bus waited {waited:?} for the device's IOTLB misses"
    );

    // The page translated last is the IOTLB's entry: a hit. Another page misses.
    assert_eq!(bus.dma_write(last, &[1u8; 8]), Ok(()));
    assert_eq!(misses() - before, pages, "a hit");
    assert_eq!(bus.dma_read(iova, &mut [0u8; 8]), Ok(()));
    assert_eq!(misses() - before, pages + 1, "a miss");
    // An unmap's invalidation empties the IOTLB: the same page misses again.
    assert_eq!(bus.dma_read(iova, &mut [0u8; 8]), Ok(()));
    assert_eq!(misses() - before, pages + 1, "a hit");
    adapter.unmap(other);
    assert_eq!(bus.dma_read(iova, &mut [0u8; 8]), Ok(()));
    assert_eq!(
        misses() - before,
        pages + 2,
        "a miss after the invalidation"
    );
    assert_eq!(
        m.iommu_stats().charged_ns,
        misses() * 50_000_000,
        "every miss charged, nothing else"
    );
    adapter.unmap(map);
}
