//! The byte budget (`max_memory`) that the aggregation, the sender table
//! and the pushed outputs' queues share.
//!
//! The tables (series, each sender's totals in them, distributions'
//! buckets, the sender table) come first: what would take them past the
//! budget is refused and counted ([`MemoryRefused`]) — a new series folds
//! into its kind's overflow series, a value that needs a new bucket, a
//! sender's totals that need more room and a new sender are not taken.
//! The queues yield: a destination's queue drops its oldest requests while
//! the tables and every queue together are past the budget (what is pushed
//! is cumulative: a later request carries what a dropped one did).
//!
//! Sizes are estimates of the heap bytes each part holds: its strings and
//! entries, and [`ALLOCATION_BYTES`] of the allocator's own for each
//! allocation. What an export or a scrape builds lives only while it is
//! sent: it is not counted.

use std::sync::atomic::{AtomicU64, Ordering};

/// What the allocator keeps beside each allocation (a header, rounding),
/// counted with it.
pub const ALLOCATION_BYTES: u64 = 16;

/// The budget, and what each part holds now.
#[derive(Debug)]
pub struct Memory {
    limit: u64,
    tables: AtomicU64,
    queued: AtomicU64,
}

/// What the budget refused, by what it was, counted since the start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemoryRefused {
    /// New series not made: their events went into the overflow series.
    pub series: u64,
    /// Values not taken: they needed a new bucket in a distribution.
    pub values: u64,
    /// A sender's totals for a series not taken (what it sent before
    /// stands).
    pub records: u64,
    /// New senders not tracked: their datagrams are aggregated, not
    /// accounted.
    pub senders: u64,
}

impl MemoryRefused {
    /// Adds `other`'s counts in.
    pub(crate) fn add(&mut self, other: &MemoryRefused) {
        self.series += other.series;
        self.values += other.values;
        self.records += other.records;
        self.senders += other.senders;
    }
}

impl Memory {
    /// A budget of `limit` bytes, nothing held.
    pub fn new(limit: u64) -> Self {
        Memory {
            limit,
            tables: AtomicU64::new(0),
            queued: AtomicU64::new(0),
        }
    }

    /// The budget in bytes.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Bytes the tables hold: series, totals, buckets, senders.
    pub fn tables(&self) -> u64 {
        self.tables.load(Ordering::Relaxed)
    }

    /// Bytes every pushed destination's queue holds.
    pub fn queued(&self) -> u64 {
        self.queued.load(Ordering::Relaxed)
    }

    /// Whether the tables can grow by `bytes`.
    pub(crate) fn room(&self, bytes: u64) -> bool {
        self.tables().saturating_add(bytes) <= self.limit
    }

    /// The tables grow by `bytes` if there is room; whether they did. Only
    /// the collector's state (under its lock) changes the tables, so the
    /// check and the change cannot interleave with another's.
    pub(crate) fn grow(&self, bytes: u64) -> bool {
        self.room(bytes) && {
            self.tables.fetch_add(bytes, Ordering::Relaxed);
            true
        }
    }

    /// The tables went from `before` to `after` bytes (a change that is
    /// not refused: a sender's totals made final, a sender forgotten).
    pub(crate) fn changed(&self, before: u64, after: u64) {
        if after >= before {
            self.tables.fetch_add(after - before, Ordering::Relaxed);
        } else {
            self.shrink(before - after);
        }
    }

    /// The tables shrink by `bytes`.
    pub(crate) fn shrink(&self, bytes: u64) {
        // Never below zero, whatever an estimate said.
        let _ = self
            .tables
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                Some(t.saturating_sub(bytes))
            });
    }

    /// A queue took `bytes` more.
    pub(crate) fn queue(&self, bytes: u64) {
        self.queued.fetch_add(bytes, Ordering::Relaxed);
    }

    /// A queue let `bytes` go.
    pub(crate) fn dequeue(&self, bytes: u64) {
        let _ = self
            .queued
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |q| {
                Some(q.saturating_sub(bytes))
            });
    }

    /// Whether the tables and the queues together are past the budget.
    pub(crate) fn over(&self) -> bool {
        self.tables().saturating_add(self.queued()) > self.limit
    }
}
