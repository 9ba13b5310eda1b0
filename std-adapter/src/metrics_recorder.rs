//! A [`metrics::Recorder`] over the pipeline, so code instrumented with the
//! `metrics` crate's macros (`counter!`, `gauge!`, `histogram!`) records
//! through this pipeline unchanged.
//!
//! The macros call `register_*` every time they run, so the recorder keeps
//! one handle per key (name and labels): the first call makes it, later
//! ones find it (a read lock and a hash lookup, no allocation) and hand
//! out a clone. State that belongs to the series lives there, not in the
//! handle a call returns: a gauge's value (shared with the pipeline's own
//! gauge handles) and the last absolute value of a counter, so
//! `counter!("t").absolute(5)`, `(9)`, `(12)` total 12, and
//! `gauge!("q").increment(1.0)` from any call site moves the same value.
//! The handle records with no allocation and no lock, like the pipeline's
//! own. The macro's level picks the priority of the key's first call:
//! error and warn high, info medium, debug and trace low. A name or label
//! over the pipeline's limits gets a no-op handle, counted as a rejected
//! call. `describe_*` gives a metric its help text and unit
//! ([`Stats::describe`]): the client's own `/metrics` shows them (the wire
//! carries neither).

use crate::handles::{Counter, Gauge, Histogram};
use crate::stats::Stats;
use metrics::{CounterFn, GaugeFn, HistogramFn, Key, KeyName, Level, Metadata, SharedString, Unit};
use rustc_hash::FxHashMap;
use stats_core::Priority;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// The pipeline as the `metrics` crate's recorder: install it with
/// `metrics::set_global_recorder(MetricsRecorder::new(stats))`.
#[derive(Clone)]
pub struct MetricsRecorder {
    stats: Stats,
    handles: Arc<Handles>,
}

impl std::fmt::Debug for MetricsRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsRecorder")
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// One handle per key and kind, made at the key's first registration.
#[derive(Default)]
struct Handles {
    counters: RwLock<FxHashMap<Key, Arc<CounterHandle>>>,
    gauges: RwLock<FxHashMap<Key, Arc<GaugeHandle>>>,
    histograms: RwLock<FxHashMap<Key, Arc<HistogramHandle>>>,
}

/// The handle of `key` in `map`, made by `make` at its first call.
fn cached<H>(
    map: &RwLock<FxHashMap<Key, Arc<H>>>,
    key: &Key,
    make: impl FnOnce() -> Option<H>,
) -> Option<Arc<H>> {
    if let Ok(map) = map.read()
        && let Some(h) = map.get(key)
    {
        return Some(h.clone());
    }
    let handle = make()?;
    let mut map = map.write().unwrap_or_else(|e| e.into_inner());
    Some(
        map.entry(key.clone())
            .or_insert_with(|| Arc::new(handle))
            .clone(),
    )
}

impl MetricsRecorder {
    /// A recorder that records through `stats`.
    pub fn new(stats: Stats) -> Self {
        MetricsRecorder {
            stats,
            handles: Arc::default(),
        }
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

/// A unit as Prometheus's naming puts it at the end of a name (plural,
/// lower case: `seconds`, `bytes`, `percent`); a count has none.
fn unit_suffix(unit: Option<Unit>) -> Option<&'static str> {
    unit.filter(|u| *u != Unit::Count).map(|u| u.as_str())
}

/// The key's labels as the pipeline's tags.
fn tags(key: &Key) -> Vec<(&str, &str)> {
    key.labels().map(|l| (l.key(), l.value())).collect()
}

/// A counter that also takes absolute values: it adds the increase since
/// the key's last absolute value (the wire carries increments).
struct CounterHandle {
    counter: Counter,
    last_absolute: AtomicU64,
}

impl CounterFn for CounterHandle {
    fn increment(&self, value: u64) {
        self.counter.add(value);
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
            self.counter.add(delta);
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
    fn describe_counter(&self, name: KeyName, unit: Option<Unit>, help: SharedString) {
        self.stats.describe(name.as_str(), unit_suffix(unit), &help);
    }

    fn describe_gauge(&self, name: KeyName, unit: Option<Unit>, help: SharedString) {
        self.stats.describe(name.as_str(), unit_suffix(unit), &help);
    }

    fn describe_histogram(&self, name: KeyName, unit: Option<Unit>, help: SharedString) {
        self.stats.describe(name.as_str(), unit_suffix(unit), &help);
    }

    fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> metrics::Counter {
        let made = cached(&self.handles.counters, key, || {
            let counter = self.stats.counter(key.name(), &tags(key)).ok()?;
            Some(CounterHandle {
                counter: counter.with_priority(priority(metadata)),
                last_absolute: AtomicU64::new(0),
            })
        });
        made.map_or_else(metrics::Counter::noop, metrics::Counter::from_arc)
    }

    fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> metrics::Gauge {
        let made = cached(&self.handles.gauges, key, || {
            let gauge = self.stats.gauge(key.name(), &tags(key)).ok()?;
            Some(GaugeHandle(gauge.with_priority(priority(metadata))))
        });
        made.map_or_else(metrics::Gauge::noop, metrics::Gauge::from_arc)
    }

    fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> metrics::Histogram {
        let made = cached(&self.handles.histograms, key, || {
            let h = self.stats.histogram(key.name(), &tags(key)).ok()?;
            Some(HistogramHandle(h.with_priority(priority(metadata))))
        });
        made.map_or_else(metrics::Histogram::noop, metrics::Histogram::from_arc)
    }
}
