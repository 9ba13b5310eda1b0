//! Who pushes into a set ([`Pusher`]): anyone into the shared set,
//! claiming slots with a compare-and-swap, or an owned set's one owner.

use super::{Lanes, SHARED};
use crate::event::{Event, Priority};
use crate::ring::Storage;

/// Who is pushing: anyone, into the shared set, or the owner of a set.
pub(super) enum Pusher<'a> {
    Shared,
    /// Only ever built by a `Producer` holding the claim on `set`, with its
    /// cache of each lane's `done` position.
    Owner {
        set: usize,
        cached_done: &'a mut [usize; 3],
    },
}

impl Pusher<'_> {
    pub(super) fn set(&self) -> usize {
        match self {
            Pusher::Shared => SHARED,
            Pusher::Owner { set, .. } => *set,
        }
    }

    /// Pushes `event` (ranked by its own priority) into this pusher's lane
    /// for `lane`.
    #[inline]
    pub(super) fn push<S: Storage<Event>, const SETS: usize>(
        &mut self,
        lanes: &Lanes<S, SETS>,
        lane: Priority,
        event: Event,
    ) -> Result<(), Event> {
        let (ring, slots) = lanes.lane(self.set(), lane);
        match self {
            Pusher::Shared => ring.try_push(slots, event, event.priority as u8),
            // SAFETY: an `Owner` pusher exists only inside `Producer`'s
            // methods, and a `Producer` holds the set's claim (taken with a
            // compare-and-swap, released on drop) and pushes through
            // `&mut self`: it is the one owner of this set's rings.
            Pusher::Owner { cached_done, .. } => unsafe {
                ring.push_owned(slots, event, &mut cached_done[lane.index()])
            },
        }
    }

    /// [`Pusher::push`] called, not inlined: the overflow path's pushes
    /// share one copy (the hot path keeps its own, inlined).
    #[inline(never)]
    pub(super) fn push_cold<S: Storage<Event>, const SETS: usize>(
        &mut self,
        lanes: &Lanes<S, SETS>,
        lane: Priority,
        event: Event,
    ) -> Result<(), Event> {
        self.push(lanes, lane, event)
    }

    /// Evicts the oldest item of this pusher's lane for `lane` if its
    /// priority ranks below `below`, and queues `event` in its place. Returns
    /// the evicted item, if any, and whether `event` got in.
    pub(super) fn evict<S: Storage<Event>, const SETS: usize>(
        &mut self,
        lanes: &Lanes<S, SETS>,
        lane: Priority,
        event: Event,
        below: u8,
    ) -> (Option<Event>, Result<(), Event>) {
        let (ring, slots) = lanes.lane(self.set(), lane);
        match self {
            Pusher::Shared => match ring.pop_where(slots, |rank| rank < below) {
                Some(victim) => (Some(victim), self.push_cold(lanes, lane, event)),
                None => (None, Err(event)),
            },
            // SAFETY: as in `push`: this `Producer` is the ring's one owner.
            Pusher::Owner { .. } => match unsafe {
                ring.evict_owned(slots, event, |victim| (victim.priority as u8) < below)
            } {
                Ok(victim) => (Some(victim), Ok(())),
                Err(event) => (None, Err(event)),
            },
        }
    }
}
