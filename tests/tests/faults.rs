//! Faults injected by the device model: the driver fails the operation with a clear status and
//! recovers where the hardware allows — a queue that stopped on an error is brought back by a
//! device reset — under `verifier` + `iommu`, with no bug check and no leak.

#![expect(
    clippy::many_single_char_names,
    reason = "tests name the lab, process, handle, client and result l, p, h, c, r"
)]

mod common;

use std::time::{Duration, Instant};

use common::{Lab, lab_model, node_info as round_trip};
use rhca_hw::ioctl::{self, SendMadIn, SendMadOut, Strategy};
use rhca_hw::mad::{self, attr};
use rhca_hw::stream::Direction;
use rhca_model::{Fault, ModelConfig};
use rhca_tests::stream::Client;
use wdk_sim::wdf::host::{Handle, Process};
use wdk_sim::{Config, Profile};

const VI: Profile = Profile {
    verifier: true,
    iommu: true,
    ..Profile::COHERENT
};

fn mapped_lab() -> Lab {
    // 256-byte MADs do not fit inline: every send is mapped (a gather the fault can hit).
    let mut model = ModelConfig::default();
    model.caps.max_inline = 64;
    lab_model(Config::with_profile(VI), model)
}

/// MADs work again within `limit` (the recovery ran).
fn recovers(p: &Process, h: &Handle, limit: Duration) {
    let start = Instant::now();
    let mut tid = 0x9000;
    loop {
        tid += 1;
        match round_trip(p, h, tid) {
            Ok(()) => return,
            Err(e) => assert!(start.elapsed() < limit, "no recovery: {e}"),
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_dma_error_on_a_send_fails_that_send_and_the_device_recovers() {
    let l = mapped_lab();
    let p = l.host().process();
    let h = p.open(&l.node).unwrap();
    round_trip(&p, &h, 1).unwrap();
    l.dev.inject(Fault::DmaErrorNextSend);
    let e = round_trip(&p, &h, 2).unwrap_err();
    assert!(e.contains("send completed with"), "a clear failure: {e}");
    recovers(&p, &h, Duration::from_secs(5));
    assert!(l.dev.counters().faults_injected >= 1);
    p.close(h).unwrap();
    l.finish();
}

#[test]
fn a_dma_error_on_a_receive_is_survived() {
    let l = mapped_lab();
    let p = l.host().process();
    let h = p.open(&l.node).unwrap();
    round_trip(&p, &h, 1).unwrap();
    l.dev.inject(Fault::DmaErrorNextReceive);
    // The answer to this MAD is lost with its receive; the device then recovers.
    let _ = round_trip(&p, &h, 2);
    recovers(&p, &h, Duration::from_secs(5));
    p.close(h).unwrap();
    l.finish();
}

#[test]
fn a_cq_overflow_is_survived() {
    let l = mapped_lab();
    let p = l.host().process();
    let h = p.open(&l.node).unwrap();
    round_trip(&p, &h, 1).unwrap();
    l.dev.inject(Fault::CqOverflow(0));
    let _ = round_trip(&p, &h, 2);
    recovers(&p, &h, Duration::from_secs(5));
    p.close(h).unwrap();
    l.finish();
}

#[test]
fn an_interrupt_storm_and_a_slow_device_lose_nothing() {
    let l = mapped_lab();
    let p = l.host().process();
    let h = p.open(&l.node).unwrap();
    l.dev.inject(Fault::InterruptStorm(2000));
    for tid in 1..=20 {
        round_trip(&p, &h, tid).unwrap();
    }
    l.dev.inject(Fault::Slow(Duration::from_micros(200)));
    for tid in 21..=40 {
        round_trip(&p, &h, tid).unwrap();
    }
    let c = Client::start(
        &p,
        &h,
        &l.m,
        0,
        Direction::Capture,
        65536,
        8,
        Strategy::Auto,
        0,
    )
    .unwrap();
    assert_eq!(c.run(32).bad, 0);
    let _ = c.stop();
    p.close(h).unwrap();
    l.finish();
}

#[test]
fn a_queue_reset_ends_a_running_stream_with_an_error_and_streams_work_again() {
    let l = mapped_lab();
    let p = l.host().process();
    let h = p.open(&l.node).unwrap();
    let c = Client::start(
        &p,
        &h,
        &l.m,
        0,
        Direction::Capture,
        65536,
        8,
        Strategy::Auto,
        0,
    )
    .unwrap();
    assert_eq!(c.run(8).bad, 0);
    l.dev.inject(Fault::DmaErrorNextSend);
    let _ = round_trip(&p, &h, 2);
    recovers(&p, &h, Duration::from_secs(5));
    let r = c.finish();
    assert_eq!(
        r.status,
        wdk_sim::STATUS_IO_DEVICE_ERROR,
        "the reset ended the stream"
    );
    let c = Client::start(
        &p,
        &h,
        &l.m,
        0,
        Direction::Capture,
        65536,
        8,
        Strategy::Auto,
        0,
    )
    .unwrap();
    assert_eq!(c.run(16).bad, 0);
    let _ = c.stop();
    p.close(h).unwrap();
    l.finish();
}

#[test]
fn the_device_vanishing_mid_traffic_is_a_clean_surprise_removal() {
    let l = mapped_lab();
    let p = l.host().process();
    let h = p.open(&l.node).unwrap();
    round_trip(&p, &h, 1).unwrap();
    l.dev.inject(Fault::RemoveAfterWqes(3));
    for tid in 2..6 {
        let _ = round_trip(&p, &h, tid);
    }
    let mut l = l;
    let host = l.host.take().unwrap();
    host.surprise_remove(&l.node).expect("surprise removal");
    p.close(h).unwrap();
    host.unload().expect("unload");
    drop(l.worker.take());
    assert_eq!(l.m.leaks().unwrap(), Vec::<String>::new());
    assert!(l.m.bugcheck().is_none(), "{:?}", l.m.bugcheck());
}

#[test]
fn a_common_buffer_failure_at_any_point_of_start_fails_it_cleanly() {
    let mut points = 0;
    for skip in 0.. {
        let m = wdk_sim::Machine::new(Config::with_profile(VI));
        let (dev, att) = rhca_model::RhcaDevice::attach(&m, ModelConfig::default()).unwrap();
        let worker = dev.spawn_worker();
        let host = wdk_sim::wdf::host::Host::load_with(
            &m,
            rhca::driver_entry,
            wdk_sim::wdf::host::Mode::Threaded,
        )
        .unwrap();
        let node = host
            .add_device(&att, wdk_sim::wdf::host::InterruptResources::Msi(2))
            .unwrap();
        m.fail_common_buffers(skip, 1);
        let started = host.start(&node);
        let injected = m.kernel_faults_injected();
        if injected == 0 {
            // Past the last allocation of a start: it succeeded untouched.
            assert!(started.is_ok(), "{started:?}");
            host.remove(&node).unwrap();
            host.unload().unwrap();
            drop(worker);
            break;
        }
        assert_eq!(
            started,
            Err(wdk_sim::wdf::host::HostError::Status(
                wdk_sim::STATUS_INSUFFICIENT_RESOURCES
            )),
            "allocation {skip} failed: the start fails with a clear status"
        );
        points += 1;
        host.remove(&node).unwrap();
        host.unload().unwrap();
        drop(worker);
        assert_eq!(
            m.leaks().unwrap(),
            Vec::<String>::new(),
            "allocation {skip}"
        );
        assert!(m.bugcheck().is_none(), "{:?}", m.bugcheck());
    }
    assert!(
        points >= 5,
        "every ring and page list allocates: {points} points"
    );
}

#[test]
fn a_mapped_send_reuses_the_buffer_of_a_completed_one() {
    let l = mapped_lab();
    let p = l.host().process();
    let h = p.open(&l.node).unwrap();
    let mad_pool = || {
        let tag = wdk_sim::tag_name(rhca::dma::TAG_MAD);
        l.m.pool_usage()
            .into_iter()
            .find(|(t, _)| *t == tag)
            .map(|(_, u)| (u.allocations, u.frees))
    };
    round_trip(&p, &h, 1).unwrap();
    let before = mad_pool();
    for tid in 2..50 {
        round_trip(&p, &h, tid).unwrap();
    }
    // Every send was mapped and put again, and none took pool for its buffer.
    assert_eq!(mad_pool(), before);
    p.close(h).unwrap();
    l.finish();
}

#[test]
fn mad_buffer_pool_failures_fail_or_delay_a_mad_and_lose_nothing() {
    let l = mapped_lab();
    let p = l.host().process();
    let h = p.open(&l.node).unwrap();
    // Before the first send: a send reuses the buffer of a completed one, so only a send that
    // finds none allocates.
    l.m.fail_pool(rhca::dma::TAG_MAD, 4);
    for tid in 1..10 {
        // A send whose buffer cannot be allocated fails with a clear status.
        let _ = round_trip(&p, &h, tid);
    }
    assert_eq!(l.m.kernel_faults_injected(), 4);
    recovers(&p, &h, Duration::from_secs(5));
    p.close(h).unwrap();
    l.finish();
}

#[test]
fn a_stalled_send_queue_is_reset_by_the_watchdog_and_its_sends_time_out() {
    let l = mapped_lab();
    let p = l.host().process();
    let h = p.open(&l.node).unwrap();
    round_trip(&p, &h, 1).unwrap();
    // The device's send queue hangs: no error, no interrupt, no completion.
    l.dev.inject(Fault::StuckQueue(0));
    let q = SendMadIn {
        qp: 0,
        dlid: mad::PERMISSIVE_LID,
        mad: mad::directed_route_get(attr::NODE_INFO, 0, &[0], 2).unwrap(),
        ..SendMadIn::default()
    };
    let mut b = [0u8; SendMadIn::SIZE];
    q.encode(&mut b).unwrap();
    let t0 = Instant::now();
    let send = p
        .ioctl_async(&h, ioctl::IOCTL_RHCA_SEND_MAD, &b, SendMadOut::SIZE)
        .unwrap();
    let r = send
        .wait(Duration::from_secs(20))
        .expect("the watchdog ends a send the device never completes");
    let waited = t0.elapsed();
    assert_eq!(r.status, wdk_sim::STATUS_IO_TIMEOUT, "a clear status");
    // STALL_TICKS × WATCHDOG_PERIOD_MS = 2 s without progress, then the reset.
    assert!(
        waited >= Duration::from_secs(2),
        "not before the limit: {waited:?}"
    );
    // The reset cleared the hang: MADs work again.
    recovers(&p, &h, Duration::from_secs(5));
    let s = p
        .ioctl(
            &h,
            ioctl::IOCTL_RHCA_STATISTICS,
            &[],
            ioctl::StatisticsOut::SIZE,
        )
        .unwrap();
    let s = ioctl::StatisticsOut::decode(&s.output).unwrap();
    assert_eq!(s.queue_stalls, 1, "{s:?}");
    assert!(s.queue_resets >= 1, "{s:?}");
    assert!(l.dev.counters().faults_injected >= 1);
    p.close(h).unwrap();
    l.finish();
}
