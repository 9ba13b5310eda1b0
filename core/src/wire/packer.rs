//! StatsD lines packed into datagrams: each line written in its dialect
//! and joined to the others by newlines up to the datagram size; a full
//! datagram handed on, a line of several values too long for one split.

use super::statsd::{self, Dialect, Line, LineError};
use crate::event::Kind;
use alloc::vec::Vec;

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
