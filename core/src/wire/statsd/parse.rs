//! Reading a StatsD or DogStatsD datagram's lines ([`parse`]): metrics,
//! and DogStatsD's events and service checks.

use crate::wire::dogstatsd::{ParsedEvent, ParsedServiceCheck, parse_event, parse_service_check};
use crate::wire::parse_error::ParseError;

/// A StatsD metric type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum MetricType {
    /// `c`
    Counter,
    /// `g`
    Gauge,
    /// `ms`: milliseconds.
    Timer,
    /// `h`
    Histogram,
    /// `d`
    Distribution,
    /// `s`: distinct values.
    Set,
}

impl MetricType {
    pub(super) fn from_code(code: &str) -> Option<MetricType> {
        Some(match code {
            "c" => MetricType::Counter,
            "g" => MetricType::Gauge,
            "ms" => MetricType::Timer,
            "h" => MetricType::Histogram,
            "d" => MetricType::Distribution,
            "s" => MetricType::Set,
            _ => return None,
        })
    }
}

/// One line read from a StatsD datagram.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ParsedLine<'a> {
    /// The metric name.
    pub name: &'a str,
    /// The value text as sent (a set's member is not a number).
    pub value: &'a str,
    /// The metric type.
    pub metric_type: MetricType,
    /// The sample rate, 1 when absent.
    pub sample_rate: f64,
    /// The DogStatsD tags as sent (`k:v,k:v`), empty when absent.
    pub tags: &'a str,
    /// The DogStatsD container id (`|c:`), empty when absent.
    pub container_id: &'a str,
}

impl ParsedLine<'_> {
    /// The value as a number, `None` for a set member, a malformed value
    /// or several values.
    pub fn number(&self) -> Option<f64> {
        number(self.value)
    }

    /// Each value of the line (DogStatsD 1.1 sends several, `name:1:2:3`),
    /// `None` for one that is not a finite number.
    pub fn numbers(&self) -> impl Iterator<Item = Option<f64>> + '_ {
        self.value.split(':').map(number)
    }

    /// For a gauge, whether the value is a signed change (`+N` or `-N`).
    pub fn is_change(&self) -> bool {
        self.metric_type == MetricType::Gauge && self.value.starts_with(['+', '-'])
    }

    /// The tags as (key, value) pairs; a bare tag has an empty value.
    pub fn tag_pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        crate::wire::dogstatsd::tag_pairs(self.tags)
    }
}

/// One line of a StatsD datagram: a metric, or one of DogStatsD's events
/// and service checks.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Parsed<'a> {
    /// `name:value|type...`
    Metric(ParsedLine<'a>),
    /// `_e{..}:title|text...`
    Event(ParsedEvent<'a>),
    /// `_sc|name|status...`
    ServiceCheck(ParsedServiceCheck<'a>),
}

impl<'a> Parsed<'a> {
    /// The metric line, if it is one.
    pub fn metric(self) -> Option<ParsedLine<'a>> {
        match self {
            Parsed::Metric(line) => Some(line),
            Parsed::Event(_) | Parsed::ServiceCheck(_) => None,
        }
    }
}

/// The smallest sample rate a line may carry: one value standing for a
/// million. Below it a rate would scale a value past any count a sender
/// makes (`@1e-300` makes 1 a 300-digit number).
pub const MIN_SAMPLE_RATE: f64 = 1e-6;

/// The lines of a StatsD datagram (separated by `\n`; empty lines skipped).
pub fn parse(datagram: &[u8]) -> Lines<'_> {
    Lines { rest: datagram }
}

/// Iterator over a datagram's lines, from [`parse`].
#[derive(Clone, Debug)]
pub struct Lines<'a> {
    pub(super) rest: &'a [u8],
}

impl<'a> Iterator for Lines<'a> {
    type Item = Result<Parsed<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.rest.is_empty() {
                return None;
            }
            let (line, rest) = match self.rest.iter().position(|&b| b == b'\n') {
                Some(i) => (&self.rest[..i], &self.rest[i + 1..]),
                None => (self.rest, &[][..]),
            };
            self.rest = rest;
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if !line.is_empty() {
                return Some(parse_line(line));
            }
        }
    }
}

pub(super) fn parse_line(line: &[u8]) -> Result<Parsed<'_>, ParseError> {
    let line = core::str::from_utf8(line).map_err(|_| ParseError::InvalidUtf8)?;
    if line.starts_with("_e{") {
        return parse_event(line).map(Parsed::Event);
    }
    if line.starts_with("_sc|") {
        return parse_service_check(line).map(Parsed::ServiceCheck);
    }
    parse_metric(line).map(Parsed::Metric)
}

pub(super) fn parse_metric(line: &str) -> Result<ParsedLine<'_>, ParseError> {
    // Byte searches: the separators are ASCII, so every cut is at a char
    // boundary (and a line is a few dozen bytes: a loop beats `memchr`).
    let (name, rest) = split_at_byte(line, b':').ok_or(ParseError::Malformed)?;
    let (value, rest) = split_at_byte(rest, b'|').ok_or(ParseError::Malformed)?;
    let (code, mut fields) = split_at_byte(rest, b'|').unwrap_or((rest, ""));
    if name.is_empty() || value.is_empty() {
        return Err(ParseError::Malformed);
    }
    let metric_type = MetricType::from_code(code).ok_or(ParseError::UnknownType)?;
    let mut parsed = ParsedLine {
        name,
        value,
        metric_type,
        sample_rate: 1.0,
        tags: "",
        container_id: "",
    };
    while !fields.is_empty() {
        let (field, next) = split_at_byte(fields, b'|').unwrap_or((fields, ""));
        fields = next;
        if let Some(rate) = field.strip_prefix('@') {
            parsed.sample_rate = rate
                .parse()
                .ok()
                .filter(|r: &f64| (MIN_SAMPLE_RATE..=1.0).contains(r))
                .ok_or(ParseError::BadSampleRate)?;
        } else if let Some(tags) = field.strip_prefix('#') {
            parsed.tags = tags;
        } else if let Some(id) = field.strip_prefix("c:") {
            parsed.container_id = id;
        }
        // Other fields (a timestamp) are not ours to read.
    }
    Ok(parsed)
}

/// `text` cut at its first `byte` (an ASCII separator): before, after.
#[inline]
fn split_at_byte(text: &str, byte: u8) -> Option<(&str, &str)> {
    let at = text.bytes().position(|b| b == byte)?;
    Some((text.get(..at)?, text.get(at + 1..)?))
}

/// A value's text as a finite number. Integers of up to 15 digits (what
/// counters and most gauges send) are read directly, exactly; anything
/// else by the standard library's parser.
#[inline]
pub(super) fn number(text: &str) -> Option<f64> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if (1..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
        let n = digits
            .bytes()
            .fold(0u64, |n, b| n * 10 + u64::from(b - b'0'));
        // Below 10^15 < 2^53: exact.
        let n = n as f64;
        return Some(if text.starts_with('-') { -n } else { n });
    }
    text.parse().ok().filter(|v: &f64| v.is_finite())
}
