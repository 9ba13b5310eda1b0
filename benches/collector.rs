//! The collector's decode and aggregate throughput: the reference
//! workload's datagrams (ten series, three tags each, mixed kinds) through
//! `Collector::ingest` on one thread (CRC, decode, per-sender accounting,
//! per-series aggregation), next to the same events as JSON lines parsed
//! by serde_json and summed into a `HashMap` by series; then one and two
//! threads taking datagrams in as the server's receiving threads do (each
//! reads a datagram on its own, then takes the shared collector's lock to
//! take it in), without the sockets. Then StatsD lines (`statsd_lines`):
//! the line parser alone, and whole datagrams through `Collector::ingest`,
//! as Etsy counters (100 names, about 100 lines to a 1,400-byte datagram,
//! the collectd comparison's load) and as DogStatsD lines with tags. And
//! the default mode's series records (`collector_records`): senders of
//! 5,000 series each, every series' totals in each pass, through one
//! thread and two as the receiving threads take them.

mod common;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use stats_collector::{Collector, Limits, Reader};
use stats_core::wire::{DEFAULT_MAX_DATAGRAM, Encoder, EncoderConfig};
use stats_pipeline::series_load::SeriesSender;
use stats_pipeline::workload::{self, JsonEvent};
use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Mutex;

const EVENTS: usize = 10_000;

/// Datagrams a receiving thread reads before it takes the lock, at most,
/// as the server's do.
const BATCH: usize = 32;

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

    // Threads taking in datagrams as the server's do: each its own
    // sender's (so none is a duplicate of another's).
    let mut g = c.benchmark_group("collector_ingest_threads");
    let shared = Mutex::new(Collector::new(Limits::default()));
    let mut encoders: Vec<Encoder> = (0..2)
        .map(|i| Encoder::new(EncoderConfig::new(100 + i)).unwrap())
        .collect();
    let many = workload::events(&ids, 5 * EVENTS, 1_700_000_000_000_000_000);
    // Two threads taking the lock for each datagram, for comparison.
    for (threads, batch) in [(1, BATCH), (2, BATCH), (2, 1)] {
        g.throughput(Throughput::Elements((threads * many.len()) as u64));
        g.bench_function(format!("{threads}_threads_{batch}_a_lock"), |b| {
            b.iter_batched(
                || {
                    (encoders.iter_mut().take(threads))
                        .map(|encoder| {
                            let mut datagrams = Vec::new();
                            workload::encode_all(encoder, &registry, &many, &mut buf, |d| {
                                datagrams.push(d.to_vec())
                            });
                            datagrams
                        })
                        .collect::<Vec<_>>()
                },
                |batches| each_thread(&shared, &batches, batch),
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
    black_box(shared.lock().unwrap().totals());
}

/// StatsD datagrams of at most 1,400 bytes, of `lines` lines made by
/// `line(i)` for the i-th line sent.
fn statsd_datagrams(lines: usize, line: impl Fn(usize) -> String) -> Vec<Vec<u8>> {
    let mut out = vec![Vec::new()];
    for i in 0..lines {
        let text = line(i);
        if out.last().is_some_and(|d| d.len() + text.len() + 1 > 1_400) {
            out.push(Vec::new());
        }
        if let Some(d) = out.last_mut() {
            if !d.is_empty() {
                d.push(b'\n');
            }
            d.extend_from_slice(text.as_bytes());
        }
    }
    out
}

fn statsd_lines(c: &mut Criterion) {
    const LINES: usize = 10_000;
    let workloads = [
        (
            "etsy_counters",
            statsd_datagrams(LINES, |i| format!("load.c{}:1|c", i % 100)),
        ),
        (
            "dogstatsd_tagged",
            statsd_datagrams(LINES, |i| {
                format!(
                    "http.requests:1|c|#route:/api/v{},code:200,host:web-{}",
                    i % 10,
                    i % 7
                )
            }),
        ),
    ];
    let mut g = c.benchmark_group("statsd_lines");
    g.throughput(Throughput::Elements(LINES as u64));
    for (name, datagrams) in &workloads {
        g.bench_function(format!("parse_{name}"), |b| {
            b.iter(|| {
                let mut n = 0usize;
                for d in datagrams {
                    n += stats_core::wire::statsd::parse(d)
                        .filter(Result::is_ok)
                        .count();
                }
                assert_eq!(n, LINES);
                n
            })
        });
        let mut collector = Collector::new(Limits::default());
        g.bench_function(format!("ingest_{name}"), |b| {
            b.iter(|| {
                for d in datagrams {
                    collector.ingest(d);
                }
            })
        });
        // Every line was taken in: each a count of 1.
        let totals = collector.totals();
        assert_eq!(totals.events % LINES as u64, 0, "{totals:?}");
    }
    g.finish();
}

/// `senders` passes of 5,000 series records, each sender's datagrams
/// apart; the records in each.
fn record_passes(senders: &mut [SeriesSender]) -> (Vec<Vec<Vec<u8>>>, usize) {
    let mut buf = vec![0u8; DEFAULT_MAX_DATAGRAM];
    let mut records = 0;
    let passes = senders
        .iter_mut()
        .map(|sender| {
            let mut datagrams = Vec::new();
            records = sender.pass(&mut buf, |d| datagrams.push(d.to_vec()));
            datagrams
        })
        .collect();
    (passes, records)
}

fn records(c: &mut Criterion) {
    const SERIES: usize = 5_000;
    let mut senders: Vec<SeriesSender> =
        (0..2).map(|i| SeriesSender::new(100 + i, SERIES)).collect();
    let mut g = c.benchmark_group("collector_records");
    let shared = Mutex::new(Collector::new(Limits::default()));
    for threads in [1, 2] {
        g.throughput(Throughput::Elements((threads * SERIES) as u64));
        g.bench_function(format!("{threads}_threads_{BATCH}_a_lock"), |b| {
            b.iter_batched(
                || record_passes(&mut senders[..threads]).0,
                |passes| each_thread(&shared, &passes, BATCH),
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
    // Every record taken in, none refused.
    let c = shared.lock().unwrap();
    let totals = c.totals();
    assert_eq!(totals.overflowed_records, 0, "{totals:?}");
    assert!(totals.records > 0);
}

/// Each of `batches` taken into `shared` by a thread of its own.
fn each_thread(shared: &Mutex<Collector>, batches: &[Vec<Vec<u8>>], batch: usize) {
    std::thread::scope(|scope| {
        for datagrams in batches {
            scope.spawn(move || take_in(shared, datagrams, batch));
        }
    })
}

/// Takes `datagrams` into `shared` as a receiving thread does: read
/// outside the lock, taken in under it `batch` at a time.
fn take_in(shared: &Mutex<Collector>, datagrams: &[Vec<u8>], batch: usize) {
    let mut readers: Vec<Reader> = (0..batch).map(|_| Reader::default()).collect();
    for chunk in datagrams.chunks(batch) {
        let readings: Vec<_> = (readers.iter_mut())
            .zip(chunk)
            .map(|(r, d)| r.read(d))
            .collect();
        let mut c = shared.lock().unwrap();
        for reading in readings {
            c.take(reading);
        }
    }
}

criterion_group! {
    name = benches;
    config = common::config(3);
    targets = collector, statsd_lines, records
}
criterion_main!(benches);
