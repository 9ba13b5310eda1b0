//! Why a table could not be made, a series added, or a value recorded.

use core::fmt;

/// Why an [`Aggregates`](super::Aggregates) table could not be made or a series added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum AggregatesError {
    /// The storage has fewer words than the table's fixed part needs.
    Storage {
        /// Words needed (at least).
        needed: usize,
        /// Words given.
        got: usize,
    },
    /// A bucket table size is not a power of two from 8, or a size is too
    /// large to address.
    Config,
    /// Every series slot is taken.
    Full {
        /// The table's capacity.
        capacity: usize,
    },
}

impl fmt::Display for AggregatesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            AggregatesError::Storage { needed, got } => write!(
                f,
                "aggregation storage has {got} words, the table needs at least {needed}"
            ),
            AggregatesError::Config => f.write_str(
                "bucket tables must be powers of two from 8, and sizes below 2^30 series",
            ),
            AggregatesError::Full { capacity } => {
                write!(f, "aggregation table full ({capacity} series)")
            }
        }
    }
}

impl core::error::Error for AggregatesError {}

/// A value a distribution cannot take: NaN or an infinity (counted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct NotFinite;

impl fmt::Display for NotFinite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a distribution takes finite values only")
    }
}

impl core::error::Error for NotFinite {}
