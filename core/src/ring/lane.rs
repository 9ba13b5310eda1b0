//! One ring's slots ([`Lane`]) within a storage that may hold several.

use super::slot::Slot;

/// One ring's slots: `capacity` slots from `first` in a storage that may hold
/// several rings (the lanes). Copy, so passing it costs three words.
pub(crate) struct Lane<'a, T> {
    all: &'a [Slot<T>],
    first: usize,
    mask: usize,
}

impl<T> Clone for Lane<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Lane<'_, T> {}

impl<'a, T> Lane<'a, T> {
    /// `capacity` must be a power of two; `first + capacity` should not pass
    /// the end of `all` (slot lookups past it would panic, not misbehave).
    pub(crate) fn new(all: &'a [Slot<T>], first: usize, capacity: usize) -> Self {
        Lane {
            all,
            first,
            mask: capacity.wrapping_sub(1),
        }
    }

    #[inline]
    pub(super) fn slot(self, pos: usize) -> &'a Slot<T> {
        &self.all[self.first + (pos & self.mask)]
    }

    pub(super) fn capacity(self) -> usize {
        self.mask + 1
    }
}
