//! The tasks that drive the core's exporters over embassy-net: the event
//! [`Runner`] and the [`AggregateRunner`] of series totals.

mod aggregate;
mod events;
mod link;

pub use aggregate::AggregateRunner;
pub use events::Runner;

use embassy_net::IpEndpoint;
use embassy_net::udp::{BindError, PacketMetadata};
use stats_core::histogram::bucket_count;
use stats_core::{AggregateExporterConfig, AggregateExporterError, ExporterConfig, ExporterError};

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
