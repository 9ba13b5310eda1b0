//! The pushed outputs: every export interval, StatsD sets closed, the
//! forwarder run, and remote-write and OTLP requests queued for each
//! destination.

use crate::outputs::forward::Forwarder;
use crate::outputs::push::Destination;
use crate::outputs::{otlp, remote_write};
use crate::shards::Shards;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
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
    /// One run: closes the StatsD sets' interval, takes a view of the
    /// shards a chunk of series at a time ([`Shards::view`]), then,
    /// with the lock let go, forwards and queues every series for each
    /// destination.
    fn run(&mut self, shards: &Shards) {
        shards.close_sets();
        if self.forwarder.is_none() && self.destinations.is_empty() {
            return;
        }
        let view = shards.view();
        let forwarded = self.forwarder.as_mut().map(|f| f.forward(&view));
        {
            let mut outward = shards.shared.outward();
            outward.forwarded = forwarded.or(outward.forwarded);
            outward.export_held = view.longest_hold();
        }
        if self.destinations.is_empty() {
            return;
        }
        let now = unix_ns();
        let wants = |output: &str| self.destinations.iter().any(|d| d.output == output);
        let remote_write = if wants("remote_write") {
            remote_write::requests(&view, &self.labels, (now / 1_000_000) as i64)
        } else {
            Vec::new()
        };
        let otlp = if wants("otlp") {
            otlp::requests(&view, &self.labels, self.started_ns, now)
        } else {
            Vec::new()
        };
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
    shards: Arc<Shards>,
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
        // Taking the view and building the requests take time in
        // proportion to the series: off the runtime's thread, so that the
        // senders and the HTTP endpoint go on.
        let c = shards.clone();
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
