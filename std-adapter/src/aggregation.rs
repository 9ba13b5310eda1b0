//! Aggregation at the source (`aggregation = "source"`): the core's
//! [`Aggregates`] sized from the configuration, a shard for each recording
//! thread, and the series behind every key.
//!
//! * **Recording** goes through the calling thread's [`Shard`]: claimed at
//!   its first record (up to `aggregation.threads` threads), kept in a
//!   thread-local, released when the thread exits, so the next thread
//!   carries on with its totals. Threads beyond the shards, and a thread
//!   whose thread-locals are being torn down, record into the series'
//!   shared state: slower (atomic read-modify-writes), equally exact.
//! * **Series**: one per key and kind, made when a handle is created or a
//!   dynamic name is first used, never evicted (a total must go on
//!   growing). Past `max_series`, a new series folds into an overflow
//!   series of the same name and kind, tagged `overflow=true`, and past
//!   the room kept for those, into `stats.overflow{overflow=true}` of its
//!   kind; every fold is counted.
//! * **Memory** is the tables' words, sized at start from `max_memory_mb`
//!   and allocated zeroed, so they cost resident memory only as they are
//!   used.

use crate::keys::{KeyError, KeyTable};
use rustc_hash::FxHashMap;
use stats_core::registry::MAX_RECORD_LEN;
use stats_core::{
    Aggregates, AggregatesConfig, Key, KeyId, Kind, SeriesId, Shard, ShardView, Word,
};
use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The tables as the std adapter allocates them.
pub(crate) type StdTables = Aggregates<Box<[Word]>>;

/// The tag that marks an overflow series.
pub(crate) const OVERFLOW_TAG: (&str, &str) = ("overflow", "true");
/// The name of the series that takes what no overflow series could.
pub(crate) const OVERFLOW_NAME: &str = "stats.overflow";

/// Series kept for overflow beyond `max_series`: one per name and kind,
/// at most this share of `max_series` (and at least 16), plus the four
/// last-resort series.
fn overflow_room(max_series: usize) -> usize {
    (max_series / 16).max(16)
}

fn tables_config(max_series: usize, threads: usize) -> AggregatesConfig {
    AggregatesConfig::new(max_series + overflow_room(max_series) + 4, threads)
}

/// Where series live and how they are found.
#[derive(Default)]
struct Index {
    by_key: FxHashMap<(KeyId, Kind), SeriesId>,
    /// Overflow series by name and kind.
    overflow: FxHashMap<(Box<str>, Kind), SeriesId>,
    /// The last-resort series by kind.
    last_resort: [Option<SeriesId>; 4],
    /// Series made for their own key (not overflow).
    regular: usize,
}

/// Counters of the source-mode state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AggregationStats {
    /// The core table's counters (series, shards, pool).
    pub tables: stats_core::AggregatesStats,
    /// Series asked for beyond `max_series`, folded into an overflow series.
    pub series_overflowed: u64,
    /// Values recorded, by kind (counter additions, gauge sets and
    /// changes, timer values, histogram values), summed over every series.
    pub recorded: [u64; 4],
}

/// Why a value was not recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// NaN or an infinity into a distribution.
    NotFinite,
    /// The pipeline has shut down.
    Closed,
}

/// The source-mode state of one pipeline.
pub(crate) struct Aggregation {
    pub(crate) tables: Arc<StdTables>,
    index: Mutex<Index>,
    max_series: usize,
    overflowed: AtomicU64,
    /// Identifies the pipeline in threads' shard lists.
    pipeline: u64,
    /// Whether recording is still open (until shutdown).
    open: AtomicBool,
    /// Cleared when the pipeline is gone, so threads let go of its shard.
    alive: Arc<AtomicBool>,
}

impl Drop for Aggregation {
    fn drop(&mut self) {
        self.alive.store(false, Ordering::Release);
    }
}

/// A thread's shard of one pipeline.
struct ThreadShard {
    pipeline: u64,
    /// `None`: every shard was taken; the thread records into shared state.
    shard: Option<Shard<Arc<StdTables>>>,
    alive: Arc<AtomicBool>,
}

/// A thread's series ids for the dynamic API, by key record and kind.
struct ThreadNames {
    pipeline: u64,
    ids: FxHashMap<Box<str>, [Option<SeriesId>; 4]>,
    /// Where each lookup's record is built (room for the longest).
    scratch: String,
    alive: Arc<AtomicBool>,
}

/// A thread's shards: the pipeline it last recorded into, then others.
struct ThreadShards {
    current: Option<ThreadShard>,
    others: Vec<ThreadShard>,
}

impl Drop for ThreadShards {
    fn drop(&mut self) {
        // The thread is ending: its shards go, and with them what `FAST`
        // points into.
        FAST.with(|fast| fast.set(None));
    }
}

/// The fast path into the shard of the pipeline a thread last recorded
/// into: a copy of its raw parts, so a record is a few loads and stores.
#[derive(Clone, Copy)]
struct Fast {
    pipeline: u64,
    /// [`EPOCH`] when it was set: a pipeline closed since sends every
    /// thread back to the slow path, which checks whether its own did.
    epoch: u64,
    view: ShardView,
}

/// Counts pipelines closed (shut down). A static, so the fast path reads
/// it without following a pointer from the handle.
static EPOCH: AtomicU64 = AtomicU64::new(0);

/// Records `op` into `series` of pipeline `pipeline` through this
/// thread's fast path; whether it did (else go through the pipeline's
/// [`Aggregation`]). The whole of a record's cost when it does: a
/// thread-local read, a static read, two compares, and the shard's cell.
#[inline(always)]
#[allow(unsafe_code)]
pub(crate) fn fast(pipeline: u64, series: SeriesId, op: Op) -> bool {
    let Some(fast) = FAST.with(Cell::get) else {
        return false;
    };
    if fast.pipeline != pipeline || fast.epoch != EPOCH.load(Ordering::Relaxed) {
        return false;
    }
    let view = fast.view;
    // SAFETY: `FAST` holds a view only while the shard it came from is
    // alive in this thread's `SHARDS` (see `FAST`), and only this thread
    // reads it: the shard is alive and this thread owns it.
    unsafe {
        match op {
            Op::Add(n) => view.add(series, n),
            Op::Set(v) => view.set(series, v),
            Op::Change(d) => view.change(series, d),
            Op::Record(v) => view.record(series, v),
        }
    }
}

thread_local! {
    /// Set only from `SHARDS.current`'s shard, and cleared before that
    /// shard can be dropped (when the current pipeline changes, and when
    /// the thread's `SHARDS` goes): whenever it holds a view, the shard
    /// is alive and owned by this thread. No destructor, so it can be
    /// read at any time, even while the thread's thread-locals are torn
    /// down. (A `RefCell` around the shard on the hot path cost 2 of a
    /// record's 4 ns: its borrow flag is a store the next record waits for.)
    static FAST: Cell<Option<Fast>> = const { Cell::new(None) };
    static SHARDS: RefCell<ThreadShards> = const {
        RefCell::new(ThreadShards { current: None, others: Vec::new() })
    };
    static NAMES: RefCell<Vec<ThreadNames>> = const { RefCell::new(Vec::new()) };
}

/// A record through a [`ShardView`].
#[derive(Clone, Copy)]
pub(crate) enum Op {
    Add(i64),
    Set(f64),
    Change(f64),
    Record(f64),
}

impl Op {
    /// A code and the value's bits: two registers to pass to a cold path.
    #[inline(always)]
    pub(crate) fn to_parts(self) -> (u8, u64) {
        match self {
            Op::Add(n) => (0, n as u64),
            Op::Set(v) => (1, v.to_bits()),
            Op::Change(d) => (2, d.to_bits()),
            Op::Record(v) => (3, v.to_bits()),
        }
    }

    /// The operation of [`Op::to_parts`]'s code and bits.
    pub(crate) fn from_parts(code: u8, bits: u64) -> Op {
        match code {
            0 => Op::Add(bits as i64),
            1 => Op::Set(f64::from_bits(bits)),
            2 => Op::Change(f64::from_bits(bits)),
            _ => Op::Record(f64::from_bits(bits)),
        }
    }
}

/// Why the tables could not be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TooSmall {
    /// Bytes the series table and the shards' directories need.
    pub(crate) needed: usize,
}

/// Shards this thread keeps (for tests).
#[cfg(test)]
pub(crate) fn threads_shards() -> usize {
    SHARDS.with(|s| {
        let s = s.borrow();
        usize::from(s.current.is_some()) + s.others.len()
    })
}

impl Aggregation {
    /// Tables for `max_series` series and `threads` shards in `bytes` of
    /// memory (the fixed part first, the rest for cells).
    pub(crate) fn new(
        max_series: usize,
        threads: usize,
        bytes: usize,
        pipeline: u64,
    ) -> Result<Self, TooSmall> {
        let config = tables_config(max_series, threads);
        // The structure itself counts too (`Aggregates::memory_bytes`).
        let structure = size_of::<StdTables>();
        let needed = structure + config.fixed_words() * size_of::<Word>();
        // Offsets into the tables are 32-bit: at most 4 Gi words (32 GiB).
        let words = (bytes.saturating_sub(structure) / size_of::<Word>()).min(u32::MAX as usize);
        if words < config.fixed_words() {
            return Err(TooSmall { needed });
        }
        let storage = Word::zeroed(words).ok_or(TooSmall { needed })?;
        let tables = Aggregates::with_storage(storage, config).map_err(|_| TooSmall { needed })?;
        Ok(Aggregation {
            tables: Arc::new(tables),
            index: Mutex::new(Index::default()),
            max_series,
            overflowed: AtomicU64::new(0),
            pipeline,
            open: AtomicBool::new(true),
            alive: Arc::new(AtomicBool::new(true)),
        })
    }

    /// The series of `name` with `tags` and `kind`, made if new (or an
    /// overflow series, past `max_series`). Not for the hot path: a lock
    /// and a hash lookup.
    pub(crate) fn series(
        &self,
        keys: &KeyTable,
        name: &str,
        tags: &[(&str, &str)],
        kind: Kind,
    ) -> Result<SeriesId, KeyError> {
        let mut index = self.index.lock().unwrap_or_else(|e| e.into_inner());
        let known = keys.lookup(name, tags)?;
        if let Some(&series) = known.and_then(|key| index.by_key.get(&(key, kind))) {
            return Ok(series);
        }
        if index.regular < self.max_series {
            let key = match known {
                Some(key) => key,
                None => keys.register(name, tags)?,
            };
            let series = self.insert(&mut index, key, kind)?;
            index.regular += 1;
            return Ok(series);
        }
        self.overflowed.fetch_add(1, Ordering::Relaxed);
        self.overflow(&mut index, keys, name, kind)
    }

    fn insert(&self, index: &mut Index, key: KeyId, kind: Kind) -> Result<SeriesId, KeyError> {
        let series = self.tables.insert(key, kind).map_err(|_| KeyError::Full)?;
        index.by_key.insert((key, kind), series);
        Ok(series)
    }

    /// The overflow series for `name` and `kind`, or the last-resort one.
    fn overflow(
        &self,
        index: &mut Index,
        keys: &KeyTable,
        name: &str,
        kind: Kind,
    ) -> Result<SeriesId, KeyError> {
        if let Some(&series) = index.overflow.get(&(name.into(), kind)) {
            return Ok(series);
        }
        if index.overflow.len() < overflow_room(self.max_series) {
            let key = keys.register(name, &[OVERFLOW_TAG])?;
            let series = match index.by_key.get(&(key, kind)) {
                Some(&series) => series,
                None => self.insert(index, key, kind)?,
            };
            index.overflow.insert((name.into(), kind), series);
            return Ok(series);
        }
        if let Some(series) = index.last_resort[kind as usize] {
            return Ok(series);
        }
        let key = keys.register(OVERFLOW_NAME, &[OVERFLOW_TAG])?;
        let series = self.insert(index, key, kind)?;
        index.last_resort[kind as usize] = Some(series);
        Ok(series)
    }

    /// The series of a name known only at run time: from this thread's
    /// cache (no lock, no allocation once the name has been seen), or
    /// [`Aggregation::series`] the first time.
    pub(crate) fn dynamic_series(
        &self,
        keys: &KeyTable,
        name: &str,
        tags: &[(&str, &str)],
        kind: Kind,
    ) -> Result<SeriesId, KeyError> {
        let cached = NAMES.try_with(|names| {
            let mut names = names.try_borrow_mut().ok()?;
            let at = match names.iter().position(|n| n.pipeline == self.pipeline) {
                Some(at) => at,
                None => {
                    names.retain(|n| n.alive.load(Ordering::Acquire));
                    names.push(ThreadNames {
                        pipeline: self.pipeline,
                        ids: FxHashMap::default(),
                        scratch: String::with_capacity(MAX_RECORD_LEN),
                        alive: self.alive.clone(),
                    });
                    names.len() - 1
                }
            };
            let cache = &mut names[at];
            cache.scratch.clear();
            if Key::write_record(name, tags, &mut cache.scratch).is_err() {
                return None; // the slow path says why
            }
            let known = cache
                .ids
                .get(cache.scratch.as_str())
                .and_then(|ids| ids[kind as usize]);
            if known.is_some() {
                return known;
            }
            let series = self.series(keys, name, tags, kind).ok()?;
            // Bounded: names past the series limit keep coming.
            if cache.ids.len() >= 2 * self.max_series {
                cache.ids.clear();
            }
            let record: Box<str> = cache.scratch.as_str().into();
            cache.ids.entry(record).or_default()[kind as usize] = Some(series);
            Some(series)
        });
        match cached {
            Ok(Some(series)) => Ok(series),
            _ => self.series(keys, name, tags, kind),
        }
    }

    /// Refuses every record from now on (shutdown).
    pub(crate) fn close(&self) {
        self.open.store(false, Ordering::Release);
        // Release: a slow path that sees the new epoch sees the pipeline
        // closed; every fast path goes to its slow path once.
        EPOCH.fetch_add(1, Ordering::Release);
    }

    /// Records `op` (as [`Op::to_parts`] gives it, so the hot path passes
    /// two registers) into `series` through this thread's
    /// shard (claimed at its first record, its cell made if new), or the
    /// shared state (no shard free, or the thread's thread-locals being
    /// torn down); then points the fast path at the shard.
    #[cold]
    #[inline(never)]
    fn slow(&self, series: SeriesId, code: u8, bits: u64) -> Result<(), Refused> {
        // Acquire, before the check: if this is a later epoch than a close,
        // the close is seen.
        let epoch = EPOCH.load(Ordering::Acquire);
        if !self.open.load(Ordering::Acquire) {
            return Err(Refused::Closed);
        }
        let op = Op::from_parts(code, bits);
        let mut result = Ok(());
        let mut done = false;
        let _ = SHARDS.try_with(|shards| {
            let Ok(mut shards) = shards.try_borrow_mut() else {
                return;
            };
            let shards = &mut *shards;
            if shards
                .current
                .as_ref()
                .is_none_or(|c| c.pipeline != self.pipeline)
            {
                self.attach(shards);
            }
            let Some(current) = shards.current.as_mut() else {
                return;
            };
            let Some(shard) = current.shard.as_mut() else {
                return;
            };
            result = match op {
                Op::Add(n) => {
                    shard.add(series, n);
                    Ok(())
                }
                Op::Set(v) => {
                    shard.set(series, v);
                    Ok(())
                }
                Op::Change(d) => {
                    shard.change(series, d);
                    Ok(())
                }
                Op::Record(v) => shard.record(series, v),
            };
            done = true;
            let view = shard.view();
            FAST.with(|fast| {
                fast.set(Some(Fast {
                    pipeline: self.pipeline,
                    epoch,
                    view,
                }))
            });
        });
        if !done {
            let t = &self.tables;
            result = match op {
                Op::Add(n) => {
                    t.add(series, n);
                    Ok(())
                }
                Op::Set(v) => {
                    t.set(series, v);
                    Ok(())
                }
                Op::Change(d) => {
                    t.change(series, d);
                    Ok(())
                }
                Op::Record(v) => t.record(series, v),
            };
        }
        result.map_err(|_| Refused::NotFinite)
    }

    /// Makes this pipeline's shard the thread's current one: found among
    /// the others, or claimed now.
    fn attach(&self, shards: &mut ThreadShards) {
        // The fast path points at the current shard, which may go below.
        FAST.with(|fast| fast.set(None));
        if let Some(previous) = shards.current.take() {
            shards.others.push(previous);
        }
        // Let go of the shards of pipelines that are gone.
        shards.others.retain(|s| s.alive.load(Ordering::Acquire));
        let mine = match shards
            .others
            .iter()
            .position(|s| s.pipeline == self.pipeline)
        {
            Some(at) => shards.others.swap_remove(at),
            None => ThreadShard {
                pipeline: self.pipeline,
                shard: Shard::claim(self.tables.clone()),
                alive: self.alive.clone(),
            },
        };
        shards.current = Some(mine);
    }

    /// Applies `op` to `series`: on this thread's fast path when it can,
    /// else through the pipeline's shards and shared state.
    #[inline(always)]
    pub(crate) fn apply(&self, series: SeriesId, op: Op) -> Result<(), Refused> {
        if fast(self.pipeline, series, op) {
            return Ok(());
        }
        let (code, bits) = op.to_parts();
        self.slow(series, code, bits)
    }

    /// The counters, with the values recorded summed over every series.
    pub(crate) fn stats(&self) -> AggregationStats {
        let t = &self.tables;
        let mut recorded = [0u64; 4];
        for series in (0..t.len()).filter_map(|i| t.series_at(i)) {
            if let Some(s) = t.snapshot(series) {
                recorded[s.kind as usize] += s.changes;
            }
        }
        AggregationStats {
            tables: t.stats(),
            series_overflowed: self.overflowed.load(Ordering::Relaxed),
            recorded,
        }
    }
}
