//! What the outputs read: a [`View`] of a [`Collector`], read-only, the
//! one interface between the collector's state (written by ingest) and
//! the outputs that render or send it.

use crate::aggregation::Series;
use crate::collector::{Collector, ForwardStats, HealthCounts, IngestTotals};
use crate::histograms::Histograms;
use crate::memory::Memory;
use crate::outputs::push::Destination;
use crate::senders::SenderStats;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// A collector as its outputs read it.
#[derive(Clone, Copy)]
pub struct View<'c> {
    collector: &'c Collector,
}

impl<'c> View<'c> {
    /// The view of `collector`.
    pub fn of(collector: &'c Collector) -> View<'c> {
        View { collector }
    }

    /// Every series, then the overflow series in use.
    pub fn series(&self) -> impl Iterator<Item = &'c Series> + 'c {
        self.collector.series()
    }

    /// Series held (the overflow series aside).
    pub fn series_held(&self) -> usize {
        self.collector.series.len()
    }

    /// Each sender's accounting, by sender id.
    pub fn senders(&self) -> impl Iterator<Item = (u64, SenderStats)> + 'c {
        self.collector.senders()
    }

    /// What ingest took in.
    pub fn totals(&self) -> IngestTotals {
        self.collector.totals()
    }

    /// Datagrams refused, by error.
    pub fn invalid(&self) -> &'c BTreeMap<&'static str, u64> {
        self.collector.invalid()
    }

    /// StatsD lines refused, by error.
    pub fn invalid_lines(&self) -> &'c BTreeMap<&'static str, u64> {
        self.collector.invalid_lines()
    }

    /// DogStatsD events, by alert type.
    pub(crate) fn statsd_events(&self) -> &'c BTreeMap<&'static str, u64> {
        &self.collector.statsd_events
    }

    /// Set members left uncounted by the caps.
    pub(crate) fn set_members_capped(&self) -> u64 {
        self.collector.sets.capped
    }

    /// How distributions are exported (boundaries, native histograms).
    pub(crate) fn histograms(&self) -> &'c Histograms {
        &self.collector.histograms
    }

    /// The pushed outputs' queues.
    pub(crate) fn pushes(&self) -> &'c [Arc<Destination>] {
        &self.collector.pushes
    }

    /// What StatsD forwarding did, when it is on.
    pub(crate) fn forwarded(&self) -> Option<ForwardStats> {
        self.collector.forwarded
    }

    /// How long building exports has held the collector, in all.
    pub(crate) fn export_held(&self) -> Duration {
        self.collector.export_held
    }

    /// The memory budget.
    pub(crate) fn memory(&self) -> &'c Memory {
        &self.collector.memory
    }

    /// The health counts now, and at the start of the health window.
    pub(crate) fn health_counts(&self) -> (HealthCounts, HealthCounts) {
        let then = self.collector.health_window.front().copied();
        (self.collector.health_counts(), then.unwrap_or_default())
    }
}
