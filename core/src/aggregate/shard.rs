//! The writers that own a shard ([`Shard`], claimed by a thread or task)
//! and the raw view an adapter's thread-local fast path records through
//! ([`ShardView`]).

use super::Aggregates;
use super::cells::{Cells, Wrote};
use super::error::NotFinite;
use super::layout::{
    CELL_WORDS, FIRST_SLOTS, NEGATIVE_INFINITY, PAGE_SERIES, POSITIVE_INFINITY, home, table_of,
    table_word,
};
use super::series::SeriesId;
use super::word::{Word, Words, sealed};
use core::fmt;
use core::ops::Deref;

/// A pointer to [`Aggregates`] that a [`Shard`] may hold: `&Aggregates`,
/// or (with `alloc`) `Arc<Aggregates>`. Sealed: a shard's exclusive claim
/// relies on the pointer always reaching the same table.
pub trait AggregatesRef<S>: sealed::Sealed + Deref<Target = Aggregates<S>> {}

impl<S> sealed::Sealed for &Aggregates<S> {}
impl<S> AggregatesRef<S> for &Aggregates<S> {}

#[cfg(all(any(feature = "alloc", test), not(loom), target_has_atomic = "ptr"))]
impl<S> sealed::Sealed for alloc::sync::Arc<Aggregates<S>> {}
#[cfg(all(any(feature = "alloc", test), not(loom), target_has_atomic = "ptr"))]
impl<S> AggregatesRef<S> for alloc::sync::Arc<Aggregates<S>> {}

#[cfg(loom)]
impl<S> sealed::Sealed for loom::sync::Arc<Aggregates<S>> {}
#[cfg(loom)]
impl<S> AggregatesRef<S> for loom::sync::Arc<Aggregates<S>> {}

/// One writer's cells: recording with plain loads and stores.
///
/// Claimed by one thread or task ([`Shard::claim`]) and written only
/// through `&mut self`; dropping it releases it for the next writer, who
/// carries on with its totals. A series' cell is made on first use; when
/// the pool has no room, the shard records into the series' shared state.
pub struct Shard<L> {
    pub(super) tables: L,
    pub(super) shard: usize,
    /// Where this shard's directory starts.
    pub(super) directory: usize,
    /// Gives the shard back; captured at claim time, where `L`'s bounds
    /// are known.
    pub(super) release: fn(&L, usize),
}

impl<L> fmt::Debug for Shard<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shard").field("shard", &self.shard).finish()
    }
}

impl<L, S> Shard<L>
where
    L: AggregatesRef<S> + Deref<Target = Aggregates<S>>,
    S: Words,
{
    /// Claims a free shard of `tables`, or `None` if every one is owned.
    pub fn claim(tables: L) -> Option<Self> {
        let shard = (0..tables.config.shards).find(|&s| {
            // Acquire: see the previous owner's writes before carrying on.
            tables
                .shard_claim(s)
                .is_some_and(|w| w.compare_exchange(0, 1).is_ok())
        })?;
        let directory = tables.directory(shard);
        Some(Shard {
            tables,
            shard,
            directory,
            release: |tables, shard| {
                if let Some(claim) = tables.shard_claim(shard) {
                    // Release: the next owner sees this one's writes.
                    claim.store_release(0);
                }
            },
        })
    }

    /// Which shard this is.
    pub fn index(&self) -> usize {
        self.shard
    }

    /// The table this shard writes into.
    pub fn tables(&self) -> &Aggregates<S> {
        &self.tables
    }

    #[inline]
    pub(super) fn cells<'s>(&'s self) -> Cells<'s>
    where
        S: 's,
    {
        Cells {
            words: self.tables.w(),
            directory: self.directory,
        }
    }

    /// Makes this shard's page for `series`; whether it exists now.
    #[cold]
    #[inline(never)]
    pub(super) fn new_page(&self, series: SeriesId) -> bool {
        let index = series.index();
        if index >= self.tables.config.series {
            return false;
        }
        let Some(slot) = self.tables.at(self.directory + index / PAGE_SERIES) else {
            return false;
        };
        if slot.load() != 0 {
            return true;
        }
        let Some(page) = self.tables.allocate(PAGE_SERIES * CELL_WORDS) else {
            return false;
        };
        // Release: the reader that sees the page sees it (zeroed) and,
        // later, what is written into it.
        slot.store_release(page as u64);
        true
    }

    /// Adds `n` to counter `series`.
    #[inline]
    pub fn add(&mut self, series: SeriesId, n: i64) {
        if self.cells().add(series, n) == Wrote::NoCell
            && !(self.new_page(series) && self.cells().add(series, n) == Wrote::Done)
        {
            self.tables.add(series, n);
        }
    }

    /// Sets gauge `series` to `value` (its value is shared: the last set
    /// from anywhere wins).
    #[inline]
    pub fn set(&mut self, series: SeriesId, value: f64) {
        if self.cells().set(series, value) == Wrote::NoCell
            && !(self.new_page(series) && self.cells().set(series, value) == Wrote::Done)
        {
            self.tables.set(series, value);
        }
    }

    /// Moves gauge `series` by `delta`: into this shard's change sum,
    /// which the reader adds to the value (so changes from everywhere
    /// compose, and a later set from anywhere replaces them).
    #[inline]
    pub fn change(&mut self, series: SeriesId, delta: f64) {
        if self.cells().change(series, delta) == Wrote::NoCell
            && !(self.new_page(series) && self.cells().change(series, delta) == Wrote::Done)
        {
            self.tables.change(series, delta);
        }
    }

    /// Records `value` into distribution `series`. NaN and infinities are
    /// refused and counted.
    #[inline]
    pub fn record(&mut self, series: SeriesId, value: f64) -> Result<(), NotFinite> {
        if !value.is_finite() {
            return Err(self.tables.refuse());
        }
        let mut wrote = self.cells().record(series, value);
        if wrote == Wrote::NoCell && self.new_state(series) {
            wrote = self.cells().record(series, value);
        }
        if wrote == Wrote::NoRoom && self.grow(series) {
            wrote = self.cells().record(series, value);
        }
        if wrote != Wrote::Done {
            self.tables.record_shared(series, value);
        }
        Ok(())
    }

    /// Makes this shard's page and distribution state for `series`;
    /// whether they exist now.
    #[cold]
    #[inline(never)]
    pub(super) fn new_state(&self, series: SeriesId) -> bool {
        if !self.new_page(series) {
            return false;
        }
        let Some([word, _, min, max]) = self.cells().cell(series) else {
            return false;
        };
        if word.load() != 0 {
            return true;
        }
        let t = &self.tables;
        let slots = FIRST_SLOTS.min(t.config.shard_buckets);
        let Some(table) = t.allocate(slots) else {
            return false;
        };
        min.store(POSITIVE_INFINITY);
        max.store(NEGATIVE_INFINITY);
        // Release: the reader that sees the table sees the cell set up.
        word.store_release(table_word(table, slots));
        true
    }

    /// Moves this shard's bucket table for distribution `series` into one
    /// four times larger (at most `shard_buckets` slots); whether there is
    /// room now. The old table stays as it was (a reader that still reads
    /// it sees counts that only lag), and its words are not reused.
    #[cold]
    #[inline(never)]
    pub(super) fn grow(&self, series: SeriesId) -> bool {
        let t = &self.tables;
        let Some([word, ..]) = self.cells().cell(series) else {
            return false;
        };
        let Some((old, slots)) = table_of(word.load()) else {
            return false;
        };
        let bigger = (slots * 4).min(t.config.shard_buckets);
        if bigger <= slots {
            return false;
        }
        let Some(new) = t.allocate(bigger) else {
            return false;
        };
        for v in (old..old + slots).filter_map(|i| t.at(i)).map(Word::load) {
            if v == 0 {
                continue;
            }
            // Four times the room: a free slot is always found.
            let mut slot = home((v >> 48) as u16, bigger);
            while let Some(dst) = t.at(new + slot) {
                if dst.load() == 0 {
                    dst.store(v);
                    break;
                }
                slot = (slot + 1) & (bigger - 1);
            }
        }
        // Release: a reader that sees the new table sees it filled.
        word.store_release(table_word(new, bigger));
        true
    }

    /// This shard's cells as raw parts, for an adapter's thread-local fast
    /// path (see [`ShardView`]).
    pub fn view(&self) -> ShardView {
        let words = self.tables.w();
        ShardView {
            words: core::ptr::NonNull::from(words).cast(),
            len: words.len(),
            directory: self.directory,
        }
    }
}

impl<L> Drop for Shard<L> {
    fn drop(&mut self) {
        (self.release)(&self.tables, self.shard);
    }
}

/// A [`Shard`]'s cells as raw parts: what a thread-local cache holds so
/// that a record is a few loads and stores, with no reference to the
/// shard itself to borrow or check. Its calls record what they can into
/// the shard's existing cells and say `false` when the shard must do it
/// (a cell to make, a full bucket table): then call the shard.
///
/// Neither `Send` nor `Sync`: it stays with the thread that owns the
/// shard.
#[derive(Clone, Copy, Debug)]
pub struct ShardView {
    pub(super) words: core::ptr::NonNull<Word>,
    pub(super) len: usize,
    pub(super) directory: usize,
}

impl ShardView {
    /// The cells.
    ///
    /// # Safety
    ///
    /// As for the public calls below.
    #[inline]
    pub(super) unsafe fn cells(&self) -> Cells<'_> {
        // SAFETY: the caller guarantees the shard this view came from is
        // alive, so its table's storage (`len` words from `words`, which
        // never move) is too.
        let words = unsafe { core::slice::from_raw_parts(self.words.as_ptr(), self.len) };
        Cells {
            words,
            directory: self.directory,
        }
    }

    /// Adds `n` to counter `series`; `false` when the shard must.
    ///
    /// # Safety
    ///
    /// The [`Shard`] this view was taken from is alive (not dropped) for
    /// the whole call, and the call is made by the thread that owns it (a
    /// shard has one writer).
    #[inline]
    pub unsafe fn add(&self, series: SeriesId, n: i64) -> bool {
        // SAFETY: the caller's guarantee, as documented.
        unsafe { self.cells() }.add(series, n) == Wrote::Done
    }

    /// Sets gauge `series` to `value`; `false` when the shard must.
    ///
    /// # Safety
    ///
    /// As for [`ShardView::add`].
    #[inline]
    pub unsafe fn set(&self, series: SeriesId, value: f64) -> bool {
        // SAFETY: the caller's guarantee, as documented.
        unsafe { self.cells() }.set(series, value) == Wrote::Done
    }

    /// Moves gauge `series` by `delta`; `false` when the shard must.
    ///
    /// # Safety
    ///
    /// As for [`ShardView::add`].
    #[inline]
    pub unsafe fn change(&self, series: SeriesId, delta: f64) -> bool {
        // SAFETY: the caller's guarantee, as documented.
        unsafe { self.cells() }.change(series, delta) == Wrote::Done
    }

    /// Records a finite `value` into distribution `series`; `false` when
    /// the shard must (a cell to make, no room in its bucket table, or a
    /// value that is not finite, which the shard refuses and counts).
    ///
    /// # Safety
    ///
    /// As for [`ShardView::add`].
    #[inline]
    pub unsafe fn record(&self, series: SeriesId, value: f64) -> bool {
        // SAFETY: the caller's guarantee, as documented.
        value.is_finite() && unsafe { self.cells() }.record(series, value) == Wrote::Done
    }
}
