//! The Prometheus output: every series and the collector's own accounting
//! as text format 0.0.4, and health as JSON.

use crate::aggregation::{Aggregate, Distribution};
use crate::health::HEALTH_MIN_DATAGRAMS;
use crate::outputs::push::PushCounters;
use crate::senders::SenderStats;
use crate::view::View;
use stats_core::prometheus::{
    Bounds, DefaultBounds, Families, Sink, Text, export_scale, family_type, labels, write_classic,
};
use stats_core::{Check, Kind, Status};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

/// Loss and invalid-datagram rates above which the collector is degraded,
/// and unhealthy.
const LOSS_LIMITS: (f64, f64) = (0.01, 0.10);
const INVALID_LIMITS: (f64, f64) = (0.01, 0.10);

/// Where families are written (the text formats, a remote write), and
/// how a distribution goes there.
pub(crate) trait Output: Sink {
    /// One distribution of the current family (a histogram named `name`),
    /// its sum multiplied by `scale`: classic buckets at `bounds` unless
    /// the output takes it whole.
    fn distribution(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        d: &Distribution,
        bounds: &Bounds,
        scale: f64,
    ) {
        classic(self, name, labels, d, bounds, scale);
    }
}

/// `d` as a classic histogram at `bounds`, its sum times `scale`.
pub(crate) fn classic<S: Sink + ?Sized>(
    sink: &mut S,
    name: &str,
    labels: &[(&str, &str)],
    d: &Distribution,
    bounds: &Bounds,
    scale: f64,
) {
    write_classic(
        sink,
        name,
        labels,
        bounds,
        d.buckets(),
        d.count,
        d.sum * scale,
    );
}

impl Output for Text {}

/// A Prometheus family: its name, the metric name it was first sent as,
/// the series' kind, and one merged aggregate per label set.
pub(crate) struct Family {
    pub(crate) name: String,
    pub(crate) source: String,
    pub(crate) kind: Kind,
    pub(crate) sets: Vec<(Vec<(String, String)>, Aggregate)>,
}

/// The collector's health as `/health` answers it: the worst status, then
/// each check with its value and limits (the client's `Health` has the
/// pipeline's checks; these are the collector's own).
#[derive(serde::Serialize)]
struct CollectorHealth<'c> {
    status: Status,
    checks: &'c [Check],
}

/// Prometheus text format 0.0.4: every series (counters as
/// `<name>_total`, gauges, timers as `<name>_seconds` histograms,
/// histograms as histograms: cumulative `le` buckets, `_sum` and
/// `_count`, see [`crate::histograms`]; names and tag keys
/// sanitised, tags as labels), then the collector's own accounting.
/// Series that sanitise to one name and label set (`db.query` and
/// `db/query`) render as one sample set, merged: counters and
/// distributions summed, a gauge the one that changed last.
pub fn render_metrics(view: &View) -> String {
    render_metrics_as(view, false)
}

/// [`render_metrics`], or with `openmetrics` the
/// same families in OpenMetrics 1.0 (counter families named without
/// `_total`, ending with `# EOF`).
pub fn render_metrics_as(view: &View, openmetrics: bool) -> String {
    let mut t = if openmetrics {
        Text::openmetrics()
    } else {
        Text::new()
    };
    write_families(view, &mut t);
    t.finish()
}

/// Every series as Prometheus families (as [`render_metrics`] writes
/// them), then the collector's own, into `sink`.
///
/// [`render_metrics`]: render_metrics
pub(crate) fn write_families(view: &View, sink: &mut dyn Output) {
    let mut defaults = DefaultBounds::new();
    for family in families(view) {
        let help = match family.kind {
            Kind::Counter => "Total of the counter since its senders started.",
            Kind::Gauge => "Last gauge value received.",
            Kind::Timer => "Timer values since their senders started, in seconds.",
            Kind::Histogram => "Histogram values since their senders started.",
        };
        let name = family.name.as_str();
        sink.family(name, family_type(family.kind), help);
        let bounds = match view.histograms().buckets.get(&family.source) {
            Some(configured) => Cow::Owned(Bounds::new(configured.clone())),
            None => defaults.of(family.kind, || {
                (family.sets.iter())
                    .filter_map(|(_, a)| match a {
                        Aggregate::Distribution(d) => Some(d.exponential()),
                        _ => None,
                    })
                    .collect()
            }),
        };
        for (labels, aggregate) in &family.sets {
            let base: Vec<(&str, &str)> = labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            match aggregate {
                Aggregate::Counter(v) | Aggregate::Gauge(v) => sink.sample(name, &base, *v),
                Aggregate::Distribution(d) => {
                    let scale = export_scale(family.kind);
                    sink.distribution(name, &base, d, &bounds, scale);
                }
            }
        }
    }
    render_own(view, sink);
}

/// The series as Prometheus families: names sanitised (counters as
/// `<name>_total`, timers as `<name>_seconds`; a name used by two kinds
/// gets the kind), tags as labels, and series that sanitise to one
/// name and label set merged (counters and distributions summed, a
/// gauge the one that changed last). Sorted by name and labels.
pub(crate) fn families(view: &View) -> Vec<Family> {
    let mut families = Families::new();
    for series in view.series() {
        families.add(&series.name, series.kind, series);
    }
    families
        .into_families()
        .map(|(name, kind, members)| {
            let source = members.first().map_or_else(String::new, |s| s.name.clone());
            // One sample set per label set: (when it last changed,
            // merged).
            let mut sets: BTreeMap<Vec<(String, String)>, (u64, Aggregate)> = BTreeMap::new();
            for series in members {
                let (arrival, aggregate) = (series.arrival(), series.aggregate());
                let tags = series.tags.iter().map(|(k, v)| (k.as_str(), v.as_str()));
                match sets.entry(labels(tags)) {
                    std::collections::btree_map::Entry::Vacant(e) => {
                        e.insert((arrival, aggregate));
                    }
                    std::collections::btree_map::Entry::Occupied(mut e) => {
                        let (last, merged) = e.get_mut();
                        if kind != Kind::Gauge || arrival >= *last {
                            merged.merge(&aggregate);
                            *last = arrival.max(*last);
                        }
                    }
                }
            }
            Family {
                name,
                source,
                kind,
                sets: sets.into_iter().map(|(l, (_, a))| (l, a)).collect(),
            }
        })
        .collect()
}

fn render_own(view: &View, t: &mut dyn Output) {
    let totals = view.totals();
    for (name, help, value) in [
        (
            "stats_collector_datagrams_total",
            "Valid datagrams received.",
            totals.datagrams,
        ),
        (
            "stats_collector_events_total",
            "Events aggregated.",
            totals.events,
        ),
        (
            "stats_collector_series_records_total",
            "Series totals taken in (from senders that aggregate).",
            totals.records,
        ),
        (
            "stats_collector_overflowed_records_total",
            "Series totals not kept (series cap reached, or no room in the memory budget for their series).",
            totals.overflowed_records,
        ),
        (
            "stats_collector_bytes_total",
            "Bytes in valid datagrams.",
            totals.bytes,
        ),
        (
            "stats_collector_duplicates_ignored_total",
            "Duplicated datagrams ignored.",
            totals.duplicates_ignored,
        ),
        (
            "stats_collector_overflowed_events_total",
            "Events folded into an overflow series (series cap reached, or no room in the memory budget).",
            totals.overflowed_events,
        ),
        (
            "stats_collector_untracked_datagrams_total",
            "Datagrams from senders beyond the tracked ones.",
            totals.untracked_datagrams,
        ),
        (
            "stats_collector_statsd_datagrams_total",
            "StatsD datagrams received (not accounted per sender).",
            totals.statsd_datagrams,
        ),
        (
            "stats_collector_statsd_service_checks_total",
            "DogStatsD service checks taken in (each sets service_check_status).",
            totals.statsd_service_checks,
        ),
        (
            "stats_collector_set_members_capped_total",
            "StatsD set members not kept: past the members a set keeps in an interval, or the memory budget.",
            view.set_members_capped(),
        ),
        (
            "stats_collector_non_finite_refused_total",
            "Values refused: not finite, or making a total infinite.",
            totals.non_finite_refused,
        ),
        (
            "stats_collector_senders_evicted_total",
            "Senders of a single datagram forgotten to make room for new ones.",
            totals.senders_evicted,
        ),
    ] {
        t.single(name, "counter", help, value as f64);
    }
    if let Some(f) = view.forwarded() {
        for (name, help, value) in [
            (
                "stats_collector_forwarded_lines_total",
                "StatsD lines forwarded.",
                f.lines,
            ),
            (
                "stats_collector_forwarded_datagrams_total",
                "StatsD datagrams forwarded.",
                f.datagrams,
            ),
            (
                "stats_collector_forward_send_errors_total",
                "Forwarded datagrams the socket refused.",
                f.send_errors,
            ),
            (
                "stats_collector_forward_lines_lost_total",
                "Lines lost in refused datagrams.",
                f.lines_lost,
            ),
            (
                "stats_collector_forward_lines_refused_total",
                "Lines that could not be written (non-finite, or too long).",
                f.lines_refused,
            ),
        ] {
            t.single(name, "counter", help, value as f64);
        }
    }
    render_pushes(view, t);
    render_memory(view, t);
    t.single(
        "stats_collector_export_held_seconds",
        "gauge",
        "The longest the last run of the pushed outputs held the collector's \
         state at once (its view is taken a chunk of series at a time): ingest \
         waited that long at most.",
        view.export_held().as_secs_f64(),
    );
    t.single(
        "stats_collector_series",
        "gauge",
        "Series kept.",
        view.series_held() as f64,
    );
    t.family(
        "stats_collector_statsd_events_total",
        "counter",
        "DogStatsD events taken in, by alert type.",
    );
    for (alert, n) in view.statsd_events() {
        t.sample(
            "stats_collector_statsd_events_total",
            &[("alert_type", alert)],
            *n as f64,
        );
    }
    for (name, help, counts) in [
        (
            "stats_collector_invalid_datagrams_total",
            "Invalid datagrams, by error kind.",
            view.invalid(),
        ),
        (
            "stats_collector_invalid_statsd_lines_total",
            "StatsD lines that did not read, by error kind.",
            view.invalid_lines(),
        ),
    ] {
        t.family(name, "counter", help);
        for (kind, n) in counts {
            t.sample(name, &[("error", kind)], *n as f64);
        }
    }
    type Field = fn(&SenderStats) -> u64;
    let per_sender: [(&str, &str, Field); 6] = [
        (
            "stats_collector_sender_datagrams_total",
            "Datagrams received from a sender.",
            |s| s.received,
        ),
        (
            "stats_collector_sender_lost_total",
            "A sender's datagrams missing by sequence.",
            |s| s.lost,
        ),
        (
            "stats_collector_sender_duplicated_total",
            "A sender's datagrams seen twice.",
            |s| s.duplicated,
        ),
        (
            "stats_collector_sender_reordered_total",
            "A sender's datagrams that arrived late.",
            |s| s.reordered,
        ),
        (
            "stats_collector_sender_restarts_total",
            "Times a sender's sequence started again.",
            |s| s.restarts,
        ),
        (
            "stats_collector_sender_suspect_total",
            "A sender's datagrams ignored: their sequence jumped further than a sender's can.",
            |s| s.suspect,
        ),
    ];
    let mut senders: Vec<(u64, SenderStats)> = view.senders().collect();
    senders.sort_by_key(|(id, _)| *id);
    for (name, help, field) in per_sender {
        t.family(name, "counter", help);
        for (id, stats) in &senders {
            let id = format!("{id:016x}");
            t.sample(name, &[("sender", &id)], field(stats) as f64);
        }
    }
}

/// The memory budget, what holds it, and what it refused.
fn render_memory(view: &View, t: &mut dyn Sink) {
    let m = view.memory();
    t.single(
        "stats_collector_memory_limit_bytes",
        "gauge",
        "The memory budget (max_memory).",
        m.limit() as f64,
    );
    let name = "stats_collector_memory_bytes";
    t.family(
        name,
        "gauge",
        "Bytes held against the memory budget, by part.",
    );
    t.sample(name, &[("part", "tables")], m.tables() as f64);
    t.sample(name, &[("part", "queues")], m.queued() as f64);
    let name = "stats_collector_memory_refused_total";
    t.family(
        name,
        "counter",
        "What the memory budget had no room for: new series (their events overflow), \
         values needing a new bucket, senders' totals, new senders.",
    );
    let r = view.totals().memory_refused;
    for (what, n) in [
        ("series", r.series),
        ("value", r.values),
        ("record", r.records),
        ("sender", r.senders),
    ] {
        t.sample(name, &[("what", what)], n as f64);
    }
}

/// Each pushed destination's counters, labelled by output and URL.
fn render_pushes(view: &View, t: &mut dyn Sink) {
    if view.pushes().is_empty() {
        return;
    }
    type Field = fn(&PushCounters) -> u64;
    let fields: [(&str, &str, &str, Field); 4] = [
        (
            "stats_collector_push_samples_sent_total",
            "counter",
            "Samples in requests the engine accepted.",
            |c| c.sent.load(Ordering::Relaxed),
        ),
        (
            "stats_collector_push_samples_retried_total",
            "counter",
            "Samples in attempts tried again (429, 5xx, network errors).",
            |c| c.retried.load(Ordering::Relaxed),
        ),
        (
            "stats_collector_push_requests_total",
            "counter",
            "Requests sent.",
            |c| c.requests.load(Ordering::Relaxed),
        ),
        (
            "stats_collector_push_queued_bytes",
            "gauge",
            "Bytes of requests queued.",
            |c| c.queued_bytes.load(Ordering::Relaxed),
        ),
    ];
    for (name, kind, help, field) in fields {
        t.family(name, kind, help);
        for d in view.pushes() {
            let labels = [("output", d.output), ("url", d.url_text.as_str())];
            t.sample(name, &labels, field(&d.counters) as f64);
        }
    }
    let name = "stats_collector_push_samples_dropped_total";
    t.family(name, "counter", "Samples dropped, by reason.");
    for d in view.pushes() {
        for (reason, n) in d.counters.dropped() {
            let labels = [
                ("output", d.output),
                ("url", d.url_text.as_str()),
                ("reason", reason),
            ];
            t.sample(name, &labels, n as f64);
        }
    }
}

/// Health as JSON: datagram loss and invalid datagrams over the last
/// [`HEALTH_WINDOW`](crate::HEALTH_WINDOW) ticks against their limits (1% degraded, 10%
/// unhealthy; fewer than 100 datagrams are too few to judge), and
/// whether it is unhealthy.
pub fn render_health(view: &View) -> (String, bool) {
    let (now, then) = view.health_counts();
    // Saturating: a late datagram takes a loss back.
    let lost = now.lost.saturating_sub(then.lost);
    let received = now.received.saturating_sub(then.received);
    let invalid = now.invalid.saturating_sub(then.invalid);
    let valid = now.valid.saturating_sub(then.valid);
    let rate = |part: u64, whole: u64| {
        if whole < HEALTH_MIN_DATAGRAMS {
            0.0
        } else {
            part as f64 / whole as f64
        }
    };
    let checks = [
        Check::judge("loss_rate", rate(lost, lost + received), LOSS_LIMITS),
        Check::judge(
            "invalid_rate",
            rate(invalid, invalid + valid),
            INVALID_LIMITS,
        ),
    ];
    let status = Status::worst(&checks);
    let json = serde_json::to_string(&CollectorHealth {
        status,
        checks: &checks,
    });
    (json.unwrap_or_default(), status == Status::Unhealthy)
}

#[cfg(test)]
mod tests {

    use crate::collector::Collector;
    use crate::health::HEALTH_WINDOW;
    use crate::outputs::prometheus;
    use crate::shared::Limits;

    use crate::view::View;
    use stats_core::Kind;

    use crate::test_support::Sender;

    #[test]
    fn health_judges_a_recent_window_and_not_too_few_datagrams() {
        let mut s = Sender::new(8);
        let k = s.key("k", &[]);
        let mut c = Collector::new(Limits::default());
        let status = |c: &Collector| {
            let (json, unhealthy) = prometheus::render_health(&View::of(c));
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
    fn series_that_sanitise_to_one_name_render_as_one_sample_set() {
        let mut c = Collector::new(Limits::default());
        c.ingest(
            b"db.query:1|ms|#table:orders\ndb/query:2|ms|#table:orders\nhits.a:1|c\nhits/a:2|c",
        );
        c.ingest(b"q.depth:5|g\nq/depth:3|g");
        c.ingest(b"q.depth:4|g");
        let text = prometheus::render_metrics(&View::of(&c));
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
        let text = prometheus::render_metrics(&View::of(&c));
        assert!(
            text.contains("# TYPE http_requests_total counter"),
            "{text}"
        );
        assert!(
            text.contains(
                "http_requests_total{tag_le=\"y\",tag_quantile=\"x\",route=\"/a\\\"b\"} 3"
            ),
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
        assert!(
            text.contains("stats_collector_sender_datagrams_total{sender=\"00000000000000ab\"} 1")
        );
        let (health, unhealthy) = prometheus::render_health(&View::of(&c));
        assert!(health.starts_with("{\"status\":\"healthy\""), "{health}");
        assert!(!unhealthy);
    }
}
