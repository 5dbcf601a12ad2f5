//! Deferred work: `WdfWorkItem*` (run at `PASSIVE_LEVEL` by the host) and `WdfTimer*` (run at
//! `DISPATCH_LEVEL` by the interrupt CPU).

#![expect(
    clippy::missing_safety_doc,
    reason = "the module documents the one safety contract every WDF method shares"
)]
#![expect(non_snake_case, reason = "mirrors the C method and parameter names")]

use super::{attrs, null_arg, parent_handle, parent_of, wdf};
use crate::bugcheck::BugCheck;
use crate::ntddk::check_max;
use crate::typed::{DISPATCH_LEVEL, PASSIVE_LEVEL};
use crate::types::{BOOLEAN, LONGLONG};
#[allow(
    clippy::wildcard_imports,
    reason = "the methods use the mirrored surface wholesale"
)]
use crate::wdf::types::*;
use crate::wdf::validate::{self, opt};
use crate::wdf::{Kind, WdfState};
use crate::{
    NTSTATUS, STATUS_INFO_LENGTH_MISMATCH, STATUS_INVALID_PARAMETER, STATUS_NOT_SUPPORTED,
    STATUS_SUCCESS,
};

// ---- work items ----

/// `NTSTATUS WdfWorkItemCreate(PWDF_WORKITEM_CONFIG, PWDF_OBJECT_ATTRIBUTES, WDFWORKITEM *)`;
/// `<= DISPATCH_LEVEL`. The attributes must name a parent (a device, or an object under one).
#[must_use]
#[inline(never)]
pub unsafe fn WdfWorkItemCreate(
    Config: PWDF_WORKITEM_CONFIG,
    Attributes: PWDF_OBJECT_ATTRIBUTES,
    WorkItem: *mut WDFWORKITEM,
) -> NTSTATUS {
    check_max(DISPATCH_LEVEL, "WdfWorkItemCreate");
    if Config.is_null() {
        null_arg("Config");
    }
    if WorkItem.is_null() {
        null_arg("WorkItem");
    }
    // SAFETY: checked non-null; the driver passes a live config.
    let config = unsafe { *Config };
    let a = attrs(Attributes);
    // `fxworkitemapi.cpp` l.95–136, in its order; then `FxWorkItem::Initialize`.
    if let Err(st) = parent_handle(a) {
        return st;
    }
    if config.Size as usize != size_of::<crate::types::WDF_WORKITEM_CONFIG>() {
        return STATUS_INFO_LENGTH_MISMATCH;
    }
    if config.EvtWorkItemFunc.is_none() {
        return STATUS_INVALID_PARAMETER;
    }
    if let Err(st) = validate::object_attributes(a, opt::NONE) {
        return st;
    }
    let parent = parent_of(a, 0);
    let h = wdf(|w| {
        w.get(parent, "WDFOBJECT")?;
        Ok(w.insert(
            Kind::WorkItem(Box::new(crate::wdf::WorkItemData {
                config,
                queued: false,
                running: false,
            })),
            Some(parent),
            a,
        ))
    });
    // SAFETY: checked non-null.
    unsafe { *WorkItem = h as WDFWORKITEM };
    STATUS_SUCCESS
}

pub(super) fn work_item(
    w: &mut WdfState,
    h: usize,
) -> Result<&mut crate::wdf::WorkItemData, BugCheck> {
    match &mut w.get_mut(h, "WDFWORKITEM")?.kind {
        Kind::WorkItem(d) => Ok(d),
        k => Err(crate::wdf::wrong_type(h, k.name(), "WDFWORKITEM")),
    }
}

/// `VOID WdfWorkItemEnqueue(WDFWORKITEM)`; `<= DISPATCH_LEVEL`. Ignored while the item is
/// already queued (not yet started).
#[inline(never)]
pub unsafe fn WdfWorkItemEnqueue(WorkItem: WDFWORKITEM) {
    check_max(DISPATCH_LEVEL, "WdfWorkItemEnqueue");
    let tx = wdf(|w| {
        let d = work_item(w, WorkItem as usize)?;
        if d.queued {
            return Ok(None);
        }
        d.queued = true;
        w.work_items.push_back(WorkItem as usize);
        Ok(w.irq_tx.clone())
    });
    if let Some(tx) = tx {
        let _ = tx.send(crate::wdf::host::IrqEvent::Dpc);
    }
}

/// `VOID WdfWorkItemFlush(WDFWORKITEM)`; `PASSIVE_LEVEL`. Returns when the item is neither
/// queued nor running; a queued item runs now, on the caller's thread.
#[inline(never)]
pub unsafe fn WdfWorkItemFlush(WorkItem: WDFWORKITEM) {
    check_max(PASSIVE_LEVEL, "WdfWorkItemFlush");
    let h = WorkItem as usize;
    loop {
        let (queued, running) = wdf(|w| {
            let d = work_item(w, h)?;
            Ok((d.queued, d.running))
        });
        if queued {
            crate::wdf::host::run_work_item(h);
        } else if running {
            std::thread::sleep(std::time::Duration::from_millis(1));
        } else {
            return;
        }
    }
}

/// `WDFOBJECT WdfWorkItemGetParentObject(WDFWORKITEM)`; `<= DISPATCH_LEVEL`.
#[must_use]
#[inline(never)]
pub unsafe fn WdfWorkItemGetParentObject(WorkItem: WDFWORKITEM) -> WDFOBJECT {
    check_max(DISPATCH_LEVEL, "WdfWorkItemGetParentObject");
    wdf(|w| {
        work_item(w, WorkItem as usize)?;
        Ok(w.get(WorkItem as usize, "WDFWORKITEM")?.parent.unwrap_or(0) as WDFOBJECT)
    })
}

// ---- timers ----

/// `NTSTATUS WdfTimerCreate(PWDF_TIMER_CONFIG, PWDF_OBJECT_ATTRIBUTES, WDFTIMER *)`;
/// `<= DISPATCH_LEVEL`. The attributes must name a parent (a device, a queue, or an object under
/// one). The callback runs at `DISPATCH_LEVEL`; passive-level timers (`ExecutionLevel`) and
/// automatic serialization are not modelled (`docs/sim-fidelity.md` §8).
#[must_use]
#[inline(never)]
pub unsafe fn WdfTimerCreate(
    Config: PWDF_TIMER_CONFIG,
    Attributes: PWDF_OBJECT_ATTRIBUTES,
    Timer: *mut WDFTIMER,
) -> NTSTATUS {
    check_max(DISPATCH_LEVEL, "WdfTimerCreate");
    if Config.is_null() {
        null_arg("Config");
    }
    if Timer.is_null() {
        null_arg("Timer");
    }
    // SAFETY: checked non-null; the driver passes a live config.
    let config = unsafe { *Config };
    let a = attrs(Attributes);
    // `fxtimerapi.cpp` l.89–194, in its order.
    if let Err(st) = parent_handle(a) {
        return st;
    }
    if config.Size as usize != size_of::<crate::types::WDF_TIMER_CONFIG>() {
        return STATUS_INFO_LENGTH_MISMATCH;
    }
    if config.Period > i32::MAX.cast_unsigned()
        || (config.UseHighResolutionTimer != 0 && config.TolerableDelay > 0)
    {
        return STATUS_INVALID_PARAMETER;
    }
    if let Err(st) = validate::object_attributes(a, opt::EXECUTION_LEVEL_ALLOWED) {
        return st;
    }
    if config.EvtTimerFunc.is_none() {
        // FxTimer::Initialize stores the callback unchecked; a NULL one would be called.
        null_arg("Config->EvtTimerFunc");
    }
    // Passive-level timers are not modelled: refused, where Windows would run the callback
    // on a work item (docs/sim-fidelity.md §8).
    if a.is_some_and(|a| a.ExecutionLevel == _WDF_EXECUTION_LEVEL::WdfExecutionLevelPassive) {
        return STATUS_NOT_SUPPORTED;
    }
    let parent = parent_of(a, 0);
    let h = wdf(|w| {
        w.get(parent, "WDFOBJECT")?;
        Ok(w.insert(
            Kind::Timer(Box::new(crate::wdf::TimerData {
                config,
                due: None,
                running: false,
            })),
            Some(parent),
            a,
        ))
    });
    // SAFETY: checked non-null.
    unsafe { *Timer = h as WDFTIMER };
    STATUS_SUCCESS
}

pub(super) fn timer(w: &mut WdfState, h: usize) -> Result<&mut crate::wdf::TimerData, BugCheck> {
    match &mut w.get_mut(h, "WDFTIMER")?.kind {
        Kind::Timer(d) => Ok(d),
        k => Err(crate::wdf::wrong_type(h, k.name(), "WDFTIMER")),
    }
}

/// `BOOLEAN WdfTimerStart(WDFTIMER, LONGLONG DueTime)`; `<= DISPATCH_LEVEL`. A negative due time
/// is relative, in 100-nanosecond units (`WDF_REL_TIMEOUT_IN_MS`); an absolute (positive) one is
/// taken as due now. Returns whether the timer was already in the timer queue (it is then
/// re-armed with the new due time, as KMDF does).
#[must_use]
#[inline(never)]
pub unsafe fn WdfTimerStart(Timer: WDFTIMER, DueTime: LONGLONG) -> BOOLEAN {
    check_max(DISPATCH_LEVEL, "WdfTimerStart");
    let delay = std::time::Duration::from_nanos(DueTime.min(0).unsigned_abs().saturating_mul(100));
    let (was, tx) = wdf(|w| {
        let d = timer(w, Timer as usize)?;
        let was = d.due.is_some();
        d.due = Some(std::time::Instant::now() + delay);
        Ok((was, w.irq_tx.clone()))
    });
    // Wake the interrupt CPU so that it waits for the new due time.
    if let Some(tx) = tx {
        let _ = tx.send(crate::wdf::host::IrqEvent::Dpc);
    }
    BOOLEAN::from(was)
}

/// `BOOLEAN WdfTimerStop(WDFTIMER, BOOLEAN Wait)`; `<= DISPATCH_LEVEL`, and `PASSIVE_LEVEL` when
/// `Wait` (it then returns only once a running callback has returned). Returns whether the timer
/// was in the timer queue.
#[must_use]
#[inline(never)]
pub unsafe fn WdfTimerStop(Timer: WDFTIMER, Wait: BOOLEAN) -> BOOLEAN {
    check_max(
        if Wait == 0 {
            DISPATCH_LEVEL
        } else {
            PASSIVE_LEVEL
        },
        "WdfTimerStop",
    );
    let h = Timer as usize;
    let was = wdf(|w| Ok(timer(w, h)?.due.take().is_some()));
    if Wait != 0 {
        while wdf(|w| Ok(timer(w, h)?.running)) {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
    BOOLEAN::from(was)
}

/// `WDFOBJECT WdfTimerGetParentObject(WDFTIMER)`; `<= DISPATCH_LEVEL`.
#[must_use]
#[inline(never)]
pub unsafe fn WdfTimerGetParentObject(Timer: WDFTIMER) -> WDFOBJECT {
    check_max(DISPATCH_LEVEL, "WdfTimerGetParentObject");
    wdf(|w| {
        timer(w, Timer as usize)?;
        Ok(w.get(Timer as usize, "WDFTIMER")?.parent.unwrap_or(0) as WDFOBJECT)
    })
}
