//! `rhcactl`: the RHCA user-mode tool, over the IOCTL ABI of `rhca_hw::ioctl`.
//!
//! Commands: `query` (identity and capabilities), `mad nodeinfo` / `mad perf <lid>` (a MAD sent,
//! its reply decoded), `capture <file> <segments>` (a capture stream into a file, every segment's
//! pattern verified), `stats` (the driver's counters), `loop <seconds>` (MADs and a stream kept
//! running, for I/O during Device Fundamentals tests).
//!
//! The device is reached through a [`Transport`]: on Windows `DeviceIoControl` on the device
//! interface (`windows` module), elsewhere the simulated machine's handle API (`sim` module),
//! where the tests run the commands against the real driver.

#![expect(
    clippy::many_single_char_names,
    reason = "the transport, output and counters are t, o and c throughout"
)]
#![expect(
    clippy::cast_possible_truncation,
    reason = "segment counts and sizes are small: a 16 MiB buffer of 64 KiB segments"
)]

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use rhca_hw::attrs::{NodeInfo, PortCounters};
use rhca_hw::ioctl::{
    self, QueryDeviceOut, RecvMadOut, SendMadIn, SendMadOut, StatisticsOut, Strategy,
    StreamReleaseIn, StreamStartIn, StreamStopIn, StreamWaitIn, StreamWaitOut, WAIT_FLAG_ENDED,
};
use rhca_hw::mad::{self, MadHeader, attr, smp};
use rhca_hw::stream::{self, Direction, RecordStatus};

#[cfg(not(windows))]
pub mod boot;
#[cfg(not(windows))]
pub mod sim;
#[cfg(windows)]
pub mod windows;

/// Why an I/O request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoError {
    /// The request completed with this status (`NTSTATUS` on the simulated machine, the Win32
    /// error on Windows).
    Status(i32),
    /// It did not complete in time.
    Timeout,
    /// The transport itself failed (no device, a closed handle).
    Transport(&'static str),
}

impl std::fmt::Display for IoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Status(s) => write!(f, "status {:#010x} ({})", s.cast_unsigned(), explain(*s)),
            Self::Timeout => f.write_str("the request did not complete in time"),
            Self::Transport(w) => f.write_str(w),
        }
    }
}

/// What an `NTSTATUS` the driver returns means, in the tool's words.
#[must_use]
pub const fn explain(status: i32) -> &'static str {
    match status.cast_unsigned() {
        0 => "success",
        0xC000_0023 => "buffer too small",
        0xC000_000D => "invalid parameter (the request was refused before anything was touched)",
        0xC000_0010 => "invalid device request (unknown control code)",
        0xC000_00BB => "not supported (e.g. a stream strategy this platform cannot do correctly)",
        0xC000_0120 => "cancelled",
        0xC000_02B6 => "device removed",
        0xC000_0184 => "invalid device state (no stream on that engine)",
        0xC000_00A3 => "device not ready (not started, or powered down)",
        0xC000_0022 => "access denied (another handle's stream, or not an administrator)",
        0xC000_0185 => "I/O device error (the stream engine reported an error)",
        0x8000_0011 => "device busy (a stream is already running on that engine)",
        0xC000_009A => "insufficient resources",
        _ => "see ntstatus.h",
    }
}

/// A request left pending (a direct-I/O START): its buffer, and its completion.
pub trait DirectIo {
    /// Copies `out.len()` bytes of the request's buffer at `offset`.
    ///
    /// # Errors
    /// [`IoError::Transport`] when the bytes cannot be read.
    fn read(&self, offset: usize, out: &mut [u8]) -> Result<(), IoError>;

    /// Waits for the completion: `Information` (the bytes of the buffer that hold stream data;
    /// what moved is counted from the segments) or the failure.
    ///
    /// # Errors
    /// The request's status, or [`IoError::Timeout`].
    fn wait(self, timeout: Duration) -> Result<usize, IoError>;
}

/// How the tool reaches the device.
pub trait Transport {
    /// A pending direct-I/O request.
    type Direct: DirectIo;

    /// A buffered `DeviceIoControl`: the output bytes.
    ///
    /// # Errors
    /// The request's status, [`IoError::Timeout`] or a transport failure.
    fn ioctl(&self, code: u32, input: &[u8], out_len: usize) -> Result<Vec<u8>, IoError>;

    /// A direct-I/O `DeviceIoControl` whose output buffer (`len` bytes of the tool's memory) the
    /// driver keeps for the request's life; returns once the driver has the request.
    ///
    /// # Errors
    /// The request's status when it fails at once, or a transport failure.
    fn start_direct(&self, code: u32, input: &[u8], len: usize) -> Result<Self::Direct, IoError>;
}

fn encode<T: AbiEncode>(v: &T, size: usize) -> Vec<u8> {
    let mut b = vec![0u8; size];
    let _ = v.encode_into(&mut b);
    b
}

/// The `encode` of the ABI structures, for `encode`.
pub trait AbiEncode {
    /// Encodes into `out`.
    ///
    /// # Errors
    /// A buffer shorter than the structure.
    fn encode_into(&self, out: &mut [u8]) -> rhca_hw::Result<usize>;
}

macro_rules! abi_encode {
    ($($t:ty),*) => {$(
        impl AbiEncode for $t {
            fn encode_into(&self, out: &mut [u8]) -> rhca_hw::Result<usize> {
                self.encode(out)
            }
        }
    )*};
}
abi_encode!(
    SendMadIn,
    StreamStartIn,
    StreamWaitIn,
    StreamReleaseIn,
    StreamStopIn
);

/// `IOCTL_RHCA_QUERY_DEVICE`.
///
/// # Errors
/// The request's failure, or a reply `rhca-hw` rejects.
pub fn query<T: Transport>(t: &T) -> Result<QueryDeviceOut, IoError> {
    let r = t.ioctl(ioctl::IOCTL_RHCA_QUERY_DEVICE, &[], QueryDeviceOut::SIZE)?;
    QueryDeviceOut::decode(&r).map_err(|_| IoError::Transport("a malformed QUERY_DEVICE reply"))
}

/// `IOCTL_RHCA_STATISTICS`.
///
/// # Errors
/// The request's failure, or a reply `rhca-hw` rejects.
pub fn statistics<T: Transport>(t: &T) -> Result<StatisticsOut, IoError> {
    let r = t.ioctl(ioctl::IOCTL_RHCA_STATISTICS, &[], StatisticsOut::SIZE)?;
    StatisticsOut::decode(&r).map_err(|_| IoError::Transport("a malformed STATISTICS reply"))
}

/// Sends `q` and returns the received MAD with the same transaction id. The driver keeps
/// received MADs until a `RECV_MAD` asks (a bounded backlog), so a synchronous RECV after the
/// SEND finds the answer.
///
/// # Errors
/// A failed SEND or RECV, a send that completed with an error, or no answer with the TID.
pub fn ask<T: Transport>(t: &T, q: &SendMadIn) -> Result<RecvMadOut, IoError> {
    let tid = MadHeader::decode(&q.mad).map_or(0, |h| h.tid);
    let r = t.ioctl(
        ioctl::IOCTL_RHCA_SEND_MAD,
        &encode(q, SendMadIn::SIZE),
        SendMadOut::SIZE,
    )?;
    let out =
        SendMadOut::decode(&r).map_err(|_| IoError::Transport("a malformed SEND_MAD reply"))?;
    if out.status != rhca_hw::cqe::Status::Success as u32 {
        return Err(IoError::Transport("the send completed with an error"));
    }
    for _ in 0..16 {
        let r = t.ioctl(ioctl::IOCTL_RHCA_RECV_MAD, &[], RecvMadOut::SIZE)?;
        let m =
            RecvMadOut::decode(&r).map_err(|_| IoError::Transport("a malformed RECV_MAD reply"))?;
        if MadHeader::decode(&m.mad).is_ok_and(|h| h.tid == tid) {
            return Ok(m);
        }
    }
    Err(IoError::Transport("no answer with the transaction id"))
}

/// A directed-route `NodeInfo` Get of the local node.
#[must_use]
pub fn node_info_query(tid: u64) -> SendMadIn {
    SendMadIn {
        qp: 0,
        dlid: mad::PERMISSIVE_LID,
        mad: mad::directed_route_get(attr::NODE_INFO, 0, &[0], tid).unwrap_or([0; mad::MAD_SIZE]),
        ..SendMadIn::default()
    }
}

/// A `PerfMgt` `PortCounters` Get of port 1 of `lid`, through QP1.
#[must_use]
pub fn port_counters_query(lid: u16, tid: u64) -> SendMadIn {
    SendMadIn {
        qp: 1,
        dlid: lid,
        remote_qpn: 1,
        qkey: mad::QKEY_GSI,
        mad: mad::port_counters_get(1, tid),
        ..SendMadIn::default()
    }
}

/// What a capture saw.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Capture {
    /// Segments written to the file.
    pub segments: u64,
    /// Segments whose pattern verified.
    pub verified: u64,
    /// Bytes moved, from the byte counts of the segments received.
    pub bytes: usize,
    /// The strategy the driver used.
    pub strategy: u32,
}

/// Captures `segments` segments of `seg` bytes through a circular buffer of `count` segments
/// on engine 0, appending each to `out` in sequence order and verifying its pattern, then stops.
///
/// # Errors
/// A failed START, WAIT, RELEASE or STOP, or a write error.
pub fn capture<T: Transport>(
    t: &T,
    seg: u32,
    count: u32,
    segments: u64,
    out: &mut dyn std::io::Write,
) -> Result<Capture, IoError> {
    let start = StreamStartIn {
        engine: 0,
        direction: Direction::Capture as u32,
        segment_size: seg,
        strategy: Strategy::Auto as u32,
        ..StreamStartIn::default()
    };
    let stream = t.start_direct(
        ioctl::IOCTL_RHCA_STREAM_START_CAPTURE,
        &encode(&start, StreamStartIn::SIZE),
        (seg * count) as usize,
    )?;
    let mut c = Capture::default();
    let mut buf = vec![0u8; seg as usize];
    let result = (|| {
        while c.segments < segments {
            let w = t.ioctl(
                ioctl::IOCTL_RHCA_STREAM_WAIT,
                &encode(
                    &StreamWaitIn {
                        engine: 0,
                        max_segments: ioctl::MAX_WAIT_SEGMENTS as u32,
                        ..StreamWaitIn::default()
                    },
                    StreamWaitIn::SIZE,
                ),
                StreamWaitOut::SIZE,
            )?;
            let w = StreamWaitOut::decode(&w)
                .map_err(|_| IoError::Transport("a malformed WAIT reply"))?;
            c.strategy = w.strategy;
            for s in &w.segments[..w.count as usize] {
                if c.segments == segments {
                    // Handed back below with the rest of the batch.
                    break;
                }
                stream.read(s.index as usize * seg as usize, &mut buf)?;
                if s.status == RecordStatus::Ok as u32
                    && stream::verify_pattern(&buf, s.sequence, 0) == Ok(None)
                {
                    c.verified += 1;
                }
                out.write_all(&buf)
                    .map_err(|_| IoError::Transport("cannot write the capture file"))?;
                c.segments += 1;
                c.bytes += s.bytes as usize;
            }
            if w.flags & WAIT_FLAG_ENDED != 0 || w.count == 0 {
                return Err(IoError::Transport("the stream ended early"));
            }
            t.ioctl(
                ioctl::IOCTL_RHCA_STREAM_RELEASE,
                &encode(
                    &StreamReleaseIn {
                        engine: 0,
                        count: w.count,
                        first_sequence: w.segments[0].sequence,
                        ..StreamReleaseIn::default()
                    },
                    StreamReleaseIn::SIZE,
                ),
                0,
            )?;
        }
        Ok(())
    })();
    // STOP, whatever happened: the stream ends and the START completes.
    let _ = t.ioctl(
        ioctl::IOCTL_RHCA_STREAM_STOP,
        &encode(
            &StreamStopIn {
                engine: 0,
                ..StreamStopIn::default()
            },
            StreamStopIn::SIZE,
        ),
        0,
    );
    let done = stream.wait(Duration::from_secs(10));
    result?;
    done?;
    Ok(c)
}

const fn strategy_name(v: u32) -> &'static str {
    match Strategy::from_u32(v) {
        Ok(Strategy::CommonBufferFromMdl) => "CreateCommonBufferFromMdl",
        Ok(Strategy::PersistentSg) => "persistent S/G + FlushDmaBuffer",
        Ok(Strategy::PerSegment) => "per-segment S/G",
        Ok(Strategy::Staging) => "common-buffer staging",
        _ => "none yet",
    }
}

/// The usage text.
pub const USAGE: &str = "\
usage: rhcactl <command>
  query                     identity, capabilities, DMA adapter
  mad nodeinfo              a directed-route NodeInfo Get of the local node, decoded
  mad perf <lid>            a PerfMgt PortCounters Get to <lid>, decoded
  capture <file> <n>        capture n segments of 64 KiB into <file>, each verified
  stats                     the driver's counters
  loop <seconds>            MADs and a capture stream kept running (I/O during tests)";

fn cmd_query<T: Transport>(t: &T, o: &mut String) -> Result<(), IoError> {
    let q = query(t)?;
    let _ = writeln!(
        o,
        "RHCA {:04x}:{:04x} rev {}  node GUID {:#018x}\n\
         DMA: {}-bit, DEVICE_DESCRIPTION v{}, {} map registers\n\
         queues: 2^{} WQEs, 2^{} CQEs, {} SGEs, {} bytes inline; {} interrupt vectors\n\
         streams: {} engines, segments 2^{}..2^{} bytes, up to 2^{} segments",
        q.vendor_id,
        q.device_id,
        q.revision,
        q.node_guid,
        q.dma_width,
        q.dma_description_version,
        q.map_registers,
        q.log_max_wq,
        q.log_max_cq,
        q.max_sge,
        q.max_inline,
        q.interrupt_vectors,
        q.stream_engines,
        q.log_min_seg,
        q.log_max_seg,
        q.log_max_segs
    );
    Ok(())
}

fn cmd_node_info<T: Transport>(t: &T, o: &mut String) -> Result<(), IoError> {
    let m = ask(t, &node_info_query(1))?;
    let ni = NodeInfo::decode(&m.mad[smp::DATA..]).unwrap_or_default();
    let kind = match ni.node_type {
        1 => "channel adapter",
        2 => "switch",
        _ => "?",
    };
    let _ = writeln!(
        o,
        "NodeInfo from LID {}: type {} ({kind}), {} ports, node GUID {:#018x}, port GUID {:#018x}",
        m.slid, ni.node_type, ni.num_ports, ni.node_guid, ni.port_guid
    );
    Ok(())
}

fn cmd_perf<T: Transport>(t: &T, lid: u16, o: &mut String) -> Result<(), IoError> {
    let m = ask(t, &port_counters_query(lid, 2))?;
    let status = MadHeader::decode(&m.mad).map_or(0xFFFF, |h| h.status);
    let pc = PortCounters::decode(&m.mad[mad::GMP_DATA..]).unwrap_or_default();
    let _ = writeln!(
        o,
        "PortCounters of LID {lid} (MAD status {status:#06x}): xmit {} pkts / {} words, rcv {} pkts / {} words, symbol errors {}, rcv errors {}",
        pc.xmit_pkts, pc.xmit_data, pc.rcv_pkts, pc.rcv_data, pc.symbol_errors, pc.rcv_errors
    );
    Ok(())
}

fn cmd_capture<T: Transport>(
    t: &T,
    file: &str,
    segments: u64,
    o: &mut String,
) -> Result<(), IoError> {
    let f = std::fs::File::create(file)
        .map_err(|_| IoError::Transport("cannot create the capture file"))?;
    let mut w = std::io::BufWriter::new(f);
    let c = capture(t, 64 * 1024, 64, segments, &mut w)?;
    std::io::Write::flush(&mut w)
        .map_err(|_| IoError::Transport("cannot write the capture file"))?;
    let _ = writeln!(
        o,
        "captured {} segments ({} bytes) into {file}: {} verified; strategy {}; the driver moved {} bytes",
        c.segments,
        c.segments * 64 * 1024,
        c.verified,
        strategy_name(c.strategy),
        c.bytes
    );
    Ok(())
}

fn cmd_stats<T: Transport>(t: &T, o: &mut String) -> Result<(), IoError> {
    let s = statistics(t)?;
    let _ = writeln!(
        o,
        "MADs: {} sent ({} inline), {} received, {} dropped, {} send errors\n\
         DMA: {} mappings made, {} released, {} overflow waits, {} hostile CQEs\n\
         stream: {} segments, {} bytes, {} flushes, {} errors, strategy {}\n\
         interrupts {}, DPCs {}; queue resets {}, stalls {}",
        s.mad_sends,
        s.mad_sends_inline,
        s.mad_receives,
        s.mad_receive_drops,
        s.send_errors,
        s.mappings_made,
        s.mappings_released,
        s.overflow_waits,
        s.hostile_cqes,
        s.stream_segments,
        s.stream_bytes,
        s.stream_flushes,
        s.stream_errors,
        strategy_name(s.stream_strategy as u32),
        s.interrupts,
        s.dpcs,
        s.queue_resets,
        s.queue_stalls
    );
    Ok(())
}

/// Runs one command line (without the program name) over `transport`, writing its report to
/// `out`. Returns the process exit status: 0 success, 1 failure, 2 usage.
pub fn run<T: Transport>(transport: &T, args: &[&str], out: &mut String) -> u8 {
    let r = match args {
        ["query"] => cmd_query(transport, out),
        ["mad", "nodeinfo"] => cmd_node_info(transport, out),
        ["mad", "perf", lid] => match lid.parse::<u16>() {
            Ok(lid) => cmd_perf(transport, lid, out),
            Err(_) => return usage(out),
        },
        ["capture", file, count] => match count.parse::<u64>() {
            Ok(count) => cmd_capture(transport, file, count, out),
            Err(_) => return usage(out),
        },
        ["stats"] => cmd_stats(transport, out),
        ["loop", secs] => match secs.parse::<u64>() {
            Ok(secs) => {
                io_loop(transport, Duration::from_secs(secs), out);
                Ok(())
            }
            Err(_) => return usage(out),
        },
        _ => return usage(out),
    };
    match r {
        Ok(()) => 0,
        Err(e) => {
            let _ = writeln!(out, "rhcactl: {} failed: {e}", args.join(" "));
            1
        }
    }
}

fn usage(o: &mut String) -> u8 {
    let _ = writeln!(o, "{USAGE}");
    2
}

/// MADs and capture streams for `d`: a stream broken by the test (removal, sleep) is reported
/// and started again.
fn io_loop<T: Transport>(t: &T, d: Duration, o: &mut String) {
    let end = Instant::now() + d;
    let (mut mads, mut segs, mut breaks) = (0u64, 0u64, 0u64);
    let mut tid = 0x7000u64;
    while Instant::now() < end {
        tid += 1;
        if ask(t, &node_info_query(tid)).is_ok() {
            mads += 1;
        }
        match capture(t, 64 * 1024, 16, 32, &mut std::io::sink()) {
            Ok(c) => segs += c.verified,
            Err(e) => {
                breaks += 1;
                let _ = writeln!(o, "stream interrupted: {e}; starting again");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
    let _ = writeln!(
        o,
        "loop: {mads} MADs answered, {segs} segments verified, {breaks} streams interrupted"
    );
}
