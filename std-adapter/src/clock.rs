//! The pipeline's clock: nanoseconds since the Unix epoch, counted
//! monotonically from the moment the pipeline started, and a coarse copy
//! the worker refreshes (about every millisecond) so recording reads one
//! atomic instead of calling `clock_gettime`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Monotonic epoch-based time, precise and coarse.
#[derive(Debug)]
pub(crate) struct Clock {
    started: Instant,
    /// Unix time at `started`, ns.
    epoch: u64,
    coarse: AtomicU64,
}

impl Clock {
    pub(crate) fn new() -> Self {
        let epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Clock {
            started: Instant::now(),
            epoch,
            coarse: AtomicU64::new(epoch),
        }
    }

    /// The precise time now, ns.
    pub(crate) fn now(&self) -> u64 {
        self.epoch + self.started.elapsed().as_nanos() as u64
    }

    /// Reads the precise time and publishes it as the coarse time.
    pub(crate) fn refresh(&self) -> u64 {
        let now = self.now();
        self.coarse.store(now, Ordering::Relaxed);
        now
    }

    /// The coarse time: at most one worker tick old.
    #[inline]
    pub(crate) fn coarse(&self) -> u64 {
        self.coarse.load(Ordering::Relaxed)
    }

    /// The coarse time in ms since the start, for least-recently-used marks.
    #[inline]
    pub(crate) fn coarse_ms(&self) -> u32 {
        ((self.coarse() - self.epoch) / 1_000_000) as u32
    }

    /// `(started, epoch)` for transports that time their sends.
    pub(crate) fn origin(&self) -> (Instant, u64) {
        (self.started, self.epoch)
    }
}
