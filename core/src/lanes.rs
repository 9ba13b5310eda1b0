//! Three priority lanes with a drop policy: where recorded events wait.
//!
//! Each [`Priority`] has its own lock-free ring (see `ring.rs`); the three
//! share one slot storage, so a `static` can hold all of them and the std
//! adapter can size them at run time. Producers [`Lanes::push`] from any
//! thread or interrupt handler without blocking; the one consumer
//! [`Lanes::drain`]s high before medium before low.
//!
//! When a lane is full the [`DropPolicy`] decides, and every event that does
//! not make it is counted in [`Lanes::drops`] by reason and priority. No event
//! disappears uncounted: at any moment
//!
//! ```text
//! pushes attempted = drained + dropped (all reasons) + len_total()
//! ```
//!
//! Nothing here allocates or panics.

use crate::drop_policy::{DropCounters, DropPolicy, DropReason};
use crate::event::{Event, Priority};
use crate::ring::{CapacityError, Indices, Slot, Storage};
use crate::sync::{AtomicUsize, Ordering};
use core::fmt;

/// Capacity of each lane, in events. Each must be a power of two, at least 2.
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

    /// All lanes together.
    pub const fn total(&self) -> usize {
        self.high + self.medium + self.low
    }
}

impl Default for LaneCapacities {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Slots needed for [`LaneCapacities::DEFAULT`].
pub const DEFAULT_LANE_SLOTS: usize = LaneCapacities::DEFAULT.total();

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
    /// The storage does not hold exactly the sum of the capacities.
    StorageSize {
        /// Slots the capacities need.
        needed: usize,
        /// Slots the storage has.
        got: usize,
    },
}

impl fmt::Display for LanesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            LanesError::Capacity { priority, len } => write!(
                f,
                "{priority:?} lane capacity must be a power of two and at least 2, got {len}"
            ),
            LanesError::StorageSize { needed, got } => {
                write!(f, "lane storage has {got} slots, the capacities need {needed}")
            }
        }
    }
}

impl core::error::Error for LanesError {}

/// Lanes in one array of slots, usable in a `static`.
pub type StaticLanes<const N: usize> = Lanes<[Slot<Event>; N]>;

/// Priority lanes over slot storage `S` (see [`Storage`]).
pub struct Lanes<S> {
    /// Ring indices per lane, indexed by [`Priority::index`].
    indices: [Indices; 3],
    /// Each lane's first slot in the storage, indexed by [`Priority::index`].
    starts: [usize; 3],
    capacities: LaneCapacities,
    slots: S,
    policy: DropPolicy,
    drops: DropCounters,
    sample_ticks: [AtomicUsize; 3],
}

impl<S: Storage<Event>> fmt::Debug for Lanes<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lanes")
            .field("policy", &self.policy)
            .field("capacities", &self.capacities)
            .field("len", &self.len_total())
            .field("dropped", &self.drops.total())
            .finish()
    }
}

// SAFETY: see `Ring`: slot values are only accessed by the thread that
// claimed the slot through the lane's indices, ordered by the slot stamps.
unsafe impl<S: Send> Sync for Lanes<S> {}

/// Storage offsets of the lanes: high first, then medium, then low.
const fn starts(c: &LaneCapacities) -> [usize; 3] {
    [c.high + c.medium, c.high, 0]
}

const fn check(c: &LaneCapacities, got: usize) -> Result<(), LanesError> {
    let mut i = 0;
    while i < Priority::ALL.len() {
        let priority = Priority::ALL[i];
        let len = c.of(priority);
        if len < 2 || !len.is_power_of_two() {
            return Err(LanesError::Capacity { priority, len });
        }
        i += 1;
    }
    if c.total() != got {
        return Err(LanesError::StorageSize {
            needed: c.total(),
            got,
        });
    }
    Ok(())
}

#[cfg(not(loom))]
impl<const N: usize> StaticLanes<N> {
    /// Lanes in an array of `N` slots, which must equal `capacities.total()`.
    ///
    /// ```
    /// use stats_core::{DropPolicy, LaneCapacities, StaticLanes, DEFAULT_LANE_SLOTS};
    /// static LANES: StaticLanes<DEFAULT_LANE_SLOTS> =
    ///     match StaticLanes::new(LaneCapacities::DEFAULT, DropPolicy::DropByPriority) {
    ///         Ok(lanes) => lanes,
    ///         Err(_) => panic!("bad lane capacities"), // evaluated at compile time
    ///     };
    /// assert_eq!(LANES.capacity_total(), 14_336);
    /// ```
    pub const fn new(capacities: LaneCapacities, policy: DropPolicy) -> Result<Self, LanesError> {
        if let Err(e) = check(&capacities, N) {
            return Err(e);
        }
        let mut slots = [const { Slot::new() }; N];
        let starts = starts(&capacities);
        let mut lane = 0;
        while lane < 3 {
            let mut i = 0;
            while i < capacities.of(Priority::ALL[lane]) {
                slots[starts[lane] + i] = Slot::stamped_free(i);
                i += 1;
            }
            lane += 1;
        }
        Ok(Lanes {
            indices: [const { Indices::new() }; 3],
            starts,
            capacities,
            slots,
            policy,
            drops: DropCounters::new(),
            sample_ticks: [const { AtomicUsize::new(0) }; 3],
        })
    }
}

impl<S: Storage<Event>> Lanes<S> {
    /// Lanes over caller-provided slots (for example a `Box<[Slot<Event>]>`
    /// sized from configuration, or a `&'static mut` slice), which must hold
    /// exactly `capacities.total()` slots.
    pub fn with_storage(slots: S, capacities: LaneCapacities, policy: DropPolicy) -> Result<Self, LanesError> {
        check(&capacities, slots.slots().len())?;
        let starts = starts(&capacities);
        for p in Priority::ALL {
            let lane = &slots.slots()[starts[p.index()]..][..capacities.of(p)];
            Indices::init(lane).map_err(|CapacityError { len }| LanesError::Capacity { priority: p, len })?;
        }
        Ok(Lanes {
            indices: core::array::from_fn(|_| Indices::new()),
            starts,
            capacities,
            slots,
            policy,
            drops: DropCounters::new(),
            sample_ticks: core::array::from_fn(|_| AtomicUsize::new(0)),
        })
    }

    #[inline]
    fn lane(&self, priority: Priority) -> (&Indices, &[Slot<Event>]) {
        let i = priority.index();
        let slots = &self.slots.slots()[self.starts[i]..][..self.capacities.of(priority)];
        (&self.indices[i], slots)
    }

    /// Queues `event` in its priority's lane, applying the drop policy if the
    /// lane is full. `Err` says why this event was dropped; it has already been
    /// counted. Events evicted to make room are counted too. Never blocks.
    #[inline]
    pub fn push(&self, event: Event) -> Result<(), DropReason> {
        let priority = event.priority;
        let (indices, slots) = self.lane(priority);
        let rank = priority as u8;
        let event = match self.policy {
            DropPolicy::DropSampled {
                keep_one_in,
                threshold_percent,
            } => {
                let capacity = slots.len();
                let len = indices.len(capacity);
                if len * 100 >= capacity * usize::from(threshold_percent) {
                    let tick = self.sample_ticks[priority.index()].fetch_add(1, Ordering::Relaxed);
                    if tick % usize::from(keep_one_in.get()) != 0 {
                        self.drops.count(DropReason::Sampled, priority);
                        return Err(DropReason::Sampled);
                    }
                }
                match indices.try_push(slots, event, rank) {
                    Ok(()) => return Ok(()),
                    Err(event) => event,
                }
            }
            _ => match indices.try_push(slots, event, rank) {
                Ok(()) => return Ok(()),
                Err(event) => event,
            },
        };
        self.make_room(event)
    }

    /// The slow path of [`Lanes::push`]: the event's own lane is full.
    #[cold]
    fn make_room(&self, mut event: Event) -> Result<(), DropReason> {
        /// Bounds the work one push may do when other producers keep taking
        /// the room it makes (each eviction still made room for someone).
        const ATTEMPTS: usize = 4;
        let priority = event.priority;
        let rank = priority as u8;
        match self.policy {
            DropPolicy::DropOldest => {
                let (indices, slots) = self.lane(priority);
                for _ in 0..ATTEMPTS {
                    if let Some(old) = indices.pop_where(slots, |_| true) {
                        self.drops.count(DropReason::EvictedOldest, old.priority);
                    }
                    match indices.try_push(slots, event, rank) {
                        Ok(()) => return Ok(()),
                        Err(back) => event = back,
                    }
                }
            }
            DropPolicy::DropByPriority => {
                let lower = &Priority::ALL[..priority.index()];
                for &p in lower {
                    let (indices, slots) = self.lane(p);
                    match indices.try_push(slots, event, rank) {
                        Ok(()) => return Ok(()),
                        Err(back) => event = back,
                    }
                }
                for &p in lower {
                    let (indices, slots) = self.lane(p);
                    for _ in 0..ATTEMPTS {
                        let Some(victim) = indices.pop_where(slots, |r| r < rank) else {
                            break;
                        };
                        self.drops.count(DropReason::EvictedByPriority, victim.priority);
                        match indices.try_push(slots, event, rank) {
                            Ok(()) => return Ok(()),
                            Err(back) => event = back,
                        }
                    }
                }
            }
            DropPolicy::DropNewest | DropPolicy::DropSampled { .. } => {}
        }
        self.drops.count(DropReason::LaneFull, priority);
        Err(DropReason::LaneFull)
    }

    /// Queues `event` in its own lane without applying the policy or counting
    /// anything: a full lane hands the event back to the caller.
    #[inline]
    pub fn try_push(&self, event: Event) -> Result<(), Event> {
        let (indices, slots) = self.lane(event.priority);
        indices.try_push(slots, event, event.priority as u8)
    }

    /// Takes up to `max` events, high lane first, then medium, then low, and
    /// hands each to `sink`. Returns how many were taken. Consumer only; a
    /// slot a producer has claimed but not yet published ends that lane's
    /// share of this drain rather than being waited for.
    pub fn drain(&self, max: usize, mut sink: impl FnMut(Event)) -> usize {
        let mut taken = 0;
        for p in [Priority::High, Priority::Medium, Priority::Low] {
            let (indices, slots) = self.lane(p);
            while taken < max {
                let n = indices.pop_batch(slots, max - taken, &mut sink);
                if n == 0 {
                    break;
                }
                taken += n;
            }
        }
        taken
    }

    /// The policy applied when a lane is full.
    pub fn policy(&self) -> DropPolicy {
        self.policy
    }

    /// The lanes' capacities.
    pub fn capacities(&self) -> LaneCapacities {
        self.capacities
    }

    /// Drop counts by reason and priority.
    pub fn drops(&self) -> &DropCounters {
        &self.drops
    }

    /// Events waiting in the lane for `priority` (which may include events of
    /// a higher priority placed there by `DropByPriority`).
    pub fn len(&self, priority: Priority) -> usize {
        self.indices[priority.index()].len(self.capacities.of(priority))
    }

    /// Events waiting in all lanes.
    pub fn len_total(&self) -> usize {
        Priority::ALL.iter().map(|&p| self.len(p)).sum()
    }

    /// Slots in all lanes.
    pub fn capacity_total(&self) -> usize {
        self.capacities.total()
    }

    /// Events accepted into the lanes since they were made (wraps).
    pub fn pushed(&self) -> usize {
        self.indices
            .iter()
            .fold(0, |sum, i| sum.wrapping_add(i.pushed()))
    }

    /// Events taken out of the lanes by drains or evictions (wraps).
    pub fn popped(&self) -> usize {
        self.indices
            .iter()
            .fold(0, |sum, i| sum.wrapping_add(i.popped()))
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

    fn lanes(policy: DropPolicy) -> StaticLanes<8> {
        StaticLanes::new(SMALL, policy).unwrap()
    }

    fn ev(id: u32, priority: Priority) -> Event {
        Event::new(KeyId(id), Kind::Counter, 1.0, u64::from(id), priority)
    }

    fn drain_ids(l: &StaticLanes<8>) -> Vec<u32> {
        let mut out = Vec::new();
        l.drain(usize::MAX, |e| out.push(e.key.get()));
        out
    }

    #[test]
    fn drains_in_priority_order_fifo_within_a_lane() {
        let l = lanes(DropPolicy::DropNewest);
        l.push(ev(1, Priority::Low)).unwrap();
        l.push(ev(2, Priority::Medium)).unwrap();
        l.push(ev(3, Priority::High)).unwrap();
        l.push(ev(4, Priority::Low)).unwrap();
        l.push(ev(5, Priority::High)).unwrap();
        assert_eq!(l.len_total(), 5);
        assert_eq!(drain_ids(&l), [3, 5, 2, 1, 4]);
        assert_eq!(l.len_total(), 0);
    }

    #[test]
    fn drain_respects_max() {
        let l = lanes(DropPolicy::DropNewest);
        for i in 0..4 {
            l.push(ev(i, Priority::Medium)).unwrap();
        }
        let mut n = 0;
        assert_eq!(l.drain(3, |_| n += 1), 3);
        assert_eq!(l.len_total(), 1);
        assert_eq!(l.drain(0, |_| n += 1), 0);
    }

    #[test]
    fn drop_newest_refuses_and_counts() {
        let l = lanes(DropPolicy::DropNewest);
        l.push(ev(1, Priority::High)).unwrap();
        l.push(ev(2, Priority::High)).unwrap();
        assert_eq!(l.push(ev(3, Priority::High)), Err(DropReason::LaneFull));
        assert_eq!(l.drops().get(DropReason::LaneFull, Priority::High), 1);
        assert_eq!(drain_ids(&l), [1, 2]);
    }

    #[test]
    fn drop_oldest_evicts_the_head() {
        let l = lanes(DropPolicy::DropOldest);
        for i in 1..=4 {
            l.push(ev(i, Priority::High)).unwrap();
        }
        assert_eq!(l.drops().get(DropReason::EvictedOldest, Priority::High), 2);
        assert_eq!(drain_ids(&l), [3, 4]);
    }

    #[test]
    fn by_priority_overflows_then_evicts_lower_then_refuses() {
        let l = lanes(DropPolicy::DropByPriority);
        l.push(ev(1, Priority::Low)).unwrap();
        l.push(ev(2, Priority::Medium)).unwrap();
        for i in 10..12 {
            l.push(ev(i, Priority::High)).unwrap(); // fills the high lane
        }
        // Overflow into lower lanes with room, lowest first: nothing dropped.
        for i in 12..16 {
            l.push(ev(i, Priority::High)).unwrap(); // low: 1,12  medium: 2,13,14,15
        }
        assert_eq!(l.drops().total(), 0);
        // No room anywhere: evict the oldest low event (1) into which 16 goes.
        l.push(ev(16, Priority::High)).unwrap();
        assert_eq!(l.drops().get(DropReason::EvictedByPriority, Priority::Low), 1);
        // The low lane's head is now a high event (12): the medium event 2 goes.
        l.push(ev(17, Priority::High)).unwrap();
        assert_eq!(l.drops().get(DropReason::EvictedByPriority, Priority::Medium), 1);
        // Everything left is high: the newest high is refused.
        assert_eq!(l.push(ev(18, Priority::High)), Err(DropReason::LaneFull));
        assert_eq!(l.drops().get(DropReason::LaneFull, Priority::High), 1);
        // A low event cannot evict anything.
        assert_eq!(l.push(ev(19, Priority::Low)), Err(DropReason::LaneFull));
        let mut got = drain_ids(&l);
        got.sort_unstable();
        assert_eq!(got, [10, 11, 12, 13, 14, 15, 16, 17]);
        assert_eq!(l.drops().total(), 4);
    }

    #[test]
    fn by_priority_never_evicts_equal_priority() {
        let l = lanes(DropPolicy::DropByPriority);
        for i in 0..6 {
            l.push(ev(i, Priority::Medium)).unwrap(); // medium 4 + low 2
        }
        assert_eq!(l.push(ev(6, Priority::Medium)), Err(DropReason::LaneFull));
        assert_eq!(l.drops().by_reason(DropReason::EvictedByPriority), 0);
        assert_eq!(l.len_total(), 6);
    }

    #[test]
    fn sampled_keeps_one_in_n_past_threshold() {
        let policy = DropPolicy::DropSampled {
            keep_one_in: NonZeroU16::new(2).unwrap(),
            threshold_percent: 50,
        };
        let l = lanes(policy);
        // Medium lane holds 4; sampling starts at 2 queued.
        let results: Vec<_> = (0..6).map(|i| l.push(ev(i, Priority::Medium))).collect();
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
        assert_eq!(l.push(ev(6, Priority::Medium)), Err(DropReason::LaneFull));
        assert_eq!(l.drops().by_reason(DropReason::Sampled), 2);
        assert_eq!(drain_ids(&l), [0, 1, 2, 4]);
    }

    #[test]
    fn sampling_above_100_percent_never_starts() {
        let policy = DropPolicy::DropSampled {
            keep_one_in: NonZeroU16::new(10).unwrap(),
            threshold_percent: 101,
        };
        let l = lanes(policy);
        for i in 0..4 {
            l.push(ev(i, Priority::Medium)).unwrap();
        }
        assert_eq!(l.push(ev(9, Priority::Medium)), Err(DropReason::LaneFull));
        assert_eq!(l.drops().by_reason(DropReason::Sampled), 0);
    }

    #[test]
    fn try_push_hands_back_without_counting() {
        let l = lanes(DropPolicy::DropByPriority);
        l.try_push(ev(1, Priority::High)).unwrap();
        l.try_push(ev(2, Priority::High)).unwrap();
        assert_eq!(l.try_push(ev(3, Priority::High)), Err(ev(3, Priority::High)));
        assert_eq!(l.drops().total(), 0);
        assert_eq!(l.len(Priority::Low), 0);
    }

    #[test]
    fn construction_errors_are_typed() {
        let bad = LaneCapacities {
            high: 3,
            ..SMALL
        };
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
        let mut slots: [Slot<Event>; 8] = [const { Slot::new() }; 8];
        let l = Lanes::with_storage(&mut slots[..], SMALL, DropPolicy::DropNewest).unwrap();
        l.push(ev(1, Priority::Low)).unwrap();
        assert_eq!(l.len(Priority::Low), 1);
        assert!(std::format!("{}", LanesError::StorageSize { needed: 8, got: 10 }).contains("10 slots"));
    }

    /// Producers on several threads under every policy: each event is
    /// drained exactly once or counted as dropped, never both, never neither.
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
        const THREADS: u32 = 3;
        for policy in policies {
            let lanes = Arc::new(lanes(policy));
            let total = THREADS * per_thread;
            let drained: Arc<Vec<AtomicU32>> = Arc::new((0..total).map(|_| AtomicU32::new(0)).collect());
            let refused = Arc::new(AtomicU32::new(0));
            let producers: Vec<_> = (0..THREADS)
                .map(|t| {
                    let lanes = lanes.clone();
                    let refused = refused.clone();
                    std::thread::spawn(move || {
                        for i in 0..per_thread {
                            let id = t * per_thread + i;
                            if lanes.push(ev(id, Priority::ALL[(id % 3) as usize])).is_err() {
                                refused.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    })
                })
                .collect();
            let drain = || {
                lanes.drain(7, |e| {
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
            assert!(drained.iter().all(|c| c.load(Ordering::Relaxed) <= 1), "{policy:?}");
            let dropped = lanes.drops().total() as u32;
            assert_eq!(delivered + dropped, total, "{policy:?}");
            let evicted = (lanes.drops().by_reason(DropReason::EvictedOldest)
                + lanes.drops().by_reason(DropReason::EvictedByPriority)) as u32;
            assert_eq!(refused.load(Ordering::Relaxed) + evicted, dropped, "{policy:?}");
            assert_eq!(lanes.pushed(), lanes.popped());
        }
    }
}
