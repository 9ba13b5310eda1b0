//! Configuration: defaults, environment variables, an optional TOML file,
//! and validation that names the field and the bad value.
//!
//! Precedence, lowest first: [`Config::default`], the TOML file (if any),
//! then `STATS_*` environment variables. Every field has one variable.
//!
//! The settings are grouped as the file groups them: the destination and
//! format at the top, then `[aggregation]`, `[events]`, `[transport]`,
//! `[breaker]`, `[interning]`, `[http]` and `[dogstatsd]`. Errors name a
//! field by its path (`events.buffer_size`) or its variable.
//!
//! The "Configuration" table of the repository README lists every field, its
//! variable, default and meaning (a test keeps the two in step).

mod builders;
mod env;
mod error;
mod mode;
mod parse;
#[cfg(test)]
mod tests;
mod validate;

pub use error::ConfigError;
pub use mode::AggregationMode;
pub use parse::parse_drop_policy;
use parse::{aggregation_from_str, codec_from_str, policy_from_str};

use crate::transport::Address;
use serde::Deserialize;
use stats_core::DropPolicy;
use stats_core::wire::Codec;

/// The pipeline's settings. Build one with [`Config::default`] and the
/// `with_*` methods, or [`Config::load`] (file and environment).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// Where datagrams go: `host:port` or `udp://host:port` (UDP, the
    /// host looked up again every `transport.resolve_interval_s`),
    /// `unixgram:///path` (a Unix datagram socket) or `unix:///path` (a
    /// Unix stream socket, length-prefixed frames) ([`Address`]).
    pub address: String,
    /// What datagrams carry: `native` (this pipeline's format), `statsd`,
    /// `dogstatsd` or `dogstatsd-distribution` (lines for a StatsD agent).
    #[serde(deserialize_with = "codec_from_str")]
    pub codec: Codec,
    /// Tags every series carries, `key:value` (or a bare `key`); a series'
    /// own tag with the same key wins. They count toward the 8 tags a
    /// series may have.
    pub tags: Vec<String>,
    /// Memory maximum, MiB.
    pub max_memory_mb: usize,
    /// How values are aggregated where they are recorded.
    pub aggregation: AggregationSettings,
    /// The event pipeline (`aggregation.mode = "off"`).
    pub events: EventSettings,
    /// Datagrams and the socket.
    pub transport: TransportSettings,
    /// When sending stops for a while.
    pub breaker: BreakerSettings,
    /// The dynamic (string) API.
    pub interning: InterningSettings,
    /// The `/health` and `/metrics` endpoint.
    pub http: HttpSettings,
    /// What only the DogStatsD codecs send.
    pub dogstatsd: DogStatsdSettings,
}

/// `[aggregation]`: values folded into per-series totals where they are
/// recorded.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct AggregationSettings {
    /// `source` (values aggregated where recorded, cumulative totals sent
    /// each interval) or `off` (every value an event).
    #[serde(deserialize_with = "aggregation_from_str")]
    pub mode: AggregationMode,
    /// How often aggregated totals are sent, ms (10 to 3,600,000).
    pub interval_ms: u64,
    /// Every series is sent at least this often, s (at least the interval).
    pub refresh_interval_s: u64,
    /// Series aggregated at most (1 to 50,000); further ones fold into an
    /// overflow series per name and kind.
    pub max_series: usize,
    /// Threads that aggregate into state of their own (0 to 4,096); more
    /// share one.
    pub threads: usize,
}

/// `[events]`: the lanes, batches and worker of `aggregation.mode = "off"`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct EventSettings {
    /// Events each lane set holds (power of two, at least 16).
    pub buffer_size: usize,
    /// Lane sets owned by one recording thread each, pushed to with no
    /// locked instruction (0 to 64); more threads share one set.
    pub lane_sets: usize,
    /// Events per batch (1 to 128).
    pub batch_size: usize,
    /// Batch age limit, ms.
    pub max_batch_age_ms: u64,
    /// How often the worker wakes, ms (1 to 100): the resolution of event
    /// timestamps and the floor of its CPU use.
    pub tick_ms: u64,
    /// Batch size by lane utilization.
    pub adaptive_batching: bool,
    /// What a full lane does.
    #[serde(deserialize_with = "policy_from_str")]
    pub drop_policy: DropPolicy,
    /// Timers and histograms in StatsD lines: one value in N is sent, with
    /// the rate `|@1/N`, the others counted (`Rejected::sampled_out`). 1
    /// sends all; above 1 needs a StatsD codec.
    pub sample_one_in: u32,
}

/// `[transport]`: datagrams and the socket.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct TransportSettings {
    /// Bytes per datagram (512 to 65507); unset, the transport's own:
    /// 1,432 over UDP, 8,192 on a Unix socket ([`Config::datagram_size`]).
    pub max_datagram: Option<usize>,
    /// SO_SNDBUF to ask for, bytes.
    pub send_buffer_bytes: usize,
    /// How often to look the destination up again (UDP) or try to connect
    /// again (a Unix socket that went away), s (at least 1).
    pub resolve_interval_s: u64,
}

/// `[breaker]`: the circuit breaker in front of the socket.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct BreakerSettings {
    /// Send failures in a row that open the breaker (at least 1; failures
    /// among successes count too, see `stats_core::circuit_breaker`).
    pub failures: u32,
    /// Breaker open time, ms.
    pub open_ms: u64,
}

/// `[interning]`: the dynamic (string) API.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct InterningSettings {
    /// Whether the dynamic API is on.
    pub enabled: bool,
    /// Dynamic names kept (1 to 65535).
    pub capacity: usize,
}

/// `[http]`: `/health` and `/metrics`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct HttpSettings {
    /// Whether to serve them.
    pub enabled: bool,
    /// Where, `ip:port`.
    pub address: String,
    /// Concurrent connections (at least 1).
    pub max_connections: usize,
}

/// `[dogstatsd]`: what only the DogStatsD codecs send.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct DogStatsdSettings {
    /// The container id (`|c:`), read from `/proc/self/cgroup` (or
    /// `/proc/self/mountinfo`) at start.
    pub origin_detection: bool,
    /// Aggregating at the source: counter and gauge lines carry the time of
    /// their totals (`|T`, DogStatsD 1.3).
    pub timestamps: bool,
    /// Every 10 s, the pipeline's own counts under the names datadog-go
    /// sends (`datadog.dogstatsd.client.*`, tagged `client:rust`), to the
    /// same destination (any StatsD codec).
    pub client_telemetry: bool,
}

impl Default for Config {
    /// The defaults. Those the core has are the core's: batching, the
    /// breaker and the memory budget (`ExporterConfig::new`), the codec
    /// (`EncoderConfig::new`) and the datagram size (by transport).
    fn default() -> Self {
        const MS: u64 = 1_000_000;
        let events = stats_core::ExporterConfig::new(0);
        Config {
            address: "localhost:8125".into(),
            codec: events.encoder.codec,
            tags: Vec::new(),
            max_memory_mb: events.max_memory_bytes >> 20,
            aggregation: AggregationSettings::default(),
            events: EventSettings::default(),
            transport: TransportSettings::default(),
            breaker: BreakerSettings {
                failures: events.breaker.failure_threshold,
                open_ms: events.breaker.open_for_ns / MS,
            },
            interning: InterningSettings::default(),
            http: HttpSettings::default(),
            dogstatsd: DogStatsdSettings::default(),
        }
    }
}

impl Default for AggregationSettings {
    /// The interval and refresh are the core's (`AggregateExporterConfig::new`).
    fn default() -> Self {
        const MS: u64 = 1_000_000;
        let totals = stats_core::AggregateExporterConfig::new(0, 0);
        AggregationSettings {
            mode: AggregationMode::Source,
            interval_ms: totals.interval_ns / MS,
            refresh_interval_s: totals.refresh_ns / (1_000 * MS),
            max_series: 10_000,
            threads: 64,
        }
    }
}

impl Default for EventSettings {
    /// Batching is the core's (`ExporterConfig::new`), as is the drop
    /// policy.
    fn default() -> Self {
        const MS: u64 = 1_000_000;
        let events = stats_core::ExporterConfig::new(0);
        EventSettings {
            buffer_size: 16_384,
            lane_sets: 8,
            batch_size: events.batch_size,
            max_batch_age_ms: events.max_batch_age_ns / MS,
            tick_ms: 1,
            adaptive_batching: false,
            drop_policy: DropPolicy::default(),
            sample_one_in: 1,
        }
    }
}

impl Default for TransportSettings {
    fn default() -> Self {
        TransportSettings {
            max_datagram: None,
            send_buffer_bytes: 4 << 20,
            resolve_interval_s: 30,
        }
    }
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Config::default().breaker
    }
}

impl Default for InterningSettings {
    fn default() -> Self {
        InterningSettings {
            enabled: true,
            capacity: 10_000,
        }
    }
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            enabled: false,
            address: "127.0.0.1:9102".into(),
            max_connections: 8,
        }
    }
}

impl Default for DogStatsdSettings {
    fn default() -> Self {
        DogStatsdSettings {
            origin_detection: true,
            timestamps: false,
            client_telemetry: false,
        }
    }
}

impl Config {
    /// The constant tags as (key, value) pairs (a bare key has an empty
    /// value).
    pub fn tag_pairs(&self) -> Vec<(String, String)> {
        self.tags
            .iter()
            .map(|tag| match tag.split_once(':') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (tag.clone(), String::new()),
            })
            .collect()
    }

    /// Bytes per datagram: `transport.max_datagram`, or the default of the
    /// transport `address` names ([`Address::default_max_datagram`]).
    pub fn datagram_size(&self) -> usize {
        self.transport.max_datagram.unwrap_or_else(|| {
            Address::parse(&self.address).map_or(stats_core::wire::DEFAULT_MAX_DATAGRAM, |a| {
                a.default_max_datagram()
            })
        })
    }
}
