//! The worker thread: drives the core's exporter (of events, or of
//! aggregated totals) over its [`transport`], keeps the coarse clock
//! fresh, publishes reports, and serves flush and shutdown requests.

use crate::client_telemetry::ClientTelemetry;
use crate::error::StartError;
use crate::lanes::StdLanes;
use crate::shared::{Pipeline, Shared};
use crate::transport::{self, Address, ClientTransport};
use driver::{Driver, Window};
use drop_warnings::DropWarnings;
use events::Events;
use lines::Lines;
use setup::{breaker, container_id, encoder, exporter_config, random_sender_id};
use stats_core::wire::Codec;
use stats_core::wire::deltas::Deltas;
use stats_core::wire::packer::Packer;
use stats_core::{
    AggregateExporter, AggregateExporterConfig, AggregateTelemetry, CircuitBreaker, Exporter,
    MAX_DATAGRAMS_PER_SEND, Pressure,
};
use std::sync::Arc;
use std::sync::mpsc::{SyncSender, sync_channel};
use std::thread;
use std::time::{Duration, Instant};
use totals::Totals;

mod driver;
mod drop_warnings;
mod events;
mod lines;
mod setup;
mod totals;

/// How often a report is published.
const PUBLISH_EVERY: Duration = Duration::from_millis(100);

/// At most one send-error log line per this long.
const ERROR_LOG_EVERY: Duration = Duration::from_secs(10);

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
