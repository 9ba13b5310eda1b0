//! The recording hot path allocates nothing: a million records through an
//! owned producer and through the shared set, with the consumer draining,
//! the core's aggregation tables, and the `stats-std` handles, dynamic
//! path and `metrics` macros after warm-up in both modes (aggregated at the
//! source, and events), under a counting global allocator (it counts the
//! recording thread's allocations).

use stats_core::{
    Aggregates, AggregatesConfig, DropPolicy, Event, KeyId, Kind, LaneCapacities, Priority, Shard,
    StaticLanes, Word,
};
use stats_pipeline::alloc_counter::CountingAllocator;
use stats_std::{AggregationMode, Report};

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
fn a_million_aggregated_records_allocate_nothing() {
    let config = AggregatesConfig::new(64, 1);
    let tables =
        Aggregates::with_storage(Word::zeroed(config.fixed_words() + 65_536).unwrap(), config)
            .unwrap();
    let series: Vec<_> = (0..64u32)
        .map(|i| {
            tables
                .insert(KeyId::from_raw(i), Kind::ALL[(i % 4) as usize])
                .unwrap()
        })
        .collect();
    let mut shard = Shard::claim(&tables).unwrap();
    // Warm-up: each series' cells.
    for &s in &series {
        shard.add(s, 1);
        shard.set(s, 1.0);
        let _ = shard.record(s, 1.0);
    }
    let before = CountingAllocator::allocations();
    for i in 0..1_000_000u64 {
        let s = series[(i % 64) as usize];
        match s.kind() {
            Kind::Counter => shard.add(s, 1),
            Kind::Gauge => shard.change(s, 1.0),
            _ => {
                let _ = shard.record(s, (i % 10_000) as f64);
            }
        }
        if i % 7 == 0 {
            // The shared path too.
            tables.add(series[0], 1);
        }
    }
    assert_eq!(
        CountingAllocator::allocations() - before,
        0,
        "aggregating allocated"
    );
}

/// The values a round of `record` below records, as the report counts
/// them: in events, or in values aggregated.
fn recorded(report: &Report, mode: AggregationMode) -> u64 {
    match mode {
        AggregationMode::Source => report
            .aggregation
            .map_or(0, |a| a.stats.recorded.iter().sum()),
        _ => {
            assert!(report.snapshot.is_conserved());
            report.snapshot.events_received
        }
    }
}

fn pipeline(mode: AggregationMode) -> (stats_std::Stats, std::net::UdpSocket) {
    let receiver = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let config = stats_std::Config::default()
        .with_address(receiver.local_addr().unwrap().to_string())
        .with_buffer_size(1024)
        .with_aggregation(mode);
    (stats_std::Stats::start(config).unwrap(), receiver)
}

#[test]
fn std_handles_and_the_dynamic_path_allocate_nothing_after_warm_up() {
    for mode in [AggregationMode::Source, AggregationMode::Off] {
        let (stats, _receiver) = pipeline(mode);
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
            stats.counter_add("tenant.requests", 1, &[("tenant", tenants[i as usize % 4])]);
            stats.gauge_set(
                "tenant.load",
                i as f64,
                &[("tenant", tenants[i as usize % 4])],
            );
        };
        // Warm-up: the thread's lane set or shard, its cells, its caches.
        for i in 0..8 {
            record(i);
        }
        let before = CountingAllocator::allocations();
        for i in 0..100_000 {
            record(i);
        }
        let allocations = CountingAllocator::allocations() - before;
        assert_eq!(allocations, 0, "recording allocated ({mode})");
        let report = stats.shutdown(std::time::Duration::from_secs(5)).unwrap();
        // Seven values per round, each counted.
        assert_eq!(recorded(&report, mode), 100_008 * 7, "{mode}");
    }
}

#[test]
fn metrics_crate_macros_allocate_nothing_per_call() {
    for mode in [AggregationMode::Source, AggregationMode::Off] {
        let (stats, _receiver) = pipeline(mode);
        let recorder = stats_std::MetricsRecorder::new(stats.clone());
        metrics::with_local_recorder(&recorder, || {
            let record = |i: u64| {
                // As users write them: a macro call each time, which looks
                // the key's handle up.
                metrics::counter!("requests", "route" => "/").increment(1);
                metrics::gauge!("depth").increment(1.0);
                metrics::histogram!("size").record(i as f64);
            };
            // Warm-up: the key's handles, the thread's lane set or shard.
            record(0);
            let before = CountingAllocator::allocations();
            for i in 0..100_000u64 {
                record(i);
            }
            assert_eq!(
                CountingAllocator::allocations() - before,
                0,
                "recording allocated ({mode})"
            );
        });
        let report = stats.shutdown(std::time::Duration::from_secs(5)).unwrap();
        assert_eq!(recorded(&report, mode), 3 * 100_001, "{mode}");
    }
}

#[test]
fn the_counter_sees_allocations() {
    let before = CountingAllocator::allocations();
    let v: Vec<u64> = std::hint::black_box(Vec::with_capacity(8));
    assert_eq!(CountingAllocator::allocations() - before, 1);
    drop(v);
}
