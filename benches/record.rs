//! The std adapter's event pipeline (`aggregation = "off"`: every value an
//! event through the lanes; `benches/sustained.rs` measures aggregation at
//! the source) next to cadence, the StatsD client most Rust services use,
//! each on the paths it offers: a `stats-std` handle (name and tags
//! registered once), the `stats-std` dynamic path (name and tags as
//! strings, interned), and cadence's `count_with_tags` through a
//! `QueuingMetricSink` over a `BufferedUdpMetricSink`.
//!
//! * `record_N_threads`: what a recording thread pays, in bursts of 4,096
//!   events that fit the queues (both sides are drained between bursts,
//!   outside the timing), so neither side measures its drop path.
//! * `end_to_end`: 200,000 events recorded as fast as one thread can, until
//!   a receiver on loopback has everything that will arrive (ours decodes
//!   the datagrams with the core decoder; cadence's counts StatsD lines).
//!   Every side's delivered share is printed: events not delivered were
//!   dropped (ours: counted by reason) or lost.
//! * `udp_send_16_datagrams`: the std transport's `sendmmsg` against one
//!   `send` per datagram.

mod common;

use cadence::prelude::*;
use cadence::{BufferedUdpMetricSink, MetricSink, QueuingMetricSink, StatsdClient};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use stats_core::wire::{Codec, Dialect, decode};
use stats_std::{AggregationMode, Config, Stats};
use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const BURST: u64 = 4_096;

/// The event pipeline, which these benchmarks measure.
fn events() -> Config {
    Config::default().with_aggregation(AggregationMode::Off)
}
const END_TO_END: u64 = 200_000;

/// A cadence sink the benchmark can still see (to wait for its queue).
#[derive(Clone)]
struct Queue(Arc<QueuingMetricSink>);

impl MetricSink for Queue {
    fn emit(&self, metric: &str) -> std::io::Result<usize> {
        self.0.emit(metric)
    }
    fn flush(&self) -> std::io::Result<()> {
        self.0.flush()
    }
}

fn cadence_client(target: &UdpSocket) -> (StatsdClient, Queue) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let buffered = BufferedUdpMetricSink::from(target.local_addr().unwrap(), socket).unwrap();
    let queue = Queue(Arc::new(QueuingMetricSink::from(buffered)));
    (StatsdClient::from_sink("bench", queue.clone()), queue)
}

/// Counts what arrives on a loopback socket with a large receive buffer.
struct Receiver {
    socket: Arc<UdpSocket>,
    events: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Receiver {
    /// `count` turns one datagram into a number of events.
    fn start(count: fn(&[u8]) -> u64) -> Receiver {
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
        let _ = socket.set_recv_buffer_size(16 << 20);
        socket
            .bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
            .unwrap();
        let socket: Arc<UdpSocket> = Arc::new(socket.into());
        socket
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let events = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, e, st) = (socket.clone(), events.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 65_536];
            while !st.load(Ordering::Relaxed) {
                if let Ok(n) = s.recv(&mut buf) {
                    e.fetch_add(count(&buf[..n]), Ordering::Relaxed);
                }
            }
        });
        Receiver {
            socket,
            events,
            stop,
        }
    }

    fn address(&self) -> String {
        self.socket.local_addr().unwrap().to_string()
    }

    /// Waits until nothing has arrived for 20 ms; returns the count and the
    /// instant of the last arrival.
    fn settle(&self) -> (u64, Instant) {
        let mut last = (self.events.load(Ordering::Relaxed), Instant::now());
        loop {
            std::thread::sleep(Duration::from_millis(1));
            let n = self.events.load(Ordering::Relaxed);
            if n != last.0 {
                last = (n, Instant::now());
            } else if last.1.elapsed() > Duration::from_millis(20) {
                return last;
            }
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn decoded_events(d: &[u8]) -> u64 {
    decode(d).map_or(0, |d| u64::from(d.header.event_count))
}

fn statsd_lines(d: &[u8]) -> u64 {
    d.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count() as u64
}

/// Runs `record(i)` `iters` times on each of `threads` threads, in bursts of
/// `BURST`, calling `drain` between bursts. The threads live for the whole
/// run and meet at barriers between bursts; each times its own burst, and a
/// burst takes as long as its slowest thread (so neither thread start-up nor
/// barrier wake-ups nor draining are in the figure).
fn bursts(threads: usize, iters: u64, record: impl Fn(u64) + Sync, drain: impl Fn()) -> Duration {
    let rounds = iters.div_ceil(BURST);
    let barrier = std::sync::Barrier::new(threads + 1);
    let slowest = AtomicU64::new(0);
    let mut total = Duration::ZERO;
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                for _ in 0..rounds {
                    barrier.wait();
                    let start = Instant::now();
                    for i in 0..BURST {
                        record(i);
                    }
                    slowest.fetch_max(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
                    barrier.wait();
                }
            });
        }
        for _ in 0..rounds {
            barrier.wait();
            barrier.wait();
            total += Duration::from_nanos(slowest.swap(0, Ordering::Relaxed));
            drain();
        }
    });
    // Per `iters` records on each thread.
    total.mul_f64(iters as f64 / (rounds * BURST) as f64)
}

fn record(c: &mut Criterion) {
    let target = UdpSocket::bind("127.0.0.1:0").unwrap();
    let stats =
        Stats::start(events().with_address(target.local_addr().unwrap().to_string())).unwrap();
    let counter = stats.counter("requests", &[("route", "/api")]).unwrap();
    let (cadence, queue) = cadence_client(&target);
    let flush = || stats.flush(Duration::from_secs(5)).unwrap();
    let drain_cadence = || {
        while queue.0.queued() > 0 {
            std::thread::yield_now();
        }
    };
    for threads in [1, 2] {
        let mut g = c.benchmark_group(format!("record_{threads}_threads"));
        g.throughput(Throughput::Elements(threads as u64));
        g.bench_function("stats_std_handle", |b| {
            b.iter_custom(|iters| bursts(threads, iters, |_| counter.increment(), flush))
        });
        g.bench_function("stats_std_dynamic", |b| {
            b.iter_custom(|iters| {
                let record = |_| stats.counter_add("requests", 1, &[("route", "/api")]);
                bursts(threads, iters, record, flush)
            })
        });
        g.bench_function("cadence", |b| {
            b.iter_custom(|iters| {
                let record = |_| {
                    let _ = cadence
                        .count_with_tags("requests", 1)
                        .with_tag("route", "/api")
                        .try_send();
                };
                bursts(threads, iters, record, drain_cadence)
            })
        });
        g.finish();
    }
    let report = stats.shutdown(Duration::from_secs(5)).unwrap();
    assert!(report.snapshot.is_conserved());
    assert_eq!(
        report.snapshot.drops.total(),
        0,
        "the bursts were meant to fit"
    );
}

fn end_to_end(c: &mut Criterion) {
    let mut g = c.benchmark_group("end_to_end");
    g.throughput(Throughput::Elements(END_TO_END));
    g.sample_size(10);

    // The pipeline in its own format, and speaking DogStatsD like cadence.
    for (name, codec, count) in [
        (
            "stats_std",
            Codec::Native,
            decoded_events as fn(&[u8]) -> u64,
        ),
        (
            "stats_std_dogstatsd",
            Codec::Statsd(Dialect::DogStatsd),
            statsd_lines,
        ),
    ] {
        let ours = Receiver::start(count);
        let stats = Stats::start(events().with_address(ours.address()).with_codec(codec)).unwrap();
        let counter = stats.counter("requests", &[("route", "/api")]).unwrap();
        let mut delivered = (0u64, 0u64);
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let before = ours.events.load(Ordering::Relaxed);
                    let start = Instant::now();
                    for _ in 0..END_TO_END {
                        counter.increment();
                    }
                    stats.flush(Duration::from_secs(10)).unwrap();
                    let (got, last) = ours.settle();
                    total += last.max(start) - start;
                    delivered.0 += got - before;
                    delivered.1 += END_TO_END;
                }
                total
            })
        });
        let report = stats.shutdown(Duration::from_secs(5)).unwrap();
        let s = report.snapshot;
        assert!(s.is_conserved());
        println!(
            "{name}: delivered {:.1}% of {} events; the rest dropped and counted ({} lane full, {} evicted)",
            100.0 * delivered.0 as f64 / delivered.1 as f64,
            delivered.1,
            s.drops.by_reason(stats_core::DropReason::LaneFull),
            s.drops.by_reason(stats_core::DropReason::EvictedByPriority),
        );
    }

    let theirs = Receiver::start(statsd_lines);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let buffered = BufferedUdpMetricSink::from(theirs.address(), socket).unwrap();
    let queue = Queue(Arc::new(QueuingMetricSink::from(buffered)));
    let cadence = StatsdClient::from_sink("bench", queue.clone());
    let mut delivered = (0u64, 0u64);
    g.bench_function("cadence", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let before = theirs.events.load(Ordering::Relaxed);
                let start = Instant::now();
                for _ in 0..END_TO_END {
                    let _ = cadence
                        .count_with_tags("requests", 1)
                        .with_tag("route", "/api")
                        .try_send();
                }
                while queue.0.queued() > 0 {
                    std::thread::yield_now();
                }
                let _ = cadence.flush();
                let (got, last) = theirs.settle();
                total += last.max(start) - start;
                delivered.0 += got - before;
                delivered.1 += END_TO_END;
            }
            total
        })
    });
    println!(
        "cadence: delivered {:.1}% of {} events (the rest lost without a count)",
        100.0 * delivered.0 as f64 / delivered.1 as f64,
        delivered.1
    );
    g.finish();
}

/// Sixteen 1,472-byte datagrams through the std transport: one `sendmmsg`
/// against one `send` each (per datagram).
fn udp_send(c: &mut Criterion) {
    use stats_core::Transport;
    use stats_std::udp::UdpTransport;
    let target = UdpSocket::bind("127.0.0.1:0").unwrap();
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
    targets = record, end_to_end, udp_send
}
criterion_main!(benches);
