//! The HTTP endpoint over real TCP: health as JSON, metrics as Prometheus
//! text that a Prometheus parser reads, bad requests refused, connections
//! bounded, the pipeline unharmed.

mod common;

use common::{events, exchange, get};
use stats_std::{Config, Stats};
use std::io::Write;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

fn start(config: Config) -> (Stats, SocketAddr, UdpSocket) {
    let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
    let config = config
        .with_address(receiver.local_addr().unwrap().to_string())
        .with_http("127.0.0.1:0");
    let stats = Stats::start(config).unwrap();
    let address = stats.http_address().unwrap();
    (stats, address, receiver)
}

#[test]
fn health_is_json_with_every_check() {
    let (stats, address, _rx) = start(events());
    let c = stats.counter("requests", &[]).unwrap();
    c.increment();
    stats.flush(Duration::from_secs(2)).unwrap();
    let (status, body) = get(address, "/health");
    assert_eq!(status, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["status"], "healthy");
    let checks = json["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 5);
    let drop_rate = checks.iter().find(|c| c["name"] == "drop_rate").unwrap();
    assert_eq!(drop_rate["degraded_above"], 0.01);
    assert_eq!(drop_rate["value"], 0.0);
}

#[test]
fn an_unhealthy_pipeline_answers_503() {
    // Nothing listens at the destination and the breaker opens on the first
    // failure: unhealthy.
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = events()
        .with_address(format!("127.0.0.1:{port}"))
        .with_breaker(1, 60_000)
        .with_batch_size(1)
        .with_http("127.0.0.1:0");
    let stats = Stats::start(config).unwrap();
    let address = stats.http_address().unwrap();
    let c = stats.counter("c", &[]).unwrap();
    // The first send may be accepted before the refusal comes back.
    for _ in 0..20 {
        c.increment();
        let _ = stats.flush(Duration::from_millis(100));
        if stats
            .report()
            .is_some_and(|r| r.snapshot.breaker_transitions.opened > 0)
        {
            break;
        }
    }
    let (status, body) = get(address, "/health");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("\"status\":\"unhealthy\""), "{body}");
}

#[test]
fn metrics_are_prometheus_text_a_parser_reads() {
    let (stats, address, _rx) = start(events());
    let c = stats.counter("requests", &[]).unwrap();
    for _ in 0..10 {
        c.increment();
    }
    stats.counter_add("dynamic", 1, &[("k", "v")]);
    stats.flush(Duration::from_secs(2)).unwrap();
    let (status, body) = get(address, "/metrics");
    assert_eq!(status, 200);
    let lines = body.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).unwrap();
    let value = |name: &str| {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name)
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => f64::NAN,
            })
    };
    assert_eq!(value("stats_events_received_total"), Some(11.0));
    assert_eq!(value("stats_events_sent_total"), Some(11.0));
    assert_eq!(value("stats_interner_misses_total"), Some(1.0));
    let drops = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "stats_events_dropped_total")
        .count();
    assert_eq!(drops, 15, "every reason × priority");
    assert!(scrape.docs.contains_key("stats_latency_seconds"));
    // Every sample has HELP and TYPE.
    for s in &scrape.samples {
        assert!(
            scrape.docs.contains_key(&s.metric),
            "{} has no HELP",
            s.metric
        );
    }
}

#[test]
fn bad_requests_get_400_and_do_not_hurt_the_pipeline() {
    let (stats, address, rx) = start(events());
    rx.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let cases: [(&[u8], u16); 6] = [
        (b"hello\r\n\r\n", 400),
        (b"GET /health\r\n\r\n", 400),
        (b"GET /health HTTP/1.1\r\nbroken header\r\n\r\n", 400),
        (b"\xff\xff\xff\r\n\r\n", 400),
        (b"POST /health HTTP/1.1\r\n\r\n", 405),
        (b"GET /nothing HTTP/1.1\r\n\r\n", 404),
    ];
    for (request, want) in cases {
        assert_eq!(exchange(address, request).0, want, "{request:?}");
    }
    // An oversized head and a client that sends half a request and goes.
    let big = vec![b'a'; 20_000];
    assert_eq!(exchange(address, &big).0, 400);
    drop(TcpStream::connect(address).unwrap());
    // The pipeline still records and sends.
    let c = stats.counter("after", &[]).unwrap();
    c.increment();
    stats.flush(Duration::from_secs(2)).unwrap();
    let mut buf = [0u8; 2048];
    let n = rx.recv(&mut buf).unwrap();
    assert!(stats_std::stats_core::wire::decode(&buf[..n]).is_ok());
    assert_eq!(get(address, "/health").0, 200);
}

#[test]
fn connections_are_bounded() {
    let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut config = events()
        .with_address(receiver.local_addr().unwrap().to_string())
        .with_http("127.0.0.1:0");
    config.http.max_connections = 2;
    let stats = Stats::start(config).unwrap();
    let address = stats.http_address().unwrap();
    // Two clients that connect and say nothing hold both slots.
    let idle: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(address).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(get(address, "/health").0, 503);
    drop(idle);
    // Their slots free up (at once, or when the read times out).
    let mut status = 0;
    for _ in 0..50 {
        status = get(address, "/health").0;
        if status == 200 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(status, 200);
}

#[test]
fn a_client_trickling_its_request_loses_the_connection_at_the_deadline() {
    let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut config = events()
        .with_address(receiver.local_addr().unwrap().to_string())
        .with_http("127.0.0.1:0");
    config.http.max_connections = 1;
    let stats = Stats::start(config).unwrap();
    let address = stats.http_address().unwrap();
    // A byte every 200 ms: no read ever waits the 2 s, but the request as
    // a whole passes its deadline and the slot is freed.
    let mut slow = TcpStream::connect(address).unwrap();
    let start = std::time::Instant::now();
    let mut closed = false;
    for byte in b"GET /health HTTP/1.1\r\nX-Slow: ".iter().cycle() {
        if slow.write_all(&[*byte]).is_err() {
            closed = true;
            break;
        }
        if start.elapsed() > Duration::from_secs(8) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(closed, "the connection was held for as long as it trickled");
    assert!(
        start.elapsed() < Duration::from_secs(6),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(get(address, "/health").0, 200);
}

/// With aggregation at the source, `/metrics` serves the application's
/// own series as the collector renders them (names, `_total`, timers in
/// seconds as `le` histograms with exact counts, tags as labels), with
/// their descriptions, and what it serves equals what was recorded.
#[test]
fn the_application_series_can_be_scraped_as_recorded() {
    let (stats, address, _rx) = start(Config::default());
    let requests = stats.counter("http.requests", &[("route", "/a")]).unwrap();
    let depth = stats.gauge("queue.depth", &[]).unwrap();
    let latency = stats.timer("db.query", &[("table", "orders")]).unwrap();
    let sizes = stats.histogram("payload", &[]).unwrap();
    stats.describe("payload", Some("bytes"), "Request payloads.\nAs received.");
    for _ in 0..3 {
        requests.increment();
    }
    depth.set(7.5);
    for ms in [1, 1, 2, 200] {
        latency.record(Duration::from_millis(ms));
    }
    for v in [0.0, 3.0, 3.0, 100.0] {
        sizes.record(v);
    }
    // The dynamic verbs, as the handles': a gauge set and moved.
    stats.gauge_set("pool.size", 5.0, &[]);
    stats.gauge_add("pool.size", -1.5, &[]);
    stats.counter_add("jobs", 4, &[]);
    let (status, body) = get(address, "/metrics");
    assert_eq!(status, 200, "{body}");
    let has = |line: &str| assert!(body.lines().any(|l| l == line), "{line} in:\n{body}");
    has("# TYPE http_requests_total counter");
    has("http_requests_total{route=\"/a\"} 3");
    has("queue_depth 7.5");
    has("pool_size 3.5");
    has("jobs_total 4");
    has("# TYPE db_query_seconds histogram");
    has("db_query_seconds_count{table=\"orders\"} 4");
    has("db_query_seconds_bucket{table=\"orders\",le=\"+Inf\"} 4");
    // Timers' fixed boundaries (powers of 2^(1/2) s, as Prometheus's
    // floats for them: some are an ulp off the correctly rounded power):
    // 1 ms is at or below 2^-9.5 s and above 2^-10; 2 ms below 2^-8.5.
    let le = |s: f64| stats_std::stats_core::prometheus::number(s);
    has(&format!(
        "db_query_seconds_bucket{{table=\"orders\",le=\"{}\"}} 0",
        le(2f64.powf(-10.0))
    ));
    has("db_query_seconds_bucket{table=\"orders\",le=\"0.0013810679320049755\"} 2");
    has("db_query_seconds_bucket{table=\"orders\",le=\"0.002762135864009951\"} 3");
    let sum: f64 = body
        .lines()
        .find_map(|l| l.strip_prefix("db_query_seconds_sum{table=\"orders\"} "))
        .unwrap()
        .parse()
        .unwrap();
    assert!((sum - 0.204).abs() < 1e-12, "{sum}");
    // The description: its help (escaped) and its unit in the name.
    has("# HELP payload_bytes Request payloads.\\nAs received.");
    has("# TYPE payload_bytes histogram");
    has("payload_bytes_count 4");
    has("payload_bytes_bucket{le=\"0\"} 1");
    has("payload_bytes_sum 106");
    // The pipeline's own telemetry beside them, as before.
    assert!(body.contains("stats_health_status"), "{body}");
    let lines = body.lines().map(|l| Ok(l.to_string()));
    prometheus_parse::Scrape::parse(lines).unwrap();
}

/// The `metrics` facade's `describe_*`: help text and a unit, applied as
/// Prometheus naming asks.
#[test]
fn metrics_descriptions_reach_the_scrape() {
    use metrics::Recorder;
    let (stats, address, _rx) = start(Config::default());
    let recorder = stats_std::MetricsRecorder::new(stats.clone());
    recorder.describe_counter(
        "sent".into(),
        Some(metrics::Unit::Bytes),
        "Bytes sent.".into(),
    );
    recorder.describe_histogram(
        "wait".into(),
        Some(metrics::Unit::Seconds),
        "Time waited.".into(),
    );
    recorder.describe_gauge(
        "workers".into(),
        Some(metrics::Unit::Count),
        "Workers.".into(),
    );
    let meta = metrics::Metadata::new("t", metrics::Level::INFO, None);
    recorder
        .register_counter(&metrics::Key::from_name("sent"), &meta)
        .increment(5);
    recorder
        .register_histogram(&metrics::Key::from_name("wait"), &meta)
        .record(0.25);
    recorder
        .register_gauge(&metrics::Key::from_name("workers"), &meta)
        .set(4.0);
    let (_, body) = get(address, "/metrics");
    let has = |line: &str| assert!(body.lines().any(|l| l == line), "{line} in:\n{body}");
    has("# HELP sent_bytes_total Bytes sent.");
    has("sent_bytes_total 5");
    has("# HELP wait_seconds Time waited.");
    has("wait_seconds_count 1");
    has("# HELP workers Workers.");
    has("workers 4");
}
