//! How distributions leave as histograms: `le` boundaries configured per
//! metric name, and whether remote write sends native histograms. The
//! rendering itself, and the boundaries chosen when none are configured,
//! are the core's (`stats_core::prometheus`), shared with the client's
//! endpoint.

use std::collections::BTreeMap;

/// How distributions are exported as histograms.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Histograms {
    /// `le` boundaries by metric name as sent (ascending, in the exported
    /// unit: seconds for timers). A bucket of the recording scheme counts
    /// under a boundary when its upper edge is at or below it, so a
    /// boundary that is not a power of `2^(1/16)` is exact to within the
    /// bucket it cuts (2.2%).
    pub buckets: BTreeMap<String, Vec<f64>>,
    /// Whether remote write sends native histograms (sparse exponential
    /// buckets) instead of classic `le` buckets.
    pub native: bool,
}
