//! The sizes of an [`Aggregates`](super::Aggregates) table.

use super::layout::{CELL_WORDS, ENTRY_WORDS, PAGE_SERIES};

/// Sizes of an [`Aggregates`](super::Aggregates) table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct AggregatesConfig {
    /// Series the table holds.
    pub series: usize,
    /// Shards that threads or tasks may own (besides the shared state).
    pub shards: usize,
    /// Bucket slots a shard's table per distribution grows to at most (a
    /// power of two from 8): it starts at 32 and grows fourfold when a
    /// value finds no room; past the most, values overflow into the
    /// shared table.
    pub shard_buckets: usize,
    /// Bucket slots of a distribution's shared table (a power of two
    /// from 8), made when first needed.
    pub shared_buckets: usize,
}

impl AggregatesConfig {
    /// `series` series and `shards` shards, up to 1,024 bucket slots per
    /// shard and distribution, 512 in a distribution's shared table.
    pub const fn new(series: usize, shards: usize) -> Self {
        AggregatesConfig {
            series,
            shards,
            shard_buckets: 1024,
            shared_buckets: 512,
        }
    }

    /// The same with other bucket table sizes.
    pub const fn with_buckets(self, shard_buckets: usize, shared_buckets: usize) -> Self {
        AggregatesConfig {
            shard_buckets,
            shared_buckets,
            ..self
        }
    }

    pub(super) const fn directory_len(&self) -> usize {
        self.series.div_ceil(PAGE_SERIES)
    }

    /// Words of the series table and the shards' claims and directories:
    /// the storage must have at least this many, and the rest is the pool
    /// cells come from.
    pub const fn fixed_words(&self) -> usize {
        self.series * ENTRY_WORDS + self.shards * (1 + self.directory_len())
    }

    /// Words one shard's cells take at most if it records into `series`
    /// series of which `distributions` are timers or histograms whose
    /// tables grow to the most: for sizing the pool.
    pub const fn shard_words(&self, series: usize, distributions: usize) -> usize {
        // The tables outgrown stay allocated: at most a third more.
        series.div_ceil(PAGE_SERIES) * PAGE_SERIES * CELL_WORDS
            + distributions * (self.shard_buckets + self.shard_buckets.div_ceil(3))
    }
}
