//! The interrupt path: the ISR (acknowledge at DIRQL, never the device lock), the DPC and the
//! watchdog timer (poll the CQ and the streams, hand what arrived to waiting requests, wake the
//! work item). Nothing here allocates (`Machine::dpc_allocations` holds the driver to it on the
//! simulated machine): what is handed out leaves the lock in fixed-size batches.

use core::sync::atomic::Ordering;

use rhca_hw::ioctl::{RecvMadOut, StreamWaitOut};
use rhca_hw::regs::{self, cause};

use super::{DeviceCtx, Objects, ctx, streams, with_hca};
use crate::batch::Batch;
use crate::hca::{self, Hca};
use crate::sys::wdf::{Device, Interrupt, Queue, Request, Timer};
use crate::sys::{
    BOOLEAN, BOOLEAN_FALSE, BOOLEAN_TRUE, NTSTATUS, STATUS_SUCCESS, ULONG, WDF_POWER_DEVICE_STATE,
    WDFDEVICE, WDFINTERRUPT, WDFOBJECT, WDFTIMER,
};
pub(super) extern "C" fn evt_isr(interrupt: WDFINTERRUPT, _message: ULONG) -> BOOLEAN {
    let i = Interrupt(interrupt);
    let Some(c) = ctx(i.device()) else {
        return BOOLEAN_FALSE;
    };
    let claimed = c.isr_regs.with(|r| {
        let causes = r.read(regs::INT_CAUSE.offset);
        if causes == 0 || causes == regs::ALL_ONES {
            return false;
        }
        // Acknowledge (W1C) and leave everything else to the DPC.
        r.write(regs::INT_CAUSE.offset, causes & cause::DEFINED);
        true
    });
    if claimed == Some(true) {
        c.interrupts.fetch_add(1, Ordering::Relaxed);
        let _ = i.queue_dpc();
        BOOLEAN_TRUE
    } else {
        BOOLEAN_FALSE
    }
}

pub(super) extern "C" fn evt_dpc(interrupt: WDFINTERRUPT, _object: WDFOBJECT) {
    let Some(c) = ctx(Interrupt(interrupt).device()) else {
        return;
    };
    service(c);
}

/// `EvtDeviceD0EntryPostInterruptsEnabled`. The framework connects the interrupts after
/// `EvtDeviceD0Entry`, which enables the device: a cause the device raised in between sent its
/// message to no one, and a latched cause sends no other until it is cleared. Clear what is
/// latched and do the DPC's work once, so that nothing waits for an interrupt that already came.
pub(super) extern "C" fn evt_d0_entry_post_interrupts_enabled(
    device: WDFDEVICE,
    _previous: WDF_POWER_DEVICE_STATE,
) -> NTSTATUS {
    let Some(c) = ctx(Device(device)) else {
        return STATUS_SUCCESS;
    };
    c.isr_regs.with(|r| {
        let causes = r.read(regs::INT_CAUSE.offset);
        if causes != 0 && causes != regs::ALL_ONES {
            r.write(regs::INT_CAUSE.offset, causes & cause::DEFINED);
        }
    });
    service(c);
    // The device is up and its interrupts connected: the watchdog starts looking.
    if let Some(o) = c.objects.get() {
        let _ = o.watchdog.start(hca::WATCHDOG_PERIOD_MS);
    }
    STATUS_SUCCESS
}

/// The watchdog's tick (`EvtTimerFunc`, at `DISPATCH_LEVEL`, every
/// [`hca::WATCHDOG_PERIOD_MS`] in D0). It does the DPC's work first, so that a lost interrupt
/// delays completions by one period at most and completions already written count as progress,
/// then looks for a stalled send queue ([`Hca::watchdog_tick`]); a stall is reset by the work
/// item, as a queue error is.
pub(super) extern "C" fn evt_watchdog(timer: WDFTIMER) {
    let Some(c) = ctx(Timer(timer).device()) else {
        return;
    };
    service(c);
    if with_hca(c, |h, _| h.watchdog_tick()).unwrap_or(false)
        && let Some(o) = c.objects.get()
    {
        o.work.enqueue();
    }
}

/// The DPC's work: poll the CQ and the streams, hand received MADs and ready segments to their
/// waiting requests, and wake the work item for ended streams or a failed queue. Nothing here
/// allocates: what is handed out leaves the lock in fixed-size batches.
fn service(c: &DeviceCtx) {
    let Some(o) = c.objects.get() else {
        return;
    };
    // Pairing happens under the lock, so requests get MADs and segments in order; completion
    // happens after it is released. The first batch comes with the poll, in the same hold.
    let Some((ending, reset, mut handed)) = with_hca(c, |h, at| {
        h.poll(at);
        let ending = h.streams().poll(at);
        (ending, h.needs_reset(), deliver(h, o))
    }) else {
        return;
    };
    while let Some((mads, segments)) = handed {
        let more = mads.is_full() || segments.as_ref().is_some_and(Batch::is_full);
        for (req, m) in mads {
            req.complete_with(Ok(m));
        }
        if let Some(segments) = segments {
            streams::complete_waits(segments);
        }
        handed = if more {
            with_hca(c, |h, _| deliver(h, o)).flatten()
        } else {
            None
        };
    }
    if ending || reset {
        o.work.enqueue();
    }
}

/// What one lock hold of the DPC hands out: received MADs and ready segments, each paired with
/// its waiting request. The WAIT replies only when a stream has segments ready: each is a
/// 1,560-byte reply, and a MAD's DPC should not move an empty batch of them out of the lock.
type Handed = (
    Batch<(Request, RecvMadOut), RECV_BATCH>,
    Option<Batch<(Request, StreamWaitOut), { streams::WAIT_BATCH }>>,
);

/// One [`Handed`] (`None` when nothing waits to be paired, the common case, which moves no
/// batch).
fn deliver(h: &mut Hca, o: &Objects) -> Option<Handed> {
    if !h.has_received() && !h.streams().any_ready() {
        return None;
    }
    let mads = deliver_received(h, o.recv);
    let engines = h.streams();
    Some((
        mads,
        engines
            .any_ready()
            .then(|| streams::deliver_waits(engines, &o.waits)),
    ))
}

/// Received MADs paired with the requests handed out per lock hold. Two: a DPC usually finds
/// one, and each entry (a 320-byte reply) is moved out of the lock by value (four cost ~90
/// driver instructions per MAD round trip more under callgrind); more wait for the next hold.
const RECV_BATCH: usize = 2;

/// Pairs received MADs with pending receive requests, oldest first (under the lock, so that
/// the order holds); the caller completes them after the lock is released.
fn deliver_received(h: &mut Hca, q: Queue) -> Batch<(Request, RecvMadOut), RECV_BATCH> {
    let mut out = Batch::new();
    out.fill(|| h.pair_received(|| q.retrieve_next()));
    out
}
