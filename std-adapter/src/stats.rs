//! The client: [`Stats`] and its handles.

use crate::aggregation::{self, Aggregation, AggregationStats, Op, Refused};
use crate::clock::Clock;
use crate::config::{Aggregation as Mode, Config};
use crate::describe::Descriptions;
use crate::keys::{InternerStats, KeyError, KeyTable};
use crate::transport::ClientTransport;
use crate::udp::SocketInfo;
use crate::worker::{self, Control};
use rustc_hash::FxHashMap;
use stats_core::registry::RegistryError;
use stats_core::wire::Codec;
use stats_core::{
    AggregateTelemetry, CachePadded, DropReason, Event, KeyId, Kind, LaneCapacities, Lanes,
    Priority, Producer, SeriesId, Slot, TelemetrySnapshot,
};
use std::cell::RefCell;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

/// The most lane sets: the shared one plus one owned by each of up to 64
/// recording threads (`lane_sets` says how many are made; more threads
/// share set 0).
pub(crate) const SETS: usize = 65;

/// Pushes a thread without a set of its own makes through the shared one
/// between two tries to claim a set (one freed, or drained since).
const CLAIM_RETRY: u32 = 1024;

/// The lanes as the std adapter allocates them.
pub(crate) type StdLanes = Lanes<Box<[Slot<Event>]>, SETS>;

/// Why an event was not recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordError {
    /// The lanes were full and the drop policy dropped this event (counted
    /// in the telemetry under the reason).
    Dropped(DropReason),
    /// The name or tags break a limit (length, number of tags).
    InvalidKey(RegistryError),
    /// The key table has no room (65,536 keys, handles included).
    KeyTableFull,
    /// The dynamic API is off (`interning = false`).
    DynamicDisabled,
    /// A timer or histogram value is NaN or infinite (counted).
    NotFinite,
    /// The pipeline has shut down.
    ShutDown,
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::Dropped(reason) => write!(f, "event dropped: {reason}"),
            RecordError::InvalidKey(e) => write!(f, "invalid metric key: {e}"),
            RecordError::KeyTableFull => f.write_str("key table full"),
            RecordError::DynamicDisabled => f.write_str("dynamic metric names are disabled"),
            RecordError::NotFinite => {
                f.write_str("a timer or histogram value must be finite (not NaN or infinite)")
            }
            RecordError::ShutDown => f.write_str("the stats pipeline has shut down"),
        }
    }
}

impl std::error::Error for RecordError {}

impl From<KeyError> for RecordError {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::Invalid(e) => RecordError::InvalidKey(e),
            KeyError::Full => RecordError::KeyTableFull,
        }
    }
}

/// Calls that recorded nothing because of an error other than a drop (drops
/// are in the snapshot, by reason).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Rejected {
    /// Names or tags over a limit.
    pub invalid_key: u64,
    /// Key table full.
    pub key_table_full: u64,
    /// Dynamic API off.
    pub dynamic_disabled: u64,
    /// NaN or infinite timer and histogram values (source mode).
    pub not_finite: u64,
    /// After shutdown.
    pub shut_down: u64,
    /// Timer and histogram values left out by `sample_one_in` (each one
    /// sent stands for N).
    pub sampled_out: u64,
}

/// Everything the pipeline reports about itself.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct Report {
    /// The core's telemetry (as of the worker's last publication, at most
    /// 100 ms old, or the final one after shutdown).
    pub snapshot: TelemetrySnapshot,
    /// The interner's counters.
    pub interner: InternerStats,
    /// What the socket got from the kernel.
    pub socket: SocketInfo,
    /// Calls rejected before recording.
    pub rejected: Rejected,
    /// Health over the last window (about 10 s).
    pub health: stats_core::Health,
    /// Source mode: what was aggregated and sent (`None` with
    /// `aggregation = "off"`, whose events are in `snapshot`).
    pub aggregation: Option<AggregationReport>,
}

/// What aggregation at the source did (see [`Report::aggregation`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AggregationReport {
    /// Series, shards, memory and values recorded.
    pub stats: AggregationStats,
    /// Passes, records, datagrams and bytes sent.
    pub sent: AggregateTelemetry,
    /// Bytes of the tables, the datagram buffer and the key table,
    /// reserved at start (zeroed memory: resident only as it is used).
    pub memory_bytes: usize,
    /// Of them, bytes in use: the series table, the shards' directories,
    /// the cells made so far, the buffer and the key table.
    pub memory_used_bytes: usize,
    /// The configured maximum, bytes.
    pub memory_max_bytes: usize,
    /// The circuit breaker.
    pub breaker: stats_core::BreakerState,
}

/// Why `flush` or `shutdown` did not finish.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LifecycleError {
    /// The timeout passed first (events may still be buffered).
    Timeout,
    /// The pipeline had already shut down.
    ShutDown,
}

impl fmt::Display for LifecycleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LifecycleError::Timeout => "timed out",
            LifecycleError::ShutDown => "the stats pipeline has shut down",
        })
    }
}

impl std::error::Error for LifecycleError {}

/// Why the pipeline did not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum StartError {
    /// The configuration is invalid.
    Config(crate::ConfigError),
    /// The lanes could not be built from the configured sizes.
    Lanes(stats_core::LanesError),
    /// The event exporter could not be built (`aggregation = "off"`).
    Exporter(stats_core::ExporterError),
    /// The aggregate exporter could not be built (`aggregation = "source"`).
    AggregateExporter(stats_core::AggregateExporterError),
    /// The transport the application supplied takes smaller datagrams
    /// than the configured datagram size.
    TransportTooSmall {
        /// The largest datagram the transport takes, bytes.
        takes: usize,
        /// The configured datagram size, bytes.
        max_datagram: usize,
    },
    /// What the configuration asks for does not fit `max_memory_mb`.
    MemoryBudget {
        /// The fields whose values set the size.
        fields: &'static str,
        /// Bytes they need.
        needed: usize,
        /// The configured maximum, bytes.
        max: usize,
    },
    /// The socket could not be made, or the address not resolved.
    Network(std::io::Error),
    /// The worker thread could not be started.
    Spawn(std::io::Error),
    /// The worker thread ended before the pipeline started (it panicked),
    /// or found its lanes' consumer taken.
    WorkerEnded,
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Config(e) => write!(f, "configuration: {e}"),
            StartError::Lanes(e) => write!(f, "lanes: {e}"),
            StartError::Exporter(e) => write!(f, "exporter: {e}"),
            StartError::AggregateExporter(e) => write!(f, "aggregate exporter: {e}"),
            StartError::TransportTooSmall {
                takes,
                max_datagram,
            } => write!(
                f,
                "the transport takes datagrams of {takes} bytes, max_datagram is {max_datagram}"
            ),
            StartError::MemoryBudget {
                fields,
                needed,
                max,
            } => write!(
                f,
                "{fields} need {:.1} MiB, more than max_memory_mb allows ({:.1} MiB)",
                *needed as f64 / (1 << 20) as f64,
                *max as f64 / (1 << 20) as f64
            ),
            StartError::Network(e) => write!(f, "network: {e}"),
            StartError::Spawn(e) => write!(f, "the worker thread could not start: {e}"),
            StartError::WorkerEnded => write!(f, "the worker thread ended before starting"),
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartError::Config(e) => Some(e),
            StartError::Lanes(e) => Some(e),
            StartError::Exporter(e) => Some(e),
            StartError::AggregateExporter(e) => Some(e),
            StartError::Network(e) | StartError::Spawn(e) => Some(e),
            StartError::TransportTooSmall { .. }
            | StartError::MemoryBudget { .. }
            | StartError::WorkerEnded => None,
        }
    }
}

/// Where recorded values go.
pub(crate) enum Pipeline {
    /// `aggregation = "off"`: events into the lanes.
    Events(Arc<StdLanes>),
    /// `aggregation = "source"`: into the series' totals.
    Source(Aggregation),
}

/// State shared by the client, its handles and the worker.
pub(crate) struct Shared {
    pub(crate) id: u64,
    pub(crate) pipeline: Pipeline,
    /// Event mode: each gauge's value, so that `Gauge::add` from any
    /// handle moves the same value.
    gauges: RwLock<FxHashMap<KeyId, GaugeValue>>,
    pub(crate) keys: KeyTable,
    pub(crate) clock: Clock,
    pub(crate) config: Config,
    /// On a cache line of its own: read by every record.
    pub(crate) stopped: CachePadded<AtomicBool>,
    pub(crate) control: Control,
    pub(crate) report: Mutex<Option<Report>>,
    pub(crate) http_address: OnceLock<std::net::SocketAddr>,
    rejected: [AtomicU64; 6],
    /// Help texts and units, for the scrape.
    pub(crate) descriptions: Descriptions,
    /// Timer and histogram events are kept when a random draw is at most
    /// this (`u64::MAX / sample_one_in`; `u64::MAX` keeps all).
    sample_below: u64,
}

impl Shared {
    fn reject(&self, e: RecordError) -> RecordError {
        let i = match e {
            RecordError::InvalidKey(_) => 0,
            RecordError::KeyTableFull => 1,
            RecordError::DynamicDisabled => 2,
            RecordError::ShutDown => 3,
            RecordError::NotFinite => 4,
            RecordError::Dropped(_) => return e,
        };
        self.rejected[i].fetch_add(1, Ordering::Relaxed);
        e
    }

    /// The worker's latest report with the rejection and interner counts
    /// read now.
    pub(crate) fn report(&self) -> Option<Report> {
        let mut report = self.report.lock().ok().and_then(|r| *r)?;
        report.rejected = self.rejected();
        report.interner = self.keys.stats();
        Some(report)
    }

    pub(crate) fn rejected(&self) -> Rejected {
        let r = |i: usize| self.rejected[i].load(Ordering::Relaxed);
        Rejected {
            invalid_key: r(0),
            key_table_full: r(1),
            dynamic_disabled: r(2),
            not_finite: r(4),
            shut_down: r(3),
            sampled_out: r(5),
        }
    }

    /// The source-mode state, when aggregating.
    pub(crate) fn aggregation(&self) -> Option<&Aggregation> {
        match &self.pipeline {
            Pipeline::Source(a) => Some(a),
            Pipeline::Events(_) => None,
        }
    }

    /// Event mode: the value `key`'s gauges share.
    fn gauge_value(&self, key: KeyId) -> GaugeValue {
        if let Ok(map) = self.gauges.read()
            && let Some(v) = map.get(&key)
        {
            return v.clone();
        }
        let mut map = self.gauges.write().unwrap_or_else(|e| e.into_inner());
        map.entry(key).or_default().clone()
    }

    /// Event mode: moves `key`'s gauge value by `update` and records the
    /// event it makes, both under the value's lock and through the shared
    /// lane set, so that the events of one gauge leave in the order its
    /// value moved whichever threads moved it (each thread's own set is
    /// drained in turn, which would send a later value first).
    fn gauge_event(
        &self,
        value: &GaugeValue,
        key: KeyId,
        priority: Priority,
        update: impl FnOnce(&mut f64) -> (f64, bool),
    ) -> Result<(), RecordError> {
        let mut v = value.lock().unwrap_or_else(|e| e.into_inner());
        let (sent, relative) = update(&mut v);
        self.push_to(key, Kind::Gauge, sent, relative, priority, true)
    }

    /// Records into the series' totals (source mode) through `f`; after
    /// shutdown the aggregation refuses it (its gate is closed), so this
    /// path has no check of its own.
    #[inline(always)]
    fn aggregate(
        &self,
        f: impl FnOnce(&Aggregation) -> Result<(), Refused>,
    ) -> Result<(), RecordError> {
        match &self.pipeline {
            Pipeline::Source(a) => f(a).map_err(|e| {
                self.reject(match e {
                    Refused::NotFinite => RecordError::NotFinite,
                    Refused::Closed => RecordError::ShutDown,
                })
            }),
            Pipeline::Events(_) => Ok(()),
        }
    }

    /// Records `value`; for a gauge, `relative` makes it a change.
    #[inline]
    fn push(
        &self,
        key: KeyId,
        kind: Kind,
        value: f64,
        relative: bool,
        priority: Priority,
    ) -> Result<(), RecordError> {
        self.push_to(key, kind, value, relative, priority, false)
    }

    /// [`Shared::push`], into the shared lane set if `shared_set` (events
    /// that must stay in order across threads), else the thread's own.
    #[inline]
    fn push_to(
        &self,
        key: KeyId,
        kind: Kind,
        value: f64,
        relative: bool,
        priority: Priority,
        shared_set: bool,
    ) -> Result<(), RecordError> {
        if self.stopped.load(Ordering::Relaxed) {
            return Err(self.reject(RecordError::ShutDown));
        }
        if self.sample_below != u64::MAX
            && matches!(kind, Kind::Timer | Kind::Histogram)
            && !sampled(self.sample_below)
        {
            self.rejected[5].fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        let event = Event {
            relative,
            ..Event::new(key, kind, value, self.clock.coarse(), priority)
        };
        let Pipeline::Events(lanes) = &self.pipeline else {
            return Ok(());
        };
        if shared_set {
            return lanes.push(event).map_err(RecordError::Dropped);
        }
        PRODUCERS
            .with(|producers| {
                let mut producers = producers.borrow_mut();
                let at = match producers.iter().position(|p| p.pipeline == self.id) {
                    Some(at) => at,
                    None => {
                        // Let go of the sets of pipelines that are gone.
                        producers.retain(|p| p.alive.load(Ordering::Acquire));
                        producers.push(ThreadProducer {
                            pipeline: self.id,
                            producer: Producer::claim(lanes.clone()),
                            shared_pushes: 0,
                            alive: self.keys.alive(),
                        });
                        producers.len() - 1
                    }
                };
                let thread = &mut producers[at];
                match &mut thread.producer {
                    Some(producer) => producer.push(event),
                    None => {
                        thread.shared_pushes += 1;
                        if thread.shared_pushes == CLAIM_RETRY {
                            thread.shared_pushes = 0;
                            thread.producer = Producer::claim(lanes.clone());
                        }
                        lanes.push(event)
                    }
                }
            })
            .map_err(RecordError::Dropped)
    }
}

/// A thread's lane set in one pipeline it records into.
struct ThreadProducer {
    pipeline: u64,
    /// `None`: no owned set was free and empty, so the thread uses the
    /// shared one (and tries again every [`CLAIM_RETRY`] pushes).
    producer: Option<Producer<Arc<StdLanes>>>,
    /// Pushes through the shared set since the last try.
    shared_pushes: u32,
    /// Whether the pipeline still exists (its key table's flag).
    alive: Arc<AtomicBool>,
}

thread_local! {
    static PRODUCERS: RefCell<Vec<ThreadProducer>> = const { RefCell::new(Vec::new()) };
}

/// Shuts the pipeline down when the last `Stats` or handle goes.
struct Life {
    shared: Arc<Shared>,
}

impl Drop for Life {
    fn drop(&mut self) {
        let _ = worker::shutdown(&self.shared, Duration::from_secs(1));
    }
}

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
                    let _ = worker::shutdown(&shared, Duration::from_secs(1));
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
            stats: self.clone(),
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

    fn dynamic(
        &self,
        kind: Kind,
        name: &str,
        value: f64,
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
            return shared.aggregate(|a| record(a, series, value));
        }
        let key = shared
            .keys
            .intern(name, tags, shared.clock.coarse_ticks())
            .map_err(|e| shared.reject(e.into()))?;
        if kind == Kind::Gauge {
            let v = shared.gauge_value(key);
            return shared.gauge_event(&v, key, Priority::Medium, |v| {
                *v = value;
                (value, false)
            });
        }
        shared.push(key, kind, value, false, Priority::Medium)
    }

    /// Adds `value` to the counter `name` with `tags` (dynamic path). Errors
    /// are counted, not returned.
    pub fn count(&self, name: &str, value: i64, tags: &[(&str, &str)]) {
        let _ = self.try_count(name, value, tags);
    }

    /// [`Stats::count`], returning why nothing was recorded.
    pub fn try_count(
        &self,
        name: &str,
        value: i64,
        tags: &[(&str, &str)],
    ) -> Result<(), RecordError> {
        self.dynamic(Kind::Counter, name, value as f64, tags)
    }

    /// Sets the gauge `name` (dynamic path).
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
        self.dynamic(Kind::Gauge, name, value, tags)
    }

    /// Records a duration for the timer `name` (dynamic path).
    pub fn timing(&self, name: &str, duration: Duration, tags: &[(&str, &str)]) {
        let _ = self.try_timing(name, duration, tags);
    }

    /// [`Stats::timing`], returning why nothing was recorded.
    pub fn try_timing(
        &self,
        name: &str,
        duration: Duration,
        tags: &[(&str, &str)],
    ) -> Result<(), RecordError> {
        self.dynamic(Kind::Timer, name, duration.as_nanos() as f64, tags)
    }

    /// Records a value for the histogram `name` (dynamic path).
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
        self.dynamic(Kind::Histogram, name, value, tags)
    }

    /// Waits until everything recorded before the call has been handed to
    /// the socket or counted as dropped, or `timeout` passes. Blocks the
    /// calling thread: from async code, call it in `spawn_blocking`.
    pub fn flush(&self, timeout: Duration) -> Result<(), LifecycleError> {
        worker::flush(&self.shared, timeout)
    }

    /// Drains what is buffered (up to `timeout`), stops the worker and logs
    /// a final telemetry line; returns the final report. Later recording is
    /// rejected (`RecordError::ShutDown`). Blocks like [`Stats::flush`].
    pub fn shutdown(&self, timeout: Duration) -> Result<Report, LifecycleError> {
        worker::shutdown(&self.shared, timeout)
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

/// Records `value` into `series` by its kind (source mode).
#[inline]
fn record(a: &Aggregation, series: SeriesId, value: f64) -> Result<(), Refused> {
    match series.kind() {
        Kind::Counter => a.add(series, value as i64),
        Kind::Gauge => a.set(series, value),
        Kind::Timer | Kind::Histogram => a.record(series, value),
    }
}

/// What every handle holds: the client, a key, its series when
/// aggregating, and a priority (for events).
#[derive(Clone)]
struct Handle {
    stats: Stats,
    key: KeyId,
    series: Option<SeriesId>,
    /// The pipeline's id, kept here so the fast path follows no pointer.
    pipeline: u64,
    priority: Priority,
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
        self.stats.shared.aggregate(|a| match op {
            Op::Add(n) => a.add(series, n),
            Op::Set(v) => a.set(series, v),
            Op::Change(d) => a.change(series, d),
            Op::Record(v) => a.record(series, v),
        })
    }

    /// Records an event (`aggregation = "off"`): `value`, or for a gauge
    /// with `relative`, a change. Out of line: the aggregating callers
    /// stay small.
    #[inline(never)]
    fn event(&self, kind: Kind, value: f64, relative: bool) -> Result<(), RecordError> {
        self.stats
            .shared
            .push(self.key, kind, value, relative, self.priority)
    }
}

/// Whether this value is in the sample: a draw from the thread's
/// xorshift generator at most `below`.
fn sampled(below: u64) -> bool {
    thread_local! {
        static STATE: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    }
    STATE.with(|state| {
        let mut x = state.get();
        if x == 0 {
            // Seeded apart per thread (its state's address) and per run.
            let address = state as *const std::cell::Cell<u64> as u64;
            let time = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            x = (address ^ time.rotate_left(32)) | 1;
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        state.set(x);
        x <= below
    })
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
pub struct Counter(Handle);

impl Counter {
    fn handle_mut(&mut self) -> &mut Handle {
        &mut self.0
    }

    /// Adds one.
    #[inline(always)]
    pub fn increment(&self) {
        let _ = self.try_add(1);
    }

    /// Adds `n`.
    #[inline(always)]
    pub fn add(&self, n: i64) {
        let _ = self.try_add(n);
    }

    /// Adds `n`, returning why nothing was recorded.
    #[inline(always)]
    pub fn try_add(&self, n: i64) -> Result<(), RecordError> {
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
    handle: Handle,
    /// Event mode: the value `add` moves (shared by the key's gauges).
    value: Option<GaugeValue>,
}

/// Event mode: a gauge's value, shared by its handles and the dynamic path.
type GaugeValue = Arc<std::sync::Mutex<f64>>;

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
                h.stats.shared.gauge_event(v, h.key, h.priority, |v| {
                    *v = value;
                    (value, false)
                })
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
                let shared = &handle.stats.shared;
                let native = shared.config.codec == Codec::Native;
                shared.gauge_event(value, handle.key, handle.priority, |v| {
                    *v += delta;
                    if native { (*v, false) } else { (delta, true) }
                })
            }
            (None, None) => Ok(()),
        }
    }
}
priority!(Gauge);

/// A registered timer (durations in nanoseconds on the wire).
#[derive(Clone)]
pub struct Timer(Handle);

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
pub struct Histogram(Handle);

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

#[cfg(test)]
mod tests {
    use super::*;

    fn pipeline(mode: Mode) -> (Stats, std::net::UdpSocket) {
        let receiver = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let address = receiver.local_addr().unwrap().to_string();
        let config = Config::default()
            .with_address(address)
            .with_aggregation(mode);
        (Stats::start(config).unwrap(), receiver)
    }

    #[test]
    fn a_thread_lets_go_of_the_lanes_of_pipelines_that_are_gone() {
        let held = || PRODUCERS.with(|p| p.borrow().len());
        let before = held();
        for _ in 0..3 {
            let (stats, _rx) = pipeline(Mode::Off);
            stats.counter("c", &[]).unwrap().increment();
            drop(stats);
        }
        // Each new pipeline's first record dropped the previous one's set.
        assert_eq!(held(), before + 1);
    }

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
