//! Where things are in the storage: the words of an entry, a cell, a
//! page; how a bucket table is addressed and probed; the gauge epoch
//! word's flags.

/// Words per cache line: every allocation from the pool starts on a line
/// of its own, so two threads' cells never share one (false sharing cost
/// a second thread recording histograms 60% of its speed). Bare metal has
/// one core or no data cache: no padding.
#[cfg(not(target_os = "none"))]
pub(super) const LINE_WORDS: usize = 8;
#[cfg(target_os = "none")]
pub(super) const LINE_WORDS: usize = 1;

/// Series per page of a shard's cells.
pub(super) const PAGE_SERIES: usize = 32;
/// Words per cell (and so per series of a page): a counter's sum and
/// count, a gauge's change sum, change count and epoch tag, or a
/// distribution's bucket table, sum, minimum and maximum, in half a cache
/// line.
pub(super) const CELL_WORDS: usize = 4;
/// Words of a series' entry in the table (one cache line).
pub(super) const ENTRY_WORDS: usize = 8;
/// Probes a bucket lookup makes before it counts a table as full.
pub(super) const MAX_PROBES: usize = 8;
/// The count part of a bucket word (its top 16 bits are the bucket id).
pub(super) const COUNT_MASK: u64 = (1 << 48) - 1;

// An entry's words.
pub(super) const META: usize = 0;
/// Counter sum, gauge value, distribution unbucketed count.
pub(super) const A: usize = 1;
/// Counter additions, gauge changes, distribution sum.
pub(super) const B: usize = 2;
/// Distribution minimum.
pub(super) const MIN: usize = 3;
/// Distribution maximum.
pub(super) const MAX: usize = 4;
/// Gauge epoch (the distributions' minimum word; see "The gauge
/// protocol").
pub(super) const EPOCH: usize = MIN;
/// Distribution shared bucket table (word offset; 0 while there is none).
pub(super) const TABLE: usize = 5;
/// The reader's own word: the change count it last sent.
pub(super) const SENT: usize = 7;

/// Slots of a shard's first bucket table for a distribution; it grows
/// fourfold (up to `shard_buckets`) when a value finds no room.
pub(super) const FIRST_SLOTS: usize = 32;

/// A table word: where a bucket table is and how many slots it has.
pub(super) fn table_word(at: usize, slots: usize) -> u64 {
    at as u64 | u64::from(slots.trailing_zeros()) << 40
}

/// The (offset, slots) of a table word, or `None` for no table.
pub(super) fn table_of(word: u64) -> Option<(usize, usize)> {
    let at = (word & ((1 << 40) - 1)) as usize;
    (at != 0).then(|| (at, 1usize << (word >> 40)))
}

/// A meta word's flag: the entry is complete.
pub(super) const READY: u64 = 1 << 40;

/// A gauge epoch's flag: no shard has changes in this epoch.
pub(super) const CLEAN: u64 = 1;
/// A gauge epoch's flag: a set is starting the next epoch.
pub(super) const PENDING: u64 = 2;
/// From one gauge epoch number to the next.
pub(super) const EPOCH_STEP: u64 = 4;
/// A gauge cell's tag while its owner restarts its sum (no epoch: it has
/// the `PENDING` bit, which a tag never has).
pub(super) const SWITCHING: u64 = u64::MAX;
/// Times the reader reads a gauge again while sets race it.
pub(super) const GAUGE_READS: usize = 8;

pub(super) const POSITIVE_INFINITY: u64 = 0x7FF0_0000_0000_0000;
pub(super) const NEGATIVE_INFINITY: u64 = 0xFFF0_0000_0000_0000;

/// Which bucket-table slot `id` probes first among `slots` (a power of two).
///
/// A distribution's buckets are runs of neighbouring ids, so the slot
/// follows the id, one slot skipped every 16 ids (`m + m / 16`, where `m`
/// is the id's magnitude): a run of ids as long as the table, less a
/// sixteenth, lands without a collision, neighbouring buckets share cache
/// lines, and ids 16 apart (the powers of two: 1, 2, 4, ... bytes) fall 17
/// slots apart, never on one another. Negative values go half a table away
/// from positive ones of the same magnitude. Measured on the sustained
/// histogram record (1 µs to 10 ms, 5 series): 9.5-10.5 ns a call, against
/// 12.2-12.8 with a multiplicative hash, which scattered a series'
/// buckets over its whole 4 KiB table.
#[inline]
pub(super) fn home(id: u16, slots: usize) -> usize {
    let magnitude = usize::from(id & 0x7FFF);
    let negative = (id as i16 >> 15) as usize & (slots >> 1);
    ((magnitude + (magnitude >> 4)) ^ negative) & (slots - 1)
}

#[inline]
pub(super) fn f64_add(bits: u64, v: f64) -> u64 {
    (f64::from_bits(bits) + v).to_bits()
}
