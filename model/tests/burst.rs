//! A capture burst is written without the device's lock (`engine::Burst`): what the device does
//! when the driver writes STOP, QUIESCE or RESET while a burst is on its way to the bus. A port
//! that holds the burst before the bus takes it opens that window on purpose.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use rhca_hw::regs::{self, se};
use rhca_hw::stream::{self, RecordStatus};
use rhca_model::rig::*;
use rhca_model::{HostPort, ModelConfig};
use wdk_sim::{Config, DeviceBus, DmaFault, Profile};

/// The machine's bus, with a gate in front of burst writes: while the gate is held, a burst
/// waits before the bus takes it (before the bus asks whether it is still wanted).
#[derive(Debug)]
struct Gated {
    bus: DeviceBus,
    /// Whether bursts wait.
    held: Mutex<bool>,
    opened: Condvar,
    /// A burst reached the gate.
    waiting: AtomicBool,
}

impl Gated {
    fn new(bus: DeviceBus) -> Arc<Self> {
        Arc::new(Self {
            bus,
            held: Mutex::new(true),
            opened: Condvar::new(),
            waiting: AtomicBool::new(false),
        })
    }

    /// Waits (bounded) until a burst is held at the gate.
    fn wait_for_burst(&self) {
        for _ in 0..10_000 {
            if self.waiting.load(Ordering::Acquire) {
                return;
            }
            std::thread::sleep(Duration::from_micros(100));
        }
        panic!("no burst reached the gate");
    }

    fn open(&self) {
        *self.held.lock().unwrap() = false;
        self.opened.notify_all();
    }
}

impl HostPort for Gated {
    fn dma_read(&self, addr: u64, buf: &mut [u8]) -> Result<(), DmaFault> {
        self.bus.dma_read(addr, buf)
    }

    fn dma_write(&self, addr: u64, buf: &[u8]) -> Result<(), DmaFault> {
        self.bus.dma_write(addr, buf)
    }

    fn dma_write_pieces_if(
        &self,
        data: &[u8],
        pieces: &[(u64, usize)],
        live: &dyn Fn() -> bool,
    ) -> Result<bool, (usize, DmaFault)> {
        let mut held = self.held.lock().unwrap();
        self.waiting.store(true, Ordering::Release);
        while *held {
            held = self.opened.wait(held).unwrap();
        }
        drop(held);
        self.bus.dma_write_pieces_if(data, pieces, live)
    }

    fn signal_msi(&self, vector: u32) -> bool {
        self.bus.signal_msi(vector)
    }

    fn set_intx(&self, asserted: bool) -> bool {
        self.bus.set_intx(asserted)
    }

    fn surprise_remove(&self) {
        self.bus.surprise_remove();
    }
}

/// 128 KiB segments: one 64 KiB burst leaves the segment half moved.
const SEG: u32 = 128 * 1024;

/// A rig whose device's bursts wait at a gate, and a capture stream on engine 0 with one
/// credit.
fn gated_stream() -> (Rig, Arc<Gated>, StreamH) {
    let mut gate = None;
    let rig = Rig::with_port(
        Config::with_profile(Profile::COHERENT),
        ModelConfig::default(),
        |bus| {
            let g = Gated::new(bus);
            gate = Some(g.clone());
            g
        },
    );
    rig.bring_up();
    let len = SEG * 4;
    let va = rig.m.alloc_user(len as usize);
    let el = rig.map_user(va, len, true);
    let s = StreamH::start(&rig, 0, true, false, SEG, 4, va, &el);
    s.grant(&rig, 1);
    (rig, gate.expect("the rig made its port"), s)
}

/// Runs one service round on another thread, does `during` while its burst is held at the
/// gate, then lets the burst go and waits for the round to end.
fn while_in_flight(rig: &Rig, gate: &Gated, during: impl FnOnce()) {
    let dev = rig.dev.clone();
    std::thread::scope(|scope| {
        let round = scope.spawn(move || dev.service());
        gate.wait_for_burst();
        during();
        gate.open();
        assert!(round.join().unwrap(), "the round moved data");
    });
}

#[test]
fn a_stop_written_during_a_burst_takes_effect_when_it_ends() {
    let (rig, gate, mut s) = gated_stream();
    let ctrl = se::offset(0, se::CTRL).unwrap();
    while_in_flight(&rig, &gate, || {
        rig.w(ctrl, se::CTRL_STOP.mask());
        let st = s.status(&rig);
        assert!(
            se::STATUS_RUNNING.is_set(st) && !se::STATUS_STOPPED.is_set(st),
            "the engine is still moving its burst: {st:#x}"
        );
    });
    let st = s.status(&rig);
    assert!(
        se::STATUS_STOPPED.is_set(st) && !se::STATUS_RUNNING.is_set(st),
        "{st:#x}"
    );
    // The burst landed, then the engine stopped at its boundary with a Stopped record for the
    // half-moved segment.
    let rec = s.poll(&rig).expect("a Stopped record");
    assert_eq!(rec.status, RecordStatus::Stopped);
    assert_eq!(rec.byte_count, 64 * 1024);
    let mut want = vec![0u8; 64 * 1024];
    stream::fill_pattern(&mut want, 0, 0).unwrap();
    assert_eq!(s.segment(&rig, 0)[..64 * 1024], want[..]);
    assert_eq!(rig.dev.counters().bytes_streamed, 64 * 1024);
    assert!(
        rig.r(regs::INT_CAUSE.offset) & regs::cause::se_stopped(0) != 0,
        "the stop is acknowledged"
    );
    // Stopped means stopped: more rounds move nothing.
    rig.dev.run_until_idle();
    assert_eq!(rig.dev.counters().bytes_streamed, 64 * 1024);
}

#[test]
fn quiesced_is_not_reported_while_a_burst_is_in_flight() {
    let (rig, gate, mut s) = gated_stream();
    let quiesced = || regs::STATUS_QUIESCED.is_set(rig.r(regs::STATUS.offset));
    while_in_flight(&rig, &gate, || {
        rig.w(
            regs::CTRL.offset,
            regs::CTRL_ENABLE.mask() | regs::CTRL_QUIESCE.mask(),
        );
        assert!(!quiesced(), "a burst is still on its way");
    });
    assert!(quiesced());
    let rec = s.poll(&rig).expect("a Stopped record");
    assert_eq!(rec.status, RecordStatus::Stopped);
    assert_eq!(rec.byte_count, 64 * 1024);
}

#[test]
fn a_reset_during_a_burst_cancels_it_before_the_bus_takes_it() {
    let (rig, gate, mut s) = gated_stream();
    while_in_flight(&rig, &gate, || {
        rig.w(regs::CTRL.offset, regs::CTRL_RESET.mask());
    });
    // §3.2: from the write of RESET on, no DMA: the burst the device had planned wrote nothing,
    // and no record follows.
    assert!(s.segment(&rig, 0).iter().all(|&b| b == 0));
    assert!(s.poll(&rig).is_none());
    assert_eq!(rig.dev.counters().bytes_streamed, 0);
    assert_eq!(rig.dev.counters().segments, 0);
}
