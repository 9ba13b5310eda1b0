//! A series in a table: [`SeriesId`], its index and its kind.

use super::buckets::{bucket_of, timer_bucket_of};
use crate::event::Kind;

/// A series in an [`Aggregates`](super::Aggregates) table: its index and its kind. Only the
/// table issues them, so a handle's calls always match its series' kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SeriesId(u32);

impl SeriesId {
    pub(super) fn new(index: usize, kind: Kind) -> Self {
        SeriesId(index as u32 | (kind as u32) << 30)
    }

    /// The series' position in its table (dense, from 0).
    pub const fn index(self) -> usize {
        (self.0 & ((1 << 30) - 1)) as usize
    }

    /// The series' kind.
    #[inline]
    pub const fn kind(self) -> Kind {
        Kind::ALL[(self.0 >> 30) as usize]
    }

    /// Whether the series is of `kind` (a compare of its top bits).
    #[inline]
    pub(super) const fn is(self, kind: Kind) -> bool {
        self.0 >> 30 == kind as u32
    }

    #[inline]
    pub(super) const fn is_distribution(self) -> bool {
        // Timer (2) and histogram (3): the top bit.
        self.0 >> 31 == 1
    }

    /// The bucket of `value` in this distribution: a timer's in seconds.
    #[inline]
    pub(super) fn bucket_of(self, value: f64) -> u16 {
        if self.is(Kind::Timer) {
            timer_bucket_of(value)
        } else {
            bucket_of(value)
        }
    }
}
