//! Series by their key text as sent: a StatsD line's name and tags as
//! written, a series record's name and tags in the order its key
//! definition gives them. A key text that came before finds its series
//! without its tags being ordered and written as the series' canonical
//! key.

use crate::memory::{ALLOCATION_BYTES, Memory};
use crate::shared::map_places;
use rustc_hash::FxHashMap;
use stats_core::Kind;

/// Series by key text. At most as many entries as the collector keeps
/// series (tags sent in another order are another key text for one
/// series), each counted against the memory budget; past either, keys go
/// the canonical way.
#[derive(Debug, Default)]
pub(crate) struct KeyTexts {
    map: FxHashMap<Box<[u8]>, usize>,
    /// The key text being looked up.
    scratch: Vec<u8>,
}

/// What a key text starts with: where it comes from (the two spell tags
/// apart, so they never meet), and the series' kind.
fn start(scratch: &mut Vec<u8>, from: u8, kind: Kind) {
    scratch.clear();
    scratch.push(from);
    scratch.push(kind as u8);
}

/// `part` after its length, so that no two keys' texts are the same.
fn put(scratch: &mut Vec<u8>, part: &str) {
    scratch.extend_from_slice(&(part.len() as u32).to_le_bytes());
    scratch.extend_from_slice(part.as_bytes());
}

impl KeyTexts {
    /// The series of a StatsD line of `kind`, `name` and `tags` (the
    /// DogStatsD tag text as sent), if its key text came before; the key
    /// text stays for [`KeyTexts::remember`].
    pub(crate) fn find_line(&mut self, kind: Kind, name: &str, tags: &str) -> Option<usize> {
        start(&mut self.scratch, b'L', kind);
        put(&mut self.scratch, name);
        put(&mut self.scratch, tags);
        self.map.get(self.scratch.as_slice()).copied()
    }

    /// The series of a series record of `kind`, `name` and `tags` (in its
    /// key definition's order), if its key text came before; the key text
    /// stays for [`KeyTexts::remember`].
    pub(crate) fn find_record<'t>(
        &mut self,
        kind: Kind,
        name: &str,
        tags: impl Iterator<Item = (&'t str, &'t str)>,
    ) -> Option<usize> {
        start(&mut self.scratch, b'R', kind);
        put(&mut self.scratch, name);
        for (key, value) in tags {
            put(&mut self.scratch, key);
            put(&mut self.scratch, value);
        }
        self.map.get(self.scratch.as_slice()).copied()
    }

    /// Remembers the key text last looked up as `series`', when there is
    /// room (`most` entries) and the budget allows it.
    pub(crate) fn remember(&mut self, series: usize, most: usize, memory: &Memory) {
        if self.map.len() >= most {
            return;
        }
        let place = map_places::<Box<[u8]>, usize>(1);
        let bytes = self.scratch.len() as u64 + place + ALLOCATION_BYTES;
        if memory.grow(bytes) {
            self.map.insert(self.scratch.as_slice().into(), series);
        }
    }

    /// Key texts remembered.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}
