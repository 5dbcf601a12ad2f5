//! The kernel-mode ETW provider routines (`wdm.h`): `EtwRegister`, `EtwUnregister`,
//! `EtwEventEnabled`, `EtwProviderEnabled` and `EtwWriteTransfer`, with their documented IRQL
//! rules and return codes. Events go to the machine's trace session ([`crate::trace`]).

#![expect(non_snake_case, reason = "mirrors the C routine and parameter names")]

use crate::constants::{STATUS_INVALID_HANDLE, STATUS_INVALID_PARAMETER, STATUS_SUCCESS};
use crate::machine::{irql, with_state};
use crate::trace::{self, Header};
use crate::typed::PASSIVE_LEVEL;
use crate::types::{
    BOOLEAN, LPCGUID, NTSTATUS, PCEVENT_DESCRIPTOR, PETWENABLECALLBACK, PEVENT_DATA_DESCRIPTOR,
    PREGHANDLE, PVOID, REGHANDLE, UCHAR, ULONG, ULONGLONG,
};

/// `EVENT_CONTROL_CODE_ENABLE_PROVIDER` (`evntprov.h`).
const EVENT_CONTROL_CODE_ENABLE_PROVIDER: ULONG = 1;

/// Whether the machine's session takes events of `level` (0: every level, as ETW treats it).
fn session_takes(level: u8) -> bool {
    with_state(|_, cfg| Ok(takes(cfg, level)))
}

fn takes(cfg: &crate::Config, level: u8) -> bool {
    cfg.trace_level != 0 && (level == 0 || level <= cfg.trace_level)
}

/// `NTSTATUS EtwRegister(LPCGUID ProviderId, PETWENABLECALLBACK EnableCallback, PVOID
/// CallbackContext, PREGHANDLE RegHandle)`, at `PASSIVE_LEVEL`.
///
/// When the session already listens (it always does unless `Config::trace_level` is 0), the
/// enable callback runs before `EtwRegister` returns, as ETW calls it for a provider that a
/// running session enables.
///
/// # Safety
/// `ProviderId` and `RegHandle` must be valid; the callback, if any, must stay callable until
/// `EtwUnregister`. The caller must run on a CPU of a [`crate::Machine`].
#[must_use]
#[inline(never)]
pub unsafe fn EtwRegister(
    ProviderId: LPCGUID,
    EnableCallback: PETWENABLECALLBACK,
    CallbackContext: PVOID,
    RegHandle: PREGHANDLE,
) -> NTSTATUS {
    super::check_max(PASSIVE_LEVEL, "EtwRegister");
    if ProviderId.is_null() || RegHandle.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    // SAFETY: the caller passes a valid GUID.
    let guid = trace::guid_bytes(unsafe { &*ProviderId });
    let (handle, level) = with_state(|st, cfg| Ok((st.etw.register(guid), cfg.trace_level)));
    // SAFETY: the caller passes a valid handle location.
    unsafe { RegHandle.write(handle) };
    if let (Some(cb), true) = (EnableCallback, level != 0) {
        // SAFETY: the provider's own callback with its own context, at PASSIVE_LEVEL, as ETW
        // calls it; the GUID is the caller's.
        unsafe {
            cb(
                ProviderId,
                EVENT_CONTROL_CODE_ENABLE_PROVIDER,
                level,
                u64::MAX,
                0,
                core::ptr::null_mut(),
                CallbackContext,
            );
        }
    }
    STATUS_SUCCESS
}

/// `NTSTATUS EtwUnregister(REGHANDLE RegHandle)`, at `PASSIVE_LEVEL`.
///
/// # Safety
/// The caller must run on a CPU of a [`crate::Machine`].
#[must_use]
#[inline(never)]
pub unsafe fn EtwUnregister(RegHandle: REGHANDLE) -> NTSTATUS {
    super::check_max(PASSIVE_LEVEL, "EtwUnregister");
    if with_state(|st, _| Ok(st.etw.unregister(RegHandle))) {
        STATUS_SUCCESS
    } else {
        STATUS_INVALID_HANDLE
    }
}

/// `BOOLEAN EtwEventEnabled(REGHANDLE RegHandle, PCEVENT_DESCRIPTOR EventDescriptor)`.
///
/// # Safety
/// `EventDescriptor` must be valid. The caller must run on a CPU of a [`crate::Machine`].
#[must_use]
#[inline(never)]
pub unsafe fn EtwEventEnabled(
    RegHandle: REGHANDLE,
    EventDescriptor: PCEVENT_DESCRIPTOR,
) -> BOOLEAN {
    if EventDescriptor.is_null() || with_state(|st, _| Ok(st.etw.provider(RegHandle).is_none())) {
        return 0;
    }
    // SAFETY: the caller passes a valid descriptor.
    let level = unsafe { (*EventDescriptor).Level };
    BOOLEAN::from(session_takes(level))
}

/// `BOOLEAN EtwProviderEnabled(REGHANDLE RegHandle, UCHAR Level, ULONGLONG Keyword)`.
///
/// # Safety
/// The caller must run on a CPU of a [`crate::Machine`].
#[must_use]
#[inline(never)]
pub unsafe fn EtwProviderEnabled(
    RegHandle: REGHANDLE,
    Level: UCHAR,
    Keyword: ULONGLONG,
) -> BOOLEAN {
    let _ = Keyword; // The session enables every keyword.
    if with_state(|st, _| Ok(st.etw.provider(RegHandle).is_none())) {
        return 0;
    }
    BOOLEAN::from(session_takes(Level))
}

/// `NTSTATUS EtwWriteTransfer(REGHANDLE RegHandle, PCEVENT_DESCRIPTOR EventDescriptor, LPCGUID
/// ActivityId, LPCGUID RelatedActivityId, ULONG UserDataCount, PEVENT_DATA_DESCRIPTOR
/// UserData)`, at any IRQL.
///
/// `STATUS_INVALID_HANDLE` for a handle not registered, `STATUS_INVALID_PARAMETER` for more
/// than 128 descriptors, `STATUS_SUCCESS` (and nothing logged) when no session takes the
/// event's level. The event is decoded as `TraceLogging` ([`crate::trace`]); one that does not
/// decode is kept as a trace error.
///
/// # Safety
/// `EventDescriptor` must be valid, and `UserData` must point to `UserDataCount` descriptors
/// whose `Ptr`/`Size` name readable memory. The caller must run on a CPU of a
/// [`crate::Machine`].
#[must_use]
#[inline(never)]
pub unsafe fn EtwWriteTransfer(
    RegHandle: REGHANDLE,
    EventDescriptor: PCEVENT_DESCRIPTOR,
    ActivityId: LPCGUID,
    RelatedActivityId: LPCGUID,
    UserDataCount: ULONG,
    UserData: PEVENT_DATA_DESCRIPTOR,
) -> NTSTATUS {
    // The session's decoding and storage are the kernel's allocations, not the driver's: an
    // event written from a DPC must not count as the DPC allocating.
    let _kernel = crate::heap::KernelEntry::new();
    let _ = (ActivityId, RelatedActivityId);
    if EventDescriptor.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    // SAFETY: the caller passes a valid descriptor.
    let d = unsafe { *EventDescriptor };
    // One look at the machine: the registration, and whether the session takes the level.
    let Some((guid, takes)) = with_state(|st, cfg| {
        Ok(st
            .etw
            .provider(RegHandle)
            .map(|p| (p.guid, takes(cfg, d.Level))))
    }) else {
        return STATUS_INVALID_HANDLE;
    };
    if UserDataCount > trace::MAX_EVENT_DATA_DESCRIPTORS
        || (UserDataCount > 0 && UserData.is_null())
    {
        return STATUS_INVALID_PARAMETER;
    }
    if !takes {
        return STATUS_SUCCESS;
    }
    let header = Header {
        channel: d.Channel,
        level: d.Level,
        opcode: d.Opcode,
        keyword: d.Keyword,
    };
    let descriptors: &[crate::types::EVENT_DATA_DESCRIPTOR] = if UserDataCount == 0 {
        &[]
    } else {
        // SAFETY: the caller passes `UserDataCount` descriptors at `UserData`.
        unsafe { core::slice::from_raw_parts(UserData, UserDataCount as usize) }
    };
    let decoded = gather(descriptors)
        .and_then(|(provider, event, payload)| trace::decode(header, &provider, &event, &payload));
    let at = irql();
    with_state(|st, _| {
        st.etw.record(decoded, at, guid);
        Ok(())
    });
    STATUS_SUCCESS
}

/// Provider metadata, event metadata, payload.
type Gathered = (Vec<u8>, Vec<u8>, Vec<u8>);

/// The provider metadata, the event metadata and the payload of a `TraceLogging` event's
/// descriptors: metadata first (types 2 then 1), data descriptors of type 0 after.
fn gather(descriptors: &[crate::types::EVENT_DATA_DESCRIPTOR]) -> Result<Gathered, String> {
    let read = |i: usize, d: &crate::types::EVENT_DATA_DESCRIPTOR| -> Result<Vec<u8>, String> {
        if d.Size == 0 {
            return Ok(Vec::new());
        }
        if d.Ptr == 0 {
            return Err(format!(
                "data descriptor {i}: a null pointer with {} bytes",
                d.Size
            ));
        }
        // SAFETY: the caller of EtwWriteTransfer passes readable memory of `Size` bytes at
        // `Ptr` (host memory: the simulated kernel's address space is the host's).
        Ok(
            unsafe { core::slice::from_raw_parts(d.Ptr as usize as *const u8, d.Size as usize) }
                .to_vec(),
        )
    };
    let kind = |d: &crate::types::EVENT_DATA_DESCRIPTOR| d.Reserved & 0xFF;
    match descriptors {
        [p, e, rest @ ..]
            if kind(p) == trace::EVENT_DATA_DESCRIPTOR_TYPE_PROVIDER_METADATA
                && kind(e) == trace::EVENT_DATA_DESCRIPTOR_TYPE_EVENT_METADATA =>
        {
            let mut payload = Vec::new();
            for (i, d) in rest.iter().enumerate() {
                if kind(d) != 0 {
                    return Err(format!(
                        "data descriptor {}: type {} among the data (metadata goes first)",
                        i + 2,
                        kind(d)
                    ));
                }
                payload.extend_from_slice(&read(i + 2, d)?);
            }
            Ok((read(0, p)?, read(1, e)?, payload))
        }
        _ => Err(
            "not a TraceLogging event: descriptors 0 and 1 must be the provider and event metadata (types 2 and 1)"
                .to_string(),
        ),
    }
}
