//! The totals driver (`aggregation = "source"`, native codec): the
//! series' totals sent by the core's aggregate exporter; and the report
//! both source-mode drivers give.

use super::driver::{Driver, Link, Window};
use crate::aggregation::Aggregation;
use crate::keys::KeyReader;
use crate::report::{AggregationReport, Report};
use crate::shared::Shared;
use crate::transport::ClientTransport;
use stats_core::health::evaluate;
use stats_core::{
    AggregateExporter, AggregateTelemetry, BreakerState, HealthThresholds, Measurements,
    TelemetrySnapshot, Word,
};
use std::time::Duration;

/// Aggregated totals (`aggregation = "source"`).
pub(super) struct Totals<'a> {
    pub(super) exporter: AggregateExporter<'a, Box<[Word]>>,
    pub(super) aggregation: &'a Aggregation,
    pub(super) window: Window<(AggregateTelemetry, u64)>,
    pub(super) memory_bytes: usize,
}

/// Copies of the final state a shutdown sends, so that one lost datagram
/// cannot lose a final total (a receiver takes duplicates as one).
pub(super) const FINAL_COPIES: usize = 2;

impl Driver for Totals<'_> {
    fn poll(&mut self, now: u64, transport: Link<'_>, keys: &KeyReader<'_>) -> Option<u64> {
        self.exporter.poll(now, transport, keys)
    }

    fn flush(&mut self, now: u64, transport: Link<'_>, keys: &KeyReader<'_>) -> bool {
        self.exporter.flush(now, transport, keys)
    }

    fn finish(&mut self, now: u64, transport: Link<'_>, keys: &KeyReader<'_>) -> bool {
        (0..FINAL_COPIES).all(|_| self.exporter.flush(now, transport, keys))
    }

    fn report(&mut self, shared: &Shared, transport: &dyn ClientTransport) -> Report {
        totals_report(
            shared,
            transport,
            self.aggregation,
            *self.exporter.telemetry(),
            self.exporter.breaker().state(),
            &mut self.window,
            self.memory_bytes,
        )
    }

    fn send_errors(&self) -> (u64, BreakerState) {
        (
            self.exporter.telemetry().send_errors,
            self.exporter.breaker().state(),
        )
    }

    fn idle(&self, config: &crate::Config) -> Duration {
        // Nothing is stamped: the worker wakes for its passes only.
        Duration::from_millis(config.aggregation.interval_ms)
    }

    fn summary(&mut self) -> String {
        let stats = self.aggregation.stats();
        let t = self.exporter.telemetry();
        format!(
            "{} series, {} values recorded; {} records in {} datagrams ({} passes), {} failed to send",
            stats.tables.series,
            stats.recorded.iter().sum::<u64>(),
            t.series_sent,
            t.datagrams_sent,
            t.passes,
            t.send_errors
        )
    }
}

/// The report of a source-mode driver, health judged on its sends.
pub(super) fn totals_report(
    shared: &Shared,
    transport: &dyn ClientTransport,
    aggregation: &Aggregation,
    sent: AggregateTelemetry,
    breaker: BreakerState,
    window: &mut Window<(AggregateTelemetry, u64)>,
    memory_bytes: usize,
) -> Report {
    let stats = aggregation.stats();
    let recorded: u64 = stats.recorded.iter().sum();
    let (before, recorded_before) = window
        .slide((sent, recorded))
        .unwrap_or((AggregateTelemetry::default(), 0));
    let errors = sent.send_errors.saturating_sub(before.send_errors);
    let measurements = Measurements {
        events_recorded: recorded.saturating_sub(recorded_before),
        sends: sent.datagrams_sent.saturating_sub(before.datagrams_sent) + errors,
        send_errors: errors,
        breaker_open: matches!(breaker, BreakerState::Open { .. }),
        ..Measurements::default()
    };
    let t = &stats.tables;
    let unused = (t.pool_words - t.pool_used) * size_of::<Word>();
    Report {
        snapshot: TelemetrySnapshot::default(),
        interner: shared.keys.stats(),
        socket: transport.info(),
        rejected: shared.rejected(),
        health: evaluate(&measurements, &HealthThresholds::DEFAULT),
        aggregation: Some(AggregationReport {
            stats,
            sent,
            memory_bytes,
            memory_used_bytes: memory_bytes.saturating_sub(unused),
            memory_max_bytes: shared.config.max_memory_mb << 20,
            breaker,
        }),
    }
}
