//! Loading: the TOML file, then `STATS_*` variables, then Datadog's
//! `DD_*` ones where `STATS_*` left a field unset.

use super::Config;
use super::error::{ConfigError, invalid};
use super::mode::AggregationMode;
use super::parse::{AGGREGATIONS, CODECS, POLICIES, parse_drop_policy};
use crate::transport::Address;
use stats_core::wire::Codec;
use std::path::Path;

/// The tags datadog-go takes from the environment, and their variables.
pub(super) const DATADOG_TAGS: [(&str, &str); 4] = [
    ("env", "DD_ENV"),
    ("service", "DD_SERVICE"),
    ("version", "DD_VERSION"),
    ("dd.internal.entity_id", "DD_ENTITY_ID"),
];

pub(super) const DATADOG_URLS: &str =
    "udp://host:port, host:port, unix:///path, unixgram:///path or unixstream:///path";

/// A `DD_DOGSTATSD_URL` as an address: datadog-go's `unix://` and
/// `unixgram://` are a datagram socket, `unixstream://` a stream.
pub(super) fn datadog_url(url: &str) -> Option<String> {
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
pub(super) fn split_tags(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(String::from)
        .collect()
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
    pub(super) fn apply_datadog_env(
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
}
