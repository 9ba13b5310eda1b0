//! The exporters' settings, made from the client's configuration: the
//! sender id, the breaker, the encoder, the container id.

use crate::shared::Shared;
use stats_core::wire::EncoderConfig;
use stats_core::{AdaptiveConfig, BreakerConfig, ExporterConfig};
use std::hash::{BuildHasher, Hasher};

pub(super) fn random_sender_id() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.finish()
}

pub(super) fn breaker(shared: &Shared) -> BreakerConfig {
    let c = &shared.config;
    BreakerConfig::new(
        c.breaker.failures,
        c.breaker.open_ms.saturating_mul(1_000_000),
    )
}

pub(super) fn encoder(shared: &Shared, sender: u64) -> EncoderConfig {
    let c = &shared.config;
    EncoderConfig::new(sender)
        .with_max_datagram(c.datagram_size())
        .with_codec(c.codec)
        .with_container_id(container_id(c))
        .with_sample_one_in(c.events.sample_one_in)
}

/// The container id DogStatsD lines carry: detected once a process, when
/// `origin_detection` is on.
pub(super) fn container_id(c: &crate::Config) -> &'static str {
    if c.codec.is_dogstatsd() && c.dogstatsd.origin_detection {
        crate::origin::container_id()
    } else {
        ""
    }
}

pub(super) fn exporter_config(shared: &Shared, sender: u64) -> ExporterConfig {
    let c = &shared.config;
    let mut config = ExporterConfig::new(sender)
        .with_batch_size(c.events.batch_size)
        .with_max_batch_age_ns(c.events.max_batch_age_ms.saturating_mul(1_000_000))
        .with_breaker(breaker(shared))
        .with_encoder(encoder(shared, sender))
        .with_max_memory_bytes((c.max_memory_mb << 20).saturating_sub(shared.keys.memory_bytes()));
    if c.events.adaptive_batching {
        config = config.with_adaptive(AdaptiveConfig::DEFAULT);
    }
    config
}
