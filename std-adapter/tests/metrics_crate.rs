//! Code instrumented with the `metrics` crate's macros records through the
//! pipeline: values arrive with their names and labels, and the state that
//! belongs to a series (a gauge's value, a counter's last absolute value)
//! lives with the series, not with the handle one macro call returns, in
//! both modes.

use stats_collector::{Aggregate, Server, Settings, View};
use stats_std::stats_core::Priority;
use stats_std::stats_core::wire::decode;
use stats_std::{AggregationMode, Config, MetricsRecorder, Stats};
use std::net::UdpSocket;
use std::time::{Duration, Instant};

#[test]
fn metrics_macros_record_through_the_event_pipeline() {
    let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
    receiver
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let stats = Stats::start(
        Config::default()
            .with_aggregation(AggregationMode::Off)
            .with_address(receiver.local_addr().unwrap().to_string()),
    )
    .unwrap();
    let recorder = MetricsRecorder::new(stats.clone());
    metrics::with_local_recorder(&recorder, || {
        let requests = metrics::counter!("http.requests", "route" => "/api");
        requests.increment(2);
        requests.increment(3);
        let depth = metrics::gauge!("queue.depth");
        depth.set(10.0);
        depth.increment(5.0);
        depth.decrement(2.0);
        metrics::histogram!("payload", "unit" => "bytes").record(512.0);
        metrics::counter!(level: metrics::Level::ERROR, "errors").increment(1);
        let total = metrics::counter!("exported");
        total.absolute(7);
        total.absolute(10);
    });
    stats.flush(Duration::from_secs(2)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 2048];
    while let Ok(n) = receiver.recv(&mut buf) {
        for e in decode(&buf[..n]).unwrap().events() {
            let e = e.unwrap();
            let tags: Vec<String> = e.tags().map(|(k, v)| format!("{k}={v}")).collect();
            got.push((e.name.to_string(), e.value, tags.join(","), e.priority));
        }
    }
    let values =
        |name: &str| -> Vec<f64> { got.iter().filter(|g| g.0 == name).map(|g| g.1).collect() };
    assert_eq!(values("http.requests"), [2.0, 3.0]);
    assert!(
        got.iter()
            .any(|g| g.0 == "http.requests" && g.2 == "route=/api")
    );
    assert_eq!(values("queue.depth"), [10.0, 15.0, 13.0]);
    assert_eq!(values("payload"), [512.0]);
    assert_eq!(values("exported"), [7.0, 3.0]);
    let errors = got.iter().find(|g| g.0 == "errors").unwrap();
    assert_eq!(errors.3, Priority::High);
}

/// What a collector holds for `name` once `expect` holds of it.
fn aggregate_of(server: &Server, name: &str, expect: impl Fn(&Aggregate) -> bool) -> Aggregate {
    let start = Instant::now();
    loop {
        let found = {
            let c = server.shards().view();
            find(&c, name)
        };
        if let Some(a) = &found
            && expect(a)
        {
            return a.clone();
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{name}: {found:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn find(c: &View, name: &str) -> Option<Aggregate> {
    c.series().find(|s| s.name == name).map(|s| s.aggregate())
}

/// Gauge changes and absolute counter values through fresh macro calls
/// from several call sites and threads compose, in each mode.
#[test]
fn series_state_lives_with_the_series_whatever_the_call_site() {
    for mode in [AggregationMode::Source, AggregationMode::Off] {
        let server = Server::start(&Settings::on_loopback().with_http(None)).unwrap();
        let stats = Stats::start(
            Config::default()
                .with_aggregation(mode)
                .with_address(server.udp_address().to_string()),
        )
        .unwrap();
        let recorder = MetricsRecorder::new(stats.clone());
        std::thread::scope(|s| {
            for t in 0..2 {
                let recorder = recorder.clone();
                s.spawn(move || {
                    metrics::with_local_recorder(&recorder, || {
                        // Ten increments and three decrements, each a fresh
                        // macro call, from two threads and two call sites.
                        for _ in 0..5 {
                            metrics::gauge!("queue.depth").increment(1.0);
                        }
                        if t == 0 {
                            for _ in 0..3 {
                                metrics::gauge!("queue.depth").decrement(1.0);
                            }
                        }
                    })
                });
            }
        });
        metrics::with_local_recorder(&recorder, || {
            // An absolute counter from three call sites.
            metrics::counter!("jobs.total").absolute(5);
            metrics::counter!("jobs.total").absolute(9);
            metrics::counter!("jobs.total").absolute(12);
        });
        // Two gauge handles of the pipeline's own share the value too.
        let (a, b) = (
            stats.gauge("pool.size", &[]).unwrap(),
            stats.gauge("pool.size", &[]).unwrap(),
        );
        a.add(4.0);
        b.add(-1.0);
        stats.flush(Duration::from_secs(2)).unwrap();
        let depth = aggregate_of(&server, "queue.depth", |a| *a == Aggregate::Gauge(7.0));
        assert_eq!(depth, Aggregate::Gauge(7.0), "{mode}");
        aggregate_of(&server, "jobs.total", |a| *a == Aggregate::Counter(12.0));
        aggregate_of(&server, "pool.size", |a| *a == Aggregate::Gauge(3.0));
        let _ = stats.shutdown(Duration::from_secs(2));
    }
}
