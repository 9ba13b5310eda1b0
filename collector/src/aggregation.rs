//! What a series is and how values aggregate into it: counters summed,
//! gauges the last value, distributions (count, exact sum, extremes,
//! exponential buckets), and the cumulative totals of senders that
//! aggregate at the source, kept per sender.

use crate::memory::{ALLOCATION_BYTES, Memory};
use rustc_hash::FxHashMap;
use stats_core::Kind;
use stats_core::aggregate::{NANOS_PER_SECOND, bucket_of_kind, bucket_value};
use stats_core::prometheus::Exponential;
use stats_core::wire::DecodedDistribution;
use std::mem::size_of;
use std::sync::{Arc, Mutex};

/// The bytes a distribution's map of `capacity` buckets holds: each
/// place's key, count and control byte, at 7/8 of the places used at
/// most, and a group of control bytes and the allocation's own.
fn map_bytes(capacity: usize) -> u64 {
    if capacity == 0 {
        return 0;
    }
    let place = size_of::<((u8, u16), u64)>() + 1;
    (capacity * place * 8 / 7) as u64 + 16 + ALLOCATION_BYTES
}

/// A sender's totals in a series, beside what they hold in buckets, and
/// the series' index in the sender's list.
const CUMULATIVE_BYTES: u64 = (size_of::<Cumulative>() + size_of::<usize>()) as u64;

/// A timer's or histogram's distribution: count, exact sum, extremes, and
/// bucket counts (`stats_core::aggregate`: 16 buckets per power of two on
/// Prometheus's schema 4 boundaries, a timer's in seconds; coarser where a
/// sender sent them at a shift).
#[derive(Clone, Debug, PartialEq)]
pub struct Distribution {
    /// A timer's (values in nanoseconds, buckets in seconds).
    pub timer: bool,
    /// Values in it.
    pub count: u64,
    /// Their sum.
    pub sum: f64,
    /// The smallest (positive infinity when empty).
    pub min: f64,
    /// The largest (negative infinity when empty).
    pub max: f64,
    /// Counts by (shift, bucket id).
    buckets: FxHashMap<(u8, u16), u64>,
}

impl Distribution {
    /// An empty distribution of `kind` (a timer or a histogram).
    pub fn new(kind: Kind) -> Self {
        Distribution {
            timer: kind == Kind::Timer,
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            buckets: FxHashMap::default(),
        }
    }
}

impl Distribution {
    /// Takes in `value` standing for `weight` values, unless it needs a
    /// new bucket and `memory` has no room for one; whether it was taken.
    fn record(&mut self, value: f64, weight: u64, memory: &Memory) -> bool {
        let kind = if self.timer {
            Kind::Timer
        } else {
            Kind::Histogram
        };
        let bucket = (0, bucket_of_kind(kind, value));
        match self.buckets.get_mut(&bucket) {
            Some(count) => *count += weight,
            None => {
                // A full map doubles: its growth is counted before it.
                let room = self.buckets.capacity();
                let growth = if self.buckets.len() == room {
                    map_bytes((room * 2).max(3)) - map_bytes(room)
                } else {
                    0
                };
                if !memory.grow(growth) {
                    return false;
                }
                self.buckets.insert(bucket, weight);
                memory.changed(growth, map_bytes(self.buckets.capacity()) - map_bytes(room));
            }
        }
        self.count += weight;
        self.sum += value * weight as f64;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        true
    }

    /// The distribution a series record of `kind` carries.
    pub(crate) fn from_record(kind: Kind, d: &DecodedDistribution<'_>) -> Self {
        let mut buckets = FxHashMap::default();
        // A version 2 record's converted ids may repeat.
        for (id, count) in d.buckets() {
            *buckets.entry((d.shift as u8, id)).or_default() += count;
        }
        Distribution {
            timer: kind == Kind::Timer,
            count: d.count,
            sum: d.sum,
            min: d.min,
            max: d.max,
            buckets,
        }
    }

    /// The bytes its buckets hold.
    fn bytes(&self) -> u64 {
        map_bytes(self.buckets.capacity())
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
    pub fn buckets(&self) -> impl Iterator<Item = (u32, u16, u64)> + Clone + '_ {
        self.buckets
            .iter()
            .map(|(&(s, id), &c)| (u32::from(s), id, c))
    }

    /// What a bucket's bounds are multiplied by to be in the values' unit
    /// (a timer's buckets are in seconds, its values in nanoseconds).
    pub fn unit(&self) -> f64 {
        if self.timer { NANOS_PER_SECOND } else { 1.0 }
    }

    /// The value at quantile `q` (0 to 1), in the values' unit: the
    /// geometric midpoint of the bucket that holds the `ceil(q × n)`-th
    /// smallest bucketed value, clamped to the extremes; within 2.2% of
    /// the exact quantile for values sent at full precision. `None` when
    /// empty or `q` is out of range.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if !(0.0..=1.0).contains(&q) {
            return None;
        }
        let unit = self.unit();
        let mut points: Vec<(f64, u64)> = self
            .buckets
            .iter()
            .map(|(&(shift, id), &c)| (bucket_value(id, u32::from(shift)) * unit, c))
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

    /// The buckets as an exponential histogram, at the coarsest shift
    /// any was sent at.
    pub fn exponential(&self) -> Exponential {
        Exponential::of(self.buckets())
    }
}

/// Stores `new` in `at` if it is finite.
fn finite(at: &mut f64, new: f64) -> Added {
    if new.is_finite() {
        *at = new;
        Added::Taken
    } else {
        Added::NotFinite
    }
}

/// How taking in a value went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Added {
    Taken,
    /// Not finite, or it would have made a total infinite.
    NotFinite,
    /// It needed a new bucket, and the memory budget had no room.
    NoRoom,
}

/// One series' aggregate.
#[derive(Clone, Debug, PartialEq)]
pub enum Aggregate {
    /// The sum of the values.
    Counter(f64),
    /// The last value.
    Gauge(f64),
    /// Timers (values in ns, buckets in seconds) and histograms.
    Distribution(Distribution),
}

impl Aggregate {
    pub(crate) fn new(kind: Kind) -> Self {
        match kind {
            Kind::Counter => Aggregate::Counter(0.0),
            Kind::Gauge => Aggregate::Gauge(0.0),
            Kind::Timer | Kind::Histogram => Aggregate::Distribution(Distribution::new(kind)),
        }
    }

    /// Takes in `value`: a change to a gauge if `relative`; standing for
    /// `weight` occurrences (a StatsD sample rate of 1/`weight`).
    /// A value that is not finite, or that would make the total infinite
    /// (a counter's sum, a gauge moved by a change, a distribution's sum),
    /// is refused and changes nothing; so is a value that needs a new
    /// bucket when `memory` has no room for one.
    pub(crate) fn add(
        &mut self,
        value: f64,
        relative: bool,
        weight: f64,
        memory: &Memory,
    ) -> Added {
        if !value.is_finite() {
            return Added::NotFinite;
        }
        match self {
            Aggregate::Counter(sum) => finite(sum, *sum + value * weight),
            Aggregate::Gauge(last) if relative => finite(last, *last + value),
            Aggregate::Gauge(last) => finite(last, value),
            Aggregate::Distribution(d) => {
                // A StatsD sample rate's weight, to whole values.
                let weight = if weight == 1.0 {
                    1
                } else {
                    (weight.round() as u64).max(1)
                };
                if !(d.sum + value * weight as f64).is_finite() {
                    Added::NotFinite
                } else if d.record(value, weight, memory) {
                    Added::Taken
                } else {
                    Added::NoRoom
                }
            }
        }
    }

    /// The bytes it holds beyond its own size (a distribution's buckets).
    fn bytes(&self) -> u64 {
        match self {
            Aggregate::Distribution(d) => d.bytes(),
            Aggregate::Counter(_) | Aggregate::Gauge(_) => 0,
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

/// A gauge series' value from events, one for every shard
/// ([`crate::shards`]): one value whichever thread read its datagrams,
/// and when it last changed (the arrival count; 0: never).
#[derive(Debug)]
pub(crate) struct GaugeCell(Mutex<(u64, Aggregate)>);

impl Default for GaugeCell {
    fn default() -> Self {
        GaugeCell(Mutex::new((0, Aggregate::Gauge(0.0))))
    }
}

/// The bytes a cell holds (its allocation's own included).
pub(crate) const CELL_BYTES: u64 =
    (size_of::<GaugeCell>() + 2 * size_of::<usize>()) as u64 + ALLOCATION_BYTES;

impl GaugeCell {
    /// When it last changed, and its value.
    pub(crate) fn read(&self) -> (u64, Aggregate) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Takes in `values` (value, whether a change), in order, at
    /// `arrival`, each as [`Aggregate::add`] takes a gauge's; how many it
    /// refused.
    pub(crate) fn apply(&self, arrival: u64, values: &[(f64, bool)], memory: &Memory) -> u64 {
        let mut cell = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let (at, gauge) = &mut *cell;
        let refused = (values.iter())
            .filter(|&&(value, relative)| gauge.add(value, relative, 1.0, memory) != Added::Taken)
            .count();
        *at = (*at).max(arrival);
        refused as u64
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
    /// Its id, the same in every shard ([`crate::shared`]; `usize::MAX`
    /// for an overflow series).
    pub(crate) id: usize,
    /// The metric name as sent.
    pub name: String,
    /// Its tags as sent.
    pub tags: Vec<(String, String)>,
    /// Its kind.
    pub kind: Kind,
    /// From events (version 1 datagrams, StatsD lines); a gauge's are in
    /// its cell.
    pub(crate) events: Aggregate,
    /// When its value last changed (arrival count): set when frozen (a
    /// gauge's events change in its cell).
    pub(crate) events_arrival: u64,
    /// A gauge's events, shared by every shard ([`crate::gauges`]);
    /// `None` once frozen.
    pub(crate) gauge: Option<Arc<GaugeCell>>,
    /// The shard that holds it named it: its name and tags (in the order
    /// first sent) are the ones shown.
    pub(crate) first: bool,
    /// Each sender's latest totals (version 2 datagrams).
    pub(crate) cumulative: Vec<Cumulative>,
    /// Final totals of senders that started again.
    pub(crate) retired: Aggregate,
}

/// How a sender's totals for a series were taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Taken {
    /// The sender's first totals for the series.
    First,
    /// Newer than the ones they replace.
    Newer,
    /// Not newer than what the series has from the sender: ignored.
    Stale,
    /// The memory budget had no room for them: what the series had stands.
    NoRoom,
}

impl Series {
    /// The bytes a new series of `name` and `tags` holds on the heap: its
    /// strings; its place in the tables is counted with theirs.
    pub(crate) fn cost(name: &str, tags: &[(&str, &str)]) -> u64 {
        let strings: usize = tags.iter().map(|(k, v)| k.len() + v.len()).sum();
        let allocations = 1 + 2 * tags.len() as u64 + u64::from(!tags.is_empty());
        (name.len() + tags.len() * size_of::<(String, String)>() + strings) as u64
            + allocations * ALLOCATION_BYTES
    }

    /// The bytes it holds beyond [`Series::cost`]: its aggregates' buckets
    /// and each sender's totals.
    pub(crate) fn bytes(&self) -> u64 {
        let senders: u64 = (self.cumulative.iter())
            .map(|c| CUMULATIVE_BYTES + c.totals.bytes())
            .sum();
        self.events.bytes() + self.retired.bytes() + senders
    }

    /// Series `id`, empty; a gauge's events go to `gauge`.
    pub(crate) fn new(
        id: usize,
        name: &str,
        tags: &[(&str, &str)],
        kind: Kind,
        gauge: Option<Arc<GaugeCell>>,
    ) -> Self {
        Series {
            id,
            name: name.to_string(),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            kind,
            events: Aggregate::new(kind),
            events_arrival: 0,
            gauge,
            first: false,
            cumulative: Vec::new(),
            retired: Aggregate::new(kind),
        }
    }

    /// The series as it stands, for an export: its name, tags and kind,
    /// and its [`Series::aggregate`] and [`Series::arrival`] as its
    /// events' (no sender's totals apart; a gauge's cell read once).
    pub(crate) fn frozen(mut self) -> Series {
        let events = match &self.gauge {
            Some(cell) => cell.read(),
            None => {
                let events = std::mem::replace(&mut self.events, Aggregate::new(self.kind));
                (self.events_arrival, events)
            }
        };
        let events_arrival = self.arrival_since(events.0);
        let events = self.aggregate_of(events);
        Series {
            events,
            events_arrival,
            gauge: None,
            cumulative: Vec::new(),
            retired: Aggregate::new(self.kind),
            ..self
        }
    }

    /// Adds `other`, the same series as another shard holds it: its
    /// events' and retired totals, and each sender's latest totals (of a
    /// sender's totals in both, the ones of the higher sequence number;
    /// of the same, the first to arrive, as one collector keeps them).
    pub(crate) fn absorb(&mut self, other: Series) {
        if other.first {
            (self.name, self.tags, self.first) = (other.name, other.tags, true);
        }
        self.events.merge(&other.events);
        self.retired.merge(&other.retired);
        for c in other.cumulative {
            match self.cumulative.iter_mut().find(|m| m.sender == c.sender) {
                Some(mine)
                    if mine.sequence < c.sequence
                        || (mine.sequence == c.sequence && c.arrival < mine.arrival) =>
                {
                    *mine = c
                }
                Some(_) => {}
                None => self.cumulative.push(c),
            }
        }
    }

    /// When its value last changed (the collector's arrival count): what
    /// orders gauges that render as one.
    pub(crate) fn arrival(&self) -> u64 {
        let events = (self.gauge.as_ref()).map_or(self.events_arrival, |cell| cell.read().0);
        self.arrival_since(events)
    }

    /// The later of `events` (when its events last changed) and when each
    /// sender's totals arrived.
    fn arrival_since(&self, events: u64) -> u64 {
        (self.cumulative.iter().map(|c| c.arrival)).fold(events, u64::max)
    }

    /// Its events' value, and when it last changed: a gauge's from its
    /// cell.
    fn events(&self) -> (u64, Aggregate) {
        match &self.gauge {
            Some(cell) => cell.read(),
            None => (self.events_arrival, self.events.clone()),
        }
    }

    /// What the series stands at: its events' aggregate, every sender's
    /// latest totals and the retired ones (a gauge: the latest value).
    pub fn aggregate(&self) -> Aggregate {
        self.aggregate_of(self.events())
    }

    /// [`Series::aggregate`], its events' value being `events` (and when
    /// it last changed).
    fn aggregate_of(&self, (arrival, events): (u64, Aggregate)) -> Aggregate {
        if self.kind == Kind::Gauge {
            let mut latest = (arrival, &events);
            for c in &self.cumulative {
                if c.arrival > latest.0 {
                    latest = (c.arrival, &c.totals);
                }
            }
            return latest.1.clone();
        }
        let mut out = events;
        out.merge(&self.retired);
        for c in &self.cumulative {
            out.merge(&c.totals);
        }
        out
    }

    /// Takes in a sender's totals if they are newer than what it has and
    /// `memory` has room for them.
    pub(crate) fn take(
        &mut self,
        sender: u64,
        sequence: u64,
        arrival: u64,
        totals: Aggregate,
        memory: &Memory,
    ) -> Taken {
        let new = Cumulative {
            sender,
            sequence,
            arrival,
            totals,
        };
        match self.cumulative.iter_mut().find(|c| c.sender == sender) {
            Some(c) if sequence <= c.sequence => Taken::Stale,
            Some(c) => {
                let (before, after) = (c.totals.bytes(), new.totals.bytes());
                if after > before && !memory.grow(after - before) {
                    return Taken::NoRoom;
                }
                if after < before {
                    memory.shrink(before - after);
                }
                *c = new;
                Taken::Newer
            }
            None if memory.grow(CUMULATIVE_BYTES + new.totals.bytes()) => {
                self.cumulative.push(new);
                Taken::First
            }
            None => Taken::NoRoom,
        }
    }

    /// A sender's totals are final (it started again): they carry on in
    /// the series, no longer replaced by what it sends next.
    pub(crate) fn retire(&mut self, sender: u64, memory: &Memory) {
        if let Some(at) = self.cumulative.iter().position(|c| c.sender == sender) {
            let before = self.bytes();
            let c = self.cumulative.swap_remove(at);
            if self.kind != Kind::Gauge {
                self.retired.merge(&c.totals);
            }
            memory.changed(before, self.bytes());
        }
    }

    /// Forgets a sender's totals (the sender was forgotten).
    pub(crate) fn forget(&mut self, sender: u64, memory: &Memory) {
        let before = self.bytes();
        self.cumulative.retain(|c| c.sender != sender);
        memory.changed(before, self.bytes());
    }
}
