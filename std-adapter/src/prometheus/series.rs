//! The application's own series, aggregated at the source, as Prometheus
//! families: names and units from their descriptions, `_total`, `le`
//! histograms, tags as labels.

use crate::describe::Description;
use crate::shared::Shared;
use stats_core::prometheus::{
    DefaultBounds, Exponential, Families, Sink, Text, export_scale, family_type, labels,
    write_classic,
};
use stats_core::{Kind, SeriesId, Totals};
use std::collections::BTreeMap;

/// One label set's totals in a family (series that sanitise to one name
/// and label set are merged, as the collector merges them).
enum Merged {
    /// A counter's sum, or a gauge's value (the later series').
    Value(f64),
    /// A distribution: count, sum, and buckets as (shift, id, count).
    Distribution(u64, f64, Vec<(u32, u16, u64)>),
}

/// A series in a family: its name as recorded, its labels, the series
/// and its totals.
type Member = (String, Vec<(String, String)>, SeriesId, Totals);

/// What a family has no description for says.
fn default_help(kind: Kind) -> &'static str {
    match kind {
        Kind::Counter => "Total of the counter since the process started.",
        Kind::Gauge => "The gauge's value.",
        Kind::Timer => "Timer values since the process started, in seconds.",
        Kind::Histogram => "Histogram values since the process started.",
    }
}

/// The name a series' family is made from: with a described unit at its
/// end (unless it ends so already, or is a timer's `seconds`).
fn named(name: &str, kind: Kind, description: Option<&Description>) -> String {
    match description.and_then(|d| d.unit.as_deref()) {
        Some(unit) if !(name.ends_with(unit) || kind == Kind::Timer && unit == "seconds") => {
            format!("{name}_{unit}")
        }
        _ => name.to_string(),
    }
}

/// The application's series (aggregated at the source) as families into
/// `t`; nothing with events (`aggregation = "off"`), whose values leave
/// one by one.
pub(crate) fn series(shared: &Shared, t: &mut Text) {
    let Some(aggregation) = shared.aggregation() else {
        return;
    };
    let tables = &aggregation.tables;
    let descriptions = shared.descriptions.read();
    let mut families: Families<Member> = Families::new();
    {
        let keys = shared.keys.reader();
        for index in 0..tables.len() {
            let Some(series) = tables.series_at(index) else {
                continue;
            };
            let Some(snapshot) = tables.snapshot(series) else {
                continue;
            };
            let Some(key) = stats_core::Keys::key(&keys, snapshot.key) else {
                continue;
            };
            let name = named(key.name(), snapshot.kind, descriptions.get(key.name()));
            let member = (
                key.name().to_string(),
                labels(key.tags()),
                series,
                snapshot.value,
            );
            families.add(&name, snapshot.kind, member);
        }
    }
    let mut defaults = DefaultBounds::new();
    for (family, kind, members) in families.into_families() {
        let help = (members.first())
            .and_then(|m| descriptions.get(&m.0))
            .map_or(default_help(kind), |d| d.help.as_str());
        t.family(&family, family_type(kind), help);
        let mut sets: BTreeMap<Vec<(String, String)>, Merged> = BTreeMap::new();
        for (_, labels, series, totals) in members {
            let merged = sets.entry(labels).or_insert(match totals {
                Totals::Distribution { .. } => Merged::Distribution(0, 0.0, Vec::new()),
                Totals::Counter { .. } | Totals::Gauge { .. } => Merged::Value(0.0),
            });
            match (merged, totals) {
                (Merged::Value(v), Totals::Counter { sum, .. }) => *v += sum as f64,
                (Merged::Value(v), Totals::Gauge { value }) => *v = value,
                (Merged::Distribution(n, s, b), Totals::Distribution { count, sum, .. }) => {
                    *n += count;
                    *s += sum;
                    b.extend(tables.buckets(series, 0).map(|(id, c)| (0, id, c)));
                }
                _ => {}
            }
        }
        let bounds = defaults.of(kind, || {
            (sets.values())
                .filter_map(|m| match m {
                    Merged::Distribution(_, _, b) => Some(Exponential::of(b.iter().copied())),
                    Merged::Value(_) => None,
                })
                .collect()
        });
        let scale = export_scale(kind);
        for (labels, merged) in &sets {
            let labels: Vec<(&str, &str)> = labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            match merged {
                Merged::Value(v) => t.sample(&family, &labels, *v),
                Merged::Distribution(count, sum, buckets) => {
                    let buckets = buckets.iter().copied();
                    write_classic(t, &family, &labels, &bounds, buckets, *count, sum * scale);
                }
            }
        }
    }
}
