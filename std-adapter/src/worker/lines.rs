//! The StatsD lines driver (`aggregation = "source"`, a StatsD codec):
//! the totals' increases since the last pass as lines.

use super::driver::{Driver, Link, Window};
use super::totals::totals_report;
use crate::aggregation::Aggregation;
use crate::keys::KeyReader;
use crate::report::Report;
use crate::shared::Shared;
use crate::transport::ClientTransport;
use stats_core::Totals as CoreTotals;
use stats_core::wire::deltas::{Current, Deltas};
use stats_core::wire::packer::Packer;
use stats_core::{AggregateTelemetry, BreakerState, CircuitBreaker, Keys};
use std::time::Duration;

/// Aggregated totals as StatsD lines of what changed each interval
/// (`aggregation = "source"` with a StatsD codec; `deltas.rs`).
pub(super) struct Lines<'a> {
    pub(super) aggregation: &'a Aggregation,
    pub(super) deltas: Deltas,
    pub(super) packer: Packer,
    pub(super) breaker: CircuitBreaker,
    pub(super) interval: u64,
    pub(super) next: Option<u64>,
    pub(super) sent: AggregateTelemetry,
    pub(super) window: Window<(AggregateTelemetry, u64)>,
    pub(super) memory_bytes: usize,
    /// Whether counter and gauge lines carry their time (`timestamps`).
    pub(super) timestamps: bool,
}

impl Lines<'_> {
    /// Sends the lines of every series that changed; whether all went.
    pub(super) fn pass(&mut self, now: u64, transport: Link<'_>, keys: &KeyReader<'_>) -> bool {
        if !self.breaker.allow(now) {
            return false;
        }
        let Lines {
            aggregation,
            deltas,
            packer,
            breaker,
            sent,
            ..
        } = self;
        let tables = &aggregation.tables;
        packer.set_timestamp(self.timestamps.then_some(now / 1_000_000_000));
        let mut failed = false;
        let mut send = |datagram: &[u8], lines: u64| match transport.send(datagram) {
            Ok(()) => {
                breaker.on_success();
                sent.send_calls += 1;
                sent.datagrams_sent += 1;
                sent.bytes_sent += datagram.len() as u64;
                sent.series_sent += lines;
            }
            Err(_) => {
                breaker.on_failure(now);
                failed = true;
                sent.send_calls += 1;
                sent.send_errors += 1;
                sent.bytes_send_failed += datagram.len() as u64;
                sent.series_send_failed += lines;
            }
        };
        for index in 0..tables.len() {
            let Some(series) = tables.series_at(index) else {
                continue;
            };
            let Some(snapshot) = tables.snapshot(series) else {
                continue;
            };
            if snapshot.changes == tables.sent(series) {
                continue;
            }
            let Some(key) = keys.key(snapshot.key) else {
                sent.series_refused += 1;
                continue;
            };
            let mut buckets = tables.buckets(series, 0).map(|(id, c)| ((0, id), c));
            let current = match snapshot.value {
                CoreTotals::Counter { sum, .. } => Current::Counter(sum as f64),
                CoreTotals::Gauge { value } => Current::Gauge(value),
                CoreTotals::Distribution { min, max, .. } => Current::Distribution {
                    buckets: &mut buckets,
                    min,
                    max,
                    timer: snapshot.kind == stats_core::Kind::Timer,
                },
            };
            deltas.lines(index, current, |values, rate| {
                let pushed = packer.push(
                    key.name(),
                    key.tags(),
                    snapshot.kind,
                    values,
                    rate,
                    &mut send,
                );
                if pushed.is_err() {
                    sent.series_refused += 1;
                }
            });
            tables.set_sent(series, snapshot.changes);
        }
        packer.flush(&mut send);
        sent.passes += 1;
        !failed
    }
}

impl Driver for Lines<'_> {
    fn poll(&mut self, now: u64, transport: Link<'_>, keys: &KeyReader<'_>) -> Option<u64> {
        let due = *self.next.get_or_insert(now);
        if now >= due {
            self.pass(now, transport, keys);
            self.next = Some(due.saturating_add(self.interval).max(now));
        }
        self.next
    }

    fn flush(&mut self, now: u64, transport: Link<'_>, keys: &KeyReader<'_>) -> bool {
        self.pass(now, transport, keys)
    }

    fn finish(&mut self, now: u64, transport: Link<'_>, keys: &KeyReader<'_>) -> bool {
        self.pass(now, transport, keys)
    }

    fn report(&mut self, shared: &Shared, transport: &dyn ClientTransport) -> Report {
        totals_report(
            shared,
            transport,
            self.aggregation,
            self.sent,
            self.breaker.state(),
            &mut self.window,
            self.memory_bytes,
        )
    }

    fn send_errors(&self) -> (u64, BreakerState) {
        (self.sent.send_errors, self.breaker.state())
    }

    fn summary(&mut self) -> String {
        let stats = self.aggregation.stats();
        format!(
            "{} series, {} values recorded; {} lines in {} datagrams, {} failed to send",
            stats.tables.series,
            stats.recorded.iter().sum::<u64>(),
            self.sent.series_sent,
            self.sent.datagrams_sent,
            self.sent.send_errors
        )
    }

    fn idle(&self, config: &crate::Config) -> Duration {
        Duration::from_millis(config.aggregation.interval_ms)
    }
}
