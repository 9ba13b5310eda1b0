//! The key table: metric names and tags behind the [`KeyId`]s events carry.
//!
//! Handles register their key once and pin it. The dynamic API interns
//! names known only at run time, at most `capacity` of them; when full, the
//! least recently used dynamic key is evicted.
//!
//! A [`KeyId`] is a slot (low 16 bits) and that slot's generation (high 16
//! bits). Evicting a key bumps its slot's generation, so an event recorded
//! under the old id can never be encoded under the new name: the worker's
//! lookup checks the generation, and an event whose key was evicted before it
//! was sent is refused by the encoder and counted (`events_refused`).
//!
//! The hot dynamic path takes no lock: each thread caches the ids it has
//! used (keyed by the encoded name and tags, built in a reused buffer, so a
//! known name costs no allocation) and checks the slot's generation, one
//! atomic load. A miss takes the table's read lock, or the write lock to
//! insert.

use rustc_hash::FxHashMap;
use stats_core::registry::{MAX_RECORD_LEN, RegistryError};
use stats_core::{Key, KeyId, Keys};
use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard};

/// Slots a table can hold (16-bit slot numbers).
const MAX_SLOTS: usize = 1 << 16;

/// Interning counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct InternerStats {
    /// Dynamic lookups answered from a thread's cache or the table.
    pub hits: u64,
    /// Dynamic lookups that inserted a new key.
    pub misses: u64,
    /// Dynamic keys evicted to make room.
    pub evictions: u64,
    /// Dynamic keys held now.
    pub len: usize,
    /// The most dynamic keys held.
    pub capacity: usize,
}

struct Slot {
    /// The key's record (see [`Key::write_record`]); empty when free.
    record: Box<str>,
    pinned: bool,
}

struct Table {
    slots: Vec<Slot>,
    by_record: FxHashMap<Box<str>, u16>,
    free: Vec<u16>,
    dynamic: usize,
}

/// Names and tags behind key ids, shared by handles, the dynamic API and the
/// worker.
pub(crate) struct KeyTable {
    table: RwLock<Table>,
    /// Each slot's generation, readable without the lock.
    generations: Box<[AtomicU32]>,
    /// Each slot's last use, in coarse clock ticks (about 1 ms).
    last_used: Box<[AtomicU32]>,
    capacity: usize,
    /// Tags every key carries (the configuration's `tags`), after its own:
    /// a key's own tag wins over a constant one with the same key.
    constant: Vec<(String, String)>,
    /// Identifies the table in threads' caches.
    id: u64,
    misses: AtomicU64,
    evictions: AtomicU64,
    /// Hits, one counter per thread that used the dynamic API.
    hits: std::sync::Mutex<Vec<Arc<AtomicU64>>>,
    /// Cleared when the table (and so its pipeline) is gone, so that
    /// threads drop what they keep for it.
    alive: Arc<AtomicBool>,
}

impl Drop for KeyTable {
    fn drop(&mut self) {
        self.alive.store(false, Ordering::Release);
    }
}

/// Why a key could not be had.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyError {
    /// The name or tags break the limits.
    Invalid(RegistryError),
    /// Every slot holds a pinned key.
    Full,
}

fn id(slot: u16, generation: u32) -> KeyId {
    KeyId::from_raw((generation & 0xFFFF) << 16 | u32::from(slot))
}

fn split(id: KeyId) -> (usize, u32) {
    let raw = id.get();
    ((raw & 0xFFFF) as usize, raw >> 16)
}

static NEXT_TABLE: AtomicU64 = AtomicU64::new(1);

/// A thread's cache of dynamic ids for one table.
struct ThreadCache {
    table: u64,
    ids: FxHashMap<Box<str>, KeyId>,
    /// Where each lookup's record is built (room for the longest).
    scratch: String,
    hits: Arc<AtomicU64>,
    alive: Arc<AtomicBool>,
}

thread_local! {
    static CACHES: RefCell<Vec<ThreadCache>> = const { RefCell::new(Vec::new()) };
}

impl KeyTable {
    /// A table for `capacity` dynamic keys (handles' keys come on top, up
    /// to 65,536 slots in all), each key with the `constant` tags too.
    pub(crate) fn new(capacity: usize, constant: Vec<(String, String)>) -> Self {
        KeyTable {
            table: RwLock::new(Table {
                slots: Vec::new(),
                by_record: FxHashMap::default(),
                free: Vec::new(),
                dynamic: 0,
            }),
            generations: (0..MAX_SLOTS).map(|_| AtomicU32::new(0)).collect(),
            last_used: (0..MAX_SLOTS).map(|_| AtomicU32::new(0)).collect(),
            capacity,
            constant,
            id: NEXT_TABLE.fetch_add(1, Ordering::Relaxed),
            misses: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
            hits: std::sync::Mutex::new(Vec::new()),
            alive: Arc::new(AtomicBool::new(true)),
        }
    }

    /// A flag that stays set while this table exists.
    pub(crate) fn alive(&self) -> Arc<AtomicBool> {
        self.alive.clone()
    }

    /// Per-thread caches this thread keeps (for tests).
    #[cfg(test)]
    pub(crate) fn thread_caches() -> usize {
        CACHES.with(|c| c.borrow().len())
    }

    /// The record of `name` with `tags` and the constant tags its own do
    /// not name.
    fn record(&self, name: &str, tags: &[(&str, &str)]) -> Result<String, KeyError> {
        let mut record = String::new();
        let result = if self.constant.is_empty() {
            Key::write_record(name, tags, &mut record)
        } else {
            let mut all = tags.to_vec();
            all.extend(
                self.constant
                    .iter()
                    .filter(|(k, _)| !tags.iter().any(|(own, _)| own == k))
                    .map(|(k, v)| (k.as_str(), v.as_str())),
            );
            Key::write_record(name, &all, &mut record)
        };
        result.map_err(KeyError::Invalid)?;
        Ok(record)
    }

    /// Bytes the table's fixed part occupies (records come on top).
    pub(crate) fn memory_bytes(&self) -> usize {
        MAX_SLOTS * 2 * size_of::<AtomicU32>() + size_of::<Self>()
    }

    /// The id of `name` with `tags` if the table holds it (any kind of
    /// key), without adding it.
    pub(crate) fn lookup(
        &self,
        name: &str,
        tags: &[(&str, &str)],
    ) -> Result<Option<KeyId>, KeyError> {
        let record = self.record(name, tags)?;
        let table = self.table.read().unwrap_or_else(|e| e.into_inner());
        Ok(table.by_record.get(record.as_str()).map(|&slot| {
            id(
                slot,
                self.generations[usize::from(slot)].load(Ordering::Relaxed),
            )
        }))
    }

    /// The pinned id of `name` with `tags` (for handles).
    pub(crate) fn register(&self, name: &str, tags: &[(&str, &str)]) -> Result<KeyId, KeyError> {
        let record = self.record(name, tags)?;
        self.insert(&record, true, 0).map(|(id, _)| id)
    }

    /// The id of `name` with `tags` for the dynamic API, interning it if it
    /// is new; `now` (coarse ms) marks it used.
    pub(crate) fn intern(
        &self,
        name: &str,
        tags: &[(&str, &str)],
        now: u32,
    ) -> Result<KeyId, KeyError> {
        CACHES.with(|caches| {
            let mut caches = caches.borrow_mut();
            let at = match caches.iter().position(|c| c.table == self.id) {
                Some(at) => at,
                None => {
                    let hits = Arc::new(AtomicU64::new(0));
                    if let Ok(mut all) = self.hits.lock() {
                        all.push(hits.clone());
                    }
                    caches.retain(|c| c.alive.load(Ordering::Acquire));
                    caches.push(ThreadCache {
                        table: self.id,
                        ids: FxHashMap::default(),
                        scratch: String::with_capacity(MAX_RECORD_LEN),
                        hits,
                        alive: self.alive(),
                    });
                    caches.len() - 1
                }
            };
            let cache = &mut caches[at];
            cache.scratch.clear();
            Key::write_record(name, tags, &mut cache.scratch).map_err(KeyError::Invalid)?;
            // The cache knows the key by its own tags; the table by all.
            let record = cache.scratch.as_str();
            if let Some(&known) = cache.ids.get(record) {
                let (slot, generation) = split(known);
                if self.generations[slot].load(Ordering::Acquire) & 0xFFFF == generation {
                    self.touch(slot, now);
                    let hits = &cache.hits;
                    hits.store(hits.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
                    return Ok(known);
                }
            }
            let (id, inserted) = if self.constant.is_empty() {
                self.insert(record, false, now)?
            } else {
                self.insert(&self.record(name, tags)?, false, now)?
            };
            if !inserted {
                // Known to the table, new to this thread (or stale here).
                let hits = &cache.hits;
                hits.store(hits.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
            }
            if cache.ids.len() >= self.capacity {
                cache.ids.clear();
            }
            cache.ids.insert(record.into(), id);
            Ok(id)
        })
    }

    fn touch(&self, slot: usize, now: u32) {
        let used = &self.last_used[slot];
        // Store only on change: a hot key's line stays shared between cores.
        if used.load(Ordering::Relaxed) != now {
            used.store(now, Ordering::Relaxed);
        }
    }

    /// The id of `record`, and whether it was inserted just now.
    fn insert(&self, record: &str, pinned: bool, now: u32) -> Result<(KeyId, bool), KeyError> {
        if let Ok(table) = self.table.read()
            && let Some(&slot) = table.by_record.get(record)
        {
            return Ok((self.existing(&table, slot, pinned, now), false));
        }
        let mut table = self.table.write().unwrap_or_else(|e| e.into_inner());
        if let Some(&slot) = table.by_record.get(record) {
            if pinned {
                table.slots[usize::from(slot)].pinned = true;
            }
            return Ok((self.existing(&table, slot, pinned, now), false));
        }
        if !pinned {
            self.misses.fetch_add(1, Ordering::Relaxed);
            if table.dynamic >= self.capacity {
                self.evict_lru(&mut table);
            }
        }
        let slot = match table.free.pop() {
            Some(slot) => slot,
            None if table.slots.len() < MAX_SLOTS => {
                table.slots.push(Slot {
                    record: Box::default(),
                    pinned: false,
                });
                (table.slots.len() - 1) as u16
            }
            None => return Err(KeyError::Full),
        };
        let entry = &mut table.slots[usize::from(slot)];
        entry.record = record.into();
        entry.pinned = pinned;
        table.by_record.insert(record.into(), slot);
        if !pinned {
            table.dynamic += 1;
        }
        self.last_used[usize::from(slot)].store(now, Ordering::Relaxed);
        let generation = self.generations[usize::from(slot)].load(Ordering::Relaxed);
        Ok((id(slot, generation), true))
    }

    fn existing(&self, table: &Table, slot: u16, pinned: bool, now: u32) -> KeyId {
        if !pinned && !table.slots[usize::from(slot)].pinned {
            self.touch(usize::from(slot), now);
        }
        id(
            slot,
            self.generations[usize::from(slot)].load(Ordering::Relaxed),
        )
    }

    /// Frees the least recently used dynamic slot.
    fn evict_lru(&self, table: &mut Table) {
        let victim = table
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.pinned && !s.record.is_empty())
            .min_by_key(|&(i, _)| self.last_used[i].load(Ordering::Relaxed))
            .map(|(i, _)| i);
        let Some(victim) = victim else { return };
        let record = std::mem::take(&mut table.slots[victim].record);
        table.by_record.remove(&record);
        // Release: a thread that sees the new generation sees the slot freed.
        self.generations[victim].fetch_add(1, Ordering::Release);
        table.free.push(victim as u16);
        table.dynamic -= 1;
        self.evictions.fetch_add(1, Ordering::Relaxed);
    }

    /// A read view for the worker's encoder.
    pub(crate) fn reader(&self) -> KeyReader<'_> {
        KeyReader {
            table: self.table.read().unwrap_or_else(|e| e.into_inner()),
            generations: &self.generations,
        }
    }

    /// The counters.
    pub(crate) fn stats(&self) -> InternerStats {
        let hits = self
            .hits
            .lock()
            .map(|all| all.iter().map(|h| h.load(Ordering::Relaxed)).sum())
            .unwrap_or(0);
        let len = self.table.read().map(|t| t.dynamic).unwrap_or(0);
        InternerStats {
            hits,
            misses: self.misses.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
            len,
            capacity: self.capacity,
        }
    }
}

/// The table as the worker reads it while encoding.
pub(crate) struct KeyReader<'t> {
    table: RwLockReadGuard<'t, Table>,
    generations: &'t [AtomicU32],
}

impl Keys for KeyReader<'_> {
    fn key(&self, id: KeyId) -> Option<Key<'_>> {
        let (slot, generation) = split(id);
        let entry = self.table.slots.get(slot)?;
        // Under the read lock no eviction runs: the generation is stable.
        if self.generations[slot].load(Ordering::Relaxed) & 0xFFFF != generation {
            return None;
        }
        Key::from_record(&entry.record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name_of(table: &KeyTable, id: KeyId) -> Option<String> {
        table.reader().key(id).map(|k| k.name().to_string())
    }

    #[test]
    fn interning_returns_one_id_per_key_and_counts_hits() {
        let t = KeyTable::new(4, Vec::new());
        let a = t.intern("a", &[("k", "v")], 1).unwrap();
        assert_eq!(t.intern("a", &[("k", "v")], 2), Ok(a));
        assert_ne!(t.intern("a", &[("k", "w")], 2), Ok(a));
        let s = t.stats();
        assert_eq!((s.hits, s.misses, s.len), (1, 2, 2));
        assert_eq!(name_of(&t, a).as_deref(), Some("a"));
    }

    #[test]
    fn the_least_recently_used_key_goes_and_its_old_id_resolves_to_nothing() {
        let t = KeyTable::new(3, Vec::new());
        let pinned = t.register("handle", &[]).unwrap();
        let a = t.intern("a", &[], 1).unwrap();
        let b = t.intern("b", &[], 2).unwrap();
        let c = t.intern("c", &[], 3).unwrap();
        // Use a again: b is now the least recently used.
        assert_eq!(t.intern("a", &[], 4), Ok(a));
        let d = t.intern("d", &[], 5).unwrap();
        assert_eq!(t.stats().evictions, 1);
        assert_eq!(name_of(&t, b), None, "an evicted id names nothing");
        // d reuses b's slot under a new generation.
        assert_eq!(split(d).0, split(b).0);
        assert_eq!(name_of(&t, d).as_deref(), Some("d"));
        for (id, name) in [(a, "a"), (c, "c"), (pinned, "handle")] {
            assert_eq!(name_of(&t, id).as_deref(), Some(name));
        }
        // b comes back under a new id; the thread cache does not hand out the
        // stale one.
        let b2 = t.intern("b", &[], 6).unwrap();
        assert_ne!(b2, b);
        assert_eq!(name_of(&t, b2).as_deref(), Some("b"));
        assert_eq!(t.stats().len, 3);
    }

    #[test]
    fn handles_are_never_evicted_and_bad_names_are_typed() {
        let t = KeyTable::new(1, Vec::new());
        let h = t.register("h", &[]).unwrap();
        for i in 0..10 {
            t.intern(&format!("n{i}"), &[], i).unwrap();
        }
        assert_eq!(name_of(&t, h).as_deref(), Some("h"));
        let long = "x".repeat(300);
        assert!(matches!(t.intern(&long, &[], 0), Err(KeyError::Invalid(_))));
        assert!(matches!(
            t.register("n", &[("k", &long)]),
            Err(KeyError::Invalid(_))
        ));
    }

    #[test]
    fn a_thread_forgets_tables_that_are_gone() {
        let first = KeyTable::new(4, Vec::new());
        first.intern("a", &[], 0).unwrap();
        let before = KeyTable::thread_caches();
        drop(first);
        let second = KeyTable::new(4, Vec::new());
        second.intern("a", &[], 0).unwrap();
        // The first table's cache made way for the second's.
        assert_eq!(KeyTable::thread_caches(), before);
    }

    #[test]
    fn threads_share_ids() {
        let t = Arc::new(KeyTable::new(100, Vec::new()));
        let ids: Vec<KeyId> = (0..4)
            .map(|_| {
                let t = t.clone();
                std::thread::spawn(move || t.intern("shared", &[("a", "b")], 0).unwrap())
            })
            .map(|h| h.join().unwrap())
            .collect();
        assert!(ids.iter().all(|&id| id == ids[0]));
        assert_eq!(t.stats().misses, 1);
    }

    #[test]
    fn every_key_carries_the_constant_tags_and_its_own_win() {
        let constant = vec![
            ("env".to_string(), "prod".to_string()),
            ("svc".into(), "a".into()),
        ];
        let t = KeyTable::new(4, constant);
        let tags_of = |id| {
            let reader = t.reader();
            let key = reader.key(id).unwrap();
            key.tags()
                .map(|(k, v)| format!("{k}:{v}"))
                .collect::<Vec<_>>()
        };
        let handle = t.register("h", &[("k", "v")]).unwrap();
        assert_eq!(tags_of(handle), ["env:prod", "k:v", "svc:a"]);
        let own = t.intern("d", &[("env", "dev")], 0).unwrap();
        assert_eq!(tags_of(own), ["env:dev", "svc:a"]);
        assert_eq!(t.intern("d", &[("env", "dev")], 1), Ok(own));
        assert_eq!(t.lookup("h", &[("k", "v")]), Ok(Some(handle)));
        // Seven of its own and two constant ones: past the limit, typed.
        let seven: Vec<(String, String)> = (0..7).map(|i| (format!("t{i}"), "x".into())).collect();
        let seven: Vec<(&str, &str)> = seven
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert!(matches!(
            t.register("many", &seven),
            Err(KeyError::Invalid(RegistryError::TooManyTags { count: 9 }))
        ));
    }
}
