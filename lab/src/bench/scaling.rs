//! Scaling figures (`rhca-lab bench --scaling`): how the cost of one operation grows with the
//! load around it — MADs in flight, the stream buffer's size (and so its segment count),
//! concurrent streams on separate engines and handles, and live IOMMU mappings under mixed
//! sizes. Every figure is a cost per operation, with the smallest case as its baseline: a ratio
//! near 1 means the cost does not grow with the load (the whole grows linearly); a ratio that
//! grows with the load is superlinear growth, which the summary names. The two stream-size
//! series are also given over the same data movement by `memcpy` at each load, which takes out
//! what the host's caches alone add as the buffer outgrows them.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use rhca_hw::ioctl::{self, RecvMadOut, SendMadOut, Strategy};
use rhca_hw::stream::Direction;
use rhca_model::{ModelConfig, RhcaDevice};
use rhca_tests::stream::Client;
use wdk_sim::testkit::TestAdapter;
use wdk_sim::{Config, Machine, Profile, STATUS_SUCCESS};

use super::{
    ENGINE_BURST, Figure, Progress, Size, boot, figure, median, memcpy_same_movement,
    node_info_query, shutdown,
};

/// Microseconds per MAD round trip with `k` round trips in flight (`k` `RECV_MAD`s and `k`
/// `SEND_MAD`s issued before any is waited for), over `n` round trips.
pub(super) fn mad_in_flight_us(k: u64, n: u64) -> Result<f64, String> {
    let mut model = ModelConfig::default();
    // Every send mapped, as in the MAD figures of `bench`.
    model.caps.max_inline = 64;
    let b = boot(Config::with_profile(Profile::COHERENT), model)?;
    let pr = b.process();
    let h = b.open(&pr)?;
    let rounds = n.div_ceil(k);
    let t = Instant::now();
    let mut tid = 0u64;
    for _ in 0..rounds {
        let mut recvs = Vec::new();
        let mut sends = Vec::new();
        for _ in 0..k {
            tid += 1;
            let buf = node_info_query(tid)?;
            recvs.push(
                pr.ioctl_async(&h, ioctl::IOCTL_RHCA_RECV_MAD, &[], RecvMadOut::SIZE)
                    .map_err(|e| e.to_string())?,
            );
            sends.push(
                pr.ioctl_async(&h, ioctl::IOCTL_RHCA_SEND_MAD, &buf, SendMadOut::SIZE)
                    .map_err(|e| e.to_string())?,
            );
        }
        for p in sends.iter().chain(&recvs) {
            let r = p
                .wait(Duration::from_secs(10))
                .ok_or("a MAD request never completed")?;
            if r.status != STATUS_SUCCESS {
                return Err(format!("MAD request status {:#x}", r.status));
            }
        }
    }
    let el = t.elapsed();
    pr.close(h).map_err(|e| e.to_string())?;
    shutdown(b)?;
    #[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
    Ok(el.as_secs_f64() * 1e6 / (rounds * k) as f64)
}

/// Nanoseconds per capture segment of `seg` bytes with `streams` streams running at once, each
/// on its own engine and handle (its own process), each with a buffer of `buffer` bytes, over
/// `segs` segments per stream after one lap of warm-up.
fn stream_segment_ns(
    profile: Profile,
    streams: u32,
    seg: u32,
    buffer: u64,
    segs: u64,
) -> Result<f64, String> {
    let count = u32::try_from(buffer / u64::from(seg)).map_err(|e| e.to_string())?;
    let model = ModelConfig {
        bench_data: true,
        ..ModelConfig::default()
    };
    let b = boot(Config::with_profile(profile), model)?;
    let procs: Vec<_> = (0..streams).map(|_| b.process()).collect();
    let handles = procs
        .iter()
        .map(|p| b.open(p))
        .collect::<Result<Vec<_>, String>>()?;
    let clients = procs
        .iter()
        .zip(&handles)
        .enumerate()
        .map(|(engine, (p, h))| {
            let engine = u32::try_from(engine).unwrap_or(0);
            Client::start(
                p,
                h,
                &b.m,
                engine,
                Direction::Capture,
                seg,
                count,
                Strategy::PersistentSg,
                0,
            )
            .map_err(|st| format!("START on engine {engine} refused: {st:#x}"))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let mut warmed = 0;
    for c in &clients {
        warmed += c.drain(u64::from(count));
    }
    let t = Instant::now();
    let moved: u64 = std::thread::scope(|s| {
        // Collected: every stream's thread starts before any is joined.
        let runs: Vec<_> = clients
            .iter()
            .map(|c| s.spawn(move || c.drain(segs)))
            .collect();
        runs.into_iter().map(|r| r.join().unwrap_or(0)).sum()
    });
    let el = t.elapsed();
    // Why nothing moved, if so: the START's own completion and the driver's error events.
    let why = if moved == 0 {
        let start = clients
            .first()
            .and_then(|c| c.start.wait(Duration::ZERO))
            .map(|r| format!("START completed with {:#x}", r.status));
        format!(
            "{}; warm-up moved {warmed} bytes; a WAIT now: {:?}; driver errors: {:?}",
            start.unwrap_or_else(|| "START pending".into()),
            clients.first().map(|c| c.try_wait(16)),
            b.m.trace_errors()
        )
    } else {
        String::new()
    };
    for c in clients {
        let _ = c.stop();
    }
    for (p, h) in procs.iter().zip(handles) {
        p.close(h).map_err(|e| e.to_string())?;
    }
    shutdown(b)?;
    let segments = moved / u64::from(seg);
    if segments == 0 {
        return Err(format!(
            "no segment moved ({streams} stream(s), {seg}-byte segments, {buffer}-byte buffer): {why}"
        ));
    }
    #[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
    Ok(el.as_secs_f64() * 1e9 / segments as f64)
}

/// Nanoseconds per segment of `seg` bytes of the same data movement by `memcpy` as a stream
/// through a `buffer`-byte buffer makes over `segs` segments (`memcpy_same_movement`: the
/// engine's burst copied over a destination of the buffer's size). The memory hierarchy alone
/// makes a segment cost more as the buffer outgrows the host's caches; a stream's cost over
/// this one takes that out, so that what still grows with the load is the simulator's and the
/// driver's.
fn memcpy_segment_ns(seg: u32, buffer: u64, segs: u64) -> Result<f64, String> {
    let len = usize::try_from(buffer).map_err(|e| e.to_string())?;
    let burst = ENGINE_BURST.min(seg) as usize;
    let limit = memcpy_same_movement(burst, len, segs * u64::from(seg));
    Ok(1e9 * f64::from(seg) / limit.max(1.0))
}

/// One load of a stream-size series: its label, the segment and buffer sizes, and the
/// measurement (nanoseconds per segment).
struct StreamLoad {
    label: String,
    seg: u32,
    buffer: u64,
    ns: Box<dyn Fn() -> Result<f64, String>>,
}

/// Two scaling series from one set of measurements: the cost per segment at each load
/// (`name`), and the same over the cost per segment of the same data movement by `memcpy`
/// measured just before it (`over_name`, [`memcpy_segment_ns`]); each against its first load.
fn stream_series(
    figs: &mut Vec<Figure>,
    (name, over_name): (&str, &str),
    profile: &str,
    reps: usize,
    segs: u64,
    loads: &[StreamLoad],
) -> Result<(), String> {
    let (mut raw, mut over) = (Vec::new(), Vec::new());
    let (mut first_raw, mut first_over) = (None, None);
    for l in loads {
        let (mut ns, mut ratios) = (Vec::new(), Vec::new());
        for _ in 0..reps {
            let memcpy = memcpy_segment_ns(l.seg, l.buffer, segs)?;
            let v = (l.ns)()?;
            ns.push(v);
            ratios.push(v / memcpy);
        }
        let base = *first_raw.get_or_insert_with(|| median(&ns));
        raw.push(figure(name, profile, &l.label, "ns", base, ns));
        let base = *first_over.get_or_insert_with(|| median(&ratios));
        over.push(figure(
            over_name, profile, &l.label, "x memcpy", base, ratios,
        ));
    }
    figs.extend(raw);
    figs.extend(over);
    Ok(())
}

/// Nanoseconds per map + unmap (`GetScatterGatherList` and `PutScatterGatherList` of pool
/// buffers of 1 to 64 pages, mixed) under the `iommu` profile with `live` other mappings of
/// mixed sizes held, after the allocator has seen `live` × 4 mixed releases (so its free ranges
/// are fragmented), over `ops` operations.
fn iova_map_ns(live: usize, ops: usize) -> Result<f64, String> {
    let m = Machine::new(Config::with_profile(Profile::IOMMU));
    let (_dev, att) = RhcaDevice::attach(&m, ModelConfig::default()).map_err(|e| e.to_string())?;
    let _cpu = m.enter();
    // Map registers for every live mapping at once (a 4 GiB transfer's worth), so that the
    // figure is the IOVA allocator's and the page table's, not a map-register shortage.
    let a = TestAdapter::new(&att, 64, 0xFFFF_F000).map_err(|e| format!("{e:?}"))?;
    let sizes = [1u32, 3, 16, 2, 64, 5, 1, 8];
    let size = |i: usize| sizes[i % sizes.len()] * 4096;
    let mut held = Vec::new();
    let result = (|| {
        // Fragment the IOVA space: map and release in an interleaved order.
        for i in 0..live * 4 {
            held.push(a.map_pool(size(i), true).map_err(|e| format!("{e:?}"))?);
            if held.len() > live {
                let victim = held.swap_remove((i * 7) % held.len());
                a.unmap(victim);
            }
        }
        let t = Instant::now();
        for i in 0..ops {
            let mapping = a
                .map_pool(size(i + 3), true)
                .map_err(|e| format!("{e:?}"))?;
            a.unmap(mapping);
        }
        #[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
        Ok(t.elapsed().as_secs_f64() * 1e9 / ops as f64)
    })();
    // Everything is released before the adapter is put, whatever happened.
    for mapping in held {
        a.unmap(mapping);
    }
    drop(a);
    result
}

/// One load of a series: its label and the measurement.
type Load<'a> = (String, Box<dyn Fn() -> Result<f64, String> + 'a>);

/// One scaling series: the cost at each load, the first load the baseline.
fn series(
    figs: &mut Vec<Figure>,
    name: &str,
    profile: &str,
    unit: &'static str,
    reps: usize,
    loads: &[Load<'_>],
) -> Result<(), String> {
    let mut first = None;
    for (label, f) in loads {
        let runs = (0..reps)
            .map(|_| f())
            .collect::<Result<Vec<f64>, String>>()?;
        let base = *first.get_or_insert_with(|| median(&runs));
        figs.push(figure(name, profile, label, unit, base, runs));
    }
    Ok(())
}

/// The scaling figures.
///
/// # Errors
/// A run that failed.
#[expect(
    clippy::too_many_lines,
    reason = "the four series, each a list of loads, read best in one place"
)]
pub fn run(size: Size, progress: bool) -> Result<Vec<Figure>, String> {
    let pr = Progress {
        start: Instant::now(),
        on: progress,
    };
    let quick = size.reps < 5;
    let reps = size.reps.min(3);
    let mut figs = Vec::new();

    pr.say("MADs in flight");
    let n = size.mads;
    let ks: &[u64] = if quick {
        &[1, 4, 16]
    } else {
        &[1, 2, 4, 8, 16, 32]
    };
    let loads: Vec<Load<'static>> = ks
        .iter()
        .map(|&k| {
            (
                format!("{k} in flight"),
                Box::new(move || mad_in_flight_us(k, n)) as Box<dyn Fn() -> Result<f64, String>>,
            )
        })
        .collect();
    series(
        &mut figs,
        "scaling: MAD round trip, by MADs in flight",
        "coherent",
        "us",
        reps,
        &loads,
    )?;

    pr.say("stream buffer size (256 KiB segments)");
    let segs: u64 = if quick { 256 } else { 2048 };
    let sizes: &[u64] = if quick {
        &[16 << 20, 64 << 20, 256 << 20]
    } else {
        &[16 << 20, 64 << 20, 256 << 20, 1 << 30]
    };
    let loads: Vec<StreamLoad> = sizes
        .iter()
        .map(|&b| StreamLoad {
            label: format!("{} MiB, {} segments", b >> 20, b / (256 * 1024)),
            seg: 256 * 1024,
            buffer: b,
            ns: Box::new(move || stream_segment_ns(Profile::IOMMU, 1, 256 * 1024, b, segs)),
        })
        .collect();
    // Under `iommu` (no cost model): on `coherent` a scattered 1 GiB buffer is 262,144 pages,
    // more than the device's 65,536 stream descriptors; remapped, it is one IOVA range.
    stream_series(
        &mut figs,
        (
            "scaling: 256 KiB capture segment, by buffer size",
            "scaling: 256 KiB capture segment over the same memcpy, by buffer size",
        ),
        "iommu",
        reps,
        segs,
        &loads,
    )?;

    pr.say("segment count (64 KiB segments)");
    let segs: u64 = if quick { 512 } else { 4096 };
    let counts: &[u32] = if quick {
        &[64, 1024, 4096]
    } else {
        &[16, 64, 256, 1024, 4096]
    };
    let loads: Vec<StreamLoad> = counts
        .iter()
        .map(|&c| {
            let buffer = u64::from(c) * 64 * 1024;
            StreamLoad {
                label: format!("{c} segments"),
                seg: 64 * 1024,
                buffer,
                ns: Box::new(move || {
                    stream_segment_ns(Profile::COHERENT, 1, 64 * 1024, buffer, segs)
                }),
            }
        })
        .collect();
    stream_series(
        &mut figs,
        (
            "scaling: 64 KiB capture segment, by segments in the buffer",
            "scaling: 64 KiB capture segment over the same memcpy, by segments in the buffer",
        ),
        "coherent",
        reps,
        segs,
        &loads,
    )?;

    pr.say("concurrent streams");
    let loads: Vec<Load<'static>> = [1u32, 2]
        .iter()
        .map(|&s| {
            (
                format!("{s} stream(s), {s} handle(s)"),
                Box::new(move || stream_segment_ns(Profile::COHERENT, s, 64 * 1024, 16 << 20, segs))
                    as Box<dyn Fn() -> Result<f64, String>>,
            )
        })
        .collect();
    series(
        &mut figs,
        "scaling: 64 KiB capture segment (all streams), by concurrent streams",
        "coherent",
        "ns",
        reps,
        &loads,
    )?;

    pr.say("IOMMU mappings live (mixed sizes)");
    let ops = if quick { 2_000 } else { 20_000 };
    let lives: &[usize] = if quick {
        &[16, 256, 4096]
    } else {
        &[16, 256, 1024, 4096, 16_384]
    };
    let loads: Vec<Load<'static>> = lives
        .iter()
        .map(|&l| {
            (
                format!("{l} mappings live"),
                Box::new(move || iova_map_ns(l, ops)) as Box<dyn Fn() -> Result<f64, String>>,
            )
        })
        .collect();
    series(
        &mut figs,
        "scaling: map + unmap (mixed 1-64 pages), by live mappings",
        "iommu",
        "ns",
        reps,
        &loads,
    )?;
    pr.say("done");
    Ok(figs)
}

/// The largest cost ratio of each series (its most loaded case over its least): the growth of
/// a cost per operation. Near 1: the whole grows linearly; for the concurrent streams, 1 means
/// the second stream costs each segment nothing extra.
#[must_use]
pub fn summary(figs: &[Figure]) -> String {
    let mut out =
        String::from("\ngrowth of each cost per operation (most loaded / least loaded):\n");
    let mut names: Vec<&str> = figs.iter().map(|f| f.name.as_str()).collect();
    names.dedup();
    for n in names {
        let worst = figs
            .iter()
            .filter(|f| f.name == n)
            .map(|f| f.ratio)
            .fold(0.0f64, f64::max);
        // Repetitions of one figure spread by up to ±30 % on a loaded 2-core machine: only a
        // ratio beyond that says the cost grows.
        let verdict = if worst <= 1.5 {
            "flat within the run-to-run spread: the whole grows linearly"
        } else {
            "GROWS with the load (or a noisy run: see the spread)"
        };
        let _ = writeln!(out, "  {n}: {worst:.2}x — {verdict}");
    }
    out
}
