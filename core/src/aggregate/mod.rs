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
mod export;

pub use export::{
    AggregateExporter, AggregateExporterConfig, AggregateExporterError, AggregateTelemetry,
};

pub use buckets::{
    MAX_RELATIVE_ERROR, MAX_SHIFT, NANOS_PER_SECOND, SCALE, ZERO_THRESHOLD, bucket_of,
    bucket_of_kind, bucket_range, bucket_value, exponential_bound, exponential_index, is_negative,
    is_zero_bucket, quantile, stand_in, timer_bucket_of, value_order,
};

use crate::event::{KeyId, Kind};
#[cfg(any(loom, target_has_atomic = "64"))]
use crate::sync::AtomicU64;
use crate::sync::{AtomicUsize, Ordering, fence};
use core::fmt;
use core::ops::Deref;

/// One 64-bit cell of aggregation storage: a native 64-bit atomic where
/// the target has one, otherwise a value behind a critical section (the
/// `critical-section` crate; the firmware provides the implementation,
/// which on a single core just masks interrupts for the two 32-bit
/// accesses).
pub struct Word(Cell64);

impl Default for Word {
    fn default() -> Self {
        Word::new()
    }
}

impl fmt::Debug for Word {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Word({:#x})", self.load())
    }
}

#[cfg(any(loom, target_has_atomic = "64"))]
type Cell64 = AtomicU64;
#[cfg(not(any(loom, target_has_atomic = "64")))]
type Cell64 = critical_section::Mutex<core::cell::Cell<u64>>;

impl Word {
    /// A zeroed word (usable in a `static` array).
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        #[cfg(target_has_atomic = "64")]
        return Word(AtomicU64::new(0));
        #[cfg(not(target_has_atomic = "64"))]
        return Word(critical_section::Mutex::new(core::cell::Cell::new(0)));
    }

    /// A zeroed word.
    #[cfg(loom)]
    pub fn new() -> Self {
        Word(AtomicU64::new(0))
    }
}

#[cfg(all(any(feature = "alloc", test), target_has_atomic = "64", not(loom)))]
impl Word {
    /// `n` zeroed words on the heap, from zeroed memory: a large table
    /// costs resident memory only as its words are used (the allocator
    /// maps fresh zero pages for big requests), not when it is made.
    /// `None` when `n` words cannot be addressed.
    pub fn zeroed(n: usize) -> Option<alloc::boxed::Box<[Word]>> {
        if n == 0 {
            return Some(alloc::boxed::Box::new([]));
        }
        let layout = core::alloc::Layout::array::<Word>(n).ok()?;
        // SAFETY: `layout` has a non-zero size (n > 0 words of 8 bytes).
        let ptr = unsafe { alloc::alloc::alloc_zeroed(layout) }.cast::<Word>();
        if ptr.is_null() {
            alloc::alloc::handle_alloc_error(layout);
        }
        let slice = core::ptr::slice_from_raw_parts_mut(ptr, n);
        // SAFETY: `ptr` is a live allocation of `layout`, which is the
        // layout of `[Word; n]`, made by the global allocator as `Box`
        // expects; its bytes are zero, and a `Word` here is a
        // `portable_atomic::AtomicU64` with the native 64-bit atomic inside,
        // whose representation is a `u64`'s: all-zero bytes are the valid
        // value 0.
        Some(unsafe { alloc::boxed::Box::from_raw(slice) })
    }
}

#[cfg(any(loom, target_has_atomic = "64"))]
impl Word {
    #[inline]
    fn load(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    #[inline]
    fn store(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed)
    }

    #[inline]
    fn load_acquire(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    #[inline]
    fn store_release(&self, v: u64) {
        self.0.store(v, Ordering::Release)
    }

    #[inline]
    fn fetch_add(&self, v: u64) {
        self.0.fetch_add(v, Ordering::Relaxed);
    }

    #[inline]
    fn swap_release(&self, v: u64) {
        self.0.swap(v, Ordering::Release);
    }

    /// Replaces `current` with `new`; `Err` with the value found instead.
    /// Acquire and Release, so a pointer published this way is seen
    /// with what it points to.
    #[inline]
    fn compare_exchange(&self, current: u64, new: u64) -> Result<u64, u64> {
        self.0
            .compare_exchange(current, new, Ordering::AcqRel, Ordering::Acquire)
    }

    /// Applies `f` until it returns `None` or the swap succeeds.
    #[inline]
    fn update(&self, f: impl FnMut(u64) -> Option<u64>) {
        let _ = self.0.fetch_update(Ordering::Relaxed, Ordering::Relaxed, f);
    }
}

#[cfg(not(any(loom, target_has_atomic = "64")))]
impl Word {
    // A critical section orders everything around it, so the orderings
    // asked for are all met.
    #[inline]
    fn load(&self) -> u64 {
        critical_section::with(|cs| self.0.borrow(cs).get())
    }

    #[inline]
    fn store(&self, v: u64) {
        critical_section::with(|cs| self.0.borrow(cs).set(v))
    }

    #[inline]
    fn load_acquire(&self) -> u64 {
        self.load()
    }

    #[inline]
    fn store_release(&self, v: u64) {
        self.store(v)
    }

    #[inline]
    fn fetch_add(&self, v: u64) {
        critical_section::with(|cs| {
            let cell = self.0.borrow(cs);
            cell.set(cell.get().wrapping_add(v));
        })
    }

    #[inline]
    fn swap_release(&self, v: u64) {
        self.store(v)
    }

    #[inline]
    fn compare_exchange(&self, current: u64, new: u64) -> Result<u64, u64> {
        critical_section::with(|cs| {
            let cell = self.0.borrow(cs);
            let found = cell.get();
            if found == current {
                cell.set(new);
                Ok(found)
            } else {
                Err(found)
            }
        })
    }

    #[inline]
    fn update(&self, mut f: impl FnMut(u64) -> Option<u64>) {
        critical_section::with(|cs| {
            let cell = self.0.borrow(cs);
            if let Some(new) = f(cell.get()) {
                cell.set(new);
            }
        })
    }
}

mod sealed {
    pub trait Sealed {}
}

/// Storage for [`Aggregates`]: an array, a `&mut` slice or (with `alloc`)
/// a boxed slice of [`Word`]s.
pub trait Words: sealed::Sealed {
    /// The words.
    fn words(&self) -> &[Word];
}

impl<const N: usize> sealed::Sealed for [Word; N] {}
impl<const N: usize> Words for [Word; N] {
    fn words(&self) -> &[Word] {
        self
    }
}

impl sealed::Sealed for &mut [Word] {}
impl Words for &mut [Word] {
    fn words(&self) -> &[Word] {
        self
    }
}

#[cfg(any(feature = "alloc", test))]
impl sealed::Sealed for alloc::boxed::Box<[Word]> {}
#[cfg(any(feature = "alloc", test))]
impl Words for alloc::boxed::Box<[Word]> {
    fn words(&self) -> &[Word] {
        self
    }
}

/// Words per cache line: every allocation from the pool starts on a line
/// of its own, so two threads' cells never share one (false sharing cost
/// a second thread recording histograms 60% of its speed). Bare metal has
/// one core or no data cache: no padding.
#[cfg(not(target_os = "none"))]
const LINE_WORDS: usize = 8;
#[cfg(target_os = "none")]
const LINE_WORDS: usize = 1;

/// Series per page of a shard's cells.
const PAGE_SERIES: usize = 32;
/// Words per cell (and so per series of a page): a counter's sum and
/// count, a gauge's change sum, change count and epoch tag, or a
/// distribution's bucket table, sum, minimum and maximum, in half a cache
/// line.
const CELL_WORDS: usize = 4;
/// Words of a series' entry in the table (one cache line).
const ENTRY_WORDS: usize = 8;
/// Probes a bucket lookup makes before it counts a table as full.
const MAX_PROBES: usize = 8;
/// The count part of a bucket word (its top 16 bits are the bucket id).
const COUNT_MASK: u64 = (1 << 48) - 1;

// An entry's words.
const META: usize = 0;
/// Counter sum, gauge value, distribution unbucketed count.
const A: usize = 1;
/// Counter additions, gauge changes, distribution sum.
const B: usize = 2;
/// Distribution minimum.
const MIN: usize = 3;
/// Distribution maximum.
const MAX: usize = 4;
/// Gauge epoch (the distributions' minimum word; see "The gauge
/// protocol").
const EPOCH: usize = MIN;
/// Distribution shared bucket table (word offset; 0 while there is none).
const TABLE: usize = 5;
/// The reader's own word: the change count it last sent.
const SENT: usize = 7;

/// Slots of a shard's first bucket table for a distribution; it grows
/// fourfold (up to `shard_buckets`) when a value finds no room.
const FIRST_SLOTS: usize = 32;

/// A table word: where a bucket table is and how many slots it has.
fn table_word(at: usize, slots: usize) -> u64 {
    at as u64 | u64::from(slots.trailing_zeros()) << 40
}

/// The (offset, slots) of a table word, or `None` for no table.
fn table_of(word: u64) -> Option<(usize, usize)> {
    let at = (word & ((1 << 40) - 1)) as usize;
    (at != 0).then(|| (at, 1usize << (word >> 40)))
}

/// A meta word's flag: the entry is complete.
const READY: u64 = 1 << 40;

/// A gauge epoch's flag: no shard has changes in this epoch.
const CLEAN: u64 = 1;
/// A gauge epoch's flag: a set is starting the next epoch.
const PENDING: u64 = 2;
/// From one gauge epoch number to the next.
const EPOCH_STEP: u64 = 4;
/// A gauge cell's tag while its owner restarts its sum (no epoch: it has
/// the `PENDING` bit, which a tag never has).
const SWITCHING: u64 = u64::MAX;
/// Times the reader reads a gauge again while sets race it.
const GAUGE_READS: usize = 8;

const POSITIVE_INFINITY: u64 = 0x7FF0_0000_0000_0000;
const NEGATIVE_INFINITY: u64 = 0xFFF0_0000_0000_0000;

/// Sizes of an [`Aggregates`] table.
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

    const fn directory_len(&self) -> usize {
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

/// Why an [`Aggregates`] table could not be made or a series added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum AggregatesError {
    /// The storage has fewer words than the table's fixed part needs.
    Storage {
        /// Words needed (at least).
        needed: usize,
        /// Words given.
        got: usize,
    },
    /// A bucket table size is not a power of two from 8, or a size is too
    /// large to address.
    Config,
    /// Every series slot is taken.
    Full {
        /// The table's capacity.
        capacity: usize,
    },
}

impl fmt::Display for AggregatesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            AggregatesError::Storage { needed, got } => write!(
                f,
                "aggregation storage has {got} words, the table needs at least {needed}"
            ),
            AggregatesError::Config => f.write_str(
                "bucket tables must be powers of two from 8, and sizes below 2^30 series",
            ),
            AggregatesError::Full { capacity } => {
                write!(f, "aggregation table full ({capacity} series)")
            }
        }
    }
}

impl core::error::Error for AggregatesError {}

/// A value a distribution cannot take: NaN or an infinity (counted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct NotFinite;

impl fmt::Display for NotFinite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a distribution takes finite values only")
    }
}

impl core::error::Error for NotFinite {}

/// A series in an [`Aggregates`] table: its index and its kind. Only the
/// table issues them, so a handle's calls always match its series' kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SeriesId(u32);

impl SeriesId {
    fn new(index: usize, kind: Kind) -> Self {
        SeriesId(index as u32 | (kind as u32) << 30)
    }

    /// The series' position in its table (dense, from 0).
    pub const fn index(self) -> usize {
        (self.0 & ((1 << 30) - 1)) as usize
    }

    /// The series' kind.
    #[inline]
    pub const fn kind(self) -> Kind {
        Kind::ALL[(self.0 >> 30) as usize]
    }

    /// Whether the series is of `kind` (a compare of its top bits).
    #[inline]
    const fn is(self, kind: Kind) -> bool {
        self.0 >> 30 == kind as u32
    }

    #[inline]
    const fn is_distribution(self) -> bool {
        // Timer (2) and histogram (3): the top bit.
        self.0 >> 31 == 1
    }

    /// The bucket of `value` in this distribution: a timer's in seconds.
    #[inline]
    fn bucket_of(self, value: f64) -> u16 {
        if self.is(Kind::Timer) {
            timer_bucket_of(value)
        } else {
            bucket_of(value)
        }
    }
}

/// A series' totals at one moment (see [`Aggregates::snapshot`]).
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
    /// [`Aggregates::buckets`]).
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

/// Counters of a table (see [`Aggregates::stats`]).
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

/// Which bucket-table slot `id` probes first among `slots` (a power of two).
#[inline]
fn home(id: u16, slots: usize) -> usize {
    (u32::from(id).wrapping_mul(0x9E37_79B9) >> 16) as usize & (slots - 1)
}

#[inline]
fn f64_add(bits: u64, v: f64) -> u64 {
    (f64::from_bits(bits) + v).to_bits()
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
        let pool_at = (needed + (LINE_WORDS - misaligned % LINE_WORDS) % LINE_WORDS).min(got);
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

    fn shard_claim(&self, shard: usize) -> Option<&Word> {
        self.at(self.shards_at + shard * (1 + self.config.directory_len()))
    }

    /// Takes `n` zeroed words from the pool; their offset, or `None` when
    /// it is exhausted (counted).
    fn allocate(&self, n: usize) -> Option<usize> {
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

    /// Adds `n` to counter `series` (a read-modify-write; see [`Shard`]
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
    fn change_value(&self, series: SeriesId, delta: f64) -> bool {
        match gauge_words(self.w(), series) {
            Some((word, _)) => {
                word.update(|bits| Some(f64_add(bits, delta)));
                true
            }
            None => false,
        }
    }

    fn count_change(&self, series: SeriesId) {
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

    fn refuse(&self) -> NotFinite {
        self.not_finite.fetch_add(1);
        NotFinite
    }

    #[inline(never)]
    fn record_shared(&self, series: SeriesId, value: f64) {
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
    fn shared_table(&self, e: usize) -> Option<usize> {
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
    fn bucket_shared(&self, table: usize, slots: usize, id: u16) -> bool {
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

    /// Where shard `shard`'s directory starts.
    fn directory(&self, shard: usize) -> usize {
        self.shards_at + shard * (1 + self.config.directory_len()) + 1
    }

    /// Shard `shard`'s cell for series `index`, if it has one.
    fn shard_cell(&self, shard: usize, index: usize) -> Option<usize> {
        // Acquire: pairs with the owner's Release when it made the page.
        let page = self
            .at(self.directory(shard) + index / PAGE_SERIES)?
            .load_acquire() as usize;
        (page != 0).then_some(page + (index % PAGE_SERIES) * CELL_WORDS)
    }

    /// Shard `shard`'s distribution state for series `index`, if any: its
    /// cell (sum, minimum and maximum in words 1 to 3) and its bucket table
    /// (offset and slots).
    fn shard_state(&self, shard: usize, index: usize) -> Option<(usize, (usize, usize))> {
        let cell = self.shard_cell(shard, index)?;
        // Acquire: a table made or grown by the owner is seen filled, and
        // the cell's words set before it.
        let table = table_of(self.at(cell)?.load_acquire())?;
        Some((cell, table))
    }

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
    fn gauge_value(&self, e: usize, index: usize) -> Option<f64> {
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
    fn gauge_sum(&self, cell: usize, t: u64) -> f64 {
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
    fn tables(&self, index: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
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
    tables: &'a Aggregates<S>,
    index: usize,
    shift: u32,
    /// The largest id taken into a chunk so far.
    after: Option<u16>,
    /// The ids of the current scan, ascending, and their counts.
    chunk: [(u16, u64); BUCKET_CHUNK],
    len: u8,
    next: u8,
}

/// Buckets one scan of a distribution's tables gathers: the reader's walk
/// costs (buckets / 16) scans of the tables instead of one per bucket, for
/// 256 bytes of stack.
const BUCKET_CHUNK: usize = 16;

impl<S: Words> Buckets<'_, S> {
    /// Scans every table once for the [`BUCKET_CHUNK`] smallest ids above
    /// the last one taken, each summed over all tables. Once the chunk is
    /// full its largest id only falls, so an id dropped from it never
    /// comes back in the same scan (its partial count is not kept): the
    /// next scan sums it whole.
    fn fill(&mut self) {
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

/// A gauge's value and epoch words (see "The gauge protocol").
#[inline]
fn gauge_words(words: &[Word], series: SeriesId) -> Option<(&Word, &Word)> {
    if !series.is(Kind::Gauge) {
        return None;
    }
    let e = series.index() * ENTRY_WORDS;
    Some((words.get(e + A)?, words.get(e + EPOCH)?))
}

/// Sets the gauge of value `word` and epoch `epoch` to `value` (see
/// "The gauge protocol").
#[inline]
fn set_gauge(word: &Word, epoch: &Word, value: f64) {
    // Acquire: a set that sees the epoch a set started sees that set's
    // value, and stores after it.
    if epoch.load_acquire() & (CLEAN | PENDING) == CLEAN {
        // A value already there is not written again: a gauge set to the
        // same value from several threads (a pool's size, a steady queue)
        // then only reads its cache line, which the cores can share.
        let bits = value.to_bits();
        if word.load() != bits {
            word.store(bits);
        }
    } else {
        set_dirty_gauge(word, epoch, value);
    }
}

/// Sets a gauge whose epoch has changes (or a set pending): starts the
/// next epoch, so that they no longer count. Its stores of the value are
/// swaps (Release): the reader that reads the value sees the epoch
/// pending; and changes made meanwhile move the value with
/// compare-and-swaps, which a swap is ordered with (loom, which checks
/// this in `tests/loom.rs`, lets a plain store race those unseen).
#[cold]
#[inline(never)]
fn set_dirty_gauge(word: &Word, epoch: &Word, value: f64) {
    let bits = value.to_bits();
    loop {
        let t = epoch.load_acquire();
        if t & (CLEAN | PENDING) != 0 {
            // Clean again, or another set is starting the next epoch:
            // this one is concurrent with it and may be the one that wins.
            word.swap_release(bits);
            return;
        }
        if epoch.compare_exchange(t, t | PENDING).is_ok() {
            // Release: the reader that reads this value sees the epoch
            // pending (see `gauge_value`).
            word.swap_release(bits);
            // Release: the reader that sees the next epoch sees the value.
            epoch.store_release((t + EPOCH_STEP) | CLEAN);
            return;
        }
    }
}

/// A change by a shard whose cell's tag is not the gauge's epoch (its
/// first in the epoch) or while a set is pending (see "The gauge
/// protocol").
#[cold]
#[inline(never)]
fn change_gauge_slow(word: &Word, epoch: &Word, sum: &Word, tag: &Word, delta: f64) {
    loop {
        let t = epoch.load();
        if t & PENDING != 0 {
            word.update(|bits| Some(f64_add(bits, delta)));
            return;
        }
        if t & CLEAN != 0 && epoch.compare_exchange(t, t & !CLEAN).is_err() {
            continue;
        }
        let t = t & !CLEAN;
        if tag.load() == t {
            sum.store(f64_add(sum.load(), delta));
        } else {
            // Release: a reader that sees the tag cleared sees the epoch
            // that made the sum stale (it reads the epoch again after).
            tag.store_release(SWITCHING);
            // Release: a reader that reads the sum below sees the tag
            // cleared (see `gauge_sum`).
            fence(Ordering::Release);
            sum.store(delta.to_bits());
            // Release: a reader that sees the tag sees the sum.
            tag.store_release(t);
        }
        return;
    }
}

/// The owned write path over a table's words: one shard's cells, written
/// with plain loads and stores. Shared by [`Shard`] and [`ShardView`];
/// it never allocates (a missing cell is reported, and made by the
/// `Shard`).
#[derive(Clone, Copy)]
struct Cells<'a> {
    words: &'a [Word],
    /// Where the shard's directory starts.
    directory: usize,
}

/// What an owned write did.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Wrote {
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
    fn cell(self, series: SeriesId) -> Option<&'a [Word; CELL_WORDS]> {
        let index = series.index();
        let page = self.words.get(self.directory + index / PAGE_SERIES)?.load() as usize;
        if page == 0 {
            return None;
        }
        let cell = page + (index % PAGE_SERIES) * CELL_WORDS;
        self.words.get(cell..)?.first_chunk::<CELL_WORDS>()
    }

    #[inline]
    fn add(self, series: SeriesId, n: i64) -> Wrote {
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
    fn change(self, series: SeriesId, delta: f64) -> Wrote {
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
    fn set(self, series: SeriesId, value: f64) -> Wrote {
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
    fn record(self, series: SeriesId, value: f64) -> Wrote {
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
fn probe_on(words: &[Word], table: usize, slots: usize, home: usize, id: u16) -> bool {
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

/// One writer's cells: recording with plain loads and stores.
///
/// Claimed by one thread or task ([`Shard::claim`]) and written only
/// through `&mut self`; dropping it releases it for the next writer, who
/// carries on with its totals. A series' cell is made on first use; when
/// the pool has no room, the shard records into the series' shared state.
pub struct Shard<L> {
    tables: L,
    shard: usize,
    /// Where this shard's directory starts.
    directory: usize,
    /// Gives the shard back; captured at claim time, where `L`'s bounds
    /// are known.
    release: fn(&L, usize),
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
    fn cells<'s>(&'s self) -> Cells<'s>
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
    fn new_page(&self, series: SeriesId) -> bool {
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
    fn new_state(&self, series: SeriesId) -> bool {
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
    fn grow(&self, series: SeriesId) -> bool {
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
    words: core::ptr::NonNull<Word>,
    len: usize,
    directory: usize,
}

impl ShardView {
    /// The cells.
    ///
    /// # Safety
    ///
    /// As for the public calls below.
    #[inline]
    unsafe fn cells(&self) -> Cells<'_> {
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

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::vec::Vec;

    type Table = Aggregates<std::boxed::Box<[Word]>>;

    /// Tables with `pool` words for cells and bucket tables. The tests
    /// keep pools small: miri's borrow tracking costs time in proportion
    /// to the storage a slice of it spans.
    fn table(config: AggregatesConfig, pool: usize) -> Table {
        // Zeroed storage, as the std client makes it, so that miri checks
        // `Word::zeroed` too.
        let words = Word::zeroed(config.fixed_words() + pool).unwrap();
        Aggregates::with_storage(words, config).unwrap()
    }

    fn key(i: u32) -> KeyId {
        KeyId::from_raw(i)
    }

    fn counter(t: &Table, s: SeriesId) -> (i64, u64) {
        match t.snapshot(s).unwrap().value {
            Totals::Counter { sum, count } => (sum, count),
            other => panic!("{other:?}"),
        }
    }

    fn distribution(t: &Table, s: SeriesId) -> (u64, f64, f64, f64, u64) {
        match t.snapshot(s).unwrap().value {
            Totals::Distribution {
                count,
                sum,
                min,
                max,
                unbucketed,
            } => (count, sum, min, max, unbucketed),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn counters_sum_owned_and_shared_additions_exactly() {
        let t = table(AggregatesConfig::new(10, 2), 256);
        let c = t.insert(key(7), Kind::Counter).unwrap();
        let mut a = Shard::claim(&t).unwrap();
        let mut b = Shard::claim(&t).unwrap();
        assert!(Shard::claim(&t).is_none(), "two shards only");
        for i in 0..1000 {
            a.add(c, i);
            b.add(c, -1);
            t.add(c, 2);
        }
        assert_eq!(counter(&t, c), (499_500 - 1000 + 2000, 3000));
        let s = t.snapshot(c).unwrap();
        assert_eq!((s.key, s.kind, s.changes), (key(7), Kind::Counter, 3000));
        assert_eq!(t.find(key(7), Kind::Counter), Some(c));
        assert_eq!(t.find(key(7), Kind::Gauge), None);
    }

    #[test]
    fn gauge_sets_and_changes_from_everywhere_compose() {
        let t = table(AggregatesConfig::new(10, 2), 1024);
        let g = t.insert(key(1), Kind::Gauge).unwrap();
        let mut a = Shard::claim(&t).unwrap();
        let mut b = Shard::claim(&t).unwrap();
        a.set(g, 100.0);
        a.set(g, 0.0);
        for i in 0..10 {
            [&mut a, &mut b][i % 2].change(g, 1.0);
        }
        for _ in 0..3 {
            t.change(g, -1.0);
        }
        let s = t.snapshot(g).unwrap();
        assert_eq!(s.value, Totals::Gauge { value: 7.0 });
        assert_eq!(s.changes, 15);
        b.set(g, -2.5);
        assert_eq!(t.snapshot(g).unwrap().value, Totals::Gauge { value: -2.5 });
    }

    #[test]
    fn a_gauge_set_forgets_the_changes_before_it_and_counts_those_after() {
        let t = table(AggregatesConfig::new(4, 2), 1024);
        let g = t.insert(key(1), Kind::Gauge).unwrap();
        let mut a = Shard::claim(&t).unwrap();
        let mut b = Shard::claim(&t).unwrap();
        let value = |t: &Table| t.snapshot(g).unwrap().value;
        a.change(g, 5.0);
        b.change(g, 2.0);
        t.change(g, 1.0);
        assert_eq!(value(&t), Totals::Gauge { value: 8.0 });
        // A set from a shard, then from the shared path: each one starts
        // an epoch in which the shards' earlier sums no longer count.
        b.set(g, 10.0);
        assert_eq!(value(&t), Totals::Gauge { value: 10.0 });
        a.change(g, -1.0);
        assert_eq!(value(&t), Totals::Gauge { value: 9.0 });
        t.set(g, 0.5);
        b.change(g, 0.25);
        a.change(g, 0.25);
        assert_eq!(value(&t), Totals::Gauge { value: 1.0 });
        // Sets with no change between them need no new epoch.
        a.set(g, 3.0);
        a.set(g, 4.0);
        assert_eq!(value(&t), Totals::Gauge { value: 4.0 });
        // Sets of the value it has (not written again) are counted, and a
        // change after them counts.
        b.set(g, 4.0);
        t.set(g, 4.0);
        a.change(g, 1.0);
        assert_eq!(value(&t), Totals::Gauge { value: 5.0 });
        // The value stored is 4 again, but the change since is forgotten.
        b.set(g, 4.0);
        assert_eq!(value(&t), Totals::Gauge { value: 4.0 });
        assert_eq!(t.snapshot(g).unwrap().changes, 14);
    }

    #[test]
    fn gauge_sets_racing_changes_on_threads_leave_a_value_it_had() {
        let t = Arc::new(table(AggregatesConfig::new(4, 2), 1024));
        let g = t.insert(key(1), Kind::Gauge).unwrap();
        let n: u32 = if cfg!(miri) { 30 } else { 20_000 };
        let changers: Vec<_> = (0..3)
            .map(|_| {
                let t = t.clone();
                std::thread::spawn(move || {
                    // Two threads own shards, one changes the value itself.
                    let mut shard = Shard::claim(t.clone());
                    for _ in 0..n {
                        match &mut shard {
                            Some(s) => s.change(g, 1.0),
                            None => t.change(g, 1.0),
                        }
                    }
                    shard
                })
            })
            .collect();
        for i in 0..n / 10 {
            t.set(g, -1.0);
            if let Some(Snapshot {
                value: Totals::Gauge { value },
                ..
            }) = t.snapshot(g)
            {
                // At least the set, at most every change after it.
                assert!((-1.0..=f64::from(3 * n)).contains(&value), "{i}: {value}");
                assert_eq!(value.fract(), 0.0);
            }
        }
        let mut shards: Vec<_> = changers.into_iter().map(|c| c.join().unwrap()).collect();
        t.set(g, 100.0);
        for s in shards.iter_mut().flatten() {
            s.change(g, 1.0);
        }
        t.change(g, 1.0);
        assert_eq!(t.snapshot(g).unwrap().value, Totals::Gauge { value: 103.0 });
        assert_eq!(
            t.snapshot(g).unwrap().changes,
            u64::from(3 * n + n / 10 + 4)
        );
    }

    #[test]
    fn distributions_merge_counts_sums_extremes_and_buckets() {
        let t = table(AggregatesConfig::new(10, 2), 2048);
        let h = t.insert(key(3), Kind::Histogram).unwrap();
        let mut a = Shard::claim(&t).unwrap();
        let mut b = Shard::claim(&t).unwrap();
        let mut all = Vec::new();
        // Every bucket of the 97 values many times over; fewer under miri.
        let n = if cfg!(miri) { 388 } else { 3_000u32 };
        for i in 0..n {
            let v = f64::from(i % 97) * 1.5 - 20.0;
            match i % 3 {
                0 => a.record(h, v).unwrap(),
                1 => b.record(h, v).unwrap(),
                _ => t.record(h, v).unwrap(),
            }
            all.push(v);
        }
        let sum: f64 = all.iter().sum();
        let (count, got_sum, min, max, unbucketed) = distribution(&t, h);
        assert_eq!((count, unbucketed), (u64::from(n), 0));
        assert_eq!(got_sum, sum);
        assert_eq!((min, max), (-20.0, 96.0 * 1.5 - 20.0));
        // Buckets come in id order, once each, and add up to the count.
        let buckets: Vec<(u16, u64)> = t.buckets(h, 0).collect();
        assert!(buckets.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(buckets.iter().map(|b| b.1).sum::<u64>(), u64::from(n));
        let mut expected: Vec<(u16, u64)> = Vec::new();
        let mut ids: Vec<u16> = all.iter().map(|&v| bucket_of(v)).collect();
        ids.sort_unstable();
        for id in ids {
            match expected.last_mut() {
                Some((last, n)) if *last == id => *n += 1,
                _ => expected.push((id, 1)),
            }
        }
        assert_eq!(buckets, expected);
        // At a shift, neighbours merge and the total stays.
        let coarse: Vec<(u16, u64)> = t.buckets(h, 3).collect();
        assert!(coarse.len() < buckets.len());
        let mut merged: Vec<(u16, u64)> = Vec::new();
        for (id, n) in expected {
            match merged.last_mut() {
                Some((last, m)) if *last == id >> 3 => *m += n,
                _ => merged.push((id >> 3, n)),
            }
        }
        assert_eq!(coarse, merged);
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "safe arithmetic over tens of thousands of values: hours under miri, nothing for it to find"
    )]
    fn quantiles_from_the_buckets_are_within_the_stated_error() {
        let t = table(AggregatesConfig::new(4, 1), 1 << 16);
        let d = t.insert(key(0), Kind::Histogram).unwrap();
        let mut shard = Shard::claim(&t).unwrap();
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let n = 50_000;
        let mut values: Vec<f64> = (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // Log-uniform from 1 µs to 10 s, in ns.
                10f64
                    .powf(3.0 + 7.0 * (x >> 11) as f64 / (1u64 << 53) as f64)
                    .round()
            })
            .collect();
        for (i, &v) in values.iter().enumerate() {
            if i % 5 == 0 {
                t.record(d, v).unwrap();
            } else {
                shard.record(d, v).unwrap();
            }
        }
        values.sort_by(f64::total_cmp);
        let (_, _, min, max, unbucketed) = distribution(&t, d);
        assert_eq!(unbucketed, 0);
        let mut buckets: Vec<(u16, u64)> = t.buckets(d, 0).collect();
        buckets.sort_by_key(|&(id, _)| value_order(id));
        for q in [0.0, 0.001, 0.25, 0.5, 0.9, 0.99, 0.999, 1.0] {
            let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
            let exact = values[rank - 1];
            let got = quantile(buckets.iter().copied(), 0, q, min, max).unwrap();
            let err = (got - exact).abs() / exact;
            assert!(
                err <= MAX_RELATIVE_ERROR,
                "q {q}: {got} vs {exact} ({err:.4})"
            );
        }
    }

    #[test]
    fn a_full_shard_table_overflows_into_the_shared_one_and_loses_nothing() {
        let config = AggregatesConfig::new(4, 1).with_buckets(8, 64);
        let t = table(config, 1024);
        let d = t.insert(key(0), Kind::Histogram).unwrap();
        let mut shard = Shard::claim(&t).unwrap();
        // 40 distinct buckets: more than 8 slots hold.
        for i in 0..40 {
            shard
                .record(
                    d,
                    f64::from(1u32 << i.min(30)) * (1.0 + f64::from(i % 4) / 4.0),
                )
                .unwrap();
        }
        let (count, ..) = distribution(&t, d);
        assert_eq!(count, 40);
        assert_eq!(t.buckets(d, 0).map(|b| b.1).sum::<u64>(), 40);
    }

    #[test]
    fn a_shard_table_grows_to_hold_a_wide_distribution() {
        let t = table(AggregatesConfig::new(4, 1), 1024);
        let d = t.insert(key(0), Kind::Timer).unwrap();
        let mut shard = Shard::claim(&t).unwrap();
        let mut x = 1.0f64;
        let mut n = 0;
        // About 320 distinct buckets over 20 powers of two.
        while x < 1e6 {
            shard.record(d, x).unwrap();
            x *= 1.045;
            n += 1;
        }
        let (_, (_, slots)) = t.shard_state(0, d.index()).unwrap();
        assert_eq!(slots, 512, "grown from 32 to 128 to 512");
        assert!(
            t.at(t.entry(d.index()) + TABLE).unwrap().load() == 0,
            "nothing overflowed into the shared table"
        );
        assert_eq!(distribution(&t, d).0, n);
        assert_eq!(t.buckets(d, 0).map(|b| b.1).sum::<u64>(), n);
    }

    #[test]
    fn a_word_at_its_count_limit_makes_way_for_another() {
        let t = table(AggregatesConfig::new(4, 1), 256);
        let d = t.insert(key(0), Kind::Histogram).unwrap();
        let mut shard = Shard::claim(&t).unwrap();
        shard.record(d, 5.0).unwrap();
        let (_, (table, slots)) = t.shard_state(0, d.index()).unwrap();
        let word = t.at(table + home(bucket_of(5.0), slots)).unwrap();
        word.store(u64::from(bucket_of(5.0)) << 48 | (COUNT_MASK - 1));
        shard.record(d, 5.0).unwrap(); // reaches the limit
        shard.record(d, 5.0).unwrap(); // goes to the next slot
        assert_eq!(word.load() & COUNT_MASK, COUNT_MASK);
        let buckets: Vec<(u16, u64)> = t.buckets(d, 0).collect();
        assert_eq!(buckets, [(bucket_of(5.0), COUNT_MASK + 1)]);
    }

    #[test]
    fn without_memory_writers_fall_back_to_shared_state_and_stay_exact() {
        // A pool too small for even one page: every shard write is shared.
        let t = table(AggregatesConfig::new(8, 2), 16);
        let c = t.insert(key(0), Kind::Counter).unwrap();
        let g = t.insert(key(1), Kind::Gauge).unwrap();
        let d = t.insert(key(2), Kind::Timer).unwrap();
        let mut shard = Shard::claim(&t).unwrap();
        for i in 0..100 {
            shard.add(c, 3);
            shard.change(g, 1.0);
            shard.record(d, f64::from(i)).unwrap();
        }
        assert_eq!(counter(&t, c), (300, 100));
        assert_eq!(t.snapshot(g).unwrap().changes, 100);
        let (count, sum, min, max, unbucketed) = distribution(&t, d);
        assert_eq!((count, sum, min, max), (100, 4950.0, 0.0, 99.0));
        assert_eq!(unbucketed, 100, "no room for a bucket table either");
        let stats = t.stats();
        assert!(stats.pool_exhausted > 0);
        assert_eq!(stats.pool_used, 0);
    }

    #[test]
    fn a_released_shard_carries_its_totals_to_the_next_owner() {
        let t = table(AggregatesConfig::new(4, 1), 1024);
        let c = t.insert(key(0), Kind::Counter).unwrap();
        {
            let mut first = Shard::claim(&t).unwrap();
            first.add(c, 5);
            assert_eq!(t.stats().shards_claimed, 1);
        }
        assert_eq!(t.stats().shards_claimed, 0);
        let mut second = Shard::claim(&t).unwrap();
        second.add(c, 6);
        assert_eq!(counter(&t, c), (11, 2));
    }

    #[test]
    fn refusals_limits_and_errors_are_typed() {
        let t = table(AggregatesConfig::new(2, 1), 64);
        let d = t.insert(key(0), Kind::Histogram).unwrap();
        let mut shard = Shard::claim(&t).unwrap();
        assert_eq!(shard.record(d, f64::NAN), Err(NotFinite));
        assert_eq!(t.record(d, f64::INFINITY), Err(NotFinite));
        assert_eq!(t.stats().not_finite, 2);
        assert_eq!(distribution(&t, d).0, 0);
        t.insert(key(1), Kind::Counter).unwrap();
        assert_eq!(
            t.insert(key(2), Kind::Counter),
            Err(AggregatesError::Full { capacity: 2 })
        );
        // A call that does not match the series' kind records nothing.
        let c = t.series_at(1).unwrap();
        shard.record(c, 1.0).unwrap();
        t.set(c, 1.0);
        assert_eq!(counter(&t, c), (0, 0));
        let config = AggregatesConfig::new(4, 1);
        let short: std::boxed::Box<[Word]> = (0..3).map(|_| Word::new()).collect();
        assert_eq!(
            Aggregates::with_storage(short, config).err(),
            Some(AggregatesError::Storage {
                needed: config.fixed_words(),
                got: 3
            })
        );
        let bad: std::boxed::Box<[Word]> = (0..1000).map(|_| Word::new()).collect();
        assert_eq!(
            Aggregates::with_storage(bad, config.with_buckets(12, 64)).err(),
            Some(AggregatesError::Config)
        );
        let _ = std::format!("{}", AggregatesError::Config);
    }

    #[test]
    fn threads_with_shards_and_without_record_exact_totals() {
        // Room for three shards' pages and bucket tables grown to 512 slots
        // (the smaller ones they grew from kept) and the shared one's 512.
        // Under miri, 50 values: tables of 128, and room to spare, as a
        // thread that claims a shard and gives it back (`filter`) may
        // leave a thread of the first three without one.
        let (shared, pool) = if cfg!(miri) { (128, 2048) } else { (512, 4096) };
        let config = AggregatesConfig::new(16, 3).with_buckets(1024, shared);
        let t = Arc::new(table(config, pool));
        let c = t.insert(key(0), Kind::Counter).unwrap();
        let g = t.insert(key(1), Kind::Gauge).unwrap();
        let d = t.insert(key(2), Kind::Histogram).unwrap();
        let n: u32 = if cfg!(miri) { 50 } else { 50_000 };
        let threads: Vec<_> = (0..5)
            .map(|i| {
                let t = t.clone();
                std::thread::spawn(move || {
                    // Three threads own shards; two share.
                    let mut shard = Shard::claim(t.clone()).filter(|_| i < 3);
                    for v in 0..n {
                        match &mut shard {
                            Some(s) => {
                                s.add(c, 1);
                                s.change(g, 1.0);
                                s.record(d, f64::from(v % 1000)).unwrap();
                            }
                            None => {
                                t.add(c, 1);
                                t.change(g, 1.0);
                                t.record(d, f64::from(v % 1000)).unwrap();
                            }
                        }
                    }
                })
            })
            .collect();
        for th in threads {
            th.join().unwrap();
        }
        let total = 5 * u64::from(n);
        assert_eq!(counter(&t, c), (total as i64, total));
        let s = t.snapshot(g).unwrap();
        assert_eq!(
            (s.value, s.changes),
            (
                Totals::Gauge {
                    value: total as f64
                },
                total
            )
        );
        let (count, .., unbucketed) = distribution(&t, d);
        assert_eq!((count, unbucketed), (total, 0), "{:?}", t.stats());
        assert_eq!(t.buckets(d, 0).map(|b| b.1).sum::<u64>(), total);
    }

    /// The raw view the std adapter's thread-local fast path records
    /// through (`ShardView`): the same totals as the shard's own calls,
    /// and `false` wherever the shard must act (a cell to make, a table to
    /// grow, a value to refuse).
    #[test]
    fn a_view_records_into_its_shards_cells() {
        let t = table(AggregatesConfig::new(8, 1), 1024);
        let c = t.insert(key(0), Kind::Counter).unwrap();
        let g = t.insert(key(1), Kind::Gauge).unwrap();
        let d = t.insert(key(2), Kind::Histogram).unwrap();
        let mut shard = Shard::claim(&t).unwrap();
        let view = shard.view();
        // The closures' calls all come while `shard` is alive, on the
        // thread that owns it.
        // SAFETY: `shard` outlives the call and this thread owns it.
        let add = |s, n| unsafe { view.add(s, n) };
        // SAFETY: as for `add`.
        let set = |s, v| unsafe { view.set(s, v) };
        // SAFETY: as for `add`.
        let change = |s, v| unsafe { view.change(s, v) };
        // SAFETY: as for `add`.
        let record = |s, v| unsafe { view.record(s, v) };
        assert!(!add(c, 1), "no cell yet");
        shard.add(c, 1);
        shard.set(g, 1.0);
        shard.record(d, 1.0).unwrap();
        for i in 0..50 {
            assert!(add(c, 2));
            assert!(set(g, f64::from(i)));
            assert!(change(g, 0.5));
            assert!(record(d, f64::from(i % 20)));
        }
        assert!(!record(d, f64::NAN), "refused by the shard");
        // More distinct buckets than the first table holds: the shard grows it.
        let mut grew = false;
        for i in 0..200 {
            let v = 1.0 + f64::from(i) * 37.0;
            if !record(d, v) {
                shard.record(d, v).unwrap();
                grew = true;
            }
        }
        assert!(grew);
        assert_eq!(counter(&t, c), (101, 51));
        let s = t.snapshot(g).unwrap();
        assert_eq!((s.value, s.changes), (Totals::Gauge { value: 49.5 }, 101));
        assert_eq!(distribution(&t, d).0, 251);
        assert_eq!(t.buckets(d, 0).map(|b| b.1).sum::<u64>(), 251);
    }

    #[test]
    fn the_reader_notes_what_it_sent() {
        let t = table(AggregatesConfig::new(2, 1), 64);
        let c = t.insert(key(0), Kind::Counter).unwrap();
        assert_eq!(t.sent(c), 0);
        t.set_sent(c, 42);
        assert_eq!(t.sent(c), 42);
        assert_eq!(t.series_at(0), Some(c));
        assert_eq!(t.series_at(1), None);
        assert!(t.memory_bytes() >= t.config().fixed_words() * 8);
    }
}
