//! The worker thread: drives the core's exporter (of events, or of
//! aggregated totals) over its [`transport`], keeps the coarse clock
//! fresh, publishes reports, and serves flush and shutdown requests.

use crate::aggregation::Aggregation;
use crate::client_telemetry::ClientTelemetry;
use crate::error::StartError;
use crate::keys::KeyReader;
use crate::lanes::{SETS, StdLanes};
use crate::report::{AggregationReport, Report};
use crate::shared::{Pipeline, Shared};
use crate::transport::{self, Address, ClientTransport};
use stats_core::health::evaluate;
use stats_core::wire::deltas::{Current, Deltas};
use stats_core::wire::packer::Packer;
use stats_core::wire::{Codec, EncoderConfig};
use stats_core::{
    AdaptiveConfig, AggregateExporter, AggregateExporterConfig, AggregateTelemetry, BreakerConfig,
    BreakerState, CircuitBreaker, DropCounters, DropEdge, DropMonitor, DropReason, Exporter,
    ExporterConfig, HealthThresholds, Keys, MAX_DATAGRAMS_PER_SEND, Measurements, Pressure,
    TelemetrySnapshot, Totals as CoreTotals, Word,
};
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::mpsc::{SyncSender, sync_channel};
use std::thread;
use std::time::{Duration, Instant};

/// How often a report is published.
const PUBLISH_EVERY: Duration = Duration::from_millis(100);
/// The health window.
const HEALTH_WINDOW: Duration = Duration::from_secs(10);
/// At most one send-error log line per this long.
const ERROR_LOG_EVERY: Duration = Duration::from_secs(10);
/// How often the drop counters are looked at for the start and stop
/// warnings: one line at most per this long, and drops "stop" after this
/// long without one.
const DROP_CHECK_EVERY: Duration = Duration::from_secs(1);

/// Starts the worker; returns once it has built the exporter and
/// connected the transport (`supplied`, or the one `address` names).
pub(crate) fn spawn(
    shared: Arc<Shared>,
    supplied: Option<Box<dyn ClientTransport>>,
) -> Result<(), StartError> {
    let (tx, rx) = sync_channel(1);
    let worker = shared.clone();
    let join = thread::Builder::new()
        .name("stats-worker".into())
        .spawn(move || run(&worker, &tx, supplied))
        .map_err(StartError::Spawn)?;
    match rx.recv() {
        Ok(Ok(())) => {
            *shared
                .control
                .thread
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = Some(join);
            Ok(())
        }
        Ok(Err(e)) => {
            let _ = join.join();
            Err(e)
        }
        Err(_) => Err(StartError::WorkerEnded),
    }
}

fn random_sender_id() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.finish()
}

fn breaker(shared: &Shared) -> BreakerConfig {
    let c = &shared.config;
    BreakerConfig::new(
        c.breaker.failures,
        c.breaker.open_ms.saturating_mul(1_000_000),
    )
}

fn encoder(shared: &Shared, sender: u64) -> EncoderConfig {
    let c = &shared.config;
    EncoderConfig::new(sender)
        .with_max_datagram(c.datagram_size())
        .with_codec(c.codec)
        .with_container_id(container_id(c))
        .with_sample_one_in(c.events.sample_one_in)
}

/// The container id DogStatsD lines carry: detected once a process, when
/// `origin_detection` is on.
fn container_id(c: &crate::Config) -> &'static str {
    if c.codec.is_dogstatsd() && c.dogstatsd.origin_detection {
        crate::origin::container_id()
    } else {
        ""
    }
}

fn exporter_config(shared: &Shared, sender: u64) -> ExporterConfig {
    let c = &shared.config;
    let mut config = ExporterConfig::new(sender)
        .with_batch_size(c.events.batch_size)
        .with_max_batch_age_ns(c.events.max_batch_age_ms.saturating_mul(1_000_000))
        .with_breaker(breaker(shared))
        .with_encoder(encoder(shared, sender))
        .with_max_memory_bytes((c.max_memory_mb << 20).saturating_sub(shared.keys.memory_bytes()));
    if c.events.adaptive_batching {
        config = config.with_adaptive(AdaptiveConfig::DEFAULT);
    }
    config
}

/// The transport a driver sends through.
type Link<'t> = &'t mut dyn ClientTransport;

/// What the worker loop drives: the event exporter or the aggregate one.
trait Driver {
    /// Does what is due at `now`; when to come back.
    fn poll(&mut self, now: u64, transport: Link<'_>, keys: &KeyReader<'_>) -> Option<u64>;
    /// Sends everything now; whether nothing is left.
    fn flush(&mut self, now: u64, transport: Link<'_>, keys: &KeyReader<'_>) -> bool;
    /// The last flush before the worker stops; whether nothing is left.
    fn finish(&mut self, now: u64, transport: Link<'_>, keys: &KeyReader<'_>) -> bool;
    /// The report now, health judged against the window's start.
    fn report(&mut self, shared: &Shared, transport: &dyn ClientTransport) -> Report;
    /// Datagrams that failed to send, ever, and the breaker's state.
    fn send_errors(&self) -> (u64, BreakerState);
    /// One line for the log at shutdown.
    fn summary(&mut self) -> String;
    /// The longest the worker sleeps when nothing is due (and how often it
    /// publishes a report, at most every `PUBLISH_EVERY`).
    fn idle(&self, config: &crate::Config) -> Duration;
}

/// The health window: a report from about `HEALTH_WINDOW` ago.
struct Window<T> {
    since: Instant,
    earlier: Option<T>,
}

impl<T: Copy> Window<T> {
    fn new() -> Self {
        Window {
            since: Instant::now(),
            earlier: None,
        }
    }

    /// The start of the window, after taking in `now`'s value.
    fn slide(&mut self, now: T) -> Option<T> {
        if self.since.elapsed() >= HEALTH_WINDOW || self.earlier.is_none() {
            *self = Window {
                since: Instant::now(),
                earlier: Some(now),
            };
        }
        self.earlier
    }
}

/// Events through the lanes (`aggregation = "off"`).
struct Events<'a> {
    exporter:
        Exporter<'a, Box<[stats_core::Slot<stats_core::Event>]>, SETS, { crate::BATCH_CAPACITY }>,
    window: Window<TelemetrySnapshot>,
    /// The lanes it drains (their drop counters).
    lanes: &'a StdLanes,
    warnings: DropWarnings,
}

/// The warnings when events start being dropped and when they stop: one
/// line each, with the counts by reason, the counters looked at once every
/// [`DROP_CHECK_EVERY`].
struct DropWarnings {
    monitor: DropMonitor,
    checked: Instant,
    /// The totals by reason at the last check, and when this episode of
    /// drops began (and the totals before it).
    last: [usize; DropReason::ALL.len()],
    episode: Option<(Instant, [usize; DropReason::ALL.len()])>,
}

impl DropWarnings {
    fn new() -> Self {
        DropWarnings {
            monitor: DropMonitor::new(),
            checked: Instant::now(),
            last: [0; DropReason::ALL.len()],
            episode: None,
        }
    }

    /// Looks at `drops` if a check is due; logs an edge.
    fn check(&mut self, drops: &DropCounters) {
        if self.checked.elapsed() < DROP_CHECK_EVERY {
            return;
        }
        self.checked = Instant::now();
        let now = DropReason::ALL.map(|r| drops.by_reason(r));
        match self.monitor.observe(drops.total()) {
            Some(DropEdge::Started { dropped }) => {
                log::warn!(
                    "stats: dropping events: {dropped} dropped in the last {:.0?} ({})",
                    DROP_CHECK_EVERY,
                    by_reason(&now, &self.last)
                );
                self.episode = Some((self.checked, self.last));
            }
            Some(DropEdge::Stopped { dropped }) => {
                if let Some((began, before)) = self.episode.take() {
                    log::warn!(
                        "stats: drops stopped: {dropped} events dropped over {:.1?} ({})",
                        began.elapsed().saturating_sub(DROP_CHECK_EVERY),
                        by_reason(&now, &before)
                    );
                }
            }
            None => {}
        }
        self.last = now;
    }
}

/// `reason count` for each reason that counted since `before` (the
/// counters wrap).
fn by_reason(
    now: &[usize; DropReason::ALL.len()],
    before: &[usize; DropReason::ALL.len()],
) -> String {
    let parts: Vec<String> = DropReason::ALL
        .iter()
        .zip(now.iter().zip(before))
        .map(|(r, (n, b))| (r, n.wrapping_sub(*b)))
        .filter(|&(_, n)| n > 0)
        .map(|(r, n)| format!("{r} {n}"))
        .collect();
    parts.join(", ")
}

impl Driver for Events<'_> {
    fn poll(&mut self, now: u64, transport: Link<'_>, keys: &KeyReader<'_>) -> Option<u64> {
        let next = self.exporter.poll(now, transport, keys);
        self.warnings.check(self.lanes.drops());
        next
    }

    fn flush(&mut self, now: u64, transport: Link<'_>, keys: &KeyReader<'_>) -> bool {
        self.exporter.flush(now, transport, keys)
    }

    fn finish(&mut self, now: u64, transport: Link<'_>, keys: &KeyReader<'_>) -> bool {
        self.exporter.flush(now, transport, keys)
    }

    fn report(&mut self, shared: &Shared, transport: &dyn ClientTransport) -> Report {
        let snapshot = self.exporter.snapshot();
        let earlier = self.window.slide(snapshot);
        Report {
            snapshot,
            interner: shared.keys.stats(),
            socket: transport.info(),
            rejected: shared.rejected(),
            health: snapshot.health(earlier.as_ref(), &HealthThresholds::DEFAULT),
            aggregation: None,
        }
    }

    fn send_errors(&self) -> (u64, BreakerState) {
        (
            self.exporter.telemetry().send_errors,
            self.exporter.breaker().state(),
        )
    }

    fn idle(&self, config: &crate::Config) -> Duration {
        // The coarse clock events are stamped with moves each tick.
        Duration::from_millis(config.events.tick_ms)
    }

    fn summary(&mut self) -> String {
        let s = self.exporter.snapshot();
        format!(
            "received {} sent {} in {} datagrams, dropped {}, send-failed {}, refused {}, still buffered {}",
            s.events_received,
            s.counters.events_sent,
            s.counters.datagrams_sent,
            s.drops.total(),
            s.counters.events_send_failed,
            s.counters.events_refused,
            s.buffered()
        )
    }
}

/// Aggregated totals (`aggregation = "source"`).
struct Totals<'a> {
    exporter: AggregateExporter<'a, Box<[Word]>>,
    aggregation: &'a Aggregation,
    window: Window<(AggregateTelemetry, u64)>,
    memory_bytes: usize,
}

/// Copies of the final state a shutdown sends, so that one lost datagram
/// cannot lose a final total (a receiver takes duplicates as one).
const FINAL_COPIES: usize = 2;

impl Driver for Totals<'_> {
    fn poll(&mut self, now: u64, transport: Link<'_>, keys: &KeyReader<'_>) -> Option<u64> {
        self.exporter.poll(now, transport, keys)
    }

    fn flush(&mut self, now: u64, transport: Link<'_>, keys: &KeyReader<'_>) -> bool {
        self.exporter.flush(now, transport, keys)
    }

    fn finish(&mut self, now: u64, transport: Link<'_>, keys: &KeyReader<'_>) -> bool {
        (0..FINAL_COPIES).all(|_| self.exporter.flush(now, transport, keys))
    }

    fn report(&mut self, shared: &Shared, transport: &dyn ClientTransport) -> Report {
        totals_report(
            shared,
            transport,
            self.aggregation,
            *self.exporter.telemetry(),
            self.exporter.breaker().state(),
            &mut self.window,
            self.memory_bytes,
        )
    }

    fn send_errors(&self) -> (u64, BreakerState) {
        (
            self.exporter.telemetry().send_errors,
            self.exporter.breaker().state(),
        )
    }

    fn idle(&self, config: &crate::Config) -> Duration {
        // Nothing is stamped: the worker wakes for its passes only.
        Duration::from_millis(config.aggregation.interval_ms)
    }

    fn summary(&mut self) -> String {
        let stats = self.aggregation.stats();
        let t = self.exporter.telemetry();
        format!(
            "{} series, {} values recorded; {} records in {} datagrams ({} passes), {} failed to send",
            stats.tables.series,
            stats.recorded.iter().sum::<u64>(),
            t.series_sent,
            t.datagrams_sent,
            t.passes,
            t.send_errors
        )
    }
}

/// Aggregated totals as StatsD lines of what changed each interval
/// (`aggregation = "source"` with a StatsD codec; `deltas.rs`).
struct Lines<'a> {
    aggregation: &'a Aggregation,
    deltas: Deltas,
    packer: Packer,
    breaker: CircuitBreaker,
    interval: u64,
    next: Option<u64>,
    sent: AggregateTelemetry,
    window: Window<(AggregateTelemetry, u64)>,
    memory_bytes: usize,
    /// Whether counter and gauge lines carry their time (`timestamps`).
    timestamps: bool,
}

impl Lines<'_> {
    /// Sends the lines of every series that changed; whether all went.
    fn pass(&mut self, now: u64, transport: Link<'_>, keys: &KeyReader<'_>) -> bool {
        if !self.breaker.allow(now) {
            return false;
        }
        let Lines {
            aggregation,
            deltas,
            packer,
            breaker,
            sent,
            ..
        } = self;
        let tables = &aggregation.tables;
        packer.set_timestamp(self.timestamps.then_some(now / 1_000_000_000));
        let mut failed = false;
        let mut send = |datagram: &[u8], lines: u64| match transport.send(datagram) {
            Ok(()) => {
                breaker.on_success();
                sent.send_calls += 1;
                sent.datagrams_sent += 1;
                sent.bytes_sent += datagram.len() as u64;
                sent.series_sent += lines;
            }
            Err(_) => {
                breaker.on_failure(now);
                failed = true;
                sent.send_calls += 1;
                sent.send_errors += 1;
                sent.bytes_send_failed += datagram.len() as u64;
                sent.series_send_failed += lines;
            }
        };
        for index in 0..tables.len() {
            let Some(series) = tables.series_at(index) else {
                continue;
            };
            let Some(snapshot) = tables.snapshot(series) else {
                continue;
            };
            if snapshot.changes == tables.sent(series) {
                continue;
            }
            let Some(key) = keys.key(snapshot.key) else {
                sent.series_refused += 1;
                continue;
            };
            let mut buckets = tables.buckets(series, 0).map(|(id, c)| ((0, id), c));
            let current = match snapshot.value {
                CoreTotals::Counter { sum, .. } => Current::Counter(sum as f64),
                CoreTotals::Gauge { value } => Current::Gauge(value),
                CoreTotals::Distribution { min, max, .. } => Current::Distribution {
                    buckets: &mut buckets,
                    min,
                    max,
                    timer: snapshot.kind == stats_core::Kind::Timer,
                },
            };
            deltas.lines(index, current, |values, rate| {
                let pushed = packer.push(
                    key.name(),
                    key.tags(),
                    snapshot.kind,
                    values,
                    rate,
                    &mut send,
                );
                if pushed.is_err() {
                    sent.series_refused += 1;
                }
            });
            tables.set_sent(series, snapshot.changes);
        }
        packer.flush(&mut send);
        sent.passes += 1;
        !failed
    }
}

impl Driver for Lines<'_> {
    fn poll(&mut self, now: u64, transport: Link<'_>, keys: &KeyReader<'_>) -> Option<u64> {
        let due = *self.next.get_or_insert(now);
        if now >= due {
            self.pass(now, transport, keys);
            self.next = Some(due.saturating_add(self.interval).max(now));
        }
        self.next
    }

    fn flush(&mut self, now: u64, transport: Link<'_>, keys: &KeyReader<'_>) -> bool {
        self.pass(now, transport, keys)
    }

    fn finish(&mut self, now: u64, transport: Link<'_>, keys: &KeyReader<'_>) -> bool {
        self.pass(now, transport, keys)
    }

    fn report(&mut self, shared: &Shared, transport: &dyn ClientTransport) -> Report {
        totals_report(
            shared,
            transport,
            self.aggregation,
            self.sent,
            self.breaker.state(),
            &mut self.window,
            self.memory_bytes,
        )
    }

    fn send_errors(&self) -> (u64, BreakerState) {
        (self.sent.send_errors, self.breaker.state())
    }

    fn summary(&mut self) -> String {
        let stats = self.aggregation.stats();
        format!(
            "{} series, {} values recorded; {} lines in {} datagrams, {} failed to send",
            stats.tables.series,
            stats.recorded.iter().sum::<u64>(),
            self.sent.series_sent,
            self.sent.datagrams_sent,
            self.sent.send_errors
        )
    }

    fn idle(&self, config: &crate::Config) -> Duration {
        Duration::from_millis(config.aggregation.interval_ms)
    }
}

/// The report of a source-mode driver, health judged on its sends.
fn totals_report(
    shared: &Shared,
    transport: &dyn ClientTransport,
    aggregation: &Aggregation,
    sent: AggregateTelemetry,
    breaker: BreakerState,
    window: &mut Window<(AggregateTelemetry, u64)>,
    memory_bytes: usize,
) -> Report {
    let stats = aggregation.stats();
    let recorded: u64 = stats.recorded.iter().sum();
    let (before, recorded_before) = window
        .slide((sent, recorded))
        .unwrap_or((AggregateTelemetry::default(), 0));
    let errors = sent.send_errors.saturating_sub(before.send_errors);
    let measurements = Measurements {
        events_recorded: recorded.saturating_sub(recorded_before),
        sends: sent.datagrams_sent.saturating_sub(before.datagrams_sent) + errors,
        send_errors: errors,
        breaker_open: matches!(breaker, BreakerState::Open { .. }),
        ..Measurements::default()
    };
    let t = &stats.tables;
    let unused = (t.pool_words - t.pool_used) * size_of::<Word>();
    Report {
        snapshot: TelemetrySnapshot::default(),
        interner: shared.keys.stats(),
        socket: transport.info(),
        rejected: shared.rejected(),
        health: evaluate(&measurements, &HealthThresholds::DEFAULT),
        aggregation: Some(AggregationReport {
            stats,
            sent,
            memory_bytes,
            memory_used_bytes: memory_bytes.saturating_sub(unused),
            memory_max_bytes: shared.config.max_memory_mb << 20,
            breaker,
        }),
    }
}

fn run(
    shared: &Shared,
    started: &SyncSender<Result<(), StartError>>,
    supplied: Option<Box<dyn ClientTransport>>,
) {
    let config = &shared.config;
    let sender = random_sender_id();
    let mut buf = vec![0u8; MAX_DATAGRAMS_PER_SEND * config.datagram_size()];
    let fail = |e: StartError| {
        let _ = started.send(Err(e));
    };
    match &shared.pipeline {
        Pipeline::Events(lanes) => run_events(shared, lanes, sender, &mut buf, started, supplied),
        Pipeline::Source(aggregation) => {
            let memory_bytes =
                aggregation.tables.memory_bytes() + buf.len() + shared.keys.memory_bytes();
            if let Codec::Statsd(dialect) = config.codec {
                let lines = Lines {
                    aggregation,
                    deltas: Deltas::default(),
                    packer: Packer::new(dialect, config.datagram_size(), container_id(config)),
                    breaker: CircuitBreaker::new(breaker(shared)),
                    interval: config.aggregation.interval_ms.saturating_mul(1_000_000),
                    next: None,
                    sent: AggregateTelemetry::default(),
                    window: Window::new(),
                    memory_bytes,
                    timestamps: config.dogstatsd.timestamps && config.codec.is_dogstatsd(),
                };
                return serve(shared, lines, started, supplied);
            }
            let c = AggregateExporterConfig::new(sender, shared.clock.now())
                .with_interval(
                    config.aggregation.interval_ms.saturating_mul(1_000_000),
                    config
                        .aggregation
                        .refresh_interval_s
                        .saturating_mul(1_000_000_000),
                )
                .with_encoder(encoder(shared, sender))
                .with_breaker(breaker(shared));
            match AggregateExporter::new(&aggregation.tables, &mut buf, c) {
                Ok(exporter) => serve(
                    shared,
                    Totals {
                        exporter,
                        aggregation,
                        window: Window::new(),
                        memory_bytes,
                    },
                    started,
                    supplied,
                ),
                Err(e) => fail(StartError::AggregateExporter(e)),
            }
        }
    }
}

fn run_events(
    shared: &Shared,
    lanes: &StdLanes,
    sender: u64,
    buf: &mut [u8],
    started: &SyncSender<Result<(), StartError>>,
    supplied: Option<Box<dyn ClientTransport>>,
) {
    let Some(consumer) = lanes.consumer() else {
        let _ = started.send(Err(StartError::WorkerEnded));
        return;
    };
    let mut on_pressure = |p: Pressure| {
        log::warn!(
            "stats: memory pressure {} (lanes {}% full)",
            p.level.as_str(),
            p.utilization_percent
        );
    };
    let mut exporter = match Exporter::new(consumer, buf, exporter_config(shared, sender)) {
        Ok(e) => e,
        Err(e) => {
            let keys = shared.keys.memory_bytes();
            let error = match e {
                // Named by the settings that size it, against the budget
                // as configured (the key table's share included).
                stats_core::ExporterError::MemoryBudget { needed, .. } => {
                    StartError::MemoryBudget {
                        fields: "events.buffer_size, events.lane_sets and transport.max_datagram",
                        needed: needed + keys,
                        max: shared.config.max_memory_mb << 20,
                    }
                }
                e => StartError::Exporter(e),
            };
            let _ = started.send(Err(error));
            return;
        }
    };
    exporter.on_pressure(&mut on_pressure);
    serve(
        shared,
        Events {
            exporter,
            window: Window::new(),
            lanes,
            warnings: DropWarnings::new(),
        },
        started,
        supplied,
    );
}

/// The worker loop: polls the driver, serves flush and shutdown, publishes
/// reports, logs send errors, re-resolves the destination.
fn serve<D: Driver>(
    shared: &Shared,
    mut driver: D,
    started: &SyncSender<Result<(), StartError>>,
    supplied: Option<Box<dyn ClientTransport>>,
) {
    let config = &shared.config;
    let connected = match supplied {
        Some(t) => Ok(t),
        None => match Address::parse(&config.address) {
            Some(address) => transport::connect(
                &address,
                config.datagram_size(),
                config.transport.send_buffer_bytes,
                shared.clock.origin(),
            ),
            // Validated before: cannot happen.
            None => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("address {:?}", config.address),
            )),
        },
    };
    let mut transport = match connected {
        Ok(t) => t,
        Err(e) => {
            let _ = started.send(Err(StartError::Network(e)));
            return;
        }
    };
    let transport = &mut *transport;
    let publish = |driver: &mut D, transport: &dyn ClientTransport| {
        let report = driver.report(shared, transport);
        if let Ok(mut r) = shared.report.lock() {
            *r = Some(report);
        }
        report
    };
    // A report from the start, so the endpoint and `report()` have one as
    // soon as `Stats::start` returns.
    publish(&mut driver, transport);
    if started.send(Ok(())).is_err() {
        return;
    }
    let mut telemetry = match (config.dogstatsd.client_telemetry, config.codec) {
        (true, Codec::Statsd(dialect)) => Address::parse(&config.address).map(|address| {
            ClientTelemetry::new(
                dialect,
                config.datagram_size(),
                container_id(config),
                &address,
                config.tag_pairs(),
            )
        }),
        _ => None,
    };
    let mut published = Instant::now();
    let mut resolved = Instant::now();
    let mut errors_logged = (Instant::now(), 0u64);
    let resolve_every = Duration::from_secs(config.transport.resolve_interval_s);
    let tick = driver.idle(config);
    let publish_every = PUBLISH_EVERY.max(tick);
    loop {
        let now = shared.clock.refresh();
        let next = driver.poll(now, transport, &shared.keys.reader());
        let (flush_to, deadline) = {
            let s = shared.control.lock();
            (
                (s.flush_requested > s.flush_done).then_some(s.flush_requested),
                s.shutdown_deadline,
            )
        };
        if flush_to.is_some() || deadline.is_some() {
            let keys = shared.keys.reader();
            let now = shared.clock.refresh();
            let drained = match deadline {
                Some(_) => driver.finish(now, transport, &keys),
                None => driver.flush(now, transport, &keys),
            };
            drop(keys);
            if let (true, Some(ticket)) = (drained, flush_to) {
                // The caller's next report includes everything it flushed.
                publish(&mut driver, transport);
                published = Instant::now();
                shared.control.lock().flush_done = ticket;
                shared.control.changed.notify_all();
            }
            if let Some(deadline) = deadline
                && (drained || Instant::now() >= deadline)
            {
                break;
            }
        }
        let (errors, breaker) = driver.send_errors();
        if errors > errors_logged.1 && errors_logged.0.elapsed() >= ERROR_LOG_EVERY {
            log::warn!(
                "stats: {} datagrams failed to send to {} (breaker {:?})",
                errors - errors_logged.1,
                transport.describe(),
                breaker
            );
            errors_logged = (Instant::now(), errors);
        }
        if published.elapsed() >= publish_every {
            publish(&mut driver, transport);
            published = Instant::now();
        }
        if let Some(telemetry) = telemetry.as_mut().filter(|t| t.due()) {
            // The last published report: at most `publish_every` old.
            let report = shared.report.lock().ok().and_then(|r| *r);
            if let Some(report) = report {
                telemetry.send(&report, transport);
            }
        }
        if resolved.elapsed() >= resolve_every {
            match transport.maintain() {
                Ok(Some(change)) => log::info!("stats: {change}"),
                Ok(None) => {}
                Err(e) => log::warn!("stats: {}: {e}", transport.describe()),
            }
            resolved = Instant::now();
        }
        match next {
            Some(t) if t <= now => thread::yield_now(),
            Some(t) => thread::park_timeout(tick.min(Duration::from_nanos(t - now))),
            None => thread::park_timeout(tick),
        }
    }
    let report = publish(&mut driver, transport);
    log::info!("stats: shut down; {}", driver.summary());
    let mut state = shared.control.lock();
    state.final_report = Some(report);
    state.finished = true;
    shared.control.changed.notify_all();
}
