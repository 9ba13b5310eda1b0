//! What `/health` judges: the counts its rates are made of, over a window
//! of the last [`HEALTH_WINDOW`] ticks.

/// Ticks (seconds, as the server ticks) that health looks back over.
pub const HEALTH_WINDOW: usize = 60;

/// Fewer datagrams than this in the window are too few to judge a rate
/// by: a fresh collector's first two datagrams are not a 100% rate.
pub(crate) const HEALTH_MIN_DATAGRAMS: u64 = 100;

/// What health's rates are made of, counted since the start.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct HealthCounts {
    pub(crate) lost: u64,
    pub(crate) received: u64,
    pub(crate) invalid: u64,
    pub(crate) valid: u64,
}

impl HealthCounts {
    /// Adds `other`'s counts in.
    pub(crate) fn add(&mut self, other: HealthCounts) {
        self.lost += other.lost;
        self.received += other.received;
        self.invalid += other.invalid;
        self.valid += other.valid;
    }
}
