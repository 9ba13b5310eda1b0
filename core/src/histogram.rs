//! Fixed-memory log-linear histogram (the "H2" layout of HdrHistogram-style
//! sketches), for latencies and other non-negative integer values.
//!
//! Values below `2^(G+1)` get a bucket each (exact). Above, every power of
//! two `[2^h, 2^(h+1))` is split into `2^G` equal buckets, so a bucket is never
//! wider than `2^-G` of the values in it. [`LogLinearHistogram::percentile`] answers
//! with the bucket's midpoint, so its relative error is at most `2^-(G+1)`
//! (1.6% for the default `G = 5`), and the tests hold it to that bound against
//! exact quantiles.
//!
//! [`LatencyHistogram`] (`G = 5`, 1,024 buckets) covers 0 to 2^36 ns (about
//! 68.7 s) in 4 KiB of `u32` counters; larger values land in the top bucket
//! and are counted as [`Snapshot::saturated`].
//!
//! Recording is a relaxed load and store of one counter: one writer at a time
//! (the exporter's worker), any number of readers taking
//! [`LogLinearHistogram::snapshot`]s. No 64-bit atomics (32-bit targets have none that
//! are cheap), no compare-and-swap (M0 has none), no allocation, no panics.

use crate::sync::{AtomicU32, Ordering};
use core::fmt;

/// Buckets of a histogram with precision `G` covering values below `2^P`.
pub const fn bucket_count(g: u32, p: u32) -> usize {
    (1 << (g + 1)) + (p as usize - g as usize - 1) * (1 << g)
}

/// The histogram the telemetry uses for nanosecond latencies: 3.1% bucket
/// width (1.6% percentile error), values up to 2^36 ns, 4 KiB.
pub type LatencyHistogram = LogLinearHistogram<5, { bucket_count(5, 36) }>;

/// A histogram with precision `G` (bucket width at most `2^-G` of its values)
/// and `N` buckets; `N` must be `bucket_count(G, P)` for some `P > G + 1`, or
/// 0 for a histogram that records nothing (no RAM; its percentiles are
/// `None`).
pub struct LogLinearHistogram<const G: u32, const N: usize> {
    counts: [AtomicU32; N],
    /// Values above the top bucket's range, also counted in the top bucket.
    saturated: AtomicU32,
}

impl<const G: u32, const N: usize> fmt::Debug for LogLinearHistogram<G, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogLinearHistogram")
            .field("count", &self.snapshot().count())
            .finish()
    }
}

/// Index of the bucket for `v`.
#[inline]
const fn index<const G: u32, const N: usize>(v: u64) -> usize {
    let exact = 1u64 << (G + 1);
    if v < exact {
        return v as usize;
    }
    let h = 63 - v.leading_zeros(); // highest set bit, at least G + 1
    let i = exact as usize + (h - G - 1) as usize * (1 << G) + ((v >> (h - G)) as usize - (1 << G));
    if i < N { i } else { N - 1 }
}

/// The lowest value of bucket `i` and the bucket's width.
const fn bucket_range<const G: u32>(i: usize) -> (u64, u64) {
    let exact = 1usize << (G + 1);
    if i < exact {
        return (i as u64, 1);
    }
    let group = (i - exact) >> G; // 0 for [2^(G+1), 2^(G+2))
    let h = G + 1 + group as u32;
    let width = 1u64 << (h - G);
    let offset = ((i - exact) & ((1 << G) - 1)) as u64;
    ((1u64 << h) + offset * width, width)
}

impl<const G: u32, const N: usize> Default for LogLinearHistogram<G, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const G: u32, const N: usize> LogLinearHistogram<G, N> {
    /// The highest value recorded exactly in range: anything at or above it
    /// goes to the top bucket.
    pub const LIMIT: u64 = if N == 0 {
        0
    } else {
        let (low, width) = bucket_range::<G>(N - 1);
        low + width
    };

    /// An empty histogram (usable in a `static`). A bad `N` fails to compile.
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        const {
            assert!(G >= 1 && G <= 16, "precision G must be 1..=16");
            assert!(
                N == 0 || (N > (1 << (G + 1)) && (N - (1 << (G + 1))).is_multiple_of(1 << G)),
                "N must be bucket_count(G, P) or 0"
            );
            assert!(
                N == 0 || (N - (1 << (G + 1))) / (1 << G) + (G as usize) < 63,
                "range must stay below 2^63"
            );
        };
        LogLinearHistogram {
            counts: [const { AtomicU32::new(0) }; N],
            saturated: AtomicU32::new(0),
        }
    }

    /// An empty histogram.
    #[cfg(loom)]
    pub fn new() -> Self {
        LogLinearHistogram {
            counts: core::array::from_fn(|_| AtomicU32::new(0)),
            saturated: AtomicU32::new(0),
        }
    }

    /// Records `value`. Single writer: concurrent `record`s from several
    /// threads may lose counts (readers are fine). Counters saturate.
    pub fn record(&self, value: u64) {
        if N == 0 {
            return; // a histogram switched off
        }
        let counter = &self.counts[index::<G, N>(value)];
        let c = counter.load(Ordering::Relaxed);
        counter.store(c.saturating_add(1), Ordering::Relaxed);
        if value >= Self::LIMIT {
            let s = self.saturated.load(Ordering::Relaxed);
            self.saturated.store(s.saturating_add(1), Ordering::Relaxed);
        }
    }

    /// A copy of the counts (each counter read once; concurrent records may
    /// land before or after).
    pub fn snapshot(&self) -> Snapshot<G, N> {
        Snapshot {
            counts: core::array::from_fn(|i| self.counts[i].load(Ordering::Relaxed)),
            saturated: self.saturated.load(Ordering::Relaxed),
        }
    }

    /// Clears every counter (single writer, as for `record`).
    pub fn reset(&self) {
        for c in &self.counts {
            c.store(0, Ordering::Relaxed);
        }
        self.saturated.store(0, Ordering::Relaxed);
    }

    /// Adds `other`'s counts into this histogram (single writer).
    pub fn merge(&self, other: &Snapshot<G, N>) {
        for (c, &o) in self.counts.iter().zip(&other.counts) {
            let v = c.load(Ordering::Relaxed);
            c.store(v.saturating_add(o), Ordering::Relaxed);
        }
        let s = self.saturated.load(Ordering::Relaxed);
        self.saturated
            .store(s.saturating_add(other.saturated), Ordering::Relaxed);
    }

    /// The value at quantile `q` (0.0..=1.0) of what was recorded, or `None`
    /// if nothing was (or `q` is not a number in range).
    pub fn percentile(&self, q: f64) -> Option<u64> {
        self.snapshot().percentile(q)
    }
}

/// The counts of a [`LogLinearHistogram`] at one moment: plain numbers to read,
/// merge and export.
#[derive(Clone, PartialEq, Eq)]
pub struct Snapshot<const G: u32, const N: usize> {
    counts: [u32; N],
    saturated: u32,
}

impl<const G: u32, const N: usize> fmt::Debug for Snapshot<G, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot")
            .field("count", &self.count())
            .field("p50", &self.percentile(0.5))
            .field("p99", &self.percentile(0.99))
            .finish()
    }
}

impl<const G: u32, const N: usize> Default for Snapshot<G, N> {
    fn default() -> Self {
        Snapshot {
            counts: [0; N],
            saturated: 0,
        }
    }
}

impl<const G: u32, const N: usize> Snapshot<G, N> {
    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|&c| u64::from(c)).sum()
    }

    /// Values at or above [`LogLinearHistogram::LIMIT`], counted in the top bucket.
    pub fn saturated(&self) -> u64 {
        u64::from(self.saturated)
    }

    /// Adds `other`'s counts (saturating).
    pub fn merge(&mut self, other: &Snapshot<G, N>) {
        for (c, &o) in self.counts.iter_mut().zip(&other.counts) {
            *c = c.saturating_add(o);
        }
        self.saturated = self.saturated.saturating_add(other.saturated);
    }

    /// What was recorded between `earlier` (a snapshot of the same
    /// histogram) and this one.
    pub fn since(&self, earlier: &Snapshot<G, N>) -> Snapshot<G, N> {
        let mut out = self.clone();
        for (c, &e) in out.counts.iter_mut().zip(&earlier.counts) {
            *c = c.saturating_sub(e);
        }
        out.saturated = out.saturated.saturating_sub(earlier.saturated);
        out
    }

    /// The value at quantile `q` (0.0..=1.0): the midpoint of the bucket that
    /// holds the `ceil(q × count)`-th smallest value. `None` if empty or `q` is
    /// out of range.
    pub fn percentile(&self, q: f64) -> Option<u64> {
        if !(0.0..=1.0).contains(&q) {
            return None;
        }
        let count = self.count();
        if count == 0 {
            return None;
        }
        // ceil(q × count) without libm.
        let x = q * count as f64;
        let rank = (x as u64 + u64::from((x as u64 as f64) < x)).clamp(1, count);
        let mut seen = 0u64;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += u64::from(c);
            if seen >= rank {
                let (low, width) = bucket_range::<G>(i);
                return Some(low + (width - 1) / 2);
            }
        }
        None
    }

    /// Non-empty buckets as (lowest value, width, count), in value order —
    /// for exporting cumulative buckets (Prometheus) or means.
    pub fn buckets(&self) -> impl Iterator<Item = (u64, u64, u64)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .filter(|&(_, &c)| c > 0)
            .map(|(i, &c)| {
                let (low, width) = bucket_range::<G>(i);
                (low, width, u64::from(c))
            })
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::vec::Vec;

    #[test]
    fn latency_histogram_is_4_kib_to_68_seconds() {
        assert_eq!(bucket_count(5, 36), 1024);
        assert_eq!(LatencyHistogram::LIMIT, 1 << 36);
        assert_eq!(core::mem::size_of::<LatencyHistogram>(), 4 * 1025);
    }

    #[test]
    fn buckets_tile_the_range_in_order() {
        let mut next = 0u64;
        for i in 0..1024 {
            let (low, width) = bucket_range::<5>(i);
            assert_eq!(low, next, "bucket {i}");
            assert!(width == 1 || (width as f64) / (low as f64) <= 1.0 / 32.0);
            assert_eq!(index::<5, 1024>(low), i);
            assert_eq!(index::<5, 1024>(low + width - 1), i);
            next = low + width;
        }
        assert_eq!(next, 1 << 36);
        assert_eq!(index::<5, 1024>(u64::MAX), 1023);
    }

    #[test]
    fn small_values_are_exact() {
        let h = LatencyHistogram::new();
        for v in 0..64 {
            h.record(v);
        }
        for v in 0..64u64 {
            let q = (v + 1) as f64 / 64.0;
            assert_eq!(h.percentile(q), Some(v));
        }
        assert_eq!(h.percentile(0.0), Some(0));
    }

    /// Percentiles of random (log-uniform, 100 ns to 10 s) data stay within
    /// the documented 2^-(G+1) relative error of the exact quantiles.
    #[test]
    fn percentile_error_is_within_the_bound() {
        let h = LatencyHistogram::new();
        let n = if cfg!(miri) { 2_000 } else { 200_000 };
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut values: Vec<u64> = (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let exp = 2.0 + 8.0 * (x >> 11) as f64 / (1u64 << 53) as f64;
                10f64.powf(exp) as u64
            })
            .collect();
        for &v in &values {
            h.record(v);
        }
        values.sort_unstable();
        for q in [0.001, 0.25, 0.5, 0.9, 0.99, 0.999, 1.0] {
            let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
            let exact = values[rank - 1] as f64;
            let got = h.percentile(q).unwrap() as f64;
            let err = (got - exact).abs() / exact;
            assert!(err <= 1.0 / 64.0, "q {q}: {got} vs {exact} ({err:.4})");
        }
    }

    #[test]
    fn saturation_reset_and_empty() {
        let h = LatencyHistogram::new();
        assert_eq!(h.percentile(0.5), None);
        h.record(u64::MAX);
        h.record(1 << 40);
        let s = h.snapshot();
        assert_eq!((s.count(), s.saturated()), (2, 2));
        assert!(h.percentile(1.0).unwrap() < LatencyHistogram::LIMIT);
        assert_eq!(h.percentile(1.5), None);
        assert_eq!(h.percentile(f64::NAN), None);
        h.reset();
        assert_eq!(h.snapshot(), Snapshot::default());
    }

    #[test]
    fn merge_equals_recording_everything() {
        let (a, b, all) = (
            LatencyHistogram::new(),
            LatencyHistogram::new(),
            LatencyHistogram::new(),
        );
        for v in 0..5_000u64 {
            let v = v * v * 37;
            if v % 3 == 0 { &a } else { &b }.record(v);
            all.record(v);
        }
        let mut merged = a.snapshot();
        merged.merge(&b.snapshot());
        assert_eq!(merged, all.snapshot());
        a.merge(&b.snapshot());
        assert_eq!(a.snapshot(), all.snapshot());
        // And `since` takes it back out.
        assert_eq!(
            all.snapshot().since(&b.snapshot()).count(),
            all.snapshot().count() - b.snapshot().count()
        );
        let before = b.snapshot();
        b.record(5);
        b.record(1 << 40);
        let interval = b.snapshot().since(&before);
        assert_eq!((interval.count(), interval.saturated()), (2, 1));
        let total: u64 = merged.buckets().map(|(_, _, c)| c).sum();
        assert_eq!(total, 5_000);
    }
}
