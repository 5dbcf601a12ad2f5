//! Stream engines (§8): the descriptor table read once at START, credits, segment-by-segment
//! data movement in bursts of at most 64 KiB, per-segment records (body, barrier, owner byte),
//! the verifiable pattern, STOP with a `Stopped` record, and moderation.

use std::sync::atomic::{Ordering, fence};
use std::time::Instant;

use rhca_hw::regs::{ErrorCode, ErrorSource, cause, se};
use rhca_hw::ring::Ring;
use rhca_hw::stream::{self, Descriptor, Direction, Record, RecordStatus};

use super::{State, flag, moderation_due};

/// The largest single DMA burst of an engine; STOP takes effect between bursts.
use super::STREAM_BURST as BURST;
/// Most scatter/gather pieces one burst writes as one bus transaction: a 64 KiB burst over 4 KiB
/// pages that are not page-aligned touches 17.
const MAX_PIECES: usize = 32;

/// One stream engine's registers and state.
#[derive(Debug, Default)]
pub(super) struct Engine {
    desc: u64,
    desc_count: u32,
    seg_size: u32,
    seg_count: u32,
    rec: u64,
    ctrl: u32,
    modr: u32,
    running: bool,
    stopped: bool,
    error: bool,
    credits: u32,
    seq: u64,
    /// Bytes of the current segment already moved.
    pos: u32,
    /// The configuration snapshot taken at START.
    config: Option<stream::Config>,
    verify: bool,
    mismatch: bool,
    /// The circular buffer's pieces: (logical address, length, buffer offset of the piece). In
    /// segment-table mode, the pieces of the current segment only.
    table: Vec<(u64, u32, u64)>,
    /// Segment-table mode: the sequence whose group `table` holds.
    loaded: Option<u64>,
    /// The index in `table` of the piece the last burst ended in: the next burst starts there
    /// or in the piece after it (bursts move through the buffer in order), so it is found
    /// without a search. Only a hint: it is checked before it is used.
    next_piece: usize,
    pub(super) unreported: u32,
    pub(super) first_unreported: Option<Instant>,
    tokens: u64,
    last_refill: Option<Instant>,
    scratch: Scratch,
    /// The current capture burst's pieces, in the burst's order: (device address, bytes).
    pieces: Vec<(u64, usize)>,
    /// Benchmark data: the scratch holds the fixed capture bytes.
    bench_filled: bool,
    /// A capture burst is being written without the device's lock ([`Burst`]): the engine
    /// moves nothing else, and a STOP waits for it (`stop_pending`).
    in_flight: bool,
    /// A STOP (with its acknowledgement, or a quiesce's) that arrived while a burst was in
    /// flight: it takes effect at that burst's end, the next burst boundary.
    stop_pending: Option<bool>,
}

/// An engine's burst buffer: its bytes start on a page boundary, as the pages it writes do.
///
/// Why: a device's DMA engine moves a burst from its own SRAM, and what it costs is the data
/// movement. A plain `Vec<u8>` of 64 KiB starts 16 bytes into a host page, so every page-sized
/// piece the bus copies out of it straddles two source pages; measured here, such a copy ran at
/// about half the speed of an aligned one (the benchmark's `memcpy` limit found the same), and
/// the simulator's engine, not the driver, set the stream's ceiling.
///
/// The storage is allocated once, at the largest burst, and never reallocated, so the bytes do
/// not move while a [`Burst`] holds the buffer.
#[derive(Debug, Default)]
pub(super) struct Scratch {
    store: Vec<u8>,
    /// Where the page-aligned bytes start in `store`.
    at: usize,
    len: usize,
}

impl Scratch {
    const ALIGN: usize = 4096;

    /// Makes the buffer `len` bytes long, keeping the bytes it held (as `Vec::resize` does;
    /// bytes it never held read as zero).
    fn set_len(&mut self, len: usize) {
        if self.store.len() < len + Self::ALIGN {
            let mut store = vec![0u8; len.max(BURST as usize) + Self::ALIGN];
            // `align_offset` may decline (it never does for bytes on the platforms we run on);
            // unaligned bytes are then merely slower.
            let at = match store.as_ptr().align_offset(Self::ALIGN) {
                at if at < Self::ALIGN => at,
                _ => 0,
            };
            store[at..at + self.len].copy_from_slice(&self.store[self.at..self.at + self.len]);
            (self.store, self.at) = (store, at);
        }
        self.len = len;
    }
}

impl std::ops::Deref for Scratch {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.store[self.at..self.at + self.len]
    }
}

impl std::ops::DerefMut for Scratch {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.store[self.at..self.at + self.len]
    }
}

/// A capture burst, planned with the device's lock held and written without it.
///
/// Why: a 64 KiB burst takes microseconds to copy, and with the lock held every register
/// access of the driver (its ISR reading `INT_CAUSE`, a credit write, a doorbell) waited for it,
/// which a device's DMA engine does not make a CPU do; on a 2-core host the waiting ISR thread
/// went to sleep and woke again for most bursts. The plan takes the engine's scratch and piece
/// buffers (so nothing is allocated per burst) and marks it in flight; `commit_burst` gives them
/// back and does what the end of the burst does (position, record, a STOP that waited).
///
/// A reset between the plan and the write cancels it: the bus asks, under its lock, whether
/// the device's epoch is still the plan's (`RhcaDevice::service`), so a buffer the driver frees
/// after writing `CTRL.RESET` is never written.
#[derive(Debug)]
pub(super) struct Burst {
    pub(super) n: usize,
    pub(super) epoch: u64,
    seq: u64,
    pos: u32,
    len: u32,
    pub(super) scratch: Scratch,
    pub(super) pieces: Vec<(u64, usize)>,
    pub(super) outcome: BurstOutcome,
}

/// How a [`Burst`]'s write went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BurstOutcome {
    /// Not written yet.
    Planned,
    /// Every piece written.
    Written,
    /// Not written: the device was reset (or removed) since the plan.
    Cancelled,
    /// The bus refused the piece at this device address; the pieces before it were written.
    Fault(u64),
}

impl Burst {
    /// Writes the burst's pieces through `bus` in transactions of at most [`MAX_PIECES`]
    /// pieces, each issued only while `live()` holds. Called without the device's lock.
    pub(super) fn write(&mut self, bus: &dyn crate::port::HostPort, live: &dyn Fn() -> bool) {
        self.outcome = BurstOutcome::Written;
        let mut at = 0usize;
        for group in self.pieces.chunks(MAX_PIECES) {
            let bytes: usize = group.iter().map(|p| p.1).sum();
            match bus.dma_write_pieces_if(&self.scratch[at..at + bytes], group, live) {
                Ok(true) => {}
                Ok(false) => {
                    self.outcome = BurstOutcome::Cancelled;
                    return;
                }
                Err((i, _)) => {
                    self.outcome = BurstOutcome::Fault(group[i].0);
                    return;
                }
            }
            at += bytes;
        }
    }
}

/// The index of the piece of `table` (logical address, length, buffer offset) that holds
/// buffer offset `start`: `hint` or the piece after it when either does (a burst starts where
/// the last one ended), else found by a binary search.
fn piece_at(table: &[(u64, u32, u64)], hint: usize, start: u64) -> usize {
    let holds = |i: usize| {
        table
            .get(i)
            .is_some_and(|&(_, l, off)| off <= start && start < off + u64::from(l))
    };
    if holds(hint) {
        hint
    } else if holds(hint + 1) {
        hint + 1
    } else {
        table.partition_point(|&(_, l, off)| off + u64::from(l) <= start)
    }
}

/// What one step of an engine did.
enum Step {
    /// The chunk was moved (a playback read, with the device's lock held).
    Moved,
    /// A capture burst was planned; it is written after the lock is released.
    Planned,
    /// The engine stopped on a fault.
    Failed,
}

impl Engine {
    /// Whether a capture burst of this engine is being written.
    pub(super) const fn in_flight(&self) -> bool {
        self.in_flight
    }

    pub(super) fn timer_due(&self, now: Instant) -> bool {
        moderation_due(self.modr, self.unreported, self.first_unreported, now)
    }
}

const fn source(n: usize) -> ErrorSource {
    ErrorSource::StreamEngine(n as u8)
}

impl State {
    pub(super) fn read_se(&self, n: u32, reg: u32) -> u32 {
        let Some(e) = self.se.get(n as usize) else {
            return 0;
        };
        match reg {
            se::DESC_LO => e.desc as u32,
            se::DESC_HI => (e.desc >> 32) as u32,
            se::DESC_COUNT => e.desc_count,
            se::SEG_SIZE => e.seg_size,
            se::SEG_COUNT => e.seg_count,
            se::REC_LO => e.rec as u32,
            se::REC_HI => (e.rec >> 32) as u32,
            se::CTRL => e.ctrl & (se::CTRL_DIR.mask() | se::CTRL_VERIFY.mask()),
            se::STATUS => {
                flag(e.running, se::STATUS_RUNNING)
                    | flag(e.stopped, se::STATUS_STOPPED)
                    | flag(e.error, se::STATUS_ERROR)
                    | se::STATUS_CREDITS.set(0, e.credits.min(0xFFFF))
            }
            se::SEQ => e.seq as u32,
            se::MOD => e.modr,
            _ => 0,
        }
    }

    pub(super) fn write_se(&mut self, n: u32, reg: u32, value: u32) {
        let i = n as usize;
        let Some(e) = self.se.get_mut(i) else { return };
        match reg {
            se::DESC_LO => e.desc = (e.desc & !0xFFFF_FFFF) | u64::from(value),
            se::DESC_HI => e.desc = (e.desc & 0xFFFF_FFFF) | (u64::from(value) << 32),
            se::DESC_COUNT => e.desc_count = value,
            se::SEG_SIZE => e.seg_size = value,
            se::SEG_COUNT => e.seg_count = value,
            se::REC_LO => e.rec = (e.rec & !0xFFFF_FFFF) | u64::from(value),
            se::REC_HI => e.rec = (e.rec & 0xFFFF_FFFF) | (u64::from(value) << 32),
            se::MOD => e.modr = value,
            se::CTRL => {
                e.ctrl = value
                    & (se::CTRL_DIR.mask() | se::CTRL_VERIFY.mask() | se::CTRL_SEG_TABLE.mask());
                if se::CTRL_STOP.is_set(value) {
                    self.stop_engine(i, true);
                } else if se::CTRL_START.is_set(value) {
                    self.start_engine(i);
                }
            }
            _ => {}
        }
    }

    /// START: validate the configuration, read and validate the descriptor table once.
    fn start_engine(&mut self, n: usize) {
        if !self.running() {
            self.error(ErrorCode::NotEnabled, source(n), 0, 0);
            return;
        }
        let e = &self.se[n];
        if e.running {
            self.error(ErrorCode::BadStreamConfig, source(n), 0, e.desc);
            return;
        }
        let config = stream::Config {
            direction: if se::CTRL_DIR.is_set(e.ctrl) {
                Direction::Playback
            } else {
                Direction::Capture
            },
            seg_size: e.seg_size,
            seg_count: e.seg_count,
            desc_count: e.desc_count,
            desc_addr: e.desc,
            rec_addr: e.rec,
            per_segment: se::CTRL_SEG_TABLE.is_set(e.ctrl),
        };
        let verify = se::CTRL_VERIFY.is_set(e.ctrl);
        if config.validate(&self.cfg.caps).is_err()
            || (verify && config.direction == Direction::Capture)
        {
            self.se[n].error = true;
            self.error(
                ErrorCode::BadStreamConfig,
                source(n),
                config.desc_count,
                config.desc_addr,
            );
            return;
        }
        if config.per_segment {
            // Segment-table mode: each group is read when its segment begins.
            self.se[n].table = Vec::new();
            self.begin(n, config, verify);
            return;
        }
        let mut raw = vec![0u8; config.desc_count as usize * stream::DESC_SIZE];
        if self.dma_read(config.desc_addr, &mut raw).is_err() {
            self.se[n].error = true;
            self.error(ErrorCode::DmaReadFault, source(n), 0, config.desc_addr);
            return;
        }
        if stream::validate_table(&raw, config.desc_count, config.buffer_len()).is_err() {
            self.se[n].error = true;
            self.error(
                ErrorCode::BadStreamConfig,
                source(n),
                config.desc_count,
                config.desc_addr,
            );
            return;
        }
        let mut table = Vec::with_capacity(config.desc_count as usize);
        let mut offset = 0u64;
        for chunk in raw.chunks_exact(stream::DESC_SIZE) {
            let Ok(d) = Descriptor::decode(chunk) else {
                return;
            };
            table.push((d.addr, d.len, offset));
            offset += u64::from(d.len);
        }
        self.se[n].table = table;
        self.begin(n, config, verify);
    }

    fn begin(&mut self, n: usize, config: stream::Config, verify: bool) {
        let e = &mut self.se[n];
        e.config = Some(config);
        e.verify = verify;
        e.loaded = None;
        e.running = true;
        e.stopped = false;
        e.error = false;
        e.credits = 0;
        e.seq = 0;
        e.pos = 0;
        e.mismatch = false;
        e.unreported = 0;
        e.first_unreported = None;
        e.tokens = 0;
        e.last_refill = None;
    }

    /// STOP (or quiesce): stop at a burst boundary, write a `Stopped` record for a partial
    /// segment, acknowledge.
    pub(super) fn stop_engine(&mut self, n: usize, ack: bool) {
        if self.se[n].in_flight {
            // The burst being written ends first (STOP takes effect at a burst boundary);
            // `commit_burst` stops the engine then. An acknowledgement asked for by either
            // request is given.
            let e = &mut self.se[n];
            e.stop_pending = Some(ack || e.stop_pending.unwrap_or(false));
            return;
        }
        let was_running = self.se[n].running;
        if was_running && self.se[n].pos > 0 {
            let pos = self.se[n].pos;
            self.finish_segment(n, RecordStatus::Stopped, pos);
        }
        let e = &mut self.se[n];
        e.running = false;
        e.stopped = true;
        e.credits = 0;
        if ack && (was_running || e.config.is_some()) {
            self.raise(cause::se_stopped(n as u32));
        }
    }

    /// `SEn_CREDIT`: segments handed to the engine.
    pub(super) fn credit(&mut self, n: usize, value: u32) {
        let e = &mut self.se[n];
        if !e.running {
            // Credits are zeroed at START; a grant to a stopped engine has nothing to do.
            return;
        }
        let total = u64::from(e.credits) + u64::from(value);
        if total > u64::from(e.seg_count) {
            e.running = false;
            e.error = true;
            e.stopped = true;
            self.error(ErrorCode::CreditOverflow, source(n), value, 0);
            return;
        }
        e.credits = total as u32;
    }

    /// Moves data for engine `n` as its credits and rate allow.
    pub(super) fn service_engine(&mut self, n: usize) -> bool {
        let Some(cfg) = self.se[n].config else {
            return false;
        };
        if self.se[n].in_flight {
            return false;
        }
        if !self.se[n].running || self.se[n].credits == 0 {
            self.se[n].last_refill = None;
            return false;
        }
        let mut allowance = match self.cfg.stream_rate {
            // One burst per service round: the queues get their turn between bursts (and a
            // capture burst is written after the round, without the device's lock).
            None => u64::from(BURST),
            Some(rate) => {
                let now = Instant::now();
                let e = &mut self.se[n];
                let last = *e.last_refill.get_or_insert(now);
                let earned =
                    rate.saturating_mul(now.duration_since(last).as_nanos() as u64) / 1_000_000_000;
                if earned > 0 {
                    e.last_refill = Some(now);
                }
                e.tokens = (e.tokens + earned).min(u64::from(cfg.seg_size));
                let t = e.tokens;
                e.tokens = 0;
                t
            }
        };
        let mut progress = false;
        while allowance > 0 && self.se[n].running && self.se[n].credits > 0 {
            let e = &self.se[n];
            // The pattern is made of 8-byte words, so a throttled engine moves whole words.
            let chunk = (cfg.seg_size - e.pos)
                .min(BURST)
                .min(allowance.min(u64::from(BURST)) as u32)
                & !7;
            if chunk == 0 {
                break;
            }
            let step = self.move_chunk(n, cfg, chunk);
            allowance -= u64::from(chunk);
            progress = true;
            match step {
                Step::Failed => return true,
                // The burst ends (and the segment with it) in `commit_burst`.
                Step::Planned => break,
                Step::Moved => {}
            }
            if self.se[n].pos == cfg.seg_size {
                let status = if self.se[n].mismatch {
                    RecordStatus::PatternMismatch
                } else {
                    RecordStatus::Ok
                };
                self.finish_segment(n, status, cfg.seg_size);
            }
        }
        if self.cfg.stream_rate.is_some() {
            // Unused allowance returns to the bucket (bounded by one segment).
            self.se[n].tokens = allowance.min(u64::from(cfg.seg_size));
        }
        progress
    }

    /// Moves `len` bytes at the current position: a playback reads them now; a capture plans a
    /// [`Burst`] (into `self.bursts`) that is written once the device's lock is released.
    fn move_chunk(&mut self, n: usize, cfg: stream::Config, len: u32) -> Step {
        let e = &mut self.se[n];
        let seg = e.seq % u64::from(cfg.seg_count);
        let start = seg * u64::from(cfg.seg_size) + u64::from(e.pos);
        let seq = e.seq;
        let pos = e.pos;
        let mut scratch = std::mem::take(&mut e.scratch);
        scratch.set_len(len as usize);
        let capture = cfg.direction == Direction::Capture;
        if capture && !self.cfg.bench_data {
            let _ = stream::fill_pattern(&mut scratch, seq, u64::from(pos));
        } else if capture && !self.se[n].bench_filled {
            let _ = stream::fill_pattern(&mut scratch, 0, 0);
            self.se[n].bench_filled = true;
        }
        if cfg.per_segment && self.se[n].loaded != Some(seq) && !self.load_group(n, cfg, seq) {
            self.se[n].scratch = scratch;
            return Step::Failed;
        }
        let inject = std::mem::take(&mut self.faults.stream_error[n]);
        let mut ok = !inject;
        let mut fault_addr = 0;
        if ok {
            // The descriptor pieces that overlap [start, end), in order; each is moved from
            // where the burst enters it to where the burst leaves it.
            let table = std::mem::take(&mut self.se[n].table);
            let end = start + u64::from(len);
            let first = piece_at(&table, self.se[n].next_piece, start);
            // A walk, not a binary search: the pieces lie next to each other in the table, and
            // the table (4,096 entries for a scattered 16 MiB buffer) is out of the caches
            // after a lap of bursts, where each step of a search missed (perf: 80 % of the
            // device's planning was one search's loads).
            let past = first + table[first..].iter().take_while(|p| p.2 < end).count();
            self.se[n].next_piece = past.saturating_sub(1).max(first);
            let overlap = |&(addr, l, off): &(u64, u32, u64)| {
                let from = start.max(off);
                // CAST: within one burst, at most 64 KiB.
                (
                    addr + (from - off),
                    (end.min(off + u64::from(l)) - from) as usize,
                )
            };
            let mut pieces = std::mem::take(&mut self.se[n].pieces);
            pieces.clear();
            if capture {
                // A capture writes them as one bus transaction (in runs of at most MAX_PIECES).
                // Every piece but the first and the last lies whole in the burst: only those
                // two are cut (`overlap`), the others are taken as they are (a burst over a
                // scattered buffer is sixteen pieces, and cutting each cost ~28 instructions).
                let whole = &table[first..past];
                if let [head, middle @ .., tail] = whole {
                    pieces.reserve(whole.len());
                    pieces.push(overlap(head));
                    pieces.extend(middle.iter().map(|&(addr, l, _)| (addr, l as usize)));
                    pieces.push(overlap(tail));
                } else {
                    pieces.extend(whole.iter().map(overlap));
                }
            } else {
                // A playback reads them one by one.
                let mut done = 0usize;
                for (addr, take) in table[first..past].iter().map(overlap) {
                    if self
                        .dma_read(addr, &mut scratch[done..done + take])
                        .is_err()
                    {
                        ok = false;
                        fault_addr = addr;
                        break;
                    }
                    done += take;
                }
            }
            self.se[n].table = table;
            if capture {
                self.se[n].in_flight = true;
                self.bursts.push(Burst {
                    n,
                    epoch: self.epoch.load(Ordering::Relaxed),
                    seq,
                    pos,
                    len,
                    scratch,
                    pieces,
                    outcome: BurstOutcome::Planned,
                });
                return Step::Planned;
            }
            self.se[n].pieces = pieces;
        } else {
            self.counters.faults_injected += 1;
        }
        if ok
            && !capture
            && self.se[n].verify
            && !self.cfg.bench_data
            && stream::verify_pattern(&scratch, seq, u64::from(pos))
                .ok()
                .flatten()
                .is_some()
        {
            self.se[n].mismatch = true;
        }
        self.se[n].scratch = scratch;
        if !ok {
            self.stop_on_fault(n, capture, seq, pos, fault_addr);
            return Step::Failed;
        }
        self.advance(n, len);
        Step::Moved
    }

    /// The end of a burst: the engine's position moves on by `len` bytes.
    fn advance(&mut self, n: usize, len: u32) {
        self.se[n].pos += len;
        self.counters.bytes_streamed += u64::from(len);
    }

    /// A DMA fault at `fault_addr` stops the engine with a `DmaError` record for the segment
    /// with sequence `seq` (moved up to `pos`) and latches the error.
    fn stop_on_fault(&mut self, n: usize, capture: bool, seq: u64, pos: u32, fault_addr: u64) {
        let code = if capture {
            ErrorCode::DmaWriteFault
        } else {
            ErrorCode::DmaReadFault
        };
        self.finish_segment(n, RecordStatus::DmaError, pos);
        let e = &mut self.se[n];
        e.running = false;
        e.error = true;
        e.stopped = true;
        self.error(code, source(n), seq as u32, fault_addr);
    }

    /// The end of a capture burst written without the lock: gives the engine its buffers back,
    /// moves its position (writing the segment's record when the burst ended it) or stops it on
    /// the fault, then applies a STOP that waited for the burst. A burst of an engine that was
    /// reset (or a device removed) since its plan changes nothing.
    pub(super) fn commit_burst(&mut self, b: Burst) {
        let n = b.n;
        if self.removed
            || b.epoch != self.epoch.load(Ordering::Relaxed)
            || !self.se.get(n).is_some_and(|e| e.in_flight)
        {
            return;
        }
        let e = &mut self.se[n];
        e.in_flight = false;
        e.scratch = b.scratch;
        e.pieces = b.pieces;
        match b.outcome {
            BurstOutcome::Written => {
                self.advance(n, b.len);
                if let Some(cfg) = self.se[n].config
                    && self.se[n].pos == cfg.seg_size
                {
                    // A capture never sets `mismatch`: only a playback verifies.
                    self.finish_segment(n, RecordStatus::Ok, cfg.seg_size);
                }
            }
            BurstOutcome::Fault(addr) => self.stop_on_fault(n, true, b.seq, b.pos, addr),
            // The epoch changed (checked above), or the plan was never written: nothing moved.
            BurstOutcome::Cancelled | BurstOutcome::Planned => {}
        }
        if let Some(ack) = self.se[n].stop_pending.take() {
            self.stop_engine(n, ack);
        }
    }

    /// Segment-table mode: reads and validates the group of the segment with sequence `seq` as
    /// the engine begins it. A group the device cannot use stops the engine with
    /// `BadStreamConfig` (or a read fault) and a `DmaError` record.
    fn load_group(&mut self, n: usize, cfg: stream::Config, seq: u64) -> bool {
        let slot = seq % u64::from(cfg.seg_count);
        let entries = cfg.desc_count as usize;
        let addr = cfg.desc_addr + slot * (entries * stream::DESC_SIZE) as u64;
        let mut raw = vec![0u8; entries * stream::DESC_SIZE];
        let code = if self.dma_read(addr, &mut raw).is_err() {
            Some(ErrorCode::DmaReadFault)
        } else if let Ok(group) = stream::validate_group(&raw, cfg.desc_count, cfg.seg_size) {
            let base = slot * u64::from(cfg.seg_size);
            let mut off = base;
            let mut table = std::mem::take(&mut self.se[n].table);
            table.clear();
            for (a, l) in group {
                table.push((a, l, off));
                off += u64::from(l);
            }
            self.se[n].table = table;
            self.se[n].loaded = Some(seq);
            None
        } else {
            Some(ErrorCode::BadStreamConfig)
        };
        let Some(code) = code else { return true };
        self.finish_segment(n, RecordStatus::DmaError, 0);
        let e = &mut self.se[n];
        e.running = false;
        e.error = true;
        e.stopped = true;
        self.error(code, source(n), seq as u32, addr);
        false
    }

    /// Writes the record of the current segment and moves to the next one.
    fn finish_segment(&mut self, n: usize, status: RecordStatus, byte_count: u32) {
        let Some(cfg) = self.se[n].config else { return };
        let e = &self.se[n];
        let Ok(ring) = Ring::new(cfg.seg_count) else {
            return;
        };
        let modulus = 2 * u64::from(cfg.seg_count);
        let Ok(idx) = ring.index((e.seq % modulus) as u32) else {
            return;
        };
        let rec = Record {
            seq: e.seq,
            byte_count,
            status,
            owner: ring.owner(idx),
        };
        let mut bytes = [0u8; stream::RECORD_SIZE];
        if rec.encode(&mut bytes).is_err() {
            return;
        }
        let addr = cfg.rec_addr + u64::from(ring.slot(idx)) * stream::RECORD_SIZE as u64;
        let body = self.dma_write(addr, &bytes[..stream::RECORD_OWNER_OFFSET]);
        // A segment's data and its record body are visible before the owner byte (§8.3).
        fence(Ordering::Release);
        let owner = body.and_then(|()| {
            self.dma_write(
                addr + stream::RECORD_OWNER_OFFSET as u64,
                &bytes[stream::RECORD_OWNER_OFFSET..],
            )
        });
        let e = &mut self.se[n];
        e.seq += 1;
        e.pos = 0;
        e.mismatch = false;
        e.credits = e.credits.saturating_sub(1);
        if owner.is_err() {
            e.running = false;
            e.error = true;
            e.stopped = true;
            self.error(ErrorCode::DmaWriteFault, source(n), rec.seq as u32, addr);
            return;
        }
        self.counters.segments += 1;
        e.unreported += 1;
        if e.unreported == 1 {
            e.first_unreported = Some(Instant::now());
        }
        if moderation_due(e.modr, e.unreported, e.first_unreported, Instant::now()) {
            e.unreported = 0;
            e.first_unreported = None;
            self.raise(cause::se_segment(n as u32));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_divide_every_legal_segment_size() {
        for log in 12..=30u32 {
            let seg = 1u32 << log;
            assert!(seg.is_multiple_of(BURST) || BURST.is_multiple_of(seg));
        }
    }

    #[test]
    fn a_burst_finds_its_first_piece_from_the_hint_or_by_search() {
        // Three pieces of 4 KiB at buffer offsets 0, 4096, 8192.
        let table = [
            (0x10_000, 4096, 0),
            (0x30_000, 4096, 4096),
            (0x20_000, 4096, 8192),
        ];
        for start in [0u64, 100, 4095, 4096, 8191, 8192, 12_287] {
            let want = (start / 4096) as usize;
            for hint in [0, 1, 2, 3, 99] {
                assert_eq!(piece_at(&table, hint, start), want, "{start} {hint}");
            }
        }
        assert_eq!(piece_at(&table, 0, 12_288), 3, "past the end: none");
        assert_eq!(piece_at(&[], 0, 0), 0);
    }

    #[test]
    fn the_burst_buffer_starts_on_a_page_and_keeps_its_bytes_when_its_length_changes() {
        let mut s = Scratch::default();
        s.set_len(100);
        assert_eq!(s.len(), 100);
        assert_eq!(s.as_ptr().align_offset(Scratch::ALIGN), 0);
        s.copy_from_slice(&[7; 100]);
        let at = s.as_ptr();
        s.set_len(BURST as usize);
        assert_eq!(s.as_ptr(), at, "no reallocation up to the largest burst");
        assert_eq!((&s[..100], &s[100..200]), (&[7; 100][..], &[0; 100][..]));
        s.set_len(8);
        assert_eq!(&s[..], &[7; 8]);
        // A burst longer than the largest one (never planned) still works, aligned.
        s.set_len(BURST as usize + 16);
        assert_eq!(s.as_ptr().align_offset(Scratch::ALIGN), 0);
        assert_eq!((&s[..8], s.len()), (&[7; 8][..], BURST as usize + 16));
    }
}
