//! Validation: every field checked against its limits, the error naming
//! the field, the value and what is allowed.

use super::Config;
use super::error::{ConfigError, invalid};
use super::mode::AggregationMode;
use crate::transport::{ADDRESS_FORMS, Address};
use stats_core::Key;
use stats_core::wire::{Codec, MAX_DATAGRAM, MIN_DATAGRAM};
use std::fmt;
use std::ops::RangeInclusive;

impl Config {
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
}
