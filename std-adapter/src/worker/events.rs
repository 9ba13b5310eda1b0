//! The events driver (`aggregation = "off"`): the lanes drained by the
//! core's exporter.

use super::driver::{Driver, Link, Window};
use super::drop_warnings::DropWarnings;
use crate::keys::KeyReader;
use crate::lanes::{SETS, StdLanes};
use crate::report::Report;
use crate::shared::Shared;
use crate::transport::ClientTransport;
use stats_core::{BreakerState, Exporter, HealthThresholds, TelemetrySnapshot};
use std::time::Duration;

/// Events through the lanes (`aggregation = "off"`).
pub(super) struct Events<'a> {
    pub(super) exporter:
        Exporter<'a, Box<[stats_core::Slot<stats_core::Event>]>, SETS, { crate::BATCH_CAPACITY }>,
    pub(super) window: Window<TelemetrySnapshot>,
    /// The lanes it drains (their drop counters).
    pub(super) lanes: &'a StdLanes,
    pub(super) warnings: DropWarnings,
}

impl Driver for Events<'_> {
    fn poll(&mut self, now: u64, transport: Link<'_>, keys: &KeyReader<'_>) -> Option<u64> {
        let next = self.exporter.poll(now, transport, keys);
        self.warnings.check(self.lanes.drops());
        next
    }

    fn flush(&mut self, now: u64, transport: Link<'_>, keys: &KeyReader<'_>) -> bool {
        self.exporter.flush(now, transport, keys)
    }

    fn finish(&mut self, now: u64, transport: Link<'_>, keys: &KeyReader<'_>) -> bool {
        self.exporter.flush(now, transport, keys)
    }

    fn report(&mut self, shared: &Shared, transport: &dyn ClientTransport) -> Report {
        let snapshot = self.exporter.snapshot();
        let earlier = self.window.slide(snapshot);
        Report {
            snapshot,
            interner: shared.keys.stats(),
            socket: transport.info(),
            rejected: shared.rejected(),
            health: snapshot.health(earlier.as_ref(), &HealthThresholds::DEFAULT),
            aggregation: None,
        }
    }

    fn send_errors(&self) -> (u64, BreakerState) {
        (
            self.exporter.telemetry().send_errors,
            self.exporter.breaker().state(),
        )
    }

    fn idle(&self, config: &crate::Config) -> Duration {
        // The coarse clock events are stamped with moves each tick.
        Duration::from_millis(config.events.tick_ms)
    }

    fn summary(&mut self) -> String {
        let s = self.exporter.snapshot();
        format!(
            "received {} sent {} in {} datagrams, dropped {}, send-failed {}, refused {}, still buffered {}",
            s.events_received,
            s.counters.events_sent,
            s.counters.datagrams_sent,
            s.drops.total(),
            s.counters.events_send_failed,
            s.counters.events_refused,
            s.buffered()
        )
    }
}
