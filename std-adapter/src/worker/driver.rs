//! What the worker loop drives: the [`Driver`] seam the three drivers
//! (events, totals, StatsD lines) fill, and the health window their
//! reports judge.

use crate::keys::KeyReader;
use crate::report::Report;
use crate::shared::Shared;
use crate::transport::ClientTransport;
use stats_core::BreakerState;
use std::time::{Duration, Instant};

/// The health window.
pub(super) const HEALTH_WINDOW: Duration = Duration::from_secs(10);

/// The transport a driver sends through.
pub(super) type Link<'t> = &'t mut dyn ClientTransport;

/// What the worker loop drives: the event exporter or the aggregate one.
pub(super) trait Driver {
    /// Does what is due at `now`; when to come back.
    fn poll(&mut self, now: u64, transport: Link<'_>, keys: &KeyReader<'_>) -> Option<u64>;
    /// Sends everything now; whether nothing is left.
    fn flush(&mut self, now: u64, transport: Link<'_>, keys: &KeyReader<'_>) -> bool;
    /// The last flush before the worker stops; whether nothing is left.
    fn finish(&mut self, now: u64, transport: Link<'_>, keys: &KeyReader<'_>) -> bool;
    /// The report now, health judged against the window's start.
    fn report(&mut self, shared: &Shared, transport: &dyn ClientTransport) -> Report;
    /// Datagrams that failed to send, ever, and the breaker's state.
    fn send_errors(&self) -> (u64, BreakerState);
    /// One line for the log at shutdown.
    fn summary(&mut self) -> String;
    /// The longest the worker sleeps when nothing is due (and how often it
    /// publishes a report, at most every `PUBLISH_EVERY`).
    fn idle(&self, config: &crate::Config) -> Duration;
}

/// The health window: a report from about `HEALTH_WINDOW` ago.
pub(super) struct Window<T> {
    pub(super) since: Instant,
    pub(super) earlier: Option<T>,
}

impl<T: Copy> Window<T> {
    pub(super) fn new() -> Self {
        Window {
            since: Instant::now(),
            earlier: None,
        }
    }

    /// The start of the window, after taking in `now`'s value.
    pub(super) fn slide(&mut self, now: T) -> Option<T> {
        if self.since.elapsed() >= HEALTH_WINDOW || self.earlier.is_none() {
            *self = Window {
                since: Instant::now(),
                earlier: Some(now),
            };
        }
        self.earlier
    }
}
