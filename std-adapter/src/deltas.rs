//! StatsD lines from cumulative totals: what changed since the last time
//! a series was sent, for agents that aggregate per interval. Both the
//! client (aggregating at the source, with a StatsD codec) and the
//! collector (forwarding to an agent) send these.
//!
//! For each series that changed:
//!
//! * a counter: the increase (`name:N|c`);
//! * a gauge: its value (`name:V|g`);
//! * a timer or histogram: for each bucket that gained values, a value
//!   that stands for it, with a sample rate of 1/count (`name:2|ms|@0.25`
//!   stands for 4 values in 2 ms's bucket): the agent's count is exact,
//!   its percentiles within the buckets' 2.2%. The value is one that could
//!   have been recorded ([`stand_in`]): an extreme alone in its bucket,
//!   0 for the zero bucket, the one integer a bucket holds when it holds
//!   one (a timer's in milliseconds), else the bucket's geometric
//!   midpoint, always within the series' minimum and maximum. Buckets that gained the same count share a line
//!   in DogStatsD (1.1, `name:2:3.7|d|@0.5`); Etsy StatsD gets a line each.
//!
//! These are deltas, so a lost datagram loses its lines for good: loss
//! immunity is the native format's (cumulative series datagrams).
//! Lines are joined by newlines up to the datagram size.

use stats_core::Kind;
use stats_core::aggregate::{NANOS_PER_SECOND, stand_in};
use stats_core::wire::statsd::{self, Dialect, Line, LineError};
use std::collections::BTreeMap;

/// A series' totals now.
pub enum Current<'a> {
    /// A counter's total.
    Counter(f64),
    /// A gauge's value.
    Gauge(f64),
    /// A distribution: its bucket counts by (shift, id), its extremes,
    /// and whether it is a timer's (values in nanoseconds, buckets in
    /// seconds).
    Distribution {
        /// Bucket counts by (shift, id).
        buckets: &'a mut dyn Iterator<Item = ((u8, u16), u64)>,
        /// The smallest value.
        min: f64,
        /// The largest value.
        max: f64,
        /// A timer's.
        timer: bool,
    },
}

/// Nanoseconds in a millisecond: a timer's lines are in milliseconds.
const NANOS_PER_MILLI: f64 = 1e6;

/// What a series stood at when it was last sent.
enum Last {
    Counter(f64),
    Gauge(u64),
    Distribution(BTreeMap<(u8, u16), u64>),
}

/// Each series' totals as last sent, by series index.
#[derive(Default)]
pub struct Deltas {
    last: Vec<Option<Last>>,
}

impl Deltas {
    /// Calls `line(values, sample_rate)` for the values series `index`
    /// needs sent now that it stands at `current` (values of one rate
    /// together), and remembers `current`.
    pub fn lines(&mut self, index: usize, current: Current<'_>, mut line: impl FnMut(&[f64], f64)) {
        if self.last.len() <= index {
            self.last.resize_with(index + 1, || None);
        }
        let last = &mut self.last[index];
        match current {
            Current::Counter(total) => {
                let before = match last {
                    Some(Last::Counter(v)) => *v,
                    _ => 0.0,
                };
                if total != before {
                    line(&[total - before], 1.0);
                }
                *last = Some(Last::Counter(total));
            }
            Current::Gauge(value) => {
                if !matches!(last, Some(Last::Gauge(bits)) if *bits == value.to_bits()) {
                    line(&[value], 1.0);
                }
                *last = Some(Last::Gauge(value.to_bits()));
            }
            Current::Distribution {
                buckets,
                min,
                max,
                timer,
            } => {
                let now: BTreeMap<(u8, u16), u64> = buckets.collect();
                // A timer's stand-ins are found in milliseconds (its
                // buckets are in seconds) and given back in nanoseconds.
                let value = |id: u16, shift: u8, count: u64| {
                    let shift = u32::from(shift);
                    if timer {
                        let unit = NANOS_PER_SECOND / NANOS_PER_MILLI;
                        let ms = |ns: f64| ns / NANOS_PER_MILLI;
                        stand_in(id, shift, count, unit, ms(min), ms(max)) * NANOS_PER_MILLI
                    } else {
                        stand_in(id, shift, count, 1.0, min, max)
                    }
                };
                // Stand-ins by the count their bucket gained.
                let mut gained: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
                for (&(shift, id), &count) in &now {
                    let before = match last {
                        Some(Last::Distribution(b)) => b.get(&(shift, id)).copied().unwrap_or(0),
                        _ => 0,
                    };
                    if count > before {
                        gained
                            .entry(count - before)
                            .or_default()
                            .push(value(id, shift, count));
                    }
                }
                for (count, values) in &gained {
                    line(values, 1.0 / *count as f64);
                }
                *last = Some(Last::Distribution(now));
            }
        }
    }
}

/// Lines packed into datagrams of at most `max` bytes.
pub struct Packer {
    dialect: Dialect,
    container_id: &'static str,
    /// The time lines carry (DogStatsD `|T`), Unix seconds, if any.
    timestamp: Option<u64>,
    max: usize,
    buf: Vec<u8>,
    /// Lines in `buf`.
    pending: u64,
}

impl Packer {
    /// Lines in `dialect`, in datagrams of at most `max` bytes, DogStatsD
    /// ones with `container_id` (empty for none).
    pub fn new(dialect: Dialect, max: usize, container_id: &'static str) -> Self {
        Packer {
            dialect,
            container_id,
            timestamp: None,
            max,
            buf: Vec::with_capacity(max),
            pending: 0,
        }
    }

    /// Appends a line of `values` (more than one only for a timer or
    /// histogram, see [`Line::values`]), first handing a full datagram to
    /// `send` (with its line count) when it does not fit; a line too long
    /// for a datagram goes as several. `Err` when a value cannot be written
    /// at all (not finite, or longer than a datagram alone).
    pub fn push<'t, T>(
        &mut self,
        name: &str,
        tags: T,
        kind: Kind,
        values: &[f64],
        sample_rate: f64,
        send: &mut dyn FnMut(&[u8], u64),
    ) -> Result<(), LineError>
    where
        T: Iterator<Item = (&'t str, &'t str)> + Clone,
    {
        let line = Line {
            name,
            tags: tags.clone(),
            kind,
            values,
            relative: false,
            sample_rate,
            container_id: self.container_id,
            // DogStatsD takes a time for counts and gauges only.
            timestamp: self
                .timestamp
                .filter(|_| matches!(kind, Kind::Counter | Kind::Gauge)),
        };
        loop {
            let used = self.buf.len();
            let at = used + usize::from(used > 0);
            self.buf.resize(at.max(self.max), 0);
            let written = match self.buf.get_mut(at..self.max) {
                Some(room) => statsd::write_line(self.dialect, &line, room),
                None => Err(LineError::NoRoom { needed: 1 }),
            };
            match written {
                Ok(n) => {
                    if used > 0 {
                        self.buf[used] = b'\n';
                    }
                    self.buf.truncate(at + n);
                    // Etsy StatsD writes several values as several lines.
                    let breaks = self.buf[at..].iter().filter(|&&b| b == b'\n').count();
                    self.pending += 1 + breaks as u64;
                    return Ok(());
                }
                Err(LineError::NoRoom { .. }) if used > 0 => {
                    // Full: send what is there and try again in a fresh one.
                    self.buf.truncate(used);
                    self.flush(send);
                }
                Err(LineError::NoRoom { .. }) if values.len() > 1 => {
                    self.buf.truncate(used);
                    let (first, second) = values.split_at(values.len() / 2);
                    let first = self.push(name, tags.clone(), kind, first, sample_rate, send);
                    let second = self.push(name, tags, kind, second, sample_rate, send);
                    return first.and(second);
                }
                Err(e) => {
                    self.buf.truncate(used);
                    return Err(e);
                }
            }
        }
    }

    /// Counter and gauge lines pushed from now on carry `timestamp` (Unix
    /// seconds, DogStatsD 1.3 `|T`), or none.
    pub fn set_timestamp(&mut self, timestamp: Option<u64>) {
        self.timestamp = timestamp;
    }

    /// Hands what is packed to `send`.
    pub fn flush(&mut self, send: &mut dyn FnMut(&[u8], u64)) {
        if !self.buf.is_empty() {
            send(&self.buf, self.pending);
        }
        self.buf.clear();
        self.pending = 0;
    }
}
