//! Moving segments: credits granted to the device (each with its hand-over flush or mapping),
//! records consumed from the device (owner byte read with `Acquire`, every field checked before
//! use), and the application's side, `WAIT` and `RELEASE`.
//!
//! Runs at `DISPATCH_LEVEL` under the device's spin lock. No `unsafe`: DMA goes through
//! [`crate::dma`], registers through [`crate::sys::Mmio`].

use crate::trace::{self, Value};
use alloc::vec::Vec;
use core::sync::atomic::{Ordering, fence};

use rhca_hw::ioctl::{SegmentInfo, StreamWaitOut, WAIT_FLAG_ENDED};
use rhca_hw::regs::{db, se};
use rhca_hw::stream::{self, Direction, Record, RecordStatus};

use super::{Access, EndReason, Stream, StreamEngines, seg_index, take_ready, write_entries};
use crate::dma;
use crate::hca::{HcaError, gone};
use crate::sys::AtDispatch;
use crate::sys::wdf::File;

impl StreamEngines {
    /// Hands the device the next `k` segments (sequences `granted ..`): each one's hand-over
    /// (mapping, flush or copy), then one release fence and one credit doorbell. Returns how
    /// many were handed over (fewer when a mapping failed).
    pub(super) fn grant(&mut self, s: &mut Stream, segments: u32, at: &AtDispatch<'_>) -> u64 {
        let mut done = 0u32;
        for _ in 0..segments {
            let seq = s.granted + u64::from(done);
            let idx = seg_index(seq, s.count);
            let ok = match (&mut s.access, s.dir) {
                (Access::FromMdl(_), d) => {
                    // Cache maintenance before the transfer: clean for playback, invalidate for
                    // capture (no operation on coherent x86/x64).
                    s.user.cache_flush_segment(idx, d == Direction::Capture);
                    true
                }
                (Access::Persistent(_), Direction::Capture) => {
                    s.user.cache_flush_segment(idx, true);
                    true
                }
                (Access::Persistent(_), Direction::Playback) => {
                    // The application's bytes reach the device's view (a bounce or Verifier
                    // double buffer is refreshed) before the device may read them.
                    crate::hooks::skip_persistent_flush()
                        || s.user.flush_segment(&s.adapter, idx, false).is_ok()
                }
                (Access::PerSegment { maps, ctx, group }, d) => {
                    let dma_dir = match d {
                        Direction::Capture => dma::Direction::FromDevice,
                        Direction::Playback => dma::Direction::ToDevice,
                    };
                    match s.adapter.map_range(&s.user, idx, 1, dma_dir, ctx, at) {
                        Ok(m) => {
                            let entries: Vec<(u64, u32)> = m.elements().collect();
                            if entries.len() > *group as usize {
                                false
                            } else {
                                write_entries(&s.table, (idx * *group) as usize, &entries);
                                maps[idx as usize] = Some(m);
                                true
                            }
                        }
                        Err(_) => false,
                    }
                }
                (Access::Staging(pages), Direction::Playback) => {
                    s.user.copy_to_common(idx, &pages[idx as usize], 0);
                    true
                }
                (Access::Staging(_), Direction::Capture) => true,
            };
            if !ok {
                break;
            }
            self.stats.flushes += 1;
            done += 1;
        }
        if done > 0 {
            s.granted += u64::from(done);
            // Segment bytes, descriptor groups and cache maintenance are complete before the
            // device learns of the credit: the release fence pairs with the device's reads
            // after it sees the doorbell.
            fence(Ordering::Release);
            if let Ok(o) = db::se_credit(s.engine) {
                self.regs.write(o, done);
            }
        }
        u64::from(done)
    }

    /// The DPC's stream work: consume the records of every stream (owner byte read with
    /// `Acquire` first), make completed segments visible, notice engines that stopped or
    /// failed. Returns whether a stream is waiting to be released (enqueue the work item).
    pub fn poll(&mut self, at: &AtDispatch<'_>) -> bool {
        let mut stopped = false;
        for n in 0..self.streams.len() {
            let Some(mut s) = self.streams[n].take() else {
                continue;
            };
            self.poll_records(&mut s, at);
            let st = self.se_reg(n as u32, se::STATUS);
            self.streams[n] = Some(s);
            if gone(st) {
                self.end(n as u32, EndReason::Removed);
            } else if se::STATUS_ERROR.is_set(st) {
                self.end(n as u32, EndReason::DeviceError);
            }
            if self.streams[n].as_ref().is_some_and(|s| s.ending.is_some()) {
                stopped = true;
            }
        }
        stopped
    }

    pub(super) fn poll_records(&mut self, s: &mut Stream, at: &AtDispatch<'_>) {
        loop {
            let modulus = 2 * u64::from(s.count);
            let Ok(idx) = s.ring.index((s.next_record % modulus) as u32) else {
                return;
            };
            let off = s.ring.slot(idx) as usize * stream::RECORD_SIZE;
            let owner = s.records.load_acquire(off + stream::RECORD_OWNER_OFFSET);
            if !s.ring.is_owned(idx, owner & stream::RECORD_OWNER_BIT != 0) {
                return;
            }
            let mut b = [0u8; stream::RECORD_SIZE];
            s.records.read(off, &mut b);
            // A record is accepted only for a segment the device holds a credit for, with the
            // expected sequence and a sane byte count; anything else is a hostile or broken
            // device, and the stream ends without touching the buffer again.
            let rec = match Record::decode(&b) {
                Ok(r)
                    if s.next_record < s.granted
                        && r.check(s.ring, idx, s.next_record, s.seg).is_ok() =>
                {
                    r
                }
                _ => {
                    self.stats.errors += 1;
                    self.stats.hostile += 1;
                    trace::emit(
                        &trace::HOSTILE_CQE,
                        &[
                            Value::Str("stream-record"),
                            Value::Str(
                                "a record for a segment the device holds no credit for, or out of sequence",
                            ),
                            Value::U64(self.stats.hostile),
                        ],
                    );
                    if s.ending.is_none() {
                        s.ending = Some(EndReason::Hostile);
                    }
                    return;
                }
            };
            let i = seg_index(rec.seq, s.count);
            match (&mut s.access, s.dir) {
                (Access::FromMdl(_), Direction::Capture) => {
                    s.user.cache_flush_segment(i, true);
                }
                (Access::Persistent(_), Direction::Capture) => {
                    // The device finished this segment and holds no credit for it: its bytes
                    // are copied out of a bounce or Verifier double buffer (or invalidated in
                    // the caches) before the application may see them.
                    if !crate::hooks::skip_persistent_flush()
                        && s.user.flush_segment(&s.adapter, i, true).is_err()
                    {
                        self.stats.errors += 1;
                    }
                }
                (Access::PerSegment { maps, .. }, _) => {
                    if let Some(m) = maps[i as usize].take() {
                        m.release(at);
                    }
                }
                (Access::Staging(pages), Direction::Capture) => {
                    s.user.copy_from_common(i, &pages[i as usize], 0);
                }
                (Access::FromMdl(_) | Access::Persistent(_) | Access::Staging(_), _) => {}
            }
            if s.dir == Direction::Capture || matches!(s.access, Access::PerSegment { .. }) {
                self.stats.flushes += 1;
            }
            s.next_record += 1;
            s.bytes += u64::from(rec.byte_count);
            self.stats.bytes += u64::from(rec.byte_count);
            match rec.status {
                RecordStatus::Ok => self.stats.segments += 1,
                RecordStatus::PatternMismatch | RecordStatus::Stopped => {
                    self.stats.errors += u64::from(rec.status == RecordStatus::PatternMismatch);
                }
                RecordStatus::DmaError => {
                    self.stats.errors += 1;
                    if s.ending.is_none() {
                        s.ending = Some(EndReason::DeviceError);
                    }
                }
            }
            let ready = match s.dir {
                Direction::Capture => SegmentInfo {
                    sequence: rec.seq,
                    index: i,
                    bytes: rec.byte_count,
                    status: rec.status as u32,
                    reserved0: 0,
                },
                Direction::Playback => SegmentInfo {
                    sequence: rec.seq + u64::from(s.count),
                    index: i,
                    bytes: s.seg,
                    status: rec.status as u32,
                    reserved0: 0,
                },
            };
            // Every segment the device gives back goes to the application, with its status and
            // byte count (a failed or stopped capture segment says so), so that RELEASE
            // accounting holds.
            s.ready.push_back(ready);
        }
    }

    /// `RELEASE`: the application hands back `count` segments from `first`, the oldest it holds.
    ///
    /// # Errors
    /// [`HcaError::NoStream`] (no stream, and none ended on this handle),
    /// [`HcaError::AccessDenied`] (another handle's
    /// stream), [`HcaError::InvalidParameter`] (not the oldest held, or more than held).
    pub fn release(
        &mut self,
        n: u32,
        file: File,
        first: u64,
        count: u32,
        at: &AtDispatch<'_>,
    ) -> Result<(), HcaError> {
        let Some(mut s) = self.streams.get_mut(n as usize).and_then(Option::take) else {
            // Segments of a stream that has ended go nowhere: handing them back is harmless for
            // the handle that ran it, and an error for anyone else.
            return match self.leftovers.get(n as usize) {
                Some(Some(l)) if l.file == file => Ok(()),
                _ => Err(HcaError::NoStream),
            };
        };
        let r = if s.file != file {
            Err(HcaError::AccessDenied)
        } else if count == 0
            || first != s.app_oldest
            || u64::from(count) > s.app_next - s.app_oldest
        {
            Err(HcaError::InvalidParameter)
        } else {
            s.app_oldest += u64::from(count);
            if s.ending.is_none() {
                let granted = self.grant(&mut s, count, at);
                if granted < u64::from(count) {
                    s.ending = Some(EndReason::NoResources);
                }
            }
            Ok(())
        };
        let ending = s.ending.is_some() && !s.stop_written;
        self.streams[n as usize] = Some(s);
        if ending {
            let why = self.streams[n as usize]
                .as_ref()
                .and_then(|s| s.ending)
                .unwrap_or(EndReason::Stopped);
            self.end(n, why);
        }
        r
    }

    /// `WAIT`: up to `max` ready segments of engine `n`. `Ok(None)`: none ready yet (pend the
    /// request until some are).
    ///
    /// # Errors
    /// [`HcaError::AccessDenied`] for another handle's stream.
    pub fn wait(
        &mut self,
        n: u32,
        file: Option<File>,
        max: u32,
    ) -> Result<Option<StreamWaitOut>, HcaError> {
        let Some(s) = self.streams.get_mut(n as usize).and_then(Option::as_mut) else {
            // No stream: the segments a released stream left undelivered go to its handle
            // first, the last of them flagged as the end; otherwise the wait ends at once.
            let strategy = self.stats.strategy as u32;
            let mut out = StreamWaitOut {
                engine: n,
                strategy,
                flags: WAIT_FLAG_ENDED,
                ..StreamWaitOut::default()
            };
            if let Some(Some(left)) = self.leftovers.get_mut(n as usize)
                && file.is_none_or(|f| f == left.file)
            {
                out.count = take_ready(&mut left.ready, &mut out, max);
                if !left.ready.is_empty() {
                    out.flags = 0;
                }
            }
            return Ok(Some(out));
        };
        if file.is_some_and(|f| f != s.file) {
            return Err(HcaError::AccessDenied);
        }
        if s.ready.is_empty() {
            return Ok(None);
        }
        let mut out = StreamWaitOut {
            engine: n,
            strategy: s.strategy() as u32,
            ..StreamWaitOut::default()
        };
        out.count = take_ready(&mut s.ready, &mut out, max);
        s.app_next += u64::from(out.count);
        Ok(Some(out))
    }

    /// Consumes the records engine `n`'s device has written since the last look, when its
    /// stream has no segment ready: a WAIT looks at the ring itself before it pends, so it does
    /// not wait for an interrupt the moderation holds back (up to 1 ms for fewer than a quarter
    /// ring of segments). Call under the lock.
    pub fn poll_stream(&mut self, n: u32, at: &AtDispatch<'_>) {
        let Some(slot) = self.streams.get_mut(n as usize) else {
            return;
        };
        if slot.as_ref().is_none_or(|s| !s.ready.is_empty()) {
            return;
        }
        if let Some(mut s) = slot.take() {
            self.poll_records(&mut s, at);
            self.streams[n as usize] = Some(s);
        }
    }

    /// Whether any engine has a stream with segments ready.
    #[must_use]
    pub fn any_ready(&self) -> bool {
        self.streams.iter().flatten().any(|s| !s.ready.is_empty())
    }

    /// Whether engine `n` has a stream with segments ready.
    #[must_use]
    pub fn has_ready(&self, n: u32) -> bool {
        self.streams
            .get(n as usize)
            .and_then(Option::as_ref)
            .is_some_and(|s| !s.ready.is_empty())
    }
}
