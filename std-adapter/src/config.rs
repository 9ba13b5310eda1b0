//! Configuration: defaults, environment variables, an optional TOML file,
//! and validation that names the field and the bad value.
//!
//! Precedence, lowest first: [`Config::default`], the TOML file (if any),
//! then `STATS_*` environment variables. Every field has one variable.
//!
//! The "Configuration" table of the repository README lists every field, its
//! variable, default and meaning (a test keeps the two in step).

use crate::transport::{ADDRESS_FORMS, Address};
use core::fmt;
use serde::Deserialize;
use stats_core::wire::Codec;
use stats_core::{DropPolicy, Key};
use std::num::NonZeroU16;
use std::path::Path;

/// How recorded values travel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Aggregation {
    /// Folded into per-series totals where they are recorded; the totals
    /// since the start go out every interval (the default).
    #[default]
    Source,
    /// Every value is an event through the lanes, with its own timestamp
    /// and priority, and every event goes on the wire.
    Off,
}

impl Aggregation {
    /// The configuration name: `source` or `off`.
    pub const fn name(self) -> &'static str {
        match self {
            Aggregation::Source => "source",
            Aggregation::Off => "off",
        }
    }

    /// The mode called `name`.
    pub fn from_name(name: &str) -> Option<Aggregation> {
        match name {
            "source" => Some(Aggregation::Source),
            "off" => Some(Aggregation::Off),
            _ => None,
        }
    }
}

impl fmt::Display for Aggregation {
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
    /// host looked up again every `resolve_interval_s`),
    /// `unixgram:///path` (a Unix datagram socket) or `unix:///path` (a
    /// Unix stream socket, length-prefixed frames) ([`Address`]).
    pub address: String,
    /// Tags every series carries, `key:value` (or a bare `key`); a series'
    /// own tag with the same key wins. They count toward the 8 tags a
    /// series may have.
    pub tags: Vec<String>,
    /// DogStatsD codecs: send the container id (`|c:`), read from
    /// `/proc/self/cgroup` (or `/proc/self/mountinfo`) at start.
    pub origin_detection: bool,
    /// DogStatsD codecs, aggregating at the source: counter and gauge
    /// lines carry the time of their totals (`|T`, DogStatsD 1.3).
    pub timestamps: bool,
    /// With a StatsD codec: every 10 s, the pipeline's own counts under the
    /// names datadog-go sends (`datadog.dogstatsd.client.*`, tagged
    /// `client:rust`), to the same destination.
    pub client_telemetry: bool,
    /// `source` (values aggregated where recorded, cumulative totals sent
    /// each interval) or `off` (every value an event).
    #[serde(deserialize_with = "aggregation_from_str")]
    pub aggregation: Aggregation,
    /// How often aggregated totals are sent, ms (10 to 3,600,000).
    pub interval_ms: u64,
    /// Every series is sent at least this often, s (at least the interval).
    pub refresh_interval_s: u64,
    /// Series aggregated at most (1 to 50,000); further ones fold into an
    /// overflow series per name and kind.
    pub max_series: usize,
    /// Threads that aggregate into state of their own (0 to 4,096); more
    /// share one.
    pub aggregation_threads: usize,
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
    /// Timers and histograms as events in StatsD lines: one value in N is
    /// sent, with the rate `|@1/N`, the others counted
    /// (`Rejected::sampled_out`). 1 sends all; above 1 needs
    /// `aggregation = off` and a StatsD codec.
    pub sample_one_in: u32,
    /// Bytes per datagram (512 to 65507); unset, the transport's own:
    /// 1,432 over UDP, 8,192 on a Unix socket ([`Config::datagram_size`]).
    pub max_datagram: Option<usize>,
    /// What datagrams carry: `native` (this pipeline's format), `statsd`,
    /// `dogstatsd` or `dogstatsd-distribution` (lines for a StatsD agent).
    #[serde(deserialize_with = "codec_from_str")]
    pub codec: Codec,
    /// Memory maximum, MiB.
    pub max_memory_mb: usize,
    /// Whether the dynamic (string) API is on.
    pub interning: bool,
    /// Dynamic names kept (1 to 65535).
    pub interner_capacity: usize,
    /// Send failures in a row that open the breaker (at least 1; failures
    /// among successes count too, see `stats_core::circuit_breaker`).
    pub breaker_failures: u32,
    /// Breaker open time, ms.
    pub breaker_open_ms: u64,
    /// SO_SNDBUF to ask for, bytes.
    pub send_buffer_bytes: usize,
    /// How often to look the destination up again (UDP) or try to connect
    /// again (a Unix socket that went away), s (at least 1).
    pub resolve_interval_s: u64,
    /// Whether to serve `/health` and `/metrics`.
    pub http: bool,
    /// Where to serve them, `ip:port`.
    pub http_address: String,
    /// Concurrent HTTP connections (at least 1).
    pub http_max_connections: usize,
}

impl Default for Config {
    /// The defaults. Those the core has are the core's: batching, the
    /// breaker and the memory budget (`ExporterConfig::new`), the interval
    /// and refresh (`AggregateExporterConfig::new`), the codec and the
    /// datagram size (`EncoderConfig::new`, by transport).
    fn default() -> Self {
        const MS: u64 = 1_000_000;
        let events = stats_core::ExporterConfig::new(0);
        let totals = stats_core::AggregateExporterConfig::new(0, 0);
        Config {
            address: "localhost:8125".into(),
            tags: Vec::new(),
            origin_detection: true,
            timestamps: false,
            client_telemetry: false,
            aggregation: Aggregation::Source,
            interval_ms: totals.interval_ns / MS,
            refresh_interval_s: totals.refresh_ns / (1_000 * MS),
            max_series: 10_000,
            aggregation_threads: 64,
            buffer_size: 16_384,
            lane_sets: 8,
            batch_size: events.batch_size,
            max_batch_age_ms: events.max_batch_age_ns / MS,
            tick_ms: 1,
            adaptive_batching: false,
            drop_policy: DropPolicy::default(),
            max_datagram: None,
            sample_one_in: 1,
            codec: events.encoder.codec,
            max_memory_mb: events.max_memory_bytes >> 20,
            interning: true,
            interner_capacity: 10_000,
            breaker_failures: events.breaker.failure_threshold,
            breaker_open_ms: events.breaker.open_for_ns / MS,
            send_buffer_bytes: 4 << 20,
            resolve_interval_s: 30,
            http: false,
            http_address: "127.0.0.1:9102".into(),
            http_max_connections: 8,
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
        expected: &'static str,
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

fn invalid(field: &'static str, value: impl fmt::Display, expected: &'static str) -> ConfigError {
    ConfigError::Invalid {
        field,
        value: value.to_string(),
        expected,
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

fn aggregation_from_str<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Aggregation, D::Error> {
    let s = String::deserialize(d)?;
    Aggregation::from_name(&s).ok_or_else(|| {
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

    /// Overrides fields from `STATS_*` variables, read through `var`.
    pub fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        fn num<T: std::str::FromStr>(
            var: &impl Fn(&str) -> Option<String>,
            name: &'static str,
            field: &mut T,
            expected: &'static str,
        ) -> Result<(), ConfigError> {
            if let Some(v) = var(name) {
                *field = v.trim().parse().map_err(|_| invalid(name, &v, expected))?;
            }
            Ok(())
        }
        let stats_address = var("STATS_ADDRESS");
        if let Some(v) = &stats_address {
            self.address = v.clone();
        }
        num(
            &var,
            "STATS_CLIENT_TELEMETRY",
            &mut self.client_telemetry,
            "true or false",
        )?;
        num(
            &var,
            "STATS_TIMESTAMPS",
            &mut self.timestamps,
            "true or false",
        )?;
        let stats_tags = var("STATS_TAGS").map(|v| split_tags(&v));
        if let Some(tags) = &stats_tags {
            self.tags = tags.clone();
        }
        num(
            &var,
            "STATS_ORIGIN_DETECTION",
            &mut self.origin_detection,
            "true or false",
        )?;
        if let Some(v) = var("STATS_AGGREGATION") {
            self.aggregation = Aggregation::from_name(v.trim())
                .ok_or_else(|| invalid("STATS_AGGREGATION", &v, AGGREGATIONS))?;
        }
        num(&var, "STATS_INTERVAL_MS", &mut self.interval_ms, "a number")?;
        num(
            &var,
            "STATS_REFRESH_INTERVAL_S",
            &mut self.refresh_interval_s,
            "a number",
        )?;
        num(&var, "STATS_MAX_SERIES", &mut self.max_series, "a number")?;
        num(
            &var,
            "STATS_AGGREGATION_THREADS",
            &mut self.aggregation_threads,
            "a number",
        )?;
        num(&var, "STATS_BUFFER_SIZE", &mut self.buffer_size, "a number")?;
        num(&var, "STATS_LANE_SETS", &mut self.lane_sets, "a number")?;
        num(&var, "STATS_BATCH_SIZE", &mut self.batch_size, "a number")?;
        num(
            &var,
            "STATS_MAX_BATCH_AGE_MS",
            &mut self.max_batch_age_ms,
            "a number",
        )?;
        num(&var, "STATS_TICK_MS", &mut self.tick_ms, "a number")?;
        num(
            &var,
            "STATS_ADAPTIVE_BATCHING",
            &mut self.adaptive_batching,
            "true or false",
        )?;
        if let Some(v) = var("STATS_DROP_POLICY") {
            self.drop_policy = parse_drop_policy(v.trim())
                .ok_or_else(|| invalid("STATS_DROP_POLICY", &v, POLICIES))?;
        }
        num(
            &var,
            "STATS_SAMPLE_ONE_IN",
            &mut self.sample_one_in,
            "a number",
        )?;
        if let Some(v) = var("STATS_MAX_DATAGRAM") {
            let size = v.trim().parse();
            self.max_datagram =
                Some(size.map_err(|_| invalid("STATS_MAX_DATAGRAM", &v, "a number"))?);
        }
        if let Some(v) = var("STATS_CODEC") {
            self.codec =
                Codec::from_name(v.trim()).ok_or_else(|| invalid("STATS_CODEC", &v, CODECS))?;
        }
        num(
            &var,
            "STATS_MAX_MEMORY_MB",
            &mut self.max_memory_mb,
            "a number",
        )?;
        num(
            &var,
            "STATS_INTERNING",
            &mut self.interning,
            "true or false",
        )?;
        num(
            &var,
            "STATS_INTERNER_CAPACITY",
            &mut self.interner_capacity,
            "a number",
        )?;
        num(
            &var,
            "STATS_BREAKER_FAILURES",
            &mut self.breaker_failures,
            "a number",
        )?;
        num(
            &var,
            "STATS_BREAKER_OPEN_MS",
            &mut self.breaker_open_ms,
            "a number",
        )?;
        num(
            &var,
            "STATS_SEND_BUFFER_BYTES",
            &mut self.send_buffer_bytes,
            "a number",
        )?;
        num(
            &var,
            "STATS_RESOLVE_INTERVAL_S",
            &mut self.resolve_interval_s,
            "a number",
        )?;
        num(&var, "STATS_HTTP", &mut self.http, "true or false")?;
        if let Some(v) = var("STATS_HTTP_ADDRESS") {
            self.http_address = v;
        }
        num(
            &var,
            "STATS_HTTP_MAX_CONNECTIONS",
            &mut self.http_max_connections,
            "a number",
        )?;
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
            self.origin_detection = v
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

    /// Checks every field's range. (Whether the whole fits `max_memory_mb`
    /// is checked when the pipeline is built, from the real sizes.)
    pub fn validate(&self) -> Result<(), ConfigError> {
        let Config {
            address,
            tags,
            origin_detection: _,
            timestamps: _,
            client_telemetry,
            aggregation,
            interval_ms,
            refresh_interval_s,
            max_series,
            aggregation_threads,
            buffer_size,
            lane_sets,
            batch_size,
            max_batch_age_ms,
            tick_ms,
            adaptive_batching: _,
            drop_policy: _,
            max_datagram,
            sample_one_in,
            codec,
            max_memory_mb,
            interning: _,
            interner_capacity,
            breaker_failures,
            breaker_open_ms: _,
            send_buffer_bytes,
            resolve_interval_s,
            http: _,
            http_address,
            http_max_connections,
        } = self;
        if Address::parse(address).is_none() {
            return Err(invalid("address", address, ADDRESS_FORMS));
        }
        let pairs = self.tag_pairs();
        let own: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        if let Some(tag) = tags.iter().find(|t| t.is_empty() || t.starts_with(':')) {
            return Err(invalid("tags", tag, "key:value or key, the key not empty"));
        }
        if Key::record_len("", &own).is_err() {
            return Err(invalid(
                "tags",
                tags.join(","),
                "at most 8, each key and value at most 255 bytes, no key twice",
            ));
        }
        if !(10..=3_600_000).contains(interval_ms) {
            return Err(invalid("interval_ms", interval_ms, "10 to 3600000"));
        }
        if refresh_interval_s.saturating_mul(1_000) < *interval_ms {
            return Err(invalid(
                "refresh_interval_s",
                refresh_interval_s,
                "at least interval_ms / 1000",
            ));
        }
        // With the overflow series, within the key table's 65,536 slots.
        if !(1..=50_000).contains(max_series) {
            return Err(invalid("max_series", max_series, "1 to 50000"));
        }
        if *aggregation_threads > 4_096 {
            return Err(invalid(
                "aggregation_threads",
                aggregation_threads,
                "0 to 4096",
            ));
        }
        if !buffer_size.is_power_of_two() || *buffer_size < 16 || *buffer_size > 1 << 24 {
            return Err(invalid(
                "buffer_size",
                buffer_size,
                "a power of two, 16 to 16777216",
            ));
        }
        if *lane_sets > crate::stats::SETS - 1 {
            return Err(invalid("lane_sets", lane_sets, "0 to 64"));
        }
        if !(1..=crate::BATCH_CAPACITY).contains(batch_size) {
            return Err(invalid("batch_size", batch_size, "1 to 128"));
        }
        if *max_batch_age_ms == 0 {
            return Err(invalid("max_batch_age_ms", max_batch_age_ms, "at least 1"));
        }
        if !(1..=100).contains(tick_ms) {
            return Err(invalid("tick_ms", tick_ms, "1 to 100"));
        }
        if *client_telemetry && *codec == Codec::Native {
            return Err(invalid(
                "client_telemetry",
                client_telemetry,
                "false unless the codec is a StatsD one (the collector reads the native format's own counts)",
            ));
        }
        if *sample_one_in == 0 {
            return Err(invalid("sample_one_in", sample_one_in, "at least 1"));
        }
        let statsd_events = *aggregation == Aggregation::Off && *codec != Codec::Native;
        if *sample_one_in > 1 && !statsd_events {
            return Err(invalid(
                "sample_one_in",
                sample_one_in,
                "1 unless aggregation is off and the codec is a StatsD one (aggregated values are exact for less than a sample costs)",
            ));
        }
        if let Some(size) = max_datagram
            && !(512..=65_507).contains(size)
        {
            return Err(invalid("max_datagram", size, "512 to 65507"));
        }
        if *max_memory_mb == 0 || *max_memory_mb > 1 << 20 {
            return Err(invalid("max_memory_mb", max_memory_mb, "1 to 1048576"));
        }
        if !(1..=65_535).contains(interner_capacity) {
            return Err(invalid(
                "interner_capacity",
                interner_capacity,
                "1 to 65535",
            ));
        }
        if *breaker_failures == 0 {
            return Err(invalid("breaker_failures", breaker_failures, "at least 1"));
        }
        if *send_buffer_bytes == 0 || *send_buffer_bytes > i32::MAX as usize {
            return Err(invalid(
                "send_buffer_bytes",
                send_buffer_bytes,
                "1 to 2147483647",
            ));
        }
        if *resolve_interval_s == 0 {
            return Err(invalid(
                "resolve_interval_s",
                resolve_interval_s,
                "at least 1",
            ));
        }
        if http_address.parse::<std::net::SocketAddr>().is_err() {
            return Err(invalid("http_address", http_address, "ip:port"));
        }
        if *http_max_connections == 0 {
            return Err(invalid(
                "http_max_connections",
                http_max_connections,
                "at least 1",
            ));
        }
        Ok(())
    }

    /// Bytes per datagram: `max_datagram`, or the default of the
    /// transport `address` names ([`Address::default_max_datagram`]).
    pub fn datagram_size(&self) -> usize {
        self.max_datagram.unwrap_or_else(|| {
            Address::parse(&self.address).map_or(stats_core::wire::DEFAULT_MAX_DATAGRAM, |a| {
                a.default_max_datagram()
            })
        })
    }

    /// The same with another datagram size (`None`: the transport's).
    #[must_use]
    pub fn with_max_datagram(self, max_datagram: Option<usize>) -> Self {
        Config {
            max_datagram,
            ..self
        }
    }

    /// The same with other constant tags (`key:value` or `key`).
    #[must_use]
    pub fn with_tags<T: Into<String>>(self, tags: impl IntoIterator<Item = T>) -> Self {
        Config {
            tags: tags.into_iter().map(Into::into).collect(),
            ..self
        }
    }

    /// The same with the container id sent (DogStatsD) or not.
    #[must_use]
    pub fn with_origin_detection(self, origin_detection: bool) -> Self {
        Config {
            origin_detection,
            ..self
        }
    }

    /// The same with DogStatsD timestamps on aggregated counters and
    /// gauges, or not.
    #[must_use]
    pub fn with_timestamps(self, timestamps: bool) -> Self {
        Config { timestamps, ..self }
    }

    /// The same sending one timer and histogram value in `n` (events in
    /// StatsD lines).
    #[must_use]
    pub fn with_sample_one_in(self, n: u32) -> Self {
        Config {
            sample_one_in: n,
            ..self
        }
    }

    /// The same with datadog-go's client telemetry sent, or not.
    #[must_use]
    pub fn with_client_telemetry(self, client_telemetry: bool) -> Self {
        Config {
            client_telemetry,
            ..self
        }
    }

    /// The same with batch sizes by lane utilization, or not.
    #[must_use]
    pub fn with_adaptive_batching(self, adaptive_batching: bool) -> Self {
        Config {
            adaptive_batching,
            ..self
        }
    }

    /// The same with another SO_SNDBUF to ask for.
    #[must_use]
    pub fn with_send_buffer_bytes(self, send_buffer_bytes: usize) -> Self {
        Config {
            send_buffer_bytes,
            ..self
        }
    }

    /// The same with another interval between lookups (UDP) or connection
    /// attempts (a Unix socket that went away).
    #[must_use]
    pub fn with_resolve_interval_s(self, resolve_interval_s: u64) -> Self {
        Config {
            resolve_interval_s,
            ..self
        }
    }

    /// The same with the HTTP endpoint off.
    #[must_use]
    pub fn with_http_off(self) -> Self {
        Config {
            http: false,
            ..self
        }
    }

    /// The same with another limit of concurrent HTTP connections.
    #[must_use]
    pub fn with_http_max_connections(self, http_max_connections: usize) -> Self {
        Config {
            http_max_connections,
            ..self
        }
    }

    /// The same with another aggregation mode.
    #[must_use]
    pub fn with_aggregation(self, aggregation: Aggregation) -> Self {
        Config {
            aggregation,
            ..self
        }
    }

    /// The same with another interval between sends of aggregated totals.
    #[must_use]
    pub fn with_interval_ms(self, interval_ms: u64) -> Self {
        Config {
            interval_ms,
            ..self
        }
    }

    /// The same with another full-refresh interval.
    #[must_use]
    pub fn with_refresh_interval_s(self, refresh_interval_s: u64) -> Self {
        Config {
            refresh_interval_s,
            ..self
        }
    }

    /// The same with another series limit.
    #[must_use]
    pub fn with_max_series(self, max_series: usize) -> Self {
        Config { max_series, ..self }
    }

    /// The same with another number of threads that aggregate into state
    /// of their own.
    #[must_use]
    pub fn with_aggregation_threads(self, aggregation_threads: usize) -> Self {
        Config {
            aggregation_threads,
            ..self
        }
    }

    /// The same with another destination.
    #[must_use]
    pub fn with_address(self, address: impl Into<String>) -> Self {
        Config {
            address: address.into(),
            ..self
        }
    }

    /// The same with another number of lane sets owned by one thread each.
    #[must_use]
    pub fn with_lane_sets(self, lane_sets: usize) -> Self {
        Config { lane_sets, ..self }
    }

    /// The same with another lane set size.
    #[must_use]
    pub fn with_buffer_size(self, buffer_size: usize) -> Self {
        Config {
            buffer_size,
            ..self
        }
    }

    /// The same with another batch size.
    #[must_use]
    pub fn with_batch_size(self, batch_size: usize) -> Self {
        Config { batch_size, ..self }
    }

    /// The same with another batch age limit.
    #[must_use]
    pub fn with_max_batch_age_ms(self, max_batch_age_ms: u64) -> Self {
        Config {
            max_batch_age_ms,
            ..self
        }
    }

    /// The same with another worker tick.
    #[must_use]
    pub fn with_tick_ms(self, tick_ms: u64) -> Self {
        Config { tick_ms, ..self }
    }

    /// The same with another drop policy.
    #[must_use]
    pub fn with_drop_policy(self, drop_policy: DropPolicy) -> Self {
        Config {
            drop_policy,
            ..self
        }
    }

    /// The same with another interner capacity.
    #[must_use]
    pub fn with_interner_capacity(self, interner_capacity: usize) -> Self {
        Config {
            interner_capacity,
            ..self
        }
    }

    /// The same with the dynamic API on or off.
    #[must_use]
    pub fn with_interning(self, interning: bool) -> Self {
        Config { interning, ..self }
    }

    /// The same with another breaker.
    #[must_use]
    pub fn with_breaker(self, failures: u32, open_ms: u64) -> Self {
        Config {
            breaker_failures: failures,
            breaker_open_ms: open_ms,
            ..self
        }
    }

    /// The same with the HTTP endpoint on, at `address`.
    #[must_use]
    pub fn with_http(self, address: impl Into<String>) -> Self {
        Config {
            http: true,
            http_address: address.into(),
            ..self
        }
    }

    /// The same with another codec.
    #[must_use]
    pub fn with_codec(self, codec: Codec) -> Self {
        Config { codec, ..self }
    }

    /// The same with another memory maximum.
    #[must_use]
    pub fn with_max_memory_mb(self, max_memory_mb: usize) -> Self {
        Config {
            max_memory_mb,
            ..self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn defaults_are_the_documented_ones_and_valid() {
        let c = Config::default();
        assert_eq!(c.buffer_size, 16_384);
        assert_eq!((c.batch_size, c.max_batch_age_ms), (50, 100));
        assert_eq!(c.drop_policy, DropPolicy::DropByPriority);
        assert_eq!(c.address, "localhost:8125");
        assert!(c.interning);
        assert_eq!((c.max_memory_mb, c.max_datagram), (10, None));
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
        assert_eq!((c.buffer_size, c.batch_size), (1024, 20));
        assert!(matches!(
            c.drop_policy,
            DropPolicy::DropSampled {
                threshold_percent: 50,
                ..
            }
        ));
        assert!(!c.interning);
        assert!(c.http);
        assert_eq!(c.http_address, "127.0.0.1:9200");
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
                "buffer_size",
                "1000",
            ),
            (Config::default().with_batch_size(0), "batch_size", "0"),
            (Config::default().with_tick_ms(0), "tick_ms", "0"),
            (
                Config::default().with_breaker(0, 1_000),
                "breaker_failures",
                "0",
            ),
            (
                Config::default().with_address("localhost"),
                "address",
                "localhost",
            ),
            (Config::default().with_lane_sets(65), "lane_sets", "65"),
            (
                Config::default().with_interner_capacity(70_000),
                "interner_capacity",
                "70000",
            ),
            (
                Config::default().with_http("localhost:80"),
                "http_address",
                "localhost:80",
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

    #[test]
    fn the_readme_table_lists_every_variable() {
        let readme = include_str!("../../README.md");
        let seen = std::cell::RefCell::new(Vec::new());
        let mut c = Config::default();
        let _ = c.apply_env(|name| {
            seen.borrow_mut().push(name.to_string());
            None
        });
        let seen = seen.into_inner();
        assert_eq!(seen.len(), 30);
        for name in seen {
            let field = name.trim_start_matches("STATS_").to_lowercase();
            let row = format!("| `{field}` | `{name}` |");
            assert!(readme.contains(&row), "README lacks the row for {name}");
        }
    }

    #[test]
    fn toml_sets_fields_and_rejects_unknown_ones() {
        let c = Config::from_toml(
            "address = \"127.0.0.1:8125\"\nbatch_size = 100\ndrop_policy = \"oldest\"\n",
        )
        .unwrap();
        assert_eq!((c.batch_size, c.drop_policy), (100, DropPolicy::DropOldest));
        assert_eq!(c.buffer_size, 16_384);
        assert!(matches!(
            Config::from_toml("batch_sise = 3"),
            Err(ConfigError::File { .. })
        ));
        assert!(matches!(
            Config::from_toml("batch_size = 500"),
            Err(ConfigError::Invalid {
                field: "batch_size",
                ..
            })
        ));
        assert_eq!(
            Config::from_toml("codec = \"statsd\"").unwrap().codec,
            Codec::Statsd(stats_core::wire::Dialect::Etsy)
        );
        assert!(
            Config::from_toml("drop_policy = \"sometimes\"")
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
        assert!(c.adaptive_batching && !c.http);
        assert_eq!(
            (
                c.send_buffer_bytes,
                c.resolve_interval_s,
                c.http_max_connections
            ),
            (1 << 16, 5, 2)
        );
        assert_eq!(c.http_address, "127.0.0.1:0");
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
        assert!(!c.origin_detection);
        let mut both = dd.to_vec();
        both.extend([
            ("STATS_ADDRESS", "stats:2"),
            ("STATS_TAGS", "env:stats"),
            ("STATS_ORIGIN_DETECTION", "true"),
        ]);
        let c = with_env(file, &both).unwrap();
        assert_eq!(c.address, "stats:2");
        assert_eq!(c.tags, ["env:stats", "service:dd-svc"]);
        assert!(c.origin_detection);
    }
}
