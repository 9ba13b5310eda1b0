//! A shard's cells: recording with plain loads and stores into the
//! shard's own words, and its bucket tables' probing.

use super::gauge::{change_gauge_slow, gauge_words, set_gauge};
use super::layout::{CELL_WORDS, COUNT_MASK, MAX_PROBES, PAGE_SERIES, f64_add, home, table_of};
use super::series::SeriesId;
use super::word::Word;
use crate::event::Kind;

/// The owned write path over a table's words: one shard's cells, written
/// with plain loads and stores. Shared by [`Shard`] and [`ShardView`];
/// it never allocates (a missing cell is reported, and made by the
/// `Shard`).
#[derive(Clone, Copy)]
pub(super) struct Cells<'a> {
    pub(super) words: &'a [Word],
    /// Where the shard's directory starts.
    pub(super) directory: usize,
}

/// What an owned write did.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Wrote {
    /// Recorded (or nothing to record: the call does not match the kind).
    Done,
    /// The shard has no cell (or distribution state) for the series yet.
    NoCell,
    /// The shard's bucket table has no room for the value's bucket.
    NoRoom,
}

impl<'a> Cells<'a> {
    /// The shard's cell for `series` (its words), if its page exists.
    #[inline]
    pub(super) fn cell(self, series: SeriesId) -> Option<&'a [Word; CELL_WORDS]> {
        let index = series.index();
        let page = self.words.get(self.directory + index / PAGE_SERIES)?.load() as usize;
        if page == 0 {
            return None;
        }
        let cell = page + (index % PAGE_SERIES) * CELL_WORDS;
        self.words.get(cell..)?.first_chunk::<CELL_WORDS>()
    }

    #[inline]
    pub(super) fn add(self, series: SeriesId, n: i64) -> Wrote {
        if !series.is(Kind::Counter) {
            return Wrote::Done;
        }
        let Some([sum, count, ..]) = self.cell(series) else {
            return Wrote::NoCell;
        };
        sum.store(sum.load().wrapping_add(n as u64));
        count.store(count.load().wrapping_add(1));
        Wrote::Done
    }

    /// Moves gauge `series` by `delta`: into the shard's change sum for
    /// the current epoch (see "The gauge protocol"), and counts it.
    #[inline]
    pub(super) fn change(self, series: SeriesId, delta: f64) -> Wrote {
        let Some((word, epoch)) = gauge_words(self.words, series) else {
            return Wrote::Done;
        };
        let Some([sum, changes, tag, _]) = self.cell(series) else {
            return Wrote::NoCell;
        };
        if tag.load() == epoch.load() {
            sum.store(f64_add(sum.load(), delta));
        } else {
            change_gauge_slow(word, epoch, sum, tag, delta);
        }
        changes.store(changes.load().wrapping_add(1));
        Wrote::Done
    }

    /// Sets gauge `series` to `value` (see "The gauge protocol"), and
    /// counts it in the shard's cell.
    #[inline]
    pub(super) fn set(self, series: SeriesId, value: f64) -> Wrote {
        let Some((word, epoch)) = gauge_words(self.words, series) else {
            return Wrote::Done;
        };
        let Some([_, changes, ..]) = self.cell(series) else {
            return Wrote::NoCell;
        };
        set_gauge(word, epoch, value);
        changes.store(changes.load().wrapping_add(1));
        Wrote::Done
    }

    /// Records a finite `value` into distribution `series`: counts it in
    /// the bucket table and adds it to the sum, minimum and maximum, all
    /// in its cell.
    #[inline]
    pub(super) fn record(self, series: SeriesId, value: f64) -> Wrote {
        if !series.is_distribution() {
            return Wrote::Done;
        }
        let Some([table, sum, min, max]) = self.cell(series) else {
            return Wrote::NoCell;
        };
        let Some((table, slots)) = table_of(table.load()) else {
            return Wrote::NoCell;
        };
        let id = series.bucket_of(value);
        let home = home(id, slots);
        // The first probe here, the rest (rare at the tables' load) apart,
        // so this path stays small enough to inline.
        let placed = match self.words.get(table + home) {
            Some(word) => match word.load() {
                0 => {
                    word.store(u64::from(id) << 48 | 1);
                    true
                }
                v if (v >> 48) as u16 == id && v & COUNT_MASK != COUNT_MASK => {
                    word.store(v + 1);
                    true
                }
                _ => probe_on(self.words, table, slots, home, id),
            },
            None => false,
        };
        if !placed {
            return Wrote::NoRoom;
        }
        sum.store(f64_add(sum.load(), value));
        if value < f64::from_bits(min.load()) {
            min.store(value.to_bits());
        }
        if value > f64::from_bits(max.load()) {
            max.store(value.to_bits());
        }
        Wrote::Done
    }
}

/// Counts one value of bucket `id` in the table at `table` of `slots`
/// slots in `words`, past its home slot `home`; whether it found room.
#[inline(never)]
pub(super) fn probe_on(words: &[Word], table: usize, slots: usize, home: usize, id: u16) -> bool {
    let mut slot = home;
    for _ in 1..MAX_PROBES {
        slot = (slot + 1) & (slots - 1);
        let Some(word) = words.get(table + slot) else {
            return false;
        };
        let v = word.load();
        if v == 0 {
            word.store(u64::from(id) << 48 | 1);
            return true;
        }
        if (v >> 48) as u16 == id && v & COUNT_MASK != COUNT_MASK {
            word.store(v + 1);
            return true;
        }
    }
    false
}
