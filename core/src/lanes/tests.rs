//! The lanes' tests: every drop policy, the shared and the owned sets,
//! the one consumer, and conservation under concurrent pushes.

use super::*;
use crate::event::{KeyId, Kind};
use core::num::NonZeroU16;
use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use std::vec::Vec;

const SMALL: LaneCapacities = LaneCapacities {
    high: 2,
    medium: 4,
    low: 2,
};

/// The shared set plus two owned sets of `SMALL` lanes.
type Small = StaticLanes<24, 3>;

fn lanes(policy: DropPolicy) -> Small {
    Small::new(SMALL, policy).unwrap()
}

fn ev(id: u32, priority: Priority) -> Event {
    Event::new(KeyId(id), Kind::Counter, 1.0, u64::from(id), priority)
}

fn drain_ids(l: &Small) -> Vec<u32> {
    let mut out = Vec::new();
    l.consumer()
        .unwrap()
        .drain(usize::MAX, |e| out.push(e.key.get()));
    out
}

/// Runs `check` once pushing through the shared set and once through an
/// owned producer: both paths apply the same policy.
fn both_paths(
    policy: DropPolicy,
    check: impl Fn(&Small, &mut dyn FnMut(Event) -> Result<(), DropReason>),
) {
    let l = lanes(policy);
    check(&l, &mut |e| l.push(e));
    let l = lanes(policy);
    let mut p = l.producer().unwrap();
    check(&l, &mut |e| p.push(e));
}

#[test]
fn drains_in_priority_order_fifo_within_a_lane() {
    both_paths(DropPolicy::DropNewest, |l, push| {
        push(ev(1, Priority::Low)).unwrap();
        push(ev(2, Priority::Medium)).unwrap();
        push(ev(3, Priority::High)).unwrap();
        push(ev(4, Priority::Low)).unwrap();
        push(ev(5, Priority::High)).unwrap();
        assert_eq!(l.len_total(), 5);
        assert_eq!(l.len(Priority::High), 2);
        assert_eq!(drain_ids(l), [3, 5, 2, 1, 4]);
        assert_eq!(l.len_total(), 0);
    });
}

/// A set handed back with events still queued is not claimed again
/// until they are drained: the next producer gets an empty set, or
/// none (and pushes through the shared set) while there is none.
#[test]
fn a_producer_is_given_an_empty_set() {
    let l = lanes(DropPolicy::DropNewest);
    let mut a = l.producer().unwrap();
    for i in 0..4 {
        a.push(ev(i, Priority::Medium)).unwrap(); // full
    }
    drop(a);
    let mut b = l.producer().unwrap();
    b.push(ev(10, Priority::Medium)).unwrap();
    assert!(
        l.producer().is_none(),
        "the other set is taken or not empty"
    );
    drop(b);
    assert_eq!(drain_ids(&l).len(), 5);
    let c = l.producer().unwrap();
    let d = l.producer().unwrap();
    assert_ne!(c.set, d.set);
}

/// The storage decides how many sets there are, up to `SETS`.
#[test]
fn storage_for_fewer_sets_makes_fewer_sets() {
    let slots = |sets: usize| -> Vec<Slot<Event>> {
        (0..sets * SMALL.total()).map(|_| Slot::new()).collect()
    };
    let mut two = slots(2);
    let l: Lanes<_, 8> = Lanes::with_storage(&mut two[..], SMALL, DropPolicy::DropNewest).unwrap();
    assert_eq!((l.sets(), l.capacity_total()), (2, 16));
    let mut p = l.producer().unwrap();
    assert!(l.producer().is_none(), "one owned set");
    p.push(ev(1, Priority::High)).unwrap();
    l.push(ev(2, Priority::High)).unwrap();
    let mut got = Vec::new();
    l.consumer()
        .unwrap()
        .drain(usize::MAX, |e| got.push(e.key.get()));
    got.sort_unstable();
    assert_eq!(got, [1, 2]);
    drop(p);
    let mut one = slots(1);
    let shared_only: Lanes<_, 8> =
        Lanes::with_storage(&mut one[..], SMALL, DropPolicy::DropNewest).unwrap();
    assert!(shared_only.producer().is_none());
    for bad in [0, 9] {
        let mut storage = slots(bad);
        assert_eq!(
            Lanes::<_, 8>::with_storage(&mut storage[..], SMALL, DropPolicy::DropNewest).err(),
            Some(LanesError::StorageSize {
                needed: 64,
                got: bad * 8
            })
        );
    }
}

#[test]
fn drain_takes_every_set_high_before_any_medium() {
    let l = lanes(DropPolicy::DropNewest);
    let mut a = l.producer().unwrap();
    let mut b = l.producer().unwrap();
    a.push(ev(1, Priority::Medium)).unwrap();
    b.push(ev(2, Priority::High)).unwrap();
    l.push(ev(3, Priority::Low)).unwrap();
    a.push(ev(4, Priority::High)).unwrap();
    let mut got = drain_ids(&l);
    got[..2].sort_unstable();
    assert_eq!(got, [2, 4, 1, 3]);
}

#[test]
fn drain_respects_max_and_rotates_sets() {
    let l = lanes(DropPolicy::DropNewest);
    let mut a = l.producer().unwrap();
    let mut b = l.producer().unwrap();
    for i in 0..4 {
        a.push(ev(i, Priority::Medium)).unwrap();
        b.push(ev(10 + i, Priority::Medium)).unwrap();
    }
    // One event per drain: the starting set rotates, so both sets are served.
    let mut firsts = Vec::new();
    let mut c = l.consumer().unwrap();
    for _ in 0..3 {
        assert_eq!(c.drain(1, |e| firsts.push(e.key.get())), 1);
    }
    assert!(firsts.iter().any(|&id| id < 10) && firsts.iter().any(|&id| id >= 10));
    assert_eq!(l.len_total(), 5);
    assert_eq!(c.drain(0, |_| ()), 0);
    // One consumer at a time.
    assert!(l.consumer().is_none());
    drop(c);
    assert!(l.consumer().is_some());
}

/// A sink that panics loses only what it was handed: the lane it failed
/// on was copied out and released first, so later pushes and drains work
/// (owned and shared sets).
#[test]
fn a_panicking_sink_leaves_the_lanes_consistent() {
    for owned in [true, false] {
        let l = lanes(DropPolicy::DropNewest);
        let mut p = l.producer().unwrap();
        let mut push = |e| if owned { p.push(e) } else { l.push(e) };
        for i in 0..4 {
            push(ev(i, Priority::Medium)).unwrap();
        }
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            l.consumer()
                .unwrap()
                .drain(usize::MAX, |_| panic!("sink failed"));
        }));
        assert!(caught.is_err());
        assert_eq!(l.len_total(), 0, "owned: {owned}");
        for i in 10..14 {
            push(ev(i, Priority::Medium)).unwrap();
        }
        assert_eq!(drain_ids(&l), [10, 11, 12, 13], "owned: {owned}");
    }
}

#[test]
fn producers_are_exclusive_and_released_on_drop() {
    let l = lanes(DropPolicy::DropNewest);
    let a = l.producer().unwrap();
    let mut b = l.producer().unwrap();
    assert!(l.producer().is_none(), "only two owned sets");
    b.push(ev(7, Priority::Low)).unwrap();
    drop(b);
    // The set comes back once what was queued in it is drained.
    assert!(l.producer().is_none());
    assert_eq!(drain_ids(&l), [7]);
    let mut c = l.producer().unwrap();
    c.push(ev(8, Priority::Low)).unwrap();
    assert_eq!(drain_ids(&l), [8]);
    drop(a);
    assert!(l.producer().is_some());
    let only_shared: StaticLanes<8> = StaticLanes::new(SMALL, DropPolicy::DropNewest).unwrap();
    assert!(only_shared.producer().is_none());
}

#[test]
fn producer_over_an_arc() {
    let l = Arc::new(lanes(DropPolicy::DropNewest));
    let mut p = Producer::claim(l.clone()).unwrap();
    std::thread::spawn(move || p.push(ev(1, Priority::High)).unwrap())
        .join()
        .unwrap();
    assert_eq!(drain_ids(&l), [1]);
}

#[test]
fn drop_newest_refuses_and_counts() {
    both_paths(DropPolicy::DropNewest, |l, push| {
        push(ev(1, Priority::High)).unwrap();
        push(ev(2, Priority::High)).unwrap();
        assert_eq!(push(ev(3, Priority::High)), Err(DropReason::LaneFull));
        assert_eq!(l.drops().get(DropReason::LaneFull, Priority::High), 1);
        assert_eq!(drain_ids(l), [1, 2]);
    });
}

#[test]
fn drop_oldest_evicts_the_head() {
    both_paths(DropPolicy::DropOldest, |l, push| {
        for i in 1..=4 {
            push(ev(i, Priority::High)).unwrap();
        }
        assert_eq!(l.drops().get(DropReason::EvictedOldest, Priority::High), 2);
        assert_eq!(drain_ids(l), [3, 4]);
    });
}

#[test]
fn by_priority_overflows_then_evicts_lower_then_refuses() {
    both_paths(DropPolicy::DropByPriority, |l, push| {
        push(ev(1, Priority::Low)).unwrap();
        push(ev(2, Priority::Medium)).unwrap();
        for i in 10..12 {
            push(ev(i, Priority::High)).unwrap(); // fills the high lane
        }
        // Overflow into lower lanes with room, lowest first: nothing dropped.
        for i in 12..16 {
            push(ev(i, Priority::High)).unwrap(); // low: 1,12  medium: 2,13,14,15
        }
        assert_eq!(l.drops().total(), 0);
        // No room anywhere: evict the oldest low event (1); 16 takes its place.
        push(ev(16, Priority::High)).unwrap();
        assert_eq!(
            l.drops().get(DropReason::EvictedByPriority, Priority::Low),
            1
        );
        // The low lane's head is now a high event (12): the medium 2 goes.
        push(ev(17, Priority::High)).unwrap();
        assert_eq!(
            l.drops()
                .get(DropReason::EvictedByPriority, Priority::Medium),
            1
        );
        // Everything left is high: one high goes (the newest in the
        // shared set; in an owned set, the last one the search moved).
        assert_eq!(push(ev(18, Priority::High)), Err(DropReason::LaneFull));
        assert_eq!(l.drops().get(DropReason::LaneFull, Priority::High), 1);
        // A low event cannot evict anything.
        assert_eq!(push(ev(19, Priority::Low)), Err(DropReason::LaneFull));
        let got = drain_ids(l);
        assert_eq!(got.len(), 8);
        assert!(got.iter().all(|id| (10..=18).contains(id)), "{got:?}");
        assert_eq!(l.drops().total(), 4);
        // Moves are not pushes: everything pushed was taken out.
        assert_eq!(l.pushed(), l.popped());
    });
}

#[test]
fn an_overflowed_high_event_does_not_shield_the_low_ones_behind_it() {
    let l = lanes(DropPolicy::DropByPriority);
    let mut p = l.producer().unwrap();
    p.push(ev(1, Priority::High)).unwrap();
    p.push(ev(2, Priority::High)).unwrap(); // the high lane is full
    p.push(ev(3, Priority::High)).unwrap(); // overflows: low [3]
    p.push(ev(4, Priority::Low)).unwrap(); // low [3, 4]: full
    for i in 5..9 {
        p.push(ev(i, Priority::High)).unwrap(); // medium [5, 6, 7, 8]: full
    }
    // Every head is high, but a low event waits behind 3: it goes, and
    // 3 moves to the back.
    p.push(ev(9, Priority::High)).unwrap();
    assert_eq!(l.drops().by_priority(Priority::High), 0);
    assert_eq!(
        l.drops().get(DropReason::EvictedByPriority, Priority::Low),
        1
    );
    let mut got = drain_ids(&l);
    got.sort_unstable();
    assert_eq!(got, [1, 2, 3, 5, 6, 7, 8, 9]);
    assert_eq!(l.pushed(), l.popped());
    // Nine accepted (4 later evicted); moving 3 was not a push.
    assert_eq!(l.pushed(), 9);
}

#[test]
fn by_priority_never_evicts_equal_priority() {
    both_paths(DropPolicy::DropByPriority, |l, push| {
        for i in 0..6 {
            push(ev(i, Priority::Medium)).unwrap(); // medium 4 + low 2
        }
        assert_eq!(push(ev(6, Priority::Medium)), Err(DropReason::LaneFull));
        assert_eq!(l.drops().by_reason(DropReason::EvictedByPriority), 0);
        assert_eq!(l.len_total(), 6);
    });
}

#[test]
fn sampled_keeps_one_in_n_past_threshold() {
    let policy = DropPolicy::DropSampled {
        keep_one_in: NonZeroU16::new(2).unwrap(),
        threshold_percent: 50,
    };
    both_paths(policy, |l, push| {
        // Medium lane holds 4; sampling starts at 2 queued.
        let results: Vec<_> = (0..6).map(|i| push(ev(i, Priority::Medium))).collect();
        assert_eq!(
            results,
            [
                Ok(()),
                Ok(()),
                Ok(()), // tick 0 kept
                Err(DropReason::Sampled),
                Ok(()), // tick 2 kept
                Err(DropReason::Sampled),
            ]
        );
        // Lane full: tick 4 is kept by sampling but refused by the lane.
        assert_eq!(push(ev(6, Priority::Medium)), Err(DropReason::LaneFull));
        assert_eq!(l.drops().by_reason(DropReason::Sampled), 2);
        assert_eq!(drain_ids(l), [0, 1, 2, 4]);
    });
}

#[test]
fn sampling_above_100_percent_never_starts() {
    let policy = DropPolicy::DropSampled {
        keep_one_in: NonZeroU16::new(10).unwrap(),
        threshold_percent: 101,
    };
    both_paths(policy, |l, push| {
        for i in 0..4 {
            push(ev(i, Priority::Medium)).unwrap();
        }
        assert_eq!(push(ev(9, Priority::Medium)), Err(DropReason::LaneFull));
        assert_eq!(l.drops().by_reason(DropReason::Sampled), 0);
    });
}

#[test]
fn try_push_hands_back_without_counting() {
    let l = lanes(DropPolicy::DropByPriority);
    let mut p = l.producer().unwrap();
    for i in 0..2 {
        l.try_push(ev(i, Priority::High)).unwrap();
        p.try_push(ev(10 + i, Priority::High)).unwrap();
    }
    assert_eq!(
        l.try_push(ev(3, Priority::High)),
        Err(ev(3, Priority::High))
    );
    assert_eq!(
        p.try_push(ev(13, Priority::High)),
        Err(ev(13, Priority::High))
    );
    assert_eq!(l.drops().total(), 0);
    assert_eq!(l.len(Priority::Low), 0);
    assert_eq!(l.len(Priority::High), 4);
}

#[test]
fn construction_errors_are_typed() {
    let bad = LaneCapacities { high: 3, ..SMALL };
    assert_eq!(
        StaticLanes::<9>::new(bad, DropPolicy::default()).err(),
        Some(LanesError::Capacity {
            priority: Priority::High,
            len: 3
        })
    );
    assert_eq!(
        StaticLanes::<10>::new(SMALL, DropPolicy::default()).err(),
        Some(LanesError::StorageSize { needed: 8, got: 10 })
    );
    assert_eq!(
        StaticLanes::<0, 0>::new(SMALL, DropPolicy::default()).err(),
        Some(LanesError::NoSets)
    );
    let mut slots: [Slot<Event>; 16] = [const { Slot::new() }; 16];
    let l: Lanes<_, 2> =
        Lanes::with_storage(&mut slots[..], SMALL, DropPolicy::DropNewest).unwrap();
    l.producer().unwrap().push(ev(1, Priority::Low)).unwrap();
    assert_eq!(l.len(Priority::Low), 1);
    assert_eq!(l.capacity_total(), 16);
    assert!(
        std::format!("{}", LanesError::StorageSize { needed: 8, got: 10 }).contains("10 slots")
    );
}

/// Owned producers and shared pushers on several threads under every
/// policy while the consumer drains: each event is drained exactly once
/// or counted as dropped, never both, never neither.
#[test]
fn concurrent_conservation_under_every_policy() {
    let policies = [
        DropPolicy::DropNewest,
        DropPolicy::DropOldest,
        DropPolicy::DropByPriority,
        DropPolicy::DropSampled {
            keep_one_in: NonZeroU16::new(3).unwrap(),
            threshold_percent: 50,
        },
    ];
    let per_thread: u32 = if cfg!(miri) { 40 } else { 50_000 };
    // Two threads own a set each; two more share set 0.
    const THREADS: u32 = 4;
    for policy in policies {
        let lanes = Arc::new(lanes(policy));
        let total = THREADS * per_thread;
        let drained: Arc<Vec<AtomicU32>> =
            Arc::new((0..total).map(|_| AtomicU32::new(0)).collect());
        let refused = Arc::new(AtomicU32::new(0));
        let producers: Vec<_> = (0..THREADS)
            .map(|t| {
                let lanes = lanes.clone();
                let refused = refused.clone();
                std::thread::spawn(move || {
                    let mut own = if t < 2 {
                        Producer::claim(&*lanes)
                    } else {
                        None
                    };
                    for i in 0..per_thread {
                        let id = t * per_thread + i;
                        let e = ev(id, Priority::ALL[(id % 3) as usize]);
                        let result = match own.as_mut() {
                            Some(p) => p.push(e),
                            None => lanes.push(e),
                        };
                        if result.is_err() {
                            refused.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        let mut consumer = lanes.consumer().unwrap();
        let mut drain = || {
            consumer.drain(7, |e| {
                drained[e.key.get() as usize].fetch_add(1, Ordering::Relaxed);
            })
        };
        while !producers.iter().all(|p| p.is_finished()) {
            if drain() == 0 {
                std::thread::yield_now();
            }
        }
        for p in producers {
            p.join().unwrap();
        }
        while drain() > 0 {}
        let delivered: u32 = drained.iter().map(|c| c.load(Ordering::Relaxed)).sum();
        assert!(
            drained.iter().all(|c| c.load(Ordering::Relaxed) <= 1),
            "{policy:?}"
        );
        let dropped = lanes.drops().total() as u32;
        assert_eq!(delivered + dropped, total, "{policy:?}");
        let evicted = (lanes.drops().by_reason(DropReason::EvictedOldest)
            + lanes.drops().by_reason(DropReason::EvictedByPriority)) as u32;
        assert_eq!(
            refused.load(Ordering::Relaxed) + evicted,
            dropped,
            "{policy:?}"
        );
        assert_eq!(lanes.pushed(), lanes.popped());
        assert_eq!(lanes.len_total(), 0);
    }
}
