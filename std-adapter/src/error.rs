//! Why a call did nothing: recording, flushing and shutting down,
//! starting.

use crate::keys::KeyError;
use stats_core::DropReason;
use stats_core::registry::RegistryError;
use std::fmt;

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
