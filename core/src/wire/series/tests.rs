//! The series records' tests: written, read back, and version 2 read.

use super::*;
use crate::aggregate::{
    Aggregates, AggregatesConfig, SeriesBuckets, Shard, Totals, Word, bucket_of,
};
use crate::event::Kind;
use crate::registry::Registry;
use crate::wire::primitives::put_varint;
use crate::wire::{
    DEFAULT_MAX_DATAGRAM, DecodeError, Encoder, EncoderConfig, MAGIC, MIN_DATAGRAM, PushError,
    crc32, decode,
};
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
                    Totals::Gauge { value } => PlainTotals::Gauge(value.to_bits(), snap.changes),
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
