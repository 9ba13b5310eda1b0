//! What an export costs as series grow:
//!
//! * `collector_export_100000_series`: the collector holding 100,000
//!   series (40,000 counters, 40,000 gauges, 10,000 timers and 10,000
//!   histograms, each of a few buckets, three tags each), building its
//!   `/metrics` text (`render_metrics`), its remote write requests (`le`
//!   buckets, and native histograms) and its OTLP requests, each from a
//!   view of it copied whole; and the view as exports take it, a thousand
//!   series under each hold of the lock (`view_taken`).
//! * `client_scrape_10000_series`: a client aggregating at the source with
//!   10,000 series of the same mix, its `/metrics` text as
//!   `Stats::render_metrics` builds it and as a scrape gets it over HTTP,
//!   next to `metrics-exporter-prometheus` rendering the same series
//!   (histograms with 33 buckets: what the client's default boundaries give
//!   a latency spread over eight powers of two).

use criterion::{Criterion, criterion_group, criterion_main};
use metrics::{Key, Label, Level, Metadata, Recorder};
use stats_collector::outputs::{otlp, prometheus, remote_write};
use stats_collector::{Collector, Histograms, Limits, Reader, Shards, View};
use stats_pipeline::http;
use stats_std::{Config, Stats};
use std::collections::BTreeMap;
use std::hint::black_box;

use std::net::UdpSocket;
use std::time::Duration;

/// The kind of series `i` of `n`: 40% counters, 40% gauges, 10% timers,
/// 10% histograms.
fn kind_of(i: usize, n: usize) -> usize {
    match i * 10 / n {
        0..=3 => 0,
        4..=7 => 1,
        8 => 2,
        _ => 3,
    }
}

/// A latency-like value in ms (1 to 200) for value `j` of series `i`.
fn latency_ms(i: usize, j: usize) -> f64 {
    1.0 + ((i * 31 + j * 17) % 200) as f64
}

fn collector(c: &mut Criterion) {
    let n = 100_000;
    let mut limits = Limits::default();
    limits.max_series = n + 10;
    limits.max_memory = 4 << 30;
    let mut collector = Collector::new(limits);
    // The same datagrams into one shard, for the view taken as an export
    // takes it.
    let shards = Shards::new(limits, 1);
    let mut take = |bytes: &[u8]| {
        collector.ingest(bytes);
        shards.take(0, [Reader::default().read(bytes)]);
    };
    let mut lines = String::new();
    for i in 0..n {
        let tags = format!("#service:api,zone:z{},shard:{}", i % 3, i % 100);
        match kind_of(i, n) {
            0 => lines.push_str(&format!("requests.{i}:{}|c|{tags}\n", i % 7 + 1)),
            1 => lines.push_str(&format!("depth.{i}:{}|g|{tags}\n", i % 50)),
            2 => {
                for j in 0..4 {
                    lines.push_str(&format!("latency.{i}:{}|ms|{tags}\n", latency_ms(i, j)));
                }
            }
            _ => {
                for j in 0..4 {
                    lines.push_str(&format!("size.{i}:{}|h|{tags}\n", (i + j * 1000) % 5000));
                }
            }
        }
        if lines.len() > 1_200 {
            take(lines.as_bytes());
            lines.clear();
        }
    }
    take(lines.as_bytes());
    assert_eq!(collector.series().count(), n);
    let labels: BTreeMap<String, String> = [("collector".to_string(), "a".to_string())].into();

    let mut g = c.benchmark_group("collector_export_100000_series");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    // What an export takes from ingest's lock: the series copied a
    // thousand at a time (the outputs below each include a copy whole).
    g.bench_function("view_taken", |b| {
        b.iter(|| black_box(shards.view().series_held()))
    });
    g.bench_function("render_metrics", |b| {
        b.iter(|| black_box(prometheus::render_metrics(&View::of(&collector))))
    });
    g.bench_function("remote_write_le_buckets", |b| {
        b.iter(|| {
            black_box(remote_write::requests(
                &View::of(&collector),
                &labels,
                1_700_000_000_000,
            ))
        })
    });
    g.bench_function("otlp", |b| {
        b.iter(|| black_box(otlp::requests(&View::of(&collector), &labels, 1, 2)))
    });
    collector.set_histograms(Histograms {
        native: true,
        ..Histograms::default()
    });
    g.bench_function("remote_write_native_histograms", |b| {
        b.iter(|| {
            black_box(remote_write::requests(
                &View::of(&collector),
                &labels,
                1_700_000_000_000,
            ))
        })
    });
    g.finish();
}

fn client(c: &mut Criterion) {
    let n = 10_000;
    let sink = UdpSocket::bind("127.0.0.1:0").unwrap();
    let config = Config::default()
        .with_address(sink.local_addr().unwrap().to_string())
        .with_http("127.0.0.1:0");
    let stats = Stats::start(config).unwrap();
    let prometheus = metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets(
            &(0..33)
                .map(|k| 2f64.powf(-10.0 + f64::from(k) / 4.0))
                .collect::<Vec<_>>(),
        )
        .unwrap()
        .build_recorder();
    let meta = Metadata::new("bench", Level::INFO, None);
    for i in 0..n {
        let zone = format!("z{}", i % 3);
        let shard = format!("{}", i % 100);
        let tags = [
            ("service", "api"),
            ("zone", zone.as_str()),
            ("shard", shard.as_str()),
        ];
        let labels: Vec<Label> = tags
            .iter()
            .map(|&(k, v)| Label::new(k, v.to_string()))
            .collect();
        match kind_of(i, n) {
            0 => {
                let name = format!("requests.{i}");
                stats.counter(&name, &tags).unwrap().add(i as u64 % 7 + 1);
                let key = Key::from_parts(name, labels);
                prometheus
                    .register_counter(&key, &meta)
                    .increment(i as u64 % 7 + 1);
            }
            1 => {
                let name = format!("depth.{i}");
                stats.gauge(&name, &tags).unwrap().set((i % 50) as f64);
                let key = Key::from_parts(name, labels);
                prometheus.register_gauge(&key, &meta).set((i % 50) as f64);
            }
            kind => {
                let name = format!("latency.{i}");
                let key = Key::from_parts(name.clone(), labels);
                let h = prometheus.register_histogram(&key, &meta);
                if kind == 2 {
                    let timer = stats.timer(&name, &tags).unwrap();
                    for j in 0..4 {
                        let ms = latency_ms(i, j);
                        timer.record(Duration::from_secs_f64(ms / 1e3));
                        h.record(ms / 1e3);
                    }
                } else {
                    let histogram = stats.histogram(&name, &tags).unwrap();
                    for j in 0..4 {
                        let v = ((i + j * 1000) % 5000) as f64;
                        histogram.record(v);
                        h.record(v);
                    }
                }
            }
        }
    }
    stats.flush(Duration::from_secs(5)).unwrap();
    let address = stats.http_address().unwrap();
    let handle = prometheus.handle();
    assert!(stats.render_metrics().contains("requests_9_total"));

    let mut g = c.benchmark_group("client_scrape_10000_series");
    g.sample_size(20);
    g.bench_function("stats_std_render_metrics", |b| {
        b.iter(|| black_box(stats.render_metrics()))
    });
    g.bench_function("stats_std_http_get", |b| {
        b.iter(|| black_box(http::get(address, "/metrics").unwrap().len()))
    });
    g.bench_function("metrics_exporter_prometheus_render", |b| {
        b.iter(|| black_box(handle.render()))
    });
    g.finish();
    drop(sink);
}

criterion_group!(benches, collector, client);
criterion_main!(benches);
