//! Recording from tasks and interrupt handlers.

use stats_core::{DropReason, Event, KeyId, Kind, Lanes, Priority, Producer, Storage};

/// Records into the shared lane set: from any task or interrupt handler,
/// without blocking or allocating (a compare-and-swap per event; on cores
/// without one, a few-instruction critical section). Copy it freely.
pub struct Recorder<'a, S, const SETS: usize> {
    lanes: &'a Lanes<S, SETS>,
}

impl<S, const SETS: usize> Clone for Recorder<'_, S, SETS> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S, const SETS: usize> Copy for Recorder<'_, S, SETS> {}

/// Records into a lane set owned by one task: no read-modify-write per
/// event (the fastest path). Claim one per task with
/// [`Recorder::claim_set`].
pub struct TaskRecorder<'a, S, const SETS: usize> {
    producer: Producer<&'a Lanes<S, SETS>>,
}

/// Value, kind and priority of an event, stamped now.
fn event(key: KeyId, kind: Kind, value: f64, priority: Priority) -> Event {
    Event::new(key, kind, value, crate::now_ns(), priority)
}

impl<'a, S: Storage<Event>, const SETS: usize> Recorder<'a, S, SETS> {
    /// A recorder for `lanes`.
    pub const fn new(lanes: &'a Lanes<S, SETS>) -> Self {
        Recorder { lanes }
    }

    /// Records one event, stamped with `embassy_time::Instant::now()`.
    /// `Err` says why it was dropped (already counted).
    #[inline]
    pub fn record(
        &self,
        key: KeyId,
        kind: Kind,
        value: f64,
        priority: Priority,
    ) -> Result<(), DropReason> {
        self.lanes.push(event(key, kind, value, priority))
    }

    /// Claims a lane set for one task, or `None` if all are taken.
    pub fn claim_set(&self) -> Option<TaskRecorder<'a, S, SETS>> {
        Producer::claim(self.lanes).map(|producer| TaskRecorder { producer })
    }
}

impl<S: Storage<Event>, const SETS: usize> TaskRecorder<'_, S, SETS> {
    /// Records one event, stamped now. `Err` says why it was dropped
    /// (already counted).
    #[inline]
    pub fn record(
        &mut self,
        key: KeyId,
        kind: Kind,
        value: f64,
        priority: Priority,
    ) -> Result<(), DropReason> {
        self.producer.push(event(key, kind, value, priority))
    }
}
