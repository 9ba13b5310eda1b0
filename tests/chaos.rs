//! The whole pipeline under the conditions the requirements name, over real
//! loopback UDP: nothing listening, a receiver that goes and comes back, a
//! proxy that delays, reorders and duplicates, tiny socket buffers, lanes
//! full for a long time, CPU saturation, a ramp from idle to 100k events/s
//! and back, and overload with mixed priorities (shutdown's drain is
//! `std-adapter/tests/loopback.rs`'s). In each the
//! application never waits (record calls stay sub-millisecond), memory stays
//! bounded, and every event is delivered or counted with its reason.
//!
//! Aggregating at the source, the totals survive what the network does:
//! through the proxy, and through loss in a network namespace, the
//! collector's totals equal what was recorded once the sender has flushed;
//! beside it, a peer that sends per-interval deltas
//! (`metrics-exporter-dogstatsd`) loses what the loss drops.
//!
//! `CHAOS_SECONDS` scales the long phases (default 2; `.ci/chaos.sh` runs the
//! full-lane case for two minutes). The nftables cases need root and a
//! network namespace: `.ci/chaos.sh` runs them.

use stats_collector::outputs::prometheus;
use stats_collector::{Server, Settings};
use stats_core::{BreakerState, DropReason, Priority};
use stats_pipeline::load::{self, Plan, Profile, Run};
use stats_pipeline::receiver::{Receiver, highest_in, missing_in};
use stats_std::{AggregationMode, Config, Report, Stats};
use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The event pipeline (`aggregation = "off"`), which these tests are about.
fn events() -> Config {
    Config::default().with_aggregation(AggregationMode::Off)
}

/// One case at a time: each measures the process's memory and CPU, and
/// they would disturb one another.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn seconds() -> u64 {
    std::env::var("CHAOS_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2)
}

/// A loopback port nothing listens on.
fn dead_port() -> String {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap().to_string()
}

fn start(config: Config) -> Stats {
    Stats::start(config.with_breaker(3, 200)).unwrap()
}

fn plan(rate: u64, duration: Duration, threads: usize) -> Plan {
    Plan {
        profile: Profile::steady(rate),
        duration,
        threads,
        sample_every: Duration::from_millis(100),
    }
}

/// The application never waited: sampled record calls stay under 1 ms at
/// the 99.9th percentile (a descheduled thread can exceed that at the
/// maximum; a call that blocked would take the breaker's or a socket's time).
fn never_blocked(run: &Run) {
    let q = run.record_latency.expect("record calls were timed");
    assert!(q.p999 < 1_000_000, "record p99.9 {} ns", q.p999);
}

/// Memory stayed bounded: the pipeline within its budget throughout, RSS
/// growth under 10 MB.
fn bounded(run: &Run, report: &Report) {
    let s = &report.snapshot;
    assert!(s.memory_bytes <= s.memory_max_bytes);
    for x in &run.samples {
        assert!(x.pipeline_bytes <= s.memory_max_bytes);
    }
    let first = run.samples.first().map_or(0, |x| x.rss_bytes);
    let max = run.samples.iter().map(|x| x.rss_bytes).max().unwrap_or(0);
    assert!(max < first + 10_000_000, "RSS {first} -> {max}");
}

/// Every recorded event is sent, dropped with a reason, failed, refused or
/// still buffered, and the recording threads' count agrees.
fn conserved(run: &Run, report: &Report) {
    let s = &report.snapshot;
    assert!(s.is_conserved(), "{s:?}");
    assert_eq!(s.events_received, run.recorded);
}

#[test]
fn nothing_listening_opens_the_breaker_and_counts_every_event() {
    let _serial = serial();
    let stats = start(events().with_address(dead_port()));
    let run = load::run(
        &stats,
        &|| 0,
        &plan(50_000, Duration::from_secs(seconds()), 2),
    );
    let report = stats.shutdown(Duration::from_secs(2)).unwrap();
    let s = &report.snapshot;
    never_blocked(&run);
    bounded(&run, &report);
    conserved(&run, &report);
    assert!(s.breaker_transitions.opened >= 1, "{s:?}");
    assert!(s.counters.events_send_failed > 0);
    assert!(run.samples.iter().any(|x| x.breaker_open));
    assert!(s.drops.by_reason(DropReason::CircuitOpen) + s.counters.events_send_failed > 0);
}

#[test]
fn a_receiver_that_goes_and_comes_back() {
    let _serial = serial();
    let first = Receiver::start("127.0.0.1:0", 4 << 20).unwrap();
    let address = first.address().to_string();
    let stats = start(events().with_address(address.clone()));
    let phase = Duration::from_millis(700 * seconds());
    let done = AtomicBool::new(false);
    let (run, second) = std::thread::scope(|scope| {
        let load = scope.spawn(|| {
            let run = load::run(&stats, &|| 0, &plan(20_000, phase * 3, 2));
            done.store(true, Ordering::Relaxed);
            run
        });
        std::thread::sleep(phase);
        let before = first.settle(Duration::from_millis(20), Duration::from_secs(1));
        let sequences = first.sequences();
        drop(first);
        std::thread::sleep(phase);
        let second = Receiver::start(&address, 4 << 20).unwrap();
        let run = load.join().unwrap();
        (run, (before, sequences, second))
    });
    stats.flush(Duration::from_secs(2)).unwrap();
    let (before, mut sequences, second) = second;
    let after = second.settle(Duration::from_millis(50), Duration::from_secs(2));
    let report = stats.shutdown(Duration::from_secs(2)).unwrap();
    let s = &report.snapshot;
    never_blocked(&run);
    bounded(&run, &report);
    conserved(&run, &report);
    assert!(before.events > 0 && after.events > 0, "delivery resumed");
    assert!(
        s.breaker_transitions.opened >= 1,
        "{:?}",
        s.breaker_transitions
    );
    assert!(
        s.breaker_transitions.closed >= 1,
        "{:?}",
        s.breaker_transitions
    );
    assert_eq!(s.breaker, BreakerState::Closed);
    // Datagrams the kernel took while nobody listened are the receivers'
    // sequence gaps: every sent datagram arrived or is known missing.
    for (sender, bits) in second.sequences() {
        let merged = sequences.entry(sender).or_default();
        merged.resize(merged.len().max(bits.len()), 0);
        for (m, b) in merged.iter_mut().zip(bits) {
            *m |= b;
        }
    }
    let received: u64 = sequences
        .values()
        .flatten()
        .map(|w| u64::from(w.count_ones()))
        .sum();
    // Each datagram built took a sequence number: it was sent, or failed
    // (refused: counted by the sender).
    let missing = missing_in(&sequences);
    let built = s.counters.datagrams_sent + s.counters.send_errors;
    assert_eq!(received + missing, built);
    // Refused datagrams are missing, and loopback reports every refusal;
    // the only others missing were still queued, unread, in the first
    // receiver's socket when it closed.
    let unread = missing - s.counters.send_errors;
    assert!(
        unread <= 16,
        "{missing} missing, {} refused",
        s.counters.send_errors
    );
    assert!(s.counters.events_sent >= before.events + after.events);
}

/// A UDP proxy that delays (holds back past later datagrams, so they arrive
/// reordered) and duplicates datagrams, from a seeded generator.
struct Proxy {
    address: String,
    duplicated: Arc<AtomicU64>,
    /// Datagrams sent after a later one.
    reordered: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    fn start(target: std::net::SocketAddr, seed: u64) -> Proxy {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(5)))
            .unwrap();
        let out = UdpSocket::bind("127.0.0.1:0").unwrap();
        out.connect(target).unwrap();
        let address = socket.local_addr().unwrap().to_string();
        let (duplicated, reordered, stop) = (
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let (d, h, st) = (duplicated.clone(), reordered.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut x = seed | 1;
            let mut buf = vec![0u8; 65_536];
            // Held datagrams: how many later ones must pass before each is
            // released, and how many have (released early when the flow
            // pauses; it arrives out of order only if one passed it).
            let mut holding: Vec<(u32, u32, Vec<u8>)> = Vec::new();
            let release = |held: (u32, u32, Vec<u8>)| {
                let _ = out.send(&held.2);
                if held.1 > 0 {
                    h.fetch_add(1, Ordering::Relaxed);
                }
            };
            while !st.load(Ordering::Relaxed) {
                let Ok(n) = socket.recv(&mut buf) else {
                    holding.drain(..).for_each(&release);
                    continue;
                };
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                match x % 100 {
                    0..=4 => {
                        let _ = out.send(&buf[..n]);
                        let _ = out.send(&buf[..n]);
                        d.fetch_add(1, Ordering::Relaxed);
                    }
                    5..=14 if holding.is_empty() => {
                        holding.push((3, 0, buf[..n].to_vec()));
                        continue;
                    }
                    _ => {
                        let _ = out.send(&buf[..n]);
                    }
                }
                for held in &mut holding {
                    held.0 -= 1;
                    held.1 += 1;
                }
                let (due, kept) = holding.drain(..).partition(|held| held.0 == 0);
                holding = kept;
                due.into_iter().for_each(&release);
            }
        });
        Proxy {
            address,
            duplicated,
            reordered,
            stop,
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[test]
fn delay_reordering_and_duplication_are_told_apart_and_not_double_counted() {
    let _serial = serial();
    let server = Server::start(&Settings::on_loopback().with_http(None)).unwrap();
    let proxy = Proxy::start(server.udp_address(), 0x5EED);
    // Small batches: many datagrams.
    let stats = start(
        events()
            .with_address(proxy.address.clone())
            .with_batch_size(10),
    );
    let hits = stats.counter("chaos.hits", &[]).unwrap();
    // About ten events per worker tick: hundreds of datagrams.
    let n = 5_000u64;
    for i in 0..n {
        hits.increment();
        if i % 10 == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    stats.flush(Duration::from_secs(2)).unwrap();
    let report = stats.shutdown(Duration::from_secs(2)).unwrap();
    let sent = report.snapshot.counters.datagrams_sent;
    let start = Instant::now();
    let sender = loop {
        let c = server.shards().view();
        let s = c.senders().next().map(|(_, s)| s);
        if let Some(s) = s
            && s.received == sent
            && s.duplicated == proxy.duplicated.load(Ordering::Relaxed)
        {
            break s;
        }
        drop(c);
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{s:?}, sent {sent}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let reordered = proxy.reordered.load(Ordering::Relaxed);
    assert!(
        reordered > 10 && sender.duplicated > 10,
        "{reordered} {sender:?}"
    );
    assert_eq!(sender.lost, 0, "late datagrams are not losses: {sender:?}");
    assert_eq!(sender.reordered, reordered, "{sender:?}");
    // Duplicates were not aggregated twice.
    let text = prometheus::render_metrics(&server.shards().view());
    assert!(text.contains(&format!("chaos_hits_total {n}\n")), "{text}");
}

#[test]
fn tiny_socket_buffers_lose_datagrams_the_receiver_can_name() {
    let _serial = serial();
    // The smallest buffers the kernel grants, on both ends.
    let receiver = Receiver::start("127.0.0.1:0", 1).unwrap();
    let mut config = events().with_address(receiver.address().to_string());
    config.transport.send_buffer_bytes = 1;
    let stats = start(config);
    let run = load::run(
        &stats,
        &|| receiver.counts().events,
        &plan(400_000, Duration::from_secs(seconds()), 2),
    );
    stats.flush(Duration::from_secs(2)).unwrap();
    let report = stats.shutdown(Duration::from_secs(2)).unwrap();
    let got = receiver.settle(Duration::from_millis(100), Duration::from_secs(2));
    let s = &report.snapshot;
    never_blocked(&run);
    bounded(&run, &report);
    conserved(&run, &report);
    assert!(
        report.socket.send_buffer_bytes < 64 << 10,
        "{:?}",
        report.socket
    );
    // Whatever the kernel dropped, the receiver knows by sequence number,
    // but for any after the last that arrived (nothing later reveals them).
    let highest = highest_in(&receiver.sequences()).expect("datagrams arrived");
    let built = s.counters.datagrams_sent + s.counters.send_errors;
    assert!(highest < built, "{highest} of {built}");
    let after_the_last = built - (highest + 1);
    assert!(after_the_last < 16, "{after_the_last}");
    assert!(got.missing == 0 || s.counters.events_sent > got.events);
}

#[test]
fn lanes_full_for_a_long_time_stay_bounded_and_recover() {
    let _serial = serial();
    // Nothing listens for the first phase: the breaker opens and the lanes
    // fill and stay full; then a receiver appears on the same port.
    let address = dead_port();
    let stats = start(
        events()
            .with_address(address.clone())
            .with_buffer_size(1024),
    );
    let full_for = Duration::from_secs(seconds());
    let (run, receiver) = std::thread::scope(|scope| {
        let load = scope.spawn(|| {
            load::run(
                &stats,
                &|| 0,
                &plan(100_000, full_for + Duration::from_secs(1), 2),
            )
        });
        std::thread::sleep(full_for);
        let receiver = Receiver::start(&address, 4 << 20).unwrap();
        (load.join().unwrap(), receiver)
    });
    stats.flush(Duration::from_secs(2)).unwrap();
    let report = stats.shutdown(Duration::from_secs(2)).unwrap();
    let got = receiver.settle(Duration::from_millis(100), Duration::from_secs(2));
    let s = &report.snapshot;
    never_blocked(&run);
    bounded(&run, &report);
    conserved(&run, &report);
    // The recording threads' lanes stayed full: drops grew all through the
    // first phase.
    let during: Vec<u64> = run
        .samples
        .iter()
        .filter(|x| x.at < full_for)
        .map(|x| x.dropped)
        .collect();
    let quarter = during.len() / 4;
    assert!(during[quarter] > 0 && during[during.len() - 1] > during[quarter]);
    assert!(s.drops.by_reason(DropReason::CircuitOpen) > 0);
    assert!(got.events > 0, "delivery resumed");
    assert_eq!(s.breaker, BreakerState::Closed);
    assert_eq!(s.buffered(), 0);
}

#[test]
fn cpu_saturation_slows_delivery_but_loses_nothing_uncounted() {
    let _serial = serial();
    let receiver = Receiver::start("127.0.0.1:0", 16 << 20).unwrap();
    let stats = start(events().with_address(receiver.address().to_string()));
    let stop = Arc::new(AtomicBool::new(false));
    let hogs: Vec<_> = (0..4)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut x = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
                }
            })
        })
        .collect();
    let run = load::run(
        &stats,
        &|| receiver.counts().events,
        &plan(100_000, Duration::from_secs(seconds()), 2),
    );
    stop.store(true, Ordering::Relaxed);
    for h in hogs {
        h.join().unwrap();
    }
    stats.flush(Duration::from_secs(5)).unwrap();
    let report = stats.shutdown(Duration::from_secs(2)).unwrap();
    let got = receiver.settle(Duration::from_millis(100), Duration::from_secs(2));
    let s = &report.snapshot;
    bounded(&run, &report);
    conserved(&run, &report);
    assert_eq!(s.counters.datagrams_sent, got.datagrams + got.missing);
    assert_eq!(
        s.events_received,
        got.events
            + s.drops.total()
            + s.counters.events_send_failed
            + s.counters.events_refused
            + (s.counters.events_sent - got.events)
    );
}

#[test]
fn from_idle_to_100k_a_second_and_back() {
    let receiver = Receiver::start("127.0.0.1:0", 16 << 20).unwrap();
    let stats = start(events().with_address(receiver.address().to_string()));
    let s = Duration::from_secs(1);
    let profile = Profile::points(&[
        (Duration::ZERO, 0),
        (s, 100_000),
        (2 * s, 100_000),
        (2 * s + Duration::from_millis(1), 0),
    ]);
    let run = load::run(
        &stats,
        &|| receiver.counts().events,
        &Plan {
            profile,
            duration: 3 * s,
            threads: 2,
            sample_every: Duration::from_millis(100),
        },
    );
    // Idle again: the lanes empty on their own, without a flush.
    let idle = run.samples.last().unwrap();
    assert!(idle.lane_utilization < 1.0, "{idle:?}");
    let report = stats.report().unwrap();
    assert_eq!(report.snapshot.buffered(), 0, "{:?}", report.snapshot);
    let report = stats.shutdown(Duration::from_secs(2)).unwrap();
    let got = receiver.settle(Duration::from_millis(100), Duration::from_secs(2));
    never_blocked(&run);
    bounded(&run, &report);
    conserved(&run, &report);
    assert!(run.recorded > 100_000, "{}", run.recorded);
    assert_eq!(got.events, run.recorded, "all delivered");
}

#[test]
fn under_overload_high_priority_events_are_kept_while_lower_ones_go() {
    let _serial = serial();
    let receiver = Receiver::start("127.0.0.1:0", 16 << 20).unwrap();
    let stats = start(
        events()
            .with_address(receiver.address().to_string())
            .with_buffer_size(4096),
    );
    let recorded: [AtomicU64; 3] = Default::default();
    let until = Instant::now() + Duration::from_secs(seconds());
    std::thread::scope(|scope| {
        for t in 0..2 {
            let (stats, recorded) = (&stats, &recorded);
            scope.spawn(move || {
                let names = ["chaos.low", "chaos.medium", "chaos.high"];
                let counters: Vec<_> = Priority::ALL
                    .iter()
                    .map(|&p| {
                        stats
                            .counter(names[p.index()], &[("thread", &t.to_string())])
                            .unwrap()
                            .with_priority(p)
                    })
                    .collect();
                let mut mine = [0u64; 3];
                let mut i = 0u64;
                while Instant::now() < until {
                    for _ in 0..1_000 {
                        i += 1;
                        // 0.1% high, 19.9% medium, 80% low, as fast as
                        // possible: far more than the worker can send, but
                        // high events alone well within it. (At 1% high, a
                        // debug build on a busy machine ran the 1,024-slot
                        // high lanes full while the worker was off its core,
                        // and high events went too.)
                        let p = match i % 1_000 {
                            0 => Priority::High,
                            1..=199 => Priority::Medium,
                            _ => Priority::Low,
                        };
                        counters[p.index()].increment();
                        mine[p.index()] += 1;
                    }
                }
                for p in Priority::ALL {
                    recorded[p.index()].fetch_add(mine[p.index()], Ordering::Relaxed);
                }
            });
        }
    });
    let report = stats.shutdown(Duration::from_secs(5)).unwrap();
    let got = receiver.settle(Duration::from_millis(100), Duration::from_secs(2));
    let s = &report.snapshot;
    assert!(s.is_conserved());
    assert!(
        s.drops.by_priority(Priority::Low) > 0,
        "the lanes were overloaded"
    );
    assert_eq!(s.drops.by_priority(Priority::High), 0, "{:?}", s.drops);
    assert_eq!(got.missing, 0);
    let high = recorded[Priority::High.index()].load(Ordering::Relaxed);
    assert!(
        high > 1_000,
        "{high} high events are too few to show anything"
    );
    assert_eq!(got.by_priority[Priority::High.index()], high);
}

/// Run by `.ci/chaos.sh` inside a network namespace whose nftables drop 10%
/// of the datagrams to `CHAOS_NFT_PORT` and count them: the receiver's
/// sequence gaps are exactly what the firewall counted.
#[test]
#[ignore = "needs a network namespace with nftables: run .ci/chaos.sh"]
fn nftables_loss_matches_the_receivers_accounting() {
    let _serial = serial();
    let port: u16 = std::env::var("CHAOS_NFT_PORT").unwrap().parse().unwrap();
    let receiver = Receiver::start(&format!("127.0.0.1:{port}"), 16 << 20).unwrap();
    let stats = start(events().with_address(receiver.address().to_string()));
    let run = load::run(
        &stats,
        &|| receiver.counts().events,
        &plan(50_000, Duration::from_secs(seconds()), 2),
    );
    let report = stats.shutdown(Duration::from_secs(2)).unwrap();
    let got = receiver.settle(Duration::from_millis(200), Duration::from_secs(2));
    let s = &report.snapshot;
    conserved(&run, &report);
    let rules = std::process::Command::new("nft")
        .args(["list", "chain", "inet", "chaos", "output"])
        .output()
        .unwrap();
    let rules = String::from_utf8_lossy(&rules.stdout);
    let dropped: u64 = rules
        .split("counter packets ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no counter in {rules}"));
    println!(
        "sent {} datagrams, {} failed; nftables dropped {dropped}; received {}, missing by sequence {}",
        s.counters.datagrams_sent, s.counters.send_errors, got.datagrams, got.missing
    );
    assert!(dropped > 0);
    // A datagram the local firewall drops fails its send (EPERM): the sender
    // counted each as failed, its events as send-failed.
    assert_eq!(s.counters.send_errors, dropped);
    assert_eq!(s.counters.datagrams_sent, got.datagrams);
    assert_eq!(s.counters.events_sent, got.events);
    // The receiver names each dropped one by its sequence gap, but for any
    // dropped after the last that arrived (nothing later reveals those).
    let highest = highest_in(&receiver.sequences()).expect("datagrams arrived");
    let built = s.counters.datagrams_sent + s.counters.send_errors;
    let after_the_last = built - (highest + 1);
    assert_eq!(got.missing + after_the_last, dropped);
}

/// Aggregating at the source, through short intervals.
fn totals() -> Config {
    Config::default()
        .with_aggregation(AggregationMode::Source)
        .with_interval_ms(20)
        .with_refresh_interval_s(1)
}

/// What a collector holds of every series: counter totals and
/// distribution counts, summed over the series.
fn collected(server: &Server) -> (f64, u64) {
    let c = server.shards().view();
    let mut counters = 0.0;
    let mut values = 0;
    for s in c.series() {
        match s.aggregate() {
            stats_collector::Aggregate::Counter(v) => counters += v,
            stats_collector::Aggregate::Distribution(d) => values += d.count,
            stats_collector::Aggregate::Gauge(_) => {}
        }
    }
    (counters, values)
}

/// Waits until the collector's counter totals and distribution counts are
/// those of `report` (what the sender aggregated): true, or false after 5 s.
fn collector_matches(server: &Server, report: &Report) -> bool {
    let a = report.aggregation.expect("aggregating");
    let want = (
        a.stats.recorded[0] as f64,
        a.stats.recorded[2] + a.stats.recorded[3],
    );
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        if collected(server) == want {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    println!("want {want:?}, collected {:?}", collected(server));
    false
}

#[test]
fn totals_are_exact_through_duplication_and_reordering() {
    let _serial = serial();
    let server = Server::start(&Settings::on_loopback().with_http(None)).unwrap();
    let proxy = Proxy::start(server.udp_address(), 0xF00D);
    let stats = start(totals().with_address(proxy.address.clone()));
    // 500 series: every pass is several datagrams back to back, which the
    // proxy holds back and doubles.
    let counters: Vec<stats_std::Counter> = (0..500)
        .map(|i| stats.counter(&format!("chaos.series.{i}"), &[]).unwrap())
        .collect();
    let work = stats.timer("chaos.work", &[]).unwrap();
    let until = Instant::now() + Duration::from_secs(seconds());
    let mut i = 0u64;
    while Instant::now() < until {
        for c in &counters {
            c.increment();
        }
        work.record(Duration::from_micros(50 + i % 500));
        i += 1;
        std::thread::sleep(Duration::from_millis(1));
    }
    stats.flush(Duration::from_secs(2)).unwrap();
    let report = stats.shutdown(Duration::from_secs(2)).unwrap();
    assert!(collector_matches(&server, &report));
    let c = server.shards().view();
    let sender = c.senders().next().unwrap().1;
    assert!(
        proxy.duplicated.load(Ordering::Relaxed) > 0 && proxy.reordered.load(Ordering::Relaxed) > 0,
        "the proxy duplicated and reordered: {sender:?}"
    );
    assert!(sender.duplicated > 0 && sender.reordered > 0, "{sender:?}");
}

/// The loss in percent `.ci/chaos.sh` set up in the namespace's input
/// chain for `CHAOS_NFT_PORT` (datagrams the sender sends, and the network
/// loses without telling it), and that port.
fn nft_loss() -> (u16, u64) {
    let var = |name: &str| -> u64 {
        std::env::var(name)
            .unwrap_or_else(|_| panic!("{name} is set by .ci/chaos.sh"))
            .parse()
            .unwrap()
    };
    (var("CHAOS_NFT_PORT") as u16, var("CHAOS_LOSS_PERCENT"))
}

/// Datagrams the namespace's input chain dropped so far.
fn nft_dropped() -> u64 {
    let rules = std::process::Command::new("nft")
        .args(["list", "chain", "inet", "chaos", "input"])
        .output()
        .unwrap();
    let rules = String::from_utf8_lossy(&rules.stdout);
    rules
        .split("counter packets ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no counter in {rules}"))
}

/// Run by `.ci/chaos.sh` in a network namespace whose nftables lose
/// `CHAOS_LOSS_PERCENT` of the datagrams on their way in: the collector's
/// totals equal what was recorded once the sender has flushed (each flush
/// a full pass: enough of them that no series' last total is lost in all).
#[test]
#[ignore = "needs a network namespace with nftables: run .ci/chaos.sh"]
fn totals_are_exact_through_network_loss() {
    let _serial = serial();
    let (port, loss) = nft_loss();
    let server = Server::start(
        &Settings::default()
            .with_listen(format!("127.0.0.1:{port}"))
            .with_http(None),
    )
    .unwrap();
    let stats = start(totals().with_address(server.udp_address().to_string()));
    let run = load::run(
        &stats,
        &|| 0,
        &plan(50_000, Duration::from_secs(seconds()), 2),
    );
    // At 50% loss, 40 copies leave a total lost in all with odds of 2^-40.
    for _ in 0..40 {
        stats.flush(Duration::from_secs(2)).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    let report = stats.shutdown(Duration::from_secs(2)).unwrap();
    let a = report.aggregation.unwrap();
    let dropped = nft_dropped();
    println!(
        "{loss}% loss: sent {} datagrams, nftables dropped {dropped}; recorded {} values",
        a.sent.datagrams_sent, run.recorded
    );
    assert!(dropped > 0, "the loss was applied");
    assert_eq!(a.sent.send_errors, 0, "the sender never knew");
    assert_eq!(a.stats.recorded.iter().sum::<u64>(), run.recorded);
    assert!(collector_matches(&server, &report), "{loss}% loss");
}

/// Run by `.ci/chaos.sh` beside the previous case, through the same loss:
/// the same counters through this pipeline and through
/// `metrics-exporter-dogstatsd` (client-side aggregation, deltas each
/// flush), into one collector (as DogStatsD lines for the peer). Ours
/// arrive exactly; the peer's lost datagrams take their counts with them.
#[test]
#[ignore = "needs a network namespace with nftables: run .ci/chaos.sh"]
fn a_peer_that_sends_deltas_loses_what_the_network_loses() {
    use metrics::Recorder;
    let _serial = serial();
    let (port, loss) = nft_loss();
    let server = Server::start(
        &Settings::default()
            .with_listen(format!("127.0.0.1:{port}"))
            .with_http(None),
    )
    .unwrap();
    let peer = metrics_exporter_dogstatsd::DogStatsDBuilder::default()
        .with_remote_address(server.udp_address().to_string())
        .unwrap()
        .with_flush_interval(Duration::from_secs(1))
        .with_telemetry(false)
        .build()
        .unwrap();
    let stats = start(totals().with_address(server.udp_address().to_string()));
    // 2,000 series: dozens of datagrams a flush for either.
    let series = 2_000;
    static META: metrics::Metadata<'static> =
        metrics::Metadata::new("chaos", metrics::Level::INFO, None);
    let theirs: Vec<metrics::Counter> = (0..series)
        .map(|i| peer.register_counter(&metrics::Key::from_name(format!("peer.c{i}")), &META))
        .collect();
    let ours: Vec<stats_std::Counter> = (0..series)
        .map(|i| stats.counter(&format!("ours.c{i}"), &[]).unwrap())
        .collect();
    let rounds = 3 * seconds();
    for _ in 0..rounds {
        for i in 0..series {
            theirs[i].increment(1);
            ours[i].increment();
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    for _ in 0..40 {
        stats.flush(Duration::from_secs(2)).unwrap();
    }
    let _ = stats.shutdown(Duration::from_secs(2));
    // The peer has no flush: wait past two of its intervals.
    std::thread::sleep(Duration::from_millis(2_500));
    let total = |prefix: &str| -> f64 {
        let c = server.shards().view();
        c.series()
            .filter(|s| s.name.starts_with(prefix))
            .map(|s| match s.aggregate() {
                stats_collector::Aggregate::Counter(v) => v,
                _ => 0.0,
            })
            .sum()
    };
    let recorded = (series as u64 * rounds) as f64;
    let (ours_got, theirs_got) = (total("ours."), total("peer."));
    println!(
        "{loss}% loss: recorded {recorded} counts each; this pipeline delivered {ours_got} ({:.2}%), metrics-exporter-dogstatsd {theirs_got} ({:.2}%)",
        100.0 * ours_got / recorded,
        100.0 * theirs_got / recorded
    );
    assert_eq!(ours_got, recorded);
    assert!(theirs_got < recorded, "the peer lost nothing at {loss}%?");
}
