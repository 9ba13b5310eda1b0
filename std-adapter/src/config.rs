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

use crate::transport::{ADDRESS_FORMS, Address};
use core::fmt;
use serde::Deserialize;
use stats_core::wire::{Codec, MAX_DATAGRAM, MIN_DATAGRAM};
use stats_core::{DropPolicy, Key};
use std::num::NonZeroU16;
use std::ops::RangeInclusive;
use std::path::Path;

/// How recorded values travel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum AggregationMode {
    /// Folded into per-series totals where they are recorded; the totals
    /// since the start go out every interval (the default).
    #[default]
    Source,
    /// Every value is an event through the lanes, with its own timestamp
    /// and priority, and every event goes on the wire.
    Off,
}

impl AggregationMode {
    /// The configuration name: `source` or `off`.
    pub const fn name(self) -> &'static str {
        match self {
            AggregationMode::Source => "source",
            AggregationMode::Off => "off",
        }
    }

    /// The mode called `name`.
    pub fn from_name(name: &str) -> Option<AggregationMode> {
        match name {
            "source" => Some(AggregationMode::Source),
            "off" => Some(AggregationMode::Off),
            _ => None,
        }
    }
}

impl fmt::Display for AggregationMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

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

/// A configuration that cannot be used: which field, what value, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A field's value is out of range or malformed.
    Invalid {
        /// The field (or environment variable) at fault.
        field: &'static str,
        /// The value given.
        value: String,
        /// What it must be.
        expected: String,
    },
    /// The TOML file could not be read or parsed.
    File {
        /// The path.
        path: String,
        /// What went wrong.
        message: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Invalid {
                field,
                value,
                expected,
            } => write!(f, "invalid {field} {value:?}: expected {expected}"),
            ConfigError::File { path, message } => write!(f, "config file {path}: {message}"),
        }
    }
}

impl std::error::Error for ConfigError {}

fn invalid(field: &'static str, value: impl fmt::Display, expected: &str) -> ConfigError {
    ConfigError::Invalid {
        field,
        value: value.to_string(),
        expected: expected.to_string(),
    }
}

/// Parses a drop policy: `by_priority`, `newest`, `oldest` or
/// `sampled:N:P`.
pub fn parse_drop_policy(s: &str) -> Option<DropPolicy> {
    match s {
        "by_priority" => Some(DropPolicy::DropByPriority),
        "newest" => Some(DropPolicy::DropNewest),
        "oldest" => Some(DropPolicy::DropOldest),
        _ => {
            let mut parts = s.strip_prefix("sampled:")?.split(':');
            let keep_one_in = NonZeroU16::new(parts.next()?.parse().ok()?)?;
            let threshold_percent = parts.next()?.parse().ok()?;
            if parts.next().is_some() {
                return None;
            }
            Some(DropPolicy::DropSampled {
                keep_one_in,
                threshold_percent,
            })
        }
    }
}

/// The tags datadog-go takes from the environment, and their variables.
const DATADOG_TAGS: [(&str, &str); 4] = [
    ("env", "DD_ENV"),
    ("service", "DD_SERVICE"),
    ("version", "DD_VERSION"),
    ("dd.internal.entity_id", "DD_ENTITY_ID"),
];

const DATADOG_URLS: &str =
    "udp://host:port, host:port, unix:///path, unixgram:///path or unixstream:///path";

/// A `DD_DOGSTATSD_URL` as an address: datadog-go's `unix://` and
/// `unixgram://` are a datagram socket, `unixstream://` a stream.
fn datadog_url(url: &str) -> Option<String> {
    let address = if let Some(path) = url.strip_prefix("unixstream://") {
        format!("unix://{path}")
    } else if let Some(path) = url.strip_prefix("unix://") {
        format!("unixgram://{path}")
    } else {
        url.to_string()
    };
    Address::parse(&address).map(|_| address)
}

/// `k:v,k:v` as tags, blanks around them dropped.
fn split_tags(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(String::from)
        .collect()
}

const POLICIES: &str = "by_priority, newest, oldest or sampled:N:P";
const AGGREGATIONS: &str = "source or off";

fn aggregation_from_str<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<AggregationMode, D::Error> {
    let s = String::deserialize(d)?;
    AggregationMode::from_name(&s).ok_or_else(|| {
        serde::de::Error::custom(format!("aggregation {s:?}: expected {AGGREGATIONS}"))
    })
}
const CODECS: &str = "native, statsd, dogstatsd or dogstatsd-distribution";

fn codec_from_str<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Codec, D::Error> {
    let s = String::deserialize(d)?;
    Codec::from_name(&s)
        .ok_or_else(|| serde::de::Error::custom(format!("codec {s:?}: expected {CODECS}")))
}

fn policy_from_str<'de, D: serde::Deserializer<'de>>(d: D) -> Result<DropPolicy, D::Error> {
    let s = String::deserialize(d)?;
    parse_drop_policy(&s)
        .ok_or_else(|| serde::de::Error::custom(format!("drop_policy {s:?}: expected {POLICIES}")))
}

impl Config {
    /// The defaults, then `file` (if given), then the environment; validated.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut config = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
                    path: path.display().to_string(),
                    message: e.to_string(),
                })?;
                Config::from_toml(&text).map_err(|e| match e {
                    ConfigError::File { message, .. } => ConfigError::File {
                        path: path.display().to_string(),
                        message,
                    },
                    other => other,
                })?
            }
            None => Config::default(),
        };
        config.apply_env(|name| std::env::var(name).ok())?;
        config.validate()?;
        Ok(config)
    }

    /// Parses TOML (missing fields keep their defaults; unknown fields are
    /// an error), then validates.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::File {
            path: "(toml)".into(),
            message: e.message().to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Overrides fields from `STATS_*` variables, read through `var`; with
    /// a DogStatsD codec, first from the `DD_*` ones datadog-go reads.
    pub fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        fn num<T: std::str::FromStr>(
            var: &impl Fn(&str) -> Option<String>,
            name: &'static str,
            field: &mut T,
        ) -> Result<(), ConfigError> {
            if let Some(v) = var(name) {
                let expected = if std::any::type_name::<T>() == "bool" {
                    "true or false"
                } else {
                    "a number"
                };
                *field = v.trim().parse().map_err(|_| invalid(name, &v, expected))?;
            }
            Ok(())
        }
        let stats_address = var("STATS_ADDRESS");
        if let Some(v) = &stats_address {
            self.address = v.clone();
        }
        if let Some(v) = var("STATS_CODEC") {
            self.codec =
                Codec::from_name(v.trim()).ok_or_else(|| invalid("STATS_CODEC", &v, CODECS))?;
        }
        let stats_tags = var("STATS_TAGS").map(|v| split_tags(&v));
        if let Some(tags) = &stats_tags {
            self.tags = tags.clone();
        }
        num(&var, "STATS_MAX_MEMORY_MB", &mut self.max_memory_mb)?;
        let a = &mut self.aggregation;
        if let Some(v) = var("STATS_AGGREGATION") {
            a.mode = AggregationMode::from_name(v.trim())
                .ok_or_else(|| invalid("STATS_AGGREGATION", &v, AGGREGATIONS))?;
        }
        num(&var, "STATS_INTERVAL_MS", &mut a.interval_ms)?;
        num(&var, "STATS_REFRESH_INTERVAL_S", &mut a.refresh_interval_s)?;
        num(&var, "STATS_MAX_SERIES", &mut a.max_series)?;
        num(&var, "STATS_AGGREGATION_THREADS", &mut a.threads)?;
        let e = &mut self.events;
        num(&var, "STATS_BUFFER_SIZE", &mut e.buffer_size)?;
        num(&var, "STATS_LANE_SETS", &mut e.lane_sets)?;
        num(&var, "STATS_BATCH_SIZE", &mut e.batch_size)?;
        num(&var, "STATS_MAX_BATCH_AGE_MS", &mut e.max_batch_age_ms)?;
        num(&var, "STATS_TICK_MS", &mut e.tick_ms)?;
        num(&var, "STATS_ADAPTIVE_BATCHING", &mut e.adaptive_batching)?;
        if let Some(v) = var("STATS_DROP_POLICY") {
            e.drop_policy = parse_drop_policy(v.trim())
                .ok_or_else(|| invalid("STATS_DROP_POLICY", &v, POLICIES))?;
        }
        num(&var, "STATS_SAMPLE_ONE_IN", &mut e.sample_one_in)?;
        let t = &mut self.transport;
        if let Some(v) = var("STATS_MAX_DATAGRAM") {
            let size = v.trim().parse();
            t.max_datagram = Some(size.map_err(|_| invalid("STATS_MAX_DATAGRAM", &v, "a number"))?);
        }
        num(&var, "STATS_SEND_BUFFER_BYTES", &mut t.send_buffer_bytes)?;
        num(&var, "STATS_RESOLVE_INTERVAL_S", &mut t.resolve_interval_s)?;
        num(&var, "STATS_BREAKER_FAILURES", &mut self.breaker.failures)?;
        num(&var, "STATS_BREAKER_OPEN_MS", &mut self.breaker.open_ms)?;
        num(&var, "STATS_INTERNING", &mut self.interning.enabled)?;
        num(
            &var,
            "STATS_INTERNER_CAPACITY",
            &mut self.interning.capacity,
        )?;
        let h = &mut self.http;
        num(&var, "STATS_HTTP", &mut h.enabled)?;
        if let Some(v) = var("STATS_HTTP_ADDRESS") {
            h.address = v;
        }
        num(&var, "STATS_HTTP_MAX_CONNECTIONS", &mut h.max_connections)?;
        let d = &mut self.dogstatsd;
        num(&var, "STATS_ORIGIN_DETECTION", &mut d.origin_detection)?;
        num(&var, "STATS_TIMESTAMPS", &mut d.timestamps)?;
        num(&var, "STATS_CLIENT_TELEMETRY", &mut d.client_telemetry)?;
        if self.codec.is_dogstatsd() {
            self.apply_datadog_env(&var, stats_address.is_some(), stats_tags.as_deref())?;
        }
        Ok(())
    }

    /// The `DD_*` variables datadog-go reads, for a DogStatsD codec: over
    /// the file, under `STATS_*` (`stats_address_set`, the keys of
    /// `stats_tags`).
    fn apply_datadog_env(
        &mut self,
        var: &impl Fn(&str) -> Option<String>,
        stats_address_set: bool,
        stats_tags: Option<&[String]>,
    ) -> Result<(), ConfigError> {
        let set = |name| var(name).filter(|v| !v.trim().is_empty());
        if !stats_address_set {
            if let Some(url) = set("DD_DOGSTATSD_URL") {
                self.address = datadog_url(url.trim())
                    .ok_or_else(|| invalid("DD_DOGSTATSD_URL", &url, DATADOG_URLS))?;
            } else if let Some(host) = set("DD_AGENT_HOST") {
                let host = host.trim();
                self.address = match host.strip_prefix("unix://") {
                    Some(_) => datadog_url(host)
                        .ok_or_else(|| invalid("DD_AGENT_HOST", host, DATADOG_URLS))?,
                    None => {
                        let port = set("DD_DOGSTATSD_PORT");
                        let port = port.as_deref().map_or("8125", str::trim);
                        if port.parse::<u16>().is_err() {
                            return Err(invalid("DD_DOGSTATSD_PORT", port, "a port number"));
                        }
                        format!("{host}:{port}")
                    }
                };
            }
        }
        let key_of = |tag: &str| tag.split_once(':').map_or(tag, |(k, _)| k).to_string();
        for (key, name) in DATADOG_TAGS {
            let Some(value) = set(name) else { continue };
            let from_stats = stats_tags.is_some_and(|t| t.iter().any(|tag| key_of(tag) == key));
            if from_stats {
                continue;
            }
            self.tags.retain(|tag| key_of(tag) != key);
            self.tags.push(format!("{key}:{}", value.trim()));
        }
        if let Some(v) = set("DD_ORIGIN_DETECTION_ENABLED")
            && var("STATS_ORIGIN_DETECTION").is_none()
        {
            self.dogstatsd.origin_detection = v
                .trim()
                .parse()
                .map_err(|_| invalid("DD_ORIGIN_DETECTION_ENABLED", &v, "true or false"))?;
        }
        Ok(())
    }

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

    /// Checks every field's range. (Whether the whole fits `max_memory_mb`
    /// is checked when the pipeline is built, from the real sizes.)
    pub fn validate(&self) -> Result<(), ConfigError> {
        let check = |ok: bool, field, value: &dyn fmt::Display, expected: &str| {
            if ok {
                Ok(())
            } else {
                Err(invalid(field, value, expected))
            }
        };
        // A value within a range, the error naming the range checked.
        let within = |field, value: u64, range: RangeInclusive<u64>| {
            let expected = format!("{} to {}", range.start(), range.end());
            check(range.contains(&value), field, &value, &expected)
        };
        let Config {
            address,
            codec,
            tags,
            max_memory_mb,
            aggregation: a,
            events: e,
            transport: t,
            breaker,
            interning,
            http,
            dogstatsd,
        } = self;
        check(
            Address::parse(address).is_some(),
            "address",
            address,
            ADDRESS_FORMS,
        )?;
        let pairs = self.tag_pairs();
        let own: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        if let Some(tag) = tags.iter().find(|t| t.is_empty() || t.starts_with(':')) {
            return Err(invalid("tags", tag, "key:value or key, the key not empty"));
        }
        check(
            Key::record_len("", &own).is_ok(),
            "tags",
            &tags.join(","),
            "at most 8, each key and value at most 255 bytes, no key twice",
        )?;
        within("max_memory_mb", *max_memory_mb as u64, 1..=1 << 20)?;
        within("aggregation.interval_ms", a.interval_ms, 10..=3_600_000)?;
        check(
            a.refresh_interval_s.saturating_mul(1_000) >= a.interval_ms,
            "aggregation.refresh_interval_s",
            &a.refresh_interval_s,
            "at least aggregation.interval_ms / 1000",
        )?;
        // With the overflow series, within the key table's 65,536 slots.
        within("aggregation.max_series", a.max_series as u64, 1..=50_000)?;
        within("aggregation.threads", a.threads as u64, 0..=4_096)?;
        check(
            e.buffer_size.is_power_of_two() && (16..=1 << 24).contains(&e.buffer_size),
            "events.buffer_size",
            &e.buffer_size,
            "a power of two, 16 to 16777216",
        )?;
        let sets = crate::lanes::SETS as u64;
        within("events.lane_sets", e.lane_sets as u64, 0..=sets - 1)?;
        let batch = crate::BATCH_CAPACITY as u64;
        within("events.batch_size", e.batch_size as u64, 1..=batch)?;
        check(
            e.max_batch_age_ms > 0,
            "events.max_batch_age_ms",
            &e.max_batch_age_ms,
            "at least 1",
        )?;
        within("events.tick_ms", e.tick_ms, 1..=100)?;
        check(
            e.sample_one_in > 0,
            "events.sample_one_in",
            &e.sample_one_in,
            "at least 1",
        )?;
        let statsd_events = a.mode == AggregationMode::Off && *codec != Codec::Native;
        check(
            e.sample_one_in == 1 || statsd_events,
            "events.sample_one_in",
            &e.sample_one_in,
            "1 unless aggregation.mode is off and the codec is a StatsD one (aggregated values are exact for less than a sample costs)",
        )?;
        if let Some(size) = t.max_datagram {
            let (min, max) = (MIN_DATAGRAM as u64, MAX_DATAGRAM as u64);
            within("transport.max_datagram", size as u64, min..=max)?;
        }
        let buffer = t.send_buffer_bytes as u64;
        within("transport.send_buffer_bytes", buffer, 1..=i32::MAX as u64)?;
        check(
            t.resolve_interval_s > 0,
            "transport.resolve_interval_s",
            &t.resolve_interval_s,
            "at least 1",
        )?;
        check(
            breaker.failures > 0,
            "breaker.failures",
            &breaker.failures,
            "at least 1",
        )?;
        within("interning.capacity", interning.capacity as u64, 1..=65_535)?;
        check(
            http.address.parse::<std::net::SocketAddr>().is_ok(),
            "http.address",
            &http.address,
            "ip:port",
        )?;
        check(
            http.max_connections > 0,
            "http.max_connections",
            &http.max_connections,
            "at least 1",
        )?;
        check(
            !dogstatsd.client_telemetry || *codec != Codec::Native,
            "dogstatsd.client_telemetry",
            &dogstatsd.client_telemetry,
            "false unless the codec is a StatsD one (the collector reads the native format's own counts)",
        )?;
        Ok(())
    }

    /// The same with another destination.
    #[must_use]
    pub fn with_address(mut self, address: impl Into<String>) -> Self {
        self.address = address.into();
        self
    }

    /// The same with another codec.
    #[must_use]
    pub fn with_codec(mut self, codec: Codec) -> Self {
        self.codec = codec;
        self
    }

    /// The same with other constant tags (`key:value` or `key`).
    #[must_use]
    pub fn with_tags<T: Into<String>>(mut self, tags: impl IntoIterator<Item = T>) -> Self {
        self.tags = tags.into_iter().map(Into::into).collect();
        self
    }

    /// The same with another memory maximum.
    #[must_use]
    pub fn with_max_memory_mb(mut self, max_memory_mb: usize) -> Self {
        self.max_memory_mb = max_memory_mb;
        self
    }

    /// The same with another aggregation mode.
    #[must_use]
    pub fn with_aggregation(mut self, mode: AggregationMode) -> Self {
        self.aggregation.mode = mode;
        self
    }

    /// The same with another interval between sends of aggregated totals.
    #[must_use]
    pub fn with_interval_ms(mut self, interval_ms: u64) -> Self {
        self.aggregation.interval_ms = interval_ms;
        self
    }

    /// The same with another full-refresh interval.
    #[must_use]
    pub fn with_refresh_interval_s(mut self, refresh_interval_s: u64) -> Self {
        self.aggregation.refresh_interval_s = refresh_interval_s;
        self
    }

    /// The same with another series limit.
    #[must_use]
    pub fn with_max_series(mut self, max_series: usize) -> Self {
        self.aggregation.max_series = max_series;
        self
    }

    /// The same with another number of threads that aggregate into state
    /// of their own.
    #[must_use]
    pub fn with_aggregation_threads(mut self, threads: usize) -> Self {
        self.aggregation.threads = threads;
        self
    }

    /// The same with another lane set size.
    #[must_use]
    pub fn with_buffer_size(mut self, buffer_size: usize) -> Self {
        self.events.buffer_size = buffer_size;
        self
    }

    /// The same with another number of lane sets owned by one thread each.
    #[must_use]
    pub fn with_lane_sets(mut self, lane_sets: usize) -> Self {
        self.events.lane_sets = lane_sets;
        self
    }

    /// The same with another batch size.
    #[must_use]
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.events.batch_size = batch_size;
        self
    }

    /// The same with another batch age limit.
    #[must_use]
    pub fn with_max_batch_age_ms(mut self, max_batch_age_ms: u64) -> Self {
        self.events.max_batch_age_ms = max_batch_age_ms;
        self
    }

    /// The same with another worker tick.
    #[must_use]
    pub fn with_tick_ms(mut self, tick_ms: u64) -> Self {
        self.events.tick_ms = tick_ms;
        self
    }

    /// The same with batch sizes by lane utilization, or not.
    #[must_use]
    pub fn with_adaptive_batching(mut self, adaptive_batching: bool) -> Self {
        self.events.adaptive_batching = adaptive_batching;
        self
    }

    /// The same with another drop policy.
    #[must_use]
    pub fn with_drop_policy(mut self, drop_policy: DropPolicy) -> Self {
        self.events.drop_policy = drop_policy;
        self
    }

    /// The same sending one timer and histogram value in `n` (events in
    /// StatsD lines).
    #[must_use]
    pub fn with_sample_one_in(mut self, n: u32) -> Self {
        self.events.sample_one_in = n;
        self
    }

    /// The same with another datagram size (`None`: the transport's).
    #[must_use]
    pub fn with_max_datagram(mut self, max_datagram: Option<usize>) -> Self {
        self.transport.max_datagram = max_datagram;
        self
    }

    /// The same with another SO_SNDBUF to ask for.
    #[must_use]
    pub fn with_send_buffer_bytes(mut self, send_buffer_bytes: usize) -> Self {
        self.transport.send_buffer_bytes = send_buffer_bytes;
        self
    }

    /// The same with another interval between lookups (UDP) or connection
    /// attempts (a Unix socket that went away).
    #[must_use]
    pub fn with_resolve_interval_s(mut self, resolve_interval_s: u64) -> Self {
        self.transport.resolve_interval_s = resolve_interval_s;
        self
    }

    /// The same with another breaker.
    #[must_use]
    pub fn with_breaker(mut self, failures: u32, open_ms: u64) -> Self {
        self.breaker = BreakerSettings { failures, open_ms };
        self
    }

    /// The same with the dynamic API on or off.
    #[must_use]
    pub fn with_interning(mut self, enabled: bool) -> Self {
        self.interning.enabled = enabled;
        self
    }

    /// The same with another interner capacity.
    #[must_use]
    pub fn with_interner_capacity(mut self, capacity: usize) -> Self {
        self.interning.capacity = capacity;
        self
    }

    /// The same with the HTTP endpoint on, at `address`.
    #[must_use]
    pub fn with_http(mut self, address: impl Into<String>) -> Self {
        self.http.enabled = true;
        self.http.address = address.into();
        self
    }

    /// The same with the HTTP endpoint off.
    #[must_use]
    pub fn with_http_off(mut self) -> Self {
        self.http.enabled = false;
        self
    }

    /// The same with another limit of concurrent HTTP connections.
    #[must_use]
    pub fn with_http_max_connections(mut self, max_connections: usize) -> Self {
        self.http.max_connections = max_connections;
        self
    }

    /// The same with the container id sent (DogStatsD) or not.
    #[must_use]
    pub fn with_origin_detection(mut self, origin_detection: bool) -> Self {
        self.dogstatsd.origin_detection = origin_detection;
        self
    }

    /// The same with DogStatsD timestamps on aggregated counters and
    /// gauges, or not.
    #[must_use]
    pub fn with_timestamps(mut self, timestamps: bool) -> Self {
        self.dogstatsd.timestamps = timestamps;
        self
    }

    /// The same with datadog-go's client telemetry sent, or not.
    #[must_use]
    pub fn with_client_telemetry(mut self, client_telemetry: bool) -> Self {
        self.dogstatsd.client_telemetry = client_telemetry;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn defaults_are_the_documented_ones_and_valid() {
        let c = Config::default();
        assert_eq!(c.events.buffer_size, 16_384);
        assert_eq!((c.events.batch_size, c.events.max_batch_age_ms), (50, 100));
        assert_eq!(c.events.drop_policy, DropPolicy::DropByPriority);
        assert_eq!(c.address, "localhost:8125");
        assert!(c.interning.enabled);
        assert_eq!((c.max_memory_mb, c.transport.max_datagram), (10, None));
        assert_eq!(c.datagram_size(), 1432);
        assert_eq!(
            c.clone().with_address("unixgram:///run/s").datagram_size(),
            8192
        );
        assert_eq!(
            c.clone().with_address("unix:///run/s").datagram_size(),
            8192
        );
        assert_eq!(c.validate(), Ok(()));
        let set = c
            .with_address("unix:///run/s")
            .with_max_datagram(Some(4096));
        assert_eq!(set.datagram_size(), 4096);
    }

    #[test]
    fn environment_overrides_every_field_it_names() {
        let env: HashMap<&str, &str> = [
            ("STATS_ADDRESS", "10.0.0.1:9000"),
            ("STATS_BUFFER_SIZE", "1024"),
            ("STATS_BATCH_SIZE", "20"),
            ("STATS_DROP_POLICY", "sampled:10:50"),
            ("STATS_INTERNING", "false"),
            ("STATS_HTTP", "true"),
            ("STATS_HTTP_ADDRESS", "127.0.0.1:9200"),
            ("STATS_CODEC", "dogstatsd"),
        ]
        .into();
        let mut c = Config::default();
        c.apply_env(|k| env.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(c.address, "10.0.0.1:9000");
        assert_eq!((c.events.buffer_size, c.events.batch_size), (1024, 20));
        assert!(matches!(
            c.events.drop_policy,
            DropPolicy::DropSampled {
                threshold_percent: 50,
                ..
            }
        ));
        assert!(!c.interning.enabled);
        assert!(c.http.enabled);
        assert_eq!(c.http.address, "127.0.0.1:9200");
        assert_eq!(c.codec, Codec::Statsd(stats_core::wire::Dialect::DogStatsd));
        assert_eq!(c.validate(), Ok(()));
        let err = c
            .apply_env(|k| (k == "STATS_CODEC").then(|| "json".into()))
            .unwrap_err();
        assert!(err.to_string().contains("STATS_CODEC \"json\""), "{err}");
    }

    #[test]
    fn bad_values_name_the_field_and_the_value() {
        let mut c = Config::default();
        let err = c
            .apply_env(|k| (k == "STATS_BATCH_SIZE").then(|| "fifty".into()))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid STATS_BATCH_SIZE \"fifty\": expected a number"
        );
        let cases = [
            (
                Config::default().with_buffer_size(1000),
                "events.buffer_size",
                "1000",
            ),
            (
                Config::default().with_batch_size(0),
                "events.batch_size",
                "0",
            ),
            (Config::default().with_tick_ms(0), "events.tick_ms", "0"),
            (
                Config::default().with_breaker(0, 1_000),
                "breaker.failures",
                "0",
            ),
            (
                Config::default().with_address("localhost"),
                "address",
                "localhost",
            ),
            (
                Config::default().with_lane_sets(65),
                "events.lane_sets",
                "65",
            ),
            (
                Config::default().with_interner_capacity(70_000),
                "interning.capacity",
                "70000",
            ),
            (
                Config::default().with_http("localhost:80"),
                "http.address",
                "localhost:80",
            ),
            (
                Config::default().with_max_datagram(Some(100)),
                "transport.max_datagram",
                "100",
            ),
            (
                Config::default().with_interval_ms(5),
                "aggregation.interval_ms",
                "5",
            ),
        ];
        for (config, field, value) in cases {
            match config.validate() {
                Err(ConfigError::Invalid {
                    field: f, value: v, ..
                }) => {
                    assert_eq!((f, v.as_str()), (field, value));
                }
                other => panic!("{field}: {other:?}"),
            }
        }
    }

    /// Every variable and the field it sets, as the README's table names
    /// them.
    const FIELDS: [(&str, &str); 30] = [
        ("STATS_ADDRESS", "address"),
        ("STATS_CODEC", "codec"),
        ("STATS_TAGS", "tags"),
        ("STATS_MAX_MEMORY_MB", "max_memory_mb"),
        ("STATS_AGGREGATION", "aggregation.mode"),
        ("STATS_INTERVAL_MS", "aggregation.interval_ms"),
        ("STATS_REFRESH_INTERVAL_S", "aggregation.refresh_interval_s"),
        ("STATS_MAX_SERIES", "aggregation.max_series"),
        ("STATS_AGGREGATION_THREADS", "aggregation.threads"),
        ("STATS_BUFFER_SIZE", "events.buffer_size"),
        ("STATS_LANE_SETS", "events.lane_sets"),
        ("STATS_BATCH_SIZE", "events.batch_size"),
        ("STATS_MAX_BATCH_AGE_MS", "events.max_batch_age_ms"),
        ("STATS_TICK_MS", "events.tick_ms"),
        ("STATS_ADAPTIVE_BATCHING", "events.adaptive_batching"),
        ("STATS_DROP_POLICY", "events.drop_policy"),
        ("STATS_SAMPLE_ONE_IN", "events.sample_one_in"),
        ("STATS_MAX_DATAGRAM", "transport.max_datagram"),
        ("STATS_SEND_BUFFER_BYTES", "transport.send_buffer_bytes"),
        ("STATS_RESOLVE_INTERVAL_S", "transport.resolve_interval_s"),
        ("STATS_BREAKER_FAILURES", "breaker.failures"),
        ("STATS_BREAKER_OPEN_MS", "breaker.open_ms"),
        ("STATS_INTERNING", "interning.enabled"),
        ("STATS_INTERNER_CAPACITY", "interning.capacity"),
        ("STATS_HTTP", "http.enabled"),
        ("STATS_HTTP_ADDRESS", "http.address"),
        ("STATS_HTTP_MAX_CONNECTIONS", "http.max_connections"),
        ("STATS_ORIGIN_DETECTION", "dogstatsd.origin_detection"),
        ("STATS_TIMESTAMPS", "dogstatsd.timestamps"),
        ("STATS_CLIENT_TELEMETRY", "dogstatsd.client_telemetry"),
    ];

    #[test]
    fn the_readme_table_lists_every_variable() {
        let readme = include_str!("../../README.md");
        let seen = std::cell::RefCell::new(Vec::new());
        let mut c = Config::default();
        let _ = c.apply_env(|name| {
            seen.borrow_mut().push(name.to_string());
            None
        });
        let mut seen = seen.into_inner();
        seen.sort();
        let mut listed: Vec<String> = FIELDS.iter().map(|(v, _)| v.to_string()).collect();
        listed.sort();
        assert_eq!(seen, listed, "every variable read is listed, once");
        for (name, field) in FIELDS {
            let row = format!("| `{field}` | `{name}` |");
            assert!(readme.contains(&row), "README lacks the row {row}");
        }
    }

    #[test]
    fn the_readme_s_file_example_reads() {
        let readme = include_str!("../../README.md");
        let at = readme.find("A file sets what it names:").unwrap();
        let block = &readme[at..];
        let start = block.find("```toml\n").unwrap() + "```toml\n".len();
        let end = start + block[start..].find("```").unwrap();
        let c = Config::from_toml(&block[start..end]).unwrap();
        assert_eq!(c.address, "unixgram:///var/run/datadog/dsd.socket");
        assert_eq!(c.datagram_size(), 8_192);
        assert_eq!(c.events.drop_policy, DropPolicy::DropOldest);
        assert!(c.http.enabled);
    }

    #[test]
    fn toml_groups_the_settings_as_the_table_names_them() {
        let c = Config::from_toml(
            "address = \"127.0.0.1:8125\"\ncodec = \"dogstatsd\"\ntags = [\"a:1\"]\n\
             [aggregation]\nmode = \"off\"\ninterval_ms = 500\n\
             [events]\nbatch_size = 100\ndrop_policy = \"oldest\"\nsample_one_in = 4\n\
             [transport]\nmax_datagram = 8192\n[breaker]\nfailures = 3\n\
             [interning]\nenabled = false\n[http]\nenabled = true\nmax_connections = 2\n\
             [dogstatsd]\norigin_detection = false\n",
        )
        .unwrap();
        assert_eq!(c.aggregation.mode, AggregationMode::Off);
        assert_eq!(c.aggregation.interval_ms, 500);
        assert_eq!(c.events.sample_one_in, 4);
        assert_eq!(c.transport.max_datagram, Some(8192));
        assert_eq!(
            c.breaker,
            BreakerSettings {
                failures: 3,
                open_ms: 30_000
            }
        );
        assert!(!c.interning.enabled && c.http.enabled && !c.dogstatsd.origin_detection);
        assert_eq!(c.http.max_connections, 2);
        assert_eq!(c.tags, ["a:1"]);
        // A field at the wrong level is unknown there.
        let err = Config::from_toml("batch_size = 100").unwrap_err();
        assert!(
            err.to_string().contains("unknown field `batch_size`"),
            "{err}"
        );
        let err = Config::from_toml("[events]\nbatch_sise = 3").unwrap_err();
        assert!(err.to_string().contains("batch_sise"), "{err}");
    }

    #[test]
    fn toml_sets_fields_and_rejects_unknown_ones() {
        let c = Config::from_toml(
            "address = \"127.0.0.1:8125\"\n[events]\nbatch_size = 100\ndrop_policy = \"oldest\"\n",
        )
        .unwrap();
        assert_eq!(
            (c.events.batch_size, c.events.drop_policy),
            (100, DropPolicy::DropOldest)
        );
        assert_eq!(c.events.buffer_size, 16_384);
        assert!(matches!(
            Config::from_toml("[events]\nbatch_sise = 3"),
            Err(ConfigError::File { .. })
        ));
        assert!(matches!(
            Config::from_toml("[events]\nbatch_size = 500"),
            Err(ConfigError::Invalid {
                field: "events.batch_size",
                ..
            })
        ));
        assert_eq!(
            Config::from_toml("codec = \"statsd\"").unwrap().codec,
            Codec::Statsd(stats_core::wire::Dialect::Etsy)
        );
        assert!(
            Config::from_toml("[events]\ndrop_policy = \"sometimes\"")
                .unwrap_err()
                .to_string()
                .contains("sometimes")
        );
    }

    fn with_env(config: Config, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env: HashMap<&str, &str> = env.iter().copied().collect();
        let mut c = config;
        c.apply_env(|k| env.get(k).map(|v| v.to_string()))?;
        c.validate()?;
        Ok(c)
    }

    #[test]
    fn every_field_has_a_builder() {
        let c = Config::default()
            .with_adaptive_batching(true)
            .with_send_buffer_bytes(1 << 16)
            .with_resolve_interval_s(5)
            .with_http("127.0.0.1:0")
            .with_http_max_connections(2)
            .with_http_off();
        assert!(c.events.adaptive_batching && !c.http.enabled);
        assert_eq!(
            (
                c.transport.send_buffer_bytes,
                c.transport.resolve_interval_s,
                c.http.max_connections
            ),
            (1 << 16, 5, 2)
        );
        assert_eq!(c.http.address, "127.0.0.1:0");
    }

    #[test]
    fn constant_tags_come_from_the_file_or_stats_tags_and_are_checked() {
        let c = Config::from_toml("tags = [\"team:core\", \"canary\"]").unwrap();
        assert_eq!(
            c.tag_pairs(),
            [
                ("team".into(), "core".into()),
                ("canary".into(), String::new())
            ]
        );
        let c = with_env(c, &[("STATS_TAGS", " a:1 , b:2,,")]).unwrap();
        assert_eq!(c.tags, ["a:1", "b:2"]);
        for bad in ["a:1,a:2", ":v", "t1,t2,t3,t4,t5,t6,t7,t8,t9"] {
            let err = with_env(Config::default(), &[("STATS_TAGS", bad)]).unwrap_err();
            assert!(
                matches!(err, ConfigError::Invalid { field: "tags", .. }),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn datadog_variables_apply_to_a_dogstatsd_codec_only() {
        let dd = [
            ("DD_AGENT_HOST", "agent.local"),
            ("DD_DOGSTATSD_PORT", "8126"),
            ("DD_ENV", "prod"),
            ("DD_SERVICE", "checkout"),
            ("DD_VERSION", "1.2.3"),
            ("DD_ENTITY_ID", "pod-uid-1"),
        ];
        let native = with_env(Config::default(), &dd).unwrap();
        assert_eq!(native.address, "localhost:8125");
        assert!(native.tags.is_empty());
        for codec in ["dogstatsd", "dogstatsd-distribution"] {
            let mut env = dd.to_vec();
            env.push(("STATS_CODEC", codec));
            let c = with_env(Config::default(), &env).unwrap();
            assert_eq!(c.address, "agent.local:8126");
            assert_eq!(
                c.tags,
                [
                    "env:prod",
                    "service:checkout",
                    "version:1.2.3",
                    "dd.internal.entity_id:pod-uid-1"
                ]
            );
        }
        let statsd = Config::default().with_codec(Codec::Statsd(stats_core::wire::Dialect::Etsy));
        assert_eq!(with_env(statsd, &dd).unwrap().address, "localhost:8125");
    }

    #[test]
    fn datadog_addresses_take_each_form_datadog_go_takes() {
        let dog = Config::default().with_codec(Codec::Statsd(stats_core::wire::Dialect::DogStatsd));
        let cases = [
            (vec![("DD_AGENT_HOST", "10.1.2.3")], "10.1.2.3:8125"),
            (
                vec![("DD_AGENT_HOST", "unix:///var/run/dd.sock")],
                "unixgram:///var/run/dd.sock",
            ),
            (vec![("DD_DOGSTATSD_URL", "udp://h:9125")], "udp://h:9125"),
            (
                vec![("DD_DOGSTATSD_URL", "unix:///run/d.sock")],
                "unixgram:///run/d.sock",
            ),
            (
                vec![("DD_DOGSTATSD_URL", "unixgram:///run/d.sock")],
                "unixgram:///run/d.sock",
            ),
            (
                vec![("DD_DOGSTATSD_URL", "unixstream:///run/d.sock")],
                "unix:///run/d.sock",
            ),
            // The URL wins over host and port, as in datadog-go.
            (
                vec![("DD_DOGSTATSD_URL", "udp://u:1"), ("DD_AGENT_HOST", "h")],
                "udp://u:1",
            ),
        ];
        for (env, address) in cases {
            assert_eq!(
                with_env(dog.clone(), &env).unwrap().address,
                address,
                "{env:?}"
            );
        }
        let err = with_env(dog.clone(), &[("DD_DOGSTATSD_URL", "tcp://h:1")]).unwrap_err();
        assert!(
            err.to_string().contains("DD_DOGSTATSD_URL \"tcp://h:1\""),
            "{err}"
        );
        let err = with_env(dog, &[("DD_AGENT_HOST", "h"), ("DD_DOGSTATSD_PORT", "x")]).unwrap_err();
        assert!(err.to_string().contains("DD_DOGSTATSD_PORT \"x\""), "{err}");
    }

    #[test]
    fn stats_variables_win_over_datadog_ones_which_win_over_the_file() {
        let file = Config::from_toml(
            "codec = \"dogstatsd\"\naddress = \"file:1\"\ntags = [\"env:file\", \"team:a\"]",
        )
        .unwrap();
        let dd = [
            ("DD_AGENT_HOST", "dd"),
            ("DD_ENV", "dd-env"),
            ("DD_SERVICE", "dd-svc"),
            ("DD_ORIGIN_DETECTION_ENABLED", "false"),
        ];
        let c = with_env(file.clone(), &dd).unwrap();
        assert_eq!(c.address, "dd:8125");
        assert_eq!(c.tags, ["team:a", "env:dd-env", "service:dd-svc"]);
        assert!(!c.dogstatsd.origin_detection);
        let mut both = dd.to_vec();
        both.extend([
            ("STATS_ADDRESS", "stats:2"),
            ("STATS_TAGS", "env:stats"),
            ("STATS_ORIGIN_DETECTION", "true"),
        ]);
        let c = with_env(file, &both).unwrap();
        assert_eq!(c.address, "stats:2");
        assert_eq!(c.tags, ["env:stats", "service:dd-svc"]);
        assert!(c.dogstatsd.origin_detection);
    }

    /// The ranges the errors name are the limits checked, which come from
    /// the core and the lanes (written once, there).
    #[test]
    fn the_ranges_named_in_errors_are_the_limits_checked() {
        use stats_core::wire::{MAX_DATAGRAM, MIN_DATAGRAM};
        let max_sets = crate::lanes::SETS - 1;
        let cases = [
            (
                Config::default().with_batch_size(crate::BATCH_CAPACITY),
                Config::default().with_batch_size(crate::BATCH_CAPACITY + 1),
                format!("1 to {}", crate::BATCH_CAPACITY),
            ),
            (
                Config::default().with_lane_sets(max_sets),
                Config::default().with_lane_sets(max_sets + 1),
                format!("0 to {max_sets}"),
            ),
            (
                Config::default().with_max_datagram(Some(MIN_DATAGRAM)),
                Config::default().with_max_datagram(Some(MIN_DATAGRAM - 1)),
                format!("{MIN_DATAGRAM} to {MAX_DATAGRAM}"),
            ),
            (
                Config::default().with_max_datagram(Some(MAX_DATAGRAM)),
                Config::default().with_max_datagram(Some(MAX_DATAGRAM + 1)),
                format!("{MIN_DATAGRAM} to {MAX_DATAGRAM}"),
            ),
        ];
        for (edge, past, range) in cases {
            assert_eq!(edge.validate(), Ok(()), "{range}");
            match past.validate() {
                Err(ConfigError::Invalid { expected, .. }) => assert_eq!(expected, range),
                other => panic!("{range}: {other:?}"),
            }
        }
    }
}
