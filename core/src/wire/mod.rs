//! The datagram format: self-contained, checksummed batches of events.
//!
//! `WIRE.md` at the repository root specifies the format byte for byte; this
//! module is its reference implementation. In short:
//!
//! ```text
//! header   magic "ST" | version 1 | flags 0 | event count (u16 LE) | sender id (u64 LE)
//!          | sequence (varint) | base timestamp (varint)
//! events   key index (varint) [key definition on first use] | meta byte
//!          | timestamp delta (zigzag varint) | value (zigzag varint or f64 LE)
//! trailer  CRC-32/ISO-HDLC of everything before it (u32 LE)
//! ```
//!
//! Fields use postcard's encodings (LEB128 varints, zigzag for signed, `f64`
//! as 8 bytes little-endian, strings length-prefixed), implemented once in
//! `primitives.rs` and held byte for byte to the `postcard` crate by tests. Every datagram decodes
//! on its own: the first event that uses a metric carries its name and tags,
//! later ones refer to it by index, so a lost datagram loses only its own
//! events.
//!
//! * [`Encoder`] packs events into caller-supplied buffers through a [`Writer`].
//! * [`decode`] checks a datagram and iterates its events without allocating;
//!   any byte string gives either events or a [`DecodeError`], never a panic.
//! * `statsd` (feature `statsd`) writes and reads StatsD text lines instead,
//!   for existing agents; an [`Encoder`] whose [`Codec`] is `Codec::Statsd`
//!   packs them.

mod crc;
mod decode;
mod decode_error;
#[cfg(all(feature = "alloc", feature = "statsd"))]
pub mod deltas;
#[cfg(feature = "statsd")]
mod dogstatsd;
mod encode;
mod format;
mod key_definition;
#[cfg(all(feature = "alloc", feature = "statsd"))]
pub mod packer;
#[cfg(feature = "statsd")]
mod parse_error;
mod primitives;
mod records;
mod series;
#[cfg(feature = "statsd")]
pub mod statsd;

pub use self::crc::crc32;
pub use decode::{Datagram, DecodedEvent, Events, Header, decode};
pub use decode_error::DecodeError;
pub use encode::{EncodeError, Encoder, EncoderConfig, PushError, Writer};
pub use key_definition::WireTags;
pub use series::{
    BucketSource, DecodedBuckets, DecodedDistribution, DecodedSeries, DecodedTotals,
    SERIES_VERSION, SeriesIter, SeriesWriter,
};
#[cfg(feature = "statsd")]
pub use statsd::Dialect;

/// The datagram encoding an [`Encoder`] writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Codec {
    /// This crate's checksummed binary format (`WIRE.md`): sender id and
    /// sequence for loss accounting, compact, the default. It borrows
    /// postcard's primitives (varints, zigzag) but is not postcard.
    #[default]
    Native,
    /// StatsD text lines in the given dialect, for an existing agent
    /// (feature `statsd`).
    #[cfg(feature = "statsd")]
    Statsd(Dialect),
}

impl Codec {
    /// The configuration name: `native`, `statsd`, `dogstatsd` or
    /// `dogstatsd-distribution`.
    pub const fn name(self) -> &'static str {
        match self {
            Codec::Native => "native",
            #[cfg(feature = "statsd")]
            Codec::Statsd(Dialect::Etsy) => "statsd",
            #[cfg(feature = "statsd")]
            Codec::Statsd(Dialect::DogStatsd) => "dogstatsd",
            #[cfg(feature = "statsd")]
            Codec::Statsd(Dialect::DogStatsdDistribution) => "dogstatsd-distribution",
        }
    }

    /// Whether it writes DogStatsD lines (`dogstatsd` or
    /// `dogstatsd-distribution`).
    pub const fn is_dogstatsd(self) -> bool {
        match self {
            #[cfg(feature = "statsd")]
            Codec::Statsd(Dialect::DogStatsd | Dialect::DogStatsdDistribution) => true,
            _ => false,
        }
    }

    /// The codec called `name` (see [`Codec::name`]), if this build has it.
    pub fn from_name(name: &str) -> Option<Codec> {
        Some(match name {
            // `postcard`: the name it had, still read.
            "native" | "postcard" => Codec::Native,
            #[cfg(feature = "statsd")]
            "statsd" => Codec::Statsd(Dialect::Etsy),
            #[cfg(feature = "statsd")]
            "dogstatsd" => Codec::Statsd(Dialect::DogStatsd),
            #[cfg(feature = "statsd")]
            "dogstatsd-distribution" => Codec::Statsd(Dialect::DogStatsdDistribution),
            _ => return None,
        })
    }
}

impl core::fmt::Display for Codec {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// First two bytes of every datagram.
pub const MAGIC: [u8; 2] = *b"ST";
/// The format version this crate writes and reads.
pub const VERSION: u8 = 1;
/// Bytes of the fixed part of the header (magic, version, flags, event
/// count, sender id).
pub const FIXED_HEADER_LEN: usize = 14;
/// Bytes of the CRC trailer.
pub const CRC_LEN: usize = 4;
/// Bytes per datagram unless configured: a UDP payload that fits a
/// 1500-byte MTU with IPv6 headers and room for a tunnel's, the size
/// datagrams from datadog-go and metrics-exporter-dogstatsd have.
pub const DEFAULT_MAX_DATAGRAM: usize = 1432;
/// Smallest datagram limit an encoder accepts.
pub const MIN_DATAGRAM: usize = 512;
/// Largest UDP payload over IPv4.
pub const MAX_DATAGRAM: usize = 65_507;
/// Most distinct metrics (name plus tags) one datagram may define.
pub const MAX_KEYS_PER_DATAGRAM: usize = 128;
/// Fewest bytes an event can take (key index, meta, delta, value).
pub const MIN_EVENT_LEN: usize = 4;

/// Meta byte: bits 0-1 kind, bits 2-3 priority, bits 4-5 value encoding,
/// bit 6 relative (gauges only), bit 7 reserved (zero).
const KIND_MASK: u8 = 0b0000_0011;
const PRIORITY_SHIFT: u8 = 2;
const ENCODING_SHIFT: u8 = 4;
const RELATIVE_BIT: u8 = 0b0100_0000;
const RESERVED_MASK: u8 = 0b1000_0000;
/// Value encodings.
const VALUE_INT: u8 = 0;
const VALUE_F64: u8 = 1;

/// `Some(i)` if `v` is an integer that survives `f64 -> i64 -> f64` exactly
/// and is below 2^53 in magnitude (and is not -0.0), so it can travel as a
/// varint. Read from the bits with integer arithmetic only: a
/// microcontroller without a double-precision FPU needs no soft-float
/// routines for it.
fn as_exact_int(v: f64) -> Option<i64> {
    const MANTISSA_BITS: u32 = 52;
    let bits = v.to_bits();
    let negative = bits >> 63 != 0;
    let exponent = ((bits >> MANTISSA_BITS) & 0x7FF) as i32 - 1023;
    let fraction = bits & ((1 << MANTISSA_BITS) - 1);
    if exponent == -1023 && fraction == 0 {
        // Zero; -0.0 keeps its sign only as an f64.
        return (!negative).then_some(0);
    }
    // Below 1 (or subnormal), or 2^53 and above (or not finite).
    if !(0..=52).contains(&exponent) {
        return None;
    }
    let shift = MANTISSA_BITS - exponent as u32;
    let mantissa = fraction | (1 << MANTISSA_BITS);
    if mantissa & ((1 << shift) - 1) != 0 {
        return None; // a fractional part
    }
    let magnitude = (mantissa >> shift) as i64;
    Some(if negative { -magnitude } else { magnitude })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Largest magnitude below which every integer is exactly an `f64`.
    const EXACT_INT: f64 = 9_007_199_254_740_992.0;

    /// `as_exact_int` by floating-point arithmetic, the definition.
    fn exact_int_by_floats(v: f64) -> Option<i64> {
        let exact =
            v.abs() < EXACT_INT && v == (v as i64) as f64 && !(v == 0.0 && v.is_sign_negative());
        exact.then_some(v as i64)
    }

    #[test]
    fn exact_integers_are_found_from_the_bits() {
        let specials = [
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.5,
            1.5,
            f64::MIN_POSITIVE,
            5e-324,
            EXACT_INT,
            -EXACT_INT,
            EXACT_INT - 1.0,
            -(EXACT_INT - 1.0),
            4_503_599_627_370_496.5,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MAX,
            1e300,
            123_456_789.0,
        ];
        for v in specials {
            assert_eq!(as_exact_int(v), exact_int_by_floats(v), "{v}");
        }
    }

    proptest! {
        #[test]
        #[cfg_attr(miri, ignore = "generating cases is too slow under miri; no unsafe code here")]
        fn exact_integers_match_the_definition(
            v in prop_oneof![
                any::<f64>(),
                any::<i64>().prop_map(|i| i as f64),
                (-1_000_000i64..1_000_000).prop_map(|i| i as f64 / 4.0),
            ]
        ) {
            prop_assert_eq!(as_exact_int(v), exact_int_by_floats(v));
        }
    }
    use crate::event::{Event, KeyId, Kind, Priority};
    use crate::registry::{MAX_NAME_LEN, MAX_TAG_LEN, MAX_TAGS, Registry};
    use proptest::prelude::*;
    use std::string::{String, ToString};
    use std::vec;
    use std::vec::Vec;

    type Reg = Registry<256, 131_072>;

    /// What a decoded event says, owned, for comparisons.
    #[derive(Debug, PartialEq, Clone)]
    struct Plain {
        name: String,
        tags: Vec<(String, String)>,
        kind: Kind,
        priority: Priority,
        value: u64, // f64 bits: NaN == NaN, -0.0 != 0.0
        timestamp: u64,
        relative: bool,
    }

    fn plain_of(reg: &Reg, e: &Event) -> Plain {
        let key = reg.get(e.key).unwrap();
        Plain {
            name: key.name().to_string(),
            tags: key
                .tags()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            kind: e.kind,
            priority: e.priority,
            value: e.value.to_bits(),
            timestamp: e.timestamp,
            relative: e.relative,
        }
    }

    fn plain_decoded(d: &DecodedEvent<'_>) -> Plain {
        Plain {
            name: d.name.to_string(),
            tags: d
                .tags()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            kind: d.kind,
            priority: d.priority,
            value: d.value.to_bits(),
            timestamp: d.timestamp,
            relative: d.relative,
        }
    }

    /// Packs `events` into as many datagrams as needed; returns them and the
    /// events refused as oversized.
    fn pack(enc: &mut Encoder, reg: &Reg, events: &[Event]) -> (Vec<Vec<u8>>, usize) {
        let mut out = Vec::new();
        let mut refused = 0;
        let mut buf = vec![0u8; enc.config().max_datagram];
        let mut i = 0;
        while i < events.len() {
            let base = events[i].timestamp;
            let mut w = enc.begin(&mut buf, base).unwrap();
            while i < events.len() {
                match w.push(&events[i], |id| reg.get(id)) {
                    Ok(()) => i += 1,
                    Err(PushError::Full) => break,
                    Err(_) => {
                        refused += 1;
                        i += 1;
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
            let before = out.len();
            for e in dg.events() {
                out.push(plain_decoded(&e.unwrap()));
            }
            assert_eq!(out.len() - before, usize::from(dg.header.event_count));
        }
        out
    }

    fn encoder(max: usize) -> Encoder {
        Encoder::new(EncoderConfig::new(0xDEAD_BEEF_0000_0001).with_max_datagram(max)).unwrap()
    }

    #[test]
    fn round_trip_mixed_events() {
        let mut reg = Reg::new();
        let a = reg
            .register("http.requests", &[("route", "/"), ("code", "200")])
            .unwrap();
        let b = reg.register("queue.depth", &[]).unwrap();
        let events = [
            Event::new(a, Kind::Counter, 1.0, 1_000, Priority::High),
            Event::new(b, Kind::Gauge, -42.5, 900, Priority::Low),
            Event::new(a, Kind::Counter, 3.0, 5_000, Priority::Medium),
            Event::new(b, Kind::Timer, 1_500_000.0, u64::MAX, Priority::Medium),
            Event::gauge_change(b, -2.0, 7, Priority::Medium),
        ];
        let mut enc = encoder(DEFAULT_MAX_DATAGRAM);
        let (dgs, refused) = pack(&mut enc, &reg, &events);
        assert_eq!((dgs.len(), refused), (1, 0));
        let expected: Vec<_> = events.iter().map(|e| plain_of(&reg, e)).collect();
        assert_eq!(unpack(&dgs), expected);
        let h = decode(&dgs[0]).unwrap().header;
        assert_eq!(
            (h.sender_id, h.sequence, h.base_timestamp, h.event_count),
            (0xDEAD_BEEF_0000_0001, 0, 1_000, 5)
        );
        assert_eq!(enc.next_sequence(), 1);
    }

    #[test]
    fn batches_split_across_datagrams_and_each_decodes_alone() {
        let mut reg = Reg::new();
        let ids: Vec<KeyId> = (0..40)
            .map(|i| {
                reg.register(
                    &std::format!("series.{i}"),
                    &[("host", "web-01"), ("env", "prod")],
                )
                .unwrap()
            })
            .collect();
        let n = if cfg!(miri) { 150 } else { 2_000u64 };
        let events: Vec<Event> = (0..n)
            .map(|i| {
                Event::new(
                    ids[(i % 40) as usize],
                    Kind::Histogram,
                    (i as f64) * 0.25,
                    i * 1_000,
                    Priority::Medium,
                )
            })
            .collect();
        let mut enc = encoder(MIN_DATAGRAM);
        let (dgs, refused) = pack(&mut enc, &reg, &events);
        assert_eq!(refused, 0);
        assert!(dgs.len() > 10);
        assert!(dgs.iter().all(|d| d.len() <= MIN_DATAGRAM));
        let expected: Vec<_> = events.iter().map(|e| plain_of(&reg, e)).collect();
        assert_eq!(unpack(&dgs), expected);
        // Losing one datagram loses only its own events.
        let without_third: Vec<_> = dgs
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != 2)
            .map(|(_, d)| d.clone())
            .collect();
        let lost = usize::from(decode(&dgs[2]).unwrap().header.event_count);
        assert_eq!(unpack(&without_third).len(), events.len() - lost);
        // Sequence numbers count datagrams.
        let seqs: Vec<u64> = dgs
            .iter()
            .map(|d| decode(d).unwrap().header.sequence)
            .collect();
        assert_eq!(seqs, (0..dgs.len() as u64).collect::<Vec<_>>());
    }

    #[test]
    fn an_event_too_large_for_any_datagram_is_refused_with_its_size() {
        let mut reg = Reg::new();
        let long = "x".repeat(MAX_TAG_LEN);
        let keys: Vec<String> = (0..MAX_TAGS)
            .map(|i| std::format!("{i}{}", &long[1..]))
            .collect();
        let tags: Vec<(&str, &str)> = keys.iter().map(|k| (k.as_str(), long.as_str())).collect();
        let huge = reg.register(&"n".repeat(MAX_NAME_LEN), &tags).unwrap();
        let small = reg.register("ok", &[]).unwrap();
        let mut enc = encoder(MIN_DATAGRAM);
        let mut buf = [0u8; MIN_DATAGRAM];
        let mut w = enc.begin(&mut buf, 0).unwrap();
        let big_event = Event::new(huge, Kind::Counter, 1.0, 0, Priority::Medium);
        match w.push(&big_event, |id| reg.get(id)) {
            Err(PushError::Oversized {
                needed,
                max_datagram,
            }) => {
                assert!(needed > max_datagram);
                assert_eq!(max_datagram, MIN_DATAGRAM);
            }
            other => panic!("expected Oversized, got {other:?}"),
        }
        // The failed push left the datagram untouched and usable.
        w.push(
            &Event::new(small, Kind::Counter, 1.0, 0, Priority::Medium),
            |id| reg.get(id),
        )
        .unwrap();
        let d = w.finish().to_vec();
        let events: Vec<_> = decode(&d)
            .unwrap()
            .events()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            (events.len(), events[0].name, events[0].key_index),
            (1, "ok", 0)
        );
        assert_eq!(enc.refused(), 1, "the oversized event is counted");
        // In a jumbo datagram the same event fits.
        let mut enc = encoder(MAX_DATAGRAM);
        let (dgs, refused) = pack(&mut enc, &reg, &[big_event]);
        assert_eq!((dgs.len(), refused), (1, 0));
    }

    #[test]
    fn the_relative_bit_is_for_gauges_only() {
        let mut reg = Reg::new();
        let id = reg.register("c", &[]).unwrap();
        let events = [Event::new(id, Kind::Counter, 1.0, 0, Priority::Medium)];
        let (dgs, _) = pack(&mut encoder(MIN_DATAGRAM), &reg, &events);
        let mut bytes = dgs[0].clone();
        // header 14 + sequence 1 + base 1, then index 0, name "c", no tags, meta
        let meta_at = 14 + 1 + 1 + 1 + 2 + 1;
        assert_eq!(bytes[meta_at], 0b0000_0100);
        bytes[meta_at] |= RELATIVE_BIT;
        let crc_at = bytes.len() - CRC_LEN;
        let crc = crc32(&bytes[..crc_at]);
        bytes[crc_at..].copy_from_slice(&crc.to_le_bytes());
        let first = decode(&bytes).unwrap().events().next().unwrap();
        assert_eq!(
            first.unwrap_err(),
            DecodeError::BadMeta { meta: 0b0100_0100 }
        );
    }

    #[cfg(feature = "statsd")]
    #[test]
    fn dogstatsd_joins_values_of_one_timer_or_histogram_in_a_line() {
        let mut reg = Reg::new();
        let t = reg.register("t", &[("k", "v")]).unwrap();
        let h = reg.register("h", &[]).unwrap();
        let c = reg.register("c", &[]).unwrap();
        let ms = |n: u64| Event::new(t, Kind::Timer, (n * 1_000_000) as f64, 0, Priority::Medium);
        let events = [
            ms(1),
            ms(2),
            ms(3),
            Event::new(h, Kind::Histogram, 0.5, 0, Priority::Medium),
            Event::new(h, Kind::Histogram, 7.0, 0, Priority::Medium),
            ms(4),
            Event::new(c, Kind::Counter, 1.0, 0, Priority::Medium),
            Event::new(c, Kind::Counter, 1.0, 0, Priority::Medium),
        ];
        let text = |dialect| {
            let config = EncoderConfig::new(1)
                .with_codec(Codec::Statsd(dialect))
                .with_container_id("cid");
            let (dgs, refused) = pack(&mut Encoder::new(config).unwrap(), &reg, &events);
            assert_eq!((dgs.len(), refused), (1, 0));
            String::from_utf8(dgs[0].clone()).unwrap()
        };
        assert_eq!(
            text(Dialect::DogStatsd),
            "t:1:2:3|ms|#k:v|c:cid\nh:0.5:7|h|c:cid\nt:4|ms|#k:v|c:cid\nc:1|c|c:cid\nc:1|c|c:cid"
        );
        // Etsy StatsD reads one value a line.
        assert_eq!(
            text(Dialect::Etsy).lines().count(),
            events.len(),
            "{}",
            text(Dialect::Etsy)
        );
        // A datagram that fills up while a line grows: the value that does
        // not fit goes in the next, and nothing is lost.
        let config = EncoderConfig::new(1)
            .with_max_datagram(MIN_DATAGRAM)
            .with_codec(Codec::Statsd(Dialect::DogStatsdDistribution));
        let many: Vec<Event> = (1..=400).map(ms).collect();
        let (dgs, refused) = pack(&mut Encoder::new(config).unwrap(), &reg, &many);
        assert_eq!(refused, 0);
        assert!(dgs.len() > 1);
        let mut values = Vec::new();
        for d in &dgs {
            assert!(d.len() <= MIN_DATAGRAM);
            for line in statsd::parse(d) {
                values.extend(
                    line.unwrap()
                        .metric()
                        .unwrap()
                        .numbers()
                        .map(Option::unwrap),
                );
            }
        }
        let want: Vec<f64> = (1..=400).map(|n| n as f64).collect();
        assert_eq!(values, want);
    }

    #[cfg(feature = "statsd")]
    #[test]
    fn statsd_lines_fill_datagrams_and_refuse_what_cannot_go() {
        let mut reg = Reg::new();
        let hits = reg.register("hits", &[("route", "/a")]).unwrap();
        let depth = reg.register("depth", &[]).unwrap();
        let config = EncoderConfig::new(1)
            .with_max_datagram(MIN_DATAGRAM)
            .with_codec(Codec::Statsd(Dialect::DogStatsd));
        let mut enc = Encoder::new(config).unwrap();
        let mut events = Vec::new();
        for i in 0..100u64 {
            events.push(Event::new(hits, Kind::Counter, 1.0, i, Priority::Medium));
            events.push(Event::gauge_change(depth, -1.0, i, Priority::Low));
        }
        let (dgs, refused) = pack(&mut enc, &reg, &events);
        assert_eq!(refused, 0);
        assert!(dgs.len() > 1);
        let mut lines = 0;
        for (i, d) in dgs.iter().enumerate() {
            // Full to within one line, but the last.
            assert!(d.len() <= MIN_DATAGRAM);
            assert!(i == dgs.len() - 1 || d.len() > MIN_DATAGRAM - 25);
            for line in statsd::parse(d) {
                let line = line.unwrap().metric().unwrap();
                match line.name {
                    "hits" => assert_eq!((line.value, line.tags), ("1", "route:/a")),
                    "depth" => assert!(line.is_change() && line.value == "-1"),
                    other => panic!("unexpected {other}"),
                }
                lines += 1;
            }
        }
        assert_eq!(lines, events.len());
        assert_eq!(enc.next_sequence(), 0, "StatsD has no sequence");
        // NaN, unknown keys and lines longer than a datagram are refused.
        let mut buf = [0u8; MIN_DATAGRAM];
        let value = "v".repeat(MAX_TAG_LEN);
        let long = reg
            .register(
                &"n".repeat(MAX_NAME_LEN),
                &[("t", value.as_str()), ("u", value.as_str())],
            )
            .unwrap();
        let mut w = enc.begin(&mut buf, 0).unwrap();
        let nan = Event::new(hits, Kind::Gauge, f64::NAN, 0, Priority::Medium);
        assert_eq!(w.push(&nan, |id| reg.get(id)), Err(PushError::NotFinite));
        let stray = Event::new(KeyId(99), Kind::Counter, 1.0, 0, Priority::Low);
        assert_eq!(w.push(&stray, |id| reg.get(id)), Err(PushError::UnknownKey));
        let big = Event::new(long, Kind::Counter, 1.0, 0, Priority::Low);
        assert!(matches!(
            w.push(&big, |id| reg.get(id)),
            Err(PushError::Oversized { needed, .. }) if needed > MIN_DATAGRAM
        ));
        assert!(w.is_empty());
        assert_eq!(w.len(), 0, "no header in StatsD");
        assert_eq!(enc.refused(), 3);
    }

    #[test]
    fn an_event_without_a_registered_key_is_refused_and_counted() {
        let reg = Reg::new();
        let mut enc = encoder(MIN_DATAGRAM);
        let mut buf = [0u8; MIN_DATAGRAM];
        {
            let mut w = enc.begin(&mut buf, 0).unwrap();
            let stray = Event::new(KeyId(9), Kind::Counter, 1.0, 0, Priority::Low);
            assert_eq!(w.push(&stray, |id| reg.get(id)), Err(PushError::UnknownKey));
            assert!(w.is_empty());
        }
        assert_eq!(enc.refused(), 1);
    }

    #[test]
    fn datagrams_fill_to_the_maximum_size() {
        let mut reg = Reg::new();
        let id = reg.register("fill", &[("k", "v")]).unwrap();
        let sizes: &[usize] = if cfg!(miri) {
            &[MIN_DATAGRAM]
        } else {
            &[MIN_DATAGRAM, DEFAULT_MAX_DATAGRAM, MAX_DATAGRAM]
        };
        for &max in sizes {
            let events: Vec<Event> = (0..max as u64)
                .map(|i| Event::new(id, Kind::Histogram, i as f64 + 0.5, i, Priority::Medium))
                .collect();
            let (dgs, _) = pack(&mut encoder(max), &reg, &events);
            // Every datagram but the last is full to within one event (13 bytes).
            for d in &dgs[..dgs.len() - 1] {
                assert!(d.len() <= max && d.len() > max - 13, "{} of {max}", d.len());
            }
            let expected: Vec<_> = events.iter().map(|e| plain_of(&reg, e)).collect();
            assert_eq!(unpack(&dgs), expected);
        }
    }

    #[test]
    fn more_keys_than_a_datagram_holds_start_a_new_datagram() {
        let mut reg = Reg::new();
        let events: Vec<Event> = (0..MAX_KEYS_PER_DATAGRAM as u32 + 5)
            .map(|i| {
                let id = reg.register(&std::format!("k{i}"), &[]).unwrap();
                Event::new(id, Kind::Gauge, 0.0, 0, Priority::Low)
            })
            .collect();
        let (dgs, _) = pack(&mut encoder(MAX_DATAGRAM), &reg, &events);
        assert_eq!(dgs.len(), 2);
        assert_eq!(unpack(&dgs).len(), events.len());
    }

    #[test]
    fn config_and_buffer_errors_are_typed() {
        assert_eq!(
            Encoder::new(EncoderConfig::new(1).with_max_datagram(511)).err(),
            Some(EncodeError::MaxDatagram { got: 511 })
        );
        assert!(Encoder::new(EncoderConfig::new(1).with_max_datagram(MAX_DATAGRAM + 1)).is_err());
        let mut enc = encoder(1000);
        let mut small = [0u8; 999];
        assert_eq!(
            enc.begin(&mut small, 0).err(),
            Some(EncodeError::BufferTooSmall {
                needed: 1000,
                got: 999
            })
        );
    }

    /// A small valid datagram to corrupt.
    fn sample(values: &[f64]) -> Vec<u8> {
        let mut reg = Reg::new();
        let id = reg.register("cpu", &[("core", "0")]).unwrap();
        let id2 = reg.register("mem", &[]).unwrap();
        let events: Vec<Event> = values
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                Event::new(
                    if i % 2 == 0 { id } else { id2 },
                    Kind::Gauge,
                    v,
                    10 * i as u64,
                    Priority::High,
                )
            })
            .collect();
        pack(&mut encoder(DEFAULT_MAX_DATAGRAM), &reg, &events)
            .0
            .remove(0)
    }

    #[test]
    fn every_single_bit_flip_is_rejected() {
        for d in [
            sample(&[1.0]),
            sample(&[0.5, -3.0, f64::NAN]),
            sample(&[1e300; 6]),
        ] {
            for bit in 0..d.len() * 8 {
                let mut bad = d.clone();
                bad[bit / 8] ^= 1 << (bit % 8);
                assert!(
                    decode(&bad).is_err(),
                    "flip of bit {bit} of {} accepted",
                    d.len()
                );
            }
        }
    }

    /// Builds a datagram from raw header fields and body with a valid CRC,
    /// to reach the checks behind the CRC.
    fn forge(version: u8, flags: u8, count: u16, body: &[u8]) -> Vec<u8> {
        let mut d = Vec::new();
        d.extend_from_slice(&MAGIC);
        d.extend_from_slice(&[version, flags]);
        d.extend_from_slice(&count.to_le_bytes());
        d.extend_from_slice(&7u64.to_le_bytes());
        d.extend_from_slice(&[0, 0]); // sequence 0, base 0
        d.extend_from_slice(body);
        let crc = crc32(&d);
        d.extend_from_slice(&crc.to_le_bytes());
        d
    }

    fn first_error(d: &[u8]) -> DecodeError {
        match decode(d) {
            Err(e) => e,
            Ok(dg) => dg.events().find_map(Result::err).expect("no error"),
        }
    }

    #[test]
    fn each_malformation_has_its_error() {
        // key 0 defined: name "a", 0 tags; meta gauge/high/int; delta 0; value 1
        let good = [0, 1, b'a', 0, 0b0000_1001, 0, 2];
        let ok = forge(VERSION, 0, 1, &good);
        assert_eq!(decode(&ok).unwrap().events().count(), 1);
        assert_eq!(first_error(&ok[..10]), DecodeError::TooShort { len: 10 });
        let mut bad_magic = ok.clone();
        bad_magic[0] = b'X';
        assert_eq!(first_error(&bad_magic), DecodeError::BadMagic);
        assert!(matches!(
            first_error(&ok[..ok.len() - 1]),
            DecodeError::CrcMismatch { .. }
        ));
        assert_eq!(
            first_error(&forge(4, 0, 1, &good)),
            DecodeError::UnsupportedVersion { version: 4 }
        );
        assert_eq!(
            first_error(&forge(VERSION, 1, 1, &good)),
            DecodeError::UnsupportedFlags { flags: 1 }
        );
        assert_eq!(
            first_error(&forge(VERSION, 0, 2, &good)),
            DecodeError::TooManyEvents { count: 2 }
        );
        let mut two = good.to_vec();
        two.extend_from_slice(&[0, 0b0000_1001, 0, 2]);
        assert_eq!(
            first_error(&forge(VERSION, 0, 3, &[two.as_slice(), &[0]].concat())),
            DecodeError::Truncated
        );
        assert_eq!(
            first_error(&forge(VERSION, 0, 1, &two)),
            DecodeError::TrailingBytes { len: 4 }
        );
        assert_eq!(
            first_error(&forge(VERSION, 0, 1, &[5, 0, 0, 0, 0, 0])),
            DecodeError::IndexOutOfRange {
                index: 5,
                defined: 0
            }
        );
        assert_eq!(
            first_error(&forge(VERSION, 0, 1, &[0, 1, 0xFF, 0, 9, 0, 2])),
            DecodeError::InvalidUtf8
        );
        assert_eq!(
            first_error(&forge(VERSION, 0, 1, &[0, 1, b'a', 9, 9, 0, 2, 0])),
            DecodeError::KeyTooLarge
        );
        assert_eq!(
            first_error(&forge(VERSION, 0, 1, &[0, 1, b'a', 0, 0b1000_0000, 0, 2])),
            DecodeError::BadMeta { meta: 0b1000_0000 }
        );
        assert_eq!(
            first_error(&forge(VERSION, 0, 1, &[0, 1, b'a', 0, 0b0000_1100, 0, 2])),
            DecodeError::BadMeta { meta: 0b0000_1100 }
        );
        assert_eq!(
            first_error(&forge(VERSION, 0, 1, &[0, 1, b'a', 0, 0b0010_0000, 0, 2])),
            DecodeError::BadMeta { meta: 0b0010_0000 }
        );
        // A tag key twice, with the same or another value.
        assert_eq!(
            first_error(&forge(
                VERSION,
                0,
                1,
                &[0, 1, b'a', 2, 1, b'k', 1, b'v', 1, b'k', 1, b'w', 9, 0, 2]
            )),
            DecodeError::DuplicateTag
        );
        // The header's varints: too long, or running into the CRC.
        let header = |varints: &[u8]| {
            let mut d = forge(VERSION, 0, 0, &[]);
            d.truncate(FIXED_HEADER_LEN);
            d.extend_from_slice(varints);
            let crc = crc32(&d);
            d.extend_from_slice(&crc.to_le_bytes());
            d
        };
        assert_eq!(first_error(&header(&[0x80; 11])), DecodeError::BadVarint);
        assert_eq!(first_error(&header(&[0, 0x80])), DecodeError::Truncated);
        assert!(decode(&header(&[0, 0])).unwrap().check().is_ok());
        // One bad event after a good one: the iterator yields the good one
        // first, `check` the fault, and a receiver takes neither.
        let good_then_bad = forge(
            VERSION,
            0,
            2,
            &[good.as_slice(), &[0, 0b1000_1001, 0, 2]].concat(),
        );
        let dg = decode(&good_then_bad).unwrap();
        assert!(dg.events().next().unwrap().is_ok());
        assert_eq!(dg.check(), Err(DecodeError::BadMeta { meta: 0b1000_1001 }));
        assert!(decode(&ok).unwrap().check().is_ok());
        // Non-minimal varints are valid postcard: a 2-byte name length, tag
        // count and tag length decode to the same key.
        let padded = forge(
            VERSION,
            0,
            1,
            &[
                0, 0x81, 0x00, b'a', 0x81, 0x00, 0x81, 0x00, b'k', 1, b'v', 9, 0, 2,
            ],
        );
        let e = decode(&padded).unwrap().events().next().unwrap().unwrap();
        assert_eq!(e.name, "a");
        assert!(e.tags().eq([("k", "v")]));
        // A delta of -1 (zigzag 1) from base 0 wraps, as the encoder wrote it.
        let wrapped = forge(VERSION, 0, 1, &[0, 1, b'a', 0, 1, 1, 2]);
        assert_eq!(
            decode(&wrapped)
                .unwrap()
                .events()
                .next()
                .unwrap()
                .unwrap()
                .timestamp,
            u64::MAX
        );
        assert_eq!(
            first_error(&forge(
                VERSION,
                0,
                1,
                &[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F, 0, 0]
            )),
            DecodeError::BadVarint
        );
        let _ = std::format!("{}", DecodeError::Truncated);
    }

    fn name() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            "[a-z._]{1,20}",
            "\\PC{0,12}", // any unicode
        ]
        .prop_filter("fits the registry", |s| s.len() <= MAX_NAME_LEN)
    }

    fn tag_text() -> impl Strategy<Value = String> {
        prop_oneof![Just(String::new()), "[a-z0-9]{1,10}", "\\PC{0,6}"]
    }

    fn value() -> impl Strategy<Value = f64> {
        prop_oneof![
            Just(0.0),
            Just(-0.0),
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(f64::MIN_POSITIVE / 2.0), // subnormal
            Just(f64::MAX),
            Just(EXACT_INT),
            Just(-EXACT_INT + 1.0),
            any::<i64>().prop_map(|i| i as f64),
            any::<i32>().prop_map(f64::from),
            any::<f64>(),
        ]
    }

    fn config() -> ProptestConfig {
        ProptestConfig {
            cases: 256,
            failure_persistence: None,
            ..ProptestConfig::default()
        }
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        #[cfg_attr(miri, ignore = "generating cases is too slow under miri; no unsafe code here")]
        fn round_trip_any_events(
            keys in proptest::collection::vec((name(), proptest::collection::btree_map(tag_text(), tag_text(), 0..=MAX_TAGS)), 1..20),
            raw in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..4, 0u8..3, value(), any::<u64>()), 0..300),
            max in prop_oneof![Just(MIN_DATAGRAM), Just(DEFAULT_MAX_DATAGRAM), Just(MAX_DATAGRAM)],
        ) {
            let mut reg = Reg::new();
            let ids: Vec<KeyId> = keys
                .iter()
                .map(|(n, tags)| {
                    let tags: Vec<(&str, &str)> = tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                    reg.register(n, &tags).unwrap()
                })
                .collect();
            let events: Vec<Event> = raw
                .iter()
                .map(|(k, kind, p, v, t)| Event::new(
                    ids[k.index(ids.len())],
                    Kind::from_code(*kind).unwrap(),
                    *v,
                    *t,
                    Priority::from_code(*p).unwrap(),
                ))
                .collect();
            let (dgs, refused) = pack(&mut encoder(max), &reg, &events);
            prop_assert_eq!(refused, 0);
            prop_assert!(dgs.iter().all(|d| d.len() <= max));
            let expected: Vec<_> = events.iter().map(|e| plain_of(&reg, e)).collect();
            prop_assert_eq!(unpack(&dgs), expected);
        }

        /// Total decoding: arbitrary bytes behind a valid header and CRC give
        /// events or errors, never a panic, and never more events than announced.
        #[test]
        #[cfg_attr(miri, ignore = "generating cases is too slow under miri; no unsafe code here")]
        fn decoding_arbitrary_bodies_never_panics(count in any::<u16>(), body in proptest::collection::vec(any::<u8>(), 0..600)) {
            let d = forge(VERSION, 0, count, &body);
            if let Ok(dg) = decode(&d) {
                prop_assert!(dg.events().count() <= usize::from(count) + 1);
            }
            let _ = decode(&body);
        }
    }
}

/// The worked example of `WIRE.md`, byte for byte, read from the document:
/// if this test fails, the document and the code disagree.
#[cfg(test)]
mod worked_example {
    use super::*;
    use crate::event::{Event, Kind, Priority};
    use crate::registry::Registry;

    /// The bytes of the worked example under `## Worked example: {title}`
    /// in `WIRE.md`: each line of its first `text` block, up to the first
    /// word that is not two hex digits.
    pub(crate) fn documented(title: &str) -> std::vec::Vec<u8> {
        let doc = include_str!("../../../WIRE.md");
        let heading = std::format!("## Worked example: {title}");
        let at = doc.find(&heading).expect("the example's heading");
        let block = doc[at..].split("```text\n").nth(1).expect("its bytes");
        let block = block.split("```").next().unwrap();
        block
            .lines()
            .flat_map(|line| {
                line.split_whitespace()
                    .take_while(|w| w.len() == 2 && w.chars().all(|c| c.is_ascii_hexdigit()))
                    .map(|w| u8::from_str_radix(w, 16).unwrap())
                    .collect::<std::vec::Vec<u8>>()
            })
            .collect()
    }

    #[test]
    fn the_documented_datagram() {
        let mut reg: Registry<8, 256> = Registry::new();
        let requests = reg.register("http.requests", &[("route", "/api")]).unwrap();
        let depth = reg.register("queue.depth", &[]).unwrap();
        let load = reg.register("cpu.load", &[]).unwrap();
        let base = 1_700_000_000_000_000_000;
        let mut enc = Encoder::new(EncoderConfig::new(0x0123_4567_89AB_CDEF)).unwrap();
        let mut buf = [0u8; DEFAULT_MAX_DATAGRAM];
        for _ in 0..7 {
            enc.begin(&mut buf, 0).unwrap().finish(); // datagrams 0 to 6
        }
        let mut w = enc.begin(&mut buf, base).unwrap();
        for e in [
            Event::new(requests, Kind::Counter, 1.0, base, Priority::High),
            Event::new(requests, Kind::Counter, 1.0, base + 1_500, Priority::Medium),
            Event::new(depth, Kind::Gauge, 42.0, base + 3_500, Priority::Low),
            Event::new(load, Kind::Gauge, 0.75, base + 2_500, Priority::Medium),
        ] {
            w.push(&e, |id| reg.get(id)).unwrap();
        }
        let d = w.finish();
        let shown: std::vec::Vec<std::string::String> =
            d.iter().map(|b| std::format!("{b:02x}")).collect();
        let documented = documented("events (version 1)");
        assert_eq!(d, documented.as_slice(), "actual: {}", shown.concat());
        let events: std::vec::Vec<_> = decode(d).unwrap().events().map(Result::unwrap).collect();
        assert_eq!(events[3].timestamp, base + 2_500);
        assert_eq!(events[3].value, 0.75);
    }
}
