//! Writing series records: [`SeriesWriter`], from an [`Encoder`]'s
//! `begin_series`.

use super::{BucketSource, INT_EXTREMES, INT_VALUE, SERIES_VERSION, SHIFT_SHIFT};
use crate::aggregate::{MAX_SHIFT, Snapshot, Totals};
use crate::event::KeyId;
use crate::registry::Key;
use crate::wire::encode::{Encoder, key_len, put_key};
use crate::wire::primitives::{MAX_VARINT, put_varint, put_varint_cold, varint_len, zigzag};
use crate::wire::{
    CRC_LEN, Codec, EncodeError, FIXED_HEADER_LEN, MAGIC, PushError, as_exact_int, crc32,
};
use core::fmt;

/// Bytes written into a buffer as long as they fit; past its end they are
/// only counted, so the length a record would need is known either way.
struct Out<'b> {
    buf: &'b mut [u8],
    at: usize,
    /// Bytes that did not fit.
    over: usize,
}

impl Out<'_> {
    fn varint(&mut self, v: u64) {
        if self.over > 0 || put_varint(self.buf, &mut self.at, v).is_none() {
            self.over += varint_len(v);
        }
    }

    fn bytes(&mut self, bytes: &[u8]) {
        match self.buf.get_mut(self.at..self.at + bytes.len()) {
            Some(dst) if self.over == 0 => {
                dst.copy_from_slice(bytes);
                self.at += bytes.len();
            }
            _ => self.over += bytes.len(),
        }
    }

    /// A value: a zigzag integer when `int`, else 8 bytes of `f64`.
    fn value(&mut self, v: f64, int: Option<i64>) {
        match int {
            Some(i) => self.varint(zigzag(i)),
            None => self.bytes(&v.to_le_bytes()),
        }
    }

    fn len(&self) -> usize {
        self.at + self.over
    }
}

/// One series datagram being filled. [`SeriesWriter::finish`] seals it.
pub struct SeriesWriter<'b> {
    encoder: &'b mut Encoder,
    buf: &'b mut [u8],
    len: usize,
    count: u16,
    sequence: u64,
}

impl fmt::Debug for SeriesWriter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SeriesWriter")
            .field("len", &self.len)
            .field("series", &self.count)
            .finish_non_exhaustive()
    }
}

impl Encoder {
    /// Starts a series datagram in `buf` (at least `max_datagram` bytes)
    /// carrying totals read at `timestamp` that have accumulated since
    /// `started` (both nanoseconds since the Unix epoch on the sender's
    /// clock). Only the binary codec has series datagrams.
    pub fn begin_series<'b>(
        &'b mut self,
        buf: &'b mut [u8],
        timestamp: u64,
        started: u64,
    ) -> Result<SeriesWriter<'b>, EncodeError> {
        let (buf, sequence) = self.claim(buf)?;
        buf[..2].copy_from_slice(&MAGIC);
        buf[2] = SERIES_VERSION;
        buf[3] = 0;
        buf[4..6].copy_from_slice(&0u16.to_le_bytes());
        buf[6..14].copy_from_slice(&self.config.sender_id.to_le_bytes());
        let mut len = FIXED_HEADER_LEN;
        // Cannot fail: 14 + 3 × 10 bytes fit any datagram of 512 or more.
        let header = put_varint_cold(buf, &mut len, sequence)
            .and_then(|()| put_varint_cold(buf, &mut len, timestamp))
            .and_then(|()| put_varint_cold(buf, &mut len, started));
        debug_assert!(header.is_some());
        Ok(SeriesWriter {
            encoder: self,
            buf,
            len,
            count: 0,
            sequence,
        })
    }
}

impl<'b> SeriesWriter<'b> {
    /// Series in the datagram so far.
    pub fn series(&self) -> usize {
        usize::from(self.count)
    }

    /// Whether no series has been pushed.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes the datagram would have if finished now (CRC included).
    pub fn len(&self) -> usize {
        self.len + CRC_LEN
    }

    /// Appends the totals of `snapshot` (a distribution's buckets from
    /// `buckets`; ignored for other kinds). `key` looks up the metric's
    /// name and tags when the key is new to this datagram. A distribution
    /// with more buckets than the room left goes at a coarser shift
    /// (neighbouring buckets merged) rather than not at all, once the
    /// datagram holds nothing else. On error the datagram is as it was.
    pub fn push<'k>(
        &mut self,
        snapshot: &Snapshot,
        buckets: &dyn BucketSource,
        key: impl FnOnce(KeyId) -> Option<Key<'k>>,
    ) -> Result<(), PushError> {
        if self.encoder.config.codec != Codec::Native {
            return Err(PushError::UnknownKey);
        }
        if self.count == u16::MAX {
            return Err(PushError::Full);
        }
        let keys_before = self.encoder.keys;
        let Some((index, new)) = self.encoder.key_index(snapshot.key) else {
            return Err(PushError::Full);
        };
        let definition = if new {
            match key(snapshot.key) {
                Some(k) => Some(k),
                None => {
                    self.encoder.forget_keys_from(keys_before);
                    self.encoder.refused += 1;
                    return Err(PushError::UnknownKey);
                }
            }
        } else {
            None
        };
        let limit = self.buf.len() - CRC_LEN;
        let mut shift = 0;
        loop {
            let mut out = Out {
                buf: &mut self.buf[..limit],
                at: self.len,
                over: 0,
            };
            out.varint(index as u64);
            if let Some(k) = &definition {
                match out.buf.get_mut(out.at..) {
                    Some(rest) if out.over == 0 && key_len(k) <= rest.len() => {
                        let mut at = 0;
                        let _ = put_key(rest, &mut at, k);
                        out.at += at;
                    }
                    _ => out.over += key_len(k),
                }
            }
            write_totals(&mut out, snapshot, buckets, shift);
            if out.over == 0 {
                self.len = out.at;
                self.count += 1;
                return Ok(());
            }
            let needed = out.len() - self.len;
            let is_distribution = matches!(snapshot.value, Totals::Distribution { .. });
            if self.count > 0 {
                // Let the next datagram try it whole.
                self.encoder.forget_keys_from(keys_before);
                return Err(PushError::Full);
            }
            if !is_distribution || shift == MAX_SHIFT {
                self.encoder.forget_keys_from(keys_before);
                self.encoder.refused += 1;
                let header = FIXED_HEADER_LEN + 3 * MAX_VARINT + CRC_LEN;
                return Err(PushError::Oversized {
                    needed: header + needed,
                    max_datagram: self.buf.len(),
                });
            }
            shift += 1;
        }
    }

    /// Writes the series count and the CRC and returns the datagram, which
    /// takes the next sequence number.
    pub fn finish(self) -> &'b [u8] {
        let SeriesWriter {
            encoder,
            buf,
            len,
            count,
            sequence,
        } = self;
        encoder.next_sequence = sequence.wrapping_add(1);
        buf[4..6].copy_from_slice(&count.to_le_bytes());
        let crc = crc32(&buf[..len]);
        buf[len..len + CRC_LEN].copy_from_slice(&crc.to_le_bytes());
        &buf[..len + CRC_LEN]
    }
}

/// The meta byte and payload of `snapshot` at `shift`.
fn write_totals(out: &mut Out<'_>, snapshot: &Snapshot, buckets: &dyn BucketSource, shift: u32) {
    let kind = snapshot.kind as u8;
    match snapshot.value {
        Totals::Counter { sum, count } => {
            out.bytes(&[kind]);
            out.varint(zigzag(sum));
            out.varint(count);
        }
        Totals::Gauge { value } => {
            let int = as_exact_int(value);
            out.bytes(&[kind | if int.is_some() { INT_VALUE } else { 0 }]);
            out.value(value, int);
            out.varint(snapshot.changes);
        }
        Totals::Distribution {
            sum,
            min,
            max,
            unbucketed,
            ..
        } => {
            let int_sum = as_exact_int(sum);
            let extremes = as_exact_int(min).zip(as_exact_int(max));
            let meta = kind
                | (shift as u8) << SHIFT_SHIFT
                | if int_sum.is_some() { INT_VALUE } else { 0 }
                | if extremes.is_some() { INT_EXTREMES } else { 0 };
            out.bytes(&[meta]);
            let mut previous: Option<u16> = None;
            buckets.for_each(shift, &mut |id, count| {
                // First id + 1, then each id's step up from the one before
                // (at least 1); a 0 ends the list.
                let step = match previous {
                    None => u64::from(id) + 1,
                    Some(p) => u64::from(id.wrapping_sub(p)),
                };
                previous = Some(id);
                out.varint(step);
                out.varint(count);
            });
            out.varint(0);
            out.varint(unbucketed);
            out.value(sum, int_sum);
            match extremes {
                Some((lo, hi)) => {
                    out.varint(zigzag(lo));
                    out.varint(zigzag(hi));
                }
                None => {
                    out.bytes(&min.to_le_bytes());
                    out.bytes(&max.to_le_bytes());
                }
            }
        }
    }
}
