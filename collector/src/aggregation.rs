//! What a series is and how values aggregate into it: counters summed,
//! gauges the last value, distributions (count, exact sum, extremes,
//! log-linear buckets), and the cumulative totals of senders that
//! aggregate at the source, kept per sender.

use stats_core::Kind;
use stats_core::aggregate::{bucket_of, bucket_value};
use stats_core::wire::DecodedDistribution;
use std::collections::BTreeMap;

/// A timer's or histogram's distribution: count, exact sum, extremes, and
/// bucket counts (`stats_core::aggregate`: 16 buckets per power of two,
/// coarser where a sender sent them at a shift).
#[derive(Clone, Debug, PartialEq)]
pub struct Distribution {
    /// Values in it.
    pub count: u64,
    /// Their sum.
    pub sum: f64,
    /// The smallest (positive infinity when empty).
    pub min: f64,
    /// The largest (negative infinity when empty).
    pub max: f64,
    /// Counts by (shift, bucket id).
    buckets: BTreeMap<(u8, u16), u64>,
}

impl Default for Distribution {
    fn default() -> Self {
        Distribution {
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            buckets: BTreeMap::new(),
        }
    }
}

impl Distribution {
    /// Takes in `value` standing for `weight` values.
    fn record(&mut self, value: f64, weight: u64) {
        *self.buckets.entry((0, bucket_of(value))).or_default() += weight;
        self.count += weight;
        self.sum += value * weight as f64;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
    }

    /// The distribution a series record carries.
    pub(crate) fn from_record(d: &DecodedDistribution<'_>) -> Self {
        Distribution {
            count: d.count,
            sum: d.sum,
            min: d.min,
            max: d.max,
            buckets: d
                .buckets()
                .map(|(id, count)| ((d.shift as u8, id), count))
                .collect(),
        }
    }

    /// Adds `other` in.
    pub(crate) fn merge(&mut self, other: &Distribution) {
        for (&bucket, &count) in &other.buckets {
            *self.buckets.entry(bucket).or_default() += count;
        }
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// The buckets as (shift, id, count), in no particular value order.
    pub fn buckets(&self) -> impl Iterator<Item = (u8, u16, u64)> + '_ {
        self.buckets.iter().map(|(&(s, id), &c)| (s, id, c))
    }

    /// The value at quantile `q` (0 to 1): the midpoint of the bucket that
    /// holds the `ceil(q × n)`-th smallest bucketed value, clamped to the
    /// extremes; within 3.1% of the exact quantile for values sent at full
    /// precision. `None` when empty or `q` is out of range.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if !(0.0..=1.0).contains(&q) {
            return None;
        }
        let mut points: Vec<(f64, u64)> = self
            .buckets
            .iter()
            .map(|(&(shift, id), &c)| (bucket_value(id, u32::from(shift)), c))
            .collect();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        let total: u64 = points.iter().map(|p| p.1).sum();
        if total == 0 {
            return None;
        }
        let x = q * total as f64;
        let rank = (x.ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (value, c) in points {
            seen += c;
            if seen >= rank {
                return Some(value.clamp(self.min, self.max));
            }
        }
        None
    }
}

/// Stores `new` in `at` if it is finite; whether it was.
fn finite(at: &mut f64, new: f64) -> bool {
    new.is_finite() && {
        *at = new;
        true
    }
}

/// One series' aggregate.
#[derive(Clone, Debug, PartialEq)]
pub enum Aggregate {
    /// The sum of the values.
    Counter(f64),
    /// The last value.
    Gauge(f64),
    /// Timers (ns) and histograms.
    Distribution(Distribution),
}

impl Aggregate {
    pub(crate) fn new(kind: Kind) -> Self {
        match kind {
            Kind::Counter => Aggregate::Counter(0.0),
            Kind::Gauge => Aggregate::Gauge(0.0),
            Kind::Timer | Kind::Histogram => Aggregate::Distribution(Distribution::default()),
        }
    }

    /// Takes in `value`: a change to a gauge if `relative`; standing for
    /// `weight` occurrences (a StatsD sample rate of 1/`weight`).
    /// Whether it was taken: a value that is not finite, or that would
    /// make the total infinite (a counter's sum, a gauge moved by a
    /// change, a distribution's sum), is refused and changes nothing.
    pub(crate) fn add(&mut self, value: f64, relative: bool, weight: f64) -> bool {
        if !value.is_finite() {
            return false;
        }
        match self {
            Aggregate::Counter(sum) => finite(sum, *sum + value * weight),
            Aggregate::Gauge(last) if relative => finite(last, *last + value),
            Aggregate::Gauge(last) => finite(last, value),
            Aggregate::Distribution(d) => {
                let weight = (weight.round() as u64).max(1);
                (d.sum + value * weight as f64).is_finite() && {
                    d.record(value, weight);
                    true
                }
            }
        }
    }

    /// Adds a counter's or distribution's totals in (gauges are not
    /// summed: the later one is kept).
    pub(crate) fn merge(&mut self, other: &Aggregate) {
        match (self, other) {
            (Aggregate::Counter(a), Aggregate::Counter(b)) => *a += b,
            (Aggregate::Distribution(a), Aggregate::Distribution(b)) => a.merge(b),
            (Aggregate::Gauge(a), Aggregate::Gauge(b)) => *a = *b,
            _ => {}
        }
    }
}

/// A sender's latest totals for a series.
#[derive(Clone, Debug)]
pub(crate) struct Cumulative {
    pub(crate) sender: u64,
    /// The sequence number of the datagram they came in.
    pub(crate) sequence: u64,
    /// When they arrived (the collector's datagram count), so the latest
    /// gauge value wins.
    pub(crate) arrival: u64,
    pub(crate) totals: Aggregate,
}

/// A series: its name, tags, kind, and what has been aggregated.
#[derive(Clone, Debug)]
pub struct Series {
    /// The metric name as sent.
    pub name: String,
    /// Its tags as sent.
    pub tags: Vec<(String, String)>,
    /// Its kind.
    pub kind: Kind,
    /// From events (version 1 datagrams, StatsD lines).
    pub(crate) events: Aggregate,
    /// When the events' gauge value last changed (arrival count).
    pub(crate) events_arrival: u64,
    /// Each sender's latest totals (version 2 datagrams).
    pub(crate) cumulative: Vec<Cumulative>,
    /// Final totals of senders that started again.
    pub(crate) retired: Aggregate,
}

impl Series {
    pub(crate) fn new(name: &str, tags: &[(&str, &str)], kind: Kind) -> Self {
        Series {
            name: name.to_string(),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            kind,
            events: Aggregate::new(kind),
            events_arrival: 0,
            cumulative: Vec::new(),
            retired: Aggregate::new(kind),
        }
    }

    /// When its value last changed (the collector's datagram count): what
    /// orders gauges that render as one.
    pub(crate) fn arrival(&self) -> u64 {
        self.cumulative
            .iter()
            .map(|c| c.arrival)
            .fold(self.events_arrival, u64::max)
    }

    /// What the series stands at: its events' aggregate, every sender's
    /// latest totals and the retired ones (a gauge: the latest value).
    pub fn aggregate(&self) -> Aggregate {
        if self.kind == Kind::Gauge {
            let mut latest = (self.events_arrival, &self.events);
            for c in &self.cumulative {
                if c.arrival > latest.0 {
                    latest = (c.arrival, &c.totals);
                }
            }
            return latest.1.clone();
        }
        let mut out = self.events.clone();
        out.merge(&self.retired);
        for c in &self.cumulative {
            out.merge(&c.totals);
        }
        out
    }

    /// Takes in a sender's totals if they are newer than what it has;
    /// whether they were new to this series.
    pub(crate) fn take(
        &mut self,
        sender: u64,
        sequence: u64,
        arrival: u64,
        totals: Aggregate,
    ) -> bool {
        match self.cumulative.iter_mut().find(|c| c.sender == sender) {
            Some(c) => {
                if sequence > c.sequence {
                    *c = Cumulative {
                        sender,
                        sequence,
                        arrival,
                        totals,
                    };
                }
                false
            }
            None => {
                self.cumulative.push(Cumulative {
                    sender,
                    sequence,
                    arrival,
                    totals,
                });
                true
            }
        }
    }

    /// A sender's totals are final (it started again): they carry on in
    /// the series, no longer replaced by what it sends next.
    pub(crate) fn retire(&mut self, sender: u64) {
        if let Some(at) = self.cumulative.iter().position(|c| c.sender == sender) {
            let c = self.cumulative.swap_remove(at);
            if self.kind != Kind::Gauge {
                self.retired.merge(&c.totals);
            }
        }
    }
}
