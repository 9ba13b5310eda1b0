//! The sole owner of one lane set ([`Producer`]) and the pointers to
//! the lanes it may hold ([`LanesRef`], sealed).

use super::pusher::Pusher;
use super::{Lanes, SHARED};
use crate::drop_policy::DropReason;
use crate::event::Event;
use crate::ring::Storage;
use crate::sync::Ordering;
use core::fmt;
use core::ops::Deref;

mod sealed {
    pub trait Sealed {}
}

/// A pointer to [`Lanes`] that a [`Producer`] may hold: `&Lanes`, or (with
/// the `alloc` feature) `Arc<Lanes>`. Sealed, because the producer's
/// exclusive claim relies on the pointer always reaching the same lanes.
pub trait LanesRef<S, const SETS: usize>: sealed::Sealed + Deref<Target = Lanes<S, SETS>> {}

impl<S, const SETS: usize> sealed::Sealed for &Lanes<S, SETS> {}
impl<S, const SETS: usize> LanesRef<S, SETS> for &Lanes<S, SETS> {}

#[cfg(all(any(feature = "alloc", test), not(loom), target_has_atomic = "ptr"))]
impl<S, const SETS: usize> sealed::Sealed for alloc::sync::Arc<Lanes<S, SETS>> {}
#[cfg(all(any(feature = "alloc", test), not(loom), target_has_atomic = "ptr"))]
impl<S, const SETS: usize> LanesRef<S, SETS> for alloc::sync::Arc<Lanes<S, SETS>> {}

#[cfg(loom)]
impl<S, const SETS: usize> sealed::Sealed for loom::sync::Arc<Lanes<S, SETS>> {}
#[cfg(loom)]
impl<S, const SETS: usize> LanesRef<S, SETS> for loom::sync::Arc<Lanes<S, SETS>> {}

/// Sole owner of one lane set: pushes without any read-modify-write.
///
/// Made by [`Lanes::producer`] (borrowing) or [`Producer::claim`] (over a
/// [`LanesRef`] such as an `Arc`). Dropping it releases the set for
/// another producer; events still queued in it are drained as usual.
pub struct Producer<L> {
    lanes: L,
    pub(super) set: usize,
    /// `DropSampled` tick per priority: local, so sampling costs no atomics.
    ticks: [usize; 3],
    /// Each lane's `done` position as last seen: the owner reads the shared
    /// one only when its lane looks full.
    cached_done: [usize; 3],
    /// Gives the set back; captured at claim time, where `L`'s bounds are known.
    release: fn(&L, usize),
}

impl<L, S, const SETS: usize> Producer<L>
where
    L: LanesRef<S, SETS> + Deref<Target = Lanes<S, SETS>>,
    S: Storage<Event>,
{
    /// Claims a free, empty owned set of `lanes`, or `None` if there is
    /// none now. A set given back with events still queued is free again
    /// once the consumer has drained them: claiming it before would start
    /// the new owner against lanes the last one left full.
    pub fn claim(lanes: L) -> Option<Self> {
        let set = (SHARED + 1..lanes.in_use).find(|&set| {
            // Acquire: see the previous owner's pushes (its `tail` stores).
            let claimed = lanes.sets[set]
                .claimed
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok();
            if claimed && !lanes.is_empty_set(set) {
                lanes.sets[set].claimed.store(false, Ordering::Release);
                return false;
            }
            claimed
        })?;
        let cached_done = core::array::from_fn(|p| lanes.sets[set].rings[p].owned_done());
        Some(Producer {
            lanes,
            set,
            ticks: [0; 3],
            cached_done,
            release: |lanes, set| {
                // Release: the next owner sees this one's pushes.
                lanes.sets[set].claimed.store(false, Ordering::Release);
            },
        })
    }

    /// Queues `event` in this producer's set, applying the drop policy if its
    /// lane is full. `Err` says why this event was dropped; it has already
    /// been counted, as have events evicted to make room. Never blocks; no
    /// read-modify-write unless the lane is full.
    #[inline]
    pub fn push(&mut self, event: Event) -> Result<(), DropReason> {
        let tick = &mut self.ticks[event.priority.index()];
        let by = Pusher::Owner {
            set: self.set,
            cached_done: &mut self.cached_done,
        };
        self.lanes.push_with(by, event, || {
            let t = *tick;
            *tick = t.wrapping_add(1);
            t
        })
    }

    /// Queues `event` in its own lane of this producer's set without applying
    /// the policy or counting anything: a full lane hands the event back.
    #[inline]
    pub fn try_push(&mut self, event: Event) -> Result<(), Event> {
        Pusher::Owner {
            set: self.set,
            cached_done: &mut self.cached_done,
        }
        .push(&self.lanes, event.priority, event)
    }

    /// The lanes this producer pushes into.
    pub fn lanes(&self) -> &Lanes<S, SETS> {
        &self.lanes
    }
}

impl<L> Drop for Producer<L> {
    fn drop(&mut self) {
        (self.release)(&self.lanes, self.set);
    }
}

impl<L> fmt::Debug for Producer<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer").field("set", &self.set).finish()
    }
}
