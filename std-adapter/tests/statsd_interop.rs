//! Interop with a real StatsD server, the Etsy `statsd` package from npm:
//! what the client sends in each dialect, aggregating at the source (each
//! interval's changes) and as events, and what the collector forwards,
//! arrives with the right values.
//!
//! Needs the server, so it is ignored by default; `.ci/statsd.sh` installs
//! it, starts it on loopback and runs this with `STATSD_ADDRESS` (its UDP
//! port) and `STATSD_ADMIN` (its management TCP port).

use stats_collector::outputs::forward::Forward;
use stats_collector::{Server, Settings};
use stats_std::stats_core::wire::{Codec, Dialect};
use stats_std::{AggregationMode, Config, Stats};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn addresses() -> (String, String) {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| panic!("{name} must name the StatsD server"))
    };
    (var("STATSD_ADDRESS"), var("STATSD_ADMIN"))
}

/// The server's answer to a management command (`counters`, `gauges`,
/// `timers`): `util.inspect` text up to `END`.
fn admin(address: &str, command: &str) -> String {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    writeln!(stream, "{command}").unwrap();
    let mut out = String::new();
    for line in BufReader::new(stream).lines() {
        let line = line.unwrap();
        if line.trim() == "END" {
            break;
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// The value text after `'key': ` in an inspect dump (an array stays
/// bracketed).
fn field(dump: &str, key: &str) -> Option<String> {
    let at = dump.find(&format!("'{key}': "))? + key.len() + 4;
    let rest = &dump[at..];
    let end = if rest.starts_with('[') {
        rest.find(']')? + 1
    } else {
        rest.find([',', '\n', '}'])?
    };
    Some(rest[..end].split_whitespace().collect::<Vec<_>>().join(" "))
}

/// Waits until `command`'s dump shows `key` with `want`.
fn expect(admin_address: &str, command: &str, key: &str, want: &str) {
    let start = Instant::now();
    loop {
        let dump = admin(admin_address, command);
        let got = field(&dump, key);
        if got.as_deref() == Some(want) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{command} {key}: want {want}, got {got:?} in\n{dump}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn client(address: &str, codec: Codec) -> Stats {
    client_in(AggregationMode::Source, address, codec)
}

fn client_in(mode: AggregationMode, address: &str, codec: Codec) -> Stats {
    Stats::start(
        Config::default()
            .with_aggregation(mode)
            .with_address(address)
            .with_codec(codec),
    )
    .unwrap()
}

/// Waits until the server holds `key`'s timer values, then checks them
/// against `want`, each within `error` (relative).
fn expect_timers(admin_address: &str, key: &str, want: &[f64], error: f64) {
    let start = Instant::now();
    loop {
        let dump = admin(admin_address, "timers");
        if let Some(values) = field(&dump, key) {
            let mut got: Vec<f64> = values
                .trim_matches(['[', ']', ' '])
                .split(',')
                .map(|v| v.trim().parse().unwrap())
                .collect();
            got.sort_by(f64::total_cmp);
            if got.len() == want.len() {
                for (g, w) in got.iter().zip(want) {
                    assert!(
                        (g - w).abs() <= error * w,
                        "{key}: {got:?} against {want:?}"
                    );
                }
                return;
            }
        }
        assert!(start.elapsed() < Duration::from_secs(5), "{key}: {dump}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Aggregating at the source, a timer's values go as values that stand
/// for their buckets: here each bucket holds one value, the series'
/// minimum or maximum, which it then carries, so both modes are exact.
#[test]
#[ignore = "needs a StatsD server: run .ci/statsd.sh"]
fn etsy_statsd_lines_arrive_with_their_values() {
    let (udp, mgmt) = addresses();
    for (mode, error) in [(AggregationMode::Source, 0.0), (AggregationMode::Off, 0.0)] {
        let _ = admin(&mgmt, "delcounters interop.requests");
        let _ = admin(&mgmt, "deltimers interop.query interop.size");
        let stats = client_in(mode, &udp, Codec::Statsd(Dialect::Etsy));
        let requests = stats.counter("interop.requests", &[]).unwrap();
        let depth = stats.gauge("interop.depth", &[]).unwrap();
        let below = stats.gauge("interop.below", &[]).unwrap();
        let query = stats.timer("interop.query", &[]).unwrap();
        let size = stats.histogram("interop.size", &[]).unwrap();
        requests.add(5);
        requests.add(7);
        depth.set(10.0);
        depth.add(-3.0);
        depth.add(0.5);
        below.set(-4.0);
        query.record(Duration::from_micros(1500));
        query.record(Duration::from_micros(2500));
        size.record(42.0);
        stats.flush(Duration::from_secs(2)).unwrap();
        expect(&mgmt, "counters", "interop.requests", "12");
        expect(&mgmt, "gauges", "interop.depth", "7.5");
        expect(&mgmt, "gauges", "interop.below", "-4");
        expect_timers(&mgmt, "interop.query", &[1.5, 2.5], error);
        expect_timers(&mgmt, "interop.size", &[42.0], error);
        let report = stats.shutdown(Duration::from_secs(2)).unwrap();
        match report.aggregation {
            Some(a) => assert_eq!(a.stats.recorded.iter().sum::<u64>(), 9),
            None => {
                assert_eq!(report.snapshot.events_received, 9);
                assert!(report.snapshot.is_conserved());
            }
        }
    }
}

/// DogStatsD lines as Etsy statsd can read them (one value a line: a
/// timer with several values goes as one line of them, DogStatsD 1.1,
/// which it cannot), aggregated and as events: the tags fold into the key.
#[test]
#[ignore = "needs a StatsD server: run .ci/statsd.sh"]
fn dogstatsd_tags_reach_etsy_statsd_as_key_suffixes() {
    let (udp, mgmt) = addresses();
    for mode in [AggregationMode::Source, AggregationMode::Off] {
        let _ = admin(&mgmt, "delcounters interop.tagged;route=api");
        let _ = admin(&mgmt, "delgauges interop.level;route=api");
        let _ = admin(&mgmt, "deltimers interop.took;route=api");
        // The container id (`|c:`) is DogStatsD's alone.
        let stats = Stats::start(
            Config::default()
                .with_aggregation(mode)
                .with_address(&udp)
                .with_codec(Codec::Statsd(Dialect::DogStatsd))
                .with_origin_detection(false),
        )
        .unwrap();
        let tags = [("route", "api")];
        let tagged = stats.counter("interop.tagged", &tags).unwrap();
        tagged.add(3);
        tagged.add(4);
        stats.gauge("interop.level", &tags).unwrap().set(2.5);
        let took = stats.timer("interop.took", &tags).unwrap();
        took.record(Duration::from_micros(1500));
        stats.shutdown(Duration::from_secs(2)).unwrap();
        // Etsy statsd 0.9 folds `|#route:api` into the key.
        expect(&mgmt, "counters", "interop.tagged;route=api", "7");
        expect(&mgmt, "gauges", "interop.level;route=api", "2.5");
        let error = if mode == AggregationMode::Source {
            0.032
        } else {
            0.0
        };
        expect_timers(&mgmt, "interop.took;route=api", &[1.5], error);
    }
}

#[test]
#[ignore = "needs a StatsD server: run .ci/statsd.sh"]
fn the_collector_forwards_its_aggregates() {
    let (udp, mgmt) = addresses();
    let forward = Forward::new(udp, Dialect::Etsy);
    let server = Server::start(
        &Settings::on_loopback()
            .with_http(None)
            .with_forward(forward)
            .with_export_interval(Duration::from_millis(100)),
    )
    .unwrap();
    let stats = client(&server.udp_address().to_string(), Codec::Native);
    let count = stats.counter("interop.fwd.count", &[]).unwrap();
    let level = stats.gauge("interop.fwd.level", &[]).unwrap();
    let time = stats.timer("interop.fwd.time", &[]).unwrap();
    count.add(4);
    count.add(5);
    level.set(3.25);
    for _ in 0..3 {
        time.record(Duration::from_millis(2));
    }
    stats.flush(Duration::from_secs(2)).unwrap();
    expect(&mgmt, "counters", "interop.fwd.count", "9");
    expect(&mgmt, "gauges", "interop.fwd.level", "3.25");
    // Three 2 ms timers: one line of the value they share, at sample
    // rate 1/3.
    let start = Instant::now();
    loop {
        let dump = admin(&mgmt, "timers");
        if let Some(values) = field(&dump, "interop.fwd.time") {
            let ms: f64 = values.trim_matches(['[', ']', ' ']).parse().unwrap();
            assert_eq!(ms, 2.0, "{values}");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "{dump}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
