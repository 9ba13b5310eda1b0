//! Bounded wait-free single-producer single-consumer ring.
//!
//! The candidate the lanes were measured against (`benches/rings.rs`): with
//! one of these per producer, pushing is a slot write plus one Release store
//! and popping a slot read plus one Release store — no read-modify-write
//! atomics at all — and each side keeps a cached copy of the other's index so
//! that it touches the shared line only when the ring looks full or empty.
//! It is the faster ring; see `ring.rs` for why the lanes still use the
//! multi-producer one. Use this one directly where a single producer owns a
//! stream (one interrupt handler, one thread).
//!
//! [`Spsc::split`] hands out exactly one [`Producer`] and one [`Consumer`];
//! the borrow checker enforces the single-producer, single-consumer contract.

use crate::sync::{AtomicUsize, CachePadded, Ordering, UnsafeCell};
use core::fmt;
use core::mem::MaybeUninit;

/// A single-producer single-consumer ring of `N` items (`N` a power of two).
pub struct Spsc<T, const N: usize> {
    head: CachePadded<AtomicUsize>,
    tail: CachePadded<AtomicUsize>,
    slots: [UnsafeCell<MaybeUninit<T>>; N],
}

// SAFETY: `split` takes `&mut self`, so at most one `Producer` (the only
// writer of slots at and after `tail`) and one `Consumer` (the only reader of
// slots before `tail`) exist; the Release/Acquire pairs on `head` and `tail`
// order every slot access. Items move between threads, hence `T: Send`.
unsafe impl<T: Send, const N: usize> Sync for Spsc<T, N> {}

impl<T, const N: usize> fmt::Debug for Spsc<T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spsc").field("capacity", &N).finish()
    }
}

#[cfg(not(loom))]
impl<T: Copy, const N: usize> Spsc<T, N> {
    /// An empty ring. `N` must be a power of two; anything else fails to compile.
    pub const fn new() -> Self {
        const { assert!(N.is_power_of_two(), "ring capacity must be a power of two") };
        Spsc {
            head: CachePadded(AtomicUsize::new(0)),
            tail: CachePadded(AtomicUsize::new(0)),
            slots: [const { UnsafeCell::new(MaybeUninit::uninit()) }; N],
        }
    }
}

#[cfg(not(loom))]
impl<T: Copy, const N: usize> Default for Spsc<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Copy, const N: usize> Spsc<T, N> {
    /// The one producer and the one consumer of this ring.
    pub fn split(&mut self) -> (Producer<'_, T, N>, Consumer<'_, T, N>) {
        let head = self.head.load(Ordering::Relaxed);
        let tail = self.tail.load(Ordering::Relaxed);
        let ring = &*self;
        (
            Producer {
                ring,
                tail,
                cached_head: head,
            },
            Consumer {
                ring,
                head,
                cached_tail: tail,
            },
        )
    }

    /// How many items fit.
    pub const fn capacity(&self) -> usize {
        N
    }

    /// How many items are queued.
    pub fn len(&self) -> usize {
        let head = self.head.load(Ordering::Relaxed);
        self.tail.load(Ordering::Relaxed).wrapping_sub(head).min(N)
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The pushing half of an [`Spsc`].
#[derive(Debug)]
pub struct Producer<'a, T, const N: usize> {
    ring: &'a Spsc<T, N>,
    tail: usize,
    cached_head: usize,
}

impl<T: Copy, const N: usize> Producer<'_, T, N> {
    /// Queues `value`, or hands it back if the ring is full. Wait-free.
    #[inline]
    pub fn try_push(&mut self, value: T) -> Result<(), T> {
        if self.tail.wrapping_sub(self.cached_head) == N {
            // Acquire: pairs with the consumer's Release, so its reads of
            // the slots it freed happen before our writes.
            self.cached_head = self.ring.head.load(Ordering::Acquire);
            if self.tail.wrapping_sub(self.cached_head) == N {
                return Err(value);
            }
        }
        self.ring.slots[self.tail & (N - 1)].with_mut(|cell| {
            // SAFETY: the slot at `tail` is outside the consumer's range
            // [head, tail), and this is the only producer.
            unsafe { cell.write(MaybeUninit::new(value)) }
        });
        self.tail = self.tail.wrapping_add(1);
        // Release: publishes the slot write.
        self.ring.tail.store(self.tail, Ordering::Release);
        Ok(())
    }
}

/// The popping half of an [`Spsc`].
#[derive(Debug)]
pub struct Consumer<'a, T, const N: usize> {
    ring: &'a Spsc<T, N>,
    head: usize,
    cached_tail: usize,
}

impl<T: Copy, const N: usize> Consumer<'_, T, N> {
    /// Takes the oldest item, or `None` if the ring is empty. Wait-free.
    #[inline]
    pub fn try_pop(&mut self) -> Option<T> {
        if self.head == self.cached_tail {
            // Acquire: pairs with the producer's Release publish.
            self.cached_tail = self.ring.tail.load(Ordering::Acquire);
            if self.head == self.cached_tail {
                return None;
            }
        }
        let value = self.ring.slots[self.head & (N - 1)].with(|cell| {
            // SAFETY: `head < tail`, so the producer published this slot and
            // will not touch it until we move `head` past it. `T: Copy`.
            unsafe { (*cell).assume_init() }
        });
        self.head = self.head.wrapping_add(1);
        // Release: our read happens before the producer reuses the slot.
        self.ring.head.store(self.head, Ordering::Release);
        Some(value)
    }

    /// Takes up to `max` items, oldest first, with one index update. Returns
    /// how many were taken.
    #[inline]
    pub fn pop_batch(&mut self, max: usize, mut sink: impl FnMut(T)) -> usize {
        // Acquire: pairs with the producer's Release publish.
        self.cached_tail = self.ring.tail.load(Ordering::Acquire);
        let n = self.cached_tail.wrapping_sub(self.head).min(max);
        for i in 0..n {
            let pos = self.head.wrapping_add(i);
            sink(self.ring.slots[pos & (N - 1)].with(|cell| {
                // SAFETY: `pos < tail`: published and not reused until `head`
                // moves past it. `T: Copy`.
                unsafe { (*cell).assume_init() }
            }));
        }
        self.head = self.head.wrapping_add(n);
        // Release: our reads happen before the producer reuses the slots.
        self.ring.head.store(self.head, Ordering::Release);
        n
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn full_empty_and_wrap() {
        let mut ring: Spsc<u32, 4> = Spsc::new();
        let (mut p, mut c) = ring.split();
        assert_eq!(c.try_pop(), None);
        for lap in 0..5u32 {
            for i in 0..4 {
                assert_eq!(p.try_push(lap * 4 + i), Ok(()));
            }
            assert_eq!(p.try_push(99), Err(99));
            for i in 0..4 {
                assert_eq!(c.try_pop(), Some(lap * 4 + i));
            }
            assert_eq!(c.try_pop(), None);
        }
    }

    #[test]
    fn split_again_resumes_where_it_stopped() {
        let mut ring: Spsc<u32, 4> = Spsc::new();
        {
            let (mut p, mut c) = ring.split();
            p.try_push(1).unwrap();
            p.try_push(2).unwrap();
            assert_eq!(c.try_pop(), Some(1));
        }
        assert_eq!(ring.len(), 1);
        let (_, mut c) = ring.split();
        assert_eq!(c.try_pop(), Some(2));
    }

    #[test]
    fn concurrent_in_order_exactly_once() {
        let n: u32 = if cfg!(miri) { 200 } else { 200_000 };
        let mut ring: Spsc<u32, 8> = Spsc::new();
        let (mut p, mut c) = ring.split();
        std::thread::scope(|s| {
            s.spawn(move || {
                for i in 0..n {
                    while p.try_push(i).is_err() {
                        std::thread::yield_now();
                    }
                }
            });
            let mut next = 0;
            while next < n {
                let got = c.pop_batch(3, |v| {
                    assert_eq!(v, next);
                    next += 1;
                });
                if got == 0 {
                    if let Some(v) = c.try_pop() {
                        assert_eq!(v, next);
                        next += 1;
                    } else {
                        std::thread::yield_now();
                    }
                }
            }
        });
        assert!(ring.is_empty());
    }
}
