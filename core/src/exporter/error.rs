//! Why an exporter could not be made ([`ExporterError`]).

use crate::wire::EncodeError;
use core::fmt;

/// Why an exporter could not be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ExporterError {
    /// `batch_size` (or an adaptive size) is 0 or more than the staging
    /// capacity.
    BatchSize {
        /// The size given.
        got: usize,
        /// The staging capacity (the `BATCH` parameter).
        max: usize,
    },
    /// The encoder configuration or buffer is unusable.
    Encoder(EncodeError),
    /// Lanes, exporter and buffer together exceed `max_memory_bytes`.
    MemoryBudget {
        /// Bytes they need.
        needed: usize,
        /// The configured maximum.
        max: usize,
    },
}

impl fmt::Display for ExporterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ExporterError::BatchSize { got, max } => {
                write!(f, "batch size must be 1..={max}, got {got}")
            }
            ExporterError::Encoder(e) => write!(f, "encoder: {e}"),
            ExporterError::MemoryBudget { needed, max } => write!(
                f,
                "lanes, exporter and buffer need {needed} bytes, more than the maximum of {max}"
            ),
        }
    }
}

impl core::error::Error for ExporterError {}
