//! The pipeline's own counters as StatsD lines under the names datadog-go
//! sends (`datadog.dogstatsd.client.*`), so that a dashboard built for it
//! shows this client too (`client_telemetry`).
//!
//! Every [`EVERY`] (10 s, as datadog-go), to the pipeline's destination:
//! counts of what happened since the last time, tagged `client:rust`,
//! `client_version:`, `client_transport:` (`udp`, `uds` or `uds-stream`)
//! and the constant tags. Only what this pipeline counts goes:
//!
//! | name | what |
//! |---|---|
//! | `metrics` | values recorded |
//! | `metrics_by_type` (`metrics_type:count/gauge/timing/histogram`) | the same by kind (aggregating at the source) |
//! | `metric_dropped_on_receive` | values dropped before they were sent (full lanes) |
//! | `packets_sent`, `bytes_sent` | datagrams and bytes the socket took |
//! | `packets_dropped`, `packets_dropped_writer` | datagrams that failed to send |
//! | `bytes_dropped`, `bytes_dropped_writer` | their bytes |
//! | `aggregated_context` | series lines sent (aggregating at the source) |
//!
//! The telemetry's own datagrams are not counted in it.

use crate::report::Report;
use crate::transport::Address;
use stats_core::Kind;
use stats_core::wire::packer::Packer;
use stats_core::wire::statsd::Dialect;
use std::time::{Duration, Instant};

/// How often the counts go out.
pub(crate) const EVERY: Duration = Duration::from_secs(10);

/// The counts, as totals since the start.
#[derive(Clone, Copy, Default)]
struct Counts {
    metrics: u64,
    /// By kind, when aggregating at the source.
    by_type: Option<[u64; 4]>,
    dropped_on_receive: u64,
    packets_sent: u64,
    bytes_sent: u64,
    packets_dropped: u64,
    bytes_dropped: u64,
    /// When aggregating at the source.
    contexts: Option<u64>,
}

impl Counts {
    fn of(report: &Report) -> Counts {
        match &report.aggregation {
            Some(a) => Counts {
                metrics: a.stats.recorded.iter().sum(),
                by_type: Some(a.stats.recorded),
                dropped_on_receive: 0,
                packets_sent: a.sent.datagrams_sent,
                bytes_sent: a.sent.bytes_sent,
                packets_dropped: a.sent.send_errors,
                bytes_dropped: a.sent.bytes_send_failed,
                contexts: Some(a.sent.series_sent),
            },
            None => {
                let s = &report.snapshot;
                Counts {
                    metrics: s.events_received,
                    by_type: None,
                    dropped_on_receive: s.drops.total(),
                    packets_sent: s.counters.datagrams_sent,
                    bytes_sent: s.counters.bytes_sent,
                    packets_dropped: s.counters.send_errors,
                    bytes_dropped: s.counters.bytes_send_failed,
                    contexts: None,
                }
            }
        }
    }
}

/// datadog-go's `metrics_type` tag for each kind, in code order.
const TYPES: [&str; 4] = ["count", "gauge", "timing", "histogram"];

/// Sends the counts every [`EVERY`].
pub(crate) struct ClientTelemetry {
    tags: Vec<(String, String)>,
    packer: Packer,
    last: Counts,
    sent_at: Instant,
}

impl ClientTelemetry {
    /// Lines in `dialect` of at most `max_datagram` bytes, tagged with
    /// `constant` and the client's tags for a transport to `address`.
    pub(crate) fn new(
        dialect: Dialect,
        max_datagram: usize,
        container_id: &'static str,
        address: &Address,
        constant: Vec<(String, String)>,
    ) -> Self {
        let transport = match address {
            Address::Udp(_) => "udp",
            Address::UnixDatagram(_) => "uds",
            Address::UnixStream(_) => "uds-stream",
        };
        let mut tags = constant;
        tags.extend([
            ("client".to_string(), "rust".to_string()),
            (
                "client_version".to_string(),
                env!("CARGO_PKG_VERSION").to_string(),
            ),
            ("client_transport".to_string(), transport.to_string()),
        ]);
        ClientTelemetry {
            tags,
            packer: Packer::new(dialect, max_datagram, container_id),
            last: Counts::default(),
            sent_at: Instant::now(),
        }
    }

    /// Whether [`EVERY`] has passed since the last send.
    pub(crate) fn due(&self) -> bool {
        self.sent_at.elapsed() >= EVERY
    }

    /// Sends the counts since the last call, from `report`, to `transport`.
    pub(crate) fn send(&mut self, report: &Report, transport: &mut dyn crate::ClientTransport) {
        self.sent_at = Instant::now();
        let mut send = |datagram: &[u8], _lines: u64| {
            // A lost telemetry datagram is lost: it is not ours to count.
            let _ = transport.send(datagram);
        };
        self.lines(report, &mut send);
    }

    /// Hands the lines of the counts since the last call to `send`.
    fn lines(&mut self, report: &Report, send: &mut dyn FnMut(&[u8], u64)) {
        let now = Counts::of(report);
        let last = std::mem::replace(&mut self.last, now);
        let base = self.tags.clone();
        let mut line = |name: &str, delta: u64, kind: Option<&str>| {
            let tags = base
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .chain(kind.map(|t| ("metrics_type", t)));
            let name = format!("datadog.dogstatsd.client.{name}");
            // Counts of whole numbers below 2^53: always writable.
            let _ = self
                .packer
                .push(&name, tags, Kind::Counter, &[delta as f64], 1.0, send);
        };
        line("metrics", now.metrics.saturating_sub(last.metrics), None);
        if let Some(by_type) = now.by_type {
            let before = last.by_type.unwrap_or_default();
            for (i, name) in TYPES.iter().enumerate() {
                let delta = by_type[i].saturating_sub(before[i]);
                line("metrics_by_type", delta, Some(name));
            }
        }
        let dropped = now
            .dropped_on_receive
            .saturating_sub(last.dropped_on_receive);
        line("metric_dropped_on_receive", dropped, None);
        line(
            "packets_sent",
            now.packets_sent.saturating_sub(last.packets_sent),
            None,
        );
        line(
            "bytes_sent",
            now.bytes_sent.saturating_sub(last.bytes_sent),
            None,
        );
        let failed = now.packets_dropped.saturating_sub(last.packets_dropped);
        line("packets_dropped", failed, None);
        line("packets_dropped_writer", failed, None);
        let failed = now.bytes_dropped.saturating_sub(last.bytes_dropped);
        line("bytes_dropped", failed, None);
        line("bytes_dropped_writer", failed, None);
        if let Some(contexts) = now.contexts {
            let delta = contexts.saturating_sub(last.contexts.unwrap_or_default());
            line("aggregated_context", delta, None);
        }
        self.packer.flush(send);
    }
}
