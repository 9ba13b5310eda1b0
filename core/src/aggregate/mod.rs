//! Aggregation at the source: values folded into per-series totals where
//! they are recorded, so what leaves the process is one cumulative record
//! per series and interval, whatever the event rate.
//!
//! [`Aggregates`] holds every series' state in caller-provided [`Word`]s
//! (a `static` array on a microcontroller, a boxed slice sized from the
//! configuration on a server):
//!
//! * **Counters**: a sum (`i64`, wrapping) and the number of additions.
//! * **Gauges**: a value per series that sets store, and the changes
//!   (`add`, `sub`) since the last set, which each shard sums in its own
//!   cell; the value is the one plus the others, so sets and changes from
//!   any handle, thread or interrupt handler compose. Which changes came
//!   after the last set is an epoch: a set that follows changes starts a
//!   new one (see "The gauge protocol" below). And the number of changes.
//! * **Distributions** (timers and histograms): count, sum, minimum,
//!   maximum and bucket counts (`buckets.rs`: 16 per power of two on the
//!   boundaries of Prometheus's schema 4 and OpenTelemetry's scale 4,
//!   2.2% error).
//!
//! Writers come in two sorts, like the lanes' sets:
//!
//! * A [`Shard`] is owned by one thread or task ([`Shard::claim`]): its
//!   cells are written with plain loads and stores, no read-modify-write,
//!   so recording costs a few nanoseconds and two threads never contend
//!   for a cache line. A shard's cells are made on first use, from the
//!   storage's free words; a thread that exits hands its shard (and its
//!   totals, which stay counted) to the next one.
//! * Anyone else (an interrupt handler, a thread beyond the shards, a
//!   shard whose cells could not be made for want of memory) records into
//!   the series' own shared state with atomic read-modify-writes: slower,
//!   equally exact.
//!
//! The one reader (the exporter) sums a series' shared state and every
//! shard's cells into a [`Snapshot`]; totals only grow, so a snapshot
//! taken while writers run is a consistent-enough cut and the next one is
//! newer. Nothing here allocates, blocks or panics.
//!
//! **Memory** is the storage, fixed at construction:
//! [`AggregatesConfig::fixed_words`] for the series table and the shards'
//! directories, the rest a pool that cells come from (never freed: series
//! live as long as the process). When it runs out, writers fall back to
//! the shared state; a distribution value that then finds no bucket is
//! counted in its series' `unbucketed` total (its count, sum, minimum and
//! maximum stay exact).
//!
//! **The gauge protocol.** A gauge's entry holds its value `V` and an
//! epoch word `E`: an epoch number (a multiple of 4) and two flags,
//! `CLEAN` (no shard has changes in this epoch: a set's epoch starts so;
//! the first, of a zeroed entry, does not) and `PENDING` (a set is
//! starting the next epoch). A shard's cell holds its change sum and a
//! tag, the epoch number the sum belongs to (a zeroed cell's is the
//! first epoch's).
//!
//! * A change by a shard whose tag is `E` adds to its sum with plain
//!   stores; that is the common path (one load of `E`, which only sets
//!   after changes write). Otherwise it clears `CLEAN` (a
//!   compare-and-swap, once per shard and epoch) and restarts its sum,
//!   tagged, under a seqlock of its own (tag cleared, sum, tag).
//! * A set while `E` is clean stores `V`: no shard has changes to forget.
//!   Otherwise it takes `PENDING` (a compare-and-swap), stores `V` and
//!   publishes the next epoch, clean: every shard's sum is then stale and
//!   no longer counts. A set that finds another pending stores
//!   `V` and leaves the epoch to it (the two are concurrent; either may
//!   win).
//! * A change while a set is pending, and every change by a writer
//!   without a shard, moves `V` itself with a compare-and-swap.
//! * The reader reads `E`, `V`, the sums tagged with `E`, and `E` again;
//!   it reads again when a set was pending or completed meanwhile.
//!
//! Summing the shards' changes at the end rounds like any reordered
//! floating-point sum (exact for whole numbers up to 2^53).

mod buckets;
mod cells;
mod config;
mod error;
mod export;
mod gauge;
mod layout;
mod pool;
mod reader;
mod series;
mod shard;
mod shared;
mod snapshot;
#[cfg(all(test, not(loom)))]
mod tests;
mod word;

pub use config::AggregatesConfig;
pub use error::{AggregatesError, NotFinite};
pub use reader::{Buckets, SeriesBuckets};
pub use series::SeriesId;
pub use shard::{AggregatesRef, Shard, ShardView};
pub use snapshot::{AggregatesStats, Snapshot, Totals};
pub use word::{Word, Words};

pub use export::{
    AggregateExporter, AggregateExporterConfig, AggregateExporterError, AggregateTelemetry,
};

pub use buckets::{
    MAX_RELATIVE_ERROR, MAX_SHIFT, NANOS_PER_SECOND, SCALE, ZERO_THRESHOLD, bucket_of,
    bucket_of_kind, bucket_range, bucket_value, exponential_bound, exponential_index, is_negative,
    is_zero_bucket, quantile, stand_in, timer_bucket_of, value_order,
};

use crate::event::{KeyId, Kind};
use crate::sync::{AtomicUsize, Ordering};
use core::fmt;
use layout::{
    ENTRY_WORDS, LINE_WORDS, MAX, META, MIN, NEGATIVE_INFINITY, POSITIVE_INFINITY, READY,
};

/// Every series' state, in caller-provided [`Words`].
pub struct Aggregates<S> {
    words: S,
    config: AggregatesConfig,
    /// Where the shards' claims and directories start.
    shards_at: usize,
    /// Where the pool starts.
    pool_at: usize,
    /// The pool's next free word.
    next: AtomicUsize,
    /// Series slots taken (some may still be being filled in).
    len: AtomicUsize,
    pool_exhausted: Word,
    not_finite: Word,
}

impl<S: Words> fmt::Debug for Aggregates<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Aggregates")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl<S: Words> Aggregates<S> {
    /// A table over `words`: [`AggregatesConfig::fixed_words`] of them for
    /// the table itself, the rest for cells. The words must be zero (as
    /// [`Word::new`] makes them).
    pub fn with_storage(words: S, config: AggregatesConfig) -> Result<Self, AggregatesError> {
        let table_ok = |n: usize| n >= 8 && n.is_power_of_two() && n <= 1 << 16;
        if !table_ok(config.shard_buckets)
            || !table_ok(config.shared_buckets)
            || config.series >= 1 << 30
            || config.shards >= 1 << 16
        {
            return Err(AggregatesError::Config);
        }
        let needed = config.fixed_words();
        let got = words.words().len();
        // The pool's offsets are stored in 32 bits.
        if got < needed || got > u32::MAX as usize {
            return Err(AggregatesError::Storage { needed, got });
        }
        // The pool starts on a cache line.
        let misaligned = words.words().as_ptr().addr() / size_of::<Word>() + needed;
        let pool_at = (needed + misaligned.next_multiple_of(LINE_WORDS) - misaligned).min(got);
        Ok(Aggregates {
            words,
            config,
            shards_at: config.series * ENTRY_WORDS,
            pool_at,
            // Offset 0 means "none" in directories: the pool never starts there.
            next: AtomicUsize::new(pool_at.max(1)),
            len: AtomicUsize::new(0),
            pool_exhausted: Word::new(),
            not_finite: Word::new(),
        })
    }

    #[inline]
    fn w(&self) -> &[Word] {
        self.words.words()
    }

    /// Word `i` of the storage, or `None` past its end.
    #[inline]
    fn at(&self, i: usize) -> Option<&Word> {
        self.w().get(i)
    }

    fn entry(&self, index: usize) -> usize {
        index * ENTRY_WORDS
    }

    /// The table's sizes.
    pub fn config(&self) -> &AggregatesConfig {
        &self.config
    }

    /// Adds the series of `key` with `kind`. Inserting the same key and
    /// kind twice makes two series: callers that insert from several
    /// threads at once look up ([`Aggregates::find`]) and insert under
    /// their own lock.
    pub fn insert(&self, key: KeyId, kind: Kind) -> Result<SeriesId, AggregatesError> {
        let capacity = self.config.series;
        let mut index = self.len.load(Ordering::Relaxed);
        loop {
            if index >= capacity {
                return Err(AggregatesError::Full { capacity });
            }
            match self.len.compare_exchange_weak(
                index,
                index + 1,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(now) => index = now,
            }
        }
        let e = self.entry(index);
        let id = SeriesId::new(index, kind);
        if id.is_distribution()
            && let (Some(min), Some(max)) = (self.at(e + MIN), self.at(e + MAX))
        {
            min.store(POSITIVE_INFINITY);
            max.store(NEGATIVE_INFINITY);
        }
        let meta = u64::from(key.get()) | u64::from(kind as u8) << 32 | READY;
        if let Some(word) = self.at(e + META) {
            // Release: a reader that sees the entry ready sees it initialised.
            word.store_release(meta);
        }
        Ok(id)
    }

    /// The series of `key` with `kind`, if there is one (a scan: for
    /// registration, not for recording).
    pub fn find(&self, key: KeyId, kind: Kind) -> Option<SeriesId> {
        let want = u64::from(key.get()) | u64::from(kind as u8) << 32 | READY;
        (0..self.len()).find_map(|i| {
            let meta = self.at(self.entry(i) + META)?.load_acquire();
            (meta == want).then(|| SeriesId::new(i, kind))
        })
    }

    /// Series slots taken.
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Acquire).min(self.config.series)
    }

    /// Whether no series has been added.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The series at `index` once it is complete.
    pub fn series_at(&self, index: usize) -> Option<SeriesId> {
        let meta = self.at(self.entry(index) + META)?.load_acquire();
        if meta & READY == 0 {
            return None;
        }
        Some(SeriesId::new(
            index,
            Kind::from_code((meta >> 32) as u8 & 3)?,
        ))
    }

    /// The key of `series`.
    pub fn key(&self, series: SeriesId) -> Option<KeyId> {
        let meta = self.at(self.entry(series.index()) + META)?.load_acquire();
        (meta & READY != 0).then(|| KeyId::from_raw(meta as u32))
    }

    /// Bytes of the storage and this structure (fixed at construction).
    pub fn memory_bytes(&self) -> usize {
        size_of::<Self>() - size_of::<S>() + size_of_val(self.w())
    }

    /// The counters.
    pub fn stats(&self) -> AggregatesStats {
        let claimed = (0..self.config.shards)
            .filter(|&s| self.shard_claim(s).is_some_and(|w| w.load() != 0))
            .count();
        AggregatesStats {
            series: self.len(),
            capacity: self.config.series,
            shards_claimed: claimed,
            shards: self.config.shards,
            pool_used: self.next.load(Ordering::Relaxed).max(self.pool_at) - self.pool_at,
            pool_words: self.w().len() - self.pool_at,
            pool_exhausted: self.pool_exhausted.load(),
            not_finite: self.not_finite.load(),
        }
    }
}
