//! StatsD sets (`name:member|s`): the distinct members each set received
//! in an export interval, reported as a gauge at the interval's end (as
//! Etsy statsd and the Datadog agent report them; 0 for a set that
//! received none). Members are kept as 64-bit hashes, at most
//! [`MAX_SET_MEMBERS`] a set and interval and within the memory budget;
//! a member past either is counted (`capped`) and not kept.

use crate::memory::Memory;
use rustc_hash::{FxBuildHasher, FxHashMap, FxHashSet};
use std::hash::BuildHasher;

/// Distinct members a set keeps in an interval at most.
pub const MAX_SET_MEMBERS: usize = 100_000;

/// The bytes a member is counted as: its hash, a map's control byte,
/// and the map's spare room.
const MEMBER_BYTES: u64 = 16;

/// Every set's members this interval, by series.
#[derive(Debug, Default)]
pub(crate) struct Sets {
    members: FxHashMap<usize, FxHashSet<u64>>,
    /// Members not kept: past [`MAX_SET_MEMBERS`] or the memory budget.
    pub(crate) capped: u64,
}

impl Sets {
    /// Takes `member` into set `series`.
    pub(crate) fn add(&mut self, series: usize, member: &str, memory: &Memory) {
        let members = self.members.entry(series).or_default();
        let hash = FxBuildHasher.hash_one(member);
        if members.contains(&hash) {
            return;
        }
        if members.len() >= MAX_SET_MEMBERS || !memory.grow(MEMBER_BYTES) {
            self.capped += 1;
            return;
        }
        members.insert(hash);
    }

    /// Ends the interval: each set's distinct members, by series (every
    /// set seen so far, none for one that received none), forgotten here.
    pub(crate) fn close(&mut self, memory: &Memory) -> Vec<(usize, FxHashSet<u64>)> {
        let mut closed = Vec::with_capacity(self.members.len());
        for (&series, members) in &mut self.members {
            memory.shrink(members.len() as u64 * MEMBER_BYTES);
            closed.push((series, std::mem::take(members)));
        }
        closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each set's count of members, by series.
    fn counts(sets: &mut Sets, memory: &Memory) -> Vec<(usize, usize)> {
        let mut counts: Vec<_> = (sets.close(memory).into_iter())
            .map(|(series, members)| (series, members.len()))
            .collect();
        counts.sort_unstable();
        counts
    }

    #[test]
    fn distinct_members_per_interval_capped_and_counted() {
        let memory = Memory::new(1 << 24);
        let mut sets = Sets::default();
        for member in ["a", "b", "a", "c", "b"] {
            sets.add(7, member, &memory);
        }
        sets.add(9, "x", &memory);
        assert_eq!(counts(&mut sets, &memory), [(7, 3), (9, 1)]);
        // A new interval: a set that received nothing reports 0.
        sets.add(7, "a", &memory);
        assert_eq!(counts(&mut sets, &memory), [(7, 1), (9, 0)]);
        // Past the cap, members are counted and not kept.
        for i in 0..MAX_SET_MEMBERS + 5 {
            sets.add(1, &i.to_string(), &memory);
        }
        assert_eq!(sets.capped, 5);
        // And past the memory budget.
        let small = Memory::new(64);
        let mut tight = Sets::default();
        for i in 0..10 {
            tight.add(1, &i.to_string(), &small);
        }
        assert!(tight.capped > 0);
        assert_eq!(counts(&mut tight, &small)[0].1 as u64 + tight.capped, 10);
    }
}
