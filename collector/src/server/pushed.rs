//! The pushed outputs: every export interval, StatsD sets closed, the
//! forwarder run, and remote-write and OTLP requests queued for each
//! destination.

use crate::collector::Collector;
use crate::outputs::forward::Forwarder;
use crate::outputs::push::Destination;
use crate::outputs::{otlp, remote_write};
use crate::view::View;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

/// What runs every export interval.
pub(super) struct Outputs {
    pub(super) forwarder: Option<Forwarder>,
    pub(super) destinations: Vec<Arc<Destination>>,
    pub(super) labels: BTreeMap<String, String>,
    /// When the cumulative totals started (OTLP's start time).
    pub(super) started_ns: u64,
}

/// Nanoseconds since the Unix epoch.
pub(super) fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

impl Outputs {
    /// One run: forwards, and queues every series for each destination.
    fn run(&mut self, collector: &Mutex<Collector>) {
        let Ok(mut c) = collector.lock() else {
            return;
        };
        let held = Instant::now();
        c.close_sets();
        if let Some(f) = &mut self.forwarder {
            c.forwarded = Some(f.forward(&c));
        }
        if self.destinations.is_empty() {
            return;
        }
        let now = unix_ns();
        let wants = |output: &str| self.destinations.iter().any(|d| d.output == output);
        let remote_write = if wants("remote_write") {
            remote_write::requests(View::of(&c), &self.labels, (now / 1_000_000) as i64)
        } else {
            Vec::new()
        };
        let otlp = if wants("otlp") {
            otlp::requests(View::of(&c), &self.labels, self.started_ns, now)
        } else {
            Vec::new()
        };
        c.export_held = held.elapsed();
        drop(c);
        for d in &self.destinations {
            let requests = if d.output == "otlp" {
                &otlp
            } else {
                &remote_write
            };
            for r in requests {
                d.enqueue(r.clone());
            }
        }
    }
}

/// The pushed outputs: every `interval`, and once more when the server
/// stops; then waits for every destination's queue to be sent.
pub(super) async fn export(
    mut outputs: Outputs,
    collector: Arc<Mutex<Collector>>,
    interval: Duration,
    mut stopped: watch::Receiver<bool>,
) {
    let (drain, draining) = watch::channel(false);
    let senders: Vec<_> = outputs
        .destinations
        .iter()
        .map(|d| {
            let (d, draining) = (d.clone(), draining.clone());
            tokio::spawn(async move { d.run(draining).await })
        })
        .collect();
    let mut every = tokio::time::interval(interval);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every.tick().await;
    loop {
        let last = tokio::select! {
            _ = every.tick() => false,
            _ = stopped.changed() => true,
        };
        // Building the requests takes the state's lock and time in
        // proportion to the series (0.2 s at 100,000): off the runtime's
        // thread, so that the senders and the HTTP endpoint go on.
        let c = collector.clone();
        outputs = match tokio::task::spawn_blocking(move || {
            outputs.run(&c);
            outputs
        })
        .await
        {
            Ok(outputs) => outputs,
            Err(_) => break,
        };
        if last {
            break;
        }
    }
    // The last run is queued: the senders finish what is left and end.
    let _ = drain.send(true);
    for s in senders {
        let _ = s.await;
    }
}
