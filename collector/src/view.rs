//! What the outputs read: a [`View`], a copy of a collector's state as it
//! stood, the one interface between the state ingest writes and the
//! outputs that render or send it. A server's shards ([`Shards`]) are
//! merged into one view: counters summed, distributions merged, gauges'
//! latest values, of a sender's totals the ones of the highest sequence
//! number. Taken under each shard's lock a few series at a time
//! ([`View::taken`]), so that building an export, however many series it
//! holds, stops a receiving thread only for as long as one chunk takes
//! to copy.

use crate::aggregation::Series;
use crate::collector::{Collector, ForwardStats, HealthCounts, IngestTotals};
use crate::histograms::Histograms;
use crate::memory::Memory;
use crate::outputs::push::Destination;
use crate::senders::SenderStats;
use crate::shards::Shards;
use crate::shared::Shared;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Series a [`View::taken`] copies under one hold of a shard's lock:
/// about 0.3 ms of ingest's time at 100,000 series of three tags
/// (PERFORMANCE.md).
pub const SERIES_PER_HOLD: usize = 1_000;

/// How long [`View::taken`] lets a lock go between two holds.
const BETWEEN_HOLDS: Duration = Duration::from_micros(20);

/// A collector as its outputs read it: its series frozen (each one's
/// aggregate as it stood), and its counters.
pub struct View {
    series: Vec<Series>,
    overflow: [Option<Series>; 4],
    senders: Vec<(u64, SenderStats)>,
    totals: IngestTotals,
    invalid: BTreeMap<&'static str, u64>,
    invalid_lines: BTreeMap<&'static str, u64>,
    statsd_events: BTreeMap<&'static str, u64>,
    set_members_capped: u64,
    histograms: Histograms,
    pushes: Vec<Arc<Destination>>,
    forwarded: Option<ForwardStats>,
    export_held: Duration,
    memory: Arc<Memory>,
    health: (HealthCounts, HealthCounts),
    longest_hold: Duration,
}

impl std::fmt::Debug for View {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("View")
            .field("series", &self.series.len())
            .field("totals", &self.totals)
            .finish_non_exhaustive()
    }
}

/// Shards' state being merged into a view.
#[derive(Default)]
struct Merge {
    /// By series id.
    series: Vec<Option<Series>>,
    overflow: [Option<Series>; 4],
    senders: Vec<(u64, SenderStats)>,
    totals: IngestTotals,
    invalid: BTreeMap<&'static str, u64>,
    invalid_lines: BTreeMap<&'static str, u64>,
    statsd_events: BTreeMap<&'static str, u64>,
    set_members_capped: u64,
    health: HealthCounts,
    longest_hold: Duration,
}

/// Adds each count of `from` into `to`.
fn add_counts(to: &mut BTreeMap<&'static str, u64>, from: &BTreeMap<&'static str, u64>) {
    for (&what, &n) in from {
        *to.entry(what).or_default() += n;
    }
}

/// `series` into `into` as another copy of it, or as the first.
fn absorb(into: &mut Option<Series>, series: Series) {
    match into {
        Some(mine) => mine.absorb(series),
        None => *into = Some(series),
    }
}

impl Merge {
    /// Adds a collector's counters and overflow series.
    fn counters(&mut self, c: &Collector) {
        for (mine, theirs) in self.overflow.iter_mut().zip(&c.overflow) {
            if let Some(s) = theirs {
                absorb(mine, s.clone());
            }
        }
        self.senders.extend(c.senders());
        self.totals.add(&c.totals);
        add_counts(&mut self.invalid, &c.invalid);
        add_counts(&mut self.invalid_lines, &c.invalid_lines);
        add_counts(&mut self.statsd_events, &c.statsd_events);
        self.set_members_capped += c.sets.capped;
        self.health.add(c.health_counts());
    }

    /// Adds copies of series, each by its id.
    fn series(&mut self, copies: impl IntoIterator<Item = Series>) {
        for s in copies {
            if s.id >= self.series.len() {
                self.series.resize_with(s.id + 1, || None);
            }
            absorb(&mut self.series[s.id], s);
        }
    }

    /// The view, with what `shared` holds.
    fn finish(self, shared: &Shared) -> View {
        let outward = shared.outward();
        let then = outward.health_window.front().copied().unwrap_or_default();
        let mut senders = self.senders;
        senders.sort_unstable_by_key(|(id, _)| *id);
        View {
            series: self.series.iter().flatten().map(Series::frozen).collect(),
            overflow: self
                .overflow
                .each_ref()
                .map(|s| s.as_ref().map(Series::frozen)),
            senders,
            totals: self.totals,
            invalid: self.invalid,
            invalid_lines: self.invalid_lines,
            statsd_events: self.statsd_events,
            set_members_capped: self.set_members_capped,
            histograms: outward.histograms.clone(),
            pushes: outward.pushes.clone(),
            forwarded: outward.forwarded,
            export_held: outward.export_held,
            memory: shared.memory.clone(),
            health: (self.health, then),
            longest_hold: self.longest_hold,
        }
    }
}

impl View {
    /// The view of `collector` whole (its series with it).
    pub fn of(collector: &Collector) -> View {
        let mut merge = Merge::default();
        merge.counters(collector);
        merge.series(collector.series.iter().cloned());
        merge.finish(&collector.shared)
    }

    /// The view of every shard of `shards`, each one's series copied
    /// [`SERIES_PER_HOLD`] at a time, its lock let go between (ingest
    /// goes on meanwhile: a series may move between two holds, and one
    /// made after the first is left for the next view).
    pub fn taken(shards: &Shards) -> View {
        let mut merge = Merge::default();
        let mut lens = Vec::with_capacity(shards.count());
        for shard in 0..shards.count() {
            let held = Instant::now();
            let c = shards.lock(shard);
            merge.counters(&c);
            lens.push(c.series.len());
            drop(c);
            merge.longest_hold = merge.longest_hold.max(held.elapsed());
        }
        merge.series.reserve(shards.shared.named());
        let mut chunk = Vec::with_capacity(SERIES_PER_HOLD);
        for (shard, len) in lens.into_iter().enumerate() {
            let mut from = 0;
            while from < len {
                // The lock is not fair: taken again at once, it would go to
                // this thread before a receiving thread woken by its release
                // runs. A pause lets that thread have it.
                std::thread::sleep(BETWEEN_HOLDS);
                let to = (from + SERIES_PER_HOLD).min(len);
                let held = Instant::now();
                let c = shards.lock(shard);
                chunk.extend(c.series[from..to].iter().cloned());
                drop(c);
                merge.longest_hold = merge.longest_hold.max(held.elapsed());
                merge.series(chunk.drain(..));
                from = to;
            }
        }
        merge.finish(&shards.shared)
    }

    /// The view of every shard's counters: no series but the overflow
    /// ones (what `/health` reads).
    pub fn counters(shards: &Shards) -> View {
        let mut merge = Merge::default();
        for shard in 0..shards.count() {
            merge.counters(&shards.lock(shard));
        }
        merge.finish(&shards.shared)
    }

    /// Every series, then the overflow series in use.
    pub fn series(&self) -> impl Iterator<Item = &Series> {
        self.series.iter().chain(self.overflow.iter().flatten())
    }

    /// The regular series, and the overflow series by kind.
    pub(crate) fn series_parts(&self) -> (&[Series], &[Option<Series>; 4]) {
        (&self.series, &self.overflow)
    }

    /// Series held (the overflow series aside).
    pub fn series_held(&self) -> usize {
        self.series.len()
    }

    /// Each sender's accounting, by sender id.
    pub fn senders(&self) -> impl Iterator<Item = (u64, SenderStats)> + '_ {
        self.senders.iter().copied()
    }

    /// What ingest took in.
    pub fn totals(&self) -> IngestTotals {
        self.totals
    }

    /// Datagrams refused, by error.
    pub fn invalid(&self) -> &BTreeMap<&'static str, u64> {
        &self.invalid
    }

    /// StatsD lines refused, by error.
    pub fn invalid_lines(&self) -> &BTreeMap<&'static str, u64> {
        &self.invalid_lines
    }

    /// DogStatsD events, by alert type.
    pub(crate) fn statsd_events(&self) -> &BTreeMap<&'static str, u64> {
        &self.statsd_events
    }

    /// Set members left uncounted by the caps.
    pub(crate) fn set_members_capped(&self) -> u64 {
        self.set_members_capped
    }

    /// How distributions are exported (boundaries, native histograms).
    pub(crate) fn histograms(&self) -> &Histograms {
        &self.histograms
    }

    /// The pushed outputs' queues.
    pub(crate) fn pushes(&self) -> &[Arc<Destination>] {
        &self.pushes
    }

    /// What StatsD forwarding did, when it is on.
    pub(crate) fn forwarded(&self) -> Option<ForwardStats> {
        self.forwarded
    }

    /// The longest the pushed outputs' last run held the collector (ingest
    /// waited that long at most).
    pub(crate) fn export_held(&self) -> Duration {
        self.export_held
    }

    /// The longest one hold of the collector's lock took while this view
    /// was taken.
    pub fn longest_hold(&self) -> Duration {
        self.longest_hold
    }

    /// The memory budget.
    pub(crate) fn memory(&self) -> &Memory {
        &self.memory
    }

    /// The health counts now, and at the start of the health window.
    pub(crate) fn health_counts(&self) -> (HealthCounts, HealthCounts) {
        self.health
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::Limits;
    use crate::outputs::prometheus::render_metrics;
    use crate::test_support::ingest;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// Shards (two) of `n` counter series, a gauge and a timer among them.
    fn shards(n: usize) -> Shards {
        let limits = Limits {
            max_series: n + 10,
            ..Limits::default()
        };
        let shards = Shards::new(limits, 2);
        for i in 0..n {
            ingest(
                &shards,
                i % 2,
                format!("c{i}:{i}|c|#shard:{}", i % 7).as_bytes(),
            );
        }
        ingest(&shards, 0, b"g:5|g\nt:2|ms\nt:3|ms");
        shards
    }

    #[test]
    fn a_view_taken_a_chunk_at_a_time_reads_as_one_collector_taken_whole() {
        let n = 2 * SERIES_PER_HOLD + 17;
        let shards = shards(n);
        let mut alone = Collector::new(Limits {
            max_series: n + 10,
            ..Limits::default()
        });
        for i in 0..n {
            alone.ingest(format!("c{i}:{i}|c|#shard:{}", i % 7).as_bytes());
        }
        alone.ingest(b"g:5|g\nt:2|ms\nt:3|ms");
        let taken = View::taken(&shards);
        // Its counters, the gauge and the timer.
        assert_eq!(taken.series_held(), n + 2);
        // All but the bytes held: two shards hold more than one.
        let render = |view: &View| {
            (render_metrics(view).lines())
                .filter(|l| !l.starts_with("stats_collector_memory_bytes{part=\"tables\"}"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(render(&taken), render(&View::of(&alone)));
    }

    /// Between two chunks the lock is let go: a receiving thread takes
    /// datagrams in while a view is taken, and what it made after the
    /// view's start is left for the next view.
    #[test]
    fn ingest_goes_on_while_a_view_is_taken() {
        let shards = shards(20 * SERIES_PER_HOLD);
        let before = View::taken(&shards).series_held();
        let taking = AtomicBool::new(true);
        let (view, taken_in) = std::thread::scope(|s| {
            let ingest = s.spawn(|| {
                let mut taken_in = 0;
                while taking.load(Ordering::Relaxed) {
                    ingest(&shards, 1, format!("new{taken_in}:1|c").as_bytes());
                    taken_in += 1;
                }
                taken_in
            });
            let view = View::taken(&shards);
            taking.store(false, Ordering::Relaxed);
            (view, ingest.join().unwrap())
        });
        // Many times more than a lock held from the view's start to its
        // end would let in (those before its first hold).
        assert!(taken_in >= 20, "{taken_in} datagrams taken in meanwhile");
        assert!(view.longest_hold() > Duration::ZERO);
        // The view holds the series there when it started, or a few more:
        // those made before its first hold.
        assert!(
            view.series_held() + 1 >= before,
            "{} of {before}",
            view.series_held()
        );
        assert!(View::taken(&shards).series_held() >= before + taken_in.min(1));
    }
}
