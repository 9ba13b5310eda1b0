//! How distributions leave as Prometheus histograms: the `le` boundaries
//! of the classic buckets (configured per metric name, or chosen from
//! what was recorded among the bucket edges, so their counts are exact)
//! and the native histograms' spans.
//!
//! **Default boundaries.** A family's boundaries are powers of
//! `2^(2^-s)`, for the finest `s` from 2 (four a power of two) down to -4
//! (one every 16 powers of two) that covers the values the family holds,
//! all label sets together, with at most [`MAX_DEFAULT_BOUNDS`]
//! boundaries; 0 is a boundary when values at or below 0 were recorded,
//! and negative values get the negated powers. Every such boundary is an
//! edge of the recording scheme's buckets (16 a power of two), so each
//! `le` count is exact. The boundaries follow the recorded range: they
//! only grow as it widens (a boundary can go when the range grows so wide
//! that `s` coarsens, which keeps every other one).
//!
//! **Configured boundaries** (`[histogram_buckets]` in the settings, by
//! the metric name as sent) are used as given, in the unit exported
//! (seconds for timers). A bucket counts under a boundary when its upper
//! edge is at or below it: a configured boundary that is not a power of
//! `2^(1/16)` counts the values of the bucket it cuts above it, so its
//! count is exact only to within that bucket (2.2%).

use crate::aggregation::Distribution;
use stats_core::aggregate::{SCALE, exponential_bound};
use std::collections::BTreeMap;

/// Boundaries a family gets at most by default (besides `+Inf`).
pub const MAX_DEFAULT_BOUNDS: usize = 40;

/// The finest scale default boundaries use: 4 a power of two.
const DEFAULT_SCALE: i32 = 2;

/// The coarsest scale (Prometheus's schema -4).
const MIN_SCALE: i32 = -4;

/// How distributions are exported as histograms.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Histograms {
    /// `le` boundaries by metric name as sent (ascending, in the exported
    /// unit: seconds for timers).
    pub buckets: BTreeMap<String, Vec<f64>>,
    /// Whether remote write sends native histograms (sparse exponential
    /// buckets) instead of classic `le` buckets.
    pub native: bool,
}

/// The exponential index range a family's values cover at one scale:
/// positive buckets, negative ones (by magnitude), and whether any value
/// is in the zero bucket.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Range {
    positive: Option<(i32, i32)>,
    negative: Option<(i32, i32)>,
    zero: bool,
}

fn widen(range: &mut Option<(i32, i32)>, index: i32) {
    *range = Some(match *range {
        None => (index, index),
        Some((lo, hi)) => (lo.min(index), hi.max(index)),
    });
}

impl Range {
    /// The range at a scale `by` steps coarser.
    fn coarser(self, by: u32) -> Range {
        let shift = |r: Option<(i32, i32)>| r.map(|(lo, hi)| (lo >> by, hi >> by));
        Range {
            positive: shift(self.positive),
            negative: shift(self.negative),
            zero: self.zero,
        }
    }

    /// Boundaries at `scale`: the lower edge of the lowest bucket up to the
    /// upper edge of the highest, each sign, and 0 between.
    fn bounds(self, scale: i32) -> Vec<f64> {
        let mut bounds = Vec::new();
        if let Some((lo, hi)) = self.negative {
            bounds.extend((lo..=hi + 1).rev().map(|k| -exponential_bound(k, scale)));
        }
        if self.zero || self.negative.is_some() {
            bounds.push(0.0);
        }
        if let Some((lo, hi)) = self.positive {
            bounds.extend((lo..=hi + 1).map(|k| exponential_bound(k, scale)));
        }
        bounds
    }

    fn len(self) -> usize {
        let span = |r: Option<(i32, i32)>| r.map_or(0, |(lo, hi)| (hi - lo + 2) as usize);
        span(self.positive)
            + span(self.negative)
            + usize::from(self.zero || self.negative.is_some())
    }
}

/// The default `le` boundaries for a family of `distributions` (see the
/// module's documentation); empty when nothing was bucketed.
pub fn default_bounds<'a>(
    distributions: impl Iterator<Item = &'a Distribution> + Clone,
) -> Vec<f64> {
    let coarsest = distributions
        .clone()
        .map(Distribution::shift)
        .max()
        .unwrap_or(0);
    let scale = DEFAULT_SCALE.min(SCALE - coarsest as i32);
    let mut range = Range::default();
    for d in distributions {
        let e = d.exponential();
        // Every distribution's scale is at least `scale`.
        let by = (e.scale - scale) as u32;
        for &(index, _) in &e.positive {
            widen(&mut range.positive, index >> by);
        }
        for &(index, _) in &e.negative {
            widen(&mut range.negative, index >> by);
        }
        range.zero |= e.zero_count > 0;
    }
    let mut scale = scale;
    while range.len() > MAX_DEFAULT_BOUNDS && scale > MIN_SCALE {
        range = range.coarser(1);
        scale -= 1;
    }
    range.bounds(scale)
}

/// A native histogram's buckets of one sign as Prometheus's remote write
/// carries them: spans (the first's offset the first bucket's index, each
/// later one's the gap since the previous span) and each bucket's count
/// as the difference from the one before (the first from 0). `buckets`
/// are (OpenTelemetry index, count), ascending; Prometheus numbers them
/// one higher.
pub fn spans_and_deltas(buckets: &[(i32, u64)]) -> (Vec<(i32, u32)>, Vec<i64>) {
    let mut spans: Vec<(i32, u32)> = Vec::new();
    let mut deltas = Vec::with_capacity(buckets.len());
    let mut next: Option<i32> = None;
    let mut previous = 0u64;
    for &(index, count) in buckets {
        let index = index + 1;
        match (next, spans.last_mut()) {
            (Some(n), Some(span)) if n == index => span.1 += 1,
            (Some(n), _) => spans.push((index - n, 1)),
            (None, _) => spans.push((index, 1)),
        }
        next = Some(index + 1);
        deltas.push(count as i64 - previous as i64);
        previous = count;
    }
    (spans, deltas)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::Memory;
    use stats_core::Kind;

    fn distribution(kind: Kind, values: &[f64]) -> Distribution {
        let memory = Memory::new(1 << 30);
        let mut d = crate::aggregation::Aggregate::new(kind);
        for &v in values {
            d.add(v, false, 1.0, &memory);
        }
        match d {
            crate::aggregation::Aggregate::Distribution(d) => d,
            _ => unreachable!(),
        }
    }

    #[test]
    fn default_bounds_cover_the_range_at_four_a_power_of_two() {
        // 1 ms and 200 ms timers, in nanoseconds: bounds in seconds.
        let d = distribution(Kind::Timer, &[1e6, 2e8]);
        let bounds = default_bounds([&d].into_iter());
        assert!(
            bounds[0] < 0.001 && *bounds.last().unwrap() >= 0.2,
            "{bounds:?}"
        );
        assert!(bounds.len() <= MAX_DEFAULT_BOUNDS);
        // Four a power of two: 2^-10 is one, and 2^-9.75 the next.
        let i = bounds.iter().position(|&b| b == 2f64.powi(-10)).unwrap();
        assert_eq!(bounds[i + 1], 2f64.powf(-9.75));
        // Every count is exact: 1 ms is under 2^-9.75 s and not 2^-10.
        let counts = d.cumulative(&bounds);
        assert_eq!(counts[i], 0);
        assert_eq!(counts[i + 1], 1);
        assert_eq!(*counts.last().unwrap(), 2);
    }

    #[test]
    fn a_wide_range_coarsens_to_stay_bounded() {
        let d = distribution(Kind::Histogram, &[1e-12, 1e15, -5.0, 0.0]);
        let bounds = default_bounds([&d].into_iter());
        assert!(bounds.len() <= MAX_DEFAULT_BOUNDS, "{}", bounds.len());
        assert!(bounds.windows(2).all(|w| w[0] < w[1]));
        assert!(bounds.contains(&0.0));
        assert!(bounds[0] <= -5.0 && *bounds.last().unwrap() >= 1e15);
        let counts = d.cumulative(&bounds);
        let zero = bounds.iter().position(|&b| b == 0.0).unwrap();
        // -5 and 0 at or below 0; all four under the last.
        assert_eq!(counts[zero], 2);
        assert_eq!(*counts.last().unwrap(), 4);
    }

    #[test]
    fn spans_skip_gaps_and_deltas_difference_counts() {
        let (spans, deltas) = spans_and_deltas(&[(-3, 2), (-2, 5), (4, 1), (5, 1), (9, 7)]);
        // Prometheus indices -2, -1, then 5, 6, then 10.
        assert_eq!(spans, [(-2, 2), (5, 2), (3, 1)]);
        assert_eq!(deltas, [2, 3, -4, 0, 6]);
        assert_eq!(spans_and_deltas(&[]), (vec![], vec![]));
    }
}
