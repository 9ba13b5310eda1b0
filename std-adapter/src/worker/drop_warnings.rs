//! The warnings when events start being dropped and when they stop.

use stats_core::{DropCounters, DropEdge, DropMonitor, DropReason};
use std::time::{Duration, Instant};

/// How often the drop counters are looked at for the start and stop
/// warnings: one line at most per this long, and drops "stop" after this
/// long without one.
pub(super) const DROP_CHECK_EVERY: Duration = Duration::from_secs(1);

/// The warnings when events start being dropped and when they stop: one
/// line each, with the counts by reason, the counters looked at once every
/// [`DROP_CHECK_EVERY`].
pub(super) struct DropWarnings {
    pub(super) monitor: DropMonitor,
    pub(super) checked: Instant,
    /// The totals by reason at the last check, and when this episode of
    /// drops began (and the totals before it).
    pub(super) last: [usize; DropReason::ALL.len()],
    pub(super) episode: Option<(Instant, [usize; DropReason::ALL.len()])>,
}

impl DropWarnings {
    pub(super) fn new() -> Self {
        DropWarnings {
            monitor: DropMonitor::new(),
            checked: Instant::now(),
            last: [0; DropReason::ALL.len()],
            episode: None,
        }
    }

    /// Looks at `drops` if a check is due; logs an edge.
    pub(super) fn check(&mut self, drops: &DropCounters) {
        if self.checked.elapsed() < DROP_CHECK_EVERY {
            return;
        }
        self.checked = Instant::now();
        let now = DropReason::ALL.map(|r| drops.by_reason(r));
        match self.monitor.observe(drops.total()) {
            Some(DropEdge::Started { dropped }) => {
                log::warn!(
                    "stats: dropping events: {dropped} dropped in the last {:.0?} ({})",
                    DROP_CHECK_EVERY,
                    by_reason(&now, &self.last)
                );
                self.episode = Some((self.checked, self.last));
            }
            Some(DropEdge::Stopped { dropped }) => {
                if let Some((began, before)) = self.episode.take() {
                    log::warn!(
                        "stats: drops stopped: {dropped} events dropped over {:.1?} ({})",
                        began.elapsed().saturating_sub(DROP_CHECK_EVERY),
                        by_reason(&now, &before)
                    );
                }
            }
            None => {}
        }
        self.last = now;
    }
}

/// `reason count` for each reason that counted since `before` (the
/// counters wrap).
pub(super) fn by_reason(
    now: &[usize; DropReason::ALL.len()],
    before: &[usize; DropReason::ALL.len()],
) -> String {
    let parts: Vec<String> = DropReason::ALL
        .iter()
        .zip(now.iter().zip(before))
        .map(|(r, (n, b))| (r, n.wrapping_sub(*b)))
        .filter(|&(_, n)| n > 0)
        .map(|(r, n)| format!("{r} {n}"))
        .collect();
    parts.join(", ")
}
