//! The pipeline's clock: nanoseconds since the Unix epoch, counted
//! monotonically from the moment the pipeline started, and a coarse copy
//! the worker refreshes (about every millisecond) so recording reads one
//! atomic instead of calling `clock_gettime`.

use stats_core::CachePadded;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Monotonic epoch-based time, precise and coarse.
#[derive(Debug)]
pub(crate) struct Clock {
    started: Instant,
    /// Unix time at `started`, ns.
    epoch: u64,
    /// On a cache line of its own: every recording thread reads it.
    coarse: CachePadded<AtomicU64>,
}

/// How far the precise time runs ahead before the coarse copy is updated:
/// a worker polling in a tight loop would otherwise write the line every
/// few microseconds and make every recording thread miss its cache.
const COARSE_STEP_NS: u64 = 250_000;

impl Clock {
    pub(crate) fn new() -> Self {
        let epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Clock {
            started: Instant::now(),
            epoch,
            coarse: CachePadded(AtomicU64::new(epoch)),
        }
    }

    /// The precise time now, ns.
    pub(crate) fn now(&self) -> u64 {
        self.epoch + self.started.elapsed().as_nanos() as u64
    }

    /// Reads the precise time, and publishes it as the coarse time once
    /// that is [`COARSE_STEP_NS`] old.
    pub(crate) fn refresh(&self) -> u64 {
        let now = self.now();
        if now >= self.coarse() + COARSE_STEP_NS {
            self.coarse.store(now, Ordering::Relaxed);
        }
        now
    }

    /// The coarse time: at most one worker tick (`tick_ms`) plus
    /// [`COARSE_STEP_NS`] old.
    #[inline]
    pub(crate) fn coarse(&self) -> u64 {
        self.coarse.load(Ordering::Relaxed)
    }

    /// The coarse time since the start in units of 2^20 ns (about 1 ms; a
    /// shift, not a division), for least-recently-used marks.
    #[inline]
    pub(crate) fn coarse_ticks(&self) -> u32 {
        ((self.coarse() - self.epoch) >> 20) as u32
    }

    /// `(started, epoch)` for transports that time their sends.
    pub(crate) fn origin(&self) -> (Instant, u64) {
        (self.started, self.epoch)
    }
}
