//! A fast hasher for the simulator's integer-keyed tables (frame numbers, addresses, handles).
//!
//! The standard library's `SipHash` resists collision attacks on untrusted keys; the simulator's
//! keys are its own page numbers and addresses, and `SipHash` was 16.5 % of the instructions of a
//! simulated MAD round trip (issue 17). This is a multiply-and-rotate hash (the `FxHash`
//! construction): a few instructions per key, well spread for the page-aligned and
//! sequential integers the tables hold.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// The hasher: one multiply and rotate per word written.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct IntHasher(u64);

/// The golden-ratio multiplier: consecutive and page-aligned keys land far apart.
const K: u64 = 0x9E37_79B9_7F4A_7C15;

impl IntHasher {
    #[inline]
    const fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(K);
    }
}

impl Hasher for IntHasher {
    #[inline]
    fn finish(&self) -> u64 {
        // The multiply mixes upward only: bring its well-mixed high bits down to where the
        // table indexes (page-aligned keys have twelve zero low bits).
        self.0.rotate_left(26)
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(w));
        }
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    #[inline]
    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }
}

/// A `HashMap` with [`IntHasher`].
pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<IntHasher>>;
/// A `HashSet` with [`IntHasher`].
pub(crate) type FastSet<K> = HashSet<K, BuildHasherDefault<IntHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_aligned_keys_spread_over_the_low_bits() {
        // hashbrown indexes buckets by the low bits (and tags by the top seven): page-aligned
        // keys must not collide there.
        let mut low = std::collections::HashSet::new();
        for page in 0..4096u64 {
            let mut h = IntHasher::default();
            h.write_u64(page << 12);
            low.insert(h.finish() & 0xFFF);
        }
        assert!(low.len() > 2500, "{} distinct low-12-bit values", low.len());
        let mut m: FastMap<u64, u64> = FastMap::default();
        for i in 0..10_000u64 {
            m.insert(i * 4096, i);
        }
        assert_eq!(m.get(&(1234 * 4096)), Some(&1234));
        assert_eq!(m.len(), 10_000);
    }
}
