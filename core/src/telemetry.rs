//! What the pipeline did with the events it was given, as counters and a
//! [`TelemetrySnapshot`] adapters export and judge health on.
//!
//! At any moment, for the events the exporter has drained:
//!
//! ```text
//! drained = events_sent + events_send_failed + events_refused + staged
//! ```
//!
//! and with the lanes' own counts, the pipeline's conservation law, which
//! [`TelemetrySnapshot::is_conserved`] checks:
//!
//! ```text
//! received = events_sent + events_send_failed + events_refused
//!          + lane drops (all reasons) + still in lanes + staged
//! ```

use crate::batcher::Level;
use crate::circuit_breaker::{BreakerState, BreakerTransitions};
use crate::drop_policy::{DropCounters, DropReason};
use crate::event::Priority;
use crate::health::{Health, HealthThresholds, Measurements, evaluate};
use crate::histogram::{LogLinearHistogram, bucket_count};

/// The exporter's counters (single writer: the exporter; copy it to export).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct Telemetry {
    /// Events in datagrams the transport accepted.
    pub events_sent: u64,
    /// Events in datagrams the transport refused (lost, counted).
    pub events_send_failed: u64,
    /// Events the encoder refused: too large for any datagram, or no key.
    pub events_refused: u64,
    /// Datagrams the transport accepted.
    pub datagrams_sent: u64,
    /// Bytes in those datagrams.
    pub bytes_sent: u64,
    /// Failed sends (datagrams).
    pub send_errors: u64,
    /// Bytes in the datagrams that failed to send.
    pub bytes_send_failed: u64,
    /// Sends the transport turned away as busy (would block); the datagram
    /// waited for the next poll.
    pub send_would_block: u64,
    /// Calls to the transport (one may carry several datagrams).
    pub send_calls: u64,
    /// Batches flushed.
    pub batches: u64,
    /// Events in those batches (with `batches`, the mean batch size).
    pub batch_events: u64,
}

/// Histogram of small counts (events per batch): exact below 8, then
/// buckets 25% wide (12.5% error) up to 65,536; 244 bytes (a microcontroller
/// keeps one in RAM).
pub type CountHistogram = LogLinearHistogram<2, { bucket_count(2, 16) }>;

/// A 64-bit running total of a wrapping `usize` counter that started at 0,
/// kept by reading the counter at least once per wrap. The counter is the
/// total's low bits, so the total alone remembers the last reading (and
/// zero-initialises in one `memset`).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Widened {
    total: u64,
}

impl Widened {
    /// Takes in the counter's value `now`; the total since the start.
    pub(crate) fn update(&mut self, now: usize) -> u64 {
        let last = self.total as usize;
        self.total = self.total.wrapping_add(now.wrapping_sub(last) as u64);
        self.total
    }
}

/// Drop totals by reason and priority.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Drops {
    counts: [[u64; 3]; 5],
}

impl Drops {
    /// Events dropped for `reason` that had `priority`.
    pub fn get(&self, reason: DropReason, priority: Priority) -> u64 {
        self.counts[reason as usize][priority.index()]
    }

    /// Events dropped for `reason`, all priorities.
    pub fn by_reason(&self, reason: DropReason) -> u64 {
        self.counts[reason as usize].iter().sum()
    }

    /// Events of `priority` dropped, all reasons.
    pub fn by_priority(&self, priority: Priority) -> u64 {
        self.counts.iter().map(|r| r[priority.index()]).sum()
    }

    /// Every drop.
    pub fn total(&self) -> u64 {
        self.counts.iter().flatten().sum()
    }

    /// Drops of events that never entered a lane (refused or sampled out),
    /// as opposed to queued events evicted later.
    pub fn at_entry(&self) -> u64 {
        self.by_reason(DropReason::LaneFull)
            + self.by_reason(DropReason::Sampled)
            + self.by_reason(DropReason::CircuitOpen)
    }
}

/// 64-bit totals of the lanes' wrapping drop counters.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct WideDrops {
    counts: [[Widened; 3]; 5],
}

impl WideDrops {
    /// Takes in `drops` as they are now; the totals since the start.
    pub(crate) fn update(&mut self, drops: &DropCounters) -> Drops {
        let mut out = Drops::default();
        for reason in DropReason::ALL {
            for priority in Priority::ALL {
                let (r, p) = (reason as usize, priority.index());
                out.counts[r][p] = self.counts[r][p].update(drops.get(reason, priority));
            }
        }
        out
    }
}

/// One priority's lanes, all sets together.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LaneStats {
    /// Events waiting now.
    pub len: usize,
    /// The most seen waiting, sampled by the exporter before each drain
    /// (when the lanes are fullest) and at each snapshot.
    pub peak: usize,
    /// Slots.
    pub capacity: usize,
}

impl LaneStats {
    /// `len` as a percentage of `capacity`.
    pub fn utilization_percent(&self) -> f64 {
        percent(self.len, self.capacity)
    }
}

fn percent(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// A histogram's count and quantiles (each within the histogram's error
/// bound).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Quantiles {
    /// Values recorded.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest (its bucket's midpoint).
    pub max: u64,
}

impl Quantiles {
    /// The quantiles of `histogram`, or `None` if it is empty.
    pub fn of<const G: u32, const N: usize>(
        histogram: &LogLinearHistogram<G, N>,
    ) -> Option<Quantiles> {
        let s = histogram.snapshot();
        Some(Quantiles {
            count: s.count(),
            p50: s.percentile(0.5)?,
            p90: s.percentile(0.9)?,
            p99: s.percentile(0.99)?,
            p999: s.percentile(0.999)?,
            max: s.percentile(1.0)?,
        })
    }
}

/// Everything the telemetry knows at one moment, as plain numbers: what an
/// adapter exports (Prometheus, a log line, defmt) and judges health on.
/// Take one with [`Exporter::snapshot`](crate::Exporter::snapshot).
///
/// Counters are totals since the exporter was made; latency quantiles cover
/// everything since the histograms were made or last reset.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct TelemetrySnapshot {
    /// Events given to the lanes: accepted, or dropped at entry.
    pub events_received: u64,
    /// The exporter's counters.
    pub counters: Telemetry,
    /// Lane drops by reason and priority.
    pub drops: Drops,
    /// Lanes by [`Priority::index`].
    pub lanes: [LaneStats; 3],
    /// Events drained but not yet sent (staged, or in encoded datagrams
    /// waiting for the breaker).
    pub staged: u64,
    /// The breaker's state.
    pub breaker: BreakerState,
    /// The breaker's transitions so far.
    pub breaker_transitions: BreakerTransitions,
    /// Time in the lanes (record to drain), ns.
    pub lane_latency: Option<Quantiles>,
    /// Duration of each transport call, ns (when the transport has a clock).
    pub send_latency: Option<Quantiles>,
    /// Record to encoded for the transport, ns.
    pub end_to_end_latency: Option<Quantiles>,
    /// Events per flushed batch.
    pub batch_size: Option<Quantiles>,
    /// Bytes of lanes, exporter and datagram buffer.
    pub memory_bytes: usize,
    /// The configured memory maximum.
    pub memory_max_bytes: usize,
    /// Memory pressure: lane utilization band.
    pub pressure: Level,
}

impl TelemetrySnapshot {
    /// Events still in the pipeline: in the lanes or staged.
    pub fn buffered(&self) -> u64 {
        self.lanes.iter().map(|l| l.len as u64).sum::<u64>() + self.staged
    }

    /// Events that left the pipeline: sent, lost to a failed send, refused
    /// by the encoder, or dropped from the lanes.
    pub fn accounted(&self) -> u64 {
        let c = &self.counters;
        c.events_sent + c.events_send_failed + c.events_refused + self.drops.total()
    }

    /// Whether `received = accounted + buffered`. Exact when no producer is
    /// pushing while the snapshot is taken (the counters are read one after
    /// another).
    pub fn is_conserved(&self) -> bool {
        self.events_received == self.accounted() + self.buffered()
    }

    /// Events waiting as a percentage of all lane slots.
    pub fn lane_utilization_percent(&self) -> f64 {
        let len = self.lanes.iter().map(|l| l.len).sum();
        let capacity = self.lanes.iter().map(|l| l.capacity).sum();
        percent(len, capacity)
    }

    /// What health is judged on: counter differences since `earlier` (or
    /// since the start), utilization and breaker now, p99 end-to-end latency
    /// of the histogram.
    pub fn measurements(&self, earlier: Option<&TelemetrySnapshot>) -> Measurements {
        let zero = Telemetry::default();
        let (received, drops, before) = match earlier {
            Some(e) => (e.events_received, e.drops.total(), &e.counters),
            None => (0, 0, &zero),
        };
        let c = &self.counters;
        let errors = c.send_errors.saturating_sub(before.send_errors);
        Measurements {
            lane_utilization_percent: self.lane_utilization_percent(),
            events_recorded: self.events_received.saturating_sub(received),
            events_dropped: self.drops.total().saturating_sub(drops),
            sends: c.datagrams_sent.saturating_sub(before.datagrams_sent) + errors,
            send_errors: errors,
            p99_latency_ns: self.end_to_end_latency.map(|q| q.p99),
            breaker_open: matches!(self.breaker, BreakerState::Open { .. }),
        }
    }

    /// Health over the window since `earlier` (or since the start).
    pub fn health(
        &self,
        earlier: Option<&TelemetrySnapshot>,
        thresholds: &HealthThresholds,
    ) -> Health {
        evaluate(&self.measurements(earlier), thresholds)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn widened_counts_across_a_wrap() {
        let mut w = Widened::default();
        assert_eq!(w.update(7), 7);
        // A counter about to wrap, read again after it did.
        let mut w = Widened::default();
        let start = usize::MAX - 2;
        assert_eq!(w.update(start), start as u64);
        assert_eq!(w.update(usize::MAX), start as u64 + 2);
        // Past 2^32 where `usize` is 32 bits (a 64-bit counter never wraps).
        let wrapped = (start as u64).wrapping_add(8);
        assert_eq!(w.update(5), wrapped);
        assert_eq!(w.update(5), wrapped);
        assert_eq!(wrapped as usize, 5);
    }

    #[test]
    fn quantiles_of_an_empty_histogram_are_none() {
        let h = CountHistogram::new();
        assert_eq!(Quantiles::of(&h), None);
        for v in 1..=100 {
            h.record(v);
        }
        let q = Quantiles::of(&h).unwrap();
        assert_eq!(q.count, 100);
        // Within the 12.5% error.
        assert!((44..=57).contains(&q.p50), "{q:?}");
        assert!((88..=113).contains(&q.max), "{q:?}");
        assert_eq!(core::mem::size_of::<CountHistogram>(), 4 * 61);
        // A histogram of no buckets records nothing.
        let off: crate::LogLinearHistogram<2, 0> = crate::LogLinearHistogram::new();
        off.record(5);
        assert_eq!(Quantiles::of(&off), None);
        assert_eq!(core::mem::size_of_val(&off), 4);
    }
}
