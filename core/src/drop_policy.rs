//! What happens to an event when its lane is full, and how drops are counted.
//!
//! Every event that does not reach the consumer is counted here exactly once,
//! by [`DropReason`] and by the dropped event's [`Priority`]. The reason names
//! the policy that made the choice, so the counts also read "by policy".
//! [`DropMonitor`] turns the running total into edge-triggered
//! "dropping started / stopped" signals so an adapter warns once, not once
//! per event.

use crate::event::Priority;
use crate::sync::{AtomicUsize, Ordering};
use core::fmt;
use core::num::NonZeroU16;

/// How a lane makes room, or refuses, when it is full.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DropPolicy {
    /// Refuse the incoming event.
    DropNewest,
    /// Evict the oldest event of the lane to make room for the incoming one.
    DropOldest,
    /// The default. Put the incoming event in a lower-priority lane that has
    /// room; failing that, evict the oldest event of a lower-priority lane
    /// (lowest lane first) if that event ranks below the incoming one; failing
    /// that, refuse the incoming event.
    #[default]
    DropByPriority,
    /// Once a lane is at least `threshold_percent` full, keep only one event in
    /// `keep_one_in` (the others are dropped as [`DropReason::Sampled`]); a
    /// lane that is full anyway refuses the event.
    DropSampled {
        /// Keep one event of this many once past the threshold.
        keep_one_in: NonZeroU16,
        /// Lane utilization, in percent, at which sampling starts. Above 100
        /// sampling never starts.
        threshold_percent: u8,
    },
}

/// Why an event was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum DropReason {
    /// The incoming event was refused: its lane was full (and under
    /// `DropByPriority`, nothing lower could make room).
    LaneFull = 0,
    /// A queued event was evicted by `DropOldest` to make room.
    EvictedOldest = 1,
    /// A queued event was evicted by a higher-priority one (`DropByPriority`).
    EvictedByPriority = 2,
    /// The event was sampled out by `DropSampled`.
    Sampled = 3,
    /// The incoming event was refused by a full lane while the exporter's
    /// circuit breaker was open (nothing was being sent).
    CircuitOpen = 4,
}

impl DropReason {
    /// Every reason, in code order.
    pub const ALL: [DropReason; 5] = [
        DropReason::LaneFull,
        DropReason::EvictedOldest,
        DropReason::EvictedByPriority,
        DropReason::Sampled,
        DropReason::CircuitOpen,
    ];

    /// A stable snake_case name for logs and metric labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            DropReason::LaneFull => "lane_full",
            DropReason::EvictedOldest => "evicted_oldest",
            DropReason::EvictedByPriority => "evicted_by_priority",
            DropReason::Sampled => "sampled",
            DropReason::CircuitOpen => "circuit_open",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

const REASONS: usize = DropReason::ALL.len();
const PRIORITIES: usize = Priority::ALL.len();

/// Drop counts by reason and priority, updated lock-free by producers.
///
/// Counters are `usize` (no 64-bit atomics on 32-bit targets) and wrap; the
/// consumer turns them into 64-bit totals by taking differences.
pub struct DropCounters {
    counts: [[AtomicUsize; PRIORITIES]; REASONS],
}

impl fmt::Debug for DropCounters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DropCounters")
            .field("total", &self.total())
            .finish()
    }
}

impl DropCounters {
    #[cfg(not(loom))]
    pub(crate) const fn new() -> Self {
        DropCounters {
            counts: [const { [const { AtomicUsize::new(0) }; PRIORITIES] }; REASONS],
        }
    }

    #[cfg(loom)]
    pub(crate) fn new() -> Self {
        DropCounters {
            counts: core::array::from_fn(|_| core::array::from_fn(|_| AtomicUsize::new(0))),
        }
    }

    /// Counts a drop. Not inlined: drops are the slow path, and one shared
    /// copy of an atomic add (a critical section on a Cortex-M0) is smaller.
    #[inline(never)]
    pub(crate) fn count(&self, reason: DropReason, priority: Priority) {
        self.counts[reason as usize][priority.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// Events dropped for `reason` that had `priority`.
    pub fn get(&self, reason: DropReason, priority: Priority) -> usize {
        self.counts[reason as usize][priority.index()].load(Ordering::Relaxed)
    }

    /// Events dropped for `reason`, all priorities.
    pub fn by_reason(&self, reason: DropReason) -> usize {
        Priority::ALL
            .iter()
            .fold(0, |sum, &p| sum.wrapping_add(self.get(reason, p)))
    }

    /// Events of `priority` dropped, all reasons.
    pub fn by_priority(&self, priority: Priority) -> usize {
        DropReason::ALL
            .iter()
            .fold(0, |sum, &r| sum.wrapping_add(self.get(r, priority)))
    }

    /// Every drop.
    pub fn total(&self) -> usize {
        DropReason::ALL
            .iter()
            .fold(0, |sum, &r| sum.wrapping_add(self.by_reason(r)))
    }
}

/// A change in whether the pipeline is dropping events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DropEdge {
    /// Drops began since the last observation (after a quiet one).
    Started {
        /// Drops seen in this observation.
        dropped: u64,
    },
    /// An observation saw no new drops after a period of dropping.
    Stopped {
        /// Drops during the whole episode.
        dropped: u64,
    },
}

/// Turns a running drop total into edge-triggered signals.
///
/// The consumer calls [`DropMonitor::observe`] with [`DropCounters::total`]
/// each time it drains; it gets `Some` only when dropping starts or stops.
#[derive(Clone, Copy, Debug, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DropMonitor {
    last_total: usize,
    episode: Option<u64>,
}

impl DropMonitor {
    /// A monitor that has seen no drops.
    pub const fn new() -> Self {
        DropMonitor {
            last_total: 0,
            episode: None,
        }
    }

    /// Feeds the current total; reports a start or stop edge.
    pub fn observe(&mut self, total: usize) -> Option<DropEdge> {
        let new = total.wrapping_sub(self.last_total) as u64;
        self.last_total = total;
        match (self.episode, new) {
            (None, 0) => None,
            (None, dropped) => {
                self.episode = Some(dropped);
                Some(DropEdge::Started { dropped })
            }
            (Some(dropped), 0) => {
                self.episode = None;
                Some(DropEdge::Stopped { dropped })
            }
            (Some(sum), more) => {
                self.episode = Some(sum + more);
                None
            }
        }
    }

    /// Whether the last observation was part of a dropping episode.
    pub fn is_dropping(&self) -> bool {
        self.episode.is_some()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn counters_sum_by_reason_and_priority() {
        let c = DropCounters::new();
        c.count(DropReason::LaneFull, Priority::High);
        c.count(DropReason::LaneFull, Priority::Low);
        c.count(DropReason::Sampled, Priority::Low);
        assert_eq!(c.get(DropReason::LaneFull, Priority::High), 1);
        assert_eq!(c.by_reason(DropReason::LaneFull), 2);
        assert_eq!(c.by_priority(Priority::Low), 2);
        assert_eq!(c.total(), 3);
    }

    #[test]
    fn monitor_fires_once_per_edge() {
        let mut m = DropMonitor::new();
        assert_eq!(m.observe(0), None);
        assert_eq!(m.observe(3), Some(DropEdge::Started { dropped: 3 }));
        assert!(m.is_dropping());
        assert_eq!(m.observe(10), None);
        assert_eq!(m.observe(12), None);
        assert_eq!(m.observe(12), Some(DropEdge::Stopped { dropped: 12 }));
        assert_eq!(m.observe(12), None);
        assert_eq!(m.observe(13), Some(DropEdge::Started { dropped: 1 }));
    }

    #[test]
    fn monitor_handles_counter_wrap() {
        let mut m = DropMonitor {
            last_total: usize::MAX - 1,
            episode: None,
        };
        assert_eq!(m.observe(1), Some(DropEdge::Started { dropped: 3 }));
    }

    #[test]
    fn reasons_have_stable_names() {
        let names: std::vec::Vec<_> = DropReason::ALL
            .iter()
            .map(|r| std::format!("{r}"))
            .collect();
        assert_eq!(
            names,
            [
                "lane_full",
                "evicted_oldest",
                "evicted_by_priority",
                "sampled",
                "circuit_open"
            ]
        );
    }
}
