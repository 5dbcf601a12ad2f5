//! A stream's DMA resources: built at `PASSIVE_LEVEL` with the first strategy that gets them
//! (`Stream::build`), and released there, in teardown order, once the engine has stopped
//! ([`finish`], [`discard`]). No `unsafe`: DMA goes through [`crate::dma`].

use crate::trace::{self, Value};
use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec::Vec;

use rhca_hw::ioctl::Strategy;
use rhca_hw::regs;
use rhca_hw::ring::Ring;
use rhca_hw::stream::{self, Direction};

use super::{
    Access, EndReason, Ended, Finished, Outcome, StartOwner, StartParams, Stream, leak_on_removal,
    write_entries,
};
use crate::dma::{self, Adapter, CommonBuffer, DmaError, TransferContext, UserBuffer};
use crate::hca::HcaError;
use crate::sys::wdf::Request;

impl Stream {
    /// Builds a stream's DMA resources for `user` (the START request's buffer) with the strategy
    /// `p` asks for, or the best correct one. Call at `PASSIVE_LEVEL`, without the device lock.
    ///
    /// # Errors
    /// [`HcaError::NotSupported`] for a forced strategy the platform or adapter cannot do correctly;
    /// [`HcaError::NoResources`] when no strategy can get its resources. The buffer and
    /// the adapter are released then, and the START request comes back, still pending.
    pub fn build(
        adapter: Adapter,
        user: UserBuffer,
        caps: &regs::Caps,
        p: StartParams,
    ) -> Result<Box<Self>, (Request, HcaError)> {
        let (access, table, records, ring) = match Self::resources(&adapter, &user, caps, p) {
            Ok(r) => r,
            Err(st) => {
                // The adapter goes first: nothing it made refers to the pages any more.
                drop(adapter);
                return Err((user.into_request(), st));
            }
        };
        let user_segments = user.segments();
        Ok(Box::new(Self {
            access,
            table,
            records,
            file: user.request().file(),
            seg: user.segment_size(),
            count: user.segments(),
            user,
            adapter,
            engine: p.engine,
            dir: p.dir,
            verify: p.verify,
            ring,
            next_record: 0,
            granted: 0,
            ready: VecDeque::with_capacity(user_segments as usize),
            app_oldest: 0,
            app_next: 0,
            bytes: 0,
            ending: None,
            stop_written: false,
            cancel_ran: false,
            // Room for one STOP, so that the usual one waits without an allocation under the
            // lock.
            stop_waiters: Vec::with_capacity(1),
        }))
    }

    /// The first strategy in `p`'s order that gets its resources: its access, descriptor
    /// table, record ring memory and ring arithmetic.
    fn resources(
        adapter: &Adapter,
        user: &UserBuffer,
        caps: &regs::Caps,
        p: StartParams,
    ) -> Result<(Access, CommonBuffer, CommonBuffer, Ring), HcaError> {
        let order: &[Strategy] = match p.strategy {
            Strategy::Auto => &[
                Strategy::CommonBufferFromMdl,
                Strategy::PersistentSg,
                Strategy::PerSegment,
                Strategy::Staging,
            ],
            Strategy::CommonBufferFromMdl => &[Strategy::CommonBufferFromMdl],
            Strategy::PersistentSg => &[Strategy::PersistentSg],
            Strategy::PerSegment => &[Strategy::PerSegment],
            Strategy::Staging => &[Strategy::Staging],
        };
        let max_desc = 1u64 << caps.log_max_desc;
        let mut last = HcaError::NotSupported;
        for &s in order {
            match Self::access(adapter, user, s, p.dir, max_desc) {
                Ok((access, table)) => {
                    let records = adapter
                        .common_buffer((user.segments() as usize * stream::RECORD_SIZE) as u32)
                        .map_err(|_| HcaError::NoResources)?;
                    let ring =
                        Ring::new(user.segments()).map_err(|_| HcaError::InvalidParameter)?;
                    return Ok((access, table, records, ring));
                }
                Err(st) => last = st,
            }
        }
        Err(last)
    }

    /// The access and descriptor table of strategy `s`, or why it cannot be used here.
    fn access(
        adapter: &Adapter,
        user: &UserBuffer,
        s: Strategy,
        dir: Direction,
        max_desc: u64,
    ) -> Result<(Access, CommonBuffer), HcaError> {
        let table_for = |entries: &[(u64, u32)]| -> Result<CommonBuffer, HcaError> {
            if entries.is_empty() || entries.len() as u64 > max_desc {
                return Err(HcaError::NotSupported);
            }
            let t = adapter
                .common_buffer((entries.len() * stream::DESC_SIZE) as u32)
                .map_err(|_| HcaError::NoResources)?;
            write_entries(&t, 0, entries);
            Ok(t)
        };
        let dma_dir = match dir {
            Direction::Capture => dma::Direction::FromDevice,
            Direction::Playback => dma::Direction::ToDevice,
        };
        match s {
            Strategy::CommonBufferFromMdl => {
                if !user.page_aligned() {
                    return Err(HcaError::NotSupported);
                }
                let b = adapter
                    .common_buffer_from_mdl(user)
                    .map_err(|_| HcaError::NotSupported)?;
                let t = table_for(&[(b.logical(), user.len())])?;
                Ok((Access::FromMdl(b), t))
            }
            Strategy::PersistentSg => {
                // The per-segment flush needs FlushDmaBuffer; without it a bounce or Verifier
                // double buffer would never be synchronised (docs/dma.md §5.2).
                if !adapter.has_flush_dma_buffer() || !adapter.has_synchronous_mapping() {
                    return Err(HcaError::NotSupported);
                }
                // The context is allocated before the IRQL is raised: nothing is allocated at
                // DISPATCH_LEVEL that could be allocated at PASSIVE_LEVEL.
                let mut ctx = TransferContext::default();
                let raise = crate::sys::KSpinLock::new();
                let guard = raise.lock();
                let m = adapter
                    .map_range(
                        user,
                        0,
                        user.segments(),
                        dma_dir,
                        &mut ctx,
                        &guard.at_dispatch(),
                    )
                    .map_err(|e| match e {
                        DmaError::MissingRoutine(_) => HcaError::NotSupported,
                        _ => HcaError::NoResources,
                    })?;
                drop(guard);
                let entries: Vec<(u64, u32)> = m.elements().collect();
                let t = table_for(&entries)?;
                Ok((Access::Persistent(m), t))
            }
            Strategy::PerSegment => {
                if !adapter.has_synchronous_mapping() {
                    return Err(HcaError::NotSupported);
                }
                // A segment's list has at most one element per page it spans.
                let group = user.segment_size().div_ceil(4096) + 1;
                if u64::from(group) * u64::from(user.segments()) > max_desc {
                    return Err(HcaError::NotSupported);
                }
                let t = adapter
                    .common_buffer(group * user.segments() * stream::DESC_SIZE as u32)
                    .map_err(|_| HcaError::NoResources)?;
                Ok((
                    Access::PerSegment {
                        maps: (0..user.segments()).map(|_| None).collect(),
                        ctx: TransferContext::default(),
                        group,
                    },
                    t,
                ))
            }
            Strategy::Staging => {
                let pages = (0..user.segments())
                    .map(|_| adapter.common_buffer(user.segment_size()))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| HcaError::NoResources)?;
                let entries: Vec<(u64, u32)> = pages
                    .iter()
                    .map(|p| (p.logical(), user.segment_size()))
                    .collect();
                let t = table_for(&entries)?;
                Ok((Access::Staging(pages), t))
            }
            Strategy::Auto => Err(HcaError::NotSupported),
        }
    }

    /// The strategy in use.
    #[must_use]
    pub const fn strategy(&self) -> Strategy {
        self.access.strategy()
    }

    /// The engine.
    #[must_use]
    pub const fn engine(&self) -> u32 {
        self.engine
    }

    /// The START request (pending, and held by the stream's buffer).
    pub const fn request(&self) -> &Request {
        self.user.request()
    }

    /// Releases the device's view of the buffer, the rings, the buffer and the adapter, in that
    /// order, at `PASSIVE_LEVEL` (the device has stopped or is gone). Returns the START request,
    /// its status and `Information` (the bytes of the buffer that hold stream data), and the
    /// STOP requests waiting for the end.
    fn dismantle(self: Box<Self>) -> (Request, Outcome, usize, Vec<Request>) {
        let s = *self;
        let reason = s.ending.unwrap_or(EndReason::Stopped);
        trace::emit(
            &trace::STREAM_ENDED,
            &[
                Value::U32(s.engine),
                Value::Str(reason.name()),
                Value::U64(s.next_record),
                Value::U64(s.bytes),
            ],
        );
        let leak = leak_on_removal(s.ending);
        let status = s.ending.unwrap_or(EndReason::Stopped).result();
        // `Information` may not exceed the request's output buffer: the KMDF verifier stops a
        // successful user-mode IOCTL that reports more (WDF_REQUEST_FATAL_ERROR, INFORMATION_
        // LENGTH_MISMATCH). A circular buffer usually moves more than it holds, so the START
        // reports the bytes of its buffer that hold stream data; the application counts what
        // moved from the segments WAIT delivers (each with its byte count).
        let info = s.bytes.min(u64::from(s.user.len())) as usize;
        let Self {
            access,
            table,
            records,
            user,
            adapter,
            stop_waiters,
            ..
        } = s;
        // A device→memory list put here copies any bounce or Verifier double buffer back, so
        // the partial segment of a stop reaches the application too.
        if leak {
            core::mem::forget(access);
            core::mem::forget(table);
            core::mem::forget(records);
        } else {
            drop(access);
            drop(table);
            drop(records);
        }
        let request = user.into_request();
        drop(adapter);
        (request, status, info, stop_waiters)
    }
}

/// Releases an ended stream's DMA resources at `PASSIVE_LEVEL`, without the device lock.
#[must_use]
pub fn finish(e: Ended) -> Finished {
    let engine = e.stream.engine;
    let (request, status, info, stops) = e.stream.dismantle();
    match e.start_owner {
        StartOwner::Finisher => Finished {
            engine,
            start: Some((request, status, info)),
            stops,
            rendezvous: None,
        },
        StartOwner::Rendezvous => Finished {
            engine,
            start: None,
            stops,
            rendezvous: Some((request, status, info)),
        },
    }
}

/// Releases a stream that never reached its engine, at `PASSIVE_LEVEL`; returns its START
/// request, to be completed.
pub fn discard(s: Box<Stream>) -> Request {
    s.dismantle().0
}
