//! The memory budget against the heap: an allocator that counts the bytes
//! live shows that what the collector counts against `max_memory` is what
//! its tables hold (long names and short, many buckets, many senders), and
//! that a small budget holds 10,000 series of 255-byte names and eight
//! long tags to it, every value still counted.
//!
//! One test: the allocator's count is the whole process's.

use stats_collector::{Aggregate, Collector, Limits};
use stats_std::stats_core::wire::{BucketSource, Encoder, EncoderConfig};
use stats_std::stats_core::{KeyId, Kind, Registry, Snapshot, Totals};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicI64, Ordering};

struct Live;

static LIVE: AtomicI64 = AtomicI64::new(0);

// SAFETY: every call is passed to the system allocator unchanged; the
// counter only adds and subtracts the sizes asked for.
unsafe impl GlobalAlloc for Live {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as i64, Ordering::Relaxed);
        // SAFETY: the caller's layout, as GlobalAlloc::alloc requires.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        // SAFETY: `ptr` came from this allocator with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
        // SAFETY: `ptr` came from this allocator with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Live = Live;

/// Counters have no buckets.
struct NoBuckets;

impl BucketSource for NoBuckets {
    fn for_each(&self, _: u32, _: &mut dyn FnMut(u16, u64)) {}
}

fn live() -> i64 {
    LIVE.load(Ordering::Relaxed)
}

/// A StatsD counter line for series `i`: a name of `name_len` bytes and
/// eight tags with values of `tag_len`.
fn line(i: usize, name_len: usize, tag_len: usize) -> String {
    let mut name = format!("series.{i}.");
    name.extend(std::iter::repeat_n('n', name_len - name.len()));
    let tags: Vec<String> = (0..8)
        .map(|t| format!("tag{t}:{}", "v".repeat(tag_len)))
        .collect();
    format!("{name}:1|c|#{}", tags.join(","))
}

/// The heap the collector's tables took for `fill`, and what it counted.
fn measured(limits: Limits, fill: impl FnOnce(&mut Collector)) -> (Collector, i64, u64) {
    let mut c = Collector::new(limits);
    let before = live();
    fill(&mut c);
    let grown = live() - before;
    let counted = c.memory().tables();
    (c, grown, counted)
}

fn assert_close(what: &str, heap: i64, counted: u64) {
    let ratio = counted as f64 / heap as f64;
    assert!(
        (0.9..1.5).contains(&ratio),
        "{what}: {counted} bytes counted for {heap} on the heap ({ratio:.2})"
    );
}

#[test]
fn the_budget_counts_what_the_heap_holds_and_holds_it() {
    let limits = Limits::default();
    for (what, name_len, tag_len) in [("long names", 255, 60), ("short names", 12, 4)] {
        let lines: Vec<String> = (0..10_000).map(|i| line(i, name_len, tag_len)).collect();
        let (c, heap, counted) = measured(limits, |c| {
            for l in &lines {
                c.ingest(l.as_bytes());
            }
        });
        assert_eq!(c.series().count(), 10_000, "{what}");
        assert_close(what, heap, counted);
    }

    // Histograms across many buckets.
    let (_, heap, counted) = measured(limits, |c| {
        for i in 0..2_000 {
            let value = 1.02f64.powi(i);
            c.ingest(format!("h.{}:{value}|h", i % 10).as_bytes());
        }
    });
    assert_close("buckets", heap, counted);

    // Senders that aggregate at the source: each one's totals in each
    // series, and the sender table.
    let mut registry = Registry::<64, 4096>::new();
    let keys: Vec<KeyId> = (0..50)
        .map(|i| registry.register(&format!("t{i}"), &[]).unwrap())
        .collect();
    let (_, heap, counted) = measured(limits, |c| {
        let mut buf = vec![0u8; 1472];
        for sender in 1..=500u64 {
            let mut encoder = Encoder::new(EncoderConfig::new(sender)).unwrap();
            let mut w = encoder.begin_series(&mut buf, 2, 1).unwrap();
            for &key in &keys {
                let totals = Snapshot {
                    key,
                    kind: Kind::Counter,
                    changes: 1,
                    value: Totals::Counter { sum: 3, count: 1 },
                };
                w.push(&totals, &NoBuckets, |k| registry.get(k)).unwrap();
            }
            let d = w.finish().to_vec();
            c.ingest(&d);
        }
    });
    assert_close("senders", heap, counted);

    // A budget of 4 MiB against what took 65 MB before it existed.
    let budget = 4 << 20;
    let lines: Vec<String> = (0..10_000).map(|i| line(i, 255, 60)).collect();
    let mut small = limits;
    small.max_memory = budget;
    let (c, heap, counted) = measured(small, |c| {
        for l in &lines {
            c.ingest(l.as_bytes());
        }
    });
    assert!(counted <= budget, "{counted}");
    assert!(heap <= budget as i64, "{heap} bytes on the heap");
    let kept = c.series().filter(|s| s.name.starts_with("series.")).count() as u64;
    let refused = c.totals().memory_refused.series;
    assert!(kept > 1_000, "{kept} kept");
    assert_eq!(kept + refused, 10_000);
    let overflow = c.series().find(|s| s.name == "stats_collector_overflow");
    assert_eq!(
        overflow.map(|s| s.aggregate()),
        Some(Aggregate::Counter(refused as f64)),
        "every refused series' value counted in the overflow"
    );
}
