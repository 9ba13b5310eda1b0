//! Why a StatsD or DogStatsD line did not parse.

use core::fmt;

/// Why a line did not parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ParseError {
    /// Not UTF-8.
    InvalidUtf8,
    /// No `name:value|type` shape, or an empty name.
    Malformed,
    /// A type other than `c`, `g`, `ms`, `h`, `d`, `s`.
    UnknownType,
    /// A sample rate that is not a number in
    /// [`MIN_SAMPLE_RATE`](super::statsd::MIN_SAMPLE_RATE), 1.
    BadSampleRate,
    /// A DogStatsD event (`_e{`) whose lengths do not match its title and
    /// text, or with an empty title.
    BadEvent,
    /// A DogStatsD service check (`_sc|`) without a name or a status of
    /// 0 to 3.
    BadServiceCheck,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ParseError::InvalidUtf8 => "line is not UTF-8",
            ParseError::Malformed => "line is not name:value|type",
            ParseError::UnknownType => "unknown metric type",
            ParseError::BadSampleRate => "sample rate is not in [1e-6, 1]",
            ParseError::BadEvent => "event lengths do not match its title and text",
            ParseError::BadServiceCheck => "service check without a name or a status of 0 to 3",
        })
    }
}

impl core::error::Error for ParseError {}

impl ParseError {
    /// A short stable name for counting errors by kind.
    pub const fn kind(&self) -> &'static str {
        match self {
            ParseError::InvalidUtf8 => "statsd_invalid_utf8",
            ParseError::Malformed => "statsd_malformed",
            ParseError::UnknownType => "statsd_unknown_type",
            ParseError::BadSampleRate => "statsd_bad_sample_rate",
            ParseError::BadEvent => "statsd_bad_event",
            ParseError::BadServiceCheck => "statsd_bad_service_check",
        }
    }
}
