//! Recording cost in the std adapter next to cadence, the StatsD client most
//! Rust services use, on the path each offers: a `stats-std` handle (name
//! and tags registered once), the `stats-std` dynamic path (name and tags as
//! strings, interned), and cadence's `count_with_tags` through a
//! `QueuingMetricSink` over a `BufferedUdpMetricSink`. Both send to a
//! loopback socket nobody reads, so this is the cost the recording thread
//! pays, whatever happens downstream (each side drops and counts when its
//! queue is full). A second group sends 16 datagrams through the std UDP
//! transport with one `sendmmsg` and with one `send` each.

mod common;

use cadence::prelude::*;
use cadence::{BufferedUdpMetricSink, QueuingMetricSink, StatsdClient};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use stats_std::{Config, Stats};
use std::net::UdpSocket;
use std::time::{Duration, Instant};

fn sink() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").unwrap()
}

fn cadence_client(target: &UdpSocket) -> StatsdClient {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let buffered = BufferedUdpMetricSink::from(target.local_addr().unwrap(), socket).unwrap();
    StatsdClient::from_sink("bench", QueuingMetricSink::from(buffered))
}

/// Runs `record` `iters` times on each of `threads` threads; wall time.
fn on_threads(threads: usize, iters: u64, record: impl Fn(u64) + Sync) -> Duration {
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                for i in 0..iters {
                    record(i);
                }
            });
        }
    });
    start.elapsed()
}

fn record(c: &mut Criterion) {
    let target = sink();
    let stats =
        Stats::start(Config::default().with_udp_address(target.local_addr().unwrap().to_string()))
            .unwrap();
    let counter = stats.counter("requests", &[("route", "/api")]).unwrap();
    let cadence = cadence_client(&target);
    for threads in [1, 2] {
        let mut g = c.benchmark_group(format!("record_{threads}_thread"));
        g.throughput(Throughput::Elements(threads as u64));
        g.bench_function("stats_std_handle", |b| {
            b.iter_custom(|iters| on_threads(threads, iters, |_| counter.increment()))
        });
        g.bench_function("stats_std_dynamic", |b| {
            b.iter_custom(|iters| {
                on_threads(threads, iters, |_| {
                    stats.count("requests", 1, &[("route", "/api")]);
                })
            })
        });
        g.bench_function("cadence", |b| {
            b.iter_custom(|iters| {
                on_threads(threads, iters, |_| {
                    let _ = cadence
                        .count_with_tags("requests", 1)
                        .with_tag("route", "/api")
                        .try_send();
                })
            })
        });
        g.finish();
    }
    let report = stats.shutdown(Duration::from_secs(5)).unwrap();
    assert!(report.snapshot.is_conserved());
}

/// Sixteen 1,472-byte datagrams through the std transport: one `sendmmsg`
/// against one `send` each (per datagram).
fn udp_send(c: &mut Criterion) {
    use stats_core::Transport;
    use stats_std::udp::UdpTransport;
    let target = sink();
    let address = target.local_addr().unwrap().to_string();
    let datagram = vec![0x5Au8; 1472];
    let batch: Vec<&[u8]> = vec![&datagram[..]; 16];
    let mut g = c.benchmark_group("udp_send_16_datagrams");
    g.throughput(Throughput::Elements(16));
    for (name, one) in [("sendmmsg", false), ("send_each", true)] {
        let mut t = UdpTransport::connect(&address, 1472, 4 << 20, (Instant::now(), 0)).unwrap();
        t.set_one_per_call(one);
        g.bench_function(name, |b| {
            // Nobody reads the target: a full receive queue drops there,
            // not here, so every call does the same work.
            b.iter(|| t.send_batch(&batch))
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::config(3);
    targets = record, udp_send
}
criterion_main!(benches);
