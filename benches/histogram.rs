//! Recording into the core's log-linear histogram next to HdrHistogram, both
//! sized for nanosecond latencies up to about a minute: ours with 3.1% bucket
//! width in 4 KiB (`LatencyHistogram`), HdrHistogram with 2 significant
//! digits (1% precision, about 15 KiB with these bounds). Per recorded value;
//! the values are pseudo-random latencies from 100 ns to 10 s, precomputed.

mod common;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use stats_core::LatencyHistogram;
use std::hint::black_box;

fn values() -> Vec<u64> {
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (100 + x % 10_000_000_000) >> (x % 24)
        })
        .collect()
}

fn record(c: &mut Criterion) {
    let values = values();
    let mut g = c.benchmark_group("histogram_record");
    g.throughput(Throughput::Elements(values.len() as u64));
    g.bench_function("stats_core_latency_histogram", |b| {
        let h = LatencyHistogram::new();
        b.iter(|| {
            for &v in &values {
                h.record(black_box(v));
            }
        })
    });
    g.bench_function("hdrhistogram", |b| {
        let mut h = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 1 << 36, 2).unwrap();
        b.iter(|| {
            for &v in &values {
                h.saturating_record(black_box(v));
            }
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::config(2);
    targets = record
}
criterion_main!(benches);
