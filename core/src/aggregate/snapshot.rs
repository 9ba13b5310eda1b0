//! What the reader gets: a series' totals at one moment ([`Snapshot`],
//! [`Totals`]) and the table's own counts ([`AggregatesStats`]).

use crate::event::{KeyId, Kind};

/// A series' totals at one moment (see [`Aggregates::snapshot`](super::Aggregates::snapshot)).
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Snapshot {
    /// The metric's key.
    pub key: KeyId,
    /// The series' kind.
    pub kind: Kind,
    /// How many times it was recorded into: additions, gauge sets and
    /// changes, distribution values. Only grows; unchanged means nothing
    /// was recorded since.
    pub changes: u64,
    /// The totals.
    pub value: Totals,
}

/// The totals of a [`Snapshot`], by kind.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Totals {
    /// A counter.
    Counter {
        /// The sum of every addition (wrapping).
        sum: i64,
        /// How many additions.
        count: u64,
    },
    /// A gauge's value.
    Gauge {
        /// The value now.
        value: f64,
    },
    /// A timer's or histogram's distribution (its buckets through
    /// [`Aggregates::buckets`](super::Aggregates::buckets)).
    Distribution {
        /// Values recorded.
        count: u64,
        /// Their sum.
        sum: f64,
        /// The smallest (positive infinity while empty).
        min: f64,
        /// The largest (negative infinity while empty).
        max: f64,
        /// Values counted without a bucket, for want of memory.
        unbucketed: u64,
    },
}

/// Counters of a table (see [`Aggregates::stats`](super::Aggregates::stats)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct AggregatesStats {
    /// Series in the table.
    pub series: usize,
    /// Series the table holds.
    pub capacity: usize,
    /// Shards owned now.
    pub shards_claimed: usize,
    /// Shards there are.
    pub shards: usize,
    /// Words of the pool handed out to cells.
    pub pool_used: usize,
    /// Words the pool has.
    pub pool_words: usize,
    /// Times a cell or bucket table could not be made (the pool was
    /// exhausted): the writer used the shared state instead.
    pub pool_exhausted: u64,
    /// NaN or infinite values refused by distributions.
    pub not_finite: u64,
}
