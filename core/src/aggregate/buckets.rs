//! The buckets of a distribution: log-linear over the bits of an `f64`.
//!
//! A finite value's bucket is the top 16 bits of its IEEE 754 encoding:
//! the sign, the 11-bit exponent and the 4 leading bits of the mantissa
//! ([`bucket_of`] is one shift). So every power of two is split into 16
//! buckets, each at most 1/16 of its lower bound wide; the midpoint of the
//! bucket that holds a value is within 1/32 (3.125%) of it
//! ([`MAX_RELATIVE_ERROR`]). Zero and the subnormals (magnitudes below
//! 2^-1022) share the buckets of exponent 0, where the bound is absolute
//! (below 2^-1022) rather than relative. No table, no logarithm, no float
//! arithmetic: a microcontroller without an FPU buckets a value with
//! integer instructions only.
//!
//! A *shift* `s` merges buckets: bucket `id >> s` covers `2^s` neighbours,
//! so a distribution that has too many distinct buckets for one datagram
//! travels at lower precision (shift 1: 8 buckets per power of two; shift
//! 4: one; beyond, several powers of two per bucket). Shifting never merges
//! a negative bucket with a positive one.

/// Bits of mantissa kept in a bucket id: 16 buckets per power of two.
pub const PRECISION_BITS: u32 = 4;

/// Largest relative distance between a value and the midpoint of its bucket
/// at full precision (shift 0), for magnitudes of 2^-1022 and above.
pub const MAX_RELATIVE_ERROR: f64 = 1.0 / 32.0;

/// The largest shift a bucket list may be sent at (4,096 neighbours merged).
pub const MAX_SHIFT: u32 = 12;

/// The bucket of a finite `value` (the caller refuses NaN and infinities).
#[inline]
pub const fn bucket_of(value: f64) -> u16 {
    (value.to_bits() >> 48) as u16
}

/// The sign bit of a bucket id.
const SIGN: u16 = 0x8000;

/// The magnitudes bucket `id` (at `shift`) covers: `[low, high)`, and
/// whether its values are negative.
pub fn bucket_range(id: u16, shift: u32) -> (f64, f64, bool) {
    let shift = shift.min(15);
    let first = u32::from(id) << shift;
    let negative = first & u32::from(SIGN) != 0;
    let magnitude = |i: u32| f64::from_bits(u64::from(i & 0x7FFF) << 48);
    let last = first + (1 << shift) - 1;
    // The bucket above the top of a sign's range is infinity: cap it at
    // the largest finite magnitude.
    let high = if last & 0x7FFF >= 0x7FEF {
        f64::MAX
    } else {
        magnitude(last + 1)
    };
    (magnitude(first), high, negative)
}

/// The value a quantile answers with for bucket `id` at `shift`: the
/// midpoint of its range (negative for negative buckets).
pub fn bucket_value(id: u16, shift: u32) -> f64 {
    let (low, high, negative) = bucket_range(id, shift);
    let mid = low + (high - low) / 2.0;
    if negative { -mid } else { mid }
}

/// Sorts bucket ids by the values they hold (negative buckets, largest
/// magnitude first, then positive ones): the order quantiles walk.
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

    #[test]
    fn a_bucket_holds_its_values_within_the_stated_error() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..if cfg!(miri) { 500 } else { 100_000 } {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Magnitudes from 1e-300 to 1e300, both signs.
            let exp = -300.0 + 600.0 * (x >> 11) as f64 / (1u64 << 53) as f64;
            let sign = if x & 1 == 0 { 1.0 } else { -1.0 };
            let v = sign * 10f64.powf(exp);
            let id = bucket_of(v);
            let (low, high, negative) = bucket_range(id, 0);
            assert_eq!(negative, v < 0.0, "{v}");
            assert!(
                low <= v.abs() && v.abs() < high,
                "{v} not in [{low}, {high})"
            );
            let mid = bucket_value(id, 0);
            assert!(
                (mid - v).abs() <= MAX_RELATIVE_ERROR * v.abs(),
                "{v}: {mid}"
            );
        }
    }

    #[test]
    fn shifted_buckets_cover_their_neighbours_and_keep_signs_apart() {
        for shift in 0..=MAX_SHIFT {
            for v in [1.0, 1.5, 3.0, 1e-9, 123_456.0, -2.0, -0.5, 0.0, -0.0] {
                let id = bucket_of(v) >> shift;
                let (low, high, negative) = bucket_range(id, shift);
                assert_eq!(negative, v.is_sign_negative(), "{v} at {shift}");
                assert!(low <= v.abs() && v.abs() < high, "{v} at {shift}");
            }
            // The largest positive id and the smallest negative one stay apart.
            assert_ne!(bucket_of(f64::MAX) >> shift, bucket_of(-0.0) >> shift);
        }
        // The top bucket is capped at the largest finite value.
        assert_eq!(bucket_range(bucket_of(f64::MAX), 0).1, f64::MAX);
    }

    #[test]
    fn quantiles_walk_buckets_in_value_order() {
        let values = [-8.0, -1.0, 0.0, 2.0, 3.0, 100.0];
        let mut buckets: Vec<(u16, u64)> = values.iter().map(|&v| (bucket_of(v), 1)).collect();
        buckets.sort_by_key(|&(id, _)| value_order(id));
        let q = |q| quantile(buckets.iter().copied(), 0, q, -8.0, 100.0).unwrap();
        // Clamped to the minimum; then within the error of -1; zero's
        // bucket; clamped to the maximum.
        assert_eq!(q(0.0), -8.0);
        assert!((q(0.3) + 1.0).abs() <= MAX_RELATIVE_ERROR);
        assert!(q(0.5).abs() < 1e-300);
        assert_eq!(q(1.0), 100.0);
        assert_eq!(quantile([].into_iter(), 0, 0.5, 0.0, 0.0), None);
        assert_eq!(quantile(buckets.iter().copied(), 0, 1.5, 0.0, 0.0), None);
    }
}
