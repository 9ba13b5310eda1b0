//! Adaptive batch size: small batches when the lanes are nearly empty, large
//! ones when they fill, with hysteresis so a utilization hovering at a
//! threshold does not flip the size back and forth.
//!
//! Off by default in [`ExporterConfig`](crate::ExporterConfig): a flush tops
//! its datagrams up with whatever waits in the lanes, so under load
//! datagrams leave full whatever the batch size, and at low load the age
//! limit (100 ms) bounds latency. What adapting changes is how soon a flush
//! starts at low and medium load — useful when latency matters more than
//! datagram count, hence the option.

/// Batch sizes by lane utilization, and the thresholds between them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct AdaptiveConfig {
    /// Batch size below `low_percent` utilization (default 10).
    pub low: usize,
    /// Batch size between the thresholds (default 50).
    pub medium: usize,
    /// Batch size above `high_percent` utilization (default 100).
    pub high: usize,
    /// Lower threshold, percent of lane capacity (default 25).
    pub low_percent: u8,
    /// Upper threshold, percent (default 75).
    pub high_percent: u8,
    /// How far past a threshold utilization must go to switch, in percentage
    /// points either side (default 5).
    pub hysteresis_percent: u8,
}

impl AdaptiveConfig {
    /// 10 / 50 / 100 events at 25% and 75%, ±5 points of hysteresis.
    pub const DEFAULT: AdaptiveConfig = AdaptiveConfig {
        low: 10,
        medium: 50,
        high: 100,
        low_percent: 25,
        high_percent: 75,
        hysteresis_percent: 5,
    };

    /// The largest batch size it can choose.
    pub const fn max_batch(&self) -> usize {
        let m = if self.low > self.medium {
            self.low
        } else {
            self.medium
        };
        if m > self.high { m } else { self.high }
    }
}

impl Default for AdaptiveConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// A band of lane utilization between two thresholds, with hysteresis: it
/// picks the batch size in force, and the memory pressure level the exporter
/// reports (see [`PressureConfig`](crate::exporter::PressureConfig)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Level {
    /// Below the lower threshold: small batches, no pressure.
    #[default]
    Low,
    /// Between the thresholds.
    Medium,
    /// Above the upper threshold: large batches, high pressure.
    High,
}

impl Level {
    /// `low`, `medium` or `high`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
        }
    }
}

impl Level {
    /// The level for utilization `u` (percent) coming from `self`, with
    /// thresholds `low` and `high` and `h` points of hysteresis either side:
    /// a threshold is crossed upwards at `threshold + h` and downwards below
    /// `threshold - h`.
    pub(crate) fn next(self, u: u8, low: u8, high: u8, h: u8) -> Level {
        let (u, lo, hi, h) = (i16::from(u), i16::from(low), i16::from(high), i16::from(h));
        match self {
            Level::Low if u >= hi + h => Level::High,
            Level::Low if u >= lo + h => Level::Medium,
            Level::Medium if u >= hi + h => Level::High,
            Level::Medium if u < lo - h => Level::Low,
            Level::High if u < lo - h => Level::Low,
            Level::High if u < hi - h => Level::Medium,
            level => level,
        }
    }
}

/// Chooses the batch size from lane utilization, with hysteresis.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AdaptiveBatcher {
    config: AdaptiveConfig,
    level: Level,
    changes: u64,
}

impl AdaptiveBatcher {
    /// Starts at the medium size.
    pub const fn new(config: AdaptiveConfig) -> Self {
        AdaptiveBatcher {
            config,
            level: Level::Medium,
            changes: 0,
        }
    }

    /// The batch size for `utilization_percent` (0..=100 of lane capacity).
    pub fn batch_size(&mut self, utilization_percent: u8) -> usize {
        let c = &self.config;
        let next = self.level.next(
            utilization_percent,
            c.low_percent,
            c.high_percent,
            c.hysteresis_percent,
        );
        if next != self.level {
            self.level = next;
            self.changes += 1;
        }
        self.size()
    }

    /// The size in force.
    pub fn size(&self) -> usize {
        match self.level {
            Level::Low => self.config.low,
            Level::Medium => self.config.medium,
            Level::High => self.config.high,
        }
    }

    /// The level in force.
    pub fn level(&self) -> Level {
        self.level
    }

    /// How many times the size changed.
    pub fn changes(&self) -> u64 {
        self.changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_utilization() {
        let mut b = AdaptiveBatcher::new(AdaptiveConfig::DEFAULT);
        assert_eq!(b.size(), 50);
        assert_eq!(b.batch_size(0), 10);
        assert_eq!(b.batch_size(50), 50);
        assert_eq!(b.batch_size(90), 100);
        assert_eq!(b.batch_size(10), 10);
        assert_eq!(b.batch_size(100), 100);
        assert_eq!(b.changes(), 5);
        assert_eq!(AdaptiveConfig::DEFAULT.max_batch(), 100);
    }

    #[test]
    fn hovering_at_a_threshold_does_not_oscillate() {
        let mut b = AdaptiveBatcher::new(AdaptiveConfig::DEFAULT);
        assert_eq!(b.batch_size(50), 50);
        // Around 25%: within ±5 points nothing changes, whichever side.
        for u in [24, 26, 21, 29, 24, 26, 20, 25] {
            assert_eq!(b.batch_size(u), 50, "at {u}%");
        }
        assert_eq!(b.batch_size(19), 10);
        for u in [24, 26, 29, 21, 29] {
            assert_eq!(b.batch_size(u), 10, "at {u}%");
        }
        assert_eq!(b.batch_size(30), 50);
        // Around 75% likewise.
        for u in [74, 76, 79, 71] {
            assert_eq!(b.batch_size(u), 50, "at {u}%");
        }
        assert_eq!(b.batch_size(80), 100);
        for u in [76, 74, 71, 79] {
            assert_eq!(b.batch_size(u), 100, "at {u}%");
        }
        assert_eq!(b.batch_size(69), 50);
        assert_eq!(b.changes(), 4);
    }
}
