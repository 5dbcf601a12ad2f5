//! `rhca-lab run`: the main job. Boots a simulated machine under Driver Verifier (and DMA
//! remapping by default), attaches an RHCA with a small fabric, loads the driver, starts the
//! device, discovers the fabric with SMPs, sends a burst of `PerfMgt` queries, stops and removes
//! the device, and reports what happened.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use rhca_hw::attrs::{NodeDescription, NodeInfo, PortCounters, PortInfo};
use rhca_hw::cqe;
use rhca_hw::ioctl::{self, QueryDeviceOut, RecvMadOut, SendMadIn, SendMadOut, StatisticsOut};
use rhca_hw::mad::{self, MadHeader, attr, smp};
use rhca_model::ModelConfig;
use rhcactl::boot::SimMachine;
use wdk_sim::trace::{DebugPrint, TraceEvent};
use wdk_sim::wdf::host::{Handle, InterruptResources, Process};
use wdk_sim::{Config, Machine, Profile, STATUS_SUCCESS};

/// What the job found and measured.
#[derive(Debug, Default)]
pub struct Report {
    profile: String,
    nodes: Vec<(String, u64, String, u16)>,
    perf_queries: u64,
    perf_answers: u64,
    stats: StatisticsOut,
    sg_lists: u64,
    sg_lists_put: u64,
    /// Allocations the driver made in its DPC, timer and ISR callbacks (expected: none).
    dpc_allocations: u64,
    /// Allocations the driver made at `DISPATCH_LEVEL` anywhere (allowed; reported).
    dispatch_allocations: u64,
    bugchecks: Vec<String>,
    leaks: Vec<String>,
    elapsed: Duration,
    errors: Vec<String>,
    /// The capture stream: segments verified, segments bad, bytes, strategy.
    stream: Option<rhca_tests::stream::Outcome>,
    /// The driver's ETW events, as the machine's trace session decoded them.
    trace: Vec<TraceEvent>,
    /// Events that did not decode as `TraceLogging` (expected: none).
    trace_errors: Vec<String>,
    /// The driver's `DbgPrintEx` lines.
    debug_prints: Vec<DebugPrint>,
    /// Whether the text report lists every event (`--trace`).
    show_trace: bool,
}

/// The capture stream of a run: 64 segments of 256 KiB (a 16 MiB circular buffer), 1024
/// segments (256 MiB, 16 laps) moved and verified.
const STREAM_SEG: u32 = 256 * 1024;
const STREAM_SEGS: u32 = 64;
const STREAM_TOTAL: u64 = 1024;

const fn strategy_name(v: u32) -> &'static str {
    match ioctl::Strategy::from_u32(v) {
        Ok(ioctl::Strategy::CommonBufferFromMdl) => "CreateCommonBufferFromMdl",
        Ok(ioctl::Strategy::PersistentSg) => "persistent S/G + FlushDmaBuffer",
        Ok(ioctl::Strategy::PerSegment) => "per-segment S/G",
        Ok(ioctl::Strategy::Staging) => "common-buffer staging",
        _ => "?",
    }
}

fn dr_query(attr_id: u16, attr_mod: u32, path: &[u8], tid: u64) -> Result<SendMadIn, String> {
    Ok(SendMadIn {
        qp: 0,
        dlid: mad::PERMISSIVE_LID,
        mad: mad::directed_route_get(attr_id, attr_mod, path, tid).map_err(|e| e.to_string())?,
        ..SendMadIn::default()
    })
}

struct Session<'a> {
    p: &'a Process,
    h: Handle,
}

impl Session<'_> {
    /// Sends `q` and waits for the response with the same TID.
    fn ask(&self, q: &SendMadIn) -> Result<[u8; mad::MAD_SIZE], String> {
        let mut b = [0u8; SendMadIn::SIZE];
        q.encode(&mut b).map_err(|e| e.to_string())?;
        let recv = self
            .p
            .ioctl_async(&self.h, ioctl::IOCTL_RHCA_RECV_MAD, &[], RecvMadOut::SIZE)
            .map_err(|e| e.to_string())?;
        let r = self
            .p
            .ioctl(&self.h, ioctl::IOCTL_RHCA_SEND_MAD, &b, SendMadOut::SIZE)
            .map_err(|e| e.to_string())?;
        if r.status != STATUS_SUCCESS {
            return Err(format!("SEND_MAD failed: {:#x}", r.status));
        }
        let out = SendMadOut::decode(&r.output).map_err(|e| e.to_string())?;
        if out.status != cqe::Status::Success as u32 {
            return Err(format!("send completed with status {}", out.status));
        }
        let got = recv
            .wait(Duration::from_secs(5))
            .ok_or("no response within 5 s")?;
        let m = RecvMadOut::decode(&got.output).map_err(|e| e.to_string())?;
        Ok(m.mad)
    }
}

/// Runs the job on `profile`.
#[must_use]
pub fn run(profile: &str, progress: bool, show_trace: bool) -> Report {
    let start = Instant::now();
    let mut rep = Report {
        profile: profile.to_owned(),
        show_trace,
        ..Report::default()
    };
    let say = |what: &str| {
        if progress {
            eprintln!("[{:>6.3}s] {what}", start.elapsed().as_secs_f64());
        }
    };
    let p = match Profile::parse(profile) {
        Ok(p) => p,
        Err(e) => {
            rep.errors.push(e);
            return rep;
        }
    };
    let model = ModelConfig::default();
    let mut sim = match SimMachine::boot_with(
        Config::with_profile(p),
        model.clone(),
        InterruptResources::Msi(1),
    ) {
        Ok(s) => s,
        Err(e) => {
            rep.errors.push(e);
            return rep;
        }
    };
    say("machine booted, driver loaded, device started; discovering the fabric");
    if let Err(e) = drive(&sim, &model, &mut rep, &say) {
        rep.errors.push(e);
    }
    say("removing the device and unloading the driver");
    if let Err(e) = sim.power_off() {
        rep.errors.push(e);
    }
    let m = &sim.m;
    for a in m.dma_adapters() {
        rep.sg_lists += a.counters.sg_lists_allocated;
        rep.sg_lists_put += a.counters.sg_lists_freed;
    }
    rep.dpc_allocations = m.dpc_allocations();
    rep.dispatch_allocations = m.dispatch_allocations();
    rep.trace = m.trace_events();
    rep.trace_errors = m.trace_errors();
    rep.debug_prints = m.debug_prints();
    rep.bugchecks = m.bugcheck().map(|b| b.to_string()).into_iter().collect();
    match m.leaks() {
        Ok(l) => rep.leaks = l,
        Err(b) => rep.bugchecks.push(b.to_string()),
    }
    rep.elapsed = start.elapsed();
    say("done");
    rep
}

fn drive(
    sim: &SimMachine,
    model: &ModelConfig,
    rep: &mut Report,
    say: &dyn Fn(&str),
) -> Result<(), String> {
    let p = sim.process();
    let h = sim.open(&p)?;
    let s = Session { p: &p, h };
    if let Ok(r) = p.ioctl(
        &h,
        ioctl::IOCTL_RHCA_QUERY_DEVICE,
        &[],
        QueryDeviceOut::SIZE,
    ) && let Ok(q) = QueryDeviceOut::decode(&r.output)
    {
        say(&format!(
            "adapter: DEVICE_DESCRIPTION v{}, {} map registers",
            q.dma_description_version, q.map_registers
        ));
    }
    let mut tid = 0x1000u64;
    let mut paths: Vec<Vec<u8>> = vec![vec![0], vec![0, 1]];
    for k in 0..model.fabric.remotes.len() {
        paths.push(vec![0, 1, u8::try_from(k + 2).unwrap_or(0)]);
    }
    for path in &paths {
        tid += 1;
        let ni = dr_query(attr::NODE_INFO, 0, path, tid)
            .and_then(|q| s.ask(&q))
            .map_err(|e| {
                rep.errors.push(format!("NodeInfo via {path:?}: {e}"));
                e
            });
        tid += 1;
        let nd = dr_query(attr::NODE_DESCRIPTION, 0, path, tid).and_then(|q| s.ask(&q));
        tid += 1;
        let pi = dr_query(attr::PORT_INFO, 1, path, tid).and_then(|q| s.ask(&q));
        if let (Ok(ni), Ok(nd), Ok(pi)) = (ni, nd, pi) {
            let ni = NodeInfo::decode(&ni[smp::DATA..]).unwrap_or_default();
            let text = NodeDescription::decode(&nd[smp::DATA..])
                .ok()
                .and_then(|d| d.text().map(str::to_owned))
                .unwrap_or_default();
            let lid = PortInfo::decode(&pi[smp::DATA..]).map_or(0, |p| p.lid);
            let kind = match ni.node_type {
                1 => "CA",
                2 => "switch",
                _ => "?",
            };
            rep.nodes.push((kind.to_owned(), ni.node_guid, text, lid));
        }
    }
    say("sending a burst of PerfMgt queries");
    for r in &model.fabric.remotes {
        for _ in 0..100 {
            tid += 1;
            rep.perf_queries += 1;
            match s.ask(&rhcactl::port_counters_query(r.lid, tid)) {
                Ok(a) if MadHeader::decode(&a).is_ok_and(|h| h.tid == tid && h.status == 0) => {
                    if PortCounters::decode(&a[mad::GMP_DATA..]).is_ok() {
                        rep.perf_answers += 1;
                    }
                }
                Ok(_) => rep
                    .errors
                    .push(format!("PerfMgt to LID {}: bad answer", r.lid)),
                Err(e) => rep.errors.push(format!("PerfMgt to LID {}: {e}", r.lid)),
            }
        }
    }
    say("capturing a stream (16 MiB circular buffer, 256 MiB, every segment verified)");
    capture(&sim.m, &p, &h, rep);
    if let Ok(r) = p.ioctl(&h, ioctl::IOCTL_RHCA_STATISTICS, &[], StatisticsOut::SIZE)
        && let Ok(st) = StatisticsOut::decode(&r.output)
    {
        rep.stats = st;
    }
    p.close(h).map_err(|e| e.to_string())?;
    say("stopping the device");
    sim.stop_device()
}

/// The run's capture stream, as an application runs it: START, WAIT/verify/RELEASE, STOP.
fn capture(m: &Machine, p: &Process, h: &Handle, rep: &mut Report) {
    match rhca_tests::stream::Client::start(
        p,
        h,
        m,
        0,
        rhca_hw::stream::Direction::Capture,
        STREAM_SEG,
        STREAM_SEGS,
        ioctl::Strategy::Auto,
        0,
    ) {
        Ok(client) => {
            let o = client.run(STREAM_TOTAL);
            if let Some(e) = &o.stalled {
                rep.errors.push(format!("stream: {e}"));
            }
            let (st, done) = client.stop();
            if st != STATUS_SUCCESS || done.status != STATUS_SUCCESS {
                rep.errors.push(format!(
                    "stream STOP {st:#x}, START completed {:#x}",
                    done.status
                ));
            }
            if o.bad > 0 || o.verified < STREAM_TOTAL {
                rep.errors.push(format!(
                    "stream: {} segments verified, {} bad",
                    o.verified, o.bad
                ));
            }
            rep.stream = Some(o);
        }
        Err(st) => rep.errors.push(format!("stream START failed: {st:#x}")),
    }
}

impl Report {
    /// Whether the run met every expectation.
    #[must_use]
    pub const fn ok(&self) -> bool {
        self.errors.is_empty()
            && self.bugchecks.is_empty()
            && self.leaks.is_empty()
            && self.sg_lists == self.sg_lists_put
            && self.dpc_allocations == 0
            && self.trace_errors.is_empty()
            && !self.trace.is_empty()
    }

    fn maps_per_mad(&self) -> f64 {
        let mads = self.stats.mad_sends + self.stats.mad_receives;
        if mads == 0 {
            0.0
        } else {
            // Both counts are far below 2^52: the ratio is exact enough for a report.
            #[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
            let r = self.stats.mappings_made as f64 / mads as f64;
            r
        }
    }

    /// The trace summary line, and with `--trace` every event and debug print.
    fn trace_text(&self, o: &mut String) {
        let warnings = self.trace.iter().filter(|e| e.level <= 3).count();
        let _ = writeln!(
            o,
            "trace: {} ETW events (RHCA.Driver, {} errors or warnings), {} undecodable; {} \
             DbgPrintEx lines{}",
            self.trace.len(),
            warnings,
            self.trace_errors.len(),
            self.debug_prints.len(),
            if self.show_trace {
                ""
            } else {
                " (--trace lists them)"
            }
        );
        if self.show_trace {
            for e in &self.trace {
                let _ = writeln!(o, "  etw #{:<3} irql {} {e}", e.seq, e.irql);
            }
            for d in &self.debug_prints {
                let _ = writeln!(
                    o,
                    "  dbgprint [{}:{}] {}",
                    d.component,
                    d.level,
                    d.text.trim_end()
                );
            }
        }
        for e in &self.trace_errors {
            let _ = writeln!(o, "  undecodable event: {e}");
        }
    }

    /// The human-readable report.
    #[must_use]
    pub fn text(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "rhca-lab run — profile {}, {:.3} s",
            self.profile,
            self.elapsed.as_secs_f64()
        );
        let _ = writeln!(o, "\nfabric ({} nodes):", self.nodes.len());
        for (kind, guid, desc, lid) in &self.nodes {
            let _ = writeln!(o, "  {kind:<6} GUID {guid:#018x}  LID {lid:<3} {desc}");
        }
        let s = &self.stats;
        let _ = writeln!(
            o,
            "\nMADs: {} sent ({} inline), {} received, {} dropped; PerfMgt {}/{} answered",
            s.mad_sends,
            s.mad_sends_inline,
            s.mad_receives,
            s.mad_receive_drops,
            self.perf_answers,
            self.perf_queries
        );
        let _ = writeln!(
            o,
            "DMA: {} scatter/gather lists built, {} put (all adapters; MAD path {:.2} per MAD); {} interrupts, {} DPCs; {} hostile CQEs",
            self.sg_lists,
            self.sg_lists_put,
            self.maps_per_mad(),
            s.interrupts,
            s.dpcs,
            s.hostile_cqes
        );
        let _ = writeln!(
            o,
            "interrupt path: {} allocations in the DPC, timer and ISR; {} at DISPATCH_LEVEL in all \
             (non-paged, allowed)",
            self.dpc_allocations, self.dispatch_allocations
        );
        if let Some(st) = &self.stream {
            let _ = writeln!(
                o,
                "stream: capture, {} — {} MiB moved, {} segments verified, {} bad; {} flushes",
                strategy_name(st.strategy),
                st.bytes >> 20,
                st.verified,
                st.bad,
                s.stream_flushes
            );
        }
        self.trace_text(&mut o);
        let _ = writeln!(
            o,
            "verifier: {}",
            if self.bugchecks.is_empty() {
                "no bug check".to_owned()
            } else {
                self.bugchecks.join("; ")
            }
        );
        let _ = writeln!(
            o,
            "leaks: {}",
            if self.leaks.is_empty() {
                "0".to_owned()
            } else {
                self.leaks.join("; ")
            }
        );
        for e in &self.errors {
            let _ = writeln!(o, "error: {e}");
        }
        let _ = writeln!(o, "\nverdict: {}", if self.ok() { "PASS" } else { "FAIL" });
        o
    }

    /// The report as one JSON object.
    #[must_use]
    pub fn json(&self) -> String {
        let list = |v: &[String]| {
            format!(
                "[{}]",
                v.iter().map(|s| json_str(s)).collect::<Vec<_>>().join(",")
            )
        };
        let nodes: Vec<String> = self
            .nodes
            .iter()
            .map(|(k, g, d, l)| {
                format!(
                    "{{\"type\":{},\"guid\":\"{g:#018x}\",\"lid\":{l},\"description\":{}}}",
                    json_str(k),
                    json_str(d)
                )
            })
            .collect();
        format!(
            "{{\"profile\":{},\"ok\":{},\"elapsed_ms\":{},\"nodes\":[{}],\"mads_sent\":{},\"mads_sent_inline\":{},\"mads_received\":{},\"perf_queries\":{},\"perf_answers\":{},\"sg_lists\":{},\"sg_lists_put\":{},\"maps_per_mad\":{:.3},\"hostile_cqes\":{},\"dpc_allocations\":{},\"dispatch_allocations\":{},\"stream\":{},\"trace\":{},\"trace_errors\":{},\"debug_prints\":{},\"bugchecks\":{},\"leaks\":{},\"errors\":{}}}",
            json_str(&self.profile),
            self.ok(),
            self.elapsed.as_millis(),
            nodes.join(","),
            self.stats.mad_sends,
            self.stats.mad_sends_inline,
            self.stats.mad_receives,
            self.perf_queries,
            self.perf_answers,
            self.sg_lists,
            self.sg_lists_put,
            self.maps_per_mad(),
            self.stats.hostile_cqes,
            self.dpc_allocations,
            self.dispatch_allocations,
            self.stream.as_ref().map_or_else(
                || "null".to_owned(),
                |st| format!(
                    "{{\"direction\":\"capture\",\"strategy\":{},\"bytes\":{},\"segments_verified\":{},\"segments_bad\":{}}}",
                    json_str(strategy_name(st.strategy)),
                    st.bytes,
                    st.verified,
                    st.bad
                )
            ),
            trace_json(&self.trace),
            list(&self.trace_errors),
            list(
                &self
                    .debug_prints
                    .iter()
                    .map(|d| d.text.trim_end().to_owned())
                    .collect::<Vec<_>>()
            ),
            list(&self.bugchecks),
            list(&self.leaks),
            list(&self.errors),
        )
    }
}

/// The events as a JSON array: name, level, opcode, keyword, IRQL and the fields as an object
/// (numbers as numbers, statuses and hexadecimal fields as strings as decoders print them).
fn trace_json(events: &[TraceEvent]) -> String {
    use wdk_sim::trace::TraceValue;
    let items: Vec<String> = events
        .iter()
        .map(|e| {
            let fields: Vec<String> = e
                .fields
                .iter()
                .map(|(n, v)| {
                    let value = match v {
                        TraceValue::I32(x) => x.to_string(),
                        TraceValue::U32(x) => x.to_string(),
                        TraceValue::I64(x) => x.to_string(),
                        TraceValue::U64(x) => x.to_string(),
                        TraceValue::Bool(b) => b.to_string(),
                        TraceValue::Str(s) => json_str(s),
                        other => json_str(&other.to_string()),
                    };
                    format!("{}:{value}", json_str(n))
                })
                .collect();
            format!(
                "{{\"seq\":{},\"provider\":{},\"name\":{},\"level\":{},\"opcode\":{},\"keyword\":{},\"irql\":{},\"fields\":{{{}}}}}",
                e.seq,
                json_str(&e.provider),
                json_str(&e.name),
                e.level,
                e.opcode,
                e.keyword,
                e.irql,
                fields.join(",")
            )
        })
        .collect();
    format!("[{}]", items.join(","))
}

/// `s` as a JSON string literal.
pub fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_main_job_passes_and_reports_json() {
        let r = run("verifier+iommu", false, false);
        assert!(r.ok(), "{}", r.text());
        assert_eq!(r.nodes.len(), 5, "local HCA, switch and three remotes");
        assert_eq!(r.perf_answers, 300);
        let st = r.stream.as_ref().expect("a capture stream ran");
        assert!(st.verified >= STREAM_TOTAL && st.bad == 0, "{st:?}");
        let j = r.json();
        for key in [
            "\"bugchecks\":[]",
            "\"leaks\":[]",
            "\"mads_sent\":315",
            "\"mads_received\":315",
            "\"maps_per_mad\":",
            "\"stream\":{\"direction\":\"capture\",\"strategy\":\"CreateCommonBufferFromMdl\"",
            "\"segments_bad\":0",
            "\"dpc_allocations\":0",
        ] {
            assert!(j.contains(key), "{key} in {j}");
        }
        let bad = run("nonsense", false, false);
        assert!(!bad.ok());
    }
}
