//! A distribution's buckets as Prometheus histograms: classic `le`
//! buckets (cumulative counts at boundaries chosen among the bucket
//! edges, so each count is exact) and native ones (the exponential
//! buckets themselves, as spans and deltas). Buckets come as `(shift, id,
//! count)` (`crate::aggregate::bucket_of`), in any order.
//!
//! **Default boundaries** ([`default_bounds`]). A timer family's are fixed:
//! powers of `2^(1/2)` seconds from `2^-20` (0.95 µs) to `2^7` (128 s), 55
//! of them whatever was recorded. A boundary that appears while a family
//! is being scraped is a new `le` series whose first sample already holds
//! every value below it: VictoriaMetrics rates such a series over its own
//! samples, so the window in which a latency spike first reaches a new
//! range would read the old range's quantiles. Fixed boundaries keep every
//! timer's `le` series from its first export on.
//!
//! Any other family's boundaries are powers of `2^(2^-s)`, for the finest `s` from 2 (four a power of two)
//! down to -4 (one every 16 powers of two) that covers the values the
//! family holds, all label sets together, with at most
//! [`MAX_DEFAULT_BOUNDS`] boundaries; 0 is a boundary when values at or
//! below 0 were recorded, and negative values get the negated powers.
//! Every such boundary is an edge of the recording scheme's buckets (16 a
//! power of two), so each `le` count is exact. The boundaries follow the
//! recorded range: they only grow as it widens (one can go when the range
//! grows so wide that `s` coarsens, which keeps every other one), so a
//! histogram whose values reach a new range is read right by windows that
//! start after the boundaries it brings.
//!
//! **Configured boundaries** are used as given. A bucket counts under a
//! boundary when its upper edge is at or below it ([`cumulative`]): a
//! boundary that is not a power of `2^(1/16)` counts the values of the
//! bucket it cuts above it, so its count is exact only to within that
//! bucket (2.2%).

use super::text::{Sink, number};
use crate::aggregate::{
    SCALE, bucket_range, exponential_bound, exponential_index, is_negative, is_zero_bucket,
};
use crate::event::Kind;
use alloc::borrow::Cow;
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

/// Boundaries a family gets at most by default (besides `+Inf`).
pub const MAX_DEFAULT_BOUNDS: usize = 40;

/// Timers' default boundaries: `2^(k/2)` s for `k` in this range.
const TIMER_BOUNDS: core::ops::RangeInclusive<i32> = -40..=14;

/// The scale of timers' default boundaries: 2 a power of two.
const TIMER_SCALE: i32 = 1;

/// The factor from a kind's recorded unit to its exported one: timers are
/// recorded in nanoseconds and exported in seconds; everything else as
/// recorded.
pub fn export_scale(kind: Kind) -> f64 {
    if kind == Kind::Timer { 1e-9 } else { 1.0 }
}

/// The finest scale default boundaries use: 4 a power of two.
const DEFAULT_SCALE: i32 = 2;

/// The coarsest scale (Prometheus's schema -4).
const MIN_SCALE: i32 = -4;

/// The highest value bucket `id` at `shift` holds (for a negative bucket,
/// the lower edge of its magnitudes, negated; for the zero bucket, 0).
fn bucket_top(id: u16, shift: u32) -> f64 {
    if is_zero_bucket(id, shift) {
        return 0.0;
    }
    let (low, high, negative) = bucket_range(id, shift);
    if negative { -low } else { high }
}

/// How many of `buckets`' values are at or below each of `bounds`
/// (ascending, in the buckets' unit: seconds for a timer): cumulative
/// counts, as Prometheus's `le` buckets hold them. A bucket counts under a
/// bound when its upper edge is at or below it; the zero bucket counts
/// under every bound from 0.
pub fn cumulative(buckets: impl Iterator<Item = (u32, u16, u64)>, bounds: &[f64]) -> Vec<u64> {
    let mut under = vec![0u64; bounds.len()];
    for (shift, id, count) in buckets {
        let top = bucket_top(id, shift);
        let first = bounds.partition_point(|&b| b < top);
        if let Some(c) = under.get_mut(first) {
            *c += count;
        }
    }
    let mut sum = 0;
    for c in &mut under {
        sum += *c;
        *c = sum;
    }
    under
}

/// Buckets as an exponential histogram: OpenTelemetry's scale and bucket
/// indices (bucket `i` holds `(base^i, base^(i+1)]`, `base =
/// 2^(2^-scale)`; Prometheus's native histograms number it `i + 1`, with
/// schema = scale), the zero bucket's count (magnitudes up to
/// [`crate::aggregate::ZERO_THRESHOLD`]), and the non-empty buckets of
/// each sign by index, ascending.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Exponential {
    /// The scale (Prometheus's schema).
    pub scale: i32,
    /// Values in the zero bucket.
    pub zero_count: u64,
    /// Positive buckets: (index, count), ascending.
    pub positive: Vec<(i32, u64)>,
    /// Negative buckets by the index of their magnitude: (index, count),
    /// ascending.
    pub negative: Vec<(i32, u64)>,
}

impl Exponential {
    /// `buckets` at the coarsest shift among them (every one can be given
    /// at it: merging is exact).
    pub fn of(buckets: impl Iterator<Item = (u32, u16, u64)> + Clone) -> Exponential {
        let shift = buckets.clone().map(|(s, _, _)| s).max().unwrap_or(0);
        let mut positive: BTreeMap<i32, u64> = BTreeMap::new();
        let mut negative: BTreeMap<i32, u64> = BTreeMap::new();
        let mut zero_count = 0;
        for (s, id, count) in buckets {
            let id = id >> (shift - s);
            match exponential_index(id, shift) {
                None => zero_count += count,
                Some(index) if is_negative(id, shift) => {
                    *negative.entry(index).or_default() += count
                }
                Some(index) => *positive.entry(index).or_default() += count,
            }
        }
        Exponential {
            scale: SCALE - shift as i32,
            zero_count,
            positive: positive.into_iter().collect(),
            negative: negative.into_iter().collect(),
        }
    }
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

/// The default `le` boundaries for a family of `kind` whose label sets
/// hold `histograms` (see the module's documentation): fixed for timers;
/// otherwise covering the recorded range, empty when nothing was bucketed.
pub fn default_bounds<'a>(
    kind: Kind,
    histograms: impl Iterator<Item = &'a Exponential> + Clone,
) -> Vec<f64> {
    if kind == Kind::Timer {
        return TIMER_BOUNDS
            .map(|k| exponential_bound(k, TIMER_SCALE))
            .collect();
    }
    let finest = histograms.clone().map(|e| e.scale).min().unwrap_or(SCALE);
    let scale = DEFAULT_SCALE.min(finest);
    let mut range = Range::default();
    for e in histograms {
        // Every histogram's scale is at least `scale`.
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

/// The default boundaries of one rendering's families, their labels
/// written: a timer family's are fixed, so they are made once and lent to
/// every timer family; any other family's are made for it.
#[derive(Debug, Default)]
pub struct DefaultBounds {
    timers: Option<Bounds>,
}

impl DefaultBounds {
    /// None made yet.
    pub fn new() -> DefaultBounds {
        DefaultBounds::default()
    }

    /// The default boundaries of a family of `kind` whose label sets hold
    /// what `histograms` gives (asked for only when the kind's boundaries
    /// depend on them).
    pub fn of(
        &mut self,
        kind: Kind,
        histograms: impl FnOnce() -> Vec<Exponential>,
    ) -> Cow<'_, Bounds> {
        if kind == Kind::Timer {
            let timers = (self.timers)
                .get_or_insert_with(|| Bounds::new(default_bounds(kind, core::iter::empty())));
            return Cow::Borrowed(timers);
        }
        Cow::Owned(Bounds::new(default_bounds(kind, histograms().iter())))
    }
}

/// A family's `le` boundaries (ascending) and their labels as written,
/// spelled once for all its label sets.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Bounds {
    values: Vec<f64>,
    les: Vec<String>,
}

impl Bounds {
    /// Boundaries at `values` (ascending).
    pub fn new(values: Vec<f64>) -> Bounds {
        let les = values.iter().map(|&b| number(b)).collect();
        Bounds { values, les }
    }

    /// The boundaries.
    pub fn values(&self) -> &[f64] {
        &self.values
    }
}

/// Writes a distribution as Prometheus's classic histogram into `sink`:
/// `<name>_bucket` with each of `bounds` as `le` and the cumulative count
/// of `buckets`' values at or below it, `le="+Inf"` with all `count`
/// values (bucketed or not), `<name>_sum` and `<name>_count`.
pub fn write_classic<S: Sink + ?Sized>(
    sink: &mut S,
    name: &str,
    labels: &[(&str, &str)],
    bounds: &Bounds,
    buckets: impl Iterator<Item = (u32, u16, u64)>,
    count: u64,
    sum: f64,
) {
    let bucket = format!("{name}_bucket");
    let counts = cumulative(buckets, &bounds.values)
        .into_iter()
        .chain([count]);
    let mut with: Vec<(&str, &str)> = Vec::with_capacity(labels.len() + 1);
    for (le, n) in bounds
        .les
        .iter()
        .map(String::as_str)
        .chain(["+Inf"])
        .zip(counts)
    {
        with.clear();
        with.extend_from_slice(labels);
        with.push(("le", le));
        sink.sample(&bucket, &with, n as f64);
    }
    sink.sample(&format!("{name}_sum"), labels, sum);
    sink.sample(&format!("{name}_count"), labels, count as f64);
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
    use crate::aggregate::{bucket_of, timer_bucket_of};

    fn buckets(ids: &[u16]) -> Vec<(u32, u16, u64)> {
        let mut out: Vec<(u32, u16, u64)> = Vec::new();
        for &id in ids {
            match out.iter_mut().find(|b| b.1 == id) {
                Some(b) => b.2 += 1,
                None => out.push((0, id, 1)),
            }
        }
        out
    }

    #[test]
    fn timers_get_fixed_bounds_whatever_they_recorded() {
        let one = buckets(&[timer_bucket_of(1e6)]);
        let both = buckets(&[timer_bucket_of(1e6), timer_bucket_of(2e8)]);
        let (one, both) = (
            Exponential::of(one.iter().copied()),
            Exponential::of(both.iter().copied()),
        );
        let bounds = default_bounds(Kind::Timer, [&one].into_iter());
        assert_eq!(bounds, default_bounds(Kind::Timer, [&both].into_iter()));
        assert_eq!(bounds, default_bounds(Kind::Timer, core::iter::empty()));
        assert_eq!(bounds.len(), 55);
        assert_eq!((bounds[0], bounds[54]), (2f64.powi(-20), 128.0));
        assert!(
            bounds
                .windows(2)
                .all(|w| w[1] / w[0] == 2f64.sqrt() || (w[1] / w[0] - 2f64.sqrt()).abs() < 1e-15)
        );
        // Exact: 1 ms is under 2^-9.5 s and not 2^-10; 200 ms under 2^-2.
        let b = buckets(&[timer_bucket_of(1e6), timer_bucket_of(2e8)]);
        let counts = cumulative(b.iter().copied(), &bounds);
        let at = |v: f64| bounds.iter().position(|&b| b == v).unwrap();
        assert_eq!(counts[at(2f64.powi(-10))], 0);
        assert_eq!(counts[at(2f64.powi(-10)) + 1], 1);
        assert_eq!(counts[at(0.25) - 1], 1);
        assert_eq!(counts[at(0.25)], 2);
        assert_eq!(export_scale(Kind::Timer), 1e-9);
        assert_eq!(export_scale(Kind::Histogram), 1.0);
    }

    #[test]
    fn a_rendering_makes_the_timers_bounds_once() {
        let mut defaults = DefaultBounds::new();
        let first = defaults.of(Kind::Timer, || unreachable!()).into_owned();
        assert_eq!(
            first.values(),
            default_bounds(Kind::Timer, core::iter::empty())
        );
        assert!(matches!(
            defaults.of(Kind::Timer, || unreachable!()),
            Cow::Borrowed(_)
        ));
        let b = buckets(&[bucket_of(3.0)]);
        let e = Exponential::of(b.iter().copied());
        let histogram = defaults.of(Kind::Histogram, || vec![e.clone()]);
        assert_eq!(
            histogram.values(),
            default_bounds(Kind::Histogram, [&e].into_iter())
        );
    }

    #[test]
    fn default_bounds_cover_the_range_at_four_a_power_of_two() {
        let b = buckets(&[bucket_of(0.001), bucket_of(0.2)]);
        let e = Exponential::of(b.iter().copied());
        let bounds = default_bounds(Kind::Histogram, [&e].into_iter());
        assert!(
            bounds[0] < 0.001 && *bounds.last().unwrap() >= 0.2,
            "{bounds:?}"
        );
        assert!(bounds.len() <= MAX_DEFAULT_BOUNDS);
        // Four a power of two: 2^-10 is one, and 2^-9.75 the next.
        let i = bounds.iter().position(|&b| b == 2f64.powi(-10)).unwrap();
        assert_eq!(bounds[i + 1], 2f64.powf(-9.75));
        // Every count is exact: 0.001 is under 2^-9.75 and not 2^-10.
        let counts = cumulative(b.iter().copied(), &bounds);
        assert_eq!(counts[i], 0);
        assert_eq!(counts[i + 1], 1);
        assert_eq!(*counts.last().unwrap(), 2);
    }

    #[test]
    fn a_wide_range_coarsens_to_stay_bounded() {
        let b = buckets(&[
            bucket_of(1e-12),
            bucket_of(1e15),
            bucket_of(-5.0),
            bucket_of(0.0),
        ]);
        let e = Exponential::of(b.iter().copied());
        let bounds = default_bounds(Kind::Histogram, [&e].into_iter());
        assert!(bounds.len() <= MAX_DEFAULT_BOUNDS, "{}", bounds.len());
        assert!(bounds.windows(2).all(|w| w[0] < w[1]));
        assert!(bounds.contains(&0.0));
        assert!(bounds[0] <= -5.0 && *bounds.last().unwrap() >= 1e15);
        let counts = cumulative(b.iter().copied(), &bounds);
        let zero = bounds.iter().position(|&b| b == 0.0).unwrap();
        // -5 and 0 at or below 0; all four under the last.
        assert_eq!(counts[zero], 2);
        assert_eq!(*counts.last().unwrap(), 4);
    }

    #[test]
    fn buckets_at_two_shifts_are_given_at_the_coarser() {
        let (a, b) = (bucket_of(1.5), bucket_of(100.0));
        let e = Exponential::of([(0, a, 2), (2, b >> 2, 3)].into_iter());
        assert_eq!(e.scale, 2);
        let index = |v: f64| crate::aggregate::exponential_index(bucket_of(v), 0).unwrap() >> 2;
        assert_eq!(e.positive, [(index(1.5), 2), (index(100.0), 3)]);
        assert_eq!(Exponential::of(core::iter::empty()).scale, SCALE);
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
