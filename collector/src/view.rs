//! What the outputs read: a [`View`], a copy of a [`Collector`]'s state
//! as it stood, the one interface between the state ingest writes and the
//! outputs that render or send it. Taken under the collector's lock a
//! few series at a time ([`View::taken`]), so that building an export,
//! however many series it holds, stops ingest only for as long as one
//! chunk takes to copy.

use crate::aggregation::Series;
use crate::collector::{Collector, ForwardStats, HealthCounts, IngestTotals};
use crate::histograms::Histograms;
use crate::memory::Memory;
use crate::outputs::push::Destination;
use crate::senders::SenderStats;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Series a [`View::taken`] copies under one hold of the lock: about
/// 0.3 ms of ingest's time at 100,000 series of three tags (PERFORMANCE.md).
pub const SERIES_PER_HOLD: usize = 1_000;

/// How long [`View::taken`] lets the lock go between two holds.
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

impl View {
    /// The view of `collector` whole (its series with it).
    pub fn of(collector: &Collector) -> View {
        let mut view = View::counters(collector);
        view.series = collector.series.iter().map(Series::frozen).collect();
        view
    }

    /// The view of the collector behind `collector`, its series copied
    /// [`SERIES_PER_HOLD`] at a time, the lock let go between (ingest goes
    /// on meanwhile: a series may move between two holds, and one made
    /// after the first is left for the next view). `None` when the lock
    /// is poisoned.
    pub fn taken(collector: &Mutex<Collector>) -> Option<View> {
        let (mut view, len) = {
            let held = Instant::now();
            let c = collector.lock().ok()?;
            let mut view = View::counters(&c);
            view.longest_hold = held.elapsed();
            (view, c.series.len())
        };
        view.series.reserve_exact(len);
        while view.series.len() < len {
            if !view.series.is_empty() {
                // The lock is not fair: taken again at once, it would go to
                // this thread before a receiving thread woken by its release
                // runs. A pause lets that thread have it.
                std::thread::sleep(BETWEEN_HOLDS);
            }
            let held = Instant::now();
            let c = collector.lock().ok()?;
            let (from, to) = (
                view.series.len(),
                (view.series.len() + SERIES_PER_HOLD).min(len),
            );
            view.series
                .extend(c.series[from..to].iter().map(Series::frozen));
            drop(c);
            view.longest_hold = view.longest_hold.max(held.elapsed());
        }
        Some(view)
    }

    /// The view of `collector`'s counters: no series but the overflow
    /// ones (what `/health` reads).
    pub fn counters(collector: &Collector) -> View {
        let c = collector;
        let then = c.health_window.front().copied().unwrap_or_default();
        View {
            series: Vec::new(),
            overflow: c
                .overflow
                .each_ref()
                .map(|s| s.as_ref().map(Series::frozen)),
            senders: c.senders().collect(),
            totals: c.totals(),
            invalid: c.invalid.clone(),
            invalid_lines: c.invalid_lines.clone(),
            statsd_events: c.statsd_events.clone(),
            set_members_capped: c.sets.capped,
            histograms: c.histograms.clone(),
            pushes: c.pushes.clone(),
            forwarded: c.forwarded,
            export_held: c.export_held,
            memory: c.memory.clone(),
            health: (c.health_counts(), then),
            longest_hold: Duration::ZERO,
        }
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
    use std::sync::atomic::{AtomicBool, Ordering};

    /// A collector of `n` counter series, a gauge and a timer among them.
    fn collector(n: usize) -> Collector {
        let mut c = Collector::new(Limits {
            max_series: n + 10,
            ..Limits::default()
        });
        for i in 0..n {
            c.ingest(format!("c{i}:{i}|c|#shard:{}", i % 7).as_bytes());
        }
        c.ingest(b"g:5|g\nt:2|ms\nt:3|ms");
        c
    }

    #[test]
    fn a_view_taken_a_chunk_at_a_time_reads_as_one_taken_whole() {
        let c = collector(2 * SERIES_PER_HOLD + 17);
        let whole = render_metrics(&View::of(&c));
        let c = Mutex::new(c);
        let taken = View::taken(&c).unwrap();
        // Its counters, the gauge and the timer.
        assert_eq!(taken.series_held(), 2 * SERIES_PER_HOLD + 19);
        assert_eq!(render_metrics(&taken), whole);
    }

    /// Between two chunks the lock is let go: a receiving thread takes
    /// datagrams in while a view is taken, and what it made after the
    /// view's start is left for the next view.
    #[test]
    fn ingest_goes_on_while_a_view_is_taken() {
        let c = Mutex::new(collector(20 * SERIES_PER_HOLD));
        let before = c.lock().unwrap().series().count();
        let taking = AtomicBool::new(true);
        let (view, taken_in) = std::thread::scope(|s| {
            let ingest = s.spawn(|| {
                let mut taken_in = 0;
                while taking.load(Ordering::Relaxed) {
                    c.lock()
                        .unwrap()
                        .ingest(format!("new{taken_in}:1|c").as_bytes());
                    taken_in += 1;
                }
                taken_in
            });
            let view = View::taken(&c).unwrap();
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
        assert!(c.lock().unwrap().series().count() >= before + taken_in.min(1));
    }
}
