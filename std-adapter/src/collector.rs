//! The collector's state: what arrived from whom, and the aggregates of
//! every series. No I/O: the `stats-collector` binary feeds it datagrams
//! and serves what it renders.
//!
//! * **Per-sender accounting** from each datagram's sender id and sequence
//!   number: datagrams received, lost (sequence gaps), duplicated,
//!   reordered (arrived after a later one), and restarts (a sender's
//!   sequence starting again from the beginning, or going back together
//!   with its clock: a device with a fixed sender id that rebooted). A
//!   64-datagram window tells duplicates from late arrivals; a datagram
//!   counted as lost that turns up later is taken back off the losses. A
//!   jump ahead larger than [`MAX_SEQUENCE_JUMP`] is suspect (forged or
//!   corrupt): ignored and counted, not loss.
//! * **Invalid datagrams** are counted by error kind and otherwise ignored.
//! * **StatsD and DogStatsD** datagrams (anything not starting with the
//!   format's magic) are read line by line and aggregated the same way;
//!   they carry no sequence numbers, so they are counted but not accounted.
//! * **Events** (version 1 datagrams, and StatsD lines) are aggregated per
//!   series (name, tags and kind): counters summed, gauges keep their last
//!   value, timers and histograms into a distribution (count, exact sum,
//!   extremes, log-linear buckets with 3.1% error).
//! * **Totals** (version 2 datagrams, from senders that aggregate at the
//!   source) are cumulative: the collector keeps, per series and sender,
//!   the record with the highest sequence number, so a lost, duplicated or
//!   reordered datagram changes nothing once a later record arrives. A
//!   series' value is its events' aggregate plus every sender's latest
//!   totals plus the final totals of senders that restarted (carried on,
//!   so the series stays monotonic when a sender starts again from zero).
//! * **Bounded memory**: at most `max_series` series (further events fold
//!   into one overflow series per kind, counted; further totals are
//!   counted and not kept: a total cannot be added into another series')
//!   and `max_senders` tracked senders. A sender proves itself with a
//!   second datagram; when the table is full, a new sender takes the place
//!   of the oldest one that has not (a flood of one-datagram ids cannot
//!   push out real senders), and past that, datagrams from others are
//!   aggregated but not accounted, and counted.

use crate::forward::{Forward, ForwardStats, Forwarder};
use crate::http::Response;
use crate::prometheus::{Text, sanitize};
use rustc_hash::FxHashMap;
use socket2::{Domain, Protocol, Socket, Type};
use stats_core::aggregate::{bucket_of, bucket_value};
use stats_core::wire::statsd::{self, MetricType};
use stats_core::wire::{DecodeError, DecodedDistribution, DecodedTotals, Header, MAGIC, decode};
use stats_core::{Key, Kind};
use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// `e` with what it was about in front: `UDP 127.0.0.1:8125: Address
/// already in use`.
fn context(e: io::Error, what: std::fmt::Arguments<'_>) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// Limits on what the collector keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Series kept; further ones fold into an overflow series per kind.
    pub max_series: usize,
    /// Senders whose sequences are tracked.
    pub max_senders: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_series: 10_000,
            max_senders: 1_024,
        }
    }
}

/// What one sender's datagrams did on the way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SenderStats {
    /// Datagrams received (duplicates not included).
    pub received: u64,
    /// Events (or series records) in them.
    pub events: u64,
    /// Sequence numbers skipped and not (yet) seen.
    pub lost: u64,
    /// Datagrams seen twice.
    pub duplicated: u64,
    /// Datagrams that arrived after a later one.
    pub reordered: u64,
    /// Times the sequence started again.
    pub restarts: u64,
    /// Datagrams ignored because their sequence jumped further ahead than
    /// any sender's could ([`MAX_SEQUENCE_JUMP`]): forged or corrupt, not
    /// loss.
    pub suspect: u64,
}

/// Sequence window and counts for one sender.
#[derive(Clone, Debug, Default)]
struct SenderState {
    highest: u64,
    /// The base timestamp of the datagram with the highest sequence.
    highest_timestamp: u64,
    /// Bit `i`: sequence `highest - i` was received.
    window: u64,
    /// When its totals started (series datagrams), to tell a restart.
    started: Option<u64>,
    /// The series it has sent totals for.
    series: Vec<usize>,
    /// The sequence of the last suspect datagram: a second one just after
    /// it is a sender that really is there (it resynchronises).
    suspect_at: Option<u64>,
    stats: SenderStats,
}

/// How far back a sequence number may be before it counts as a restart
/// (when it is also near zero) or as too late to tell.
const WINDOW: u64 = 64;

/// The furthest a sender's sequence may jump ahead (datagrams it sent that
/// never arrived): 2^24, minutes of loss at the highest rate a sender
/// reaches and hours at common ones. A larger jump (one forged datagram
/// with sequence 2^64 − 1, say) is not counted as loss: the datagram is
/// ignored and counted as suspect. A sender that really did jump (its
/// next datagram follows the suspect one within 64) is taken from there,
/// the suspect one still counted.
pub const MAX_SEQUENCE_JUMP: u64 = 1 << 24;

/// A datagram with an earlier sequence number whose clock is this much
/// behind the latest one comes from a restarted sender (its clock started
/// again), not from the network reordering: 1 s.
const RESTART_CLOCK_STEP_NS: u64 = 1_000_000_000;

/// What a datagram's sequence number says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Seen {
    /// Not seen before.
    New,
    /// A duplicate: ignore it.
    Duplicate,
    /// The sender started again: what it sent before is final.
    Restart,
    /// A jump no sender makes: ignore it.
    Suspect,
}

impl SenderState {
    fn first(sequence: u64, timestamp: u64) -> Self {
        SenderState {
            highest: sequence,
            highest_timestamp: timestamp,
            window: 1,
            stats: SenderStats {
                received: 1,
                ..SenderStats::default()
            },
            ..SenderState::default()
        }
    }

    fn restart(&mut self, sequence: u64, timestamp: u64) -> Seen {
        self.stats.restarts += 1;
        self.take_from(sequence, timestamp);
        Seen::Restart
    }

    /// Accounts from `sequence` on, as from a first datagram.
    fn take_from(&mut self, sequence: u64, timestamp: u64) {
        self.stats.received += 1;
        self.highest = sequence;
        self.highest_timestamp = timestamp;
        self.window = 1;
    }

    /// Takes in `sequence` (with the datagram's base timestamp).
    fn observe(&mut self, sequence: u64, timestamp: u64) -> Seen {
        let s = &mut self.stats;
        if sequence <= self.highest
            && timestamp.saturating_add(RESTART_CLOCK_STEP_NS) < self.highest_timestamp
        {
            // The sender's sequence and clock both started again (a device
            // with a fixed sender id rebooting).
            return self.restart(sequence, timestamp);
        }
        if sequence > self.highest {
            let gap = sequence - self.highest;
            if gap > MAX_SEQUENCE_JUMP {
                let follows = self
                    .suspect_at
                    .is_some_and(|at| sequence > at && sequence - at <= WINDOW);
                if follows {
                    // Taken from here, as the sender's first datagram is
                    // (whether it also started again, its totals' start
                    // time tells).
                    self.suspect_at = None;
                    self.take_from(sequence, timestamp);
                    return Seen::New;
                }
                s.suspect += 1;
                self.suspect_at = Some(sequence);
                return Seen::Suspect;
            }
            s.lost += gap - 1;
            self.window = if gap >= WINDOW {
                1
            } else {
                (self.window << gap) | 1
            };
            self.highest = sequence;
            self.highest_timestamp = timestamp;
            s.received += 1;
            return Seen::New;
        }
        let back = self.highest - sequence;
        if back >= WINDOW {
            if sequence < WINDOW {
                // Started again from the beginning: a restart.
                return self.restart(sequence, timestamp);
            }
            // Too old to tell a duplicate from a late arrival.
            s.reordered += 1;
            s.received += 1;
            s.lost = s.lost.saturating_sub(1);
            return Seen::New;
        }
        let bit = 1u64 << back;
        if self.window & bit != 0 {
            s.duplicated += 1;
            return Seen::Duplicate;
        }
        self.window |= bit;
        s.reordered += 1;
        s.received += 1;
        s.lost = s.lost.saturating_sub(1);
        Seen::New
    }
}

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
    fn from_record(d: &DecodedDistribution<'_>) -> Self {
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
    fn merge(&mut self, other: &Distribution) {
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
    fn new(kind: Kind) -> Self {
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
    fn add(&mut self, value: f64, relative: bool, weight: f64) -> bool {
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
    fn merge(&mut self, other: &Aggregate) {
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
struct Cumulative {
    sender: u64,
    /// The sequence number of the datagram they came in.
    sequence: u64,
    /// When they arrived (the collector's datagram count), so the latest
    /// gauge value wins.
    arrival: u64,
    totals: Aggregate,
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
    events: Aggregate,
    /// When the events' gauge value last changed (arrival count).
    events_arrival: u64,
    /// Each sender's latest totals (version 2 datagrams).
    cumulative: Vec<Cumulative>,
    /// Final totals of senders that started again.
    retired: Aggregate,
}

impl Series {
    fn new(name: &str, tags: &[(&str, &str)], kind: Kind) -> Self {
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
    fn arrival(&self) -> u64 {
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
    fn take(&mut self, sender: u64, sequence: u64, arrival: u64, totals: Aggregate) -> bool {
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
    fn retire(&mut self, sender: u64) {
        if let Some(at) = self.cumulative.iter().position(|c| c.sender == sender) {
            let c = self.cumulative.swap_remove(at);
            if self.kind != Kind::Gauge {
                self.retired.merge(&c.totals);
            }
        }
    }
}

/// Totals over all senders.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Totals {
    /// Datagrams that decoded.
    pub datagrams: u64,
    /// Events aggregated.
    pub events: u64,
    /// Series records (totals) taken in.
    pub records: u64,
    /// Bytes in valid datagrams.
    pub bytes: u64,
    /// Events that went into an overflow series (the series cap was hit).
    pub overflowed_events: u64,
    /// Series records not kept: the series cap was hit.
    pub overflowed_records: u64,
    /// Datagrams from senders beyond the tracked ones.
    pub untracked_datagrams: u64,
    /// Duplicated datagrams ignored.
    pub duplicates_ignored: u64,
    /// StatsD datagrams (aggregated; without sender ids or sequence numbers
    /// they are not accounted per sender).
    pub statsd_datagrams: u64,
    /// Values refused: not finite (NaN, an infinity), or making a total
    /// infinite.
    pub non_finite_refused: u64,
    /// Senders forgotten to make room for new ones (each had sent one
    /// datagram).
    pub senders_evicted: u64,
}

/// Everything the collector keeps.
pub struct Collector {
    limits: Limits,
    senders: FxHashMap<u64, SenderState>,
    /// Sender ids in the order they were first seen: where a new sender
    /// looks for one to take the place of (ids since proven or gone are
    /// skipped).
    probation: VecDeque<u64>,
    /// Series by canonical key (kind, name, tags as a key record).
    index: FxHashMap<Box<str>, usize>,
    series: Vec<Series>,
    /// One overflow series per kind, by `Kind as usize`.
    overflow: [Option<Series>; 4],
    /// Invalid datagrams by error kind.
    invalid: BTreeMap<&'static str, u64>,
    /// Bad StatsD lines by error kind (their datagram may hold good ones).
    invalid_lines: BTreeMap<&'static str, u64>,
    totals: Totals,
    /// Reused: the canonical key being looked up.
    scratch: String,
    /// What forwarding has done, when it is on.
    forwarded: Option<ForwardStats>,
    /// The counts health judges, at each of the last [`HEALTH_WINDOW`]
    /// ticks, oldest first.
    health_window: VecDeque<HealthCounts>,
}

/// Ticks (seconds, as the server ticks) that health looks back over.
pub const HEALTH_WINDOW: usize = 60;

/// Fewer datagrams than this in the window are too few to judge a rate
/// by: a fresh collector's first two datagrams are not a 100% rate.
const HEALTH_MIN_DATAGRAMS: u64 = 100;

/// What health's rates are made of, counted since the start.
#[derive(Clone, Copy, Debug, Default)]
struct HealthCounts {
    lost: u64,
    received: u64,
    invalid: u64,
    valid: u64,
}

impl Collector {
    /// An empty collector with `limits`.
    pub fn new(limits: Limits) -> Self {
        Collector {
            limits,
            senders: FxHashMap::default(),
            probation: VecDeque::new(),
            index: FxHashMap::default(),
            series: Vec::new(),
            overflow: [None, None, None, None],
            invalid: BTreeMap::new(),
            invalid_lines: BTreeMap::new(),
            totals: Totals::default(),
            scratch: String::new(),
            forwarded: None,
            health_window: VecDeque::with_capacity(HEALTH_WINDOW + 1),
        }
    }

    /// Takes in one datagram: accounts for it and aggregates its events or
    /// takes in its totals. Invalid datagrams, including one with a single
    /// bad event or record, are counted by kind and change nothing else.
    ///
    /// A datagram that does not start with the format's magic (`ST`) is read
    /// as StatsD or DogStatsD lines: the collector is also a StatsD server.
    pub fn ingest(&mut self, bytes: &[u8]) {
        if !bytes.is_empty() && !bytes.starts_with(&MAGIC) {
            return self.ingest_statsd(bytes);
        }
        let datagram = match decode(bytes).and_then(|d| d.check().map(|()| d)) {
            Ok(d) => d,
            Err(e) => return self.count_invalid(&e),
        };
        let header = datagram.header;
        let tracked = self.senders.contains_key(&header.sender_id)
            || self.senders.len() < self.limits.max_senders
            || self.evict_unproven();
        if tracked {
            match self.observe(&header) {
                Seen::Duplicate => {
                    self.totals.duplicates_ignored += 1;
                    return;
                }
                Seen::Suspect => return,
                Seen::Restart => self.retire_sender(header.sender_id),
                Seen::New => {}
            }
        } else {
            self.totals.untracked_datagrams += 1;
        }
        self.totals.datagrams += 1;
        self.totals.bytes += bytes.len() as u64;
        let taken = if datagram.is_series() {
            self.take_series(&header, datagram.series(), tracked)
        } else {
            self.take_events(datagram.events())
        };
        if tracked && let Some(state) = self.senders.get_mut(&header.sender_id) {
            state.stats.events += taken;
        }
    }

    /// Accounts for `header` in its sender's state (made if new).
    fn observe(&mut self, header: &Header) -> Seen {
        let state = match self.senders.get_mut(&header.sender_id) {
            Some(state) => state,
            None => {
                let state = SenderState::first(header.sequence, header.base_timestamp);
                self.senders.insert(header.sender_id, state);
                self.probation.push_back(header.sender_id);
                let state = self.senders.get_mut(&header.sender_id);
                if let Some(state) = state {
                    state.started = (header.version == stats_core::wire::SERIES_VERSION)
                        .then_some(header.started);
                }
                return Seen::New;
            }
        };
        let mut seen = state.observe(header.sequence, header.base_timestamp);
        if header.version == stats_core::wire::SERIES_VERSION {
            // Totals that start at another time: the sender started again.
            if state.started.is_some_and(|s| s != header.started) && seen == Seen::New {
                state.stats.restarts += 1;
                seen = Seen::Restart;
            }
            state.started = Some(header.started);
        }
        seen
    }

    /// Makes room for a new sender: forgets the oldest one that has sent a
    /// single datagram (its totals with it: a cumulative sender that comes
    /// back sends them again); whether there was one.
    fn evict_unproven(&mut self) -> bool {
        while let Some(id) = self.probation.pop_front() {
            let Some(state) = self.senders.get(&id) else {
                continue;
            };
            if state.stats.received >= 2 {
                continue;
            }
            if let Some(state) = self.senders.remove(&id) {
                for at in state.series {
                    if let Some(series) = self.series.get_mut(at) {
                        series.cumulative.retain(|c| c.sender != id);
                    }
                }
            }
            self.totals.senders_evicted += 1;
            return true;
        }
        false
    }

    /// Makes the totals `sender` sent so far final in every series.
    fn retire_sender(&mut self, sender: u64) {
        let Some(state) = self.senders.get_mut(&sender) else {
            return;
        };
        for at in std::mem::take(&mut state.series) {
            if let Some(series) = self.series.get_mut(at) {
                series.retire(sender);
            }
        }
    }

    fn take_events(&mut self, events: stats_core::wire::Events<'_>) -> u64 {
        // Series of each key index and kind in this datagram, resolved
        // once (a key may be used with two kinds: two series).
        let mut slots: [Option<(u8, Kind, usize)>; 128] = [None; 128];
        let mut taken = 0;
        // Checked whole before: every event reads.
        for event in events.flatten() {
            let at = usize::from(event.key_index) % slots.len();
            let series = match slots[at] {
                Some((index, kind, s)) if index == event.key_index && kind == event.kind => s,
                _ => {
                    let tags: Vec<(&str, &str)> = event.tags().collect();
                    let s = self.series_for(event.name, &tags, event.kind);
                    slots[at] = Some((event.key_index, event.kind, s));
                    s
                }
            };
            self.aggregate(series, event.kind, event.value, event.relative, 1.0);
            taken += 1;
        }
        self.totals.events += taken;
        taken
    }

    fn take_series(
        &mut self,
        header: &Header,
        records: stats_core::wire::SeriesIter<'_>,
        tracked: bool,
    ) -> u64 {
        let arrival = self.totals.datagrams;
        let mut taken = 0;
        // Checked whole before: every record reads.
        for record in records.flatten() {
            let tags: Vec<(&str, &str)> = record.tags().collect();
            let at = self.series_for(record.name, &tags, record.kind);
            let totals = match &record.totals {
                DecodedTotals::Counter { sum, .. } => Aggregate::Counter(*sum as f64),
                DecodedTotals::Gauge { value, .. } => Aggregate::Gauge(*value),
                DecodedTotals::Distribution(d) => {
                    Aggregate::Distribution(Distribution::from_record(d))
                }
            };
            match self.series.get_mut(at) {
                Some(series) if series.kind == record.kind => {
                    let first = series.take(header.sender_id, header.sequence, arrival, totals);
                    if first
                        && tracked
                        && let Some(state) = self.senders.get_mut(&header.sender_id)
                    {
                        state.series.push(at);
                    }
                }
                _ => self.totals.overflowed_records += 1,
            }
            taken += 1;
        }
        self.totals.records += taken;
        taken
    }

    fn aggregate(&mut self, series: usize, kind: Kind, value: f64, relative: bool, weight: f64) {
        let arrival = self.totals.datagrams;
        let taken = match self.series.get_mut(series) {
            Some(s) if s.kind == kind => {
                let taken = s.events.add(value, relative, weight);
                if taken {
                    s.events_arrival = arrival;
                }
                taken
            }
            _ => self.overflow(kind).events.add(value, relative, weight),
        };
        if !taken {
            self.totals.non_finite_refused += 1;
        }
    }

    fn count_invalid(&mut self, e: &DecodeError) {
        *self.invalid.entry(e.kind()).or_default() += 1;
    }

    /// StatsD lines: counters (scaled by their sample rate), gauges (`+N` /
    /// `-N` move them), timers (milliseconds, kept as nanoseconds like the
    /// pipeline's), histograms and distributions; sets are not supported.
    /// Bad lines are counted by kind and skipped.
    fn ingest_statsd(&mut self, bytes: &[u8]) {
        let mut events = 0;
        for line in statsd::parse(bytes) {
            let line = match line {
                Ok(l) => l,
                Err(e) => {
                    *self.invalid_lines.entry(e.kind()).or_default() += 1;
                    continue;
                }
            };
            let (kind, scale) = match line.metric_type {
                MetricType::Counter => (Kind::Counter, 1.0),
                MetricType::Gauge => (Kind::Gauge, 1.0),
                MetricType::Timer => (Kind::Timer, 1e6),
                MetricType::Histogram | MetricType::Distribution => (Kind::Histogram, 1.0),
                MetricType::Set => {
                    *self
                        .invalid_lines
                        .entry("statsd_set_unsupported")
                        .or_default() += 1;
                    continue;
                }
            };
            let Some(value) = line.number() else {
                *self.invalid_lines.entry("statsd_bad_value").or_default() += 1;
                continue;
            };
            let tags: Vec<(&str, &str)> = line.tag_pairs().collect();
            let series = self.series_for(line.name, &tags, kind);
            self.aggregate(
                series,
                kind,
                value * scale,
                line.is_change(),
                1.0 / line.sample_rate,
            );
            events += 1;
        }
        if events > 0 {
            self.totals.datagrams += 1;
            self.totals.statsd_datagrams += 1;
            self.totals.bytes += bytes.len() as u64;
            self.totals.events += events;
        } else {
            *self.invalid.entry("statsd_no_valid_line").or_default() += 1;
        }
    }

    /// The index of the series for (`name`, `tags`, `kind`), made if new;
    /// `usize::MAX` (the overflow series) once the cap is reached.
    fn series_for(&mut self, name: &str, tags: &[(&str, &str)], kind: Kind) -> usize {
        self.scratch.clear();
        self.scratch.push(char::from(kind as u8));
        if Key::write_record(name, tags, &mut self.scratch).is_err() {
            return usize::MAX;
        }
        if let Some(&at) = self.index.get(self.scratch.as_str()) {
            return at;
        }
        if self.series.len() >= self.limits.max_series {
            return usize::MAX;
        }
        let at = self.series.len();
        self.series.push(Series::new(name, tags, kind));
        self.index.insert(self.scratch.as_str().into(), at);
        at
    }

    fn overflow(&mut self, kind: Kind) -> &mut Series {
        self.totals.overflowed_events += 1;
        self.overflow[kind as usize].get_or_insert_with(|| {
            Series::new(
                "stats_collector_overflow",
                &[("kind", kind_name(kind))],
                kind,
            )
        })
    }

    /// Every series, overflow ones last.
    pub fn series(&self) -> impl Iterator<Item = &Series> {
        self.series.iter().chain(self.overflow.iter().flatten())
    }

    /// The regular series, and the overflow series by kind.
    pub(crate) fn series_parts(&self) -> (&[Series], &[Option<Series>; 4]) {
        (&self.series, &self.overflow)
    }

    /// Moves health's window on: the server calls it every second, and
    /// `/health` judges the last [`HEALTH_WINDOW`] ticks (since the start
    /// before that many).
    pub fn tick(&mut self) {
        let counts = self.health_counts();
        self.health_window.push_back(counts);
        if self.health_window.len() > HEALTH_WINDOW {
            self.health_window.pop_front();
        }
    }

    fn health_counts(&self) -> HealthCounts {
        let (lost, received) = self
            .senders()
            .fold((0, 0), |(l, r), (_, s)| (l + s.lost, r + s.received));
        HealthCounts {
            lost,
            received,
            invalid: self.invalid.values().sum(),
            valid: self.totals.datagrams,
        }
    }

    /// Accounting by sender id.
    pub fn senders(&self) -> impl Iterator<Item = (u64, SenderStats)> + '_ {
        self.senders.iter().map(|(&id, s)| (id, s.stats))
    }

    /// Invalid datagrams by error kind (`statsd_no_valid_line`: StatsD
    /// text without one line that reads).
    pub fn invalid(&self) -> &BTreeMap<&'static str, u64> {
        &self.invalid
    }

    /// Bad StatsD lines by error kind.
    pub fn invalid_lines(&self) -> &BTreeMap<&'static str, u64> {
        &self.invalid_lines
    }

    /// The totals.
    pub fn totals(&self) -> Totals {
        self.totals
    }
}

/// A running collector: a thread receiving datagrams on UDP into a
/// [`Collector`], and optionally the HTTP endpoint serving `/metrics` and
/// `/health` from it. Stops when dropped.
pub struct Server {
    collector: Arc<Mutex<Collector>>,
    udp: SocketAddr,
    http: Option<SocketAddr>,
    stop: Arc<AtomicBool>,
    receiver: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds UDP `listen` (asking for a 4 MiB receive buffer) and, if given,
    /// HTTP `http`, and starts receiving; with `forward`, also forwards the
    /// aggregates to a StatsD agent every interval (and once more when it
    /// stops).
    pub fn start(
        listen: &str,
        http: Option<&str>,
        limits: Limits,
        forward: Option<Forward>,
    ) -> io::Result<Server> {
        let address: SocketAddr = listen
            .parse()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{listen}: {e}")))?;
        let socket = Socket::new(
            Domain::for_address(address),
            Type::DGRAM,
            Some(Protocol::UDP),
        )?;
        let _ = socket.set_recv_buffer_size(4 << 20);
        socket
            .bind(&address.into())
            .map_err(|e| context(e, format_args!("UDP {address}")))?;
        socket.set_read_timeout(Some(Duration::from_millis(50)))?;
        let socket: UdpSocket = socket.into();
        let udp = socket.local_addr()?;
        let collector = Arc::new(Mutex::new(Collector::new(limits)));
        let stop = Arc::new(AtomicBool::new(false));
        let mut forwarder = match &forward {
            Some(f) => Some((
                Forwarder::new(&f.target, f.dialect, f.max_datagram)
                    .map_err(|e| context(e, format_args!("forwarding to {}", f.target)))?,
                f.interval,
            )),
            None => None,
        };
        let (c, s) = (collector.clone(), stop.clone());
        let receiver = std::thread::Builder::new()
            .name("stats-collector-udp".into())
            .spawn(move || {
                let mut buf = vec![0u8; 65_536];
                let mut due = forwarder.as_ref().map(|(_, every)| Instant::now() + *every);
                let mut tick = Instant::now() + Duration::from_secs(1);
                loop {
                    if Instant::now() >= tick
                        && let Ok(mut c) = c.lock()
                    {
                        c.tick();
                        tick += Duration::from_secs(1);
                    }
                    let stopping = s.load(Ordering::Relaxed);
                    if !stopping
                        && let Ok(n) = socket.recv(&mut buf)
                        && let Ok(mut c) = c.lock()
                    {
                        c.ingest(&buf[..n]);
                    }
                    if let (Some((f, every)), Some(at)) = (&mut forwarder, &mut due)
                        && (stopping || Instant::now() >= *at)
                        && let Ok(mut c) = c.lock()
                    {
                        c.forwarded = Some(f.forward(&c));
                        *at = Instant::now() + *every;
                    }
                    if stopping {
                        break;
                    }
                }
            })?;
        let http = match http {
            Some(address) => {
                let (c, s) = (collector.clone(), stop.clone());
                Some(
                    crate::http::spawn(
                        address,
                        16,
                        move || s.load(Ordering::Relaxed),
                        Arc::new(move |path: &str| answer(&c, path)),
                    )
                    .map_err(|e| context(e, format_args!("HTTP {address}")))?,
                )
            }
            None => None,
        };
        Ok(Server {
            collector,
            udp,
            http,
            stop,
            receiver: Some(receiver),
        })
    }

    /// The UDP address it receives on.
    pub fn udp_address(&self) -> SocketAddr {
        self.udp
    }

    /// The HTTP address, when serving.
    pub fn http_address(&self) -> Option<SocketAddr> {
        self.http
    }

    /// The collector (lock it to read).
    pub fn collector(&self) -> &Arc<Mutex<Collector>> {
        &self.collector
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(r) = self.receiver.take() {
            let _ = r.join();
        }
    }
}

fn answer(collector: &Mutex<Collector>, path: &str) -> Option<Response> {
    let c = collector.lock().ok()?;
    match path {
        "/metrics" => Some(Response {
            status: 200,
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            body: c.render_metrics(),
        }),
        "/health" => {
            let (body, unhealthy) = c.render_health();
            Some(Response {
                status: if unhealthy { 503 } else { 200 },
                content_type: "application/json",
                body,
            })
        }
        _ => None,
    }
}

/// Loss and invalid-datagram rates above which the collector is degraded,
/// and unhealthy.
const LOSS_LIMITS: (f64, f64) = (0.01, 0.10);
const INVALID_LIMITS: (f64, f64) = (0.01, 0.10);

impl Collector {
    /// Prometheus text format 0.0.4: every series (counters as
    /// `<name>_total`, gauges, timers as `<name>_seconds` summaries,
    /// histograms as summaries; names and tag keys sanitised, tags as
    /// labels), then the collector's own accounting. Series that sanitise
    /// to one name and label set (`db.query` and `db/query`) render as one
    /// sample set, merged: counters and distributions summed, a gauge the
    /// one that changed last.
    pub fn render_metrics(&self) -> String {
        let mut families: BTreeMap<String, (Kind, Vec<&Series>)> = BTreeMap::new();
        for series in self.series() {
            let base = sanitize(&series.name, false);
            let mut family = match series.kind {
                Kind::Counter => format!("{base}_total"),
                Kind::Timer => format!("{base}_seconds"),
                Kind::Gauge | Kind::Histogram => base,
            };
            // One TYPE per family: a name used by two kinds gets the kind.
            if families
                .get(&family)
                .is_some_and(|(k, _)| *k != series.kind)
            {
                family = format!("{family}_{}", kind_name(series.kind));
            }
            families
                .entry(family)
                .or_insert_with(|| (series.kind, Vec::new()))
                .1
                .push(series);
        }
        let mut t = Text::default();
        for (family, (kind, members)) in &families {
            let (kind_text, help) = match kind {
                Kind::Counter => ("counter", "Total of the counter since its senders started."),
                Kind::Gauge => ("gauge", "Last gauge value received."),
                Kind::Timer => (
                    "summary",
                    "Timer values since their senders started, in seconds.",
                ),
                Kind::Histogram => ("summary", "Histogram values since their senders started."),
            };
            t.family(family, kind_text, help);
            // One sample set per label set: (when it last changed, merged).
            let mut sets: BTreeMap<Vec<(String, String)>, (u64, Aggregate)> = BTreeMap::new();
            for series in members {
                let (arrival, aggregate) = (series.arrival(), series.aggregate());
                match sets.entry(labels(&series.tags)) {
                    std::collections::btree_map::Entry::Vacant(e) => {
                        e.insert((arrival, aggregate));
                    }
                    std::collections::btree_map::Entry::Occupied(mut e) => {
                        let (last, merged) = e.get_mut();
                        if *kind != Kind::Gauge || arrival >= *last {
                            merged.merge(&aggregate);
                            *last = arrival.max(*last);
                        }
                    }
                }
            }
            for (labels, (_, aggregate)) in sets {
                let base: Vec<(&str, &str)> = labels
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                match aggregate {
                    Aggregate::Counter(v) | Aggregate::Gauge(v) => t.sample(family, &base, v),
                    Aggregate::Distribution(d) => {
                        let scale = if *kind == Kind::Timer { 1e-9 } else { 1.0 };
                        for (q, label) in
                            [(0.5, "0.5"), (0.9, "0.9"), (0.99, "0.99"), (0.999, "0.999")]
                        {
                            let mut with = base.clone();
                            with.push(("quantile", label));
                            let v = d.quantile(q).map_or(f64::NAN, |v| v * scale);
                            t.sample(family, &with, v);
                        }
                        t.sample(&format!("{family}_sum"), &base, d.sum * scale);
                        t.sample(&format!("{family}_count"), &base, d.count as f64);
                    }
                }
            }
        }
        self.render_own(&mut t);
        t.out
    }

    fn render_own(&self, t: &mut Text) {
        let totals = self.totals;
        for (name, help, value) in [
            (
                "stats_collector_datagrams_total",
                "Valid datagrams received.",
                totals.datagrams,
            ),
            (
                "stats_collector_events_total",
                "Events aggregated.",
                totals.events,
            ),
            (
                "stats_collector_series_records_total",
                "Series totals taken in (from senders that aggregate).",
                totals.records,
            ),
            (
                "stats_collector_overflowed_records_total",
                "Series totals not kept (series cap reached).",
                totals.overflowed_records,
            ),
            (
                "stats_collector_bytes_total",
                "Bytes in valid datagrams.",
                totals.bytes,
            ),
            (
                "stats_collector_duplicates_ignored_total",
                "Duplicated datagrams ignored.",
                totals.duplicates_ignored,
            ),
            (
                "stats_collector_overflowed_events_total",
                "Events folded into an overflow series (series cap reached).",
                totals.overflowed_events,
            ),
            (
                "stats_collector_untracked_datagrams_total",
                "Datagrams from senders beyond the tracked ones.",
                totals.untracked_datagrams,
            ),
            (
                "stats_collector_statsd_datagrams_total",
                "StatsD datagrams received (not accounted per sender).",
                totals.statsd_datagrams,
            ),
            (
                "stats_collector_non_finite_refused_total",
                "Values refused: not finite, or making a total infinite.",
                totals.non_finite_refused,
            ),
            (
                "stats_collector_senders_evicted_total",
                "Senders of a single datagram forgotten to make room for new ones.",
                totals.senders_evicted,
            ),
        ] {
            t.single(name, "counter", help, value as f64);
        }
        if let Some(f) = self.forwarded {
            for (name, help, value) in [
                (
                    "stats_collector_forwarded_lines_total",
                    "StatsD lines forwarded.",
                    f.lines,
                ),
                (
                    "stats_collector_forwarded_datagrams_total",
                    "StatsD datagrams forwarded.",
                    f.datagrams,
                ),
                (
                    "stats_collector_forward_send_errors_total",
                    "Forwarded datagrams the socket refused.",
                    f.send_errors,
                ),
                (
                    "stats_collector_forward_lines_lost_total",
                    "Lines lost in refused datagrams.",
                    f.lines_lost,
                ),
                (
                    "stats_collector_forward_lines_refused_total",
                    "Lines that could not be written (non-finite, or too long).",
                    f.lines_refused,
                ),
            ] {
                t.single(name, "counter", help, value as f64);
            }
        }
        t.single(
            "stats_collector_series",
            "gauge",
            "Series kept.",
            self.series.len() as f64,
        );
        for (name, help, counts) in [
            (
                "stats_collector_invalid_datagrams_total",
                "Invalid datagrams, by error kind.",
                &self.invalid,
            ),
            (
                "stats_collector_invalid_statsd_lines_total",
                "StatsD lines that did not read, by error kind.",
                &self.invalid_lines,
            ),
        ] {
            t.family(name, "counter", help);
            for (kind, n) in counts {
                t.sample(name, &[("error", kind)], *n as f64);
            }
        }
        type Field = fn(&SenderStats) -> u64;
        let per_sender: [(&str, &str, Field); 6] = [
            (
                "stats_collector_sender_datagrams_total",
                "Datagrams received from a sender.",
                |s| s.received,
            ),
            (
                "stats_collector_sender_lost_total",
                "A sender's datagrams missing by sequence.",
                |s| s.lost,
            ),
            (
                "stats_collector_sender_duplicated_total",
                "A sender's datagrams seen twice.",
                |s| s.duplicated,
            ),
            (
                "stats_collector_sender_reordered_total",
                "A sender's datagrams that arrived late.",
                |s| s.reordered,
            ),
            (
                "stats_collector_sender_restarts_total",
                "Times a sender's sequence started again.",
                |s| s.restarts,
            ),
            (
                "stats_collector_sender_suspect_total",
                "A sender's datagrams ignored: their sequence jumped further than a sender's can.",
                |s| s.suspect,
            ),
        ];
        let mut senders: Vec<(u64, SenderStats)> = self.senders().collect();
        senders.sort_by_key(|(id, _)| *id);
        for (name, help, field) in per_sender {
            t.family(name, "counter", help);
            for (id, stats) in &senders {
                let id = format!("{id:016x}");
                t.sample(name, &[("sender", &id)], field(stats) as f64);
            }
        }
    }

    /// Health as JSON: datagram loss and invalid datagrams over the last
    /// [`HEALTH_WINDOW`] ticks against their limits (1% degraded, 10%
    /// unhealthy; fewer than 100 datagrams are too few to judge), and
    /// whether it is unhealthy.
    pub fn render_health(&self) -> (String, bool) {
        let now = self.health_counts();
        let then = self.health_window.front().copied().unwrap_or_default();
        // Saturating: a late datagram takes a loss back.
        let lost = now.lost.saturating_sub(then.lost);
        let received = now.received.saturating_sub(then.received);
        let invalid = now.invalid.saturating_sub(then.invalid);
        let valid = now.valid.saturating_sub(then.valid);
        let rate = |part: u64, whole: u64| {
            if whole < HEALTH_MIN_DATAGRAMS {
                0.0
            } else {
                part as f64 / whole as f64
            }
        };
        let checks = [
            ("loss_rate", rate(lost, lost + received), LOSS_LIMITS),
            (
                "invalid_rate",
                rate(invalid, invalid + valid),
                INVALID_LIMITS,
            ),
        ];
        let grade = |v: f64, (d, u): (f64, f64)| {
            if v > u {
                2
            } else if v > d {
                1
            } else {
                0
            }
        };
        let worst = checks
            .iter()
            .map(|(_, v, l)| grade(*v, *l))
            .max()
            .unwrap_or(0);
        let names = ["healthy", "degraded", "unhealthy"];
        let mut out = format!("{{\"status\":\"{}\",\"checks\":[", names[worst]);
        for (i, (name, value, (d, u))) in checks.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&format!(
                "{{\"name\":\"{name}\",\"status\":\"{}\",\"value\":{value},\"degraded_above\":{d},\"unhealthy_above\":{u}}}",
                names[grade(*value, (*d, *u))]
            ));
        }
        out.push_str("]}");
        (out, worst == 2)
    }
}

/// Tags as label pairs: keys sanitised, and kept clear of the summary's
/// `quantile` label and of each other (first one wins).
fn labels(tags: &[(String, String)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::with_capacity(tags.len());
    for (k, v) in tags {
        let mut key = sanitize(k, true);
        if key == "quantile" || key.starts_with("__") {
            key = format!("tag_{key}");
        }
        if !out.iter().any(|(existing, _)| *existing == key) {
            out.push((key, v.clone()));
        }
    }
    out
}

/// `counter`, `gauge`, `timer` or `histogram`.
pub fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Counter => "counter",
        Kind::Gauge => "gauge",
        Kind::Timer => "timer",
        Kind::Histogram => "histogram",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stats_core::wire::{Encoder, EncoderConfig};
    use stats_core::{Event, KeyId, Priority, Registry};

    /// Datagrams from one sender: `events` each of (key, kind, value).
    struct Sender {
        registry: Registry<16, 1024>,
        encoder: Encoder,
    }

    impl Sender {
        fn new(id: u64) -> Self {
            Sender {
                registry: Registry::new(),
                encoder: Encoder::new(EncoderConfig::new(id)).unwrap(),
            }
        }

        fn key(&mut self, name: &str, tags: &[(&str, &str)]) -> KeyId {
            self.registry.register(name, tags).unwrap()
        }

        fn datagram(&mut self, events: &[(KeyId, Kind, f64)]) -> Vec<u8> {
            self.datagram_at(events, 0)
        }

        /// A datagram whose clock reads `base` (ns).
        fn datagram_at(&mut self, events: &[(KeyId, Kind, f64)], base: u64) -> Vec<u8> {
            let mut buf = vec![0u8; 1472];
            let mut w = self.encoder.begin(&mut buf, base).unwrap();
            for &(key, kind, value) in events {
                let e = Event::new(key, kind, value, 1, Priority::Medium);
                w.push(&e, |id| self.registry.get(id)).unwrap();
            }
            let n = w.finish().len();
            buf.truncate(n);
            buf
        }
    }

    fn find<'c>(c: &'c Collector, name: &str) -> &'c Series {
        c.series().find(|s| s.name == name).unwrap()
    }

    #[test]
    fn counters_sum_gauges_keep_the_last_and_distributions_count() {
        let mut s = Sender::new(1);
        let (req, depth, lat) = (
            s.key("requests", &[("route", "/")]),
            s.key("depth", &[]),
            s.key("latency", &[]),
        );
        let mut c = Collector::new(Limits::default());
        for round in 0..3 {
            c.ingest(&s.datagram(&[
                (req, Kind::Counter, 2.0),
                (depth, Kind::Gauge, f64::from(round)),
                (lat, Kind::Timer, 1_000_000.0),
                (lat, Kind::Timer, 3_000_000.0),
            ]));
        }
        assert_eq!(find(&c, "requests").aggregate(), Aggregate::Counter(6.0));
        assert_eq!(find(&c, "depth").aggregate(), Aggregate::Gauge(2.0));
        let Aggregate::Distribution(d) = find(&c, "latency").aggregate() else {
            panic!("a distribution");
        };
        assert_eq!((d.count, d.sum), (6, 12e6));
        let p50 = d.quantile(0.5).unwrap();
        assert!((p50 - 1e6).abs() / 1e6 < 0.032, "{p50}");
        assert_eq!(find(&c, "requests").tags, [("route".into(), "/".into())]);
        assert_eq!(c.totals().events, 12);
    }

    #[test]
    fn sequences_tell_loss_duplicates_reordering_and_restarts() {
        let mut s = Sender::new(7);
        let k = s.key("k", &[]);
        let d: Vec<Vec<u8>> = (0..10)
            .map(|_| s.datagram(&[(k, Kind::Counter, 1.0)]))
            .collect();
        let mut c = Collector::new(Limits::default());
        // 0, 1, 3, 2 (late), 3 again (duplicate), 6 (4 and 5 lost), 9 (7, 8 lost).
        for i in [0, 1, 3, 2, 3, 6, 9] {
            c.ingest(&d[i]);
        }
        let (id, stats) = c.senders().next().unwrap();
        assert_eq!(id, 7);
        assert_eq!(
            (
                stats.received,
                stats.lost,
                stats.duplicated,
                stats.reordered
            ),
            (6, 4, 1, 1)
        );
        assert_eq!(stats.events, 6);
        // The duplicate was not aggregated twice.
        assert_eq!(find(&c, "k").aggregate(), Aggregate::Counter(6.0));
        // The sender restarts: a fresh encoder with the same id.
        let mut again = Sender::new(7);
        let k2 = again.key("k", &[]);
        let mut far = Sender::new(7);
        let kf = far.key("k", &[]);
        for _ in 0..100 {
            far.datagram(&[(kf, Kind::Counter, 1.0)]);
        }
        c.ingest(&far.datagram(&[(kf, Kind::Counter, 1.0)])); // sequence 100
        c.ingest(&again.datagram(&[(k2, Kind::Counter, 1.0)])); // sequence 0
        let stats = c.senders().next().unwrap().1;
        assert_eq!(stats.restarts, 1);
    }

    #[test]
    fn health_judges_a_recent_window_and_not_too_few_datagrams() {
        let mut s = Sender::new(8);
        let k = s.key("k", &[]);
        let mut c = Collector::new(Limits::default());
        let status = |c: &Collector| {
            let (json, unhealthy) = c.render_health();
            (json.split('"').nth(3).unwrap_or("").to_string(), unhealthy)
        };
        // Two garbage datagrams on a fresh collector: too few to judge.
        c.ingest(b"x:y|c");
        c.ingest(b"\x00garbage");
        assert_eq!(status(&c), ("healthy".into(), false));
        // A burst of garbage: unhealthy.
        for _ in 0..300 {
            c.ingest(b"x:y|c");
        }
        for _ in 0..100 {
            c.ingest(&s.datagram(&[(k, Kind::Counter, 1.0)]));
        }
        assert_eq!(status(&c), ("unhealthy".into(), true));
        // Good datagrams for a window's worth of ticks: healthy again,
        // although the garbage is still most of everything since the start.
        for _ in 0..HEALTH_WINDOW {
            c.tick();
            for _ in 0..2 {
                c.ingest(&s.datagram(&[(k, Kind::Counter, 1.0)]));
            }
        }
        assert_eq!(status(&c), ("healthy".into(), false));
        assert!(c.invalid().values().sum::<u64>() > c.totals().datagrams);
    }

    #[test]
    fn a_key_used_with_two_kinds_in_one_datagram_is_two_series() {
        let mut s = Sender::new(6);
        let k = s.key("jobs", &[("queue", "a")]);
        let mut c = Collector::new(Limits::default());
        c.ingest(&s.datagram(&[
            (k, Kind::Counter, 1.0),
            (k, Kind::Gauge, 5.0),
            (k, Kind::Counter, 2.0),
        ]));
        assert_eq!(c.totals().overflowed_events, 0);
        let kinds: Vec<(Kind, Aggregate)> = c
            .series()
            .filter(|s| s.name == "jobs")
            .map(|s| (s.kind, s.aggregate()))
            .collect();
        assert_eq!(
            kinds,
            [
                (Kind::Counter, Aggregate::Counter(3.0)),
                (Kind::Gauge, Aggregate::Gauge(5.0))
            ]
        );
    }

    #[test]
    fn series_that_sanitise_to_one_name_render_as_one_sample_set() {
        let mut c = Collector::new(Limits::default());
        c.ingest(
            b"db.query:1|ms|#table:orders\ndb/query:2|ms|#table:orders\nhits.a:1|c\nhits/a:2|c",
        );
        c.ingest(b"q.depth:5|g\nq/depth:3|g");
        c.ingest(b"q.depth:4|g");
        let text = c.render_metrics();
        let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        let mut unique = samples.clone();
        unique.sort_unstable();
        unique.dedup_by(|a, b| a.split(' ').next() == b.split(' ').next());
        assert_eq!(
            unique.len(),
            samples.len(),
            "one sample per identity: {text}"
        );
        assert!(
            samples.contains(&"db_query_seconds_count{table=\"orders\"} 2"),
            "{text}"
        );
        assert!(
            samples.contains(&"db_query_seconds_sum{table=\"orders\"} 0.003"),
            "{text}"
        );
        assert!(samples.contains(&"hits_a_total 3"), "{text}");
        // The gauge that changed last.
        assert!(samples.contains(&"q_depth 4"), "{text}");
        assert_eq!(text.matches("# TYPE db_query_seconds summary").count(), 1);
    }

    #[test]
    fn values_that_are_not_finite_or_would_make_a_total_infinite_are_refused() {
        let mut s = Sender::new(4);
        let hits = s.key("hits", &[]);
        let sizes = s.key("sizes", &[]);
        let mut c = Collector::new(Limits::default());
        c.ingest(&s.datagram(&[
            (hits, Kind::Counter, 2.0),
            (hits, Kind::Counter, f64::NAN),
            (sizes, Kind::Histogram, f64::INFINITY),
            (sizes, Kind::Histogram, 5.0),
        ]));
        // A gauge moved past the largest float, a counter too.
        c.ingest(b"q:1e308|g\nq:+1e308|g\nbig:1e308|c\nbig:1e308|c");
        assert_eq!(c.totals().non_finite_refused, 4);
        assert_eq!(find(&c, "hits").aggregate(), Aggregate::Counter(2.0));
        let Aggregate::Distribution(d) = find(&c, "sizes").aggregate() else {
            panic!()
        };
        assert_eq!((d.count, d.sum, d.max), (1, 5.0, 5.0));
        assert_eq!(find(&c, "q").aggregate(), Aggregate::Gauge(1e308));
        assert_eq!(find(&c, "big").aggregate(), Aggregate::Counter(1e308));
        // A sample rate that would scale 1 into a 300-digit count.
        c.ingest(b"r3:1|c|@1e-300\nr3:1|c|@0.5");
        assert_eq!(c.invalid_lines().get("statsd_bad_sample_rate"), Some(&1));
        assert_eq!(find(&c, "r3").aggregate(), Aggregate::Counter(2.0));
        let text = c.render_metrics();
        assert!(
            text.contains("stats_collector_non_finite_refused_total 4"),
            "{text}"
        );
        let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert!(
            samples
                .iter()
                .all(|l| !l.contains("NaN") && !l.contains("Inf")),
            "{text}"
        );
        // Large totals in exponent form, as the format allows.
        assert!(samples.contains(&"big_total 1e308"), "{text}");
    }

    #[test]
    fn a_sequence_jump_no_sender_makes_is_suspect_not_loss() {
        let mut state = SenderState::first(5, 1_000);
        // One forged datagram with the highest sequence there is.
        assert_eq!(state.observe(u64::MAX, 1_000), Seen::Suspect);
        assert_eq!((state.stats.lost, state.stats.suspect), (0, 1));
        // The real sender carries on, its loss accounted as before.
        assert_eq!(state.observe(6, 1_001), Seen::New);
        assert_eq!(state.observe(8, 1_002), Seen::New);
        assert_eq!((state.stats.lost, state.stats.received), (1, 3));
        // The largest jump a sender may make is loss, not suspect.
        assert_eq!(state.observe(8 + MAX_SEQUENCE_JUMP, 1_003), Seen::New);
        assert_eq!(state.stats.lost, MAX_SEQUENCE_JUMP);
        // A sender that really jumped further: its second datagram after
        // the jump resynchronises, and what follows is accounted from it.
        let far = 8 + 3 * MAX_SEQUENCE_JUMP;
        assert_eq!(state.observe(far, 1_004), Seen::Suspect);
        assert_eq!(state.observe(far + 1, 1_005), Seen::New);
        assert_eq!(state.observe(far + 3, 1_006), Seen::New);
        assert_eq!(
            (state.stats.suspect, state.stats.restarts, state.stats.lost),
            (2, 0, MAX_SEQUENCE_JUMP + 1)
        );
    }

    #[test]
    fn invalid_datagrams_are_counted_by_kind_and_change_nothing() {
        let mut s = Sender::new(3);
        let k = s.key("k", &[]);
        let good = s.datagram(&[(k, Kind::Counter, 1.0)]);
        let mut c = Collector::new(Limits::default());
        let mut flipped = good.clone();
        flipped[10] ^= 0x40;
        for bad in [&b"garbage"[..], &good[..good.len() - 3], &flipped[..], &[]] {
            c.ingest(bad);
        }
        assert_eq!(c.totals().datagrams, 0);
        assert_eq!(c.series().count(), 0);
        assert_eq!(c.invalid().values().sum::<u64>(), 4);
        assert!(
            c.invalid().contains_key("crc_mismatch"),
            "{:?}",
            c.invalid()
        );
        c.ingest(&good);
        assert_eq!(c.totals().events, 1);
    }

    /// `WIRE.md`: a datagram is taken whole or not at all.
    #[test]
    fn a_datagram_with_one_bad_event_counts_none_of_its_events() {
        let mut s = Sender::new(4);
        let k = s.key("k", &[]);
        let mut d = s.datagram(&[(k, Kind::Counter, 1.0), (k, Kind::Counter, 1.0)]);
        // The last event is `00 meta 00 02`: set its reserved meta bit.
        let meta = d.len() - 7;
        d[meta] |= 0x80;
        let crc = stats_core::wire::crc32(&d[..d.len() - 4]);
        let at = d.len() - 4;
        d[at..].copy_from_slice(&crc.to_le_bytes());
        let mut c = Collector::new(Limits::default());
        c.ingest(&d);
        assert_eq!(c.invalid().get("bad_meta"), Some(&1));
        assert_eq!((c.totals().datagrams, c.totals().events), (0, 0));
        assert_eq!(c.series().count(), 0);
        assert_eq!(c.senders().count(), 0, "not even its sequence counts");
    }

    /// A metric is its name and its set of tags, whatever their order.
    #[test]
    fn tags_in_another_order_are_the_same_series() {
        let mut c = Collector::new(Limits::default());
        c.ingest(b"hits:1|c|#a:1,b:2\nhits:2|c|#b:2,a:1");
        let mut s = Sender::new(5);
        let k = s.key("hits", &[("b", "2"), ("a", "1")]);
        c.ingest(&s.datagram(&[(k, Kind::Counter, 4.0)]));
        assert_eq!(c.series().count(), 1);
        assert_eq!(find(&c, "hits").aggregate(), Aggregate::Counter(7.0));
    }

    #[test]
    fn metrics_render_series_as_prometheus_families() {
        let mut s = Sender::new(0xAB);
        let req = s.key("http.requests", &[("route", "/a\"b"), ("quantile", "x")]);
        let lat = s.key("db-query", &[]);
        let g = s.key("9lives", &[]);
        let mut c = Collector::new(Limits::default());
        c.ingest(&s.datagram(&[
            (req, Kind::Counter, 3.0),
            (lat, Kind::Timer, 2e6),
            (g, Kind::Gauge, 1.5),
        ]));
        let text = c.render_metrics();
        assert!(
            text.contains("# TYPE http_requests_total counter"),
            "{text}"
        );
        assert!(
            text.contains("http_requests_total{tag_quantile=\"x\",route=\"/a\\\"b\"} 3"),
            "{text}"
        );
        assert!(text.contains("# TYPE db_query_seconds summary"));
        assert!(text.contains("db_query_seconds_sum 0.002"), "{text}");
        assert!(text.contains("db_query_seconds_count 1"));
        assert!(text.contains("_9lives 1.5"));
        assert!(
            text.contains("stats_collector_sender_datagrams_total{sender=\"00000000000000ab\"} 1")
        );
        let (health, unhealthy) = c.render_health();
        assert!(health.starts_with("{\"status\":\"healthy\""), "{health}");
        assert!(!unhealthy);
    }

    #[test]
    fn series_and_senders_are_capped() {
        let mut s = Sender::new(1);
        let keys: Vec<KeyId> = (0..5).map(|i| s.key(&format!("m{i}"), &[])).collect();
        let mut c = Collector::new(Limits {
            max_series: 3,
            max_senders: 1,
        });
        let events: Vec<_> = keys.iter().map(|&k| (k, Kind::Counter, 1.0)).collect();
        c.ingest(&s.datagram(&events));
        assert_eq!(c.series().count(), 4, "three series and the overflow");
        assert_eq!(
            find(&c, "stats_collector_overflow").aggregate(),
            Aggregate::Counter(2.0)
        );
        assert_eq!(c.totals().overflowed_events, 2);
        // A second datagram: the sender has proven itself and keeps its place.
        c.ingest(&s.datagram(&[(keys[0], Kind::Counter, 1.0)]));
        let mut other = Sender::new(2);
        let k = other.key("m0", &[]);
        c.ingest(&other.datagram(&[(k, Kind::Counter, 1.0)]));
        assert_eq!(c.senders().map(|(id, _)| id).collect::<Vec<_>>(), [1]);
        assert_eq!(c.totals().untracked_datagrams, 1);
        assert_eq!(find(&c, "m0").aggregate(), Aggregate::Counter(3.0));
    }

    #[test]
    fn a_flood_of_one_datagram_senders_cannot_push_out_real_ones() {
        let mut c = Collector::new(Limits {
            max_series: 100,
            max_senders: 4,
        });
        let mut real = Sender::new(1);
        let k = real.key("requests", &[]);
        let d: Vec<Vec<u8>> = (0..4)
            .map(|_| real.datagram(&[(k, Kind::Counter, 1.0)]))
            .collect();
        c.ingest(&d[0]);
        c.ingest(&d[1]);
        // 10,000 ids that send one datagram each.
        for id in 0..10_000u64 {
            let mut bogus = Sender::new(1_000 + id);
            let b = bogus.key("requests", &[]);
            c.ingest(&bogus.datagram(&[(b, Kind::Counter, 1.0)]));
        }
        assert_eq!(c.totals().senders_evicted, 10_000 - 3);
        assert_eq!(c.senders().count(), 4);
        // The real sender is still accounted: sequence 2 lost, 3 arrives.
        c.ingest(&d[3]);
        let stats = c.senders().find(|(id, _)| *id == 1).unwrap().1;
        assert_eq!((stats.received, stats.lost), (3, 1));
        // A new real sender after the flood is tracked too.
        let mut late = Sender::new(2);
        let l = late.key("requests", &[]);
        c.ingest(&late.datagram(&[(l, Kind::Counter, 1.0)]));
        assert!(c.senders().any(|(id, _)| id == 2));
        assert_eq!(c.totals().untracked_datagrams, 0);
    }

    #[test]
    fn relative_gauges_move_the_last_value() {
        let mut s = Sender::new(1);
        let g = s.key("depth", &[]);
        let mut c = Collector::new(Limits::default());
        let mut buf = vec![0u8; 1472];
        let mut w = s.encoder.begin(&mut buf, 0).unwrap();
        for e in [
            Event::new(g, Kind::Gauge, 10.0, 1, Priority::Medium),
            Event::gauge_change(g, -3.0, 2, Priority::Medium),
            Event::gauge_change(g, 0.5, 3, Priority::Medium),
        ] {
            w.push(&e, |id| s.registry.get(id)).unwrap();
        }
        let n = w.finish().len();
        c.ingest(&buf[..n]);
        assert_eq!(find(&c, "depth").aggregate(), Aggregate::Gauge(7.5));
    }

    #[test]
    fn statsd_lines_are_aggregated_and_bad_lines_counted() {
        let mut c = Collector::new(Limits::default());
        c.ingest(
            b"hits:1|c\nhits:2|c|@0.5\nq:7|g\nq:-2|g\nq:+0.5|g\nt:1.5|ms|#route:/a\n\
              h:42|h\nd:40|d\nu:alice|s\nbad line\nx:1|zz\nn:abc|c",
        );
        assert_eq!(find(&c, "hits").aggregate(), Aggregate::Counter(5.0));
        assert_eq!(find(&c, "q").aggregate(), Aggregate::Gauge(5.5));
        let t = find(&c, "t");
        assert_eq!(
            (t.kind, &t.tags[..]),
            (Kind::Timer, &[("route".into(), "/a".into())][..])
        );
        let Aggregate::Distribution(d) = t.aggregate() else {
            panic!("a distribution");
        };
        assert_eq!(
            (d.count, d.sum),
            (1, 1.5e6),
            "milliseconds kept as nanoseconds"
        );
        assert_eq!(find(&c, "h").kind, Kind::Histogram);
        assert_eq!(find(&c, "d").kind, Kind::Histogram);
        let invalid = c.invalid_lines();
        for kind in [
            "statsd_set_unsupported",
            "statsd_malformed",
            "statsd_unknown_type",
            "statsd_bad_value",
        ] {
            assert_eq!(invalid.get(kind), Some(&1), "{kind}: {invalid:?}");
        }
        let totals = c.totals();
        assert_eq!(
            (totals.datagrams, totals.statsd_datagrams, totals.events),
            (1, 1, 8)
        );
        assert_eq!(c.senders().count(), 0, "no sender accounting for StatsD");
        // Lines and datagrams are counted apart: that datagram was valid.
        assert!(c.invalid().is_empty(), "{:?}", c.invalid());
        // A datagram of nothing but bad lines is not a valid datagram.
        c.ingest(b"\xff\xfe:1|c\nx:y|c");
        assert_eq!(c.totals().datagrams, 1);
        assert_eq!(c.invalid_lines().get("statsd_invalid_utf8"), Some(&1));
        assert_eq!(c.invalid().get("statsd_no_valid_line"), Some(&1));
        let text = c.render_metrics();
        assert!(
            text.contains(
                "stats_collector_invalid_datagrams_total{error=\"statsd_no_valid_line\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "stats_collector_invalid_statsd_lines_total{error=\"statsd_invalid_utf8\"} 1"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_reboot_with_a_fixed_sender_id_is_a_restart_not_duplicates() {
        let second = 1_000_000_000;
        let mut before = Sender::new(9);
        let k = before.key("boots", &[]);
        let mut c = Collector::new(Limits::default());
        let sent: Vec<Vec<u8>> = (0..10)
            .map(|i| before.datagram_at(&[(k, Kind::Counter, 1.0)], 30 * second + i * 1_000))
            .collect();
        for d in &sent[..9] {
            c.ingest(d);
        }
        // Reordered by the network: older sequence, a clock a little behind.
        c.ingest(&sent[9]);
        c.ingest(&sent[4]);
        let stats = c.senders().next().unwrap().1;
        assert_eq!((stats.duplicated, stats.restarts), (1, 0));
        // The device reboots: sequence and clock start again.
        let mut after = Sender::new(9);
        let k2 = after.key("boots", &[]);
        for i in 0..3 {
            c.ingest(&after.datagram_at(&[(k2, Kind::Counter, 1.0)], i * 1_000));
        }
        let stats = c.senders().next().unwrap().1;
        assert_eq!(
            (stats.restarts, stats.duplicated, stats.received),
            (1, 1, 13)
        );
        assert_eq!(find(&c, "boots").aggregate(), Aggregate::Counter(13.0));
    }
}
