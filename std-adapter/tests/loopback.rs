//! The pipeline end to end over real loopback UDP.

mod common;

use common::events;
use stats_std::stats_core::wire::decode;
use stats_std::stats_core::{DropReason, Kind, Priority};
use stats_std::{Config, LifecycleError, RecordError, Stats};
use std::net::UdpSocket;
use std::time::Duration;

/// A bound receiver and the config pointing at it.
fn receiver() -> (UdpSocket, Config) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let address = socket.local_addr().unwrap().to_string();
    (socket, events().with_address(address))
}

/// (name, kind, priority, value, tags) of every event received until quiet.
type Got = (String, Kind, Priority, f64, Vec<(String, String)>);

fn receive(socket: &UdpSocket) -> Vec<Got> {
    let mut out = Vec::new();
    let mut buf = [0u8; 65_536];
    while let Ok(n) = socket.recv(&mut buf) {
        let datagram = decode(&buf[..n]).expect("valid datagram");
        for e in datagram.events() {
            let e = e.unwrap();
            let tags = e
                .tags()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            out.push((e.name.to_string(), e.kind, e.priority, e.value, tags));
        }
    }
    out
}

fn tags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn values_and_tags_arrive_intact() {
    let (socket, config) = receiver();
    let stats = Stats::start(config).unwrap();
    let counter = stats.counter("requests", &[("route", "/api")]).unwrap();
    let gauge = stats.gauge("queue.depth", &[]).unwrap();
    let timer = stats
        .timer("db.query", &[("table", "users")])
        .unwrap()
        .with_priority(Priority::High);
    let histogram = stats.histogram("payload", &[("unit", "bytes")]).unwrap();
    counter.add(3);
    gauge.set(10.0);
    gauge.add(-2.5);
    timer.record(Duration::from_micros(1500));
    histogram.record(512.0);
    stats.counter_add("jobs.done", 2, &[("queue", "mail"), ("shard", "7")]);
    // The dynamic verbs are the handles': the gauge moves from the value
    // the handles left.
    stats.gauge_add("queue.depth", 1.5, &[]);
    stats.timer_record(
        "db.query",
        Duration::from_micros(250),
        &[("table", "users")],
    );
    stats.flush(Duration::from_secs(2)).unwrap();
    // A completed flush publishes a report that includes what it sent.
    assert_eq!(stats.report().unwrap().snapshot.counters.events_sent, 8);
    let mut got = receive(&socket);
    got.sort_by(|a, b| a.0.cmp(&b.0).then(a.3.total_cmp(&b.3)));
    let want: Vec<Got> = vec![
        (
            "db.query".into(),
            Kind::Timer,
            Priority::Medium,
            2.5e5,
            tags(&[("table", "users")]),
        ),
        (
            "db.query".into(),
            Kind::Timer,
            Priority::High,
            1.5e6,
            tags(&[("table", "users")]),
        ),
        (
            "jobs.done".into(),
            Kind::Counter,
            Priority::Medium,
            2.0,
            tags(&[("queue", "mail"), ("shard", "7")]),
        ),
        (
            "payload".into(),
            Kind::Histogram,
            Priority::Medium,
            512.0,
            tags(&[("unit", "bytes")]),
        ),
        (
            "queue.depth".into(),
            Kind::Gauge,
            Priority::Medium,
            7.5,
            vec![],
        ),
        (
            "queue.depth".into(),
            Kind::Gauge,
            Priority::Medium,
            9.0,
            vec![],
        ),
        (
            "queue.depth".into(),
            Kind::Gauge,
            Priority::Medium,
            10.0,
            vec![],
        ),
        (
            "requests".into(),
            Kind::Counter,
            Priority::Medium,
            3.0,
            tags(&[("route", "/api")]),
        ),
    ];
    assert_eq!(got, want);
    let report = stats.shutdown(Duration::from_secs(2)).unwrap();
    let s = report.snapshot;
    assert_eq!((s.events_received, s.counters.events_sent), (8, 8));
    assert!(s.is_conserved());
    assert_eq!(report.interner.misses, 1);
    assert!(report.socket.send_buffer_bytes > 0);
}

#[test]
fn an_unreachable_destination_is_counted_not_fatal() {
    // A port nobody listens on: the kernel answers with ICMP port
    // unreachable, which the connected socket reports as refused.
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = events()
        .with_address(format!("127.0.0.1:{port}"))
        .with_batch_size(1)
        .with_breaker(1_000, 60_000);
    let stats = Stats::start(config).unwrap();
    let counter = stats.counter("lost", &[]).unwrap();
    for _ in 0..50 {
        counter.increment();
        let _ = stats.flush(Duration::from_millis(200));
    }
    let report = stats.shutdown(Duration::from_secs(1)).unwrap();
    let s = report.snapshot;
    assert!(s.counters.send_errors > 0, "{s:?}");
    assert_eq!(s.events_received, 50);
    assert!(s.is_conserved(), "{s:?}");
}

#[test]
fn shutdown_drains_then_rejects_and_flush_reports_it() {
    let (socket, config) = receiver();
    let stats = Stats::start(config.with_max_batch_age_ms(60_000)).unwrap();
    let h = stats.histogram("h", &[]).unwrap();
    for i in 0..1_000 {
        h.record(f64::from(i));
    }
    // Batches of 50 go on their own; the age limit is a minute, so only
    // shutdown's drain sends the rest.
    let report = stats.shutdown(Duration::from_secs(2)).unwrap();
    assert_eq!(report.snapshot.counters.events_sent, 1_000);
    assert_eq!(receive(&socket).len(), 1_000);
    assert_eq!(h.try_record(1.0), Err(RecordError::ShutDown));
    assert_eq!(
        stats.flush(Duration::from_millis(10)),
        Err(LifecycleError::ShutDown)
    );
    let again = stats.shutdown(Duration::from_millis(10)).unwrap();
    assert_eq!(again.snapshot.counters.events_sent, 1_000);
    assert_eq!(stats.report().unwrap().rejected.shut_down, 1);
}

#[test]
fn a_flood_is_conserved_and_drops_are_typed() {
    let (socket, config) = receiver();
    let config = config
        .with_buffer_size(64)
        .with_drop_policy(stats_std::stats_core::DropPolicy::DropNewest);
    let stats = Stats::start(config).unwrap();
    let c = stats.counter("flood", &[]).unwrap();
    let mut dropped = 0u64;
    for _ in 0..100_000 {
        match c.try_add(1) {
            Ok(()) => {}
            Err(RecordError::Dropped(DropReason::LaneFull)) => dropped += 1,
            Err(e) => panic!("{e}"),
        }
    }
    let report = stats.shutdown(Duration::from_secs(2)).unwrap();
    let s = report.snapshot;
    assert_eq!(s.events_received, 100_000);
    assert_eq!(s.drops.total(), dropped);
    assert!(s.is_conserved(), "{s:?}");
    // Every event sent arrived (loopback with a 4 MiB buffer does not drop
    // at this rate).
    assert_eq!(receive(&socket).len() as u64, s.counters.events_sent);
}

#[test]
fn bad_input_is_typed_and_counted() {
    let (_socket, config) = receiver();
    let stats = Stats::start(config).unwrap();
    let long = "x".repeat(300);
    assert!(matches!(
        stats.counter(&long, &[]),
        Err(RecordError::InvalidKey(_))
    ));
    assert!(matches!(
        stats.try_counter_add("n", 1, &[("k", &long)]),
        Err(RecordError::InvalidKey(_))
    ));
    stats.counter_add(&long, 1, &[]);
    stats.flush(Duration::from_secs(1)).unwrap();
    let report = stats.shutdown(Duration::from_secs(1)).unwrap();
    assert_eq!(report.rejected.invalid_key, 3);
    let off = Stats::start(receiver().1.with_interning(false)).unwrap();
    assert_eq!(
        off.try_counter_add("n", 1, &[]),
        Err(RecordError::DynamicDisabled)
    );
    assert!(matches!(
        Stats::start(events().with_batch_size(0)),
        Err(stats_std::StartError::Config(_))
    ));
    assert!(matches!(
        Stats::start(receiver().1.with_buffer_size(1 << 20)),
        Err(stats_std::StartError::MemoryBudget { .. })
    ));
}

#[test]
fn dropping_the_last_handle_drains_and_stops() {
    let (socket, config) = receiver();
    let stats = Stats::start(config.with_max_batch_age_ms(60_000)).unwrap();
    let counter = stats.counter("last", &[]).unwrap();
    drop(stats);
    // The handle keeps the pipeline alive.
    for _ in 0..10 {
        counter.increment();
    }
    // Ten events wait for a minute-long age limit; dropping the last handle
    // shuts down, which sends them.
    drop(counter);
    let got = receive(&socket);
    assert_eq!(got.len(), 10);
    assert!(got.iter().all(|e| e.0 == "last"));
}

/// A configuration that validates but cannot start in its memory budget
/// names the settings and the budget as configured.
#[test]
fn lanes_past_the_memory_budget_are_named_at_start() {
    use stats_std::StartError;
    let Err(e) = Stats::start(events().with_buffer_size(16_777_216)) else {
        panic!("16M events of lanes in 10 MiB");
    };
    assert!(matches!(e, StartError::MemoryBudget { .. }), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains("buffer_size") && text.contains("(10.0 MiB)"),
        "{text}"
    );
}
