//! Memory pressure: the lane utilization thresholds ([`PressureConfig`])
//! and the change told to the pressure callback ([`Pressure`]).

use crate::batcher::Level;

/// Lane utilization thresholds for memory pressure (see [`Level`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct PressureConfig {
    /// Utilization, percent, from which pressure is medium (default 50).
    pub medium_percent: u8,
    /// Utilization, percent, from which pressure is high (default 80).
    pub high_percent: u8,
    /// Points past a threshold needed to change level (default 5).
    pub hysteresis_percent: u8,
}

impl PressureConfig {
    /// Medium from 50%, high from 80%, ±5 points.
    pub const DEFAULT: PressureConfig = PressureConfig {
        medium_percent: 50,
        high_percent: 80,
        hysteresis_percent: 5,
    };
}

impl Default for PressureConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// A change of memory pressure, as told to the pressure callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Pressure {
    /// The new level.
    pub level: Level,
    /// Lane utilization that caused it, percent.
    pub utilization_percent: u8,
    /// Bytes of lanes, exporter and buffer (fixed).
    pub memory_bytes: usize,
}
