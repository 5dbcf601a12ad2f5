//! The interrupt CPU: delivers device interrupts to ISRs at DIRQL under the interrupt lock,
//! runs DPCs at `DISPATCH_LEVEL`, fires timers and runs work items.

use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::bus::Interrupt;
use crate::heap::Context;
use crate::machine::{set_irql, with_state};
use crate::typed::{DISPATCH_LEVEL, PASSIVE_LEVEL};
use crate::types::PVOID;
use crate::wdf::Kind;
use crate::wdf::functions::{callback, callback_in};
#[allow(
    clippy::wildcard_imports,
    reason = "the harness uses the mirrored surface wholesale"
)]
use crate::wdf::types::*;

use super::IrqEvent;
use crate::wdf::Completion;

/// The application threads blocked in a wait for a request ([`super::Pending::wait`]): the
/// simulated machine's idle CPUs. A device interrupt goes to one of them, as an MSI reaches a
/// processor idling in a wait on Windows, and that thread runs the ISR and the DPCs before it
/// looks at its request again; only when no thread waits does the interrupt CPU take it. A
/// stream's WAIT is then completed on the thread that waits for it, one hand-off after the
/// device's interrupt instead of two (device to interrupt CPU, interrupt CPU to application):
/// on a two-core host each hand-off to a sleeping thread cost up to ~50 µs, longer than a ring
/// of 4 KiB segments lasts.
#[derive(Debug, Default)]
pub(super) struct IdleCpus {
    waiters: Mutex<Vec<Arc<Completion>>>,
}

impl IdleCpus {
    /// Hands `e` to the thread that began waiting last; false when none waits.
    #[expect(
        clippy::significant_drop_tightening,
        reason = "the list stays locked until `e` is handed over: a waiter that left meanwhile would never deliver it"
    )]
    pub(super) fn take(&self, e: IrqEvent) -> bool {
        let waiters = self.waiters.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(c) = waiters.last() else {
            return false;
        };
        {
            // With `done` held: a waiter looks at `taken` and blocks on `cv` under it.
            let _done = c.done.lock().unwrap_or_else(PoisonError::into_inner);
            c.taken
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(e);
        }
        c.cv.notify_all();
        true
    }

    /// Counts the thread waiting for `c` among the idle CPUs.
    pub(super) fn enter(&self, c: &Arc<Completion>) {
        self.waiters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::clone(c));
    }

    /// Takes the thread waiting for `c` out of the idle CPUs; the interrupts handed to it and
    /// not yet delivered go to the interrupt CPU (`tx`). None can be handed to it after.
    #[expect(
        clippy::significant_drop_tightening,
        reason = "the list stays locked while the handed interrupts are taken: none may be handed after"
    )]
    pub(super) fn leave(&self, c: &Arc<Completion>, tx: &Sender<IrqEvent>) {
        let left = {
            let mut waiters = self.waiters.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(i) = waiters.iter().rposition(|w| Arc::ptr_eq(w, c)) {
                waiters.remove(i);
            }
            std::mem::take(&mut *c.taken.lock().unwrap_or_else(PoisonError::into_inner))
        };
        for e in left {
            let _ = tx.send(e);
        }
    }
}

/// Delivers interrupts handed to a waiting application thread ([`IdleCpus`]), on that thread
/// (inside [`crate::Machine::run`]): each ISR at DIRQL, then the DPCs at `DISPATCH_LEVEL`. The
/// DPCs its ISRs queue are its own, as a system call's are ([`runs_own_dpcs`]): the interrupt
/// CPU is not woken for them.
pub(super) fn take_interrupts(events: Vec<IrqEvent>) {
    let _ = set_taken(Some(Vec::new()));
    deliver_then_run_dpcs(events);
    // Nothing steps a device on this thread meanwhile, so nothing else was taken.
    stop_taking();
}

/// Replaces the interrupts this CPU has taken ([`TAKEN`]); returns what it held.
fn set_taken(v: Option<Vec<IrqEvent>>) -> Option<Vec<IrqEvent>> {
    TAKEN.try_with(|t| t.replace(v)).ok().flatten()
}

/// Delivers `events` on this CPU (each ISR at DIRQL), then runs the DPCs at `DISPATCH_LEVEL`.
fn deliver_then_run_dpcs(events: Vec<IrqEvent>) {
    for e in events {
        deliver(e);
    }
    // With the queue empty or drained by another CPU, this returns at once.
    run_dpcs();
}

/// Stops taking interrupts on this CPU: those taken and not delivered are delivered now, and
/// any raised after are the interrupt CPU's (or an idle CPU's).
fn stop_taking() {
    let left = set_taken(None).unwrap_or_default();
    if !left.is_empty() {
        deliver_then_run_dpcs(left);
    }
}

pub(super) fn interrupt_cpu(rx: &Receiver<IrqEvent>) {
    loop {
        // Sleep until the next event or the next timer, whichever comes first.
        let wait = with_state(|st, _| Ok(next_timer_due(&st.wdf))).map_or(
            Duration::from_millis(50),
            |due| {
                due.saturating_duration_since(std::time::Instant::now())
                    .min(Duration::from_millis(50))
            },
        );
        // Interrupts come in bursts (a completion, then the next one microseconds later): poll
        // briefly before sleeping.
        let event =
            crate::spin::spin(|| rx.try_recv().ok()).map_or_else(|| rx.recv_timeout(wait), Ok);
        match event {
            Ok(IrqEvent::Quit) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
            Ok(e) => deliver(e),
            Err(_) => {}
        }
        run_timers();
        run_dpcs();
        run_work_items();
    }
}

/// The earliest due time of the timers in the timer queue.
pub(super) fn next_timer_due(w: &crate::wdf::WdfState) -> Option<std::time::Instant> {
    w.objects
        .values()
        .filter_map(|o| match &o.kind {
            Kind::Timer(t) => t.due,
            _ => None,
        })
        .min()
}

/// The system's timer expiry: every timer due by now leaves the timer queue (a periodic one is
/// re-armed one period later) and its callback runs at `DISPATCH_LEVEL`, as a timer DPC does.
pub(crate) fn run_timers() {
    let now = std::time::Instant::now();
    let due: Vec<usize> = with_state(|st, _| {
        Ok(st
            .wdf
            .objects
            .iter()
            .filter(|(_, o)| matches!(&o.kind, Kind::Timer(t) if t.due.is_some_and(|d| d <= now)))
            .map(|(&h, _)| h)
            .collect())
    });
    for h in due {
        let f = with_state(
            |st, _| match st.wdf.objects.get_mut(&h).map(|o| &mut o.kind) {
                Some(Kind::Timer(t)) if t.due.is_some_and(|d| d <= now) && !t.running => {
                    t.due = (t.config.Period > 0)
                        .then(|| now + Duration::from_millis(u64::from(t.config.Period)));
                    t.running = true;
                    Ok(t.config.EvtTimerFunc)
                }
                _ => Ok(None),
            },
        );
        let Some(f) = f else { continue };
        let old = crate::machine::irql();
        set_irql(DISPATCH_LEVEL);
        // SAFETY: the driver's timer callback at DISPATCH_LEVEL with its timer.
        callback_in(Context::Dpc, || unsafe { f(h as crate::WDFTIMER) });
        set_irql(old);
        with_state(|st, _| {
            if let Some(Kind::Timer(t)) = st.wdf.objects.get_mut(&h).map(|o| &mut o.kind) {
                t.running = false;
            }
            Ok(())
        });
    }
}

/// The system worker thread: runs enqueued work items at `PASSIVE_LEVEL`, in order.
pub(crate) fn run_work_items() {
    while let Some(h) = with_state(|st, _| Ok(st.wdf.work_items.front().copied())) {
        run_work_item(h);
    }
}

/// Runs work item `h` if it is queued: dequeued, marked running, its callback called at
/// `PASSIVE_LEVEL`.
pub(crate) fn run_work_item(h: usize) {
    let f = with_state(|st, _| {
        let w = &mut st.wdf;
        w.work_items.retain(|&x| x != h);
        match w.objects.get_mut(&h).map(|o| &mut o.kind) {
            Some(Kind::WorkItem(d)) if d.queued => {
                d.queued = false;
                d.running = true;
                Ok(d.config.EvtWorkItemFunc)
            }
            _ => Ok(None),
        }
    });
    let Some(f) = f else { return };
    let old = crate::machine::irql();
    set_irql(PASSIVE_LEVEL);
    // SAFETY: the driver's work item callback at PASSIVE_LEVEL with its work item.
    callback(|| unsafe { f(h as crate::WDFWORKITEM) });
    set_irql(old);
    with_state(|st, _| {
        if let Some(Kind::WorkItem(d)) = st.wdf.objects.get_mut(&h).map(|o| &mut o.kind) {
            d.running = false;
        }
        Ok(())
    });
}

pub(super) fn deliver(e: IrqEvent) {
    match e {
        IrqEvent::Device(slot, Interrupt::Msi { vector }) => {
            let _ = isr(slot, vector);
        }
        IrqEvent::Device(slot, Interrupt::IntxAsserted) => {
            // A level-triggered line interrupts for as long as it is asserted: after an ISR
            // that claimed it returns (the end of interrupt), the controller sees the level
            // again. A cause that arrived between the ISR's read and its acknowledgement keeps
            // the line up, and must interrupt again. An unclaimed, still-asserted line would be
            // an interrupt storm on Windows (bug check 0xF2): not modelled, the line is left.
            for _ in 0..LEVEL_REDELIVERY_LIMIT {
                if !isr(slot, 0) || !with_state(|st, _| Ok(st.bus.intx_asserted(slot))) {
                    break;
                }
            }
        }
        IrqEvent::Device(_, Interrupt::IntxDeasserted) | IrqEvent::Dpc | IrqEvent::Quit => {}
    }
}

/// How many times in a row a still-asserted line is delivered again to an ISR that claims it.
/// A device that keeps its line up through this many claimed interrupts is broken; the line is
/// then left until its next edge.
pub(super) const LEVEL_REDELIVERY_LIMIT: usize = 1000;

/// Calls the ISR connected to `message` of the device in `slot`. Returns whether it claimed the
/// interrupt.
pub(super) fn isr(slot: usize, message: u32) -> bool {
    let target = with_state(|st, _| {
        let w = &mut st.wdf;
        let found = w.objects.iter().find_map(|(&h, o)| match &o.kind {
            Kind::Interrupt(i) if i.connected && i.message == message => {
                let dev_slot = match w.objects.get(&i.device).map(|o| &o.kind) {
                    Some(Kind::Device(d)) => d.slot,
                    _ => usize::MAX,
                };
                (dev_slot == slot).then_some((h, i.config.EvtInterruptIsr))
            }
            _ => None,
        });
        Ok(found)
    });
    let Some((h, Some(f))) = target else {
        return false;
    };
    // The interrupt may have been disconnected, or even deleted by the device's removal,
    // between the lookup and the lock: a disconnected interrupt's ISR is never called.
    let Some((lock, old)) = crate::wdf::functions::try_lock_interrupt(h) else {
        return false;
    };
    let connected = with_state(|st, _| Ok(st.wdf.interrupt(h).is_ok_and(|i| i.connected)));
    let claimed = connected && {
        // SAFETY: the driver's ISR at DIRQL under the interrupt's lock.
        callback_in(Context::Isr, || unsafe { f(h as WDFINTERRUPT, message) }) != 0
    };
    crate::wdf::functions::unlock_interrupt(&lock, old);
    claimed
}

pub(super) fn run_dpcs() {
    let me = crate::ntddk::thread_token();
    set_irql(DISPATCH_LEVEL);
    // The queue is drained by one CPU at a time: a CPU that finds another draining it leaves
    // its DPCs to that one, which takes every DPC queued before it lets the queue go (the
    // last look and the release are one step under the machine's lock).
    while let Some(h) = with_state(|st, _| {
        let w = &mut st.wdf;
        if w.dpc_cpu.is_some_and(|c| c != me) {
            return Ok(None);
        }
        let h = w.dpcs.pop_front();
        w.dpc_running = h;
        w.dpc_cpu = h.map(|_| me);
        Ok(h)
    }) {
        run_dpc(h);
        with_state(|st, _| {
            st.wdf.dpc_running = None;
            Ok(())
        });
    }
    set_irql(PASSIVE_LEVEL);
}

thread_local! {
    /// Interrupts the functions signalled while this CPU stepped them ([`settle`]), to be
    /// taken by this CPU; `None` when it is not stepping.
    static TAKEN: std::cell::RefCell<Option<Vec<IrqEvent>>> = const { std::cell::RefCell::new(None) };
}

/// Whether an interrupt of the function in `slot` is taken by the calling CPU, which is
/// stepping that function at the end of a system call: it then delivers it itself once the
/// round is over (no lock of the device is held then). Otherwise it goes to the interrupt CPU.
pub(super) fn take_here(slot: usize, i: Interrupt) -> bool {
    TAKEN
        .try_with(|t| {
            t.borrow_mut().as_mut().is_some_and(|v| {
                v.push(IrqEvent::Device(slot, i));
                true
            })
        })
        .unwrap_or(false)
}

/// Forgets interrupts taken by a system call that halted before delivering them (the
/// calling thread goes on as an application thread; the machine has stopped).
pub(crate) fn forget_taken() {
    let _ = TAKEN.try_with(|t| t.borrow_mut().take());
}

/// Whether the calling CPU runs the DPCs it queues itself (it is settling a system call's
/// device work): the interrupt CPU need not be woken for them.
pub(crate) fn runs_own_dpcs() -> bool {
    TAKEN.try_with(|t| t.borrow().is_some()).unwrap_or(false)
}

/// Rounds of one function's work a CPU does at most per look ([`settle`]).
const STEP_ROUNDS: usize = 256;
/// Looks at the functions a CPU takes at most before it returns ([`settle`]).
const SETTLE_LOOKS: usize = 64;

/// Runs `call` as a system call whose device work the CPU settles before it returns: every
/// function the call (or a DPC run here) wrote to is stepped ([`crate::bus::PciFunction::step`])
/// on this CPU, the interrupts that produces are taken here (ISR at DIRQL, then the DPCs at
/// `DISPATCH_LEVEL`), and again while they write registers, up to a bound.
///
/// On hardware the device works beside the CPU and interrupts whichever CPU its message
/// targets; here the CPU that rang the doorbell does the device's round once its dispatch
/// routine has returned, and takes the interrupt: one interleaving a real machine shows (the
/// device fetched the work a little later, and its message targeted this CPU). It spares the
/// hand-offs to the device's and the interrupt CPU's threads that made a simulated MAD round
/// trip cost several context switches. The device's thread and the interrupt CPU still do
/// everything else (stream engines, timers, work items, interrupts raised off a CPU).
pub(super) fn system_call<R>(call: impl FnOnce() -> R) -> R {
    crate::bus::set_stepping(true);
    let r = call();
    // A call that returns above PASSIVE_LEVEL is a bug the caller reports (0x4A); its device
    // work is left to the device's own thread.
    if crate::machine::irql() == PASSIVE_LEVEL {
        settle();
    }
    crate::bus::set_stepping(false);
    r
}

fn settle() {
    let mut funcs = Vec::new();
    let _ = set_taken(Some(Vec::new()));
    for _ in 0..SETTLE_LOOKS {
        crate::bus::take_touched(&mut funcs);
        for f in &funcs {
            for _ in 0..STEP_ROUNDS {
                // The device's own allocations are not the driver's.
                let _kernel = crate::heap::KernelEntry::new();
                if !f.step() {
                    break;
                }
            }
        }
        // Taken with the device's lock released: an ISR reads the device's registers.
        let taken = set_taken(Some(Vec::new())).unwrap_or_default();
        if funcs.is_empty() && taken.is_empty() {
            break;
        }
        deliver_then_run_dpcs(taken);
    }
    // At the bound, what is still owed goes on as it would without this CPU: interrupts taken
    // but not delivered are delivered now, and anything they start is the interrupt CPU's.
    stop_taking();
}

/// Calls interrupt `h`'s `EvtInterruptDpc` (dequeued by the caller) at `DISPATCH_LEVEL`.
pub(super) fn run_dpc(h: usize) {
    let (f, dev) = with_state(|st, _| {
        let Ok(i) = st.wdf.interrupt(h) else {
            return Ok((None, 0));
        };
        i.dpc_queued = false;
        Ok((i.config.EvtInterruptDpc, i.device))
    });
    if let Some(f) = f {
        let old = crate::machine::irql();
        set_irql(DISPATCH_LEVEL);
        // SAFETY: the driver's DPC at DISPATCH_LEVEL with its interrupt and device.
        callback_in(Context::Dpc, || unsafe {
            f(h as WDFINTERRUPT, dev as PVOID);
        });
        set_irql(old);
    }
}

/// After interrupts are disconnected, their DPCs are flushed (as KMDF does before
/// `EvtDeviceD0Exit`): queued ones run now on this CPU, and a running one is waited for.
pub(super) fn flush_dpcs(interrupts: &[usize]) {
    while let Some(h) = with_state(|st, _| {
        let w = &mut st.wdf;
        let at = w.dpcs.iter().position(|h| interrupts.contains(h));
        Ok(at.and_then(|i| w.dpcs.remove(i)))
    }) {
        run_dpc(h);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while with_state(|st, _| Ok(st.wdf.dpc_running.is_some_and(|h| interrupts.contains(&h))))
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(1));
    }
}
