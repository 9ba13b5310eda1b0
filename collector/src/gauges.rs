//! Gauges fed by events: one cell a series, shared by every receiving
//! thread, so that a gauge's last value, and a change applied to it, is
//! one value whichever thread its datagram came in on. A thread gathers
//! its batch's gauge events per series ([`Pending`]) and applies them to
//! the cells once, at the batch's end: two threads writing one gauge meet
//! once a batch, not once an event.

use std::sync::Mutex;

/// A gauge's value and when it last changed (the collector's arrival
/// count; 0: never set).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Gauge {
    pub(crate) arrival: u64,
    pub(crate) value: f64,
}

/// One series' gauge, shared.
#[derive(Debug, Default)]
pub(crate) struct GaugeCell(Mutex<Gauge>);

/// The bytes a cell holds (its allocation's own included).
pub(crate) const CELL_BYTES: u64 =
    (size_of::<GaugeCell>() + 2 * size_of::<usize>()) as u64 + crate::memory::ALLOCATION_BYTES;

impl GaugeCell {
    /// The gauge as it stands.
    pub(crate) fn get(&self) -> Gauge {
        self.0.lock().map_or_else(|e| *e.into_inner(), |g| *g)
    }

    /// Sets the gauge to `value` at `arrival`.
    pub(crate) fn set(&self, arrival: u64, value: f64) {
        self.apply(arrival, &[(value, false)]);
    }

    /// Applies `events` (value, relative), in order, at `arrival`: a
    /// change that would make the value not finite is refused. How many
    /// were refused.
    pub(crate) fn apply(&self, arrival: u64, events: &[(f64, bool)]) -> u64 {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let mut refused = 0;
        for &(value, relative) in events {
            let new = if relative { g.value + value } else { value };
            if new.is_finite() {
                g.value = new;
            } else {
                refused += 1;
            }
        }
        g.arrival = g.arrival.max(arrival);
        refused
    }
}

/// A batch's events for one gauge, not yet applied: from its last
/// absolute value on (what came before it no longer matters).
#[derive(Clone, Debug, Default)]
pub(crate) struct Pending {
    events: Vec<(f64, bool)>,
    arrival: u64,
}

impl Pending {
    /// Adds a value (a change when `relative`) that arrived at `arrival`;
    /// whether the gauge had none pending.
    pub(crate) fn push(&mut self, value: f64, relative: bool, arrival: u64) -> bool {
        let first = self.events.is_empty();
        if !relative {
            self.events.clear();
        }
        self.events.push((value, relative));
        self.arrival = arrival;
        first
    }

    /// Whether nothing is pending.
    pub(crate) fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Applies what is pending to `cell`; how many values were refused.
    pub(crate) fn apply(&mut self, cell: &GaugeCell) -> u64 {
        let refused = cell.apply(self.arrival, &self.events);
        self.events.clear();
        refused
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_applies_as_its_events_one_by_one() {
        let cell = GaugeCell::default();
        let mut p = Pending::default();
        assert!(p.push(1.0, true, 1));
        assert!(!p.push(10.0, false, 2));
        p.push(-3.0, true, 3);
        assert_eq!(p.apply(&cell), 0);
        assert_eq!(
            cell.get(),
            Gauge {
                arrival: 3,
                value: 7.0
            }
        );
        // A change from another batch applies to the value as it stands.
        assert!(p.push(0.5, true, 9));
        p.apply(&cell);
        assert_eq!(
            cell.get(),
            Gauge {
                arrival: 9,
                value: 7.5
            }
        );
        p.push(f64::MAX, true, 10);
        p.push(f64::MAX, true, 10);
        assert_eq!(p.apply(&cell), 1, "the second would make it infinite");
        assert_eq!(cell.get().value, f64::MAX);
    }
}
