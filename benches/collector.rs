//! The collector's decode and aggregate throughput: the reference
//! workload's datagrams (ten series, three tags each, mixed kinds) through
//! `Collector::ingest` on one thread (CRC, decode, per-sender accounting,
//! per-series aggregation), next to the same events as JSON lines parsed
//! by serde_json and summed into a `HashMap` by series; then one and two
//! threads taking datagrams in as the server's receiving threads do (each
//! reads a batch on its own, then takes it into its shard under that
//! shard's lock), without the sockets, and two threads sharing one shard
//! for comparison. Then StatsD lines (`statsd_lines`):
//! the line parser alone, and whole datagrams through `Collector::ingest`,
//! as Etsy counters (100 names, about 100 lines to a 1,400-byte datagram,
//! the collectd comparison's load) and as DogStatsD lines with tags, and
//! the Etsy lines through one and two receiving threads. And
//! the default mode's series records (`collector_records`): senders of
//! 5,000 series each, every series' totals in each pass, through one
//! thread and two as the receiving threads take them. Each group checks
//! that every event or record was taken in.

mod common;

use criterion::{BatchSize, Bencher, Criterion, Throughput, criterion_group, criterion_main};
use stats_collector::{Collector, Limits, Reader, Shards};
use stats_core::wire::{DEFAULT_MAX_DATAGRAM, Encoder, EncoderConfig};
use stats_pipeline::series_load::SeriesSender;
use stats_pipeline::workload::{self, JsonEvent};
use std::collections::HashMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

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
    // sender's (so none is a duplicate of another's), the same series.
    let mut g = c.benchmark_group("collector_ingest_threads");
    let mut encoders: Vec<Encoder> = (0..2)
        .map(|i| Encoder::new(EncoderConfig::new(100 + i)).unwrap())
        .collect();
    let many = workload::events(&ids, 5 * EVENTS, 1_700_000_000_000_000_000);
    // Two threads sharing one shard's lock, for comparison.
    for (threads, shards) in [(1, 1), (2, 2), (2, 1)] {
        let state = Shards::new(Limits::default(), shards);
        let mut sent = 0;
        g.throughput(Throughput::Elements((threads * many.len()) as u64));
        g.bench_function(format!("{threads}_threads_{shards}_shards"), |b| {
            let (registry, many) = (&registry, &many);
            let mut sources: Vec<_> = (encoders.iter_mut().take(threads))
                .map(|encoder| {
                    let mut buf = vec![0u8; DEFAULT_MAX_DATAGRAM];
                    move || {
                        let mut datagrams = Vec::new();
                        workload::encode_all(encoder, registry, many, &mut buf, |d| {
                            datagrams.push(d.to_vec())
                        });
                        (datagrams, many.len())
                    }
                })
                .collect();
            sustained(b, &state, &mut sources, &mut sent);
        });
        // Every event taken in, exactly.
        let totals = state.totals();
        assert_eq!(totals.events, sent as u64, "{totals:?}");
        assert_eq!(totals.overflowed_events + totals.duplicates_ignored, 0);
    }
    g.finish();
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
    // The Etsy lines through receiving threads as the server's take them,
    // a shard each, and two sharing one shard for comparison.
    let etsy = &workloads[0].1;
    for (threads, shards) in [(1, 1), (2, 2), (2, 1)] {
        let state = Shards::new(Limits::default(), shards);
        let mut sent = 0;
        g.throughput(Throughput::Elements((threads * LINES) as u64));
        g.bench_function(
            format!("ingest_etsy_counters_{threads}_threads_{shards}_shards"),
            |b| {
                let mut sources: Vec<_> = (0..threads).map(|_| || (etsy.clone(), LINES)).collect();
                sustained(b, &state, &mut sources, &mut sent);
            },
        );
        // Every line taken in, exactly.
        assert_eq!(state.totals().events, sent as u64);
    }
    g.finish();
}

fn records(c: &mut Criterion) {
    const SERIES: usize = 5_000;
    let mut senders: Vec<SeriesSender> =
        (0..2).map(|i| SeriesSender::new(100 + i, SERIES)).collect();
    let mut g = c.benchmark_group("collector_records");
    for (threads, shards) in [(1, 1), (2, 2), (2, 1)] {
        let mut limits = Limits::default();
        limits.max_series = 2 * SERIES;
        let state = Shards::new(limits, shards);
        let mut sent = 0;
        g.throughput(Throughput::Elements((threads * SERIES) as u64));
        g.bench_function(format!("{threads}_threads_{shards}_shards"), |b| {
            let mut sources: Vec<_> = (senders.iter_mut().take(threads))
                .map(|sender| {
                    let mut buf = vec![0u8; DEFAULT_MAX_DATAGRAM];
                    move || {
                        let mut datagrams = Vec::new();
                        let records = sender.pass(&mut buf, |d| datagrams.push(d.to_vec()));
                        (datagrams, records)
                    }
                })
                .collect();
            sustained(b, &state, &mut sources, &mut sent);
        });
        // Every record taken in, none refused; each sender's latest
        // totals held.
        let totals = state.totals();
        assert_eq!(totals.records, sent as u64, "{totals:?}");
        assert_eq!(totals.overflowed_records + totals.duplicates_ignored, 0);
        assert_eq!(state.named(), if sent > 0 { threads * SERIES } else { 0 });
    }
    g.finish();
}

/// A barrier that spins: the threads measured wait for each other on
/// cores of their own, without the scheduler's wake-up in the time.
struct SpinBarrier {
    threads: usize,
    arrived: AtomicUsize,
    round: AtomicUsize,
}

impl SpinBarrier {
    fn new(threads: usize) -> Self {
        SpinBarrier {
            threads,
            arrived: AtomicUsize::new(0),
            round: AtomicUsize::new(0),
        }
    }

    fn wait(&self) {
        let round = self.round.load(Ordering::Acquire);
        if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 == self.threads {
            self.arrived.store(0, Ordering::Relaxed);
            self.round.fetch_add(1, Ordering::Release);
        } else {
            while self.round.load(Ordering::Acquire) == round {
                std::hint::spin_loop();
            }
        }
    }
}

/// Receiving threads taking batches in, sustained: thread `i` (the
/// bench's own thread first) takes what `sources[i]` makes into shard `i`
/// of `shards` (the last when fewer), each iteration. The threads live
/// through every iteration of a sample, as a server's do (one started
/// afresh would find its shard's state in the other core's cache); a
/// batch is made before the clock starts, and the time is from all
/// starting to the last finishing. `sent` counts what the sources made.
fn sustained<S>(b: &mut Bencher<'_>, shards: &Shards, sources: &mut [S], sent: &mut usize)
where
    S: FnMut() -> (Vec<Vec<u8>>, usize) + Send,
{
    b.iter_custom(|iters| {
        let barrier = SpinBarrier::new(sources.len());
        let (first, rest) = sources.split_first_mut().unwrap();
        let (time, made) = std::thread::scope(|scope| {
            let others: Vec<_> = (rest.iter_mut().enumerate())
                .map(|(i, source)| {
                    let barrier = &barrier;
                    scope.spawn(move || {
                        let mut made = 0;
                        for _ in 0..iters {
                            let (datagrams, n) = source();
                            made += n;
                            barrier.wait();
                            take_in(shards, i + 1, &datagrams);
                            barrier.wait();
                        }
                        made
                    })
                })
                .collect();
            let (mut time, mut made) = (Duration::ZERO, 0);
            for _ in 0..iters {
                let (datagrams, n) = first();
                made += n;
                barrier.wait();
                let start = Instant::now();
                take_in(shards, 0, &datagrams);
                barrier.wait();
                time += start.elapsed();
            }
            let others: usize = others.into_iter().map(|t| t.join().unwrap()).sum();
            (time, made + others)
        });
        *sent += made;
        time
    })
}

/// Takes `datagrams` into shard `shard` as a receiving thread does: read
/// before the lock, taken in under it [`BATCH`] at a time.
fn take_in(shards: &Shards, shard: usize, datagrams: &[Vec<u8>]) {
    let mut readers: Vec<Reader> = (0..BATCH).map(|_| Reader::default()).collect();
    for chunk in datagrams.chunks(BATCH) {
        let readings: Vec<_> = (readers.iter_mut())
            .zip(chunk)
            .map(|(r, d)| r.read(d))
            .collect();
        shards.take(shard, readings);
    }
}

criterion_group! {
    name = benches;
    config = common::config(3);
    targets = collector, statsd_lines, records
}
criterion_main!(benches);
