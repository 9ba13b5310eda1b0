//! The OpenTelemetry output: OTLP/HTTP with protobuf bodies (`POST
//! /v1/metrics`, an `ExportMetricsServiceRequest`). Counters are monotonic
//! cumulative sums, gauges are gauges, timers (in seconds, unit `s`) and
//! histograms are cumulative histograms with explicit bounds: each
//! non-empty bucket of the collector's log-linear distribution becomes one
//! bound at its upper edge, so count, sum, min and max are exact and a
//! value's bucket is within the distribution's 3.1%. Series keep their
//! names as sent (`http.requests`), tags become data point attributes, and
//! the settings' labels become resource attributes beside `service.name`.
//!
//! The messages are those of `opentelemetry/proto/metrics/v1` and
//! `collector/metrics/v1`, declared here with prost's derive (the fields a
//! sender fills; an OTLP decoder reads them as the generated code does),
//! so the build needs no `protoc`.

use crate::aggregation::{Aggregate, Distribution, Series};
use crate::collector::Collector;
use crate::prometheus::{export_scale, kind_name};
use crate::push::{Batch, Protocol};
use bytes::Bytes;
use prost::Message;
use stats_core::Kind;
use stats_core::aggregate::bucket_range;
use std::collections::BTreeMap;

/// `ExportMetricsServiceRequest`.
#[derive(Clone, PartialEq, Message)]
pub struct ExportMetricsServiceRequest {
    /// By resource.
    #[prost(message, repeated, tag = "1")]
    pub resource_metrics: Vec<ResourceMetrics>,
}

/// `ResourceMetrics`.
#[derive(Clone, PartialEq, Message)]
pub struct ResourceMetrics {
    /// The resource.
    #[prost(message, optional, tag = "1")]
    pub resource: Option<Resource>,
    /// By instrumentation scope.
    #[prost(message, repeated, tag = "2")]
    pub scope_metrics: Vec<ScopeMetrics>,
}

/// `Resource`.
#[derive(Clone, PartialEq, Message)]
pub struct Resource {
    /// Its attributes.
    #[prost(message, repeated, tag = "1")]
    pub attributes: Vec<KeyValue>,
}

/// `ScopeMetrics`.
#[derive(Clone, PartialEq, Message)]
pub struct ScopeMetrics {
    /// The scope.
    #[prost(message, optional, tag = "1")]
    pub scope: Option<InstrumentationScope>,
    /// The metrics.
    #[prost(message, repeated, tag = "2")]
    pub metrics: Vec<Metric>,
}

/// `InstrumentationScope`.
#[derive(Clone, PartialEq, Message)]
pub struct InstrumentationScope {
    /// Its name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Its version.
    #[prost(string, tag = "2")]
    pub version: String,
}

/// `Metric`.
#[derive(Clone, PartialEq, Message)]
pub struct Metric {
    /// Its name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Its description.
    #[prost(string, tag = "2")]
    pub description: String,
    /// Its unit.
    #[prost(string, tag = "3")]
    pub unit: String,
    /// Its points.
    #[prost(oneof = "Data", tags = "5, 7, 9")]
    pub data: Option<Data>,
}

/// `Metric.data`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Data {
    /// A gauge.
    #[prost(message, tag = "5")]
    Gauge(Gauge),
    /// A sum.
    #[prost(message, tag = "7")]
    Sum(Sum),
    /// A histogram.
    #[prost(message, tag = "9")]
    Histogram(Histogram),
}

/// `Gauge`.
#[derive(Clone, PartialEq, Message)]
pub struct Gauge {
    /// Its points.
    #[prost(message, repeated, tag = "1")]
    pub data_points: Vec<NumberDataPoint>,
}

/// `Sum`.
#[derive(Clone, PartialEq, Message)]
pub struct Sum {
    /// Its points.
    #[prost(message, repeated, tag = "1")]
    pub data_points: Vec<NumberDataPoint>,
    /// [`CUMULATIVE`].
    #[prost(int32, tag = "2")]
    pub aggregation_temporality: i32,
    /// Whether it only grows.
    #[prost(bool, tag = "3")]
    pub is_monotonic: bool,
}

/// `Histogram`.
#[derive(Clone, PartialEq, Message)]
pub struct Histogram {
    /// Its points.
    #[prost(message, repeated, tag = "1")]
    pub data_points: Vec<HistogramDataPoint>,
    /// [`CUMULATIVE`].
    #[prost(int32, tag = "2")]
    pub aggregation_temporality: i32,
}

/// `AGGREGATION_TEMPORALITY_CUMULATIVE`.
pub const CUMULATIVE: i32 = 2;

/// `NumberDataPoint`.
#[derive(Clone, PartialEq, Message)]
pub struct NumberDataPoint {
    /// Its attributes.
    #[prost(message, repeated, tag = "7")]
    pub attributes: Vec<KeyValue>,
    /// Since when (cumulative sums).
    #[prost(fixed64, tag = "2")]
    pub start_time_unix_nano: u64,
    /// When.
    #[prost(fixed64, tag = "3")]
    pub time_unix_nano: u64,
    /// The value.
    #[prost(double, optional, tag = "4")]
    pub as_double: Option<f64>,
}

/// `HistogramDataPoint`.
#[derive(Clone, PartialEq, Message)]
pub struct HistogramDataPoint {
    /// Its attributes.
    #[prost(message, repeated, tag = "9")]
    pub attributes: Vec<KeyValue>,
    /// Since when.
    #[prost(fixed64, tag = "2")]
    pub start_time_unix_nano: u64,
    /// When.
    #[prost(fixed64, tag = "3")]
    pub time_unix_nano: u64,
    /// Values in it.
    #[prost(fixed64, tag = "4")]
    pub count: u64,
    /// Their sum.
    #[prost(double, optional, tag = "5")]
    pub sum: Option<f64>,
    /// Counts per bucket: one more than bounds.
    #[prost(fixed64, repeated, tag = "6")]
    pub bucket_counts: Vec<u64>,
    /// Upper bounds, ascending.
    #[prost(double, repeated, tag = "7")]
    pub explicit_bounds: Vec<f64>,
    /// The smallest.
    #[prost(double, optional, tag = "11")]
    pub min: Option<f64>,
    /// The largest.
    #[prost(double, optional, tag = "12")]
    pub max: Option<f64>,
}

/// `KeyValue` with a string value.
#[derive(Clone, PartialEq, Message)]
pub struct KeyValue {
    /// The key.
    #[prost(string, tag = "1")]
    pub key: String,
    /// The value.
    #[prost(message, optional, tag = "2")]
    pub value: Option<AnyValue>,
}

/// `AnyValue` (strings only are sent).
#[derive(Clone, PartialEq, Message)]
pub struct AnyValue {
    /// The string.
    #[prost(string, optional, tag = "1")]
    pub string_value: Option<String>,
}

fn attribute(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            string_value: Some(value.to_string()),
        }),
    }
}

/// A series' tags as attributes.
fn attributes(s: &Series) -> Vec<KeyValue> {
    s.tags.iter().map(|(k, v)| attribute(k, v)).collect()
}

/// OTLP/HTTP with protobuf: its headers; the answers its specification
/// calls retryable (429, 502, 503, 504) are retried, and no other.
pub(crate) const PROTOCOL: Protocol = Protocol {
    output: "otlp",
    headers: HEADERS,
    retryable: |status| matches!(status, 429 | 502 | 503 | 504),
};

/// The headers OTLP/HTTP with protobuf asks for.
const HEADERS: &[(&str, &str)] = &[
    ("content-type", "application/x-protobuf"),
    (
        "user-agent",
        concat!("stats-collector/", env!("CARGO_PKG_VERSION")),
    ),
];

/// Data points in one request at most.
pub const MAX_POINTS_PER_REQUEST: usize = 2_000;

/// A distribution's explicit-bounds histogram point.
fn histogram_point(d: &Distribution, scale: f64, point: HistogramDataPoint) -> HistogramDataPoint {
    let mut points: Vec<(f64, u64)> = d
        .buckets()
        .map(|(shift, id, count)| {
            let (low, high, negative) = bucket_range(id, u32::from(shift));
            // Values of a positive bucket are below `high`; of a negative
            // one, at or below `-low`.
            (if negative { -low } else { high } * scale, count)
        })
        .collect();
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut bounds: Vec<f64> = Vec::with_capacity(points.len());
    let mut counts: Vec<u64> = Vec::with_capacity(points.len() + 1);
    for (bound, count) in points {
        // Buckets sent at two shifts can end at one bound: one bucket.
        match (bounds.last(), counts.last_mut()) {
            (Some(&last), Some(c)) if last == bound => *c += count,
            _ => {
                bounds.push(bound);
                counts.push(count);
            }
        }
    }
    counts.push(0);
    let extremes = d.count > 0;
    HistogramDataPoint {
        count: d.count,
        sum: Some(d.sum * scale),
        bucket_counts: counts,
        explicit_bounds: bounds,
        min: extremes.then_some(d.min * scale),
        max: extremes.then_some(d.max * scale),
        ..point
    }
}

impl Collector {
    /// Every series as OTLP requests of at most
    /// [`MAX_POINTS_PER_REQUEST`] data points, at `now_ns`, cumulative
    /// since `start_ns`, with `labels` as resource attributes.
    pub(crate) fn otlp_requests(
        &self,
        labels: &BTreeMap<String, String>,
        start_ns: u64,
        now_ns: u64,
    ) -> Vec<Batch> {
        // Metrics by name; a name used by two kinds gets the kind.
        let mut metrics: BTreeMap<(String, u8), Vec<&Series>> = BTreeMap::new();
        let mut kinds: BTreeMap<&str, Kind> = BTreeMap::new();
        for s in self.series() {
            let first = *kinds.entry(s.name.as_str()).or_insert(s.kind);
            let name = if first == s.kind {
                s.name.clone()
            } else {
                format!("{}.{}", s.name, kind_name(s.kind))
            };
            metrics.entry((name, s.kind as u8)).or_default().push(s);
        }
        let mut resource = vec![attribute("service.name", "stats-collector")];
        resource.extend(labels.iter().map(|(k, v)| attribute(k, v)));
        let mut out = Vec::new();
        let mut current: Vec<Metric> = Vec::new();
        let mut points = 0;
        let cut = |current: &mut Vec<Metric>, points: &mut usize, out: &mut Vec<Batch>| {
            if current.is_empty() {
                return;
            }
            let request = ExportMetricsServiceRequest {
                resource_metrics: vec![ResourceMetrics {
                    resource: Some(Resource {
                        attributes: resource.clone(),
                    }),
                    scope_metrics: vec![ScopeMetrics {
                        scope: Some(InstrumentationScope {
                            name: "stats-collector".into(),
                            version: env!("CARGO_PKG_VERSION").into(),
                        }),
                        metrics: std::mem::take(current),
                    }],
                }],
            };
            out.push(Batch {
                body: Bytes::from(request.encode_to_vec()),
                samples: *points as u64,
            });
            *points = 0;
        };
        for ((name, _), members) in metrics {
            let kind = members[0].kind;
            let number = |s: &Series, value: f64| NumberDataPoint {
                attributes: attributes(s),
                start_time_unix_nano: start_ns,
                time_unix_nano: now_ns,
                as_double: Some(value),
            };
            let value = |s: &Series| match s.aggregate() {
                Aggregate::Counter(v) | Aggregate::Gauge(v) => v,
                Aggregate::Distribution(d) => d.count as f64,
            };
            let data = match kind {
                Kind::Counter => Data::Sum(Sum {
                    data_points: members.iter().map(|s| number(s, value(s))).collect(),
                    aggregation_temporality: CUMULATIVE,
                    is_monotonic: true,
                }),
                Kind::Gauge => Data::Gauge(Gauge {
                    data_points: members.iter().map(|s| number(s, value(s))).collect(),
                }),
                Kind::Timer | Kind::Histogram => {
                    let scale = export_scale(kind);
                    Data::Histogram(Histogram {
                        data_points: members
                            .iter()
                            .filter_map(|s| match s.aggregate() {
                                Aggregate::Distribution(d) => Some(histogram_point(
                                    &d,
                                    scale,
                                    HistogramDataPoint {
                                        attributes: attributes(s),
                                        start_time_unix_nano: start_ns,
                                        time_unix_nano: now_ns,
                                        ..HistogramDataPoint::default()
                                    },
                                )),
                                _ => None,
                            })
                            .collect(),
                        aggregation_temporality: CUMULATIVE,
                    })
                }
            };
            points += members.len();
            current.push(Metric {
                name,
                description: String::new(),
                unit: if kind == Kind::Timer {
                    "s".into()
                } else {
                    String::new()
                },
                data: Some(data),
            });
            if points >= MAX_POINTS_PER_REQUEST {
                cut(&mut current, &mut points, &mut out);
            }
        }
        cut(&mut current, &mut points, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::Limits;

    #[test]
    fn counters_gauges_and_distributions_as_otlp_kinds() {
        let mut c = Collector::new(Limits::default());
        c.ingest(b"http.requests:3|c|#route:/a\nqueue.depth:7|g\nwork:2|ms\nwork:4|ms\nsize:-5|h");
        let labels = [("collector".to_string(), "a".to_string())].into();
        let batches = c.otlp_requests(&labels, 1, 2);
        assert_eq!(batches.len(), 1);
        let r = ExportMetricsServiceRequest::decode(batches[0].body.clone()).unwrap();
        let rm = &r.resource_metrics[0];
        let attrs = &rm.resource.as_ref().unwrap().attributes;
        assert!(attrs.contains(&attribute("collector", "a")));
        assert!(attrs.contains(&attribute("service.name", "stats-collector")));
        let metric = |name: &str| {
            rm.scope_metrics[0]
                .metrics
                .iter()
                .find(|m| m.name == name)
                .unwrap_or_else(|| panic!("{name}"))
                .clone()
        };
        let Some(Data::Sum(sum)) = metric("http.requests").data else {
            panic!("a sum");
        };
        assert!(sum.is_monotonic);
        assert_eq!(sum.aggregation_temporality, CUMULATIVE);
        assert_eq!(sum.data_points[0].as_double, Some(3.0));
        assert_eq!(sum.data_points[0].attributes, [attribute("route", "/a")]);
        assert_eq!(sum.data_points[0].start_time_unix_nano, 1);
        let Some(Data::Gauge(gauge)) = metric("queue.depth").data else {
            panic!("a gauge");
        };
        assert_eq!(gauge.data_points[0].as_double, Some(7.0));
        let work = metric("work");
        assert_eq!(work.unit, "s");
        let Some(Data::Histogram(h)) = work.data else {
            panic!("a histogram");
        };
        let p = &h.data_points[0];
        assert_eq!((p.count, p.min, p.max), (2, Some(0.002), Some(0.004)));
        assert!((p.sum.unwrap() - 0.006).abs() < 1e-12);
        assert_eq!(p.bucket_counts.len(), p.explicit_bounds.len() + 1);
        assert_eq!(p.bucket_counts.iter().sum::<u64>(), 2);
        // Each value lies in its bucket: 2 ms at or below the first bound,
        // above none before it; 4 ms in the second.
        assert!(p.explicit_bounds[0] >= 0.002 && p.explicit_bounds[0] < 0.002 * 1.07);
        assert!(p.explicit_bounds[1] >= 0.004 && p.explicit_bounds[1] < 0.004 * 1.07);
        let Some(Data::Histogram(h)) = metric("size").data else {
            panic!("a histogram");
        };
        let p = &h.data_points[0];
        assert!(p.explicit_bounds[0] >= -5.0 && p.explicit_bounds[0] < -5.0 * 0.93);
        assert_eq!(p.bucket_counts, [1, 0]);
    }
}
