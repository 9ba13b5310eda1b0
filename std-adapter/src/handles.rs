//! The handles: a counter, gauge, timer or histogram registered once,
//! recording without a lookup.

use crate::aggregation::{self, Op};
use crate::error::RecordError;
use crate::shared::{GaugeValue, Life, Shared};
use stats_core::{KeyId, Kind, Priority, SeriesId};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What every handle holds: the client, a key, its series when
/// aggregating, and a priority (for events).
#[derive(Clone)]
pub(crate) struct Handle {
    pub(crate) shared: Arc<Shared>,
    /// Keeps the pipeline running while the handle exists.
    pub(crate) _life: Arc<Life>,
    pub(crate) key: KeyId,
    pub(crate) series: Option<SeriesId>,
    /// The pipeline's id, kept here so the fast path follows no pointer.
    pub(crate) pipeline: u64,
    pub(crate) priority: Priority,
}

impl Handle {
    /// Records `op` into the series' totals: through the thread's fast
    /// path, or through the pipeline.
    #[inline(always)]
    fn aggregate(&self, series: SeriesId, op: Op) -> Result<(), RecordError> {
        if aggregation::fast(self.pipeline, series, op) {
            return Ok(());
        }
        let (code, bits) = op.to_parts();
        self.aggregate_slow(series, code, bits)
    }

    /// [`Handle::aggregate`] when the fast path cannot: out of the
    /// callers' way, the operation in two registers.
    #[inline(never)]
    fn aggregate_slow(&self, series: SeriesId, code: u8, bits: u64) -> Result<(), RecordError> {
        let op = Op::from_parts(code, bits);
        self.shared.aggregate(|a| a.apply(series, op))
    }

    /// Records an event (`aggregation = "off"`): `value`, or for a gauge
    /// with `relative`, a change. Out of line: the aggregating callers
    /// stay small.
    #[inline(never)]
    fn event(&self, kind: Kind, value: f64, relative: bool) -> Result<(), RecordError> {
        self.shared
            .push(self.key, kind, value, relative, self.priority, false)
    }
}

/// A counter's step as the totals hold it (signed, as StatsD counts are):
/// `n`, or `i64::MAX` above it.
#[inline(always)]
pub(crate) fn counter_step(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

macro_rules! priority {
    ($t:ident) => {
        impl $t {
            /// The same handle recording at `priority` (default medium).
            #[must_use]
            pub fn with_priority(mut self, priority: Priority) -> Self {
                self.handle_mut().priority = priority;
                self
            }
        }
    };
}

/// A registered counter.
#[derive(Clone)]
pub struct Counter(pub(crate) Handle);

impl Counter {
    fn handle_mut(&mut self) -> &mut Handle {
        &mut self.0
    }

    /// Adds one.
    #[inline(always)]
    pub fn increment(&self) {
        let _ = self.try_add(1);
    }

    /// Adds `n`. A counter only goes up, as the `_total` it is exported
    /// as must (use a [`Gauge`] for what also goes down); an `n` above
    /// `i64::MAX` adds `i64::MAX`.
    #[inline(always)]
    pub fn add(&self, n: u64) {
        let _ = self.try_add(n);
    }

    /// Adds `n`, returning why nothing was recorded.
    #[inline(always)]
    pub fn try_add(&self, n: u64) -> Result<(), RecordError> {
        let n = counter_step(n);
        match self.0.series {
            Some(series) => self.0.aggregate(series, Op::Add(n)),
            None => self.0.event(Kind::Counter, n as f64, false),
        }
    }
}
priority!(Counter);

/// A registered gauge. Every gauge of the same name and tags shares one
/// value: sets and changes from any handle or thread compose.
#[derive(Clone)]
pub struct Gauge {
    pub(crate) handle: Handle,
    /// Event mode: the value `add` moves (shared by the key's gauges).
    pub(crate) value: Option<GaugeValue>,
}

impl Gauge {
    fn handle_mut(&mut self) -> &mut Handle {
        &mut self.handle
    }

    /// Sets the value.
    #[inline(always)]
    pub fn set(&self, value: f64) {
        let _ = self.try_set(value);
    }

    /// Sets the value, returning why nothing was recorded.
    #[inline(always)]
    pub fn try_set(&self, value: f64) -> Result<(), RecordError> {
        match (self.handle.series, &self.value) {
            (Some(series), _) => self.handle.aggregate(series, Op::Set(value)),
            (None, Some(v)) => {
                let h = &self.handle;
                h.shared.gauge_event(v, h.key, h.priority, value, false)
            }
            (None, None) => Ok(()),
        }
    }

    /// Moves the value by `delta` (signed).
    ///
    /// Aggregated, the series' value moves (a compare-and-swap), and its
    /// total goes out with the others. As events: with the native codec
    /// the new value is sent, so a lost datagram costs no drift; with a
    /// StatsD codec the change is sent (`+N|g` / `-N|g`), as StatsD agents
    /// expect. A gauge's events (sets too) are made under its value's lock
    /// and go through the shared lane set, so they leave in the order the
    /// value moved, whichever threads moved it (handles of one gauge with
    /// different priorities use different lanes, which are drained
    /// apart: under overload their events may still cross).
    #[inline(always)]
    pub fn add(&self, delta: f64) {
        let _ = self.try_add(delta);
    }

    /// [`Gauge::add`], returning why nothing was recorded.
    #[inline(always)]
    pub fn try_add(&self, delta: f64) -> Result<(), RecordError> {
        let handle = &self.handle;
        match (handle.series, &self.value) {
            (Some(series), _) => handle.aggregate(series, Op::Change(delta)),
            (None, Some(value)) => {
                (handle.shared).gauge_event(value, handle.key, handle.priority, delta, true)
            }
            (None, None) => Ok(()),
        }
    }
}
priority!(Gauge);

/// A registered timer (durations in nanoseconds on the wire).
#[derive(Clone)]
pub struct Timer(pub(crate) Handle);

impl Timer {
    fn handle_mut(&mut self) -> &mut Handle {
        &mut self.0
    }

    /// Records `duration`.
    #[inline(always)]
    pub fn record(&self, duration: Duration) {
        let _ = self.try_record(duration);
    }

    /// Records `duration`, returning why nothing was recorded.
    #[inline(always)]
    pub fn try_record(&self, duration: Duration) -> Result<(), RecordError> {
        let ns = duration.as_nanos() as f64;
        match self.0.series {
            Some(series) => self.0.aggregate(series, Op::Record(ns)),
            None => self.0.event(Kind::Timer, ns, false),
        }
    }

    /// Starts timing; the guard records the elapsed time when dropped.
    pub fn start(&self) -> TimerGuard<'_> {
        TimerGuard {
            timer: self,
            started: Instant::now(),
        }
    }

    /// Runs `f` and records how long it took.
    pub fn time<R>(&self, f: impl FnOnce() -> R) -> R {
        let _guard = self.start();
        f()
    }
}
priority!(Timer);

/// Records the time since [`Timer::start`] when dropped.
#[must_use = "the guard records when it is dropped"]
pub struct TimerGuard<'t> {
    timer: &'t Timer,
    started: Instant,
}

impl Drop for TimerGuard<'_> {
    fn drop(&mut self) {
        self.timer.record(self.started.elapsed());
    }
}

/// A registered histogram.
#[derive(Clone)]
pub struct Histogram(pub(crate) Handle);

impl Histogram {
    fn handle_mut(&mut self) -> &mut Handle {
        &mut self.0
    }

    /// Records `value`.
    #[inline(always)]
    pub fn record(&self, value: f64) {
        let _ = self.try_record(value);
    }

    /// Records `value`, returning why nothing was recorded.
    #[inline(always)]
    pub fn try_record(&self, value: f64) -> Result<(), RecordError> {
        match self.0.series {
            Some(series) => self.0.aggregate(series, Op::Record(value)),
            None => self.0.event(Kind::Histogram, value, false),
        }
    }
}
priority!(Histogram);
