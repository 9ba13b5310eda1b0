//! One cell of a ring ([`Slot`]) and its stamp: the lap the slot is on,
//! whether it holds an item, and the item's rank.

use crate::sync::{AtomicUsize, UnsafeCell};
use core::fmt;
use core::mem::MaybeUninit;

const RANK_BITS: u32 = 2;
pub(super) const RANK_MASK: usize = (1 << RANK_BITS) - 1;

/// The stamp of a slot that is free for a push at `pos`.
pub(super) const fn free(pos: usize) -> usize {
    pos.wrapping_shl(RANK_BITS)
}

/// The stamp (without rank) of a slot that holds the item pushed at `pos`.
pub(super) const fn published(pos: usize) -> usize {
    pos.wrapping_add(1).wrapping_shl(RANK_BITS)
}

/// Signed distance between two stamps, ignoring the rank bits.
pub(super) fn distance(stamp: usize, expected: usize) -> isize {
    ((stamp & !RANK_MASK).wrapping_sub(expected)) as isize
}

/// One cell of a ring: a stamp and room for one item.
pub struct Slot<T> {
    pub(super) stamp: AtomicUsize,
    pub(super) value: UnsafeCell<MaybeUninit<T>>,
}

impl<T> Slot<T> {
    /// An empty slot, for building ring storage ([`Ring::with_storage`]).
    ///
    /// [`Ring::with_storage`]: super::Ring::with_storage
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        Slot {
            stamp: AtomicUsize::new(0),
            value: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }

    /// An empty slot, for building ring storage ([`Ring::with_storage`]).
    ///
    /// [`Ring::with_storage`]: super::Ring::with_storage
    #[cfg(loom)]
    pub fn new() -> Self {
        Slot {
            stamp: AtomicUsize::new(0),
            value: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }
}

#[cfg(not(loom))]
impl<T> Slot<T> {
    /// A slot stamped free for the push at ring position `pos`.
    pub(crate) const fn stamped_free(pos: usize) -> Self {
        Slot {
            stamp: AtomicUsize::new(free(pos)),
            value: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> fmt::Debug for Slot<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Slot").finish_non_exhaustive()
    }
}
