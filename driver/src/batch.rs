//! [`Batch`]: up to `N` values carried out from under the device lock in a fixed array.
//!
//! The interrupt path (the DPC, the watchdog) hands finished requests out this way without
//! allocating. A full batch means there may be more: the caller takes the lock again.

#![forbid(unsafe_code)]

/// Up to `N` values, in the order pushed.
#[derive(Debug)]
pub struct Batch<T, const N: usize> {
    items: [Option<T>; N],
    len: usize,
}

impl<T, const N: usize> Default for Batch<T, N> {
    fn default() -> Self {
        Self {
            items: core::array::from_fn(|_| None),
            len: 0,
        }
    }
}

impl<T, const N: usize> Batch<T, N> {
    /// An empty batch.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `v`, or hands it back when the batch is full.
    ///
    /// # Errors
    /// `v`, when the batch already holds `N` values.
    pub fn push(&mut self, v: T) -> Result<(), T> {
        match self.items.get_mut(self.len) {
            Some(slot) => {
                *slot = Some(v);
                self.len += 1;
                Ok(())
            }
            None => Err(v),
        }
    }

    /// Appends what `next` gives until the batch is full or `next` has nothing more; `next` is
    /// called only while there is room, so nothing it hands over is ever refused.
    pub fn fill(&mut self, mut next: impl FnMut() -> Option<T>) {
        while let Some(slot) = self.items.get_mut(self.len) {
            let Some(v) = next() else {
                return;
            };
            *slot = Some(v);
            self.len += 1;
        }
    }

    /// Whether it holds `N` values (there may be more where they came from).
    #[must_use]
    pub const fn is_full(&self) -> bool {
        self.len == N
    }

    /// Whether it holds nothing.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The values, in order.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.items.iter().flatten()
    }

    /// How many values it holds.
    #[must_use]
    pub const fn len(&self) -> usize {
        self.len
    }
}

impl<T, const N: usize> IntoIterator for Batch<T, N> {
    type Item = T;
    type IntoIter = core::iter::Flatten<core::array::IntoIter<Option<T>, N>>;

    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::Batch;
    use alloc::vec;
    use alloc::vec::Vec;

    #[test]
    fn keeps_order_and_refuses_past_capacity() {
        let mut b = Batch::<u32, 3>::new();
        assert!(b.is_empty());
        for v in 1..=3 {
            assert_eq!(b.push(v), Ok(()));
        }
        assert!(b.is_full());
        assert_eq!(b.push(4), Err(4));
        assert_eq!(b.len(), 3);
        assert_eq!(b.into_iter().collect::<Vec<_>>(), [1, 2, 3]);
    }

    #[test]
    fn fill_asks_only_while_there_is_room() {
        let mut source = vec![5, 4, 3, 2, 1];
        let mut b = Batch::<u32, 3>::new();
        b.fill(|| source.pop());
        assert!(b.is_full());
        assert_eq!(
            source,
            [5, 4],
            "nothing taken that the batch could not hold"
        );
        let mut rest = Batch::<u32, 3>::new();
        rest.fill(|| source.pop());
        assert_eq!(rest.len(), 2);
        assert_eq!(
            b.into_iter().chain(rest).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5]
        );
    }

    #[test]
    fn a_zero_sized_batch_is_full_and_empty() {
        let mut b = Batch::<u8, 0>::new();
        assert!(b.is_full() && b.is_empty());
        assert_eq!(b.push(1), Err(1));
    }
}
