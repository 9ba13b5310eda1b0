//! The tasks that drive the core's exporters over embassy-net: the event
//! [`Runner`] and the [`AggregateRunner`] of series totals.

use crate::fmt::log_info;
use crate::transport::UdpTransport;
use embassy_net::udp::{BindError, PacketMetadata, UdpSocket};
use embassy_net::{IpEndpoint, Stack};
use embassy_time::{Duration, Timer};
use stats_core::histogram::bucket_count;
use stats_core::{
    AggregateExporter, AggregateExporterConfig, AggregateExporterError, AggregateTelemetry,
    Aggregates, CircuitBreaker, Event, Exporter, ExporterConfig, ExporterError, Keys, Lanes,
    Storage, TelemetrySnapshot, Words,
};

/// Latency histogram precision on a microcontroller: buckets 50% wide
/// (25% error: enough to tell 1 ms from 10 ms), 72 buckets, 292 bytes each
/// (the server uses 4 KiB). A [`Runner`] may choose another (`G = 2` is 564
/// bytes and 12.5%), or none (`N = 0`).
pub const HISTOGRAM_G: u32 = 1;
/// Buckets of that histogram (values up to 2^36 ns, about 69 s).
pub const HISTOGRAM_N: usize = bucket_count(HISTOGRAM_G, 36);

/// Where and how a runner sends: `E` is its exporter's configuration
/// ([`ExporterConfig`] for the event [`Runner`],
/// [`AggregateExporterConfig`] for the [`AggregateRunner`]).
#[derive(Clone, Copy, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct Config<E = ExporterConfig> {
    /// The collector.
    pub destination: IpEndpoint,
    /// Local UDP port (0: any).
    pub local_port: u16,
    /// Batching or interval, breaker, framing (the datagram size is capped
    /// to the buffer in [`Resources`]).
    pub exporter: E,
    /// How often to look for work when nothing is due, ms.
    pub poll_interval_ms: u64,
}

impl Config<AggregateExporterConfig> {
    /// Sends the totals to `destination` as `sender_id` every second (all
    /// of them every 10 s), polling every 10 ms. The totals start at the
    /// runner's creation ([`crate::now_ns`], time since boot).
    pub const fn aggregated(destination: IpEndpoint, sender_id: u64) -> Self {
        Config {
            destination,
            local_port: 0,
            exporter: AggregateExporterConfig::new(sender_id, 0),
            poll_interval_ms: 10,
        }
    }

    /// The same with another exporter configuration (its `started` is set
    /// when the runner is made).
    pub const fn with_exporter(self, exporter: AggregateExporterConfig) -> Self {
        Config { exporter, ..self }
    }
}

impl Config {
    /// Sends to `destination` as `sender_id`: batches of 32 (or 100 ms),
    /// polling every 10 ms.
    pub const fn new(destination: IpEndpoint, sender_id: u64) -> Self {
        Config {
            destination,
            local_port: 0,
            exporter: ExporterConfig::new(sender_id).with_batch_size(32),
            poll_interval_ms: 10,
        }
    }

    /// The same with another exporter configuration.
    pub const fn with_exporter(self, exporter: ExporterConfig) -> Self {
        Config { exporter, ..self }
    }
}

/// Memory the runner uses, provided by the caller (in a `static` or a
/// `StaticCell`): the datagram being built (`DATAGRAM` bytes, at least 512)
/// and the socket's transmit buffer (`TX` bytes, at least `DATAGRAM`).
pub struct Resources<const DATAGRAM: usize = 512, const TX: usize = 1024> {
    rx_meta: [PacketMetadata; 1],
    rx_buf: [u8; 1],
    tx_meta: [PacketMetadata; 2],
    tx_buf: [u8; TX],
    datagram: [u8; DATAGRAM],
}

impl<const DATAGRAM: usize, const TX: usize> Resources<DATAGRAM, TX> {
    /// Zeroed resources (usable in a `static`).
    pub const fn new() -> Self {
        Resources {
            rx_meta: [PacketMetadata::EMPTY; 1],
            rx_buf: [0; 1],
            tx_meta: [PacketMetadata::EMPTY; 2],
            tx_buf: [0; TX],
            datagram: [0; DATAGRAM],
        }
    }
}

impl<const DATAGRAM: usize, const TX: usize> Default for Resources<DATAGRAM, TX> {
    fn default() -> Self {
        Self::new()
    }
}

/// Why a runner could not be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error {
    /// Another consumer drains these lanes.
    ConsumerTaken,
    /// The socket's transmit buffer is smaller than a datagram.
    TxBufferTooSmall {
        /// Datagram size.
        datagram: usize,
        /// Transmit buffer size.
        tx: usize,
    },
    /// The local port could not be bound.
    Bind(BindError),
    /// The exporter configuration is unusable.
    Exporter(ExporterError),
    /// The aggregate exporter configuration is unusable.
    Aggregate(AggregateExporterError),
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::ConsumerTaken => f.write_str("the lanes already have a consumer"),
            Error::TxBufferTooSmall { datagram, tx } => {
                write!(
                    f,
                    "transmit buffer of {tx} bytes cannot hold a {datagram}-byte datagram"
                )
            }
            Error::Bind(e) => write!(f, "bind: {e:?}"),
            Error::Exporter(e) => write!(f, "exporter: {e}"),
            Error::Aggregate(e) => write!(f, "aggregate exporter: {e}"),
        }
    }
}

impl core::error::Error for Error {}

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

/// What both runners drive their exporter through: the socket, the poll
/// interval and the breaker log.
struct Link<'a> {
    transport: UdpTransport<'a>,
    poll_interval: Duration,
    /// The same in nanoseconds (saturating).
    poll_interval_ns: u32,
    breaker_log: BreakerLog,
}

impl<'a> Link<'a> {
    /// Binds a socket in `resources` (at most `max_datagram` bytes a
    /// datagram) for sending to `destination`.
    fn new<const DATAGRAM: usize, const TX: usize, E>(
        stack: Stack<'a>,
        resources: &'a mut Resources<DATAGRAM, TX>,
        config: &Config<E>,
        max_datagram: usize,
    ) -> Result<(Self, &'a mut [u8; DATAGRAM]), Error> {
        if TX < DATAGRAM {
            return Err(Error::TxBufferTooSmall {
                datagram: DATAGRAM,
                tx: TX,
            });
        }
        let Resources {
            rx_meta,
            rx_buf,
            tx_meta,
            tx_buf,
            datagram,
        } = resources;
        let mut socket = UdpSocket::new(stack, rx_meta, rx_buf, tx_meta, tx_buf);
        socket.bind(config.local_port).map_err(Error::Bind)?;
        let link = Link {
            transport: UdpTransport::new(socket, stack, config.destination, max_datagram),
            poll_interval: Duration::from_millis(config.poll_interval_ms),
            poll_interval_ns: u32::try_from(config.poll_interval_ms.saturating_mul(1_000_000))
                .unwrap_or(u32::MAX),
            breaker_log: BreakerLog::default(),
        };
        Ok((link, datagram))
    }

    /// Waits for the network (link and IP configuration, checked every poll
    /// interval), then calls `poll` at the times it asks for (and every
    /// poll interval); a full socket buffer or more work than one poll does
    /// brings it back after a millisecond. Never returns.
    async fn run(
        &mut self,
        mut poll: impl FnMut(u64, &mut UdpTransport<'a>, &mut BreakerLog) -> Option<u64>,
    ) -> ! {
        let stack = self.transport.stack;
        let mut up = false;
        loop {
            // One await point: each one is code in the task's state machine.
            let wait = if up || (stack.is_link_up() && stack.is_config_up()) {
                if !up {
                    up = true;
                    log_info!("stats: sending to {}", self.transport.destination());
                }
                let now = crate::now_ns();
                match poll(now, &mut self.transport, &mut self.breaker_log) {
                    // More waiting, or the socket is full: a tick, letting
                    // other tasks run (and the stack send).
                    Some(due) if due <= now => Duration::from_millis(1),
                    // Until `due`, a poll interval at most: the wait fits 32
                    // bits of nanoseconds, so no 64-bit division (a library
                    // routine on Cortex-M).
                    Some(due) => {
                        let wait_ns = due
                            .saturating_sub(now)
                            .min(u64::from(self.poll_interval_ns));
                        Duration::from_micros(u64::from(wait_ns as u32 / 1_000))
                    }
                    None => self.poll_interval,
                }
            } else {
                self.poll_interval
            };
            Timer::after(wait).await;
        }
    }
}

/// Logs the breaker's transitions once each with defmt; without it,
/// nothing (the telemetry's breaker counters tell the same).
#[derive(Default)]
struct BreakerLog {
    /// Transitions already logged.
    #[cfg(feature = "defmt")]
    seen: stats_core::BreakerTransitions,
}

impl BreakerLog {
    fn observe(&mut self, _breaker: &CircuitBreaker) {
        #[cfg(feature = "defmt")]
        {
            let t = _breaker.transitions();
            if t != self.seen {
                if t.opened != self.seen.opened {
                    defmt::warn!("stats: sends failing, circuit breaker open");
                }
                if t.closed != self.seen.closed {
                    defmt::info!("stats: sends recovered, circuit breaker closed");
                }
                self.seen = t;
            }
        }
    }
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
    /// it asks for (see [`Runner::run`]). Never returns. What is recorded
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
