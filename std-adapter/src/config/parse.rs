//! Values as a file or a variable writes them: drop policies, modes,
//! codecs.

use super::mode::AggregationMode;
use serde::Deserialize;
use stats_core::DropPolicy;
use stats_core::wire::Codec;
use std::num::NonZeroU16;

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

pub(super) const POLICIES: &str = "by_priority, newest, oldest or sampled:N:P";
pub(super) const AGGREGATIONS: &str = "source or off";

pub(super) fn aggregation_from_str<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<AggregationMode, D::Error> {
    let s = String::deserialize(d)?;
    AggregationMode::from_name(&s).ok_or_else(|| {
        serde::de::Error::custom(format!("aggregation {s:?}: expected {AGGREGATIONS}"))
    })
}
pub(super) const CODECS: &str = "native, statsd, dogstatsd or dogstatsd-distribution";

pub(super) fn codec_from_str<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Codec, D::Error> {
    let s = String::deserialize(d)?;
    Codec::from_name(&s)
        .ok_or_else(|| serde::de::Error::custom(format!("codec {s:?}: expected {CODECS}")))
}

pub(super) fn policy_from_str<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<DropPolicy, D::Error> {
    let s = String::deserialize(d)?;
    parse_drop_policy(&s)
        .ok_or_else(|| serde::de::Error::custom(format!("drop_policy {s:?}: expected {POLICIES}")))
}
