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

mod drain;
mod indices;
mod lane;
mod owned;
mod slot;
mod storage;
#[cfg(all(test, not(loom)))]
mod tests;

pub use slot::Slot;
pub use storage::{CapacityError, Storage};

pub(crate) use indices::Indices;
pub(crate) use lane::Lane;

use core::fmt;
use core::marker::PhantomData;

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
