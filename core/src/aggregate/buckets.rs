//! The buckets of a distribution: exponential, 16 to a power of two, on
//! the boundaries of Prometheus's native histogram schema 4 and
//! OpenTelemetry's exponential histogram scale 4.
//!
//! A magnitude's bucket is the `i` with `2^(i/16) < |v| <= 2^((i+1)/16)`:
//! upper-inclusive, as both formats define it, so a bucket converts to
//! either, and to any coarser schema or scale, without moving a count
//! across a boundary. The boundaries are Prometheus's own `f64`s for
//! `2^(j/16)` (its schema 4 table) times powers of two: the numbers the
//! engine compares a value with (OpenTelemetry computes the same powers,
//! to within an ulp). Relative error of the value that stands for a
//! bucket (its geometric midpoint): at most `2^(1/32) - 1`, 2.19%
//! ([`MAX_RELATIVE_ERROR`]).
//!
//! **Ids.** A bucket id is a `u16`: bit 15 the sign, bits 0–14 the
//! magnitude `i + 16384` (so `2^(i/16)` for `i` from -12,288 to 16,383:
//! magnitudes above 2^-768 up to the largest `f64`). Magnitude 0 is the
//! *zero bucket*: 0 and every magnitude at or below [`ZERO_THRESHOLD`]
//! (2^-768), of either sign. [`bucket_of`] is integer arithmetic and a
//! 32-entry table (each 1/32 of a power of two holds at most one
//! boundary, which one comparison settles): no logarithm, no float
//! arithmetic, so a microcontroller without an FPU buckets a value with
//! integer instructions only.
//!
//! **Timers** are recorded in nanoseconds and exported in seconds: their
//! bucket is the one of the value in seconds ([`timer_bucket_of`]), so the
//! boundaries are exact in the unit engines see.
//!
//! A *shift* `s` merges buckets: bucket `id >> s` covers `2^s` neighbours,
//! which is schema and scale `4 - s` (16,384 is a multiple of every
//! `2^s`, so the groups are the coarser format's buckets exactly). A
//! distribution with too many buckets for one datagram travels at a
//! shift. Shifting never merges a negative bucket with a positive one, or
//! either with the zero bucket.

use crate::event::Kind;

/// The exponential scale (Prometheus schema) of bucket ids at shift 0:
/// 2^4 = 16 buckets a power of two.
pub const SCALE: i32 = 4;

/// Largest relative distance between a value and the geometric midpoint
/// of its bucket at full precision (shift 0): `2^(1/32) - 1`.
pub const MAX_RELATIVE_ERROR: f64 = 0.021_897_148_654_116_627;

/// The largest shift a bucket list may be sent at: 256 buckets merged,
/// schema and scale -4 (Prometheus's coarsest), 16 powers of two a bucket.
pub const MAX_SHIFT: u32 = 8;

/// Magnitudes at or below this (2^-768) are in the zero bucket.
pub const ZERO_THRESHOLD: f64 = f64::from_bits((1023 - 768) << 52);

/// Timer values are in nanoseconds; their buckets in seconds.
pub const NANOS_PER_SECOND: f64 = 1e9;

/// The id magnitude of bucket index 0 (`(1, 2^(1/16)]`).
const OFFSET: i32 = 16_384;

/// The lowest magnitude of a bucket other than the zero bucket.
const FIRST: i32 = 4_096;

/// The sign bit of a bucket id.
const SIGN: u16 = 0x8000;

/// `2^(j/16)` for `j` in 0..16 as `f64` bits: Prometheus's own bounds
/// for schema 4 (`exponentialBounds[4]`, doubled into `[1, 2)`), which
/// are the correctly rounded powers or up to 2 units in the last place
/// below them. The engine judges a bucket by these numbers, so values are
/// bucketed by them too.
const ROOTS: [u64; 16] = [
    0x3ff0_0000_0000_0000,
    0x3ff0_b558_6cf9_890f,
    0x3ff1_72b8_3c7d_517b,
    0x3ff2_387a_6e75_6238,
    0x3ff3_06fe_0a31_b715,
    0x3ff3_dea6_4c12_3422,
    0x3ff4_bfda_d536_2a27,
    0x3ff5_ab07_dd48_5429,
    0x3ff6_a09e_667f_3bcc,
    0x3ff7_a114_73eb_0186,
    0x3ff8_ace5_422a_a0db,
    0x3ff9_c491_82a3_f08f,
    0x3ffa_e89f_995a_d3ac,
    0x3ffc_199b_dd85_529a,
    0x3ffd_5818_dcfb_a486,
    0x3ffe_a4af_a2a4_90d8,
];

const MANTISSA: u64 = (1 << 52) - 1;

/// Slices of the mantissa range for 16 boundaries of a power of two,
/// given as mantissas (52 bits, the leading 1 dropped): for each 1/32 of
/// the range (`[t/32, (t+1)/32)`), packed in one word, how many of them lie
/// below it (bits 52 and up) and the one inside it (bits 0–51; all ones if
/// none, as no mantissa is above it). Each slice holds at most one: they
/// are `2^(1/16) - 1` (4.4%) apart at least, a slice 1/32 (3.1%) wide.
const fn slices(edges: [u64; 16]) -> [u64; 32] {
    let mut slices = [MANTISSA; 32];
    let mut t = 0;
    while t < 32 {
        let start = (t as u64) << 47;
        let mut j = 0;
        while j < 16 {
            let edge = edges[j];
            if edge < start {
                slices[t] += 1 << 52;
            } else if edge < start + (1 << 47) {
                slices[t] = (slices[t] & !MANTISSA) | edge;
            }
            j += 1;
        }
        t += 1;
    }
    slices
}

/// The slices of the boundaries `2^(j/16)`.
const SLICES: [u64; 32] = {
    let mut edges = [0; 16];
    let mut j = 0;
    while j < 16 {
        edges[j] = ROOTS[j] & MANTISSA;
        j += 1;
    }
    slices(edges)
};

/// A timer's boundaries in nanoseconds, `10^9 × 2^(i/16)` (the seconds
/// boundaries times 10^9, exactly, in 128-bit integers): their slices,
/// each mantissa truncated to 52 bits (a value's 52-bit mantissa is above
/// the exact boundary exactly when it is above the truncated one), and
/// the index of the lowest one in the power of two `[1, 2)`, less 16 per
/// power of two below.
const TIMER: ([u64; 32], i32) = {
    let mut edges = [0; 16];
    let mut lowest = (u64::MAX, 0);
    let mut j = 0;
    while j < 16 {
        let exact = ((ROOTS[j] & MANTISSA) | (1 << 52)) as u128 * 1_000_000_000;
        let len = 128 - exact.leading_zeros() as i32;
        edges[j] = (exact >> (len - 53)) as u64 & MANTISSA;
        // Boundary i = 16f + j is `exact × 2^(f - 52)`, in the power of two
        // 2^(f + len - 53): i = 16 × that power + 16 (53 - len) + j.
        if edges[j] < lowest.0 {
            lowest = (edges[j], 16 * (53 - len) + j as i32);
        }
        j += 1;
    }
    (slices(edges), lowest.1)
};

/// The magnitude part of the bucket id of a finite `value` whose slices
/// are `slices` and whose lowest boundary in `[1, 2)` has index `lowest`.
#[inline]
const fn bucket_in(value: f64, slices: &[u64; 32], lowest: i32) -> u16 {
    let bits = value.to_bits();
    let sign = (bits >> 48) as u16 & SIGN;
    let exponent = ((bits >> 52) & 0x7FF) as i32;
    let mantissa = bits & MANTISSA;
    let slice = slices[(mantissa >> 47) as usize];
    // Boundaries below the magnitude in its power of two, less one: the
    // bucket's place after the lowest boundary's (-1: at or below it,
    // the top of the bucket under it).
    let c = (slice >> 52) as i32 + (mantissa > slice & MANTISSA) as i32 - 1;
    let magnitude = 16 * (exponent - 1023) + lowest + c + OFFSET;
    if magnitude < FIRST {
        0
    } else {
        sign | magnitude as u16
    }
}

/// The bucket of a finite `value` (the caller refuses NaN and infinities).
#[inline]
pub const fn bucket_of(value: f64) -> u16 {
    bucket_in(value, &SLICES, 0)
}

/// The bucket of a timer value of `ns` nanoseconds: the bucket of
/// `ns / 10^9` seconds, judged exactly (not after a rounded division) and
/// with integer instructions only.
#[inline]
pub const fn timer_bucket_of(ns: f64) -> u16 {
    bucket_in(ns, &TIMER.0, TIMER.1)
}

/// The bucket of a finite `value` of a distribution of `kind`.
#[inline]
pub fn bucket_of_kind(kind: Kind, value: f64) -> u16 {
    if kind == Kind::Timer {
        timer_bucket_of(value)
    } else {
        bucket_of(value)
    }
}

/// The lower edge of magnitude `m` (above the zero bucket), capped at the
/// largest finite `f64`.
fn lower_edge(m: i32) -> f64 {
    let i = m - OFFSET;
    let (e, j) = (i.div_euclid(16), i.rem_euclid(16) as usize);
    if e >= 1024 {
        return f64::MAX;
    }
    // The root's exponent field is 1023: add e to it.
    f64::from_bits((ROOTS[j] as i64 + (i64::from(e) << 52)) as u64)
}

/// `base^index` at `scale` (4 down to -10; `base = 2^(2^-scale)`): the
/// boundary Prometheus (schema `scale`, the upper edge of its bucket
/// `index`) and OpenTelemetry (the lower edge of bucket `index`) put
/// there, clamped to the range of bucket edges (above the zero bucket,
/// up to the largest `f64`).
pub fn exponential_bound(index: i32, scale: i32) -> f64 {
    let by = (SCALE - scale.clamp(-10, SCALE)) as u32;
    let m = (i64::from(index) << by) + i64::from(OFFSET);
    lower_edge(m.clamp(i64::from(FIRST), 32_768) as i32)
}

/// The magnitudes bucket `id` (at `shift`) covers: `(low, high]` (for
/// the zero bucket `[0, ZERO_THRESHOLD]`), and whether its values are
/// negative.
pub fn bucket_range(id: u16, shift: u32) -> (f64, f64, bool) {
    let shift = shift.min(14);
    let first = u32::from(id) << shift;
    let negative = first & u32::from(SIGN) != 0;
    let magnitude = (first & 0x7FFF) as i32;
    if magnitude < FIRST {
        return (0.0, ZERO_THRESHOLD, false);
    }
    let last = magnitude + (1 << shift) - 1;
    (lower_edge(magnitude), lower_edge(last + 1), negative)
}

/// Whether bucket `id` (at any shift) is the zero bucket.
pub fn is_zero_bucket(id: u16, shift: u32) -> bool {
    (u32::from(id) << shift.min(14)) & 0x7FFF < FIRST as u32
}

/// `2^(2^shift / 32)`: a bucket's upper edge over its geometric midpoint.
fn half_width(shift: u32) -> f64 {
    match shift {
        0 => 1.021_897_148_654_116_6,
        1..=4 => f64::from_bits(ROOTS[1 << (shift - 1)]),
        // 2^(2^(shift - 5)): 2, 4, 16, 256...
        _ => f64::from_bits((1023 + (1u64 << (shift.min(14) - 5))) << 52),
    }
}

/// The value a quantile answers with for bucket `id` at `shift`: the
/// geometric midpoint of its range (negative for negative buckets), 0 for
/// the zero bucket.
pub fn bucket_value(id: u16, shift: u32) -> f64 {
    let (_, high, negative) = bucket_range(id, shift);
    if is_zero_bucket(id, shift) {
        return 0.0;
    }
    let mid = high / half_width(shift);
    if negative { -mid } else { mid }
}

/// The value that stands for bucket `id` (at `shift`), which holds
/// `count` values, of a distribution whose values lie in `[min, max]`, in
/// units `unit` times the bucket's (1 for histograms; 1,000 for a timer
/// written in milliseconds, whose buckets are in seconds; `min` and `max`
/// in that unit): the minimum or maximum when it is the bucket's one
/// value; 0 for the zero bucket; the one integer the bucket holds, when
/// it holds exactly one; otherwise its geometric midpoint; always clamped
/// to `[min, max]`.
pub fn stand_in(id: u16, shift: u32, count: u64, unit: f64, min: f64, max: f64) -> f64 {
    let clamp = |v: f64| {
        if v < min {
            min
        } else if v > max {
            max
        } else {
            v
        }
    };
    if is_zero_bucket(id, shift) {
        return clamp(0.0);
    }
    let (low, high, negative) = bucket_range(id, shift);
    let (low, high) = (low * unit, high * unit);
    let sign = if negative { -1.0 } else { 1.0 };
    let holds = |v: f64| low < v * sign && v * sign <= high;
    if count == 1 {
        // The one value in a bucket that holds an extreme is that extreme.
        if holds(max) {
            return max;
        }
        if holds(min) {
            return min;
        }
    }
    // The integers in (low, high]: every magnitude below 2^52 truncates
    // to an exact integer, the floor of a non-negative value.
    if high < 4_503_599_627_370_496.0 {
        let next = (low as u64) as f64 + 1.0;
        if next <= high && next + 1.0 > high {
            return clamp(sign * next);
        }
    }
    clamp(sign * high / half_width(shift))
}

/// The exponential histogram index (OpenTelemetry's, at scale
/// `SCALE - shift`) of bucket `id` at `shift`: bucket `i` covers
/// `(base^i, base^(i+1)]`. `None` for the zero bucket. Prometheus's
/// native histograms number the same bucket `i + 1`.
pub fn exponential_index(id: u16, shift: u32) -> Option<i32> {
    if is_zero_bucket(id, shift) {
        return None;
    }
    let shift = shift.min(14);
    let magnitude = i32::from(id) & (0x7FFF >> shift);
    Some(magnitude - (OFFSET >> shift))
}

/// Whether bucket `id` at `shift` holds negative values.
pub fn is_negative(id: u16, shift: u32) -> bool {
    (u32::from(id) << shift.min(14)) & u32::from(SIGN) != 0
}

/// Sorts bucket ids by the values they hold (negative buckets, largest
/// magnitude first, then the zero bucket, then positive ones): the order
/// quantiles walk.
pub fn value_order(id: u16) -> i32 {
    if id & SIGN != 0 {
        -i32::from(id & !SIGN) - 1
    } else {
        i32::from(id)
    }
}

/// The value at quantile `q` (0.0 to 1.0) of a distribution given as
/// `(bucket id, count)` pairs at `shift`, sorted by [`value_order`]
/// (which for ids at a shift is the order of `id << shift`), clamped to the
/// distribution's `min` and `max`. `None` when empty or `q` is out of
/// range. Buckets of ids that all have the sign bit set come first.
pub fn quantile(
    buckets: impl Iterator<Item = (u16, u64)> + Clone,
    shift: u32,
    q: f64,
    min: f64,
    max: f64,
) -> Option<f64> {
    if !(0.0..=1.0).contains(&q) {
        return None;
    }
    let count: u64 = buckets.clone().map(|(_, c)| c).sum();
    if count == 0 {
        return None;
    }
    // ceil(q × count), at least 1.
    let x = q * count as f64;
    let rank = (x as u64 + u64::from((x as u64 as f64) < x)).clamp(1, count);
    let mut seen = 0u64;
    for (id, c) in buckets {
        seen += c;
        if seen >= rank {
            return Some(bucket_value(id, shift).clamp(min, max));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn values() -> impl Iterator<Item = f64> {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        (0..if cfg!(miri) { 500 } else { 100_000 }).map(move |_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Magnitudes from 1e-200 to 1e300, both signs.
            let exp = -200.0 + 500.0 * (x >> 11) as f64 / (1u64 << 53) as f64;
            let sign = if x & 1 == 0 { 1.0 } else { -1.0 };
            sign * 10f64.powf(exp)
        })
    }

    /// Prometheus's `exponentialBounds[4]` (model/histogram/generic.go)
    /// as it writes them.
    const PROMETHEUS_SCHEMA_4: [f64; 16] = [
        0.5,
        0.5221368912137069,
        0.5452538663326288,
        0.5693943173783458,
        0.5946035575013605,
        0.620928906036742,
        0.6484197773255048,
        0.6771277734684463,
        0.7071067811865475,
        0.7384130729697496,
        0.7711054127039704,
        0.805245165974627,
        0.8408964152537144,
        0.8781260801866495,
        0.9170040432046711,
        0.9576032806985735,
    ];

    /// The bound Prometheus computes for index `i` at schema 4
    /// (`getBound`): `Ldexp(frac, (i >> 4) + 1)`.
    fn prometheus_bound(i: i32) -> f64 {
        PROMETHEUS_SCHEMA_4[i.rem_euclid(16) as usize] * 2f64.powi(i.div_euclid(16) + 1)
    }

    #[test]
    fn roots_are_prometheus_bounds() {
        for (j, &bits) in ROOTS.iter().enumerate() {
            assert_eq!(f64::from_bits(bits), 2.0 * PROMETHEUS_SCHEMA_4[j], "{j}");
            let exact = (j as f64 / 16.0).exp2().to_bits();
            assert!(exact - bits <= 2, "{j}");
        }
        assert_eq!(half_width(0), (1.0f64 / 32.0).exp2());
        assert!((MAX_RELATIVE_ERROR - ((1.0f64 / 32.0).exp2() - 1.0)).abs() < 1e-15);
        assert_eq!(ZERO_THRESHOLD, 2f64.powi(-768));
    }

    /// Every value lands in the bucket whose boundaries, computed as the
    /// engines compute them, hold it: above the lower, at or below the
    /// upper.
    #[test]
    fn a_bucket_holds_its_values_upper_inclusive() {
        for v in values() {
            let id = bucket_of(v);
            let (low, high, negative) = bucket_range(id, 0);
            assert_eq!(negative, v < 0.0, "{v}");
            assert!(
                low < v.abs() && v.abs() <= high,
                "{v} not in ({low}, {high}]"
            );
            let mid = bucket_value(id, 0);
            assert!(
                (mid - v).abs() <= MAX_RELATIVE_ERROR * v.abs() * (1.0 + 1e-12),
                "{v}: {mid}"
            );
            // Prometheus's bucket index i + 1 covers (bound(i), bound(i + 1)].
            let index = exponential_index(id, 0).unwrap() + 1;
            assert!(
                prometheus_bound(index - 1) < v.abs() && v.abs() <= prometheus_bound(index),
                "{v}"
            );
        }
    }

    #[test]
    fn boundaries_are_upper_inclusive() {
        for i in -12_000..16_000 {
            let edge = lower_edge(i + OFFSET);
            // The edge is the top of bucket i - 1; just above it, bucket i.
            assert_eq!(exponential_index(bucket_of(edge), 0), Some(i - 1), "{edge}");
            let above = f64::from_bits(edge.to_bits() + 1);
            assert_eq!(exponential_index(bucket_of(above), 0), Some(i), "{above}");
            assert_eq!(exponential_index(bucket_of(-above), 0), Some(i), "{above}");
        }
        assert_eq!(exponential_index(bucket_of(1.0), 0), Some(-1));
        assert_eq!(exponential_index(bucket_of(2.0), 0), Some(15));
        assert_eq!(bucket_range(bucket_of(1.0), 0).1, 1.0);
    }

    #[test]
    fn exponential_bounds_are_the_engines() {
        for scale in -4..=4 {
            for index in -40..40 {
                let want = 2f64.powf(f64::from(index) * 2f64.powi(-scale));
                let got = exponential_bound(index, scale);
                assert!((got - want).abs() <= want * 1e-15, "{index} at {scale}");
                // Upper-inclusive: the bound is in the bucket below it.
                let fine = exponential_index(bucket_of(got), 0).unwrap();
                assert_eq!(fine >> (SCALE - scale), index - 1);
            }
        }
        assert_eq!(exponential_bound(0, 4), 1.0);
        assert_eq!(exponential_bound(1, 0), 2.0);
        assert_eq!(exponential_bound(i32::MAX, 4), f64::MAX);
        assert_eq!(exponential_bound(i32::MIN, 4), ZERO_THRESHOLD);
    }

    #[test]
    fn the_zero_bucket_takes_zero_and_tiny_magnitudes() {
        for v in [
            0.0,
            -0.0,
            ZERO_THRESHOLD,
            -ZERO_THRESHOLD,
            1e-300,
            f64::MIN_POSITIVE,
            5e-324,
        ] {
            assert_eq!(bucket_of(v), 0, "{v}");
            assert_eq!(bucket_value(bucket_of(v), 0), 0.0);
        }
        let above = f64::from_bits(ZERO_THRESHOLD.to_bits() + 1);
        assert_eq!(bucket_of(above), FIRST as u16);
        assert_eq!(bucket_of(f64::MAX), 0x7FFF);
        assert_eq!(bucket_of(-f64::MAX), 0xFFFF);
        assert_eq!(bucket_range(0x7FFF, 0).1, f64::MAX);
    }

    /// Whether `n` nanoseconds are more than `2^(i/16)` seconds, exactly:
    /// `n × 2^(52 - f) > M × 10^9` for the boundary's `M × 2^(f - 52)`.
    fn above(n: u64, i: i32) -> bool {
        let (f, j) = (i.div_euclid(16), i.rem_euclid(16) as usize);
        let m = u128::from((ROOTS[j] & MANTISSA) | (1 << 52)) * 1_000_000_000;
        let shift = 52 - f;
        assert!((0..88).contains(&shift), "{i}");
        (u128::from(n) << shift) > m
    }

    /// A timer's bucket holds its value in seconds exactly: above the
    /// lower boundary, at or below the upper one, compared as rationals.
    #[test]
    fn timer_buckets_are_exact_in_seconds() {
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let check = |n: u64| {
            let i = exponential_index(timer_bucket_of(n as f64), 0).unwrap();
            assert!(above(n, i) && !above(n, i + 1), "{n} ns in bucket {i}");
            // Within an ulp of a boundary, a rounded division could
            // misjudge; elsewhere it agrees.
            let divided = exponential_index(bucket_of(n as f64 / 1e9), 0).unwrap();
            assert!((divided - i).abs() <= 1, "{n}");
        };
        for _ in 0..if cfg!(miri) { 500 } else { 200_000 } {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            check((x >> 24).max(1)); // 1 ns to 2^40 ns (18 minutes)
        }
        // Whole seconds and their halves are boundaries: the top of a bucket.
        for n in [1_000_000_000, 500_000_000, 2_000_000_000, 250_000_000] {
            check(n);
            let i = exponential_index(timer_bucket_of(n as f64), 0).unwrap();
            assert_eq!(i.rem_euclid(16), 15, "{n}");
        }
        // And each boundary's neighbours, in nanoseconds.
        for i in -400..80 {
            let ns = 2f64.powf(f64::from(i) / 16.0) * 1e9;
            for n in [ns.floor() as u64, ns.ceil() as u64, ns.ceil() as u64 + 1] {
                if n > 0 && n < 1 << 40 {
                    check(n);
                }
            }
        }
    }

    #[test]
    fn timers_are_bucketed_in_seconds() {
        // 2 ms is 0.002 s, whatever its bucket in nanoseconds.
        assert_eq!(timer_bucket_of(2_000_000.0), bucket_of(0.002));
        assert_eq!(bucket_of_kind(Kind::Timer, 1e9), bucket_of(1.0));
        assert_eq!(bucket_of_kind(Kind::Histogram, 1e9), bucket_of(1e9));
        let (low, high, _) = bucket_range(timer_bucket_of(1e9), 0);
        assert!(low < 1.0 && high == 1.0);
    }

    #[test]
    fn shifted_buckets_are_the_coarser_scales_buckets() {
        for shift in 0..=MAX_SHIFT {
            for v in values().take(2_000) {
                let id = bucket_of(v) >> shift;
                let (low, high, negative) = bucket_range(id, shift);
                assert_eq!(negative, v.is_sign_negative(), "{v} at {shift}");
                assert!(low < v.abs() && v.abs() <= high, "{v} at {shift}");
                // The coarser index is the fine one's, shifted.
                let fine = exponential_index(bucket_of(v), 0).unwrap();
                assert_eq!(exponential_index(id, shift), Some(fine >> shift));
                assert!(!is_zero_bucket(id, shift));
                assert_eq!(is_negative(id, shift), negative);
            }
            assert!(is_zero_bucket(bucket_of(0.0) >> shift, shift));
            assert_ne!(bucket_of(f64::MAX) >> shift, bucket_of(-1e-200) >> shift);
        }
    }

    #[test]
    fn stand_ins_are_values_that_were_recorded() {
        // Small integers: the one integer their bucket holds.
        for v in [0.0, 1.0, 2.0, 3.0, 7.0, 15.0, 20.0, -3.0] {
            assert_eq!(stand_in(bucket_of(v), 0, 5, 1.0, -100.0, 100.0), v);
        }
        // Clamped to the extremes: a bucket of one value stands for it.
        let v = 1_234_567.891;
        assert_eq!(stand_in(bucket_of(v), 0, 3, 1.0, v, v), v);
        // An extreme alone in its bucket is that bucket's value.
        let (min, max) = (-1_000.5, 98.6);
        assert_eq!(stand_in(bucket_of(max), 0, 1, 1.0, min, max), max);
        assert_eq!(stand_in(bucket_of(min), 0, 1, 1.0, min, max), min);
        assert_ne!(stand_in(bucket_of(max), 0, 2, 1.0, min, max), max);
        // A timer of 2 ms written in milliseconds.
        assert_eq!(stand_in(timer_bucket_of(2e6), 0, 4, 1e3, 1.0, 500.0), 2.0);
        // Otherwise the geometric midpoint.
        let id = bucket_of(1000.0);
        let got = stand_in(id, 0, 2, 1.0, 0.0, 1e9);
        assert!(
            (got - 1000.0).abs() <= 1000.0 * MAX_RELATIVE_ERROR * 2.0,
            "{got}"
        );
        assert_eq!(stand_in(bucket_of(0.0), 0, 1, 1.0, 0.5, 9.0), 0.5);
    }

    #[test]
    fn quantiles_walk_buckets_in_value_order() {
        // -7.7 and 95 sit low in their buckets (magnitudes from 7.66 and
        // 94.5): the midpoints lie beyond them.
        let values = [-7.7, -1.0, 0.0, 2.0, 3.0, 95.0];
        let mut buckets: Vec<(u16, u64)> = values.iter().map(|&v| (bucket_of(v), 1)).collect();
        buckets.sort_by_key(|&(id, _)| value_order(id));
        let q = |q| quantile(buckets.iter().copied(), 0, q, -7.7, 95.0).unwrap();
        // Clamped to the minimum; then within the error of -1; zero's
        // bucket; clamped to the maximum.
        assert_eq!(q(0.0), -7.7);
        assert!((q(0.3) + 1.0).abs() <= MAX_RELATIVE_ERROR);
        assert_eq!(q(0.5), 0.0);
        assert_eq!(q(1.0), 95.0);
        assert_eq!(quantile([].into_iter(), 0, 0.5, 0.0, 0.0), None);
        assert_eq!(quantile(buckets.iter().copied(), 0, 1.5, 0.0, 0.0), None);
    }
}
