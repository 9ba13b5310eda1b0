//! A datagram's format, chosen by its codec: starting a datagram, and
//! handing each step of a [`Writer`] to the native format or to StatsD
//! lines. Adding a format is a [`Codec`] variant, a [`Format`]
//! implementation and an arm in `with_format!`.

use super::Codec;
use super::encode::{EncodeError, Encoder, Format, Native, PushError, Writer};
#[cfg(feature = "statsd")]
use super::statsd::LineFormat;
use crate::event::Event;
use crate::event::KeyId;
use crate::registry::Key;

/// Runs `$body` with `$f` bound to the format of `$codec`.
macro_rules! with_format {
    ($codec:expr, $f:ident => $body:expr) => {
        match $codec {
            Codec::Native => {
                let $f = Native;
                $body
            }
            #[cfg(feature = "statsd")]
            Codec::Statsd(dialect) => {
                let $f = LineFormat(dialect);
                $body
            }
        }
    };
}

impl Encoder {
    /// Starts a datagram in `buf` (at least `max_datagram` bytes) whose
    /// timestamps are relative to `base_timestamp`.
    pub fn begin<'b>(
        &'b mut self,
        buf: &'b mut [u8],
        base_timestamp: u64,
    ) -> Result<Writer<'b>, EncodeError> {
        // The sequence is consumed by `finish`: a datagram never finished
        // leaves no gap.
        let (buf, sequence) = self.claim(buf)?;
        let mut writer = Writer {
            encoder: self,
            buf,
            len: 0,
            count: 0,
            previous_timestamp: base_timestamp,
            sequence,
            #[cfg(feature = "statsd")]
            last_line: None,
        };
        with_format!(writer.encoder.config.codec, f => f.begin(&mut writer));
        Ok(writer)
    }
}

impl<'b> Writer<'b> {
    /// Bytes the datagram would have if finished now (CRC included).
    pub fn len(&self) -> usize {
        self.len + with_format!(self.encoder.config.codec, f => f.trailer_len())
    }

    /// Appends `event`. `key` looks up its metric's name and tags (for
    /// example `|id| registry.get(id)`); it is called only when the metric is
    /// new to this datagram. On error the datagram is left as it was.
    #[inline]
    pub fn push<'k>(
        &mut self,
        event: &Event,
        key: impl FnOnce(KeyId) -> Option<Key<'k>>,
    ) -> Result<(), PushError> {
        with_format!(self.encoder.config.codec, f => f.push(self, event, key))
    }

    /// Seals the datagram and returns it: the native format writes the
    /// event count and the CRC, and the datagram takes the next sequence
    /// number; StatsD lines are returned as they are.
    pub fn finish(mut self) -> &'b [u8] {
        let len = with_format!(self.encoder.config.codec, f => f.finish(&mut self));
        &self.buf[..len]
    }
}
