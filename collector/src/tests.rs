//! The collector's state machine, datagram by datagram.

use crate::aggregation::{Aggregate, Series};
use crate::collector::{Collector, HEALTH_WINDOW, Limits};
use crate::outputs::prometheus;
use crate::senders::{MAX_SEQUENCE_JUMP, Seen, SenderState};
use crate::view::View;
use stats_core::Kind;
use stats_core::wire::{BucketSource, Encoder, EncoderConfig};
use stats_core::{Event, KeyId, Priority, Registry, Snapshot, Totals};

/// Datagrams from one sender: `events` each of (key, kind, value).
struct Sender {
    registry: Registry<16, 1024>,
    encoder: Encoder,
}

impl Sender {
    fn new(id: u64) -> Self {
        Sender {
            registry: Registry::new(),
            encoder: Encoder::new(EncoderConfig::new(id)).unwrap(),
        }
    }

    fn key(&mut self, name: &str, tags: &[(&str, &str)]) -> KeyId {
        self.registry.register(name, tags).unwrap()
    }

    fn datagram(&mut self, events: &[(KeyId, Kind, f64)]) -> Vec<u8> {
        self.datagram_at(events, 0)
    }

    /// A datagram whose clock reads `base` (ns).
    fn datagram_at(&mut self, events: &[(KeyId, Kind, f64)], base: u64) -> Vec<u8> {
        let mut buf = vec![0u8; 1472];
        let mut w = self.encoder.begin(&mut buf, base).unwrap();
        for &(key, kind, value) in events {
            let e = Event::new(key, kind, value, 1, Priority::Medium);
            w.push(&e, |id| self.registry.get(id)).unwrap();
        }
        let n = w.finish().len();
        buf.truncate(n);
        buf
    }
}

fn find<'c>(c: &'c Collector, name: &str) -> &'c Series {
    c.series().find(|s| s.name == name).unwrap()
}

#[test]
fn counters_sum_gauges_keep_the_last_and_distributions_count() {
    let mut s = Sender::new(1);
    let (req, depth, lat) = (
        s.key("requests", &[("route", "/")]),
        s.key("depth", &[]),
        s.key("latency", &[]),
    );
    let mut c = Collector::new(Limits::default());
    for round in 0..3 {
        c.ingest(&s.datagram(&[
            (req, Kind::Counter, 2.0),
            (depth, Kind::Gauge, f64::from(round)),
            (lat, Kind::Timer, 1_000_000.0),
            (lat, Kind::Timer, 3_000_000.0),
        ]));
    }
    assert_eq!(find(&c, "requests").aggregate(), Aggregate::Counter(6.0));
    assert_eq!(find(&c, "depth").aggregate(), Aggregate::Gauge(2.0));
    let Aggregate::Distribution(d) = find(&c, "latency").aggregate() else {
        panic!("a distribution");
    };
    assert_eq!((d.count, d.sum), (6, 12e6));
    let p50 = d.quantile(0.5).unwrap();
    assert!((p50 - 1e6).abs() / 1e6 < 0.032, "{p50}");
    assert_eq!(find(&c, "requests").tags, [("route".into(), "/".into())]);
    assert_eq!(c.totals().events, 12);
}

#[test]
fn sequences_tell_loss_duplicates_reordering_and_restarts() {
    let mut s = Sender::new(7);
    let k = s.key("k", &[]);
    let d: Vec<Vec<u8>> = (0..10)
        .map(|_| s.datagram(&[(k, Kind::Counter, 1.0)]))
        .collect();
    let mut c = Collector::new(Limits::default());
    // 0, 1, 3, 2 (late), 3 again (duplicate), 6 (4 and 5 lost), 9 (7, 8 lost).
    for i in [0, 1, 3, 2, 3, 6, 9] {
        c.ingest(&d[i]);
    }
    let (id, stats) = c.senders().next().unwrap();
    assert_eq!(id, 7);
    assert_eq!(
        (
            stats.received,
            stats.lost,
            stats.duplicated,
            stats.reordered
        ),
        (6, 4, 1, 1)
    );
    assert_eq!(stats.events, 6);
    // The duplicate was not aggregated twice.
    assert_eq!(find(&c, "k").aggregate(), Aggregate::Counter(6.0));
    // The sender restarts: a fresh encoder with the same id.
    let mut again = Sender::new(7);
    let k2 = again.key("k", &[]);
    let mut far = Sender::new(7);
    let kf = far.key("k", &[]);
    for _ in 0..100 {
        far.datagram(&[(kf, Kind::Counter, 1.0)]);
    }
    c.ingest(&far.datagram(&[(kf, Kind::Counter, 1.0)])); // sequence 100
    c.ingest(&again.datagram(&[(k2, Kind::Counter, 1.0)])); // sequence 0
    let stats = c.senders().next().unwrap().1;
    assert_eq!(stats.restarts, 1);
}

#[test]
fn health_judges_a_recent_window_and_not_too_few_datagrams() {
    let mut s = Sender::new(8);
    let k = s.key("k", &[]);
    let mut c = Collector::new(Limits::default());
    let status = |c: &Collector| {
        let (json, unhealthy) = prometheus::render_health(View::of(c));
        (json.split('"').nth(3).unwrap_or("").to_string(), unhealthy)
    };
    // Two garbage datagrams on a fresh collector: too few to judge.
    c.ingest(b"x:y|c");
    c.ingest(b"\x00garbage");
    assert_eq!(status(&c), ("healthy".into(), false));
    // A burst of garbage: unhealthy.
    for _ in 0..300 {
        c.ingest(b"x:y|c");
    }
    for _ in 0..100 {
        c.ingest(&s.datagram(&[(k, Kind::Counter, 1.0)]));
    }
    assert_eq!(status(&c), ("unhealthy".into(), true));
    // Good datagrams for a window's worth of ticks: healthy again,
    // although the garbage is still most of everything since the start.
    for _ in 0..HEALTH_WINDOW {
        c.tick();
        for _ in 0..2 {
            c.ingest(&s.datagram(&[(k, Kind::Counter, 1.0)]));
        }
    }
    assert_eq!(status(&c), ("healthy".into(), false));
    assert!(c.invalid().values().sum::<u64>() > c.totals().datagrams);
}

#[test]
fn a_key_used_with_two_kinds_in_one_datagram_is_two_series() {
    let mut s = Sender::new(6);
    let k = s.key("jobs", &[("queue", "a")]);
    let mut c = Collector::new(Limits::default());
    c.ingest(&s.datagram(&[
        (k, Kind::Counter, 1.0),
        (k, Kind::Gauge, 5.0),
        (k, Kind::Counter, 2.0),
    ]));
    assert_eq!(c.totals().overflowed_events, 0);
    let kinds: Vec<(Kind, Aggregate)> = c
        .series()
        .filter(|s| s.name == "jobs")
        .map(|s| (s.kind, s.aggregate()))
        .collect();
    assert_eq!(
        kinds,
        [
            (Kind::Counter, Aggregate::Counter(3.0)),
            (Kind::Gauge, Aggregate::Gauge(5.0))
        ]
    );
}

#[test]
fn series_that_sanitise_to_one_name_render_as_one_sample_set() {
    let mut c = Collector::new(Limits::default());
    c.ingest(b"db.query:1|ms|#table:orders\ndb/query:2|ms|#table:orders\nhits.a:1|c\nhits/a:2|c");
    c.ingest(b"q.depth:5|g\nq/depth:3|g");
    c.ingest(b"q.depth:4|g");
    let text = prometheus::render_metrics(View::of(&c));
    let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    let mut unique = samples.clone();
    unique.sort_unstable();
    unique.dedup_by(|a, b| a.split(' ').next() == b.split(' ').next());
    assert_eq!(
        unique.len(),
        samples.len(),
        "one sample per identity: {text}"
    );
    assert!(
        samples.contains(&"db_query_seconds_count{table=\"orders\"} 2"),
        "{text}"
    );
    assert!(
        samples.contains(&"db_query_seconds_sum{table=\"orders\"} 0.003"),
        "{text}"
    );
    assert!(samples.contains(&"hits_a_total 3"), "{text}");
    // The gauge that changed last.
    assert!(samples.contains(&"q_depth 4"), "{text}");
    assert_eq!(text.matches("# TYPE db_query_seconds histogram").count(), 1);
    assert!(
        samples.contains(&"db_query_seconds_bucket{table=\"orders\",le=\"+Inf\"} 2"),
        "{text}"
    );
}

#[test]
fn values_that_are_not_finite_or_would_make_a_total_infinite_are_refused() {
    let mut s = Sender::new(4);
    let hits = s.key("hits", &[]);
    let sizes = s.key("sizes", &[]);
    let mut c = Collector::new(Limits::default());
    c.ingest(&s.datagram(&[
        (hits, Kind::Counter, 2.0),
        (hits, Kind::Counter, f64::NAN),
        (sizes, Kind::Histogram, f64::INFINITY),
        (sizes, Kind::Histogram, 5.0),
    ]));
    // A gauge moved past the largest float, a counter too.
    c.ingest(b"q:1e308|g\nq:+1e308|g\nbig:1e308|c\nbig:1e308|c");
    assert_eq!(c.totals().non_finite_refused, 4);
    assert_eq!(find(&c, "hits").aggregate(), Aggregate::Counter(2.0));
    let Aggregate::Distribution(d) = find(&c, "sizes").aggregate() else {
        panic!()
    };
    assert_eq!((d.count, d.sum, d.max), (1, 5.0, 5.0));
    assert_eq!(find(&c, "q").aggregate(), Aggregate::Gauge(1e308));
    assert_eq!(find(&c, "big").aggregate(), Aggregate::Counter(1e308));
    // A sample rate that would scale 1 into a 300-digit count.
    c.ingest(b"r3:1|c|@1e-300\nr3:1|c|@0.5");
    assert_eq!(c.invalid_lines().get("statsd_bad_sample_rate"), Some(&1));
    assert_eq!(find(&c, "r3").aggregate(), Aggregate::Counter(2.0));
    let text = prometheus::render_metrics(View::of(&c));
    assert!(
        text.contains("stats_collector_non_finite_refused_total 4"),
        "{text}"
    );
    let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert!(
        samples.iter().all(|l| {
            let value = l.rsplit(' ').next().unwrap();
            value != "NaN" && !value.ends_with("Inf")
        }),
        "{text}"
    );
    // Large totals in exponent form, as the format allows.
    assert!(samples.contains(&"big_total 1e308"), "{text}");
}

#[test]
fn a_sequence_jump_no_sender_makes_is_suspect_not_loss() {
    let mut state = SenderState::first(5, 1_000);
    // One forged datagram with the highest sequence there is.
    assert_eq!(state.observe(u64::MAX, 1_000), Seen::Suspect);
    assert_eq!((state.stats.lost, state.stats.suspect), (0, 1));
    // The real sender carries on, its loss accounted as before.
    assert_eq!(state.observe(6, 1_001), Seen::New);
    assert_eq!(state.observe(8, 1_002), Seen::New);
    assert_eq!((state.stats.lost, state.stats.received), (1, 3));
    // The largest jump a sender may make is loss, not suspect.
    assert_eq!(state.observe(8 + MAX_SEQUENCE_JUMP, 1_003), Seen::New);
    assert_eq!(state.stats.lost, MAX_SEQUENCE_JUMP);
    // A sender that really jumped further: its second datagram after
    // the jump resynchronises, and what follows is accounted from it.
    let far = 8 + 3 * MAX_SEQUENCE_JUMP;
    assert_eq!(state.observe(far, 1_004), Seen::Suspect);
    assert_eq!(state.observe(far + 1, 1_005), Seen::New);
    assert_eq!(state.observe(far + 3, 1_006), Seen::New);
    assert_eq!(
        (state.stats.suspect, state.stats.restarts, state.stats.lost),
        (2, 0, MAX_SEQUENCE_JUMP + 1)
    );
}

#[test]
fn invalid_datagrams_are_counted_by_kind_and_change_nothing() {
    let mut s = Sender::new(3);
    let k = s.key("k", &[]);
    let good = s.datagram(&[(k, Kind::Counter, 1.0)]);
    let mut c = Collector::new(Limits::default());
    let mut flipped = good.clone();
    flipped[10] ^= 0x40;
    for bad in [&b"garbage"[..], &good[..good.len() - 3], &flipped[..], &[]] {
        c.ingest(bad);
    }
    assert_eq!(c.totals().datagrams, 0);
    assert_eq!(c.series().count(), 0);
    assert_eq!(c.invalid().values().sum::<u64>(), 4);
    assert!(
        c.invalid().contains_key("crc_mismatch"),
        "{:?}",
        c.invalid()
    );
    c.ingest(&good);
    assert_eq!(c.totals().events, 1);
}

/// `WIRE.md`: a datagram is taken whole or not at all.
#[test]
fn a_datagram_with_one_bad_event_counts_none_of_its_events() {
    let mut s = Sender::new(4);
    let k = s.key("k", &[]);
    let mut d = s.datagram(&[(k, Kind::Counter, 1.0), (k, Kind::Counter, 1.0)]);
    // The last event is `00 meta 00 02`: set its reserved meta bit.
    let meta = d.len() - 7;
    d[meta] |= 0x80;
    let crc = stats_core::wire::crc32(&d[..d.len() - 4]);
    let at = d.len() - 4;
    d[at..].copy_from_slice(&crc.to_le_bytes());
    let mut c = Collector::new(Limits::default());
    c.ingest(&d);
    assert_eq!(c.invalid().get("bad_meta"), Some(&1));
    assert_eq!((c.totals().datagrams, c.totals().events), (0, 0));
    assert_eq!(c.series().count(), 0);
    assert_eq!(c.senders().count(), 0, "not even its sequence counts");
}

/// A metric is its name and its set of tags, whatever their order.
#[test]
fn tags_in_another_order_are_the_same_series() {
    let mut c = Collector::new(Limits::default());
    c.ingest(b"hits:1|c|#a:1,b:2\nhits:2|c|#b:2,a:1");
    let mut s = Sender::new(5);
    let k = s.key("hits", &[("b", "2"), ("a", "1")]);
    c.ingest(&s.datagram(&[(k, Kind::Counter, 4.0)]));
    assert_eq!(c.series().count(), 1);
    assert_eq!(find(&c, "hits").aggregate(), Aggregate::Counter(7.0));
}

#[test]
fn metrics_render_series_as_prometheus_families() {
    let mut s = Sender::new(0xAB);
    let req = s.key(
        "http.requests",
        &[("route", "/a\"b"), ("quantile", "x"), ("le", "y")],
    );
    let lat = s.key("db-query", &[]);
    let g = s.key("9lives", &[]);
    let mut c = Collector::new(Limits::default());
    c.ingest(&s.datagram(&[
        (req, Kind::Counter, 3.0),
        (lat, Kind::Timer, 2e6),
        (g, Kind::Gauge, 1.5),
    ]));
    let text = prometheus::render_metrics(View::of(&c));
    assert!(
        text.contains("# TYPE http_requests_total counter"),
        "{text}"
    );
    assert!(
        text.contains("http_requests_total{tag_le=\"y\",tag_quantile=\"x\",route=\"/a\\\"b\"} 3"),
        "{text}"
    );
    assert!(text.contains("# TYPE db_query_seconds histogram"));
    assert!(text.contains("db_query_seconds_sum 0.002"), "{text}");
    assert!(text.contains("db_query_seconds_count 1"));
    // 2 ms: above 2^-9 s, at or below the next timer boundary, 2^-8.5 s.
    assert!(
        text.contains("db_query_seconds_bucket{le=\"0.001953125\"} 0"),
        "{text}"
    );
    // Prometheus's own float for it (`exponentialBounds`), one ulp below
    // the correctly rounded power.
    assert!(
        text.contains("db_query_seconds_bucket{le=\"0.002762135864009951\"} 1"),
        "{text}"
    );
    assert!(text.contains("db_query_seconds_bucket{le=\"+Inf\"} 1"));
    assert!(text.contains("_9lives 1.5"));
    assert!(text.contains("stats_collector_sender_datagrams_total{sender=\"00000000000000ab\"} 1"));
    let (health, unhealthy) = prometheus::render_health(View::of(&c));
    assert!(health.starts_with("{\"status\":\"healthy\""), "{health}");
    assert!(!unhealthy);
}

#[test]
fn series_and_senders_are_capped() {
    let mut s = Sender::new(1);
    let keys: Vec<KeyId> = (0..5).map(|i| s.key(&format!("m{i}"), &[])).collect();
    let mut c = Collector::new(Limits {
        max_series: 3,
        max_senders: 1,
        ..Limits::default()
    });
    let events: Vec<_> = keys.iter().map(|&k| (k, Kind::Counter, 1.0)).collect();
    c.ingest(&s.datagram(&events));
    assert_eq!(c.series().count(), 4, "three series and the overflow");
    assert_eq!(
        find(&c, "stats_collector_overflow").aggregate(),
        Aggregate::Counter(2.0)
    );
    assert_eq!(c.totals().overflowed_events, 2);
    // A second datagram: the sender has proven itself and keeps its place.
    c.ingest(&s.datagram(&[(keys[0], Kind::Counter, 1.0)]));
    let mut other = Sender::new(2);
    let k = other.key("m0", &[]);
    c.ingest(&other.datagram(&[(k, Kind::Counter, 1.0)]));
    assert_eq!(c.senders().map(|(id, _)| id).collect::<Vec<_>>(), [1]);
    assert_eq!(c.totals().untracked_datagrams, 1);
    assert_eq!(find(&c, "m0").aggregate(), Aggregate::Counter(3.0));
}

#[test]
fn what_the_memory_budget_has_no_room_for_is_refused_and_counted() {
    let mut s = Sender::new(1);
    let (a, b) = (s.key("a", &[]), s.key("b", &[]));
    let mut c = Collector::new(Limits {
        max_memory: 0,
        ..Limits::default()
    });
    c.ingest(&s.datagram(&[(a, Kind::Counter, 2.0), (b, Kind::Histogram, 1.0)]));
    let refused = c.totals().memory_refused;
    assert_eq!((refused.series, refused.senders), (2, 1));
    assert_eq!(refused.values, 1, "the histogram value needed a bucket");
    assert_eq!(c.senders().count(), 0);
    assert_eq!(c.totals().untracked_datagrams, 1);
    assert_eq!(
        find(&c, "stats_collector_overflow").aggregate(),
        Aggregate::Counter(2.0),
        "the counter's value is still counted"
    );
    assert_eq!(c.memory().tables(), 0);
    let text = prometheus::render_metrics(View::of(&c));
    for line in [
        "stats_collector_memory_refused_total{what=\"series\"} 2",
        "stats_collector_memory_refused_total{what=\"sender\"} 1",
        "stats_collector_memory_limit_bytes 0",
    ] {
        assert!(text.contains(line), "{line} in {text}");
    }
}

#[test]
fn a_flood_of_one_datagram_senders_cannot_push_out_real_ones() {
    let mut c = Collector::new(Limits {
        max_series: 100,
        max_senders: 4,
        ..Limits::default()
    });
    let mut real = Sender::new(1);
    let k = real.key("requests", &[]);
    let d: Vec<Vec<u8>> = (0..4)
        .map(|_| real.datagram(&[(k, Kind::Counter, 1.0)]))
        .collect();
    c.ingest(&d[0]);
    c.ingest(&d[1]);
    // 10,000 ids that send one datagram each.
    for id in 0..10_000u64 {
        let mut bogus = Sender::new(1_000 + id);
        let b = bogus.key("requests", &[]);
        c.ingest(&bogus.datagram(&[(b, Kind::Counter, 1.0)]));
    }
    assert_eq!(c.totals().senders_evicted, 10_000 - 3);
    assert_eq!(c.senders().count(), 4);
    // The real sender is still accounted: sequence 2 lost, 3 arrives.
    c.ingest(&d[3]);
    let stats = c.senders().find(|(id, _)| *id == 1).unwrap().1;
    assert_eq!((stats.received, stats.lost), (3, 1));
    // A new real sender after the flood is tracked too.
    let mut late = Sender::new(2);
    let l = late.key("requests", &[]);
    c.ingest(&late.datagram(&[(l, Kind::Counter, 1.0)]));
    assert!(c.senders().any(|(id, _)| id == 2));
    assert_eq!(c.totals().untracked_datagrams, 0);
}

#[test]
fn relative_gauges_move_the_last_value() {
    let mut s = Sender::new(1);
    let g = s.key("depth", &[]);
    let mut c = Collector::new(Limits::default());
    let mut buf = vec![0u8; 1472];
    let mut w = s.encoder.begin(&mut buf, 0).unwrap();
    for e in [
        Event::new(g, Kind::Gauge, 10.0, 1, Priority::Medium),
        Event::gauge_change(g, -3.0, 2, Priority::Medium),
        Event::gauge_change(g, 0.5, 3, Priority::Medium),
    ] {
        w.push(&e, |id| s.registry.get(id)).unwrap();
    }
    let n = w.finish().len();
    c.ingest(&buf[..n]);
    assert_eq!(find(&c, "depth").aggregate(), Aggregate::Gauge(7.5));
}

/// Every DogStatsD type, in lines as Datadog's clients (datadog-go,
/// datadogpy) write them: sets count distinct members per export
/// interval as a gauge, events are counted by alert type, service checks
/// set a status gauge per check and tags; none is malformed.
#[test]
fn sets_events_and_service_checks_are_read() {
    let mut c = Collector::new(Limits::default());
    c.ingest(
        b"py.users:user7|s|#env:prod\npy.users:user8|s|#env:prod\npy.users:user7|s|#env:prod\n\
          _e{6,14}:Deploy|v2 rolled\\nout|d:1700000000|h:web-1|p:low|t:warning|#env:prod\n\
          _e{4,2}:Oops|Hi|t:error\n_e{4,2}:Note|Hi\n\
          _sc|db.can_connect|2|d:1700000000|h:db-1|#env:prod|m:refused\n\
          _sc|web.up|0",
    );
    assert!(c.invalid_lines().is_empty(), "{:?}", c.invalid_lines());
    assert!(c.invalid().is_empty(), "{:?}", c.invalid());
    // The interval closes: two distinct users.
    c.close_sets();
    let users = find(&c, "py.users");
    assert_eq!(
        (users.kind, users.aggregate()),
        (Kind::Gauge, Aggregate::Gauge(2.0))
    );
    assert_eq!(users.tags, [("env".to_string(), "prod".to_string())]);
    let text = prometheus::render_metrics(View::of(&c));
    for line in [
        "py_users{env=\"prod\"} 2",
        "service_check_status{check=\"db.can_connect\",env=\"prod\"} 2",
        "service_check_status{check=\"web.up\"} 0",
        "stats_collector_statsd_events_total{alert_type=\"error\"} 1",
        "stats_collector_statsd_events_total{alert_type=\"info\"} 1",
        "stats_collector_statsd_events_total{alert_type=\"warning\"} 1",
        "stats_collector_statsd_service_checks_total 2",
        "stats_collector_set_members_capped_total 0",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in:\n{text}");
    }
    // The next interval: one user; then none, which reads 0.
    c.ingest(b"py.users:user9|s|#env:prod\n_sc|web.up|1");
    c.close_sets();
    assert_eq!(find(&c, "py.users").aggregate(), Aggregate::Gauge(1.0));
    c.close_sets();
    assert_eq!(find(&c, "py.users").aggregate(), Aggregate::Gauge(0.0));
    let text = prometheus::render_metrics(View::of(&c));
    assert!(
        text.contains("service_check_status{check=\"web.up\"} 1"),
        "{text}"
    );
    // Bad events and service checks are counted under their own kinds.
    c.ingest(b"_e{9,2}:short|ab\n_sc|x|7\nok:1|c");
    assert_eq!(c.invalid_lines().get("statsd_bad_event"), Some(&1));
    assert_eq!(c.invalid_lines().get("statsd_bad_service_check"), Some(&1));
}

#[test]
fn statsd_lines_are_aggregated_and_bad_lines_counted() {
    let mut c = Collector::new(Limits::default());
    c.ingest(
        b"hits:1|c\nhits:2|c|@0.5\nq:7|g\nq:-2|g\nq:+0.5|g\nt:1.5|ms|#route:/a\n\
          h:42|h\nd:40|d\nu:alice|s\nbad line\nx:1|zz\nn:abc|c",
    );
    assert_eq!(find(&c, "hits").aggregate(), Aggregate::Counter(5.0));
    assert_eq!(find(&c, "q").aggregate(), Aggregate::Gauge(5.5));
    let t = find(&c, "t");
    assert_eq!(
        (t.kind, &t.tags[..]),
        (Kind::Timer, &[("route".into(), "/a".into())][..])
    );
    let Aggregate::Distribution(d) = t.aggregate() else {
        panic!("a distribution");
    };
    assert_eq!(
        (d.count, d.sum),
        (1, 1.5e6),
        "milliseconds kept as nanoseconds"
    );
    assert_eq!(find(&c, "h").kind, Kind::Histogram);
    assert_eq!(find(&c, "d").kind, Kind::Histogram);
    let invalid = c.invalid_lines();
    for kind in [
        "statsd_malformed",
        "statsd_unknown_type",
        "statsd_bad_value",
    ] {
        assert_eq!(invalid.get(kind), Some(&1), "{kind}: {invalid:?}");
    }
    let totals = c.totals();
    assert_eq!(
        (totals.datagrams, totals.statsd_datagrams, totals.events),
        (1, 1, 9)
    );
    assert_eq!(c.senders().count(), 0, "no sender accounting for StatsD");
    // Lines and datagrams are counted apart: that datagram was valid.
    assert!(c.invalid().is_empty(), "{:?}", c.invalid());
    // A datagram of nothing but bad lines is not a valid datagram.
    c.ingest(b"\xff\xfe:1|c\nx:y|c");
    assert_eq!(c.totals().datagrams, 1);
    assert_eq!(c.invalid_lines().get("statsd_invalid_utf8"), Some(&1));
    assert_eq!(c.invalid().get("statsd_no_valid_line"), Some(&1));
    let text = prometheus::render_metrics(View::of(&c));
    assert!(
        text.contains("stats_collector_invalid_datagrams_total{error=\"statsd_no_valid_line\"} 1"),
        "{text}"
    );
    assert!(
        text.contains(
            "stats_collector_invalid_statsd_lines_total{error=\"statsd_invalid_utf8\"} 1"
        ),
        "{text}"
    );
}

#[test]
fn dogstatsd_lines_of_several_values_count_each_value() {
    let mut c = Collector::new(Limits::default());
    c.ingest(b"d:1:2:3|d|@0.5|#k:v|c:abc\nt:1.5:2.5|ms\nn:1:2|c\nm:1:x|d");
    let Aggregate::Distribution(d) = find(&c, "d").aggregate() else {
        panic!("a distribution");
    };
    assert_eq!((d.count, d.sum), (6, 12.0), "each value stands for two");
    let Aggregate::Distribution(t) = find(&c, "t").aggregate() else {
        panic!("a distribution");
    };
    assert_eq!((t.count, t.sum), (2, 4e6));
    // Several values for a counter, or one bad value: the line is refused.
    assert_eq!(c.invalid_lines().get("statsd_bad_value"), Some(&2));
    assert_eq!(c.totals().events, 5);
}

#[test]
fn a_reboot_with_a_fixed_sender_id_is_a_restart_not_duplicates() {
    let second = 1_000_000_000;
    let mut before = Sender::new(9);
    let k = before.key("boots", &[]);
    let mut c = Collector::new(Limits::default());
    let sent: Vec<Vec<u8>> = (0..10)
        .map(|i| before.datagram_at(&[(k, Kind::Counter, 1.0)], 30 * second + i * 1_000))
        .collect();
    for d in &sent[..9] {
        c.ingest(d);
    }
    // Reordered by the network: older sequence, a clock a little behind.
    c.ingest(&sent[9]);
    c.ingest(&sent[4]);
    let stats = c.senders().next().unwrap().1;
    assert_eq!((stats.duplicated, stats.restarts), (1, 0));
    // The device reboots: sequence and clock start again.
    let mut after = Sender::new(9);
    let k2 = after.key("boots", &[]);
    for i in 0..3 {
        c.ingest(&after.datagram_at(&[(k2, Kind::Counter, 1.0)], i * 1_000));
    }
    let stats = c.senders().next().unwrap().1;
    assert_eq!(
        (stats.restarts, stats.duplicated, stats.received),
        (1, 1, 13)
    );
    assert_eq!(find(&c, "boots").aggregate(), Aggregate::Counter(13.0));
}

/// Counters have no buckets.
struct NoBuckets;

impl BucketSource for NoBuckets {
    fn for_each(&self, _: u32, _: &mut dyn FnMut(u16, u64)) {}
}

/// Aggregating at the source with a fixed sender id (a device), restarted:
/// the new run's totals start at another time and its sequence at 0
/// again, so its first datagrams repeat numbers the old run used. They
/// are a restart, not duplicates, and the exported total carries on.
#[test]
fn a_restart_under_the_same_id_is_told_by_its_start_not_its_numbers() {
    let mut registry = Registry::<4, 256>::new();
    let key = registry.register("boots", &[]).unwrap();
    let mut c = Collector::new(Limits::default());
    let mut buf = vec![0u8; 1432];
    let second = 1_000_000_000;
    let mut run = |started: u64, datagrams: u64, c: &mut Collector| {
        let mut encoder = Encoder::new(EncoderConfig::new(7)).unwrap();
        for i in 0..datagrams {
            let mut w = encoder
                .begin_series(&mut buf, started + (i + 1) * second, started)
                .unwrap();
            let totals = Snapshot {
                key,
                kind: Kind::Counter,
                changes: 1,
                value: Totals::Counter {
                    sum: i as i64 + 1,
                    count: i + 1,
                },
            };
            w.push(&totals, &NoBuckets, |k| registry.get(k)).unwrap();
            let d = w.finish().to_vec();
            c.ingest(&d);
        }
    };
    // Ten datagrams (sequences 0 to 9), the last total 10; then a restart
    // whose clock is later (no step back to tell it by) and three more.
    run(100 * second, 10, &mut c);
    run(200 * second, 3, &mut c);
    let stats = c.senders().next().unwrap().1;
    assert_eq!(
        (stats.restarts, stats.duplicated, stats.received),
        (1, 0, 13)
    );
    assert_eq!(find(&c, "boots").aggregate(), Aggregate::Counter(13.0));
}

/// Counters go out as totals that only go up: a StatsD decrement is
/// refused and counted, and the total stays what the increments made it.
#[test]
fn a_negative_statsd_counter_is_refused_not_taken_off_the_total() {
    let mut c = Collector::new(Limits::default());
    c.ingest(b"jobs:5|c\njobs:-2|c\njobs:1|c|@0.5");
    assert_eq!(find(&c, "jobs").aggregate(), Aggregate::Counter(7.0));
    assert_eq!(
        c.invalid_lines().get(crate::ingest::NEGATIVE_COUNTER),
        Some(&1)
    );
    assert!(prometheus::render_metrics(View::of(&c)).contains("jobs_total 7"));
}
