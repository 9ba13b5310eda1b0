//! Code instrumented with the `metrics` crate's macros records through the
//! pipeline: values arrive with their names and labels.

use stats_std::core::Priority;
use stats_std::core::wire::decode;
use stats_std::{Config, MetricsRecorder, Stats};
use std::net::UdpSocket;
use std::time::Duration;

#[test]
fn metrics_macros_record_through_the_pipeline() {
    let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
    receiver
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let stats = Stats::start(
        Config::default().with_udp_address(receiver.local_addr().unwrap().to_string()),
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
