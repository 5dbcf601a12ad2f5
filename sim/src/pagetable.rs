//! A table indexed by page number, for the simulator's per-page look-ups on the DMA path (the
//! host page behind a frame, the mapped ranges that cover a page whole).
//!
//! Why not a hash map: a device burst over a scattered buffer looks up every page it writes,
//! and a hashed look-up (hash, probe, compare) cost several times the two indexed loads this
//! takes. A directory of leaves, each allocated when one of its pages is first set, keeps the
//! table small for the sparse, scattered page numbers a machine hands out.

use crate::mem::PAGE;

/// Entries per leaf: one host page of `u64`s.
const LEAF: usize = 512;

/// The highest page number a table holds: 64 GiB of address space, past every frame the
/// machine has and every IOVA. A larger one reads as the default and is never stored, so that
/// no address a device makes up grows the directory.
pub(crate) const MAX_PAGE: u64 = (64 << 30) / PAGE as u64;

/// Entries of type `T` by page number; an entry never set reads as `T::default()`.
#[derive(Debug)]
pub(crate) struct PageTable<T> {
    dir: Vec<Option<Box<[T; LEAF]>>>,
}

impl<T> Default for PageTable<T> {
    fn default() -> Self {
        Self { dir: Vec::new() }
    }
}

impl<T: Copy + Default> PageTable<T> {
    /// The entry of page `page`.
    #[inline]
    pub(crate) fn get(&self, page: u64) -> T {
        // CAST: the simulator runs on 64-bit hosts, where every `u64` quotient fits a `usize`;
        // one past the directory misses the `get` below.
        let (d, i) = ((page / LEAF as u64) as usize, (page % LEAF as u64) as usize);
        self.dir
            .get(d)
            .and_then(Option::as_ref)
            .map_or_else(T::default, |l| l[i])
    }

    /// The entry of page `page`, to change, its leaf allocated if need be; `None` beyond
    /// [`MAX_PAGE`].
    pub(crate) fn entry(&mut self, page: u64) -> Option<&mut T> {
        if page > MAX_PAGE {
            return None;
        }
        // CAST: page <= MAX_PAGE, so the index fits.
        let (d, i) = ((page / LEAF as u64) as usize, (page % LEAF as u64) as usize);
        if self.dir.len() <= d {
            self.dir.resize_with(d + 1, || None);
        }
        Some(&mut self.dir[d].get_or_insert_with(|| Box::new([T::default(); LEAF]))[i])
    }

    /// How many leaves the table has allocated (for tests of its size).
    #[cfg(test)]
    pub(crate) fn directory_len(&self) -> usize {
        self.dir.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_read_as_set_and_default_elsewhere() {
        let mut t = PageTable::<usize>::default();
        assert_eq!(t.get(5), 0);
        *t.entry(5).unwrap() = 0x7000;
        *t.entry(LEAF as u64 * 3 + 1).unwrap() = 0x9000;
        assert_eq!(
            (t.get(5), t.get(6), t.get(LEAF as u64 * 3 + 1)),
            (0x7000, 0, 0x9000)
        );
        assert_eq!(t.get(LEAF as u64 * 1000), 0, "beyond the directory");
        assert!(t.entry(MAX_PAGE + 1).is_none(), "never stored");
        assert_eq!(t.get(MAX_PAGE + 1), 0);
        assert_eq!(t.get(u64::MAX), 0);
        assert_eq!(t.directory_len(), 4);
    }
}
