//! The stream engine's memory structures (`docs/device.md` §8).
//!
//! They are the descriptor table that describes the circular buffer once (the persistent mapping), the per-segment completion
//! records, and the data pattern by which capture and playback data are verified.
//!
//! Segment ownership moves by credits: the driver grants a segment with the `SEn_CREDIT`
//! doorbell, the device moves its data and returns it by writing its completion record. The
//! device never touches a segment it holds no credit for.

use crate::error::{Error, Result};
use crate::regs::Caps;
use crate::ring::{Ring, RingIndex};
use crate::wire::{Reader, Writer};

/// Size of a descriptor table entry.
pub const DESC_SIZE: usize = 16;
/// Size of a completion record.
pub const RECORD_SIZE: usize = 16;
/// Alignment of the descriptor table and the record ring.
pub const TABLE_ALIGN: u64 = 64;
/// Segment sizes are multiples of this (one page).
pub const SEG_ALIGN: u32 = 4096;
/// The smallest number of segments in a circular buffer.
pub const MIN_SEGMENTS: u32 = 2;
/// Offset of the byte holding a record's owner bit.
pub const RECORD_OWNER_OFFSET: usize = 15;
/// The owner bit in that byte.
pub const RECORD_OWNER_BIT: u8 = 0x80;
/// Descriptor `flags` bit 0: the last entry of the table.
const DESC_LAST: u32 = 1;

/// Transfer direction of a stream engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Direction {
    /// Device to host: the device writes segments, the host reads them.
    Capture = 0,
    /// Host to device: the host writes segments, the device reads them.
    Playback = 1,
}

impl Direction {
    /// Decodes a direction value.
    ///
    /// # Errors
    /// [`Error::InvalidField`].
    pub const fn from_u32(v: u32) -> Result<Self> {
        match v {
            0 => Ok(Self::Capture),
            1 => Ok(Self::Playback),
            _ => Err(Error::InvalidField {
                field: "direction",
                value: v as u64,
            }),
        }
    }
}

/// One descriptor: `len` bytes of the circular buffer at adapter logical address `addr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Descriptor {
    /// Adapter logical address.
    pub addr: u64,
    /// Length in bytes (non-zero).
    pub len: u32,
    /// The last entry of the table.
    pub last: bool,
}

impl Descriptor {
    /// Encodes into the first 16 bytes of `out`.
    ///
    /// # Errors
    /// [`Error::Truncated`].
    pub fn encode(&self, out: &mut [u8]) -> Result<()> {
        Reader::require(out, DESC_SIZE)?;
        let mut w = Writer::new(out);
        w.u64_le(self.addr)?;
        w.u32_le(self.len)?;
        w.u32_le(if self.last { DESC_LAST } else { 0 })
    }

    /// Decodes one descriptor.
    ///
    /// # Errors
    /// [`Error::Truncated`]; [`Error::InvalidField`] for a zero length or a range that wraps;
    /// [`Error::ReservedNonZero`] for unknown flags.
    pub fn decode(buf: &[u8]) -> Result<Self> {
        let mut r = Reader::new(buf);
        let addr = r.u64_le()?;
        let len = r.u32_le()?;
        let flags = r.u32_le()?;
        if flags & !DESC_LAST != 0 {
            return Err(Error::ReservedNonZero {
                field: "desc.flags",
                value: u64::from(flags),
            });
        }
        if len == 0 {
            return Err(Error::InvalidField {
                field: "desc.len",
                value: 0,
            });
        }
        if addr.checked_add(u64::from(len)).is_none() {
            return Err(Error::InvalidField {
                field: "desc.addr",
                value: addr,
            });
        }
        Ok(Self {
            addr,
            len,
            last: flags & DESC_LAST != 0,
        })
    }
}

/// A stream engine configuration, as programmed into its `SEn` registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Transfer direction.
    pub direction: Direction,
    /// Bytes per segment.
    pub seg_size: u32,
    /// Segments in the circular buffer.
    pub seg_count: u32,
    /// Descriptor table entries.
    pub desc_count: u32,
    /// Descriptor table logical address.
    pub desc_addr: u64,
    /// Completion record ring logical address.
    pub rec_addr: u64,
    /// Segment-table mode (`SEn.CTRL.SEG_TABLE`, §8.2): `desc_count` entries per segment,
    /// re-read each time the engine begins a segment.
    pub per_segment: bool,
}

impl Config {
    /// The circular buffer's length.
    #[must_use]
    pub const fn buffer_len(&self) -> u64 {
        self.seg_size as u64 * self.seg_count as u64
    }

    /// The record ring (one record slot per segment).
    ///
    /// # Errors
    /// As [`Ring::new`].
    pub const fn records(&self) -> Result<Ring> {
        Ring::new(self.seg_count)
    }

    /// Checks the configuration against the interface and the device's capabilities.
    ///
    /// # Errors
    /// [`Error::Misaligned`] for a segment size that is not a multiple of 4 KiB or a table that
    /// is not 64-byte aligned; [`Error::LengthTooSmall`]/[`Error::LengthTooLarge`] for sizes and
    /// counts outside the capabilities.
    pub const fn validate(&self, caps: &Caps) -> Result<()> {
        if !self.seg_size.is_multiple_of(SEG_ALIGN) {
            return Err(Error::Misaligned {
                field: "seg_size",
                value: self.seg_size as u64,
                align: SEG_ALIGN as u64,
            });
        }
        let min = 1u64 << caps.log_min_seg;
        let max = 1u64 << caps.log_max_seg;
        if (self.seg_size as u64) < min {
            return Err(Error::LengthTooSmall {
                field: "seg_size",
                len: self.seg_size as u64,
                min,
            });
        }
        if self.seg_size as u64 > max {
            return Err(Error::LengthTooLarge {
                field: "seg_size",
                len: self.seg_size as u64,
                limit: max,
            });
        }
        if self.seg_count < MIN_SEGMENTS {
            return Err(Error::LengthTooSmall {
                field: "seg_count",
                len: self.seg_count as u64,
                min: MIN_SEGMENTS as u64,
            });
        }
        let max_segs = 1u64 << caps.log_max_segs;
        if self.seg_count as u64 > max_segs {
            return Err(Error::LengthTooLarge {
                field: "seg_count",
                len: self.seg_count as u64,
                limit: max_segs,
            });
        }
        let max_desc = 1u64 << caps.log_max_desc;
        let entries = if self.per_segment {
            self.desc_count as u64 * self.seg_count as u64
        } else {
            self.desc_count as u64
        };
        if self.desc_count == 0 {
            return Err(Error::LengthTooSmall {
                field: "desc_count",
                len: 0,
                min: 1,
            });
        }
        if entries > max_desc {
            return Err(Error::LengthTooLarge {
                field: "desc_count",
                len: entries,
                limit: max_desc,
            });
        }
        if !self.desc_addr.is_multiple_of(TABLE_ALIGN) {
            return Err(Error::Misaligned {
                field: "desc_addr",
                value: self.desc_addr,
                align: TABLE_ALIGN,
            });
        }
        if !self.rec_addr.is_multiple_of(TABLE_ALIGN) {
            return Err(Error::Misaligned {
                field: "rec_addr",
                value: self.rec_addr,
                align: TABLE_ALIGN,
            });
        }
        Ok(())
    }
}

/// Validates an encoded descriptor table: `count` entries, only the last marked last, lengths
/// adding up to exactly the buffer length. Returns the buffer length.
///
/// # Errors
/// [`Error::Truncated`] when `table` holds fewer than `count` entries; every error of
/// [`Descriptor::decode`]; [`Error::InvalidField`] for a misplaced or missing last flag or a
/// total length that differs from `expected_len`.
pub fn validate_table(table: &[u8], count: u32, expected_len: u64) -> Result<u64> {
    let need = count as usize * DESC_SIZE;
    Reader::require(table, need)?;
    let mut total = 0u64;
    for i in 0..count as usize {
        let d = Descriptor::decode(&table[i * DESC_SIZE..])?;
        let is_last = i + 1 == count as usize;
        if d.last != is_last {
            return Err(Error::InvalidField {
                field: "desc.last",
                value: i as u64,
            });
        }
        total += u64::from(d.len);
    }
    if total != expected_len {
        return Err(Error::InvalidField {
            field: "desc total length",
            value: total,
        });
    }
    Ok(total)
}

/// Validates one segment's group of a segment-table mode table (§8.2).
///
/// At most `count` entries; the first one marked last ends the group, and the lengths of the
/// entries up to it add up to exactly `seg_size`. Returns the entries, in order, as (logical
/// address, length).
///
/// # Errors
/// [`Error::Truncated`] when `group` holds fewer than `count` entries; every error of
/// [`Descriptor::decode`]; [`Error::InvalidField`] for a group without a last entry or with a
/// total length other than `seg_size`.
pub fn validate_group(
    group: &[u8],
    count: u32,
    seg_size: u32,
) -> Result<impl Iterator<Item = (u64, u32)> + '_> {
    Reader::require(group, count as usize * DESC_SIZE)?;
    let mut total = 0u64;
    let mut used = None;
    for i in 0..count as usize {
        let d = Descriptor::decode(&group[i * DESC_SIZE..])?;
        total += u64::from(d.len);
        if d.last {
            used = Some(i + 1);
            break;
        }
    }
    let Some(used) = used else {
        return Err(Error::InvalidField {
            field: "desc.last",
            value: u64::from(count),
        });
    };
    if total != u64::from(seg_size) {
        return Err(Error::InvalidField {
            field: "desc group length",
            value: total,
        });
    }
    Ok(group[..used * DESC_SIZE]
        .chunks_exact(DESC_SIZE)
        .filter_map(|c| Descriptor::decode(c).ok())
        .map(|d| (d.addr, d.len)))
}

/// Status of a completed segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum RecordStatus {
    /// The whole segment moved.
    Ok = 0,
    /// A DMA fault; `byte_count` bytes moved before it.
    DmaError = 1,
    /// Playback with `CTRL.VERIFY`: the data read did not match the pattern.
    PatternMismatch = 2,
    /// The engine was stopped inside this segment; `byte_count` bytes moved.
    Stopped = 3,
}

impl RecordStatus {
    /// Decodes a status byte.
    ///
    /// # Errors
    /// [`Error::InvalidField`].
    pub const fn from_u8(v: u8) -> Result<Self> {
        match v {
            0 => Ok(Self::Ok),
            1 => Ok(Self::DmaError),
            2 => Ok(Self::PatternMismatch),
            3 => Ok(Self::Stopped),
            _ => Err(Error::InvalidField {
                field: "record.status",
                value: v as u64,
            }),
        }
    }
}

/// A segment completion record. Record slot `seq % seg_count` holds segment sequence `seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// The segment's sequence number since START (0-based).
    pub seq: u64,
    /// Bytes moved.
    pub byte_count: u32,
    /// Outcome.
    pub status: RecordStatus,
    /// The owner bit ([`Ring::owner`] of the record's ring index).
    pub owner: bool,
}

impl Record {
    /// Encodes into the first 16 bytes of `out`.
    ///
    /// # Errors
    /// [`Error::Truncated`].
    pub fn encode(&self, out: &mut [u8]) -> Result<()> {
        Reader::require(out, RECORD_SIZE)?;
        let mut w = Writer::new(out);
        w.u64_le(self.seq)?;
        w.u32_le(self.byte_count)?;
        w.u8(self.status as u8)?;
        w.zeros(2)?;
        w.u8(if self.owner { RECORD_OWNER_BIT } else { 0 })
    }

    /// Decodes a record.
    ///
    /// # Errors
    /// [`Error::Truncated`], [`Error::InvalidField`], [`Error::ReservedNonZero`].
    pub fn decode(buf: &[u8]) -> Result<Self> {
        let mut r = Reader::new(buf);
        let seq = r.u64_le()?;
        let byte_count = r.u32_le()?;
        let status = RecordStatus::from_u8(r.u8()?)?;
        let reserved = r.array::<2>()?;
        let last = r.u8()?;
        if reserved != [0, 0] || last & !RECORD_OWNER_BIT != 0 {
            return Err(Error::ReservedNonZero {
                field: "record.reserved",
                value: u64::from(last),
            });
        }
        Ok(Self {
            seq,
            byte_count,
            status,
            owner: last & RECORD_OWNER_BIT != 0,
        })
    }

    /// Checks a record read at ring index `at` against the sequence the driver expects next.
    ///
    /// # Errors
    /// [`Error::NotOwned`] for a stale owner bit, [`Error::InvalidField`] for a sequence
    /// other than `expected_seq`, [`Error::LengthTooLarge`] for more bytes than a segment, and
    /// [`Error::InvalidField`] for a successful record that is not a whole segment.
    pub const fn check(
        &self,
        ring: Ring,
        at: RingIndex,
        expected_seq: u64,
        seg_size: u32,
    ) -> Result<()> {
        if !ring.is_owned(at, self.owner) {
            return Err(Error::NotOwned {
                found: self.owner,
                expected: ring.owner(at),
            });
        }
        if self.seq != expected_seq {
            return Err(Error::InvalidField {
                field: "record.seq",
                value: self.seq,
            });
        }
        if self.byte_count > seg_size {
            return Err(Error::LengthTooLarge {
                field: "record.byte_count",
                len: self.byte_count as u64,
                limit: seg_size as u64,
            });
        }
        if matches!(self.status, RecordStatus::Ok) && self.byte_count != seg_size {
            return Err(Error::InvalidField {
                field: "record.byte_count",
                value: self.byte_count as u64,
            });
        }
        Ok(())
    }
}

/// The 64-bit pattern word at word offset `word` of the segment with sequence number `seq`:
/// the segment's seed ([`pattern_seed`]) exclusive-or `word` times an odd constant.
///
/// A lost, repeated, torn (two sequences in one segment) or stale (old) segment has another
/// seed, so every one of its words differs (the seed is a bijection of the sequence number);
/// a shifted one has every word at the wrong multiple (an odd multiplier is a bijection of the
/// word offset); a zeroed one differs wherever the seed differs from the multiple, which is
/// at all but at most one word. Per word it is one addition and one exclusive-or when filled
/// or checked in order ([`fill_pattern`], [`verify_pattern`]): the device model and the tests
/// fill and check every byte of every gibibyte they stream.
#[must_use]
pub const fn pattern_word(seq: u64, word: u64) -> u64 {
    pattern_seed(seq) ^ word.wrapping_mul(PATTERN_STEP)
}

/// The seed of the segment with sequence number `seq`.
///
/// The splitmix64 finalizer of `seq × 0x9E3779B97F4A7C15 ⊕ 0xD1B54A32D192ED03`: a bijection of
/// `seq` (each step is one), zero for a single sequence number, which is not 0 (the finalizer
/// maps 0 to 0; the constant moves sequence 0 off it).
#[must_use]
pub const fn pattern_seed(seq: u64) -> u64 {
    let mut z = seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The multiplier of the word offset in [`pattern_word`]: odd, so distinct offsets give distinct
/// multiples (mod 2^64); the 64-bit golden-ratio constant's neighbour with well-spread bits.
const PATTERN_STEP: u64 = 0xD6E8_FEB8_6659_FD93;

/// Fills `buf` (a segment, or the part of it starting at byte `offset`) with the pattern of
/// segment `seq`. `offset` and `buf.len()` must be multiples of 8.
///
/// # Errors
/// [`Error::Misaligned`] when they are not.
pub fn fill_pattern(buf: &mut [u8], seq: u64, offset: u64) -> Result<()> {
    check_pattern_span(buf.len(), offset)?;
    let seed = pattern_seed(seq);
    // The multiple of each next word, by addition: `pattern_word` without a multiply per word.
    let mut step = (offset / 8).wrapping_mul(PATTERN_STEP);
    for chunk in buf.chunks_exact_mut(8) {
        chunk.copy_from_slice(&(seed ^ step).to_le_bytes());
        step = step.wrapping_add(PATTERN_STEP);
    }
    Ok(())
}

/// Verifies `buf` against the pattern of segment `seq` starting at byte `offset`. Returns the
/// byte offset (relative to the segment) of the first mismatching word, or `None`.
///
/// # Errors
/// [`Error::Misaligned`] when `offset` or `buf.len()` is not a multiple of 8.
pub fn verify_pattern(buf: &[u8], seq: u64, offset: u64) -> Result<Option<u64>> {
    check_pattern_span(buf.len(), offset)?;
    let seed = pattern_seed(seq);
    let first = offset / 8;
    let mut step = first.wrapping_mul(PATTERN_STEP);
    for (i, chunk) in buf.chunks_exact(8).enumerate() {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        if u64::from_le_bytes(w) != seed ^ step {
            return Ok(Some((first + i as u64) * 8));
        }
        step = step.wrapping_add(PATTERN_STEP);
    }
    Ok(None)
}

const fn check_pattern_span(len: usize, offset: u64) -> Result<()> {
    if !len.is_multiple_of(8) {
        return Err(Error::Misaligned {
            field: "pattern length",
            value: len as u64,
            align: 8,
        });
    }
    if !offset.is_multiple_of(8) {
        return Err(Error::Misaligned {
            field: "pattern offset",
            value: offset,
            align: 8,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::regs::{CAP0, CAP1, CAP2};

    fn caps() -> Caps {
        Caps::decode(CAP0.reset, CAP1.reset, CAP2.reset).unwrap()
    }

    fn cfg() -> Config {
        Config {
            direction: Direction::Capture,
            seg_size: 64 * 1024,
            seg_count: 64,
            desc_count: 1024,
            desc_addr: 0x10_0000,
            rec_addr: 0x10_4000,
            per_segment: false,
        }
    }

    #[test]
    fn descriptor_layout_and_table_rules() {
        let mut t = [0u8; 48];
        let ds = [
            Descriptor {
                addr: 0x1000_0100,
                len: 0x0F00,
                last: false,
            },
            Descriptor {
                addr: 0x2000_0000,
                len: 0x1000,
                last: false,
            },
            Descriptor {
                addr: 0x3000_0000,
                len: 0x0100,
                last: true,
            },
        ];
        for (i, d) in ds.iter().enumerate() {
            d.encode(&mut t[i * 16..]).unwrap();
        }
        assert_eq!(&t[0..8], &0x1000_0100u64.to_le_bytes());
        assert_eq!(&t[8..12], &0x0F00u32.to_le_bytes());
        assert_eq!(&t[44..48], &1u32.to_le_bytes());
        assert_eq!(validate_table(&t, 3, 0x2000), Ok(0x2000));
        assert!(validate_table(&t, 3, 0x2001).is_err(), "total must match");
        assert!(
            validate_table(&t, 2, 0x1F00).is_err(),
            "last flag must be on the last entry"
        );
        assert!(
            validate_table(&t, 4, 0x2000).is_err(),
            "table shorter than count"
        );
        let mut bad = t;
        bad[12] = 2;
        assert!(validate_table(&bad, 3, 0x2000).is_err(), "reserved flag");
        let mut bad = t;
        bad[8..12].fill(0);
        assert!(validate_table(&bad, 3, 0x1100).is_err(), "zero length");
    }

    #[test]
    fn config_validation() {
        let c = caps();
        assert_eq!(cfg().validate(&c), Ok(()));
        assert_eq!(cfg().buffer_len(), 4 << 20);
        assert!(
            Config {
                seg_size: 6000,
                ..cfg()
            }
            .validate(&c)
            .is_err()
        );
        assert!(
            Config {
                seg_size: 2 << 20,
                ..cfg()
            }
            .validate(&c)
            .is_err()
        );
        assert!(
            Config {
                seg_count: 1,
                ..cfg()
            }
            .validate(&c)
            .is_err()
        );
        assert!(
            Config {
                seg_count: 4097,
                ..cfg()
            }
            .validate(&c)
            .is_err()
        );
        assert!(
            Config {
                desc_count: 0,
                ..cfg()
            }
            .validate(&c)
            .is_err()
        );
        assert!(
            Config {
                desc_count: 65537,
                ..cfg()
            }
            .validate(&c)
            .is_err()
        );
        assert!(
            Config {
                desc_addr: 0x10_0020,
                ..cfg()
            }
            .validate(&c)
            .is_err()
        );
        assert!(
            Config {
                rec_addr: 8,
                ..cfg()
            }
            .validate(&c)
            .is_err()
        );
        // Segment-table mode: `desc_count` per segment, all groups within LOG_MAX_DESC.
        let per = Config {
            per_segment: true,
            desc_count: 1024,
            ..cfg()
        };
        assert_eq!(per.validate(&c), Ok(()));
        assert!(
            Config {
                desc_count: 1025,
                ..per
            }
            .validate(&c)
            .is_err(),
            "1025 entries x 64 segments"
        );
    }

    #[test]
    fn segment_groups_end_at_their_last_entry_and_cover_one_segment() {
        let mut g = [0u8; 4 * DESC_SIZE];
        for (i, (addr, len, last)) in [(0x1000u64, 0x800u32, false), (0x9000, 0x800, true)]
            .into_iter()
            .enumerate()
        {
            Descriptor { addr, len, last }
                .encode(&mut g[i * DESC_SIZE..])
                .unwrap();
        }
        // Entries after the last one are ignored, whatever they hold.
        g[3 * DESC_SIZE..].fill(0xFF);
        let mut v = validate_group(&g, 4, 0x1000).unwrap();
        assert_eq!(v.next(), Some((0x1000, 0x800)));
        assert_eq!(v.next(), Some((0x9000, 0x800)));
        assert_eq!(v.next(), None);
        assert!(validate_group(&g, 4, 0x2000).is_err(), "wrong total");
        assert!(
            validate_group(&g, 1, 0x800).is_err(),
            "no last entry in the group"
        );
        assert!(validate_group(&g[..16], 4, 0x1000).is_err(), "truncated");
    }

    #[test]
    fn records_follow_the_owner_protocol() {
        let ring = Ring::new(3).unwrap();
        let r = Record {
            seq: 4,
            byte_count: 4096,
            status: RecordStatus::Ok,
            owner: false,
        };
        let mut b = [0u8; 16];
        r.encode(&mut b).unwrap();
        assert_eq!(b[15], 0);
        assert_eq!(Record::decode(&b), Ok(r));
        // Sequence 4 of a 3-record ring lives at ring index 4: slot 1, odd lap, owner 0.
        let at = ring.index(4).unwrap();
        assert_eq!(r.check(ring, at, 4, 4096), Ok(()));
        assert!(matches!(
            r.check(ring, ring.index(1).unwrap(), 4, 4096),
            Err(Error::NotOwned { .. })
        ));
        assert!(r.check(ring, at, 5, 4096).is_err(), "unexpected sequence");
        assert!(
            Record {
                byte_count: 100,
                ..r
            }
            .check(ring, at, 4, 4096)
            .is_err(),
            "short Ok"
        );
        assert!(
            Record {
                byte_count: 100,
                status: RecordStatus::Stopped,
                ..r
            }
            .check(ring, at, 4, 4096)
            .is_ok()
        );
        assert!(
            Record {
                byte_count: 4097,
                status: RecordStatus::Stopped,
                ..r
            }
            .check(ring, at, 4, 4096)
            .is_err()
        );
        b[13] = 1;
        assert!(Record::decode(&b).is_err());
        b[13] = 0;
        b[12] = 9;
        assert!(Record::decode(&b).is_err());
    }

    #[test]
    fn pattern_detects_stale_torn_and_shifted_data() {
        let mut seg = [0u8; 4096];
        fill_pattern(&mut seg, 7, 0).unwrap();
        assert_eq!(verify_pattern(&seg, 7, 0), Ok(None));
        assert_eq!(verify_pattern(&seg, 6, 0), Ok(Some(0)), "wrong sequence");
        assert_eq!(
            verify_pattern(&[0u8; 64], 0, 0),
            Ok(Some(0)),
            "zeroed (stale) data"
        );
        // Torn: the second half from another sequence.
        let mut torn = seg;
        fill_pattern(&mut torn[2048..], 8, 2048).unwrap();
        assert_eq!(verify_pattern(&torn, 7, 0), Ok(Some(2048)));
        // Partial verification at an offset.
        assert_eq!(verify_pattern(&seg[1024..], 7, 1024), Ok(None));
        assert_eq!(
            verify_pattern(&seg[1024..], 7, 1032),
            Ok(Some(1032)),
            "shifted"
        );
        assert!(fill_pattern(&mut seg[..7], 0, 0).is_err());
        assert!(verify_pattern(&seg, 0, 4).is_err());
        // Every word differs from its neighbours and from the same word of the next segment.
        assert_ne!(pattern_word(0, 0), pattern_word(0, 1));
        assert_ne!(pattern_word(0, 0), pattern_word(1, 0));
    }

    #[test]
    fn the_pattern_filled_and_checked_in_order_is_pattern_word() {
        for (seq, offset) in [(0u64, 0u64), (1, 8), (u64::MAX, 4096), (12_345, 1 << 40)] {
            let mut seg = [0u8; 512];
            fill_pattern(&mut seg, seq, offset).unwrap();
            for (i, w) in seg.chunks_exact(8).enumerate() {
                let want = pattern_word(seq, offset / 8 + i as u64);
                assert_eq!(w, want.to_le_bytes(), "seq {seq} word {i}");
            }
            assert_eq!(verify_pattern(&seg, seq, offset), Ok(None));
        }
        // The seed of sequence 0 is not the finalizer's fixed point: a zeroed segment 0 fails
        // at its first word.
        assert_ne!(pattern_seed(0), 0);
        assert_eq!(verify_pattern(&[0u8; 64], 0, 0), Ok(Some(0)));
        // The seeds of a run of sequences are distinct, and so are a segment's words (no
        // allocation here: the crate is `no_std`).
        let distinct = |f: &dyn Fn(u64) -> u64| {
            let mut v = [0u64; 2048];
            for (i, x) in v.iter_mut().enumerate() {
                *x = f(i as u64);
            }
            v.sort_unstable();
            v.windows(2).all(|w| w[0] != w[1])
        };
        assert!(distinct(&pattern_seed));
        assert!(distinct(&|w| pattern_word(7, w)));
    }
}
