//! The one reader: a series' shared state and every shard's cells
//! summed into a [`Snapshot`](super::Snapshot), and its buckets iterated.

use super::Aggregates;
use super::layout::{A, B, CLEAN, COUNT_MASK, EPOCH, GAUGE_READS, MAX, MIN, PENDING, SENT, TABLE};
use super::series::SeriesId;
use super::snapshot::{Snapshot, Totals};
use super::word::{Word, Words};
use crate::event::Kind;
use crate::sync::{Ordering, fence};

impl<S: Words> Aggregates<S> {
    /// `series`' totals now: its shared state plus every shard's cells.
    /// `None` for a series not (yet) in the table, and for a gauge that
    /// sets kept changing while it was read (rare: read it again).
    pub fn snapshot(&self, series: SeriesId) -> Option<Snapshot> {
        let key = self.key(series)?;
        let e = self.entry(series.index());
        let word = |i: usize| self.at(i).map_or(0, Word::load);
        let shards = 0..self.config.shards;
        let index = series.index();
        let (changes, value) = match series.kind() {
            Kind::Counter => {
                let (mut sum, mut count) = (word(e + A), word(e + B));
                for cell in shards.filter_map(|s| self.shard_cell(s, index)) {
                    sum = sum.wrapping_add(word(cell));
                    count = count.wrapping_add(word(cell + 1));
                }
                (
                    count,
                    Totals::Counter {
                        sum: sum as i64,
                        count,
                    },
                )
            }
            Kind::Gauge => {
                let mut changes = word(e + B);
                for cell in shards.filter_map(|s| self.shard_cell(s, index)) {
                    changes = changes.wrapping_add(word(cell + 1));
                }
                let value = self.gauge_value(e, index)?;
                (changes, Totals::Gauge { value })
            }
            Kind::Timer | Kind::Histogram => {
                let unbucketed = word(e + A);
                let mut count = unbucketed;
                let mut sum = f64::from_bits(word(e + B));
                let mut min = f64::from_bits(word(e + MIN));
                let mut max = f64::from_bits(word(e + MAX));
                let mut tables = self.tables(index);
                for (at, slots) in tables.by_ref() {
                    count += (at..at + slots).map(|i| word(i) & COUNT_MASK).sum::<u64>();
                }
                for (cell, _) in shards.filter_map(|s| self.shard_state(s, index)) {
                    sum += f64::from_bits(word(cell + 1));
                    min = min.min(f64::from_bits(word(cell + 2)));
                    max = max.max(f64::from_bits(word(cell + 3)));
                }
                (
                    count,
                    Totals::Distribution {
                        count,
                        sum,
                        min,
                        max,
                        unbucketed,
                    },
                )
            }
        };
        Some(Snapshot {
            key,
            kind: series.kind(),
            changes,
            value,
        })
    }

    /// The value of the gauge at entry `e` and index `index`: `V` plus the
    /// change sums of the current epoch, read again while sets race it
    /// (see "The gauge protocol"); `None` if they kept racing.
    pub(super) fn gauge_value(&self, e: usize, index: usize) -> Option<f64> {
        let (value, epoch) = (self.at(e + A)?, self.at(e + EPOCH)?);
        for _ in 0..GAUGE_READS {
            // Acquire: the value a completed set stored is seen.
            let t = epoch.load_acquire();
            if t & PENDING != 0 {
                core::hint::spin_loop();
                continue;
            }
            let mut v = f64::from_bits(value.load());
            if t & CLEAN == 0 {
                for cell in (0..self.config.shards).filter_map(|s| self.shard_cell(s, index)) {
                    v += self.gauge_sum(cell, t);
                }
            }
            // Acquire: if a value read above was stored by a set (a
            // Release store), the epoch read below sees that set begun.
            fence(Ordering::Acquire);
            if epoch.load() | CLEAN == t | CLEAN {
                return Some(v);
            }
        }
        None
    }

    /// A shard's gauge change sum in the cell at `cell`, if it belongs to
    /// epoch `t` (not clean, not pending): a seqlock read, as its owner restarts it
    /// with the tag cleared.
    pub(super) fn gauge_sum(&self, cell: usize, t: u64) -> f64 {
        let (Some(sum), Some(tag)) = (self.at(cell), self.at(cell + 2)) else {
            return 0.0;
        };
        // Acquire: the sum stored before the tag is seen.
        let before = tag.load_acquire();
        if before != t {
            return 0.0;
        }
        let s = f64::from_bits(sum.load());
        // Acquire: if the sum read was a restart's, the tag read below
        // sees that restart begun (its Release fence).
        fence(Ordering::Acquire);
        if tag.load() == before { s } else { 0.0 }
    }

    /// The bucket tables of the distribution at `index`: its shared one,
    /// then each shard's, as (word offset, slots).
    pub(super) fn tables(&self, index: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
        let shared = self
            .at(self.entry(index) + TABLE)
            .map(|w| w.load_acquire() as usize)
            .filter(|&t| t != 0)
            .map(|t| (t, self.config.shared_buckets));
        let shards = (0..self.config.shards)
            .filter_map(move |s| self.shard_state(s, index).map(|(_, table)| table));
        shared.into_iter().chain(shards)
    }

    /// The buckets of distribution `series` at `shift` (see `buckets.rs`):
    /// `(id >> shift, count)` in ascending id order, each id once, summed
    /// over the shared table and every shard's. No scratch memory: each
    /// scan of every table gathers the next 16 ids.
    pub fn buckets(&self, series: SeriesId, shift: u32) -> Buckets<'_, S> {
        Buckets {
            tables: self,
            index: series.index(),
            shift: shift.min(15),
            after: if series.is_distribution() {
                None
            } else {
                Some(u16::MAX)
            },
            chunk: [(0, 0); BUCKET_CHUNK],
            len: 0,
            next: 0,
        }
    }

    /// The change count the reader last sent for `series` (0 at first).
    pub fn sent(&self, series: SeriesId) -> u64 {
        self.at(self.entry(series.index()) + SENT)
            .map_or(0, Word::load)
    }

    /// Notes that the reader sent `series` at change count `changes`.
    pub fn set_sent(&self, series: SeriesId, changes: u64) {
        if let Some(word) = self.at(self.entry(series.index()) + SENT) {
            word.store(changes);
        }
    }
}

/// A distribution's buckets in a table, for a series datagram (see
/// [`SeriesWriter::push`](crate::wire::SeriesWriter::push)).
pub struct SeriesBuckets<'a, S> {
    /// The table.
    pub tables: &'a Aggregates<S>,
    /// The series.
    pub series: SeriesId,
}

/// Iterator over a distribution's buckets (see [`Aggregates::buckets`]).
pub struct Buckets<'a, S> {
    pub(super) tables: &'a Aggregates<S>,
    pub(super) index: usize,
    pub(super) shift: u32,
    /// The largest id taken into a chunk so far.
    pub(super) after: Option<u16>,
    /// The ids of the current scan, ascending, and their counts.
    pub(super) chunk: [(u16, u64); BUCKET_CHUNK],
    pub(super) len: u8,
    pub(super) next: u8,
}

/// Buckets one scan of a distribution's tables gathers: the reader's walk
/// costs (buckets / 16) scans of the tables instead of one per bucket, for
/// 256 bytes of stack.
pub(super) const BUCKET_CHUNK: usize = 16;

impl<S: Words> Buckets<'_, S> {
    /// Scans every table once for the [`BUCKET_CHUNK`] smallest ids above
    /// the last one taken, each summed over all tables. Once the chunk is
    /// full its largest id only falls, so an id dropped from it never
    /// comes back in the same scan (its partial count is not kept): the
    /// next scan sums it whole.
    pub(super) fn fill(&mut self) {
        self.len = 0;
        self.next = 0;
        let after = self.after.map_or(-1, i32::from);
        if after >= i32::from(u16::MAX) {
            return;
        }
        let w = self.tables.w();
        let chunk = &mut self.chunk;
        let mut len = 0;
        for (at, slots) in self.tables.tables(self.index) {
            for word in w.get(at..at + slots).unwrap_or(&[]) {
                let v = word.load();
                if v == 0 {
                    continue;
                }
                let id = (v >> 48) as u16 >> self.shift;
                if i32::from(id) <= after {
                    continue;
                }
                let count = v & COUNT_MASK;
                match chunk[..len].binary_search_by_key(&id, |b| b.0) {
                    Ok(i) => chunk[i].1 += count,
                    Err(i) if i < BUCKET_CHUNK => {
                        len = (len + 1).min(BUCKET_CHUNK);
                        chunk.copy_within(i..len - 1, i + 1);
                        chunk[i] = (id, count);
                    }
                    Err(_) => {}
                }
            }
        }
        self.after = Some(if len > 0 { chunk[len - 1].0 } else { u16::MAX });
        self.len = len as u8;
    }
}

impl<S: Words> Iterator for Buckets<'_, S> {
    type Item = (u16, u64);

    fn next(&mut self) -> Option<(u16, u64)> {
        if self.next == self.len {
            self.fill();
        }
        let item = self.chunk[..usize::from(self.len)].get(usize::from(self.next))?;
        self.next += 1;
        Some(*item)
    }
}
