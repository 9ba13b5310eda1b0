//! StatsD lines from cumulative totals: what changed since the last time
//! a series was sent, for agents that aggregate per interval. Both the
//! client (aggregating at the source, with a StatsD codec) and the
//! collector (forwarding to an agent) send these.
//!
//! For each series that changed:
//!
//! * a counter: the increase (`name:N|c`);
//! * a gauge: its value (`name:V|g`);
//! * a timer or histogram: for each bucket that gained values, a value
//!   that stands for it, with a sample rate of 1/count (`name:2|ms|@0.25`
//!   stands for 4 values in 2 ms's bucket): the agent's count is exact,
//!   its percentiles within the buckets' 2.2%. The value is one that could
//!   have been recorded ([`stand_in`]): an extreme alone in its bucket,
//!   0 for the zero bucket, the one integer a bucket holds when it holds
//!   one (a timer's in milliseconds), else the bucket's geometric
//!   midpoint, always within the series' minimum and maximum. Buckets
//!   that gained the same count share a line in DogStatsD (1.1,
//!   `name:2:3.7|d|@0.5`); Etsy StatsD gets a line each.
//!
//! These are deltas, so a lost datagram loses its lines for good: loss
//! immunity is the native format's (cumulative series datagrams). The
//! lines are written and packed into datagrams by a
//! [`Packer`](super::packer::Packer).

use crate::aggregate::{NANOS_PER_SECOND, stand_in};
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

/// A series' totals now.
pub enum Current<'a> {
    /// A counter's total.
    Counter(f64),
    /// A gauge's value.
    Gauge(f64),
    /// A distribution: its bucket counts by (shift, id), its extremes,
    /// and whether it is a timer's (values in nanoseconds, buckets in
    /// seconds).
    Distribution {
        /// Bucket counts by (shift, id).
        buckets: &'a mut dyn Iterator<Item = ((u8, u16), u64)>,
        /// The smallest value.
        min: f64,
        /// The largest value.
        max: f64,
        /// A timer's.
        timer: bool,
    },
}

/// Nanoseconds in a millisecond: a timer's lines are in milliseconds.
const NANOS_PER_MILLI: f64 = 1e6;

/// What a series stood at when it was last sent.
enum Last {
    Counter(f64),
    Gauge(u64),
    Distribution(BTreeMap<(u8, u16), u64>),
}

/// Each series' totals as last sent, by series index.
#[derive(Default)]
pub struct Deltas {
    last: Vec<Option<Last>>,
}

impl Deltas {
    /// Calls `line(values, sample_rate)` for the values series `index`
    /// needs sent now that it stands at `current` (values of one rate
    /// together), and remembers `current`.
    pub fn lines(&mut self, index: usize, current: Current<'_>, mut line: impl FnMut(&[f64], f64)) {
        if self.last.len() <= index {
            self.last.resize_with(index + 1, || None);
        }
        let last = &mut self.last[index];
        match current {
            Current::Counter(total) => {
                let before = match last {
                    Some(Last::Counter(v)) => *v,
                    _ => 0.0,
                };
                if total != before {
                    line(&[total - before], 1.0);
                }
                *last = Some(Last::Counter(total));
            }
            Current::Gauge(value) => {
                if !matches!(last, Some(Last::Gauge(bits)) if *bits == value.to_bits()) {
                    line(&[value], 1.0);
                }
                *last = Some(Last::Gauge(value.to_bits()));
            }
            Current::Distribution {
                buckets,
                min,
                max,
                timer,
            } => {
                let now: BTreeMap<(u8, u16), u64> = buckets.collect();
                // A timer's stand-ins are found in milliseconds (its
                // buckets are in seconds) and given back in nanoseconds.
                let value = |id: u16, shift: u8, count: u64| {
                    let shift = u32::from(shift);
                    if timer {
                        let unit = NANOS_PER_SECOND / NANOS_PER_MILLI;
                        let ms = |ns: f64| ns / NANOS_PER_MILLI;
                        stand_in(id, shift, count, unit, ms(min), ms(max)) * NANOS_PER_MILLI
                    } else {
                        stand_in(id, shift, count, 1.0, min, max)
                    }
                };
                // Stand-ins by the count their bucket gained.
                let mut gained: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
                for (&(shift, id), &count) in &now {
                    let before = match last {
                        Some(Last::Distribution(b)) => b.get(&(shift, id)).copied().unwrap_or(0),
                        _ => 0,
                    };
                    if count > before {
                        gained
                            .entry(count - before)
                            .or_default()
                            .push(value(id, shift, count));
                    }
                }
                for (count, values) in &gained {
                    line(values, 1.0 / *count as f64);
                }
                *last = Some(Last::Distribution(now));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::{bucket_of, timer_bucket_of};
    use std::vec;

    /// Sends `values` (each `count` times) as one interval of a
    /// distribution; the (value, sample rate) pairs its lines carry.
    fn lines(values: &[(f64, u64)], timer: bool) -> Vec<(f64, f64)> {
        let mut counts: BTreeMap<(u8, u16), u64> = BTreeMap::new();
        for &(v, n) in values {
            let id = if timer {
                timer_bucket_of(v)
            } else {
                bucket_of(v)
            };
            *counts.entry((0, id)).or_default() += n;
        }
        let min = values.iter().map(|v| v.0).fold(f64::INFINITY, f64::min);
        let max = values.iter().map(|v| v.0).fold(f64::NEG_INFINITY, f64::max);
        let mut buckets = counts.into_iter();
        let mut out = vec![];
        Deltas::default().lines(
            0,
            Current::Distribution {
                buckets: &mut buckets,
                min,
                max,
                timer,
            },
            |values, rate| out.extend(values.iter().map(|&v| (v, rate))),
        );
        out.sort_by(|a, b| a.0.total_cmp(&b.0));
        out
    }

    /// Small integers recorded come out as exactly those values, with
    /// their counts; 0 as 0, never a subnormal stand-in.
    #[test]
    fn recorded_integers_come_out_as_recorded() {
        let got = lines(
            &[(0.0, 4), (1.0, 3), (2.0, 2), (3.0, 1), (7.0, 5), (15.0, 2)],
            false,
        );
        assert_eq!(
            got,
            [
                (0.0, 0.25),
                (1.0, 1.0 / 3.0),
                (2.0, 0.5),
                (3.0, 1.0),
                (7.0, 0.2),
                (15.0, 0.5)
            ]
        );
    }

    /// A timer of exactly 2 ms goes as 2 (in nanoseconds here, 2 in the
    /// millisecond line); extremes alone in their buckets as themselves.
    #[test]
    fn timers_come_out_in_whole_milliseconds_and_extremes_as_themselves() {
        let got = lines(&[(2e6, 3), (1.5e6, 1), (250e6, 1)], true);
        assert_eq!(got, [(1.5e6, 1.0), (2e6, 1.0 / 3.0), (250e6, 1.0)]);
    }
}
