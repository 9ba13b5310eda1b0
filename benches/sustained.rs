//! What a record call costs under sustained load, with each system's own
//! worker running as it does in an application: threads record without a
//! pause for the whole measurement (nothing is drained between calls), and
//! each call's cost is the recording thread's time over its calls.
//!
//! Groups `sustained_<op>_<n>_threads`, for `op` in `counter` (increment on
//! one of 10 series), `gauge_set` (a new value each call, 10 series),
//! `gauge_set_steady` (each of the 10 set again to the value it has, as a
//! pool's size or a steady queue's depth is), `gauge_add` (10 series),
//! `histogram` (a latency-like value, 5 series), and 1 and 2 threads. In
//! each:
//!
//! * `stats_std_source`: `stats-std` handles, aggregating at the source
//!   (the default): into the thread's shard; the worker sends the totals
//!   every second.
//! * `stats_std_events`: `stats-std` handles with `aggregation = "off"`:
//!   every value an event into the lanes, which the worker drains, encodes
//!   and sends at the same time (so full lanes and the drop policy are part
//!   of the figure).
//! * `metrics_dogstatsd`: `metrics` handles from
//!   `metrics-exporter-dogstatsd` (client-side aggregation, its forwarder
//!   thread flushing every second).
//! * `cadence`: `StatsdClient` over `QueuingMetricSink` (unbounded, as by
//!   default) over `BufferedUdpMetricSink`: a line formatted and queued per
//!   call.
//! * `opentelemetry`: the SDK's bound instruments (`bind` once, then
//!   `add`/`record`), with a periodic reader collecting every second into
//!   its in-memory exporter.
//!
//! * `harness`: the loop alone, handing each series and value to
//!   `black_box`: what each system adds to it is its cost per call.
//!
//! Every system sends to a loopback socket that nobody reads (the kernel
//! drops there), so no receiver competes for the two cores.

mod common;

use cadence::prelude::*;
use cadence::{BufferedUdpMetricSink, QueuingMetricSink, StatsdClient};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use metrics::{Key, Level, Metadata, Recorder};
use opentelemetry::KeyValue;
use opentelemetry::metrics::MeterProvider as _;
use stats_std::{AggregationMode, Config, Stats};
use std::net::UdpSocket;
use std::time::{Duration, Instant};

/// Series per operation: 10 counters or gauges, 5 histograms.
const SERIES: usize = 10;
const HISTOGRAMS: usize = 5;

/// A latency-like value in ns (1 µs to about 10 ms) for call `i`.
#[inline]
fn latency(i: u64) -> f64 {
    let x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (1_000 + (x >> 40) % 10_000_000) as f64
}

/// Runs `record(i)` `iters` times on each of `threads` threads at once;
/// the slowest thread's time (per `iters` calls on each thread).
fn sustained<F: Fn(u64) + Sync>(threads: usize, iters: u64, record: &F) -> Duration {
    let barrier = std::sync::Barrier::new(threads);
    std::thread::scope(|s| {
        let runs: Vec<_> = (0..threads)
            .map(|t| {
                let (barrier, record) = (&barrier, &record);
                s.spawn(move || {
                    // A first call outside the timing: the thread's shard,
                    // lane set or cache is set up once per thread.
                    record(t as u64);
                    barrier.wait();
                    let start = Instant::now();
                    for i in 0..iters {
                        record(i.wrapping_add(t as u64 * 7));
                    }
                    start.elapsed()
                })
            })
            .collect();
        runs.into_iter()
            .map(|r| r.join().unwrap())
            .max()
            .unwrap_or_default()
    })
}

/// A socket nobody reads, to send to.
fn sink() -> (UdpSocket, String) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let address = socket.local_addr().unwrap().to_string();
    (socket, address)
}

/// The operations each system is measured on.
trait System: Sync {
    fn counter(&self, series: usize);
    fn gauge_set(&self, series: usize, value: f64);
    fn gauge_add(&self, series: usize, delta: f64);
    fn histogram(&self, series: usize, value: f64);
}

/// The harness alone: each operation only hands its series and value to
/// `black_box`. What a system costs per call is its figure minus this.
struct Harness;

impl System for Harness {
    #[inline]
    fn counter(&self, series: usize) {
        std::hint::black_box(series);
    }
    #[inline]
    fn gauge_set(&self, series: usize, value: f64) {
        std::hint::black_box((series, value));
    }
    #[inline]
    fn gauge_add(&self, series: usize, delta: f64) {
        std::hint::black_box((series, delta));
    }
    #[inline]
    fn histogram(&self, series: usize, value: f64) {
        std::hint::black_box((series, value));
    }
}

struct Ours {
    stats: Stats,
    counters: Vec<stats_std::Counter>,
    gauges: Vec<stats_std::Gauge>,
    histograms: Vec<stats_std::Histogram>,
}

impl Ours {
    fn new(mode: AggregationMode, address: &str) -> Ours {
        let stats = Stats::start(
            Config::default()
                .with_aggregation(mode)
                .with_address(address),
        )
        .unwrap();
        let name = |i: usize| i.to_string();
        Ours {
            counters: (0..SERIES)
                .map(|i| stats.counter("requests", &[("route", &name(i))]).unwrap())
                .collect(),
            gauges: (0..SERIES)
                .map(|i| stats.gauge("queue.depth", &[("queue", &name(i))]).unwrap())
                .collect(),
            histograms: (0..HISTOGRAMS)
                .map(|i| stats.histogram("latency", &[("route", &name(i))]).unwrap())
                .collect(),
            stats,
        }
    }
}

impl System for Ours {
    #[inline]
    fn counter(&self, series: usize) {
        self.counters[series].increment();
    }
    #[inline]
    fn gauge_set(&self, series: usize, value: f64) {
        self.gauges[series].set(value);
    }
    #[inline]
    fn gauge_add(&self, series: usize, delta: f64) {
        self.gauges[series].add(delta);
    }
    #[inline]
    fn histogram(&self, series: usize, value: f64) {
        self.histograms[series].record(value);
    }
}

struct DogStatsd {
    counters: Vec<metrics::Counter>,
    gauges: Vec<metrics::Gauge>,
    histograms: Vec<metrics::Histogram>,
}

impl DogStatsd {
    fn new(address: &str) -> DogStatsd {
        use metrics_exporter_dogstatsd::{AggregationMode, DogStatsDBuilder};
        let recorder = DogStatsDBuilder::default()
            .with_remote_address(address)
            .unwrap()
            .with_aggregation_mode(AggregationMode::Conservative)
            .with_flush_interval(Duration::from_secs(1))
            .with_telemetry(false)
            .build()
            .unwrap();
        static META: Metadata<'static> = Metadata::new("bench", Level::INFO, None);
        let key = |name: &'static str, label: &'static str, i: usize| {
            Key::from_parts(name, vec![metrics::Label::new(label, i.to_string())])
        };
        DogStatsd {
            counters: (0..SERIES)
                .map(|i| recorder.register_counter(&key("requests", "route", i), &META))
                .collect(),
            gauges: (0..SERIES)
                .map(|i| recorder.register_gauge(&key("queue.depth", "queue", i), &META))
                .collect(),
            histograms: (0..HISTOGRAMS)
                .map(|i| recorder.register_histogram(&key("latency", "route", i), &META))
                .collect(),
        }
    }
}

impl System for DogStatsd {
    #[inline]
    fn counter(&self, series: usize) {
        self.counters[series].increment(1);
    }
    #[inline]
    fn gauge_set(&self, series: usize, value: f64) {
        self.gauges[series].set(value);
    }
    #[inline]
    fn gauge_add(&self, series: usize, delta: f64) {
        self.gauges[series].increment(delta);
    }
    #[inline]
    fn histogram(&self, series: usize, value: f64) {
        self.histograms[series].record(value);
    }
}

struct Cadence {
    client: StatsdClient,
    counters: Vec<String>,
    gauges: Vec<String>,
    histograms: Vec<String>,
}

impl Cadence {
    fn new(address: &str) -> Cadence {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let buffered = BufferedUdpMetricSink::from(address, socket).unwrap();
        let client = StatsdClient::from_sink("bench", QueuingMetricSink::from(buffered));
        let names = |base: &str, n: usize| (0..n).map(|i| format!("{base}.{i}")).collect();
        Cadence {
            client,
            counters: names("requests", SERIES),
            gauges: names("queue.depth", SERIES),
            histograms: names("latency", HISTOGRAMS),
        }
    }
}

impl System for Cadence {
    #[inline]
    fn counter(&self, series: usize) {
        let _ = self.client.count(&self.counters[series], 1);
    }
    #[inline]
    fn gauge_set(&self, series: usize, value: f64) {
        let _ = self.client.gauge(&self.gauges[series], value);
    }
    #[inline]
    fn gauge_add(&self, series: usize, delta: f64) {
        // StatsD has no other way to move a gauge than a signed value,
        // which cadence sends as a plain gauge line.
        let _ = self.client.gauge(&self.gauges[series], delta);
    }
    #[inline]
    fn histogram(&self, series: usize, value: f64) {
        let _ = self.client.histogram(&self.histograms[series], value);
    }
}

struct OpenTelemetry {
    _provider: opentelemetry_sdk::metrics::SdkMeterProvider,
    counters: Vec<opentelemetry::metrics::BoundCounter<u64>>,
    gauges: Vec<opentelemetry::metrics::BoundGauge<f64>>,
    up_down: Vec<opentelemetry::metrics::BoundUpDownCounter<f64>>,
    histograms: Vec<opentelemetry::metrics::BoundHistogram<f64>>,
}

impl OpenTelemetry {
    fn new() -> OpenTelemetry {
        use opentelemetry_sdk::metrics::{
            InMemoryMetricExporter, PeriodicReader, SdkMeterProvider,
        };
        let reader = PeriodicReader::builder(InMemoryMetricExporter::default())
            .with_interval(Duration::from_secs(1))
            .build();
        let provider = SdkMeterProvider::builder().with_reader(reader).build();
        let meter = provider.meter("bench");
        let attrs = |key: &'static str, i: usize| [KeyValue::new(key, i.to_string())];
        let counter = meter.u64_counter("requests").build();
        let gauge = meter.f64_gauge("queue.depth").build();
        let up_down = meter.f64_up_down_counter("queue.depth.change").build();
        let histogram = meter.f64_histogram("latency").build();
        OpenTelemetry {
            counters: (0..SERIES)
                .map(|i| counter.bind(&attrs("route", i)))
                .collect(),
            gauges: (0..SERIES)
                .map(|i| gauge.bind(&attrs("queue", i)))
                .collect(),
            up_down: (0..SERIES)
                .map(|i| up_down.bind(&attrs("queue", i)))
                .collect(),
            histograms: (0..HISTOGRAMS)
                .map(|i| histogram.bind(&attrs("route", i)))
                .collect(),
            _provider: provider,
        }
    }
}

impl System for OpenTelemetry {
    #[inline]
    fn counter(&self, series: usize) {
        self.counters[series].add(1);
    }
    #[inline]
    fn gauge_set(&self, series: usize, value: f64) {
        self.gauges[series].record(value);
    }
    #[inline]
    fn gauge_add(&self, series: usize, delta: f64) {
        self.up_down[series].add(delta);
    }
    #[inline]
    fn histogram(&self, series: usize, value: f64) {
        self.histograms[series].record(value);
    }
}

/// The operations measured, in group order.
const OPS: [&str; 5] = [
    "counter",
    "gauge_set",
    "gauge_set_steady",
    "gauge_add",
    "histogram",
];

/// Operation `op` of `system` on `threads` threads, as `name` in `g`.
/// Generic over the system, so the figure is the system's call and not a
/// dynamic dispatch of the harness.
fn bench<S: System>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    system: &S,
    op: usize,
    threads: usize,
) {
    match op {
        0 => measure(g, name, threads, |i| system.counter(i as usize % SERIES)),
        1 => measure(g, name, threads, |i| {
            system.gauge_set(i as usize % SERIES, (i % 1_000) as f64)
        }),
        2 => measure(g, name, threads, |i| {
            let series = i as usize % SERIES;
            system.gauge_set(series, series as f64)
        }),
        3 => measure(g, name, threads, |i| {
            system.gauge_add(i as usize % SERIES, if i % 3 == 0 { -1.0 } else { 1.0 })
        }),
        _ => measure(g, name, threads, |i| {
            system.histogram(i as usize % HISTOGRAMS, latency(i))
        }),
    }
}

/// The CPU time this process has used, in clock ticks (Linux's
/// `/proc/self/stat`, user and system); 0 where it cannot be read.
fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // After the command's closing parenthesis, field 3 (the state) on:
    // utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let field = |n: usize| -> u64 {
        rest.split_whitespace()
            .nth(n - 3)
            .and_then(|f| f.parse().ok())
            .unwrap_or(0)
    };
    field(14) + field(15)
}

/// Waits (up to 60 s) until the process's threads use less than a fifth
/// of a core over a quarter of a second.
fn settle() {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let before = cpu_ticks();
        std::thread::sleep(Duration::from_millis(250));
        // 100 ticks a second: 5 ticks is 50 ms of CPU in 250 ms.
        if cpu_ticks().saturating_sub(before) < 5 {
            return;
        }
    }
}

fn measure<F: Fn(u64) + Sync>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    threads: usize,
    record: F,
) {
    g.bench_function(name, |b| {
        b.iter_custom(|iters| sustained(threads, iters, &record))
    });
}

fn sustained_calls(c: &mut Criterion) {
    let sockets: Vec<(UdpSocket, String)> = (0..4).map(|_| sink()).collect();
    let source = Ours::new(AggregationMode::Source, &sockets[0].1);
    let events = Ours::new(AggregationMode::Off, &sockets[1].1);
    let dogstatsd = DogStatsd::new(&sockets[2].1);
    let cadence = Cadence::new(&sockets[3].1);
    let otel = OpenTelemetry::new();
    for (op, op_name) in OPS.iter().enumerate() {
        for threads in [1, 2] {
            let mut g = c.benchmark_group(format!("sustained_{op_name}_{threads}_threads"));
            g.throughput(Throughput::Elements(1));
            // Each system measured once the process is quiet: the peers'
            // background threads (dogstatsd's forwarder going through a
            // run's values, cadence's queue) keep a core busy for a while
            // after their run, which the next measurement would share.
            settle();
            bench(&mut g, "harness", &Harness, op, threads);
            settle();
            bench(&mut g, "stats_std_source", &source, op, threads);
            settle();
            bench(&mut g, "stats_std_events", &events, op, threads);
            settle();
            bench(&mut g, "metrics_dogstatsd", &dogstatsd, op, threads);
            settle();
            bench(&mut g, "cadence", &cadence, op, threads);
            settle();
            bench(&mut g, "opentelemetry", &otel, op, threads);
            g.finish();
        }
    }
    // Every value the source-mode pipeline was given is in its totals.
    let report = source.stats.shutdown(Duration::from_secs(5)).unwrap();
    let a = report.aggregation.unwrap();
    assert!(a.stats.recorded.iter().sum::<u64>() > 0);
    let _ = events.stats.shutdown(Duration::from_secs(5));
}

criterion_group! {
    name = benches;
    config = common::config(3);
    targets = sustained_calls
}
criterion_main!(benches);
