//! The shared write path: recording into a series' own state with
//! atomic read-modify-writes, for writers without a shard (interrupt
//! handlers, threads beyond the shards, shards out of memory).

use super::Aggregates;
use super::error::NotFinite;
use super::gauge::{gauge_words, set_gauge};
use super::layout::{A, B, COUNT_MASK, MAX, MAX_PROBES, MIN, TABLE, f64_add, home};
use super::series::SeriesId;
use super::word::Words;
use crate::event::Kind;

impl<S: Words> Aggregates<S> {
    /// Adds `n` to counter `series` (a read-modify-write; see [`Shard`](super::Shard)
    /// for the owned path).
    #[inline]
    pub fn add(&self, series: SeriesId, n: i64) {
        if !series.is(Kind::Counter) {
            return;
        }
        let e = self.entry(series.index());
        if let (Some(sum), Some(count)) = (self.at(e + A), self.at(e + B)) {
            sum.fetch_add(n as u64);
            count.fetch_add(1);
        }
    }

    /// Sets gauge `series` to `value`.
    #[inline]
    pub fn set(&self, series: SeriesId, value: f64) {
        if let Some((word, epoch)) = gauge_words(self.w(), series) {
            set_gauge(word, epoch, value);
            self.count_change(series);
        }
    }

    /// Moves gauge `series` by `delta` (signed).
    #[inline]
    pub fn change(&self, series: SeriesId, delta: f64) {
        if self.change_value(series, delta) {
            self.count_change(series);
        }
    }

    /// Moves a gauge's value itself; whether `series` is a gauge.
    #[inline]
    pub(super) fn change_value(&self, series: SeriesId, delta: f64) -> bool {
        match gauge_words(self.w(), series) {
            Some((word, _)) => {
                word.update(|bits| Some(f64_add(bits, delta)));
                true
            }
            None => false,
        }
    }

    pub(super) fn count_change(&self, series: SeriesId) {
        if let Some(word) = self.at(self.entry(series.index()) + B) {
            word.fetch_add(1);
        }
    }

    /// Records `value` into distribution `series` (timer or histogram).
    /// NaN and infinities are refused and counted.
    #[inline]
    pub fn record(&self, series: SeriesId, value: f64) -> Result<(), NotFinite> {
        if !value.is_finite() {
            return Err(self.refuse());
        }
        self.record_shared(series, value);
        Ok(())
    }

    pub(super) fn refuse(&self) -> NotFinite {
        self.not_finite.fetch_add(1);
        NotFinite
    }

    #[inline(never)]
    pub(super) fn record_shared(&self, series: SeriesId, value: f64) {
        if !series.is_distribution() {
            return;
        }
        let e = self.entry(series.index());
        let id = series.bucket_of(value);
        let bucketed = self
            .shared_table(e)
            .is_some_and(|table| self.bucket_shared(table, self.config.shared_buckets, id));
        let cas = |i: usize, f: &dyn Fn(u64) -> Option<u64>| {
            if let Some(word) = self.at(e + i) {
                word.update(f);
            }
        };
        if !bucketed {
            cas(A, &|n| Some(n + 1));
        }
        cas(B, &|bits| Some(f64_add(bits, value)));
        cas(MIN, &|bits| {
            (value < f64::from_bits(bits)).then(|| value.to_bits())
        });
        cas(MAX, &|bits| {
            (value > f64::from_bits(bits)).then(|| value.to_bits())
        });
    }

    /// The shared bucket table of the distribution at entry `e`, made now
    /// if it has none yet.
    pub(super) fn shared_table(&self, e: usize) -> Option<usize> {
        let word = self.at(e + TABLE)?;
        // Acquire: a table made by another thread is seen zeroed.
        let table = word.load_acquire() as usize;
        if table != 0 {
            return Some(table);
        }
        let made = self.allocate(self.config.shared_buckets)?;
        match word.compare_exchange(0, made as u64) {
            Ok(_) => Some(made),
            // Another thread made one first: use it (the words taken here
            // stay unused).
            Err(theirs) => Some(theirs as usize),
        }
    }

    /// Counts one value in bucket `id` of the table at `table` of `slots`
    /// slots, which any thread may write; whether it found room.
    pub(super) fn bucket_shared(&self, table: usize, slots: usize, id: u16) -> bool {
        let mut slot = home(id, slots);
        for _ in 0..MAX_PROBES {
            let Some(word) = self.at(table + slot) else {
                return false;
            };
            let mut current = word.load();
            loop {
                if current == 0 {
                    match word.compare_exchange(0, u64::from(id) << 48 | 1) {
                        Ok(_) => return true,
                        Err(now) => current = now,
                    }
                } else if (current >> 48) as u16 == id && current & COUNT_MASK != COUNT_MASK {
                    match word.compare_exchange(current, current + 1) {
                        Ok(_) => return true,
                        Err(now) => current = now,
                    }
                } else {
                    break;
                }
            }
            slot = (slot + 1) & (slots - 1);
        }
        false
    }

    // Reading (the one consumer).
}
