//! Exhaustive interleaving tests of the ring protocol with loom.
//!
//! `RUSTFLAGS="--cfg loom" cargo test -p stats-core --release --test loom`
//! (`.ci/run` does this). Under `--cfg loom` the ring's atomics and cells are
//! loom's, so these models explore every interleaving (up to the preemption
//! bound) of the real push, pop, batch-pop and eviction code and loom's
//! checker flags any unsynchronised access to a slot.

#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use stats_core::{
    Aggregates, AggregatesConfig, DropPolicy, DropReason, Event, KeyId, Kind, LaneCapacities,
    Lanes, Priority, Producer, Ring, Shard, Slot, Totals, Word,
};

fn ring<const N: usize>() -> Ring<u32, [Slot<u32>; N]> {
    Ring::with_storage(core::array::from_fn(|_| Slot::new())).unwrap()
}

/// Two producers race each other and the consumer through a 2-slot ring;
/// every accepted value comes out exactly once, in order per producer.
#[test]
fn two_producers_one_consumer() {
    loom::model(|| {
        let r = Arc::new(ring::<2>());
        let producers: Vec<_> = [10u32, 20]
            .into_iter()
            .map(|base| {
                let r = r.clone();
                thread::spawn(move || (0..2).filter(|i| r.try_push(base + i).is_ok()).count())
            })
            .collect();
        let mut got = Vec::new();
        for _ in 0..3 {
            if let Some(v) = r.try_pop() {
                got.push(v);
            }
        }
        let accepted: usize = producers.into_iter().map(|p| p.join().unwrap()).sum();
        while let Some(v) = r.try_pop() {
            got.push(v);
        }
        assert_eq!(got.len(), accepted);
        for base in [10, 20] {
            let mine: Vec<_> = got.iter().filter(|&&v| v / 10 == base / 10).collect();
            assert!(mine.windows(2).all(|w| w[0] < w[1]), "{got:?}");
        }
    });
}

/// A producer evicting (popping from the producer side) races the consumer's
/// batch pop; each value is taken by exactly one of them.
#[test]
fn eviction_races_batch_pop() {
    loom::model(|| {
        let r = Arc::new(ring::<2>());
        r.try_push(1).unwrap();
        r.try_push(2).unwrap();
        let evictor = {
            let r = r.clone();
            thread::spawn(move || {
                let evicted = r.try_pop();
                let pushed = r.try_push(3).is_ok();
                (evicted, pushed)
            })
        };
        let mut got = Vec::new();
        r.pop_batch(2, |v| got.push(v));
        let (evicted, pushed) = evictor.join().unwrap();
        got.extend(evicted);
        while let Some(v) = r.try_pop() {
            got.push(v);
        }
        got.sort_unstable();
        let expected: &[u32] = if pushed { &[1, 2, 3] } else { &[1, 2] };
        assert_eq!(got, expected);
    });
}

/// A producer that has claimed a slot but not published it never makes the
/// consumer wait, and its value is not lost.
#[test]
fn consumer_never_waits_for_a_claimed_slot() {
    loom::model(|| {
        let r = Arc::new(ring::<4>());
        let producer = {
            let r = r.clone();
            thread::spawn(move || {
                r.try_push(1).unwrap();
                r.try_push(2).unwrap();
            })
        };
        // Bounded: the consumer returns whatever is published and moves on.
        let mut got = Vec::new();
        for _ in 0..2 {
            if let Some(v) = r.try_pop() {
                got.push(v);
            }
        }
        producer.join().unwrap();
        while let Some(v) = r.try_pop() {
            got.push(v);
        }
        assert_eq!(got, [1, 2]);
    });
}

fn event(id: u32, priority: Priority) -> Event {
    Event::new(KeyId::from_raw(id), Kind::Counter, 1.0, 0, priority)
}

/// `DropByPriority` under contention: a high producer evicting from the low
/// lane races a low producer and the consumer; every event is drained or
/// counted as dropped, exactly once.
#[test]
fn lanes_conserve_events_under_eviction() {
    loom::model(|| {
        let caps = LaneCapacities {
            high: 2,
            medium: 2,
            low: 2,
        };
        let lanes: Arc<Lanes<_>> = Arc::new(
            Lanes::with_storage(
                core::array::from_fn::<_, 6, _>(|_| Slot::new()),
                caps,
                DropPolicy::DropByPriority,
            )
            .unwrap(),
        );
        // Medium lane full with medium events, low lane one short.
        for id in 0..2 {
            lanes.push(event(id, Priority::Medium)).unwrap();
        }
        lanes.push(event(2, Priority::Low)).unwrap();
        lanes.push(event(3, Priority::High)).unwrap();
        lanes.push(event(4, Priority::High)).unwrap();
        let high = {
            let lanes = lanes.clone();
            thread::spawn(move || lanes.push(event(5, Priority::High)))
        };
        let low = {
            let lanes = lanes.clone();
            thread::spawn(move || lanes.push(event(6, Priority::Low)))
        };
        let mut drained = Vec::new();
        let mut consumer = lanes.consumer().unwrap();
        consumer.drain(1, |e| drained.push(e.key.get()));
        let high = high.join().unwrap();
        let low = low.join().unwrap();
        consumer.drain(usize::MAX, |e| drained.push(e.key.get()));
        let mut unique = drained.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), drained.len(), "duplicates: {drained:?}");
        let dropped = lanes.drops().total();
        assert_eq!(drained.len() + dropped, 7, "{drained:?} {high:?} {low:?}");
        // A low event was always there to make room: the high one got in.
        assert_eq!(high, Ok(()));
        if low == Err(DropReason::LaneFull) {
            assert!(!drained.contains(&6));
        }
    });
}

/// Lanes of 2-slot lanes, a shared set and one owned set, under `DropOldest`.
fn owned_lanes() -> Arc<Lanes<[Slot<Event>; 12], 2>> {
    owned_lanes_with(DropPolicy::DropOldest)
}

fn owned_lanes_with(policy: DropPolicy) -> Arc<Lanes<[Slot<Event>; 12], 2>> {
    let caps = LaneCapacities {
        high: 2,
        medium: 2,
        low: 2,
    };
    let slots = core::array::from_fn(|_| Slot::new());
    Arc::new(Lanes::with_storage(slots, caps, policy).unwrap())
}

/// An owned producer (no read-modify-write on its push) filling a 2-slot lane
/// under `DropOldest`, evicting from the head while the consumer drains it:
/// every event is drained or counted as evicted, exactly once, and the owned
/// push never overwrites a slot the consumer is still reading.
#[test]
fn owned_producer_evicts_while_consumer_drains() {
    loom::model(|| {
        let lanes = owned_lanes();
        let producer = {
            let mut p = Producer::claim(lanes.clone()).unwrap();
            thread::spawn(move || {
                (0..3)
                    .filter(|&id| p.push(event(id, Priority::High)).is_err())
                    .count()
            })
        };
        let mut drained = Vec::new();
        let mut consumer = lanes.consumer().unwrap();
        consumer.drain(2, |e| drained.push(e.key.get()));
        let refused = producer.join().unwrap();
        consumer.drain(usize::MAX, |e| drained.push(e.key.get()));
        let mut unique = drained.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), drained.len(), "{drained:?}");
        let evicted = lanes.drops().by_reason(DropReason::EvictedOldest);
        assert_eq!(drained.len() + evicted + refused, 3, "{drained:?}");
        // The newest event always gets in under DropOldest.
        assert!(drained.contains(&2), "{drained:?}");
    });
}

/// The owner keeps evicting and pushing past a full lane while the consumer
/// is between reading the lane's indices: the consumer never claims more than
/// was published (no stale or duplicated events), and every event is drained,
/// evicted or refused exactly once.
#[test]
fn owned_evictions_racing_a_drain_never_overclaim() {
    loom::model(|| {
        let lanes = owned_lanes();
        let mut p = Producer::claim(lanes.clone()).unwrap();
        p.push(event(0, Priority::High)).unwrap();
        p.push(event(1, Priority::High)).unwrap();
        let producer = thread::spawn(move || {
            (2..5)
                .filter(|&id| p.push(event(id, Priority::High)).is_err())
                .count()
        });
        let mut drained = Vec::new();
        let mut consumer = lanes.consumer().unwrap();
        consumer.drain(usize::MAX, |e| drained.push(e.key.get()));
        let refused = producer.join().unwrap();
        consumer.drain(usize::MAX, |e| drained.push(e.key.get()));
        let mut unique = drained.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), drained.len(), "duplicates: {drained:?}");
        assert!(drained.iter().all(|&id| id < 5), "{drained:?}");
        let evicted = lanes.drops().by_reason(DropReason::EvictedOldest);
        assert_eq!(drained.len() + evicted + refused, 5, "{drained:?}");
    });
}

/// `DropByPriority` in an owned set moving an overflowed high event to the
/// back of the low lane to reach the low event behind it, while the consumer
/// drains: nothing is delivered twice or lost, no high event is dropped, and
/// the moves do not count as pushes.
#[test]
fn owned_priority_moves_racing_a_drain_conserve_events() {
    loom::model(|| {
        let lanes = owned_lanes_with(DropPolicy::DropByPriority);
        let mut p = Producer::claim(lanes.clone()).unwrap();
        // high [0, 1]; low [2 (high, overflowed), 3 (low)]; medium [4, 5].
        for (id, priority) in [
            (0, Priority::High),
            (1, Priority::High),
            (2, Priority::High),
            (3, Priority::Low),
            (4, Priority::High),
            (5, Priority::High),
        ] {
            p.push(event(id, priority)).unwrap();
        }
        let producer = thread::spawn(move || p.push(event(6, Priority::High)).is_err());
        let mut drained = Vec::new();
        let mut consumer = lanes.consumer().unwrap();
        consumer.drain(3, |e| drained.push(e.key.get()));
        let refused = producer.join().unwrap();
        consumer.drain(usize::MAX, |e| drained.push(e.key.get()));
        let mut unique = drained.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), drained.len(), "duplicates: {drained:?}");
        assert!(!refused);
        assert_eq!(lanes.drops().by_priority(Priority::High), 0);
        let dropped = lanes.drops().total();
        assert_eq!(drained.len() + dropped, 7, "{drained:?}");
        assert_eq!(lanes.pushed(), lanes.popped());
    });
}

/// An aggregation table of one or two series over a leaked slice (loom
/// models run many times; the leak is bounded by the model count), with
/// room in its pool for a shard's page and a bucket table.
fn tables(series: usize, shards: usize) -> Arc<Aggregates<&'static mut [Word]>> {
    let config = AggregatesConfig::new(series, shards).with_buckets(8, 8);
    let words: Vec<Word> = (0..config.fixed_words() + 256)
        .map(|_| Word::new())
        .collect();
    let words: &'static mut [Word] = Vec::leak(words);
    Arc::new(Aggregates::with_storage(words, config).unwrap())
}

/// One thread's shard goes to another thread, which carries on with its
/// totals, while the reader sums: the reader never sees more than was
/// added, and the end is exact.
#[test]
fn a_shard_handed_over_keeps_every_addition() {
    // Three threads over a table of loom atomics: three preemptions cover
    // the hand-over orders (unbounded, the model takes minutes).
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(3);
    model.check(|| {
        let t = tables(1, 1);
        let c = t.insert(KeyId::from_raw(0), Kind::Counter).unwrap();
        // Whoever finds the shard taken adds to the shared state; whoever
        // claims it after the other let go carries on with its cells.
        let add = |n: i64| {
            let t = t.clone();
            thread::spawn(move || match Shard::claim(t.clone()) {
                Some(mut shard) => shard.add(c, n),
                None => t.add(c, n),
            })
        };
        let (first, second) = (add(1), add(2));
        if let Some(Totals::Counter { sum, count }) = t.snapshot(c).map(|s| s.value) {
            assert!(sum <= 3 && count <= 2, "{sum} {count}");
        }
        first.join().unwrap();
        second.join().unwrap();
        assert_eq!(
            t.snapshot(c).unwrap().value,
            Totals::Counter { sum: 3, count: 2 }
        );
    });
}

/// A shard makes its page and distribution state while the reader reads:
/// the reader sees either nothing of them or them initialised (a minimum
/// read before the state's was set would be 0, not the value).
#[test]
fn a_new_distribution_state_is_seen_whole_or_not_at_all() {
    loom::model(|| {
        let t = tables(1, 1);
        let d = t.insert(KeyId::from_raw(0), Kind::Timer).unwrap();
        let writer = {
            let t = t.clone();
            thread::spawn(move || {
                let mut shard = Shard::claim(t).unwrap();
                shard.record(d, 5.0).unwrap();
            })
        };
        if let Some(Totals::Distribution {
            count, min, max, ..
        }) = t.snapshot(d).map(|s| s.value)
        {
            if count == 1 {
                assert_eq!((min, max), (5.0, 5.0));
            } else {
                assert!(min >= 5.0 && max <= 5.0, "{min} {max}");
            }
        }
        writer.join().unwrap();
        let Some(Totals::Distribution { count, sum, .. }) = t.snapshot(d).map(|s| s.value) else {
            panic!("a distribution");
        };
        assert_eq!((count, sum), (1, 5.0));
    });
}

/// The gauge of `t` at index 0 (its value, as the reader reads it).
fn gauge_value(t: &Aggregates<&'static mut [Word]>, g: stats_core::SeriesId) -> Option<f64> {
    match t.snapshot(g)?.value {
        Totals::Gauge { value } => Some(value),
        other => panic!("a gauge, not {other:?}"),
    }
}

/// A set from a writer without a shard races a shard's change (its second:
/// the first made the epoch dirty) and the reader: the set starts a new
/// epoch, so the change either counts after it or is forgotten with the
/// epoch it was made in; the reader sees only values the gauge had; the
/// changes are all counted.
#[test]
fn a_gauge_set_racing_a_shards_change_composes_in_some_order() {
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(3);
    model.check(|| {
        let t = tables(1, 1);
        let g = t.insert(KeyId::from_raw(0), Kind::Gauge).unwrap();
        let mut shard = Shard::claim(t.clone()).unwrap();
        shard.change(g, 1.0);
        let setter = {
            let t = t.clone();
            thread::spawn(move || t.set(g, 10.0))
        };
        let changer = thread::spawn(move || shard.change(g, 1.0));
        if let Some(v) = gauge_value(&t, g) {
            assert!([1.0, 2.0, 10.0, 11.0].contains(&v), "{v}");
        }
        setter.join().unwrap();
        changer.join().unwrap();
        let v = gauge_value(&t, g).expect("no set races the last read");
        assert!(v == 10.0 || v == 11.0, "{v}");
        assert_eq!(t.snapshot(g).unwrap().changes, 3);
    });
}

/// A shard's first change in a new epoch (it restarts its sum under its
/// seqlock) races a set starting the next one and the reader: the end is
/// the set's value, with the change after it or not.
#[test]
fn a_gauge_change_starting_its_epoch_races_a_set_and_the_reader() {
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(3);
    model.check(|| {
        let t = tables(1, 1);
        let g = t.insert(KeyId::from_raw(0), Kind::Gauge).unwrap();
        let mut shard = Shard::claim(t.clone()).unwrap();
        // Epoch 0 dirty with a sum of 3, then a set: the shard's sum is
        // stale and its next change restarts it.
        shard.change(g, 3.0);
        t.set(g, 4.0);
        let setter = {
            let t = t.clone();
            thread::spawn(move || {
                // Dirty only if the change below came first.
                t.set(g, 20.0);
            })
        };
        let changer = thread::spawn(move || shard.change(g, -1.0));
        if let Some(v) = gauge_value(&t, g) {
            assert!([4.0, 3.0, 20.0, 19.0].contains(&v), "{v}");
        }
        setter.join().unwrap();
        changer.join().unwrap();
        let v = gauge_value(&t, g).expect("no set races the last read");
        assert!(v == 20.0 || v == 19.0, "{v}");
    });
}

/// Two sets race each other and a shard's change: one of the values wins,
/// with the change counted after it or not.
#[test]
fn gauge_sets_racing_each_other_leave_one_of_them() {
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(2);
    model.check(|| {
        let t = tables(1, 1);
        let g = t.insert(KeyId::from_raw(0), Kind::Gauge).unwrap();
        let mut shard = Shard::claim(t.clone()).unwrap();
        shard.change(g, 1.0);
        let set = |v: f64| {
            let t = t.clone();
            thread::spawn(move || t.set(g, v))
        };
        let (five, seven) = (set(5.0), set(7.0));
        shard.change(g, 1.0);
        five.join().unwrap();
        seven.join().unwrap();
        let v = gauge_value(&t, g).expect("no set races the last read");
        assert!([5.0, 6.0, 7.0, 8.0].contains(&v), "{v}");
        assert_eq!(t.snapshot(g).unwrap().changes, 4);
    });
}
