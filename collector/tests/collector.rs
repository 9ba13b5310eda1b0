//! The client and the collector over loopback, aggregating at the source
//! and as events: values reach `/metrics`; a restarted client's totals
//! carry on; datagrams lost on purpose show as loss; garbage is counted
//! and ignored; the binary's flags.

mod common;

use common::get;
use stats_collector::aggregation::Aggregate;
use stats_collector::outputs::forward::Forward;
use stats_collector::{Server, Settings};
use stats_std::stats_core::wire::statsd;
use stats_std::stats_core::wire::{Codec, Dialect, Encoder, EncoderConfig};
use stats_std::stats_core::{Event, Kind, Priority, Registry};
use stats_std::{AggregationMode, Config, Stats};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

fn wait_for(server: &Server, events: u64) {
    let start = Instant::now();
    while server.shards().totals().events < events {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "events did not arrive"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `/metrics` once it has every line of `lines` (each as a substring).
fn metrics_with(server: &Server, lines: &[&str]) -> String {
    let start = Instant::now();
    loop {
        let (status, text) = get(server.http_address().unwrap(), "/metrics");
        assert_eq!(status, 200);
        if lines.iter().all(|l| text.contains(l)) {
            return text;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "missing one of {lines:?}: {text}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn client_values_reach_metrics() {
    for mode in [AggregationMode::Source, AggregationMode::Off] {
        let server = Server::start(&Settings::on_loopback()).unwrap();
        let stats = Stats::start(
            Config::default()
                .with_aggregation(mode)
                .with_address(server.udp_address().to_string()),
        )
        .unwrap();
        let requests = stats
            .counter("http.requests", &[("route", "/api")])
            .unwrap();
        let depth = stats.gauge("queue.depth", &[]).unwrap();
        let query = stats.timer("db.query", &[("table", "users")]).unwrap();
        for _ in 0..10 {
            requests.increment();
        }
        depth.set(42.0);
        query.record(Duration::from_millis(3));
        stats.flush(Duration::from_secs(2)).unwrap();
        metrics_with(
            &server,
            &[
                "http_requests_total{route=\"/api\"} 10",
                "queue_depth 42",
                "db_query_seconds_count{table=\"users\"} 1",
                "db_query_seconds_sum{table=\"users\"} 0.003",
            ],
        );
        let (status, health) = get(server.http_address().unwrap(), "/health");
        assert_eq!(status, 200, "{mode}: {health}");
    }
}

/// The client sending over a Unix datagram socket (`unixgram:///path`)
/// to the collector's (`listen_unix`) and over a Unix stream socket
/// (`unix:///path`, length-prefixed frames) to its `listen_unix_stream`,
/// in both modes; then the collector stopped (its socket file gone): the
/// sends fail, counted, and the breaker opens; the collector started again
/// on the same path: the client finds it again, and every value is
/// accounted for, delivered or counted as lost (aggregating at the source,
/// the new collector has every total).
#[test]
fn the_client_sends_over_unix_sockets_and_finds_a_new_one() {
    let dir = std::env::temp_dir().join(format!("stats-unix-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("collector.sock");
    type Listen = fn(Settings, &std::path::Path) -> Settings;
    let datagram: Listen = |s, p| s.with_listen_unix(p);
    let stream: Listen = |s, p| s.with_listen_unix_stream(p);
    for (scheme, listen) in [("unixgram", datagram), ("unix", stream)] {
        for mode in [AggregationMode::Source, AggregationMode::Off] {
            let collector = || {
                let settings = Settings::on_loopback();
                Server::start(&listen(settings, &path)).unwrap()
            };
            let jobs_at = |server: &Server| {
                let c = server.shards().view();
                let jobs = c.series().find(|s| s.name == "unix.jobs");
                match jobs.map(|s| s.aggregate()) {
                    Some(Aggregate::Counter(n)) => n,
                    _ => 0.0,
                }
            };
            let server = collector();
            let stats = Stats::start(
                Config::default()
                    .with_aggregation(mode)
                    .with_address(format!("{scheme}://{}", path.display()))
                    // The breaker opens after three failed sends, for 300 ms.
                    .with_breaker(3, 300),
            )
            .unwrap();
            let jobs = stats.counter("unix.jobs", &[("queue", "mail")]).unwrap();
            let work = stats.histogram("unix.work", &[]).unwrap();
            for i in 0..1_000 {
                jobs.increment();
                work.record(f64::from(i % 10));
            }
            stats.flush(Duration::from_secs(2)).unwrap();
            metrics_with(
                &server,
                &[
                    "unix_jobs_total{queue=\"mail\"} 1000",
                    "unix_work_count 1000",
                ],
            );
            let first = jobs_at(&server);
            server.stop(Duration::from_secs(1));
            assert!(!path.exists(), "the collector removed its socket");
            // Sent while nobody is there: refused, counted, and the
            // breaker opens.
            let mut recorded = 1_000;
            let start = Instant::now();
            loop {
                jobs.increment();
                recorded += 1;
                let _ = stats.flush(Duration::from_millis(50));
                let report = stats.report().unwrap();
                let (failed, opened) = match &report.aggregation {
                    Some(a) => (
                        a.sent.send_errors,
                        a.sent.passes_abandoned > 0
                            || matches!(
                                a.breaker,
                                stats_std::stats_core::BreakerState::Open { .. }
                            ),
                    ),
                    None => (
                        report.snapshot.counters.send_errors,
                        report.snapshot.breaker_transitions.opened > 0,
                    ),
                };
                if failed > 0 && opened {
                    break;
                }
                assert!(
                    start.elapsed() < Duration::from_secs(5),
                    "{scheme} {mode}: failed sends {failed}, breaker opened {opened}"
                );
            }
            // A collector on the same path again: found within the backoff.
            let server = collector();
            let start = Instant::now();
            while server.shards().totals().datagrams == 0 {
                jobs.increment();
                recorded += 1;
                let _ = stats.flush(Duration::from_millis(200));
                assert!(
                    start.elapsed() < Duration::from_secs(10),
                    "{scheme} {mode}: the client did not find the new socket"
                );
            }
            let report = stats.shutdown(Duration::from_secs(2)).unwrap();
            assert_eq!(report.socket.frames_cut, 0, "{scheme} {mode}");
            let lost = match &report.aggregation {
                // Totals: the new collector has them all.
                Some(_) => 0,
                None => {
                    let c = report.snapshot.counters;
                    c.events_send_failed + report.snapshot.drops.total()
                }
            };
            let start = Instant::now();
            loop {
                let got = match mode {
                    AggregationMode::Source => jobs_at(&server),
                    _ => first + jobs_at(&server),
                };
                if got + lost as f64 == f64::from(recorded) {
                    break;
                }
                assert!(
                    start.elapsed() < Duration::from_secs(5),
                    "{scheme} {mode}: {got} delivered and {lost} lost of {recorded}"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
            server.stop(Duration::from_secs(1));
        }
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// DogStatsD's other modes read by the collector with the values sent:
/// the distribution dialect aggregated and as events, totals with their
/// time (`|T`), and events sampled one in four (`|@0.25`: the collector
/// scales each value it gets by four, so its count is four times the
/// values sent, and those with the ones sampled out make every value).
#[test]
fn every_dogstatsd_mode_reaches_the_collector_with_its_values() {
    let dogstatsd = Codec::Statsd(Dialect::DogStatsd);
    let distribution = Codec::Statsd(Dialect::DogStatsdDistribution);
    let source = Config::default().with_aggregation(AggregationMode::Source);
    let events = Config::default().with_aggregation(AggregationMode::Off);
    for (what, config) in [
        (
            "distributions, aggregated",
            source.clone().with_codec(distribution),
        ),
        (
            "distributions as events",
            events.clone().with_codec(distribution),
        ),
        (
            "totals with their time",
            source.with_codec(dogstatsd).with_timestamps(true),
        ),
        (
            "events sampled",
            events.with_codec(dogstatsd).with_sample_one_in(4),
        ),
    ] {
        let server = Server::start(&Settings::on_loopback()).unwrap();
        let stats = Stats::start(config.with_address(server.udp_address().to_string())).unwrap();
        let jobs = stats.counter("jobs", &[("queue", "mail")]).unwrap();
        let depth = stats.gauge("depth", &[]).unwrap();
        let sizes = stats.histogram("size", &[]).unwrap();
        jobs.add(5);
        jobs.add(7);
        depth.set(7.5);
        for _ in 0..80 {
            for v in [10.0, 10.0, 200.0, 200.0, 3_000.0] {
                sizes.record(v);
            }
        }
        let report = stats.shutdown(Duration::from_secs(2)).unwrap();
        // Each value sent stands for four when sampled.
        let count = match report.rejected.sampled_out {
            0 => 400,
            out => (400 - out) * 4,
        };
        let text = metrics_with(
            &server,
            &[
                "jobs_total{queue=\"mail\"} 12",
                "\ndepth 7.5\n",
                &format!("\nsize_count {count}\n"),
            ],
        );
        if what != "events sampled" {
            let sum = sample(&text, "size_sum").unwrap();
            // Aggregated: values standing for the buckets, within 3.2%.
            assert!((sum - 273_600.0).abs() / 273_600.0 < 0.032, "{what}: {sum}");
        }
        server.stop(Duration::from_secs(1));
    }
}

/// The client speaking DogStatsD to the collector, which forwards what it
/// aggregated as Etsy StatsD to a third socket: the same values all the
/// way, from events and from totals aggregated at the source (which go as
/// each interval's changes: a gauge's value, a distribution's buckets at a
/// sample rate, so a timer's sum is the buckets' midpoints).
#[test]
fn statsd_from_the_client_and_forwarded_onwards() {
    for mode in [AggregationMode::Source, AggregationMode::Off] {
        let agent = UdpSocket::bind("127.0.0.1:0").unwrap();
        agent
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let forward = Forward::new(agent.local_addr().unwrap().to_string(), Dialect::Etsy);
        let server = Server::start(
            &Settings::on_loopback()
                .with_forward(forward)
                .with_export_interval(Duration::from_millis(50)),
        )
        .unwrap();
        let stats = Stats::start(
            Config::default()
                .with_aggregation(mode)
                .with_address(server.udp_address().to_string())
                .with_codec(Codec::Statsd(Dialect::DogStatsd))
                .with_tags(["team:core"]),
        )
        .unwrap();
        let requests = stats.counter("requests", &[("route", "/api")]).unwrap();
        // Aggregated, two buckets of two values each: one line of two
        // values (DogStatsD 1.1) at rate 1/2.
        let spread = stats.timer("spread", &[]).unwrap();
        for us in [1_500, 1_500, 40_000, 40_000] {
            spread.record(Duration::from_micros(us));
        }
        let depth = stats.gauge("depth", &[]).unwrap();
        let below = stats.gauge("below", &[]).unwrap();
        let query = stats.timer("query", &[]).unwrap();
        requests.add(5);
        requests.add(7);
        depth.set(10.0);
        depth.add(-3.0); // as events, sent as -3|g
        depth.add(0.5); // as events, sent as +0.5|g
        below.set(-4.0); // sent as 0|g then -4|g
        query.record(Duration::from_micros(1500));
        stats.flush(Duration::from_secs(2)).unwrap();
        let text = metrics_with(
            &server,
            &[
                "requests_total{route=\"/api\",team=\"core\"} 12",
                "\ndepth{team=\"core\"} 7.5\n",
                "\nbelow{team=\"core\"} -4\n",
                "query_seconds_count{team=\"core\"} 1",
                "spread_seconds_count{team=\"core\"} 4",
                "stats_collector_statsd_datagrams_total 1",
            ],
        );
        let sum = sample(&text, "query_seconds_sum{team=\"core\"}").unwrap();
        assert!((sum - 0.0015).abs() / 0.0015 < 0.032, "{mode}: {sum}");
        // Forwarded as Etsy lines: no tags, absolute values.
        let mut seen = std::collections::HashMap::new();
        let mut buf = [0u8; 2048];
        while seen.len() < 4 {
            let n = agent.recv(&mut buf).expect("forwarded lines");
            for line in statsd::parse(&buf[..n]) {
                let line = line.unwrap().metric().unwrap();
                seen.insert(
                    line.name.to_string(),
                    (line.value.to_string(), line.tags.is_empty()),
                );
            }
        }
        assert_eq!(seen["requests"], ("12".into(), true), "{mode}");
        assert_eq!(seen["depth"], ("7.5".into(), true), "{mode}");
        assert_eq!(seen["below"].0, "-4", "{mode}");
        let ms: f64 = seen["query"].0.parse().unwrap();
        assert!((ms - 1.5).abs() / 1.5 < 0.032, "{mode}: {ms}");
    }
}

#[test]
fn lost_datagrams_show_as_loss_and_garbage_is_ignored() {
    let server = Server::start(&Settings::on_loopback()).unwrap();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.connect(server.udp_address()).unwrap();
    let mut registry: Registry<4, 64> = Registry::new();
    let key = registry.register("k", &[]).unwrap();
    let mut encoder = Encoder::new(EncoderConfig::new(0x77)).unwrap();
    let mut sent = 0;
    // Enough datagrams for health to judge a rate by (100).
    for i in 0..200u64 {
        let mut buf = [0u8; 1472];
        let mut w = encoder.begin(&mut buf, 0).unwrap();
        w.push(
            &Event::new(key, Kind::Counter, 1.0, 0, Priority::Medium),
            |id| registry.get(id),
        )
        .unwrap();
        let datagram = w.finish();
        // Every fifth datagram is "lost on the way".
        if i % 5 != 4 {
            socket.send(datagram).unwrap();
            sent += 1;
        }
    }
    // Garbage, a truncated datagram and a bit-flipped one.
    let mut buf = [0u8; 1472];
    let mut w = encoder.begin(&mut buf, 0).unwrap();
    w.push(
        &Event::new(key, Kind::Counter, 1.0, 0, Priority::Medium),
        |id| registry.get(id),
    )
    .unwrap();
    let good = w.finish().to_vec();
    let mut flipped = good.clone();
    flipped[good.len() / 2] ^= 0x10;
    for garbage in [
        &b"hello"[..],
        &[0xFF; 100],
        &[],
        &good[..good.len() - 2],
        &flipped,
    ] {
        socket.send(garbage).unwrap();
    }
    wait_for(&server, sent);
    std::thread::sleep(Duration::from_millis(50));
    let (_, text) = get(server.http_address().unwrap(), "/metrics");
    // Sequences 4, 9, ..., 194 are gaps; 199 (the last) is not yet known
    // to be lost.
    assert!(
        text.contains("stats_collector_sender_lost_total{sender=\"0000000000000077\"} 39"),
        "{text}"
    );
    assert!(text.contains("k_total 160"), "{text}");
    let invalid: u64 = server.shards().view().invalid().values().sum();
    assert_eq!(invalid, 5);
    assert!(
        text.contains("stats_collector_invalid_datagrams_total{error=\"crc_mismatch\"} 2"),
        "{text}"
    );
    // Still serving, and 39 lost in 199 (20%) is past the 10% limit.
    let (status, health) = get(server.http_address().unwrap(), "/health");
    assert_eq!(status, 503, "{health}");
    assert!(
        health.contains("\"name\":\"loss_rate\",\"status\":\"unhealthy\""),
        "{health}"
    );
}

/// A restarted client has a new random sender id: the collector shows a
/// second sender, and the first one's count stops where it was.
#[test]
fn a_restarted_client_is_a_new_sender() {
    let server = Server::start(&Settings::on_loopback()).unwrap();
    for run in 1..=2u64 {
        let stats = Stats::start(
            Config::default()
                .with_aggregation(AggregationMode::Off)
                .with_address(server.udp_address().to_string()),
        )
        .unwrap();
        let c = stats.counter("runs", &[]).unwrap();
        for _ in 0..run * 10 {
            c.increment();
        }
        stats.shutdown(Duration::from_secs(2)).unwrap();
    }
    wait_for(&server, 30);
    let c = server.shards().view();
    let mut events: Vec<u64> = c.senders().map(|(_, s)| s.events).collect();
    events.sort();
    assert_eq!(events, [10, 20]);
    assert!(c.senders().all(|(_, s)| s.lost == 0 && s.duplicated == 0));
}

/// Aggregating at the source, a restarted client starts its totals again
/// from zero under a new sender id: the collector carries the first run's
/// final totals on, so the series only grows, and counts each shutdown's
/// repeated final records once.
#[test]
fn a_restarted_client_s_totals_carry_on() {
    let server = Server::start(&Settings::on_loopback()).unwrap();
    for run in 1..=3u64 {
        let stats =
            Stats::start(Config::default().with_address(server.udp_address().to_string())).unwrap();
        let c = stats.counter("runs", &[]).unwrap();
        let t = stats.timer("work", &[]).unwrap();
        for _ in 0..run * 10 {
            c.increment();
            t.record(Duration::from_micros(run * 100));
        }
        stats.shutdown(Duration::from_secs(2)).unwrap();
    }
    metrics_with(&server, &["runs_total 60", "work_seconds_count 60"]);
    let c = server.shards().view();
    assert_eq!(c.senders().count(), 3);
    assert!(
        c.senders().all(|(_, s)| s.duplicated == 0 && s.lost == 0),
        "each shutdown's two final passes are distinct datagrams"
    );
}

#[test]
fn the_binary_documents_its_flags_and_refuses_bad_ones() {
    let bin = env!("CARGO_BIN_EXE_stats-collector");
    let help = std::process::Command::new(bin)
        .arg("--help")
        .output()
        .unwrap();
    assert!(help.status.success());
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--config <FILE>",
        "--listen <ADDR>",
        "--listen-unix <PATH>",
        "--listen-unix-stream <PATH>",
    ] {
        assert!(help.contains(flag), "{flag} in {help}");
    }
    let run = |args: &[&str]| {
        let out = std::process::Command::new(bin).args(args).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run(&["--frobnicate"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("unexpected argument '--frobnicate'"), "{err}");
    for (limit, field) in [
        ("--max-series", "max_series"),
        ("--max-senders", "max_senders"),
    ] {
        let (code, err) = run(&[limit, "many"]);
        assert_eq!(code, Some(2), "{limit} many");
        assert!(
            err.contains(&format!("invalid value 'many' for '{limit} <N>'")),
            "{err}"
        );
        let (code, err) = run(&[limit, "0"]);
        assert_eq!(code, Some(2), "{limit} 0");
        assert!(
            err.contains(&format!("{field}: must be at least 1")),
            "{err}"
        );
    }
}

#[test]
fn start_errors_name_what_they_are_about() {
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let udp = taken.local_addr().unwrap().to_string();
    let Err(e) = Server::start(&Settings::default().with_listen(&udp).with_http(None)) else {
        panic!("bound a UDP port in use");
    };
    assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse);
    assert!(e.to_string().starts_with(&format!("UDP {udp}: ")), "{e}");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let http = listener.local_addr().unwrap().to_string();
    let Err(e) = Server::start(&Settings::on_loopback().with_http(Some(&http))) else {
        panic!("bound a TCP port in use");
    };
    assert!(e.to_string().starts_with(&format!("HTTP {http}: ")), "{e}");
    let forward = Forward::new("no-port-here", Dialect::DogStatsd);
    let Err(e) = Server::start(
        &Settings::on_loopback()
            .with_http(None)
            .with_forward(forward),
    ) else {
        panic!("forwarding to a host that does not resolve");
    };
    assert!(
        e.to_string().starts_with("forwarding to no-port-here: "),
        "{e}"
    );
}

/// A free loopback port (bound and let go: the collector binds it next).
fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The `stats-collector` binary on `udp`, serving HTTP on `http`, once its
/// HTTP port answers.
fn collector_process(udp: u16, http: u16) -> std::process::Child {
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_stats-collector"))
        .args(["--listen", &format!("127.0.0.1:{udp}")])
        .args(["--http", &format!("127.0.0.1:{http}")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", http)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the collector did not start"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child
}

/// A sample's value in Prometheus text: the number after `line `.
fn sample(text: &str, line: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(line)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
}

/// The collector killed with SIGKILL and started again mid-stream: once
/// the sender's next full refresh has reached it, it reports the exact
/// totals again, with nothing counted twice.
#[test]
fn a_collector_killed_and_restarted_has_the_exact_totals_after_a_refresh() {
    let (udp, http) = (free_port(), free_port());
    let mut collector = collector_process(udp, http);
    let stats = Stats::start(
        Config::default()
            .with_address(format!("127.0.0.1:{udp}"))
            .with_interval_ms(50)
            .with_refresh_interval_s(1),
    )
    .unwrap();
    let hits = stats.counter("restart.hits", &[("shard", "a")]).unwrap();
    let work = stats.timer("restart.work", &[]).unwrap();
    let mut recorded = 0u64;
    let mut record_for = |d: Duration| {
        let until = Instant::now() + d;
        while Instant::now() < until {
            for _ in 0..1_000 {
                hits.increment();
                work.record(Duration::from_micros(100 + recorded % 900));
                recorded += 1;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    };
    record_for(Duration::from_millis(600));
    collector.kill().unwrap(); // SIGKILL
    collector.wait().unwrap();
    record_for(Duration::from_millis(300));
    let mut collector = collector_process(udp, http);
    record_for(Duration::from_millis(300));
    // The refresh sends every series; a flush is one at once.
    stats.flush(Duration::from_secs(2)).unwrap();
    let address: SocketAddr = ([127, 0, 0, 1], http).into();
    let start = Instant::now();
    loop {
        let (_, text) = get(address, "/metrics");
        let total = sample(&text, "restart_hits_total{shard=\"a\"}");
        let count = sample(&text, "restart_work_seconds_count");
        if total == Some(recorded as f64) && count == Some(recorded as f64) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "recorded {recorded}: total {total:?}, count {count:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = stats.shutdown(Duration::from_secs(2));
    collector.kill().unwrap();
    collector.wait().unwrap();
}

#[test]
fn quantiles_at_the_collector_are_within_the_stated_error() {
    use stats_collector::Aggregate;
    use stats_std::stats_core::aggregate::MAX_RELATIVE_ERROR;
    let server = Server::start(&Settings::on_loopback().with_http(None)).unwrap();
    let stats = Stats::start(
        Config::default()
            .with_address(server.udp_address().to_string())
            .with_interval_ms(50),
    )
    .unwrap();
    let sizes = stats.histogram("response.bytes", &[]).unwrap();
    // Log-uniform over six decades, recorded from two threads (one shard
    // each) so that the collector's distribution is a merge.
    let values: Vec<f64> = {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        (0..40_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                10f64.powf(6.0 * (x >> 11) as f64 / (1u64 << 53) as f64)
            })
            .collect()
    };
    std::thread::scope(|s| {
        for half in values.chunks(values.len() / 2) {
            let sizes = &sizes;
            s.spawn(move || half.iter().for_each(|&v| sizes.record(v)));
        }
    });
    stats.flush(Duration::from_secs(2)).unwrap();
    let mut exact = values.clone();
    exact.sort_by(f64::total_cmp);
    let start = Instant::now();
    let distribution = loop {
        let collector = server.shards().view();
        let found = collector
            .series()
            .find(|s| s.name == "response.bytes")
            .map(|s| s.aggregate());
        if let Some(Aggregate::Distribution(d)) = &found
            && d.count == values.len() as u64
        {
            break d.clone();
        }
        drop(collector);
        assert!(start.elapsed() < Duration::from_secs(5), "{found:?}");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(
        (distribution.min, distribution.max),
        (exact[0], exact[exact.len() - 1])
    );
    for q in [0.0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 1.0] {
        let rank = ((q * exact.len() as f64).ceil() as usize).clamp(1, exact.len());
        let want = exact[rank - 1];
        let got = distribution.quantile(q).unwrap();
        let error = (got - want).abs() / want;
        assert!(
            error <= MAX_RELATIVE_ERROR,
            "q {q}: {got} against {want} ({error:.4})"
        );
    }
    stats.shutdown(Duration::from_secs(2)).unwrap();
}
