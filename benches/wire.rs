//! Encode and decode cost of the wire format on the reference workload
//! (`src/workload.rs`: ten series, three tags each, mixed kinds), per event,
//! next to serde_json encoding and decoding the same events.
//!
//! * `wire_encode/native_datagrams`: `Writer::push` of every event into
//!   1,472-byte datagrams, CRC included (`encode_all`).
//! * `wire_encode/serde_json`: `serde_json::to_writer` of each event (with
//!   its name and tags, as a JSON client must send them) into a reused buffer.
//! * `wire_encode/dogstatsd_lines`: the same encoder writing DogStatsD lines
//!   (`Codec::Statsd(Dialect::DogStatsd)`) into 1,472-byte datagrams.
//! * `wire_encode/cadence_dogstatsd`: cadence building the same lines (name,
//!   value, tags) through its metric builders into a no-op sink: its
//!   formatting cost, without a socket.
//! * `wire_decode/native_datagrams`: `decode` (CRC check) and iterating
//!   every event of every datagram: name, kind, value and timestamp of each,
//!   and the tags of each metric once per datagram (when its key is defined),
//!   which is how a receiver resolves series.
//! * `wire_decode/serde_json`: `serde_json::from_slice` of each event,
//!   borrowing strings.
//!
//! Sizes (events per datagram, bytes per event) are printed and checked
//! against their targets by `tests/wire_reference.rs`.

mod common;

use cadence::prelude::*;
use cadence::{NopMetricSink, StatsdClient};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use stats_core::Kind;
use stats_core::wire::{Codec, DEFAULT_MAX_DATAGRAM, Dialect, Encoder, EncoderConfig, decode};
use stats_pipeline::workload::{self, JsonEvent};
use std::hint::black_box;
use std::time::Duration;

const EVENTS: usize = 10_000;

fn encode(c: &mut Criterion) {
    let (registry, ids) = workload::registry();
    let events = workload::events(&ids, EVENTS, 1_700_000_000_000_000_000);
    let mut g = c.benchmark_group("wire_encode");
    g.throughput(Throughput::Elements(EVENTS as u64));
    // The same encoder in each codec.
    for (name, codec) in [
        ("native_datagrams", Codec::Native),
        ("dogstatsd_lines", Codec::Statsd(Dialect::DogStatsd)),
    ] {
        g.bench_function(name, |b| {
            let mut encoder = Encoder::new(EncoderConfig::new(42).with_codec(codec)).unwrap();
            let mut buf = vec![0u8; DEFAULT_MAX_DATAGRAM];
            b.iter(|| {
                let mut bytes = 0;
                workload::encode_all(&mut encoder, &registry, &events, &mut buf, |d| {
                    bytes += d.len()
                });
                black_box(bytes)
            })
        });
    }
    g.bench_function("serde_json", |b| {
        let mut out = Vec::with_capacity(4096);
        b.iter(|| {
            let mut bytes = 0;
            for e in &events {
                out.clear();
                serde_json::to_writer(&mut out, &workload::json_event(&registry, e).unwrap())
                    .unwrap();
                bytes += out.len();
            }
            black_box(bytes)
        })
    });
    g.bench_function("cadence_dogstatsd", |b| {
        let client = StatsdClient::from_sink("", NopMetricSink);
        b.iter(|| {
            for e in &events {
                let key = registry.get(e.key).unwrap();
                let name = key.name();
                let result = match e.kind {
                    Kind::Counter => key
                        .tags()
                        .fold(client.count_with_tags(name, e.value as i64), |m, (k, v)| {
                            m.with_tag(k, v)
                        })
                        .try_send()
                        .map(drop),
                    Kind::Gauge => key
                        .tags()
                        .fold(client.gauge_with_tags(name, e.value), |m, (k, v)| {
                            m.with_tag(k, v)
                        })
                        .try_send()
                        .map(drop),
                    Kind::Timer => key
                        .tags()
                        .fold(
                            client.time_with_tags(name, Duration::from_nanos(e.value as u64)),
                            |m, (k, v)| m.with_tag(k, v),
                        )
                        .try_send()
                        .map(drop),
                    Kind::Histogram => key
                        .tags()
                        .fold(client.histogram_with_tags(name, e.value), |m, (k, v)| {
                            m.with_tag(k, v)
                        })
                        .try_send()
                        .map(drop),
                };
                black_box(result).unwrap();
            }
        })
    });
    g.finish();
}

fn decode_bench(c: &mut Criterion) {
    let (registry, ids) = workload::registry();
    let events = workload::events(&ids, EVENTS, 1_700_000_000_000_000_000);
    let mut encoder = Encoder::new(EncoderConfig::new(42)).unwrap();
    let mut buf = vec![0u8; DEFAULT_MAX_DATAGRAM];
    let mut datagrams = Vec::new();
    workload::encode_all(&mut encoder, &registry, &events, &mut buf, |d| {
        datagrams.push(d.to_vec())
    });
    let json: Vec<Vec<u8>> = events
        .iter()
        .map(|e| serde_json::to_vec(&workload::json_event(&registry, e).unwrap()).unwrap())
        .collect();

    let mut g = c.benchmark_group("wire_decode");
    g.throughput(Throughput::Elements(EVENTS as u64));
    g.bench_function("native_datagrams", |b| {
        b.iter(|| {
            let mut sum = 0.0;
            for d in &datagrams {
                let mut keys = 0;
                for e in decode(d).unwrap().events() {
                    let e = e.unwrap();
                    if usize::from(e.key_index) == keys {
                        keys += 1;
                        sum += e.tags().map(|(k, v)| k.len() + v.len()).sum::<usize>() as f64;
                    }
                    sum += e.value + e.name.len() as f64 + e.timestamp as f64 + e.kind as u8 as f64;
                }
            }
            black_box(sum)
        })
    });
    g.bench_function("serde_json", |b| {
        b.iter(|| {
            let mut sum = 0.0;
            for j in &json {
                let e: JsonEvent<'_> = serde_json::from_slice(j).unwrap();
                sum += e.tags.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>() as f64;
                sum += e.value + e.name.len() as f64 + e.timestamp as f64 + e.kind.len() as f64;
            }
            black_box(sum)
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::config(3);
    targets = encode, decode_bench
}
criterion_main!(benches);
