//! The event that travels through the lanes.
//!
//! An [`Event`] is small and `Copy`: the metric is referred to by a [`KeyId`]
//! resolved once through the [`Registry`](crate::Registry), never by its name
//! and tags, so recording copies 24 bytes and nothing else.

/// What kind of metric an event records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum Kind {
    /// A count of occurrences; the value is added to the running total.
    Counter = 0,
    /// A point-in-time value; the last one wins.
    Gauge = 1,
    /// A duration in nanoseconds, aggregated into a distribution.
    Timer = 2,
    /// An arbitrary sampled value, aggregated into a distribution.
    Histogram = 3,
}

impl Kind {
    /// Every kind, in code order.
    pub const ALL: [Kind; 4] = [Kind::Counter, Kind::Gauge, Kind::Timer, Kind::Histogram];

    /// The kind for a one-byte code, or `None` if the code is not a kind.
    pub const fn from_code(code: u8) -> Option<Kind> {
        match code {
            0 => Some(Kind::Counter),
            1 => Some(Kind::Gauge),
            2 => Some(Kind::Timer),
            3 => Some(Kind::Histogram),
            _ => None,
        }
    }

    /// `counter`, `gauge`, `timer` or `histogram`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Timer => "timer",
            Kind::Histogram => "histogram",
        }
    }
}

/// How much an event matters when the pipeline must shed load.
///
/// Lanes drain high before medium before low, and the default drop policy
/// sacrifices lower priorities first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum Priority {
    /// Shed first.
    Low = 0,
    /// The default.
    #[default]
    Medium = 1,
    /// Shed last.
    High = 2,
}

impl Priority {
    /// Every priority, lowest first.
    pub const ALL: [Priority; 3] = [Priority::Low, Priority::Medium, Priority::High];

    /// Index of this priority in arrays ordered lowest first (`Low` is 0).
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The priority for a one-byte code, or `None` if the code is not a priority.
    pub const fn from_code(code: u8) -> Option<Priority> {
        match code {
            0 => Some(Priority::Low),
            1 => Some(Priority::Medium),
            2 => Some(Priority::High),
            _ => None,
        }
    }
}

/// Compact identity of a metric (name plus tags), issued by a key store: a
/// [`Registry`](crate::Registry), or an adapter's own table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct KeyId(pub(crate) u32);

impl KeyId {
    /// The raw id. A [`Registry`](crate::Registry)'s ids are dense: the n-th
    /// registered key has id n.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// The id with the given raw value (meaningful only for the registry that
    /// issued it).
    pub const fn from_raw(raw: u32) -> KeyId {
        KeyId(raw)
    }
}

/// One recorded measurement.
///
/// The timestamp is in nanoseconds on the adapter's clock (the core has no
/// clock of its own); the value of a [`Kind::Timer`] is in nanoseconds too.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Event {
    /// The measured value.
    pub value: f64,
    /// When it was recorded, in nanoseconds on the adapter's clock.
    pub timestamp: u64,
    /// Which metric it belongs to.
    pub key: KeyId,
    /// What kind of metric it is.
    pub kind: Kind,
    /// How much it matters under load.
    pub priority: Priority,
    /// For a gauge: `value` is a signed change to the gauge rather than its
    /// new value. Always `false` for other kinds.
    pub relative: bool,
}

/// The size budget of a queued event: two fit in a 64-byte cache line.
pub const MAX_EVENT_SIZE: usize = 32;

const _: () = assert!(core::mem::size_of::<Event>() <= MAX_EVENT_SIZE);

impl Event {
    /// An event with the given fields.
    pub const fn new(
        key: KeyId,
        kind: Kind,
        value: f64,
        timestamp: u64,
        priority: Priority,
    ) -> Self {
        Event {
            value,
            timestamp,
            key,
            kind,
            priority,
            relative: false,
        }
    }

    /// A gauge event that moves the gauge by `change` (signed) instead of
    /// setting it.
    pub const fn gauge_change(key: KeyId, change: f64, timestamp: u64, priority: Priority) -> Self {
        Event {
            relative: true,
            ..Event::new(key, Kind::Gauge, change, timestamp, priority)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_is_24_bytes() {
        assert_eq!(core::mem::size_of::<Event>(), 24);
    }

    #[test]
    fn codes_round_trip_and_reject_unknown() {
        for kind in Kind::ALL {
            assert_eq!(Kind::from_code(kind as u8), Some(kind));
        }
        for priority in Priority::ALL {
            assert_eq!(Priority::from_code(priority as u8), Some(priority));
            assert_eq!(Priority::ALL[priority.index()], priority);
        }
        assert_eq!(Kind::from_code(4), None);
        assert_eq!(Priority::from_code(3), None);
        assert_eq!(Priority::default(), Priority::Medium);
    }
}
