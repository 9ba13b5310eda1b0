//! Reading series records: [`SeriesIter`] and what it yields, version 2
//! buckets converted as they are read.

use super::{INT_EXTREMES, INT_VALUE, MAX_SHIFT_2, SERIES_VERSION_2, SHIFT_MASK, SHIFT_SHIFT};
use crate::aggregate::MAX_SHIFT;
use crate::event::Kind;
use crate::wire::records;
use crate::wire::{DecodeError, KIND_MASK};
use core::fmt;

/// One series record read from a datagram, borrowing its name and tags.
#[derive(Clone, Debug)]
pub struct DecodedSeries<'a> {
    /// The metric's name.
    pub name: &'a str,
    tags: crate::wire::WireTags<'a>,
    /// The series' kind.
    pub kind: Kind,
    /// Index of the metric's key within this datagram.
    pub key_index: u8,
    /// The totals since the sender started.
    pub totals: DecodedTotals<'a>,
}

impl<'a> DecodedSeries<'a> {
    /// The metric's tags as (key, value) pairs.
    pub fn tags(&self) -> crate::wire::WireTags<'a> {
        self.tags.clone()
    }
}

/// The totals of a [`DecodedSeries`].
#[derive(Clone, Debug, PartialEq)]
pub enum DecodedTotals<'a> {
    /// A counter.
    Counter {
        /// The sum of every addition (wrapping `i64`).
        sum: i64,
        /// How many additions.
        count: u64,
    },
    /// A gauge.
    Gauge {
        /// Its value.
        value: f64,
        /// How many times it was set or moved.
        changes: u64,
    },
    /// A timer's or histogram's distribution.
    Distribution(DecodedDistribution<'a>),
}

/// A distribution as a series record carries it.
#[derive(Clone, Debug, PartialEq)]
pub struct DecodedDistribution<'a> {
    /// Values recorded: the bucket counts plus `unbucketed`.
    pub count: u64,
    /// Their sum.
    pub sum: f64,
    /// The smallest (positive infinity when empty).
    pub min: f64,
    /// The largest (negative infinity when empty).
    pub max: f64,
    /// Values the sender counted without a bucket.
    pub unbucketed: u64,
    /// The bucket ids' shift (see [`crate::aggregate::bucket_range`]);
    /// 0 for a version 2 record, whose ids are converted to shift 0.
    pub shift: u32,
    /// The encoded bucket list, checked.
    list: &'a [u8],
    /// A version 2 record's shift, and whether it is a timer's.
    version_2: Option<(u32, bool)>,
}

impl<'a> DecodedDistribution<'a> {
    /// The buckets as `(id, count)` at [`DecodedDistribution::shift`]: in
    /// ascending id order, each once, from a version 3 record; from a
    /// version 2 one, each old bucket's count in the bucket of its
    /// midpoint (an id may then come more than once, out of order: add
    /// them up), so counts are exact and placed within the old buckets'
    /// 3.1%.
    pub fn buckets(&self) -> DecodedBuckets<'a> {
        DecodedBuckets {
            rest: self.list,
            previous: None,
            version_2: self.version_2,
        }
    }
}

/// Iterator over a [`DecodedDistribution`]'s buckets.
#[derive(Clone, Debug)]
pub struct DecodedBuckets<'a> {
    rest: &'a [u8],
    previous: Option<u16>,
    version_2: Option<(u32, bool)>,
}

/// The bucket (at shift 0) of the midpoint of version 2's bucket `id` at
/// `shift`: magnitudes from the `f64` of bits `(id << shift & 0x7FFF) << 48`
/// to the next id's, negative when bit 15 is set; a timer's in
/// nanoseconds.
fn version_2_bucket(id: u16, shift: u32, timer: bool) -> u16 {
    let first = u32::from(id) << shift;
    let magnitude = |i: u32| f64::from_bits(u64::from(i & 0x7FFF) << 48);
    let last = first + (1 << shift) - 1;
    let high = if last & 0x7FFF >= 0x7FEF {
        f64::MAX
    } else {
        magnitude(last + 1)
    };
    let low = magnitude(first);
    let mid = low + (high - low) / 2.0;
    let value = if first & 0x8000 != 0 { -mid } else { mid };
    if timer {
        crate::aggregate::timer_bucket_of(value)
    } else {
        crate::aggregate::bucket_of(value)
    }
}

impl Iterator for DecodedBuckets<'_> {
    type Item = (u16, u64);

    fn next(&mut self) -> Option<(u16, u64)> {
        // Checked when the record was read: these reads cannot fail.
        let (step, rest) = crate::wire::primitives::take_u64(self.rest).ok()?;
        if step == 0 {
            return None;
        }
        let (count, rest) = crate::wire::primitives::take_u64(rest).ok()?;
        self.rest = rest;
        let id = match self.previous {
            None => step - 1,
            Some(p) => u64::from(p) + step,
        } as u16;
        self.previous = Some(id);
        match self.version_2 {
            None => Some((id, count)),
            Some((shift, timer)) => Some((version_2_bucket(id, shift, timer), count)),
        }
    }
}

/// Iterator over a series datagram's records. After the first error it
/// yields that error and then ends.
pub struct SeriesIter<'a> {
    /// The datagram's version ([`SERIES_VERSION`] or [`SERIES_VERSION_2`]).
    pub(in crate::wire) version: u8,
    pub(in crate::wire) rest: &'a [u8],
    pub(in crate::wire) keys: heapless::Vec<
        crate::wire::key_definition::KeyEntry<'a>,
        { crate::wire::MAX_KEYS_PER_DATAGRAM },
    >,
    pub(in crate::wire) left: u16,
    pub(in crate::wire) failed: bool,
}

impl fmt::Debug for SeriesIter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SeriesIter")
            .field("left", &self.left)
            .finish_non_exhaustive()
    }
}

impl<'a> SeriesIter<'a> {
    #[inline]
    fn next_series(&mut self) -> Result<DecodedSeries<'a>, DecodeError> {
        use crate::wire::primitives::{take_f64, take_i64, take_u32, take_u64};
        let (index, rest) = take_u32(self.rest)?;
        let (key, rest) = crate::wire::key_definition::take_key(&mut self.keys, index, rest)?;
        let (&meta, rest) = rest.split_first().ok_or(DecodeError::Truncated)?;
        let bad = DecodeError::BadMeta { meta };
        let kind = Kind::from_code(meta & KIND_MASK).ok_or(bad)?;
        let shift = u32::from((meta & SHIFT_MASK) >> SHIFT_SHIFT);
        let value = |int: bool, rest: &'a [u8]| -> Result<(f64, &'a [u8]), DecodeError> {
            if int {
                let (i, rest) = take_i64(rest)?;
                Ok((i as f64, rest))
            } else {
                take_f64(rest)
            }
        };
        let (totals, rest) = match kind {
            Kind::Counter => {
                if meta & !KIND_MASK != 0 {
                    return Err(bad);
                }
                let (sum, rest) = take_i64(rest)?;
                let (count, rest) = take_u64(rest)?;
                (DecodedTotals::Counter { sum, count }, rest)
            }
            Kind::Gauge => {
                if meta & (SHIFT_MASK | INT_EXTREMES) != 0 {
                    return Err(bad);
                }
                let (v, rest) = value(meta & INT_VALUE != 0, rest)?;
                let (changes, rest) = take_u64(rest)?;
                (DecodedTotals::Gauge { value: v, changes }, rest)
            }
            Kind::Timer | Kind::Histogram => {
                let version_2 = self.version == SERIES_VERSION_2;
                if shift > if version_2 { MAX_SHIFT_2 } else { MAX_SHIFT } {
                    return Err(bad);
                }
                let top = u64::from(u16::MAX >> shift);
                let start = rest;
                let mut rest = rest;
                let mut previous: Option<u64> = None;
                let mut bucketed: u64 = 0;
                loop {
                    let (step, r) = take_u64(rest)?;
                    rest = r;
                    if step == 0 {
                        break;
                    }
                    let (count, r) = take_u64(rest)?;
                    rest = r;
                    let id = match previous {
                        None => step - 1,
                        Some(p) => p.checked_add(step).ok_or(DecodeError::BadBuckets)?,
                    };
                    if id > top || count == 0 {
                        return Err(DecodeError::BadBuckets);
                    }
                    bucketed = bucketed.checked_add(count).ok_or(DecodeError::BadBuckets)?;
                    previous = Some(id);
                }
                let list = &start[..start.len() - rest.len()];
                let (unbucketed, rest) = take_u64(rest)?;
                let (sum, rest) = value(meta & INT_VALUE != 0, rest)?;
                let (min, max, rest) = if meta & INT_EXTREMES != 0 {
                    let (lo, rest) = take_i64(rest)?;
                    let (hi, rest) = take_i64(rest)?;
                    (lo as f64, hi as f64, rest)
                } else {
                    let (lo, rest) = take_f64(rest)?;
                    let (hi, rest) = take_f64(rest)?;
                    (lo, hi, rest)
                };
                let count = bucketed
                    .checked_add(unbucketed)
                    .ok_or(DecodeError::BadBuckets)?;
                (
                    DecodedTotals::Distribution(DecodedDistribution {
                        count,
                        sum,
                        min,
                        max,
                        unbucketed,
                        shift: if version_2 { 0 } else { shift },
                        list,
                        version_2: version_2.then_some((shift, kind == Kind::Timer)),
                    }),
                    rest,
                )
            }
        };
        self.rest = rest;
        Ok(DecodedSeries {
            name: key.name,
            tags: key.tags(),
            kind,
            key_index: index as u8,
            totals,
        })
    }
}

impl<'a> Iterator for SeriesIter<'a> {
    type Item = Result<DecodedSeries<'a>, DecodeError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if let Some(instead) = records::before_record(&mut self.left, &mut self.failed, self.rest) {
            return instead;
        }
        let series = self.next_series();
        self.failed = series.is_err();
        Some(series)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        records::size_hint(self.left)
    }
}
