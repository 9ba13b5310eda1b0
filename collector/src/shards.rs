//! A server's collector: a [`Collector`] for each receiving thread (a
//! shard), each behind a lock of its own that only its thread takes while
//! it takes datagrams in, so that receiving threads share no lock on the
//! hot path. The shards share each series' id and gauge, and which shard
//! accounts for each sender: a sender's datagrams are
//! taken in by the shard that saw it first (where the kernel steers its
//! address), and a datagram of it that another thread read is handed
//! over. What they hold is merged when a view is taken ([`Shards::view`]):
//! counters summed, distributions merged, of a sender's totals the ones
//! of the highest sequence number; so that building an export, however
//! many series it holds, stops a receiving thread only for as long as one
//! chunk of them takes to copy.

use crate::collector::{Collector, IngestTotals};
use crate::health::HealthCounts;
use crate::histograms::Histograms;
use crate::ingest::Reading;
use crate::lines::ClosedSets;
use crate::memory::Memory;
use crate::outputs::push::Destination;
use crate::shared::Limits;
use crate::shared::Shared;
use crate::view::{Merge, View};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Series [`Shards::view`] copies under one hold of a shard's lock: about
/// 0.3 ms of ingest's time at 100,000 series of three tags
/// (PERFORMANCE.md).
pub const SERIES_PER_HOLD: usize = 1_000;

/// How long [`Shards::view`] lets a lock go between two holds.
const BETWEEN_HOLDS: Duration = Duration::from_micros(20);

/// The shards of a server's collector.
pub struct Shards {
    pub(crate) shared: Arc<Shared>,
    shards: Box<[Padded]>,
}

/// A shard on cache lines of its own: two receiving threads writing their
/// own shards' counters never write one line.
#[repr(align(128))]
struct Padded(Mutex<Collector>);

impl std::fmt::Debug for Shards {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shards")
            .field("shards", &self.shards.len())
            .finish_non_exhaustive()
    }
}

impl Shards {
    /// `shards` empty collectors (at least one) within `limits`, taken
    /// together.
    pub fn new(limits: Limits, shards: usize) -> Self {
        let shared = Arc::new(Shared::new(limits));
        let shards = (0..shards.max(1))
            .map(|shard| Padded(Mutex::new(Collector::of_shards(shared.clone(), shard))))
            .collect();
        Shards { shared, shards }
    }

    /// Exports distributions as `histograms` says.
    pub fn set_histograms(&self, histograms: Histograms) {
        self.shared.outward().histograms = histograms;
    }

    /// The pushed destinations, whose counters the views carry.
    pub(crate) fn set_pushes(&self, pushes: Vec<Arc<Destination>>) {
        self.shared.outward().pushes = pushes;
    }

    /// How many shards there are.
    pub fn count(&self) -> usize {
        self.shards.len()
    }

    /// Shard `shard`'s collector (the last's past the last), behind the
    /// lock its receiving thread takes for each batch.
    pub fn shard(&self, shard: usize) -> &Mutex<Collector> {
        &self.shards[shard.min(self.shards.len() - 1)].0
    }

    /// Shard `shard`, locked; a lock poisoned by a panic is taken all the
    /// same (a collector's state holds together after any of its calls).
    pub(crate) fn lock(&self, shard: usize) -> MutexGuard<'_, Collector> {
        self.shard(shard).lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes `readings` in on shard `shard`, under one hold of its lock;
    /// a datagram of a sender another shard accounts for is handed over
    /// to that shard, after.
    pub fn take<'a>(&self, shard: usize, readings: impl IntoIterator<Item = Reading<'a>>) {
        let mut elsewhere = Vec::new();
        {
            let mut c = self.lock(shard);
            for reading in readings {
                if let Err(handed) = c.offer(reading, true) {
                    elsewhere.push(handed);
                }
            }
            c.flush();
        }
        elsewhere.sort_by_key(|(to, _)| *to);
        let mut elsewhere = elsewhere.into_iter().peekable();
        while let Some((to, first)) = elsewhere.next() {
            let mut c = self.lock(to);
            let _ = c.offer(first, false);
            while let Some((_, next)) = elsewhere.next_if(|(next, _)| *next == to) {
                let _ = c.offer(next, false);
            }
            c.flush();
        }
    }

    /// Counts a Unix stream frame longer than any datagram on shard
    /// `shard` (its connection is closed).
    pub(crate) fn count_frame_too_large(&self, shard: usize) {
        self.lock(shard).count_frame_too_large();
    }

    /// Ends a StatsD set interval in every shard: each set's gauge becomes
    /// the number of distinct members all of them received.
    pub fn close_sets(&self) {
        let mut closed = ClosedSets::default();
        for shard in 0..self.shards.len() {
            self.lock(shard).closed_sets(&mut closed);
        }
        closed.apply(&self.shared);
    }

    /// Moves health's window on (every second).
    pub fn tick(&self) {
        let mut counts = HealthCounts::default();
        for shard in 0..self.shards.len() {
            counts.add(self.lock(shard).health_counts());
        }
        self.shared.tick(counts);
    }

    /// The byte budget and what holds it.
    pub fn memory(&self) -> &Arc<Memory> {
        &self.shared.memory
    }

    /// Series named so far (the overflow series aside).
    pub fn named(&self) -> usize {
        self.shared.named()
    }

    /// What every shard took in.
    pub fn totals(&self) -> IngestTotals {
        let mut totals = IngestTotals::default();
        for shard in 0..self.shards.len() {
            totals.add(&self.lock(shard).totals);
        }
        totals
    }

    /// Every shard's state as one view: each shard's series copied
    /// [`SERIES_PER_HOLD`] at a time, its lock let go between (ingest
    /// goes on meanwhile: a series may move between two holds, and one
    /// made after the first is left for the next view), merged.
    pub fn view(&self) -> View {
        let mut merge = Merge::default();
        let mut lens = Vec::with_capacity(self.count());
        for shard in 0..self.count() {
            let held = Instant::now();
            let c = self.lock(shard);
            merge.counters(&c);
            lens.push(c.series.len());
            drop(c);
            merge.longest_hold = merge.longest_hold.max(held.elapsed());
        }
        let mut chunk = Vec::with_capacity(SERIES_PER_HOLD);
        for (shard, len) in lens.into_iter().enumerate() {
            let mut from = 0;
            while from < len {
                // The lock is not fair: taken again at once, it would go to
                // this thread before a receiving thread woken by its release
                // runs. A pause lets that thread have it.
                std::thread::sleep(BETWEEN_HOLDS);
                let to = (from + SERIES_PER_HOLD).min(len);
                let held = Instant::now();
                let c = self.lock(shard);
                chunk.extend(c.series[from..to].iter().cloned());
                drop(c);
                merge.longest_hold = merge.longest_hold.max(held.elapsed());
                merge.series(chunk.drain(..));
                from = to;
            }
        }
        merge.finish(&self.shared)
    }

    /// Every shard's counters as one view: no series but the overflow
    /// ones (what `/health` reads).
    pub fn counters(&self) -> View {
        let mut merge = Merge::default();
        for shard in 0..self.count() {
            merge.counters(&self.lock(shard));
        }
        merge.finish(&self.shared)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregation::Aggregate;
    use crate::outputs::prometheus::render_metrics;
    use crate::test_support::{NoBuckets, ingest};
    use proptest::prelude::*;
    use stats_core::wire::{Encoder, EncoderConfig};
    use stats_core::{Kind, Registry, Snapshot, Totals};
    use std::sync::atomic::{AtomicBool, Ordering};

    /// Series datagrams from sender `id`: one for each of `passes`, the
    /// `i`-th carrying totals `i + 1` for a counter and a gauge.
    fn records(id: u64, passes: u64) -> Vec<Vec<u8>> {
        let mut registry = Registry::<4, 256>::new();
        let keys = [
            (registry.register("jobs", &[]).unwrap(), Kind::Counter),
            (registry.register("depth", &[]).unwrap(), Kind::Gauge),
        ];
        let mut encoder = Encoder::new(EncoderConfig::new(id)).unwrap();
        let mut buf = vec![0u8; 1432];
        (0..passes)
            .map(|i| {
                let mut w = encoder.begin_series(&mut buf, (i + 1) * 1_000, 1).unwrap();
                for &(key, kind) in &keys {
                    let value = match kind {
                        Kind::Counter => Totals::Counter {
                            sum: i as i64 + 1,
                            count: i + 1,
                        },
                        _ => Totals::Gauge {
                            value: i as f64 + 1.0,
                        },
                    };
                    let totals = Snapshot {
                        key,
                        kind,
                        changes: 1,
                        value,
                    };
                    w.push(&totals, &NoBuckets, |k| registry.get(k)).unwrap();
                }
                w.finish().to_vec()
            })
            .collect()
    }

    fn value(view: &View, name: &str) -> Aggregate {
        (view.series().find(|s| s.name == name))
            .map(|s| s.aggregate())
            .unwrap()
    }

    /// A sender's datagrams that another thread read are handed over to
    /// the shard that accounts for it: one sender, its losses and
    /// duplicates counted as if one thread had read them all.
    #[test]
    fn a_senders_datagrams_are_accounted_by_one_shard_whichever_thread_read_them() {
        let d = records(7, 4);
        let shards = Shards::new(Limits::default(), 2);
        ingest(&shards, 0, &d[0]);
        ingest(&shards, 1, &d[2]);
        ingest(&shards, 1, &d[2]);
        ingest(&shards, 1, &d[1]);
        let view = shards.view();
        let senders: Vec<_> = view.senders().collect();
        assert_eq!(senders.len(), 1);
        let stats = senders[0].1;
        assert_eq!(
            (
                stats.received,
                stats.duplicated,
                stats.reordered,
                stats.lost
            ),
            (3, 1, 1, 0)
        );
        assert_eq!(shards.lock(1).senders().count(), 0, "all handed over");
        assert_eq!(value(&view, "jobs"), Aggregate::Counter(3.0));
        assert_eq!(value(&view, "depth"), Aggregate::Gauge(3.0));
    }

    /// Untracked senders (past `max_senders`) are taken in by whichever
    /// shard reads them: of a sender's totals held by two shards, the
    /// ones of the highest sequence number stand, never both.
    #[test]
    fn the_highest_sequence_wins_across_shards() {
        let d = records(9, 6);
        let limits = Limits {
            max_senders: 0,
            ..Limits::default()
        };
        let shards = Shards::new(limits, 2);
        ingest(&shards, 1, &d[4]);
        ingest(&shards, 0, &d[2]);
        let view = shards.view();
        assert_eq!(view.totals().untracked_datagrams, 2);
        assert_eq!(value(&view, "jobs"), Aggregate::Counter(5.0));
        assert_eq!(value(&view, "depth"), Aggregate::Gauge(5.0));
        ingest(&shards, 0, &d[5]);
        assert_eq!(value(&shards.view(), "jobs"), Aggregate::Counter(6.0));
    }

    /// A gauge is one value whichever thread its lines came in on: a
    /// change applies to the latest value; a set counts the members all
    /// threads received.
    #[test]
    fn gauges_and_sets_are_one_across_shards() {
        let shards = Shards::new(Limits::default(), 2);
        ingest(&shards, 0, b"g:10|g\nu:a|s\nc:1|c");
        ingest(&shards, 1, b"g:+5|g\nu:b|s\nu:a|s\nc:2|c");
        ingest(&shards, 0, b"g:-3|g");
        shards.close_sets();
        let view = shards.view();
        assert_eq!(value(&view, "g"), Aggregate::Gauge(12.0));
        assert_eq!(value(&view, "u"), Aggregate::Gauge(2.0));
        assert_eq!(value(&view, "c"), Aggregate::Counter(3.0));
        assert_eq!(view.series_held(), 3);
    }

    /// Shards (two) of `n` counter series, a gauge and a timer among them.
    fn shards(n: usize) -> Shards {
        let limits = Limits {
            max_series: n + 10,
            ..Limits::default()
        };
        let shards = Shards::new(limits, 2);
        for i in 0..n {
            ingest(
                &shards,
                i % 2,
                format!("c{i}:{i}|c|#shard:{}", i % 7).as_bytes(),
            );
        }
        ingest(&shards, 0, b"g:5|g\nt:2|ms\nt:3|ms");
        shards
    }

    #[test]
    fn a_view_taken_a_chunk_at_a_time_reads_as_one_collector_taken_whole() {
        let n = 2 * SERIES_PER_HOLD + 17;
        let shards = shards(n);
        let mut alone = Collector::new(Limits {
            max_series: n + 10,
            ..Limits::default()
        });
        for i in 0..n {
            alone.ingest(format!("c{i}:{i}|c|#shard:{}", i % 7).as_bytes());
        }
        alone.ingest(b"g:5|g\nt:2|ms\nt:3|ms");
        let taken = shards.view();
        // Its counters, the gauge and the timer.
        assert_eq!(taken.series_held(), n + 2);
        assert_eq!(rendered(&taken), rendered(&View::of(&alone)));
    }

    /// Between two chunks the lock is let go: a receiving thread takes
    /// datagrams in while a view is taken, and what it made after the
    /// view's start is left for the next view.
    #[test]
    fn ingest_goes_on_while_a_view_is_taken() {
        let shards = shards(20 * SERIES_PER_HOLD);
        let before = shards.view().series_held();
        let taking = AtomicBool::new(true);
        let (view, taken_in) = std::thread::scope(|s| {
            let ingest = s.spawn(|| {
                let mut taken_in = 0;
                while taking.load(Ordering::Relaxed) {
                    ingest(&shards, 1, format!("new{taken_in}:1|c").as_bytes());
                    taken_in += 1;
                }
                taken_in
            });
            let view = shards.view();
            taking.store(false, Ordering::Relaxed);
            (view, ingest.join().unwrap())
        });
        // Many times more than a lock held from the view's start to its
        // end would let in (those before its first hold).
        assert!(taken_in >= 20, "{taken_in} datagrams taken in meanwhile");
        assert!(view.longest_hold() > Duration::ZERO);
        // The view holds the series there when it started, or a few more:
        // those made before its first hold.
        assert!(
            view.series_held() + 1 >= before,
            "{} of {before}",
            view.series_held()
        );
        assert!(shards.view().series_held() >= before + taken_in.min(1));
    }

    /// What a datagram in the model is.
    #[derive(Clone, Debug)]
    enum Datagram {
        /// One of [`LINES`].
        Lines(usize),
        /// Sender `.0`'s series datagram of pass `.1`.
        Records(usize, usize),
    }

    const LINES: [&str; 6] = [
        "hits:1|c|#a:1,b:2",
        "hits:2|c|#b:2,a:1",
        "level:7|g",
        "level:+2|g\nlevel:-1|g",
        "users:alice|s\nusers:bob|s",
        "lat:3|ms\nlat:250|ms|@0.5",
    ];

    fn datagrams() -> impl Strategy<Value = Vec<(usize, Datagram)>> {
        let one = prop_oneof![
            (0..LINES.len()).prop_map(Datagram::Lines),
            (0..3usize, 0..6usize).prop_map(|(s, p)| Datagram::Records(s, p)),
        ];
        proptest::collection::vec((0..2usize, one), 1..40)
    }

    /// Everything a view renders but the bytes held (shards hold more).
    fn rendered(view: &View) -> String {
        (render_metrics(view).lines())
            .filter(|l| !l.starts_with("stats_collector_memory_bytes"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    proptest! {
        /// The model: two shards, each datagram read by either thread,
        /// render as one collector that read them all in the same order,
        /// its senders tracked or not.
        #[test]
        fn shards_merge_to_what_one_collector_holds(
            order in datagrams(),
            tracked in any::<bool>(),
        ) {
            let limits = Limits {
                max_senders: if tracked { 1_024 } else { 0 },
                ..Limits::default()
            };
            let senders: Vec<Vec<Vec<u8>>> = (0..3).map(|s| records(20 + s, 6)).collect();
            let shards = Shards::new(limits, 2);
            let mut alone = Collector::new(limits);
            for (shard, d) in &order {
                let bytes = match *d {
                    Datagram::Lines(i) => LINES[i].as_bytes(),
                    Datagram::Records(s, p) => &senders[s][p],
                };
                ingest(&shards, *shard, bytes);
                alone.ingest(bytes);
            }
            shards.close_sets();
            alone.close_sets();
            let (merged, one) = (shards.view(), View::of(&alone));
            prop_assert_eq!(merged.totals(), one.totals());
            prop_assert_eq!(
                merged.senders().collect::<Vec<_>>(),
                one.senders().collect::<Vec<_>>()
            );
            prop_assert_eq!(rendered(&merged), rendered(&one));
        }
    }
}
