//! Counters of what the exporter did with the events it took from the lanes.
//!
//! At any moment, for the events the exporter has drained:
//!
//! ```text
//! drained = events_sent + events_send_failed + events_refused + staged
//! ```
//!
//! and with the lanes' own counts, the pipeline's conservation law:
//!
//! ```text
//! recorded = events_sent + events_send_failed + events_refused
//!          + lane drops (all reasons) + still in lanes + staged
//! ```

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
    /// Failed sends.
    pub send_errors: u64,
    /// Batches flushed.
    pub batches: u64,
    /// Events in those batches (with `batches`, the mean batch size).
    pub batch_events: u64,
}
