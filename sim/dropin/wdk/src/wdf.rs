//! wdk's safe wrappers of WDF objects: [`SpinLock`] and [`Timer`], with wdk 0.5.0's
//! signatures, over the simulated framework.

use wdk_sys::{
    NTSTATUS, WDF_OBJECT_ATTRIBUTES, WDF_TIMER_CONFIG, WDFSPINLOCK, WDFTIMER,
    call_unsafe_wdf_function_binding,
};

use crate::nt_success;

/// A WDF spin lock (`WDFSPINLOCK`).
#[derive(Debug)]
pub struct SpinLock {
    wdf_spin_lock: WDFSPINLOCK,
}

impl SpinLock {
    /// `WdfSpinLockCreate`.
    ///
    /// # Errors
    /// The framework's status when it refuses to create the lock.
    pub fn try_new(attributes: &mut WDF_OBJECT_ATTRIBUTES) -> Result<Self, NTSTATUS> {
        let mut spin_lock = Self {
            wdf_spin_lock: core::ptr::null_mut(),
        };
        // SAFETY: live attributes and a handle slot this function owns.
        let nt_status = unsafe {
            call_unsafe_wdf_function_binding!(
                WdfSpinLockCreate,
                attributes,
                &raw mut spin_lock.wdf_spin_lock,
            )
        };
        nt_success(nt_status).then_some(spin_lock).ok_or(nt_status)
    }

    /// As [`SpinLock::try_new`] (wdk's older name).
    ///
    /// # Errors
    /// As [`SpinLock::try_new`].
    pub fn create(attributes: &mut WDF_OBJECT_ATTRIBUTES) -> Result<Self, NTSTATUS> {
        Self::try_new(attributes)
    }

    /// `WdfSpinLockAcquire`.
    pub fn acquire(&self) {
        // SAFETY: the lock this wrapper created.
        unsafe { call_unsafe_wdf_function_binding!(WdfSpinLockAcquire, self.wdf_spin_lock) };
    }

    /// `WdfSpinLockRelease`.
    pub fn release(&self) {
        // SAFETY: the lock this wrapper created.
        unsafe { call_unsafe_wdf_function_binding!(WdfSpinLockRelease, self.wdf_spin_lock) };
    }
}

/// A WDF timer (`WDFTIMER`).
#[derive(Debug)]
pub struct Timer {
    wdf_timer: WDFTIMER,
}

impl Timer {
    /// `WdfTimerCreate`.
    ///
    /// # Errors
    /// The framework's status when it refuses to create the timer.
    pub fn try_new(
        timer_config: &mut WDF_TIMER_CONFIG,
        attributes: &mut WDF_OBJECT_ATTRIBUTES,
    ) -> Result<Self, NTSTATUS> {
        let mut timer = Self {
            wdf_timer: core::ptr::null_mut(),
        };
        // SAFETY: a live config and attributes, and a handle slot this function owns.
        let nt_status = unsafe {
            call_unsafe_wdf_function_binding!(
                WdfTimerCreate,
                timer_config,
                attributes,
                &raw mut timer.wdf_timer,
            )
        };
        nt_success(nt_status).then_some(timer).ok_or(nt_status)
    }

    /// As [`Timer::try_new`] (wdk's older name).
    ///
    /// # Errors
    /// As [`Timer::try_new`].
    pub fn create(
        timer_config: &mut WDF_TIMER_CONFIG,
        attributes: &mut WDF_OBJECT_ATTRIBUTES,
    ) -> Result<Self, NTSTATUS> {
        Self::try_new(timer_config, attributes)
    }

    /// `WdfTimerStart`: TRUE when the timer was already queued.
    #[must_use]
    pub fn start(&self, due_time: i64) -> bool {
        // SAFETY: the timer this wrapper created.
        let r =
            unsafe { call_unsafe_wdf_function_binding!(WdfTimerStart, self.wdf_timer, due_time) };
        r != 0
    }

    /// `WdfTimerStop`: TRUE when the timer was queued.
    #[must_use]
    pub fn stop(&self, wait: bool) -> bool {
        // SAFETY: the timer this wrapper created.
        let r = unsafe {
            call_unsafe_wdf_function_binding!(WdfTimerStop, self.wdf_timer, u8::from(wait))
        };
        r != 0
    }
}
