//! A [`metrics::Recorder`] over the pipeline, so code instrumented with the
//! `metrics` crate's macros (`counter!`, `gauge!`, `histogram!`) records
//! through this pipeline unchanged.
//!
//! Each `register_*` resolves the name and labels to a registered handle
//! once; the `metrics` handle it returns then records with no allocation
//! and no lock, like the pipeline's own handles (so keep the handle where
//! the hot path can reach it, as `metrics` recommends). The macro's level
//! picks the priority: error and warn high, info medium, debug and trace
//! low. A name or label over the pipeline's limits gets a no-op handle,
//! counted as a rejected call. `describe_*` is accepted and ignored (the
//! wire carries no units or descriptions).

use crate::stats::{Counter, Gauge, Histogram, Stats};
use metrics::{CounterFn, GaugeFn, HistogramFn, Key, KeyName, Level, Metadata, SharedString, Unit};
use stats_core::Priority;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The pipeline as the `metrics` crate's recorder: install it with
/// `metrics::set_global_recorder(MetricsRecorder::new(stats))`.
#[derive(Clone, Debug)]
pub struct MetricsRecorder {
    stats: Stats,
}

impl MetricsRecorder {
    /// A recorder that records through `stats`.
    pub fn new(stats: Stats) -> Self {
        MetricsRecorder { stats }
    }
}

fn priority(metadata: &Metadata<'_>) -> Priority {
    let level = *metadata.level();
    if level >= Level::WARN {
        Priority::High
    } else if level >= Level::INFO {
        Priority::Medium
    } else {
        Priority::Low
    }
}

/// The key's labels as the pipeline's tags.
fn tags(key: &Key) -> Vec<(&str, &str)> {
    key.labels().map(|l| (l.key(), l.value())).collect()
}

/// A counter that also takes absolute values: it sends the increase since
/// the last absolute value (the wire carries increments).
struct CounterHandle {
    counter: Counter,
    last_absolute: AtomicU64,
}

impl CounterFn for CounterHandle {
    fn increment(&self, value: u64) {
        self.counter.add(value as i64);
    }

    fn absolute(&self, value: u64) {
        let before = self.last_absolute.swap(value, Ordering::Relaxed);
        // A value below the last one is a reset: it counts from zero.
        let delta = if value >= before {
            value - before
        } else {
            value
        };
        if delta > 0 {
            self.counter.add(delta as i64);
        }
    }
}

struct GaugeHandle(Gauge);

impl GaugeFn for GaugeHandle {
    fn increment(&self, value: f64) {
        self.0.add(value);
    }

    fn decrement(&self, value: f64) {
        self.0.add(-value);
    }

    fn set(&self, value: f64) {
        self.0.set(value);
    }
}

struct HistogramHandle(Histogram);

impl HistogramFn for HistogramHandle {
    fn record(&self, value: f64) {
        self.0.record(value);
    }
}

impl metrics::Recorder for MetricsRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> metrics::Counter {
        match self.stats.counter(key.name(), &tags(key)) {
            Ok(counter) => metrics::Counter::from_arc(Arc::new(CounterHandle {
                counter: counter.with_priority(priority(metadata)),
                last_absolute: AtomicU64::new(0),
            })),
            Err(_) => metrics::Counter::noop(),
        }
    }

    fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> metrics::Gauge {
        match self.stats.gauge(key.name(), &tags(key)) {
            Ok(gauge) => metrics::Gauge::from_arc(Arc::new(GaugeHandle(
                gauge.with_priority(priority(metadata)),
            ))),
            Err(_) => metrics::Gauge::noop(),
        }
    }

    fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> metrics::Histogram {
        match self.stats.histogram(key.name(), &tags(key)) {
            Ok(h) => metrics::Histogram::from_arc(Arc::new(HistogramHandle(
                h.with_priority(priority(metadata)),
            ))),
            Err(_) => metrics::Histogram::noop(),
        }
    }
}
