//! The recording hot path allocates nothing: a million records through an
//! owned producer and through the shared set, with the consumer draining,
//! and the `stats-std` handles and dynamic path after warm-up, under a
//! counting global allocator (it counts the recording thread's
//! allocations).

use stats_core::{DropPolicy, Event, KeyId, Kind, LaneCapacities, Priority, StaticLanes};
use stats_pipeline::alloc_counter::CountingAllocator;

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator::new();

const CAPS: LaneCapacities = LaneCapacities {
    high: 256,
    medium: 1024,
    low: 512,
};

#[test]
fn a_million_records_allocate_nothing() {
    let lanes: Box<StaticLanes<{ 2 * CAPS.total() }, 2>> =
        Box::new(StaticLanes::new(CAPS, DropPolicy::DropByPriority).unwrap());
    let mut producer = lanes.producer().unwrap();
    let mut consumer = lanes.consumer().unwrap();
    let mut drained = 0u64;
    let before = CountingAllocator::allocations();
    for i in 0..1_000_000u64 {
        let event = Event::new(
            KeyId::from_raw((i % 97) as u32),
            Kind::ALL[(i % 4) as usize],
            i as f64,
            i,
            Priority::ALL[(i % 3) as usize],
        );
        // Both recording paths, and full lanes (drop policy) every so often.
        let _ = if i % 2 == 0 {
            producer.push(event)
        } else {
            lanes.push(event)
        };
        if i % 5_000 == 0 {
            drained += consumer.drain(usize::MAX, |_| ()) as u64;
        }
    }
    drained += consumer.drain(usize::MAX, |_| ()) as u64;
    let allocations = CountingAllocator::allocations() - before;
    assert_eq!(allocations, 0, "the hot path allocated");
    // The loop really ran the drop paths, and accounted for every event.
    let dropped = lanes.drops().total() as u64;
    assert!(
        dropped > 0,
        "lanes never filled: the drop path was not exercised"
    );
    assert_eq!(drained + dropped, 1_000_000);
}

#[test]
fn std_handles_and_the_dynamic_path_allocate_nothing_after_warm_up() {
    let receiver = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let config = stats_std::Config::default()
        .with_udp_address(receiver.local_addr().unwrap().to_string())
        .with_buffer_size(1024);
    let stats = stats_std::Stats::start(config).unwrap();
    let counter = stats.counter("requests", &[("route", "/")]).unwrap();
    let gauge = stats.gauge("depth", &[]).unwrap();
    let timer = stats.timer("query", &[("table", "t")]).unwrap();
    let histogram = stats.histogram("size", &[]).unwrap();
    let tenants = ["a", "b", "c", "d"];
    let record = |i: u64| {
        counter.increment();
        gauge.add(1.0);
        timer.record(std::time::Duration::from_nanos(i));
        histogram.record(i as f64);
        let _guard = timer.start();
        stats.count("tenant.requests", 1, &[("tenant", tenants[i as usize % 4])]);
        stats.gauge_set(
            "tenant.load",
            i as f64,
            &[("tenant", tenants[i as usize % 4])],
        );
    };
    // Warm-up: the thread's lane set and its interner cache.
    for i in 0..8 {
        record(i);
    }
    let before = CountingAllocator::allocations();
    for i in 0..100_000 {
        record(i);
    }
    let allocations = CountingAllocator::allocations() - before;
    assert_eq!(allocations, 0, "recording allocated");
    let report = stats.shutdown(std::time::Duration::from_secs(5)).unwrap();
    // Seven events per round, each delivered, dropped or buffered.
    assert_eq!(report.snapshot.events_received, 100_008 * 7);
    assert!(report.snapshot.is_conserved());
}

#[test]
fn metrics_crate_handles_allocate_nothing_per_event() {
    let receiver = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let stats = stats_std::Stats::start(
        stats_std::Config::default()
            .with_udp_address(receiver.local_addr().unwrap().to_string())
            .with_buffer_size(1024),
    )
    .unwrap();
    let recorder = stats_std::MetricsRecorder::new(stats.clone());
    let (counter, gauge, histogram) = metrics::with_local_recorder(&recorder, || {
        (
            metrics::counter!("requests", "route" => "/"),
            metrics::gauge!("depth"),
            metrics::histogram!("size"),
        )
    });
    // Warm-up: the thread's lane set.
    counter.increment(1);
    let before = CountingAllocator::allocations();
    for i in 0..100_000u64 {
        counter.increment(1);
        gauge.increment(1.0);
        histogram.record(i as f64);
    }
    assert_eq!(
        CountingAllocator::allocations() - before,
        0,
        "recording allocated"
    );
    let report = stats.shutdown(std::time::Duration::from_secs(5)).unwrap();
    assert_eq!(report.snapshot.events_received, 1 + 300_000);
    assert!(report.snapshot.is_conserved());
}

#[test]
fn the_counter_sees_allocations() {
    let before = CountingAllocator::allocations();
    let v: Vec<u64> = std::hint::black_box(Vec::with_capacity(8));
    assert_eq!(CountingAllocator::allocations() - before, 1);
    drop(v);
}
