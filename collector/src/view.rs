//! What the outputs read: a [`View`], a copy of a collector's state as it
//! stood, the one interface between the state ingest writes and the
//! outputs that render or send it. A server's shards
//! ([`crate::Shards::view`]) are merged into one view: counters summed,
//! distributions merged, gauges' latest values, of a sender's totals the
//! ones of the highest sequence number.

use crate::aggregation::Series;
use crate::collector::{Collector, IngestTotals};
use crate::health::HealthCounts;
use crate::histograms::Histograms;
use crate::memory::Memory;
use crate::outputs::push::Destination;
use crate::senders::SenderStats;
use crate::shared::ForwardStats;
use crate::shared::Shared;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// A collector as its outputs read it: its series frozen (each one's
/// aggregate as it stood), and its counters.
pub struct View {
    series: Vec<Series>,
    overflow: [Option<Series>; 4],
    counts: Counts,
    histograms: Histograms,
    pushes: Vec<Arc<Destination>>,
    forwarded: Option<ForwardStats>,
    export_held: Duration,
    memory: Arc<Memory>,
    /// Health's counts at the start of its window.
    health_then: HealthCounts,
    longest_hold: Duration,
}

/// What the shards counted, summed.
#[derive(Default)]
struct Counts {
    senders: Vec<(u64, SenderStats)>,
    totals: IngestTotals,
    invalid: BTreeMap<&'static str, u64>,
    invalid_lines: BTreeMap<&'static str, u64>,
    statsd_events: BTreeMap<&'static str, u64>,
    set_members_capped: u64,
    health: HealthCounts,
}

impl std::fmt::Debug for View {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("View")
            .field("series", &self.series.len())
            .field("totals", &self.counts.totals)
            .finish_non_exhaustive()
    }
}

/// Shards' state being merged into a view.
#[derive(Default)]
pub(crate) struct Merge {
    /// By series id.
    series: Vec<Option<Series>>,
    overflow: [Option<Series>; 4],
    counts: Counts,
    /// The longest one hold of a shard's lock took while copying.
    pub(crate) longest_hold: Duration,
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
    pub(crate) fn counters(&mut self, c: &Collector) {
        for (mine, theirs) in self.overflow.iter_mut().zip(&c.overflow) {
            if let Some(s) = theirs {
                absorb(mine, s.clone());
            }
        }
        let counts = &mut self.counts;
        counts.senders.extend(c.senders());
        counts.totals.add(&c.totals);
        add_counts(&mut counts.invalid, &c.invalid);
        add_counts(&mut counts.invalid_lines, &c.invalid_lines);
        add_counts(&mut counts.statsd_events, &c.statsd_events);
        counts.set_members_capped += c.sets.capped;
        counts.health.add(c.health_counts());
    }

    /// Adds copies of series, each by its id.
    pub(crate) fn series(&mut self, copies: impl IntoIterator<Item = Series>) {
        for s in copies {
            if s.id >= self.series.len() {
                self.series.resize_with(s.id + 1, || None);
            }
            absorb(&mut self.series[s.id], s);
        }
    }

    /// The view, with what `shared` holds.
    pub(crate) fn finish(mut self, shared: &Shared) -> View {
        let outward = shared.outward();
        (self.counts.senders).sort_unstable_by_key(|(id, _)| *id);
        View {
            series: self
                .series
                .into_iter()
                .flatten()
                .map(Series::frozen)
                .collect(),
            overflow: self.overflow.map(|s| s.map(Series::frozen)),
            counts: self.counts,
            histograms: outward.histograms.clone(),
            pushes: outward.pushes.clone(),
            forwarded: outward.forwarded,
            export_held: outward.export_held,
            memory: shared.memory.clone(),
            health_then: outward.health_window.front().copied().unwrap_or_default(),
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
        self.counts.senders.iter().copied()
    }

    /// What ingest took in.
    pub fn totals(&self) -> IngestTotals {
        self.counts.totals
    }

    /// Datagrams refused, by error.
    pub fn invalid(&self) -> &BTreeMap<&'static str, u64> {
        &self.counts.invalid
    }

    /// StatsD lines refused, by error.
    pub fn invalid_lines(&self) -> &BTreeMap<&'static str, u64> {
        &self.counts.invalid_lines
    }

    /// DogStatsD events, by alert type.
    pub(crate) fn statsd_events(&self) -> &BTreeMap<&'static str, u64> {
        &self.counts.statsd_events
    }

    /// Set members left uncounted by the caps.
    pub(crate) fn set_members_capped(&self) -> u64 {
        self.counts.set_members_capped
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
        (self.counts.health, self.health_then)
    }
}
