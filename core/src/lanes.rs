//! Priority lanes with a drop policy: where recorded events wait.
//!
//! The lanes are organised in *sets*: each set has one lock-free ring per
//! [`Priority`] (see `ring.rs`), and every set's rings live in one slot
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

use crate::drop_policy::{DropCounters, DropPolicy, DropReason};
use crate::event::{Event, Priority};
use crate::ring::{CapacityError, Indices, Lane, Slot, Storage};
use crate::sync::{AtomicBool, AtomicUsize, Ordering};
use core::fmt;
use core::ops::Deref;

/// Capacity of each lane of one set, in events. Each must be a power of two,
/// at least 2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LaneCapacities {
    /// The high-priority lane.
    pub high: usize,
    /// The medium-priority lane.
    pub medium: usize,
    /// The low-priority lane.
    pub low: usize,
}

impl LaneCapacities {
    /// 2,048 high, 8,192 medium, 4,096 low: 14,336 events, 448 KiB of slots.
    pub const DEFAULT: LaneCapacities = LaneCapacities {
        high: 2048,
        medium: 8192,
        low: 4096,
    };

    /// Capacity of the lane for `priority`.
    pub const fn of(&self, priority: Priority) -> usize {
        match priority {
            Priority::Low => self.low,
            Priority::Medium => self.medium,
            Priority::High => self.high,
        }
    }

    /// All three lanes together (saturating at `usize::MAX`).
    pub const fn total(&self) -> usize {
        self.high
            .saturating_add(self.medium)
            .saturating_add(self.low)
    }
}

impl Default for LaneCapacities {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Why lanes could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum LanesError {
    /// A lane capacity is not a power of two of at least 2.
    Capacity {
        /// The lane.
        priority: Priority,
        /// The capacity given.
        len: usize,
    },
    /// The storage does not hold a whole number of sets (`k ×
    /// capacities.total()` slots for `k` from 1 to `SETS`; exactly `SETS`
    /// sets for [`StaticLanes`]).
    StorageSize {
        /// Slots the capacities need (for `SETS` sets).
        needed: usize,
        /// Slots the storage has.
        got: usize,
    },
    /// A lane set count of zero: the shared set is always there.
    NoSets,
}

impl fmt::Display for LanesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            LanesError::Capacity { priority, len } => write!(
                f,
                "{priority:?} lane capacity must be a power of two and at least 2, got {len}"
            ),
            LanesError::StorageSize { needed, got } => {
                write!(f, "lane storage has {got} slots, the lanes need {needed}")
            }
            LanesError::NoSets => f.write_str("lanes need at least one set (the shared one)"),
        }
    }
}

impl core::error::Error for LanesError {}

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
// through a ring's indices, ordered by the slot stamps (see `ring.rs`); an
// owned set is pushed to only by the one `Producer` that claimed it.
unsafe impl<S: Send, const SETS: usize> Sync for Lanes<S, SETS> {}

/// Slot offsets of the lanes within a set: high first, then medium, then low.
const fn starts(c: &LaneCapacities) -> [usize; 3] {
    [c.high + c.medium, c.high, 0]
}

/// Lane capacities indexed by [`Priority::index`].
const fn lane_caps(c: &LaneCapacities) -> [usize; 3] {
    [c.low, c.medium, c.high]
}

/// Checks the capacities and that `got` slots are `k` whole sets, `k`
/// from 1 to `sets` (exactly `sets` when `exact`); gives `k`.
const fn check(
    c: &LaneCapacities,
    sets: usize,
    got: usize,
    exact: bool,
) -> Result<usize, LanesError> {
    if sets == 0 {
        return Err(LanesError::NoSets);
    }
    let mut i = 0;
    while i < Priority::ALL.len() {
        let priority = Priority::ALL[i];
        let len = c.of(priority);
        if len < 2 || !len.is_power_of_two() {
            return Err(LanesError::Capacity { priority, len });
        }
        i += 1;
    }
    // Each capacity is a power of two, so the sum only saturates when it
    // cannot be any real storage's length; then `needed` reports usize::MAX.
    let needed = match sets.checked_mul(c.total()) {
        Some(n) => n,
        None => usize::MAX,
    };
    let total = c.total();
    let whole = got > 0 && got.is_multiple_of(total) && got / total <= sets;
    if needed == usize::MAX || !whole || (exact && got != needed) {
        return Err(LanesError::StorageSize { needed, got });
    }
    Ok(got / total)
}

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

    #[inline]
    fn push_with(
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

/// The one consumer of some [`Lanes`] (see [`Lanes::consumer`]). Draining
/// needs `&mut self`, so it cannot run twice at once or re-enter from its
/// own sink. Dropping it lets another consumer be claimed.
pub struct Consumer<'a, S: Storage<Event>, const SETS: usize> {
    lanes: &'a Lanes<S, SETS>,
    /// Set the next drain starts with, so no set starves the others.
    start: usize,
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

/// The set anyone may push into.
const SHARED: usize = 0;

/// Rank threshold that lets any item be evicted (ranks are below 4).
const EVICT_ANY: u8 = 4;

/// Who is pushing: anyone, into the shared set, or the owner of a set.
enum Pusher<'a> {
    Shared,
    /// Only ever built by a `Producer` holding the claim on `set`, with its
    /// cache of each lane's `done` position.
    Owner {
        set: usize,
        cached_done: &'a mut [usize; 3],
    },
}

impl Pusher<'_> {
    fn set(&self) -> usize {
        match self {
            Pusher::Shared => SHARED,
            Pusher::Owner { set, .. } => *set,
        }
    }

    /// Pushes `event` (ranked by its own priority) into this pusher's lane
    /// for `lane`.
    #[inline]
    fn push<S: Storage<Event>, const SETS: usize>(
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
    fn push_cold<S: Storage<Event>, const SETS: usize>(
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
    fn evict<S: Storage<Event>, const SETS: usize>(
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
    set: usize,
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

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::event::{KeyId, Kind};
    use core::num::NonZeroU16;
    use std::sync::Arc;
    use std::sync::atomic::AtomicU32;
    use std::vec::Vec;

    const SMALL: LaneCapacities = LaneCapacities {
        high: 2,
        medium: 4,
        low: 2,
    };

    /// The shared set plus two owned sets of `SMALL` lanes.
    type Small = StaticLanes<24, 3>;

    fn lanes(policy: DropPolicy) -> Small {
        Small::new(SMALL, policy).unwrap()
    }

    fn ev(id: u32, priority: Priority) -> Event {
        Event::new(KeyId(id), Kind::Counter, 1.0, u64::from(id), priority)
    }

    fn drain_ids(l: &Small) -> Vec<u32> {
        let mut out = Vec::new();
        l.consumer()
            .unwrap()
            .drain(usize::MAX, |e| out.push(e.key.get()));
        out
    }

    /// Runs `check` once pushing through the shared set and once through an
    /// owned producer: both paths apply the same policy.
    fn both_paths(
        policy: DropPolicy,
        check: impl Fn(&Small, &mut dyn FnMut(Event) -> Result<(), DropReason>),
    ) {
        let l = lanes(policy);
        check(&l, &mut |e| l.push(e));
        let l = lanes(policy);
        let mut p = l.producer().unwrap();
        check(&l, &mut |e| p.push(e));
    }

    #[test]
    fn drains_in_priority_order_fifo_within_a_lane() {
        both_paths(DropPolicy::DropNewest, |l, push| {
            push(ev(1, Priority::Low)).unwrap();
            push(ev(2, Priority::Medium)).unwrap();
            push(ev(3, Priority::High)).unwrap();
            push(ev(4, Priority::Low)).unwrap();
            push(ev(5, Priority::High)).unwrap();
            assert_eq!(l.len_total(), 5);
            assert_eq!(l.len(Priority::High), 2);
            assert_eq!(drain_ids(l), [3, 5, 2, 1, 4]);
            assert_eq!(l.len_total(), 0);
        });
    }

    /// A set handed back with events still queued is not claimed again
    /// until they are drained: the next producer gets an empty set, or
    /// none (and pushes through the shared set) while there is none.
    #[test]
    fn a_producer_is_given_an_empty_set() {
        let l = lanes(DropPolicy::DropNewest);
        let mut a = l.producer().unwrap();
        for i in 0..4 {
            a.push(ev(i, Priority::Medium)).unwrap(); // full
        }
        drop(a);
        let mut b = l.producer().unwrap();
        b.push(ev(10, Priority::Medium)).unwrap();
        assert!(
            l.producer().is_none(),
            "the other set is taken or not empty"
        );
        drop(b);
        assert_eq!(drain_ids(&l).len(), 5);
        let c = l.producer().unwrap();
        let d = l.producer().unwrap();
        assert_ne!(c.set, d.set);
    }

    /// The storage decides how many sets there are, up to `SETS`.
    #[test]
    fn storage_for_fewer_sets_makes_fewer_sets() {
        let slots = |sets: usize| -> Vec<Slot<Event>> {
            (0..sets * SMALL.total()).map(|_| Slot::new()).collect()
        };
        let mut two = slots(2);
        let l: Lanes<_, 8> =
            Lanes::with_storage(&mut two[..], SMALL, DropPolicy::DropNewest).unwrap();
        assert_eq!((l.sets(), l.capacity_total()), (2, 16));
        let mut p = l.producer().unwrap();
        assert!(l.producer().is_none(), "one owned set");
        p.push(ev(1, Priority::High)).unwrap();
        l.push(ev(2, Priority::High)).unwrap();
        let mut got = Vec::new();
        l.consumer()
            .unwrap()
            .drain(usize::MAX, |e| got.push(e.key.get()));
        got.sort_unstable();
        assert_eq!(got, [1, 2]);
        drop(p);
        let mut one = slots(1);
        let shared_only: Lanes<_, 8> =
            Lanes::with_storage(&mut one[..], SMALL, DropPolicy::DropNewest).unwrap();
        assert!(shared_only.producer().is_none());
        for bad in [0, 9] {
            let mut storage = slots(bad);
            assert_eq!(
                Lanes::<_, 8>::with_storage(&mut storage[..], SMALL, DropPolicy::DropNewest).err(),
                Some(LanesError::StorageSize {
                    needed: 64,
                    got: bad * 8
                })
            );
        }
    }

    #[test]
    fn drain_takes_every_set_high_before_any_medium() {
        let l = lanes(DropPolicy::DropNewest);
        let mut a = l.producer().unwrap();
        let mut b = l.producer().unwrap();
        a.push(ev(1, Priority::Medium)).unwrap();
        b.push(ev(2, Priority::High)).unwrap();
        l.push(ev(3, Priority::Low)).unwrap();
        a.push(ev(4, Priority::High)).unwrap();
        let mut got = drain_ids(&l);
        got[..2].sort_unstable();
        assert_eq!(got, [2, 4, 1, 3]);
    }

    #[test]
    fn drain_respects_max_and_rotates_sets() {
        let l = lanes(DropPolicy::DropNewest);
        let mut a = l.producer().unwrap();
        let mut b = l.producer().unwrap();
        for i in 0..4 {
            a.push(ev(i, Priority::Medium)).unwrap();
            b.push(ev(10 + i, Priority::Medium)).unwrap();
        }
        // One event per drain: the starting set rotates, so both sets are served.
        let mut firsts = Vec::new();
        let mut c = l.consumer().unwrap();
        for _ in 0..3 {
            assert_eq!(c.drain(1, |e| firsts.push(e.key.get())), 1);
        }
        assert!(firsts.iter().any(|&id| id < 10) && firsts.iter().any(|&id| id >= 10));
        assert_eq!(l.len_total(), 5);
        assert_eq!(c.drain(0, |_| ()), 0);
        // One consumer at a time.
        assert!(l.consumer().is_none());
        drop(c);
        assert!(l.consumer().is_some());
    }

    /// A sink that panics loses only what it was handed: the lane it failed
    /// on was copied out and released first, so later pushes and drains work
    /// (owned and shared sets).
    #[test]
    fn a_panicking_sink_leaves_the_lanes_consistent() {
        for owned in [true, false] {
            let l = lanes(DropPolicy::DropNewest);
            let mut p = l.producer().unwrap();
            let mut push = |e| if owned { p.push(e) } else { l.push(e) };
            for i in 0..4 {
                push(ev(i, Priority::Medium)).unwrap();
            }
            let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                l.consumer()
                    .unwrap()
                    .drain(usize::MAX, |_| panic!("sink failed"));
            }));
            assert!(caught.is_err());
            assert_eq!(l.len_total(), 0, "owned: {owned}");
            for i in 10..14 {
                push(ev(i, Priority::Medium)).unwrap();
            }
            assert_eq!(drain_ids(&l), [10, 11, 12, 13], "owned: {owned}");
        }
    }

    #[test]
    fn producers_are_exclusive_and_released_on_drop() {
        let l = lanes(DropPolicy::DropNewest);
        let a = l.producer().unwrap();
        let mut b = l.producer().unwrap();
        assert!(l.producer().is_none(), "only two owned sets");
        b.push(ev(7, Priority::Low)).unwrap();
        drop(b);
        // The set comes back once what was queued in it is drained.
        assert!(l.producer().is_none());
        assert_eq!(drain_ids(&l), [7]);
        let mut c = l.producer().unwrap();
        c.push(ev(8, Priority::Low)).unwrap();
        assert_eq!(drain_ids(&l), [8]);
        drop(a);
        assert!(l.producer().is_some());
        let only_shared: StaticLanes<8> = StaticLanes::new(SMALL, DropPolicy::DropNewest).unwrap();
        assert!(only_shared.producer().is_none());
    }

    #[test]
    fn producer_over_an_arc() {
        let l = Arc::new(lanes(DropPolicy::DropNewest));
        let mut p = Producer::claim(l.clone()).unwrap();
        std::thread::spawn(move || p.push(ev(1, Priority::High)).unwrap())
            .join()
            .unwrap();
        assert_eq!(drain_ids(&l), [1]);
    }

    #[test]
    fn drop_newest_refuses_and_counts() {
        both_paths(DropPolicy::DropNewest, |l, push| {
            push(ev(1, Priority::High)).unwrap();
            push(ev(2, Priority::High)).unwrap();
            assert_eq!(push(ev(3, Priority::High)), Err(DropReason::LaneFull));
            assert_eq!(l.drops().get(DropReason::LaneFull, Priority::High), 1);
            assert_eq!(drain_ids(l), [1, 2]);
        });
    }

    #[test]
    fn drop_oldest_evicts_the_head() {
        both_paths(DropPolicy::DropOldest, |l, push| {
            for i in 1..=4 {
                push(ev(i, Priority::High)).unwrap();
            }
            assert_eq!(l.drops().get(DropReason::EvictedOldest, Priority::High), 2);
            assert_eq!(drain_ids(l), [3, 4]);
        });
    }

    #[test]
    fn by_priority_overflows_then_evicts_lower_then_refuses() {
        both_paths(DropPolicy::DropByPriority, |l, push| {
            push(ev(1, Priority::Low)).unwrap();
            push(ev(2, Priority::Medium)).unwrap();
            for i in 10..12 {
                push(ev(i, Priority::High)).unwrap(); // fills the high lane
            }
            // Overflow into lower lanes with room, lowest first: nothing dropped.
            for i in 12..16 {
                push(ev(i, Priority::High)).unwrap(); // low: 1,12  medium: 2,13,14,15
            }
            assert_eq!(l.drops().total(), 0);
            // No room anywhere: evict the oldest low event (1); 16 takes its place.
            push(ev(16, Priority::High)).unwrap();
            assert_eq!(
                l.drops().get(DropReason::EvictedByPriority, Priority::Low),
                1
            );
            // The low lane's head is now a high event (12): the medium 2 goes.
            push(ev(17, Priority::High)).unwrap();
            assert_eq!(
                l.drops()
                    .get(DropReason::EvictedByPriority, Priority::Medium),
                1
            );
            // Everything left is high: one high goes (the newest in the
            // shared set; in an owned set, the last one the search moved).
            assert_eq!(push(ev(18, Priority::High)), Err(DropReason::LaneFull));
            assert_eq!(l.drops().get(DropReason::LaneFull, Priority::High), 1);
            // A low event cannot evict anything.
            assert_eq!(push(ev(19, Priority::Low)), Err(DropReason::LaneFull));
            let got = drain_ids(l);
            assert_eq!(got.len(), 8);
            assert!(got.iter().all(|id| (10..=18).contains(id)), "{got:?}");
            assert_eq!(l.drops().total(), 4);
            // Moves are not pushes: everything pushed was taken out.
            assert_eq!(l.pushed(), l.popped());
        });
    }

    #[test]
    fn an_overflowed_high_event_does_not_shield_the_low_ones_behind_it() {
        let l = lanes(DropPolicy::DropByPriority);
        let mut p = l.producer().unwrap();
        p.push(ev(1, Priority::High)).unwrap();
        p.push(ev(2, Priority::High)).unwrap(); // the high lane is full
        p.push(ev(3, Priority::High)).unwrap(); // overflows: low [3]
        p.push(ev(4, Priority::Low)).unwrap(); // low [3, 4]: full
        for i in 5..9 {
            p.push(ev(i, Priority::High)).unwrap(); // medium [5, 6, 7, 8]: full
        }
        // Every head is high, but a low event waits behind 3: it goes, and
        // 3 moves to the back.
        p.push(ev(9, Priority::High)).unwrap();
        assert_eq!(l.drops().by_priority(Priority::High), 0);
        assert_eq!(
            l.drops().get(DropReason::EvictedByPriority, Priority::Low),
            1
        );
        let mut got = drain_ids(&l);
        got.sort_unstable();
        assert_eq!(got, [1, 2, 3, 5, 6, 7, 8, 9]);
        assert_eq!(l.pushed(), l.popped());
        // Nine accepted (4 later evicted); moving 3 was not a push.
        assert_eq!(l.pushed(), 9);
    }

    #[test]
    fn by_priority_never_evicts_equal_priority() {
        both_paths(DropPolicy::DropByPriority, |l, push| {
            for i in 0..6 {
                push(ev(i, Priority::Medium)).unwrap(); // medium 4 + low 2
            }
            assert_eq!(push(ev(6, Priority::Medium)), Err(DropReason::LaneFull));
            assert_eq!(l.drops().by_reason(DropReason::EvictedByPriority), 0);
            assert_eq!(l.len_total(), 6);
        });
    }

    #[test]
    fn sampled_keeps_one_in_n_past_threshold() {
        let policy = DropPolicy::DropSampled {
            keep_one_in: NonZeroU16::new(2).unwrap(),
            threshold_percent: 50,
        };
        both_paths(policy, |l, push| {
            // Medium lane holds 4; sampling starts at 2 queued.
            let results: Vec<_> = (0..6).map(|i| push(ev(i, Priority::Medium))).collect();
            assert_eq!(
                results,
                [
                    Ok(()),
                    Ok(()),
                    Ok(()), // tick 0 kept
                    Err(DropReason::Sampled),
                    Ok(()), // tick 2 kept
                    Err(DropReason::Sampled),
                ]
            );
            // Lane full: tick 4 is kept by sampling but refused by the lane.
            assert_eq!(push(ev(6, Priority::Medium)), Err(DropReason::LaneFull));
            assert_eq!(l.drops().by_reason(DropReason::Sampled), 2);
            assert_eq!(drain_ids(l), [0, 1, 2, 4]);
        });
    }

    #[test]
    fn sampling_above_100_percent_never_starts() {
        let policy = DropPolicy::DropSampled {
            keep_one_in: NonZeroU16::new(10).unwrap(),
            threshold_percent: 101,
        };
        both_paths(policy, |l, push| {
            for i in 0..4 {
                push(ev(i, Priority::Medium)).unwrap();
            }
            assert_eq!(push(ev(9, Priority::Medium)), Err(DropReason::LaneFull));
            assert_eq!(l.drops().by_reason(DropReason::Sampled), 0);
        });
    }

    #[test]
    fn try_push_hands_back_without_counting() {
        let l = lanes(DropPolicy::DropByPriority);
        let mut p = l.producer().unwrap();
        for i in 0..2 {
            l.try_push(ev(i, Priority::High)).unwrap();
            p.try_push(ev(10 + i, Priority::High)).unwrap();
        }
        assert_eq!(
            l.try_push(ev(3, Priority::High)),
            Err(ev(3, Priority::High))
        );
        assert_eq!(
            p.try_push(ev(13, Priority::High)),
            Err(ev(13, Priority::High))
        );
        assert_eq!(l.drops().total(), 0);
        assert_eq!(l.len(Priority::Low), 0);
        assert_eq!(l.len(Priority::High), 4);
    }

    #[test]
    fn construction_errors_are_typed() {
        let bad = LaneCapacities { high: 3, ..SMALL };
        assert_eq!(
            StaticLanes::<9>::new(bad, DropPolicy::default()).err(),
            Some(LanesError::Capacity {
                priority: Priority::High,
                len: 3
            })
        );
        assert_eq!(
            StaticLanes::<10>::new(SMALL, DropPolicy::default()).err(),
            Some(LanesError::StorageSize { needed: 8, got: 10 })
        );
        assert_eq!(
            StaticLanes::<0, 0>::new(SMALL, DropPolicy::default()).err(),
            Some(LanesError::NoSets)
        );
        let mut slots: [Slot<Event>; 16] = [const { Slot::new() }; 16];
        let l: Lanes<_, 2> =
            Lanes::with_storage(&mut slots[..], SMALL, DropPolicy::DropNewest).unwrap();
        l.producer().unwrap().push(ev(1, Priority::Low)).unwrap();
        assert_eq!(l.len(Priority::Low), 1);
        assert_eq!(l.capacity_total(), 16);
        assert!(
            std::format!("{}", LanesError::StorageSize { needed: 8, got: 10 }).contains("10 slots")
        );
    }

    /// Owned producers and shared pushers on several threads under every
    /// policy while the consumer drains: each event is drained exactly once
    /// or counted as dropped, never both, never neither.
    #[test]
    fn concurrent_conservation_under_every_policy() {
        let policies = [
            DropPolicy::DropNewest,
            DropPolicy::DropOldest,
            DropPolicy::DropByPriority,
            DropPolicy::DropSampled {
                keep_one_in: NonZeroU16::new(3).unwrap(),
                threshold_percent: 50,
            },
        ];
        let per_thread: u32 = if cfg!(miri) { 40 } else { 50_000 };
        // Two threads own a set each; two more share set 0.
        const THREADS: u32 = 4;
        for policy in policies {
            let lanes = Arc::new(lanes(policy));
            let total = THREADS * per_thread;
            let drained: Arc<Vec<AtomicU32>> =
                Arc::new((0..total).map(|_| AtomicU32::new(0)).collect());
            let refused = Arc::new(AtomicU32::new(0));
            let producers: Vec<_> = (0..THREADS)
                .map(|t| {
                    let lanes = lanes.clone();
                    let refused = refused.clone();
                    std::thread::spawn(move || {
                        let mut own = if t < 2 {
                            Producer::claim(&*lanes)
                        } else {
                            None
                        };
                        for i in 0..per_thread {
                            let id = t * per_thread + i;
                            let e = ev(id, Priority::ALL[(id % 3) as usize]);
                            let result = match own.as_mut() {
                                Some(p) => p.push(e),
                                None => lanes.push(e),
                            };
                            if result.is_err() {
                                refused.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    })
                })
                .collect();
            let mut consumer = lanes.consumer().unwrap();
            let mut drain = || {
                consumer.drain(7, |e| {
                    drained[e.key.get() as usize].fetch_add(1, Ordering::Relaxed);
                })
            };
            while !producers.iter().all(|p| p.is_finished()) {
                if drain() == 0 {
                    std::thread::yield_now();
                }
            }
            for p in producers {
                p.join().unwrap();
            }
            while drain() > 0 {}
            let delivered: u32 = drained.iter().map(|c| c.load(Ordering::Relaxed)).sum();
            assert!(
                drained.iter().all(|c| c.load(Ordering::Relaxed) <= 1),
                "{policy:?}"
            );
            let dropped = lanes.drops().total() as u32;
            assert_eq!(delivered + dropped, total, "{policy:?}");
            let evicted = (lanes.drops().by_reason(DropReason::EvictedOldest)
                + lanes.drops().by_reason(DropReason::EvictedByPriority))
                as u32;
            assert_eq!(
                refused.load(Ordering::Relaxed) + evicted,
                dropped,
                "{policy:?}"
            );
            assert_eq!(lanes.pushed(), lanes.popped());
            assert_eq!(lanes.len_total(), 0);
        }
    }
}
