//! How recorded values travel: [`AggregationMode`].

use std::fmt;

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
