//! The OpenTelemetry output: OTLP/HTTP with protobuf bodies (`POST
//! /v1/metrics`, an `ExportMetricsServiceRequest`). Counters are monotonic
//! cumulative sums, gauges are gauges, timers (in seconds, unit `s`) and
//! histograms are cumulative exponential histograms: the recording
//! scheme's buckets as they are (scale 4, or coarser where a sender merged
//! buckets; OpenTelemetry's scale N has the boundaries of Prometheus's
//! schema N), with the zero bucket and both signs, so every value's count
//! is in the bucket that holds it, and count, sum, min and max are exact.
//! Series keep their
//! names as sent (`http.requests`), tags become data point attributes, and
//! the settings' labels become resource attributes beside `service.name`.
//!
//! The messages are those of `opentelemetry/proto/metrics/v1` and
//! `collector/metrics/v1`, declared here with prost's derive (the fields a
//! sender fills; an OTLP decoder reads them as the generated code does),
//! so the build needs no `protoc`.

use crate::aggregation::{Aggregate, Distribution, Series};
use crate::outputs::push::{Batch, Protocol};
use crate::view::View;
use bytes::Bytes;
use prost::Message;
use stats_core::Kind;
use stats_core::aggregate::ZERO_THRESHOLD;
use stats_core::prometheus::export_scale;
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
    #[prost(oneof = "Data", tags = "5, 7, 10")]
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
    /// Timers and histograms: a cumulative exponential histogram.
    #[prost(message, tag = "10")]
    ExponentialHistogram(ExponentialHistogram),
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

/// `ExponentialHistogram`.
#[derive(Clone, PartialEq, Message)]
pub struct ExponentialHistogram {
    /// One point per series.
    #[prost(message, repeated, tag = "1")]
    pub data_points: Vec<ExponentialHistogramDataPoint>,
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

/// `ExponentialHistogramDataPoint`.
#[derive(Clone, PartialEq, Message)]
pub struct ExponentialHistogramDataPoint {
    /// The series' tags.
    #[prost(message, repeated, tag = "1")]
    pub attributes: Vec<KeyValue>,
    /// When the totals started (the collector's start), Unix nanoseconds.
    #[prost(fixed64, tag = "2")]
    pub start_time_unix_nano: u64,
    /// When they were read, Unix nanoseconds.
    #[prost(fixed64, tag = "3")]
    pub time_unix_nano: u64,
    /// Values: the buckets' counts, the zero count, and values the sender
    /// counted without a bucket.
    #[prost(fixed64, tag = "4")]
    pub count: u64,
    /// Their sum.
    #[prost(double, optional, tag = "5")]
    pub sum: Option<f64>,
    /// Boundaries at powers of `2^(2^-scale)`.
    #[prost(sint32, tag = "6")]
    pub scale: i32,
    /// Values in the zero bucket, `[-zero_threshold, zero_threshold]`.
    #[prost(fixed64, tag = "7")]
    pub zero_count: u64,
    /// Positive buckets.
    #[prost(message, optional, tag = "8")]
    pub positive: Option<Buckets>,
    /// Negative buckets, by magnitude.
    #[prost(message, optional, tag = "9")]
    pub negative: Option<Buckets>,
    /// The smallest value.
    #[prost(double, optional, tag = "12")]
    pub min: Option<f64>,
    /// The largest value.
    #[prost(double, optional, tag = "13")]
    pub max: Option<f64>,
    /// The zero bucket's breadth.
    #[prost(double, tag = "14")]
    pub zero_threshold: f64,
}

/// Consecutive buckets of one sign: `bucket_counts[i]` counts the values
/// (magnitudes) in `(base^(offset + i), base^(offset + i + 1)]`.
#[derive(Clone, PartialEq, Message)]
pub struct Buckets {
    /// The first bucket's index.
    #[prost(sint32, tag = "1")]
    pub offset: i32,
    /// Each bucket's count.
    #[prost(uint64, repeated, tag = "2")]
    pub bucket_counts: Vec<u64>,
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

/// Buckets of one sign, dense from the lowest index to the highest.
fn dense(buckets: &[(i32, u64)]) -> Option<Buckets> {
    let (&(offset, _), &(last, _)) = (buckets.first()?, buckets.last()?);
    let mut bucket_counts = vec![0; (last - offset + 1) as usize];
    for &(index, count) in buckets {
        bucket_counts[(index - offset) as usize] = count;
    }
    Some(Buckets {
        offset,
        bucket_counts,
    })
}

/// A distribution's exponential histogram point, its sum and extremes
/// times `scale`.
fn exponential_point(
    d: &Distribution,
    scale: f64,
    point: ExponentialHistogramDataPoint,
) -> ExponentialHistogramDataPoint {
    let e = d.exponential();
    let extremes = d.count > 0;
    ExponentialHistogramDataPoint {
        count: d.count,
        sum: Some(d.sum * scale),
        scale: e.scale,
        zero_count: e.zero_count,
        positive: dense(&e.positive),
        negative: dense(&e.negative),
        min: extremes.then_some(d.min * scale),
        max: extremes.then_some(d.max * scale),
        zero_threshold: ZERO_THRESHOLD,
        ..point
    }
}

/// Every series as OTLP requests of at most
/// [`MAX_POINTS_PER_REQUEST`] data points, at `now_ns`, cumulative
/// since `start_ns`, with `labels` as resource attributes.
pub fn requests(
    view: &View,
    labels: &BTreeMap<String, String>,
    start_ns: u64,
    now_ns: u64,
) -> Vec<Batch> {
    // Metrics by name; a name used by two kinds gets the kind.
    let mut metrics: BTreeMap<(String, u8), Vec<&Series>> = BTreeMap::new();
    let mut kinds: BTreeMap<&str, Kind> = BTreeMap::new();
    for s in view.series() {
        let first = *kinds.entry(s.name.as_str()).or_insert(s.kind);
        let name = if first == s.kind {
            s.name.clone()
        } else {
            format!("{}.{}", s.name, s.kind.as_str())
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
                Data::ExponentialHistogram(ExponentialHistogram {
                    data_points: members
                        .iter()
                        .filter_map(|s| match s.aggregate() {
                            Aggregate::Distribution(d) => Some(exponential_point(
                                &d,
                                scale,
                                ExponentialHistogramDataPoint {
                                    attributes: attributes(s),
                                    start_time_unix_nano: start_ns,
                                    time_unix_nano: now_ns,
                                    ..ExponentialHistogramDataPoint::default()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::Collector;
    use crate::shared::Limits;

    #[test]
    fn counters_gauges_and_distributions_as_otlp_kinds() {
        let mut c = Collector::new(Limits::default());
        c.ingest(b"http.requests:3|c|#route:/a\nqueue.depth:7|g\nwork:2|ms\nwork:4|ms\nsize:-5|h");
        let labels = [("collector".to_string(), "a".to_string())].into();
        let batches = requests(&View::of(&c), &labels, 1, 2);
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
        let Some(Data::ExponentialHistogram(h)) = work.data else {
            panic!("an exponential histogram");
        };
        let p = &h.data_points[0];
        assert_eq!((p.count, p.min, p.max), (2, Some(0.002), Some(0.004)));
        assert!((p.sum.unwrap() - 0.006).abs() < 1e-12);
        assert_eq!((p.scale, p.zero_count), (4, 0));
        // Each value in the bucket (base^i, base^(i+1)] that holds it, in
        // seconds: 2 ms and 4 ms, 16 buckets apart.
        let base = 2f64.powf(1.0 / 16.0);
        let positive = p.positive.as_ref().unwrap();
        let i = positive.offset;
        assert!(base.powi(i) < 0.002 && 0.002 <= base.powi(i + 1));
        assert_eq!(positive.bucket_counts.len(), 17);
        assert_eq!(positive.bucket_counts[0], 1);
        assert_eq!(positive.bucket_counts[16], 1);
        assert_eq!(p.negative, None);
        let Some(Data::ExponentialHistogram(h)) = metric("size").data else {
            panic!("an exponential histogram");
        };
        let p = &h.data_points[0];
        let negative = p.negative.as_ref().unwrap();
        assert_eq!(negative.bucket_counts, [1]);
        let i = negative.offset;
        assert!(base.powi(i) < 5.0 && 5.0 <= base.powi(i + 1) * (1.0 + 1e-15));
    }
}
