//! The collector's state: what arrived from whom, and the aggregates of
//! every series. No I/O: the server feeds it datagrams and serves what it
//! renders.

use crate::aggregation::Series;
use crate::gauges::Pending;
use crate::health::HealthCounts;
use crate::histograms::Histograms;
use crate::key_texts::KeyTexts;
use crate::memory::{Memory, MemoryRefused};
use crate::senders::{SenderState, SenderStats};
use crate::sets::Sets;
use crate::shared::{Limits, Shared, Unnamed, growth};
use rustc_hash::FxHashMap;
use stats_core::{Key, Kind};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

/// What ingest took in, over all senders.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct IngestTotals {
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
    /// DogStatsD service checks taken in.
    pub statsd_service_checks: u64,
    /// Values refused: not finite (NaN, an infinity), or making a total
    /// infinite.
    pub non_finite_refused: u64,
    /// Senders forgotten to make room for new ones (each had sent one
    /// datagram).
    pub senders_evicted: u64,
    /// What the memory budget refused.
    pub memory_refused: MemoryRefused,
}

impl IngestTotals {
    /// Adds `other`'s counts in (another shard's).
    pub(crate) fn add(&mut self, other: &IngestTotals) {
        self.datagrams += other.datagrams;
        self.events += other.events;
        self.records += other.records;
        self.bytes += other.bytes;
        self.overflowed_events += other.overflowed_events;
        self.overflowed_records += other.overflowed_records;
        self.untracked_datagrams += other.untracked_datagrams;
        self.duplicates_ignored += other.duplicates_ignored;
        self.statsd_datagrams += other.statsd_datagrams;
        self.statsd_service_checks += other.statsd_service_checks;
        self.non_finite_refused += other.non_finite_refused;
        self.senders_evicted += other.senders_evicted;
        self.memory_refused.add(&other.memory_refused);
    }
}

/// What one receiving thread's collector keeps: the aggregates of what it
/// took in, the senders it accounts for, its counters. A collector stands
/// alone ([`Collector::new`]) or is one of a server's shards
/// ([`crate::shards`]), which share each series' id and gauge, and which
/// shard accounts for each sender.
pub struct Collector {
    /// What it shares with the other shards: its limits and byte budget
    /// among them.
    pub(crate) shared: Arc<Shared>,
    /// Its place among the shards.
    pub(crate) shard: usize,
    pub(crate) senders: FxHashMap<u64, SenderState>,
    /// Sender ids in the order they were first seen: where a new sender
    /// looks for one to take the place of (ids since proven or gone are
    /// skipped).
    pub(crate) probation: VecDeque<u64>,
    /// The series it has taken values in for, in the order it first did.
    pub(crate) series: Vec<Series>,
    /// Each series id's place in `series`, plus one (0: none yet).
    slots: Vec<u32>,
    /// One overflow series per kind, by `Kind as usize`.
    pub(crate) overflow: [Option<Series>; 4],
    /// Invalid datagrams by error kind.
    pub(crate) invalid: BTreeMap<&'static str, u64>,
    /// Bad StatsD lines by error kind (their datagram may hold good ones).
    pub(crate) invalid_lines: BTreeMap<&'static str, u64>,
    pub(crate) totals: IngestTotals,
    /// Reused: the canonical key being looked up.
    pub(crate) scratch: String,
    /// Reused: the series of the keys of the datagram being taken in.
    pub(crate) resolved: Vec<usize>,
    /// The arrival number of the datagram being taken in.
    pub(crate) arrival: u64,
    /// Gauge values of the batch being taken in, by series (`usize::MAX`:
    /// the overflow), applied to their cells at its end
    /// ([`Collector::flush`]).
    pub(crate) pending: FxHashMap<usize, Pending>,
    /// StatsD sets' members this interval.
    pub(crate) sets: Sets,
    /// Series by their key text as sent (StatsD lines, series records).
    pub(crate) key_texts: KeyTexts,
    /// DogStatsD events by alert type.
    pub(crate) statsd_events: BTreeMap<&'static str, u64>,
}

impl std::fmt::Debug for Collector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collector")
            .field("shard", &self.shard)
            .field("series", &self.series.len())
            .finish_non_exhaustive()
    }
}

/// The bytes `series` more places in a collector's series table and
/// `slots` more in its slots hold.
fn table_bytes(series: usize, slots: usize) -> u64 {
    (series * size_of::<Series>() + slots * size_of::<u32>()) as u64
}

impl Collector {
    /// An empty collector with `limits`, standing alone.
    pub fn new(limits: Limits) -> Self {
        Collector::of_shards(Arc::new(Shared::new(limits)), 0)
    }

    /// An empty collector, shard `shard` of those that share `shared`.
    pub(crate) fn of_shards(shared: Arc<Shared>, shard: usize) -> Self {
        Collector {
            shared,
            shard,
            senders: FxHashMap::default(),
            probation: VecDeque::new(),
            series: Vec::new(),
            slots: Vec::new(),
            overflow: [None, None, None, None],
            invalid: BTreeMap::new(),
            invalid_lines: BTreeMap::new(),
            totals: IngestTotals::default(),
            scratch: String::new(),
            resolved: Vec::new(),
            arrival: 0,
            pending: FxHashMap::default(),
            sets: Sets::default(),
            key_texts: KeyTexts::default(),
            statsd_events: BTreeMap::new(),
        }
    }

    /// Exports distributions as `histograms` says (configured `le`
    /// boundaries, native histograms by remote write).
    pub fn set_histograms(&mut self, histograms: Histograms) {
        self.shared.outward().histograms = histograms;
    }

    /// The byte budget and what holds it.
    pub fn memory(&self) -> &Arc<Memory> {
        &self.shared.memory
    }

    /// The place in its series of the series for (`name`, `tags`,
    /// `kind`), made if new; `usize::MAX` (the overflow series) once the
    /// cap is reached or the memory budget has no room for it.
    pub(crate) fn series_for(&mut self, name: &str, tags: &[(&str, &str)], kind: Kind) -> usize {
        self.scratch.clear();
        self.scratch.push(char::from(kind as u8));
        if Key::write_record(name, tags, &mut self.scratch).is_err() {
            return usize::MAX;
        }
        let named = match self.shared.name(&self.scratch, kind) {
            Ok(named) => named,
            Err(Unnamed::Full) => return usize::MAX,
            Err(Unnamed::NoRoom) => {
                self.totals.memory_refused.series += 1;
                return usize::MAX;
            }
        };
        let id = named.id;
        if let Some(&slot) = self.slots.get(id)
            && slot != 0
        {
            return slot as usize - 1;
        }
        // Its strings, and the tables' growth when they are full (they
        // double): counted before it is made, so the budget holds.
        let (series_room, slots_room) = (self.series.capacity(), self.slots.capacity());
        let slots_to = (id + 1).next_power_of_two().max(slots_room);
        let own = Series::cost(name, tags);
        let grows = table_bytes(
            growth(self.series.len(), series_room),
            slots_to - slots_room,
        );
        if !self.shared.memory.grow(own + grows) {
            self.totals.memory_refused.series += 1;
            return usize::MAX;
        }
        let at = self.series.len();
        let mut series = Series::new(id, name, tags, kind, named.gauge);
        series.first = named.first;
        self.series.push(series);
        if id >= self.slots.len() {
            self.slots.reserve_exact(slots_to - self.slots.len());
            self.slots.resize(id + 1, 0);
        }
        self.slots[id] = at as u32 + 1;
        // What the tables really grew by.
        let grown = table_bytes(
            self.series.capacity() - series_room,
            self.slots.capacity() - slots_room,
        );
        self.shared.memory.changed(grows, grown);
        at
    }

    /// The overflow series of `kind` (made if new), and the budget, to
    /// add to it; counts the event it is for.
    pub(crate) fn overflow(&mut self, kind: Kind) -> (&mut Series, &Memory) {
        self.totals.overflowed_events += 1;
        let gauge = (kind == Kind::Gauge).then(|| self.shared.overflow_gauge.clone());
        let series = self.overflow[kind as usize].get_or_insert_with(|| {
            let tags = [("kind", kind.as_str())];
            Series::new(usize::MAX, "stats_collector_overflow", &tags, kind, gauge)
        });
        (series, &self.shared.memory)
    }

    /// Every series, overflow ones last.
    pub fn series(&self) -> impl Iterator<Item = &Series> {
        self.series.iter().chain(self.overflow.iter().flatten())
    }

    /// Moves health's window on: the server calls it every second, and
    /// `/health` judges the last [`crate::HEALTH_WINDOW`] ticks (since the start
    /// before that many).
    pub fn tick(&mut self) {
        let counts = self.health_counts();
        self.shared.tick(counts);
    }

    pub(crate) fn health_counts(&self) -> HealthCounts {
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
    /// text without one line that reads; `frame_too_large`: a Unix stream
    /// frame longer than any datagram, which closes its connection).
    pub fn invalid(&self) -> &BTreeMap<&'static str, u64> {
        &self.invalid
    }

    /// Bad StatsD lines by error kind.
    pub fn invalid_lines(&self) -> &BTreeMap<&'static str, u64> {
        &self.invalid_lines
    }

    /// The totals.
    pub fn totals(&self) -> IngestTotals {
        self.totals
    }
}

#[cfg(test)]
mod tests {
    use crate::aggregation::Aggregate;
    use crate::collector::Collector;
    use crate::outputs::prometheus;
    use crate::shared::Limits;

    use crate::view::View;
    use stats_core::Kind;

    use crate::test_support::{Sender, find};
    use stats_core::KeyId;

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
    fn series_and_senders_are_capped() {
        let mut s = Sender::new(1);
        let keys: Vec<KeyId> = (0..5).map(|i| s.key(&format!("m{i}"), &[])).collect();
        let mut c = Collector::new(Limits {
            max_series: 3,
            max_senders: 1,
            ..Limits::default()
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
    fn what_the_memory_budget_has_no_room_for_is_refused_and_counted() {
        let mut s = Sender::new(1);
        let (a, b) = (s.key("a", &[]), s.key("b", &[]));
        let mut c = Collector::new(Limits {
            max_memory: 0,
            ..Limits::default()
        });
        c.ingest(&s.datagram(&[(a, Kind::Counter, 2.0), (b, Kind::Histogram, 1.0)]));
        let refused = c.totals().memory_refused;
        assert_eq!((refused.series, refused.senders), (2, 1));
        assert_eq!(refused.values, 1, "the histogram value needed a bucket");
        assert_eq!(c.senders().count(), 0);
        assert_eq!(c.totals().untracked_datagrams, 1);
        assert_eq!(
            find(&c, "stats_collector_overflow").aggregate(),
            Aggregate::Counter(2.0),
            "the counter's value is still counted"
        );
        assert_eq!(c.memory().tables(), 0);
        let text = prometheus::render_metrics(&View::of(&c));
        for line in [
            "stats_collector_memory_refused_total{what=\"series\"} 2",
            "stats_collector_memory_refused_total{what=\"sender\"} 1",
            "stats_collector_memory_limit_bytes 0",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }

    #[test]
    fn a_flood_of_one_datagram_senders_cannot_push_out_real_ones() {
        let mut c = Collector::new(Limits {
            max_series: 100,
            max_senders: 4,
            ..Limits::default()
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
}
