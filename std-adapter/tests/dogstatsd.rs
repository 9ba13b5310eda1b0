//! What every series carries beyond its own name and tags: the constant
//! tags (every codec) and, in DogStatsD lines, the container id.

use stats_std::stats_core::wire::statsd::{ParsedLine, parse};
use stats_std::stats_core::wire::{Codec, Dialect, decode};
use stats_std::stats_core::{SendError, Transport};
use stats_std::{AggregationMode, ClientTransport, Config, Stats};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Keeps every datagram it is given, but refuses the first `refuse` that
/// are not the client's telemetry (keeping their lengths).
struct Spy {
    kept: Arc<Mutex<Vec<Vec<u8>>>>,
    refuse: usize,
    refused: Arc<Mutex<Vec<usize>>>,
}

impl Spy {
    /// A spy that keeps every datagram in `kept`.
    fn keeping(kept: Arc<Mutex<Vec<Vec<u8>>>>) -> Spy {
        Spy {
            kept,
            refuse: 0,
            refused: Arc::default(),
        }
    }
}

impl Transport for Spy {
    fn send(&mut self, datagram: &[u8]) -> Result<(), SendError> {
        let mut refused = self.refused.lock().unwrap();
        if refused.len() < self.refuse && !datagram.starts_with(b"datadog.dogstatsd.client.") {
            refused.push(datagram.len());
            return Err(SendError::Refused);
        }
        self.kept.lock().unwrap().push(datagram.to_vec());
        Ok(())
    }

    fn max_datagram(&self) -> usize {
        8_192
    }
}

impl ClientTransport for Spy {
    fn describe(&self) -> String {
        "a spy".into()
    }
}

/// Records through `config` and returns what was sent.
fn run(config: Config) -> Vec<Vec<u8>> {
    let datagrams = Arc::new(Mutex::new(Vec::new()));
    let stats =
        Stats::start_with_transport(config, Box::new(Spy::keeping(datagrams.clone()))).unwrap();
    stats.counter("jobs", &[("env", "own")]).unwrap().add(3);
    stats.gauge("depth", &[]).unwrap().set(4.0);
    stats.shutdown(Duration::from_secs(2)).unwrap();
    let sent = datagrams.lock().unwrap().clone();
    assert!(!sent.is_empty());
    sent
}

fn config(mode: AggregationMode) -> Config {
    Config::default()
        .with_aggregation(mode)
        .with_tags(["env:test", "team:core"])
}

/// `line`, a metric line, read.
fn metric(line: &str) -> ParsedLine<'_> {
    parse(line.as_bytes())
        .next()
        .unwrap()
        .unwrap()
        .metric()
        .unwrap()
}

#[test]
fn dogstatsd_lines_carry_the_constant_tags_and_the_container_id() {
    for mode in [AggregationMode::Source, AggregationMode::Off] {
        for detect in [true, false] {
            let dog = config(mode)
                .with_codec(Codec::Statsd(Dialect::DogStatsd))
                .with_origin_detection(detect);
            let sent = run(dog);
            let mut seen = Vec::new();
            for datagram in &sent {
                for line in parse(datagram) {
                    let line = line.unwrap().metric().unwrap();
                    let mut tags: Vec<&str> = line.tags.split(',').collect();
                    tags.sort_unstable();
                    seen.push((line.name.to_string(), tags.join(",")));
                    let id = if detect {
                        stats_std::origin::container_id()
                    } else {
                        ""
                    };
                    assert_eq!(line.container_id, id, "{mode}");
                }
            }
            assert_tagged(seen, mode);
        }
    }
}

/// `seen` (series name, its tags sorted and joined) is the two series of
/// [`run`], each with the constant tags and its own.
fn assert_tagged(mut seen: Vec<(String, String)>, mode: AggregationMode) {
    seen.sort();
    seen.dedup();
    assert_eq!(
        seen,
        [
            ("depth".to_string(), "env:test,team:core".to_string()),
            ("jobs".to_string(), "env:own,team:core".to_string()),
        ],
        "{mode}"
    );
}

#[test]
fn the_detected_container_id_is_the_one_read_from_the_root() {
    assert_eq!(
        stats_std::origin::container_id(),
        stats_std::origin::detect(std::path::Path::new("/")).unwrap_or_default()
    );
}

#[test]
fn native_series_carry_the_constant_tags() {
    for mode in [AggregationMode::Source, AggregationMode::Off] {
        let mut seen = Vec::new();
        for datagram in run(config(mode)) {
            let d = decode(&datagram).unwrap();
            let mut note = |name: &str, tags: Vec<String>| {
                let mut tags = tags;
                tags.sort_unstable();
                seen.push((name.to_string(), tags.join(",")));
            };
            if d.is_series() {
                for s in d.series() {
                    let s = s.unwrap();
                    note(s.name, s.tags().map(|(k, v)| format!("{k}:{v}")).collect());
                }
            } else {
                for e in d.events() {
                    let e = e.unwrap();
                    note(e.name, e.tags().map(|(k, v)| format!("{k}:{v}")).collect());
                }
            }
        }
        assert_tagged(seen, mode);
    }
}

/// Every line of `sent`, as text.
fn lines_of(sent: &[Vec<u8>]) -> Vec<String> {
    sent.iter()
        .flat_map(|d| {
            String::from_utf8(d.clone())
                .unwrap()
                .lines()
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn aggregated_distributions_send_buckets_of_one_count_in_one_line() {
    let datagrams = Arc::new(Mutex::new(Vec::new()));
    let config = Config::default()
        .with_codec(Codec::Statsd(Dialect::DogStatsdDistribution))
        .with_origin_detection(false)
        .with_timestamps(true);
    let stats =
        Stats::start_with_transport(config, Box::new(Spy::keeping(datagrams.clone()))).unwrap();
    let sizes = stats.histogram("size", &[]).unwrap();
    for v in [10.0, 10.0, 200.0, 200.0, 3_000.0] {
        sizes.record(v);
    }
    stats.counter("jobs", &[]).unwrap().add(2);
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    stats.shutdown(Duration::from_secs(2)).unwrap();
    let lines = lines_of(&datagrams.lock().unwrap());
    let size_lines: Vec<&String> = lines.iter().filter(|l| l.starts_with("size:")).collect();
    // Two buckets gained 2 values each, one gained 1: two lines.
    assert_eq!(size_lines.len(), 2, "{lines:?}");
    let mut count = 0.0;
    for line in &size_lines {
        let parsed = metric(line);
        count += parsed.numbers().count() as f64 / parsed.sample_rate;
        assert!(!line.contains("|T"), "distributions carry no time: {line}");
    }
    assert_eq!(count, 5.0);
    let jobs = lines.iter().find(|l| l.starts_with("jobs:")).unwrap();
    let (_, time) = jobs.rsplit_once("|T").expect("a counter carries its time");
    let time: u64 = time.parse().unwrap();
    assert!(
        (before.saturating_sub(5)..=before + 5).contains(&time),
        "{jobs}"
    );
}

#[test]
fn sampled_timers_and_histograms_carry_their_rate_and_the_rest_is_counted() {
    let datagrams = Arc::new(Mutex::new(Vec::new()));
    let config = Config::default()
        .with_aggregation(AggregationMode::Off)
        .with_codec(Codec::Statsd(Dialect::DogStatsd))
        .with_origin_detection(false)
        .with_sample_one_in(10)
        // Room for every event: nothing dropped however slow the worker.
        .with_buffer_size(1 << 16)
        .with_lane_sets(0);
    let stats =
        Stats::start_with_transport(config, Box::new(Spy::keeping(datagrams.clone()))).unwrap();
    let sizes = stats.histogram("size", &[]).unwrap();
    let waits = stats.timer("wait", &[]).unwrap();
    let jobs = stats.counter("jobs", &[]).unwrap();
    for i in 0..10_000 {
        sizes.record(f64::from(i));
        waits.record(Duration::from_micros(5));
        jobs.increment();
    }
    let report = stats.shutdown(Duration::from_secs(5)).unwrap();
    let lines = lines_of(&datagrams.lock().unwrap());
    let mut kept = std::collections::HashMap::<String, u64>::new();
    for line in &lines {
        let parsed = metric(line);
        let want = if parsed.name == "jobs" { 1.0 } else { 0.1 };
        assert_eq!(parsed.sample_rate, want, "{line}");
        *kept.entry(parsed.name.to_string()).or_default() += 1;
    }
    assert_eq!(kept["jobs"], 10_000, "counters are never sampled");
    // One in ten of 10,000: 1,000 expected, within six deviations (28).
    for name in ["size", "wait"] {
        assert!(
            (830..=1_170).contains(&kept[name]),
            "{name}: {}",
            kept[name]
        );
    }
    assert_eq!(
        kept["size"] + kept["wait"] + report.rejected.sampled_out,
        20_000,
        "each value sent or counted"
    );
    assert!(report.snapshot.is_conserved());
}

#[test]
fn sampling_needs_events_in_statsd_lines() {
    for config in [
        Config::default().with_sample_one_in(4),
        Config::default()
            .with_aggregation(AggregationMode::Off)
            .with_sample_one_in(4),
        Config::default()
            .with_aggregation(AggregationMode::Off)
            .with_codec(Codec::Statsd(Dialect::Etsy))
            .with_sample_one_in(0),
    ] {
        let err = config.validate().unwrap_err();
        assert!(
            matches!(
                err,
                stats_std::ConfigError::Invalid {
                    field: "events.sample_one_in",
                    ..
                }
            ),
            "{err}"
        );
    }
}

/// Waits 10 s, the interval datadog-go's telemetry has.
#[test]
fn client_telemetry_goes_under_datadog_go_s_names() {
    let runs: Vec<_> = [AggregationMode::Source, AggregationMode::Off]
        .into_iter()
        .flat_map(|mode| [(mode, 0), (mode, 1)])
        .map(|(mode, refuse)| {
            std::thread::spawn(move || {
                let datagrams = Arc::new(Mutex::new(Vec::new()));
                let refused = Arc::new(Mutex::new(Vec::new()));
                let config = Config::default()
                    .with_aggregation(mode)
                    .with_codec(Codec::Statsd(Dialect::DogStatsd))
                    .with_origin_detection(false)
                    .with_tags(["team:core"])
                    .with_client_telemetry(true);
                let transport = Spy {
                    kept: datagrams.clone(),
                    refuse,
                    refused: refused.clone(),
                };
                let stats = Stats::start_with_transport(config, Box::new(transport)).unwrap();
                let jobs = stats.counter("jobs", &[]).unwrap();
                let depth = stats.gauge("depth", &[]).unwrap();
                for _ in 0..5 {
                    jobs.increment();
                }
                depth.set(2.0);
                let start = std::time::Instant::now();
                let metrics = loop {
                    let lines = lines_of(&datagrams.lock().unwrap());
                    let metrics = lines
                        .iter()
                        .find(|l| l.starts_with("datadog.dogstatsd.client.metrics:"))
                        .cloned();
                    if let Some(line) = metrics {
                        break (line, lines);
                    }
                    assert!(
                        start.elapsed() < Duration::from_secs(15),
                        "{mode}: {lines:?}"
                    );
                    std::thread::sleep(Duration::from_millis(100));
                };
                stats.shutdown(Duration::from_secs(2)).unwrap();
                let refused = refused.lock().unwrap().clone();
                (mode, metrics, refused)
            })
        })
        .collect();
    for run in runs {
        let (mode, (metrics, lines), refused) = run.join().unwrap();
        assert_eq!(
            metrics,
            format!(
                "datadog.dogstatsd.client.metrics:6|c|#team:core,client:rust,client_version:{},client_transport:udp",
                env!("CARGO_PKG_VERSION")
            ),
            "{mode}"
        );
        let has = |prefix: &str| lines.iter().any(|l| l.starts_with(prefix));
        // What the transport refused, in datagrams and bytes.
        let (packets, bytes) = (refused.len(), refused.iter().sum::<usize>());
        for name in [
            "packets_sent:".to_string(),
            "bytes_sent:".to_string(),
            format!("packets_dropped:{packets}|"),
            format!("packets_dropped_writer:{packets}|"),
            format!("bytes_dropped:{bytes}|"),
            format!("bytes_dropped_writer:{bytes}|"),
            "metric_dropped_on_receive:0|".to_string(),
        ] {
            assert!(
                has(&format!("datadog.dogstatsd.client.{name}")),
                "{mode}: {name} in {lines:?}"
            );
        }
        if mode == AggregationMode::Source {
            assert!(
                lines.iter().any(
                    |l| l.starts_with("datadog.dogstatsd.client.metrics_by_type:5|c")
                        && l.contains("metrics_type:count")
                ),
                "{lines:?}"
            );
            assert!(
                has("datadog.dogstatsd.client.aggregated_context:"),
                "{lines:?}"
            );
        }
    }
}
