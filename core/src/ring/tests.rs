//! The ring's tests: order, wrap-around, batches, unpublished slots,
//! ranks, and producers racing the consumer.

use super::drain::CHUNK;
use super::slot::{free, published};
use super::*;
use crate::sync::Ordering;
use core::mem::MaybeUninit;

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
