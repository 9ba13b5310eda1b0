//! The staging batch ([`Staging`]), borrowed apart from the encoder and
//! buffer, and the events drained into it from the lanes.

use crate::event::Event;
use crate::histogram::LogLinearHistogram;
use crate::lanes::Consumer;
use crate::ring::Storage;

/// The exporter's staging state, borrowed apart from its encoder and buffer
/// (which a datagram being built holds).
pub(super) struct Staging<'s, const BATCH: usize, const G: u32, const N: usize> {
    pub(super) batch: &'s mut heapless::Vec<Event, BATCH>,
    pub(super) oldest: &'s mut u64,
    pub(super) lane_latency: &'s LogLinearHistogram<G, N>,
}

impl<const BATCH: usize, const G: u32, const N: usize> Staging<'_, BATCH, G, N> {
    /// Moves up to `max` events (at most the batch's free room) from the
    /// lanes into the batch, recording each one's time in the lane.
    pub(super) fn drain<S: Storage<Event>, const SETS: usize>(
        self,
        consumer: &mut Consumer<'_, S, SETS>,
        now: u64,
        max: usize,
    ) {
        let Staging {
            batch,
            oldest,
            lane_latency,
        } = self;
        consumer.drain(max, |event| {
            *oldest = (*oldest).min(event.timestamp);
            lane_latency.record(now.saturating_sub(event.timestamp));
            // Cannot fail: callers ask for at most the free room.
            let _ = batch.push(event);
        });
    }
}
