//! StatsD lines as an [`Encoder`](crate::wire::Encoder)'s datagram
//! format: no header and no checksum, lines joined by newlines, a
//! timer's or histogram's next value joining its line.

use super::Dialect;
use super::write::{Line, LineError, SliceSink, put_millis, put_number, write_line};
use crate::event::{Event, KeyId, Kind};
use crate::registry::Key;
use crate::wire::encode::{Encoder, Format, PushError, Writer};

/// StatsD lines in a dialect, as an [`Encoder`]'s format:
/// no header and no checksum, lines joined by newlines.
pub(crate) struct LineFormat(pub(crate) Dialect);

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
pub(super) fn join_value(w: &mut Writer<'_>, event: &Event, end: usize) -> Result<(), PushError> {
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
