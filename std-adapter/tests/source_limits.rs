//! Aggregation at the source at its default limits: 64 threads recording
//! into 10,000 series deliver every series exact to the collector within
//! the default memory maximum; past `max_series`, new series fold into an
//! overflow series per name and kind, and past the room kept for those,
//! into `stats.overflow{overflow=true}`, with nothing lost.

use stats_collector::{Aggregate, Limits, Server, Settings};
use stats_std::stats_core::Kind;
use stats_std::{AggregationMode, Config, Stats};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The collector's counter totals by (name, sorted tags).
fn counters(server: &Server) -> HashMap<(String, Vec<(String, String)>), f64> {
    let collector = server.shards().view();
    collector
        .series()
        .filter(|s| s.kind == Kind::Counter)
        .map(|s| {
            let Aggregate::Counter(sum) = s.aggregate() else {
                unreachable!("a counter series holds a counter aggregate")
            };
            let mut tags = s.tags.clone();
            tags.sort();
            ((s.name.clone(), tags), sum)
        })
        .collect()
}

/// Waits until `check` holds for the collector's counters.
fn until(
    server: &Server,
    what: &str,
    check: impl Fn(&HashMap<(String, Vec<(String, String)>), f64>) -> bool,
) -> HashMap<(String, Vec<(String, String)>), f64> {
    let start = Instant::now();
    loop {
        let now = counters(server);
        if check(&now) {
            return now;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{what}: {} series so far",
            now.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn key(name: &str, tags: &[(&str, &str)]) -> (String, Vec<(String, String)>) {
    let mut tags: Vec<(String, String)> = tags
        .iter()
        .map(|&(k, v)| (k.to_string(), v.to_string()))
        .collect();
    tags.sort();
    (name.to_string(), tags)
}

#[test]
fn sixty_four_threads_into_ten_thousand_series_arrive_exact_within_the_memory_maximum() {
    const THREADS: usize = 64;
    const SERIES: usize = 10_000;
    let mut limits = Limits::default();
    limits.max_series = 2 * SERIES;
    let server =
        Server::start(&Settings::on_loopback().with_http(None).with_limits(limits)).unwrap();
    let config = Config::default()
        .with_address(server.udp_address().to_string())
        .with_interval_ms(100)
        .with_refresh_interval_s(1);
    // The defaults this test is about.
    assert_eq!(config.aggregation.mode, AggregationMode::Source);
    assert_eq!(config.aggregation.max_series, SERIES);
    assert_eq!(config.aggregation.threads, THREADS);
    assert_eq!(config.max_memory_mb, 10);
    let stats = Stats::start(config).unwrap();
    let handles: Arc<Vec<_>> = Arc::new(
        (0..SERIES)
            .map(|i| {
                stats
                    .counter("load.requests", &[("series", &i.to_string())])
                    .unwrap()
            })
            .collect(),
    );
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let handles = Arc::clone(&handles);
            std::thread::spawn(move || {
                // Each thread in its own order, so that threads meet on
                // the same series at different times.
                for i in 0..SERIES {
                    handles[(i * 7 + t * 131) % SERIES].increment();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    stats.flush(Duration::from_secs(10)).unwrap();
    let report = stats.report().unwrap();
    let aggregation = report.aggregation.expect("source mode reports its tables");
    assert_eq!(aggregation.stats.recorded[0], (THREADS * SERIES) as u64);
    assert_eq!(aggregation.stats.series_overflowed, 0);
    assert_eq!(aggregation.memory_max_bytes, 10 << 20);
    assert!(
        aggregation.memory_bytes <= aggregation.memory_max_bytes,
        "{aggregation:?}"
    );
    assert!(
        aggregation.memory_used_bytes <= aggregation.memory_bytes,
        "{aggregation:?}"
    );
    let got = until(&server, "every series at 64", |c| {
        c.len() == SERIES && c.values().all(|&v| v == THREADS as f64)
    });
    assert_eq!(got.len(), SERIES);
    drop(handles);
    stats.shutdown(Duration::from_secs(5)).unwrap();
}

#[test]
fn series_past_the_maximum_fold_into_overflow_series_and_lose_nothing() {
    let server = Server::start(&Settings::on_loopback().with_http(None)).unwrap();
    let stats = Stats::start(
        Config::default()
            .with_address(server.udp_address().to_string())
            .with_interval_ms(50)
            .with_max_series(10),
    )
    .unwrap();
    for i in 0..10 {
        stats
            .counter("regular", &[("n", &i.to_string())])
            .unwrap()
            .add(1);
    }
    // Past the maximum: 50 tenants fold into one overflow series.
    for i in 0..50 {
        stats
            .counter("tenant.requests", &[("tenant", &i.to_string())])
            .unwrap()
            .add(1);
    }
    // 16 overflow series are kept (one per name and kind, at least 16);
    // the first is `tenant.requests`, so 15 more names get one each and
    // the rest go to the last-resort series.
    for i in 0..20 {
        stats.counter(&format!("name{i}"), &[]).unwrap().add(1_000);
    }
    stats.flush(Duration::from_secs(5)).unwrap();
    let report = stats.report().unwrap();
    let aggregation = report.aggregation.unwrap();
    assert_eq!(aggregation.stats.series_overflowed, 70);
    let overflow = [("overflow", "true")];
    let got = until(&server, "the overflow series", |c| {
        c.get(&key("stats.overflow", &overflow)) == Some(&5_000.0)
    });
    for i in 0..10 {
        assert_eq!(got[&key("regular", &[("n", &i.to_string())])], 1.0);
    }
    assert_eq!(got[&key("tenant.requests", &overflow)], 50.0);
    for i in 0..15 {
        assert_eq!(got[&key(&format!("name{i}"), &overflow)], 1_000.0);
    }
    assert!(!got.contains_key(&key("name15", &overflow)));
    // Every value is somewhere: 10 + 50 + 20 × 1,000.
    assert_eq!(got.values().sum::<f64>(), 20_060.0);
    assert_eq!(got.len(), 10 + 1 + 15 + 1);
    stats.shutdown(Duration::from_secs(5)).unwrap();
}
