//! The collector's state: what arrived from whom, and the aggregates of
//! every series. No I/O: the server feeds it datagrams and serves what it
//! renders.

use crate::aggregation::Series;
use crate::histograms::Histograms;
use crate::key_texts::KeyTexts;
use crate::memory::{Memory, MemoryRefused};
use crate::outputs::push::Destination;
use crate::senders::{SenderState, SenderStats};
use crate::sets::Sets;
use rustc_hash::FxHashMap;
use stats_core::{Key, Kind};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

/// Limits on what the collector keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Series kept; further ones fold into an overflow series per kind.
    pub max_series: usize,
    /// Senders whose sequences are tracked.
    pub max_senders: usize,
    /// Bytes the series, the sender table and the pushed outputs' queues
    /// share ([`crate::memory`]).
    pub max_memory: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_series: 10_000,
            max_senders: 1_024,
            max_memory: 256 << 20,
        }
    }
}

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

/// Everything the collector keeps.
pub struct Collector {
    pub(crate) limits: Limits,
    pub(crate) senders: FxHashMap<u64, SenderState>,
    /// Sender ids in the order they were first seen: where a new sender
    /// looks for one to take the place of (ids since proven or gone are
    /// skipped).
    pub(crate) probation: VecDeque<u64>,
    /// Series by canonical key (kind, name, tags as a key record).
    pub(crate) index: FxHashMap<Box<str>, usize>,
    pub(crate) series: Vec<Series>,
    /// One overflow series per kind, by `Kind as usize`.
    pub(crate) overflow: [Option<Series>; 4],
    /// Invalid datagrams by error kind.
    pub(crate) invalid: BTreeMap<&'static str, u64>,
    /// Bad StatsD lines by error kind (their datagram may hold good ones).
    pub(crate) invalid_lines: BTreeMap<&'static str, u64>,
    pub(crate) totals: IngestTotals,
    /// Reused: the canonical key being looked up.
    pub(crate) scratch: String,
    /// Reads what [`Collector::ingest`] is given.
    /// Reused: the series of the keys of the datagram being taken in.
    pub(crate) resolved: Vec<usize>,
    /// What forwarding has done, when it is on.
    pub(crate) forwarded: Option<ForwardStats>,
    /// The pushed destinations, for their counters.
    pub(crate) pushes: Vec<Arc<Destination>>,
    /// The counts health judges, at each of the last [`HEALTH_WINDOW`]
    /// ticks, oldest first.
    pub(crate) health_window: VecDeque<HealthCounts>,
    /// The byte budget, shared with the pushed destinations' queues.
    pub(crate) memory: Arc<Memory>,
    /// The longest the last run of the pushed outputs held the state at
    /// once (taking its view a chunk of series at a time): ingest waited
    /// that long at most.
    pub(crate) export_held: Duration,
    /// How distributions leave as histograms.
    pub(crate) histograms: Histograms,
    /// StatsD sets' members this interval.
    pub(crate) sets: Sets,
    /// Series by their key text as sent (StatsD lines, series records).
    pub(crate) key_texts: KeyTexts,
    /// DogStatsD events by alert type.
    pub(crate) statsd_events: BTreeMap<&'static str, u64>,
}

/// The bytes `series` more places in the series table and `index` more in
/// the index hold (a map's place: its entry and control byte, at 7/8 of
/// its slots used at most).
fn table_bytes(series: usize, index: usize) -> u64 {
    let index_place = (std::mem::size_of::<(Box<str>, usize)>() + 1) * 8 / 7;
    (series * std::mem::size_of::<Series>() + index * index_place) as u64
}

/// Ticks (seconds, as the server ticks) that health looks back over.
pub const HEALTH_WINDOW: usize = 60;

/// Fewer datagrams than this in the window are too few to judge a rate
/// by: a fresh collector's first two datagrams are not a 100% rate.
pub(crate) const HEALTH_MIN_DATAGRAMS: u64 = 100;

/// What health's rates are made of, counted since the start.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct HealthCounts {
    pub(crate) lost: u64,
    pub(crate) received: u64,
    pub(crate) invalid: u64,
    pub(crate) valid: u64,
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
            totals: IngestTotals::default(),
            scratch: String::new(),
            resolved: Vec::new(),
            forwarded: None,
            pushes: Vec::new(),
            health_window: VecDeque::with_capacity(HEALTH_WINDOW + 1),
            memory: Arc::new(Memory::new(limits.max_memory)),
            export_held: Duration::ZERO,
            histograms: Histograms::default(),
            sets: Sets::default(),
            key_texts: KeyTexts::default(),
            statsd_events: BTreeMap::new(),
        }
    }

    /// Exports distributions as `histograms` says (configured `le`
    /// boundaries, native histograms by remote write).
    pub fn set_histograms(&mut self, histograms: Histograms) {
        self.histograms = histograms;
    }

    /// The byte budget and what holds it.
    pub fn memory(&self) -> &Arc<Memory> {
        &self.memory
    }

    /// The index of the series for (`name`, `tags`, `kind`), made if new;
    /// `usize::MAX` (the overflow series) once the cap is reached or the
    /// memory budget has no room for it.
    pub(crate) fn series_for(&mut self, name: &str, tags: &[(&str, &str)], kind: Kind) -> usize {
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
        // Its strings, and the tables' growth when they are full (they
        // double): counted before it is made, so the budget holds.
        let (series_room, index_room) = (self.series.capacity(), self.index.capacity());
        let grows = |len: usize, room: usize| if len == room { room.max(4) } else { 0 };
        let own = Series::cost(name, tags, self.scratch.len());
        let growth = table_bytes(
            grows(self.series.len(), series_room),
            grows(self.index.len(), index_room),
        );
        if !self.memory.grow(own + growth) {
            self.totals.memory_refused.series += 1;
            return usize::MAX;
        }
        let at = self.series.len();
        self.series.push(Series::new(name, tags, kind));
        self.index.insert(self.scratch.as_str().into(), at);
        // What the tables really grew by (a map's growth is its own).
        let grown = table_bytes(
            self.series.capacity() - series_room,
            self.index.capacity().saturating_sub(index_room),
        );
        self.memory.changed(growth, grown);
        at
    }

    /// The overflow series of `kind` (made if new), and the budget, to
    /// add to it; counts the event it is for.
    pub(crate) fn overflow(&mut self, kind: Kind) -> (&mut Series, &Memory) {
        self.totals.overflowed_events += 1;
        let series = self.overflow[kind as usize].get_or_insert_with(|| {
            Series::new("stats_collector_overflow", &[("kind", kind.as_str())], kind)
        });
        (series, &self.memory)
    }

    /// Every series, overflow ones last.
    pub fn series(&self) -> impl Iterator<Item = &Series> {
        self.series.iter().chain(self.overflow.iter().flatten())
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

/// What forwarding has done so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ForwardStats {
    /// Intervals forwarded.
    pub intervals: u64,
    /// Lines sent.
    pub lines: u64,
    /// Datagrams sent.
    pub datagrams: u64,
    /// Datagrams the socket refused (their lines are lost).
    pub send_errors: u64,
    /// Lines lost with them.
    pub lines_lost: u64,
    /// Lines that could not be written: a non-finite value, or a name and
    /// tags longer than a datagram.
    pub lines_refused: u64,
}

#[cfg(test)]
mod tests {
    use crate::aggregation::Aggregate;
    use crate::collector::{Collector, Limits};
    use crate::outputs::prometheus;

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
