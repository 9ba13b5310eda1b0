//! The client's lanes: how many sets it makes at most, and their type.

use stats_core::{Event, Lanes, Slot};

/// The most lane sets: the shared one plus one owned by each of up to 64
/// recording threads (`lane_sets` says how many are made; more threads
/// share set 0).
pub(crate) const SETS: usize = 65;

/// The lanes as the std adapter allocates them.
pub(crate) type StdLanes = Lanes<Box<[Slot<Event>]>, SETS>;
