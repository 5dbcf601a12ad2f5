//! Event Tracing for Windows and the debugger's print buffer, as a trace session on the
//! simulated machine sees them.
//!
//! What it owns: the registered ETW providers ([`crate::ntddk::EtwRegister`]), the events they
//! write, decoded from their `TraceLogging` metadata the way `tracefmt`, WPA or TDH decode them,
//! and the `DbgPrintEx` lines. One session is always listening at a level the [`Config`] sets
//! (`trace_level`, verbose by default, all keywords), as if `tracelog -start … -level 5` had run
//! before the driver loaded; `Machine::trace_events` and `Machine::debug_prints` read it.
//!
//! Decoding is strict: an event whose metadata or payload does not follow the `TraceLogging`
//! encoding (sizes, nul-terminated names, field types, no bytes left over) is kept as a
//! decode error ([`Machine::trace_errors`]) instead of an event, because a real decoder would
//! show garbage or nothing for it.
//!
//! [`Config`]: crate::Config
//! [`Machine::trace_events`]: crate::Machine::trace_events
//! [`Machine::debug_prints`]: crate::Machine::debug_prints
//! [`Machine::trace_errors`]: crate::Machine::trace_errors

use std::fmt;

use crate::types::{GUID, KIRQL};

/// `EVENT_DATA_DESCRIPTOR_TYPE_EVENT_METADATA` (`evntprov.h`): the descriptor's `Reserved` (its
/// `Type` byte) marks `TraceLogging` event metadata.
pub const EVENT_DATA_DESCRIPTOR_TYPE_EVENT_METADATA: u32 = 1;
/// `EVENT_DATA_DESCRIPTOR_TYPE_PROVIDER_METADATA`: the provider's traits (its name).
pub const EVENT_DATA_DESCRIPTOR_TYPE_PROVIDER_METADATA: u32 = 2;
/// `WINEVENT_CHANNEL_TRACELOGGING` (`winmeta.h`): the channel of every `TraceLogging` event.
pub const WINEVENT_CHANNEL_TRACELOGGING: u8 = 11;
/// The most data descriptors `EtwWrite*` accept (`STATUS_INVALID_PARAMETER` above).
pub const MAX_EVENT_DATA_DESCRIPTORS: u32 = 128;

/// A value of a decoded field, as its `TraceLogging` in-type and out-type say to show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceValue {
    /// `TlgInINT32`.
    I32(i32),
    /// `TlgInUINT32`.
    U32(u32),
    /// `TlgInINT64`.
    I64(i64),
    /// `TlgInUINT64`.
    U64(u64),
    /// `TlgInHEXINT32`, or `TlgInUINT32` with `TlgOutHEX`.
    Hex32(u32),
    /// `TlgInHEXINT64`, or `TlgInUINT64` with `TlgOutHEX`.
    Hex64(u64),
    /// `TlgInUINT32` with `TlgOutNTSTATUS`.
    NtStatus(u32),
    /// `TlgInBOOL32`.
    Bool(bool),
    /// `TlgInANSISTRING` or `TlgInCOUNTEDANSISTRING` (with or without `TlgOutUTF8`).
    Str(String),
    /// `TlgInGUID`.
    Guid([u8; 16]),
}

impl fmt::Display for TraceValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::I32(v) => write!(f, "{v}"),
            Self::U32(v) => write!(f, "{v}"),
            Self::I64(v) => write!(f, "{v}"),
            Self::U64(v) => write!(f, "{v}"),
            Self::Hex32(v) | Self::NtStatus(v) => write!(f, "{v:#010x}"),
            Self::Hex64(v) => write!(f, "{v:#x}"),
            Self::Bool(v) => write!(f, "{v}"),
            Self::Str(s) => write!(f, "{s:?}"),
            Self::Guid(g) => f.write_str(&guid_bytes_string(g)),
        }
    }
}

/// One event a trace session recorded, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceEvent {
    /// Sequence number on this machine (0 first).
    pub seq: u64,
    /// The provider's name, from its `TraceLogging` metadata.
    pub provider: String,
    /// The provider's GUID as registered (`{xxxxxxxx-…}`).
    pub provider_guid: String,
    /// The event's name.
    pub name: String,
    /// `EVENT_DESCRIPTOR::Level` (1 critical … 5 verbose).
    pub level: u8,
    /// `EVENT_DESCRIPTOR::Opcode` (1 start, 2 stop).
    pub opcode: u8,
    /// `EVENT_DESCRIPTOR::Keyword`.
    pub keyword: u64,
    /// The IRQL the event was written at.
    pub irql: KIRQL,
    /// The fields, in order.
    pub fields: Vec<(String, TraceValue)>,
}

impl TraceEvent {
    /// The value of field `name`.
    #[must_use]
    pub fn field(&self, name: &str) -> Option<&TraceValue> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }
}

impl fmt::Display for TraceEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.level {
            1 => "critical",
            2 => "error",
            3 => "warning",
            4 => "info",
            _ => "verbose",
        };
        write!(f, "{}/{} [{level}]", self.provider, self.name)?;
        for (name, value) in &self.fields {
            write!(f, " {name}={value}")?;
        }
        Ok(())
    }
}

/// One `DbgPrintEx` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebugPrint {
    /// `ComponentId` (`DPFLTR_IHVDRIVER_ID` = 77 for a device driver).
    pub component: u32,
    /// `Level` (`DPFLTR_ERROR_LEVEL` = 0 … `DPFLTR_INFO_LEVEL` = 3, or a mask above 31).
    pub level: u32,
    /// The formatted text, as the debugger shows it.
    pub text: String,
}

/// A registered provider.
#[derive(Debug)]
pub(crate) struct Provider {
    pub(crate) handle: u64,
    pub(crate) guid: [u8; 16],
}

/// The machine's ETW state: providers, the session's events and the debug print buffer.
#[derive(Debug, Default)]
pub(crate) struct Etw {
    pub(crate) providers: Vec<Provider>,
    pub(crate) events: Vec<TraceEvent>,
    pub(crate) errors: Vec<String>,
    pub(crate) prints: Vec<DebugPrint>,
}

impl Etw {
    /// A new registration handle for `guid`.
    ///
    /// Handles look like kernel pointers, as on Windows, so that 0 or a small integer is never
    /// valid. They are derived from the GUID (and how many registrations of it are live), so
    /// every machine gives a driver the same handle: a driver keeps its handle in a static, as
    /// on Windows, and several machines in one test process share the driver's statics.
    pub(crate) fn register(&mut self, guid: [u8; 16]) -> u64 {
        let hash = guid.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        let live = self.providers.iter().filter(|p| p.guid == guid).count() as u64;
        let mut handle = 0xFFFF_A000_0000_0000 | ((hash & 0xFFFF_FFFF) << 8) | ((live & 0xF) << 4);
        while self.provider(handle).is_some() {
            handle = handle.wrapping_add(0x10) | 0xFFFF_A000_0000_0000;
        }
        self.providers.push(Provider { handle, guid });
        handle
    }

    /// Removes registration `handle`; false when it is not registered.
    pub(crate) fn unregister(&mut self, handle: u64) -> bool {
        let before = self.providers.len();
        self.providers.retain(|p| p.handle != handle);
        self.providers.len() != before
    }

    pub(crate) fn provider(&self, handle: u64) -> Option<&Provider> {
        self.providers.iter().find(|p| p.handle == handle)
    }

    /// Records an event decoded by [`decode`], or its decode error.
    pub(crate) fn record(&mut self, decoded: Result<Decoded, String>, irql: KIRQL, guid: [u8; 16]) {
        match decoded {
            Ok(d) => {
                let seq = self.events.len() as u64;
                self.events.push(TraceEvent {
                    seq,
                    provider: d.provider,
                    provider_guid: guid_bytes_string(&guid),
                    name: d.name,
                    level: d.level,
                    opcode: d.opcode,
                    keyword: d.keyword,
                    irql,
                    fields: d.fields,
                });
            }
            Err(e) => self.errors.push(e),
        }
    }
}

/// The bytes of a `GUID` as it lies in memory.
#[must_use]
pub fn guid_bytes(g: &GUID) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..4].copy_from_slice(&g.Data1.to_le_bytes());
    b[4..6].copy_from_slice(&g.Data2.to_le_bytes());
    b[6..8].copy_from_slice(&g.Data3.to_le_bytes());
    b[8..].copy_from_slice(&g.Data4);
    b
}

/// `{xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}` for the in-memory bytes of a GUID.
#[must_use]
pub fn guid_bytes_string(b: &[u8; 16]) -> String {
    let d1 = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    let d2 = u16::from_le_bytes([b[4], b[5]]);
    let d3 = u16::from_le_bytes([b[6], b[7]]);
    format!(
        "{{{d1:08x}-{d2:04x}-{d3:04x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}}}",
        b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]
    )
}

/// An event as the metadata and payload describe it.
#[derive(Debug)]
pub(crate) struct Decoded {
    provider: String,
    name: String,
    level: u8,
    opcode: u8,
    keyword: u64,
    fields: Vec<(String, TraceValue)>,
}

/// The header of an event: what `EVENT_DESCRIPTOR` says.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Header {
    pub(crate) channel: u8,
    pub(crate) level: u8,
    pub(crate) opcode: u8,
    pub(crate) keyword: u64,
}

/// A byte reader that fails instead of running past the end.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    const fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, at: 0 }
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| {
                format!(
                    "{what}: needs {n} bytes at offset {}, {} left",
                    self.at,
                    self.bytes.len() - self.at
                )
            })?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn u8(&mut self, what: &str) -> Result<u8, String> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &str) -> Result<u16, String> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], String> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, what)?);
        Ok(a)
    }

    /// A nul-terminated UTF-8 string.
    fn cstr(&mut self, what: &str) -> Result<String, String> {
        let rest = &self.bytes[self.at..];
        let n = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| format!("{what}: no terminating nul"))?;
        let s = std::str::from_utf8(&rest[..n]).map_err(|e| format!("{what}: not UTF-8 ({e})"))?;
        self.at += n + 1;
        Ok(s.to_string())
    }

    const fn done(&self) -> bool {
        self.at == self.bytes.len()
    }
}

// TlgIn_t and TlgOut_t (`TraceLogging`Provider.h), the values this decoder understands.
const IN_ANSISTRING: u8 = 2;
const IN_INT32: u8 = 7;
const IN_UINT32: u8 = 8;
const IN_INT64: u8 = 9;
const IN_UINT64: u8 = 10;
const IN_BOOL32: u8 = 13;
const IN_GUID: u8 = 15;
const IN_HEXINT32: u8 = 20;
const IN_HEXINT64: u8 = 21;
const IN_COUNTEDANSISTRING: u8 = 23;
const IN_CHAIN: u8 = 0x80;
const IN_COUNT_MASK: u8 = 0x60;
const OUT_HEX: u8 = 4;
const OUT_NTSTATUS: u8 = 14;
const OUT_UTF8: u8 = 35;
const OUT_CHAIN: u8 = 0x80;

/// Decodes one `TraceLogging` event: `provider` and `event` are the two metadata blocks (the
/// descriptors of type 2 and 1), `payload` the other descriptors' bytes end to end.
pub(crate) fn decode(
    header: Header,
    provider: &[u8],
    event: &[u8],
    payload: &[u8],
) -> Result<Decoded, String> {
    if header.channel != WINEVENT_CHANNEL_TRACELOGGING {
        return Err(format!(
            "EVENT_DESCRIPTOR::Channel is {}, not 11 (WINEVENT_CHANNEL_TRACELOGGING)",
            header.channel
        ));
    }
    let mut p = Reader::new(provider);
    let size = p.u16("provider metadata size")?;
    if usize::from(size) != provider.len() {
        return Err(format!(
            "provider metadata says {size} bytes, its descriptor {}",
            provider.len()
        ));
    }
    let provider_name = p.cstr("provider name")?;
    // Trait chunks may follow the name: each is a u16 size (counting itself), a type and data.
    while !p.done() {
        let chunk = p.u16("provider trait size")?;
        if chunk < 3 {
            return Err(format!("provider trait of {chunk} bytes (at least 3)"));
        }
        p.take(usize::from(chunk) - 2, "provider trait")?;
    }

    let mut e = Reader::new(event);
    let size = e.u16("event metadata size")?;
    if usize::from(size) != event.len() {
        return Err(format!(
            "event metadata says {size} bytes, its descriptor {}",
            event.len()
        ));
    }
    // Tags: bytes until one has its high bit clear.
    while e.u8("event tags")? & 0x80 != 0 {}
    let name = e.cstr("event name")?;
    let mut data = Reader::new(payload);
    let mut fields = Vec::new();
    while !e.done() {
        let field = e.cstr("field name")?;
        let in_type = e.u8("field in-type")?;
        let out_type = if in_type & IN_CHAIN != 0 {
            let out = e.u8("field out-type")?;
            if out & OUT_CHAIN != 0 {
                while e.u8("field tags")? & 0x80 != 0 {}
            }
            out & !OUT_CHAIN
        } else {
            0
        };
        if in_type & IN_COUNT_MASK != 0 {
            return Err(format!(
                "{name}.{field}: arrays and custom types are not decoded (in-type {in_type:#x})"
            ));
        }
        let what = format!("{name}.{field}");
        let value = field_value(in_type & !IN_CHAIN, out_type, &mut data, &what)?;
        fields.push((field, value));
    }
    if !data.done() {
        return Err(format!(
            "{name}: {} payload bytes left after the last field",
            payload.len() - data.at
        ));
    }
    Ok(Decoded {
        provider: provider_name,
        name,
        level: header.level,
        opcode: header.opcode,
        keyword: header.keyword,
        fields,
    })
}

/// One field's value from the payload, by its in-type and out-type.
fn field_value(
    in_type: u8,
    out_type: u8,
    data: &mut Reader<'_>,
    what: &str,
) -> Result<TraceValue, String> {
    Ok(match (in_type, out_type) {
        (IN_INT32, 0) => TraceValue::I32(i32::from_le_bytes(data.array(what)?)),
        (IN_UINT32, 0) => TraceValue::U32(u32::from_le_bytes(data.array(what)?)),
        (IN_UINT32, OUT_HEX) | (IN_HEXINT32, 0) => {
            TraceValue::Hex32(u32::from_le_bytes(data.array(what)?))
        }
        (IN_UINT32, OUT_NTSTATUS) => TraceValue::NtStatus(u32::from_le_bytes(data.array(what)?)),
        (IN_INT64, 0) => TraceValue::I64(i64::from_le_bytes(data.array(what)?)),
        (IN_UINT64, 0) => TraceValue::U64(u64::from_le_bytes(data.array(what)?)),
        (IN_UINT64, OUT_HEX) | (IN_HEXINT64, 0) => {
            TraceValue::Hex64(u64::from_le_bytes(data.array(what)?))
        }
        (IN_BOOL32, 0) => match u32::from_le_bytes(data.array(what)?) {
            0 => TraceValue::Bool(false),
            1 => TraceValue::Bool(true),
            v => return Err(format!("{what}: BOOL32 of {v}")),
        },
        (IN_GUID, 0) => TraceValue::Guid(data.array(what)?),
        (IN_ANSISTRING, 0 | OUT_UTF8) => TraceValue::Str(data.cstr(what)?),
        (IN_COUNTEDANSISTRING, 0 | OUT_UTF8) => {
            let n = data.u16(what)?;
            let bytes = data.take(usize::from(n), what)?;
            TraceValue::Str(
                std::str::from_utf8(bytes)
                    .map_err(|e| format!("{what}: not UTF-8 ({e})"))?
                    .to_string(),
            )
        }
        (i, o) => {
            return Err(format!(
                "{what}: in-type {i} with out-type {o} is not decoded here"
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            channel: 11,
            level: 4,
            opcode: 0,
            keyword: 1,
        }
    }

    fn meta(body: &[u8]) -> Vec<u8> {
        let mut v = ((body.len() + 2) as u16).to_le_bytes().to_vec();
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn an_event_with_every_decoded_type() {
        let provider = meta(b"Prov\0");
        let event = meta(b"\0Ev\0A\0\x08B\0\x88\x0eC\0\x17D\0\x0aE\0\x0d");
        let mut payload = 7u32.to_le_bytes().to_vec();
        payload.extend_from_slice(&0xC000_0182u32.to_le_bytes());
        payload.extend_from_slice(&3u16.to_le_bytes());
        payload.extend_from_slice(b"abc");
        payload.extend_from_slice(&9u64.to_le_bytes());
        payload.extend_from_slice(&1u32.to_le_bytes());
        let d = decode(header(), &provider, &event, &payload).unwrap();
        assert_eq!(d.provider, "Prov");
        assert_eq!(d.name, "Ev");
        assert_eq!(
            d.fields,
            vec![
                ("A".to_string(), TraceValue::U32(7)),
                ("B".to_string(), TraceValue::NtStatus(0xC000_0182)),
                ("C".to_string(), TraceValue::Str("abc".into())),
                ("D".to_string(), TraceValue::U64(9)),
                ("E".to_string(), TraceValue::Bool(true)),
            ]
        );
    }

    #[test]
    fn malformed_events_are_errors_not_events() {
        let provider = meta(b"Prov\0");
        let event = meta(b"\0Ev\0A\0\x08");
        // Short payload, long payload, wrong sizes, wrong channel.
        assert!(decode(header(), &provider, &event, &[1, 2]).is_err());
        assert!(decode(header(), &provider, &event, &[0; 5]).is_err());
        assert!(decode(header(), &provider[..4], &event, &[0; 4]).is_err());
        let mut bad = event.clone();
        bad[0] += 1;
        assert!(decode(header(), &provider, &bad, &[0; 4]).is_err());
        let h = Header {
            channel: 0,
            ..header()
        };
        assert!(decode(h, &provider, &event, &[0; 4]).is_err());
        assert!(decode(header(), &provider, &event, &[0; 4]).is_ok());
    }

    #[test]
    fn guids_print_as_windows_does() {
        let g = GUID {
            Data1: 0x1234_5678,
            Data2: 0x9abc,
            Data3: 0xdef0,
            Data4: [1, 2, 3, 4, 5, 6, 7, 8],
        };
        assert_eq!(
            guid_bytes_string(&guid_bytes(&g)),
            "{12345678-9abc-def0-0102-030405060708}"
        );
    }
}
