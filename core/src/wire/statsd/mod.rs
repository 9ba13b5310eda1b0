//! StatsD text lines, for agents that speak StatsD rather than this crate's
//! binary format.
//!
//! [`write_line`] renders one event as a line in a [`Dialect`]; the
//! [`Encoder`](super::Encoder) joins lines with `\n` up to the datagram
//! limit when its [`Codec`] is
//! [`Codec::Statsd`]. [`parse`] reads such a datagram
//! back, for receivers and tests. Neither allocates.
//!
//! | event | Etsy `statsd` | DogStatsD |
//! |---|---|---|
//! | counter | `name:3\|c` | `name:3\|c\|#k:v` |
//! | gauge set to 7 | `name:7\|g` | `name:7\|g\|#k:v` |
//! | gauge set to -7 | `name:0\|g` `\n` `name:-7\|g` | same, with tags |
//! | gauge change of +2 / -2 | `name:+2\|g` / `name:-2\|g` | same, with tags |
//! | timer of 1.5 ms (in ns) | `name:1.5\|ms` | `name:1.5\|ms` (distribution: `d`) |
//! | histogram | `name:42\|ms` | `name:42\|h` (distribution: `d`) |
//!
//! A leading sign on a gauge value means a change in StatsD, so a negative
//! value is set by first setting 0: right whether or not the receiving agent
//! knows changes. Etsy StatsD has no tags, so that dialect leaves them out.
//! Characters that would break a line (`:` `|` `@` newline, and in tags `,`
//! `#`) become `_`. NaN and infinities have no StatsD form.

mod datagram;
mod parse;
#[cfg(test)]
mod tests;
mod write;

pub(crate) use datagram::LineFormat;
pub use parse::{Lines, MIN_SAMPLE_RATE, MetricType, Parsed, ParsedLine, parse};
pub use write::{Line, LineError, write_line};

use super::Codec;
pub use super::dogstatsd::{CheckStatus, ParsedEvent, ParsedServiceCheck, tag_pairs};
pub use super::parse_error::ParseError;
use crate::event::Kind;

/// A StatsD dialect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Dialect {
    /// The original Etsy StatsD: no tags; timers and histograms as `ms`.
    Etsy,
    /// DogStatsD: tags as `|#k:v,k:v`; timers as `ms`, histograms as `h`.
    DogStatsd,
    /// DogStatsD with timers and histograms as distributions (`d`),
    /// aggregated globally by the agent's backend.
    DogStatsdDistribution,
}

impl Dialect {
    /// The dialect whose codec is called `name` (`statsd`, `dogstatsd` or
    /// `dogstatsd-distribution`, as [`Codec::name`] gives them).
    pub fn from_name(name: &str) -> Option<Dialect> {
        match Codec::from_name(name) {
            Some(Codec::Statsd(dialect)) => Some(dialect),
            _ => None,
        }
    }

    /// Whether its lines carry DogStatsD's fields: tags, the container id
    /// (1.2) and a timestamp (1.3). Etsy StatsD's carry none of them.
    fn extended(self) -> bool {
        self != Dialect::Etsy
    }

    /// Whether values of `kind` that follow each other share one line
    /// (DogStatsD 1.1: timers and histograms).
    fn joins_values(self, kind: Kind) -> bool {
        self.extended() && matches!(kind, Kind::Timer | Kind::Histogram)
    }
}
