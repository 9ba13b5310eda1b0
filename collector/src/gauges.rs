//! A batch's gauge values, not yet applied: a receiving thread gathers
//! them per series and applies them to the series' cell
//! ([`GaugeCell`], shared by every shard) once, at the batch's end, so
//! that two threads writing one gauge meet once a batch, not once a
//! value.

use crate::aggregation::GaugeCell;
use crate::memory::Memory;

/// A batch's values for one gauge: from its last absolute value on (what
/// came before it no longer matters).
#[derive(Clone, Debug, Default)]
pub(crate) struct Pending {
    values: Vec<(f64, bool)>,
    arrival: u64,
}

impl Pending {
    /// Adds a value (a change when `relative`) that arrived at `arrival`.
    pub(crate) fn push(&mut self, value: f64, relative: bool, arrival: u64) {
        if !relative {
            self.values.clear();
        }
        self.values.push((value, relative));
        self.arrival = arrival;
    }

    /// Whether nothing is pending.
    pub(crate) fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Applies what is pending to `cell`; how many values were refused.
    pub(crate) fn apply(&mut self, cell: &GaugeCell, memory: &Memory) -> u64 {
        let refused = cell.apply(self.arrival, &self.values, memory);
        self.values.clear();
        refused
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregation::Aggregate;

    #[test]
    fn a_batch_applies_as_its_values_one_by_one() {
        let (cell, memory) = (GaugeCell::default(), Memory::new(1 << 20));
        let mut p = Pending::default();
        p.push(1.0, true, 1);
        p.push(10.0, false, 2);
        p.push(-3.0, true, 3);
        assert_eq!(p.apply(&cell, &memory), 0);
        assert_eq!(cell.read(), (3, Aggregate::Gauge(7.0)));
        assert!(p.is_empty());
        // A change from another batch applies to the value as it stands.
        p.push(0.5, true, 9);
        p.apply(&cell, &memory);
        assert_eq!(cell.read(), (9, Aggregate::Gauge(7.5)));
        p.push(f64::MAX, true, 10);
        p.push(f64::MAX, true, 10);
        assert_eq!(
            p.apply(&cell, &memory),
            1,
            "the second would make it infinite"
        );
        assert_eq!(cell.read().1, Aggregate::Gauge(f64::MAX));
        // A value that is not finite is refused where it is applied.
        p.push(f64::NAN, false, 11);
        p.push(-f64::MAX, true, 11);
        assert_eq!(p.apply(&cell, &memory), 1);
        assert_eq!(cell.read(), (11, Aggregate::Gauge(0.0)));
    }
}
