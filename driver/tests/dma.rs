//! The driver's DMA layer on the simulated machine, under every platform profile: the adapter,
//! common buffers, per-transfer scatter/gather mappings with deferral when map registers run
//! out, and RAII release — checked by what the device sees and by the machine's leak report.

#![expect(clippy::cast_possible_truncation, reason = "test lengths are small")]

use std::sync::Arc;

use rhca::dma::{Adapter, Direction, DmaBuffer, DmaError, MapOutcome, TAG_MAD};
use rhca::sys::{self as sys, KSpinLock};
use wdk_sim::{Config, DeviceBus, Machine, PciFunction, PciIdentity, Profile};

/// A device that only does DMA (the tests drive it by hand).
struct Dev(u32);

impl PciFunction for Dev {
    fn identity(&self) -> PciIdentity {
        PciIdentity {
            vendor_id: 0x1234,
            device_id: 0x5248,
            class_code: 0x0C_06_00,
            revision: 1,
        }
    }
    fn bar_size(&self, bar: u8) -> u64 {
        if bar == 0 { 0x4000 } else { 0 }
    }
    fn mmio_read(&self, _bar: u8, _offset: u64) -> u32 {
        0
    }
    fn mmio_write(&self, _bar: u8, _offset: u64, _value: u32) {}
    fn dma_address_width(&self) -> u32 {
        self.0
    }
}

struct Rig {
    m: Machine,
    bus: DeviceBus,
    pdo: usize,
    width: u32,
}

fn rig(config: Config, width: u32) -> Rig {
    let m = Machine::new(config);
    let (att, bus) = m.attach(Arc::new(Dev(width)));
    Rig {
        m,
        bus,
        pdo: att.pdo as usize,
        width,
    }
}

impl Rig {
    fn adapter(&self, max_len: u32) -> Adapter {
        let pdo = self.pdo as sys::PDEVICE_OBJECT;
        // SAFETY: the PDO the machine created for the device; the tests use it as the device
        // object too (the HAL only records it).
        unsafe { Adapter::new(pdo, pdo, self.width, max_len) }.expect("adapter")
    }
}

fn mapped(o: MapOutcome) -> rhca::dma::SgMapping {
    match o {
        MapOutcome::Ready(m) => m,
        MapOutcome::Waiting(_) => panic!("expected an immediate mapping"),
    }
}

/// Reads what a mapping describes, as the device would.
fn device_read(bus: &DeviceBus, elements: &[(u64, u32)]) -> Vec<u8> {
    let mut out = Vec::new();
    for &(a, l) in elements {
        let mut b = vec![0u8; l as usize];
        bus.dma_read(a, &mut b).expect("inside the mapping");
        out.extend(b);
    }
    out
}

fn round_trip(profile: Profile, width: u32) {
    let r = rig(Config::with_profile(profile), width);
    let _cpu = r.m.enter();
    {
        let a = r.adapter(64 * 1024);
        assert_eq!(a.description_version(), 3);
        assert!(a.map_registers() >= 16);
        assert!(a.has_flush_dma_buffer());

        // A common buffer: the CPU's writes are what the device reads, and vice versa.
        let cb = a.common_buffer(8192).unwrap();
        cb.write(100, b"ring bytes");
        let mut seen = [0u8; 10];
        r.bus.dma_read(cb.logical() + 100, &mut seen).unwrap();
        assert_eq!(&seen, b"ring bytes");
        r.bus.dma_write(cb.logical() + 4095, &[0x80]).unwrap();
        assert_eq!(
            cb.load_acquire(4095),
            0x80,
            "an owner byte the device wrote"
        );

        // A send: fill, map memory→device, the device reads the MAD.
        let mut mad = DmaBuffer::new(256, TAG_MAD).unwrap();
        for (i, b) in mad.as_mut_slice().iter_mut().enumerate() {
            *b = i as u8;
        }
        let lock = KSpinLock::new();
        let g = lock.lock();
        let m = mapped(a.map(mad, Direction::ToDevice, &g.at_dispatch()).unwrap());
        let el: Vec<(u64, u32)> = m.elements().collect();
        assert_eq!(el.iter().map(|e| e.1).sum::<u32>(), 256);
        let got = device_read(&r.bus, &el);
        assert_eq!(got, (0..=255u8).collect::<Vec<_>>());
        let mad = m.unmap(&g.at_dispatch());
        drop(g);
        drop(mad);

        // A receive: map device←memory, the device writes, unmap, the CPU sees it.
        let recv = DmaBuffer::new(296, TAG_MAD).unwrap();
        let g = lock.lock();
        let m = mapped(
            a.map(recv, Direction::FromDevice, &g.at_dispatch())
                .unwrap(),
        );
        let el: Vec<(u64, u32)> = m.elements().collect();
        let mut at = 0u8;
        for &(addr, l) in &el {
            let data: Vec<u8> = (0..l)
                .map(|_| {
                    at = at.wrapping_add(3);
                    at
                })
                .collect();
            r.bus.dma_write(addr, &data).unwrap();
        }
        let recv = m.unmap(&g.at_dispatch());
        drop(g);
        let mut want = 0u8;
        assert!(
            recv.as_slice().iter().all(|&b| {
                want = want.wrapping_add(3);
                b == want
            }),
            "the device's bytes are visible after the unmap"
        );
    }
    assert_eq!(
        r.m.leaks().unwrap(),
        Vec::<String>::new(),
        "{profile:?}: everything released by drop"
    );
    assert!(r.m.bugcheck().is_none());
    assert!(r.m.stray_dma(0).is_empty());
}

#[test]
fn round_trip_under_every_profile() {
    round_trip(Profile::COHERENT, 64);
    round_trip(Profile::IOMMU, 64);
    round_trip(Profile::BOUNCE, 32);
    round_trip(Profile::NONCOHERENT, 64);
    round_trip(Profile::VERIFIER, 64);
}

#[test]
fn a_mapping_waits_for_map_registers_and_arrives_in_order() {
    // MaximumLength 4096: two map registers; a 4097-byte buffer spans two pages and takes both.
    let r = rig(Config::with_profile(Profile::IOMMU), 64);
    let _cpu = r.m.enter();
    {
        let a = r.adapter(4096);
        assert_eq!(a.map_registers(), 2);
        let lock = KSpinLock::new();
        let g = lock.lock();
        let first = mapped(
            a.map(
                DmaBuffer::new(4097, TAG_MAD).unwrap(),
                Direction::ToDevice,
                &g.at_dispatch(),
            )
            .unwrap(),
        );
        let MapOutcome::Waiting(second) = a
            .map(
                DmaBuffer::new(256, TAG_MAD).unwrap(),
                Direction::ToDevice,
                &g.at_dispatch(),
            )
            .unwrap()
        else {
            panic!("no registers left: the second mapping must wait");
        };
        let second = second.poll().expect_err("still waiting");
        let _ = first.unmap(&g.at_dispatch());
        let second = second
            .poll()
            .expect("the first unmap released the registers");
        assert_eq!(second.elements().map(|e| e.1).sum::<u32>(), 256);
        drop(second);
        // A transfer larger than the adapter can ever map is refused, and the buffer comes back.
        let (e, back) = a
            .map(
                DmaBuffer::new(16384, TAG_MAD).unwrap(),
                Direction::ToDevice,
                &g.at_dispatch(),
            )
            .unwrap_err();
        assert_eq!(e, DmaError::Map(sys::STATUS_INSUFFICIENT_RESOURCES));
        assert_eq!(back.len(), 16384, "nothing lost");
        drop(g);
    }
    assert_eq!(r.m.leaks().unwrap(), Vec::<String>::new());
}

#[test]
fn an_abandoned_waiting_mapping_is_released_when_its_list_arrives() {
    let r = rig(Config::with_profile(Profile::VERIFIER), 64);
    let _cpu = r.m.enter();
    {
        let a = r.adapter(4096);
        let lock = KSpinLock::new();
        let g = lock.lock();
        let first = mapped(
            a.map(
                DmaBuffer::new(4097, TAG_MAD).unwrap(),
                Direction::FromDevice,
                &g.at_dispatch(),
            )
            .unwrap(),
        );
        let MapOutcome::Waiting(second) = a
            .map(
                DmaBuffer::new(512, TAG_MAD).unwrap(),
                Direction::FromDevice,
                &g.at_dispatch(),
            )
            .unwrap()
        else {
            panic!("must wait");
        };
        drop(second);
        // The routine runs inside this unmap, puts the abandoned list and frees its buffer.
        let _ = first.unmap(&g.at_dispatch());
        drop(g);
    }
    assert_eq!(r.m.leaks().unwrap(), Vec::<String>::new());
    assert!(r.m.bugcheck().is_none());
}

#[test]
fn dropping_a_live_mapping_at_passive_level_unmaps_it() {
    let r = rig(Config::with_profile(Profile::VERIFIER), 64);
    let _cpu = r.m.enter();
    {
        let a = r.adapter(65536);
        let lock = KSpinLock::new();
        let m = {
            let g = lock.lock();
            mapped(
                a.map(
                    DmaBuffer::new(1000, TAG_MAD).unwrap(),
                    Direction::ToDevice,
                    &g.at_dispatch(),
                )
                .unwrap(),
            )
        };
        drop(a);
        // The adapter stays alive while the mapping holds it; dropping the mapping puts the
        // list (raising to DISPATCH_LEVEL itself) and then the adapter.
        drop(m);
    }
    assert_eq!(r.m.leaks().unwrap(), Vec::<String>::new());
    assert!(r.m.bugcheck().is_none());
}

#[test]
fn a_32_bit_device_is_bounced_below_4_gib() {
    let r = rig(Config::with_profile(Profile::BOUNCE), 32);
    let _cpu = r.m.enter();
    {
        let a = r.adapter(65536);
        let cb = a.common_buffer(4096).unwrap();
        assert!(cb.logical() + 4096 <= 1 << 32);
        let lock = KSpinLock::new();
        let g = lock.lock();
        let m = mapped(
            a.map(
                DmaBuffer::new(8192, TAG_MAD).unwrap(),
                Direction::ToDevice,
                &g.at_dispatch(),
            )
            .unwrap(),
        );
        assert!(m.elements().all(|(addr, l)| addr + u64::from(l) <= 1 << 32));
        drop(m);
        drop(g);
    }
    assert_eq!(r.m.leaks().unwrap(), Vec::<String>::new());
}
