//! Device Fundamentals scenarios on the simulated machine, and IOCTL fuzzing.
//!
//! Each scenario runs I/O before, during and after each `PnP` or power transition
//! (`windows-dma.md` §8); shared by `rhca-lab scenario` (default size) and
//! `tests/tests/scenarios.rs` (CI size).
//!
//! Every scenario runs under `verifier` + `iommu` unless named otherwise, repeats its cycle `n`
//! times, and reports what matters: bug checks, leaks (DMA adapters, common buffers, mappings,
//! pool, MDLs, framework objects), MADs lost (sent but never completed: an answer or a clear
//! status), and stream bytes corrupted (a segment delivered with a wrong pattern). MADs that fail
//! with a clear status during a transition, and streams that end with an error, are expected.

#![expect(
    clippy::many_single_char_names,
    reason = "process, handle, outcome, count and client are p, h, o, k and c throughout"
)]
#![expect(
    clippy::cast_possible_truncation,
    reason = "the fuzzer truncates random words to codes, lengths and bytes on purpose"
)]

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use rhca_hw::ioctl::{
    self, RecvMadOut, SendMadIn, SendMadOut, Strategy, StreamWaitIn, StreamWaitOut,
};
use rhca_hw::mad::{self, MadHeader, attr};
use rhca_hw::stream::Direction;
use rhca_model::{ModelConfig, RhcaDevice, Worker};
use wdk_sim::wdf::host::{DevNode, Handle, Host, InterruptResources, Mode, Pending, Process};
use wdk_sim::{Attached, Config, Machine, Profile, STATUS_SUCCESS};

use crate::stream::Client;

/// What a scenario saw.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The scenario.
    pub name: String,
    /// Cycles run.
    pub cycles: u64,
    /// Bug checks (at most one per machine: the machine stops).
    pub bugchecks: Vec<String>,
    /// Leaks reported at the end.
    pub leaks: Vec<String>,
    /// MADs sent whose requests never completed.
    pub mads_lost: u64,
    /// MADs sent.
    pub mads_sent: u64,
    /// MADs that failed with a clear status (during transitions).
    pub mads_failed: u64,
    /// Stream bytes delivered with a wrong pattern.
    pub stream_bytes_corrupted: u64,
    /// Stream segments verified.
    pub segments_verified: u64,
    /// IOCTLs sent by the fuzzer.
    pub ioctls_fuzzed: u64,
    /// Device faults that took effect.
    pub faults_injected: u64,
    /// Anything else that went wrong.
    pub errors: Vec<String>,
}

impl Outcome {
    /// Whether the scenario passed: no bug check, leak, lost MAD, corrupted byte or error.
    #[must_use]
    pub const fn ok(&self) -> bool {
        self.bugchecks.is_empty()
            && self.leaks.is_empty()
            && self.mads_lost == 0
            && self.stream_bytes_corrupted == 0
            && self.errors.is_empty()
    }
}

/// The scenarios, by name.
pub const SCENARIOS: [&str; 18] = [
    "disable-enable",
    "query-remove-cancel",
    "remove",
    "surprise-remove",
    "query-stop-cancel",
    "stop-start",
    "rebalance-new-resources",
    "rebalance-fail-restart",
    "dif-remove",
    "sleep",
    "sleep-disable-enable",
    "io-process-termination",
    "root-port-surprise-remove",
    "reboot",
    "reinstall",
    "faults",
    "ops",
    "fuzz",
];

/// One machine with the driver and a started device.
struct Rig {
    m: Machine,
    dev: Arc<RhcaDevice>,
    host: Option<Host>,
    node: Option<DevNode>,
    att: Attached,
    worker: Option<Worker>,
}

impl Rig {
    fn new(profile: Profile, seed: u64) -> Result<Self, String> {
        Self::with_model(profile, seed, None)
    }

    fn with_model(profile: Profile, seed: u64, model: Option<ModelConfig>) -> Result<Self, String> {
        let m = Machine::new(Config {
            seed,
            ..Config::with_profile(profile)
        });
        let model = model.unwrap_or_else(|| {
            if profile.bounce {
                ModelConfig::dma_32bit()
            } else {
                ModelConfig::default()
            }
        });
        let (dev, att) = RhcaDevice::attach(&m, model).map_err(|e| e.to_string())?;
        let worker = dev.spawn_worker();
        let mut r = Self {
            m,
            dev,
            host: None,
            node: None,
            att,
            worker: Some(worker),
        };
        r.load()?;
        Ok(r)
    }

    fn load(&mut self) -> Result<(), String> {
        let host = Host::load_with(&self.m, rhca::driver_entry, Mode::Threaded)
            .map_err(|e| e.to_string())?;
        let node = host
            .add_device(&self.att, InterruptResources::Msi(2))
            .map_err(|e| e.to_string())?;
        host.start(&node).map_err(|e| e.to_string())?;
        self.host = Some(host);
        self.node = Some(node);
        Ok(())
    }

    fn host(&self) -> Result<&Host, String> {
        self.host.as_ref().ok_or_else(|| "no driver loaded".into())
    }

    fn node(&self) -> Result<DevNode, String> {
        self.node.ok_or_else(|| "no device".into())
    }

    fn unload(&mut self) -> Result<(), String> {
        if let (Some(host), Some(node)) = (self.host.take(), self.node.take()) {
            host.remove(&node).map_err(|e| e.to_string())?;
            host.unload().map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Unloads, stops the device model and collects bug checks and leaks into `o`.
    fn finish(mut self, o: &mut Outcome) {
        if let Err(e) = self.unload() {
            o.errors.push(e);
        }
        drop(self.worker.take());
        if let Some(b) = self.m.bugcheck() {
            o.bugchecks.push(b.to_string());
        }
        match self.m.leaks() {
            Ok(l) => o.leaks.extend(l),
            Err(b) => o.bugchecks.push(b.to_string()),
        }
        // Every event the driver wrote decodes as TraceLogging, and its interrupt path (DPCs,
        // timers, ISRs) allocated nothing, whatever the scenario did to it.
        o.errors.extend(
            self.m
                .trace_errors()
                .into_iter()
                .map(|e| format!("an ETW event that does not decode: {e}")),
        );
        let dpc = self.m.dpc_allocations();
        if dpc != 0 {
            o.errors.push(format!(
                "{dpc} allocations in the driver's DPC, timer and ISR callbacks"
            ));
        }
        let stray = self.m.stray_dma(self.att.slot);
        if !stray.is_empty() {
            o.errors.push(format!(
                "{} device accesses outside live mappings",
                stray.len()
            ));
        }
    }
}

/// MADs in flight across a transition: each SEND and its RECV, waited for afterwards.
struct InFlight {
    sends: Vec<Pending>,
    recvs: Vec<Pending>,
}

fn node_info(tid: u64) -> SendMadIn {
    SendMadIn {
        qp: 0,
        dlid: mad::PERMISSIVE_LID,
        mad: mad::directed_route_get(attr::NODE_INFO, 0, &[0], tid).unwrap_or([0; mad::MAD_SIZE]),
        ..SendMadIn::default()
    }
}

fn send_async(p: &Process, h: &Handle, tid: u64) -> Result<(Pending, Pending), String> {
    let mut b = [0u8; SendMadIn::SIZE];
    node_info(tid).encode(&mut b).map_err(|e| e.to_string())?;
    let recv = p
        .ioctl_async(h, ioctl::IOCTL_RHCA_RECV_MAD, &[], RecvMadOut::SIZE)
        .map_err(|e| e.to_string())?;
    let send = p
        .ioctl_async(h, ioctl::IOCTL_RHCA_SEND_MAD, &b, SendMadOut::SIZE)
        .map_err(|e| e.to_string())?;
    Ok((send, recv))
}

impl InFlight {
    fn start(p: &Process, h: &Handle, k: u64, o: &mut Outcome) -> Result<Self, String> {
        let mut f = Self {
            sends: Vec::new(),
            recvs: Vec::new(),
        };
        for i in 0..k {
            let (s, r) = send_async(p, h, 0x5000 + i)?;
            o.mads_sent += 1;
            f.sends.push(s);
            f.recvs.push(r);
        }
        Ok(f)
    }

    /// Every request must complete: with its answer, or with a clear status.
    fn settle(self, o: &mut Outcome) {
        for s in self.sends {
            match s.wait(Duration::from_secs(10)) {
                Some(r) if r.status == STATUS_SUCCESS => {}
                Some(_) => o.mads_failed += 1,
                None => o.mads_lost += 1,
            }
        }
        for r in self.recvs {
            if r.wait(Duration::from_millis(200)).is_none() {
                // A receive left pending is cancelled below (handle close); waiting for an
                // answer that a failed send never produced is not a loss.
                let _ = r.cancel();
            }
        }
    }
}

/// Adds a stream run to the outcome: its verified segments, its corrupted bytes, and its stall
/// (a WAIT that never completed: a stuck stream is an error, never a hang of the suite).
fn account(o: &mut Outcome, out: &crate::stream::Outcome, when: &str) {
    o.segments_verified += out.verified;
    o.stream_bytes_corrupted += out.bad * 64 * 1024;
    if let Some(e) = &out.stalled {
        o.errors.push(format!("stream {when}: {e}"));
    }
}

/// I/O on a healthy device: `k` MAD round trips and a capture stream of `segs` segments; every
/// MAD answered, every segment verified.
fn io(rig: &Rig, k: u64, segs: u64, o: &mut Outcome) -> Result<(), String> {
    let host = rig.host()?;
    let p = host.process();
    let h = p.open(&rig.node()?).map_err(|e| e.to_string())?;
    for i in 0..k {
        let tid = 0x6000 + i;
        let (s, r) = send_async(&p, &h, tid)?;
        o.mads_sent += 1;
        let sent = s.wait(Duration::from_secs(10));
        // Received MADs go to whichever RECV comes next (the receive backlog is the device's):
        // a late answer to a MAD of an earlier transition may come first. Skip those.
        let mut got = r.wait(Duration::from_secs(10));
        let tid_of = |r: &wdk_sim::wdf::host::IoResult| {
            RecvMadOut::decode(&r.output)
                .ok()
                .and_then(|m| MadHeader::decode(&m.mad).ok())
                .map(|h| h.tid)
        };
        for _ in 0..8 {
            match &got {
                Some(r) if r.status == STATUS_SUCCESS && tid_of(r) != Some(tid) => {
                    got = p
                        .ioctl_async(&h, ioctl::IOCTL_RHCA_RECV_MAD, &[], RecvMadOut::SIZE)
                        .map_err(|e| e.to_string())?
                        .wait(Duration::from_secs(10));
                }
                _ => break,
            }
        }
        let answered = got
            .as_ref()
            .is_some_and(|r| r.status == STATUS_SUCCESS && tid_of(r) == Some(tid));
        if sent.as_ref().is_none_or(|r| r.status != STATUS_SUCCESS) || !answered {
            o.mads_lost += 1;
            o.errors.push(format!(
                "MAD {tid:#x} on a healthy device: send {:?}, receive {:?}",
                sent.map(|r| r.status),
                got.as_ref().map(|r| (r.status, tid_of(r)))
            ));
        }
    }
    if segs > 0 {
        let c = Client::start(
            &p,
            &h,
            &rig.m,
            0,
            Direction::Capture,
            64 * 1024,
            16,
            Strategy::Auto,
            0,
        )
        .map_err(|st| format!("START refused on a healthy device: {st:#x}"))?;
        let out = c.run(segs);
        account(o, &out, "on a healthy device");
        let (st, r) = c.try_stop()?;
        if st != STATUS_SUCCESS || r.status != STATUS_SUCCESS {
            o.errors.push(format!(
                "stream STOP {st:#x}, START completed {:#x}",
                r.status
            ));
        }
    }
    p.close(h).map_err(|e| e.to_string())?;
    // The process exits: its memory (request buffers, the stream buffer) goes back.
    p.kill().map_err(|e| e.to_string())
}

/// A capture stream on engine 1 (16 segments of 64 KiB) that has delivered 8 verified segments.
fn running_stream<'a>(
    p: &'a Process,
    h: &'a Handle,
    m: &'a Machine,
    o: &mut Outcome,
    when: &str,
) -> Result<Client<'a>, String> {
    let c = Client::start(
        p,
        h,
        m,
        1,
        Direction::Capture,
        64 * 1024,
        16,
        Strategy::Auto,
        0,
    )
    .map_err(|st| format!("START refused: {st:#x}"))?;
    let out = c.run(8);
    account(o, &out, when);
    Ok(c)
}

/// I/O left in flight across `transition`: MADs outstanding and a stream running. After it,
/// every MAD has completed (answer or status) and the stream has ended; the segments delivered
/// before the end verify.
fn across(
    rig: &mut Rig,
    o: &mut Outcome,
    transition: impl FnOnce(&mut Rig) -> Result<(), String>,
) -> Result<(), String> {
    let host = rig.host()?;
    let p = host.process();
    let h = p.open(&rig.node()?).map_err(|e| e.to_string())?;
    let m = rig.m.clone();
    let c = running_stream(&p, &h, &m, o, "before a transition")?;
    let flight = InFlight::start(&p, &h, 4, o)?;
    let start = c.start;
    transition(rig)?;
    flight.settle(o);
    if start.wait(Duration::from_secs(10)).is_none() {
        o.errors.push("the stream's START never completed".into());
    }
    let _ = p.close(h);
    p.kill().map_err(|e| e.to_string())
}

/// I/O running through a transition that must not disturb it (a query that the `PnP` manager
/// then cancels): the MADs in flight are answered, and the stream goes on delivering verified
/// segments after it and stops cleanly.
fn through(
    rig: &mut Rig,
    o: &mut Outcome,
    transition: impl FnOnce(&mut Rig) -> Result<(), String>,
) -> Result<(), String> {
    let host = rig.host()?;
    let p = host.process();
    let h = p.open(&rig.node()?).map_err(|e| e.to_string())?;
    // The client keeps its own reference to the machine: the transition needs the rig.
    let m = rig.m.clone();
    let c = running_stream(&p, &h, &m, o, "before a query")?;
    let flight = InFlight::start(&p, &h, 4, o)?;
    transition(rig)?;
    let failed = o.mads_failed;
    flight.settle(o);
    if o.mads_failed != failed {
        o.errors.push(format!(
            "{} MADs failed across a cancelled query, which must leave I/O alone",
            o.mads_failed - failed
        ));
    }
    let out = c.run(8);
    account(o, &out, "after a cancelled query");
    if out.ended_early || out.verified < 8 {
        o.errors.push(format!(
            "the stream did not survive a cancelled query: {} segments after it, ended: {}",
            out.verified, out.ended_early
        ));
    }
    let (st, r) = c.try_stop()?;
    if st != STATUS_SUCCESS || r.status != STATUS_SUCCESS {
        o.errors.push(format!(
            "stream STOP after a cancelled query {st:#x}, START completed {:#x}",
            r.status
        ));
    }
    let _ = p.close(h);
    p.kill().map_err(|e| e.to_string())
}

/// The interrupt resources of rebalance `cycle`: fewer messages, a line, more messages than the
/// driver uses, and back to the usual two.
const fn rebalanced_interrupts(cycle: u64) -> InterruptResources {
    match cycle % 4 {
        0 => InterruptResources::Msi(1),
        1 => InterruptResources::Line,
        2 => InterruptResources::Msi(4),
        _ => InterruptResources::Msi(2),
    }
}

/// A query (remove or stop) the driver must not veto, then cancelled by the `PnP` manager.
fn cancelled_query(rig: &Rig, remove: bool) -> Result<(), String> {
    let node = rig.node()?;
    let host = rig.host()?;
    let st = if remove {
        host.query_remove(&node)
    } else {
        host.query_stop(&node)
    }
    .map_err(|e| e.to_string())?;
    if st == STATUS_SUCCESS {
        Ok(())
    } else {
        Err(format!(
            "the driver vetoed a query-{} ({st:#x}) with nothing to justify it",
            if remove { "remove" } else { "stop" }
        ))
    }
}

/// The device node is gone (removed, or surprise-removed after a failed restart): the `PnP`
/// manager enumerates the device again, and it starts with its usual resources.
fn re_enumerate(rig: &mut Rig) -> Result<(), String> {
    let host = rig.host()?;
    let node = host
        .add_device(&rig.att, InterruptResources::Msi(2))
        .map_err(|e| e.to_string())?;
    host.start(&node).map_err(|e| e.to_string())?;
    rig.node = Some(node);
    Ok(())
}

/// Runs scenario `name` for `n` cycles under `profile`, with machine seed `seed`.
#[must_use]
pub fn run(name: &str, n: u64, profile: Profile, seed: u64) -> Outcome {
    let mut o = Outcome {
        name: name.into(),
        ..Outcome::default()
    };
    let r = match name {
        "fuzz" => fuzz(n, profile, seed, &mut o),
        "faults" => faults(n, profile, seed, &mut o),
        "ops" => ops(n, profile, seed, &mut o),
        "surprise-remove" | "reboot" => fresh_machine_cycles(name, n, profile, seed, &mut o),
        "root-port-surprise-remove" => root_port_cycles(n, profile, seed, &mut o),
        _ => same_machine_cycles(name, n, profile, seed, &mut o),
    };
    if let Err(e) = r {
        o.errors.push(e);
    }
    o
}

fn same_machine_cycles(
    name: &str,
    n: u64,
    profile: Profile,
    seed: u64,
    o: &mut Outcome,
) -> Result<(), String> {
    let mut rig = Rig::new(profile, seed)?;
    let result = (|| {
        for cycle in 0..n {
            let errors = o.errors.len();
            let r = (|| {
                io(&rig, 2, 8, o)?;
                match name {
                    "query-remove-cancel" => {
                        through(&mut rig, o, |rig| cancelled_query(rig, true))?;
                    }
                    "query-stop-cancel" => through(&mut rig, o, |rig| cancelled_query(rig, false))?,
                    // HLK's "Sleep and PNP (disable and enable) with IO Before and After": a
                    // sleep, I/O checked, then a disable and enable; the I/O after is below.
                    "sleep-disable-enable" => {
                        transition(&mut rig, "sleep", cycle)?;
                        io(&rig, 2, 8, o)?;
                        transition(&mut rig, "disable-enable", cycle)?;
                    }
                    "io-process-termination" => killed_mid_io(&rig, o)?,
                    _ => across(&mut rig, o, |rig| transition(rig, name, cycle))?,
                }
                io(&rig, 2, 8, o)
            })();
            // Say which cycle went wrong (a rebalance's resources depend on it).
            for e in &mut o.errors[errors..] {
                *e = format!("cycle {cycle}: {e}");
            }
            r.map_err(|e| format!("cycle {cycle}: {e}"))?;
            o.cycles += 1;
        }
        Ok(())
    })();
    rig.finish(o);
    result
}

/// One `PnP` or power transition of a same-machine scenario, with I/O in flight around it.
fn transition(rig: &mut Rig, name: &str, cycle: u64) -> Result<(), String> {
    let node = rig.node()?;
    let host = rig.host()?;
    match name {
        // Disable/enable and stop/start (rebalance with the same resources) are the same
        // sequence on the simulated PnP manager: D0 exit, release, prepare, D0 entry.
        "disable-enable" | "stop-start" => {
            host.stop(&node).map_err(|e| e.to_string())?;
            host.start(&node).map_err(|e| e.to_string())
        }
        "rebalance-new-resources" => {
            let node = host
                .rebalance(&node, rebalanced_interrupts(cycle))
                .map_err(|e| e.to_string())?;
            rig.node = Some(node);
            Ok(())
        }
        // The start after the stop fails: on even cycles a filter above the driver fails it on
        // its way back up (the driver had started: it stops a live device), on odd cycles on its
        // way down (the driver never sees it). Either way the PnP manager surprise-removes the
        // device, removes it, and enumerates it again.
        "rebalance-fail-restart" => {
            host.stop(&node).map_err(|e| e.to_string())?;
            if cycle.is_multiple_of(2) {
                host.start(&node).map_err(|e| e.to_string())?;
            }
            host.pnp_surprise_removal(&node)
                .map_err(|e| e.to_string())?;
            rig.node = None;
            re_enumerate(rig)
        }
        "sleep" => {
            host.power_down(&node).map_err(|e| e.to_string())?;
            host.power_up(&node).map_err(|e| e.to_string())
        }
        "remove" => {
            host.remove(&node).map_err(|e| e.to_string())?;
            rig.node = None;
            re_enumerate(rig)
        }
        "reinstall" => {
            rig.unload()?;
            rig.load()
        }
        // SetupDi's DIF_REMOVE: the class installer removes the device — query-remove (which the
        // driver must not veto), removal, the device node deleted; the driver unloads with its
        // last device. Then the test rescans the parent: DriverEntry, AddDevice, start.
        "dif-remove" => {
            cancelled_query(rig, true)?;
            rig.unload()?;
            rig.load()
        }
        _ => Err(format!("unknown scenario {name}")),
    }
}

fn fresh_machine_cycles(
    name: &str,
    n: u64,
    profile: Profile,
    seed: u64,
    o: &mut Outcome,
) -> Result<(), String> {
    for i in 0..n {
        let mut rig = Rig::new(profile, seed.wrapping_add(i))?;
        let r = (|| {
            io(&rig, 2, 8, o)?;
            across(&mut rig, o, |rig| match name {
                "surprise-remove" => {
                    let node = rig.node.take().ok_or("no device")?;
                    let host = rig.host.take().ok_or("no driver")?;
                    host.surprise_remove(&node).map_err(|e| e.to_string())?;
                    host.unload().map_err(|e| e.to_string())
                }
                // A reboot: the device stops and is removed, the driver unloads; the next cycle
                // is a fresh machine.
                _ => rig.unload(),
            })
        })();
        rig.finish(o);
        r?;
        o.cycles += 1;
    }
    Ok(())
}

/// HLK's "`SimpleIO` stress test with IO process termination": one process has a stream running
/// and MADs, receives and a stream WAIT in flight, and is killed without closing its handle;
/// another process's I/O on the same device goes on. The rundown must end (every request of
/// the killed process completed or cancelled: the simulator stops the machine if one is left
/// pending), the killed process's buffers are released with no DMA into them afterwards
/// ([`Rig::finish`] checks), and the survivor's MADs are answered before and after the kill.
fn killed_mid_io(rig: &Rig, o: &mut Outcome) -> Result<(), String> {
    let host = rig.host()?;
    let node = rig.node()?;
    let survivor = host.process();
    let sh = survivor.open(&node).map_err(|e| e.to_string())?;
    let before = InFlight::start(&survivor, &sh, 2, o)?;
    let victim = host.process();
    let vh = victim.open(&node).map_err(|e| e.to_string())?;
    let m = rig.m.clone();
    let c = running_stream(&victim, &vh, &m, o, "before the process is killed")?;
    let flight = InFlight::start(&victim, &vh, 4, o)?;
    // A WAIT for more segments than the stream will deliver before the kill (engine 1, the
    // running stream's).
    let mut b = [0u8; StreamWaitIn::SIZE];
    StreamWaitIn {
        engine: 1,
        max_segments: 16,
        ..StreamWaitIn::default()
    }
    .encode(&mut b)
    .map_err(|e| e.to_string())?;
    let wait = victim
        .ioctl_async(&vh, ioctl::IOCTL_RHCA_STREAM_WAIT, &b, StreamWaitOut::SIZE)
        .map_err(|e| e.to_string())?;
    victim
        .kill()
        .map_err(|e| format!("the killed process's rundown: {e}"))?;
    // Every request of the killed process has completed: the rundown waited for them.
    let start = c.start;
    if start.wait(Duration::from_secs(1)).is_none() {
        o.errors
            .push("the killed process's START was still pending after its rundown".into());
    }
    if wait.wait(Duration::from_secs(1)).is_none() {
        o.errors
            .push("the killed process's WAIT was still pending after its rundown".into());
    }
    let lost = o.mads_lost;
    flight.settle(o);
    if o.mads_lost != lost {
        o.errors.push(format!(
            "{} of the killed process's MADs never completed",
            o.mads_lost - lost
        ));
    }
    // The other process's I/O was not disturbed.
    let failed = o.mads_failed;
    before.settle(o);
    let after = InFlight::start(&survivor, &sh, 2, o)?;
    after.settle(o);
    if o.mads_failed != failed {
        o.errors.push(format!(
            "{} MADs of another process failed when one process was killed",
            o.mads_failed - failed
        ));
    }
    survivor.close(sh).map_err(|e| e.to_string())?;
    survivor.kill().map_err(|e| e.to_string())
}

/// HLK's "PCI Root Port Surprise Remove Test", one fresh machine per cycle: the root port
/// above the device goes away, so the link drops first — the device reads all-ones, performs
/// no DMA and raises no interrupt — while the driver still has a stream running and MADs in
/// flight, and more requests arrive during [`LINK_DOWN_WINDOW`] before the `PnP` manager hears of
/// it; then `IRP_MN_SURPRISE_REMOVAL`, D0 exit, release and removal. Every request must
/// complete (with a clear status), no call may wait on the dead link, no DMA resource may
/// outlive the release, and the driver unloads clean.
fn root_port_cycles(n: u64, profile: Profile, seed: u64, o: &mut Outcome) -> Result<(), String> {
    for i in 0..n {
        let mut rig = Rig::new(profile, seed.wrapping_add(i))?;
        let r = root_port_removal(&mut rig, o);
        rig.finish(o);
        r?;
        o.cycles += 1;
    }
    Ok(())
}

/// How long the link is down before the `PnP` manager reports the removal: longer than a
/// watchdog period, shorter than the stall limit (which a longer outage would reach: a queue
/// reset on a device that is gone, covered by the fault tests).
const LINK_DOWN_WINDOW: Duration = Duration::from_millis(300);

fn root_port_removal(rig: &mut Rig, o: &mut Outcome) -> Result<(), String> {
    io(rig, 2, 8, o)?;
    let host = rig.host.take().ok_or("no driver")?;
    let node = rig.node.take().ok_or("no device")?;
    let p = host.process();
    let h = p.open(&node).map_err(|e| e.to_string())?;
    let m = rig.m.clone();
    let c = running_stream(&p, &h, &m, o, "before the link went down")?;
    let flight = InFlight::start(&p, &h, 4, o)?;
    // The link drops: the device is gone from the bus, the driver not yet told.
    rig.m.surprise_remove(node.slot);
    let dead = InFlight::start(&p, &h, 4, o)?;
    let query = p
        .ioctl(
            &h,
            ioctl::IOCTL_RHCA_STATISTICS,
            &[],
            ioctl::StatisticsOut::SIZE,
        )
        .map_err(|e| e.to_string())?;
    if query.status != STATUS_SUCCESS {
        o.errors.push(format!(
            "STATISTICS on a dead link: {:#x} (the driver's own state needs no device)",
            query.status
        ));
    }
    std::thread::sleep(LINK_DOWN_WINDOW);
    // The bus driver reports the removal: surprise removal, D0 exit, release, remove.
    host.pnp_surprise_removal(&node)
        .map_err(|e| format!("surprise removal after the link went down: {e}"))?;
    let lost = o.mads_lost;
    flight.settle(o);
    dead.settle(o);
    if o.mads_lost != lost {
        o.errors.push(format!(
            "{} MADs never completed after the root port went away",
            o.mads_lost - lost
        ));
    }
    if c.start.wait(Duration::from_secs(10)).is_none() {
        o.errors
            .push("the stream's START never completed after the root port went away".into());
    }
    if p.open(&node).is_ok() {
        o.errors
            .push("a removed device could still be opened".into());
    }
    let _ = p.close(h);
    p.kill().map_err(|e| e.to_string())?;
    host.unload().map_err(|e| e.to_string())
}

/// Device faults, one per cycle in turn (a DMA error on a mapped send, a CQ overflow, a stream
/// engine DMA error, an interrupt storm, a send queue that hangs), each with I/O: the driver
/// fails what the fault hit with a clear status, recovers (a device reset for a failed or
/// stalled queue), and I/O then works — MADs answered, a stream verified.
fn faults(n: u64, profile: Profile, seed: u64, o: &mut Outcome) -> Result<(), String> {
    use rhca_model::Fault;
    let mut model = ModelConfig::default();
    // MADs do not fit inline: sends are mapped, so a DMA fault can hit their gather.
    model.caps.max_inline = 64;
    let rig = Rig::with_model(profile, seed, Some(model))?;
    let result = (|| {
        for i in 0..n {
            let fault = match i % 5 {
                0 => Fault::DmaErrorNextSend,
                1 => Fault::CqOverflow(0),
                2 => Fault::StreamDmaError(0),
                3 => Fault::InterruptStorm(500),
                // The send queue hangs: the watchdog resets the device after 2 s.
                _ => Fault::StuckQueue(0),
            };
            let host = rig.host()?;
            let p = host.process();
            let h = p.open(&rig.node()?).map_err(|e| e.to_string())?;
            let c = Client::start(
                &p,
                &h,
                &rig.m,
                0,
                Direction::Capture,
                64 * 1024,
                16,
                Strategy::Auto,
                0,
            )
            .map_err(|st| format!("START refused: {st:#x}"))?;
            let before = c.run(4);
            account(o, &before, "before a fault");
            rig.dev.inject(fault);
            // I/O meets the fault: MADs may fail with a clear status, the stream may end with
            // an error; what is delivered must still verify.
            let flight = InFlight::start(&p, &h, 4, o)?;
            flight.settle(o);
            // The stream meets the fault (a stream fault takes effect at the engine's next
            // segment: run until the stream ends, or long enough for it to).
            for _ in 0..64 {
                let during = c.run(16);
                // A segment the fault hit comes back with a failure status, not as data: it
                // counts as neither verified nor corrupted.
                o.segments_verified += during.verified;
                if let Some(e) = &during.stalled {
                    o.errors.push(format!("stream meeting a fault: {e}"));
                }
                if during.stalled.is_some()
                    || during.ended_early
                    || !matches!(fault, Fault::StreamDmaError(_))
                {
                    break;
                }
            }
            // A segment that failed is reported as failed (status), not delivered as data.
            let start = c.start;
            let _ = p.ioctl(
                &h,
                ioctl::IOCTL_RHCA_STREAM_STOP,
                &{
                    let mut b = [0u8; ioctl::StreamStopIn::SIZE];
                    let _ = ioctl::StreamStopIn::default().encode(&mut b);
                    b
                },
                0,
            );
            if start.wait(Duration::from_secs(10)).is_none() {
                o.errors.push("the stream's START never completed".into());
            }
            p.close(h).map_err(|e| e.to_string())?;
            p.kill().map_err(|e| e.to_string())?;
            // After recovery (asynchronous, in the driver's work item), I/O works again.
            await_recovery(&rig)?;
            io(&rig, 2, 8, o)?;
            o.cycles += 1;
        }
        Ok(())
    })();
    o.faults_injected += rig.dev.counters().faults_injected;
    rig.finish(o);
    result
}

/// Seeded operation sequences over the driver: `n` operations drawn from opening and closing
/// handles, killing processes, MADs, receives, cancellations, stream starts (any engine,
/// direction, segment size and strategy — valid or not), WAIT/RELEASE/STOP on any engine, power
/// cycles and stop/start. Every request must complete (or be cancelled and complete), nothing
/// may bug check, and the final removal must leave nothing behind.
fn ops(n: u64, profile: Profile, seed: u64, o: &mut Outcome) -> Result<(), String> {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    ops_with(n, profile, seed, &mut rng, o)
}

/// Runs the operation-sequence fuzzer on `data`.
///
/// This is the body of the `cargo fuzz` target `ops` of `tests/fuzz`, and the replay of its
/// saved inputs: each byte chooses the next operation or one of its arguments, and the sequence ends with the input (at most 512 operations). The machine is a
/// fresh one under `verifier` + `iommu`; the outcome must be [`Outcome::ok`].
#[must_use]
pub fn ops_from_bytes(data: &[u8]) -> Outcome {
    let mut o = Outcome {
        name: "ops".into(),
        ..Outcome::default()
    };
    let profile = Profile {
        verifier: true,
        iommu: true,
        ..Profile::COHERENT
    };
    let mut bytes = Bytes { data, at: 0 };
    if let Err(e) = ops_with(512, profile, 1, &mut bytes, &mut o) {
        o.errors.push(e);
    }
    o
}

/// Where an operation sequence's choices come from: a seeded generator, or a fuzzer's bytes.
trait Choices {
    /// A choice in `0..n` (0 when `n` is 0).
    fn below(&mut self, n: u64) -> u64;
    /// Whether the choices have run out (the sequence ends).
    fn exhausted(&self) -> bool;
}

impl Choices for Rng {
    fn below(&mut self, n: u64) -> u64 {
        Self::below(self, n)
    }
    fn exhausted(&self) -> bool {
        false
    }
}

/// A fuzzer's input read one byte per choice; past its end every choice is 0.
struct Bytes<'a> {
    data: &'a [u8],
    at: usize,
}

impl Choices for Bytes<'_> {
    fn below(&mut self, n: u64) -> u64 {
        let b = self.data.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        u64::from(b) % n.max(1)
    }
    fn exhausted(&self) -> bool {
        self.at >= self.data.len()
    }
}

#[expect(clippy::too_many_lines, reason = "one match arm per operation")]
fn ops_with(
    n: u64,
    profile: Profile,
    seed: u64,
    rng: &mut impl Choices,
    o: &mut Outcome,
) -> Result<(), String> {
    let rig = Rig::new(profile, seed)?;
    let result = (|| {
        let host = rig.host()?;
        let mut node = rig.node()?;
        let mut procs: Vec<(Process, Vec<Handle>)> = Vec::new();
        let mut pending: Vec<(Pending, u32)> = Vec::new();
        let input = |v: &dyn Fn(&mut [u8]) -> rhca_hw::Result<usize>, size: usize| {
            let mut b = vec![0u8; size];
            let _ = v(&mut b);
            b
        };
        for step in 0..n {
            if rng.exhausted() {
                break;
            }
            o.cycles += 1;
            let op = rng.below(14);
            if procs.is_empty() || op == 0 {
                let p = host.process();
                let h = p
                    .open(&node)
                    .map_err(|e| format!("step {step}: open: {e}"))?;
                procs.push((p, vec![h]));
                continue;
            }
            let pi = rng.below(procs.len() as u64) as usize;
            let (p, hs) = &mut procs[pi];
            if hs.is_empty() {
                let h = p
                    .open(&node)
                    .map_err(|e| format!("step {step}: open: {e}"))?;
                hs.push(h);
            }
            let h = hs[rng.below(hs.len() as u64) as usize];
            let engine = rng.below(3) as u32;
            match op {
                1 => {
                    let hi = rng.below(hs.len() as u64) as usize;
                    let h = hs.swap_remove(hi);
                    p.close(h).map_err(|e| format!("step {step}: close: {e}"))?;
                }
                2 => {
                    let (p, _) = procs.swap_remove(pi);
                    p.kill().map_err(|e| format!("step {step}: kill: {e}"))?;
                    // Its requests completed during rundown; drop their handles.
                    pending.retain(|(q, _)| q.wait(Duration::ZERO).is_none());
                }
                3 | 4 => {
                    let (s, r) = send_async(p, &h, 0x7000 + step)?;
                    o.mads_sent += 1;
                    pending.push((s, ioctl::IOCTL_RHCA_SEND_MAD));
                    pending.push((r, ioctl::IOCTL_RHCA_RECV_MAD));
                }
                5 => {
                    let seg = 4096u32 << rng.below(6);
                    let segs = 2 + rng.below(15) as u32;
                    let capture = rng.below(2) == 0;
                    let s = ioctl::StreamStartIn {
                        engine,
                        direction: u32::from(!capture),
                        segment_size: seg,
                        strategy: rng.below(5) as u32,
                        ..ioctl::StreamStartIn::default()
                    };
                    let b = input(&|b| s.encode(b), ioctl::StreamStartIn::SIZE);
                    let len = (seg * segs) as usize;
                    let va = p.alloc(len);
                    let code = if capture {
                        ioctl::IOCTL_RHCA_STREAM_START_CAPTURE
                    } else {
                        ioctl::IOCTL_RHCA_STREAM_START_PLAYBACK
                    };
                    let q = p
                        .ioctl_with_buffer(&h, code, &b, va, len)
                        .map_err(|e| format!("step {step}: start: {e}"))?;
                    pending.push((q, code));
                }
                6 | 7 => {
                    let w = ioctl::StreamWaitIn {
                        engine,
                        max_segments: 1 + rng.below(ioctl::MAX_WAIT_SEGMENTS as u64) as u32,
                        ..ioctl::StreamWaitIn::default()
                    };
                    let b = input(&|b| w.encode(b), ioctl::StreamWaitIn::SIZE);
                    let q = p
                        .ioctl_async(
                            &h,
                            ioctl::IOCTL_RHCA_STREAM_WAIT,
                            &b,
                            ioctl::StreamWaitOut::SIZE,
                        )
                        .map_err(|e| format!("step {step}: wait: {e}"))?;
                    // Hand back what was ready, if anything.
                    if let Some(r) = q.wait(Duration::from_millis(1))
                        && let Ok(out) = ioctl::StreamWaitOut::decode(&r.output)
                        && out.count > 0
                    {
                        let rel = ioctl::StreamReleaseIn {
                            engine,
                            count: out.count,
                            first_sequence: out.segments[0].sequence,
                            ..ioctl::StreamReleaseIn::default()
                        };
                        let b = input(&|b| rel.encode(b), ioctl::StreamReleaseIn::SIZE);
                        let _ = p.ioctl(&h, ioctl::IOCTL_RHCA_STREAM_RELEASE, &b, 0);
                    } else {
                        pending.push((q, ioctl::IOCTL_RHCA_STREAM_WAIT));
                    }
                }
                8 => {
                    let st = ioctl::StreamStopIn {
                        engine,
                        ..ioctl::StreamStopIn::default()
                    };
                    let b = input(&|b| st.encode(b), ioctl::StreamStopIn::SIZE);
                    let q = p
                        .ioctl_async(&h, ioctl::IOCTL_RHCA_STREAM_STOP, &b, 0)
                        .map_err(|e| format!("step {step}: stop: {e}"))?;
                    pending.push((q, ioctl::IOCTL_RHCA_STREAM_STOP));
                }
                9 | 10 => {
                    if !pending.is_empty() {
                        let i = rng.below(pending.len() as u64) as usize;
                        pending[i]
                            .0
                            .cancel()
                            .map_err(|e| format!("step {step}: cancel: {e}"))?;
                    }
                }
                11 => {
                    host.power_down(&node)
                        .map_err(|e| format!("step {step}: D3: {e}"))?;
                    host.power_up(&node)
                        .map_err(|e| format!("step {step}: D0: {e}"))?;
                }
                12 => match rng.below(4) {
                    // A rebalance with the same resources, or with new ones (the BARs move, the
                    // interrupts change), or a query the PnP manager then cancels.
                    0 | 1 => {
                        host.stop(&node)
                            .map_err(|e| format!("step {step}: stop: {e}"))?;
                        host.start(&node)
                            .map_err(|e| format!("step {step}: start: {e}"))?;
                    }
                    2 => {
                        node = host
                            .rebalance(&node, rebalanced_interrupts(rng.below(4)))
                            .map_err(|e| format!("step {step}: rebalance: {e}"))?;
                    }
                    _ => {
                        let st = if rng.below(2) == 0 {
                            host.query_remove(&node)
                        } else {
                            host.query_stop(&node)
                        }
                        .map_err(|e| format!("step {step}: query: {e}"))?;
                        if st != STATUS_SUCCESS {
                            return Err(format!("step {step}: a query vetoed ({st:#x})"));
                        }
                    }
                },
                _ => {
                    let _ = p.ioctl(
                        &h,
                        ioctl::IOCTL_RHCA_STATISTICS,
                        &[],
                        ioctl::StatisticsOut::SIZE,
                    );
                }
            }
            // Completed requests leave the list.
            pending.retain(|(q, _)| q.wait(Duration::ZERO).is_none());
            if let Some(b) = rig.m.bugcheck() {
                return Err(format!("bug check at step {step}: {b}"));
            }
        }
        // The end: every process exits (its handles close, its requests are cancelled and must
        // complete in rundown).
        for (p, hs) in procs {
            for h in hs {
                p.close(h).map_err(|e| e.to_string())?;
            }
            p.kill().map_err(|e| e.to_string())?;
        }
        for (q, code) in pending {
            if q.wait(Duration::from_secs(10)).is_none() {
                o.mads_lost += u64::from(code == ioctl::IOCTL_RHCA_SEND_MAD);
                o.errors
                    .push(format!("a request {code:#x} never completed"));
            }
        }
        Ok(())
    })();
    rig.finish(o);
    result
}

/// Waits (5 s at most) until a MAD round trip succeeds: the device has recovered.
fn await_recovery(rig: &Rig) -> Result<(), String> {
    let host = rig.host()?;
    let p = host.process();
    let h = p.open(&rig.node()?).map_err(|e| e.to_string())?;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut tid = 0xA000u64;
    let ok = loop {
        tid += 1;
        let (s, r) = send_async(&p, &h, tid)?;
        let sent = s.wait(Duration::from_secs(5)).is_some_and(|r| {
            r.status == STATUS_SUCCESS && SendMadOut::decode(&r.output).is_ok_and(|o| o.status == 0)
        });
        let answered = sent
            && r.wait(Duration::from_millis(500))
                .is_some_and(|r| r.status == STATUS_SUCCESS);
        if !answered {
            let _ = r.cancel();
        }
        if answered {
            break true;
        }
        if std::time::Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    p.close(h).map_err(|e| e.to_string())?;
    p.kill().map_err(|e| e.to_string())?;
    if ok {
        Ok(())
    } else {
        Err("the device did not recover within 5 s".into())
    }
}

/// xorshift64*, seeded.
struct Rng(u64);

impl Rng {
    const fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    const fn below(&mut self, n: u64) -> u64 {
        self.next() % if n == 0 { 1 } else { n }
    }
}

/// Whether `bytes` carry something an IOCTL must never return: a kernel-looking address or a
/// handle value, or the simulator's fill of an uninitialised system buffer.
fn leaks_kernel_bytes(bytes: &[u8]) -> Option<String> {
    for (i, w) in bytes.chunks_exact(8).enumerate() {
        let v = u64::from_le_bytes(w.try_into().unwrap_or_default());
        // Kernel (and simulated handle) addresses, and host heap pointers standing in for
        // kernel pool on the simulated machine.
        if v >= 0xFFFF_8000_0000_0000 || (0x5500_0000_0000..0x8000_0000_0000).contains(&v) {
            return Some(format!("an address-like value {v:#x} at byte {}", i * 8));
        }
    }
    if bytes
        .windows(16)
        .any(|w| w.iter().all(|&b| b == wdk_sim::UNINITIALIZED_FILL))
    {
        return Some("uninitialised system-buffer bytes".into());
    }
    None
}

/// IOCTL fuzzing: `n` requests with random codes (RHCA's and others, every method), input and
/// output lengths and contents, on a handle that may also hold streams and MADs; pending ones are
/// cancelled. Every reply is scanned for kernel bytes.
fn fuzz(n: u64, profile: Profile, seed: u64, o: &mut Outcome) -> Result<(), String> {
    let rig = Rig::new(profile, seed)?;
    let mut rng = Rng(seed | 1);
    let result = (|| {
        let host = rig.host()?;
        let mut p = host.process();
        let mut h = p.open(&rig.node()?).map_err(|e| e.to_string())?;
        let codes: Vec<u32> = ioctl::Ioctl::ALL.iter().map(|i| i.code()).collect();
        let mut report = String::new();
        for i in 0..n {
            if i > 0 && i % 500 == 0 {
                // A new process now and then: the old one's handle closes (ending any stream it
                // started) and its memory goes back.
                p.close(h).map_err(|e| e.to_string())?;
                p.kill().map_err(|e| e.to_string())?;
                p = host.process();
                h = p.open(&rig.node()?).map_err(|e| e.to_string())?;
            }
            let code = match rng.below(4) {
                0 => rng.next() as u32,
                1 => codes[rng.below(codes.len() as u64) as usize] ^ (rng.below(4) as u32),
                _ => codes[rng.below(codes.len() as u64) as usize],
            };
            let in_len = match rng.below(3) {
                0 => 0,
                1 => rng.below(600) as usize,
                // The right size, sometimes: the structure's own, with a valid header.
                _ => ioctl::Ioctl::from_code(code).map_or(0, ioctl::Ioctl::input_len),
            };
            let mut input = vec![0u8; in_len];
            for b in &mut input {
                *b = rng.next() as u8;
            }
            if in_len >= 8 && rng.below(2) == 0 {
                input[..4].copy_from_slice(&(in_len as u32).to_le_bytes());
                input[4..8].copy_from_slice(&ioctl::ABI_VERSION.to_le_bytes());
            }
            let out_len = rng.below(700) as usize;
            o.ioctls_fuzzed += 1;
            let method = code & 3;
            let pending = if method == 1 || method == 2 {
                let len = (rng.below(8) as usize + 1) * 4096;
                let va = p.alloc(len);
                p.ioctl_with_buffer(&h, code, &input, va, len)
            } else {
                p.ioctl_async(&h, code, &input, out_len)
            }
            .map_err(|e| e.to_string())?;
            let done = if let Some(r) = pending.wait(Duration::from_millis(2)) {
                Some(r)
            } else {
                pending.cancel().map_err(|e| e.to_string())?;
                pending.wait(Duration::from_secs(10))
            };
            match done {
                Some(r) => {
                    if let Some(why) = leaks_kernel_bytes(&r.output) {
                        let _ = writeln!(report, "IOCTL {code:#x}: {why}");
                    }
                }
                // A stream START is not cancelled by CancelIoEx until its stream ends: the
                // handle's close below ends it.
                None if ioctl::Ioctl::from_code(code).is_ok_and(|i| {
                    matches!(
                        i,
                        ioctl::Ioctl::StreamStartCapture | ioctl::Ioctl::StreamStartPlayback
                    )
                }) => {}
                None => {
                    let _ = writeln!(report, "IOCTL {code:#x}: never completed after cancel");
                }
            }
            if let Some(b) = rig.m.bugcheck() {
                return Err(format!("bug check after IOCTL {code:#x}: {b}"));
            }
        }
        p.close(h).map_err(|e| e.to_string())?;
        p.kill().map_err(|e| e.to_string())?;
        if !report.is_empty() {
            return Err(report);
        }
        Ok(())
    })();
    o.cycles += 1;
    rig.finish(o);
    result
}

/// The summary of several outcomes as one JSON object (`rhca-lab scenario all --json`).
#[must_use]
pub fn json(outcomes: &[Outcome]) -> String {
    let q = |s: &str| format!("{s:?}");
    let list = |v: &[String]| format!("[{}]", v.iter().map(|s| q(s)).collect::<Vec<_>>().join(","));
    let sum = |f: &dyn Fn(&Outcome) -> u64| outcomes.iter().map(f).sum::<u64>();
    let per: Vec<String> = outcomes
        .iter()
        .map(|o| {
            format!(
                "{{\"name\":{},\"ok\":{},\"cycles\":{},\"bugchecks\":{},\"leaks\":{},\"mads_sent\":{},\"mads_failed\":{},\"mads_lost\":{},\"segments_verified\":{},\"stream_bytes_corrupted\":{},\"ioctls_fuzzed\":{},\"errors\":{}}}",
                q(&o.name),
                o.ok(),
                o.cycles,
                list(&o.bugchecks),
                list(&o.leaks),
                o.mads_sent,
                o.mads_failed,
                o.mads_lost,
                o.segments_verified,
                o.stream_bytes_corrupted,
                o.ioctls_fuzzed,
                list(&o.errors)
            )
        })
        .collect();
    format!(
        "{{\"cycles\":{},\"faults_injected\":{},\"ioctls_fuzzed\":{},\"bugchecks\":{},\"leaks\":{},\"mads_lost\":{},\"stream_bytes_corrupted\":{},\"ok\":{},\"scenarios\":[{}]}}",
        sum(&|o| o.cycles),
        sum(&|o| o.faults_injected),
        sum(&|o| o.ioctls_fuzzed),
        sum(&|o| o.bugchecks.len() as u64),
        sum(&|o| o.leaks.len() as u64),
        sum(&|o| o.mads_lost),
        sum(&|o| o.stream_bytes_corrupted),
        outcomes.iter().all(Outcome::ok),
        per.join(",")
    )
}

/// An outcome as lines of `key value` (strings escaped: `\\` and `\n`), for `rhca-lab`, which
/// runs each scenario in a child process and reads its outcome back ([`decode_outcome`]).
#[must_use]
pub fn encode_outcome(o: &Outcome) -> String {
    let esc = |s: &str| s.replace('\\', "\\\\").replace('\n', "\\n");
    let mut out = String::new();
    let _ = writeln!(out, "name {}", esc(&o.name));
    for (k, v) in [
        ("cycles", o.cycles),
        ("mads_lost", o.mads_lost),
        ("mads_sent", o.mads_sent),
        ("mads_failed", o.mads_failed),
        ("stream_bytes_corrupted", o.stream_bytes_corrupted),
        ("segments_verified", o.segments_verified),
        ("ioctls_fuzzed", o.ioctls_fuzzed),
        ("faults_injected", o.faults_injected),
    ] {
        let _ = writeln!(out, "{k} {v}");
    }
    for (k, list) in [
        ("bugcheck", &o.bugchecks),
        ("leak", &o.leaks),
        ("error", &o.errors),
    ] {
        for v in list {
            let _ = writeln!(out, "{k} {}", esc(v));
        }
    }
    out.push_str("end\n");
    out
}

/// The outcome [`encode_outcome`] wrote, or `None` when `text` does not hold a complete one
/// (the child died before it finished).
#[must_use]
pub fn decode_outcome(text: &str) -> Option<Outcome> {
    let unesc = |s: &str| {
        let mut out = String::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            match (c, c == '\\') {
                (_, true) => match chars.next() {
                    Some('n') => out.push('\n'),
                    Some(other) => out.push(other),
                    None => {}
                },
                (c, false) => out.push(c),
            }
        }
        out
    };
    let mut o = Outcome::default();
    let mut complete = false;
    for line in text.lines() {
        let (k, v) = line.split_once(' ').unwrap_or((line, ""));
        let n = || v.parse::<u64>().ok();
        match k {
            "name" => o.name = unesc(v),
            "cycles" => o.cycles = n()?,
            "mads_lost" => o.mads_lost = n()?,
            "mads_sent" => o.mads_sent = n()?,
            "mads_failed" => o.mads_failed = n()?,
            "stream_bytes_corrupted" => o.stream_bytes_corrupted = n()?,
            "segments_verified" => o.segments_verified = n()?,
            "ioctls_fuzzed" => o.ioctls_fuzzed = n()?,
            "faults_injected" => o.faults_injected = n()?,
            "bugcheck" => o.bugchecks.push(unesc(v)),
            "leak" => o.leaks.push(unesc(v)),
            "error" => o.errors.push(unesc(v)),
            "end" => complete = true,
            _ => {}
        }
    }
    complete.then_some(o)
}

#[cfg(test)]
mod tests {
    use super::{Outcome, decode_outcome, encode_outcome};

    #[test]
    fn an_outcome_survives_the_trip_through_a_child_process() {
        let o = Outcome {
            name: "rebalance-new-resources".into(),
            cycles: 100,
            bugchecks: vec!["*** STOP: 0x000000E6 (0x26, …)\nsecond line".into()],
            leaks: vec!["pool tag 'Rhca': 1 allocations, 64 bytes".into()],
            mads_lost: 1,
            mads_sent: 800,
            mads_failed: 11,
            stream_bytes_corrupted: 65536,
            segments_verified: 4676,
            ioctls_fuzzed: 0,
            faults_injected: 3,
            errors: vec!["a \\ backslash".into(), String::new()],
        };
        assert_eq!(decode_outcome(&encode_outcome(&o)), Some(o.clone()));
        // A child that died halfway wrote no `end`.
        let text = encode_outcome(&o);
        let cut = &text[..text.len() - "end\n".len()];
        assert_eq!(decode_outcome(cut), None);
        assert_eq!(decode_outcome("cycles many\nend\n"), None);
    }
}
