//! The event [`Runner`]: drains the lanes into datagrams.

use super::link::Link;
use super::{Config, Error, HISTOGRAM_G, HISTOGRAM_N, Resources};
use embassy_net::Stack;
use stats_core::{Event, Exporter, Keys, Lanes, Storage, TelemetrySnapshot};

/// Drives the pipeline: spawn a task that calls [`Runner::run`].
///
/// `BATCH` is the most events staged per batch; `G` and `N` size the three
/// latency histograms (see [`HISTOGRAM_G`]; `N = 0` switches them off and
/// saves their RAM).
pub struct Runner<
    'a,
    S: Storage<Event>,
    K: Keys + ?Sized,
    const SETS: usize,
    const BATCH: usize = 32,
    const G: u32 = HISTOGRAM_G,
    const N: usize = HISTOGRAM_N,
> {
    exporter: Exporter<'a, S, SETS, BATCH, G, N>,
    link: Link<'a>,
    keys: &'a K,
}

impl<
    'a,
    S: Storage<Event>,
    K: Keys + ?Sized,
    const SETS: usize,
    const BATCH: usize,
    const G: u32,
    const N: usize,
> Runner<'a, S, K, SETS, BATCH, G, N>
{
    /// A runner draining `lanes`, naming metrics from `keys`, sending
    /// through `stack` from the caller's `resources`.
    pub fn new<const DATAGRAM: usize, const TX: usize>(
        stack: Stack<'a>,
        lanes: &'a Lanes<S, SETS>,
        keys: &'a K,
        resources: &'a mut Resources<DATAGRAM, TX>,
        config: Config,
    ) -> Result<Self, Error> {
        let encoder = config.exporter.encoder;
        let max = encoder.max_datagram.min(DATAGRAM);
        let consumer = lanes.consumer().ok_or(Error::ConsumerTaken)?;
        let (link, datagram) = Link::new(stack, resources, &config, max)?;
        let exporter_config = config.exporter.with_encoder(encoder.with_max_datagram(max));
        let exporter =
            Exporter::new(consumer, datagram, exporter_config).map_err(Error::Exporter)?;
        Ok(Runner {
            exporter,
            link,
            keys,
        })
    }

    /// Waits for the network (link and IP configuration, checked every poll
    /// interval), then polls the exporter at the times it asks for (and
    /// every poll interval); a full socket buffer or more work than one
    /// poll does brings it back after a millisecond. Never returns. Events
    /// recorded before the network is up wait in the lanes.
    pub async fn run(&mut self) -> ! {
        let Runner {
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

    /// The telemetry now (lanes, counters, breaker, latencies).
    pub fn snapshot(&mut self) -> TelemetrySnapshot {
        self.exporter.snapshot()
    }
}
