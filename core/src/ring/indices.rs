//! A ring's head and tail ([`Indices`]) and the shared protocol: stamped
//! pushes by any producer, pops and evictions from the head.

use super::drain::{Chunk, drain_chunks};
use super::lane::Lane;
use super::slot::{RANK_MASK, Slot, distance, free, published};
use super::storage::CapacityError;
use crate::sync::{AtomicUsize, CachePadded, Ordering};
use core::mem::MaybeUninit;

/// Head and tail of one ring, kept apart from its slots so that several rings
/// (the lanes) can share one storage. All ring logic lives here.
pub(crate) struct Indices {
    /// Position of the next pop. Only grows; the slot is `head & mask`.
    pub(super) head: CachePadded<AtomicUsize>,
    /// Position of the next push. Only grows; equals the number of pushes.
    pub(super) tail: CachePadded<AtomicUsize>,
    /// Owned rings only: every position below `done` has been read by the
    /// consumer (or evicted), so its slot may be written again.
    pub(super) done: CachePadded<AtomicUsize>,
}

impl Indices {
    #[cfg(not(loom))]
    pub(crate) const fn new() -> Self {
        Indices {
            head: CachePadded(AtomicUsize::new(0)),
            tail: CachePadded(AtomicUsize::new(0)),
            done: CachePadded(AtomicUsize::new(0)),
        }
    }

    #[cfg(loom)]
    pub(crate) fn new() -> Self {
        Indices {
            head: CachePadded(AtomicUsize::new(0)),
            tail: CachePadded(AtomicUsize::new(0)),
            done: CachePadded(AtomicUsize::new(0)),
        }
    }

    /// Checks a slot count and stamps the slots as free for the first lap.
    pub(crate) fn init<T>(slots: &[Slot<T>]) -> Result<(), CapacityError> {
        let len = slots.len();
        if len < 2 || !len.is_power_of_two() {
            return Err(CapacityError { len });
        }
        for (i, slot) in slots.iter().enumerate() {
            slot.stamp.store(free(i), Ordering::Relaxed);
        }
        Ok(())
    }

    pub(crate) fn len(&self, capacity: usize) -> usize {
        let head = self.head.load(Ordering::Relaxed);
        let tail = self.tail.load(Ordering::Relaxed);
        // The two loads are not ordered with each other: a stale `tail` can
        // be behind `head`, which means empty, not a wrapped-around huge length.
        match tail.wrapping_sub(head) as isize {
            n if n <= 0 => 0,
            n => (n as usize).min(capacity),
        }
    }

    /// Whether the slot at `head` holds a published item: the cheap check a
    /// consumer makes before [`Indices::pop_batch`] on a lane that is
    /// usually empty. May be stale by the time it returns.
    #[inline]
    pub(crate) fn ready<T>(&self, lane: Lane<'_, T>) -> bool {
        let head = self.head.load(Ordering::Relaxed);
        distance(
            lane.slot(head).stamp.load(Ordering::Relaxed),
            published(head),
        ) == 0
    }

    pub(crate) fn pushed(&self) -> usize {
        self.tail.load(Ordering::Relaxed)
    }

    pub(crate) fn popped(&self) -> usize {
        self.head.load(Ordering::Relaxed)
    }

    #[inline]
    pub(crate) fn try_push<T: Copy>(&self, lane: Lane<'_, T>, value: T, rank: u8) -> Result<(), T> {
        let rank = usize::from(rank) & RANK_MASK;
        let mut pos = self.tail.load(Ordering::Relaxed);
        loop {
            let slot = lane.slot(pos);
            // Acquire: pairs with the consumer's Release when it freed the
            // slot, so our write below cannot overtake its read.
            let stamp = slot.stamp.load(Ordering::Acquire);
            let d = distance(stamp, free(pos));
            if d == 0 {
                match self.tail.compare_exchange_weak(
                    pos,
                    pos.wrapping_add(1),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        slot.value.with_mut(|cell| {
                            // SAFETY: winning the CAS on `tail` for `pos` gave
                            // this thread the slot; its stamp says it is free,
                            // so no consumer reads it until we publish below.
                            unsafe { cell.write(MaybeUninit::new(value)) }
                        });
                        // Release: the value is visible before the stamp says so.
                        slot.stamp.store(published(pos) | rank, Ordering::Release);
                        return Ok(());
                    }
                    Err(current) => pos = current,
                }
            } else if d < 0 {
                // The slot still holds (or is handing out) the item from the
                // previous lap: the ring is full.
                return Err(value);
            } else {
                // Another producer took `pos`; try the newest tail.
                pos = self.tail.load(Ordering::Relaxed);
            }
        }
    }

    /// Takes the oldest item if `take` accepts its rank.
    #[inline]
    pub(crate) fn pop_where<T: Copy>(
        &self,
        lane: Lane<'_, T>,
        take: impl Fn(u8) -> bool,
    ) -> Option<T> {
        let mut pos = self.head.load(Ordering::Relaxed);
        loop {
            let slot = lane.slot(pos);
            // Acquire: pairs with the producer's Release publish.
            let stamp = slot.stamp.load(Ordering::Acquire);
            let d = distance(stamp, published(pos));
            if d == 0 {
                if !take((stamp & RANK_MASK) as u8) {
                    return None;
                }
                match self.head.compare_exchange_weak(
                    pos,
                    pos.wrapping_add(1),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return Some(Self::take(lane, pos)),
                    Err(current) => pos = current,
                }
            } else if d < 0 {
                // Empty, or the producer of this slot has not published yet:
                // do not wait for it.
                return None;
            } else {
                pos = self.head.load(Ordering::Relaxed);
            }
        }
    }

    /// Reads the value at `pos`, which this thread claimed through `head`,
    /// and frees the slot for the next lap.
    #[inline]
    fn take<T: Copy>(lane: Lane<'_, T>, pos: usize) -> T {
        let slot = lane.slot(pos);
        let value = slot.value.with(|cell| {
            // SAFETY: winning the CAS on `head` for `pos` gave this thread the
            // slot; its stamp said published, and the Acquire load that saw it
            // makes the producer's write visible. `T: Copy`, so reading leaves
            // nothing to drop.
            unsafe { (*cell).assume_init() }
        });
        // Release: our read happens before a producer's next write.
        slot.stamp
            .store(free(pos.wrapping_add(lane.capacity())), Ordering::Release);
        value
    }

    /// Takes up to `max` published items, oldest first, and hands each to
    /// `sink`. See [`drain_chunks`].
    #[inline]
    pub(crate) fn pop_batch<T: Copy>(
        &self,
        lane: Lane<'_, T>,
        max: usize,
        sink: impl FnMut(T),
    ) -> usize {
        drain_chunks(max, sink, |want, chunk| self.claim_chunk(lane, want, chunk))
    }

    /// Claims up to `want` (at most [`CHUNK`]) published items with one
    /// compare-and-swap, copies them into `chunk` and frees their slots.
    ///
    /// [`CHUNK`]: super::drain::CHUNK
    fn claim_chunk<T: Copy>(&self, lane: Lane<'_, T>, want: usize, chunk: &mut Chunk<T>) {
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            // Acquire (here and below): pairs with the producer's Release publish.
            let first = lane.slot(head).stamp.load(Ordering::Acquire);
            let d = distance(first, published(head));
            if d < 0 {
                // Empty, or not yet published: do not wait.
                return;
            }
            if d > 0 {
                // Someone else took the slot at `head`; start over.
                head = self.head.load(Ordering::Relaxed);
                continue;
            }
            let mut n = 1;
            while n < want {
                let pos = head.wrapping_add(n);
                let stamp = lane.slot(pos).stamp.load(Ordering::Acquire);
                if distance(stamp, published(pos)) != 0 {
                    break;
                }
                n += 1;
            }
            match self.head.compare_exchange_weak(
                head,
                head.wrapping_add(n),
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    for i in 0..n {
                        // Cannot fail: n <= want <= CHUNK.
                        let _ = chunk.push(Self::take(lane, head.wrapping_add(i)));
                    }
                    return;
                }
                Err(current) => head = current,
            }
        }
    }
}
