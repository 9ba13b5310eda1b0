//! The collector's decode and aggregate throughput on one thread: the
//! reference workload's datagrams (ten series, three tags each, mixed
//! kinds) through `Collector::ingest` (CRC, decode, per-sender accounting,
//! per-series aggregation), next to the same events as JSON lines parsed by
//! serde_json and summed into a `HashMap` by series.

mod common;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use stats_collector::{Collector, Limits};
use stats_core::wire::{DEFAULT_MAX_DATAGRAM, Encoder, EncoderConfig};
use stats_pipeline::workload::{self, JsonEvent};
use std::collections::HashMap;
use std::hint::black_box;

const EVENTS: usize = 10_000;

fn collector(c: &mut Criterion) {
    let (registry, ids) = workload::registry();
    let events = workload::events(&ids, EVENTS, 1_700_000_000_000_000_000);
    let mut encoder = Encoder::new(EncoderConfig::new(42)).unwrap();
    let mut buf = vec![0u8; DEFAULT_MAX_DATAGRAM];
    // Each batch is encoded afresh so its sequence numbers are new (the
    // collector ignores duplicates).
    let mut batch = || {
        let mut datagrams = Vec::new();
        workload::encode_all(&mut encoder, &registry, &events, &mut buf, |d| {
            datagrams.push(d.to_vec())
        });
        datagrams
    };
    let json: Vec<Vec<u8>> = events
        .iter()
        .map(|e| serde_json::to_vec(&workload::json_event(&registry, e).unwrap()).unwrap())
        .collect();

    let mut g = c.benchmark_group("collector_ingest");
    g.throughput(Throughput::Elements(EVENTS as u64));
    let mut collector = Collector::new(Limits::default());
    g.bench_function("stats_collector", |b| {
        b.iter_batched(
            &mut batch,
            |datagrams| {
                for d in &datagrams {
                    collector.ingest(d);
                }
            },
            BatchSize::SmallInput,
        )
    });
    let mut sums: HashMap<String, f64> = HashMap::new();
    g.bench_function("serde_json_hashmap", |b| {
        b.iter(|| {
            for j in &json {
                let e: JsonEvent<'_> = serde_json::from_slice(j).unwrap();
                let mut key = String::from(e.name);
                for (k, v) in &e.tags {
                    key.push_str(k);
                    key.push_str(v);
                }
                *sums.entry(key).or_default() += e.value;
            }
        })
    });
    g.finish();
    black_box((collector.totals(), sums.len()));
}

criterion_group! {
    name = benches;
    config = common::config(3);
    targets = collector
}
criterion_main!(benches);
