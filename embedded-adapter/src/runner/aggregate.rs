//! The [`AggregateRunner`]: sends the series totals every interval.

use super::link::Link;
use super::{Config, Error, Resources};
use embassy_net::Stack;
use stats_core::{
    AggregateExporter, AggregateExporterConfig, AggregateTelemetry, Aggregates, Keys, Words,
};

/// Drives the aggregate exporter: the series totals in `tables` go out
/// every interval (those that changed; all of them every refresh). Spawn a
/// task that calls [`AggregateRunner::run`].
///
/// Record into the same tables from tasks through a
/// [`Shard`](stats_core::Shard) each (plain loads and stores), and from
/// anywhere, interrupt handlers included, through the tables' own methods
/// ([`Aggregates::add`] and the rest: a critical section of a few
/// instructions on cores without 64-bit atomics).
pub struct AggregateRunner<'a, S: Words, K: Keys + ?Sized> {
    exporter: AggregateExporter<'a, S>,
    link: Link<'a>,
    keys: &'a K,
}

impl<'a, S: Words, K: Keys + ?Sized> AggregateRunner<'a, S, K> {
    /// A runner sending the totals of `tables`, naming metrics from
    /// `keys`, through `stack` from the caller's `resources`. The totals
    /// count from now.
    pub fn new<const DATAGRAM: usize, const TX: usize>(
        stack: Stack<'a>,
        tables: &'a Aggregates<S>,
        keys: &'a K,
        resources: &'a mut Resources<DATAGRAM, TX>,
        config: Config<AggregateExporterConfig>,
    ) -> Result<Self, Error> {
        let encoder = config.exporter.encoder;
        let max = encoder.max_datagram.min(DATAGRAM);
        let (link, datagram) = Link::new(stack, resources, &config, max)?;
        let mut exporter_config = config.exporter.with_encoder(encoder.with_max_datagram(max));
        exporter_config.started = crate::now_ns();
        let exporter =
            AggregateExporter::new(tables, datagram, exporter_config).map_err(Error::Aggregate)?;
        Ok(AggregateRunner {
            exporter,
            link,
            keys,
        })
    }

    /// Waits for the network, then runs the exporter's passes at the times
    /// it asks for (see [`Runner::run`](super::Runner::run)). Never returns. What is recorded
    /// before the network is up is in the totals.
    pub async fn run(&mut self) -> ! {
        let AggregateRunner {
            exporter,
            link,
            keys,
        } = self;
        link.run(|now, transport, log| {
            let next = exporter.poll(now, transport, *keys);
            log.observe(exporter.breaker());
            next
        })
        .await
    }

    /// Sends every total now, as far as the socket and the breaker let
    /// it: `true` when all are handed to the socket.
    pub fn flush(&mut self) -> bool {
        let now = crate::now_ns();
        self.exporter
            .flush(now, &mut self.link.transport, self.keys)
    }

    /// What the exporter has done.
    pub fn telemetry(&self) -> AggregateTelemetry {
        *self.exporter.telemetry()
    }
}
