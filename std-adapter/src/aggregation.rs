//! Aggregation at the source (`aggregation = "source"`): the core's
//! [`Aggregates`] sized from the configuration, a shard for each recording
//! thread, and the series behind every key.
//!
//! * **Recording** goes through the calling thread's [`Shard`]: claimed at
//!   its first record (up to `aggregation_threads` threads), kept in a
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
    Aggregates, AggregatesConfig, Key, KeyId, Kind, NotFinite, SeriesId, Shard, Word,
};
use std::cell::RefCell;
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

/// The source-mode state of one pipeline.
pub(crate) struct Aggregation {
    pub(crate) tables: Arc<StdTables>,
    index: Mutex<Index>,
    max_series: usize,
    overflowed: AtomicU64,
    /// Identifies the pipeline in threads' shard lists.
    pipeline: u64,
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

thread_local! {
    static SHARDS: RefCell<Vec<ThreadShard>> = const { RefCell::new(Vec::new()) };
    static NAMES: RefCell<Vec<ThreadNames>> = const { RefCell::new(Vec::new()) };
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
    SHARDS.with(|s| s.borrow().len())
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
        let needed = config.fixed_words() * size_of::<Word>();
        // Offsets into the tables are 32-bit: at most 4 Gi words (32 GiB).
        let words = (bytes / size_of::<Word>()).min(u32::MAX as usize);
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

    /// Runs `f` with this thread's shard of the pipeline (`None`: record
    /// into the shared state), claiming one at the thread's first record.
    #[inline]
    fn with_shard(&self, f: impl FnOnce(Option<&mut Shard<Arc<StdTables>>>)) {
        let mut f = Some(f);
        let done = SHARDS.try_with(|shards| {
            let Ok(mut shards) = shards.try_borrow_mut() else {
                return false;
            };
            let at = match shards.iter().position(|s| s.pipeline == self.pipeline) {
                Some(at) => at,
                None => self.attach(&mut shards),
            };
            if let Some(f) = f.take() {
                f(shards[at].shard.as_mut());
            }
            true
        });
        if done != Ok(true)
            && let Some(f) = f.take()
        {
            // Thread-locals being torn down (or re-entered): shared state.
            f(None);
        }
    }

    #[cold]
    fn attach(&self, shards: &mut Vec<ThreadShard>) -> usize {
        // Let go of the shards of pipelines that are gone.
        shards.retain(|s| s.alive.load(Ordering::Acquire));
        shards.push(ThreadShard {
            pipeline: self.pipeline,
            shard: Shard::claim(self.tables.clone()),
            alive: self.alive.clone(),
        });
        shards.len() - 1
    }

    /// Adds `n` to counter `series`.
    #[inline]
    pub(crate) fn add(&self, series: SeriesId, n: i64) {
        self.with_shard(|shard| match shard {
            Some(shard) => shard.add(series, n),
            None => self.tables.add(series, n),
        });
    }

    /// Sets gauge `series`.
    #[inline]
    pub(crate) fn set(&self, series: SeriesId, value: f64) {
        self.with_shard(|shard| match shard {
            Some(shard) => shard.set(series, value),
            None => self.tables.set(series, value),
        });
    }

    /// Moves gauge `series` by `delta`.
    #[inline]
    pub(crate) fn change(&self, series: SeriesId, delta: f64) {
        self.with_shard(|shard| match shard {
            Some(shard) => shard.change(series, delta),
            None => self.tables.change(series, delta),
        });
    }

    /// Records `value` into distribution `series`.
    #[inline]
    pub(crate) fn record(&self, series: SeriesId, value: f64) -> Result<(), NotFinite> {
        let mut result = Ok(());
        self.with_shard(|shard| {
            result = match shard {
                Some(shard) => shard.record(series, value),
                None => self.tables.record(series, value),
            }
        });
        result
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
