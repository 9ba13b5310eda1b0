//! The client, [`Stats`]: starting the pipeline, making handles, the
//! dynamic API (names known at run time), flush and shutdown.

use crate::aggregation::{Aggregation, Op};
use crate::clock::Clock;
use crate::config::{AggregationMode as Mode, Config};
use crate::control::Control;
use crate::describe::Descriptions;
use crate::error::{LifecycleError, RecordError, StartError};
use crate::handles::{Counter, Gauge, Handle, Histogram, Timer, counter_step};
use crate::keys::KeyTable;
use crate::report::Report;
use crate::shared::{Life, Pipeline, Shared};
use crate::transport::ClientTransport;
use crate::worker;
use rustc_hash::FxHashMap;
use stats_core::{CachePadded, Event, Kind, LaneCapacities, Lanes, Priority, Slot};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

/// The pipeline's client: cheap to clone, `Send + Sync`. Dropping the last
/// clone (and the last handle) shuts the pipeline down, waiting up to a
/// second for the lanes to drain.
#[derive(Clone)]
pub struct Stats {
    shared: Arc<Shared>,
    _life: Arc<Life>,
}

impl fmt::Debug for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stats")
            .field("address", &self.shared.config.address)
            .finish_non_exhaustive()
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl Stats {
    /// Validates `config`, builds the pipeline and starts its worker thread.
    pub fn start(config: Config) -> Result<Stats, StartError> {
        Stats::start_with(config, None)
    }

    /// [`Stats::start`], sending through `transport` (the application's
    /// own: a test spy, a sink of its own, a socket it set up) instead of
    /// the one `address` names. Its [`max_datagram`](stats_core::Transport::max_datagram)
    /// must take the configured `max_datagram`.
    pub fn start_with_transport(
        config: Config,
        transport: Box<dyn ClientTransport>,
    ) -> Result<Stats, StartError> {
        if transport.max_datagram() < config.datagram_size() {
            return Err(StartError::TransportTooSmall {
                takes: transport.max_datagram(),
                max_datagram: config.datagram_size(),
            });
        }
        Stats::start_with(config, Some(transport))
    }

    fn start_with(
        config: Config,
        transport: Option<Box<dyn ClientTransport>>,
    ) -> Result<Stats, StartError> {
        config.validate().map_err(StartError::Config)?;
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let keys = KeyTable::new(config.interning.capacity, config.tag_pairs());
        let pipeline = match config.aggregation.mode {
            Mode::Source => {
                let max = config.max_memory_mb << 20;
                let buffer = stats_core::MAX_DATAGRAMS_PER_SEND * config.datagram_size();
                let fields = "aggregation.max_series and aggregation.threads";
                let room = max.saturating_sub(keys.memory_bytes() + buffer);
                Pipeline::Source(
                    Aggregation::new(
                        config.aggregation.max_series,
                        config.aggregation.threads,
                        room,
                        id,
                    )
                    .map_err(|e| StartError::MemoryBudget {
                        fields,
                        needed: e.needed + keys.memory_bytes() + buffer,
                        max,
                    })?,
                )
            }
            Mode::Off => {
                let n = config.events.buffer_size;
                let caps = LaneCapacities {
                    high: n / 4,
                    medium: n / 2,
                    low: n / 4,
                };
                let sets = config.events.lane_sets + 1;
                // The lanes alone past the budget: refused before they are
                // allocated (the worker checks the whole, exporter included).
                let lanes_bytes = (sets * n).saturating_mul(size_of::<Slot<Event>>());
                let max = config.max_memory_mb << 20;
                if lanes_bytes > max {
                    return Err(StartError::MemoryBudget {
                        fields: "events.buffer_size, events.lane_sets and transport.max_datagram",
                        needed: lanes_bytes,
                        max,
                    });
                }
                let slots: Box<[Slot<Event>]> = (0..sets * n).map(|_| Slot::new()).collect();
                let lanes = Lanes::with_storage(slots, caps, config.events.drop_policy)
                    .map_err(StartError::Lanes)?;
                Pipeline::Events(Arc::new(lanes))
            }
        };
        let sample_below = u64::MAX / u64::from(config.events.sample_one_in.max(1));
        let shared = Arc::new(Shared {
            id,
            pipeline,
            gauges: RwLock::new(FxHashMap::default()),
            descriptions: Descriptions::default(),
            keys,
            clock: Clock::new(),
            config,
            stopped: CachePadded(AtomicBool::new(false)),
            control: Control::default(),
            report: Mutex::new(None),
            http_address: OnceLock::new(),
            rejected: Default::default(),
            sample_below,
        });
        worker::spawn(shared.clone(), transport)?;
        if shared.config.http.enabled {
            let (stop, answer) = (shared.clone(), shared.clone());
            match crate::http::spawn(
                &shared.config.http.address,
                shared.config.http.max_connections,
                move || stop.stopped.load(Ordering::Relaxed),
                Arc::new(move |path: &str| crate::prometheus::answer(&answer, path)),
            ) {
                Ok(address) => {
                    let _ = shared.http_address.set(address);
                }
                Err(e) => {
                    let _ = shared.shutdown(Duration::from_secs(1));
                    return Err(StartError::Network(e));
                }
            }
        }
        Ok(Stats {
            _life: Arc::new(Life {
                shared: shared.clone(),
            }),
            shared,
        })
    }

    fn handle(&self, name: &str, tags: &[(&str, &str)], kind: Kind) -> Result<Handle, RecordError> {
        let shared = &self.shared;
        let (key, series) = match shared.aggregation() {
            Some(a) => {
                let series = a
                    .series(&shared.keys, name, tags, kind)
                    .map_err(|e| shared.reject(e.into()))?;
                let key = a.tables.key(series).ok_or(RecordError::KeyTableFull)?;
                (key, Some(series))
            }
            None => {
                let key = shared
                    .keys
                    .register(name, tags)
                    .map_err(|e| shared.reject(e.into()))?;
                (key, None)
            }
        };
        Ok(Handle {
            shared: self.shared.clone(),
            _life: self._life.clone(),
            key,
            series,
            pipeline: shared.id,
            priority: Priority::Medium,
        })
    }

    /// A counter handle for `name` with `tags`.
    pub fn counter(&self, name: &str, tags: &[(&str, &str)]) -> Result<Counter, RecordError> {
        self.handle(name, tags, Kind::Counter).map(Counter)
    }

    /// A gauge handle. Every handle of the same name and tags, in any
    /// thread, sets and moves the same value (starting at 0).
    pub fn gauge(&self, name: &str, tags: &[(&str, &str)]) -> Result<Gauge, RecordError> {
        let handle = self.handle(name, tags, Kind::Gauge)?;
        let value = match handle.series {
            Some(_) => None,
            None => Some(self.shared.gauge_value(handle.key)),
        };
        Ok(Gauge { handle, value })
    }

    /// A timer handle (values in nanoseconds on the wire).
    pub fn timer(&self, name: &str, tags: &[(&str, &str)]) -> Result<Timer, RecordError> {
        self.handle(name, tags, Kind::Timer).map(Timer)
    }

    /// A histogram handle.
    pub fn histogram(&self, name: &str, tags: &[(&str, &str)]) -> Result<Histogram, RecordError> {
        self.handle(name, tags, Kind::Histogram).map(Histogram)
    }

    /// Prometheus text format 0.0.4 of what `GET /metrics` serves (with
    /// `http.enabled`), for an application that serves it from its own
    /// HTTP server: the application's series aggregated at the source
    /// (none with `aggregation = "off"`), rendered as the collector
    /// renders them, then the pipeline's telemetry (once the worker has
    /// reported, within a second of the start).
    pub fn render_metrics(&self) -> String {
        crate::prometheus::render(&self.shared, self.shared.report().as_ref())
    }

    /// Describes metric `name` for the client's own `/metrics` (with
    /// `http.enabled`): `help` becomes its family's `# HELP`, and `unit`
    /// (plural, lower case, as Prometheus names units: `seconds`,
    /// `bytes`) ends the family's name (`http_payload_bytes`), before a
    /// counter's `_total`; a timer's family ends in `_seconds` already.
    /// The wire carries neither. The last description of a name wins.
    pub fn describe(&self, name: &str, unit: Option<&str>, help: &str) {
        self.shared.descriptions.set(name, unit, help);
    }

    /// Records `value` into the series `name` with `tags` of `kind`, found
    /// or made now (dynamic path); for a gauge, `change` moves its value
    /// by `value` instead of setting it.
    fn dynamic(
        &self,
        kind: Kind,
        name: &str,
        value: f64,
        change: bool,
        tags: &[(&str, &str)],
    ) -> Result<(), RecordError> {
        let shared = &self.shared;
        if !shared.config.interning.enabled {
            return Err(shared.reject(RecordError::DynamicDisabled));
        }
        if let Some(a) = shared.aggregation() {
            let series = a
                .dynamic_series(&shared.keys, name, tags, kind)
                .map_err(|e| shared.reject(e.into()))?;
            let op = match kind {
                Kind::Counter => Op::Add(value as i64),
                Kind::Gauge if change => Op::Change(value),
                Kind::Gauge => Op::Set(value),
                Kind::Timer | Kind::Histogram => Op::Record(value),
            };
            return shared.aggregate(|a| a.apply(series, op));
        }
        let key = shared
            .keys
            .intern(name, tags, shared.clock.coarse_ticks())
            .map_err(|e| shared.reject(e.into()))?;
        if kind == Kind::Gauge {
            let gauge = shared.gauge_value(key);
            return shared.gauge_event(&gauge, key, Priority::Medium, value, change);
        }
        shared.push(key, kind, value, false, Priority::Medium, false)
    }

    /// Adds `n` to the counter `name` with `tags` (dynamic path), as
    /// [`Counter::add`] does. Errors are counted, not returned.
    pub fn counter_add(&self, name: &str, n: u64, tags: &[(&str, &str)]) {
        let _ = self.try_counter_add(name, n, tags);
    }

    /// [`Stats::counter_add`], returning why nothing was recorded.
    pub fn try_counter_add(
        &self,
        name: &str,
        n: u64,
        tags: &[(&str, &str)],
    ) -> Result<(), RecordError> {
        self.dynamic(Kind::Counter, name, counter_step(n) as f64, false, tags)
    }

    /// Sets the gauge `name` (dynamic path), as [`Gauge::set`] does.
    pub fn gauge_set(&self, name: &str, value: f64, tags: &[(&str, &str)]) {
        let _ = self.try_gauge_set(name, value, tags);
    }

    /// [`Stats::gauge_set`], returning why nothing was recorded.
    pub fn try_gauge_set(
        &self,
        name: &str,
        value: f64,
        tags: &[(&str, &str)],
    ) -> Result<(), RecordError> {
        self.dynamic(Kind::Gauge, name, value, false, tags)
    }

    /// Moves the gauge `name` by `delta` (dynamic path), as [`Gauge::add`]
    /// does.
    pub fn gauge_add(&self, name: &str, delta: f64, tags: &[(&str, &str)]) {
        let _ = self.try_gauge_add(name, delta, tags);
    }

    /// [`Stats::gauge_add`], returning why nothing was recorded.
    pub fn try_gauge_add(
        &self,
        name: &str,
        delta: f64,
        tags: &[(&str, &str)],
    ) -> Result<(), RecordError> {
        self.dynamic(Kind::Gauge, name, delta, true, tags)
    }

    /// Records a duration for the timer `name` (dynamic path), as
    /// [`Timer::record`] does.
    pub fn timer_record(&self, name: &str, duration: Duration, tags: &[(&str, &str)]) {
        let _ = self.try_timer_record(name, duration, tags);
    }

    /// [`Stats::timer_record`], returning why nothing was recorded.
    pub fn try_timer_record(
        &self,
        name: &str,
        duration: Duration,
        tags: &[(&str, &str)],
    ) -> Result<(), RecordError> {
        let ns = duration.as_nanos() as f64;
        self.dynamic(Kind::Timer, name, ns, false, tags)
    }

    /// Records a value for the histogram `name` (dynamic path), as
    /// [`Histogram::record`] does.
    pub fn histogram_record(&self, name: &str, value: f64, tags: &[(&str, &str)]) {
        let _ = self.try_histogram_record(name, value, tags);
    }

    /// [`Stats::histogram_record`], returning why nothing was recorded.
    pub fn try_histogram_record(
        &self,
        name: &str,
        value: f64,
        tags: &[(&str, &str)],
    ) -> Result<(), RecordError> {
        self.dynamic(Kind::Histogram, name, value, false, tags)
    }

    /// Waits until everything recorded before the call has been handed to
    /// the socket or counted as dropped, or `timeout` passes. Blocks the
    /// calling thread: from async code, call it in `spawn_blocking`.
    pub fn flush(&self, timeout: Duration) -> Result<(), LifecycleError> {
        self.shared.flush(timeout)
    }

    /// Drains what is buffered (up to `timeout`), stops the worker and logs
    /// a final telemetry line; returns the final report. Later recording is
    /// rejected (`RecordError::ShutDown`). Blocks like [`Stats::flush`].
    pub fn shutdown(&self, timeout: Duration) -> Result<Report, LifecycleError> {
        self.shared.shutdown(timeout)
    }

    /// The latest report: the worker publishes the core's telemetry every
    /// 100 ms, when it completes a [`Stats::flush`] and at shutdown; the
    /// rejection and interner counts are read now.
    pub fn report(&self) -> Option<Report> {
        self.shared.report()
    }

    /// Where the HTTP endpoint listens, when it is on.
    pub fn http_address(&self) -> Option<std::net::SocketAddr> {
        self.shared.http_address.get().copied()
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// The clock events are stamped with (Unix ns, monotonic from start).
    pub fn now_ns(&self) -> u64 {
        self.shared.clock.now()
    }

    /// When the pipeline started, on the `Instant` clock.
    pub fn started(&self) -> Instant {
        self.shared.clock.origin().0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared::tests::pipeline;

    #[test]
    fn a_thread_lets_go_of_the_shards_of_pipelines_that_are_gone() {
        for _ in 0..3 {
            let (stats, _rx) = pipeline(Mode::Source);
            stats.counter("c", &[]).unwrap().increment();
            let claimed = |s: &Stats| {
                s.shared
                    .aggregation()
                    .map(|a| a.tables.stats().shards_claimed)
            };
            assert_eq!(claimed(&stats), Some(1));
            drop(stats);
        }
        // Each new pipeline's first record let go of the previous one's
        // shard: one held, for the last pipeline, whatever came before.
        assert_eq!(crate::aggregation::threads_shards(), 1);
    }
}
