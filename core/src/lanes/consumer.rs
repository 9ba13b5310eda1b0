//! The one [`Consumer`] of some lanes: every set's high lane drained
//! before any medium one, the starting set rotating.

use super::{Lanes, SHARED};
use crate::event::{Event, Priority};
use crate::ring::Storage;
use crate::sync::Ordering;
use core::fmt;

/// The one consumer of some [`Lanes`] (see [`Lanes::consumer`]). Draining
/// needs `&mut self`, so it cannot run twice at once or re-enter from its
/// own sink. Dropping it lets another consumer be claimed.
pub struct Consumer<'a, S: Storage<Event>, const SETS: usize> {
    pub(super) lanes: &'a Lanes<S, SETS>,
    /// Set the next drain starts with, so no set starves the others.
    pub(super) start: usize,
}

impl<S: Storage<Event>, const SETS: usize> fmt::Debug for Consumer<'_, S, SETS> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer")
            .field("lanes", self.lanes)
            .finish()
    }
}

impl<S: Storage<Event>, const SETS: usize> Drop for Consumer<'_, S, SETS> {
    fn drop(&mut self) {
        // Release: the next consumer sees our index updates.
        self.lanes.consumer_claimed.store(false, Ordering::Release);
    }
}

impl<'a, S: Storage<Event>, const SETS: usize> Consumer<'a, S, SETS> {
    /// The lanes this consumer drains.
    pub fn lanes(&self) -> &'a Lanes<S, SETS> {
        self.lanes
    }

    /// Takes up to `max` events — every set's high lane, then every medium
    /// lane, then every low lane — and hands each to `sink`. Returns how many
    /// were taken. A slot a producer has claimed but not yet published ends
    /// that lane's share of this drain rather than being waited for. Events
    /// are copied out of a lane before `sink` sees them, so even a panicking
    /// sink leaves the lanes consistent.
    pub fn drain(&mut self, max: usize, mut sink: impl FnMut(Event)) -> usize {
        let lanes = self.lanes;
        let sets = lanes.in_use;
        let start = self.start;
        self.start = if start + 1 < sets { start + 1 } else { 0 };
        let mut taken = 0;
        for p in [Priority::High, Priority::Medium, Priority::Low] {
            for i in 0..sets {
                let set = if start + i < sets {
                    start + i
                } else {
                    start + i - sets
                };
                let (ring, slots) = lanes.lane(set, p);
                // One batch per lane: fewer than asked means the lane is empty
                // (or stopped at an unpublished slot); as many means done.
                taken += if set == SHARED {
                    if !ring.ready(slots) {
                        continue;
                    }
                    ring.pop_batch(slots, max - taken, &mut sink)
                } else {
                    if !ring.owned_ready() {
                        continue;
                    }
                    ring.pop_batch_owned(slots, max - taken, &mut sink)
                };
                if taken == max {
                    return taken;
                }
            }
        }
        taken
    }
}
