//! Ring index arithmetic: the one place where RHCA's rings wrap.
//!
//! Every RHCA ring (work queues, completion queues, stream completion records) has `entries`
//! slots and is addressed by a *ring index*: a counter that runs over `0..2 * entries` and wraps
//! to 0. The extra bit distinguishes a full ring from an empty one and gives each lap a parity:
//!
//! - the slot of index `i` is `i mod entries`;
//! - the lap parity of `i` is `i >= entries` (even laps are `false`);
//! - the **owner bit** that marks the entry at `i` as valid for its reader is the inverse of the
//!   lap parity: 1 on even laps, 0 on odd laps. A zeroed ring is therefore empty for the reader
//!   on the first lap, which is why the driver zeroes every ring before the device sees it.
//!
//! Hardware indices written to doorbells and read from status registers are ring indices
//! (`docs/device.md` §5). The producer owns the slots from `consumer + used` up to
//! `consumer + entries`; the consumer owns `consumer .. producer` until it advances past them.
//!
//! Sizes need not be powers of two (stream record rings have one slot per segment), but work
//! and completion queues are, so their indices also fit the 16-bit doorbell fields.

use crate::error::{Error, Result};

/// The largest number of slots a ring may have: ring indices must fit a 16-bit doorbell field.
pub const MAX_RING_ENTRIES: u32 = 1 << 15;

/// The geometry of a ring: its number of slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ring {
    entries: u32,
}

/// A position on a [`Ring`]: a counter in `0..2 * entries`.
///
/// # Invariants
/// The value is below twice the entry count of the ring that created it. Mixing indices of
/// different rings is a logic error (not memory-unsafe): the arithmetic reduces modulo the ring
/// it is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RingIndex(u32);

impl RingIndex {
    /// The raw counter, as written to a doorbell or read from a status register.
    #[must_use]
    pub const fn raw(self) -> u32 {
        self.0
    }
}

impl Ring {
    /// A ring of `entries` slots (1 ..= [`MAX_RING_ENTRIES`]).
    ///
    /// # Errors
    /// [`Error::InvalidField`] for 0 entries, [`Error::LengthTooLarge`] above the maximum.
    pub const fn new(entries: u32) -> Result<Self> {
        if entries == 0 {
            return Err(Error::InvalidField {
                field: "ring entries",
                value: 0,
            });
        }
        if entries > MAX_RING_ENTRIES {
            return Err(Error::LengthTooLarge {
                field: "ring entries",
                len: entries as u64,
                limit: MAX_RING_ENTRIES as u64,
            });
        }
        Ok(Self { entries })
    }

    /// A ring of `1 << log2` slots.
    ///
    /// # Errors
    /// [`Error::LengthTooLarge`] when `1 << log2` exceeds [`MAX_RING_ENTRIES`].
    pub const fn from_log2(log2: u32) -> Result<Self> {
        if log2 > MAX_RING_ENTRIES.trailing_zeros() {
            return Err(Error::LengthTooLarge {
                field: "ring log2 entries",
                len: log2 as u64,
                limit: MAX_RING_ENTRIES.trailing_zeros() as u64,
            });
        }
        Self::new(1 << log2)
    }

    /// The number of slots.
    #[must_use]
    pub const fn entries(self) -> u32 {
        self.entries
    }

    /// The modulus of ring indices: twice the number of slots.
    const fn modulus(self) -> u32 {
        self.entries * 2
    }

    /// The first index (slot 0, even lap).
    #[must_use]
    pub const fn start(self) -> RingIndex {
        RingIndex(0)
    }

    /// Validates a raw index read from the device or a doorbell.
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`] unless `raw < 2 * entries`.
    pub const fn index(self, raw: u32) -> Result<RingIndex> {
        if raw < self.modulus() {
            Ok(RingIndex(raw))
        } else {
            Err(Error::IndexOutOfRange {
                field: "ring index",
                index: raw as u64,
                limit: self.modulus() as u64,
            })
        }
    }

    /// The slot that `i` designates.
    #[must_use]
    pub const fn slot(self, i: RingIndex) -> u32 {
        i.0 % self.entries
    }

    /// The lap parity of `i`: `false` on even laps, `true` on odd ones.
    #[must_use]
    pub const fn lap_parity(self, i: RingIndex) -> bool {
        (i.0 % self.modulus()) >= self.entries
    }

    /// The owner bit that marks the entry at `i` as valid for its reader (1 on even laps).
    #[must_use]
    pub const fn owner(self, i: RingIndex) -> bool {
        !self.lap_parity(i)
    }

    /// `i` moved forward by `n` slots.
    #[must_use]
    pub const fn advance(self, i: RingIndex, n: u32) -> RingIndex {
        let m = self.modulus();
        // CAST: both operands are below 2^17 after reduction, so the sum cannot overflow u32.
        RingIndex(((i.0 % m) + (n % m)) % m)
    }

    /// The next index after `i`.
    #[must_use]
    pub const fn next(self, i: RingIndex) -> RingIndex {
        self.advance(i, 1)
    }

    /// How many steps lead from `from` forward to `to` (modulo `2 * entries`).
    #[must_use]
    pub const fn distance(self, from: RingIndex, to: RingIndex) -> u32 {
        let m = self.modulus();
        ((to.0 % m) + m - (from.0 % m)) % m
    }

    /// How many entries the producer has published that the consumer has not yet taken.
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`] when the producer appears more than `entries` ahead: the two
    /// indices cannot both be right (a hostile or broken device, or a doorbell overrun).
    pub const fn used(self, producer: RingIndex, consumer: RingIndex) -> Result<u32> {
        let d = self.distance(consumer, producer);
        if d > self.entries {
            Err(Error::IndexOutOfRange {
                field: "ring occupancy",
                index: d as u64,
                limit: self.entries as u64 + 1,
            })
        } else {
            Ok(d)
        }
    }

    /// How many slots the producer may still fill.
    ///
    /// # Errors
    /// As [`Ring::used`].
    pub const fn free(self, producer: RingIndex, consumer: RingIndex) -> Result<u32> {
        match self.used(producer, consumer) {
            Ok(u) => Ok(self.entries - u),
            Err(e) => Err(e),
        }
    }

    /// Whether an entry read at `i` with owner bit `owner` is valid for the reader.
    #[must_use]
    pub const fn is_owned(self, i: RingIndex, owner: bool) -> bool {
        owner == self.owner(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_limits() {
        assert!(Ring::new(0).is_err());
        assert!(Ring::new(1).is_ok());
        assert!(Ring::new(MAX_RING_ENTRIES).is_ok());
        assert!(Ring::new(MAX_RING_ENTRIES + 1).is_err());
        assert_eq!(Ring::from_log2(15).unwrap().entries(), MAX_RING_ENTRIES);
        assert!(Ring::from_log2(16).is_err());
        let r = Ring::new(8).unwrap();
        assert!(r.index(15).is_ok());
        assert_eq!(
            r.index(16),
            Err(Error::IndexOutOfRange {
                field: "ring index",
                index: 16,
                limit: 16
            })
        );
    }

    #[test]
    fn wrap_boundaries_for_power_of_two_ring() {
        let r = Ring::new(4).unwrap();
        // Walk two full laps and check slot, parity and owner at every step, including the
        // slot wrap (3 -> 0 at index 4) and the index wrap (7 -> 0).
        let expect = [
            (0, false),
            (1, false),
            (2, false),
            (3, false),
            (0, true),
            (1, true),
            (2, true),
            (3, true),
        ];
        let mut i = r.start();
        for lap in 0..3 {
            for (n, &(slot, parity)) in expect.iter().enumerate() {
                assert_eq!(i.raw() as usize, n, "lap {lap}");
                assert_eq!(r.slot(i), slot);
                assert_eq!(r.lap_parity(i), parity);
                assert_eq!(r.owner(i), !parity);
                i = r.next(i);
            }
        }
        assert_eq!(i, r.start());
    }

    #[test]
    fn wrap_boundaries_for_odd_ring() {
        let r = Ring::new(3).unwrap();
        let i = r.index(2).unwrap();
        assert_eq!(r.slot(r.next(i)), 0);
        assert!(r.lap_parity(r.next(i)));
        let j = r.index(5).unwrap();
        assert_eq!(r.next(j), r.start());
        assert!(!r.lap_parity(r.next(j)));
    }

    #[test]
    fn distance_across_the_index_wrap() {
        let r = Ring::new(4).unwrap();
        let p = r.index(1).unwrap(); // second lap wrapped to 0..2*entries
        let c = r.index(6).unwrap();
        assert_eq!(r.distance(c, p), 3);
        assert_eq!(r.used(p, c), Ok(3));
        assert_eq!(r.free(p, c), Ok(1));
        // Full ring: producer exactly one lap ahead.
        let c = r.index(5).unwrap();
        assert_eq!(r.used(p, c), Ok(4));
        assert_eq!(r.free(p, c), Ok(0));
        // Empty ring.
        assert_eq!(r.used(p, p), Ok(0));
        assert_eq!(r.free(p, p), Ok(4));
        // Impossible: producer more than one lap ahead.
        let c = r.index(4).unwrap();
        assert_eq!(r.distance(c, p), 5);
        assert!(r.used(p, c).is_err());
    }

    #[test]
    fn advance_by_large_steps_reduces() {
        let r = Ring::new(4).unwrap();
        let i = r.index(7).unwrap();
        assert_eq!(r.advance(i, 1).raw(), 0);
        assert_eq!(r.advance(i, 8).raw(), 7);
        assert_eq!(r.advance(i, 9).raw(), 0);
        assert_eq!(r.advance(i, u32::MAX).raw(), (7 + (u32::MAX % 8)) % 8);
    }

    #[test]
    fn owner_bit_of_zeroed_ring_means_empty_on_first_lap() {
        let r = Ring::new(16).unwrap();
        for n in 0..16 {
            let i = r.index(n).unwrap();
            assert!(
                !r.is_owned(i, false),
                "a zeroed entry must not be valid on lap 0"
            );
            assert!(r.is_owned(i, true));
        }
        for n in 16..32 {
            let i = r.index(n).unwrap();
            assert!(
                !r.is_owned(i, true),
                "a stale lap-0 entry must not be valid on lap 1"
            );
            assert!(r.is_owned(i, false));
        }
    }

    #[test]
    fn largest_ring_fits_sixteen_bit_doorbells() {
        let r = Ring::new(MAX_RING_ENTRIES).unwrap();
        let last = r.index(2 * MAX_RING_ENTRIES - 1).unwrap();
        assert!(u16::try_from(last.raw()).is_ok());
        assert_eq!(r.next(last), r.start());
        assert_eq!(r.slot(last), MAX_RING_ENTRIES - 1);
    }
}
