//! Owned rings: one producer, the owner, pushes with a slot write and a
//! Release store; the consumer claims batches through `head`.

use super::drain::{Chunk, drain_chunks};
use super::indices::Indices;
use super::lane::Lane;
use crate::sync::Ordering;
use core::mem::MaybeUninit;

impl Indices {
    // --- Owned rings -------------------------------------------------------
    //
    // A ring that exactly one producer (its owner) pushes into uses no slot
    // stamps: the owner publishes with a Release store of `tail`, the
    // consumer claims a batch with one compare-and-swap on `head`, reads it,
    // and hands the slots back with a Release store of `done`. Nobody but the
    // owner ever writes a slot, so the consumer only reads slot lines and the
    // cache traffic is that of an SPSC ring. The owner may also claim the
    // oldest position through `head` to evict it, but only when that is the
    // very slot its next push writes (`head == tail - capacity`): then no
    // consumer can be reading it, and the write may follow at once.

    /// The owner's view of the space left; refreshes `cached_done` only when
    /// the ring looks full.
    #[inline]
    fn owned_room(&self, capacity: usize, tail: usize, cached_done: &mut usize) -> bool {
        if tail.wrapping_sub(*cached_done) < capacity {
            return true;
        }
        // Acquire: pairs with the consumer's Release of `done`, so its reads
        // of those slots happen before our writes.
        *cached_done = self.done.load(Ordering::Acquire);
        tail.wrapping_sub(*cached_done) < capacity
    }

    /// The `done` position for a new owner to start its cache from.
    pub(crate) fn owned_done(&self) -> usize {
        self.done.load(Ordering::Acquire)
    }

    /// Owner push: a slot write and a Release store, no read-modify-write.
    ///
    /// # Safety
    ///
    /// Only the ring's one owner may call this or [`Indices::evict_owned`],
    /// never [`Indices::try_push`]; `cached_done` is the owner's own cache.
    #[inline]
    pub(crate) unsafe fn push_owned<T: Copy>(
        &self,
        lane: Lane<'_, T>,
        value: T,
        cached_done: &mut usize,
    ) -> Result<(), T> {
        // Relaxed: only the owner writes `tail`.
        let tail = self.tail.load(Ordering::Relaxed);
        if !self.owned_room(lane.capacity(), tail, cached_done) {
            return Err(value);
        }
        lane.slot(tail).value.with_mut(|cell| {
            // SAFETY: the owner is the only writer of this ring's slots, and
            // `tail - done < capacity` means the consumer has finished with
            // the previous item in this slot.
            unsafe { cell.write(MaybeUninit::new(value)) }
        });
        // Release: the slot write is visible to whoever sees the new tail.
        self.tail.store(tail.wrapping_add(1), Ordering::Release);
        Ok(())
    }

    /// Owner eviction: if the ring is full and nobody is reading its oldest
    /// item, and `evict` accepts that item, replaces it with `value` (which
    /// becomes the newest) and returns the evicted item. Otherwise hands
    /// `value` back.
    ///
    /// # Safety
    ///
    /// As for [`Indices::push_owned`].
    pub(crate) unsafe fn evict_owned<T: Copy>(
        &self,
        lane: Lane<'_, T>,
        value: T,
        evict: impl FnOnce(&T) -> bool,
    ) -> Result<T, T> {
        let tail = self.tail.load(Ordering::Relaxed);
        let oldest = tail.wrapping_sub(lane.capacity());
        if self.head.load(Ordering::Relaxed) != oldest {
            // Not full, or the consumer has claimed the oldest already.
            return Err(value);
        }
        let slot = lane.slot(oldest);
        let victim = slot.value.with(|cell| {
            // SAFETY: the owner wrote this slot (position `oldest`, published
            // earlier) and is the only writer; a concurrent consumer may read
            // it too, which is fine for a read.
            unsafe { (*cell).assume_init() }
        });
        if !evict(&victim) {
            return Err(value);
        }
        // Release: a consumer that sees the moved `head` also sees our
        // `tail` (`oldest + capacity`), so it never computes a negative batch.
        if self
            .head
            .compare_exchange(
                oldest,
                oldest.wrapping_add(1),
                Ordering::Release,
                Ordering::Relaxed,
            )
            .is_err()
        {
            // The consumer claimed it first: it is being delivered.
            return Err(value);
        }
        slot.value.with_mut(|cell| {
            // SAFETY: we claimed position `oldest`, so no consumer reads this
            // slot; positions the consumer may still be reading are below
            // `oldest` and live in other slots. The slot of `tail` is this one.
            unsafe { cell.write(MaybeUninit::new(value)) }
        });
        // Release: publishes the write, as in `push_owned`.
        self.tail.store(tail.wrapping_add(1), Ordering::Release);
        Ok(victim)
    }

    /// Consumer side of an owned ring: whether anything is published and
    /// unclaimed (two loads).
    #[inline]
    pub(crate) fn owned_ready(&self) -> bool {
        self.head.load(Ordering::Relaxed) != self.tail.load(Ordering::Relaxed)
    }

    /// Consumer side of an owned ring: takes up to `max` published items,
    /// oldest first, and hands each to `sink` (see [`drain_chunks`]).
    #[inline]
    pub(crate) fn pop_batch_owned<T: Copy>(
        &self,
        lane: Lane<'_, T>,
        max: usize,
        sink: impl FnMut(T),
    ) -> usize {
        drain_chunks(max, sink, |want, chunk| {
            self.claim_chunk_owned(lane, want, chunk)
        })
    }

    /// Claims up to `want` published items of an owned ring with one
    /// compare-and-swap, copies them into `chunk` and returns their slots to
    /// the owner.
    fn claim_chunk_owned<T: Copy>(&self, lane: Lane<'_, T>, want: usize, chunk: &mut Chunk<T>) {
        // Acquire (here and on a failed exchange): if `head` was moved by an
        // owner's eviction, its Release makes the owner's earlier `tail`
        // visible, so the `tail` read below is at least `head`.
        let mut head = self.head.load(Ordering::Acquire);
        let n = loop {
            // Acquire: pairs with the owner's Release of `tail`: the slots
            // below it are written.
            let tail = self.tail.load(Ordering::Acquire);
            let n = tail.wrapping_sub(head).min(want);
            if n == 0 {
                return;
            }
            match self.head.compare_exchange_weak(
                head,
                head.wrapping_add(n),
                Ordering::Relaxed,
                Ordering::Acquire,
            ) {
                Ok(_) => break n,
                Err(current) => head = current,
            }
        };
        for i in 0..n {
            let value = lane.slot(head.wrapping_add(i)).value.with(|cell| {
                // SAFETY: positions [head, head + n) are below `tail`, so
                // published, and our compare-and-swap claimed them: the owner
                // neither evicts them nor writes their slots until `done`
                // passes them. There is one consumer (`Consumer` is claimed
                // once). `T: Copy`.
                unsafe { (*cell).assume_init() }
            });
            // Cannot fail: n <= want <= CHUNK.
            let _ = chunk.push(value);
        }
        // Release: our reads happen before the owner's next writes. Every
        // position below `head` was read earlier or evicted, so `done` may
        // jump to the end of this claim.
        self.done.store(head.wrapping_add(n), Ordering::Release);
    }
}
