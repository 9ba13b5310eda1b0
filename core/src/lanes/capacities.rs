//! The sizes of a set's lanes ([`LaneCapacities`]), the checks that
//! capacities and storage must pass, and why they fail ([`LanesError`]).

use crate::event::Priority;
use core::fmt;

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
    /// sets for [`StaticLanes`](super::StaticLanes)).
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

/// Slot offsets of the lanes within a set: high first, then medium, then low.
pub(super) const fn starts(c: &LaneCapacities) -> [usize; 3] {
    [c.high + c.medium, c.high, 0]
}

/// Lane capacities indexed by [`Priority::index`].
pub(super) const fn lane_caps(c: &LaneCapacities) -> [usize; 3] {
    [c.low, c.medium, c.high]
}

/// Checks the capacities and that `got` slots are `k` whole sets, `k`
/// from 1 to `sets` (exactly `sets` when `exact`); gives `k`.
pub(super) const fn check(
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
