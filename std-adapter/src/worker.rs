//! The worker thread: drives the core exporter over the UDP transport,
//! keeps the coarse clock fresh, publishes reports, and serves flush and
//! shutdown requests.

use crate::stats::{LifecycleError, Report, SETS, Shared, StartError};
use crate::udp::UdpTransport;
use stats_core::wire::EncoderConfig;
use stats_core::{
    AdaptiveConfig, BreakerConfig, Exporter, ExporterConfig, HealthThresholds,
    MAX_DATAGRAMS_PER_SEND, Pressure, TelemetrySnapshot,
};
use std::hash::{BuildHasher, Hasher};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How often a report is published.
const PUBLISH_EVERY: Duration = Duration::from_millis(100);
/// The health window.
const HEALTH_WINDOW: Duration = Duration::from_secs(10);
/// At most one send-error log line per this long.
const ERROR_LOG_EVERY: Duration = Duration::from_secs(10);

#[derive(Default)]
struct State {
    flush_requested: u64,
    flush_done: u64,
    shutdown_deadline: Option<Instant>,
    finished: bool,
    final_report: Option<Report>,
}

/// Requests to the worker and its answers.
#[derive(Default)]
pub(crate) struct Control {
    state: Mutex<State>,
    changed: Condvar,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Control {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wake_worker(&self) {
        if let Ok(t) = self.thread.lock()
            && let Some(t) = t.as_ref()
        {
            t.thread().unpark();
        }
    }

    /// Waits until `done` holds or `deadline` passes.
    fn wait(&self, deadline: Instant, done: impl Fn(&State) -> bool) -> bool {
        let mut state = self.lock();
        loop {
            if done(&state) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            state = self
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// Starts the worker; returns once it has built the exporter and socket.
pub(crate) fn spawn(shared: Arc<Shared>) -> Result<(), StartError> {
    let (tx, rx) = sync_channel(1);
    let worker = shared.clone();
    let join = thread::Builder::new()
        .name("stats-worker".into())
        .spawn(move || run(&worker, &tx))
        .map_err(StartError::Network)?;
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
        Err(_) => Err(StartError::Pipeline("the worker thread died".into())),
    }
}

pub(crate) fn flush(shared: &Shared, timeout: Duration) -> Result<(), LifecycleError> {
    let deadline = Instant::now() + timeout;
    let ticket = {
        let mut state = shared.control.lock();
        if state.finished || state.shutdown_deadline.is_some() {
            return Err(LifecycleError::ShutDown);
        }
        state.flush_requested += 1;
        state.flush_requested
    };
    shared.control.wake_worker();
    if shared
        .control
        .wait(deadline, |s| s.flush_done >= ticket || s.finished)
    {
        Ok(())
    } else {
        Err(LifecycleError::Timeout)
    }
}

pub(crate) fn shutdown(shared: &Shared, timeout: Duration) -> Result<Report, LifecycleError> {
    let deadline = Instant::now() + timeout;
    shared
        .stopped
        .store(true, std::sync::atomic::Ordering::Relaxed);
    {
        let mut state = shared.control.lock();
        if state.shutdown_deadline.is_none() {
            state.shutdown_deadline = Some(deadline);
        }
    }
    shared.control.wake_worker();
    // A little grace past the deadline for the worker's final report.
    if !shared
        .control
        .wait(deadline + Duration::from_millis(100), |s| s.finished)
    {
        return Err(LifecycleError::Timeout);
    }
    if let Ok(mut join) = shared.control.thread.lock()
        && let Some(join) = join.take()
    {
        let _ = join.join();
    }
    shared
        .control
        .lock()
        .final_report
        .ok_or(LifecycleError::ShutDown)
}

fn random_sender_id() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.finish()
}

fn exporter_config(shared: &Shared) -> ExporterConfig {
    let c = &shared.config;
    let sender = random_sender_id();
    let mut config = ExporterConfig::new(sender)
        .with_batch_size(c.batch_size)
        .with_max_batch_age_ns(c.max_batch_age_ms.saturating_mul(1_000_000))
        .with_breaker(BreakerConfig::new(
            c.breaker_failures,
            c.breaker_open_ms.saturating_mul(1_000_000),
        ))
        .with_encoder(
            EncoderConfig::new(sender)
                .with_max_datagram(c.max_datagram)
                .with_codec(c.codec),
        )
        .with_max_memory_bytes((c.max_memory_mb << 20).saturating_sub(shared.keys.memory_bytes()));
    if c.adaptive_batching {
        config = config.with_adaptive(AdaptiveConfig::DEFAULT);
    }
    config
}

fn run(shared: &Shared, started: &SyncSender<Result<(), StartError>>) {
    let config = &shared.config;
    let lanes = shared.lanes.clone();
    let Some(consumer) = lanes.consumer() else {
        let _ = started.send(Err(StartError::Pipeline("lanes already consumed".into())));
        return;
    };
    let mut on_pressure = |p: Pressure| {
        log::warn!(
            "stats: memory pressure {} (lanes {}% full)",
            p.level.as_str(),
            p.utilization_percent
        );
    };
    let mut buf = vec![0u8; MAX_DATAGRAMS_PER_SEND * config.max_datagram];
    let mut exporter: Exporter<'_, _, SETS, { crate::BATCH_CAPACITY }> =
        match Exporter::new(consumer, &mut buf, exporter_config(shared)) {
            Ok(e) => e,
            Err(e) => {
                let _ = started.send(Err(StartError::Pipeline(e.to_string())));
                return;
            }
        };
    exporter.on_pressure(&mut on_pressure);
    let mut transport = match UdpTransport::connect(
        &config.udp_address,
        config.max_datagram,
        config.send_buffer_bytes,
        shared.clock.origin(),
    ) {
        Ok(t) => t,
        Err(e) => {
            let _ = started.send(Err(StartError::Network(e)));
            return;
        }
    };
    let health = HealthThresholds::DEFAULT;
    let mut window: (Instant, Option<TelemetrySnapshot>) = (Instant::now(), None);
    let mut published = Instant::now();
    let mut resolved = Instant::now();
    let mut errors_logged = (Instant::now(), 0u64);
    let resolve_every = Duration::from_secs(config.resolve_interval_s);
    let tick = Duration::from_millis(config.tick_ms);
    let mut publish = |exporter: &mut Exporter<'_, _, SETS, { crate::BATCH_CAPACITY }>,
                       transport: &UdpTransport| {
        let snapshot = exporter.snapshot();
        if window.0.elapsed() >= HEALTH_WINDOW || window.1.is_none() {
            window = (Instant::now(), Some(snapshot));
        }
        let report = Report {
            snapshot,
            interner: shared.keys.stats(),
            socket: transport.info(),
            rejected: shared.rejected(),
            health: snapshot.health(window.1.as_ref(), &health),
        };
        if let Ok(mut r) = shared.report.lock() {
            *r = Some(report);
        }
        report
    };
    // A report from the start, so the endpoint and `report()` have one as
    // soon as `Stats::start` returns.
    publish(&mut exporter, &transport);
    if started.send(Ok(())).is_err() {
        return;
    }
    loop {
        let now = shared.clock.refresh();
        let next = {
            let keys = shared.keys.reader();
            exporter.poll(now, &mut transport, &keys)
        };
        let (flush_to, deadline) = {
            let s = shared.control.lock();
            (
                (s.flush_requested > s.flush_done).then_some(s.flush_requested),
                s.shutdown_deadline,
            )
        };
        if flush_to.is_some() || deadline.is_some() {
            let keys = shared.keys.reader();
            let drained = exporter.flush(shared.clock.refresh(), &mut transport, &keys);
            drop(keys);
            if let (true, Some(ticket)) = (drained, flush_to) {
                // The caller's next report includes everything it flushed.
                publish(&mut exporter, &transport);
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
        let errors = exporter.telemetry().send_errors;
        if errors > errors_logged.1 && errors_logged.0.elapsed() >= ERROR_LOG_EVERY {
            log::warn!(
                "stats: {} datagrams failed to send to {} (breaker {:?})",
                errors - errors_logged.1,
                transport.peer(),
                exporter.breaker().state()
            );
            errors_logged = (Instant::now(), errors);
        }
        if published.elapsed() >= PUBLISH_EVERY {
            publish(&mut exporter, &transport);
            published = Instant::now();
        }
        if resolved.elapsed() >= resolve_every {
            match transport.re_resolve(config.send_buffer_bytes) {
                Ok(true) => log::info!(
                    "stats: {} now resolves to {}",
                    config.udp_address,
                    transport.peer()
                ),
                Ok(false) => {}
                Err(e) => log::warn!("stats: re-resolving {}: {e}", config.udp_address),
            }
            resolved = Instant::now();
        }
        match next {
            Some(t) if t <= now => thread::yield_now(),
            Some(t) => thread::park_timeout(tick.min(Duration::from_nanos(t - now))),
            None => thread::park_timeout(tick),
        }
    }
    let report = publish(&mut exporter, &transport);
    let s = &report.snapshot;
    log::info!(
        "stats: shut down; received {} sent {} in {} datagrams, dropped {}, send-failed {}, refused {}, still buffered {}",
        s.events_received,
        s.counters.events_sent,
        s.counters.datagrams_sent,
        s.drops.total(),
        s.counters.events_send_failed,
        s.counters.events_refused,
        s.buffered()
    );
    let mut state = shared.control.lock();
    state.final_report = Some(report);
    state.finished = true;
    shared.control.changed.notify_all();
}
