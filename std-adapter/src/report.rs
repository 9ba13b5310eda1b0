//! What the pipeline reports about itself.

use crate::aggregation::AggregationStats;
use crate::keys::InternerStats;
use crate::socket_info::SocketInfo;
use stats_core::{AggregateTelemetry, TelemetrySnapshot};

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
