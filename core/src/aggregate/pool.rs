//! The word pool: cells and bucket tables handed out from the storage's
//! free words (never freed), and where each shard's directory and cells
//! are.

use super::Aggregates;
use super::layout::{CELL_WORDS, LINE_WORDS, PAGE_SERIES, table_of};
use super::word::{Word, Words};
use crate::sync::Ordering;

impl<S: Words> Aggregates<S> {
    pub(super) fn shard_claim(&self, shard: usize) -> Option<&Word> {
        self.at(self.shards_at + shard * (1 + self.config.directory_len()))
    }

    /// Takes `n` zeroed words from the pool; their offset, or `None` when
    /// it is exhausted (counted).
    pub(super) fn allocate(&self, n: usize) -> Option<usize> {
        let n = n.next_multiple_of(LINE_WORDS);
        let end = self.w().len();
        let mut at = self.next.load(Ordering::Relaxed);
        loop {
            if at + n > end {
                self.pool_exhausted.fetch_add(1);
                return None;
            }
            match self
                .next
                .compare_exchange_weak(at, at + n, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return Some(at),
                Err(now) => at = now,
            }
        }
    }

    // Recording through the shared state: any thread or interrupt handler.

    /// Where shard `shard`'s directory starts.
    pub(super) fn directory(&self, shard: usize) -> usize {
        self.shards_at + shard * (1 + self.config.directory_len()) + 1
    }

    /// Shard `shard`'s cell for series `index`, if it has one.
    pub(super) fn shard_cell(&self, shard: usize, index: usize) -> Option<usize> {
        // Acquire: pairs with the owner's Release when it made the page.
        let page = self
            .at(self.directory(shard) + index / PAGE_SERIES)?
            .load_acquire() as usize;
        (page != 0).then_some(page + (index % PAGE_SERIES) * CELL_WORDS)
    }

    /// Shard `shard`'s distribution state for series `index`, if any: its
    /// cell (sum, minimum and maximum in words 1 to 3) and its bucket table
    /// (offset and slots).
    pub(super) fn shard_state(
        &self,
        shard: usize,
        index: usize,
    ) -> Option<(usize, (usize, usize))> {
        let cell = self.shard_cell(shard, index)?;
        // Acquire: a table made or grown by the owner is seen filled, and
        // the cell's words set before it.
        let table = table_of(self.at(cell)?.load_acquire())?;
        Some((cell, table))
    }
}
