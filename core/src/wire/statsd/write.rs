//! Writing one StatsD or DogStatsD line ([`write_line`]): names, tags and
//! numbers as the dialect writes them, the bytes a line may not hold
//! replaced.

use super::Dialect;
use crate::event::Kind;
use crate::wire::as_exact_int;
use core::fmt::{self, Write as _};

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
pub(super) trait Sink {
    /// Appends `bytes`; `None` if they do not fit.
    fn put(&mut self, bytes: &[u8]) -> Option<()>;
}

pub(super) struct SliceSink<'b> {
    pub(super) buf: &'b mut [u8],
    pub(super) len: usize,
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

pub(super) struct CountSink(usize);

impl Sink for CountSink {
    fn put(&mut self, bytes: &[u8]) -> Option<()> {
        self.0 += bytes.len();
        Some(())
    }
}

/// `core::fmt` into a [`Sink`], for non-integral numbers.
pub(super) struct FmtSink<'s, S>(&'s mut S);

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

pub(super) fn emit<'t, T, S>(dialect: Dialect, line: &Line<'_, T>, sink: &mut S) -> Option<()>
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
pub(super) fn emit_values<'t, T, S>(
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
pub(super) fn put_fields<'t, T, S>(dialect: Dialect, line: &Line<'_, T>, sink: &mut S) -> Option<()>
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

/// A byte class: which bytes may not appear in a field.
pub(super) type Forbidden = [bool; 256];

pub(super) const fn forbidden(bytes: &[u8]) -> Forbidden {
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
pub(super) fn put_clean<S: Sink>(sink: &mut S, text: &str, forbidden: &Forbidden) -> Option<()> {
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

pub(super) static NAME_FORBIDDEN: Forbidden = forbidden(b":|@\n\r");
pub(super) static TAG_KEY_FORBIDDEN: Forbidden = forbidden(b":|,#\n\r");
pub(super) static TAG_VALUE_FORBIDDEN: Forbidden = forbidden(b"|,#\n\r");

pub(super) fn put_name<S: Sink>(sink: &mut S, name: &str) -> Option<()> {
    put_clean(sink, name, &NAME_FORBIDDEN)
}

pub(super) fn put_tags<'t, S: Sink>(
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
pub(super) fn put_int<S: Sink>(sink: &mut S, v: i64) -> Option<()> {
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
pub(super) fn put_number<S: Sink>(sink: &mut S, v: f64) -> Option<()> {
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
pub(super) fn put_millis<S: Sink>(sink: &mut S, ns: f64) -> Option<()> {
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
