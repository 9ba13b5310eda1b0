//! StatsD text lines, for agents that speak StatsD rather than this crate's
//! binary format.
//!
//! [`write_line`] renders one event as a line in a [`Dialect`]; the
//! [`Encoder`] joins lines with `\n` up to the datagram
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

use super::Codec;
use super::as_exact_int;
pub use super::dogstatsd::{CheckStatus, ParsedEvent, ParsedServiceCheck, tag_pairs};
use super::dogstatsd::{parse_event, parse_service_check};
use super::encode::{Encoder, Format, PushError, Writer};
pub use super::parse_error::ParseError;
use crate::event::{Event, KeyId, Kind};
use crate::registry::Key;
use core::fmt::{self, Write as _};

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

/// One line to write: an event, or an aggregate with a sample rate.
#[derive(Clone, Debug)]
pub struct Line<'a, T> {
    /// The metric name.
    pub name: &'a str,
    /// The tags, as (key, value) pairs; a pair with an empty value is written
    /// as the bare key.
    pub tags: T,
    /// The kind of metric.
    pub kind: Kind,
    /// The value, or for a timer or histogram several (one DogStatsD 1.1
    /// line `name:1:2:3|d`; one line each in Etsy StatsD, and for other
    /// kinds); for a timer, nanoseconds (written as milliseconds).
    pub values: &'a [f64],
    /// For a gauge: the value is a signed change.
    pub relative: bool,
    /// In (0, 1]: the fraction of occurrences this line stands for
    /// (`|@rate`, written only below 1). A line with rate 0.25 counts as 4.
    pub sample_rate: f64,
    /// The sender's container id (`|c:id`, DogStatsD 1.2); empty for none.
    /// Etsy StatsD has no such field and leaves it out.
    pub container_id: &'a str,
    /// When the value was taken, Unix seconds (`|T`, DogStatsD 1.3), for an
    /// aggregate; the agent then forwards it unaggregated. Etsy StatsD
    /// leaves it out.
    pub timestamp: Option<u64>,
}

/// Why a line was not written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum LineError {
    /// The line needs more room than the buffer has.
    NoRoom {
        /// Bytes the line needs.
        needed: usize,
    },
    /// NaN or an infinity (value or sample rate): StatsD has no form for it.
    NotFinite,
    /// No value to write.
    NoValue,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            LineError::NoRoom { needed } => write!(f, "the line needs {needed} bytes"),
            LineError::NotFinite => f.write_str("NaN and infinities have no StatsD form"),
            LineError::NoValue => f.write_str("a line needs a value"),
        }
    }
}

impl core::error::Error for LineError {}

/// Where a line's bytes go: a buffer, or a count of what would be written.
trait Sink {
    /// Appends `bytes`; `None` if they do not fit.
    fn put(&mut self, bytes: &[u8]) -> Option<()>;
}

struct SliceSink<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl Sink for SliceSink<'_> {
    #[inline]
    fn put(&mut self, bytes: &[u8]) -> Option<()> {
        let end = self.len + bytes.len();
        self.buf.get_mut(self.len..end)?.copy_from_slice(bytes);
        self.len = end;
        Some(())
    }
}

struct CountSink(usize);

impl Sink for CountSink {
    fn put(&mut self, bytes: &[u8]) -> Option<()> {
        self.0 += bytes.len();
        Some(())
    }
}

/// `core::fmt` into a [`Sink`], for non-integral numbers.
struct FmtSink<'s, S>(&'s mut S);

impl<S: Sink> fmt::Write for FmtSink<'_, S> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.put(s.as_bytes()).ok_or(fmt::Error)
    }
}

/// Writes `line` at the start of `out` and returns its length (no trailing
/// newline). On error nothing meaningful was written.
pub fn write_line<'t, T>(
    dialect: Dialect,
    line: &Line<'_, T>,
    out: &mut [u8],
) -> Result<usize, LineError>
where
    T: Iterator<Item = (&'t str, &'t str)> + Clone,
{
    if line.values.is_empty() {
        return Err(LineError::NoValue);
    }
    if !line.values.iter().all(|v| v.is_finite()) || !line.sample_rate.is_finite() {
        return Err(LineError::NotFinite);
    }
    let mut sink = SliceSink { buf: out, len: 0 };
    if emit(dialect, line, &mut sink).is_some() {
        return Ok(sink.len);
    }
    let mut count = CountSink(0);
    let _ = emit(dialect, line, &mut count);
    Err(LineError::NoRoom { needed: count.0 })
}

fn emit<'t, T, S>(dialect: Dialect, line: &Line<'_, T>, sink: &mut S) -> Option<()>
where
    T: Iterator<Item = (&'t str, &'t str)> + Clone,
    S: Sink,
{
    if dialect.joins_values(line.kind) {
        // DogStatsD 1.1: every value in one line.
        return emit_values(dialect, line, line.values, sink);
    }
    for (i, value) in line.values.iter().enumerate() {
        if i > 0 {
            sink.put(b"\n")?;
        }
        emit_values(dialect, line, core::slice::from_ref(value), sink)?;
    }
    Some(())
}

/// One line of `values` (at least one; more only for a timer or histogram).
fn emit_values<'t, T, S>(
    dialect: Dialect,
    line: &Line<'_, T>,
    values: &[f64],
    sink: &mut S,
) -> Option<()>
where
    T: Iterator<Item = (&'t str, &'t str)> + Clone,
    S: Sink,
{
    let kind = line.kind;
    let first = *values.first()?;
    if kind == Kind::Gauge && !line.relative && first < 0.0 {
        // A leading minus would be read as a change: set 0 first.
        put_name(sink, line.name)?;
        sink.put(b":0|g")?;
        put_fields(dialect, line, sink)?;
        sink.put(b"\n")?;
    }
    put_name(sink, line.name)?;
    for &value in values {
        sink.put(b":")?;
        if kind == Kind::Gauge && line.relative && (value == 0.0 || value.is_sign_positive()) {
            sink.put(b"+")?;
        }
        if kind == Kind::Timer {
            put_millis(sink, value)?;
        } else {
            put_number(sink, value)?;
        }
    }
    sink.put(match (kind, dialect) {
        (Kind::Counter, _) => b"|c",
        (Kind::Gauge, _) => b"|g",
        (_, Dialect::DogStatsdDistribution) => b"|d",
        (Kind::Histogram, Dialect::DogStatsd) => b"|h",
        (Kind::Timer | Kind::Histogram, _) => b"|ms",
    })?;
    if line.sample_rate > 0.0 && line.sample_rate < 1.0 {
        sink.put(b"|@")?;
        put_number(sink, line.sample_rate)?;
    }
    put_fields(dialect, line, sink)
}

/// What follows the type and rate: the tags, the container id, the
/// timestamp.
fn put_fields<'t, T, S>(dialect: Dialect, line: &Line<'_, T>, sink: &mut S) -> Option<()>
where
    T: Iterator<Item = (&'t str, &'t str)> + Clone,
    S: Sink,
{
    put_tags(dialect, line.tags.clone(), sink)?;
    if dialect.extended() && !line.container_id.is_empty() {
        sink.put(b"|c:")?;
        put_clean(sink, line.container_id, &TAG_VALUE_FORBIDDEN)?;
    }
    if let (Some(seconds), true) = (line.timestamp, dialect.extended()) {
        sink.put(b"|T")?;
        put_int(sink, i64::try_from(seconds).ok()?)?;
    }
    Some(())
}

/// StatsD lines in a dialect, as an [`Encoder`]'s format:
/// no header and no checksum, lines joined by newlines.
pub(super) struct LineFormat(pub(super) Dialect);

impl Format for LineFormat {
    fn begin(&self, _: &mut Writer<'_>) {}

    fn push<'k>(
        &self,
        w: &mut Writer<'_>,
        event: &Event,
        key: impl FnOnce(KeyId) -> Option<Key<'k>>,
    ) -> Result<(), PushError> {
        let refuse = |encoder: &mut Encoder, error| {
            encoder.refused += 1;
            Err(error)
        };
        if w.count == u16::MAX {
            return Err(PushError::Full);
        }
        let several = self.0.joins_values(event.kind);
        if let Some((k, kind, end)) = w.last_line
            && several
            && (k, kind) == (event.key, event.kind)
        {
            return join_value(w, event, end);
        }
        let Some(key) = key(event.key) else {
            return refuse(w.encoder, PushError::UnknownKey);
        };
        let line = Line {
            name: key.name(),
            tags: key.tags(),
            kind: event.kind,
            values: core::slice::from_ref(&event.value),
            relative: event.relative && event.kind == Kind::Gauge,
            sample_rate: match event.kind {
                Kind::Timer | Kind::Histogram => 1.0 / f64::from(w.encoder.config.sample_one_in),
                Kind::Counter | Kind::Gauge => 1.0,
            },
            container_id: w.encoder.config.container_id,
            timestamp: None,
        };
        let separator = usize::from(w.count > 0);
        let at = w.len + separator;
        let written = match w.buf.get_mut(at..) {
            Some(rest) => write_line(self.0, &line, rest),
            None => Err(LineError::NoRoom { needed: 1 }),
        };
        match written {
            Ok(n) => {
                if separator == 1 {
                    w.buf[w.len] = b'\n';
                }
                // The value ends at the first `|`: a name holds none.
                w.last_line = w.buf[at..at + n]
                    .iter()
                    .position(|&b| b == b'|')
                    .filter(|_| several)
                    .map(|end| (event.key, event.kind, at + end));
                w.len = at + n;
                w.count += 1;
                Ok(())
            }
            Err(LineError::NotFinite | LineError::NoValue) => {
                refuse(w.encoder, PushError::NotFinite)
            }
            Err(LineError::NoRoom { needed }) if w.count == 0 => refuse(
                w.encoder,
                PushError::Oversized {
                    needed,
                    max_datagram: w.buf.len(),
                },
            ),
            Err(LineError::NoRoom { .. }) => Err(PushError::Full),
        }
    }

    fn trailer_len(&self) -> usize {
        0
    }

    fn finish(&self, w: &mut Writer<'_>) -> usize {
        w.len
    }
}

/// Appends `event`'s value to the line whose values end at `end`, as
/// DogStatsD 1.1 has it (`name:1:2|ms`): the rest of the line moves over.
fn join_value(w: &mut Writer<'_>, event: &Event, end: usize) -> Result<(), PushError> {
    if !event.value.is_finite() {
        w.encoder.refused += 1;
        return Err(PushError::NotFinite);
    }
    let mut text = [0u8; 40];
    text[0] = b':';
    let mut sink = SliceSink {
        buf: &mut text,
        len: 1,
    };
    let written = if event.kind == Kind::Timer {
        put_millis(&mut sink, event.value)
    } else {
        put_number(&mut sink, event.value)
    };
    let n = sink.len;
    if written.is_none() || w.count == u16::MAX || w.len + n > w.buf.len() {
        return Err(PushError::Full);
    }
    w.buf.copy_within(end..w.len, end + n);
    w.buf[end..end + n].copy_from_slice(&text[..n]);
    w.len += n;
    w.last_line = Some((event.key, event.kind, end + n));
    w.count += 1;
    Ok(())
}

/// A byte class: which bytes may not appear in a field.
type Forbidden = [bool; 256];

const fn forbidden(bytes: &[u8]) -> Forbidden {
    let mut table = [false; 256];
    let mut i = 0;
    while i < bytes.len() {
        table[bytes[i] as usize] = true;
        i += 1;
    }
    table
}

/// `text` with the forbidden bytes replaced by `_`. The forbidden bytes are
/// ASCII, so UTF-8 stays valid.
#[inline]
fn put_clean<S: Sink>(sink: &mut S, text: &str, forbidden: &Forbidden) -> Option<()> {
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(i) = bytes[from..]
        .iter()
        .position(|&b| forbidden[usize::from(b)])
    {
        sink.put(&bytes[from..from + i])?;
        sink.put(b"_")?;
        from += i + 1;
    }
    sink.put(&bytes[from..])
}

static NAME_FORBIDDEN: Forbidden = forbidden(b":|@\n\r");
static TAG_KEY_FORBIDDEN: Forbidden = forbidden(b":|,#\n\r");
static TAG_VALUE_FORBIDDEN: Forbidden = forbidden(b"|,#\n\r");

fn put_name<S: Sink>(sink: &mut S, name: &str) -> Option<()> {
    put_clean(sink, name, &NAME_FORBIDDEN)
}

fn put_tags<'t, S: Sink>(
    dialect: Dialect,
    tags: impl Iterator<Item = (&'t str, &'t str)>,
    sink: &mut S,
) -> Option<()> {
    if !dialect.extended() {
        return Some(());
    }
    for (i, (k, v)) in tags.enumerate() {
        sink.put(if i == 0 { b"|#" } else { b"," })?;
        put_clean(sink, k, &TAG_KEY_FORBIDDEN)?;
        if !v.is_empty() {
            sink.put(b":")?;
            put_clean(sink, v, &TAG_VALUE_FORBIDDEN)?;
        }
    }
    Some(())
}

/// An integer in decimal.
fn put_int<S: Sink>(sink: &mut S, v: i64) -> Option<()> {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut n = v.unsigned_abs();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if v < 0 {
        sink.put(b"-")?;
    }
    sink.put(&digits[at..])
}

/// A finite number: integers exactly, others in the shortest form that reads
/// back to the same `f64` (exponent notation for very large or small ones,
/// which StatsD servers parse).
fn put_number<S: Sink>(sink: &mut S, v: f64) -> Option<()> {
    if v == 0.0 {
        return sink.put(b"0");
    }
    if let Some(i) = as_exact_int(v) {
        return put_int(sink, i);
    }
    let mut f = FmtSink(sink);
    let magnitude = v.abs();
    if (1e-5..1e16).contains(&magnitude) {
        write!(f, "{v}").ok()
    } else {
        write!(f, "{v:e}").ok()
    }
}

/// Nanoseconds as milliseconds: exact for integral nanoseconds (up to six
/// decimals), otherwise the nearest `f64`.
fn put_millis<S: Sink>(sink: &mut S, ns: f64) -> Option<()> {
    let Some(ns) = as_exact_int(ns) else {
        return put_number(sink, ns / 1e6);
    };
    if ns < 0 {
        sink.put(b"-")?;
    }
    let ns = ns.unsigned_abs();
    put_int(sink, (ns / 1_000_000) as i64)?;
    let mut frac = ns % 1_000_000;
    if frac == 0 {
        return Some(());
    }
    let mut digits = [b'0'; 7];
    digits[0] = b'.';
    for d in digits[1..].iter_mut().rev() {
        *d = b'0' + (frac % 10) as u8;
        frac /= 10;
    }
    let mut end = digits.len();
    while digits[end - 1] == b'0' {
        end -= 1;
    }
    sink.put(&digits[..end])
}

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
    fn from_code(code: &str) -> Option<MetricType> {
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
        self.value.parse().ok().filter(|v: &f64| v.is_finite())
    }

    /// Each value of the line (DogStatsD 1.1 sends several, `name:1:2:3`),
    /// `None` for one that is not a finite number.
    pub fn numbers(&self) -> impl Iterator<Item = Option<f64>> + '_ {
        self.value
            .split(':')
            .map(|v| v.parse().ok().filter(|v: &f64| v.is_finite()))
    }

    /// For a gauge, whether the value is a signed change (`+N` or `-N`).
    pub fn is_change(&self) -> bool {
        self.metric_type == MetricType::Gauge && self.value.starts_with(['+', '-'])
    }

    /// The tags as (key, value) pairs; a bare tag has an empty value.
    pub fn tag_pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        super::dogstatsd::tag_pairs(self.tags)
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
    rest: &'a [u8],
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

fn parse_line(line: &[u8]) -> Result<Parsed<'_>, ParseError> {
    let line = core::str::from_utf8(line).map_err(|_| ParseError::InvalidUtf8)?;
    if line.starts_with("_e{") {
        return parse_event(line).map(Parsed::Event);
    }
    if line.starts_with("_sc|") {
        return parse_service_check(line).map(Parsed::ServiceCheck);
    }
    parse_metric(line).map(Parsed::Metric)
}

fn parse_metric(line: &str) -> Result<ParsedLine<'_>, ParseError> {
    let (name, rest) = line.split_once(':').ok_or(ParseError::Malformed)?;
    let mut fields = rest.split('|');
    let value = fields.next().ok_or(ParseError::Malformed)?;
    let code = fields.next().ok_or(ParseError::Malformed)?;
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
    for field in fields {
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::string::String;
    use std::vec::Vec;

    fn line(
        dialect: Dialect,
        name: &str,
        tags: &[(&str, &str)],
        kind: Kind,
        value: f64,
        relative: bool,
        rate: f64,
    ) -> Result<String, LineError> {
        let mut buf = [0u8; 600];
        let l = Line {
            name,
            tags: tags.iter().copied(),
            kind,
            values: &[value],
            relative,
            sample_rate: rate,
            container_id: "",
            timestamp: None,
        };
        let n = write_line(dialect, &l, &mut buf)?;
        Ok(String::from(core::str::from_utf8(&buf[..n]).unwrap()))
    }

    /// The first line of `text`, a metric.
    fn first_metric(text: &str) -> ParsedLine<'_> {
        parse(text.as_bytes())
            .next()
            .unwrap()
            .unwrap()
            .metric()
            .unwrap()
    }

    fn simple(dialect: Dialect, kind: Kind, value: f64) -> String {
        line(dialect, "m", &[], kind, value, false, 1.0).unwrap()
    }

    #[test]
    fn dialects_are_found_by_their_codec_names() {
        assert_eq!(Dialect::from_name("statsd"), Some(Dialect::Etsy));
        assert_eq!(Dialect::from_name("dogstatsd"), Some(Dialect::DogStatsd));
        assert_eq!(
            Dialect::from_name("dogstatsd-distribution"),
            Some(Dialect::DogStatsdDistribution)
        );
        assert_eq!(Dialect::from_name("native"), None);
        assert_eq!(Dialect::from_name("graphite"), None);
    }

    #[test]
    fn every_kind_in_every_dialect() {
        use Dialect::*;
        use Kind::*;
        let cases: &[(Dialect, Kind, f64, &str)] = &[
            (Etsy, Counter, 3.0, "m:3|c"),
            (Etsy, Gauge, 7.0, "m:7|g"),
            (Etsy, Timer, 1_500_000.0, "m:1.5|ms"),
            (Etsy, Histogram, 42.0, "m:42|ms"),
            (DogStatsd, Timer, 2_000_000.0, "m:2|ms"),
            (DogStatsd, Histogram, 42.5, "m:42.5|h"),
            (DogStatsdDistribution, Timer, 250_000.0, "m:0.25|d"),
            (DogStatsdDistribution, Histogram, 42.0, "m:42|d"),
            (DogStatsd, Counter, -2.0, "m:-2|c"),
            (Etsy, Counter, 0.1, "m:0.1|c"),
            (Etsy, Timer, 1.0, "m:0.000001|ms"),
            (Etsy, Timer, 1_234_567_890.0, "m:1234.56789|ms"),
            (Etsy, Gauge, 1e20, "m:1e20|g"),
            (Etsy, Gauge, 1.5e-7, "m:1.5e-7|g"),
            (Etsy, Gauge, -0.0, "m:0|g"),
        ];
        for &(dialect, kind, value, want) in cases {
            assert_eq!(
                simple(dialect, kind, value),
                want,
                "{dialect:?} {kind:?} {value}"
            );
        }
    }

    #[test]
    fn negative_gauges_are_set_through_zero_and_changes_carry_a_sign() {
        let tags = [("host", "a")];
        assert_eq!(
            line(Dialect::Etsy, "g", &tags, Kind::Gauge, -7.0, false, 1.0).unwrap(),
            "g:0|g\ng:-7|g"
        );
        assert_eq!(
            line(
                Dialect::DogStatsd,
                "g",
                &tags,
                Kind::Gauge,
                -7.0,
                false,
                1.0
            )
            .unwrap(),
            "g:0|g|#host:a\ng:-7|g|#host:a"
        );
        assert_eq!(
            line(Dialect::Etsy, "g", &[], Kind::Gauge, 2.0, true, 1.0).unwrap(),
            "g:+2|g"
        );
        assert_eq!(
            line(Dialect::Etsy, "g", &[], Kind::Gauge, -2.5, true, 1.0).unwrap(),
            "g:-2.5|g"
        );
        assert_eq!(
            line(Dialect::Etsy, "g", &[], Kind::Gauge, 0.0, true, 1.0).unwrap(),
            "g:+0|g"
        );
    }

    #[test]
    fn tags_rates_and_forbidden_characters() {
        let tags = [("env", "prod"), ("bare", ""), ("a:b", "c,d|e#f:g")];
        assert_eq!(
            line(
                Dialect::DogStatsd,
                "x:y|z@w",
                &tags,
                Kind::Counter,
                1.0,
                false,
                0.25
            )
            .unwrap(),
            "x_y_z_w:1|c|@0.25|#env:prod,bare,a_b:c_d_e_f:g"
        );
        // Etsy has no tags.
        assert_eq!(
            line(Dialect::Etsy, "n", &tags, Kind::Histogram, 5.0, false, 0.5).unwrap(),
            "n:5|ms|@0.5"
        );
    }

    #[test]
    fn dogstatsd_lines_carry_the_container_id_after_the_tags() {
        let tags = [("env", "prod")];
        let at = |dialect, kind, value| {
            let l = Line {
                name: "m",
                tags: tags.iter().copied(),
                kind,
                values: &[value],
                relative: false,
                sample_rate: 0.5,
                container_id: "3c0ffee|x",
                timestamp: None,
            };
            let mut buf = [0u8; 200];
            let n = write_line(dialect, &l, &mut buf).unwrap();
            String::from_utf8(buf[..n].to_vec()).unwrap()
        };
        assert_eq!(
            at(Dialect::DogStatsd, Kind::Counter, 2.0),
            "m:2|c|@0.5|#env:prod|c:3c0ffee_x"
        );
        assert_eq!(
            at(Dialect::DogStatsdDistribution, Kind::Gauge, -1.0),
            "m:0|g|#env:prod|c:3c0ffee_x\nm:-1|g|@0.5|#env:prod|c:3c0ffee_x"
        );
        assert_eq!(at(Dialect::Etsy, Kind::Counter, 2.0), "m:2|c|@0.5");
        let text = at(Dialect::DogStatsd, Kind::Counter, 2.0);
        let parsed = first_metric(&text);
        assert_eq!(
            (parsed.tags, parsed.container_id),
            ("env:prod", "3c0ffee_x")
        );
    }

    #[test]
    fn several_values_share_a_dogstatsd_line_and_times_follow_the_fields() {
        let write = |dialect, kind, values: &[f64], timestamp| {
            let l = Line {
                name: "m",
                tags: [("k", "v")].into_iter(),
                kind,
                values,
                relative: false,
                sample_rate: 0.5,
                container_id: "c1",
                timestamp,
            };
            let mut buf = [0u8; 200];
            let n = write_line(dialect, &l, &mut buf)?;
            Ok::<_, LineError>(String::from_utf8(buf[..n].to_vec()).unwrap())
        };
        let three = [1.0, 2.5, 3.0];
        assert_eq!(
            write(
                Dialect::DogStatsdDistribution,
                Kind::Histogram,
                &three,
                None
            )
            .unwrap(),
            "m:1:2.5:3|d|@0.5|#k:v|c:c1"
        );
        assert_eq!(
            write(Dialect::DogStatsd, Kind::Timer, &[1.5e6, 2e6], None).unwrap(),
            "m:1.5:2|ms|@0.5|#k:v|c:c1"
        );
        // Etsy StatsD, and counters and gauges anywhere: a line each.
        assert_eq!(
            write(Dialect::Etsy, Kind::Histogram, &three, None).unwrap(),
            "m:1|ms|@0.5\nm:2.5|ms|@0.5\nm:3|ms|@0.5"
        );
        assert_eq!(
            write(Dialect::DogStatsd, Kind::Gauge, &[1.0, -2.0], None).unwrap(),
            "m:1|g|@0.5|#k:v|c:c1\nm:0|g|#k:v|c:c1\nm:-2|g|@0.5|#k:v|c:c1"
        );
        assert_eq!(
            write(
                Dialect::DogStatsd,
                Kind::Counter,
                &[4.0],
                Some(1_700_000_000)
            )
            .unwrap(),
            "m:4|c|@0.5|#k:v|c:c1|T1700000000"
        );
        assert_eq!(
            write(Dialect::Etsy, Kind::Counter, &[4.0], Some(1_700_000_000)).unwrap(),
            "m:4|c|@0.5"
        );
        assert_eq!(
            write(Dialect::DogStatsd, Kind::Counter, &[], None),
            Err(LineError::NoValue)
        );
        assert_eq!(
            write(Dialect::DogStatsd, Kind::Timer, &[1.0, f64::NAN], None),
            Err(LineError::NotFinite)
        );
        let text = write(
            Dialect::DogStatsdDistribution,
            Kind::Histogram,
            &three,
            None,
        )
        .unwrap();
        let parsed = first_metric(&text);
        let values: Vec<Option<f64>> = parsed.numbers().collect();
        assert_eq!(values, [Some(1.0), Some(2.5), Some(3.0)]);
        assert_eq!(parsed.number(), None, "several values are not one number");
    }

    #[test]
    fn refuses_what_statsd_cannot_say_and_reports_room_needed() {
        for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(
                line(Dialect::Etsy, "m", &[], Kind::Counter, v, false, 1.0),
                Err(LineError::NotFinite)
            );
        }
        let l = Line {
            name: "twelve_bytes",
            tags: [("k", "v")].into_iter(),
            kind: Kind::Counter,
            values: &[1.0],
            relative: false,
            sample_rate: 1.0,
            container_id: "",
            timestamp: None,
        };
        let mut small = [0u8; 10];
        assert_eq!(
            write_line(Dialect::DogStatsd, &l, &mut small),
            Err(LineError::NoRoom { needed: 21 })
        );
        let mut exact = [0u8; 21];
        assert_eq!(write_line(Dialect::DogStatsd, &l, &mut exact), Ok(21));
    }

    #[test]
    fn parses_what_agents_send_and_rejects_garbage() {
        let lines: Vec<_> =
            parse(b"a:1|c\n\nb:+2|g|#k:v,bare\r\nc:1.5|ms|@0.5\nd:x|s\nbad\ne:1|zz\nf:1|c|@2")
                .collect();
        let metric = |i: usize| lines[i].unwrap().metric().unwrap();
        let a = metric(0);
        assert_eq!(
            (a.name, a.number(), a.metric_type),
            ("a", Some(1.0), MetricType::Counter)
        );
        let b = metric(1);
        assert!(b.is_change());
        assert_eq!(
            b.tag_pairs().collect::<Vec<_>>(),
            [("k", "v"), ("bare", "")]
        );
        let c = metric(2);
        assert_eq!((c.metric_type, c.sample_rate), (MetricType::Timer, 0.5));
        assert_eq!(metric(3).number(), None);
        assert_eq!(lines[4], Err(ParseError::Malformed));
        assert_eq!(lines[5], Err(ParseError::UnknownType));
        assert_eq!(lines[6], Err(ParseError::BadSampleRate));
        assert_eq!(lines.len(), 7);
    }

    #[test]
    fn codec_names_round_trip() {
        let all = [
            Codec::Native,
            Codec::Statsd(Dialect::Etsy),
            Codec::Statsd(Dialect::DogStatsd),
            Codec::Statsd(Dialect::DogStatsdDistribution),
        ];
        for codec in all {
            assert_eq!(Codec::from_name(codec.name()), Some(codec));
        }
        assert_eq!(Codec::from_name("json"), None);
        assert_eq!(
            Codec::from_name("postcard"),
            Some(Codec::Native),
            "the old name"
        );
        assert_eq!(Codec::default(), Codec::Native);
    }

    proptest! {
        /// Any bytes give lines or errors, never a panic.
        #[test]
        fn any_bytes_parse_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            for l in parse(&bytes).flatten().filter_map(Parsed::metric) {
                let _ = (l.number(), l.is_change(), l.tag_pairs().count());
            }
        }

        /// Whatever the value, the line parses back to the same number (as
        /// milliseconds for timers), kind and sign convention.
        #[test]
        fn lines_read_back(
            value in prop_oneof![any::<f64>(), (-1_000_000_000i64..1_000_000_000).prop_map(|i| i as f64)],
            kind in 0u8..4,
            relative: bool,
            dialect in 0usize..3,
        ) {
            let kind = Kind::from_code(kind).unwrap();
            let relative = relative && kind == Kind::Gauge;
            let dialect = [Dialect::Etsy, Dialect::DogStatsd, Dialect::DogStatsdDistribution][dialect];
            let text = line(dialect, "m", &[("k", "v")], kind, value, relative, 1.0);
            if !value.is_finite() {
                prop_assert_eq!(text, Err(LineError::NotFinite));
                return Ok(());
            }
            let text = text.unwrap();
            let parsed: Vec<_> = parse(text.as_bytes()).map(|l| l.unwrap().metric().unwrap()).collect();
            let last = parsed.last().unwrap();
            let want = if kind == Kind::Timer { value / 1e6 } else { value };
            let got = last.number().unwrap();
            prop_assert!((got - want).abs() <= want.abs() * 1e-15, "{} from {}", got, text);
            prop_assert_eq!(last.is_change(), relative || (kind == Kind::Gauge && value < 0.0));
            prop_assert_eq!(parsed.len(), if kind == Kind::Gauge && !relative && value < 0.0 { 2 } else { 1 });
            if dialect != Dialect::Etsy {
                prop_assert_eq!(last.tags, "k:v");
            }
        }
    }
}
