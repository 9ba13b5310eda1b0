//! The drop policy at work on a push: `DropSampled`'s sampling, and
//! making room (or counting the drop) when an event's lane is full.

use super::Lanes;
use super::pusher::Pusher;
use crate::drop_policy::{DropPolicy, DropReason};
use crate::event::{Event, Priority};
use crate::ring::Storage;
use crate::sync::Ordering;

/// Bounds the work one push may do when other threads keep taking the room
/// it makes (each eviction still made room for someone).
const ATTEMPTS: usize = 4;

/// Most events of the same rank `DropByPriority` moves to the back of a
/// lower lane looking for one that ranks below. Each move is an eviction
/// (a compare-and-swap the consumer may contend) and a push: four keep a
/// push into a full set within a few ring operations. (At 64, under
/// sustained overload the search took about a third of the recording
/// thread's time with the binary codec and three quarters with DogStatsD,
/// and the events it saved were dropped a moment later anyway.)
const ROTATIONS: usize = 4;

/// Rank threshold that lets any item be evicted (ranks are below 4).
const EVICT_ANY: u8 = 4;

impl<S: Storage<Event>, const SETS: usize> Lanes<S, SETS> {
    #[inline]
    pub(super) fn push_with(
        &self,
        mut by: Pusher<'_>,
        event: Event,
        sample_tick: impl FnOnce() -> usize,
    ) -> Result<(), DropReason> {
        let priority = event.priority;
        if let DropPolicy::DropSampled {
            keep_one_in,
            threshold_percent,
        } = self.policy
        {
            let capacity = self.lane_caps[priority.index()];
            let len = self.sets[by.set()].rings[priority.index()].len(capacity);
            if len * 100 >= capacity * usize::from(threshold_percent)
                && !sample_tick().is_multiple_of(usize::from(keep_one_in.get()))
            {
                self.drops.count(DropReason::Sampled, priority);
                return Err(DropReason::Sampled);
            }
        }
        match by.push(self, priority, event) {
            Ok(()) => Ok(()),
            Err(event) => self.make_room(&mut by, event),
        }
    }

    /// The slow path of a push: the event's own lane in its set is full.
    #[cold]
    fn make_room(&self, by: &mut Pusher<'_>, mut event: Event) -> Result<(), DropReason> {
        let priority = event.priority;
        match self.policy {
            DropPolicy::DropOldest => {
                for _ in 0..ATTEMPTS {
                    let (victim, result) = by.evict(self, priority, event, EVICT_ANY);
                    if let Some(victim) = victim {
                        self.drops.count(DropReason::EvictedOldest, victim.priority);
                    }
                    // Nothing to evict can also mean the consumer just took
                    // the oldest: there may be room now.
                    match result.or_else(|back| by.push_cold(self, priority, back)) {
                        Ok(()) => return Ok(()),
                        Err(back) => event = back,
                    }
                }
            }
            DropPolicy::DropByPriority => {
                let lower = &Priority::ALL[..priority.index()];
                for &p in lower {
                    match by.push_cold(self, p, event) {
                        Ok(()) => return Ok(()),
                        Err(back) => event = back,
                    }
                }
                for &p in lower {
                    event = match self.evict_below(by, p, event) {
                        Ok(()) => return Ok(()),
                        Err(back) => back,
                    };
                }
            }
            DropPolicy::DropNewest | DropPolicy::DropSampled { .. } => {}
        }
        // Relaxed: a hint for attribution only.
        let reason = if self.circuit_open.load(Ordering::Relaxed) {
            DropReason::CircuitOpen
        } else {
            DropReason::LaneFull
        };
        self.drops.count(reason, priority);
        Err(reason)
    }

    /// `DropByPriority`'s eviction in lower lane `lane`: evicts the oldest
    /// event there that ranks below `event` and queues `event`.
    ///
    /// In an owned set, an event of the same rank at the head (one that
    /// overflowed there earlier) is moved to the back instead, so it never
    /// shields lower-ranked events queued behind it; an event that ranks
    /// above stops the search; at most [`ROTATIONS`] moves. The shared set,
    /// whose producers race for every slot, evicts only a lower-ranked head.
    /// `Err` hands back an event of `event`'s rank that found no place (the
    /// incoming one, or one moved out).
    fn evict_below(&self, by: &mut Pusher<'_>, lane: Priority, event: Event) -> Result<(), Event> {
        let rank = event.priority;
        let mut carry = event;
        if let Pusher::Shared = by {
            for _ in 0..ATTEMPTS {
                let (victim, placed) = by.evict(self, lane, carry, rank as u8);
                let Some(victim) = victim else {
                    return placed;
                };
                self.drops
                    .count(DropReason::EvictedByPriority, victim.priority);
                match placed {
                    Ok(()) => return Ok(()),
                    Err(back) => carry = back,
                }
            }
            return Err(carry);
        }
        // More than a lane's worth of moves only cycles.
        for _ in 0..ROTATIONS.min(self.lane_caps[lane.index()]) {
            // An owner's eviction queues `carry` exactly when it takes a
            // victim.
            let (victim, placed) = by.evict(self, lane, carry, rank as u8 + 1);
            let Some(victim) = victim else {
                // Nothing to take: not full (the consumer took some), or the
                // head ranks above. There may be room now.
                return by.push_cold(self, lane, placed.err().unwrap_or(carry));
            };
            if victim.priority < rank {
                self.drops
                    .count(DropReason::EvictedByPriority, victim.priority);
                return Ok(());
            }
            // A queued event in hand: it goes back in (a move, not a new
            // event) or is dropped as the refused one (its first push no
            // longer counts): either way, one move.
            self.moved.fetch_add(1, Ordering::Relaxed);
            carry = victim;
        }
        Err(carry)
    }
}
