//! StatsD and DogStatsD lines taken in: each line's series found by the
//! line's own key text, its values read once, and sets, events and
//! service checks as their own.

use crate::aggregation::GaugeCell;
use crate::collector::Collector;
use crate::shared::Shared;
use rustc_hash::{FxHashMap, FxHashSet};
use stats_core::Kind;
use stats_core::wire::statsd::{self, MetricType, Parsed, ParsedLine};
use std::sync::Arc;

/// The series a DogStatsD service check's status goes into, a gauge
/// tagged with the check's name (`check`) and its tags.
pub const SERVICE_CHECK: &str = "service_check.status";

/// A StatsD counter line with a negative value, refused: the counters go
/// out as monotonic totals.
pub const NEGATIVE_COUNTER: &str = "statsd_negative_counter";

/// A line's values, read once: the first, how many, and whether every
/// one read as a finite number and any is below zero.
struct Values {
    first: f64,
    count: usize,
    all_read: bool,
    negative: bool,
}

impl Values {
    fn of(line: &ParsedLine<'_>) -> Values {
        let mut v = Values {
            first: 0.0,
            count: 0,
            all_read: true,
            negative: false,
        };
        for value in line.numbers() {
            match value {
                Some(x) => {
                    if v.count == 0 {
                        v.first = x;
                    }
                    v.count += 1;
                    v.negative |= x < 0.0;
                }
                None => v.all_read = false,
            }
        }
        v
    }
}

impl Collector {
    /// StatsD lines: counters (scaled by their sample rate), gauges (`+N` /
    /// `-N` move them), timers (milliseconds, kept as nanoseconds like the
    /// pipeline's), histograms and distributions, sets (distinct members
    /// per export interval, a gauge: [`crate::sets`]); DogStatsD events
    /// (counted by alert type) and service checks (a gauge
    /// `service_check.status` of the status, 0 to 3, tagged with the
    /// check's name as `check` and its tags). Bad lines are counted by
    /// kind and skipped.
    pub(crate) fn ingest_statsd(&mut self, bytes: &[u8]) {
        let mut events = 0;
        let mut others = 0;
        for line in statsd::parse(bytes) {
            let line = match line {
                Ok(Parsed::Metric(l)) => l,
                Ok(Parsed::Event(e)) => {
                    let alert = match e.alert_type {
                        "error" => "error",
                        "warning" => "warning",
                        "success" => "success",
                        _ => "info",
                    };
                    *self.statsd_events.entry(alert).or_default() += 1;
                    others += 1;
                    continue;
                }
                Ok(Parsed::ServiceCheck(c)) => {
                    let mut tags: Vec<(&str, &str)> = vec![("check", c.name)];
                    tags.extend(statsd::tag_pairs(c.tags).filter(|t| t.0 != "check"));
                    let series = self.series_for(SERVICE_CHECK, &tags, Kind::Gauge);
                    let status = f64::from(c.status as u8);
                    self.aggregate(series, Kind::Gauge, status, false, 1.0);
                    self.totals.statsd_service_checks += 1;
                    others += 1;
                    continue;
                }
                Err(e) => {
                    *self.invalid_lines.entry(e.kind()).or_default() += 1;
                    continue;
                }
            };
            let (kind, scale) = match line.metric_type {
                MetricType::Counter => (Kind::Counter, 1.0),
                MetricType::Gauge => (Kind::Gauge, 1.0),
                MetricType::Timer => (Kind::Timer, 1e6),
                MetricType::Histogram | MetricType::Distribution => (Kind::Histogram, 1.0),
                MetricType::Set => {
                    let series = self.line_series(&line, Kind::Gauge);
                    if self
                        .series
                        .get(series)
                        .is_some_and(|s| s.kind == Kind::Gauge)
                    {
                        self.sets.add(series, line.value, &self.shared.memory);
                    } else {
                        self.totals.overflowed_events += 1;
                    }
                    events += 1;
                    continue;
                }
            };
            // DogStatsD 1.1 sends several values in a line: all or none.
            let several = kind != Kind::Counter && kind != Kind::Gauge;
            let values = Values::of(&line);
            if !values.all_read || (!several && values.count > 1) {
                *self.invalid_lines.entry("statsd_bad_value").or_default() += 1;
                continue;
            }
            // Counters are exported as totals that only go up (Prometheus
            // `_total`, OTLP monotonic sums): a decrement is refused and
            // counted, never taken off a total.
            if kind == Kind::Counter && values.negative {
                *self.invalid_lines.entry(NEGATIVE_COUNTER).or_default() += 1;
                continue;
            }
            let series = self.line_series(&line, kind);
            let (relative, weight) = (line.is_change(), 1.0 / line.sample_rate);
            if values.count == 1 {
                self.aggregate(series, kind, values.first * scale, relative, weight);
            } else {
                for value in line.numbers().flatten() {
                    self.aggregate(series, kind, value * scale, relative, weight);
                }
            }
            events += values.count as u64;
        }
        if events + others > 0 {
            self.totals.datagrams += 1;
            self.totals.statsd_datagrams += 1;
            self.totals.bytes += bytes.len() as u64;
            self.totals.events += events;
        } else {
            *self.invalid.entry("statsd_no_valid_line").or_default() += 1;
        }
    }

    /// The series of a line of `kind`: by its key text as sent
    /// ([`KeyTexts`](crate::key_texts::KeyTexts)) when that came before, else found or made by its canonical key (and its key text
    /// remembered). `usize::MAX` (no series: the overflow) when it has
    /// more tags than a key holds or no series can be made.
    fn line_series(&mut self, line: &ParsedLine<'_>, kind: Kind) -> usize {
        if let Some(at) = self.key_texts.find_line(kind, line.name, line.tags) {
            return at;
        }
        self.series_remembered(kind, line.name, line.tag_pairs())
    }

    /// Ends a StatsD set interval (the server calls it every export
    /// interval, before the exports): each set's gauge becomes the number
    /// of distinct members it received since the last call.
    pub fn close_sets(&mut self) {
        let mut closed = ClosedSets::default();
        self.closed_sets(&mut closed);
        closed.apply(&self.shared);
    }

    /// Ends this collector's StatsD set interval: each set's members into
    /// `closed`, with those other shards had.
    pub(crate) fn closed_sets(&mut self, closed: &mut ClosedSets) {
        for (at, members) in self.sets.close(&self.shared.memory) {
            if let Some(s) = self.series.get(at)
                && let Some(cell) = &s.gauge
            {
                let (_, all) =
                    (closed.0.entry(s.id)).or_insert_with(|| (cell.clone(), FxHashSet::default()));
                all.extend(members);
            }
        }
    }
}

/// The members each set received in an interval, by series id, from
/// every shard, and the set's gauge.
#[derive(Default)]
pub(crate) struct ClosedSets(FxHashMap<usize, (Arc<GaugeCell>, FxHashSet<u64>)>);

impl ClosedSets {
    /// Sets each set's gauge to its count of distinct members.
    pub(crate) fn apply(self, shared: &Shared) {
        let arrival = shared.arrival();
        for (cell, members) in self.0.into_values() {
            cell.apply(arrival, &[(members.len() as f64, false)], &shared.memory);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::aggregation::Aggregate;
    use crate::collector::Collector;
    use crate::outputs::prometheus;
    use crate::shared::Limits;

    use crate::test_support::find;
    use crate::view::View;
    use stats_core::Kind;

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
        let text = prometheus::render_metrics(&View::of(&c));
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
        let text = prometheus::render_metrics(&View::of(&c));
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
        let text = prometheus::render_metrics(&View::of(&c));
        assert!(
            text.contains(
                "stats_collector_invalid_datagrams_total{error=\"statsd_no_valid_line\"} 1"
            ),
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

    /// Counters go out as totals that only go up: a StatsD decrement is
    /// refused and counted, and the total stays what the increments made it.
    #[test]
    fn a_negative_statsd_counter_is_refused_not_taken_off_the_total() {
        let mut c = Collector::new(Limits::default());
        c.ingest(b"jobs:5|c\njobs:-2|c\njobs:1|c|@0.5");
        assert_eq!(find(&c, "jobs").aggregate(), Aggregate::Counter(7.0));
        assert_eq!(c.invalid_lines().get(super::NEGATIVE_COUNTER), Some(&1));
        assert!(prometheus::render_metrics(&View::of(&c)).contains("jobs_total 7"));
    }

    /// A line's key text finds its series: tags in another order are
    /// another key text for the same series, and both add to it.
    #[test]
    fn key_texts_find_their_series_whatever_the_tags_order() {
        let mut c = Collector::new(Limits::default());
        c.ingest(b"a:1|c|#x:1,y:2\na:2|c|#y:2,x:1\na:4|c|#x:1,y:2");
        assert_eq!(c.series().count(), 1);
        assert_eq!(find(&c, "a").aggregate(), Aggregate::Counter(7.0));
        assert_eq!(c.key_texts.len(), 2);
    }

    /// The key texts remembered are at most the series kept, and each is
    /// counted against the memory budget.
    #[test]
    fn key_texts_are_bounded_and_counted_against_the_budget() {
        let limits = Limits {
            max_series: 3,
            ..Limits::default()
        };
        let mut c = Collector::new(limits);
        let before = c.memory().tables();
        for i in 0..5 {
            for order in ["#k:1,j:2", "#j:2,k:1"] {
                c.ingest(format!("m{i}:1|c|{order}").as_bytes());
            }
        }
        assert_eq!(c.key_texts.len(), 3, "one key text a series, at most 3");
        let (kept, overflowed) = (c.series().filter(|s| s.name.starts_with('m')).count(), 4);
        assert_eq!(kept, 3);
        assert_eq!(c.totals().overflowed_events, overflowed);
        assert!(c.memory().tables() > before);
        // Every line counted: in its series or in the overflow.
        assert_eq!(c.totals().events, 10);
    }
}
