//! `rhca-tests`: end-to-end tests of RHCA.
//!
//! The tests in `tests/` run the real driver on the simulated machine (as the driver and
//! wdk-sim issues land) and cross-check the documents that define RHCA against the code: the
//! register map in `docs/device.md` against `rhca_hw::regs`. This library holds the helpers
//! they share.

// The simulated machine runs on Linux; on Windows the driver is a kernel binary, not a library
// this crate could link (see Cargo.toml).
#![cfg(not(windows))]

pub mod inf;
pub mod scenario;

use std::path::PathBuf;

/// The workspace root (the parent of this crate's directory).
#[must_use]
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default()
}

/// Parses a hexadecimal (`0x…`) or decimal number as written in the datasheet tables,
/// ignoring `_` separators.
#[must_use]
pub fn parse_number(s: &str) -> Option<u64> {
    let t = s.trim().trim_matches('`').replace('_', "");
    t.strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .map_or_else(|| t.parse().ok(), |h| u64::from_str_radix(h, 16).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_parse_as_written() {
        assert_eq!(parse_number("0x1C"), Some(0x1C));
        assert_eq!(parse_number("`0xFFFF_FFFF`"), Some(0xFFFF_FFFF));
        assert_eq!(parse_number("42"), Some(42));
        assert_eq!(parse_number("x"), None);
    }
}

/// A user-mode stream client over the simulated machine's handle API.
///
/// START with a circular buffer of the process's memory, WAIT, RELEASE, STOP: what an
/// application does, and what `rhca-lab` and the tests use.
pub mod stream {
    use std::time::Duration;

    use rhca_hw::ioctl::{
        self, SegmentInfo, Strategy, StreamReleaseIn, StreamStartIn, StreamStopIn, StreamWaitIn,
        StreamWaitOut, WAIT_FLAG_ENDED,
    };
    use rhca_hw::stream::{self as hw, Direction, RecordStatus};

    /// Most segments a WAIT asks for: all one reply can hold.
    #[expect(clippy::cast_possible_truncation, reason = "MAX_WAIT_SEGMENTS is 64")]
    const WAIT_MAX: u32 = rhca_hw::ioctl::MAX_WAIT_SEGMENTS as u32;
    use wdk_sim::wdf::host::{Handle, IoResult, Pending, Process};
    use wdk_sim::{Machine, NTSTATUS, STATUS_SUCCESS};

    /// How long a WAIT may take before the client calls the stream stalled.
    pub const WAIT_LIMIT: Duration = Duration::from_secs(20);

    /// A running stream, from the application's side.
    pub struct Client<'a> {
        /// The process.
        pub p: &'a Process,
        /// The handle.
        pub h: &'a Handle,
        /// The machine (to read and write the process's memory).
        pub m: &'a Machine,
        /// Engine.
        pub engine: u32,
        /// The circular buffer.
        pub va: usize,
        /// Bytes per segment.
        pub seg: u32,
        /// Segments.
        pub count: u32,
        /// Direction.
        pub dir: Direction,
        /// The pending START.
        pub start: Pending,
    }

    /// What a run saw.
    #[derive(Debug, Default, Clone, PartialEq, Eq)]
    pub struct Outcome {
        /// Segments whose contents were verified (capture) or that the device verified
        /// (playback with VERIFY).
        pub verified: u64,
        /// Segments with a wrong pattern or a non-Ok status.
        pub bad: u64,
        /// Bytes moved.
        pub bytes: u64,
        /// The strategy the driver reported.
        pub strategy: u32,
        /// The stream ended before the run was over.
        pub ended_early: bool,
        /// The run stopped because a WAIT did not complete in time or a request failed (what
        /// happened); the stream is still there to STOP.
        pub stalled: Option<String>,
    }

    impl<'a> Client<'a> {
        /// Starts a stream. `Err` carries the status of a START that failed at once.
        ///
        /// # Errors
        /// The START's status.
        ///
        /// # Panics
        /// Never for a valid request structure.
        #[expect(clippy::too_many_arguments, reason = "the fields of one START request")]
        pub fn start(
            p: &'a Process,
            h: &'a Handle,
            m: &'a Machine,
            engine: u32,
            dir: Direction,
            seg: u32,
            count: u32,
            strategy: Strategy,
            flags: u32,
        ) -> Result<Self, NTSTATUS> {
            let len = seg as usize * count as usize;
            let va = p.alloc(len);
            let input = StreamStartIn {
                engine,
                direction: dir as u32,
                segment_size: seg,
                strategy: strategy as u32,
                flags,
                ..StreamStartIn::default()
            };
            let mut b = [0u8; StreamStartIn::SIZE];
            input.encode(&mut b).expect("encode");
            let code = match dir {
                Direction::Capture => ioctl::IOCTL_RHCA_STREAM_START_CAPTURE,
                Direction::Playback => ioctl::IOCTL_RHCA_STREAM_START_PLAYBACK,
            };
            let start = p
                .ioctl_with_buffer(h, code, &b, va, len)
                .map_err(|_| wdk_sim::STATUS_UNSUCCESSFUL)?;
            if let Some(r) = start.wait(Duration::ZERO) {
                return Err(r.status);
            }
            Ok(Self {
                p,
                h,
                m,
                engine,
                va,
                seg,
                count,
                dir,
                start,
            })
        }

        /// WAIT for up to `max` segments.
        ///
        /// # Panics
        /// When the request fails to complete within [`WAIT_LIMIT`] or fails.
        #[must_use]
        pub fn wait(&self, max: u32) -> StreamWaitOut {
            self.try_wait(max).unwrap_or_else(|e| panic!("{e}"))
        }

        /// WAIT for up to `max` segments; an error says what went wrong (not completed within
        /// [`WAIT_LIMIT`], a failure status, a malformed reply).
        ///
        /// # Errors
        /// As above.
        pub fn try_wait(&self, max: u32) -> Result<StreamWaitOut, String> {
            let mut b = [0u8; StreamWaitIn::SIZE];
            StreamWaitIn {
                engine: self.engine,
                max_segments: max,
                ..StreamWaitIn::default()
            }
            .encode(&mut b)
            .map_err(|e| format!("WAIT encode: {e}"))?;
            let pend = self
                .p
                .ioctl_async(
                    self.h,
                    ioctl::IOCTL_RHCA_STREAM_WAIT,
                    &b,
                    StreamWaitOut::SIZE,
                )
                .map_err(|e| format!("WAIT: {e}"))?;
            let Some(r) = pend.wait(WAIT_LIMIT) else {
                // Take the request back so that nothing is left pending on the handle.
                let _ = pend.cancel();
                return Err(format!(
                    "WAIT on engine {} did not complete within {WAIT_LIMIT:?}",
                    self.engine
                ));
            };
            if r.status != STATUS_SUCCESS {
                return Err(format!("WAIT status {:#x}", r.status));
            }
            StreamWaitOut::decode(&r.output).map_err(|e| format!("WAIT reply: {e}"))
        }

        /// RELEASE `count` segments from `first`.
        ///
        /// # Panics
        /// When the request does not complete.
        #[must_use]
        pub fn release(&self, first: u64, count: u32) -> NTSTATUS {
            let mut b = [0u8; StreamReleaseIn::SIZE];
            StreamReleaseIn {
                engine: self.engine,
                count,
                first_sequence: first,
                ..StreamReleaseIn::default()
            }
            .encode(&mut b)
            .expect("encode");
            self.p
                .ioctl(self.h, ioctl::IOCTL_RHCA_STREAM_RELEASE, &b, 0)
                .expect("RELEASE")
                .status
        }

        /// STOP (returns once the stream has been released) and the START's result.
        ///
        /// # Panics
        /// When either request does not complete.
        #[must_use]
        pub fn stop(self) -> (NTSTATUS, IoResult) {
            self.try_stop().expect("STOP")
        }

        /// As [`Client::stop`], for a caller that reports a machine stopped by a bug check
        /// (the STOP's own path can be where a broken driver bug checks) instead of panicking.
        ///
        /// # Errors
        /// Why the STOP request could not be sent or completed.
        ///
        /// # Panics
        /// When the START request does not complete after a STOP that did.
        pub fn try_stop(self) -> Result<(NTSTATUS, IoResult), String> {
            let mut b = [0u8; StreamStopIn::SIZE];
            StreamStopIn {
                engine: self.engine,
                ..StreamStopIn::default()
            }
            .encode(&mut b)
            .expect("encode");
            let st = self
                .p
                .ioctl(self.h, ioctl::IOCTL_RHCA_STREAM_STOP, &b, 0)
                .map_err(|e| format!("STOP: {e:?}"))?
                .status;
            Ok((st, self.finish()))
        }

        /// The START's result (waits for it).
        ///
        /// # Panics
        /// When it never completes.
        #[must_use]
        pub fn finish(self) -> IoResult {
            self.start.wait(WAIT_LIMIT).expect("START completes")
        }

        const fn segment_va(&self, idx: u32) -> usize {
            self.va + idx as usize * self.seg as usize
        }

        /// Reads segment `idx` of the buffer.
        #[must_use]
        pub fn read_segment(&self, idx: u32) -> Vec<u8> {
            let mut v = vec![0u8; self.seg as usize];
            let _ = self.m.cpu_read(self.segment_va(idx), &mut v);
            v
        }

        /// Fills segment `idx` with the pattern of sequence `seq`.
        ///
        /// # Panics
        /// Never: segments are whole pages.
        pub fn fill_segment(&self, idx: u32, seq: u64) {
            let mut v = vec![0u8; self.seg as usize];
            hw::fill_pattern(&mut v, seq, 0).expect("pattern");
            let _ = self.m.cpu_write(self.segment_va(idx), &v);
        }

        /// Hands segments back as fast as they come, without looking at them, until `total`
        /// segments have been moved (a benchmark's application). Returns the bytes moved.
        ///
        /// # Panics
        /// When a WAIT or RELEASE fails.
        #[must_use]
        pub fn drain(&self, total: u64) -> u64 {
            let (mut done, mut bytes) = (0u64, 0u64);
            while done < total {
                // Exactly `total`: a benchmark divides by it.
                let want = u32::try_from(total - done).map_or(WAIT_MAX, |n| n.min(WAIT_MAX));
                let w = self.wait(want);
                if w.count == 0 || w.flags & WAIT_FLAG_ENDED != 0 {
                    break;
                }
                for s in &w.segments[..w.count as usize] {
                    bytes += u64::from(s.bytes);
                }
                done += u64::from(w.count);
                let st = self.release(w.segments[0].sequence, w.count);
                assert_eq!(st, STATUS_SUCCESS, "RELEASE status");
            }
            bytes
        }

        /// Runs until `total` segments have been moved: capture verifies each segment's
        /// pattern; playback fills each segment before releasing it and counts the statuses the
        /// device reported (with VERIFY, a wrong pattern shows as `PatternMismatch`). Stops
        /// early when the stream ends, or when a WAIT or RELEASE fails
        /// ([`Outcome::stalled`] says how).
        #[must_use]
        pub fn run(&self, total: u64) -> Outcome {
            let mut o = Outcome::default();
            let mut done = 0u64;
            while done < total {
                let w = match self.try_wait(WAIT_MAX) {
                    Ok(w) => w,
                    Err(e) => {
                        o.stalled = Some(e);
                        break;
                    }
                };
                o.strategy = w.strategy;
                if w.count == 0 {
                    o.ended_early = w.flags & WAIT_FLAG_ENDED != 0;
                    if o.ended_early {
                        break;
                    }
                    continue;
                }
                let got: Vec<SegmentInfo> = w.segments[..w.count as usize].to_vec();
                for s in &got {
                    match self.dir {
                        Direction::Capture => {
                            let data = self.read_segment(s.index);
                            let ok = s.status == RecordStatus::Ok as u32
                                && s.bytes == self.seg
                                && hw::verify_pattern(&data, s.sequence, 0) == Ok(None);
                            if ok {
                                o.verified += 1;
                            } else {
                                o.bad += 1;
                            }
                            o.bytes += u64::from(s.bytes);
                            done += 1;
                        }
                        Direction::Playback => {
                            // The status is that of the segment's previous play (if any).
                            if s.sequence >= u64::from(self.count) {
                                if s.status == RecordStatus::Ok as u32 {
                                    o.verified += 1;
                                } else {
                                    o.bad += 1;
                                }
                                o.bytes += u64::from(self.seg);
                                done += 1;
                            }
                            self.fill_segment(s.index, s.sequence);
                        }
                    }
                }
                if w.flags & WAIT_FLAG_ENDED != 0 {
                    // The last segments of a stream that ended: nothing to hand back.
                    o.ended_early = true;
                    break;
                }
                let st = self.release(got[0].sequence, w.count);
                if st != STATUS_SUCCESS {
                    o.stalled = Some(format!("RELEASE status {st:#x}"));
                    break;
                }
            }
            o
        }
    }
}
