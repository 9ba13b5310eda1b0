//! A consumer's drain in chunks: items claimed, copied out and their
//! slots released before the sink sees them.

/// Items a consumer copies out of a ring per claim, on the stack: 64 where
/// pointers are 64 bits; 16 on smaller targets, whose stacks are small (on
/// Cortex-M the exporter's drain frame is 0.5 KB instead of 1.7 KB), and
/// whose consumer pays one compare-and-swap per 16 events instead of 64.
pub(crate) const CHUNK: usize = if usize::BITS > 32 { 64 } else { 16 };

/// A claim's worth of items, copied out of the ring.
pub(crate) type Chunk<T> = heapless::Vec<T, CHUNK>;

/// Takes up to `max` items through `claim` (which fills a chunk of at most
/// the number asked for) and hands each to `sink`, oldest first. Items are
/// copied out and their slots released *before* `sink` sees them, so a sink
/// that panics cannot leave claimed slots behind: the ring stays consistent.
/// Returns how many were taken; fewer than `max` means the ring ran dry (or
/// reached a slot not yet published).
#[inline]
pub(super) fn drain_chunks<T: Copy>(
    max: usize,
    mut sink: impl FnMut(T),
    mut claim: impl FnMut(usize, &mut Chunk<T>),
) -> usize {
    let mut taken = 0;
    let mut chunk = Chunk::new();
    while taken < max {
        let want = (max - taken).min(CHUNK);
        chunk.clear();
        claim(want, &mut chunk);
        let n = chunk.len();
        taken += n;
        for &item in &chunk {
            sink(item);
        }
        if n < want {
            break;
        }
    }
    taken
}
