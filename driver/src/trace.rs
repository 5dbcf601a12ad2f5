//! The driver's ETW provider, `RHCA.Driver`, and its `DbgPrintEx` lines.
//!
//! `TraceLogging`-encoded events say what a Windows driver engineer needs to explain a Code 10
//! or a reset on a test machine; `DbgPrintEx` lines (component `DPFLTR_IHVDRIVER_ID`) repeat
//! the errors and warnings among them for the kernel debugger.
//!
//! What it owns: the provider's identity ([`PROVIDER_NAME`], [`PROVIDER_GUID`]), the catalogue
//! of events (their names, levels, keywords and fields, documented in `docs/test-machine.md`),
//! and their encoding. The `TraceLogging` metadata of every event is built at compile time by
//! `const fn`s into statics; an event's field values are encoded into one stack buffer and
//! written with one data descriptor, so writing an event allocates nothing and can happen at
//! any IRQL (the DPC and the ISR included).
//!
//! The GUID is the one `TraceLogging` and `EventSource` derive from the name (SHA-1 over a fixed
//! namespace and the upper-cased UTF-16BE name), so tools that take `*RHCA.Driver` and tools
//! that take the GUID name the same provider.
//!
//! No `unsafe`: the ETW and debug-print calls are in [`crate::sys::etw`].

#![forbid(unsafe_code)]

use core::fmt;

use crate::sys::{self, EVENT_DESCRIPTOR, GUID, NTSTATUS};

/// The provider's name, as decoders show it.
pub const PROVIDER_NAME: &str = "RHCA.Driver";

/// `{bb157faf-f98e-586b-544d-6e0627b3224d}`: the `TraceLogging` name hash of [`PROVIDER_NAME`].
pub const PROVIDER_GUID: GUID = GUID {
    Data1: 0xbb15_7faf,
    Data2: 0xf98e,
    Data3: 0x586b,
    Data4: [0x54, 0x4d, 0x6e, 0x06, 0x27, 0xb3, 0x22, 0x4d],
};

/// The KMDF version the driver is built for (`driver/Cargo.toml`'s
/// `package.metadata.wdk.driver-model`; `tests/tests/trace.rs` checks they agree), as
/// `DriverLoaded` reports it.
pub const KMDF_VERSION: (u32, u32) = (1, 33);

/// Keyword of `PnP`, power and start-up events.
pub const KW_PNP: u64 = 0x1;
/// Keyword of the MAD queues: errors, resets, hostile completions.
pub const KW_QUEUE: u64 = 0x2;
/// Keyword of the stream engines.
pub const KW_STREAM: u64 = 0x4;
/// Keyword of the DMA adapter.
pub const KW_DMA: u64 = 0x8;

/// `TRACE_LEVEL_ERROR`.
pub const LEVEL_ERROR: u8 = 2;
/// `TRACE_LEVEL_WARNING`.
pub const LEVEL_WARNING: u8 = 3;
/// `TRACE_LEVEL_INFORMATION`.
pub const LEVEL_INFO: u8 = 4;

/// `WINEVENT_OPCODE_START` (`winmeta.h`).
const OPCODE_START: u8 = 1;
/// `WINEVENT_OPCODE_STOP`.
const OPCODE_STOP: u8 = 2;
/// `WINEVENT_CHANNEL_TRACELOGGING` (`winmeta.h`): the channel of every `TraceLogging` event.
const CHANNEL_TRACELOGGING: u8 = 11;

/// The type of a field, as `TraceLogging` encodes it (an in-type and an optional out-type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    /// `TlgInUINT32`.
    U32,
    /// `TlgInUINT64`.
    U64,
    /// `TlgInUINT32` shown as hexadecimal (`TlgOutHEX`).
    Hex32,
    /// `TlgInUINT64` shown as hexadecimal (`TlgOutHEX`).
    Hex64,
    /// An `NTSTATUS`: `TlgInUINT32` with `TlgOutNTSTATUS` (decoders print its name).
    Status,
    /// `TlgInBOOL32`.
    Bool,
    /// `TlgInCOUNTEDANSISTRING` with `TlgOutUTF8`: a u16 byte count, then the bytes.
    Str,
}

impl Ty {
    /// The in-type byte (with `_TlgInChain` when an out-type follows) and the out-type (0: none).
    const fn encoding(self) -> (u8, u8) {
        // TlgIn_t: UINT32 8, UINT64 10, BOOL32 13, COUNTEDANSISTRING 23; _TlgInChain when an
        // out-type follows. TlgOut_t: HEX 4, NTSTATUS 14, UTF8 35.
        const CHAIN: u8 = 0x80;
        const UINT32: u8 = 0x08;
        const UINT64: u8 = 0x0A;
        const BOOL32: u8 = 0x0D;
        const COUNTED_ANSI: u8 = 0x17;
        match self {
            Self::U32 => (UINT32, 0),
            Self::U64 => (UINT64, 0),
            Self::Hex32 => (UINT32 | CHAIN, 4),
            Self::Hex64 => (UINT64 | CHAIN, 4),
            Self::Status => (UINT32 | CHAIN, 14),
            Self::Bool => (BOOL32, 0),
            Self::Str => (COUNTED_ANSI | CHAIN, 35),
        }
    }
}

/// A field value.
#[derive(Debug, Clone, Copy)]
pub enum Value<'a> {
    /// For [`Ty::U32`] and [`Ty::Hex32`].
    U32(u32),
    /// For [`Ty::U64`] and [`Ty::Hex64`].
    U64(u64),
    /// For [`Ty::Status`].
    Status(NTSTATUS),
    /// For [`Ty::Bool`].
    Bool(bool),
    /// For [`Ty::Str`].
    Str(&'a str),
}

/// One event of the catalogue.
#[derive(Debug)]
pub struct Event {
    /// Its name.
    pub name: &'static str,
    /// Its descriptor (channel 11, level, opcode, keyword).
    pub descriptor: EVENT_DESCRIPTOR,
    /// Its `TraceLogging` event metadata.
    meta: &'static [u8],
    /// Its fields: names and types.
    pub fields: &'static [(&'static str, Ty)],
    /// Whether it also goes to the debugger (`DbgPrintEx`): errors and warnings that are not
    /// per-operation (a hostile device could flood the debugger with those).
    pub debug_print: bool,
}

/// The length of a metadata block: a u16 size, then the bytes.
const fn event_meta_len(name: &str, fields: &[(&str, Ty)]) -> usize {
    // Size, one tag byte (0: no tags), the name and its nul.
    let mut n = 2 + 1 + name.len() + 1;
    let mut i = 0;
    while i < fields.len() {
        let (in_type, _) = fields[i].1.encoding();
        n += fields[i].0.len() + 1 + 1 + if in_type & 0x80 != 0 { 1 } else { 0 };
        i += 1;
    }
    n
}

/// Copies `s` into `out` at `at`, then a nul; returns the next offset.
const fn put_str<const N: usize>(out: &mut [u8; N], mut at: usize, s: &str) -> usize {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        out[at] = b[i];
        at += 1;
        i += 1;
    }
    out[at] = 0;
    at + 1
}

/// `TraceLogging` event metadata: `UINT16 Size; UINT8 Tags; char Name[]; { char FieldName[];
/// UINT8 InType; [UINT8 OutType;] }…`. `N` must be [`event_meta_len`] of the same arguments
/// (a mismatch fails to compile: the const evaluation indexes out of bounds or leaves a size
/// that differs, caught by the assertion).
const fn event_meta<const N: usize>(name: &str, fields: &[(&str, Ty)]) -> [u8; N] {
    assert!(N <= u16::MAX as usize && N == event_meta_len(name, fields));
    let mut out = [0u8; N];
    let size = (N as u16).to_le_bytes();
    out[0] = size[0];
    out[1] = size[1];
    out[2] = 0;
    let mut at = put_str(&mut out, 3, name);
    let mut i = 0;
    while i < fields.len() {
        at = put_str(&mut out, at, fields[i].0);
        let (in_type, out_type) = fields[i].1.encoding();
        out[at] = in_type;
        at += 1;
        if in_type & 0x80 != 0 {
            out[at] = out_type;
            at += 1;
        }
        i += 1;
    }
    out
}

/// `TraceLogging` provider metadata: `UINT16 Size; char Name[];`.
const fn provider_meta<const N: usize>(name: &str) -> [u8; N] {
    assert!(N == 2 + name.len() + 1);
    let mut out = [0u8; N];
    let size = (N as u16).to_le_bytes();
    out[0] = size[0];
    out[1] = size[1];
    put_str(&mut out, 2, name);
    out
}

static PROVIDER_META: [u8; 2 + PROVIDER_NAME.len() + 1] = provider_meta(PROVIDER_NAME);

/// Defines the catalogue: one static [`Event`] per entry, and [`ALL`].
macro_rules! events {
    ($(
        $(#[doc = $doc:literal])*
        $id:ident = $name:literal, level $level:expr, keyword $kw:expr, opcode $op:expr,
            debug $dbg:expr, { $($field:literal : $ty:ident),* $(,)? };
    )*) => {
        $(
            $(#[doc = $doc])*
            pub static $id: Event = {
                const FIELDS: &[(&str, Ty)] = &[$(($field, Ty::$ty)),*];
                const LEN: usize = event_meta_len($name, FIELDS);
                static META: [u8; LEN] = event_meta::<LEN>($name, FIELDS);
                Event {
                    name: $name,
                    descriptor: EVENT_DESCRIPTOR {
                        Id: 0,
                        Version: 0,
                        Channel: CHANNEL_TRACELOGGING,
                        Level: $level,
                        Opcode: $op,
                        Task: 0,
                        Keyword: $kw,
                    },
                    meta: &META,
                    fields: FIELDS,
                    debug_print: $dbg,
                }
            };
        )*
        /// Every event of the catalogue (`tests/tests/trace.rs` checks `docs/test-machine.md`
        /// §10 lists each).
        pub static ALL: &[&Event] = &[$(&$id),*];
    };
}

events! {
    /// `DriverEntry` ran: the provider is registered.
    DRIVER_LOADED = "DriverLoaded", level LEVEL_INFO, keyword KW_PNP, opcode OPCODE_START,
        debug false, { "Version": Str, "KmdfMajor": U32, "KmdfMinor": U32 };
    /// `EvtDriverUnload`: the last event before the provider is unregistered.
    DRIVER_UNLOADING = "DriverUnloading", level LEVEL_INFO, keyword KW_PNP, opcode OPCODE_STOP,
        debug false, {};
    /// `EvtDriverDeviceAdd` failed: the device shows Code 10 (or 31).
    DEVICE_ADD_FAILED = "DeviceAddFailed", level LEVEL_ERROR, keyword KW_PNP, opcode 0,
        debug true, { "Stage": Str, "Status": Status };
    /// The DMA adapter `IoGetDmaAdapter` granted.
    ADAPTER_GRANTED = "AdapterGranted", level LEVEL_INFO, keyword KW_DMA, opcode 0,
        debug false, { "DescriptionVersion": U32, "DmaAddressWidth": U32, "MapRegisters": U32,
            "MaximumLength": U32, "FlushDmaBuffer": Bool };
    /// `EvtDevicePrepareHardware` succeeded.
    HARDWARE_PREPARED = "HardwarePrepared", level LEVEL_INFO, keyword KW_PNP, opcode OPCODE_START,
        debug false, { "BarLength": U32, "MessageInterrupts": U32, "Vectors": U32,
            "NodeGuid": Hex64, "InterfaceVersion": Hex32 };
    /// `EvtDevicePrepareHardware` failed: the device shows Code 10 with this status.
    PREPARE_HARDWARE_FAILED = "PrepareHardwareFailed", level LEVEL_ERROR, keyword KW_PNP,
        opcode 0, debug true, { "Stage": Str, "Reason": Str, "Status": Status };
    /// `EvtDeviceReleaseHardware`.
    HARDWARE_RELEASED = "HardwareReleased", level LEVEL_INFO, keyword KW_PNP, opcode OPCODE_STOP,
        debug false, { "DeviceGone": Bool };
    /// `EvtDeviceD0Entry` succeeded.
    D0_ENTRY = "D0Entry", level LEVEL_INFO, keyword KW_PNP, opcode OPCODE_START,
        debug false, { "PreviousState": U32 };
    /// `EvtDeviceD0Entry` failed: the device shows Code 10 with this status.
    D0_ENTRY_FAILED = "D0EntryFailed", level LEVEL_ERROR, keyword KW_PNP, opcode 0,
        debug true, { "PreviousState": U32, "Status": Status };
    /// `EvtDeviceD0Exit`: the device was quiesced.
    D0_EXIT = "D0Exit", level LEVEL_INFO, keyword KW_PNP, opcode OPCODE_STOP,
        debug false, { "TargetState": U32 };
    /// A work queue or the completion queue reported an error: the device is reset.
    QUEUE_ERROR = "QueueError", level LEVEL_ERROR, keyword KW_QUEUE, opcode 0,
        debug true, { "CqStatus": Hex32, "FailedQueues": Hex32 };
    /// A send queue stopped consuming sends (the watchdog): the device is reset.
    QUEUE_STALLED = "QueueStalled", level LEVEL_ERROR, keyword KW_QUEUE, opcode 0,
        debug true, { "Ticks": U32 };
    /// The device was reset and re-enabled after a queue error or stall.
    QUEUE_RESET = "QueueReset", level LEVEL_WARNING, keyword KW_QUEUE, opcode 0,
        debug true, { "Cause": Str, "Enabled": Bool, "Resets": U64 };
    /// A completion the device could not legitimately have written, dropped.
    HOSTILE_CQE = "HostileCqe", level LEVEL_WARNING, keyword KW_QUEUE, opcode 0,
        debug false, { "Kind": Str, "Reason": Str, "Total": U64 };
    /// A stream started on an engine.
    STREAM_STARTED = "StreamStarted", level LEVEL_INFO, keyword KW_STREAM, opcode OPCODE_START,
        debug false, { "Engine": U32, "Strategy": Str, "RingBytes": U64, "SegmentBytes": U32 };
    /// A stream could not start.
    STREAM_START_FAILED = "StreamStartFailed", level LEVEL_WARNING, keyword KW_STREAM, opcode 0,
        debug true, { "Engine": U32, "Strategy": Str, "Status": Status };
    /// A stream ended.
    STREAM_ENDED = "StreamEnded", level LEVEL_INFO, keyword KW_STREAM, opcode OPCODE_STOP,
        debug false, { "Engine": U32, "Reason": Str, "Records": U64, "Bytes": U64 };
}

/// Registers the provider (at `DriverEntry`); the driver runs without tracing if it cannot.
pub fn register() {
    if let Err(st) = sys::etw::register(&PROVIDER_GUID) {
        sys::etw::debug_print(
            sys::DPFLTR_WARNING_LEVEL,
            format_args!(
                "EtwRegister failed with {:#010x}; no ETW events",
                st.cast_unsigned()
            ),
        );
    }
}

/// Unregisters the provider (at `EvtDriverUnload`).
pub fn unregister() {
    emit(&DRIVER_UNLOADING, &[]);
    sys::etw::unregister();
}

/// The event's fields and values as `Name=value …`, for the debugger.
struct Shown<'a>(&'a Event, &'a [Value<'a>]);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.name)?;
        for ((name, ty), v) in self.0.fields.iter().zip(self.1) {
            match (ty, v) {
                (Ty::Hex32, Value::U32(x)) => write!(f, " {name}={x:#010x}")?,
                (_, Value::Status(s)) => write!(f, " {name}={:#010x}", s.cast_unsigned())?,
                (Ty::Hex64, Value::U64(x)) => write!(f, " {name}={x:#x}")?,
                (_, Value::U32(x)) => write!(f, " {name}={x}")?,
                (_, Value::U64(x)) => write!(f, " {name}={x}")?,
                (_, Value::Bool(b)) => write!(f, " {name}={b}")?,
                (_, Value::Str(s)) => write!(f, " {name}={s}")?,
            }
        }
        Ok(())
    }
}

/// The largest payload of one event: the catalogue's fields are a few integers and short
/// strings.
const PAYLOAD_MAX: usize = 256;

/// Writes `event` with `values`, one per field in order. A value of the wrong kind, or a payload
/// that would not fit, is a driver bug: the event is not written (a debug build asserts).
pub fn emit(event: &Event, values: &[Value<'_>]) {
    let mut payload = [0u8; PAYLOAD_MAX];
    let mut len = 0;
    let mut ok = values.len() == event.fields.len();
    for ((_, ty), v) in event.fields.iter().zip(values) {
        ok &= match (ty, v) {
            (Ty::U32 | Ty::Hex32, Value::U32(x)) => put(&mut payload, &mut len, &x.to_le_bytes()),
            (Ty::Status, Value::Status(s)) => {
                put(&mut payload, &mut len, &s.cast_unsigned().to_le_bytes())
            }
            (Ty::U64 | Ty::Hex64, Value::U64(x)) => put(&mut payload, &mut len, &x.to_le_bytes()),
            (Ty::Bool, Value::Bool(b)) => put(&mut payload, &mut len, &u32::from(*b).to_le_bytes()),
            (Ty::Str, Value::Str(s)) => {
                // Counted: a u16 byte count, then the bytes (cut at the payload's room).
                let n = s.len().min(PAYLOAD_MAX) as u16;
                put(&mut payload, &mut len, &n.to_le_bytes())
                    && put(&mut payload, &mut len, &s.as_bytes()[..usize::from(n)])
            }
            _ => false,
        };
    }
    debug_assert!(
        ok,
        "trace event {} written with values that do not fit it",
        event.name
    );
    if !ok {
        return;
    }
    sys::etw::write(
        &event.descriptor,
        &PROVIDER_META,
        event.meta,
        &[&payload[..len]],
    );
    if event.debug_print {
        let level = if event.descriptor.Level <= LEVEL_ERROR {
            sys::DPFLTR_ERROR_LEVEL
        } else {
            sys::DPFLTR_WARNING_LEVEL
        };
        sys::etw::debug_print(level, format_args!("{}", Shown(event, values)));
    }
}

/// Appends `bytes` to the payload; false when they do not fit.
fn put(payload: &mut [u8; PAYLOAD_MAX], len: &mut usize, bytes: &[u8]) -> bool {
    let Some(end) = len.checked_add(bytes.len()).filter(|&e| e <= PAYLOAD_MAX) else {
        return false;
    };
    payload[*len..end].copy_from_slice(bytes);
    *len = end;
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_follows_the_tracelogging_layout() {
        let m = STREAM_STARTED.meta;
        assert_eq!(usize::from(u16::from_le_bytes([m[0], m[1]])), m.len());
        assert_eq!(m[2], 0, "no event tags");
        assert!(m[3..].starts_with(b"StreamStarted\0Engine\0\x08Strategy\0\x97\x23"));
        assert_eq!(&PROVIDER_META[2..], b"RHCA.Driver\0");
        assert_eq!(usize::from(PROVIDER_META[0]), PROVIDER_META.len());
    }

    #[test]
    fn every_event_is_tracelogging_and_named_once() {
        for (i, e) in ALL.iter().enumerate() {
            assert_eq!(e.descriptor.Channel, CHANNEL_TRACELOGGING, "{}", e.name);
            assert!(
                e.descriptor.Level >= LEVEL_ERROR && e.descriptor.Keyword != 0,
                "{}",
                e.name
            );
            assert!(
                ALL[i + 1..].iter().all(|o| o.name != e.name),
                "{} twice",
                e.name
            );
        }
    }
}
