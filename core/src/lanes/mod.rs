//! Priority lanes with a drop policy: where recorded events wait.
//!
//! The lanes are organised in *sets*: each set has one lock-free ring per
//! [`Priority`] (see `ring/`), and every set's rings live in one slot
//! storage, so a `static` can hold them all and the std adapter can size them
//! at run time.
//!
//! * Set 0 is **shared**: [`Lanes::push`] works from any thread or interrupt
//!   handler, claiming ring positions with a compare-and-swap.
//! * Sets 1.. are **owned**: [`Lanes::producer`] claims one (once) and hands
//!   out a [`Producer`] whose [`Producer::push`] does no read-modify-write at
//!   all: about 4 ns, against the 16 ns of a push that claims its slot with a
//!   compare-and-swap (a locked instruction alone costs about 10 ns on the
//!   machines this was tuned on). A thread keeps its producer for its lifetime;
//!   dropping it returns the set (events still in it are drained as usual).
//!   Only an empty set is claimed: a thread never starts against lanes that
//!   another one left full.
//!
//! `SETS` is the most sets the lanes can have; the storage decides how many
//! they do have (any whole number of sets up to `SETS`), so an adapter can
//! size the number of owned sets from configuration.
//!
//! The one [`Consumer`] (claimed with [`Lanes::consumer`]) drains every set's
//! high lane, then every set's medium lane, then every low lane, rotating the
//! starting set so no set starves the others.
//!
//! When a lane is full the [`DropPolicy`] decides, within the pushing set:
//! `DropByPriority` overflows into the set's lower lanes and evicts their
//! lower-priority events, so a set never loses a high-priority event while it
//! holds a lower-priority one at the head of a lower lane. The work a full
//! lane costs is bounded by a few ring operations (at most four moves of
//! queued events). Every event that
//! does not make it is counted in [`Lanes::drops`] by reason and priority. No
//! event disappears uncounted: at any moment
//!
//! ```text
//! pushes attempted = drained + dropped (all reasons) + len_total()
//! ```
//!
//! Nothing here allocates or panics.

mod capacities;
mod consumer;
mod policy;
mod producer;
mod pusher;
#[cfg(all(test, not(loom)))]
mod tests;

pub use capacities::{LaneCapacities, LanesError};
pub use consumer::Consumer;
pub use producer::{LanesRef, Producer};

use crate::drop_policy::{DropCounters, DropPolicy, DropReason};
use crate::event::{Event, Priority};
use crate::ring::{CapacityError, Indices, Lane, Slot, Storage};
use crate::sync::{AtomicBool, AtomicUsize, Ordering};
use capacities::{check, lane_caps, starts};
use core::fmt;
use pusher::Pusher;

/// Lanes in one array of `N` slots with `SETS` sets (set 0 shared), usable in
/// a `static`. `N` must be `SETS × capacities.total()`.
pub type StaticLanes<const N: usize, const SETS: usize = 1> = Lanes<[Slot<Event>; N], SETS>;

/// One ring per priority, indexed by [`Priority::index`], and whether a
/// producer owns the set.
struct LaneSet {
    rings: [Indices; 3],
    claimed: AtomicBool,
}

impl LaneSet {
    #[cfg(not(loom))]
    const fn new() -> Self {
        LaneSet {
            rings: [const { Indices::new() }; 3],
            claimed: AtomicBool::new(false),
        }
    }

    #[cfg(loom)]
    fn new() -> Self {
        LaneSet {
            rings: core::array::from_fn(|_| Indices::new()),
            claimed: AtomicBool::new(false),
        }
    }
}

/// Priority lanes over slot storage `S` (see [`Storage`]) in `SETS` sets.
pub struct Lanes<S, const SETS: usize = 1> {
    sets: [LaneSet; SETS],
    /// Sets in use (the storage's), from 1 to `SETS`.
    in_use: usize,
    /// Each lane's first slot within a set, indexed by [`Priority::index`].
    starts: [usize; 3],
    /// Each lane's capacity, indexed by [`Priority::index`].
    lane_caps: [usize; 3],
    /// Slots per set.
    set_size: usize,
    slots: S,
    policy: DropPolicy,
    drops: DropCounters,
    /// `DropSampled` tick of the shared set, per priority.
    shared_ticks: [AtomicUsize; 3],
    /// Whether a [`Consumer`] exists (there is at most one).
    consumer_claimed: AtomicBool,
    /// Whether the exporter's breaker is open (attribution of drops).
    circuit_open: AtomicBool,
    /// Queued events `DropByPriority` took out of a lane while looking for
    /// one to evict (each went back in, or was dropped as the refused one):
    /// taken off the rings' push and pop counts (wraps).
    moved: AtomicUsize,
}

impl<S: Storage<Event>, const SETS: usize> fmt::Debug for Lanes<S, SETS> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lanes")
            .field("policy", &self.policy)
            .field("sets", &self.in_use)
            .field("capacities", &self.capacities())
            .field("len", &self.len_total())
            .field("dropped", &self.drops.total())
            .finish()
    }
}

// SAFETY: slot values are only accessed by the thread that claimed the slot
// through a ring's indices, ordered by the slot stamps (see `ring/`); an
// owned set is pushed to only by the one `Producer` that claimed it.
unsafe impl<S: Send, const SETS: usize> Sync for Lanes<S, SETS> {}

#[cfg(not(loom))]
impl<const N: usize, const SETS: usize> StaticLanes<N, SETS> {
    /// Lanes in an array of `N` slots, which must equal
    /// `SETS × capacities.total()`.
    ///
    /// ```
    /// use stats_core::{DropPolicy, LaneCapacities, StaticLanes};
    /// const CAPS: LaneCapacities = LaneCapacities { high: 64, medium: 256, low: 128 };
    /// // The shared set plus three producer sets.
    /// static LANES: StaticLanes<{ 4 * CAPS.total() }, 4> =
    ///     match StaticLanes::new(CAPS, DropPolicy::DropByPriority) {
    ///         Ok(lanes) => lanes,
    ///         Err(_) => panic!("bad lane capacities"), // evaluated at compile time
    ///     };
    /// assert_eq!(LANES.capacity_total(), 1_792);
    /// ```
    pub const fn new(capacities: LaneCapacities, policy: DropPolicy) -> Result<Self, LanesError> {
        if let Err(e) = check(&capacities, SETS, N, true) {
            return Err(e);
        }
        let mut slots = [const { Slot::new() }; N];
        let starts = starts(&capacities);
        let mut set = 0;
        while set < SETS {
            let mut lane = 0;
            while lane < 3 {
                let first = set * capacities.total() + starts[lane];
                let mut i = 0;
                while i < capacities.of(Priority::ALL[lane]) {
                    slots[first + i] = Slot::stamped_free(i);
                    i += 1;
                }
                lane += 1;
            }
            set += 1;
        }
        Ok(Lanes {
            sets: [const { LaneSet::new() }; SETS],
            in_use: SETS,
            starts,
            lane_caps: lane_caps(&capacities),
            set_size: capacities.total(),
            slots,
            policy,
            drops: DropCounters::new(),
            shared_ticks: [const { AtomicUsize::new(0) }; 3],
            consumer_claimed: AtomicBool::new(false),
            circuit_open: AtomicBool::new(false),
            moved: AtomicUsize::new(0),
        })
    }
}

impl<S: Storage<Event>, const SETS: usize> Lanes<S, SETS> {
    /// Lanes over caller-provided slots (for example a `Box<[Slot<Event>]>`
    /// sized from configuration, or a `&'static mut` slice), which must hold
    /// `k × capacities.total()` slots: `k` sets, the shared one and `k - 1`
    /// owned ones, `k` from 1 to `SETS`.
    pub fn with_storage(
        slots: S,
        capacities: LaneCapacities,
        policy: DropPolicy,
    ) -> Result<Self, LanesError> {
        let in_use = check(&capacities, SETS, slots.slots().len(), false)?;
        let starts = starts(&capacities);
        for set in 0..in_use {
            for p in Priority::ALL {
                let first = set * capacities.total() + starts[p.index()];
                let lane = &slots.slots()[first..][..capacities.of(p)];
                Indices::init(lane)
                    .map_err(|CapacityError { len }| LanesError::Capacity { priority: p, len })?;
            }
        }
        Ok(Lanes {
            sets: core::array::from_fn(|_| LaneSet::new()),
            in_use,
            starts,
            lane_caps: lane_caps(&capacities),
            set_size: capacities.total(),
            slots,
            policy,
            drops: DropCounters::new(),
            shared_ticks: core::array::from_fn(|_| AtomicUsize::new(0)),
            consumer_claimed: AtomicBool::new(false),
            circuit_open: AtomicBool::new(false),
            moved: AtomicUsize::new(0),
        })
    }

    /// The ring indices and slots of `set`'s lane for `priority`.
    #[inline]
    fn lane(&self, set: usize, priority: Priority) -> (&Indices, Lane<'_, Event>) {
        let p = priority.index();
        let first = set * self.set_size + self.starts[p];
        let lane = Lane::new(self.slots.slots(), first, self.lane_caps[p]);
        (&self.sets[set].rings[p], lane)
    }

    /// Claims an owned lane set for a producer that will push from one
    /// thread (or task) at a time. `None` when every owned set is taken; push
    /// through the shared set with [`Lanes::push`] then.
    pub fn producer(&self) -> Option<Producer<&Self>> {
        Producer::claim(self)
    }

    /// Queues `event` in the shared set, applying the drop policy if its lane
    /// is full. `Err` says why an event of `event`'s priority was dropped
    /// for want of room (this one or, under `DropByPriority`, an older one
    /// of the same priority it displaced); it has already been counted, as
    /// have events evicted to make room. Never blocks.
    #[inline]
    pub fn push(&self, event: Event) -> Result<(), DropReason> {
        let tick = &self.shared_ticks[event.priority.index()];
        self.push_with(Pusher::Shared, event, || {
            tick.fetch_add(1, Ordering::Relaxed)
        })
    }

    /// Queues `event` in its own lane of the shared set without applying the
    /// policy or counting anything: a full lane hands the event back.
    #[inline]
    pub fn try_push(&self, event: Event) -> Result<(), Event> {
        Pusher::Shared.push(self, event.priority, event)
    }

    /// Tells the lanes whether the exporter's circuit breaker is open, so that
    /// lane-full drops meanwhile are counted as [`DropReason::CircuitOpen`].
    pub fn set_circuit_open(&self, open: bool) {
        self.circuit_open.store(open, Ordering::Relaxed);
    }

    /// Claims the one consumer of these lanes: the only way to take events
    /// out. `None` while another `Consumer` exists.
    pub fn consumer(&self) -> Option<Consumer<'_, S, SETS>> {
        // Acquire: see the previous consumer's index updates.
        self.consumer_claimed
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .ok()?;
        Some(Consumer {
            lanes: self,
            start: 0,
        })
    }

    /// The policy applied when a lane is full.
    pub fn policy(&self) -> DropPolicy {
        self.policy
    }

    /// The capacities of each set's lanes.
    pub fn capacities(&self) -> LaneCapacities {
        let [low, medium, high] = self.lane_caps;
        LaneCapacities { high, medium, low }
    }

    /// Number of sets in use, the shared one included.
    pub const fn sets(&self) -> usize {
        self.in_use
    }

    /// Drop counts by reason and priority.
    pub fn drops(&self) -> &DropCounters {
        &self.drops
    }

    /// Events waiting in the lanes for `priority`, all sets (under
    /// `DropByPriority` these may include higher-priority events that
    /// overflowed into them).
    pub fn len(&self, priority: Priority) -> usize {
        let capacity = self.lane_caps[priority.index()];
        self.sets[..self.in_use]
            .iter()
            .map(|set| set.rings[priority.index()].len(capacity))
            .sum()
    }

    /// Whether `set` holds no event.
    fn is_empty_set(&self, set: usize) -> bool {
        Priority::ALL
            .iter()
            .all(|p| self.sets[set].rings[p.index()].len(self.lane_caps[p.index()]) == 0)
    }

    /// Events waiting in all lanes.
    pub fn len_total(&self) -> usize {
        Priority::ALL.iter().map(|&p| self.len(p)).sum()
    }

    /// Slots in all lanes of all sets.
    pub fn capacity_total(&self) -> usize {
        self.in_use * self.set_size
    }

    /// Bytes these lanes occupy: the structure and every slot, wherever the
    /// storage lives (inline, borrowed or boxed).
    pub fn memory_bytes(&self) -> usize {
        size_of::<Self>() - size_of::<S>() + self.capacity_total() * size_of::<Slot<Event>>()
    }

    /// Events accepted into the lanes since they were made (wraps).
    pub fn pushed(&self) -> usize {
        self.rings()
            .fold(0usize, |sum, r| sum.wrapping_add(r.pushed()))
            .wrapping_sub(self.moved.load(Ordering::Relaxed))
    }

    /// Events taken out of the lanes by drains or evictions (wraps).
    pub fn popped(&self) -> usize {
        self.rings()
            .fold(0usize, |sum, r| sum.wrapping_add(r.popped()))
            .wrapping_sub(self.moved.load(Ordering::Relaxed))
    }

    fn rings(&self) -> impl Iterator<Item = &Indices> {
        self.sets[..self.in_use].iter().flat_map(|set| &set.rings)
    }
}

/// The set anyone may push into.
const SHARED: usize = 0;
