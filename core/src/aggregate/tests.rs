//! The aggregation tables' tests: every writer and the reader together.

use super::layout::{COUNT_MASK, TABLE, home};
use super::*;
use std::sync::Arc;
use std::vec::Vec;

type Table = Aggregates<std::boxed::Box<[Word]>>;

/// Tables with `pool` words for cells and bucket tables. The tests
/// keep pools small: miri's borrow tracking costs time in proportion
/// to the storage a slice of it spans.
fn table(config: AggregatesConfig, pool: usize) -> Table {
    // Zeroed storage, as the std client makes it, so that miri checks
    // `Word::zeroed` too.
    let words = Word::zeroed(config.fixed_words() + pool).unwrap();
    Aggregates::with_storage(words, config).unwrap()
}

fn key(i: u32) -> KeyId {
    KeyId::from_raw(i)
}

fn counter(t: &Table, s: SeriesId) -> (i64, u64) {
    match t.snapshot(s).unwrap().value {
        Totals::Counter { sum, count } => (sum, count),
        other => panic!("{other:?}"),
    }
}

fn distribution(t: &Table, s: SeriesId) -> (u64, f64, f64, f64, u64) {
    match t.snapshot(s).unwrap().value {
        Totals::Distribution {
            count,
            sum,
            min,
            max,
            unbucketed,
        } => (count, sum, min, max, unbucketed),
        other => panic!("{other:?}"),
    }
}

#[test]
fn counters_sum_owned_and_shared_additions_exactly() {
    let t = table(AggregatesConfig::new(10, 2), 256);
    let c = t.insert(key(7), Kind::Counter).unwrap();
    let mut a = Shard::claim(&t).unwrap();
    let mut b = Shard::claim(&t).unwrap();
    assert!(Shard::claim(&t).is_none(), "two shards only");
    for i in 0..1000 {
        a.add(c, i);
        b.add(c, -1);
        t.add(c, 2);
    }
    assert_eq!(counter(&t, c), (499_500 - 1000 + 2000, 3000));
    let s = t.snapshot(c).unwrap();
    assert_eq!((s.key, s.kind, s.changes), (key(7), Kind::Counter, 3000));
    assert_eq!(t.find(key(7), Kind::Counter), Some(c));
    assert_eq!(t.find(key(7), Kind::Gauge), None);
}

#[test]
fn gauge_sets_and_changes_from_everywhere_compose() {
    let t = table(AggregatesConfig::new(10, 2), 1024);
    let g = t.insert(key(1), Kind::Gauge).unwrap();
    let mut a = Shard::claim(&t).unwrap();
    let mut b = Shard::claim(&t).unwrap();
    a.set(g, 100.0);
    a.set(g, 0.0);
    for i in 0..10 {
        [&mut a, &mut b][i % 2].change(g, 1.0);
    }
    for _ in 0..3 {
        t.change(g, -1.0);
    }
    let s = t.snapshot(g).unwrap();
    assert_eq!(s.value, Totals::Gauge { value: 7.0 });
    assert_eq!(s.changes, 15);
    b.set(g, -2.5);
    assert_eq!(t.snapshot(g).unwrap().value, Totals::Gauge { value: -2.5 });
}

#[test]
fn a_gauge_set_forgets_the_changes_before_it_and_counts_those_after() {
    let t = table(AggregatesConfig::new(4, 2), 1024);
    let g = t.insert(key(1), Kind::Gauge).unwrap();
    let mut a = Shard::claim(&t).unwrap();
    let mut b = Shard::claim(&t).unwrap();
    let value = |t: &Table| t.snapshot(g).unwrap().value;
    a.change(g, 5.0);
    b.change(g, 2.0);
    t.change(g, 1.0);
    assert_eq!(value(&t), Totals::Gauge { value: 8.0 });
    // A set from a shard, then from the shared path: each one starts
    // an epoch in which the shards' earlier sums no longer count.
    b.set(g, 10.0);
    assert_eq!(value(&t), Totals::Gauge { value: 10.0 });
    a.change(g, -1.0);
    assert_eq!(value(&t), Totals::Gauge { value: 9.0 });
    t.set(g, 0.5);
    b.change(g, 0.25);
    a.change(g, 0.25);
    assert_eq!(value(&t), Totals::Gauge { value: 1.0 });
    // Sets with no change between them need no new epoch.
    a.set(g, 3.0);
    a.set(g, 4.0);
    assert_eq!(value(&t), Totals::Gauge { value: 4.0 });
    // Sets of the value it has (not written again) are counted, and a
    // change after them counts.
    b.set(g, 4.0);
    t.set(g, 4.0);
    a.change(g, 1.0);
    assert_eq!(value(&t), Totals::Gauge { value: 5.0 });
    // The value stored is 4 again, but the change since is forgotten.
    b.set(g, 4.0);
    assert_eq!(value(&t), Totals::Gauge { value: 4.0 });
    assert_eq!(t.snapshot(g).unwrap().changes, 14);
}

#[test]
fn gauge_sets_racing_changes_on_threads_leave_a_value_it_had() {
    let t = Arc::new(table(AggregatesConfig::new(4, 2), 1024));
    let g = t.insert(key(1), Kind::Gauge).unwrap();
    let n: u32 = if cfg!(miri) { 30 } else { 20_000 };
    let changers: Vec<_> = (0..3)
        .map(|_| {
            let t = t.clone();
            std::thread::spawn(move || {
                // Two threads own shards, one changes the value itself.
                let mut shard = Shard::claim(t.clone());
                for _ in 0..n {
                    match &mut shard {
                        Some(s) => s.change(g, 1.0),
                        None => t.change(g, 1.0),
                    }
                }
                shard
            })
        })
        .collect();
    for i in 0..n / 10 {
        t.set(g, -1.0);
        if let Some(Snapshot {
            value: Totals::Gauge { value },
            ..
        }) = t.snapshot(g)
        {
            // At least the set, at most every change after it.
            assert!((-1.0..=f64::from(3 * n)).contains(&value), "{i}: {value}");
            assert_eq!(value.fract(), 0.0);
        }
    }
    let mut shards: Vec<_> = changers.into_iter().map(|c| c.join().unwrap()).collect();
    t.set(g, 100.0);
    for s in shards.iter_mut().flatten() {
        s.change(g, 1.0);
    }
    t.change(g, 1.0);
    assert_eq!(t.snapshot(g).unwrap().value, Totals::Gauge { value: 103.0 });
    assert_eq!(
        t.snapshot(g).unwrap().changes,
        u64::from(3 * n + n / 10 + 4)
    );
}

#[test]
fn distributions_merge_counts_sums_extremes_and_buckets() {
    let t = table(AggregatesConfig::new(10, 2), 2048);
    let h = t.insert(key(3), Kind::Histogram).unwrap();
    let mut a = Shard::claim(&t).unwrap();
    let mut b = Shard::claim(&t).unwrap();
    let mut all = Vec::new();
    // Every bucket of the 97 values many times over; fewer under miri.
    let n = if cfg!(miri) { 388 } else { 3_000u32 };
    for i in 0..n {
        let v = f64::from(i % 97) * 1.5 - 20.0;
        match i % 3 {
            0 => a.record(h, v).unwrap(),
            1 => b.record(h, v).unwrap(),
            _ => t.record(h, v).unwrap(),
        }
        all.push(v);
    }
    let sum: f64 = all.iter().sum();
    let (count, got_sum, min, max, unbucketed) = distribution(&t, h);
    assert_eq!((count, unbucketed), (u64::from(n), 0));
    assert_eq!(got_sum, sum);
    assert_eq!((min, max), (-20.0, 96.0 * 1.5 - 20.0));
    // Buckets come in id order, once each, and add up to the count.
    let buckets: Vec<(u16, u64)> = t.buckets(h, 0).collect();
    assert!(buckets.windows(2).all(|w| w[0].0 < w[1].0));
    assert_eq!(buckets.iter().map(|b| b.1).sum::<u64>(), u64::from(n));
    let mut expected: Vec<(u16, u64)> = Vec::new();
    let mut ids: Vec<u16> = all.iter().map(|&v| bucket_of(v)).collect();
    ids.sort_unstable();
    for id in ids {
        match expected.last_mut() {
            Some((last, n)) if *last == id => *n += 1,
            _ => expected.push((id, 1)),
        }
    }
    assert_eq!(buckets, expected);
    // At a shift, neighbours merge and the total stays.
    let coarse: Vec<(u16, u64)> = t.buckets(h, 3).collect();
    assert!(coarse.len() < buckets.len());
    let mut merged: Vec<(u16, u64)> = Vec::new();
    for (id, n) in expected {
        match merged.last_mut() {
            Some((last, m)) if *last == id >> 3 => *m += n,
            _ => merged.push((id >> 3, n)),
        }
    }
    assert_eq!(coarse, merged);
}

#[test]
#[cfg_attr(
    miri,
    ignore = "safe arithmetic over tens of thousands of values: hours under miri, nothing for it to find"
)]
fn quantiles_from_the_buckets_are_within_the_stated_error() {
    let t = table(AggregatesConfig::new(4, 1), 1 << 16);
    let d = t.insert(key(0), Kind::Histogram).unwrap();
    let mut shard = Shard::claim(&t).unwrap();
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let n = 50_000;
    let mut values: Vec<f64> = (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Log-uniform from 1 µs to 10 s, in ns.
            10f64
                .powf(3.0 + 7.0 * (x >> 11) as f64 / (1u64 << 53) as f64)
                .round()
        })
        .collect();
    for (i, &v) in values.iter().enumerate() {
        if i % 5 == 0 {
            t.record(d, v).unwrap();
        } else {
            shard.record(d, v).unwrap();
        }
    }
    values.sort_by(f64::total_cmp);
    let (_, _, min, max, unbucketed) = distribution(&t, d);
    assert_eq!(unbucketed, 0);
    let mut buckets: Vec<(u16, u64)> = t.buckets(d, 0).collect();
    buckets.sort_by_key(|&(id, _)| value_order(id));
    for q in [0.0, 0.001, 0.25, 0.5, 0.9, 0.99, 0.999, 1.0] {
        let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
        let exact = values[rank - 1];
        let got = quantile(buckets.iter().copied(), 0, q, min, max).unwrap();
        let err = (got - exact).abs() / exact;
        assert!(
            err <= MAX_RELATIVE_ERROR,
            "q {q}: {got} vs {exact} ({err:.4})"
        );
    }
}

#[test]
fn a_full_shard_table_overflows_into_the_shared_one_and_loses_nothing() {
    let config = AggregatesConfig::new(4, 1).with_buckets(8, 64);
    let t = table(config, 1024);
    let d = t.insert(key(0), Kind::Histogram).unwrap();
    let mut shard = Shard::claim(&t).unwrap();
    // 40 distinct buckets: more than 8 slots hold.
    for i in 0..40 {
        shard
            .record(
                d,
                f64::from(1u32 << i.min(30)) * (1.0 + f64::from(i % 4) / 4.0),
            )
            .unwrap();
    }
    let (count, ..) = distribution(&t, d);
    assert_eq!(count, 40);
    assert_eq!(t.buckets(d, 0).map(|b| b.1).sum::<u64>(), 40);
}

#[test]
fn a_shard_table_grows_to_hold_a_wide_distribution() {
    let t = table(AggregatesConfig::new(4, 1), 1024);
    let d = t.insert(key(0), Kind::Timer).unwrap();
    let mut shard = Shard::claim(&t).unwrap();
    let mut x = 1.0f64;
    let mut n = 0;
    // About 320 distinct buckets over 20 powers of two.
    while x < 1e6 {
        shard.record(d, x).unwrap();
        x *= 1.045;
        n += 1;
    }
    let (_, (_, slots)) = t.shard_state(0, d.index()).unwrap();
    assert_eq!(slots, 512, "grown from 32 to 128 to 512");
    assert!(
        t.at(t.entry(d.index()) + TABLE).unwrap().load() == 0,
        "nothing overflowed into the shared table"
    );
    assert_eq!(distribution(&t, d).0, n);
    assert_eq!(t.buckets(d, 0).map(|b| b.1).sum::<u64>(), n);
}

#[test]
fn a_run_of_neighbouring_buckets_sits_each_at_its_home_slot() {
    let t = table(AggregatesConfig::new(4, 1), 2048);
    let d = t.insert(key(0), Kind::Histogram).unwrap();
    let mut shard = Shard::claim(&t).unwrap();
    // About 110 buckets each side of zero: positive and negative runs of
    // the same magnitudes.
    let mut x = 1.0;
    while x < 1e3 {
        shard.record(d, x).unwrap();
        shard.record(d, -x).unwrap();
        x *= 1.03;
    }
    let (_, (table, slots)) = t.shard_state(0, d.index()).unwrap();
    assert_eq!(slots, 512);
    let mut held = 0;
    for slot in 0..slots {
        let v = t.at(table + slot).unwrap().load();
        if v != 0 {
            assert_eq!(
                slot,
                home((v >> 48) as u16, slots),
                "bucket {} moved",
                v >> 48
            );
            held += 1;
        }
    }
    assert!(held > 200, "{held} buckets");
}

#[test]
fn powers_of_two_do_not_collide_in_the_first_table() {
    let t = table(AggregatesConfig::new(4, 1), 256);
    let d = t.insert(key(0), Kind::Histogram).unwrap();
    let mut shard = Shard::claim(&t).unwrap();
    // Sizes of 1 B to 1 MiB: bucket ids 16 apart.
    for p in 0..21 {
        shard.record(d, f64::from(1u32 << p)).unwrap();
    }
    let (_, (table, slots)) = t.shard_state(0, d.index()).unwrap();
    assert_eq!(slots, 32, "not grown");
    for p in 0..21 {
        let id = bucket_of(f64::from(1u32 << p));
        let v = t.at(table + home(id, slots)).unwrap().load();
        assert_eq!(v, u64::from(id) << 48 | 1, "2^{p} at its home");
    }
}

#[test]
fn a_word_at_its_count_limit_makes_way_for_another() {
    let t = table(AggregatesConfig::new(4, 1), 256);
    let d = t.insert(key(0), Kind::Histogram).unwrap();
    let mut shard = Shard::claim(&t).unwrap();
    shard.record(d, 5.0).unwrap();
    let (_, (table, slots)) = t.shard_state(0, d.index()).unwrap();
    let word = t.at(table + home(bucket_of(5.0), slots)).unwrap();
    word.store(u64::from(bucket_of(5.0)) << 48 | (COUNT_MASK - 1));
    shard.record(d, 5.0).unwrap(); // reaches the limit
    shard.record(d, 5.0).unwrap(); // goes to the next slot
    assert_eq!(word.load() & COUNT_MASK, COUNT_MASK);
    let buckets: Vec<(u16, u64)> = t.buckets(d, 0).collect();
    assert_eq!(buckets, [(bucket_of(5.0), COUNT_MASK + 1)]);
}

#[test]
fn without_memory_writers_fall_back_to_shared_state_and_stay_exact() {
    // A pool too small for even one page: every shard write is shared.
    let t = table(AggregatesConfig::new(8, 2), 16);
    let c = t.insert(key(0), Kind::Counter).unwrap();
    let g = t.insert(key(1), Kind::Gauge).unwrap();
    let d = t.insert(key(2), Kind::Timer).unwrap();
    let mut shard = Shard::claim(&t).unwrap();
    for i in 0..100 {
        shard.add(c, 3);
        shard.change(g, 1.0);
        shard.record(d, f64::from(i)).unwrap();
    }
    assert_eq!(counter(&t, c), (300, 100));
    assert_eq!(t.snapshot(g).unwrap().changes, 100);
    let (count, sum, min, max, unbucketed) = distribution(&t, d);
    assert_eq!((count, sum, min, max), (100, 4950.0, 0.0, 99.0));
    assert_eq!(unbucketed, 100, "no room for a bucket table either");
    let stats = t.stats();
    assert!(stats.pool_exhausted > 0);
    assert_eq!(stats.pool_used, 0);
}

#[test]
fn a_released_shard_carries_its_totals_to_the_next_owner() {
    let t = table(AggregatesConfig::new(4, 1), 1024);
    let c = t.insert(key(0), Kind::Counter).unwrap();
    {
        let mut first = Shard::claim(&t).unwrap();
        first.add(c, 5);
        assert_eq!(t.stats().shards_claimed, 1);
    }
    assert_eq!(t.stats().shards_claimed, 0);
    let mut second = Shard::claim(&t).unwrap();
    second.add(c, 6);
    assert_eq!(counter(&t, c), (11, 2));
}

#[test]
fn refusals_limits_and_errors_are_typed() {
    let t = table(AggregatesConfig::new(2, 1), 64);
    let d = t.insert(key(0), Kind::Histogram).unwrap();
    let mut shard = Shard::claim(&t).unwrap();
    assert_eq!(shard.record(d, f64::NAN), Err(NotFinite));
    assert_eq!(t.record(d, f64::INFINITY), Err(NotFinite));
    assert_eq!(t.stats().not_finite, 2);
    assert_eq!(distribution(&t, d).0, 0);
    t.insert(key(1), Kind::Counter).unwrap();
    assert_eq!(
        t.insert(key(2), Kind::Counter),
        Err(AggregatesError::Full { capacity: 2 })
    );
    // A call that does not match the series' kind records nothing.
    let c = t.series_at(1).unwrap();
    shard.record(c, 1.0).unwrap();
    t.set(c, 1.0);
    assert_eq!(counter(&t, c), (0, 0));
    let config = AggregatesConfig::new(4, 1);
    let short: std::boxed::Box<[Word]> = (0..3).map(|_| Word::new()).collect();
    assert_eq!(
        Aggregates::with_storage(short, config).err(),
        Some(AggregatesError::Storage {
            needed: config.fixed_words(),
            got: 3
        })
    );
    let bad: std::boxed::Box<[Word]> = (0..1000).map(|_| Word::new()).collect();
    assert_eq!(
        Aggregates::with_storage(bad, config.with_buckets(12, 64)).err(),
        Some(AggregatesError::Config)
    );
    let _ = std::format!("{}", AggregatesError::Config);
}

#[test]
fn threads_with_shards_and_without_record_exact_totals() {
    // Room for three shards' pages and bucket tables grown to 512 slots
    // (the smaller ones they grew from kept) and the shared one's 512.
    // Under miri, 50 values: tables of 128, and room to spare, as a
    // thread that claims a shard and gives it back (`filter`) may
    // leave a thread of the first three without one.
    let (shared, pool) = if cfg!(miri) { (128, 2048) } else { (512, 4096) };
    let config = AggregatesConfig::new(16, 3).with_buckets(1024, shared);
    let t = Arc::new(table(config, pool));
    let c = t.insert(key(0), Kind::Counter).unwrap();
    let g = t.insert(key(1), Kind::Gauge).unwrap();
    let d = t.insert(key(2), Kind::Histogram).unwrap();
    let n: u32 = if cfg!(miri) { 50 } else { 50_000 };
    let threads: Vec<_> = (0..5)
        .map(|i| {
            let t = t.clone();
            std::thread::spawn(move || {
                // Three threads own shards; two share.
                let mut shard = Shard::claim(t.clone()).filter(|_| i < 3);
                for v in 0..n {
                    match &mut shard {
                        Some(s) => {
                            s.add(c, 1);
                            s.change(g, 1.0);
                            s.record(d, f64::from(v % 1000)).unwrap();
                        }
                        None => {
                            t.add(c, 1);
                            t.change(g, 1.0);
                            t.record(d, f64::from(v % 1000)).unwrap();
                        }
                    }
                }
            })
        })
        .collect();
    for th in threads {
        th.join().unwrap();
    }
    let total = 5 * u64::from(n);
    assert_eq!(counter(&t, c), (total as i64, total));
    let s = t.snapshot(g).unwrap();
    assert_eq!(
        (s.value, s.changes),
        (
            Totals::Gauge {
                value: total as f64
            },
            total
        )
    );
    let (count, .., unbucketed) = distribution(&t, d);
    assert_eq!((count, unbucketed), (total, 0), "{:?}", t.stats());
    assert_eq!(t.buckets(d, 0).map(|b| b.1).sum::<u64>(), total);
}

/// The raw view the std adapter's thread-local fast path records
/// through (`ShardView`): the same totals as the shard's own calls,
/// and `false` wherever the shard must act (a cell to make, a table to
/// grow, a value to refuse).
#[test]
fn a_view_records_into_its_shards_cells() {
    let t = table(AggregatesConfig::new(8, 1), 1024);
    let c = t.insert(key(0), Kind::Counter).unwrap();
    let g = t.insert(key(1), Kind::Gauge).unwrap();
    let d = t.insert(key(2), Kind::Histogram).unwrap();
    let mut shard = Shard::claim(&t).unwrap();
    let view = shard.view();
    // The closures' calls all come while `shard` is alive, on the
    // thread that owns it.
    // SAFETY: `shard` outlives the call and this thread owns it.
    let add = |s, n| unsafe { view.add(s, n) };
    // SAFETY: as for `add`.
    let set = |s, v| unsafe { view.set(s, v) };
    // SAFETY: as for `add`.
    let change = |s, v| unsafe { view.change(s, v) };
    // SAFETY: as for `add`.
    let record = |s, v| unsafe { view.record(s, v) };
    assert!(!add(c, 1), "no cell yet");
    shard.add(c, 1);
    shard.set(g, 1.0);
    shard.record(d, 1.0).unwrap();
    for i in 0..50 {
        assert!(add(c, 2));
        assert!(set(g, f64::from(i)));
        assert!(change(g, 0.5));
        assert!(record(d, f64::from(i % 20)));
    }
    assert!(!record(d, f64::NAN), "refused by the shard");
    // More distinct buckets than the first table holds: the shard grows it.
    let mut grew = false;
    for i in 0..200 {
        let v = 1.0 + f64::from(i) * 37.0;
        if !record(d, v) {
            shard.record(d, v).unwrap();
            grew = true;
        }
    }
    assert!(grew);
    assert_eq!(counter(&t, c), (101, 51));
    let s = t.snapshot(g).unwrap();
    assert_eq!((s.value, s.changes), (Totals::Gauge { value: 49.5 }, 101));
    assert_eq!(distribution(&t, d).0, 251);
    assert_eq!(t.buckets(d, 0).map(|b| b.1).sum::<u64>(), 251);
}

#[test]
fn the_reader_notes_what_it_sent() {
    let t = table(AggregatesConfig::new(2, 1), 64);
    let c = t.insert(key(0), Kind::Counter).unwrap();
    assert_eq!(t.sent(c), 0);
    t.set_sent(c, 42);
    assert_eq!(t.sent(c), 42);
    assert_eq!(t.series_at(0), Some(c));
    assert_eq!(t.series_at(1), None);
    assert!(t.memory_bytes() >= t.config().fixed_words() * 8);
}
