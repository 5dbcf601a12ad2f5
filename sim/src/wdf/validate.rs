//! KMDF 1.33's create-time validation, as the framework does it.
//!
//! Every check here restates one in the framework source (microsoft/Windows-Driver-Frameworks @
//! b6191d95, `src/framework/`; `../shared/reference/kmdf-1.33/framework-validation.md` and
//! `docs/sim-fidelity.md` §8 give file and line) and returns the same status. Where the framework
//! only breaks into the debugger (`FxVerifierDbgBreakPoint`, which the KMDF verifier turns into a
//! `DbgBreakPoint`), the machine stops with `verifier_break`: wdk-sim runs every driver with
//! the KMDF verifier on and `DbgBreakOnError` set, as a test machine for HLK runs is configured.

use crate::bugcheck::BugCheck;
use crate::types::{
    _WDF_EXECUTION_LEVEL, _WDF_SYNCHRONIZATION_SCOPE, NTSTATUS, WDF_OBJECT_ATTRIBUTES,
    WDF_OBJECT_CONTEXT_TYPE_INFO,
};
use crate::wdf::status::{
    STATUS_WDF_EXECUTION_LEVEL_INVALID, STATUS_WDF_OBJECT_ATTRIBUTES_INVALID,
    STATUS_WDF_PARENT_ASSIGNMENT_NOT_ALLOWED, STATUS_WDF_PARENT_NOT_SPECIFIED,
    STATUS_WDF_SYNCHRONIZATION_SCOPE_INVALID,
};

/// The option flags of `FxValidateObjectAttributes` (`fxvalidatefunctions.hpp` l.44–56).
pub(crate) mod opt {
    /// No parent, level or scope freedom beyond the defaults.
    pub(crate) const NONE: u32 = 0;
    /// `ParentObject` must be NULL.
    pub(crate) const PARENT_NOT_ALLOWED: u32 = 0x1;
    /// Any valid `ExecutionLevel`.
    pub(crate) const EXECUTION_LEVEL_ALLOWED: u32 = 0x2;
    /// Any valid `SynchronizationScope`.
    pub(crate) const SYNCHRONIZATION_SCOPE_ALLOWED: u32 = 0x4;
    /// The attributes must be given.
    pub(crate) const ATTRIBUTES_REQUIRED: u32 = 0x8;
    /// The `ParentObject` must be given (the framework's `PARENT_REQUIRED` is this flag with
    /// [`ATTRIBUTES_REQUIRED`]; the parent-handle APIs check it through
    /// `FxValidateObjectAttributesForParentHandle` instead).
    pub(crate) const PARENT_REQUIRED_FLAG: u32 = 0x10;
}

/// `FxValidateObjectAttributes` (`shared/object/fxvalidatefunctions.cpp` l.45–219).
pub(crate) fn object_attributes(
    a: Option<&WDF_OBJECT_ATTRIBUTES>,
    flags: u32,
) -> Result<(), NTSTATUS> {
    let Some(a) = a else {
        return if flags & opt::ATTRIBUTES_REQUIRED != 0 {
            Err(STATUS_WDF_PARENT_NOT_SPECIFIED)
        } else {
            Ok(())
        };
    };
    if a.Size as usize != size_of::<WDF_OBJECT_ATTRIBUTES>() {
        return Err(crate::STATUS_INFO_LENGTH_MISMATCH);
    }
    if !a.ContextTypeInfo.is_null() {
        // SAFETY: the driver passes a live type info with its attributes.
        let info = unsafe { &*a.ContextTypeInfo };
        // The framework also accepts the V1_0 size, which is the same ("different structs of
        // the same size", its prefast note at l.79), so one comparison covers both.
        if info.Size as usize != size_of::<WDF_OBJECT_CONTEXT_TYPE_INFO>() {
            return Err(crate::STATUS_INFO_LENGTH_MISMATCH);
        }
        if info.ContextSize > 0 && info.ContextName.is_null() {
            return Err(STATUS_WDF_OBJECT_ATTRIBUTES_INVALID);
        }
    }
    if a.ContextSizeOverride > 0 {
        if a.ContextTypeInfo.is_null() {
            return Err(STATUS_WDF_OBJECT_ATTRIBUTES_INVALID);
        }
        // SAFETY: as above.
        if a.ContextSizeOverride < unsafe { (*a.ContextTypeInfo).ContextSize } {
            return Err(STATUS_WDF_OBJECT_ATTRIBUTES_INVALID);
        }
    }
    if flags & opt::PARENT_NOT_ALLOWED != 0 {
        if !a.ParentObject.is_null() {
            return Err(STATUS_WDF_PARENT_ASSIGNMENT_NOT_ALLOWED);
        }
    } else if flags & opt::PARENT_REQUIRED_FLAG != 0 && a.ParentObject.is_null() {
        return Err(STATUS_WDF_PARENT_NOT_SPECIFIED);
    }
    if a.ExecutionLevel == _WDF_EXECUTION_LEVEL::WdfExecutionLevelInvalid
        || a.ExecutionLevel > _WDF_EXECUTION_LEVEL::WdfExecutionLevelDispatch
    {
        return Err(STATUS_WDF_OBJECT_ATTRIBUTES_INVALID);
    }
    if a.SynchronizationScope == _WDF_SYNCHRONIZATION_SCOPE::WdfSynchronizationScopeInvalid
        || a.SynchronizationScope > _WDF_SYNCHRONIZATION_SCOPE::WdfSynchronizationScopeNone
    {
        return Err(STATUS_WDF_OBJECT_ATTRIBUTES_INVALID);
    }
    if flags & opt::SYNCHRONIZATION_SCOPE_ALLOWED == 0
        && a.SynchronizationScope
            != _WDF_SYNCHRONIZATION_SCOPE::WdfSynchronizationScopeInheritFromParent
        && a.SynchronizationScope != _WDF_SYNCHRONIZATION_SCOPE::WdfSynchronizationScopeNone
    {
        return Err(STATUS_WDF_SYNCHRONIZATION_SCOPE_INVALID);
    }
    if flags & opt::EXECUTION_LEVEL_ALLOWED == 0
        && a.ExecutionLevel != _WDF_EXECUTION_LEVEL::WdfExecutionLevelInheritFromParent
    {
        return Err(STATUS_WDF_EXECUTION_LEVEL_INVALID);
    }
    Ok(())
}

/// `KMODE_EXCEPTION_NOT_HANDLED`: what a kernel `DbgBreakPoint` becomes without a debugger.
pub const KMODE_EXCEPTION_NOT_HANDLED: u32 = 0x1E;
/// `STATUS_BREAKPOINT`, the exception a `DbgBreakPoint` raises.
pub const STATUS_BREAKPOINT_CODE: u64 = 0x8000_0003;

/// The checks that end in a KMDF verifier break, as parameter 4 of the stop (wdk-sim's own
/// numbering; `docs/sim-fidelity.md` §8 lists each with its framework source).
pub mod verifier_check {
    /// `WdfDeviceInitSetFileObjectConfig` with a config `Size` other than the structure's.
    pub const FILE_OBJECT_CONFIG_SIZE: u64 = 0x5301;
    /// `WdfDeviceInitSetFileObjectConfig` with attributes `FxValidateObjectAttributes` refuses.
    pub const FILE_OBJECT_ATTRIBUTES: u64 = 0x5302;
    /// `WdfDeviceInitSetFileObjectConfig` with an `AutoForwardCleanupClose` that is no
    /// `WDF_TRI_STATE`, or an invalid `FileObjectClass`.
    pub const FILE_OBJECT_CONFIG_VALUE: u64 = 0x5303;
    /// `WdfDeviceInitSetPnpPowerEventCallbacks` with a callbacks `Size` other than the structure's.
    pub const PNP_POWER_CALLBACKS_SIZE: u64 = 0x5304;
    /// `WdfRequestComplete` of a request the driver does not own (already completed, or
    /// completed by the framework after a cancellation, or waiting in a queue):
    /// `VerifyRequestIsDriverOwned`.
    pub const REQUEST_NOT_DRIVER_OWNED: u64 = 0x5306;
    /// `WdfRequestComplete` of a request still marked cancelable (`VerifyCompleteInternal`:
    /// "This results in a race condition in the device driver that can cause double
    /// completions").
    pub const COMPLETING_CANCELABLE: u64 = 0x5307;
    /// `WdfObjectDelete` of an object the driver may not delete (the driver, a device, a file
    /// object, an interrupt: `IsNoDeleteDDI`).
    pub const NO_DELETE_DDI: u64 = 0x5308;
    /// `WdfMemoryCopyFromBuffer` into a read-only memory object (a write request's buffer):
    /// `FxMemoryObject::CopyFromPtr`.
    pub const READ_ONLY_MEMORY: u64 = 0x5309;
    /// `WdfDeviceInitSetRequestAttributes` with attributes `FxValidateObjectAttributes`
    /// refuses (a parent, a wrong `Size`).
    pub const REQUEST_ATTRIBUTES: u64 = 0x530A;
    /// `WdfObjectDelete` of a request's memory object, which the request owns and its
    /// completion releases. **Inference**: the framework embeds these objects in the request;
    /// deleting one is refused here as a no-delete object is.
    pub const REQUEST_MEMORY_DELETE: u64 = 0x530B;
}

/// The stop for a KMDF verifier break (`FxVerifierDbgBreakPoint`, `fxverifier.h` l.71–100).
///
/// With the KMDF verifier on, the framework calls `DbgBreakPoint`; a test machine then stops in
/// its kernel debugger, or, without one, bug-checks with `KMODE_EXCEPTION_NOT_HANDLED` and
/// `STATUS_BREAKPOINT`. wdk-sim stops with that bug check; parameter 4 names the check
/// ([`verifier_check`]), which Windows reports only in the framework's log (`!wdflogdump`).
pub(crate) fn verifier_break(check: u64, rule: &'static str, source: &'static str) -> BugCheck {
    BugCheck::new(
        KMODE_EXCEPTION_NOT_HANDLED,
        [STATUS_BREAKPOINT_CODE, 0, 0, check],
        rule,
        source,
    )
}
