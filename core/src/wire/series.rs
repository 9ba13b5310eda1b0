//! Version 3 datagrams (and version 2, still read): cumulative series
//! totals (`WIRE.md`, "Version 3: series").
//!
//! Where a version 1 datagram carries events, a series datagram
//! carries, for each series it names, the totals since the sender started:
//! a counter's sum and count, a gauge's value and change count, a
//! distribution's bucket counts, unbucketed count, sum, minimum and
//! maximum. Each record supersedes the ones before it, so a lost,
//! duplicated or reordered datagram costs nothing once a later one
//! arrives. The header, key definitions and CRC are version 1's.

use super::encode::{Encoder, key_len, put_key};
use super::primitives::{MAX_VARINT, put_varint, put_varint_cold, varint_len, zigzag};
use super::records;
use super::{
    CRC_LEN, Codec, DecodeError, EncodeError, FIXED_HEADER_LEN, KIND_MASK, MAGIC, PushError,
    as_exact_int, crc32,
};
use crate::aggregate::{MAX_SHIFT, Snapshot, Totals};
use crate::event::{KeyId, Kind};
use crate::registry::Key;
use core::fmt;

/// The version byte of the series datagrams this crate writes: version 3,
/// whose bucket ids are exponential (`crate::aggregate::bucket_of`).
pub const SERIES_VERSION: u8 = 3;

/// The version byte of the series datagrams of earlier senders, still
/// read: bucket ids were log-linear (the top 16 bits of an `f64`), and are
/// converted as they are read ([`DecodedDistribution::buckets`]).
pub const SERIES_VERSION_2: u8 = 2;

/// The largest shift a version 2 record may carry.
const MAX_SHIFT_2: u32 = 12;

/// Meta byte of a series record: bits 0-1 kind, bits 2-5 the bucket
/// shift (distributions), bit 6 the value (gauge) or sum (distribution) as
/// a zigzag integer instead of an `f64`, bit 7 the minimum and maximum as
/// zigzag integers (distributions).
const SHIFT_SHIFT: u8 = 2;
const SHIFT_MASK: u8 = 0b0011_1100;
const INT_VALUE: u8 = 0b0100_0000;
const INT_EXTREMES: u8 = 0b1000_0000;

/// Where a series record finds its distribution's buckets: `(id >> shift,
/// count)` in ascending id order, each id once (as
/// [`Aggregates::buckets`](crate::Aggregates::buckets) gives them).
pub trait BucketSource {
    /// Calls `f` for each bucket at `shift`, in ascending id order.
    fn for_each(&self, shift: u32, f: &mut dyn FnMut(u16, u64));
}

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

// Decoding.

/// One series record read from a datagram, borrowing its name and tags.
#[derive(Clone, Debug)]
pub struct DecodedSeries<'a> {
    /// The metric's name.
    pub name: &'a str,
    tags: super::WireTags<'a>,
    /// The series' kind.
    pub kind: Kind,
    /// Index of the metric's key within this datagram.
    pub key_index: u8,
    /// The totals since the sender started.
    pub totals: DecodedTotals<'a>,
}

impl<'a> DecodedSeries<'a> {
    /// The metric's tags as (key, value) pairs.
    pub fn tags(&self) -> super::WireTags<'a> {
        self.tags.clone()
    }
}

/// The totals of a [`DecodedSeries`].
#[derive(Clone, Debug, PartialEq)]
pub enum DecodedTotals<'a> {
    /// A counter.
    Counter {
        /// The sum of every addition (wrapping `i64`).
        sum: i64,
        /// How many additions.
        count: u64,
    },
    /// A gauge.
    Gauge {
        /// Its value.
        value: f64,
        /// How many times it was set or moved.
        changes: u64,
    },
    /// A timer's or histogram's distribution.
    Distribution(DecodedDistribution<'a>),
}

/// A distribution as a series record carries it.
#[derive(Clone, Debug, PartialEq)]
pub struct DecodedDistribution<'a> {
    /// Values recorded: the bucket counts plus `unbucketed`.
    pub count: u64,
    /// Their sum.
    pub sum: f64,
    /// The smallest (positive infinity when empty).
    pub min: f64,
    /// The largest (negative infinity when empty).
    pub max: f64,
    /// Values the sender counted without a bucket.
    pub unbucketed: u64,
    /// The bucket ids' shift (see [`crate::aggregate::bucket_range`]);
    /// 0 for a version 2 record, whose ids are converted to shift 0.
    pub shift: u32,
    /// The encoded bucket list, checked.
    list: &'a [u8],
    /// A version 2 record's shift, and whether it is a timer's.
    version_2: Option<(u32, bool)>,
}

impl<'a> DecodedDistribution<'a> {
    /// The buckets as `(id, count)` at [`DecodedDistribution::shift`]: in
    /// ascending id order, each once, from a version 3 record; from a
    /// version 2 one, each old bucket's count in the bucket of its
    /// midpoint (an id may then come more than once, out of order: add
    /// them up), so counts are exact and placed within the old buckets'
    /// 3.1%.
    pub fn buckets(&self) -> DecodedBuckets<'a> {
        DecodedBuckets {
            rest: self.list,
            previous: None,
            version_2: self.version_2,
        }
    }
}

/// Iterator over a [`DecodedDistribution`]'s buckets.
#[derive(Clone, Debug)]
pub struct DecodedBuckets<'a> {
    rest: &'a [u8],
    previous: Option<u16>,
    version_2: Option<(u32, bool)>,
}

/// The bucket (at shift 0) of the midpoint of version 2's bucket `id` at
/// `shift`: magnitudes from the `f64` of bits `(id << shift & 0x7FFF) << 48`
/// to the next id's, negative when bit 15 is set; a timer's in
/// nanoseconds.
fn version_2_bucket(id: u16, shift: u32, timer: bool) -> u16 {
    let first = u32::from(id) << shift;
    let magnitude = |i: u32| f64::from_bits(u64::from(i & 0x7FFF) << 48);
    let last = first + (1 << shift) - 1;
    let high = if last & 0x7FFF >= 0x7FEF {
        f64::MAX
    } else {
        magnitude(last + 1)
    };
    let low = magnitude(first);
    let mid = low + (high - low) / 2.0;
    let value = if first & 0x8000 != 0 { -mid } else { mid };
    if timer {
        crate::aggregate::timer_bucket_of(value)
    } else {
        crate::aggregate::bucket_of(value)
    }
}

impl Iterator for DecodedBuckets<'_> {
    type Item = (u16, u64);

    fn next(&mut self) -> Option<(u16, u64)> {
        // Checked when the record was read: these reads cannot fail.
        let (step, rest) = super::primitives::take_u64(self.rest).ok()?;
        if step == 0 {
            return None;
        }
        let (count, rest) = super::primitives::take_u64(rest).ok()?;
        self.rest = rest;
        let id = match self.previous {
            None => step - 1,
            Some(p) => u64::from(p) + step,
        } as u16;
        self.previous = Some(id);
        match self.version_2 {
            None => Some((id, count)),
            Some((shift, timer)) => Some((version_2_bucket(id, shift, timer), count)),
        }
    }
}

/// Iterator over a series datagram's records. After the first error it
/// yields that error and then ends.
pub struct SeriesIter<'a> {
    /// The datagram's version ([`SERIES_VERSION`] or [`SERIES_VERSION_2`]).
    pub(super) version: u8,
    pub(super) rest: &'a [u8],
    pub(super) keys:
        heapless::Vec<super::key_definition::KeyEntry<'a>, { super::MAX_KEYS_PER_DATAGRAM }>,
    pub(super) left: u16,
    pub(super) failed: bool,
}

impl fmt::Debug for SeriesIter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SeriesIter")
            .field("left", &self.left)
            .finish_non_exhaustive()
    }
}

impl<'a> SeriesIter<'a> {
    fn next_series(&mut self) -> Result<DecodedSeries<'a>, DecodeError> {
        use super::primitives::{take_f64, take_i64, take_u32, take_u64};
        let (index, rest) = take_u32(self.rest)?;
        let (key, rest) = super::key_definition::take_key(&mut self.keys, index, rest)?;
        let (&meta, rest) = rest.split_first().ok_or(DecodeError::Truncated)?;
        let bad = DecodeError::BadMeta { meta };
        let kind = Kind::from_code(meta & KIND_MASK).ok_or(bad)?;
        let shift = u32::from((meta & SHIFT_MASK) >> SHIFT_SHIFT);
        let value = |int: bool, rest: &'a [u8]| -> Result<(f64, &'a [u8]), DecodeError> {
            if int {
                let (i, rest) = take_i64(rest)?;
                Ok((i as f64, rest))
            } else {
                take_f64(rest)
            }
        };
        let (totals, rest) = match kind {
            Kind::Counter => {
                if meta & !KIND_MASK != 0 {
                    return Err(bad);
                }
                let (sum, rest) = take_i64(rest)?;
                let (count, rest) = take_u64(rest)?;
                (DecodedTotals::Counter { sum, count }, rest)
            }
            Kind::Gauge => {
                if meta & (SHIFT_MASK | INT_EXTREMES) != 0 {
                    return Err(bad);
                }
                let (v, rest) = value(meta & INT_VALUE != 0, rest)?;
                let (changes, rest) = take_u64(rest)?;
                (DecodedTotals::Gauge { value: v, changes }, rest)
            }
            Kind::Timer | Kind::Histogram => {
                let version_2 = self.version == SERIES_VERSION_2;
                if shift > if version_2 { MAX_SHIFT_2 } else { MAX_SHIFT } {
                    return Err(bad);
                }
                let top = u64::from(u16::MAX >> shift);
                let start = rest;
                let mut rest = rest;
                let mut previous: Option<u64> = None;
                let mut bucketed: u64 = 0;
                loop {
                    let (step, r) = take_u64(rest)?;
                    rest = r;
                    if step == 0 {
                        break;
                    }
                    let (count, r) = take_u64(rest)?;
                    rest = r;
                    let id = match previous {
                        None => step - 1,
                        Some(p) => p.checked_add(step).ok_or(DecodeError::BadBuckets)?,
                    };
                    if id > top || count == 0 {
                        return Err(DecodeError::BadBuckets);
                    }
                    bucketed = bucketed.checked_add(count).ok_or(DecodeError::BadBuckets)?;
                    previous = Some(id);
                }
                let list = &start[..start.len() - rest.len()];
                let (unbucketed, rest) = take_u64(rest)?;
                let (sum, rest) = value(meta & INT_VALUE != 0, rest)?;
                let (min, max, rest) = if meta & INT_EXTREMES != 0 {
                    let (lo, rest) = take_i64(rest)?;
                    let (hi, rest) = take_i64(rest)?;
                    (lo as f64, hi as f64, rest)
                } else {
                    let (lo, rest) = take_f64(rest)?;
                    let (hi, rest) = take_f64(rest)?;
                    (lo, hi, rest)
                };
                let count = bucketed
                    .checked_add(unbucketed)
                    .ok_or(DecodeError::BadBuckets)?;
                (
                    DecodedTotals::Distribution(DecodedDistribution {
                        count,
                        sum,
                        min,
                        max,
                        unbucketed,
                        shift: if version_2 { 0 } else { shift },
                        list,
                        version_2: version_2.then_some((shift, kind == Kind::Timer)),
                    }),
                    rest,
                )
            }
        };
        self.rest = rest;
        Ok(DecodedSeries {
            name: key.name,
            tags: key.tags(),
            kind,
            key_index: index as u8,
            totals,
        })
    }
}

impl<'a> Iterator for SeriesIter<'a> {
    type Item = Result<DecodedSeries<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(instead) = records::before_record(&mut self.left, &mut self.failed, self.rest) {
            return instead;
        }
        let series = self.next_series();
        self.failed = series.is_err();
        Some(series)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        records::size_hint(self.left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::{Aggregates, AggregatesConfig, SeriesBuckets, Shard, Word, bucket_of};
    use crate::registry::Registry;
    use crate::wire::{DEFAULT_MAX_DATAGRAM, EncoderConfig, MIN_DATAGRAM, decode};
    use std::boxed::Box;
    use std::string::{String, ToString};
    use std::vec;
    use std::vec::Vec;

    type Table = Aggregates<Box<[Word]>>;

    struct Setup {
        registry: Registry<64, 16384>,
        tables: Table,
    }

    fn setup() -> Setup {
        setup_with(AggregatesConfig::new(64, 2))
    }

    fn setup_with(config: AggregatesConfig) -> Setup {
        let words: Box<[Word]> = (0..config.fixed_words() + (1 << 16))
            .map(|_| Word::new())
            .collect();
        Setup {
            registry: Registry::new(),
            tables: Aggregates::with_storage(words, config).unwrap(),
        }
    }

    /// What a decoded record says, owned.
    #[derive(Debug, PartialEq)]
    struct Plain {
        name: String,
        tags: Vec<(String, String)>,
        kind: Kind,
        totals: PlainTotals,
    }

    #[derive(Debug, PartialEq)]
    enum PlainTotals {
        Counter(i64, u64),
        Gauge(u64, u64),
        Distribution {
            count: u64,
            sum: u64,
            min: u64,
            max: u64,
            unbucketed: u64,
            shift: u32,
            buckets: Vec<(u16, u64)>,
        },
    }

    fn plain(s: &DecodedSeries<'_>) -> Plain {
        Plain {
            name: s.name.to_string(),
            tags: s
                .tags()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            kind: s.kind,
            totals: match &s.totals {
                DecodedTotals::Counter { sum, count } => PlainTotals::Counter(*sum, *count),
                DecodedTotals::Gauge { value, changes } => {
                    PlainTotals::Gauge(value.to_bits(), *changes)
                }
                DecodedTotals::Distribution(d) => PlainTotals::Distribution {
                    count: d.count,
                    sum: d.sum.to_bits(),
                    min: d.min.to_bits(),
                    max: d.max.to_bits(),
                    unbucketed: d.unbucketed,
                    shift: d.shift,
                    buckets: d.buckets().collect(),
                },
            },
        }
    }

    /// Every series of the table, packed into datagrams of `max` bytes.
    fn pack(s: &Setup, max: usize) -> (Vec<Vec<u8>>, usize) {
        let mut enc = Encoder::new(EncoderConfig::new(0xABCD).with_max_datagram(max)).unwrap();
        let mut buf = vec![0u8; max];
        let mut out = Vec::new();
        let mut refused = 0;
        let mut next = 0;
        let len = s.tables.len();
        while next < len {
            let mut w = enc.begin_series(&mut buf, 2_000, 1_000).unwrap();
            while next < len {
                let id = s.tables.series_at(next).unwrap();
                let snapshot = s.tables.snapshot(id).unwrap();
                let buckets = SeriesBuckets {
                    tables: &s.tables,
                    series: id,
                };
                match w.push(&snapshot, &buckets, |k| s.registry.get(k)) {
                    Ok(()) => next += 1,
                    Err(PushError::Full) => break,
                    Err(_) => {
                        refused += 1;
                        next += 1;
                    }
                }
            }
            if !w.is_empty() {
                out.push(w.finish().to_vec());
            }
        }
        (out, refused)
    }

    fn unpack(datagrams: &[Vec<u8>]) -> Vec<Plain> {
        let mut out = Vec::new();
        for d in datagrams {
            let dg = decode(d).unwrap();
            assert!(dg.is_series());
            assert_eq!(
                (dg.header.base_timestamp, dg.header.started),
                (2_000, 1_000)
            );
            for s in dg.series() {
                out.push(plain(&s.unwrap()));
            }
        }
        out
    }

    fn expected(s: &Setup) -> Vec<Plain> {
        (0..s.tables.len())
            .map(|i| {
                let id = s.tables.series_at(i).unwrap();
                let snap = s.tables.snapshot(id).unwrap();
                let key = s.registry.get(snap.key).unwrap();
                Plain {
                    name: key.name().to_string(),
                    tags: key
                        .tags()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                    kind: snap.kind,
                    totals: match snap.value {
                        Totals::Counter { sum, count } => PlainTotals::Counter(sum, count),
                        Totals::Gauge { value } => {
                            PlainTotals::Gauge(value.to_bits(), snap.changes)
                        }
                        Totals::Distribution {
                            count,
                            sum,
                            min,
                            max,
                            unbucketed,
                        } => PlainTotals::Distribution {
                            count,
                            sum: sum.to_bits(),
                            min: min.to_bits(),
                            max: max.to_bits(),
                            unbucketed,
                            shift: 0,
                            buckets: s.tables.buckets(id, 0).collect(),
                        },
                    },
                }
            })
            .collect()
    }

    #[test]
    fn every_kind_round_trips_through_series_datagrams() {
        let mut s = setup();
        let req = s
            .registry
            .register("http.requests", &[("route", "/")])
            .unwrap();
        let depth = s.registry.register("queue.depth", &[]).unwrap();
        let lat = s.registry.register("db.query", &[("table", "t")]).unwrap();
        let size = s.registry.register("payload", &[]).unwrap();
        let empty = s.registry.register("never", &[]).unwrap();
        let t = &s.tables;
        let c = t.insert(req, Kind::Counter).unwrap();
        let c2 = t.insert(req, Kind::Gauge).unwrap(); // the same key as two kinds
        let g = t.insert(depth, Kind::Gauge).unwrap();
        let d = t.insert(lat, Kind::Timer).unwrap();
        let h = t.insert(size, Kind::Histogram).unwrap();
        t.insert(empty, Kind::Histogram).unwrap();
        let mut shard = Shard::claim(t).unwrap();
        shard.add(c, -5);
        shard.add(c, i64::MAX);
        t.set(c2, 0.25);
        shard.set(g, 42.0);
        shard.change(g, -0.5);
        for v in 0..500u32 {
            shard.record(d, f64::from(v * 1_000)).unwrap();
            t.record(h, f64::from(v) * 0.1 - 3.0).unwrap();
        }
        let (dgs, refused) = pack(&s, DEFAULT_MAX_DATAGRAM);
        assert_eq!(refused, 0);
        let got = unpack(&dgs);
        assert_eq!(got, expected(&s));
        assert_eq!(got.len(), 6);
        // Integers travel as varints: the timer's sum, min and max.
        let PlainTotals::Distribution { min, max, .. } = &got[3].totals else {
            panic!()
        };
        assert_eq!(
            (f64::from_bits(*min), f64::from_bits(*max)),
            (0.0, 499_000.0)
        );
    }

    #[test]
    fn a_distribution_too_wide_for_a_datagram_goes_coarser_and_keeps_its_count() {
        let mut s = setup_with(AggregatesConfig::new(4, 1).with_buckets(64, 4096));
        let k = s.registry.register("wide", &[]).unwrap();
        let d = s.tables.insert(k, Kind::Histogram).unwrap();
        // About 900 distinct buckets over 60 powers of two.
        let mut x = 1.0f64;
        let mut n = 0u64;
        while x < 1e18 {
            s.tables.record(d, x).unwrap();
            x *= 1.05;
            n += 1;
        }
        let full: Vec<_> = s.tables.buckets(d, 0).collect();
        assert!(full.len() > 300);
        let (dgs, refused) = pack(&s, MIN_DATAGRAM);
        assert_eq!((dgs.len(), refused), (1, 0));
        let got = unpack(&dgs);
        let PlainTotals::Distribution {
            count,
            shift,
            buckets,
            unbucketed,
            ..
        } = &got[0].totals
        else {
            panic!()
        };
        assert!(*shift > 0);
        let snap = s.tables.snapshot(d).unwrap();
        std::println!(
            "{snap:?} n {n} full {} at shift {}",
            full.len(),
            s.tables.buckets(d, *shift).map(|b| b.1).sum::<u64>()
        );
        assert_eq!((*count, *unbucketed), (n, 0));
        assert_eq!(buckets.iter().map(|b| b.1).sum::<u64>(), n);
        let coarse: Vec<_> = s.tables.buckets(d, *shift).collect();
        assert_eq!(buckets, &coarse);
    }

    #[test]
    fn a_key_too_large_for_any_datagram_is_refused_with_its_size() {
        let mut s = setup();
        let long = "v".repeat(255);
        let tags = [("t", long.as_str()), ("u", &long), ("w", &long)];
        let big = s.registry.register(&"n".repeat(255), &tags).unwrap();
        let small = s.registry.register("ok", &[]).unwrap();
        s.tables.insert(big, Kind::Counter).unwrap();
        s.tables.insert(small, Kind::Counter).unwrap();
        let mut enc = Encoder::new(EncoderConfig::new(1).with_max_datagram(MIN_DATAGRAM)).unwrap();
        let mut buf = vec![0u8; MIN_DATAGRAM];
        let mut w = enc.begin_series(&mut buf, 0, 0).unwrap();
        let snap = s.tables.snapshot(s.tables.series_at(0).unwrap()).unwrap();
        let none = SeriesBuckets {
            tables: &s.tables,
            series: s.tables.series_at(0).unwrap(),
        };
        match w.push(&snap, &none, |k| s.registry.get(k)) {
            Err(PushError::Oversized {
                needed,
                max_datagram,
            }) => {
                assert!(needed > max_datagram);
            }
            other => panic!("{other:?}"),
        }
        let snap = s.tables.snapshot(s.tables.series_at(1).unwrap()).unwrap();
        w.push(&snap, &none, |k| s.registry.get(k)).unwrap();
        let d = w.finish().to_vec();
        assert_eq!(enc.refused(), 1);
        let names: Vec<_> = decode(&d)
            .unwrap()
            .series()
            .map(|r| r.unwrap().name.to_string())
            .collect();
        assert_eq!(names, ["ok"]);
    }

    /// The series example of `WIRE.md`, byte for byte, read from the
    /// document: if this test fails, the document and the code disagree.
    #[test]
    fn the_documented_series_datagram() {
        let mut s = setup();
        let req = s
            .registry
            .register("http.requests", &[("route", "/api")])
            .unwrap();
        let depth = s.registry.register("queue.depth", &[]).unwrap();
        let lat = s.registry.register("latency", &[]).unwrap();
        let t = &s.tables;
        let c = t.insert(req, Kind::Counter).unwrap();
        let g = t.insert(depth, Kind::Gauge).unwrap();
        let h = t.insert(lat, Kind::Histogram).unwrap();
        t.add(c, 1);
        t.add(c, 2);
        for v in [40.0, 45.0, 42.0] {
            t.set(g, v);
        }
        for v in [1.0, 1.5, 3.0] {
            t.record(h, v).unwrap();
        }
        let mut enc = Encoder::new(EncoderConfig::new(0x0123_4567_89AB_CDEF)).unwrap();
        let mut buf = [0u8; DEFAULT_MAX_DATAGRAM];
        for _ in 0..8 {
            enc.begin(&mut buf, 0).unwrap().finish(); // datagrams 0 to 7
        }
        let started = 1_700_000_000_000_000_000;
        let mut w = enc
            .begin_series(&mut buf, started + 1_000_000_000, started)
            .unwrap();
        for series in [c, g, h] {
            let buckets = SeriesBuckets { tables: t, series };
            w.push(&t.snapshot(series).unwrap(), &buckets, |k| {
                s.registry.get(k)
            })
            .unwrap();
        }
        let d = w.finish();
        let shown: Vec<String> = d.iter().map(|b| std::format!("{b:02x}")).collect();
        let documented = crate::wire::worked_example::documented("series (version 3)");
        assert_eq!(d, documented.as_slice(), "actual: {}", shown.concat());
        let dg = decode(d).unwrap();
        assert_eq!((dg.header.sequence, dg.header.started), (8, started));
        let got: Vec<_> = dg.series().map(|r| plain(&r.unwrap())).collect();
        assert_eq!(got, expected(&s));
        assert_eq!(
            got[2].totals,
            PlainTotals::Distribution {
                count: 3,
                sum: 5.5f64.to_bits(),
                min: 1.0f64.to_bits(),
                max: 3.0f64.to_bits(),
                unbucketed: 0,
                shift: 0,
                buckets: vec![(0x3FFF, 1), (0x4009, 1), (0x4019, 1)],
            }
        );
    }

    /// Builds a series datagram from raw fields with a valid CRC.
    fn forge(count: u16, body: &[u8]) -> Vec<u8> {
        let mut d = Vec::new();
        d.extend_from_slice(&MAGIC);
        d.extend_from_slice(&[SERIES_VERSION, 0]);
        d.extend_from_slice(&count.to_le_bytes());
        d.extend_from_slice(&7u64.to_le_bytes());
        d.extend_from_slice(&[0, 0, 0]); // sequence, timestamp, started
        d.extend_from_slice(body);
        let crc = crc32(&d);
        d.extend_from_slice(&crc.to_le_bytes());
        d
    }

    fn first_error(d: &[u8]) -> DecodeError {
        match decode(d) {
            Err(e) => e,
            Ok(dg) => dg.series().find_map(Result::err).expect("no error"),
        }
    }

    #[test]
    fn each_malformed_record_has_its_error() {
        // key 0 "a", no tags; histogram, int sum and extremes
        let key = [0u8, 1, b'a', 0];
        let hist = |list: &[u8]| {
            let mut b = key.to_vec();
            b.push(3 | INT_VALUE | INT_EXTREMES);
            b.extend_from_slice(list);
            b.extend_from_slice(&[0, 2, 2, 2]); // unbucketed 0, sum 1, min 1, max 1
            b
        };
        let mut list = [0u8; 4];
        let mut at = 0;
        put_varint(&mut list, &mut at, u64::from(bucket_of(1.0)) + 1).unwrap();
        let ok_list = [&list[..at], &[1, 0]].concat();
        let ok = forge(1, &hist(&ok_list));
        let record = decode(&ok).unwrap().series().next().unwrap().unwrap();
        let DecodedTotals::Distribution(dist) = record.totals else {
            panic!()
        };
        assert_eq!(dist.count, 1);
        // A zero count, a step past the top, ids overflowing.
        assert_eq!(
            first_error(&forge(1, &hist(&[1, 0, 0]))),
            DecodeError::BadBuckets
        );
        assert_eq!(
            first_error(&forge(1, &hist(&[0x81, 0x80, 0x04, 1, 0]))),
            DecodeError::BadBuckets
        );
        // Meta bits that do not belong to the kind.
        let mut counter = key.to_vec();
        counter.extend_from_slice(&[INT_VALUE, 2, 1]);
        assert_eq!(
            first_error(&forge(1, &counter)),
            DecodeError::BadMeta { meta: INT_VALUE }
        );
        let mut gauge = key.to_vec();
        gauge.extend_from_slice(&[1 | 4, 2, 1]);
        assert_eq!(
            first_error(&forge(1, &gauge)),
            DecodeError::BadMeta { meta: 5 }
        );
        // A shift beyond the largest.
        let mut shifted = key.to_vec();
        shifted.extend_from_slice(&[3 | 13 << 2, 0, 0, 0, 0, 0]);
        assert!(matches!(
            first_error(&forge(1, &shifted)),
            DecodeError::BadMeta { .. }
        ));
        // Truncated and trailing.
        assert_eq!(first_error(&forge(2, &hist(&[0]))), DecodeError::Truncated);
        let mut extra = hist(&[0]);
        extra.extend_from_slice(&[9, 9, 9, 9]);
        assert_eq!(
            first_error(&forge(1, &extra)),
            DecodeError::TrailingBytes { len: 4 }
        );
        // Each body asked of the other version is refused.
        assert!(matches!(
            decode(&ok).unwrap().events().next(),
            Some(Err(DecodeError::WrongBody { version: 3 }))
        ));
        // Version 3 takes shifts up to 8; version 2 took up to 12.
        let mut nine = key.to_vec();
        nine.extend_from_slice(&[3 | 9 << 2 | INT_VALUE | INT_EXTREMES, 0, 0, 0, 0, 0]);
        assert!(matches!(
            first_error(&forge(1, &nine)),
            DecodeError::BadMeta { .. }
        ));
        let mut old = forge(1, &nine);
        old[2] = SERIES_VERSION_2;
        let crc = crc32(&old[..old.len() - 4]);
        let at = old.len() - 4;
        old[at..].copy_from_slice(&crc.to_le_bytes());
        assert!(decode(&old).unwrap().series().all(|r| r.is_ok()));
    }

    /// A version 2 record's buckets (log-linear ids, the top 16 bits of
    /// an `f64`) come out as the buckets of their midpoints, a timer's in
    /// seconds; counts, sum and extremes as sent.
    #[test]
    fn version_2_buckets_are_read_as_the_buckets_of_their_midpoints() {
        let old_id = |v: f64| (v.to_bits() >> 48) as u16;
        let record = |kind: u8, ids: &[(u16, u64)]| {
            let mut b = std::vec![0u8, 1, b'a', 0, kind | INT_VALUE | INT_EXTREMES];
            let mut list = [0u8; 64];
            let mut at = 0;
            let mut previous = None;
            for &(id, count) in ids {
                let step = previous.map_or(u64::from(id) + 1, |p: u16| u64::from(id - p));
                put_varint(&mut list, &mut at, step).unwrap();
                put_varint(&mut list, &mut at, count).unwrap();
                previous = Some(id);
            }
            b.extend_from_slice(&list[..at]);
            b.extend_from_slice(&[0, 0, 2, 2, 2]); // end, unbucketed 0, sum 1, min 1, max 1
            let mut d = forge(1, &b);
            d[2] = SERIES_VERSION_2;
            let at = d.len() - 4;
            let crc = crc32(&d[..at]);
            d[at..].copy_from_slice(&crc.to_le_bytes());
            d
        };
        let read = |d: &[u8]| -> Vec<(u16, u64)> {
            let dg = decode(d).unwrap();
            let series = dg.series().next().unwrap().unwrap();
            match series.totals {
                DecodedTotals::Distribution(d) => {
                    assert_eq!(d.shift, 0);
                    d.buckets().collect()
                }
                other => panic!("{other:?}"),
            }
        };
        // Histogram: 1.0 (old bucket [1, 1.0625)) and 100.
        let got = read(&record(3, &[(old_id(1.0), 2), (old_id(100.0), 5)]));
        assert_eq!(got, [(bucket_of(1.03125), 2), (bucket_of(100.0 + 2.0), 5)]);
        // Timer: 2 ms in nanoseconds, bucketed in seconds.
        let ns = 2_000_000.0;
        let got = read(&record(2, &[(old_id(ns), 1)]));
        let (low, high, _) = crate::aggregate::bucket_range(got[0].0, 0);
        assert!(low < 0.002 * 1.04 && high > 0.002 * 0.96, "{low} {high}");
    }

    #[test]
    fn every_single_bit_flip_of_a_series_datagram_is_rejected() {
        let mut s = setup();
        let k = s.registry.register("k", &[("a", "b")]).unwrap();
        let c = s.tables.insert(k, Kind::Counter).unwrap();
        let d = s.tables.insert(k, Kind::Timer).unwrap();
        s.tables.add(c, 3);
        s.tables.record(d, 1.5).unwrap();
        let dg = pack(&s, DEFAULT_MAX_DATAGRAM).0.remove(0);
        for bit in 0..dg.len() * 8 {
            let mut bad = dg.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(decode(&bad).is_err(), "flip of bit {bit} accepted");
        }
    }
}
