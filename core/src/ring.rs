//! Bounded lock-free multi-producer ring: the storage behind every lane.
//!
//! A power-of-two array of slots, each with a *stamp* that says which lap of
//! the ring the slot is on and whether it holds a value (Dmitry Vyukov's
//! bounded queue). Any thread or interrupt handler may push; the consumer
//! pops. Nothing blocks: a push into a full ring hands the value back, a pop
//! from an empty ring returns `None`.
//!
//! # Two ways to push, one ring
//!
//! * [`Ring::try_push`] lets any number of producers share the ring: they
//!   claim positions with a compare-and-swap on `tail`. Consumers claim with
//!   a compare-and-swap on `head`, and the stamps make it safe for several
//!   threads to take from the head (a producer evicting, say).
//! * The lanes also have rings that exactly one
//!   [`Producer`](crate::Producer) owns and one [`Consumer`](crate::Consumer)
//!   drains. Those use no stamps (see "Owned rings" in the code): the owner's
//!   push is a slot write and one Release store, and the consumer only reads
//!   slot lines, as in an SPSC ring.
//!
//! Why both: every locked instruction costs about 10 ns on the 2-vCPU EPYC
//! guests this is tuned on (`lock xadd` 9.5 ns, `lock cmpxchg` 10 ns, a plain
//! store 0.9 ns), so the shared push cannot get under 10 ns (16 ns measured)
//! while the owned one takes about 4 (`benches/rings.rs`). The lanes give each
//! producer its own rings and keep a shared set for producers that have none
//! (interrupt handlers, threads beyond the configured number of sets).
//!
//! Either way a consumer pays one compare-and-swap per claimed run of items
//! ([`Ring::pop_batch`]), not one per item.
//!
//! # Progress guarantees
//!
//! The consumer never waits on a producer: a slot that a producer has claimed
//! but not yet published (say the producer was preempted between the two
//! steps) ends the pop as if the ring were empty there; everything behind it
//! is taken on a later pop. A producer that loses a race retries with the new
//! index, so some thread always makes progress.
//!
//! Every item also carries a 2-bit *rank* packed into its slot's stamp
//! (the lanes store the event's priority there), which lets a producer evict
//! the oldest item only if it ranks below a threshold without reading the item
//! itself before it owns it.
//!
//! Nothing here panics or allocates.

use crate::sync::{AtomicUsize, CachePadded, Ordering, UnsafeCell};
use core::fmt;
use core::marker::PhantomData;
use core::mem::MaybeUninit;

const RANK_BITS: u32 = 2;
const RANK_MASK: usize = (1 << RANK_BITS) - 1;

/// The stamp of a slot that is free for a push at `pos`.
const fn free(pos: usize) -> usize {
    pos.wrapping_shl(RANK_BITS)
}

/// The stamp (without rank) of a slot that holds the item pushed at `pos`.
const fn published(pos: usize) -> usize {
    pos.wrapping_add(1).wrapping_shl(RANK_BITS)
}

/// Signed distance between two stamps, ignoring the rank bits.
fn distance(stamp: usize, expected: usize) -> isize {
    ((stamp & !RANK_MASK).wrapping_sub(expected)) as isize
}

/// One cell of a ring: a stamp and room for one item.
pub struct Slot<T> {
    stamp: AtomicUsize,
    value: UnsafeCell<MaybeUninit<T>>,
}

impl<T> Slot<T> {
    /// An empty slot, for building ring storage ([`Ring::with_storage`]).
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        Slot {
            stamp: AtomicUsize::new(0),
            value: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }

    /// An empty slot, for building ring storage ([`Ring::with_storage`]).
    #[cfg(loom)]
    pub fn new() -> Self {
        Slot {
            stamp: AtomicUsize::new(0),
            value: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }
}

#[cfg(not(loom))]
impl<T> Slot<T> {
    /// A slot stamped free for the push at ring position `pos`.
    pub(crate) const fn stamped_free(pos: usize) -> Self {
        Slot {
            stamp: AtomicUsize::new(free(pos)),
            value: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> fmt::Debug for Slot<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Slot").finish_non_exhaustive()
    }
}

mod sealed {
    pub trait Sealed {}
}

/// Memory a ring keeps its slots in: an array (for a `static` or a local), a
/// caller-owned `&mut [Slot<T>]` (for instance from a `StaticCell`), or, with
/// the `alloc` feature, a `Box<[Slot<T>]>` sized at run time.
///
/// Sealed: the ring relies on the slice never changing length.
pub trait Storage<T>: sealed::Sealed {
    /// The slots.
    fn slots(&self) -> &[Slot<T>];
}

impl<T, const N: usize> sealed::Sealed for [Slot<T>; N] {}
impl<T, const N: usize> Storage<T> for [Slot<T>; N] {
    fn slots(&self) -> &[Slot<T>] {
        self
    }
}

impl<T> sealed::Sealed for &mut [Slot<T>] {}
impl<T> Storage<T> for &mut [Slot<T>] {
    fn slots(&self) -> &[Slot<T>] {
        self
    }
}

#[cfg(feature = "alloc")]
impl<T> sealed::Sealed for alloc::boxed::Box<[Slot<T>]> {}
#[cfg(feature = "alloc")]
impl<T> Storage<T> for alloc::boxed::Box<[Slot<T>]> {
    fn slots(&self) -> &[Slot<T>] {
        self
    }
}

/// The storage given to [`Ring::with_storage`] has an unusable length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct CapacityError {
    /// The length that was given.
    pub len: usize,
}

impl fmt::Display for CapacityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ring capacity must be a power of two and at least 2, got {}",
            self.len
        )
    }
}

impl core::error::Error for CapacityError {}

/// One ring's slots: `capacity` slots from `first` in a storage that may hold
/// several rings (the lanes). Copy, so passing it costs three words.
pub(crate) struct Lane<'a, T> {
    all: &'a [Slot<T>],
    first: usize,
    mask: usize,
}

impl<T> Clone for Lane<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Lane<'_, T> {}

impl<'a, T> Lane<'a, T> {
    /// `capacity` must be a power of two; `first + capacity` should not pass
    /// the end of `all` (slot lookups past it would panic, not misbehave).
    pub(crate) fn new(all: &'a [Slot<T>], first: usize, capacity: usize) -> Self {
        Lane {
            all,
            first,
            mask: capacity.wrapping_sub(1),
        }
    }

    #[inline]
    fn slot(self, pos: usize) -> &'a Slot<T> {
        &self.all[self.first + (pos & self.mask)]
    }

    fn capacity(self) -> usize {
        self.mask + 1
    }
}

/// Head and tail of one ring, kept apart from its slots so that several rings
/// (the lanes) can share one storage. All ring logic lives here.
pub(crate) struct Indices {
    /// Position of the next pop. Only grows; the slot is `head & mask`.
    head: CachePadded<AtomicUsize>,
    /// Position of the next push. Only grows; equals the number of pushes.
    tail: CachePadded<AtomicUsize>,
    /// Owned rings only: every position below `done` has been read by the
    /// consumer (or evicted), so its slot may be written again.
    done: CachePadded<AtomicUsize>,
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
fn drain_chunks<T: Copy>(
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

/// A bounded, lock-free, multi-producer ring of `Copy` items.
///
/// `S` is where the slots live (see [`Storage`]); [`StaticRing`] is the
/// array-backed form that can be a `static`.
pub struct Ring<T, S> {
    indices: Indices,
    slots: S,
    _items: PhantomData<T>,
}

/// A ring whose slots are an array: `static RING: StaticRing<u32, 1024> = StaticRing::new();`
pub type StaticRing<T, const N: usize> = Ring<T, [Slot<T>; N]>;

// SAFETY: items move between threads through the ring, so `T: Send` is
// needed; every access to a slot's value is ordered by its stamp (a value is
// written only by the producer that claimed the slot through `tail`, read only
// by the consumer that claimed it through `head`), so sharing `&Ring` is sound.
unsafe impl<T: Send, S: Send> Sync for Ring<T, S> {}

impl<T, S> fmt::Debug for Ring<T, S>
where
    T: Copy,
    S: Storage<T>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ring")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .finish()
    }
}

#[cfg(not(loom))]
impl<T: Copy, const N: usize> StaticRing<T, N> {
    /// An empty ring. `N` must be a power of two and at least 2; anything else
    /// fails to compile.
    pub const fn new() -> Self {
        const {
            assert!(
                N >= 2 && N.is_power_of_two(),
                "ring capacity must be a power of two >= 2"
            )
        };
        let mut slots = [const { Slot::new() }; N];
        let mut i = 0;
        while i < N {
            slots[i] = Slot::stamped_free(i);
            i += 1;
        }
        Ring {
            indices: Indices::new(),
            slots,
            _items: PhantomData,
        }
    }
}

#[cfg(not(loom))]
impl<T: Copy, const N: usize> Default for StaticRing<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Copy, S: Storage<T>> Ring<T, S> {
    /// An empty ring over caller-provided slots. Their length must be a power
    /// of two and at least 2.
    pub fn with_storage(slots: S) -> Result<Self, CapacityError> {
        Indices::init(slots.slots())?;
        Ok(Ring {
            indices: Indices::new(),
            slots,
            _items: PhantomData,
        })
    }

    fn lane(&self) -> Lane<'_, T> {
        let slots = self.slots.slots();
        Lane::new(slots, 0, slots.len())
    }

    /// How many items fit.
    pub fn capacity(&self) -> usize {
        self.slots.slots().len()
    }

    /// How many items are queued (including ones being written or read right
    /// now). Exact when no other thread is using the ring.
    pub fn len(&self) -> usize {
        self.indices.len(self.capacity())
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Total pushes accepted since the ring was made (wraps at `usize::MAX`).
    pub fn pushed(&self) -> usize {
        self.indices.pushed()
    }

    /// Total items taken out since the ring was made (wraps at `usize::MAX`).
    pub fn popped(&self) -> usize {
        self.indices.popped()
    }

    /// Queues `value`, or hands it back if the ring is full. Never blocks.
    #[inline]
    pub fn try_push(&self, value: T) -> Result<(), T> {
        self.indices.try_push(self.lane(), value, 0)
    }

    /// Takes the oldest item, or `None` if the ring is empty or its oldest
    /// slot is claimed but not yet published by a producer. Never blocks.
    #[inline]
    pub fn try_pop(&self) -> Option<T> {
        self.indices.pop_where(self.lane(), |_| true)
    }

    /// Takes up to `max` of the oldest items with a single compare-and-swap
    /// and hands each to `sink`, oldest first. Stops early at an empty or
    /// not-yet-published slot. Returns how many were taken.
    #[inline]
    pub fn pop_batch(&self, max: usize, sink: impl FnMut(T)) -> usize {
        self.indices.pop_batch(self.lane(), max, sink)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicU32;
    use std::vec::Vec;

    #[test]
    fn push_pop_fifo_and_full_empty() {
        let ring: StaticRing<u32, 4> = StaticRing::new();
        assert_eq!(ring.try_pop(), None);
        assert!(ring.is_empty());
        for i in 0..4 {
            assert_eq!(ring.try_push(i), Ok(()));
        }
        assert_eq!(ring.len(), 4);
        assert_eq!(ring.try_push(99), Err(99));
        for i in 0..4 {
            assert_eq!(ring.try_pop(), Some(i));
        }
        assert_eq!(ring.try_pop(), None);
        assert_eq!((ring.pushed(), ring.popped()), (4, 4));
    }

    #[test]
    fn wraps_around_many_laps() {
        let ring: StaticRing<u64, 8> = StaticRing::new();
        let mut next_out = 0;
        for i in 0..1000u64 {
            assert!(ring.try_push(i).is_ok());
            if i % 3 != 0 {
                assert_eq!(ring.try_pop(), Some(next_out));
                next_out += 1;
            }
            if ring.len() == 8 {
                while let Some(v) = ring.try_pop() {
                    assert_eq!(v, next_out);
                    next_out += 1;
                }
            }
        }
        while let Some(v) = ring.try_pop() {
            assert_eq!(v, next_out);
            next_out += 1;
        }
        assert_eq!(next_out, 1000);
    }

    #[test]
    fn positions_wrap_at_usize_max() {
        let ring: StaticRing<u32, 4> = StaticRing::new();
        // Start both indices just below the wrap point, slots stamped to match.
        let start = usize::MAX - 5;
        ring.indices.head.store(start, Ordering::Relaxed);
        ring.indices.tail.store(start, Ordering::Relaxed);
        for i in 0..4 {
            let pos = start.wrapping_add(i);
            ring.lane()
                .slot(pos)
                .stamp
                .store(free(pos), Ordering::Relaxed);
        }
        for round in 0..10u32 {
            for i in 0..3 {
                assert_eq!(ring.try_push(round * 10 + i), Ok(()));
            }
            for i in 0..3 {
                assert_eq!(ring.try_pop(), Some(round * 10 + i));
            }
        }
        assert!(ring.is_empty());
    }

    #[test]
    fn pop_batch_takes_in_order_and_stops_at_empty() {
        let ring: StaticRing<u32, 8> = StaticRing::new();
        for i in 0..5 {
            ring.try_push(i).unwrap();
        }
        let mut got = Vec::new();
        assert_eq!(ring.pop_batch(3, |v| got.push(v)), 3);
        assert_eq!(ring.pop_batch(10, |v| got.push(v)), 2);
        assert_eq!(ring.pop_batch(10, |v| got.push(v)), 0);
        assert_eq!(got, [0, 1, 2, 3, 4]);
    }

    #[test]
    fn a_batch_pop_spans_several_claims_in_order() {
        let ring: StaticRing<usize, 256> = StaticRing::new();
        let n = 3 * CHUNK + 5;
        for i in 0..n {
            ring.try_push(i).unwrap();
        }
        let mut next = 0;
        let taken = ring.pop_batch(usize::MAX, |v| {
            assert_eq!(v, next);
            next += 1;
        });
        assert_eq!((taken, next), (n, n));
        assert!(ring.is_empty());
    }

    #[test]
    fn consumer_does_not_wait_on_an_unpublished_slot() {
        let ring: StaticRing<u32, 4> = StaticRing::new();
        // A producer claims position 0 and is "preempted" before publishing.
        ring.indices.tail.store(1, Ordering::Relaxed);
        ring.try_push(7).unwrap();
        assert_eq!(ring.len(), 2);
        assert_eq!(ring.try_pop(), None);
        assert_eq!(ring.pop_batch(4, |_| ()), 0);
        // The producer resumes and publishes; both come out in order.
        ring.slots[0].value.with_mut(|c| {
            // SAFETY: test-only: we own position 0, as the claiming producer would.
            unsafe { c.write(MaybeUninit::new(5)) }
        });
        ring.slots[0].stamp.store(published(0), Ordering::Release);
        assert_eq!(ring.try_pop(), Some(5));
        assert_eq!(ring.try_pop(), Some(7));
    }

    #[test]
    fn ranked_pop_only_takes_lower_ranks() {
        let ring: StaticRing<u32, 4> = StaticRing::new();
        let (idx, slots) = (&ring.indices, ring.lane());
        idx.try_push(slots, 1, 2).unwrap();
        idx.try_push(slots, 2, 0).unwrap();
        assert_eq!(idx.pop_where(slots, |r| r < 2), None);
        assert_eq!(idx.pop_where(slots, |r| r < 3), Some(1));
        assert_eq!(idx.pop_where(slots, |r| r < 1), Some(2));
    }

    #[test]
    fn with_storage_checks_capacity() {
        let mut three: [Slot<u8>; 3] = [const { Slot::new() }; 3];
        assert_eq!(
            Ring::with_storage(&mut three[..]).err(),
            Some(CapacityError { len: 3 })
        );
        let mut one: [Slot<u8>; 1] = [const { Slot::new() }; 1];
        assert!(Ring::with_storage(&mut one[..]).is_err());
        let mut four: [Slot<u8>; 4] = [const { Slot::new() }; 4];
        let ring = Ring::with_storage(&mut four[..]).unwrap();
        ring.try_push(3).unwrap();
        assert_eq!(ring.try_pop(), Some(3));
        assert_eq!(ring.capacity(), 4);
    }

    /// Every pushed value arrives exactly once, with producers racing each
    /// other and the consumer, and with producers also evicting.
    #[test]
    fn concurrent_exactly_once() {
        const PRODUCERS: u32 = 3;
        let per_producer: u32 = if cfg!(miri) { 60 } else { 100_000 };
        let ring: Arc<StaticRing<u32, 16>> = Arc::new(StaticRing::new());
        let seen: Arc<Vec<AtomicU32>> = Arc::new(
            (0..PRODUCERS * per_producer)
                .map(|_| AtomicU32::new(0))
                .collect(),
        );
        let evicted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let ring = ring.clone();
                let seen = seen.clone();
                let evicted = evicted.clone();
                std::thread::spawn(move || {
                    for i in 0..per_producer {
                        let mut v = p * per_producer + i;
                        loop {
                            match ring.try_push(v) {
                                Ok(()) => break,
                                Err(back) => {
                                    v = back;
                                    // Producer-side eviction races the consumer.
                                    if p == 0
                                        && let Some(old) = ring.try_pop()
                                    {
                                        seen[old as usize].fetch_add(1, Ordering::Relaxed);
                                        evicted.fetch_add(1, Ordering::Relaxed);
                                    }
                                    std::thread::yield_now();
                                }
                            }
                        }
                    }
                })
            })
            .collect();
        let total = (PRODUCERS * per_producer) as usize;
        let mut received = 0;
        while received + evicted.load(Ordering::Relaxed) < total {
            let n = if received % 2 == 0 {
                ring.pop_batch(5, |v| {
                    seen[v as usize].fetch_add(1, Ordering::Relaxed);
                })
            } else {
                ring.try_pop()
                    .map(|v| seen[v as usize].fetch_add(1, Ordering::Relaxed))
                    .is_some() as usize
            };
            received += n;
            if n == 0 {
                std::thread::yield_now();
            }
        }
        for p in producers {
            p.join().unwrap();
        }
        assert!(seen.iter().all(|c| c.load(Ordering::Relaxed) == 1));
        assert!(ring.is_empty());
    }
}
