//! How an exporter batches and guards the transport ([`ExporterConfig`]),
//! its defaults and builders.

use super::pressure::PressureConfig;
use crate::batcher::AdaptiveConfig;
use crate::circuit_breaker::BreakerConfig;
use crate::wire::EncoderConfig;

/// How the exporter batches and guards the transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct ExporterConfig {
    /// Flush when this many events are staged (default 50), unless
    /// `adaptive` chooses the size.
    pub batch_size: usize,
    /// Batch size by lane utilization (off by default; see `batcher.rs`).
    pub adaptive: Option<AdaptiveConfig>,
    /// Flush when the oldest staged event is this old, in ns (default 100 ms).
    pub max_batch_age_ns: u64,
    /// When the breaker opens and for how long.
    pub breaker: BreakerConfig,
    /// Datagram framing (sender id, maximum size).
    pub encoder: EncoderConfig,
    /// The most the lanes, exporter and buffer may occupy together
    /// (default 10 MiB).
    pub max_memory_bytes: usize,
    /// When lane utilization counts as memory pressure.
    pub pressure: PressureConfig,
}

impl ExporterConfig {
    /// The defaults for `sender_id`: batches of 50 or 100 ms, a breaker
    /// opening after 10 failures for 30 s, 1,472-byte datagrams, 10 MiB.
    pub const fn new(sender_id: u64) -> Self {
        ExporterConfig {
            batch_size: 50,
            adaptive: None,
            max_batch_age_ns: 100_000_000,
            breaker: BreakerConfig::DEFAULT,
            encoder: EncoderConfig::new(sender_id),
            max_memory_bytes: 10 << 20,
            pressure: PressureConfig::DEFAULT,
        }
    }

    /// The same with another batch size.
    pub const fn with_batch_size(self, batch_size: usize) -> Self {
        ExporterConfig { batch_size, ..self }
    }

    /// The same with adaptive batch sizes.
    pub const fn with_adaptive(self, adaptive: AdaptiveConfig) -> Self {
        ExporterConfig {
            adaptive: Some(adaptive),
            ..self
        }
    }

    /// The same with another breaker.
    pub const fn with_breaker(self, breaker: BreakerConfig) -> Self {
        ExporterConfig { breaker, ..self }
    }

    /// The same with another age limit, ns.
    pub const fn with_max_batch_age_ns(self, max_batch_age_ns: u64) -> Self {
        ExporterConfig {
            max_batch_age_ns,
            ..self
        }
    }

    /// The same with another datagram framing.
    pub const fn with_encoder(self, encoder: EncoderConfig) -> Self {
        ExporterConfig { encoder, ..self }
    }

    /// The same with another memory maximum.
    pub const fn with_max_memory_bytes(self, max_memory_bytes: usize) -> Self {
        ExporterConfig {
            max_memory_bytes,
            ..self
        }
    }

    /// The same with other pressure thresholds.
    pub const fn with_pressure(self, pressure: PressureConfig) -> Self {
        ExporterConfig { pressure, ..self }
    }
}
