//! Ingest: one datagram at a time, taken whole or not at all. The native
//! format's events (version 1) and cumulative totals (versions 2 and 3), and
//! StatsD or DogStatsD lines for anything else.

use crate::aggregation::{Added, Aggregate, Distribution, Taken};
use crate::collector::Collector;

use crate::senders::{SENDER_BYTES, Seen, SenderState};
use rustc_hash::FxHashMap;
use stats_core::Kind;
use stats_core::registry::MAX_TAGS;
use stats_core::wire::{
    Datagram, DecodeError, DecodedEvent, DecodedSeries, DecodedTotals, Header, MAGIC,
    MAX_KEYS_PER_DATAGRAM, decode,
};

/// Gauges whose pending values' room a collector keeps between batches,
/// at most.
const MAX_PENDING_KEPT: usize = 1_024;

/// Where a new sender is accounted for.
enum Admitted {
    /// In this shard.
    Here,
    /// In another: the datagram goes there.
    Elsewhere(usize),
    /// Nowhere: its datagrams are taken in, not accounted.
    Untracked,
}

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
    /// Cumulative totals, each record read (once: the reading checks
    /// them whole).
    Series {
        header: Header,
        records: Vec<DecodedSeries<'a>>,
    },
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
                Ok(d) if d.is_series() => match d.series().collect() {
                    Ok(records) => Read::Series {
                        header: d.header,
                        records,
                    },
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
    ///
    /// A shard's collector ([`crate::Shards::shard`]) takes a datagram of
    /// a sender another shard accounts for as untracked, where
    /// [`crate::Shards::take`] hands it over to that shard.
    pub fn take(&mut self, reading: Reading<'_>) {
        let _ = self.offer(reading, false);
        self.flush();
    }

    /// [`Collector::take`] without [`Collector::flush`], or, when its
    /// sender is another shard's and `hand_over`, the datagram back with
    /// that shard's place, to take in there.
    pub(crate) fn offer<'a>(
        &mut self,
        reading: Reading<'a>,
        hand_over: bool,
    ) -> Result<(), (usize, Reading<'a>)> {
        let header = match &reading.read {
            Read::Statsd => {
                self.arrival = self.shared.arrival();
                self.ingest_statsd(reading.bytes);
                return Ok(());
            }
            Read::Invalid(e) => {
                self.count_invalid(e);
                return Ok(());
            }
            Read::Series { header, .. } => *header,
            Read::Events { header, .. } => *header,
        };
        let tracked = self.senders.contains_key(&header.sender_id)
            || match self.admit_sender(header.sender_id) {
                Admitted::Here => true,
                Admitted::Elsewhere(shard) if hand_over => return Err((shard, reading)),
                Admitted::Elsewhere(_) | Admitted::Untracked => false,
            };
        if tracked {
            match self.observe(&header) {
                Seen::Duplicate => {
                    self.totals.duplicates_ignored += 1;
                    return Ok(());
                }
                Seen::Suspect => return Ok(()),
                Seen::Restart => self.retire_sender(header.sender_id),
                Seen::New => {}
            }
        } else {
            self.totals.untracked_datagrams += 1;
        }
        self.arrival = self.shared.arrival();
        self.totals.datagrams += 1;
        self.totals.bytes += reading.bytes.len() as u64;
        let taken = match reading.read {
            Read::Series { records, .. } => self.take_series(&header, records, tracked),
            Read::Events { keys, events, .. } => self.take_events(&keys, events),
            Read::Statsd | Read::Invalid(_) => 0,
        };
        if tracked && let Some(state) = self.senders.get_mut(&header.sender_id) {
            state.stats.events += taken;
        }
        Ok(())
    }

    /// Applies the gauge values taken in since the last call to their
    /// cells ([`crate::gauges`]): [`Collector::take`] does at once, a
    /// shard at the end of each batch.
    pub(crate) fn flush(&mut self) {
        for (&at, pending) in &mut self.pending {
            if pending.is_empty() {
                continue;
            }
            let cell = if at == usize::MAX {
                Some(&self.shared.overflow_gauge)
            } else {
                self.series.get(at).and_then(|s| s.gauge.as_ref())
            };
            if let Some(cell) = cell {
                self.totals.non_finite_refused += pending.apply(cell, &self.shared.memory);
            }
        }
        // What a burst of many gauges left is not kept.
        if self.pending.len() > MAX_PENDING_KEPT {
            self.pending = FxHashMap::default();
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

    /// Whether a new sender is accounted for here: it is when no other
    /// shard does, the table has a place and the memory budget room for
    /// it, or when an unproven sender of this shard's can be forgotten to
    /// make them. Its bytes are counted.
    fn admit_sender(&mut self, id: u64) -> Admitted {
        let shared = self.shared.clone();
        let mut owners = shared.owners();
        match owners.get(&id) {
            Some(&shard) if shard != self.shard => return Admitted::Elsewhere(shard),
            _ => {}
        }
        let place = owners.len() < self.shared.limits.max_senders;
        let admitted = (place && self.shared.memory.grow(SENDER_BYTES))
            || (self.evict_unproven(&mut owners) && self.shared.memory.grow(SENDER_BYTES));
        if admitted {
            owners.insert(id, self.shard);
            return Admitted::Here;
        }
        if place {
            self.totals.memory_refused.senders += 1;
        }
        Admitted::Untracked
    }

    /// Makes room for a new sender: forgets the oldest one of this shard's
    /// that has sent a single datagram (its totals with it: a cumulative
    /// sender that comes back sends them again); whether there was one.
    fn evict_unproven(&mut self, owners: &mut FxHashMap<u64, usize>) -> bool {
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
                        series.forget(id, &self.shared.memory);
                    }
                }
                owners.remove(&id);
                self.shared.memory.shrink(SENDER_BYTES);
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
                series.retire(sender, &self.shared.memory);
            }
        }
    }

    /// The series of `kind`, `name` and `tags` as a datagram's key
    /// definition gives them: by their key text when it came before
    /// ([`KeyTexts`](crate::key_texts::KeyTexts)), else found or made by
    /// the canonical key (and the key text remembered). `usize::MAX` (the
    /// overflow) when no series can be made.
    fn keyed_series<'t>(
        &mut self,
        kind: Kind,
        name: &str,
        tags: impl Iterator<Item = (&'t str, &'t str)> + Clone,
    ) -> usize {
        if let Some(at) = self.key_texts.find_record(kind, name, tags.clone()) {
            return at;
        }
        self.series_remembered(kind, name, tags)
    }

    /// The series of `kind`, `name` and `tags`, found or made by its
    /// canonical key, and the key text last looked up in
    /// [`KeyTexts`](crate::key_texts::KeyTexts) remembered as its own.
    /// `usize::MAX` (the overflow) when no series can be made, or `tags`
    /// are more than a key holds.
    pub(crate) fn series_remembered<'t>(
        &mut self,
        kind: Kind,
        name: &str,
        tags: impl Iterator<Item = (&'t str, &'t str)>,
    ) -> usize {
        // One more than a key holds: the canonical key refuses it.
        let mut slots = [("", ""); MAX_TAGS + 1];
        let mut n = 0;
        for (slot, tag) in slots.iter_mut().zip(tags) {
            *slot = tag;
            n += 1;
        }
        let at = self.series_for(name, &slots[..n], kind);
        if at != usize::MAX {
            let most = self.shared.limits.max_series;
            self.key_texts.remember(at, most, &self.shared.memory);
        }
        at
    }

    /// Aggregates `events`, each into the series of its key: found, or
    /// made now.
    fn take_events(&mut self, keys: &[DecodedEvent<'_>], events: &[Pending]) -> u64 {
        let mut resolved = std::mem::take(&mut self.resolved);
        resolved.clear();
        for key in keys {
            resolved.push(self.keyed_series(key.kind, key.name, key.tags()));
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
        records: Vec<DecodedSeries<'_>>,
        tracked: bool,
    ) -> u64 {
        let arrival = self.arrival;
        let mut taken = 0;
        for record in records {
            let at = self.keyed_series(record.kind, record.name, record.tags());
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
                    match series.take(id, sequence, arrival, totals, &self.shared.memory) {
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

    /// Takes `value` into the series at `series` (the overflow of `kind`
    /// when it is not one of `kind`): a change to a gauge if `relative`,
    /// standing for `weight` values.
    pub(crate) fn aggregate(
        &mut self,
        series: usize,
        kind: Kind,
        value: f64,
        relative: bool,
        weight: f64,
    ) {
        let here = self.series.get(series).is_some_and(|s| s.kind == kind);
        if kind == Kind::Gauge {
            // Applied to the series' cell at the batch's end (where a value
            // that is not finite is refused and counted).
            let at = if here {
                series
            } else {
                self.overflow(kind);
                usize::MAX
            };
            self.pending
                .entry(at)
                .or_default()
                .push(value, relative, self.arrival);
            return;
        }
        let added = match self.series.get_mut(series) {
            Some(s) if here => s.events.add(value, relative, weight, &self.shared.memory),
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
}

#[cfg(test)]
mod tests {
    use crate::aggregation::Aggregate;
    use crate::collector::Collector;
    use crate::outputs::prometheus;
    use crate::shared::Limits;

    use crate::test_support::{NoBuckets, Sender, find};
    use crate::view::View;
    use stats_core::Kind;
    use stats_core::wire::{Encoder, EncoderConfig};
    use stats_core::{Event, Priority, Registry, Snapshot, Totals};

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
        let text = prometheus::render_metrics(&View::of(&c));
        assert!(
            text.contains("stats_collector_non_finite_refused_total 4"),
            "{text}"
        );
        let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert!(
            samples.iter().all(|l| {
                let value = l.rsplit(' ').next().unwrap();
                value != "NaN" && !value.ends_with("Inf")
            }),
            "{text}"
        );
        // Large totals in exponent form, as the format allows.
        assert!(samples.contains(&"big_total 1e308"), "{text}");
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

    /// Aggregating at the source with a fixed sender id (a device), restarted:
    /// the new run's totals start at another time and its sequence at 0
    /// again, so its first datagrams repeat numbers the old run used. They
    /// are a restart, not duplicates, and the exported total carries on.
    #[test]
    fn a_restart_under_the_same_id_is_told_by_its_start_not_its_numbers() {
        let mut registry = Registry::<4, 256>::new();
        let key = registry.register("boots", &[]).unwrap();
        let mut c = Collector::new(Limits::default());
        let mut buf = vec![0u8; 1432];
        let second = 1_000_000_000;
        let mut run = |started: u64, datagrams: u64, c: &mut Collector| {
            let mut encoder = Encoder::new(EncoderConfig::new(7)).unwrap();
            for i in 0..datagrams {
                let mut w = encoder
                    .begin_series(&mut buf, started + (i + 1) * second, started)
                    .unwrap();
                let totals = Snapshot {
                    key,
                    kind: Kind::Counter,
                    changes: 1,
                    value: Totals::Counter {
                        sum: i as i64 + 1,
                        count: i + 1,
                    },
                };
                w.push(&totals, &NoBuckets, |k| registry.get(k)).unwrap();
                let d = w.finish().to_vec();
                c.ingest(&d);
            }
        };
        // Ten datagrams (sequences 0 to 9), the last total 10; then a restart
        // whose clock is later (no step back to tell it by) and three more.
        run(100 * second, 10, &mut c);
        run(200 * second, 3, &mut c);
        let stats = c.senders().next().unwrap().1;
        assert_eq!(
            (stats.restarts, stats.duplicated, stats.received),
            (1, 0, 13)
        );
        assert_eq!(find(&c, "boots").aggregate(), Aggregate::Counter(13.0));
    }
}
