//! Interrupt objects and spin locks: `WdfInterrupt*` (creation, DPC queueing, the interrupt
//! lock at DIRQL) and `WdfSpinLock*`.

#![expect(
    clippy::missing_safety_doc,
    reason = "the module documents the one safety contract every WDF method shares"
)]
#![expect(non_snake_case, reason = "mirrors the C method and parameter names")]

use super::{SIM_DIRQL, attrs, callback, null_arg, parent_of, wdf};
use crate::bugcheck::BugCheck;
use crate::machine::{halt, irql, set_irql, with_state};
use crate::ntddk::check_max;
use crate::typed::{DISPATCH_LEVEL, PASSIVE_LEVEL};
use crate::types::KIRQL;
#[allow(
    clippy::wildcard_imports,
    reason = "the methods use the mirrored surface wholesale"
)]
use crate::wdf::types::*;
use crate::wdf::validate::{self, opt};
use crate::wdf::{Kind, SpinLockData};
use crate::{NTSTATUS, STATUS_INFO_LENGTH_MISMATCH, STATUS_INVALID_PARAMETER, STATUS_SUCCESS};

// ---- interrupts ----

/// `NTSTATUS WdfInterruptCreate(WDFDEVICE, PWDF_INTERRUPT_CONFIG, PWDF_OBJECT_ATTRIBUTES,
/// WDFINTERRUPT *Interrupt)`; PASSIVE_LEVEL (in `EvtDriverDeviceAdd` or
/// `EvtDevicePrepareHardware`). Interrupts take message numbers in creation order.
#[must_use]
#[inline(never)]
pub unsafe fn WdfInterruptCreate(
    Device: WDFDEVICE,
    Configuration: PWDF_INTERRUPT_CONFIG,
    Attributes: PWDF_OBJECT_ATTRIBUTES,
    Interrupt: *mut WDFINTERRUPT,
) -> NTSTATUS {
    check_max(PASSIVE_LEVEL, "WdfInterruptCreate");
    if Configuration.is_null() || Interrupt.is_null() {
        null_arg("Configuration or Interrupt");
    }
    // SAFETY: checked non-null.
    let config = unsafe { *Configuration };
    // `fxinterruptapi.cpp` l.111–352, in its order.
    if config.Size as usize != size_of::<crate::types::WDF_INTERRUPT_CONFIG>() {
        return STATUS_INFO_LENGTH_MISMATCH;
    }
    if config.EvtInterruptIsr.is_none() {
        return STATUS_INVALID_PARAMETER;
    }
    let a = attrs(Attributes);
    let flags = if config.AutomaticSerialization == 0 {
        opt::PARENT_NOT_ALLOWED
    } else {
        opt::NONE
    };
    if let Err(st) = validate::object_attributes(a, flags) {
        return st;
    }
    if config.EvtInterruptDpc.is_some() && config.EvtInterruptWorkItem.is_some() {
        return STATUS_INVALID_PARAMETER;
    }
    if config.PassiveHandling == 0 && (!config.WaitLock.is_null() || config.CanWakeDevice != 0) {
        return STATUS_INVALID_PARAMETER;
    }
    let h = wdf(|w| {
        let dev = Device as usize;
        let message = w.device(dev)?.interrupts.len() as u32;
        let data = crate::wdf::InterruptData {
            config,
            device: dev,
            lock: std::sync::Arc::default(),
            message,
            irql: SIM_DIRQL,
            connected: false,
            dpc_queued: false,
            held_irql: 0,
        };
        let h = w.insert(Kind::Interrupt(Box::new(data)), Some(parent_of(a, dev)), a);
        w.device(dev)?.interrupts.push(h);
        Ok(h)
    });
    // SAFETY: checked non-null.
    unsafe { *Interrupt = h as WDFINTERRUPT };
    STATUS_SUCCESS
}

/// `BOOLEAN WdfInterruptQueueDpcForIsr(WDFINTERRUPT)`; any IRQL. FALSE when already queued.
#[must_use]
#[inline(never)]
pub unsafe fn WdfInterruptQueueDpcForIsr(Interrupt: WDFINTERRUPT) -> crate::types::BOOLEAN {
    let (queued, tx) = wdf(|w| {
        let i = w.interrupt(Interrupt as usize)?;
        if i.dpc_queued {
            return Ok((false, None));
        }
        i.dpc_queued = true;
        w.dpcs.push_back(Interrupt as usize);
        // A CPU settling its system call's device work runs the DPC itself.
        let wake = !crate::wdf::host::runs_own_dpcs();
        Ok((true, w.irq_tx.clone().filter(|_| wake)))
    });
    if let Some(tx) = tx {
        let _ = tx.send(crate::wdf::host::IrqEvent::Dpc);
    }
    u8::from(queued)
}

/// An interrupt's lock word (a reference of its own) and DIRQL.
pub(super) type InterruptLock = (std::sync::Arc<std::sync::atomic::AtomicU64>, KIRQL);

pub(super) fn interrupt_lock(h: usize) -> InterruptLock {
    wdf(|w| {
        let i = w.interrupt(h)?;
        Ok((std::sync::Arc::clone(&i.lock), i.irql))
    })
}

/// Acquires an interrupt's lock at its DIRQL; returns the previous IRQL.
pub(crate) fn acquire_interrupt_lock(h: usize) -> KIRQL {
    lock_interrupt(&interrupt_lock(h))
}

/// The interrupt CPU's way in: the lock of interrupt `h` if the object still exists, taken
/// at its DIRQL, with the previous IRQL. The lock word stays alive for the caller even if the
/// device's removal deletes the object meanwhile (removal disconnects first, which waits for
/// the lock, so a holder never runs against a deleted interrupt).
pub(crate) fn try_lock_interrupt(h: usize) -> Option<(InterruptLock, KIRQL)> {
    let lock = with_state(|st, _| {
        Ok(st
            .wdf
            .interrupt(h)
            .ok()
            .map(|i| (std::sync::Arc::clone(&i.lock), i.irql)))
    })?;
    let old = lock_interrupt(&lock);
    Some((lock, old))
}

/// Releases a lock taken by [`try_lock_interrupt`] and returns to `old`.
pub(crate) fn unlock_interrupt(lock: &InterruptLock, old: KIRQL) {
    crate::ntddk::spin_release(lock.0.as_ptr());
    set_irql(old);
}

pub(super) fn lock_interrupt((lock, dirql): &InterruptLock) -> KIRQL {
    let dirql = *dirql;
    let old = irql();
    if old > dirql {
        halt(BugCheck::new(
            crate::bugcheck::IRQL_NOT_LESS_OR_EQUAL,
            [0, u64::from(old), u64::from(dirql), 0],
            "interrupt lock acquired above the interrupt's DIRQL",
            "wdfinterrupt.h: WdfInterruptAcquireLock, IRQL <= DIRQL",
        ));
    }
    set_irql(dirql);
    crate::ntddk::spin_acquire(lock.as_ptr());
    old
}

/// Releases an interrupt's lock and returns to `old`.
pub(crate) fn release_interrupt_lock(h: usize, old: KIRQL) {
    unlock_interrupt(&interrupt_lock(h), old);
}

/// `VOID WdfInterruptAcquireLock(WDFINTERRUPT)`; `<= DIRQL`, raises to DIRQL.
#[inline(never)]
pub unsafe fn WdfInterruptAcquireLock(Interrupt: WDFINTERRUPT) {
    let old = acquire_interrupt_lock(Interrupt as usize);
    wdf(|w| {
        w.interrupt(Interrupt as usize)?.held_irql = old;
        Ok(())
    });
}

/// `VOID WdfInterruptReleaseLock(WDFINTERRUPT)`; at DIRQL, returns to the acquiring IRQL.
#[inline(never)]
pub unsafe fn WdfInterruptReleaseLock(Interrupt: WDFINTERRUPT) {
    let old = wdf(|w| Ok(w.interrupt(Interrupt as usize)?.held_irql));
    release_interrupt_lock(Interrupt as usize, old);
}

/// `BOOLEAN WdfInterruptSynchronize(WDFINTERRUPT, PFN_WDF_INTERRUPT_SYNCHRONIZE, WDFCONTEXT)`;
/// `<= DISPATCH_LEVEL`: runs the callback at DIRQL under the interrupt's lock.
#[must_use]
#[inline(never)]
pub unsafe fn WdfInterruptSynchronize(
    Interrupt: WDFINTERRUPT,
    Callback: PFN_WDF_INTERRUPT_SYNCHRONIZE,
    Context: WDFCONTEXT,
) -> crate::types::BOOLEAN {
    check_max(DISPATCH_LEVEL, "WdfInterruptSynchronize");
    let Some(cb) = Callback else {
        null_arg("Callback")
    };
    let old = acquire_interrupt_lock(Interrupt as usize);
    // SAFETY: the driver's synchronize callback with its own context, at DIRQL under the lock.
    let r = callback(|| unsafe { cb(Interrupt, Context) });
    release_interrupt_lock(Interrupt as usize, old);
    r
}

/// `WDFDEVICE WdfInterruptGetDevice(WDFINTERRUPT)`; `<= DIRQL`.
#[must_use]
#[inline(never)]
pub unsafe fn WdfInterruptGetDevice(Interrupt: WDFINTERRUPT) -> WDFDEVICE {
    wdf(|w| Ok(w.interrupt(Interrupt as usize)?.device as WDFDEVICE))
}

// ---- spin locks ----

/// `NTSTATUS WdfSpinLockCreate(PWDF_OBJECT_ATTRIBUTES, WDFSPINLOCK *SpinLock)`;
/// `<= DISPATCH_LEVEL`.
#[must_use]
#[inline(never)]
pub unsafe fn WdfSpinLockCreate(
    SpinLockAttributes: PWDF_OBJECT_ATTRIBUTES,
    SpinLock: *mut WDFSPINLOCK,
) -> NTSTATUS {
    check_max(DISPATCH_LEVEL, "WdfSpinLockCreate");
    if SpinLock.is_null() {
        null_arg("SpinLock");
    }
    let a = attrs(SpinLockAttributes);
    // `fxspinlockapi.cpp` l.75.
    if let Err(st) = validate::object_attributes(a, opt::NONE) {
        return st;
    }
    let h = wdf(|w| {
        let parent = parent_of(a, w.driver.unwrap_or(0));
        Ok(w.insert(
            Kind::SpinLock(Box::new(SpinLockData {
                lock: Box::new(0),
                old_irql: 0,
            })),
            (parent != 0).then_some(parent),
            a,
        ))
    });
    // SAFETY: checked non-null.
    unsafe { *SpinLock = h as WDFSPINLOCK };
    STATUS_SUCCESS
}

pub(super) fn spin(h: usize) -> *mut crate::types::KSPIN_LOCK {
    wdf(|w| match &mut w.get_mut(h, "WDFSPINLOCK")?.kind {
        Kind::SpinLock(s) => Ok(core::ptr::from_mut(&mut *s.lock)),
        k => Err(crate::wdf::wrong_type(h, k.name(), "WDFSPINLOCK")),
    })
}

/// `VOID WdfSpinLockAcquire(WDFSPINLOCK)`; `<= DISPATCH_LEVEL`, raises to `DISPATCH_LEVEL`.
#[inline(never)]
pub unsafe fn WdfSpinLockAcquire(SpinLock: WDFSPINLOCK) {
    check_max(DISPATCH_LEVEL, "WdfSpinLockAcquire");
    let lock = spin(SpinLock as usize);
    let old = irql();
    set_irql(DISPATCH_LEVEL);
    crate::ntddk::spin_acquire(lock);
    wdf(|w| {
        if let Kind::SpinLock(s) = &mut w.get_mut(SpinLock as usize, "WDFSPINLOCK")?.kind {
            s.old_irql = old;
        }
        Ok(())
    });
}

/// `VOID WdfSpinLockRelease(WDFSPINLOCK)`; at `DISPATCH_LEVEL`, returns to the acquiring IRQL.
#[inline(never)]
pub unsafe fn WdfSpinLockRelease(SpinLock: WDFSPINLOCK) {
    let lock = spin(SpinLock as usize);
    let old = wdf(|w| match &w.get(SpinLock as usize, "WDFSPINLOCK")?.kind {
        Kind::SpinLock(s) => Ok(s.old_irql),
        _ => Ok(DISPATCH_LEVEL),
    });
    crate::ntddk::spin_release(lock);
    set_irql(old);
}
