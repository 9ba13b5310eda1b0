//! The Prometheus remote write 1.0 output: every family `/metrics` serves,
//! as a snappy-compressed protobuf `WriteRequest` (the messages of
//! Prometheus's `prompb/types.proto` and `remote.proto`, declared here
//! with prost's derive rather than generated, so the build needs no
//! `protoc`), with the settings' labels on every series, in requests of at
//! most [`MAX_SAMPLES_PER_REQUEST`] samples. Distributions go as classic
//! `le` buckets or, with native histograms on
//! ([`Histograms::native`](crate::histograms::Histograms)), as Prometheus
//! native histograms: the recording scheme's exponential buckets as they
//! are (schema 4, or coarser where a sender merged buckets), the zero
//! bucket, both signs, exact counts and sum. Prometheus (with
//! `--web.enable-remote-write-receiver`), VictoriaMetrics, Mimir, Thanos
//! receive and Cortex all take it.

use crate::aggregation::Distribution;
use crate::outputs::prometheus::{Output, classic, write_families};
use crate::outputs::push::{Batch, Protocol};
use crate::view::View;
use bytes::Bytes;
use prost::Message;
use stats_core::aggregate::ZERO_THRESHOLD;
use stats_core::prometheus::{Bounds, Sink, spans_and_deltas};
use std::collections::BTreeMap;

/// A remote write request.
#[derive(Clone, PartialEq, Message)]
pub struct WriteRequest {
    /// The series.
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

/// One series: its labels (`__name__` among them, sorted by name) and its
/// samples.
#[derive(Clone, PartialEq, Message)]
pub struct TimeSeries {
    /// Sorted by name.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    /// Oldest first.
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
    /// Native histogram samples, oldest first.
    #[prost(message, repeated, tag = "4")]
    pub histograms: Vec<Histogram>,
}

/// A native histogram sample (integer counts). The format's `oneof`s of
/// integer and float counts are written as their integer member.
#[derive(Clone, PartialEq, Message)]
pub struct Histogram {
    /// Values observed.
    #[prost(uint64, optional, tag = "1")]
    pub count_int: Option<u64>,
    /// Their sum.
    #[prost(double, tag = "3")]
    pub sum: f64,
    /// The bucket schema: boundaries at powers of `2^(2^-schema)`.
    #[prost(sint32, tag = "4")]
    pub schema: i32,
    /// The zero bucket's breadth: it holds `[-zero_threshold, zero_threshold]`.
    #[prost(double, tag = "5")]
    pub zero_threshold: f64,
    /// Values in the zero bucket.
    #[prost(uint64, optional, tag = "6")]
    pub zero_count_int: Option<u64>,
    /// Runs of negative buckets (by magnitude).
    #[prost(message, repeated, tag = "8")]
    pub negative_spans: Vec<BucketSpan>,
    /// Each negative bucket's count less the one before (the first's less 0).
    #[prost(sint64, repeated, tag = "9")]
    pub negative_deltas: Vec<i64>,
    /// Runs of positive buckets.
    #[prost(message, repeated, tag = "11")]
    pub positive_spans: Vec<BucketSpan>,
    /// Each positive bucket's count less the one before (the first's less 0).
    #[prost(sint64, repeated, tag = "12")]
    pub positive_deltas: Vec<i64>,
    /// Milliseconds since the Unix epoch.
    #[prost(int64, tag = "15")]
    pub timestamp: i64,
}

/// A run of consecutive buckets.
#[derive(Clone, PartialEq, Message)]
pub struct BucketSpan {
    /// The first span's first bucket index; a later span's gap since the
    /// previous one's end.
    #[prost(sint32, tag = "1")]
    pub offset: i32,
    /// Buckets in the run.
    #[prost(uint32, tag = "2")]
    pub length: u32,
}

impl Histogram {
    /// `d` as a native histogram at its coarsest shift, its sum times
    /// `scale`, stamped `timestamp`.
    pub fn of(d: &Distribution, scale: f64, timestamp: i64) -> Histogram {
        let e = d.exponential();
        let spans = |s: Vec<(i32, u32)>| {
            s.into_iter()
                .map(|(offset, length)| BucketSpan { offset, length })
                .collect()
        };
        let (positive_spans, positive_deltas) = spans_and_deltas(&e.positive);
        let (negative_spans, negative_deltas) = spans_and_deltas(&e.negative);
        Histogram {
            count_int: Some(d.count),
            sum: d.sum * scale,
            schema: e.scale,
            zero_threshold: ZERO_THRESHOLD,
            zero_count_int: Some(e.zero_count),
            negative_spans: spans(negative_spans),
            negative_deltas,
            positive_spans: spans(positive_spans),
            positive_deltas,
            timestamp,
        }
    }
}

/// A label.
#[derive(Clone, PartialEq, Message)]
pub struct Label {
    /// Its name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Its value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// A sample.
#[derive(Clone, PartialEq, Message)]
pub struct Sample {
    /// The value.
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// Samples in one request at most (Prometheus's own sender sends 2,000).
pub const MAX_SAMPLES_PER_REQUEST: usize = 2_000;

/// Remote write 1.0: its headers; 429 and every 5xx are retried.
pub(crate) const PROTOCOL: Protocol = Protocol {
    output: "remote_write",
    headers: HEADERS,
    retryable: |status| status == 429 || (500..600).contains(&status),
};

/// The headers remote write 1.0 asks for.
const HEADERS: &[(&str, &str)] = &[
    ("content-type", "application/x-protobuf"),
    ("content-encoding", "snappy"),
    ("x-prometheus-remote-write-version", "0.1.0"),
    (
        "user-agent",
        concat!("stats-collector/", env!("CARGO_PKG_VERSION")),
    ),
];

/// Writes families as time series, cut into requests.
struct Requests<'a> {
    labels: &'a BTreeMap<String, String>,
    timestamp: i64,
    /// Distributions as native histograms.
    native: bool,
    current: Vec<TimeSeries>,
    done: Vec<Batch>,
}

impl Requests<'_> {
    fn cut(&mut self) {
        if self.current.is_empty() {
            return;
        }
        let request = WriteRequest {
            timeseries: std::mem::take(&mut self.current),
        };
        let samples = request.timeseries.len() as u64;
        let encoded = request.encode_to_vec();
        // Compressing into a vector sized for the worst case cannot fail.
        let body = snap::raw::Encoder::new()
            .compress_vec(&encoded)
            .unwrap_or_default();
        self.done.push(Batch {
            body: Bytes::from(body),
            samples,
        });
    }
}

impl Sink for Requests<'_> {
    fn family(&mut self, _name: &str, _kind: &str, _help: &str) {}

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        let sample = Sample {
            value,
            timestamp: self.timestamp,
        };
        self.push(name, labels, vec![sample], Vec::new());
    }
}

impl Output for Requests<'_> {
    fn distribution(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        d: &Distribution,
        bounds: &Bounds,
        scale: f64,
    ) {
        if self.native {
            let histogram = Histogram::of(d, scale, self.timestamp);
            self.push(name, labels, Vec::new(), vec![histogram]);
        } else {
            classic(self, name, labels, d, bounds, scale);
        }
    }
}

impl Requests<'_> {
    /// One series of `samples` or `histograms`, cutting a request when
    /// it is full.
    fn push(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        samples: Vec<Sample>,
        histograms: Vec<Histogram>,
    ) {
        let mut all: BTreeMap<&str, &str> = self
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        // A series' own label wins over the settings' one of its name.
        all.extend(labels.iter().copied());
        all.insert("__name__", name);
        self.current.push(TimeSeries {
            labels: all
                .into_iter()
                .map(|(name, value)| Label {
                    name: name.to_string(),
                    value: value.to_string(),
                })
                .collect(),
            samples,
            histograms,
        });
        if self.current.len() >= MAX_SAMPLES_PER_REQUEST {
            self.cut();
        }
    }
}

/// Every family `/metrics` serves as remote write requests (encoded and
/// compressed), stamped `timestamp_ms`, with `labels` on every series.
pub fn requests(view: &View, labels: &BTreeMap<String, String>, timestamp_ms: i64) -> Vec<Batch> {
    let mut requests = Requests {
        labels,
        timestamp: timestamp_ms,
        native: view.histograms().native,
        current: Vec::new(),
        done: Vec::new(),
    };
    write_families(view, &mut requests);
    requests.cut();
    requests.done
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::Collector;
    use crate::shared::Limits;

    #[test]
    fn requests_carry_every_sample_with_sorted_labels() {
        let mut c = Collector::new(Limits::default());
        c.ingest(b"jobs.done:3|c|#queue:mail,zone:b\nlevel:7|g\nlatency:2|ms");
        let labels: BTreeMap<String, String> = [
            ("collector".to_string(), "a".to_string()),
            ("zone".into(), "x".into()),
        ]
        .into();
        let batches = requests(&View::of(&c), &labels, 1_700_000_000_000);
        assert_eq!(batches.len(), 1);
        let raw = snap::raw::Decoder::new()
            .decompress_vec(&batches[0].body)
            .unwrap();
        let request = WriteRequest::decode(raw.as_slice()).unwrap();
        assert_eq!(request.timeseries.len() as u64, batches[0].samples);
        let find = |name: &str| {
            request
                .timeseries
                .iter()
                .find(|t| {
                    t.labels
                        .iter()
                        .any(|l| l.name == "__name__" && l.value == name)
                })
                .unwrap_or_else(|| panic!("{name}"))
        };
        let jobs = find("jobs_done_total");
        let names: Vec<&str> = jobs.labels.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["__name__", "collector", "queue", "zone"]);
        // The series' own `zone` wins.
        assert_eq!(jobs.labels[3].value, "b");
        assert_eq!(
            jobs.samples,
            [Sample {
                value: 3.0,
                timestamp: 1_700_000_000_000
            }]
        );
        assert_eq!(find("level").samples[0].value, 7.0);
        assert_eq!(find("latency_seconds_count").samples[0].value, 1.0);
        assert!((find("latency_seconds_sum").samples[0].value - 0.002).abs() < 1e-12);
        assert_eq!(
            find("stats_collector_statsd_datagrams_total").samples[0].value,
            1.0
        );
    }

    #[test]
    fn large_exports_are_cut_into_requests() {
        let mut c = Collector::new(Limits::default());
        for i in 0..5_000 {
            c.ingest(format!("c{i}:1|c").as_bytes());
        }
        let batches = requests(&View::of(&c), &BTreeMap::new(), 0);
        assert!(batches.len() >= 3);
        assert!(
            batches
                .iter()
                .all(|b| b.samples as usize <= MAX_SAMPLES_PER_REQUEST)
        );
        let total: u64 = batches.iter().map(|b| b.samples).sum();
        let mut t = stats_core::prometheus::Text::new();
        write_families(&View::of(&c), &mut t);
        let text = t.finish();
        let samples = text.lines().filter(|l| !l.starts_with('#')).count();
        assert_eq!(total as usize, samples);
    }
}
