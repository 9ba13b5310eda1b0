//! Ingest: one datagram at a time, taken whole or not at all. The native
//! format's events (version 1) and cumulative totals (versions 2 and 3), and
//! StatsD or DogStatsD lines for anything else.

use crate::aggregation::{Added, Aggregate, Distribution, Taken};
use crate::collector::Collector;

/// The series a DogStatsD service check's status goes into, a gauge
/// tagged with the check's name (`check`) and its tags.
pub const SERVICE_CHECK: &str = "service_check.status";

/// A StatsD counter line with a negative value, refused: the counters go
/// out as monotonic totals.
pub const NEGATIVE_COUNTER: &str = "statsd_negative_counter";
use crate::senders::{SENDER_BYTES, Seen, SenderState};
use stats_core::Kind;
use stats_core::registry::MAX_TAGS;
use stats_core::wire::statsd::{self, MetricType, Parsed};
use stats_core::wire::{
    Datagram, DecodeError, DecodedEvent, DecodedTotals, Header, MAGIC, MAX_KEYS_PER_DATAGRAM,
    decode,
};

/// An event read from a datagram and not yet aggregated: the datagram is
/// read (and checked) whole first, and aggregated once it all reads.
#[derive(Clone, Copy, Debug)]
struct Pending {
    /// Its key and kind: an index into the reading's `keys`.
    slot: u32,
    kind: Kind,
    value: f64,
    relative: bool,
}

/// The event's tags in `into`, as the slice of them.
fn tags_of<'a, 't>(
    event: &DecodedEvent<'a>,
    into: &'t mut [(&'a str, &'a str); MAX_TAGS],
) -> &'t [(&'a str, &'a str)] {
    let mut n = 0;
    for (slot, tag) in into.iter_mut().zip(event.tags()) {
        *slot = tag;
        n += 1;
    }
    &into[..n]
}

/// Reads datagrams before [`Collector::take`] takes them in: decoding and
/// checking, most of the work, need none of the collector's state, so
/// receiving threads do them before they take its lock (and in parallel).
/// Keeps its buffer from one datagram to the next.
#[derive(Debug, Default)]
pub struct Reader {
    events: Vec<Pending>,
}

/// A datagram as [`Reader::read`] read it, for [`Collector::take`].
#[derive(Debug)]
pub struct Reading<'a> {
    bytes: &'a [u8],
    read: Read<'a>,
}

#[derive(Debug)]
enum Read<'a> {
    /// Not the native format: StatsD or DogStatsD lines, read under the
    /// lock (each line makes or finds its series as it is read).
    Statsd,
    Invalid(DecodeError),
    /// Cumulative totals, checked whole.
    Series(Datagram<'a>),
    /// Events, checked whole: each key (and kind) once, and the events.
    Events {
        header: Header,
        keys: Vec<DecodedEvent<'a>>,
        events: &'a [Pending],
    },
}

impl Reader {
    /// Reads `bytes`: a datagram of the native format is decoded and
    /// checked whole, anything else is kept as StatsD text.
    pub fn read<'a>(&'a mut self, bytes: &'a [u8]) -> Reading<'a> {
        let read = if !bytes.is_empty() && !bytes.starts_with(&MAGIC) {
            Read::Statsd
        } else {
            match decode(bytes) {
                Err(e) => Read::Invalid(e),
                Ok(d) if d.is_series() => match d.check() {
                    Ok(()) => Read::Series(d),
                    Err(e) => Read::Invalid(e),
                },
                Ok(d) => match self.read_events(&d) {
                    Ok(keys) => Read::Events {
                        header: d.header,
                        keys,
                        events: &self.events,
                    },
                    Err(e) => Read::Invalid(e),
                },
            }
        };
        Reading { bytes, read }
    }

    /// Reads every event of `datagram`: the one pass that reads it checks
    /// it whole. Its keys, each (with its kind) once.
    fn read_events<'a>(
        &mut self,
        datagram: &Datagram<'a>,
    ) -> Result<Vec<DecodedEvent<'a>>, DecodeError> {
        self.events.clear();
        // The slot of each key index and kind (a key may be used with two
        // kinds: two series).
        let mut slots: [Option<(u8, Kind, u32)>; MAX_KEYS_PER_DATAGRAM] =
            [None; MAX_KEYS_PER_DATAGRAM];
        // Room for a datagram's usual keys, allocated once.
        let mut keys = Vec::with_capacity(16);
        for event in datagram.events() {
            let event = event?;
            let at = usize::from(event.key_index) % slots.len();
            let slot = match slots[at] {
                Some((index, kind, s)) if index == event.key_index && kind == event.kind => s,
                _ => {
                    let s = keys.len() as u32;
                    slots[at] = Some((event.key_index, event.kind, s));
                    keys.push(event.clone());
                    s
                }
            };
            self.events.push(Pending {
                slot,
                kind: event.kind,
                value: event.value,
                relative: event.relative,
            });
        }
        Ok(keys)
    }
}

impl Collector {
    /// Takes in one datagram: [`Reader::read`] and [`Collector::take`]
    /// (with a reader of its own: a receiving thread keeps one, to reuse
    /// its buffer).
    pub fn ingest(&mut self, bytes: &[u8]) {
        self.take(Reader::default().read(bytes));
    }

    /// Takes in a datagram read: accounts for it and aggregates its events
    /// or takes in its totals. Invalid datagrams, including one with a
    /// single bad event or record, are counted by kind and change nothing
    /// else.
    ///
    /// A datagram that does not start with the format's magic (`ST`) is
    /// read as StatsD or DogStatsD lines: the collector is also a StatsD
    /// server.
    pub fn take(&mut self, reading: Reading<'_>) {
        let header = match &reading.read {
            Read::Statsd => return self.ingest_statsd(reading.bytes),
            Read::Invalid(e) => return self.count_invalid(e),
            Read::Series(d) => d.header,
            Read::Events { header, .. } => *header,
        };
        let tracked = self.senders.contains_key(&header.sender_id) || self.admit_sender();
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
        self.totals.bytes += reading.bytes.len() as u64;
        let taken = match reading.read {
            Read::Series(d) => self.take_series(&header, d.series(), tracked),
            Read::Events { keys, events, .. } => self.take_events(&keys, events),
            Read::Statsd | Read::Invalid(_) => 0,
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
        if header.version == stats_core::wire::SERIES_VERSION {
            let before = state.started.replace(header.started);
            if before.is_some_and(|s| s != header.started) {
                // Totals that start at another time: the sender started
                // again, and its sequence with it (its numbers are not
                // the old run's, whatever they repeat).
                return state.restart(header.sequence, header.base_timestamp);
            }
        }
        state.observe(header.sequence, header.base_timestamp)
    }

    /// Whether a new sender is tracked: it is when the table has a place
    /// and the memory budget room for it, or when an unproven sender can
    /// be forgotten to make them. Its bytes are counted.
    fn admit_sender(&mut self) -> bool {
        let place = self.senders.len() < self.limits.max_senders;
        if place && self.memory.grow(SENDER_BYTES) {
            return true;
        }
        if self.evict_unproven() && self.memory.grow(SENDER_BYTES) {
            return true;
        }
        if place {
            self.totals.memory_refused.senders += 1;
        }
        false
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
                        series.forget(id, &self.memory);
                    }
                }
                self.memory.shrink(SENDER_BYTES);
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
                series.retire(sender, &self.memory);
            }
        }
    }

    /// Aggregates `events`, each into the series of its key: found, or
    /// made now.
    fn take_events(&mut self, keys: &[DecodedEvent<'_>], events: &[Pending]) -> u64 {
        let mut resolved = std::mem::take(&mut self.resolved);
        resolved.clear();
        let mut tags = [("", ""); MAX_TAGS];
        for key in keys {
            let tags = tags_of(key, &mut tags);
            resolved.push(self.series_for(key.name, tags, key.kind));
        }
        for p in events {
            if let Some(&series) = resolved.get(p.slot as usize) {
                self.aggregate(series, p.kind, p.value, p.relative, 1.0);
            }
        }
        self.resolved = resolved;
        let taken = events.len() as u64;
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
                    Aggregate::Distribution(Distribution::from_record(record.kind, d))
                }
            };
            match self.series.get_mut(at) {
                Some(series) if series.kind == record.kind => {
                    let (id, sequence) = (header.sender_id, header.sequence);
                    match series.take(id, sequence, arrival, totals, &self.memory) {
                        Taken::First if tracked => {
                            if let Some(state) = self.senders.get_mut(&id) {
                                state.series.push(at);
                            }
                        }
                        Taken::NoRoom => self.totals.memory_refused.records += 1,
                        Taken::First | Taken::Newer | Taken::Stale => {}
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
        let added = match self.series.get_mut(series) {
            Some(s) if s.kind == kind => {
                let added = s.events.add(value, relative, weight, &self.memory);
                if added == Added::Taken {
                    s.events_arrival = arrival;
                }
                added
            }
            _ => {
                let (overflow, memory) = self.overflow(kind);
                overflow.events.add(value, relative, weight, memory)
            }
        };
        match added {
            Added::Taken => {}
            Added::NotFinite => self.totals.non_finite_refused += 1,
            Added::NoRoom => self.totals.memory_refused.values += 1,
        }
    }

    fn count_invalid(&mut self, e: &DecodeError) {
        *self.invalid.entry(e.kind()).or_default() += 1;
    }

    /// Counts a Unix stream frame longer than any datagram, after which
    /// its connection is closed (nothing after it can be framed).
    pub(crate) fn count_frame_too_large(&mut self) {
        *self.invalid.entry("frame_too_large").or_default() += 1;
    }

    /// StatsD lines: counters (scaled by their sample rate), gauges (`+N` /
    /// `-N` move them), timers (milliseconds, kept as nanoseconds like the
    /// pipeline's), histograms and distributions, sets (distinct members
    /// per export interval, a gauge: [`crate::sets`]); DogStatsD events
    /// (counted by alert type) and service checks (a gauge
    /// `service_check.status` of the status, 0 to 3, tagged with the
    /// check's name as `check` and its tags). Bad lines are counted by
    /// kind and skipped.
    fn ingest_statsd(&mut self, bytes: &[u8]) {
        let mut events = 0;
        let mut others = 0;
        for line in statsd::parse(bytes) {
            let line = match line {
                Ok(Parsed::Metric(l)) => l,
                Ok(Parsed::Event(e)) => {
                    let alert = match e.alert_type {
                        "error" => "error",
                        "warning" => "warning",
                        "success" => "success",
                        _ => "info",
                    };
                    *self.statsd_events.entry(alert).or_default() += 1;
                    others += 1;
                    continue;
                }
                Ok(Parsed::ServiceCheck(c)) => {
                    let mut tags: Vec<(&str, &str)> = vec![("check", c.name)];
                    tags.extend(statsd::tag_pairs(c.tags).filter(|t| t.0 != "check"));
                    let series = self.series_for(SERVICE_CHECK, &tags, Kind::Gauge);
                    let status = f64::from(c.status as u8);
                    self.aggregate(series, Kind::Gauge, status, false, 1.0);
                    self.totals.statsd_service_checks += 1;
                    others += 1;
                    continue;
                }
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
                    let tags: Vec<(&str, &str)> = line.tag_pairs().collect();
                    let series = self.series_for(line.name, &tags, Kind::Gauge);
                    if self
                        .series
                        .get(series)
                        .is_some_and(|s| s.kind == Kind::Gauge)
                    {
                        self.sets.add(series, line.value, &self.memory);
                    } else {
                        self.totals.overflowed_events += 1;
                    }
                    events += 1;
                    continue;
                }
            };
            // DogStatsD 1.1 sends several values in a line: all or none.
            let several = kind != Kind::Counter && kind != Kind::Gauge;
            let values = line.numbers();
            if line.numbers().any(|v| v.is_none()) || (!several && line.numbers().count() > 1) {
                *self.invalid_lines.entry("statsd_bad_value").or_default() += 1;
                continue;
            }
            // Counters are exported as totals that only go up (Prometheus
            // `_total`, OTLP monotonic sums): a decrement is refused and
            // counted, never taken off a total.
            if kind == Kind::Counter && line.numbers().flatten().any(|v| v < 0.0) {
                *self.invalid_lines.entry(NEGATIVE_COUNTER).or_default() += 1;
                continue;
            }
            let tags: Vec<(&str, &str)> = line.tag_pairs().collect();
            let series = self.series_for(line.name, &tags, kind);
            for value in values.flatten() {
                self.aggregate(
                    series,
                    kind,
                    value * scale,
                    line.is_change(),
                    1.0 / line.sample_rate,
                );
                events += 1;
            }
        }
        if events + others > 0 {
            self.totals.datagrams += 1;
            self.totals.statsd_datagrams += 1;
            self.totals.bytes += bytes.len() as u64;
            self.totals.events += events;
        } else {
            *self.invalid.entry("statsd_no_valid_line").or_default() += 1;
        }
    }

    /// Ends a StatsD set interval (the server calls it every export
    /// interval, before the exports): each set's gauge becomes the number
    /// of distinct members it received since the last call.
    pub fn close_sets(&mut self) {
        let arrival = self.totals.datagrams;
        for (series, count) in self.sets.close(&self.memory) {
            if let Some(s) = self.series.get_mut(series) {
                s.events = Aggregate::Gauge(count as f64);
                s.events_arrival = arrival;
            }
        }
    }
}
